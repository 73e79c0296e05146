//! The store against real databases: SQLite files in a temporary directory, and a fresh
//! database per test on the machine's PostgreSQL (`HOSTPULSE_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Time is synthetic: readings carry chosen
//! timestamps and every call is given its `now`.

use super::*;
use chrono::TimeZone;
use shared::reading::{Cpu, Disk, LoadAverage, Memory, Network, OsInfo, SCHEMA_VERSION};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A round "now": 2026-11-25 00:00:00 UTC.
const NOW: i64 = 1_795_564_800;
const DAY: i64 = 86_400;

/// Every record of `tier`'s packed blocks, as stored, in time order.
async fn records(store: &Store, tier: Tier) -> Vec<block::Rec> {
    let sql = format!("SELECT data FROM {}", block::table(tier));
    let blocks: Vec<(Vec<u8>,)> = match &store.pool {
        Pool::Sqlite { pool, .. } => sqlx::query_as(&sql).fetch_all(pool).await,
        Pool::Postgres(pool) => sqlx::query_as(&sql).fetch_all(pool).await,
    }
    .expect("blocks");
    let mut recs: Vec<block::Rec> = blocks
        .iter()
        .filter(|(d,)| !d.is_empty())
        .flat_map(|(d,)| block::decode(d).expect("a block decodes"))
        .collect();
    recs.sort_by_key(|r| (r.t, r.sub, r.key));
    recs
}

/// The host-wide records (one per reading or bucket) of `tier`.
async fn host_records(store: &Store, tier: Tier) -> Vec<block::Rec> {
    let mut recs = records(store, tier).await;
    recs.retain(|r| r.sub == block::HOST);
    recs
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().expect("valid time")
}

/// A reading of `host` at `secs` whose figures all derive from `v` (0..=100), so tests can
/// predict every stored value.
fn reading(host: &str, secs: i64, seq: u64, v: f32) -> Reading {
    Reading {
        schema_version: SCHEMA_VERSION,
        host: host.into(),
        seq,
        collected_at: at(secs),
        interval_secs: Some(1),
        uptime_secs: Some(100),
        os: OsInfo {
            name: "Debian GNU/Linux".into(),
            version: "12".into(),
            kernel: "6.1.0".into(),
        },
        cpu: Cpu {
            usage_percent: v,
            per_core_percent: vec![v],
            core_count: Some(2),
            brand: "Test CPU".into(),
            frequency_mhz: Some(2400),
            load_average: Some(LoadAverage {
                one: f64::from(v) / 10.0,
                five: 0.5,
                fifteen: 0.25,
            }),
            time_split: None,
        },
        memory: Memory {
            total_bytes: 8 << 30,
            used_bytes: (v as u64) << 20,
            available_bytes: 1,
            usage_percent: v / 2.0,
            swap_total_bytes: 1 << 30,
            swap_used_bytes: 0,
            cached_buffers_bytes: None,
            swap_in_bytes_per_sec: None,
            swap_out_bytes_per_sec: None,
        },
        disks: vec![Disk {
            name: "/dev/vda".into(),
            mount_point: "/".into(),
            file_system: "ext4".into(),
            total_bytes: 1000,
            available_bytes: 1000 - v as u64,
            used_bytes: v as u64,
            usage_percent: v / 10.0,
            reserved_bytes: None,
        }],
        networks: Some(vec![Network {
            interface: "eth0".into(),
            received_bytes_per_sec: (v as u64) * 10,
            transmitted_bytes_per_sec: 5,
            total_received_bytes: 0,
            total_transmitted_bytes: 0,
            receive_errors_per_sec: None,
            transmit_errors_per_sec: None,
            receive_drops_per_sec: None,
            transmit_drops_per_sec: None,
        }]),
        temperatures: vec![],
        legacy: None,
        block_devices: None,
        processes: None,
        pressure: None,
        containers: None,
        labels: None,
    }
}

/// Deterministic, varied percentages (no randomness: a failure can be replayed).
fn wave(i: i64) -> f32 {
    ((i * 37 + (i * i) % 23) % 97) as f32 + 0.25
}

/// An SQLite store in a fresh temporary directory (removed on drop).
struct SqliteStore {
    store: Store,
    dir: PathBuf,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sqlite_settings(dir: &std::path::Path, retention: Retention) -> HistorySettings {
    let env = shared::settings::EnvSource::from_pairs([(
        "DATA_DIR",
        dir.join("nested").display().to_string(),
    )]);
    let mut settings = HistorySettings::from_env(&env).expect("valid settings");
    settings.retention = retention;
    settings
}

async fn sqlite_store(retention: Retention) -> SqliteStore {
    let dir = std::env::temp_dir().join(format!("hostpulse-store-{:016x}", rand::random::<u64>()));
    let store = Store::open(&sqlite_settings(&dir, retention))
        .await
        .expect("opens")
        .expect("history is on");
    SqliteStore { store, dir }
}

use shared::testing::postgres::PgDatabase;

async fn pg_store(db: &PgDatabase, retention: Retention) -> Store {
    let env = shared::settings::EnvSource::from_pairs([("HISTORY_URL", db.url.clone())]);
    let mut settings = HistorySettings::from_env(&env).expect("valid settings");
    settings.retention = retention;
    Store::open(&settings)
        .await
        .expect("opens")
        .expect("history is on")
}

/// Writes `readings` in batches of 500.
async fn write_all(store: &Store, readings: &[Reading], now: i64) -> WriteOutcome {
    let mut total = WriteOutcome::default();
    for chunk in readings.chunks(500) {
        let o = store.write_batch(chunk, at(now)).await.expect("write");
        total.written += o.written;
        total.duplicates += o.duplicates;
        total.too_old += o.too_old;
    }
    total
}

fn series<'a>(h: &'a History, name: &str) -> &'a Band {
    h.series.get(name).unwrap_or_else(|| {
        panic!(
            "no series {name} in {:?}",
            h.series.keys().collect::<Vec<_>>()
        )
    })
}

// ---- bodies shared by both databases ----

async fn write_then_read_back(store: &Store) {
    let readings: Vec<Arc<Reading>> = (0..3)
        .map(|i| {
            Arc::new(reading(
                "web-1",
                NOW - 30 + i * 10,
                i as u64 + 1,
                10.0 * (i + 1) as f32,
            ))
        })
        .collect();
    let outcome = store.write_batch(&readings, at(NOW)).await.expect("write");
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 3,
            ..Default::default()
        }
    );

    let h = store
        .history("web-1", at(NOW - 3600), at(NOW), Some(3600), at(NOW))
        .await
        .expect("query")
        .expect("known host");
    assert_eq!(h.tier, Tier::Raw);
    assert_eq!(h.step_secs, 1);
    assert_eq!(h.times, vec![NOW - 30, NOW - 20, NOW - 10]);
    let cpu = series(&h, "cpu_usage_percent");
    assert_eq!(cpu.avg, vec![Some(10.0), Some(20.0), Some(30.0)]);
    assert_eq!(cpu.min, cpu.avg, "raw points: min = avg = max");
    assert_eq!(cpu.max, cpu.avg);
    assert_eq!(
        series(&h, "memory_used_bytes").avg[1],
        Some(f64::from(20u32 << 20))
    );
    assert_eq!(
        series(&h, "memory_total_bytes").avg[0],
        Some((8u64 << 30) as f64)
    );
    assert_eq!(series(&h, "memory_usage_percent").avg[2], Some(15.0));
    assert_eq!(
        series(&h, "swap_total_bytes").avg[0],
        Some((1u64 << 30) as f64)
    );
    assert_eq!(
        series(&h, "load1").avg,
        vec![Some(1.0), Some(2.0), Some(3.0)]
    );
    assert_eq!(series(&h, "load15").avg[0], Some(0.25));
    assert_eq!(
        series(&h, "disk_used_bytes:/").avg,
        vec![Some(10.0), Some(20.0), Some(30.0)]
    );
    assert_eq!(series(&h, "disk_total_bytes:/").avg[0], Some(1000.0));
    assert_eq!(series(&h, "disk_usage_percent:/").avg[2], Some(3.0));
    assert_eq!(
        series(&h, "network_received_bytes_per_second:eth0").avg[0],
        Some(100.0)
    );
    assert_eq!(
        series(&h, "network_transmitted_bytes_per_second:eth0").avg[0],
        Some(5.0)
    );

    // The JSON is what uPlot takes: times and columns side by side.
    let json = serde_json::to_value(&h).expect("json");
    assert_eq!(json["host"], "web-1");
    assert_eq!(json["step_secs"], 1);
    assert_eq!(json["times"][0], NOW - 30);
    assert_eq!(json["series"]["cpu_usage_percent"]["max"][2], 30.0);
    let csv = h.to_csv().expect("csv");
    assert_eq!(csv.lines().count(), 4, "{csv}");

    // The host is known with its facts; an unknown host is not an error but None.
    let hosts = store.hosts().await.expect("hosts");
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].name, "web-1");
    assert_eq!(hosts[0].kernel, "6.1.0");
    assert_eq!(hosts[0].cpu_brand, "Test CPU");
    assert_eq!(hosts[0].core_count, Some(2));
    assert_eq!(hosts[0].last_seen_at(), Some(at(NOW - 10)));
    assert_eq!(hosts[0].first_seen, (NOW - 30) * 1000);
    assert!(store
        .history("nobody", at(NOW - 60), at(NOW), None, at(NOW))
        .await
        .expect("query")
        .is_none());

    let stats = store.stats().await.expect("stats");
    // 3 readings; one minute and one hour bucket.
    assert_eq!(stats.rows, vec![("raw", 3), ("minute", 1), ("hour", 1)]);
    assert!(stats.bytes > 0);
    store.health().await.expect("healthy");
}

/// Checks every rollup row against min / avg / max computed here from the raw rows.
async fn rollups_match_raw(store: &Store) {
    // Two hours and a bit at 1 s, starting mid-hour and mid-minute.
    let start = NOW - 2 * 3600 - 1234;
    let readings: Vec<Reading> = (0..(2 * 3600 + 1234))
        .map(|i| reading("db-1", start + i, i as u64, wave(i)))
        .collect();
    let outcome = write_all(store, &readings, NOW).await;
    assert_eq!(outcome.written, readings.len() as u64);

    // Raw readings as stored (cpu, load1), grouped here.
    let raw: Vec<(i64, i64, i64)> = host_records(store, Tier::Raw)
        .await
        .iter()
        .map(|r| (r.t, r.vals[0].expect("cpu"), r.vals[6].expect("load1")))
        .collect();
    assert_eq!(raw.len(), readings.len());
    for (tier, secs) in [(Tier::Minute, 60), (Tier::Hour, 3600)] {
        let mut expected: BTreeMap<i64, (i64, i64, i64, i64, i64)> = BTreeMap::new();
        for (ts, cpu, load1) in &raw {
            let bucket = ts.div_euclid(secs) * secs;
            let e = expected
                .entry(bucket)
                .or_insert((0, i64::MAX, 0, i64::MIN, 0));
            e.0 += 1;
            e.1 = e.1.min(*cpu);
            e.2 += cpu;
            e.3 = e.3.max(*cpu);
            e.4 += load1;
        }
        // Host rollups: n, load_n, then min / sum / max per figure (cpu first, load1 7th).
        let stored: BTreeMap<i64, (i64, i64, i64, i64, i64)> = host_records(store, tier)
            .await
            .iter()
            .map(|r| {
                let v = |i: usize| r.vals[i].expect("value");
                (r.t, (v(0), v(2), v(3), v(4), v(2 + 3 * 6 + 1)))
            })
            .collect();
        assert_eq!(stored, expected, "{tier:?}");
    }

    // Through the API: a 24 h view comes from the minute tier, min / avg / max per 2 minutes
    // as computed from the inputs.
    let h = store
        .history("db-1", at(NOW - DAY), at(NOW), None, at(NOW))
        .await
        .expect("query")
        .expect("known");
    assert_eq!(h.tier, Tier::Minute);
    assert_eq!(h.step_secs, 120);
    let cpu = series(&h, "cpu_usage_percent");
    for (i, t) in h.times.iter().enumerate() {
        let inside: Vec<f64> = readings
            .iter()
            .filter(|r| r.collected_at.timestamp().div_euclid(120) * 120 == *t)
            .map(|r| f64::from(r.cpu.usage_percent))
            .collect();
        let min = inside.iter().copied().fold(f64::INFINITY, f64::min);
        let max = inside.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = inside.iter().sum::<f64>() / inside.len() as f64;
        assert_eq!(cpu.min[i], Some(min), "min at {t}");
        assert_eq!(cpu.max[i], Some(max), "max at {t}");
        let got = cpu.avg[i].expect("avg");
        assert!((got - avg).abs() < 1e-9, "avg at {t}: {got} vs {avg}");
    }
}

async fn duplicates_and_late_readings(store: &Store) {
    let batch: Vec<Reading> = (0..10)
        .map(|i| reading("app-1", NOW - 100 + i, i as u64, 50.0))
        .collect();
    assert_eq!(write_all(store, &batch, NOW).await.written, 10);
    // The same readings again (a redelivery), and one reading twice within a batch.
    let again = write_all(store, &batch, NOW).await;
    assert_eq!((again.written, again.duplicates), (0, 10));
    let twice = vec![
        reading("app-1", NOW - 50, 99, 70.0),
        reading("app-1", NOW - 50, 99, 70.0),
    ];
    let o = store.write_batch(&twice, at(NOW)).await.expect("write");
    assert_eq!((o.written, o.duplicates), (1, 1));

    // A late reading, three hours old, lands in its minute and hour buckets.
    let late = reading("app-1", NOW - 3 * 3600 + 5, 1000, 90.0);
    assert_eq!(
        store
            .write_batch(std::slice::from_ref(&late), at(NOW))
            .await
            .expect("write")
            .written,
        1
    );
    assert_eq!(
        store
            .write_batch(&[late], at(NOW))
            .await
            .expect("write")
            .duplicates,
        1
    );
    // One older than every tier's retention is skipped and counted.
    let ancient = reading("app-1", NOW - 401 * DAY, 1, 10.0);
    let o = store.write_batch(&[ancient], at(NOW)).await.expect("write");
    assert_eq!((o.written, o.too_old), (0, 1));

    // Each reading counted once: ten at 50 % in one minute, one at 70 % in the next.
    let h = store
        .history("app-1", at(NOW - DAY), at(NOW), Some(1440), at(NOW))
        .await
        .expect("query")
        .expect("known");
    assert_eq!(h.tier, Tier::Minute);
    assert_eq!(h.step_secs, 60);
    let cpu = series(&h, "cpu_usage_percent");
    let recent = h
        .times
        .iter()
        .position(|t| *t == NOW - 120)
        .expect("bucket of NOW-100");
    assert_eq!(
        (cpu.min[recent], cpu.avg[recent], cpu.max[recent]),
        (Some(50.0), Some(50.0), Some(50.0))
    );
    let last = h
        .times
        .iter()
        .position(|t| *t == NOW - 60)
        .expect("bucket of NOW-50");
    assert_eq!((cpu.min[last], cpu.max[last]), (Some(70.0), Some(70.0)));
    let late_at = h
        .times
        .iter()
        .position(|t| *t == NOW - 3 * 3600)
        .expect("late bucket");
    assert_eq!(cpu.avg[late_at], Some(90.0));
    let n: Vec<i64> = host_records(store, Tier::Minute)
        .await
        .iter()
        .map(|r| r.vals[0].expect("n"))
        .collect();
    assert_eq!(n.iter().sum::<i64>(), 12, "every reading counted once");
}

/// Retention of 1 h raw, 2 h minute, 3 h hour; data every 10 s over 5 hours.
async fn retention_deletes_exactly_what_is_past_its_age(store: &Store) {
    let start = NOW - 5 * 3600;
    let readings: Vec<Reading> = (0..(5 * 360))
        .map(|i| reading("old-1", start + i * 10, i as u64, 20.0))
        .collect();
    // Written ten minutes at a time as they would arrive, so each is within every tier then.
    for chunk in readings.chunks(60) {
        let now = chunk.last().map_or(NOW, |r| r.collected_at.timestamp());
        let o = store.write_batch(chunk, at(now)).await.expect("write");
        assert_eq!(o.written, 60);
    }
    let held = |recs: Vec<block::Rec>| {
        let hosts = recs.iter().filter(|r| r.sub == block::HOST).count();
        let first = recs.iter().map(|r| r.t).min();
        (hosts, recs.len() - hosts, first)
    };
    let before = (
        held(records(store, Tier::Raw).await).0,
        held(records(store, Tier::Minute).await).0,
        held(records(store, Tier::Hour).await).0,
    );
    assert_eq!(before, (1800, 300, 5));

    let outcome = store.enforce_retention(at(NOW)).await.expect("retention");
    // Raw: readings before NOW-1h go (1440 of them, with their disk and interface figures);
    // minute: buckets starting before NOW-2h (180); hour: buckets starting before NOW-3h (2).
    assert_eq!(
        outcome,
        RetentionOutcome {
            raw: 1440,
            minute: 180,
            hour: 2,
            more: false
        }
    );
    assert_eq!(
        held(records(store, Tier::Raw).await),
        (360, 720, Some(NOW - 3600))
    );
    assert_eq!(
        held(records(store, Tier::Minute).await),
        (120, 240, Some(NOW - 2 * 3600))
    );
    assert_eq!(
        held(records(store, Tier::Hour).await),
        (3, 6, Some(NOW - 3 * 3600))
    );
    // Again: nothing left to delete.
    assert_eq!(
        store.enforce_retention(at(NOW)).await.expect("retention"),
        RetentionOutcome::default()
    );
}

fn short_retention() -> Retention {
    Retention {
        raw: Duration::from_secs(3600),
        minute: Duration::from_secs(2 * 3600),
        hour: Duration::from_secs(3 * 3600),
    }
}

// ---- SQLite ----

#[tokio::test]
async fn sqlite_write_then_read_back_and_reopen() {
    let s = sqlite_store(Retention::default()).await;
    write_then_read_back(&s.store).await;
    let id = s.store.id().to_owned();
    assert_eq!(id.len(), 16);
    s.store.close().await;
    // The file was created in a directory made for it; reopened, it keeps its id and data.
    let again = Store::open(&sqlite_settings(&s.dir, Retention::default()))
        .await
        .expect("reopens")
        .expect("on");
    assert_eq!(again.id(), id);
    assert_eq!(again.hosts().await.expect("hosts").len(), 1);
}

#[tokio::test]
async fn sqlite_rollups_equal_min_avg_max_of_the_raw_rows() {
    let s = sqlite_store(Retention::default()).await;
    rollups_match_raw(&s.store).await;
}

#[tokio::test]
async fn sqlite_duplicates_are_stored_once_and_late_readings_land_in_their_buckets() {
    let s = sqlite_store(Retention::default()).await;
    duplicates_and_late_readings(&s.store).await;
}

#[tokio::test]
async fn sqlite_retention_deletes_exactly_what_is_past_its_age() {
    let s = sqlite_store(short_retention()).await;
    retention_deletes_exactly_what_is_past_its_age(&s.store).await;
}

#[tokio::test]
async fn sqlite_each_range_answers_from_its_tier_and_a_spike_survives() {
    let s = sqlite_store(Retention::default()).await;
    let store = &s.store;
    // Dense where each range needs it: the last hour at 1 s, the last day every minute, the
    // last week every 5 minutes, the last 30 days every 30 minutes, the year every 6 hours.
    let mut times: Vec<i64> = Vec::new();
    times.extend((0..3600).map(|i| NOW - 3600 + i));
    times.extend((0..1440).map(|i| NOW - DAY + i * 60));
    times.extend((0..2016).map(|i| NOW - 7 * DAY + i * 300));
    times.extend((0..1440).map(|i| NOW - 30 * DAY + i * 1800));
    times.extend((0..1460).map(|i| NOW - 365 * DAY + i * 21_600));
    times.sort_unstable();
    times.dedup();
    let spike_at = NOW - 3 * DAY - 1234;
    let mut readings: Vec<Reading> = times
        .iter()
        .enumerate()
        .map(|(i, t)| reading("fleet-1", *t, i as u64, 5.0 + (i % 10) as f32))
        .collect();
    readings.push(reading("fleet-1", spike_at, 999_999, 100.0));
    write_all(store, &readings, NOW).await;

    for (range, tier) in [
        (3600, Tier::Raw),
        (DAY, Tier::Minute),
        (7 * DAY, Tier::Minute),
        (30 * DAY, Tier::Hour),
        (365 * DAY, Tier::Hour),
    ] {
        let h = store
            .history("fleet-1", at(NOW - range), at(NOW), None, at(NOW))
            .await
            .expect("query")
            .expect("known");
        assert_eq!(h.tier, tier, "range {range}");
        let points = h.times.len();
        assert!(
            (500..=3600).contains(&points),
            "range {range}: {points} points"
        );
        let cpu = series(&h, "cpu_usage_percent");
        assert_eq!(cpu.avg.len(), points);
        let max = cpu.max.iter().flatten().copied().fold(0.0, f64::max);
        if range >= 7 * DAY {
            assert_eq!(
                max, 100.0,
                "the one-second spike is in the {range} s view's max"
            );
            let avg = cpu.avg.iter().flatten().copied().fold(0.0, f64::max);
            assert!(avg < 100.0, "the average alone would hide it");
        } else {
            assert!(max < 100.0);
        }
    }
}

#[tokio::test]
async fn opening_with_history_off_gives_no_store() {
    let env = shared::settings::EnvSource::from_pairs([("HISTORY_URL", "off")]);
    let settings = HistorySettings::from_env(&env).expect("valid");
    assert!(Store::open(&settings).await.expect("no error").is_none());
}

// ---- PostgreSQL ----

#[tokio::test]
async fn postgres_write_then_read_back() {
    let db = PgDatabase::create().await;
    let store = pg_store(&db, Retention::default()).await;
    write_then_read_back(&store).await;
    let id = store.id().to_owned();
    store.close().await;
    assert_eq!(
        pg_store(&db, Retention::default()).await.id(),
        id,
        "the id is kept in the store"
    );
}

#[tokio::test]
async fn postgres_rollups_equal_min_avg_max_of_the_raw_rows() {
    let db = PgDatabase::create().await;
    rollups_match_raw(&pg_store(&db, Retention::default()).await).await;
}

#[tokio::test]
async fn postgres_duplicates_are_stored_once_and_late_readings_land_in_their_buckets() {
    let db = PgDatabase::create().await;
    duplicates_and_late_readings(&pg_store(&db, Retention::default()).await).await;
}

#[tokio::test]
async fn postgres_retention_deletes_exactly_what_is_past_its_age() {
    let db = PgDatabase::create().await;
    retention_deletes_exactly_what_is_past_its_age(&pg_store(&db, short_retention()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_writers_store_each_reading_once() {
    let db = PgDatabase::create().await;
    let (a, b) = (
        pg_store(&db, Retention::default()).await,
        pg_store(&db, Retention::default()).await,
    );
    assert_eq!(a.id(), b.id(), "two consumers of one store share its id");
    // 20 hosts × 100 s, written by both writers at once in different batch orders.
    let readings: Vec<Reading> = (0..2000)
        .map(|i| {
            reading(
                &format!("h{}", i % 20),
                NOW - 200 + i / 20,
                (i / 20) as u64,
                wave(i),
            )
        })
        .collect();
    let mut reversed = readings.clone();
    reversed.reverse();
    let (ra, rb) = tokio::join!(
        async {
            let mut total = WriteOutcome::default();
            for chunk in readings.chunks(150) {
                let o = a.write_batch(chunk, at(NOW)).await.expect("writer a");
                total.written += o.written;
                total.duplicates += o.duplicates;
            }
            total
        },
        async {
            let mut total = WriteOutcome::default();
            for chunk in reversed.chunks(70) {
                let o = b.write_batch(chunk, at(NOW)).await.expect("writer b");
                total.written += o.written;
                total.duplicates += o.duplicates;
            }
            total
        }
    );
    assert_eq!(ra.written + rb.written, 2000, "{ra:?} {rb:?}");
    assert_eq!(ra.duplicates + rb.duplicates, 2000, "{ra:?} {rb:?}");
    let raw = records(&a, Tier::Raw).await;
    let readings = raw.iter().filter(|r| r.sub == block::HOST).count();
    assert_eq!(readings, 2000);
    assert_eq!(
        raw.len() - readings,
        4000,
        "one disk and one interface each"
    );
    let n: i64 = host_records(&a, Tier::Minute)
        .await
        .iter()
        .map(|r| r.vals[0].expect("n"))
        .sum();
    assert_eq!(n, 2000, "each reading rolled up once");
    let Pool::Postgres(pool) = &a.pool else {
        panic!("postgres")
    };
    let (hosts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM hosts")
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!(hosts, 20);
    let (item_rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM items")
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!(item_rows, 40, "one disk and one interface per host");
}

#[tokio::test]
async fn postgres_errors_never_show_the_password() {
    // Nothing listens on port 1: the connection fails, and the error must not quote the URL.
    let env = shared::settings::EnvSource::from_pairs([(
        "HISTORY_URL",
        "postgres://hp:pw-never-shown-42@127.0.0.1:1/history?connect_timeout=2",
    )]);
    let settings = HistorySettings::from_env(&env).expect("valid");
    let err = Store::open(&settings).await.expect_err("nothing listens");
    assert_eq!(err.reason(), "unavailable", "{err}");
    assert!(!err.to_string().contains("pw-never-shown-42"), "{err}");
    assert!(!format!("{err:?}").contains("pw-never-shown-42"), "{err:?}");
}

/// The lead's sinks run the store from spawned tasks: its futures must be `Send`.
#[allow(dead_code)]
fn store_futures_are_send(store: &Store, batch: &[&Reading]) {
    fn send<T: Send>(_: T) {}
    send(store.write_batch(batch, at(NOW)));
    send(store.history("h", at(NOW - 60), at(NOW), None, at(NOW)));
    send(store.enforce_retention(at(NOW)));
    send(store.stats());
    send(store.hosts());
    send(store.health());
}

/// The rows the row-per-reading writer (before the packed tiers) left: host `old-1`, its disk
/// `/`, three readings at 10, 20, 30 % and their minute and hour buckets. Plain SQL that both
/// databases take.
fn rows_from_before_the_packed_tiers() -> Vec<String> {
    let statements = [
        format!("INSERT INTO hosts VALUES (1, 'old-1', 'Debian GNU/Linux', '12', '6.1.0', 'Test CPU', 2, {}, {})", (NOW - 30) * 1000, (NOW - 28) * 1000),
        "INSERT INTO items VALUES (1, 1, 0, '/')".to_owned(),
        format!("INSERT INTO raw_host VALUES (1, {}, 0, 1000, 1, 2, 3, 0, 4, NULL, NULL, NULL), (1, {}, 1, 2000, 1, 2, 3, 0, 4, NULL, NULL, NULL), (1, {}, 2, 3000, 1, 2, 3, 0, 4, NULL, NULL, NULL)", NOW - 30, NOW - 29, NOW - 28),
        format!("INSERT INTO raw_item VALUES (1, {}, 0, 1, 5, 1000, 50), (1, {}, 1, 1, 5, 1000, 50), (1, {}, 2, 1, 5, 1000, 50)", NOW - 30, NOW - 29, NOW - 28),
    ];
    let mut rollups = Vec::new();
    for (table, bucket) in [("minute_host", NOW - 60), ("hour_host", NOW - 3600)] {
        rollups.push(format!(
            "INSERT INTO {table} VALUES (1, {bucket}, 3, 1000, 6000, 3000, 1, 3, 1, 2, 6, 2, 3, 9, 3, 0, 0, 0, 4, 12, 4, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        ));
    }
    statements.into_iter().chain(rollups).collect()
}

/// A store opened on a database from before the packed tiers keeps its history: a redelivered
/// old reading is still stored once, and new readings merge with the old rows in every tier.
async fn a_database_from_before_the_packed_tiers_keeps_its_history(store: &Store) {
    // Redelivered: stored already (in the old table), so not again.
    let again = store
        .write_batch(&[reading("old-1", NOW - 29, 1, 20.0)], at(NOW))
        .await
        .expect("write");
    assert_eq!((again.written, again.duplicates), (0, 1));
    let new = store
        .write_batch(&[reading("old-1", NOW - 27, 3, 40.0)], at(NOW))
        .await
        .expect("write");
    assert_eq!(new.written, 1);

    let raw = store
        .history("old-1", at(NOW - 3600), at(NOW), Some(3600), at(NOW))
        .await
        .expect("query")
        .expect("known");
    assert_eq!((raw.tier, raw.step_secs), (Tier::Raw, 1));
    assert_eq!(raw.times, vec![NOW - 30, NOW - 29, NOW - 28, NOW - 27]);
    assert_eq!(
        series(&raw, "cpu_usage_percent").avg,
        vec![Some(10.0), Some(20.0), Some(30.0), Some(40.0)]
    );
    assert_eq!(series(&raw, "disk_used_bytes:/").avg.len(), 4);
    // The minute and hour buckets merge the old rows with the new reading.
    for (range, tier) in [(DAY, Tier::Minute), (365 * DAY, Tier::Hour)] {
        let h = store
            .history("old-1", at(NOW - range), at(NOW), Some(500), at(NOW))
            .await
            .expect("query")
            .expect("known");
        assert_eq!(h.tier, tier);
        let cpu = series(&h, "cpu_usage_percent");
        let last = h.times.len() - 1;
        assert_eq!(
            (cpu.min[last], cpu.avg[last], cpu.max[last]),
            (Some(10.0), Some(25.0), Some(40.0)),
            "{tier:?}"
        );
    }
}

/// A SQLite file written before the packed tiers (only migration 0001, rows per reading).
#[tokio::test]
async fn sqlite_a_database_from_before_the_packed_tiers_keeps_its_history() {
    let dir = std::env::temp_dir().join(format!("hostpulse-store-{:016x}", rand::random::<u64>()));
    let settings = sqlite_settings(&dir, Retention::default());
    let HistoryTarget::Sqlite(path) = &settings.target else {
        panic!("sqlite")
    };
    // The first migration alone, as the consumer before this change applied it.
    let old = dir.join("migrations-0001");
    std::fs::create_dir_all(&old).expect("dir");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(
        old.join("0001_history.sql"),
        include_str!("../../../migrations/sqlite/0001_history.sql"),
    )
    .expect("copy");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("opens");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("migrations")
        .run(&pool)
        .await
        .expect("0001");
    for sql in rows_from_before_the_packed_tiers() {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    pool.close().await;

    let store = Store::open(&settings).await.expect("opens").expect("on");
    a_database_from_before_the_packed_tiers_keeps_its_history(&store).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same in PostgreSQL: a database that only migration 0001 ever touched.
#[tokio::test]
async fn postgres_a_database_from_before_the_packed_tiers_keeps_its_history() {
    let db = PgDatabase::create().await;
    let old = std::env::temp_dir().join(format!(
        "hostpulse-pg-migrations-0001-{:016x}",
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&old).expect("dir");
    std::fs::write(
        old.join("0001_history.sql"),
        include_str!("../../../migrations/postgres/0001_history.sql"),
    )
    .expect("copy");
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connects");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("migrations")
        .run(&pool)
        .await
        .expect("0001");
    for sql in rows_from_before_the_packed_tiers() {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    // Ids given explicitly above; the old writer's ids came from the sequences.
    for table in ["hosts", "items"] {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        ))
        .execute(&pool)
        .await
        .expect("setval");
    }
    pool.close().await;
    let _ = std::fs::remove_dir_all(&old);

    let store = pg_store(&db, Retention::default()).await;
    a_database_from_before_the_packed_tiers_keeps_its_history(&store).await;
    store.close().await;
}
