//! Which web pages may open the WebSocket. Stops cross-site WebSocket hijacking (another
//! site's script reading the fleet's readings through a visitor's browser) and DNS rebinding
//! (a page whose name was made to resolve to this consumer): a page may connect when its
//! origin is listed in `ALLOWED_ORIGINS`, or when it is this consumer's own page reached by a
//! name this consumer answers to (`ALLOWED_HOSTS`, see [`shared::allowed_hosts`]) — not merely
//! the name the request itself claims, which a rebinding page controls. With a login, a page
//! of the consumer's own origin may connect under any name: the session cookie, which a
//! rebound page never has, is what protects then. Clients that send no `Origin` (not
//! browsers) are let in.

use shared::allowed_hosts::AllowedHosts;
use shared::settings::{EnvSource, SettingsError};

/// Origins let in besides the consumer's own, and the names the consumer answers to.
#[derive(Debug, Clone)]
pub struct AllowedOrigins {
    origins: Vec<String>,
    hosts: AllowedHosts,
}

impl AllowedOrigins {
    /// `ALLOWED_ORIGINS`: comma-separated origins such as `https://dash.example.com`; `hosts`
    /// are the names the consumer answers to (`ALLOWED_HOSTS`).
    pub fn from_env(env: &EnvSource, hosts: AllowedHosts) -> Result<Self, SettingsError> {
        let mut origins = Vec::new();
        for raw in env.get("ALLOWED_ORIGINS").unwrap_or("").split(',') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let url = url::Url::parse(raw).map_err(|e| {
                SettingsError::invalid("ALLOWED_ORIGINS", format!("{raw:?} is not an origin ({e})"))
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(SettingsError::invalid(
                    "ALLOWED_ORIGINS",
                    format!("{raw:?} is not an http(s) origin"),
                ));
            }
            origins.push(url.origin().ascii_serialization());
        }
        Ok(Self { origins, hosts })
    }

    /// True when a page from `origin` may open the socket of this consumer, reached as `host`
    /// (the request's `Host`); `login`: a login is required.
    pub fn allows(&self, origin: &str, host: &str, login: bool) -> bool {
        if self
            .origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let Ok(url) = url::Url::parse(origin) else {
            return false;
        };
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        // The consumer's own page: same name and port as the socket it opens.
        let own_page = origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host));
        own_page
            && (login
                || url
                    .host_str()
                    .is_some_and(|name| self.hosts.allows_name(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &str, hosts: &str) -> AllowedOrigins {
        let env = EnvSource::from_pairs([("ALLOWED_ORIGINS", list), ("ALLOWED_HOSTS", hosts)]);
        let hosts = AllowedHosts::from_env(&env, [127, 0, 0, 1].into()).expect("valid");
        AllowedOrigins::from_env(&env, hosts).expect("valid")
    }

    #[test]
    fn the_consumers_own_pages_and_listed_origins_are_let_in() {
        let origins = origins("https://dash.example.com, http://10.0.0.5:8080", "");
        assert!(origins.allows("http://127.0.0.1:8003", "127.0.0.1:8003", false));
        assert!(origins.allows("http://localhost:8003", "localhost:8003", false));
        assert!(origins.allows("https://dash.example.com", "127.0.0.1:8003", false));
        assert!(origins.allows("http://10.0.0.5:8080", "127.0.0.1:8003", false));
        assert!(!origins.allows("https://evil.example", "127.0.0.1:8003", false));
        assert!(!origins.allows("http://127.0.0.1:9999", "127.0.0.1:8003", false));
        assert!(!origins.allows("null", "127.0.0.1:8003", false));
    }

    #[test]
    fn a_rebound_page_is_refused_though_it_names_itself_as_host() {
        let open = origins("", "");
        // The attacker controls both the page's origin and the Host its requests carry.
        assert!(!open.allows("http://rebind.example:8003", "rebind.example:8003", false));
        let listed = origins("", "monitor.example");
        assert!(listed.allows("http://monitor.example:8003", "monitor.example:8003", false));
        assert!(!listed.allows("http://monitor.example:8003", "127.0.0.1:8003", false));
        // With a login the cookie protects: the consumer's own page under any name.
        assert!(open.allows("https://monitor.example", "monitor.example", true));
        assert!(!open.allows("https://evil.example", "monitor.example", true));
    }

    #[test]
    fn a_bad_origin_setting_is_named() {
        let env = EnvSource::from_pairs([("ALLOWED_ORIGINS", "ftp://x")]);
        let hosts = AllowedHosts::from_env(&env, [127, 0, 0, 1].into()).expect("valid");
        let err = AllowedOrigins::from_env(&env, hosts).expect_err("not http");
        assert!(err.to_string().starts_with("ALLOWED_ORIGINS:"), "{err}");
    }
}
