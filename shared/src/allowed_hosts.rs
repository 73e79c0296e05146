//! Which names a service answers to (`ALLOWED_HOSTS`, as Django and Vite call it): the guard
//! against DNS rebinding. A web page the operator opens can make its own name resolve to
//! 127.0.0.1 and then read a loopback service as if it were its own site; the browser still
//! sends that name in `Host`, so answering only known names stops it.
//!
//! Answered: a loopback name or address (`localhost`, `*.localhost`, `127.0.0.1`, `[::1]`,
//! any port), the names listed in `ALLOWED_HOSTS`, and — when the service listens beyond
//! loopback — any IP address (a request addressed to an address cannot come from a rebound
//! name). Every other request gets 421 with a body naming the setting, is counted and logged.
//! Written once, used by both services ([`check_host`] as middleware).

use crate::settings::{EnvSource, SettingsError};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{IntCounter, Registry};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most one log line per this long about refused names; the rest are counted.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The names a service answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// Listed names, lower case: exact, or `.example.com` for it and its subdomains.
    names: Vec<String>,
    /// `ALLOWED_HOSTS=*`: every name (the check is off).
    any: bool,
    /// Any IP address: the service listens beyond loopback.
    any_address: bool,
    refused: IntCounter,
    log: Arc<Mutex<RefusalLog>>,
}

#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl AllowedHosts {
    /// `ALLOWED_HOSTS`: comma-separated names (`dash.example.com`), `.example.com` for a
    /// domain and its subdomains, IP addresses, or `*` for any. `listen` is `APP_HOST`.
    pub fn from_env(env: &EnvSource, listen: IpAddr) -> Result<Self, SettingsError> {
        const NAME: &str = "ALLOWED_HOSTS";
        let mut names = Vec::new();
        let mut any = false;
        for raw in env.get(NAME).unwrap_or("").split(',') {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                any = true;
                continue;
            }
            let name = entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .unwrap_or(entry);
            let is_address = name.parse::<IpAddr>().is_ok();
            let bare = name.strip_prefix('.').unwrap_or(name);
            let is_name = !bare.is_empty()
                && bare.len() <= 253
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
            if !is_address && !is_name {
                return Err(SettingsError::invalid(
                    NAME,
                    format!(
                        "{entry:?} is not a host name; list names such as dash.example.com \
                         or .example.com (no scheme, no port), or * for any"
                    ),
                ));
            }
            names.push(normalize(name));
        }
        let refused = IntCounter::new(
            "hostpulse_http_host_refused_total",
            "Requests refused because their Host is not a name this service answers to \
             (ALLOWED_HOSTS).",
        )
        .map_err(|e| SettingsError::invalid(NAME, e))?;
        Ok(Self {
            names,
            any,
            any_address: !listen.is_loopback(),
            refused,
            log: Arc::default(),
        })
    }

    /// Registers `hostpulse_http_host_refused_total` in `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.refused.clone()))
    }

    /// True when `ALLOWED_HOSTS` names no host (only loopback, and addresses when exposed,
    /// are answered).
    pub fn names_none(&self) -> bool {
        self.names.is_empty() && !self.any
    }

    /// True when a request whose `Host` header is `host` (`name`, `name:port`, `[v6]:port`)
    /// may be answered.
    pub fn allows(&self, host: &str) -> bool {
        match split_host(host) {
            Some(name) => self.allows_name(&name),
            None => false,
        }
    }

    /// True for a bare host name or address (no port) this service answers to.
    pub fn allows_name(&self, name: &str) -> bool {
        if self.any {
            return true;
        }
        let name = normalize(name);
        if let Ok(address) = name.parse::<IpAddr>() {
            return address.is_loopback()
                || self.any_address
                || self.names.iter().any(|n| n == &name);
        }
        name == "localhost"
            || name.ends_with(".localhost")
            || self
                .names
                .iter()
                .any(|listed| match listed.strip_prefix('.') {
                    Some(domain) => name == domain || name.ends_with(listed.as_str()),
                    None => &name == listed,
                })
    }

    /// Counts and logs (at most once per [`LOG_EVERY`]) a refused name.
    fn refused(&self, host: &str) {
        self.refused.inc();
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.last.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            log.suppressed += 1;
            return;
        }
        tracing::warn!(
            host = ?shown(host),
            also_refused_since_last_line = log.suppressed,
            "refused a request for a name this service does not answer to (ALLOWED_HOSTS)"
        );
        log.last = Some(Instant::now());
        log.suppressed = 0;
    }
}

/// A name as compared: lower case, without the root's trailing dot, IPv6 without brackets.
fn normalize(name: &str) -> String {
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The name of a `Host` value, without its port; `None` when it is not a host at all.
fn split_host(host: &str) -> Option<String> {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok());
        return (port_ok && inside.parse::<std::net::Ipv6Addr>().is_ok())
            .then(|| inside.to_owned());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        Some(_) => return None,
        None => host,
    };
    (!name.is_empty()).then(|| name.to_owned())
}

/// A refused name cut short, to be shown with `{:?}` (which escapes control characters).
fn shown(host: &str) -> String {
    host.chars().take(100).collect()
}

/// The request's `Host`: the header, or an HTTP/2 request's authority. Never a forwarded
/// header (`X-Forwarded-Host`, `Forwarded`), which any client may add.
pub fn request_host(head: &actix_web::dev::RequestHead) -> Option<String> {
    head.headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| head.uri.authority().map(|a| a.as_str().to_owned()))
}

/// True when the request comes from this machine (its peer is a loopback address) and is
/// addressed to a name this service answers to: what may see a service's details without a
/// login. (A rebound page in a local browser is a loopback peer too; its name gives it away.)
pub fn local_request(req: &actix_web::HttpRequest) -> bool {
    req.peer_addr()
        .is_some_and(|a| a.ip().to_canonical().is_loopback())
        && named_here(req)
}

/// True when the request is addressed to a name this service answers to (whether or not
/// the check refuses the others).
pub fn named_here(req: &actix_web::HttpRequest) -> bool {
    match (
        req.app_data::<web::Data<AllowedHosts>>(),
        request_host(req.head()),
    ) {
        (Some(hosts), Some(host)) => hosts.allows(&host),
        (None, _) | (_, None) => true,
    }
}

/// Middleware (`actix_web::middleware::from_fn`): answers 421 to a request whose `Host` is
/// not allowed by the [`AllowedHosts`] in the app's data. A request without any `Host` (an
/// HTTP/1.0 client, not a browser) is let through: rebinding needs a browser, which always
/// sends one.
pub async fn check_host(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let hosts = req.app_data::<web::Data<AllowedHosts>>().cloned();
    if let (Some(hosts), Some(host)) = (hosts, request_host(req.head())) {
        if !hosts.allows(&host) {
            hosts.refused(&host);
            let response = crate::http::error_body(
                StatusCode::MISDIRECTED_REQUEST,
                "host_not_allowed",
                &format!(
                    "this service does not answer to the name {:?} (a guard against DNS \
                     rebinding); if that is how you reach it, add the name to ALLOWED_HOSTS",
                    shown(&host)
                ),
            );
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &str, listen: [u8; 4]) -> AllowedHosts {
        AllowedHosts::from_env(
            &EnvSource::from_pairs([("ALLOWED_HOSTS", list)]),
            IpAddr::from(listen),
        )
        .expect("valid")
    }

    #[test]
    fn loopback_names_are_answered_on_any_port_and_others_not() {
        let local = hosts("", [127, 0, 0, 1]);
        for ok in [
            "localhost",
            "localhost:8003",
            "LOCALHOST.:80",
            "app.localhost:3000",
            "127.0.0.1",
            "127.0.0.1:8003",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8003",
        ] {
            assert!(local.allows(ok), "{ok}");
        }
        for refused in [
            "rebind.example",
            "rebind.example:8003",
            "localhost.rebind.example",
            "10.0.0.5:8003",
            "[fd00::1]:8003",
            "127.0.0.1:notaport",
            "[::1",
            "",
        ] {
            assert!(!local.allows(refused), "{refused}");
        }
    }

    #[test]
    fn listed_names_and_domains_are_answered() {
        let listed = hosts(
            "dash.example.com, .internal.example, 10.0.0.5, [fd00::1]",
            [127, 0, 0, 1],
        );
        assert!(listed.allows("dash.example.com:8003"));
        assert!(listed.allows("DASH.example.com"));
        assert!(listed.allows("internal.example"));
        assert!(listed.allows("a.b.internal.example:443"));
        assert!(listed.allows("10.0.0.5:8003"));
        assert!(listed.allows("[fd00::1]:8003"));
        assert!(!listed.allows("evil-internal.example"));
        assert!(!listed.allows("example.com"));
        assert!(!listed.allows("10.0.0.6"));
        assert!(hosts("*", [127, 0, 0, 1]).allows("anything.example"));
    }

    #[test]
    fn beyond_loopback_any_address_is_answered_but_names_still_checked() {
        let exposed = hosts("", [0, 0, 0, 0]);
        assert!(exposed.allows("10.0.0.5:8003"));
        assert!(exposed.allows("[fd00::1]:8003"));
        assert!(exposed.allows("localhost:8003"));
        assert!(!exposed.allows("rebind.example:8003"));
    }

    #[test]
    fn a_bad_entry_is_named() {
        for bad in [
            "http://dash.example.com",
            "dash.example.com:8003",
            "a b",
            "x\u{7}y",
        ] {
            let err = AllowedHosts::from_env(
                &EnvSource::from_pairs([("ALLOWED_HOSTS", bad)]),
                IpAddr::from([127, 0, 0, 1]),
            )
            .expect_err(bad);
            let text = err.to_string();
            assert!(text.starts_with("ALLOWED_HOSTS:"), "{text}");
            assert!(!text.contains('\u{7}'), "{text}");
        }
    }
}
