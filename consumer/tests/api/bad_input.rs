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

#[tokio::test]
async fn a_client_sending_a_huge_frame_is_closed_and_others_keep_receiving() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let exchange = unique_exchange("huge-frame");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "huge-host").await;
    let mut rude = open_socket(&consumer).await;
    let mut polite = open_socket(&consumer).await;
    next_frame(&mut rude, Duration::from_secs(5))
        .await
        .expect("snapshot");
    next_frame(&mut polite, Duration::from_secs(5))
        .await
        .expect("snapshot");
    let _ = rude.send(Message::binary(vec![0u8; 1 << 20])).await;
    assert!(
        next_frame(&mut rude, Duration::from_secs(5))
            .await
            .is_none(),
        "closed"
    );
    let seq = publisher.publish().await;
    assert_eq!(next_reading(&mut polite).await["seq"], seq);
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_the_others_get_everything() {
    let exchange = unique_exchange("never-reads");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    let mut stuck = open_socket(&consumer).await;
    next_frame(&mut stuck, Duration::from_secs(5))
        .await
        .expect("snapshot");
    let mut polite = open_socket(&consumer).await;
    next_frame(&mut polite, Duration::from_secs(5))
        .await
        .expect("snapshot");

    // Big readings (unknown fields are forwarded as received) fill the stuck client's socket
    // buffers quickly; it reads nothing from here on.
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    // Enough to fill the kernel socket buffers (several MB on loopback) and the 32-frame
    // session queue behind them.
    let count = 80u64;
    for seq in 1..=count {
        let mut reading = fixture.clone();
        reading["host"] = "big".into();
        reading["seq"] = seq.into();
        reading["padding"] = "x".repeat(600 * 1024).into();
        tap.publish_raw(&serde_json::to_vec(&reading).expect("json"))
            .await;
    }
    for seq in 1..=count {
        let data = next_reading_within(&mut polite, Duration::from_secs(20)).await;
        assert_eq!(
            data["seq"], seq,
            "the reading client gets every reading, in order"
        );
    }
    let metrics_url = format!("{}/metrics", consumer.address);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = reqwest::get(&metrics_url)
            .await
            .expect("sent")
            .text()
            .await
            .expect("text");
        let dropped = shared::testing::metric(
            &text,
            "hostpulse_ws_clients_dropped_total{reason=\"send_timeout\"}",
        );
        if dropped == Some(1.0) {
            assert_eq!(
                shared::testing::metric(&text, "hostpulse_ws_clients"),
                Some(1.0)
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck client was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(stuck);
    tap.cleanup().await;
}

async fn next_reading_within(
    socket: &mut crate::helpers::Socket,
    wait: Duration,
) -> serde_json::Value {
    loop {
        let frame = next_frame(socket, wait).await.expect("a frame in time");
        if frame["type"] == "reading" {
            return frame["data"].clone();
        }
    }
}
