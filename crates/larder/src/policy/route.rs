//! A route's caching rules: [`Policy`].

use std::time::Duration;

use http::{request, HeaderName, HeaderValue, StatusCode};

/// Where a stored response's freshness comes from: a [`Policy`]'s mode.
///
/// ```
/// use std::time::Duration;
/// use larder::policy::Mode;
/// use larder::Policy;
///
/// let minute = Duration::from_secs(60);
/// assert_eq!(Policy::ttl(minute).mode(), &Mode::RouteTtl(minute));
/// assert_eq!(Policy::origin_headers().mode(), &Mode::OriginHeaders { heuristic: None });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The route's TTL decides freshness, as Django's `cache_page` does. The
    /// response can still opt out with `no-store`, `private`, `no-cache`,
    /// `Set-Cookie` or `Vary: *`.
    RouteTtl(Duration),
    /// A shared cache by RFC 9111: freshness comes from `s-maxage` >
    /// `max-age` > `Expires`, and nothing without explicit freshness is
    /// stored unless a heuristic is configured.
    OriginHeaders {
        /// Heuristic freshness for responses with `Last-Modified` and no
        /// explicit freshness (RFC 9111 §4.2.2); `None` stores nothing
        /// without explicit freshness.
        heuristic: Option<Heuristic>,
    },
}

/// Heuristic freshness: `percent` percent of the time since `Last-Modified`,
/// at most `cap` (RFC 9111 §4.2.2). The default is 10 percent, capped at one
/// day.
///
/// ```
/// use std::time::Duration;
/// use larder::Heuristic;
///
/// let heuristic = Heuristic::default();
/// assert_eq!(heuristic.percent, 10);
/// assert_eq!(heuristic.cap, Duration::from_secs(24 * 3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heuristic {
    /// Percent of `Date − Last-Modified` (RFC 9111 suggests 10).
    pub percent: u8,
    /// The longest lifetime a heuristic may give.
    pub cap: Duration,
}

impl Default for Heuristic {
    fn default() -> Self {
        Heuristic {
            percent: 10,
            cap: Duration::from_secs(24 * 3600),
        }
    }
}

/// The `Cache-Control` a cached route sends to clients.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderValue;
/// use larder::{ClientCacheControl, Policy};
///
/// let policy = Policy::ttl(Duration::from_secs(600))
///     .client_cache_control(ClientCacheControl::Fixed(HeaderValue::from_static("no-cache")));
/// assert_ne!(policy, Policy::ttl(Duration::from_secs(600)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCacheControl {
    /// When the handler set none: `max-age` = the remaining freshness
    /// (the default in route-TTL mode). A handler's own value is kept.
    RemainingTtl,
    /// Always this value, replacing the handler's.
    Fixed(HeaderValue),
    /// Whatever the handler sent (the default in origin-headers mode).
    Untouched,
}

/// An extra part of a route's cache key, computed from the request: for
/// example a tenant taken from a header the route does not vary on.
pub type KeyExtra = fn(&request::Parts) -> String;

/// One route's caching rules.
///
/// ```
/// use std::time::Duration;
/// use http::header::ACCEPT_LANGUAGE;
/// use larder::Policy;
///
/// let policy = Policy::ttl(Duration::from_secs(60))
///     .namespace("items")
///     .vary([ACCEPT_LANGUAGE]);
/// assert_eq!(policy.namespace_name(), "items");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) mode: Mode,
    pub(crate) namespace: String,
    pub(crate) vary: Vec<HeaderName>,
    pub(crate) statuses: Option<Vec<StatusCode>>,
    pub(crate) client_cache_control: ClientCacheControl,
    pub(crate) honor_request_directives: bool,
    pub(crate) allow_authorization: bool,
    pub(crate) bypass_cookies: bool,
    pub(crate) tags: Vec<String>,
    pub(crate) targets: Vec<HeaderName>,
    pub(crate) header_tags: bool,
    pub(crate) stale_while_revalidate: Option<Duration>,
    pub(crate) stale_if_error: Option<Duration>,
    pub(crate) early_refresh: Option<Duration>,
    pub(crate) key_extra: Option<ExtraFn>,
    /// Namespaces besides its own where a successful unsafe request of the
    /// route invalidates its URI.
    pub(crate) invalidates: Vec<String>,
    /// A write route ([`Policy::write`]): stores nothing, only invalidates.
    pub(crate) write: bool,
    pub(crate) varies: VarySeen,
    pub(crate) namespace_seen: crate::engine::NamespaceSeen,
}

/// Set once a response of the route varied on fields the route did not
/// declare. From then on a lookup also fetches the variant the engine's
/// memo of that URI's Vary names points at, in the same round trip. It is
/// what the engine learned, not a rule: policies compare equal whatever it
/// holds, and clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct VarySeen(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl VarySeen {
    pub(crate) fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set(&self) {
        if !self.get() {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl PartialEq for VarySeen {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for VarySeen {}

/// A [`KeyExtra`] with the equality a `Policy` needs: the same function.
/// Function addresses are not guaranteed unique, so two policies holding
/// one function may (rarely) compare unequal; nothing in larder relies on
/// that comparison, only on the key the function makes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExtraFn(pub KeyExtra);

impl PartialEq for ExtraFn {
    fn eq(&self, other: &Self) -> bool {
        self.0 as usize == other.0 as usize
    }
}

impl Eq for ExtraFn {}

impl Policy {
    /// Route-TTL mode: responses are fresh for `ttl`, whatever the handler's
    /// `Cache-Control` says about freshness. Only 200 responses are stored
    /// unless [`Policy::statuses`] says otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::policy::Mode;
    /// use larder::Policy;
    ///
    /// let policy = Policy::ttl(Duration::from_secs(900));
    /// assert_eq!(policy.mode(), &Mode::RouteTtl(Duration::from_secs(900)));
    /// assert_eq!(policy.namespace_name(), "default");
    /// ```
    pub fn ttl(ttl: Duration) -> Self {
        Policy {
            mode: Mode::RouteTtl(ttl),
            namespace: "default".to_owned(),
            vary: Vec::new(),
            statuses: Some(vec![StatusCode::OK]),
            client_cache_control: ClientCacheControl::RemainingTtl,
            honor_request_directives: true,
            allow_authorization: false,
            bypass_cookies: false,
            tags: Vec::new(),
            targets: Vec::new(),
            header_tags: false,
            stale_while_revalidate: None,
            stale_if_error: None,
            early_refresh: None,
            key_extra: None,
            invalidates: Vec::new(),
            write: false,
            varies: VarySeen::default(),
            namespace_seen: Default::default(),
        }
    }

    /// A write route's policy, for POST, PUT, PATCH and DELETE handlers:
    /// it stores nothing, and a successful (2xx or 3xx) answer invalidates
    /// the request's URI, and a same-origin `Location` or
    /// `Content-Location`, in its namespace and in those
    /// [`Policy::invalidates`] names (RFC 9111 §4.4). A GET or HEAD that
    /// reaches it goes to the handler uncached (`fwd=bypass`, not stored as
    /// `rule`). Freshness rules (mode, vary, statuses, stale windows) mean
    /// nothing here. This is what `#[larder::cache]` without a `ttl` uses.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// // An admin form that changes what `/items` shows.
    /// let policy = Policy::write().namespace("admin").invalidates(["items"]);
    /// assert!(policy.is_write());
    /// assert_eq!(policy.invalidated_namespaces().collect::<Vec<_>>(), ["admin", "items"]);
    /// assert!(!Policy::ttl(Duration::from_secs(60)).is_write());
    /// ```
    pub fn write() -> Self {
        Policy {
            write: true,
            statuses: Some(Vec::new()),
            ..Policy::ttl(Duration::ZERO)
        }
    }

    /// Origin-headers mode: a shared cache by RFC 9111. Freshness comes from
    /// the response (`s-maxage`, `max-age`, `Expires`); a response without
    /// explicit freshness is not stored unless [`Policy::heuristic`] is set.
    /// Client `Cache-Control` defaults to [`ClientCacheControl::Untouched`].
    ///
    /// ```
    /// use larder::policy::Mode;
    /// use larder::{ClientCacheControl, Policy};
    ///
    /// let policy = Policy::origin_headers();
    /// assert_eq!(policy.mode(), &Mode::OriginHeaders { heuristic: None });
    /// let untouched = policy.clone().client_cache_control(ClientCacheControl::Untouched);
    /// assert_eq!(policy, untouched);
    /// ```
    pub fn origin_headers() -> Self {
        Policy {
            mode: Mode::OriginHeaders { heuristic: None },
            statuses: None,
            client_cache_control: ClientCacheControl::Untouched,
            ..Policy::ttl(Duration::ZERO)
        }
    }

    /// In origin-headers mode, give responses with `Last-Modified` and no
    /// explicit freshness a heuristic lifetime, when their status is
    /// heuristically cacheable or they say `public` (RFC 9111 §4.2.2). No
    /// effect in route-TTL mode.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::policy::Mode;
    /// use larder::{Heuristic, Policy};
    ///
    /// let policy = Policy::origin_headers().heuristic(Heuristic::default());
    /// let expected = Mode::OriginHeaders { heuristic: Some(Heuristic::default()) };
    /// assert_eq!(policy.mode(), &expected);
    /// let ttl = Policy::ttl(Duration::from_secs(60));
    /// assert_eq!(ttl.clone().heuristic(Heuristic::default()), ttl);
    /// ```
    pub fn heuristic(mut self, heuristic: Heuristic) -> Self {
        if let Mode::OriginHeaders { heuristic: h } = &mut self.mode {
            *h = Some(heuristic);
        }
        self
    }

    /// The namespace: a name for a group of routes. Default `"default"`.
    /// It is part of every store key, so routes in different namespaces never
    /// share entries.
    ///
    /// ```
    /// use larder::Policy;
    ///
    /// assert_eq!(Policy::origin_headers().namespace("users").namespace_name(), "users");
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        // A clone's handle is for the namespace it had.
        self.namespace_seen = Default::default();
        self
    }

    /// Request header fields whose values select different entries, in
    /// addition to any `Vary` the response sends. They are added to the
    /// response's `Vary` so that downstream caches keep the variants apart.
    /// Calls accumulate; order and repeats do not matter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE};
    /// use larder::Policy;
    ///
    /// let base = Policy::ttl(Duration::from_secs(60));
    /// let a = base.clone().vary([ACCEPT_LANGUAGE]).vary([ACCEPT_ENCODING, ACCEPT_LANGUAGE]);
    /// assert_eq!(a, base.vary([ACCEPT_ENCODING, ACCEPT_LANGUAGE]));
    /// ```
    pub fn vary(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.vary.extend(names);
        self.vary.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        self.vary.dedup();
        self
    }

    /// The response statuses that may be stored. Route-TTL default: 200 only.
    /// Origin-headers default: any final status the response gives explicit
    /// freshness to, except 206 and 304. Replaces the list; 1xx, 206 and 304
    /// are never stored whatever it says.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::StatusCode;
    /// use larder::Policy;
    ///
    /// let ttl = Policy::ttl(Duration::from_secs(60));
    /// assert_eq!(ttl.clone().statuses([StatusCode::OK]), ttl);
    /// let with_404 = ttl.clone().statuses([StatusCode::OK, StatusCode::NOT_FOUND]);
    /// assert_ne!(with_404, ttl);
    /// ```
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.statuses = Some(statuses.into_iter().collect());
        self
    }

    /// The `Cache-Control` sent to clients. Default
    /// [`ClientCacheControl::RemainingTtl`] in route-TTL mode,
    /// [`ClientCacheControl::Untouched`] in origin-headers mode.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::{ClientCacheControl, Policy};
    ///
    /// let ttl = Policy::ttl(Duration::from_secs(60));
    /// assert_eq!(ttl.clone().client_cache_control(ClientCacheControl::RemainingTtl), ttl);
    /// ```
    pub fn client_cache_control(mut self, value: ClientCacheControl) -> Self {
        self.client_cache_control = value;
        self
    }

    /// Whether request directives (`no-cache`, `no-store`, `max-age`,
    /// `only-if-cached`, `Pragma: no-cache`, …) are honoured. Default `true`;
    /// turn it off where clients that send `no-cache` on every request would
    /// defeat the cache.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// let ttl = Policy::ttl(Duration::from_secs(60));
    /// assert_eq!(ttl.clone().honor_request_directives(true), ttl);
    /// assert_ne!(ttl.clone().honor_request_directives(false), ttl);
    /// ```
    pub fn honor_request_directives(mut self, honor: bool) -> Self {
        self.honor_request_directives = honor;
        self
    }

    /// Whether responses to requests carrying `Authorization` may be shared.
    /// Default `false`: in route-TTL mode such requests bypass the cache; in
    /// origin-headers mode the response must say `public`, `s-maxage` or
    /// `must-revalidate` (RFC 9111 §3.5).
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// let ttl = Policy::ttl(Duration::from_secs(60));
    /// assert_eq!(ttl.clone().allow_authorization(false), ttl);
    /// assert_ne!(ttl.clone().allow_authorization(true), ttl);
    /// ```
    pub fn allow_authorization(mut self, allow: bool) -> Self {
        self.allow_authorization = allow;
        self
    }

    /// Whether GET and HEAD requests carrying `Cookie` bypass the cache
    /// (`fwd=bypass`, not stored as `cookie`). Default `false`: the key
    /// ignores cookies and a response that sets one is never shared, but a
    /// response that *depends* on one is only safe behind this switch or
    /// `vary(["cookie"])`. The `larder` proxy turns it on unless a route
    /// says otherwise, since it cannot know what its upstream reads.
    ///
    /// ```
    /// use larder::Policy;
    ///
    /// let policy = Policy::origin_headers().bypass_cookies(true);
    /// assert_ne!(policy, Policy::origin_headers());
    /// ```
    pub fn bypass_cookies(mut self, bypass: bool) -> Self {
        self.bypass_cookies = bypass;
        self
    }

    /// Tags (surrogate keys) recorded in every entry this route stores.
    /// Calls accumulate.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// let ttl = Policy::ttl(Duration::from_secs(60));
    /// assert_eq!(ttl.clone().tags(["items"]).tags(["users"]), ttl.tags(["items", "users"]));
    /// ```
    pub fn tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Targeted cache control (RFC 9213): the first of these fields that a
    /// response carries, and that parses, replaces its `Cache-Control` and
    /// `Expires` for this cache's decision (what clients are told is
    /// unchanged). `surrogate-control` may be listed too. The fields are
    /// removed before responses reach clients, except `CDN-Cache-Control`,
    /// which CDNs further down the path may also use. Calls replace the list.
    ///
    /// ```
    /// use http::HeaderName;
    /// use larder::Policy;
    ///
    /// let policy = Policy::origin_headers().targeted([
    ///     HeaderName::from_static("larder-cache-control"),
    ///     HeaderName::from_static("cdn-cache-control"),
    /// ]);
    /// assert_ne!(policy, Policy::origin_headers());
    /// ```
    pub fn targeted(mut self, fields: impl IntoIterator<Item = HeaderName>) -> Self {
        self.targets = fields.into_iter().collect();
        self
    }

    /// Takes tags from the response too: `Surrogate-Key` (space-separated)
    /// and `Cache-Tag` (comma-separated), besides [`Policy::tags`]. Both
    /// fields are then removed before responses reach clients.
    ///
    /// ```
    /// use larder::Policy;
    ///
    /// let policy = Policy::origin_headers().tags_from_headers(true);
    /// assert_ne!(policy, Policy::origin_headers());
    /// ```
    pub fn tags_from_headers(mut self, on: bool) -> Self {
        self.header_tags = on;
        self
    }

    /// The directives this route's cache uses for a response (targeted
    /// fields first, then `Cache-Control`).
    pub(crate) fn response_directives(
        &self,
        cache_name: &str,
        headers: &http::HeaderMap,
    ) -> super::CacheControl {
        if self.targets.is_empty() {
            return super::CacheControl::from_headers(headers);
        }
        super::targeted::directives(&self.targets, cache_name, headers)
    }

    /// The tags of an entry made from a response with these headers.
    pub(crate) fn entry_tags(&self, headers: &http::HeaderMap) -> Vec<String> {
        let mut tags = self.tags.clone();
        if self.header_tags {
            for tag in super::targeted::header_tags(headers) {
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        tags
    }

    /// Removes the fields meant for this cache alone (targets, tag fields).
    pub(crate) fn strip_cache_fields(&self, headers: &mut http::HeaderMap) {
        if !self.targets.is_empty() || self.header_tags {
            super::targeted::strip_fields(&self.targets, self.header_tags, headers);
        }
    }

    /// The `stale-while-revalidate` window (RFC 5861 §3) for responses that
    /// state none: for that long past expiry, a request gets the stale
    /// response at once (`Cache-Status: larder; hit; ttl=-N`) while one
    /// refresh per key runs in the background, across every instance that
    /// shares the store. Never where stale answers are forbidden
    /// (`must-revalidate`, `proxy-revalidate`, `s-maxage`, `no-cache`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// let policy = Policy::ttl(Duration::from_secs(60))
    ///     .stale_while_revalidate(Duration::from_secs(30));
    /// # let _ = policy;
    /// ```
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.stale_while_revalidate = Some(window);
        self
    }

    /// How long past expiry a stored response may stand in when the handler
    /// answers 500, 502, 503 or 504 or fails outright (RFC 5861
    /// `stale-if-error`), for responses that state no window of their own.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// // A failing database costs users a five-minute-old page, not an error.
    /// let policy = Policy::ttl(Duration::from_secs(60)).stale_if_error(Duration::from_secs(300));
    /// # let _ = policy;
    /// ```
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = Some(window);
        self
    }

    /// Refreshes entries shortly before they expire, with a probability
    /// that grows as expiry nears (probabilistic early expiration,
    /// "XFetch"), so that one request refreshes a popular entry in the
    /// background instead of a crowd missing it at once. `delta` is about
    /// how long the handler takes: the longer, the earlier refreshes start.
    /// The request that draws the refresh still gets the fresh entry at
    /// once. Off by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// // A report that takes ~2 s to build, cached for 10 minutes.
    /// let policy = Policy::ttl(Duration::from_secs(600)).early_refresh(Duration::from_secs(2));
    /// # let _ = policy;
    /// ```
    pub fn early_refresh(mut self, delta: Duration) -> Self {
        self.early_refresh = (!delta.is_zero()).then_some(delta);
        self
    }

    /// Adds `extra(request)` to every key of the route, so that requests
    /// the URI alone cannot tell apart get their own entries.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// fn tenant(parts: &http::request::Parts) -> String {
    ///     let tenant = parts.headers.get("x-tenant").and_then(|v| v.to_str().ok());
    ///     tenant.unwrap_or("public").to_owned()
    /// }
    ///
    /// let policy = Policy::ttl(Duration::from_secs(60)).key_extra(tenant);
    /// # let _ = policy;
    /// ```
    pub fn key_extra(mut self, extra: KeyExtra) -> Self {
        self.key_extra = Some(ExtraFn(extra));
        self
    }

    /// Namespaces where a successful POST, PUT, PATCH, DELETE (or any
    /// unknown method) of this route also invalidates its URI, and a
    /// same-origin `Location` or `Content-Location` (RFC 9111 §4.4): the
    /// route's own namespace always, and these too, each under its current
    /// generation. Use it when the route that writes is not in the
    /// namespace of the GET it changes. The key the invalidation deletes is
    /// built with this route's [`Policy::key_extra`]. Calls accumulate.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// let policy = Policy::ttl(Duration::from_secs(60))
    ///     .namespace("items")
    ///     .invalidates(["search"])
    ///     .invalidates(["items", "search", "home"]);
    /// let namespaces: Vec<_> = policy.invalidated_namespaces().collect();
    /// assert_eq!(namespaces, ["items", "search", "home"]);
    /// ```
    pub fn invalidates<N: Into<String>>(mut self, namespaces: impl IntoIterator<Item = N>) -> Self {
        for namespace in namespaces {
            let namespace = namespace.into();
            if !self.invalidates.contains(&namespace) {
                self.invalidates.push(namespace);
            }
        }
        self
    }

    /// Every namespace a successful unsafe request of this route
    /// invalidates in: its own first, then those [`Policy::invalidates`]
    /// adds, each once.
    ///
    /// ```
    /// use larder::Policy;
    ///
    /// let policy = Policy::write().invalidates(["default", "items"]);
    /// assert_eq!(policy.invalidated_namespaces().collect::<Vec<_>>(), ["default", "items"]);
    /// ```
    pub fn invalidated_namespaces(&self) -> impl Iterator<Item = &str> {
        let own = self.namespace.as_str();
        std::iter::once(own).chain(
            self.invalidates
                .iter()
                .map(String::as_str)
                .filter(move |n| *n != own),
        )
    }

    /// Whether this is a write route's policy ([`Policy::write`]).
    ///
    /// ```
    /// assert!(larder::Policy::write().is_write());
    /// ```
    pub fn is_write(&self) -> bool {
        self.write
    }

    /// The route's namespace.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::Policy;
    ///
    /// assert_eq!(Policy::ttl(Duration::from_secs(60)).namespace_name(), "default");
    /// ```
    pub fn namespace_name(&self) -> &str {
        &self.namespace
    }

    /// The route's mode.
    ///
    /// ```
    /// use larder::policy::Mode;
    /// use larder::Policy;
    ///
    /// assert!(matches!(Policy::origin_headers().mode(), Mode::OriginHeaders { .. }));
    /// ```
    pub fn mode(&self) -> &Mode {
        &self.mode
    }
}
