//! HTTPS from the outside, for the services' TLS tests: certificates made with the `openssl`
//! CLI (scripts/test.sh installs it) and requests made by `openssl s_client`, which verifies
//! the served certificate against the one the test expects.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A self-signed certificate for 127.0.0.1 named `cn`: `(cert.pem, key.pem)` in `dir`,
/// each written aside and renamed into place, as a renewal tool would.
pub fn self_signed(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("certificate dir");
    let (cert_tmp, key_tmp) = (dir.join(format!("{cn}.pem")), dir.join(format!("{cn}.key")));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={cn}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key_tmp)
        .arg("-out")
        .arg(&cert_tmp)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::rename(&key_tmp, &key).expect("key in place");
    std::fs::rename(&cert_tmp, &cert).expect("certificate in place");
    (cert, key)
}

/// `GET path` over HTTPS on 127.0.0.1:`port`, trusting only `ca`: the whole answer (status
/// line, headers, body), or `None` when the handshake or the verification failed.
pub fn https_get(port: u16, path: &str, ca: &Path) -> Option<String> {
    // HTTP/1.0: the server closes after answering, which ends s_client.
    https_send(
        port,
        &format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
        ca,
    )
}

/// Sends a whole HTTP/1.0 `request` over HTTPS, like [`https_get`].
pub fn https_send(port: u16, request: &str, ca: &Path) -> Option<String> {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
        ])
        .arg("-CAfile")
        .arg(ca)
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs (scripts/test.sh installs it)");
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.as_bytes());
    let out = child.wait_with_output().expect("s_client exits");
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && answer.starts_with("HTTP/1.")).then_some(answer)
}

/// Renews the certificate in `dir` (as [`self_signed`] does, under a new name) and waits,
/// bounded, until the service on `port` serves it at `path` without a restart: the services
/// look at their certificate files every couple of seconds.
pub async fn renew_and_wait_until_served(dir: &Path, port: u16, path: &'static str) {
    let (renewed, _) = self_signed(dir, "renewed");
    let renewed_ca = dir.join("renewed-ca.pem");
    std::fs::copy(&renewed, &renewed_ca).expect("copy");
    for _ in 0..40 {
        let ca = renewed_ca.clone();
        let served = tokio::task::spawn_blocking(move || https_get(port, path, &ca))
            .await
            .expect("ran");
        if served.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the renewed certificate is never served");
}
