//! The engine: the one place where policy meets a store.
//!
//! [`Cache::lookup`] decides the [`Lookup`] of a request: answer it from the
//! cache, or forward it to the handler with a [`Fill`] that knows what to do
//! with the response. Adapters (the tower layer, the attribute macro, the
//! proxy) only translate their framework's types to these calls.

mod body;
mod coalesce;
mod failed;
mod fields;
mod fill;
mod hit;
mod hot;
mod lease;
mod lookup;
#[cfg(feature = "macros")]
mod memo;
#[cfg(feature = "metrics")]
mod meter;
mod namespaces;
mod purge;
mod respond;
mod stats;
mod tee;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;

use crate::clock::{Clock, SystemClock};
use crate::policy::cache_status::is_sf_token;
use crate::store::{MemoryStore, Store, StoreError, Watch, Watcher};

pub use body::CacheBody;
#[cfg(feature = "axum")]
pub(crate) use coalesce::Filling;
pub use failed::Failure;
pub use fill::Fill;
pub use lookup::Lookup;
pub(crate) use namespaces::NamespaceSeen;
pub use purge::PurgeError;
pub use stats::Stats;
pub use tee::DEFAULT_IN_FLIGHT_BYTES;

/// The default in-memory capacity when no store is given: 64 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// How many URIs' Vary names an instance remembers.
const VARY_MEMO_ENTRIES: u64 = 10_000;

/// How many uncacheable keys an instance remembers for hit-for-miss.
const UNCACHEABLE_KEYS: u64 = 10_000;

/// The default size of the hot tier (ready-to-send copies of the entries
/// being read): 32 MiB.
pub const DEFAULT_HOT_TIER_BYTES: u64 = 32 << 20;

/// The default longest a hot-tier copy is served while the store cannot
/// report changes: 1 s.
pub const DEFAULT_L1_TTL: Duration = Duration::from_secs(1);

/// The default largest body the cache buffers and stores: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;

/// An HTTP response cache: a store, and how to use it.
///
/// Cheap to clone; clones share the store, the in-flight requests and the
/// stats.
///
/// ```
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use larder::{Cache, MemoryStore, Policy};
///
/// let cache = Cache::builder().store(MemoryStore::new(256 << 20)).build();
/// let app: Router = Router::new().route(
///     "/items",
///     get(|| async { "items" }).layer(cache.layer(Policy::ttl(Duration::from_secs(900)))),
/// );
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub prefix: String,
    pub name: String,
    pub clock: Arc<dyn Clock>,
    pub max_body: usize,
    pub legacy_header: Option<HeaderName>,
    /// Lowercased hosts (default port removed) the cache serves; `None`:
    /// every host.
    pub allowed_hosts: Option<Vec<String>>,
    pub detail: bool,
    pub coalesce_wait: Duration,
    /// Off: every miss runs the handler (for comparison runs).
    pub coalescing: bool,
    pub lease_ttl: Duration,
    pub hit_for_miss: Duration,
    /// Keys whose last fill was uncacheable, for `hit_for_miss`: their
    /// misses go straight to the handler, in parallel.
    pub uncacheable: Option<moka::sync::Cache<String, ()>>,
    pub namespace_refresh: Duration,
    pub namespaces: Arc<namespaces::Namespaces>,
    /// Ready-to-send copies of what was read; `None` when turned off.
    pub hot: Option<hot::Hot>,
    /// The Vary names last seen in each URI's variant index, so that a
    /// route whose responses vary still hits in one round trip.
    pub vary_memo: moka::sync::Cache<String, Arc<[HeaderName]>>,
    pub flights: Arc<coalesce::Flights>,
    /// Bytes streamed misses hold to store them, all fills together.
    pub in_flight: tee::Budget,
    pub counters: stats::Counters,
    #[cfg(feature = "metrics")]
    pub meters: meter::Meters,
    pub error_log: stats::RateLimitedLog,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.inner.name)
            .field("prefix", &self.inner.prefix)
            .field("max_body", &self.inner.max_body)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// Starts building a cache. Without a store it uses a
    /// [`MemoryStore`] of [`DEFAULT_MEMORY_BYTES`].
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> Stats {
        let mut stats = self.inner.counters.snapshot();
        (stats.hot_entries, stats.hot_bytes) = self.hot_gauges();
        stats
    }

    /// The name the cache uses in `Cache-Status`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub(crate) fn store_error(&self, op: &'static str, err: StoreError) {
        if err.is_too_large() {
            // A limit of the store, not a failure: the entry is not stored.
            self.inner
                .counters
                .not_stored(crate::policy::NotStored::TooLarge);
            return;
        }
        stats::Counters::bump(&self.inner.counters.store_errors);
        #[cfg(feature = "metrics")]
        meter::store_error(&self.inner.name, op);
        if let Some(suppressed) = self.inner.error_log.allow() {
            tracing::warn!(
                error = %err,
                op,
                suppressed,
                "larder: store failed; serving as a miss"
            );
        }
    }

    pub(crate) fn max_record_bytes(&self) -> usize {
        // Room for headers and framing on top of the body.
        self.inner.max_body.saturating_add(1 << 20)
    }
}

/// Builds a [`Cache`].
///
/// ```
/// use std::time::Duration;
/// use larder::{Cache, MemoryStore};
///
/// let cache = Cache::builder()
///     .store(MemoryStore::new(128 << 20))
///     .prefix("myapp")
///     .name("myapp-cache")
///     .max_body_bytes(2 << 20)
///     .legacy_status_header("x-cache")
///     .build();
/// assert_eq!(cache.name(), "myapp-cache");
/// ```
pub struct CacheBuilder {
    store: Option<Arc<dyn Store>>,
    prefix: String,
    name: String,
    clock: Arc<dyn Clock>,
    max_body: usize,
    legacy_header: Option<HeaderName>,
    allowed_hosts: Option<Vec<String>>,
    detail: bool,
    coalesce_wait: Duration,
    coalescing: bool,
    lease_ttl: Duration,
    hit_for_miss: Duration,
    namespace_refresh: Duration,
    hot_tier_bytes: u64,
    l1_ttl: Duration,
    in_flight_bytes: usize,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            store: None,
            prefix: "larder".to_owned(),
            name: "larder".to_owned(),
            clock: Arc::new(SystemClock),
            max_body: DEFAULT_MAX_BODY_BYTES,
            legacy_header: None,
            allowed_hosts: None,
            detail: false,
            coalesce_wait: Duration::from_secs(30),
            coalescing: true,
            lease_ttl: Duration::from_secs(10),
            hit_for_miss: Duration::from_secs(10),
            namespace_refresh: Duration::from_secs(1),
            hot_tier_bytes: DEFAULT_HOT_TIER_BYTES,
            l1_ttl: DEFAULT_L1_TTL,
            in_flight_bytes: DEFAULT_IN_FLIGHT_BYTES,
        }
    }
}

impl CacheBuilder {
    /// Where entries are kept.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A store shared with other code (for example to inspect it in tests).
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The first part of every store key. Default `larder`; give each
    /// application sharing a store its own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The cache's name in `Cache-Status`. Default `larder`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Where time comes from. Default: the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The largest body the cache buffers and stores. Larger bodies, and
    /// bodies of unknown length that grow past it, stream through to the
    /// client uncached. Default [`DEFAULT_MAX_BODY_BYTES`].
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// Also send a legacy status header (such as `x-cache: HIT`) beside
    /// `Cache-Status`. Ignored, with a logged error, if `name` is not a
    /// valid header name.
    pub fn legacy_status_header(mut self, name: &str) -> Self {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => self.legacy_header = Some(n),
            Err(_) => tracing::error!(name, "larder: invalid legacy status header name ignored"),
        }
        self
    }

    /// Serve from and store to the cache only for these hosts (compared
    /// lowercased, default port removed); requests for any other `Host`
    /// bypass it. Without it every host is cached, each under its own key:
    /// an allowlist keeps forged `Host` values from filling the cache.
    ///
    /// ```
    /// let cache = larder::Cache::builder()
    ///     .allowed_hosts(["example.com", "www.example.com"])
    ///     .build();
    /// # let _ = cache;
    /// ```
    pub fn allowed_hosts<H: AsRef<str>>(mut self, hosts: impl IntoIterator<Item = H>) -> Self {
        let hosts = hosts
            .into_iter()
            .map(|h| crate::policy::key::normalize_host(h.as_ref(), "http"))
            .collect();
        self.allowed_hosts = Some(hosts);
        self
    }

    /// Add `detail=<reason>` to `Cache-Status` when a response is not
    /// stored. Off by default: it tells clients about the cache's rules.
    pub fn cache_status_detail(mut self, on: bool) -> Self {
        self.detail = on;
        self
    }

    /// How long a request waits for another request's fetch of the same
    /// key before fetching for itself. Default 30 s.
    pub fn coalesce_wait(mut self, wait: Duration) -> Self {
        self.coalesce_wait = wait;
        self
    }

    /// Whether concurrent misses on one key wait for one fetch (default
    /// on). Off, every miss runs the handler: only for measuring what
    /// coalescing saves.
    ///
    /// ```
    /// let cache = larder::Cache::builder().coalescing(false).build();
    /// # let _ = cache;
    /// ```
    pub fn coalescing(mut self, on: bool) -> Self {
        self.coalescing = on;
        self
    }

    /// How long an instance filling a key holds its lease in a shared store
    /// (Redis): other instances wait for its entry rather than fetch too.
    /// A lease whose holder died frees the key after this long, and one of
    /// the waiting instances fetches. Make it longer than a slow fetch.
    /// Default 10 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = larder::Cache::builder().lease_ttl(Duration::from_secs(5)).build();
    /// # let _ = cache;
    /// ```
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// How long the cache remembers that a key's response was uncacheable
    /// (private, `Set-Cookie`, `no-store`, too large): meanwhile its
    /// requests run the handler in parallel instead of queuing behind one
    /// fetch whose answer they could not share (hit-for-miss). A storable
    /// response ends it early. Default 10 s; zero turns it off.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = larder::Cache::builder().hit_for_miss(Duration::from_secs(30)).build();
    /// # let _ = cache;
    /// ```
    pub fn hit_for_miss(mut self, remember: Duration) -> Self {
        self.hit_for_miss = remember;
        self
    }

    /// How often an instance re-reads a namespace's generation from the
    /// store: another instance's [`Cache::purge_namespace`] is seen within
    /// this interval (this instance's own, at once). Default 1 s.
    pub fn namespace_refresh(mut self, every: Duration) -> Self {
        self.namespace_refresh = every;
        self
    }

    /// The hot tier's size in bytes: ready-to-send copies of the entries
    /// being read, in front of the store, served without decoding or a
    /// store round trip. Only reads make copies. With a store that reports
    /// changes (the memory store, Redis with RESP3 client tracking) a copy
    /// is served until its key changes anywhere; with one that does not,
    /// for at most [`l1_ttl`](CacheBuilder::l1_ttl). Default
    /// [`DEFAULT_HOT_TIER_BYTES`]; 0 turns it off.
    ///
    /// Beside this bound, each thread that serves hits keeps the last four
    /// URIs it hit near (those whose bodies total 64 KiB or less), with
    /// its own copy of a body up to 16 KiB: at most about 320 KiB a thread,
    /// let go as it hits other URIs. A hit from there takes no lock.
    ///
    /// ```
    /// let cache = larder::Cache::builder().hot_tier_bytes(64 << 20).build();
    /// # let _ = cache;
    /// ```
    pub fn hot_tier_bytes(mut self, bytes: u64) -> Self {
        self.hot_tier_bytes = bytes;
        self
    }

    /// The longest a hot-tier copy is served while the store cannot report
    /// changes (it does not watch, or its reporting broke, as when the
    /// Redis tracking connection drops): how stale another instance's write
    /// can leave this one. Default [`DEFAULT_L1_TTL`]; zero serves no copy
    /// then.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = larder::Cache::builder().l1_ttl(Duration::from_millis(250)).build();
    /// # let _ = cache;
    /// ```
    pub fn l1_ttl(mut self, ttl: Duration) -> Self {
        self.l1_ttl = ttl;
        self
    }

    /// The most memory all streamed misses together hold to store their
    /// bodies ([`Fill::complete_streaming`]): a fill that would take more
    /// streams on to its client and is not stored. Default
    /// [`DEFAULT_IN_FLIGHT_BYTES`].
    ///
    /// ```
    /// let cache = larder::Cache::builder().in_flight_bytes(32 << 20).build();
    /// # let _ = cache;
    /// ```
    pub fn in_flight_bytes(mut self, max: usize) -> Self {
        self.in_flight_bytes = max;
        self
    }

    /// Builds the cache.
    pub fn build(self) -> Cache {
        if !is_sf_token(&self.name) {
            tracing::warn!(
                name = %self.name,
                "larder: the cache name is not a token and will be quoted in Cache-Status; \
                 use letters, digits and -._~ to avoid that"
            );
        }
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::new(DEFAULT_MEMORY_BYTES)));
        let namespaces = Arc::new(namespaces::Namespaces::default());
        let hot = (self.hot_tier_bytes > 0).then(|| {
            let coherence = Arc::new(hot::Coherence::new(&self.prefix, namespaces.clone()));
            let watcher: Arc<dyn Watcher> = coherence.clone();
            let watch = store.watch(&format!("{}:", self.prefix), Arc::downgrade(&watcher));
            if let Watch::Unsupported(why) = watch {
                tracing::info!(
                    why,
                    l1_ttl = ?self.l1_ttl,
                    "larder: the store does not report changes; hot-tier copies are served for at most l1_ttl"
                );
            }
            let l1_ttl_ms = u64::try_from(self.l1_ttl.as_millis()).unwrap_or(u64::MAX);
            hot::Hot::new(self.hot_tier_bytes, l1_ttl_ms, coherence)
        });
        let counters = stats::Counters::new(&self.name);
        #[cfg(feature = "metrics")]
        let meters = meter::Meters::new(&self.name);
        #[cfg(feature = "metrics")]
        let store = meter::timed(store, &self.name);
        Cache {
            inner: Arc::new(Inner {
                store,
                prefix: self.prefix,
                name: self.name,
                clock: self.clock,
                max_body: self.max_body,
                legacy_header: self.legacy_header,
                allowed_hosts: self.allowed_hosts,
                detail: self.detail,
                coalesce_wait: self.coalesce_wait,
                coalescing: self.coalescing,
                lease_ttl: self.lease_ttl,
                hit_for_miss: self.hit_for_miss,
                uncacheable: (!self.hit_for_miss.is_zero()).then(|| {
                    moka::sync::Cache::builder()
                        .max_capacity(UNCACHEABLE_KEYS)
                        .time_to_live(self.hit_for_miss)
                        .build()
                }),
                namespace_refresh: self.namespace_refresh,
                namespaces,
                hot,
                vary_memo: moka::sync::Cache::new(VARY_MEMO_ENTRIES),
                flights: Arc::default(),
                in_flight: tee::Budget::new(self.in_flight_bytes),
                counters,
                #[cfg(feature = "metrics")]
                meters,
                error_log: stats::RateLimitedLog::new(Duration::from_secs(10)),
            }),
        }
    }
}
