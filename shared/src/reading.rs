//! The message schema: one JSON object per reading, version 1.
//!
//! Field names are snake_case with the unit in the name. Readers ignore unknown fields, so a
//! newer publisher can add fields without breaking older consumers.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: u32 = 1;

/// One sample of a host's state, as published to the exchange.
///
/// Figures a sender may not know (the original Python publisher sends no uptime, load, core
/// count or network) are `Option`: absent on the wire means "not known", never 0. Today's
/// publisher always sends them, so older readers keep working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub schema_version: u32,
    pub host: String,
    /// Increases by one for every reading a publisher run publishes; 0 means "not published".
    pub seq: u64,
    #[serde(serialize_with = "rfc3339_millis", deserialize_with = "rfc3339")]
    pub collected_at: DateTime<Utc>,
    /// Seconds between two readings when publishing on a timer; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    pub os: OsInfo,
    pub cpu: Cpu,
    pub memory: Memory,
    pub disks: Vec<Disk>,
    /// Absent when the sender does not measure the network (not the same as no interfaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<Network>>,
    #[serde(default)]
    pub temperatures: Vec<Temperature>,
    /// Set by the consumer on readings converted from the original Python publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyOrigin>,
}

/// Where a reading converted from the original publisher's format got its host name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegacyOrigin {
    /// How the host was named: `hostname field`, `AMQP header`, `app_id` or `fingerprint`.
    pub host_from: String,
}

/// Operating system identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OsInfo {
    pub name: String,
    pub version: String,
    pub kernel: String,
}

/// CPU usage since the previous sample, and the load average.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub usage_percent: f32,
    #[serde(default)]
    pub per_core_percent: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_count: Option<u32>,
    #[serde(default)]
    pub brand: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_mhz: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<LoadAverage>,
}

/// The 1, 5 and 15 minute load averages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Memory and swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub usage_percent: f32,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
}

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub name: String,
    pub mount_point: String,
    pub file_system: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_bytes: u64,
    pub usage_percent: f32,
}

/// One network interface: rates since the previous sample and totals since boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub interface: String,
    pub received_bytes_per_sec: u64,
    pub transmitted_bytes_per_sec: u64,
    pub total_received_bytes: u64,
    pub total_transmitted_bytes: u64,
}

/// One temperature sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Temperature {
    pub label: String,
    pub celsius: f32,
}

/// Why a message is not an acceptable reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadingError {
    #[error("not a JSON reading: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unsupported schema_version {0} (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion(u32),
    #[error("invalid field {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
}

impl ReadingError {
    /// A short, fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ReadingError::Malformed(_) => "malformed",
            ReadingError::UnsupportedVersion(_) => "unsupported_version",
            ReadingError::Invalid { .. } => "invalid_field",
        }
    }
}

/// Longest host name accepted (the DNS limit).
pub const MAX_HOST_LEN: usize = 253;

impl Reading {
    /// Parses and checks a message body.
    pub fn from_json(body: &[u8]) -> Result<Self, ReadingError> {
        let reading: Reading = serde_json::from_slice(body)?;
        reading.validate()?;
        Ok(reading)
    }

    /// Checks what serde cannot: version, host name and that figures are real numbers.
    pub fn validate(&self) -> Result<(), ReadingError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(ReadingError::UnsupportedVersion(self.schema_version));
        }
        let invalid = |field, problem| Err(ReadingError::Invalid { field, problem });
        if self.host.trim().is_empty() {
            return invalid("host", "empty");
        }
        if self.host.len() > MAX_HOST_LEN {
            return invalid("host", "longer than 253 bytes");
        }
        let percents = [self.cpu.usage_percent, self.memory.usage_percent]
            .into_iter()
            .chain(self.cpu.per_core_percent.iter().copied())
            .chain(self.disks.iter().map(|d| d.usage_percent));
        for p in percents {
            if !p.is_finite() || !(0.0..=100.0).contains(&p) {
                return invalid("usage_percent", "not between 0 and 100");
            }
        }
        Ok(())
    }

    /// The AMQP `message_id`: host and sequence number, unique per publisher run.
    pub fn message_id(&self) -> String {
        format!("{}:{}", self.host, self.seq)
    }
}

/// Rounds a percentage to two decimals: more precision is noise and costs bytes on the wire.
pub fn round_percent(value: f32) -> f32 {
    if value.is_finite() {
        (value.clamp(0.0, 100.0) * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// `used / total` as a rounded percentage, 0 when `total` is 0.
pub fn percent_of(used: u64, total: u64) -> f32 {
    if total == 0 {
        0.0
    } else {
        round_percent((used as f64 / total as f64 * 100.0) as f32)
    }
}

fn rfc3339_millis<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Reading {
        Reading {
            schema_version: SCHEMA_VERSION,
            host: "web-1".into(),
            seq: 7,
            collected_at: DateTime::parse_from_rfc3339("2026-11-23T12:00:00.123Z")
                .expect("valid literal")
                .with_timezone(&Utc),
            interval_secs: Some(1),
            uptime_secs: Some(3600),
            os: OsInfo {
                name: "Debian GNU/Linux".into(),
                version: "12".into(),
                kernel: "6.1.0".into(),
            },
            cpu: Cpu {
                usage_percent: 12.5,
                per_core_percent: vec![10.0, 15.0],
                core_count: Some(2),
                brand: "Test CPU".into(),
                frequency_mhz: Some(2400),
                load_average: Some(LoadAverage {
                    one: 0.5,
                    five: 0.25,
                    fifteen: 0.125,
                }),
            },
            memory: Memory {
                total_bytes: 8 << 30,
                used_bytes: 2 << 30,
                available_bytes: 6 << 30,
                usage_percent: 25.0,
                swap_total_bytes: 0,
                swap_used_bytes: 0,
            },
            disks: vec![Disk {
                name: "/dev/vda".into(),
                mount_point: "/".into(),
                file_system: "ext4".into(),
                total_bytes: 100,
                available_bytes: 60,
                used_bytes: 40,
                usage_percent: 40.0,
            }],
            networks: Some(vec![Network {
                interface: "eth0".into(),
                received_bytes_per_sec: 1000,
                transmitted_bytes_per_sec: 500,
                total_received_bytes: 10_000,
                total_transmitted_bytes: 5_000,
            }]),
            temperatures: vec![],
            legacy: None,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let reading = sample();
        let json = serde_json::to_vec(&reading).expect("serializes");
        assert_eq!(Reading::from_json(&json).expect("parses"), reading);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        let json = serde_json::to_value(sample()).expect("serializes");
        assert_eq!(json["collected_at"], "2026-11-23T12:00:00.123Z");
    }

    #[test]
    fn field_names_carry_their_units() {
        let json = serde_json::to_value(sample()).expect("serializes");
        assert_eq!(json["memory"]["total_bytes"], 8u64 << 30);
        assert_eq!(json["cpu"]["load_average"]["five"], 0.25);
        assert_eq!(json["networks"][0]["received_bytes_per_sec"], 1000);
        assert_eq!(json["schema_version"], 1);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut json = serde_json::to_value(sample()).expect("serializes");
        json["gpu"] = serde_json::json!({"usage_percent": 3});
        json["cpu"]["steal_percent"] = serde_json::json!(1.0);
        let body = serde_json::to_vec(&json).expect("serializes");
        assert_eq!(Reading::from_json(&body).expect("parses"), sample());
    }

    #[test]
    fn missing_temperatures_means_none() {
        let mut json = serde_json::to_value(sample()).expect("serializes");
        json.as_object_mut().expect("object").remove("temperatures");
        let body = serde_json::to_vec(&json).expect("serializes");
        assert!(Reading::from_json(&body)
            .expect("parses")
            .temperatures
            .is_empty());
    }

    #[test]
    fn rejects_what_is_not_a_reading() {
        for (body, reason) in [
            (&b"not json"[..], "malformed"),
            (b"[1,2,3]", "malformed"),
            (b"{\"schema_version\":1,\"host\":\"x\"}", "malformed"),
        ] {
            let err = Reading::from_json(body).expect_err("must be rejected");
            assert_eq!(err.reason(), reason, "{err}");
        }
        let mut newer = sample();
        newer.schema_version = 2;
        let body = serde_json::to_vec(&newer).expect("serializes");
        assert_eq!(
            Reading::from_json(&body).expect_err("rejected").reason(),
            "unsupported_version"
        );
        let mut nameless = sample();
        nameless.host = " ".into();
        assert!(nameless.validate().is_err());
        let mut impossible = sample();
        impossible.cpu.usage_percent = 250.0;
        assert!(impossible.validate().is_err());
    }

    #[test]
    fn figures_a_sender_does_not_know_are_absent_not_zero() {
        let mut json = serde_json::to_value(sample()).expect("serializes");
        let object = json.as_object_mut().expect("object");
        object.remove("uptime_secs");
        object.remove("networks");
        object.remove("interval_secs");
        let cpu = json["cpu"].as_object_mut().expect("cpu");
        cpu.remove("load_average");
        cpu.remove("core_count");
        cpu.remove("frequency_mhz");
        let body = serde_json::to_vec(&json).expect("serializes");
        let reading = Reading::from_json(&body).expect("parses");
        assert_eq!(reading.uptime_secs, None);
        assert_eq!(reading.networks, None);
        assert_eq!(reading.cpu.load_average, None);
        assert_eq!(reading.cpu.core_count, None);
        // Written back without them: no made-up zeros on the wire.
        let written = serde_json::to_value(&reading).expect("serializes");
        assert!(written.get("uptime_secs").is_none(), "{written}");
        assert!(written["cpu"].get("load_average").is_none(), "{written}");
    }

    #[test]
    fn message_id_is_host_and_seq() {
        assert_eq!(sample().message_id(), "web-1:7");
    }

    #[test]
    fn percentages_are_rounded_and_bounded() {
        assert_eq!(percent_of(1, 3), 33.33);
        assert_eq!(percent_of(5, 0), 0.0);
        assert_eq!(round_percent(f32::NAN), 0.0);
        assert_eq!(round_percent(100.0001), 100.0);
    }
}
