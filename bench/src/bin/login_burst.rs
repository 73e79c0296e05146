//! A burst of wrong logins against a release-built consumer with a login: how many passwords
//! were judged (401) and how many refused unchecked (429), the consumer's peak memory growth
//! (`VmHWM` over `VmRSS` before), and the time until all were answered. Two cases, each on a
//! fresh consumer: every login from one address, and each from its own address (through a
//! trusted proxy's `X-Forwarded-For`), where only the pool of password checks holds.
//!
//! `cargo run --release -p bench --bin login_burst [N=64] [ROUNDS=5]`

use bench::{median_and, peak_rss_kib, rss_kib, Service};
use shared::testing::unique_exchange;
use std::time::Instant;

/// What one burst gave.
struct Burst {
    judged: usize,
    refused: usize,
    growth_mib: f64,
    seconds: f64,
}

async fn burst(n: usize, spread: bool) -> Burst {
    let dir = std::env::temp_dir().join(unique_exchange("bench-login"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let hash = consumer::web::auth::hash_password("the right one").expect("hashes");
    let users = dir.join("users");
    std::fs::write(&users, format!("alice:{hash}\n")).expect("users file");
    let users = users.display().to_string();
    let consumer = Service::start(
        "consumer",
        &unique_exchange("bench-login"),
        &[
            ("DASHBOARD_USERS_FILE", users.as_str()),
            ("HISTORY_URL", "off"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let before = rss_kib(consumer.pid());
    let client = reqwest::Client::new();
    let url = consumer.url("/login");
    let origin = consumer.url("");
    let started = Instant::now();
    let answers = futures_util::future::join_all((0..n).map(|i| {
        let mut request = client
            .post(&url)
            .header("origin", &origin)
            .form(&[("name", "alice"), ("password", "a wrong guess")]);
        if spread {
            request = request.header(
                "x-forwarded-for",
                format!("198.18.{}.{}", i / 250, i % 250 + 1),
            );
        }
        request.send()
    }))
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib(consumer.pid());
    let mut result = Burst {
        judged: 0,
        refused: 0,
        growth_mib: peak.saturating_sub(before) as f64 / 1024.0,
        seconds,
    };
    for answer in answers {
        match answer.map(|a| a.status().as_u16()) {
            Ok(401) => result.judged += 1,
            Ok(429) => result.refused += 1,
            other => panic!("a wrong login answered {other:?}"),
        }
    }
    drop(consumer);
    let _ = std::fs::remove_dir_all(dir);
    result
}

#[tokio::main]
async fn main() {
    bench::raise_open_file_limit();
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    println!("| {n} wrong logins at once (median of {rounds} fresh consumers) | judged (401) | refused (429) | peak RSS growth | all answered in |");
    println!("|---|---|---|---|---|");
    for (spread, case) in [
        (false, "from one address"),
        (true, "each from its own address"),
    ] {
        let mut judged = Vec::new();
        let mut refused = Vec::new();
        let mut growth = Vec::new();
        let mut seconds = Vec::new();
        for _ in 0..rounds {
            let b = burst(n, spread).await;
            judged.push(b.judged as f64);
            refused.push(b.refused as f64);
            growth.push(b.growth_mib);
            seconds.push(b.seconds);
        }
        let (judged, _) = median_and(&mut judged, 1.0);
        let (refused, _) = median_and(&mut refused, 1.0);
        let (growth, growth_max) = median_and(&mut growth, 1.0);
        let (seconds, _) = median_and(&mut seconds, 1.0);
        println!(
            "| {case} | {judged:.0} | {refused:.0} | {growth:.1} MiB (max {growth_max:.1}) | {:.0} ms |",
            seconds * 1000.0
        );
        if !spread {
            bench::summary::add(bench::summary::Row {
                figure: format!("{n} wrong logins at once from one address: judged, RSS growth"),
                reference: "before: 64 judged, +1,200 MiB (issue 24)".into(),
                hostpulse: format!("{judged:.0} judged, +{growth:.0} MiB"),
                ratio: None,
                goal: "≤ 5 judged, < 150 MiB",
            });
        }
    }
}
