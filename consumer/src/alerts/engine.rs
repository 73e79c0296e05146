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
/// Share of a mean's window its readings must cover before the mean is judged: a mean of one
/// reading is not a mean.
pub const COVERAGE: f64 = 0.8;
/// Readings in a row at a steady gap that make a rhythm, for a host that declares no interval.
pub const RHYTHM_READINGS: usize = 6;
/// How far each gap of a rhythm may stray from the gaps' median (a share of it).
const RHYTHM_TOLERANCE: f64 = 0.25;
/// How long a down host's other alerts are held before they resolve as "no data", unless the
/// consumer's settings say otherwise.
pub const NO_DATA_AFTER: Duration = Duration::from_secs(300);

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
    /// Why a `resolved` event ended the alert when it was not the value: `no_data` (its host
    /// has been silent too long to say). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Why an alert resolved other than by its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The host has been silent longer than the no-data time: nothing can be said of it.
    NoData,
}

impl Reason {
    /// The reason as events and notifications write it.
    pub fn label(self) -> &'static str {
        match self {
            Self::NoData => "no_data",
        }
    }
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
    /// Recent values (or, for the fill trend, used bytes). Not persisted: after a restart or
    /// a hand-over they are refilled from the history store (see [`AlertState::refill`]) and
    /// from the next readings, while the active alert itself is kept.
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
    /// When its latest reading was judged.
    last_at: Option<DateTime<Utc>>,
    /// Publish interval in seconds as its latest reading declared it.
    #[serde(default)]
    declared_secs: Option<f64>,
    /// The latest gaps between readings (seconds), for a rhythm seen when none is declared.
    #[serde(default)]
    gaps: VecDeque<f64>,
    /// The host's labels from its latest reading, for the rules file's expected intervals.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    /// rule name → item ("" for host-wide rules) → state.
    items: BTreeMap<String, BTreeMap<String, ItemState>>,
}

/// The whole engine state; serialisable so active alerts survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    hosts: BTreeMap<String, HostState>,
    /// How far silence may be judged; the evaluator's own knowledge of its pipeline, so not
    /// kept (a consumer taking over starts from its own canary).
    #[serde(skip)]
    silence: SilenceWindow,
}

/// What the evaluator knows of its own pipeline when it judges silence (see
/// `alerts/canary.rs`): a silent host and a silent broker look alike from here.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SilenceWindow {
    /// Readings published before this time are known to have arrived (the evaluator's canary,
    /// sent then, came back): silence is judged up to here and no further. `None`: up to now.
    pub heard_until: Option<DateTime<Utc>>,
    /// The pipeline came back at this time: a host not already down is judged silent from no
    /// earlier than this, so each host gets its own allowance of intervals to be heard again.
    pub counted_from: Option<DateTime<Utc>>,
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
    /// `None` while there is not enough to judge (the window not covered yet); `Some(None)`
    /// when there is no value (a disk that is not filling). `gap` is the host's publish
    /// interval when known: a reading stands for that long.
    fn value(
        &mut self,
        rule: &Rule,
        figure: &Figure,
        at: DateTime<Utc>,
        gap: Option<f64>,
    ) -> Option<Option<f64>> {
        let window = secs_of(rule.average);
        if window <= 0.0 || rule.metric == Metric::SilentIntervals {
            self.samples.clear();
            return Some(Some(figure.value));
        }
        self.forget_before(at, window);
        if rule.metric == Metric::DiskFullInHours {
            return self.fill_hours(window, figure, at);
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((at, figure.value));
        if !self.covers(window, at, gap) {
            return None;
        }
        let sum: f64 = self.samples.iter().map(|(_, v)| v).sum();
        Some(Some(sum / self.samples.len() as f64))
    }

    fn forget_before(&mut self, at: DateTime<Utc>, window: f64) {
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| secs(at - *t) >= window)
        {
            self.samples.pop_front();
        }
    }

    /// Whether the samples cover [`COVERAGE`] of `window`: from the oldest to `at`, plus what
    /// one reading stands for (the publish interval or the samples' mean gap, the longer).
    fn covers(&self, window: f64, at: DateTime<Utc>, gap: Option<f64>) -> bool {
        let Some((oldest, _)) = self.samples.front() else {
            return false;
        };
        let span = secs(at - *oldest);
        let n = self.samples.len();
        let seen = if n > 1 { span / (n - 1) as f64 } else { 0.0 };
        span + gap.unwrap_or(0.0).max(seen) >= COVERAGE * window
    }

    /// Hours until the disk's available bytes reach zero at the least-squares slope of its
    /// used bytes over the window, once the window is at least half covered (`None` before);
    /// `Some(None)` while the disk is not filling.
    fn fill_hours(
        &mut self,
        window: f64,
        figure: &Figure,
        at: DateTime<Utc>,
    ) -> Option<Option<f64>> {
        let used = figure.used?;
        let available = figure.value;
        let step = window / f64::from(TREND_POINTS);
        if self
            .samples
            .back()
            .is_none_or(|(t, _)| secs(at - *t) >= step)
        {
            self.samples.push_back((at, used));
        }
        let oldest = self.samples.front()?.0;
        if secs(at - oldest) < window / 2.0 {
            return None;
        }
        let points = self
            .samples
            .iter()
            .map(|(t, v)| (secs(*t - oldest), *v))
            .chain((self.samples.back()?.0 != at).then_some((secs(at - oldest), used)));
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
            return Some(None);
        }
        let slope = (n * sxy - sx * sy) / denominator; // used bytes per second
        Some((slope > 0.0).then(|| available.max(0.0) / slope / 3600.0))
    }

    /// Puts `past` values (oldest first, older than every sample held) in front of the
    /// samples, as the readings would have: every one for a mean, one per trend step.
    fn refill(&mut self, rule: &Rule, past: &[(DateTime<Utc>, f64)]) {
        let window = secs_of(rule.average);
        if window <= 0.0 {
            return;
        }
        let first_held = self.samples.front().map(|(t, _)| *t);
        let step = if rule.metric == Metric::DiskFullInHours {
            window / f64::from(TREND_POINTS)
        } else {
            0.0
        };
        let mut older: VecDeque<(DateTime<Utc>, f64)> = VecDeque::new();
        for &(t, v) in past {
            if first_held.is_some_and(|f| t >= f) || !v.is_finite() {
                break;
            }
            if older
                .back()
                .is_none_or(|(last, _)| secs(t - *last) >= step.max(0.001))
            {
                older.push_back((t, v));
            }
        }
        older.append(&mut self.samples);
        while older.len() > MAX_SAMPLES {
            older.pop_front();
        }
        self.samples = older;
    }
}

fn secs_of(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Past figures of one host: (metric, item) → (time, value), oldest first.
pub type Past = BTreeMap<(Metric, String), Vec<(DateTime<Utc>, f64)>>;

/// What one reading gives a rule for one item.
#[derive(Debug, Clone, PartialEq)]
struct Figure {
    /// The mount point, sensor or interface; "" for host-wide rules.
    item: String,
    /// The value (for the fill trend: available bytes).
    value: f64,
    /// For the fill trend: used bytes, whose slope is the trend.
    used: Option<f64>,
}

fn figure(item: String, value: f64) -> Figure {
    Figure {
        item,
        value,
        used: None,
    }
}

/// The figures one reading gives a rule, one per item.
fn values(metric: Metric, r: &Reading) -> Vec<Figure> {
    let one = |v: f64| vec![figure(String::new(), v)];
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
            .map(|d| figure(d.mount_point.clone(), f64::from(d.usage_percent)))
            .collect(),
        Metric::DiskFullInHours => r
            .disks
            .iter()
            .map(|d| Figure {
                item: d.mount_point.clone(),
                value: d.available_bytes as f64,
                used: Some(d.used_bytes as f64),
            })
            .collect(),
        Metric::TemperatureCelsius => r
            .temperatures
            .iter()
            .map(|t| figure(t.label.clone(), f64::from(t.celsius)))
            .collect(),
        Metric::NetworkReceiveBytesPerSecond => r
            .networks
            .iter()
            .flatten()
            .map(|n| figure(n.interface.clone(), n.received_bytes_per_sec as f64))
            .collect(),
        Metric::NetworkTransmitBytesPerSecond => r
            .networks
            .iter()
            .flatten()
            .map(|n| figure(n.interface.clone(), n.transmitted_bytes_per_sec as f64))
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
    /// Why a resolution happened, when not by the value.
    reason: Option<Reason>,
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
            reason: (kind == EventKind::Resolved)
                .then_some(self.reason)
                .flatten(),
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
    /// The publish interval the host is judged by (seconds): the rules file's for it, else
    /// the one its readings declare, else a rhythm seen. `None`: on demand, never down.
    fn interval(&self, rules: &RuleSet, name: &str) -> Option<f64> {
        let min = MIN_INTERVAL.as_secs_f64();
        if let Some(expected) = rules.expected_interval(name, &self.labels) {
            return (!expected.is_zero()).then(|| expected.as_secs_f64().max(min));
        }
        self.declared_secs
            .or_else(|| self.rhythm())
            .map(|s| s.max(min))
    }

    /// The gap of the latest [`RHYTHM_READINGS`] readings when each is within
    /// [`RHYTHM_TOLERANCE`] of their median.
    fn rhythm(&self) -> Option<f64> {
        if self.gaps.len() < RHYTHM_READINGS - 1 {
            return None;
        }
        let mut sorted: Vec<f64> = self.gaps.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        (median > 0.0
            && sorted
                .iter()
                .all(|g| (g - median).abs() <= RHYTHM_TOLERANCE * median))
        .then_some(median)
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
        host.declared_secs = interval.map(|d| d.as_secs_f64());
        match host.last_at {
            // The gap over an outage is not the publish interval.
            Some(last) if !was_down => {
                host.gaps.push_back(secs(at - last));
                while host.gaps.len() > RHYTHM_READINGS - 1 {
                    host.gaps.pop_front();
                }
            }
            _ => {}
        }
        host.labels = reading.labels.clone().unwrap_or_default();
        host.last_at = Some(at);
        let gap = host.interval(rules, host_name);

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
            present.retain(|f| seen.insert(f.item.clone()));
            let items = host.items.entry(rule.name.clone()).or_default();
            for fig in &present {
                if !fig.value.is_finite() || fig.used.is_some_and(|u| !u.is_finite()) {
                    continue;
                }
                let item = &fig.item;
                let eff = effective(rules, rule, host_name, item);
                if !eff.enabled {
                    continue;
                }
                let st = items.entry(item.clone()).or_default();
                // Not enough to judge yet: the alert stays as it is.
                let change = match st.value(&eff, fig, at, gap) {
                    Some(value) => st.step(&eff, value, at),
                    None => None,
                };
                let emit = Emit {
                    rule: &eff,
                    host: host_name,
                    item,
                    at,
                    muted: muted_by_down || rules.silenced(host_name, &rule.name, at),
                    reason: None,
                };
                emit.run(st, change, &mut out);
            }
            // An item gone from the reading (disk unmounted, rule disabled by an override)
            // takes its alert with it.
            let gone: Vec<String> = items
                .keys()
                .filter(|item| {
                    !present.iter().any(|f| &f.item == *item)
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
                        reason: None,
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
        let window = self.silence;
        let until = window.heard_until.map_or(now, |heard| heard.min(now));
        for (host_name, host) in &mut self.hosts {
            for rule in rules
                .rules()
                .iter()
                .filter(|r| r.metric == Metric::SilentIntervals)
            {
                let eff = effective(rules, rule, host_name, "");
                let (Some(last), true) = (host.last_at, eff.enabled) else {
                    continue;
                };
                let interval = host.interval(rules, host_name);
                let st = host
                    .items
                    .entry(rule.name.clone())
                    .or_default()
                    .entry(String::new())
                    .or_default();
                let from = match window.counted_from {
                    Some(from) if st.alert.is_none() => last.max(from),
                    _ => last,
                };
                let silent = match interval {
                    Some(interval) => secs(until - from).max(0.0) / interval,
                    // On demand: never down. A down alert from before (a kept state, a rules
                    // file changed) ends.
                    None if st.alert.is_some() => 0.0,
                    None => continue,
                };
                let change = st.step(&eff, Some(silent), now);
                let emit = Emit {
                    rule: &eff,
                    host: host_name,
                    item: "",
                    at: now,
                    muted: rules.silenced(host_name, &rule.name, now),
                    reason: None,
                };
                emit.run(st, change, &mut out);
            }
            let down = host.is_down(rules);
            if down {
                no_data(rules, host_name, host, now, &mut out);
            }
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
                        reason: None,
                    };
                    emit.run(st, None, &mut out);
                }
            }
        }
        out
    }

    /// Puts what the history store holds of `host` before now into its averaging windows and
    /// fill trends: `past` is (time, metric, item, value), oldest first, the item "" for
    /// host-wide figures and used bytes for [`Metric::DiskFullInHours`]. Only what is older
    /// than every sample held is taken, so calling it twice, or after readings came, does not
    /// count a reading twice.
    pub fn refill(&mut self, rules: &RuleSet, host: &str, past: &Past) {
        let state = self.hosts.entry(host.to_string()).or_default();
        for rule in rules.rules() {
            for ((metric, item), values) in past.range((rule.metric, String::new())..) {
                if *metric != rule.metric {
                    break;
                }
                let eff = effective(rules, rule, host, item);
                if !eff.enabled {
                    continue;
                }
                state
                    .items
                    .entry(rule.name.clone())
                    .or_default()
                    .entry(item.clone())
                    .or_default()
                    .refill(&eff, values);
            }
        }
    }

    /// Takes `at` as the time of `host`'s latest reading when it is later than the one held
    /// (a successor learns it from the store or from the readings it saw itself), so silence
    /// is judged from the last reading, never from when the state was kept.
    pub fn heard_at(&mut self, host: &str, at: DateTime<Utc>) {
        if let Some(h) = self.hosts.get_mut(host) {
            if h.last_at.is_none_or(|last| last < at) {
                h.last_at = Some(at);
            }
        }
    }

    /// Takes a reading this consumer received at `at` (but did not judge: it was not the
    /// evaluator then) as `host`'s latest, when it is later than the one held; a host the
    /// state does not hold yet is taken in with the reading's declared interval and labels,
    /// so one that stops during a hand-over is still judged down.
    pub fn seen(
        &mut self,
        host: &str,
        at: DateTime<Utc>,
        declared: Option<Duration>,
        labels: BTreeMap<String, String>,
    ) {
        let h = self.hosts.entry(host.to_string()).or_default();
        if h.last_at.is_none_or(|last| last < at) {
            h.last_at = Some(at);
            h.declared_secs = declared.map(|d| d.as_secs_f64());
            h.labels = labels;
        }
    }

    /// The hosts the state holds.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// Sets how far silence may be judged from now on (see [`SilenceWindow`]).
    pub fn judge_silence(&mut self, window: SilenceWindow) {
        self.silence = window;
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

/// A down host silent for longer than the rules' no-data time: its other alerts resolve with
/// the reason "no data" and their state goes (the host is judged afresh when it is back). The
/// down alert is told again with them, so the notification says why.
fn no_data(
    rules: &RuleSet,
    host_name: &str,
    host: &mut HostState,
    now: DateTime<Utc>,
    out: &mut Vec<AlertEvent>,
) {
    let Some(last) = host.last_at else { return };
    if secs(now - last) < rules.no_data_after().as_secs_f64() {
        return;
    }
    let before = out.len();
    for (rule_name, items) in &mut host.items {
        let Some(rule) = rules.rule(rule_name) else {
            continue;
        };
        if rule.metric == Metric::SilentIntervals {
            continue;
        }
        for (item, mut st) in std::mem::take(items) {
            if st.alert.is_none() {
                continue;
            }
            let eff = effective(rules, rule, host_name, &item);
            let emit = Emit {
                rule: &eff,
                host: host_name,
                item: &item,
                at: now,
                muted: false,
                reason: Some(Reason::NoData),
            };
            emit.run(&mut st, Some(Transition::Resolved), out);
        }
    }
    host.items.retain(|name, items| {
        !items.is_empty()
            || rules
                .rule(name)
                .is_some_and(|r| r.metric == Metric::SilentIntervals)
    });
    if out.len() == before {
        return;
    }
    for rule in rules
        .rules()
        .iter()
        .filter(|r| r.metric == Metric::SilentIntervals)
    {
        let told_now = out[..before]
            .iter()
            .any(|e| e.host == host_name && e.rule == rule.name);
        let Some(st) = host.items.get_mut(&rule.name).and_then(|m| m.get_mut("")) else {
            continue;
        };
        let Some(a) = st.alert.as_mut() else { continue };
        if told_now || a.notified_severity.is_none() {
            continue;
        }
        a.notified_at = Some(now);
        let eff = effective(rules, rule, host_name, "");
        let emit = Emit {
            rule: &eff,
            host: host_name,
            item: "",
            at: now,
            muted: false,
            reason: None,
        };
        out.push(emit.event(EventKind::Reminder, a, None));
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
