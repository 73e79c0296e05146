//! Evaluation: a pure function of the rules, the state and a reading (or a tick), with the
//! time passed in. Nothing here reads a clock or does I/O, so a test replays a stream and
//! checks the exact times alerts fire and resolve.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::reading::Reading;

use super::rules::{Metric, Rule, RuleSet, Severity};

/// Most samples kept per item for averaging, so a fast publisher cannot grow memory unbounded.
const MAX_SAMPLES: usize = 4096;
/// Points kept per disk for its fill trend: enough for a steady line, few enough to be cheap.
const TREND_POINTS: u32 = 120;
/// Publish interval assumed at least this long, so a burst of readings cannot make a host
/// "down" between two of them.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The alert started, or changed severity (then `previous_severity` is set).
    Fired,
    /// The alert ended.
    Resolved,
    /// The alert still lasts (sent every `repeat`).
    Reminder,
}

impl EventKind {
    /// The kind as `hostpulse_alert_events_total{kind}` writes it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Fired => "fired",
            Self::Resolved => "resolved",
            Self::Reminder => "reminder",
        }
    }
}

/// One alert event, as notifications and the API will carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Fired, resolved or reminder.
    pub kind: EventKind,
    /// The rule's name (`cpu`, `disk_space`, ...).
    pub rule: String,
    /// What the rule measures.
    pub metric: Metric,
    /// The host the alert is about.
    pub host: String,
    /// The mount point, sensor or interface; `None` for host-wide rules.
    pub item: Option<String>,
    /// The alert's severity at this event.
    pub severity: Severity,
    /// On a `fired` event that changes the severity: the severity before.
    pub previous_severity: Option<Severity>,
    /// The (averaged) value when the event happened.
    pub value: f64,
    /// The worst value since the alert fired.
    pub peak: f64,
    /// When the alert fired.
    pub started_at: DateTime<Utc>,
    /// When this event happened.
    pub at: DateTime<Utc>,
}

/// A reading the engine did not evaluate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Ignored {
    /// Not newer than the host's latest reading (a redelivery or a late back-fill).
    #[error("reading from {host} at {at} is not newer than its last one at {last}")]
    OutOfOrder {
        /// The reading's host.
        host: String,
        /// The reading's time.
        at: DateTime<Utc>,
        /// The host's latest reading time.
        last: DateTime<Utc>,
    },
}

impl Ignored {
    /// A short, fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Ignored::OutOfOrder { .. } => "out_of_order",
        }
    }
}

/// An alert that is firing now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlert {
    /// The severity now.
    pub severity: Severity,
    /// When the alert fired.
    pub started_at: DateTime<Utc>,
    /// The latest judged value.
    pub value: f64,
    /// The worst judged value since it fired.
    pub peak: f64,
    /// When a fired or reminder event last went out; `None` while silenced or held back.
    pub notified_at: Option<DateTime<Utc>>,
    /// The severity the last event told; differs from `severity` until the change is told.
    pub notified_severity: Option<Severity>,
}

/// One alert's state for one rule, host and item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ItemState {
    /// Recent values (or, for the fill trend, available bytes). Not persisted: after a
    /// restart the averages refill, while the active alert itself is kept.
    #[serde(skip)]
    samples: VecDeque<(DateTime<Utc>, f64)>,
    /// Since when the warning condition has held without a break.
    warning_since: Option<DateTime<Utc>>,
    /// Since when the critical condition has held without a break.
    critical_since: Option<DateTime<Utc>>,
    /// Since when the value has been back past the clearing level of the active severity.
    lower_since: Option<DateTime<Utc>>,
    alert: Option<ActiveAlert>,
}

/// Everything the engine knows about one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct HostState {
    last_at: Option<DateTime<Utc>>,
    /// Publish interval in seconds: as the host declared it, or the observed gap.
    interval_secs: Option<f64>,
    /// rule name → item ("" for host-wide rules) → state.
    items: BTreeMap<String, BTreeMap<String, ItemState>>,
}

/// The whole engine state; serialisable so active alerts survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    hosts: BTreeMap<String, HostState>,
}

/// An active alert as listed by [`AlertState::active`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveEntry<'a> {
    /// The rule's name.
    pub rule: &'a str,
    /// The host.
    pub host: &'a str,
    /// The mount point, sensor or interface, if the rule has items.
    pub item: Option<&'a str>,
    /// The alert itself.
    pub alert: &'a ActiveAlert,
}

/// How one evaluation moved an alert.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transition {
    Fired(Severity),
    Changed(Severity),
    Resolved,
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn held_for(since: Option<DateTime<Utc>>, at: DateTime<Utc>, d: Duration) -> bool {
    since.is_some_and(|s| secs(at - s) >= d.as_secs_f64())
}

fn beyond(rule: &Rule, value: f64, threshold: f64) -> bool {
    if rule.metric.lower_is_worse() {
        value < threshold
    } else {
        value > threshold
    }
}

fn worse(rule: &Rule, a: f64, b: f64) -> f64 {
    if beyond(rule, a, b) {
        a
    } else {
        b
    }
}

/// The severity `value` calls for, with the clearing levels of the active severity.
fn target(rule: &Rule, current: Option<Severity>, value: f64) -> Option<Severity> {
    let holds = |sev: Severity| {
        let levels = match sev {
            Severity::Warning => rule.warning,
            Severity::Critical => rule.critical,
        };
        levels.is_some_and(|l| {
            let threshold = if current >= Some(sev) {
                l.clear_level()
            } else {
                l.level
            };
            beyond(rule, value, threshold)
        })
    };
    if holds(Severity::Critical) {
        Some(Severity::Critical)
    } else if holds(Severity::Warning) {
        Some(Severity::Warning)
    } else {
        None
    }
}

impl ItemState {
    /// Moves the alert for one new value (`None`: no value, e.g. a disk that is not filling).
    fn step(&mut self, rule: &Rule, value: Option<f64>, at: DateTime<Utc>) -> Option<Transition> {
        let current = self.alert.as_ref().map(|a| a.severity);
        let want = value.and_then(|v| target(rule, current, v));
        let since = |s: Option<DateTime<Utc>>, holds: bool| holds.then(|| s.unwrap_or(at));
        self.warning_since = since(self.warning_since, want.is_some());
        self.critical_since = since(self.critical_since, want == Some(Severity::Critical));
        if let (Some(a), Some(v)) = (self.alert.as_mut(), value) {
            a.value = v;
            a.peak = worse(rule, v, a.peak);
        }

        let raise = [Severity::Critical, Severity::Warning]
            .into_iter()
            .filter(|s| Some(*s) > current)
            .find(|s| {
                let since = match s {
                    Severity::Warning => self.warning_since,
                    Severity::Critical => self.critical_since,
                };
                held_for(since, at, rule.for_)
            });
        if let Some(sev) = raise {
            self.lower_since = None;
            return match self.alert.as_mut() {
                Some(a) => {
                    a.severity = sev;
                    Some(Transition::Changed(sev))
                }
                None => {
                    let v = value.unwrap_or_default();
                    self.alert = Some(ActiveAlert {
                        severity: sev,
                        started_at: at,
                        value: v,
                        peak: v,
                        notified_at: None,
                        notified_severity: None,
                    });
                    Some(Transition::Fired(sev))
                }
            };
        }
        if want < current {
            let lower_since = *self.lower_since.get_or_insert(at);
            if held_for(Some(lower_since), at, rule.clear_for) {
                self.lower_since = None;
                return match (want, self.alert.as_mut()) {
                    (Some(sev), Some(a)) => {
                        a.severity = sev;
                        Some(Transition::Changed(sev))
                    }
                    _ => Some(Transition::Resolved),
                };
            }
        } else {
            self.lower_since = None;
        }
        None
    }

    /// The value to judge: the mean over the rule's window, or the fill trend's hours.
    fn value(&mut self, rule: &Rule, raw: f64, at: DateTime<Utc>) -> Option<f64> {
        let window = secs_of(rule.average);
        if window <= 0.0 || rule.metric == Metric::SilentIntervals {
            self.samples.clear();
            return Some(raw);
        }
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| secs(at - *t) >= window)
        {
            self.samples.pop_front();
        }
        if rule.metric == Metric::DiskFullInHours {
            return self.fill_hours(window, raw, at);
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((at, raw));
        let sum: f64 = self.samples.iter().map(|(_, v)| v).sum();
        Some(sum / self.samples.len() as f64)
    }

    /// Hours until `available` bytes reach zero at the least-squares slope of the window,
    /// once the window is at least half covered; `None` while the disk is not filling.
    fn fill_hours(&mut self, window: f64, available: f64, at: DateTime<Utc>) -> Option<f64> {
        let step = window / f64::from(TREND_POINTS);
        if self
            .samples
            .back()
            .is_none_or(|(t, _)| secs(at - *t) >= step)
        {
            self.samples.push_back((at, available));
        }
        let oldest = self.samples.front()?.0;
        if secs(at - oldest) < window / 2.0 {
            return None;
        }
        let points = self
            .samples
            .iter()
            .map(|(t, v)| (secs(*t - oldest), *v))
            .chain((self.samples.back()?.0 != at).then_some((secs(at - oldest), available)));
        let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (x, y) in points {
            n += 1.0;
            sx += x;
            sy += y;
            sxx += x * x;
            sxy += x * y;
        }
        let denominator = n * sxx - sx * sx;
        if denominator <= 0.0 {
            return None;
        }
        let slope = (n * sxy - sx * sy) / denominator; // bytes per second
        (slope < 0.0).then(|| available.max(0.0) / -slope / 3600.0)
    }
}

fn secs_of(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The values one reading gives a rule: item ("" for host-wide) → raw value.
fn values(metric: Metric, r: &Reading) -> Vec<(String, f64)> {
    let one = |v: f64| vec![(String::new(), v)];
    match metric {
        Metric::SilentIntervals => one(0.0),
        Metric::CpuUsagePercent => one(f64::from(r.cpu.usage_percent)),
        Metric::MemoryUsagePercent => one(f64::from(r.memory.usage_percent)),
        Metric::SwapUsagePercent if r.memory.swap_total_bytes > 0 => {
            one(r.memory.swap_used_bytes as f64 * 100.0 / r.memory.swap_total_bytes as f64)
        }
        Metric::SwapUsagePercent => Vec::new(),
        // A sender that does not know its load or core count gives no value, not 0.
        Metric::LoadPerCore => match (&r.cpu.load_average, r.cpu.core_count) {
            (Some(load), Some(cores)) if cores > 0 => one(load.one / f64::from(cores)),
            _ => Vec::new(),
        },
        Metric::DiskUsagePercent => r
            .disks
            .iter()
            .map(|d| (d.mount_point.clone(), f64::from(d.usage_percent)))
            .collect(),
        Metric::DiskFullInHours => r
            .disks
            .iter()
            .map(|d| (d.mount_point.clone(), d.available_bytes as f64))
            .collect(),
        Metric::TemperatureCelsius => r
            .temperatures
            .iter()
            .map(|t| (t.label.clone(), f64::from(t.celsius)))
            .collect(),
        Metric::NetworkReceiveBytesPerSecond => r
            .networks
            .iter()
            .flatten()
            .map(|n| (n.interface.clone(), n.received_bytes_per_sec as f64))
            .collect(),
        Metric::NetworkTransmitBytesPerSecond => r
            .networks
            .iter()
            .flatten()
            .map(|n| (n.interface.clone(), n.transmitted_bytes_per_sec as f64))
            .collect(),
    }
}

/// Everything needed to turn a transition into an event.
struct Emit<'a> {
    rule: &'a Rule,
    host: &'a str,
    item: &'a str,
    at: DateTime<Utc>,
    /// Silenced, or held back because the host is down.
    muted: bool,
}

impl Emit<'_> {
    fn event(&self, kind: EventKind, a: &ActiveAlert, previous: Option<Severity>) -> AlertEvent {
        AlertEvent {
            kind,
            rule: self.rule.name.clone(),
            metric: self.rule.metric,
            host: self.host.to_string(),
            item: (!self.item.is_empty()).then(|| self.item.to_string()),
            severity: a.severity,
            previous_severity: previous,
            value: a.value,
            peak: a.peak,
            started_at: a.started_at,
            at: self.at,
        }
    }

    /// Turns what happened into events: fired and changes unless muted (told later),
    /// resolutions of alerts that were told, reminders every `repeat`.
    fn run(&self, st: &mut ItemState, change: Option<Transition>, out: &mut Vec<AlertEvent>) {
        if change == Some(Transition::Resolved) {
            if let Some(a) = st.alert.take() {
                if a.notified_severity.is_some() {
                    out.push(self.event(EventKind::Resolved, &a, None));
                }
            }
            return;
        }
        let Some(a) = st.alert.as_mut() else { return };
        if self.muted {
            return;
        }
        if a.notified_severity != Some(a.severity) {
            let previous = a.notified_severity;
            a.notified_at = Some(self.at);
            a.notified_severity = Some(a.severity);
            out.push(self.event(EventKind::Fired, a, previous));
        } else if let (Some(repeat), Some(last)) = (self.rule.repeat, a.notified_at) {
            if secs(self.at - last) >= repeat.as_secs_f64() {
                a.notified_at = Some(self.at);
                out.push(self.event(EventKind::Reminder, a, None));
            }
        }
    }
}

impl HostState {
    fn interval(&self) -> Option<f64> {
        self.interval_secs
    }

    fn is_down(&self, rules: &RuleSet) -> bool {
        rules
            .rules()
            .iter()
            .filter(|r| r.metric == Metric::SilentIntervals)
            .any(|r| {
                self.items
                    .get(&r.name)
                    .and_then(|m| m.get(""))
                    .is_some_and(|s| s.alert.is_some())
            })
    }
}

fn effective(rules: &RuleSet, rule: &Rule, host: &str, item: &str) -> Rule {
    let item = (!item.is_empty()).then_some(item);
    if rules.has_overrides(&rule.name) {
        rules.effective(rule, host, item)
    } else {
        rule.clone()
    }
}

impl AlertState {
    /// A state with no hosts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Evaluates one accepted reading at time `at` (usually its `collected_at`).
    /// `interval` is the host's declared publish interval, if the reading carries one.
    pub fn on_reading(
        &mut self,
        rules: &RuleSet,
        reading: &Reading,
        at: DateTime<Utc>,
        interval: Option<Duration>,
    ) -> Result<Vec<AlertEvent>, Ignored> {
        let host_name = reading.host.as_str();
        let host = self.hosts.entry(host_name.to_string()).or_default();
        if let Some(last) = host.last_at {
            if at <= last {
                return Err(Ignored::OutOfOrder {
                    host: host_name.to_string(),
                    at,
                    last,
                });
            }
        }
        let was_down = host.is_down(rules);
        let min = MIN_INTERVAL.as_secs_f64();
        match (interval, host.last_at) {
            (Some(d), _) => host.interval_secs = Some(d.as_secs_f64().max(min)),
            // The gap over an outage is not the publish interval.
            (None, Some(last)) if !was_down => host.interval_secs = Some(secs(at - last).max(min)),
            _ => {}
        }
        host.last_at = Some(at);

        let mut out = Vec::new();
        // Host-down rules first, so a host coming back is no longer holding the rest back.
        let (down_rules, other_rules): (Vec<&Rule>, Vec<&Rule>) = rules
            .rules()
            .iter()
            .partition(|r| r.metric == Metric::SilentIntervals);
        for rule in down_rules.into_iter().chain(other_rules) {
            let muted_by_down = rule.metric != Metric::SilentIntervals && host.is_down(rules);
            let mut present = values(rule.metric, reading);
            // Same item reported twice (two sensors with one label): the first one counts.
            let mut seen = std::collections::BTreeSet::new();
            present.retain(|(item, _)| seen.insert(item.clone()));
            let items = host.items.entry(rule.name.clone()).or_default();
            for (item, raw) in &present {
                if !raw.is_finite() {
                    continue;
                }
                let eff = effective(rules, rule, host_name, item);
                if !eff.enabled {
                    continue;
                }
                let st = items.entry(item.clone()).or_default();
                let value = st.value(&eff, *raw, at);
                let change = st.step(&eff, value, at);
                let emit = Emit {
                    rule: &eff,
                    host: host_name,
                    item,
                    at,
                    muted: muted_by_down || rules.silenced(host_name, &rule.name, at),
                };
                emit.run(st, change, &mut out);
            }
            // An item gone from the reading (disk unmounted, rule disabled by an override)
            // takes its alert with it.
            let gone: Vec<String> = items
                .keys()
                .filter(|item| {
                    !present.iter().any(|(p, _)| p == *item)
                        || !effective(rules, rule, host_name, item).enabled
                })
                .cloned()
                .collect();
            for item in gone {
                if let Some(mut st) = items.remove(&item) {
                    let emit = Emit {
                        rule,
                        host: host_name,
                        item: &item,
                        at,
                        muted: false,
                    };
                    emit.run(&mut st, Some(Transition::Resolved), &mut out);
                }
            }
        }
        // State of rules no longer in the set (a restored state after a config change).
        host.items.retain(|name, _| rules.rule(name).is_some());
        Ok(out)
    }

    /// Evaluates the passage of time at `now`: hosts gone silent, reminders, silences ended.
    pub fn on_tick(&mut self, rules: &RuleSet, now: DateTime<Utc>) -> Vec<AlertEvent> {
        let mut out = Vec::new();
        for (host_name, host) in &mut self.hosts {
            for rule in rules
                .rules()
                .iter()
                .filter(|r| r.metric == Metric::SilentIntervals)
            {
                let eff = effective(rules, rule, host_name, "");
                let (Some(last), Some(interval), true) =
                    (host.last_at, host.interval(), eff.enabled)
                else {
                    continue;
                };
                let st = host
                    .items
                    .entry(rule.name.clone())
                    .or_default()
                    .entry(String::new())
                    .or_default();
                let change = st.step(&eff, Some(secs(now - last) / interval), now);
                let emit = Emit {
                    rule: &eff,
                    host: host_name,
                    item: "",
                    at: now,
                    muted: rules.silenced(host_name, &rule.name, now),
                };
                emit.run(st, change, &mut out);
            }
            let down = host.is_down(rules);
            for (rule_name, items) in &mut host.items {
                let Some(rule) = rules.rule(rule_name) else {
                    continue;
                };
                if rule.metric == Metric::SilentIntervals {
                    continue;
                }
                for (item, st) in items.iter_mut().filter(|(_, s)| s.alert.is_some()) {
                    let eff = effective(rules, rule, host_name, item);
                    let emit = Emit {
                        rule: &eff,
                        host: host_name,
                        item,
                        at: now,
                        muted: down || rules.silenced(host_name, rule_name, now),
                    };
                    emit.run(st, None, &mut out);
                }
            }
        }
        out
    }

    /// Forgets a host (e.g. expired after a long silence) without any event.
    pub fn forget_host(&mut self, host: &str) {
        self.hosts.remove(host);
    }

    /// Every alert firing now, by host, rule and item.
    pub fn active(&self) -> Vec<ActiveEntry<'_>> {
        let mut out = Vec::new();
        for (host, h) in &self.hosts {
            for (rule, items) in &h.items {
                for (item, st) in items {
                    if let Some(alert) = &st.alert {
                        out.push(ActiveEntry {
                            rule,
                            host,
                            item: (!item.is_empty()).then_some(item.as_str()),
                            alert,
                        });
                    }
                }
            }
        }
        out
    }
}

/// The events of one host from one evaluation step, for one notification per host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostBatch {
    /// The host all the events are about.
    pub host: String,
    /// Its events, in the order they happened.
    pub events: Vec<AlertEvent>,
}

/// Groups one step's events by host, hosts in order of their first event.
pub fn group_by_host(events: Vec<AlertEvent>) -> Vec<HostBatch> {
    let mut batches: Vec<HostBatch> = Vec::new();
    for e in events {
        match batches.iter_mut().find(|b| b.host == e.host) {
            Some(b) => b.events.push(e),
            None => batches.push(HostBatch {
                host: e.host.clone(),
                events: vec![e],
            }),
        }
    }
    batches
}
