//! `/publish` throughput at 32 concurrent connections (each answer is a confirmed publish),
//! against the floor in the same run: bare confirmed publishes on one lapin channel, one at a
//! time and 32 in flight. Bounded by time. Everything here runs on one thread, leaving the
//! other core to the service and the broker.
//!
//! The floor and `/publish` at 32 take turns, one second each, `seconds` times, and the ratio
//! is the median of each turn's pair: on a machine that other work loads unevenly, two long
//! runs one after the other would compare two different loads. `/publish` is driven twice a
//! turn: by hyper's client (the figure kept since the first measurement) and by a bare one
//! ([`bench::LightHttp`]), whose smaller cost leaves more of the two cores to the service.
//! Each turn also drives `publish_ceiling` (actix-web and the publisher's AMQP link with
//! nothing of the service around them, publishing the same reading) by both clients: how far the service is from
//! what its parts allow, in the same minute.
//!
//! `cargo run --release -p bench --bin throughput -- [turns=10]`

use bench::{median_and, HttpConnection, LightHttp, Service};
use lapin::options::BasicPublishOptions;
use shared::testing::unique_exchange;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;

/// Which HTTP client drives `/publish`.
#[derive(Clone, Copy)]
enum Client {
    Hyper,
    Light,
}

/// `/publish` from `connections` kept-alive connections, each waiting for its answer before
/// the next request, on this (single) thread.
async fn product(publisher: &Service, run: Duration, connections: usize, client: Client) -> f64 {
    let deadline = Instant::now() + run;
    let mut clients: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = u64>>>> = Vec::new();
    for _ in 0..connections {
        match client {
            Client::Hyper => {
                let mut http = HttpConnection::open(publisher.port).await;
                clients.push(Box::pin(async move {
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        let (status, body) = http.get("/publish").await;
                        assert_eq!(status, 200, "{body:?}");
                        done += 1;
                    }
                    done
                }));
            }
            Client::Light => {
                let mut http = LightHttp::open(publisher.port).await;
                clients.push(Box::pin(async move {
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        let (status, body) = http.get("/publish").await;
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
                        done += 1;
                    }
                    done
                }));
            }
        }
    }
    let done: u64 = futures_util::future::join_all(clients)
        .await
        .into_iter()
        .sum();
    done as f64 / run.as_secs_f64()
}

/// Bare confirmed publishes on one channel of a connection of its own.
async fn floor(
    (channel, exchange): (&lapin::Channel, &str),
    run: Duration,
    (body, properties): (&[u8], &lapin::BasicProperties),
    in_flight: usize,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + run;
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (channel, done, exchange, body, properties) = (
            channel.clone(),
            Arc::clone(&done),
            exchange.to_owned(),
            body.to_vec(),
            properties.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                channel
                    .basic_publish(
                        exchange.as_str().into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties.clone(),
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
    done.load(Ordering::Relaxed) as f64 / run.as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let turns: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let run = Duration::from_secs(turns);
    let turn = Duration::from_secs(1);
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
    // The floor's messages carry no properties; the service's carry five (content type,
    // persistent delivery, timestamp, message id, app id). A second floor sends those too, to
    // show what the message costs apart from the service.
    let reading: shared::reading::Reading = serde_json::from_slice(&body).expect("a reading");
    let properties =
        shared::broker::reading_properties(&reading, reading.seq, publisher::broker::APP_ID);
    let (bare_message, service_message) = (
        (&body[..], &lapin::BasicProperties::default()),
        (&body[..], &properties),
    );
    let reading_file =
        std::env::temp_dir().join(format!("hostpulse-bench-reading-{}.json", publisher.port));
    std::fs::write(&reading_file, &body).expect("the reading written for publish_ceiling");
    let ceiling = Service::start(
        "publish_ceiling",
        &unique_exchange("bench-ceiling"),
        &[("READING_FILE", &reading_file.display().to_string())],
    )
    .await;
    let _ = std::fs::remove_file(&reading_file);
    let (_connection, channel, exchange) = bench::floor_channel("bench-floor-rate").await;
    let bare = (&channel, exchange.as_str());
    let one = floor(bare, run, bare_message, 1).await;
    let (mut floors, mut rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut light_rates, mut light_ratios) = (Vec::new(), Vec::new());
    let (mut same_floors, mut same_ratios) = (Vec::new(), Vec::new());
    let (mut ceiling_rates, mut ceiling_ratios, mut ceiling_light_ratios) =
        (Vec::new(), Vec::new(), Vec::new());
    // `/publish` ÷ `publish_ceiling` in the same turn, by each client.
    let mut service_shares = Vec::new();
    for _ in 0..turns {
        let many = floor(bare, turn, bare_message, CONCURRENCY).await;
        let same = floor(bare, turn, service_message, CONCURRENCY).await;
        let rate = product(&publisher, turn, CONCURRENCY, Client::Hyper).await;
        let light = product(&publisher, turn, CONCURRENCY, Client::Light).await;
        let least = product(&ceiling, turn, CONCURRENCY, Client::Hyper).await;
        let least_light = product(&ceiling, turn, CONCURRENCY, Client::Light).await;
        ceiling_rates.push((least, least_light));
        service_shares.push((rate / least, light / least_light));
        ceiling_ratios.push(least / many);
        ceiling_light_ratios.push(least_light / many);
        floors.push(many);
        rates.push(rate);
        ratios.push(rate / many);
        light_rates.push(light);
        light_ratios.push(light / many);
        same_floors.push(same / many);
        same_ratios.push(rate / same);
    }
    drop(ceiling);
    let wide = product(&publisher, run, 4 * CONCURRENCY, Client::Hyper).await;
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    let (many, _) = median_and(&mut floors, 0.0);
    let (rate, _) = median_and(&mut rates, 0.0);
    let (ratio, lowest) = median_and(&mut ratios, 0.0);
    let (_, highest) = median_and(&mut ratios, 1.0);
    let (same_floor, _) = median_and(&mut same_floors, 0.0);
    let (same_ratio, same_lowest) = median_and(&mut same_ratios, 0.0);
    let (_, same_highest) = median_and(&mut same_ratios, 1.0);
    let (light, _) = median_and(&mut light_rates, 0.0);
    let (light_ratio, light_lowest) = median_and(&mut light_ratios, 0.0);
    let (_, light_highest) = median_and(&mut light_ratios, 1.0);
    let (mut least_rates, mut least_light_rates): (Vec<f64>, Vec<f64>) =
        ceiling_rates.into_iter().unzip();
    let (least_rate, _) = median_and(&mut least_rates, 0.0);
    let (least_light_rate, _) = median_and(&mut least_light_rates, 0.0);
    let (mut share, mut light_share): (Vec<f64>, Vec<f64>) = service_shares.into_iter().unzip();
    let (share, _) = median_and(&mut share, 0.0);
    let (light_share, _) = median_and(&mut light_share, 0.0);
    let (least, _) = median_and(&mut ceiling_ratios, 0.0);
    let (least_light, _) = median_and(&mut ceiling_light_ratios, 0.0);
    println!("| confirmed publishes | per second | ÷ floor (32 in flight) |");
    println!("|---|---|---|");
    println!(
        "| floor: bare lapin, 1 in flight | {one:.0} | {:.2} |",
        one / many
    );
    println!("| floor: bare lapin, {CONCURRENCY} in flight (median of {turns} turns) | {many:.0} | 1.00 |");
    println!(
        "| floor with the service's message properties, {CONCURRENCY} in flight (median of {turns} turns; `/publish` ÷ it: {same_ratio:.2}, turns {same_lowest:.2}–{same_highest:.2}) | {:.0} | {same_floor:.2} |",
        many * same_floor
    );
    println!(
        "| `/publish`, {CONCURRENCY} connections (median of {turns} turns) | {rate:.0} | {ratio:.2} (turns: {lowest:.2}–{highest:.2}) |"
    );
    println!(
        "| `/publish`, {CONCURRENCY} connections, bare client (median of {turns} turns) | {light:.0} | {light_ratio:.2} (turns: {light_lowest:.2}–{light_highest:.2}) |"
    );
    println!(
        "| `/publish`, {} connections | {wide:.0} | {:.2} |",
        4 * CONCURRENCY,
        wide / many
    );
    bench::summary::add(bench::summary::Row {
        figure: format!(
            "`/publish` throughput, {CONCURRENCY} connections, median of {turns} turns"
        ),
        reference: format!("bare lapin, {CONCURRENCY} in flight: {many:.0}/s"),
        hostpulse: format!("{rate:.0}/s"),
        ratio: Some(ratio),
        goal: "≥ 0.5 × floor",
    });
    println!(
        "| `publish_ceiling` (actix-web + the publisher's AMQP link alone), {CONCURRENCY} connections (medians of {turns} turns; `/publish` ÷ it: {share:.2}, {light_share:.2}): hyper client, bare client | {least_rate:.0}, {least_light_rate:.0} | {least:.2}, {least_light:.2} |"
    );
}
