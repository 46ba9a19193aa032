//! The `Cache-Status` response field (RFC 9211).

use http::HeaderValue;

/// Why the cache went forward (RFC 9211 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// Configured not to handle this request.
    Bypass,
    /// The request method is not cacheable.
    Method,
    /// No stored response for the URI.
    UriMiss,
    /// Stored responses for the URI, none matching the request's Vary fields.
    VaryMiss,
    /// No usable stored response (generic).
    Miss,
    /// A stored response existed, but the request's directives forbade it.
    Request,
    /// The stored response was stale and needed revalidation.
    Stale,
}

impl Fwd {
    /// The token RFC 9211 uses for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Miss => "miss",
            Fwd::Request => "request",
            Fwd::Stale => "stale",
        }
    }
}

/// One cache's member of the `Cache-Status` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStatus<'a> {
    /// The cache's name, a token or else serialized as a string.
    pub name: &'a str,
    /// `hit`: answered from cache without going forward.
    pub hit: bool,
    /// `fwd`: why the request went forward.
    pub fwd: Option<Fwd>,
    /// `fwd-status`: the status the next hop returned.
    pub fwd_status: Option<u16>,
    /// `ttl`: seconds of freshness left, negative when stale.
    pub ttl: Option<i64>,
    /// `stored`: the forwarded response was stored.
    pub stored: bool,
    /// `collapsed`: the request was collapsed with another's forward.
    pub collapsed: bool,
    /// `key`: the cache key, when configured to expose it.
    pub key: Option<&'a str>,
    /// `detail`: implementation-specific detail, when configured.
    pub detail: Option<&'a str>,
}

impl CacheStatus<'_> {
    /// Serializes this member as a Structured Fields list member
    /// (e.g. `larder; hit; ttl=376` or `larder; fwd=miss; stored`).
    pub fn member(&self) -> String {
        todo!()
    }

    /// Appends this member to an existing `Cache-Status` value from a cache
    /// nearer the origin, or starts a new list (RFC 9211 §2: the list is
    /// ordered from the origin towards the client).
    pub fn append_to(&self, existing: Option<&HeaderValue>) -> HeaderValue {
        let _ = existing;
        todo!()
    }
}

/// True when `name` is a Structured Fields token (and so needs no quoting).
pub fn is_sf_token(name: &str) -> bool {
    let _ = name;
    todo!()
}
