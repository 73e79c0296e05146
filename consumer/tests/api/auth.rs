//! Issue #13 over real HTTP and WebSockets: the login, sessions, API tokens, the `/metrics`
//! token, the brake on guessing, and the refusal to serve an open dashboard publicly.

use crate::auth_helpers::{
    client, log_in, session_cookie, spawn_with_clock, Login, NAME, PASSWORD,
};
use crate::helpers::{spawn_consumer, TestConsumer};
use consumer::web::auth::tokens::{self, TokenStore};
use consumer::web::auth::FileTokenStore;
use futures_util::StreamExt;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use shared::testing::{metric, unique_exchange};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

async fn get(consumer: &TestConsumer, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{}{path}", consumer.address));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("sent")
}

async fn get_with_token(consumer: &TestConsumer, path: &str, token: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", consumer.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn every_protected_route_needs_a_session_or_a_live_token() {
    let login = Login::new("auth-routes");
    // Tokens in the file (no history store), revoked from another handle on it below.
    let vars = [login.vars().as_slice(), &[("HISTORY_URL", "off")]].concat();
    let consumer = spawn_consumer(&unique_exchange("auth-routes"), &vars).await;

    for page in ["/", "/assets/app.js", "/assets/style.css"] {
        let response = get(&consumer, page, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()[LOCATION], "/login", "{page}");
    }
    for api in ["/api/hosts", "/api/hosts/some-host/readings", "/ws"] {
        let response = get(&consumer, api, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{api}");
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["reason"], "unauthorized", "{api}");
    }
    for open in [
        "/health",
        "/ready",
        "/metrics",
        "/login",
        "/assets/login.css",
    ] {
        assert_eq!(
            get(&consumer, open, None).await.status(),
            StatusCode::OK,
            "{open}"
        );
    }
    let page = get(&consumer, "/login", None).await;
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(page
        .text()
        .await
        .expect("text")
        .contains(r#"action="/login""#));

    // A made-up token, then a real one, then the same one revoked from another handle on the
    // store (as `consumer token revoke` does from another process).
    let bad = get_with_token(&consumer, "/api/hosts", "hp_0000").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let cli = FileTokenStore::open(std::path::Path::new(&login.data_dir));
    let (info, secret) = tokens::issue(&cli, "script", chrono::Utc::now())
        .await
        .expect("issued");
    let ok = get_with_token(&consumer, "/api/hosts", &secret).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok
        .json::<serde_json::Value>()
        .await
        .expect("JSON")
        .is_array());
    let write = client()
        .post(format!("{}/api/hosts", consumer.address))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("sent");
    assert_eq!(write.status(), StatusCode::FORBIDDEN, "tokens only read");
    let page = get_with_token(&consumer, "/", &secret).await;
    assert_eq!(
        page.status(),
        StatusCode::SEE_OTHER,
        "tokens are for the API only"
    );
    assert!(cli.revoke(&info.id).await.expect("revoked"));
    let revoked = get_with_token(&consumer, "/api/hosts", &secret).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);

    // Nothing secret in the probes' answers.
    for open in ["/health", "/metrics"] {
        let text = get(&consumer, open, None).await.text().await.expect("text");
        assert!(
            !text.contains(&secret[3..]) && !text.contains("$argon2id$"),
            "{open}"
        );
    }
}

#[tokio::test]
async fn a_login_opens_a_session_and_a_logout_ends_it() {
    let login = Login::new("auth-session");
    let consumer = spawn_consumer(&unique_exchange("auth-session"), &login.vars()).await;

    for (name, password) in [(NAME, "wrong"), ("mallory", PASSWORD)] {
        let refused = log_in(&consumer, name, password).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(session_cookie(&refused).is_none());
        assert!(refused
            .text()
            .await
            .expect("text")
            .contains("Wrong name or password."));
    }

    let incomplete = client()
        .post(format!("{}/login", consumer.address))
        .form(&[("name", NAME)])
        .send()
        .await
        .expect("sent");
    assert_eq!(incomplete.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = incomplete.json().await.expect("JSON");
    assert_eq!(body["reason"], "bad_form");

    let cross_site = client()
        .post(format!("{}/login", consumer.address))
        .header(ORIGIN, "https://evil.example")
        .form(&[("name", NAME), ("password", PASSWORD)])
        .send()
        .await
        .expect("sent");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert!(session_cookie(&cross_site).is_none());

    let accepted = log_in(&consumer, NAME, PASSWORD).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(accepted.headers()[LOCATION], "/");
    let set_cookie = accepted.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = session_cookie(&accepted).expect("a session cookie");
    assert_eq!(
        cookie.len(),
        "hostpulse_session=".len() + 64,
        "256 random bits"
    );

    let page = get(&consumer, "/", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("text");
    assert!(html.contains("hostpulse"));
    assert!(
        html.contains(r#"<form id="logout" method="post" action="/logout">"#),
        "the header shows a logout button"
    );
    assert_eq!(
        get(&consumer, "/api/hosts", Some(&cookie)).await.status(),
        StatusCode::OK
    );
    let forged = format!("hostpulse_session={}", "ab".repeat(32));
    assert_eq!(
        get(&consumer, "/", Some(&forged)).await.status(),
        StatusCode::SEE_OTHER
    );

    // A logout posted by another site does nothing.
    let forged_logout = client()
        .post(format!("{}/logout", consumer.address))
        .header(ORIGIN, "https://evil.example")
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(forged_logout.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&consumer, "/", Some(&cookie)).await.status(),
        StatusCode::OK
    );

    let logout = client()
        .post(format!("{}/logout", consumer.address))
        .header(ORIGIN, &consumer.address)
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(logout.headers()[LOCATION], "/login");
    assert_eq!(
        get(&consumer, "/", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&consumer, "/api/hosts", Some(&cookie)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn without_a_login_the_page_shows_no_logout() {
    let consumer = spawn_consumer(&unique_exchange("auth-no-login"), &[]).await;
    let page = get(&consumer, "/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("text");
    assert!(
        html.contains(r#"<form id="logout" method="post" action="/logout" hidden>"#),
        "{html}"
    );
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_throttled_and_counted() {
    let login = Login::new("auth-brake");
    let mut vars = login.vars();
    vars.push(("LOGIN_MAX_ATTEMPTS", "3"));
    let consumer = spawn_consumer(&unique_exchange("auth-brake"), &vars).await;
    for _ in 0..3 {
        assert_eq!(
            log_in(&consumer, NAME, "guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused now: the address must wait.
    let throttled = log_in(&consumer, NAME, PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
    assert!(session_cookie(&throttled).is_none());
    let text = get(&consumer, "/metrics", None)
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(metric(&text, "hostpulse_login_failures_total"), Some(3.0));
    assert_eq!(metric(&text, "hostpulse_login_throttled_total"), Some(1.0));
    assert!(!text.contains(PASSWORD) && !text.contains("guess"));
}

#[tokio::test]
async fn an_unknown_user_is_answered_in_the_time_of_a_wrong_password() {
    let login = Login::new("auth-timing");
    let mut vars = login.vars();
    vars.push(("LOGIN_MAX_ATTEMPTS", "10000"));
    let consumer = spawn_consumer(&unique_exchange("auth-timing"), &vars).await;
    const PAIRS: usize = 31;
    // Each pair is one unknown name and one wrong password back to back, so load from
    // elsewhere on the machine falls on both alike; the median of the pairs' ratios is
    // compared, not a time.
    let mut ratios = Vec::new();
    for i in 0..PAIRS + 2 {
        let mut took = [0.0; 2];
        for (slot, name) in [(0, "nobody"), (1, NAME)] {
            let started = Instant::now();
            let response = log_in(&consumer, name, "not the password").await;
            took[slot] = started.elapsed().as_secs_f64();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        // The first pairs warm up the server's threads.
        if i >= 2 {
            ratios.push(took[0] / took[1]);
        }
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    assert!(
        (0.67..=1.5).contains(&median),
        "unknown user / wrong password: median ratio {median:.2} (all: {ratios:.2?})"
    );
}

#[tokio::test]
async fn metrics_need_their_token_when_one_is_set() {
    let consumer = spawn_consumer(
        &unique_exchange("auth-metrics"),
        &[("METRICS_TOKEN", "scrape-secret-42")],
    )
    .await;
    assert_eq!(
        get(&consumer, "/metrics", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = get_with_token(&consumer, "/metrics", "scrape-secret-43").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = get_with_token(&consumer, "/metrics", "scrape-secret-42").await;
    assert_eq!(right.status(), StatusCode::OK);
    let text = right.text().await.expect("text");
    assert!(text.contains("hostpulse_login_failures_total"));
    assert!(!text.contains("scrape-secret"));
    let health = get(&consumer, "/health", None)
        .await
        .text()
        .await
        .expect("text");
    assert!(!health.contains("scrape-secret"));
    // No login configured: the dashboard itself stays open on loopback.
    assert_eq!(
        get(&consumer, "/api/hosts", None).await.status(),
        StatusCode::OK
    );
}

/// Opens `/ws` with `cookie`; the handshake's status when refused.
async fn open_socket(
    consumer: &TestConsumer,
    cookie: Option<&str>,
) -> Result<crate::helpers::Socket, u16> {
    let mut request = format!("ws://127.0.0.1:{}/ws", consumer.port)
        .into_client_request()
        .expect("request");
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

/// The close code the server sends next, skipping data frames.
async fn close_code(socket: &mut crate::helpers::Socket) -> Option<CloseCode> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

#[tokio::test]
async fn sockets_need_a_session_and_close_when_it_ends() {
    let login = Login::new("auth-socket");
    let mut vars = login.vars();
    vars.push(("SESSION_TTL", "1h"));
    let (consumer, clock) = spawn_with_clock(&unique_exchange("auth-socket"), &vars).await;

    assert_eq!(open_socket(&consumer, None).await.err(), Some(401));
    let forged = format!("hostpulse_session={}", "cd".repeat(32));
    assert_eq!(open_socket(&consumer, Some(&forged)).await.err(), Some(401));

    // Logged out: its socket is closed with 1008.
    let cookie = session_cookie(&log_in(&consumer, NAME, PASSWORD).await).expect("cookie");
    let mut socket = open_socket(&consumer, Some(&cookie)).await.expect("opens");
    let logout = client()
        .post(format!("{}/logout", consumer.address))
        .header(ORIGIN, &consumer.address)
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Policy));

    // Expired: the same, once the clock passes SESSION_TTL.
    let cookie = session_cookie(&log_in(&consumer, NAME, PASSWORD).await).expect("cookie");
    let mut socket = open_socket(&consumer, Some(&cookie)).await.expect("opens");
    clock.advance(Duration::from_secs(59 * 60));
    assert_eq!(
        get(&consumer, "/", Some(&cookie)).await.status(),
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(2 * 60));
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Policy));
    assert_eq!(
        get(&consumer, "/", Some(&cookie)).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(open_socket(&consumer, Some(&cookie)).await.err(), Some(401));
}
