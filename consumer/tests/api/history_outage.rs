//! The store goes away mid-stream: a private PostgreSQL server (own folder and port) is
//! stopped while readings keep coming. The live view never pauses, `/health` says the store is
//! down and why (without the password), `/ready` stays true, and once the server is back the
//! readings that waited in the history queue are all written, each once.

use crate::helpers::{next_reading, open_socket, spawn_consumer, Socket, TestConsumer};
use crate::history::{get_json, reading, recording};
use shared::testing::private_postgres::{PrivatePostgres, PASSWORD};
use shared::testing::{unique_exchange, Tap};
use std::sync::Arc;
use std::time::Duration;

const HOST: &str = "pg-outage";

/// Publishes readings `seqs` (one a second from `base`) and checks that each one reaches the
/// open socket, in order, within the usual bound.
async fn publish_and_see_live(
    tap: &Tap,
    socket: &mut Socket,
    base: chrono::DateTime<chrono::Utc>,
    seqs: std::ops::Range<u64>,
) {
    for seq in seqs {
        let at = base + chrono::Duration::seconds(seq as i64);
        tap.publish_raw(&reading(HOST, seq, at, seq as f64)).await;
        let live = next_reading(socket).await;
        assert_eq!(live["seq"], seq, "the live view got {live}");
    }
}

/// The times the history API holds for the host over the last hour.
async fn recorded_times(consumer: &TestConsumer) -> Vec<i64> {
    let to = chrono::Utc::now().timestamp() + 1;
    let url = format!(
        "{}/api/hosts/{HOST}/history?from={}&to={to}&points=3600",
        consumer.address,
        to - 3600
    );
    let (status, body) = get_json(&url).await;
    if status != 200 {
        return Vec::new();
    }
    body["times"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t.as_i64()).collect())
        .unwrap_or_default()
}

async fn wait_for_times(consumer: &TestConsumer, expected: &[i64]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let times = recorded_times(consumer).await;
        if times.len() >= expected.len() {
            assert_eq!(times, expected, "every reading once, in order");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history has {} of {} readings: {times:?}",
            times.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn health(consumer: &TestConsumer) -> (String, serde_json::Value) {
    let text = reqwest::get(format!("{}/health", consumer.address))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let value = serde_json::from_str(&text).expect("JSON");
    (text, value)
}

/// Runs a blocking server command off the runtime's threads (the consumer runs on them).
async fn blocking(server: &Arc<PrivatePostgres>, what: fn(&PrivatePostgres)) {
    let server = Arc::clone(server);
    tokio::task::spawn_blocking(move || what(&server))
        .await
        .expect("server command");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgres_loses_nothing_and_the_live_view_never_pauses() {
    let server = Arc::new(
        tokio::task::spawn_blocking(PrivatePostgres::start)
            .await
            .expect("server starts"),
    );
    let exchange = unique_exchange("history-pg-outage");
    let url = server.url();
    let consumer = spawn_consumer(
        &exchange,
        &[("HISTORY_URL", url.as_str()), ("RECONNECT_MAX_SECS", "1")],
    )
    .await;
    recording(&consumer).await;
    let mut socket = open_socket(&consumer).await;
    let tap = Tap::bind(&exchange).await;
    let base = chrono::Utc::now() - chrono::Duration::seconds(600);
    let expected = |n: u64| -> Vec<i64> { (1..=n).map(|s| base.timestamp() + s as i64).collect() };

    // Before: recorded as they come.
    publish_and_see_live(&tap, &mut socket, base, 1..11).await;
    wait_for_times(&consumer, &expected(10)).await;
    let (_, before) = health(&consumer).await;
    assert_eq!(before["history"]["up"], true, "{before}");

    // The server stops; readings keep arriving on the socket.
    blocking(&server, PrivatePostgres::stop).await;
    publish_and_see_live(&tap, &mut socket, base, 11..31).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (text, down) = loop {
        let (text, value) = health(&consumer).await;
        if value["history"]["up"] == false {
            break (text, value);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/health never showed the store down: {value}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let why = down["history"]["last_error"].as_str().unwrap_or_default();
    assert!(!why.is_empty(), "/health says why: {down}");
    assert!(!text.contains(PASSWORD), "no password in /health: {text}");
    let (status, ready) = get_json(&format!("{}/ready", consumer.address)).await;
    assert_eq!(status, 200, "the live view is still ready: {ready}");
    assert_eq!(ready["ready"], true, "{ready}");
    // Still live while /health shows the store down.
    publish_and_see_live(&tap, &mut socket, base, 31..41).await;
    let metrics = reqwest::get(format!("{}/metrics", consumer.address))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(!metrics.contains(PASSWORD), "no password in /metrics");

    // The server returns: what waited in the queue is written, and writes go on by themselves.
    blocking(&server, PrivatePostgres::start_again).await;
    publish_and_see_live(&tap, &mut socket, base, 41..51).await;
    wait_for_times(&consumer, &expected(50)).await;
    let (_, after) = health(&consumer).await;
    assert_eq!(after["history"]["up"], true, "{after}");
    assert!(after["history"]["last_error"].is_null(), "{after}");
    tap.cleanup().await;
}
