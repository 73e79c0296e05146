//! The live view: each host's latest reading and a short recent window, and the broadcast of
//! every reading to every browser. Browsers that fall behind are dropped (they reconnect and
//! get a fresh snapshot); nothing here ever waits for a browser.

mod sink;

pub use sink::LiveSink;

use crate::clock::SharedClock;
use crate::intake::parse::Accepted;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use shared::broker::BrokerState;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// A text frame for the browsers, cheap to clone.
pub type Frame = ByteString;

/// What the live view pushes to every WebSocket session.
#[derive(Debug, Clone)]
pub enum Push {
    /// A frame to send as it is (built once, shared by every client).
    Frame(Frame),
    /// The consumer is shutting down: close with a close frame.
    Close,
}

/// Frames a client may fall behind by before it is dropped as too slow.
pub const CLIENT_BACKLOG: usize = 1024;

/// Readings a snapshot carries at most, over all hosts: every host's latest, and as much of
/// each one's recent window as fits. At 1,000 hosts that is two readings each (~2 MB), not the
/// whole buffer of every host; the page asks for a host's longer past over HTTP.
pub const SNAPSHOT_READINGS: usize = 2_000;

/// Limits the live view keeps to.
#[derive(Debug, Clone, Copy)]
pub struct LiveLimits {
    /// Readings kept per host (`HISTORY_LEN`).
    pub history_len: usize,
    /// Hosts tracked at most (`MAX_HOSTS`).
    pub max_hosts: usize,
    /// A host silent this long is shown stale.
    pub stale_after: Duration,
}

/// The live view would not take a reading.
#[derive(Debug, thiserror::Error)]
#[error("already tracking {0} hosts; a new host is refused")]
pub struct TooManyHosts(pub usize);

impl TooManyHosts {
    /// The metric label.
    pub const REASON: &'static str = "too_many_hosts";
}

/// How long a reading that follows a gap in its host's sequence waits for the gap to be filled
/// from the store before it is shown anyway. After a broker outage the publisher's back-fill
/// reaches the history queue before this consumer's live queue is bound again; the store then
/// shows the live view what it missed, a moment after the live queue's newer readings.
pub const GAP_HOLD: Duration = Duration::from_secs(10);

/// How long after the live queue is bound again (following a loss of the broker) gaps are
/// waited for; otherwise a reading is shown as it comes, gap or not.
pub const REFILL_WINDOW: Duration = Duration::from_secs(60);

/// What the live view holds for one host.
struct Host {
    /// In `collected_at` order, at most `history_len`.
    recent: VecDeque<Arc<Accepted>>,
    /// The newest by `collected_at` (a back-filled reading does not replace it).
    latest: Arc<Accepted>,
    /// When this consumer last received a reading from the host, by its own clock.
    last_seen: DateTime<Utc>,
    /// The highest sequence number shown: a newer reading numbered above the next one
    /// follows a gap.
    top_seq: u64,
    /// The last reading shown was numbered right after the one before it: this host numbers
    /// its readings one by one, so a gap in them means readings are missing.
    counts_by_one: bool,
    /// Readings after a gap, by `seq`, waiting for the gap to be filled (at most
    /// `history_len`); with when the first of them came.
    held: BTreeMap<u64, Arc<Accepted>>,
    held_since: Option<DateTime<Utc>>,
}

impl Host {
    fn first(accepted: &Arc<Accepted>, now: DateTime<Utc>) -> Self {
        Self {
            recent: VecDeque::from([Arc::clone(accepted)]),
            latest: Arc::clone(accepted),
            last_seen: now,
            top_seq: accepted.reading.seq,
            // Until it shows otherwise.
            counts_by_one: true,
            held: BTreeMap::new(),
            held_since: None,
        }
    }

    /// Newer than everything shown, and numbered past the next one by a host that numbers
    /// one by one: readings are missing before it.
    fn follows_gap(&self, accepted: &Accepted) -> bool {
        let reading = &accepted.reading;
        self.counts_by_one
            && reading.seq > self.top_seq.saturating_add(1)
            && reading.collected_at > self.latest.reading.collected_at
    }

    /// Puts a reading in the window; false when it shows nothing new (already held, or older
    /// than everything a full window holds).
    fn show(&mut self, accepted: &Arc<Accepted>, history_len: usize) -> bool {
        let reading = &accepted.reading;
        // Readings back-filled after an outage arrive late: keep the window in time order,
        // not arrival order.
        let at = self
            .recent
            .partition_point(|s| s.reading.collected_at <= reading.collected_at);
        // Already held: a reading can come twice (by the live queue and again from the store
        // after a commit, or redelivered). A reading placed at its arrival may come the second
        // time at a later arrival (the store's queue parsed it again): it is the same message.
        let held = match accepted.fingerprint {
            Some(fingerprint) => self
                .recent
                .iter()
                .any(|s| s.fingerprint == Some(fingerprint) && s.reading.seq == reading.seq),
            None => self
                .recent
                .range(..at)
                .rev()
                .take_while(|s| s.reading.collected_at == reading.collected_at)
                .any(|s| s.reading.seq == reading.seq),
        };
        let too_old = at == 0 && self.recent.len() >= history_len;
        if held || too_old {
            return false;
        }
        self.recent.insert(at, Arc::clone(accepted));
        while self.recent.len() > history_len {
            self.recent.pop_front();
        }
        if reading.collected_at >= self.latest.reading.collected_at {
            self.latest = Arc::clone(accepted);
        }
        if reading.seq > self.top_seq {
            self.counts_by_one = reading.seq == self.top_seq.saturating_add(1);
            self.top_seq = reading.seq;
        }
        true
    }

    /// Shows the held readings whose gap is filled, or all of them once they waited
    /// [`GAP_HOLD`] or more of them are waiting than the window holds; returns those shown.
    fn release(&mut self, now: DateTime<Utc>, history_len: usize) -> Vec<Arc<Accepted>> {
        let Some(since) = self.held_since else {
            return Vec::new();
        };
        let hold = chrono::Duration::from_std(GAP_HOLD).unwrap_or_default();
        let overdue = now - since >= hold || self.held.len() > history_len;
        let mut shown = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if !overdue && *entry.key() > self.top_seq.saturating_add(1) {
                break;
            }
            let accepted = entry.remove();
            if self.show(&accepted, history_len) {
                shown.push(accepted);
            }
        }
        if self.held.is_empty() {
            self.held_since = None;
        }
        shown
    }
}

/// A host's latest reading and whether it still publishes.
#[derive(Debug, Clone)]
pub struct HostView {
    pub latest: Arc<Accepted>,
    pub last_seen: DateTime<Utc>,
    pub stale: bool,
}

struct State {
    hosts: BTreeMap<String, Host>,
    /// Bumped by every change; a snapshot is reused while it is unchanged.
    version: u64,
    /// The snapshot as last built and the version it shows: a thousand pages reconnecting
    /// after a restart cost one snapshot, not a thousand.
    snapshot: Option<(u64, Frame)>,
}

/// Shared by the broker task (writer), the WebSocket sessions and the HTTP routes (readers).
pub struct LiveView {
    limits: LiveLimits,
    clock: SharedClock,
    state: Mutex<State>,
    pushes: broadcast::Sender<Push>,
    broker: watch::Receiver<BrokerState>,
    /// True once the consumer shuts down: sessions that start now close at once.
    closing: AtomicBool,
    /// True while the store shows this view what it records: gaps are then worth a wait.
    fills_gaps: AtomicBool,
    /// True once the live queue lost the broker: readings published meanwhile reach this view
    /// only through the store.
    lost_broker: AtomicBool,
    /// Another part of the page's first frame (the alerts), as its name and JSON.
    snapshot_part: std::sync::OnceLock<SnapshotPart>,
}

/// A part of the snapshot that another component provides: its field name and its JSON now.
pub type SnapshotPart = (&'static str, Box<dyn Fn() -> String + Send + Sync>);

impl LiveView {
    /// An empty view; `broker` is the live queue's connection state, shown in snapshots.
    pub fn new(
        limits: LiveLimits,
        clock: SharedClock,
        broker: watch::Receiver<BrokerState>,
    ) -> Self {
        let (pushes, _) = broadcast::channel(CLIENT_BACKLOG);
        Self {
            limits,
            clock,
            state: Mutex::new(State {
                hosts: BTreeMap::new(),
                version: 0,
                snapshot: None,
            }),
            pushes,
            broker,
            closing: AtomicBool::new(false),
            fills_gaps: AtomicBool::new(false),
            lost_broker: AtomicBool::new(false),
            snapshot_part: std::sync::OnceLock::new(),
        }
    }

    /// Adds a field to every snapshot (once; later calls are ignored).
    pub fn add_snapshot_part(&self, part: SnapshotPart) {
        let _ = self.snapshot_part.set(part);
        self.lock().version += 1;
    }

    /// Sends a frame of another component's (an alert) to every client; the next snapshot is
    /// built anew, so a client connecting later sees the change in it.
    pub fn broadcast(&self, frame: Frame) {
        let mut state = self.lock();
        state.version += 1;
        let _ = self.pushes.send(Push::Frame(frame));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep serving it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a reading and sends it to every client. A reading that follows a gap in its host's
    /// sequence waits (up to [`GAP_HOLD`]) while the store may still fill the gap, so clients
    /// see an outage's readings in order; see [`Self::fill_gaps_from_store`].
    pub fn publish(&self, accepted: &Arc<Accepted>) -> Result<(), TooManyHosts> {
        let now = self.clock.now();
        let reading = &accepted.reading;
        let refilling = self.refilling();
        let mut guard = self.lock();
        let state = &mut *guard;
        let hosts = state.hosts.len();
        let shown = match state.hosts.get_mut(&reading.host) {
            Some(host) => {
                host.last_seen = now;
                if refilling && host.follows_gap(accepted) {
                    host.held.insert(reading.seq, Arc::clone(accepted));
                    host.held_since.get_or_insert(now);
                    host.release(now, self.limits.history_len)
                } else {
                    let mut shown = Vec::new();
                    if host.show(accepted, self.limits.history_len) {
                        shown.push(Arc::clone(accepted));
                    }
                    shown.extend(host.release(now, self.limits.history_len));
                    shown
                }
            }
            None if hosts >= self.limits.max_hosts => return Err(TooManyHosts(hosts)),
            None => {
                state
                    .hosts
                    .insert(reading.host.clone(), Host::first(accepted, now));
                vec![Arc::clone(accepted)]
            }
        };
        self.send_readings(state, &shown);
        Ok(())
    }

    /// Whether a gap may be filled from the store now: the store shows this view what it
    /// records, and the live queue is back from a loss of the broker since less than
    /// [`REFILL_WINDOW`] (by the wall clock, as the broker state's `since` is).
    fn refilling(&self) -> bool {
        if !self.fills_gaps.load(Ordering::Relaxed) || !self.lost_broker.load(Ordering::Relaxed) {
            return false;
        }
        let broker = self.broker.borrow();
        let window = chrono::Duration::from_std(REFILL_WINDOW).unwrap_or_default();
        broker.connected && Utc::now() - broker.since < window
    }

    /// Shows the readings whose gap was not filled within [`GAP_HOLD`] (called every second).
    /// Returns how many were shown.
    pub fn release_held(&self) -> usize {
        let now = self.clock.now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut shown = Vec::new();
        for host in state.hosts.values_mut() {
            shown.extend(host.release(now, self.limits.history_len));
        }
        self.send_readings(state, &shown);
        shown.len()
    }

    /// Says that the store shows this view every reading it records (see
    /// [`crate::history::recorder::StoreSink`]), so a gap in a host's sequence is worth waiting for.
    pub fn fill_gaps_from_store(&self) {
        self.fills_gaps.store(true, Ordering::Relaxed);
    }

    /// Sends a frame per reading, under the lock, so a client subscribing now sees each
    /// exactly once: in its snapshot or as a frame, never both, never neither.
    fn send_readings(&self, state: &mut State, shown: &[Arc<Accepted>]) {
        if shown.is_empty() {
            return;
        }
        state.version += 1;
        for accepted in shown {
            let frame = Frame::from(format!(
                "{{\"type\":\"reading\",\"data\":{}}}",
                &*accepted.json
            ));
            // No receivers is fine.
            let _ = self.pushes.send(Push::Frame(frame));
        }
    }

    /// Tells every client the broker's state (sent only when it changed in a way they show).
    pub fn push_status(&self, previous: &BrokerState, broker: &BrokerState) {
        if previous.connected && !broker.connected {
            self.lost_broker.store(true, Ordering::Relaxed);
        }
        let mut state = self.lock();
        state.version += 1;
        if previous.connected != broker.connected || previous.url != broker.url {
            let _ = self.pushes.send(Push::Frame(status_frame(broker)));
        }
    }

    /// A `snapshot` frame of what is held now, and a receiver for every push after it. The
    /// frame is assembled outside the lock the broker task needs.
    pub fn subscribe(&self) -> (Frame, broadcast::Receiver<Push>) {
        let (receiver, version, window, broker) = {
            let state = self.lock();
            let receiver = self.pushes.subscribe();
            if let Some((version, snapshot)) = &state.snapshot {
                if *version == state.version {
                    return (snapshot.clone(), receiver);
                }
            }
            let per_host = (SNAPSHOT_READINGS / state.hosts.len().max(1))
                .clamp(1, self.limits.history_len.max(1));
            let window: Vec<Arc<Accepted>> = state
                .hosts
                .values()
                .flat_map(|h| {
                    h.recent
                        .iter()
                        .skip(h.recent.len().saturating_sub(per_host))
                })
                .cloned()
                .collect();
            (
                receiver,
                state.version,
                window,
                self.broker.borrow().clone(),
            )
        };
        let part = self.snapshot_part.get().map(|(name, json)| (*name, json()));
        let snapshot = build_snapshot(&window, &broker, self.limits.stale_after, part);
        let mut state = self.lock();
        if state.version == version {
            state.snapshot = Some((version, snapshot.clone()));
        }
        (snapshot, receiver)
    }

    /// The latest reading of every host, sorted by host name, as a JSON array.
    pub fn latest_json(&self) -> String {
        let latest: Vec<Arc<Accepted>> = self
            .lock()
            .hosts
            .values()
            .map(|h| Arc::clone(&h.latest))
            .collect();
        json_array(latest.iter().map(|a| &*a.json))
    }

    /// A host's recent readings, oldest first, as a JSON array; `None` for an unknown host.
    pub fn recent_json(&self, host: &str) -> Option<String> {
        let recent: Vec<Arc<Accepted>> = self
            .lock()
            .hosts
            .get(host)?
            .recent
            .iter()
            .cloned()
            .collect();
        Some(json_array(recent.iter().map(|a| &*a.json)))
    }

    /// Every host's latest reading, with whether it has gone stale.
    pub fn hosts(&self) -> Vec<HostView> {
        let now = self.clock.now();
        let stale_after = chrono::Duration::from_std(self.limits.stale_after).unwrap_or_default();
        self.lock()
            .hosts
            .values()
            .map(|h| HostView {
                latest: Arc::clone(&h.latest),
                last_seen: h.last_seen,
                stale: now - h.last_seen > stale_after,
            })
            .collect()
    }

    /// Forgets hosts not heard from for `expiry`: their window, cards and metric series.
    /// Returns how many were forgotten.
    pub fn forget_silent_hosts(&self, expiry: Duration) -> usize {
        let cutoff = self.clock.now() - chrono::Duration::from_std(expiry).unwrap_or_default();
        let mut state = self.lock();
        let before = state.hosts.len();
        state.hosts.retain(|_, h| h.last_seen >= cutoff);
        let forgotten = before - state.hosts.len();
        if forgotten > 0 {
            state.version += 1;
        }
        forgotten
    }

    /// Asks every WebSocket session to close (with a close frame) for shutdown. It travels
    /// with the frames, so the sessions' hot loop waits on one channel only.
    pub fn close_all(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let _ = self.pushes.send(Push::Close);
    }

    /// True once [`Self::close_all`] was called.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Clients currently subscribed.
    pub fn client_count(&self) -> usize {
        self.pushes.receiver_count()
    }
}

fn json_array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

fn build_snapshot(
    window: &[Arc<Accepted>],
    broker: &BrokerState,
    stale_after: Duration,
    part: Option<(&str, String)>,
) -> Frame {
    let size: usize = window.iter().map(|a| a.json.len() + 1).sum();
    let mut out = String::with_capacity(size + 512);
    out.push_str("{\"type\":\"snapshot\",\"stale_after_secs\":");
    out.push_str(&stale_after.as_secs().to_string());
    out.push_str(",\"broker\":");
    out.push_str(&serde_json::to_string(broker).unwrap_or_else(|_| "null".into()));
    if let Some((name, json)) = part {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":");
        out.push_str(&json);
    }
    out.push_str(",\"readings\":");
    out.push_str(&json_array(window.iter().map(|a| &*a.json)));
    out.push('}');
    Frame::from(out)
}

/// The `status` frame for a broker state.
pub fn status_frame(broker: &BrokerState) -> Frame {
    let json = serde_json::json!({ "type": "status", "broker": broker });
    Frame::from(json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::intake::legacy::SenderHints;
    use crate::intake::parse::{ingest, IngestLimits};
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 30)
            .single()
            .expect("valid")
    }

    fn view_with(
        history_len: usize,
        clock: Arc<ManualClock>,
    ) -> (LiveView, watch::Sender<BrokerState>) {
        let (broker_tx, broker_rx) = watch::channel(BrokerState::connecting());
        let view = LiveView::new(
            LiveLimits {
                history_len,
                max_hosts: 2,
                stale_after: Duration::from_secs(10),
            },
            clock,
            broker_rx,
        );
        (view, broker_tx)
    }

    fn view() -> LiveView {
        view_with(3, ManualClock::new(start())).0
    }

    fn reading(host: &str, seq: u64, at: &str) -> Arc<Accepted> {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/reading.json"))
                .expect("fixture");
        v["host"] = host.into();
        v["seq"] = seq.into();
        v["collected_at"] = at.into();
        let body = serde_json::to_vec(&v).expect("json");
        let limits = IngestLimits {
            max_message_bytes: 1 << 20,
        };
        ingest(&body, &SenderHints::default(), start(), limits).expect("accepted")
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
        let view = view();
        let (_, mut rx) = view.subscribe();
        let accepted = reading("a", 1, "2026-11-23T12:00:01.000Z");
        view.publish(&accepted).expect("taken");
        let frame = next_frame(&mut rx).expect("a frame");
        assert_eq!(
            &*frame,
            format!("{{\"type\":\"reading\",\"data\":{}}}", &*accepted.json)
        );
    }

    #[test]
    fn the_window_is_bounded_and_kept_in_time_order() {
        let view = view();
        for (seq, second) in [(2, 2), (4, 4), (3, 3), (5, 5)] {
            let at = format!("2026-11-23T12:00:0{second}.000Z");
            view.publish(&reading("a", seq, &at)).expect("taken");
        }
        let (snapshot, _) = view.subscribe();
        assert_eq!(seqs(&snapshot), [3, 4, 5]);
        let recent: serde_json::Value =
            serde_json::from_str(&view.recent_json("a").expect("known")).expect("JSON");
        assert_eq!(recent.as_array().expect("array").len(), 3);
        assert!(view.recent_json("nobody").is_none());
    }

    #[test]
    fn the_snapshot_carries_a_short_window_per_host_when_the_fleet_is_large() {
        let clock = ManualClock::new(start());
        let (view, _) = view_with(1_000, clock);
        for seq in 1..=(SNAPSHOT_READINGS as u64 + 500) {
            let at = start() - chrono::Duration::milliseconds(1_000_000 - seq as i64);
            let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            view.publish(&reading("a", seq, &at)).expect("taken");
            view.publish(&reading("b", seq, &at)).expect("taken");
        }
        let (snapshot, _) = view.subscribe();
        let seqs = seqs(&snapshot);
        assert_eq!(seqs.len(), SNAPSHOT_READINGS, "bounded over all hosts");
        assert_eq!(
            seqs.iter()
                .filter(|s| **s == SNAPSHOT_READINGS as u64 + 500)
                .count(),
            2,
            "each host's latest is in it"
        );
    }

    #[test]
    fn a_subscriber_sees_each_reading_once() {
        let view = view();
        view.publish(&reading("a", 1, "2026-11-23T12:00:01.000Z"))
            .expect("taken");
        let (snapshot, mut rx) = view.subscribe();
        view.publish(&reading("a", 2, "2026-11-23T12:00:02.000Z"))
            .expect("taken");
        assert_eq!(seqs(&snapshot), [1]);
        let frame: serde_json::Value =
            serde_json::from_str(&next_frame(&mut rx).expect("frame")).expect("JSON");
        assert_eq!(frame["data"]["seq"], 2);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_host_over_the_limit_is_refused_and_reaches_no_client() {
        let view = view();
        let (_, rx) = view.subscribe();
        view.publish(&reading("a", 1, "2026-11-23T12:00:01.000Z"))
            .expect("taken");
        view.publish(&reading("b", 1, "2026-11-23T12:00:01.000Z"))
            .expect("taken");
        assert!(view
            .publish(&reading("c", 1, "2026-11-23T12:00:01.000Z"))
            .is_err());
        assert_eq!(rx.len(), 2, "only the two taken readings were broadcast");
    }

    #[test]
    fn clients_connecting_between_changes_share_one_snapshot() {
        let clock = ManualClock::new(start());
        let (view, broker) = view_with(3, clock);
        view.publish(&reading("a", 1, "2026-11-23T12:00:01.000Z"))
            .expect("taken");
        let (first, _) = view.subscribe();
        let (second, _) = view.subscribe();
        assert_eq!(
            first.as_bytes().as_ptr(),
            second.as_bytes().as_ptr(),
            "shared"
        );
        view.publish(&reading("a", 2, "2026-11-23T12:00:02.000Z"))
            .expect("taken");
        let (third, _) = view.subscribe();
        assert_eq!(seqs(&third), [1, 2], "a change makes a new one");
        let previous = broker.borrow().clone();
        broker.send_replace(BrokerState::up("amqp://x".into()));
        view.push_status(&previous, &broker.borrow());
        let (fourth, _) = view.subscribe();
        let fourth: serde_json::Value = serde_json::from_str(&fourth).expect("JSON");
        assert_eq!(fourth["broker"]["connected"], true);
    }

    #[test]
    fn close_all_reaches_every_subscriber() {
        let view = view();
        let (_, mut rx) = view.subscribe();
        assert!(!view.is_closing());
        view.close_all();
        assert!(matches!(rx.try_recv(), Ok(Push::Close)));
        assert!(view.is_closing(), "sessions starting later close too");
    }

    #[test]
    fn broker_changes_reach_clients_once() {
        let view = view();
        let (_, mut rx) = view.subscribe();
        let down = BrokerState::connecting();
        let up = BrokerState::up("amqp://x".into());
        view.push_status(&down, &up);
        view.push_status(&up, &up);
        let frame: serde_json::Value =
            serde_json::from_str(&next_frame(&mut rx).expect("frame")).expect("JSON");
        assert_eq!(frame["type"], "status");
        assert_eq!(frame["broker"]["connected"], true);
        assert!(rx.try_recv().is_err(), "no change, no frame");
    }

    #[test]
    fn a_reading_that_comes_twice_is_shown_once() {
        let view = view();
        let (_, rx) = view.subscribe();
        let first = reading("a", 1, "2026-11-23T12:00:01.000Z");
        view.publish(&first).expect("taken");
        view.publish(&reading("a", 1, "2026-11-23T12:00:01.000Z"))
            .expect("taken");
        for seq in 2..=4 {
            let at = format!("2026-11-23T12:00:0{seq}.000Z");
            view.publish(&reading("a", seq, &at)).expect("taken");
        }
        // Older than the full window: history, not news.
        view.publish(&reading("a", 9, "2026-11-23T11:00:00.000Z"))
            .expect("taken");
        assert_eq!(rx.len(), 4, "one frame per new reading");
    }

    /// `body` as a queue parses it when it arrives at `arrival`.
    fn parsed_at(body: &[u8], arrival: DateTime<Utc>) -> Arc<Accepted> {
        let limits = IngestLimits {
            max_message_bytes: 1 << 20,
        };
        ingest(body, &SenderHints::default(), arrival, limits).expect("accepted")
    }

    fn body(seq: u64, at: &str) -> Vec<u8> {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/reading.json"))
                .expect("fixture");
        v["host"] = "drifter".into();
        v["seq"] = seq.into();
        v["collected_at"] = at.into();
        serde_json::to_vec(&v).expect("json")
    }

    #[test]
    fn a_future_reading_parsed_again_later_by_the_store_is_not_shown_again() {
        let view = view();
        let (_, mut rx) = view.subscribe();
        // Dated an hour ahead: the live queue places it at its arrival, 12:00:30.
        let ahead = body(1, "2026-11-23T13:00:30.000Z");
        view.publish(&parsed_at(&ahead, start())).expect("taken");
        view.publish(&parsed_at(
            &body(2, &at(31)),
            start() + chrono::Duration::seconds(1),
        ))
        .expect("taken");
        // The history queue, which started late, parsed the first message only now and the
        // store hands its copy, placed at this later arrival, to the live view.
        let again = parsed_at(&ahead, start() + chrono::Duration::seconds(2));
        assert!(again.reading.collected_at > at_time(31));
        view.publish(&again).expect("taken");
        assert_eq!(
            view.hosts()[0].latest.reading.seq,
            2,
            "the newer stays the latest"
        );
        assert_eq!(frame_seqs(&mut rx), [1, 2], "shown once");
        let (snapshot, _) = view.subscribe();
        assert_eq!(seqs(&snapshot), [1, 2]);
    }

    fn at_time(second: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&at(second))
            .expect("valid")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_back_filled_reading_does_not_replace_the_latest() {
        let view = view();
        view.publish(&reading("a", 5, "2026-11-23T12:00:05.000Z"))
            .expect("taken");
        view.publish(&reading("a", 3, "2026-11-23T12:00:03.000Z"))
            .expect("taken");
        assert_eq!(view.hosts()[0].latest.reading.seq, 5);
    }

    #[test]
    fn silent_hosts_go_stale_then_are_forgotten_by_the_clock() {
        let clock = ManualClock::new(start());
        let (view, _) = view_with(3, Arc::clone(&clock));
        view.publish(&reading("a", 1, "2026-11-23T12:00:01.000Z"))
            .expect("taken");
        assert!(!view.hosts()[0].stale);
        clock.advance(Duration::from_secs(11));
        assert!(view.hosts()[0].stale, "silent for longer than stale_after");
        assert_eq!(view.forget_silent_hosts(Duration::from_secs(60)), 0);
        clock.advance(Duration::from_secs(50));
        assert_eq!(view.forget_silent_hosts(Duration::from_secs(60)), 1);
        assert!(view.hosts().is_empty());
        assert_eq!(view.latest_json(), "[]");
    }

    fn frame_seqs(rx: &mut broadcast::Receiver<Push>) -> Vec<u64> {
        std::iter::from_fn(|| next_frame(rx))
            .map(|f| {
                let v: serde_json::Value = serde_json::from_str(&f).expect("JSON");
                v["data"]["seq"].as_u64().expect("seq")
            })
            .collect()
    }

    /// A view fed by the store whose live queue just came back after losing the broker.
    fn back_from_an_outage(clock: Arc<ManualClock>) -> (LiveView, watch::Sender<BrokerState>) {
        let (view, broker) = view_with(10, clock);
        view.fill_gaps_from_store();
        let mut previous = broker.borrow().clone();
        for state in [
            BrokerState::up("amqp://x".into()),
            BrokerState::down(None, "lost".into()),
            BrokerState::up("amqp://x".into()),
        ] {
            broker.send_replace(state);
            view.push_status(&previous, &broker.borrow());
            previous = broker.borrow().clone();
        }
        (view, broker)
    }

    fn at(second: u32) -> String {
        format!("2026-11-23T12:00:{second:02}.000Z")
    }

    #[test]
    fn readings_after_a_gap_wait_for_the_store_to_fill_it_and_then_come_in_order() {
        let clock = ManualClock::new(start());
        let (view, _broker) = back_from_an_outage(Arc::clone(&clock));
        let (_, mut rx) = view.subscribe();
        view.publish(&reading("a", 1, &at(1))).expect("taken");
        // The live queue, bound again after an outage, brings 3 and 4; 2 is in the store.
        view.publish(&reading("a", 3, &at(3))).expect("taken");
        view.publish(&reading("a", 4, &at(4))).expect("taken");
        assert_eq!(frame_seqs(&mut rx), [1], "3 and 4 wait for 2");
        clock.advance(Duration::from_secs(1));
        assert_eq!(view.release_held(), 0, "not yet overdue");
        // The store commits 2, then shows 3 and 4 again.
        for seq in 2..=4 {
            view.publish(&reading("a", seq, &at(seq as u32)))
                .expect("taken");
        }
        assert_eq!(frame_seqs(&mut rx), [2, 3, 4], "in order, once each");
        let (snapshot, _) = view.subscribe();
        assert_eq!(seqs(&snapshot), [1, 2, 3, 4]);
        assert_eq!(view.hosts()[0].latest.reading.seq, 4);
    }

    #[test]
    fn a_gap_nobody_fills_holds_its_readings_back_no_longer_than_the_hold() {
        let clock = ManualClock::new(start());
        let (view, _broker) = back_from_an_outage(Arc::clone(&clock));
        let (_, mut rx) = view.subscribe();
        view.publish(&reading("a", 1, &at(1))).expect("taken");
        view.publish(&reading("a", 5, &at(5))).expect("taken");
        clock.advance(GAP_HOLD - Duration::from_millis(1));
        assert_eq!(view.release_held(), 0);
        assert_eq!(frame_seqs(&mut rx), [1]);
        clock.advance(Duration::from_millis(1));
        assert_eq!(view.release_held(), 1);
        view.publish(&reading("a", 6, &at(6))).expect("taken");
        assert_eq!(
            frame_seqs(&mut rx),
            [5, 6],
            "and then the stream flows again"
        );
    }

    #[test]
    fn gaps_are_not_waited_for_without_an_outage_or_from_a_host_that_skips_numbers() {
        let clock = ManualClock::new(start());
        let (view, broker) = view_with(10, Arc::clone(&clock));
        view.fill_gaps_from_store();
        broker.send_replace(BrokerState::up("amqp://x".into()));
        let (_, mut rx) = view.subscribe();
        view.publish(&reading("a", 1, &at(1))).expect("taken");
        view.publish(&reading("a", 3, &at(2))).expect("taken");
        assert_eq!(
            frame_seqs(&mut rx),
            [1, 3],
            "connected from the start: no outage"
        );

        let (view, _broker) = back_from_an_outage(Arc::clone(&clock));
        let (_, mut rx) = view.subscribe();
        // A host numbering its readings by tens (a counter shared by several hosts, say).
        view.publish(&reading("b", 10, &at(1))).expect("taken");
        view.publish(&reading("b", 20, &at(2))).expect("taken");
        assert_eq!(frame_seqs(&mut rx), [10], "a first jump may be a gap");
        clock.advance(GAP_HOLD);
        assert_eq!(view.release_held(), 1);
        view.publish(&reading("b", 30, &at(3))).expect("taken");
        assert_eq!(
            frame_seqs(&mut rx),
            [20, 30],
            "then it is known to skip numbers"
        );
    }

    #[test]
    fn without_a_store_to_fill_them_gaps_are_not_waited_for() {
        let view = view();
        let (_, mut rx) = view.subscribe();
        view.publish(&reading("a", 1, &at(1))).expect("taken");
        view.publish(&reading("a", 7, &at(7))).expect("taken");
        assert_eq!(frame_seqs(&mut rx), [1, 7]);
    }

    #[test]
    fn a_restarted_publisher_counting_from_one_again_is_shown_at_once() {
        let clock = ManualClock::new(start());
        let (view, _broker) = back_from_an_outage(clock);
        let (_, mut rx) = view.subscribe();
        view.publish(&reading("a", 40, &at(1))).expect("taken");
        view.publish(&reading("a", 1, &at(2))).expect("taken");
        view.publish(&reading("a", 2, &at(3))).expect("taken");
        assert_eq!(frame_seqs(&mut rx), [40, 1, 2]);
    }
}
