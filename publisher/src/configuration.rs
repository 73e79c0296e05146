//! The publisher's settings, from `publisher.env` and the process environment.

use shared::settings::{BrokerSettings, EnvSource, HttpSettings, SettingsError};
use std::path::PathBuf;
use std::time::Duration;

/// The publisher's own port, as in the original.
pub const DEFAULT_PORT: u16 = 8000;

/// Threads serving HTTP unless `HTTP_WORKERS` says otherwise: one. The broker link runs on
/// that thread too, so a `/publish` and its confirmation never wake another thread: one
/// thread publishes ~25 % more at 32 connections than two threads with the link on a third
/// did, and the agent keeps one thread fewer (BENCHMARKS.md, "One thread serves and
/// publishes"). A second thread (`HTTP_WORKERS=2`) serves in parallel, but its publishes
/// cross to the first one.
pub fn default_http_workers() -> usize {
    1
}

/// Where the Docker Engine listens by default (Podman's compatible socket can be named instead).
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Where the service keeps its outbox when `OUTBOX_DIR` is not set: under the working
/// directory (the systemd unit gives it `/var/lib/hostpulse/outbox`).
pub const DEFAULT_OUTBOX_DIR: &str = "outbox";

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
    /// Where the outbox is kept on disk; `None` keeps it in memory only (`OUTBOX_DIR`, `off`).
    pub outbox_dir: Option<PathBuf>,
    /// At shutdown, how long to keep trying to deliver the outbox (`SHUTDOWN_FLUSH_SECS`).
    pub shutdown_flush: Duration,
    /// When set, `/publish` requires `Authorization: Bearer <token>` and takes only POST, and
    /// beyond loopback `/api/reading` requires it too (`PUBLISH_TOKEN`).
    pub publish_token: crate::auth::PublishToken,
    /// The names this publisher answers to besides loopback (`ALLOWED_HOSTS`).
    pub allowed_hosts: shared::allowed_hosts::AllowedHosts,
    /// HTTPS: `TLS_CERT_FILE` and `TLS_KEY_FILE`, reloaded when renewed.
    pub tls: Option<shared::tls::TlsFiles>,
    /// How often the process table is scanned; zero turns it off (`PROCESS_INTERVAL_SECS`).
    pub process_interval: Duration,
    /// How many processes each top list holds (`PROCESS_TOP_N`).
    pub process_top_n: usize,
    /// The container engine's API socket (`DOCKER_SOCKET`); `None`: containers not read.
    pub docker_socket: Option<PathBuf>,
    /// Which network interfaces readings list (`NETWORK_INTERFACES`).
    pub interfaces: crate::collector::InterfaceFilter,
    /// `RUST_LOG` filter.
    pub log_filter: String,
}

impl Settings {
    /// Reads the file named by `PUBLISHER_ENV_FILE` (required then), else `publisher.env`
    /// in the working directory if there is one.
    ///
    /// The service keeps its outbox on disk unless told `OUTBOX_DIR=off`; [`Self::from_env`]
    /// alone (tests, embedding) keeps it in memory unless a folder is named, so that two
    /// publishers in one process never share a folder by accident.
    pub fn load() -> Result<Self, SettingsError> {
        let env = EnvSource::load_app("PUBLISHER_ENV_FILE", "publisher.env")?;
        let mut settings = Self::from_env(&env)?;
        if env.get("OUTBOX_DIR").is_none() {
            settings.outbox_dir = Some(PathBuf::from(DEFAULT_OUTBOX_DIR));
        }
        Ok(settings)
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
        let http = HttpSettings::from_env(env, DEFAULT_PORT, default_http_workers())?;
        let publish_token =
            crate::auth::PublishToken::new(env.get("PUBLISH_TOKEN").map(str::to_owned));
        check_exposure(
            &http,
            &publish_token,
            env.parse_or("PUBLISH_PUBLIC", false)?,
        )?;
        Ok(Self {
            broker: BrokerSettings::from_env(env)?,
            host_name,
            publish_interval: env.seconds_or("PUBLISH_INTERVAL_SECS", 1, 86_400)?,
            reconnect_cap,
            confirm_timeout,
            outbox_capacity: env.count_or("OUTBOX_CAPACITY", 600, 0, 1_000_000)?,
            outbox_dir: match env.get("OUTBOX_DIR") {
                None | Some("off") => None,
                Some(dir) => Some(PathBuf::from(dir)),
            },
            shutdown_flush: env.seconds_or("SHUTDOWN_FLUSH_SECS", 5, 600)?,
            publish_token,
            allowed_hosts: shared::allowed_hosts::AllowedHosts::from_env(env, http.host)?,
            tls: shared::tls::TlsFiles::from_env(env)?,
            process_interval: env.seconds_or("PROCESS_INTERVAL_SECS", 5, 3600)?,
            process_top_n: env.count_or("PROCESS_TOP_N", 10, 1, 1000)?,
            docker_socket: match env.get("DOCKER_SOCKET") {
                Some("off") => None,
                Some(path) => Some(PathBuf::from(path)),
                None => Some(PathBuf::from(DEFAULT_DOCKER_SOCKET)),
            },
            interfaces: match env.get("NETWORK_INTERFACES") {
                None => crate::collector::InterfaceFilter::default(),
                Some(list) => crate::collector::InterfaceFilter::parse(list)
                    .map_err(|e| SettingsError::invalid("NETWORK_INTERFACES", e))?,
            },
            log_filter: env.get("RUST_LOG").unwrap_or("info").to_owned(),
            http,
        })
    }
}

/// Refuses to let anyone who can reach the port trigger publishes, unless the user said so.
fn check_exposure(
    http: &HttpSettings,
    token: &crate::auth::PublishToken,
    public: bool,
) -> Result<(), SettingsError> {
    if http.host.is_loopback() || token.is_set() || public {
        return Ok(());
    }
    Err(SettingsError::invalid(
        "APP_HOST",
        format!(
            "{} is reachable from other machines and /publish has no token: set PUBLISH_TOKEN \
             to require one (for /publish and /api/reading), or PUBLISH_PUBLIC=true to let \
             anyone who can reach this port publish and read",
            http.host
        ),
    ))
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
    fn http_is_served_by_one_thread_unless_told() {
        let settings = Settings::from_env(&EnvSource::default()).expect("defaults");
        assert_eq!(settings.http.workers, 1);
        let told = EnvSource::from_pairs([("HTTP_WORKERS", "3")]);
        assert_eq!(Settings::from_env(&told).expect("valid").http.workers, 3);
    }

    #[test]
    fn an_open_publish_route_is_refused_beyond_loopback_unless_told() {
        let env = EnvSource::from_pairs([("APP_HOST", "0.0.0.0")]);
        let err = Settings::from_env(&env).expect_err("refused");
        let line = err.to_string();
        assert!(line.starts_with("APP_HOST:"), "{line}");
        assert!(line.contains("PUBLISH_TOKEN") && line.contains("PUBLISH_PUBLIC=true"));
        for extra in [("PUBLISH_TOKEN", "t0ken"), ("PUBLISH_PUBLIC", "true")] {
            let env = EnvSource::from_pairs([("APP_HOST", "0.0.0.0"), extra]);
            assert!(Settings::from_env(&env).is_ok(), "{extra:?}");
        }
    }

    #[test]
    fn outbox_dir_is_a_folder_or_off() {
        let env = EnvSource::from_pairs([("OUTBOX_DIR", "/var/lib/hostpulse/outbox")]);
        let settings = Settings::from_env(&env).expect("valid");
        assert_eq!(
            settings.outbox_dir,
            Some(PathBuf::from("/var/lib/hostpulse/outbox"))
        );
        let off = EnvSource::from_pairs([("OUTBOX_DIR", "off")]);
        assert_eq!(Settings::from_env(&off).expect("valid").outbox_dir, None);
    }

    #[test]
    fn the_process_list_is_on_every_5_s_by_default_and_can_be_off() {
        let settings = Settings::from_env(&EnvSource::default()).expect("defaults");
        assert_eq!(settings.process_interval, Duration::from_secs(5));
        assert_eq!(settings.process_top_n, 10);
        let off = EnvSource::from_pairs([("PROCESS_INTERVAL_SECS", "0")]);
        assert!(Settings::from_env(&off)
            .expect("valid")
            .process_interval
            .is_zero());
        let none = EnvSource::from_pairs([("PROCESS_TOP_N", "0")]);
        let err = Settings::from_env(&none).expect_err("at least one");
        assert!(err.to_string().starts_with("PROCESS_TOP_N:"), "{err}");
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
