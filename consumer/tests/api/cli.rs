//! The consumer binary itself: `hash-password`, `token create|list|revoke`, and the refusal
//! to serve an open dashboard beyond this machine.

use crate::auth_helpers::{client, log_in, Login, NAME};
use crate::helpers::spawn_consumer;
use reqwest::StatusCode;
use shared::testing::unique_exchange;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs the real binary with `vars` (and no settings file), feeding `stdin`.
fn consumer_blocking(args: &[&str], vars: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .args(args)
        .env("CONSUMER_ENV_FILE", "/dev/null")
        .env_remove("DASHBOARD_USERS_FILE")
        .env_remove("DASHBOARD_PUBLIC")
        .env_remove("METRICS_TOKEN")
        .env_remove("METRICS_PUBLIC")
        .envs(vars.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the consumer binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("written");
    child.wait_with_output().expect("it exits")
}

/// [`consumer_blocking`] on a blocking thread, so that a consumer the test runs in-process
/// (on this runtime) goes on meanwhile: the command may wait for it (the store's migrations).
async fn consumer(args: &[&str], vars: &[(&str, &str)], stdin: &str) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        consumer_blocking(&args, &vars, &stdin)
    })
    .await
    .expect("the command ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn hash_password_prints_a_hash_that_logs_in() {
    let out = consumer(&["hash-password"], &[], "s3cret from stdin\n").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hash = text(&out.stdout).trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!text(&out.stderr).contains("s3cret"));

    let login = Login::new("cli-hash");
    std::fs::write(&login.users_file, format!("{NAME}:{hash}\n")).expect("users file");
    let consumer_app = spawn_consumer(&unique_exchange("cli-hash"), &login.vars()).await;
    let response = log_in(&consumer_app, NAME, "s3cret from stdin").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let empty = consumer(&["hash-password"], &[], "\n").await;
    assert_eq!(empty.status.code(), Some(2));
    assert!(text(&empty.stderr).contains("empty"));
}

/// `consumer token create`, then the token on a running consumer's API, `list`, `revoke`,
/// with the consumer and the command line both on the history store `history` names.
async fn tokens_from_the_command_line(test: &str, history: &[(&'static str, &str)]) {
    let login = Login::new(test);
    let vars = [login.vars().as_slice(), history].concat();
    let consumer_app = spawn_consumer(&unique_exchange(test), &vars).await;
    let cli = [&[("DATA_DIR", login.data_dir.as_str())], history].concat();
    let created = consumer(&["token", "create", "--name", "nightly report"], &cli, "").await;
    assert!(created.status.success(), "{}", text(&created.stderr));
    let secret = text(&created.stdout).trim().to_owned();
    assert!(secret.starts_with("hp_"), "{secret}");
    assert!(!text(&created.stderr).contains(&secret[3..]));
    let api = |token: String| {
        let url = format!("{}/api/hosts", consumer_app.address);
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("sent")
                .status()
        }
    };
    assert_eq!(api(secret.clone()).await, StatusCode::OK);
    assert!(
        !std::path::Path::new(&login.data_dir)
            .join("api-tokens.json")
            .exists(),
        "with a history store, no token file"
    );

    // Many uses are noted in memory, one row to write however many requests: the last use is
    // written in a batch, at the latest when the consumer stops; then another process lists it.
    for _ in 0..20 {
        assert_eq!(api(secret.clone()).await, StatusCode::OK);
    }
    consumer_app.stop.stop(true).await;
    consumer_app
        .stopped
        .await
        .expect("ran")
        .expect("stopped cleanly");
    let listed = consumer(&["token", "list"], &cli, "").await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    assert!(
        listing.starts_with("ID") && listing.contains("LAST USED"),
        "{listing}"
    );
    let line = listing
        .lines()
        .find(|l| l.contains("nightly report"))
        .unwrap_or_else(|| panic!("listed: {listing}"));
    assert_ne!(
        line.split_whitespace().nth(2),
        Some("-"),
        "last use shown: {line}"
    );
    assert!(
        !listing.contains(&secret[3..]),
        "the secret is never listed"
    );
    // The consumer again, on the same store, for the revoke.
    let consumer_app = spawn_consumer(&unique_exchange(test), &vars).await;
    let api = |token: String| {
        let url = format!("{}/api/hosts", consumer_app.address);
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("sent")
                .status()
        }
    };
    assert_eq!(api(secret.clone()).await, StatusCode::OK);
    let id = line.split_whitespace().next().expect("an id").to_owned();

    let revoked = consumer(&["token", "revoke", &id], &cli, "").await;
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert_eq!(
        api(secret.clone()).await,
        StatusCode::UNAUTHORIZED,
        "refused from the next request"
    );
    let again = consumer(&["token", "revoke", &id], &cli, "").await;
    assert_eq!(again.status.code(), Some(2));
    let listed = consumer(&["token", "list"], &cli, "").await;
    assert!(!text(&listed.stdout).contains("nightly report"));
    for out in [&revoked, &again, &listed] {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains(&secret[3..]), "{all}");
    }
}

#[tokio::test]
async fn tokens_from_the_binary_work_on_a_running_consumer_with_sqlite_history() {
    tokens_from_the_command_line("cli-token-sqlite", &[]).await;
}

#[tokio::test]
async fn tokens_from_the_binary_work_on_a_running_consumer_with_postgres_history() {
    let db = shared::testing::postgres::PgDatabase::create().await;
    tokens_from_the_command_line("cli-token-pg", &[("HISTORY_URL", db.url.as_str())]).await;
}

#[tokio::test]
async fn tokens_from_the_binary_work_on_a_running_consumer_without_history() {
    let login = Login::new("cli-token-file");
    let off = [("HISTORY_URL", "off")];
    let vars = [login.vars().as_slice(), &off].concat();
    let consumer_app = spawn_consumer(&unique_exchange("cli-token-file"), &vars).await;
    let cli = [("DATA_DIR", login.data_dir.as_str()), off[0]];
    let created = consumer(&["token", "create", "--name", "no history"], &cli, "").await;
    assert!(created.status.success(), "{}", text(&created.stderr));
    let secret = text(&created.stdout).trim().to_owned();
    assert!(std::path::Path::new(&login.data_dir)
        .join("api-tokens.json")
        .exists());
    let status = |secret: String| {
        let url = format!("{}/api/hosts", consumer_app.address);
        async move {
            client()
                .get(url)
                .bearer_auth(secret)
                .send()
                .await
                .expect("sent")
                .status()
        }
    };
    assert_eq!(status(secret.clone()).await, StatusCode::OK);
    let listing = text(&consumer(&["token", "list"], &cli, "").await.stdout);
    let id = listing
        .lines()
        .find(|l| l.contains("no history"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("listed: {listing}"))
        .to_owned();
    let revoked = consumer(&["token", "revoke", &id], &cli, "").await;
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert_eq!(status(secret).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_file_from_an_earlier_version_moves_into_the_history_store() {
    let login = Login::new("cli-token-import");
    let file = consumer::web::auth::FileTokenStore::open(std::path::Path::new(&login.data_dir));
    let (_, secret) = consumer::web::auth::tokens::issue(&file, "from before", chrono::Utc::now())
        .await
        .expect("issued");
    let consumer_app = spawn_consumer(&unique_exchange("cli-token-import"), &login.vars()).await;
    let status = |secret: String| {
        let url = format!("{}/api/hosts", consumer_app.address);
        async move {
            client()
                .get(url)
                .bearer_auth(secret)
                .send()
                .await
                .expect("sent")
                .status()
        }
    };
    assert_eq!(status(secret.clone()).await, StatusCode::OK, "still works");
    let dir = std::path::Path::new(&login.data_dir);
    assert!(!dir.join("api-tokens.json").exists(), "imported once");
    assert!(dir.join("api-tokens.json.imported").exists());

    let cli = [("DATA_DIR", login.data_dir.as_str())];
    let listing = text(&consumer(&["token", "list"], &cli, "").await.stdout);
    let id = listing
        .lines()
        .find(|l| l.contains("from before"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("listed from the store: {listing}"))
        .to_owned();
    let revoked = consumer(&["token", "revoke", &id], &cli, "").await;
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert_eq!(status(secret).await, StatusCode::UNAUTHORIZED);
}

#[test]
fn an_open_dashboard_is_refused_beyond_loopback_unless_told() {
    // The port is held on loopback, so a start that passes the check fails to bind instead of
    // listening on every address.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = held.local_addr().expect("address").port().to_string();
    let exchange = unique_exchange("cli-public");
    let base = [
        ("APP_HOST", "0.0.0.0"),
        ("APP_PORT", port.as_str()),
        ("EXCHANGE_NAME", exchange.as_str()),
    ];

    let refused = consumer_blocking(&[], &base, "");
    assert_eq!(refused.status.code(), Some(2));
    let line = text(&refused.stderr);
    assert_eq!(line.trim().lines().count(), 1, "{line}");
    assert!(
        line.contains("APP_HOST") && line.contains("DASHBOARD_USERS_FILE"),
        "{line}"
    );
    assert!(line.contains("DASHBOARD_PUBLIC=true"), "{line}");

    let public = [base.as_slice(), &[("DASHBOARD_PUBLIC", "true")]].concat();
    let allowed = consumer_blocking(&[], &public, "");
    assert_eq!(allowed.status.code(), Some(1), "{}", text(&allowed.stderr));
    assert!(text(&allowed.stderr).contains("cannot listen"));

    let login = Login::new("cli-public");
    let with_login = [
        base.as_slice(),
        &[("DASHBOARD_USERS_FILE", login.users_file.as_str())],
    ]
    .concat();
    // A login guards the page, not /metrics: that needs its own token, or to be said public.
    let refused = consumer_blocking(&[], &with_login, "");
    assert_eq!(refused.status.code(), Some(2));
    let line = text(&refused.stderr);
    assert_eq!(line.trim().lines().count(), 1, "{line}");
    assert!(
        line.contains("METRICS_TOKEN") && line.contains("METRICS_PUBLIC=true"),
        "{line}"
    );
    let with_login = [with_login.as_slice(), &[("METRICS_TOKEN", "scrape-1")]].concat();
    let allowed = consumer_blocking(&[], &with_login, "");
    assert_eq!(allowed.status.code(), Some(1), "{}", text(&allowed.stderr));
    assert!(text(&allowed.stderr).contains("cannot listen"));
}

#[tokio::test]
async fn no_secret_reaches_the_log_even_at_debug() {
    use std::io::BufRead;
    let login = Login::new("cli-log");
    let store = consumer::web::auth::FileTokenStore::open(std::path::Path::new(&login.data_dir));
    let (_, token) = consumer::web::auth::tokens::issue(&store, "logged?", chrono::Utc::now())
        .await
        .expect("issued");
    let hash = std::fs::read_to_string(&login.users_file).expect("users file");
    let hash = hash.trim().split_once(':').expect("name:hash").1.to_owned();
    let exchange = unique_exchange("cli-log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("CONSUMER_ENV_FILE", "/dev/null")
        .env("APP_PORT", "0")
        .env("EXCHANGE_NAME", &exchange)
        .env("AMQP_URL", shared::testing::amqp_url())
        .env("RUST_LOG", "debug")
        .env("METRICS_TOKEN", "metrics-secret-xyz")
        .env("HISTORY_QUEUE_EXPIRES_SECS", "60")
        .envs(login.vars())
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
    let port = loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the consumer starts and says where");
        let port = line
            .split("dashboard: http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.trim_end_matches('/').parse::<u16>().ok());
        log.push(line);
        if let Some(port) = port {
            break port;
        }
    };
    let address = format!("http://127.0.0.1:{port}");
    let form = |password: &'static str| {
        client()
            .post(format!("{address}/login"))
            .header("origin", &address)
            .form(&[("name", NAME), ("password", password)])
            .send()
    };
    assert_eq!(form("wrong-pass-123").await.expect("sent").status(), 401);
    let accepted = form(crate::auth_helpers::PASSWORD).await.expect("sent");
    let cookie = crate::auth_helpers::session_cookie(&accepted).expect("cookie");
    let session = cookie.split_once('=').expect("name=value").1.to_owned();
    for (header, value) in [
        ("cookie", cookie.clone()),
        ("authorization", format!("Bearer {token}")),
        ("authorization", "Bearer hp_not-a-token".to_owned()),
    ] {
        let _ = client()
            .get(format!("{address}/api/hosts"))
            .header(header, value)
            .send()
            .await
            .expect("sent");
    }
    let metrics = client()
        .get(format!("{address}/metrics"))
        .bearer_auth("metrics-secret-xyz")
        .send()
        .await
        .expect("sent");
    assert_eq!(metrics.status(), 200);
    let _ = client()
        .post(format!("{address}/logout"))
        .header("origin", &address)
        .header("cookie", &cookie)
        .send()
        .await
        .expect("sent");
    let _ = child.kill();
    let stderr = child.wait_with_output().expect("stopped").stderr;
    let _ = reader.join();
    log.extend(lines.try_iter());
    log.push(text(&stderr));
    let log = log.join("\n");
    assert!(
        log.contains("failed login") && log.contains("logged in"),
        "{log}"
    );
    for secret in [
        crate::auth_helpers::PASSWORD,
        "wrong-pass-123",
        &session,
        &token,
        &token[3..],
        &hash,
        "metrics-secret-xyz",
    ] {
        assert!(!log.contains(secret), "a secret in the log: {secret}");
    }
}

/// The command line and a consumer starting on one fresh SQLite file migrate it at the same
/// moment (sqlx takes no lock across processes on SQLite): every one of them opens the store,
/// round after round.
#[tokio::test]
async fn the_command_line_and_a_starting_consumer_migrate_one_fresh_file_at_once() {
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().display().to_string();
        let cli = [("DATA_DIR", data_dir.as_str())];
        let env = shared::settings::EnvSource::from_pairs([("DATA_DIR", data_dir.clone())]);
        let settings =
            consumer::history::store::HistorySettings::from_env(&env).expect("valid settings");
        // Two processes and this one, started together.
        let (first, second, here) = tokio::join!(
            consumer(&["token", "list"], &cli, ""),
            consumer(&["token", "list"], &cli, ""),
            consumer::history::store::Store::open(&settings),
        );
        for out in [&first, &second] {
            assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        }
        let store = here
            .unwrap_or_else(|e| panic!("round {round}: {e}"))
            .expect("history is on");
        store.close().await;
    }
}
