//! Where entries live: bytes in, bytes out.
//!
//! A store knows nothing of HTTP. The engine hands it encoded records with a
//! time to live and asks for them back by key; every caching rule lives
//! above it, so a new backend is a small file.

mod memory;
#[cfg(feature = "redis")]
mod redis;
mod watch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;

pub use memory::MemoryStore;
pub use watch::{Watch, Watcher, Watchers};

/// How every value larder keeps under a lease key begins: a holder's token
/// (`larder:lease:…`) or a marker such as `larder:uncacheable`.
///
/// A store treats any other value under a lease key (foreign bytes, or a
/// value of another type) as absent: see [`Store::lease`].
///
/// ```
/// use larder::store::is_lease_value;
///
/// assert!(is_lease_value(b"larder:lease:00ff00ff00ff00ff"));
/// assert!(is_lease_value(b"larder:uncacheable"));
/// assert!(!is_lease_value(b"something else"));
/// ```
pub const LEASE_MARK: &[u8] = b"larder:";

/// Whether `value` is one larder writes under a lease key (it starts with
/// [`LEASE_MARK`]).
///
/// ```
/// assert!(!larder::store::is_lease_value(b""));
/// ```
pub fn is_lease_value(value: &[u8]) -> bool {
    value.starts_with(LEASE_MARK)
}

/// What a store answers when asked for a lease on a key
/// ([`Store::lease`]).
///
/// ```
/// use larder::store::Lease;
///
/// let held = Lease::Held(bytes::Bytes::from_static(b"larder:lease:other-instance"));
/// assert_ne!(held, Lease::Granted);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lease {
    /// The caller holds the lease until it ends it or its time runs out.
    Granted,
    /// The caller holds the lease, as with [`Lease::Granted`], and the key
    /// held something that was not a live lease (foreign bytes, a value
    /// that never expires, a value of another type), which the store
    /// replaced. The engine counts and logs it.
    Repaired,
    /// Another holds it; this is the value it was taken (or last ended) with.
    Held(Bytes),
    /// The store does not do leases: each instance coordinates only its own
    /// requests.
    Unsupported,
}
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};

/// The future a [`Store`] method returns: boxed, `Send`, borrowing the store
/// for `'a`.
///
/// ```
/// use larder::store::{StoreError, StoreFuture};
///
/// fn unavailable<'a>() -> StoreFuture<'a, ()> {
///     Box::pin(async { Err(StoreError::new("redis", "connection refused")) })
/// }
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// assert!(rt.block_on(unavailable()).is_err());
/// ```
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store failed. The engine serves the request as a miss, counts the
/// error, and logs it at most once per interval.
///
/// ```
/// use larder::store::StoreError;
///
/// let err = StoreError::new("redis", "connection refused");
/// assert_eq!(err.to_string(), "redis store: connection refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{store} store: {message}")]
pub struct StoreError {
    /// Which store failed.
    pub store: &'static str,
    /// What kind of failure it was.
    pub kind: StoreErrorKind,
    /// What went wrong.
    pub message: String,
}

/// The kinds of [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store answered with an error, or the connection broke.
    Failed,
    /// The store did not answer in time.
    Timeout,
    /// The store was not asked: not connected, or its circuit breaker is open.
    Unavailable,
    /// The value is larger than the store accepts: not an outage, a limit.
    TooLarge,
    /// The key holds something larder did not write there: a counter that
    /// is not a number, an index that is not a set, a value of another
    /// type. The store is healthy; the engine repairs the key
    /// ([`Store::repair_counter`], [`Store::repair_index`]) and counts it.
    Corrupt,
}

impl StoreError {
    /// A new error from the named store.
    ///
    /// ```
    /// use larder::store::StoreError;
    ///
    /// let err = StoreError::new("memory", format!("{} bytes over", 12));
    /// assert_eq!((err.store, err.message.as_str()), ("memory", "12 bytes over"));
    /// ```
    pub fn new(store: &'static str, message: impl Into<String>) -> Self {
        StoreError {
            store,
            kind: StoreErrorKind::Failed,
            message: message.into(),
        }
    }

    /// The store did not answer within `after`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::store::{StoreError, StoreErrorKind};
    ///
    /// let err = StoreError::timeout("redis", Duration::from_millis(50));
    /// assert_eq!(err.kind, StoreErrorKind::Timeout);
    /// assert_eq!(err.to_string(), "redis store: no answer within 50ms");
    /// ```
    pub fn timeout(store: &'static str, after: std::time::Duration) -> Self {
        StoreError {
            store,
            kind: StoreErrorKind::Timeout,
            message: format!("no answer within {after:?}"),
        }
    }

    /// The store was not asked, for the reason given.
    ///
    /// ```
    /// use larder::store::{StoreError, StoreErrorKind};
    ///
    /// let err = StoreError::unavailable("redis", "circuit breaker open");
    /// assert_eq!(err.kind, StoreErrorKind::Unavailable);
    /// ```
    pub fn unavailable(store: &'static str, why: &str) -> Self {
        StoreError {
            store,
            kind: StoreErrorKind::Unavailable,
            message: why.to_owned(),
        }
    }

    /// A value of `len` bytes is over the store's limit.
    ///
    /// ```
    /// use larder::store::StoreError;
    ///
    /// assert!(StoreError::too_large("redis", 9 << 20).is_too_large());
    /// assert!(!StoreError::new("redis", "boom").is_too_large());
    /// ```
    pub fn too_large(store: &'static str, len: usize) -> Self {
        StoreError {
            store,
            kind: StoreErrorKind::TooLarge,
            message: format!("value of {len} bytes is over the limit"),
        }
    }

    /// The key holds something larder did not write there
    /// ([`StoreErrorKind::Corrupt`]).
    ///
    /// ```
    /// use larder::store::StoreError;
    ///
    /// let err = StoreError::corrupt("redis", "larder:ns:items:gen is not a counter");
    /// assert!(err.is_corrupt());
    /// assert!(!StoreError::new("redis", "boom").is_corrupt());
    /// ```
    pub fn corrupt(store: &'static str, what: impl Into<String>) -> Self {
        StoreError {
            store,
            kind: StoreErrorKind::Corrupt,
            message: what.into(),
        }
    }

    /// True for [`StoreErrorKind::Corrupt`].
    ///
    /// ```
    /// use larder::store::StoreError;
    ///
    /// assert!(!StoreError::too_large("redis", 1).is_corrupt());
    /// ```
    pub fn is_corrupt(&self) -> bool {
        self.kind == StoreErrorKind::Corrupt
    }

    /// True for [`StoreErrorKind::TooLarge`].
    ///
    /// ```
    /// use larder::store::StoreError;
    ///
    /// assert!(!StoreError::timeout("redis", std::time::Duration::ZERO).is_too_large());
    /// ```
    pub fn is_too_large(&self) -> bool {
        self.kind == StoreErrorKind::TooLarge
    }
}

/// A key-value store for encoded entries.
///
/// Implement it to put larder's entries somewhere new:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use bytes::Bytes;
/// use larder::store::{Store, StoreError, StoreFuture};
///
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<String, Bytes>>);
///
/// impl Store for MapStore {
///     fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
///         Box::pin(async move { Ok(self.0.lock().unwrap().get(key).cloned()) })
///     }
///     fn put<'a>(&'a self, key: &'a str, value: Bytes, _ttl: Duration) -> StoreFuture<'a, ()> {
///         Box::pin(async move {
///             self.0.lock().unwrap().insert(key.to_owned(), value);
///             Ok(())
///         })
///     }
///     fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
///         Box::pin(async move {
///             self.0.lock().unwrap().remove(key);
///             Ok(())
///         })
///     }
///     // Tag indexes and namespace counters: this store does not keep them.
///     fn index_add<'a>(&'a self, _: &'a str, _: &'a str, _: Duration) -> StoreFuture<'a, ()> {
///         Box::pin(async { Err(StoreError::unavailable("map", "no tag indexes")) })
///     }
///     fn index_purge<'a>(&'a self, _: &'a str) -> StoreFuture<'a, u64> {
///         Box::pin(async { Err(StoreError::unavailable("map", "no tag indexes")) })
///     }
///     fn incr<'a>(&'a self, _: &'a str) -> StoreFuture<'a, u64> {
///         Box::pin(async { Err(StoreError::unavailable("map", "no counters")) })
///     }
///     fn counter<'a>(&'a self, _: &'a str) -> StoreFuture<'a, u64> {
///         Box::pin(async { Ok(0) })
///     }
/// }
/// ```
pub trait Store: Send + Sync + 'static {
    /// The value stored under `key`, if any and not expired.
    ///
    /// ```
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(store.get("absent")).unwrap(), None);
    /// ```
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>>;

    /// Several values at once, in the order of `keys`. Stores with round
    /// trips override it to fetch them in one. The default calls
    /// [`Store::get`] for each key in turn and fails on the first error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     store.put("b", Bytes::from_static(b"2"), Duration::from_secs(60)).await.unwrap();
    ///     let got = store.get_many(&["a".into(), "b".into()]).await.unwrap();
    ///     assert_eq!(got, [None, Some(Bytes::from_static(b"2"))]);
    /// });
    /// ```
    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            Ok(out)
        })
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     store.put("k", Bytes::from_static(b"old"), Duration::from_secs(60)).await.unwrap();
    ///     store.put("k", Bytes::from_static(b"new"), Duration::from_secs(60)).await.unwrap();
    ///     assert_eq!(store.get("k").await.unwrap(), Some(Bytes::from_static(b"new")));
    /// });
    /// ```
    fn put<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()>;

    /// Removes `key`; removing an absent key is not an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     store.put("k", Bytes::from_static(b"v"), Duration::from_secs(60)).await.unwrap();
    ///     store.delete("k").await.unwrap();
    ///     assert_eq!(store.get("k").await.unwrap(), None);
    ///     assert!(store.delete("k").await.is_ok());
    /// });
    /// ```
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// Adds `member` (a store key, just written with `put`) to the set
    /// stored under `index`. Tag purges use these sets.
    ///
    /// A set must not outlive its members: it lasts at least `ttl` (the
    /// member's), and a member whose entry is gone (expired, evicted,
    /// deleted) must not stay in it for long. The memory store drops a
    /// membership with its entry and counts it against its byte bound; the
    /// Redis store extends the set's expiry to its longest-lived member's
    /// and prunes members whose keys are gone as the set grows.
    ///
    /// An `index` holding something other than a set is an error of kind
    /// [`StoreErrorKind::Corrupt`]: the engine then calls
    /// [`Store::repair_index`] and adds again.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     let ttl = Duration::from_secs(60);
    ///     store.put("k1", Bytes::from_static(b"v"), ttl).await.unwrap();
    ///     store.index_add("tag:{items}", "k1", ttl).await.unwrap();
    ///     assert_eq!(store.index_purge("tag:{items}").await.unwrap(), 1);
    ///     assert_eq!(store.get("k1").await.unwrap(), None);
    /// });
    /// ```
    fn index_add<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, ()>;

    /// Deletes every key in the set stored under `index`, and the set;
    /// returns how many keys it held. An `index` that holds something other
    /// than a set is a [`StoreErrorKind::Corrupt`] error.
    ///
    /// ```
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(store.index_purge("tag:{none}")).unwrap(), 0);
    /// ```
    fn index_purge<'a>(&'a self, index: &'a str) -> StoreFuture<'a, u64>;

    /// Atomically increments the counter under `key` (absent counts as 0)
    /// and returns the new value. Namespace generations use it. A value
    /// that is not a counter (not a number, negative, another type) is a
    /// [`StoreErrorKind::Corrupt`] error: the engine then calls
    /// [`Store::repair_counter`].
    ///
    /// ```
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(store.incr("gen")).unwrap(), 1);
    /// assert_eq!(rt.block_on(store.counter("gen")).unwrap(), 1);
    /// ```
    fn incr<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64>;

    /// The counter under `key`; 0 when absent. A value that is not a
    /// counter is a [`StoreErrorKind::Corrupt`] error, as for [`Store::incr`].
    ///
    /// ```
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(store.counter("never")).unwrap(), 0);
    /// ```
    fn counter<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64>;

    /// Unless `key` holds a counter, replaces whatever it holds (any value,
    /// any type) with the counter `value`, atomically; returns the counter
    /// `key` holds afterwards (`value`, or the valid counter another
    /// instance already put back). The engine calls it after a
    /// [`StoreErrorKind::Corrupt`] error from [`Store::counter`] or
    /// [`Store::incr`].
    ///
    /// The default fails: a store that never reports a corrupt counter is
    /// never asked.
    ///
    /// ```
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// assert_eq!(rt.block_on(store.incr("gen")).unwrap(), 1);
    /// // A counter that is fine is left alone.
    /// assert_eq!(rt.block_on(store.repair_counter("gen", 1_000)).unwrap(), 1);
    /// ```
    fn repair_counter<'a>(&'a self, key: &'a str, value: u64) -> StoreFuture<'a, u64> {
        let _ = (key, value);
        Box::pin(async { Err(StoreError::unavailable("store", "cannot repair counters")) })
    }

    /// Deletes `index` if it holds something other than a set (checked
    /// and deleted atomically, so that a set another instance just made is
    /// kept); returns whether it deleted anything. The engine calls it
    /// after a [`StoreErrorKind::Corrupt`] error from [`Store::index_add`]
    /// or [`Store::index_purge`].
    ///
    /// The default deletes `index` with [`Store::delete`].
    ///
    /// ```
    /// use larder::store::Store;
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// // The memory store's indexes are always sets.
    /// assert!(!rt.block_on(store.repair_index("tag:{items}")).unwrap());
    /// ```
    fn repair_index<'a>(&'a self, index: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.delete(index).await?;
            Ok(true)
        })
    }

    /// Takes the lease `key` for `ttl`, marked with `holder`, unless someone
    /// holds it: then says who ([`Lease::Held`]). Instances sharing a store
    /// use leases so that one of them fills a cold key while the others
    /// wait for the entry. A holder that dies leaves a lease that simply
    /// expires.
    ///
    /// Only a live lease holds the key: a value that starts with
    /// [`LEASE_MARK`] and expires. Anything else under `key` (foreign
    /// bytes, a value without expiry, a value of another type) is treated
    /// as absent and replaced: the caller gets the lease as
    /// [`Lease::Repaired`]. A stray value must never make every miss wait.
    ///
    /// The default answers [`Lease::Unsupported`]: without leases each
    /// instance still coalesces its own requests.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::store::{Lease, Store};
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     let ttl = Duration::from_secs(10);
    ///     let a = Bytes::from_static(b"larder:lease:a");
    ///     assert_eq!(store.lease("k:lease", a.clone(), ttl).await.unwrap(), Lease::Granted);
    ///     let b = Bytes::from_static(b"larder:lease:b");
    ///     assert_eq!(store.lease("k:lease", b, ttl).await.unwrap(), Lease::Held(a));
    ///     // Not a lease: taken over.
    ///     let foreign = Bytes::from_static(b"foreign");
    ///     store.lease("j:lease", foreign, ttl).await.unwrap();
    ///     let c = Bytes::from_static(b"larder:lease:c");
    ///     assert_eq!(store.lease("j:lease", c, ttl).await.unwrap(), Lease::Repaired);
    /// });
    /// ```
    fn lease<'a>(&'a self, key: &'a str, holder: Bytes, ttl: Duration) -> StoreFuture<'a, Lease> {
        let _ = (key, holder, ttl);
        Box::pin(async { Ok(Lease::Unsupported) })
    }

    /// Ends the lease `key` if `holder` still holds it (compare and delete;
    /// a lease that expired and was taken by another is left alone).
    /// With `then`, the key is not deleted but keeps that value for that
    /// long: others asking for the lease meanwhile get it as
    /// [`Lease::Held`]. Returns whether the lease was ended.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use larder::store::{Lease, Store};
    /// use larder::MemoryStore;
    ///
    /// let store = MemoryStore::new(1 << 20);
    /// tokio::runtime::Runtime::new().unwrap().block_on(async {
    ///     let ttl = Duration::from_secs(10);
    ///     let a = Bytes::from_static(b"larder:lease:a");
    ///     let b = Bytes::from_static(b"larder:lease:b");
    ///     store.lease("k:lease", a.clone(), ttl).await.unwrap();
    ///     assert!(!store.end_lease("k:lease", b.clone(), None).await.unwrap());
    ///     assert!(store.end_lease("k:lease", a, None).await.unwrap());
    ///     assert_eq!(store.lease("k:lease", b, ttl).await.unwrap(), Lease::Granted);
    /// });
    /// ```
    fn end_lease<'a>(
        &'a self,
        key: &'a str,
        holder: Bytes,
        then: Option<(Bytes, Duration)>,
    ) -> StoreFuture<'a, bool> {
        let _ = (key, holder, then);
        Box::pin(async { Ok(false) })
    }

    /// Reports every later change of a key starting with `prefix` to
    /// `watcher`, as [`Watcher`] says, so that the engine may keep copies
    /// of what it reads for as long as they are not changed. The store
    /// holds the watcher weakly: a cache that is dropped stops being told.
    ///
    /// The default answers [`Watch::Unsupported`]: the engine then keeps
    /// its copies for a short, bounded time only (`l1_ttl`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use larder::store::{Store, Watch, Watcher};
    /// use larder::MemoryStore;
    ///
    /// #[derive(Default)]
    /// struct Restored(AtomicBool);
    /// impl Watcher for Restored {
    ///     fn changed(&self, _: &[u8]) {}
    ///     fn lost(&self) {}
    ///     fn restored(&self) { self.0.store(true, Ordering::Relaxed) }
    /// }
    /// let store = MemoryStore::new(1 << 20);
    /// let watcher = Arc::new(Restored::default());
    /// let weak = Arc::downgrade(&watcher);
    /// assert_eq!(store.watch("larder:", weak), Watch::Watching);
    /// assert!(watcher.0.load(Ordering::Relaxed));
    /// ```
    fn watch(&self, prefix: &str, watcher: Weak<dyn Watcher>) -> Watch {
        let _ = (prefix, watcher);
        Watch::Unsupported("this store does not report changes")
    }
}
