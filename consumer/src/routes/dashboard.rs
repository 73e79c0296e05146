//! The dashboard page and its assets, compiled into the binary.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

/// `consumer/assets/`, embedded at build time (in debug builds too).
#[derive(RustEmbed)]
#[folder = "assets/"]
pub(crate) struct Assets;

/// Only the page's own scripts, styles and WebSocket: a value in a message can never load
/// or run anything. Forms may post only here (login, logout).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// `GET /`: the dashboard.
pub async fn index() -> HttpResponse {
    serve("index.html")
}

/// `GET /assets/{file}`.
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    serve(&path.into_inner())
}

fn serve(name: &str) -> HttpResponse {
    let Some(file) = Assets::get(name) else {
        return shared::http::error_body(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "no such asset",
        );
    };
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, file.metadata.mimetype()))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((
            header::REFERRER_POLICY,
            // Not `no-referrer`: with it, a form's POST (logout) carries `Origin: null`.
            HeaderValue::from_static("same-origin"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")));
    response.body(file.data.into_owned())
}
