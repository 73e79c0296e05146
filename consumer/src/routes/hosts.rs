//! `GET /api/hosts`: the latest reading of every host.

use crate::hub::Hub;
use actix_web::{http::header::ContentType, web, HttpResponse};
use std::sync::Arc;

/// A JSON array of readings, sorted by host name, each exactly as received.
pub async fn hosts(hub: web::Data<Arc<Hub>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(hub.latest_json())
}
