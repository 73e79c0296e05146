//! Ingest: how many readings per second one consumer parses, stores and forwards, counted by
//! its own `/metrics` and by a WebSocket client that reads every frame. Two ways:
//! - live: readings published straight to the exchange as fast as the broker confirms them
//!   (a window of publishes in flight, from 100 hosts) while the consumer keeps up; on two
//!   shared cores this measures the broker and the publishing loop as much as the consumer;
//! - backlog: the consumer is frozen (SIGSTOP) while a backlog fills its queue, then thawed:
//!   the rate at which it drains is the consumer's own ceiling.
//!
//! Bounded by time and by count.
//!
//! `cargo run --release -p bench --bin ingest -- [seconds=10] [backlog=200000]`

use bench::{spawn_readers, Service};
use futures_util::stream::{FuturesUnordered, StreamExt};
use lapin::options::BasicPublishOptions;
use std::time::{Duration, Instant};

/// Unconfirmed publishes in flight.
const IN_FLIGHT: usize = 512;
/// Never more than this many readings, whatever the speed.
const MAX_READINGS: u64 = 2_000_000;
/// Distinct hosts the readings come from.
const HOSTS: usize = 100;

const READING: &str = include_str!("../../../consumer/tests/fixtures/reading.json");

/// The consumer's count of messages received (`hostpulse_messages_received_total`).
async fn received(consumer: &Service) -> f64 {
    let text = reqwest::get(consumer.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    shared::testing::metric(&text, "hostpulse_messages_received_total").unwrap_or(0.0)
}

/// Readings from `HOSTS` hosts, each with its own `seq`, ready to publish.
fn bodies(count: usize) -> Vec<Vec<u8>> {
    let mut reading: serde_json::Value = serde_json::from_str(READING).expect("fixture");
    let now = chrono::Utc::now();
    (0..count)
        .map(|i| {
            reading["host"] = format!("ingest-{:03}", i % HOSTS).into();
            reading["seq"] = (i as u64 + 1).into();
            // Distinct and in the past: the consumer shows a reading that comes twice once, and
            // places one from the future at its arrival.
            reading["collected_at"] = (now - chrono::Duration::milliseconds((count - i) as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into();
            serde_json::to_vec(&reading).expect("JSON")
        })
        .collect()
}

/// Publishes `bodies` round and round, confirmed, for `run` or `limit` readings; returns how
/// many.
async fn publish_for(
    channel: &lapin::Channel,
    exchange: &str,
    bodies: &[Vec<u8>],
    run: Duration,
    limit: u64,
) -> u64 {
    let started = Instant::now();
    let mut confirmations = FuturesUnordered::new();
    let mut published = 0u64;
    while started.elapsed() < run && published < limit {
        while confirmations.len() < IN_FLIGHT && published < limit {
            let body = &bodies[published as usize % bodies.len()];
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    body,
                    Default::default(),
                )
                .await
                .expect("publish");
            confirmations.push(confirm);
            published += 1;
        }
        if let Some(confirmed) = confirmations.next().await {
            confirmed.expect("confirmed");
        }
    }
    while let Some(confirmed) = confirmations.next().await {
        confirmed.expect("confirmed");
    }
    published
}

/// Sends a signal (`STOP`, `CONT`) to a process.
fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// The backlog way: returns (readings, seconds to drain them, frames forwarded meanwhile,
/// consumer CPU % of one core, whether the client was dropped as too slow).
async fn drain_backlog(
    channel: &lapin::Channel,
    exchange: &str,
    bodies: &[Vec<u8>],
    backlog: u64,
) -> (f64, f64, u64, f64, bool) {
    let limit = backlog.to_string();
    let consumer = Service::start(
        "consumer",
        exchange,
        &[
            ("QUEUE_MAX_LENGTH", limit.as_str()),
            // Frozen for a while: its heartbeats must not time out meanwhile.
            ("AMQP_HEARTBEAT_SECS", "120"),
        ],
    )
    .await;
    let reader = spawn_readers(consumer.port, 1).await;
    let before = received(&consumer).await;
    signal(consumer.pid(), "STOP");
    let queued = publish_for(channel, exchange, bodies, Duration::from_secs(60), backlog).await;
    let frames_before = reader.frames();
    let cpu_before = bench::cpu_seconds(consumer.pid());
    let thawed = Instant::now();
    signal(consumer.pid(), "CONT");
    let mut got = before;
    while got - before < queued as f64 && thawed.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        got = received(&consumer).await;
    }
    let took = thawed.elapsed().as_secs_f64();
    let cpu = (bench::cpu_seconds(consumer.pid()) - cpu_before) / took * 100.0;
    let frames = reader.frames() - frames_before;
    let dropped = reader.open() == 0;
    reader.stop().await;
    (got - before, took, frames, cpu, dropped)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let backlog: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let run = Duration::from_secs(seconds);
    let (_connection, channel, exchange) = bench::floor_channel("bench-ingest").await;
    let consumer = Service::start("consumer", &exchange, &[]).await;
    let reader = spawn_readers(consumer.port, 1).await;
    // Enough distinct readings for the whole run: a repeat would be shown once, as it should.
    let bodies = bodies(400_000);

    let received_before = received(&consumer).await;
    let frames_before = reader.frames();
    let cpu_before = bench::cpu_seconds(consumer.pid());
    let started = Instant::now();
    let published = publish_for(&channel, &exchange, &bodies, run, MAX_READINGS).await;
    let publishing = started.elapsed().as_secs_f64();
    let received_at_end = received(&consumer).await;
    let frames_at_end = reader.frames();
    let cpu = (bench::cpu_seconds(consumer.pid()) - cpu_before) / publishing * 100.0;
    // What was still queued for the consumer arrives after; wait for it (bounded).
    let mut drained = received_at_end;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = received(&consumer).await;
        if now == drained {
            break;
        }
        drained = now;
    }
    let frames_total = reader.stop().await;
    drop(consumer);
    let (drained_count, drain_secs, drain_frames, drain_cpu, client_dropped) =
        drain_backlog(&channel, &exchange, &bodies, backlog).await;

    let per_sec = |n: f64| n / publishing;
    println!("| ingest ({HOSTS} hosts) | readings per second | consumer CPU (% of one core) |");
    println!("|---|---|---|");
    println!(
        "| live, {seconds} s: the broker confirmed ({IN_FLIGHT} in flight) | {:.0} | |",
        per_sec(published as f64)
    );
    println!(
        "| live: the consumer parsed and stored | {:.0} | {cpu:.0} % |",
        per_sec(received_at_end - received_before)
    );
    println!(
        "| live: one WebSocket client received | {:.0} | |",
        per_sec((frames_at_end - frames_before) as f64)
    );
    println!(
        "| backlog of {drained_count:.0} readings drained by a thawed consumer | {:.0} | {drain_cpu:.0} % |",
        drained_count / drain_secs
    );
    println!(
        "| backlog: one WebSocket client received | {:.0}{} | |",
        drain_frames as f64 / drain_secs,
        if client_dropped {
            " (then closed as too slow: it fell 1024 frames behind, and a page reconnects to a fresh snapshot)"
        } else {
            ""
        }
    );
    println!();
    println!(
        "Live: {:.0} of {published} readings received in all ({} frames).",
        drained - received_before,
        frames_total - frames_before,
    );
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
}
