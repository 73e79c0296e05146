//! Alert rules and their evaluation (issue #12), apart from the hub and the WebSocket code.
//!
//! [`RuleSet`] holds the rules (defaults compiled in, `ALERT_RULES_FILE` laid over them);
//! [`AlertState`] turns readings and ticks into [`AlertEvent`]s with the time passed in.

pub mod engine;
pub mod rules;

#[cfg(test)]
mod prometheus_rules;
#[cfg(test)]
mod tests;

pub use engine::{
    group_by_host, ActiveAlert, ActiveEntry, AlertEvent, AlertState, EventKind, HostBatch, Ignored,
};
pub use rules::{Levels, Metric, Rule, RuleSet, RulesError, Severity, DEFAULT_RULES_TOML};
