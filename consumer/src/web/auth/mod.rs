//! Who may see the dashboard: a login (`DASHBOARD_USERS_FILE`) with server-side sessions,
//! read-only API tokens for scripts, an optional bearer token for `/metrics`, and a brake on
//! password guessing.
//!
//! With users configured, `/`, `/assets/*` (but the login page's), `/ws` and `/api/*` need a
//! session; pages without one are sent to `/login`, the API and the socket answer 401 JSON.
//! `/api/*` also takes `Authorization: Bearer hp_…` for `GET`. `/health` and `/ready` stay
//! open for probes; `/metrics` too, unless `METRICS_TOKEN` is set. A WebSocket whose session
//! expires or logs out is closed with 1008 (policy violation); the page then finds `/ws`
//! refused and its next load goes to the login page.
//!
//! Wiring, in `startup.rs`: [`Guard::new`] into `app_data`, [`require`] as middleware
//! (`actix_web::middleware::from_fn`), [`routes`] through `App::configure`, and
//! [`expire_sessions`] as a task.

mod brake;
mod checks;
mod client;
mod login;
mod sessions;
pub mod tokens;
mod users;

pub use brake::{BrakeKey, LoginBrake, LOGIN_WINDOW};
pub use checks::{PasswordChecks, MAX_SLOTS, SLOT_WAIT};
pub use client::{ClientSpan, TrustedProxies};
pub use login::routes;
pub use sessions::{ended, SessionEnd, Sessions, COOKIE};
pub use tokens::in_store::{Imported, StoreTokenStore};
pub use tokens::{FileTokenStore, TokenStore};
pub use users::{hash_password, Users, MIN_M_COST, MIN_T_COST};

use crate::clock::SharedClock;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use prometheus::{IntCounter, Registry};
use secrecy::{ExposeSecret, SecretString};
use shared::http::bearer;
use shared::settings::{EnvSource, SettingsError};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The auth settings. `Debug` shows no hash and no token.
#[derive(Clone)]
pub struct AuthSettings {
    /// Who may log in (`DASHBOARD_USERS_FILE`); `None` leaves the dashboard open.
    pub users: Option<Arc<Users>>,
    /// How long a login lasts (`SESSION_TTL`, humantime such as `12h`).
    pub session_ttl: Duration,
    /// Login attempts from one address per [`LOGIN_WINDOW`] (`LOGIN_MAX_ATTEMPTS`).
    pub login_max_attempts: NonZeroU32,
    /// Proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Cookies get `Secure` although the consumer serves plain HTTP, behind a TLS proxy
    /// (`SECURE_COOKIES=true`, or a `PUBLIC_URL` starting with `https://`).
    pub secure_cookies: bool,
    /// When set, `/metrics` needs `Authorization: Bearer <it>` (`METRICS_TOKEN`).
    pub metrics_token: Option<SecretString>,
    /// Where API tokens are kept without history (`DATA_DIR`, default `./data`).
    pub data_dir: PathBuf,
    /// Serve without a login on a non-loopback address (`DASHBOARD_PUBLIC=true`).
    pub public: bool,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("users", &self.users)
            .field("session_ttl", &self.session_ttl)
            .field("login_max_attempts", &self.login_max_attempts)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("secure_cookies", &self.secure_cookies)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "set"))
            .field("data_dir", &self.data_dir)
            .field("public", &self.public)
            .finish()
    }
}

impl AuthSettings {
    /// Reads and checks the auth settings; the users file is read now, so a bad one stops
    /// start-up.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let users = match env.get("DASHBOARD_USERS_FILE") {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    SettingsError::invalid(
                        "DASHBOARD_USERS_FILE",
                        format!("cannot read {path}: {e}"),
                    )
                })?;
                let users = Users::parse(&text).map_err(|e| {
                    SettingsError::invalid("DASHBOARD_USERS_FILE", format!("{path}: {e}"))
                })?;
                Some(Arc::new(users))
            }
        };
        let session_ttl = match env.get("SESSION_TTL") {
            None => Duration::from_secs(12 * 3600),
            Some(raw) => humantime::parse_duration(raw).map_err(|e| {
                SettingsError::invalid(
                    "SESSION_TTL",
                    format!("{raw:?} is not a duration such as 12h ({e})"),
                )
            })?,
        };
        if session_ttl < Duration::from_secs(60) || session_ttl > Duration::from_secs(366 * 86_400)
        {
            return Err(SettingsError::invalid(
                "SESSION_TTL",
                "must be between 1 minute and a year",
            ));
        }
        let attempts = env.count_or("LOGIN_MAX_ATTEMPTS", 5, 1, 1_000_000)?;
        let login_max_attempts = u32::try_from(attempts)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(NonZeroU32::MIN);
        let trusted_proxies = TrustedProxies::parse(env.get("TRUSTED_PROXIES").unwrap_or(""))
            .map_err(|e| SettingsError::invalid("TRUSTED_PROXIES", e))?;
        let public_https = match env.get("PUBLIC_URL") {
            None => false,
            Some(raw) => {
                let url = url::Url::parse(raw).map_err(|e| {
                    SettingsError::invalid(
                        "PUBLIC_URL",
                        format!("{raw:?} is not a URL such as https://monitor.example.com ({e})"),
                    )
                })?;
                url.scheme() == "https"
            }
        };
        let secure_cookies = env.parse_or("SECURE_COOKIES", public_https)?;
        Ok(Self {
            users,
            session_ttl,
            login_max_attempts,
            trusted_proxies,
            secure_cookies,
            metrics_token: env.get("METRICS_TOKEN").map(SecretString::from),
            data_dir: PathBuf::from(env.get("DATA_DIR").unwrap_or("./data")),
            public: env.parse_or("DASHBOARD_PUBLIC", false)?,
        })
    }

    /// Refuses to serve an open dashboard beyond this machine unless the user said so.
    pub fn check_exposure(&self, host: IpAddr) -> Result<(), SettingsError> {
        if host.is_loopback() || self.users.is_some() || self.public {
            return Ok(());
        }
        Err(SettingsError::invalid(
            "APP_HOST",
            format!(
                "{host} is reachable from other machines and no login is configured: set \
                 DASHBOARD_USERS_FILE (see `consumer hash-password`) to require one, or \
                 DASHBOARD_PUBLIC=true to show the fleet to anyone who can reach this port"
            ),
        ))
    }
}

/// Everything the middleware and the login routes need, shared by every worker.
pub struct Guard {
    users: Option<Arc<Users>>,
    sessions: Sessions,
    tokens: Arc<dyn TokenStore>,
    brake: LoginBrake,
    checks: PasswordChecks,
    trusted_proxies: TrustedProxies,
    metrics_token: Option<SecretString>,
    /// Cookies get `Secure` under HTTPS, or when told they are behind a TLS proxy.
    secure_cookies: bool,
    /// `hostpulse_login_failures_total`.
    pub login_failures: IntCounter,
    /// `hostpulse_login_throttled_total`.
    pub login_throttled: IntCounter,
    /// `hostpulse_login_busy_total`.
    pub login_busy: IntCounter,
}

impl Guard {
    /// A guard over `tokens`, its counters registered in `registry`. `serves_https`: the
    /// consumer itself serves TLS, so cookies are `Secure` whatever the settings say.
    pub fn new(
        settings: &AuthSettings,
        tokens: Arc<dyn TokenStore>,
        clock: SharedClock,
        serves_https: bool,
        registry: &Registry,
    ) -> prometheus::Result<Self> {
        let login_failures = IntCounter::new(
            "hostpulse_login_failures_total",
            "Logins refused for a wrong name or password.",
        )?;
        let login_throttled = IntCounter::new(
            "hostpulse_login_throttled_total",
            "Logins refused with 429 unchecked: too many attempts from one address.",
        )?;
        let login_busy = IntCounter::new(
            "hostpulse_login_busy_total",
            "Logins refused with 429 unchecked: every password check slot stayed busy.",
        )?;
        registry.register(Box::new(login_failures.clone()))?;
        registry.register(Box::new(login_throttled.clone()))?;
        registry.register(Box::new(login_busy.clone()))?;
        Ok(Self {
            users: settings.users.clone(),
            sessions: Sessions::new(settings.session_ttl, Arc::clone(&clock)),
            tokens,
            brake: LoginBrake::new(settings.login_max_attempts, clock),
            checks: PasswordChecks::per_core(),
            trusted_proxies: settings.trusted_proxies.clone(),
            metrics_token: settings.metrics_token.clone(),
            secure_cookies: serves_https || settings.secure_cookies,
            login_failures,
            login_throttled,
            login_busy,
        })
    }

    /// The token store (`consumer token …` and tests use it).
    pub fn tokens(&self) -> Arc<dyn TokenStore> {
        Arc::clone(&self.tokens)
    }

    /// The client's address, `X-Forwarded-For` believed only from a trusted proxy.
    pub fn client_address(&self, req: &HttpRequest) -> IpAddr {
        self.trusted_proxies.client(req.peer_addr(), req.headers())
    }

    /// True when a login is required.
    pub fn login_required(&self) -> bool {
        self.users.is_some()
    }

    /// True when the request carries a valid session (a logged-in user).
    pub fn logged_in(&self, req: &HttpRequest) -> bool {
        self.session(req).is_some()
    }

    /// The session the request's cookie names, if valid.
    fn session(&self, req: &HttpRequest) -> Option<(String, SessionEnd)> {
        let cookie = req.cookie(COOKIE)?;
        let end = self.sessions.check(cookie.value())?;
        Some((cookie.value().to_owned(), end))
    }

    /// True when `/metrics` may be read: no token set, or the request carries it. Both sides
    /// are hashed first so the constant-time comparison does not reveal the length either.
    fn metrics_allowed(&self, req: &HttpRequest) -> bool {
        let Some(expected) = &self.metrics_token else {
            return true;
        };
        shared::http::same_secret(bearer(req).unwrap_or(""), expected.expose_secret())
    }
}

/// What a path needs.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    /// Probes, and what the login page itself needs.
    Open,
    /// `/metrics`: open, or `METRICS_TOKEN`.
    Metrics,
    /// `/api/*`: a session or a token; refusals are JSON.
    Api,
    /// `/ws`: a session; refusals are JSON.
    Socket,
    /// The dashboard and its assets: a session, or off to `/login`.
    Page,
}

fn access(path: &str) -> Access {
    match path {
        "/health" | "/ready" | "/login" | "/logout" | "/assets/login.css" => Access::Open,
        "/metrics" => Access::Metrics,
        "/ws" => Access::Socket,
        _ if path.starts_with("/api/") || path == "/api" => Access::Api,
        _ => Access::Page,
    }
}

/// The middleware: lets a request through or answers it with a refusal (see the module's
/// documentation). A request with a valid session carries its [`SessionEnd`] onwards.
pub async fn require(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(guard) = req.app_data::<web::Data<Guard>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let access = access(req.path());
    let refusal = match access {
        Access::Open => None,
        Access::Metrics if guard.metrics_allowed(req.request()) => None,
        Access::Metrics => Some(unauthorized("a valid METRICS_TOKEN is required")),
        _ if !guard.login_required() => None,
        Access::Api | Access::Socket | Access::Page => {
            if let Some((_, end)) = guard.session(req.request()) {
                req.extensions_mut().insert(end);
                None
            } else if access == Access::Api && bearer(req.request()).is_some() {
                api_token_refusal(&guard, req.request()).await
            } else if access == Access::Page {
                Some(to_login())
            } else {
                Some(unauthorized("log in first, or send an API token"))
            }
        }
    };
    match refusal {
        None => Ok(next.call(req).await?.map_into_boxed_body()),
        Some(response) => Ok(req.into_response(response)),
    }
}

/// `None` when the request's bearer token is live and the request only reads.
async fn api_token_refusal(guard: &Guard, req: &HttpRequest) -> Option<HttpResponse> {
    let secret = bearer(req).unwrap_or("");
    match tokens::verify(guard.tokens.as_ref(), secret).await {
        Ok(Some(_)) if matches!(*req.method(), Method::GET | Method::HEAD) => None,
        Ok(Some(_)) => Some(shared::http::error_body(
            StatusCode::FORBIDDEN,
            "read_only_token",
            "API tokens may only read (GET)",
        )),
        Ok(None) => Some(unauthorized("the token is not valid or was revoked")),
        Err(e) => {
            tracing::error!(error = %e, "cannot check an API token");
            Some(shared::http::error_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "token_store_unavailable",
                "API tokens cannot be checked right now",
            ))
        }
    }
}

fn unauthorized(message: &str) -> HttpResponse {
    let mut response = shared::http::error_body(StatusCode::UNAUTHORIZED, "unauthorized", message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn to_login() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Ends expired sessions (closing their WebSockets) and tidies the login brake, every second.
pub async fn expire_sessions(guard: web::Data<Guard>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut tidied = tokio::time::Instant::now();
    loop {
        ticks.tick().await;
        let expired = guard.sessions.expire();
        if expired > 0 {
            tracing::info!(expired, "sessions expired");
        }
        if tidied.elapsed() > Duration::from_secs(60) {
            guard.brake.tidy();
            tidied = tokio::time::Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_the_access_it_should() {
        assert_eq!(access("/"), Access::Page);
        assert_eq!(access("/assets/app.js"), Access::Page);
        assert_eq!(access("/assets/login.css"), Access::Open);
        assert_eq!(access("/api/hosts"), Access::Api);
        assert_eq!(access("/ws"), Access::Socket);
        assert_eq!(access("/health"), Access::Open);
        assert_eq!(access("/metrics"), Access::Metrics);
    }

    #[test]
    fn an_open_dashboard_is_refused_beyond_loopback_unless_told() {
        let open = AuthSettings::from_env(&EnvSource::default()).expect("defaults");
        assert!(open.check_exposure([127, 0, 0, 1].into()).is_ok());
        let err = open
            .check_exposure([0, 0, 0, 0].into())
            .expect_err("refused");
        let line = err.to_string();
        assert!(line.contains("DASHBOARD_USERS_FILE") && line.contains("DASHBOARD_PUBLIC=true"));
        let public = AuthSettings::from_env(&EnvSource::from_pairs([("DASHBOARD_PUBLIC", "true")]))
            .expect("valid");
        assert!(public.check_exposure([0, 0, 0, 0].into()).is_ok());
    }

    #[test]
    fn settings_never_show_secrets() {
        let env =
            EnvSource::from_pairs([("METRICS_TOKEN", "s3cret-metrics"), ("SESSION_TTL", "30m")]);
        let settings = AuthSettings::from_env(&env).expect("valid");
        assert_eq!(settings.session_ttl, Duration::from_secs(1800));
        assert!(!format!("{settings:?}").contains("s3cret"));
        let err = AuthSettings::from_env(&EnvSource::from_pairs([("SESSION_TTL", "soon")]))
            .expect_err("bad");
        assert!(err.to_string().starts_with("SESSION_TTL:"));
    }
}
