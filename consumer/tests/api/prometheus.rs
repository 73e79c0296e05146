//! Prometheus from Debian's package, scraping test instances of both services: both targets
//! up, and every query of the Grafana dashboard returns data.

use crate::helpers::{spawn_consumer, spawn_publisher};
use shared::testing::unique_exchange;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn repo_file(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn promtool_accepts_the_deploy_config() {
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(repo_file("deploy/prometheus.yml"))
        .output()
        .expect("promtool runs (scripts/test.sh installs prometheus)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Prometheus {
    child: Child,
    dir: std::path::PathBuf,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_prometheus(targets: &[(&str, String)]) -> Prometheus {
    let port = shared::testing::private_broker::free_port();
    let dir = std::env::temp_dir().join(format!("hostpulse-prometheus-{port}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    for (job, target) in targets {
        config.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ));
    }
    std::fs::write(dir.join("prometheus.yml"), config).expect("config");
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus runs (scripts/test.sh installs it)");
    Prometheus {
        child,
        dir,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn query(http: &reqwest::Client, prometheus: &str, expr: &str) -> Vec<serde_json::Value> {
    let answer: serde_json::Value = match http
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
    {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => return Vec::new(),
    };
    answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Every `expr` in the Grafana dashboard.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(repo_file("deploy/grafana/dashboards/hostpulse.json"))
        .expect("dashboard JSON");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() >= 15, "the dashboard has its panels");
    exprs
}

#[tokio::test]
async fn prometheus_scrapes_both_services_and_every_dashboard_query_has_data() {
    let exchange = unique_exchange("prometheus");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "scraped").await;
    let mut targets = vec![
        ("hostpulse-consumer", format!("127.0.0.1:{}", consumer.port)),
        (
            "hostpulse-publisher",
            publisher.address.trim_start_matches("http://").to_owned(),
        ),
    ];
    // RabbitMQ's panels are checked only where its Prometheus plugin is enabled.
    let rabbitmq_plugin = std::net::TcpStream::connect("127.0.0.1:15692").is_ok();
    if rabbitmq_plugin {
        targets.push(("rabbitmq", "127.0.0.1:15692".to_owned()));
    }
    let prometheus = start_prometheus(&targets);
    let http = reqwest::Client::new();

    // Readings flow while Prometheus scrapes, so rates and quantiles have something to show.
    let flow = tokio::spawn(async move {
        for _ in 0..120 {
            publisher.publish().await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let up = query(&http, &prometheus.url, "up == 1").await;
        if up.len() == targets.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "targets not up: {up:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut pending: Vec<String> = dashboard_queries()
        .into_iter()
        .filter(|e| rabbitmq_plugin || !e.contains("rabbitmq_"))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() {
        let mut still = Vec::new();
        for expr in pending {
            let result = query(&http, &prometheus.url, &expr).await;
            let has_number = result.iter().any(|series| {
                series["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(f64::is_finite)
            });
            if !has_number {
                still.push(expr);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dashboard queries without data: {pending:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    flow.abort();
}
