//! The charts at a range (1 h … 1 y) and zoomed, drawn from the history store: readings dated
//! over the last week go through the real broker into the consumer's SQLite store, and the page
//! in headless Chromium draws what the history API answers for the range it shows.

use crate::helpers::{fresh_data_dir, spawn_consumer, wait_until, TestConsumer};
use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::Locator;
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};
use std::time::Duration;

const HOST: &str = "hist";
/// A host only the first consumer heard: the second knows it from history alone.
const GONE: &str = "gone";
/// One reading every this many seconds over the week.
const EVERY_SECS: i64 = 120;
/// The week's readings start this long ago (a little over 7 days, so the 7 d view is full).
const SPAN_SECS: i64 = 7 * 86_400 + 3_600;
/// The CPU of every reading but one.
const CALM_CPU: f64 = 5.0;
/// The CPU of one reading, three days ago.
const SPIKE_CPU: f64 = 99.0;

/// A valid reading of `HOST`, dated `at`, with CPU at `cpu` percent.
fn reading(seq: u64, at: chrono::DateTime<chrono::Utc>, cpu: f64) -> Vec<u8> {
    reading_of(HOST, seq, at, cpu)
}

fn reading_of(host: &str, seq: u64, at: chrono::DateTime<chrono::Utc>, cpu: f64) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["collected_at"] = at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    v["cpu"]["usage_percent"] = cpu.into();
    serde_json::to_vec(&v).expect("json")
}

fn written(consumer: &TestConsumer) -> f64 {
    let mut out = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &consumer.metrics.registry.gather(),
        &mut out,
    )
    .expect("encodes");
    shared::testing::metric(
        &String::from_utf8_lossy(&out),
        "hostpulse_history_readings_written_total",
    )
    .unwrap_or(0.0)
}

/// Publishes a week of readings (one spike among them) through the broker, and three of
/// `GONE` in the last hour, five minutes apart, and waits (bounded) until the consumer's store
/// has them all.
async fn record_a_week(consumer: &TestConsumer, tap: &Tap) {
    let history = consumer.history.clone();
    wait_until("the history queue is consumed", || {
        history.state().queue_connected
    })
    .await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(SPAN_SECS);
    let spike = SPAN_SECS / EVERY_SECS - 3 * 86_400 / EVERY_SECS;
    let count = SPAN_SECS / EVERY_SECS;
    for i in 0..count {
        let at = start + chrono::Duration::seconds(i * EVERY_SECS);
        let cpu = if i == spike { SPIKE_CPU } else { CALM_CPU };
        tap.publish_raw(&reading(i as u64 + 1, at, cpu)).await;
    }
    let now = chrono::Utc::now();
    for i in 0..3 {
        let at = now - chrono::Duration::minutes(40 - 5 * i);
        tap.publish_raw(&reading_of(GONE, i as u64 + 1, at, CALM_CPU))
            .await;
    }
    let count = count + 3;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while written(consumer) < count as f64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} readings recorded",
            written(consumer)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn script(browser: &Browser, code: &str) -> serde_json::Value {
    browser.client.execute(code, vec![]).await.expect("script")
}

/// Waits (bounded) until the charts say they drew a view whose key starts with `prefix`
/// (`7d:`, `24h:`, `zoom:`, `live`), and returns the [from, to] they drew.
async fn drawn(browser: &Browser, prefix: &str) -> (i64, i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let panel = script(
            browser,
            "const d = document.getElementById('charts').dataset; return [d.drawn || '', d.from || '', d.to || ''];",
        )
        .await;
        let field = |i: usize| panel[i].as_str().unwrap_or_default().to_owned();
        if field(0).starts_with(prefix) {
            let number = |i: usize| field(i).parse::<i64>().unwrap_or(0);
            return (number(1), number(2));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never drew {prefix}: {panel}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn attribute(browser: &Browser, css: &str, name: &str) -> String {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css} is on the page"))
        .attr(name)
        .await
        .expect("attribute")
        .unwrap_or_default()
}

/// What the history API answers for the host over [from, to], as the page asks it.
async fn api_points(consumer: &TestConsumer, (from, to): (i64, i64)) -> usize {
    let url = format!(
        "{}/api/hosts/{HOST}/history?from={from}&to={to}",
        consumer.address
    );
    let body: serde_json::Value = reqwest::get(&url)
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    body["times"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .len()
}

/// Every chart shows as many points as the API has for the range drawn.
async fn charts_match_the_api(browser: &Browser, consumer: &TestConsumer, range: (i64, i64)) {
    let expected = api_points(consumer, range).await;
    for chart in ["#chart-cpu", "#chart-mem", "#chart-net"] {
        assert_eq!(
            attribute(browser, chart, "data-points").await,
            expected.to_string(),
            "{chart} over {range:?}"
        );
    }
}

/// How many of the CPU chart's pixels between 85 % and 95 % are drawn in its blue (the line
/// or its band): what a person sees of a spike, read from the canvas.
async fn cpu_pixels_near_the_top(browser: &Browser) -> i64 {
    let count = script(
        browser,
        r#"const canvas = document.querySelector('#chart-cpu canvas');
        const over = document.querySelector('#chart-cpu .u-over').getBoundingClientRect();
        const box = canvas.getBoundingClientRect();
        const scale = canvas.width / box.width;
        const x = Math.round((over.left - box.left) * scale), w = Math.round(over.width * scale);
        const y = Math.round((over.top - box.top + over.height * 0.05) * scale);
        const h = Math.round(over.height * 0.1 * scale);
        const px = canvas.getContext('2d').getImageData(x, y, w, h).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && px[i + 2] - px[i] > 60) n++;
        return n;"#,
    )
    .await;
    count.as_i64().expect("a count")
}

async fn click(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("{css} is on the page"))
        .click()
        .await
        .expect("click");
}

#[tokio::test]
async fn after_a_restart_a_week_is_drawn_from_history_with_its_spike_and_the_range_survives_a_reload(
) {
    let exchange = unique_exchange("browser-history");
    let data_dir = fresh_data_dir();
    let vars = [("DATA_DIR", data_dir.as_str())];
    let first = spawn_consumer(&exchange, &vars).await;
    let tap = Tap::bind(&exchange).await;
    record_a_week(&first, &tap).await;
    first.stop.stop(true).await;
    let _ = first.stopped.await;

    // A new consumer on the same store: it has seen none of the week's readings live.
    let consumer = spawn_consumer(&exchange, &vars).await;
    tap.publish_raw(&reading(1_000_000, chrono::Utc::now(), CALM_CPU))
        .await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/#host={HOST}&range=7d", consumer.address))
        .await;
    let week = drawn(&browser, "7d:").await;
    assert!(
        (week.1 - week.0 - 7 * 86_400).abs() <= 1,
        "a week: {week:?}"
    );
    charts_match_the_api(&browser, &consumer, week).await;
    let points: usize = attribute(&browser, "#chart-cpu", "data-points")
        .await
        .parse()
        .expect("a count");
    assert!(points >= 500, "the week is full: {points} points");
    // The host the first consumer heard and this one never did has a card, marked offline.
    browser
        .wait_text(
            &format!(".card.offline[data-host='{GONE}'] .seen"),
            10,
            |t| t.starts_with("offline · last seen"),
        )
        .await;
    assert_eq!(
        attribute(&browser, "#range-picker [data-range='7d']", "aria-pressed").await,
        "true"
    );
    // The one reading at 99 % among thousands at 5 % is held by the max band.
    let label = attribute(&browser, "#chart-cpu", "aria-label").await;
    assert!(
        label.contains(&format!("highest {SPIKE_CPU:.1} %")),
        "the spike is in the 7 d chart: {label}"
    );
    let csv = attribute(&browser, "#download-csv", "href").await;
    assert!(
        csv.contains(&format!("from={}&to={}", week.0, week.1)) && csv.ends_with("format=csv"),
        "the download is the range shown: {csv}"
    );
    assert!(
        cpu_pixels_near_the_top(&browser).await > 0,
        "the spike is drawn up to the top of the 7 d chart"
    );
    browser
        .screenshot(&crate::page::screenshots(), "history-7d")
        .await;

    click(&browser, "#range-picker [data-range='24h']").await;
    let day = drawn(&browser, "24h:").await;
    assert_eq!(day.1 - day.0, 86_400, "{day:?}");
    // The whole-host charts are live only, and the page says so at a range (WebDriver reads
    // no text from a hidden element).
    browser
        .wait_text("#host-charts-note", 5, |t| t.contains("received live"))
        .await;
    charts_match_the_api(&browser, &consumer, day).await;
    assert_eq!(
        cpu_pixels_near_the_top(&browser).await,
        0,
        "the last 24 h have no spike"
    );
    // A reading arriving does not move a range: the 24 h chart keeps what it drew.
    let points = attribute(&browser, "#chart-cpu", "data-points").await;
    tap.publish_raw(&reading(1_000_001, chrono::Utc::now(), 50.0))
        .await;
    browser
        .wait_text("#detail-time", 10, |t| t.contains("#1000001"))
        .await;
    assert_eq!(
        attribute(&browser, "#chart-cpu", "data-points").await,
        points
    );
    assert_eq!(drawn(&browser, "24h:").await, day, "the range did not move");
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(
        url.fragment(),
        Some(format!("host={HOST}&range=24h").as_str())
    );

    // A reload (or the same link elsewhere) shows the same range.
    browser.client.refresh().await.expect("reload");
    drawn(&browser, "24h:").await;
    assert_eq!(
        attribute(&browser, "#range-picker [data-range='24h']", "aria-pressed").await,
        "true"
    );
    assert!(browser.text("#range-status").await.starts_with("24 h:"));

    // Back to live: the readings this consumer holds, moving again.
    click(&browser, "#range-picker [data-range='live']").await;
    drawn(&browser, "live").await;
    browser
        .wait_text("#host-charts-note", 5, str::is_empty)
        .await;
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.fragment(), Some(format!("host={HOST}").as_str()));

    // The offline host opens like any other; its charts come from history at a range.
    click(&browser, &format!(".card[data-host='{GONE}'] .name")).await;
    browser
        .wait_text("#detail-stale", 10, |t| {
            t.starts_with("offline · last seen")
        })
        .await;
    browser
        .wait_text("#range-status", 10, |t| t.starts_with("offline"))
        .await;
    click(&browser, "#range-picker [data-range='24h']").await;
    drawn(&browser, "24h:").await;
    assert_eq!(
        attribute(&browser, "#chart-cpu", "data-points").await,
        "3",
        "its three readings of the last hour"
    );
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn dragging_across_a_chart_zooms_every_chart_into_that_span_until_reset() {
    let exchange = unique_exchange("browser-zoom");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    record_a_week(&consumer, &tap).await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/#host={HOST}&range=7d", consumer.address))
        .await;
    let week = drawn(&browser, "7d:").await;
    let week_status = browser.text("#range-status").await;

    // A real mouse drag across the middle half of the CPU chart.
    let over = browser
        .client
        .find(Locator::Css("#chart-cpu .u-over"))
        .await
        .expect("the chart's drawing area");
    let (_, _, width, _) = over.rectangle().await.expect("its size");
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: over.clone(),
            duration: None,
            x: -width / 4.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveToElement {
            element: over.clone(),
            duration: Some(Duration::from_millis(200)),
            x: width / 4.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser.client.perform_actions(drag).await.expect("drag");

    let zoom = drawn(&browser, "zoom:").await;
    let span = (zoom.1 - zoom.0) as f64;
    let week_span = (week.1 - week.0) as f64;
    assert!(
        zoom.0 > week.0 && zoom.1 < week.1 && (0.4..0.6).contains(&(span / week_span)),
        "half the week, in its middle: {zoom:?} of {week:?}"
    );
    charts_match_the_api(&browser, &consumer, zoom).await;
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(
        url.fragment(),
        Some(format!("host={HOST}&range=7d&from={}&to={}", zoom.0, zoom.1).as_str()),
        "the zoom is in the URL"
    );
    assert_eq!(
        attribute(&browser, "#range-picker [data-range='7d']", "aria-pressed").await,
        "false"
    );

    // The narrower span comes at a finer step (more detail), as the status line says.
    let step = |status: String| -> u64 {
        let before = status.split(" min each").next().unwrap_or_default();
        before
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a step in minutes: {status}"))
    };
    let zoom_step = step(browser.text("#range-status").await);
    assert!(
        zoom_step < step(week_status),
        "finer than the week's: {zoom_step} min"
    );
    click(&browser, "#range-reset").await;
    let back = drawn(&browser, "7d:").await;
    assert!(back.1 - back.0 == 7 * 86_400, "{back:?}");
    assert!(
        browser.text("#range-reset").await.is_empty(),
        "the reset button is gone"
    );
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(
        url.fragment(),
        Some(format!("host={HOST}&range=7d").as_str())
    );
    tap.cleanup().await;
    browser.close().await;
}
