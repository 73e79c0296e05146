//! End-to-end latency: `/publish` issued → the reading received by a WebSocket client (the
//! page), and apart from it `/publish`'s confirmed answer, at a low rate, then with `extra` more
//! clients connected (each reading every frame, as browsers do); and the floor for that path:
//! a bare lapin publish-with-confirm → consume round trip on the same broker with a body of the
//! same size, routed as the product's readings are — to a classic queue that is consumed (the
//! live view's) and to a durable quorum queue (the history's), so the confirmation waits for
//! the same disk write. Floor and product samples alternate, so both see the same machine at
//! the same moment (a shared VM's speed drifts by tens of percent).
//!
//! `cargo run --release -p bench --bin latency -- [samples=300] [extra_clients=1000]`

use bench::summary::{self, Row};
use bench::{
    median_and, next_reading, open_socket, spawn_readers, HttpConnection, Service, Socket,
};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use shared::testing::unique_exchange;
use std::time::{Duration, Instant};

/// Pause between samples: "low rate".
const GAP: Duration = Duration::from_millis(20);

/// The product's path: `/publish` on the publisher, the frame on a consumer's WebSocket.
struct Product {
    http: HttpConnection,
    socket: Socket,
}

impl Product {
    async fn new(consumer: &Service, publisher: &Service) -> Self {
        Self {
            http: HttpConnection::open(publisher.port).await,
            socket: open_socket(consumer).await,
        }
    }

    /// Milliseconds for an HTTP round trip to the publisher that does no work (`/health`):
    /// the share of the HTTP client and server in the figures above.
    async fn http_alone(&mut self) -> f64 {
        let start = Instant::now();
        let (status, _) = self.http.get("/health").await;
        assert_eq!(status, 200);
        ms(start.elapsed())
    }

    /// Milliseconds until `/publish` answered, and until the frame reached the page.
    async fn sample(&mut self) -> (f64, f64) {
        let start = Instant::now();
        let request = async {
            let (status, body) = self.http.get("/publish").await;
            assert_eq!(status, 200, "{body:?}");
            (body, start.elapsed())
        };
        let frame = async {
            let frame = next_reading(&mut self.socket, Duration::from_secs(5)).await;
            (frame, start.elapsed())
        };
        let ((answer, answered), (frame, arrived)) = tokio::join!(request, frame);
        let answer: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
        let frame = frame.expect("the reading arrives");
        assert_eq!(frame["seq"], answer["seq"]);
        (ms(answered), ms(arrived))
    }
}

/// The floor: one confirmed publish and its delivery, with nothing of the product around it.
struct Floor {
    _connection: lapin::Connection,
    publish: lapin::Channel,
    exchange: String,
    deliveries: lapin::Consumer,
    kept: String,
}

impl Floor {
    async fn new() -> Self {
        let (connection, publish, exchange) = bench::floor_channel("bench-floor").await;
        let consume = connection.create_channel().await.expect("channel");
        let deliveries = shared::testing::consume_from(&consume, &exchange).await;
        // The history's queue: durable quorum, so a confirmation waits for its disk write as
        // the product's does. Nobody consumes it; its length is bounded.
        let kept = shared::broker::declare_consumer_queue(
            &publish,
            &exchange,
            &shared::broker::QueueSpec {
                name: Some(format!("{exchange}.kept")),
                max_length: 10_000,
                prefetch: 1,
                kind: shared::broker::QueueKind::Shared {
                    expires: Duration::from_secs(600),
                    single_active: false,
                    replicated: true,
                },
            },
        )
        .await
        .expect("a quorum queue for the floor");
        Self {
            _connection: connection,
            publish,
            exchange,
            deliveries,
            kept,
        }
    }

    /// Milliseconds until the publish was confirmed and delivered.
    async fn sample(&mut self, body: &[u8]) -> f64 {
        let start = Instant::now();
        let confirm = async {
            self.publish
                .basic_publish(
                    self.exchange.as_str().into(),
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
        let (_, delivery) = tokio::join!(confirm, self.deliveries.next());
        let elapsed = start.elapsed();
        let delivery = delivery.expect("delivery").expect("ok");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        ms(elapsed)
    }

    async fn cleanup(self) {
        let _ = self
            .publish
            .queue_delete(self.kept.as_str().into(), Default::default())
            .await;
        let _ = self
            .publish
            .exchange_delete(self.exchange.as_str().into(), Default::default())
            .await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One phase: alternating floor and product samples.
#[derive(Default)]
struct Phase {
    floor: Vec<f64>,
    answer: Vec<f64>,
    page: Vec<f64>,
    http: Vec<f64>,
}

async fn run_phase(floor: &mut Floor, product: &mut Product, body: &[u8], samples: usize) -> Phase {
    let mut phase = Phase::default();
    for _ in 0..samples {
        phase.floor.push(floor.sample(body).await);
        tokio::time::sleep(GAP).await;
        let (answer, page) = product.sample().await;
        phase.answer.push(answer);
        phase.page.push(page);
        tokio::time::sleep(GAP).await;
        phase.http.push(product.http_alone().await);
        tokio::time::sleep(GAP).await;
    }
    phase
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let extra: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    bench::raise_open_file_limit();
    let exchange = unique_exchange("bench-latency");
    let consumer = Service::start("consumer", &exchange, &[]).await;
    let publisher = Service::start("publisher", &exchange, &[("PUBLISH_INTERVAL_SECS", "0")]).await;
    let body = reqwest::get(publisher.url("/api/reading"))
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("body");
    let mut floor = Floor::new().await;
    let mut product = Product::new(&consumer, &publisher).await;

    let mut low = run_phase(&mut floor, &mut product, &body, samples).await;
    // The crowd reads on threads of its own, as browsers on other machines would, so the
    // samples above are not queued behind its work in this thread.
    let crowd = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the crowd");
    let port = consumer.port;
    let readers = crowd
        .spawn(async move { spawn_readers(port, extra).await })
        .await
        .expect("the crowd connects");
    let mut crowded = run_phase(&mut floor, &mut product, &body, samples).await;
    let crowd_frames = readers.stop().await;
    crowd.shutdown_background();
    floor.cleanup().await;

    let (f50, f99) = median_and(&mut low.floor, 0.99);
    let (p50, p99) = median_and(&mut low.page, 0.99);
    let (a50, a99) = median_and(&mut low.answer, 0.99);
    let (h50, h99) = median_and(&mut low.http, 0.99);
    let (cf50, _) = median_and(&mut crowded.floor, 0.99);
    let (c50, c99) = median_and(&mut crowded.page, 0.99);
    println!("| end-to-end latency ({samples} samples each, floor and product alternating) | median | p99 | median ÷ floor |");
    println!("|---|---|---|---|");
    println!(
        "| floor: bare lapin publish+confirm → consume, routed to a classic and a quorum queue ({} B body) | {f50:.2} ms | {f99:.2} ms | 1.00 |",
        body.len()
    );
    println!(
        "| `/publish` issued → the reading on a WebSocket client (the page), low rate | {p50:.2} ms | {p99:.2} ms | {:.2} |",
        p50 / f50
    );
    println!(
        "| `/publish` issued → its confirmed answer | {a50:.2} ms | {a99:.2} ms | {:.2} |",
        a50 / f50
    );
    println!(
        "| HTTP alone: `GET /health` on the publisher | {h50:.2} ms | {h99:.2} ms | {:.2} |",
        h50 / f50
    );
    println!(
        "| the reading on the page, {extra} more clients connected and reading ({crowd_frames} frames to them) | {c50:.2} ms | {c99:.2} ms | {:.2} (floor then {cf50:.2} ms) |",
        c50 / cf50
    );
    let floor = format!("bare publish+confirm → consume {f50:.2} ms");
    summary::add(Row {
        figure: "a reading on the page after `/publish`, median".into(),
        reference: floor.clone(),
        hostpulse: format!("{p50:.2} ms"),
        ratio: Some(p50 / f50),
        goal: "≤ 2 × floor",
    });
    summary::add(Row {
        figure: "`/publish` confirmed answer, median".into(),
        reference: floor,
        hostpulse: format!("{a50:.2} ms"),
        ratio: Some(a50 / f50),
        goal: "≤ 2 × floor",
    });
    summary::add(Row {
        figure: format!("a reading on the page with {extra} pages open, median"),
        reference: format!("floor then {cf50:.2} ms"),
        hostpulse: format!("{c50:.2} ms"),
        ratio: Some(c50 / cf50),
        goal: "< 50 ms",
    });
}
