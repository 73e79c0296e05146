//! `GET|POST /publish`: take a fresh reading, publish it, answer once the broker confirmed.

use crate::broker::{PublishError, ReadingPublisher};
use crate::collector::{CollectError, Collector};
use actix_web::{http::StatusCode, web, HttpResponse, ResponseError};
use serde::Serialize;
use shared::reading::Reading;
use std::sync::Arc;

/// The answer to a confirmed publish.
#[derive(Serialize)]
struct PublishAnswer<'a> {
    status: &'static str,
    seq: u64,
    host: &'a str,
    bytes: usize,
    reading: &'a Reading,
}

/// Why `/publish` could not publish.
#[derive(Debug, thiserror::Error)]
pub enum PublishRouteError {
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl ResponseError for PublishRouteError {
    fn status_code(&self) -> StatusCode {
        match self {
            PublishRouteError::Collect(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PublishRouteError::Publish(PublishError::NotConnected) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            PublishRouteError::Publish(PublishError::ConfirmTimeout(_)) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            PublishRouteError::Publish(PublishError::Encode(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            PublishRouteError::Publish(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let reason = match self {
            PublishRouteError::Collect(_) => "collect_failed",
            PublishRouteError::Publish(e) => e.reason(),
        };
        shared::http::error_body(self.status_code(), reason, &self.to_string())
    }
}

/// Publishes a reading taken now and shows what was sent.
#[tracing::instrument(name = "publish", skip_all)]
pub async fn publish(
    collector: web::Data<Collector>,
    publisher: web::Data<Arc<ReadingPublisher>>,
) -> Result<HttpResponse, PublishRouteError> {
    let reading = collector.reading().await?;
    let published = publisher.publish(&reading).await.inspect_err(|e| {
        tracing::warn!(error = %e, "publish on request failed");
    })?;
    // A typed answer, not `json!`: percentages stay f32 and print as sent ("2.74").
    Ok(HttpResponse::Ok().json(PublishAnswer {
        status: "published",
        seq: published.reading.seq,
        host: &published.reading.host,
        bytes: published.bytes,
        reading: &published.reading,
    }))
}
