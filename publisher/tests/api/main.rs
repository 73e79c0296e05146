mod health;
mod helpers;
mod interval;
mod metrics;
mod publish;
mod settings;
