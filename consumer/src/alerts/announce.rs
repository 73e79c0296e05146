//! Announcing events on the alerts exchange `hostpulse.alerts` (routing key
//! `<severity>.<host>`), in the order they happened, each confirmed by the broker.
//!
//! The evaluator never waits for this: events go into a queue here and one task publishes
//! them. While the exchange cannot take them (broker unreachable, frozen, or refusing), they
//! are kept, in order, and announced when it can; meanwhile the consumer that made them shows
//! them itself (see `dispatch.rs`) and its notifications go out directly. Kept events live
//! in memory: at most [`MAX_KEPT`] (the oldest are dropped beyond, counted), and a consumer
//! stopped during the outage loses its own (its notifications went out).

use super::{AlertEvent, ALERTS_EXCHANGE, FLEET_HEADER};
use lapin::options::BasicPublishOptions;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use prometheus::{IntCounter, IntGauge, Opts, Registry};
use shared::broker::BrokerState;
use shared::metrics::NAMESPACE;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long a publish to the alerts exchange may wait for its confirmation.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait before trying again when the exchange did not take an event.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Events kept while the exchange cannot take them, at most.
pub const MAX_KEPT: usize = 10_000;

/// What is counted in `/metrics`.
#[derive(Clone)]
pub struct AnnounceMetrics {
    /// Events the exchange could not take when made (kept, then announced later).
    failures: IntCounter,
    /// Events waiting to be announced.
    pending: IntGauge,
    /// Events dropped because too many were kept.
    dropped: IntCounter,
}

impl AnnounceMetrics {
    /// Registers the announcer's metrics.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| {
            shared::metrics::register(
                registry,
                IntCounter::with_opts(Opts::new(name, help).namespace(NAMESPACE)),
            )
        };
        Ok(Self {
            failures: counter(
                "alert_announce_failures_total",
                "Alert events the alerts exchange could not take when made (kept, shown by this consumer, announced when it can).",
            )?,
            dropped: counter(
                "alert_announce_dropped_total",
                "Alert events dropped unannounced because too many were kept.",
            )?,
            pending: shared::metrics::register(
                registry,
                IntGauge::with_opts(
                    Opts::new(
                        "alert_announce_pending",
                        "Alert events kept until the alerts exchange takes them.",
                    )
                    .namespace(NAMESPACE),
                ),
            )?,
        })
    }
}

/// One kept event; `counted`: already counted as a failure.
struct Kept {
    event: AlertEvent,
    counted: bool,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Kept>,
    /// The exchange did not take the last attempt: new events count as failures at once.
    failing: bool,
}

/// The queue of events to announce, and the task that announces them.
pub struct Announcer {
    queue: Mutex<Queue>,
    wake: Notify,
    metrics: AnnounceMetrics,
}

/// Where the announcer publishes: the alerts exchange's confirm channel and its state.
pub struct Exchange {
    pub channel: watch::Receiver<Option<lapin::Channel>>,
    pub state: watch::Receiver<BrokerState>,
    /// Woken when a publish found the channel broken, so it is opened again.
    pub reopen: Arc<Notify>,
    /// The readings' exchange, sent with every event in [`FLEET_HEADER`].
    pub fleet: String,
}

impl Announcer {
    /// An announcer publishing to `exchange`, its task started.
    pub fn start(exchange: Exchange, metrics: AnnounceMetrics) -> Arc<Self> {
        let announcer = Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            metrics,
        });
        tokio::spawn(Arc::clone(&announcer).run(exchange));
        announcer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `event` to be announced after those before it.
    pub fn announce(&self, event: AlertEvent) {
        {
            let mut queue = self.lock();
            let counted = queue.failing;
            if counted {
                self.metrics.failures.inc();
            }
            queue.events.push_back(Kept { event, counted });
            while queue.events.len() > MAX_KEPT {
                queue.events.pop_front();
                self.metrics.dropped.inc();
            }
            self.metrics.pending.set(queue.events.len() as i64);
        }
        self.wake.notify_one();
    }

    /// Events waiting to be announced.
    pub fn pending(&self) -> usize {
        self.lock().events.len()
    }

    async fn run(self: Arc<Self>, mut exchange: Exchange) {
        loop {
            let front = self.lock().events.front().map(|k| k.event.clone());
            let Some(event) = front else {
                // notify_one keeps a permit: an event queued before this wait still wakes it.
                self.wake.notified().await;
                continue;
            };
            let channel = exchange.channel.borrow().clone();
            let outcome = match channel {
                None => Err(None),
                Some(channel) => self
                    .publish(&channel, &event, &exchange.fleet)
                    .await
                    .map_err(Some),
            };
            match outcome {
                Ok(()) => self.announced(),
                Err(why) => {
                    if why.as_ref().is_some_and(|w| w.broken) {
                        exchange.reopen.notify_one();
                    }
                    let why = why.map_or_else(|| describe(&exchange.state.borrow()), |w| w.detail);
                    self.not_taken(&why);
                    // Again when the connection changes, or a moment later.
                    tokio::select! {
                        _ = exchange.channel.changed() => {}
                        () = tokio::time::sleep(RETRY_EVERY) => {}
                    }
                }
            }
        }
    }

    /// Publishes one event, persistent, and waits for its confirmation. A broker that is slow
    /// to confirm (frozen, blocked) is waited for, not published to twice: past
    /// [`CONFIRM_TIMEOUT`] the event counts as not taken (and is shown as kept), and the wait
    /// goes on until the broker confirms or the channel fails.
    async fn publish(
        &self,
        channel: &lapin::Channel,
        event: &AlertEvent,
        fleet: &str,
    ) -> Result<(), NotTaken> {
        let body = serde_json::to_vec(event).map_err(|e| NotTaken {
            detail: format!("event not encodable: {e}"),
            broken: false,
        })?;
        let key = format!("{}.{}", event.severity.label(), event.host);
        let mut headers = FieldTable::default();
        headers.insert(
            FLEET_HEADER.into(),
            lapin::types::AMQPValue::LongString(fleet.into()),
        );
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_headers(headers);
        let sent = tokio::time::timeout(
            CONFIRM_TIMEOUT,
            channel.basic_publish(
                ALERTS_EXCHANGE.into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            ),
        )
        .await;
        let mut confirmation = match sent {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(e)) => {
                return Err(NotTaken {
                    detail: e.to_string(),
                    broken: true,
                })
            }
            Err(_) => {
                return Err(NotTaken {
                    detail: format!(
                        "the publish was not written within {} s",
                        CONFIRM_TIMEOUT.as_secs()
                    ),
                    broken: true,
                })
            }
        };
        let confirmed = loop {
            tokio::select! {
                confirmed = &mut confirmation => break confirmed,
                () = tokio::time::sleep(CONFIRM_TIMEOUT) => self.not_taken(&format!(
                    "no confirmation within {} s (the broker is frozen or blocked); waiting for it",
                    CONFIRM_TIMEOUT.as_secs()
                )),
            }
        };
        match confirmed {
            Ok(lapin::Confirmation::Ack(_) | lapin::Confirmation::NotRequested) => Ok(()),
            Ok(lapin::Confirmation::Nack(_)) => Err(NotTaken {
                detail: "the broker refused the event (nack)".to_owned(),
                broken: false,
            }),
            Err(e) => Err(NotTaken {
                detail: e.to_string(),
                broken: true,
            }),
        }
    }

    /// The front event was confirmed.
    fn announced(&self) {
        let mut queue = self.lock();
        queue.events.pop_front();
        self.metrics.pending.set(queue.events.len() as i64);
        if queue.failing {
            queue.failing = false;
            tracing::info!(
                exchange = ALERTS_EXCHANGE,
                still_kept = queue.events.len(),
                "broker: the alerts exchange takes events again; those kept meanwhile are \
                 announced now, in order"
            );
        }
    }

    /// The front event was not taken because of `why`.
    fn not_taken(&self, why: &str) {
        let mut queue = self.lock();
        if !queue.failing {
            queue.failing = true;
            tracing::warn!(
                exchange = ALERTS_EXCHANGE,
                kept = queue.events.len(),
                error = %why,
                "broker: the alerts exchange cannot take alert events; they are shown by this \
                 consumer, notified directly, and kept to be announced when it is back"
            );
        }
        for kept in queue.events.iter_mut().filter(|k| !k.counted) {
            kept.counted = true;
            self.metrics.failures.inc();
        }
    }
}

/// The alerts exchange's connection state in words.
fn describe(state: &BrokerState) -> String {
    let node = state.url.as_deref().unwrap_or("the broker");
    match &state.last_error {
        Some(error) => format!("{node} is not connected: {error}"),
        None => format!("{node} is not connected yet"),
    }
}

/// Why a publish was not confirmed.
struct NotTaken {
    detail: String,
    /// The channel itself failed (not a slow or refusing broker): open it again.
    broken: bool,
}
