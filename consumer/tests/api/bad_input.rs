use crate::helpers::{next_frame, next_reading, open_socket, spawn_consumer, spawn_publisher};
use shared::testing::{unique_exchange, Tap};
use std::time::Duration;

#[tokio::test]
async fn messages_that_are_not_readings_are_dropped_and_the_consumer_goes_on() {
    let exchange = unique_exchange("junk");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "junk-host").await;
    let tap = Tap::bind(&exchange).await;
    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, Duration::from_secs(5))
        .await
        .expect("snapshot");

    tap.publish_raw(b"not json at all").await;
    tap.publish_raw(&[0xff, 0x00, 0x13]).await;
    tap.publish_raw(b"[1, 2, 3]").await;
    tap.publish_raw(br#"{"schema_version": 1, "host": "half"}"#)
        .await;

    // The valid reading published after the junk is the next thing the browser sees.
    let seq = publisher.publish().await;
    let data = next_reading(&mut socket).await;
    assert_eq!(data["seq"], seq);
    assert_eq!(data["host"], "junk-host");
    let hosts: serde_json::Value = reqwest::get(format!("{}/api/hosts", consumer.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        hosts.as_array().expect("array").len(),
        1,
        "no junk host: {hosts}"
    );
    let health: serde_json::Value = reqwest::get(format!("{}/health", consumer.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["messages"]["rejected"]["malformed"], 4, "{health}");
    tap.cleanup().await;
}

#[tokio::test]
async fn a_client_that_sends_data_is_closed_and_others_keep_receiving() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let exchange = unique_exchange("rude");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "rude-host").await;
    let mut rude = open_socket(&consumer).await;
    let mut polite = open_socket(&consumer).await;
    next_frame(&mut rude, Duration::from_secs(5))
        .await
        .expect("snapshot");
    next_frame(&mut polite, Duration::from_secs(5))
        .await
        .expect("snapshot");
    rude.send(Message::text("junk")).await.expect("sent");
    assert!(
        next_frame(&mut rude, Duration::from_secs(5))
            .await
            .is_none(),
        "closed"
    );
    let seq = publisher.publish().await;
    assert_eq!(next_reading(&mut polite).await["seq"], seq);
}
