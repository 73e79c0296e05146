//! The hub: the latest readings per host, a short history of each, and the broadcast of every
//! reading to every WebSocket client. A reading's frame is built once and shared by all.

use bytestring::ByteString;
use shared::broker::BrokerState;
use shared::reading::{Reading, ReadingError};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// A text frame for the browsers, cheap to clone.
pub type Frame = ByteString;

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
    pub stale_after_secs: u64,
}

/// One stored reading: what sorting needs, and the JSON exactly as received.
struct Stored {
    collected_at: chrono::DateTime<chrono::Utc>,
    json: ByteString,
}

struct State {
    hosts: BTreeMap<String, VecDeque<Stored>>,
    broker: BrokerState,
    /// Messages accepted, and refused by reason.
    accepted: u64,
    rejected: BTreeMap<&'static str, u64>,
}

/// Shared by the broker task (writer) and every WebSocket session (readers).
pub struct Hub {
    limits: HubLimits,
    state: Mutex<State>,
    frames: broadcast::Sender<Frame>,
}

impl Hub {
    /// An empty hub.
    pub fn new(limits: HubLimits) -> Self {
        let (frames, _) = broadcast::channel(CLIENT_BACKLOG);
        Self {
            limits,
            state: Mutex::new(State {
                hosts: BTreeMap::new(),
                broker: BrokerState::connecting(),
                accepted: 0,
                rejected: BTreeMap::new(),
            }),
            frames,
        }
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
        let outcome = self.store(body, host_hint);
        let mut state = self.lock();
        match &outcome {
            Ok(_) => state.accepted += 1,
            Err(rejected) => *state.rejected.entry(rejected.reason()).or_default() += 1,
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
        let text: &str = &json;
        let frame = Frame::from(format!("{{\"type\":\"reading\",\"data\":{text}}}"));
        let mut state = self.lock();
        if !state.hosts.contains_key(&reading.host) && state.hosts.len() >= self.limits.max_hosts {
            return Err(Rejected::TooManyHosts(state.hosts.len()));
        }
        let history = state.hosts.entry(reading.host.clone()).or_default();
        // Readings back-filled after an outage arrive late: keep each host's history in
        // time order, not arrival order.
        let at = history.partition_point(|s| s.collected_at <= reading.collected_at);
        history.insert(
            at,
            Stored {
                collected_at: reading.collected_at,
                json,
            },
        );
        while history.len() > self.limits.history_len {
            history.pop_front();
        }
        // Sent under the lock, so a client subscribing now sees it exactly once: in its
        // snapshot or as a frame, never both, never neither. No receivers is fine.
        let _ = self.frames.send(frame);
        Ok(reading)
    }

    /// Records the broker's state and tells every client.
    pub fn set_broker(&self, broker: BrokerState) {
        let mut state = self.lock();
        if state.broker.connected == broker.connected && state.broker.url == broker.url {
            state.broker = broker;
            return;
        }
        let frame = status_frame(&broker);
        state.broker = broker;
        let _ = self.frames.send(frame);
    }

    /// Messages accepted so far, and refused by reason, as JSON.
    pub fn message_counts(&self) -> serde_json::Value {
        let state = self.lock();
        serde_json::json!({ "accepted": state.accepted, "rejected": state.rejected })
    }

    /// The broker's state as last recorded.
    pub fn broker(&self) -> BrokerState {
        self.lock().broker.clone()
    }

    /// A `snapshot` frame of everything held now, and a receiver for every frame after it.
    pub fn subscribe(&self) -> (Frame, broadcast::Receiver<Frame>) {
        let state = self.lock();
        let mut out = String::with_capacity(4096);
        out.push_str("{\"type\":\"snapshot\",\"stale_after_secs\":");
        out.push_str(&self.limits.stale_after_secs.to_string());
        out.push_str(",\"broker\":");
        out.push_str(&serde_json::to_string(&state.broker).unwrap_or_else(|_| "null".into()));
        out.push_str(",\"readings\":[");
        let mut first = true;
        for stored in state.hosts.values().flatten() {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&stored.json);
        }
        out.push_str("]}");
        let receiver = self.frames.subscribe();
        (Frame::from(out), receiver)
    }

    /// The latest reading of every host, sorted by host name, as a JSON array.
    pub fn latest_json(&self) -> String {
        let state = self.lock();
        let latest: Vec<&str> = state
            .hosts
            .values()
            .filter_map(|h| h.back().map(|s| &*s.json))
            .collect();
        format!("[{}]", latest.join(","))
    }

    /// Clients currently subscribed.
    pub fn client_count(&self) -> usize {
        self.frames.receiver_count()
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
        Hub::new(HubLimits {
            history_len: 3,
            max_hosts: 2,
            max_message_bytes: 4096,
            stale_after_secs: 10,
        })
    }

    fn body(host: &str, seq: u64, at: &str) -> Vec<u8> {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/reading.json")).expect("fixture");
        v["host"] = host.into();
        v["seq"] = seq.into();
        v["collected_at"] = at.into();
        serde_json::to_vec(&v).expect("json")
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
        let frame = rx.try_recv().expect("a frame");
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
            serde_json::from_str(&rx.try_recv().expect("frame")).expect("JSON");
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
    }

    #[test]
    fn broker_changes_reach_clients_once() {
        let hub = hub();
        let (_, mut rx) = hub.subscribe();
        hub.set_broker(BrokerState::up("amqp://x".into()));
        hub.set_broker(BrokerState::up("amqp://x".into()));
        let frame: serde_json::Value =
            serde_json::from_str(&rx.try_recv().expect("frame")).expect("JSON");
        assert_eq!(frame["type"], "status");
        assert_eq!(frame["broker"]["connected"], true);
        assert!(rx.try_recv().is_err(), "no change, no frame");
    }
}
