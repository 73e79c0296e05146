//! Alerts on the dashboard (issue #12): readings published to the real broker drive the real
//! evaluator (a rules file with no averaging and no delay), and headless Chromium shows the
//! card's badge, the alerts panel (firing now, recently resolved) and the detail's alerts.
//! Every consumer shows the whole `hostpulse.alerts` exchange, so other tests' alerts may be on
//! the page too: each test looks at the rows of its own hosts.

use crate::helpers::{spawn_consumer, TestConsumer};
use crate::page::{card, reading_json, screenshots};
use fantoccini::Locator;
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};
use std::time::Duration;

/// CPU judged on each reading as it comes: warning past 50 % (clears below 40), critical past
/// 90 % (clears below 80). Host down is off: these hosts stop publishing when a test is done.
pub(crate) const CPU_RULES: &str = "[rules.cpu]\n\
     warning = { level = 50, clear = 40 }\n\
     critical = { level = 90, clear = 80 }\n\
     average = \"0s\"\n\
     for = \"0s\"\n\
     [rules.host_down]\n\
     enabled = false\n";

/// Writes `text` to a rules file of its own; the file goes with the returned guard.
pub(crate) struct RulesFile(pub String);

impl RulesFile {
    pub(crate) fn new(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "hostpulse-rules-{}.toml",
            unique_exchange("browser-rules")
        ));
        std::fs::write(&path, text).expect("rules written");
        Self(path.display().to_string())
    }
}

impl Drop for RulesFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A reading of `host` at 1 Hz with the given CPU usage, collected now.
pub(crate) fn cpu_reading(host: &str, seq: u64, cpu: f64) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&reading_json(host, seq)).expect("JSON");
    v["interval_secs"] = 1.into();
    v["cpu"]["usage_percent"] = cpu.into();
    serde_json::to_vec(&v).expect("JSON")
}

/// Waits until the consumer's `/api/alerts` satisfies `check`.
pub(crate) async fn wait_for_alerts(
    consumer: &TestConsumer,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let alerts: serde_json::Value = reqwest::get(format!("{}/api/alerts", consumer.address))
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        if check(&alerts) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never came: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the list `key` ("active" or "recent") of `/api/alerts` has an event for `host`.
pub(crate) fn lists(alerts: &serde_json::Value, key: &str, host: &str) -> bool {
    alerts[key]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["host"] == host))
}

fn firing_row(host: &str) -> String {
    format!("#alerts-firing tbody tr[data-host=\"{host}\"]")
}

fn recent_row(host: &str) -> String {
    format!("#alerts-recent tbody tr[data-host=\"{host}\"]")
}

/// The text of each cell of the first row matching `css`.
async fn cells(browser: &Browser, css: &str) -> Vec<String> {
    let row = browser.client.find(Locator::Css(css)).await.expect("row");
    let mut texts = Vec::new();
    for cell in row.find_all(Locator::Css("td")).await.expect("cells") {
        texts.push(cell.text().await.expect("text"));
    }
    texts
}

/// The `datetime` of the `time` in cell `index` (from 1) of the first row matching `css`.
async fn cell_time(browser: &Browser, css: &str, index: usize) -> chrono::DateTime<chrono::Utc> {
    let time = browser
        .client
        .find(Locator::Css(&format!("{css} td:nth-child({index}) time")))
        .await
        .expect("a time in the cell")
        .attr("datetime")
        .await
        .expect("attribute")
        .expect("a datetime");
    chrono::DateTime::parse_from_rfc3339(&time)
        .expect("RFC 3339")
        .into()
}

async fn count(browser: &Browser, css: &str) -> usize {
    browser
        .client
        .find_all(Locator::Css(css))
        .await
        .expect("find")
        .len()
}

async fn displayed(browser: &Browser, css: &str) -> bool {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .expect("element")
        .is_displayed()
        .await
        .expect("displayed")
}

/// The text of what describes (`aria-describedby`) the element matching `css`.
async fn described_by(browser: &Browser, css: &str) -> String {
    browser
        .client
        .execute(
            "const id = document.querySelector(arguments[0])?.getAttribute('aria-describedby');
             return id ? (document.getElementById(id)?.textContent ?? '') : '';",
            vec![css.into()],
        )
        .await
        .expect("the script runs")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// "No alerts" is shown exactly when nothing fires (whoever's alerts those are).
async fn assert_empty_state_matches(browser: &Browser) {
    let state = browser
        .client
        .execute(
            "const none = document.getElementById('alerts-none');
             return [none.hidden, none.textContent,
                     document.querySelectorAll('#alerts-firing tbody tr').length];",
            vec![],
        )
        .await
        .expect("the script runs");
    let firing = state[2].as_u64().expect("a count");
    assert_eq!(
        state[0].as_bool(),
        Some(firing > 0),
        "\"No alerts\" shown with {firing} firing"
    );
    assert_eq!(state[1], "No alerts");
}

#[tokio::test]
async fn an_alert_shows_on_the_card_and_in_the_panel_as_it_fires_and_moves_to_recent_when_it_clears(
) {
    let exchange = unique_exchange("browser-alerts");
    let suffix = &exchange[exchange.len() - 8..];
    let (hot, calm) = (format!("hot-{suffix}"), format!("calm-{suffix}"));
    let rules = RulesFile::new(CPU_RULES);
    let consumer = spawn_consumer(&exchange, &[("ALERT_RULES_FILE", &rules.0)]).await;
    let tap = Tap::bind(&exchange).await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    assert_empty_state_matches(&browser).await;

    tap.publish_raw(&cpu_reading(&calm, 1, 5.0)).await;
    browser
        .wait_text(&card(&calm), 10, |t| t.contains(&calm))
        .await;
    tap.publish_raw(&cpu_reading(&hot, 1, 10.0)).await;
    let sent = chrono::Utc::now().timestamp_millis();
    tap.publish_raw(&cpu_reading(&hot, 2, 95.0)).await;

    // The card: count and worst severity in words, marked critical.
    let badge = format!("{} .alert-badge", card(&hot));
    browser
        .wait_text(&badge, 20, |t| t == "critical · 1 alert")
        .await;
    let class = browser
        .client
        .find(Locator::Css(&badge))
        .await
        .expect("badge")
        .attr("class")
        .await
        .expect("class");
    assert!(class.is_some_and(|c| c.contains("sev-critical")));
    assert_eq!(
        described_by(&browser, &format!("{} .name", card(&hot))).await,
        "critical · 1 alert",
        "the host's button is described by its badge"
    );
    assert_eq!(
        count(&browser, &format!("{} .alert-badge", card(&calm))).await,
        0,
        "a host without alerts has no badge"
    );

    // The panel: what fires, where, how bad, since when, its value and peak.
    browser
        .wait_text(&firing_row(&hot), 10, |t| t.contains("95.0 %"))
        .await;
    let row = cells(&browser, &firing_row(&hot)).await;
    assert_eq!(row[..4], [hot.as_str(), "cpu", "–", "critical"], "{row:?}");
    assert_eq!(row[5..], ["95.0 %", "95.0 %"], "{row:?}");
    // Since the reading over the level arrived (the page keeps milliseconds).
    let since = cell_time(&browser, &firing_row(&hot), 5).await;
    let seen = chrono::Utc::now().timestamp_millis();
    assert!(
        (sent..=seen).contains(&since.timestamp_millis()),
        "fired at {since}, between {sent} and {seen} ms"
    );
    assert!(!displayed(&browser, "#alerts-none").await);
    assert_empty_state_matches(&browser).await;

    // Its host in the panel opens the host's detail, which lists the alert.
    assert_eq!(browser.text("#detail-host").await, calm, "calm came first");
    browser
        .client
        .find(Locator::Css(&format!("{} button", firing_row(&hot))))
        .await
        .expect("the host is a button")
        .click()
        .await
        .expect("click");
    browser.wait_text("#detail-host", 5, |t| t == hot).await;
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.fragment(), Some(format!("host={hot}").as_str()));
    let listed = browser
        .wait_text("#detail-alerts-list", 5, |t| t.contains("cpu"))
        .await;
    assert!(
        listed.starts_with("critical cpu: 95.0 % since") && listed.ends_with("(peak 95.0 %)"),
        "{listed}"
    );
    browser
        .client
        .execute("window.scrollTo(0, 0)", vec![])
        .await
        .expect("scroll");
    browser.screenshot(&screenshots(), "alerts-firing").await;

    // Below the clearing level: it leaves "firing" for the recent list, with start, end, peak.
    tap.publish_raw(&cpu_reading(&hot, 3, 30.0)).await;
    browser
        .wait_text(&recent_row(&hot), 20, |t| !t.is_empty())
        .await;
    assert_eq!(
        count(&browser, &firing_row(&hot)).await,
        0,
        "no longer firing"
    );
    let row = cells(&browser, &recent_row(&hot)).await;
    assert_eq!(row[..3], [hot.as_str(), "cpu", "–"], "{row:?}");
    assert_eq!(row[6], "95.0 %", "the peak: {row:?}");
    let (started, ended) = (
        cell_time(&browser, &recent_row(&hot), 5).await,
        cell_time(&browser, &recent_row(&hot), 6).await,
    );
    assert_eq!(started, since, "the same start as while firing");
    assert!(started < ended, "started {started}, ended {ended}");
    assert_eq!(count(&browser, &badge).await, 0, "the badge is gone");
    assert_eq!(
        described_by(&browser, &format!("{} .name", card(&hot))).await,
        ""
    );
    browser
        .wait_text("#detail-alerts-list", 5, |t| t.is_empty())
        .await;
    assert!(!displayed(&browser, "#detail-alerts").await);
    assert_empty_state_matches(&browser).await;
    browser.screenshot(&screenshots(), "alerts-resolved").await;
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn a_page_opened_after_alerts_fired_and_cleared_shows_them_from_the_snapshot() {
    let exchange = unique_exchange("browser-alerts-snap");
    let suffix = &exchange[exchange.len() - 8..];
    let (firing, cleared) = (format!("busy-{suffix}"), format!("done-{suffix}"));
    let rules = RulesFile::new(CPU_RULES);
    let consumer = spawn_consumer(&exchange, &[("ALERT_RULES_FILE", &rules.0)]).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&cpu_reading(&firing, 1, 10.0)).await;
    tap.publish_raw(&cpu_reading(&firing, 2, 60.0)).await;
    tap.publish_raw(&cpu_reading(&cleared, 1, 10.0)).await;
    tap.publish_raw(&cpu_reading(&cleared, 2, 97.0)).await;
    tap.publish_raw(&cpu_reading(&cleared, 3, 20.0)).await;
    wait_for_alerts(&consumer, "one active, one resolved", |a| {
        lists(a, "active", &firing) && lists(a, "recent", &cleared)
    })
    .await;

    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser
        .wait_text(&format!("{} .alert-badge", card(&firing)), 10, |t| {
            t == "warning · 1 alert"
        })
        .await;
    let row = cells(&browser, &firing_row(&firing)).await;
    assert_eq!(
        row[..4],
        [firing.as_str(), "cpu", "–", "warning"],
        "{row:?}"
    );
    assert_eq!(row[5..], ["60.0 %", "60.0 %"], "{row:?}");
    let row = cells(&browser, &recent_row(&cleared)).await;
    assert_eq!(row[..3], [cleared.as_str(), "cpu", "–"], "{row:?}");
    assert_eq!(row[6], "97.0 %", "the peak: {row:?}");
    assert_eq!(
        count(&browser, &format!("{} .alert-badge", card(&cleared))).await,
        0,
        "a resolved alert leaves no badge"
    );

    // On a phone the panel's tables stack, and nothing is wider than the screen.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(overflow.as_i64(), Some(0), "the panel fits a phone");
    browser.screenshot(&screenshots(), "alerts-phone").await;
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn a_host_name_made_of_html_stays_text_in_the_badge_the_panel_and_the_detail() {
    let exchange = unique_exchange("browser-alerts-xss");
    let suffix = &exchange[exchange.len() - 8..];
    let hostile = format!("<img src=x onerror=alert(1)>{suffix}");
    let rules = RulesFile::new(CPU_RULES);
    let consumer = spawn_consumer(&exchange, &[("ALERT_RULES_FILE", &rules.0)]).await;
    let tap = Tap::bind(&exchange).await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    tap.publish_raw(&cpu_reading(&hostile, 1, 10.0)).await;
    tap.publish_raw(&cpu_reading(&hostile, 2, 70.0)).await;

    // Live frames, then the same from a fresh page's snapshot.
    for view in ["live", "snapshot"] {
        browser
            .wait_text(&firing_row(&hostile), 20, |t| t.contains("70.0 %"))
            .await;
        let row = cells(&browser, &firing_row(&hostile)).await;
        assert_eq!(row[0], hostile, "{view}: the name is its text");
        assert_eq!(
            browser
                .text(&format!("{} .alert-badge", card(&hostile)))
                .await,
            "warning · 1 alert",
            "{view}"
        );
        assert_eq!(browser.text("#detail-host").await, hostile, "{view}");
        browser
            .wait_text("#detail-alerts-list", 5, |t| t.contains("cpu: 70.0 %"))
            .await;
        assert_eq!(
            count(&browser, "img").await,
            0,
            "{view}: no element made from the name"
        );
        assert!(
            browser.client.get_alert_text().await.is_err(),
            "{view}: no script ran"
        );
        browser.client.refresh().await.expect("reload");
    }
    tap.cleanup().await;
    browser.close().await;
}

/// A message shaped like the original Python publisher's: no interval, placed at arrival.
fn original(hostname: &str) -> Vec<u8> {
    format!(
        r#"{{"hostname": "{hostname}", "timestamp": "2026-11-23T12:00:00.500000",
        "cpu_percent": 37.5, "memory": {{"total": 8000, "available": 6000, "percent": 25.0}},
        "platform": "Linux", "platform_release": "5.15.0", "processor": "x86_64"}}"#
    )
    .into_bytes()
}

/// A 1 Hz reading of `host` with `cpu` %, collected at `at` (the consumer's manual clock).
fn cpu_reading_at(host: &str, seq: u64, cpu: f64, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_slice(&cpu_reading(host, seq, cpu)).expect("JSON");
    v["collected_at"] = at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&v).expect("JSON")
}

#[tokio::test]
async fn a_down_hosts_alert_is_shown_held_under_it_then_resolved_as_no_data_and_an_on_demand_host_says_so(
) {
    use consumer::clock::{Clock, ManualClock};
    let exchange = unique_exchange("browser-held");
    let suffix = &exchange[exchange.len() - 8..];
    let (quiet, legacy) = (format!("quiet-{suffix}"), format!("legacy-{suffix}"));
    let rules =
        RulesFile::new("[rules.cpu]\nwarning = { level = 50, clear = 40 }\naverage = \"0s\"\n");
    let clock = ManualClock::new(chrono::Utc::now());
    let consumer = crate::helpers::spawn_consumer_on(
        &exchange,
        &[
            ("ALERT_RULES_FILE", rules.0.as_str()),
            ("ALERT_NO_DATA_SECS", "120"),
            ("STALE_AFTER_SECS", "1"),
        ],
        clock.clone(),
    )
    .await;
    let tap = Tap::bind(&exchange).await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;

    // The original publisher, called once: on demand, not stale, never down.
    tap.publish_raw(&original(&legacy)).await;
    browser
        .wait_text(&format!("{} .seen", card(&legacy)), 10, |t| {
            t.starts_with("on demand · last seen")
        })
        .await;

    // A 1 Hz host with a CPU alert, then silence: down, and the CPU alert held under it.
    tap.publish_raw(&cpu_reading_at(&quiet, 1, 90.0, clock.now()))
        .await;
    wait_for_alerts(&consumer, "cpu firing", |a| lists(a, "active", &quiet)).await;
    browser
        .wait_text(&firing_row(&quiet), 10, |t| t.contains("90.0 %"))
        .await;
    clock.advance(Duration::from_secs(5));
    let held_row = format!("{}[data-state=\"held\"]", firing_row(&quiet));
    browser
        .wait_text(&held_row, 20, |t| t.contains("held"))
        .await;
    let rows = browser
        .client
        .find_all(Locator::Css(&firing_row(&quiet)))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "the down alert and the held one");
    let first = rows[0].text().await.expect("text");
    assert!(first.contains("host_down"), "the down alert first: {first}");
    let row = cells(&browser, &held_row).await;
    assert_eq!(
        row[1..4],
        ["↳ cpu", "–", "held · warning"],
        "held under the down alert: {row:?}"
    );
    assert_eq!(row[5], "was 90.0 %", "its value then, not now: {row:?}");
    browser
        .wait_text(&format!("{} .alert-badge", card(&quiet)), 10, |t| {
            t == "critical · 1 alert · 1 held"
        })
        .await;
    browser.screenshot(&screenshots(), "alerts-held").await;

    // Past the no-data time: the CPU alert resolved, "no data", and only the down alert left.
    clock.advance(Duration::from_secs(116));
    browser
        .wait_text(&recent_row(&quiet), 20, |t| t.contains("no data"))
        .await;
    let row = cells(&browser, &recent_row(&quiet)).await;
    assert_eq!(row[1], "cpu", "{row:?}");
    assert!(row[5].contains("no data (host silent)"), "{row:?}");
    assert_eq!(count(&browser, &firing_row(&quiet)).await, 1);
    assert_eq!(count(&browser, &held_row).await, 0);
    browser.screenshot(&screenshots(), "alerts-no-data").await;
    tap.cleanup().await;
    browser.close().await;
}
