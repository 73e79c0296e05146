//! Settings: an app's `.env` file overlaid by the process environment, parsed into typed,
//! validated values. A bad value is reported with the variable's name and never its secret.

use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// A setting that could not be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}: {problem}")]
    Invalid { name: String, problem: String },
    #[error("cannot read settings file {path}: {problem}")]
    File { path: String, problem: String },
}

impl SettingsError {
    /// An invalid-value error for `name`.
    pub fn invalid(name: &str, problem: impl Display) -> Self {
        SettingsError::Invalid {
            name: name.to_owned(),
            problem: problem.to_string(),
        }
    }
}

/// The variables an app sees: its `.env` file, then the process environment on top.
#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    vars: HashMap<String, String>,
}

impl EnvSource {
    /// Reads `file` (absent is fine unless `required`) and overlays the process environment.
    pub fn load(file: &Path, required: bool) -> Result<Self, SettingsError> {
        let mut vars = HashMap::new();
        match dotenvy::from_path_iter(file) {
            Ok(iter) => {
                for item in iter {
                    let (key, value) = item.map_err(|e| SettingsError::File {
                        path: file.display().to_string(),
                        problem: e.to_string(),
                    })?;
                    vars.insert(key, value);
                }
            }
            Err(e) if e.not_found() && !required => {}
            Err(e) => {
                return Err(SettingsError::File {
                    path: file.display().to_string(),
                    problem: e.to_string(),
                })
            }
        }
        vars.extend(std::env::vars());
        Ok(Self { vars })
    }

    /// An app's settings: the file named by `file_var` (which must exist then), else
    /// `default_file` in the working directory if there is one; the environment on top.
    pub fn load_app(file_var: &str, default_file: &str) -> Result<Self, SettingsError> {
        match std::env::var_os(file_var) {
            Some(path) => Self::load(Path::new(&path), true),
            None => Self::load(Path::new(default_file), false),
        }
    }

    /// A source made of the given pairs only, for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets one variable (tests use this to isolate an app).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.vars.insert(name.to_owned(), value.into());
    }

    /// The variable's value; an empty value counts as unset, as in most `.env` conventions.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Parses the variable, or gives `default` when it is unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, SettingsError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| {
                SettingsError::invalid(name, format!("{raw:?} is not valid ({e})"))
            }),
        }
    }

    /// A whole number of seconds (0 allowed), bounded by `max`.
    pub fn seconds_or(
        &self,
        name: &str,
        default: u64,
        max: u64,
    ) -> Result<Duration, SettingsError> {
        let secs: u64 = self.parse_or(name, default)?;
        if secs > max {
            return Err(SettingsError::invalid(
                name,
                format!("{secs} is more than the maximum of {max} seconds"),
            ));
        }
        Ok(Duration::from_secs(secs))
    }

    /// Like [`Self::seconds_or`], but zero is refused too.
    pub fn positive_seconds_or(
        &self,
        name: &str,
        default: u64,
        max: u64,
    ) -> Result<Duration, SettingsError> {
        let duration = self.seconds_or(name, default, max)?;
        if duration.is_zero() {
            return Err(SettingsError::invalid(name, "must be at least 1"));
        }
        Ok(duration)
    }

    /// A count between `min` and `max` inclusive.
    pub fn count_or(
        &self,
        name: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, SettingsError> {
        let n: usize = self.parse_or(name, default)?;
        if !(min..=max).contains(&n) {
            return Err(SettingsError::invalid(
                name,
                format!("{n} is outside {min}..={max}"),
            ));
        }
        Ok(n)
    }
}

/// Where the HTTP server listens.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Threads serving HTTP (`HTTP_WORKERS`); each idle one still costs memory and wake-ups.
    pub workers: usize,
}

impl HttpSettings {
    /// `APP_HOST` (default 127.0.0.1: exposing a service is a deliberate choice), `APP_PORT`
    /// and `HTTP_WORKERS`.
    pub fn from_env(
        env: &EnvSource,
        default_port: u16,
        default_workers: usize,
    ) -> Result<Self, SettingsError> {
        Ok(Self {
            host: env.parse_or("APP_HOST", IpAddr::from([127, 0, 0, 1]))?,
            port: env.parse_or("APP_PORT", default_port)?,
            workers: env.count_or("HTTP_WORKERS", default_workers, 1, 256)?,
        })
    }
}

/// One HTTP worker per CPU: for a service whose work is serving many clients.
pub fn workers_per_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The broker used when nothing is set: the local RabbitMQ's default user.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The exchange the original Python version used.
pub const DEFAULT_EXCHANGE: &str = "system_info";

/// How to reach RabbitMQ and which exchange to use.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// One URL per broker node, tried in order; they hold the password, so they stay secret.
    pub urls: Vec<SecretString>,
    /// The same URLs with the password masked, for logs and `/health`.
    pub redacted_urls: Vec<String>,
    pub exchange: String,
    /// Each connection attempt gives up after this long.
    pub connect_timeout: Duration,
    /// AMQP heartbeat, so a half-open connection is noticed within a few seconds.
    pub heartbeat_secs: u16,
    /// Certificates for `amqps://`.
    pub tls: TlsFiles,
}

/// TLS material for `amqps://`, read at start-up so a missing file stops it with a clear line.
#[derive(Clone, Default)]
pub struct TlsFiles {
    /// PEM CA certificates the broker's certificate must chain to (`AMQP_CA_FILE`); without it,
    /// the system's roots.
    pub ca_pem: Option<String>,
    /// PEM client certificate and its PEM PKCS#8 key (`AMQP_CLIENT_CERT`, `AMQP_CLIENT_KEY`).
    pub client: Option<(Vec<u8>, SecretString)>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca_pem", &self.ca_pem.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl TlsFiles {
    /// Reads `AMQP_CA_FILE`, `AMQP_CLIENT_CERT` and `AMQP_CLIENT_KEY`.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let read = |name: &str| -> Result<Option<Vec<u8>>, SettingsError> {
            env.get(name)
                .map(|path| {
                    std::fs::read(path).map_err(|e| {
                        SettingsError::invalid(name, format!("cannot read {path}: {e}"))
                    })
                })
                .transpose()
        };
        let ca_pem = read("AMQP_CA_FILE")?
            .map(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| SettingsError::invalid("AMQP_CA_FILE", "not a PEM file"))
            })
            .transpose()?;
        if ca_pem
            .as_deref()
            .is_some_and(|pem| !pem.contains("-----BEGIN CERTIFICATE-----"))
        {
            return Err(SettingsError::invalid(
                "AMQP_CA_FILE",
                "holds no PEM certificate",
            ));
        }
        let client = match (read("AMQP_CLIENT_CERT")?, read("AMQP_CLIENT_KEY")?) {
            (Some(cert), Some(key)) => {
                let key = String::from_utf8(key)
                    .map_err(|_| SettingsError::invalid("AMQP_CLIENT_KEY", "not a PEM file"))?;
                Some((cert, SecretString::from(key)))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingsError::invalid(
                    "AMQP_CLIENT_KEY",
                    "needed with AMQP_CLIENT_CERT",
                ))
            }
            (None, Some(_)) => {
                return Err(SettingsError::invalid(
                    "AMQP_CLIENT_CERT",
                    "needed with AMQP_CLIENT_KEY",
                ))
            }
        };
        Ok(Self { ca_pem, client })
    }
}

impl BrokerSettings {
    /// `AMQP_URL` (comma-separated for several nodes), or the original's `RABBITMQ_HOST`,
    /// `RABBITMQ_PORT`, `RABBITMQ_USER`, `RABBITMQ_PASSWORD`, `RABBITMQ_VHOST`; `EXCHANGE_NAME`.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let urls: Vec<String> = match (env.get("AMQP_URL"), env.get("RABBITMQ_HOST")) {
            (Some(list), _) => list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect(),
            (None, Some(host)) => vec![url_from_parts(env, host)?],
            (None, None) => vec![DEFAULT_AMQP_URL.to_owned()],
        };
        if urls.is_empty() {
            return Err(SettingsError::invalid("AMQP_URL", "no broker URL given"));
        }
        let mut redacted_urls = Vec::with_capacity(urls.len());
        for url in &urls {
            redacted_urls.push(check_amqp_url(url)?);
        }
        let exchange = env
            .get("EXCHANGE_NAME")
            .unwrap_or(DEFAULT_EXCHANGE)
            .to_owned();
        check_amqp_name("EXCHANGE_NAME", &exchange)?;
        let connect_timeout = env.positive_seconds_or("AMQP_CONNECT_TIMEOUT_SECS", 5, 300)?;
        let heartbeat_secs = env.parse_or("AMQP_HEARTBEAT_SECS", 10u16)?;
        let tls = TlsFiles::from_env(env)?;
        Ok(Self {
            urls: urls.into_iter().map(SecretString::from).collect(),
            redacted_urls,
            exchange,
            connect_timeout,
            heartbeat_secs,
            tls,
        })
    }

    /// The URLs in the clear, only for connecting.
    pub fn expose_urls(&self) -> impl Iterator<Item = (&str, &str)> {
        self.urls
            .iter()
            .map(|u| u.expose_secret())
            .zip(self.redacted_urls.iter().map(String::as_str))
    }
}

/// Builds an AMQP URL from the original Python version's separate variables.
fn url_from_parts(env: &EnvSource, host: &str) -> Result<String, SettingsError> {
    let port: u16 = env.parse_or("RABBITMQ_PORT", 5672)?;
    let user = env.get("RABBITMQ_USER").unwrap_or("guest");
    let password = env.get("RABBITMQ_PASSWORD").unwrap_or("guest");
    let vhost = env.get("RABBITMQ_VHOST").unwrap_or("/");
    let mut url = url::Url::parse(&format!("amqp://{host}:{port}"))
        .map_err(|e| SettingsError::invalid("RABBITMQ_HOST", format!("{host:?}: {e}")))?;
    url.set_username(user)
        .and_then(|()| url.set_password(Some(password)))
        .map_err(|()| SettingsError::invalid("RABBITMQ_HOST", "cannot carry a user name"))?;
    // The vhost is one path segment; "/" must travel as %2f.
    url.path_segments_mut()
        .map_err(|()| SettingsError::invalid("RABBITMQ_HOST", "not a host name"))?
        .clear()
        .push(vhost);
    Ok(url.to_string())
}

/// Checks an AMQP URL and returns it with the password masked.
fn check_amqp_url(raw: &str) -> Result<String, SettingsError> {
    // Never echo `raw`: it may hold a password.
    let mut url = url::Url::parse(raw).map_err(|e| {
        SettingsError::invalid(
            "AMQP_URL",
            format!("not a URL ({e}); expected amqp://user:password@host:port/vhost"),
        )
    })?;
    if !matches!(url.scheme(), "amqp" | "amqps") {
        return Err(SettingsError::invalid(
            "AMQP_URL",
            format!("scheme {:?} is not amqp or amqps", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SettingsError::invalid("AMQP_URL", "no host"));
    }
    raw.parse::<lapin::uri::AMQPUri>()
        .map_err(|_| SettingsError::invalid("AMQP_URL", "not a valid AMQP URL"))?;
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    Ok(url.to_string())
}

/// Exchange and queue names: at most 255 bytes of printable text (AMQP short strings).
pub fn check_amqp_name(name: &str, value: &str) -> Result<(), SettingsError> {
    if value.len() > 255 {
        return Err(SettingsError::invalid(name, "longer than 255 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(SettingsError::invalid(name, "contains control characters"));
    }
    if value.starts_with("amq.") {
        return Err(SettingsError::invalid(
            name,
            "the amq. prefix is reserved by RabbitMQ",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_reach_the_local_broker() {
        let broker = BrokerSettings::from_env(&env(&[])).expect("defaults are valid");
        assert_eq!(
            broker.expose_urls().next().map(|u| u.0),
            Some(DEFAULT_AMQP_URL)
        );
        assert_eq!(broker.exchange, "system_info");
        assert_eq!(
            broker.redacted_urls,
            ["amqp://guest:***@127.0.0.1:5672/%2f"]
        );
    }

    #[test]
    fn the_original_variables_still_work() {
        let broker = BrokerSettings::from_env(&env(&[
            ("RABBITMQ_HOST", "mq.internal"),
            ("RABBITMQ_PORT", "5673"),
            ("RABBITMQ_USER", "mon"),
            ("RABBITMQ_PASSWORD", "p@ss/word"),
            ("RABBITMQ_VHOST", "/"),
            ("EXCHANGE_NAME", "metrics"),
        ]))
        .expect("valid");
        let (url, redacted) = broker.expose_urls().next().expect("one url");
        assert_eq!(url, "amqp://mon:p%40ss%2Fword@mq.internal:5673/%2F");
        assert_eq!(redacted, "amqp://mon:***@mq.internal:5673/%2F");
        let uri: lapin::uri::AMQPUri = url.parse().expect("lapin reads it");
        assert_eq!(uri.authority.userinfo.password, "p@ss/word");
        assert_eq!(uri.vhost, "/");
        assert_eq!(broker.exchange, "metrics");
    }

    #[test]
    fn amqp_url_wins_and_may_list_several_nodes() {
        let broker = BrokerSettings::from_env(&env(&[
            (
                "AMQP_URL",
                "amqp://a:1@n1:5672/%2f, amqps://a:1@n2:5671/%2f",
            ),
            ("RABBITMQ_HOST", "ignored"),
        ]))
        .expect("valid");
        assert_eq!(broker.urls.len(), 2);
        assert_eq!(broker.redacted_urls[1], "amqps://a:***@n2:5671/%2f");
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_the_password() {
        let err = BrokerSettings::from_env(&env(&[("AMQP_URL", "http://u:hunter2@x/")]))
            .expect_err("http is not amqp");
        let text = err.to_string();
        assert!(text.starts_with("AMQP_URL:"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let err = BrokerSettings::from_env(&env(&[("AMQP_URL", "hunter2 is not a url")]))
            .expect_err("garbage");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let err =
            HttpSettings::from_env(&env(&[("APP_PORT", "80000")]), 8000, 1).expect_err("too big");
        assert!(err.to_string().starts_with("APP_PORT:"), "{err}");
        let err = env(&[("X", "-1")])
            .seconds_or("X", 1, 10)
            .expect_err("negative");
        assert!(err.to_string().starts_with("X:"), "{err}");
        let err = env(&[("X", "11")])
            .seconds_or("X", 1, 10)
            .expect_err("above max");
        assert!(err.to_string().contains("maximum"), "{err}");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let http = HttpSettings::from_env(&env(&[("APP_PORT", ""), ("APP_HOST", " ")]), 8003, 1)
            .expect("defaults");
        assert_eq!(http.port, 8003);
        assert_eq!(http.host.to_string(), "127.0.0.1");
    }

    #[test]
    fn the_process_environment_wins_over_the_file() {
        let dir = std::env::temp_dir().join(format!("hostpulse-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("app.env");
        // PATH is always set in the process environment; the file's value must lose.
        std::fs::write(&file, "PATH=from-file\nHOSTPULSE_ONLY_IN_FILE=yes\n").expect("write");
        let source = EnvSource::load(&file, true).expect("loads");
        assert_eq!(source.get("HOSTPULSE_ONLY_IN_FILE"), Some("yes"));
        assert_ne!(source.get("PATH"), Some("from-file"));
        assert!(EnvSource::load(&dir.join("missing.env"), false).is_ok());
        assert!(EnvSource::load(&dir.join("missing.env"), true).is_err());
    }
}
