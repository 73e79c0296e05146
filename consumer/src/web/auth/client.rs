//! Who sent a request: the connecting peer, unless the peer is a proxy listed in
//! `TRUSTED_PROXIES`; then the address that proxy wrote into `X-Forwarded-For`. Anyone can
//! send that header, so it counts only from a proxy the user named: for the login brake, the
//! "failed login" lines and the request lines alike (actix's `realip_remote_addr` believes it
//! from anyone, so the request span is built here, not by `tracing-actix-web`'s default).

use super::Guard;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName};
use actix_web::{web, HttpMessage};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`: addresses or networks,
/// comma-separated, such as `127.0.0.1, 10.0.0.0/8, ::1`); empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses the setting's value; the error names the entry that is neither.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{entry:?} is neither an address nor a network such as 10.0.0.0/8")
                })?;
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }

    /// True when `address` is one of the trusted proxies.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The client's address: `peer` itself, or, when `peer` is trusted, the right-most
    /// `X-Forwarded-For` entry that is not a trusted proxy (entries further left were written
    /// by the client and prove nothing). An entry that is not an address stops the walk.
    pub fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        if !self.contains(peer) {
            return peer;
        }
        let entries: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for entry in entries.into_iter().rev() {
            let Some(address) = parse_hop(entry) else {
                break;
            };
            client = address;
            if !self.contains(address) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port (`[::1]:80`, `10.0.0.1:80`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|a| a.to_canonical())
}

/// The span every request's log lines are in, with the client address as [`TrustedProxies`]
/// decides it (and without the client's own `User-Agent` and `Host`, which it may forge).
pub struct ClientSpan;

impl RootSpanBuilder for ClientSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let client = match request.app_data::<web::Data<Guard>>() {
            Some(guard) => guard
                .trusted_proxies
                .client(request.peer_addr(), request.headers()),
            None => TrustedProxies::default().client(request.peer_addr(), request.headers()),
        };
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %request.match_pattern().unwrap_or_else(|| "default".into()),
            http.target = %request.uri().path(),
            http.client_ip = %client,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in forwarded {
            map.append(
                X_FORWARDED_FOR,
                HeaderValue::from_str(value).expect("header"),
            );
        }
        map
    }

    fn peer(address: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(address.parse().expect("address"), 40000))
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let forged = headers(&["203.0.113.9"]);
        let none = TrustedProxies::default();
        assert!(none.is_empty());
        assert_eq!(
            none.client(peer("198.51.100.1"), &forged),
            peer("198.51.100.1").map(|p| p.ip()).expect("ip")
        );

        let proxies = TrustedProxies::parse(" 10.0.0.0/8, ::1 ,192.168.1.5").expect("valid");
        let via_proxy: IpAddr = proxies.client(peer("10.1.2.3"), &forged);
        assert_eq!(via_proxy, "203.0.113.9".parse::<IpAddr>().expect("ip"));
        assert_eq!(
            proxies.client(peer("198.51.100.1"), &forged),
            "198.51.100.1".parse::<IpAddr>().expect("ip"),
            "not a trusted peer: its header is ignored"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        // The client forged the first entry; the outer proxy added the real one, then a second
        // proxy of ours added the first proxy.
        let chain = headers(&["1.1.1.1, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(
            proxies.client(peer("10.0.0.8"), &chain),
            "203.0.113.9".parse::<IpAddr>().expect("ip")
        );
        let with_port = headers(&["[2001:db8::1]:443"]);
        assert_eq!(
            proxies.client(peer("10.0.0.8"), &with_port),
            "2001:db8::1".parse::<IpAddr>().expect("ip")
        );
        let garbage = headers(&["not-an-address"]);
        assert_eq!(
            proxies.client(peer("10.0.0.8"), &garbage),
            "10.0.0.8".parse::<IpAddr>().expect("ip")
        );
        let mapped = proxies.client(peer("::ffff:10.0.0.8"), &headers(&["192.0.2.1"]));
        assert_eq!(mapped, "192.0.2.1".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn a_bad_entry_is_named() {
        let err = TrustedProxies::parse("10.0.0.1, proxy.local").expect_err("a name");
        assert!(err.contains("\"proxy.local\""), "{err}");
    }
}
