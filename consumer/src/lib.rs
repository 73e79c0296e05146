//! The hostpulse consumer. Every reading follows one path:
//!
//! `broker` (a queue) → `intake` (one parse per message, shared by every queue that carries
//! it) → `ingest` (bytes → accepted reading or refusal) → a `sink`: the `live` view (latest
//! per host, broadcast to browsers over `ws`), the store (`recording`) and the alerts
//! (`alerting`), each fed from a queue of its own. `startup` wires the path and the HTTP
//! `routes`.

pub mod alerting;
pub mod alerts;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod configuration;
pub mod ingest;
pub mod intake;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod origin;
pub mod recording;
pub mod routes;
pub mod sink;
pub mod startup;
pub mod store;
pub mod ws;
