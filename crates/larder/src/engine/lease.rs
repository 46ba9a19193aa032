//! Leases: coalescing across instances that share a store.
//!
//! In-process coalescing elects one leader per key in each instance; the
//! leader then asks the store for the key's lease. The instance that gets
//! it fills the key; the others poll the store for the entry until it
//! lands, the lease frees up (its holder ended it or died and it expired:
//! one of them takes it and fills), or they have waited long enough.
//!
//! A leader whose response was uncacheable ends its lease with a marker
//! that stays for the hit-for-miss time: instances that find it fetch in
//! parallel instead of queuing behind each other.
//!
//! Every value larder writes under a lease key starts with
//! [`LEASE_MARK`](crate::store::LEASE_MARK); anything else found there is
//! not a lease, must not make misses wait, and is replaced.

use std::time::Duration;

use bytes::Bytes;

use super::Cache;
use crate::store::{is_lease_value, Lease};

/// What a lease ended by an uncacheable fill holds while hit-for-miss lasts
/// (it starts with the lease mark, as every lease value does).
pub(crate) const UNCACHEABLE: &[u8] = b"larder:uncacheable";

/// The first and the longest wait between two looks at the store while
/// another instance fills a key.
pub(crate) const POLL_FIRST: Duration = Duration::from_millis(5);
pub(crate) const POLL_MAX: Duration = Duration::from_millis(100);

/// What asking for a key's lease gave.
pub(crate) enum Claim {
    /// This request fills the key; the guard ends the lease.
    Granted(LeaseGuard),
    /// Another instance is filling it.
    Held,
    /// The key's last fill was uncacheable: fetch without waiting.
    Uncacheable,
    /// No lease (the store has none, or failed): coalesce in-process only.
    Off,
}

/// The store key of a flight's lease: beside the entry, in its hash slot.
pub(crate) fn lease_key(flight_key: &str) -> String {
    format!("{flight_key}:lease")
}

impl Cache {
    /// Asks the store for the lease on `flight_key`.
    pub(crate) async fn claim(&self, flight_key: &str) -> Claim {
        let key = lease_key(flight_key);
        let holder = Bytes::from(format!("larder:lease:{:016x}", super::fill::new_nonce()));
        let store = &self.inner.store;
        let lease_ttl = self.inner.lease_ttl;
        let mut answer = store.lease(&key, holder.clone(), lease_ttl).await;
        if let Ok(Lease::Held(value)) = &answer {
            if !is_lease_value(value) {
                // A store that does not check what holds the key: end the
                // stray value (compare and delete) and ask once more.
                self.repaired(&key, "a lease key held a value that is not a lease");
                if let Err(e) = store.end_lease(&key, value.clone(), None).await {
                    self.store_error("end_lease", e);
                }
                answer = store.lease(&key, holder.clone(), lease_ttl).await;
            }
        }
        match answer {
            Ok(Lease::Repaired) => {
                self.repaired(&key, "a lease key held a value that is not a live lease");
                Claim::Granted(LeaseGuard::new(self, key, holder))
            }
            Ok(Lease::Granted) => Claim::Granted(LeaseGuard::new(self, key, holder)),
            Ok(Lease::Held(value)) if value.as_ref() == UNCACHEABLE => Claim::Uncacheable,
            Ok(Lease::Held(value)) if is_lease_value(&value) => Claim::Held,
            // Still not a lease: never wait on it.
            Ok(_) => Claim::Off,
            Err(e) => {
                self.store_error("lease", e);
                Claim::Off
            }
        }
    }
}

/// A held lease. A guard dropped without being ended (the fill was
/// abandoned) ends the lease in the background, so that another instance
/// takes over at once rather than when the lease expires.
pub(crate) struct LeaseGuard {
    cache: Cache,
    key: String,
    holder: Bytes,
    ended: bool,
}

impl LeaseGuard {
    fn new(cache: &Cache, key: String, holder: Bytes) -> Self {
        LeaseGuard {
            cache: cache.clone(),
            key,
            holder,
            ended: false,
        }
    }

    /// The entry landed (or the fill was answered otherwise): free the key.
    /// Awaited, so that this instance's next request for the key finds it
    /// free.
    pub async fn release(mut self) {
        self.ended = true;
        self.end(None).await;
    }

    /// The response was uncacheable: mark the key so that other instances
    /// fetch in parallel for the hit-for-miss time.
    pub async fn uncacheable(mut self) {
        self.ended = true;
        let hfm = self.cache.inner.hit_for_miss;
        let then = (!hfm.is_zero()).then(|| (Bytes::from_static(UNCACHEABLE), hfm));
        self.end(then).await;
    }

    /// Ends the lease from code that cannot wait: in a spawned task.
    pub fn release_in_background(mut self) {
        self.ended = true;
        self.spawn_end();
    }

    async fn end(&self, then: Option<(Bytes, Duration)>) {
        let store = &self.cache.inner.store;
        if let Err(e) = store.end_lease(&self.key, self.holder.clone(), then).await {
            self.cache.store_error("end_lease", e);
        }
    }

    fn spawn_end(&mut self) {
        // Outside a runtime nothing can run it: the lease will expire.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = self.cache.clone();
        let key = std::mem::take(&mut self.key);
        let holder = self.holder.clone();
        runtime.spawn(async move {
            if let Err(e) = cache.inner.store.end_lease(&key, holder, None).await {
                cache.store_error("end_lease", e);
            }
        });
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.spawn_end();
        }
    }
}
