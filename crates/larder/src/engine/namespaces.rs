//! Namespace generations: how a whole namespace is purged in O(1).
//!
//! Every store key of a namespace carries the namespace's generation, a
//! counter kept in the store. Purging the namespace increments it: from then
//! on requests compute new keys, and the old entries are never read again
//! (they expire on their own TTL). No `KEYS`, no `SCAN`.
//!
//! Reading the counter on every request would double the round trips, so
//! each instance keeps the generation it last read and reads it again at
//! most once per refresh interval: another instance's purge is seen within
//! that interval, this instance's own purge at once.
//!
//! A counter that is not one (foreign bytes, another type) would leave the
//! namespace without a generation: uncached on every new instance, and
//! impossible to purge. It is reset instead, to a generation no entry can
//! have been stored under (see `fresh_generation`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use super::Cache;
use crate::clock::millis;
use crate::store::StoreError;

#[derive(Default)]
pub(crate) struct Namespaces {
    map: RwLock<HashMap<String, Arc<Generation>, Fnv>>,
}

/// FNV-1a: namespaces are a handful of short names the application
/// chose (no client picks them, so no flooding to resist), looked up on
/// every request; SipHash costs more than the rest of the lookup.
#[derive(Clone, Copy, Default)]
struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[derive(Default)]
struct Generation {
    value: AtomicU64,
    /// Engine-clock milliseconds of the last read; 0 = never read.
    read_at: AtomicU64,
    reading: AtomicBool,
    /// Moved when the store reports that the counter changed: until a
    /// read that started after it succeeds, requests read it themselves.
    forgets: AtomicU64,
    /// `forgets` as it was when the last successful read started.
    read_forgets: AtomicU64,
}

impl Namespaces {
    fn get(&self, namespace: &str) -> Arc<Generation> {
        if let Some(g) = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(namespace)
        {
            return g.clone();
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        map.entry(namespace.to_owned()).or_default().clone()
    }

    /// A counter changed in the store (another instance purged a
    /// namespace): every namespace's next request reads its generation
    /// before using it. Purges are rare; telling which one it was is not
    /// worth the parsing.
    pub fn forget_all(&self) {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        for g in map.values() {
            g.forgets.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Reporting of changes started, stopped or came back: read every
    /// generation again soon, beside the requests (the store may be down,
    /// and a purge missed meanwhile is one `namespace_refresh` would have
    /// missed as well). Until the read lands, the hot path does not use
    /// what is known: the long way does, and starts the read.
    pub fn refresh_all(&self) {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        for g in map.values() {
            let _ = g
                .read_at
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                    (r > 1).then_some(1)
                });
        }
    }

    /// The generation to use now without waiting for the store, if it is
    /// known and current: never read, forgotten, or (when the store does
    /// not report changes) due for its periodic read all say no.
    pub fn now(&self, namespace: &str, now_ms: u64, refresh_ms: u64, watched: bool) -> Option<u64> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let g = map.get(namespace)?;
        Self::current(g, now_ms, refresh_ms, watched)
    }

    /// [`now`](Self::now) through the route's [`NamespaceSeen`]: after the
    /// route's first request, no lock and no map lookup (the hot path's).
    pub fn now_seen(
        self: &Arc<Self>,
        seen: &NamespaceSeen,
        namespace: &str,
        now_ms: u64,
        refresh_ms: u64,
        watched: bool,
    ) -> Option<u64> {
        match seen.0.get() {
            // The name too: whatever changes a policy's namespace, a handle
            // is only ever used for the one it was taken for.
            Some((owner, name, g)) if Arc::ptr_eq(owner, self) && **name == *namespace => {
                Self::current(g, now_ms, refresh_ms, watched)
            }
            Some(_) => self.now(namespace, now_ms, refresh_ms, watched),
            None => {
                // Entries are never removed: the one found now is the one
                // for good.
                let g = self.get(namespace);
                let _ = seen.0.set((self.clone(), namespace.into(), g.clone()));
                Self::current(&g, now_ms, refresh_ms, watched)
            }
        }
    }

    /// The namespace's entry: the one `seen` holds, if it was taken from
    /// this map for this name, else from the map (kept in `seen` if it
    /// holds none yet).
    fn entry<'s>(
        self: &Arc<Self>,
        seen: &'s NamespaceSeen,
        namespace: &str,
    ) -> std::borrow::Cow<'s, Arc<Generation>> {
        use std::borrow::Cow;
        match seen.0.get() {
            Some((owner, name, g)) if Arc::ptr_eq(owner, self) && **name == *namespace => {
                Cow::Borrowed(g)
            }
            Some(_) => Cow::Owned(self.get(namespace)),
            None => {
                let g = self.get(namespace);
                let _ = seen.0.set((self.clone(), namespace.into(), g.clone()));
                Cow::Owned(g)
            }
        }
    }

    fn current(g: &Generation, now_ms: u64, refresh_ms: u64, watched: bool) -> Option<u64> {
        let read_at = g.read_at.load(Ordering::Acquire);
        // 1: a read was asked for (see `refresh_all`); until it lands, the
        // long way uses what is known and starts it.
        let current = read_at > 1
            && g.forgets.load(Ordering::Acquire) == g.read_forgets.load(Ordering::Acquire)
            && (watched || now_ms.saturating_sub(read_at) < refresh_ms);
        current.then(|| g.value.load(Ordering::Acquire))
    }
}

/// A route's handle on its namespace's generation in the first cache that
/// served it, kept in its [`Policy`](crate::Policy) (clones share it). It
/// holds what the engine found, not a rule: policies compare equal
/// whatever it holds.
#[derive(Clone, Default)]
pub(crate) struct NamespaceSeen(Arc<OnceLock<Handle>>);

/// Whose map, which namespace, its generation.
type Handle = (Arc<Namespaces>, Box<str>, Arc<Generation>);

impl std::fmt::Debug for NamespaceSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NamespaceSeen")
    }
}

impl PartialEq for NamespaceSeen {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for NamespaceSeen {}

impl Cache {
    /// The store key of a namespace's generation counter.
    pub(crate) fn generation_key(&self, namespace: &str) -> String {
        format!(
            "{}:ns:{}:gen",
            self.inner.prefix,
            crate::policy::key::escape(namespace)
        )
    }

    /// The namespace's current generation, as this instance knows it;
    /// `None` when it has never been read (the store is failing), in which
    /// case the request must not use the store: keys of a guessed
    /// generation could reach entries a purge retired.
    pub(crate) async fn generation(&self, namespace: &str) -> Option<u64> {
        let g = self.inner.namespaces.get(namespace);
        self.generation_of(&g, namespace, self.clock_millis()).await
    }

    /// [`Cache::generation`] through a policy's handle on its namespace
    /// (see [`NamespaceSeen`]): no lock, no hashing of the name, as the hot
    /// path; `now` is the request's clock reading, not read again.
    pub(crate) async fn generation_seen(
        &self,
        seen: &NamespaceSeen,
        namespace: &str,
        now: SystemTime,
    ) -> Option<u64> {
        let g = self.inner.namespaces.entry(seen, namespace);
        let now = now.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0);
        self.generation_of(&g, namespace, now).await
    }

    async fn generation_of(&self, g: &Arc<Generation>, namespace: &str, now: u64) -> Option<u64> {
        let read_at = g.read_at.load(Ordering::Acquire);
        if read_at == 0 {
            // Keys depend on it: the first read is waited for.
            return self
                .read_generation(g, namespace, now)
                .await
                .then(|| g.value.load(Ordering::Acquire));
        }
        if g.forgets.load(Ordering::Acquire) != g.read_forgets.load(Ordering::Acquire) {
            // The store said it changed: this request must not use the
            // old one. If the read fails, what is known is all there is.
            self.read_generation(g, namespace, now).await;
            return Some(g.value.load(Ordering::Acquire));
        }
        // While the store reports every change, there is nothing to poll.
        let watched = self.hot_watched();
        let due = read_at == 1
            || (!watched && now.saturating_sub(read_at) >= millis(self.inner.namespace_refresh));
        // Later reads happen beside the request, one at a time, so no
        // request waits on them. The flag is released by a guard, even if
        // the task is dropped half-way.
        if due && !g.reading.swap(true, Ordering::AcqRel) {
            let (cache, g, namespace) = (self.clone(), g.clone(), namespace.to_owned());
            tokio::spawn(async move {
                let _reading = Reading(&g.reading);
                cache.read_generation(&g, &namespace, now).await;
            });
        }
        Some(g.value.load(Ordering::Acquire))
    }

    /// Reads the generation from the store; false if that failed.
    async fn read_generation(&self, g: &Generation, namespace: &str, now: u64) -> bool {
        let key = self.generation_key(namespace);
        let forgets = g.forgets.load(Ordering::Acquire);
        let mut read = self.inner.store.counter(&key).await;
        if matches!(&read, Err(e) if e.is_corrupt()) {
            read = self.reset_generation(g, &key).await;
        }
        match read {
            Ok(value) => {
                g.value.fetch_max(value, Ordering::AcqRel);
                g.read_at.fetch_max(now.max(2), Ordering::AcqRel);
                g.read_forgets.fetch_max(forgets, Ordering::AcqRel);
                true
            }
            Err(e) => {
                self.store_error("counter", e);
                // Once known, a failing store is not asked per request.
                if g.read_at.load(Ordering::Acquire) != 0 {
                    g.read_at.fetch_max(now.max(2), Ordering::AcqRel);
                }
                false
            }
        }
    }

    /// Moves the namespace to a new generation; returns it.
    pub(crate) async fn bump_generation(&self, namespace: &str) -> Result<u64, StoreError> {
        let key = self.generation_key(namespace);
        let g = self.inner.namespaces.get(namespace);
        let value = match self.inner.store.incr(&key).await {
            Err(e) if e.is_corrupt() => {
                self.reset_generation(&g, &key).await?;
                self.inner.store.incr(&key).await?
            }
            other => other?,
        };
        g.value.fetch_max(value, Ordering::AcqRel);
        g.read_at
            .store(self.clock_millis().max(2), Ordering::Release);
        Ok(value)
    }

    /// Puts a counter back under `key`, which held something else; returns
    /// the generation it holds afterwards.
    async fn reset_generation(&self, g: &Generation, key: &str) -> Result<u64, StoreError> {
        let fresh = self.fresh_generation(g.value.load(Ordering::Acquire));
        let value = self.inner.store.repair_counter(key, fresh).await?;
        self.repaired(key, "a namespace generation was not a counter");
        Ok(value)
    }

    /// A generation no entry of the namespace can have been stored under,
    /// for a counter whose value was lost: the clock's Unix time in
    /// milliseconds, or one more than the highest this instance has seen.
    ///
    /// Purges add one at a time, so no namespace counts its way up to the
    /// time in milliseconds (about 1.7 × 10¹²), and a later reset lands
    /// higher still. Restarting from 0, or from any small number, would
    /// make entries stored before the loss (under generations 0 to N, all
    /// purged since) readable again; a random value could land below what
    /// other instances hold (they only ever move their generation up, so
    /// they would not follow it). A clock behind by more than the time
    /// since the last reset is the one way to collide, and needs two
    /// corruptions in that window.
    fn fresh_generation(&self, known: u64) -> u64 {
        self.clock_millis().max(known.saturating_add(1))
    }

    pub(crate) fn clock_millis(&self) -> u64 {
        self.inner
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(millis)
            .unwrap_or(0)
    }
}

/// Clears the "a read is running" flag when dropped.
struct Reading<'a>(&'a AtomicBool);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(namespaces: &Namespaces, name: &str, generation: u64) {
        let g = namespaces.get(name);
        g.value.store(generation, Ordering::Release);
        g.read_at.store(2, Ordering::Release);
    }

    #[test]
    fn a_routes_handle_is_only_used_for_its_own_map_and_namespace() {
        let (a, b) = (
            Arc::new(Namespaces::default()),
            Arc::new(Namespaces::default()),
        );
        known(&a, "x", 5);
        known(&a, "y", 7);
        known(&b, "x", 9);
        let seen = NamespaceSeen::default();
        let now = |ns: &Arc<Namespaces>, name| ns.now_seen(&seen, name, 10, 1_000, true);
        assert_eq!(now(&a, "x"), Some(5), "taking the handle");
        assert_eq!(now(&a, "x"), Some(5), "through the handle");
        assert_eq!(
            now(&a, "y"),
            Some(7),
            "another namespace, same policy handle"
        );
        assert_eq!(now(&b, "x"), Some(9), "another cache's map");
        // A purge seen through the handle, as through the map.
        a.get("x").forgets.fetch_add(1, Ordering::AcqRel);
        assert_eq!(now(&a, "x"), None);
        assert_eq!(a.now("x", 10, 1_000, true), None);
    }

    /// The long way reads its generation through the same handle: the
    /// entry it gives is always the map's own for that name.
    #[test]
    fn the_long_ways_entry_is_the_maps_own_whatever_the_handle_holds() {
        let (a, b) = (
            Arc::new(Namespaces::default()),
            Arc::new(Namespaces::default()),
        );
        let seen = NamespaceSeen::default();
        let same = |ns: &Arc<Namespaces>, name| Arc::ptr_eq(&ns.entry(&seen, name), &ns.get(name));
        assert!(same(&a, "x"), "taking the handle");
        assert!(
            matches!(a.entry(&seen, "x"), std::borrow::Cow::Borrowed(_)),
            "through the handle"
        );
        assert!(same(&a, "y"), "another namespace, same policy handle");
        assert!(same(&b, "x"), "another cache's map");
        assert!(!Arc::ptr_eq(&a.entry(&seen, "x"), &b.entry(&seen, "x")));
    }
}
