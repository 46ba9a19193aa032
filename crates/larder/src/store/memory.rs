//! The embedded default store: an in-process cache on moka, bounded in bytes.
//!
//! Tag memberships live and die with their entries: each one is weighed
//! into its entry (so the byte bound covers the tag indexes too), and an
//! entry that leaves the cache, for whatever reason, takes its memberships
//! with it.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::notification::RemovalCause;
use moka::sync::Cache;
use moka::Expiry;

use super::{is_lease_value, Lease, Store, StoreFuture, Watch, Watcher, Watchers};

/// What a tag membership weighs on top of its tag's and key's bytes: its
/// slot in the tag's set and in the entry's list of tags, and their share
/// of the maps' allocations (an overestimate rather than an under-).
const MEMBERSHIP_OVERHEAD: usize = 128;

/// How many locks serialise writes (a key always takes the same one).
const WRITE_STRIPES: usize = 64;

/// A TTL so long it means "until evicted" (and no `Instant` overflows).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// An in-memory store bounded by the encoded size of what it holds.
///
/// Entries are weighed by key and value bytes plus 64 bytes of bookkeeping,
/// plus, for each tag index they belong to, the tag's and key's bytes and
/// 128 more; they are evicted past the capacity by moka's default policy
/// (TinyLFU, which weighs how often a key is used as well as how
/// recently), and expire at their own TTL. An entry's tag memberships go
/// with it, so the tag indexes never hold keys the store has dropped.
/// Clones share the same entries.
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
    /// Tag indexes and the locks that keep them in step with the entries.
    shared: Arc<Shared>,
    /// Namespace generations: never evicted, or a purged namespace's old
    /// entries could become readable again.
    counters: Arc<Mutex<HashMap<String, u64>>>,
    /// Leases: few (one per key being filled), never evicted early.
    leases: Arc<Mutex<Leases>>,
    /// Caches keeping copies of what they read here: told of every
    /// write, delete and increment, whichever clone of the store made it.
    watchers: Arc<Watchers>,
}

#[derive(Default)]
struct Leases {
    held: HashMap<String, (Bytes, Instant)>,
    taken_since_sweep: u32,
}

impl Leases {
    /// The live value under `key`, forgetting it if it has expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&Bytes> {
        if self.held.get(key).is_some_and(|(_, until)| *until <= now) {
            self.held.remove(key);
        }
        self.held.get(key).map(|(v, _)| v)
    }

    /// Drops expired leases (holders that died, hit-for-miss marks that
    /// ran out) now and then: once per 1,024 leases taken, so that a burst
    /// of misses in flight does not rescan the map for each new one.
    fn sweep(&mut self, now: Instant) {
        self.taken_since_sweep += 1;
        if self.taken_since_sweep >= 1024 {
            self.taken_since_sweep = 0;
            self.held.retain(|_, (_, until)| *until > now);
        }
    }
}

/// A stored value. `id` changes with every write of the key, so that a
/// removal notice for a value that was since replaced can be told from
/// one for the value that carries the key's memberships.
#[derive(Clone)]
struct Value {
    bytes: Bytes,
    expires: Instant,
    id: u64,
    /// What the entry's tag memberships weigh; 0 for an untagged entry.
    tag_weight: u32,
}

struct Shared {
    index: Mutex<TagIndex>,
    /// Set by the first `index_add`: until then writes skip the index.
    tagged: AtomicBool,
    next_id: AtomicU64,
    /// Writes of one key (put, delete, adding a tag) run one at a time, so
    /// that re-weighing an entry never overwrites a newer value or brings
    /// back a deleted one. Reads take no lock.
    writes: Box<[Mutex<()>]>,
    hasher: RandomState,
}

impl Shared {
    fn index(&self) -> MutexGuard<'_, TagIndex> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let stripe = self.hasher.hash_one(key) as usize % self.writes.len();
        self.writes[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Which keys each tag index holds, and the reverse, for the entries the
/// cache holds now. Never locked while calling into the cache (whose
/// removal notices lock it).
#[derive(Default)]
struct TagIndex {
    sets: HashMap<Arc<str>, HashSet<Arc<str>>>,
    members: HashMap<Arc<str>, Membership>,
    /// Memberships held, across every set.
    count: u64,
}

/// One entry's tags.
struct Membership {
    /// The id of the value these memberships are weighed into.
    id: u64,
    weight: u32,
    tags: Vec<Arc<str>>,
}

impl TagIndex {
    /// A new value (`id`) replaces the key's: it keeps the key's
    /// memberships, as a Redis set would, and carries their weight.
    fn inherit(&mut self, key: &str, id: u64) -> u32 {
        match self.members.get_mut(key) {
            Some(m) => {
                m.id = id;
                m.weight
            }
            None => 0,
        }
    }

    /// Adds `member` (now holding the value `current`) to `index`; the
    /// entry is then re-weighed as the value `id`. Returns the entry's new
    /// tag weight, or `None` if it was already a member.
    fn add(&mut self, index: &str, member: &str, current: &Value, id: u64) -> Option<u32> {
        if self.members.get(member).is_some_and(|m| m.id != current.id) {
            // Memberships of a value the entry no longer holds: the key's
            // removal notice was missed. Start again from this value.
            self.remove(member);
        }
        let member_key: Arc<str> = match self.members.get_key_value(member) {
            Some((k, _)) => k.clone(),
            None => {
                let k: Arc<str> = member.into();
                let m = Membership {
                    id: current.id,
                    weight: current.tag_weight,
                    tags: Vec::new(),
                };
                self.members.insert(k.clone(), m);
                k
            }
        };
        // Found or inserted just above.
        let membership = self.members.get_mut(member)?;
        if membership.tags.iter().any(|t| &**t == index) {
            return None;
        }
        let tag: Arc<str> = match self.sets.get_key_value(index) {
            Some((k, _)) => k.clone(),
            None => index.into(),
        };
        let cost = index.len() + member.len() + MEMBERSHIP_OVERHEAD;
        membership.weight = membership
            .weight
            .saturating_add(u32::try_from(cost).unwrap_or(u32::MAX));
        membership.id = id;
        membership.tags.push(tag.clone());
        let weight = membership.weight;
        self.sets.entry(tag).or_default().insert(member_key);
        self.count += 1;
        Some(weight)
    }

    /// The value `id` of `key` left the cache: its memberships go too,
    /// unless they were since carried over to a newer value.
    fn removed(&mut self, key: &str, id: u64) {
        if self.members.get(key).is_some_and(|m| m.id <= id) {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: &str) {
        let Some(membership) = self.members.remove(key) else {
            return;
        };
        for tag in membership.tags {
            if let Some(set) = self.sets.get_mut(&tag) {
                if set.remove(key) {
                    self.count -= 1;
                }
                if set.is_empty() {
                    self.sets.remove(&tag);
                }
            }
        }
    }

    /// Takes the set `index` out, for a purge.
    fn take(&mut self, index: &str) -> Vec<Arc<str>> {
        let Some(set) = self.sets.remove(index) else {
            return Vec::new();
        };
        self.count -= set.len() as u64;
        for member in &set {
            if let Some(m) = self.members.get_mut(member) {
                // Its weight stays until the entry (being deleted) leaves.
                m.tags.retain(|t| &**t != index);
            }
        }
        set.into_iter().collect()
    }
}

struct PerEntryTtl;

impl Expiry<String, Value> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Value, now: Instant) -> Option<Duration> {
        Some(value.expires.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Value,
        now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        // A re-weighed entry keeps its deadline: it is the same value.
        Some(value.expires.saturating_duration_since(now))
    }
}

fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl.min(FOREVER)).unwrap_or(now)
}

impl MemoryStore {
    /// A store holding at most `capacity_bytes` of keys, encoded entries
    /// and tag memberships.
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
        let shared = Arc::new(Shared {
            index: Mutex::default(),
            tagged: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            writes: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        });
        let listener = shared.clone();
        let cache = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &String, value: &Value| {
                // Per-entry bookkeeping costs memory too; count a little for it.
                let weight = key.len() + value.bytes.len() + 64 + value.tag_weight as usize;
                u32::try_from(weight).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .eviction_listener(move |key: Arc<String>, value: Value, _: RemovalCause| {
                // An untagged entry has nothing to take along: no lock.
                if value.tag_weight != 0 {
                    listener.index().removed(&key, value.id);
                }
            })
            .build();
        MemoryStore {
            cache,
            shared,
            counters: Arc::default(),
            leases: Arc::default(),
            watchers: Arc::default(),
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

    /// Bytes held, as weighed: key and value bytes plus 64 per entry, and
    /// for each tag membership the tag's and the key's bytes plus 128
    /// (approximate while evictions are pending). Never more than the
    /// capacity once they have run.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::{store::Store, MemoryStore};
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     let ttl = Duration::from_secs(60);
    ///     store.put("key", Bytes::from(vec![0; 1000]), ttl).await.unwrap();
    ///     store.run_pending_tasks().await;
    ///     assert_eq!(store.weighted_size(), 3 + 1000 + 64);
    ///     store.index_add("tag", "key", ttl).await.unwrap();
    ///     store.run_pending_tasks().await;
    ///     assert_eq!(store.weighted_size(), 3 + 1000 + 64 + (3 + 3 + 128));
    /// });
    /// ```
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Tag memberships held, across every tag index: one per entry per tag
    /// it carries, for the entries the store holds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::{store::Store, MemoryStore};
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     let ttl = Duration::from_secs(60);
    ///     store.put("k", Bytes::from_static(b"v"), ttl).await.unwrap();
    ///     store.index_add("tag:a", "k", ttl).await.unwrap();
    ///     store.index_add("tag:b", "k", ttl).await.unwrap();
    ///     assert_eq!(store.tag_memberships(), 2);
    ///     store.delete("k").await.unwrap();
    ///     assert_eq!(store.tag_memberships(), 0);
    /// });
    /// ```
    pub fn tag_memberships(&self) -> u64 {
        self.shared.index().count
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

    fn remove(&self, key: &str) {
        let _write = self.shared.write_lock(key);
        self.cache.invalidate(key);
        self.changed(key);
    }

    /// Tells the watchers, after the change is made, so that a copy read
    /// after the report holds the new value.
    fn changed(&self, key: &str) {
        if !self.watchers.is_empty() {
            self.watchers.changed(key.as_bytes());
        }
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
            let expires = deadline(Instant::now(), ttl);
            let _write = self.shared.write_lock(key);
            let id = self.shared.next_id();
            // Set only under a write lock, after which every write of a
            // tagged key sees it.
            let tag_weight = if self.shared.tagged.load(Ordering::Acquire) {
                self.shared.index().inherit(key, id)
            } else {
                0
            };
            let value = Value {
                bytes: value,
                expires,
                id,
                tag_weight,
            };
            self.cache.insert(key.to_owned(), value);
            self.changed(key);
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.remove(key);
            Ok(())
        })
    }

    fn index_add<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        _ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        // The membership lasts as long as the entry: no TTL of its own.
        Box::pin(async move {
            self.shared.tagged.store(true, Ordering::Release);
            let _write = self.shared.write_lock(member);
            // An entry the store does not hold (never stored, or already
            // evicted) has nothing to be purged: it costs nothing.
            let Some(current) = self.cache.get(member) else {
                return Ok(());
            };
            let id = self.shared.next_id();
            // The index lock is released before the cache is called: its
            // removal notices take it.
            let added = self.shared.index().add(index, member, &current, id);
            if let Some(tag_weight) = added {
                let reweighed = Value {
                    id,
                    tag_weight,
                    ..current
                };
                self.cache.insert(member.to_owned(), reweighed);
            }
            Ok(())
        })
    }

    fn index_purge<'a>(&'a self, index: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let members = self.shared.index().take(index);
            for member in &members {
                self.remove(member);
            }
            Ok(members.len() as u64)
        })
    }

    fn incr<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            let n = counters.entry(key.to_owned()).or_insert(0);
            *n += 1;
            let n = *n;
            drop(counters);
            self.changed(key);
            Ok(n)
        })
    }

    fn counter<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            Ok(counters.get(key).copied().unwrap_or(0))
        })
    }

    /// Counters here are numbers by construction: only an absent one is
    /// set.
    fn repair_counter<'a>(&'a self, key: &'a str, value: u64) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            let held = *counters.entry(key.to_owned()).or_insert(value);
            drop(counters);
            self.changed(key);
            Ok(held)
        })
    }

    /// Indexes here are sets by construction: nothing to repair.
    fn repair_index<'a>(&'a self, _index: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }

    /// Every write, delete and increment through any clone of this store
    /// is reported, before the call that made it returns.
    fn watch(&self, prefix: &str, watcher: Weak<dyn Watcher>) -> Watch {
        let now = watcher.upgrade();
        self.watchers.add(prefix, watcher);
        // After adding: no change can fall between the two.
        if let Some(w) = now {
            w.restored();
        }
        Watch::Watching
    }

    fn lease<'a>(&'a self, key: &'a str, holder: Bytes, ttl: Duration) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let now = Instant::now();
            let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
            // Only a lease holds the key; anything else is taken over.
            let repaired = match leases.live(key, now) {
                Some(current) if is_lease_value(current) => {
                    return Ok(Lease::Held(current.clone()));
                }
                Some(_) => true,
                None => false,
            };
            leases.sweep(now);
            leases
                .held
                .insert(key.to_owned(), (holder, deadline(now, ttl)));
            Ok(if repaired {
                Lease::Repaired
            } else {
                Lease::Granted
            })
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
                    leases
                        .held
                        .insert(key.to_owned(), (value, deadline(now, ttl)));
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

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Watcher for Seen {
        fn changed(&self, key: &[u8]) {
            let key = String::from_utf8_lossy(key).into_owned();
            self.0.lock().unwrap().push(key);
        }
        fn lost(&self) {}
        fn restored(&self) {}
    }

    impl Seen {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[tokio::test]
    async fn every_write_delete_purge_and_increment_under_the_prefix_is_reported() {
        let store = MemoryStore::new(1 << 20);
        let seen = Arc::new(Seen::default());
        let weak: Weak<dyn Watcher> = Arc::downgrade(&seen) as Weak<dyn Watcher>;
        assert_eq!(store.watch("app:", weak), Watch::Watching);
        // Another clone's writes count too: they share the entries.
        let other = store.clone();
        let ttl = Duration::from_secs(60);
        other
            .put("app:a", Bytes::from_static(b"1"), ttl)
            .await
            .unwrap();
        other
            .put("elsewhere:a", Bytes::from_static(b"1"), ttl)
            .await
            .unwrap();
        assert_eq!(seen.take(), ["app:a"]);
        other.index_add("app:tag", "app:a", ttl).await.unwrap();
        // Tagging re-weighs the entry; its value is the same.
        assert!(seen.take().is_empty());
        assert_eq!(other.index_purge("app:tag").await.unwrap(), 1);
        assert_eq!(seen.take(), ["app:a"]);
        other.delete("app:b").await.unwrap();
        other.incr("app:ns:x:gen").await.unwrap();
        other.repair_counter("app:ns:y:gen", 7).await.unwrap();
        assert_eq!(seen.take(), ["app:b", "app:ns:x:gen", "app:ns:y:gen"]);
        // A dropped watcher is not told, and is forgotten.
        drop(seen);
        other
            .put("app:c", Bytes::from_static(b"1"), ttl)
            .await
            .unwrap();
        assert!(store.watchers.prefixes().is_empty());
    }

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

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn tag_memberships_count_against_the_bound() {
        // 5,000 small entries with ten tags each, into 256 KiB: the tags
        // weigh more than the entries, and must fit the bound with them.
        let cap = 256 << 10;
        let s = MemoryStore::new(cap);
        for i in 0..5_000 {
            let key = format!("larder:default:0:{{{i:032x}}}");
            s.put(&key, Bytes::from(vec![b'x'; 100]), HOUR)
                .await
                .unwrap();
            for t in 0..10 {
                let tag = format!("larder:tag:{{product-{}}}", (i * 10 + t) % 50_000);
                s.index_add(&tag, &key, HOUR).await.unwrap();
            }
        }
        s.run_pending_tasks().await;
        let (held, members) = (s.len(), s.tag_memberships());
        assert!(s.weighted_size() <= cap, "{}", s.weighted_size());
        assert!(held > 0 && held < 5_000, "{held}");
        // Only the entries held keep memberships, and those weigh.
        assert!(
            members <= held * 10,
            "{members} memberships for {held} entries"
        );
        let entry = 54 + 100 + 64;
        let membership = 128 + 54 + 20;
        assert!(
            s.weighted_size() >= held * entry + members * membership,
            "{} for {held} entries and {members} memberships",
            s.weighted_size()
        );
    }

    #[tokio::test]
    async fn purge_takes_what_is_present_after_evictions() {
        let s = MemoryStore::new(256 << 10);
        for i in 0..5_000 {
            let key = format!("k{i}");
            s.put(&key, Bytes::from(vec![0; 200]), HOUR).await.unwrap();
            s.index_add(&format!("tag:{i}"), &key, HOUR).await.unwrap();
            s.index_add("tag:all", &key, HOUR).await.unwrap();
        }
        s.run_pending_tasks().await;
        let present: Vec<usize> = {
            let mut p = Vec::new();
            for i in 0..5_000 {
                if s.get(&format!("k{i}")).await.unwrap().is_some() {
                    p.push(i);
                }
            }
            p
        };
        assert!(!present.is_empty() && present.len() < 5_000);
        let gone = (0..5_000).find(|i| !present.contains(i)).unwrap();
        assert_eq!(s.index_purge(&format!("tag:{gone}")).await.unwrap(), 0);
        let one = present[0];
        assert_eq!(s.index_purge(&format!("tag:{one}")).await.unwrap(), 1);
        assert_eq!(s.get(&format!("k{one}")).await.unwrap(), None);
        let rest = s.index_purge("tag:all").await.unwrap();
        assert_eq!(rest as usize, present.len() - 1);
        for i in &present {
            assert_eq!(s.get(&format!("k{i}")).await.unwrap(), None, "k{i}");
        }
        assert_eq!(s.tag_memberships(), 0);
        s.run_pending_tasks().await;
        assert_eq!(s.weighted_size(), 0);
    }

    #[tokio::test]
    async fn a_replaced_entry_keeps_its_tags() {
        let s = MemoryStore::new(1 << 20);
        s.put("k", Bytes::from_static(b"v1"), HOUR).await.unwrap();
        s.index_add("tag:a", "k", HOUR).await.unwrap();
        s.index_add("tag:a", "k", HOUR).await.unwrap();
        assert_eq!(s.tag_memberships(), 1);
        s.put("k", Bytes::from_static(b"v2"), HOUR).await.unwrap();
        s.run_pending_tasks().await;
        assert_eq!(s.tag_memberships(), 1);
        assert_eq!(s.weighted_size(), (1 + 2 + 64) + (5 + 1 + 128));
        assert_eq!(s.index_purge("tag:a").await.unwrap(), 1);
        assert_eq!(s.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn memberships_leave_with_expired_entries() {
        let s = MemoryStore::new(1 << 20);
        s.put("k", Bytes::from_static(b"v"), Duration::from_millis(1))
            .await
            .unwrap();
        s.index_add("tag:a", "k", Duration::from_millis(1))
            .await
            .unwrap();
        // moka's clock decides; wait for it (bounded), assert no times.
        for _ in 0..1000 {
            s.run_pending_tasks().await;
            if s.tag_memberships() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(s.tag_memberships(), 0);
        // An entry the store does not hold is not indexed at all.
        s.index_add("tag:a", "never-stored", HOUR).await.unwrap();
        assert_eq!(s.tag_memberships(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_never_lose_a_membership() {
        // Puts, tags and deletes of the same few keys race; afterwards every
        // entry still held must be purged by its tag.
        let s = MemoryStore::new(1 << 20);
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..2_000u32 {
                        let key = format!("k{}", (i * 7 + t) % 16);
                        let value = Bytes::from(format!("{t}-{i}"));
                        s.put(&key, value, HOUR).await.unwrap();
                        s.index_add("tag:t", &key, HOUR).await.unwrap();
                        if i % 5 == t {
                            s.delete(&key).await.unwrap();
                        }
                        if i % 97 == 0 {
                            s.index_purge("tag:t").await.unwrap();
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        s.index_purge("tag:t").await.unwrap();
        for k in 0..16 {
            assert_eq!(s.get(&format!("k{k}")).await.unwrap(), None, "k{k}");
        }
        s.run_pending_tasks().await;
        assert_eq!((s.tag_memberships(), s.weighted_size()), (0, 0));
    }

    #[tokio::test]
    async fn huge_ttls_do_not_overflow() {
        let s = MemoryStore::new(1 << 20);
        s.put("k", Bytes::from_static(b"v"), Duration::MAX)
            .await
            .unwrap();
        assert!(s.get("k").await.unwrap().is_some());
        let holder = Bytes::from_static(b"larder:lease:a");
        let lease = s.lease("l", holder.clone(), Duration::MAX).await.unwrap();
        assert_eq!(lease, Lease::Granted);
        let marker = Some((Bytes::from_static(b"larder:x"), Duration::MAX));
        assert!(s.end_lease("l", holder, marker).await.unwrap());
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
