//! SIGTERM to the real consumer binary: every browser gets a close frame.

use futures_util::StreamExt;
use shared::testing::{amqp_url, unique_exchange};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn on_sigterm_the_consumer_closes_every_socket_with_a_close_frame() {
    let port = shared::testing::private_broker::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("CONSUMER_ENV_FILE", "/dev/null")
        .env("AMQP_URL", amqp_url())
        .env("EXCHANGE_NAME", unique_exchange("sigterm"))
        .env("APP_PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .env("HISTORY_URL", "off")
        .stdout(Stdio::null())
        .spawn()
        .expect("the consumer runs");
    let url = format!("ws://127.0.0.1:{port}/ws");
    let mut socket = None;
    for _ in 0..100 {
        if let Ok((s, _)) = tokio_tungstenite::connect_async(&url).await {
            socket = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut socket = socket.expect("the socket opens");
    let snapshot = socket.next().await.expect("a frame").expect("ok");
    assert!(matches!(snapshot, Message::Text(_)));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = socket.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame;
            }
        }
        None
    })
    .await
    .expect("closed within 5 s")
    .expect("with a close frame, not a dropped connection");
    assert_eq!(close.code, CloseCode::Restart);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("joined")
        .expect("exit status");
    assert!(status.success(), "clean exit: {status}");
}

/// On SIGTERM the consumer closes its history store: SQLite folds its write-ahead log into
/// the database and removes the `-wal` file, and what was recorded is in the database.
#[tokio::test]
async fn on_sigterm_the_consumer_closes_its_sqlite_history() {
    let data = tempfile::tempdir().expect("temp dir");
    let exchange = unique_exchange("sigterm-store");
    let port = shared::testing::private_broker::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("CONSUMER_ENV_FILE", "/dev/null")
        .env("AMQP_URL", amqp_url())
        .env("EXCHANGE_NAME", &exchange)
        .env("APP_PORT", port.to_string())
        .env("DATA_DIR", data.path())
        .env("HISTORY_QUEUE_EXPIRES_SECS", "60")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the consumer runs");
    let address = format!("http://127.0.0.1:{port}");
    let health = format!("{address}/health");
    wait_for("the history queue", || async {
        let v: serde_json::Value = reqwest::get(&health).await.ok()?.json().await.ok()?;
        (v["history"]["queue_connected"] == true).then_some(())
    })
    .await;
    let tap = shared::testing::Tap::bind(&exchange).await;
    // Enough for a write-ahead log of some size, as a consumer that ran a while has.
    const READINGS: i64 = 300;
    let base = chrono::Utc::now() - chrono::Duration::seconds(READINGS + 30);
    for i in 0..READINGS {
        let at = base + chrono::Duration::seconds(i);
        tap.publish_raw(&crate::history::reading("closing", i as u64 + 1, at, 5.0))
            .await;
    }
    let to = chrono::Utc::now().timestamp() + 1;
    let history = format!(
        "{address}/api/hosts/closing/history?from={}&to={to}&points=3600",
        to - 3600
    );
    wait_for("the readings recorded", || async {
        let v: serde_json::Value = reqwest::get(&history).await.ok()?.json().await.ok()?;
        (v["times"].as_array()?.len() == READINGS as usize).then_some(())
    })
    .await;
    let wal = data.path().join("history.sqlite-wal");
    assert!(
        wal.exists(),
        "while it runs, SQLite keeps a write-ahead log"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("joined")
        .expect("exit status");
    assert!(status.success(), "clean exit: {status}");
    assert!(!wal.exists(), "no -wal left: the store was closed");
    // The reading is in the database file itself.
    let env =
        shared::settings::EnvSource::from_pairs([("DATA_DIR", data.path().display().to_string())]);
    let settings =
        consumer::history::store::HistorySettings::from_env(&env).expect("valid settings");
    let store = consumer::history::store::Store::open(&settings)
        .await
        .expect("opens")
        .expect("history is on");
    let hosts = store.hosts().await.expect("hosts");
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["closing"]);
    store.close().await;
    tap.cleanup().await;
}

/// Asks `probe` every 100 ms until it answers, for 30 s at most.
async fn wait_for<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while probe().await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
