use crate::helpers::{next_frame, spawn_consumer};
use shared::testing::unique_exchange;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn open_from(port: u16, origin: &str) -> Result<(), u16> {
    let mut request = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Origin", HeaderValue::from_str(origin).expect("header"));
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, _)) => {
            next_frame(&mut socket, crate::helpers::FRAME_WAIT)
                .await
                .expect("snapshot");
            Ok(())
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn only_its_own_pages_and_allowed_origins_may_open_the_socket() {
    let consumer = spawn_consumer(
        &unique_exchange("origin"),
        &[("ALLOWED_ORIGINS", "https://dash.example.com")],
    )
    .await;
    let own = format!("http://127.0.0.1:{}", consumer.port);
    assert_eq!(open_from(consumer.port, &own).await, Ok(()));
    assert_eq!(
        open_from(consumer.port, "https://dash.example.com").await,
        Ok(())
    );
    assert_eq!(
        open_from(consumer.port, "https://evil.example").await,
        Err(403)
    );
    let metrics = reqwest::get(format!("{}/health", consumer.address))
        .await
        .expect("sent");
    assert_eq!(metrics.status(), 200, "still serving");
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let consumer = spawn_consumer(&unique_exchange("oversized"), &[]).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/hosts", consumer.address))
        .body(vec![b'x'; 1 << 20])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
}
