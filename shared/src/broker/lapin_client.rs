//! The broker through lapin, as the consumer uses it (the `lapin` feature; the publisher
//! leaves it off and links no lapin): connecting, the connection's events, declaring the
//! topology, the readings' properties in lapin's terms, the [`Lapin`] client the reconnect
//! supervisor drives, and [`ConfirmChannel`], a supervised confirm-mode channel.

use super::{
    connect_first, AMQPScheme, AMQPUri, BrokerState, QueueKind, QueueSpec, ReadingProperties,
};
use crate::reading::Reading;
use crate::reconnect::{supervise_with, Client, Session};
use crate::settings::BrokerSettings;
use futures_util::StreamExt;
use lapin::options::{
    BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;
use tokio::sync::watch;

/// Connects to the first broker node that answers ([`connect_first`]). Returns the
/// connection and the masked URL of the node that answered.
pub async fn connect(
    settings: &BrokerSettings,
    connection_name: &str,
) -> Result<(Connection, String), String> {
    connect_first(settings, |uri| async move {
        let properties =
            ConnectionProperties::default().with_connection_name(connection_name.into());
        let runtime =
            lapin::runtime::default_runtime().map_err(|e| format!("no async runtime: {e}"))?;
        // `amqps://`: the one TLS set-up both clients use (`TlsFiles::client_config`).
        let tls = match uri.scheme {
            AMQPScheme::AMQPS => Some(lapin::tcp::RustlsConnector::from(
                settings.tls.client_config()?,
            )),
            AMQPScheme::AMQP => None,
        };
        Connection::connector(
            uri,
            runtime,
            async move |uri: AMQPUri, runtime| {
                let host = uri.authority.host;
                let addresses = runtime.to_socket_addrs((host.clone(), uri.authority.port));
                let stream = lapin::tcp::AsyncTcpStream::connect(&runtime, addresses).await?;
                Ok(match &tls {
                    Some(tls) => stream.into_rustls(tls, &host).await?,
                    None => stream,
                })
            },
            properties,
        )
        .await
        .map_err(|e| e.to_string())
    })
    .await
}

/// Waits until the connection fails (socket closed, heartbeat missed, broker shut down) and
/// returns why; says on the way when the broker stops and starts taking messages.
pub async fn connection_lost(connection: &Connection) -> String {
    let mut events = connection.events_listener();
    while let Some(event) = events.next().await {
        match event {
            lapin::Event::Error(e) => return e.to_string(),
            lapin::Event::ConnectionBlocked(reason) => super::log_blocked(&reason),
            lapin::Event::ConnectionUnblocked => super::log_unblocked(),
            _ => {}
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
/// several numbers), in lapin's terms.
pub fn reading_properties(reading: &Reading, seq: u64, app_id: &str) -> BasicProperties {
    let properties = ReadingProperties::of(reading, seq, app_id);
    BasicProperties::default()
        .with_content_type(properties.content_type.into())
        .with_delivery_mode(properties.delivery_mode)
        .with_timestamp(properties.timestamp)
        .with_message_id(properties.message_id.into())
        .with_app_id(properties.app_id.into())
}

/// lapin, as the consumer uses it.
pub struct Lapin;

impl Client for Lapin {
    type Connection = Connection;

    async fn connect(
        settings: &BrokerSettings,
        connection_name: &str,
    ) -> Result<(Connection, String), String> {
        connect(settings, connection_name).await
    }

    async fn lost(connection: &Connection) -> String {
        connection_lost(connection).await
    }

    async fn close(connection: &Connection) {
        let _ = connection.close(200, "reconnecting".into()).await;
    }
}

/// [`supervise_with`] on lapin: the consumer's queues and its alerts' channel.
pub async fn supervise<S: Session<Lapin>>(
    settings: &BrokerSettings,
    connection_name: &str,
    reconnect_cap: Duration,
    status: &watch::Sender<BrokerState>,
    session: &mut S,
) {
    supervise_with::<Lapin, S>(settings, connection_name, reconnect_cap, status, session).await;
}

/// A channel in confirm mode on `exchange`, on lapin, kept open by its own supervised
/// connection and offered to every publisher task: the consumer's alerts exchange. (The
/// publisher's readings go through its own link on amqprs, `publisher/src/link.rs`.)
pub struct ConfirmChannel {
    /// The channel while connected, `None` otherwise.
    pub channel: watch::Receiver<Option<lapin::Channel>>,
    /// The connection's state.
    pub state: watch::Receiver<BrokerState>,
    /// Wake it when a publish found the channel closed while the connection looked fine: it
    /// reconnects.
    pub reopen: std::sync::Arc<tokio::sync::Notify>,
}

impl ConfirmChannel {
    /// Starts the supervisor (it runs until the runtime ends) and returns at once: publishing
    /// code sees the channel come and go.
    pub fn start(
        settings: BrokerSettings,
        kind: lapin::ExchangeKind,
        connection_name: &'static str,
        reconnect_cap: Duration,
    ) -> Self {
        let (channel_tx, channel) = watch::channel(None);
        let (state_tx, state) = watch::channel(BrokerState::connecting());
        let reopen = std::sync::Arc::new(tokio::sync::Notify::new());
        let mut session = ConfirmSession {
            exchange: settings.exchange.clone(),
            kind,
            channel: channel_tx,
            reopen: std::sync::Arc::clone(&reopen),
        };
        tokio::spawn(async move {
            supervise(
                &settings,
                connection_name,
                reconnect_cap,
                &state_tx,
                &mut session,
            )
            .await;
        });
        Self {
            channel,
            state,
            reopen,
        }
    }
}

/// What a [`ConfirmChannel`] runs on each connection: the exchange declared and one channel
/// in confirm mode, until it breaks.
struct ConfirmSession {
    exchange: String,
    kind: lapin::ExchangeKind,
    channel: watch::Sender<Option<lapin::Channel>>,
    reopen: std::sync::Arc<tokio::sync::Notify>,
}

impl Session<Lapin> for ConfirmSession {
    type Open = ();

    async fn open(&mut self, connection: &Connection, url: &str) -> Result<(), String> {
        let prepared = async {
            let channel = connection.create_channel().await?;
            declare_exchange_of(&channel, &self.exchange, self.kind.clone()).await?;
            channel
                .confirm_select(lapin::options::ConfirmSelectOptions::default())
                .await?;
            Ok::<_, lapin::Error>(channel)
        };
        let channel = prepared
            .await
            .map_err(|e| format!("{url}: cannot prepare the channel: {e}"))?;
        tracing::info!(broker = %url, exchange = %self.exchange, "connected to the broker");
        // Offered before the state says "connected", so a request that sees the state up
        // finds the channel too.
        self.channel.send_replace(Some(channel));
        Ok(())
    }

    async fn run(&mut self, (): ()) -> String {
        self.reopen.notified().await;
        "the publishing channel closed".to_owned()
    }

    fn ended(&mut self) {
        self.channel.send_replace(None);
    }
}
