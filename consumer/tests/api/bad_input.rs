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
    next_frame(&mut socket, crate::helpers::FRAME_WAIT)
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
    next_frame(&mut rude, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    next_frame(&mut polite, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    rude.send(Message::text("junk")).await.expect("sent");
    assert!(
        next_frame(&mut rude, crate::helpers::FRAME_WAIT)
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
    next_frame(&mut rude, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    next_frame(&mut polite, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    let _ = rude.send(Message::binary(vec![0u8; 1 << 20])).await;
    assert!(
        next_frame(&mut rude, crate::helpers::FRAME_WAIT)
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
    let mut stuck = open_stuck_socket(&consumer).await;
    next_frame(&mut stuck, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    let mut polite = open_socket(&consumer).await;
    next_frame(&mut polite, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");

    // Big readings (unknown fields are forwarded as received) fill what stands between the
    // server and the stuck client, which reads nothing from here on: the session's queue of
    // frames, the server's socket buffer (at most the kernel's `tcp_wmem` maximum) and the
    // stuck client's small receive buffer. A few more, and the server waits on it in vain.
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    let kernel = server_send_buffer_max() + 2 * STUCK_RECEIVE_BUFFER;
    let count = (SESSION_QUEUE + kernel.div_ceil(PADDING) + 8) as u64;
    let publish = async {
        for seq in 1..=count {
            let mut reading = fixture.clone();
            reading["host"] = "big".into();
            reading["seq"] = seq.into();
            reading["padding"] = "x".repeat(PADDING).into();
            tap.publish_raw(&serde_json::to_vec(&reading).expect("json"))
                .await;
        }
    };
    // The polite client reads while the readings are published, as a page does: a client
    // that reads nothing for the server's send timeout is the one being tested.
    let read = async {
        for seq in 1..=count {
            let data = next_reading_within(&mut polite, Duration::from_secs(60)).await;
            assert_eq!(
                data["seq"], seq,
                "the reading client gets every reading, in order"
            );
        }
    };
    tokio::join!(publish, read);
    let metrics_url = format!("{}/metrics", consumer.address);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = reqwest::get(&metrics_url)
            .await
            .expect("sent")
            .text()
            .await
            .expect("text");
        // Dropped when a send to it waits too long, or, on a machine so busy that reading
        // the others took longer than the heartbeat timeout (30 s), for not answering pings:
        // a client that reads nothing answers none.
        let dropped: f64 = ["send_timeout", "heartbeat_timeout"]
            .iter()
            .filter_map(|reason| {
                shared::testing::metric(
                    &text,
                    &format!("hostpulse_ws_clients_dropped_total{{reason=\"{reason}\"}}"),
                )
            })
            .sum();
        if dropped == 1.0 {
            assert_eq!(
                shared::testing::metric(&text, "hostpulse_ws_clients"),
                Some(1.0),
                "the polite client is still there"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck client was never dropped ({count} readings of {PADDING} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(stuck);
    tap.cleanup().await;
}

/// Bytes of padding per reading in the slow-client test.
const PADDING: usize = 256 * 1024;
/// Frames actix-ws queues for a session before a send waits.
const SESSION_QUEUE: usize = 32;
/// The stuck client's receive buffer, set small so the kernel cannot grow it (Linux doubles it).
const STUCK_RECEIVE_BUFFER: usize = 64 * 1024;

/// The most a TCP socket's send buffer grows to on this machine (`tcp_wmem`'s maximum).
fn server_send_buffer_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|text| text.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(16 << 20)
}

/// A WebSocket whose receive buffer is [`STUCK_RECEIVE_BUFFER`].
async fn open_stuck_socket(
    consumer: &crate::helpers::TestConsumer,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(STUCK_RECEIVE_BUFFER as u32)
        .expect("receive buffer set");
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], consumer.port));
    let stream = socket.connect(address).await.expect("connects");
    let url = format!("ws://127.0.0.1:{}/ws", consumer.port);
    let (socket, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("WebSocket opens");
    socket
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
