use publisher::configuration::Settings;
use publisher::startup::Application;
use shared::telemetry::{get_subscriber, init_subscriber, stdout_is_terminal};
use std::process::ExitCode;

/// Exit code for settings that cannot be used.
const EXIT_BAD_SETTINGS: u8 = 2;

#[actix_web::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("publisher: {e}");
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    };
    match get_subscriber(&settings.log_filter, std::io::stdout, stdout_is_terminal()) {
        Ok(subscriber) => init_subscriber(subscriber),
        Err(e) => {
            eprintln!("publisher: RUST_LOG: {e}");
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    }
    let host = settings.http.host;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let application = match Application::build(settings).await {
        Ok(application) => application,
        // An outbox folder that cannot be written is a setting to fix, like a bad value.
        Err(e) if e.is::<publisher::spool::SpoolError>() => {
            eprintln!("publisher: {e}");
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
        Err(e) => {
            eprintln!("publisher: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "publish on request: {scheme}://{host}:{}/publish",
        application.port()
    );
    if let Err(e) = application.run_until_stopped().await {
        eprintln!("publisher: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
