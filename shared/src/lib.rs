//! What both hostpulse services share: the reading schema, the AMQP connection and topology,
//! settings loading and telemetry. All of it is client-neutral except `broker::lapin_client`,
//! behind the `lapin` feature that only the consumer enables: the publisher links amqprs alone.

pub mod allowed_hosts;
pub mod broker;
pub mod http;
pub mod metrics;
pub mod private_files;
pub mod reading;
pub mod reconnect;
pub mod redact;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
