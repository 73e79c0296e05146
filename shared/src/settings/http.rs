//! Where a service's HTTP server listens and how many threads serve it.

use super::{EnvSource, SettingsError};
use std::net::IpAddr;

/// Where the HTTP server listens.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// Threads serving HTTP (`HTTP_WORKERS`); each idle one still costs memory and wake-ups.
    pub workers: usize,
}

impl HttpSettings {
    /// `APP_HOST` (default 127.0.0.1: exposing a service is a deliberate choice), `APP_PORT`
    /// and `HTTP_WORKERS`.
    pub fn from_env(
        env: &EnvSource,
        default_port: u16,
        default_workers: usize,
    ) -> Result<Self, SettingsError> {
        Ok(Self {
            host: env.parse_or("APP_HOST", IpAddr::from([127, 0, 0, 1]))?,
            port: env.parse_or("APP_PORT", default_port)?,
            workers: env.count_or("HTTP_WORKERS", default_workers, 1, 256)?,
        })
    }
}

/// One HTTP worker per CPU: for a service whose work is serving many clients.
pub fn workers_per_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn empty_values_give_the_defaults() {
        let http = HttpSettings::from_env(&env(&[("APP_PORT", ""), ("APP_HOST", " ")]), 8003, 1)
            .expect("defaults");
        assert_eq!(http.port, 8003);
        assert_eq!(http.host.to_string(), "127.0.0.1");
    }

    #[test]
    fn a_bad_port_is_named() {
        let err =
            HttpSettings::from_env(&env(&[("APP_PORT", "80000")]), 8000, 1).expect_err("too big");
        assert!(err.to_string().starts_with("APP_PORT:"), "{err}");
        let err = HttpSettings::from_env(&env(&[("HTTP_WORKERS", "0")]), 8000, 1)
            .expect_err("no workers");
        assert!(err.to_string().starts_with("HTTP_WORKERS:"), "{err}");
    }
}
