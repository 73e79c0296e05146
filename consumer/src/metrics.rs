//! The consumer's Prometheus metrics: the pipeline's own, and every host's latest reading as
//! gauges, so one scrape of one consumer gives Prometheus the whole fleet.

use crate::hub::HostSnapshot;
use prometheus::core::Collector;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
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
    pub rejected: IntCounterVec,
    pub ws_clients: IntGauge,
    pub ws_frames_sent: IntCounter,
    pub ws_dropped: IntCounterVec,
    pub reading_age: Histogram,
    pub broker_connected: IntGauge,
    fleet: Fleet,
}

/// The per-host gauges, rebuilt from the hub at each scrape so hosts that are gone vanish.
#[derive(Clone)]
struct Fleet {
    cpu: GaugeVec,
    memory_used: GaugeVec,
    memory_total: GaugeVec,
    disk_used: GaugeVec,
    disk_total: GaugeVec,
    net_rx: GaugeVec,
    net_tx: GaugeVec,
    load1: GaugeVec,
    up: GaugeVec,
    last_seen: GaugeVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

impl ConsumerMetrics {
    /// Builds and registers the metrics.
    pub fn new() -> prometheus::Result<Self> {
        let registry = new_registry();
        let r = &registry;
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(r, GaugeVec::new(opts(name, help), labels))
        };
        let fleet = Fleet {
            cpu: gauge("host_cpu_usage_percent", "CPU use of each host.", &["host"])?,
            memory_used: gauge(
                "host_memory_used_bytes",
                "Memory in use on each host.",
                &["host"],
            )?,
            memory_total: gauge("host_memory_total_bytes", "Memory of each host.", &["host"])?,
            disk_used: gauge(
                "host_disk_used_bytes",
                "Space used per mount.",
                &["host", "mount"],
            )?,
            disk_total: gauge(
                "host_disk_total_bytes",
                "Size of each mount.",
                &["host", "mount"],
            )?,
            net_rx: gauge(
                "host_network_received_bytes_per_second",
                "Receive rate per interface.",
                &["host", "interface"],
            )?,
            net_tx: gauge(
                "host_network_transmitted_bytes_per_second",
                "Send rate per interface.",
                &["host", "interface"],
            )?,
            load1: gauge(
                "host_load1",
                "1-minute load average of each host.",
                &["host"],
            )?,
            up: gauge(
                "host_up",
                "1 while a host publishes, 0 once it is stale.",
                &["host"],
            )?,
            last_seen: gauge(
                "host_last_seen_timestamp_seconds",
                "When this consumer last received a reading from the host.",
                &["host"],
            )?,
        };
        Ok(Self {
            received: register(
                r,
                IntCounter::with_opts(opts("messages_received_total", "Messages from the broker.")),
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
            fleet,
            registry,
        })
    }

    /// Refreshes the per-host gauges from `hosts`.
    pub fn update_fleet(&self, hosts: &[HostSnapshot]) {
        let f = &self.fleet;
        for g in [
            &f.cpu,
            &f.memory_used,
            &f.memory_total,
            &f.disk_used,
            &f.disk_total,
            &f.net_rx,
            &f.net_tx,
            &f.load1,
            &f.up,
            &f.last_seen,
        ] {
            g.reset();
        }
        for host in hosts {
            let r = &host.reading;
            let h = r.host.as_str();
            f.cpu
                .with_label_values(&[h])
                .set(f64::from(r.cpu.usage_percent));
            f.memory_used
                .with_label_values(&[h])
                .set(r.memory.used_bytes as f64);
            f.memory_total
                .with_label_values(&[h])
                .set(r.memory.total_bytes as f64);
            f.load1.with_label_values(&[h]).set(r.cpu.load_average.one);
            f.up.with_label_values(&[h])
                .set(if host.stale { 0.0 } else { 1.0 });
            f.last_seen
                .with_label_values(&[h])
                .set(host.last_seen.timestamp_millis() as f64 / 1000.0);
            for d in &r.disks {
                f.disk_used
                    .with_label_values(&[h, &d.mount_point])
                    .set(d.used_bytes as f64);
                f.disk_total
                    .with_label_values(&[h, &d.mount_point])
                    .set(d.total_bytes as f64);
            }
            for n in &r.networks {
                let labels = [h, n.interface.as_str()];
                f.net_rx
                    .with_label_values(&labels)
                    .set(n.received_bytes_per_sec as f64);
                f.net_tx
                    .with_label_values(&labels)
                    .set(n.transmitted_bytes_per_sec as f64);
            }
        }
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
                out.insert(reason, metric.get_counter().get_value() as u64);
            }
        }
        out
    }
}
