//! Synthetic streams replayed through the engine, asserting the exact event times.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::reading::{
    Cpu, Disk, LoadAverage, Memory, Network, OsInfo, Reading, Temperature, SCHEMA_VERSION,
};

use super::*;

const EPOCH: i64 = 1_800_000_000;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(EPOCH + secs, 0).expect("a valid test time")
}

fn since(at: DateTime<Utc>) -> i64 {
    at.timestamp() - EPOCH
}

/// A calm host: nothing near any default level, no swap, one root disk, no sensors.
fn calm(host: &str) -> Reading {
    Reading {
        schema_version: SCHEMA_VERSION,
        host: host.into(),
        seq: 1,
        collected_at: t(0),
        interval_secs: None,
        uptime_secs: Some(100),
        os: OsInfo {
            name: "Debian".into(),
            version: "12".into(),
            kernel: "6.1".into(),
        },
        cpu: Cpu {
            usage_percent: 10.0,
            per_core_percent: vec![10.0; 4],
            core_count: Some(4),
            brand: "test".into(),
            frequency_mhz: Some(2000),
            load_average: Some(LoadAverage {
                one: 0.5,
                five: 0.5,
                fifteen: 0.5,
            }),
            time_split: None,
        },
        memory: Memory {
            total_bytes: 1000,
            used_bytes: 100,
            available_bytes: 900,
            usage_percent: 10.0,
            swap_total_bytes: 0,
            swap_used_bytes: 0,
            cached_buffers_bytes: None,
            swap_in_bytes_per_sec: None,
            swap_out_bytes_per_sec: None,
        },
        disks: vec![disk("/", 10.0, 900)],
        networks: Some(vec![Network {
            interface: "eth0".into(),
            received_bytes_per_sec: 100,
            transmitted_bytes_per_sec: 100,
            total_received_bytes: 1000,
            total_transmitted_bytes: 1000,
            receive_errors_per_sec: None,
            transmit_errors_per_sec: None,
            receive_drops_per_sec: None,
            transmit_drops_per_sec: None,
        }]),
        temperatures: Vec::new(),
        legacy: None,
        block_devices: None,
        processes: None,
        pressure: None,
        containers: None,
        labels: None,
    }
}

fn disk(mount: &str, usage_percent: f32, available_bytes: u64) -> Disk {
    Disk {
        name: "sda".into(),
        mount_point: mount.into(),
        file_system: "ext4".into(),
        total_bytes: 1_000_000_000_000,
        available_bytes,
        used_bytes: 0,
        usage_percent,
        reserved_bytes: None,
    }
}

fn rules(toml: &str) -> RuleSet {
    match RuleSet::from_toml(toml) {
        Ok(r) => r,
        Err(e) => panic!("test rules refused: {e}"),
    }
}

/// (seconds, kind, host, rule, item, severity, previous severity)
type Brief = (
    i64,
    EventKind,
    String,
    String,
    Option<String>,
    Severity,
    Option<Severity>,
);

fn brief(events: &[AlertEvent]) -> Vec<Brief> {
    events
        .iter()
        .map(|e| {
            (
                since(e.at),
                e.kind,
                e.host.clone(),
                e.rule.clone(),
                e.item.clone(),
                e.severity,
                e.previous_severity,
            )
        })
        .collect()
}

fn ev(
    at: i64,
    kind: EventKind,
    host: &str,
    rule: &str,
    item: Option<&str>,
    sev: Severity,
    prev: Option<Severity>,
) -> Brief {
    (
        at,
        kind,
        host.into(),
        rule.into(),
        item.map(String::from),
        sev,
        prev,
    )
}

use EventKind::{Fired, Reminder, Resolved};
use Severity::{Critical, Warning};

/// Feeds `web-1` one reading per (second, cpu %) and returns every event.
fn replay_cpu(rules: &RuleSet, state: &mut AlertState, stream: &[(i64, f32)]) -> Vec<AlertEvent> {
    let mut out = Vec::new();
    for &(at, cpu) in stream {
        let mut r = calm("web-1");
        r.cpu.usage_percent = cpu;
        match state.on_reading(rules, &r, t(at), Some(Duration::from_secs(1))) {
            Ok(events) => out.extend(events),
            Err(e) => panic!("reading at {at} ignored: {e}"),
        }
    }
    out
}

fn cpu_event(at: i64, kind: EventKind, sev: Severity, prev: Option<Severity>) -> Brief {
    ev(at, kind, "web-1", "cpu", None, sev, prev)
}

/// CPU judged on each value as it comes, unless a test says otherwise.
const INSTANT_CPU: &str = "[rules.cpu]\naverage = \"0s\"\nrepeat = \"0s\"\n";

#[test]
fn defaults_parse_with_the_documented_levels() {
    let set = match RuleSet::defaults() {
        Ok(s) => s,
        Err(e) => panic!("defaults refused: {e}"),
    };
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cpu",
            "disk_filling",
            "disk_space",
            "host_down",
            "load",
            "memory",
            "swap",
            "temperature"
        ]
    );
    let cpu = set.rule("cpu").expect("cpu rule");
    assert_eq!(cpu.metric, Metric::CpuUsagePercent);
    assert_eq!(
        cpu.warning,
        Some(Levels {
            level: 85.0,
            clear: Some(75.0)
        })
    );
    assert_eq!(
        cpu.critical,
        Some(Levels {
            level: 95.0,
            clear: Some(85.0)
        })
    );
    assert_eq!(cpu.average, Duration::from_secs(300));
    let disk = set.rule("disk_space").expect("disk rule");
    assert_eq!(disk.warning.map(|l| l.level), Some(90.0));
    assert_eq!(disk.critical.map(|l| l.level), Some(98.0));
    let filling = set.rule("disk_filling").expect("fill rule");
    assert_eq!(filling.warning.map(|l| l.level), Some(24.0));
    assert_eq!(
        set.rule("host_down")
            .and_then(|r| r.critical)
            .map(|l| l.level),
        Some(3.0)
    );
}

#[test]
fn without_for_a_level_fires_on_the_reading_that_crosses_it_and_resolves_below_clear() {
    let set = rules(INSTANT_CPU);
    let mut state = AlertState::new();
    let events = replay_cpu(
        &set,
        &mut state,
        &[(0, 50.0), (1, 90.0), (2, 88.0), (3, 74.0), (4, 50.0)],
    );
    assert_eq!(
        brief(&events),
        [
            cpu_event(1, Fired, Warning, None),
            cpu_event(3, Resolved, Warning, None)
        ]
    );
    assert_eq!(events[1].peak, 90.0);
    assert_eq!(events[1].started_at, t(1));
    assert_eq!(events[1].metric, Metric::CpuUsagePercent);
}

#[test]
fn for_keeps_an_alert_pending_and_a_break_restarts_the_wait() {
    let set = rules(&format!("{INSTANT_CPU}for = \"3s\"\n"));
    let mut state = AlertState::new();
    let stream = [
        (0, 90.0),
        (1, 90.0),
        (2, 50.0), // breaks the wait
        (3, 90.0),
        (4, 90.0),
        (5, 90.0),
        (6, 90.0), // 3 s after 3: fires
        (7, 90.0),
    ];
    let events = replay_cpu(&set, &mut state, &stream);
    assert_eq!(brief(&events), [cpu_event(6, Fired, Warning, None)]);
    assert_eq!(events[0].started_at, t(6));
}

#[test]
fn a_value_hovering_around_the_level_fires_once() {
    let set = rules(INSTANT_CPU);
    let mut state = AlertState::new();
    let stream: Vec<(i64, f32)> = (0..20)
        .map(|i| (i, if i % 2 == 0 { 86.0 } else { 84.0 }))
        .chain([(20, 76.0), (21, 74.0)])
        .collect();
    let events = replay_cpu(&set, &mut state, &stream);
    assert_eq!(
        brief(&events),
        [
            cpu_event(0, Fired, Warning, None),
            cpu_event(21, Resolved, Warning, None)
        ]
    );
}

#[test]
fn clear_for_waits_below_the_clearing_level_without_a_break() {
    let set = rules(&format!("{INSTANT_CPU}clear_for = \"3s\"\n"));
    let mut state = AlertState::new();
    let stream = [
        (0, 90.0),
        (1, 70.0),
        (2, 70.0),
        (3, 80.0), // above 75 again: the wait restarts
        (4, 70.0),
        (5, 70.0),
        (6, 70.0),
        (7, 70.0), // 3 s after 4
        (8, 70.0),
    ];
    let events = replay_cpu(&set, &mut state, &stream);
    assert_eq!(
        brief(&events),
        [
            cpu_event(0, Fired, Warning, None),
            cpu_event(7, Resolved, Warning, None)
        ]
    );
}

#[test]
fn escalates_to_critical_and_back_to_warning_before_resolving() {
    let set = rules(INSTANT_CPU);
    let mut state = AlertState::new();
    let stream = [
        (0, 90.0),
        (1, 96.0),
        (2, 90.0), // above critical's clearing level 85: still critical
        (3, 84.0), // warning again
        (4, 80.0),
        (5, 70.0),
    ];
    let events = replay_cpu(&set, &mut state, &stream);
    assert_eq!(
        brief(&events),
        [
            cpu_event(0, Fired, Warning, None),
            cpu_event(1, Fired, Critical, Some(Warning)),
            cpu_event(3, Fired, Warning, Some(Critical)),
            cpu_event(5, Resolved, Warning, None)
        ]
    );
    assert!(events.iter().all(|e| e.started_at == t(0)));
    assert_eq!(events[3].peak, 96.0);
}

#[test]
fn the_default_cpu_rule_judges_the_five_minute_mean() {
    let set = rules("[rules.cpu]\nrepeat = \"0s\"\n");
    let mut state = AlertState::new();
    // Idle for 5 minutes, then busy, one reading every 10 s: 30 readings in the window,
    // so the mean passes 85 % with the 26th busy reading (26 of 30 = 86.7 %).
    let stream: Vec<(i64, f32)> = (0..30)
        .map(|i| (i * 10, 0.0))
        .chain((30..60).map(|i| (i * 10, 100.0)))
        .collect();
    let events = replay_cpu(&set, &mut state, &stream);
    // ... and 95 % with the 29th (96.7 %): critical.
    assert_eq!(
        brief(&events),
        [
            cpu_event(550, Fired, Warning, None),
            cpu_event(580, Fired, Critical, Some(Warning))
        ]
    );
    assert!(
        (events[0].value - 86.666).abs() < 0.01,
        "{}",
        events[0].value
    );
}

#[test]
fn reminders_come_every_repeat_interval_on_readings_and_ticks() {
    let set = rules(
        "[rules.cpu]\naverage = \"0s\"\nrepeat = \"10s\"\n[rules.host_down]\nenabled = false\n",
    );
    let mut state = AlertState::new();
    let stream: Vec<(i64, f32)> = (0..=25).map(|i| (i, 90.0)).collect();
    let mut events = replay_cpu(&set, &mut state, &stream);
    // The tick alone brings the next reminder (30 is within 3 intervals of the last reading).
    events.extend(state.on_tick(&set, t(26)));
    events.extend(state.on_tick(&set, t(30)));
    assert_eq!(
        brief(&events),
        [
            cpu_event(0, Fired, Warning, None),
            cpu_event(10, Reminder, Warning, None),
            cpu_event(20, Reminder, Warning, None),
            cpu_event(30, Reminder, Warning, None)
        ]
    );
}

#[test]
fn a_silence_mutes_a_host_until_its_end_then_the_alert_is_told() {
    let until = t(10).to_rfc3339();
    let set = rules(&format!(
        "{INSTANT_CPU}\n[[silences]]\nhosts = \"web-1\"\nrule = \"cpu\"\nuntil = \"{until}\"\ncomment = \"maintenance\"\n"
    ));
    let mut state = AlertState::new();
    let mut events = Vec::new();
    for at in 0..15 {
        for host in ["web-1", "web-2"] {
            let mut r = calm(host);
            r.cpu.usage_percent = 90.0;
            events.extend(state.on_reading(&set, &r, t(at), None).expect("in order"));
        }
    }
    assert_eq!(
        brief(&events),
        [
            ev(0, Fired, "web-2", "cpu", None, Warning, None),
            ev(10, Fired, "web-1", "cpu", None, Warning, None)
        ]
    );
    // Told late, but the alert started when the level was passed.
    assert_eq!(events[1].started_at, t(0));
}

#[test]
fn a_per_host_override_changes_the_level_for_matching_hosts_only() {
    let set = rules(&format!(
        "{INSTANT_CPU}\n[[overrides]]\nhosts = \"db-*\"\nrule = \"cpu\"\nwarning = {{ level = 50, clear = 40 }}\n"
    ));
    let mut state = AlertState::new();
    let mut events = Vec::new();
    for host in ["db-1", "web-1", "db-2"] {
        let mut r = calm(host);
        r.cpu.usage_percent = 60.0;
        events.extend(state.on_reading(&set, &r, t(0), None).expect("in order"));
    }
    assert_eq!(
        brief(&events),
        [
            ev(0, Fired, "db-1", "cpu", None, Warning, None),
            ev(0, Fired, "db-2", "cpu", None, Warning, None)
        ]
    );
}

#[test]
fn each_disk_has_its_own_alert_and_an_item_override_applies_to_its_mount() {
    let set = rules(
        "[rules.disk_space]\naverage = \"0s\"\n\n[[overrides]]\nhosts = \"*\"\nrule = \"disk_space\"\nitems = \"/backup*\"\nwarning = { level = 99, clear = 95 }\ncritical = { level = 99.5, clear = 99 }\n",
    );
    let mut state = AlertState::new();
    let mut events = Vec::new();
    let steps: [(i64, [f32; 3]); 4] = [
        (0, [95.0, 50.0, 97.0]),
        (1, [95.0, 99.0, 97.0]),
        (2, [70.0, 99.0, 97.0]),
        (3, [70.0, 99.0, 99.9]),
    ];
    for (at, [root, data, backup]) in steps {
        let mut r = calm("web-1");
        r.disks = vec![
            disk("/", root, 1),
            disk("/data", data, 1),
            disk("/backup", backup, 1),
        ];
        events.extend(state.on_reading(&set, &r, t(at), None).expect("in order"));
    }
    let d =
        |at, kind, mount, sev, prev| ev(at, kind, "web-1", "disk_space", Some(mount), sev, prev);
    assert_eq!(
        brief(&events),
        [
            d(0, Fired, "/", Warning, None),
            d(1, Fired, "/data", Critical, None),
            d(2, Resolved, "/", Warning, None),
            d(3, Fired, "/backup", Critical, None)
        ]
    );
}

#[test]
fn an_alert_on_an_item_that_disappears_resolves() {
    let set = rules("[rules.disk_space]\naverage = \"0s\"\n");
    let mut state = AlertState::new();
    let mut r = calm("web-1");
    r.disks.push(disk("/mnt/usb", 99.0, 1));
    let fired = state.on_reading(&set, &r, t(0), None).expect("in order");
    let gone = state
        .on_reading(&set, &calm("web-1"), t(1), None)
        .expect("in order");
    let d = |at, kind| {
        ev(
            at,
            kind,
            "web-1",
            "disk_space",
            Some("/mnt/usb"),
            Critical,
            None,
        )
    };
    assert_eq!(brief(&fired), [d(0, Fired)]);
    assert_eq!(brief(&gone), [d(1, Resolved)]);
}

#[test]
fn temperature_alerts_are_per_sensor() {
    let set = rules("[rules.temperature]\naverage = \"0s\"\n");
    let mut state = AlertState::new();
    let mut r = calm("web-1");
    r.temperatures = vec![
        Temperature {
            label: "coretemp Package id 0".into(),
            celsius: 90.0,
        },
        Temperature {
            label: "nvme Composite".into(),
            celsius: 40.0,
        },
    ];
    let events = state.on_reading(&set, &r, t(0), None).expect("in order");
    assert_eq!(
        brief(&events),
        [ev(
            0,
            Fired,
            "web-1",
            "temperature",
            Some("coretemp Package id 0"),
            Warning,
            None
        )]
    );
}

/// One reading a minute with the root disk's free space falling linearly.
fn fill_stream(
    set: &RuleSet,
    state: &mut AlertState,
    minutes: std::ops::Range<i64>,
    free_at: impl Fn(i64) -> u64,
) -> Vec<AlertEvent> {
    let mut out = Vec::new();
    for m in minutes {
        let mut r = calm("web-1");
        let free = free_at(m * 60);
        r.disks = vec![disk("/", 50.0, free)];
        r.disks[0].used_bytes = r.disks[0].total_bytes - free;
        out.extend(
            state
                .on_reading(set, &r, t(m * 60), None)
                .expect("in order"),
        );
    }
    out
}

#[test]
fn a_disk_filling_within_a_day_warns_from_its_trend() {
    let set = rules("");
    let mut state = AlertState::new();
    // 500 GB free, full in 20 h at this rate.
    let start: u64 = 500_000_000_000;
    let rate = start as f64 / (20.0 * 3600.0);
    let events = fill_stream(&set, &mut state, 0..61, |s| {
        (start as f64 - rate * s as f64) as u64
    });
    // The trend is judged once half the hour-long window is covered (minute 30), then the
    // default `for` of 10 minutes.
    assert_eq!(
        brief(&events),
        [ev(
            40 * 60,
            Fired,
            "web-1",
            "disk_filling",
            Some("/"),
            Warning,
            None
        )]
    );
    // At minute 40 there are 19 h 20 min left.
    assert!(
        (events[0].value - 19.333).abs() < 0.01,
        "{}",
        events[0].value
    );

    // Space freed and steady: the trend flattens and the alert resolves once the falling
    // part has left the window (within the hour).
    let after = fill_stream(&set, &mut state, 61..130, |_| start);
    let resolved: Vec<_> = after.iter().filter(|e| e.kind == Resolved).collect();
    assert_eq!(resolved.len(), 1, "{after:?}");
    assert!(
        since(resolved[0].at) > 61 * 60 && since(resolved[0].at) <= 121 * 60,
        "{}",
        since(resolved[0].at)
    );
}

#[test]
fn a_steady_or_slowly_filling_disk_does_not_warn() {
    let set = rules("");
    let mut state = AlertState::new();
    let start: u64 = 500_000_000_000;
    let rate = start as f64 / (100.0 * 3600.0); // full in 100 h
    let slow = fill_stream(&set, &mut state, 0..120, |s| {
        (start as f64 - rate * s as f64) as u64
    });
    assert!(slow.is_empty(), "{slow:?}");
}

/// Host `name` publishes at each of `times` (declaring 1 s unless `declared` is false);
/// ticks run every second from `ticks`; returns every event in time order.
fn host_down_run(
    set: &RuleSet,
    state: &mut AlertState,
    readings: &[i64],
    ticks: std::ops::Range<i64>,
    declared: bool,
) -> Vec<AlertEvent> {
    let interval = declared.then_some(Duration::from_secs(1));
    let mut out = Vec::new();
    let end = readings
        .iter()
        .copied()
        .chain(ticks.clone())
        .max()
        .unwrap_or(0);
    for at in 0..=end {
        if readings.contains(&at) {
            let mut r = calm("web-1");
            r.cpu.usage_percent = 90.0;
            out.extend(
                state
                    .on_reading(set, &r, t(at), interval)
                    .expect("in order"),
            );
        }
        if ticks.contains(&at) {
            out.extend(state.on_tick(set, t(at)));
        }
    }
    out
}

#[test]
fn a_host_silent_for_three_intervals_is_down_once_and_back_with_its_next_reading() {
    let set = rules("[rules.cpu]\nenabled = false\n");
    let mut state = AlertState::new();
    let events = host_down_run(&set, &mut state, &[0, 1, 2, 30], 0..30, true);
    let d = |at, kind| ev(at, kind, "web-1", "host_down", None, Critical, None);
    // Last reading at 2; at 5 it is exactly 3 intervals, at 6 more: down 4 s after it.
    assert_eq!(brief(&events), [d(6, Fired), d(30, Resolved)]);
    assert_eq!(events[0].started_at, t(6));
}

#[test]
fn without_a_declared_interval_a_steady_rhythm_seen_counts() {
    let set = rules("[rules.cpu]\nenabled = false\n");
    let mut state = AlertState::new();
    // Six readings 2 s apart make a rhythm: down after more than 6 s of silence. Back at 40:
    // the gap over the outage is not taken as a gap of the rhythm, so it is down again 7 s
    // after its reading at 42.
    let events = host_down_run(&set, &mut state, &[0, 2, 4, 6, 8, 10, 40, 42], 0..55, false);
    let d = |at, kind| ev(at, kind, "web-1", "host_down", None, Critical, None);
    assert_eq!(
        brief(&events),
        [d(17, Fired), d(40, Resolved), d(49, Fired)]
    );
}

#[test]
fn a_host_that_promised_no_rhythm_is_never_down() {
    let set = rules("[rules.cpu]\nenabled = false\n");
    // The original publisher called three times a second apart, then nobody asks.
    let mut state = AlertState::new();
    let on_demand = host_down_run(&set, &mut state, &[0, 1, 2], 0..3600, false);
    assert!(on_demand.is_empty(), "{on_demand:?}");
    // Called now and then: gaps that are no rhythm.
    let mut state = AlertState::new();
    let irregular = host_down_run(&set, &mut state, &[0, 1, 2, 10, 11, 30, 31], 0..3600, false);
    assert!(irregular.is_empty(), "{irregular:?}");
    // Five readings a second apart are not yet a rhythm either (six are).
    let mut state = AlertState::new();
    let five = host_down_run(&set, &mut state, &[0, 1, 2, 3, 4], 0..600, false);
    assert!(five.is_empty(), "{five:?}");
}

#[test]
fn a_down_alert_kept_for_a_host_now_on_demand_ends() {
    // Down under a rules file that expected 1 s of it; the file now says "on demand".
    let before =
        rules("[rules.cpu]\nenabled = false\n\n[[intervals]]\nhosts = \"web-*\"\nevery = \"1s\"\n");
    let mut state = AlertState::new();
    let events = host_down_run(&before, &mut state, &[0, 1, 2], 0..10, false);
    assert_eq!(events.len(), 1, "{events:?}");
    let now =
        rules("[rules.cpu]\nenabled = false\n\n[[intervals]]\nhosts = \"web-*\"\nevery = \"0s\"\n");
    let d = |at, kind| ev(at, kind, "web-1", "host_down", None, Critical, None);
    assert_eq!(brief(&state.on_tick(&now, t(10))), [d(10, Resolved)]);
    assert!(state.on_tick(&now, t(11)).is_empty());
}

#[test]
fn the_rules_file_sets_an_expected_interval_by_host_or_label() {
    let set = rules(
        "[rules.cpu]\nenabled = false\n\n\
         [[intervals]]\nhosts = \"web-*\"\nevery = \"10s\"\n\n\
         [[intervals]]\nlabels = { role = \"batch*\" }\nevery = \"0s\"\n",
    );
    // Three on-demand readings, but the file expects one every 10 s: down after 30 s.
    let mut state = AlertState::new();
    let events = host_down_run(&set, &mut state, &[0, 1, 2], 0..60, false);
    let d = |at, kind| ev(at, kind, "web-1", "host_down", None, Critical, None);
    assert_eq!(brief(&events), [d(33, Fired)]);

    // A label saying "on demand" wins over a declared interval (and over the glob before it).
    let mut state = AlertState::new();
    let mut out = Vec::new();
    for at in 0..3 {
        let mut r = calm("web-1");
        r.labels = Some([("role".to_owned(), "batch-nightly".to_owned())].into());
        out.extend(
            state
                .on_reading(&set, &r, t(at), Some(Duration::from_secs(1)))
                .expect("in order"),
        );
    }
    for at in 3..600 {
        out.extend(state.on_tick(&set, t(at)));
    }
    assert!(out.is_empty(), "{out:?}");

    // Either key is needed, and `every`.
    assert_eq!(
        refused("[[intervals]]\nevery = \"5s\"\n"),
        "interval 1: give `hosts`, `labels` or both"
    );
    assert!(refused("[[intervals]]\nhosts = \"a\"\n").starts_with("interval 1: missing `every`"));
}

#[test]
fn a_mean_is_judged_only_once_its_readings_cover_most_of_the_window() {
    let set = rules("[rules.cpu]\naverage = \"20s\"\nrepeat = \"0s\"\n");
    let mut state = AlertState::new();
    // Hot from its first reading, one a second: 15 s from the oldest to the newest plus the
    // 1 s a reading stands for is 80 % of 20 s.
    let stream: Vec<(i64, f32)> = (0..40).map(|i| (i, 99.0)).collect();
    let events = replay_cpu(&set, &mut state, &stream);
    assert_eq!(brief(&events), [cpu_event(15, Fired, Critical, None)]);
    assert!(since(events[0].at) >= 10 && since(events[0].at) <= 23);

    // A host publishing every 10 s is judged on its second reading (2 × 10 s cover 20 s).
    let mut state = AlertState::new();
    let events = replay_cpu(&set, &mut state, &[(0, 99.0), (10, 99.0)]);
    assert_eq!(brief(&events), [cpu_event(10, Fired, Critical, None)]);

    // The original publisher's three readings a second apart never make a 5-minute mean.
    let set = rules("[rules.cpu]\nrepeat = \"0s\"\n");
    let mut state = AlertState::new();
    let mut out = Vec::new();
    for at in 0..3 {
        let mut r = calm("legacy");
        r.cpu.usage_percent = 97.0;
        out.extend(state.on_reading(&set, &r, t(at), None).expect("in order"));
    }
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn an_alert_kept_over_a_restart_is_not_resolved_by_a_window_still_refilling() {
    let set = rules("[rules.cpu]\naverage = \"20s\"\nrepeat = \"0s\"\n");
    let mut state = AlertState::new();
    let hot: Vec<(i64, f32)> = (0..20).map(|i| (i, 99.0)).collect();
    assert_eq!(replay_cpu(&set, &mut state, &hot).len(), 1);
    let json = serde_json::to_string(&state).expect("serialises");
    let mut restored: AlertState = serde_json::from_str(&json).expect("deserialises");
    // Calm from the restart: nothing until the window is covered again, then resolved.
    let calm_stream: Vec<(i64, f32)> = (30..60).map(|i| (i, 10.0)).collect();
    let events = replay_cpu(&set, &mut restored, &calm_stream);
    assert_eq!(brief(&events), [cpu_event(45, Resolved, Critical, None)]);
}

/// `past` for [`AlertState::refill`]: one value per second over `secs`, for one metric.
fn past(metric: Metric, item: &str, secs: std::ops::Range<i64>, value: f64) -> Past {
    let mut out = Past::new();
    out.insert(
        (metric, item.to_owned()),
        secs.map(|s| (t(s), value)).collect(),
    );
    out
}

use super::engine::Past;

#[test]
fn windows_refilled_from_the_store_judge_at_once_and_count_nothing_twice() {
    let set = rules("[rules.cpu]\nrepeat = \"0s\"\n");
    // A successor starts at 300 s: the store holds 5 minutes of 97 %.
    let mut state = AlertState::new();
    state.refill(
        &set,
        "web-1",
        &past(Metric::CpuUsagePercent, "", 0..300, 97.0),
    );
    // Refilled twice (a second turn): nothing is counted twice.
    state.refill(
        &set,
        "web-1",
        &past(Metric::CpuUsagePercent, "", 0..300, 97.0),
    );
    let events = replay_cpu(&set, &mut state, &[(300, 97.0)]);
    assert_eq!(brief(&events), [cpu_event(300, Fired, Critical, None)]);
    // A calm past refills a calm mean: one hot reading is not enough.
    let mut state = AlertState::new();
    state.refill(
        &set,
        "web-1",
        &past(Metric::CpuUsagePercent, "", 0..300, 10.0),
    );
    let events = replay_cpu(&set, &mut state, &[(300, 99.0), (301, 99.0)]);
    assert!(events.is_empty(), "{events:?}");

    // The fill trend is not blind after a restart: an hour of used bytes growing by 1 GB a
    // minute on a disk with 600 GB left (10 h) warns once `for` has passed.
    let set = rules("[rules.disk_filling]\nfor = \"0s\"\n");
    let mut state = AlertState::new();
    let mut used = Past::new();
    used.insert(
        (Metric::DiskFullInHours, "/".to_owned()),
        (0..3600)
            .step_by(10)
            .map(|s| (t(s), 400e9 + s as f64 / 60.0 * 1e9))
            .collect(),
    );
    state.refill(&set, "web-1", &used);
    let mut r = calm("web-1");
    r.disks = vec![disk("/", 40.0, 599_000_000_000)];
    r.disks[0].used_bytes = 401_000_000_000 - 1_000_000_000 + 60_000_000_000;
    let events = state.on_reading(&set, &r, t(3600), None).expect("in order");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].rule, "disk_filling");
    assert!((events[0].value - 10.0).abs() < 0.5, "{}", events[0].value);
}

#[test]
fn a_successor_judges_silence_from_the_last_reading_not_from_the_kept_state() {
    let set = rules("[rules.cpu]\nenabled = false\n");
    let mut state = AlertState::new();
    let mut r = calm("web-1");
    for at in 0..3 {
        r.seq = at as u64;
        state
            .on_reading(&set, &r, t(at), Some(Duration::from_secs(1)))
            .expect("in order");
    }
    // The state was kept at 2; the host went on publishing; the active evaluator died at 9
    // and a successor starts at 10 from the kept state, having seen a reading at 9.5.
    let json = serde_json::to_string(&state).expect("serialises");
    let mut successor: AlertState = serde_json::from_str(&json).expect("deserialises");
    successor.heard_at("web-1", t(9) + chrono::Duration::milliseconds(500));
    let mut out = Vec::new();
    for at in 10..13 {
        out.extend(successor.on_tick(&set, t(at)));
    }
    assert!(out.is_empty(), "no false host_down: {out:?}");
    // An older time changes nothing.
    successor.heard_at("web-1", t(1));
    // The host stopped at 9.5: down on the tick past 3 intervals, within 8 s of it.
    for at in 13..20 {
        out.extend(successor.on_tick(&set, t(at)));
    }
    let d = |at, kind| ev(at, kind, "web-1", "host_down", None, Critical, None);
    assert_eq!(brief(&out), [d(13, Fired)]);
}

#[test]
fn a_down_hosts_other_alerts_resolve_as_no_data_once_with_the_down_alert() {
    let set = rules(
        "[rules.cpu]\naverage = \"0s\"\nrepeat = \"0s\"\n\n[rules.host_down]\nrepeat = \"0s\"\n",
    )
    .with_no_data_after(Duration::from_secs(60));
    let mut state = AlertState::new();
    // CPU fires at 0; the host stops after 2: down at 6, no data at 62 (60 s after 2).
    let events = host_down_run(&set, &mut state, &[0, 1, 2], 0..200, true);
    let cpu = |at, kind| ev(at, kind, "web-1", "cpu", None, Warning, None);
    let down = |at, kind| ev(at, kind, "web-1", "host_down", None, Critical, None);
    assert_eq!(
        brief(&events),
        [
            cpu(0, Fired),
            down(6, Fired),
            cpu(62, Resolved),
            down(62, Reminder)
        ]
    );
    assert_eq!(events[2].reason, Some(Reason::NoData));
    assert_eq!(events[3].reason, None);
    // One step, one host: one notification.
    let batches = group_by_host(events[2..].to_vec());
    assert_eq!(batches.len(), 1);
    // Only the down alert is left; the host back is judged afresh.
    let active: Vec<&str> = state.active().iter().map(|a| a.rule).collect();
    assert_eq!(active, ["host_down"]);
    let mut r = calm("web-1");
    r.cpu.usage_percent = 90.0;
    let back = state
        .on_reading(&set, &r, t(300), Some(Duration::from_secs(1)))
        .expect("in order");
    assert_eq!(brief(&back), [down(300, Resolved), cpu(300, Fired)]);
    assert_eq!(back[1].started_at, t(300));
}

#[test]
fn a_down_host_holds_back_its_other_alerts() {
    let set = rules(
        "[rules.cpu]\naverage = \"0s\"\nrepeat = \"5s\"\n\n[rules.host_down]\nrepeat = \"0s\"\n",
    );
    let mut state = AlertState::new();
    // CPU fires at 0; the host stops after 2; comes back at 30 and stays.
    let readings: Vec<i64> = [0, 1, 2].into_iter().chain(30..40).collect();
    let events = host_down_run(&set, &mut state, &readings, 0..40, true);
    let cpu = |at, kind| ev(at, kind, "web-1", "cpu", None, Warning, None);
    let down = |at, kind| ev(at, kind, "web-1", "host_down", None, Critical, None);
    assert_eq!(
        brief(&events),
        [
            cpu(0, Fired),
            cpu(5, Reminder), // tick while it still counts as up
            down(6, Fired),   // no CPU reminders from here
            down(30, Resolved),
            cpu(30, Reminder), // held back since 10: due again at once
            cpu(35, Reminder)
        ]
    );
}

#[test]
fn one_step_is_one_batch_per_host_and_a_fleet_going_down_is_one_event_per_host() {
    let set = rules(&format!(
        "{INSTANT_CPU}\n[rules.disk_space]\naverage = \"0s\"\n"
    ));
    let mut state = AlertState::new();
    let mut first = Vec::new();
    for at in 0..3 {
        for host in ["a", "b"] {
            let mut r = calm(host);
            r.cpu.usage_percent = 90.0;
            r.disks.push(disk("/data", 99.0, 1));
            let events = state.on_reading(&set, &r, t(at), Some(Duration::from_secs(1)));
            let events = events.expect("in order");
            if at == 0 {
                first.push(group_by_host(events));
            }
        }
    }
    // Each host's first reading fires CPU and the disk: one batch of two.
    for batches in &first {
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].events.len(), 2);
    }
    // Both stop: one tick, one batch per host holding only "down", not their other alerts.
    let down = group_by_host(state.on_tick(&set, t(6)));
    let summary: Vec<(&str, Vec<&str>)> = down
        .iter()
        .map(|b| {
            (
                b.host.as_str(),
                b.events.iter().map(|e| e.rule.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("a", vec!["host_down"]), ("b", vec!["host_down"])]
    );
}

#[test]
fn state_survives_serialisation_without_forgetting_or_re_firing() {
    let set = rules(INSTANT_CPU);
    let mut state = AlertState::new();
    let fired = replay_cpu(&set, &mut state, &[(0, 90.0), (1, 91.0)]);
    assert_eq!(fired.len(), 1);
    let json = serde_json::to_string(&state).expect("serialises");
    let mut restored: AlertState = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(restored.active().len(), 1);
    let after = replay_cpu(&set, &mut restored, &[(2, 92.0), (3, 50.0)]);
    assert_eq!(brief(&after), [cpu_event(3, Resolved, Warning, None)]);
    assert_eq!(after[0].peak, 92.0);
    assert_eq!(after[0].started_at, t(0));
}

#[test]
fn an_older_reading_is_ignored_and_said_so() {
    let set = rules(INSTANT_CPU);
    let mut state = AlertState::new();
    replay_cpu(&set, &mut state, &[(5, 10.0)]);
    let mut r = calm("web-1");
    r.cpu.usage_percent = 99.0;
    let err = state.on_reading(&set, &r, t(4), None);
    assert!(matches!(err, Err(Ignored::OutOfOrder { .. })), "{err:?}");
    assert_eq!(err.map_err(|e| e.reason()), Err("out_of_order"));
    assert!(state.active().is_empty());
}

#[test]
fn event_json_has_the_documented_fields() {
    let set = rules("[rules.disk_space]\naverage = \"0s\"\n");
    let mut state = AlertState::new();
    let mut r = calm("web-1");
    r.disks = vec![disk("/", 99.0, 1)];
    let events = state.on_reading(&set, &r, t(0), None).expect("in order");
    let json = serde_json::to_value(&events[0]).expect("serialises");
    assert_eq!(
        json,
        serde_json::json!({
            "kind": "fired",
            "rule": "disk_space",
            "metric": "disk_usage_percent",
            "host": "web-1",
            "item": "/",
            "severity": "critical",
            "previous_severity": null,
            "value": 99.0,
            "peak": 99.0,
            "started_at": "2027-01-15T08:00:00Z",
            "at": "2027-01-15T08:00:00Z"
        })
    );
}

fn refused(toml: &str) -> String {
    match RuleSet::from_toml(toml) {
        Ok(_) => panic!("accepted: {toml}"),
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "more than one line: {line}");
            line
        }
    }
}

#[test]
fn a_bad_rules_file_is_refused_with_one_line_naming_the_rule() {
    let cases = [
        (
            "[rules.gpu]\nmetric = \"gpu_percent\"\nwarning = { level = 1 }\n",
            &["rule \"gpu\"", "unknown variant `gpu_percent`"][..],
        ),
        (
            "[rules.cpu]\nwarning = { level = 80, clear = 90 }\n",
            &[
                "rule \"cpu\"",
                "warning clear 90 is on the wrong side of level 80",
            ],
        ),
        (
            "[rules.disk_filling]\nwarning = { level = 24, clear = 12 }\n",
            &["rule \"disk_filling\"", "wrong side"],
        ),
        (
            "[rules.cpu]\nfor = \"-5m\"\n",
            &[
                "rule \"cpu\"",
                "duration \"-5m\": durations cannot be negative",
            ],
        ),
        (
            "[rules.cpu]\nclear_for = \"soon\"\n",
            &["rule \"cpu\"", "duration \"soon\""],
        ),
        (
            "[rules.cpu]\nlevle = 3\n",
            &["rule \"cpu\"", "unknown field `levle`"],
        ),
        (
            "[rules.cpu]\nwarning = { level = 80, clear = 70, hysteresis = 2 }\n",
            &["rule \"cpu\"", "unknown field `hysteresis`"],
        ),
        (
            "[rules.disk_filling]\naverage = \"0s\"\n",
            &["rule \"disk_filling\"", "cannot be 0s"],
        ),
        (
            "[rules.mine]\nwarning = { level = 1 }\n",
            &["rule \"mine\"", "missing `metric`"],
        ),
        (
            "[rules.mine]\nmetric = \"cpu_usage_percent\"\n",
            &["rule \"mine\"", "no level"],
        ),
        (
            "[rules.cpu]\nwarning = { level = 99 }\n",
            &[
                "rule \"cpu\"",
                "warning level 99 is beyond critical level 95",
            ],
        ),
        (
            "[[overrides]]\nhosts = \"db-*\"\nrule = \"cpus\"\n",
            &["override 1", "unknown rule \"cpus\""],
        ),
        (
            "[[overrides]]\nhosts = \"db-[\"\nrule = \"cpu\"\n",
            &["override 1", "bad pattern"],
        ),
        (
            "[[overrides]]\nhosts = \"*\"\nrule = \"cpu\"\nwarning = { level = 50, clear = 60 }\n",
            &["override 1", "rule \"cpu\"", "wrong side"],
        ),
        (
            "[[silences]]\nhosts = \"web-1\"\nuntil = \"tomorrow\"\n",
            &["silence 1", "tomorrow"],
        ),
        ("[alerts]\n", &["line 1", "unknown field `alerts`"]),
        ("[rules.cpu]\n\nwarning = { level = 80\n", &["line 3"]),
    ];
    for (toml, wanted) in cases {
        let line = refused(toml);
        for w in wanted {
            assert!(line.contains(w), "{line:?} should contain {w:?}");
        }
    }
}

#[test]
fn a_missing_rules_file_names_the_file() {
    let path = std::path::Path::new("/nonexistent/hostpulse-alerts.toml");
    let err = RuleSet::from_file(path).expect_err("no such file");
    assert!(err
        .to_string()
        .starts_with("/nonexistent/hostpulse-alerts.toml: "));
}

#[test]
fn a_file_changes_a_default_field_by_field_and_can_disable_a_rule() {
    let set = rules(
        "[rules.cpu]\nwarning = { level = 70, clear = 60 }\n\n[rules.swap]\nenabled = false\n",
    );
    let cpu = set.rule("cpu").expect("cpu");
    assert_eq!(cpu.warning.map(|l| l.level), Some(70.0));
    // Untouched fields keep their defaults.
    assert_eq!(cpu.critical.map(|l| l.level), Some(95.0));
    assert_eq!(cpu.average, Duration::from_secs(300));
    assert!(!set.rule("swap").expect("swap").enabled);
}

#[test]
fn the_readme_example_file_is_accepted_and_means_what_it_says() {
    let readme = include_str!("../../../docs/alerts.md");
    let section = readme
        .split("# Alerts")
        .nth(1)
        .expect("docs/alerts.md has its title");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block in docs/alerts.md");
    let set = rules(example);
    assert!(!set.rule("swap").expect("swap").enabled);
    let ingress = set.rule("ingress").expect("the new rule");
    assert_eq!(ingress.metric, Metric::NetworkReceiveBytesPerSecond);
    let cpu = set.rule("cpu").expect("cpu");
    let db = set.effective(cpu, "db-7", None);
    assert_eq!(db.warning.map(|l| l.level), Some(95.0));
    assert_eq!(db.average, Duration::from_secs(600));
    let web = set.effective(cpu, "web-7", None);
    assert_eq!(web.warning.map(|l| l.level), Some(80.0));
    let disk = set.rule("disk_space").expect("disk_space");
    let backup = set.effective(disk, "web-7", Some("/backup/daily"));
    assert_eq!(backup.warning.map(|l| l.level), Some(99.0));
    let root = set.effective(disk, "web-7", Some("/"));
    assert_eq!(root.warning.map(|l| l.level), Some(90.0));
    let before = DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    assert!(set.silenced("web-3", "cpu", before));
    assert!(!set.silenced("web-4", "cpu", before));
    assert!(set.silenced("build-1", "load", before));
    assert!(!set.silenced("build-1", "cpu", before));
    assert!(!set.silenced("web-3", "cpu", before + chrono::TimeDelta::days(30)));
}

#[test]
fn a_rules_file_on_disk_is_loaded_and_its_errors_name_file_and_rule() {
    let dir = std::env::temp_dir().join(format!("hostpulse-alert-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let good = dir.join("good.toml");
    let bad = dir.join("bad.toml");
    std::fs::write(&good, "[rules.cpu]\nwarning = { level = 70, clear = 60 }\n").expect("write");
    std::fs::write(&bad, "[rules.cpu]\nfor = \"-1s\"\n").expect("write");
    let loaded = RuleSet::load(Some(&good)).map(|s| s.rule("cpu").and_then(|r| r.warning));
    let refused = RuleSet::load(Some(&bad))
        .map(|_| ())
        .map_err(|e| e.to_string());
    let defaults = RuleSet::load(None).map(|s| s.rules().len());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        loaded,
        Ok(Some(Levels {
            level: 70.0,
            clear: Some(60.0)
        }))
    );
    assert_eq!(
        refused,
        Err(format!(
            "{}: rule \"cpu\": duration \"-1s\": durations cannot be negative",
            bad.display()
        ))
    );
    assert_eq!(defaults, Ok(8));
}

#[test]
fn escalation_waits_for_too_and_a_jump_fires_critical_at_once() {
    let set = rules(&format!("{INSTANT_CPU}for = \"3s\"\n"));
    let mut state = AlertState::new();
    let stream = [
        (0, 90.0),
        (1, 90.0),
        (2, 96.0),
        (3, 96.0), // warning has held 3 s
        (4, 96.0),
        (5, 96.0), // critical has held 3 s
        (6, 96.0),
    ];
    let events = replay_cpu(&set, &mut state, &stream);
    assert_eq!(
        brief(&events),
        [
            cpu_event(3, Fired, Warning, None),
            cpu_event(5, Fired, Critical, Some(Warning))
        ]
    );

    let set = rules(INSTANT_CPU);
    let mut state = AlertState::new();
    let events = replay_cpu(&set, &mut state, &[(0, 10.0), (1, 97.0)]);
    assert_eq!(brief(&events), [cpu_event(1, Fired, Critical, None)]);
}
