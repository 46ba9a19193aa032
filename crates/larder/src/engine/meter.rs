//! The `metrics` feature: what the engine tells the `metrics` facade.
//!
//! Every counter of [`Stats`](crate::Stats) is a counter here too (see
//! `stats.rs` for the names), store round trips and fills are histograms
//! in seconds, and the hot tier's size is two gauges. Keys are built once,
//! when the cache is built, and looked up in the recorder on each use, so
//! that a recorder installed after the cache still sees everything (and a
//! use costs no allocation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use metrics::{Key, Label, Level, Metadata};

use crate::store::{Lease, Store, StoreFuture, Watch, Watcher};

static METADATA: Metadata<'static> = Metadata::new("larder", Level::INFO, Some(module_path!()));

/// The key of metric `name` for the cache named `cache`.
pub(crate) fn key(
    cache: &str,
    name: &'static str,
    label: Option<(&'static str, &'static str)>,
) -> Key {
    let mut labels = vec![Label::new("cache", cache.to_owned())];
    if let Some((k, v)) = label {
        labels.push(Label::from_static_parts(k, v));
    }
    Key::from_parts(name, labels)
}

#[inline]
pub(crate) fn increment(key: &Key) {
    metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(1));
}

pub(crate) fn record(key: &Key, seconds: f64) {
    metrics::with_recorder(|r| r.register_histogram(key, &METADATA).record(seconds));
}

pub(crate) fn set(key: &Key, value: f64) {
    metrics::with_recorder(|r| r.register_gauge(key, &METADATA).set(value));
}

/// A store error, by the operation that failed (rare: built on use).
pub(crate) fn store_error(cache: &str, op: &'static str) {
    increment(&key(cache, "larder_store_errors_total", Some(("op", op))));
}

/// The keys of the engine's own histograms and gauges.
pub(crate) struct Meters {
    pub fill_seconds: Key,
    pub hot_entries: Key,
    pub hot_bytes: Key,
}

impl Meters {
    pub fn new(cache: &str) -> Self {
        Meters {
            fill_seconds: key(cache, "larder_fill_seconds", None),
            hot_entries: key(cache, "larder_hot_entries", None),
            hot_bytes: key(cache, "larder_hot_bytes", None),
        }
    }
}

/// `store`, with each round trip's time reported as
/// `larder_store_seconds{cache, op}`.
pub(crate) fn timed(store: Arc<dyn Store>, cache: &str) -> Arc<dyn Store> {
    let op = |op| key(cache, "larder_store_seconds", Some(("op", op)));
    Arc::new(Timed {
        get: op("get"),
        put: op("put"),
        delete: op("delete"),
        index: op("index"),
        counter: op("counter"),
        lease: op("lease"),
        inner: store,
    })
}

struct Timed {
    inner: Arc<dyn Store>,
    get: Key,
    put: Key,
    delete: Key,
    index: Key,
    counter: Key,
    lease: Key,
}

/// Runs `op`, reporting how long it took under `key`, failed or not.
fn time<'a, T: Send + 'a>(key: &'a Key, op: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
    Box::pin(async move {
        let start = Instant::now();
        let result = op.await;
        record(key, start.elapsed().as_secs_f64());
        result
    })
}

impl Store for Timed {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        time(&self.get, self.inner.get(key))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        time(&self.get, self.inner.get_many(keys))
    }

    fn put<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        time(&self.put, self.inner.put(key, value, ttl))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        time(&self.delete, self.inner.delete(key))
    }

    fn index_add<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        time(&self.index, self.inner.index_add(index, member, ttl))
    }

    fn index_purge<'a>(&'a self, index: &'a str) -> StoreFuture<'a, u64> {
        time(&self.index, self.inner.index_purge(index))
    }

    fn incr<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        time(&self.counter, self.inner.incr(key))
    }

    fn counter<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        time(&self.counter, self.inner.counter(key))
    }

    fn repair_counter<'a>(&'a self, key: &'a str, value: u64) -> StoreFuture<'a, u64> {
        time(&self.counter, self.inner.repair_counter(key, value))
    }

    fn repair_index<'a>(&'a self, index: &'a str) -> StoreFuture<'a, bool> {
        time(&self.index, self.inner.repair_index(index))
    }

    fn lease<'a>(&'a self, key: &'a str, holder: Bytes, ttl: Duration) -> StoreFuture<'a, Lease> {
        time(&self.lease, self.inner.lease(key, holder, ttl))
    }

    fn end_lease<'a>(
        &'a self,
        key: &'a str,
        holder: Bytes,
        then: Option<(Bytes, Duration)>,
    ) -> StoreFuture<'a, bool> {
        time(&self.lease, self.inner.end_lease(key, holder, then))
    }

    fn watch(&self, prefix: &str, watcher: std::sync::Weak<dyn Watcher>) -> Watch {
        self.inner.watch(prefix, watcher)
    }
}
