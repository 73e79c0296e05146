//! The consumer's side of RabbitMQ: an exclusive queue bound to the fanout exchange, every
//! delivery handed to the hub; reconnects (with a fresh queue) whenever the broker goes away.

use crate::hub::Hub;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer};
use shared::broker::{self, BrokerState, QueueSpec};
use shared::settings::BrokerSettings;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The name this service gives its connection.
pub const APP_ID: &str = "hostpulse-consumer";

/// At most one log line per this long about refused messages; the rest are counted.
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Consumes until the process ends, reconnecting at most `reconnect_cap` apart.
pub async fn consume_forever(
    settings: BrokerSettings,
    queue: QueueSpec,
    reconnect_cap: Duration,
    hub: Arc<Hub>,
) {
    let mut delays = broker::reconnect_delays(reconnect_cap);
    let mut retries = broker::RetryLog::default();
    let mut rejects = RejectLog::default();
    loop {
        match open(&settings, &queue).await {
            Ok((connection, consumer, url, queue_name)) => {
                tracing::info!(broker = %url, queue = %queue_name, exchange = %settings.exchange, "consuming readings");
                retries.connected();
                delays = broker::reconnect_delays(reconnect_cap);
                hub.set_broker(BrokerState::up(url.clone()));
                let why = tokio::select! {
                    why = broker::connection_lost(&connection) => why,
                    why = deliver(consumer, &hub, &mut rejects) => why,
                };
                tracing::warn!(broker = %url, error = %why, "lost the broker; reconnecting");
                hub.set_broker(BrokerState::down(Some(url), why));
                let _ = connection.close(200, "reconnecting".into()).await;
            }
            Err(why) => {
                retries.failed(&why);
                hub.set_broker(BrokerState::down(None, why));
            }
        }
        if let Some(delay) = delays.next() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// Deliveries acknowledged together at most; well under any sensible `PREFETCH`, so the broker
/// never waits for an acknowledgement.
const ACK_BATCH: usize = 64;

/// Hands every delivery to the hub and acknowledges them; returns why the stream ended.
///
/// Deliveries that are already waiting are taken together and acknowledged with one
/// `multiple` ack: one message to lapin's I/O thread per batch instead of per reading, which
/// at thousands of readings a second is most of the cost (thread wake-ups, not parsing).
async fn deliver(consumer: Consumer, hub: &Hub, rejects: &mut RejectLog) -> String {
    let mut batches = consumer.ready_chunks(ACK_BATCH);
    while let Some(batch) = batches.next().await {
        let mut last = None;
        for delivery in batch {
            let delivery = match delivery {
                Ok(delivery) => delivery,
                Err(e) => return e.to_string(),
            };
            let hint = host_hint(&delivery.properties);
            if let Err(rejected) = hub.accept(&delivery.data, hint.as_deref()) {
                rejects.record(&rejected);
            }
            last = Some(delivery);
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

/// A host name from the AMQP properties, for legacy messages that carry none in the body:
/// a `hostname` or `host` header, else the `app_id`.
fn host_hint(properties: &lapin::BasicProperties) -> Option<String> {
    use lapin::types::AMQPValue;
    let from_header = properties.headers().as_ref().and_then(|headers| {
        ["hostname", "host"]
            .iter()
            .find_map(|key| match headers.inner().get(*key) {
                Some(AMQPValue::LongString(s)) => Some(s.to_string()),
                Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
                _ => None,
            })
    });
    from_header.or_else(|| properties.app_id().as_ref().map(|a| a.to_string()))
}

/// Connects, declares the exchange and this consumer's queue, and starts consuming.
async fn open(
    settings: &BrokerSettings,
    spec: &QueueSpec,
) -> Result<(Connection, Consumer, String, String), String> {
    let (connection, url) = broker::connect(settings, APP_ID)
        .await
        .map_err(|e| e.to_string())?;
    let prepared = async {
        let channel = connection.create_channel().await?;
        broker::declare_exchange(&channel, &settings.exchange).await?;
        let queue = broker::declare_consumer_queue(&channel, &settings.exchange, spec).await?;
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                APP_ID.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok::<_, lapin::Error>((consumer, queue))
    };
    match tokio::time::timeout(settings.connect_timeout, prepared).await {
        Ok(Ok((consumer, queue))) => Ok((connection, consumer, url, queue)),
        Ok(Err(e)) => Err(format!("{url}: cannot set up the queue: {e}")),
        Err(_) => Err(format!(
            "{url}: the broker did not answer while setting up the queue"
        )),
    }
}

/// Logs refused messages without flooding: the first at once, then one line per period
/// with how many were refused meanwhile.
#[derive(Default)]
struct RejectLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RejectLog {
    fn record(&mut self, rejected: &crate::hub::Rejected) {
        if self.last.is_some_and(|at| at.elapsed() < REJECT_LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            reason = rejected.reason(),
            error = %rejected,
            also_refused_since_last_line = self.suppressed,
            "refused a message from the broker"
        );
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}
