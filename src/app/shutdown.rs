//! Stopping: the signals that ask for it (SIGINT, SIGTERM), and the bound on
//! how long in-flight requests may take once clients have been told to go
//! elsewhere.

use std::future::Future;
use std::time::Duration;

/// SIGINT and SIGTERM, listened for from when this is made (so a signal that
/// arrives as soon as the port answers still stops gracefully).
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves at the first of the two.
    pub async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `serve` until it ends by itself, or for at most `bound` once
/// `stopping` resolves (the graceful stop has begun).
pub async fn bounded<E>(
    serve: impl Future<Output = Result<(), E>>,
    stopping: impl Future<Output = bool>,
    bound: Duration,
) -> Result<(), E> {
    tokio::select! {
        result = serve => result,
        _ = async {
            if stopping.await {
                tokio::time::sleep(bound).await
            } else {
                std::future::pending().await
            }
        } => {
            tracing::warn!(seconds = bound.as_secs(), "requests still open at the shutdown bound; exiting anyway");
            Ok(())
        }
    }
}
