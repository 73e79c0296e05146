//! The consumer's settings, from `consumer.env` and the process environment.

use shared::broker::QueueSpec;
use shared::settings::{check_amqp_name, BrokerSettings, EnvSource, HttpSettings, SettingsError};
use std::time::Duration;

/// The consumer's own port, as in the original.
pub const DEFAULT_PORT: u16 = 8003;

/// Everything the consumer can be told.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub broker: BrokerSettings,
    /// The queue: `QUEUE_NAME` (server-named if unset), `QUEUE_MAX_LENGTH`, `PREFETCH`.
    pub queue: QueueSpec,
    /// Readings kept per host for charts and the snapshot (`HISTORY_LEN`).
    pub history_len: usize,
    /// Hosts tracked at most (`MAX_HOSTS`); readings from more are refused, not hoarded.
    pub max_hosts: usize,
    /// A message larger than this is refused unparsed (`MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// A host silent this long is shown stale (`STALE_AFTER_SECS`).
    pub stale_after: Duration,
    /// A host silent this long is forgotten: its card and metric series go (`HOST_EXPIRY_SECS`).
    pub host_expiry: Duration,
    /// Longest wait between reconnect attempts (`RECONNECT_MAX_SECS`).
    pub reconnect_cap: Duration,
    /// The names the consumer answers to besides loopback (`ALLOWED_HOSTS`); checked on every
    /// request while no login is configured.
    pub allowed_hosts: shared::allowed_hosts::AllowedHosts,
    /// Pages of other origins that may open the WebSocket (`ALLOWED_ORIGINS`).
    pub allowed_origins: crate::web::origin::AllowedOrigins,
    /// Login, API tokens, `/metrics` token (see [`crate::web::auth`]).
    pub auth: crate::web::auth::AuthSettings,
    /// HTTPS: `TLS_CERT_FILE` and `TLS_KEY_FILE`, reloaded when renewed.
    pub tls: Option<shared::tls::TlsFiles>,
    /// Where history is kept and for how long (`HISTORY_URL`, `DATA_DIR`, `HISTORY_*_RETENTION`).
    pub history: crate::history::store::HistorySettings,
    /// The queue that feeds the store (`HISTORY_QUEUE`, `HISTORY_QUEUE_MAX_LENGTH`,
    /// `HISTORY_QUEUE_EXPIRES`).
    pub history_queue: crate::history::recorder::HistoryQueue,
    /// The alert rules: the defaults, with `ALERT_RULES_FILE` laid over them.
    pub alert_rules: std::sync::Arc<crate::alerts::RuleSet>,
    /// Where notifications go (`ALERT_WEBHOOK_URL`, `ALERT_NTFY_URL`, `ALERT_SLACK_URL`,
    /// `ALERT_SMTP_URL`, …).
    pub notify: crate::alerts::notify::NotifySettings,
    /// The evaluator's queue (`ALERT_QUEUE`; default `<exchange>.alerts`).
    pub alert_queue: String,
    /// Whether this consumer may be the fleet's alert evaluator (`ALERTS`: `on`, the default,
    /// or `off`). Off, it neither evaluates nor notifies, but still shows the alerts another
    /// consumer of the fleet evaluates.
    pub evaluate_alerts: bool,
    /// `RUST_LOG` filter.
    pub log_filter: String,
}

impl Settings {
    /// Reads the file named by `CONSUMER_ENV_FILE` (required then), else `consumer.env` in
    /// the working directory if there is one.
    pub fn load() -> Result<Self, SettingsError> {
        Self::from_env(&EnvSource::load_app("CONSUMER_ENV_FILE", "consumer.env")?)
    }

    /// Parses and checks every setting.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let queue_name = env.get("QUEUE_NAME").map(str::to_owned);
        if let Some(name) = &queue_name {
            check_amqp_name("QUEUE_NAME", name)?;
        }
        let max_length = env.count_or("QUEUE_MAX_LENGTH", 10_000, 1, 10_000_000)?;
        let prefetch = env.count_or("PREFETCH", 256, 1, usize::from(u16::MAX))?;
        let queue = QueueSpec {
            kind: shared::broker::QueueKind::Live,
            name: queue_name,
            max_length: u32::try_from(max_length).unwrap_or(u32::MAX),
            prefetch: u16::try_from(prefetch).unwrap_or(u16::MAX),
        };
        let stale_after = env.positive_seconds_or("STALE_AFTER_SECS", 10, 86_400)?;
        let reconnect_cap = env.positive_seconds_or("RECONNECT_MAX_SECS", 30, 3600)?;
        let host_expiry = env.positive_seconds_or("HOST_EXPIRY_SECS", 3600, 30 * 86_400)?;
        let http = HttpSettings::from_env(env, DEFAULT_PORT, shared::settings::workers_per_cpu())?;
        let auth = crate::web::auth::AuthSettings::from_env(env)?;
        let history_queue_name = env.get("HISTORY_QUEUE").map(str::to_owned);
        if let Some(name) = &history_queue_name {
            check_amqp_name("HISTORY_QUEUE", name)?;
        }
        let history_queue = crate::history::recorder::HistoryQueue {
            name: history_queue_name,
            // A week of one host at 1 Hz, or ten minutes of a thousand hosts.
            max_length: u32::try_from(env.count_or(
                "HISTORY_QUEUE_MAX_LENGTH",
                1_000_000,
                1,
                100_000_000,
            )?)
            .unwrap_or(u32::MAX),
            expires: env.positive_seconds_or(
                "HISTORY_QUEUE_EXPIRES_SECS",
                7 * 86_400,
                365 * 86_400,
            )?,
            prefetch: u16::try_from(prefetch).unwrap_or(u16::MAX),
        };
        auth.check_exposure(http.host)?;
        crate::web::routes::check_metrics_exposure(
            http.host,
            auth.users.is_some(),
            auth.metrics_token.is_some(),
            env.parse_or("METRICS_PUBLIC", false)?,
        )?;
        let allowed_hosts = shared::allowed_hosts::AllowedHosts::from_env(env, http.host)?;
        let broker = BrokerSettings::from_env(env)?;
        let alert_queue = match env.get("ALERT_QUEUE") {
            Some(name) => {
                check_amqp_name("ALERT_QUEUE", name)?;
                name.to_owned()
            }
            None => format!("{}.alerts", broker.exchange),
        };
        let evaluate_alerts = match env.get("ALERTS") {
            None => true,
            Some(v) if v.eq_ignore_ascii_case("on") => true,
            Some(v) if v.eq_ignore_ascii_case("off") => false,
            Some(_) => return Err(SettingsError::invalid("ALERTS", "must be on or off")),
        };
        Ok(Self {
            http,
            broker,
            queue,
            history_len: env.count_or("HISTORY_LEN", 180, 1, 10_000)?,
            max_hosts: env.count_or("MAX_HOSTS", 1_000, 1, 100_000)?,
            max_message_bytes: env.count_or("MAX_MESSAGE_BYTES", 1 << 20, 256, 64 << 20)?,
            stale_after,
            host_expiry,
            reconnect_cap,
            allowed_origins: crate::web::origin::AllowedOrigins::from_env(
                env,
                allowed_hosts.clone(),
            )?,
            allowed_hosts,
            auth,
            tls: shared::tls::TlsFiles::from_env(env)?,
            history: crate::history::store::HistorySettings::from_env(env)?,
            alert_rules: std::sync::Arc::new(
                crate::alerts::RuleSet::load(env.get("ALERT_RULES_FILE").map(std::path::Path::new))
                    .map_err(|e| SettingsError::invalid("ALERT_RULES_FILE", e))?
                    .with_no_data_after(env.positive_seconds_or(
                        "ALERT_NO_DATA_SECS",
                        crate::alerts::engine::NO_DATA_AFTER.as_secs(),
                        7 * 86_400,
                    )?),
            ),
            notify: crate::alerts::notify::NotifySettings::from_env(env)?,
            alert_queue,
            evaluate_alerts,
            history_queue,
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
        assert_eq!(settings.http.port, 8003);
        assert_eq!(settings.queue.name, None);
        assert_eq!(settings.stale_after, Duration::from_secs(10));
    }

    #[test]
    fn alerts_are_evaluated_unless_switched_off() {
        let on = Settings::from_env(&EnvSource::default()).expect("defaults are valid");
        assert!(on.evaluate_alerts);
        let env = EnvSource::from_pairs([("ALERTS", "OFF")]);
        assert!(!Settings::from_env(&env).expect("valid").evaluate_alerts);
        let env = EnvSource::from_pairs([("ALERTS", "maybe")]);
        let err = Settings::from_env(&env).expect_err("neither on nor off");
        assert!(err.to_string().starts_with("ALERTS:"), "{err}");
    }

    #[test]
    fn the_original_queue_name_is_honoured_and_checked() {
        let env = EnvSource::from_pairs([("QUEUE_NAME", "Consumer")]);
        let settings = Settings::from_env(&env).expect("valid");
        assert_eq!(settings.queue.name.as_deref(), Some("Consumer"));
        let env = EnvSource::from_pairs([("QUEUE_NAME", "amq.mine")]);
        let err = Settings::from_env(&env).expect_err("reserved");
        assert!(err.to_string().starts_with("QUEUE_NAME:"), "{err}");
    }
}
