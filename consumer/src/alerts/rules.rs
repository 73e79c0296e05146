//! Alert rules: what is measured, the levels, and the TOML file that changes them.
//!
//! The defaults are a TOML file compiled into the binary (`default_rules.toml`); the user's
//! file (`ALERT_RULES_FILE`) is laid over them rule by rule: a field it gives replaces the
//! default's field, a new rule name adds a rule.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

/// The rules every consumer starts with, written in the same format as `ALERT_RULES_FILE`.
pub const DEFAULT_RULES_TOML: &str = include_str!("default_rules.toml");

/// What a rule measures in a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Publish intervals since the host's last reading (evaluated on ticks): host down.
    SilentIntervals,
    /// `cpu.usage_percent`.
    CpuUsagePercent,
    /// `memory.usage_percent`.
    MemoryUsagePercent,
    /// Swap used as a percentage of swap total (no value on a host without swap).
    SwapUsagePercent,
    /// The one-minute load average divided by the number of cores.
    LoadPerCore,
    /// Each disk's `usage_percent`, one alert per mount point.
    DiskUsagePercent,
    /// Hours until each disk is full at its recent trend, one alert per mount point.
    DiskFullInHours,
    /// Each temperature sensor, one alert per sensor.
    TemperatureCelsius,
    /// Each interface's receive rate, one alert per interface.
    NetworkReceiveBytesPerSecond,
    /// Each interface's transmit rate, one alert per interface.
    NetworkTransmitBytesPerSecond,
}

impl Metric {
    /// True when lower values are worse (the level is a floor, not a ceiling).
    pub fn lower_is_worse(self) -> bool {
        matches!(self, Metric::DiskFullInHours)
    }

    /// What the rule's item is for this metric, if it has items.
    pub fn item_kind(self) -> Option<&'static str> {
        match self {
            Metric::DiskUsagePercent | Metric::DiskFullInHours => Some("mount"),
            Metric::TemperatureCelsius => Some("sensor"),
            Metric::NetworkReceiveBytesPerSecond | Metric::NetworkTransmitBytesPerSecond => {
                Some("interface")
            }
            _ => None,
        }
    }
}

/// How bad an active alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Past the warning level.
    Warning,
    /// Past the critical level.
    Critical,
}

impl Severity {
    /// The severity as labels and routing keys write it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// A level and the level at which an alert at that severity clears again.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    /// Beyond this the severity fires.
    pub level: f64,
    /// Back past this the severity clears; defaults to `level` (no hysteresis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
}

impl Levels {
    /// The clearing level, `level` when none was given.
    pub fn clear_level(&self) -> f64 {
        self.clear.unwrap_or(self.level)
    }
}

/// One rule as the engine uses it, after defaults, the file and any host override.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule's name, its key in the rules file.
    pub name: String,
    /// What it measures.
    pub metric: Metric,
    /// The warning level and its clearing level, if the rule warns.
    pub warning: Option<Levels>,
    /// The critical level and its clearing level, if the rule has one.
    pub critical: Option<Levels>,
    /// How long the level must be passed before the alert fires (or escalates).
    pub for_: Duration,
    /// How long the value must be back past the clearing level before it resolves.
    pub clear_for: Duration,
    /// The value is the mean over this window (for `disk_full_in_hours`: the trend's window).
    pub average: Duration,
    /// Reminder interval while the alert lasts; `None` sends no reminders.
    pub repeat: Option<Duration>,
    /// False turns the rule off (for every host, or for some through an override).
    pub enabled: bool,
}

/// One rule's fields as written in a file; every field is optional so a file can change one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    metric: Option<Metric>,
    warning: Option<Levels>,
    critical: Option<Levels>,
    #[serde(default, rename = "for", deserialize_with = "duration")]
    for_: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    clear_for: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    average: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    repeat: Option<Duration>,
    enabled: Option<bool>,
}

/// An override as written: which hosts (and items) it applies to, and the fields it changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideSpec {
    hosts: String,
    rule: String,
    items: Option<String>,
    warning: Option<Levels>,
    critical: Option<Levels>,
    #[serde(default, rename = "for", deserialize_with = "duration")]
    for_: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    clear_for: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    average: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    repeat: Option<Duration>,
    enabled: Option<bool>,
}

/// A silence as written: hosts and/or rules muted until a time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceSpec {
    hosts: Option<String>,
    rule: Option<String>,
    #[serde(deserialize_with = "rfc3339")]
    until: DateTime<Utc>,
    #[allow(dead_code)] // kept in the file for people; the engine has no use for it
    comment: Option<String>,
}

/// An expected publish interval as written: for hosts matching a glob and/or labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalSpec {
    hosts: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "duration")]
    every: Option<Duration>,
}

/// A humantime duration ("90s", "5m", "1h 30m"), with an error that says what was wrong.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    let problem = if text.trim_start().starts_with('-') {
        "durations cannot be negative".to_string()
    } else {
        match humantime_serde::re::humantime::parse_duration(&text) {
            Ok(d) => return Ok(Some(d)),
            Err(e) => format!("{e}; write e.g. \"90s\", \"5m\" or \"1h 30m\""),
        }
    };
    Err(serde::de::Error::custom(format!(
        "duration {text:?}: {problem}"
    )))
}

fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            serde::de::Error::custom(format!(
                "`until` {text:?} is not an RFC 3339 time such as 2026-12-01T08:00:00Z ({e})"
            ))
        })
}

/// The top level of a rules file; each part is checked on its own so errors can name it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    rules: BTreeMap<String, toml::Value>,
    #[serde(default)]
    overrides: Vec<toml::Value>,
    #[serde(default)]
    silences: Vec<toml::Value>,
    #[serde(default)]
    intervals: Vec<toml::Value>,
}

/// A per-host (and optionally per-item) change to one rule.
#[derive(Debug, Clone)]
pub struct Override {
    hosts: GlobMatcher,
    items: Option<GlobMatcher>,
    rule: String,
    spec: RuleSpec,
}

/// A host and/or rule muted until a time.
#[derive(Debug, Clone)]
pub struct Silence {
    hosts: Option<GlobMatcher>,
    rule: Option<String>,
    /// Events are held back until this time.
    pub until: DateTime<Utc>,
}

impl Silence {
    /// Whether this silence mutes `rule` on `host` at `now`.
    pub fn mutes(&self, host: &str, rule: &str, now: DateTime<Utc>) -> bool {
        now < self.until
            && self.hosts.as_ref().is_none_or(|g| g.is_match(host))
            && self.rule.as_deref().is_none_or(|r| r == rule)
    }
}

/// The publish interval a user expects of some hosts, whatever their readings declare.
#[derive(Debug, Clone)]
pub struct ExpectedInterval {
    hosts: Option<GlobMatcher>,
    /// Label name → pattern its value must match; all must.
    labels: Vec<(String, GlobMatcher)>,
    /// `0s`: on demand, never judged down.
    every: Duration,
}

impl ExpectedInterval {
    fn matches(&self, host: &str, labels: &BTreeMap<String, String>) -> bool {
        self.hosts.as_ref().is_none_or(|g| g.is_match(host))
            && self
                .labels
                .iter()
                .all(|(name, g)| labels.get(name).is_some_and(|v| g.is_match(v)))
    }
}

/// Every rule, override, silence and expected interval in force.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    overrides: Vec<Override>,
    silences: Vec<Silence>,
    intervals: Vec<ExpectedInterval>,
    /// How long a down host's other alerts are held before they resolve as "no data".
    no_data_after: Duration,
}

/// Why a rules file was refused; `Display` is one line naming the rule and the problem.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{place}: {problem}")]
pub struct RulesError {
    /// Where: `rule "cpu"`, `override 2`, `silence 1` or `line 4`.
    pub place: String,
    /// What is wrong, in one line.
    pub problem: String,
}

impl RulesError {
    fn new(place: impl Into<String>, problem: impl Into<String>) -> Self {
        RulesError {
            place: place.into(),
            problem: one_line(&problem.into()),
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

fn glob(pattern: &str, place: &str) -> Result<GlobMatcher, RulesError> {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .map_err(|e| RulesError::new(place, format!("bad pattern {pattern:?}: {}", e.kind())))
}

impl RuleSpec {
    fn apply(&self, rule: &mut Rule) {
        if let Some(l) = self.warning {
            rule.warning = Some(l);
        }
        if let Some(l) = self.critical {
            rule.critical = Some(l);
        }
        if let Some(d) = self.for_ {
            rule.for_ = d;
        }
        if let Some(d) = self.clear_for {
            rule.clear_for = d;
        }
        if let Some(d) = self.average {
            rule.average = d;
        }
        if let Some(d) = self.repeat {
            // "0s" turns reminders off.
            rule.repeat = (!d.is_zero()).then_some(d);
        }
        if let Some(e) = self.enabled {
            rule.enabled = e;
        }
    }
}

impl From<&OverrideSpec> for RuleSpec {
    fn from(o: &OverrideSpec) -> Self {
        RuleSpec {
            metric: None,
            warning: o.warning,
            critical: o.critical,
            for_: o.for_,
            clear_for: o.clear_for,
            average: o.average,
            repeat: o.repeat,
            enabled: o.enabled,
        }
    }
}

impl Rule {
    /// Checks that the levels make sense for the metric's direction.
    pub fn check(&self) -> Result<(), String> {
        let worse = |a: f64, b: f64| {
            if self.metric.lower_is_worse() {
                a < b
            } else {
                a > b
            }
        };
        if self.warning.is_none() && self.critical.is_none() {
            return Err("no level: give warning or critical".into());
        }
        let side = if self.metric.lower_is_worse() {
            "above"
        } else {
            "below"
        };
        for (name, levels) in [("warning", self.warning), ("critical", self.critical)] {
            let Some(l) = levels else { continue };
            if !l.level.is_finite() || !l.clear_level().is_finite() {
                return Err(format!("{name} level is not a finite number"));
            }
            if worse(l.clear_level(), l.level) {
                return Err(format!(
                    "{name} clear {} is on the wrong side of level {}: it must be {side} or equal",
                    l.clear_level(),
                    l.level
                ));
            }
            if self.metric.lower_is_worse() && l.level <= 0.0 {
                return Err(format!("{name} level must be above 0"));
            }
        }
        if self.metric == Metric::DiskFullInHours && self.average.is_zero() {
            return Err("`average` is the window of the fill trend and cannot be 0s".into());
        }
        if let (Some(w), Some(c)) = (self.warning, self.critical) {
            if worse(w.level, c.level) {
                return Err(format!(
                    "warning level {} is beyond critical level {}",
                    w.level, c.level
                ));
            }
        }
        Ok(())
    }
}

impl RuleSet {
    /// The defaults, with the file at `path` laid over them when there is one.
    pub fn load(path: Option<&std::path::Path>) -> Result<Self, RulesError> {
        match path {
            Some(p) => Self::from_file(p),
            None => Self::defaults(),
        }
    }

    /// The compiled-in defaults alone.
    pub fn defaults() -> Result<Self, RulesError> {
        Self::layered(&[DEFAULT_RULES_TOML])
    }

    /// The defaults with a user's rules file laid over them.
    pub fn from_toml(user: &str) -> Result<Self, RulesError> {
        Self::layered(&[DEFAULT_RULES_TOML, user])
    }

    /// Reads `path` and lays it over the defaults; errors say which file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RulesError::new(path.display().to_string(), e.to_string()))?;
        Self::from_toml(&text).map_err(|e| RulesError {
            place: format!("{}: {}", path.display(), e.place),
            problem: e.problem,
        })
    }

    fn layered(layers: &[&str]) -> Result<Self, RulesError> {
        let mut specs: BTreeMap<String, RuleSpec> = BTreeMap::new();
        let mut overrides = Vec::new();
        let mut silences = Vec::new();
        let mut intervals = Vec::new();
        for text in layers {
            let file: FileSpec = toml::from_str(text).map_err(|e| {
                let place = e.span().map_or("rules file".to_string(), |s| {
                    format!("line {}", line_of(text, s.start))
                });
                RulesError::new(place, e.message())
            })?;
            for (name, value) in file.rules {
                let place = format!("rule {name:?}");
                let spec: RuleSpec = value
                    .try_into()
                    .map_err(|e: toml::de::Error| RulesError::new(&place, e.message()))?;
                let merged = specs.entry(name).or_default();
                if spec.metric.is_some() {
                    merged.metric = spec.metric;
                }
                merge(merged, &spec);
            }
            for value in file.overrides {
                let place = format!("override {}", overrides.len() + 1);
                let spec: OverrideSpec = value
                    .try_into()
                    .map_err(|e: toml::de::Error| RulesError::new(&place, e.message()))?;
                overrides.push((place, spec));
            }
            for value in file.silences {
                let place = format!("silence {}", silences.len() + 1);
                let spec: SilenceSpec = value
                    .try_into()
                    .map_err(|e: toml::de::Error| RulesError::new(&place, e.message()))?;
                silences.push((place, spec));
            }
            for value in file.intervals {
                let place = format!("interval {}", intervals.len() + 1);
                let spec: IntervalSpec = value
                    .try_into()
                    .map_err(|e: toml::de::Error| RulesError::new(&place, e.message()))?;
                intervals.push((place, spec));
            }
        }

        let mut rules = Vec::new();
        for (name, spec) in &specs {
            let place = format!("rule {name:?}");
            let metric = spec
                .metric
                .ok_or_else(|| RulesError::new(&place, "missing `metric`"))?;
            let mut rule = Rule {
                name: name.clone(),
                metric,
                warning: None,
                critical: None,
                for_: Duration::ZERO,
                clear_for: Duration::ZERO,
                average: Duration::ZERO,
                repeat: None,
                enabled: true,
            };
            spec.apply(&mut rule);
            rule.check().map_err(|p| RulesError::new(&place, p))?;
            rules.push(rule);
        }

        let overrides = overrides
            .into_iter()
            .map(|(place, o)| {
                let base = rules
                    .iter()
                    .find(|r| r.name == o.rule)
                    .ok_or_else(|| RulesError::new(&place, format!("unknown rule {:?}", o.rule)))?;
                let spec = RuleSpec::from(&o);
                let mut changed = base.clone();
                spec.apply(&mut changed);
                changed
                    .check()
                    .map_err(|p| RulesError::new(&place, format!("rule {:?}: {p}", o.rule)))?;
                if o.items.is_some() && base.metric.item_kind().is_none() {
                    return Err(RulesError::new(
                        &place,
                        format!("rule {:?} has no items to match `items` against", o.rule),
                    ));
                }
                Ok(Override {
                    hosts: glob(&o.hosts, &place)?,
                    items: o.items.as_deref().map(|p| glob(p, &place)).transpose()?,
                    rule: o.rule,
                    spec,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let silences = silences
            .into_iter()
            .map(|(place, s)| {
                if s.hosts.is_none() && s.rule.is_none() {
                    return Err(RulesError::new(&place, "give `hosts`, `rule` or both"));
                }
                if let Some(rule) = &s.rule {
                    if !rules.iter().any(|r| &r.name == rule) {
                        return Err(RulesError::new(&place, format!("unknown rule {rule:?}")));
                    }
                }
                Ok(Silence {
                    hosts: s.hosts.as_deref().map(|p| glob(p, &place)).transpose()?,
                    rule: s.rule,
                    until: s.until,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let intervals = intervals
            .into_iter()
            .map(|(place, i)| {
                if i.hosts.is_none() && i.labels.is_empty() {
                    return Err(RulesError::new(&place, "give `hosts`, `labels` or both"));
                }
                let every = i.every.ok_or_else(|| {
                    RulesError::new(&place, "missing `every` (e.g. \"30s\"; \"0s\": on demand)")
                })?;
                Ok(ExpectedInterval {
                    hosts: i.hosts.as_deref().map(|p| glob(p, &place)).transpose()?,
                    labels: i
                        .labels
                        .iter()
                        .map(|(name, p)| Ok((name.clone(), glob(p, &place)?)))
                        .collect::<Result<_, RulesError>>()?,
                    every,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        Ok(RuleSet {
            rules,
            overrides,
            silences,
            intervals,
            no_data_after: crate::alerts::engine::NO_DATA_AFTER,
        })
    }

    /// Every rule before host overrides, in name order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// One rule by name, before host overrides.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The rule as it applies to `host` (and `item`), overrides applied in file order.
    pub fn effective(&self, rule: &Rule, host: &str, item: Option<&str>) -> Rule {
        let mut out = rule.clone();
        for o in &self.overrides {
            let item_matches = match (&o.items, item) {
                (None, _) => true,
                (Some(g), Some(i)) => g.is_match(i),
                (Some(_), None) => false,
            };
            if o.rule == rule.name && item_matches && o.hosts.is_match(host) {
                o.spec.apply(&mut out);
            }
        }
        out
    }

    /// Whether any override touches `rule` (so the engine can skip cloning when none does).
    pub fn has_overrides(&self, rule: &str) -> bool {
        self.overrides.iter().any(|o| o.rule == rule)
    }

    /// The interval the rules file expects of `host` (the last matching entry wins); zero
    /// means on demand. `None` when no entry matches.
    pub fn expected_interval(
        &self,
        host: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<Duration> {
        self.intervals
            .iter()
            .rev()
            .find(|i| i.matches(host, labels))
            .map(|i| i.every)
    }

    /// How long a down host's other alerts are held before they resolve as "no data".
    pub fn no_data_after(&self) -> Duration {
        self.no_data_after
    }

    /// The same rules with another no-data time (`ALERT_NO_DATA_AFTER`).
    pub fn with_no_data_after(mut self, after: Duration) -> Self {
        self.no_data_after = after;
        self
    }

    /// Whether a silence mutes `rule` on `host` at `now`.
    pub fn silenced(&self, host: &str, rule: &str, now: DateTime<Utc>) -> bool {
        self.silences.iter().any(|s| s.mutes(host, rule, now))
    }
}

fn merge(into: &mut RuleSpec, from: &RuleSpec) {
    if from.warning.is_some() {
        into.warning = from.warning;
    }
    if from.critical.is_some() {
        into.critical = from.critical;
    }
    if from.for_.is_some() {
        into.for_ = from.for_;
    }
    if from.clear_for.is_some() {
        into.clear_for = from.clear_for;
    }
    if from.average.is_some() {
        into.average = from.average;
    }
    if from.repeat.is_some() {
        into.repeat = from.repeat;
    }
    if from.enabled.is_some() {
        into.enabled = from.enabled;
    }
}
