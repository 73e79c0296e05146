//! Containers by name, from the container engine's API (Docker Engine, or Podman's compatible
//! one) over its unix socket: one list call, then for each container its inspection (health,
//! restart count) and, when it runs, one stats snapshot (`one-shot`: the engine does not wait
//! a second for a second sample). CPU is the growth of the container's CPU time between two
//! looks, so it needs two of them.
//!
//! The look runs on the async runtime, apart from the sampler, which takes the last list as it
//! is: a slow engine never delays a reading. No engine at the socket: one line in the log at
//! start, and readings go out without `containers`.

use http_body_util::BodyExt;
use serde::Deserialize;
use shared::reading::Container;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the engine is asked. Each look costs the engine one call per container and two
/// more per running one; every 2 s keeps a fresh list without keeping the engine busy.
pub const LOOK_EVERY: Duration = Duration::from_secs(2);

/// How long one call may take before the look is given up (and tried again next time).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The last list of containers, shared with the sampler; `None` while no engine answers.
#[derive(Debug, Clone, Default)]
pub struct ContainerList(Arc<Mutex<Option<Vec<Container>>>>);

impl ContainerList {
    /// The containers as last seen; `None` when no engine answered the last look.
    pub fn current(&self) -> Option<Vec<Container>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, list: Option<Vec<Container>>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = list;
    }
}

/// Looks at the engine at `socket` every [`LOOK_EVERY`], forever, keeping `list` up to date.
/// Says once at start whether an engine answers, and once when that changes.
pub async fn watch(socket: PathBuf, list: ContainerList) {
    let mut engine = Engine {
        socket,
        previous_cpu: HashMap::new(),
    };
    let mut reachable: Option<bool> = None;
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let looked = tokio::time::timeout(CALL_TIMEOUT * 4, engine.look()).await;
        let looked = looked.unwrap_or_else(|_| Err("the engine took too long to answer".into()));
        match looked {
            Ok(containers) => {
                if reachable != Some(true) {
                    tracing::info!(
                        socket = %engine.socket.display(),
                        count = containers.len(),
                        "container engine found: readings carry its containers"
                    );
                }
                reachable = Some(true);
                list.set(Some(containers));
            }
            Err(e) => {
                if reachable != Some(false) {
                    tracing::info!(
                        socket = %engine.socket.display(),
                        "no container engine to read ({e}): readings go out without containers \
                         (DOCKER_SOCKET names the socket)"
                    );
                }
                reachable = Some(false);
                list.set(None);
            }
        }
    }
}

struct Engine {
    socket: PathBuf,
    /// Each running container's CPU time (ns) at the previous look, by id.
    previous_cpu: HashMap<String, (u64, Instant)>,
}

impl Engine {
    async fn look(&mut self) -> Result<Vec<Container>, String> {
        let mut client = Client::connect(&self.socket).await?;
        let listed: Vec<Listed> = client.get("/containers/json?all=true").await?;
        let mut containers = Vec::with_capacity(listed.len());
        let mut cpu_now = HashMap::with_capacity(listed.len());
        for entry in listed {
            let name = entry
                .names
                .first()
                .map(|n| n.trim_start_matches('/').to_owned())
                .unwrap_or_else(|| entry.id.chars().take(12).collect());
            // A container removed between the list and this call is simply left out.
            let Ok(inspected) = client
                .get::<Inspected>(&format!("/containers/{}/json", entry.id))
                .await
            else {
                continue;
            };
            let mut container = Container {
                name,
                image: entry.image,
                state: entry.state.clone(),
                health: inspected.state.health.map(|h| h.status),
                restart_count: Some(inspected.restart_count),
                cpu_percent: None,
                memory_used_bytes: None,
                memory_limit_bytes: None,
            };
            if entry.state == "running" {
                let path = format!("/containers/{}/stats?stream=false&one-shot=true", entry.id);
                if let Ok(stats) = client.get::<Stats>(&path).await {
                    let now = (stats.cpu_stats.cpu_usage.total_usage, Instant::now());
                    container.cpu_percent = self
                        .previous_cpu
                        .get(&entry.id)
                        .and_then(|before| cpu_percent(*before, now));
                    cpu_now.insert(entry.id.clone(), now);
                    container.memory_used_bytes = stats.memory_stats.used();
                    container.memory_limit_bytes = stats.memory_stats.limit;
                }
            }
            containers.push(container);
        }
        // Containers gone since are forgotten.
        self.previous_cpu = cpu_now;
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(containers)
    }
}

/// Percent of one core between two (CPU time in ns, when) pairs; `None` when the counter went
/// back (a restart) or no time passed.
fn cpu_percent(before: (u64, Instant), now: (u64, Instant)) -> Option<f32> {
    let wall = now.1.checked_duration_since(before.1)?.as_nanos() as f64;
    let used = now.0.checked_sub(before.0)? as f64;
    (wall > 0.0).then(|| ((used / wall * 100.0) * 100.0).round() as f32 / 100.0)
}

/// One HTTP/1.1 connection to the engine's socket, kept for the calls of one look.
struct Client {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
}

impl Client {
    async fn connect(socket: &Path) -> Result<Self, String> {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("container engine connection ended: {e}");
            }
        });
        Ok(Self { sender })
    }

    async fn get<T: serde::de::DeserializeOwned>(&mut self, path: &str) -> Result<T, String> {
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, "docker")
            .body(http_body_util::Empty::new())
            .map_err(|e| e.to_string())?;
        let call = async {
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("{path}: {status}"));
            }
            serde_json::from_slice(&body).map_err(|e| format!("{path}: {e}"))
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| format!("{path}: no answer within {CALL_TIMEOUT:?}"))?
    }
}

/// An entry of `GET /containers/json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    image: String,
    #[serde(default)]
    state: String,
}

/// What `GET /containers/{id}/json` says that the list does not.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    #[serde(default)]
    restart_count: u32,
    state: InspectedState,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedState {
    #[serde(default)]
    health: Option<Health>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Health {
    status: String,
}

/// The parts of `GET /containers/{id}/stats` read here.
#[derive(Deserialize)]
struct Stats {
    cpu_stats: CpuStats,
    memory_stats: MemoryStats,
}

#[derive(Deserialize)]
struct CpuStats {
    cpu_usage: CpuUsage,
}

#[derive(Deserialize)]
struct CpuUsage {
    total_usage: u64,
}

#[derive(Deserialize)]
struct MemoryStats {
    usage: Option<u64>,
    limit: Option<u64>,
    #[serde(default)]
    stats: HashMap<String, u64>,
}

impl MemoryStats {
    /// As `docker stats`: usage less the inactive page cache (`total_inactive_file` on
    /// cgroup v1, `inactive_file` on v2).
    fn used(&self) -> Option<u64> {
        let cache = self
            .stats
            .get("total_inactive_file")
            .or_else(|| self.stats.get("inactive_file"))
            .copied()
            .unwrap_or(0);
        self.usage.map(|u| u.saturating_sub(cache))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_the_growth_of_cpu_time_over_the_wall_time_between_two_looks() {
        let start = Instant::now();
        let later = start + Duration::from_secs(2);
        // 1 s of CPU in 2 s: half a core.
        assert_eq!(cpu_percent((0, start), (1_000_000_000, later)), Some(50.0));
        assert_eq!(cpu_percent((5, start), (1, later)), None, "restarted");
        assert_eq!(cpu_percent((0, later), (5, start)), None);
    }

    #[test]
    fn memory_leaves_out_the_inactive_page_cache_on_v1_and_v2() {
        let v1: MemoryStats = serde_json::from_str(
            r#"{"usage": 10000, "limit": 16777216, "stats": {"total_inactive_file": 4000, "cache": 6000}}"#,
        )
        .expect("v1 stats");
        assert_eq!(v1.used(), Some(6000));
        let v2: MemoryStats = serde_json::from_str(
            r#"{"usage": 10000, "limit": 16777216, "stats": {"inactive_file": 1000}}"#,
        )
        .expect("v2 stats");
        assert_eq!(v2.used(), Some(9000));
        let stopped: MemoryStats = serde_json::from_str("{}").expect("empty stats");
        assert_eq!(stopped.used(), None);
    }
}
