//! May a response be stored? (RFC 9111 §3), for both modes.

use std::time::Duration;

use http::HeaderName;

/// Why a response was not stored. Stats count by it and `Cache-Status`
/// can show it as `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotStored {
    /// The request method is not cacheable.
    Method,
    /// The status is not in the route's cacheable statuses.
    Status,
    /// The request said `no-store`.
    RequestNoStore,
    /// The response said `no-store`.
    NoStore,
    /// The response said `private` (shared cache).
    Private,
    /// The response said `no-cache`: every reuse would need revalidation.
    NoCache,
    /// The response sets a cookie.
    SetCookie,
    /// The response said `Vary: *`.
    VaryStar,
    /// The request carried `Authorization` and the response did not allow sharing.
    Authorization,
    /// Origin-headers mode: no explicit freshness, and no heuristic applies.
    NoFreshness,
    /// The response was already stale when received.
    Stale,
    /// The body was larger than the cache's maximum, or of unknown size beyond it.
    TooLarge,
    /// The body failed while being read, or carried trailers.
    Body,
}

impl NotStored {
    /// Every reason, in a fixed order (for stats arrays).
    pub const ALL: [NotStored; 13] = [
        NotStored::Method,
        NotStored::Status,
        NotStored::RequestNoStore,
        NotStored::NoStore,
        NotStored::Private,
        NotStored::NoCache,
        NotStored::SetCookie,
        NotStored::VaryStar,
        NotStored::Authorization,
        NotStored::NoFreshness,
        NotStored::Stale,
        NotStored::TooLarge,
        NotStored::Body,
    ];

    /// A short token, used in logs, stats and `Cache-Status` `detail`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotStored::Method => "method",
            NotStored::Status => "status",
            NotStored::RequestNoStore => "request-no-store",
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::NoCache => "no-cache",
            NotStored::SetCookie => "set-cookie",
            NotStored::VaryStar => "vary-star",
            NotStored::Authorization => "authorization",
            NotStored::NoFreshness => "no-freshness",
            NotStored::Stale => "stale",
            NotStored::TooLarge => "too-large",
            NotStored::Body => "body",
        }
    }

    pub(crate) fn index(self) -> usize {
        NotStored::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// What storing a response means: its lifetime and stale windows, and the
/// header fields to remove first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storable {
    /// The freshness lifetime.
    pub lifetime: Duration,
    /// `stale-while-revalidate` window, if any.
    pub stale_while_revalidate: Option<Duration>,
    /// `stale-if-error` window, if any.
    pub stale_if_error: Option<Duration>,
    /// True when the response may not be served stale (RFC 9111 §4.2.4).
    pub forbids_stale: bool,
    /// Header fields named by qualified `private`/`no-cache`, to strip.
    pub strip: Vec<HeaderName>,
}
