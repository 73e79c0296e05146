//! The notifier against real servers on loopback: what each channel's receiver gets, retries,
//! giving up, a full queue, and the metrics a user would watch.

use super::test_servers::{loopback_tls, HttpServer, Reply, SmtpServer, SmtpTls, PATIENCE};
use super::*;
use chrono::{DateTime, Utc};
use prometheus::Registry;
use shared::settings::EnvSource;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Retries a few milliseconds apart, so a test takes no longer than it must.
fn quick(attempts: usize, attempt_timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        attempts,
        attempt_timeout,
        first_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

/// Long enough that a loaded machine never turns a good answer into a timeout.
const GENEROUS: Duration = Duration::from_secs(15);

fn settings(policy: RetryPolicy) -> NotifySettings {
    NotifySettings {
        retry: policy,
        ..NotifySettings::none()
    }
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint::parse("TEST_URL", url).expect("test URL")
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

fn disk_full(host: &str) -> Notice {
    Notice::new(
        host,
        at("2026-11-23T12:00:05Z"),
        vec![NoticeEvent {
            kind: EventKind::Firing,
            rule: "disk_space".to_owned(),
            item: Some(Item {
                kind: ItemKind::Mount,
                name: "/var".to_owned(),
            }),
            severity: Severity::Critical,
            value: 98.4,
            peak: 98.9,
            threshold: 98.0,
            started_at: at("2026-11-23T12:00:00Z"),
            ended_at: None,
            summary: "Disk /var is 98.4 % full".to_owned(),
            reason: None,
        }],
    )
}

fn cpu_resolved(host: &str) -> Notice {
    Notice::new(
        host,
        at("2026-11-23T12:10:00Z"),
        vec![NoticeEvent {
            kind: EventKind::Resolved,
            rule: "cpu".to_owned(),
            item: None,
            severity: Severity::Warning,
            value: 41.0,
            peak: 93.5,
            threshold: 85.0,
            started_at: at("2026-11-23T12:00:00Z"),
            ended_at: Some(at("2026-11-23T12:09:30Z")),
            summary: "CPU back to 41 % <normal> & calm".to_owned(),
            reason: None,
        }],
    )
}

/// A counter's value; panics if the series does not exist (every known one must).
fn counter(registry: &Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric())
        .find(|metric| {
            labels.iter().all(|(key, value)| {
                metric
                    .get_label()
                    .iter()
                    .any(|l| l.name() == *key && l.value() == *value)
            })
        })
        .map(|metric| metric.get_counter().get_value())
        .unwrap_or_else(|| panic!("no series {name}{labels:?}"))
}

fn sent(registry: &Registry, channel: &str, outcome: &str) -> f64 {
    counter(
        registry,
        "hostpulse_notifications_total",
        &[("channel", channel), ("outcome", outcome)],
    )
}

fn retries(registry: &Registry, channel: &str) -> f64 {
    counter(
        registry,
        "hostpulse_notification_retries_total",
        &[("channel", channel)],
    )
}

#[tokio::test]
async fn every_counter_exists_at_zero_from_the_start() {
    let registry = Registry::new();
    let notifier = Notifier::start(settings(RetryPolicy::default()), &registry).expect("start");
    assert_eq!(notifier.channel_count(), 0);
    for channel in ChannelKind::ALL {
        for outcome in OUTCOMES {
            assert_eq!(sent(&registry, channel.label(), outcome), 0.0);
        }
        assert_eq!(retries(&registry, channel.label()), 0.0);
    }
    // No channel: sending is harmless.
    notifier.send(disk_full("web-1"));
    assert!(notifier.close(PATIENCE).await);
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let error = Notifier::start(settings(RetryPolicy::default()), &Registry::new())
        .err()
        .expect("no runtime here");
    assert!(matches!(error, NotifyError::NoRuntime(_)), "{error}");
}

#[tokio::test]
async fn each_webhook_receives_the_documented_json() {
    let mut first = HttpServer::start(vec![Reply::Status(200)]).await;
    let mut second = HttpServer::start(vec![Reply::Status(204)]).await;
    let mut settings = settings(quick(3, GENEROUS));
    settings.webhooks = vec![
        endpoint(&first.url("/hooks/alerts")),
        endpoint(&format!("http://hook:pa55@{}/other", second.addr)),
    ];
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(disk_full("web-1"));

    let request = first.next_request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/alerts");
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["host"], "web-1");
    assert_eq!(body["at"], "2026-11-23T12:00:05Z");
    let event = &body["events"][0];
    assert_eq!(event["kind"], "firing");
    assert_eq!(event["rule"], "disk_space");
    assert_eq!(event["item"]["kind"], "mount");
    assert_eq!(event["item"]["name"], "/var");
    assert_eq!(event["severity"], "critical");
    assert_eq!(event["value"], 98.4);
    assert_eq!(event["peak"], 98.9);
    assert_eq!(event["threshold"], 98.0);
    assert_eq!(event["started_at"], "2026-11-23T12:00:00Z");
    assert!(event["ended_at"].is_null());
    assert_eq!(event["summary"], "Disk /var is 98.4 % full");
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1));

    let other = second.next_request().await;
    assert_eq!(other.json(), body);
    // hook:pa55 from the URL, as HTTP basic auth.
    assert_eq!(other.header("authorization"), Some("Basic aG9vazpwYTU1"));
    assert_eq!(request.header("authorization"), None);
    assert!(notifier.close(PATIENCE).await);
    assert_eq!(sent(&registry, "webhook", "sent"), 2.0);
    assert_eq!(sent(&registry, "webhook", "failed"), 0.0);
}

#[tokio::test]
async fn ntfy_gets_title_priority_and_tags_and_the_token() {
    let mut server = HttpServer::start(vec![Reply::Status(200)]).await;
    let mut settings = settings(quick(3, GENEROUS));
    settings.ntfy = Some(NtfySettings {
        endpoint: endpoint(&server.url("/hostpulse-alerts")),
        token: Some("tk_test".to_owned().into()),
    });
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");

    notifier.send(disk_full("web-1"));
    let firing = server.next_request().await;
    assert_eq!(firing.path, "/hostpulse-alerts");
    assert_eq!(
        firing.header("title"),
        Some("CRITICAL web-1: disk_space /var")
    );
    assert_eq!(firing.header("priority"), Some("urgent"));
    assert_eq!(
        firing.header("tags"),
        Some("rotating_light,hostpulse,firing")
    );
    assert_eq!(firing.header("authorization"), Some("Bearer tk_test"));
    assert_eq!(
        firing.text(),
        "FIRING critical disk_space /var: Disk /var is 98.4 % full (value 98.4, threshold 98, \
         peak 98.9, since 2026-11-23T12:00:00Z)"
    );

    notifier.send(cpu_resolved("web-1"));
    let resolved = server.next_request().await;
    assert_eq!(resolved.header("title"), Some("RESOLVED web-1: cpu"));
    assert_eq!(resolved.header("priority"), Some("low"));
    assert_eq!(
        resolved.header("tags"),
        Some("white_check_mark,hostpulse,resolved")
    );
    assert!(notifier.close(PATIENCE).await);
    assert_eq!(sent(&registry, "ntfy", "sent"), 2.0);
}

#[tokio::test]
async fn slack_gets_escaped_text() {
    let mut server = HttpServer::start(vec![Reply::Status(200)]).await;
    let mut settings = settings(quick(3, GENEROUS));
    settings.slack = Some(endpoint(&server.url("/services/T1/B2/secret")));
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(cpu_resolved("db-2"));

    let request = server.next_request().await;
    assert_eq!(request.header("content-type"), Some("application/json"));
    let text = request.json()["text"]
        .as_str()
        .expect("a text field")
        .to_owned();
    assert!(text.starts_with("*RESOLVED db-2: cpu*\n• RESOLVED warning cpu: "));
    assert!(
        text.contains("CPU back to 41 % &lt;normal&gt; &amp; calm"),
        "{text}"
    );
    assert!(text.ends_with("from 2026-11-23T12:00:00Z to 2026-11-23T12:09:30Z)"));
    assert!(notifier.close(PATIENCE).await);
    assert_eq!(sent(&registry, "slack", "sent"), 1.0);
}

#[tokio::test]
async fn two_server_errors_then_success_delivers_once_after_two_retries() {
    let mut server = HttpServer::start(vec![
        Reply::Status(500),
        Reply::Status(503),
        Reply::Status(200),
    ])
    .await;
    let mut settings = settings(quick(5, GENEROUS));
    settings.webhooks = vec![endpoint(&server.url("/hook"))];
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(disk_full("web-1"));
    for _ in 0..3 {
        server.next_request().await;
    }
    assert!(notifier.close(PATIENCE).await);

    let requests = server.requests();
    assert_eq!(requests.len(), 3, "stops at the first success");
    assert!(requests.iter().all(|r| r.body == requests[0].body));
    assert_eq!(sent(&registry, "webhook", "sent"), 1.0);
    assert_eq!(sent(&registry, "webhook", "failed"), 0.0);
    assert_eq!(retries(&registry, "webhook"), 2.0);
}

#[tokio::test]
async fn a_lasting_refusal_is_not_retried() {
    let server = HttpServer::start(vec![Reply::Status(404)]).await;
    let mut settings = settings(quick(5, GENEROUS));
    settings.webhooks = vec![endpoint(&server.url("/gone"))];
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(disk_full("web-1"));
    assert!(notifier.close(PATIENCE).await);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(sent(&registry, "webhook", "failed"), 1.0);
    assert_eq!(retries(&registry, "webhook"), 0.0);
}

#[tokio::test]
async fn a_silent_endpoint_is_given_up_on_while_another_channel_delivers() {
    let silent = HttpServer::start(vec![Reply::Silent]).await;
    let mut ntfy = HttpServer::start(vec![Reply::Status(200)]).await;
    let mut settings = settings(quick(3, Duration::from_secs(1)));
    settings.webhooks = vec![endpoint(&silent.url("/never"))];
    settings.ntfy = Some(NtfySettings {
        endpoint: endpoint(&ntfy.url("/topic")),
        token: None,
    });
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    // `send` is not async: it cannot wait on either endpoint.
    notifier.send(disk_full("web-1"));

    assert_eq!(
        ntfy.next_request().await.header("title"),
        Some("CRITICAL web-1: disk_space /var")
    );
    assert!(notifier.close(PATIENCE).await);
    assert_eq!(silent.requests().len(), 3, "exactly the bounded attempts");
    assert_eq!(sent(&registry, "webhook", "failed"), 1.0);
    assert_eq!(sent(&registry, "webhook", "sent"), 0.0);
    assert_eq!(retries(&registry, "webhook"), 2.0);
    assert_eq!(sent(&registry, "ntfy", "sent"), 1.0);
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_them() {
    let mut silent = HttpServer::start(vec![Reply::Silent]).await;
    let mut settings = settings(quick(1, Duration::from_millis(500)));
    settings.webhooks = vec![endpoint(&silent.url("/stuck"))];
    settings.queue_capacity = 2;
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");

    notifier.send(disk_full("host-1"));
    // The channel is now busy with host-1; five more arrive while it waits.
    assert_eq!(silent.next_request().await.json()["host"], "host-1");
    for n in 2..=6 {
        notifier.send(disk_full(&format!("host-{n}")));
    }
    assert!(notifier.close(PATIENCE).await);

    let hosts: Vec<String> = silent
        .requests()
        .iter()
        .map(|r| r.json()["host"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(hosts, ["host-1", "host-5", "host-6"], "the newest are kept");
    assert_eq!(sent(&registry, "webhook", "dropped"), 3.0);
    assert_eq!(sent(&registry, "webhook", "failed"), 3.0);
}

#[tokio::test]
async fn an_email_arrives_with_subject_and_body() {
    let mut smtp = SmtpServer::start().await;
    let env = EnvSource::from_pairs([
        (
            "ALERT_SMTP_URL",
            format!("smtp://127.0.0.1:{}?tls=none", smtp.addr.port()),
        ),
        (
            "ALERT_EMAIL_FROM",
            "hostpulse <alerts@example.com>".to_owned(),
        ),
        (
            "ALERT_EMAIL_TO",
            "ops@example.com, On call <oncall@example.com>".to_owned(),
        ),
    ]);
    let mut settings = NotifySettings::from_env(&env).expect("valid settings");
    settings.retry = quick(3, GENEROUS);
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(disk_full("web-1"));

    let mail = smtp.next_mail().await;
    assert_eq!(mail.from, "alerts@example.com");
    assert_eq!(mail.to, ["ops@example.com", "oncall@example.com"]);
    assert_eq!(
        mail.header("subject").as_deref(),
        Some("CRITICAL web-1: disk_space /var")
    );
    let body = mail.body().replace("\r\n", "\n");
    assert!(
        body.starts_with(
            "FIRING critical disk_space /var: Disk /var is 98.4 % full (value 98.4, \
             threshold 98, peak 98.9, since 2026-11-23T12:00:00Z)\n"
        ),
        "{body}"
    );
    assert!(
        body.contains("hostpulse, host web-1 at 2026-11-23T12:00:05Z"),
        "{body}"
    );
    assert!(notifier.close(PATIENCE).await);
    assert_eq!(sent(&registry, "email", "sent"), 1.0);
}

#[tokio::test]
async fn smtp_without_tls_none_never_sends_in_the_clear() {
    // The receiver offers no STARTTLS, as a downgrading attacker would.
    let mut smtp = SmtpServer::start().await;
    let env = EnvSource::from_pairs([
        (
            "ALERT_SMTP_URL",
            format!("smtp://127.0.0.1:{}", smtp.addr.port()),
        ),
        ("ALERT_EMAIL_FROM", "alerts@example.com".to_owned()),
        ("ALERT_EMAIL_TO", "ops@example.com".to_owned()),
    ]);
    let mut settings = NotifySettings::from_env(&env).expect("valid settings");
    settings.retry = quick(2, GENEROUS);
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(disk_full("web-1"));
    assert!(notifier.close(PATIENCE).await);
    assert!(smtp.connections() >= 1, "the client did connect");
    assert!(smtp.received().is_none(), "no mail went out unencrypted");
    assert_eq!(sent(&registry, "email", "failed"), 1.0);
    assert_eq!(sent(&registry, "email", "sent"), 0.0);
}

/// E-mail settings for the server at `url`, trusting `ca_pem` when given (written to a file,
/// as a user would).
fn email_env(url: &str, ca_pem: Option<&str>) -> (EnvSource, Option<std::path::PathBuf>) {
    let mut env = EnvSource::from_pairs([
        ("ALERT_SMTP_URL", url.to_owned()),
        ("ALERT_EMAIL_FROM", "alerts@example.com".to_owned()),
        ("ALERT_EMAIL_TO", "ops@example.com".to_owned()),
    ]);
    let ca_file = ca_pem.map(|pem| {
        static FILES: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "hostpulse-notify-ca-{}-{}.pem",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, pem).expect("write the CA file");
        env.set("ALERT_SMTP_CA_FILE", path.to_string_lossy());
        path
    });
    (env, ca_file)
}

#[tokio::test]
async fn email_over_starttls_is_encrypted_and_logs_in_with_the_url_credentials() {
    let (ca_pem, acceptor) = loopback_tls();
    let mut smtp = SmtpServer::start_with(SmtpTls::StartTls(acceptor)).await;
    let url = format!(
        "smtp://alerts%40example.com:p%40ss%3Aw0rd@127.0.0.1:{}",
        smtp.addr.port()
    );
    let (env, ca_file) = email_env(&url, Some(&ca_pem));
    let mut settings = NotifySettings::from_env(&env).expect("valid settings");
    settings.retry = quick(3, GENEROUS);
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(disk_full("web-1"));

    let mail = smtp.next_mail().await;
    assert!(mail.encrypted, "sent only after STARTTLS");
    assert_eq!(
        mail.login,
        Some(("alerts@example.com".to_owned(), "p@ss:w0rd".to_owned()))
    );
    assert_eq!(
        mail.header("subject").as_deref(),
        Some("CRITICAL web-1: disk_space /var")
    );
    assert!(notifier.close(PATIENCE).await);
    assert_eq!(sent(&registry, "email", "sent"), 1.0);
    if let Some(path) = ca_file {
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::test]
async fn email_over_smtps_is_encrypted_from_the_start() {
    let (ca_pem, acceptor) = loopback_tls();
    let mut smtp = SmtpServer::start_with(SmtpTls::Wrapper(acceptor)).await;
    let url = format!("smtps://127.0.0.1:{}", smtp.addr.port());
    let (env, ca_file) = email_env(&url, Some(&ca_pem));
    let mut settings = NotifySettings::from_env(&env).expect("valid settings");
    settings.retry = quick(3, GENEROUS);
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(cpu_resolved("db-2"));

    let mail = smtp.next_mail().await;
    assert!(mail.encrypted);
    assert_eq!(mail.login, None, "no credentials in the URL, no AUTH");
    assert_eq!(
        mail.header("subject").as_deref(),
        Some("RESOLVED db-2: cpu")
    );
    assert!(notifier.close(PATIENCE).await);
    if let Some(path) = ca_file {
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::test]
async fn a_certificate_nobody_vouches_for_is_refused() {
    let (_, acceptor) = loopback_tls();
    let mut smtp = SmtpServer::start_with(SmtpTls::StartTls(acceptor)).await;
    let url = format!("smtp://user:secret@127.0.0.1:{}", smtp.addr.port());
    let (env, _) = email_env(&url, None);
    let mut settings = NotifySettings::from_env(&env).expect("valid settings");
    settings.retry = quick(1, GENEROUS);
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(disk_full("web-1"));
    assert!(notifier.close(PATIENCE).await);
    assert_eq!(smtp.connections(), 1);
    assert!(
        smtp.received().is_none(),
        "nothing sent to an unverified server"
    );
    assert_eq!(sent(&registry, "email", "failed"), 1.0);
}

#[tokio::test]
async fn a_closed_notifier_sends_nothing_more() {
    let server = HttpServer::start(vec![Reply::Status(200)]).await;
    let mut settings = settings(quick(1, GENEROUS));
    settings.webhooks = vec![endpoint(&server.url("/hook"))];
    let registry = Registry::new();
    let notifier = std::sync::Arc::new(Notifier::start(settings, &registry).expect("start"));
    notifier.send(disk_full("before"));
    assert!(notifier.close(PATIENCE).await);
    notifier.send(disk_full("after"));
    assert!(notifier.close(PATIENCE).await, "closing twice is harmless");
    let hosts: Vec<serde_json::Value> = server
        .requests()
        .iter()
        .map(|r| r.json()["host"].clone())
        .collect();
    assert_eq!(hosts, ["before"]);
}

/// Log lines written while the test runs on this thread.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

// A current-thread runtime (the default), so the channel tasks log on the capturing thread.
#[tokio::test]
async fn logs_show_failures_but_never_a_secret() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber =
        shared::telemetry::get_subscriber("debug", move || sink.clone(), false).expect("filter");
    let _lines = shared::testing::log_lines_stay_on();
    let _guard = tracing::subscriber::set_default(subscriber);

    let silent = HttpServer::start(vec![Reply::Silent]).await;
    let failing = HttpServer::start(vec![Reply::Status(500)]).await;
    let (_, acceptor) = loopback_tls();
    let smtp = SmtpServer::start_with(SmtpTls::StartTls(acceptor)).await;
    let hook = format!("http://bob:s3cret@{}/hook/t0ken?key=k3y", silent.addr);
    let topic = format!("http://{}/pr1vate-topic", failing.addr);
    let mail = format!("smtp://bob:m4ilpass@127.0.0.1:{}", smtp.addr.port());
    let (mut env, _) = email_env(&mail, None);
    env.set("ALERT_WEBHOOK_URL", hook);
    env.set("ALERT_NTFY_URL", topic);
    env.set("ALERT_NTFY_TOKEN", "tk_s3cret");
    let mut settings = NotifySettings::from_env(&env).expect("valid settings");
    settings.retry = quick(2, Duration::from_secs(1));
    let registry = Registry::new();
    let notifier = Notifier::start(settings, &registry).expect("start");
    notifier.send(disk_full("web-1"));
    assert!(notifier.close(PATIENCE).await);

    let text = logs.text();
    assert_eq!(text.matches("notification given up").count(), 3, "{text}");
    assert!(text.contains("notification attempt failed"), "{text}");
    assert!(text.contains("answered HTTP 500"), "{text}");
    for secret in ["bob", "s3cret", "t0ken", "k3y", "pr1vate-topic", "m4ilpass"] {
        assert!(!text.contains(secret), "{secret} in the logs:\n{text}");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_with_secrets_is_logged_without_them() {
    // A port nobody listens on: bind, note it, close.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let endpoint = endpoint(&format!(
        "http://bob:s3cret@127.0.0.1:{port}/hook/t0ken?key=k3y"
    ));
    let http = reqwest::Client::new();
    let error = channels::Channel::Webhook(endpoint.clone())
        .deliver(&http, &disk_full("web-1"), GENEROUS)
        .await
        .expect_err("nothing listens");
    assert!(error.is_retryable());
    let logged = format!("{error} {}", endpoint.shown());
    for secret in ["bob", "s3cret", "t0ken", "k3y"] {
        assert!(!logged.contains(secret), "{secret} in {logged}");
    }
}

#[test]
fn the_readme_example_is_a_valid_notice() {
    let readme = include_str!("../../../../docs/alerts.md");
    let section = readme
        .split("## Notifications")
        .nth(1)
        .expect("docs/alerts.md has a Notifications section");
    let json = section
        .split("```json")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/alerts.md has a json example");
    let notice: Notice = serde_json::from_str(json).expect("the example parses as a Notice");
    assert_eq!(notice.version, NOTICE_VERSION);
    assert_eq!(
        serde_json::to_value(&notice).expect("serialises"),
        serde_json::from_str::<serde_json::Value>(json).expect("JSON"),
        "the example shows every field exactly as sent"
    );
}
