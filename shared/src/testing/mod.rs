//! Test support for the services' integration tests, against the real RabbitMQ at `AMQP_URL`.
//! Each test gets its own exchange, so tests run in parallel without seeing each other.

pub mod browser;
pub mod https;
pub mod postgres;
pub mod private_broker;
pub mod private_postgres;
pub mod proxy;

use crate::broker;
use crate::settings::{BrokerSettings, EnvSource, DEFAULT_AMQP_URL};
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, ExchangeDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use std::time::Duration;

/// Sends the services' logs to the test harness, once per test binary: a failing test shows
/// them beside its panic (passing tests' output is captured and dropped). `TEST_LOG` sets the
/// filter (default `warn`).
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let subscriber = crate::telemetry::get_subscriber(
            &filter,
            tracing_subscriber::fmt::TestWriter::new,
            false,
        )
        .expect("TEST_LOG is a log filter, e.g. debug or warn,publisher=debug");
        crate::telemetry::init_subscriber(subscriber);
    });
}

/// The broker the tests use: `AMQP_URL` or the local default.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned())
}

/// A fresh exchange name for one test.
pub fn unique_exchange(test: &str) -> String {
    format!("hostpulse-test-{test}-{:016x}", rand::random::<u64>())
}

/// Broker settings for a test: the test broker and the test's exchange.
pub fn broker_settings(exchange: &str) -> BrokerSettings {
    broker_settings_at(&amqp_url(), exchange)
}

/// Broker settings for a test's exchange on the broker at `url`.
pub fn broker_settings_at(url: &str, exchange: &str) -> BrokerSettings {
    let env = EnvSource::from_pairs([
        ("AMQP_URL", url.to_owned()),
        ("EXCHANGE_NAME", exchange.into()),
    ]);
    BrokerSettings::from_env(&env).expect("test broker settings are valid")
}

/// Binds a private queue of the channel's own to `exchange` and consumes it.
pub async fn consume_from(channel: &Channel, exchange: &str) -> lapin::Consumer {
    let spec = broker::QueueSpec {
        kind: broker::QueueKind::Live,
        name: None,
        max_length: 10_000,
        prefetch: 100,
    };
    let queue = broker::declare_consumer_queue(channel, exchange, &spec)
        .await
        .expect("queue");
    channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume")
}

/// A message as a test sees it.
pub struct Tapped {
    pub body: Vec<u8>,
    pub properties: lapin::BasicProperties,
}

/// A queue the test binds to an exchange itself, to see exactly what was published.
pub struct Tap {
    connection: Connection,
    channel: Channel,
    consumer: lapin::Consumer,
    exchange: String,
}

impl Tap {
    /// Declares the exchange (as the services do) and binds a private queue to it.
    pub async fn bind(exchange: &str) -> Self {
        Self::bind_at(&amqp_url(), exchange).await
    }

    /// Like [`Self::bind`], on the broker at `url`.
    pub async fn bind_at(url: &str, exchange: &str) -> Self {
        let (connection, _) =
            broker::connect(&broker_settings_at(url, exchange), "hostpulse-test-tap")
                .await
                .expect("the test broker is reachable (is RabbitMQ running?)");
        let channel = connection.create_channel().await.expect("channel");
        broker::declare_exchange(&channel, exchange)
            .await
            .expect("exchange");
        let consumer = consume_from(&channel, exchange).await;
        Self {
            connection,
            channel,
            consumer,
            exchange: exchange.to_owned(),
        }
    }

    /// The next message, or `None` after `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Tapped> {
        let delivery = tokio::time::timeout(wait, self.consumer.next())
            .await
            .ok()??
            .expect("delivery");
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        Some(Tapped {
            body: delivery.data,
            properties: delivery.properties,
        })
    }

    /// Publishes a raw body to the exchange, as a foreign publisher would.
    pub async fn publish_raw(&self, body: &[u8]) {
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                "".into(),
                Default::default(),
                body,
                lapin::BasicProperties::default(),
            )
            .await
            .expect("publish");
    }

    /// Deletes the test's exchange and closes the connection.
    pub async fn cleanup(self) {
        let _ = self
            .channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.connection.close(200, "test done".into()).await;
    }
}

/// The value of one series in Prometheus text output, e.g. `metric(text,
/// "hostpulse_messages_rejected_total{reason=\"malformed\"}")`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

/// Hold this while a test captures logs with a scoped subscriber (`set_default`,
/// `with_default`). With only one subscriber registered, tracing decides whether a log line is
/// on from the default of whichever thread reaches the line first, and keeps that answer:
/// another test's thread, with no subscriber, switches the line off for the whole process. A
/// second registered dispatcher makes tracing ask every registered subscriber instead.
#[must_use = "hold it for as long as the scoped subscriber"]
pub fn log_lines_stay_on() -> tracing::Dispatch {
    tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default())
}
