//! Prometheus plumbing both services share: a registry per app instance (not a process-wide
//! global, so tests can run several apps in one process) with process metrics, and the
//! `/metrics` answer.

use actix_web::HttpResponse;
use prometheus::{Encoder, Registry, TextEncoder};

/// Every metric name starts with this.
pub const NAMESPACE: &str = "hostpulse";

/// A registry with the process metrics (RSS, CPU seconds, open file descriptors).
pub fn new_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    {
        let process = prometheus::process_collector::ProcessCollector::new(
            std::process::id() as i32,
            NAMESPACE,
        );
        // Registering into a fresh registry only fails on duplicates, which cannot happen.
        let _ = registry.register(Box::new(process));
    }
    registry
}

/// Registers a metric built by `prometheus`'s constructors; names are fixed at compile time,
/// so an error here is a programming mistake caught by the first test that builds the app.
pub fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> prometheus::Result<M> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// The registry in Prometheus' text format.
pub fn render(registry: &Registry) -> HttpResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body),
        Err(e) => crate::http::error_body(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "metrics",
            &e.to_string(),
        ),
    }
}

/// Buckets for latencies from sub-millisecond to seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
