//! `GET|POST /login` and `GET|POST /logout`: plain HTML forms (no script, so the strict CSP
//! holds and they work without JavaScript). Both POSTs are refused from other sites: the
//! cookie is `SameSite=Strict`, and the `Origin` (or `Referer`) must be this host.

use super::{Guard, COOKIE};
use crate::web::routes::{Assets, CONTENT_SECURITY_POLICY};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// The login routes, for `App::configure`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // A form without both fields (a script, not the page) gets a clear JSON 400.
    let form = web::FormConfig::default()
        .limit(4096)
        .error_handler(|err, _req| {
            let answer = shared::http::error_body(
                StatusCode::BAD_REQUEST,
                "bad_form",
                "the login form needs `name` and `password`, URL-encoded, at most 4 KiB",
            );
            actix_web::error::InternalError::from_response(err, answer).into()
        });
    cfg.service(
        web::resource("/login")
            .app_data(form)
            .route(web::get().to(login_page))
            .route(web::post().to(log_in))
            .default_service(web::to(shared::http::method_not_allowed)),
    )
    .service(
        web::resource("/logout")
            .route(web::get().to(logout_page))
            .route(web::post().to(log_out))
            .default_service(web::to(shared::http::method_not_allowed)),
    );
}

/// The login form's fields. No `Debug`: it holds a password.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
}

async fn login_page(req: HttpRequest, guard: web::Data<Guard>) -> HttpResponse {
    if !guard.login_required() || guard.session(&req).is_some() {
        return see_other("/");
    }
    login_form(StatusCode::OK, "")
}

async fn log_in(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    guard: web::Data<Guard>,
) -> HttpResponse {
    let Some(users) = guard.users.clone() else {
        return see_other("/");
    };
    if !same_origin(&req) {
        tracing::warn!("refused a login posted from another site");
        return login_form(
            StatusCode::FORBIDDEN,
            "This login came from another site and was refused.",
        );
    }
    // The client as TRUSTED_PROXIES decides: behind an untrusted proxy every login shares
    // the proxy's address, which errs on the safe side.
    let address = guard.client_address(&req);
    // Counted before it is judged: a burst is cut at the allowance however fast it comes.
    let attempt = match guard.brake.take(address) {
        Ok(attempt) => attempt,
        Err(wait) => {
            guard.login_throttled.inc();
            tracing::warn!(%address, "login refused: too many attempts from this address");
            let minutes = wait.as_secs().div_ceil(60).max(1);
            return too_many(
                &format!("Too many failed logins from your address. Try again in {minutes} min."),
                wait.as_secs().max(1),
            );
        }
    };
    let LoginForm { name, password } = form.into_inner();
    let user = name.clone();
    let verified = guard.checks.verify(users, name, password).await;
    let Ok(verified) = verified else {
        // Not judged, so not counted against the address.
        guard.brake.give_back(attempt);
        guard.login_busy.inc();
        tracing::warn!(%address, "login refused: every password check is busy");
        return too_many(
            "The server is busy checking other logins. Try again in a moment.",
            1,
        );
    };
    if !verified {
        guard.login_failures.inc();
        // Not the name: people type passwords into it by mistake.
        tracing::warn!(%address, "failed login");
        return login_form(StatusCode::UNAUTHORIZED, "Wrong name or password.");
    }
    // A right password does not use up the address's allowance.
    guard.brake.give_back(attempt);
    let id = guard.sessions.start();
    tracing::info!(user, %address, "logged in");
    let cookie = Cookie::build(COOKIE, id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(guard.secure_cookies)
        .finish();
    let mut response = see_other("/");
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn logout_page(req: HttpRequest, guard: web::Data<Guard>) -> HttpResponse {
    if guard.session(&req).is_none() {
        return see_other("/login");
    }
    page(
        StatusCode::OK,
        "Log out",
        r#"<form method="post" action="/logout">
      <h2>Log out</h2>
      <p>End this session? Open dashboards of it close too.</p>
      <button type="submit">Log out</button>
    </form>"#,
    )
}

async fn log_out(req: HttpRequest, guard: web::Data<Guard>) -> HttpResponse {
    if !same_origin(&req) {
        tracing::warn!("refused a logout posted from another site");
        return shared::http::error_body(
            StatusCode::FORBIDDEN,
            "cross_site",
            "logout is only accepted from this site's own page",
        );
    }
    if let Some((id, _)) = guard.session(&req) {
        guard.sessions.end(&id);
        tracing::info!("logged out");
    }
    let mut gone = Cookie::build(COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(guard.secure_cookies)
        .finish();
    gone.make_removal();
    let mut response = see_other("/login");
    if let Ok(value) = HeaderValue::from_str(&gone.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// True unless a browser says the request comes from another site. Browsers send `Origin`
/// on every POST; a client that sends neither it nor `Referer` is not a browser, so not a
/// cross-site forgery. `Origin: null` (sandboxed frames, some redirects) is refused.
fn same_origin(req: &HttpRequest) -> bool {
    let headers = req.headers();
    let Some(claimed) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
    else {
        return true;
    };
    let Some(url) = claimed.to_str().ok().and_then(|c| url::Url::parse(c).ok()) else {
        return false;
    };
    let origin = url.origin().ascii_serialization();
    let host = req.connection_info().host().to_owned();
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(&host))
}

fn login_form(status: StatusCode, message: &str) -> HttpResponse {
    // Messages are this module's own fixed text; nothing a visitor sent is echoed.
    let body = format!(
        r#"<form method="post" action="/login">
      <h2>Log in</h2>
      <p class="message" role="alert">{message}</p>
      <label>Name <input name="name" autocomplete="username" required autofocus></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
      <button type="submit">Log in</button>
    </form>"#
    );
    page(status, "Log in", &body)
}

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    let template = Assets::get("login.html")
        .map(|file| String::from_utf8_lossy(&file.data).into_owned())
        .unwrap_or_default();
    let html = template
        .replace("{{title}}", title)
        .replace("{{body}}", body);
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // `no-referrer` would make the browser send `Origin: null` with the form, which the
        // cross-site check must refuse.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

/// A 429 with the login form, saying `message`, and `Retry-After: retry_secs`.
fn too_many(message: &str, retry_secs: u64) -> HttpResponse {
    let mut response = login_form(StatusCode::TOO_MANY_REQUESTS, message);
    if let Ok(value) = HeaderValue::from_str(&retry_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn see_other(location: &'static str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
