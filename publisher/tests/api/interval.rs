use crate::helpers::spawn_app;
use shared::reading::Reading;
use shared::testing::Tap;
use std::time::Duration;

#[tokio::test]
async fn the_interval_publisher_publishes_on_its_own() {
    let app = spawn_app("interval", &[("PUBLISH_INTERVAL_SECS", "1")]).await;
    let mut tap = Tap::bind(&app.exchange).await;
    let mut seqs = Vec::new();
    while seqs.len() < 3 {
        let message = tap
            .next(Duration::from_secs(5))
            .await
            .expect("a reading each second without any request");
        seqs.push(Reading::from_json(&message.body).expect("reading").seq);
    }
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive: {seqs:?}"
    );
    tap.cleanup().await;
}
