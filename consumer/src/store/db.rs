//! The statements, written once and compiled for each database: `backend!` expands the same
//! code with `sqlx::Sqlite` and with `sqlx::Postgres`.

use super::query::{Assembler, History, Plan};
use super::rows::{item_series, ItemKind, Rollups, Row, HOST_METRICS};
use super::sql;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// An item's key: host id, kind code, name.
pub(crate) type ItemKey = (i64, i64, String);

/// What one write transaction did.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub written: u64,
    pub duplicates: u64,
    /// Item ids created or first looked up in this transaction, for the cache after commit.
    pub new_items: Vec<(ItemKey, i64)>,
}

/// Which tiers a batch's rows roll up into (by reading time, unix seconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Horizons {
    pub minute_from: i64,
    pub hour_from: i64,
}

/// Rows per statement for a table of `columns` columns.
fn chunk_rows(columns: usize) -> usize {
    (sql::MAX_BINDS / columns).max(1)
}

macro_rules! backend {
    ($module:ident, $Db:ty, $begin:expr) => {
        pub(crate) mod $module {
            use super::*;
            use sqlx::{QueryBuilder, Row as _};

            type Db = $Db;
            type Pool = sqlx::Pool<Db>;

            /// The store's id, created at first open (two first opens at once agree).
            pub(crate) async fn store_id(pool: &Pool, fresh: &str) -> Result<String, sqlx::Error> {
                sqlx::query("INSERT INTO store_meta (key, value) VALUES ('store_id', $1) ON CONFLICT (key) DO NOTHING")
                    .bind(fresh)
                    .execute(pool)
                    .await?;
                let (id,): (String,) =
                    sqlx::query_as("SELECT value FROM store_meta WHERE key = 'store_id'")
                        .fetch_one(pool)
                        .await?;
                Ok(id)
            }

            /// A value kept under `key` in the store's own table, if any.
            pub(crate) async fn meta_get(pool: &Pool, key: &str) -> Result<Option<String>, sqlx::Error> {
                let found: Option<(String,)> =
                    sqlx::query_as("SELECT value FROM store_meta WHERE key = $1")
                        .bind(key)
                        .fetch_optional(pool)
                        .await?;
                Ok(found.map(|(value,)| value))
            }

            /// Keeps `value` under `key`, replacing what was there.
            pub(crate) async fn meta_set(pool: &Pool, key: &str, value: &str) -> Result<(), sqlx::Error> {
                sqlx::query("INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                    .bind(key)
                    .bind(value)
                    .execute(pool)
                    .await?;
                Ok(())
            }

            /// Writes `rows` in one transaction: raw rows that were not there yet, and only
            /// those rolled up.
            pub(crate) async fn write(
                pool: &Pool,
                rows: &[&Row],
                horizons: Horizons,
                cache: &HashMap<ItemKey, i64>,
            ) -> Result<Written, sqlx::Error> {
                let mut tx = pool.begin_with($begin).await?;

                // Hosts: facts from each host's newest reading, first and last seen widened.
                let mut per_host: BTreeMap<&str, (i64, i64, &Row)> = BTreeMap::new();
                for row in rows {
                    let entry = per_host.entry(row.host.as_str()).or_insert((row.ts_ms, row.ts_ms, row));
                    entry.0 = entry.0.min(row.ts_ms);
                    if row.ts_ms >= entry.1 {
                        entry.1 = row.ts_ms;
                        entry.2 = row;
                    }
                }
                let mut host_ids: HashMap<String, i64> = HashMap::with_capacity(per_host.len());
                let hosts: Vec<_> = per_host.into_iter().collect();
                for chunk in hosts.chunks(chunk_rows(8)) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "INSERT INTO hosts (name, os_name, os_version, kernel, cpu_brand, core_count, first_seen, last_seen) ",
                    );
                    qb.push_values(chunk, |mut b, (name, (first, last, row))| {
                        let f = &row.facts;
                        b.push_bind(*name)
                            .push_bind(f.os_name.as_str())
                            .push_bind(f.os_version.as_str())
                            .push_bind(f.kernel.as_str())
                            .push_bind(f.cpu_brand.as_str())
                            .push_bind(f.core_count)
                            .push_bind(*first)
                            .push_bind(*last);
                    });
                    qb.push(HOSTS_UPSERT);
                    let returned: Vec<(i64, String)> =
                        qb.build_query_as().persistent(false).fetch_all(&mut *tx).await?;
                    host_ids.extend(returned.into_iter().map(|(id, name)| (name, id)));
                }
                let host_id = |name: &str| host_ids.get(name).copied();

                // Items not known yet.
                let mut wanted: BTreeSet<ItemKey> = BTreeSet::new();
                for row in rows {
                    let Some(h) = host_id(&row.host) else { continue };
                    for item in &row.items {
                        let key = (h, item.kind.code(), item.name.clone());
                        if !cache.contains_key(&key) {
                            wanted.insert(key);
                        }
                    }
                }
                let wanted: Vec<ItemKey> = wanted.into_iter().collect();
                let mut new_items: HashMap<ItemKey, i64> = HashMap::new();
                for chunk in wanted.chunks(chunk_rows(3)) {
                    let mut qb = QueryBuilder::<Db>::new("INSERT INTO items (host_id, kind, name) ");
                    qb.push_values(chunk, |mut b, (h, kind, name)| {
                        b.push_bind(*h).push_bind(*kind).push_bind(name.as_str());
                    });
                    // A no-op update so RETURNING names existing rows too.
                    qb.push(" ON CONFLICT (host_id, kind, name) DO UPDATE SET name = excluded.name RETURNING id, host_id, kind, name");
                    let returned: Vec<(i64, i64, i64, String)> =
                        qb.build_query_as().persistent(false).fetch_all(&mut *tx).await?;
                    for (id, h, kind, name) in returned {
                        new_items.insert((h, kind, name), id);
                    }
                }
                let item_id = |h: i64, kind: ItemKind, name: &str| {
                    let key = (h, kind.code(), name.to_owned());
                    cache.get(&key).or_else(|| new_items.get(&key)).copied()
                };

                // Raw rows, in key order so concurrent writers lock rows in the same order.
                let mut keyed: Vec<(i64, &Row)> = rows
                    .iter()
                    .filter_map(|row| host_id(&row.host).map(|h| (h, *row)))
                    .collect();
                keyed.sort_by_key(|(h, row)| (*h, row.ts_s(), row.seq));
                let mut inserted: HashSet<(i64, i64, i64)> = HashSet::with_capacity(keyed.len());
                for chunk in keyed.chunks(chunk_rows(sql::RAW_HOST_COLUMNS.len())) {
                    let mut qb = QueryBuilder::<Db>::new(sql::insert_prefix("raw_host", &sql::RAW_HOST_COLUMNS));
                    qb.push_values(chunk, |mut b, (h, row)| {
                        b.push_bind(*h).push_bind(row.ts_s()).push_bind(row.seq);
                        for v in row.values {
                            b.push_bind(v);
                        }
                    });
                    qb.push(" ON CONFLICT DO NOTHING RETURNING host_id, ts, seq");
                    let returned: Vec<(i64, i64, i64)> =
                        qb.build_query_as().persistent(false).fetch_all(&mut *tx).await?;
                    inserted.extend(returned);
                }

                let mut out = Written::default();
                let mut stored: Vec<(i64, &Row, Vec<i64>)> = Vec::with_capacity(keyed.len());
                for (h, row) in keyed {
                    // Removed once seen: the same reading twice in one batch counts once.
                    if inserted.remove(&(h, row.ts_s(), row.seq)) {
                        out.written += 1;
                        let ids: Vec<i64> = row
                            .items
                            .iter()
                            .filter_map(|item| item_id(h, item.kind, &item.name))
                            .collect();
                        stored.push((h, row, ids));
                    } else {
                        out.duplicates += 1;
                    }
                }

                let item_rows: Vec<(i64, &Row, i64, [Option<i64>; 3])> = stored
                    .iter()
                    .flat_map(|(h, row, ids)| {
                        row.items.iter().zip(ids).map(move |(item, id)| (*h, *row, *id, item.values))
                    })
                    .collect();
                for chunk in item_rows.chunks(chunk_rows(7)) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "INSERT INTO raw_item (host_id, ts, seq, item_id, v1, v2, v3) ",
                    );
                    qb.push_values(chunk, |mut b, (h, row, id, values)| {
                        b.push_bind(*h).push_bind(row.ts_s()).push_bind(row.seq).push_bind(*id);
                        for v in values {
                            b.push_bind(*v);
                        }
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().persistent(false).execute(&mut *tx).await?;
                }

                // Rollups of what was stored, for the tiers that still keep that time.
                for (from, table_host, table_item, secs) in [
                    (horizons.minute_from, "minute_host", "minute_item", 60),
                    (horizons.hour_from, "hour_host", "hour_item", 3600),
                ] {
                    let mut rollups = Rollups::default();
                    for (h, row, ids) in &stored {
                        if row.ts_s() >= from {
                            rollups.add(*h, row, ids, secs);
                        }
                    }
                    let host_aggs: Vec<_> = rollups.hosts.into_iter().collect();
                    let cols = &*sql::ROLLUP_HOST_COLUMNS;
                    for chunk in host_aggs.chunks(chunk_rows(cols.len())) {
                        let mut qb = QueryBuilder::<Db>::new(sql::insert_prefix(table_host, cols));
                        qb.push_values(chunk, |mut b, ((h, bucket), agg)| {
                            b.push_bind(*h).push_bind(*bucket).push_bind(agg.n);
                            for (i, m) in HOST_METRICS.iter().enumerate() {
                                if m.nullable {
                                    continue;
                                }
                                let c = agg.cols[i];
                                b.push_bind(c.map(|c| c.min))
                                    .push_bind(c.map(|c| c.sum))
                                    .push_bind(c.map(|c| c.max));
                            }
                            b.push_bind(agg.load_n);
                            for (i, m) in HOST_METRICS.iter().enumerate() {
                                if !m.nullable {
                                    continue;
                                }
                                let c = agg.cols[i];
                                b.push_bind(c.map(|c| c.min))
                                    .push_bind(c.map(|c| c.sum))
                                    .push_bind(c.map(|c| c.max));
                            }
                        });
                        qb.push(sql::rollup_upsert_suffix(table_host, "host_id, bucket", cols));
                        qb.build().persistent(false).execute(&mut *tx).await?;
                    }
                    let item_aggs: Vec<_> = rollups.items.into_iter().collect();
                    let cols = &*sql::ROLLUP_ITEM_COLUMNS;
                    for chunk in item_aggs.chunks(chunk_rows(cols.len())) {
                        let mut qb = QueryBuilder::<Db>::new(sql::insert_prefix(table_item, cols));
                        qb.push_values(chunk, |mut b, ((h, bucket, id), agg)| {
                            b.push_bind(*h).push_bind(*bucket).push_bind(*id).push_bind(agg.n);
                            for c in agg.cols {
                                b.push_bind(c.map(|c| c.min))
                                    .push_bind(c.map(|c| c.sum))
                                    .push_bind(c.map(|c| c.max));
                            }
                        });
                        qb.push(sql::rollup_upsert_suffix(table_item, "host_id, bucket, item_id", cols));
                        qb.build().persistent(false).execute(&mut *tx).await?;
                    }
                }

                tx.commit().await?;
                out.new_items = new_items.into_iter().collect();
                Ok(out)
            }

            /// A host's history over `[from, to]` (unix seconds) as `plan` says; `None` for a
            /// host the store does not know.
            pub(crate) async fn history(
                pool: &Pool,
                host: &str,
                from: i64,
                to: i64,
                plan: Plan,
            ) -> Result<Option<History>, sqlx::Error> {
                let Some((host_id,)): Option<(i64,)> =
                    sqlx::query_as("SELECT id FROM hosts WHERE name = $1")
                        .bind(host)
                        .fetch_optional(pool)
                        .await?
                else {
                    return Ok(None);
                };
                let items: Vec<(i64, i64, String)> =
                    sqlx::query_as("SELECT id, kind, name FROM items WHERE host_id = $1")
                        .bind(host_id)
                        .fetch_all(pool)
                        .await?;
                let items: HashMap<i64, (ItemKind, String)> = items
                    .into_iter()
                    .filter_map(|(id, kind, name)| ItemKind::from_code(kind).map(|k| (id, (k, name))))
                    .collect();
                let (lo, hi) = (from, to.saturating_add(1));
                let mut answer = Assembler::default();
                // Host-wide and per-item rows on two connections at once.
                let (host_rows, item_rows) = tokio::try_join!(
                    sqlx::query(sql::host_history(plan.tier))
                        .bind(host_id)
                        .bind(plan.step_secs)
                        .bind(lo)
                        .bind(hi)
                        .fetch_all(pool),
                    sqlx::query(sql::item_history(plan.tier))
                        .bind(host_id)
                        .bind(plan.step_secs)
                        .bind(lo)
                        .bind(hi)
                        .fetch_all(pool),
                )?;
                for row in host_rows {
                    let b: i64 = row.try_get(0)?;
                    let n: i64 = row.try_get(1)?;
                    let load_n: i64 = row.try_get(2)?;
                    for (i, m) in HOST_METRICS.iter().enumerate() {
                        let at = 3 + 3 * i;
                        let count = if m.nullable { load_n } else { n };
                        answer.add(
                            m.series,
                            b,
                            count,
                            (row.try_get(at)?, row.try_get(at + 1)?, row.try_get(at + 2)?),
                            m.scale,
                        );
                    }
                }
                for row in item_rows {
                    let id: i64 = row.try_get(0)?;
                    let Some((kind, name)) = items.get(&id) else { continue };
                    let b: i64 = row.try_get(1)?;
                    let n: i64 = row.try_get(2)?;
                    for (i, (series, scale)) in item_series(*kind).into_iter().enumerate() {
                        let Some(series) = series else { continue };
                        let at = 3 + 3 * i;
                        answer.add(
                            &format!("{series}:{name}"),
                            b,
                            n,
                            (row.try_get(at)?, row.try_get(at + 1)?, row.try_get(at + 2)?),
                            scale,
                        );
                    }
                }
                Ok(Some(answer.finish(host, plan)))
            }

            /// Every host id.
            pub(crate) async fn host_ids(pool: &Pool) -> Result<Vec<i64>, sqlx::Error> {
                let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM hosts ORDER BY id")
                    .fetch_all(pool)
                    .await?;
                Ok(ids.into_iter().map(|(id,)| id).collect())
            }

            /// Deletes one batch of a host's rows older than `cutoff` from one table.
            pub(crate) async fn delete_batch(
                pool: &Pool,
                statement: &str,
                host_id: i64,
                cutoff: i64,
                batch: i64,
            ) -> Result<u64, sqlx::Error> {
                let done = sqlx::query(statement)
                    .bind(host_id)
                    .bind(cutoff)
                    .bind(batch)
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected())
            }

            /// Rows in a table.
            pub(crate) async fn count(pool: &Pool, table: &str) -> Result<i64, sqlx::Error> {
                let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(pool)
                    .await?;
                Ok(n)
            }

            /// Every host the store knows.
            pub(crate) async fn hosts(pool: &Pool) -> Result<Vec<super::super::HostRecord>, sqlx::Error> {
                sqlx::query_as(
                    "SELECT name, os_name, os_version, kernel, cpu_brand, core_count, first_seen, last_seen FROM hosts ORDER BY name",
                )
                .fetch_all(pool)
                .await
            }

            /// A round trip, to tell whether the database answers.
            pub(crate) async fn ping(pool: &Pool) -> Result<(), sqlx::Error> {
                sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
            }
        }
    };
}

/// Hosts: the newest reading's facts win; first and last seen only widen.
const HOSTS_UPSERT: &str = " ON CONFLICT (name) DO UPDATE SET \
    os_name = CASE WHEN excluded.last_seen >= hosts.last_seen THEN excluded.os_name ELSE hosts.os_name END, \
    os_version = CASE WHEN excluded.last_seen >= hosts.last_seen THEN excluded.os_version ELSE hosts.os_version END, \
    kernel = CASE WHEN excluded.last_seen >= hosts.last_seen THEN excluded.kernel ELSE hosts.kernel END, \
    cpu_brand = CASE WHEN excluded.last_seen >= hosts.last_seen THEN excluded.cpu_brand ELSE hosts.cpu_brand END, \
    core_count = CASE WHEN excluded.last_seen >= hosts.last_seen THEN excluded.core_count ELSE hosts.core_count END, \
    first_seen = CASE WHEN excluded.first_seen < hosts.first_seen THEN excluded.first_seen ELSE hosts.first_seen END, \
    last_seen = CASE WHEN excluded.last_seen > hosts.last_seen THEN excluded.last_seen ELSE hosts.last_seen END \
    RETURNING id, name";

// SQLite: BEGIN IMMEDIATE takes the write lock at the start, so a transaction never has to
// upgrade (and fail with SQLITE_BUSY) halfway through.
backend!(sqlite, sqlx::Sqlite, "BEGIN IMMEDIATE");
backend!(postgres, sqlx::Postgres, "BEGIN");
