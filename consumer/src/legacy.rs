//! Readings from the original Python publisher (psutil + pika), turned into schema v1 so a
//! fleet can move over one host at a time.
//!
//! Its messages look like `{"timestamp": …, "cpu_percent": 12.5, "memory": {"total", "available",
//! "percent"}, "disk": {"total", "used", "free"}, "platform", "platform_release", "processor"}`
//! and carry no host name of their own: the name comes from the message (a `hostname` or `host`
//! field, an AMQP `hostname`/`host` header, or its `app_id`), else "legacy".

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use shared::reading::{
    percent_of, round_percent, Cpu, Disk, LoadAverage, Memory, OsInfo, Reading, SCHEMA_VERSION,
};

/// The host name used when a legacy message names none.
pub const DEFAULT_HOST: &str = "legacy";

#[derive(Deserialize)]
struct LegacyMessage {
    timestamp: Option<serde_json::Value>,
    cpu_percent: f32,
    memory: LegacyMemory,
    disk: Option<LegacyDisk>,
    platform: Option<String>,
    platform_release: Option<String>,
    processor: Option<String>,
    hostname: Option<String>,
    host: Option<String>,
}

#[derive(Deserialize)]
struct LegacyMemory {
    total: u64,
    available: u64,
    percent: Option<f32>,
}

#[derive(Deserialize)]
struct LegacyDisk {
    total: u64,
    used: u64,
    free: u64,
}

/// Converts a legacy message, or `None` if the body is not one.
pub fn to_reading(body: &[u8], host_hint: Option<&str>) -> Option<Reading> {
    let legacy: LegacyMessage = serde_json::from_slice(body).ok()?;
    let host = legacy
        .hostname
        .or(legacy.host)
        .or_else(|| host_hint.map(str::to_owned))
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_owned());
    let total = legacy.memory.total;
    let available = legacy.memory.available.min(total);
    let used = total - available;
    let disks = legacy
        .disk
        .map(|d| Disk {
            name: String::new(),
            mount_point: "/".into(),
            file_system: String::new(),
            total_bytes: d.total,
            available_bytes: d.free.min(d.total),
            used_bytes: d.used.min(d.total),
            usage_percent: percent_of(d.used.min(d.total), d.total),
        })
        .into_iter()
        .collect();
    Some(Reading {
        schema_version: SCHEMA_VERSION,
        host,
        seq: 0,
        collected_at: legacy
            .timestamp
            .as_ref()
            .and_then(timestamp)
            .unwrap_or_else(Utc::now),
        uptime_secs: 0,
        os: OsInfo {
            name: legacy.platform.unwrap_or_default(),
            version: String::new(),
            kernel: legacy.platform_release.unwrap_or_default(),
        },
        cpu: Cpu {
            usage_percent: round_percent(legacy.cpu_percent),
            per_core_percent: Vec::new(),
            core_count: 0,
            brand: legacy.processor.unwrap_or_default(),
            frequency_mhz: 0,
            load_average: LoadAverage {
                one: 0.0,
                five: 0.0,
                fifteen: 0.0,
            },
        },
        memory: Memory {
            total_bytes: total,
            used_bytes: used,
            available_bytes: available,
            usage_percent: legacy
                .memory
                .percent
                .map(round_percent)
                .unwrap_or_else(|| percent_of(used, total)),
            swap_total_bytes: 0,
            swap_used_bytes: 0,
        },
        disks,
        networks: Vec::new(),
        temperatures: Vec::new(),
    })
}

/// Python sent `time.time()` (seconds) or `datetime.isoformat()` (often without a zone,
/// read here as UTC).
fn timestamp(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    match value {
        serde_json::Value::Number(n) => {
            let secs = n.as_f64()?;
            Utc.timestamp_millis_opt((secs * 1000.0) as i64).single()
        }
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                    .ok()
                    .map(|t| t.and_utc())
            }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = r#"{"timestamp": "2026-11-23T12:00:00.500000", "cpu_percent": 37.5,
        "memory": {"total": 8000, "available": 6000, "percent": 25.0},
        "disk": {"total": 1000, "used": 400, "free": 600},
        "platform": "Linux", "platform_release": "5.15.0", "processor": "x86_64"}"#;

    #[test]
    fn the_original_message_becomes_a_valid_v1_reading() {
        let reading = to_reading(ORIGINAL.as_bytes(), None).expect("converted");
        reading.validate().expect("valid v1");
        assert_eq!(reading.host, "legacy");
        assert_eq!(reading.cpu.usage_percent, 37.5);
        assert_eq!(reading.memory.used_bytes, 2000);
        assert_eq!(reading.memory.usage_percent, 25.0);
        assert_eq!(reading.disks[0].usage_percent, 40.0);
        assert_eq!(reading.os.name, "Linux");
        assert_eq!(reading.os.kernel, "5.15.0");
        assert_eq!(reading.cpu.brand, "x86_64");
        assert_eq!(
            reading
                .collected_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2026-11-23T12:00:00.500Z"
        );
    }

    #[test]
    fn the_host_name_comes_from_the_message_when_it_has_one() {
        assert_eq!(
            to_reading(ORIGINAL.as_bytes(), Some("db-2"))
                .expect("ok")
                .host,
            "db-2"
        );
        let named = ORIGINAL.replacen('{', r#"{"hostname": "web-9", "#, 1);
        assert_eq!(
            to_reading(named.as_bytes(), Some("db-2")).expect("ok").host,
            "web-9"
        );
    }

    #[test]
    fn epoch_timestamps_are_read_too() {
        let body = ORIGINAL.replace(r#""2026-11-23T12:00:00.500000""#, "1795435200.25");
        let reading = to_reading(body.as_bytes(), None).expect("converted");
        assert_eq!(reading.collected_at.timestamp_millis(), 1_795_435_200_250);
    }

    #[test]
    fn other_json_is_not_mistaken_for_a_legacy_message() {
        assert!(to_reading(br#"{"cpu_percent": "high"}"#, None).is_none());
        assert!(to_reading(b"[1]", None).is_none());
    }
}
