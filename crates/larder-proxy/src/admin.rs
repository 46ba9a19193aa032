//! The admin listener: purges, stats, Prometheus metrics, health.
//!
//! Off unless configured; on its own address (a warning at startup when
//! it is not a loopback one). Every endpoint but `GET /healthz` needs
//! `Authorization: Bearer <token>` (the scheme in any case, RFC 9110
//! §11.1); the token is compared as a fixed-size digest, so neither its
//! content nor its length shows in the time taken. Path segments and query
//! values are percent-decoded (`%2B` and `+` are both `+`); a known path
//! with the wrong method gets 405 and `Allow`. Every error is JSON,
//! `{"error": "..."}`, with its status (400, 401, 404, 405, 503). An
//! [axum] router serves them on the proxy's own listener code (its
//! connection limit and graceful stop).
//!
//! | request | does |
//! | --- | --- |
//! | `POST /purge/url?url=<absolute URL>[&namespace=<ns>]` | removes every stored variant of the URL (namespace: the one its route uses); `"stored"` says whether there was any |
//! | `POST /purge/namespace/<ns>` | removes everything in the namespace, on every proxy sharing the store |
//! | `POST /purge/tag/<tag>` | removes every entry tagged `<tag>` (by a route or by `Surrogate-Key` / `Cache-Tag`) |
//! | `GET /stats` | the cache's counters, JSON |
//! | `GET /metrics` | everything the engine reports (the `larder` crate's `metrics` feature) and the proxy's request latency by outcome, Prometheus text format |
//! | `GET /healthz` | `ok` |

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{request, StatusCode};
use http_body_util::Full;
use larder::{Cache, Stats};

use crate::routes::Routes;
use crate::Current;

/// What the admin endpoints act on (swapped whole on reload).
#[derive(Debug)]
pub(crate) struct Admin {
    pub cache: Cache,
    pub routes: Routes,
    /// The token's digest: what requests are compared against.
    pub token: TokenDigest,
}

/// The admin state the router's handlers read: the current [`Admin`].
pub(crate) type SharedAdmin = Arc<Current<Admin>>;

type AdminResponse = http::Response<Full<Bytes>>;

/// The admin listener's router: each endpoint with its one method (a
/// known path with another gets 405, `Allow` and a JSON error), JSON
/// errors for everything else that goes wrong.
pub(crate) fn router(admin: SharedAdmin) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/purge/url", post(purge_url))
        .route("/purge/namespace/{namespace}", post(purge_namespace))
        .route("/purge/tag/{tag}", post(purge_tag))
        .route("/purge/namespace/", post(name_the_namespace))
        .route("/purge/tag/", post(name_the_tag))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(admin)
}

/// The current admin state, for a request whose bearer token matched:
/// the extractor every endpoint but `/healthz` takes.
struct Authorized(Arc<Admin>);

impl FromRequestParts<SharedAdmin> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut request::Parts,
        state: &SharedAdmin,
    ) -> Result<Self, Self::Rejection> {
        let admin = state.get();
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()));
        if given.is_some_and(|given| admin.token.matches(given)) {
            return Ok(Authorized(admin));
        }
        let mut response = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Err(response)
    }
}

async fn health() -> Response {
    text(StatusCode::OK, "text/plain", "ok\n".into()).into_response()
}

async fn stats(Authorized(admin): Authorized) -> Response {
    json(StatusCode::OK, stats_json(&admin.cache.stats())).into_response()
}

async fn metrics(Authorized(_): Authorized) -> Response {
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        crate::metrics::render(),
    )
    .into_response()
}

async fn purge_namespace(
    Authorized(admin): Authorized,
    ns: Result<Path<String>, PathRejection>,
) -> Response {
    let ns = match ns {
        Ok(Path(ns)) => ns,
        Err(e) => return path_error(&e),
    };
    match admin.cache.purge_namespace(&ns).await {
        Ok(generation) => json(
            StatusCode::OK,
            serde_json::json!({ "purged": "namespace", "namespace": ns, "generation": generation })
                .to_string(),
        ),
        Err(e) => unavailable(&e),
    }
    .into_response()
}

async fn purge_tag(
    Authorized(admin): Authorized,
    tag: Result<Path<String>, PathRejection>,
) -> Response {
    let tag = match tag {
        Ok(Path(tag)) => tag,
        Err(e) => return path_error(&e),
    };
    match admin.cache.purge_tag(&tag).await {
        Ok(count) => json(
            StatusCode::OK,
            serde_json::json!({ "purged": "tag", "tag": tag, "uris": count }).to_string(),
        ),
        Err(e) => unavailable(&e),
    }
    .into_response()
}

async fn name_the_namespace(Authorized(_): Authorized) -> Response {
    bad_request("name the namespace: /purge/namespace/<namespace>").into_response()
}

async fn name_the_tag(Authorized(_): Authorized) -> Response {
    bad_request("name the tag: /purge/tag/<tag>").into_response()
}

async fn purge_url(Authorized(admin): Authorized, RawQuery(query): RawQuery) -> Response {
    let mut url = None;
    let mut namespace = None;
    for pair in query.as_deref().unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "url" => &mut url,
            "namespace" => &mut namespace,
            _ => continue,
        };
        match percent_decode(value) {
            Some(v) => *slot = Some(v),
            None => {
                return bad_request(&format!(
                    "{name}: the percent-encoded bytes are not UTF-8 text"
                ))
                .into_response()
            }
        }
    }
    let Some(url) = url else {
        return bad_request("give the URL: /purge/url?url=http%3A%2F%2Fexample.com%2Fitems")
            .into_response();
    };
    let namespace = match namespace {
        Some(ns) => ns,
        None => {
            let path = url
                .parse::<http::Uri>()
                .map(|u| u.path().to_owned())
                .unwrap_or_default();
            admin
                .routes
                .rule_for(&path)
                .policy
                .namespace_name()
                .to_owned()
        }
    };
    match admin.cache.purge_url(&namespace, &url).await {
        Ok(stored) => json(
            StatusCode::OK,
            serde_json::json!({ "purged": "url", "url": url, "namespace": namespace, "stored": stored })
                .to_string(),
        ),
        Err(e @ larder::PurgeError::NotAbsolute(_)) => bad_request(&e.to_string()),
        Err(e) => unavailable(&e),
    }
    .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn method_not_allowed() -> Response {
    // The router adds `Allow` (RFC 9110 §15.5.6).
    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// A path segment that did not decode (not UTF-8 once percent-decoded).
fn path_error(e: &PathRejection) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        &format!("the path does not decode: {}", e.body_text()),
    )
}

fn error(status: StatusCode, why: &str) -> Response {
    json(status, serde_json::json!({ "error": why }).to_string()).into_response()
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

/// The counters as JSON: [`Stats`]' fields, `not_stored` by reason, and
/// `hit_ratio`.
fn stats_json(stats: &Stats) -> String {
    serde_json::to_string(stats).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_json_with_every_reason() {
        let v: serde_json::Value = serde_json::from_str(&stats_json(&Stats::default())).unwrap();
        assert_eq!(v["hits"], 0);
        assert_eq!(v["not_stored"]["cookie"], 0);
    }
}
