//! The publisher's HTTP routes.

mod health;
mod index;
mod publish;
mod reading;

pub use health::{health, metrics, ready};
pub use index::index;
pub use publish::{post_only, publish};
pub use reading::current_reading;

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use shared::http::error_body;

/// A collector failure, as an HTTP answer.
impl ResponseError for crate::collector::CollectError {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    fn error_response(&self) -> HttpResponse {
        error_body(self.status_code(), "collect_failed", &self.to_string())
    }
}

/// 401 with a JSON body and `WWW-Authenticate: Bearer`.
pub(crate) fn unauthorized(message: &str) -> HttpResponse {
    let mut response = error_body(StatusCode::UNAUTHORIZED, "unauthorized", message);
    response.headers_mut().insert(
        actix_web::http::header::WWW_AUTHENTICATE,
        actix_web::http::header::HeaderValue::from_static("Bearer"),
    );
    response
}
