//! Alerts: the rules, their evaluation, and where the events go.
//!
//! ```text
//! alerts queue ─▶ intake ─▶ AlertSink (evaluator.rs) ─▶ engine ─▶ Dispatch (dispatch.rs)
//!                                                                  ├▶ the store (the state)
//!                                                                  ├▶ notify/ (webhook, ntfy, Slack, e-mail)
//!                                                                  ├▶ this consumer's AlertView
//!                                                                  └▶ announce.rs ─▶ hostpulse.alerts
//! hostpulse.alerts ─▶ AlertView (view.rs) ─▶ /api/alerts, the page, hostpulse_alert_active
//! canary.rs ─▶ readings' exchange ─▶ alerts queue ─▶ canary.rs (is the pipeline alive?)
//! ```
//! - [`rules`]: the rules (defaults compiled in, `ALERT_RULES_FILE` laid over them).
//! - [`engine`]: [`AlertState`] turns readings and ticks into [`AlertEvent`]s, with the time
//!   passed in (a pure function of its inputs, tested without a broker).
//! - [`evaluator`]: the alerts queue's sink and the tick, on the fleet's active evaluator.
//! - `takeover`: what an evaluator whose turn starts learns first (each host's last reading,
//!   the windows refilled from the history store).
//! - [`canary`]: the evaluator's own heartbeat through the readings' exchange, which tells a
//!   silent host from a silent pipeline (the `pipeline` alert).
//! - [`dispatch`]: the events kept, notified, shown here and handed to [`announce`], which
//!   publishes them on the alerts exchange and keeps those it cannot take until it can.
//! - [`notify`]: the notification channels.
//! - [`view`]: every consumer's view of the alerts, from the alerts exchange.

pub mod announce;
pub mod canary;
pub mod dispatch;
pub mod engine;
pub mod evaluator;
pub mod notify;
pub mod rules;
mod takeover;
pub mod view;

#[cfg(test)]
mod prometheus_rules;
#[cfg(test)]
mod tests;

pub use engine::{
    group_by_host, ActiveAlert, ActiveEntry, AlertEvent, AlertState, EventKind, HostBatch, Ignored,
    Reason, SilenceWindow,
};
pub use rules::{Levels, Metric, Rule, RuleSet, RulesError, Severity, DEFAULT_RULES_TOML};

/// The topic exchange every alert event is published to.
pub const ALERTS_EXCHANGE: &str = "hostpulse.alerts";
/// The header naming the fleet (the readings' exchange) an event is about: one broker can
/// carry several fleets, and each consumer's view shows its own fleet's alerts only.
pub const FLEET_HEADER: &str = "x-hostpulse-fleet";
