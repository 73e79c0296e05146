//! Where the evaluator's events go, in this order: the state into the store (so a restart
//! never tells twice), this consumer's own [`super::view::AlertView`] (so what it made is shown
//! even when the broker cannot carry it), the [`super::announce::Announcer`] for the alerts
//! exchange `hostpulse.alerts` (where other systems and every consumer's view read them), and
//! the notifications (one per host per step; they do not need the broker).

use super::announce::Announcer;
use super::notify::{self, Notice, NoticeEvent, Notifier};
use super::view::AlertView;
use super::{group_by_host, AlertEvent, AlertState, EventKind, Reason, RuleSet, Severity};
use prometheus::IntCounterVec;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a starting evaluator waits for the store to open to read the state kept there.
const RESTORE_WAIT: Duration = Duration::from_secs(10);

/// Where events go: the store (the state, first), this consumer's view, the alerts exchange,
/// notifications (one per host per step).
pub struct Dispatch {
    pub(super) rules: Arc<RuleSet>,
    pub(super) history: Arc<crate::history::recorder::History>,
    pub(super) notifier: Option<Notifier>,
    pub(super) view: Arc<AlertView>,
    pub(super) announcer: Arc<Announcer>,
    pub(super) events: IntCounterVec,
    pub(super) late: prometheus::IntCounter,
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
                tracing::warn!(error = %e, "history store: cannot read the kept alert state; starting afresh")
            }
        }
    }

    /// Counts `event`, shows it on this consumer (its echo from the exchange is not shown
    /// twice) and hands it to the announcer.
    fn show_and_announce(&self, event: &AlertEvent) {
        self.events.with_label_values(&[event.kind.label()]).inc();
        self.view.apply(event.clone());
        self.announcer.announce(event.clone());
    }

    /// The `pipeline` alert's event, with `summary` as its notification's text (it says what
    /// the broker's state is). Not kept in the store: it is this consumer's own view of its
    /// pipeline.
    pub(super) fn dispatch_pipeline(
        &self,
        event: AlertEvent,
        summary: String,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        match event.kind {
            EventKind::Resolved => tracing::info!(fleet = %event.host, "{summary}"),
            _ => tracing::warn!(fleet = %event.host, "{summary}"),
        }
        self.show_and_announce(&event);
        if let Some(notifier) = &self.notifier {
            let mut told = notice_event(&self.rules, &event);
            told.summary = summary;
            told.threshold = super::canary::LATE_AFTER.as_secs_f64();
            notifier.send(Notice::new(event.host.clone(), at, vec![told]));
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
                    tracing::warn!(error = %e, "history store: the alert state was not kept; a restart may tell again");
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
            self.show_and_announce(event);
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
