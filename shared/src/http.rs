//! HTTP pieces both services serve the same way: JSON error answers, 404 and 405, the body
//! limit, bearer tokens.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use serde_json::json;

/// The JSON body of every error answer: `{status: "error", reason, error}`.
pub fn error_body(status: StatusCode, reason: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "status": "error",
        "reason": reason,
        "error": message,
    }))
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// True when `given` is the `expected` secret. Both are hashed (SHA-256) and the hashes
/// compared in constant time: the time taken shows neither where they differ nor how long
/// the secret is.
pub fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
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

/// Neither service takes request bodies bigger than this.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;

/// Refuses requests that announce a body over [`MAX_BODY_BYTES`] with 413, before any handler
/// runs. (Handlers never read bodies, so an unannounced one is never buffered either.)
pub async fn limit_body_size(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        let response = error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request bodies are limited to 64 KiB",
        );
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_only_itself() {
        assert!(same_secret("t0ken", "t0ken"));
        assert!(!same_secret("t0ke", "t0ken"));
        assert!(!same_secret("t0ken ", "t0ken"));
        assert!(!same_secret("", "t0ken"));
    }
}
