//! The hostpulse consumer. Every reading follows one path:
//!
//! `broker` (a queue) → `ingest` (bytes → accepted reading or refusal) → a `sink`: the `live`
//! view (latest per host, broadcast to browsers over `ws`), and later the store and the alerts,
//! each from a queue of its own. `startup` wires the path and the HTTP `routes`.

pub mod alerting;
pub mod alerts;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod configuration;
pub mod ingest;
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
