//! The signals the binary acts on: SIGTERM and SIGINT stop it (the
//! listener closes idle connections at once and lets in-flight requests
//! finish within `shutdown_timeout`: `listener.rs`), SIGHUP reloads the
//! listener's TLS certificate.

/// Waits for SIGTERM or SIGINT (Ctrl-C).
///
/// ```no_run
/// # async fn example(proxy: larder_proxy::Running) {
/// larder_proxy::shutdown::signal().await;
/// proxy.shutdown().await; // in-flight requests finish first
/// # }
/// ```
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// SIGHUP, as a stream of reload requests (never on other platforms).
///
/// ```no_run
/// # async fn example(proxy: larder_proxy::Running) {
/// let mut hangups = larder_proxy::shutdown::Hangups::new();
/// loop {
///     hangups.next().await;
///     let _ = proxy.reload_tls();
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Starts listening for SIGHUP (in a Tokio runtime).
    #[allow(clippy::new_without_default)]
    pub fn new() -> Hangups {
        Hangups {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    /// Waits for the next SIGHUP (for ever when none can come).
    pub async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
            self.signal = None;
        }
        std::future::pending::<()>().await
    }
}
