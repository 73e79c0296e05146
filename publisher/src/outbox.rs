//! The outbox: readings taken while the broker cannot take them, kept in order (by `seq`) in
//! a bounded queue until they are confirmed. Full, it drops the oldest and counts it.

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
    queue: Mutex<VecDeque<Reading>>,
}

impl Outbox {
    /// An outbox holding at most `capacity` readings; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            queue: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Reading>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Readings waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Queues `reading` in `seq` order. Returns how many older readings were dropped for it.
    pub fn push(&self, reading: Reading, when_full: WhenFull) -> Result<usize, QueueError> {
        if self.capacity == 0 {
            return Err(QueueError::Disabled);
        }
        let mut queue = self.lock();
        let mut dropped = 0;
        while queue.len() >= self.capacity {
            match when_full {
                WhenFull::Refuse => return Err(QueueError::Full(queue.len())),
                WhenFull::DropOldest => {
                    queue.pop_front();
                    dropped += 1;
                }
            }
        }
        // Usually the newest; a reading whose publish just failed may be older than some
        // already waiting.
        let at = queue.partition_point(|r| r.seq < reading.seq);
        queue.insert(at, reading);
        Ok(dropped)
    }

    /// The oldest waiting reading, left in place until [`Self::confirmed`].
    pub fn front(&self) -> Option<Reading> {
        self.lock().front().cloned()
    }

    /// Removes the reading with `seq` once the broker confirmed it.
    pub fn confirmed(&self, seq: u64) {
        let mut queue = self.lock();
        if let Some(at) = queue.iter().position(|r| r.seq == seq) {
            queue.remove(at);
        }
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
        outbox.lock().iter().map(|r| r.seq).collect()
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
    fn a_zero_capacity_outbox_takes_nothing() {
        let outbox = Outbox::new(0);
        assert_eq!(
            outbox.push(reading(1), WhenFull::DropOldest),
            Err(QueueError::Disabled)
        );
        assert!(outbox.is_empty());
    }
}
