//! `GET /health` (always 200) and `GET /ready` (200 only when the live queue is bound and
//! consuming). Their details — the broker's URL and user, the store's location, the last
//! errors — go only to a request from this machine (addressed to a name the consumer answers
//! to) or from a logged-in user; anyone else gets `{"status": …}` / `{"ready": …}` alone, as
//! Grafana's `/api/health` tells the world little more than "ok".

use crate::live::LiveView;
use crate::metrics::ConsumerMetrics;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use shared::broker::BrokerState;
use std::sync::Arc;
use tokio::sync::watch;

/// True when the request may see the details: from this machine (the client, as
/// `TRUSTED_PROXIES` decides it, on loopback, and the name one the consumer answers to), or
/// logged in.
fn may_see_details(req: &HttpRequest) -> bool {
    let Some(guard) = req.app_data::<web::Data<crate::web::auth::Guard>>() else {
        return shared::allowed_hosts::local_request(req);
    };
    (guard.client_address(req).to_canonical().is_loopback()
        && shared::allowed_hosts::named_here(req))
        || guard.logged_in(req)
}

/// Liveness, with the broker state and what the live view holds (for those who may see them).
pub async fn health(
    req: HttpRequest,
    live: web::Data<Arc<LiveView>>,
    broker: web::Data<watch::Receiver<BrokerState>>,
    metrics: web::Data<ConsumerMetrics>,
    history: web::Data<Arc<crate::history::recorder::History>>,
) -> HttpResponse {
    if !may_see_details(&req) {
        return HttpResponse::Ok().json(json!({ "status": "ok" }));
    }
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
pub async fn ready(
    req: HttpRequest,
    broker: web::Data<watch::Receiver<BrokerState>>,
) -> HttpResponse {
    let broker = broker.borrow().clone();
    let body = if may_see_details(&req) {
        json!({ "ready": broker.connected, "broker": broker })
    } else {
        json!({ "ready": broker.connected })
    };
    if broker.connected {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
