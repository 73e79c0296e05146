//! The page's accessibility and hygiene as Lighthouse 12 and axe-core measure them, on a
//! dashboard with live, stale and original-publisher hosts. scripts/test.sh installs both
//! (npm, into target/node); these tests fail, not skip, when they are missing.

use crate::alerts::{cpu_reading, lists, wait_for_alerts, RulesFile, CPU_RULES};
use crate::helpers::spawn_consumer;
use crate::host_sections::{three_processes, whole_host};
use crate::page::{card, reading_json, screenshots};
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};
use std::path::PathBuf;

/// Where scripts/test.sh installs the npm packages (`HOSTPULSE_NODE_DIR` overrides it).
fn node_dir() -> PathBuf {
    std::env::var_os("HOSTPULSE_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("target/tmp has a parent")
                .join("node")
        })
}

/// A file of an installed npm package; panics with what to run when it is missing.
fn npm_file(path: &str) -> PathBuf {
    let file = node_dir().join("node_modules").join(path);
    assert!(
        file.is_file(),
        "{} is missing: run scripts/test.sh (it installs lighthouse@12 and axe-core into {})",
        file.display(),
        node_dir().display()
    );
    file
}

/// A consumer holding a live host with every section of the whole host, a stale host and one
/// from the original publisher, with a critical alert, a warning and a resolved alert (badges
/// and both lists of the alerts panel).
async fn busy_dashboard(test: &str) -> (crate::helpers::TestConsumer, Tap, RulesFile) {
    let exchange = unique_exchange(test);
    let rules = RulesFile::new(CPU_RULES);
    let consumer = spawn_consumer(
        &exchange,
        &[("STALE_AFTER_SECS", "30"), ("ALERT_RULES_FILE", &rules.0)],
    )
    .await;
    let tap = Tap::bind(&exchange).await;
    // The live host carries the whole host's sections (processes, block devices, ...) and
    // goes warning, resolved, then critical.
    for (seq, cpu) in [(1, 60.0), (2, 10.0), (3, 95.0)] {
        let mut v: serde_json::Value =
            serde_json::from_slice(&whole_host("web-1", seq, three_processes())).expect("JSON");
        v["interval_secs"] = 1.into();
        v["cpu"]["usage_percent"] = cpu.into();
        tap.publish_raw(&serde_json::to_vec(&v).expect("JSON"))
            .await;
    }
    let mut old: serde_json::Value =
        serde_json::from_slice(&reading_json("quiet-db", 1)).expect("JSON");
    old["collected_at"] = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    tap.publish_raw(&serde_json::to_vec(&old).expect("JSON"))
        .await;
    let mut legacy: serde_json::Value =
        serde_json::from_slice(&cpu_reading("legacy-3f2a", 1, 60.0)).expect("JSON");
    legacy["legacy"] = serde_json::json!({ "host_from": "fingerprint" });
    tap.publish_raw(&serde_json::to_vec(&legacy).expect("JSON"))
        .await;
    let live = consumer.live.clone();
    crate::helpers::wait_until("three hosts held", || {
        let held = live.latest_json();
        ["web-1", "quiet-db", "legacy-3f2a"]
            .iter()
            .all(|h| held.contains(h))
    })
    .await;
    wait_for_alerts(&consumer, "the alerts", |a| {
        lists(a, "active", "web-1")
            && lists(a, "active", "legacy-3f2a")
            && lists(a, "recent", "web-1")
    })
    .await;
    (consumer, tap, rules)
}

#[tokio::test]
async fn axe_core_finds_no_violation_on_a_dashboard_with_every_kind_of_card() {
    let axe = std::fs::read_to_string(npm_file("axe-core/axe.min.js")).expect("axe.min.js");
    let (consumer, tap, _rules) = busy_dashboard("browser-axe").await;
    let browser = Browser::start().await;
    browser
        .open(&format!("{}/#host=web-1", consumer.address))
        .await;
    browser
        .wait_text(&card("quiet-db"), 10, |t| t.contains("last seen"))
        .await;
    browser
        .wait_text("#procs-counts", 10, |t| t.starts_with("312"))
        .await;
    browser
        .wait_text("#raw-json", 10, |t| t.contains("\"host\""))
        .await;
    browser
        .wait_text("#alerts-recent", 10, |t| t.contains("web-1"))
        .await;
    browser
        .client
        .execute(&axe, vec![])
        .await
        .expect("axe-core loads into the page");
    let violations = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }))))
               .catch((e) => done([{ id: 'axe-error', help: String(e) }]));",
            vec![],
        )
        .await
        .expect("axe-core runs");
    let violations = violations.as_array().cloned().unwrap_or_default();
    assert!(
        violations.is_empty(),
        "axe-core violations: {}",
        serde_json::to_string_pretty(&violations).unwrap_or_default()
    );
    browser.screenshot(&screenshots(), "audited").await;
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn lighthouse_scores_accessibility_and_best_practices_100_in_light_and_dark_mode() {
    npm_file("lighthouse/package.json");
    npm_file("puppeteer-core/package.json");
    let (consumer, tap, _rules) = busy_dashboard("browser-lighthouse").await;
    // Lighthouse starts its own Chromium: it takes the browser tests' turn.
    let turn = Browser::start().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/lighthouse.mjs");
    let mut command = std::process::Command::new("node");
    command
        .arg(&script)
        .arg(format!("{}/#host=web-1", consumer.address))
        .arg(node_dir())
        .arg(screenshots())
        .env("CHROME_PATH", "/usr/bin/chromium");
    // Off the runtime's thread: the consumer under test runs on it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the node task ends")
        .expect("node runs (scripts/test.sh installs nodejs and npm)");
    assert!(
        output.status.success(),
        "lighthouse.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("lighthouse.mjs prints JSON");
    for scheme in ["light", "dark"] {
        let mode = &report[scheme];
        assert_eq!(mode["scheme"], scheme, "the page was seen in {scheme} mode");
        for category in ["accessibility", "best-practices"] {
            assert_eq!(
                mode[category].as_u64(),
                Some(100),
                "{category} in {scheme} mode; failing audits: {}",
                serde_json::to_string_pretty(&mode["failing"]).unwrap_or_default()
            );
        }
    }
    tap.cleanup().await;
    turn.close().await;
}
