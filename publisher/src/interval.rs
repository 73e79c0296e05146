//! Publishing on its own, every `PUBLISH_INTERVAL_SECS`.
//!
//! Sampling never waits for the broker: each reading is numbered at once and its publish (the
//! confirmation, or the outbox when none comes within `CONFIRM_TIMEOUT_SECS`) goes on in a
//! task of its own, so a broker that is slow, frozen or gone leaves no hole in the readings.

use crate::broker::{ReadingPublisher, SubmitError, Submitted};
use crate::collector::Collector;
use crate::outbox::WhenFull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::MissedTickBehavior;

/// Takes and publishes a reading every `period` until the process ends.
pub async fn publish_every(
    period: Duration,
    collector: Collector,
    publisher: Arc<ReadingPublisher>,
) {
    let mut ticks = tokio::time::interval(period);
    // After a stall (of this process, the broker is never waited on), carry on from now
    // rather than firing a burst of readings taken at the same moment.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let report = Arc::new(Report::default());
    // Readings say how often they come, so a consumer knows when a host is overdue.
    let interval_secs = u32::try_from(period.as_secs())
        .ok()
        .filter(|secs| *secs > 0);
    loop {
        ticks.tick().await;
        match collector.reading().await {
            Ok(mut reading) => {
                Arc::make_mut(&mut reading).interval_secs = interval_secs;
                let publishing = publisher.submit_detached(reading, WhenFull::DropOldest);
                let (publisher, report) = (Arc::clone(&publisher), Arc::clone(&report));
                tokio::spawn(async move {
                    let outcome = publishing.await;
                    report.outcome(outcome, publisher.outbox_len());
                });
            }
            Err(e) => report.failed(&e.to_string()),
        }
    }
}

/// Logs the interval's failures without flooding: one line when publishing starts failing,
/// one when it works again.
#[derive(Default)]
struct Report {
    failing: AtomicBool,
}

impl Report {
    fn outcome(&self, outcome: Result<Submitted, SubmitError>, waiting: usize) {
        match outcome {
            Ok(Submitted::Published(published)) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(seq = published.seq, "interval publishing works again");
                }
                tracing::debug!(
                    seq = published.seq,
                    bytes = published.body.len(),
                    "published"
                );
            }
            Ok(Submitted::Queued { seq }) => self.failed(&format!(
                "broker unavailable: reading {seq} queued ({waiting} waiting)"
            )),
            Err(e) => self.failed(&e.to_string()),
        }
    }

    fn failed(&self, error: &str) {
        if self.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(%error, "interval publish failed");
        } else {
            tracing::warn!(%error, "interval publish failed");
        }
    }
}
