//! The consumer's HTTP routes (the WebSocket is in [`crate::ws`]).

mod dashboard;
mod health;
mod hosts;
mod metrics;

pub use dashboard::{asset, index};
pub use health::{health, ready};
pub use hosts::{host_readings, hosts};
pub use metrics::metrics;
