//! Publishing on its own, every `PUBLISH_INTERVAL_SECS`.

use crate::broker::{ReadingPublisher, Submitted};
use crate::collector::Collector;
use crate::outbox::WhenFull;
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
    // After a stall (a slow confirm), carry on from now rather than firing a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    // Readings say how often they come, so a consumer knows when a host is overdue.
    let interval_secs = u32::try_from(period.as_secs())
        .ok()
        .filter(|secs| *secs > 0);
    loop {
        ticks.tick().await;
        let outcome = match collector.reading().await {
            Ok(mut reading) => {
                std::sync::Arc::make_mut(&mut reading).interval_secs = interval_secs;
                match publisher.submit(&reading, WhenFull::DropOldest).await {
                    Ok(Submitted::Published(published)) => Ok(*published),
                    Ok(Submitted::Queued { seq }) => Err(format!(
                        "broker unavailable: reading {seq} queued ({} waiting)",
                        publisher.outbox_len()
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(published) => {
                if failing {
                    tracing::info!(seq = published.seq, "interval publishing works again");
                }
                failing = false;
                tracing::debug!(
                    seq = published.seq,
                    bytes = published.body.len(),
                    "published"
                );
            }
            // One line when it starts failing, not one a second for the whole outage.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "interval publish failed");
            }
            Err(e) => tracing::debug!(error = %e, "interval publish failed"),
        }
    }
}
