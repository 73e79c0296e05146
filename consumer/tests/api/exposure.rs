//! What an exposed or rebound consumer answers: the Host check (`ALLOWED_HOSTS`) with and
//! without a login, `/metrics` beside a login beyond loopback, `/health`'s details, private
//! files, masked passwords, and host names with control characters.

use crate::auth_helpers::{client, log_in, session_cookie, Login, NAME, PASSWORD};
use crate::helpers::{fresh_data_dir, spawn_consumer, wait_until, TestConsumer};
use reqwest::header::{COOKIE, HOST};
use reqwest::StatusCode;
use shared::testing::unique_exchange;
use std::os::unix::fs::PermissionsExt;

/// `GET path` on the consumer, with `Host: host`.
async fn get_as(consumer: &TestConsumer, path: &str, host: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", consumer.address))
        .header(HOST, host)
        .send()
        .await
        .expect("sent")
}

/// This machine's address on its network (not loopback): what a request from another machine
/// arrives from, as far as the consumer can tell. Found from the route a datagram would take
/// (nothing is sent).
fn network_address() -> std::net::IpAddr {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    socket
        .connect("192.0.2.1:9")
        .expect("the machine has a route beyond loopback");
    let ip = socket.local_addr().expect("address").ip();
    assert!(!ip.is_loopback(), "a network address, not {ip}");
    ip
}

#[tokio::test]
async fn without_a_login_only_loopback_names_and_listed_names_are_answered() {
    let consumer = spawn_consumer(&unique_exchange("host-check"), &[]).await;
    let port = consumer.port;
    let rebound = format!("rebind.example:{port}");
    for path in [
        "/",
        "/api/hosts",
        "/metrics",
        "/health",
        "/ws",
        "/assets/app.js",
    ] {
        let refused = get_as(&consumer, path, &rebound).await;
        assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
        let body: serde_json::Value = refused.json().await.expect("JSON");
        assert_eq!(body["reason"], "host_not_allowed", "{path}");
        assert!(
            body["error"]
                .as_str()
                .expect("text")
                .contains("ALLOWED_HOSTS"),
            "{body}"
        );
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
    ] {
        assert_eq!(
            get_as(&consumer, "/api/hosts", &host).await.status(),
            StatusCode::OK,
            "{host}"
        );
    }
    let metrics = get_as(&consumer, "/metrics", "localhost").await;
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains("hostpulse_http_host_refused_total 6"),
        "counted: {text}"
    );

    let listed = spawn_consumer(
        &unique_exchange("host-check-listed"),
        &[("ALLOWED_HOSTS", "monitor.example, .fleet.example")],
    )
    .await;
    for host in ["monitor.example:8003", "dash.fleet.example"] {
        assert_eq!(
            get_as(&listed, "/api/hosts", host).await.status(),
            StatusCode::OK,
            "{host}"
        );
    }
    assert_eq!(
        get_as(&listed, "/api/hosts", "rebind.example")
            .await
            .status(),
        StatusCode::MISDIRECTED_REQUEST
    );
}

#[tokio::test]
async fn a_rebound_page_cannot_open_the_socket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let consumer = spawn_consumer(&unique_exchange("host-check-ws"), &[]).await;
    let port = consumer.port;
    let mut request = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .expect("request");
    // The rebound page's own origin, and the name it reaches the consumer by.
    let name = format!("rebind.example:{port}");
    let headers = request.headers_mut();
    headers.insert("Host", HeaderValue::from_str(&name).expect("header"));
    headers.insert(
        "Origin",
        HeaderValue::from_str(&format!("http://{name}")).expect("header"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 421);
        }
        other => panic!(
            "expected a refusal, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

#[tokio::test]
async fn with_a_login_the_session_protects_whatever_the_name() {
    let login = Login::new("host-check-login");
    let consumer = spawn_consumer(&unique_exchange("host-check-login"), &login.vars()).await;
    let rebound = format!("rebind.example:{}", consumer.port);
    // Not 421: the name is not checked, the session is (a rebound page has no cookie).
    assert_eq!(
        get_as(&consumer, "/api/hosts", &rebound).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let cookie = session_cookie(&log_in(&consumer, NAME, PASSWORD).await).expect("logged in");
    let answered = client()
        .get(format!("{}/api/hosts", consumer.address))
        .header(HOST, "monitor.example")
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        answered.status(),
        StatusCode::OK,
        "a proxy's name, logged in"
    );
    // A rebound page in a browser on this machine is a loopback peer: its name keeps the
    // details from it.
    let health: serde_json::Value = get_as(&consumer, "/health", &rebound)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(health, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn health_details_go_to_this_machine_and_to_logged_in_users_only() {
    let login = Login::new("health-details");
    let vars = [
        login.vars(),
        vec![("APP_HOST", "0.0.0.0"), ("METRICS_TOKEN", "scrape-77")],
    ]
    .concat();
    let consumer = spawn_consumer(&unique_exchange("health-details"), &vars).await;
    let local: serde_json::Value = client()
        .get(format!("{}/health", consumer.address))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(local["status"], "ok");
    assert!(local["broker"]["url"].is_string(), "{local}");
    assert!(local["history"].is_object(), "{local}");

    let remote = format!("http://{}:{}", network_address(), consumer.port);
    let from_afar = client()
        .get(format!("{remote}/health"))
        .send()
        .await
        .expect("sent");
    assert_eq!(from_afar.status(), StatusCode::OK);
    let body: serde_json::Value = from_afar.json().await.expect("JSON");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    let ready: serde_json::Value = client()
        .get(format!("{remote}/ready"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ready, serde_json::json!({"ready": true}));

    let cookie = session_cookie(
        &client()
            .post(format!("{remote}/login"))
            .header("origin", &remote)
            .form(&[("name", NAME), ("password", PASSWORD)])
            .send()
            .await
            .expect("sent"),
    )
    .expect("logged in");
    let logged_in: serde_json::Value = client()
        .get(format!("{remote}/health"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert!(logged_in["broker"]["url"].is_string(), "{logged_in}");
}

#[tokio::test]
async fn an_exposed_consumer_with_a_login_guards_metrics_with_its_token() {
    let login = Login::new("metrics-exposed");
    let exposed = [login.vars(), vec![("APP_HOST", "0.0.0.0")]].concat();
    let env = shared::settings::EnvSource::from_pairs(exposed.iter().copied());
    let err = consumer::configuration::Settings::from_env(&env).expect_err("refused");
    let line = err.to_string();
    assert!(
        line.contains("METRICS_TOKEN") && line.contains("METRICS_PUBLIC=true"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1, "{line}");

    let with_token = [exposed.clone(), vec![("METRICS_TOKEN", "scrape-5150")]].concat();
    let consumer = spawn_consumer(&unique_exchange("metrics-exposed"), &with_token).await;
    let url = format!("{}/metrics", consumer.address);
    assert_eq!(
        client().get(&url).send().await.expect("sent").status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = client().get(&url).bearer_auth("scrape-5151").send().await;
    assert_eq!(wrong.expect("sent").status(), StatusCode::UNAUTHORIZED);
    let right = client().get(&url).bearer_auth("scrape-5150").send().await;
    assert_eq!(right.expect("sent").status(), StatusCode::OK);

    let public = [exposed, vec![("METRICS_PUBLIC", "true")]].concat();
    let consumer = spawn_consumer(&unique_exchange("metrics-public"), &public).await;
    let open = client()
        .get(format!("{}/metrics", consumer.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(open.status(), StatusCode::OK, "METRICS_PUBLIC=true");
}

#[tokio::test]
async fn a_fresh_data_dir_and_its_files_are_private() {
    let root = fresh_data_dir();
    let data_dir = format!("{root}/nested/data");
    let login = Login::new("private-files");
    let vars = [
        ("DATA_DIR", data_dir.as_str()),
        ("DASHBOARD_USERS_FILE", login.users_file.as_str()),
        ("HISTORY_URL", "off"),
    ];
    // Tokens without history go to DATA_DIR/api-tokens.json.
    let env = shared::settings::EnvSource::from_pairs(vars.iter().copied());
    let settings = consumer::configuration::Settings::from_env(&env).expect("valid");
    let store = consumer::web::auth::FileTokenStore::open(&settings.auth.data_dir);
    consumer::web::auth::tokens::issue(&store, "grafana", chrono::Utc::now())
        .await
        .expect("issued");
    let sqlite_dir = format!("{root}/history");
    let consumer = spawn_consumer(
        &unique_exchange("private-files"),
        &[("DATA_DIR", sqlite_dir.as_str())],
    )
    .await;
    wait_until("the history store is open", || {
        consumer.history.store().is_some()
    })
    .await;
    let mode = |path: &str| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    for dir in [
        format!("{root}/nested"),
        data_dir.clone(),
        sqlite_dir.clone(),
    ] {
        assert_eq!(mode(&dir), 0o700, "{dir}");
    }
    assert_eq!(mode(&format!("{data_dir}/api-tokens.json")), 0o600);
    let mut files = 0;
    for entry in std::fs::read_dir(&sqlite_dir).expect("listed") {
        let path = entry.expect("entry").path().display().to_string();
        assert_eq!(mode(&path), 0o600, "{path}");
        files += 1;
    }
    assert!(files >= 1, "history.sqlite and its WAL files");
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_host_name_with_control_characters_is_refused_counted_and_never_shown_raw() {
    let exchange = unique_exchange("host-control");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let mut reading: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    reading["host"] = "web-1\n2026-12-01 INFO fake line \u{1b}[31m".into();
    reading["collected_at"] = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    let tap = shared::testing::Tap::bind(&exchange).await;
    tap.publish_raw(&serde_json::to_vec(&reading).expect("JSON"))
        .await;
    let rejected = || {
        consumer
            .metrics
            .rejected
            .with_label_values(&["host_control_characters"])
            .get()
    };
    wait_until("the reading is refused", || rejected() == 1).await;
    let metrics = client()
        .get(format!("{}/metrics", consumer.address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("hostpulse_messages_rejected_total{reason=\"host_control_characters\"} 1"),
        "{metrics}"
    );
    let hosts = client()
        .get(format!("{}/api/hosts", consumer.address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(!hosts.contains("fake line"), "not shown: {hosts}");
    tap.cleanup().await;
}

#[tokio::test]
async fn passwords_in_the_history_url_are_masked_in_health_and_in_the_log() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let database = shared::testing::postgres::PgDatabase::create().await;
    // The test server trusts local connections: the passwords are carried, never needed.
    let mut url = url::Url::parse(&database.url).expect("URL");
    url.set_password(Some("hunter3-in-user"))
        .expect("a password fits");
    url.set_query(Some("password=hunter2-in-query&sslmode=disable"));
    let exchange = unique_exchange("masked-url");
    let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("CONSUMER_ENV_FILE", "/dev/null")
        .env("APP_PORT", "0")
        .env("EXCHANGE_NAME", &exchange)
        .env("AMQP_URL", shared::testing::amqp_url())
        .env("RUST_LOG", "debug")
        .env("HISTORY_URL", url.as_str())
        .env("HISTORY_QUEUE_EXPIRES_SECS", "60")
        .env_remove("DASHBOARD_USERS_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the consumer binary runs");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let mut port = None;
    // Until it says where it listens and where it records history.
    while port.is_none() || !log.iter().any(|l: &String| l.contains("recording history")) {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the consumer starts and records: {log:?}"));
        if let Some(p) = line
            .split("dashboard: http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.trim_end_matches('/').parse::<u16>().ok())
        {
            port = Some(p);
        }
        log.push(line);
    }
    let port = port.expect("a port");
    let health = client()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let _ = child.kill();
    let stderr = child.wait_with_output().expect("stopped").stderr;
    let _ = reader.join();
    log.extend(lines.try_iter());
    log.push(String::from_utf8_lossy(&stderr).into_owned());
    let log = log.join("\n");
    let location: serde_json::Value = serde_json::from_str(&health).expect("JSON");
    let location = location["history"]["location"]
        .as_str()
        .unwrap_or_else(|| panic!("the store's location in {health}"));
    assert!(
        location.contains(":***@") && location.contains("password=***"),
        "{location}"
    );
    assert!(
        log.contains("password=***"),
        "the masked URL is logged: {log}"
    );
    for secret in ["hunter2-in-query", "hunter3-in-user"] {
        assert!(!health.contains(secret), "{secret} in /health: {health}");
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[tokio::test]
async fn behind_a_trusted_local_proxy_health_details_follow_the_forwarded_client() {
    let consumer = spawn_consumer(
        &unique_exchange("health-proxy"),
        &[("TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    let ask = |forwarded: &'static str| {
        client()
            .get(format!("{}/health", consumer.address))
            .header("x-forwarded-for", forwarded)
            .send()
    };
    let remote: serde_json::Value = ask("203.0.113.9")
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(remote, serde_json::json!({"status": "ok"}));
    let local: serde_json::Value = ask("127.0.0.1")
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert!(local["broker"].is_object(), "{local}");
}
