//! The hostpulse consumer: binds a queue to the readings exchange and streams every reading
//! to the browsers over WebSocket.

pub mod alerts;
pub mod broker;
pub mod configuration;
pub mod hub;
pub mod legacy;
pub mod metrics;
pub mod origin;
pub mod routes;
pub mod startup;
pub mod ws;
