//! Being told when keys change: what keeps copies of entries coherent.
//!
//! The engine keeps ready-to-send copies of the entries it reads (the hot
//! tier). A copy is only as good as the store's word that the key has not
//! changed since it was read. A store that can watch its keys
//! ([`Store::watch`](super::Store::watch)) reports every change under a
//! prefix to a [`Watcher`]: the memory store directly, the Redis store
//! through RESP3 client tracking. A store that cannot leaves the engine
//! to hold its copies for a short, bounded time only.

use std::sync::{RwLock, Weak};

/// Told by a store about changes to the keys it watches for it.
///
/// The contract, which the engine's coherence rests on:
/// - After [`Watcher::restored`] and until [`Watcher::lost`], every write,
///   delete, expiry-by-purge or increment of a watched key, by any client
///   of the store, is reported through [`Watcher::changed`]; a change
///   made before a read of the key completed is reported before, or
///   while, that read returns (never only much later).
/// - A watcher starts lost: nothing is promised until the first
///   `restored`.
/// - When the store can no longer promise that (a connection dropped, the
///   server said tracking broke), it calls `lost` before anything else;
///   copies read before then must not be trusted again.
///
/// A store may report a key that did not change (a spurious report only
/// costs a store read), and may report the same change more than once.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use larder::store::Watcher;
///
/// #[derive(Default)]
/// struct Count(AtomicU64);
///
/// impl Watcher for Count {
///     fn changed(&self, _key: &[u8]) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
///     fn lost(&self) {}
///     fn restored(&self) {}
/// }
/// let count = Count::default();
/// count.changed(b"larder:items:0:{00ff}");
/// assert_eq!(count.0.load(Ordering::Relaxed), 1);
/// ```
pub trait Watcher: Send + Sync + 'static {
    /// `key` changed, or may have.
    fn changed(&self, key: &[u8]);
    /// Changes may go unreported from now on, until [`Watcher::restored`].
    fn lost(&self);
    /// Every change is reported again from now on.
    fn restored(&self);
}

/// What a store said to [`Store::watch`](super::Store::watch).
///
/// ```
/// use larder::store::Watch;
///
/// assert_ne!(Watch::Watching, Watch::Unsupported("no RESP3"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Watch {
    /// The store will report changes; it calls
    /// [`Watcher::restored`] once it can (maybe before `watch` returns).
    Watching,
    /// The store cannot report changes, for the reason given.
    Unsupported(&'static str),
}

/// The watchers a store reports to, with the prefixes each watches.
/// Dropped watchers are forgotten as they are found.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use larder::store::{Watcher, Watchers};
///
/// #[derive(Default)]
/// struct Count(AtomicU64);
/// impl Watcher for Count {
///     fn changed(&self, _: &[u8]) { self.0.fetch_add(1, Ordering::Relaxed); }
///     fn lost(&self) {}
///     fn restored(&self) {}
/// }
///
/// let watchers = Watchers::default();
/// let count = Arc::new(Count::default());
/// let weak = Arc::downgrade(&count);
/// watchers.add("app:", weak);
/// watchers.changed(b"app:items");
/// watchers.changed(b"other:items");
/// assert_eq!(count.0.load(Ordering::Relaxed), 1);
/// ```
#[derive(Default)]
pub struct Watchers {
    list: RwLock<Vec<Watched>>,
}

/// A prefix, and who watches it.
type Watched = (Box<[u8]>, Weak<dyn Watcher>);

impl Watchers {
    /// Adds a watcher of the keys starting with `prefix`.
    pub fn add(&self, prefix: &str, watcher: Weak<dyn Watcher>) {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        list.retain(|(_, w)| w.strong_count() > 0);
        list.push((prefix.as_bytes().into(), watcher));
    }

    /// True when nobody watches: writes skip the reporting.
    pub fn is_empty(&self) -> bool {
        self.list
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Reports a change of `key` to those who watch its prefix.
    pub fn changed(&self, key: &[u8]) {
        self.each(|prefix, w| {
            if key.starts_with(prefix) {
                w.changed(key)
            }
        });
    }

    /// Reports to every watcher that changes may go unreported.
    pub fn lost(&self) {
        self.each(|_, w| w.lost());
    }

    /// Reports to every watcher that changes are reported again.
    pub fn restored(&self) {
        self.each(|_, w| w.restored());
    }

    /// The prefixes watched now, longest first, without duplicates.
    pub fn prefixes(&self) -> Vec<String> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = list
            .iter()
            .filter(|(_, w)| w.strong_count() > 0)
            .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
            .collect();
        out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        out.dedup();
        out
    }

    fn each(&self, mut f: impl FnMut(&[u8], &dyn Watcher)) {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        for (prefix, weak) in list.iter() {
            if let Some(w) = weak.upgrade() {
                f(prefix, &*w);
            }
        }
    }
}

impl std::fmt::Debug for Watchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchers")
            .field("prefixes", &self.prefixes())
            .finish()
    }
}
