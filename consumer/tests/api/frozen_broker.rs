//! A frozen broker, as the person on call sees it: the real consumer binary on a private
//! RabbitMQ node that is frozen (SIGSTOP) for 15 s while fake hosts keep publishing.

use crate::alerts::reading;
use futures_util::StreamExt;
use lapin::options::BasicPublishOptions;
use shared::testing::private_broker::{free_port, PrivateBroker};
use shared::testing::{metric, unique_exchange};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOSTS: [&str; 3] = ["steady-a", "steady-b", "steady-c"];
const FROZEN_FOR: Duration = Duration::from_secs(15);

/// Fake hosts: each publishes a reading a second (1 s interval) until dropped; a publish the
/// frozen broker does not take is simply left behind, as a publisher's outbox would.
fn fake_hosts(url: String, exchange: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
            .await
            .expect("broker");
        let channel = connection.create_channel().await.expect("channel");
        shared::broker::declare_exchange(&channel, &exchange)
            .await
            .expect("exchange");
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        for seq in 1u64.. {
            ticks.tick().await;
            for host in HOSTS {
                let body = reading(host, seq, 10.0);
                let publish = channel.basic_publish(
                    exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default(),
                );
                let _ = tokio::time::timeout(Duration::from_millis(200), publish).await;
            }
        }
    })
}

/// The consumer process, killed if the test ends early (a failed assertion).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything the child writes, collected by a thread per stream.
fn capture(child: &mut std::process::Child) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let streams: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().expect("stdout")),
        Box::new(child.stderr.take().expect("stderr")),
    ];
    for mut stream in streams {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .expect("log")
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
    }
    log
}

async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON")
}

async fn get_text(url: &str) -> String {
    reqwest::get(url)
        .await
        .expect("answered")
        .text()
        .await
        .expect("text")
}

/// Polls `check` every 100 ms until it holds, for at most `secs`.
async fn eventually<F, Fut>(what: &str, secs: u64, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Notices received until `until`, by rule.
async fn notices_until(
    notices: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    until: tokio::time::Instant,
) -> Vec<serde_json::Value> {
    let mut got = Vec::new();
    while let Ok(Some(notice)) = tokio::time::timeout_at(until, notices.recv()).await {
        got.push(notice);
    }
    got
}

fn rules(notices: &[serde_json::Value]) -> Vec<(String, String)> {
    notices
        .iter()
        .flat_map(|n| n["events"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["rule"].as_str().unwrap_or("").to_owned(),
                e["kind"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_frozen_broker_is_one_pipeline_alert_no_host_down_and_nothing_unseen() {
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start(""))
        .await
        .expect("node starts");
    let url = broker.url();
    let exchange = unique_exchange("frozen");
    let (hook, mut notices) = crate::alerts::webhook_receiver().await;
    let (tap_connection, mut announced) = crate::helpers::alert_tap(&url).await;
    let port = free_port();
    let data_dir = crate::helpers::fresh_data_dir();
    let child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("CONSUMER_ENV_FILE", "/dev/null")
        .env("AMQP_URL", &url)
        .env("EXCHANGE_NAME", &exchange)
        .env("APP_PORT", port.to_string())
        .env("DATA_DIR", &data_dir)
        .env("RECONNECT_MAX_SECS", "2")
        .env("ALERT_WEBHOOK_URL", &hook)
        .env(
            "RUST_LOG",
            std::env::var("FROZEN_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the consumer runs");
    let mut child = Running(child);
    let log = capture(&mut child.0);
    let base = format!("http://127.0.0.1:{port}");
    let hosts = fake_hosts(url.clone(), exchange.clone());

    // Every host seen, and the evaluator hearing its canary.
    eventually("the consumer shows the three hosts", 60, || async {
        let Ok(answer) = reqwest::get(format!("{base}/api/hosts")).await else {
            return false;
        };
        let shown: serde_json::Value = answer.json().await.unwrap_or_default();
        shown.as_array().is_some_and(|a| a.len() == HOSTS.len())
    })
    .await;
    eventually("the evaluator hears its canary", 30, || async {
        let text = get_text(&format!("{base}/metrics")).await;
        metric(&text, "hostpulse_pipeline_canary_late_seconds").is_some_and(|late| late < 2.0)
    })
    .await;

    let (frozen_broker, thaw) = tokio::task::spawn_blocking(move || {
        let thaw = broker.freeze();
        (broker, thaw)
    })
    .await
    .expect("frozen");
    // SIGSTOP is the last thing freeze() does.
    let frozen = tokio::time::Instant::now();
    // Exactly one pipeline notice while frozen, and no host_down.
    let first = tokio::time::timeout_at(frozen + FROZEN_FOR, notices.recv())
        .await
        .unwrap_or_else(|_| {
            let metrics = std::process::Command::new("curl")
                .args(["-s", &format!("{base}/metrics")])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let pipeline: Vec<&str> = metrics
                .lines()
                .filter(|l| l.contains("pipeline") || l.contains("announce") || l.contains("notif"))
                .collect();
            panic!(
                "no notice while frozen; metrics: {pipeline:#?}\nlog:\n{}",
                log.lock().expect("log")
            )
        })
        .expect("receiver open");
    eprintln!(
        "frozen-broker notification: the pipeline alert reached the webhook {:.2} s after SIGSTOP",
        frozen.elapsed().as_secs_f64()
    );
    let mut during = vec![first];
    during.extend(notices_until(&mut notices, frozen + FROZEN_FOR).await);
    let told = rules(&during);
    assert_eq!(
        told,
        vec![("pipeline".to_owned(), "firing".to_owned())],
        "while frozen: {during:#?}"
    );
    assert!(
        during[0]["events"][0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("127.0.0.1:{}", frozen_broker.port))),
        "the text says which broker and how it is: {:#}",
        during[0]
    );
    // The consumer that made it shows it, though the broker carries nothing.
    let shown = get_json(&format!("{base}/api/alerts")).await;
    let active = shown["active"].as_array().cloned().unwrap_or_default();
    assert!(
        active.iter().any(|e| e["rule"] == "pipeline"),
        "shown while frozen: {shown:#}"
    );
    assert!(
        !active.iter().any(|e| e["rule"] == "host_down"),
        "{shown:#}"
    );
    // A page opened now shows it too: its snapshot carries the consumer's alerts.
    let (mut page, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .expect("the page's socket opens");
    let snapshot = crate::helpers::next_frame(&mut page, Duration::from_secs(10))
        .await
        .expect("a snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    assert!(
        snapshot["alerts"]["active"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["rule"] == "pipeline")),
        "the page is shown the pipeline alert: {:#}",
        snapshot["alerts"]
    );
    drop(page);

    drop(thaw);
    let thawed = tokio::time::Instant::now();
    let broker = frozen_broker;
    // The pipeline recovers; the hosts, still publishing, are heard within their grace: no
    // host_down then nor for as long again.
    let after = notices_until(&mut notices, thawed + Duration::from_secs(10)).await;
    let told = rules(&after);
    assert_eq!(
        told,
        vec![("pipeline".to_owned(), "resolved".to_owned())],
        "after the thaw: {after:#?}"
    );

    // The events made while frozen were announced once the broker could take them.
    let mut on_exchange = Vec::new();
    while let Ok(Some(Ok(delivery))) =
        tokio::time::timeout(Duration::from_secs(5), announced.next()).await
    {
        let event: serde_json::Value = serde_json::from_slice(&delivery.data).expect("JSON");
        on_exchange.push((event["rule"].clone(), event["kind"].clone()));
        if on_exchange.len() == 2 {
            break;
        }
    }
    assert_eq!(
        on_exchange,
        vec![
            ("pipeline".into(), "fired".into()),
            ("pipeline".into(), "resolved".into())
        ]
    );
    let shown = get_json(&format!("{base}/api/alerts")).await;
    assert!(
        shown["active"].as_array().is_some_and(|a| a.is_empty()),
        "{shown:#}"
    );
    let recent = shown["recent"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        recent.iter().filter(|e| e["rule"] == "pipeline").count(),
        1,
        "the resolved alert once, not again from the exchange's echo: {shown:#}"
    );
    let text = get_text(&format!("{base}/metrics")).await;
    assert!(
        metric(&text, "hostpulse_alert_announce_failures_total").is_some_and(|n| n >= 1.0),
        "counted: {text}"
    );
    assert_eq!(metric(&text, "hostpulse_alert_announce_pending"), Some(0.0));
    // The canary is never a host: not on the page, in the API or the host gauges.
    let hosts_shown = get_json(&format!("{base}/api/hosts")).await;
    assert_eq!(
        hosts_shown.as_array().map(Vec::len),
        Some(HOSTS.len()),
        "{hosts_shown:#}"
    );
    for line in text.lines().filter(|l| l.starts_with("hostpulse_host_")) {
        assert!(
            HOSTS
                .iter()
                .any(|h| line.contains(&format!("host=\"{h}\""))),
            "{line}"
        );
    }

    // A normal reconnect: every connection cut, the consumer comes back on its own.
    let consuming = |log: &Mutex<String>| {
        log.lock()
            .expect("log")
            .matches("consuming readings")
            .count()
    };
    let before = consuming(&log);
    let broker = tokio::task::spawn_blocking(move || {
        broker.rabbitmqctl(&["close_all_connections", "test: reconnect"]);
        broker
    })
    .await
    .expect("connections closed");
    eventually("the consumer reconnects", 30, || async {
        let health = get_json(&format!("{base}/health")).await;
        health["broker"]["connected"] == true && consuming(&log) >= before + 3
    })
    .await;
    let after_reconnect = notices_until(
        &mut notices,
        tokio::time::Instant::now() + Duration::from_secs(3),
    )
    .await;
    // (The fake hosts' own connection was cut too and they do not come back: their
    // host_down is right. The pipeline is not told of.)
    assert!(
        !rules(&after_reconnect)
            .iter()
            .any(|(rule, _)| rule == "pipeline"),
        "a reconnect is no pipeline alert: {after_reconnect:#?}"
    );

    hosts.abort();
    let _ = tap_connection.close(200, "test done".into()).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.0.wait()
    })
    .await;
    drop(broker);
    let _ = std::fs::remove_dir_all(&data_dir);
    let log = log.lock().expect("log").clone();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.is_empty(),
        "ERROR lines: {errors:#?}\n\nfull log:\n{log}"
    );
    assert!(
        log.contains("lost the broker; reconnecting"),
        "the reconnect is logged, at WARN: {log}"
    );
}
