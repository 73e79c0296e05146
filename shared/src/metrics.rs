//! Prometheus plumbing both services share: a registry per app instance (not a process-wide
//! global, so tests can run several apps in one process) with process metrics, and the
//! `/metrics` answer.

use actix_web::HttpResponse;
use prometheus::{Encoder, Registry, TextEncoder};

/// Every metric name starts with this.
pub const NAMESPACE: &str = "hostpulse";

/// A registry with the process metrics (RSS, CPU seconds, open file descriptors).
pub fn new_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    match process::ProcessCollector::new() {
        // Registering into a fresh registry only fails on duplicates, which cannot happen.
        Ok(collector) => {
            let _ = registry.register(Box::new(collector));
        }
        Err(e) => tracing::warn!(error = %e, "process metrics unavailable"),
    }
    registry
}

/// The process's own CPU time, memory and file descriptors, read from `/proc/self` at each
/// scrape. Our own rather than `prometheus`' process collector, which counts CPU time in
/// whole seconds only: a service using 5% of a core reads 0 for 20 s, and `rate()` over it
/// is noise.
#[cfg(target_os = "linux")]
mod process {
    use super::NAMESPACE;
    use prometheus::core::{Collector, Desc, Describer};
    use prometheus::proto::MetricFamily;
    use prometheus::{Counter, Gauge, Opts};
    use std::sync::atomic::{AtomicBool, Ordering};

    const CPU: (&str, &str) = (
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
    );
    const GAUGES: [(&str, &str); 5] = [
        ("process_open_fds", "Number of open file descriptors."),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        ),
    ];

    fn opts((name, help): (&str, &str)) -> Opts {
        Opts::new(name, help).namespace(NAMESPACE)
    }

    /// One scrape's values, in the order of [`CPU`] then [`GAUGES`].
    struct Sample {
        cpu_seconds: f64,
        gauges: [f64; 5],
    }

    fn sample() -> procfs::ProcResult<Sample> {
        let me = procfs::process::Process::myself()?;
        let stat = me.stat()?;
        // Clock ticks (usually 100 a second): the finest /proc gives.
        let ticks = procfs::ticks_per_second() as f64;
        let max_fds = match me.limits()?.max_open_files.soft_limit {
            procfs::process::LimitValue::Value(n) => n as f64,
            procfs::process::LimitValue::Unlimited => f64::INFINITY,
        };
        let started = procfs::boot_time_secs()? as f64 + stat.starttime as f64 / ticks;
        Ok(Sample {
            cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
            gauges: [
                me.fd_count()? as f64,
                max_fds,
                stat.vsize as f64,
                (stat.rss * procfs::page_size()) as f64,
                started,
            ],
        })
    }

    /// Exports the `hostpulse_process_*` metrics, read afresh at each scrape.
    pub struct ProcessCollector {
        descs: Vec<Desc>,
        /// Set once a scrape could not read `/proc`, so the failure is logged once, not at
        /// every scrape.
        failed: AtomicBool,
    }

    impl ProcessCollector {
        /// Describes the metrics; reads nothing yet.
        pub fn new() -> prometheus::Result<Self> {
            let mut descs = vec![opts(CPU).describe()?];
            for gauge in GAUGES {
                descs.push(opts(gauge).describe()?);
            }
            Ok(Self {
                descs,
                failed: AtomicBool::new(false),
            })
        }
    }

    impl Collector for ProcessCollector {
        fn desc(&self) -> Vec<&Desc> {
            self.descs.iter().collect()
        }

        fn collect(&self) -> Vec<MetricFamily> {
            let sample = match sample() {
                Ok(sample) => sample,
                Err(e) => {
                    if !self.failed.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "cannot read /proc/self; process metrics left out");
                    }
                    return Vec::new();
                }
            };
            // Fresh metrics per scrape: nothing shared for two concurrent scrapes to race on,
            // and the counter shows /proc's total as it is.
            let mut families = Vec::with_capacity(1 + GAUGES.len());
            if let Ok(cpu) = Counter::with_opts(opts(CPU)) {
                cpu.inc_by(sample.cpu_seconds);
                families.extend(cpu.collect());
            }
            for (spec, value) in GAUGES.into_iter().zip(sample.gauges) {
                if let Ok(gauge) = Gauge::with_opts(opts(spec)) {
                    gauge.set(value);
                    families.extend(gauge.collect());
                }
            }
            families
        }
    }
}

/// Registers a metric built by `prometheus`'s constructors; names are fixed at compile time,
/// so an error here is a programming mistake caught by the first test that builds the app.
pub fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> prometheus::Result<M> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// The registry in Prometheus' text format.
pub fn render(registry: &Registry) -> HttpResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body),
        Err(e) => crate::http::error_body(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "metrics",
            &e.to_string(),
        ),
    }
}

/// Buckets for latencies from sub-millisecond to seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The value of an unlabelled series in the registry's text output.
    fn value(registry: &Registry, name: &str) -> Option<f64> {
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .expect("encodes");
        String::from_utf8(text)
            .expect("UTF-8")
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn cpu_seconds_move_in_fractions_of_a_second() {
        let registry = new_registry();
        let cpu = || value(&registry, "hostpulse_process_cpu_seconds_total").expect("exported");
        let before = cpu();
        let mut after = before;
        // Bounded: at most a few seconds of work, far more than one clock tick needs.
        for _ in 0..2_000 {
            let mut x = 0u64;
            for i in 0..200_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            after = cpu();
            if after > before {
                break;
            }
        }
        let used = after - before;
        // Whole seconds only (prometheus' own collector) would first move by 1.
        assert!(used > 0.0 && used < 1.0, "moved by {used} s");
    }

    #[test]
    fn memory_descriptors_and_start_time_are_exported() {
        let registry = new_registry();
        let get = |name: &str| value(&registry, name).unwrap_or_else(|| panic!("{name}"));
        assert!(get("hostpulse_process_resident_memory_bytes") > 0.0);
        assert!(
            get("hostpulse_process_virtual_memory_bytes")
                >= get("hostpulse_process_resident_memory_bytes")
        );
        assert!(
            get("hostpulse_process_open_fds") >= 3.0,
            "stdin, stdout, stderr"
        );
        assert!(get("hostpulse_process_max_fds") >= get("hostpulse_process_open_fds"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let started = get("hostpulse_process_start_time_seconds");
        // This test process started within the last day, and not in the future.
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started} vs {now}"
        );
    }
}
