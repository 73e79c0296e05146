//! The WebSocket session: a snapshot on connect, then every frame from the live view, with a
//! heartbeat. A client that is gone, silent or too slow is dropped without slowing the rest.
//! Close codes follow RFC 6455: 1009 for a frame over the limit, 1007 for text that is not
//! UTF-8, and a client's own close code echoed back.

use crate::live::{LiveView, Push};
use crate::metrics::ConsumerMetrics;
use crate::web::auth::SessionEnd;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, ProtocolError};
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
    live: web::Data<Arc<LiveView>>,
    metrics: web::Data<ConsumerMetrics>,
    origins: web::Data<crate::web::origin::AllowedOrigins>,
) -> actix_web::Result<HttpResponse> {
    if let Some(origin) = req.headers().get(actix_web::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = shared::allowed_hosts::request_host(req.head()).unwrap_or_default();
        let login = req
            .app_data::<web::Data<crate::web::auth::Guard>>()
            .is_some_and(|guard| guard.login_required());
        if !origins.allows(origin, &host, login) {
            tracing::warn!(origin, "refused a WebSocket from another site");
            return Ok(shared::http::error_body(
                actix_web::http::StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this page's origin may not open the dashboard socket; see ALLOWED_ORIGINS and \
                 ALLOWED_HOSTS",
            ));
        }
    }
    let login = actix_web::HttpMessage::extensions(&req)
        .get::<SessionEnd>()
        .cloned();
    let (response, session, messages) = actix_ws::handle(&req, body)?;
    let live = Arc::clone(&live);
    let metrics = metrics.get_ref().clone();
    actix_web::rt::spawn(async move {
        let end = run_session(session.clone(), messages, &live, &metrics, login).await;
        if let Some(label) = end.dropped {
            tracing::debug!(reason = label, "closing a WebSocket client");
            metrics.ws_dropped.with_label_values(&[label]).inc();
        }
        if end.send_close {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.close(end.close)).await;
        }
    });
    Ok(response)
}

/// How a session ended.
struct End {
    /// The close frame to send, if one is due.
    close: Option<CloseReason>,
    /// False when the connection is already gone: nothing can be sent.
    send_close: bool,
    /// Set when the server dropped the client: the label it is counted under.
    dropped: Option<&'static str>,
}

impl End {
    /// The server closes the client, counted under `label`.
    fn dropped(code: CloseCode, description: &str, label: &'static str) -> Self {
        Self {
            close: Some(close(code, description)),
            send_close: true,
            dropped: Some(label),
        }
    }

    /// The client left, or its connection is gone: not a drop.
    fn left(close: Option<CloseReason>, send_close: bool) -> Self {
        Self {
            close,
            send_close,
            dropped: None,
        }
    }
}

/// Runs one client until it leaves or must be dropped.
async fn run_session(
    mut session: actix_ws::Session,
    messages: actix_ws::MessageStream,
    live: &LiveView,
    metrics: &ConsumerMetrics,
    mut login: Option<SessionEnd>,
) -> End {
    let (snapshot, mut pushes) = live.subscribe();
    if live.is_closing() {
        return End::dropped(CloseCode::Restart, "server shutting down", "shutdown");
    }
    let sent = &metrics.ws_frames_sent;
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
                Err(RecvError::Lagged(_)) => return End::dropped(CloseCode::Again, "too slow: fell behind", "lagged"),
                Ok(Push::Close) | Err(RecvError::Closed) => return End::dropped(CloseCode::Restart, "server shutting down", "shutdown"),
            },
            // Its login expired or logged out (1008: policy violation; see crate::web::auth).
            () = crate::web::auth::ended(&mut login) => return End::dropped(CloseCode::Policy, "session ended", "session_ended"),
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > CLIENT_TIMEOUT {
                    return End::dropped(CloseCode::Away, "no answer to pings", "heartbeat_timeout");
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
                // A polite close: answer with the client's own code (RFC 6455, 5.5.1).
                Some(Ok(Message::Close(reason))) => {
                    let echo = reason.map(|r| CloseReason { code: r.code, description: None });
                    return End::left(echo, true);
                }
                None => return End::left(None, false),
                Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Continuation(_))) => {
                    return End::dropped(CloseCode::Unsupported, "this socket only sends", "client_sent_data");
                }
                Some(Ok(Message::Nop)) => {}
                Some(Err(ProtocolError::Overflow)) => {
                    return End::dropped(CloseCode::Size, "frame too large", "frame_too_large");
                }
                Some(Err(ProtocolError::Io(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return End::dropped(CloseCode::Invalid, "text is not UTF-8", "invalid_utf8");
                }
                // The connection broke or was aborted: the client went away, nothing to send.
                Some(Err(ProtocolError::Io(e))) => {
                    tracing::debug!(error = %e, "a WebSocket client went away");
                    return End::left(None, false);
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket protocol error");
                    return End::dropped(CloseCode::Protocol, "protocol error", "protocol_error");
                }
            },
        }
    }
}

/// Runs one send to a client, bounded by [`SEND_TIMEOUT`]. `Err` is how the session ends:
/// quietly when the connection is already gone, a "too slow" close when the client stopped
/// reading.
async fn send_within_timeout(
    send: impl std::future::Future<Output = Result<(), actix_ws::Closed>>,
) -> Result<(), End> {
    match tokio::time::timeout(SEND_TIMEOUT, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(actix_ws::Closed)) => Err(End::left(None, false)),
        Err(_) => Err(End::dropped(
            CloseCode::Policy,
            "too slow: stopped reading",
            "send_timeout",
        )),
    }
}

fn close(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}
