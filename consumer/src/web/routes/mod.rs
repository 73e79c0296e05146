//! The consumer's HTTP routes (the WebSocket is in [`crate::web::ws`]).

mod alerts;
mod dashboard;
mod health;
mod history;
mod hosts;
mod metrics;

pub use alerts::alerts;
pub(crate) use dashboard::Assets;
pub use dashboard::{asset, index, CONTENT_SECURITY_POLICY};
pub use health::{health, ready};
pub use history::history;
pub use hosts::{host_readings, hosts};
pub use metrics::{check_metrics_exposure, metrics};
