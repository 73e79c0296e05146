//! Time from clicking a range on the dashboard (1 h … 1 y) to every chart drawn from the
//! history API, in headless Chromium against the consumer binary built beside this one (release
//! with `--release`), on a filled SQLite store.
//!
//! The store is filled through the product's own writer (`Store::write_batch`) before the
//! consumer starts: the host on the page with full tiers (24 h at 1 s, 30 d at 1 min, 400 d at
//! 1 h), and `hosts - 1` others with one reading every 10 minutes over 30 days beside it (they
//! make the tables and indexes a fleet's size; a query reads one host's rows). The page says
//! how long each draw took (`data-draw-ms` on `#charts`: from the click's handler to the frame
//! after every chart's `setData`, so the request, the query, the JSON and the drawing; and
//! `data-fetch-ms`, the part until the answer was parsed).
//!
//! `cargo run --release -p bench --bin range_draw -- [clicks=20] [hosts=100]`

use bench::median_and;
use chrono::{DateTime, TimeZone, Utc};
use consumer::history::store::{HistorySettings, Store};
use fantoccini::Locator;
use shared::reading::Reading;
use shared::settings::EnvSource;
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};
use std::sync::Arc;
use std::time::{Duration, Instant};

const READING: &str = include_str!("../../../consumer/tests/fixtures/reading.json");
const DAY: i64 = 86_400;
const SHOWN: &str = "bench-host-0000";
/// The other hosts' readings are this far apart.
const OTHERS_EVERY_SECS: i64 = 600;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("valid time")
}

/// A reading of host `h` at `secs`, its figures varying with time.
fn reading(template: &Reading, h: usize, secs: i64) -> Reading {
    let mut r = template.clone();
    r.host = format!("bench-host-{h:04}");
    r.seq = secs as u64;
    r.collected_at = at(secs);
    let wave = ((secs as usize * 7 + h * 13) % 1000) as f32 / 10.0;
    r.cpu.usage_percent = wave;
    r.memory.used_bytes = r.memory.total_bytes / 2 + (wave as u64) * 4096;
    for n in r.networks.iter_mut().flatten() {
        n.received_bytes_per_sec = (wave as u64) * 1000 + h as u64;
    }
    r
}

/// Every (host, time) to write, oldest first.
fn schedule(hosts: usize, now: i64) -> Vec<(usize, i64)> {
    let mut shown: Vec<i64> = (0..400 * 24)
        .map(|i| now - 400 * DAY + i * 3600)
        .filter(|t| *t < now - 30 * DAY)
        .collect();
    shown.extend(
        (0..30 * 24 * 60)
            .map(|i| now - 30 * DAY + i * 60)
            .filter(|t| *t < now - DAY),
    );
    shown.extend((0..DAY).map(|i| now - DAY + i));
    let mut all: Vec<(usize, i64)> = shown.into_iter().map(|t| (0, t)).collect();
    for h in 1..hosts {
        all.extend(
            (0..30 * DAY / OTHERS_EVERY_SECS).map(|i| (h, now - 30 * DAY + i * OTHERS_EVERY_SECS)),
        );
    }
    all.sort_by_key(|(h, t)| (*t, *h));
    all
}

async fn fill(dir: &std::path::Path, hosts: usize, now: i64) -> u64 {
    let template = Reading::from_json(READING.as_bytes()).expect("fixture");
    let settings = HistorySettings::from_env(&EnvSource::from_pairs([(
        "DATA_DIR",
        dir.display().to_string(),
    )]))
    .expect("settings");
    let store = Store::open(&settings).await.expect("open").expect("on");
    let mut written = 0;
    for chunk in schedule(hosts, now).chunks(1000) {
        let batch: Vec<Arc<Reading>> = chunk
            .iter()
            .map(|(h, t)| Arc::new(reading(&template, *h, *t)))
            .collect();
        written += store
            .write_batch(&batch, at(now))
            .await
            .expect("fill")
            .written;
    }
    while store
        .enforce_retention(at(now))
        .await
        .expect("retention")
        .more
    {}
    store.close().await;
    written
}

async fn panel(browser: &Browser) -> (String, f64, f64, String) {
    let v = browser
        .client
        .execute(
            "const d = document.getElementById('charts').dataset; \
             return [d.drawn || '', Number(d.drawMs || 'NaN'), Number(d.fetchMs || 'NaN'), \
             document.getElementById('chart-cpu').dataset.points || ''];",
            vec![],
        )
        .await
        .expect("script runs");
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_f64().unwrap_or(f64::NAN),
        v[2].as_f64().unwrap_or(f64::NAN),
        v[3].as_str().unwrap_or_default().to_owned(),
    )
}

async fn click(browser: &Browser, range: &str) {
    browser
        .client
        .find(Locator::Css(&format!(
            "#range-picker [data-range='{range}']"
        )))
        .await
        .expect("the range's button")
        .click()
        .await
        .expect("click");
}

async fn wait_drawn(browser: &Browser, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while panel(browser).await.0 != key {
        assert!(Instant::now() < deadline, "{key} never drawn");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let clicks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let hosts: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(100)
        .max(1);
    let now = Utc::now().timestamp();
    let dir = std::env::temp_dir().join(format!("hostpulse-bench-range-{}", std::process::id()));
    let t0 = Instant::now();
    let written = fill(&dir, hosts, now).await;
    println!(
        "filled {written} readings for {hosts} hosts in {:.0} s ({})",
        t0.elapsed().as_secs_f64(),
        dir.display()
    );

    let exchange = unique_exchange("bench-range");
    let data_dir = dir.display().to_string();
    let consumer = bench::Service::start("consumer", &exchange, &[("DATA_DIR", &data_dir)]).await;
    // One reading now, so the host is on the page (the snapshot) as a live host would be.
    let tap = Tap::bind(&exchange).await;
    let template = Reading::from_json(READING.as_bytes()).expect("fixture");
    let mut live = reading(&template, 0, now);
    live.collected_at = Utc::now();
    tap.publish_raw(&serde_json::to_vec(&live).expect("json"))
        .await;

    let browser = Browser::start().await;
    browser
        .open(&consumer.url(&format!("/#host={SHOWN}")))
        .await;
    browser.wait_text("#detail-host", 30, |t| t == SHOWN).await;
    println!("click → every chart drawn, {clicks} clicks per range, one host of {hosts}:");
    for range in ["1h", "6h", "24h", "7d", "30d", "1y"] {
        let (mut samples, mut answers) = (Vec::new(), Vec::new());
        let mut points = String::new();
        for _ in 0..clicks {
            // From live each time: the same range chosen twice within a second is the same
            // view, which the page does not draw again.
            click(&browser, "live").await;
            wait_drawn(&browser, "live").await;
            click(&browser, range).await;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (drawn, ms, answered, n) = panel(&browser).await;
                if drawn.starts_with(&format!("{range}:")) {
                    samples.push(ms);
                    answers.push(answered);
                    points = n;
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{range} never drawn: {drawn:?}, status {:?}",
                    browser.text("#range-status").await
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let (median, p95) = median_and(&mut samples, 0.95);
        let (answered, _) = median_and(&mut answers, 0.95);
        println!(
            "  {range:>4}: {median:6.1} ms median, {p95:6.1} ms p95 (of which {answered:.1} ms median until the answer was parsed); {points} points per series; status: {}",
            browser.text("#range-status").await
        );
    }
    browser.close().await;
    tap.cleanup().await;
    drop(consumer);
    let _ = std::fs::remove_dir_all(&dir);
}
