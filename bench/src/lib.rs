//! Benchmarks for hostpulse; each binary in `src/bin/` measures one thing. This library holds
//! what they share: starting the real, release-built services as child processes.

pub mod summary;

use shared::testing::amqp_url;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A service binary running as its own process, killed on drop.
pub struct Service {
    pub port: u16,
    child: Child,
    /// The service's files (the consumer's history, the publisher's outbox), removed on drop.
    scratch: PathBuf,
}

/// A binary built next to this one (`cargo build --release` builds them all).
pub fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent().expect("a directory").join(name)
}

/// A free loopback port.
pub use shared::testing::private_broker::free_port;

impl Service {
    /// Starts `publisher` or `consumer` on a free port and `exchange`, and waits for `/ready`.
    /// `HOSTPULSE_CONSUMER_BIN` (or `_PUBLISHER_BIN`) runs another build instead, to compare
    /// before and after a change.
    pub async fn start(binary: &str, exchange: &str, vars: &[(&str, &str)]) -> Self {
        let port = free_port();
        let path = std::env::var_os(format!("HOSTPULSE_{}_BIN", binary.to_uppercase()))
            .map(PathBuf::from)
            .unwrap_or_else(|| sibling(binary));
        let scratch = std::env::temp_dir().join(format!("hostpulse-bench-{port}"));
        let mut command = Command::new(path);
        command
            .env(format!("{}_ENV_FILE", binary.to_uppercase()), "/dev/null")
            .env("AMQP_URL", amqp_url())
            .env("EXCHANGE_NAME", exchange)
            .env("APP_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            // The consumer's history in a scratch folder, its queue gone a minute after.
            .env("DATA_DIR", &scratch)
            .env("HISTORY_QUEUE_EXPIRES_SECS", "60")
            // The publisher's outbox on disk, as shipped, in the same scratch folder.
            .env("OUTBOX_DIR", scratch.join("outbox"))
            .stdout(Stdio::null());
        for (name, value) in vars {
            command.env(name, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (build with --release): {e}"));
        let service = Self {
            port,
            child,
            scratch,
        };
        // Polled often: start-up time is one of the figures.
        for _ in 0..2500 {
            if service.ready() {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
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
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Resident memory of a process, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The most resident memory a process has had, in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A KiB field of `/proc/PID/status`; 0 when it cannot be read.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time a process has used, in seconds: its live threads' run time from `schedstat`
/// (nanoseconds, so a quiet process's 0.1 % is not lost in 10 ms ticks), plus what its
/// reaped children used (`cutime` + `cstime`, in ticks).
pub fn cpu_seconds(pid: u32) -> f64 {
    let threads: u64 = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|task| {
                    std::fs::read_to_string(task.path().join("schedstat"))
                        .ok()?
                        .split_whitespace()
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .sum()
        })
        .unwrap_or(0);
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let children = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let cutime: f64 = fields.get(13)?.parse().ok()?;
            let cstime: f64 = fields.get(14)?.parse().ok()?;
            Some((cutime + cstime) / ticks_per_second)
        })
        .unwrap_or(0.0);
    threads as f64 / 1e9 + children
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
    open_socket_at(consumer.port).await
}

/// Opens the WebSocket of the consumer on `port` and reads past the snapshot.
pub async fn open_socket_at(port: u16) -> Socket {
    use futures_util::StreamExt;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
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

/// Lets this process hold as many sockets as the hard limit allows (benchmarks open thousands).
pub fn raise_open_file_limit() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("cannot raise the open file limit: {e}");
    }
}

/// The field a benchmark adds to the readings it publishes: wall-clock microseconds at the
/// moment of publishing. Readers ignore unknown fields, and the consumer forwards messages as
/// received, so it reaches the WebSocket clients untouched.
pub const SENT_FIELD: &str = "bench_sent_us";

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The `SENT_FIELD` value in a frame, found without parsing the whole frame (a reader that
/// parsed 100,000 frames a second would measure itself, not the consumer).
pub fn sent_us(frame: &str) -> Option<u64> {
    let key = format!("\"{SENT_FIELD}\":");
    let at = frame.find(&key)? + key.len();
    let digits: String = frame[at..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// WebSocket clients that read every frame, as browsers do, on their own tasks.
pub struct Readers {
    tasks: Vec<tokio::task::JoinHandle<Vec<f64>>>,
    frames: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// Opens `n` sockets to the consumer on `port` (a few at a time) and starts reading them.
pub async fn spawn_readers(port: u16, n: usize) -> Readers {
    use futures_util::StreamExt;
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(n);
    let mut pending = futures_util::stream::iter(0..n)
        .map(|_| open_socket_at(port))
        .buffer_unordered(16);
    while let Some(socket) = pending.next().await {
        tasks.push(tokio::spawn(read_frames(
            socket,
            std::sync::Arc::clone(&frames),
            stopped.clone(),
        )));
    }
    Readers {
        tasks,
        frames,
        stop,
    }
}

/// Counts frames and, for those carrying `SENT_FIELD`, records publish → receipt latency in
/// milliseconds, until told to stop or the socket closes.
async fn read_frames(
    mut socket: Socket,
    frames: std::sync::Arc<std::sync::atomic::AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<f64> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut latencies = Vec::new();
    loop {
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Some(sent) = sent_us(&text) {
                        latencies.push(now_us().saturating_sub(sent) as f64 / 1000.0);
                    }
                }
                // tungstenite answers pings by itself while the stream is read.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    let _ = socket.close(None).await;
    latencies
}

impl Readers {
    /// Frames received so far by all the readers.
    pub fn frames(&self) -> u64 {
        self.frames.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sockets still open.
    pub fn open(&self) -> usize {
        self.tasks.iter().filter(|t| !t.is_finished()).count()
    }

    /// Closes every socket; returns the frames received.
    pub async fn stop(self) -> u64 {
        self.stop_with_latencies().await.0
    }

    /// Closes every socket; returns the frames received and every latency recorded (ms).
    pub async fn stop_with_latencies(self) -> (u64, Vec<f64>) {
        self.stop.send_replace(true);
        let frames = std::sync::Arc::clone(&self.frames);
        let mut all = Vec::new();
        for task in self.tasks {
            if let Ok(latencies) = task.await {
                all.extend(latencies);
            }
        }
        (frames.load(std::sync::atomic::Ordering::Relaxed), all)
    }
}

/// One kept-alive HTTP/1.1 connection, driven by hyper's bare connection API: no pool, no
/// extra tasks between the caller and the socket, so a figure measures the service more than
/// the client (reqwest added about 0.25 ms per request here).
pub struct HttpConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    host: String,
}

impl HttpConnection {
    /// Connects to `127.0.0.1:port`.
    pub async fn open(port: u16) -> Self {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connects");
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("HTTP handshake");
        tokio::spawn(connection);
        Self {
            sender,
            host: format!("127.0.0.1:{port}"),
        }
    }

    /// `GET path`; the status and the whole body.
    pub async fn get(&mut self, path: &str) -> (u16, bytes::Bytes) {
        let (status, body, _) = self.get_counting(path).await;
        (status, body)
    }

    /// `GET path`; the status, the whole body and the answer's size on the wire (status line,
    /// headers and body).
    pub async fn get_counting(&mut self, path: &str) -> (u16, bytes::Bytes, usize) {
        use http_body_util::BodyExt;
        self.sender.ready().await.expect("connection usable");
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, &self.host)
            .body(http_body_util::Empty::new())
            .expect("a valid request");
        let response = self.sender.send_request(request).await.expect("answer");
        let status = response.status().as_u16();
        // "HTTP/1.1 200 OK\r\n", each "name: value\r\n", the blank line.
        let head = 17
            + response
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum::<usize>()
            + 2;
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let wire = head + body.len();
        (status, body, wire)
    }
}

/// A bare HTTP/1.1 kept-alive connection for load loops: one `write` per request and the
/// answer read into a buffer kept between requests. On a two-core machine that the client, the
/// broker and the service share, the client's own CPU is taken from the service: this one
/// costs a fraction of hyper's (the request built and sent from the caller's task, no
/// connection task, no body collected into a new buffer). Answers must carry
/// `Content-Length`, as both services' do.
pub struct LightHttp {
    stream: tokio::net::TcpStream,
    host: String,
    request: Vec<u8>,
    buffer: Vec<u8>,
    /// Bytes of `buffer` that belong to the last answer.
    answered: usize,
}

impl LightHttp {
    /// Connects to `127.0.0.1:port`.
    pub async fn open(port: u16) -> Self {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connects");
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            host: format!("127.0.0.1:{port}"),
            request: Vec::with_capacity(128),
            buffer: Vec::with_capacity(16 * 1024),
            answered: 0,
        }
    }

    /// `GET path`; the status and the body.
    pub async fn get(&mut self, path: &str) -> (u16, &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.buffer.drain(..self.answered);
        self.request.clear();
        for part in ["GET ", path, " HTTP/1.1\r\nhost: ", &self.host, "\r\n\r\n"] {
            self.request.extend_from_slice(part.as_bytes());
        }
        self.stream
            .write_all(&self.request)
            .await
            .expect("request sent");
        let (status, head, length) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 24];
            let mut answer = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) =
                answer.parse(&self.buffer).expect("an HTTP answer")
            {
                let length = answer
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                    .expect("a Content-Length");
                break (answer.code.expect("a status"), head, length);
            }
            self.read_more().await;
        };
        self.answered = head + length;
        while self.buffer.len() < self.answered {
            self.read_more().await;
        }
        (status, &self.buffer[head..self.answered])
    }

    async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        if self.buffer.capacity() - self.buffer.len() < 4096 {
            self.buffer.reserve(16 * 1024);
        }
        let read = self.stream.read_buf(&mut self.buffer).await.expect("reads");
        assert!(read > 0, "the service closed the connection mid-answer");
    }
}
