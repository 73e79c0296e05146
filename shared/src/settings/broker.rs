//! How to reach RabbitMQ: `AMQP_URL`, or the original Python version's `RABBITMQ_*`
//! variables, never both; and which exchange to use.

use super::{EnvSource, SettingsError, TlsFiles};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// The broker used when nothing is set: the local RabbitMQ's default user.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The exchange the original Python version used.
pub const DEFAULT_EXCHANGE: &str = "system_info";

/// The original's variables, each usable on its own; the rest take the defaults below.
const ORIGINAL_VARS: [&str; 5] = [
    "RABBITMQ_HOST",
    "RABBITMQ_PORT",
    "RABBITMQ_USER",
    "RABBITMQ_PASSWORD",
    "RABBITMQ_VHOST",
];

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

impl BrokerSettings {
    /// `AMQP_URL` (comma-separated for several nodes), or any of the original's
    /// `RABBITMQ_HOST`, `RABBITMQ_PORT`, `RABBITMQ_USER`, `RABBITMQ_PASSWORD`,
    /// `RABBITMQ_VHOST`; both forms at once are refused. `EXCHANGE_NAME`.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let originals: Vec<&str> = ORIGINAL_VARS
            .into_iter()
            .filter(|name| env.get(name).is_some())
            .collect();
        // (URL, the variable to name when it is wrong)
        let urls: Vec<(String, &str)> = match (env.get("AMQP_URL"), originals.first()) {
            // Either could be meant; guessing would connect somewhere the user did not ask.
            (Some(_), Some(_)) => {
                return Err(SettingsError::invalid(
                    "AMQP_URL",
                    format!(
                        "cannot be combined with {}; set AMQP_URL or the RABBITMQ_* variables, \
                         not both",
                        originals.join(", ")
                    ),
                ))
            }
            (Some(list), None) => list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| (u.to_owned(), "AMQP_URL"))
                .collect(),
            (None, Some(_)) => vec![url_from_parts(env)?],
            (None, None) => vec![(DEFAULT_AMQP_URL.to_owned(), "AMQP_URL")],
        };
        if urls.is_empty() {
            return Err(SettingsError::invalid("AMQP_URL", "no broker URL given"));
        }
        let mut redacted_urls = Vec::with_capacity(urls.len());
        for (url, name) in &urls {
            redacted_urls.push(check_amqp_url(name, url)?);
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
            urls: urls
                .into_iter()
                .map(|(url, _)| SecretString::from(url))
                .collect(),
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

/// Builds an AMQP URL from the original's separate variables, each defaulting to the local
/// broker's (127.0.0.1, 5672, guest, guest, /). Returns it with the variable to blame.
fn url_from_parts(env: &EnvSource) -> Result<(String, &'static str), SettingsError> {
    let host = env.get("RABBITMQ_HOST").unwrap_or("127.0.0.1");
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
    Ok((url.to_string(), "RABBITMQ_HOST"))
}

/// Checks an AMQP URL given by variable `name` and returns it with the password masked.
fn check_amqp_url(name: &str, raw: &str) -> Result<String, SettingsError> {
    // Never echo `raw`: it may hold a password.
    let url = url::Url::parse(raw).map_err(|e| {
        SettingsError::invalid(
            name,
            format!("not a URL ({e}); expected amqp://user:password@host:port/vhost"),
        )
    })?;
    if !matches!(url.scheme(), "amqp" | "amqps") {
        return Err(SettingsError::invalid(
            name,
            format!("scheme {:?} is not amqp or amqps", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(SettingsError::invalid(name, "no host"));
    }
    raw.parse::<amq_protocol_uri::AMQPUri>()
        .map_err(|_| SettingsError::invalid(name, "not a valid AMQP URL"))?;
    Ok(crate::redact::url(&url))
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

    /// The one URL the settings connect to, in the clear.
    fn url_of(pairs: &[(&str, &str)]) -> String {
        let broker = BrokerSettings::from_env(&env(pairs)).expect("valid");
        assert_eq!(broker.urls.len(), 1);
        broker.urls[0].expose_secret().to_owned()
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
        let uri: amq_protocol_uri::AMQPUri = url.parse().expect("an AMQP URL");
        assert_eq!(uri.authority.userinfo.password, "p@ss/word");
        assert_eq!(uri.vhost, "/");
        assert_eq!(broker.exchange, "metrics");
    }

    #[test]
    fn each_original_variable_works_on_its_own() {
        // Each one alone changes its part; the others keep the local broker's defaults.
        let cases = [
            (
                "RABBITMQ_HOST",
                "mq.internal",
                "amqp://guest:guest@mq.internal:5672/%2F",
            ),
            (
                "RABBITMQ_PORT",
                "5673",
                "amqp://guest:guest@127.0.0.1:5673/%2F",
            ),
            (
                "RABBITMQ_USER",
                "mon",
                "amqp://mon:guest@127.0.0.1:5672/%2F",
            ),
            (
                "RABBITMQ_PASSWORD",
                "s3cret",
                "amqp://guest:s3cret@127.0.0.1:5672/%2F",
            ),
            (
                "RABBITMQ_VHOST",
                "fleet",
                "amqp://guest:guest@127.0.0.1:5672/fleet",
            ),
        ];
        for (name, value, expected) in cases {
            assert_eq!(url_of(&[(name, value)]), expected, "{name}={value}");
        }
        // And what an AMQP client makes of the port alone: the case that used to do nothing.
        let uri: amq_protocol_uri::AMQPUri = url_of(&[("RABBITMQ_PORT", "5673")])
            .parse()
            .expect("an AMQP URL");
        assert_eq!(uri.authority.port, 5673);
        assert_eq!(uri.authority.host, "127.0.0.1");
        assert_eq!(uri.vhost, "/");
    }

    #[test]
    fn a_bad_original_variable_is_named() {
        let err =
            BrokerSettings::from_env(&env(&[("RABBITMQ_PORT", "fifty")])).expect_err("not a port");
        assert!(err.to_string().starts_with("RABBITMQ_PORT:"), "{err}");
        let err =
            BrokerSettings::from_env(&env(&[("RABBITMQ_HOST", "a b")])).expect_err("not a host");
        assert!(err.to_string().starts_with("RABBITMQ_HOST:"), "{err}");
    }

    #[test]
    fn amqp_url_may_list_several_nodes() {
        let broker = BrokerSettings::from_env(&env(&[(
            "AMQP_URL",
            "amqp://a:1@n1:5672/%2f, amqps://a:1@n2:5671/%2f",
        )]))
        .expect("valid");
        assert_eq!(broker.urls.len(), 2);
        assert_eq!(broker.redacted_urls[1], "amqps://a:***@n2:5671/%2f");
    }

    #[test]
    fn amqp_url_with_any_original_variable_is_refused_naming_both() {
        for name in ORIGINAL_VARS {
            let err = BrokerSettings::from_env(&env(&[
                ("AMQP_URL", "amqp://u:hunter2@n1:5672/%2f"),
                (name, "hunter3"),
            ]))
            .expect_err("both forms");
            let text = err.to_string();
            assert!(text.starts_with("AMQP_URL:"), "{text}");
            assert!(text.contains(name), "names {name}: {text}");
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(
                !text.contains("hunter2") && !text.contains("hunter3"),
                "{text}"
            );
        }
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
        let err = BrokerSettings::from_env(&env(&[("EXCHANGE_NAME", "amq.fanout")]))
            .expect_err("reserved");
        assert!(err.to_string().starts_with("EXCHANGE_NAME:"), "{err}");
    }
}
