//! Memoized function results: the engine's store, coalescing and fail-open
//! rules applied to any serializable value, for `#[larder::memoize]`.
//!
//! A result is stored as an entry whose body is the value's JSON, under a
//! key laid out like a URI's variant (see [`key::memo`]): the function's
//! key holds an index with a nonce every result must carry, so deleting the
//! index forgets every result of the function at once.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::coalesce::{follow, Join, Landed, Leader};
use super::fill::new_nonce;
use super::stats::Counters;
use super::Cache;
use crate::entry::{Entry, Record, VariantIndex};
use crate::policy::freshness;
use crate::policy::key::{self, MemoKey};
use crate::policy::NotStored;

/// What the store held for a call.
struct Found<T> {
    value: Option<(T, Entry)>,
    /// The nonce of the function's index, when it has a usable one.
    nonce: Option<u64>,
}

impl Cache {
    /// Returns `compute`'s result, from the store while one computed for
    /// the same `function` and `args` is younger than `ttl`.
    ///
    /// `args` are the arguments' bytes (any serialization that is equal for
    /// equal arguments); `namespace` groups keys as routes' namespaces do.
    /// Only `Ok` values are stored. Concurrent calls with equal arguments
    /// run `compute` once; the others wait for its value (after an `Err`,
    /// which is never shared, each runs its own). A store that
    /// fails, or a value that cannot be read back, makes a miss: `compute`
    /// runs, and the error is counted and logged.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use larder::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let ttl = Duration::from_secs(60);
    /// let square = |n: u64| async move { Ok::<u64, std::convert::Infallible>(n * n) };
    /// let first = cache.memoize("default", "app::square", b"[7]", ttl, square(7)).await;
    /// // Equal arguments within the TTL: the stored value, not a second run.
    /// let again = cache.memoize("default", "app::square", b"[7]", ttl, square(0)).await;
    /// assert_eq!((first, again), (Ok(49), Ok(49)));
    /// # });
    /// ```
    pub async fn memoize<T, E, F>(
        &self,
        namespace: &str,
        function: &str,
        args: &[u8],
        ttl: Duration,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, E>>,
    {
        let key = key::memo(&self.inner.prefix, namespace, function, args);
        // Taken before the read, as for responses (see `lookup`).
        let bucket = super::coalesce::bucket(&key.call_key);
        let mut landings = self.inner.flights.landings(bucket);
        let mut found = self.find_memo::<T>(&key).await;
        if let Some((value, _)) = found.value {
            Counters::bump(&self.inner.counters.hits);
            return Ok(value);
        }
        let mut leader = None;
        for _ in 0..3 {
            let rx = match self.inner.flights.join(&key.call_key, bucket) {
                Join::Leader(l) => {
                    if self.inner.flights.landings(bucket) != landings {
                        found = self.find_memo::<T>(&key).await;
                        if let Some((value, entry)) = found.value {
                            l.land(Landed::Stored(Arc::new(entry)));
                            Counters::bump(&self.inner.counters.collapsed);
                            return Ok(value);
                        }
                    }
                    leader = Some(l);
                    break;
                }
                Join::Follower(rx) => rx,
            };
            match tokio::time::timeout(self.inner.coalesce_wait, follow(rx)).await {
                Ok(Landed::Stored(entry)) => match serde_json::from_slice(&entry.body) {
                    Ok(value) => {
                        Counters::bump(&self.inner.counters.collapsed);
                        return Ok(value);
                    }
                    Err(_) => break,
                },
                Ok(Landed::Abandoned) => {
                    landings = self.inner.flights.landings(bucket);
                }
                // An error, or waited too long: compute our own.
                _ => break,
            }
        }
        Counters::bump(&self.inner.counters.misses);
        let result = compute.await;
        match &result {
            Ok(value) => self.store_memo(&key, found.nonce, ttl, value, leader).await,
            Err(_) => {
                if let Some(l) = leader {
                    l.land(Landed::Uncacheable);
                }
            }
        }
        result
    }

    /// Forgets every stored result of `function` in `namespace`, whatever
    /// its arguments. A store error is counted and logged, never returned.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use larder::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let ttl = Duration::from_secs(60);
    /// let version = |v: &'static str| async move { Ok::<_, ()>(v.to_owned()) };
    /// cache.memoize("default", "app::version", b"[]", ttl, version("v1")).await.unwrap();
    /// cache.purge_memoized("default", "app::version").await;
    /// let now = cache.memoize("default", "app::version", b"[]", ttl, version("v2")).await;
    /// assert_eq!(now.as_deref(), Ok("v2"));
    /// # });
    /// ```
    pub async fn purge_memoized(&self, namespace: &str, function: &str) {
        let key = key::memo(&self.inner.prefix, namespace, function, &[]);
        match self.inner.store.delete(&key.function.store_key).await {
            Ok(()) => Counters::bump(&self.inner.counters.invalidations),
            Err(e) => self.store_error("delete", e),
        }
    }

    /// Forgets the result stored for one call of `function`: its next call
    /// with `args` computes again. Other calls' results stay.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    ///
    /// let cache = larder::Cache::builder().build();
    /// let ttl = Duration::from_secs(60);
    /// let v = |s: &'static str| async move { Ok::<_, ()>(s.to_owned()) };
    /// cache.memoize("default", "app::name", b"[1]", ttl, v("one")).await.unwrap();
    /// cache.forget_memoized("default", "app::name", b"[1]").await;
    /// let now = cache.memoize("default", "app::name", b"[1]", ttl, v("uno")).await;
    /// assert_eq!(now.as_deref(), Ok("uno"));
    /// # });
    /// ```
    pub async fn forget_memoized(&self, namespace: &str, function: &str, args: &[u8]) {
        let key = key::memo(&self.inner.prefix, namespace, function, args);
        match self.inner.store.delete(&key.call_key).await {
            Ok(()) => Counters::bump(&self.inner.counters.invalidations),
            Err(e) => self.store_error("delete", e),
        }
    }

    /// Reads the function's index and the call's result in one round trip.
    async fn find_memo<T: DeserializeOwned>(&self, key: &MemoKey) -> Found<T> {
        let keys = [key.function.store_key.clone(), key.call_key.clone()];
        let got = match self.inner.store.get_many(&keys).await {
            Ok(got) => got,
            Err(e) => {
                self.store_error("get", e);
                return Found {
                    value: None,
                    nonce: None,
                };
            }
        };
        let mut got = got.into_iter();
        let (index, call) = (got.next().flatten(), got.next().flatten());
        let nonce = match index {
            Some(bytes) => match self.decode(&key.function.store_key, bytes).await {
                Some(Record::Variants(index)) if index.material == key.function.material => {
                    Some(index.nonce)
                }
                _ => None,
            },
            None => None,
        };
        let value = match (nonce, call) {
            (Some(nonce), Some(bytes)) => self.read_call(key, nonce, bytes).await,
            _ => None,
        };
        Found { value, nonce }
    }

    /// A stored result, if it is this call's, current and readable.
    async fn read_call<T: DeserializeOwned>(
        &self,
        key: &MemoKey,
        nonce: u64,
        bytes: Bytes,
    ) -> Option<(T, Entry)> {
        let Some(Record::Entry(entry)) = self.decode(&key.call_key, bytes).await else {
            return None;
        };
        if entry.material != key.call_material || entry.variant_nonce != nonce {
            return None;
        }
        let age = freshness::current_age(
            entry.initial_age,
            entry.response_time,
            self.inner.clock.now(),
        );
        if age >= entry.lifetime {
            return None;
        }
        match serde_json::from_slice(&entry.body) {
            Ok(value) => Some((value, entry)),
            Err(e) => {
                // Written by another version of the function's type: as
                // corrupt as any unreadable entry.
                Counters::bump(&self.inner.counters.corrupt_entries);
                if let Some(suppressed) = self.inner.error_log.allow() {
                    tracing::warn!(error = %e, key = key.call_key, suppressed, "larder: unreadable memoized value deleted");
                }
                if let Err(e) = self.inner.store.delete(&key.call_key).await {
                    self.store_error("delete", e);
                }
                None
            }
        }
    }

    /// Stores a computed value and hands it to the calls waiting on it.
    async fn store_memo<T: Serialize>(
        &self,
        key: &MemoKey,
        nonce: Option<u64>,
        ttl: Duration,
        value: &T,
        leader: Option<Leader>,
    ) {
        let body = match serde_json::to_vec(value) {
            Ok(body) if body.len() <= self.inner.max_body => Bytes::from(body),
            Ok(_) => {
                self.inner.counters.not_stored(NotStored::TooLarge);
                if let Some(l) = leader {
                    l.land(Landed::Uncacheable);
                }
                return;
            }
            Err(e) => {
                self.inner.counters.not_stored(NotStored::Body);
                if let Some(suppressed) = self.inner.error_log.allow() {
                    tracing::warn!(error = %e, key = key.call_key, suppressed, "larder: memoized value not serializable; not stored");
                }
                if let Some(l) = leader {
                    l.land(Landed::Uncacheable);
                }
                return;
            }
        };
        let nonce = nonce.unwrap_or_else(new_nonce);
        let entry = memo_entry(key, nonce, body, ttl, self.inner.clock.now());
        let index = VariantIndex {
            material: key.function.material.clone(),
            names: Vec::new(),
            nonce,
        };
        let store = &self.inner.store;
        let ttl = ttl.max(Duration::from_secs(1));
        // The result first, then the index, refreshed so that it outlives
        // every result written under it.
        let written = match store
            .put(&key.call_key, Record::Entry(entry.clone()).encode(), ttl)
            .await
        {
            Ok(()) => {
                store
                    .put(
                        &key.function.store_key,
                        Record::Variants(index).encode(),
                        ttl,
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => Counters::bump(&self.inner.counters.stores),
            Err(e) => self.store_error("put", e),
        }
        if let Some(l) = leader {
            l.land(Landed::Stored(Arc::new(entry)));
        }
    }
}

fn memo_entry(key: &MemoKey, nonce: u64, body: Bytes, ttl: Duration, now: SystemTime) -> Entry {
    Entry {
        material: key.call_material.clone(),
        variant_nonce: nonce,
        vary: Vec::new(),
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body,
        response_time: now,
        initial_age: Duration::ZERO,
        lifetime: ttl,
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        forbids_stale: true,
        tags: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::convert::Infallible;

    use super::*;
    use crate::policy::NotStored;

    const TTL: Duration = Duration::from_secs(60);

    async fn twice<T, F>(cache: &Cache, value: F) -> usize
    where
        T: Serialize + DeserializeOwned,
        F: Fn() -> T,
    {
        let runs = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..2 {
            let run = async {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, Infallible>(value())
            };
            let _ = cache.memoize("default", "t::f", b"[]", TTL, run).await;
        }
        runs.into_inner()
    }

    #[tokio::test]
    async fn a_value_over_the_body_limit_is_returned_not_stored() {
        // 14 characters and their quotes: 16 bytes of JSON, at the limit.
        let cache = Cache::builder().max_body_bytes(16).build();
        assert_eq!(twice(&cache, || "x".repeat(14)).await, 1);
        let cache = Cache::builder().max_body_bytes(16).build();
        assert_eq!(twice(&cache, || "x".repeat(15)).await, 2);
        assert_eq!(cache.stats().not_stored(NotStored::TooLarge), 2);
    }

    #[tokio::test]
    async fn a_value_json_cannot_hold_is_returned_not_stored() {
        let cache = Cache::builder().build();
        // JSON object keys must be strings.
        let runs = twice(&cache, || BTreeMap::from([((1, 2), 3)])).await;
        assert_eq!(runs, 2);
        assert_eq!(cache.stats().not_stored(NotStored::Body), 2);
        assert_eq!(cache.stats().stores, 0);
    }
}
