//! `amqps://` against a private TLS-enabled RabbitMQ node, with certificates made by the test:
//! the broker is verified against `AMQP_CA_FILE`, and the client shows its own certificate.

use shared::reading::Reading;
use shared::settings::EnvSource;
use shared::testing::private_broker::{free_port, PrivateBroker};
use shared::testing::{unique_exchange, Tap};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, in `dir`.
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).expect("dir");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=hostpulse test CA",
        ],
    );
    for (name, usage, cn) in [
        ("server", "serverAuth", "localhost"),
        ("client", "clientAuth", "guest"),
    ] {
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage={usage}\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"),
        )
        .expect("ext");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
    // The broker runs as the rabbitmq user: it must be able to read them.
    let status = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .status()
        .expect("chmod");
    assert!(status.success());
}

async fn start_publisher(vars: &[(&str, String)]) -> publisher::startup::Application {
    let mut env = EnvSource::from_pairs([("APP_PORT", "0"), ("PUBLISH_INTERVAL_SECS", "0")]);
    for (name, value) in vars {
        env.set(name, value.clone());
    }
    let settings = publisher::configuration::Settings::from_env(&env).expect("valid settings");
    publisher::startup::Application::build(settings)
        .await
        .expect("builds")
}

/// Broker settings from `vars`, as the consumer reads them.
fn broker_settings(vars: &[(&str, String)]) -> shared::settings::BrokerSettings {
    let mut env = EnvSource::from_pairs([("AMQP_CONNECT_TIMEOUT_SECS", "10")]);
    for (name, value) in vars {
        env.set(name, value.clone());
    }
    shared::settings::BrokerSettings::from_env(&env).expect("valid settings")
}

#[tokio::test]
async fn amqps_verifies_the_broker_and_presents_a_client_certificate() {
    let dir = std::env::temp_dir().join(format!("hostpulse-tls-{}", free_port()));
    make_certificates(&dir);
    let tls_port = free_port();
    let path = |f: &str| dir.join(f).display().to_string();
    let config = format!(
        "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
         ssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
         ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n",
        path("ca.pem"),
        path("server.pem"),
        path("server.key"),
    );
    let broker = tokio::task::spawn_blocking(move || PrivateBroker::start(&config))
        .await
        .expect("node starts");
    let exchange = unique_exchange("tls");
    let amqps = format!("amqps://guest:guest@localhost:{tls_port}/%2f");
    let base = vec![
        ("AMQP_URL", amqps.clone()),
        ("EXCHANGE_NAME", exchange.clone()),
    ];

    // Everything right: connected over TLS, and readings flow.
    let mut good = base.clone();
    good.extend([
        ("AMQP_CA_FILE", path("ca.pem")),
        ("AMQP_CLIENT_CERT", path("client.pem")),
        ("AMQP_CLIENT_KEY", path("client.key")),
    ]);
    let app = start_publisher(&good).await;
    let link = app.publisher();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let mut state = link.watch_state();
    tokio::time::timeout(Duration::from_secs(15), state.wait_for(|s| s.connected))
        .await
        .expect("connected over amqps within 15 s")
        .expect("state");
    let mut tap = Tap::bind_at(&broker.url(), &exchange).await;
    let answer: serde_json::Value = reqwest::get(format!("{address}/publish"))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["status"], "published", "{answer}");
    let message = tap.next(Duration::from_secs(5)).await.expect("delivered");
    assert_eq!(
        Reading::from_json(&message.body).expect("reading").seq,
        answer["seq"]
    );

    // Without the CA the broker's certificate is not trusted; without the client certificate
    // the broker refuses us. Neither connects, and neither error shows the password.
    let mut no_ca = base.clone();
    no_ca.extend([
        ("AMQP_CLIENT_CERT", path("client.pem")),
        ("AMQP_CLIENT_KEY", path("client.key")),
    ]);
    let mut no_client_cert = base.clone();
    no_client_cert.push(("AMQP_CA_FILE", path("ca.pem")));
    // The consumer's client, lapin, goes through the same TLS set-up
    // (`TlsFiles::client_config`): trusted with the CA, refused without.
    let (connection, _) = shared::broker::connect(&broker_settings(&good), "hostpulse-test-tls")
        .await
        .expect("lapin connects over amqps");
    let _ = connection.close(200, "done".into()).await;
    let refused = shared::broker::connect(&broker_settings(&no_ca), "hostpulse-test-tls")
        .await
        .map(|_| ())
        .expect_err("lapin does not trust the broker without the CA");
    assert!(!refused.contains("guest:guest"), "{refused}");
    for vars in [no_ca, no_client_cert] {
        let app = start_publisher(&vars).await;
        let link = app.publisher();
        tokio::spawn(app.run_until_stopped());
        let mut state = link.watch_state();
        let failed = tokio::time::timeout(
            Duration::from_secs(15),
            state.wait_for(|s| s.last_error.is_some()),
        )
        .await
        .expect("an attempt failed within 15 s")
        .expect("state")
        .clone();
        assert!(!failed.connected);
        let error = failed.last_error.unwrap_or_default();
        assert!(!error.contains("guest:guest"), "{error}");
    }
    tap.cleanup().await;
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
