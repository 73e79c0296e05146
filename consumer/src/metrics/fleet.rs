//! The fleet's gauges: every host's latest reading, read from the live view at scrape time.
//!
//! Built fresh for each scrape, so two concurrent scrapes never see a half-filled set and a
//! forgotten host's series simply vanish. A figure a reading does not carry is no series,
//! never a made-up 0. Label values per host are bounded (mounts, interfaces, sensors), so one odd host
//! cannot blow up Prometheus' series count.

use crate::live::LiveView;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, Opts};
use shared::metrics::NAMESPACE;
use std::sync::Arc;

/// Mounts, interfaces, and temperature sensors, exported per host at most; the rest are counted in
/// `hostpulse_fleet_series_omitted`.
pub const MAX_ITEMS_PER_HOST: usize = 32;

const HOST: &[&str] = &["host"];
const MOUNT: &[&str] = &["host", "mount"];
const INTERFACE: &[&str] = &["host", "interface"];
const SENSOR: &[&str] = &["host", "sensor"];

/// Each gauge: name, help, labels.
const GAUGES: &[(&str, &str, &[&str])] = &[
    ("host_cpu_usage_percent", "CPU use of each host.", HOST),
    (
        "host_memory_used_bytes",
        "Memory in use on each host.",
        HOST,
    ),
    ("host_memory_total_bytes", "Memory of each host.", HOST),
    ("host_disk_used_bytes", "Space used per mount.", MOUNT),
    ("host_disk_total_bytes", "Size of each mount.", MOUNT),
    (
        "host_network_received_bytes_per_second",
        "Receive rate per interface.",
        INTERFACE,
    ),
    (
        "host_network_transmitted_bytes_per_second",
        "Send rate per interface.",
        INTERFACE,
    ),
    ("host_load1", "1-minute load average of each host.", HOST),
    ("host_cpu_cores", "Logical CPUs of each host.", HOST),
    ("host_swap_used_bytes", "Swap in use on each host.", HOST),
    (
        "host_swap_total_bytes",
        "Swap of each host (0 on a host without swap).",
        HOST,
    ),
    (
        "host_temperature_celsius",
        "Temperature per sensor.",
        SENSOR,
    ),
    (
        "host_up",
        "1 while a host publishes, 0 once it is stale.",
        HOST,
    ),
    (
        "host_last_seen_timestamp_seconds",
        "When this consumer last received a reading from the host.",
        HOST,
    ),
    (
        "host_interval_seconds",
        "The publish interval the host's latest reading declares; no series for a host that publishes on demand.",
        HOST,
    ),
];

/// Indexes into [`GAUGES`].
#[derive(Clone, Copy)]
enum G {
    Cpu,
    MemoryUsed,
    MemoryTotal,
    DiskUsed,
    DiskTotal,
    NetRx,
    NetTx,
    Load1,
    Cores,
    SwapUsed,
    SwapTotal,
    Temperature,
    Up,
    LastSeen,
    Interval,
}

/// Reads the live view on every scrape.
pub struct FleetCollector {
    live: Arc<LiveView>,
    descs: Vec<Desc>,
}

impl FleetCollector {
    /// A collector over `live`; register it in the consumer's registry.
    pub fn new(live: Arc<LiveView>) -> prometheus::Result<Self> {
        let mut descs = Vec::new();
        for vec in fresh_gauges()? {
            descs.extend(vec.desc().into_iter().cloned());
        }
        descs.extend(omitted_gauge()?.desc().into_iter().cloned());
        Ok(Self { live, descs })
    }

    fn families(&self) -> prometheus::Result<Vec<MetricFamily>> {
        let gauges = fresh_gauges()?;
        let set = |g: G, labels: &[&str], value: f64| {
            gauges[g as usize].with_label_values(labels).set(value)
        };
        let mut omitted = 0usize;
        for host in self.live.hosts() {
            let r = &host.latest.reading;
            let h = r.host.as_str();
            set(G::Cpu, &[h], f64::from(r.cpu.usage_percent));
            set(G::MemoryUsed, &[h], r.memory.used_bytes as f64);
            set(G::MemoryTotal, &[h], r.memory.total_bytes as f64);
            if let Some(load) = &r.cpu.load_average {
                set(G::Load1, &[h], load.one);
            }
            if let Some(cores) = r.cpu.core_count {
                set(G::Cores, &[h], f64::from(cores));
            }
            set(G::SwapUsed, &[h], r.memory.swap_used_bytes as f64);
            set(G::SwapTotal, &[h], r.memory.swap_total_bytes as f64);
            omitted += r.temperatures.len().saturating_sub(MAX_ITEMS_PER_HOST);
            for t in r.temperatures.iter().take(MAX_ITEMS_PER_HOST) {
                set(G::Temperature, &[h, t.label.as_str()], f64::from(t.celsius));
            }
            set(G::Up, &[h], if host.stale { 0.0 } else { 1.0 });
            if let Some(interval) = r.interval_secs {
                set(G::Interval, &[h], f64::from(interval));
            }
            set(
                G::LastSeen,
                &[h],
                host.last_seen.timestamp_millis() as f64 / 1000.0,
            );
            omitted += r.disks.len().saturating_sub(MAX_ITEMS_PER_HOST);
            for d in r.disks.iter().take(MAX_ITEMS_PER_HOST) {
                let labels = [h, d.mount_point.as_str()];
                set(G::DiskUsed, &labels, d.used_bytes as f64);
                set(G::DiskTotal, &labels, d.total_bytes as f64);
            }
            let networks = r.networks.as_deref().unwrap_or_default();
            omitted += networks.len().saturating_sub(MAX_ITEMS_PER_HOST);
            for n in networks.iter().take(MAX_ITEMS_PER_HOST) {
                let labels = [h, n.interface.as_str()];
                set(G::NetRx, &labels, n.received_bytes_per_sec as f64);
                set(G::NetTx, &labels, n.transmitted_bytes_per_sec as f64);
            }
        }
        let omitted_gauge = omitted_gauge()?;
        omitted_gauge.set(omitted as f64);
        let mut families: Vec<MetricFamily> = gauges.iter().flat_map(Collector::collect).collect();
        families.extend(omitted_gauge.collect());
        Ok(families)
    }
}

fn fresh_gauges() -> prometheus::Result<Vec<GaugeVec>> {
    GAUGES
        .iter()
        .map(|(name, help, labels)| {
            GaugeVec::new(Opts::new(*name, *help).namespace(NAMESPACE), labels)
        })
        .collect()
}

fn omitted_gauge() -> prometheus::Result<Gauge> {
    Gauge::with_opts(
        Opts::new(
            "fleet_series_omitted",
            "Mounts, interfaces and sensors not exported because a host has more than 32 of one.",
        )
        .namespace(NAMESPACE),
    )
}

impl Collector for FleetCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        match self.families() {
            Ok(families) => families,
            Err(e) => {
                tracing::warn!(error = %e, "cannot export the fleet's gauges");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::intake::legacy::SenderHints;
    use crate::intake::parse::{ingest, IngestLimits};
    use crate::live::LiveLimits;
    use chrono::TimeZone;

    fn live() -> Arc<LiveView> {
        let clock = ManualClock::new(
            chrono::Utc
                .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
                .single()
                .expect("valid"),
        );
        let (_, broker) = tokio::sync::watch::channel(shared::broker::BrokerState::connecting());
        Arc::new(LiveView::new(
            LiveLimits {
                history_len: 3,
                max_hosts: 10,
                stale_after: std::time::Duration::from_secs(10),
            },
            clock,
            broker,
        ))
    }

    fn render(collector: FleetCollector) -> String {
        let registry = prometheus::Registry::new();
        registry.register(Box::new(collector)).expect("registers");
        let mut out = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut out,
        )
        .expect("encodes");
        String::from_utf8(out).expect("UTF-8")
    }

    fn publish(live: &LiveView, body: serde_json::Value) {
        let limits = IngestLimits {
            max_message_bytes: 1 << 20,
        };
        let body = serde_json::to_vec(&body).expect("json");
        let now = chrono::Utc::now();
        live.publish(&ingest(&body, &SenderHints::default(), now, limits).expect("accepted"))
            .expect("taken");
    }

    fn fixture(host: &str) -> serde_json::Value {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/reading.json"))
                .expect("fixture");
        v["host"] = host.into();
        v["collected_at"] = "2026-11-23T12:00:00.000Z".into();
        v
    }

    #[test]
    fn figures_a_reading_does_not_carry_are_no_series() {
        let live = live();
        let mut bare = fixture("bare");
        bare.as_object_mut().expect("object").remove("networks");
        bare["cpu"]
            .as_object_mut()
            .expect("cpu")
            .remove("load_average");
        publish(&live, bare);
        publish(&live, fixture("full"));
        let text = render(FleetCollector::new(Arc::clone(&live)).expect("collector"));
        assert!(
            text.contains("hostpulse_host_load1{host=\"full\"}"),
            "{text}"
        );
        assert!(
            !text.contains("hostpulse_host_load1{host=\"bare\"}"),
            "{text}"
        );
        assert!(
            !text.contains("received_bytes_per_second{host=\"bare\""),
            "{text}"
        );
        assert!(
            text.contains("hostpulse_host_cpu_usage_percent{host=\"bare\"}"),
            "{text}"
        );
    }

    #[test]
    fn every_host_gauge_the_prometheus_rules_read_is_exported() {
        let yml = include_str!("../../../deploy/prometheus/alerts.yml");
        let exported: Vec<String> = GAUGES
            .iter()
            .map(|(name, _, _)| format!("{NAMESPACE}_{name}"))
            .collect();
        let mut read = 0;
        for (at, _) in yml.match_indices("hostpulse_host_") {
            let name: String = yml[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.ends_with('_') {
                continue; // `hostpulse_host_*` in a comment
            }
            assert!(
                exported.contains(&name),
                "alerts.yml reads {name}, which the consumer does not export"
            );
            read += 1;
        }
        assert!(read > 10, "alerts.yml names the gauges it reads");
    }

    #[test]
    fn label_values_per_host_are_bounded() {
        let live = live();
        let mut many = fixture("many");
        let disk = many["disks"][0].clone();
        let disks: Vec<serde_json::Value> = (0..40)
            .map(|i| {
                let mut d = disk.clone();
                d["mount_point"] = format!("/m{i}").into();
                d
            })
            .collect();
        many["disks"] = disks.into();
        publish(&live, many);
        let text = render(FleetCollector::new(live).expect("collector"));
        let mounts = text
            .lines()
            .filter(|l| l.starts_with("hostpulse_host_disk_used_bytes{"))
            .count();
        assert_eq!(mounts, MAX_ITEMS_PER_HOST);
        assert!(text.contains("hostpulse_fleet_series_omitted 8"), "{text}");
    }
}
