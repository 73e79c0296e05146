//! Staying connected, written once for both services: connect, set up what runs on the
//! connection, run it until the connection fails, report each change of state, wait a
//! growing, jittered delay, and start over. Each service says what it runs as a [`Session`],
//! on the AMQP [`Client`] it uses: lapin for the consumer (`broker::lapin_client`, the
//! `lapin` feature), amqprs for the publisher (its `link` module).

use crate::broker::BrokerState;
use crate::settings::BrokerSettings;
use backon::BackoffBuilder;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

#[cfg(feature = "lapin")]
pub use crate::broker::lapin_client::{supervise, ConfirmChannel, Lapin};

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

/// What a service runs on each connection.
pub trait Session<C: Client>: Send {
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
