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
    // The config names the rules where Compose mounts them; point it at the repository's copy.
    let deploy = deploy_dir();
    let config = match std::fs::read_to_string(deploy.join("prometheus.yml")) {
        Ok(c) => c,
        Err(e) => panic!("deploy/prometheus.yml: {e}"),
    };
    let mounted = "/etc/prometheus/rules/alerts.yml";
    assert!(
        config.contains(mounted),
        "prometheus.yml does not load {mounted}"
    );
    let compose = std::fs::read_to_string(deploy.join("docker-compose.yml")).unwrap_or_default();
    assert!(
        compose.contains(&format!("./prometheus/alerts.yml:{mounted}:ro")),
        "docker-compose.yml does not mount alerts.yml at {mounted}"
    );
    let local = deploy.join("prometheus/alerts.yml");
    let dir = std::env::temp_dir().join(format!("hostpulse-promcfg-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("prometheus.yml"),
            config.replace(mounted, &local.to_string_lossy()),
        )
    }) {
        panic!("writing a temporary config in {}: {e}", dir.display());
    }
    let out = promtool(&dir, &["check", "config", "prometheus.yml"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.contains("SUCCESS: 19 rules found"), "{out}");
}
