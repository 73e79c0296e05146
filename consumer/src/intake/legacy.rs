//! Readings from the original Python publisher (psutil + pika), turned into schema v1 so a
//! fleet can move over one host at a time.
//!
//! Its messages look like `{"timestamp": …, "cpu_percent": 12.5, "memory": {"total", "available",
//! "percent"}, "disk": {"total", "used", "free"}, "platform", "platform_release", "processor"}`
//! and carry no host name of their own. The name comes, in this order, from a `hostname` or
//! `host` field, an AMQP `hostname`/`host` header, the message's `app_id`, and otherwise from a
//! fingerprint of what the message does carry (platform, release, processor, memory and disk
//! size), so two machines running the original show as two cards. Two identical machines
//! (same OS, same memory and disk size) cannot be told apart and share one card.
//! Figures the original does not send (uptime, load, core count, network) stay absent.

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use serde::Deserialize;
use shared::reading::{
    percent_of, round_percent, Cpu, Disk, LegacyOrigin, Memory, OsInfo, Reading, SCHEMA_VERSION,
};

/// What the AMQP properties of a delivery say about its sender.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SenderHints {
    /// A `hostname` or `host` header.
    pub header_host: Option<String>,
    /// The message's `app_id`.
    pub app_id: Option<String>,
}

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

/// A converted message: the reading, and whether its time had to be taken from arrival.
#[derive(Debug)]
pub struct Converted {
    pub reading: Reading,
    /// The message's timestamp had no zone (Python's `isoformat()` of local time) or none at
    /// all: the reading is placed at `now`.
    pub placed_at_arrival: bool,
}

/// Converts a legacy message, or `None` if the body is not one. `now` stands in for a
/// timestamp that cannot be placed.
pub fn to_reading(body: &[u8], hints: &SenderHints, now: DateTime<Utc>) -> Option<Converted> {
    let legacy: LegacyMessage = serde_json::from_slice(body).ok()?;
    let named = |name: &Option<String>| name.clone().filter(|h| !h.trim().is_empty());
    let (host, host_from) = if let Some(host) = named(&legacy.hostname).or(named(&legacy.host)) {
        (host, "hostname field")
    } else if let Some(host) = named(&hints.header_host) {
        (host, "AMQP header")
    } else if let Some(host) = named(&hints.app_id) {
        (host, "app_id")
    } else {
        (fingerprint_name(&legacy), "fingerprint")
    };
    let total = legacy.memory.total;
    let available = legacy.memory.available.min(total);
    let used = total - available;
    let disks = legacy
        .disk
        .as_ref()
        .map(|d| Disk {
            name: String::new(),
            mount_point: "/".into(),
            file_system: String::new(),
            total_bytes: d.total,
            available_bytes: d.free.min(d.total),
            used_bytes: d.used.min(d.total),
            usage_percent: percent_of(d.used.min(d.total), d.total),
            reserved_bytes: None,
        })
        .into_iter()
        .collect();
    let exact = legacy.timestamp.as_ref().and_then(timestamp);
    let reading = Reading {
        schema_version: SCHEMA_VERSION,
        host,
        seq: 0,
        collected_at: exact.unwrap_or_else(|| now.trunc_subsecs(3)),
        interval_secs: None,
        uptime_secs: None,
        os: OsInfo {
            name: legacy.platform.clone().unwrap_or_default(),
            version: String::new(),
            kernel: legacy.platform_release.clone().unwrap_or_default(),
        },
        cpu: Cpu {
            usage_percent: round_percent(legacy.cpu_percent),
            per_core_percent: Vec::new(),
            core_count: None,
            brand: legacy.processor.clone().unwrap_or_default(),
            frequency_mhz: None,
            load_average: None,
            time_split: None,
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
            cached_buffers_bytes: None,
            swap_in_bytes_per_sec: None,
            swap_out_bytes_per_sec: None,
        },
        disks,
        networks: None,
        temperatures: Vec::new(),
        block_devices: None,
        processes: None,
        legacy: Some(LegacyOrigin {
            host_from: host_from.to_owned(),
        }),
        pressure: None,
        containers: None,
        labels: None,
    };
    Some(Converted {
        reading,
        placed_at_arrival: exact.is_none(),
    })
}

/// A stable name from what the message carries: `legacy-` and six hex digits of an FNV-1a
/// hash (stable across builds and machines, unlike std's hasher).
fn fingerprint_name(legacy: &LegacyMessage) -> String {
    let disk_total = legacy.disk.as_ref().map_or(0, |d| d.total);
    let parts = [
        legacy.platform.as_deref().unwrap_or(""),
        legacy.platform_release.as_deref().unwrap_or(""),
        legacy.processor.as_deref().unwrap_or(""),
        &legacy.memory.total.to_string(),
        &disk_total.to_string(),
    ];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("legacy-{:06x}", hash & 0xff_ffff)
}

/// Python sent `time.time()` (seconds) or `datetime.isoformat()`. Only a time that says its
/// zone can be placed; local time without a zone (isoformat's default) cannot, and gives `None`.
fn timestamp(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    match value {
        serde_json::Value::Number(n) => {
            let secs = n.as_f64()?;
            Utc.timestamp_millis_opt((secs * 1000.0) as i64).single()
        }
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok(),
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

    fn arrival() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 17, 0, 3)
            .single()
            .expect("valid")
    }

    fn convert(body: &str, hints: &SenderHints) -> Converted {
        to_reading(body.as_bytes(), hints, arrival()).expect("converted")
    }

    #[test]
    fn the_original_message_becomes_a_valid_v1_reading() {
        let reading = convert(ORIGINAL, &SenderHints::default()).reading;
        reading.validate().expect("valid v1");
        assert!(reading.host.starts_with("legacy-"), "{}", reading.host);
        assert_eq!(reading.cpu.usage_percent, 37.5);
        assert_eq!(reading.memory.used_bytes, 2000);
        assert_eq!(reading.memory.usage_percent, 25.0);
        assert_eq!(reading.disks[0].usage_percent, 40.0);
        assert_eq!(reading.os.name, "Linux");
        assert_eq!(reading.os.kernel, "5.15.0");
        assert_eq!(reading.cpu.brand, "x86_64");
        let origin = reading.legacy.expect("marked as converted");
        assert_eq!(origin.host_from, "fingerprint");
    }

    #[test]
    fn what_the_original_does_not_send_stays_absent() {
        let reading = convert(ORIGINAL, &SenderHints::default()).reading;
        assert_eq!(reading.uptime_secs, None);
        assert_eq!(reading.cpu.load_average, None);
        assert_eq!(reading.cpu.core_count, None);
        assert_eq!(reading.networks, None);
        let json = serde_json::to_value(&reading).expect("serializes");
        assert!(json.get("networks").is_none(), "{json}");
        assert!(json["cpu"].get("load_average").is_none(), "{json}");
    }

    #[test]
    fn a_time_without_a_zone_is_placed_at_arrival() {
        let converted = convert(ORIGINAL, &SenderHints::default());
        assert!(converted.placed_at_arrival);
        assert_eq!(converted.reading.collected_at, arrival());
        let zoned = ORIGINAL.replace("12:00:00.500000", "12:00:00.500000-05:00");
        let converted = convert(&zoned, &SenderHints::default());
        assert!(!converted.placed_at_arrival);
        assert_eq!(
            converted
                .reading
                .collected_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2026-11-23T17:00:00.500Z"
        );
    }

    #[test]
    fn the_host_name_comes_from_the_message_when_it_has_one() {
        let header = SenderHints {
            header_host: Some("db-2".into()),
            app_id: Some("app".into()),
        };
        let reading = convert(ORIGINAL, &header).reading;
        assert_eq!(reading.host, "db-2");
        assert_eq!(reading.legacy.expect("legacy").host_from, "AMQP header");
        let named = ORIGINAL.replacen('{', r#"{"hostname": "web-9", "#, 1);
        let reading = convert(&named, &header).reading;
        assert_eq!(reading.host, "web-9");
        assert_eq!(reading.legacy.expect("legacy").host_from, "hostname field");
        let app = SenderHints {
            header_host: None,
            app_id: Some("db-3".into()),
        };
        assert_eq!(convert(ORIGINAL, &app).reading.host, "db-3");
    }

    #[test]
    fn two_different_machines_get_two_names_and_one_machine_keeps_its_own() {
        let first = convert(ORIGINAL, &SenderHints::default()).reading.host;
        let again = ORIGINAL.replace("37.5", "80.0").replace("6000", "1000");
        assert_eq!(
            convert(&again, &SenderHints::default()).reading.host,
            first,
            "changing figures keep the name"
        );
        let other = ORIGINAL.replace("\"total\": 8000", "\"total\": 16000");
        assert_ne!(convert(&other, &SenderHints::default()).reading.host, first);
    }

    #[test]
    fn epoch_timestamps_are_read_too() {
        let body = ORIGINAL.replace(r#""2026-11-23T12:00:00.500000""#, "1795435200.25");
        let converted = convert(&body, &SenderHints::default());
        assert!(!converted.placed_at_arrival);
        assert_eq!(
            converted.reading.collected_at.timestamp_millis(),
            1_795_435_200_250
        );
    }

    #[test]
    fn other_json_is_not_mistaken_for_a_legacy_message() {
        let hints = SenderHints::default();
        assert!(to_reading(br#"{"cpu_percent": "high"}"#, &hints, arrival()).is_none());
        assert!(to_reading(b"[1]", &hints, arrival()).is_none());
    }
}
