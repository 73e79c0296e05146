//! How the dashboard copes with many hosts: N hosts publishing once a second for D seconds
//! into a real consumer, the page open in headless Chromium. Reports frame intervals, long
//! tasks (main thread busy > 50 ms) and the page's JS heap.
//!
//! `cargo run --release -p bench --bin dashboard_hosts -- [hosts=50] [seconds=30]`

use shared::testing::browser::Browser;
use shared::testing::{amqp_url, unique_exchange, Tap};
use std::time::Duration;

const MEASURE: &str = r#"
window.__bench = { frames: [], longTasks: [], last: performance.now() };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longTasks.push(e.duration);
}).observe({ entryTypes: ["longtask"] });
const tick = (now) => {
  window.__bench.frames.push(now - window.__bench.last);
  window.__bench.last = now;
  requestAnimationFrame(tick);
};
requestAnimationFrame(tick);
return true;
"#;

const COLLECT: &str = r#"
const f = window.__bench.frames.slice(1).sort((a, b) => a - b);
const q = (p) => f[Math.min(f.length - 1, Math.floor(p * f.length))];
return {
  frames: f.length, p50: q(0.5), p99: q(0.99), max: f[f.length - 1],
  long_tasks: window.__bench.longTasks.length,
  long_task_ms: window.__bench.longTasks.reduce((a, b) => a + b, 0),
  cards: document.querySelectorAll(".card").length,
  heap_mb: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null,
};
"#;

fn reading(fixture: &serde_json::Value, host: &str, seq: u64) -> Vec<u8> {
    let mut v = fixture.clone();
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["collected_at"] = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    v["cpu"]["usage_percent"] = ((seq * 7 + host.len() as u64) % 100).into();
    serde_json::to_vec(&v).expect("json")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let exchange = unique_exchange("bench-dashboard");
    let consumer = bench::Service::start("consumer", &exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../consumer/tests/fixtures/reading.json"
    ))
    .expect("fixture");
    let names: Vec<String> = (0..hosts).map(|i| format!("host-{i:03}")).collect();

    let browser = Browser::start().await;
    browser
        .client
        .goto(&consumer.url("/"))
        .await
        .expect("page opens");
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    let mut seq = 1;
    for name in &names {
        tap.publish_raw(&reading(&fixture, name, seq)).await;
    }
    browser
        .wait_text("#host-count", 10, |t| t == format!("({hosts})"))
        .await;
    browser
        .client
        .execute(MEASURE, vec![])
        .await
        .expect("measure script");

    let start = tokio::time::Instant::now();
    for second in 1..=seconds {
        seq += 1;
        for name in &names {
            tap.publish_raw(&reading(&fixture, name, seq)).await;
        }
        tokio::time::sleep_until(start + Duration::from_secs(second)).await;
    }
    let result = browser
        .client
        .execute(COLLECT, vec![])
        .await
        .expect("collect");
    println!(
        "dashboard, {hosts} hosts x 1 reading/s for {seconds} s ({} readings):",
        hosts as u64 * seconds
    );
    println!("{}", serde_json::to_string_pretty(&result).expect("json"));
    browser.close().await;
    tap.cleanup().await;
    drop(consumer);
    let _ = amqp_url;
}
