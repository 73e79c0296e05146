//! Reading history back: which tier answers a range (the coarsest that still gives the points
//! asked for, like Netdata's query planner), and the columnar answer for uPlot or CSV.

use super::settings::Retention;
use serde::Serialize;
use std::collections::BTreeMap;

/// Points per series when the caller does not say: 720 is 1 h at 5 s, 24 h at 2 min, 7 d at
/// 14 min, 30 d at 1 h (the hour tier as stored, the cheapest query) and 1 y at ~12 h.
pub const DEFAULT_POINTS: u32 = 720;
/// Fewest points per series answered for a range (when the data has them).
pub const MIN_POINTS: u32 = 500;
/// Most points per series answered.
pub const MAX_POINTS: u32 = 3_600;

/// A storage tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Every reading.
    Raw,
    /// 1-minute min / avg / max.
    Minute,
    /// 1-hour min / avg / max.
    Hour,
}

impl Tier {
    /// Finest first.
    pub const ALL: [Tier; 3] = [Tier::Raw, Tier::Minute, Tier::Hour];

    /// Seconds per stored point (readings come about once a second in the raw tier).
    pub fn step_secs(self) -> i64 {
        match self {
            Tier::Raw => 1,
            Tier::Minute => 60,
            Tier::Hour => 3600,
        }
    }

    /// The tier's label for metrics (`hostpulse_history_rows{tier}`).
    pub fn label(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "minute",
            Tier::Hour => "hour",
        }
    }

    /// How long this tier keeps rows.
    pub fn retention(self, retention: &Retention) -> std::time::Duration {
        match self {
            Tier::Raw => retention.raw,
            Tier::Minute => retention.minute,
            Tier::Hour => retention.hour,
        }
    }

    /// The tables holding this tier (host-wide, per item).
    pub(crate) fn tables(self) -> (&'static str, &'static str) {
        match self {
            Tier::Raw => ("raw_host", "raw_item"),
            Tier::Minute => ("minute_host", "minute_item"),
            Tier::Hour => ("hour_host", "hour_item"),
        }
    }
}

/// How a range is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub tier: Tier,
    /// Seconds per answered point: a multiple of the tier's step.
    pub step_secs: i64,
}

/// Picks the tier and step for `[from, to]` (unix seconds) asked at `now`: among the tiers
/// that still hold data that old, the coarsest giving at least `points` points (the finest
/// such tier when none does), then a step that keeps the answer near `points`.
/// `points` is clamped to 500–3,600 (default 720).
pub fn plan(from: i64, to: i64, points: Option<u32>, now: i64, retention: &Retention) -> Plan {
    let points = i64::from(points.map_or(DEFAULT_POINTS, |p| p.clamp(MIN_POINTS, MAX_POINTS)));
    let range = (to - from).max(1);
    let holding: Vec<Tier> = Tier::ALL
        .into_iter()
        .filter(|t| {
            let keeps = i64::try_from(t.retention(retention).as_secs()).unwrap_or(i64::MAX);
            from >= now.saturating_sub(keeps)
        })
        .collect();
    let tier = match holding.first() {
        // Older than every tier keeps: the coarsest holds what is left, if anything.
        None => Tier::Hour,
        Some(finest) => holding
            .iter()
            .rev()
            .find(|t| range / t.step_secs() >= points)
            .copied()
            .unwrap_or(*finest),
    };
    let tier_step = tier.step_secs();
    let wanted = (range + points - 1) / points;
    let step = ((wanted + tier_step - 1) / tier_step).max(1) * tier_step;
    Plan {
        tier,
        step_secs: step,
    }
}

/// One series' values per point; `null` where the series has no value at that time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Band {
    pub avg: Vec<Option<f64>>,
    pub min: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
}

/// A host's history over a range, columnar as uPlot takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub host: String,
    /// The tier the points come from.
    pub tier: Tier,
    /// Seconds each point covers (min / avg / max over that span).
    pub step_secs: i64,
    /// Start of each point, unix seconds, ascending.
    pub times: Vec<i64>,
    /// By series name (`cpu_usage_percent`, `disk_used_bytes:/`, …); series with no value in
    /// the range are left out.
    pub series: BTreeMap<String, Band>,
}

impl History {
    /// The same data as CSV: `time` (RFC 3339), `unix_secs`, then `avg(…)`, `min(…)`, `max(…)`
    /// per series; empty cells where a series has no value.
    pub fn to_csv(&self) -> Result<String, csv::Error> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["time".to_owned(), "unix_secs".to_owned()];
        for name in self.series.keys() {
            for f in ["avg", "min", "max"] {
                header.push(format!("{f}({name})"));
            }
        }
        writer.write_record(&header)?;
        let cell = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        for (i, t) in self.times.iter().enumerate() {
            let time = chrono::DateTime::from_timestamp(*t, 0)
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let mut record = vec![time, t.to_string()];
            for band in self.series.values() {
                for values in [&band.avg, &band.min, &band.max] {
                    record.push(cell(values.get(i).copied().flatten()));
                }
            }
            writer.write_record(&record)?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        // Every cell came from a String, so the bytes are UTF-8.
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A stored min, sum and max (any may be null).
pub(crate) type StoredMsm = (Option<i64>, Option<i64>, Option<i64>);

/// Builds the columnar answer from grouped rows; rows of one series and time from several
/// sources (packed blocks and older row tables) merge.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    /// series → time → (n, min, sum, max, scale).
    cells: BTreeMap<String, BTreeMap<i64, Cell>>,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    n: i64,
    min: i64,
    sum: i64,
    max: i64,
    scale: f64,
}

impl Assembler {
    /// Records one value of `series` at `time` from stored min / sum / max over `n` readings.
    pub fn add(&mut self, series: &str, time: i64, n: i64, msm: StoredMsm, scale: f64) {
        let (Some(min), Some(sum), Some(max)) = msm else {
            return;
        };
        if n <= 0 {
            return;
        }
        let by_time = match self.cells.get_mut(series) {
            Some(by_time) => by_time,
            None => self.cells.entry(series.to_owned()).or_default(),
        };
        by_time
            .entry(time)
            .and_modify(|c| {
                c.n += n;
                c.min = c.min.min(min);
                c.sum = c.sum.saturating_add(sum);
                c.max = c.max.max(max);
            })
            .or_insert(Cell {
                n,
                min,
                sum,
                max,
                scale,
            });
    }

    /// The answer: the union of every series' times, `null` where a series has none.
    pub fn finish(self, host: &str, plan: Plan) -> History {
        let mut times: Vec<i64> = self
            .cells
            .values()
            .flat_map(|by_time| by_time.keys().copied())
            .collect();
        times.sort_unstable();
        times.dedup();
        let index: BTreeMap<i64, usize> = times.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        let series = self
            .cells
            .into_iter()
            .map(|(name, by_time)| {
                let mut band = Band {
                    avg: vec![None; times.len()],
                    min: vec![None; times.len()],
                    max: vec![None; times.len()],
                };
                for (t, c) in by_time {
                    if let Some(&i) = index.get(&t) {
                        band.min[i] = Some(c.min as f64 / c.scale);
                        band.avg[i] = Some(c.sum as f64 / c.n as f64 / c.scale);
                        band.max[i] = Some(c.max as f64 / c.scale);
                    }
                }
                (name, band)
            })
            .collect();
        History {
            host: host.to_owned(),
            tier: plan.tier,
            step_secs: plan.step_secs,
            times,
            series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn plan_for(range: i64) -> Plan {
        let now = 1_800_000_000;
        plan(now - range, now, None, now, &Retention::default())
    }

    fn points(range: i64, p: Plan) -> i64 {
        (range + p.step_secs - 1) / p.step_secs
    }

    #[test]
    fn each_range_gets_the_coarsest_tier_with_enough_points() {
        for (range, tier) in [
            (3600, Tier::Raw),
            (DAY, Tier::Minute),
            (7 * DAY, Tier::Minute),
            (30 * DAY, Tier::Hour),
            (365 * DAY, Tier::Hour),
        ] {
            let p = plan_for(range);
            assert_eq!(p.tier, tier, "range {range}");
            assert_eq!(p.step_secs % p.tier.step_secs(), 0, "range {range}");
            let n = points(range, p);
            assert!(
                (500..=3600).contains(&n),
                "range {range}: {n} points ({p:?})"
            );
        }
    }

    #[test]
    fn points_are_clamped_and_old_ranges_use_tiers_that_still_hold_them() {
        let now = 1_800_000_000;
        let r = Retention::default();
        // Nonsense point counts are clamped.
        assert_eq!(plan(now - 3600, now, Some(1), now, &r).step_secs, 8);
        assert_eq!(plan(now - 3600, now, Some(1_000_000), now, &r).step_secs, 1);
        // An hour three days ago: the raw tier no longer has it, the minute tier does.
        let p = plan(now - 3 * DAY - 3600, now - 3 * DAY, None, now, &r);
        assert_eq!(p.tier, Tier::Minute);
        assert_eq!(p.step_secs, 60);
        // A day two months ago: only the hour tier.
        let p = plan(now - 60 * DAY, now - 59 * DAY, None, now, &r);
        assert_eq!(p.tier, Tier::Hour);
    }

    #[test]
    fn csv_has_one_row_per_time_and_three_columns_per_series() {
        let mut a = Assembler::default();
        a.add(
            "cpu_usage_percent",
            60,
            2,
            (Some(1000), Some(3000), Some(2000)),
            100.0,
        );
        a.add(
            "disk_used_bytes:/mnt/a,b",
            120,
            1,
            (Some(5), Some(5), Some(5)),
            1.0,
        );
        let h = a.finish(
            "web-1",
            Plan {
                tier: Tier::Minute,
                step_secs: 60,
            },
        );
        assert_eq!(h.times, vec![60, 120]);
        assert_eq!(h.series["cpu_usage_percent"].avg, vec![Some(15.0), None]);
        let csv = h.to_csv().expect("csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[0].starts_with("time,unix_secs,avg(cpu_usage_percent),min(cpu_usage_percent),max(cpu_usage_percent),\"avg(disk_used_bytes:/mnt/a,b)\""), "{csv}");
        assert_eq!(lines[1], "1970-01-01T00:01:00Z,60,15,10,20,,,");
        assert_eq!(lines[2], "1970-01-01T00:02:00Z,120,,,,5,5,5");
    }
}
