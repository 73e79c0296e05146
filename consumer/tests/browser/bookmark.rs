//! A bookmarked host (`#host=…`) that is offline, known to the consumer from its history only:
//! the page opens that host, marked offline, not another one.

use crate::helpers::{fresh_data_dir, spawn_consumer, wait_until};
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};

/// The host that went silent before the consumer restarted, and the one still publishing.
/// "aaa-…" sorts first: the host the page fell back to when it lost the bookmark.
const OFFLINE: &str = "zz-offline";
const LIVE: &str = "aaa-live";

fn reading(host: &str, seq: u64, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["collected_at"] = at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&v).expect("json")
}

#[tokio::test]
async fn a_bookmark_to_an_offline_host_opens_that_host_marked_offline() {
    let exchange = unique_exchange("browser-bookmark");
    let data_dir = fresh_data_dir();
    let vars = [("DATA_DIR", data_dir.as_str())];
    let first = spawn_consumer(&exchange, &vars).await;
    let history = first.history.clone();
    wait_until("the history queue is consumed", || {
        history.state().queue_connected
    })
    .await;
    let tap = Tap::bind(&exchange).await;
    let earlier = chrono::Utc::now() - chrono::Duration::minutes(10);
    tap.publish_raw(&reading(OFFLINE, 1, earlier)).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let recorded = match first.history.store() {
            Some(store) => store.hosts().await.map(|h| h.len()).unwrap_or(0),
            None => 0,
        };
        if recorded == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the offline host was never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    first.stop.stop(true).await;
    let _ = first.stopped.await;

    // A new consumer on the same store: it hears only the live host.
    let consumer = spawn_consumer(&exchange, &vars).await;
    tap.publish_raw(&reading(LIVE, 1, chrono::Utc::now())).await;
    let live = consumer.live.clone();
    wait_until("the live host is heard", || live.hosts().len() == 1).await;

    let browser = Browser::start().await;
    browser
        .open(&format!("{}/#host={OFFLINE}", consumer.address))
        .await;
    // Its card is there, from history ...
    browser
        .wait_text(
            &format!(".card.offline[data-host='{OFFLINE}'] .seen"),
            30,
            |t| t.starts_with("offline · last seen"),
        )
        .await;
    // ... and the detail is the bookmarked host's, saying it is offline.
    browser
        .wait_text("#detail-host", 30, |t| t == OFFLINE)
        .await;
    browser
        .wait_text("#detail-stale", 30, |t| {
            t.starts_with("offline · last seen")
        })
        .await;
    assert_eq!(
        browser
            .text(&format!(".card[data-host='{OFFLINE}'] button"))
            .await,
        OFFLINE
    );
    let pressed = browser
        .client
        .find(fantoccini::Locator::Css(&format!(
            ".card[data-host='{OFFLINE}'] button"
        )))
        .await
        .expect("the card's button")
        .attr("aria-pressed")
        .await
        .expect("attribute");
    assert_eq!(
        pressed.as_deref(),
        Some("true"),
        "its card is the selected one"
    );
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.fragment(), Some(format!("host={OFFLINE}").as_str()));
    browser.close().await;
    tap.cleanup().await;
}
