//! `Upgrade` (WebSocket) passes through: the request goes to the upstream
//! with its `Connection: upgrade` and `Upgrade`, and after a `101
//! Switching Protocols` the two connections are joined byte for byte.
//! Never looked up, never stored.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use larder::CacheBody;
use tokio::sync::watch;

use crate::proxy::{error_response, ProxyBody};
use crate::timeout::{Side, Timed};
use crate::upstream::{prepare_request, Upstream};

/// The tunnels open now (they hold two descriptors each and count against
/// `max_connections`), and the signal that closes them when the proxy stops.
#[derive(Debug)]
pub(crate) struct Tunnels {
    open: AtomicUsize,
    stop: watch::Receiver<bool>,
}

impl Tunnels {
    pub(crate) fn new(stop: watch::Receiver<bool>) -> Arc<Tunnels> {
        Arc::new(Tunnels {
            open: AtomicUsize::new(0),
            stop,
        })
    }

    /// How many are open (or being set up).
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// Whether the request asks to switch protocols on this connection: an
/// HTTP/1.1 request with `Upgrade` and the `upgrade` option in
/// `Connection` (RFC 9110 §7.8), on a connection that can hand over.
pub(crate) fn wanted(parts: &request::Parts) -> bool {
    parts.headers.contains_key(header::UPGRADE)
        && parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|line| line.as_bytes().split(|&b| b == b','))
            .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
        && parts.extensions.get::<OnUpgrade>().is_some()
}

/// Forwards an upgrade request; on `101` joins the client's connection to
/// the upstream's until either side closes (or the proxy stops). Any
/// other answer goes back as the upstream gave it.
pub(crate) async fn forward(
    cache: &larder::Cache,
    upstream: &Upstream,
    tunnels: &Arc<Tunnels>,
    mut parts: request::Parts,
    body: Timed<Incoming>,
    peer: SocketAddr,
) -> Response<ProxyBody> {
    let Some(client) = parts.extensions.remove::<OnUpgrade>() else {
        return error_response(cache.name(), StatusCode::BAD_REQUEST, "bad-request");
    };
    let offered: Vec<HeaderValue> = parts
        .headers
        .get_all(header::UPGRADE)
        .iter()
        .cloned()
        .collect();
    // Hop-by-hop fields out (the upgrade ones too), forwarding fields in;
    // then the upgrade is asked for again, of the upstream this time.
    prepare_request(&mut parts, peer, &[]);
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    for protocol in offered {
        parts.headers.append(header::UPGRADE, protocol);
    }
    let mut response = match upstream.send_raw(parts, Either::Left(body)).await {
        Ok(response) => response,
        Err(error) => {
            let (status, detail) = match error.failure() {
                Some(failure) => (failure.status(), failure.detail()),
                None => (StatusCode::REQUEST_TIMEOUT, "client-timeout"),
            };
            tracing::warn!(%error, %status, "upstream failed an upgrade");
            return error_response(cache.name(), status, detail);
        }
    };
    let switched = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let chosen = response.headers().get(header::UPGRADE).cloned();
    larder::policy::headers::strip_hop_by_hop(response.headers_mut());
    if !switched {
        // Not switched: an ordinary answer, whose body may not stall either.
        let limit = upstream.between_bytes();
        return response.map(|b| CacheBody::stream(Timed::new(b, limit, Side::Upstream)));
    }
    let upstream_side = hyper::upgrade::on(&mut response);
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(chosen) = chosen {
        headers.insert(header::UPGRADE, chosen);
    }
    tunnels.open.fetch_add(1, Ordering::AcqRel);
    let tunnels = tunnels.clone();
    tokio::spawn(async move {
        tunnel(client, upstream_side, &tunnels).await;
        tunnels.open.fetch_sub(1, Ordering::AcqRel);
    });
    response.map(|_| CacheBody::empty())
}

/// Copies both ways until either side ends.
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, tunnels: &Tunnels) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(error = %e, "an upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    let mut stop = tunnels.stop.clone();
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(e) = copied {
                tracing::debug!(error = %e, "tunnel ended with an error");
            }
        }
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}
