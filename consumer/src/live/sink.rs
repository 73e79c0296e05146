//! The live view as a sink of the live queue.

use super::{LiveView, TooManyHosts};
use crate::intake::parse::Accepted;
use crate::intake::sink::{Refused, Sink, SinkError};
use std::sync::Arc;

/// The live view as a sink: takes everything at once (browsers that cannot keep up are
/// dropped by the broadcast, not waited for).
pub struct LiveSink(pub Arc<LiveView>);

impl Sink for LiveSink {
    fn name(&self) -> &'static str {
        "live"
    }

    async fn take(&self, batch: &[Arc<Accepted>]) -> Result<Vec<Refused>, SinkError> {
        let mut refused = Vec::new();
        for accepted in batch {
            if let Err(e) = self.0.publish(accepted) {
                refused.push(Refused {
                    reason: TooManyHosts::REASON,
                    detail: format!("{e} ({})", accepted.reading.host),
                });
            }
        }
        Ok(refused)
    }
}
