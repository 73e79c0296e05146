//! Logging in from tests: a users file for alice, a client that shows redirects, and a
//! consumer on a clock the test moves (for session expiry).

use crate::helpers::TestConsumer;
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
        let hash = consumer::web::auth::hash_password(PASSWORD).expect("hashes");
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
    let clock = ManualClock::new(chrono::Utc::now());
    let consumer = crate::helpers::spawn_consumer_on(exchange, vars, clock.clone()).await;
    (consumer, clock)
}
