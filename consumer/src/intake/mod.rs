//! Intake: the first stage of the path. Every queue's deliveries become accepted readings,
//! once per message for the whole consumer, and go to the queue's [`sink::Sink`].
//!
//! ```text
//! queue (queue.rs) ─▶ memo (memo.rs) ─▶ parse (parse.rs, legacy.rs) ─▶ a Sink (sink.rs)
//! ```
//! - [`queue`]: declares and consumes one queue, hands each batch to its sink and acknowledges
//!   it once the sink took it; reconnects on its own.
//! - [`parse`]: the bytes of one delivery → an accepted reading or a refusal with a reason;
//!   [`legacy`] converts the original Python publisher's messages.
//! - [`memo`]: one message reaches this consumer on up to three queues (live, history,
//!   alerts); the memo parses it once and hands every queue the same outcome. The live queue
//!   counts it and logs a refusal, the others stay silent, so `/metrics` and the log show each
//!   message once.
//! - [`sink`]: what a queue feeds (the live view, the history store, the alerts).

pub mod legacy;
pub mod memo;
pub mod parse;
pub mod queue;
pub mod sink;

use crate::clock::SharedClock;
use crate::intake::legacy::SenderHints;
use crate::intake::parse::{Accepted, IngestLimits};
use crate::intake::sink::Refused;
use crate::metrics::ConsumerMetrics;
use memo::{IngestMemo, MemoBounds, QueueId, Source};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one log line per this long about refused messages; the rest are counted.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

/// What turning deliveries into readings needs, one per consumer, shared by its queues.
pub struct Intake {
    clock: SharedClock,
    metrics: ConsumerMetrics,
    memo: IngestMemo,
    rejects: Mutex<RejectLog>,
}

impl Intake {
    /// An intake checking against `limits`, reading time from `clock`, counting in `metrics`.
    pub fn new(limits: IngestLimits, clock: SharedClock, metrics: ConsumerMetrics) -> Arc<Self> {
        Arc::new(Self {
            clock,
            metrics,
            memo: IngestMemo::new(limits, MemoBounds::default()),
            rejects: Mutex::new(RejectLog::default()),
        })
    }

    /// The clock readings are judged by.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// A place for one queue. `counts`: this queue's deliveries are the ones counted (and
    /// refusals logged); true for exactly one queue, the live one, which carries every message.
    pub fn queue(self: &Arc<Self>, counts: bool) -> anyhow::Result<QueueIntake> {
        Ok(QueueIntake {
            intake: Arc::clone(self),
            id: self.memo.add_queue()?,
            counts,
        })
    }
}

/// One queue's way into the intake.
#[derive(Clone)]
pub struct QueueIntake {
    intake: Arc<Intake>,
    id: QueueId,
    counts: bool,
}

impl QueueIntake {
    /// The clock readings are judged by.
    pub fn clock(&self) -> &SharedClock {
        &self.intake.clock
    }

    /// This queue consumes from now on: the other queues keep what they parse for it. Called
    /// before the queue is bound, so no message it will carry is parsed without it.
    pub fn consuming(&self) {
        self.intake.memo.consuming(self.id, Instant::now());
    }

    /// This queue stopped consuming.
    pub fn stopped(&self) {
        self.intake.memo.stopped(self.id);
    }

    /// One delivery's body, with its AMQP properties, as an accepted reading (`None`: refused).
    pub fn take(&self, body: &[u8], properties: &lapin::BasicProperties) -> Option<Arc<Accepted>> {
        let intake = &self.intake;
        let metrics = &intake.metrics;
        let now = intake.clock.now();
        let hints = sender_hints(properties);
        let (outcome, source) = intake
            .memo
            .ingest(self.id, body, &hints, now, Instant::now());
        if source == Source::Parsed {
            metrics.parsed.inc();
        }
        if !self.counts {
            return outcome.ok();
        }
        metrics.received.inc();
        match outcome {
            Ok(accepted) => {
                let age = (now - accepted.reading.collected_at)
                    .num_microseconds()
                    .unwrap_or(0);
                metrics.reading_age.observe(age.max(0) as f64 / 1e6);
                if let Some(retimed) = accepted.retimed {
                    metrics.retimed.with_label_values(&[retimed.reason()]).inc();
                }
                Some(accepted)
            }
            Err(refusal) => {
                metrics
                    .rejected
                    .with_label_values(&[refusal.reason()])
                    .inc();
                intake.log_refusal(refusal.reason(), &refusal.to_string());
                None
            }
        }
    }

    /// Counts and logs the readings a sink refused (only the live view refuses any).
    pub fn refused_by_sink(&self, refused: Vec<Refused>) {
        for refusal in refused {
            self.intake
                .metrics
                .rejected
                .with_label_values(&[refusal.reason])
                .inc();
            self.intake.log_refusal(refusal.reason, &refusal.detail);
        }
    }
}

impl Intake {
    fn log_refusal(&self, reason: &str, detail: &str) {
        self.rejects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(reason, detail);
    }
}

/// What the AMQP properties say about the sender, for the original's messages that name no
/// host: a `hostname` or `host` header, and the `app_id`.
fn sender_hints(properties: &lapin::BasicProperties) -> SenderHints {
    use lapin::types::AMQPValue;
    let header_host = properties.headers().as_ref().and_then(|headers| {
        ["hostname", "host"]
            .iter()
            .find_map(|key| match headers.inner().get(*key) {
                Some(AMQPValue::LongString(s)) => Some(s.to_string()),
                Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
                _ => None,
            })
    });
    SenderHints {
        header_host,
        app_id: properties.app_id().as_ref().map(|a| a.to_string()),
    }
}

/// Logs refused messages without flooding: the first at once, then one line per period
/// with how many were refused meanwhile.
#[derive(Default)]
struct RejectLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RejectLog {
    fn record(&mut self, reason: &str, detail: &str) {
        if self.last.is_some_and(|at| at.elapsed() < REJECT_LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            reason,
            error = detail,
            also_refused_since_last_line = self.suppressed,
            "refused a message from the broker"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    /// Log output collected in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_refused_message_on_three_queues_is_parsed_counted_and_logged_once() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber =
            shared::telemetry::get_subscriber("warn", move || sink.clone(), false).expect("filter");
        let _lines = shared::testing::log_lines_stay_on();
        let metrics = ConsumerMetrics::new().expect("metrics");
        let clock = ManualClock::new(
            chrono::Utc
                .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
                .single()
                .expect("valid"),
        );
        let intake = Intake::new(
            IngestLimits {
                max_message_bytes: 4096,
            },
            clock,
            metrics.clone(),
        );
        let queues = [true, false, false].map(|counts| intake.queue(counts).expect("room"));
        for queue in &queues {
            queue.consuming();
        }
        tracing::subscriber::with_default(subscriber, || {
            for queue in &queues {
                assert!(queue
                    .take(b"{not json", &lapin::BasicProperties::default())
                    .is_none());
            }
        });
        let log = String::from_utf8_lossy(&captured.0.lock().expect("log")).into_owned();
        assert_eq!(
            log.matches("refused a message from the broker").count(),
            1,
            "{log}"
        );
        assert_eq!(metrics.parsed.get(), 1);
        assert_eq!(metrics.received.get(), 1);
        assert_eq!(metrics.rejected.with_label_values(&["malformed"]).get(), 1);
    }

    #[test]
    fn a_host_name_with_control_characters_is_logged_escaped() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber =
            shared::telemetry::get_subscriber("warn", move || sink.clone(), false).expect("filter");
        let _lines = shared::testing::log_lines_stay_on();
        let metrics = ConsumerMetrics::new().expect("metrics");
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("valid");
        let intake = Intake::new(
            IngestLimits {
                max_message_bytes: 1 << 20,
            },
            ManualClock::new(now),
            metrics.clone(),
        );
        let queue = intake.queue(true).expect("room");
        queue.consuming();
        let mut reading: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/reading.json"))
                .expect("fixture");
        reading["host"] = "web-1\nFAKE ERROR line\u{1b}[2J".into();
        reading["collected_at"] = "2026-11-23T12:00:00Z".into();
        let body = serde_json::to_vec(&reading).expect("JSON");
        tracing::subscriber::with_default(subscriber, || {
            assert!(queue
                .take(&body, &lapin::BasicProperties::default())
                .is_none());
        });
        let log = String::from_utf8_lossy(&captured.0.lock().expect("log")).into_owned();
        assert!(log.contains("host_control_characters"), "{log}");
        assert!(log.contains("FAKE ERROR line"), "named, escaped: {log}");
        assert_eq!(log.lines().count(), 1, "no forged line: {log}");
        assert!(!log.contains('\u{1b}'), "no raw escape: {log:?}");
        assert_eq!(
            metrics
                .rejected
                .with_label_values(&["host_control_characters"])
                .get(),
            1
        );
    }
}
