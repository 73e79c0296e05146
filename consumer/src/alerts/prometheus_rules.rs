//! The Prometheus copy of the default rules (deploy/prometheus/alerts.yml) checked and
//! unit-tested with promtool, which scripts/test.sh installs (Debian's `prometheus` package).

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Runs promtool in `dir`; a missing promtool fails the test rather than skipping it.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let output = match Command::new("promtool").args(args).current_dir(dir).output() {
        Ok(o) => o,
        Err(e) => panic!(
            "promtool could not run ({e}): install Debian's `prometheus` package (scripts/test.sh does)"
        ),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_prometheus_rules() {
    let out = promtool(
        &deploy_dir().join("prometheus"),
        &["check", "rules", "alerts.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_unit_tests_of_the_prometheus_rules_pass() {
    let out = promtool(
        &deploy_dir().join("prometheus"),
        &["test", "rules", "alerts_test.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_compose_prometheus_config_loads_the_rules() {
    // The config names the rules relative to itself; Compose mounts them at the same place
    // beside it, so the repository's config is checked as it is.
    let deploy = deploy_dir();
    let config = match std::fs::read_to_string(deploy.join("prometheus.yml")) {
        Ok(c) => c,
        Err(e) => panic!("deploy/prometheus.yml: {e}"),
    };
    assert!(
        config.contains("- prometheus/alerts.yml"),
        "prometheus.yml does not load prometheus/alerts.yml"
    );
    let compose = std::fs::read_to_string(deploy.join("docker-compose.yml")).unwrap_or_default();
    let mounted = "./prometheus/alerts.yml:/etc/prometheus/prometheus/alerts.yml:ro";
    assert!(
        compose.contains(mounted),
        "docker-compose.yml does not mount alerts.yml beside prometheus.yml"
    );
    let out = promtool(&deploy, &["check", "config", "prometheus.yml"]);
    assert!(out.contains("SUCCESS: 19 rules found"), "{out}");
}

/// The alert in alerts.yml that mirrors each default rule.
const MIRRORS: [(&str, &str); 8] = [
    ("host_down", "HostpulseHostDown"),
    ("cpu", "HostpulseCpuHigh"),
    ("memory", "HostpulseMemoryHigh"),
    ("swap", "HostpulseSwapHigh"),
    ("disk_space", "HostpulseDiskSpace"),
    ("disk_filling", "HostpulseDiskFilling"),
    ("load", "HostpulseLoadHigh"),
    ("temperature", "HostpulseTemperatureHigh"),
];

#[test]
fn the_prometheus_rules_use_the_engine_defaults_levels() {
    let yml = include_str!("../../../deploy/prometheus/alerts.yml");
    let set = match super::RuleSet::defaults() {
        Ok(s) => s,
        Err(e) => panic!("defaults refused: {e}"),
    };
    assert_eq!(
        set.rules().len(),
        MIRRORS.len(),
        "a default rule has no Prometheus mirror"
    );
    for (rule, alert) in MIRRORS {
        let r = set
            .rule(rule)
            .unwrap_or_else(|| panic!("no default rule {rule}"));
        // Every block of the alert (one per severity), joined.
        let blocks: String = yml
            .split("- alert: ")
            .filter(|b| b.starts_with(&format!("{alert}\n")))
            .collect();
        assert!(!blocks.is_empty(), "no alert {alert} in alerts.yml");
        for (severity, levels) in [("warning", r.warning), ("critical", r.critical)] {
            let Some(l) = levels else { continue };
            assert!(
                blocks.contains(&format!("severity: {severity}")),
                "{alert} lacks {severity}"
            );
            let written = |v: f64| {
                if rule == "disk_filling" {
                    format!("{v} * 3600")
                } else {
                    format!("> {v}")
                }
            };
            if rule == "host_down" {
                continue; // the consumer's hostpulse_host_up already judges silence
            }
            for v in [l.level, l.clear_level()] {
                assert!(
                    blocks.contains(&written(v)),
                    "{alert} {severity}: no {}",
                    written(v)
                );
            }
        }
    }
}
