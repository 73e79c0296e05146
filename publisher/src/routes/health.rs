//! `GET /health` (always 200, with the broker's state), `GET /ready` (200 only when
//! connected, for load balancers and orchestrators) and `GET /metrics` (Prometheus). The
//! broker's state (its URL and user, the last error) goes only to requests from this machine
//! or bearing `PUBLISH_TOKEN`; others get `{"status": …}` / `{"ready": …}` alone.

use crate::broker::ReadingPublisher;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use std::sync::Arc;

/// True when the request may see the broker's state: from this machine, or with the token.
fn may_see_details(req: &HttpRequest) -> bool {
    shared::allowed_hosts::local_request(req)
        || req
            .app_data::<web::Data<crate::auth::PublishToken>>()
            .is_some_and(|token| token.is_set() && token.allows(req))
}

/// Liveness, with the broker state for people and dashboards.
pub async fn health(req: HttpRequest, publisher: web::Data<Arc<ReadingPublisher>>) -> HttpResponse {
    if !may_see_details(&req) {
        return HttpResponse::Ok().json(json!({ "status": "ok" }));
    }
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "service": "publisher",
        "version": env!("CARGO_PKG_VERSION"),
        "broker": publisher.state(),
    }))
}

/// Readiness: can a publish succeed right now?
pub async fn ready(req: HttpRequest, publisher: web::Data<Arc<ReadingPublisher>>) -> HttpResponse {
    let broker = publisher.state();
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
