//! The WebSocket session: a snapshot on connect, then every frame from the hub, with a
//! heartbeat. A client that is gone, silent or too slow is dropped without slowing the rest.

use crate::hub::{Hub, Push};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// How often the server pings each client.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// A client that has not answered (pong or anything) for this long is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// A send that cannot be queued within this long means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Closing politely is not worth waiting for longer than this.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Browsers send nothing but control frames; anything bigger is abuse.
const MAX_CLIENT_FRAME: usize = 4096;

/// `GET /ws`: upgrades and hands the connection to its own task.
pub async fn ws(
    req: HttpRequest,
    body: web::Payload,
    hub: web::Data<Arc<Hub>>,
    origins: web::Data<crate::origin::AllowedOrigins>,
) -> actix_web::Result<HttpResponse> {
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origins.allows(origin, req.connection_info().host()) {
            tracing::warn!(origin, "refused a WebSocket from another site");
            return Ok(shared::http::error_body(
                actix_web::http::StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this page's origin may not open the dashboard socket; see ALLOWED_ORIGINS",
            ));
        }
    }
    let (response, session, messages) = actix_ws::handle(&req, body)?;
    let hub = Arc::clone(&hub);
    actix_web::rt::spawn(async move {
        let reason = run_session(session.clone(), messages, &hub).await;
        if let Some(reason) = &reason {
            tracing::debug!(?reason, "closing a WebSocket client");
            hub.metrics()
                .ws_dropped
                .with_label_values(&[drop_label(reason)])
                .inc();
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.close(reason)).await;
    });
    Ok(response)
}

/// Runs one client until it leaves or must be dropped; returns the close reason to send.
async fn run_session(
    mut session: actix_ws::Session,
    messages: actix_ws::MessageStream,
    hub: &Hub,
) -> Option<CloseReason> {
    let (snapshot, mut pushes) = hub.subscribe();
    if hub.is_closing() {
        return Some(close(CloseCode::Restart, "server shutting down"));
    }
    let sent = &hub.metrics().ws_frames_sent;
    if let Err(end) = send_within_timeout(session.text(snapshot)).await {
        return end;
    }
    sent.inc();
    let mut messages = messages.max_frame_size(MAX_CLIENT_FRAME);
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            // The hot path first: with thousands of sessions, each reading wakes them all.
            biased;
            push = pushes.recv() => match push {
                Ok(Push::Frame(frame)) => {
                    if let Err(end) = send_within_timeout(session.text(frame)).await {
                        return end;
                    }
                    sent.inc();
                }
                // It missed frames; a reconnect gives it a fresh, complete snapshot.
                Err(RecvError::Lagged(_)) => return Some(close(CloseCode::Again, "too slow: fell behind")),
                Ok(Push::Close) | Err(RecvError::Closed) => return Some(close(CloseCode::Restart, "server shutting down")),
            },
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > CLIENT_TIMEOUT {
                    return Some(close(CloseCode::Away, "no answer to pings"));
                }
                if let Err(end) = send_within_timeout(session.ping(b"")).await {
                    return end;
                }
            }
            message = messages.next() => match message {
                Some(Ok(Message::Pong(_))) => last_heard = Instant::now(),
                Some(Ok(Message::Ping(bytes))) => {
                    last_heard = Instant::now();
                    if let Err(end) = send_within_timeout(session.pong(&bytes)).await {
                        return end;
                    }
                }
                Some(Ok(Message::Close(_))) | None => return None,
                Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Continuation(_))) => {
                    return Some(close(CloseCode::Unsupported, "this socket only sends"));
                }
                Some(Ok(Message::Nop)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket protocol error");
                    return Some(close(CloseCode::Protocol, "protocol error"));
                }
            },
        }
    }
}

/// Runs one send to a client, bounded by [`SEND_TIMEOUT`]. `Err` is how the session ends:
/// `None` when the connection is already gone, a "too slow" close when the client stopped
/// reading.
async fn send_within_timeout(
    send: impl std::future::Future<Output = Result<(), actix_ws::Closed>>,
) -> Result<(), Option<CloseReason>> {
    match tokio::time::timeout(SEND_TIMEOUT, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(actix_ws::Closed)) => Err(None),
        Err(_) => Err(Some(close(CloseCode::Policy, "too slow: stopped reading"))),
    }
}

/// The metric label for why the server closed a client.
fn drop_label(reason: &CloseReason) -> &'static str {
    match reason.code {
        CloseCode::Policy => "send_timeout",
        CloseCode::Again => "lagged",
        CloseCode::Away => "heartbeat_timeout",
        CloseCode::Unsupported => "client_sent_data",
        CloseCode::Protocol => "protocol_error",
        CloseCode::Restart => "shutdown",
        _ => "other",
    }
}

fn close(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}
