//! Collection: a long-lived sampler that owns the `sysinfo` objects, on a thread of its own so
//! the async workers never block on `/proc`. It knows nothing of AMQP or HTTP: it hands out
//! plain [`Reading`]s.

mod cpu;
mod disks;
mod memory;
mod network;
mod system;
mod temperatures;

use shared::reading::{Reading, SCHEMA_VERSION};
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
    /// Starts the sampler thread. `host` overrides the system host name; each sample's
    /// duration is observed in `timing`.
    pub fn spawn(
        host: Option<String>,
        timing: prometheus::Histogram,
    ) -> Result<Self, CollectError> {
        let latest = Arc::new(Latest::default());
        let sampler = Sampler::new(host, timing, Arc::clone(&latest))?;
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
    components: sysinfo::Components,
    os: shared::reading::OsInfo,
    last_refresh: Instant,
    slow_refreshed: Instant,
    /// The last sample: where [`Collector`] handles look for a fresh one first.
    shared: Arc<Latest>,
    timing: prometheus::Histogram,
}

impl Sampler {
    fn new(
        host: Option<String>,
        timing: prometheus::Histogram,
        shared: Arc<Latest>,
    ) -> Result<Self, CollectError> {
        let start = |e: sysinfo::Error| CollectError::Start(e.to_string());
        let mut system = sysinfo::System::new().map_err(start)?;
        // The first CPU refresh only sets the baseline; its usage figures are discarded.
        cpu::refresh(&mut system, true);
        let host = host.unwrap_or_else(system::host_name);
        Ok(Self {
            host,
            os: system::os_info(),
            system,
            disks: sysinfo::Disks::new_with_refreshed_list().map_err(start)?,
            networks: network::Interfaces::new(),
            components: sysinfo::Components::new_with_refreshed_list().map_err(start)?,
            last_refresh: Instant::now(),
            slow_refreshed: Instant::now(),
            shared,
            timing,
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
        memory::refresh(&mut self.system);
        disks::refresh(&mut self.disks, slow);
        temperatures::refresh(&mut self.components, slow);
        Reading {
            schema_version: SCHEMA_VERSION,
            host: self.host.clone(),
            seq: 0,
            collected_at: chrono::Utc::now(),
            interval_secs: None,
            uptime_secs: Some(system::uptime_secs()),
            os: self.os.clone(),
            cpu: cpu::read(&self.system),
            memory: memory::read(&self.system),
            disks: disks::read(&self.disks),
            networks: Some(self.networks.read(elapsed)),
            temperatures: temperatures::read(&self.components),
            block_devices: None,
            processes: None,
            legacy: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> prometheus::Histogram {
        prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("t", "t")).expect("valid")
    }

    #[tokio::test]
    async fn readings_describe_this_host() {
        let collector = Collector::spawn(Some("probe".into()), timing()).expect("sampler starts");
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
    }

    #[tokio::test]
    async fn requests_close_together_share_a_sample_and_later_ones_are_fresh() {
        let collector = Collector::spawn(None, timing()).expect("sampler starts");
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
