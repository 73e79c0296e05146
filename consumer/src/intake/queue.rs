//! From a queue to a sink: binds a queue to the readings exchange, turns every delivery into
//! an accepted reading ([`crate::intake`]), hands each batch to its [`Sink`] and acknowledges
//! the batch once the sink took it. Reconnects (re-declaring the queue) whenever the broker
//! goes away, through the supervisor both services share.

use crate::intake::parse;
use crate::intake::sink::Sink;
use crate::intake::QueueIntake;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer};
use shared::broker::{self, BrokerState, QueueSpec};
use shared::settings::BrokerSettings;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The name this service gives its connection.
pub const APP_ID: &str = "hostpulse-consumer";

/// Deliveries acknowledged together at most; well under any sensible `PREFETCH`, so the broker
/// never waits for an acknowledgement.
const ACK_BATCH: usize = 64;

/// The queue a sink is fed from.
#[derive(Debug, Clone)]
pub struct Source {
    pub settings: BrokerSettings,
    pub queue: QueueSpec,
    /// Longest wait between reconnect attempts.
    pub reconnect_cap: Duration,
    /// Where to report how many readings wait in the queue, if anywhere.
    pub depth: Option<prometheus::IntGauge>,
}

/// How often the queue's depth is asked for, when it is reported.
const DEPTH_EVERY: Duration = Duration::from_secs(10);

/// Feeds `sink` from `source` until the task is dropped; the connection's state goes to
/// `status`.
pub async fn consume_forever<S: Sink>(
    source: Source,
    status: watch::Sender<BrokerState>,
    intake: QueueIntake,
    sink: S,
) {
    let mut session = QueueSession {
        source: source.clone(),
        intake,
        sink,
    };
    shared::reconnect::supervise(
        &source.settings,
        APP_ID,
        source.reconnect_cap,
        &status,
        &mut session,
    )
    .await;
}

struct QueueSession<S> {
    source: Source,
    intake: QueueIntake,
    sink: S,
}

/// What a queue session runs on: the consumer, and the channel and queue name to ask for its
/// depth.
struct Consuming {
    consumer: Consumer,
    channel: lapin::Channel,
    queue: String,
}

impl<S: Sink> shared::reconnect::Session<shared::reconnect::Lapin> for QueueSession<S> {
    type Open = Consuming;

    async fn open(&mut self, connection: &Connection, url: &str) -> Result<Consuming, String> {
        let exchange = &self.source.settings.exchange;
        // Counted as consuming before the queue is bound: from then on it holds every message
        // the other queues take, and the memo must keep their outcome for it. Marked only
        // after `basic_consume`, a message taken by the live queue in between was parsed
        // again here at a later arrival, a second reading of one message.
        self.intake.consuming();
        let prepared = async {
            let channel = connection.create_channel().await?;
            broker::declare_exchange(&channel, exchange).await?;
            let queue =
                broker::declare_consumer_queue(&channel, exchange, &self.source.queue).await?;
            let consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    APP_ID.into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>((consumer, channel, queue))
        };
        let (consumer, channel, queue) = prepared
            .await
            .map_err(|e| format!("{url}: cannot set up the queue: {e}"))?;
        tracing::info!(broker = %url, %queue, %exchange, sink = self.sink.name(), "consuming readings");
        // Before any delivery of this connection is handed over.
        self.sink.opened();
        Ok(Consuming {
            consumer,
            channel,
            queue,
        })
    }

    async fn run(&mut self, consuming: Consuming) -> String {
        let Consuming {
            consumer,
            channel,
            queue,
        } = consuming;
        match self.source.depth.clone() {
            None => self.deliver(consumer).await,
            Some(depth) => {
                tokio::select! {
                    why = self.deliver(consumer) => why,
                    why = report_depth(&channel, &queue, &depth) => why,
                }
            }
        }
    }

    fn ended(&mut self) {
        // Nothing is kept for this queue while it is not consuming.
        self.intake.stopped();
    }
}

/// Asks the broker how many readings wait in `queue`, every [`DEPTH_EVERY`]; returns only
/// when the channel fails.
async fn report_depth(
    channel: &lapin::Channel,
    queue: &str,
    depth: &prometheus::IntGauge,
) -> String {
    use lapin::options::QueueDeclareOptions;
    let mut ticks = tokio::time::interval(DEPTH_EVERY);
    loop {
        ticks.tick().await;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        match channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
        {
            Ok(declared) => depth.set(i64::from(declared.message_count())),
            Err(e) => return e.to_string(),
        }
    }
}

impl<S: Sink> QueueSession<S> {
    /// Hands every delivery to the sink and acknowledges them; returns why the stream ended.
    ///
    /// Deliveries that are already waiting are taken together and acknowledged with one
    /// `multiple` ack: one message to lapin's I/O thread per batch instead of per reading,
    /// which at thousands of readings a second is most of the cost.
    async fn deliver(&mut self, consumer: Consumer) -> String {
        let mut batches = consumer.ready_chunks(ACK_BATCH);
        let mut accepted = Vec::with_capacity(ACK_BATCH);
        let mut canaries = Vec::new();
        while let Some(batch) = batches.next().await {
            accepted.clear();
            canaries.clear();
            let mut last = None;
            for delivery in batch {
                let mut delivery = match delivery {
                    Ok(delivery) => delivery,
                    Err(e) => return e.to_string(),
                };
                // The evaluator's heartbeat, not a reading: never parsed, shown or kept.
                if crate::alerts::canary::is_canary(&delivery.properties) {
                    canaries.push(std::mem::take(&mut delivery.data));
                } else if let Some(reading) = self.intake.take(&delivery.data, &delivery.properties)
                {
                    accepted.push(reading);
                }
                last = Some(delivery);
            }
            self.hand_over(&accepted).await;
            for canary in &canaries {
                self.sink.heard_canary(canary);
            }
            // Refused messages are acknowledged too: they can never become valid, and
            // requeueing them would loop forever. They are counted and logged instead.
            if let Some(last) = last {
                let all_up_to_here = BasicAckOptions { multiple: true };
                if let Err(e) = last.ack(all_up_to_here).await {
                    return e.to_string();
                }
            }
        }
        "the broker cancelled the consumer".to_owned()
    }

    /// Gives the batch to the sink, retrying (never acknowledging) while it cannot take it.
    /// The log names the sink (the history store, say), not the broker: the queue is fine.
    async fn hand_over(&mut self, accepted: &[Arc<parse::Accepted>]) {
        let mut delays = shared::reconnect::reconnect_delays(self.source.reconnect_cap);
        let mut failures: u64 = 0;
        let since = std::time::Instant::now();
        loop {
            match self.sink.take(accepted).await {
                Ok(refused) => {
                    if failures > 0 {
                        tracing::info!(
                            sink = self.sink.name(),
                            attempts = failures,
                            down_secs = since.elapsed().as_secs(),
                            "{} takes readings again; those held in the queue meanwhile follow",
                            part(self.sink.name())
                        );
                    }
                    self.intake.refused_by_sink(refused);
                    return;
                }
                Err(e) => {
                    failures += 1;
                    // The first failure of an outage, then attempts 2, 4, 8, …
                    if failures.is_power_of_two() {
                        tracing::warn!(
                            sink = self.sink.name(),
                            reason = e.reason,
                            error = %e.detail,
                            attempts = failures,
                            "{} cannot take readings; they wait in the broker's queue and are \
                             offered again",
                            part(self.sink.name())
                        );
                    }
                    if let Some(delay) = delays.next() {
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }
}

/// The part of the consumer a sink's name stands for, as a person on call would call it.
fn part(sink: &str) -> &str {
    match sink {
        "history" => "the history store",
        "alerts" => "the alert evaluator",
        "live" => "the live view",
        other => other,
    }
}
