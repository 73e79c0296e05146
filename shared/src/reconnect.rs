//! Staying connected, written once for both services: connect, set up what runs on the
//! connection, run it until the connection fails, report each change of state, wait a
//! growing, jittered delay, and start over. Each service says what it runs as a [`Session`],
//! on the AMQP [`Client`] it uses: lapin for the consumer, amqprs for the publisher (its
//! `link` module).

use crate::broker::{self, BrokerState};
use crate::settings::BrokerSettings;
use backon::BackoffBuilder;
use lapin::Connection;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// An AMQP client, as the supervisor drives it.
pub trait Client {
    type Connection: Send + Sync;

    /// Connects to the first node that answers, each attempt bounded by the connect timeout;
    /// the connection and that node's URL with the password masked. An error names every
    /// node tried and never holds a password.
    fn connect(
        settings: &BrokerSettings,
        connection_name: &str,
    ) -> impl Future<Output = Result<(Self::Connection, String), String>> + Send;

    /// Waits until the connection fails (socket closed, heartbeat missed, broker shut down)
    /// and says why.
    fn lost(connection: &Self::Connection) -> impl Future<Output = String> + Send;

    /// Closes the connection; the supervisor bounds how long it waits.
    fn close(connection: &Self::Connection) -> impl Future<Output = ()> + Send;
}

/// lapin, as the consumer uses it.
pub struct Lapin;

impl Client for Lapin {
    type Connection = Connection;

    async fn connect(
        settings: &BrokerSettings,
        connection_name: &str,
    ) -> Result<(Connection, String), String> {
        broker::connect(settings, connection_name)
            .await
            .map_err(|e| e.to_string())
    }

    async fn lost(connection: &Connection) -> String {
        broker::connection_lost(connection).await
    }

    async fn close(connection: &Connection) {
        let _ = connection.close(200, "reconnecting".into()).await;
    }
}

/// What a service runs on each connection.
pub trait Session<C: Client = Lapin>: Send {
    /// What [`Session::open`] sets up and [`Session::run`] uses (channels, consumers).
    type Open: Send;

    /// Sets up channels and topology on a fresh connection; `Err` says why it could not.
    /// Bounded by the connect timeout.
    fn open(
        &mut self,
        connection: &C::Connection,
        url: &str,
    ) -> impl Future<Output = Result<Self::Open, String>> + Send;

    /// Works on the opened connection until something fails; returns why. It is also stopped
    /// when the connection itself fails.
    fn run(&mut self, open: Self::Open) -> impl Future<Output = String> + Send;

    /// Called once the connection is gone, before the next attempt.
    fn ended(&mut self) {}
}

/// [`supervise_with`] on lapin.
pub async fn supervise<S: Session>(
    settings: &BrokerSettings,
    connection_name: &str,
    reconnect_cap: Duration,
    status: &watch::Sender<BrokerState>,
    session: &mut S,
) {
    supervise_with::<Lapin, S>(settings, connection_name, reconnect_cap, status, session).await;
}

/// Keeps `session` running on a connection to the broker for as long as the task lives,
/// reconnecting at most `reconnect_cap` apart; every change of state goes to `status`.
pub async fn supervise_with<C: Client, S: Session<C>>(
    settings: &BrokerSettings,
    connection_name: &str,
    reconnect_cap: Duration,
    status: &watch::Sender<BrokerState>,
    session: &mut S,
) {
    let mut delays = reconnect_delays(reconnect_cap);
    let mut retries = RetryLog::default();
    loop {
        match C::connect(settings, connection_name).await {
            Ok((connection, url)) => {
                let opened =
                    tokio::time::timeout(settings.connect_timeout, session.open(&connection, &url))
                        .await
                        .unwrap_or_else(|_| {
                            Err(format!("{url}: the broker did not answer while setting up"))
                        });
                match opened {
                    Ok(open) => {
                        retries.connected();
                        delays = reconnect_delays(reconnect_cap);
                        status.send_replace(BrokerState::up(url.clone()));
                        let why = tokio::select! {
                            why = C::lost(&connection) => why,
                            why = session.run(open) => why,
                        };
                        session.ended();
                        tracing::warn!(broker = %url, error = %why, "lost the broker; reconnecting");
                        status.send_replace(BrokerState::down(Some(url), why));
                    }
                    Err(why) => {
                        session.ended();
                        retries.failed(&why);
                        status.send_replace(BrokerState::down(Some(url), why));
                    }
                }
                // A connection that broke may never answer a close: never wait on it for long.
                let _ = tokio::time::timeout(settings.connect_timeout, C::close(&connection)).await;
            }
            Err(why) => {
                retries.failed(&why);
                status.send_replace(BrokerState::down(None, why));
            }
        }
        if let Some(delay) = delays.next() {
            tokio::time::sleep(delay).await;
        }
    }
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

impl Session for ConfirmSession {
    type Open = ();

    async fn open(&mut self, connection: &Connection, url: &str) -> Result<(), String> {
        let prepared = async {
            let channel = connection.create_channel().await?;
            broker::declare_exchange_of(&channel, &self.exchange, self.kind.clone()).await?;
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

/// Delays between reconnect attempts: exponential from 250 ms, with jitter so a fleet of
/// publishers does not stampede a broker that comes back, never above `cap`.
pub fn reconnect_delays(cap: Duration) -> impl Iterator<Item = Duration> {
    // backon's jitter adds up to one more delay, so the base is capped at half.
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250).min(cap))
        // Gentler than doubling: more attempts in the first seconds, when a restarted broker
        // usually returns.
        .with_factor(1.5)
        .with_max_delay(cap / 2)
        .with_jitter()
        .without_max_times()
        .build()
        .map(move |d| d.min(cap))
}

/// Logs failed connection attempts without flooding: the first of an outage, then attempts
/// 2, 4, 8, … (a long outage costs a handful of lines, not one per attempt).
#[derive(Debug, Default)]
pub struct RetryLog {
    failures: u64,
}

impl RetryLog {
    /// A connection worked: the next failure starts a new outage.
    pub fn connected(&mut self) {
        self.failures = 0;
    }

    /// An attempt failed because of `why`.
    pub fn failed(&mut self, why: &str) {
        self.failures += 1;
        if self.failures.is_power_of_two() {
            tracing::warn!(error = %why, attempts = self.failures, "cannot reach the broker; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_grow_and_stay_under_the_cap() {
        let cap = Duration::from_secs(30);
        let delays: Vec<_> = reconnect_delays(cap).take(40).collect();
        assert!(delays[0] < Duration::from_secs(1), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= cap), "{delays:?}");
        assert!(delays[20] >= cap / 2, "{delays:?}");
        // Jitter: the capped tail is not one repeated value.
        let tail: std::collections::HashSet<_> = delays[20..].iter().collect();
        assert!(tail.len() > 1, "{delays:?}");
    }
}
