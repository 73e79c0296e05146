//! The history store's metrics, counted by the recorder from what the store returns.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use shared::metrics::{register, LATENCY_BUCKETS, NAMESPACE};

/// Every history metric; cheap to clone.
#[derive(Clone)]
pub struct HistoryMetrics {
    pub written: IntCounter,
    pub duplicates: IntCounter,
    pub skipped: IntCounterVec,
    pub write_errors: IntCounterVec,
    pub write_seconds: Histogram,
    pub rows: IntGaugeVec,
    pub store_bytes: IntGauge,
    pub queue_messages: IntGauge,
    pub store_up: IntGauge,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

impl HistoryMetrics {
    /// Registers the history metrics in `registry`, every labelled counter at 0 for its
    /// known labels.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let r = registry;
        let metrics = Self {
            written: register(
                r,
                IntCounter::with_opts(opts(
                    "history_readings_written_total",
                    "Readings committed to the history store.",
                )),
            )?,
            duplicates: register(
                r,
                IntCounter::with_opts(opts(
                    "history_readings_duplicate_total",
                    "Readings the store already had (a redelivery, another consumer's write).",
                )),
            )?,
            skipped: register(
                r,
                IntCounterVec::new(
                    opts(
                        "history_readings_skipped_total",
                        "Readings not stored, by reason: older than every tier keeps, or unwritable.",
                    ),
                    &["reason"],
                ),
            )?,
            write_errors: register(
                r,
                IntCounterVec::new(
                    opts(
                        "history_write_errors_total",
                        "Failed store operations, by reason (the batch waits in the queue and is tried again).",
                    ),
                    &["reason"],
                ),
            )?,
            write_seconds: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "history_write_seconds",
                        "Time to commit one batch to the history store.",
                    )
                    .namespace(NAMESPACE)
                    .buckets(LATENCY_BUCKETS.to_vec()),
                ),
            )?,
            rows: register(
                r,
                IntGaugeVec::new(opts("history_rows", "Readings (raw tier) or buckets (minute, hour tiers) held in the history store."), &["tier"]),
            )?,
            store_bytes: register(
                r,
                IntGauge::with_opts(opts("history_store_bytes", "Size of the history store on disk.")),
            )?,
            queue_messages: register(
                r,
                IntGauge::with_opts(opts(
                    "history_queue_messages",
                    "Readings waiting in the history queue for the store.",
                )),
            )?,
            store_up: register(
                r,
                IntGauge::with_opts(opts("history_store_up", "1 while the history store answers.")),
            )?,
        };
        for reason in ["too_old", "unwritable"] {
            metrics.skipped.with_label_values(&[reason]);
        }
        for reason in crate::history::store::StoreError::REASONS {
            metrics.write_errors.with_label_values(&[reason]);
        }
        for tier in crate::history::store::Tier::ALL {
            metrics.rows.with_label_values(&[tier.label()]);
        }
        Ok(metrics)
    }
}
