//! `GET|POST /publish`: take a fresh reading, publish it, answer once the broker confirmed.

use crate::broker::{ReadingPublisher, SubmitError, Submitted};
use crate::collector::{CollectError, Collector};
use crate::outbox::{QueueError, WhenFull};
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
    #[error("a valid Authorization: Bearer token is required")]
    Unauthorized,
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl ResponseError for PublishRouteError {
    fn status_code(&self) -> StatusCode {
        match self {
            PublishRouteError::Unauthorized => StatusCode::UNAUTHORIZED,
            PublishRouteError::Submit(SubmitError::NotQueued(..)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            PublishRouteError::Collect(_) | PublishRouteError::Submit(SubmitError::Encode(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let reason = match self {
            PublishRouteError::Unauthorized => {
                let mut response =
                    shared::http::error_body(self.status_code(), "unauthorized", &self.to_string());
                response.headers_mut().insert(
                    actix_web::http::header::WWW_AUTHENTICATE,
                    actix_web::http::header::HeaderValue::from_static("Bearer"),
                );
                return response;
            }
            PublishRouteError::Collect(_) => "collect_failed",
            PublishRouteError::Submit(SubmitError::NotQueued(why, QueueError::Disabled)) => {
                why.reason()
            }
            PublishRouteError::Submit(SubmitError::NotQueued(_, QueueError::Full(_))) => {
                "outbox_full"
            }
            PublishRouteError::Submit(SubmitError::Encode(_)) => "encode",
        };
        shared::http::error_body(self.status_code(), reason, &self.to_string())
    }
}

/// Publishes a reading taken now and shows what was sent.
#[tracing::instrument(name = "publish", skip_all)]
pub async fn publish(
    req: actix_web::HttpRequest,
    token: web::Data<crate::auth::PublishToken>,
    collector: web::Data<Collector>,
    publisher: web::Data<Arc<ReadingPublisher>>,
) -> Result<HttpResponse, PublishRouteError> {
    if !token.allows(&req) {
        return Err(PublishRouteError::Unauthorized);
    }
    let reading = collector.reading().await?;
    let submitted = publisher
        .submit(&reading, WhenFull::Refuse)
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "publish on request failed"))?;
    let published = match submitted {
        Submitted::Published(published) => *published,
        // Accepted, not yet confirmed: it goes out, in order, when the broker is back.
        Submitted::Queued { seq } => {
            return Ok(HttpResponse::Accepted().json(serde_json::json!({
                "status": "queued",
                "seq": seq,
                "waiting": publisher.outbox_len(),
            })))
        }
    };
    // A typed answer, not `json!`: percentages stay f32 and print as sent ("2.74").
    Ok(HttpResponse::Ok().json(PublishAnswer {
        status: "published",
        seq: published.reading.seq,
        host: &published.reading.host,
        bytes: published.bytes,
        reading: &published.reading,
    }))
}
