//! A hand-over nobody notices (issue 25): two consumer processes on one PostgreSQL store and
//! the real broker; the active evaluator is killed with SIGKILL while hosts keep publishing at
//! 1 Hz. The successor fires no `host_down` for the hosts that kept publishing, tells the alert
//! active at the hand-over no second time, and reports the host that stopped at the kill
//! within 8 s of its last reading. And a restarted evaluator refills its windows from the
//! history store, so a mean is judged at once.

use crate::alerts::{rules_file, webhook_receiver};
use crate::alerts_silence::reading_at;
use shared::testing::{amqp_url, metric, unique_exchange, Tap};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A consumer binary, killed (SIGKILL) when dropped, its data folder removed.
struct Consumer {
    child: Child,
    port: u16,
    data_dir: crate::helpers::DataDir,
}

impl Consumer {
    fn start(exchange: &str, vars: &[(&str, &str)]) -> Self {
        let port = shared::testing::private_broker::free_port();
        let data_dir = crate::helpers::fresh_data_dir();
        let mut command = Command::new(env!("CARGO_BIN_EXE_consumer"));
        command
            .env("CONSUMER_ENV_FILE", "/dev/null")
            .env("AMQP_URL", amqp_url())
            .env("EXCHANGE_NAME", exchange)
            .env("APP_PORT", port.to_string())
            .env("DATA_DIR", data_dir.as_str())
            .env("HISTORY_QUEUE_EXPIRES_SECS", "60")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        for (name, value) in vars {
            command.env(name, value);
        }
        let child = command.spawn().expect("the consumer runs");
        Self {
            child,
            port,
            data_dir,
        }
    }

    /// Waits until it records history (its store is open and its queues are consuming).
    async fn ready(&self) {
        let health = format!("http://127.0.0.1:{}/health", self.port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(&health).await {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    if v["history"]["queue_connected"] == true {
                        return;
                    }
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Alert events of `kind` this consumer evaluated.
    async fn evaluated(&self, kind: &str) -> f64 {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .expect("sent")
            .text()
            .await
            .expect("text");
        let series = format!("hostpulse_alert_events_total{{kind=\"{kind}\"}}");
        metric(&text, &series).unwrap_or(0.0)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A reading of `host` declaring 1 s, with `cpu` %, collected now.
fn reading(host: &str, seq: u64, cpu: f64) -> (Vec<u8>, chrono::DateTime<chrono::Utc>) {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    let at = chrono::Utc::now();
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["interval_secs"] = 1.into();
    v["cpu"]["usage_percent"] = cpu.into();
    v["collected_at"] = at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    (serde_json::to_vec(&v).expect("json"), at)
}

#[tokio::test]
async fn killing_the_active_evaluator_pages_nobody_for_hosts_that_kept_publishing() {
    let db = shared::testing::postgres::PgDatabase::create().await;
    let exchange = unique_exchange("alerts-kill");
    let suffix = exchange[exchange.len() - 8..].to_owned();
    let (hot, calm, stops) = (
        format!("hot-{suffix}"),
        format!("calm-{suffix}"),
        format!("stops-{suffix}"),
    );
    let (hook, mut notices) = webhook_receiver().await;
    let rules = rules_file("[rules.cpu]\nwarning = { level = 50, clear = 40 }\naverage = \"0s\"\n");
    let vars = [
        ("HISTORY_URL", db.url.as_str()),
        ("ALERT_RULES_FILE", rules.as_str()),
        ("ALERT_WEBHOOK_URL", hook.as_str()),
    ];
    let first = Consumer::start(&exchange, &vars);
    first.ready().await;
    let second = Consumer::start(&exchange, &vars);
    second.ready().await;
    let tap = Arc::new(Tap::bind(&exchange).await);

    // Three hosts at 1 Hz; `stops` stops when told, and its last reading's time is kept.
    let stop_one = Arc::new(AtomicBool::new(false));
    let stop_all = Arc::new(AtomicBool::new(false));
    let last_of_stopped = Arc::new(std::sync::Mutex::new(None));
    let publishing = {
        let (tap, stop_one, stop_all, last) = (
            Arc::clone(&tap),
            Arc::clone(&stop_one),
            Arc::clone(&stop_all),
            Arc::clone(&last_of_stopped),
        );
        let (hot, calm, stops) = (hot.clone(), calm.clone(), stops.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut seq = 0;
            while !stop_all.load(Ordering::SeqCst) {
                tick.tick().await;
                seq += 1;
                tap.publish_raw(&reading(&hot, seq, 90.0).0).await;
                tap.publish_raw(&reading(&calm, seq, 5.0).0).await;
                if !stop_one.load(Ordering::SeqCst) {
                    let (body, at) = reading(&stops, seq, 5.0);
                    tap.publish_raw(&body).await;
                    *last.lock().expect("lock") = Some(at);
                }
            }
        })
    };

    // The CPU alert fires once, told by the active evaluator.
    let fired = tokio::time::timeout(Duration::from_secs(20), notices.recv())
        .await
        .expect("a notice")
        .expect("open");
    assert_eq!(fired["host"], hot.as_str(), "{fired}");
    assert_eq!(fired["events"][0]["rule"], "cpu", "{fired}");
    let (mut active, standby) = if first.evaluated("fired").await == 1.0 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(active.evaluated("fired").await, 1.0);
    // The state was kept when the alert fired; the hosts publish on for several intervals.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // One host stops, and the active evaluator dies with it.
    stop_one.store(true, Ordering::SeqCst);
    // Its last reading is on the broker before the kill.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let last = last_of_stopped
        .lock()
        .expect("lock")
        .expect("the host published");
    active.kill();

    // The first notice after the kill is the stopped host's down, from the successor; notices
    // go out in the order they were made, so a false down or a repeated firing would be first.
    let down = tokio::time::timeout(Duration::from_secs(30), notices.recv())
        .await
        .expect("the stopped host is reported")
        .expect("open");
    assert_eq!(down["host"], stops.as_str(), "{down}");
    let events = down["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{down}");
    assert_eq!(events[0]["rule"], "host_down", "{down}");
    assert_eq!(events[0]["kind"], "firing", "{down}");
    let started: chrono::DateTime<chrono::Utc> = events[0]["started_at"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("started_at");
    let after = (started - last).num_milliseconds();
    assert!(
        (3_000..=8_000).contains(&after),
        "down {after} ms after its last reading"
    );
    assert_eq!(
        standby.evaluated("fired").await,
        1.0,
        "the successor fired only the down"
    );

    // Three more intervals of the others publishing: nothing else is told.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_all.store(true, Ordering::SeqCst);
    let _ = publishing.await;
    assert!(
        notices.try_recv().is_err(),
        "no host_down for hosts that kept publishing, no alert told again"
    );
    assert_eq!(standby.evaluated("fired").await, 1.0);
    drop(standby);
    if let Ok(tap) = Arc::try_unwrap(tap) {
        tap.cleanup().await;
    }
    let _ = std::fs::remove_file(rules);
}

#[tokio::test]
async fn a_restarted_evaluator_judges_a_mean_at_once_from_the_readings_in_the_store() {
    use crate::helpers::{fresh_data_dir, spawn_consumer};
    let exchange = unique_exchange("alerts-refill");
    let host = format!("warm-{}", &exchange[exchange.len() - 8..]);
    let (hook, mut notices) = webhook_receiver().await;
    let rules =
        rules_file("[rules.cpu]\nwarning = { level = 50, clear = 40 }\naverage = \"20s\"\n");
    let data_dir = fresh_data_dir();
    let vars = [
        ("ALERT_RULES_FILE", rules.as_str()),
        ("ALERT_WEBHOOK_URL", hook.as_str()),
        ("DATA_DIR", data_dir.as_str()),
    ];
    // A consumer that records history but does not evaluate: 20 s of a host at 97 %.
    let mut recording = vars.to_vec();
    recording.push(("ALERTS", "off"));
    let recorder = spawn_consumer(&exchange, &recording).await;
    let health = format!("{}/health", recorder.address);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body: serde_json::Value = reqwest::get(&health)
            .await
            .expect("sent")
            .json()
            .await
            .unwrap_or_default();
        if body["history"]["queue_connected"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never records: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tap = Tap::bind(&exchange).await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(20);
    for i in 0..20u64 {
        let at = start + chrono::Duration::seconds(i as i64);
        tap.publish_raw(&reading_at(&host, i + 1, 97.0, at)).await;
    }
    let url = format!(
        "{}/api/hosts/{host}/history?from={}&to={}&points=3600",
        recorder.address,
        start.timestamp() - 1,
        start.timestamp() + 60
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body: serde_json::Value = reqwest::get(&url)
            .await
            .expect("sent")
            .json()
            .await
            .unwrap_or_default();
        if body["times"].as_array().map_or(0, Vec::len) >= 20 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not recorded: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    recorder.stop.stop(true).await;
    let _ = recorder.stopped.await;

    // The evaluator starts with empty windows; one reading, and the mean of the 20 s the
    // store holds is judged at once.
    let _evaluator = spawn_consumer(&exchange, &vars).await;
    // Its alerts queue is bound and consumed before the reading is sent (the consumer is
    // "up" once its live queue is; the alerts queue follows on a connection of its own).
    alerts_queue_consumed(&format!("{exchange}.alerts")).await;
    tap.publish_raw(&reading_at(&host, 21, 97.0, chrono::Utc::now()))
        .await;
    let fired = crate::alerts::next_notice(&mut notices, &host, 20).await;
    let event = &fired["events"][0];
    assert_eq!(event["rule"], "cpu", "{fired}");
    assert_eq!(event["kind"], "firing", "{fired}");
    assert_eq!(event["value"], 97.0, "{fired}");
    tap.cleanup().await;
    let _ = std::fs::remove_file(rules);
}

/// Waits until `queue` exists and has a consumer.
async fn alerts_queue_consumed(queue: &str) {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("broker");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // A passive declare of a queue not there yet closes its channel: one per attempt.
        let channel = connection.create_channel().await.expect("channel");
        let declared = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await;
        if declared.is_ok_and(|q| q.consumer_count() >= 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{queue} never consumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = connection.close(200, "test done".into()).await;
}
