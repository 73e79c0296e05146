//! The CPU a dashboard page spends per second at a large fleet: N hosts publishing once a
//! second into a real consumer, the page open in headless Chromium, the page's main-thread
//! task time read over CDP (`Performance.getMetrics`, `TaskDuration`) before and after a
//! window of D seconds. Also the share of that spent in scripts (`ScriptDuration`) and in
//! layout and style (`LayoutDuration`, `RecalcStyleDuration`).
//!
//! `cargo run --release -p bench --bin page_cpu -- [hosts=1000] [seconds=20]`

use fantoccini::wd::WebDriverCompatibleCommand;
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};
use std::collections::HashMap;
use std::time::Duration;

/// A Chrome DevTools command through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.cmd, "params": {} });
        (hyper::Method::POST, Some(body.to_string()))
    }
}

/// The page's cumulative metrics now, by name.
async fn metrics(browser: &Browser) -> HashMap<String, f64> {
    let answer = browser
        .client
        .issue_cmd(Cdp {
            cmd: "Performance.getMetrics",
        })
        .await
        .expect("CDP metrics");
    answer["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| Some((m["name"].as_str()?.to_owned(), m["value"].as_f64()?)))
        .collect()
}

fn reading(fixture: &serde_json::Value, host: &str, seq: u64) -> Vec<u8> {
    let mut v = fixture.clone();
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["interval_secs"] = 1.into();
    v["collected_at"] = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    v["cpu"]["usage_percent"] = ((seq * 7 + host.len() as u64) % 100).into();
    serde_json::to_vec(&v).expect("json")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let exchange = unique_exchange("bench-page-cpu");
    let consumer = bench::Service::start("consumer", &exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../consumer/tests/fixtures/reading.json"
    ))
    .expect("fixture");
    let names: Vec<String> = (0..hosts).map(|i| format!("host-{i:04}")).collect();

    let browser = Browser::start().await;
    browser
        .client
        .goto(&consumer.url("/"))
        .await
        .expect("page opens");
    browser.wait_text("#conn-badge", 30, |t| t == "live").await;
    let mut seq = 1;
    for name in &names {
        tap.publish_raw(&reading(&fixture, name, seq)).await;
    }
    browser
        .wait_text("#host-count", 60, |t| t == format!("({hosts})"))
        .await;
    browser
        .client
        .issue_cmd(Cdp {
            cmd: "Performance.enable",
        })
        .await
        .expect("CDP enable");

    let publish_second = |seq: u64| {
        let tap = &tap;
        let names = &names;
        let fixture = &fixture;
        async move {
            for name in names {
                tap.publish_raw(&reading(fixture, name, seq)).await;
            }
        }
    };
    // A few seconds to settle, then the measured window.
    let start = tokio::time::Instant::now();
    for second in 1..=3 {
        seq += 1;
        publish_second(seq).await;
        tokio::time::sleep_until(start + Duration::from_secs(second)).await;
    }
    let before = metrics(&browser).await;
    let window = tokio::time::Instant::now();
    for second in 1..=seconds {
        seq += 1;
        publish_second(seq).await;
        tokio::time::sleep_until(window + Duration::from_secs(second)).await;
    }
    let after = metrics(&browser).await;
    let elapsed = window.elapsed().as_secs_f64();
    let per_second = |name: &str| {
        (after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0))
            / elapsed
    };
    println!(
        "page CPU, {hosts} hosts x 1 reading/s, over {elapsed:.1} s (main-thread seconds per second):"
    );
    for name in [
        "TaskDuration",
        "ScriptDuration",
        "LayoutDuration",
        "RecalcStyleDuration",
    ] {
        println!("  {name:<20} {:.3}", per_second(name));
    }
    browser.close().await;
    tap.cleanup().await;
    drop(consumer);
}
