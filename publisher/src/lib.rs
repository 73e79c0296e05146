//! The hostpulse publisher: samples this host and publishes readings to RabbitMQ.

pub mod auth;
pub mod body;
pub mod broker;
pub mod collector;
pub mod configuration;
pub mod interval;
pub mod link;
pub mod metrics;
pub mod outbox;
pub mod routes;
pub mod spool;
pub mod startup;
