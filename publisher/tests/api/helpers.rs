//! Spawns a publisher in-process on a free port, with its own exchange on the real broker.

use publisher::configuration::Settings;
use publisher::startup::Application;
use shared::settings::EnvSource;
use shared::testing::{amqp_url, unique_exchange};
use std::time::Duration;

/// Asserts that the test broker's password appears nowhere in `text` (an HTTP answer).
/// The user name may be the same as the password (guest/guest), so the one place it belongs,
/// the masked URL `//user:***@`, is taken out first.
pub fn assert_no_password(text: &str) {
    let url = url::Url::parse(&amqp_url()).expect("AMQP_URL is a URL");
    let encoded = url
        .password()
        .expect("the test broker's URL has a password");
    let uri: shared::broker::AMQPUri = amqp_url().parse().expect("AMQP_URL is an AMQP URL");
    let decoded = uri.authority.userinfo.password;
    let rest = text.replace(&format!("//{}:***@", url.username()), "//");
    for password in [encoded, decoded.as_str()] {
        assert!(!rest.contains(password), "password leaked: {text}");
    }
}

pub struct TestApp {
    pub address: String,
    pub exchange: String,
    pub http: reqwest::Client,
}

/// Starts a publisher; `vars` are extra settings (they win over the defaults here).
pub async fn spawn_app(test: &str, vars: &[(&str, &str)]) -> TestApp {
    shared::testing::init_logs();
    let exchange = unique_exchange(test);
    let mut env = EnvSource::from_pairs([
        ("AMQP_URL", amqp_url()),
        ("EXCHANGE_NAME", exchange.clone()),
        ("APP_PORT", "0".into()),
        ("PUBLISH_INTERVAL_SECS", "0".into()),
        ("HOST_NAME", format!("{test}-host")),
    ]);
    for (name, value) in vars {
        env.set(name, *value);
    }
    let settings = Settings::from_env(&env).expect("test settings are valid");
    let app = Application::build(settings)
        .await
        .expect("the publisher builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let mut state = app.publisher().watch_state();
    tokio::spawn(app.run_until_stopped());
    tokio::time::timeout(Duration::from_secs(10), state.wait_for(|s| s.connected))
        .await
        .expect("the publisher connects to the broker within 10 s")
        .expect("state channel open");
    TestApp {
        address,
        exchange,
        http: reqwest::Client::new(),
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }
}

/// A publisher whose broker does not exist (nothing listens on port 1); `vars` are extra
/// settings. Returns its address.
pub async fn spawn_app_without_broker(vars: &[(&str, &str)]) -> String {
    shared::testing::init_logs();
    let mut env = EnvSource::from_pairs([
        ("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f"),
        ("APP_PORT", "0"),
        ("PUBLISH_INTERVAL_SECS", "0"),
    ]);
    for (name, value) in vars {
        env.set(name, *value);
    }
    let settings = Settings::from_env(&env).expect("valid settings");
    let app = Application::build(settings)
        .await
        .expect("builds without a broker");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    address
}
