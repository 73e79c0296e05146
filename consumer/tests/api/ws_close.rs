//! How the dashboard's WebSocket ends: close codes as RFC 6455 says, and only the clients the
//! server dropped counted as drops.

use crate::helpers::{next_frame, open_socket, spawn_consumer, Socket};
use futures_util::{SinkExt, StreamExt};
use shared::testing::unique_exchange;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// The close frame the server sends next (skipping data and pings), if any within [`crate::helpers::FRAME_WAIT`].
async fn close_frame(socket: &mut Socket) -> Option<CloseFrame> {
    let deadline = tokio::time::Instant::now() + crate::helpers::FRAME_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame,
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

async fn dropped(address: &str, reason: &str) -> f64 {
    let text = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let needle = format!("hostpulse_ws_clients_dropped_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{needle} is exported from the start:\n{text}"))
}

#[tokio::test]
async fn a_frame_over_the_limit_is_closed_with_1009() {
    let consumer = spawn_consumer(&unique_exchange("ws-1009"), &[]).await;
    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    let _ = socket.send(Message::binary(vec![0u8; 64 * 1024])).await;
    let frame = close_frame(&mut socket).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size);
    assert_eq!(dropped(&consumer.address, "frame_too_large").await, 1.0);
}

#[tokio::test]
async fn text_that_is_not_utf8_is_closed_with_1007() {
    let consumer = spawn_consumer(&unique_exchange("ws-1007"), &[]).await;
    let (stream, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", consumer.port))
            .await
            .expect("opens");
    let mut socket = stream;
    next_frame(&mut socket, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    // A text frame whose payload is not UTF-8, written by hand: tungstenite would refuse to
    // build one. The raw frame goes through the underlying TCP stream.
    let raw = socket.get_mut();
    let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = raw else {
        panic!("plain TCP");
    };
    use tokio::io::AsyncWriteExt;
    let payload = [0xff_u8, 0xfe, 0xfd];
    let mask = [1_u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tcp.write_all(&frame).await.expect("written");
    let close = close_frame(&mut socket).await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Invalid);
    assert_eq!(dropped(&consumer.address, "invalid_utf8").await, 1.0);
}

#[tokio::test]
async fn a_client_closing_politely_gets_its_own_code_back_and_is_not_a_drop() {
    let consumer = spawn_consumer(&unique_exchange("ws-echo"), &[]).await;
    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    socket
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Library(4001),
            reason: "bye".into(),
        })))
        .await
        .expect("sent");
    let echoed = close_frame(&mut socket).await.expect("the close echoed");
    assert_eq!(echoed.code, CloseCode::Library(4001));
    assert_eq!(dropped(&consumer.address, "protocol_error").await, 0.0);
}

#[tokio::test]
async fn clients_that_simply_go_away_are_not_counted_as_drops() {
    let consumer = spawn_consumer(&unique_exchange("ws-away"), &[]).await;
    for i in 0..20 {
        let mut socket = open_socket(&consumer).await;
        next_frame(&mut socket, crate::helpers::FRAME_WAIT)
            .await
            .expect("snapshot");
        // Gone without a close frame: half close the connection, half abort it (a reset,
        // as when a laptop lid shuts or a tab is killed).
        if i % 2 == 0 {
            if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = socket.get_ref() {
                tcp.set_zero_linger().expect("linger set");
            }
        }
        drop(socket);
    }
    let live = consumer.live.clone();
    crate::helpers::wait_until("every client is gone", || live.client_count() == 0).await;
    for reason in ["protocol_error", "client_sent_data", "send_timeout"] {
        assert_eq!(dropped(&consumer.address, reason).await, 0.0, "{reason}");
    }
}
