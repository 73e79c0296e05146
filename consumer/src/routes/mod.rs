//! The consumer's HTTP routes (the WebSocket is in [`crate::ws`]).

mod dashboard;
mod health;
mod hosts;

pub use dashboard::{asset, index};
pub use health::{health, metrics, ready};
pub use hosts::hosts;
