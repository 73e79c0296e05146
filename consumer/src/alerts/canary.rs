//! The canary: how the evaluator tells a silent host from a silent pipeline.
//!
//! Every second the evaluating consumer publishes a small message of its own through the
//! readings' exchange; it comes back through the alerts queue like any reading. A host is
//! judged silent only up to the time of the last canary that came back (readings published
//! before it have arrived), so a broker that takes or delivers nothing holds `host_down`
//! instead of firing it for every host. When no canary has come back for [`LATE_AFTER`], one
//! alert fires about the pipeline itself (rule [`PIPELINE_RULE`]), notified directly; when
//! canaries come back, every host not already down gets its own allowance of silent intervals
//! (the `host_down` level) from that moment to be heard again.
//!
//! On the wire a canary is `{"canary":{"from":…,"seq":…,"sent_at":…}}` with the AMQP type
//! [`CANARY_TYPE`], not persistent, expiring after [`EXPIRES`]. Consumers of this version skip
//! it on every queue before parsing (it is never a host: not on the page, in the history or
//! the metrics). Older consumers refuse it as a malformed reading (counted under
//! `hostpulse_messages_rejected_total{reason="malformed"}`): it has neither a reading's fields
//! nor the original publisher's.

use super::engine::SilenceWindow;
use super::{AlertEvent, EventKind, Metric, Severity};
use chrono::{DateTime, Utc};
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use serde::{Deserialize, Serialize};
use shared::broker::BrokerState;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// The AMQP `type` of a canary.
pub const CANARY_TYPE: &str = "hostpulse.canary";
/// The rule name of the alert about the pipeline itself.
pub const PIPELINE_RULE: &str = "pipeline";
/// How often a canary is sent.
pub const CANARY_EVERY: Duration = Duration::from_secs(1);
/// No canary back for this long: the pipeline is late, and the `pipeline` alert fires.
pub const LATE_AFTER: Duration = Duration::from_secs(5);
/// Canaries remembered while none comes back (an hour's worth).
const MAX_OUTSTANDING: usize = 3600;
/// A canary left in a queue nobody reads (a history queue kept for a week) expires after this
/// long instead of piling up.
const EXPIRES: Duration = Duration::from_secs(10);

/// One canary as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    /// The evaluating consumer that sent it (random per process).
    pub from: String,
    /// Increasing per sender.
    pub seq: u64,
    /// The sender's clock when it was sent.
    pub sent_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    canary: Canary,
}

impl Canary {
    /// The message body.
    pub fn to_body(&self) -> Vec<u8> {
        // A struct of a string, a number and a time always encodes.
        serde_json::to_vec(&Wire {
            canary: self.clone(),
        })
        .unwrap_or_default()
    }

    /// A canary from a message body, `None` when it is not one.
    pub fn from_body(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Wire>(body).ok().map(|w| w.canary)
    }

    /// The AMQP properties a canary is sent with.
    pub fn properties() -> BasicProperties {
        BasicProperties::default()
            .with_content_type("application/json".into())
            .with_type(CANARY_TYPE.into())
            .with_app_id(crate::intake::queue::APP_ID.into())
            // Transient: a canary lost with a broker restart is what it is there to notice.
            .with_delivery_mode(1)
            .with_expiration(EXPIRES.as_millis().to_string().as_str().into())
    }
}

/// Whether a delivery with `properties` is a canary (checked before any parsing).
pub fn is_canary(properties: &BasicProperties) -> bool {
    properties
        .kind()
        .as_ref()
        .is_some_and(|kind| kind.as_str() == CANARY_TYPE)
}

/// A random name for this process's canaries.
pub fn sender_id() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    format!("{random:016x}")
}

/// The last canary of ours that came back.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Heard {
    seq: u64,
    sent_at: DateTime<Utc>,
    heard_at: DateTime<Utc>,
}

/// The `pipeline` alert while it fires.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Firing {
    started_at: DateTime<Utc>,
    peak: f64,
}

/// What a turn of evaluation knows of its canaries: a pure function of what was sent, what
/// came back and the time passed in.
#[derive(Debug, Clone)]
pub struct CanaryWatch {
    from: String,
    /// Where the alert's events say it is (the fleet: the readings' exchange).
    fleet: String,
    next_seq: u64,
    /// When this turn of evaluation started: nothing is known of the pipeline before.
    since: DateTime<Utc>,
    heard: Option<Heard>,
    /// Canaries sent and not back yet (seq, sent at), oldest first: the pipeline is as late
    /// as the oldest. Lateness is counted from sending, not from the last return, so a clock
    /// that steps forward is not a late pipeline.
    outstanding: VecDeque<(u64, DateTime<Utc>)>,
    /// When canaries came back after being late.
    recovered_at: Option<DateTime<Utc>>,
    firing: Option<Firing>,
}

/// What one look at the canaries found.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// How far silence may be judged now.
    pub window: SilenceWindow,
    /// The `pipeline` alert fired or resolved.
    pub event: Option<AlertEvent>,
    /// Seconds the oldest canary not back yet has been out.
    pub late_secs: f64,
}

impl CanaryWatch {
    /// A watch for canaries sent as `from`, about `fleet`, from `now`.
    pub fn new(from: String, fleet: String, now: DateTime<Utc>) -> Self {
        Self {
            from,
            fleet,
            next_seq: 0,
            since: now,
            heard: None,
            outstanding: VecDeque::new(),
            recovered_at: None,
            firing: None,
        }
    }

    /// The next canary to send; it counts as sent even if it cannot be (no connection).
    pub fn next(&mut self, now: DateTime<Utc>) -> Canary {
        self.next_seq += 1;
        // Bounded; the oldest, which says how late the pipeline is, stays.
        if self.outstanding.len() < MAX_OUTSTANDING {
            self.outstanding.push_back((self.next_seq, now));
        }
        Canary {
            from: self.from.clone(),
            seq: self.next_seq,
            sent_at: now,
        }
    }

    /// A canary came back at `now`. Another consumer's (the queue is shared) or an older one
    /// is ignored; returns whether it was news.
    pub fn heard(&mut self, canary: &Canary, now: DateTime<Utc>) -> bool {
        if canary.from != self.from || self.heard.is_some_and(|h| h.seq >= canary.seq) {
            return false;
        }
        self.heard = Some(Heard {
            seq: canary.seq,
            sent_at: canary.sent_at,
            heard_at: now,
        });
        // The queue keeps order: every canary sent before this one is back or lost.
        self.outstanding.retain(|(seq, _)| *seq > canary.seq);
        true
    }

    /// A new turn of evaluation starts at `now` (this consumer became the active evaluator):
    /// canaries sent before it may have gone to the consumer active then.
    pub fn restart(&mut self, now: DateTime<Utc>) {
        self.since = now;
        self.heard = None;
        self.outstanding.clear();
    }

    /// Whether the `pipeline` alert fires now.
    pub fn firing(&self) -> bool {
        self.firing.is_some()
    }

    /// Looks at the canaries at `now`.
    pub fn judge(&mut self, now: DateTime<Utc>) -> Judgement {
        let late_secs = self.late_secs(now);
        let late = late_secs >= LATE_AFTER.as_secs_f64();
        let event = match (self.firing, late) {
            (None, true) => {
                let firing = Firing {
                    started_at: now,
                    peak: late_secs,
                };
                self.firing = Some(firing);
                Some(self.event(EventKind::Fired, firing, late_secs, now))
            }
            (Some(mut firing), true) => {
                firing.peak = firing.peak.max(late_secs);
                self.firing = Some(firing);
                None
            }
            (Some(firing), false) => {
                self.firing = None;
                self.recovered_at = Some(now);
                Some(self.event(EventKind::Resolved, firing, late_secs, now))
            }
            (None, false) => None,
        };
        Judgement {
            window: SilenceWindow {
                // Nothing back yet in this turn: nothing is known past its start.
                heard_until: Some(self.heard.map_or(self.since, |h| h.sent_at)),
                counted_from: self.recovered_at,
            },
            event,
            late_secs,
        }
    }

    /// This consumer's turn ended while the alert fired (another consumer evaluates now, with
    /// a canary of its own): the alert is resolved here.
    pub fn hand_over(&mut self, now: DateTime<Utc>) -> Option<AlertEvent> {
        let firing = self.firing.take()?;
        let late_secs = self.late_secs(now);
        self.outstanding.clear();
        Some(self.event(EventKind::Resolved, firing, late_secs, now))
    }

    fn late_secs(&self, now: DateTime<Utc>) -> f64 {
        self.outstanding
            .front()
            .map_or(0.0, |(_, sent)| secs(now - *sent).max(0.0))
    }

    fn event(&self, kind: EventKind, firing: Firing, value: f64, at: DateTime<Utc>) -> AlertEvent {
        AlertEvent {
            kind,
            rule: PIPELINE_RULE.to_owned(),
            // Seconds without a canary: the silent intervals of a once-a-second sender.
            metric: Metric::SilentIntervals,
            host: self.fleet.clone(),
            item: None,
            severity: Severity::Critical,
            previous_severity: None,
            reason: None,
            value,
            peak: firing.peak.max(value),
            started_at: firing.started_at,
            at,
        }
    }
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// What a person on call reads about the broker in the `pipeline` alert.
pub fn describe_broker(state: &BrokerState, late_secs: f64, now: DateTime<Utc>) -> String {
    let node = state.url.as_deref().unwrap_or("the broker");
    let for_secs = (now - state.since).num_seconds().max(0);
    if state.connected {
        format!(
            "{node} is connected (for {for_secs} s) but has delivered none of the evaluator's \
             canaries for {late_secs:.0} s: it takes or delivers no messages (frozen, blocked \
             by a resource alarm, or the alerts queue is stuck)"
        )
    } else {
        let why = state.last_error.as_deref().unwrap_or("not connected yet");
        format!("{node} is unreachable (for {for_secs} s): {why}")
    }
}

/// The canaries of the evaluating consumer: sends one each tick on a channel of its own
/// (its own connection), hears them back from the alerts queue.
pub struct Canaries {
    watch: Mutex<CanaryWatch>,
    channel: watch::Receiver<Option<lapin::Channel>>,
    /// The canary connection's state, for the alert's text.
    pub state: watch::Receiver<BrokerState>,
    fleet: String,
    /// `hostpulse_pipeline_canary_late_seconds`.
    late: prometheus::Gauge,
}

impl Canaries {
    /// Canaries on a channel to `fleet` (the readings' exchange).
    pub fn new(
        watch: CanaryWatch,
        channel: watch::Receiver<Option<lapin::Channel>>,
        state: watch::Receiver<BrokerState>,
        fleet: String,
        late: prometheus::Gauge,
    ) -> Self {
        Self {
            watch: Mutex::new(watch),
            channel,
            state,
            fleet,
            late,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CanaryWatch> {
        self.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends the next canary, without waiting: a broker that does not answer must not hold
    /// up the evaluator's clock.
    pub fn send(&self, now: DateTime<Utc>) {
        // Counted as sent even without a connection: the pipeline is late all the same.
        let canary = self.lock().next(now);
        let Some(channel) = self.channel.borrow().clone() else {
            return;
        };
        let exchange = self.fleet.clone();
        tokio::spawn(async move {
            // Awaited to the end (never dropped half-way, which would leave lapin holding the
            // confirmation): a frozen broker keeps a few of these waiting until it answers or
            // the connection's heartbeat gives up on it.
            let sent = channel
                .basic_publish(
                    exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &canary.to_body(),
                    Canary::properties(),
                )
                .await;
            // Whether the broker confirmed it matters little: its return is the proof.
            match sent {
                Ok(confirmation) => {
                    let _ = confirmation.await;
                }
                Err(e) => tracing::debug!(error = %e, "canary not sent"),
            }
        });
    }

    /// A canary came back at `now`.
    pub fn heard(&self, body: &[u8], now: DateTime<Utc>) {
        if let Some(canary) = Canary::from_body(body) {
            self.lock().heard(&canary, now);
        }
    }

    /// This consumer became the active evaluator at `now`.
    pub fn restart(&self, now: DateTime<Utc>) {
        self.lock().restart(now);
    }

    /// Looks at the canaries at `now`; an event comes with the text for its notification.
    pub fn judge(&self, now: DateTime<Utc>) -> (SilenceWindow, Option<(AlertEvent, String)>) {
        let judgement = self.lock().judge(now);
        self.late.set(judgement.late_secs);
        let told = judgement.event.map(|event| {
            let text = self.summary(&event, judgement.late_secs, now);
            (event, text)
        });
        (judgement.window, told)
    }

    /// This consumer's turn ended: the alert, if it fired, is resolved here.
    pub fn hand_over(&self, now: DateTime<Utc>) -> Option<(AlertEvent, String)> {
        let event = self.lock().hand_over(now)?;
        let text = format!(
            "the broker answers again; another consumer of fleet {} evaluates now, with a canary of its own",
            self.fleet
        );
        Some((event, text))
    }

    fn summary(&self, event: &AlertEvent, late_secs: f64, now: DateTime<Utc>) -> String {
        let broker = describe_broker(&self.state.borrow(), late_secs, now);
        match event.kind {
            EventKind::Resolved => format!(
                "the pipeline of fleet {} delivers again (it was stalled for {:.0} s); hosts not \
                 heard since get their usual allowance from now before host_down",
                self.fleet, event.peak
            ),
            _ => format!(
                "the pipeline of fleet {} is stalled: host_down is held for every host. {broker}",
                self.fleet
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{AlertState, RuleSet};
    use crate::clock::{Clock, ManualClock};
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn reading(host: &str) -> shared::reading::Reading {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/reading.json"))
                .expect("fixture");
        v["host"] = host.into();
        serde_json::from_value(v).expect("a reading")
    }

    /// One second of the evaluator: a canary sent (and, when the pipeline works, back at
    /// once), hosts that publish heard, the canaries judged, the engine ticked.
    struct Evaluator {
        clock: std::sync::Arc<ManualClock>,
        watch: CanaryWatch,
        state: AlertState,
        rules: RuleSet,
    }

    impl Evaluator {
        fn new() -> Self {
            let clock = ManualClock::new(start());
            Self {
                watch: CanaryWatch::new("me".into(), "fleet".into(), clock.now()),
                clock,
                state: AlertState::new(),
                rules: RuleSet::defaults().expect("the defaults parse"),
            }
        }

        /// Advances one second; `flowing`: the broker delivers; `hosts`: who publishes.
        fn second(&mut self, flowing: bool, hosts: &[&str]) -> Vec<AlertEvent> {
            self.clock.advance(Duration::from_secs(1));
            let now = self.clock.now();
            let canary = self.watch.next(now);
            let mut events = Vec::new();
            if flowing {
                for host in hosts {
                    let found = self
                        .state
                        .on_reading(
                            &self.rules,
                            &reading(host),
                            now,
                            Some(Duration::from_secs(1)),
                        )
                        .expect("in order");
                    events.extend(found);
                }
                self.watch
                    .heard(&canary, now + chrono::Duration::milliseconds(5));
            }
            let judgement = self.watch.judge(now);
            events.extend(judgement.event);
            self.state.judge_silence(judgement.window);
            events.extend(self.state.on_tick(&self.rules, now));
            events
        }
    }

    fn named<'a>(events: &'a [AlertEvent], rule: &str) -> Vec<&'a AlertEvent> {
        events.iter().filter(|e| e.rule == rule).collect()
    }

    #[test]
    fn a_stalled_pipeline_is_one_alert_and_holds_host_down_then_hosts_get_their_grace() {
        let mut eval = Evaluator::new();
        let mut events = Vec::new();
        for _ in 0..10 {
            events.extend(eval.second(true, &["a", "b", "gone"]));
        }
        assert!(events.is_empty(), "{events:#?}");

        // The broker freezes for 15 s: nothing arrives, no canary either.
        let frozen_at = eval.clock.now();
        for _ in 0..15 {
            events.extend(eval.second(false, &[]));
        }
        assert!(named(&events, "host_down").is_empty(), "{events:#?}");
        let pipeline = named(&events, PIPELINE_RULE);
        assert_eq!(pipeline.len(), 1, "{events:#?}");
        assert_eq!(pipeline[0].kind, EventKind::Fired);
        assert_eq!(pipeline[0].host, "fleet");
        let fired_after = pipeline[0].at - frozen_at;
        assert!(
            fired_after >= chrono::Duration::from_std(LATE_AFTER).expect("short")
                && fired_after <= chrono::Duration::seconds(7),
            "fired {fired_after} after the freeze"
        );

        // Back: "a" and "b" publish again, "gone" stopped during the freeze.
        events.clear();
        let back_at = eval.clock.now() + chrono::Duration::seconds(1);
        let mut first_down = None;
        for _ in 0..10 {
            let found = eval.second(true, &["a", "b"]);
            if first_down.is_none() && !named(&found, "host_down").is_empty() {
                first_down = Some(eval.clock.now());
            }
            events.extend(found);
        }
        let pipeline = named(&events, PIPELINE_RULE);
        assert_eq!(pipeline.len(), 1, "{events:#?}");
        assert_eq!(pipeline[0].kind, EventKind::Resolved);
        let down = named(&events, "host_down");
        assert_eq!(down.len(), 1, "only the host that stopped: {down:#?}");
        assert_eq!(down[0].host, "gone");
        // Not before its three intervals of grace from the pipeline's return.
        let down_after = first_down.expect("gone is down") - back_at;
        assert!(
            down_after >= chrono::Duration::seconds(3)
                && down_after <= chrono::Duration::seconds(5),
            "gone judged down {down_after} after the return"
        );
    }

    #[test]
    fn a_host_that_stops_while_the_pipeline_works_is_down_within_its_intervals_and_a_canary() {
        let mut eval = Evaluator::new();
        for _ in 0..5 {
            assert!(eval.second(true, &["a", "b"]).is_empty());
        }
        let stopped_at = eval.clock.now();
        let mut down_at = None;
        for _ in 0..8 {
            let events = eval.second(true, &["a"]);
            assert!(named(&events, PIPELINE_RULE).is_empty(), "{events:#?}");
            if !named(&events, "host_down").is_empty() {
                down_at = Some(eval.clock.now());
                break;
            }
        }
        let after = down_at.expect("b is down") - stopped_at;
        // Three 1 s intervals, plus at most one canary interval of proof.
        assert!(
            after >= chrono::Duration::seconds(3) && after <= chrono::Duration::seconds(5),
            "b down {after} after its last reading"
        );
    }

    #[test]
    fn another_consumers_canary_or_an_old_one_proves_nothing() {
        let now = start();
        let mut watch = CanaryWatch::new("me".into(), "fleet".into(), now);
        let mine = watch.next(now);
        let theirs = Canary {
            from: "them".into(),
            ..mine.clone()
        };
        assert!(!watch.heard(&theirs, now));
        assert!(watch.heard(&mine, now));
        assert!(!watch.heard(&mine, now), "a redelivery is not news");
        // A clock that steps forward is not a late pipeline: nothing is out.
        let later = now + chrono::Duration::seconds(30);
        assert_eq!(watch.judge(later).event, None);
        let lost = watch.next(now + chrono::Duration::seconds(1));
        assert!(!watch.heard(
            &Canary {
                from: "them".into(),
                ..lost
            },
            later
        ));
        let judged = watch.judge(later);
        assert!(judged
            .event
            .is_some_and(|e| e.kind == EventKind::Fired && e.value >= 29.0));
        assert_eq!(judged.window.heard_until, Some(now));
        // Handed over while firing: resolved here, once.
        assert!(watch
            .hand_over(later)
            .is_some_and(|e| e.kind == EventKind::Resolved));
        assert!(watch.hand_over(later).is_none());
    }

    #[test]
    fn canaries_sent_while_standing_by_do_not_make_a_new_turn_late() {
        let now = start();
        let mut watch = CanaryWatch::new("me".into(), "fleet".into(), now);
        // A minute of canaries that went to the consumer active then.
        for i in 0..60 {
            watch.next(now + chrono::Duration::seconds(i));
        }
        let turn = now + chrono::Duration::seconds(60);
        watch.restart(turn);
        let judged = watch.judge(turn);
        assert_eq!(judged.event, None);
        assert_eq!(judged.late_secs, 0.0);
        assert_eq!(judged.window.heard_until, Some(turn));
    }

    #[test]
    fn the_wire_shape_round_trips_and_is_refused_as_a_reading_by_older_consumers() {
        let canary = Canary {
            from: "abc".into(),
            seq: 7,
            sent_at: start(),
        };
        let body = canary.to_body();
        assert_eq!(Canary::from_body(&body), Some(canary));
        assert!(is_canary(&Canary::properties()));
        assert!(!is_canary(&BasicProperties::default()));
        // What an older consumer does with it: neither a reading nor the original
        // publisher's message, so refused (and counted), never shown as a host.
        let refused = crate::intake::parse::ingest(
            &body,
            &crate::intake::legacy::SenderHints {
                header_host: None,
                app_id: Some(crate::intake::queue::APP_ID.into()),
            },
            start(),
            crate::intake::parse::IngestLimits {
                max_message_bytes: 4096,
            },
        )
        .expect_err("not a reading");
        assert_eq!(refused.reason(), "malformed");
        assert!(Canary::from_body(include_bytes!("../../tests/fixtures/reading.json")).is_none());
    }
}
