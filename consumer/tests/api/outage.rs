//! Broker loss and return, on a private RabbitMQ node (never the shared one).

use crate::helpers::{
    next_frame, open_socket, spawn_consumer, spawn_publisher_with, wait_until, Socket,
};
use shared::testing::private_broker::PrivateBroker;
use shared::testing::unique_exchange;
use std::time::Duration;

/// Frames until `want` matches, returning what came before it.
async fn frames_until(
    socket: &mut Socket,
    secs: u64,
    want: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = next_frame(socket, left)
            .await
            .unwrap_or_else(|| panic!("timed out; frames so far: {seen:#?}"));
        if want(&frame) {
            return seen;
        }
        seen.push(frame);
    }
}

fn is_status(connected: bool) -> impl Fn(&serde_json::Value) -> bool {
    move |f| f["type"] == "status" && f["broker"]["connected"] == connected
}

#[tokio::test]
async fn readings_taken_while_the_broker_is_down_all_arrive_in_order_after_it_returns() {
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start(""))
        .await
        .expect("node starts");
    let url = broker.url();
    let exchange = unique_exchange("outage");
    let fast = [("AMQP_URL", url.as_str()), ("RECONNECT_MAX_SECS", "2")];
    let consumer = spawn_consumer(&exchange, &fast).await;
    let publisher = spawn_publisher_with(&exchange, "survivor", &fast).await;
    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, Duration::from_secs(5))
        .await
        .expect("snapshot");
    let before = publisher.publish().await;
    frames_until(&mut socket, 5, |f| f["data"]["seq"] == before).await;

    let broker = tokio::task::spawn_blocking(move || {
        broker.stop_app();
        broker
    })
    .await
    .expect("stop_app");
    // The page's socket stays open and is told the broker went away.
    frames_until(&mut socket, 10, is_status(false)).await;
    let link = publisher.link.clone();
    wait_until("the publisher notices", || !link.state().connected).await;
    let ready = reqwest::get(format!("{}/ready", publisher.address))
        .await
        .expect("sent");
    assert_eq!(ready.status(), 503);

    let mut queued = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let (status, answer) = publisher.publish_answer().await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "queued");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answered at once"
        );
        queued.push(answer["seq"].as_u64().expect("seq"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let broker = tokio::task::spawn_blocking(move || {
        broker.start_app();
        broker
    })
    .await
    .expect("start_app");
    frames_until(&mut socket, 30, is_status(true)).await;
    // Every reading taken during the outage, in order, on the same socket.
    let mut arrived = Vec::new();
    while arrived.len() < queued.len() {
        let frame = next_frame(&mut socket, Duration::from_secs(30))
            .await
            .expect("the back-fill arrives");
        if frame["type"] == "reading" {
            arrived.push(frame["data"]["seq"].as_u64().expect("seq"));
        }
    }
    assert_eq!(arrived, queued);
    let after = publisher.publish().await;
    assert_eq!(after, queued[queued.len() - 1] + 1);
    frames_until(&mut socket, 5, |f| f["data"]["seq"] == after).await;
    drop(broker);
}
