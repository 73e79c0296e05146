//! `GET /api/reading`: the current reading, not published (its `seq` is 0). Beyond loopback
//! with `PUBLISH_TOKEN` set, only for requests carrying that token.

use crate::auth::ReadingAccess;
use crate::collector::Collector;
use actix_web::{web, HttpRequest, HttpResponse};

/// The reading the collector has now.
pub async fn current_reading(
    req: HttpRequest,
    access: web::Data<ReadingAccess>,
    collector: web::Data<Collector>,
) -> HttpResponse {
    if !access.allows(&req) {
        return super::unauthorized(
            "a valid Authorization: Bearer token (PUBLISH_TOKEN) is required",
        );
    }
    match collector.reading().await {
        Ok(reading) => HttpResponse::Ok().json(&*reading),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}
