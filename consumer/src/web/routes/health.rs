//! `GET /health` (always 200, with the broker's state) and `GET /ready` (200 only when the
//! live queue is bound and consuming).

use crate::live::LiveView;
use crate::metrics::ConsumerMetrics;
use actix_web::{web, HttpResponse};
use serde_json::json;
use shared::broker::BrokerState;
use std::sync::Arc;
use tokio::sync::watch;

/// Liveness, with the broker state and what the live view holds.
pub async fn health(
    live: web::Data<Arc<LiveView>>,
    broker: web::Data<watch::Receiver<BrokerState>>,
    metrics: web::Data<ConsumerMetrics>,
    history: web::Data<Arc<crate::history::recorder::History>>,
) -> HttpResponse {
    let broker = broker.borrow().clone();
    HttpResponse::Ok().json(json!({
        "history": history.state(),
        "status": "ok",
        "service": "consumer",
        "version": env!("CARGO_PKG_VERSION"),
        "broker": broker,
        "ws_clients": live.client_count(),
        "messages": {
            "received": metrics.received.get(),
            "rejected": metrics.rejected_by_reason(),
        },
    }))
}

/// Readiness: is this consumer receiving readings right now?
pub async fn ready(broker: web::Data<watch::Receiver<BrokerState>>) -> HttpResponse {
    let broker = broker.borrow().clone();
    let body = json!({ "ready": broker.connected, "broker": broker });
    if broker.connected {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
