//! The outbox: readings taken while the broker cannot take them, kept in order (by `seq`) in
//! a bounded queue until they are confirmed. Full, it drops the oldest and counts it. With a
//! [`Spool`], every waiting reading is also on disk, and sequence numbers are handed out here
//! so that they go on increasing across runs.

use crate::spool::Spool;
use shared::reading::Reading;
use std::collections::VecDeque;
use std::sync::Mutex;

/// How a new reading is let in when the outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Make room by dropping the oldest (the interval publisher: newest data matters most).
    DropOldest,
    /// Refuse the new one (a person asked at `/publish`: tell them, do not drop silently).
    Refuse,
}

/// Why a reading could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the outbox is disabled (OUTBOX_CAPACITY=0)")]
    Disabled,
    #[error("the outbox is full ({0} readings waiting)")]
    Full(usize),
}

/// A bounded, seq-ordered queue of unconfirmed readings.
pub struct Outbox {
    capacity: usize,
    inner: Mutex<Inner>,
    /// Disk writes that failed (disk full, say): those readings wait in memory only.
    spool_failures: Option<prometheus::IntCounter>,
}

struct Inner {
    queue: VecDeque<Reading>,
    spool: Option<Spool>,
    next_seq: u64,
}

impl Outbox {
    /// An outbox in memory holding at most `capacity` readings; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        Self::build(capacity, None, 1, None)
    }

    /// An outbox kept on disk too, starting with what a previous run left there (the oldest
    /// dropped if more than `capacity`: returned, to be counted). Disk failures are counted
    /// in `spool_failures`.
    pub fn on_disk(
        capacity: usize,
        spool: Spool,
        loaded: crate::spool::Loaded,
        spool_failures: prometheus::IntCounter,
    ) -> (Self, usize) {
        let outbox = Self::build(capacity, Some(spool), loaded.next_seq, Some(spool_failures));
        let mut dropped = 0;
        for reading in loaded.readings {
            // Already on disk: queued without writing it again.
            let mut inner = outbox.lock();
            while inner.queue.len() >= capacity.max(1) {
                if let Some(oldest) = inner.queue.pop_front() {
                    dropped += 1;
                    inner.forget(oldest.seq, &outbox.spool_failures);
                }
            }
            if capacity > 0 {
                inner.queue.push_back(reading);
            } else {
                dropped += 1;
                inner.forget(reading.seq, &outbox.spool_failures);
            }
        }
        (outbox, dropped)
    }

    fn build(
        capacity: usize,
        spool: Option<Spool>,
        next_seq: u64,
        spool_failures: Option<prometheus::IntCounter>,
    ) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                spool,
                next_seq,
            }),
            spool_failures,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next sequence number (reserved on disk first, when there is a spool).
    pub fn take_seq(&self) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        if let Some(spool) = inner.spool.as_mut() {
            if let Err(e) = spool.reserve(seq) {
                // Numbers still go up in this run; only a later run could reuse some.
                count(&self.spool_failures);
                spool.log_failure("reserve sequence numbers in", &e);
            }
        }
        seq
    }

    /// Readings waiting.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    /// Queues `reading` in `seq` order. Returns how many older readings were dropped for it.
    pub fn push(&self, reading: Reading, when_full: WhenFull) -> Result<usize, QueueError> {
        if self.capacity == 0 {
            return Err(QueueError::Disabled);
        }
        let mut inner = self.lock();
        let mut dropped = 0;
        while inner.queue.len() >= self.capacity {
            match when_full {
                WhenFull::Refuse => return Err(QueueError::Full(inner.queue.len())),
                WhenFull::DropOldest => {
                    if let Some(oldest) = inner.queue.pop_front() {
                        inner.forget(oldest.seq, &self.spool_failures);
                    }
                    dropped += 1;
                }
            }
        }
        if let Some(spool) = inner.spool.as_mut() {
            if let Err(e) = spool.append(&reading) {
                // Disk full or failing: the reading still waits, in memory.
                count(&self.spool_failures);
                spool.log_failure("write", &e);
            }
        }
        // Usually the newest; a reading whose publish just failed may be older than some
        // already waiting.
        let at = inner.queue.partition_point(|r| r.seq < reading.seq);
        inner.queue.insert(at, reading);
        Ok(dropped)
    }

    /// The oldest waiting reading, left in place until [`Self::confirmed`].
    pub fn front(&self) -> Option<Reading> {
        self.lock().queue.front().cloned()
    }

    /// Removes the reading with `seq` once the broker confirmed it.
    pub fn confirmed(&self, seq: u64) {
        let mut inner = self.lock();
        if let Some(at) = inner.queue.iter().position(|r| r.seq == seq) {
            inner.queue.remove(at);
            inner.forget(seq, &self.spool_failures);
        }
    }
}

impl Inner {
    /// Tells the spool that `seq` no longer waits.
    fn forget(&mut self, seq: u64, failures: &Option<prometheus::IntCounter>) {
        let Some(spool) = self.spool.as_mut() else {
            return;
        };
        if let Err(e) = spool.remove(seq, self.queue.iter()) {
            // At worst the reading is sent once more after a restart (readers drop it by id).
            count(failures);
            spool.log_failure("update", &e);
        }
    }
}

fn count(failures: &Option<prometheus::IntCounter>) {
    if let Some(counter) = failures {
        counter.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(seq: u64) -> Reading {
        let mut r: Reading =
            serde_json::from_str(include_str!("../../consumer/tests/fixtures/reading.json"))
                .expect("fixture");
        r.seq = seq;
        r
    }

    fn seqs(outbox: &Outbox) -> Vec<u64> {
        outbox.lock().queue.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn keeps_seq_order_and_drops_the_oldest_when_full() {
        let outbox = Outbox::new(3);
        for seq in [1, 2, 4] {
            assert_eq!(outbox.push(reading(seq), WhenFull::DropOldest), Ok(0));
        }
        assert_eq!(outbox.push(reading(3), WhenFull::DropOldest), Ok(1));
        assert_eq!(seqs(&outbox), [2, 3, 4]);
        assert_eq!(
            outbox.push(reading(5), WhenFull::Refuse),
            Err(QueueError::Full(3))
        );
        outbox.confirmed(2);
        assert_eq!(outbox.front().map(|r| r.seq), Some(3));
    }

    #[test]
    fn on_disk_what_waits_outlives_the_process_and_seq_goes_on() {
        let dir = std::env::temp_dir().join(format!("hostpulse-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let failures = prometheus::IntCounter::new("f", "f").expect("valid");
        let open = |capacity| {
            let (spool, loaded) = Spool::open(&dir).expect("opens");
            Outbox::on_disk(capacity, spool, loaded, failures.clone())
        };
        let (outbox, dropped) = open(10);
        assert_eq!(dropped, 0);
        for _ in 0..4 {
            let seq = outbox.take_seq();
            outbox
                .push(reading(seq), WhenFull::DropOldest)
                .expect("queued");
        }
        outbox.confirmed(1);
        drop(outbox);
        // As after a crash: a new outbox on the same folder.
        let (outbox, _) = open(10);
        assert_eq!(seqs(&outbox), [2, 3, 4]);
        assert!(outbox.take_seq() > 4, "no seq is used twice");
        drop(outbox);
        // Fewer places than waiting readings: the oldest go, and are counted.
        let (outbox, dropped) = open(2);
        assert_eq!((seqs(&outbox), dropped), (vec![3, 4], 1));
        outbox.confirmed(3);
        outbox.confirmed(4);
        drop(outbox);
        let (outbox, _) = open(10);
        assert!(outbox.is_empty(), "confirmed readings are not sent again");
        assert_eq!(failures.get(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_zero_capacity_outbox_takes_nothing() {
        let outbox = Outbox::new(0);
        assert_eq!(
            outbox.push(reading(1), WhenFull::DropOldest),
            Err(QueueError::Disabled)
        );
        assert!(outbox.is_empty());
    }
}
