//! Alerts in a fleet of consumers and with a bad notification endpoint: exactly one evaluator
//! at a time (its queue has a single active consumer), a handover that neither loses nor
//! repeats a notice, and a webhook that hangs without holding anything else up.

use crate::alerts::{next_notice, reading, rules_file, webhook_receiver};
use crate::helpers::{next_reading, open_socket, spawn_consumer, wait_until, TestConsumer};
use shared::testing::{metric, unique_exchange, Tap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A rule that fires on the first reading over 50 % CPU and resolves below 40 %.
const CPU_AT_ONCE: &str = "[rules.cpu]\nwarning = { level = 50, clear = 40 }\naverage = \"0s\"\n";

fn prometheus_text(consumer: &TestConsumer) -> String {
    let mut out = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &consumer.metrics.registry.gather(),
        &mut out,
    )
    .expect("encodes");
    String::from_utf8(out).expect("UTF-8")
}

/// Alert events of `kind` this consumer evaluated (only the active evaluator evaluates).
fn evaluated(consumer: &TestConsumer, kind: &str) -> f64 {
    let series = format!("hostpulse_alert_events_total{{kind=\"{kind}\"}}");
    metric(&prometheus_text(consumer), &series).unwrap_or(0.0)
}

/// The next notice, whichever host it is for.
async fn next_any(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    secs: u64,
) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no notice within {secs} s"))
        .expect("receiver open")
}

/// `/api/alerts` of `consumer`, polled until `host` is active there (at most 10 s).
async fn shows_active(consumer: &TestConsumer, host: &str) {
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
            .is_some_and(|a| a.iter().any(|e| e["host"] == host))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{host} not active on {}: {alerts}",
            consumer.address
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_consumers_notify_each_event_once_and_the_second_takes_over_without_repeating() {
    // One store for both (the kept alert state is what a successor goes on from).
    let db = shared::testing::postgres::PgDatabase::create().await;
    let exchange = unique_exchange("alerts-pair");
    let suffix = &exchange[exchange.len() - 8..];
    let (first_host, second_host) = (format!("one-{suffix}"), format!("two-{suffix}"));
    let (hook, mut notices) = webhook_receiver().await;
    let rules = rules_file(CPU_AT_ONCE);
    let vars = [
        ("HISTORY_URL", db.url.as_str()),
        ("ALERT_RULES_FILE", rules.as_str()),
        ("ALERT_WEBHOOK_URL", hook.as_str()),
    ];
    let a = spawn_consumer(&exchange, &vars).await;
    let b = spawn_consumer(&exchange, &vars).await;
    let tap = Tap::bind(&exchange).await;

    // Both consumers would notify if both evaluated: one notice, from one of them.
    tap.publish_raw(&reading(&first_host, 1, 10.0)).await;
    tap.publish_raw(&reading(&first_host, 2, 80.0)).await;
    let fired = next_any(&mut notices, 20).await;
    assert_eq!(fired["host"], first_host.as_str(), "{fired}");
    assert_eq!(fired["events"][0]["kind"], "firing", "{fired}");
    let (fired_a, fired_b) = (evaluated(&a, "fired"), evaluated(&b, "fired"));
    assert_eq!(
        fired_a + fired_b,
        1.0,
        "one evaluator: {fired_a} + {fired_b}"
    );
    let (active, standby) = if fired_a == 1.0 { (a, b) } else { (b, a) };
    // The standby shows what the active one announced.
    shows_active(&standby, &first_host).await;

    // The active evaluator stops; the alert is still firing at the handover.
    active.stop.stop(true).await;
    let _ = active.stopped.await;

    // Still above the level: the successor goes on from the kept state and says nothing.
    // A new crossing on another host is told once, by the successor.
    tap.publish_raw(&reading(&first_host, 3, 85.0)).await;
    tap.publish_raw(&reading(&second_host, 1, 10.0)).await;
    tap.publish_raw(&reading(&second_host, 2, 90.0)).await;
    let next = next_any(&mut notices, 20).await;
    assert_eq!(
        next["host"],
        second_host.as_str(),
        "the alert active at the handover was not told again: {next}"
    );
    assert_eq!(next["events"][0]["kind"], "firing", "{next}");
    assert_eq!(next["events"][0]["value"], 90.0, "{next}");

    // The alert from before the handover resolves, through the successor.
    tap.publish_raw(&reading(&first_host, 4, 20.0)).await;
    let resolved = next_notice(&mut notices, &first_host, 20).await;
    assert_eq!(resolved["events"][0]["kind"], "resolved", "{resolved}");
    assert_eq!(resolved["events"][0]["peak"], 85.0, "{resolved}");
    assert_eq!(
        evaluated(&standby, "fired"),
        1.0,
        "the successor fired only the new alert"
    );
    assert_eq!(evaluated(&standby, "resolved"), 1.0);
    shows_active(&standby, &second_host).await;
    assert!(notices.try_recv().is_err(), "no other notice was sent");
    tap.cleanup().await;
    let _ = std::fs::remove_file(rules);
}

/// A webhook that takes every connection and never answers; counts the connections.
async fn hanging_webhook() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                // Read the request and keep the connection open without a word.
                let mut sink = Vec::new();
                let _ = stream.read_to_end(&mut sink).await;
            });
        }
    });
    (url, attempts)
}

#[tokio::test]
async fn a_webhook_that_hangs_holds_up_nothing_else_and_is_given_up_on_after_its_attempts() {
    let exchange = unique_exchange("alerts-hang");
    let host = format!("hung-{}", &exchange[exchange.len() - 8..]);
    let (hook, attempts) = hanging_webhook().await;
    let rules = rules_file(CPU_AT_ONCE);
    let consumer = spawn_consumer(
        &exchange,
        &[
            ("ALERT_RULES_FILE", rules.as_str()),
            ("ALERT_WEBHOOK_URL", hook.as_str()),
            ("ALERT_NOTIFY_ATTEMPTS", "2"),
            ("ALERT_NOTIFY_TIMEOUT_SECS", "1"),
        ],
    )
    .await;
    let mut socket = open_socket(&consumer).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading(&host, 1, 90.0)).await;
    assert_eq!(next_reading(&mut socket).await["seq"], 1);
    // The alert is evaluated and shown while its notice hangs.
    shows_active(&consumer, &host).await;
    let tried = Arc::clone(&attempts);
    wait_until("the first attempt is made", || {
        tried.load(Ordering::SeqCst) >= 1
    })
    .await;

    // Readings keep reaching the browsers while the webhook hangs, and after it is given up.
    let failed = "hostpulse_notifications_total{channel=\"webhook\",outcome=\"failed\"}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seq = 1;
    while metric(&prometheus_text(&consumer), failed) != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the notice was never given up on"
        );
        seq += 1;
        tap.publish_raw(&reading(&host, seq, 90.0)).await;
        assert_eq!(next_reading(&mut socket).await["seq"], seq);
    }
    assert!(seq > 2, "readings flowed while the notice was being tried");
    seq += 1;
    tap.publish_raw(&reading(&host, seq, 90.0)).await;
    assert_eq!(next_reading(&mut socket).await["seq"], seq);

    // Bounded: two attempts (one retry), then given up; nothing sent.
    let text = prometheus_text(&consumer);
    assert_eq!(attempts.load(Ordering::SeqCst), 2, "{text}");
    assert_eq!(
        metric(
            &text,
            "hostpulse_notification_retries_total{channel=\"webhook\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "hostpulse_notifications_total{channel=\"webhook\",outcome=\"sent\"}"
        ),
        Some(0.0)
    );
    tap.cleanup().await;
    let _ = std::fs::remove_file(rules);
}

#[tokio::test]
async fn a_consumer_with_alerts_off_never_evaluates_but_shows_what_another_evaluates() {
    let exchange = unique_exchange("alerts-off");
    let host = format!("seen-{}", &exchange[exchange.len() - 8..]);
    let (hook, mut notices) = webhook_receiver().await;
    let rules = rules_file(CPU_AT_ONCE);
    let common = [
        ("ALERT_RULES_FILE", rules.as_str()),
        ("ALERT_WEBHOOK_URL", hook.as_str()),
    ];
    // Started first: were it on the alerts queue, it would be the active evaluator.
    let off = spawn_consumer(&exchange, &[common[0], common[1], ("ALERTS", "off")]).await;
    let on = spawn_consumer(&exchange, &common).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading(&host, 1, 90.0)).await;
    let fired = next_notice(&mut notices, &host, 20).await;
    assert_eq!(fired["events"][0]["kind"], "firing", "{fired}");
    assert_eq!(
        evaluated(&on, "fired"),
        1.0,
        "the consumer with alerts on evaluated"
    );
    assert_eq!(evaluated(&off, "fired"), 0.0);
    shows_active(&off, &host).await;
    tap.cleanup().await;
    let _ = std::fs::remove_file(rules);
}
