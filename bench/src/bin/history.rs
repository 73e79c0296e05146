//! History store: what one consumer's writer sustains, what full tiers cost on disk, and how
//! fast a range comes back. Everything through the product's own writer (`Store::write_batch`)
//! and reader (`Store::history`), on SQLite in a temporary directory and, when it answers, the
//! local PostgreSQL (a database of its own, dropped after).
//!
//! - write: 1,000 hosts at 1 Hz, batches of one second's readings (1,000), for `seconds`
//!   synthetic seconds: readings/s and the process's CPU;
//! - size: `hosts` hosts with full tiers, filled synthetically (24 h at 1 s, then one reading a
//!   minute back to 30 days, one an hour back to 400 days), retention enforced, then the file's
//!   size, per host and per stored sample, scaled to 100 hosts;
//! - query: one host's 1 h / 24 h / 7 d / 30 d / 1 y through the consumer's HTTP API (the real
//!   `Application`, its clock held at the fill's "now", on the local RabbitMQ), 30 times each:
//!   median and p95 (in PostgreSQL after filling one host's tiers).
//!
//! Bounded by counts, not time. Each reading has 1 disk and 3 interfaces (the fixture's).
//!
//! `cargo run --release -p bench --bin history -- [seconds=60] [hosts=10] [postgres=yes]`
//! (`HISTORY_BENCH_KEEP=1` keeps the SQLite files to look at)

use bench::{cpu_seconds, median_and};
use chrono::{DateTime, TimeZone, Utc};
use consumer::history::store::{HistorySettings, Store};
use shared::reading::Reading;
use shared::settings::EnvSource;
use sqlx::Connection;
use std::sync::Arc;
use std::time::Instant;

const READING: &str = include_str!("../../../consumer/tests/fixtures/reading.json");
/// Hosts in the write test.
const WRITE_HOSTS: usize = 1_000;
/// A fixed "now": 2026-11-25 00:00 UTC.
const NOW: i64 = 1_795_564_800;
const DAY: i64 = 86_400;
/// Values per reading: 9 host-wide, 3 for the disk, 2 for each of 3 interfaces.
const SAMPLES_PER_READING: u64 = 9 + 3 + 3 * 2;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("valid time")
}

/// A reading of host `h` at `secs`, its figures varying with time.
fn reading(template: &Reading, h: usize, secs: i64, seq: u64) -> Arc<Reading> {
    let mut r = template.clone();
    r.host = format!("bench-host-{h:04}");
    r.seq = seq;
    r.collected_at = at(secs);
    let wave = ((secs as usize * 7 + h * 13) % 1000) as f32 / 10.0;
    r.cpu.usage_percent = wave;
    r.memory.used_bytes = r.memory.total_bytes / 2 + (wave as u64) * 4096;
    for n in r.networks.iter_mut().flatten() {
        n.received_bytes_per_sec = (wave as u64) * 1000 + h as u64;
    }
    Arc::new(r)
}

fn sqlite_settings(dir: &std::path::Path) -> HistorySettings {
    HistorySettings::from_env(&EnvSource::from_pairs([(
        "DATA_DIR",
        dir.display().to_string(),
    )]))
    .expect("settings")
}

async fn write_rate(store: &Store, template: &Reading, seconds: i64) -> (f64, f64) {
    let pid = std::process::id();
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    let start = NOW - seconds;
    let mut written = 0;
    for s in 0..seconds {
        let batch: Vec<Arc<Reading>> = (0..WRITE_HOSTS)
            .map(|h| reading(template, h, start + s, s as u64))
            .collect();
        written += store
            .write_batch(&batch, at(NOW))
            .await
            .expect("write")
            .written;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    (written as f64 / wall, cpu / wall)
}

/// Fills `hosts` hosts' tiers as 400 days of a 1 Hz publisher would leave them.
async fn fill(store: &Store, template: &Reading, hosts: usize) -> u64 {
    let mut times: Vec<i64> = (0..DAY).map(|i| NOW - DAY + i).collect();
    times.extend(
        (1..30 * 24 * 60)
            .map(|i| NOW - DAY - i * 60)
            .filter(|t| *t >= NOW - 30 * DAY),
    );
    times.extend(
        (1..400 * 24)
            .map(|i| NOW - 30 * DAY - i * 3600)
            .filter(|t| *t >= NOW - 400 * DAY),
    );
    let mut total = 0;
    for chunk in times.chunks(1000 / hosts.max(1) + 1) {
        let batch: Vec<Arc<Reading>> = chunk
            .iter()
            .flat_map(|t| (0..hosts).map(move |h| (h, *t)))
            .map(|(h, t)| reading(template, h, t, t as u64))
            .collect();
        total += store
            .write_batch(&batch, at(NOW))
            .await
            .expect("fill")
            .written;
    }
    let deleted = store.enforce_retention(at(NOW)).await.expect("retention");
    assert!(!deleted.more, "retention finished");
    total
}

/// Serves the store at `history_url` (or the SQLite file under `data_dir`) through the real
/// consumer, its clock held at `NOW`, on a port of its own; returns its address and stop handle.
async fn serve(vars: &[(&str, String)]) -> (String, actix_web::dev::ServerHandle) {
    let mut env = EnvSource::from_pairs([
        ("AMQP_URL", shared::testing::amqp_url()),
        (
            "EXCHANGE_NAME",
            shared::testing::unique_exchange("bench-history"),
        ),
        ("APP_PORT", "0".into()),
        ("HISTORY_QUEUE_EXPIRES_SECS", "60".into()),
    ]);
    for (name, value) in vars {
        env.set(name, value.clone());
    }
    let settings = consumer::configuration::Settings::from_env(&env).expect("settings");
    let clock: consumer::clock::SharedClock = consumer::clock::ManualClock::new(at(NOW));
    let app = consumer::startup::Application::build_with_clock(settings, clock)
        .await
        .expect("the consumer builds (is RabbitMQ running?)");
    let address = format!("http://127.0.0.1:{}", app.port());
    let history = app.history();
    let stop = app.stop_handle();
    tokio::spawn(app.run_until_stopped());
    history
        .store_within(std::time::Duration::from_secs(30))
        .await
        .expect("the consumer opened the store");
    (address, stop)
}

/// One host's ranges through `GET /api/hosts/{host}/history` (JSON), 30 times each.
async fn query_latency(address: &str) {
    let client = reqwest::Client::new();
    for (label, range) in [
        ("1 h", 3600),
        ("24 h", DAY),
        ("7 d", 7 * DAY),
        ("30 d", 30 * DAY),
        ("1 y", 365 * DAY),
    ] {
        let url = format!(
            "{address}/api/hosts/bench-host-0000/history?from={}&to={NOW}",
            NOW - range
        );
        let mut samples = Vec::new();
        let mut shape = (0, 0, String::new());
        for _ in 0..30 {
            let t0 = Instant::now();
            let body = client
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .expect("answered")
                .bytes()
                .await
                .expect("body");
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
            let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let points = json["times"].as_array().map_or(0, Vec::len);
            let tier = json["tier"].as_str().unwrap_or("?").to_owned();
            shape = (points, body.len(), tier);
        }
        let (median, p95) = median_and(&mut samples, 0.95);
        println!(
            "  {label:>5}: {median:6.2} ms median, {p95:6.2} ms p95 over HTTP; {} points from the {} tier, {} KiB JSON",
            shape.0,
            shape.2,
            shape.1 / 1024
        );
    }
}

async fn report_size(store: &Store, hosts: usize, written: u64) {
    let t0 = Instant::now();
    let stats = store.stats().await.expect("stats");
    // stats() counts every row: its cost says how often the consumer can afford it.
    println!("  stats(): {:.0} ms", t0.elapsed().as_secs_f64() * 1000.0);
    // Per tier: readings (raw) or buckets (minute, hour).
    let rows: Vec<String> = stats.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
    let samples: u64 = stats.rows.iter().map(|(_, n)| *n).sum::<u64>();
    // Free pages (raw rows of the synthetic back-fill, deleted by retention) are reused by
    // later writes: the steady state holds the live pages.
    let live = stats.bytes - stats.free_bytes;
    println!(
        "  file {:.1} MiB, of which {:.1} MiB free pages left by retention",
        stats.bytes as f64 / (1 << 20) as f64,
        stats.free_bytes as f64 / (1 << 20) as f64
    );
    let per_host = live as f64 / hosts as f64;
    println!(
        "  {hosts} hosts, {written} readings written; held: {}; {:.1} MiB live, {:.1} MiB per host -> {:.2} GiB for 100 hosts",
        rows.join(", "),
        live as f64 / (1 << 20) as f64,
        per_host / (1 << 20) as f64,
        per_host * 100.0 / (1u64 << 30) as f64
    );
    // Each reading (raw) or bucket (rollups, min / avg / max of each) holds 18 values.
    let values = samples * SAMPLES_PER_READING;
    println!(
        "  {:.2} bytes per stored value ({samples} readings and buckets × {SAMPLES_PER_READING} values)",
        live as f64 / values as f64,
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: i64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60)
        .clamp(1, 3600);
    let hosts: usize = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let postgres = args.get(3).is_none_or(|a| a != "no");
    let template = Reading::from_json(READING.as_bytes()).expect("fixture");

    let dir = std::env::temp_dir().join(format!("hostpulse-bench-history-{}", std::process::id()));
    println!("SQLite ({})", dir.display());
    {
        let write_dir = dir.join("write");
        let store = Store::open(&sqlite_settings(&write_dir))
            .await
            .expect("open")
            .expect("on");
        let (rate, cores) = write_rate(&store, &template, seconds).await;
        println!(
            "  write: {rate:.0} readings/s for {WRITE_HOSTS} hosts ({seconds} s of readings, batches of {WRITE_HOSTS}), {:.0} % of a core",
            cores * 100.0
        );
        store.close().await;
    }
    {
        let fill_dir = dir.join("size");
        let store = Store::open(&sqlite_settings(&fill_dir))
            .await
            .expect("open")
            .expect("on");
        let written = fill(&store, &template, hosts).await;
        report_size(&store, hosts, written).await;
        store.close().await;
        let (address, stop) = serve(&[("DATA_DIR", fill_dir.display().to_string())]).await;
        query_latency(&address).await;
        stop.stop(true).await;
    }
    if std::env::var_os("HISTORY_BENCH_KEEP").is_some() {
        println!("  kept {} (HISTORY_BENCH_KEEP)", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    if postgres {
        let admin = std::env::var("HOSTPULSE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("hp_bench_{}", std::process::id());
        let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await else {
            println!("PostgreSQL: not reachable at {admin}; skipped (scripts/test.sh starts it)");
            return;
        };
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create");
        let mut url = url::Url::parse(&admin).expect("url");
        url.set_path(&name);
        let settings =
            HistorySettings::from_env(&EnvSource::from_pairs([("HISTORY_URL", url.to_string())]))
                .expect("settings");
        println!("PostgreSQL ({name})");
        {
            let store = Store::open(&settings).await.expect("open").expect("on");
            let (rate, cores) = write_rate(&store, &template, seconds).await;
            println!(
                "  write: {rate:.0} readings/s for {WRITE_HOSTS} hosts, {:.0} % of a core in this process (the server's CPU not counted)",
                cores * 100.0
            );
            // One host's full tiers, so each range has its points.
            let written = fill(&store, &template, 1).await;
            println!("  one host's full tiers filled ({written} readings)");
            store.close().await;
            let (address, stop) = serve(&[("HISTORY_URL", url.to_string())]).await;
            query_latency(&address).await;
            stop.stop(true).await;
        }
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop");
    }
}
