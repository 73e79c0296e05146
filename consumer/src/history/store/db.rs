//! The statements, written once and compiled for each database: `backend!` expands the same
//! code with `sqlx::Sqlite` and with `sqlx::Postgres`.

use super::block::{self, Rec};
use super::query::{Assembler, History, Plan, Tier};
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

/// One series' values summed over one answered point.
#[derive(Debug, Clone, Copy)]
struct Run {
    b: i64,
    n: i64,
    min: i64,
    sum: i64,
    max: i64,
}

impl Run {
    fn merge(&mut self, n: i64, min: i64, sum: i64, max: i64) {
        self.n += n;
        self.min = self.min.min(min);
        self.sum = self.sum.saturating_add(sum);
        self.max = self.max.max(max);
    }
}

/// A damaged block as the driver's decode error.
fn damaged(e: block::Damaged) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// Rows per statement for a table of `columns` columns.
fn chunk_rows(columns: usize) -> usize {
    (sql::MAX_BINDS / columns).max(1)
}

macro_rules! backend {
    ($module:ident, $Db:ty, $begin:expr, $for_update:expr) => {
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
                legacy_raw: bool,
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

                // Raw readings into their minute blocks, in key order so concurrent writers
                // lock blocks in the same order.
                let mut keyed: Vec<(i64, &Row)> = rows
                    .iter()
                    .filter_map(|row| host_id(&row.host).map(|h| (h, *row)))
                    .collect();
                keyed.sort_by_key(|(h, row)| (*h, row.ts_s(), row.seq));
                let item_ids = |h: i64, row: &Row| -> Vec<i64> {
                    row.items
                        .iter()
                        .filter_map(|item| item_id(h, item.kind, &item.name))
                        .collect()
                };
                let legacy: HashSet<(i64, i64, i64)> = if legacy_raw {
                    legacy_readings(&mut tx, &keyed).await?
                } else {
                    HashSet::new()
                };
                let mut incoming: BTreeMap<(i64, i64), Vec<Rec>> = BTreeMap::new();
                for (h, row) in &keyed {
                    if legacy.contains(&(*h, row.ts_s(), row.seq)) {
                        continue;
                    }
                    let recs = incoming.entry((*h, block::block_start(Tier::Raw, row.ts_s()))).or_default();
                    recs.push(Rec { t: row.ts_s(), sub: block::HOST, key: row.seq, vals: row.values.to_vec() });
                    for (item, id) in row.items.iter().zip(item_ids(*h, row)) {
                        recs.push(Rec { t: row.ts_s(), sub: id, key: row.seq, vals: item.values.to_vec() });
                    }
                }
                let mut inserted: HashSet<(i64, i64, i64)> = HashSet::with_capacity(keyed.len());
                let keys: Vec<(i64, i64)> = incoming.keys().copied().collect();
                let mut stored = load_blocks(&mut tx, Tier::Raw, &keys).await?;
                let mut changed = Vec::with_capacity(keys.len());
                for (key, recs) in incoming {
                    let mut have = stored.remove(&key).unwrap_or_default();
                    let added = block::merge_raw(&mut have, recs);
                    if added.is_empty() {
                        continue;
                    }
                    inserted.extend(added.into_iter().map(|(t, seq)| (key.0, t, seq)));
                    changed.push((key, block::count(&have), block::encode(&mut have)));
                }
                save_blocks(&mut tx, Tier::Raw, &changed).await?;

                let mut out = Written::default();
                let mut stored: Vec<(i64, &Row, Vec<i64>)> = Vec::with_capacity(keyed.len());
                for (h, row) in keyed {
                    // Removed once seen: the same reading twice in one batch counts once.
                    if inserted.remove(&(h, row.ts_s(), row.seq)) {
                        out.written += 1;
                        stored.push((h, row, item_ids(h, row)));
                    } else {
                        out.duplicates += 1;
                    }
                }

                // Rollups of what was stored, for the tiers that still keep that time.
                for (from, tier, secs) in [
                    (horizons.minute_from, Tier::Minute, 60),
                    (horizons.hour_from, Tier::Hour, 3600),
                ] {
                    let mut rollups = Rollups::default();
                    for (h, row, ids) in &stored {
                        if row.ts_s() >= from {
                            rollups.add(*h, row, ids, secs);
                        }
                    }
                    let mut incoming: BTreeMap<(i64, i64), Vec<Rec>> = BTreeMap::new();
                    for ((h, bucket), agg) in rollups.hosts {
                        incoming.entry((h, block::block_start(tier, bucket))).or_default().push(Rec {
                            t: bucket,
                            sub: block::HOST,
                            key: 0,
                            vals: block::rollup_vals(&[agg.n, agg.load_n], &agg.cols),
                        });
                    }
                    for ((h, bucket, id), agg) in rollups.items {
                        incoming.entry((h, block::block_start(tier, bucket))).or_default().push(Rec {
                            t: bucket,
                            sub: id,
                            key: 0,
                            vals: block::rollup_vals(&[agg.n], &agg.cols),
                        });
                    }
                    let keys: Vec<(i64, i64)> = incoming.keys().copied().collect();
                    let mut have_blocks = load_blocks(&mut tx, tier, &keys).await?;
                    let mut changed = Vec::with_capacity(keys.len());
                    for (key, recs) in incoming {
                        let mut have = have_blocks.remove(&key).unwrap_or_default();
                        block::merge_rollup(&mut have, recs);
                        changed.push((key, block::count(&have), block::encode(&mut have)));
                    }
                    save_blocks(&mut tx, tier, &changed).await?;
                }
                tx.commit().await?;
                out.new_items = new_items.into_iter().collect();
                Ok(out)
            }

            /// The blocks of `tier` at `keys` (host id, start; sorted), decoded and locked for
            /// this transaction. In PostgreSQL missing blocks are created empty first, so two
            /// writers of one new block wait for each other instead of both inserting it.
            async fn load_blocks(
                tx: &mut sqlx::Transaction<'_, Db>,
                tier: Tier,
                keys: &[(i64, i64)],
            ) -> Result<HashMap<(i64, i64), Vec<Rec>>, sqlx::Error> {
                let table = block::table(tier);
                let mut found = HashMap::with_capacity(keys.len());
                for chunk in keys.chunks(chunk_rows(4)) {
                    if !$for_update.is_empty() {
                        let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO {table} (host_id, start, n, data) "));
                        qb.push_values(chunk, |mut b, (h, start)| {
                            b.push_bind(*h).push_bind(*start).push_bind(0i64).push_bind(Vec::<u8>::new());
                        });
                        qb.push(" ON CONFLICT (host_id, start) DO NOTHING");
                        qb.build().persistent(false).execute(&mut **tx).await?;
                    }
                    let mut qb = QueryBuilder::<Db>::new(format!("SELECT host_id, start, data FROM {table} WHERE (host_id, start) IN ("));
                    qb.push_values(chunk, |mut b, (h, start)| {
                        b.push_bind(*h).push_bind(*start);
                    });
                    qb.push(")");
                    qb.push($for_update);
                    let rows: Vec<(i64, i64, Vec<u8>)> =
                        qb.build_query_as().persistent(false).fetch_all(&mut **tx).await?;
                    for (h, start, data) in rows {
                        if !data.is_empty() {
                            found.insert((h, start), block::decode(&data).map_err(damaged)?);
                        }
                    }
                }
                Ok(found)
            }

            /// Writes encoded blocks of `tier`: (host id, start), records in it, bytes.
            async fn save_blocks(
                tx: &mut sqlx::Transaction<'_, Db>,
                tier: Tier,
                blocks: &[((i64, i64), i64, Vec<u8>)],
            ) -> Result<(), sqlx::Error> {
                let table = block::table(tier);
                // Bytes, not binds, bound the statement: a few hundred blocks at a time.
                for chunk in blocks.chunks(256) {
                    let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO {table} (host_id, start, n, data) "));
                    qb.push_values(chunk, |mut b, ((h, start), n, data)| {
                        b.push_bind(*h).push_bind(*start).push_bind(*n).push_bind(data.as_slice());
                    });
                    qb.push(" ON CONFLICT (host_id, start) DO UPDATE SET n = excluded.n, data = excluded.data");
                    qb.build().persistent(false).execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Which of `keyed` readings the row-per-reading table of a database from before
            /// the packed tiers holds already (so a redelivered one is still stored once).
            async fn legacy_readings(
                tx: &mut sqlx::Transaction<'_, Db>,
                keyed: &[(i64, &Row)],
            ) -> Result<HashSet<(i64, i64, i64)>, sqlx::Error> {
                let mut found = HashSet::new();
                for chunk in keyed.chunks(chunk_rows(3)) {
                    let mut qb = QueryBuilder::<Db>::new("SELECT host_id, ts, seq FROM raw_host WHERE (host_id, ts, seq) IN (");
                    qb.push_values(chunk, |mut b, (h, row)| {
                        b.push_bind(*h).push_bind(row.ts_s()).push_bind(row.seq);
                    });
                    qb.push(")");
                    let rows: Vec<(i64, i64, i64)> =
                        qb.build_query_as().persistent(false).fetch_all(&mut **tx).await?;
                    found.extend(rows);
                }
                Ok(found)
            }

            /// Whether the row-per-reading raw table (from before the packed tiers) has rows.
            pub(crate) async fn has_legacy_raw(pool: &Pool) -> Result<bool, sqlx::Error> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM (SELECT 1 FROM raw_host LIMIT 1) AS any_row")
                    .fetch_one(pool)
                    .await?;
                Ok(n > 0)
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
                // The packed blocks, and rows of the tables from before them (a database that
                // was written before the packed tiers), on three connections at once.
                let span = block::span(plan.tier);
                let (blocks, host_rows, item_rows) = tokio::try_join!(
                    sqlx::query_as::<_, (Vec<u8>,)>(sql::block_history(plan.tier))
                        .bind(host_id)
                        .bind(lo - span)
                        .bind(hi)
                        .fetch_all(pool),
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
                let names: HashMap<i64, Vec<Option<(String, f64)>>> = items
                    .iter()
                    .map(|(id, (kind, name))| {
                        let names = item_series(*kind)
                            .into_iter()
                            .map(|(series, scale)| series.map(|s| (format!("{s}:{name}"), scale)))
                            .collect();
                        (*id, names)
                    })
                    .collect();
                let raw = plan.tier == Tier::Raw;
                let step = plan.step_secs.max(1);
                // Records come in time order per host or item: sum each series' run of values
                // at one point here, and hand the Assembler one value per point.
                let mut runs: HashMap<i64, Vec<Option<Run>>> = HashMap::new();
                let emit = |answer: &mut Assembler, sub: i64, col: usize, run: Run| {
                    let named = if sub == block::HOST {
                        HOST_METRICS.get(col).map(|m| (m.series, m.scale))
                    } else {
                        names
                            .get(&sub)
                            .and_then(|n| n.get(col))
                            .and_then(|n| n.as_ref())
                            .map(|(name, scale)| (name.as_str(), *scale))
                    };
                    if let Some((name, scale)) = named {
                        answer.add(name, run.b, run.n, (Some(run.min), Some(run.sum), Some(run.max)), scale);
                    }
                };
                for (data,) in blocks {
                    for rec in block::decode(&data).map_err(damaged)? {
                        if rec.t < lo || rec.t >= hi {
                            continue;
                        }
                        let b = rec.t.div_euclid(step) * step;
                        let v = |i: usize| rec.vals.get(i).copied().flatten();
                        let host = rec.sub == block::HOST;
                        let width = if host { HOST_METRICS.len() } else { 3 };
                        let open = runs.entry(rec.sub).or_insert_with(|| vec![None; width]);
                        for (col, slot) in open.iter_mut().enumerate() {
                            // Raw records hold the figures; rollups the counts, then min / sum /
                            // max per figure.
                            let (n, msm) = if raw {
                                (1, (v(col), v(col), v(col)))
                            } else if host {
                                let nullable = HOST_METRICS.get(col).is_some_and(|m| m.nullable);
                                let at = 2 + 3 * col;
                                (v(usize::from(nullable)).unwrap_or(0), (v(at), v(at + 1), v(at + 2)))
                            } else {
                                let at = 1 + 3 * col;
                                (v(0).unwrap_or(0), (v(at), v(at + 1), v(at + 2)))
                            };
                            let (Some(min), Some(sum), Some(max)) = msm else { continue };
                            if n <= 0 {
                                continue;
                            }
                            match slot {
                                Some(run) if run.b == b => run.merge(n, min, sum, max),
                                _ => {
                                    if let Some(done) = slot.replace(Run { b, n, min, sum, max }) {
                                        emit(&mut answer, rec.sub, col, done);
                                    }
                                }
                            }
                        }
                    }
                }
                for (sub, open) in runs {
                    for (col, run) in open.into_iter().enumerate() {
                        if let Some(run) = run {
                            emit(&mut answer, sub, col, run);
                        }
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

            /// Deletes at most `batch` of a host's blocks of `tier` that end at or before
            /// `cutoff`; returns the readings (raw) or buckets they held and the blocks gone.
            pub(crate) async fn delete_blocks(
                pool: &Pool,
                tier: Tier,
                host_id: i64,
                cutoff: i64,
                batch: i64,
            ) -> Result<(u64, u64), sqlx::Error> {
                let table = block::table(tier);
                let gone: Vec<(i64,)> = sqlx::query_as(&format!(
                    "DELETE FROM {table} WHERE (host_id, start) IN (SELECT host_id, start FROM {table} WHERE host_id = $1 AND start <= $2 LIMIT $3) RETURNING n"
                ))
                .bind(host_id)
                .bind(cutoff - block::span(tier))
                .bind(batch)
                .fetch_all(pool)
                .await?;
                let records = gone.iter().map(|(n,)| u64::try_from(*n).unwrap_or(0)).sum();
                Ok((records, gone.len() as u64))
            }

            /// Drops the records before `cutoff` from the host's block of `tier` that straddles
            /// it; returns the readings (raw) or buckets dropped.
            pub(crate) async fn trim_block(
                pool: &Pool,
                tier: Tier,
                host_id: i64,
                cutoff: i64,
            ) -> Result<u64, sqlx::Error> {
                let table = block::table(tier);
                let start = block::block_start(tier, cutoff);
                if start == cutoff {
                    return Ok(0);
                }
                let mut tx = pool.begin_with($begin).await?;
                let found: Option<(Vec<u8>,)> = sqlx::query_as(&format!(
                    "SELECT data FROM {table} WHERE host_id = $1 AND start = $2{}", $for_update
                ))
                .bind(host_id)
                .bind(start)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((data,)) = found.filter(|(d,)| !d.is_empty()) else {
                    return Ok(0);
                };
                let mut recs = block::decode(&data).map_err(damaged)?;
                let before = block::count(&recs);
                recs.retain(|r| r.t >= cutoff);
                let dropped = before - block::count(&recs);
                if recs.is_empty() {
                    sqlx::query(&format!("DELETE FROM {table} WHERE host_id = $1 AND start = $2"))
                        .bind(host_id)
                        .bind(start)
                        .execute(&mut *tx)
                        .await?;
                } else if dropped > 0 {
                    save_blocks(&mut tx, tier, &[((host_id, start), block::count(&recs), block::encode(&mut recs))]).await?;
                }
                tx.commit().await?;
                Ok(u64::try_from(dropped).unwrap_or(0))
            }

            /// Readings (raw) or buckets held in `tier`'s blocks.
            pub(crate) async fn block_records(pool: &Pool, tier: Tier) -> Result<i64, sqlx::Error> {
                let (n,): (i64,) = sqlx::query_as(&format!(
                    "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM {}",
                    block::table(tier)
                ))
                .fetch_one(pool)
                .await?;
                Ok(n)
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
// PostgreSQL locks the blocks a transaction merges into (SQLite's writer is alone anyway).
backend!(sqlite, sqlx::Sqlite, "BEGIN IMMEDIATE", "");
backend!(postgres, sqlx::Postgres, "BEGIN", " FOR UPDATE");
