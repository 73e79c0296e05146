//! Readings as narrow integer rows, and the in-memory aggregation of a batch into 1-minute
//! and 1-hour buckets before they are merged into the stored ones.

use shared::reading::Reading;
use std::collections::BTreeMap;

/// Disks or interfaces per reading kept at most; more are dropped and counted (a reading
/// listing thousands of mounts would otherwise grow every tier).
pub const MAX_ITEMS_PER_KIND: usize = 64;

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    /// A mounted file system, named by its mount point.
    Disk = 0,
    /// A network interface.
    Network = 1,
}

impl ItemKind {
    /// The stored code.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The kind for a stored code.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(ItemKind::Disk),
            1 => Some(ItemKind::Network),
            _ => None,
        }
    }
}

/// One stored column and the series it answers as.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Column name (rollups add `_min`, `_sum`, `_max`).
    pub column: &'static str,
    /// Series name in answers, like the consumer's Prometheus gauges.
    pub series: &'static str,
    /// Stored integer = value × scale (hundredths of a percent, thousandths of a load).
    pub scale: f64,
    /// May be absent from a reading; counted by its own `load_n` column in rollups.
    pub nullable: bool,
}

const fn metric(column: &'static str, series: &'static str, scale: f64, nullable: bool) -> Metric {
    Metric {
        column,
        series,
        scale,
        nullable,
    }
}

/// Host-wide figures, in column order.
pub const HOST_METRICS: [Metric; 9] = [
    metric("cpu", "cpu_usage_percent", 100.0, false),
    metric("mem_used", "memory_used_bytes", 1.0, false),
    metric("mem_total", "memory_total_bytes", 1.0, false),
    metric("mem_pct", "memory_usage_percent", 100.0, false),
    metric("swap_used", "swap_used_bytes", 1.0, false),
    metric("swap_total", "swap_total_bytes", 1.0, false),
    metric("load1", "load1", 1000.0, true),
    metric("load5", "load5", 1000.0, true),
    metric("load15", "load15", 1000.0, true),
];

/// Item columns; v3 is null for interfaces.
pub const ITEM_COLUMNS: [&str; 3] = ["v1", "v2", "v3"];

/// What each item column means per kind: series name (`None`: unused) and scale.
pub fn item_series(kind: ItemKind) -> [(Option<&'static str>, f64); 3] {
    match kind {
        ItemKind::Disk => [
            (Some("disk_used_bytes"), 1.0),
            (Some("disk_total_bytes"), 1.0),
            (Some("disk_usage_percent"), 100.0),
        ],
        ItemKind::Network => [
            (Some("network_received_bytes_per_second"), 1.0),
            (Some("network_transmitted_bytes_per_second"), 1.0),
            (None, 1.0),
        ],
    }
}

/// One reading, ready to store.
#[derive(Debug, Clone)]
pub struct Row {
    pub host: String,
    /// Unix milliseconds.
    pub ts_ms: i64,
    pub seq: i64,
    /// In [`HOST_METRICS`] order.
    pub values: [Option<i64>; 9],
    pub items: Vec<ItemRow>,
    pub facts: Facts,
    /// Disks and interfaces over [`MAX_ITEMS_PER_KIND`], not stored.
    pub items_dropped: usize,
}

/// One disk's or interface's figures in one reading.
#[derive(Debug, Clone)]
pub struct ItemRow {
    pub kind: ItemKind,
    pub name: String,
    pub values: [Option<i64>; 3],
}

/// A host's slow-changing facts, from its newest reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub os_name: String,
    pub os_version: String,
    pub kernel: String,
    pub cpu_brand: String,
    pub core_count: Option<i64>,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn scaled(v: f64, scale: f64) -> Option<i64> {
    // Non-finite figures are absent rather than a made-up number; the cast saturates.
    v.is_finite().then(|| (v * scale).round() as i64)
}

impl Row {
    /// The reading's time in unix seconds: the raw tier's resolution (4 bytes a row instead of
    /// 6 for milliseconds; `seq` still tells two readings of one second apart).
    pub fn ts_s(&self) -> i64 {
        self.ts_ms.div_euclid(1000)
    }

    /// The rows of one reading.
    pub fn from_reading(r: &Reading) -> Self {
        let load = r.cpu.load_average;
        let values = [
            scaled(f64::from(r.cpu.usage_percent), 100.0),
            Some(int(r.memory.used_bytes)),
            Some(int(r.memory.total_bytes)),
            scaled(f64::from(r.memory.usage_percent), 100.0),
            Some(int(r.memory.swap_used_bytes)),
            Some(int(r.memory.swap_total_bytes)),
            load.and_then(|l| scaled(l.one, 1000.0)),
            load.and_then(|l| scaled(l.five, 1000.0)),
            load.and_then(|l| scaled(l.fifteen, 1000.0)),
        ];
        let mut items = Vec::new();
        let mut dropped = 0;
        for (i, d) in r.disks.iter().enumerate() {
            if i >= MAX_ITEMS_PER_KIND {
                dropped += 1;
                continue;
            }
            items.push(ItemRow {
                kind: ItemKind::Disk,
                name: d.mount_point.clone(),
                values: [
                    Some(int(d.used_bytes)),
                    Some(int(d.total_bytes)),
                    scaled(f64::from(d.usage_percent), 100.0),
                ],
            });
        }
        for (i, n) in r.networks.iter().flatten().enumerate() {
            if i >= MAX_ITEMS_PER_KIND {
                dropped += 1;
                continue;
            }
            items.push(ItemRow {
                kind: ItemKind::Network,
                name: n.interface.clone(),
                values: [
                    Some(int(n.received_bytes_per_sec)),
                    Some(int(n.transmitted_bytes_per_sec)),
                    None,
                ],
            });
        }
        // Two entries for one mount or interface would collide on the item's key: keep the first.
        let mut seen = std::collections::HashSet::new();
        items.retain(|item| seen.insert((item.kind, item.name.clone())));
        Self {
            host: r.host.clone(),
            ts_ms: r.collected_at.timestamp_millis(),
            seq: int(r.seq),
            values,
            items,
            facts: Facts {
                os_name: r.os.name.clone(),
                os_version: r.os.version.clone(),
                kernel: r.os.kernel.clone(),
                cpu_brand: r.cpu.brand.clone(),
                core_count: r.cpu.core_count.map(i64::from),
            },
            items_dropped: dropped,
        }
    }
}

/// Running min, sum and max of one column in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msm {
    pub min: i64,
    pub sum: i64,
    pub max: i64,
}

impl Msm {
    fn add(slot: &mut Option<Msm>, v: Option<i64>) {
        let Some(v) = v else { return };
        *slot = Some(match *slot {
            None => Msm {
                min: v,
                sum: v,
                max: v,
            },
            Some(m) => Msm {
                min: m.min.min(v),
                sum: m.sum.saturating_add(v),
                max: m.max.max(v),
            },
        });
    }
}

/// A bucket's aggregate of `N` columns: readings counted, readings with a load average
/// counted (host buckets only), and each column's min / sum / max.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agg<const N: usize> {
    pub n: i64,
    pub load_n: i64,
    pub cols: [Option<Msm>; N],
}

impl<const N: usize> Default for Agg<N> {
    fn default() -> Self {
        Self {
            n: 0,
            load_n: 0,
            cols: [None; N],
        }
    }
}

impl<const N: usize> Agg<N> {
    /// Adds one reading's values; `has_load` counts it towards the load averages' mean.
    pub fn add(&mut self, values: &[Option<i64>; N], has_load: bool) {
        self.n += 1;
        if has_load {
            self.load_n += 1;
        }
        for (slot, v) in self.cols.iter_mut().zip(values) {
            Msm::add(slot, *v);
        }
    }
}

/// A batch's rollups for one tier, keyed like the tables, so upserts lock rows in one order.
#[derive(Debug, Default)]
pub struct Rollups {
    pub hosts: BTreeMap<(i64, i64), Agg<9>>,
    pub items: BTreeMap<(i64, i64, i64), Agg<3>>,
}

impl Rollups {
    /// Adds one stored reading to its bucket of `bucket_secs`.
    pub fn add(&mut self, host_id: i64, row: &Row, item_ids: &[i64], bucket_secs: i64) {
        let bucket = bucket_of(row.ts_ms, bucket_secs);
        let has_load = row.values[6].is_some();
        self.hosts
            .entry((host_id, bucket))
            .or_default()
            .add(&row.values, has_load);
        for (item, id) in row.items.iter().zip(item_ids) {
            self.items
                .entry((host_id, bucket, *id))
                .or_default()
                .add(&item.values, false);
        }
    }
}

/// The bucket (start, unix seconds) of `bucket_secs` holding `ts_ms`.
pub fn bucket_of(ts_ms: i64, bucket_secs: i64) -> i64 {
    ts_ms.div_euclid(1000).div_euclid(bucket_secs) * bucket_secs
}
