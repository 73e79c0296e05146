//! Logging in from tests: a users file for alice, a client that shows redirects, and a
//! consumer on a clock the test moves (for session expiry).

use crate::helpers::{wait_until, TestConsumer};
use consumer::clock::ManualClock;
use reqwest::header::{ORIGIN, SET_COOKIE};
use shared::testing::unique_exchange;
use std::path::PathBuf;

pub const NAME: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

/// A fresh folder with a users file for alice, and room for `DATA_DIR`.
pub struct Login {
    pub dir: PathBuf,
    pub users_file: String,
    pub data_dir: String,
}

impl Login {
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(unique_exchange(test));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let hash = consumer::auth::hash_password(PASSWORD).expect("hashes");
        let users_file = dir.join("users");
        std::fs::write(&users_file, format!("{NAME}:{hash}\n")).expect("users file");
        Self {
            data_dir: dir.join("data").display().to_string(),
            users_file: users_file.display().to_string(),
            dir,
        }
    }

    pub fn vars(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("DASHBOARD_USERS_FILE", self.users_file.as_str()),
            ("DATA_DIR", self.data_dir.as_str()),
        ]
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Posts the login form as the consumer's own page would.
pub async fn log_in(consumer: &TestConsumer, name: &str, password: &str) -> reqwest::Response {
    client()
        .post(format!("{}/login", consumer.address))
        .header(ORIGIN, &consumer.address)
        .form(&[("name", name), ("password", password)])
        .send()
        .await
        .expect("sent")
}

/// The `name=value` of the session cookie a response sets.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hostpulse_session=") && !v.starts_with("hostpulse_session=;"))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

/// A consumer on a clock the test moves.
pub async fn spawn_with_clock(
    exchange: &str,
    vars: &[(&str, &str)],
) -> (TestConsumer, std::sync::Arc<ManualClock>) {
    shared::testing::init_logs();
    let mut env = shared::settings::EnvSource::from_pairs([
        ("AMQP_URL", shared::testing::amqp_url()),
        ("EXCHANGE_NAME", exchange.to_owned()),
        ("APP_PORT", "0".into()),
    ]);
    for (name, value) in vars {
        env.set(name, *value);
    }
    let settings = consumer::configuration::Settings::from_env(&env).expect("valid settings");
    let clock = ManualClock::new(chrono::Utc::now());
    let app = consumer::startup::Application::build_with_clock(settings, clock.clone())
        .await
        .expect("builds");
    let port = app.port();
    let (live, metrics, broker) = (app.live(), app.metrics(), app.broker());
    let stop = app.stop_handle();
    let stopped = tokio::spawn(app.run_until_stopped());
    wait_until("the consumer consumes", || broker.borrow().connected).await;
    let consumer = TestConsumer {
        address: format!("http://127.0.0.1:{port}"),
        port,
        live,
        metrics,
        stop,
        stopped,
    };
    (consumer, clock)
}
