//! The publisher's connection to RabbitMQ, on amqprs: connect (to the first node that
//! answers, over TLS for `amqps://`), declare the durable fanout exchange, open one channel in
//! confirm mode, offer it to every publishing task, and start over when any of it breaks.
//!
//! The consumer stays on lapin (`shared::broker::lapin_client`); the publisher, which runs on
//! every host, uses amqprs because lapin keeps two fixed 256 KiB rings per connection whose
//! pages become resident as bytes pass (docs/performance.md, "After hours, not after a
//! minute"). It links amqprs only: `shared` is built without its `lapin` feature here, and
//! what both clients need (the nodes' URLs, the try-each-node loop, TLS, the topology's names,
//! the readings' properties) is written once in `shared`.
//!
//! amqprs reports confirmations and returned messages to a callback; [`PublishChannel`] turns
//! them back into one answer per publish: each publish takes the next delivery tag while it
//! holds the order lock, so tags follow the order the frames leave in; a `basic.return` (which
//! the broker sends before the same message's `basic.ack`) marks its publish by message id.

use amqprs::callbacks::{ChannelCallback, ConnectionCallback};
use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{Ack, BasicProperties, Cancel, Close, CloseChannel, Nack, Return};
use shared::broker::{connect_first, AMQPScheme, AMQPUri, BrokerState};
use shared::reconnect::{supervise_with, Client, Session};
use shared::settings::BrokerSettings;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};

/// What the broker made of one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// Taken, and routed to at least one queue (or not asked to be).
    Ack,
    /// Taken, but no queue was bound: returned (only for `mandatory` publishes).
    Returned,
    /// Refused.
    Nack,
}

/// Why a publish got no confirmation.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the channel closed before the broker confirmed")]
    Closed,
    #[error("{0}")]
    Amqp(#[from] amqprs::error::Error),
}

/// One publish waiting for its confirmation.
struct Waiting {
    message_id: String,
    returned: bool,
    answer: oneshot::Sender<Confirmed>,
}

/// Publishes not yet confirmed, by delivery tag.
#[derive(Default)]
struct Pending {
    /// The last delivery tag given (the broker numbers a confirm channel's messages from 1).
    last_tag: u64,
    waiting: BTreeMap<u64, Waiting>,
    /// Set once the channel is gone: later publishes fail at once.
    closed: bool,
}

impl Pending {
    /// The next delivery tag, for a publish that waits on `answer`.
    fn take(
        &mut self,
        message_id: String,
        answer: oneshot::Sender<Confirmed>,
    ) -> Result<u64, LinkError> {
        if self.closed {
            return Err(LinkError::Closed);
        }
        self.last_tag += 1;
        let waiting = Waiting {
            message_id,
            returned: false,
            answer,
        };
        self.waiting.insert(self.last_tag, waiting);
        Ok(self.last_tag)
    }

    /// Gives back the last tag taken, for a message that was never sent.
    fn give_back(&mut self, tag: u64) {
        if self.waiting.remove(&tag).is_some() && self.last_tag == tag {
            self.last_tag -= 1;
        }
    }
}

/// A delivery tag taken for a publish: given back unless the message reached amqprs, so that
/// a publish that failed or was dropped half-way does not shift the numbering of the next ones.
struct TagTaken<'a> {
    pending: &'a Shared,
    tag: u64,
    sent: bool,
}

impl Drop for TagTaken<'_> {
    fn drop(&mut self) {
        if !self.sent {
            lock(self.pending).give_back(self.tag);
        }
    }
}

type Shared = Arc<Mutex<Pending>>;

fn lock(pending: &Shared) -> std::sync::MutexGuard<'_, Pending> {
    // Nothing here can leave the map half-changed; a panic elsewhere does not poison it.
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A channel in confirm mode on one connection; every task publishes through it.
pub struct PublishChannel {
    channel: Channel,
    pending: Shared,
    /// Held from taking a delivery tag until the frames are handed to amqprs, so that tags
    /// and the broker's numbering agree.
    order: tokio::sync::Mutex<()>,
}

impl PublishChannel {
    /// Publishes `body` to `exchange` and waits for the broker's answer.
    pub async fn publish(
        &self,
        exchange: &str,
        body: Vec<u8>,
        properties: BasicProperties,
        mandatory: bool,
    ) -> Result<Confirmed, LinkError> {
        let (answer, confirmed) = oneshot::channel();
        let message_id = properties.message_id().cloned().unwrap_or_default();
        {
            let _order = self.order.lock().await;
            let mut taken = TagTaken {
                pending: &self.pending,
                tag: lock(&self.pending).take(message_id, answer)?,
                sent: false,
            };
            let arguments = BasicPublishArguments::new(exchange, "")
                .mandatory(mandatory)
                .finish();
            // amqprs hands the message to its writer with one cancel-safe send: an error, or
            // this publish dropped by its caller's timeout, means the broker never sees it.
            self.channel
                .basic_publish(properties, body, arguments)
                .await?;
            taken.sent = true;
        }
        confirmed.await.map_err(|_| LinkError::Closed)
    }

    /// Whether the channel is still usable.
    pub fn is_open(&self) -> bool {
        self.channel.is_open() && !lock(&self.pending).closed
    }
}

/// Fails every waiting publish and every later one.
fn close_pending(pending: &Shared) {
    let mut pending = lock(pending);
    pending.closed = true;
    // Dropping the senders answers each waiting publish with `LinkError::Closed`.
    pending.waiting.clear();
}

/// Turns the channel's callbacks into answers.
struct Callbacks {
    pending: Shared,
    /// Wakes the supervisor when the broker closes the channel.
    reopen: Arc<Notify>,
}

impl Callbacks {
    fn settle(&self, tag: u64, multiple: bool, how: Confirmed) {
        let answer = |waiting: Waiting| {
            let answer = match how {
                Confirmed::Ack if waiting.returned => Confirmed::Returned,
                other => other,
            };
            // The publisher may have stopped waiting (its timeout): nothing to tell.
            let _ = waiting.answer.send(answer);
        };
        let mut pending = lock(&self.pending);
        if multiple {
            // Every tag up to `tag`: what stays is what comes after it.
            let later = pending.waiting.split_off(&(tag + 1));
            let settled = std::mem::replace(&mut pending.waiting, later);
            settled.into_values().for_each(answer);
        } else if let Some(waiting) = pending.waiting.remove(&tag) {
            answer(waiting);
        }
    }
}

#[async_trait::async_trait]
impl ChannelCallback for Callbacks {
    async fn close(
        &mut self,
        _: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        tracing::warn!(reason = %close, "the broker closed the publishing channel");
        close_pending(&self.pending);
        self.reopen.notify_one();
        Ok(())
    }

    async fn cancel(&mut self, _: &Channel, _: Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }

    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }

    async fn publish_ack(&mut self, _: &Channel, ack: Ack) {
        self.settle(ack.delivery_tag(), ack.mutiple(), Confirmed::Ack);
    }

    async fn publish_nack(&mut self, _: &Channel, nack: Nack) {
        self.settle(nack.delivery_tag(), nack.multiple(), Confirmed::Nack);
    }

    async fn publish_return(
        &mut self,
        _: &Channel,
        _: Return,
        properties: BasicProperties,
        _: Vec<u8>,
    ) {
        let Some(id) = properties.message_id() else {
            return;
        };
        let mut pending = lock(&self.pending);
        if let Some(waiting) = pending
            .waiting
            .values_mut()
            .find(|w| !w.returned && w.message_id == *id)
        {
            waiting.returned = true;
        }
    }
}

/// The connection's own callbacks: a broker that stops taking messages (a memory or disk
/// alarm) is worth a line in the log.
struct ConnectionEvents;

#[async_trait::async_trait]
impl ConnectionCallback for ConnectionEvents {
    async fn close(&mut self, _: &Connection, close: Close) -> Result<(), amqprs::error::Error> {
        tracing::warn!(reason = %close, "the broker closed the connection");
        Ok(())
    }

    async fn blocked(&mut self, _: &Connection, reason: String) {
        shared::broker::log_blocked(&reason);
    }

    async fn unblocked(&mut self, _: &Connection) {
        shared::broker::log_unblocked();
    }

    async fn secret_updated(&mut self, _: &Connection) {}
}

/// The link as publishing code sees it.
pub struct Link {
    /// The channel while connected, `None` otherwise.
    pub channel: watch::Receiver<Option<Arc<PublishChannel>>>,
    /// The connection's state.
    pub state: watch::Receiver<BrokerState>,
    /// Wake it when a publish found the channel closed while the connection looked fine: it
    /// reconnects.
    pub reopen: Arc<Notify>,
    /// Where the connection runs; nothing connects until it is settled somewhere.
    pub home: LinkHome,
}

impl Link {
    /// Prepares the link; it connects once [`LinkHome::settle_here`] is called on the
    /// runtime it is to run on. Publishing code sees the channel come and go.
    pub fn new(settings: BrokerSettings, connection_name: &'static str, cap: Duration) -> Self {
        let (offered, channel) = watch::channel(None);
        let (state_tx, state) = watch::channel(BrokerState::connecting());
        let reopen = Arc::new(Notify::new());
        let home = LinkHome(Arc::new(Home {
            settings,
            connection_name,
            cap,
            state: state_tx,
            offered,
            reopen: Arc::clone(&reopen),
            settled: AtomicBool::new(false),
        }));
        Self {
            channel,
            state,
            reopen,
            home,
        }
    }
}

/// Runs the link's supervisor (`shared::reconnect`: connect, keep one confirm channel open,
/// reconnect) on a runtime chosen by whoever calls [`LinkHome::settle_here`].
///
/// amqprs runs its reader and writer as tasks of the runtime that opened the connection, so
/// the connection lives where the supervisor does. The publisher settles it on the thread
/// that serves HTTP: a `/publish` and its confirmation then never wake another thread, which
/// is most of what a publish cost (BENCHMARKS.md, "One thread serves and publishes"). When that
/// runtime ends (the server stopped), the supervisor ends with it and may be settled again
/// elsewhere: the shutdown drain does so on the main runtime.
#[derive(Clone)]
pub struct LinkHome(Arc<Home>);

struct Home {
    settings: BrokerSettings,
    connection_name: &'static str,
    cap: Duration,
    state: watch::Sender<BrokerState>,
    offered: watch::Sender<Option<Arc<PublishChannel>>>,
    reopen: Arc<Notify>,
    /// Whether a supervisor runs somewhere now.
    settled: AtomicBool,
}

impl LinkHome {
    /// Starts the supervisor on the current Tokio runtime (call it from inside one) unless
    /// one runs already (here or on another runtime still alive); returns whether it started
    /// it.
    pub fn settle_here(&self) -> bool {
        if self.0.settled.swap(true, Ordering::AcqRel) {
            return false;
        }
        let home = Arc::clone(&self.0);
        tokio::spawn(async move {
            let mut resident = Resident {
                session: Publishing {
                    exchange: home.settings.exchange.clone(),
                    offered: home.offered.clone(),
                    current: None,
                    reopen: Arc::clone(&home.reopen),
                },
                home,
            };
            let Resident { session, home } = &mut resident;
            supervise_with::<Amqprs, _>(
                &home.settings,
                home.connection_name,
                home.cap,
                &home.state,
                session,
            )
            .await;
        });
        true
    }

    /// Whether a supervisor runs now.
    pub fn is_settled(&self) -> bool {
        self.0.settled.load(Ordering::Acquire)
    }
}

/// A running supervisor's session; dropped with its runtime, it withdraws the channel,
/// fails what still waits on it, says the link is down, and frees the link to settle again.
struct Resident {
    session: Publishing,
    home: Arc<Home>,
}

impl Drop for Resident {
    fn drop(&mut self) {
        self.session.ended();
        let url = self.home.state.borrow().url.clone();
        self.home.state.send_replace(BrokerState::down(
            url,
            "the thread the broker link ran on stopped".to_owned(),
        ));
        self.home.settled.store(false, Ordering::Release);
    }
}

/// amqprs, as the supervisor drives it.
pub struct Amqprs;

impl Client for Amqprs {
    type Connection = Connection;

    async fn connect(
        settings: &BrokerSettings,
        connection_name: &str,
    ) -> Result<(Connection, String), String> {
        connect(settings, connection_name).await
    }

    async fn lost(connection: &Connection) -> String {
        // A connection that failed before anyone listened is not waited on. amqprs says only
        // whether the network failed, not how, so both ways are named.
        if !connection.is_open() || connection.listen_network_io_failure().await {
            format!(
                "the connection to the broker failed: the socket broke, or the broker sent \
                 nothing, not even a heartbeat, for two heartbeat intervals ({} s each)",
                connection.heartbeat()
            )
        } else {
            "the broker closed the connection".to_owned()
        }
    }

    async fn close(connection: &Connection) {
        // In a task of its own: amqprs's reader task panics when a request it answers was
        // dropped half-way, which the supervisor's timeout around this would do.
        let connection = connection.clone();
        let _ = tokio::spawn(async move { connection.close().await }).await;
    }
}

/// What runs on each connection: the exchange declared and one channel in confirm mode,
/// offered to every publishing task until it breaks.
struct Publishing {
    exchange: String,
    offered: watch::Sender<Option<Arc<PublishChannel>>>,
    /// The channel offered now, to fail what still waits on it once it is gone.
    current: Option<Arc<PublishChannel>>,
    reopen: Arc<Notify>,
}

impl Session<Amqprs> for Publishing {
    type Open = ();

    async fn open(&mut self, connection: &Connection, url: &str) -> Result<(), String> {
        let pending = Shared::default();
        let (connection, callbacks, exchange) = (
            connection.clone(),
            Callbacks {
                pending: Arc::clone(&pending),
                reopen: Arc::clone(&self.reopen),
            },
            self.exchange.clone(),
        );
        // In a task of its own, so that the supervisor's timeout never drops amqprs's requests
        // half-way (its reader task panics when an answer finds no one waiting).
        let prepared = tokio::spawn(async move {
            let channel = connection.open_channel(None).await?;
            channel.register_callback(callbacks).await?;
            channel
                .exchange_declare(
                    ExchangeDeclareArguments::new(
                        &exchange,
                        shared::broker::READINGS_EXCHANGE_KIND,
                    )
                    .durable(true)
                    .finish(),
                )
                .await?;
            channel
                .confirm_select(ConfirmSelectArguments::default())
                .await?;
            Ok::<_, amqprs::error::Error>(channel)
        });
        let channel = prepared
            .await
            .map_err(|e| format!("{url}: cannot prepare the channel: {e}"))?
            .map_err(|e| format!("{url}: cannot prepare the channel: {e}"))?;
        tracing::info!(broker = %url, exchange = %self.exchange, "connected to the broker");
        let channel = Arc::new(PublishChannel {
            channel,
            pending,
            order: tokio::sync::Mutex::new(()),
        });
        // Offered before the state says "connected", so a request that sees the state up
        // finds the channel too.
        self.offered.send_replace(Some(Arc::clone(&channel)));
        self.current = Some(channel);
        Ok(())
    }

    async fn run(&mut self, (): ()) -> String {
        self.reopen.notified().await;
        "the publishing channel closed".to_owned()
    }

    fn ended(&mut self) {
        self.offered.send_replace(None);
        if let Some(channel) = self.current.take() {
            close_pending(&channel.pending);
        }
    }
}

/// Connects to the first broker node that answers (`shared::broker::connect_first`, the same
/// loop the consumer's lapin uses). Returns the connection and the masked URL of that node.
async fn connect(
    settings: &BrokerSettings,
    connection_name: &str,
) -> Result<(Connection, String), String> {
    connect_first(settings, |uri| async move {
        let arguments = arguments(&uri, settings, connection_name)?;
        // In a task of its own, for the reason `Publishing::open` gives; one that answers
        // after the timeout is dropped, which closes it.
        let connection = tokio::spawn(async move { Connection::open(&arguments).await })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if let Err(e) = connection.register_callback(ConnectionEvents).await {
            let _ = connection.close().await;
            return Err(e.to_string());
        }
        Ok(connection)
    })
    .await
}

/// amqprs's connection arguments for one node (`shared::broker::node`: the URL parsed, our
/// heartbeat unless the URL sets one). amqprs takes the broker's frame size; it cannot ask
/// for one, and its buffers grow with what passes rather than being fixed rings.
fn arguments(
    uri: &AMQPUri,
    settings: &BrokerSettings,
    connection_name: &str,
) -> Result<OpenConnectionArguments, String> {
    let host = uri.authority.host.clone();
    let mut arguments = OpenConnectionArguments::new(
        &host,
        uri.authority.port,
        &uri.authority.userinfo.username,
        &uri.authority.userinfo.password,
    );
    arguments
        .virtual_host(&uri.vhost)
        .heartbeat(uri.query.heartbeat.unwrap_or(settings.heartbeat_secs))
        .connection_name(connection_name);
    if uri.scheme == AMQPScheme::AMQPS {
        let config = settings.tls.client_config()?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        arguments.tls_adaptor(amqprs::tls::TlsAdaptor::new(connector, host));
    }
    Ok(arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multiple_ack_answers_every_publish_up_to_its_tag_and_no_later_one() {
        let pending = Shared::default();
        let callbacks = Callbacks {
            pending: Arc::clone(&pending),
            reopen: Arc::new(Notify::new()),
        };
        let mut answers = Vec::new();
        for seq in 1..=3 {
            let (answer, waits) = oneshot::channel();
            lock(&pending)
                .take(format!("a:{seq}"), answer)
                .expect("open");
            answers.push(waits);
        }
        callbacks.settle(2, true, Confirmed::Ack);
        let mut answers = answers.into_iter();
        for _ in 0..2 {
            let mut answer = answers.next().expect("an answer");
            assert_eq!(answer.try_recv(), Ok(Confirmed::Ack));
        }
        let mut third = answers.next().expect("the third");
        assert!(third.try_recv().is_err(), "tag 3 is not confirmed yet");
        // Returned before its ack: the ack answers "returned".
        lock(&pending)
            .waiting
            .get_mut(&3)
            .expect("waiting")
            .returned = true;
        callbacks.settle(3, false, Confirmed::Ack);
        assert_eq!(third.try_recv(), Ok(Confirmed::Returned));
        assert!(lock(&pending).waiting.is_empty());
    }

    #[test]
    fn a_tag_taken_for_a_message_never_sent_is_given_back() {
        let pending = Shared::default();
        let (first, _first_waits) = oneshot::channel();
        let sent = TagTaken {
            pending: &pending,
            tag: lock(&pending).take("a:1".into(), first).expect("open"),
            sent: true,
        };
        assert_eq!(sent.tag, 1);
        drop(sent);
        let (second, _second_waits) = oneshot::channel();
        let dropped = TagTaken {
            pending: &pending,
            tag: lock(&pending).take("a:2".into(), second).expect("open"),
            sent: false,
        };
        assert_eq!(dropped.tag, 2);
        drop(dropped);
        // The broker numbers the next message it sees 2: so must we.
        let (third, _third_waits) = oneshot::channel();
        assert_eq!(lock(&pending).take("a:3".into(), third).expect("open"), 2);
        assert_eq!(
            lock(&pending).waiting.keys().copied().collect::<Vec<_>>(),
            [1, 2]
        );
        // Once the channel is gone, no tag is handed out.
        close_pending(&pending);
        let (fourth, _fourth_waits) = oneshot::channel();
        assert!(matches!(
            lock(&pending).take("a:4".into(), fourth),
            Err(LinkError::Closed)
        ));
    }

    fn settings() -> BrokerSettings {
        BrokerSettings::from_env(&shared::settings::EnvSource::from_pairs([(
            "EXCHANGE_NAME",
            "link-test",
        )]))
        .expect("defaults")
    }

    /// amqprs's arguments for `url`, as `connect` makes them.
    fn arguments_for(url: &str, settings: &BrokerSettings) -> Result<(), String> {
        let uri = shared::broker::node(url, settings)?;
        arguments(&uri, settings, "test").map(|_| ())
    }

    #[test]
    fn a_virtual_host_too_long_for_amqp_is_refused_not_a_panic() {
        let long = format!("amqp://guest:guest@127.0.0.1:5672/{}", "v".repeat(256));
        let refused = arguments_for(&long, &settings()).expect_err("too long");
        assert!(refused.contains("255 bytes"), "{refused}");
        let fits = format!("amqp://guest:guest@127.0.0.1:5672/{}", "v".repeat(255));
        assert!(arguments_for(&fits, &settings()).is_ok());
    }

    #[test]
    fn an_amqps_url_gets_tls_and_a_bad_client_key_is_named_without_its_text() {
        let mut tls = settings();
        tls.tls.client = Some((
            b"not a certificate".to_vec(),
            secrecy::SecretString::from("hunter2-not-a-key"),
        ));
        let refused = arguments_for("amqps://guest:guest@localhost:5671/%2f", &tls)
            .expect_err("no usable client key");
        assert!(refused.starts_with("AMQP_CLIENT_KEY"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
    }
}
