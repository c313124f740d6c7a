//! One module per `vigil` subcommand, plus what they share.

pub mod agent;
pub mod generate;
pub mod import;
pub mod ingest;
pub mod migrate;
pub mod query;
pub mod reindex;
pub mod retention;
pub mod serve;
pub mod sigma;
pub mod token;
pub mod up;

/// Resolves when the process gets Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
