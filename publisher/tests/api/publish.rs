use crate::helpers::spawn_app;
use shared::reading::Reading;
use shared::testing::Tap;
use std::time::Duration;

#[tokio::test]
async fn publish_sends_a_schema_v1_reading_with_sane_values() {
    let app = spawn_app("publish", &[]).await;
    let mut tap = Tap::bind(&app.exchange).await;

    let response = app.get("/publish").await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.expect("JSON answer");
    assert_eq!(answer["status"], "published");

    let message = tap
        .next(Duration::from_secs(5))
        .await
        .expect("a message arrives");
    let reading = Reading::from_json(&message.body).expect("the message is a v1 reading");
    assert_eq!(reading.schema_version, 1);
    assert_eq!(reading.host, "publish-host");
    assert_eq!(answer["seq"], reading.seq);
    assert_eq!(answer["host"], "publish-host");
    assert_eq!(answer["bytes"], message.body.len());
    // The answer shows exactly what was sent.
    let sent: serde_json::Value = serde_json::from_slice(&message.body).expect("JSON body");
    assert_eq!(answer["reading"], sent);
    assert!((0.0..=100.0).contains(&reading.cpu.usage_percent));
    assert!(reading.memory.used_bytes <= reading.memory.total_bytes);
    assert!(!reading.disks.is_empty(), "at least one disk");
    assert!(
        message.body.len() < 2048,
        "a typical reading stays under 2 KB"
    );

    let props = message.properties;
    assert_eq!(
        props.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(*props.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        props.message_id().as_ref().map(|m| m.to_string()),
        Some(format!("publish-host:{}", reading.seq))
    );
    assert!(props.timestamp().is_some());
    assert_eq!(
        props.app_id().as_ref().map(|a| a.as_str()),
        Some("hostpulse-publisher")
    );
    tap.cleanup().await;
}

#[tokio::test]
async fn post_works_too_and_each_publish_gets_the_next_seq() {
    let app = spawn_app("seq", &[]).await;
    let mut tap = Tap::bind(&app.exchange).await;
    let mut seqs = Vec::new();
    for _ in 0..5 {
        let answer: serde_json::Value = app
            .http
            .post(format!("{}/publish", app.address))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        seqs.push(answer["seq"].as_u64().expect("seq"));
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    for expected in seqs {
        let message = tap.next(Duration::from_secs(5)).await.expect("message");
        assert_eq!(
            Reading::from_json(&message.body).expect("reading").seq,
            expected
        );
    }
    tap.cleanup().await;
}

#[tokio::test]
async fn the_current_reading_is_not_published() {
    let app = spawn_app("current", &[]).await;
    let mut tap = Tap::bind(&app.exchange).await;
    let response = app.get("/api/reading").await;
    assert_eq!(response.status(), 200);
    let reading: Reading = response.json().await.expect("a reading");
    assert_eq!(reading.seq, 0);
    assert_eq!(reading.host, "current-host");
    assert!(
        tap.next(Duration::from_millis(500)).await.is_none(),
        "nothing published"
    );
    tap.cleanup().await;
}
