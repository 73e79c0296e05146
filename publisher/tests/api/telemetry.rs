//! The real binary's log when its stdout is a pipe (systemd's journal, `| tee`, a file):
//! plain text, and none of actix's start-up chatter.

use shared::testing::private_broker::free_port;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn a_piped_log_has_no_colour_codes_and_no_actix_chatter() {
    let http_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_publisher"))
        .env("PUBLISHER_ENV_FILE", "/dev/null")
        // No broker: a warning line about it is logged too.
        .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("APP_PORT", http_port.to_string())
        .env("PUBLISH_INTERVAL_SECS", "0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the publisher runs");
    let health = format!("http://127.0.0.1:{http_port}/health");
    let mut up = false;
    for _ in 0..100 {
        if reqwest::get(&health).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("joined")
        .expect("exit status");
    assert!(up, "the publisher answered on port {http_port}");
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("INFO"), "info lines are logged: {log}");
    assert!(log.contains("publish on request"), "{log}");
    assert!(
        !log.contains("\x1b["),
        "ANSI escape codes in a piped log: {log:?}"
    );
    assert!(!log.contains("Actix runtime found"), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("starting") && l.contains("workers")),
        "{log}"
    );
}
