//! Building and running the consumer: the path every reading follows, then the HTTP server.
//!
//! ```text
//! live queue    ─▶ intake ─▶ LiveSink   ─▶ live view ─▶ /ws, /api/hosts, fleet gauges
//! history queue ─▶ intake ─▶ StoreSink  ─▶ store     ─▶ /api/hosts/{host}/history
//! alerts queue  ─▶ intake ─▶ AlertSink  ─▶ engine    ─▶ notifications, hostpulse.alerts
//! hostpulse.alerts ─▶ AlertView ─▶ /api/alerts, the page, hostpulse_alert_active
//! ```
//! Every queue is consumed the same way by [`queue::consume_forever`]; the intake parses each
//! message once for all three.

use crate::alerts::evaluator::Evaluator;
use crate::alerts::notify::Notifier;
use crate::alerts::view::{self, AlertCollector, AlertView};
use crate::clock::{SharedClock, SystemClock};
use crate::configuration::Settings;
use crate::history::recorder::{History, Recorder};
use crate::history::store::HistoryTarget;
use crate::intake::parse::IngestLimits;
use crate::intake::queue::{self, Source};
use crate::intake::Intake;
use crate::live::LiveSink;
use crate::live::{LiveLimits, LiveView};
use crate::metrics::fleet::FleetCollector;
use crate::metrics::history::HistoryMetrics;
use crate::metrics::ConsumerMetrics;
use crate::web::{routes, ws};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use shared::broker::BrokerState;
use shared::broker::{QueueKind, QueueSpec};
use shared::http::{get, not_found};
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long sessions get to send their close frames at shutdown.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(300);
/// How long shutdown waits for the history store's queries under way before it exits anyway.
const STORE_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A built consumer, bound to its port and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    live: Arc<LiveView>,
    metrics: ConsumerMetrics,
    broker: watch::Receiver<BrokerState>,
    history: Arc<History>,
    /// API tokens: their last uses are written once more at shutdown.
    tokens: Arc<dyn crate::web::auth::TokenStore>,
    tasks: Vec<JoinHandle<()>>,
}

impl Application {
    /// Binds the HTTP port (0 picks a free one) and starts consuming.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Like [`Self::build`], with the clock the consumer reads time from (tests drive it).
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
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
        let metrics = ConsumerMetrics::new()?;
        let (broker_tx, broker) = watch::channel(BrokerState::connecting());
        let live = Arc::new(LiveView::new(
            LiveLimits {
                history_len: settings.history_len,
                max_hosts: settings.max_hosts,
                stale_after: settings.stale_after,
            },
            Arc::clone(&clock),
            broker.clone(),
        ));
        metrics
            .registry
            .register(Box::new(FleetCollector::new(Arc::clone(&live))?))?;
        let intake = Intake::new(
            IngestLimits {
                max_message_bytes: settings.max_message_bytes,
            },
            clock,
            metrics.clone(),
        );
        let live_queue = Source {
            settings: settings.broker.clone(),
            queue: settings.queue.clone(),
            reconnect_cap: settings.reconnect_cap,
            depth: None,
        };
        let (history_queue_tx, history_queue) = watch::channel(BrokerState::connecting());
        let history = Arc::new(History::new(
            !matches!(settings.history.target, HistoryTarget::Off),
            settings.history.redacted.clone(),
            history_queue,
        ));
        let tokens = token_store(&settings, &history, intake.clock());
        let guard = web::Data::new(crate::web::auth::Guard::new(
            &settings.auth,
            Arc::clone(&tokens),
            Arc::clone(intake.clock()),
            tls.is_some(),
            &metrics.registry,
        )?);
        settings.allowed_hosts.register(&metrics.registry)?;
        let check_hosts = !guard.login_required();
        if check_hosts && !settings.http.host.is_loopback() && settings.allowed_hosts.names_none() {
            tracing::warn!(
                "listening on {} with ALLOWED_HOSTS empty: requests addressed to an IP address \
                 or localhost are answered, those addressed to a name get 421 until it is \
                 listed in ALLOWED_HOSTS",
                settings.http.host
            );
        }
        let history_metrics = HistoryMetrics::new(&metrics.registry)?;
        let recorder = Recorder {
            settings: settings.history.clone(),
            queue: settings.history_queue.clone(),
            broker: settings.broker.clone(),
            reconnect_cap: settings.reconnect_cap,
            intake: intake.queue(false)?,
            live: Arc::clone(&live),
            history: Arc::clone(&history),
            metrics: history_metrics,
            status: history_queue_tx,
        };
        let clock = Arc::clone(intake.clock());
        let mut tasks = vec![
            tokio::spawn(crate::web::auth::expire_sessions(guard.clone())),
            tokio::spawn(crate::web::auth::tokens::write_uses_forever(Arc::clone(
                &tokens,
            ))),
            tokio::spawn(queue::consume_forever(
                live_queue,
                broker_tx,
                intake.queue(true)?,
                LiveSink(Arc::clone(&live)),
            )),
            tokio::spawn(tell_browsers_the_broker_state(
                broker.clone(),
                Arc::clone(&live),
            )),
            tokio::spawn(live_upkeep(Arc::clone(&live), settings.host_expiry)),
        ];
        if history.state().enabled {
            tasks.push(tokio::spawn(recorder.record_forever()));
        }
        let alerts = Arc::new(AlertView::new(Arc::clone(&live)));
        {
            let view = Arc::clone(&alerts);
            live.add_snapshot_part(("alerts", Box::new(move || view.json().to_string())));
        }
        metrics
            .registry
            .register(Box::new(AlertCollector::new(Arc::clone(&alerts))?))?;
        tasks.push(tokio::spawn(view::watch_alerts(
            settings.broker.clone(),
            settings.reconnect_cap,
            Arc::clone(&alerts),
        )));
        if settings.evaluate_alerts {
            tasks.extend(start_evaluator(
                &settings,
                &history,
                &intake,
                &metrics,
                &live,
                Arc::clone(&alerts),
            )?);
        } else {
            tracing::info!("ALERTS=off: this consumer does not evaluate alert rules");
        }
        let server = run(
            (listener, tls),
            settings.http.workers,
            Parts {
                live: Arc::clone(&live),
                metrics: metrics.clone(),
                broker: broker.clone(),
                origins: settings.allowed_origins.clone(),
                hosts: settings.allowed_hosts.clone(),
                check_hosts,
                guard,
                history: Arc::clone(&history),
                clock,
                alerts,
            },
        )?;
        Ok(Self {
            port,
            server,
            live,
            metrics,
            broker,
            history,
            tokens,
            tasks,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The live view, so callers can watch what the consumer holds.
    pub fn live(&self) -> Arc<LiveView> {
        Arc::clone(&self.live)
    }

    /// The consumer's metrics.
    pub fn metrics(&self) -> ConsumerMetrics {
        self.metrics.clone()
    }

    /// The live queue's connection state.
    pub fn broker(&self) -> watch::Receiver<BrokerState> {
        self.broker.clone()
    }

    /// The history: the store once open, and its state.
    pub fn history(&self) -> Arc<History> {
        Arc::clone(&self.history)
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
                self.live.close_all();
                // Close frames are small; give the sessions a moment to send them.
                tokio::time::sleep(CLOSE_GRACE).await;
                // The stop command is sent at once; the server future itself carries it out.
                drop(handle.stop(true));
                server.await
            }
        };
        self.live.close_all();
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            // Cancelled: its connections to the store go back to the pool.
            let _ = task.await;
        }
        // The last batch of API tokens' last uses, before the store closes; bounded likewise.
        match tokio::time::timeout(STORE_CLOSE_WAIT, self.tokens.write_uses()).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write when API tokens were last used"),
            Err(_) => {
                tracing::warn!("the store took too long to note when API tokens were last used")
            }
            Ok(Ok(_)) => {}
        }
        // Closing the pool closes SQLite's connections: the last one folds the write-ahead
        // log into the database and removes the `-wal` file.
        if let Some(store) = self.history.store() {
            // Bounded: a query stuck on a store that went away must not hold up the exit.
            let _ = tokio::time::timeout(STORE_CLOSE_WAIT, store.close()).await;
        }
        served
    }
}

/// The evaluator (when this consumer may be the fleet's): its notifier, the task that ticks
/// while it is the active one, and the task that consumes the alerts queue.
fn start_evaluator(
    settings: &Settings,
    history: &Arc<History>,
    intake: &Arc<Intake>,
    metrics: &ConsumerMetrics,
    live: &Arc<LiveView>,
    view: Arc<AlertView>,
) -> anyhow::Result<[JoinHandle<()>; 2]> {
    let notifier = if settings.notify.any_channel() {
        Some(Notifier::start(settings.notify.clone(), &metrics.registry)?)
    } else {
        None
    };
    let (alert_status_tx, alert_status) = watch::channel(BrokerState::connecting());
    let (alert_sink, ticking) = Evaluator {
        rules: Arc::clone(&settings.alert_rules),
        history: Arc::clone(history),
        notifier,
        view,
        broker: settings.broker.clone(),
        reconnect_cap: settings.reconnect_cap,
        clock: Arc::clone(intake.clock()),
        registry: metrics.registry.clone(),
        live: Arc::clone(live),
    }
    .start(alert_status)?;
    let alert_queue = Source {
        settings: settings.broker.clone(),
        queue: QueueSpec {
            name: Some(settings.alert_queue.clone()),
            // The evaluator judges the state now: a long backlog is history, not news.
            max_length: 100_000,
            prefetch: settings.queue.prefetch,
            kind: QueueKind::Shared {
                expires: settings.history_queue.expires,
                single_active: true,
                replicated: false,
            },
        },
        reconnect_cap: settings.reconnect_cap,
        depth: None,
    };
    let consuming = tokio::spawn(queue::consume_forever(
        alert_queue,
        alert_status_tx,
        // Counted once, by the live queue's path: these are the same readings.
        intake.queue(false)?,
        alert_sink,
    ));
    Ok([ticking, consuming])
}

/// Every change of the live queue's connection goes to the browsers as a `status` frame.
async fn tell_browsers_the_broker_state(
    mut broker: watch::Receiver<BrokerState>,
    live: Arc<LiveView>,
) {
    let mut previous = broker.borrow_and_update().clone();
    while broker.changed().await.is_ok() {
        let current = broker.borrow_and_update().clone();
        live.push_status(&previous, &current);
        previous = current;
    }
}

/// Every second, readings whose gap the store did not fill are shown; hosts silent for longer
/// than `expiry` leave the page's snapshot and the metrics.
async fn live_upkeep(live: Arc<LiveView>, expiry: std::time::Duration) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        live.release_held();
        let forgotten = live.forget_silent_hosts(expiry);
        if forgotten > 0 {
            tracing::info!(forgotten, "forgot hosts silent for {}s", expiry.as_secs());
        }
    }
}

/// What every request may need, shared by the server's workers.
struct Parts {
    live: Arc<LiveView>,
    metrics: ConsumerMetrics,
    broker: watch::Receiver<BrokerState>,
    origins: crate::web::origin::AllowedOrigins,
    hosts: shared::allowed_hosts::AllowedHosts,
    /// Whether requests for other names are refused: without a login (with one, the session
    /// cookie, which a rebound page never has, protects).
    check_hosts: bool,
    guard: web::Data<crate::web::auth::Guard>,
    history: Arc<History>,
    clock: SharedClock,
    alerts: Arc<AlertView>,
}

/// `bound`: the listening socket, and its TLS configuration when serving HTTPS.
fn run(
    bound: (TcpListener, Option<rustls::ServerConfig>),
    workers: usize,
    parts: Parts,
) -> std::io::Result<Server> {
    let (listener, tls) = bound;
    let live = web::Data::new(parts.live);
    let metrics = web::Data::new(parts.metrics);
    let broker = web::Data::new(parts.broker);
    let origins = web::Data::new(parts.origins);
    let hosts = web::Data::new(parts.hosts);
    let check_hosts = parts.check_hosts;
    let guard = parts.guard;
    let history = web::Data::new(parts.history);
    let clock = web::Data::new(parts.clock);
    let alerts = web::Data::new(parts.alerts);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(crate::web::auth::require))
            // Before the login: a request for a name this consumer does not answer to gets
            // nothing else (DNS rebinding).
            .wrap(actix_web::middleware::Condition::new(
                check_hosts,
                actix_web::middleware::from_fn(shared::allowed_hosts::check_host),
            ))
            .wrap(actix_web::middleware::from_fn(
                shared::http::limit_body_size,
            ))
            // The page's script and the API's JSON shrink several times; WebSocket upgrades
            // (101) are left alone by the middleware.
            .wrap(actix_web::middleware::Compress::default())
            // The client address in every request's log lines as TRUSTED_PROXIES decides.
            .wrap(tracing_actix_web::TracingLogger::<
                crate::web::auth::ClientSpan,
            >::new())
            .app_data(live.clone())
            .app_data(metrics.clone())
            .app_data(broker.clone())
            .app_data(origins.clone())
            .app_data(hosts.clone())
            .app_data(guard.clone())
            .app_data(history.clone())
            .app_data(clock.clone())
            .app_data(alerts.clone())
            .configure(crate::web::auth::routes)
            .service(get("/", routes::index))
            .service(get("/assets/{file:.*}", routes::asset))
            .service(get("/ws", ws::ws))
            .service(get("/api/hosts", routes::hosts))
            .service(get("/api/hosts/{host}/readings", routes::host_readings))
            .service(get("/api/hosts/{host}/history", routes::history))
            .service(get("/api/alerts", routes::alerts))
            .service(get("/health", routes::health))
            .service(get("/ready", routes::ready))
            .service(get("/metrics", routes::metrics))
            .default_service(web::to(not_found))
    })
    .workers(workers)
    // Frames are small and must leave at once: no Nagle delay waiting for an ACK.
    .tcp_nodelay(true);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    let server = server
        // Signals are handled in `run_until_stopped`, so browsers get close frames first.
        .disable_signals()
        .shutdown_timeout(5)
        .run();
    Ok(server)
}

/// API tokens live in the history store when there is one, else in a file in `DATA_DIR`.
fn token_store(
    settings: &Settings,
    history: &Arc<History>,
    clock: &SharedClock,
) -> Arc<dyn crate::web::auth::TokenStore> {
    let dir = &settings.auth.data_dir;
    if settings.history.enabled() {
        Arc::new(crate::web::auth::StoreTokenStore::serving(
            Arc::clone(history),
            dir,
            Arc::clone(clock),
        ))
    } else {
        Arc::new(crate::web::auth::FileTokenStore::open(dir))
    }
}
