//! The pooled connections to the upstream: plain or TLS, kept idle for
//! less than the upstream keeps them, and one retry on a fresh connection
//! for a request that is safe to send again (RFC 9110 §9.2.2) when its
//! connection failed before the response came.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::upstream::UpstreamBody;

/// The largest request body kept in memory so that the request can be
/// sent again on a fresh connection; larger ones stream, and are retried
/// only when hyper knows none of their bytes left.
pub(crate) const REPLAYABLE_BODY_BYTES: u64 = 64 << 10;

/// What goes to the upstream: the client's body as it streams, or one
/// buffered for a retry.
pub(crate) type SendBody = Either<UpstreamBody, Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connections to the upstream, as the pool sees them.
pub(crate) enum Stream {
    Plain(TokioIo<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(s) => s.connected(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.inner().get_ref().0.connected(),
        }
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Opens connections: TCP, then TLS for `https` with SNI from the
/// upstream's host.
#[derive(Clone)]
pub(crate) struct Connector {
    http: HttpConnector,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsConnector>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        #[cfg(feature = "tls")]
        let tls = (uri.scheme() == Some(&http::uri::Scheme::HTTPS))
            .then(|| self.tls.clone())
            .flatten();
        #[cfg(feature = "tls")]
        let host = uri.host().unwrap_or("").trim_matches(['[', ']']).to_owned();
        let connecting = self.http.call(uri);
        let limit = self.connect_timeout;
        let connect = async move {
            let tcp = connecting.await?;
            #[cfg(feature = "tls")]
            if let Some(tls) = tls {
                let name = rustls::pki_types::ServerName::try_from(host)
                    .map_err(|e| format!("the upstream's host is not a TLS server name: {e}"))?;
                let stream = tls.connect(name, tcp.into_inner()).await?;
                return Ok(Stream::Tls(Box::new(TokioIo::new(stream))));
            }
            Ok(Stream::Plain(tcp))
        };
        // The TLS handshake counts against connect_timeout too: an
        // upstream that accepts and never answers it is not connected.
        Box::pin(async move {
            match tokio::time::timeout(limit, connect).await {
                Ok(connected) => connected,
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection to the upstream within connect_timeout ({limit:?})"),
                )) as BoxError),
            }
        })
    }
}

/// How the pool is set up.
pub(crate) struct PoolSettings {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Idle connections kept at most.
    pub max_idle: usize,
    #[cfg(feature = "tls")]
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// The upstream's connections: a pool for every request, and a client
/// that never reuses one, for retries.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    pooled: Client<Connector, SendBody>,
    fresh: Client<Connector, SendBody>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

impl Pool {
    pub(crate) fn new(settings: &PoolSettings) -> Pool {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(60)));
        // `https` URIs reach the TLS step below.
        http.enforce_http(false);
        let connector = Connector {
            http,
            connect_timeout: settings.connect_timeout,
            #[cfg(feature = "tls")]
            tls: settings.tls.clone().map(tokio_rustls::TlsConnector::from),
        };
        let builder = |max_idle: usize| {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(settings.idle_timeout)
                .pool_timer(TokioTimer::new())
                .pool_max_idle_per_host(max_idle)
                // Keep the Host as the cache keyed it (`target::settle`).
                .set_host(false)
                .build(connector.clone())
        };
        Pool {
            pooled: builder(settings.max_idle),
            fresh: builder(0),
        }
    }

    /// Sends `request`; when it is safe to send again and its connection
    /// failed before a response arrived (closed or reset by the upstream
    /// as the request went out: the keep-alive race), sends it once more
    /// on a new connection. A request that is not (a POST, a large body)
    /// is sent again only when hyper knows none of it left (its own retry
    /// of canceled requests).
    pub(crate) async fn request(
        &self,
        request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, BoxError> {
        let (parts, body) = request.into_parts();
        let body: SendBody = match replayable(&parts.method, &body) {
            None => {
                let request = Request::from_parts(parts, Either::Left(body));
                return Ok(self.pooled.request(request).await?);
            }
            Some(Replay::Empty) => Either::Left(body),
            Some(Replay::Buffer) => match body.collect().await {
                Ok(collected) => Either::Right(Full::new(collected.to_bytes())),
                // A stalled client is told so (408), not taken for the upstream.
                Err(e) if crate::timeout::client_stalled(&*e) => return Err(e),
                Err(e) => return Err(format!("the client's request body broke off: {e}").into()),
            },
        };
        let again = copy(&parts, &body);
        match self.pooled.request(Request::from_parts(parts, body)).await {
            Err(e) if !e.is_connect() => {
                tracing::debug!(
                    error = %e,
                    "the upstream connection failed before the response; sending again on a new one"
                );
                Ok(self.fresh.request(again).await?)
            }
            other => Ok(other?),
        }
    }
}

enum Replay {
    /// No body: the request can be rebuilt as is.
    Empty,
    /// A small body, read before sending so that it can be sent twice.
    Buffer,
}

/// Whether a request may be sent again (RFC 9110 §9.2.2: idempotent
/// methods), and what that takes.
fn replayable(method: &Method, body: &UpstreamBody) -> Option<Replay> {
    let idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    if !idempotent {
        return None;
    }
    if body.is_end_stream() {
        return Some(Replay::Empty);
    }
    match body.size_hint().upper() {
        Some(n) if n <= REPLAYABLE_BODY_BYTES => Some(Replay::Buffer),
        _ => None,
    }
}

/// The same request again, for a retry: an empty body, or the buffered one.
fn copy(parts: &http::request::Parts, body: &SendBody) -> Request<SendBody> {
    let body = match body {
        Either::Right(full) => Either::Right(full.clone()),
        Either::Left(_) => Either::Right(Full::new(Bytes::new())),
    };
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    // The retry's 1xx responses reach the client too.
    *request.extensions_mut() = parts.extensions.clone();
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_methods_are_sent_twice_9110_9_2_2() {
        let empty = || Either::Right(http_body_util::Empty::new());
        for m in [
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            assert!(
                matches!(replayable(&m, &empty()), Some(Replay::Empty)),
                "{m}"
            );
        }
        for m in [Method::POST, Method::PATCH, Method::CONNECT] {
            assert!(replayable(&m, &empty()).is_none(), "{m}");
        }
    }
}
