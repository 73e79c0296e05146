use crate::helpers::{next_frame, open_socket, spawn_consumer, spawn_publisher, wait_until};
use shared::testing::{metric, unique_exchange, Tap};
use std::time::Duration;

async fn scrape(address: &str) -> String {
    reqwest::get(format!("{address}/metrics"))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn counters_follow_messages_and_clients() {
    let exchange = unique_exchange("consumer-metrics");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "metered").await;
    let tap = Tap::bind(&exchange).await;

    let text = scrape(&consumer.address).await;
    assert_eq!(metric(&text, "hostpulse_ws_clients"), Some(0.0));
    assert_eq!(metric(&text, "hostpulse_broker_connected"), Some(1.0));

    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, Duration::from_secs(5))
        .await
        .expect("snapshot");
    let text = scrape(&consumer.address).await;
    assert_eq!(
        metric(&text, "hostpulse_ws_clients"),
        Some(1.0),
        "the open socket counts"
    );

    tap.publish_raw(b"{oops").await;
    publisher.publish().await;
    let metrics = consumer.metrics.clone();
    wait_until("both messages handled", || metrics.received.get() == 2).await;
    let text = scrape(&consumer.address).await;
    assert_eq!(
        metric(&text, "hostpulse_messages_received_total"),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &text,
            "hostpulse_messages_rejected_total{reason=\"malformed\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "hostpulse_reading_age_seconds_count"),
        Some(1.0)
    );
    assert!(metric(&text, "hostpulse_ws_frames_sent_total").is_some_and(|n| n >= 2.0));
    assert_eq!(
        metric(&text, "hostpulse_host_up{host=\"metered\"}"),
        Some(1.0)
    );
    assert!(
        metric(&text, "hostpulse_host_memory_total_bytes{host=\"metered\"}")
            .is_some_and(|b| b > 0.0)
    );
    assert!(metric(
        &text,
        "hostpulse_host_disk_total_bytes{host=\"metered\",mount=\"/\"}"
    )
    .is_some());
    assert!(metric(
        &text,
        "hostpulse_host_last_seen_timestamp_seconds{host=\"metered\"}"
    )
    .is_some());

    socket.close(None).await.expect("closed");
    let address = consumer.address.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if metric(&scrape(&address).await, "hostpulse_ws_clients") == Some(0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed socket never left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tap.cleanup().await;
}
