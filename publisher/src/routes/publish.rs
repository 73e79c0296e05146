//! `GET|POST /publish`: take a fresh reading, publish it, answer once the broker confirmed.

use crate::broker::{Published, ReadingPublisher, SubmitError, Submitted};
use crate::collector::{CollectError, Collector};
use crate::outbox::{QueueError, WhenFull};
use actix_web::{http::StatusCode, web, HttpResponse, ResponseError};
use std::sync::Arc;

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
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(published_answer(&published, &reading.host).map_err(SubmitError::Encode)?))
}

/// `{status, seq, host, bytes, reading}`, where `reading` is the body exactly as the broker
/// took it, spliced in rather than parsed and serialized again.
fn published_answer(published: &Published, host: &str) -> Result<Vec<u8>, serde_json::Error> {
    let mut answer = Vec::with_capacity(published.body.len() + 128);
    answer.extend_from_slice(b"{\"status\":\"published\",\"seq\":");
    serde_json::to_writer(&mut answer, &published.seq)?;
    answer.extend_from_slice(b",\"host\":");
    serde_json::to_writer(&mut answer, host)?;
    answer.extend_from_slice(b",\"bytes\":");
    serde_json::to_writer(&mut answer, &published.body.len())?;
    answer.extend_from_slice(b",\"reading\":");
    answer.extend_from_slice(&published.body);
    answer.push(b'}');
    Ok(answer)
}
