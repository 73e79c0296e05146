//! The publisher's side of RabbitMQ: one connection and one confirm-mode channel, shared by
//! every request and the interval task, kept open (and reopened) by a supervisor task.

use crate::metrics::PublisherMetrics;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Confirmation, Connection};
use shared::broker::{self, BrokerState};
use shared::reading::Reading;
use shared::settings::BrokerSettings;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The name this service gives its messages and its connection.
pub const APP_ID: &str = "hostpulse-publisher";

/// Why a reading was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to the broker")]
    NotConnected,
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("the broker did not confirm the message within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("cannot encode the reading: {0}")]
    Encode(#[from] serde_json::Error),
}

impl PublishError {
    /// A short, fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            PublishError::NotConnected => "not_connected",
            PublishError::Nacked => "nacked",
            PublishError::ConfirmTimeout(_) => "confirm_timeout",
            PublishError::Broker(_) => "broker_error",
            PublishError::Encode(_) => "encode",
        }
    }
}

/// A reading the broker has confirmed.
#[derive(Debug, Clone)]
pub struct Published {
    pub reading: Reading,
    /// Size of the message body.
    pub bytes: usize,
}

/// Publishes readings with confirms; cheap to share behind an `Arc`.
pub struct ReadingPublisher {
    exchange: String,
    confirm_timeout: Duration,
    next_seq: AtomicU64,
    channel: watch::Receiver<Option<Channel>>,
    state: watch::Receiver<BrokerState>,
    /// Tells the supervisor the channel broke while the connection looked fine.
    reopen: Arc<Notify>,
    metrics: PublisherMetrics,
}

impl ReadingPublisher {
    /// Starts the supervisor that connects (and reconnects, at most `reconnect_cap` apart)
    /// and returns the handle at once: the service runs whether or not the broker is there.
    pub fn start(
        settings: BrokerSettings,
        reconnect_cap: Duration,
        confirm_timeout: Duration,
        metrics: PublisherMetrics,
    ) -> Arc<Self> {
        let (channel_tx, channel) = watch::channel(None);
        let (state_tx, state) = watch::channel(BrokerState::connecting());
        let reopen = Arc::new(Notify::new());
        let publisher = Arc::new(Self {
            exchange: settings.exchange.clone(),
            confirm_timeout,
            next_seq: AtomicU64::new(1),
            channel,
            state,
            reopen: Arc::clone(&reopen),
            metrics,
        });
        tokio::spawn(supervise(
            settings,
            reconnect_cap,
            channel_tx,
            state_tx,
            reopen,
        ));
        publisher
    }

    /// The broker connection's current state.
    pub fn state(&self) -> BrokerState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of the broker state.
    pub fn watch_state(&self) -> watch::Receiver<BrokerState> {
        self.state.clone()
    }

    /// Gives the reading the next sequence number, publishes it and waits for the broker's
    /// confirmation. Counts the outcome.
    pub async fn publish(&self, reading: &Reading) -> Result<Published, PublishError> {
        let outcome = self.publish_confirmed(reading).await;
        match &outcome {
            Ok(_) => self.metrics.published.inc(),
            Err(e) => self.metrics.failures.with_label_values(&[e.reason()]).inc(),
        }
        outcome
    }

    async fn publish_confirmed(&self, reading: &Reading) -> Result<Published, PublishError> {
        let channel = self
            .channel
            .borrow()
            .clone()
            .ok_or(PublishError::NotConnected)?;
        let mut reading = reading.clone();
        reading.seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(&reading)?;
        let properties = broker::reading_properties(&reading, APP_ID);
        let timer = self.metrics.confirm_seconds.start_timer();
        let confirmed = tokio::time::timeout(self.confirm_timeout, async {
            channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await?
                .await
        })
        .await;
        timer.observe_duration();
        match confirmed {
            Ok(Ok(Confirmation::Ack(_))) => Ok(Published {
                reading,
                bytes: body.len(),
            }),
            Ok(Ok(Confirmation::Nack(_) | Confirmation::NotRequested)) => Err(PublishError::Nacked),
            Ok(Err(e)) => {
                if !channel.status().connected() {
                    self.reopen.notify_one();
                }
                Err(PublishError::Broker(e))
            }
            Err(_) => Err(PublishError::ConfirmTimeout(self.confirm_timeout)),
        }
    }
}

/// Connects, opens the confirm channel, waits for trouble, and starts over after a delay.
async fn supervise(
    settings: BrokerSettings,
    reconnect_cap: Duration,
    channel_tx: watch::Sender<Option<Channel>>,
    state_tx: watch::Sender<BrokerState>,
    reopen: Arc<Notify>,
) {
    let mut delays = broker::reconnect_delays(reconnect_cap);
    let mut failures = 0u64;
    loop {
        match open(&settings).await {
            Ok((connection, channel, url)) => {
                tracing::info!(broker = %url, exchange = %settings.exchange, "connected to the broker");
                failures = 0;
                delays = broker::reconnect_delays(reconnect_cap);
                channel_tx.send_replace(Some(channel));
                state_tx.send_replace(BrokerState::up(url.clone()));
                let why = tokio::select! {
                    why = broker::connection_lost(&connection) => why,
                    () = reopen.notified() => "the publishing channel closed".to_owned(),
                };
                channel_tx.send_replace(None);
                tracing::warn!(broker = %url, error = %why, "lost the broker; reconnecting");
                state_tx.send_replace(BrokerState::down(Some(url), why));
                let _ = connection.close(200, "reconnecting".into()).await;
            }
            Err(why) => {
                failures += 1;
                // The first failure is news; the rest of a long outage is noise.
                if failures == 1 || failures.is_power_of_two() {
                    tracing::warn!(error = %why, attempts = failures, "cannot reach the broker; will retry");
                }
                state_tx.send_replace(BrokerState::down(None, why));
            }
        }
        if let Some(delay) = delays.next() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// One connection with the exchange declared and a channel in confirm mode.
async fn open(settings: &BrokerSettings) -> Result<(Connection, Channel, String), String> {
    let (connection, url) = broker::connect(settings, APP_ID)
        .await
        .map_err(|e| e.to_string())?;
    let prepared = async {
        let channel = connection.create_channel().await?;
        broker::declare_exchange(&channel, &settings.exchange).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok::<_, lapin::Error>(channel)
    };
    match tokio::time::timeout(settings.connect_timeout, prepared).await {
        Ok(Ok(channel)) => Ok((connection, channel, url)),
        Ok(Err(e)) => Err(format!("{url}: cannot prepare the channel: {e}")),
        Err(_) => Err(format!(
            "{url}: the broker did not answer while preparing the channel"
        )),
    }
}
