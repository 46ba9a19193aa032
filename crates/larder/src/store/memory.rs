//! The embedded default store: an in-process cache on moka, bounded in bytes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::sync::Cache;
use moka::Expiry;

use super::{Lease, Store, StoreFuture};

/// An in-memory store bounded by the encoded size of what it holds.
///
/// Entries are weighed by key and value bytes plus 64 bytes of bookkeeping,
/// evicted past the capacity by moka's default policy (TinyLFU, which weighs
/// how often a key is used as well as how recently), and expire at their own
/// TTL. Clones share the same entries.
///
/// ```
/// use larder::{Cache, MemoryStore};
///
/// let store = MemoryStore::new(64 << 20);
/// let cache = Cache::builder().store(store.clone()).build();
/// assert!(store.is_empty());
/// # let _ = cache;
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, Value>,
    /// Tag indexes, outside the evicting cache: an evicted index would
    /// silently make a tag purge miss entries.
    indexes: Arc<Mutex<Indexes>>,
    /// Namespace generations: never evicted, or a purged namespace's old
    /// entries could become readable again.
    counters: Arc<Mutex<HashMap<String, u64>>>,
    /// Leases: few (one per key being filled), never evicted early.
    leases: Arc<Mutex<Leases>>,
}

#[derive(Default)]
struct Leases {
    held: HashMap<String, (Bytes, Instant)>,
}

impl Leases {
    /// The live value under `key`, forgetting it if it has expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&Bytes> {
        if self.held.get(key).is_some_and(|(_, until)| *until <= now) {
            self.held.remove(key);
        }
        self.held.get(key).map(|(v, _)| v)
    }

    /// Drops expired leases once the map has grown: holders that died.
    fn sweep(&mut self, now: Instant) {
        if self.held.len() >= 1024 {
            self.held.retain(|_, (_, until)| *until > now);
        }
    }
}

#[derive(Default)]
struct Indexes {
    sets: HashMap<String, (HashSet<String>, Instant)>,
    adds_since_sweep: u32,
}

impl Indexes {
    /// Drops sets whose every member has expired, now and then, so that
    /// indexes of long-gone entries do not pile up.
    fn sweep(&mut self, now: Instant) {
        self.adds_since_sweep += 1;
        if self.adds_since_sweep >= 1024 {
            self.adds_since_sweep = 0;
            self.sets.retain(|_, (_, until)| *until > now);
        }
    }
}

#[derive(Clone)]
struct Value {
    bytes: Bytes,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Value> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Value, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Value,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl MemoryStore {
    /// A store holding at most `capacity_bytes` of keys and encoded entries.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::{store::Store, MemoryStore};
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     store.put("k", Bytes::from_static(b"v"), Duration::from_secs(60)).await.unwrap();
    ///     assert_eq!(store.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));
    /// });
    /// ```
    pub fn new(capacity_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &String, value: &Value| {
                // Per-entry bookkeeping costs memory too; count a little for it.
                let weight = key.len() + value.bytes.len() + 64;
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        MemoryStore {
            cache,
            indexes: Arc::default(),
            counters: Arc::default(),
            leases: Arc::default(),
        }
    }

    /// The number of values held (approximate while evictions are pending;
    /// see [`MemoryStore::run_pending_tasks`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::{store::Store, MemoryStore};
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     store.put("k", Bytes::from_static(b"v"), Duration::from_secs(60)).await.unwrap();
    ///     store.run_pending_tasks().await;
    ///     assert_eq!(store.len(), 1);
    /// });
    /// ```
    pub fn len(&self) -> u64 {
        self.cache.entry_count()
    }

    /// True when the store holds nothing (approximate, as [`MemoryStore::len`]).
    ///
    /// ```
    /// use larder::MemoryStore;
    ///
    /// assert!(MemoryStore::new(1 << 20).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, as weighed: key and value bytes plus 64 per entry
    /// (approximate while evictions are pending).
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::{store::Store, MemoryStore};
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     store.put("key", Bytes::from(vec![0; 1000]), Duration::from_secs(60)).await.unwrap();
    ///     store.run_pending_tasks().await;
    ///     assert_eq!(store.weighted_size(), 3 + 1000 + 64);
    /// });
    /// ```
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Applies pending evictions and expirations now (for tests and stats).
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::{store::Store, MemoryStore};
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     store.put("k", Bytes::from_static(b"v"), Duration::from_secs(60)).await.unwrap();
    ///     store.delete("k").await.unwrap();
    ///     store.run_pending_tasks().await;
    ///     assert!(store.is_empty());
    /// });
    /// ```
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks();
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .field("weighted_size", &self.cache.weighted_size())
            .finish()
    }
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        // moka's sync cache: no await, nothing to wait for in memory.
        Box::pin(async move { Ok(self.cache.get(key).map(|v| v.bytes)) })
    }

    fn put<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.cache
                .insert(key.to_owned(), Value { bytes: value, ttl });
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.cache.invalidate(key);
            Ok(())
        })
    }

    fn index_add<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let now = Instant::now();
            let until = now + ttl;
            let mut indexes = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
            indexes.sweep(now);
            let (set, expires) = indexes
                .sets
                .entry(index.to_owned())
                .or_insert_with(|| (HashSet::new(), until));
            if *expires <= now {
                set.clear();
            }
            *expires = (*expires).max(until);
            set.insert(member.to_owned());
            Ok(())
        })
    }

    fn index_purge<'a>(&'a self, index: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let taken = {
                let mut indexes = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
                indexes.sets.remove(index)
            };
            let Some((members, until)) = taken else {
                return Ok(0);
            };
            if until <= Instant::now() {
                return Ok(0);
            }
            for member in &members {
                self.cache.invalidate(member.as_str());
            }
            Ok(members.len() as u64)
        })
    }

    fn incr<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            let n = counters.entry(key.to_owned()).or_insert(0);
            *n += 1;
            Ok(*n)
        })
    }

    fn counter<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            Ok(counters.get(key).copied().unwrap_or(0))
        })
    }

    fn lease<'a>(&'a self, key: &'a str, holder: Bytes, ttl: Duration) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let now = Instant::now();
            let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(current) = leases.live(key, now) {
                return Ok(Lease::Held(current.clone()));
            }
            leases.sweep(now);
            leases.held.insert(key.to_owned(), (holder, now + ttl));
            Ok(Lease::Granted)
        })
    }

    fn end_lease<'a>(
        &'a self,
        key: &'a str,
        holder: Bytes,
        then: Option<(Bytes, Duration)>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let now = Instant::now();
            let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            if leases.live(key, now) != Some(&holder) {
                return Ok(false);
            }
            match then {
                Some((value, ttl)) => {
                    leases.held.insert(key.to_owned(), (value, now + ttl));
                }
                None => {
                    leases.held.remove(key);
                }
            }
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete() {
        let s = MemoryStore::new(1 << 20);
        assert_eq!(s.get("k").await.unwrap(), None);
        s.put("k", Bytes::from_static(b"v"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(s.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));
        s.delete("k").await.unwrap();
        assert_eq!(s.get("k").await.unwrap(), None);
        s.delete("absent").await.unwrap();
    }

    #[tokio::test]
    async fn entries_expire_at_their_own_ttl() {
        let s = MemoryStore::new(1 << 20);
        s.put("short", Bytes::from_static(b"v"), Duration::from_millis(1))
            .await
            .unwrap();
        s.put("long", Bytes::from_static(b"v"), Duration::from_secs(600))
            .await
            .unwrap();
        // Expiry is measured by moka's own clock; wait until it has passed
        // rather than asserting on how long that takes.
        while s.get("short").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(s.get("long").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn capacity_is_in_bytes() {
        let s = MemoryStore::new(64 * 1024);
        let value = Bytes::from(vec![0u8; 4096]);
        for i in 0..100 {
            s.put(&format!("k{i}"), value.clone(), Duration::from_secs(600))
                .await
                .unwrap();
        }
        s.run_pending_tasks().await;
        assert!(s.weighted_size() <= 64 * 1024, "{}", s.weighted_size());
        assert!(s.len() < 100 && !s.is_empty(), "{}", s.len());
    }

    #[tokio::test]
    async fn get_many_keeps_order() {
        let s = MemoryStore::new(1 << 20);
        s.put("b", Bytes::from_static(b"2"), Duration::from_secs(60))
            .await
            .unwrap();
        let got = s.get_many(&["a".into(), "b".into()]).await.unwrap();
        assert_eq!(got, vec![None, Some(Bytes::from_static(b"2"))]);
    }
}
