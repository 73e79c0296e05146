//! Footprint: the publisher at 1 Hz (RSS median and max, CPU % of one core, bytes per second
//! to the broker, on a private RabbitMQ node so its byte counters hold only this connection);
//! the consumer idle and with 1000 clients; each binary's start-up time to `/ready`.
//!
//! `cargo run --release -p bench --bin footprint -- [seconds=60]`

use bench::{cpu_seconds, median_and, open_socket, rss_kib, Service};
use shared::testing::private_broker::PrivateBroker;
use shared::testing::unique_exchange;
use std::time::{Duration, Instant};

/// Bytes the broker received on all its connections (`recv_oct`).
fn broker_received(broker: &PrivateBroker) -> u64 {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "-n",
            &broker.node,
            "list_connections",
            "recv_oct",
            "-q",
            "--no-table-headers",
        ])
        .output()
        .expect("rabbitmqctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum()
}

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
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start(""))
        .await
        .expect("node");
    let url = broker.url();
    let exchange = unique_exchange("bench-footprint");
    let publisher = Service::start(
        "publisher",
        &exchange,
        &[("AMQP_URL", &url), ("PUBLISH_INTERVAL_SECS", "1")],
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, bytes0, t0) = (
        cpu_seconds(publisher.pid()),
        broker_received(&broker),
        Instant::now(),
    );
    let mut rss = Vec::new();
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(rss_kib(publisher.pid()) as f64 / 1024.0);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(publisher.pid()) - cpu0) / elapsed * 100.0;
    let wire = (broker_received(&broker) - bytes0) as f64 / elapsed;
    let (rss_median, rss_max) = median_and(&mut rss, 1.0);
    let reading = reqwest::get(publisher.url("/api/reading"))
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("body");
    drop(publisher);

    let consumer = Service::start("consumer", &exchange, &[("AMQP_URL", &url)]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_kib(consumer.pid()) as f64 / 1024.0;
    let mut clients = Vec::new();
    for _ in 0..1000 {
        clients.push(open_socket(&consumer).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = rss_kib(consumer.pid()) as f64 / 1024.0;
    drop(clients);
    drop(consumer);

    let (pub_start, pub_start_max) = startup("publisher", 5).await;
    let (con_start, con_start_max) = startup("consumer", 5).await;
    println!("| footprint | figure |");
    println!("|---|---|");
    println!("| publisher at 1 Hz, RSS median / max over {seconds} s | {rss_median:.1} MiB / {rss_max:.1} MiB |");
    println!("| publisher at 1 Hz, CPU | {cpu:.2} % of one core |");
    println!(
        "| publisher at 1 Hz, bytes to the broker | {wire:.0} B/s (reading body {} B) |",
        reading.len()
    );
    println!("| consumer idle, RSS | {idle:.1} MiB |");
    println!("| consumer with 1000 WebSocket clients, RSS | {busy:.1} MiB |");
    println!("| start-up to `/ready`, publisher (median / max of 5) | {pub_start:.0} ms / {pub_start_max:.0} ms |");
    println!("| start-up to `/ready`, consumer (median / max of 5) | {con_start:.0} ms / {con_start_max:.0} ms |");
    drop(broker);
}
