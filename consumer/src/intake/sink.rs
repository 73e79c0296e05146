//! Sinks: where accepted readings go from a queue. Each sink is fed from its own queue by
//! [`super::queue::consume_forever`], which acknowledges a batch to the broker only once the
//! sink has taken it, so a sink that must see every reading (the store, the alerts) slows the
//! broker down instead of losing anything. The live view is a sink that never waits.

use crate::intake::parse::Accepted;
use std::future::Future;
use std::sync::Arc;

/// A reading a sink would not take, for the caller to count and log.
#[derive(Debug)]
pub struct Refused {
    /// A short, fixed label for `hostpulse_messages_rejected_total{reason}`.
    pub reason: &'static str,
    pub detail: String,
}

/// A sink could not take a batch now (its store is down, say): the batch stays unacknowledged
/// and is offered again.
#[derive(Debug, thiserror::Error)]
#[error("{sink}: {detail}")]
pub struct SinkError {
    pub sink: &'static str,
    /// A short, fixed label for metrics.
    pub reason: &'static str,
    pub detail: String,
}

/// Where accepted readings go.
pub trait Sink: Send + Sync + 'static {
    /// The sink's name, for logs.
    fn name(&self) -> &'static str;

    /// Takes a batch, in delivery order. `Ok` means the readings are safe with the sink (they
    /// are then acknowledged), listing those it refused for good.
    fn take(
        &self,
        batch: &[Arc<Accepted>],
    ) -> impl Future<Output = Result<Vec<Refused>, SinkError>> + Send;

    /// The queue was opened on a new connection; deliveries follow.
    fn opened(&self) {}

    /// A canary (`alerts/canary.rs`) came through this sink's queue, after the batch it was
    /// delivered with. Only the evaluator listens; it is never a reading.
    fn heard_canary(&self, _body: &[u8]) {}
}
