//! `GET /api/reading`: the current reading, not published (its `seq` is 0).

use crate::collector::{CollectError, Collector};
use actix_web::{web, HttpResponse};

/// The reading the collector has now.
pub async fn current_reading(
    collector: web::Data<Collector>,
) -> Result<HttpResponse, CollectError> {
    let reading = collector.reading().await?;
    Ok(HttpResponse::Ok().json(&*reading))
}
