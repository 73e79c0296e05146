//! What an evaluator whose turn starts (a restart or a hand-over) learns before it judges, so
//! the hand-over is invisible: each host's last reading (the store's newest, and the latest
//! this consumer received itself on its live queue while standing by), and the averaging
//! windows and fill trends refilled from the history store's raw tier.

use super::engine::Past;
use super::{AlertState, Metric, RuleSet};
use crate::history::store::{History, Store};
use crate::live::LiveView;
use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::Duration;

/// Most time the refill may take: judging waits for it.
const REFILL_WITHIN: Duration = Duration::from_secs(10);
/// Points asked of the store per host: the raw tier at one per second for an hour.
const REFILL_POINTS: u32 = 3_600;

/// Just before `now`: a time taken from elsewhere never makes the next reading look old.
fn before(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    at.min(now - chrono::Duration::milliseconds(1))
}

/// Tells `state` every host's last reading that `live` and the store know of, then refills
/// the windows of the hosts the store heard from within the longest window.
pub(super) async fn catch_up(
    rules: &RuleSet,
    state: &Mutex<AlertState>,
    live: &LiveView,
    store: Option<&Store>,
    now: DateTime<Utc>,
) {
    {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let recent = chrono::Duration::from_std(rules.no_data_after()).unwrap_or_default();
        for host in live.hosts() {
            // Long silent: the last evaluator told what there was to tell.
            if now - host.last_seen > recent {
                continue;
            }
            let reading = &host.latest.reading;
            state.seen(
                &reading.host,
                before(host.last_seen, now),
                reading
                    .interval_secs
                    .map(|s| Duration::from_secs(u64::from(s))),
                reading.labels.clone().unwrap_or_default(),
            );
        }
    }
    let Some(store) = store else { return };
    let window = rules
        .rules()
        .iter()
        .map(|r| r.average)
        .max()
        .unwrap_or_default();
    let refilled = tokio::time::timeout(REFILL_WITHIN, async {
        let hosts = match store.hosts().await {
            Ok(hosts) => hosts,
            Err(e) => {
                tracing::warn!(error = %e, "alerts: the history store cannot say when hosts were last heard; judging from the readings received");
                return 0;
            }
        };
        // Every host's last reading first, before any tick can judge it; then the windows.
        {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            for host in &hosts {
                if let Some(last) = host.last_seen_at() {
                    state.heard_at(&host.name, before(last, now));
                }
            }
        }
        let mut refilled = 0;
        for host in hosts {
            let Some(last) = host.last_seen_at() else { continue };
            let from = now - chrono::Duration::from_std(window).unwrap_or_default();
            if window.is_zero() || last < from {
                continue;
            }
            let history = match store
                .history(&host.name, from, now, Some(REFILL_POINTS), now)
                .await
            {
                Ok(Some(history)) => history,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(host = %host.name, error = %e, "alerts: the history store cannot refill this host's windows; they refill from its readings");
                    continue;
                }
            };
            let cores = host.core_count.filter(|c| *c > 0);
            let past = past_of(&history, cores, now);
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .refill(rules, &host.name, &past);
            refilled += 1;
        }
        refilled
    })
    .await;
    match refilled {
        Ok(n) => tracing::info!(hosts = n, "alerts: windows refilled from the history store"),
        Err(_) => tracing::warn!(
            "alerts: refilling the windows from the history store took too long; the rest refill from the readings"
        ),
    }
}

/// The store's answer as the figures the rules judge.
fn past_of(history: &History, cores: Option<i64>, now: DateTime<Utc>) -> Past {
    let times: Vec<Option<DateTime<Utc>>> = history
        .times
        .iter()
        .map(|t| DateTime::from_timestamp(*t, 0).filter(|t| *t < now))
        .collect();
    let series = |name: &str| history.series.get(name).map(|b| b.avg.as_slice());
    let mut past = Past::new();
    let mut put = |metric: Metric, item: &str, values: Vec<Option<f64>>| {
        let points: Vec<(DateTime<Utc>, f64)> = times
            .iter()
            .zip(values)
            .filter_map(|(t, v)| Some(((*t)?, v?)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        if !points.is_empty() {
            past.insert((metric, item.to_owned()), points);
        }
    };
    let own = |name: &str| series(name).map(<[Option<f64>]>::to_vec);
    if let Some(v) = own("cpu_usage_percent") {
        put(Metric::CpuUsagePercent, "", v);
    }
    if let Some(v) = own("memory_usage_percent") {
        put(Metric::MemoryUsagePercent, "", v);
    }
    if let (Some(used), Some(total)) = (series("swap_used_bytes"), series("swap_total_bytes")) {
        let pct = used
            .iter()
            .zip(total)
            .map(|(u, t)| match (u, t) {
                (Some(u), Some(t)) if *t > 0.0 => Some(u * 100.0 / t),
                _ => None,
            })
            .collect();
        put(Metric::SwapUsagePercent, "", pct);
    }
    if let (Some(load), Some(cores)) = (series("load1"), cores) {
        let per_core = load.iter().map(|l| l.map(|l| l / cores as f64)).collect();
        put(Metric::LoadPerCore, "", per_core);
    }
    for (name, band) in &history.series {
        let Some((kind, item)) = name.split_once(':') else {
            continue;
        };
        let metric = match kind {
            "disk_usage_percent" => Metric::DiskUsagePercent,
            "disk_used_bytes" => Metric::DiskFullInHours,
            "network_received_bytes_per_second" => Metric::NetworkReceiveBytesPerSecond,
            "network_transmitted_bytes_per_second" => Metric::NetworkTransmitBytesPerSecond,
            _ => continue,
        };
        put(metric, item, band.avg.clone());
    }
    past
}
