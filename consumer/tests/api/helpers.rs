//! Spawns consumers and publishers in-process on free ports, sharing a test's own exchange on
//! the real broker, and a WebSocket client to watch what the browsers get.

use futures_util::{SinkExt, StreamExt};
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use shared::settings::EnvSource;
use shared::testing::amqp_url;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub struct TestConsumer {
    pub address: String,
    pub port: u16,
    pub live: std::sync::Arc<consumer::live::LiveView>,
    pub metrics: consumer::metrics::ConsumerMetrics,
    #[allow(dead_code)]
    pub history: std::sync::Arc<consumer::history::recorder::History>,
    /// Used by the browser tests, which restart a consumer.
    #[allow(dead_code)]
    pub stop: actix_web::dev::ServerHandle,
    #[allow(dead_code)]
    pub stopped: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The consumer's own data folder, when the test gave none: removed with the consumer.
    _data: Option<DataDir>,
}

/// A fresh data folder for a consumer (its SQLite history) under the system's temp dir,
/// removed when dropped, also when the test fails.
pub struct DataDir {
    dir: tempfile::TempDir,
    path: String,
}

impl DataDir {
    /// The folder, for `DATA_DIR`.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The folder as a path.
    #[allow(dead_code)]
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl std::fmt::Display for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path)
    }
}

impl AsRef<std::path::Path> for DataDir {
    fn as_ref(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl AsRef<std::ffi::OsStr> for DataDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.dir.path().as_os_str()
    }
}

/// A fresh data folder for one consumer (see [`DataDir`]).
pub fn fresh_data_dir() -> DataDir {
    let dir = tempfile::Builder::new()
        .prefix("hostpulse-test-data-")
        .tempdir()
        .expect("a temporary folder");
    let path = dir.path().display().to_string();
    DataDir { dir, path }
}

/// Starts a consumer bound to `exchange` and waits until its queue is consuming. Its history
/// goes to a fresh SQLite file (unless `vars` say otherwise), and its history queue expires a
/// minute after the test, so test runs leave nothing behind on the shared broker.
pub async fn spawn_consumer(exchange: &str, vars: &[(&str, &str)]) -> TestConsumer {
    spawn_consumer_on(
        exchange,
        vars,
        std::sync::Arc::new(consumer::clock::SystemClock),
    )
    .await
}

/// Like [`spawn_consumer`], on a clock of the test's choosing.
pub async fn spawn_consumer_on(
    exchange: &str,
    vars: &[(&str, &str)],
    clock: consumer::clock::SharedClock,
) -> TestConsumer {
    shared::testing::init_logs();
    let data = (!vars.iter().any(|(name, _)| *name == "DATA_DIR")).then(fresh_data_dir);
    let mut env = EnvSource::from_pairs([
        ("AMQP_URL", amqp_url()),
        ("EXCHANGE_NAME", exchange.to_owned()),
        ("APP_PORT", "0".into()),
        ("HISTORY_QUEUE_EXPIRES_SECS", "60".into()),
    ]);
    if let Some(data) = &data {
        env.set("DATA_DIR", data.as_str());
    }
    for (name, value) in vars {
        env.set(name, *value);
    }
    let settings = consumer::configuration::Settings::from_env(&env).expect("valid settings");
    let app = consumer::startup::Application::build_with_clock(settings, clock)
        .await
        .expect("builds");
    let port = app.port();
    let (live, metrics, broker, history) = (app.live(), app.metrics(), app.broker(), app.history());
    let stop = app.stop_handle();
    let stopped = tokio::spawn(app.run_until_stopped());
    wait_until("the consumer consumes", || broker.borrow().connected).await;
    TestConsumer {
        address: format!("http://127.0.0.1:{port}"),
        port,
        live,
        metrics,
        history,
        stop,
        stopped,
        _data: data,
    }
}

pub struct TestPublisher {
    pub address: String,
    pub link: std::sync::Arc<publisher::broker::ReadingPublisher>,
}

/// Starts a publisher on `exchange` (publishing only on request) named `host`.
pub async fn spawn_publisher(exchange: &str, host: &str) -> TestPublisher {
    spawn_publisher_with(exchange, host, &[]).await
}

/// Like [`spawn_publisher`], with extra settings that win over the defaults here.
pub async fn spawn_publisher_with(
    exchange: &str,
    host: &str,
    vars: &[(&str, &str)],
) -> TestPublisher {
    shared::testing::init_logs();
    let mut env = EnvSource::from_pairs([
        ("AMQP_URL", amqp_url()),
        ("EXCHANGE_NAME", exchange.to_owned()),
        ("APP_PORT", "0".into()),
        ("PUBLISH_INTERVAL_SECS", "0".into()),
        ("HOST_NAME", host.to_owned()),
    ]);
    for (name, value) in vars {
        env.set(name, *value);
    }
    let settings = publisher::configuration::Settings::from_env(&env).expect("valid settings");
    let app = publisher::startup::Application::build(settings)
        .await
        .expect("builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let link = app.publisher();
    tokio::spawn(app.run_until_stopped());
    wait_until("the publisher connects", || link.state().connected).await;
    TestPublisher { address, link }
}

impl TestPublisher {
    /// Calls `/publish` and returns the status and the answer.
    pub async fn publish_answer(&self) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("{}/publish", self.address))
            .await
            .expect("sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    /// Calls `/publish` and returns the confirmed `seq`.
    pub async fn publish(&self) -> u64 {
        let answer: serde_json::Value = reqwest::get(format!("{}/publish", self.address))
            .await
            .expect("sent")
            .error_for_status()
            .expect("200")
            .json()
            .await
            .expect("JSON");
        answer["seq"].as_u64().expect("seq")
    }
}

/// Polls `check` for up to 10 s.
pub async fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the dashboard's WebSocket.
pub async fn open_socket(consumer: &TestConsumer) -> Socket {
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", consumer.port))
            .await
            .expect("WebSocket opens");
    socket
}

/// How long a test waits for a frame it expects: far longer than it takes on an idle machine
/// (milliseconds), so a busy one passes too; a wait that ends early costs nothing.
pub const FRAME_WAIT: Duration = Duration::from_secs(30);

/// The next JSON text frame, answering pings; `None` after `wait` or when closed.
pub async fn next_frame<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
    wait: Duration,
) -> Option<serde_json::Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
            .ok()?;
        match message {
            Message::Text(text) => {
                return Some(serde_json::from_str(&text).expect("frames are JSON"))
            }
            Message::Ping(data) => {
                let _ = socket.send(Message::Pong(data)).await;
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// The next `reading` frame's data, skipping `status` frames.
pub async fn next_reading(socket: &mut Socket) -> serde_json::Value {
    loop {
        let frame = next_frame(socket, FRAME_WAIT)
            .await
            .expect("a frame in time");
        if frame["type"] == "reading" {
            return frame["data"].clone();
        }
    }
}

/// A private queue on the alerts topic exchange at `url`, for the events of every routing key:
/// what the consumers announced there.
pub async fn alert_tap(url: &str) -> (lapin::Connection, lapin::Consumer) {
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    shared::broker::declare_exchange_of(
        &channel,
        consumer::alerts::ALERTS_EXCHANGE,
        lapin::ExchangeKind::Topic,
    )
    .await
    .expect("exchange");
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    channel
        .queue_bind(
            queue.name().as_str().into(),
            consumer::alerts::ALERTS_EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    let consumer = channel
        .basic_consume(
            queue.name().as_str().into(),
            "test".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    (connection, consumer)
}
