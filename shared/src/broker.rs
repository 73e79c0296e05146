//! The AMQP side shared by both services: connecting (with a timeout, trying each node in
//! turn), the topology, the message properties and the broker's state as shown on `/health`.
//! Staying connected is [`crate::reconnect`]'s job.

use crate::reading::Reading;
use crate::settings::BrokerSettings;
use futures_util::StreamExt;
use lapin::options::{
    BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde::Serialize;

/// AMQP persistent delivery mode.
pub const PERSISTENT: u8 = 2;

/// The largest AMQP frame asked for, unless the URL sets `frame_max`.
const FRAME_MAX: u32 = 8 * 1024;

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Every node failed; the text lists each (with passwords masked).
    #[error("no broker reachable: {0}")]
    Unreachable(String),
}

/// Connects to the first broker node that answers, each attempt bounded by the timeout.
/// Returns the connection and the masked URL of the node that answered.
pub async fn connect(
    settings: &BrokerSettings,
    connection_name: &str,
) -> Result<(Connection, String), ConnectError> {
    let mut failures = Vec::new();
    for (url, redacted) in settings.expose_urls() {
        let mut uri: lapin::uri::AMQPUri = match url.parse() {
            Ok(uri) => uri,
            Err(_) => {
                failures.push(format!("{redacted}: invalid URL"));
                continue;
            }
        };
        // Heartbeats make a half-open connection (a broker that vanished without a FIN)
        // fail within about two intervals instead of never.
        uri.query.heartbeat.get_or_insert(settings.heartbeat_secs);
        // lapin keeps 32 frames of read and of write buffer per connection: at RabbitMQ's
        // default 128 KiB frames that is 8 MiB, most of the publisher's memory. A reading is
        // about 1 KiB, and larger messages are simply split across frames.
        uri.query.frame_max.get_or_insert(FRAME_MAX);
        let properties =
            ConnectionProperties::default().with_connection_name(connection_name.into());
        let runtime = match lapin::runtime::default_runtime() {
            Ok(runtime) => runtime,
            Err(e) => {
                failures.push(format!("{redacted}: no async runtime: {e}"));
                continue;
            }
        };
        let attempt = Connection::connect_uri_with_config(
            uri,
            properties,
            tls_config(&settings.tls),
            runtime,
        );
        match tokio::time::timeout(settings.connect_timeout, attempt).await {
            Ok(Ok(connection)) => return Ok((connection, redacted.to_owned())),
            Ok(Err(e)) => failures.push(format!("{redacted}: {e}")),
            Err(_) => failures.push(format!(
                "{redacted}: no answer within {}s",
                settings.connect_timeout.as_secs()
            )),
        }
    }
    Err(ConnectError::Unreachable(failures.join("; ")))
}

/// lapin's TLS settings from ours; used only for `amqps://` URLs.
fn tls_config(files: &crate::settings::TlsFiles) -> lapin::tcp::OwnedTLSConfig {
    use secrecy::ExposeSecret;
    lapin::tcp::OwnedTLSConfig {
        cert_chain: files.ca_pem.clone(),
        identity: files
            .client
            .as_ref()
            .map(|(cert, key)| lapin::tcp::OwnedIdentity::PKCS8 {
                pem: cert.clone(),
                key: key.expose_secret().as_bytes().to_vec(),
            }),
    }
}

/// Waits until the connection fails (socket closed, heartbeat missed, broker shut down) and
/// returns why.
pub async fn connection_lost(connection: &Connection) -> String {
    let mut events = connection.events_listener();
    while let Some(event) = events.next().await {
        if let lapin::Event::Error(e) = event {
            return e.to_string();
        }
    }
    "connection closed".to_owned()
}

/// Declares the readings exchange: fanout, so every bound consumer queue gets every reading;
/// durable, so it survives a broker restart and publishers never publish into the void.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
    declare_exchange_of(channel, exchange, ExchangeKind::Fanout).await
}

/// Declares a durable exchange of `kind` (the alerts' is a topic exchange).
pub async fn declare_exchange_of(
    channel: &Channel,
    exchange: &str,
    kind: ExchangeKind,
) -> lapin::Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                auto_delete: false,
                internal: false,
                passive: false,
                nowait: false,
            },
            FieldTable::default(),
        )
        .await
}

/// How a consumer's queue is declared.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    /// `None` lets the broker pick a unique name (live queues only).
    pub name: Option<String>,
    /// At most this many readings wait in the queue; beyond it the oldest are dropped.
    pub max_length: u32,
    /// Unacknowledged deliveries in flight to this consumer.
    pub prefetch: u16,
    /// Whose queue it is.
    pub kind: QueueKind,
}

/// Whose queue it is, which decides how it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// One consumer's live view: exclusive, gone with its connection. Each consumer sees
    /// readings from the moment it binds; nothing piles up for a consumer that is gone.
    Live,
    /// A store's or the alert evaluator's: shared by every consumer that does that job, so
    /// readings wait while nobody takes them; it expires once unused for `expires`.
    Shared {
        expires: std::time::Duration,
        /// Only one consumer at a time receives (the others wait to take over).
        single_active: bool,
        /// A durable quorum queue, replicated in a cluster and kept across broker restarts
        /// (the store's: nothing may be lost). Otherwise a classic queue in memory (the
        /// evaluator's: it judges the state now, and a backlog lost with the broker is history).
        replicated: bool,
    },
}

/// Declares a consumer's queue, binds it to the exchange and sets the prefetch.
/// Returns the queue's name.
pub async fn declare_consumer_queue(
    channel: &Channel,
    exchange: &str,
    spec: &QueueSpec,
) -> lapin::Result<String> {
    let mut arguments = FieldTable::default();
    // A stalled consumer must never grow the broker without limit; the oldest readings are
    // the ones worth losing.
    arguments.insert("x-max-length".into(), AMQPValue::LongUInt(spec.max_length));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("drop-head".into()),
    );
    let options = match spec.kind {
        QueueKind::Live => QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            durable: false,
            passive: false,
            nowait: false,
        },
        QueueKind::Shared {
            expires,
            single_active,
            replicated,
        } => {
            let kind = if replicated { "quorum" } else { "classic" };
            arguments.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
            let expires_ms = u32::try_from(expires.as_millis()).unwrap_or(u32::MAX);
            arguments.insert("x-expires".into(), AMQPValue::LongUInt(expires_ms));
            if single_active {
                arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
            }
            QueueDeclareOptions {
                exclusive: false,
                auto_delete: false,
                durable: replicated,
                passive: false,
                nowait: false,
            }
        }
    };
    let queue = channel
        .queue_declare(
            spec.name.as_deref().unwrap_or("").into(),
            options,
            arguments,
        )
        .await?;
    let name = queue.name().to_string();
    channel
        .queue_bind(
            name.as_str().into(),
            exchange.into(),
            // Fanout exchanges ignore the routing key.
            ShortString::from(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .basic_qos(spec.prefetch, BasicQosOptions::default())
        .await?;
    Ok(name)
}

/// The AMQP properties of `reading` published as number `seq` (one sample may go out under
/// several numbers).
pub fn reading_properties(reading: &Reading, seq: u64, app_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(PERSISTENT)
        .with_timestamp(u64::try_from(reading.collected_at.timestamp()).unwrap_or(0))
        .with_message_id(crate::reading::message_id(&reading.host, seq).into())
        .with_app_id(app_id.into())
}

/// The broker connection as the service sees it, for `/health` and status frames.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BrokerState {
    pub connected: bool,
    /// The node in use (password masked), or the last one tried.
    pub url: Option<String>,
    /// Why the last attempt or connection failed, if it did.
    pub last_error: Option<String>,
    /// When the state last changed.
    pub since: chrono::DateTime<chrono::Utc>,
}

impl BrokerState {
    /// The state before the first connection attempt finishes.
    pub fn connecting() -> Self {
        Self {
            connected: false,
            url: None,
            last_error: None,
            since: chrono::Utc::now(),
        }
    }

    /// Connected to `url`.
    pub fn up(url: String) -> Self {
        Self {
            connected: true,
            url: Some(url),
            last_error: None,
            since: chrono::Utc::now(),
        }
    }

    /// Not connected, because of `error`.
    pub fn down(url: Option<String>, error: String) -> Self {
        Self {
            connected: false,
            url,
            last_error: Some(error),
            since: chrono::Utc::now(),
        }
    }
}
