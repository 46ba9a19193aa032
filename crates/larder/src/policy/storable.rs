//! May a response be stored? (RFC 9111 §3), for both modes.

use std::time::{Duration, SystemTime};

use http::{HeaderName, StatusCode};

use super::cache_control::{CacheControl, FieldNames};
use super::route::{Mode, Policy};
use super::{freshness, key};

/// Why a response was not stored. Stats count by it and `Cache-Status`
/// can show it as `detail`.
///
/// ```
/// use larder::NotStored;
///
/// assert_eq!(NotStored::SetCookie.as_str(), "set-cookie");
/// assert_eq!(NotStored::RequestNoStore.as_str(), "request-no-store");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotStored {
    /// The request method is not cacheable.
    Method,
    /// The status is not in the route's cacheable statuses, or the
    /// response said `must-understand` and the cache does not implement
    /// its status's caching rules (RFC 9111 §5.2.2.3).
    Status,
    /// The request said `no-store`.
    RequestNoStore,
    /// The response said `no-store`.
    NoStore,
    /// The response said `private` (shared cache).
    Private,
    /// The response said `no-cache` (every reuse needs revalidation) and
    /// carried no `ETag` or `Last-Modified` to revalidate it with.
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
    /// The GET or HEAD request carried a body, which the key does not cover.
    RequestBody,
    /// The request's host is not a valid authority (RFC 3986 `host
    /// [":" port]`, one `Host` line, the request target's if it names
    /// one), or not in the cache's allowed hosts.
    Host,
    /// The request carried a cookie and its route does not cache such
    /// requests (the proxy's default).
    Cookie,
    /// A route rule says to bypass the cache.
    Rule,
}

impl NotStored {
    /// Every reason, once each, in a fixed order (for stats arrays).
    ///
    /// ```
    /// use std::collections::HashSet;
    /// use larder::NotStored;
    ///
    /// assert_eq!(NotStored::ALL[0], NotStored::Method);
    /// let tokens: HashSet<&str> = NotStored::ALL.iter().map(|r| r.as_str()).collect();
    /// assert_eq!(tokens.len(), NotStored::ALL.len()); // each reason once
    /// ```
    pub const ALL: [NotStored; 17] = [
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
        NotStored::RequestBody,
        NotStored::Host,
        NotStored::Cookie,
        NotStored::Rule,
    ];

    /// A short token, used in logs, stats and `Cache-Status` `detail`.
    ///
    /// ```
    /// use larder::NotStored;
    ///
    /// assert_eq!(NotStored::VaryStar.as_str(), "vary-star");
    /// assert_eq!(NotStored::TooLarge.as_str(), "too-large");
    /// ```
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
            NotStored::RequestBody => "request-body",
            NotStored::Host => "host",
            NotStored::Cookie => "cookie",
            NotStored::Rule => "rule",
        }
    }

    pub(crate) fn index(self) -> usize {
        NotStored::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// What storing a response means: its lifetime and stale windows, and the
/// header fields to remove first.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{HeaderMap, HeaderValue, Method, StatusCode};
/// use larder::policy::storable::{may_store, RequestFacts};
/// use larder::policy::CacheControl;
/// use larder::Policy;
///
/// let (request, response) = (HeaderMap::new(), HeaderMap::new());
/// let facts = RequestFacts { method: &Method::GET, headers: &request, directives: None };
/// let line = HeaderValue::from_static(r#"private="x-user", stale-if-error=300"#);
/// let cc = CacheControl::parse([&line]);
/// let policy = Policy::ttl(Duration::from_secs(60));
/// let storable = may_store(&policy, facts, StatusCode::OK, &response, &cc, UNIX_EPOCH, Duration::ZERO)
///     .unwrap();
/// assert_eq!(storable.lifetime, Duration::from_secs(60));
/// assert_eq!(storable.stale_if_error, Some(Duration::from_secs(300)));
/// assert_eq!(storable.strip, ["x-user"]);
/// ```
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

/// True when a request announces a body (a non-zero `Content-Length`, or
/// any `Transfer-Encoding`). A GET or HEAD with a body bypasses the cache:
/// the key does not cover the body, so a handler that reads it could
/// otherwise answer one client with what another's body asked for.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::storable::request_has_body;
///
/// let mut headers = HeaderMap::new();
/// assert!(!request_has_body(&headers));
/// headers.insert("content-length", HeaderValue::from_static("0"));
/// assert!(!request_has_body(&headers));
/// headers.insert("content-length", HeaderValue::from_static("12"));
/// assert!(request_has_body(&headers));
/// ```
pub fn request_has_body(headers: &http::HeaderMap) -> bool {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .any(|v| v.as_bytes().trim_ascii() != b"0")
}

/// True when a GET or HEAD carries a body its headers need not announce:
/// from HTTP/2 on a request body needs no `Content-Length` (RFC 9113
/// §8.1.1), so a body that does not end at once is a body. In HTTP/1 the
/// headers alone decide ([`request_has_body`], RFC 9112 §6.3).
///
/// ```
/// use http::{Method, Version};
/// use larder::policy::storable::unannounced_body;
///
/// assert!(unannounced_body(&Method::GET, Version::HTTP_2, false));
/// assert!(!unannounced_body(&Method::GET, Version::HTTP_2, true));
/// assert!(!unannounced_body(&Method::GET, Version::HTTP_11, false));
/// assert!(!unannounced_body(&Method::POST, Version::HTTP_2, false));
/// ```
pub fn unannounced_body(method: &http::Method, version: http::Version, body_ended: bool) -> bool {
    version >= http::Version::HTTP_2 && key::method_class(method).is_some() && !body_ended
}

/// What the cache knows of a request when deciding to store its response.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{header::AUTHORIZATION, HeaderMap, HeaderValue, Method, StatusCode};
/// use larder::policy::storable::{may_store, RequestFacts};
/// use larder::{policy::CacheControl, NotStored, Policy};
///
/// let mut request = HeaderMap::new();
/// request.insert(AUTHORIZATION, HeaderValue::from_static("Bearer secret"));
/// let facts = RequestFacts { method: &Method::GET, headers: &request, directives: None };
/// let cc = CacheControl::parse([&HeaderValue::from_static("max-age=60")]);
/// let policy = Policy::origin_headers();
/// let response = HeaderMap::new();
/// let result = may_store(&policy, facts, StatusCode::OK, &response, &cc, UNIX_EPOCH, Duration::ZERO);
/// assert_eq!(result, Err(NotStored::Authorization));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The request method.
    pub method: &'a http::Method,
    /// The request's header fields.
    pub headers: &'a http::HeaderMap,
    /// The request's directives, when the route honours them.
    pub directives: Option<&'a CacheControl>,
}

/// Decides whether a response may be stored by a shared cache (RFC 9111 §3),
/// in the policy's mode, and if so for how long.
///
/// `response_time` stands in for a missing `Date`; `initial_age` is the
/// response's corrected initial age (§4.2.3). A response already stale on
/// arrival is refused unless it has a usable stale window.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{header::SET_COOKIE, HeaderMap, HeaderValue, Method, StatusCode};
/// use larder::policy::storable::{may_store, RequestFacts};
/// use larder::{policy::CacheControl, NotStored, Policy};
///
/// let request = HeaderMap::new();
/// let facts = RequestFacts { method: &Method::GET, headers: &request, directives: None };
/// let cc = CacheControl::parse([&HeaderValue::from_static("public, max-age=60")]);
/// let mut response = HeaderMap::new();
/// response.insert(SET_COOKIE, HeaderValue::from_static("session=1"));
/// let policy = Policy::origin_headers();
/// let result = may_store(&policy, facts, StatusCode::OK, &response, &cc, UNIX_EPOCH, Duration::ZERO);
/// assert_eq!(result, Err(NotStored::SetCookie));
/// ```
pub fn may_store(
    policy: &Policy,
    request: RequestFacts<'_>,
    status: StatusCode,
    headers: &http::HeaderMap,
    directives: &CacheControl,
    response_time: SystemTime,
    initial_age: Duration,
) -> Result<Storable, NotStored> {
    if key::method_class(request.method).is_none() {
        return Err(NotStored::Method);
    }
    if request.directives.is_some_and(|d| d.no_store) {
        return Err(NotStored::RequestNoStore);
    }
    if !status_storable(policy, status) {
        return Err(NotStored::Status);
    }
    // §5.2.2.3: must-understand limits storing to caches that implement the
    // status's caching rules, and lets those ignore no-store (which it
    // comes with, for the caches that do not know it).
    if directives.must_understand && !understood_status(status) {
        return Err(NotStored::Status);
    }
    if directives.no_store && !directives.must_understand {
        return Err(NotStored::NoStore);
    }
    if directives.private_all() {
        return Err(NotStored::Private);
    }
    if headers.contains_key(http::header::SET_COOKIE) {
        return Err(NotStored::SetCookie);
    }
    if key::response_vary(headers) == key::Vary::Star {
        return Err(NotStored::VaryStar);
    }
    // §5.2.2.4: a no-cache response is stored and validated before every
    // reuse, which needs a validator; without one it could never be reused.
    let revalidate = directives.no_cache_all();
    if revalidate && !has_validator(headers) {
        return Err(NotStored::NoCache);
    }
    if request.headers.contains_key(http::header::AUTHORIZATION)
        && !authorization_allows_sharing(policy, directives)
    {
        return Err(NotStored::Authorization);
    }
    let lifetime = match &policy.mode {
        Mode::RouteTtl(ttl) => *ttl,
        Mode::OriginHeaders { heuristic } => match freshness::freshness_lifetime(
            status,
            headers,
            directives,
            heuristic.as_ref(),
            response_time,
        ) {
            Some(lifetime) => lifetime,
            // §3: a response that is never reused unvalidated needs no
            // freshness, only leave to be stored: `public`, or a status
            // that is heuristically cacheable.
            None if revalidate
                && (directives.public || freshness::heuristically_cacheable(status)) =>
            {
                Duration::ZERO
            }
            None => return Err(NotStored::NoFreshness),
        },
    };
    let lifetime = freshness::reuse_lifetime(directives, lifetime);
    // The response's own windows win; the route's are defaults.
    let stale_while_revalidate = directives
        .stale_while_revalidate
        .map(secs)
        .or(policy.stale_while_revalidate);
    let stale_if_error = directives
        .stale_if_error
        .map(secs)
        .or(policy.stale_if_error);
    let forbids_stale = directives.forbids_stale();
    // A response stale on arrival is worth keeping only for a stale window.
    let usable_stale = !forbids_stale
        && (stale_while_revalidate.is_some_and(|d| !d.is_zero())
            || stale_if_error.is_some_and(|d| !d.is_zero()));
    // A no-cache response is stale at once by design: it is kept to be
    // revalidated, not served.
    if initial_age >= lifetime && !usable_stale && !revalidate {
        return Err(NotStored::Stale);
    }
    let mut strip = Vec::new();
    for names in [&directives.private, &directives.no_cache]
        .into_iter()
        .flatten()
    {
        if let FieldNames::Only(list) = names {
            strip.extend(list.iter().cloned());
        }
    }
    Ok(Storable {
        lifetime,
        stale_while_revalidate,
        stale_if_error,
        forbids_stale,
        strip,
    })
}

/// RFC 9111 §3: a final status the cache understands; the route may narrow
/// it. 206 and 304 are never stored: larder stores neither ranges nor
/// validation answers.
fn status_storable(policy: &Policy, status: StatusCode) -> bool {
    if status.is_informational()
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return false;
    }
    match &policy.statuses {
        Some(list) => list.contains(&status),
        None => true,
    }
}

/// The statuses whose caching rules larder implements, for
/// `must-understand` (RFC 9111 §5.2.2.3): the final statuses RFC 9110 §15
/// defines, but for 206 and 304 (larder stores neither) and the unused or
/// deprecated 305, 306 and 418. A status registered later may come with
/// caching rules of its own that larder does not know, which is what
/// `must-understand` protects.
///
/// ```
/// use http::StatusCode;
/// use larder::policy::storable::understood_status;
///
/// assert!(understood_status(StatusCode::OK));
/// assert!(understood_status(StatusCode::NOT_FOUND));
/// assert!(!understood_status(StatusCode::PARTIAL_CONTENT));
/// assert!(!understood_status(StatusCode::from_u16(299).unwrap()));
/// ```
pub fn understood_status(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200..=205 | 300..=303 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// An `ETag` or `Last-Modified` the response came with: something to send
/// back as `If-None-Match` / `If-Modified-Since` (RFC 9111 §4.3.1).
fn has_validator(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::ETAG) || headers.contains_key(http::header::LAST_MODIFIED)
}

/// RFC 9111 §3.5. In route-TTL mode the engine bypasses such requests unless
/// the route allows them; in origin-headers mode the response must opt in.
fn authorization_allows_sharing(policy: &Policy, directives: &CacheControl) -> bool {
    policy.allow_authorization
        || (matches!(policy.mode, Mode::OriginHeaders { .. })
            && (directives.public || directives.s_maxage.is_some() || directives.must_revalidate))
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};
    use std::time::UNIX_EPOCH;

    const T: Duration = Duration::from_secs(1_700_000_000);

    struct Case {
        policy: Policy,
        method: Method,
        request: HeaderMap,
        status: StatusCode,
        response: HeaderMap,
        age: Duration,
    }

    impl Case {
        fn route() -> Self {
            Case::with(Policy::ttl(Duration::from_secs(60)))
        }
        fn origin() -> Self {
            Case::with(Policy::origin_headers())
        }
        fn with(policy: Policy) -> Self {
            Case {
                policy,
                method: Method::GET,
                request: HeaderMap::new(),
                status: StatusCode::OK,
                response: HeaderMap::new(),
                age: Duration::ZERO,
            }
        }
        fn req(mut self, name: &'static str, value: &'static str) -> Self {
            self.request.append(name, HeaderValue::from_static(value));
            self
        }
        fn resp(mut self, name: &'static str, value: &'static str) -> Self {
            self.response.append(name, HeaderValue::from_static(value));
            self
        }
        fn status(mut self, status: u16) -> Self {
            self.status = StatusCode::from_u16(status).unwrap();
            self
        }
        fn run(&self) -> Result<Storable, NotStored> {
            let req_cc = CacheControl::from_request(&self.request);
            let honoured = self.policy.honor_request_directives.then_some(&req_cc);
            let cc = CacheControl::from_headers(&self.response);
            may_store(
                &self.policy,
                RequestFacts {
                    method: &self.method,
                    headers: &self.request,
                    directives: honoured,
                },
                self.status,
                &self.response,
                &cc,
                UNIX_EPOCH + T,
                self.age,
            )
        }
    }

    #[test]
    fn route_ttl_stores_a_plain_200_for_the_ttl() {
        let s = Case::route().run().unwrap();
        assert_eq!(s.lifetime, Duration::from_secs(60));
        // The route decides freshness even against the handler's max-age.
        let s = Case::route()
            .resp("cache-control", "max-age=5")
            .run()
            .unwrap();
        assert_eq!(s.lifetime, Duration::from_secs(60));
    }

    #[test]
    fn only_get_and_head_are_stored_9111_3() {
        let mut c = Case::route();
        c.method = Method::POST;
        assert_eq!(c.run(), Err(NotStored::Method));
        c.method = Method::HEAD;
        assert!(c.run().is_ok());
    }

    #[test]
    fn route_ttl_stores_only_its_statuses() {
        assert_eq!(Case::route().status(404).run(), Err(NotStored::Status));
        assert_eq!(Case::route().status(500).run(), Err(NotStored::Status));
        let p = Policy::ttl(Duration::from_secs(5)).statuses([StatusCode::NOT_FOUND]);
        assert!(Case::with(p).status(404).run().is_ok());
    }

    #[test]
    fn partial_not_modified_and_informational_never_stored_9111_3() {
        for status in [100, 206, 304] {
            let p = Policy::origin_headers();
            let c = Case::with(p)
                .status(status)
                .resp("cache-control", "max-age=60");
            assert_eq!(c.run(), Err(NotStored::Status), "{status}");
        }
    }

    #[test]
    fn no_store_in_request_or_response_9111_3() {
        assert_eq!(
            Case::route().req("cache-control", "no-store").run(),
            Err(NotStored::RequestNoStore)
        );
        assert_eq!(
            Case::route().resp("cache-control", "no-store").run(),
            Err(NotStored::NoStore)
        );
        // A route that ignores request directives ignores request no-store too.
        let p = Policy::ttl(Duration::from_secs(5)).honor_request_directives(false);
        assert!(Case::with(p).req("cache-control", "no-store").run().is_ok());
    }

    #[test]
    fn unqualified_private_is_not_shared_9111_5_2_2_7() {
        assert_eq!(
            Case::route().resp("cache-control", "private").run(),
            Err(NotStored::Private)
        );
        assert_eq!(
            Case::origin()
                .resp("cache-control", "private, max-age=60")
                .run(),
            Err(NotStored::Private)
        );
    }

    #[test]
    fn qualified_private_and_no_cache_strip_those_fields_9111_5_2_2() {
        let s = Case::route()
            .resp("cache-control", "private=\"x-user\", no-cache=\"x-trace\"")
            .run()
            .unwrap();
        let mut names: Vec<_> = s.strip.iter().map(|n| n.as_str().to_owned()).collect();
        names.sort();
        assert_eq!(names, ["x-trace", "x-user"]);
    }

    #[test]
    fn set_cookie_is_never_shared() {
        assert_eq!(
            Case::route().resp("set-cookie", "s=1").run(),
            Err(NotStored::SetCookie)
        );
        assert_eq!(
            Case::origin()
                .resp("cache-control", "public, max-age=60")
                .resp("set-cookie", "s=1")
                .run(),
            Err(NotStored::SetCookie)
        );
    }

    #[test]
    fn vary_star_is_never_stored_9111_4_1() {
        assert_eq!(
            Case::route().resp("vary", "accept, *").run(),
            Err(NotStored::VaryStar)
        );
    }

    #[test]
    fn no_cache_without_a_validator_is_not_stored_9111_5_2_2_4() {
        // It could never be reused: every reuse needs a validation, and
        // there is nothing to validate it with.
        assert_eq!(
            Case::route().resp("cache-control", "no-cache").run(),
            Err(NotStored::NoCache)
        );
        assert_eq!(
            Case::origin()
                .resp("cache-control", "no-cache, max-age=60")
                .run(),
            Err(NotStored::NoCache)
        );
    }

    #[test]
    fn no_cache_with_a_validator_is_stored_to_revalidate_every_time_9111_5_2_2_4() {
        let lm = "Tue, 14 Nov 2023 12:13:20 GMT";
        for case in [
            Case::route()
                .resp("cache-control", "no-cache")
                .resp("etag", "\"v1\""),
            Case::origin()
                .resp("cache-control", "no-cache")
                .resp("etag", "\"v1\""),
            Case::origin()
                .resp("cache-control", "no-cache, max-age=600")
                .resp("last-modified", lm),
            Case::origin()
                .resp(
                    "cache-control",
                    "no-cache, stale-if-error=600, stale-while-revalidate=60",
                )
                .resp("etag", "W/\"v1\""),
            Case::origin()
                .resp("cache-control", "NO-CACHE")
                .resp("etag", "\"v1\"")
                .status(404),
        ] {
            let s = case.run().unwrap();
            assert_eq!(
                s.lifetime,
                Duration::ZERO,
                "never fresh: {:?}",
                case.response
            );
            assert!(s.forbids_stale, "never served stale: {:?}", case.response);
        }
        // Already aged on arrival: still kept, it is only ever revalidated.
        let mut c = Case::origin()
            .resp("cache-control", "no-cache")
            .resp("etag", "\"v1\"");
        c.age = Duration::from_secs(3600);
        assert!(c.run().is_ok());
    }

    #[test]
    fn no_cache_needs_leave_to_store_in_a_shared_cache_9111_3() {
        // 302 is not heuristically cacheable: without public or explicit
        // freshness a shared cache may not store it at all.
        let c = || {
            Case::origin()
                .status(302)
                .resp("etag", "\"v1\"")
                .resp("location", "/elsewhere")
        };
        assert_eq!(
            c().resp("cache-control", "no-cache").run(),
            Err(NotStored::NoFreshness)
        );
        for cc in ["no-cache, public", "no-cache, max-age=60"] {
            let s = c().resp("cache-control", cc).run().unwrap();
            assert_eq!(s.lifetime, Duration::ZERO, "{cc}");
        }
        let s = c()
            .resp("cache-control", "no-cache")
            .resp("expires", "Wed, 15 Nov 2023 22:13:20 GMT")
            .run()
            .unwrap();
        assert_eq!(s.lifetime, Duration::ZERO);
    }

    #[test]
    fn qualified_no_cache_keeps_its_lifetime_9111_5_2_2_4() {
        let s = Case::origin()
            .resp("cache-control", "no-cache=\"x-trace\", max-age=60")
            .run()
            .unwrap();
        assert_eq!(s.lifetime, Duration::from_secs(60));
        assert!(!s.forbids_stale);
        assert_eq!(s.strip, ["x-trace"]);
    }

    #[test]
    fn must_understand_stores_understood_statuses_despite_no_store_9111_5_2_2_3() {
        for status in [200, 203, 301, 404, 410, 501] {
            let s = Case::origin()
                .status(status)
                .resp("cache-control", "max-age=60, must-understand, no-store")
                .run();
            assert_eq!(
                s.map(|s| s.lifetime),
                Ok(Duration::from_secs(60)),
                "{status}"
            );
        }
        // Route-TTL mode too, for the statuses the route stores.
        let s = Case::route()
            .resp("cache-control", "no-store, must-understand")
            .run();
        assert!(s.is_ok());
        // Without must-understand, no-store still wins.
        assert_eq!(
            Case::origin()
                .resp("cache-control", "max-age=60, no-store")
                .run(),
            Err(NotStored::NoStore)
        );
        // The request's no-store is not the response's to override.
        assert_eq!(
            Case::origin()
                .req("cache-control", "no-store")
                .resp("cache-control", "max-age=60, must-understand, no-store")
                .run(),
            Err(NotStored::RequestNoStore)
        );
        // Everything else still applies: private, the route's statuses.
        assert_eq!(
            Case::origin()
                .resp(
                    "cache-control",
                    "max-age=60, must-understand, no-store, private"
                )
                .run(),
            Err(NotStored::Private)
        );
        assert_eq!(
            Case::route()
                .status(404)
                .resp("cache-control", "no-store, must-understand")
                .run(),
            Err(NotStored::Status)
        );
    }

    #[test]
    fn must_understand_refuses_statuses_the_cache_does_not_know_9111_5_2_2_3() {
        for status in [299, 306, 418, 451, 599, 206] {
            for cc in [
                "max-age=60, must-understand, no-store",
                "max-age=60, must-understand",
            ] {
                let p = Policy::origin_headers().statuses([StatusCode::from_u16(status).unwrap()]);
                let c = Case::with(p).status(status).resp("cache-control", cc);
                assert_eq!(c.run(), Err(NotStored::Status), "{status} {cc}");
            }
        }
        // Without must-understand an unknown status with explicit
        // freshness is stored as before.
        let c = Case::origin()
            .status(299)
            .resp("cache-control", "max-age=60");
        assert!(c.run().is_ok());
    }

    #[test]
    fn understood_statuses_are_rfc_9110s_final_ones_9111_5_2_2_3() {
        let yes: Vec<u16> = (200..=205)
            .chain(300..=303)
            .chain([307, 308])
            .chain(400..=417)
            .chain([421, 422, 426])
            .chain(500..=505)
            .collect();
        for code in 100..600 {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(understood_status(status), yes.contains(&code), "{code}");
        }
    }

    #[test]
    fn authorization_not_shared_by_default_9111_3_5() {
        assert_eq!(
            Case::route().req("authorization", "Bearer x").run(),
            Err(NotStored::Authorization)
        );
        let allowed = Policy::ttl(Duration::from_secs(5)).allow_authorization(true);
        assert!(Case::with(allowed)
            .req("authorization", "Bearer x")
            .run()
            .is_ok());
    }

    #[test]
    fn authorization_shared_when_the_response_opts_in_9111_3_5() {
        let c = || Case::origin().req("authorization", "Bearer x");
        assert_eq!(
            c().resp("cache-control", "max-age=60").run(),
            Err(NotStored::Authorization)
        );
        for cc in [
            "public, max-age=60",
            "s-maxage=60",
            "must-revalidate, max-age=60",
        ] {
            assert!(c().resp("cache-control", cc).run().is_ok(), "{cc}");
        }
    }

    #[test]
    fn origin_mode_needs_explicit_freshness_9111_3() {
        assert_eq!(Case::origin().run(), Err(NotStored::NoFreshness));
        assert_eq!(
            Case::origin().resp("cache-control", "public").run(),
            Err(NotStored::NoFreshness)
        );
        let s = Case::origin()
            .resp("cache-control", "max-age=30, s-maxage=90")
            .run()
            .unwrap();
        assert_eq!(s.lifetime, Duration::from_secs(90));
        assert!(s.forbids_stale, "s-maxage forbids stale use (9111 §4.2.4)");
    }

    #[test]
    fn origin_mode_heuristic_only_when_configured_9111_4_2_2() {
        let lm = "Tue, 14 Nov 2023 12:13:20 GMT"; // 1_699_964_000: 36_000 s before T
        assert_eq!(
            Case::origin().resp("last-modified", lm).run(),
            Err(NotStored::NoFreshness)
        );
        let p = Policy::origin_headers().heuristic(crate::policy::Heuristic::default());
        let s = Case::with(p).resp("last-modified", lm).run().unwrap();
        assert_eq!(s.lifetime, Duration::from_secs(3_600));
    }

    #[test]
    fn stale_on_arrival_is_not_stored_unless_a_stale_window_applies_9111_4_2() {
        let mut c = Case::origin().resp("cache-control", "max-age=10");
        c.age = Duration::from_secs(10);
        assert_eq!(c.run(), Err(NotStored::Stale));
        let mut c = Case::origin().resp("cache-control", "max-age=10, stale-if-error=60");
        c.age = Duration::from_secs(10);
        assert!(c.run().is_ok());
        let mut c = Case::origin().resp(
            "cache-control",
            "max-age=10, stale-if-error=60, must-revalidate",
        );
        c.age = Duration::from_secs(10);
        assert_eq!(c.run(), Err(NotStored::Stale));
    }

    #[test]
    fn stale_windows_come_from_the_response_5861() {
        let s = Case::route()
            .resp(
                "cache-control",
                "stale-while-revalidate=30, stale-if-error=300",
            )
            .run()
            .unwrap();
        assert_eq!(s.stale_while_revalidate, Some(Duration::from_secs(30)));
        assert_eq!(s.stale_if_error, Some(Duration::from_secs(300)));
        assert!(!s.forbids_stale);
    }

    #[test]
    fn route_stale_windows_apply_when_the_response_states_none_5861() {
        let route = || {
            Policy::ttl(Duration::from_secs(60))
                .stale_while_revalidate(Duration::from_secs(15))
                .stale_if_error(Duration::from_secs(600))
        };
        let s = Case::with(route()).run().unwrap();
        assert_eq!(s.stale_while_revalidate, Some(Duration::from_secs(15)));
        assert_eq!(s.stale_if_error, Some(Duration::from_secs(600)));
        let s = Case::with(route())
            .resp("cache-control", "stale-while-revalidate=30")
            .run()
            .unwrap();
        assert_eq!(s.stale_while_revalidate, Some(Duration::from_secs(30)));
        assert_eq!(s.stale_if_error, Some(Duration::from_secs(600)));
        // A route window makes a response stale on arrival worth keeping.
        let mut c = Case::with(Policy::origin_headers().stale_if_error(Duration::from_secs(60)))
            .resp("cache-control", "max-age=10");
        c.age = Duration::from_secs(10);
        assert!(c.run().is_ok());
    }

    #[test]
    fn a_get_with_a_body_is_not_for_the_cache() {
        let with = |name: &'static str, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            request_has_body(&h)
        };
        assert!(with("content-length", "5"));
        assert!(with("transfer-encoding", "chunked"));
        assert!(!with("content-length", "0"));
        assert!(!with("content-length", " 0 "));
        assert!(!request_has_body(&HeaderMap::new()));
    }

    #[test]
    fn every_reason_has_a_distinct_index_and_token() {
        let mut tokens: Vec<_> = NotStored::ALL.iter().map(|r| r.as_str()).collect();
        tokens.dedup();
        assert_eq!(tokens.len(), NotStored::ALL.len());
        for (i, r) in NotStored::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
