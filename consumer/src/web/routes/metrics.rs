//! `GET /metrics`: the consumer's registry in Prometheus' text format. The fleet's gauges are
//! read from the live view by their collector as the registry is gathered. With a login on a
//! non-loopback address, it needs `METRICS_TOKEN` unless `METRICS_PUBLIC=true` (checked at
//! start-up by [`check_metrics_exposure`]; the token itself is checked by the auth middleware).

use crate::live::LiveView;
use crate::metrics::ConsumerMetrics;
use actix_web::{web, HttpResponse};
use shared::broker::BrokerState;
use shared::settings::SettingsError;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Prometheus metrics: the pipeline's, and every host's latest reading.
pub async fn metrics(
    live: web::Data<Arc<LiveView>>,
    broker: web::Data<watch::Receiver<BrokerState>>,
    metrics: web::Data<ConsumerMetrics>,
) -> HttpResponse {
    metrics
        .broker_connected
        .set(i64::from(broker.borrow().connected));
    metrics.ws_clients.set(live.client_count() as i64);
    shared::metrics::render(&metrics.registry)
}

/// Refuses to serve `/metrics` openly beside a login on an address other machines reach: it
/// names every host, mount, interface, sensor and alert, which the login is there to guard.
pub fn check_metrics_exposure(
    host: IpAddr,
    login: bool,
    token: bool,
    public: bool,
) -> Result<(), SettingsError> {
    if host.is_loopback() || !login || token || public {
        return Ok(());
    }
    Err(SettingsError::invalid(
        "APP_HOST",
        format!(
            "{host} is reachable from other machines and the dashboard needs a login, but \
             /metrics has no token: set METRICS_TOKEN (Prometheus sends it as \
             authorization: credentials) to guard it, or METRICS_PUBLIC=true to let anyone who \
             can reach this port read it"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_metrics_route_beside_a_login_is_refused_beyond_loopback_unless_told() {
        let exposed = IpAddr::from([0, 0, 0, 0]);
        let err = check_metrics_exposure(exposed, true, false, false).expect_err("refused");
        let line = err.to_string();
        assert!(
            line.contains("METRICS_TOKEN") && line.contains("METRICS_PUBLIC=true"),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1);
        assert!(check_metrics_exposure(exposed, true, true, false).is_ok());
        assert!(check_metrics_exposure(exposed, true, false, true).is_ok());
        assert!(
            check_metrics_exposure(exposed, false, false, false).is_ok(),
            "no login"
        );
        let loopback = IpAddr::from([127, 0, 0, 1]);
        assert!(check_metrics_exposure(loopback, true, false, false).is_ok());
    }
}
