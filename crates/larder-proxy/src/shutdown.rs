//! Serving connections until told to stop, then letting in-flight
//! requests finish within a bound.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Accepts connections on `listener`, each served over HTTP/1.1 with
/// keep-alive by the service `make(peer)` returns, until `stop` turns
/// true; then stops accepting, asks open connections to close once their
/// current request is answered, and waits for them at most `grace`.
pub(crate) async fn serve<S, M>(
    listener: TcpListener,
    make: M,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    what: &'static str,
) where
    M: Fn(SocketAddr) -> S,
    S: HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as http_body::Body>::Data: Send,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // A client that never finishes its headers cannot hold a connection
    // (and a task) forever.
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, usually: back off instead of spinning.
                        tracing::warn!(error = %e, what, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = http.serve_connection(TokioIo::new(stream), make(peer));
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            what,
            ?grace,
            "in-flight requests did not finish in time; closing them"
        );
    }
}

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
