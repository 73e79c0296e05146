//! Where notifications go and how hard to try, from the environment. URLs may carry passwords
//! or tokens (in the user part, the path or the query), so each is kept with a masked form for
//! logs, and `Debug` shows only that.

use lettre::message::{Mailbox, Mailboxes};
use secrecy::SecretString;
use shared::settings::{EnvSource, SettingsError};
use std::time::Duration;
use url::Url;

/// Attempts per notice and channel when `ALERT_NOTIFY_ATTEMPTS` is unset.
pub const DEFAULT_ATTEMPTS: usize = 5;
/// Seconds one attempt may take when `ALERT_NOTIFY_TIMEOUT_SECS` is unset.
pub const DEFAULT_ATTEMPT_TIMEOUT_SECS: u64 = 10;
/// Notices waiting per channel when `ALERT_NOTIFY_QUEUE` is unset.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// The wait before the first retry; it doubles (plus jitter) up to [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(2);
/// The longest base wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(16);

/// Every notification channel and the delivery policy.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Generic JSON webhooks (`ALERT_WEBHOOK_URL`, comma-separated).
    pub webhooks: Vec<Endpoint>,
    /// ntfy topic (`ALERT_NTFY_URL`, `ALERT_NTFY_TOKEN`).
    pub ntfy: Option<NtfySettings>,
    /// Slack-compatible incoming webhook (`ALERT_SLACK_URL`).
    pub slack: Option<Endpoint>,
    /// E-mail over SMTP (`ALERT_SMTP_URL`, `ALERT_EMAIL_FROM`, `ALERT_EMAIL_TO`).
    pub email: Option<EmailSettings>,
    /// Timeouts and retries.
    pub retry: RetryPolicy,
    /// Notices waiting per channel before the oldest is dropped (`ALERT_NOTIFY_QUEUE`).
    pub queue_capacity: usize,
}

/// How each channel tries to deliver one notice.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (`ALERT_NOTIFY_ATTEMPTS`).
    pub attempts: usize,
    /// How long one attempt may take, connecting included (`ALERT_NOTIFY_TIMEOUT_SECS`).
    pub attempt_timeout: Duration,
    /// The wait before the first retry.
    pub first_delay: Duration,
    /// The longest base wait between attempts (jitter may add up to as much again).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: DEFAULT_ATTEMPTS,
            attempt_timeout: Duration::from_secs(DEFAULT_ATTEMPT_TIMEOUT_SECS),
            first_delay: FIRST_RETRY_DELAY,
            max_delay: MAX_RETRY_DELAY,
        }
    }
}

/// An HTTP(S) URL kept with its masked form; `Debug` shows only the masked one.
#[derive(Clone)]
pub struct Endpoint {
    url: Url,
    shown: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Endpoint {
    /// Checks an http or https URL; `name` is the variable it came from, for the error.
    pub fn parse(name: &str, raw: &str) -> Result<Self, SettingsError> {
        // Never echo `raw`: it may hold a password or token.
        let url = Url::parse(raw).map_err(|e| {
            SettingsError::invalid(name, format!("not a URL ({e}); expected https://host/path"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SettingsError::invalid(
                name,
                format!("scheme {:?} is not http or https", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SettingsError::invalid(name, "no host"));
        }
        let shown = masked(&url);
        Ok(Self { url, shown })
    }

    /// The URL in the clear, only for sending.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL with its secrets masked, for logs.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// An ntfy topic and its optional access token.
#[derive(Debug, Clone)]
pub struct NtfySettings {
    /// The topic's URL, e.g. `https://ntfy.sh/mytopic` (a user and password in it are sent
    /// as basic auth).
    pub endpoint: Endpoint,
    /// Sent as `Authorization: Bearer …` (`ALERT_NTFY_TOKEN`).
    pub token: Option<SecretString>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (port 465).
    Tls,
    /// `smtp://`: plain, then STARTTLS, which must succeed (port 587).
    StartTls,
    /// `smtp://…?tls=none`: no encryption, for a relay on the same host or network.
    None,
}

/// An SMTP server: where and how to connect.
#[derive(Clone)]
pub struct SmtpServer {
    /// The server's host name (also the name its certificate must carry).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS, STARTTLS or none.
    pub security: SmtpSecurity,
    /// User and password, from the URL.
    pub credentials: Option<(String, SecretString)>,
    /// PEM certificates the server's certificate may also chain to, besides the system's
    /// (`ALERT_SMTP_CA_FILE`, for a relay with a private CA).
    pub ca_pem: Option<Vec<u8>>,
    /// The URL with the user and password masked, for logs.
    pub shown: String,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// E-mail: the server and the envelope.
#[derive(Clone)]
pub struct EmailSettings {
    /// Where to send (`ALERT_SMTP_URL`).
    pub server: SmtpServer,
    /// `ALERT_EMAIL_FROM`.
    pub from: Mailbox,
    /// `ALERT_EMAIL_TO`, one or more.
    pub to: Vec<Mailbox>,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish()
    }
}

impl NotifySettings {
    /// Reads every `ALERT_*` notification variable; nothing set means no channel.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let webhooks = env
            .get("ALERT_WEBHOOK_URL")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(|u| Endpoint::parse("ALERT_WEBHOOK_URL", u))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        if webhooks.is_empty() && env.get("ALERT_WEBHOOK_URL").is_some() {
            return Err(SettingsError::invalid("ALERT_WEBHOOK_URL", "no URL given"));
        }
        let ntfy = match env.get("ALERT_NTFY_URL") {
            Some(raw) => Some(NtfySettings {
                endpoint: Endpoint::parse("ALERT_NTFY_URL", raw)?,
                token: env
                    .get("ALERT_NTFY_TOKEN")
                    .map(|t| SecretString::from(t.to_owned())),
            }),
            None if env.get("ALERT_NTFY_TOKEN").is_some() => {
                return Err(SettingsError::invalid(
                    "ALERT_NTFY_TOKEN",
                    "set without ALERT_NTFY_URL",
                ))
            }
            None => None,
        };
        let slack = env
            .get("ALERT_SLACK_URL")
            .map(|raw| Endpoint::parse("ALERT_SLACK_URL", raw))
            .transpose()?;
        let email = EmailSettings::from_env(env)?;
        let retry = RetryPolicy {
            attempts: env.count_or("ALERT_NOTIFY_ATTEMPTS", DEFAULT_ATTEMPTS, 1, 20)?,
            attempt_timeout: env.positive_seconds_or(
                "ALERT_NOTIFY_TIMEOUT_SECS",
                DEFAULT_ATTEMPT_TIMEOUT_SECS,
                300,
            )?,
            ..RetryPolicy::default()
        };
        let queue_capacity =
            env.count_or("ALERT_NOTIFY_QUEUE", DEFAULT_QUEUE_CAPACITY, 1, 100_000)?;
        Ok(Self {
            webhooks,
            ntfy,
            slack,
            email,
            retry,
            queue_capacity,
        })
    }

    /// Settings with no channel and the default policy (tests and embedding fill in the rest).
    pub fn none() -> Self {
        Self {
            webhooks: Vec::new(),
            ntfy: None,
            slack: None,
            email: None,
            retry: RetryPolicy::default(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }

    /// True when at least one channel is configured.
    pub fn any_channel(&self) -> bool {
        !self.webhooks.is_empty()
            || self.ntfy.is_some()
            || self.slack.is_some()
            || self.email.is_some()
    }
}

impl EmailSettings {
    /// `ALERT_SMTP_URL`, `ALERT_EMAIL_FROM`, `ALERT_EMAIL_TO`: all three or none.
    pub fn from_env(env: &EnvSource) -> Result<Option<Self>, SettingsError> {
        let (raw, from, to) = match (
            env.get("ALERT_SMTP_URL"),
            env.get("ALERT_EMAIL_FROM"),
            env.get("ALERT_EMAIL_TO"),
        ) {
            (None, None, None) => return Ok(None),
            (Some(raw), Some(from), Some(to)) => (raw, from, to),
            (None, _, _) => {
                return Err(SettingsError::invalid(
                    "ALERT_SMTP_URL",
                    "needed with ALERT_EMAIL_FROM and ALERT_EMAIL_TO",
                ))
            }
            (Some(_), None, _) => {
                return Err(SettingsError::invalid(
                    "ALERT_EMAIL_FROM",
                    "needed with ALERT_SMTP_URL",
                ))
            }
            (Some(_), Some(_), None) => {
                return Err(SettingsError::invalid(
                    "ALERT_EMAIL_TO",
                    "needed with ALERT_SMTP_URL",
                ))
            }
        };
        let from: Mailbox = from.parse().map_err(|e| {
            SettingsError::invalid(
                "ALERT_EMAIL_FROM",
                format!("{from:?} is not an address ({e})"),
            )
        })?;
        let to: Mailboxes = to.parse().map_err(|e| {
            SettingsError::invalid(
                "ALERT_EMAIL_TO",
                format!("{to:?} is not a comma-separated list of addresses ({e})"),
            )
        })?;
        let to: Vec<Mailbox> = to.into_iter().collect();
        if to.is_empty() {
            return Err(SettingsError::invalid("ALERT_EMAIL_TO", "no address"));
        }
        let mut server = smtp_server(raw)?;
        if let Some(path) = env.get("ALERT_SMTP_CA_FILE") {
            const CA: &str = "ALERT_SMTP_CA_FILE";
            if server.security == SmtpSecurity::None {
                return Err(SettingsError::invalid(
                    CA,
                    "set, but ALERT_SMTP_URL has tls=none",
                ));
            }
            let pem = std::fs::read(path)
                .map_err(|e| SettingsError::invalid(CA, format!("cannot read {path}: {e}")))?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(SettingsError::invalid(CA, "holds no PEM certificate"));
            }
            server.ca_pem = Some(pem);
        }
        Ok(Some(Self { server, from, to }))
    }
}

/// Parses `smtp://[user:pass@]host[:port][?tls=none]` or `smtps://…`.
fn smtp_server(raw: &str) -> Result<SmtpServer, SettingsError> {
    const NAME: &str = "ALERT_SMTP_URL";
    // Never echo `raw`: it may hold a password.
    let url = Url::parse(raw).map_err(|e| {
        SettingsError::invalid(
            NAME,
            format!("not a URL ({e}); expected smtp://user:password@host:587"),
        )
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| SettingsError::invalid(NAME, "no host"))?
        // An IPv6 literal comes bracketed; the socket wants it bare.
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let mut tls_param = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "tls" => tls_param = Some(value.into_owned()),
            other => {
                return Err(SettingsError::invalid(
                    NAME,
                    format!("unknown parameter {other:?} (only tls=none is known)"),
                ))
            }
        }
    }
    let security = match (url.scheme(), tls_param.as_deref()) {
        ("smtps", None) => SmtpSecurity::Tls,
        ("smtp", None | Some("starttls")) => SmtpSecurity::StartTls,
        ("smtp", Some("none")) => SmtpSecurity::None,
        ("smtp" | "smtps", Some(other)) => {
            return Err(SettingsError::invalid(
                NAME,
                format!(
                    "tls={other:?} is not known; use smtps:// for TLS, smtp:// for STARTTLS, \
                     smtp://…?tls=none for none"
                ),
            ))
        }
        (scheme, _) => {
            return Err(SettingsError::invalid(
                NAME,
                format!("scheme {scheme:?} is not smtp or smtps"),
            ))
        }
    };
    let port = url.port().unwrap_or(match security {
        SmtpSecurity::Tls => 465,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::None => 25,
    });
    let credentials = if url.username().is_empty() {
        None
    } else {
        let decode = |part: &str| {
            percent_decode(part)
                .ok_or_else(|| SettingsError::invalid(NAME, "user or password is not UTF-8"))
        };
        let user = decode(url.username())?;
        let password = decode(url.password().unwrap_or(""))?;
        Some((user, SecretString::from(password)))
    };
    Ok(SmtpServer {
        host,
        port,
        security,
        credentials,
        ca_pem: None,
        shown: masked(&url),
    })
}

/// Undoes URL escapes (`%40` → `@`) in a user name or password.
fn percent_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The URL as logs may show it: no user or password, and the last path segment and the
/// query hidden, since webhook URLs carry their token there (Slack, Discord, ntfy topics).
pub fn masked(url: &Url) -> String {
    let mut shown = format!("{}://", url.scheme());
    if !url.username().is_empty() || url.password().is_some() {
        shown.push_str("***@");
    }
    if let Some(host) = url.host_str() {
        shown.push_str(host);
    }
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if let Some((_, kept)) = segments.split_last() {
        for segment in kept {
            shown.push('/');
            shown.push_str(segment);
        }
        shown.push_str("/***");
    }
    if url.query().is_some() {
        shown.push_str("?***");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn nothing_set_means_no_channel_and_the_default_policy() {
        let settings = NotifySettings::from_env(&env(&[])).expect("valid");
        assert!(!settings.any_channel());
        assert_eq!(settings.retry.attempts, DEFAULT_ATTEMPTS);
        assert_eq!(settings.queue_capacity, DEFAULT_QUEUE_CAPACITY);
    }

    #[test]
    fn several_webhooks_are_read_and_shown_masked() {
        let settings = NotifySettings::from_env(&env(&[(
            "ALERT_WEBHOOK_URL",
            "https://hooks.example.com/alerts, http://bob:s3cret@10.0.0.5:8080/in/tok3n?key=k3y",
        )]))
        .expect("valid");
        let shown: Vec<&str> = settings.webhooks.iter().map(Endpoint::shown).collect();
        assert_eq!(
            shown,
            [
                "https://hooks.example.com/***",
                "http://***@10.0.0.5:8080/in/***?***"
            ]
        );
        let debug = format!("{settings:?}");
        for secret in ["bob", "s3cret", "tok3n", "k3y"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
    }

    #[test]
    fn a_bad_url_is_refused_naming_the_variable_without_echoing_it() {
        let err = NotifySettings::from_env(&env(&[(
            "ALERT_SLACK_URL",
            "ftp://u:pa55word@hooks.slack.com/services/x",
        )]))
        .expect_err("ftp is refused")
        .to_string();
        assert!(err.starts_with("ALERT_SLACK_URL: "), "{err}");
        assert!(err.contains("not http or https"), "{err}");
        assert!(!err.contains("pa55word"), "{err}");

        let err = NotifySettings::from_env(&env(&[("ALERT_WEBHOOK_URL", " , ")]))
            .expect_err("only commas")
            .to_string();
        assert_eq!(err, "ALERT_WEBHOOK_URL: no URL given");

        let err = NotifySettings::from_env(&env(&[("ALERT_WEBHOOK_URL", "hooks/x")]))
            .expect_err("not a URL")
            .to_string();
        assert!(err.starts_with("ALERT_WEBHOOK_URL: not a URL"), "{err}");
    }

    #[test]
    fn smtp_urls_pick_security_and_port() {
        let with = |url: &str| {
            NotifySettings::from_env(&env(&[
                ("ALERT_SMTP_URL", url),
                ("ALERT_EMAIL_FROM", "hostpulse <alerts@example.com>"),
                (
                    "ALERT_EMAIL_TO",
                    "ops@example.com, Oncall <oncall@example.com>",
                ),
            ]))
        };
        let email = with("smtp://alerts%40example.com:p%40ss@mail.example.com")
            .expect("valid")
            .email
            .expect("email set");
        assert_eq!(email.server.security, SmtpSecurity::StartTls);
        assert_eq!(
            (email.server.host.as_str(), email.server.port),
            ("mail.example.com", 587)
        );
        let (user, password) = email.server.credentials.as_ref().expect("credentials");
        assert_eq!(user, "alerts@example.com");
        assert_eq!(password.expose_secret(), "p@ss");
        assert_eq!(email.to.len(), 2);
        assert_eq!(email.server.shown, "smtp://***@mail.example.com");
        assert!(!format!("{email:?}").contains("p%40ss"));

        let email = with("smtps://mail.example.com").expect("valid").email;
        let email = email.expect("email set");
        assert_eq!(
            (email.server.security, email.server.port),
            (SmtpSecurity::Tls, 465)
        );
        assert!(email.server.credentials.is_none());

        let email = with("smtp://127.0.0.1:2525?tls=none").expect("valid").email;
        let email = email.expect("email set");
        assert_eq!(
            (email.server.security, email.server.port),
            (SmtpSecurity::None, 2525)
        );

        let err = with("smtps://mail.example.com?tls=none").expect_err("contradiction");
        assert!(err.to_string().starts_with("ALERT_SMTP_URL: tls=\"none\""));
        let err = with("http://mail.example.com").expect_err("wrong scheme");
        assert!(err.to_string().contains("not smtp or smtps"));
    }

    #[test]
    fn email_needs_all_three_settings_and_real_addresses() {
        let err = NotifySettings::from_env(&env(&[
            ("ALERT_SMTP_URL", "smtp://mail.example.com"),
            ("ALERT_EMAIL_TO", "ops@example.com"),
        ]))
        .expect_err("no sender");
        assert_eq!(
            err.to_string(),
            "ALERT_EMAIL_FROM: needed with ALERT_SMTP_URL"
        );

        let err = NotifySettings::from_env(&env(&[
            ("ALERT_SMTP_URL", "smtp://mail.example.com"),
            ("ALERT_EMAIL_FROM", "alerts@example.com"),
            ("ALERT_EMAIL_TO", "ops at example"),
        ]))
        .expect_err("bad recipient");
        assert!(err.to_string().starts_with("ALERT_EMAIL_TO: "), "{err}");
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate_and_needs_tls() {
        let not_pem = std::env::temp_dir().join(format!("hostpulse-ca-{}.txt", std::process::id()));
        std::fs::write(&not_pem, "not a certificate").expect("write temp file");
        let path = not_pem.to_string_lossy().into_owned();
        let with = |url: &str, ca: &str| {
            NotifySettings::from_env(&env(&[
                ("ALERT_SMTP_URL", url),
                ("ALERT_EMAIL_FROM", "alerts@example.com"),
                ("ALERT_EMAIL_TO", "ops@example.com"),
                ("ALERT_SMTP_CA_FILE", ca),
            ]))
        };
        let err = with("smtps://mail.example.com", &path).expect_err("not PEM");
        assert_eq!(
            err.to_string(),
            "ALERT_SMTP_CA_FILE: holds no PEM certificate"
        );
        let err = with("smtp://mail.example.com?tls=none", &path).expect_err("no TLS");
        assert!(err.to_string().contains("tls=none"), "{err}");
        let err = with("smtps://mail.example.com", "/nonexistent/ca.pem").expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("ALERT_SMTP_CA_FILE: cannot read"),
            "{err}"
        );
        let _ = std::fs::remove_file(not_pem);
    }

    #[test]
    fn policy_settings_are_bounded() {
        let err = NotifySettings::from_env(&env(&[("ALERT_NOTIFY_ATTEMPTS", "0")]))
            .expect_err("zero attempts");
        assert!(err.to_string().starts_with("ALERT_NOTIFY_ATTEMPTS: "));
        let settings = NotifySettings::from_env(&env(&[
            ("ALERT_NOTIFY_ATTEMPTS", "3"),
            ("ALERT_NOTIFY_TIMEOUT_SECS", "4"),
        ]))
        .expect("valid");
        assert_eq!(settings.retry.attempts, 3);
        assert_eq!(settings.retry.attempt_timeout, Duration::from_secs(4));
    }
}
