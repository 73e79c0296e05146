//! Recording: the history queue → the store. A durable quorum queue of the store's own,
//! shared by every consumer writing that store, feeds [`StoreSink`]; a batch is acknowledged
//! only once the store committed it, so a consumer or a store that is down leaves readings
//! waiting in the broker (up to the queue's bound), never lost on the way.

use crate::history::store::{Store, StoreError};
use crate::intake::parse::Accepted;
use crate::intake::queue::{self, Source};
use crate::intake::sink::{Refused, Sink, SinkError};
use crate::intake::QueueIntake;
use crate::live::LiveView;
use crate::metrics::history::HistoryMetrics;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::broker::{BrokerState, QueueKind, QueueSpec};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// How often rows past their tier's age are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// How often rows and bytes are counted for `/metrics` (a count is a scan: not per scrape).
const STATS_EVERY: Duration = Duration::from_secs(30);

/// The history queue's settings.
#[derive(Debug, Clone)]
pub struct HistoryQueue {
    /// `HISTORY_QUEUE`; default `<exchange>.history.<store id>`.
    pub name: Option<String>,
    /// `HISTORY_QUEUE_MAX_LENGTH`: readings kept waiting at most; beyond, the oldest go.
    pub max_length: u32,
    /// `HISTORY_QUEUE_EXPIRES`: a queue no consumer used for this long is deleted by the broker.
    pub expires: Duration,
    pub prefetch: u16,
}

/// The store's state as `/health` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StoreState {
    pub enabled: bool,
    pub up: bool,
    pub backend: Option<&'static str>,
    /// Where it is, without a password.
    pub location: String,
    pub queue: Option<String>,
    /// True while this consumer is consuming the history queue.
    pub queue_connected: bool,
    pub last_error: Option<String>,
    pub since: DateTime<Utc>,
}

/// What the HTTP routes and `/health` see of the history: the store once it is open, and
/// its state.
pub struct History {
    store: OnceLock<Arc<Store>>,
    /// Woken once the store is open.
    opened: tokio::sync::Notify,
    state: Mutex<StoreState>,
    /// The history queue's connection.
    queue_status: watch::Receiver<BrokerState>,
}

impl History {
    /// History as configured: `enabled` false for `HISTORY_URL=off`; `queue_status` is the
    /// history queue's connection, as the recorder reports it.
    pub fn new(
        enabled: bool,
        location: String,
        queue_status: watch::Receiver<BrokerState>,
    ) -> Self {
        Self {
            queue_status,
            store: OnceLock::new(),
            opened: tokio::sync::Notify::new(),
            state: Mutex::new(StoreState {
                enabled,
                up: false,
                backend: None,
                location,
                queue: None,
                queue_connected: false,
                last_error: None,
                since: Utc::now(),
            }),
        }
    }

    /// The store, once it has been opened.
    pub fn store(&self) -> Option<Arc<Store>> {
        self.store.get().cloned()
    }

    /// The store once it is open, waiting up to `within` for it (`None` when history is off,
    /// or the store is still unreachable then).
    pub async fn store_within(&self, within: Duration) -> Option<Arc<Store>> {
        if !self.lock().enabled {
            return None;
        }
        let opened = self.opened.notified();
        if let Some(store) = self.store() {
            return Some(store);
        }
        let _ = tokio::time::timeout(within, opened).await;
        self.store()
    }

    /// The store's state now.
    pub fn state(&self) -> StoreState {
        let mut state = self.lock().clone();
        state.queue_connected = self.queue_status.borrow().connected;
        state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn up(&self) {
        let mut state = self.lock();
        if !state.up {
            state.up = true;
            state.last_error = None;
            state.since = Utc::now();
        }
    }

    fn down(&self, why: &StoreError) {
        let mut state = self.lock();
        if state.up || state.last_error.is_none() {
            state.since = Utc::now();
        }
        state.up = false;
        state.last_error = Some(why.to_string());
    }
}

/// Writes each batch to the store, then shows the live view what it had not seen (readings a
/// publisher back-filled while this consumer's live queue was not bound yet).
pub struct StoreSink {
    store: Arc<Store>,
    live: Arc<LiveView>,
    history: Arc<History>,
    metrics: HistoryMetrics,
    clock: crate::clock::SharedClock,
}

impl Sink for StoreSink {
    fn name(&self) -> &'static str {
        "history"
    }

    async fn take(&self, batch: &[Arc<Accepted>]) -> Result<Vec<Refused>, SinkError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match self.write(batch).await {
            Ok(()) => {}
            // One reading the store can never take must not hold up every reading behind it:
            // write them one by one, and skip (count, log) only the unwritable.
            Err(e) if !e.is_transient() && batch.len() > 1 => {
                for one in batch {
                    if let Err(e) = self.write(std::slice::from_ref(one)).await {
                        if e.is_transient() {
                            return Err(sink_error(&e));
                        }
                        self.metrics
                            .skipped
                            .with_label_values(&["unwritable"])
                            .inc();
                        tracing::warn!(host = %one.reading.host, seq = one.reading.seq, error = %e, "history: a reading the store cannot take was skipped");
                    }
                }
            }
            Err(e) if !e.is_transient() => {
                let one = &batch[0];
                self.metrics
                    .skipped
                    .with_label_values(&["unwritable"])
                    .inc();
                tracing::warn!(host = %one.reading.host, seq = one.reading.seq, error = %e, "history: a reading the store cannot take was skipped");
            }
            Err(e) => return Err(sink_error(&e)),
        }
        for accepted in batch {
            // A host over MAX_HOSTS is refused by the live queue's path already and counted there.
            let _ = self.live.publish(accepted);
        }
        Ok(Vec::new())
    }
}

fn sink_error(e: &StoreError) -> SinkError {
    SinkError {
        sink: "history",
        reason: e.reason(),
        detail: e.to_string(),
    }
}

impl StoreSink {
    async fn write(&self, batch: &[Arc<Accepted>]) -> Result<(), StoreError> {
        let readings: Vec<&shared::reading::Reading> = batch.iter().map(|a| &a.reading).collect();
        let timer = self.metrics.write_seconds.start_timer();
        let outcome = self.store.write_batch(&readings, self.clock.now()).await;
        timer.observe_duration();
        match outcome {
            Ok(outcome) => {
                self.metrics.written.inc_by(outcome.written);
                self.metrics.duplicates.inc_by(outcome.duplicates);
                self.metrics
                    .skipped
                    .with_label_values(&["too_old"])
                    .inc_by(outcome.too_old);
                self.metrics.store_up.set(1);
                self.history.up();
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .write_errors
                    .with_label_values(&[e.reason()])
                    .inc();
                self.metrics.store_up.set(0);
                self.history.down(&e);
                Err(e)
            }
        }
    }
}

/// Everything recording needs.
pub struct Recorder {
    pub settings: crate::history::store::HistorySettings,
    pub queue: HistoryQueue,
    pub broker: shared::settings::BrokerSettings,
    pub reconnect_cap: Duration,
    pub intake: QueueIntake,
    pub live: Arc<LiveView>,
    pub history: Arc<History>,
    pub metrics: HistoryMetrics,
    /// The history queue's connection state.
    pub status: watch::Sender<BrokerState>,
}

impl Recorder {
    /// Opens the store (retrying while it is unreachable: the live view goes on meanwhile),
    /// then records from the history queue until the task is dropped.
    pub async fn record_forever(self) {
        let Some(store) = self.open_store().await else {
            return;
        };
        let name = self
            .queue
            .name
            .clone()
            .unwrap_or_else(|| format!("{}.history.{}", self.broker.exchange, store.id()));
        {
            let mut state = self.history.lock();
            state.queue = Some(name.clone());
            state.backend = Some(store.backend());
        }
        tracing::info!(store = %store.location(), queue = %name, "recording history");
        // A set, so the upkeep task ends with this one however this one ends (aborted too).
        let mut upkeep_task = tokio::task::JoinSet::new();
        upkeep_task.spawn(upkeep(
            Arc::clone(&store),
            Arc::clone(&self.history),
            self.metrics.clone(),
            self.intake.clock().clone(),
        ));
        let source = Source {
            settings: self.broker.clone(),
            queue: QueueSpec {
                name: Some(name),
                max_length: self.queue.max_length,
                prefetch: self.queue.prefetch,
                kind: QueueKind::Shared {
                    expires: self.queue.expires,
                    single_active: false,
                    replicated: true,
                },
            },
            reconnect_cap: self.reconnect_cap,
            depth: Some(self.metrics.queue_messages.clone()),
        };
        self.live.fill_gaps_from_store();
        let sink = StoreSink {
            store,
            live: self.live,
            history: self.history,
            metrics: self.metrics,
            clock: self.intake.clock().clone(),
        };
        queue::consume_forever(source, self.status, self.intake, sink).await;
        upkeep_task.abort_all();
    }

    async fn open_store(&self) -> Option<Arc<Store>> {
        let mut delays = shared::reconnect::reconnect_delays(self.reconnect_cap);
        let mut failures = shared::reconnect::RetryLog::default();
        loop {
            match Store::open(&self.settings).await {
                Ok(Some(store)) => {
                    let store = Arc::new(store);
                    let _ = self.history.store.set(Arc::clone(&store));
                    self.history.opened.notify_waiters();
                    self.history.up();
                    self.metrics.store_up.set(1);
                    return Some(store);
                }
                Ok(None) => return None,
                Err(e) => {
                    self.metrics
                        .write_errors
                        .with_label_values(&[e.reason()])
                        .inc();
                    self.history.down(&e);
                    failures.failed(&e.to_string());
                    if let Some(delay) = delays.next() {
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }
}

/// Retention and the store's size, on their own timers.
async fn upkeep(
    store: Arc<Store>,
    history: Arc<History>,
    metrics: HistoryMetrics,
    clock: crate::clock::SharedClock,
) {
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    let mut stats = tokio::time::interval(STATS_EVERY);
    loop {
        tokio::select! {
            _ = retention.tick() => {
                match store.enforce_retention(clock.now()).await {
                    Ok(outcome) => {
                        if outcome.raw + outcome.minute + outcome.hour > 0 {
                            tracing::debug!(?outcome, "history: rows past their age deleted");
                        }
                        if outcome.more {
                            retention.reset_after(Duration::from_secs(1));
                        }
                    }
                    Err(e) => {
                        metrics.write_errors.with_label_values(&[e.reason()]).inc();
                        history.down(&e);
                    }
                }
            }
            _ = stats.tick() => {
                if let Ok(s) = store.stats().await {
                    for (tier, rows) in s.rows {
                        metrics.rows.with_label_values(&[tier]).set(i64::try_from(rows).unwrap_or(i64::MAX));
                    }
                    metrics.store_bytes.set(i64::try_from(s.bytes).unwrap_or(i64::MAX));
                }
            }
        }
    }
}
