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

use crate::timeout::{Side, Timed};

/// The body sent upstream: the client's (bounded by
/// `client_body_timeout`), or none (GET/HEAD bodies are dropped).
pub(crate) type UpstreamBody = Either<Timed<Incoming>, Empty<Bytes>>;

/// The upstream's response body, bounded by `between_bytes_timeout`.
pub(crate) type ResponseBody = Timed<Incoming>;

/// Exact names of request fields that frameworks read as the request's
/// host, scheme, method or client, besides the families [`is_unkeyed`]
/// matches by shape.
const UNKEYED_NAMES: [&str; 11] = [
    "forwarded",
    "x-host",
    "front-end-https",
    "x-http-method",
    "x-url-scheme",
    "x-scheme",
    "client-ip",
    "x-remote-addr",
    "x-envoy-external-address",
    "cf-connecting-ipv6",
    "x-arr-ssl",
];

/// Whether a request field is an unkeyed input: a field frameworks and
/// proxy-fix middlewares read as the request's host, scheme, prefix, path,
/// method or client address (werkzeug's `ProxyFix`, Rails, Django,
/// Express's `trust proxy`, IIS). A client that could send one would change
/// what the upstream answers without changing the key, so the proxy
/// removes them from requests that may be served from or stored in the
/// cache, and sets the forwarding fields it owns itself.
///
/// The families: every `x-forwarded*` (`-host`, `-prefix`, `-proto`,
/// `-uri`, `-ssl`, …), `x-original-*`, `x-rewrite-*`, `x-*-override`,
/// client-address fields (`x-*-ip`, `*-client-ip`, `*-connecting-ip`:
/// `x-real-ip`, `true-client-ip`, `cf-connecting-ip`, …), and `forwarded`,
/// `x-host`, `front-end-https`, `x-http-method`, `x-url-scheme`,
/// `x-scheme`, `client-ip`, `x-remote-addr`, `x-envoy-external-address`,
/// `cf-connecting-ipv6`, `x-arr-ssl`.
///
/// ```
/// use larder_proxy::upstream::is_unkeyed;
///
/// for name in ["x-forwarded-prefix", "x-original-host", "x-http-host-override", "true-client-ip", "x-host"] {
///     assert!(is_unkeyed(name), "{name}");
/// }
/// assert!(!is_unkeyed("accept-language"));
/// assert!(!is_unkeyed("x-request-id"));
/// ```
pub fn is_unkeyed(name: &str) -> bool {
    // Field names are lowercase (HeaderName); most are not `x-`.
    if let Some(rest) = name.strip_prefix("x-") {
        return rest.starts_with("forwarded")
            || rest.starts_with("original-")
            || rest.starts_with("rewrite-")
            || rest.ends_with("-override")
            || rest.ends_with("-ip")
            || UNKEYED_NAMES.contains(&name);
    }
    name.ends_with("client-ip") || name.ends_with("connecting-ip") || UNKEYED_NAMES.contains(&name)
}

/// Removes the request fields that could shape the upstream's answer
/// without being part of the key: on GET and HEAD (the requests the cache
/// may answer or store) every [`is_unkeyed`] field; on every request,
/// names holding `_` unless `underscores` (nginx's `underscores_in_headers
/// off`: CGI, WSGI and Rack servers read `X_Forwarded_Host` as
/// `X-Forwarded-Host`). Names in `keep` stay: the route forwards them
/// (`forward_headers`) or keys them (`vary`).
///
/// ```
/// use larder_proxy::upstream::strip_unkeyed;
///
/// let (mut parts, ()) = http::Request::get("/a")
///     .header("x-forwarded-prefix", "//evil.example")
///     .header("x_forwarded_host", "evil.example")
///     .header("accept", "text/html")
///     .body(())
///     .unwrap()
///     .into_parts();
/// strip_unkeyed(&mut parts, &[], false);
/// let left: Vec<&str> = parts.headers.keys().map(|n| n.as_str()).collect();
/// assert_eq!(left, ["accept"]);
/// ```
pub fn strip_unkeyed(parts: &mut request::Parts, keep: &[HeaderName], underscores: bool) {
    let cacheable = parts.method == Method::GET || parts.method == Method::HEAD;
    let unwanted = |name: &HeaderName| {
        let text = name.as_str();
        ((!underscores && text.contains('_')) || (cacheable && is_unkeyed(text)))
            && !keep.contains(name)
    };
    // Most requests carry none: look before allocating.
    if !parts.headers.keys().any(unwanted) {
        return;
    }
    let names: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|n| unwanted(n))
        .cloned()
        .collect();
    for name in names {
        parts.headers.remove(name);
    }
}

/// What a request's fields call for before its lookup, found in one pass
/// over their names: most requests need none of the rewriting steps, and
/// asking the map for each field would cost a hash lookup apiece.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Needs {
    /// `Content-Length` or `Transfer-Encoding`: for [`drop_get_body`].
    pub body: bool,
    /// `Connection`: an upgrade, or fields it names to strip.
    pub connection: bool,
    /// A name [`strip_unkeyed`] removes unless the route keeps it.
    pub unkeyed: bool,
    /// `Cookie`.
    pub cookie: bool,
}

/// [`Needs`] of a request, with `underscores` as for [`strip_unkeyed`].
pub(crate) fn needs(parts: &request::Parts, underscores: bool) -> Needs {
    let cacheable = parts.method == Method::GET || parts.method == Method::HEAD;
    let mut needs = Needs::default();
    for name in parts.headers.keys() {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            needs.body = true;
        } else if name == header::CONNECTION {
            needs.connection = true;
        } else if name == header::COOKIE {
            needs.cookie = true;
        } else {
            let text = name.as_str();
            if (!underscores && text.contains('_')) || (cacheable && is_unkeyed(text)) {
                needs.unkeyed = true;
            }
        }
    }
    needs
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Why the upstream gave no response.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// No connection, or it broke before the response headers: 502.
    Failed(String),
    /// No response headers within the response timeout: 504.
    Timeout,
    /// The client's request body stalled (`client_body_timeout`): 408.
    ClientStalled,
}

impl UpstreamError {
    /// What the client is told: 502, 504, or 408 when its own body stalled.
    pub(crate) fn failure(&self) -> Option<larder::Failure> {
        match self {
            UpstreamError::Failed(_) => Some(larder::Failure::Broken),
            UpstreamError::Timeout => Some(larder::Failure::Timeout),
            UpstreamError::ClientStalled => None,
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Failed(why) => f.write_str(why),
            UpstreamError::Timeout => f.write_str("no response headers within upstream_timeout"),
            UpstreamError::ClientStalled => {
                f.write_str("the client's request body stalled (client_body_timeout)")
            }
        }
    }
}

/// The upstream: where it is and the pooled connections that reach it
/// (`pool.rs`).
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    pool: crate::pool::Pool,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    timeout: Duration,
    between_bytes: Duration,
}

impl Upstream {
    /// A client for the configured upstream (`http://` or `https://`);
    /// an error says which TLS file could not be used.
    pub(crate) fn new(config: &crate::Config) -> Result<Upstream, String> {
        let base = &config.upstream;
        let https = base.scheme() == Some(&http::uri::Scheme::HTTPS);
        let settings = crate::pool::PoolSettings {
            connect_timeout: config.connect_timeout,
            idle_timeout: config.upstream_idle_timeout,
            // Each client connection may hold one upstream connection:
            // more idle ones than that would only hold descriptors.
            max_idle: config.max_connections.min(1024),
            #[cfg(feature = "tls")]
            tls: https
                .then(|| crate::tls::client_config(&config.upstream_tls))
                .transpose()?,
        };
        #[cfg(not(feature = "tls"))]
        if https {
            return Err("https upstreams need the `tls` feature".into());
        }
        Ok(Upstream {
            pool: crate::pool::Pool::new(&settings),
            scheme: base.scheme().cloned().unwrap_or(http::uri::Scheme::HTTP),
            authority: base.authority().cloned().expect("checked by the config"),
            timeout: config.upstream_timeout,
            between_bytes: config.between_bytes_timeout,
        })
    }

    /// Sends the request and waits for the response headers
    /// (`upstream_timeout`); the body streams after, each wait for more of
    /// it bounded by `between_bytes_timeout` (large downloads take time,
    /// stalled ones end).
    pub(crate) async fn send(
        &self,
        parts: request::Parts,
        body: UpstreamBody,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let mut response = self.send_raw(parts, body).await?;
        larder::policy::headers::strip_hop_by_hop(response.headers_mut());
        let limit = self.between_bytes;
        Ok(response.map(|body| Timed::new(body, limit, Side::Upstream)))
    }

    /// The longest wait for more of a response body.
    pub(crate) fn between_bytes(&self) -> Duration {
        self.between_bytes
    }

    /// [`Upstream::send`], leaving the response's hop-by-hop fields in
    /// (an upgrade needs its `Upgrade`).
    pub(crate) async fn send_raw(
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
        // Whatever the client spoke (HTTP/2 too), the upstream gets HTTP/1.1.
        parts.version = http::Version::HTTP_11;
        let request = Request::from_parts(parts, body);
        match tokio::time::timeout(self.timeout, self.pool.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Err(e)) if crate::timeout::client_stalled(&*e) => Err(UpstreamError::ClientStalled),
            Ok(Err(e)) => Err(UpstreamError::Failed(error_chain(&*e))),
            Ok(Ok(response)) => Ok(response),
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

/// Rewrites a request for the upstream, once the cache has decided to
/// forward it: hop-by-hop fields out, `Via` appended, and the forwarding
/// fields larder owns set from the connection and the validated `Host`:
/// `X-Forwarded-For` and `Forwarded` get the peer appended (on GET and
/// HEAD nothing else is left in them: [`strip_unkeyed`]),
/// `X-Forwarded-Proto: http` (`https` when the request came over TLS), `X-Forwarded-Host` (the `Host` the key
/// used) and `X-Real-IP` (the peer) are set. A field in `keep` (the
/// route's `forward_headers`) is left as the client sent it, but for the
/// peer appended to the two lists. Returns whether the request's body is to
/// be dropped (a GET or HEAD with one: the key does not cover bodies).
///
/// ```
/// use larder_proxy::upstream::prepare_request;
///
/// let (mut parts, ()) = http::Request::get("/a")
///     .header("host", "example.com")
///     .header("content-length", "3")
///     .body(())
///     .unwrap()
///     .into_parts();
/// let drop_body = prepare_request(&mut parts, "192.0.2.7:5000".parse().unwrap(), &[]);
/// assert!(drop_body);
/// assert!(!parts.headers.contains_key("content-length"));
/// assert_eq!(parts.headers["x-forwarded-for"], "192.0.2.7");
/// assert_eq!(parts.headers["x-forwarded-proto"], "http");
/// assert_eq!(parts.headers["x-forwarded-host"], "example.com");
/// assert_eq!(parts.headers["forwarded"], "for=192.0.2.7;host=\"example.com\";proto=http");
/// assert_eq!(parts.headers["x-real-ip"], "192.0.2.7");
/// ```
pub fn prepare_request(parts: &mut request::Parts, peer: SocketAddr, keep: &[HeaderName]) -> bool {
    let cacheable = parts.method == Method::GET || parts.method == Method::HEAD;
    // Read before Transfer-Encoding goes with the hop-by-hop fields.
    let drop_body = cacheable
        && (parts.headers.contains_key(header::CONTENT_LENGTH)
            || parts.headers.contains_key(header::TRANSFER_ENCODING));
    larder::policy::headers::strip_hop_by_hop(&mut parts.headers);
    // `https` when the request came over TLS (`target::on_tls`).
    let https = parts.uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    set_forwarding(&mut parts.headers, peer, keep, https);
    // RFC 9110 §7.6.3: a proxy says so in every request it forwards,
    // with the protocol version it received.
    let via = match parts.version {
        http::Version::HTTP_10 => "1.0 larder",
        http::Version::HTTP_2 => "2 larder",
        _ => "1.1 larder",
    };
    parts
        .headers
        .append(header::VIA, HeaderValue::from_static(via));
    if drop_body {
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    drop_body
}

fn set_forwarding(headers: &mut HeaderMap, peer: SocketAddr, keep: &[HeaderName], https: bool) {
    let proto = if https { "https" } else { "http" };
    let ip = peer.ip().to_string();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    append_to_list(headers, X_FORWARDED_FOR, &ip);
    // RFC 7239 §6: an IPv6 node is quoted and bracketed.
    let mut element = match peer.ip() {
        std::net::IpAddr::V4(_) => format!("for={ip}"),
        std::net::IpAddr::V6(_) => format!("for=\"[{ip}]\""),
    };
    if let Some(host) = &host {
        // A validated host holds no `"` or `\`: quoting is enough.
        element.push_str(&format!(";host=\"{host}\""));
    }
    element.push_str(";proto=");
    element.push_str(proto);
    append_to_list(headers, header::FORWARDED, &element);
    if !keep.contains(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !keep.contains(&X_FORWARDED_HOST) {
        match host.and_then(|h| HeaderValue::from_str(&h).ok()) {
            Some(v) => {
                headers.insert(X_FORWARDED_HOST, v);
            }
            None => {
                headers.remove(X_FORWARDED_HOST);
            }
        }
    }
    if !keep.contains(&X_REAL_IP) {
        if let Ok(v) = HeaderValue::from_str(&ip) {
            headers.insert(X_REAL_IP, v);
        }
    }
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

/// Appends `item` to a list field, folding its lines into one.
fn append_to_list(headers: &mut HeaderMap, name: HeaderName, item: &str) {
    let mut value = String::new();
    for line in headers.get_all(&name) {
        if let Ok(line) = line.to_str() {
            value.push_str(line);
            value.push_str(", ");
        }
    }
    value.push_str(item);
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_names_what_the_rewriting_steps_would_change() {
        let parts = |method: Method, names: &[&str]| {
            let mut b = http::Request::builder().method(method).uri("/a");
            for n in names {
                b = b.header(*n, "1");
            }
            b.body(()).unwrap().into_parts().0
        };
        let plain = parts(Method::GET, &["host", "accept", "x-request-id"]);
        assert_eq!(needs(&plain, false), Needs::default());
        let all = parts(
            Method::GET,
            &["content-length", "connection", "cookie", "x-forwarded-host"],
        );
        let want = Needs {
            body: true,
            connection: true,
            unkeyed: true,
            cookie: true,
        };
        assert_eq!(needs(&all, false), want);
        let chunked = parts(Method::GET, &["transfer-encoding"]);
        assert!(needs(&chunked, false).body);
        // Underscores count unless allowed; unkeyed names only on GET/HEAD
        // (as strip_unkeyed removes them).
        let under = parts(Method::POST, &["x_custom"]);
        assert!(needs(&under, false).unkeyed);
        assert!(!needs(&under, true).unkeyed);
        let post = parts(Method::POST, &["x-forwarded-host"]);
        assert!(!needs(&post, false).unkeyed);
        assert!(needs(&parts(Method::HEAD, &["x-real-ip"]), true).unkeyed);
    }

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    const PEER: &str = "203.0.113.9:4000";

    fn names(p: &request::Parts) -> Vec<&str> {
        let mut names: Vec<&str> = p.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// Every field the issue found reaching the origin and coming back
    /// from cache, and their cousins.
    const ATTACKS: [&str; 31] = [
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-forwarded-scheme",
        "x-forwarded-server",
        "x-forwarded-prefix",
        "x-forwarded-uri",
        "x-forwarded-path",
        "x-forwarded-ssl",
        "x-forwarded-for",
        "x-forwarded",
        "forwarded",
        "x-original-url",
        "x-original-uri",
        "x-original-host",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-host-override",
        "x-method-override",
        "x-http-method",
        "x-host",
        "front-end-https",
        "x-real-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "client-ip",
        "x-originating-ip",
        "x-url-scheme",
    ];

    #[test]
    fn unkeyed_families_leave_cacheable_requests() {
        let mut fields: Vec<(&str, &str)> = ATTACKS.iter().map(|n| (*n, "x")).collect();
        fields.push(("accept", "*/*"));
        fields.push(("x-request-id", "1"));
        for method in [Method::GET, Method::HEAD] {
            let mut p = parts(method, "/", &fields);
            strip_unkeyed(&mut p, &[], false);
            assert_eq!(names(&p), ["accept", "x-request-id"]);
        }
        // An unsafe request is never served from cache: its fields pass.
        let mut p = parts(Method::POST, "/", &fields);
        strip_unkeyed(&mut p, &[], false);
        assert_eq!(p.headers.len(), fields.len());
    }

    #[test]
    fn names_with_underscores_are_dropped_unless_allowed() {
        let fields = [
            ("x_forwarded_host", "evil"),
            ("my_header", "1"),
            ("accept", "a"),
        ];
        for method in [Method::GET, Method::POST] {
            let mut p = parts(method, "/", &fields);
            strip_unkeyed(&mut p, &[], false);
            assert_eq!(names(&p), ["accept"]);
        }
        let mut p = parts(Method::GET, "/", &fields);
        strip_unkeyed(&mut p, &[], true);
        // The operator's switch (`underscores_in_headers = true`): they pass.
        assert_eq!(p.headers.len(), 3);
    }

    #[test]
    fn a_route_keeps_the_fields_it_forwards_or_keys() {
        let keep = [
            HeaderName::from_static("x-forwarded-prefix"),
            HeaderName::from_static("my_header"),
        ];
        let mut p = parts(
            Method::GET,
            "/",
            &[
                ("x-forwarded-prefix", "/app"),
                ("x-forwarded-host", "evil"),
                ("my_header", "1"),
            ],
        );
        strip_unkeyed(&mut p, &keep, false);
        assert_eq!(names(&p), ["my_header", "x-forwarded-prefix"]);
    }

    #[test]
    fn larder_sets_the_forwarding_fields_it_owns() {
        let mut p = parts(Method::GET, "/", &[("host", "app.example:8080")]);
        prepare_request(&mut p, PEER.parse().unwrap(), &[]);
        assert_eq!(p.headers["x-forwarded-for"], "203.0.113.9");
        assert_eq!(p.headers["x-forwarded-proto"], "http");
        assert_eq!(p.headers["x-forwarded-host"], "app.example:8080");
        assert_eq!(p.headers["x-real-ip"], "203.0.113.9");
        assert_eq!(
            p.headers["forwarded"],
            "for=203.0.113.9;host=\"app.example:8080\";proto=http"
        );
        // An IPv6 peer is quoted in Forwarded (RFC 7239 §6); no Host, no host=.
        let mut p = parts(Method::GET, "/", &[]);
        prepare_request(&mut p, "[2001:db8::1]:1".parse().unwrap(), &[]);
        assert_eq!(p.headers["forwarded"], "for=\"[2001:db8::1]\";proto=http");
        assert!(!p.headers.contains_key("x-forwarded-host"));
    }

    #[test]
    fn forwarding_lists_get_the_peer_appended() {
        // What is left of them: an unsafe request's, or a kept field.
        let mut p = parts(
            Method::POST,
            "/",
            &[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-for", "2.2.2.2"),
                ("x-forwarded-host", "client.example"),
            ],
        );
        prepare_request(&mut p, "[::1]:1".parse().unwrap(), &[]);
        assert_eq!(p.headers["x-forwarded-for"], "1.1.1.1, 2.2.2.2, ::1");
        assert!(
            !p.headers.contains_key("x-forwarded-host"),
            "larder's own, from Host"
        );
        let keep = [X_FORWARDED_PROTO, X_FORWARDED_HOST];
        let mut p = parts(
            Method::GET,
            "/",
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "lb.example"),
            ],
        );
        prepare_request(&mut p, PEER.parse().unwrap(), &keep);
        assert_eq!(p.headers["x-forwarded-proto"], "https", "kept as sent");
        assert_eq!(p.headers["x-forwarded-host"], "lb.example", "kept as sent");
    }

    #[test]
    fn via_is_appended_9110_7_6_3() {
        let mut p = parts(Method::GET, "/", &[("via", "1.1 edge")]);
        prepare_request(&mut p, PEER.parse().unwrap(), &[]);
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
        prepare_request(&mut p, PEER.parse().unwrap(), &[]);
        for name in ["connection", "x-secret", "te", "upgrade"] {
            assert!(!p.headers.contains_key(name), "{name}");
        }
    }

    #[test]
    fn bodies_of_unsafe_methods_stay() {
        let mut p = parts(Method::POST, "/", &[("content-length", "3")]);
        assert!(!prepare_request(&mut p, PEER.parse().unwrap(), &[]));
        assert_eq!(p.headers["content-length"], "3");
        let mut p = parts(Method::GET, "/", &[("transfer-encoding", "chunked")]);
        assert!(prepare_request(&mut p, PEER.parse().unwrap(), &[]));
    }
}
