//! Building and running the consumer: bind, start consuming, serve the page and the socket.

use crate::configuration::Settings;
use crate::hub::{Hub, HubLimits};
use crate::metrics::ConsumerMetrics;
use crate::{broker, routes, ws};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use shared::http::{get, not_found};
use std::net::TcpListener;
use std::sync::Arc;

/// How long sessions get to send their close frames at shutdown.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// A built consumer, bound to its port and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    hub: Arc<Hub>,
    consuming: tokio::task::JoinHandle<()>,
    forgetting: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Binds the HTTP port (0 picks a free one) and starts consuming.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        use anyhow::Context;
        let address = (settings.http.host, settings.http.port);
        let listener = TcpListener::bind(address)
            .with_context(|| format!("cannot listen on {}:{}", address.0, address.1))?;
        let port = listener.local_addr()?.port();
        let limits = HubLimits {
            history_len: settings.history_len,
            max_hosts: settings.max_hosts,
            max_message_bytes: settings.max_message_bytes,
            stale_after: settings.stale_after,
        };
        let hub = Arc::new(Hub::new(limits, ConsumerMetrics::new()?));
        let consuming = tokio::spawn(broker::consume_forever(
            settings.broker.clone(),
            settings.queue.clone(),
            settings.reconnect_cap,
            Arc::clone(&hub),
        ));
        let forgetting = tokio::spawn(forget_silent_hosts(Arc::clone(&hub), settings.host_expiry));
        let server = run(
            listener,
            settings.http.workers,
            Arc::clone(&hub),
            settings.allowed_origins.clone(),
        )?;
        Ok(Self {
            port,
            server,
            hub,
            consuming,
            forgetting,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The hub, so callers can watch what the consumer holds.
    pub fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.hub)
    }

    /// A handle that stops the server (what Ctrl-C and SIGTERM do).
    pub fn stop_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped, or Ctrl-C / SIGTERM: then every browser gets a
    /// close frame (its page reconnects to whichever consumer comes next), the server
    /// stops, and consuming stops.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = self.server;
        let served = tokio::select! {
            served = &mut server => served,
            () = shared::shutdown::signal() => {
                self.hub.close_all();
                // Close frames are small; give the sessions a moment to send them.
                tokio::time::sleep(CLOSE_GRACE).await;
                // The stop command is sent at once; the server future itself carries it out.
                drop(handle.stop(true));
                server.await
            }
        };
        self.hub.close_all();
        self.consuming.abort();
        self.forgetting.abort();
        served
    }
}

/// Hosts silent for longer than `expiry` leave the page's snapshot and the metrics.
async fn forget_silent_hosts(hub: Arc<Hub>, expiry: std::time::Duration) {
    let mut ticks = tokio::time::interval(expiry.min(std::time::Duration::from_secs(60)));
    loop {
        ticks.tick().await;
        let forgotten = hub.forget_silent_hosts(expiry);
        if forgotten > 0 {
            tracing::info!(forgotten, "forgot hosts silent for {}s", expiry.as_secs());
        }
    }
}

fn run(
    listener: TcpListener,
    workers: usize,
    hub: Arc<Hub>,
    origins: crate::origin::AllowedOrigins,
) -> std::io::Result<Server> {
    let hub = web::Data::new(hub);
    let origins = web::Data::new(origins);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                shared::http::limit_body_size,
            ))
            .wrap(tracing_actix_web::TracingLogger::default())
            .app_data(hub.clone())
            .app_data(origins.clone())
            .service(get("/", routes::index))
            .service(get("/assets/{file:.*}", routes::asset))
            .service(get("/ws", ws::ws))
            .service(get("/api/hosts", routes::hosts))
            .service(get("/health", routes::health))
            .service(get("/ready", routes::ready))
            .service(get("/metrics", routes::metrics))
            .default_service(web::to(not_found))
    })
    .workers(workers)
    // Frames are small and must leave at once: no Nagle delay waiting for an ACK.
    .tcp_nodelay(true)
    .listen(listener)?
    // Signals are handled in `run_until_stopped`, so browsers get close frames first.
    .disable_signals()
    .shutdown_timeout(5)
    .run();
    Ok(server)
}
