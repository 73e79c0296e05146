//! Settings: an app's `.env` file overlaid by the process environment, parsed into typed,
//! validated values. A bad value is reported with the variable's name and never its secret.
//!
//! One module per thing configured: [`env`] reads and parses variables, [`http`] the HTTP
//! server, [`broker`] how to reach RabbitMQ, [`tls`] the certificates for `amqps://`.

pub mod broker;
pub mod env;
pub mod http;
pub mod tls;

pub use broker::{check_amqp_name, BrokerSettings, DEFAULT_AMQP_URL, DEFAULT_EXCHANGE};
pub use env::EnvSource;
pub use http::{workers_per_cpu, HttpSettings};
pub use tls::TlsFiles;

use std::fmt::Display;

/// A setting that could not be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}: {problem}")]
    Invalid { name: String, problem: String },
    #[error("cannot read settings file {path}: {problem}")]
    File { path: String, problem: String },
}

impl SettingsError {
    /// An invalid-value error for `name`.
    pub fn invalid(name: &str, problem: impl Display) -> Self {
        SettingsError::Invalid {
            name: name.to_owned(),
            problem: problem.to_string(),
        }
    }
}
