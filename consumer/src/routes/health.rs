//! `GET /health` (always 200, with the broker's state), `GET /ready` (200 only when the
//! queue is bound and consuming) and `GET /metrics` (Prometheus).

use crate::hub::Hub;
use actix_web::{web, HttpResponse};
use serde_json::json;
use std::sync::Arc;

/// Liveness, with the broker state and what the hub holds.
pub async fn health(hub: web::Data<Arc<Hub>>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "service": "consumer",
        "version": env!("CARGO_PKG_VERSION"),
        "broker": hub.broker(),
        "ws_clients": hub.client_count(),
        "messages": {
            "received": hub.metrics().received.get(),
            "rejected": hub.metrics().rejected_by_reason(),
        },
    }))
}

/// Readiness: is this consumer receiving readings right now?
pub async fn ready(hub: web::Data<Arc<Hub>>) -> HttpResponse {
    let broker = hub.broker();
    let body = json!({ "ready": broker.connected, "broker": broker });
    if broker.connected {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics: the pipeline's, and every host's latest reading.
pub async fn metrics(hub: web::Data<Arc<Hub>>) -> HttpResponse {
    let metrics = hub.metrics();
    metrics.update_fleet(&hub.hosts());
    metrics
        .broker_connected
        .set(i64::from(hub.broker().connected));
    metrics.ws_clients.set(hub.client_count() as i64);
    shared::metrics::render(&metrics.registry)
}
