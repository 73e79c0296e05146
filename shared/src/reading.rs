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
    /// Whole block devices' activity; absent when the sender does not measure it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_devices: Option<Vec<BlockDevice>>,
    /// Present on the readings where the process list was refreshed (every
    /// `PROCESS_INTERVAL_SECS`); a reader keeps the last one it saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Processes>,
    /// Pressure stall information (`/proc/pressure`); absent where the kernel has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Pressure>,
    /// The containers of the host's container engine (Docker, or Podman's compatible API);
    /// absent when the publisher reaches no engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<Container>>,
    /// Set by the consumer on readings converted from the original Python publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<LegacyOrigin>,
    /// The host's labels (name → value), e.g. `role = "db"`; absent when it has none. Alert
    /// rules files can match them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
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
    /// Where the CPU time went since the previous sample (`/proc/stat`); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_split: Option<CpuTimeSplit>,
}

/// Shares of all CPUs' time since the previous sample, in percent; they add up to about 100.
///
/// `user_percent` includes `nice`; guest time is already inside user and nice on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuTimeSplit {
    pub user_percent: f32,
    pub system_percent: f32,
    pub iowait_percent: f32,
    pub steal_percent: f32,
    pub irq_percent: f32,
    pub softirq_percent: f32,
    pub idle_percent: f32,
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
    /// Page cache and buffers (`Cached + Buffers` in `/proc/meminfo`): counted in neither
    /// `used_bytes` (much of it can be freed) nor wholly in `available_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_buffers_bytes: Option<u64>,
    /// Bytes read back from swap per second since the previous sample (`pswpin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_in_bytes_per_sec: Option<u64>,
    /// Bytes written out to swap per second since the previous sample (`pswpout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_out_bytes_per_sec: Option<u64>,
}

/// One mounted file system, with its use as `df` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub name: String,
    pub mount_point: String,
    pub file_system: String,
    pub total_bytes: u64,
    /// Free to ordinary users (`df`'s "Avail").
    pub available_bytes: u64,
    /// Taken by files (`df`'s "Used").
    pub used_bytes: u64,
    /// `used ÷ (used + available)`, as `df` computes "Use%".
    pub usage_percent: f32,
    /// Free but kept for root (ext4's reserved blocks): in `total_bytes`, in neither of the
    /// other two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_bytes: Option<u64>,
}

/// One whole block device (`/proc/diskstats`): activity since the previous sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// The kernel's name, such as `sda` or `nvme0n1`.
    pub name: String,
    pub read_bytes_per_sec: u64,
    pub write_bytes_per_sec: u64,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
    /// Share of the time the device had requests in flight (`iostat`'s `%util`).
    pub busy_percent: f32,
}

/// The processes running on the host, counted, and the busiest of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processes {
    pub total_count: u32,
    /// Processes whose main thread is running or ready to run (state `R`), as `ps` shows.
    pub running_count: u32,
    /// The top N by CPU since the previous scan, busiest first.
    pub top_by_cpu: Vec<ProcessInfo>,
    /// The top N by resident memory, largest first.
    pub top_by_memory: Vec<ProcessInfo>,
}

/// One process in a top-N list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The command (`comm`, or the program of `cmdline`), as text: may hold any character.
    pub name: String,
    /// The owner's user name, or the numeric uid when `/etc/passwd` has no name for it.
    pub user: String,
    /// Of one core, as `top` shows it: a process busy on two cores shows 200.
    pub cpu_percent: f32,
    pub resident_bytes: u64,
}

/// One network interface: rates since the previous sample and totals since boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub interface: String,
    pub received_bytes_per_sec: u64,
    pub transmitted_bytes_per_sec: u64,
    pub total_received_bytes: u64,
    pub total_transmitted_bytes: u64,
    /// Receive errors per second since the previous sample (`/proc/net/dev` `errs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_errors_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmit_errors_per_sec: Option<f64>,
    /// Received packets dropped per second (`drop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_drops_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transmit_drops_per_sec: Option<f64>,
}

/// One container, by the name its engine gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    pub image: String,
    /// The engine's word: `running`, `exited`, `restarting`, `paused`, `created`, `dead`.
    pub state: String,
    /// `healthy`, `unhealthy` or `starting`; absent when the container has no health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
    /// Of one core, since the publisher's previous look; absent on the first look and when
    /// the container is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f32>,
    /// Memory in use, page cache that can be dropped left out (as `docker stats` shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    /// The container's memory limit, or the host's memory when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
}

/// Pressure stall information: how much of the time tasks waited for a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pressure {
    /// Waiting for a CPU; absent when `/proc/pressure/cpu` could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Stall>,
    /// Waiting for memory (reclaim, swap-in, refaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Stall>,
    /// Waiting for block I/O.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<Stall>,
}

/// One resource's stall figures, as the kernel's PSI files give them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    /// Share of the last 10 seconds in which at least one task was stalled.
    pub some_avg10_percent: f32,
    /// Time at least one task was stalled since boot.
    pub some_total_micros: u64,
    /// Share of the last 10 seconds in which every non-idle task was stalled at once; absent
    /// for the CPU, whose host-wide "full" line is undefined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_avg10_percent: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_total_micros: Option<u64>,
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
            .chain(self.disks.iter().map(|d| d.usage_percent))
            .chain(self.cpu.time_split.iter().flat_map(|t| {
                [
                    t.user_percent,
                    t.system_percent,
                    t.iowait_percent,
                    t.steal_percent,
                    t.irq_percent,
                    t.softirq_percent,
                    t.idle_percent,
                ]
            }))
            .chain(self.block_devices.iter().flatten().map(|b| b.busy_percent))
            .chain(self.pressure.iter().flat_map(|p| {
                [p.cpu, p.memory, p.io].into_iter().flatten().flat_map(|s| {
                    [Some(s.some_avg10_percent), s.full_avg10_percent]
                        .into_iter()
                        .flatten()
                })
            }));
        for p in percents {
            if !p.is_finite() || !(0.0..=100.0).contains(&p) {
                return invalid("usage_percent", "not between 0 and 100");
            }
        }
        Ok(())
    }
}

/// The AMQP `message_id` of `host`'s reading number `seq`: unique per publisher run. Held to
/// an AMQP short string's 255 bytes (amqprs panics beyond them, lapin fails the publish): a
/// host name near its 253-byte limit loses its end, never the number.
pub fn message_id(host: &str, seq: u64) -> String {
    let suffix = format!(":{seq}");
    let mut end = host.len().min(255 - suffix.len());
    while !host.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &host[..end])
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
                time_split: None,
            },
            memory: Memory {
                total_bytes: 8 << 30,
                used_bytes: 2 << 30,
                available_bytes: 6 << 30,
                usage_percent: 25.0,
                swap_total_bytes: 0,
                swap_used_bytes: 0,
                cached_buffers_bytes: None,
                swap_in_bytes_per_sec: None,
                swap_out_bytes_per_sec: None,
            },
            disks: vec![Disk {
                name: "/dev/vda".into(),
                mount_point: "/".into(),
                file_system: "ext4".into(),
                total_bytes: 100,
                available_bytes: 60,
                used_bytes: 40,
                usage_percent: 40.0,
                reserved_bytes: None,
            }],
            networks: Some(vec![Network {
                interface: "eth0".into(),
                received_bytes_per_sec: 1000,
                transmitted_bytes_per_sec: 500,
                total_received_bytes: 10_000,
                total_transmitted_bytes: 5_000,
                receive_errors_per_sec: None,
                transmit_errors_per_sec: None,
                receive_drops_per_sec: None,
                transmit_drops_per_sec: None,
            }]),
            temperatures: vec![],
            block_devices: None,
            processes: None,
            pressure: None,
            containers: None,
            legacy: None,
            labels: None,
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

    /// A reading with every optional field of the whole-host view filled in.
    fn whole_host() -> Reading {
        let mut reading = sample();
        reading.cpu.time_split = Some(CpuTimeSplit {
            user_percent: 20.5,
            system_percent: 5.25,
            iowait_percent: 3.0,
            steal_percent: 0.5,
            irq_percent: 0.25,
            softirq_percent: 0.5,
            idle_percent: 70.0,
        });
        reading.memory.cached_buffers_bytes = Some(3 << 30);
        reading.memory.swap_in_bytes_per_sec = Some(4096);
        reading.memory.swap_out_bytes_per_sec = Some(0);
        reading.disks[0].reserved_bytes = Some(5);
        if let Some(networks) = reading.networks.as_mut() {
            networks[0].receive_errors_per_sec = Some(0.5);
            networks[0].transmit_errors_per_sec = Some(0.0);
            networks[0].receive_drops_per_sec = Some(2.0);
            networks[0].transmit_drops_per_sec = Some(0.0);
        }
        reading.block_devices = Some(vec![BlockDevice {
            name: "vda".into(),
            read_bytes_per_sec: 4096,
            write_bytes_per_sec: 8192,
            reads_per_sec: 1.0,
            writes_per_sec: 2.5,
            busy_percent: 12.5,
        }]);
        let process = |pid, name: &str| ProcessInfo {
            pid,
            name: name.into(),
            user: "root".into(),
            cpu_percent: 150.0,
            resident_bytes: 1 << 20,
        };
        reading.processes = Some(Processes {
            total_count: 120,
            running_count: 2,
            top_by_cpu: vec![process(1, "init"), process(42, "<b>\"x\"\u{7}</b>")],
            top_by_memory: vec![process(42, "<b>\"x\"\u{7}</b>")],
        });
        let stall = |some, full: Option<f32>| Stall {
            some_avg10_percent: some,
            some_total_micros: 3_681_798_883,
            full_avg10_percent: full,
            full_total_micros: full.map(|_| 7_423_556),
        };
        reading.pressure = Some(Pressure {
            cpu: Some(stall(94.91, None)),
            memory: Some(stall(18.79, Some(5.46))),
            io: None,
        });
        reading.containers = Some(vec![
            Container {
                name: "api".into(),
                image: "shop/api:2".into(),
                state: "running".into(),
                health: Some("unhealthy".into()),
                restart_count: Some(4),
                cpu_percent: Some(97.5),
                memory_used_bytes: Some(200 << 20),
                memory_limit_bytes: Some(256 << 20),
            },
            Container {
                name: "job".into(),
                image: "busybox".into(),
                state: "exited".into(),
                health: None,
                restart_count: Some(0),
                cpu_percent: None,
                memory_used_bytes: None,
                memory_limit_bytes: None,
            },
        ]);
        reading
    }

    #[test]
    fn the_whole_host_view_round_trips_with_units_in_its_names() {
        let reading = whole_host();
        let json = serde_json::to_value(&reading).expect("serializes");
        assert_eq!(json["cpu"]["time_split"]["iowait_percent"], 3.0);
        assert_eq!(json["memory"]["cached_buffers_bytes"], 3u64 << 30);
        assert_eq!(json["memory"]["swap_in_bytes_per_sec"], 4096);
        assert_eq!(json["disks"][0]["reserved_bytes"], 5);
        assert_eq!(json["networks"][0]["receive_drops_per_sec"], 2.0);
        assert_eq!(json["block_devices"][0]["write_bytes_per_sec"], 8192);
        assert_eq!(json["block_devices"][0]["busy_percent"], 12.5);
        assert_eq!(json["processes"]["running_count"], 2);
        assert_eq!(json["pressure"]["memory"]["full_total_micros"], 7_423_556);
        assert_eq!(
            json["pressure"]["cpu"]["some_total_micros"],
            3_681_798_883u64
        );
        assert!(json["pressure"]["cpu"].get("full_avg10_percent").is_none());
        assert!(json["pressure"].get("io").is_none(), "unread: absent");
        assert_eq!(json["containers"][0]["memory_limit_bytes"], 256u64 << 20);
        assert_eq!(json["containers"][0]["health"], "unhealthy");
        assert!(json["containers"][1].get("cpu_percent").is_none());
        assert_eq!(json["processes"]["top_by_cpu"][0]["cpu_percent"], 150.0);
        assert_eq!(
            json["processes"]["top_by_memory"][0]["name"], "<b>\"x\"\u{7}</b>",
            "a hostile name is kept as text"
        );
        let body = serde_json::to_vec(&reading).expect("serializes");
        assert_eq!(Reading::from_json(&body).expect("parses"), reading);
    }

    #[test]
    fn todays_readings_have_none_of_the_new_fields_and_still_parse() {
        let json = serde_json::to_value(sample()).expect("serializes");
        for absent in ["block_devices", "processes", "pressure", "containers"] {
            assert!(
                json.get(absent).is_none(),
                "{absent} not written when unknown"
            );
        }
        assert!(json["cpu"].get("time_split").is_none());
        assert!(json["disks"][0].get("reserved_bytes").is_none());
        assert!(json["networks"][0].get("receive_errors_per_sec").is_none());
        // A reading of today's schema, from the consumer's fixture, is read as before.
        let today = include_bytes!("../../consumer/tests/fixtures/reading.json");
        let reading = Reading::from_json(today).expect("today's reading parses");
        assert_eq!(reading.block_devices, None);
        assert_eq!(reading.memory.cached_buffers_bytes, None);
    }

    #[test]
    fn an_impossible_split_or_busy_share_is_refused() {
        let mut reading = whole_host();
        if let Some(split) = reading.cpu.time_split.as_mut() {
            split.iowait_percent = f32::NAN;
        }
        assert!(reading.validate().is_err());
        let mut reading = whole_host();
        if let Some(devices) = reading.block_devices.as_mut() {
            devices[0].busy_percent = 180.0;
        }
        assert!(reading.validate().is_err());
        let mut reading = whole_host();
        if let Some(memory) = reading.pressure.as_mut().and_then(|p| p.memory.as_mut()) {
            memory.full_avg10_percent = Some(-1.0);
        }
        assert!(reading.validate().is_err(), "a negative stall share");
    }

    #[test]
    fn message_id_is_host_and_seq() {
        let reading = sample();
        assert_eq!(message_id(&reading.host, reading.seq), "web-1:7");
    }

    #[test]
    fn a_message_id_fits_an_amqp_short_string_whatever_the_host_name() {
        // 253 bytes of two-byte characters and a number as long as a u64's.
        let host = "é".repeat(126) + "x";
        let id = message_id(&host, u64::MAX);
        assert!(id.len() <= 255, "{} bytes", id.len());
        assert!(id.ends_with(&format!(":{}", u64::MAX)), "{id}");
        assert!(id.starts_with("éé"), "{id}");
    }

    #[test]
    fn percentages_are_rounded_and_bounded() {
        assert_eq!(percent_of(1, 3), 33.33);
        assert_eq!(percent_of(5, 0), 0.0);
        assert_eq!(round_percent(f32::NAN), 0.0);
        assert_eq!(round_percent(100.0001), 100.0);
    }
}
