//! Building and running the publisher: bind, start the collector and the broker link, serve.

use crate::broker::ReadingPublisher;
use crate::collector::{Collector, CollectorMetrics, CollectorOptions};
use crate::configuration::Settings;
use crate::metrics::PublisherMetrics;
use crate::outbox::Outbox;
use crate::spool::Spool;
use crate::{interval, routes};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use shared::http::{get, method_not_allowed, not_found};
use std::net::TcpListener;
use std::sync::Arc;

/// A built publisher, bound to its port and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    publisher: Arc<ReadingPublisher>,
    shutdown_flush: std::time::Duration,
}

impl Application {
    /// Binds the HTTP port (0 picks a free one), starts sampling and connecting.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        use anyhow::Context;
        let address = (settings.http.host, settings.http.port);
        let listener = TcpListener::bind(address)
            .with_context(|| format!("cannot listen on {}:{}", address.0, address.1))?;
        let port = listener.local_addr()?.port();
        let tls = settings
            .tls
            .as_ref()
            .map(shared::tls::server_config)
            .transpose()?;
        let metrics = PublisherMetrics::new()?;
        let containers = settings.docker_socket.clone().map(|socket| {
            let list = crate::collector::ContainerList::default();
            tokio::spawn(crate::collector::watch_containers(socket, list.clone()));
            list
        });
        let collector = Collector::spawn(
            CollectorOptions {
                host: settings.host_name.clone(),
                process_interval: settings.process_interval,
                process_top_n: settings.process_top_n,
                interfaces: settings.interfaces.clone(),
                containers,
                ..CollectorOptions::default()
            },
            CollectorMetrics {
                timing: metrics.collect_seconds.clone(),
                skipped: metrics.collect_skipped.clone(),
                scan_seconds: metrics.process_scan_seconds.clone(),
                scanned: metrics.process_scan_processes.clone(),
            },
        )?;
        let outbox = match &settings.outbox_dir {
            None => Outbox::new(settings.outbox_capacity),
            Some(dir) => {
                let (spool, loaded) = Spool::open(dir)?;
                let found = loaded.readings.len();
                let (outbox, dropped) = Outbox::on_disk(
                    settings.outbox_capacity,
                    spool,
                    loaded,
                    metrics.outbox_spool_failures.clone(),
                );
                if found > 0 {
                    tracing::info!(found, dropped, dir = %dir.display(), "readings from a previous run wait in the outbox");
                }
                metrics.outbox_dropped.inc_by(dropped as u64);
                outbox
            }
        };
        let publisher = ReadingPublisher::start(
            settings.broker.clone(),
            settings.reconnect_cap,
            settings.confirm_timeout,
            outbox,
            metrics.clone(),
        );
        if !settings.publish_interval.is_zero() {
            tokio::spawn(interval::publish_every(
                settings.publish_interval,
                collector.clone(),
                Arc::clone(&publisher),
            ));
        }
        settings.allowed_hosts.register(&metrics.registry)?;
        if !settings.http.host.is_loopback() && settings.allowed_hosts.names_none() {
            tracing::warn!(
                "listening on {} with ALLOWED_HOSTS empty: requests addressed to an IP address \
                 or localhost are answered, those addressed to a name get 421 until it is \
                 listed in ALLOWED_HOSTS",
                settings.http.host
            );
        }
        let server = run(
            listener,
            settings.http.workers,
            Guards {
                reading: crate::auth::ReadingAccess::new(
                    &settings.publish_token,
                    settings.http.host,
                ),
                token: settings.publish_token.clone(),
                hosts: settings.allowed_hosts.clone(),
            },
            collector,
            Arc::clone(&publisher),
            metrics,
            tls,
        )?;
        Ok(Self {
            port,
            server,
            publisher,
            shutdown_flush: settings.shutdown_flush,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker link, so callers can watch its state.
    pub fn publisher(&self) -> Arc<ReadingPublisher> {
        Arc::clone(&self.publisher)
    }

    /// A handle that stops the server (what Ctrl-C and SIGTERM do).
    pub fn stop_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped, or Ctrl-C / SIGTERM (both the same graceful way:
    /// requests in flight finish), then delivers what waits in the outbox, for at most
    /// `SHUTDOWN_FLUSH_SECS`.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = self.server;
        let served = tokio::select! {
            served = &mut server => served,
            () = shared::shutdown::signal() => {
                // The stop command is sent at once; the server future itself carries it out.
                drop(handle.stop(true));
                server.await
            }
        };
        let waiting = self.publisher.outbox_len();
        if waiting > 0 {
            tracing::info!(waiting, "delivering the outbox before exiting");
            let left = self.publisher.drain(self.shutdown_flush).await;
            if left > 0 {
                tracing::warn!(lost = left, "exiting with readings the broker never took");
            } else {
                tracing::info!("outbox delivered; exiting");
            }
        }
        served
    }
}

/// What decides who is answered: the names, the publish token, the reading's guard.
struct Guards {
    hosts: shared::allowed_hosts::AllowedHosts,
    token: crate::auth::PublishToken,
    reading: crate::auth::ReadingAccess,
}

fn run(
    listener: TcpListener,
    workers: usize,
    guards: Guards,
    collector: Collector,
    publisher: Arc<ReadingPublisher>,
    metrics: PublisherMetrics,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<Server> {
    // With a token, publishing changes nothing a link or an <img> on another site can set off.
    let post_only = guards.token.is_set();
    let token = web::Data::new(guards.token);
    let hosts = web::Data::new(guards.hosts);
    let reading = web::Data::new(guards.reading);
    let collector = web::Data::new(collector);
    let publisher = web::Data::new(publisher);
    let metrics = web::Data::new(metrics);
    let link = publisher.link_home();
    let server = HttpServer::new(move || {
        // Called on each HTTP thread as it starts: the first one also runs the broker link,
        // so that a `/publish` on it never waits for another thread (`link::LinkHome`).
        link.settle_here();
        let publish = web::resource("/publish").route(web::post().to(routes::publish));
        let publish = if post_only {
            publish.default_service(web::to(routes::post_only))
        } else {
            publish
                .route(web::get().to(routes::publish))
                .default_service(web::to(method_not_allowed))
        };
        App::new()
            .wrap(actix_web::middleware::from_fn(
                shared::http::limit_body_size,
            ))
            // Outermost: a request for a name this publisher does not answer to gets nothing else.
            .wrap(actix_web::middleware::from_fn(
                shared::allowed_hosts::check_host,
            ))
            .app_data(collector.clone())
            .app_data(publisher.clone())
            .app_data(metrics.clone())
            .app_data(token.clone())
            .app_data(hosts.clone())
            .app_data(reading.clone())
            .service(publish)
            .service(get("/", routes::index))
            .service(get("/api/reading", routes::current_reading))
            .service(get("/health", routes::health))
            .service(get("/ready", routes::ready))
            .service(get("/metrics", routes::metrics))
            .default_service(web::to(not_found))
    })
    .workers(workers)
    // Answers are small and must leave at once: no Nagle delay waiting for an ACK.
    .tcp_nodelay(true);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    }
    // actix would stop at once on Ctrl-C ("forced shutdown"); `run_until_stopped` handles
    // both signals the same graceful way instead.
    .disable_signals()
    .run();
    Ok(server)
}
