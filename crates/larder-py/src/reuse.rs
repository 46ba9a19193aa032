//! The Python objects of a hit, made once per cached entry and reused by
//! its later hits.
//!
//! A hit's body is the engine's copy of the entry (`Bytes`, the same
//! memory on every hit of that entry), and most of its header fields are
//! the same values hit after hit: only `Age`, `Cache-Status` and a
//! remaining-TTL `Cache-Control` change, once a second. Turning them into
//! Python objects on every hit copies the whole body into a new `bytes`
//! (64 KiB for a 64 KiB entry) and makes two `bytes` and a tuple per field.
//!
//! So the objects made for an entry's body, and for each of its fields,
//! are kept here, keyed by the address and length of the engine's body.
//! The key is sound because each slot holds a clone of that body: while
//! it does, the memory cannot be freed, so no other body can appear at
//! the same address, and `Bytes` are never written to while shared, so
//! the same address and length mean the same bytes. Fields are compared
//! by value, one by one in order, so a field that changed (a new second's
//! `Age`, a revalidated entry's new `ETag` over the same body) gets a new
//! object. Python `bytes` and tuples are immutable, so handing the same
//! ones to several responses is safe; the list of fields is new each time,
//! since ASGI middleware may edit it.
//!
//! Nothing is served from here that the engine did not answer: the engine
//! decides every hit (freshness, purges, variants), and this only spares
//! the copies of what it answered. A slot is dropped once the engine no
//! longer holds its body (its copy was evicted or invalidated), at the
//! latest at the next sweep (every 4,096 hits, or when full); every purge
//! made from this process forgets them all (the next hit drops them); and
//! the slots are bounded ([`MAX_SLOTS`], [`MAX_BYTES`]), the oldest going
//! first.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

/// At most this many entries' objects are kept.
pub(crate) const MAX_SLOTS: usize = 1024;
/// At most this many body bytes are kept (in Python copies; the engine's
/// memory they pin is its own until it lets go of it).
pub(crate) const MAX_BYTES: usize = 8 << 20;
/// Conversions between sweeps for bodies the engine let go of.
const SWEEP_EVERY: u32 = 4096;

/// One entry's objects.
struct Slot {
    /// The engine's body: holding it keeps its address the key's.
    body: Bytes,
    py_body: Py<PyBytes>,
    /// The fields of the last hit, in order, with their `(name, value)`.
    fields: Vec<(HeaderName, HeaderValue, Py<PyTuple>)>,
}

#[derive(Default)]
struct Slots {
    /// The [`EPOCH`] the slots were made in.
    epoch: u64,
    by_body: HashMap<(usize, usize), Slot>,
    /// Keys in the order they were added (some may be gone already).
    order: VecDeque<(usize, usize)>,
    bytes: usize,
    since_sweep: u32,
}

static SLOTS: Mutex<Option<Slots>> = Mutex::new(None);
/// Bumped by [`clear`]: slots of an earlier epoch are never used.
static EPOCH: AtomicU64 = AtomicU64::new(0);

fn key(body: &Bytes) -> (usize, usize) {
    (body.as_ptr() as usize, body.len())
}

/// `headers` and `body` of a hit as Python objects: the ASGI header list
/// (a new list, without the fields named `skip`) and `bytes`, reusing the objects of earlier hits of the
/// same entry.
pub(crate) fn hit<'py>(
    py: Python<'py>,
    headers: &HeaderMap,
    skip: Option<&HeaderName>,
    body: &Bytes,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyAny>)> {
    // Only what the engine keeps (a body someone else holds too) is worth
    // keeping; an empty body (HEAD) has nothing to spare. `try_lock`: a
    // conversion never waits, and one made while another runs (a garbage
    // collection's finalizer, another thread) just makes its own objects.
    if body.is_empty() || body.is_unique() {
        return fresh(py, headers, skip, body);
    }
    let Ok(mut guard) = SLOTS.try_lock() else {
        return fresh(py, headers, skip, body);
    };
    let epoch = EPOCH.load(Ordering::Acquire);
    if guard.as_ref().is_some_and(|s| s.epoch != epoch) {
        *guard = None;
    }
    let slots = guard.get_or_insert_with(|| Slots {
        epoch,
        ..Slots::default()
    });
    slots.since_sweep += 1;
    if slots.since_sweep >= SWEEP_EVERY {
        slots.sweep();
    }
    let k = key(body);
    if !slots.by_body.contains_key(&k) {
        if body.len() > MAX_BYTES {
            drop(guard);
            return fresh(py, headers, skip, body);
        }
        slots.make_room(body.len());
        let slot = Slot {
            body: body.clone(),
            py_body: PyBytes::new(py, body).unbind(),
            fields: Vec::with_capacity(headers.len()),
        };
        slots.bytes += body.len();
        slots.by_body.insert(k, slot);
        slots.order.push_back(k);
    }
    let Some(slot) = slots.by_body.get_mut(&k) else {
        drop(guard);
        return fresh(py, headers, skip, body);
    };
    let list = PyList::empty(py);
    for (i, (name, value)) in headers.iter().enumerate() {
        let same = slot
            .fields
            .get(i)
            .is_some_and(|(n, v, _)| n == name && v.as_bytes() == value.as_bytes());
        if !same {
            let field = (name.clone(), value.clone(), pair(py, name, value)?.unbind());
            if i < slot.fields.len() {
                slot.fields[i] = field;
            } else {
                slot.fields.push(field);
            }
        }
        if skip != Some(name) {
            list.append(slot.fields[i].2.bind(py))?;
        }
    }
    slot.fields.truncate(headers.len());
    Ok((list, slot.py_body.bind(py).clone().into_any()))
}

/// The same objects, made anew.
pub(crate) fn fresh<'py>(
    py: Python<'py>,
    headers: &HeaderMap,
    skip: Option<&HeaderName>,
    body: &Bytes,
) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyAny>)> {
    let list = crate::request::header_list(py, headers, skip)?;
    Ok((list, PyBytes::new(py, body).into_any()))
}

fn pair<'py>(
    py: Python<'py>,
    name: &HeaderName,
    value: &HeaderValue,
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            PyBytes::new(py, name.as_str().as_bytes()),
            PyBytes::new(py, value.as_bytes()),
        ],
    )
}

/// Forgets every kept object (after a purge: nothing made before it is
/// used past it). Callable from any thread, and never waits: the objects
/// are dropped by the next conversion, on the Python thread.
pub(crate) fn forget_all() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// How many entries' objects are kept, and their body bytes (for tests).
pub(crate) fn kept() -> (usize, usize) {
    let epoch = EPOCH.load(Ordering::Acquire);
    match SLOTS.try_lock() {
        Ok(guard) => guard
            .as_ref()
            .filter(|s| s.epoch == epoch)
            .map_or((0, 0), |s| (s.by_body.len(), s.bytes)),
        Err(_) => (0, 0),
    }
}

impl Slots {
    /// Drops the slots whose body only this holds: the engine let go of
    /// the entry, so no hit will name that body again.
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let before = self.by_body.len();
        let mut freed = 0;
        self.by_body.retain(|_, slot| {
            let gone = slot.body.is_unique();
            if gone {
                freed += slot.body.len();
            }
            !gone
        });
        self.bytes -= freed;
        if self.by_body.len() != before {
            let by_body = &self.by_body;
            self.order.retain(|k| by_body.contains_key(k));
        }
    }

    /// Makes room for a body of `len` bytes: first the slots the engine
    /// let go of, then the oldest.
    fn make_room(&mut self, len: usize) {
        if self.by_body.len() < MAX_SLOTS && self.bytes + len <= MAX_BYTES {
            return;
        }
        self.sweep();
        while self.by_body.len() >= MAX_SLOTS || self.bytes + len > MAX_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(slot) = self.by_body.remove(&oldest) {
                self.bytes -= slot.body.len();
            }
        }
    }
}
