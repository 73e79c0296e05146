//! `GET /api/hosts`: the latest reading of every host; `GET /api/hosts/{host}/readings`: one
//! host's recent readings, for the page's charts (the snapshot carries only a short window).

use crate::live::LiveView;
use actix_web::http::StatusCode;
use actix_web::{http::header::ContentType, web, HttpResponse};
use std::sync::Arc;

/// `?only=offline`: the hosts known only from history, without the live ones (the page asks
/// for these every minute; a thousand live hosts' latest readings are megabytes).
#[derive(Debug, serde::Deserialize)]
pub struct HostsQuery {
    only: Option<String>,
}

/// A JSON array of readings, sorted by host name, each exactly as received; then the hosts
/// known only from history, each as `{"host", "offline": true, "last_seen", "os", "cpu"}`.
pub async fn hosts(
    query: web::Query<HostsQuery>,
    live: web::Data<Arc<LiveView>>,
    history: web::Data<Arc<crate::history::recorder::History>>,
) -> HttpResponse {
    let latest = match query.only.as_deref() {
        None => live.latest_json(),
        Some("offline") => "[]".to_owned(),
        Some(other) => {
            return shared::http::error_body(
                StatusCode::BAD_REQUEST,
                "bad_parameter",
                &format!("only: expected \"offline\", got {other:?}"),
            )
        }
    };
    let Some(store) = history.store() else {
        return HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(latest);
    };
    let known: std::collections::HashSet<String> = live
        .hosts()
        .into_iter()
        .map(|h| h.latest.reading.host.clone())
        .collect();
    // The live view answers even when the store does not.
    let offline: Vec<serde_json::Value> = match store.hosts().await {
        Ok(records) => records
            .into_iter()
            .filter(|r| !known.contains(&r.name))
            .map(|r| {
                serde_json::json!({
                    "host": r.name,
                    "offline": true,
                    "last_seen": r.last_seen_at().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    "os": {"name": r.os_name, "version": r.os_version, "kernel": r.kernel},
                    "cpu": {"brand": r.cpu_brand, "core_count": r.core_count},
                })
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "history hosts unavailable for /api/hosts");
            Vec::new()
        }
    };
    if offline.is_empty() {
        return HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(latest);
    }
    let mut body = latest;
    body.pop();
    for (i, host) in offline.iter().enumerate() {
        if body.len() > 1 || i > 0 {
            body.push(',');
        }
        body.push_str(&host.to_string());
    }
    body.push(']');
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
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
