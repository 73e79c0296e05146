//! Alerting, around the rule engine ([`crate::alerts`]):
//!
//! ```text
//! alerts queue (single active consumer) ─▶ ingest ─▶ AlertSink ─▶ engine ─▶ notifications
//!                                                                      └─▶ hostpulse.alerts (topic)
//! hostpulse.alerts ─▶ every consumer's AlertView ─▶ /api/alerts, the page, hostpulse_alert_active
//! ```
//! One consumer of a fleet evaluates: the queue has RabbitMQ's single active consumer, so when
//! it stops another takes over. Every event goes to the topic exchange `hostpulse.alerts`
//! (routing key `<severity>.<host>`), where other systems, and every consumer's view, read it.

use crate::alerts::{group_by_host, AlertEvent, AlertState, EventKind, RuleSet, Severity};
use crate::clock::SharedClock;
use crate::ingest::Accepted;
use crate::live::LiveView;
use crate::notify::{self, Notice, NoticeEvent, Notifier};
use crate::sink::{Refused, Sink, SinkError};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, Consumer, ExchangeKind};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, Opts};
use shared::broker::BrokerState;
use shared::metrics::NAMESPACE;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The topic exchange every alert event is published to.
pub const ALERTS_EXCHANGE: &str = "hostpulse.alerts";
/// The header naming the fleet (the readings' exchange) an event is about: one broker can
/// carry several fleets, and each consumer's view shows its own fleet's alerts only.
pub const FLEET_HEADER: &str = "x-hostpulse-fleet";
/// Resolved alerts kept for `/api/alerts` and the page.
const RECENT: usize = 200;
/// How often the active evaluator looks at the passage of time (hosts gone silent, reminders).
const TICK: Duration = Duration::from_secs(1);
/// A reading older than this when it arrives is history (a publisher's back-fill after an
/// outage), not the host's state now: it is not evaluated.
const LATE: chrono::Duration = chrono::Duration::seconds(30);
/// How long a starting evaluator waits for the store to open to read the state kept there.
const RESTORE_WAIT: Duration = Duration::from_secs(10);
/// How long a publish to the alerts exchange may wait for its confirmation.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// The evaluator: fed from the alerts queue while this consumer is the active one.
pub struct AlertSink {
    rules: Arc<RuleSet>,
    state: Arc<Mutex<AlertState>>,
    out: Arc<Dispatch>,
    clock: SharedClock,
    /// Set by the first delivery of a connection: with a single active consumer, only the
    /// active one receives anything.
    active: Arc<AtomicBool>,
}

impl Sink for AlertSink {
    fn name(&self) -> &'static str {
        "alerts"
    }

    async fn take(&self, batch: &[Arc<Accepted>]) -> Result<Vec<Refused>, SinkError> {
        if !self.active.swap(true, Ordering::SeqCst) {
            // This consumer's turn starts: go on from where the last evaluator left off.
            self.out.restore(&self.state).await;
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

/// Where events go: the store (the state, first), notifications (one per host per step), the
/// alerts exchange.
pub struct Dispatch {
    rules: Arc<RuleSet>,
    history: Arc<crate::recording::History>,
    notifier: Option<Notifier>,
    channel: watch::Receiver<Option<lapin::Channel>>,
    events: IntCounterVec,
    announce_failures: prometheus::IntCounter,
    late: prometheus::IntCounter,
    /// The readings' exchange, sent with every event in [`FLEET_HEADER`].
    fleet: String,
}

impl Dispatch {
    /// Replaces `state` with the one kept in the store, if there is one. The store may still
    /// be opening when this consumer's turn starts: it is waited for, a bounded while.
    async fn restore(&self, state: &Mutex<AlertState>) {
        let Some(store) = self.history.store_within(RESTORE_WAIT).await else {
            return;
        };
        match store.alert_state().await {
            Ok(Some(json)) => match serde_json::from_str::<AlertState>(&json) {
                Ok(kept) => {
                    *state.lock().unwrap_or_else(|p| p.into_inner()) = kept;
                    tracing::info!("alerts: evaluating from the state kept in the store");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "alerts: the kept state is unreadable; starting afresh")
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "alerts: cannot read the kept state; starting afresh")
            }
        }
    }

    /// Keeps `state` in the store before anyone is told, so a restart never tells twice.
    async fn keep(&self, state: &Mutex<AlertState>) {
        let Some(store) = self.history.store() else {
            return;
        };
        let json = serde_json::to_string(&*state.lock().unwrap_or_else(|p| p.into_inner()));
        match json {
            Ok(json) => {
                if let Err(e) = store.keep_alert_state(&json).await {
                    tracing::warn!(error = %e, "alerts: state not kept; a restart may tell again");
                }
            }
            Err(e) => tracing::warn!(error = %e, "alerts: state not encodable"),
        }
    }

    async fn dispatch(
        &self,
        events: Vec<AlertEvent>,
        at: chrono::DateTime<chrono::Utc>,
        state: &Mutex<AlertState>,
    ) {
        if events.is_empty() {
            return;
        }
        self.keep(state).await;
        for event in &events {
            self.events
                .with_label_values(&[kind_label(event.kind)])
                .inc();
            self.announce(event).await;
        }
        if let Some(notifier) = &self.notifier {
            for batch in group_by_host(events) {
                let notice_events = batch
                    .events
                    .iter()
                    .map(|e| notice_event(&self.rules, e))
                    .collect();
                notifier.send(Notice::new(batch.host, at, notice_events));
            }
        }
    }

    /// Publishes one event to the topic exchange, persistent, and waits for the confirmation.
    async fn announce(&self, event: &AlertEvent) {
        let channel = self.channel.borrow().clone();
        let Some(channel) = channel else {
            self.announce_failures.inc();
            tracing::warn!(rule = %event.rule, host = %event.host, "alerts exchange unreachable; event not announced (notifications still go out)");
            return;
        };
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(e) => {
                self.announce_failures.inc();
                tracing::warn!(error = %e, "alert event not encodable");
                return;
            }
        };
        let key = format!("{}.{}", severity_label(event.severity), event.host);
        let mut headers = FieldTable::default();
        headers.insert(
            FLEET_HEADER.into(),
            lapin::types::AMQPValue::LongString(self.fleet.as_str().into()),
        );
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_headers(headers);
        let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, async {
            channel
                .basic_publish(
                    ALERTS_EXCHANGE.into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await?
                .await
        })
        .await;
        match confirmed {
            Ok(Ok(lapin::Confirmation::Ack(_) | lapin::Confirmation::NotRequested)) => {}
            other => {
                self.announce_failures.inc();
                tracing::warn!(rule = %event.rule, host = %event.host, outcome = ?other.map(|r| r.map(|_| ())), "alert event not confirmed by the broker");
            }
        }
    }
}

fn kind_label(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Fired => "fired",
        EventKind::Resolved => "resolved",
        EventKind::Reminder => "reminder",
    }
}

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The engine's event as a notification says it.
fn notice_event(rules: &RuleSet, e: &AlertEvent) -> NoticeEvent {
    let rule = rules.rule(&e.rule);
    let threshold = rule
        .map(|r| rules.effective(r, &e.host, e.item.as_deref()))
        .and_then(|r| match e.severity {
            Severity::Warning => r.warning,
            Severity::Critical => r.critical,
        })
        .map_or(f64::NAN, |l| l.level);
    let item = e.item.as_ref().and_then(|name| {
        let kind = match e.metric.item_kind()? {
            "mount" => notify::ItemKind::Mount,
            "sensor" => notify::ItemKind::Sensor,
            _ => notify::ItemKind::Interface,
        };
        Some(notify::Item {
            kind,
            name: name.clone(),
        })
    });
    let what = match &e.item {
        Some(item) => format!("{} {item}", e.rule),
        None => e.rule.clone(),
    };
    let summary = match e.kind {
        EventKind::Resolved => format!("{what} on {} is back to normal ({:.1})", e.host, e.value),
        _ => format!(
            "{what} on {} is {:.1} (level {:.1})",
            e.host, e.value, threshold
        ),
    };
    NoticeEvent {
        kind: match e.kind {
            EventKind::Fired => notify::EventKind::Firing,
            EventKind::Resolved => notify::EventKind::Resolved,
            EventKind::Reminder => notify::EventKind::Reminder,
        },
        rule: e.rule.clone(),
        item,
        severity: match e.severity {
            Severity::Warning => notify::Severity::Warning,
            Severity::Critical => notify::Severity::Critical,
        },
        value: e.value,
        peak: e.peak,
        threshold,
        started_at: e.started_at,
        ended_at: (e.kind == EventKind::Resolved).then_some(e.at),
        summary,
    }
}

/// Everything the evaluator needs.
pub struct Evaluator {
    pub rules: Arc<RuleSet>,
    /// Where the state is kept, once the store is open.
    pub history: Arc<crate::recording::History>,
    pub notifier: Option<Notifier>,
    pub broker: shared::settings::BrokerSettings,
    pub reconnect_cap: Duration,
    pub clock: SharedClock,
    pub registry: prometheus::Registry,
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

/// What every consumer shows of the alerts: what fires now and what ended lately, fed from the
/// alerts exchange.
pub struct AlertView {
    inner: Mutex<ViewState>,
    live: Arc<LiveView>,
}

#[derive(Default)]
struct ViewState {
    /// By (host, rule, item).
    active: BTreeMap<(String, String, String), AlertEvent>,
    recent: VecDeque<AlertEvent>,
}

impl AlertView {
    /// An empty view that tells the browsers of `live` about every change.
    pub fn new(live: Arc<LiveView>) -> Self {
        Self {
            inner: Mutex::new(ViewState::default()),
            live,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ViewState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one event in.
    pub fn apply(&self, event: AlertEvent) {
        let key = (
            event.host.clone(),
            event.rule.clone(),
            event.item.clone().unwrap_or_default(),
        );
        let frame = serde_json::json!({ "type": "alert", "event": &event }).to_string();
        {
            let mut state = self.lock();
            match event.kind {
                EventKind::Resolved => {
                    state.active.remove(&key);
                    state.recent.push_front(event);
                    state.recent.truncate(RECENT);
                }
                EventKind::Fired | EventKind::Reminder => {
                    state.active.insert(key, event);
                }
            }
        }
        self.live.broadcast(frame.into());
    }

    /// `{"active": [...], "recent": [...]}` as JSON.
    pub fn json(&self) -> serde_json::Value {
        let state = self.lock();
        serde_json::json!({
            "active": state.active.values().collect::<Vec<_>>(),
            "recent": state.recent.iter().collect::<Vec<_>>(),
        })
    }
}

/// Subscribes `view` to the alerts exchange (its own exclusive queue, every routing key)
/// until the task is dropped.
pub async fn watch_alerts(
    broker: shared::settings::BrokerSettings,
    reconnect_cap: Duration,
    view: Arc<AlertView>,
) {
    let (status, _) = watch::channel(BrokerState::connecting());
    let mut session = Subscription {
        fleet: broker.exchange.clone(),
        view,
    };
    shared::reconnect::supervise(
        &broker,
        "hostpulse-consumer-alert-view",
        reconnect_cap,
        &status,
        &mut session,
    )
    .await;
}

struct Subscription {
    /// This consumer's fleet (its readings' exchange): other fleets' events are not shown.
    fleet: String,
    view: Arc<AlertView>,
}

/// Whether an event delivered with `headers` is about `fleet`. An event without the header
/// (from a consumer before it was sent) is shown.
fn of_fleet(headers: Option<&FieldTable>, fleet: &str) -> bool {
    let named = headers.and_then(|h| h.inner().get(FLEET_HEADER));
    match named {
        None => true,
        Some(lapin::types::AMQPValue::LongString(name)) => name.as_bytes() == fleet.as_bytes(),
        Some(_) => false,
    }
}

impl shared::reconnect::Session for Subscription {
    type Open = Consumer;

    async fn open(&mut self, connection: &Connection, url: &str) -> Result<Consumer, String> {
        let prepared = async {
            let channel = connection.create_channel().await?;
            shared::broker::declare_exchange_of(&channel, ALERTS_EXCHANGE, ExchangeKind::Topic)
                .await?;
            let queue = channel
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            channel
                .queue_bind(
                    queue.name().as_str().into(),
                    ALERTS_EXCHANGE.into(),
                    "#".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            channel
                .basic_consume(
                    queue.name().as_str().into(),
                    "alert-view".into(),
                    // A view: nothing to redo if one is lost with the connection.
                    BasicConsumeOptions {
                        no_ack: true,
                        ..BasicConsumeOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
        };
        prepared
            .await
            .map_err(|e| format!("{url}: cannot watch the alerts exchange: {e}"))
    }

    async fn run(&mut self, mut consumer: Consumer) -> String {
        while let Some(delivery) = consumer.next().await {
            match delivery {
                Ok(delivery) if !of_fleet(delivery.properties.headers().as_ref(), &self.fleet) => {}
                Ok(delivery) => match serde_json::from_slice::<AlertEvent>(&delivery.data) {
                    Ok(event) => self.view.apply(event),
                    Err(e) => tracing::debug!(error = %e, "not an alert event; ignored"),
                },
                Err(e) => return e.to_string(),
            }
        }
        "the broker cancelled the alert view's consumer".to_owned()
    }
}

/// `hostpulse_alert_active{rule,host,item,severity}`, read from the view at scrape time.
pub struct AlertCollector {
    view: Arc<AlertView>,
    desc: Vec<Desc>,
}

fn active_gauge() -> prometheus::Result<GaugeVec> {
    GaugeVec::new(
        Opts::new("alert_active", "1 for every alert firing now.").namespace(NAMESPACE),
        &["rule", "host", "item", "severity"],
    )
}

impl AlertCollector {
    /// A collector over `view`.
    pub fn new(view: Arc<AlertView>) -> prometheus::Result<Self> {
        let desc = active_gauge()?.desc().into_iter().cloned().collect();
        Ok(Self { view, desc })
    }
}

impl Collector for AlertCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.desc.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(gauge) = active_gauge() else {
            return Vec::new();
        };
        for event in self.view.lock().active.values() {
            gauge
                .with_label_values(&[
                    event.rule.as_str(),
                    event.host.as_str(),
                    event.item.as_deref().unwrap_or(""),
                    severity_label(event.severity),
                ])
                .set(1.0);
        }
        gauge.collect()
    }
}
