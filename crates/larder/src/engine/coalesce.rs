//! In-process request coalescing: concurrent misses on one key run the
//! handler once.
//!
//! The first request to miss a key becomes its leader; the others follow,
//! waiting for what the leader found. A leader whose future is dropped
//! (client gone, handler panicked) tells its followers so, and they try
//! again rather than wait for nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::Cache;
use crate::entry::Entry;

/// What a leader found.
#[derive(Clone)]
pub(crate) enum Landed {
    /// The response was stored; followers may serve it if their Vary
    /// fields match.
    Stored(Arc<Entry>),
    /// The response must not be shared: followers fetch their own.
    Uncacheable,
    /// The leader went away before finishing.
    Abandoned,
    /// The fetch failed (the upstream refused, timed out or broke off):
    /// followers answer the same at once rather than fetch in turn.
    Failed(super::failed::Failure),
}

type Slot = watch::Sender<Option<Landed>>;

const LANDING_BUCKETS: usize = 64;

pub(crate) struct Flights {
    map: Mutex<HashMap<String, Arc<Slot>>>,
    /// Landings counted per bucket of keys. A request reads its bucket
    /// before it reads the store; if a flight landed since, the store may
    /// hold what it missed, and a new leader checks again before fetching.
    landings: [AtomicU64; LANDING_BUCKETS],
}

pub(crate) enum Join {
    Leader(Leader),
    Follower(watch::Receiver<Option<Landed>>),
}

impl Default for Flights {
    fn default() -> Self {
        Flights {
            map: Mutex::default(),
            landings: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Flights {
    /// The landing count of a bucket (see [`bucket`]): take it before
    /// reading the store.
    pub fn landings(&self, bucket: usize) -> u64 {
        self.landings[bucket % LANDING_BUCKETS].load(Ordering::Acquire)
    }

    /// Joins the flight for `key`; a leader's landing counts in `bucket`.
    pub fn join(self: &Arc<Self>, key: &str, bucket: usize) -> Join {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = map.get(key) {
            return Join::Follower(slot.subscribe());
        }
        let slot = Arc::new(watch::Sender::new(None));
        map.insert(key.to_owned(), slot.clone());
        Join::Leader(Leader {
            flights: self.clone(),
            key: key.to_owned(),
            bucket: bucket % LANDING_BUCKETS,
            slot,
            landed: false,
        })
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

/// Held by the one request fetching a key. Dropping it unfinished tells the
/// followers that it was abandoned.
pub(crate) struct Leader {
    flights: Arc<Flights>,
    key: String,
    bucket: usize,
    slot: Arc<Slot>,
    landed: bool,
}

impl Leader {
    pub fn land(mut self, landed: Landed) {
        self.finish(landed);
    }

    fn finish(&mut self, landed: Landed) {
        self.landed = true;
        {
            let mut map = self.flights.map.lock().unwrap_or_else(|e| e.into_inner());
            if map
                .get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
            {
                map.remove(&self.key);
            }
        }
        self.flights.landings[self.bucket].fetch_add(1, Ordering::Release);
        self.slot.send_replace(Some(landed));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.landed {
            self.finish(Landed::Abandoned);
        }
    }
}

/// The landing bucket of a key: FNV-1a, cheap enough for every request
/// (the key itself already ends in a cryptographic hash).
pub(crate) fn bucket(key: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) % LANDING_BUCKETS
}

/// The keys a request is being filled for, and by which cache: a request
/// extension set by [`Fill::prepare`](super::Fill::prepare).
///
/// One request can meet one cache several times on its way to the handler
/// (a router's layer, a route's layer, a `#[larder::cache]` handler). The
/// outermost use that misses leads the key's flight; an inner use of the
/// same key would join that flight and wait for a fill that is waiting for
/// it. The mark lets the inner use see that and step aside. It travels
/// with one request only, so two requests still coalesce as ever.
#[derive(Clone, Default)]
pub(crate) struct Filling(Vec<(Cache, String)>);

impl Filling {
    /// Records that `cache` fills `key` for the request these extensions
    /// belong to.
    pub fn mark(extensions: &mut http::Extensions, cache: &Cache, key: &str) {
        if extensions.get::<Filling>().is_none() {
            extensions.insert(Filling::default());
        }
        let Some(filling) = extensions.get_mut::<Filling>() else {
            return;
        };
        if !filling.holds_key(cache, key) {
            filling.0.push((cache.clone(), key.to_owned()));
        }
    }

    /// Whether a use of `cache` further out on this request fills `key`.
    pub fn holds(extensions: &http::Extensions, cache: &Cache, key: &str) -> bool {
        extensions
            .get::<Filling>()
            .is_some_and(|f| f.holds_key(cache, key))
    }

    fn holds_key(&self, cache: &Cache, key: &str) -> bool {
        self.0
            .iter()
            .any(|(c, k)| Arc::ptr_eq(&c.inner, &cache.inner) && k == key)
    }

    /// Copies the mark, if any, into another request's extensions (an
    /// adapter that hands the engine a copy of the request's parts).
    #[cfg(feature = "axum")]
    pub fn copy(from: &http::Extensions, to: &mut http::Extensions) {
        if let Some(filling) = from.get::<Filling>() {
            to.insert(filling.clone());
        }
    }
}

/// Waits for the leader; a closed channel counts as abandoned.
pub(crate) async fn follow(mut rx: watch::Receiver<Option<Landed>>) -> Landed {
    match rx.wait_for(Option::is_some).await {
        Ok(v) => v.clone().unwrap_or(Landed::Abandoned),
        Err(_) => Landed::Abandoned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_many_followers() {
        let flights = Arc::new(Flights::default());
        let Join::Leader(leader) = flights.join("k", bucket("k")) else {
            panic!("first must lead")
        };
        let Join::Follower(rx) = flights.join("k", bucket("k")) else {
            panic!("second must follow")
        };
        assert!(matches!(flights.join("other", 0), Join::Leader(_)));
        let waiter = tokio::spawn(follow(rx));
        let before = flights.landings(bucket("k"));
        leader.land(Landed::Uncacheable);
        assert_eq!(flights.landings(bucket("k")), before + 1);
        assert!(matches!(waiter.await.unwrap(), Landed::Uncacheable));
        assert_eq!(flights.in_flight(), 0);
    }

    #[test]
    fn a_fill_mark_names_one_cache_and_one_key() {
        let (a, b) = (Cache::builder().build(), Cache::builder().build());
        let mut extensions = http::Extensions::new();
        assert!(!Filling::holds(&extensions, &a, "k"));
        Filling::mark(&mut extensions, &a, "k");
        assert!(Filling::holds(&extensions, &a, "k"));
        assert!(!Filling::holds(&extensions, &a, "other"));
        assert!(
            !Filling::holds(&extensions, &b, "k"),
            "another cache's flights"
        );
        // A second use further in, on another key, adds to the mark.
        Filling::mark(&mut extensions, &a.clone(), "k2");
        assert!(Filling::holds(&extensions, &a, "k") && Filling::holds(&extensions, &a, "k2"));
    }

    #[tokio::test]
    async fn dropped_leader_abandons_and_frees_the_key() {
        let flights = Arc::new(Flights::default());
        let Join::Leader(leader) = flights.join("k", 0) else {
            panic!()
        };
        let Join::Follower(rx) = flights.join("k", 0) else {
            panic!()
        };
        drop(leader);
        assert!(matches!(follow(rx).await, Landed::Abandoned));
        assert!(matches!(flights.join("k", 0), Join::Leader(_)));
    }
}
