//! The publisher's settings, from `publisher.env` and the process environment.

use shared::settings::{BrokerSettings, EnvSource, HttpSettings, SettingsError};
use std::time::Duration;

/// The publisher's own port, as in the original.
pub const DEFAULT_PORT: u16 = 8000;

/// One HTTP thread: a publisher answers a scrape and the odd `/publish`, and it must cost its
/// host as little as possible.
pub const DEFAULT_HTTP_WORKERS: usize = 1;

/// Everything the publisher can be told.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub broker: BrokerSettings,
    /// Overrides the system host name in readings (`HOST_NAME`).
    pub host_name: Option<String>,
    /// Publish on its own this often; zero means only on request (`PUBLISH_INTERVAL_SECS`).
    pub publish_interval: Duration,
    /// Longest wait between reconnect attempts (`RECONNECT_MAX_SECS`).
    pub reconnect_cap: Duration,
    /// How long a publish may wait for the broker's confirmation (`CONFIRM_TIMEOUT_SECS`).
    pub confirm_timeout: Duration,
    /// Readings kept while the broker is unreachable; 0 disables the outbox (`OUTBOX_CAPACITY`).
    pub outbox_capacity: usize,
    /// At shutdown, how long to keep trying to deliver the outbox (`SHUTDOWN_FLUSH_SECS`).
    pub shutdown_flush: Duration,
    /// When set, `/publish` requires `Authorization: Bearer <token>` (`PUBLISH_TOKEN`).
    pub publish_token: crate::auth::PublishToken,
    /// How often the process table is scanned; zero turns it off (`PROCESS_INTERVAL_SECS`).
    pub process_interval: Duration,
    /// How many processes each top list holds (`PROCESS_TOP_N`).
    pub process_top_n: usize,
    /// `RUST_LOG` filter.
    pub log_filter: String,
}

impl Settings {
    /// Reads the file named by `PUBLISHER_ENV_FILE` (required then), else `publisher.env`
    /// in the working directory if there is one.
    pub fn load() -> Result<Self, SettingsError> {
        Self::from_env(&EnvSource::load_app("PUBLISHER_ENV_FILE", "publisher.env")?)
    }

    /// Parses and checks every setting.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let host_name = env.get("HOST_NAME").map(str::to_owned);
        if let Some(name) = &host_name {
            if name.len() > shared::reading::MAX_HOST_LEN {
                return Err(SettingsError::invalid("HOST_NAME", "longer than 253 bytes"));
            }
        }
        let reconnect_cap = env.positive_seconds_or("RECONNECT_MAX_SECS", 30, 3600)?;
        let confirm_timeout = env.positive_seconds_or("CONFIRM_TIMEOUT_SECS", 5, 300)?;
        Ok(Self {
            http: HttpSettings::from_env(env, DEFAULT_PORT, DEFAULT_HTTP_WORKERS)?,
            broker: BrokerSettings::from_env(env)?,
            host_name,
            publish_interval: env.seconds_or("PUBLISH_INTERVAL_SECS", 1, 86_400)?,
            reconnect_cap,
            confirm_timeout,
            outbox_capacity: env.count_or("OUTBOX_CAPACITY", 600, 0, 1_000_000)?,
            shutdown_flush: env.seconds_or("SHUTDOWN_FLUSH_SECS", 5, 600)?,
            publish_token: crate::auth::PublishToken::new(
                env.get("PUBLISH_TOKEN").map(str::to_owned),
            ),
            process_interval: env.seconds_or("PROCESS_INTERVAL_SECS", 5, 3600)?,
            process_top_n: env.count_or("PROCESS_TOP_N", 10, 1, 1000)?,
            log_filter: env.get("RUST_LOG").unwrap_or("info").to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original() {
        let settings = Settings::from_env(&EnvSource::default()).expect("defaults are valid");
        assert_eq!(settings.http.port, 8000);
        assert_eq!(settings.publish_interval, Duration::from_secs(1));
        assert_eq!(settings.broker.exchange, "system_info");
    }

    #[test]
    fn a_bad_interval_is_named() {
        let env = EnvSource::from_pairs([("PUBLISH_INTERVAL_SECS", "soon")]);
        let err = Settings::from_env(&env).expect_err("not a number");
        assert!(
            err.to_string().starts_with("PUBLISH_INTERVAL_SECS:"),
            "{err}"
        );
    }
}
