//! Recovery after a broker restart, with the product's default settings: a private RabbitMQ
//! node, the release-built consumer and publisher (publishing at 1 Hz), a WebSocket client.
//! Each round stops the broker for `outage` seconds, starts it, and times (from the moment
//! its port is open again) both services' `/ready` and the first back-filled reading on the
//! same WebSocket.
//!
//! `cargo run --release -p bench --bin broker_recovery -- [rounds=3] [outage_secs=5]`

use bench::{median_and, next_reading, open_socket, Service};
use shared::testing::private_broker::PrivateBroker;
use shared::testing::unique_exchange;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let outage: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start(""))
        .await
        .expect("node");
    let url = broker.url();
    let exchange = unique_exchange("bench-recovery");
    let consumer = Service::start("consumer", &exchange, &[("AMQP_URL", &url)]).await;
    let publisher = Service::start(
        "publisher",
        &exchange,
        &[("AMQP_URL", &url), ("PUBLISH_INTERVAL_SECS", "1")],
    )
    .await;
    let mut socket = open_socket(&consumer).await;
    let mut last_seq = next_reading(&mut socket, Duration::from_secs(5))
        .await
        .expect("readings flow")["seq"]
        .as_u64()
        .unwrap_or(0);
    let (mut ready_times, mut backfill_times, mut backfilled) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut broker = broker;
    for round in 1..=rounds {
        broker = tokio::task::spawn_blocking(move || {
            broker.stop_app();
            broker
        })
        .await
        .expect("stop");
        // What was published before the stop is still on its way: take it all first.
        while let Some(reading) = next_reading(&mut socket, Duration::from_millis(1500)).await {
            last_seq = reading["seq"].as_u64().unwrap_or(last_seq);
        }
        tokio::time::sleep(Duration::from_secs(outage)).await;
        broker = tokio::task::spawn_blocking(move || {
            broker.start_app();
            broker
        })
        .await
        .expect("start");
        let back = Instant::now();
        let first = next_reading(&mut socket, Duration::from_secs(120))
            .await
            .expect("readings resume");
        let first_at = back.elapsed();
        let first_seq = first["seq"].as_u64().unwrap_or(0);
        while !(publisher.ready() && consumer.ready()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ready_at = back.elapsed();
        // Everything taken during the outage arrives, in order, before live readings.
        let mut seq = first_seq;
        while seq < last_seq + outage {
            let next = next_reading(&mut socket, Duration::from_secs(10))
                .await
                .expect("back-fill");
            let n = next["seq"].as_u64().unwrap_or(0);
            assert_eq!(n, seq + 1, "in order, none missing");
            seq = n;
        }
        assert_eq!(
            first_seq,
            last_seq + 1,
            "the first reading after the outage is the next seq"
        );
        backfilled.push((seq - last_seq) as f64);
        last_seq = seq;
        println!(
            "round {round}: both /ready {:.2} s, first back-filled reading on the socket {:.2} s after the broker's port reopened; {} readings delivered in order",
            ready_at.as_secs_f64(),
            first_at.as_secs_f64(),
            seq - first_seq + 1
        );
        ready_times.push(ready_at.as_secs_f64());
        backfill_times.push(first_at.as_secs_f64());
    }
    let (ready, ready_max) = median_and(&mut ready_times, 1.0);
    let (fill, fill_max) = median_and(&mut backfill_times, 1.0);
    println!(
        "broker restart ({outage} s outage, {rounds} rounds, default settings): ready median {ready:.2} s (max {ready_max:.2}); first back-filled reading median {fill:.2} s (max {fill_max:.2})"
    );
    drop((consumer, publisher, broker));
}
