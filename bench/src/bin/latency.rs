//! End-to-end latency: `/publish` issued → the reading received by a WebSocket client, at a
//! low rate, then with `extra` idle clients connected; and the floor for that path, measured
//! in the same run: a bare lapin publish-with-confirm → consume round trip on the same broker
//! with a body of the same size.
//!
//! `cargo run --release -p bench --bin latency -- [samples=300] [extra_clients=1000]`

use bench::{median_and, next_reading, open_socket, Service};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use shared::broker::{declare_consumer_queue, QueueSpec};
use shared::testing::unique_exchange;
use std::time::{Duration, Instant};

/// Pause between samples: "low rate".
const GAP: Duration = Duration::from_millis(20);

async fn product(
    consumer: &Service,
    publisher: &Service,
    samples: usize,
    extra: usize,
) -> Vec<f64> {
    let http = reqwest::Client::new();
    let mut socket = open_socket(consumer).await;
    let mut idle = Vec::with_capacity(extra);
    for _ in 0..extra {
        idle.push(open_socket(consumer).await);
    }
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let request = http.get(publisher.url("/publish")).send();
        let (answer, frame) =
            tokio::join!(request, next_reading(&mut socket, Duration::from_secs(5)));
        let elapsed = start.elapsed();
        let answer: serde_json::Value = answer.expect("sent").json().await.expect("JSON");
        let frame = frame.expect("the reading arrives");
        assert_eq!(frame["seq"], answer["seq"]);
        out.push(elapsed.as_secs_f64() * 1000.0);
        tokio::time::sleep(GAP).await;
    }
    drop(idle);
    out
}

async fn floor(samples: usize, body: &[u8]) -> Vec<f64> {
    let (connection, publish, exchange) = bench::floor_channel("bench-floor").await;
    let consume = connection.create_channel().await.expect("channel");
    let spec = QueueSpec {
        name: None,
        max_length: 10_000,
        prefetch: 256,
    };
    let queue = declare_consumer_queue(&consume, &exchange, &spec)
        .await
        .expect("queue");
    let mut deliveries = consume
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        let confirm = async {
            publish
                .basic_publish(
                    exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    body,
                    Default::default(),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm")
        };
        let (_, delivery) = tokio::join!(confirm, deliveries.next());
        out.push(start.elapsed().as_secs_f64() * 1000.0);
        let delivery = delivery.expect("delivery").expect("ok");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        tokio::time::sleep(GAP).await;
    }
    let _ = publish
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    out
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let extra: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let exchange = unique_exchange("bench-latency");
    let consumer = Service::start("consumer", &exchange, &[]).await;
    let publisher = Service::start("publisher", &exchange, &[("PUBLISH_INTERVAL_SECS", "0")]).await;
    let body = reqwest::get(publisher.url("/api/reading"))
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("body");

    let (f50, f99) = median_and(&mut floor(samples, &body).await, 0.99);
    let (p50, p99) = median_and(&mut product(&consumer, &publisher, samples, 0).await, 0.99);
    let (c50, c99) = median_and(
        &mut product(&consumer, &publisher, samples, extra).await,
        0.99,
    );
    println!("| end-to-end latency | median | p99 | median ÷ floor |");
    println!("|---|---|---|---|");
    println!("| floor: bare lapin publish+confirm → consume ({} B body) | {f50:.2} ms | {f99:.2} ms | 1.00 |", body.len());
    println!(
        "| /publish → WebSocket client, low rate | {p50:.2} ms | {p99:.2} ms | {:.2} |",
        p50 / f50
    );
    println!(
        "| same, with {extra} more clients connected | {c50:.2} ms | {c99:.2} ms | {:.2} |",
        c50 / f50
    );
}
