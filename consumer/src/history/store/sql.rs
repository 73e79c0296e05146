//! SQL text shared by both databases: the same statements run on SQLite and PostgreSQL (the
//! dialects agree on `ON CONFLICT`, `RETURNING`, `CASE` and row values), built once. The
//! row-per-reading tables are only read (databases written before the packed tiers) and
//! emptied by retention; new readings go to the packed blocks.

use super::query::Tier;
use super::rows::{HOST_METRICS, ITEM_COLUMNS};
use std::sync::LazyLock;

/// Bind parameters per statement at most (SQLite allows 32,766, PostgreSQL 65,535).
pub const MAX_BINDS: usize = 30_000;

/// The tier's host-wide query: `b, n, load_n`, then min / sum / max per [`HOST_METRICS`];
/// binds: host id, step, from, to (unix seconds; `to` exclusive).
pub fn host_history(tier: Tier) -> &'static str {
    static SQL: LazyLock<[String; 3]> = LazyLock::new(|| Tier::ALL.map(build_host_history));
    &SQL[tier_index(tier)]
}

/// The tier's per-item query: `item_id, b, n`, then min / sum / max of v1, v2, v3.
pub fn item_history(tier: Tier) -> &'static str {
    static SQL: LazyLock<[String; 3]> = LazyLock::new(|| Tier::ALL.map(build_item_history));
    &SQL[tier_index(tier)]
}

fn tier_index(tier: Tier) -> usize {
    match tier {
        Tier::Raw => 0,
        Tier::Minute => 1,
        Tier::Hour => 2,
    }
}

/// (time column, group expression, whether rows are single readings rather than buckets).
fn shape(tier: Tier) -> (&'static str, &'static str, bool) {
    match tier {
        Tier::Raw => ("ts", "(ts / $2) * $2", true),
        Tier::Minute | Tier::Hour => ("bucket", "(bucket / $2) * $2", false),
    }
}

fn aggregates(column: &str, raw: bool) -> String {
    if raw {
        format!("MIN({column}), CAST(SUM({column}) AS BIGINT), MAX({column})")
    } else {
        format!("MIN({column}_min), CAST(SUM({column}_sum) AS BIGINT), MAX({column}_max)")
    }
}

fn build_host_history(tier: Tier) -> String {
    let (time, group, raw) = shape(tier);
    let (n, load_n) = if raw {
        ("COUNT(*)".to_owned(), "COUNT(load1)".to_owned())
    } else {
        (
            "CAST(SUM(n) AS BIGINT)".to_owned(),
            "CAST(SUM(load_n) AS BIGINT)".to_owned(),
        )
    };
    let cols: Vec<String> = HOST_METRICS
        .iter()
        .map(|m| aggregates(m.column, raw))
        .collect();
    format!(
        "SELECT {group} AS b, {n}, {load_n}, {} FROM {} WHERE host_id = $1 AND {time} >= $3 AND {time} < $4 GROUP BY b ORDER BY b",
        cols.join(", "),
        tier.tables().0
    )
}

fn build_item_history(tier: Tier) -> String {
    let (time, group, raw) = shape(tier);
    let n = if raw {
        "COUNT(*)"
    } else {
        "CAST(SUM(n) AS BIGINT)"
    };
    let cols: Vec<String> = ITEM_COLUMNS.iter().map(|c| aggregates(c, raw)).collect();
    format!(
        "SELECT item_id, {group} AS b, {n}, {} FROM {} WHERE host_id = $1 AND {time} >= $3 AND {time} < $4 GROUP BY item_id, b ORDER BY b",
        cols.join(", "),
        tier.tables().1
    )
}

/// The blocks of a tier overlapping a range: binds host id, `from - span` (exclusive), `to`
/// (exclusive).
pub fn block_history(tier: Tier) -> &'static str {
    static SQL: LazyLock<[String; 3]> = LazyLock::new(|| {
        Tier::ALL.map(|t| {
            format!(
                "SELECT data FROM {} WHERE host_id = $1 AND start > $2 AND start < $3 ORDER BY start",
                super::block::table(t)
            )
        })
    });
    &SQL[tier_index(tier)]
}

/// Each table, the columns of its key, and its time column, for retention.
pub const RETENTION_TABLES: [(Tier, &str, &str, &str); 6] = [
    (Tier::Raw, "raw_host", "host_id, ts, seq", "ts"),
    (Tier::Raw, "raw_item", "host_id, ts, seq, item_id", "ts"),
    (Tier::Minute, "minute_host", "host_id, bucket", "bucket"),
    (
        Tier::Minute,
        "minute_item",
        "host_id, bucket, item_id",
        "bucket",
    ),
    (Tier::Hour, "hour_host", "host_id, bucket", "bucket"),
    (
        Tier::Hour,
        "hour_item",
        "host_id, bucket, item_id",
        "bucket",
    ),
];

/// Deletes at most `$3` rows of host `$1` older than `$2`, walking the primary key.
pub fn delete_expired(table: &str, key: &str, time: &str) -> String {
    format!(
        "DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE host_id = $1 AND {time} < $2 LIMIT $3)"
    )
}
