//! `PUBLISH_TOKEN`: when set, `/publish` needs `Authorization: Bearer <token>`.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// The token `/publish` requires, if any; `Debug` never shows it.
#[derive(Clone, Default)]
pub struct PublishToken(Option<SecretString>);

impl std::fmt::Debug for PublishToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "PublishToken(set)"
        } else {
            "PublishToken(none)"
        })
    }
}

impl PublishToken {
    /// `None` lets every request publish.
    pub fn new(token: Option<String>) -> Self {
        Self(token.map(SecretString::from))
    }

    /// True when a token is required.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// True when no token is set, or the request carries it. The comparison takes the same
    /// time wherever the first wrong byte is, so the token cannot be guessed byte by byte.
    pub fn allows(&self, req: &HttpRequest) -> bool {
        let Some(expected) = &self.0 else {
            return true;
        };
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes()))
    }
}
