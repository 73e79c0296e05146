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

/// The logout form in `index.html`, hidden unless a login is configured.
const LOGOUT_FORM_HIDDEN: &str = r#"<form id="logout" method="post" action="/logout" hidden>"#;

/// `GET /`: the dashboard; with its logout form shown when there is a login.
pub async fn index(guard: Option<web::Data<crate::web::auth::Guard>>) -> HttpResponse {
    let mut response = serve("index.html");
    if guard.is_some_and(|g| g.login_required()) {
        if let Some(file) = Assets::get("index.html") {
            let page = String::from_utf8_lossy(&file.data).replace(
                LOGOUT_FORM_HIDDEN,
                r#"<form id="logout" method="post" action="/logout">"#,
            );
            response = response.set_body(page).map_into_boxed_body();
        }
    }
    response
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_has_the_logout_form_the_server_shows() {
        let page = super::Assets::get("index.html").expect("embedded");
        let page = String::from_utf8_lossy(&page.data);
        assert_eq!(page.matches(super::LOGOUT_FORM_HIDDEN).count(), 1);
    }
}
