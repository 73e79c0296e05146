//! `GET /health` (always 200, with the broker's state), `GET /ready` (200 only when
//! connected, for load balancers and orchestrators) and `GET /metrics` (Prometheus).

use crate::broker::ReadingPublisher;
use actix_web::{web, HttpResponse};
use serde_json::json;
use std::sync::Arc;

/// Liveness, with the broker state for people and dashboards.
pub async fn health(publisher: web::Data<Arc<ReadingPublisher>>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "service": "publisher",
        "version": env!("CARGO_PKG_VERSION"),
        "broker": publisher.state(),
    }))
}

/// Readiness: can a publish succeed right now?
pub async fn ready(publisher: web::Data<Arc<ReadingPublisher>>) -> HttpResponse {
    let broker = publisher.state();
    let body = json!({ "ready": broker.connected, "broker": broker });
    if broker.connected {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics of this instance.
pub async fn metrics(
    metrics: web::Data<crate::metrics::PublisherMetrics>,
    publisher: web::Data<Arc<ReadingPublisher>>,
) -> HttpResponse {
    metrics
        .broker_connected
        .set(i64::from(publisher.state().connected));
    shared::metrics::render(&metrics.registry)
}
