//! The `metrics` feature: what the engine tells the `metrics` facade.
//!
//! Every counter of [`Stats`](crate::Stats) is a counter here too (see
//! `stats.rs` for the names), store round trips and fills are histograms
//! in seconds, and the hot tier's size is two gauges. Handles are taken
//! from the recorder once, when the cache is built: a use is then one
//! atomic add in the exporter (a lookup in its registry per use cost a
//! hot hit two thirds more instructions). The recorder must therefore be
//! installed before the cache is built, as the `metrics` crate says of
//! every handle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata};

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

/// The recorder's counter `name` for the cache named `cache`.
pub(crate) fn counter(
    cache: &str,
    name: &'static str,
    label: Option<(&'static str, &'static str)>,
) -> Counter {
    let key = key(cache, name, label);
    metrics::with_recorder(|r| r.register_counter(&key, &METADATA))
}

fn histogram(
    cache: &str,
    name: &'static str,
    label: Option<(&'static str, &'static str)>,
) -> Histogram {
    let key = key(cache, name, label);
    metrics::with_recorder(|r| r.register_histogram(&key, &METADATA))
}

fn gauge(cache: &str, name: &'static str) -> Gauge {
    let key = key(cache, name, None);
    metrics::with_recorder(|r| r.register_gauge(&key, &METADATA))
}

/// A store error, by the operation that failed (rare: built on use).
pub(crate) fn store_error(cache: &str, op: &'static str) {
    counter(cache, "larder_store_errors_total", Some(("op", op))).increment(1);
}

/// The keys of the engine's own histograms and gauges.
pub(crate) struct Meters {
    pub fill_seconds: Histogram,
    pub hot_entries: Gauge,
    pub hot_bytes: Gauge,
}

impl Meters {
    pub fn new(cache: &str) -> Self {
        Meters {
            fill_seconds: histogram(cache, "larder_fill_seconds", None),
            hot_entries: gauge(cache, "larder_hot_entries"),
            hot_bytes: gauge(cache, "larder_hot_bytes"),
        }
    }
}

/// `store`, with each round trip's time reported as
/// `larder_store_seconds{cache, op}`.
pub(crate) fn timed(store: Arc<dyn Store>, cache: &str) -> Arc<dyn Store> {
    let op = |op| histogram(cache, "larder_store_seconds", Some(("op", op)));
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
    get: Histogram,
    put: Histogram,
    delete: Histogram,
    index: Histogram,
    counter: Histogram,
    lease: Histogram,
}

/// Runs `op`, reporting how long it took to `histogram`, failed or not.
fn time<'a, T: Send + 'a>(histogram: &'a Histogram, op: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
    Box::pin(async move {
        let start = Instant::now();
        let result = op.await;
        histogram.record(start.elapsed().as_secs_f64());
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
