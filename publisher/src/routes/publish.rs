//! `POST /publish` (and `GET` while no `PUBLISH_TOKEN` is set, as the original allowed): take
//! a fresh reading, publish it, answer once the broker confirmed.

use crate::broker::{Published, ReadingPublisher, SubmitError, Submitted};
use crate::collector::{CollectError, Collector};
use crate::outbox::{QueueError, WhenFull};
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use actix_web::{http::StatusCode, web, HttpResponse, ResponseError};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

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
            PublishRouteError::Unauthorized => return super::unauthorized(&self.to_string()),
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

/// `/publish` with another method than POST while `PUBLISH_TOKEN` is set: 405, `Allow: POST`.
pub async fn post_only() -> HttpResponse {
    let mut response = shared::http::error_body(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "with PUBLISH_TOKEN set, /publish takes POST only",
    );
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("POST"),
    );
    response
}

/// Publishes a reading taken now and shows what was sent.
pub async fn publish(
    req: actix_web::HttpRequest,
    token: web::Data<crate::auth::PublishToken>,
    collector: web::Data<Collector>,
    publisher: web::Data<Arc<ReadingPublisher>>,
) -> Result<HttpResponse, PublishRouteError> {
    if !token.allows(&req) {
        return Err(PublishRouteError::Unauthorized);
    }
    let reading = collector
        .reading()
        .await
        .inspect_err(|e| tracing::error!(error = %e, "no reading to publish"))?;
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
        .body(PublishedAnswer::new(published, &reading.host).map_err(SubmitError::Encode)?))
}

/// `{status, seq, host, bytes, reading}`, where `reading` is the body exactly as the broker
/// took it: sent as it is between the answer's opening and its closing brace, neither parsed
/// and serialised again nor copied into a buffer of its own.
struct PublishedAnswer {
    /// The opening, the reading, the closing brace; each taken once.
    parts: [Option<Bytes>; 3],
    size: u64,
}

impl PublishedAnswer {
    fn new(published: Published, host: &str) -> Result<Self, serde_json::Error> {
        let mut opening = Vec::with_capacity(64 + host.len());
        opening.extend_from_slice(b"{\"status\":\"published\",\"seq\":");
        serde_json::to_writer(&mut opening, &published.seq)?;
        opening.extend_from_slice(b",\"host\":");
        serde_json::to_writer(&mut opening, host)?;
        opening.extend_from_slice(b",\"bytes\":");
        serde_json::to_writer(&mut opening, &published.body.len())?;
        opening.extend_from_slice(b",\"reading\":");
        let closing = Bytes::from_static(b"}");
        let size = (opening.len() + published.body.len() + closing.len()) as u64;
        Ok(Self {
            parts: [
                Some(opening.into()),
                Some(published.body.into()),
                Some(closing),
            ],
            size,
        })
    }
}

impl MessageBody for PublishedAnswer {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.size)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let next = self.get_mut().parts.iter_mut().find_map(Option::take);
        Poll::Ready(next.map(Ok))
    }
}
