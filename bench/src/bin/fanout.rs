//! Fan-out: one consumer with 1,000, 5,000 and 10,000 WebSocket clients, each reading every
//! frame, while readings arrive at 10 per second; a fresh consumer for each crowd, so one
//! crowd's history and memory do not weigh on the next. For each: frames delivered per second
//! (and the share of those due), publish → client delivery latency (median, p99), the
//! consumer's RSS and CPU. Readings are published straight to the exchange, each carrying the
//! moment it was sent; clients run in this process on a thread of their own, on the same two
//! cores as the consumer and RabbitMQ.
//!
//! `cargo run --release -p bench --bin fanout -- [crowds=1000,5000,10000] [seconds=10] [rate=10]`

use bench::{cpu_seconds, median_and, now_us, rss_kib, spawn_readers, Service, SENT_FIELD};
use lapin::options::BasicPublishOptions;
use std::time::{Duration, Instant};

/// Readings published before each measurement, so every client is past its snapshot.
const WARM_UP: Duration = Duration::from_secs(2);

/// A typical reading, as a publisher sends it.
const READING: &str = include_str!("../../../consumer/tests/fixtures/reading.json");

/// Publishes readings at `rate` per second for `run`; with `stamped`, each carries the moment
/// it was sent in [`SENT_FIELD`].
async fn publish_at(
    channel: &lapin::Channel,
    exchange: &str,
    rate: u32,
    run: Duration,
    stamped: bool,
    seq: &mut u64,
) -> u64 {
    let mut sent = 0;
    let mut reading: serde_json::Value = serde_json::from_str(READING).expect("fixture");
    reading["host"] = "fanout-bench".into();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate);
    let end = Instant::now() + run;
    while Instant::now() < end {
        ticks.tick().await;
        *seq += 1;
        reading["seq"] = (*seq).into();
        reading["collected_at"] = chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into();
        if stamped {
            reading[SENT_FIELD] = now_us().into();
        }
        let body = serde_json::to_vec(&reading).expect("JSON");
        channel
            .basic_publish(
                exchange.into(),
                "".into(),
                BasicPublishOptions::default(),
                &body,
                Default::default(),
            )
            .await
            .expect("publish");
        sent += 1;
    }
    sent
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let crowds: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "1000,5000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let rate: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let window = Duration::from_secs(seconds);
    bench::raise_open_file_limit();

    let (_connection, channel, exchange) = bench::floor_channel("bench-fanout").await;
    // The clients read on a runtime of their own, as browsers elsewhere would.
    let crowd_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the clients");
    let mut seq = 0;

    println!("readings at {rate}/s, {seconds} s per crowd, a fresh consumer for each");
    println!();
    println!("| clients | frames/s delivered | of those due | latency median | p99 | consumer RSS idle → max | consumer CPU (% of one core) |");
    println!("|---|---|---|---|---|---|---|");
    for &clients in &crowds {
        let consumer = Service::start("consumer", &exchange, &[]).await;
        let idle_rss = rss_kib(consumer.pid());
        let port = consumer.port;
        let connecting = Instant::now();
        let readers = crowd_runtime
            .spawn(async move { spawn_readers(port, clients).await })
            .await
            .expect("clients connect");
        let connected_in = connecting.elapsed();
        publish_at(&channel, &exchange, rate, WARM_UP, false, &mut seq).await;

        let frames_before = readers.frames();
        let cpu_before = cpu_seconds(consumer.pid());
        let started = Instant::now();
        let mut rss_max = 0;
        let mut stamped = 0;
        let sampling = async {
            loop {
                rss_max = rss_max.max(rss_kib(consumer.pid()));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        };
        tokio::select! {
            sent = publish_at(&channel, &exchange, rate, window, true, &mut seq) => stamped = sent,
            () = sampling => {}
        }
        // Let the last readings reach every client before counting.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = (cpu_seconds(consumer.pid()) - cpu_before) / elapsed * 100.0;
        let frames = readers.frames() - frames_before;
        let still_open = readers.open();
        let (_, mut latencies) = readers.stop_with_latencies().await;
        let due = clients as f64 * stamped as f64;
        let (p50, p99) = median_and(&mut latencies, 0.99);
        println!(
            "| {clients} ({still_open} still open; connected in {:.1} s) | {:.0} | {:.1} % | {p50:.1} ms | {p99:.1} ms | {:.1} → {:.1} MiB | {cpu:.0} % |",
            connected_in.as_secs_f64(),
            frames as f64 / elapsed,
            latencies.len() as f64 / due * 100.0,
            idle_rss as f64 / 1024.0,
            rss_max as f64 / 1024.0,
        );
        bench::summary::add(bench::summary::Row {
            figure: format!(
                "fan-out to {clients} pages at {rate} readings/s: frames delivered of those due"
            ),
            reference: "–".into(),
            hostpulse: format!(
                "{:.1} % (p99 {p99:.0} ms)",
                latencies.len() as f64 / due * 100.0
            ),
            ratio: None,
            goal: "100 %",
        });
        drop(consumer);
    }
    crowd_runtime.shutdown_background();
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
}
