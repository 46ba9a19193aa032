//! The admin listener: purges, stats, Prometheus metrics, health.
//!
//! Off unless configured; on its own address (a warning at startup when
//! it is not a loopback one). Every endpoint but `GET /healthz` needs
//! `Authorization: Bearer <token>` (the scheme in any case, RFC 9110
//! §11.1); the token is compared as a fixed-size digest, so neither its
//! content nor its length shows in the time taken. Path segments and query
//! values are percent-decoded (`%2B` and `+` are both `+`); a known path
//! with the wrong method gets 405 and `Allow`.
//!
//! | request | does |
//! | --- | --- |
//! | `POST /purge/url?url=<absolute URL>[&namespace=<ns>]` | removes every stored variant of the URL (namespace: the one its route uses); `"stored"` says whether there was any |
//! | `POST /purge/namespace/<ns>` | removes everything in the namespace, on every proxy sharing the store |
//! | `POST /purge/tag/<tag>` | removes every entry tagged `<tag>` (by a route or by `Surrogate-Key` / `Cache-Tag`) |
//! | `GET /stats` | the cache's counters, JSON |
//! | `GET /metrics` | the same, Prometheus text format |
//! | `GET /healthz` | `ok` |

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use larder::{Cache, NotStored, Stats};

use crate::routes::Routes;

/// What the admin endpoints act on.
#[derive(Debug)]
pub(crate) struct Admin {
    pub cache: Cache,
    pub routes: Routes,
    /// The token's digest: what requests are compared against.
    pub token: TokenDigest,
}

type AdminResponse = Response<Full<Bytes>>;

impl Admin {
    pub async fn handle<B>(&self, request: Request<B>) -> AdminResponse {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        let Some(endpoint) = Endpoint::of(&path) else {
            return json(
                StatusCode::NOT_FOUND,
                r#"{"error":"no such endpoint"}"#.into(),
            );
        };
        if method != endpoint.method() {
            let mut response = json(
                StatusCode::METHOD_NOT_ALLOWED,
                r#"{"error":"method not allowed"}"#.into(),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(endpoint.allow()));
            return response;
        }
        if endpoint == Endpoint::Health {
            return text(StatusCode::OK, "text/plain", "ok\n".into());
        }
        if !self.authorized(request.headers()) {
            let mut response = json(
                StatusCode::UNAUTHORIZED,
                r#"{"error":"missing or wrong bearer token"}"#.into(),
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        match endpoint {
            Endpoint::Health => unreachable!("answered above"),
            Endpoint::Stats => json(StatusCode::OK, stats_json(&self.cache.stats())),
            Endpoint::Metrics => text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                prometheus(&self.cache.stats()),
            ),
            Endpoint::PurgeUrl => self.purge_url(request.uri().query().unwrap_or("")).await,
            Endpoint::PurgeNamespace => {
                let Some(ns) = segment(&path, "/purge/namespace/") else {
                    return bad_request("name the namespace: /purge/namespace/<namespace>");
                };
                match self.cache.purge_namespace(&ns).await {
                    Ok(generation) => json(
                        StatusCode::OK,
                        serde_json::json!({ "purged": "namespace", "namespace": ns, "generation": generation })
                            .to_string(),
                    ),
                    Err(e) => unavailable(&e),
                }
            }
            Endpoint::PurgeTag => {
                let Some(tag) = segment(&path, "/purge/tag/") else {
                    return bad_request("name the tag: /purge/tag/<tag>");
                };
                match self.cache.purge_tag(&tag).await {
                    Ok(count) => json(
                        StatusCode::OK,
                        serde_json::json!({ "purged": "tag", "tag": tag, "uris": count })
                            .to_string(),
                    ),
                    Err(e) => unavailable(&e),
                }
            }
        }
    }

    async fn purge_url(&self, query: &str) -> AdminResponse {
        let mut url = None;
        let mut namespace = None;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "url" => url = percent_decode(value),
                "namespace" => namespace = percent_decode(value),
                _ => {}
            }
        }
        let Some(url) = url else {
            return bad_request("give the URL: /purge/url?url=http%3A%2F%2Fexample.com%2Fitems");
        };
        let namespace = match namespace {
            Some(ns) => ns,
            None => {
                let path = url
                    .parse::<http::Uri>()
                    .map(|u| u.path().to_owned())
                    .unwrap_or_default();
                self.routes
                    .rule_for(&path)
                    .policy
                    .namespace_name()
                    .to_owned()
            }
        };
        match self.cache.purge_url(&namespace, &url).await {
            Ok(stored) => json(
                StatusCode::OK,
                serde_json::json!({ "purged": "url", "url": url, "namespace": namespace, "stored": stored })
                    .to_string(),
            ),
            Err(e @ larder::PurgeError::NotAbsolute(_)) => bad_request(&e.to_string()),
            Err(e) => unavailable(&e),
        }
    }

    fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()))
        else {
            return false;
        };
        self.token.matches(given)
    }
}

/// The admin endpoints, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Health,
    Stats,
    Metrics,
    PurgeUrl,
    PurgeNamespace,
    PurgeTag,
}

impl Endpoint {
    fn of(path: &str) -> Option<Endpoint> {
        Some(match path {
            "/healthz" => Endpoint::Health,
            "/stats" => Endpoint::Stats,
            "/metrics" => Endpoint::Metrics,
            "/purge/url" => Endpoint::PurgeUrl,
            p if p.starts_with("/purge/namespace/") => Endpoint::PurgeNamespace,
            p if p.starts_with("/purge/tag/") => Endpoint::PurgeTag,
            _ => return None,
        })
    }

    /// `Allow` for a 405 (RFC 9110 §15.5.6).
    fn allow(self) -> &'static str {
        if self.method() == Method::GET {
            "GET"
        } else {
            "POST"
        }
    }

    /// The one method it answers.
    fn method(self) -> Method {
        match self {
            Endpoint::Health | Endpoint::Stats | Endpoint::Metrics => Method::GET,
            Endpoint::PurgeUrl | Endpoint::PurgeNamespace | Endpoint::PurgeTag => Method::POST,
        }
    }
}

/// The credentials of an `Authorization: Bearer <token>` value: the
/// scheme in any case (RFC 9110 §11.1), then one or more spaces (§11.4).
///
/// ```
/// # use larder_proxy::admin::bearer;
/// assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
/// assert_eq!(bearer(b"bEARER  abc"), Some(&b"abc"[..]));
/// assert_eq!(bearer(b"Basic abc"), None);
/// assert_eq!(bearer(b"Bearerabc"), None);
/// ```
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

/// A token kept as its digest: a guess is hashed and the two fixed-size
/// digests compared in constant time, so the time taken depends on neither
/// how much of the guess was right nor how long either is.
///
/// ```
/// # use larder_proxy::admin::TokenDigest;
/// let token = TokenDigest::new("secret-token-0123456789");
/// assert!(token.matches(b"secret-token-0123456789"));
/// assert!(!token.matches(b"secret-token-0123456780"));
/// assert!(!token.matches(b"secret"));
/// ```
#[derive(Clone)]
pub struct TokenDigest(blake3::Hash);

impl TokenDigest {
    /// The digest of `token`.
    pub fn new(token: &str) -> Self {
        TokenDigest(blake3::hash(token.as_bytes()))
    }

    /// Whether `given` is the token.
    pub fn matches(&self, given: &[u8]) -> bool {
        // blake3::Hash's equality is constant-time over its 32 bytes.
        blake3::hash(given) == self.0
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// The rest of `path` after `prefix`, percent-decoded, if it is one
/// non-empty segment.
fn segment(path: &str, prefix: &str) -> Option<String> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    percent_decode(rest)
}

/// Decodes `%XX` escapes, and only those: `+` is a `+` (it means a space
/// only in HTML form bodies); `None` when the result is not UTF-8.
///
/// ```
/// # use larder_proxy::admin::percent_decode;
/// assert_eq!(percent_decode("http%3A%2F%2Fh%2Fa%3Fb%3D1").as_deref(), Some("http://h/a?b=1"));
/// assert_eq!(percent_decode("c++").as_deref(), Some("c++"));
/// assert_eq!(percent_decode("c%2B%2B").as_deref(), Some("c++"));
/// assert_eq!(percent_decode("%ff"), None);
/// ```
pub fn percent_decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn counters(stats: &Stats) -> [(&'static str, &'static str, u64); 13] {
    [
        (
            "hits",
            "Requests answered from a fresh stored response.",
            stats.hits,
        ),
        (
            "stale_hits",
            "Requests answered from a stale stored response.",
            stats.stale_hits,
        ),
        (
            "misses",
            "Cacheable requests forwarded to the upstream.",
            stats.misses,
        ),
        (
            "bypasses",
            "Requests forwarded without the cache.",
            stats.bypasses,
        ),
        (
            "collapsed",
            "Requests answered with another request's fetch.",
            stats.collapsed,
        ),
        (
            "refreshes",
            "Background refreshes started (stale-while-revalidate, early refresh).",
            stats.refreshes,
        ),
        (
            "revalidated",
            "Stored responses the upstream confirmed with a 304 and that were kept.",
            stats.revalidated,
        ),
        (
            "not_modified",
            "Requests answered 304 by the cache.",
            stats.not_modified,
        ),
        ("stores", "Responses stored.", stats.stores),
        (
            "invalidations",
            "URIs invalidated by unsafe methods.",
            stats.invalidations,
        ),
        (
            "store_errors",
            "Store operations that failed (served as misses).",
            stats.store_errors,
        ),
        (
            "corrupt_entries",
            "Stored values that could not be decoded.",
            stats.corrupt_entries,
        ),
        (
            "repaired",
            "Foreign or corrupt values under larder's keys that were replaced.",
            stats.repaired,
        ),
    ]
}

/// The counters as JSON.
fn stats_json(stats: &Stats) -> String {
    let mut map = serde_json::Map::new();
    for (name, _, value) in counters(stats) {
        map.insert(name.to_owned(), value.into());
    }
    let not_stored: serde_json::Map<String, serde_json::Value> = NotStored::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), stats.not_stored(*r).into()))
        .collect();
    map.insert("not_stored".to_owned(), not_stored.into());
    serde_json::Value::Object(map).to_string()
}

/// The counters in the Prometheus text exposition format.
fn prometheus(stats: &Stats) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (name, help, value) in counters(stats) {
        let _ = writeln!(out, "# HELP larder_{name}_total {help}");
        let _ = writeln!(out, "# TYPE larder_{name}_total counter");
        let _ = writeln!(out, "larder_{name}_total {value}");
    }
    out.push_str("# HELP larder_not_stored_total Responses not stored, by reason.\n");
    out.push_str("# TYPE larder_not_stored_total counter\n");
    for reason in NotStored::ALL {
        let _ = writeln!(
            out,
            "larder_not_stored_total{{reason=\"{}\"}} {}",
            reason.as_str(),
            stats.not_stored(reason)
        );
    }
    out
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> AdminResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json(status: StatusCode, body: String) -> AdminResponse {
    text(status, "application/json", body)
}

fn bad_request(why: &str) -> AdminResponse {
    json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({ "error": why }).to_string(),
    )
}

fn unavailable(e: &larder::PurgeError) -> AdminResponse {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({ "error": e.to_string() }).to_string(),
    )
}

/// Shares one `Admin` between connections.
pub(crate) type SharedAdmin = Arc<Admin>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_single_and_decoded() {
        assert_eq!(
            segment("/purge/tag/a%20b", "/purge/tag/").as_deref(),
            Some("a b")
        );
        assert_eq!(
            segment("/purge/tag/c++", "/purge/tag/").as_deref(),
            Some("c++")
        );
        assert_eq!(segment("/purge/tag/", "/purge/tag/"), None);
        assert_eq!(segment("/purge/tag/a/b", "/purge/tag/"), None);
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let text = prometheus(&Stats::default());
        assert!(text.contains("# TYPE larder_hits_total counter\nlarder_hits_total 0\n"));
        assert!(text.contains("larder_not_stored_total{reason=\"set-cookie\"} 0"));
    }

    #[test]
    fn stats_are_json_with_every_reason() {
        let v: serde_json::Value = serde_json::from_str(&stats_json(&Stats::default())).unwrap();
        assert_eq!(v["hits"], 0);
        assert_eq!(v["not_stored"]["cookie"], 0);
    }
}
