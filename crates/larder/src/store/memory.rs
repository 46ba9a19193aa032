//! The embedded default store: an in-process cache on quick_cache (S3-FIFO
//! like eviction, weighted), bounded in bytes.
//!
//! Tag memberships live and die with their entries: each one is weighed
//! into its entry (so the byte bound covers the tag indexes too), and an
//! entry that leaves the cache, for whatever reason, takes its memberships
//! with it.
//!
//! The bound is on memory, not only on payload: an entry weighs its key's
//! and value's allocations (as the allocator rounds them) plus
//! [`MemoryStore::ENTRY_OVERHEAD`], what holding one more entry costs
//! besides them. Expired entries are absent to reads at once, and are
//! swept out of memory every few seconds.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, OptionsBuilder, Weighter};

use super::{is_lease_value, Lease, Store, StoreFuture, Watch, Watcher, Watchers};

/// What a tag membership weighs on top of its tag's and key's bytes: its
/// slot in the tag's set and in the entry's list of tags, and their share
/// of the maps' allocations (an overestimate rather than an under-).
const MEMBERSHIP_OVERHEAD: usize = 128;

/// How many locks serialise writes (a key always takes the same one).
const WRITE_STRIPES: usize = 64;

/// A TTL so long it means "until evicted" (and no clock overflows).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How often, at most, expired entries are swept out (in milliseconds).
const SWEEP_EVERY_MS: u64 = 5_000;

/// The smallest byte capacity of one of the map's shards: each shard
/// bounds its own part, so a shard must hold the largest entries
/// ([`DEFAULT_MAX_BODY_BYTES`](crate::DEFAULT_MAX_BODY_BYTES) is half of it).
const MIN_SHARD_BYTES: u64 = 16 << 20;

/// The typical weight of an entry, for sizing the map's bookkeeping of
/// recently evicted keys (which is not weighed, so is kept to about 1% of
/// the capacity).
const TYPICAL_ENTRY_BYTES: u64 = 4096;

/// An in-memory store bounded by the memory its contents take.
///
/// Entries are weighed by key and value bytes as the allocator rounds them
/// (plus 8, to a multiple of 16, 32 at least), plus
/// [`MemoryStore::ENTRY_OVERHEAD`] bytes of bookkeeping, plus, for each
/// tag index they belong to, the tag's and key's bytes and 128 more. Past
/// the capacity they are evicted by quick_cache's policy (a Clock-PRO
/// variant close to S3-FIFO: a new key waits in a small probation queue
/// and joins the main one only if it is read again there, so a flood of
/// keys read once passes through without pushing out the keys that are
/// read), and they expire at their own TTL. An entry's tag memberships go
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
    cache: Arc<Entries>,
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

type Entries = Cache<Box<str>, Value, Weigh, RandomState, Evicted>;

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
    /// Milliseconds since [`Shared::epoch`]; absent from then on.
    expires: u64,
    id: u64,
    /// What the entry's tag memberships weigh; 0 for an untagged entry.
    tag_weight: u32,
}

#[derive(Clone)]
struct Weigh;

impl Weighter<Box<str>, Value> for Weigh {
    fn weight(&self, key: &Box<str>, value: &Value) -> u64 {
        allocation(key.len())
            + allocation(value.bytes.len())
            + MemoryStore::ENTRY_OVERHEAD
            + u64::from(value.tag_weight)
    }
}

/// What an allocation of `n` bytes takes from a general-purpose allocator
/// (glibc's, and about what others take): `n` and an 8-byte header,
/// rounded up to 16, and 32 at least. Small keys and values cost more
/// than their length, and a flood of them must not overrun the bound.
fn allocation(n: usize) -> u64 {
    ((n as u64 + 8 + 15) & !15).max(32)
}

/// Collects what an insert evicted, to take its tag memberships along once
/// the map's lock is released.
#[derive(Clone)]
struct Evicted(Arc<Shared>);

impl Lifecycle<Box<str>, Value> for Evicted {
    type RequestState = Vec<(Box<str>, Value)>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, state: &mut Self::RequestState, key: Box<str>, value: Value) {
        // An untagged entry has nothing to take along: dropped as it goes.
        if value.tag_weight != 0 {
            state.push((key, value));
        }
    }

    fn end_request(&self, state: Self::RequestState) {
        if !state.is_empty() {
            let mut index = self.0.index();
            for (key, value) in state {
                index.removed(&key, value.id);
            }
        }
    }
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
    /// The store's clock starts here: expiries are milliseconds from it.
    epoch: Instant,
    /// When the next sweep of expired entries is due (milliseconds).
    next_sweep: AtomicU64,
    /// Milliseconds between sweeps ([`SWEEP_EVERY_MS`] but in tests).
    sweep_every: u64,
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

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn expiry(&self, ttl: Duration) -> u64 {
        let ttl = u64::try_from(ttl.min(FOREVER).as_millis()).unwrap_or(u64::MAX);
        self.now().saturating_add(ttl)
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
        Self::with_sweeps(capacity_bytes, SWEEP_EVERY_MS)
    }

    fn with_sweeps(capacity_bytes: u64, sweep_every: u64) -> Self {
        let shared = Arc::new(Shared {
            index: Mutex::default(),
            tagged: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            writes: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
            next_sweep: AtomicU64::new(sweep_every),
            sweep_every,
        });
        let parallel = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (capacity_bytes / MIN_SHARD_BYTES).clamp(1, 4 * parallel as u64);
        // A power of two no larger than asked, so that no shard is smaller.
        let shards = 1 << shards.ilog2();
        let options = OptionsBuilder::new()
            .weight_capacity(capacity_bytes)
            .estimated_items_capacity(
                usize::try_from(capacity_bytes / TYPICAL_ENTRY_BYTES)
                    .unwrap_or(usize::MAX)
                    .max(1),
            )
            .shards(shards as usize)
            .build()
            .expect("valid cache options");
        let cache =
            Cache::with_options(options, Weigh, RandomState::new(), Evicted(shared.clone()));
        MemoryStore {
            cache: Arc::new(cache),
            shared,
            counters: Arc::default(),
            leases: Arc::default(),
            watchers: Arc::default(),
        }
    }

    /// What an entry weighs besides its key's and value's allocations: the
    /// memory holding one more entry takes on top of them (the map's slot
    /// and its share of the table, the value's shared header once read).
    /// Checked against the resident set by the `flood` mode of
    /// `examples/memory_per_entry.rs`.
    ///
    /// ```
    /// use larder::MemoryStore;
    ///
    /// // A store for about 10,000 records of 1,130 bytes (a 1 KiB body)
    /// // under 51-byte keys.
    /// let capacity = 10_000 * (1136 + 64 + MemoryStore::ENTRY_OVERHEAD);
    /// let store = MemoryStore::new(capacity);
    /// # let _ = store;
    /// ```
    pub const ENTRY_OVERHEAD: u64 = 136;

    /// The number of values held, counting expired ones until they are
    /// swept out (see [`MemoryStore::run_pending_tasks`]).
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
        self.cache.len() as u64
    }

    /// True when the store holds nothing (expired values count until swept,
    /// as for [`MemoryStore::len`]).
    ///
    /// ```
    /// use larder::MemoryStore;
    ///
    /// assert!(MemoryStore::new(1 << 20).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, as weighed: key and value bytes as the allocator rounds
    /// them, plus [`MemoryStore::ENTRY_OVERHEAD`] per entry, and for each tag
    /// membership the tag's and the key's bytes plus 128. Never more than
    /// the capacity.
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
    ///     // The key's 3 bytes take 32; the value's 1,000 take 1,008.
    ///     let entry = 32 + 1008 + MemoryStore::ENTRY_OVERHEAD;
    ///     assert_eq!(store.weighted_size(), entry);
    ///     store.index_add("tag", "key", ttl).await.unwrap();
    ///     assert_eq!(store.weighted_size(), entry + (3 + 3 + 128));
    /// });
    /// ```
    pub fn weighted_size(&self) -> u64 {
        self.cache.weight()
    }

    /// With the `metrics` feature: `larder_memory_store_entries` and
    /// `larder_memory_store_bytes`, after each write and delete.
    fn report_size(&self) {
        #[cfg(feature = "metrics")]
        {
            // Taken on the first write, as the engine takes its handles
            // when the cache is built: after the recorder is installed.
            static GAUGES: std::sync::OnceLock<(metrics::Gauge, metrics::Gauge)> =
                std::sync::OnceLock::new();
            let (entries, bytes) = GAUGES.get_or_init(|| {
                (
                    metrics::gauge!("larder_memory_store_entries"),
                    metrics::gauge!("larder_memory_store_bytes"),
                )
            });
            entries.set(self.len() as f64);
            bytes.set(self.weighted_size() as f64);
        }
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

    /// Sweeps expired values out now, rather than at the next periodic
    /// sweep (for tests and stats). Evictions are never pending: they
    /// happen as values are written.
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
        self.sweep(self.shared.now());
    }

    /// Drops every value expired at `now`, with its tag memberships.
    fn sweep(&self, now: u64) {
        let tagged = Mutex::new(Vec::new());
        self.cache.retain(|key, value| {
            let live = value.expires > now;
            if !live && value.tag_weight != 0 {
                let mut tagged = tagged.lock().unwrap_or_else(|e| e.into_inner());
                tagged.push((key.clone(), value.id));
            }
            live
        });
        let tagged = tagged.into_inner().unwrap_or_else(|e| e.into_inner());
        if !tagged.is_empty() {
            let mut index = self.shared.index();
            for (key, id) in tagged {
                index.removed(&key, id);
            }
        }
    }

    /// Sweeps when one is due: once per [`SWEEP_EVERY_MS`], on the
    /// runtime's blocking threads when there is a runtime, so that no
    /// request waits for it.
    fn maybe_sweep(&self, now: u64) {
        let due = self.shared.next_sweep.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let next = now.saturating_add(self.shared.sweep_every);
        let next_sweep = &self.shared.next_sweep;
        if next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another caller took this one
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let store = self.clone();
                runtime.spawn_blocking(move || store.sweep(store.shared.now()));
            }
            Err(_) => self.sweep(now),
        }
    }

    /// `key`'s value expired at `now`: it goes, unless it was since
    /// replaced.
    fn expire(&self, key: &str, now: u64) {
        if let Some((_, gone)) = self.cache.remove_if(key, |v| v.expires <= now) {
            if gone.tag_weight != 0 {
                self.shared.index().removed(key, gone.id);
            }
        }
    }

    /// The live value under `key`, without counting as a read.
    fn peek(&self, key: &str) -> Option<Value> {
        let value = self.cache.peek(key)?;
        (value.expires > self.shared.now()).then_some(value)
    }

    fn remove(&self, key: &str) {
        let _write = self.shared.write_lock(key);
        if let Some((_, gone)) = self.cache.remove(key) {
            if gone.tag_weight != 0 {
                self.shared.index().removed(key, gone.id);
            }
        }
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
            .field("entries", &self.cache.len())
            .field("weighted_size", &self.cache.weight())
            .finish()
    }
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        // A sync map: no await, nothing to wait for in memory.
        Box::pin(async move {
            let Some(value) = self.cache.get(key) else {
                return Ok(None);
            };
            let now = self.shared.now();
            self.maybe_sweep(now);
            if value.expires > now {
                return Ok(Some(value.bytes));
            }
            self.expire(key, now);
            Ok(None)
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let expires = self.shared.expiry(ttl);
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
            self.cache.insert(key.into(), value);
            self.changed(key);
            self.maybe_sweep(self.shared.now());
            self.report_size();
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.remove(key);
            self.report_size();
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
            let Some(current) = self.peek(member) else {
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
                self.cache.insert(member.into(), reweighed);
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
        // Wait until the store's clock has passed the expiry rather than
        // asserting on how long that takes.
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
        let entry = 54 + 100 + MemoryStore::ENTRY_OVERHEAD;
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
        let entry = 32 + 32 + MemoryStore::ENTRY_OVERHEAD;
        assert_eq!(s.weighted_size(), entry + (5 + 1 + 128));
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
        // The store's clock decides; wait for it (bounded), assert no times.
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
    async fn expired_values_leave_memory_without_being_read() {
        let s = MemoryStore::with_sweeps(1 << 20, 10);
        let short = Duration::from_millis(1);
        for i in 0..100 {
            let key = format!("short:{i}");
            s.put(&key, Bytes::from(vec![0; 100]), short).await.unwrap();
            s.index_add("tag:short", &key, short).await.unwrap();
        }
        s.put("long", Bytes::from_static(b"v"), HOUR).await.unwrap();
        // Writes go on; the sweeps they set off (on the runtime's blocking
        // threads) drop what expired. Bounded wait, no timing asserted.
        for i in 0..500 {
            if s.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            s.put(&format!("other:{}", i % 2), Bytes::from_static(b"v"), HOUR)
                .await
                .unwrap();
        }
        assert_eq!(s.len(), 3, "the long-lived values, and no expired one");
        assert_eq!(s.tag_memberships(), 0);
        assert!(s.get("long").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_expired_value_read_is_absent_and_gone() {
        let s = MemoryStore::new(1 << 20);
        s.put("k", Bytes::from_static(b"v"), Duration::from_millis(1))
            .await
            .unwrap();
        s.index_add("tag:a", "k", HOUR).await.unwrap();
        while s.get("k").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!((s.len(), s.weighted_size(), s.tag_memberships()), (0, 0, 0));
        // Nor can an expired value be tagged.
        s.put("k", Bytes::from_static(b"v"), Duration::from_millis(1))
            .await
            .unwrap();
        while s.peek("k").is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        s.index_add("tag:a", "k", HOUR).await.unwrap();
        assert_eq!(s.tag_memberships(), 0);
    }

    #[tokio::test]
    async fn a_flood_of_keys_read_once_does_not_push_out_the_keys_being_read() {
        // 1 MiB holds about 800 values of 1 KiB; 20,000 distinct keys go
        // by, while 100 keys are read now and then.
        let cap = 1 << 20;
        let s = MemoryStore::new(cap);
        let value = Bytes::from(vec![b'x'; 1024]);
        let hot: Vec<String> = (0..100).map(|i| format!("hot:{i}")).collect();
        for key in &hot {
            s.put(key, value.clone(), HOUR).await.unwrap();
        }
        for i in 0..20_000 {
            s.put(&format!("flood:{i}"), value.clone(), HOUR)
                .await
                .unwrap();
            if i % 100 == 0 {
                for key in &hot {
                    s.get(key).await.unwrap();
                }
            }
            assert!(s.weighted_size() <= cap, "{}", s.weighted_size());
        }
        for key in &hot {
            assert!(s.get(key).await.unwrap().is_some(), "{key} was pushed out");
        }
    }

    #[test]
    fn allocations_are_weighed_as_the_allocator_rounds_them() {
        assert_eq!(allocation(0), 32);
        assert_eq!(allocation(24), 32);
        assert_eq!(allocation(25), 48);
        assert_eq!(allocation(51), 64);
        assert_eq!(allocation(1126), 1136);
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
