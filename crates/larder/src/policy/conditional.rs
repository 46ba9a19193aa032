//! Conditional requests answered by the cache (RFC 9110 §13, RFC 9111 §4.3.2).

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, Method};

/// The result of evaluating a request's preconditions against the selected
/// representation (RFC 9110 §13.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No precondition applies, or all passed: answer normally.
    Proceed,
    /// Answer 304 Not Modified (GET/HEAD only).
    NotModified,
    /// Answer 412 Precondition Failed.
    Failed,
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since`, in that order (RFC 9110 §13.2.2), against a
/// representation with the given `etag` and `last_modified`.
///
/// `If-None-Match` uses weak comparison and `*` matches any representation;
/// `If-Match` uses strong comparison. `If-Modified-Since` applies only to
/// GET/HEAD, and is ignored when `If-None-Match` is present or its date is
/// invalid. For a stored response without `Last-Modified`, pass its `Date`
/// (or the time it was received) as `last_modified` (RFC 9111 §4.3.2).
pub fn evaluate(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&HeaderValue>,
    last_modified: Option<SystemTime>,
) -> Precondition {
    let _ = (method, request, etag, last_modified);
    todo!()
}

/// The header fields a 304 carries, copied from the 200 it stands for
/// (RFC 9110 §15.4.5): `Cache-Control`, `Content-Location`, `Date`, `ETag`,
/// `Expires` and `Vary`.
pub fn not_modified_headers(full: &HeaderMap) -> HeaderMap {
    let _ = full;
    todo!()
}

/// A strong `ETag` over the body's bytes: the same bytes give the same tag in
/// every process and across restarts (xxh3-128, hex, quoted).
pub fn content_etag(body: &[u8]) -> HeaderValue {
    let _ = body;
    todo!()
}

/// True when the request carries any precondition header field
/// (`If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`,
/// `If-Range`).
pub fn has_preconditions(request: &HeaderMap) -> bool {
    let _ = request;
    todo!()
}
