//! What a notification says: one [`Notice`] per host per evaluation step (a host going down is
//! one message, not twelve), and the text every channel but the JSON webhook shows.
//!
//! The generic webhook's body is a `Notice` serialised as it is, so its fields are a public
//! format: add fields freely, but renaming or removing one means a new [`NOTICE_VERSION`].

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The version of the webhook's JSON body.
pub const NOTICE_VERSION: u32 = 1;

/// Everything one evaluation step has to say about one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The body's format version, [`NOTICE_VERSION`].
    pub version: u32,
    /// The host the events are about.
    pub host: String,
    /// When the evaluation step that produced the events ran.
    pub at: DateTime<Utc>,
    /// What changed, in the engine's order.
    pub events: Vec<NoticeEvent>,
}

/// What happened to one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The alert started.
    Firing,
    /// The alert ended.
    Resolved,
    /// The alert is still firing, repeated at the rule's interval.
    Reminder,
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Warning,
    /// Act now.
    Critical,
}

/// What an item of a host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// A disk, by mount point.
    Mount,
    /// A temperature sensor, by label.
    Sensor,
    /// A network interface, by name.
    Interface,
}

/// The part of a host an alert is about, for rules with one alert per item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Item {
    /// Mount, sensor or interface.
    pub kind: ItemKind,
    /// The mount point, sensor label or interface name.
    pub name: String,
}

/// One alert's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeEvent {
    /// Firing, resolved or reminder.
    pub kind: EventKind,
    /// The rule's name, e.g. `disk_space`.
    pub rule: String,
    /// The mount, sensor or interface; `null` for a host-wide rule.
    pub item: Option<Item>,
    /// Warning or critical.
    pub severity: Severity,
    /// The value the rule last saw.
    pub value: f64,
    /// The worst value seen while the alert lasted.
    pub peak: f64,
    /// The level the value crossed.
    pub threshold: f64,
    /// When the alert started firing.
    pub started_at: DateTime<Utc>,
    /// When it resolved; `null` unless `kind` is `resolved`.
    pub ended_at: Option<DateTime<Utc>>,
    /// One line for people, e.g. "Disk /var is 98.4 % full".
    pub summary: String,
    /// Why a `resolved` event ended the alert when not by its value: `no_data` (the host has
    /// been silent too long to say). `null` otherwise.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Notice {
    /// A notice at the current format version.
    pub fn new(host: impl Into<String>, at: DateTime<Utc>, events: Vec<NoticeEvent>) -> Self {
        Self {
            version: NOTICE_VERSION,
            host: host.into(),
            at,
            events,
        }
    }

    /// The event that sets the tone (title, priority): a firing critical before a firing
    /// warning, then reminders, then resolutions.
    pub fn most_urgent(&self) -> Option<&NoticeEvent> {
        self.events.iter().min_by_key(|e| e.urgency())
    }

    /// What the whole notice amounts to: the worst severity still firing, or resolved.
    pub fn status(&self) -> NoticeStatus {
        match self.most_urgent() {
            Some(e) if e.kind == EventKind::Firing => NoticeStatus::Firing(e.severity),
            Some(e) if e.kind == EventKind::Reminder => NoticeStatus::Reminder(e.severity),
            _ => NoticeStatus::Resolved,
        }
    }

    /// One line: `CRITICAL web-1: disk_space /var and 2 more`.
    pub fn title(&self) -> String {
        let mut title = format!("{} {}", self.status().label(), self.host);
        if let Some(first) = self.most_urgent() {
            let _ = write!(title, ": {}", first.subject());
            if self.events.len() > 1 {
                let _ = write!(title, " and {} more", self.events.len() - 1);
            }
        }
        title
    }

    /// One line per event, in the engine's order.
    pub fn text(&self) -> String {
        let lines: Vec<String> = self.events.iter().map(NoticeEvent::line).collect();
        lines.join("\n")
    }
}

/// What a notice amounts to as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeStatus {
    /// Something started, at this severity at worst.
    Firing(Severity),
    /// Nothing new, but something still fires at this severity.
    Reminder(Severity),
    /// Everything it mentions has ended.
    Resolved,
}

impl NoticeStatus {
    /// `CRITICAL`, `WARNING`, `REMINDER CRITICAL`, `RESOLVED`.
    pub fn label(self) -> &'static str {
        match self {
            NoticeStatus::Firing(Severity::Critical) => "CRITICAL",
            NoticeStatus::Firing(Severity::Warning) => "WARNING",
            NoticeStatus::Reminder(Severity::Critical) => "REMINDER CRITICAL",
            NoticeStatus::Reminder(Severity::Warning) => "REMINDER WARNING",
            NoticeStatus::Resolved => "RESOLVED",
        }
    }
}

impl NoticeEvent {
    /// Lower is more urgent.
    fn urgency(&self) -> u8 {
        let severity = match self.severity {
            Severity::Critical => 0,
            Severity::Warning => 1,
        };
        match self.kind {
            EventKind::Firing => severity,
            EventKind::Reminder => 2 + severity,
            EventKind::Resolved => 4 + severity,
        }
    }

    /// `disk_space /var`, or the rule alone for a host-wide one.
    pub fn subject(&self) -> String {
        match &self.item {
            Some(item) => format!("{} {}", self.rule, item.name),
            None => self.rule.clone(),
        }
    }

    /// `FIRING critical disk_space /var: Disk /var is 98.4 % full (value 98.4, threshold 98,
    /// peak 98.9, since 2026-11-23T12:00:00Z)`.
    pub fn line(&self) -> String {
        let kind = match self.kind {
            EventKind::Firing => "FIRING",
            EventKind::Resolved => "RESOLVED",
            EventKind::Reminder => "STILL FIRING",
        };
        let severity = match self.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        };
        let mut line = format!(
            "{kind} {severity} {}: {} (value {}, threshold {}, peak {}, ",
            self.subject(),
            self.summary,
            number(self.value),
            number(self.threshold),
            number(self.peak),
        );
        match self.ended_at {
            Some(end) => {
                let _ = write!(line, "from {} to {})", time(self.started_at), time(end));
            }
            None => {
                let _ = write!(line, "since {})", time(self.started_at));
            }
        }
        line
    }
}

/// A figure without noise: `98`, `98.4`, `0.25`.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// RFC 3339 to the second: a person reads it, a program reads the JSON.
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("test time")
    }

    fn event(kind: EventKind, severity: Severity, rule: &str) -> NoticeEvent {
        NoticeEvent {
            kind,
            rule: rule.to_owned(),
            item: None,
            severity,
            value: 97.25,
            peak: 99.0,
            threshold: 95.0,
            started_at: at("2026-11-23T12:00:00Z"),
            ended_at: (kind == EventKind::Resolved).then(|| at("2026-11-23T12:07:30Z")),
            summary: format!("{rule} is high"),
            reason: None,
        }
    }

    #[test]
    fn title_names_the_worst_event_and_how_many_more() {
        let notice = Notice::new(
            "web-1",
            at("2026-11-23T12:08:00Z"),
            vec![
                event(EventKind::Resolved, Severity::Critical, "cpu"),
                event(EventKind::Firing, Severity::Warning, "memory"),
                event(EventKind::Firing, Severity::Critical, "host_down"),
            ],
        );
        assert_eq!(notice.title(), "CRITICAL web-1: host_down and 2 more");
        assert_eq!(notice.status(), NoticeStatus::Firing(Severity::Critical));
    }

    #[test]
    fn only_resolutions_read_as_resolved() {
        let mut resolved = event(EventKind::Resolved, Severity::Warning, "disk_space");
        resolved.item = Some(Item {
            kind: ItemKind::Mount,
            name: "/var".to_owned(),
        });
        let notice = Notice::new("db", at("2026-11-23T12:08:00Z"), vec![resolved]);
        assert_eq!(notice.title(), "RESOLVED db: disk_space /var");
        assert_eq!(
            notice.text(),
            "RESOLVED warning disk_space /var: disk_space is high (value 97.25, threshold 95, \
             peak 99, from 2026-11-23T12:00:00Z to 2026-11-23T12:07:30Z)"
        );
    }

    #[test]
    fn reminders_say_still_firing() {
        let notice = Notice::new(
            "db",
            at("2026-11-23T13:00:00Z"),
            vec![event(EventKind::Reminder, Severity::Critical, "swap")],
        );
        assert_eq!(notice.title(), "REMINDER CRITICAL db: swap");
        assert!(notice.text().starts_with("STILL FIRING critical swap: "));
        assert!(notice.text().ends_with("since 2026-11-23T12:00:00Z)"));
    }

    #[test]
    fn json_uses_snake_case_names_and_round_trips() {
        let mut firing = event(EventKind::Firing, Severity::Critical, "temperature");
        firing.item = Some(Item {
            kind: ItemKind::Sensor,
            name: "Package id 0".to_owned(),
        });
        let notice = Notice::new("web-1", at("2026-11-23T12:00:05.250Z"), vec![firing]);
        let json = serde_json::to_value(&notice).expect("serialises");
        assert_eq!(json["version"], 1);
        assert_eq!(json["at"], "2026-11-23T12:00:05.250Z");
        assert_eq!(json["events"][0]["kind"], "firing");
        assert_eq!(json["events"][0]["severity"], "critical");
        assert_eq!(json["events"][0]["item"]["kind"], "sensor");
        assert!(json["events"][0]["ended_at"].is_null());
        let back: Notice = serde_json::from_value(json).expect("parses");
        assert_eq!(back, notice);
    }
}
