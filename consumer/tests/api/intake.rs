//! One message, three queues (live, history, alerts), one parse: a reading placed at its
//! arrival has the same time wherever it is shown.

use crate::helpers::{spawn_consumer_on, wait_until, TestConsumer};
use chrono::{DateTime, Utc};
use consumer::clock::Clock;
use shared::testing::{unique_exchange, Tap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A clock a second further on at every reading: each queue that worked out a reading's
/// arrival time on its own would give it another second.
struct SteppingClock(Mutex<DateTime<Utc>>);

impl Clock for SteppingClock {
    fn now(&self) -> DateTime<Utc> {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::seconds(1);
        *now
    }
}

/// The original publisher's message for `hostname`: local time without a zone, which the
/// consumer places at its arrival.
fn original(hostname: &str) -> Vec<u8> {
    format!(
        r#"{{"hostname": "{hostname}", "timestamp": "2026-11-23T12:00:00.500000",
        "cpu_percent": 37.5, "memory": {{"total": 8000, "available": 6000, "percent": 25.0}},
        "platform": "Linux", "platform_release": "5.15.0", "processor": "x86_64"}}"#
    )
    .into_bytes()
}

async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

/// The times (unix seconds) the history API holds for `host` in `[from, from + 1 h]`,
/// waiting (bounded) until there is at least one.
async fn recorded_times(consumer: &TestConsumer, host: &str, from: i64) -> Vec<i64> {
    let url = format!(
        "{}/api/hosts/{host}/history?from={from}&to={}&points=3600",
        consumer.address,
        from + 3600
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = get_json(&url).await;
        let times: Vec<i64> = body["times"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t.as_i64()).collect())
            .unwrap_or_default();
        if !times.is_empty() {
            return times;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recorded: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The live view's readings of `host` (`/api/hosts/{host}/readings`).
async fn live_readings(consumer: &TestConsumer, host: &str) -> Vec<serde_json::Value> {
    let url = format!("{}/api/hosts/{host}/readings", consumer.address);
    get_json(&url).await.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_reading_placed_at_arrival_has_one_time_in_the_live_view_and_the_history() {
    let exchange = unique_exchange("parse-once");
    // Well in the past, so the history range below holds every time the clock gives.
    let start = Utc::now() - chrono::Duration::minutes(30);
    let clock = Arc::new(SteppingClock(Mutex::new(start)));
    let consumer = spawn_consumer_on(&exchange, &[], clock).await;
    let history = consumer.history.clone();
    wait_until("the history queue is consumed", || {
        history.state().queue_connected
    })
    .await;
    let tap = Tap::bind(&exchange).await;
    let from = start.timestamp() - 600;

    // A first message, so every queue is known to be taking messages.
    tap.publish_raw(&original("warm-up")).await;
    recorded_times(&consumer, "warm-up", from).await;

    tap.publish_raw(&original("old-box")).await;
    let recorded = recorded_times(&consumer, "old-box", from).await;
    let live = live_readings(&consumer, "old-box").await;
    assert_eq!(live.len(), 1, "shown once: {live:?}");
    let shown: DateTime<Utc> = live[0]["collected_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a time");
    assert_eq!(recorded, [shown.timestamp()], "the same time in both");
    tap.cleanup().await;
}
