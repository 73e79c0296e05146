//! The outbox on disk: the real binary killed with SIGKILL while its (private) broker is
//! down loses nothing; what it took arrives after a restart, in order, once.

use shared::reading::Reading;
use shared::testing::private_broker::{free_port, PrivateBroker};
use shared::testing::{unique_exchange, Tap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts the publisher binary on `http_port`, keeping its outbox in `dir`.
fn start(broker_port: u16, http_port: u16, exchange: &str, dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_publisher"))
        .env("PUBLISHER_ENV_FILE", "/dev/null")
        .env(
            "AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:{broker_port}/%2f"),
        )
        .env("EXCHANGE_NAME", exchange)
        .env("HOST_NAME", "survivor")
        .env("APP_PORT", http_port.to_string())
        .env("OUTBOX_DIR", dir)
        .env("PUBLISH_INTERVAL_SECS", "0")
        .env("RECONNECT_MAX_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the publisher runs")
}

/// Asks for `count` readings; with no broker each must be answered "queued" (202).
async fn publish_queued(http_port: u16, count: usize) -> Vec<u64> {
    let http = reqwest::Client::new();
    let publish = format!("http://127.0.0.1:{http_port}/publish");
    let mut queued = Vec::new();
    // Bounded: the service is up within a few seconds or the test fails.
    for _ in 0..200 {
        if let Ok(response) = http.post(&publish).send().await {
            assert_eq!(response.status(), 202, "no broker: queued");
            let answer: serde_json::Value = response.json().await.expect("JSON");
            queued.push(answer["seq"].as_u64().expect("seq"));
            if queued.len() == count {
                return queued;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("the publisher never answered; queued so far {queued:?}");
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

#[tokio::test]
async fn readings_taken_before_a_sigkill_during_an_outage_arrive_in_order_once() {
    let broker_port = free_port();
    let exchange = unique_exchange("spool");
    let dir = std::env::temp_dir().join(format!("hostpulse-outbox-kill-{broker_port}"));
    let _ = std::fs::remove_dir_all(&dir);

    // The broker is down (no node on its port yet): three readings wait on disk.
    let first_port = free_port();
    let mut first = start(broker_port, first_port, &exchange, &dir);
    let before_kill = publish_queued(first_port, 3).await;
    signal(&first, "-KILL");
    let killed = first.wait().expect("reaped");
    assert!(!killed.success(), "killed, not exited: {killed}");
    // As if the kill came in the middle of writing a fourth record.
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("outbox.log"))
        .expect("the outbox file is there");
    std::io::Write::write_all(&mut log, &[200, 1, 0, 0, 7, 7]).expect("a torn record");
    drop(log);

    // Started again, still without a broker: it takes more readings, numbered after the first.
    let second_port = free_port();
    let mut second = start(broker_port, second_port, &exchange, &dir);
    let after_restart = publish_queued(second_port, 2).await;
    assert!(
        after_restart[0] > before_kill[2],
        "seq goes on: {before_kill:?} then {after_restart:?}"
    );

    // The broker comes back: everything arrives, in order.
    let broker = tokio::task::spawn_blocking(move || PrivateBroker::start_on(broker_port, ""))
        .await
        .expect("node starts");
    let mut tap = Tap::bind_at(&broker.url(), &exchange).await;
    let expected: Vec<u64> = before_kill.iter().chain(&after_restart).copied().collect();
    let mut delivered = Vec::new();
    while delivered.len() < expected.len() {
        let message = tap
            .next(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("only {delivered:?} of {expected:?} arrived"));
        let reading = Reading::from_json(&message.body).expect("a reading");
        assert_eq!(reading.host, "survivor");
        delivered.push(reading.seq);
    }
    assert_eq!(delivered, expected);
    // Once: the next message after them is a new reading, not one of them again.
    let http = reqwest::Client::new();
    let answer: serde_json::Value = http
        .post(format!("http://127.0.0.1:{second_port}/publish"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let fresh = answer["seq"].as_u64().expect("seq");
    let next = tap
        .next(Duration::from_secs(30))
        .await
        .expect("the fresh reading arrives");
    assert_eq!(Reading::from_json(&next.body).expect("reading").seq, fresh);

    signal(&second, "-TERM");
    let status = tokio::task::spawn_blocking(move || second.wait())
        .await
        .expect("joined")
        .expect("exit status");
    assert!(status.success(), "clean exit: {status}");
    assert_eq!(
        std::fs::metadata(dir.join("outbox.log"))
            .map(|m| m.len())
            .ok(),
        Some(0),
        "nothing waits any more"
    );
    tap.cleanup().await;
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tmpfs of 16 KiB mounted for one test (a real full disk), unmounted when dropped.
struct TinyDisk(std::path::PathBuf);

impl TinyDisk {
    fn mount(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hostpulse-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs (util-linux)");
        assert!(mounted.success(), "mounting a tmpfs needs root");
        Self(dir)
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        // Lazy: the publisher still running in this process holds the outbox file open.
        let _ = Command::new("umount").arg("--lazy").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test]
async fn a_full_disk_keeps_readings_in_memory_and_counts_it() {
    let disk = TinyDisk::mount("full");
    let outbox = disk.0.join("outbox");
    let outbox = outbox.to_string_lossy();
    let address = crate::helpers::spawn_app_without_broker(&[("OUTBOX_DIR", &outbox)]).await;
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let response = http
            .post(format!("{address}/publish"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 202, "queued even when the disk is full");
    }
    let text = http
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let metric = |name| shared::testing::metric(&text, name);
    assert_eq!(
        metric("hostpulse_outbox_readings"),
        Some(20.0),
        "all 20 wait"
    );
    assert!(
        metric("hostpulse_outbox_spool_failures_total").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(metric("hostpulse_outbox_dropped_total"), Some(0.0));
}
