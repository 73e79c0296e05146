//! Alerts: how soon a notification arrives, and what evaluating costs.
//! - crossing: a reading over a level (rule with `for` 0) published to the exchange → the
//!   webhook request at a receiver this bench runs; median and p99 over `crossings`, each
//!   resolved before the next;
//! - down: hosts publishing every second stop, each at another point of the second → the
//!   "down" notification for each;
//! - CPU: one consumer's CPU with the default rules while 1,000 hosts publish at 1 Hz, against
//!   the same with `ALERTS=off`, alternating rounds on fresh exchanges.
//!
//! The release-built consumer, the local broker, loopback only; every loop bounded in count and
//! time.
//!
//! `cargo run --release -p bench --bin alerts -- [crossings=100] [down_hosts=10] [hosts=1000] [cpu_seconds=20] [rounds=2]`

use bench::{median_and, Service};
use futures_util::future::join_all;
use lapin::options::BasicPublishOptions;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const READING: &str = include_str!("../../../consumer/tests/fixtures/reading.json");
/// Fires at once over 50 % CPU, resolves at once under 40 %.
const RULES: &str = "[rules.cpu]\nwarning = { level = 50, clear = 40 }\naverage = \"0s\"\nfor = \"0s\"\nclear_for = \"0s\"\n";
/// Longest wait for any one notification.
const NOTICE_WAIT: Duration = Duration::from_secs(15);
/// CPU is measured after this much of a round: hosts appear, the store makes its rows.
const WARM_UP: Duration = Duration::from_secs(5);

/// A notification as the receiver got it: when it arrived, and its JSON.
type Arrival = (Instant, serde_json::Value);

/// A webhook receiver on loopback: answers every `POST` with 200 (keeping the connection), and
/// hands over each body with its arrival time.
async fn receiver() -> (String, mpsc::UnboundedReceiver<Arrival>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, tx.clone()));
        }
    });
    (url, rx)
}

/// One connection's requests, one after another.
async fn serve(mut stream: tokio::net::TcpStream, tx: mpsc::UnboundedSender<Arrival>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if buf.len() < end + 4 + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        }
        let arrived = Instant::now();
        if let Ok(body) = serde_json::from_slice(&buf[end + 4..end + 4 + length]) {
            let _ = tx.send((arrived, body));
        }
        buf.drain(..end + 4 + length);
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// A reading of `host` at 1 Hz with the given CPU use, dated now.
fn reading(template: &serde_json::Value, host: &str, seq: u64, cpu: f64) -> Vec<u8> {
    let mut v = template.clone();
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["interval_secs"] = 1.into();
    v["cpu"]["usage_percent"] = cpu.into();
    v["collected_at"] = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&v).expect("JSON")
}

/// Publishes one body and waits for the broker's confirmation.
async fn publish(channel: &lapin::Channel, exchange: &str, body: &[u8]) {
    channel
        .basic_publish(
            exchange.into(),
            "".into(),
            BasicPublishOptions::default(),
            body,
            Default::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirmed");
}

/// The next notification's event for `host` of `kind` (`firing`, `resolved`), within
/// [`NOTICE_WAIT`]; others are skipped.
async fn wait_for(
    notices: &mut mpsc::UnboundedReceiver<Arrival>,
    host: &str,
    rule: &str,
    kind: &str,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + NOTICE_WAIT;
    loop {
        let (at, notice) = tokio::time::timeout_at(deadline, notices.recv())
            .await
            .ok()??;
        let matches = notice["host"] == host
            && notice["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["rule"] == rule && e["kind"] == kind));
        if matches {
            return Some(at);
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Crossing → webhook, in ms, for each of `count` crossings (plus one unmeasured first).
async fn crossings(
    channel: &lapin::Channel,
    exchange: &str,
    notices: &mut mpsc::UnboundedReceiver<Arrival>,
    template: &serde_json::Value,
    count: usize,
) -> Vec<f64> {
    let host = "bench-crossing";
    let mut seq = 1;
    publish(channel, exchange, &reading(template, host, seq, 10.0)).await;
    let mut samples = Vec::with_capacity(count);
    for i in 0..=count {
        seq += 1;
        let sent = Instant::now();
        publish(channel, exchange, &reading(template, host, seq, 90.0)).await;
        let Some(fired) = wait_for(notices, host, "cpu", "firing").await else {
            eprintln!("crossing {i}: no notification within {NOTICE_WAIT:?}; stopping");
            break;
        };
        if i > 0 {
            samples.push(ms(fired - sent));
        }
        seq += 1;
        publish(channel, exchange, &reading(template, host, seq, 10.0)).await;
        if wait_for(notices, host, "cpu", "resolved").await.is_none() {
            eprintln!("crossing {i}: not resolved within {NOTICE_WAIT:?}; stopping");
            break;
        }
    }
    samples
}

/// Last reading → "down" notification, in ms, for `hosts` hosts publishing every second, the
/// k-th starting k/`hosts` of a second after the first.
async fn downs(
    channel: &lapin::Channel,
    exchange: &str,
    notices: &mut mpsc::UnboundedReceiver<Arrival>,
    template: &serde_json::Value,
    hosts: usize,
) -> Vec<f64> {
    const READINGS: u64 = 4;
    let names: Vec<String> = (0..hosts).map(|k| format!("bench-down-{k:03}")).collect();
    let publishers = names.iter().enumerate().map(|(k, host)| async move {
        tokio::time::sleep(Duration::from_secs(1) * k as u32 / hosts as u32).await;
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let mut last = Instant::now();
        for seq in 1..=READINGS {
            ticks.tick().await;
            last = Instant::now();
            publish(channel, exchange, &reading(template, host, seq, 5.0)).await;
        }
        (host.clone(), last)
    });
    let lasts: Vec<(String, Instant)> = join_all(publishers).await;
    let mut samples = Vec::with_capacity(hosts);
    let deadline = tokio::time::Instant::now() + NOTICE_WAIT;
    while samples.len() < hosts {
        let Ok(Some((at, notice))) = tokio::time::timeout_at(deadline, notices.recv()).await else {
            eprintln!(
                "down: {} of {hosts} notifications within {NOTICE_WAIT:?}",
                samples.len()
            );
            break;
        };
        let down = notice["events"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["rule"] == "host_down" && e["kind"] == "firing")
        });
        if let Some((_, last)) = lasts.iter().find(|(h, _)| notice["host"] == h.as_str()) {
            if down {
                samples.push(ms(at - *last));
            }
        }
    }
    samples
}

/// The consumer's count of messages received.
async fn received(consumer: &Service) -> f64 {
    let text = reqwest::get(consumer.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    shared::testing::metric(&text, "hostpulse_messages_received_total").unwrap_or(0.0)
}

/// One round: a fresh consumer (alerts on or off) while `hosts` hosts publish at 1 Hz for
/// `run`; its CPU after [`WARM_UP`] in % of one core, and whether it received every reading.
async fn cpu_round(
    template: &serde_json::Value,
    hosts: usize,
    run: Duration,
    alerts: bool,
) -> (f64, bool) {
    let (_connection, channel, exchange) = bench::floor_channel("bench-alerts-cpu").await;
    let switch = if alerts { "on" } else { "off" };
    let consumer = Service::start("consumer", &exchange, &[("ALERTS", switch)]).await;
    let names: Vec<String> = (0..hosts).map(|h| format!("bench-fleet-{h:04}")).collect();
    let started = Instant::now();
    let mut measured_from = None;
    let mut published = 0u64;
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    let mut seq = 0u64;
    // Each second in ten slices of a tenth of the hosts, as a fleet's readings spread out.
    while started.elapsed() < run {
        if measured_from.is_none() && started.elapsed() >= WARM_UP {
            measured_from = Some((Instant::now(), bench::cpu_seconds(consumer.pid())));
        }
        ticks.tick().await;
        let slice = (seq % 10) as usize;
        let second = seq / 10 + 1;
        let bodies: Vec<Vec<u8>> = names
            .iter()
            .skip(slice)
            .step_by(10)
            .map(|h| reading(template, h, second, 5.0))
            .collect();
        let confirms = join_all(bodies.iter().map(|b| async {
            channel
                .basic_publish(
                    exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    b,
                    Default::default(),
                )
                .await
                .expect("publish")
                .await
        }))
        .await;
        published += confirms.into_iter().filter(Result::is_ok).count() as u64;
        seq += 1;
    }
    let (from, cpu_before) = measured_from.expect("runs past the warm-up");
    let cpu = (bench::cpu_seconds(consumer.pid()) - cpu_before) / from.elapsed().as_secs_f64();
    // Kept up: everything published arrives (bounded wait for the tail).
    let mut got = received(&consumer).await;
    for _ in 0..50 {
        if got >= published as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = received(&consumer).await;
    }
    drop(consumer);
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    (cpu * 100.0, got >= published as f64)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut arg = |default: u64| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let count = arg(100) as usize;
    let down_hosts = arg(10).max(1) as usize;
    let hosts = arg(1000).max(10) as usize;
    let cpu_seconds = arg(20).max(WARM_UP.as_secs() + 5);
    let rounds = arg(2).max(1);
    let template: serde_json::Value = serde_json::from_str(READING).expect("fixture");

    let rules =
        std::env::temp_dir().join(format!("hostpulse-bench-rules-{}.toml", bench::free_port()));
    std::fs::write(&rules, RULES).expect("rules written");
    let (hook, mut notices) = receiver().await;
    let (_connection, channel, exchange) = bench::floor_channel("bench-alerts").await;
    let rules_path = rules.display().to_string();
    let consumer = Service::start(
        "consumer",
        &exchange,
        &[
            ("ALERT_RULES_FILE", rules_path.as_str()),
            ("ALERT_WEBHOOK_URL", hook.as_str()),
        ],
    )
    .await;
    let mut crossing = crossings(&channel, &exchange, &mut notices, &template, count).await;
    let mut down = downs(&channel, &exchange, &mut notices, &template, down_hosts).await;
    drop(consumer);
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    let _ = std::fs::remove_file(&rules);

    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mut kept_up = true;
    let run = Duration::from_secs(cpu_seconds);
    for _ in 0..rounds {
        for alerts in [true, false] {
            let (cpu, all) = cpu_round(&template, hosts, run, alerts).await;
            kept_up &= all;
            if alerts {
                on.push(cpu)
            } else {
                off.push(cpu)
            }
        }
    }

    let (crossing_median, crossing_p99) = median_and(&mut crossing, 0.99);
    let (down_median, down_max) = median_and(&mut down, 1.0);
    println!("| alerts | median | p99 / max | samples | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| reading over a level (`for` 0) → webhook request | {crossing_median:.1} ms | p99 {crossing_p99:.1} ms | {} | < 1 s |",
        crossing.len()
    );
    println!(
        "| 1 Hz host's last reading → \"down\" webhook request | {:.2} s | max {:.2} s | {} | < 5 s |",
        down_median / 1000.0,
        down_max / 1000.0,
        down.len()
    );
    bench::summary::add(bench::summary::Row {
        figure: "reading over a level → webhook, median".into(),
        reference: "–".into(),
        hostpulse: format!("{crossing_median:.1} ms"),
        ratio: None,
        goal: "< 1 s",
    });
    bench::summary::add(bench::summary::Row {
        figure: "1 Hz host's last reading → \"down\" webhook, max".into(),
        reference: "–".into(),
        hostpulse: format!("{:.2} s", down_max / 1000.0),
        ratio: None,
        goal: "< 8 s",
    });
    println!();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (cpu_on, cpu_off) = (mean(&on), mean(&off));
    println!("| consumer, {hosts} hosts at 1 Hz, default rules | CPU (% of one core) |");
    println!("|---|---|");
    println!(
        "| alerts on (evaluating) | {cpu_on:.1} % (rounds: {}) |",
        list(&on)
    );
    println!("| `ALERTS=off` | {cpu_off:.1} % (rounds: {}) |", list(&off));
    println!("| ratio on / off | {:.2} |", cpu_on / cpu_off);
    bench::summary::add(bench::summary::Row {
        figure: format!("consumer CPU at {hosts} hosts, alerts on"),
        reference: format!("`ALERTS=off` {cpu_off:.1} %"),
        hostpulse: format!("{cpu_on:.1} %"),
        ratio: Some(cpu_on / cpu_off),
        goal: "≤ 1.5 × off",
    });
    println!();
    println!(
        "CPU over {} s of each {cpu_seconds} s round, after a {} s warm-up; rounds alternate on and off. {}",
        cpu_seconds - WARM_UP.as_secs(),
        WARM_UP.as_secs(),
        if kept_up {
            "The consumer received every reading in every round."
        } else {
            "In some round the consumer did NOT receive every reading: the figures are a lower bound."
        }
    );
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|c| format!("{c:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}
