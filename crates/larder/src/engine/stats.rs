//! Counters the engine keeps, and the snapshot users read.
//!
//! With the `metrics` feature each counter also reports to the `metrics`
//! facade's recorder (see `meter.rs`); without it a count is one relaxed
//! atomic add.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::policy::NotStored;

/// One counter: what [`Stats`] reads and, with the `metrics` feature, what
/// the recorder is told.
pub(crate) struct Count {
    n: AtomicU64,
    /// For the counts every hit moves: one per group of threads, each on
    /// its own cache line, so that cores serving hits at once do not take
    /// turns owning one line (summed when read).
    stripes: Option<Box<[Stripe; STRIPES]>>,
    #[cfg(feature = "metrics")]
    handle: metrics::Counter,
}

const STRIPES: usize = 8;

/// Two lines: neighbouring lines are fetched in pairs.
#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

/// This thread's stripe, dealt round-robin on first use.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

impl Count {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn new(cache: &str, name: &'static str, label: Option<(&'static str, &'static str)>) -> Self {
        Count {
            n: AtomicU64::new(0),
            stripes: None,
            #[cfg(feature = "metrics")]
            handle: super::meter::counter(cache, name, label),
        }
    }

    /// A count moved on every hit: striped.
    fn striped(
        cache: &str,
        name: &'static str,
        label: Option<(&'static str, &'static str)>,
    ) -> Self {
        Count {
            stripes: Some(Box::default()),
            ..Count::new(cache, name, label)
        }
    }

    pub fn load(&self) -> u64 {
        let striped = self
            .stripes
            .as_ref()
            .map_or(0, |s| s.iter().map(|s| s.0.load(Relaxed)).sum());
        self.n.load(Relaxed) + striped
    }
}

pub(crate) struct Counters {
    pub hits: Count,
    pub hot_hits: Count,
    pub stale_hits: Count,
    pub misses: Count,
    pub bypasses: Count,
    pub collapsed: Count,
    pub refreshes: Count,
    pub revalidated: Count,
    pub not_modified: Count,
    pub stores: Count,
    pub invalidations: Count,
    pub store_errors: Count,
    pub corrupt_entries: Count,
    pub repaired: Count,
    /// Its own limit, so that a burst of store errors does not hide the
    /// one line that says a key was repaired.
    pub repair_log: RateLimitedLog,
    pub not_stored: [Count; NotStored::ALL.len()],
}

impl Counters {
    /// The counters of the cache named `cache` (the `cache` label of its
    /// metrics).
    pub fn new(cache: &str) -> Self {
        let outcome = |o| Count::new(cache, "larder_requests_total", Some(("outcome", o)));
        let plain = |name| Count::new(cache, name, None);
        Counters {
            hits: Count::striped(cache, "larder_requests_total", Some(("outcome", "hit"))),
            hot_hits: Count::striped(cache, "larder_hot_hits_total", None),
            stale_hits: outcome("stale"),
            misses: outcome("miss"),
            bypasses: outcome("bypass"),
            collapsed: outcome("collapsed"),
            refreshes: plain("larder_refreshes_total"),
            revalidated: plain("larder_revalidated_total"),
            not_modified: plain("larder_not_modified_total"),
            stores: plain("larder_stores_total"),
            invalidations: plain("larder_invalidations_total"),
            // Reported by operation where the error is seen (`Cache::store_error`).
            store_errors: Count {
                n: AtomicU64::new(0),
                stripes: None,
                #[cfg(feature = "metrics")]
                handle: metrics::Counter::noop(),
            },
            corrupt_entries: plain("larder_corrupt_entries_total"),
            repaired: plain("larder_repaired_total"),
            repair_log: RateLimitedLog::default(),
            not_stored: NotStored::ALL.map(|reason| {
                Count::new(
                    cache,
                    "larder_not_stored_total",
                    Some(("reason", reason.as_str())),
                )
            }),
        }
    }

    #[inline]
    pub fn bump(counter: &Count) {
        match &counter.stripes {
            Some(stripes) => stripes[stripe()].0.fetch_add(1, Relaxed),
            None => counter.n.fetch_add(1, Relaxed),
        };
        #[cfg(feature = "metrics")]
        counter.handle.increment(1);
    }

    /// A hit from the hot tier: one count, not two (`hits` in the
    /// snapshot adds these to the long way's), as every atomic add on the
    /// hot path shows in its cost.
    #[inline]
    pub fn hot_hit(&self) {
        Counters::bump(&self.hot_hits);
        #[cfg(feature = "metrics")]
        self.hits.handle.increment(1);
    }

    pub fn not_stored(&self, reason: NotStored) {
        Counters::bump(&self.not_stored[reason.index()]);
    }

    pub fn snapshot(&self) -> Stats {
        Stats {
            hits: self.hits.load() + self.hot_hits.load(),
            hot_hits: self.hot_hits.load(),
            hot_entries: 0,
            hot_bytes: 0,
            stale_hits: self.stale_hits.load(),
            misses: self.misses.load(),
            bypasses: self.bypasses.load(),
            collapsed: self.collapsed.load(),
            refreshes: self.refreshes.load(),
            revalidated: self.revalidated.load(),
            not_modified: self.not_modified.load(),
            stores: self.stores.load(),
            invalidations: self.invalidations.load(),
            store_errors: self.store_errors.load(),
            corrupt_entries: self.corrupt_entries.load(),
            repaired: self.repaired.load(),
            not_stored: std::array::from_fn(|i| self.not_stored[i].load()),
        }
    }
}

/// What a [`Cache`](crate::Cache) has done since it was built.
///
/// ```
/// use larder::{Cache, NotStored};
///
/// let stats = Cache::builder().build().stats();
/// assert_eq!(stats.hits, 0);
/// assert_eq!(stats.not_stored(NotStored::SetCookie), 0);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered from a fresh stored response.
    pub hits: u64,
    /// Of the hits, those answered from the hot tier, without the store.
    pub hot_hits: u64,
    /// URIs with copies in the hot tier now.
    pub hot_entries: u64,
    /// What the hot tier's copies weigh now, in bytes (headers, bodies,
    /// and the structures around them).
    pub hot_bytes: u64,
    /// Requests answered from a stale stored response the request accepted.
    pub stale_hits: u64,
    /// Cacheable requests that went to the handler.
    pub misses: u64,
    /// Requests the cache did not handle (method, route rule, request directive).
    pub bypasses: u64,
    /// Requests answered with another request's fetch (coalesced).
    pub collapsed: u64,
    /// Background refreshes started (stale-while-revalidate, early refresh).
    pub refreshes: u64,
    /// Stored responses the handler confirmed with a 304 to their
    /// validators, and that were kept with updated header fields.
    pub revalidated: u64,
    /// Requests answered 304 Not Modified by the cache.
    pub not_modified: u64,
    /// Responses stored.
    pub stores: u64,
    /// URIs invalidated by unsafe methods.
    pub invalidations: u64,
    /// Store operations that failed (each served as a miss).
    pub store_errors: u64,
    /// Stored values that could not be decoded (each served as a miss and deleted).
    pub corrupt_entries: u64,
    /// larder's own keys found holding something larder did not write
    /// there, and repaired: a lease key holding a value that is not a live
    /// lease (taken over), a namespace generation that is not a counter
    /// (reset above any generation used), a tag index that is not a set
    /// (deleted and made again).
    pub repaired: u64,
    not_stored: [u64; NotStored::ALL.len()],
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Reasons<'a>(&'a Stats);
        impl std::fmt::Debug for Reasons<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let nonzero = NotStored::ALL.iter().filter(|r| self.0.not_stored(**r) > 0);
                f.debug_map()
                    .entries(nonzero.map(|r| (r.as_str(), self.0.not_stored(*r))))
                    .finish()
            }
        }
        f.debug_struct("Stats")
            .field("hits", &self.hits)
            .field("hot_hits", &self.hot_hits)
            .field("hot_entries", &self.hot_entries)
            .field("hot_bytes", &self.hot_bytes)
            .field("stale_hits", &self.stale_hits)
            .field("misses", &self.misses)
            .field("bypasses", &self.bypasses)
            .field("collapsed", &self.collapsed)
            .field("refreshes", &self.refreshes)
            .field("revalidated", &self.revalidated)
            .field("not_modified", &self.not_modified)
            .field("stores", &self.stores)
            .field("invalidations", &self.invalidations)
            .field("store_errors", &self.store_errors)
            .field("corrupt_entries", &self.corrupt_entries)
            .field("repaired", &self.repaired)
            .field("not_stored", &Reasons(self))
            .finish()
    }
}

/// As JSON, the fields by name, `not_stored` as an object of every reason
/// (by its `Cache-Status` token) to its count, and `hit_ratio`.
///
/// ```
/// let stats = larder::Cache::builder().build().stats();
/// let json = serde_json::to_value(&stats).unwrap();
/// assert_eq!(json["hits"], 0);
/// assert_eq!(json["not_stored"]["set-cookie"], 0);
/// assert_eq!(json["hit_ratio"], 0.0);
/// ```
#[cfg(feature = "serde")]
impl serde::Serialize for Stats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeStruct};
        struct Reasons<'a>(&'a Stats);
        impl serde::Serialize for Reasons<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(NotStored::ALL.len()))?;
                for reason in NotStored::ALL {
                    map.serialize_entry(reason.as_str(), &self.0.not_stored(reason))?;
                }
                map.end()
            }
        }
        let mut s = serializer.serialize_struct("Stats", 18)?;
        s.serialize_field("hits", &self.hits)?;
        s.serialize_field("hot_hits", &self.hot_hits)?;
        s.serialize_field("hot_entries", &self.hot_entries)?;
        s.serialize_field("hot_bytes", &self.hot_bytes)?;
        s.serialize_field("stale_hits", &self.stale_hits)?;
        s.serialize_field("misses", &self.misses)?;
        s.serialize_field("bypasses", &self.bypasses)?;
        s.serialize_field("collapsed", &self.collapsed)?;
        s.serialize_field("refreshes", &self.refreshes)?;
        s.serialize_field("revalidated", &self.revalidated)?;
        s.serialize_field("not_modified", &self.not_modified)?;
        s.serialize_field("stores", &self.stores)?;
        s.serialize_field("invalidations", &self.invalidations)?;
        s.serialize_field("store_errors", &self.store_errors)?;
        s.serialize_field("corrupt_entries", &self.corrupt_entries)?;
        s.serialize_field("repaired", &self.repaired)?;
        s.serialize_field("not_stored", &Reasons(self))?;
        s.serialize_field("hit_ratio", &self.hit_ratio())?;
        s.end()
    }
}

impl Stats {
    /// The share of cacheable requests answered from the cache: fresh and
    /// stale hits, and requests answered with another request's fetch,
    /// over those and the misses. Bypasses are not counted (the cache
    /// never tried). 0 before any cacheable request.
    ///
    /// ```
    /// let mut stats = larder::Stats::default();
    /// assert_eq!(stats.hit_ratio(), 0.0);
    /// (stats.hits, stats.misses) = (3, 1);
    /// assert_eq!(stats.hit_ratio(), 0.75);
    /// stats.bypasses = 100; // the cache never tried these
    /// assert_eq!(stats.hit_ratio(), 0.75);
    /// ```
    pub fn hit_ratio(&self) -> f64 {
        let answered = self.hits + self.stale_hits + self.collapsed;
        let all = answered + self.misses;
        if all == 0 {
            0.0
        } else {
            answered as f64 / all as f64
        }
    }

    /// Responses not stored for `reason`.
    pub fn not_stored(&self, reason: NotStored) -> u64 {
        self.not_stored[reason.index()]
    }
}

impl super::Cache {
    /// Counts a repaired key and logs it (rate-limited): `what` says what
    /// was found under `key` and what became of it.
    pub(crate) fn repaired(&self, key: &str, what: &'static str) {
        let counters = &self.inner.counters;
        Counters::bump(&counters.repaired);
        if let Some(suppressed) = counters.repair_log.allow() {
            tracing::warn!(
                key,
                suppressed,
                "larder: {what}; repaired (something other than larder wrote there)"
            );
        }
    }
}

/// Logs at most once per interval, counting what it held back, so a dead
/// store cannot flood the logs at request rate.
pub(crate) struct RateLimitedLog {
    interval: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Default for RateLimitedLog {
    /// Once per 10 s.
    fn default() -> Self {
        RateLimitedLog::new(Duration::from_secs(10))
    }
}

impl RateLimitedLog {
    pub fn new(interval: Duration) -> Self {
        RateLimitedLog {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// Returns the number of messages suppressed since the last one when
    /// this one should be logged, `None` when it should be held back.
    pub fn allow(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = state.1;
                *state = (Some(now), 0);
                Some(suppressed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_striped_count_sums_every_threads_bumps() {
        let counters = Counters::new("test");
        std::thread::scope(|scope| {
            for _ in 0..(STRIPES + 3) {
                scope.spawn(|| {
                    for _ in 0..1_000 {
                        Counters::bump(&counters.hits);
                    }
                });
            }
        });
        Counters::bump(&counters.hits);
        assert!(counters.hits.stripes.is_some());
        assert_eq!(counters.hits.load(), (STRIPES as u64 + 3) * 1_000 + 1);
        assert_eq!(counters.snapshot().hits, counters.hits.load());
    }

    #[test]
    fn a_hot_hit_is_counted_once_and_is_a_hit() {
        let counters = Counters::new("test");
        Counters::bump(&counters.hits);
        counters.hot_hit();
        counters.hot_hit();
        assert_eq!(counters.hits.load(), 1, "the long way's hits alone");
        let stats = counters.snapshot();
        assert_eq!((stats.hits, stats.hot_hits), (3, 2));
    }

    #[test]
    fn rate_limited_log_holds_back_within_the_interval() {
        let log = RateLimitedLog::new(Duration::from_secs(3600));
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        let open = RateLimitedLog::new(Duration::ZERO);
        assert_eq!(open.allow(), Some(0));
        assert_eq!(open.allow(), Some(0));
    }

    #[test]
    fn not_stored_counts_by_reason() {
        let c = Counters::new("test");
        c.not_stored(NotStored::Private);
        c.not_stored(NotStored::Private);
        c.not_stored(NotStored::SetCookie);
        let s = c.snapshot();
        assert_eq!(s.not_stored(NotStored::Private), 2);
        assert_eq!(s.not_stored(NotStored::SetCookie), 1);
        assert_eq!(s.not_stored(NotStored::NoStore), 0);
        let debug = format!("{s:?}");
        assert!(
            debug.contains(r#"not_stored: {"private": 2, "set-cookie": 1}"#),
            "{debug}"
        );
    }
}
