//! The hostpulse consumer. Every reading follows one path, and the modules are its stages:
//!
//! ```text
//! intake ─┬▶ live    (latest per host, broadcast to browsers)  ─┐
//!         ├▶ history (the store, three tiers)                   ├▶ web (page, /ws, /api, /metrics)
//!         └▶ alerts  (one evaluator per fleet, notifications)  ─┘
//! ```
//! - [`intake`]: each queue's deliveries → accepted readings (one parse per message) → a sink.
//! - [`live`]: the live view, fed by the live queue.
//! - [`history`]: the history store, fed by its own durable queue.
//! - [`alerts`]: rules, the evaluator, notifications, every consumer's view of the alerts.
//! - [`web`]: HTTP routes, WebSocket sessions, login and tokens.
//! - [`metrics`]: the pipeline's counters and the fleet's gauges.
//!
//! `startup` wires the path; `configuration` reads the settings; `clock` is the time the
//! consumer reads (tests drive it); `cli` is the command line.

pub mod alerts;
pub mod history;
pub mod intake;
pub mod live;
pub mod metrics;
pub mod web;

pub mod cli;
pub mod clock;
pub mod configuration;
pub mod startup;
