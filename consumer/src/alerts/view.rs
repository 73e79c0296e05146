//! What every consumer shows of the alerts: fed from the alerts exchange, it keeps what fires
//! now and what ended lately for `/api/alerts`, the page (each change is broadcast to the
//! browsers) and `hostpulse_alert_active`. While a host is down, its other active alerts are
//! shown as `held` (they describe the host as it was, not as it is).

use super::{AlertEvent, EventKind, Metric, ALERTS_EXCHANGE, FLEET_HEADER};
use crate::live::LiveView;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer, ExchangeKind};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Opts};
use shared::broker::BrokerState;
use shared::metrics::NAMESPACE;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Resolved alerts kept for `/api/alerts` and the page.
const RECENT: usize = 200;
/// Events remembered to recognise one shown twice: the evaluating consumer shows its events
/// at once and gets them back from the alerts exchange (maybe much later, after an outage).
const SEEN: usize = 4096;

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
    /// The latest events taken in, by what makes one unique.
    seen: VecDeque<Seen>,
}

/// What tells one event from another (its figures aside: they travel as JSON).
#[derive(PartialEq)]
struct Seen {
    kind: EventKind,
    rule: String,
    host: String,
    item: Option<String>,
    started_at: chrono::DateTime<chrono::Utc>,
    at: chrono::DateTime<chrono::Utc>,
}

impl Seen {
    fn of(event: &AlertEvent) -> Self {
        Self {
            kind: event.kind,
            rule: event.rule.clone(),
            host: event.host.clone(),
            item: event.item.clone(),
            started_at: event.started_at,
            at: event.at,
        }
    }
}

/// How an active alert is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownAs {
    /// Firing now.
    Firing,
    /// Its host is down: the alert is held under the down alert, not current.
    Held,
}

impl ShownAs {
    /// As `/api/alerts` and `hostpulse_alert_active{state}` write it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Held => "held",
        }
    }
}

impl ViewState {
    /// Every active alert with how it is shown: held when another alert of its host says
    /// the host is down.
    fn shown(&self) -> Vec<(&AlertEvent, ShownAs)> {
        let down: std::collections::BTreeSet<&str> = self
            .active
            .values()
            .filter(|e| e.metric == Metric::SilentIntervals)
            .map(|e| e.host.as_str())
            .collect();
        self.active
            .values()
            .map(|e| {
                let held = e.metric != Metric::SilentIntervals && down.contains(e.host.as_str());
                (e, if held { ShownAs::Held } else { ShownAs::Firing })
            })
            .collect()
    }
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

    /// Takes one event in; one already taken (its echo from the alerts exchange) is ignored.
    pub fn apply(&self, event: AlertEvent) {
        {
            let mut state = self.lock();
            let seen = Seen::of(&event);
            if state.seen.contains(&seen) {
                return;
            }
            state.seen.push_back(seen);
            if state.seen.len() > SEEN {
                state.seen.pop_front();
            }
        }
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

    /// `{"active": [...], "recent": [...]}` as JSON; each active alert with its `state`
    /// (`firing`, or `held` while its host is down).
    pub fn json(&self) -> serde_json::Value {
        let state = self.lock();
        let active: Vec<serde_json::Value> = state
            .shown()
            .into_iter()
            .map(|(event, shown)| {
                let mut value = serde_json::to_value(event).unwrap_or_default();
                if let Some(object) = value.as_object_mut() {
                    object.insert("state".into(), shown.label().into());
                }
                value
            })
            .collect();
        serde_json::json!({
            "active": active,
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

impl shared::reconnect::Session<shared::reconnect::Lapin> for Subscription {
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

/// `hostpulse_alert_active{rule,host,item,severity,state}`, read from the view at scrape time.
pub struct AlertCollector {
    view: Arc<AlertView>,
    desc: Vec<Desc>,
}

fn active_gauge() -> prometheus::Result<GaugeVec> {
    GaugeVec::new(
        Opts::new(
            "alert_active",
            "1 for every active alert; state is firing, or held while its host is down.",
        )
        .namespace(NAMESPACE),
        &["rule", "host", "item", "severity", "state"],
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
        for (event, shown) in self.view.lock().shown() {
            gauge
                .with_label_values(&[
                    event.rule.as_str(),
                    event.host.as_str(),
                    event.item.as_deref().unwrap_or(""),
                    event.severity.label(),
                    shown.label(),
                ])
                .set(1.0);
        }
        gauge.collect()
    }
}
