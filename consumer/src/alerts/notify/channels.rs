//! One attempt to deliver a notice on one channel: the JSON webhook, ntfy, Slack, e-mail.
//! Retrying is the caller's job; an error says whether another attempt could help, and its
//! text never holds a URL, password or token.

use super::notice::{EventKind, Notice, NoticeStatus, Severity};
use super::settings::{EmailSettings, Endpoint, NtfySettings, SmtpSecurity, SmtpServer};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use std::time::Duration;

/// The kinds of channel, as the `channel` label of the metrics names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Generic JSON webhook.
    Webhook,
    /// ntfy.
    Ntfy,
    /// Slack-compatible incoming webhook.
    Slack,
    /// E-mail over SMTP.
    Email,
}

impl ChannelKind {
    /// Every kind, so each label exists from the start.
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Webhook,
        ChannelKind::Ntfy,
        ChannelKind::Slack,
        ChannelKind::Email,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Ntfy => "ntfy",
            ChannelKind::Slack => "slack",
            ChannelKind::Email => "email",
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The endpoint could not be reached or the exchange broke off.
    #[error("{0}")]
    Transport(String),
    /// No complete answer within the attempt's time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint answered with an error status.
    #[error("answered HTTP {0}")]
    Status(StatusCode),
    /// The mail server refused for good (a 5xx reply).
    #[error("refused: {0}")]
    Refused(String),
}

impl DeliveryError {
    /// Whether another attempt could succeed: not after a refusal that will stand (a 4xx other
    /// than timeout and rate limit, or a permanent SMTP reply).
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Transport(_) | DeliveryError::Timeout(_) => true,
            DeliveryError::Status(status) => {
                status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
            }
            DeliveryError::Refused(_) => false,
        }
    }
}

/// A configured destination.
pub enum Channel {
    /// POSTs the notice as JSON.
    Webhook(Endpoint),
    /// POSTs the text with Title / Priority / Tags headers.
    Ntfy(NtfySettings),
    /// POSTs `{"text": …}`.
    Slack(Endpoint),
    /// Sends a mail; the transport is built once, it connects per message.
    Email(Box<Email>),
}

/// An SMTP transport and the envelope.
pub struct Email {
    settings: EmailSettings,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Channel {
    /// Its metric label.
    pub fn kind(&self) -> ChannelKind {
        match self {
            Channel::Webhook(_) => ChannelKind::Webhook,
            Channel::Ntfy(_) => ChannelKind::Ntfy,
            Channel::Slack(_) => ChannelKind::Slack,
            Channel::Email(_) => ChannelKind::Email,
        }
    }

    /// Where it sends to, secrets masked.
    pub fn shown(&self) -> &str {
        match self {
            Channel::Webhook(endpoint) | Channel::Slack(endpoint) => endpoint.shown(),
            Channel::Ntfy(ntfy) => ntfy.endpoint.shown(),
            Channel::Email(email) => &email.settings.server.shown,
        }
    }

    /// An e-mail channel; `timeout` bounds connecting and each SMTP command.
    pub fn email(settings: EmailSettings, timeout: Duration) -> Result<Self, DeliveryError> {
        let server = &settings.server;
        let tls = match server.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters(server)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(server)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
            .port(server.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, password)) = &server.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        let transport = builder.build();
        Ok(Channel::Email(Box::new(Email {
            settings,
            transport,
        })))
    }

    /// One attempt; `http` carries the per-attempt timeout for the HTTP channels.
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        notice: &Notice,
        timeout: Duration,
    ) -> Result<(), DeliveryError> {
        match self {
            Channel::Webhook(endpoint) => {
                let request = http.post(endpoint.url().clone()).json(notice);
                send_http(request, timeout).await
            }
            Channel::Ntfy(ntfy) => {
                let mut request = http
                    .post(ntfy.endpoint.url().clone())
                    .header("Title", header_text(&notice.title()))
                    .header("Priority", ntfy_priority(notice))
                    .header("Tags", ntfy_tags(notice))
                    .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(notice.text());
                if let Some(token) = &ntfy.token {
                    request = request.bearer_auth(token.expose_secret());
                }
                send_http(request, timeout).await
            }
            Channel::Slack(endpoint) => {
                let body = serde_json::json!({ "text": slack_text(notice) });
                let request = http.post(endpoint.url().clone()).json(&body);
                send_http(request, timeout).await
            }
            Channel::Email(email) => email.send(notice, timeout).await,
        }
    }
}

impl Email {
    async fn send(&self, notice: &Notice, timeout: Duration) -> Result<(), DeliveryError> {
        let mut builder = Message::builder()
            .from(self.settings.from.clone())
            .subject(notice.title());
        for to in &self.settings.to {
            builder = builder.to(to.clone());
        }
        let message = builder
            .header(ContentType::TEXT_PLAIN)
            .body(format!(
                "{}\n\n-- \nhostpulse, host {} at {}\n",
                notice.text(),
                notice.host,
                notice.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))
            .map_err(|e| DeliveryError::Refused(format!("cannot build the mail: {e}")))?;
        // lettre's own timeout covers each step; this one bounds the whole exchange.
        match tokio::time::timeout(timeout, self.transport.send(message)).await {
            Err(_) => Err(DeliveryError::Timeout(timeout)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(DeliveryError::Refused(e.to_string())),
            Ok(Err(e)) => Err(DeliveryError::Transport(e.to_string())),
        }
    }
}

/// The system's trusted certificates, plus the configured CA if there is one.
fn tls_parameters(server: &SmtpServer) -> Result<TlsParameters, DeliveryError> {
    let failed = |e: lettre::transport::smtp::Error| {
        DeliveryError::Transport(format!("TLS set-up failed: {e}"))
    };
    let mut builder = TlsParameters::builder(server.host.clone());
    if let Some(pem) = &server.ca_pem {
        builder = builder.add_root_certificate(Certificate::from_pem(pem).map_err(failed)?);
    }
    builder.build_rustls().map_err(failed)
}

/// Sends and maps the outcome; a 2xx is success.
async fn send_http(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(DeliveryError::Status(response.status())),
        Err(e) if e.is_timeout() => Err(DeliveryError::Timeout(timeout)),
        // reqwest's message names the URL, which may hold a token.
        Err(e) => Err(DeliveryError::Transport(error_chain(&e.without_url()))),
    }
}

/// An error and its causes on one line ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// HTTP header values must be visible ASCII; anything else becomes `?` (the body has it all).
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// ntfy's priority: urgent for critical, high for warning, default for reminders, low once
/// resolved.
fn ntfy_priority(notice: &Notice) -> &'static str {
    match notice.status() {
        NoticeStatus::Firing(Severity::Critical) => "urgent",
        NoticeStatus::Firing(Severity::Warning) => "high",
        NoticeStatus::Reminder(_) => "default",
        NoticeStatus::Resolved => "low",
    }
}

/// ntfy's tags: an emoji short code for the status (ntfy shows it before the title), then the
/// kinds of events.
fn ntfy_tags(notice: &Notice) -> String {
    let emoji = match notice.status() {
        NoticeStatus::Firing(Severity::Critical) => "rotating_light",
        NoticeStatus::Firing(Severity::Warning) => "warning",
        NoticeStatus::Reminder(_) => "bell",
        NoticeStatus::Resolved => "white_check_mark",
    };
    let mut tags = vec![emoji, "hostpulse"];
    for (kind, tag) in [
        (EventKind::Firing, "firing"),
        (EventKind::Reminder, "reminder"),
        (EventKind::Resolved, "resolved"),
    ] {
        if notice.events.iter().any(|e| e.kind == kind) {
            tags.push(tag);
        }
    }
    tags.join(",")
}

/// Slack's mrkdwn: a bold title, one bullet per event; `&`, `<`, `>` escaped as Slack asks.
fn slack_text(notice: &Notice) -> String {
    let mut text = format!("*{}*", slack_escape(&notice.title()));
    for event in &notice.events {
        text.push_str("\n• ");
        text.push_str(&slack_escape(&event.line()));
    }
    text
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lasting_refusals_stop_the_retries() {
        let retryable = |e: DeliveryError| e.is_retryable();
        assert!(retryable(DeliveryError::Status(StatusCode::BAD_GATEWAY)));
        assert!(retryable(DeliveryError::Status(
            StatusCode::TOO_MANY_REQUESTS
        )));
        assert!(retryable(DeliveryError::Timeout(Duration::from_secs(1))));
        assert!(!retryable(DeliveryError::Status(StatusCode::NOT_FOUND)));
        assert!(!retryable(DeliveryError::Refused(
            "550 no such user".into()
        )));
    }

    #[test]
    fn ntfy_priority_and_tags_follow_the_most_urgent_event() {
        use crate::alerts::notify::notice::{NoticeEvent, Severity};
        let event = |kind, severity| NoticeEvent {
            kind,
            rule: "load".to_owned(),
            item: None,
            severity,
            value: 9.0,
            peak: 9.5,
            threshold: 4.0,
            started_at: chrono::DateTime::UNIX_EPOCH,
            ended_at: None,
            summary: "load per core is high".to_owned(),
            reason: None,
        };
        let notice = |events| Notice::new("h", chrono::DateTime::UNIX_EPOCH, events);
        let warning = notice(vec![
            event(EventKind::Resolved, Severity::Critical),
            event(EventKind::Firing, Severity::Warning),
        ]);
        assert_eq!(ntfy_priority(&warning), "high");
        assert_eq!(ntfy_tags(&warning), "warning,hostpulse,firing,resolved");
        let reminder = notice(vec![event(EventKind::Reminder, Severity::Critical)]);
        assert_eq!(ntfy_priority(&reminder), "default");
        assert_eq!(ntfy_tags(&reminder), "bell,hostpulse,reminder");
    }

    #[test]
    fn header_text_keeps_ascii_only() {
        assert_eq!(header_text("CRITICAL hôte: temp\n"), "CRITICAL h?te: temp?");
    }

    #[test]
    fn slack_text_escapes_its_control_characters() {
        assert_eq!(
            slack_escape("a < b && c > d"),
            "a &lt; b &amp;&amp; c &gt; d"
        );
    }
}
