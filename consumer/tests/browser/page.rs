use crate::helpers::{spawn_consumer, spawn_publisher};
use fantoccini::Locator;
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};
use std::time::Duration;

/// A valid v1 reading for `host`, collected now.
pub(crate) fn reading_json(host: &str, seq: u64) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["collected_at"] = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&v).expect("json")
}

/// Screenshots go under target/, for a person to look at.
pub(crate) fn screenshots() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

pub(crate) fn card(host: &str) -> String {
    format!(".card[data-host=\"{host}\"]")
}

/// A consumer of its own on `exchange`, a tap to publish there, and a browser showing the
/// consumer's page once its socket is live.
pub(crate) async fn live_page(exchange: &str) -> (crate::helpers::TestConsumer, Tap, Browser) {
    let consumer = spawn_consumer(exchange, &[]).await;
    let tap = Tap::bind(exchange).await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    (consumer, tap, browser)
}

#[tokio::test]
async fn a_published_reading_shows_in_its_card_the_detail_and_the_raw_json() {
    let exchange = unique_exchange("browser-live");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "web-1").await;
    publisher.publish().await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    browser
        .wait_text(&card("web-1"), 10, |t| {
            t.contains("web-1") && t.contains("%")
        })
        .await;

    let seq = publisher.publish().await;
    browser
        .wait_text("#raw-json", 5, |t| t.contains(&format!("\"seq\": {seq}")))
        .await;
    assert_eq!(browser.text("#detail-host").await, "web-1");
    browser
        .wait_text("#detail-time", 5, |t| t.contains(&format!("#{seq}")))
        .await;
    assert!(
        browser.text("#detail-disks tbody").await.contains('/'),
        "the disk table lists /"
    );
    assert!(browser.text("#detail-cpu").await.ends_with('%'));
    assert_eq!(browser.text("#broker-badge").await, "broker: connected");
    // The URL keeps the choice, so it can be bookmarked.
    browser
        .client
        .find(Locator::Css(&card("web-1")))
        .await
        .expect("card")
        .click()
        .await
        .expect("click");
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.fragment(), Some("host=web-1"));
    browser.screenshot(&screenshots(), "dashboard").await;
    browser.close().await;
}

#[tokio::test]
async fn a_host_whose_clock_runs_behind_is_live_while_it_publishes() {
    let exchange = unique_exchange("browser-skew");
    let consumer = spawn_consumer(&exchange, &[("STALE_AFTER_SECS", "5")]).await;
    let tap = Tap::bind(&exchange).await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    // Its clock says every reading was taken two minutes ago.
    let behind = |seq: u64| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&reading_json("laggard", seq)).expect("JSON");
        v["collected_at"] = (chrono::Utc::now() - chrono::Duration::minutes(2))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into();
        serde_json::to_vec(&v).expect("JSON")
    };
    tap.publish_raw(&behind(1)).await;
    browser
        .wait_text(&card("laggard"), 10, |t| t.contains("laggard"))
        .await;
    tap.publish_raw(&behind(2)).await;
    browser
        .wait_text("#raw-json", 10, |t| t.contains("\"seq\": 2"))
        .await;
    let text = browser.text(&card("laggard")).await;
    assert!(
        !text.contains("stale"),
        "marked stale while publishing: {text}"
    );
    // Silent past STALE_AFTER_SECS, it does go stale.
    browser
        .wait_text(&card("laggard"), 15, |t| t.contains("last seen"))
        .await;
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn each_host_gets_a_card_and_a_silent_host_goes_stale_or_on_demand_then_comes_back() {
    let exchange = unique_exchange("browser-stale");
    let consumer = spawn_consumer(&exchange, &[("STALE_AFTER_SECS", "2")]).await;
    let alpha = spawn_publisher(&exchange, "alpha").await;
    let beta = spawn_publisher(&exchange, "beta").await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    alpha.publish().await;
    beta.publish().await;
    browser
        .wait_text("#host-cards", 5, |t| {
            t.contains("alpha") && t.contains("beta")
        })
        .await;
    let names: Vec<String> = {
        let mut names = Vec::new();
        for el in browser
            .client
            .find_all(Locator::Css(".card .name"))
            .await
            .expect("cards")
        {
            names.push(el.text().await.expect("text"));
        }
        names
    };
    assert_eq!(
        names,
        ["alpha", "beta"],
        "one card per host, sorted by name"
    );

    let class = |host: &'static str| {
        let browser = &browser;
        async move {
            browser
                .client
                .find(Locator::Css(&card(host)))
                .await
                .expect("card")
                .attr("class")
                .await
                .expect("class")
                .unwrap_or_default()
        }
    };
    // Only alpha keeps publishing: beta, whose readings (on request) promise no rhythm, is
    // "on demand" when silent, not stale.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        alpha.publish().await;
        let beta_text = browser.text(&card("beta")).await;
        if beta_text.contains("last seen") {
            assert!(!browser.text(&card("alpha")).await.contains("last seen"));
            assert!(beta_text.contains("on demand · last seen"), "{beta_text}");
            let beta_class = class("beta").await;
            assert!(beta_class.contains("on-demand") && !beta_class.contains("stale"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "beta never said when it was last seen: {beta_text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    browser.screenshot(&screenshots(), "stale-host").await;
    beta.publish().await;
    browser
        .wait_text(&card("beta"), 5, |t| !t.contains("last seen"))
        .await;

    // A host that promised a rhythm (interval_secs), silent past STALE_AFTER_SECS, is stale.
    let tap = Tap::bind(&exchange).await;
    let mut timed: serde_json::Value =
        serde_json::from_slice(&reading_json("gamma", 1)).expect("JSON");
    timed["interval_secs"] = 1.into();
    tap.publish_raw(&serde_json::to_vec(&timed).expect("JSON"))
        .await;
    let gamma = browser
        .wait_text(&card("gamma"), 10, |t| t.contains("last seen"))
        .await;
    assert!(gamma.contains("stale · last seen"), "{gamma}");
    assert!(class("gamma").await.contains("stale"));
    tap.cleanup().await;

    browser.close().await;
}

#[tokio::test]
async fn the_charts_have_points_from_the_snapshot_right_after_load() {
    let exchange = unique_exchange("browser-charts");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "charted").await;
    for _ in 0..6 {
        publisher.publish().await;
    }
    let live = consumer.live.clone();
    crate::helpers::wait_until("six readings held", || {
        live.latest_json().contains("\"seq\":6")
    })
    .await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser
        .wait_text(&card("charted"), 10, |t| t.contains("charted"))
        .await;
    for chart in ["#chart-cpu", "#chart-mem", "#chart-net"] {
        let points = browser
            .client
            .find(Locator::Css(chart))
            .await
            .expect("chart")
            .attr("data-points")
            .await
            .expect("attr");
        assert_eq!(
            points.as_deref(),
            Some("6"),
            "{chart} drawn from the snapshot"
        );
        let canvases = browser
            .client
            .find_all(Locator::Css(&format!("{chart} canvas")))
            .await
            .expect("find");
        assert_eq!(canvases.len(), 1, "{chart} is drawn by uPlot");
    }
    publisher.publish().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let points = browser
            .client
            .find(Locator::Css("#chart-cpu"))
            .await
            .expect("chart")
            .attr("data-points")
            .await
            .expect("attr");
        if points.as_deref() == Some("7") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chart did not move: {points:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.close().await;
}

#[tokio::test]
async fn a_hostile_host_name_is_shown_as_text_and_runs_nothing() {
    let exchange = unique_exchange("browser-xss");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    let hostile = "<img src=x onerror=alert(1)>";
    tap.publish_raw(&reading_json(hostile, 1)).await;
    let live = consumer.live.clone();
    crate::helpers::wait_until("the reading is held", || {
        live.latest_json().contains("onerror")
    })
    .await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser
        .wait_text("#host-cards .name", 10, |t| t == hostile)
        .await;
    assert_eq!(browser.text("#detail-host").await, hostile);
    let images = browser
        .client
        .find_all(Locator::Css("main img"))
        .await
        .expect("find");
    assert!(images.is_empty(), "no element was made from the name");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no alert was opened"
    );
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn a_legacy_message_from_the_python_original_is_displayed() {
    let exchange = unique_exchange("browser-legacy");
    let (_consumer, tap, browser) = live_page(&exchange).await;
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    let legacy = format!(
        r#"{{"timestamp": "{now}", "cpu_percent": 37.5,
            "memory": {{"total": 8589934592, "available": 6442450944, "percent": 25.0}},
            "disk": {{"total": 1000000, "used": 400000, "free": 600000}},
            "platform": "Linux", "platform_release": "5.15.0", "processor": "x86_64"}}"#
    );
    tap.publish_raw(legacy.as_bytes()).await;
    // The original names no host: its card is named from what the message carries.
    let text = browser
        .wait_text(".card[data-host^=\"legacy-\"]", 5, |t| {
            t.contains("legacy-")
        })
        .await;
    assert!(text.contains("37.5 %"), "CPU shown: {text}");
    assert!(text.contains("25.0 %"), "memory shown: {text}");
    assert!(text.contains("40.0 %"), "disk shown: {text}");
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn the_page_reconnects_by_itself_when_the_consumer_restarts() {
    let exchange = unique_exchange("browser-restart");
    let port = shared::testing::private_broker::free_port().to_string();
    let first = spawn_consumer(&exchange, &[("APP_PORT", &port)]).await;
    let publisher = spawn_publisher(&exchange, "steady").await;
    let browser = Browser::start().await;
    browser.open(&first.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    publisher.publish().await;
    browser
        .wait_text(&card("steady"), 5, |t| t.contains("steady"))
        .await;

    first.stop.stop(false).await;
    let _ = first.stopped.await;
    // The badge (a live region) says so once; the countdown is beside it.
    browser
        .wait_text("#conn-badge", 10, |t| t == "reconnecting")
        .await;
    browser
        .wait_text("#conn-retry", 10, |t| {
            t.starts_with("retry in") || t == "connecting…"
        })
        .await;

    let second = spawn_consumer(&exchange, &[("APP_PORT", &port)]).await;
    browser.wait_text("#conn-badge", 40, |t| t == "live").await;
    let seq = publisher.publish().await;
    browser
        .wait_text("#raw-json", 5, |t| t.contains(&format!("\"seq\": {seq}")))
        .await;
    drop(second);
    browser.close().await;
}

#[tokio::test]
async fn the_raw_json_can_be_paused_and_the_page_fits_a_phone() {
    let exchange = unique_exchange("browser-phone");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "pocket").await;
    let first = publisher.publish().await;
    let browser = Browser::start().await;
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    browser.open(&consumer.address).await;
    browser
        .wait_text("#raw-json", 10, |t| {
            t.contains(&format!("\"seq\": {first}"))
        })
        .await;

    browser
        .client
        .find(Locator::Id("raw-pause"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let second = publisher.publish().await;
    browser
        .wait_text("#detail-time", 5, |t| t.contains(&format!("#{second}")))
        .await;
    assert!(
        browser
            .text("#raw-json")
            .await
            .contains(&format!("\"seq\": {first}")),
        "paused: the raw view keeps the message it showed"
    );
    browser
        .client
        .find(Locator::Id("raw-pause"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    browser
        .wait_text("#raw-json", 5, |t| {
            t.contains(&format!("\"seq\": {second}"))
        })
        .await;

    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        overflow.as_i64(),
        Some(0),
        "nothing wider than a phone screen"
    );
    browser.screenshot(&screenshots(), "phone").await;
    browser.close().await;
}
