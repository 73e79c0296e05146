//! Where the evaluator's events go, in this order: the state into the store (so a restart
//! never tells twice), the notifications (one per host per step), the alerts exchange
//! `hostpulse.alerts` (routing key `<severity>.<host>`), where other systems and every
//! consumer's [`super::view::AlertView`] read them.

use super::notify::{self, Notice, NoticeEvent, Notifier};
use super::{
    group_by_host, AlertEvent, AlertState, EventKind, Reason, RuleSet, Severity, ALERTS_EXCHANGE,
    FLEET_HEADER,
};
use lapin::options::BasicPublishOptions;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use prometheus::IntCounterVec;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a starting evaluator waits for the store to open to read the state kept there.
const RESTORE_WAIT: Duration = Duration::from_secs(10);
/// How long a publish to the alerts exchange may wait for its confirmation.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Where events go: the store (the state, first), notifications (one per host per step), the
/// alerts exchange.
pub struct Dispatch {
    pub(super) rules: Arc<RuleSet>,
    pub(super) history: Arc<crate::history::recorder::History>,
    pub(super) notifier: Option<Notifier>,
    pub(super) channel: watch::Receiver<Option<lapin::Channel>>,
    pub(super) events: IntCounterVec,
    pub(super) announce_failures: prometheus::IntCounter,
    pub(super) late: prometheus::IntCounter,
    /// The readings' exchange, sent with every event in [`FLEET_HEADER`].
    pub(super) fleet: String,
}

impl Dispatch {
    /// Replaces `state` with the one kept in the store, if there is one. The store may still
    /// be opening when this consumer's turn starts: it is waited for, a bounded while.
    pub(super) async fn restore(&self, state: &Mutex<AlertState>) {
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

    pub(super) async fn dispatch(
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
            self.events.with_label_values(&[event.kind.label()]).inc();
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
        let key = format!("{}.{}", event.severity.label(), event.host);
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
    let summary = match (e.kind, e.reason) {
        (EventKind::Resolved, Some(Reason::NoData)) => {
            format!("{what} on {}: no data, the host is silent", e.host)
        }
        (EventKind::Resolved, None) => {
            format!("{what} on {} is back to normal ({:.1})", e.host, e.value)
        }
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
        reason: e.reason.map(|r| r.label().to_owned()),
    }
}
