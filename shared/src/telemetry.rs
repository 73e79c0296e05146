//! Logging set-up: `tracing` with a filter from `RUST_LOG`, written to a sink of the caller's
//! choice so tests can silence it.

use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

/// A `RUST_LOG` value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a log filter (expected e.g. \"info\" or \"warn,publisher=debug\")")]
pub struct FilterError(String);

/// Builds a subscriber; `filter` uses `RUST_LOG`'s `level,target=level` syntax.
///
/// (`Targets`, not `EnvFilter`: the regex engine that span-field filters need is a quarter of
/// a megabyte of code in every process, for a feature a monitor's logs do not need.)
pub fn get_subscriber<Sink>(
    filter: &str,
    sink: Sink,
) -> Result<impl Subscriber + Send + Sync, FilterError>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = parse_filter(filter)?;
    Ok(Registry::default().with(filter).with(
        tracing_subscriber::fmt::layer()
            .with_writer(sink)
            .with_target(false),
    ))
}

/// Parses a filter, refusing targets that cannot be a module path: `Targets` alone would take
/// a typo such as `info,[debug]` as a target and silently log nothing for it.
fn parse_filter(filter: &str) -> Result<Targets, FilterError> {
    let invalid = || FilterError(filter.to_owned());
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let target = match directive.split_once('=') {
            Some((target, _level)) => target,
            None if directive
                .parse::<tracing::level_filters::LevelFilter>()
                .is_ok() =>
            {
                continue
            }
            None => directive,
        };
        let path_like = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-');
        if target.is_empty() || !target.chars().all(path_like) {
            return Err(invalid());
        }
    }
    filter.parse().map_err(|_| invalid())
}

/// Installs the subscriber for the whole process; a second call is ignored.
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_filters_are_accepted_and_typos_refused() {
        for good in [
            "info",
            "warn,publisher=debug",
            "",
            "lapin=off, actix_server::worker=warn",
        ] {
            parse_filter(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["info,[[[", "publisher=loud", "=debug", "info,a b"] {
            assert!(parse_filter(bad).is_err(), "{bad} accepted");
        }
    }
}
