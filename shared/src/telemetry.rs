//! Logging set-up: `tracing` with a filter from `RUST_LOG`, written to a sink of the caller's
//! choice so tests can silence it.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

/// Builds a subscriber; `filter` uses `RUST_LOG` syntax.
pub fn get_subscriber<Sink>(
    filter: &str,
    sink: Sink,
) -> Result<impl Subscriber + Send + Sync, tracing_subscriber::filter::ParseError>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter)?;
    Ok(Registry::default().with(filter).with(
        tracing_subscriber::fmt::layer()
            .with_writer(sink)
            .with_target(false),
    ))
}

/// Installs the subscriber for the whole process; a second call is ignored.
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}
