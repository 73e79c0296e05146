//! The AMQP side both services share, whichever client they use: the broker nodes to try and
//! how (URLs parsed by `amq-protocol-uri`, heartbeat and frame size), the loop that tries
//! them in turn, the topology's names and options, the properties every reading carries, and
//! the broker's state as shown on `/health`. Nothing here links an AMQP client: the consumer
//! drives lapin through [`lapin_client`] (the `lapin` feature), the publisher drives amqprs
//! (`publisher/src/link.rs`). Staying connected is [`crate::reconnect`]'s job.

use crate::reading::Reading;
use crate::settings::BrokerSettings;
pub use amq_protocol_uri::{AMQPScheme, AMQPUri};
use serde::Serialize;
use std::future::Future;

#[cfg(feature = "lapin")]
pub mod lapin_client;
#[cfg(feature = "lapin")]
pub use lapin_client::{
    connect, connection_lost, declare_consumer_queue, declare_exchange, declare_exchange_of,
    reading_properties,
};

/// AMQP persistent delivery mode.
pub const PERSISTENT: u8 = 2;

/// The readings exchange's type: fanout, so every bound queue gets every reading. It is
/// durable, so it survives a broker restart and publishers never publish into the void.
pub const READINGS_EXCHANGE_KIND: &str = "fanout";

/// The largest AMQP frame asked for, unless the URL sets `frame_max`. A reading is about
/// 1 KiB, and larger messages are simply split across frames; lapin keeps 32 frames of read
/// and of write buffer per connection, so RabbitMQ's default 128 KiB frames would cost it
/// 8 MiB. (amqprs cannot ask for a frame size; its buffers grow with what passes.)
pub const FRAME_MAX: u32 = 8 * 1024;

/// One broker node as a client connects to it: the URL parsed, with our heartbeat and frame
/// size unless the URL sets its own.
pub fn node(url: &str, settings: &BrokerSettings) -> Result<AMQPUri, String> {
    let mut uri: AMQPUri = url.parse().map_err(|_| "not a valid AMQP URL".to_owned())?;
    // amqprs panics on a short string longer than 255 bytes; the parser lets one through.
    if uri.vhost.len() > 255 {
        return Err("the virtual host is longer than 255 bytes".to_owned());
    }
    // Heartbeats make a half-open connection (a broker that vanished without a FIN) fail
    // within about two intervals instead of never.
    uri.query.heartbeat.get_or_insert(settings.heartbeat_secs);
    uri.query.frame_max.get_or_insert(FRAME_MAX);
    Ok(uri)
}

/// Connects to the first broker node that answers, each attempt (`attempt`, given the node)
/// bounded by the connect timeout. Returns the connection and the masked URL of the node
/// that answered; the error names every node tried (passwords masked) and why it failed.
pub async fn connect_first<C, F, Fut>(
    settings: &BrokerSettings,
    mut attempt: F,
) -> Result<(C, String), String>
where
    F: FnMut(AMQPUri) -> Fut,
    Fut: Future<Output = Result<C, String>>,
{
    let mut failures = Vec::new();
    for (url, redacted) in settings.expose_urls() {
        let outcome = match node(url, settings) {
            Ok(uri) => tokio::time::timeout(settings.connect_timeout, attempt(uri))
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer within {}s",
                        settings.connect_timeout.as_secs()
                    ))
                }),
            Err(why) => Err(why),
        };
        match outcome {
            Ok(connection) => return Ok((connection, redacted.to_owned())),
            Err(why) => failures.push(format!("{redacted}: {why}")),
        }
    }
    Err(format!("no broker reachable: {}", failures.join("; ")))
}

/// Logs that the broker stopped taking messages (a memory or disk alarm), whichever client
/// heard it.
pub fn log_blocked(reason: &str) {
    tracing::warn!(%reason, "the broker stopped taking messages (blocked)");
}

/// Logs that the broker takes messages again.
pub fn log_unblocked() {
    tracing::info!("the broker takes messages again (unblocked)");
}

/// The AMQP properties of a reading, whichever client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingProperties<'a> {
    /// `application/json`.
    pub content_type: &'static str,
    /// [`PERSISTENT`]: the history's quorum queue keeps it on disk.
    pub delivery_mode: u8,
    /// When it was collected, in whole seconds since the epoch.
    pub timestamp: u64,
    /// The host and the number it went out under (see [`crate::reading::message_id`]).
    pub message_id: String,
    /// Which program sent it.
    pub app_id: &'a str,
}

impl<'a> ReadingProperties<'a> {
    /// The properties of `reading` published as number `seq` (one sample may go out under
    /// several numbers) by `app_id`.
    pub fn of(reading: &Reading, seq: u64, app_id: &'a str) -> Self {
        Self {
            content_type: "application/json",
            delivery_mode: PERSISTENT,
            timestamp: u64::try_from(reading.collected_at.timestamp()).unwrap_or(0),
            message_id: crate::reading::message_id(&reading.host, seq),
            app_id,
        }
    }
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
