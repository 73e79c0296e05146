mod bad_input;
mod dashboard;
mod fanout;
mod helpers;
mod metrics;
mod outage;
mod pipeline;
mod prometheus;
