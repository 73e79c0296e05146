use consumer::configuration::Settings;
use consumer::startup::Application;
use shared::telemetry::{get_subscriber, init_subscriber};
use std::process::ExitCode;

/// Exit code for settings that cannot be used.
const EXIT_BAD_SETTINGS: u8 = 2;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = <consumer::cli::Cli as clap::Parser>::parse();
    if let Some(command) = cli.command {
        return consumer::cli::run(command).await;
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("consumer: {e}");
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    };
    match get_subscriber(
        &settings.log_filter,
        std::io::stdout,
        shared::telemetry::stdout_is_terminal(),
    ) {
        Ok(subscriber) => init_subscriber(subscriber),
        Err(e) => {
            eprintln!("consumer: RUST_LOG: {e}");
            return ExitCode::from(EXIT_BAD_SETTINGS);
        }
    }
    // Every browser is a socket: the usual soft limit of 1024 descriptors would cap the
    // dashboard at about a thousand viewers, so take what the hard limit allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }
    let host = settings.http.host;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let application = match Application::build(settings).await {
        Ok(application) => application,
        Err(e) => {
            eprintln!("consumer: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("dashboard: {scheme}://{host}:{}/", application.port());
    if let Err(e) = application.run_until_stopped().await {
        eprintln!("consumer: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
