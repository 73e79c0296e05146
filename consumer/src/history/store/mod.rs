//! The history store: every reading as narrow integer rows in SQLite (default) or PostgreSQL,
//! rolled up as it arrives into 1-minute and 1-hour min / avg / max, each tier with its own
//! retention, and read back at the tier that fits the range asked for.
//!
//! - `settings`: `HISTORY_URL`, `DATA_DIR`, `HISTORY_*_RETENTION`.
//! - `rows`: readings as rows, and a batch's rollups.
//! - `sql` and `db`: the statements, the same text for both databases.
//! - `query`: which tier answers a range, and the answer for uPlot or CSV.
//!
//! Writes are idempotent: a reading is keyed by (host, collected_at, seq); it is rolled up only
//! when its raw row was actually inserted, so a redelivered reading changes nothing.

mod api_tokens;
mod block;
mod db;
pub mod error;
mod migration_lock;
pub mod query;
pub mod rows;
pub mod settings;
mod sql;
#[doc(hidden)]
#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use query::{Band, History, Plan, Tier};
pub use settings::{HistorySettings, HistoryTarget, Retention};

use chrono::{DateTime, Utc};
use db::{Horizons, ItemKey};
use rows::Row;
use secrecy::ExposeSecret;
use serde::Serialize;
use shared::reading::Reading;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Where the alert evaluator's state is kept in `store_meta`.
const ALERT_STATE_KEY: &str = "alert_state";

/// Rows deleted per statement when enforcing retention: short transactions, so writers and
/// readers are never held up for long.
pub const RETENTION_BATCH: i64 = 5_000;
/// Statements per table and host in one `enforce_retention` call at most (a bounded loop; the
/// next call goes on where this one stopped).
const MAX_DELETE_ROUNDS: usize = 1_000;
/// Times a PostgreSQL write is tried again after a deadlock or serialization failure with a
/// concurrent writer.
const WRITE_ATTEMPTS: usize = 5;
/// How long a query waits for a connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

enum Pool {
    Sqlite {
        pool: sqlx::SqlitePool,
        path: PathBuf,
        /// One writer at a time: SQLite has one write lock, and waiting here is cheaper than
        /// waiting on SQLITE_BUSY.
        write_lock: tokio::sync::Mutex<()>,
    },
    Postgres(sqlx::PgPool),
}

/// What a batch write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteOutcome {
    /// Readings stored now.
    pub written: u64,
    /// Readings already stored (a redelivery, another consumer's write): not counted again.
    pub duplicates: u64,
    /// Readings older than every tier keeps: skipped.
    pub too_old: u64,
    /// Disks or interfaces over the per-reading limit, not stored.
    pub items_dropped: u64,
}

/// Rows deleted by one `enforce_retention` call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionOutcome {
    pub raw: u64,
    pub minute: u64,
    pub hour: u64,
    /// True when the bounded loop stopped with rows still past their age (call again).
    pub more: bool,
}

/// Readings (raw) or buckets (rollups) per tier and bytes used, for `hostpulse_history_rows{tier}` and
/// `hostpulse_history_store_bytes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// `(tier label, readings or buckets)`, finest first.
    pub rows: Vec<(&'static str, u64)>,
    /// Bytes on disk (SQLite: the file and its write-ahead log; PostgreSQL: the database).
    pub bytes: u64,
    /// Of those, free pages left by deleted rows, reused by later writes (SQLite only).
    pub free_bytes: u64,
}

/// A host the store has seen, with its facts from its newest reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HostRecord {
    pub name: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel: String,
    pub cpu_brand: String,
    pub core_count: Option<i64>,
    /// Unix milliseconds of the oldest reading stored.
    pub first_seen: i64,
    /// Unix milliseconds of the newest reading stored.
    pub last_seen: i64,
}

impl HostRecord {
    /// `last_seen` as a time.
    pub fn last_seen_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.last_seen)
    }
}

/// The history store: one pool, one id, the retention of each tier.
pub struct Store {
    pool: Pool,
    id: String,
    retention: Retention,
    location: String,
    /// Passwords to mask in any error text.
    secrets: Vec<String>,
    /// Item ids already known: a disk or interface is looked up once per process. Shared
    /// behind an `Arc` so a batch takes a snapshot without copying it.
    items: Mutex<Arc<HashMap<ItemKey, i64>>>,
    /// The row-per-reading raw table (a database from before the packed tiers) still has
    /// rows: writes check it for readings stored there already.
    legacy_raw: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("location", &self.location)
            .field("id", &self.id)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store the settings name and applies the migrations;
    /// `None` when history is off.
    pub async fn open(settings: &HistorySettings) -> Result<Option<Self>, StoreError> {
        let (pool, secrets) = match &settings.target {
            HistoryTarget::Off => return Ok(None),
            HistoryTarget::Sqlite(path) => (open_sqlite(path).await?, Vec::new()),
            HistoryTarget::Postgres(url) => {
                // In the user part or as `?password=`, as written and decoded.
                let secrets = shared::redact::url_secrets(url.expose_secret());
                let pool = open_postgres(url.expose_secret())
                    .await
                    .map_err(|e| StoreError::from_sqlx(&e, false, &secrets))?;
                (Pool::Postgres(pool), secrets)
            }
        };
        let fresh = format!("{:016x}", rand::random::<u64>());
        let id = match &pool {
            Pool::Sqlite { pool, .. } => db::sqlite::store_id(pool, &fresh).await,
            Pool::Postgres(pool) => db::postgres::store_id(pool, &fresh).await,
        }
        .map_err(|e| StoreError::from_sqlx(&e, matches!(pool, Pool::Sqlite { .. }), &secrets))?;
        let legacy_raw = match &pool {
            Pool::Sqlite { pool, .. } => db::sqlite::has_legacy_raw(pool).await,
            Pool::Postgres(pool) => db::postgres::has_legacy_raw(pool).await,
        }
        .map_err(|e| StoreError::from_sqlx(&e, matches!(pool, Pool::Sqlite { .. }), &secrets))?;
        Ok(Some(Self {
            legacy_raw: std::sync::atomic::AtomicBool::new(legacy_raw),
            pool,
            id,
            retention: settings.retention,
            location: settings.redacted.clone(),
            secrets,
            items: Mutex::new(Arc::new(HashMap::new())),
        }))
    }

    /// The store's id, made at its first open and kept in it: the history queue's name
    /// carries it, so every consumer writing this store shares one queue.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite { .. } => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Where the store is, without a password: for logs and `/health`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// How long each tier keeps rows.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    fn error(&self, e: &sqlx::Error) -> StoreError {
        StoreError::from_sqlx(e, matches!(self.pool, Pool::Sqlite { .. }), &self.secrets)
    }

    /// Stores a batch in one transaction. A reading already stored is counted as a duplicate
    /// and changes nothing; one older than every tier's retention (relative to `now`) is
    /// skipped and counted. On error nothing of the batch is stored.
    pub async fn write_batch<R: Borrow<Reading>>(
        &self,
        readings: &[R],
        now: DateTime<Utc>,
    ) -> Result<WriteOutcome, StoreError> {
        let now_s = now.timestamp();
        let horizon =
            |d: Duration| now_s.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let horizons = Horizons {
            minute_from: horizon(self.retention.minute),
            hour_from: horizon(self.retention.hour),
        };
        let oldest_kept = horizons
            .hour_from
            .min(horizons.minute_from)
            .min(horizon(self.retention.raw));
        let mut outcome = WriteOutcome::default();
        let all: Vec<Row> = readings
            .iter()
            .map(|r| Row::from_reading(r.borrow()))
            .collect();
        let mut rows: Vec<&Row> = Vec::with_capacity(all.len());
        for row in &all {
            if row.ts_s() < oldest_kept {
                outcome.too_old += 1;
            } else {
                outcome.items_dropped += row.items_dropped as u64;
                rows.push(row);
            }
        }
        if outcome.too_old > 0 {
            tracing::warn!(
                skipped = outcome.too_old,
                "history: readings older than every tier's retention skipped"
            );
        }
        if outcome.items_dropped > 0 {
            tracing::warn!(
                dropped = outcome.items_dropped,
                limit = rows::MAX_ITEMS_PER_KIND,
                "history: disks or interfaces over the per-reading limit not stored"
            );
        }
        if rows.is_empty() {
            return Ok(outcome);
        }
        let cache = Arc::clone(&self.items.lock().unwrap_or_else(|p| p.into_inner()));
        let legacy = self.legacy_raw.load(std::sync::atomic::Ordering::Relaxed);
        let written = match &self.pool {
            Pool::Sqlite {
                pool, write_lock, ..
            } => {
                let _one_writer = write_lock.lock().await;
                db::sqlite::write(pool, &rows, horizons, &cache, legacy)
                    .await
                    .map_err(|e| self.error(&e))?
            }
            Pool::Postgres(pool) => {
                let mut attempt = 1;
                loop {
                    match db::postgres::write(pool, &rows, horizons, &cache, legacy).await {
                        Ok(w) => break w,
                        Err(e) => {
                            let e = self.error(&e);
                            if e.reason() != "conflict" || attempt >= WRITE_ATTEMPTS {
                                return Err(e);
                            }
                            tracing::debug!(
                                attempt,
                                "history: write conflicted with another writer; again"
                            );
                            attempt += 1;
                        }
                    }
                }
            }
        };
        if !written.new_items.is_empty() {
            let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            let mut grown = HashMap::clone(&items);
            grown.extend(written.new_items);
            *items = Arc::new(grown);
        }
        outcome.written = written.written;
        outcome.duplicates = written.duplicates;
        Ok(outcome)
    }

    /// A host's history over `[from, to]`, at the tier [`query::plan`] picks for `points`
    /// (default 720, clamped to 500–3,600) as of `now`. `None` for a host the store has never
    /// seen; a range with no data gives empty series.
    pub async fn history(
        &self,
        host: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        points: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Option<History>, StoreError> {
        let (from, to) = (from.timestamp().max(0), to.timestamp());
        if to <= from {
            return Err(StoreError::InvalidQuery(
                "the range must end after it starts".into(),
            ));
        }
        let plan = query::plan(from, to, points, now.timestamp(), &self.retention);
        match &self.pool {
            Pool::Sqlite { pool, .. } => db::sqlite::history(pool, host, from, to, plan).await,
            Pool::Postgres(pool) => db::postgres::history(pool, host, from, to, plan).await,
        }
        .map_err(|e| self.error(&e))
    }

    /// Every host the store knows, by name, with its facts and when it was last seen.
    pub async fn hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        match &self.pool {
            Pool::Sqlite { pool, .. } => db::sqlite::hosts(pool).await,
            Pool::Postgres(pool) => db::postgres::hosts(pool).await,
        }
        .map_err(|e| self.error(&e))
    }

    /// Deletes every row older than its tier's retention as of `now`, in batches; meant to be
    /// called every minute or so. Bounded: `more` says when rows are left for the next call.
    pub async fn enforce_retention(
        &self,
        now: DateTime<Utc>,
    ) -> Result<RetentionOutcome, StoreError> {
        let now_s = now.timestamp();
        let mut outcome = RetentionOutcome::default();
        let hosts = match &self.pool {
            Pool::Sqlite { pool, .. } => db::sqlite::host_ids(pool).await,
            Pool::Postgres(pool) => db::postgres::host_ids(pool).await,
        }
        .map_err(|e| self.error(&e))?;
        for (tier, table, key, time) in sql::RETENTION_TABLES {
            let keeps =
                i64::try_from(tier.retention(&self.retention).as_secs()).unwrap_or(i64::MAX);
            let cutoff = now_s.saturating_sub(keeps);
            let statement = sql::delete_expired(table, key, time);
            for &host in &hosts {
                let mut rounds = 0;
                loop {
                    let deleted = match &self.pool {
                        Pool::Sqlite {
                            pool, write_lock, ..
                        } => {
                            let _one_writer = write_lock.lock().await;
                            db::sqlite::delete_batch(
                                pool,
                                &statement,
                                host,
                                cutoff,
                                RETENTION_BATCH,
                            )
                            .await
                        }
                        Pool::Postgres(pool) => {
                            db::postgres::delete_batch(
                                pool,
                                &statement,
                                host,
                                cutoff,
                                RETENTION_BATCH,
                            )
                            .await
                        }
                    }
                    .map_err(|e| self.error(&e))?;
                    match tier {
                        Tier::Raw => outcome.raw += deleted,
                        Tier::Minute => outcome.minute += deleted,
                        Tier::Hour => outcome.hour += deleted,
                    }
                    rounds += 1;
                    if deleted < RETENTION_BATCH as u64 {
                        break;
                    }
                    if rounds >= MAX_DELETE_ROUNDS {
                        outcome.more = true;
                        break;
                    }
                }
            }
        }
        for tier in Tier::ALL {
            let keeps =
                i64::try_from(tier.retention(&self.retention).as_secs()).unwrap_or(i64::MAX);
            let cutoff = now_s.saturating_sub(keeps);
            for &host in &hosts {
                let mut deleted = 0;
                let mut rounds = 0;
                loop {
                    let (records, blocks) = match &self.pool {
                        Pool::Sqlite {
                            pool, write_lock, ..
                        } => {
                            let _one_writer = write_lock.lock().await;
                            db::sqlite::delete_blocks(pool, tier, host, cutoff, RETENTION_BATCH)
                                .await
                        }
                        Pool::Postgres(pool) => {
                            db::postgres::delete_blocks(pool, tier, host, cutoff, RETENTION_BATCH)
                                .await
                        }
                    }
                    .map_err(|e| self.error(&e))?;
                    deleted += records;
                    rounds += 1;
                    if blocks < RETENTION_BATCH as u64 {
                        break;
                    }
                    if rounds >= MAX_DELETE_ROUNDS {
                        outcome.more = true;
                        break;
                    }
                }
                deleted += match &self.pool {
                    Pool::Sqlite {
                        pool, write_lock, ..
                    } => {
                        let _one_writer = write_lock.lock().await;
                        db::sqlite::trim_block(pool, tier, host, cutoff).await
                    }
                    Pool::Postgres(pool) => {
                        db::postgres::trim_block(pool, tier, host, cutoff).await
                    }
                }
                .map_err(|e| self.error(&e))?;
                match tier {
                    Tier::Raw => outcome.raw += deleted,
                    Tier::Minute => outcome.minute += deleted,
                    Tier::Hour => outcome.hour += deleted,
                }
            }
        }
        Ok(outcome)
    }

    /// Rows per tier and bytes on disk. Counts every row: call it every minute or so, not on
    /// every scrape.
    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        let mut stats = StoreStats::default();
        for tier in Tier::ALL {
            let (host_table, item_table) = tier.tables();
            let mut rows = match &self.pool {
                Pool::Sqlite { pool, .. } => db::sqlite::block_records(pool, tier).await,
                Pool::Postgres(pool) => db::postgres::block_records(pool, tier).await,
            }
            .map_err(|e| self.error(&e))?;
            for table in [host_table, item_table] {
                rows += match &self.pool {
                    Pool::Sqlite { pool, .. } => db::sqlite::count(pool, table).await,
                    Pool::Postgres(pool) => db::postgres::count(pool, table).await,
                }
                .map_err(|e| self.error(&e))?;
            }
            stats
                .rows
                .push((tier.label(), u64::try_from(rows).unwrap_or(0)));
        }
        stats.bytes = match &self.pool {
            Pool::Sqlite { path, pool, .. } => {
                let (free,): (i64,) = sqlx::query_as("PRAGMA freelist_count")
                    .fetch_one(pool)
                    .await
                    .map_err(|e| self.error(&e))?;
                let (page,): (i64,) = sqlx::query_as("PRAGMA page_size")
                    .fetch_one(pool)
                    .await
                    .map_err(|e| self.error(&e))?;
                stats.free_bytes = u64::try_from(free.saturating_mul(page)).unwrap_or(0);
                // The database file and its write-ahead log.
                let mut bytes = 0;
                for suffix in ["", "-wal"] {
                    let mut name = path.clone().into_os_string();
                    name.push(suffix);
                    bytes += std::fs::metadata(&name).map(|m| m.len()).unwrap_or(0);
                }
                bytes
            }
            Pool::Postgres(pool) => {
                let (bytes,): (i64,) =
                    sqlx::query_as("SELECT pg_database_size(current_database())")
                        .fetch_one(pool)
                        .await
                        .map_err(|e| self.error(&e))?;
                u64::try_from(bytes).unwrap_or(0)
            }
        };
        Ok(stats)
    }

    /// The alert evaluator's state as last kept (JSON), so a restart or a hand-over to
    /// another consumer neither forgets an active alert nor tells it again.
    pub async fn alert_state(&self) -> Result<Option<String>, StoreError> {
        match &self.pool {
            Pool::Sqlite { pool, .. } => db::sqlite::meta_get(pool, ALERT_STATE_KEY).await,
            Pool::Postgres(pool) => db::postgres::meta_get(pool, ALERT_STATE_KEY).await,
        }
        .map_err(|e| self.error(&e))
    }

    /// Keeps the alert evaluator's state (JSON), replacing the last.
    pub async fn keep_alert_state(&self, json: &str) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite {
                pool, write_lock, ..
            } => {
                let _one_writer = write_lock.lock().await;
                db::sqlite::meta_set(pool, ALERT_STATE_KEY, json).await
            }
            Pool::Postgres(pool) => db::postgres::meta_set(pool, ALERT_STATE_KEY, json).await,
        }
        .map_err(|e| self.error(&e))
    }

    /// Asks the database for a round trip: `Ok` while it answers (for `/health`).
    pub async fn health(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite { pool, .. } => db::sqlite::ping(pool).await,
            Pool::Postgres(pool) => db::postgres::ping(pool).await,
        }
        .map_err(|e| self.error(&e))
    }

    /// Closes the pool (waits for queries under way).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { pool, .. } => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

async fn open_sqlite(path: &std::path::Path) -> Result<Pool, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        shared::private_files::create_dir(dir, "the history folder (DATA_DIR)").map_err(|e| {
            StoreError::Directory {
                path: dir.display().to_string(),
                problem: e.to_string(),
            }
        })?;
    }
    // Made here, private, before SQLite makes it with its own mode (0644); its -wal and -shm
    // files take the database file's mode.
    shared::private_files::file_options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| StoreError::Directory {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a committed batch survives a power cut, since the broker forgets it once acked.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(ACQUIRE_TIMEOUT)
        // Long ranges read tens of MB of rollups: map the file (shared page cache, no read
        // calls) and give each connection a 16 MiB cache instead of SQLite's 2 MB.
        .pragma("mmap_size", "268435456")
        .pragma("cache_size", "-16384");
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::from_sqlx(&e, true, &[]))?;
    // Another process (the command line, a second consumer) may migrate the same file now.
    let lock = migration_lock::MigrationLock::acquire(path).await?;
    SQLITE_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|e| StoreError::Migration(error::mask(&e.to_string(), &[])))?;
    drop(lock);
    Ok(Pool::Sqlite {
        pool,
        path: path.to_owned(),
        write_lock: tokio::sync::Mutex::new(()),
    })
}

async fn open_postgres(url: &str) -> Result<sqlx::PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("hostpulse-consumer");
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    // Several consumers may start at once: sqlx takes an advisory lock around migrations.
    POSTGRES_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    Ok(pool)
}
