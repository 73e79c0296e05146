//! What a page that opens on a busy fleet costs: N hosts whose recent readings fill the
//! consumer's buffers, then (a) the snapshot frame a new WebSocket gets first — its size and
//! the time to receive it — and (b) a page in headless Chromium until every host's card is
//! drawn. Medians of several tries.
//!
//! `cargo run --release -p bench --bin first_paint -- [hosts=1000] [readings_per_host=60]`
//! (`HOSTPULSE_CONSUMER_BIN=path/to/consumer` measures another build, for before/after.)

use futures_util::StreamExt;
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn received(consumer: &bench::Service) -> u64 {
    let text = reqwest::get(consumer.url("/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    shared::testing::metric(&text, "hostpulse_messages_received_total").unwrap_or(0.0) as u64
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let per_host: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let exchange = unique_exchange("bench-first-paint");
    let max_hosts = (hosts + 10).to_string();
    let queue_max = (hosts * per_host + 1000).to_string();
    let consumer = bench::Service::start(
        "consumer",
        &exchange,
        &[("MAX_HOSTS", &max_hosts), ("QUEUE_MAX_LENGTH", &queue_max)],
    )
    .await;
    let tap = Tap::bind(&exchange).await;
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../consumer/tests/fixtures/reading.json"
    ))
    .expect("fixture");
    let start = chrono::Utc::now() - chrono::Duration::seconds(per_host as i64);
    for i in 0..per_host {
        let at = (start + chrono::Duration::seconds(i as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for h in 0..hosts {
            let mut v = fixture.clone();
            v["host"] = format!("host-{h:04}").into();
            v["seq"] = (i + 1).into();
            v["collected_at"] = at.clone().into();
            tap.publish_raw(&serde_json::to_vec(&v).expect("json"))
                .await;
        }
    }
    let total = (hosts * per_host) as u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while received(&consumer).await < total {
        assert!(
            Instant::now() < deadline,
            "the consumer never took every reading"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (mut sizes, mut socket_ms) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let began = Instant::now();
        // Room for a snapshot of any size: the old consumer sent every buffered reading.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(
            format!("ws://127.0.0.1:{}/ws", consumer.port),
            Some(config),
            false,
        )
        .await
        .expect("WebSocket opens");
        let first = socket
            .next()
            .await
            .expect("a frame")
            .expect("readable")
            .into_data();
        socket_ms.push(began.elapsed().as_secs_f64() * 1000.0);
        sizes.push(first.len() as f64);
    }

    let browser = Browser::start().await;
    let expected = format!("({hosts})");
    let mut page_ms = Vec::new();
    for _ in 0..3 {
        browser
            .client
            .goto("about:blank")
            .await
            .expect("blank page");
        let began = Instant::now();
        browser
            .client
            .goto(&consumer.url("/"))
            .await
            .expect("page opens");
        loop {
            let shown = browser
                .client
                .execute(
                    "const n = document.getElementById('host-count'); return n ? n.textContent : '';",
                    vec![],
                )
                .await
                .expect("script runs");
            if shown.as_str() == Some(expected.as_str()) {
                break;
            }
            assert!(
                began.elapsed() < Duration::from_secs(120),
                "the page never drew every host"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        page_ms.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    println!("first paint, {hosts} hosts x {per_host} readings held (HISTORY_LEN default 180):");
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "snapshot_bytes_median": median(sizes),
            "snapshot_received_ms_median": median(socket_ms),
            "page_all_cards_ms_median": median(page_ms),
        }))
        .expect("json")
    );
    browser.close().await;
    tap.cleanup().await;
}
