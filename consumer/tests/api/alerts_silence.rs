//! Hosts that fall silent, through the real broker (issue 29): a host that never promised a
//! rhythm (the original publisher, on demand) is never down; a 1 Hz host that stops is down,
//! its other alerts are held at once and resolve as "no data" after the set time, in one
//! notification with the down alert — seen in `/api/alerts`, `/metrics` and the webhook.

use crate::alerts::{next_notice, rules_file, webhook_receiver};
use crate::helpers::{spawn_consumer, spawn_consumer_on, TestConsumer};
use chrono::{DateTime, Utc};
use consumer::clock::{Clock, ManualClock};
use shared::testing::{metric, unique_exchange, Tap};
use std::time::Duration;

/// A message shaped like the original Python publisher's: no interval, local time without a
/// zone (placed at its arrival).
fn original(hostname: &str) -> Vec<u8> {
    format!(
        r#"{{"hostname": "{hostname}", "timestamp": "2026-11-23T12:00:00.500000",
        "cpu_percent": 37.5, "memory": {{"total": 8000, "available": 6000, "percent": 25.0}},
        "platform": "Linux", "platform_release": "5.15.0", "processor": "x86_64"}}"#
    )
    .into_bytes()
}

/// A reading of `host` declaring 1 s, with `cpu` %, collected at `at`.
pub fn reading_at(host: &str, seq: u64, cpu: f64, at: DateTime<Utc>) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["interval_secs"] = 1.into();
    v["cpu"]["usage_percent"] = cpu.into();
    v["collected_at"] = at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&v).expect("json")
}

async fn alerts_of(consumer: &TestConsumer) -> serde_json::Value {
    reqwest::get(format!("{}/api/alerts", consumer.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

async fn metrics_of(consumer: &TestConsumer) -> String {
    reqwest::get(format!("{}/metrics", consumer.address))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text")
}

/// The active alert of `host` for `rule` in `/api/alerts`, if any.
fn active<'a>(
    alerts: &'a serde_json::Value,
    host: &str,
    rule: &str,
) -> Option<&'a serde_json::Value> {
    alerts["active"]
        .as_array()?
        .iter()
        .find(|e| e["host"] == host && e["rule"] == rule)
}

/// Polls `/api/alerts` until `check` holds (at most 10 s).
async fn wait_for(
    consumer: &TestConsumer,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let alerts = alerts_of(consumer).await;
        if check(&alerts) {
            return alerts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never came: {alerts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_host_that_publishes_on_demand_is_never_down_while_one_with_a_rhythm_is() {
    let exchange = unique_exchange("alerts-demand");
    let suffix = &exchange[exchange.len() - 8..];
    let (legacy, timed) = (format!("legacy-{suffix}"), format!("timed-{suffix}"));
    let (hook, mut notices) = webhook_receiver().await;
    let consumer = spawn_consumer(&exchange, &[("ALERT_WEBHOOK_URL", &hook)]).await;
    let tap = Tap::bind(&exchange).await;
    // Three calls to the original's /publish a second apart; a 1 Hz host beside it goes on a
    // second longer, so a false "down" of the first would come before the second's.
    for seq in 0..4 {
        if seq < 3 {
            tap.publish_raw(&original(&legacy)).await;
        }
        tap.publish_raw(&crate::alerts::reading(&timed, seq + 1, 5.0))
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Notices go out in the order they were made: the first is the 1 Hz host's down.
    let down = tokio::time::timeout(Duration::from_secs(20), notices.recv())
        .await
        .expect("a notice")
        .expect("receiver open");
    assert_eq!(down["host"], timed.as_str(), "{down}");
    assert_eq!(down["events"][0]["rule"], "host_down", "{down}");
    let alerts = alerts_of(&consumer).await;
    assert!(
        active(&alerts, &legacy, "host_down").is_none(),
        "the on-demand host is not down: {alerts}"
    );
    assert!(
        !alerts.to_string().contains(&legacy),
        "nothing at all about the on-demand host: {alerts}"
    );
    tap.cleanup().await;
}

#[tokio::test]
async fn a_silent_hosts_alerts_are_held_under_its_down_alert_then_resolve_as_no_data_once() {
    let exchange = unique_exchange("alerts-nodata");
    let host = format!("quiet-{}", &exchange[exchange.len() - 8..]);
    let (hook, mut notices) = webhook_receiver().await;
    let rules = rules_file("[rules.cpu]\nwarning = { level = 50, clear = 40 }\naverage = \"0s\"\n");
    let clock = ManualClock::new(Utc::now());
    let consumer = spawn_consumer_on(
        &exchange,
        &[
            ("ALERT_RULES_FILE", rules.as_str()),
            ("ALERT_WEBHOOK_URL", hook.as_str()),
            ("ALERT_NO_DATA_SECS", "120"),
        ],
        clock.clone(),
    )
    .await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading_at(&host, 1, 90.0, clock.now()))
        .await;
    let fired = next_notice(&mut notices, &host, 20).await;
    assert_eq!(fired["events"][0]["rule"], "cpu", "{fired}");
    assert_eq!(fired["events"][0]["kind"], "firing", "{fired}");
    let alerts = wait_for(&consumer, "cpu firing", |a| {
        active(a, &host, "cpu").is_some()
    })
    .await;
    assert_eq!(
        active(&alerts, &host, "cpu").expect("cpu")["state"],
        "firing"
    );

    // Silent for 5 of its 1 s intervals: down, and the CPU alert held at once.
    clock.advance(Duration::from_secs(5));
    let down = next_notice(&mut notices, &host, 20).await;
    let events = down["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "only the down alert is told: {down}");
    assert_eq!(events[0]["rule"], "host_down");
    assert_eq!(events[0]["kind"], "firing");
    let alerts = wait_for(&consumer, "cpu held", |a| {
        active(a, &host, "cpu").is_some_and(|e| e["state"] == "held")
    })
    .await;
    assert_eq!(
        active(&alerts, &host, "host_down").expect("down")["state"],
        "firing",
        "{alerts}"
    );
    let text = metrics_of(&consumer).await;
    let series = |rule: &str, severity: &str, state: &str| {
        format!(
            "hostpulse_alert_active{{host=\"{host}\",item=\"\",rule=\"{rule}\",severity=\"{severity}\",state=\"{state}\"}}"
        )
    };
    assert_eq!(
        metric(&text, &series("cpu", "warning", "held")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, &series("cpu", "warning", "firing")),
        None,
        "{text}"
    );
    assert_eq!(
        metric(&text, &series("host_down", "critical", "firing")),
        Some(1.0),
        "{text}"
    );

    // Past the no-data time (120 s after its last reading): the CPU alert resolves as "no
    // data", in one notice with the down alert, which is still firing.
    clock.advance(Duration::from_secs(116));
    let no_data = next_notice(&mut notices, &host, 20).await;
    let events = no_data["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{no_data}");
    let cpu = events.iter().find(|e| e["rule"] == "cpu").expect("cpu");
    assert_eq!(cpu["kind"], "resolved", "{no_data}");
    assert_eq!(cpu["reason"], "no_data", "{no_data}");
    let down = events
        .iter()
        .find(|e| e["rule"] == "host_down")
        .expect("down");
    assert_eq!(down["kind"], "reminder", "{no_data}");
    let alerts = wait_for(&consumer, "cpu resolved", |a| {
        active(a, &host, "cpu").is_none()
    })
    .await;
    assert!(active(&alerts, &host, "host_down").is_some(), "{alerts}");
    let recent = alerts["recent"]
        .as_array()
        .and_then(|r| r.iter().find(|e| e["host"] == host.as_str()))
        .expect("the CPU alert among the recent ones");
    assert_eq!(recent["rule"], "cpu");
    assert_eq!(recent["reason"], "no_data", "{alerts}");
    let text = metrics_of(&consumer).await;
    assert_eq!(
        metric(&text, &series("cpu", "warning", "held")),
        None,
        "{text}"
    );

    // Once: a long silence tells nothing more (no reminder is due for 4 h).
    clock.advance(Duration::from_secs(600));
    // The host comes back: down resolves, and it is judged afresh (the CPU fires again as new).
    tap.publish_raw(&reading_at(&host, 2, 90.0, clock.now()))
        .await;
    let back = next_notice(&mut notices, &host, 20).await;
    let kinds: Vec<(String, String)> = back["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["rule"].as_str().unwrap_or_default().to_owned(),
                e["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("host_down".to_owned(), "resolved".to_owned()),
            ("cpu".to_owned(), "firing".to_owned())
        ],
        "nothing between the no-data notice and the return: {back}"
    );
    tap.cleanup().await;
    let _ = std::fs::remove_file(rules);
}
