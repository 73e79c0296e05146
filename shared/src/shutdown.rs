//! Waiting for the signals that ask a service to stop: Ctrl-C (SIGINT) and SIGTERM.

/// Resolves when the process is asked to stop. If a signal handler cannot be installed, that
/// signal is logged and ignored rather than stopping the service.
pub async fn signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("Ctrl-C received; stopping"),
        () = terminate => tracing::info!("SIGTERM received; stopping"),
    }
}
