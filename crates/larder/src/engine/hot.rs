//! The hot tier: ready-to-send copies of the entries being read, in front
//! of every store.
//!
//! A hit from the store decodes the entry, builds its key as strings and
//! awaits a boxed future; a hit from here does none of that. The request's
//! key pieces are hashed in place into a 128-bit key; the map holds, per
//! URI, the decoded entries of the variants read lately, behind `Arc`s:
//! headers ready to clone, the body `Bytes` shared with what the store
//! returned, the freshness numbers. Only `Age`, `Cache-Status` and what
//! conditionals need are computed per hit.
//!
//! Only reads make copies: an entry is copied here when a store read finds
//! it fresh, so the tier holds what is being hit, bounded in bytes, and a
//! write never fills it with what nobody asks for.
//!
//! # Coherence
//!
//! A copy is only served while the store's key has not changed since it
//! was read. Store keys hash to one of [`BUCKETS`] change counters; a copy
//! records its keys' counters *before* the read that made it, and is
//! served only while they are unchanged. A counter moves when this
//! instance writes or deletes the key (after the store answered), and when
//! the store reports that another client did ([`Watcher`]: the memory
//! store for its clones, Redis through client tracking). A report that
//! lands while a read is in flight therefore retires the copy that read
//! makes, rather than being lost before it.
//!
//! When the store cannot report changes (it does not watch, or its
//! reporting broke) copies live at most `l1_ttl`, and when reporting
//! breaks the epoch moves: every copy made before is retired at once.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use http::header::{self, HeaderValue};
use http::HeaderMap;
use quick_cache::sync::Cache as Map;
use quick_cache::Weighter;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64, Xxh3};

use super::namespaces::Namespaces;
use crate::entry::Entry;
use crate::policy::key;
use crate::store::Watcher;

/// How many change counters store keys share. A change of one key retires
/// the copies of the keys sharing its counter too (one in 65,536): a store
/// read, not an error.
pub(crate) const BUCKETS: usize = 1 << 16;

/// How many variants of one URI are kept; the oldest goes first.
const MAX_VARIANTS: usize = 8;

/// What a copy weighs beside its header and body bytes: the `Arc`s, the
/// map's slot, the `HeaderMap`'s tables.
const COPY_OVERHEAD: u64 = 256;

/// The hot tier of one [`Cache`](crate::Cache).
pub(crate) struct Hot {
    map: Map<u128, Slot, SlotWeight, IdentityBuild>,
    pub coherence: Arc<Coherence>,
    /// Engine-clock milliseconds a copy made while the store does not
    /// report changes is served for.
    l1_ttl_ms: u64,
    /// Tells this tier's slots from another's among a thread's [`Near`]
    /// ones (a process may have several caches).
    id: u64,
    /// Moves after every change of the map (an insert and the evictions it
    /// makes, a retain, a clear): while it has not moved since a thread
    /// took a slot from the map, the map still holds that slot.
    changes: AtomicU64,
}

/// The copies of one URI's variants (usually one).
pub(crate) type Slot = Arc<[Arc<Copy>]>;

/// How many slots each thread keeps near, of whichever tiers it hit last.
const NEAR: usize = 4;

/// A slot whose bodies weigh more is not kept near: what threads hold
/// beside the tier's bound stays within `NEAR` × this per thread. Past
/// this size the body's write costs far more than the map read saved.
const NEAR_MAX_BODY: usize = 64 << 10;

/// A body up to this size is copied into the [`Own`] bytes of each thread
/// that serves it from near (at most `NEAR` × this per thread); a larger
/// one is shared, as its write costs far more than the count it moves.
pub(crate) const OWN_MAX_BODY: usize = 16 << 10;

/// A slot a thread hit lately, and the header map it last stamped for one
/// of its copies: a hit from it takes no lock and moves no reference
/// count of the tier's (each of those is an atomic read-modify-write,
/// ~8 ns, as much as the rest of the lookup).
struct Near {
    hot: u64,
    /// [`Hot::changes`] as it was before the slot was read from the map.
    changes: u64,
    hash: u128,
    slot: Slot,
    /// Which copy of the slot `own` is for.
    stamped: usize,
    own: Own,
}

/// What a thread keeps of its own for the copy it serves from a [`Near`]
/// slot: the stamped header map and the body, in bytes of its own. A clone
/// of a value shared with other cores moves a reference count they move
/// too, and its cache line then travels between the cores on every hit.
#[derive(Default)]
pub(crate) struct Own {
    pub stamps: Option<Stamps>,
    pub body: Option<bytes::Bytes>,
}

struct Nearby {
    slots: [Option<Near>; NEAR],
    next: usize,
}

thread_local! {
    static NEARBY: RefCell<Nearby> = const {
        RefCell::new(Nearby {
            slots: [const { None }; NEAR],
            next: 0,
        })
    };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A ready-to-send copy of a stored entry.
pub(crate) struct Copy {
    pub entry: Entry,
    /// The [`HotKey`] material of the request that made it.
    material: Box<[u8]>,
    /// The entry's response time after the epoch, so that a hit's age is
    /// one subtraction from the time it already took (`None`: before it).
    pub received: Option<std::time::Duration>,
    /// The entry's header fields as a hit sends them: with a slot each for
    /// `Age` and `Cache-Status` (and `Cache-Control` where the route adds
    /// one), so that filling them in never grows the map.
    pub prepared: HeaderMap,
    /// `Cache-Status` lines caches nearer the origin sent, joined: ours is
    /// appended to them.
    pub upstream_status: Option<HeaderValue>,
    /// Whether `prepared` holds a `Cache-Control` slot the entry did not
    /// have (for a route that sends the remaining lifetime).
    pub control_slot: bool,
    /// The whole header map the hits of the last second served, for the
    /// route form they were made for: within that second a hit clones it.
    pub stamps: RwLock<Option<Stamps>>,
    /// The change counters of the store keys it was read from, as they
    /// were before the read: the primary key's and, for a variant, the
    /// variant's.
    seen: [(u32, u64); 2],
    epoch: u64,
    /// Engine-clock milliseconds after which it is not served; `u64::MAX`
    /// while the store reports changes.
    until_ms: u64,
    weight: u64,
}

/// A hit's header fields for one whole second of age and one form of the
/// route's `Cache-Control` toward clients: `prepared` with `Age`,
/// `Cache-Status` and `Cache-Control` filled in.
pub(crate) struct Stamps {
    pub age_secs: u64,
    pub control: ControlForm,
    pub headers: HeaderMap,
}

/// Which [`ClientCacheControl`](crate::policy::ClientCacheControl) a
/// [`Stamps`] was made for: two routes on one URI may differ in it.
#[derive(PartialEq)]
pub(crate) enum ControlForm {
    RemainingTtl,
    Fixed(HeaderValue),
    Untouched,
}

impl ControlForm {
    pub fn of(control: &crate::policy::ClientCacheControl) -> Self {
        use crate::policy::ClientCacheControl as C;
        match control {
            C::RemainingTtl => ControlForm::RemainingTtl,
            C::Fixed(value) => ControlForm::Fixed(value.clone()),
            C::Untouched => ControlForm::Untouched,
        }
    }

    /// Whether it is `control`'s form, without cloning anything.
    pub fn is(&self, control: &crate::policy::ClientCacheControl) -> bool {
        use crate::policy::ClientCacheControl as C;
        match (self, control) {
            (ControlForm::RemainingTtl, C::RemainingTtl) => true,
            (ControlForm::Fixed(held), C::Fixed(value)) => held == value,
            (ControlForm::Untouched, C::Untouched) => true,
            _ => false,
        }
    }
}

/// What a read saw before it went to the store: see [`Hot::before_read`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    keys: [(u32, u64); 2],
    epoch: u64,
    watched: bool,
}

impl Seen {
    /// Adds the variant key the read goes on to fetch.
    pub fn and(mut self, hot: &Hot, store_key: &str) -> Self {
        self.keys[1] = hot.coherence.seen(store_key);
        self
    }
}

/// The change counters, the epoch, and whether the store reports changes
/// now. Held by the store (weakly) as its [`Watcher`].
pub(crate) struct Coherence {
    buckets: Box<[AtomicU64]>,
    epoch: AtomicU64,
    watched: AtomicBool,
    /// Reports seen, for stats and for tests that wait on one.
    reports: AtomicU64,
    /// `<prefix>:ns:`, the start of every namespace generation key.
    generation_prefix: Vec<u8>,
    namespaces: Arc<Namespaces>,
    /// Set when reporting broke: the map is cleared by the next request
    /// that looks (the watcher runs on the store's task and must not wait).
    flush: AtomicBool,
}

impl Coherence {
    pub fn new(prefix: &str, namespaces: Arc<Namespaces>) -> Self {
        Coherence {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            watched: AtomicBool::new(false),
            reports: AtomicU64::new(0),
            generation_prefix: format!("{prefix}:ns:").into_bytes(),
            namespaces,
            flush: AtomicBool::new(false),
        }
    }

    fn bucket(key: &[u8]) -> usize {
        (xxh3_64(key) as usize) & (BUCKETS - 1)
    }

    fn seen(&self, store_key: &str) -> (u32, u64) {
        let b = Self::bucket(store_key.as_bytes());
        (b as u32, self.buckets[b].load(Ordering::Acquire))
    }

    /// Retires every copy read from `key` before now.
    pub fn bump(&self, key: &[u8]) {
        self.buckets[Self::bucket(key)].fetch_add(1, Ordering::AcqRel);
    }

    pub fn is_watched(&self) -> bool {
        self.watched.load(Ordering::Acquire)
    }

    pub fn reports(&self) -> u64 {
        self.reports.load(Ordering::Acquire)
    }

    fn current(&self, seen: &[(u32, u64); 2]) -> bool {
        seen.iter()
            .all(|&(b, n)| b == u32::MAX || self.buckets[b as usize].load(Ordering::Acquire) == n)
    }
}

impl Watcher for Coherence {
    fn changed(&self, key: &[u8]) {
        self.bump(key);
        if key.starts_with(&self.generation_prefix) && key.ends_with(b":gen") {
            // A namespace was purged elsewhere: read its generation again
            // before the next request uses it.
            self.namespaces.forget_all();
        }
        self.reports.fetch_add(1, Ordering::AcqRel);
    }

    fn lost(&self) {
        self.watched.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.flush.store(true, Ordering::Release);
        // Read again beside the requests: the store may be down.
        self.namespaces.refresh_all();
        self.reports.fetch_add(1, Ordering::AcqRel);
    }

    fn restored(&self) {
        // Copies made while changes went unreported go too.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.namespaces.refresh_all();
        self.watched.store(true, Ordering::Release);
        self.reports.fetch_add(1, Ordering::AcqRel);
    }
}

impl Hot {
    pub fn new(max_bytes: u64, l1_ttl_ms: u64, coherence: Arc<Coherence>) -> Self {
        // About 4 KiB a copy; quick_cache only sizes its tables with it.
        let estimated = usize::try_from(max_bytes / 4096).unwrap_or(1 << 20).max(16);
        Hot {
            map: Map::with(
                estimated,
                max_bytes.max(1),
                SlotWeight,
                IdentityBuild,
                Default::default(),
            ),
            coherence,
            l1_ttl_ms,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            changes: AtomicU64::new(0),
        }
    }

    /// What a read of `store_key` must record before it goes to the store.
    pub fn before_read(&self, store_key: &str) -> Seen {
        let c = &self.coherence;
        let epoch = c.epoch.load(Ordering::Acquire);
        let watched = c.is_watched();
        Seen {
            keys: [c.seen(store_key), (u32::MAX, 0)],
            epoch,
            watched,
        }
    }

    /// Serves the copy of the request's variant, if one is held and still
    /// current (same key material, same Vary values, nothing changed):
    /// `serve` gets it and this thread's stamped header map of it, if it
    /// keeps one (see [`Near`]).
    pub fn with<R>(
        &self,
        key: &HotKey,
        request: &HeaderMap,
        now_ms: u64,
        serve: impl FnOnce(&Copy, Option<&mut Own>) -> Option<R>,
    ) -> Option<R> {
        self.flush_if_lost();
        // Before the map is read: a change made after this moves it, so a
        // slot kept near from this read is never taken for a later one.
        let changes = self.changes.load(Ordering::Acquire);
        let mut serve = Some(serve);
        // `None`: this thread's slots could not be used (a hit inside a
        // hit, or the thread going away), and the map is read instead.
        let near = NEARBY.try_with(|nearby| -> Option<Option<R>> {
            let mut nearby = nearby.try_borrow_mut().ok()?;
            let held = nearby.slots.iter().position(|n| {
                n.as_ref()
                    .is_some_and(|n| n.hot == self.id && n.hash == key.hash)
            });
            let current = held
                .and_then(|i| nearby.slots[i].as_ref())
                .is_some_and(|n| n.changes == changes);
            let i = match held {
                Some(i) if current => i,
                _ => {
                    let Some(slot) = self.map.get(&key.hash) else {
                        return Some(None);
                    };
                    // The map moved (another key came or went) but still
                    // holds this very slot: what the thread made of it stays,
                    // so that a busy map costs a hit a map read, not a new
                    // stamped map and body copy.
                    if let Some(near) = held
                        .and_then(|i| nearby.slots[i].as_mut())
                        .filter(|n| Arc::ptr_eq(&n.slot, &slot))
                    {
                        near.changes = changes;
                    }
                    match held {
                        Some(i)
                            if nearby.slots[i]
                                .as_ref()
                                .is_some_and(|n| n.changes == changes) =>
                        {
                            i
                        }
                        _ => {
                            let body: usize = slot.iter().map(|c| c.entry.body.len()).sum();
                            if body > NEAR_MAX_BODY {
                                let at = self.pick(&slot, key, request, now_ms);
                                return Some(at.and_then(|at| serve.take()?(&slot[at], None)));
                            }
                            // A slot replaced in the map replaces its old one here.
                            let i = held.unwrap_or_else(|| {
                                let i = nearby.next;
                                nearby.next = (i + 1) % NEAR;
                                i
                            });
                            nearby.slots[i] = Some(Near {
                                hot: self.id,
                                changes,
                                hash: key.hash,
                                slot,
                                stamped: 0,
                                own: Own::default(),
                            });
                            i
                        }
                    }
                }
            };
            let near = nearby.slots[i].as_mut()?;
            let Some(at) = self.pick(&near.slot, key, request, now_ms) else {
                return Some(None);
            };
            if near.stamped != at {
                near.stamped = at;
                near.own = Own::default();
            }
            Some(serve.take()?(&near.slot[at], Some(&mut near.own)))
        });
        if let Ok(Some(served)) = near {
            return served;
        }
        let serve = serve.take()?;
        let slot = self.map.get(&key.hash)?;
        let at = self.pick(&slot, key, request, now_ms)?;
        serve(&slot[at], None)
    }

    /// Which of a slot's copies the request may have.
    fn pick(&self, slot: &Slot, key: &HotKey, request: &HeaderMap, now_ms: u64) -> Option<usize> {
        let epoch = self.coherence.epoch.load(Ordering::Acquire);
        slot.iter().position(|c| {
            c.epoch == epoch
                && now_ms < c.until_ms
                && self.coherence.current(&c.seen)
                && *c.material == *key.material()
                && key::vary_matches(&c.entry.vary, request)
        })
    }

    /// Keeps a copy of `entry`, read as `seen` says; `control_slot`: the
    /// route sends a `Cache-Control` the entry may not have.
    pub fn keep(&self, key: &HotKey, entry: &Entry, seen: Seen, now_ms: u64, control_slot: bool) {
        self.flush_if_lost();
        // Changed while it was read, or reporting broke: not worth a copy.
        if seen.epoch != self.coherence.epoch.load(Ordering::Acquire)
            || !self.coherence.current(&seen.keys)
        {
            return;
        }
        let until_ms = if seen.watched {
            u64::MAX
        } else {
            now_ms.saturating_add(self.l1_ttl_ms)
        };
        let (prepared, upstream_status, control_slot) = prepare(entry, control_slot);
        let material: Box<[u8]> = key.material().into();
        let copy = Arc::new(Copy {
            weight: weigh(entry) * 2 - entry.body.len() as u64 + material.len() as u64,
            material,
            received: entry
                .response_time
                .duration_since(std::time::UNIX_EPOCH)
                .ok(),
            entry: entry.clone(),
            prepared,
            upstream_status,
            control_slot,
            stamps: RwLock::new(None),
            seen: seen.keys,
            epoch: seen.epoch,
            until_ms,
        });
        let mut copies: Vec<Arc<Copy>> = Vec::with_capacity(2);
        copies.push(copy);
        if let Some(slot) = self.map.peek(&key.hash) {
            // Other variants of the URI stay beside it, newest first.
            let same = |c: &Arc<Copy>| c.entry.vary == entry.vary;
            copies.extend(
                slot.iter()
                    .filter(|c| !same(c) && c.epoch == seen.epoch)
                    .take(MAX_VARIANTS - 1)
                    .cloned(),
            );
        }
        self.map.insert(key.hash, copies.into());
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// Drops the copies of every entry tagged `tag` (after a tag purge,
    /// whose deleted keys this instance is not told of one by one).
    pub fn forget_tag(&self, tag: &str) {
        self.map
            .retain(|_, slot| !slot.iter().any(|c| c.entry.tags.iter().any(|t| t == tag)));
        self.changes.fetch_add(1, Ordering::Release);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn bytes(&self) -> u64 {
        self.map.weight()
    }

    fn flush_if_lost(&self) {
        if self.coherence.flush.load(Ordering::Acquire)
            && self.coherence.flush.swap(false, Ordering::AcqRel)
        {
            self.map.clear();
            self.changes.fetch_add(1, Ordering::Release);
        }
    }
}

/// A request's hot-tier key: the request's own key fields as it sent them
/// (the `Host` line and URI authority unparsed), joined once into a stack
/// buffer (most fit), hashed with the namespace's generation, and compared
/// with a copy's own in one `memcmp`.
///
/// Unparsed, because a copy is only made by a request the long way
/// checked: whether a `Host` is valid and allowed depends on these bytes
/// (and the scheme) alone, so a request with the same bytes gets the same
/// answer, and the hot path need not check again. `Example.COM` and
/// `example.com` are one entry in the store but two copies here.
pub(crate) struct HotKey {
    buf: Material,
    pub hash: u128,
}

/// How many bytes of a [`HotKey`] (its material and the generation) are
/// kept on the stack; a length fits in the `u8` beside them.
const STACK: usize = 248;

/// Where a [`HotKey`]'s bytes are: on the stack, or (longer) on the heap.
// Built on the stack per hit and never stored: the size is the point.
#[allow(clippy::large_enum_variant)]
enum Material {
    Stack([u8; STACK], u8),
    Heap(Vec<u8>),
}

impl Material {
    fn bytes(&self) -> &[u8] {
        match self {
            Material::Stack(buf, len) => &buf[..usize::from(*len)],
            Material::Heap(v) => v,
        }
    }
}

/// What a request's hot-tier key is made of.
pub(crate) struct HotPieces<'a> {
    pub namespace: &'a str,
    pub class: &'a str,
    pub scheme: &'a str,
    /// The URI's authority (absolute-form, HTTP/2's `:authority`), or empty.
    pub authority: &'a str,
    /// The one `Host` line, if there is one.
    pub host: Option<&'a [u8]>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub extra: Option<&'a str>,
}

impl<'a> HotPieces<'a> {
    /// The pieces of `parts`, whose one `Host` line (if any) is `host`
    /// (with more than one, the long way refuses the request: no key).
    pub fn of(
        parts: &'a http::request::Parts,
        host: Option<&'a [u8]>,
        namespace: &'a str,
        class: &'a str,
        extra: Option<&'a str>,
    ) -> Self {
        HotPieces {
            namespace,
            class,
            scheme: key::scheme(&parts.uri),
            authority: parts.uri.authority().map_or("", |a| a.as_str()),
            host,
            path: parts.uri.path(),
            query: parts.uri.query(),
            extra,
        }
    }

    fn len(&self) -> usize {
        // Each piece and its separator byte (the Host line's is a flag).
        self.namespace.len()
            + self.class.len()
            + self.scheme.len()
            + self.authority.len()
            + self.host.map_or(0, <[u8]>::len)
            + self.path.len()
            + self.query.map_or(0, |q| q.len() + 1)
            + self.extra.map_or(0, |e| e.len() + 1)
            + 6
    }

    /// Writes the material into `out`, exactly [`len`](Self::len) bytes.
    /// No piece but the first and the last can hold a line break (URIs and
    /// field values cannot), so different pieces never join the same.
    fn write(&self, out: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(self.namespace.as_bytes());
        put(b"\n");
        put(self.class.as_bytes());
        put(b"\n");
        put(self.scheme.as_bytes());
        put(b"\n");
        put(self.authority.as_bytes());
        match self.host {
            Some(host) => {
                put(b"\nH");
                put(host);
            }
            None => put(b"\n-"),
        }
        put(b"\n");
        put(self.path.as_bytes());
        if let Some(q) = self.query {
            put(b"?");
            put(q.as_bytes());
        }
        if let Some(extra) = self.extra {
            put(b"\n");
            put(extra.as_bytes());
        }
    }
}

impl HotKey {
    pub fn new(pieces: &HotPieces<'_>, generation: u64) -> Self {
        let len = pieces.len();
        let generation = generation.to_le_bytes();
        // The generation follows the material in the hashed bytes: it is
        // hashed, not compared (a copy of another generation has another
        // hash). One-shot xxh3 costs a fraction of its streaming state.
        if len + 8 <= STACK {
            let mut buf = [0u8; STACK];
            pieces.write(&mut buf[..len]);
            buf[len..len + 8].copy_from_slice(&generation);
            let hash = xxh3_128(&buf[..len + 8]);
            return HotKey {
                buf: Material::Stack(buf, len as u8),
                hash,
            };
        }
        let mut heap = vec![0u8; len];
        pieces.write(&mut heap);
        let mut h = Xxh3::new();
        h.update(&heap);
        h.update(&generation);
        HotKey {
            buf: Material::Heap(heap),
            hash: h.digest128(),
        }
    }

    /// The bytes a copy made under this key keeps, to be told apart from
    /// a key whose hash collides.
    pub fn material(&self) -> &[u8] {
        self.buf.bytes()
    }
}

/// The headers a hit sends, with the slots it fills in.
fn prepare(entry: &Entry, control: bool) -> (HeaderMap, Option<HeaderValue>, bool) {
    let mut prepared = HeaderMap::with_capacity(entry.headers.len() + 3);
    let mut upstream: Vec<u8> = Vec::new();
    let mut status_lines = 0;
    for (name, value) in &entry.headers {
        if name == super::respond::CACHE_STATUS {
            if status_lines > 0 {
                upstream.extend_from_slice(b", ");
            }
            upstream.extend_from_slice(value.as_bytes());
            status_lines += 1;
            continue;
        }
        prepared.append(name.clone(), value.clone());
    }
    let upstream = (status_lines > 0)
        .then(|| HeaderValue::from_bytes(&upstream).ok())
        .flatten();
    let control_slot = control && !prepared.contains_key(header::CACHE_CONTROL);
    if control_slot {
        prepared.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=0"));
    }
    prepared.insert(header::AGE, HeaderValue::from_static("0"));
    prepared.insert(
        super::respond::CACHE_STATUS,
        HeaderValue::from_static("larder"),
    );
    (prepared, upstream, control_slot)
}

/// What a copy costs: its header and body bytes, its material and tags,
/// and the structures around them.
fn weigh(entry: &Entry) -> u64 {
    let headers: usize = entry
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 32)
        .sum();
    let tags: usize = entry.tags.iter().map(|t| t.len() + 24).sum();
    let vary: usize = entry
        .vary
        .iter()
        .map(|(n, v)| n.as_str().len() + v.as_ref().map_or(0, |v| v.len()) + 48)
        .sum();
    (headers + tags + vary + entry.body.len() + entry.material.len()) as u64 + COPY_OVERHEAD
}

#[derive(Clone)]
struct SlotWeight;

impl Weighter<u128, Slot> for SlotWeight {
    fn weight(&self, _key: &u128, slot: &Slot) -> u64 {
        slot.iter().map(|c| c.weight).sum::<u64>().max(1)
    }
}

/// The keys are xxh3 hashes already: use their low bits as they are.
#[derive(Clone, Default)]
struct IdentityBuild;

impl std::hash::BuildHasher for IdentityBuild {
    type Hasher = Identity;
    fn build_hasher(&self) -> Identity {
        Identity(0)
    }
}

struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed: fold whatever comes.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = (n as u64) ^ ((n >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The body `hot` serves for `key`, the way a hit looks it up.
    fn served(hot: &Hot, key: &HotKey, request: &HeaderMap, now_ms: u64) -> Option<bytes::Bytes> {
        hot.with(key, request, now_ms, |copy, _| {
            Some(copy.entry.body.clone())
        })
    }

    /// Whether this thread keeps `key`'s slot of `hot` near.
    fn kept_near(hot: &Hot, key: &HotKey) -> bool {
        NEARBY.with(|n| {
            n.borrow()
                .slots
                .iter()
                .flatten()
                .any(|n| n.hot == hot.id && n.hash == key.hash)
        })
    }

    fn entry_with_body(material: &str, body: &'static [u8]) -> Entry {
        Entry {
            body: bytes::Bytes::from_static(body),
            ..entry(material, &[])
        }
    }

    fn entry(material: &str, tags: &[&str]) -> Entry {
        Entry {
            material: material.into(),
            variant_nonce: 0,
            vary: vec![],
            status: http::StatusCode::OK,
            headers: HeaderMap::new(),
            body: bytes::Bytes::from_static(b"body"),
            response_time: UNIX_EPOCH,
            initial_age: Duration::ZERO,
            lifetime: Duration::from_secs(60),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            forbids_stale: false,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn pieces(path: &str) -> HotPieces<'_> {
        HotPieces {
            namespace: "default",
            class: "GET",
            scheme: "http",
            authority: "",
            host: Some(b"example.com"),
            path,
            query: None,
            extra: None,
        }
    }

    fn material(p: &HotPieces<'_>) -> String {
        String::from_utf8(HotKey::new(p, 0).material().to_vec()).unwrap()
    }

    fn hot() -> Hot {
        let coherence = Arc::new(Coherence::new("larder", Arc::default()));
        coherence.restored();
        Hot::new(1 << 20, 1_000, coherence)
    }

    #[test]
    fn a_copy_is_served_until_its_key_changes() {
        let hot = hot();
        let p = pieces("/a");
        let key = HotKey::new(&p, 0);
        let seen = hot.before_read("larder:default:0:{a}");
        hot.keep(&key, &entry(&material(&p), &[]), seen, 0, false);
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 0).is_some());
        hot.coherence.changed(b"larder:default:0:{a}");
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 0).is_none());
    }

    #[test]
    fn a_change_reported_while_the_read_was_in_flight_retires_its_copy() {
        let hot = hot();
        let p = pieces("/a");
        let key = HotKey::new(&p, 0);
        let seen = hot.before_read("larder:default:0:{a}");
        // The read returns the old value after another client changed it.
        hot.coherence.changed(b"larder:default:0:{a}");
        hot.keep(&key, &entry(&material(&p), &[]), seen, 0, false);
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 0).is_none());
    }

    #[test]
    fn a_variant_copy_depends_on_its_index_too() {
        let hot = hot();
        let p = pieces("/a");
        let key = HotKey::new(&p, 0);
        let seen = hot
            .before_read("larder:default:0:{a}")
            .and(&hot, "larder:default:0:{a}:v1");
        hot.keep(&key, &entry(&material(&p), &[]), seen, 0, false);
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 0).is_some());
        hot.coherence.changed(b"larder:default:0:{a}:v1");
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 0).is_none());
    }

    #[test]
    fn losing_reports_retires_every_copy_and_bounds_new_ones_by_l1_ttl() {
        let hot = hot();
        let p = pieces("/a");
        let key = HotKey::new(&p, 0);
        let seen = hot.before_read("larder:default:0:{a}");
        hot.keep(&key, &entry(&material(&p), &[]), seen, 0, false);
        hot.coherence.lost();
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 0).is_none());
        // Copied while lost: served for l1_ttl (1 s here), no longer.
        let seen = hot.before_read("larder:default:0:{a}");
        hot.keep(&key, &entry(&material(&p), &[]), seen, 5_000, false);
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 5_999).is_some());
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 6_000).is_none());
        // And retired when reports come back, since changes were missed.
        hot.keep(&key, &entry(&material(&p), &[]), seen, 5_000, false);
        hot.coherence.restored();
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 5_001).is_none());
    }

    #[test]
    fn a_copy_is_only_served_for_its_own_material() {
        let hot = hot();
        let p = pieces("/a");
        let other = pieces("/b");
        let seen = hot.before_read("larder:default:0:{a}");
        // As if another URI's hash collided with this one's.
        let colliding = HotKey {
            hash: HotKey::new(&p, 0).hash,
            ..HotKey::new(&other, 0)
        };
        hot.keep(&colliding, &entry(&material(&other), &[]), seen, 0, false);
        assert!(served(&hot, &HotKey::new(&p, 0), &HeaderMap::new(), 0).is_none());
    }

    #[test]
    fn the_generation_is_in_the_key() {
        let p = pieces("/a");
        assert_ne!(HotKey::new(&p, 0).hash, HotKey::new(&p, 1).hash);
        assert_ne!(HotKey::new(&p, 0).hash, HotKey::new(&pieces("/b"), 0).hash);
    }

    #[test]
    fn forgetting_a_tag_drops_only_its_copies() {
        let hot = hot();
        let (a, b) = (pieces("/a"), pieces("/b"));
        let seen = hot.before_read("k");
        hot.keep(
            &HotKey::new(&a, 0),
            &entry(&material(&a), &["t"]),
            seen,
            0,
            false,
        );
        hot.keep(
            &HotKey::new(&b, 0),
            &entry(&material(&b), &["u"]),
            seen,
            0,
            false,
        );
        // Served once first, so that this thread keeps it near.
        assert!(served(&hot, &HotKey::new(&a, 0), &HeaderMap::new(), 0).is_some());
        assert!(kept_near(&hot, &HotKey::new(&a, 0)));
        hot.forget_tag("t");
        assert!(served(&hot, &HotKey::new(&a, 0), &HeaderMap::new(), 0).is_none());
        assert!(served(&hot, &HotKey::new(&b, 0), &HeaderMap::new(), 0).is_some());
    }

    #[test]
    fn the_tier_stays_within_its_bytes() {
        let coherence = Arc::new(Coherence::new("larder", Arc::default()));
        coherence.restored();
        let hot = Hot::new(64 << 10, 1_000, coherence);
        let paths: Vec<String> = (0..1_000).map(|i| format!("/{i}")).collect();
        for path in &paths {
            let p = pieces(path);
            let seen = hot.before_read(path);
            hot.keep(
                &HotKey::new(&p, 0),
                &entry(&material(&p), &[]),
                seen,
                0,
                false,
            );
        }
        assert!(hot.bytes() <= 64 << 10, "{} bytes", hot.bytes());
        assert!(hot.len() < 1_000);
    }

    #[test]
    fn a_copy_kept_near_gives_way_to_the_one_that_replaced_it() {
        let hot = hot();
        let p = pieces("/a");
        let key = HotKey::new(&p, 0);
        let seen = hot.before_read("larder:default:0:{a}");
        hot.keep(
            &key,
            &entry_with_body(&material(&p), b"old"),
            seen,
            0,
            false,
        );
        assert_eq!(
            served(&hot, &key, &HeaderMap::new(), 0).as_deref(),
            Some(&b"old"[..])
        );
        assert!(kept_near(&hot, &key));
        // Read again (say after the entry expired in the copy's eyes) and
        // kept anew, without any change the coherence counters see.
        let seen = hot.before_read("larder:default:0:{a}");
        hot.keep(
            &key,
            &entry_with_body(&material(&p), b"new"),
            seen,
            0,
            false,
        );
        assert_eq!(
            served(&hot, &key, &HeaderMap::new(), 0).as_deref(),
            Some(&b"new"[..])
        );
    }

    #[test]
    fn a_copy_kept_near_is_not_served_once_the_map_evicted_it() {
        let coherence = Arc::new(Coherence::new("larder", Arc::default()));
        coherence.restored();
        let hot = Hot::new(16 << 10, 1_000, coherence);
        let p = pieces("/a");
        let key = HotKey::new(&p, 0);
        let seen = hot.before_read("larder:default:0:{a}");
        hot.keep(&key, &entry(&material(&p), &[]), seen, 0, false);
        assert!(served(&hot, &key, &HeaderMap::new(), 0).is_some());
        assert!(kept_near(&hot, &key));
        // Keys that are hit as well: S3-FIFO lets a flood of keys read
        // once pass without evicting one that was hit.
        let paths: Vec<String> = (0..2_000).map(|i| format!("/{i}")).collect();
        for path in &paths {
            let p = pieces(path);
            let other = HotKey::new(&p, 0);
            let seen = hot.before_read(path);
            hot.keep(&other, &entry(&material(&p), &[]), seen, 0, false);
            hot.map.get(&other.hash);
            hot.map.get(&other.hash);
            if hot.map.peek(&key.hash).is_none() {
                break;
            }
        }
        assert!(
            hot.map.peek(&key.hash).is_none(),
            "never evicted: the test proves nothing"
        );
        assert!(served(&hot, &key, &HeaderMap::new(), 0).is_none());
    }

    #[test]
    fn slots_kept_near_are_per_tier() {
        let (one, two) = (hot(), hot());
        let p = pieces("/a");
        let key = HotKey::new(&p, 0);
        let seen = one.before_read("larder:default:0:{a}");
        one.keep(&key, &entry(&material(&p), &[]), seen, 0, false);
        assert!(served(&one, &key, &HeaderMap::new(), 0).is_some());
        // Same key, same change count (none yet), another tier: nothing.
        assert_eq!(one.changes.load(Ordering::Acquire), 1);
        let seen = two.before_read("larder:default:0:{b}");
        two.keep(
            &HotKey::new(&pieces("/b"), 0),
            &entry(&material(&pieces("/b")), &[]),
            seen,
            0,
            false,
        );
        assert!(served(&two, &key, &HeaderMap::new(), 0).is_none());
    }

    #[test]
    fn large_bodies_are_served_but_not_kept_near() {
        static LARGE: [u8; NEAR_MAX_BODY + 1] = [b'x'; NEAR_MAX_BODY + 1];
        let hot = hot();
        let p = pieces("/large");
        let key = HotKey::new(&p, 0);
        let seen = hot.before_read("larder:default:0:{large}");
        hot.keep(
            &key,
            &entry_with_body(&material(&p), &LARGE),
            seen,
            0,
            false,
        );
        assert_eq!(
            served(&hot, &key, &HeaderMap::new(), 0).map(|b| b.len()),
            Some(LARGE.len())
        );
        assert!(!kept_near(&hot, &key));
    }

    #[test]
    fn a_hit_inside_a_hit_reads_the_map() {
        let hot = hot();
        let (a, b) = (pieces("/a"), pieces("/b"));
        for p in [&a, &b] {
            let seen = hot.before_read("k");
            hot.keep(
                &HotKey::new(p, 0),
                &entry(&material(p), &[]),
                seen,
                0,
                false,
            );
        }
        let inner = hot.with(&HotKey::new(&a, 0), &HeaderMap::new(), 0, |_, _| {
            served(&hot, &HotKey::new(&b, 0), &HeaderMap::new(), 0)
        });
        assert!(inner.is_some());
    }

    #[test]
    fn what_a_thread_made_of_a_slot_survives_changes_to_other_keys() {
        let hot = hot();
        let (a, b) = (pieces("/a"), pieces("/b"));
        let key = HotKey::new(&a, 0);
        let seen = hot.before_read("larder:default:0:{a}");
        hot.keep(&key, &entry(&material(&a), &[]), seen, 0, false);
        // Whether the thread had its own body for the copy, making one if not.
        let had_own_body = |hot: &Hot| {
            hot.with(&key, &HeaderMap::new(), 0, |_, own| {
                let own = own?;
                let had = own.body.is_some();
                own.body
                    .get_or_insert_with(|| bytes::Bytes::copy_from_slice(b"body"));
                Some(had)
            })
        };
        assert_eq!(had_own_body(&hot), Some(false), "served from near");
        assert_eq!(had_own_body(&hot), Some(true));
        // Another key kept: the map's change counter moves.
        let seen = hot.before_read("larder:default:0:{b}");
        hot.keep(
            &HotKey::new(&b, 0),
            &entry(&material(&b), &[]),
            seen,
            0,
            false,
        );
        assert_eq!(
            had_own_body(&hot),
            Some(true),
            "the thread's own bytes were dropped"
        );
        // The slot itself replaced: made anew.
        let seen = hot.before_read("larder:default:0:{a}");
        hot.keep(&key, &entry(&material(&a), &[]), seen, 0, false);
        assert_eq!(had_own_body(&hot), Some(false));
    }
}
