//! The publisher's side of RabbitMQ: readings numbered, published with confirms over the
//! link's one confirm-mode channel (`link.rs`, shared by every request and the interval task,
//! kept open and reopened by its supervisor), and queued in the outbox when the broker cannot
//! take them.

use crate::link::{Confirmed, Link, LinkError, LinkHome, PublishChannel};
use crate::metrics::{PublisherMetrics, OUTBOX_FULL};
use crate::outbox::{Outbox, QueueError, WhenFull};
use shared::broker::{BrokerState, ReadingProperties};
use shared::reading::Reading;
use shared::settings::BrokerSettings;
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
    Broker(#[from] LinkError),
    #[error("cannot encode the reading: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("no queue is bound to the exchange")]
    Unroutable,
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
            PublishError::Unroutable => "unroutable",
        }
    }
}

/// A reading the broker has confirmed.
#[derive(Debug, Clone)]
pub struct Published {
    pub seq: u64,
    /// The message body exactly as sent: the reading's JSON.
    pub body: Vec<u8>,
}

/// What became of a submitted reading.
#[derive(Debug)]
pub enum Submitted {
    /// The broker confirmed it.
    Published(Box<Published>),
    /// The broker could not take it now; it waits in the outbox and goes out, in order, once
    /// the broker is back.
    Queued { seq: u64 },
}

/// Why a submitted reading was neither published nor queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}, and {1}")]
    NotQueued(PublishError, QueueError),
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}

/// A reading as [`ReadingPublisher::begin`] left it.
enum Begun {
    /// Nothing to wait for: queued, or refused.
    Settled(Result<Submitted, SubmitError>),
    /// To publish on `channel`, then wait for the confirmation.
    ToConfirm(ToConfirm),
}

/// A numbered reading's JSON and the channel it goes out on.
struct ToConfirm {
    channel: Arc<PublishChannel>,
    seq: u64,
    body: Vec<u8>,
}

/// A copy of `reading` numbered `seq`, for the outbox.
fn numbered(reading: &Reading, seq: u64) -> Reading {
    let mut reading = reading.clone();
    reading.seq = seq;
    reading
}

/// How often the outbox is retried when nothing wakes it.
const OUTBOX_RETRY: Duration = Duration::from_millis(250);

/// Publishes readings with confirms, queueing what the broker cannot take; share it behind an
/// `Arc`.
pub struct ReadingPublisher {
    exchange: String,
    confirm_timeout: Duration,
    channel: watch::Receiver<Option<Arc<PublishChannel>>>,
    state: watch::Receiver<BrokerState>,
    /// Tells the supervisor the channel broke while the connection looked fine.
    reopen: Arc<Notify>,
    /// Where the connection runs (the HTTP thread, see `startup`).
    home: LinkHome,
    outbox: Outbox,
    /// The last sample's JSON, so that publishes of one sample serialise it once.
    bodies: crate::body::BodyCache,
    /// Wakes the outbox flusher when something was queued.
    queued: Notify,
    /// Held while the outbox is being published, so the flusher and a shutdown drain never
    /// send the same waiting reading twice.
    flushing: tokio::sync::Mutex<()>,
    /// After a reconnect, how long back-filled readings wait for consumers to re-bind their
    /// queues before going out anyway.
    route_wait: Duration,
    metrics: PublisherMetrics,
}

impl ReadingPublisher {
    /// Prepares the link that connects (and reconnects, at most `reconnect_cap` apart),
    /// starts the outbox flusher, and returns the handle at once: the service runs whether or
    /// not the broker is there. What already waits in `outbox` goes out first. Nothing
    /// connects until the link is settled on a runtime ([`Self::link_home`]).
    pub fn start(
        settings: BrokerSettings,
        reconnect_cap: Duration,
        confirm_timeout: Duration,
        outbox: Outbox,
        metrics: PublisherMetrics,
    ) -> Arc<Self> {
        metrics.outbox_len.set(outbox.len() as i64);
        let confirm = Link::new(settings.clone(), APP_ID, reconnect_cap);
        let publisher = Arc::new(Self {
            exchange: settings.exchange.clone(),
            confirm_timeout,
            channel: confirm.channel,
            state: confirm.state,
            reopen: confirm.reopen,
            home: confirm.home,
            outbox,
            bodies: crate::body::BodyCache::default(),
            queued: Notify::new(),
            flushing: tokio::sync::Mutex::new(()),
            route_wait: reconnect_cap + settings.connect_timeout,
            metrics,
        });
        tokio::spawn(Arc::clone(&publisher).flush_forever());
        publisher
    }

    /// Where the broker link runs: settle it on the runtime that publishes most.
    pub fn link_home(&self) -> LinkHome {
        self.home.clone()
    }

    /// The broker connection's current state.
    pub fn state(&self) -> BrokerState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of the broker state.
    pub fn watch_state(&self) -> watch::Receiver<BrokerState> {
        self.state.clone()
    }

    /// Readings waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Gives the reading the next sequence number and publishes it, waiting for the broker's
    /// confirmation; when the broker cannot take it (or older readings still wait), queues
    /// it instead.
    pub async fn submit(
        &self,
        reading: &Arc<Reading>,
        when_full: WhenFull,
    ) -> Result<Submitted, SubmitError> {
        match self.begin(reading, when_full) {
            Begun::Settled(outcome) => outcome,
            Begun::ToConfirm(publish) => self.confirm(reading, publish, when_full).await,
        }
    }

    /// [`Self::submit`] without waiting for the broker: the reading is numbered (or queued)
    /// now, and the future returned, which owns all it needs, waits for the confirmation (or
    /// puts the reading in the outbox when none comes in time). The interval publisher runs
    /// it in a task of its own, so that sampling never waits for the broker.
    pub fn submit_detached(
        self: &Arc<Self>,
        reading: Arc<Reading>,
        when_full: WhenFull,
    ) -> impl std::future::Future<Output = Result<Submitted, SubmitError>> + Send + 'static {
        let begun = self.begin(&reading, when_full);
        let publisher = Arc::clone(self);
        async move {
            match begun {
                Begun::Settled(outcome) => outcome,
                Begun::ToConfirm(publish) => publisher.confirm(&reading, publish, when_full).await,
            }
        }
    }

    /// What can be done without the broker: the number taken, and the reading either queued
    /// (not connected, or older readings wait: order is kept by queueing behind them) or
    /// encoded for the channel.
    fn begin(&self, reading: &Arc<Reading>, when_full: WhenFull) -> Begun {
        let channel = self.channel.borrow().clone();
        let seq = self.outbox.take_seq();
        let Some(channel) = channel.filter(|_| self.outbox.is_empty()) else {
            return Begun::Settled(self.enqueue(
                numbered(reading, seq),
                PublishError::NotConnected,
                when_full,
            ));
        };
        // Requests close together share a sample: its JSON is made once, numbered per publish.
        match self.bodies.template(reading) {
            Ok(template) => Begun::ToConfirm(ToConfirm {
                channel,
                seq,
                body: template.body(seq),
            }),
            Err(e) => Begun::Settled(Err(SubmitError::Encode(e))),
        }
    }

    /// Publishes what [`Self::begin`] prepared and waits for the broker's answer; what it
    /// does not take in time goes to the outbox.
    async fn confirm(
        &self,
        reading: &Reading,
        publish: ToConfirm,
        when_full: WhenFull,
    ) -> Result<Submitted, SubmitError> {
        let ToConfirm { channel, seq, body } = publish;
        match self
            .publish_confirmed(&channel, reading, seq, body, false)
            .await
        {
            Ok(published) => Ok(Submitted::Published(Box::new(published))),
            Err(PublishError::Encode(e)) => Err(SubmitError::Encode(e)),
            // Nacked, unconfirmed or cut off: retried from the outbox, queued on the caller's
            // terms (a `/publish` must not push out a reading that waits; other requests may
            // have filled the outbox while this one waited for its confirmation).
            Err(e) => self.enqueue(numbered(reading, seq), e, when_full),
        }
    }

    fn enqueue(
        &self,
        reading: Reading,
        why: PublishError,
        when_full: WhenFull,
    ) -> Result<Submitted, SubmitError> {
        let seq = reading.seq;
        match self.outbox.push(reading, when_full) {
            Ok(dropped) => {
                if dropped > 0 {
                    self.metrics.outbox_dropped.inc_by(dropped as u64);
                    tracing::warn!(dropped, "outbox full: dropped the oldest readings");
                }
                self.metrics.outbox_len.set(self.outbox.len() as i64);
                self.queued.notify_one();
                Ok(Submitted::Queued { seq })
            }
            Err(full) => {
                self.metrics
                    .failures
                    .with_label_values(&[match full {
                        QueueError::Disabled => why.reason(),
                        QueueError::Full(_) => OUTBOX_FULL,
                    }])
                    .inc();
                Err(SubmitError::NotQueued(why, full))
            }
        }
    }

    /// Publishes what waits in the outbox, oldest first, whenever the broker is there.
    async fn flush_forever(self: Arc<Self>) {
        loop {
            if self.outbox.is_empty() {
                // Nothing to do until something is queued: no wake-ups on an idle host.
                // `notify_one` keeps a permit, so a reading queued just now is not missed.
                self.queued.notified().await;
            } else {
                tokio::select! {
                    () = self.queued.notified() => {}
                    () = tokio::time::sleep(OUTBOX_RETRY) => {}
                }
            }
            self.flush_once().await;
        }
    }

    /// Publishes waiting readings until the outbox is empty or a publish fails.
    /// Returns how many were confirmed.
    async fn flush_once(&self) -> usize {
        let _flushing = self.flushing.lock().await;
        let mut sent = 0;
        while let Some(reading) = self.outbox.front() {
            let Some(channel) = self.channel.borrow().clone() else {
                break;
            };
            let body = match serde_json::to_vec(&reading) {
                Ok(body) => body,
                Err(e) => {
                    // Cannot happen for a reading that was serialised once already; not retried.
                    tracing::error!(seq = reading.seq, error = %e, "cannot encode a queued reading; dropped");
                    self.outbox.confirmed(reading.seq);
                    continue;
                }
            };
            match self
                .publish_confirmed(&channel, &reading, reading.seq, body, true)
                .await
            {
                Ok(_) => {}
                // Consumers lost their queues with the broker and may not have re-bound yet:
                // give them time, or the back-fill would go to no one.
                Err(PublishError::Unroutable) if self.connected_for() < self.route_wait => break,
                Err(PublishError::Unroutable) => {
                    self.metrics
                        .failures
                        .with_label_values(&[PublishError::Unroutable.reason()])
                        .inc();
                    tracing::warn!(
                        seq = reading.seq,
                        "no consumer is bound; a queued reading went to no one"
                    );
                }
                Err(_) => break,
            }
            self.outbox.confirmed(reading.seq);
            self.metrics.outbox_len.set(self.outbox.len() as i64);
            sent += 1;
        }
        if sent > 0 {
            tracing::info!(
                sent,
                waiting = self.outbox.len(),
                "published readings from the outbox"
            );
        }
        sent
    }

    /// How long the current connection has been up (zero when down).
    fn connected_for(&self) -> Duration {
        let state = self.state.borrow();
        if !state.connected {
            return Duration::ZERO;
        }
        (chrono::Utc::now() - state.since)
            .to_std()
            .unwrap_or_default()
    }

    /// At shutdown: tries to empty the outbox for up to `deadline`; returns what is left.
    /// The link ended with the HTTP thread it ran on; it is settled again here (at once, or
    /// as soon as that thread's runtime is gone).
    pub async fn drain(&self, deadline: Duration) -> usize {
        let _ = tokio::time::timeout(deadline, async {
            while !self.outbox.is_empty() {
                self.home.settle_here();
                self.flush_once().await;
                if !self.outbox.is_empty() {
                    tokio::time::sleep(OUTBOX_RETRY).await;
                }
            }
        })
        .await;
        self.outbox.len()
    }

    /// Publishes one reading as it is and waits for the confirmation; counts the outcome.
    /// `mandatory` asks the broker to return it when no queue is bound.
    async fn publish_confirmed(
        &self,
        channel: &PublishChannel,
        reading: &Reading,
        seq: u64,
        body: Vec<u8>,
        mandatory: bool,
    ) -> Result<Published, PublishError> {
        let outcome = self
            .publish_once(channel, reading, seq, body, mandatory)
            .await;
        match &outcome {
            Ok(_) => self.metrics.published.inc(),
            // Retried until consumers re-bind; counted only if it is given up on.
            Err(PublishError::Unroutable) => {}
            Err(e) => self.metrics.failures.with_label_values(&[e.reason()]).inc(),
        }
        outcome
    }

    /// Publishes `body`, the JSON of `reading` numbered `seq`.
    async fn publish_once(
        &self,
        channel: &PublishChannel,
        reading: &Reading,
        seq: u64,
        body: Vec<u8>,
        mandatory: bool,
    ) -> Result<Published, PublishError> {
        let properties = reading_properties(reading, seq);
        let timer = self.metrics.confirm_seconds.start_timer();
        // amqprs takes the body by value; the answer to `/publish` shows it too.
        let confirmed = tokio::time::timeout(
            self.confirm_timeout,
            channel.publish(&self.exchange, body.clone(), properties, mandatory),
        )
        .await;
        timer.observe_duration();
        match confirmed {
            Ok(Ok(Confirmed::Ack)) => Ok(Published { seq, body }),
            Ok(Ok(Confirmed::Returned)) => Err(PublishError::Unroutable),
            Ok(Ok(Confirmed::Nack)) => Err(PublishError::Nacked),
            Ok(Err(e)) => {
                if !channel.is_open() {
                    self.reopen.notify_one();
                }
                Err(PublishError::Broker(e))
            }
            Err(_) => Err(PublishError::ConfirmTimeout(self.confirm_timeout)),
        }
    }
}

/// The AMQP properties of `reading` published as number `seq`
/// (`shared::broker::ReadingProperties`, the same the consumer's side gives), in amqprs's terms.
pub fn reading_properties(reading: &Reading, seq: u64) -> amqprs::BasicProperties {
    let wanted = ReadingProperties::of(reading, seq, APP_ID);
    let mut properties = amqprs::BasicProperties::default();
    properties
        .with_content_type(wanted.content_type)
        .with_delivery_mode(wanted.delivery_mode)
        .with_timestamp(wanted.timestamp)
        .with_message_id(&wanted.message_id)
        .with_app_id(wanted.app_id);
    properties
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::FAILURE_REASONS;

    #[test]
    fn amqprs_takes_the_message_id_of_the_longest_host_name() {
        // amqprs panics on a message id beyond 255 bytes; shared's is held to them.
        let id = shared::reading::message_id(&("é".repeat(126) + "x"), u64::MAX);
        let mut properties = amqprs::BasicProperties::default();
        properties.with_message_id(&id);
        assert_eq!(properties.message_id(), Some(&id));
    }

    #[test]
    fn every_failure_reason_is_exported_from_start() {
        let encode = serde_json::from_str::<u8>("x").expect_err("not a number");
        let broker = LinkError::Closed;
        for error in [
            PublishError::NotConnected,
            PublishError::Nacked,
            PublishError::ConfirmTimeout(Duration::from_secs(1)),
            PublishError::Broker(broker),
            PublishError::Encode(encode),
            PublishError::Unroutable,
        ] {
            assert!(
                FAILURE_REASONS.contains(&error.reason()),
                "{} missing from FAILURE_REASONS",
                error.reason()
            );
        }
        // The outbox's own refusal, counted in `enqueue`.
        assert!(FAILURE_REASONS.contains(&"outbox_full"));
    }
}
