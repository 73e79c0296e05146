//! History: readings published through the real broker are recorded from the store's own
//! durable queue, survive restarts, and come back through the HTTP API.

use crate::helpers::{fresh_data_dir, spawn_consumer, wait_until, TestConsumer};
use shared::testing::{amqp_url, unique_exchange, Tap};
use std::time::Duration;

/// A valid reading for `host`, `seq`, dated `at`, with CPU at `cpu` percent.
pub(crate) fn reading(
    host: &str,
    seq: u64,
    at: chrono::DateTime<chrono::Utc>,
    cpu: f64,
) -> Vec<u8> {
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

/// Waits (bounded) until this consumer consumes its history queue.
pub(crate) async fn recording(consumer: &TestConsumer) {
    let history = consumer.history.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !history.state().queue_connected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recorded: {:?}",
            history.state()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// The CPU averages of `host` over the last `secs` seconds, waiting (bounded) for `expected`.
async fn cpu_history(consumer: &TestConsumer, host: &str, expected: usize) -> serde_json::Value {
    let to = chrono::Utc::now().timestamp() + 1;
    let url = format!(
        "{}/api/hosts/{host}/history?from={}&to={to}&points=3600",
        consumer.address,
        to - 3600
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get_json(&url).await;
        let have = body["series"]["cpu_usage_percent"]["avg"]
            .as_array()
            .map_or(0, |v| v.iter().filter(|x| !x.is_null()).count());
        if status == 200 && have >= expected {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history never had {expected} points: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn published_readings_are_recorded_and_come_back_through_the_api() {
    let exchange = unique_exchange("history");
    let consumer = spawn_consumer(&exchange, &[]).await;
    recording(&consumer).await;
    let tap = Tap::bind(&exchange).await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(120);
    for i in 0..5u64 {
        let at = start + chrono::Duration::seconds(i as i64);
        tap.publish_raw(&reading("rec-1", i + 1, at, 10.0 * (i + 1) as f64))
            .await;
    }
    let body = cpu_history(&consumer, "rec-1", 5).await;
    assert_eq!(body["host"], "rec-1");
    assert_eq!(body["tier"], "raw");
    let avg: Vec<f64> = body["series"]["cpu_usage_percent"]["avg"]
        .as_array()
        .expect("avg")
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    assert_eq!(avg, [10.0, 20.0, 30.0, 40.0, 50.0]);
    assert!(
        body["series"]
            .as_object()
            .expect("series")
            .contains_key("memory_used_bytes"),
        "{body}"
    );

    // The same range as a download.
    let to = chrono::Utc::now().timestamp() + 1;
    let csv = reqwest::get(format!(
        "{}/api/hosts/rec-1/history?from={}&to={to}&points=3600&format=csv",
        consumer.address,
        to - 3600
    ))
    .await
    .expect("sent");
    assert_eq!(csv.status(), 200);
    let disposition = csv
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(disposition.contains("attachment"), "{disposition}");
    let text = csv.text().await.expect("text");
    let mut lines = text.lines();
    assert!(
        lines.next().is_some_and(
            |h| h.starts_with("time,unix_secs,") && h.contains("avg(cpu_usage_percent)")
        ),
        "{text}"
    );
    assert_eq!(lines.count(), 5, "one row per reading: {text}");

    let (_, health) = get_json(&format!("{}/health", consumer.address)).await;
    assert_eq!(health["history"]["up"], true, "{health}");
    assert_eq!(health["history"]["backend"], "sqlite", "{health}");
    tap.cleanup().await;
}

#[tokio::test]
async fn bad_parameters_are_answered_400_naming_the_parameter() {
    let consumer = spawn_consumer(&unique_exchange("history-bad"), &[]).await;
    recording(&consumer).await;
    for (query, parameter) in [
        ("from=yesterday", "from"),
        ("to=12:00", "to"),
        ("from=200&to=100", "from"),
        ("points=0", "points"),
        ("points=many", "points"),
        ("format=xml", "format"),
    ] {
        let (status, body) =
            get_json(&format!("{}/api/hosts/x/history?{query}", consumer.address)).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("{parameter}:"))),
            "{query}: {body}"
        );
    }
    let (status, _) = get_json(&format!("{}/api/hosts/nobody/history", consumer.address)).await;
    assert_eq!(status, 404, "a host the store never saw");
    let off = spawn_consumer(&unique_exchange("history-off"), &[("HISTORY_URL", "off")]).await;
    let (status, body) = get_json(&format!("{}/api/hosts/x/history", off.address)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["reason"], "history_off", "{body}");
}

#[tokio::test]
async fn a_restarted_consumer_still_shows_the_hours_before() {
    let exchange = unique_exchange("history-restart");
    let data_dir = fresh_data_dir();
    let vars = [("DATA_DIR", data_dir.as_str())];
    let first = spawn_consumer(&exchange, &vars).await;
    recording(&first).await;
    let tap = Tap::bind(&exchange).await;
    let two_hours_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    for i in 0..3u64 {
        let at = two_hours_ago + chrono::Duration::seconds(i as i64);
        tap.publish_raw(&reading("kept", i + 1, at, 42.0)).await;
    }
    // Around that time, at one point a second.
    let (from, to) = (
        two_hours_ago.timestamp() - 60,
        two_hours_ago.timestamp() + 60,
    );
    let url =
        |address: &str| format!("{address}/api/hosts/kept/history?from={from}&to={to}&points=3600");
    let written = first.history.clone();
    wait_until("three readings recorded", || written.state().up).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get_json(&url(&first.address)).await;
        let n = body["times"].as_array().map_or(0, Vec::len);
        if status == 200 && n == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.stop.stop(true).await;
    let _ = first.stopped.await;

    let second = spawn_consumer(&exchange, &vars).await;
    recording(&second).await;
    let (status, body) = get_json(&url(&second.address)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["times"].as_array().map_or(0, Vec::len), 3, "{body}");
    let (_, hosts) = get_json(&format!("{}/api/hosts", second.address)).await;
    let kept = hosts
        .as_array()
        .expect("array")
        .iter()
        .find(|h| h["host"] == "kept")
        .unwrap_or_else(|| panic!("a host known only from history is listed: {hosts}"));
    assert_eq!(kept["offline"], true, "{kept}");
    // A live host beside it: `?only=offline` leaves the live ones out.
    tap.publish_raw(&reading("alive", 1, chrono::Utc::now(), 5.0))
        .await;
    let live = second.live.clone();
    wait_until("the live host is shown", || live.hosts().len() == 1).await;
    let (status, all) = get_json(&format!("{}/api/hosts", second.address)).await;
    assert_eq!(status, 200);
    assert!(
        all.as_array()
            .expect("array")
            .iter()
            .any(|h| h["host"] == "alive"),
        "{all}"
    );
    let (status, offline) = get_json(&format!("{}/api/hosts?only=offline", second.address)).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = offline
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|h| h["host"].as_str())
        .collect();
    assert_eq!(names, ["kept"], "{offline}");
    let (status, bad) = get_json(&format!("{}/api/hosts?only=dead", second.address)).await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"]
            .as_str()
            .is_some_and(|m| m.starts_with("only:")),
        "the error names the parameter: {bad}"
    );
    tap.cleanup().await;
}

#[tokio::test]
async fn two_consumers_on_one_postgres_store_each_reading_once_and_share_the_work() {
    let db = shared::testing::postgres::PgDatabase::create().await;
    let exchange = unique_exchange("history-pg");
    let vars = [("HISTORY_URL", db.url.as_str())];
    let a = spawn_consumer(&exchange, &vars).await;
    let b = spawn_consumer(&exchange, &vars).await;
    recording(&a).await;
    recording(&b).await;
    assert_eq!(
        a.history.state().queue,
        b.history.state().queue,
        "one store, one queue"
    );
    let tap = Tap::bind(&exchange).await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(600);
    let count = 200u64;
    for i in 0..count {
        let at = start + chrono::Duration::seconds(i as i64);
        tap.publish_raw(&reading("pg-host", i + 1, at, 1.0)).await;
    }
    let written = |c: &TestConsumer| {
        shared::testing::metric(
            &prometheus_text(&c.metrics.registry),
            "hostpulse_history_readings_written_total",
        )
        .unwrap_or(0.0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while written(&a) + written(&b) < count as f64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} + {} written",
            written(&a),
            written(&b)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(written(&a) + written(&b), count as f64, "each reading once");
    assert!(
        written(&a) > 0.0 && written(&b) > 0.0,
        "both consumers recorded: {} and {}",
        written(&a),
        written(&b)
    );
    let body = cpu_history(&a, "pg-host", count as usize).await;
    assert_eq!(
        body["times"].as_array().map_or(0, Vec::len),
        count as usize,
        "one point per reading, none twice"
    );
    tap.cleanup().await;
}

fn prometheus_text(registry: &prometheus::Registry) -> String {
    let mut out = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut out,
    )
    .expect("encodes");
    String::from_utf8(out).expect("UTF-8")
}

#[tokio::test]
async fn readings_published_while_the_consumer_was_killed_are_all_recorded_after_it_restarts() {
    use std::process::{Command, Stdio};
    let exchange = unique_exchange("history-kill");
    let data_dir = fresh_data_dir();
    let start = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_consumer"))
            .env("CONSUMER_ENV_FILE", "/dev/null")
            .env("AMQP_URL", amqp_url())
            .env("EXCHANGE_NAME", &exchange)
            .env("APP_PORT", port.to_string())
            .env("DATA_DIR", &data_dir)
            .env("HISTORY_QUEUE_EXPIRES_SECS", "60")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the consumer runs")
    };
    let port = shared::testing::private_broker::free_port();
    let health = format!("http://127.0.0.1:{port}/health");
    let recording_binary = || async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(&health).await {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    if v["history"]["queue_connected"] == true {
                        return;
                    }
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "never recorded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut child = start(port);
    recording_binary().await;
    let tap = Tap::bind(&exchange).await;
    let base = chrono::Utc::now() - chrono::Duration::seconds(300);
    for i in 0..10u64 {
        let at = base + chrono::Duration::seconds(i as i64);
        tap.publish_raw(&reading("killed", i + 1, at, 5.0)).await;
    }
    // Killed mid-stream, with no chance to finish anything.
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    for i in 10..60u64 {
        let at = base + chrono::Duration::seconds(i as i64);
        tap.publish_raw(&reading("killed", i + 1, at, 5.0)).await;
    }
    let mut child = start(port);
    recording_binary().await;
    let to = chrono::Utc::now().timestamp() + 1;
    let url = format!(
        "http://127.0.0.1:{port}/api/hosts/killed/history?from={}&to={to}&points=3600",
        to - 3600
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        let (status, body) = get_json(&url).await;
        let n = body["times"].as_array().map_or(0, Vec::len);
        if status == 200 && n >= 60 {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let times: Vec<i64> = got["times"]
        .as_array()
        .expect("times")
        .iter()
        .filter_map(|t| t.as_i64())
        .collect();
    let expected: Vec<i64> = (0..60).map(|i| base.timestamp() + i).collect();
    assert_eq!(times, expected, "every reading, once, in order");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    tap.cleanup().await;
}
