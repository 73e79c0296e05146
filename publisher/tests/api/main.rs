mod health;
mod helpers;
mod interval;
mod metrics;
mod publish;
mod security;
mod settings;
mod shutdown;
