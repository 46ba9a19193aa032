//! The proxy's request path: rewrite the request, ask the cache, forward
//! to the upstream when it says so, and hand the upstream's answer back to
//! the cache. It holds no caching rule: those are the engine's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{request, Method, Request, Response, StatusCode};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use larder::{Cache, CacheBody, Fill, Lookup, NotStored};

use crate::activity::InterimSender;
use crate::routes::{Cookies, Routes};
use crate::timeout::{Side, Timed};
use crate::upstream::{
    drop_get_body, prepare_request, strip_unkeyed, ResponseBody, Upstream, UpstreamBody,
};

/// What clients get: cached bytes, or the upstream's body streamed.
pub type ProxyBody = CacheBody<ResponseBody>;

/// One proxy: its cache, its rules, its upstream.
#[derive(Debug)]
pub struct Proxy {
    pub(crate) cache: Cache,
    pub(crate) routes: Routes,
    pub(crate) upstream: Upstream,
    pub(crate) access_log: bool,
    pub(crate) underscores_in_headers: bool,
    /// Whether clients reach this proxy over TLS (`https` in keys and
    /// forwarding fields).
    pub(crate) tls: bool,
    /// Upgraded connections (WebSocket), passed through.
    pub(crate) tunnels: Arc<crate::upgrade::Tunnels>,
    /// The longest wait for more of a client's request body.
    pub(crate) client_body_timeout: std::time::Duration,
    /// Whether each request's latency is recorded: not when only this
    /// proxy's own recorder would hold it and no admin listener can serve
    /// it (a `Cache-Status` parse and a sample a request, for nobody).
    pub(crate) record_metrics: bool,
}

impl Proxy {
    /// Answers one client request.
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        interim: Option<InterimSender>,
    ) -> Response<ProxyBody> {
        let began = Instant::now();
        let (mut parts, body) = request.into_parts();
        // `interim` (HTTP/1.1 requests): the upstream's 1xx responses to
        // this request go to this client (and only to it: a background
        // refresh's never do).
        // One `Option` for the line, tested once when the answer is ready.
        let logged = self.access_log.then(|| Logged {
            method: parts.method.clone(),
            target: parts.uri.clone(),
            started: began,
        });
        // RFC 9112 §3.2: a Host the key would read differently from the
        // upstream (two lines, userinfo, a path, non-ASCII, none on
        // HTTP/1.1) is refused; a valid one is forwarded as keyed.
        if let Err(why) = crate::target::settle(&mut parts) {
            tracing::debug!(%peer, %why, "bad request target");
            return bad_request(&self.cache, &why);
        }
        if self.tls {
            crate::target::on_tls(&mut parts);
        }
        // Only what the lookup needs happens before it; the rest of the
        // rewriting is for requests that go upstream (`forward`).
        let needs = crate::upstream::needs(&parts, self.underscores_in_headers);
        if needs.body {
            drop_get_body(&mut parts);
        }
        if needs.connection {
            if crate::upgrade::wanted(&parts) {
                // A WebSocket (or other) upgrade: passed through, uncached.
                let body = Timed::new(body, self.client_body_timeout, Side::Client);
                let upgrade = crate::upgrade::forward(
                    &self.cache,
                    &self.upstream,
                    &self.tunnels,
                    parts,
                    body,
                    peer,
                );
                let response = Box::pin(upgrade).await;
                if let Some(logged) = logged {
                    logged.write(peer, &response);
                }
                return response;
            }
            // Fields the client names in Connection never reach the
            // upstream, so they must not select a variant either: a
            // request naming Accept-Language there would otherwise store
            // the default-language answer under its own language.
            larder::policy::headers::strip_hop_by_hop(&mut parts.headers);
        }
        let body: UpstreamBody = if parts.method == Method::GET || parts.method == Method::HEAD {
            Either::Right(Empty::new())
        } else {
            Either::Left(Timed::new(body, self.client_body_timeout, Side::Client))
        };
        let rule = self.routes.rule_for(parts.uri.path());
        let policy = &rule.policy;
        // Before the lookup: a field the upstream never sees must not
        // select a variant either.
        if needs.unkeyed {
            strip_unkeyed(
                &mut parts,
                &rule.forward_headers,
                self.underscores_in_headers,
            );
        }
        let safe = parts.method == Method::GET || parts.method == Method::HEAD;
        // Requests with cookies bypass in the engine, as the route's
        // policy says (`Policy::bypass_cookies`).
        let lookup = if safe && rule.bypass {
            uncached(&self.cache, &parts, policy, NotStored::Rule)
        } else {
            if needs.cookie && rule.cookies == Cookies::Strip {
                parts.headers.remove(header::COOKIE);
            }
            // Unsafe methods go through the lookup even on bypass routes:
            // a successful one invalidates what is stored for its URI.
            self.cache.lookup(&parts, policy).await
        };
        let response = match lookup {
            Lookup::Respond(response) => CacheBody::for_response(response),
            // Boxed: the forward path's future is many times a hit's, and
            // would otherwise make every request's future that large.
            Lookup::Forward(fill) => {
                let keep = &rule.forward_headers;
                let forwarding = forward(
                    &self.cache,
                    &self.upstream,
                    parts,
                    body,
                    *fill,
                    peer,
                    keep,
                    interim,
                );
                Box::pin(forwarding).await
            }
            Lookup::Refresh(response, fill) => {
                // The client has its answer; the same request (a cacheable
                // one has no body to replay) refreshes the entry meanwhile.
                let upstream = self.upstream.clone();
                let cache = self.cache.clone();
                let keep = rule.forward_headers.clone();
                tokio::spawn(async move {
                    let refreshed =
                        forward(&cache, &upstream, parts, body, *fill, peer, &keep, None).await;
                    drain(refreshed.into_body()).await;
                });
                CacheBody::for_response(response)
            }
        };
        if self.record_metrics {
            crate::metrics::request_done(response.headers(), began);
        }
        if let Some(logged) = logged {
            logged.write(peer, &response);
        }
        response
    }
}

fn uncached(
    cache: &Cache,
    parts: &request::Parts,
    policy: &Arc<larder::Policy>,
    why: NotStored,
) -> Lookup {
    Lookup::Forward(Box::new(cache.forward_uncached(parts, policy, why)))
}

/// Sends a forwarded request upstream and gives the answer to the cache.
/// Kept apart from the dispatch so that a background refresh can run it
/// with a request of its own. The upstream's 1xx responses go to
/// `interim`'s client, if any.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward(
    cache: &Cache,
    upstream: &Upstream,
    mut parts: request::Parts,
    body: UpstreamBody,
    fill: Fill,
    peer: SocketAddr,
    keep: &[http::HeaderName],
    interim: Option<InterimSender>,
) -> Response<ProxyBody> {
    prepare_request(&mut parts, peer, keep);
    fill.prepare(&mut parts);
    if let Some(sender) = interim {
        // RFC 9110 §15.2: a proxy forwards 1xx responses. They go to the
        // client as they come and the cache never sees them: the final
        // response is stored as it is, without their fields.
        let mut request = Request::from_parts(parts, ());
        sender.arm();
        hyper::ext::on_informational(&mut request, move |informational| {
            sender.send(informational.status(), informational.headers());
        });
        parts = request.into_parts().0;
    }
    match upstream.send(parts, body).await {
        // A miss streams to its client as it comes, and is stored whole
        // when it ends within max_body_bytes.
        Ok(response) => fill.complete_streaming(response, body_failure).await,
        Err(error) => match error.failure() {
            Some(failure) => {
                // A stale entry where stale-if-error allows, else 502/504;
                // requests coalesced on this fill get the same, at once.
                tracing::warn!(%error, "upstream failed");
                CacheBody::for_response(fill.failed(failure))
            }
            None => {
                // The client's own body stalled: nothing to say of the
                // upstream, and nothing for others waiting on the key.
                drop(fill);
                tracing::debug!(%error, %peer, "client body timeout");
                error_response(cache.name(), StatusCode::REQUEST_TIMEOUT, "client-timeout")
            }
        },
    }
}

/// What a broken upstream body was: a stall (`between_bytes_timeout`) or
/// a break.
fn body_failure(error: &crate::timeout::BoxError) -> larder::Failure {
    larder::Failure::of(&**error)
}

/// A 400 that says what was wrong with the request's host.
fn bad_request(cache: &Cache, why: &crate::target::BadTarget) -> Response<ProxyBody> {
    let mut response = error_response(cache.name(), StatusCode::BAD_REQUEST, "bad-request");
    *response.body_mut() = CacheBody::full(Bytes::from(format!("400 Bad Request: {why}\n")));
    response
}

/// Reads a body to its end and drops it: an unread body would cost the
/// pooled upstream connection it arrives on.
async fn drain(mut body: ProxyBody) {
    use http_body_util::BodyExt;
    while let Some(Ok(_)) = body.frame().await {}
}

/// A response the proxy makes up itself, outside the cache (a bad
/// request, a failed upgrade, a stalled client), with `Cache-Status:
/// <name>; fwd=bypass; detail=<what>` (RFC 9211 §2.8).
pub(crate) fn error_response(cache: &str, status: StatusCode, detail: &str) -> Response<ProxyBody> {
    let text = format!("{status}\n");
    let mut response = Response::new(CacheBody::full(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let status = larder::policy::CacheStatus {
        name: cache,
        fwd: Some(larder::policy::Fwd::Bypass),
        detail: Some(detail),
        ..Default::default()
    };
    response
        .headers_mut()
        .insert("cache-status", status.append_to(None));
    response
}

/// What an access log line says of the request, taken before the
/// request is rewritten.
struct Logged {
    method: Method,
    target: http::Uri,
    started: Instant,
}

impl Logged {
    fn write(self, peer: SocketAddr, response: &Response<ProxyBody>) {
        let (method, target) = (self.method, self.target);
        let cache = response
            .headers()
            .get("cache-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(
            target: "larder::access",
            %peer,
            %method,
            %target,
            status = response.status().as_u16(),
            cache,
            micros = self.started.elapsed().as_micros() as u64,
        );
    }
}
