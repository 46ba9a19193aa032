//! Talking to the upstream: a pooled keep-alive client with connect and
//! response timeouts, and the header rewriting a reverse proxy owes both
//! sides (hop-by-hop fields, forwarding fields, `Host`).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{request, HeaderMap, Method, Request, Response, Uri};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The body sent upstream: the client's, or none (GET/HEAD bodies are dropped).
pub(crate) type UpstreamBody = Either<Incoming, Empty<Bytes>>;

/// Request fields that would let a client change what the upstream answers
/// without changing the cache key: removed from cacheable requests, so a
/// poisoned answer cannot be stored under an innocent key.
///
/// ```
/// assert!(larder_proxy::upstream::UNKEYED.contains(&"x-forwarded-host"));
/// ```
pub const UNKEYED: [&str; 11] = [
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-forwarded-scheme",
    "x-forwarded-server",
    "forwarded",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Why the upstream gave no response.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// No connection, or it broke before the response headers: 502.
    Failed(String),
    /// No response headers within the response timeout: 504.
    Timeout,
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Failed(why) => f.write_str(why),
            UpstreamError::Timeout => f.write_str("no response headers within upstream_timeout"),
        }
    }
}

/// The upstream: where it is and the pooled client that reaches it.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    client: Client<HttpConnector, UpstreamBody>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    timeout: Duration,
}

impl Upstream {
    /// A client for `base` (`http://host:port`).
    pub(crate) fn new(base: &Uri, connect_timeout: Duration, timeout: Duration) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            // Keep the Host the client sent: it is what the cache keyed.
            .set_host(false)
            .build(connector);
        Upstream {
            client,
            scheme: base.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP),
            authority: base.authority().cloned().expect("checked by the config"),
            timeout,
        }
    }

    /// Sends the request and waits for the response headers (the body
    /// streams after, unbounded by the timeout: large downloads take time).
    pub(crate) async fn send(
        &self,
        mut parts: request::Parts,
        body: UpstreamBody,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| UpstreamError::Failed(e.to_string()))?;
        if !parts.headers.contains_key(header::HOST) {
            // An HTTP/1.0 client without Host: the upstream's own name.
            if let Ok(v) = HeaderValue::from_str(self.authority.as_str()) {
                parts.headers.insert(header::HOST, v);
            }
        }
        let request = Request::from_parts(parts, body);
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Err(e)) => Err(UpstreamError::Failed(error_chain(&e))),
            Ok(Ok(mut response)) => {
                larder::policy::headers::strip_hop_by_hop(response.headers_mut());
                Ok(response)
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Rewrites a client's request for the upstream, before the cache sees it:
/// hop-by-hop fields out; on cacheable methods the unkeyed forwarding
/// fields out; `Host` set from an absolute-form target (the cache keys on
/// it, so the upstream must see the same); `X-Forwarded-For` gets the peer
/// appended and `X-Forwarded-Proto` says `http`. Returns whether the
/// request's body is to be dropped (a GET or HEAD with one: the key does
/// not cover bodies).
///
/// ```
/// use larder_proxy::upstream::prepare_request;
///
/// let (mut parts, ()) = http::Request::get("/a")
///     .header("host", "example.com")
///     .header("x-forwarded-host", "evil.example")
///     .header("x-forwarded-for", "10.0.0.1")
///     .header("content-length", "3")
///     .body(())
///     .unwrap()
///     .into_parts();
/// let drop_body = prepare_request(&mut parts, "192.0.2.7:5000".parse().unwrap());
/// assert!(drop_body);
/// assert!(!parts.headers.contains_key("x-forwarded-host"));
/// assert!(!parts.headers.contains_key("content-length"));
/// assert_eq!(parts.headers["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
/// assert_eq!(parts.headers["x-forwarded-proto"], "http");
/// ```
pub fn prepare_request(parts: &mut request::Parts, peer: SocketAddr) -> bool {
    let cacheable = parts.method == Method::GET || parts.method == Method::HEAD;
    // Read before Transfer-Encoding goes with the hop-by-hop fields.
    let drop_body = cacheable
        && (parts.headers.contains_key(header::CONTENT_LENGTH)
            || parts.headers.contains_key(header::TRANSFER_ENCODING));
    larder::policy::headers::strip_hop_by_hop(&mut parts.headers);
    if let Some(authority) = parts.uri.authority() {
        if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(header::HOST, v);
        }
    }
    if cacheable {
        for name in UNKEYED {
            parts.headers.remove(name);
        }
    }
    append_forwarded_for(&mut parts.headers, peer);
    // RFC 9110 §7.6.3: a proxy says so in every request it forwards.
    let via = match parts.version {
        http::Version::HTTP_10 => "1.0 larder",
        _ => "1.1 larder",
    };
    parts
        .headers
        .append(header::VIA, HeaderValue::from_static(via));
    parts
        .headers
        .insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if drop_body {
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    drop_body
}

/// Drops the body of a GET or HEAD (its headers, here; the caller sends
/// none): the cache key does not cover bodies. Returns whether there was
/// one. [`prepare_request`] does this too; the proxy calls this alone
/// before the lookup, so that hits skip the rest of the rewriting.
///
/// ```
/// use larder_proxy::upstream::drop_get_body;
///
/// let (mut parts, ()) = http::Request::get("/a").header("content-length", "3").body(()).unwrap().into_parts();
/// assert!(drop_get_body(&mut parts));
/// assert!(!parts.headers.contains_key("content-length"));
/// ```
pub fn drop_get_body(parts: &mut request::Parts) -> bool {
    let cacheable = parts.method == Method::GET || parts.method == Method::HEAD;
    let has_body = parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    if cacheable && has_body {
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::TRANSFER_ENCODING);
        return true;
    }
    false
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let ip = peer.ip().to_string();
    let mut value = String::new();
    for line in headers.get_all(&X_FORWARDED_FOR) {
        if let Ok(line) = line.to_str() {
            value.push_str(line);
            value.push_str(", ");
        }
    }
    value.push_str(&ip);
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    const PEER: &str = "203.0.113.9:4000";

    #[test]
    fn unkeyed_forwarding_fields_leave_cacheable_requests() {
        let fields: Vec<(&str, &str)> = UNKEYED.iter().map(|n| (*n, "x")).collect();
        let mut p = parts(Method::GET, "/", &fields);
        prepare_request(&mut p, PEER.parse().unwrap());
        for name in UNKEYED {
            if name == "x-forwarded-proto" {
                assert_eq!(p.headers[name], "http", "overwritten from the connection");
            } else {
                assert!(!p.headers.contains_key(name), "{name}");
            }
        }
        // An unsafe request is never served from cache: its fields pass.
        let mut p = parts(Method::POST, "/", &fields);
        prepare_request(&mut p, PEER.parse().unwrap());
        assert_eq!(p.headers["x-http-method-override"], "x");
    }

    #[test]
    fn forwarded_for_gets_the_peer_appended() {
        let mut p = parts(Method::GET, "/", &[]);
        prepare_request(&mut p, PEER.parse().unwrap());
        assert_eq!(p.headers["x-forwarded-for"], "203.0.113.9");
        let mut p = parts(
            Method::GET,
            "/",
            &[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-for", "2.2.2.2"),
            ],
        );
        prepare_request(&mut p, "[::1]:1".parse().unwrap());
        assert_eq!(p.headers["x-forwarded-for"], "1.1.1.1, 2.2.2.2, ::1");
    }

    #[test]
    fn via_is_appended_9110_7_6_3() {
        let mut p = parts(Method::GET, "/", &[("via", "1.1 edge")]);
        prepare_request(&mut p, PEER.parse().unwrap());
        let via: Vec<_> = p.headers.get_all("via").iter().collect();
        assert_eq!(via, ["1.1 edge", "1.1 larder"]);
    }

    #[test]
    fn hop_by_hop_fields_are_not_forwarded_9110_7_6_1() {
        let mut p = parts(
            Method::GET,
            "/",
            &[
                ("connection", "x-secret"),
                ("x-secret", "1"),
                ("te", "trailers"),
                ("upgrade", "h2c"),
            ],
        );
        prepare_request(&mut p, PEER.parse().unwrap());
        for name in ["connection", "x-secret", "te", "upgrade"] {
            assert!(!p.headers.contains_key(name), "{name}");
        }
    }

    #[test]
    fn an_absolute_target_becomes_the_host_the_upstream_sees() {
        let mut p = parts(Method::GET, "http://Real.example/a", &[("host", "other")]);
        prepare_request(&mut p, PEER.parse().unwrap());
        assert_eq!(p.headers["host"], "Real.example");
    }

    #[test]
    fn bodies_of_unsafe_methods_stay() {
        let mut p = parts(Method::POST, "/", &[("content-length", "3")]);
        assert!(!prepare_request(&mut p, PEER.parse().unwrap()));
        assert_eq!(p.headers["content-length"], "3");
        let mut p = parts(Method::GET, "/", &[("transfer-encoding", "chunked")]);
        assert!(prepare_request(&mut p, PEER.parse().unwrap()));
    }
}
