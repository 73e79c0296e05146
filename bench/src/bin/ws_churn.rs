//! Does the consumer give memory back? Connects and closes WebSocket clients in a loop
//! (bounded count, loopback only) against the release-built consumer and reports its RSS
//! before, at the end of each batch, and after a pause.
//!
//! `cargo run --release -p bench --bin ws_churn -- [clients=5000] [batches=5]`

use bench::{open_socket, rss_kib, Service};
use shared::testing::unique_exchange;
use std::time::Duration;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let batches: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let consumer = Service::start("consumer", &unique_exchange("bench-churn"), &[]).await;
    // Warm up: the first connections grow pools that stay.
    for _ in 0..200 {
        let mut socket = open_socket(&consumer).await;
        let _ = socket.close(None).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(consumer.pid());
    println!("consumer RSS before: {:.1} MiB", before as f64 / 1024.0);
    for batch in 1..=batches {
        for _ in 0..clients / batches {
            let mut socket = open_socket(&consumer).await;
            let _ = socket.close(None).await;
        }
        println!(
            "after {} connect/close cycles: {:.1} MiB",
            batch * clients / batches,
            rss_kib(consumer.pid()) as f64 / 1024.0
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(consumer.pid());
    println!(
        "consumer RSS: {:.1} MiB before, {:.1} MiB after {clients} clients (ratio {:.2})",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after as f64 / before as f64
    );
}
