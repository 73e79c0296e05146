//! The consumer's HTTP routes (the WebSocket is in [`crate::ws`]).

mod dashboard;
mod health;
mod hosts;
mod metrics;

pub(crate) use dashboard::Assets;
pub use dashboard::{asset, index, CONTENT_SECURITY_POLICY};
pub use health::{health, ready};
pub use hosts::{host_readings, hosts};
pub use metrics::metrics;
