//! Which web pages may open the WebSocket: the consumer's own, plus `ALLOWED_ORIGINS`. Stops
//! cross-site WebSocket hijacking (another site's script reading the fleet's readings through
//! a visitor's browser). Clients that send no `Origin` (not browsers) are let in.

use shared::settings::{EnvSource, SettingsError};

/// Origins let in besides the consumer's own.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// `ALLOWED_ORIGINS`: comma-separated origins such as `https://dash.example.com`.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
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
        Ok(Self(origins))
    }

    /// True when a page from `origin` may connect to this consumer, reached as `host`.
    pub fn allows(&self, origin: &str, host: &str) -> bool {
        let same_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
        same_host
            || self
                .0
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumers_own_pages_and_listed_origins_are_let_in() {
        let env = EnvSource::from_pairs([(
            "ALLOWED_ORIGINS",
            "https://dash.example.com, http://10.0.0.5:8080",
        )]);
        let origins = AllowedOrigins::from_env(&env).expect("valid");
        assert!(origins.allows("http://127.0.0.1:8003", "127.0.0.1:8003"));
        assert!(origins.allows("https://dash.example.com", "127.0.0.1:8003"));
        assert!(origins.allows("http://10.0.0.5:8080", "127.0.0.1:8003"));
        assert!(!origins.allows("https://evil.example", "127.0.0.1:8003"));
        assert!(!origins.allows("http://127.0.0.1:9999", "127.0.0.1:8003"));
        assert!(!origins.allows("null", "127.0.0.1:8003"));
    }

    #[test]
    fn a_bad_origin_setting_is_named() {
        let env = EnvSource::from_pairs([("ALLOWED_ORIGINS", "ftp://x")]);
        let err = AllowedOrigins::from_env(&env).expect_err("not http");
        assert!(err.to_string().starts_with("ALLOWED_ORIGINS:"), "{err}");
    }
}
