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
