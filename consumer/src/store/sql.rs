//! SQL text shared by both databases: the same statements run on SQLite and PostgreSQL (the
//! dialects agree on `ON CONFLICT`, `RETURNING`, `CASE` and row values), built once.

use super::query::Tier;
use super::rows::{HOST_METRICS, ITEM_COLUMNS};
use std::sync::LazyLock;

/// Bind parameters per statement at most (SQLite allows 32,766, PostgreSQL 65,535).
pub const MAX_BINDS: usize = 30_000;

/// Raw host-wide columns, in bind order.
pub static RAW_HOST_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ["host_id", "ts", "seq"]
        .into_iter()
        .map(str::to_owned)
        .chain(HOST_METRICS.iter().map(|m| m.column.to_owned()))
        .collect()
});

/// Rollup host-wide columns, in bind order: keys, `n`, the always-present figures' min / sum /
/// max, `load_n`, then the load averages'.
pub static ROLLUP_HOST_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut cols: Vec<String> = vec!["host_id".into(), "bucket".into(), "n".into()];
    for m in HOST_METRICS.iter().filter(|m| !m.nullable) {
        cols.extend(msm(m.column));
    }
    cols.push("load_n".into());
    for m in HOST_METRICS.iter().filter(|m| m.nullable) {
        cols.extend(msm(m.column));
    }
    cols
});

/// Rollup per-item columns, in bind order.
pub static ROLLUP_ITEM_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut cols: Vec<String> = vec![
        "host_id".into(),
        "bucket".into(),
        "item_id".into(),
        "n".into(),
    ];
    for c in ITEM_COLUMNS {
        cols.extend(msm(c));
    }
    cols
});

fn msm(column: &str) -> [String; 3] {
    [
        format!("{column}_min"),
        format!("{column}_sum"),
        format!("{column}_max"),
    ]
}

/// `INSERT INTO table (cols) ` for a query builder's `push_values`.
pub fn insert_prefix(table: &str, columns: &[String]) -> String {
    format!("INSERT INTO {table} ({}) ", columns.join(", "))
}

/// Merges an incoming bucket into a stored one: counts and sums add, min and max compare;
/// a null on either side (no load average) leaves the other.
pub fn rollup_upsert_suffix(table: &str, keys: &str, columns: &[String]) -> String {
    let sets: Vec<String> = columns
        .iter()
        .filter(|c| !keys.split(", ").any(|k| k == c.as_str()))
        .map(|c| {
            let (old, new) = (format!("{table}.{c}"), format!("excluded.{c}"));
            if c.ends_with("_min") || c.ends_with("_max") {
                let op = if c.ends_with("_min") { "<" } else { ">" };
                format!(
                    "{c} = CASE WHEN {new} IS NULL THEN {old} WHEN {old} IS NULL OR {new} {op} {old} THEN {new} ELSE {old} END"
                )
            } else {
                format!(
                    "{c} = CASE WHEN {new} IS NULL THEN {old} WHEN {old} IS NULL THEN {new} ELSE {old} + {new} END"
                )
            }
        })
        .collect();
    format!(" ON CONFLICT ({keys}) DO UPDATE SET {}", sets.join(", "))
}

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
