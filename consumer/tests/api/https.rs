//! The consumer over HTTPS with a certificate the test makes, and a renewal picked up without
//! a restart.

use crate::auth_helpers::{Login, NAME, PASSWORD};
use crate::helpers::spawn_consumer;
use shared::testing::https::{https_get, https_send, renew_and_wait_until_served, self_signed};
use shared::testing::unique_exchange;

#[tokio::test]
async fn the_dashboard_is_served_over_https_and_a_renewed_certificate_without_a_restart() {
    let login = Login::new("https-consumer");
    let certs = login.dir.join("tls");
    let (cert, key) = self_signed(&certs, "first");
    let first_ca = certs.join("first-ca.pem");
    std::fs::copy(&cert, &first_ca).expect("copy");
    let (cert_var, key_var) = (cert.display().to_string(), key.display().to_string());
    let mut vars = login.vars();
    vars.push(("TLS_CERT_FILE", cert_var.as_str()));
    vars.push(("TLS_KEY_FILE", key_var.as_str()));
    let consumer = spawn_consumer(&unique_exchange("https-consumer"), &vars).await;
    let port = consumer.port;

    let health = tokio::task::spawn_blocking(move || https_get(port, "/health", &first_ca))
        .await
        .expect("ran")
        .expect("served with the first certificate");
    assert!(
        health.starts_with("HTTP/1.1 200") || health.starts_with("HTTP/1.0 200"),
        "{health}"
    );
    // Plain HTTP gets no answer.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .is_err());

    renew_and_wait_until_served(&certs, port, "/health").await;
}

#[tokio::test]
async fn session_cookies_are_secure_under_https() {
    let login = Login::new("https-cookie");
    let certs = login.dir.join("tls");
    let (cert, key) = self_signed(&certs, "cookie");
    let (cert_var, key_var) = (cert.display().to_string(), key.display().to_string());
    let mut vars = login.vars();
    vars.push(("TLS_CERT_FILE", cert_var.as_str()));
    vars.push(("TLS_KEY_FILE", key_var.as_str()));
    let consumer = spawn_consumer(&unique_exchange("https-cookie"), &vars).await;
    let port = consumer.port;
    let body = format!("name={NAME}&password={}", PASSWORD.replace(' ', "+"));
    let request = format!(
        "POST /login HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://127.0.0.1:{port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = tokio::task::spawn_blocking(move || https_send(port, &request, &cert))
        .await
        .expect("ran")
        .expect("served");
    assert!(
        answer.starts_with("HTTP/1.1 303") || answer.starts_with("HTTP/1.0 303"),
        "{answer}"
    );
    let set_cookie = answer
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: hostpulse_session=")
        })
        .expect("a session cookie");
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
}
