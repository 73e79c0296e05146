//! `/publish` throughput at 32 concurrent connections (each answer is a confirmed publish),
//! against the floor in the same run: bare confirmed publishes on one lapin channel, one at a
//! time and 32 in flight. Bounded by time.
//!
//! `cargo run --release -p bench --bin throughput -- [seconds=10]`

use bench::Service;
use lapin::options::BasicPublishOptions;
use shared::testing::unique_exchange;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;

async fn product(publisher: &Service, run: Duration) -> f64 {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + run;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, done, url) = (http.clone(), Arc::clone(&done), publisher.url("/publish"));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let response = http.post(&url).send().await.expect("sent");
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / run.as_secs_f64()
}

async fn floor(run: Duration, body: &[u8], in_flight: usize) -> f64 {
    let (_connection, channel, exchange) = bench::floor_channel("bench-floor-rate").await;
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + run;
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (channel, done, exchange, body) = (
            channel.clone(),
            Arc::clone(&done),
            exchange.clone(),
            body.to_vec(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                channel
                    .basic_publish(
                        exchange.as_str().into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &body,
                        Default::default(),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    done.load(Ordering::Relaxed) as f64 / run.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let run = Duration::from_secs(seconds);
    let publisher = Service::start(
        "publisher",
        &unique_exchange("bench-rate"),
        &[("PUBLISH_INTERVAL_SECS", "0")],
    )
    .await;
    let body = reqwest::get(publisher.url("/api/reading"))
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("body");
    let one = floor(run, &body, 1).await;
    let many = floor(run, &body, CONCURRENCY).await;
    let rate = product(&publisher, run).await;
    println!("| confirmed publishes | per second | ÷ floor (32 in flight) |");
    println!("|---|---|---|");
    println!(
        "| floor: bare lapin, 1 in flight | {one:.0} | {:.2} |",
        one / many
    );
    println!("| floor: bare lapin, {CONCURRENCY} in flight | {many:.0} | 1.00 |");
    println!(
        "| `/publish`, {CONCURRENCY} connections | {rate:.0} | {:.2} |",
        rate / many
    );
}
