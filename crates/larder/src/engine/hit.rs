//! The hot path: a fresh copy in the hot tier answers without the store.
//!
//! [`Cache::try_hit`] runs first in every lookup, synchronously. It takes
//! the request only where the long way would have served the same entry
//! fresh: the same rules are checked before it reads (method, body, Host,
//! `Authorization`, cookies, client directives), and anything unusual
//! (client directives, an early-refresh window, a request this cache is
//! filling further out) goes the long way, which answers every case.

use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::{request, Response};

use super::coalesce::Filling;
use super::hot::{HotKey, HotPieces, Seen};
use super::respond;
use super::{trace, Cache};
use crate::clock::{millis, millis_since_epoch};
use crate::entry::Entry;
use crate::policy::freshness::{self, Reuse};
use crate::policy::key::{self, Pieces};
use crate::policy::{storable, ClientCacheControl, Mode, Policy};

/// How many `delta`s before expiry an early refresh can still be drawn:
/// `-ln(u) > 40` has a probability of e⁻⁴⁰. Closer than that, the long way
/// draws.
const EARLY_REFRESH_REACH: f64 = 40.0;

impl Cache {
    /// A fresh hot-tier copy's response for the request, if the hot tier
    /// holds one the long way would have served as a hit.
    pub(crate) fn try_hit(
        &self,
        parts: &request::Parts,
        policy: &Policy,
    ) -> Option<Response<Bytes>> {
        let hot = self.inner.hot.as_ref()?;
        let class = key::method_class(&parts.method)?;
        let headers = &parts.headers;
        if policy.write || parts.extensions.get::<Filling>().is_some() {
            return None;
        }
        let seen = Fields::of(headers);
        if seen.has(Fields::BODY) && storable::request_has_body(headers) {
            return None;
        }
        if policy.honor_request_directives && seen.has(Fields::DIRECTIVES) {
            return None;
        }
        if matches!(policy.mode, Mode::RouteTtl(_))
            && !policy.allow_authorization
            && seen.has(Fields::AUTHORIZATION)
        {
            return None;
        }
        if policy.bypass_cookies && seen.has(Fields::COOKIE) {
            return None;
        }
        let now = self.inner.clock.now();
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let now_ms = millis(since_epoch);
        let generation = self.inner.namespaces.now_seen(
            &policy.namespace_seen,
            &policy.namespace,
            now_ms,
            u64::try_from(self.inner.namespace_refresh.as_millis()).unwrap_or(u64::MAX),
            hot.coherence.is_watched(),
        )?;
        let extra = policy.key_extra.map(|extra| (extra.0)(parts));
        // The Host as sent: a copy exists only if the long way found it
        // valid and allowed (see `HotKey`).
        if seen.has(Fields::HOSTS) {
            return None;
        }
        let pieces = HotPieces::of(parts, seen.host, &policy.namespace, class, extra.as_deref());
        let key = HotKey::new(&pieces, generation);
        hot.with(&key, headers, now_ms, |copy, stamps| {
            let entry = &copy.entry;
            // As a store read requires: the route's declared fields are
            // among those the entry was selected by.
            if !policy
                .vary
                .iter()
                .all(|d| entry.vary.iter().any(|(n, _)| n == d))
            {
                return None;
            }
            // As `freshness::current_age`, from the epoch offsets.
            let age = match copy.received {
                Some(received) => entry
                    .initial_age
                    .saturating_add(since_epoch.saturating_sub(received)),
                None => freshness::current_age(entry.initial_age, entry.response_time, now),
            };
            if freshness::reuse(entry.lifetime, age, entry.forbids_stale, None) != Reuse::Fresh {
                return None;
            }
            if let Some(delta) = policy.early_refresh {
                let remaining = entry.lifetime.saturating_sub(age);
                if remaining.as_secs_f64() <= delta.as_secs_f64() * EARLY_REFRESH_REACH {
                    return None;
                }
            }
            self.inner.counters.hot_hit();
            if tracing::enabled!(target: "larder", tracing::Level::DEBUG) {
                self.trace_hot_hit(parts, policy, generation, extra.as_deref());
            }
            Some(respond::from_copy(
                self,
                policy,
                copy,
                stamps,
                &parts.method,
                headers,
                seen.has(Fields::SPECIAL),
                age,
                now,
            ))
        })
    }

    /// The `larder.lookup` span of a hot hit, as the long way records it
    /// (the store key is built for it: only when a subscriber listens).
    #[cold]
    #[inline(never)]
    fn trace_hot_hit(
        &self,
        parts: &request::Parts,
        policy: &Policy,
        generation: u64,
        extra: Option<&str>,
    ) {
        let primary = key::primary(
            &self.inner.prefix,
            &policy.namespace,
            generation,
            &parts.method,
            &parts.uri,
            &parts.headers,
            extra,
        );
        let key = primary
            .as_ref()
            .map_or("", |p| trace::short_key(&p.store_key));
        let _span = tracing::debug_span!(
            target: "larder",
            "larder.lookup",
            cache = %self.inner.name,
            method = %parts.method,
            uri = %parts.uri,
            namespace = %policy.namespace,
            key,
            outcome = "hit",
            hot = true,
        );
    }

    /// Whether the cache serves `host` (lowercased, default port removed).
    pub(crate) fn host_allowed(&self, host: &str) -> bool {
        match &self.inner.allowed_hosts {
            None => true,
            Some(allowed) => {
                // Compare without the port an https request may carry too.
                let bare = key::normalize_host(host, "https");
                allowed.iter().any(|a| a == host || *a == bare)
            }
        }
    }

    /// What a store read must record first, for the copy it may make.
    pub(crate) fn hot_before_read(&self, store_key: &str) -> Option<Seen> {
        self.inner.hot.as_ref().map(|h| h.before_read(store_key))
    }

    /// Adds the variant key a read goes on to fetch.
    pub(crate) fn hot_and(&self, seen: Option<Seen>, store_key: &str) -> Option<Seen> {
        let hot = self.inner.hot.as_ref()?;
        seen.map(|s| s.and(hot, store_key))
    }

    /// Keeps a copy of an entry a store read found fresh for this request.
    pub(crate) fn keep_hot(
        &self,
        parts: &request::Parts,
        policy: &Policy,
        generation: u64,
        extra: Option<&str>,
        entry: &Entry,
        seen: Option<Seen>,
    ) {
        let (Some(hot), Some(seen)) = (self.inner.hot.as_ref(), seen) else {
            return;
        };
        let Some(class) = key::method_class(&parts.method) else {
            return;
        };
        let host = key::key_host(&parts.uri, &parts.headers);
        let pieces = Pieces {
            namespace: &policy.namespace,
            class,
            scheme: key::scheme(&parts.uri),
            host: &host,
            path: parts.uri.path(),
            query: parts.uri.query(),
            extra,
        };
        // The entry was checked against the request's key; this only
        // guards the copy's own key against a mismatch of layouts.
        if !pieces.are(&entry.material) {
            return;
        }
        // The same scan `try_hit` makes, so that both key a request alike.
        let fields = Fields::of(&parts.headers);
        if fields.has(Fields::HOSTS) {
            return;
        }
        let hot_pieces = HotPieces::of(parts, fields.host, &policy.namespace, class, extra);
        let now_ms = millis_since_epoch(self.inner.clock.now());
        let control = matches!(
            policy.client_cache_control,
            ClientCacheControl::RemainingTtl
        );
        hot.keep(
            &HotKey::new(&hot_pieces, generation),
            entry,
            seen,
            now_ms,
            control,
        );
        self.hot_gauges_changed();
    }

    /// This instance wrote or deleted `store_key` (the store has
    /// answered): copies read from it before are not served again.
    pub(crate) fn hot_changed(&self, store_key: &str) {
        if let Some(hot) = &self.inner.hot {
            hot.coherence.bump(store_key.as_bytes());
        }
        self.hot_gauges_changed();
    }

    /// This instance purged a tag: the copies of its entries go.
    pub(crate) fn hot_forget_tag(&self, tag: &str) {
        if let Some(hot) = &self.inner.hot {
            hot.forget_tag(tag);
        }
        self.hot_gauges_changed();
    }

    /// Whether the store reports changes now, so that the namespaces'
    /// generations need no polling and copies no time limit.
    pub(crate) fn hot_watched(&self) -> bool {
        self.inner
            .hot
            .as_ref()
            .is_some_and(|h| h.coherence.is_watched())
    }

    /// Whether the hot tier is on and its store reports every change to
    /// it now: copies are then served until their key changes anywhere;
    /// otherwise for at most [`l1_ttl`](crate::CacheBuilder::l1_ttl).
    ///
    /// ```
    /// // The memory store reports every change.
    /// assert!(larder::Cache::builder().build().hot_tier_watched());
    /// assert!(!larder::Cache::builder().hot_tier_bytes(0).build().hot_tier_watched());
    /// ```
    pub fn hot_tier_watched(&self) -> bool {
        self.hot_watched()
    }

    /// How many changes the store has reported to this cache (and losses
    /// and restorations of its reporting): tests and tools wait on it to
    /// know that another instance's write has been seen here.
    ///
    /// ```
    /// let cache = larder::Cache::builder().build();
    /// assert_eq!(cache.hot_tier_reports(), 1); // the memory store's "restored"
    /// ```
    pub fn hot_tier_reports(&self) -> u64 {
        self.inner.hot.as_ref().map_or(0, |h| h.coherence.reports())
    }

    /// Tells the metrics recorder the hot tier's size, after it changed.
    fn hot_gauges_changed(&self) {
        #[cfg(feature = "metrics")]
        {
            let (entries, bytes) = self.hot_gauges();
            self.inner.meters.hot_entries.set(entries as f64);
            self.inner.meters.hot_bytes.set(bytes as f64);
        }
    }

    pub(crate) fn hot_gauges(&self) -> (u64, u64) {
        self.inner
            .hot
            .as_ref()
            .map_or((0, 0), |h| (h.len() as u64, h.bytes()))
    }
}

/// Which of the request fields the hot path cares about are present, and
/// the `Host` line, found in one pass over the request's fields (most
/// requests carry none of the others, and one pass costs less than a
/// lookup per name).
#[derive(Clone, Copy)]
struct Fields<'a> {
    bits: u8,
    /// The first `Host` line.
    host: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// `Content-Length` or `Transfer-Encoding`: maybe a body.
    const BODY: u8 = 1;
    /// `Cache-Control` or `Pragma`.
    const DIRECTIVES: u8 = 2;
    const AUTHORIZATION: u8 = 4;
    const COOKIE: u8 = 8;
    /// Preconditions or `Range`: the long answer builder handles them.
    const SPECIAL: u8 = 16;
    /// More than one `Host` line.
    const HOSTS: u8 = 32;

    fn of(headers: &'a http::HeaderMap) -> Self {
        use http::header::*;
        let mut bits = 0;
        let mut host = None;
        for (name, value) in headers {
            bits |= if name == HOST {
                if host.replace(value.as_bytes()).is_some() {
                    Self::HOSTS
                } else {
                    0
                }
            } else if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                Self::BODY
            } else if name == CACHE_CONTROL || name == PRAGMA {
                Self::DIRECTIVES
            } else if name == AUTHORIZATION {
                Self::AUTHORIZATION
            } else if name == COOKIE {
                Self::COOKIE
            } else if name == RANGE
                || name == IF_MATCH
                || name == IF_NONE_MATCH
                || name == IF_MODIFIED_SINCE
                || name == IF_UNMODIFIED_SINCE
                || name == IF_RANGE
            {
                Self::SPECIAL
            } else {
                0
            };
        }
        Fields { bits, host }
    }

    fn has(self, bit: u8) -> bool {
        self.bits & bit != 0
    }
}

#[cfg(test)]
mod tests {
    use http::header::*;

    #[test]
    fn the_field_scan_finds_the_host_line_and_a_second_one() {
        let mut headers = HeaderMap::new();
        assert_eq!(Fields::of(&headers).host, None);
        headers.insert(HOST, HeaderValue::from_static("a.example"));
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        let seen = Fields::of(&headers);
        assert_eq!(seen.host, Some(&b"a.example"[..]));
        assert!(!seen.has(Fields::HOSTS));
        headers.append(HOST, HeaderValue::from_static("b.example"));
        assert!(Fields::of(&headers).has(Fields::HOSTS));
    }
    use http::{HeaderMap, HeaderValue};

    use super::Fields;
    use crate::policy::{conditional, storable};

    /// The one pass stands in for the policy functions the long way calls:
    /// wherever they say "special" or "maybe a body", so must it.
    #[test]
    fn the_field_scan_agrees_with_the_rules_it_stands_in_for() {
        let names = [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
            IF_RANGE,
            RANGE,
            CONTENT_LENGTH,
            TRANSFER_ENCODING,
            CACHE_CONTROL,
            PRAGMA,
            AUTHORIZATION,
            COOKIE,
            ACCEPT,
            HOST,
        ];
        for name in names {
            let mut headers = HeaderMap::new();
            headers.insert(name.clone(), HeaderValue::from_static("1"));
            let seen = Fields::of(&headers);
            assert!(!seen.has(Fields::HOSTS), "{name}");
            let special = conditional::has_preconditions(&headers) || headers.contains_key(RANGE);
            assert_eq!(seen.has(Fields::SPECIAL), special, "{name}");
            if storable::request_has_body(&headers) {
                assert!(seen.has(Fields::BODY), "{name}");
            }
        }
    }
}

#[cfg(test)]
mod near_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http::Request;

    use crate::{Cache, Lookup, Policy};

    /// A cache whose hot tier holds `/items` with `body`.
    fn warm(body: &'static [u8]) -> (Cache, Arc<Policy>) {
        let cache = Cache::builder().build();
        let policy = Arc::new(Policy::ttl(Duration::from_secs(600)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for _ in 0..2 {
                match cache.lookup(&parts(), &policy).await {
                    Lookup::Forward(fill) => {
                        let response = http::Response::new(http_body_util::Full::new(
                            Bytes::from_static(body),
                        ));
                        drop(fill.complete(response).await);
                    }
                    Lookup::Respond(_) | Lookup::Refresh(..) => {}
                }
            }
        });
        (cache, policy)
    }

    fn parts() -> http::request::Parts {
        let request = Request::get("/items").header("host", "example.com");
        request.body(()).unwrap().into_parts().0
    }

    /// The body a hot hit on this thread and one on another thread send.
    fn two_threads(cache: &Cache, policy: &Arc<Policy>) -> (Bytes, Bytes) {
        let hit = || {
            let response = cache.try_hit(&parts(), policy).expect("a hot hit");
            response.into_body()
        };
        let here = hit();
        let there = std::thread::scope(|s| s.spawn(hit).join().unwrap());
        (here, there)
    }

    #[test]
    fn threads_serve_a_small_body_from_bytes_of_their_own() {
        static SMALL: [u8; 1024] = [b'x'; 1024];
        let (cache, policy) = warm(&SMALL);
        let (here, there) = two_threads(&cache, &policy);
        assert_eq!((&here[..], &there[..]), (&SMALL[..], &SMALL[..]));
        assert_ne!(
            here.as_ptr(),
            there.as_ptr(),
            "one buffer shared by both threads"
        );
        // And the same bytes again on this thread: the copy is kept.
        let again = cache.try_hit(&parts(), &policy).unwrap().into_body();
        assert_eq!(again.as_ptr(), here.as_ptr());
    }

    #[test]
    fn threads_share_a_large_body() {
        static LARGE: [u8; super::super::hot::OWN_MAX_BODY + 1] =
            [b'x'; super::super::hot::OWN_MAX_BODY + 1];
        let (cache, policy) = warm(&LARGE);
        let (here, there) = two_threads(&cache, &policy);
        assert_eq!(here.len(), LARGE.len());
        assert_eq!(here.as_ptr(), there.as_ptr());
    }
}
