//! A short memory of ingest's outcomes, so that one message carried by several of this
//! consumer's queues (live, history, alerts) is parsed once and every queue gets the same
//! outcome: the same `Arc<Accepted>` (so a reading placed at its arrival has one time in the
//! live view, the store and the alerts), or the same refusal.
//!
//! Each queue takes a message's outcome at most once: a queue that finds every matching entry
//! already taken by itself has a new message with the same bytes (a repeat, a redelivery), which
//! gets an entry of its own. Queues are FIFO, so the n-th copy of some bytes on one queue
//! meets the n-th copy on another. Entries go once every queue that is taking messages took
//! them, and otherwise after [`MemoBounds::max_age`] or when [`MemoBounds::entries`] newer
//! ones came: a queue that lags further behind than that (a store catching up on a backlog)
//! parses the message again, as it would without the memo. A reading placed at its arrival
//! then gets a later time on that queue; its `fingerprint` lets the live view know the copy
//! the store shows it as the reading it already holds.
//!
//! A queue counts as consuming from before it is bound (see `queue.rs`), so a queue that
//! starts after the others still gets the outcome they parsed once it is bound.

use crate::intake::legacy::SenderHints;
use crate::intake::parse::{self, Accepted, IngestLimits, Refusal};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What ingest made of one message, shared by every queue that carried it.
pub type Outcome = Result<Arc<Accepted>, Arc<Refusal>>;

/// How much the memo keeps.
#[derive(Debug, Clone, Copy)]
pub struct MemoBounds {
    /// Entries kept at most (taken or not).
    pub entries: usize,
    /// Bytes of message bodies kept at most: a thousand readings of a megabyte would be a
    /// gigabyte, so big messages are shared only while few are held.
    pub bytes: usize,
    /// An entry older than this is dropped.
    pub max_age: Duration,
    /// How long a queue counts as taking messages after its last one (or after it started
    /// consuming): entries wait for the queues that take messages, not for a standby.
    pub active_for: Duration,
}

impl Default for MemoBounds {
    /// Queues that keep up with one another are a prefetch window (256) or two apart; a
    /// thousand entries of ~2 KB each is a couple of megabytes at most, and usually nothing.
    fn default() -> Self {
        Self {
            entries: 1024,
            bytes: 16 << 20,
            max_age: Duration::from_secs(5),
            // Longer than any sensible interval between readings, so a lone host is shared too.
            active_for: Duration::from_secs(60),
        }
    }
}

/// One queue's place in the memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueId(u32);

/// The most queues one memo serves (a bit each).
pub const MAX_QUEUES: usize = 32;

/// More queues than [`MAX_QUEUES`] asked for a place.
#[derive(Debug, thiserror::Error)]
#[error("the ingest memo serves at most {MAX_QUEUES} queues")]
pub struct TooManyQueues;

/// Whether a message's outcome was worked out for this queue or shared from another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Parsed now, by this queue.
    Parsed,
    /// Taken from the memo: another queue parsed the same message.
    Shared,
}

/// The memo, shared by every queue of one consumer.
pub struct IngestMemo {
    limits: IngestLimits,
    bounds: MemoBounds,
    hasher: RandomState,
    state: Mutex<State>,
}

struct State {
    /// Oldest first; `first_id` is the id of the front slot. Taken entries leave `None`.
    slots: VecDeque<Option<Entry>>,
    first_id: u64,
    /// Ids of the entries still held, by the hash of their message, oldest first.
    by_hash: HashMap<u64, Vec<u64>>,
    /// When each queue last took a message (or started consuming); `None` while it does not.
    last_take: Vec<Option<Instant>>,
    /// Bytes of the bodies of the entries held.
    bytes: usize,
}

struct Entry {
    hash: u64,
    body: Box<[u8]>,
    hints: SenderHints,
    born: Instant,
    /// The queues that took it, a bit each.
    taken: u32,
    /// Set once, by the queue that parses.
    outcome: Arc<OnceLock<Outcome>>,
}

impl IngestMemo {
    /// An empty memo in front of ingest with `limits`.
    pub fn new(limits: IngestLimits, bounds: MemoBounds) -> Self {
        Self {
            limits,
            bounds,
            hasher: RandomState::new(),
            state: Mutex::new(State {
                slots: VecDeque::new(),
                first_id: 0,
                by_hash: HashMap::new(),
                last_take: Vec::new(),
                bytes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain data: a panic elsewhere leaves nothing half-done that matters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more queue.
    pub fn add_queue(&self) -> Result<QueueId, TooManyQueues> {
        let mut state = self.lock();
        if state.last_take.len() >= MAX_QUEUES {
            return Err(TooManyQueues);
        }
        state.last_take.push(None);
        Ok(QueueId(state.last_take.len() as u32 - 1))
    }

    /// `queue` consumes from now on (`at`): other queues keep what they parse for it.
    pub fn consuming(&self, queue: QueueId, at: Instant) {
        if let Some(slot) = self.lock().last_take.get_mut(queue.0 as usize) {
            *slot = Some(at);
        }
    }

    /// `queue` stopped consuming (its connection went): nothing is kept for it any more.
    pub fn stopped(&self, queue: QueueId) {
        if let Some(slot) = self.lock().last_take.get_mut(queue.0 as usize) {
            *slot = None;
        }
    }

    /// The outcome of `body` for `queue`: shared when another queue already parsed this
    /// message, otherwise parsed now (at `now`, the consumer's clock) and kept for the others.
    /// `at` is the time by which entries age.
    pub fn ingest(
        &self,
        queue: QueueId,
        body: &[u8],
        hints: &SenderHints,
        now: DateTime<Utc>,
        at: Instant,
    ) -> (Outcome, Source) {
        let hash = self.hasher.hash_one(body);
        let bit = 1u32 << queue.0;
        let cell = {
            let mut state = self.lock();
            state.forget_old(at, &self.bounds);
            if let Some(slot) = state.last_take.get_mut(queue.0 as usize) {
                *slot = Some(at);
            }
            let active = state.active(at, self.bounds.active_for);
            match state.find(hash, body, hints, bit) {
                Some(id) => state.take(id, bit, active),
                None => {
                    let cell = Arc::new(OnceLock::new());
                    // Kept for the others only when there are others to take it.
                    if active & !bit != 0 {
                        state.insert(Entry {
                            hash,
                            body: body.into(),
                            hints: hints.clone(),
                            born: at,
                            taken: bit,
                            outcome: Arc::clone(&cell),
                        });
                    }
                    cell
                }
            }
        };
        // Parsed outside the lock. A queue that meets an entry whose parse is under way waits
        // for it here (microseconds); the bytes are equal, so whichever parses, parses these.
        let mut source = Source::Shared;
        let outcome = cell
            .get_or_init(|| {
                source = Source::Parsed;
                parse::ingest(body, hints, now, self.limits).map_err(Arc::new)
            })
            .clone();
        (outcome, source)
    }
}

impl State {
    fn slot(&self, id: u64) -> Option<&Entry> {
        let index = id.checked_sub(self.first_id)? as usize;
        self.slots.get(index)?.as_ref()
    }

    fn slot_mut(&mut self, id: u64) -> Option<&mut Option<Entry>> {
        let index = id.checked_sub(self.first_id)? as usize;
        self.slots.get_mut(index)
    }

    /// The queues that took a message within `within`, a bit each.
    fn active(&self, at: Instant, within: Duration) -> u32 {
        self.last_take
            .iter()
            .enumerate()
            .filter(|(_, last)| last.is_some_and(|t| at.saturating_duration_since(t) <= within))
            .fold(0, |bits, (i, _)| bits | 1 << i)
    }

    /// The oldest entry for these bytes that `bit`'s queue has not taken yet.
    fn find(&self, hash: u64, body: &[u8], hints: &SenderHints, bit: u32) -> Option<u64> {
        self.by_hash.get(&hash)?.iter().copied().find(|id| {
            self.slot(*id)
                .is_some_and(|e| e.taken & bit == 0 && *e.body == *body && e.hints == *hints)
        })
    }

    /// Marks `id` taken by `bit`; drops it once every active queue has taken it.
    fn take(&mut self, id: u64, bit: u32, active: u32) -> Arc<OnceLock<Outcome>> {
        let Some(Some(entry)) = self.slot_mut(id) else {
            return Arc::new(OnceLock::new());
        };
        entry.taken |= bit;
        let cell = Arc::clone(&entry.outcome);
        if entry.taken & active == active {
            self.remove(id);
        }
        cell
    }

    fn insert(&mut self, entry: Entry) {
        let id = self.first_id + self.slots.len() as u64;
        self.by_hash.entry(entry.hash).or_default().push(id);
        self.bytes += entry.body.len();
        self.slots.push_back(Some(entry));
    }

    fn remove(&mut self, id: u64) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        let Some(entry) = slot.take() else {
            return;
        };
        self.bytes -= entry.body.len();
        if let Some(ids) = self.by_hash.get_mut(&entry.hash) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_hash.remove(&entry.hash);
            }
        }
    }

    /// Drops entries past their age, and the oldest beyond the bound on entries (a taken
    /// slot counts until it reaches the front, so the memory used stays bounded).
    fn forget_old(&mut self, at: Instant, bounds: &MemoBounds) {
        while let Some(front) = self.slots.front() {
            let keep = match front {
                None => false,
                Some(entry) => {
                    self.slots.len() < bounds.entries
                        && self.bytes <= bounds.bytes
                        && at.saturating_duration_since(entry.born) <= bounds.max_age
                }
            };
            if keep {
                break;
            }
            let id = self.first_id;
            self.remove(id);
            self.slots.pop_front();
            self.first_id += 1;
        }
    }
}

#[cfg(test)]
impl IngestMemo {
    /// Entries held now.
    fn held(&self) -> usize {
        self.lock().slots.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const LIMITS: IngestLimits = IngestLimits {
        max_message_bytes: 1 << 20,
    };
    /// The original publisher's message: local time without a zone, placed at arrival.
    const ZONELESS: &str = r#"{"timestamp": "2026-11-23T12:00:00.500000", "cpu_percent": 37.5,
        "memory": {"total": 8000, "available": 6000, "percent": 25.0},
        "platform": "Linux", "platform_release": "5.15.0", "processor": "x86_64"}"#;

    fn body(seq: u64) -> Vec<u8> {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/reading.json"))
                .expect("fixture");
        v["seq"] = seq.into();
        v["collected_at"] = "2026-11-23T11:59:59.000Z".into();
        serde_json::to_vec(&v).expect("json")
    }

    fn arrival(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("valid")
            + chrono::Duration::milliseconds(ms)
    }

    /// A memo with `queues` queues, all of which have taken something (so all are expected).
    fn memo(queues: usize, bounds: MemoBounds, at: Instant) -> (IngestMemo, Vec<QueueId>) {
        let memo = IngestMemo::new(LIMITS, bounds);
        let ids: Vec<QueueId> = (0..queues)
            .map(|_| memo.add_queue().expect("room"))
            .collect();
        for id in &ids {
            memo.consuming(*id, at);
        }
        (memo, ids)
    }

    fn accepted(outcome: &(Outcome, Source)) -> &Arc<Accepted> {
        outcome.0.as_ref().expect("accepted")
    }

    #[test]
    fn one_message_on_three_queues_is_parsed_once_and_shared() {
        let at = Instant::now();
        let (memo, q) = memo(3, MemoBounds::default(), at);
        let hints = SenderHints::default();
        let live = memo.ingest(q[0], &body(1), &hints, arrival(1), at);
        let history = memo.ingest(q[1], &body(1), &hints, arrival(2), at);
        let alerts = memo.ingest(q[2], &body(1), &hints, arrival(3), at);
        assert_eq!(live.1, Source::Parsed);
        assert_eq!((history.1, alerts.1), (Source::Shared, Source::Shared));
        assert!(Arc::ptr_eq(accepted(&live), accepted(&history)));
        assert!(Arc::ptr_eq(accepted(&live), accepted(&alerts)));
        assert_eq!(memo.held(), 0, "gone once every queue took it");
    }

    #[test]
    fn a_reading_placed_at_arrival_gets_one_time_on_every_queue() {
        let at = Instant::now();
        let (memo, q) = memo(3, MemoBounds::default(), at);
        let hints = SenderHints::default();
        let times: Vec<DateTime<Utc>> = q
            .iter()
            .zip([10, 250, 900])
            .map(|(queue, ms)| {
                let outcome = memo.ingest(*queue, ZONELESS.as_bytes(), &hints, arrival(ms), at);
                accepted(&outcome).reading.collected_at
            })
            .collect();
        assert_eq!(
            times,
            [arrival(10); 3],
            "the first arrival's time, everywhere"
        );
    }

    #[test]
    fn a_refusal_is_shared_too() {
        let at = Instant::now();
        let (memo, q) = memo(2, MemoBounds::default(), at);
        let hints = SenderHints::default();
        let first = memo.ingest(q[0], b"not json", &hints, arrival(0), at);
        let second = memo.ingest(q[1], b"not json", &hints, arrival(0), at);
        assert_eq!(second.1, Source::Shared);
        let (Err(a), Err(b)) = (first.0, second.0) else {
            panic!("refused");
        };
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn the_same_bytes_sent_twice_are_two_messages_matched_in_order() {
        let at = Instant::now();
        let (memo, q) = memo(2, MemoBounds::default(), at);
        let hints = SenderHints::default();
        let bytes = ZONELESS.as_bytes();
        let first = memo.ingest(q[0], bytes, &hints, arrival(100), at);
        let again = memo.ingest(q[0], bytes, &hints, arrival(200), at);
        assert_eq!(
            again.1,
            Source::Parsed,
            "a queue never takes one entry twice"
        );
        let other_first = memo.ingest(q[1], bytes, &hints, arrival(300), at);
        let other_again = memo.ingest(q[1], bytes, &hints, arrival(400), at);
        assert!(Arc::ptr_eq(accepted(&first), accepted(&other_first)));
        assert!(Arc::ptr_eq(accepted(&again), accepted(&other_again)));
        assert_eq!(accepted(&other_again).reading.collected_at, arrival(200));
        assert_eq!(memo.held(), 0);
    }

    #[test]
    fn other_sender_hints_are_another_message() {
        let at = Instant::now();
        let (memo, q) = memo(2, MemoBounds::default(), at);
        let bytes = ZONELESS.as_bytes();
        let plain = memo.ingest(q[0], bytes, &SenderHints::default(), arrival(0), at);
        let named = SenderHints {
            header_host: Some("db-2".into()),
            app_id: None,
        };
        let other = memo.ingest(q[1], bytes, &named, arrival(0), at);
        assert_eq!(other.1, Source::Parsed);
        assert_eq!(accepted(&other).reading.host, "db-2");
        assert_ne!(accepted(&plain).reading.host, "db-2");
    }

    #[test]
    fn a_queue_that_takes_nothing_holds_nothing_back() {
        let start = Instant::now();
        let memo = IngestMemo::new(LIMITS, MemoBounds::default());
        let live = memo.add_queue().expect("room");
        let standby = memo.add_queue().expect("room");
        let stopped = memo.add_queue().expect("room");
        memo.consuming(live, start);
        memo.consuming(standby, start);
        memo.consuming(stopped, start);
        memo.stopped(stopped);
        let hints = SenderHints::default();
        let _ = memo.ingest(live, &body(1), &hints, arrival(0), start);
        assert_eq!(memo.held(), 1, "kept for the standby, which might take it");
        let later = start + MemoBounds::default().active_for + Duration::from_secs(1);
        for seq in 2..10 {
            let _ = memo.ingest(live, &body(seq), &hints, arrival(0), later);
        }
        assert_eq!(
            memo.held(),
            0,
            "a queue that took nothing for a minute is waited for no more"
        );
    }

    #[test]
    fn entries_are_bounded_in_number() {
        let at = Instant::now();
        let bounds = MemoBounds {
            entries: 8,
            max_age: Duration::from_secs(60),
            ..MemoBounds::default()
        };
        let (memo, q) = memo(2, bounds, at);
        let hints = SenderHints::default();
        for seq in 0..20 {
            let _ = memo.ingest(q[0], &body(seq), &hints, arrival(0), at);
            assert!(memo.held() <= 8);
        }
        let oldest = memo.ingest(q[1], &body(0), &hints, arrival(0), at);
        assert_eq!(oldest.1, Source::Parsed, "too far behind: parsed again");
        let recent = memo.ingest(q[1], &body(19), &hints, arrival(0), at);
        assert_eq!(recent.1, Source::Shared);
    }

    #[test]
    fn entries_are_bounded_in_age() {
        let start = Instant::now();
        let bounds = MemoBounds {
            max_age: Duration::from_secs(5),
            ..MemoBounds::default()
        };
        let (memo, q) = memo(2, bounds, start);
        let hints = SenderHints::default();
        let _ = memo.ingest(q[0], &body(1), &hints, arrival(0), start);
        let _ = memo.ingest(
            q[0],
            &body(2),
            &hints,
            arrival(0),
            start + Duration::from_secs(3),
        );
        assert_eq!(memo.held(), 2);
        let later = start + Duration::from_secs(6);
        let old = memo.ingest(q[1], &body(1), &hints, arrival(0), later);
        assert_eq!(old.1, Source::Parsed, "older than max_age: gone");
        let young = memo.ingest(q[1], &body(2), &hints, arrival(0), later);
        assert_eq!(young.1, Source::Shared);
    }

    #[test]
    fn entries_are_bounded_in_bytes() {
        let at = Instant::now();
        let bounds = MemoBounds {
            bytes: 8 * 1024,
            max_age: Duration::from_secs(60),
            ..MemoBounds::default()
        };
        let (memo, q) = memo(2, bounds, at);
        let hints = SenderHints::default();
        let big = |seq: u64| {
            let mut b = body(seq);
            b.extend(std::iter::repeat_n(b' ', 1024));
            b
        };
        for seq in 0..10 {
            let _ = memo.ingest(q[0], &big(seq), &hints, arrival(0), at);
            // Checked before each insert: at most one entry over the bound.
            assert!(memo.held() <= 4, "{} held", memo.held());
        }
        let oldest = memo.ingest(q[1], &big(0), &hints, arrival(0), at);
        assert_eq!(
            oldest.1,
            Source::Parsed,
            "beyond the bytes kept: parsed again"
        );
        let recent = memo.ingest(q[1], &big(9), &hints, arrival(0), at);
        assert_eq!(recent.1, Source::Shared);
    }

    #[test]
    fn at_most_max_queues() {
        let memo = IngestMemo::new(LIMITS, MemoBounds::default());
        for _ in 0..MAX_QUEUES {
            memo.add_queue().expect("room");
        }
        assert!(memo.add_queue().is_err());
    }
}
