//! Issue #24 (login): the brake counts before it judges, under a burst, on the real binary
//! (its memory read from /proc); the window on the consumer's clock; `TRUSTED_PROXIES` for
//! the brake and the log; `Secure` cookies behind a TLS proxy; weak users files refused.

use crate::auth_helpers::{
    client, log_in, session_cookie, spawn_with_clock, Login, NAME, PASSWORD,
};
use crate::helpers::{spawn_consumer, TestConsumer};
use reqwest::header::{ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use shared::testing::{metric, unique_exchange};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// Wrong logins sent at once in the burst.
const BURST: usize = 64;
/// The default `LOGIN_MAX_ATTEMPTS`.
const ALLOWANCE: usize = 5;

/// The real consumer binary, killed when dropped; its log lines arrive on `lines`.
struct Binary {
    child: Child,
    address: String,
    lines: Receiver<String>,
}

impl Binary {
    /// Starts the binary with `vars` and waits until it says where it serves.
    fn start(test: &str, vars: &[(&str, &str)]) -> Self {
        let exchange = unique_exchange(test);
        let mut child = Command::new(env!("CARGO_BIN_EXE_consumer"))
            .env("CONSUMER_ENV_FILE", "/dev/null")
            .env("APP_PORT", "0")
            .env("EXCHANGE_NAME", &exchange)
            .env("AMQP_URL", shared::testing::amqp_url())
            .env("HISTORY_URL", "off")
            .env("HISTORY_QUEUE_EXPIRES_SECS", "60")
            .env("RUST_LOG", "info")
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the consumer binary runs");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let port = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .expect("the consumer starts and says where");
            if let Some(port) = line
                .split("dashboard: http://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('/').parse::<u16>().ok())
            {
                break port;
            }
        };
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            lines,
        }
    }

    /// `VmRSS` and `VmHWM` (peak) of the process, in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} in {status}"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The first log line containing `needle`, waiting up to 10 s for it.
    fn log_line(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("a log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Posts the login form as the page would, with `X-Forwarded-For` when given.
    async fn log_in(&self, password: &str, forwarded_for: Option<&str>) -> reqwest::Response {
        let mut request = client()
            .post(format!("{}/login", self.address))
            .header(ORIGIN, &self.address)
            .form(&[("name", NAME), ("password", password)]);
        if let Some(forwarded) = forwarded_for {
            request = request.header("x-forwarded-for", forwarded);
        }
        request.send().await.expect("sent")
    }

    async fn metrics(&self) -> String {
        client()
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("text")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends [`BURST`] wrong logins at once; returns how many got 401 and how many 429.
async fn burst(send: impl Fn() -> reqwest::RequestBuilder) -> (usize, usize) {
    let answers = futures_util::future::join_all((0..BURST).map(|_| send().send())).await;
    let mut counts = (0, 0);
    for answer in answers {
        match answer.expect("answered").status() {
            StatusCode::UNAUTHORIZED => counts.0 += 1,
            StatusCode::TOO_MANY_REQUESTS => counts.1 += 1,
            other => panic!("a wrong login answered {other}"),
        }
    }
    counts
}

#[tokio::test]
async fn a_burst_of_wrong_logins_is_cut_at_the_allowance_and_memory_stays_small() {
    let login = Login::new("login-burst");
    let binary = Binary::start("login-burst", &login.vars());
    let (rss_before, _) = binary.memory_kib();
    let address = binary.address.clone();
    let (judged, refused) = burst(|| {
        client()
            .post(format!("{address}/login"))
            .header(ORIGIN, &address)
            .form(&[("name", NAME), ("password", "not-the-password")])
    })
    .await;
    let (_, peak) = binary.memory_kib();

    assert!(
        (1..=ALLOWANCE).contains(&judged),
        "{judged} wrong passwords judged of {BURST}"
    );
    assert_eq!(judged + refused, BURST);
    let growth_mib = peak.saturating_sub(rss_before) / 1024;
    assert!(
        growth_mib < 150,
        "the consumer's memory grew by {growth_mib} MiB (from {rss_before} KiB to a peak of {peak} KiB)"
    );
    let text = binary.metrics().await;
    assert_eq!(
        metric(&text, "hostpulse_login_failures_total"),
        Some(judged as f64)
    );
    let throttled = metric(&text, "hostpulse_login_throttled_total").expect("counted");
    let busy = metric(&text, "hostpulse_login_busy_total").expect("counted");
    assert_eq!(throttled + busy, refused as f64);
    assert!(throttled >= (BURST - ALLOWANCE) as f64);

    // The right password is refused unchecked too, until the window lets one through.
    let braked = binary.log_in(PASSWORD, None).await;
    assert_eq!(braked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(braked.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn wrong_logins_from_many_addresses_at_once_wait_for_the_pool_and_memory_stays_small() {
    // Each login from its own address (through a trusted proxy): the brake lets them all
    // through, so only the pool of password checks stands between them and argon2.
    let login = Login::new("login-spread");
    let vars = [login.vars().as_slice(), &[("TRUSTED_PROXIES", "127.0.0.1")]].concat();
    let binary = Binary::start("login-spread", &vars);
    let (rss_before, _) = binary.memory_kib();
    let address = binary.address.clone();
    let next = std::sync::atomic::AtomicUsize::new(1);
    let (judged, refused) = burst(|| {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        client()
            .post(format!("{address}/login"))
            .header(ORIGIN, &address)
            .header("x-forwarded-for", format!("198.18.0.{i}"))
            .form(&[("name", NAME), ("password", "not-the-password")])
    })
    .await;
    let (_, peak) = binary.memory_kib();
    assert_eq!(judged + refused, BURST);
    let growth_mib = peak.saturating_sub(rss_before) / 1024;
    assert!(
        growth_mib < 150,
        "{judged} judged at once grew the consumer by {growth_mib} MiB (from {rss_before} KiB to a peak of {peak} KiB)"
    );
    let text = binary.metrics().await;
    assert_eq!(
        metric(&text, "hostpulse_login_failures_total"),
        Some(judged as f64)
    );
    assert_eq!(
        metric(&text, "hostpulse_login_busy_total"),
        Some(refused as f64),
        "a refusal here is the pool's: no address used up its allowance"
    );
    // One of the burst's addresses still logs in with the right password.
    let again = binary.log_in(PASSWORD, Some("198.18.0.1")).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_right_password_works_again_once_the_window_has_passed() {
    let login = Login::new("login-window");
    let (consumer, clock) = spawn_with_clock(&unique_exchange("login-window"), &login.vars()).await;
    let address = consumer.address.clone();
    let (judged, refused) = burst(|| {
        client()
            .post(format!("{address}/login"))
            .header(ORIGIN, &address)
            .form(&[("name", NAME), ("password", "guess")])
    })
    .await;
    assert!((1..=ALLOWANCE).contains(&judged), "{judged} judged");
    assert_eq!(judged + refused, BURST);
    let braked = log_in(&consumer, NAME, PASSWORD).await;
    assert_eq!(braked.status(), StatusCode::TOO_MANY_REQUESTS);

    clock.advance(consumer::web::auth::LOGIN_WINDOW);
    // Right passwords give their place back: more logins than the allowance all pass.
    for _ in 0..ALLOWANCE + 2 {
        let welcome = log_in(&consumer, NAME, PASSWORD).await;
        assert_eq!(welcome.status(), StatusCode::SEE_OTHER);
        assert!(session_cookie(&welcome).is_some());
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let login = Login::new("login-proxies");
    let two = [login.vars().as_slice(), &[("LOGIN_MAX_ATTEMPTS", "2")]].concat();

    // No proxy trusted (the default): the header is the client's word and changes nothing.
    let direct = Binary::start("login-proxies-off", &two);
    for _ in 0..2 {
        let status = direct.log_in("guess", Some("203.0.113.7")).await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let line = direct.log_line("failed login");
    assert!(
        line.contains("127.0.0.1") && !line.contains("203.0.113.7"),
        "{line}"
    );
    let forged = direct.log_in("guess", Some("203.0.113.8")).await;
    assert_eq!(
        forged.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "another forged address does not escape the brake"
    );
    drop(direct);

    // Behind a trusted proxy: each client counts apart, and the log names the client.
    let trusted = [two.as_slice(), &[("TRUSTED_PROXIES", "127.0.0.1, ::1")]].concat();
    let proxied = Binary::start("login-proxies-on", &trusted);
    for _ in 0..2 {
        let status = proxied.log_in("guess", Some("203.0.113.7")).await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let line = proxied.log_line("failed login");
    assert!(line.contains("203.0.113.7"), "{line}");
    assert_eq!(
        proxied.log_in("guess", Some("203.0.113.7")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client's own forged entry on the left is ignored: the proxy's entry is the client.
    assert_eq!(
        proxied
            .log_in("guess", Some("198.51.100.1, 203.0.113.7"))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        proxied.log_in("guess", Some("203.0.113.9")).await.status(),
        StatusCode::UNAUTHORIZED,
        "another client behind the proxy has its own allowance"
    );
    // IPv6 clients count by /64: another address in the same /64 shares the allowance.
    for _ in 0..2 {
        let status = proxied
            .log_in("guess", Some("2001:db8:5:6::1"))
            .await
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        proxied
            .log_in("guess", Some("2001:db8:5:6:aaaa::2"))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        proxied
            .log_in("guess", Some("2001:db8:5:7::1"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The `Set-Cookie` of a right login to `consumer`.
async fn session_set_cookie(consumer: &TestConsumer) -> String {
    let response = log_in(consumer, NAME, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hostpulse_session="))
        .expect("a session cookie")
        .to_owned()
}

#[tokio::test]
async fn session_cookies_are_secure_behind_a_tls_proxy_when_told() {
    let login = Login::new("login-secure");
    let plain = spawn_consumer(&unique_exchange("login-plain"), &login.vars()).await;
    let cookie = session_set_cookie(&plain).await;
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );

    for told in [
        ("SECURE_COOKIES", "true"),
        ("PUBLIC_URL", "https://monitor.example.com/"),
    ] {
        let vars = [login.vars().as_slice(), &[told]].concat();
        let proxied = spawn_consumer(&unique_exchange("login-secure"), &vars).await;
        let cookie = session_set_cookie(&proxied).await;
        assert!(cookie.contains("; Secure"), "{told:?}: {cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    }
}

#[test]
fn a_users_file_with_weak_argon2_settings_is_refused_at_start_up() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let login = Login::new("login-weak");
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).expect("params"),
    );
    let salt = SaltString::encode_b64(b"sixteen byte salt").expect("salt");
    let hash = weak
        .hash_password(PASSWORD.as_bytes(), &salt)
        .expect("hashes")
        .to_string();
    std::fs::write(&login.users_file, format!("{NAME}:{hash}\n")).expect("written");
    let out = Command::new(env!("CARGO_BIN_EXE_consumer"))
        .env("CONSUMER_ENV_FILE", "/dev/null")
        .env("APP_PORT", "0")
        .env("EXCHANGE_NAME", unique_exchange("login-weak"))
        .envs(login.vars())
        .output()
        .expect("the consumer binary runs");
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(said.contains("DASHBOARD_USERS_FILE"), "{said}");
    assert!(
        said.contains("m=4096 KiB, t=1 are below the minimum m=19456 KiB, t=2"),
        "{said}"
    );
    assert!(!said.contains(&hash), "{said}");
}
