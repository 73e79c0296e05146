//! `GET /metrics`: the consumer's registry in Prometheus' text format. The fleet's gauges are
//! read from the live view by their collector as the registry is gathered.

use crate::live::LiveView;
use crate::metrics::ConsumerMetrics;
use actix_web::{web, HttpResponse};
use shared::broker::BrokerState;
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
