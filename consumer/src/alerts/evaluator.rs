//! The evaluator: fed from the alerts queue (single active consumer) while this consumer is
//! the fleet's active one, it runs each reading and each tick through the engine and hands
//! the events to [`Dispatch`].
//!
//! ```text
//! alerts queue (single active consumer) ─▶ intake ─▶ AlertSink ─▶ engine ─▶ Dispatch
//! ```
//! One consumer of a fleet evaluates: when it stops, the broker hands the queue to another,
//! which goes on from the state kept in the store.

use super::dispatch::Dispatch;
use super::notify::Notifier;
use super::{AlertState, RuleSet, ALERTS_EXCHANGE};
use crate::clock::SharedClock;
use crate::intake::parse::Accepted;
use crate::intake::sink::{Refused, Sink, SinkError};
use lapin::ExchangeKind;
use prometheus::{IntCounterVec, Opts};
use shared::broker::BrokerState;
use shared::metrics::NAMESPACE;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often the active evaluator looks at the passage of time (hosts gone silent, reminders).
const TICK: Duration = Duration::from_secs(1);
/// A reading older than this when it arrives is history (a publisher's back-fill after an
/// outage), not the host's state now: it is not evaluated.
const LATE: chrono::Duration = chrono::Duration::seconds(30);

/// The evaluator: fed from the alerts queue while this consumer is the active one.
pub struct AlertSink {
    rules: Arc<RuleSet>,
    state: Arc<Mutex<AlertState>>,
    out: Arc<Dispatch>,
    clock: SharedClock,
    /// Set by the first delivery of a connection: with a single active consumer, only the
    /// active one receives anything.
    active: Arc<AtomicBool>,
    /// What this consumer received while standing by: each host's last reading.
    live: Arc<crate::live::LiveView>,
}

impl Sink for AlertSink {
    fn name(&self) -> &'static str {
        "alerts"
    }

    async fn take(&self, batch: &[Arc<Accepted>]) -> Result<Vec<Refused>, SinkError> {
        if !self.active.swap(true, Ordering::SeqCst) {
            // This consumer's turn starts: go on from where the last evaluator left off,
            // judging silence from each host's last reading, with the windows refilled.
            self.out.restore(&self.state).await;
            let store = self.out.history.store();
            super::takeover::catch_up(
                &self.rules,
                &self.state,
                &self.live,
                store.as_deref(),
                self.clock.now(),
            )
            .await;
        }
        let now = self.clock.now();
        let events = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let mut events = Vec::new();
            for (i, accepted) in batch.iter().enumerate() {
                let reading = &accepted.reading;
                if reading.collected_at < now - LATE {
                    self.out.late.inc();
                    continue;
                }
                // Judged at arrival, by this consumer's clock (as the ticks are), in arrival
                // order: a host whose clock is off is neither down early nor late.
                let at = now + chrono::Duration::microseconds(i as i64);
                let interval = reading
                    .interval_secs
                    .map(|s| Duration::from_secs(u64::from(s)));
                match state.on_reading(&self.rules, reading, at, interval) {
                    Ok(mut found) => events.append(&mut found),
                    Err(e) => tracing::debug!(error = %e, "alerts: reading not evaluated"),
                }
            }
            events
        };
        self.out.dispatch(events, now, &self.state).await;
        Ok(Vec::new())
    }
}

/// Everything the evaluator needs.
pub struct Evaluator {
    pub rules: Arc<RuleSet>,
    /// Where the state is kept, once the store is open.
    pub history: Arc<crate::history::recorder::History>,
    pub notifier: Option<Notifier>,
    pub broker: shared::settings::BrokerSettings,
    pub reconnect_cap: Duration,
    pub clock: SharedClock,
    pub registry: prometheus::Registry,
    /// The live view: each host's last reading this consumer received.
    pub live: Arc<crate::live::LiveView>,
}

impl Evaluator {
    /// The sink for the alerts queue, and the task that ticks while this consumer is the
    /// active evaluator (it stops being one when its queue's connection is lost).
    pub fn start(
        self,
        queue_status: watch::Receiver<BrokerState>,
    ) -> anyhow::Result<(AlertSink, tokio::task::JoinHandle<()>)> {
        let confirm = shared::reconnect::ConfirmChannel::start(
            shared::settings::BrokerSettings {
                exchange: ALERTS_EXCHANGE.to_owned(),
                ..self.broker.clone()
            },
            ExchangeKind::Topic,
            "hostpulse-consumer-alerts",
            self.reconnect_cap,
        );
        let events = shared::metrics::register(
            &self.registry,
            IntCounterVec::new(
                Opts::new(
                    "alert_events_total",
                    "Alert events this consumer evaluated, by kind.",
                )
                .namespace(NAMESPACE),
                &["kind"],
            ),
        )?;
        for kind in ["fired", "resolved", "reminder"] {
            events.with_label_values(&[kind]);
        }
        let announce_failures = shared::metrics::register(
            &self.registry,
            prometheus::IntCounter::with_opts(
                Opts::new(
                    "alert_announce_failures_total",
                    "Alert events not confirmed by the alerts exchange.",
                )
                .namespace(NAMESPACE),
            ),
        )?;
        let late = shared::metrics::register(
            &self.registry,
            prometheus::IntCounter::with_opts(
                Opts::new(
                    "alert_readings_late_total",
                    "Readings too old on arrival to judge a host's state now (back-fill).",
                )
                .namespace(NAMESPACE),
            ),
        )?;
        let fleet = self.broker.exchange.clone();
        let out = Arc::new(Dispatch {
            fleet,
            rules: Arc::clone(&self.rules),
            history: self.history,
            notifier: self.notifier,
            channel: confirm.channel,
            events,
            announce_failures,
            late,
        });
        let state = Arc::new(Mutex::new(AlertState::new()));
        let active = Arc::new(AtomicBool::new(false));
        let ticking = tokio::spawn(tick_while_active(
            Arc::clone(&self.rules),
            Arc::clone(&state),
            Arc::clone(&out),
            self.clock.clone(),
            Arc::clone(&active),
            queue_status,
        ));
        Ok((
            AlertSink {
                rules: self.rules,
                state,
                out,
                clock: self.clock,
                active,
                live: self.live,
            },
            ticking,
        ))
    }
}

async fn tick_while_active(
    rules: Arc<RuleSet>,
    state: Arc<Mutex<AlertState>>,
    out: Arc<Dispatch>,
    clock: SharedClock,
    active: Arc<AtomicBool>,
    mut queue_status: watch::Receiver<BrokerState>,
) {
    let mut ticks = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if !active.load(Ordering::SeqCst) {
                    continue;
                }
                let now = clock.now();
                let events = state.lock().unwrap_or_else(|p| p.into_inner()).on_tick(&rules, now);
                out.dispatch(events, now, &state).await;
            }
            changed = queue_status.changed() => {
                if changed.is_err() {
                    return;
                }
                // A lost connection ends this consumer's turn: another may be active now.
                if !queue_status.borrow_and_update().connected {
                    active.store(false, Ordering::SeqCst);
                }
            }
        }
    }
}
