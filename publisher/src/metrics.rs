//! The publisher's Prometheus metrics.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use shared::metrics::{new_registry, register, LATENCY_BUCKETS, NAMESPACE};

/// The failure reason when the outbox is full and a reading is refused.
pub const OUTBOX_FULL: &str = "outbox_full";

/// Every `reason` of `hostpulse_publish_failures_total`: each `PublishError::reason` and
/// [`OUTBOX_FULL`]. Exported at 0 from start, so a dashboard or an alert on a reason sees a
/// series (and `increase()` its first failure) before anything went wrong.
pub const FAILURE_REASONS: [&str; 7] = [
    "not_connected",
    "nacked",
    "confirm_timeout",
    "broker_error",
    "encode",
    "unroutable",
    OUTBOX_FULL,
];

/// Every metric the publisher exports, registered in its own registry.
#[derive(Clone)]
pub struct PublisherMetrics {
    pub registry: Registry,
    pub published: IntCounter,
    pub failures: IntCounterVec,
    pub confirm_seconds: Histogram,
    pub collect_seconds: Histogram,
    /// Items left out of a sample (a counter that went back, a device gone, a file
    /// unreadable), by kind; every kind exported from the start.
    pub collect_skipped: IntCounterVec,
    /// Each process-table scan's duration (`PROCESS_INTERVAL_SECS` apart).
    pub process_scan_seconds: Histogram,
    /// Processes read by those scans: with the above, the scan's cost per process.
    pub process_scan_processes: IntCounter,
    pub broker_connected: IntGauge,
    pub outbox_len: IntGauge,
    pub outbox_dropped: IntCounter,
    /// Outbox disk writes that failed (the reading then waits in memory only).
    pub outbox_spool_failures: IntCounter,
}

impl PublisherMetrics {
    /// Builds and registers the metrics.
    pub fn new() -> prometheus::Result<Self> {
        let registry = new_registry();
        let opts = |name: &str, help: &str| Opts::new(name, help).namespace(NAMESPACE);
        let histogram = |name: &str, help: &str| {
            HistogramOpts::new(name, help)
                .namespace(NAMESPACE)
                .buckets(LATENCY_BUCKETS.to_vec())
        };
        let failures = register(
            &registry,
            IntCounterVec::new(
                opts(
                    "publish_failures_total",
                    "Readings not published, by reason.",
                ),
                &["reason"],
            ),
        )?;
        for reason in FAILURE_REASONS {
            // Asking for a label's counter creates it, at 0.
            failures.with_label_values(&[reason]);
        }
        Ok(Self {
            failures,
            published: register(
                &registry,
                IntCounter::with_opts(opts(
                    "readings_published_total",
                    "Readings the broker confirmed.",
                )),
            )?,
            confirm_seconds: register(
                &registry,
                Histogram::with_opts(histogram(
                    "publish_confirm_seconds",
                    "From publish to the broker's confirmation.",
                )),
            )?,
            collect_seconds: register(
                &registry,
                Histogram::with_opts(histogram("collect_seconds", "Time to sample the system.")),
            )?,
            collect_skipped: register(
                &registry,
                IntCounterVec::new(
                    opts(
                        "collect_skipped_total",
                        "Items left out of a sample (counter reset, device gone, file unreadable), by kind.",
                    ),
                    &["what"],
                ),
            )?,
            process_scan_seconds: register(
                &registry,
                Histogram::with_opts(histogram(
                    "process_scan_seconds",
                    "Time to scan the process table.",
                )),
            )?,
            process_scan_processes: register(
                &registry,
                IntCounter::with_opts(opts(
                    "process_scan_processes_total",
                    "Processes read by the process-table scans (one stat file each).",
                )),
            )?,
            broker_connected: register(
                &registry,
                IntGauge::with_opts(opts("broker_connected", "1 while connected to RabbitMQ.")),
            )?,
            outbox_len: register(
                &registry,
                IntGauge::with_opts(opts("outbox_readings", "Readings waiting for the broker.")),
            )?,
            outbox_dropped: register(
                &registry,
                IntCounter::with_opts(opts(
                    "outbox_dropped_total",
                    "Readings dropped because the outbox was full.",
                )),
            )?,
            outbox_spool_failures: register(
                &registry,
                IntCounter::with_opts(opts(
                    "outbox_spool_failures_total",
                    "Outbox disk writes that failed (disk full?); those readings wait in memory only.",
                )),
            )?,
            registry,
        })
    }
}
