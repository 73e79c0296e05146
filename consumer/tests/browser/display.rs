//! What the page shows for readings that lack values, for the original publisher's hosts, for
//! a fresh snapshot without a host, and on its charts' axes.

use crate::helpers::spawn_consumer;
use crate::page::{card, live_page, reading_json, screenshots};
use fantoccini::Locator;
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};

/// The fixture reading for `host`, changed by `edit`.
pub(crate) fn reading_with(
    host: &str,
    seq: u64,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_slice(&reading_json(host, seq)).expect("fixture JSON");
    edit(&mut v);
    serde_json::to_vec(&v).expect("JSON")
}

/// A value the page's JavaScript returns.
pub(crate) async fn script(browser: &Browser, js: &str) -> serde_json::Value {
    browser
        .client
        .execute(js, vec![])
        .await
        .expect("the script runs")
}

#[tokio::test]
async fn values_a_reading_does_not_carry_are_shown_as_a_dash_not_as_zero() {
    let exchange = unique_exchange("browser-absent");
    let (_consumer, tap, browser) = live_page(&exchange).await;
    tap.publish_raw(&reading_with("bare", 1, |v| {
        let object = v.as_object_mut().expect("object");
        object.remove("uptime_secs");
        object.remove("networks");
        let cpu = v["cpu"].as_object_mut().expect("cpu");
        cpu.remove("load_average");
        cpu.remove("core_count");
        cpu.remove("frequency_mhz");
        cpu.insert("per_core_percent".into(), serde_json::json!([]));
    }))
    .await;
    let bare = card("bare");
    browser.wait_text(&bare, 10, |t| t.contains("bare")).await;
    for stat in ["net", "load", "up"] {
        assert_eq!(
            browser.text(&format!("{bare} .stat-{stat}")).await,
            "–",
            "the card's {stat} is unknown"
        );
    }
    assert!(browser
        .text(&format!("{bare} .stat-cpu"))
        .await
        .ends_with('%'));
    browser.wait_text("#detail-host", 5, |t| t == "bare").await;
    assert_eq!(browser.text("#detail-uptime").await, "–");
    assert_eq!(browser.text("#detail-load").await, "–");
    assert_eq!(
        browser.text("#detail-cpu-model").await,
        "AMD EPYC · – cores · – MHz"
    );
    let core_rows = browser
        .client
        .find_all(Locator::Css("#detail-cores .core"))
        .await
        .expect("find");
    assert!(core_rows.is_empty(), "no per-core rows without values");
    assert_eq!(browser.text("#detail-net tbody").await, "");
    assert_eq!(
        browser.text("#detail-net-unknown").await,
        "This host does not report its network."
    );

    // A reading that does carry them shows them, zeros included.
    tap.publish_raw(&reading_with("full", 1, |_| {})).await;
    let full = card("full");
    browser.wait_text(&full, 10, |t| t.contains("full")).await;
    assert_eq!(
        browser.text(&format!("{full} .stat-net")).await,
        "↓ 0 B/s ↑ 0 B/s"
    );
    assert_eq!(browser.text(&format!("{full} .stat-load")).await, "0.37");
    browser
        .client
        .find(Locator::Css(&format!("{full} .name")))
        .await
        .expect("card")
        .click()
        .await
        .expect("click");
    browser
        .wait_text("#detail-net tbody", 5, |t| t.contains("eth0"))
        .await;
    assert_eq!(browser.text("#detail-net-unknown").await, "", "hidden");
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn a_card_from_the_original_publisher_says_so_and_how_its_host_was_named() {
    let exchange = unique_exchange("browser-origin");
    let (_consumer, tap, browser) = live_page(&exchange).await;
    tap.publish_raw(&reading_with("old-box", 1, |v| {
        v["legacy"] = serde_json::json!({ "host_from": "fingerprint" });
    }))
    .await;
    tap.publish_raw(&reading_with("new-box", 1, |_| {})).await;
    browser
        .wait_text("#host-cards", 10, |t| {
            t.contains("old-box") && t.contains("new-box")
        })
        .await;
    let origin = browser.text(&format!("{} .origin", card("old-box"))).await;
    assert!(
        origin.starts_with("original publisher") && origin.contains("fingerprint"),
        "the tag says where the name comes from: {origin}"
    );
    assert_eq!(
        browser.text(&format!("{} .origin", card("new-box"))).await,
        "",
        "a current publisher's card has no tag"
    );
    browser
        .screenshot(&screenshots(), "original-publisher")
        .await;
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn a_fresh_snapshot_without_a_host_removes_its_card_and_the_selection_moves_on() {
    let exchange = unique_exchange("browser-gone");
    let port = shared::testing::private_broker::free_port().to_string();
    let first = spawn_consumer(&exchange, &[("APP_PORT", &port)]).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading_json("gone", 1)).await;
    tap.publish_raw(&reading_json("kept", 1)).await;
    let browser = Browser::start().await;
    browser.open(&first.address).await;
    browser
        .wait_text("#host-cards", 10, |t| {
            t.contains("gone") && t.contains("kept")
        })
        .await;
    browser
        .client
        .find(Locator::Css(&format!("{} .name", card("gone"))))
        .await
        .expect("card")
        .click()
        .await
        .expect("click");
    browser.wait_text("#detail-host", 5, |t| t == "gone").await;
    let pressed = browser
        .client
        .find(Locator::Css(&format!("{} .name", card("gone"))))
        .await
        .expect("card")
        .attr("aria-pressed")
        .await
        .expect("attr");
    assert_eq!(
        pressed.as_deref(),
        Some("true"),
        "the selection is announced"
    );

    // What the status badge (a live region) says while the page reconnects, each change once.
    script(
        &browser,
        "const badge = document.getElementById('conn-badge'); window.announced = []; \
         new MutationObserver(() => window.announced.push(badge.textContent)) \
           .observe(badge, { childList: true, characterData: true, subtree: true });",
    )
    .await;

    // A restarted consumer has heard only from "kept": its snapshot no longer has "gone".
    first.stop.stop(false).await;
    let _ = first.stopped.await;
    browser
        .wait_text("#conn-badge", 10, |t| t == "reconnecting")
        .await;
    let second = spawn_consumer(&exchange, &[("APP_PORT", &port)]).await;
    tap.publish_raw(&reading_json("kept", 2)).await;
    browser.wait_text("#conn-badge", 40, |t| t == "live").await;
    browser
        .wait_text("#host-cards", 10, |t| !t.contains("gone"))
        .await;
    browser
        .wait_text(&card("kept"), 10, |t| t.contains("kept"))
        .await;
    assert_eq!(browser.text("#host-count").await, "(1)");
    browser.wait_text("#detail-host", 5, |t| t == "kept").await;
    let announced = script(&browser, "return window.announced").await;
    assert_eq!(
        announced,
        serde_json::json!(["reconnecting", "live"]),
        "the badge is not re-announced while the countdown runs"
    );
    assert!(browser.text("#conn-retry").await.is_empty());
    drop(second);
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn charts_of_one_reading_span_the_last_minute_and_the_network_axis_covers_its_peak() {
    let exchange = unique_exchange("browser-axis");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading_json("solo", 1)).await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    let points = |b: &Browser| {
        let b = b.client.clone();
        async move {
            b.find(Locator::Css("#chart-cpu"))
                .await
                .expect("chart")
                .attr("data-points")
                .await
                .expect("attr")
                .unwrap_or_default()
        }
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while points(&browser).await != "1" {
        assert!(tokio::time::Instant::now() < deadline, "no point drawn");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let now = chrono::Utc::now().timestamp() as f64;
    let ticks = script(
        &browser,
        "return document.getElementById('chart-cpu').dataset.xTicks",
    )
    .await;
    let ticks: Vec<f64> = ticks
        .as_str()
        .expect("the time axis was drawn")
        .split(' ')
        .map(|t| t.parse().expect("a tick is a time"))
        .collect();
    assert!(ticks.len() >= 2, "a time axis with ticks: {ticks:?}");
    for tick in &ticks {
        assert!(
            (now - 300.0..=now + 60.0).contains(tick),
            "tick {tick} is not a time of the last minutes (now {now})"
        );
    }
    // Nothing hovered: the legend shows the latest values, not placeholders.
    let legend = browser.text("#chart-cpu .u-legend").await;
    assert!(!legend.contains("--"), "legend: {legend}");
    assert!(legend.contains("2.7 %"), "legend: {legend}");
    let label = script(
        &browser,
        "return document.getElementById('chart-cpu').getAttribute('aria-label')",
    )
    .await;
    let label = label.as_str().unwrap_or_default();
    assert!(
        label.contains("solo") && label.contains("CPU 2.7 %"),
        "text alternative: {label}"
    );

    // A spike: the network axis's top tick is at or above it.
    tap.publish_raw(&reading_with("solo", 2, |v| {
        v["networks"][0]["received_bytes_per_sec"] = 4100.into();
    }))
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while points(&browser).await != "2" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spike not drawn"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let y = script(
        &browser,
        "return document.getElementById('chart-net').dataset.yTicks",
    )
    .await;
    let y: Vec<f64> = y
        .as_str()
        .expect("the network axis was drawn")
        .split(' ')
        .map(|t| t.parse().expect("a tick is a number"))
        .collect();
    assert!(y.len() >= 3, "enough ticks to read: {y:?}");
    let top = y.iter().cloned().fold(0.0, f64::max);
    assert!(top >= 4100.0, "the spike is above the top tick: {y:?}");
    browser
        .screenshot(&screenshots(), "one-reading-charts")
        .await;
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn on_a_phone_the_tables_fit_and_a_core_label_stays_on_one_line() {
    let exchange = unique_exchange("browser-narrow");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading_with("pocket", 1, |v| {
        v["cpu"]["per_core_percent"] = serde_json::json!([100.0, 7.5]);
        v["disks"][0]["mount_point"] = "/srv/a-rather-long-mount-point/with/several/levels".into();
        v["networks"][0]["interface"] = "enp0s31f6-a-long-interface-name".into();
    }))
    .await;
    let browser = Browser::start().await;
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    browser.open(&consumer.address).await;
    browser
        .wait_text("#detail-host", 10, |t| t == "pocket")
        .await;
    browser
        .wait_text("#detail-cores", 5, |t| t.contains("100.0 %"))
        .await;
    for table in ["detail-disks", "detail-net"] {
        let overflow = script(
            &browser,
            &format!(
                "const t = document.getElementById('{table}'); \
                 return t.scrollWidth - t.parentElement.clientWidth"
            ),
        )
        .await;
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "{table} is wider than the phone by {overflow}"
        );
    }
    let text = browser.text("#detail-disks").await;
    assert!(
        text.contains("/srv/a-rather-long-mount-point") && text.contains("70.4 %"),
        "every column is still shown: {text}"
    );
    // "100.0 %" on one line: as tall as "7.5 %".
    let heights = script(
        &browser,
        "return [...document.querySelectorAll('#detail-cores .core > span:last-child')] \
         .map((s) => s.getBoundingClientRect().height)",
    )
    .await;
    let heights: Vec<f64> = serde_json::from_value(heights).expect("heights");
    assert_eq!(heights.len(), 2);
    assert!(
        (heights[0] - heights[1]).abs() < 1.0,
        "a per-core label wraps: {heights:?}"
    );
    script(
        &browser,
        "document.getElementById('detail-disks').scrollIntoView()",
    )
    .await;
    browser.screenshot(&screenshots(), "phone-tables").await;
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn the_selected_hosts_history_from_http_merges_without_duplicates() {
    let exchange = unique_exchange("browser-history");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    for seq in 1..=6 {
        tap.publish_raw(&reading_json("charted", seq)).await;
    }
    let live = consumer.live.clone();
    crate::helpers::wait_until("six readings held", || {
        live.recent_json("charted")
            .is_some_and(|j| j.contains("\"seq\":6"))
    })
    .await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    // The snapshot's readings and the same ones again from GET /api/hosts/charted/readings.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let merged = script(
            &browser,
            "return document.getElementById('detail').dataset.historyOf || ''",
        )
        .await;
        if merged == "charted" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never asked for the host's readings"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let points = script(
        &browser,
        "return document.getElementById('chart-cpu').dataset.points",
    )
    .await;
    assert_eq!(points, "6", "each reading once");
    // Live readings still add to it.
    tap.publish_raw(&reading_json("charted", 7)).await;
    browser
        .wait_text("#detail-time", 10, |t| t.contains("#7"))
        .await;
    let points = script(
        &browser,
        "return document.getElementById('chart-cpu').dataset.points",
    )
    .await;
    assert_eq!(points, "7");
    tap.cleanup().await;
    browser.close().await;
}
