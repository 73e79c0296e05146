//! History settings: where the store lives (`HISTORY_URL`, `DATA_DIR`) and how long each tier
//! keeps its rows (`HISTORY_*_RETENTION`).

use secrecy::SecretString;
use shared::settings::{EnvSource, SettingsError};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The SQLite file used when `HISTORY_URL` is unset, inside `DATA_DIR`.
pub const DEFAULT_SQLITE_FILE: &str = "history.sqlite";
/// `DATA_DIR` when unset.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Where history is kept.
#[derive(Debug, Clone)]
pub enum HistoryTarget {
    /// No history (`HISTORY_URL=off`).
    Off,
    /// An SQLite file; its directory is created at first open.
    Sqlite(PathBuf),
    /// A PostgreSQL database; the URL may hold a password, so it stays secret.
    Postgres(SecretString),
}

/// How long each tier keeps its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw readings (`HISTORY_RAW_RETENTION`, default 24 h).
    pub raw: Duration,
    /// 1-minute min/avg/max (`HISTORY_MINUTE_RETENTION`, default 30 days).
    pub minute: Duration,
    /// 1-hour min/avg/max (`HISTORY_HOUR_RETENTION`, default 400 days).
    pub hour: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: Duration::from_secs(24 * 3600),
            minute: Duration::from_secs(30 * 86_400),
            hour: Duration::from_secs(400 * 86_400),
        }
    }
}

/// Everything the history store needs to open.
#[derive(Debug, Clone)]
pub struct HistorySettings {
    pub target: HistoryTarget,
    /// The location for logs and `/health`: a path, or the URL with its password masked.
    pub redacted: String,
    pub retention: Retention,
}

/// Longest retention accepted: beyond this a typo is more likely than a wish.
const MAX_RETENTION: Duration = Duration::from_secs(100 * 365 * 86_400);

impl HistorySettings {
    /// `HISTORY_URL` (`sqlite:///path`, `postgres://…`, `off`; default an SQLite file in
    /// `DATA_DIR`), and the three `HISTORY_*_RETENTION` durations (`24h`, `30days`, …).
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let (target, redacted) = match env.get("HISTORY_URL") {
            None => {
                let dir = PathBuf::from(env.get("DATA_DIR").unwrap_or(DEFAULT_DATA_DIR));
                let path = dir.join(DEFAULT_SQLITE_FILE);
                let shown = path.display().to_string();
                (HistoryTarget::Sqlite(path), shown)
            }
            Some(raw) => parse_url(raw)?,
        };
        let defaults = Retention::default();
        let retention = Retention {
            raw: duration_or(env, "HISTORY_RAW_RETENTION", defaults.raw)?,
            minute: duration_or(env, "HISTORY_MINUTE_RETENTION", defaults.minute)?,
            hour: duration_or(env, "HISTORY_HOUR_RETENTION", defaults.hour)?,
        };
        // Queries fall back to coarser tiers for older ranges, so those must reach further.
        if retention.minute < retention.raw {
            return Err(SettingsError::invalid(
                "HISTORY_MINUTE_RETENTION",
                "must be at least HISTORY_RAW_RETENTION",
            ));
        }
        if retention.hour < retention.minute {
            return Err(SettingsError::invalid(
                "HISTORY_HOUR_RETENTION",
                "must be at least HISTORY_MINUTE_RETENTION",
            ));
        }
        Ok(Self {
            target,
            redacted,
            retention,
        })
    }

    /// True unless `HISTORY_URL=off`.
    pub fn enabled(&self) -> bool {
        !matches!(self.target, HistoryTarget::Off)
    }
}

/// Parses `HISTORY_URL`; never echoes the value, which may hold a password.
fn parse_url(raw: &str) -> Result<(HistoryTarget, String), SettingsError> {
    const NAME: &str = "HISTORY_URL";
    if raw.eq_ignore_ascii_case("off") {
        return Ok((HistoryTarget::Off, "off".to_owned()));
    }
    if let Some(rest) = raw.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(SettingsError::invalid(
                NAME,
                "no file after sqlite:// (expected sqlite:///path/to/history.sqlite)",
            ));
        }
        if path.contains('?') || path.starts_with(":memory:") {
            return Err(SettingsError::invalid(
                NAME,
                "expected a file path without options (sqlite:///path/to/history.sqlite)",
            ));
        }
        let shown = path.to_owned();
        return Ok((HistoryTarget::Sqlite(PathBuf::from(path)), shown));
    }
    let url = url::Url::parse(raw).map_err(|e| {
        SettingsError::invalid(
            NAME,
            format!("not a URL ({e}); expected sqlite:///path, postgres://user@host/db or off"),
        )
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(SettingsError::invalid(
            NAME,
            format!(
                "scheme {:?} is not sqlite, postgres or postgresql (or use off)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SettingsError::invalid(NAME, "no host"));
    }
    sqlx::postgres::PgConnectOptions::from_str(raw)
        .map_err(|_| SettingsError::invalid(NAME, "not a valid PostgreSQL URL"))?;
    let shown = shared::redact::url(&url);
    Ok((
        HistoryTarget::Postgres(SecretString::from(raw.to_owned())),
        shown,
    ))
}

/// A humantime duration (`90s`, `24h`, `30days`), positive and at most a century.
fn duration_or(env: &EnvSource, name: &str, default: Duration) -> Result<Duration, SettingsError> {
    let Some(raw) = env.get(name) else {
        return Ok(default);
    };
    let duration = humantime::parse_duration(raw).map_err(|e| {
        SettingsError::invalid(
            name,
            format!("{raw:?} is not a duration like 24h or 30days ({e})"),
        )
    })?;
    if duration < Duration::from_secs(60) {
        return Err(SettingsError::invalid(name, "must be at least 1 minute"));
    }
    if duration > MAX_RETENTION {
        return Err(SettingsError::invalid(name, "must be at most 100 years"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_to_an_sqlite_file_in_the_data_directory() {
        let settings = HistorySettings::from_env(&env(&[])).expect("defaults are valid");
        match &settings.target {
            HistoryTarget::Sqlite(path) => {
                assert_eq!(path, &PathBuf::from("./data/history.sqlite"))
            }
            other => panic!("expected SQLite, got {other:?}"),
        }
        assert_eq!(settings.retention, Retention::default());
        let settings =
            HistorySettings::from_env(&env(&[("DATA_DIR", "/var/lib/hp")])).expect("valid");
        assert!(
            matches!(&settings.target, HistoryTarget::Sqlite(p) if p == &PathBuf::from("/var/lib/hp/history.sqlite"))
        );
    }

    #[test]
    fn accepts_sqlite_postgres_and_off() {
        let s = HistorySettings::from_env(&env(&[("HISTORY_URL", "sqlite:///tmp/h.db")]))
            .expect("sqlite");
        assert!(matches!(&s.target, HistoryTarget::Sqlite(p) if p == &PathBuf::from("/tmp/h.db")));
        let s = HistorySettings::from_env(&env(&[("HISTORY_URL", "OFF")])).expect("off");
        assert!(!s.enabled());
        let s = HistorySettings::from_env(&env(&[(
            "HISTORY_URL",
            "postgres://hp:s3cret-pw@db.internal:5433/history",
        )]))
        .expect("postgres");
        match &s.target {
            HistoryTarget::Postgres(url) => assert!(url.expose_secret().contains("s3cret-pw")),
            other => panic!("expected PostgreSQL, got {other:?}"),
        }
        assert_eq!(s.redacted, "postgres://hp:***@db.internal:5433/history");
        assert!(!format!("{s:?}").contains("s3cret-pw"));
    }

    #[test]
    fn bad_urls_name_the_variable_and_hide_the_password() {
        for bad in [
            "mysql://u:s3cret-pw@h/db",
            "s3cret-pw is not a url",
            "sqlite://",
            "sqlite::memory:",
            "postgres://u:s3cret-pw@/db",
        ] {
            let err = HistorySettings::from_env(&env(&[("HISTORY_URL", bad)])).expect_err(bad);
            let text = err.to_string();
            assert!(text.starts_with("HISTORY_URL:"), "{bad}: {text}");
            assert!(!text.contains("s3cret-pw"), "{bad}: {text}");
        }
    }

    #[test]
    fn retention_takes_humantime_durations() {
        let s = HistorySettings::from_env(&env(&[
            ("HISTORY_RAW_RETENTION", "2h"),
            ("HISTORY_MINUTE_RETENTION", "7days"),
            ("HISTORY_HOUR_RETENTION", "1y"),
        ]))
        .expect("valid");
        assert_eq!(s.retention.raw, Duration::from_secs(7200));
        assert_eq!(s.retention.minute, Duration::from_secs(7 * 86_400));
        assert!(s.retention.hour >= Duration::from_secs(365 * 86_400));
        for (name, value) in [
            ("HISTORY_RAW_RETENTION", "forever"),
            ("HISTORY_RAW_RETENTION", "1s"),
            ("HISTORY_MINUTE_RETENTION", "1h"),
        ] {
            let err = HistorySettings::from_env(&env(&[(name, value)])).expect_err(value);
            assert!(err.to_string().starts_with(&format!("{name}:")), "{err}");
        }
    }
}
