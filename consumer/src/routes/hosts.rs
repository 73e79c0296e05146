//! `GET /api/hosts`: the latest reading of every host; `GET /api/hosts/{host}/readings`: one
//! host's recent readings, for the page's charts (the snapshot carries only a short window).

use crate::live::LiveView;
use actix_web::http::StatusCode;
use actix_web::{http::header::ContentType, web, HttpResponse};
use std::sync::Arc;

/// A JSON array of readings, sorted by host name, each exactly as received.
pub async fn hosts(live: web::Data<Arc<LiveView>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(live.latest_json())
}

/// A JSON array of the host's readings held in memory, oldest first.
pub async fn host_readings(
    live: web::Data<Arc<LiveView>>,
    host: web::Path<String>,
) -> HttpResponse {
    match live.recent_json(&host) {
        Some(json) => HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(json),
        None => shared::http::error_body(
            StatusCode::NOT_FOUND,
            "unknown_host",
            "no readings from this host",
        ),
    }
}
