//! The evaluator: fed from the alerts queue (single active consumer) while this consumer is
//! the fleet's active one, it runs each reading and each tick through the engine and hands
//! the events to [`Dispatch`].
//!
//! ```text
//! alerts queue (single active consumer) ─▶ intake ─▶ AlertSink ─▶ engine ─▶ Dispatch
//! ```
//! One consumer of a fleet evaluates: when it stops, the broker hands the queue to another,
//! which goes on from the state kept in the store.

use super::announce::{AnnounceMetrics, Announcer};
use super::canary::{self, Canaries, CanaryWatch};
use super::dispatch::Dispatch;
use super::notify::Notifier;
use super::view::AlertView;
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

/// How often the active evaluator looks at the passage of time (hosts gone silent, reminders)
/// and sends its canary.
const TICK: Duration = canary::CANARY_EVERY;
/// After its queue's connection came back, a consumer that has received nothing for this long
/// is not the active evaluator any more (canaries and readings reach the active one each
/// second): a `pipeline` alert it fired is resolved, another consumer watches now.
const HANDED_OVER_AFTER: Duration = Duration::from_secs(10);
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
    canaries: Arc<Canaries>,
    /// When the alerts queue was last opened on a new connection, while this consumer's turn
    /// is in doubt.
    reopened: Arc<Mutex<Option<tokio::time::Instant>>>,
}

impl Sink for AlertSink {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn opened(&self) {
        // A new connection: the broker may have made another consumer the active one; the
        // next delivery says whether it is this one.
        self.active.store(false, Ordering::SeqCst);
        *self.reopened.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(tokio::time::Instant::now());
    }

    async fn take(&self, batch: &[Arc<Accepted>]) -> Result<Vec<Refused>, SinkError> {
        if !self.active.load(Ordering::SeqCst) {
            // Canaries sent while standing by went to the consumer active then: they prove
            // nothing about this turn (and must not make it late from its first tick).
            self.canaries.restart(self.clock.now());
        }
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

    fn heard_canary(&self, body: &[u8]) {
        self.canaries.heard(body, self.clock.now());
    }
}

/// Everything the evaluator needs.
pub struct Evaluator {
    pub rules: Arc<RuleSet>,
    /// Where the state is kept, once the store is open.
    pub history: Arc<crate::history::recorder::History>,
    pub notifier: Option<Notifier>,
    /// This consumer's view: events made here are shown at once, broker or not.
    pub view: Arc<AlertView>,
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
        let announcer = Announcer::start(
            super::announce::Exchange {
                channel: confirm.channel,
                state: confirm.state,
                reopen: confirm.reopen,
                fleet: fleet.clone(),
            },
            AnnounceMetrics::register(&self.registry)?,
        );
        let canaries = Arc::new(self.canaries(fleet.clone())?);
        let out = Arc::new(Dispatch {
            rules: Arc::clone(&self.rules),
            history: self.history,
            notifier: self.notifier,
            view: self.view,
            announcer,
            events,
            late,
        });
        let state = Arc::new(Mutex::new(AlertState::new()));
        let active = Arc::new(AtomicBool::new(false));
        let reopened = Arc::new(Mutex::new(None));
        let ticking = tokio::spawn(tick_while_active(
            Ticking {
                rules: Arc::clone(&self.rules),
                state: Arc::clone(&state),
                out: Arc::clone(&out),
                clock: self.clock.clone(),
                active: Arc::clone(&active),
                canaries: Arc::clone(&canaries),
                reopened: Arc::clone(&reopened),
            },
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
                canaries,
                reopened,
            },
            ticking,
        ))
    }

    /// The canaries, on a connection of their own to the readings' exchange.
    fn canaries(&self, fleet: String) -> anyhow::Result<Canaries> {
        let channel = shared::reconnect::ConfirmChannel::start(
            self.broker.clone(),
            ExchangeKind::Fanout,
            "hostpulse-consumer-canary",
            self.reconnect_cap,
        );
        let late = shared::metrics::register(
            &self.registry,
            prometheus::Gauge::with_opts(
                Opts::new(
                    "pipeline_canary_late_seconds",
                    "On the active evaluator: seconds since its last canary came back through the broker.",
                )
                .namespace(NAMESPACE),
            ),
        )?;
        let watch = CanaryWatch::new(canary::sender_id(), fleet.clone(), self.clock.now());
        Ok(Canaries::new(
            watch,
            channel.channel,
            channel.state,
            fleet,
            late,
        ))
    }
}

/// What the tick needs.
struct Ticking {
    rules: Arc<RuleSet>,
    state: Arc<Mutex<AlertState>>,
    out: Arc<Dispatch>,
    clock: SharedClock,
    active: Arc<AtomicBool>,
    canaries: Arc<Canaries>,
    reopened: Arc<Mutex<Option<tokio::time::Instant>>>,
}

impl Ticking {
    /// One tick: a canary sent (by every evaluating consumer, so the one the broker makes
    /// active hears something at once), and on the active one the canaries judged and the
    /// passage of time evaluated, silence only as far as the canaries prove the pipeline.
    async fn tick(&self, handed_over: bool) {
        let now = self.clock.now();
        self.canaries.send(now);
        if handed_over {
            if let Some((event, text)) = self.canaries.hand_over(now) {
                self.out.dispatch_pipeline(event, text, now);
            }
        }
        if !self.active.load(Ordering::SeqCst) {
            return;
        }
        let (window, pipeline) = self.canaries.judge(now);
        if let Some((event, text)) = pipeline {
            self.out.dispatch_pipeline(event, text, now);
        }
        let events = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.judge_silence(window);
            state.on_tick(&self.rules, now)
        };
        self.out.dispatch(events, now, &self.state).await;
    }
}

async fn tick_while_active(ticking: Ticking, mut queue_status: watch::Receiver<BrokerState>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                // While the broker is away this consumer stays the evaluator (it judges the
                // canaries, and so holds host_down); after a new connection that brought it
                // nothing for a while, another consumer is the active one.
                let handed_over = {
                    let mut reopened = ticking.reopened.lock().unwrap_or_else(|p| p.into_inner());
                    let active = ticking.active.load(Ordering::SeqCst);
                    let handed_over = !active
                        && reopened.is_some_and(|at| at.elapsed() >= HANDED_OVER_AFTER);
                    if active || handed_over {
                        *reopened = None;
                    }
                    handed_over
                };
                ticking.tick(handed_over).await;
            }
            changed = queue_status.changed() => {
                // Only the end of the queue's task matters here.
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
