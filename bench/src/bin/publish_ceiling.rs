//! The least a `/publish` can be on the publisher's own parts: actix-web answering, the
//! publisher's AMQP link (`publisher::link`, on amqprs) publishing with confirms, nothing else — no sampling (the body is a fixed reading), no
//! outbox, no metrics, no timeout, no authorization check. `throughput` runs it beside the
//! publisher, so each run says how far the service is from what its parts allow on this
//! machine.
//!
//! Serves `GET /ready`, `GET /api/reading` (the body) and `GET /publish` (publishes the body,
//! answers `{status, seq, host, bytes, reading}` once confirmed, 503 when nacked) on
//! `127.0.0.1:APP_PORT`, to `EXCHANGE_NAME` at `AMQP_URL`, with the publisher's worker count
//! and its link on the first HTTP thread, as in the publisher; the body is read from
//! `READING_FILE`.

use actix_web::{web, App, HttpResponse, HttpServer};
use publisher::link::{Confirmed, Link, PublishChannel};
use shared::reading::Reading;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What every `/publish` sends.
struct Message {
    /// The link's channel while connected.
    channel: tokio::sync::watch::Receiver<Option<Arc<PublishChannel>>>,
    exchange: String,
    body: Vec<u8>,
    /// The body, read: for the message's properties and the answer's `host`.
    reading: Reading,
    seq: AtomicU64,
}

fn setting(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

async fn publish(message: web::Data<Message>) -> HttpResponse {
    let Some(channel) = message.channel.borrow().clone() else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let seq = message.seq.fetch_add(1, Ordering::Relaxed);
    let properties = publisher::broker::reading_properties(&message.reading, seq);
    let confirmed = channel
        .publish(&message.exchange, message.body.clone(), properties, false)
        .await;
    if !matches!(confirmed, Ok(Confirmed::Ack)) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let mut answer = Vec::with_capacity(message.body.len() + 96);
    answer.extend_from_slice(b"{\"status\":\"published\",\"seq\":");
    answer.extend_from_slice(seq.to_string().as_bytes());
    answer.extend_from_slice(b",\"host\":");
    answer.extend_from_slice(&serde_json::to_vec(&message.reading.host).unwrap_or_default());
    answer.extend_from_slice(format!(",\"bytes\":{},\"reading\":", message.body.len()).as_bytes());
    answer.extend_from_slice(&message.body);
    answer.push(b'}');
    HttpResponse::Ok()
        .content_type("application/json")
        .body(answer)
}

/// 200 once the link has a channel.
async fn ready(message: web::Data<Message>) -> HttpResponse {
    if message.channel.borrow().is_some() {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::ServiceUnavailable().finish()
    }
}

async fn the_reading(message: web::Data<Message>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(message.body.clone())
}

async fn serve() -> Result<(), String> {
    let port: u16 = setting("APP_PORT")?
        .parse()
        .map_err(|e| format!("APP_PORT: {e}"))?;
    let exchange = setting("EXCHANGE_NAME")?;
    let file = setting("READING_FILE")?;
    let body = std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
    let reading = serde_json::from_slice::<Reading>(&body)
        .map_err(|e| format!("{file}: not a reading: {e}"))?;
    let env = shared::settings::EnvSource::from_pairs([
        ("AMQP_URL", setting("AMQP_URL")?),
        ("EXCHANGE_NAME", exchange.clone()),
    ]);
    let broker = shared::settings::BrokerSettings::from_env(&env).map_err(|e| e.to_string())?;
    let link = Link::new(
        broker,
        publisher::broker::APP_ID,
        std::time::Duration::from_secs(5),
    );
    let (channel, home) = (link.channel, link.home);
    let message = web::Data::new(Message {
        channel,
        exchange,
        body,
        reading,
        seq: AtomicU64::new(0),
    });
    HttpServer::new(move || {
        // As the publisher does: the link runs on the (first) HTTP thread.
        home.settle_here();
        App::new()
            .app_data(message.clone())
            .route("/ready", web::get().to(ready))
            .route("/api/reading", web::get().to(the_reading))
            .route("/publish", web::get().to(publish))
    })
    .workers(publisher::configuration::default_http_workers())
    .bind(("127.0.0.1", port))
    .map_err(|e| format!("port {port}: {e}"))?
    .run()
    .await
    .map_err(|e| e.to_string())
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("publish_ceiling: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
