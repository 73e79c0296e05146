//! SIGTERM or Ctrl-C (SIGINT) to the real publisher binary while readings wait in its outbox:
//! they are delivered before it exits, if the broker comes back within the flush deadline,
//! and the log says so.

use shared::reading::Reading;
use shared::testing::private_broker::{free_port, PrivateBroker};
use shared::testing::{unique_exchange, Tap};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Queues three readings in a publisher without a broker, sends it `signal`, then starts
/// the broker; returns the publisher's log once it exited cleanly with its outbox delivered.
async fn deliver_outbox_after(signal: &str) -> String {
    let broker_port = free_port();
    let http_port = free_port();
    let exchange = unique_exchange("drain");
    let child = Command::new(env!("CARGO_BIN_EXE_publisher"))
        .env("PUBLISHER_ENV_FILE", "/dev/null")
        // In memory, as this test is about the shutdown drain (outbox_disk.rs: the disk).
        .env("OUTBOX_DIR", "off")
        .env(
            "AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:{broker_port}/%2f"),
        )
        .env("EXCHANGE_NAME", &exchange)
        .env("APP_PORT", http_port.to_string())
        .env("PUBLISH_INTERVAL_SECS", "0")
        .env("RECONNECT_MAX_SECS", "1")
        .env("SHUTDOWN_FLUSH_SECS", "60")
        // actix's own lines on: its "forced shutdown" would show if Ctrl-C still took that path.
        .env("RUST_LOG", "info,actix_server=info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the publisher runs");
    let http = reqwest::Client::new();
    let publish = format!("http://127.0.0.1:{http_port}/publish");
    let mut queued = Vec::new();
    for _ in 0..100 {
        if let Ok(response) = http.post(&publish).send().await {
            assert_eq!(response.status(), 202, "no broker yet: queued");
            let answer: serde_json::Value = response.json().await.expect("JSON");
            queued.push(answer["seq"].as_u64().expect("seq"));
            if queued.len() == 3 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(queued, [1, 2, 3]);

    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    // The broker appears only after the stop was asked for.
    let broker = tokio::task::spawn_blocking(move || PrivateBroker::start_on(broker_port, ""))
        .await
        .expect("node starts");
    let mut tap = Tap::bind_at(&broker.url(), &exchange).await;
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let message = tap
            .next(Duration::from_secs(30))
            .await
            .expect("the outbox is delivered");
        delivered.push(Reading::from_json(&message.body).expect("reading").seq);
    }
    assert_eq!(delivered, queued);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("joined")
        .expect("exit status");
    assert!(output.status.success(), "clean exit: {}", output.status);
    tap.cleanup().await;
    drop(broker);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn on_sigterm_the_publisher_delivers_its_outbox_before_exiting() {
    let log = deliver_outbox_after("TERM").await;
    assert!(log.contains("SIGTERM received; stopping"), "{log}");
    assert!(log.contains("outbox delivered"), "{log}");
}

#[tokio::test]
async fn ctrl_c_delivers_the_outbox_too_and_the_log_says_so() {
    let log = deliver_outbox_after("INT").await;
    assert!(log.contains("Ctrl-C received; stopping"), "{log}");
    assert!(
        log.contains("delivering the outbox before exiting"),
        "{log}"
    );
    assert!(log.contains("outbox delivered"), "{log}");
    assert!(!log.contains("forced shutdown"), "{log}");
}
