//! Alerts end to end on the real broker: readings drive the rule engine of the active
//! evaluator; a webhook started by the test receives the notice; the `hostpulse.alerts` topic
//! exchange carries the event; `/api/alerts` and `/metrics` show it.

use crate::helpers::spawn_consumer;
use futures_util::StreamExt;
use shared::testing::{amqp_url, unique_exchange, Tap};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A real HTTP server on loopback that answers 200 and hands each request's body over.
pub(crate) async fn webhook_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .and_then(|v| v.trim().parse::<usize>().ok())
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    if let Ok(body) = serde_json::from_slice(&buf[end + 4..end + 4 + length]) {
                        let _ = tx.send(body);
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (url, rx)
}

/// The next notice for `host` within `secs`.
pub(crate) async fn next_notice(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    host: &str,
    secs: u64,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let notice = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no notice for {host} within {secs} s"))
            .expect("receiver open");
        if notice["host"] == host {
            return notice;
        }
    }
}

pub(crate) fn reading(host: &str, seq: u64, cpu: f64) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["interval_secs"] = 1.into();
    v["cpu"]["usage_percent"] = cpu.into();
    v["collected_at"] = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&v).expect("json")
}

pub(crate) fn rules_file(text: &str) -> String {
    let path =
        std::env::temp_dir().join(format!("hostpulse-rules-{}.toml", unique_exchange("rules")));
    std::fs::write(&path, text).expect("rules written");
    path.display().to_string()
}

#[tokio::test]
async fn a_reading_over_a_level_fires_once_everywhere_and_one_below_resolves_it() {
    let exchange = unique_exchange("alerts");
    let host = format!("hot-{}", &exchange[exchange.len() - 8..]);
    let (hook, mut notices) = webhook_receiver().await;
    let rules = rules_file("[rules.cpu]\nwarning = { level = 50, clear = 40 }\naverage = \"0s\"\n");
    let consumer = spawn_consumer(
        &exchange,
        &[("ALERT_RULES_FILE", &rules), ("ALERT_WEBHOOK_URL", &hook)],
    )
    .await;
    // A consumer of another fleet on the same broker: it shows none of this fleet's alerts.
    let other_fleet = spawn_consumer(&unique_exchange("alerts-other"), &[("ALERTS", "off")]).await;
    let (_connection, mut events) = crate::helpers::alert_tap(&amqp_url()).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading(&host, 1, 10.0)).await;
    tap.publish_raw(&reading(&host, 2, 80.0)).await;

    let notice = next_notice(&mut notices, &host, 20).await;
    assert_eq!(notice["version"], 1);
    let event = &notice["events"][0];
    assert_eq!(event["kind"], "firing", "{notice}");
    assert_eq!(event["rule"], "cpu");
    assert_eq!(event["severity"], "warning");
    assert_eq!(event["value"], 80.0);
    assert_eq!(event["threshold"], 50.0);

    // The topic exchange carries it, under <severity>.<host>.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let carried = loop {
        let delivery = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("an event on hostpulse.alerts")
            .expect("open")
            .expect("delivery");
        let event: serde_json::Value = serde_json::from_slice(&delivery.data).expect("JSON");
        if event["host"] == host.as_str() {
            let fleet = delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get(consumer::alerts::FLEET_HEADER).cloned());
            break (delivery.routing_key.to_string(), event, fleet);
        }
    };
    assert_eq!(carried.0, format!("warning.{host}"));
    assert_eq!(
        carried.2,
        Some(lapin::types::AMQPValue::LongString(
            exchange.as_str().into()
        )),
        "the event names its fleet"
    );
    assert_eq!(carried.1["kind"], "fired");

    // Every consumer's view: the API and the gauge.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let alerts: serde_json::Value = reqwest::get(format!("{}/api/alerts", consumer.address))
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        if alerts["active"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["host"] == host.as_str()))
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{alerts}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = reqwest::get(format!("{}/metrics", consumer.address))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let series = format!(
        "hostpulse_alert_active{{host=\"{host}\",item=\"\",rule=\"cpu\",severity=\"warning\",state=\"firing\"}}"
    );
    assert_eq!(
        shared::testing::metric(&metrics, &series),
        Some(1.0),
        "{metrics}"
    );

    // Hovering above the level fires nothing more; below the clearing level resolves.
    tap.publish_raw(&reading(&host, 3, 60.0)).await;
    tap.publish_raw(&reading(&host, 4, 45.0)).await;
    tap.publish_raw(&reading(&host, 5, 30.0)).await;
    let resolved = next_notice(&mut notices, &host, 20).await;
    assert_eq!(resolved["events"][0]["kind"], "resolved", "{resolved}");
    assert_eq!(resolved["events"][0]["peak"], 80.0, "{resolved}");
    let elsewhere = reqwest::get(format!("{}/api/alerts", other_fleet.address))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        !elsewhere.contains(&host),
        "another fleet's page shows it: {elsewhere}"
    );
    tap.cleanup().await;
    let _ = std::fs::remove_file(rules);
}

#[tokio::test]
async fn a_host_that_stops_publishing_is_down_within_seconds_once_and_back_when_it_returns() {
    let exchange = unique_exchange("alerts-down");
    let host = format!("gone-{}", &exchange[exchange.len() - 8..]);
    let (hook, mut notices) = webhook_receiver().await;
    let _consumer = spawn_consumer(&exchange, &[("ALERT_WEBHOOK_URL", &hook)]).await;
    let tap = Tap::bind(&exchange).await;
    for seq in 1..=3 {
        tap.publish_raw(&reading(&host, seq, 5.0)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Silent now: three 1 s intervals later, one "down" notice.
    let down = next_notice(&mut notices, &host, 10).await;
    let events = down["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "one message for the host: {down}");
    assert_eq!(events[0]["rule"], "host_down");
    assert_eq!(events[0]["kind"], "firing");
    assert_eq!(events[0]["severity"], "critical");
    tap.publish_raw(&reading(&host, 4, 5.0)).await;
    let back = next_notice(&mut notices, &host, 10).await;
    assert_eq!(back["events"][0]["rule"], "host_down", "{back}");
    assert_eq!(back["events"][0]["kind"], "resolved", "{back}");
    tap.cleanup().await;
}

#[tokio::test]
async fn a_restarted_evaluator_neither_forgets_an_active_alert_nor_tells_it_again() {
    let exchange = unique_exchange("alerts-restart");
    let host = format!("kept-{}", &exchange[exchange.len() - 8..]);
    let (hook, mut notices) = webhook_receiver().await;
    let rules = rules_file("[rules.cpu]\nwarning = { level = 50, clear = 40 }\naverage = \"0s\"\n");
    let data_dir = crate::helpers::fresh_data_dir();
    let vars = [
        ("ALERT_RULES_FILE", rules.as_str()),
        ("ALERT_WEBHOOK_URL", hook.as_str()),
        ("DATA_DIR", data_dir.as_str()),
    ];
    let first = spawn_consumer(&exchange, &vars).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading(&host, 1, 90.0)).await;
    let fired = next_notice(&mut notices, &host, 20).await;
    assert_eq!(fired["events"][0]["kind"], "firing", "{fired}");
    first.stop.stop(true).await;
    let _ = first.stopped.await;

    let _second = spawn_consumer(&exchange, &vars).await;
    // Still above the level: nothing new to tell. Then below: the alert it kept resolves.
    tap.publish_raw(&reading(&host, 2, 85.0)).await;
    tap.publish_raw(&reading(&host, 3, 20.0)).await;
    let next = next_notice(&mut notices, &host, 20).await;
    assert_eq!(
        next["events"][0]["kind"], "resolved",
        "not told again: {next}"
    );
    assert_eq!(next["events"][0]["peak"], 90.0, "{next}");
    tap.cleanup().await;
    let _ = std::fs::remove_file(rules);
}
