//! `GET /health` (always 200, with the broker's state) and `GET /ready` (200 only when the
//! queue is bound and consuming).

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
        "messages": hub.message_counts(),
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
