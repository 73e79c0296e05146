//! `PUBLISH_TOKEN`: when set, `/publish` needs `Authorization: Bearer <token>`, and so does
//! `/api/reading` when the publisher listens beyond loopback (what it shows — processes and
//! their users, mounts, the kernel — is for the token's holders then).

use actix_web::HttpRequest;
use secrecy::{ExposeSecret, SecretString};

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

    /// True when no token is set, or the request carries it. Compared as SHA-256 hashes in
    /// constant time ([`shared::http::same_secret`]): neither the first wrong byte nor the
    /// token's length shows in the time taken.
    pub fn allows(&self, req: &HttpRequest) -> bool {
        let Some(expected) = &self.0 else {
            return true;
        };
        let given = shared::http::bearer(req).unwrap_or("");
        shared::http::same_secret(given, expected.expose_secret())
    }
}

/// What `/api/reading` requires: nothing, or the publish token (beyond loopback).
#[derive(Debug, Clone)]
pub struct ReadingAccess(pub Option<PublishToken>);

impl ReadingAccess {
    /// The token guards the reading when the publisher listens beyond loopback.
    pub fn new(token: &PublishToken, listen: std::net::IpAddr) -> Self {
        Self((token.is_set() && !listen.is_loopback()).then(|| token.clone()))
    }

    /// True when the request may read the current reading.
    pub fn allows(&self, req: &HttpRequest) -> bool {
        self.0.as_ref().is_none_or(|token| token.allows(req))
    }
}
