//! The hub: the latest readings per host, a short history of each, and the broadcast of every
//! reading to every WebSocket client. A reading's frame is built once and shared by all.

use crate::metrics::ConsumerMetrics;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use shared::broker::BrokerState;
use shared::reading::{Reading, ReadingError};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;

/// A text frame for the browsers, cheap to clone.
pub type Frame = ByteString;

/// What the hub pushes to every WebSocket session.
#[derive(Debug, Clone)]
pub enum Push {
    /// A frame to send as it is (built once, shared by every client).
    Frame(Frame),
    /// The consumer is shutting down: close with a close frame.
    Close,
}

/// Frames a client may fall behind by before it is dropped as too slow.
pub const CLIENT_BACKLOG: usize = 1024;

/// Why a message from the broker was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("message of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Reading(#[from] ReadingError),
    #[error("already tracking {0} hosts; a new host is refused")]
    TooManyHosts(usize),
}

impl Rejected {
    /// A short, fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejected::TooLarge { .. } => "too_large",
            Rejected::Reading(e) => e.reason(),
            Rejected::TooManyHosts(_) => "too_many_hosts",
        }
    }
}

/// Limits the hub keeps to.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    pub history_len: usize,
    pub max_hosts: usize,
    pub max_message_bytes: usize,
    pub stale_after: Duration,
}

/// One stored reading: what sorting needs, and the JSON exactly as received.
struct Stored {
    collected_at: DateTime<Utc>,
    json: ByteString,
}

/// What the hub holds for one host.
struct Host {
    /// In time order, at most `history_len`.
    history: VecDeque<Stored>,
    /// The newest reading by `collected_at` (a back-filled one does not replace it), parsed
    /// and exactly as received.
    latest: Reading,
    latest_json: ByteString,
    /// When this consumer last received a reading from the host.
    last_seen: DateTime<Utc>,
}

/// A host's latest reading and whether it is still publishing, for metrics.
pub struct HostSnapshot {
    pub reading: Reading,
    pub last_seen: DateTime<Utc>,
    pub stale: bool,
}

struct State {
    hosts: BTreeMap<String, Host>,
    broker: BrokerState,
    /// The snapshot as last built, shared by every client that connects before anything
    /// changes: a thousand pages reconnecting after a restart cost one snapshot, not a
    /// thousand. Cleared by every change.
    snapshot: Option<Frame>,
}

/// Shared by the broker task (writer) and every WebSocket session (readers).
pub struct Hub {
    limits: HubLimits,
    state: Mutex<State>,
    pushes: broadcast::Sender<Push>,
    metrics: ConsumerMetrics,
    /// True once the consumer shuts down: sessions that start now close at once.
    closing: std::sync::atomic::AtomicBool,
}

impl Hub {
    /// An empty hub that counts into `metrics`.
    pub fn new(limits: HubLimits, metrics: ConsumerMetrics) -> Self {
        let (pushes, _) = broadcast::channel(CLIENT_BACKLOG);
        Self {
            limits,
            state: Mutex::new(State {
                hosts: BTreeMap::new(),
                broker: BrokerState::connecting(),
                snapshot: None,
            }),
            pushes,
            metrics,
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Asks every WebSocket session to close (with a close frame) for shutdown. It travels
    /// with the frames, so the sessions' hot loop waits on one channel only.
    pub fn close_all(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.pushes.send(Push::Close);
    }

    /// True once [`Self::close_all`] was called.
    pub fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The metrics this hub counts into.
    pub fn metrics(&self) -> &ConsumerMetrics {
        &self.metrics
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep serving it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks a message from the broker, stores it and sends it to every client.
    /// `host_hint` names the host of a legacy message that names none (from its AMQP
    /// properties). Returns the accepted reading.
    pub fn accept(&self, body: &[u8], host_hint: Option<&str>) -> Result<Reading, Rejected> {
        self.metrics.received.inc();
        let outcome = self.store(body, host_hint);
        match &outcome {
            Ok(reading) => {
                let age = (Utc::now() - reading.collected_at)
                    .num_microseconds()
                    .unwrap_or(0);
                self.metrics.reading_age.observe(age.max(0) as f64 / 1e6);
            }
            Err(rejected) => self
                .metrics
                .rejected
                .with_label_values(&[rejected.reason()])
                .inc(),
        }
        outcome
    }

    fn store(&self, body: &[u8], host_hint: Option<&str>) -> Result<Reading, Rejected> {
        if body.len() > self.limits.max_message_bytes {
            return Err(Rejected::TooLarge {
                size: body.len(),
                limit: self.limits.max_message_bytes,
            });
        }
        let (reading, json) = match Reading::from_json(body) {
            Ok(reading) => {
                // serde_json accepted it, so it is UTF-8; the check costs one pass, no panic.
                let text = std::str::from_utf8(body).map_err(|_| ReadingError::Invalid {
                    field: "body",
                    problem: "not UTF-8",
                })?;
                (reading, ByteString::from(text.trim()))
            }
            Err(ReadingError::Malformed(e)) => match crate::legacy::to_reading(body, host_hint) {
                // The original's format is shown converted: the page knows only v1.
                Some(reading) => {
                    reading.validate()?;
                    let text = serde_json::to_string(&reading).map_err(ReadingError::from)?;
                    (reading, ByteString::from(text))
                }
                None => return Err(ReadingError::Malformed(e).into()),
            },
            Err(e) => return Err(e.into()),
        };
        let frame = Frame::from(format!("{{\"type\":\"reading\",\"data\":{}}}", &*json));
        let stored = Stored {
            collected_at: reading.collected_at,
            json: json.clone(),
        };
        let now = Utc::now();
        let mut state = self.lock();
        let hosts = state.hosts.len();
        match state.hosts.get_mut(&reading.host) {
            Some(host) => {
                // Readings back-filled after an outage arrive late: keep each host's history
                // in time order, not arrival order.
                let at = host
                    .history
                    .partition_point(|s| s.collected_at <= reading.collected_at);
                host.history.insert(at, stored);
                while host.history.len() > self.limits.history_len {
                    host.history.pop_front();
                }
                if reading.collected_at >= host.latest.collected_at {
                    host.latest = reading.clone();
                    host.latest_json = json;
                }
                host.last_seen = now;
            }
            None if hosts >= self.limits.max_hosts => return Err(Rejected::TooManyHosts(hosts)),
            None => {
                let host = Host {
                    history: VecDeque::from([stored]),
                    latest: reading.clone(),
                    latest_json: json,
                    last_seen: now,
                };
                state.hosts.insert(reading.host.clone(), host);
            }
        }
        state.snapshot = None;
        // Sent under the lock, so a client subscribing now sees it exactly once: in its
        // snapshot or as a frame, never both, never neither. No receivers is fine.
        let _ = self.pushes.send(Push::Frame(frame));
        Ok(reading)
    }

    /// Records the broker's state and tells every client when it changed.
    pub fn set_broker(&self, broker: BrokerState) {
        let mut state = self.lock();
        let changed = state.broker.connected != broker.connected || state.broker.url != broker.url;
        if changed {
            let _ = self.pushes.send(Push::Frame(status_frame(&broker)));
        }
        state.broker = broker;
        state.snapshot = None;
    }

    /// The broker's state as last recorded.
    pub fn broker(&self) -> BrokerState {
        self.lock().broker.clone()
    }

    /// A `snapshot` frame of everything held now, and a receiver for every push after it.
    pub fn subscribe(&self) -> (Frame, broadcast::Receiver<Push>) {
        let mut state = self.lock();
        let receiver = self.pushes.subscribe();
        if let Some(snapshot) = &state.snapshot {
            return (snapshot.clone(), receiver);
        }
        let snapshot = Self::build_snapshot(&state, self.limits.stale_after);
        state.snapshot = Some(snapshot.clone());
        (snapshot, receiver)
    }

    fn build_snapshot(state: &State, stale_after: Duration) -> Frame {
        let mut out = String::with_capacity(4096);
        out.push_str("{\"type\":\"snapshot\",\"stale_after_secs\":");
        out.push_str(&stale_after.as_secs().to_string());
        out.push_str(",\"broker\":");
        out.push_str(&serde_json::to_string(&state.broker).unwrap_or_else(|_| "null".into()));
        out.push_str(",\"readings\":[");
        let mut first = true;
        for stored in state.hosts.values().flat_map(|h| &h.history) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&stored.json);
        }
        out.push_str("]}");
        Frame::from(out)
    }

    /// The latest reading of every host, sorted by host name, as a JSON array.
    pub fn latest_json(&self) -> String {
        let state = self.lock();
        let latest: Vec<&str> = state.hosts.values().map(|h| &*h.latest_json).collect();
        format!("[{}]", latest.join(","))
    }

    /// Every host's latest reading, with whether it has gone stale.
    pub fn hosts(&self) -> Vec<HostSnapshot> {
        let now = Utc::now();
        let stale_after = chrono::Duration::from_std(self.limits.stale_after).unwrap_or_default();
        self.lock()
            .hosts
            .values()
            .map(|h| HostSnapshot {
                reading: h.latest.clone(),
                last_seen: h.last_seen,
                stale: now - h.last_seen > stale_after,
            })
            .collect()
    }

    /// Forgets hosts not heard from for `expiry`: their history, cards and metric series.
    /// Returns how many were forgotten.
    pub fn forget_silent_hosts(&self, expiry: Duration) -> usize {
        let cutoff = Utc::now() - chrono::Duration::from_std(expiry).unwrap_or_default();
        let mut state = self.lock();
        let before = state.hosts.len();
        state.hosts.retain(|_, h| h.last_seen >= cutoff);
        let forgotten = before - state.hosts.len();
        if forgotten > 0 {
            state.snapshot = None;
        }
        forgotten
    }

    /// Clients currently subscribed.
    pub fn client_count(&self) -> usize {
        self.pushes.receiver_count()
    }
}

/// The `status` frame for a broker state.
pub fn status_frame(broker: &BrokerState) -> Frame {
    let json = serde_json::json!({ "type": "status", "broker": broker });
    Frame::from(json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        Hub::new(
            HubLimits {
                history_len: 3,
                max_hosts: 2,
                max_message_bytes: 4096,
                stale_after: Duration::from_secs(10),
            },
            ConsumerMetrics::new().expect("metrics"),
        )
    }

    fn body(host: &str, seq: u64, at: &str) -> Vec<u8> {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/reading.json")).expect("fixture");
        v["host"] = host.into();
        v["seq"] = seq.into();
        v["collected_at"] = at.into();
        serde_json::to_vec(&v).expect("json")
    }

    /// The next frame pushed to `rx`, if one is waiting.
    fn next_frame(rx: &mut broadcast::Receiver<Push>) -> Option<Frame> {
        match rx.try_recv().ok()? {
            Push::Frame(frame) => Some(frame),
            Push::Close => None,
        }
    }

    fn seqs(snapshot: &str) -> Vec<u64> {
        let v: serde_json::Value = serde_json::from_str(snapshot).expect("snapshot is JSON");
        v["readings"]
            .as_array()
            .expect("readings")
            .iter()
            .map(|r| r["seq"].as_u64().expect("seq"))
            .collect()
    }

    #[test]
    fn frames_carry_the_message_exactly_as_received() {
        let hub = hub();
        let (_, mut rx) = hub.subscribe();
        let sent = body("a", 1, "2026-11-23T12:00:01.000Z");
        hub.accept(&sent, None).expect("accepted");
        let frame = next_frame(&mut rx).expect("a frame");
        let expected = format!(
            "{{\"type\":\"reading\",\"data\":{}}}",
            std::str::from_utf8(&sent).expect("utf8")
        );
        assert_eq!(&*frame, expected);
    }

    #[test]
    fn history_is_bounded_and_kept_in_time_order() {
        let hub = hub();
        hub.accept(&body("a", 2, "2026-11-23T12:00:02.000Z"), None)
            .expect("ok");
        hub.accept(&body("a", 4, "2026-11-23T12:00:04.000Z"), None)
            .expect("ok");
        // Back-filled after an outage: older than what is already there.
        hub.accept(&body("a", 3, "2026-11-23T12:00:03.000Z"), None)
            .expect("ok");
        hub.accept(&body("a", 5, "2026-11-23T12:00:05.000Z"), None)
            .expect("ok");
        let (snapshot, _) = hub.subscribe();
        assert_eq!(seqs(&snapshot), [3, 4, 5]);
    }

    #[test]
    fn a_subscriber_sees_each_reading_once() {
        let hub = hub();
        hub.accept(&body("a", 1, "2026-11-23T12:00:01.000Z"), None)
            .expect("ok");
        let (snapshot, mut rx) = hub.subscribe();
        hub.accept(&body("a", 2, "2026-11-23T12:00:02.000Z"), None)
            .expect("ok");
        assert_eq!(seqs(&snapshot), [1]);
        let frame: serde_json::Value =
            serde_json::from_str(&next_frame(&mut rx).expect("frame")).expect("JSON");
        assert_eq!(frame["data"]["seq"], 2);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn bad_messages_are_refused_with_a_reason_and_reach_no_client() {
        let hub = hub();
        let (_, rx) = hub.subscribe();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "malformed"),
            (b"[1,2]".to_vec(), "malformed"),
            (vec![0xff, 0xfe, 0x00], "malformed"),
            (vec![b' '; 5000], "too_large"),
            // Deeper than serde_json's recursion limit: refused, no stack overflow.
            ([b"[".repeat(2000), b"]".repeat(2000)].concat(), "malformed"),
        ];
        for (bad, reason) in cases {
            assert_eq!(
                hub.accept(&bad, None).expect_err("refused").reason(),
                reason
            );
        }
        hub.accept(&body("a", 1, "2026-11-23T12:00:01.000Z"), None)
            .expect("ok");
        hub.accept(&body("b", 1, "2026-11-23T12:00:01.000Z"), None)
            .expect("ok");
        let third = hub.accept(&body("c", 1, "2026-11-23T12:00:01.000Z"), None);
        assert_eq!(
            third.expect_err("over max_hosts").reason(),
            "too_many_hosts"
        );
        assert_eq!(rx.len(), 2, "only the two valid readings were broadcast");
        let rejected = hub.metrics().rejected_by_reason();
        assert_eq!(rejected.get("malformed"), Some(&4));
        assert_eq!(rejected.get("too_large"), Some(&1));
        assert_eq!(rejected.get("too_many_hosts"), Some(&1));
        assert_eq!(hub.metrics().received.get(), 8);
    }

    #[test]
    fn clients_connecting_between_changes_share_one_snapshot() {
        let hub = hub();
        hub.accept(&body("a", 1, "2026-11-23T12:00:01.000Z"), None)
            .expect("ok");
        let (first, _) = hub.subscribe();
        let (second, _) = hub.subscribe();
        assert_eq!(
            first.as_bytes().as_ptr(),
            second.as_bytes().as_ptr(),
            "shared"
        );
        hub.accept(&body("a", 2, "2026-11-23T12:00:02.000Z"), None)
            .expect("ok");
        let (third, _) = hub.subscribe();
        assert_eq!(seqs(&third), [1, 2], "a change makes a new one");
        hub.set_broker(BrokerState::up("amqp://x".into()));
        let (fourth, _) = hub.subscribe();
        let fourth: serde_json::Value = serde_json::from_str(&fourth).expect("JSON");
        assert_eq!(fourth["broker"]["connected"], true);
    }

    #[test]
    fn close_all_reaches_every_subscriber() {
        let hub = hub();
        let (_, mut rx) = hub.subscribe();
        assert!(!hub.is_closing());
        hub.close_all();
        assert!(matches!(rx.try_recv(), Ok(Push::Close)));
        assert!(hub.is_closing(), "sessions starting later close too");
    }

    #[test]
    fn broker_changes_reach_clients_once() {
        let hub = hub();
        let (_, mut rx) = hub.subscribe();
        hub.set_broker(BrokerState::up("amqp://x".into()));
        hub.set_broker(BrokerState::up("amqp://x".into()));
        let frame: serde_json::Value =
            serde_json::from_str(&next_frame(&mut rx).expect("frame")).expect("JSON");
        assert_eq!(frame["type"], "status");
        assert_eq!(frame["broker"]["connected"], true);
        assert!(rx.try_recv().is_err(), "no change, no frame");
    }

    #[test]
    fn a_back_filled_reading_does_not_replace_the_latest() {
        let hub = hub();
        hub.accept(&body("a", 5, "2026-11-23T12:00:05.000Z"), None)
            .expect("ok");
        hub.accept(&body("a", 3, "2026-11-23T12:00:03.000Z"), None)
            .expect("ok");
        assert_eq!(hub.hosts()[0].reading.seq, 5);
    }

    #[test]
    fn silent_hosts_are_forgotten_after_the_expiry() {
        let hub = hub();
        hub.accept(&body("a", 1, "2026-11-23T12:00:01.000Z"), None)
            .expect("ok");
        assert_eq!(hub.forget_silent_hosts(Duration::from_secs(60)), 0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(hub.forget_silent_hosts(Duration::from_millis(10)), 1);
        assert!(hub.hosts().is_empty());
        assert_eq!(hub.latest_json(), "[]");
    }
}
