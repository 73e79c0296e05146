//! Collection: a long-lived sampler that owns the `sysinfo` objects, on a thread of its own so
//! the async workers never block on `/proc`. It knows nothing of AMQP or HTTP: it hands out
//! plain [`Reading`]s.

mod containers;
mod cpu;
mod cpu_times;
mod disks;
mod diskstats;
mod meminfo;
mod memory;
mod network;
mod pressure;
mod proc_file;
mod processes;
mod system;
mod temperatures;
mod vmstat;

pub use containers::{watch as watch_containers, ContainerList};
pub use network::{InterfaceFilter, DEFAULT_EXCLUDED_INTERFACES};
use proc_file::Skips;
pub use proc_file::SKIP_LABELS;
use shared::reading::{Reading, SCHEMA_VERSION};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// CPU usage is a difference between two refreshes; closer than this, the figure is noise
/// (sysinfo's own minimum is 200 ms on Linux). A request that comes sooner gets the last reading.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(200);

/// What changes slowly and costs most to read (the mounts, the sensors, the CPU frequency) is
/// re-read this often; in between only the figures that move are.
const SLOW_REFRESH: Duration = Duration::from_secs(30);

/// Requests waiting for the sampler; more than this and callers wait to enqueue.
const REQUEST_QUEUE: usize = 256;

/// Why no reading could be had.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot start the system sampler: {0}")]
    Start(String),
    #[error("the system sampler has stopped")]
    Stopped,
}

/// What the sampler reads, and how often the costly parts.
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    /// Overrides the system host name.
    pub host: Option<String>,
    /// How often the process table is scanned; zero means never (`PROCESS_INTERVAL_SECS`).
    pub process_interval: Duration,
    /// How many processes each top list holds (`PROCESS_TOP_N`).
    pub process_top_n: usize,
    /// Where the kernel's figures are: `/proc`.
    pub proc_root: PathBuf,
    /// Where user names are: `/etc/passwd`.
    pub passwd: PathBuf,
    /// Which network interfaces are listed (`NETWORK_INTERFACES`).
    pub interfaces: InterfaceFilter,
    /// The containers as the engine watcher last saw them; `None`: not watched.
    pub containers: Option<ContainerList>,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        Self {
            host: None,
            process_interval: Duration::from_secs(5),
            process_top_n: 10,
            proc_root: PathBuf::from("/proc"),
            passwd: PathBuf::from("/etc/passwd"),
            interfaces: InterfaceFilter::default(),
            containers: None,
        }
    }
}

/// The metrics the sampler feeds.
#[derive(Clone)]
pub struct CollectorMetrics {
    /// Each sample's duration.
    pub timing: prometheus::Histogram,
    /// Items left out of a sample, by kind (`what`).
    pub skipped: prometheus::IntCounterVec,
    /// Each process-table scan's duration.
    pub scan_seconds: prometheus::Histogram,
    /// Processes read by the scans.
    pub scanned: prometheus::IntCounter,
}

/// A handle to the sampler thread; cheap to clone.
#[derive(Clone)]
pub struct Collector {
    requests: mpsc::Sender<oneshot::Sender<Arc<Reading>>>,
    latest: Arc<Latest>,
}

/// The last sample and when it was taken, shared so that a request for a still-fresh reading
/// is answered on the caller's thread, without a round trip to the sampler's.
type Latest = std::sync::Mutex<Option<(Instant, Arc<Reading>)>>;

fn lock(latest: &Latest) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Reading>)>> {
    // The guarded value is replaced whole, so a poisoned lock still holds a valid one.
    latest.lock().unwrap_or_else(|p| p.into_inner())
}

impl Collector {
    /// Starts the sampler thread.
    pub fn spawn(
        options: CollectorOptions,
        metrics: CollectorMetrics,
    ) -> Result<Self, CollectError> {
        let latest = Arc::new(Latest::default());
        let sampler = Sampler::new(options, metrics, Arc::clone(&latest))?;
        let (requests, receiver) = mpsc::channel(REQUEST_QUEUE);
        std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || sampler.serve(receiver))
            .map_err(|e| CollectError::Start(e.to_string()))?;
        Ok(Self { requests, latest })
    }

    /// A reading taken now, or at most [`MIN_REFRESH_INTERVAL`] ago.
    pub async fn reading(&self) -> Result<Arc<Reading>, CollectError> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(reply)
            .await
            .map_err(|_| CollectError::Stopped)?;
        answer.await.map_err(|_| CollectError::Stopped)
    }

    /// The last sample, if it is younger than [`MIN_REFRESH_INTERVAL`].
    fn fresh(&self) -> Option<Arc<Reading>> {
        lock(&self.latest)
            .as_ref()
            .filter(|(taken, _)| taken.elapsed() < MIN_REFRESH_INTERVAL)
            .map(|(_, reading)| Arc::clone(reading))
    }
}

/// Owns the `sysinfo` state; lives on the collector thread.
struct Sampler {
    host: String,
    system: sysinfo::System,
    disks: sysinfo::Disks,
    networks: network::Interfaces,
    cpu_times: cpu_times::CpuTimes,
    diskstats: diskstats::DiskStats,
    meminfo: meminfo::MemInfo,
    vmstat: vmstat::VmStat,
    pressure: pressure::PressureFiles,
    containers: Option<ContainerList>,
    /// `None` when `PROCESS_INTERVAL_SECS` is 0.
    processes: Option<processes::ProcessScan>,
    process_interval: Duration,
    processes_scanned: Instant,
    skips: Skips,
    components: sysinfo::Components,
    os: shared::reading::OsInfo,
    last_refresh: Instant,
    slow_refreshed: Instant,
    /// The last sample: where [`Collector`] handles look for a fresh one first.
    shared: Arc<Latest>,
    timing: prometheus::Histogram,
    scan_seconds: prometheus::Histogram,
    scanned: prometheus::IntCounter,
}

impl Sampler {
    fn new(
        options: CollectorOptions,
        metrics: CollectorMetrics,
        shared: Arc<Latest>,
    ) -> Result<Self, CollectError> {
        let start = |e: sysinfo::Error| CollectError::Start(e.to_string());
        let mut system = sysinfo::System::new().map_err(start)?;
        // The first CPU refresh only sets the baseline; its usage figures are discarded.
        cpu::refresh(&mut system, true);
        let host = options.host.unwrap_or_else(system::host_name);
        let mut skips = Skips::new(metrics.skipped);
        let root = options.proc_root.as_path();
        let (page_bytes, ticks_per_sec) = system::units();
        let processes = (!options.process_interval.is_zero()).then(|| {
            let scan = processes::ProcessScanOptions {
                root: options.proc_root.clone(),
                passwd: options.passwd.clone(),
                top_n: options.process_top_n,
                page_bytes,
                ticks_per_sec,
            };
            processes::ProcessScan::new(scan, &mut skips)
        });
        Ok(Self {
            host,
            os: system::os_info(),
            system,
            disks: sysinfo::Disks::new_with_refreshed_list().map_err(start)?,
            networks: network::Interfaces::new(root, options.interfaces.clone(), &mut skips),
            cpu_times: cpu_times::CpuTimes::new(root, &mut skips),
            diskstats: diskstats::DiskStats::new(root, &mut skips),
            meminfo: meminfo::MemInfo::new(root),
            vmstat: vmstat::VmStat::new(root, page_bytes, &mut skips),
            pressure: pressure::PressureFiles::new(root),
            containers: options.containers.clone(),
            processes,
            process_interval: options.process_interval,
            processes_scanned: Instant::now(),
            skips,
            components: sysinfo::Components::new_with_refreshed_list().map_err(start)?,
            last_refresh: Instant::now(),
            slow_refreshed: Instant::now(),
            shared,
            timing: metrics.timing,
            scan_seconds: metrics.scan_seconds,
            scanned: metrics.scanned,
        })
    }

    /// Answers requests until every [`Collector`] handle is gone. Requests that queued up
    /// while a sample was taken share that sample.
    fn serve(mut self, mut requests: mpsc::Receiver<oneshot::Sender<Arc<Reading>>>) {
        while let Some(first) = requests.blocking_recv() {
            let reading = self.reading();
            let _ = first.send(Arc::clone(&reading));
            while let Ok(waiting) = requests.try_recv() {
                let _ = waiting.send(Arc::clone(&reading));
            }
        }
    }

    fn reading(&mut self) -> Arc<Reading> {
        let since = self.last_refresh.elapsed();
        if since < MIN_REFRESH_INTERVAL {
            if let Some((_, latest)) = &*lock(&self.shared) {
                return Arc::clone(latest);
            }
            // Only the very first request can come before the baseline is old enough.
            std::thread::sleep(MIN_REFRESH_INTERVAL - since);
        }
        let timer = self.timing.start_timer();
        let reading = Arc::new(self.sample());
        timer.observe_duration();
        *lock(&self.shared) = Some((self.last_refresh, Arc::clone(&reading)));
        reading
    }

    fn sample(&mut self) -> Reading {
        let elapsed = self.last_refresh.elapsed();
        self.last_refresh = Instant::now();
        let slow = self.slow_refreshed.elapsed() >= SLOW_REFRESH;
        if slow {
            self.slow_refreshed = Instant::now();
        }
        cpu::refresh(&mut self.system, slow);
        disks::refresh(&mut self.disks, slow);
        temperatures::refresh(&mut self.components, slow);
        let skips = &mut self.skips;
        let mut cpu = cpu::read(&self.system);
        cpu.time_split = self.cpu_times.read(skips);
        // /proc/meminfo read once for everything; sysinfo where it cannot be read.
        let mut memory = self.meminfo.read(skips).unwrap_or_else(|| {
            memory::refresh(&mut self.system);
            memory::read(&self.system)
        });
        if let Some((swap_in, swap_out)) = self.vmstat.read(elapsed, skips) {
            memory.swap_in_bytes_per_sec = Some(swap_in);
            memory.swap_out_bytes_per_sec = Some(swap_out);
        }
        let since_scan = self.processes_scanned.elapsed();
        let processes = match &mut self.processes {
            Some(scan) if since_scan >= self.process_interval => {
                self.processes_scanned = Instant::now();
                let timer = self.scan_seconds.start_timer();
                let table = scan.scan(since_scan, skips);
                timer.observe_duration();
                if let Some(table) = &table {
                    self.scanned.inc_by(u64::from(table.total_count));
                }
                table
            }
            _ => None,
        };
        Reading {
            schema_version: SCHEMA_VERSION,
            host: self.host.clone(),
            seq: 0,
            collected_at: chrono::Utc::now(),
            interval_secs: None,
            uptime_secs: Some(system::uptime_secs()),
            os: self.os.clone(),
            cpu,
            memory,
            disks: disks::read(&self.disks),
            networks: Some(self.networks.read(elapsed, skips)),
            temperatures: temperatures::read(&self.components),
            block_devices: Some(self.diskstats.read(elapsed, skips)),
            processes,
            legacy: None,
            pressure: self.pressure.read(),
            containers: self.containers.as_ref().and_then(ContainerList::current),
            labels: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> CollectorMetrics {
        CollectorMetrics {
            timing: prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("t", "t"))
                .expect("valid"),
            skipped: prometheus::IntCounterVec::new(prometheus::Opts::new("s", "s"), &["what"])
                .expect("valid"),
            scan_seconds: prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
                "p", "p",
            ))
            .expect("valid"),
            scanned: prometheus::IntCounter::new("n", "n").expect("valid"),
        }
    }

    fn options(host: Option<&str>) -> CollectorOptions {
        CollectorOptions {
            host: host.map(str::to_owned),
            ..CollectorOptions::default()
        }
    }

    #[tokio::test]
    async fn readings_describe_this_host() {
        let collector =
            Collector::spawn(options(Some("probe")), metrics()).expect("sampler starts");
        let reading = collector.reading().await.expect("a reading");
        assert_eq!(reading.host, "probe");
        reading.validate().expect("the sample is a valid reading");
        let cores = reading.cpu.core_count.expect("the core count is known");
        assert!(cores >= 1);
        assert_eq!(reading.cpu.per_core_percent.len(), cores as usize);
        assert!(
            reading.cpu.load_average.is_some(),
            "Linux has a load average"
        );
        assert!(reading.memory.total_bytes > 0);
        assert!(reading.memory.used_bytes <= reading.memory.total_bytes);
        assert!(!reading.disks.is_empty(), "at least the root file system");
        assert!(reading.uptime_secs.is_some_and(|up| up > 0));
        assert!(!reading.os.kernel.is_empty());
        assert!(reading.cpu.time_split.is_some(), "{:?}", reading.cpu);
        assert!(reading.memory.cached_buffers_bytes.is_some());
        assert!(reading.memory.swap_in_bytes_per_sec.is_some());
        assert!(reading.block_devices.is_some());
        // This machine's kernel has PSI (/proc/pressure): all three resources are in the reading.
        let pressure = reading
            .pressure
            .as_ref()
            .expect("pressure stall information");
        assert!(pressure.cpu.is_some() && pressure.memory.is_some() && pressure.io.is_some());
        assert!(pressure
            .memory
            .is_some_and(|m| m.full_total_micros.is_some()));
        let root = reading
            .disks
            .iter()
            .find(|d| d.mount_point == "/")
            .expect("the root file system");
        assert!(root.reserved_bytes.is_some());
    }

    #[test]
    fn the_process_table_comes_every_interval_and_not_at_all_when_off() {
        let skipped = metrics().skipped;
        let collector_metrics = CollectorMetrics {
            skipped: skipped.clone(),
            ..metrics()
        };
        let mut every = CollectorOptions {
            process_interval: Duration::from_secs(3600),
            process_top_n: 3,
            ..CollectorOptions::default()
        };
        let mut sampler = Sampler::new(every.clone(), collector_metrics.clone(), Arc::default())
            .expect("sampler");
        assert_eq!(sampler.sample().processes, None, "not due for an hour");
        // As if the interval had passed: a controllable clock, not a sleep.
        sampler.processes_scanned -= Duration::from_secs(3600);
        let table = sampler.sample().processes.expect("due now");
        assert_eq!(
            collector_metrics.scanned.get(),
            u64::from(table.total_count),
            "the processes read are counted, for the scan's cost per process"
        );
        assert_eq!(collector_metrics.scan_seconds.get_sample_count(), 1);
        assert_eq!(table.top_by_cpu.len(), 3);
        assert_eq!(table.top_by_memory.len(), 3);
        assert!(table.total_count >= 3);
        assert_eq!(
            sampler.sample().processes,
            None,
            "and not again until the next"
        );
        every.process_interval = Duration::ZERO;
        let mut off = Sampler::new(every, collector_metrics, Arc::default()).expect("sampler");
        off.processes_scanned -= Duration::from_secs(86_400);
        assert_eq!(
            off.sample().processes,
            None,
            "PROCESS_INTERVAL_SECS=0: never"
        );
        for what in SKIP_LABELS {
            assert_eq!(skipped.with_label_values(&[what]).get(), 0, "{what}");
        }
    }

    #[test]
    fn a_missing_proc_leaves_items_out_but_the_reading_still_goes_out() {
        let skipped = metrics().skipped;
        let broken = CollectorOptions {
            proc_root: PathBuf::from("/nonexistent-proc"),
            process_interval: Duration::from_secs(1),
            ..CollectorOptions::default()
        };
        let collector_metrics = CollectorMetrics {
            skipped: skipped.clone(),
            ..metrics()
        };
        let mut sampler = Sampler::new(broken, collector_metrics, Arc::default()).expect("sampler");
        sampler.processes_scanned -= Duration::from_secs(1);
        let reading = sampler.sample();
        reading.validate().expect("still a valid reading");
        assert_eq!(reading.cpu.time_split, None);
        assert_eq!(reading.pressure, None, "no PSI folder: no pressure");
        assert!(
            reading.memory.total_bytes > 0,
            "memory from sysinfo instead"
        );
        for what in SKIP_LABELS {
            assert!(
                skipped.with_label_values(&[what]).get() >= 1,
                "{what} counted"
            );
        }
    }

    #[tokio::test]
    async fn requests_close_together_share_a_sample_and_later_ones_are_fresh() {
        let collector = Collector::spawn(options(None), metrics()).expect("sampler starts");
        let first = collector.reading().await.expect("a reading");
        let again = collector.reading().await.expect("a reading");
        assert!(
            Arc::ptr_eq(&first, &again),
            "within 200 ms the sample is reused"
        );
        tokio::time::sleep(MIN_REFRESH_INTERVAL).await;
        let later = collector.reading().await.expect("a reading");
        assert!(later.collected_at > first.collected_at);
    }
}
