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
use super::fields::Fields;
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
        let _span = trace::lookup_span!(self, parts, policy, key, outcome = "hit", hot = true);
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
