//! HTTP pieces both services serve the same way: JSON error answers, 404 and 405.

use actix_web::{http::StatusCode, web, HttpResponse};
use serde_json::json;

/// The JSON body of every error answer: `{status: "error", reason, error}`.
pub fn error_body(status: StatusCode, reason: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "status": "error",
        "reason": reason,
        "error": message,
    }))
}

/// Unknown routes answer 404 with JSON, like every other error.
pub async fn not_found() -> HttpResponse {
    error_body(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// A known route asked with a method it does not serve.
pub async fn method_not_allowed() -> HttpResponse {
    error_body(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// A GET-only resource; other methods answer 405.
pub fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(method_not_allowed))
}
