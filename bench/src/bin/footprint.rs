//! Footprint of the consumer, idle and with 1000 WebSocket clients reading, and each binary's
//! start-up time to `/ready`. (The publisher's footprint at 1 Hz is measured beside its peers,
//! in `peers`.)
//!
//! `cargo run --release -p bench --bin footprint`

use bench::{median_and, rss_kib, spawn_readers, Service};
use shared::testing::unique_exchange;
use std::time::{Duration, Instant};

async fn startup(binary: &str, runs: usize) -> (f64, f64) {
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let service = Service::start(binary, &unique_exchange("bench-start"), &[]).await;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        drop(service);
    }
    median_and(&mut times, 1.0)
}

#[tokio::main]
async fn main() {
    bench::raise_open_file_limit();
    let exchange = unique_exchange("bench-footprint");
    let consumer = Service::start("consumer", &exchange, &[]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(consumer.pid()) as f64 / 1024.0;
    let readers = spawn_readers(consumer.port, 1000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = rss_kib(consumer.pid()) as f64 / 1024.0;
    readers.stop().await;
    drop(consumer);

    let (pub_start, pub_start_max) = startup("publisher", 5).await;
    let (con_start, con_start_max) = startup("consumer", 5).await;
    bench::summary::add(bench::summary::Row {
        figure: "consumer RSS idle → with 1000 pages".into(),
        reference: "–".into(),
        hostpulse: format!("{idle:.1} → {busy:.1} MiB"),
        ratio: None,
        goal: "< 50 MiB with 1000 pages",
    });
    println!("| footprint | figure |");
    println!("|---|---|");
    println!("| consumer idle, RSS | {idle:.1} MiB |");
    println!("| consumer with 1000 WebSocket clients, RSS | {busy:.1} MiB |");
    println!("| start-up to `/ready`, publisher (median / max of 5) | {pub_start:.0} ms / {pub_start_max:.0} ms |");
    println!("| start-up to `/ready`, consumer (median / max of 5) | {con_start:.0} ms / {con_start_max:.0} ms |");
}
