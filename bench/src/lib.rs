//! Benchmarks for hostpulse; each binary in `src/bin/` measures one thing. This library holds
//! what they share: starting the real, release-built services as child processes.

use shared::testing::amqp_url;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A service binary running as its own process, killed on drop.
pub struct Service {
    pub port: u16,
    child: Child,
}

/// A binary built next to this one (`cargo build --release` builds them all).
pub fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().expect("a directory").join(name)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Service {
    /// Starts `publisher` or `consumer` on a free port and `exchange`, and waits for `/ready`.
    pub async fn start(binary: &str, exchange: &str, vars: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(sibling(binary));
        command
            .env(format!("{}_ENV_FILE", binary.to_uppercase()), "/dev/null")
            .env("AMQP_URL", amqp_url())
            .env("EXCHANGE_NAME", exchange)
            .env("APP_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        for (name, value) in vars {
            command.env(name, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (build with --release): {e}"));
        let service = Self { port, child };
        for _ in 0..200 {
            if service.ready() {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{binary} was not ready within 5 s");
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The process id, for reading its RSS and CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True once `/ready` answers 200.
    pub fn ready(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time a process has used (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks_per_second)
        })
        .unwrap_or(0.0)
}

/// The median and the given percentile (0..=1) of `samples`, which it sorts.
pub fn median_and(samples: &mut [f64], percentile: f64) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(percentile))
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the consumer's WebSocket and reads past the snapshot.
pub async fn open_socket(consumer: &Service) -> Socket {
    use futures_util::StreamExt;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", consumer.port))
            .await
            .expect("socket opens");
    let _snapshot = socket.next().await;
    socket
}

/// The next `reading` frame's data within `wait`, skipping other frames.
pub async fn next_reading(socket: &mut Socket, wait: Duration) -> Option<serde_json::Value> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            let frame: serde_json::Value = serde_json::from_str(&text).ok()?;
            if frame["type"] == "reading" {
                return Some(frame["data"].clone());
            }
        }
    }
}

/// The floor's own AMQP side: a connection to the local broker and a confirm-mode channel on a
/// fresh exchange of its own, as the publisher has, without anything of the product around it.
pub async fn floor_channel(name: &str) -> (lapin::Connection, lapin::Channel, String) {
    let exchange = shared::testing::unique_exchange(name);
    let settings = shared::testing::broker_settings(&exchange);
    let (connection, _) = shared::broker::connect(&settings, "hostpulse-bench-floor")
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    shared::broker::declare_exchange(&channel, &exchange)
        .await
        .expect("exchange");
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    (connection, channel, exchange)
}
