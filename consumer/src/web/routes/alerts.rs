//! `GET /api/alerts`: what fires now and what ended lately.

use crate::alerts::view::AlertView;
use actix_web::{web, HttpResponse};
use std::sync::Arc;

/// `{"active": [...], "recent": [...]}`, events as the alerts exchange carries them.
pub async fn alerts(view: web::Data<Arc<AlertView>>) -> HttpResponse {
    HttpResponse::Ok().json(view.json())
}
