//! Logging set-up: `tracing` with a filter from `RUST_LOG`, written to a sink of the caller's
//! choice so tests can silence it.

use tracing::level_filters::LevelFilter;
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

/// A `RUST_LOG` value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a log filter (expected e.g. \"info\" or \"warn,publisher=debug\")")]
pub struct FilterError(String);

/// Targets whose info lines are start-up chatter ("Actix runtime found; starting in Actix
/// runtime", "starting 1 workers"): kept at warn unless `RUST_LOG` names them.
const CHATTY_TARGETS: [&str; 2] = ["actix_server", "actix_rt"];

/// lapin, the consumer's AMQP client, logs every lost connection at ERROR from inside its I/O
/// thread ("Connection error", "error doing IO", "invalid channel state: Closing"), dozens of
/// lines for one ordinary reconnect. Each of those failures also reaches the code that uses
/// the connection, which logs it once, at WARN, naming the part (broker, alerts exchange) and
/// saying when it is back. So lapin's own lines are kept at WARN at most unless `RUST_LOG`
/// names lapin.
const AMQP_CLIENT_TARGET: &str = "lapin";

/// Builds a subscriber; `filter` uses `RUST_LOG`'s `level,target=level` syntax. `ansi` turns
/// on colours: only for a terminal, or a log file or journal fills with escape codes (see
/// [`stdout_is_terminal`]).
///
/// (`Targets`, not `EnvFilter`: the regex engine that span-field filters need is a quarter of
/// a megabyte of code in every process, for a feature a monitor's logs do not need.)
pub fn get_subscriber<Sink>(
    filter: &str,
    sink: Sink,
    ansi: bool,
) -> Result<impl Subscriber + Send + Sync, FilterError>
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let targets = parse_filter(filter)?;
    let lapin_named = targets.iter().any(|(named, _)| {
        AMQP_CLIENT_TARGET.starts_with(named) || named.starts_with(AMQP_CLIENT_TARGET)
    });
    let client_errors = tracing_subscriber::filter::filter_fn(move |meta| {
        lapin_named
            || *meta.level() != tracing::Level::ERROR
            || !meta.target().starts_with(AMQP_CLIENT_TARGET)
    });
    Ok(Registry::default().with(targets).with(client_errors).with(
        tracing_subscriber::fmt::layer()
            .with_writer(sink)
            .with_ansi(ansi)
            .with_target(false),
    ))
}

/// True when the process's stdout is a terminal, where colours help; false for a pipe, a
/// file or the journal.
pub fn stdout_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
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
    let targets: Targets = filter.parse().map_err(|_| invalid())?;
    Ok(quiet_chatty_targets(targets))
}

/// Adds a warn directive for each of [`CHATTY_TARGETS`] that the filter does not name, unless
/// the filter is already at warn or quieter (a directive must never make a target louder).
fn quiet_chatty_targets(targets: Targets) -> Targets {
    let Some(default) = targets.default_level() else {
        return targets;
    };
    if default <= LevelFilter::WARN {
        return targets;
    }
    let unnamed: Vec<&str> = CHATTY_TARGETS
        .into_iter()
        .filter(|chatty| {
            // A directive covers every target it is a prefix of (`actix` covers both).
            !targets.iter().any(|(named, _)| chatty.starts_with(named))
        })
        .collect();
    unnamed.into_iter().fold(targets, |targets, chatty| {
        targets.with_target(chatty, LevelFilter::WARN)
    })
}

/// Installs the subscriber for the whole process; a second call is ignored.
pub fn init_subscriber(subscriber: impl Subscriber + Send + Sync) {
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log output collected in memory.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `filter` writes of lapin's error and warning and of a service's own error.
    fn written(filter: &str) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = get_subscriber(filter, move || sink.clone(), false).expect("filter");
        // A second registered dispatcher, so another test thread cannot switch these lines off.
        let _lines = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "lapin::channels", "Connection error");
            tracing::warn!(target: "lapin::returned_messages", "Server returned us a message");
            tracing::error!(target: "consumer::alerts", "a real failure");
        });
        let text = String::from_utf8_lossy(&captured.0.lock().expect("log")).into_owned();
        text
    }

    #[test]
    fn lapin_logs_at_warn_at_most_unless_named() {
        let by_default = written("info");
        assert!(!by_default.contains("Connection error"), "{by_default}");
        assert!(
            by_default.contains("Server returned us a message"),
            "{by_default}"
        );
        assert!(by_default.contains("a real failure"), "{by_default}");
        let named = written("info,lapin=debug");
        assert!(named.contains("Connection error"), "{named}");
    }

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

    #[test]
    fn actix_start_up_chatter_is_quiet_unless_named() {
        let enabled = |filter: &str, target: &str, level: Level| {
            parse_filter(filter)
                .unwrap_or_else(|e| panic!("{filter}: {e}"))
                .would_enable(target, &level)
        };
        use tracing::Level;
        // By default: the services' own info lines pass, actix's do not, its warnings do.
        assert!(enabled("info", "publisher::startup", Level::INFO));
        assert!(!enabled("info", "actix_server::server", Level::INFO));
        assert!(!enabled("debug", "actix_rt::system", Level::INFO));
        assert!(enabled("info", "actix_server::worker", Level::WARN));
        // Named, by its own name or a prefix, RUST_LOG decides.
        assert!(enabled(
            "info,actix_server=info",
            "actix_server::server",
            Level::INFO
        ));
        assert!(enabled(
            "warn,actix=debug",
            "actix_rt::arbiter",
            Level::DEBUG
        ));
        // A quieter filter is never made louder.
        assert!(!enabled("error", "actix_server::worker", Level::WARN));
    }
}
