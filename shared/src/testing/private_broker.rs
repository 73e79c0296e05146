//! A RabbitMQ node of a test's own (own node name, ports and data folder), so a test can stop,
//! restart or lose its broker without touching the shared one. Needs root and Debian's
//! `rabbitmq-server`; starts in about 7 s.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a node may take to open its port: a VM booting beside busy builds on two cores
/// has taken over a minute.
const START_LIMIT: Duration = Duration::from_secs(180);

/// A private node; stopped and its folder removed on drop.
pub struct PrivateBroker {
    pub node: String,
    pub port: u16,
    dir: PathBuf,
}

/// A free loopback port for a server a test starts (a service, a private broker or
/// PostgreSQL, a WebDriver), taken from below the kernel's ephemeral range. A port of that
/// range is not safe to wait on: while nothing listens on it, another test's port-0 listener
/// may take it, and a connection retrying it may be given that same port as its source and
/// connect to itself (a "broker" answering with the client's own AMQP header). Ports are
/// handed out once per process, from an offset that differs per process.
pub fn free_port() -> u16 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(32_768);
    let floor = low.saturating_sub(12_000).max(1_024);
    let span = low.saturating_sub(floor).max(1);
    let next = NEXT.get_or_init(|| {
        AtomicU64::new(std::collections::hash_map::RandomState::new().hash_one(std::process::id()))
    });
    for _ in 0..span {
        let port = u16::try_from(floor + next.fetch_add(1, Ordering::Relaxed) % span)
            .expect("ports below the ephemeral range fit in u16");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {floor}..{low}");
}

impl PrivateBroker {
    /// Starts a node on a free port and waits until it accepts AMQP connections.
    /// `extra_config` lines are appended to its `rabbitmq.conf` (TLS listeners, say).
    pub fn start(extra_config: &str) -> Self {
        Self::start_on(free_port(), extra_config)
    }

    /// Like [`Self::start`], on a port chosen beforehand (services can be pointed at it
    /// before the node exists).
    pub fn start_on(port: u16, extra_config: &str) -> Self {
        let dist_port = free_port();
        let node = format!("hostpulse-test-{port}@localhost");
        let dir = std::env::temp_dir().join(format!("hostpulse-rabbit-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("mnesia")).expect("node dir");
        std::fs::create_dir_all(dir.join("log")).expect("log dir");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{port}\nloopback_users.guest = false\n{extra_config}\n"
            ),
        )
        .expect("config");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("plugins");
        let owned = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&dir)
            .status()
            .expect("chown runs");
        assert!(
            owned.success(),
            "the node's folder must belong to the rabbitmq user"
        );
        let started = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmq-server runs");
        assert!(started.success(), "rabbitmq-server -detached failed");
        let broker = Self { node, port, dir };
        // An Erlang VM booting beside a busy build can take a minute on two cores; a node that
        // never opens says why from its own log.
        if let Err(waited) = broker.try_wait_for_port(true, START_LIMIT) {
            panic!(
                "{waited}; the node's log ends with:\n{}",
                broker.log_tail(30)
            );
        }
        broker
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn ctl(&self, args: &[&str]) {
        let status = Command::new("rabbitmqctl")
            .args(["-n", &self.node])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmqctl runs");
        assert!(status.success(), "rabbitmqctl {args:?} failed");
    }

    /// Stops the broker application (connections are closed; the node stays).
    pub fn stop_app(&self) {
        self.ctl(&["stop_app"]);
        self.wait_for_port(false, Duration::from_secs(30));
    }

    /// Starts the broker application again.
    pub fn start_app(&self) {
        self.ctl(&["start_app"]);
        self.wait_for_port(true, Duration::from_secs(30));
    }

    /// Runs a `rabbitmqctl` command against this node, e.g. `close_all_connections`.
    pub fn rabbitmqctl(&self, args: &[&str]) {
        self.ctl(args);
    }

    /// Freezes the node's Erlang VM with SIGSTOP, as a hung broker is: connections stay open
    /// and nothing answers. It thaws (SIGCONT) when the guard is dropped, a failing test
    /// included.
    pub fn freeze(&self) -> Frozen {
        let pid = self.os_pid();
        assert!(signal("-STOP", &pid), "kill -STOP {pid} failed");
        Frozen { pid }
    }

    /// The operating system's id of the node's Erlang VM.
    fn os_pid(&self) -> String {
        let out = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "eval", "os:getpid()."])
            .stderr(Stdio::null())
            .output()
            .expect("rabbitmqctl runs");
        assert!(out.status.success(), "rabbitmqctl eval failed");
        let pid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_matches('"')
            .to_owned();
        assert!(
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
            "not a process id: {pid:?}"
        );
        pid
    }

    fn wait_for_port(&self, open: bool, limit: Duration) {
        if let Err(waited) = self.try_wait_for_port(open, limit) {
            panic!("{waited}");
        }
    }

    fn try_wait_for_port(&self, open: bool, limit: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + limit;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() != open {
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "node {} port {} never became {} in {limit:?}",
                    self.node,
                    self.port,
                    if open { "open" } else { "closed" }
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The last `lines` lines of the node's log files, for a failure message.
    fn log_tail(&self, lines: usize) -> String {
        let Ok(entries) = std::fs::read_dir(self.dir.join("log")) else {
            return "(no log folder)".into();
        };
        let mut tail = String::new();
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            tail.push_str(&format!("== {}\n", entry.path().display()));
            for line in &all[all.len().saturating_sub(lines)..] {
                tail.push_str(line);
                tail.push('\n');
            }
        }
        tail
    }
}

/// A frozen node; thawed on drop.
pub struct Frozen {
    pid: String,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // No assertion here: this may run while a failing test unwinds.
        let _ = signal("-CONT", &self.pid);
    }
}

/// Sends signal `name` (`-STOP`, `-CONT`) to `pid`; whether it was sent.
fn signal(name: &str, pid: &str) -> bool {
    Command::new("kill")
        .args([name, pid])
        .status()
        .is_ok_and(|status| status.success())
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-n", &self.node, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::free_port;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("Linux says its ephemeral range")
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a number");
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        for port in &ports {
            assert!(*port < low, "{port} is in the ephemeral range from {low}");
            std::net::TcpListener::bind(("127.0.0.1", *port)).expect("free");
        }
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "handed out twice: {ports:?}");
    }
}
