//! The publisher over HTTPS with a certificate the test makes, a renewal picked up without a
//! restart, and the refusal to let anyone publish from beyond this machine.

use crate::helpers::spawn_app;
use shared::testing::https::{https_get, renew_and_wait_until_served, self_signed};
use std::process::Command;

#[tokio::test]
async fn the_publisher_is_served_over_https_and_a_renewed_certificate_without_a_restart() {
    let dir = std::env::temp_dir().join(shared::testing::unique_exchange("https-publisher"));
    let (cert, key) = self_signed(&dir, "first");
    let first_ca = dir.join("first-ca.pem");
    std::fs::copy(&cert, &first_ca).expect("copy");
    let (cert_var, key_var) = (cert.display().to_string(), key.display().to_string());
    let app = spawn_app(
        "https",
        &[("TLS_CERT_FILE", &cert_var), ("TLS_KEY_FILE", &key_var)],
    )
    .await;
    let port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");

    let answer = tokio::task::spawn_blocking(move || https_get(port, "/publish", &first_ca))
        .await
        .expect("ran")
        .expect("served with the first certificate");
    assert!(answer.contains(" 200 "), "{answer}");
    assert!(
        answer.contains(r#""status":"published""#) || answer.contains("\"seq\""),
        "{answer}"
    );

    renew_and_wait_until_served(&dir, port, "/health").await;
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_open_publish_route_is_refused_beyond_loopback_unless_told() {
    // The port is held on loopback, so a start that passes the check fails to bind instead of
    // listening on every address.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = held.local_addr().expect("address").port().to_string();
    let run = |extra: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_publisher"))
            .env("PUBLISHER_ENV_FILE", "/dev/null")
            .env_remove("PUBLISH_TOKEN")
            .env_remove("PUBLISH_PUBLIC")
            .env("APP_HOST", "0.0.0.0")
            .env("APP_PORT", &port)
            .env("PUBLISH_INTERVAL_SECS", "0")
            .envs(extra.iter().copied())
            .output()
            .expect("the publisher binary runs")
    };
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(2));
    let line = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(line.trim().lines().count(), 1, "{line}");
    assert!(
        line.contains("PUBLISH_TOKEN") && line.contains("PUBLISH_PUBLIC=true"),
        "{line}"
    );
    for extra in [("PUBLISH_PUBLIC", "true"), ("PUBLISH_TOKEN", "a-token")] {
        let allowed = run(&[extra]);
        let stderr = String::from_utf8_lossy(&allowed.stderr).into_owned();
        assert_eq!(allowed.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(stderr.contains("cannot listen"), "{stderr}");
    }
}
