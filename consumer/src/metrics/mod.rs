//! The consumer's Prometheus metrics: the pipeline's own, counted by the callers of each part
//! from what it returns, and (in [`fleet`]) every host's latest reading as gauges, read from
//! the live view at scrape time, so one scrape of one consumer gives the whole fleet.

pub mod fleet;
pub mod history;

use prometheus::core::Collector;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use shared::metrics::{new_registry, register, NAMESPACE};
use std::collections::BTreeMap;

/// Buckets for reading age: publishing and queueing take milliseconds, an outage minutes.
const AGE_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0,
];

/// Every metric the consumer exports, registered in its own registry; cheap to clone.
#[derive(Clone)]
pub struct ConsumerMetrics {
    pub registry: Registry,
    pub received: IntCounter,
    /// Messages run through ingest: about one per message however many queues carry it.
    pub parsed: IntCounter,
    pub rejected: IntCounterVec,
    pub ws_clients: IntGauge,
    pub ws_frames_sent: IntCounter,
    pub ws_dropped: IntCounterVec,
    pub reading_age: Histogram,
    pub broker_connected: IntGauge,
    /// Readings whose time was replaced by their arrival time, by reason.
    pub retimed: IntCounterVec,
}

/// Every reason a message is refused, so each counter starts at 0.
pub const REJECT_REASONS: &[&str] = &[
    "malformed",
    "unsupported_version",
    "invalid_field",
    "host_control_characters",
    "too_large",
    "too_many_hosts",
];

/// Every reason the server closes a browser, so each counter starts at 0.
pub const WS_DROP_REASONS: &[&str] = &[
    "send_timeout",
    "lagged",
    "heartbeat_timeout",
    "client_sent_data",
    "frame_too_large",
    "invalid_utf8",
    "protocol_error",
    "shutdown",
    // Its login expired or logged out (closed 1008).
    "session_ended",
];

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

impl ConsumerMetrics {
    /// Builds and registers the metrics.
    pub fn new() -> prometheus::Result<Self> {
        Self::in_registry(new_registry())
    }

    fn in_registry(registry: Registry) -> prometheus::Result<Self> {
        let r = &registry;
        let metrics = Self {
            received: register(
                r,
                IntCounter::with_opts(opts("messages_received_total", "Messages from the broker.")),
            )?,
            parsed: register(
                r,
                IntCounter::with_opts(opts(
                    "messages_parsed_total",
                    "Messages run through ingest; each is parsed once for all the queues that carry it, while they keep up with one another.",
                )),
            )?,
            rejected: register(
                r,
                IntCounterVec::new(
                    opts("messages_rejected_total", "Messages refused, by reason."),
                    &["reason"],
                ),
            )?,
            ws_clients: register(
                r,
                IntGauge::with_opts(opts("ws_clients", "WebSocket clients connected.")),
            )?,
            ws_frames_sent: register(
                r,
                IntCounter::with_opts(opts("ws_frames_sent_total", "Frames sent to browsers.")),
            )?,
            ws_dropped: register(
                r,
                IntCounterVec::new(
                    opts(
                        "ws_clients_dropped_total",
                        "Clients closed by the server, by reason.",
                    ),
                    &["reason"],
                ),
            )?,
            reading_age: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "reading_age_seconds",
                        "Receipt time minus collected_at of each accepted reading.",
                    )
                    .namespace(NAMESPACE)
                    .buckets(AGE_BUCKETS.to_vec()),
                ),
            )?,
            broker_connected: register(
                r,
                IntGauge::with_opts(opts("broker_connected", "1 while consuming from RabbitMQ.")),
            )?,
            retimed: register(
                r,
                IntCounterVec::new(
                    opts(
                        "readings_retimed_total",
                        "Readings placed at their arrival time, by reason: dated in the future, or without a time zone.",
                    ),
                    &["reason"],
                ),
            )?,
            registry,
        };
        Ok(metrics.with_known_labels())
    }

    /// Labelled counters start at 0 for every known label: Grafana panels and alert
    /// expressions see 0, not "no data", before the first event.
    fn with_known_labels(self) -> Self {
        for reason in REJECT_REASONS {
            self.rejected.with_label_values(&[reason]);
        }
        for reason in WS_DROP_REASONS {
            self.ws_dropped.with_label_values(&[reason]);
        }
        for retimed in crate::intake::parse::Retimed::ALL {
            self.retimed.with_label_values(&[retimed.reason()]);
        }
        self
    }

    /// Refused messages by reason, for `/health`.
    pub fn rejected_by_reason(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for family in self.rejected.collect() {
            for metric in family.get_metric() {
                let reason = metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == "reason")
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default();
                let count = metric.get_counter().get_value() as u64;
                if count > 0 {
                    out.insert(reason, count);
                }
            }
        }
        out
    }
}
