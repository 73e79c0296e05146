//! The notifier: `send` puts a notice on a bounded queue and returns at once; one background
//! task per channel delivers, with bounded attempts and backoff, so a slow or dead endpoint
//! delays neither the caller nor the other channels.

use super::channels::{Channel, ChannelKind, DeliveryError};
use super::notice::Notice;
use super::settings::{NotifySettings, RetryPolicy};
use backon::{ExponentialBuilder, Retryable};
use prometheus::{IntCounterVec, Opts, Registry};
use shared::metrics::{register, NAMESPACE};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The outcomes counted in `hostpulse_notifications_total`.
pub const OUTCOMES: [&str; 3] = ["sent", "failed", "dropped"];

/// Could not start the notifier.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Its metrics could not be registered (e.g. a second notifier on one registry).
    #[error("notification metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The HTTP client could not be built (TLS set-up).
    #[error("notification HTTP client: {0}")]
    Http(String),
    /// The SMTP transport could not be built (TLS set-up).
    #[error("notification e-mail: {0}")]
    Email(DeliveryError),
    /// Started outside a tokio runtime, where no background task can run.
    #[error("notifications need a tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
}

/// Counters shared by the channel tasks.
#[derive(Clone)]
struct NotifyMetrics {
    notifications: IntCounterVec,
    retries: IntCounterVec,
}

impl NotifyMetrics {
    fn register(registry: &Registry) -> prometheus::Result<Self> {
        let notifications = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "notifications_total",
                    "Alert notices per channel: sent, failed after every attempt, or dropped \
                     from a full queue.",
                )
                .namespace(NAMESPACE),
                &["channel", "outcome"],
            ),
        )?;
        let retries = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "notification_retries_total",
                    "Notification attempts that failed and were tried again.",
                )
                .namespace(NAMESPACE),
                &["channel"],
            ),
        )?;
        // Every known series at 0 from the start, so a rate or an alert never sees "no data".
        for kind in ChannelKind::ALL {
            for outcome in OUTCOMES {
                notifications.with_label_values(&[kind.label(), outcome]);
            }
            retries.with_label_values(&[kind.label()]);
        }
        Ok(Self {
            notifications,
            retries,
        })
    }

    fn count(&self, kind: ChannelKind, outcome: &str, n: u64) {
        self.notifications
            .with_label_values(&[kind.label(), outcome])
            .inc_by(n);
    }
}

/// Sends notices on every configured channel, in the background. Share it behind an `Arc`:
/// `send` and `close` take `&self`.
pub struct Notifier {
    /// `None` when no channel is configured or once closed: `send` then does nothing.
    queue: Mutex<Option<broadcast::Sender<Arc<Notice>>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    channels: usize,
}

impl Notifier {
    /// Registers the metrics on `registry` and starts one task per channel on the current
    /// tokio runtime.
    pub fn start(settings: NotifySettings, registry: &Registry) -> Result<Self, NotifyError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let metrics = NotifyMetrics::register(registry)?;
        let policy = settings.retry;
        let http = reqwest::Client::builder()
            .timeout(policy.attempt_timeout)
            .connect_timeout(policy.attempt_timeout)
            .user_agent(concat!("hostpulse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Http(e.without_url().to_string()))?;
        let mut channels: Vec<Channel> = settings
            .webhooks
            .into_iter()
            .map(Channel::Webhook)
            .collect();
        channels.extend(settings.ntfy.map(Channel::Ntfy));
        channels.extend(settings.slack.map(Channel::Slack));
        if let Some(email) = settings.email {
            channels
                .push(Channel::email(email, policy.attempt_timeout).map_err(NotifyError::Email)?);
        }
        if channels.is_empty() {
            tracing::info!("no alert notification channel configured");
            return Ok(Self {
                queue: Mutex::new(None),
                tasks: Mutex::new(Vec::new()),
                channels: 0,
            });
        }
        // A broadcast channel is the queue: each channel's task reads at its own pace, and
        // one that falls behind by more than the capacity loses the oldest notices, told how
        // many (a lagging receiver), which it counts.
        let (queue, _) = broadcast::channel(settings.queue_capacity.max(1));
        let tasks: Vec<JoinHandle<()>> = channels
            .into_iter()
            .map(|channel| {
                tracing::info!(
                    channel = channel.kind().label(),
                    endpoint = channel.shown(),
                    "alert notifications enabled"
                );
                let worker = Worker {
                    channel,
                    http: http.clone(),
                    policy,
                    metrics: metrics.clone(),
                    failing: std::sync::atomic::AtomicBool::new(false),
                };
                runtime.spawn(worker.run(queue.subscribe()))
            })
            .collect();
        Ok(Self {
            queue: Mutex::new(Some(queue)),
            channels: tasks.len(),
            tasks: Mutex::new(tasks),
        })
    }

    /// Queues `notice` for every channel and returns at once; never waits on the network.
    pub fn send(&self, notice: Notice) {
        if notice.events.is_empty() {
            tracing::warn!(host = %notice.host, "notice without events not sent");
            return;
        }
        let Some(queue) = lock(&self.queue).clone() else {
            if self.channels > 0 {
                tracing::warn!(host = %notice.host, "alert notifier is closed; notice not sent");
            }
            return;
        };
        // Fails only when every task has ended, which only a task's panic could cause.
        if queue.send(Arc::new(notice)).is_err() {
            tracing::error!("alert notification tasks have stopped; notice not sent");
        }
    }

    /// How many channels deliver.
    pub fn channel_count(&self) -> usize {
        self.channels
    }

    /// Stops taking notices and waits up to `within` for the queued ones to be delivered or
    /// given up; true when all were. Tasks still busy then are stopped.
    pub async fn close(&self, within: Duration) -> bool {
        // Dropping the sender lets each task finish its queue, then end.
        lock(&self.queue).take();
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        let finished = tokio::time::timeout(within, async {
            for task in &mut tasks {
                if let Err(e) = task.await {
                    tracing::error!("a notification task failed: {e}");
                }
            }
        })
        .await
        .is_ok();
        if !finished {
            let busy = tasks.iter().filter(|t| !t.is_finished()).count();
            tracing::warn!(
                busy,
                "notification channels still busy at shutdown; stopped"
            );
            for task in tasks {
                task.abort();
            }
        }
        finished
    }
}

/// A lock that a panic elsewhere cannot poison for good: the data stays usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One channel's delivery loop.
struct Worker {
    channel: Channel,
    http: reqwest::Client,
    policy: RetryPolicy,
    metrics: NotifyMetrics,
    /// The last attempt failed: the next delivery says the channel works again.
    failing: std::sync::atomic::AtomicBool,
}

impl Worker {
    async fn run(self, mut queue: broadcast::Receiver<Arc<Notice>>) {
        let kind = self.channel.kind();
        loop {
            match queue.recv().await {
                Ok(notice) => self.deliver(&notice).await,
                Err(broadcast::error::RecvError::Lagged(dropped)) => {
                    self.metrics.count(kind, "dropped", dropped);
                    tracing::warn!(
                        channel = kind.label(),
                        endpoint = self.channel.shown(),
                        dropped,
                        "notification queue full: oldest notices dropped"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }

    /// Tries until sent, refused for good, or out of attempts; counts and logs the outcome.
    async fn deliver(&self, notice: &Notice) {
        let kind = self.channel.kind();
        let timeout = self.policy.attempt_timeout;
        let result = (|| self.channel.deliver(&self.http, notice, timeout))
            .retry(backoff(&self.policy))
            .sleep(tokio::time::sleep)
            .when(DeliveryError::is_retryable)
            .notify(|error, delay| {
                self.metrics
                    .retries
                    .with_label_values(&[kind.label()])
                    .inc();
                self.failing
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    channel = kind.label(),
                    endpoint = self.channel.shown(),
                    host = %notice.host,
                    retry_in_ms = delay.as_millis() as u64,
                    "notification attempt failed: {error}"
                );
            })
            .await;
        match result {
            Ok(()) => {
                self.metrics.count(kind, "sent", 1);
                if self
                    .failing
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::info!(
                        channel = kind.label(),
                        endpoint = self.channel.shown(),
                        "notification channel works again"
                    );
                }
                tracing::debug!(channel = kind.label(), host = %notice.host, "notification sent");
            }
            Err(error) => {
                self.metrics.count(kind, "failed", 1);
                self.failing
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    channel = kind.label(),
                    endpoint = self.channel.shown(),
                    host = %notice.host,
                    title = %notice.title(),
                    "notification given up: {error}"
                );
            }
        }
    }
}

/// Exponential waits with jitter (so many consumers' retries do not arrive together), at most
/// `attempts - 1` of them.
fn backoff(policy: &RetryPolicy) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(policy.first_delay)
        .with_max_delay(policy.max_delay)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(policy.attempts.saturating_sub(1))
}
