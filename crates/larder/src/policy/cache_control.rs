//! Cache-Control parsing for requests and responses (RFC 9111 §5.2, RFC 5861).

use http::{HeaderMap, HeaderName, HeaderValue};

/// The largest delta-seconds value; larger ones clamp to it (RFC 9111 §1.2.2).
pub const MAX_DELTA_SECONDS: u32 = 1 << 31;

/// A field-name list argument of `no-cache` or `private` (RFC 9111 §5.2.2.4, §5.2.2.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldNames {
    /// The directive without an argument: it applies to the whole response.
    All,
    /// `no-cache="a, b"`: only these fields are affected (lowercased).
    Only(Vec<HeaderName>),
}

/// The argument of the `max-stale` request directive (RFC 9111 §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: any staleness is acceptable.
    Any,
    /// `max-stale=N`.
    Seconds(u32),
}

/// Parsed Cache-Control directives, request or response.
///
/// Absent directives are `None`/`false`. Durations are in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub max_age: Option<u32>,
    pub s_maxage: Option<u32>,
    pub max_stale: Option<MaxStale>,
    pub min_fresh: Option<u32>,
    pub no_cache: Option<FieldNames>,
    pub no_store: bool,
    pub no_transform: bool,
    pub only_if_cached: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub must_understand: bool,
    pub private: Option<FieldNames>,
    pub public: bool,
    pub immutable: bool,
    pub stale_while_revalidate: Option<u32>,
    pub stale_if_error: Option<u32>,
}

impl CacheControl {
    /// Parses every `Cache-Control` field line in `headers`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::parse(headers.get_all(http::header::CACHE_CONTROL))
    }

    /// Parses a request's directives: `Cache-Control`, and `Pragma: no-cache`
    /// as `no-cache` when no `Cache-Control` is present (RFC 9111 §5.4).
    pub fn from_request(headers: &HeaderMap) -> Self {
        let _ = headers;
        todo!()
    }

    /// Parses the given field lines as one list.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Self {
        let _ = values.into_iter();
        todo!()
    }

    /// True when `no-cache` is present without a field-name list.
    pub fn no_cache_all(&self) -> bool {
        matches!(self.no_cache, Some(FieldNames::All))
    }

    /// True when `private` is present without a field-name list.
    pub fn private_all(&self) -> bool {
        matches!(self.private, Some(FieldNames::All))
    }

    /// True when the directives forbid serving the response stale
    /// (RFC 9111 §4.2.4: `must-revalidate`, `proxy-revalidate`, `s-maxage`, `no-cache`).
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate
            || self.proxy_revalidate
            || self.s_maxage.is_some()
            || self.no_cache_all()
    }
}
