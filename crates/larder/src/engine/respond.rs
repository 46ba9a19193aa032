//! Building the responses the cache sends: from an entry, and the few it
//! makes up itself (304, 412, 504).

use std::borrow::Cow;
use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use super::fields::Fields;
use super::hot::{ControlForm, Copy, Own, Stamps};
use super::stats::Counters;
use super::Cache;
use crate::entry::Entry;
use crate::last_value::LastValue;
use crate::policy::conditional::{self, Precondition};
use crate::policy::freshness;
use crate::policy::range::{self, Ranged};
use crate::policy::{CacheStatus, ClientCacheControl, Fwd, Policy};

/// The `Cache-Status` response field (RFC 9211).
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// How a response came to be, for `Cache-Status` and the legacy header.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Answer<'a> {
    pub hit: bool,
    pub fwd: Option<Fwd>,
    pub fwd_status: Option<u16>,
    pub stored: bool,
    pub collapsed: bool,
    pub detail: Option<&'a str>,
    pub legacy: &'static str,
}

impl Answer<'_> {
    pub fn hit() -> Self {
        Answer {
            hit: true,
            legacy: "HIT",
            ..Answer::default()
        }
    }

    pub fn stale_hit() -> Self {
        Answer {
            hit: true,
            legacy: "STALE",
            ..Answer::default()
        }
    }

    pub fn collapsed(fwd: Fwd) -> Self {
        Answer {
            fwd: Some(fwd),
            collapsed: true,
            legacy: "HIT",
            ..Answer::default()
        }
    }
}

/// Sends a stored response: its own headers, then `Age`, the route's
/// `Cache-Control` toward clients, `Cache-Status`; a 304 or 412 when the
/// request's preconditions say so; a 206 or 416 for a `Range`; no body for
/// HEAD.
pub(crate) fn from_entry(
    cache: &Cache,
    policy: &Policy,
    entry: Cow<'_, Entry>,
    method: &Method,
    request: &HeaderMap,
    answer: Answer<'_>,
    now: SystemTime,
) -> Response<Bytes> {
    let age = freshness::current_age(entry.initial_age, entry.response_time, now);
    let ttl = freshness::remaining_ttl(entry.lifetime, age);
    // Most requests carry no precondition and no Range: one pass over the
    // fields says so, and they skip the date parsing and the lookups.
    let special = Fields::of(request).has(Fields::SPECIAL);
    let precondition = if special && conditional::has_preconditions(request) {
        let last_modified = freshness::http_date(&entry.headers, header::LAST_MODIFIED, now)
            .or_else(|| freshness::http_date(&entry.headers, header::DATE, now))
            .unwrap_or(entry.response_time);
        conditional::evaluate(
            method,
            request,
            entry.headers.get(header::ETAG),
            Some(last_modified),
            now,
        )
    } else {
        Precondition::Proceed
    };
    let (status, mut headers, body) = match precondition {
        // Likewise Range: only a request that has one pays for it.
        Precondition::Proceed if special && request.contains_key(header::RANGE) => {
            ranged(&entry, method, request, now)
        }
        Precondition::Proceed => {
            let status = entry.status;
            // An entry read for this request alone gives up its fields and
            // body (the decoder left room for what is added below); a
            // shared one (a hot-tier copy) is cloned.
            let (headers, body) = match entry {
                Cow::Owned(entry) => (entry.headers, entry.body),
                Cow::Borrowed(entry) => (entry.headers.clone(), entry.body.clone()),
            };
            let body = if method == Method::HEAD {
                Bytes::new()
            } else {
                body
            };
            (status, headers, body)
        }
        Precondition::NotModified => {
            Counters::bump(&cache.inner.counters.not_modified);
            let headers = conditional::not_modified_headers(&entry.headers);
            (StatusCode::NOT_MODIFIED, headers, Bytes::new())
        }
        Precondition::Failed => (
            StatusCode::PRECONDITION_FAILED,
            HeaderMap::new(),
            Bytes::new(),
        ),
    };
    // Answers about the request, not the representation, carry no
    // freshness: a cache further down must not keep a 412 or 416.
    if status != StatusCode::PRECONDITION_FAILED && status != StatusCode::RANGE_NOT_SATISFIABLE {
        client_cache_control(policy, &mut headers, ttl);
    }
    headers.insert(header::AGE, seconds(age));
    let cache_status = CacheStatus {
        name: &cache.inner.name,
        hit: answer.hit,
        fwd: answer.fwd,
        fwd_status: answer.fwd_status,
        ttl: Some(ttl),
        stored: answer.stored,
        collapsed: answer.collapsed,
        key: None,
        detail: answer.detail,
    };
    stamp(cache, &mut headers, &cache_status, answer.legacy);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Sends a hot-tier copy as a hit, `age` old. A request with
/// preconditions or a `Range` (`special`) takes [`from_entry`]; every other
/// one gets a clone of this second's complete header map (see [`stamped`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn from_copy(
    cache: &Cache,
    policy: &Policy,
    copy: &Copy,
    near: Option<&mut Own>,
    method: &Method,
    request: &HeaderMap,
    special: bool,
    age: Duration,
    now: SystemTime,
) -> Response<Bytes> {
    let entry = &copy.entry;
    if special {
        return from_entry(
            cache,
            policy,
            Cow::Borrowed(entry),
            method,
            request,
            Answer::hit(),
            now,
        );
    }
    let head = method == Method::HEAD;
    let (mut headers, body) = match near {
        Some(own) => {
            let headers = stamped(cache, policy, copy, Some(&mut own.stamps), age);
            let body = if head {
                Bytes::new()
            } else if entry.body.len() <= super::hot::OWN_MAX_BODY {
                own.body
                    .get_or_insert_with(|| Bytes::copy_from_slice(&entry.body))
                    .clone()
            } else {
                entry.body.clone()
            };
            (headers, body)
        }
        None => {
            let headers = stamped(cache, policy, copy, None, age);
            let body = if head {
                Bytes::new()
            } else {
                entry.body.clone()
            };
            (headers, body)
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = entry.status;
    std::mem::swap(response.headers_mut(), &mut headers);
    // The map `Response::new` made, empty: `HeaderMap::new` documents that
    // it does not allocate, so there is nothing to free, and its drop glue
    // is a measurable part of a hit.
    std::mem::forget(headers);
    response
}

/// A hit's header fields at `age`: the map made for this second and this
/// route's form of `Cache-Control` if there is one (a clone, nothing
/// computed), else a new one, kept for the hits after it unless another
/// hit is writing it.
fn stamped(
    cache: &Cache,
    policy: &Policy,
    copy: &Copy,
    near: Option<&mut Option<Stamps>>,
    age: Duration,
) -> HeaderMap {
    let Some(near) = near else {
        return shared_stamps(cache, policy, copy, age);
    };
    let age_secs = age.as_secs();
    // This thread's own, where it keeps the copy near: no lock at all.
    if let Some(stamps) = near
        .as_ref()
        .filter(|s| s.age_secs == age_secs && s.control.is(&policy.client_cache_control))
    {
        return stamps.headers.clone();
    }
    let headers = shared_stamps(cache, policy, copy, age);
    *near = Some(Stamps {
        age_secs,
        control: ControlForm::of(&policy.client_cache_control),
        headers: owned(&headers),
    });
    headers
}

/// `headers` with values of this thread's own: a clone of a shared value
/// moves a reference count other cores move too, and that cache line
/// then travels between them on every hit. Static values stay static.
fn owned(headers: &HeaderMap) -> HeaderMap {
    let mut own = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let from_table = DIGITS.as_ptr_range().contains(&value.as_bytes().as_ptr());
        let value = match crate::entry::static_field(name, value) {
            Some(fixed) => fixed.clone(),
            // An `Age` from the static table is static already.
            None if from_table => value.clone(),
            None => {
                let mut copy = HeaderValue::from_bytes(value.as_bytes())
                    .expect("the bytes of a header value are a valid header value");
                copy.set_sensitive(value.is_sensitive());
                copy
            }
        };
        own.append(name.clone(), value);
    }
    own
}

/// [`stamped`] from the copy's own map, shared by every thread.
fn shared_stamps(cache: &Cache, policy: &Policy, copy: &Copy, age: Duration) -> HeaderMap {
    let age_secs = age.as_secs();
    // Read-locked: hits on other cores clone it at the same time, and a
    // hit never waits (one that finds it being written makes its own).
    if let Ok(held) = copy.stamps.try_read() {
        if let Some(stamps) = held
            .as_ref()
            .filter(|s| s.age_secs == age_secs && s.control.is(&policy.client_cache_control))
        {
            return stamps.headers.clone();
        }
    }
    let headers = stamp_copy(cache, policy, copy, age);
    if let Ok(mut held) = copy.stamps.try_write() {
        *held = Some(Stamps {
            age_secs,
            control: ControlForm::of(&policy.client_cache_control),
            headers: headers.clone(),
        });
    }
    headers
}

/// Fills a copy's prepared header fields for a hit at `age`.
fn stamp_copy(cache: &Cache, policy: &Policy, copy: &Copy, age: Duration) -> HeaderMap {
    let mut headers = copy.prepared.clone();
    let ttl = freshness::remaining_ttl(copy.entry.lifetime, age);
    let cache_status = CacheStatus {
        name: &cache.inner.name,
        hit: true,
        ttl: Some(ttl),
        ..CacheStatus::default()
    }
    .append_to(copy.upstream_status.as_ref());
    let remaining = matches!(
        policy.client_cache_control,
        ClientCacheControl::RemainingTtl
    );
    let mut control = (remaining && copy.control_slot).then(|| max_age(ttl));
    let (mut age, mut cache_status) = (Some(seconds(age)), Some(cache_status));
    // The slots are filled in place: the map never grows.
    for (name, value) in headers.iter_mut() {
        let fill = if name == header::AGE {
            age.take()
        } else if name == CACHE_STATUS {
            cache_status.take()
        } else if name == header::CACHE_CONTROL {
            control.take()
        } else {
            None
        };
        if let Some(fill) = fill {
            *value = fill;
        }
    }
    match &policy.client_cache_control {
        ClientCacheControl::Untouched if copy.control_slot => {
            headers.remove(header::CACHE_CONTROL);
        }
        ClientCacheControl::Untouched => {}
        ClientCacheControl::Fixed(value) => {
            headers.insert(header::CACHE_CONTROL, value.clone());
        }
        ClientCacheControl::RemainingTtl => {
            if !headers.contains_key(header::CACHE_CONTROL) {
                // Copied for a route that sent none; this one does.
                client_cache_control(policy, &mut headers, ttl);
            }
        }
    }
    if let Some(name) = &cache.inner.legacy_header {
        headers.insert(name.clone(), HeaderValue::from_static("HIT"));
    }
    headers
}

/// The answer to a request with `Range` (RFC 9110 §14.2): a 206 of a slice
/// of the stored body (no copy), a 416, or the whole entry.
fn ranged(
    entry: &Entry,
    method: &Method,
    request: &HeaderMap,
    now: SystemTime,
) -> (StatusCode, HeaderMap, Bytes) {
    let len = entry.body.len();
    let head = method == Method::HEAD;
    match range::select(method, request, entry.status, &entry.headers, len, now) {
        Ranged::Full => {
            let body = if head {
                Bytes::new()
            } else {
                entry.body.clone()
            };
            (entry.status, entry.headers.clone(), body)
        }
        Ranged::Part(part) => {
            let mut headers = entry.headers.clone();
            headers.insert(header::CONTENT_RANGE, range::content_range(&part, len));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(part.len()));
            let body = if head {
                Bytes::new()
            } else {
                entry.body.slice(part)
            };
            (StatusCode::PARTIAL_CONTENT, headers, body)
        }
        Ranged::Unsatisfiable => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_RANGE, range::unsatisfied_range(len));
            (StatusCode::RANGE_NOT_SATISFIABLE, headers, Bytes::new())
        }
    }
}

/// `only-if-cached` and nothing usable stored: 504 (RFC 9111 §5.2.1.7).
pub(crate) fn gateway_timeout(cache: &Cache, fwd: Fwd) -> Response<Bytes> {
    let mut headers = HeaderMap::new();
    let status = CacheStatus {
        name: &cache.inner.name,
        fwd: Some(fwd),
        detail: Some("only-if-cached"),
        ..CacheStatus::default()
    };
    stamp(cache, &mut headers, &status, "MISS");
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    *response.headers_mut() = headers;
    response
}

/// Applies the route's `Cache-Control` toward clients.
pub(crate) fn client_cache_control(policy: &Policy, headers: &mut HeaderMap, ttl: i64) {
    match &policy.client_cache_control {
        ClientCacheControl::Untouched => {}
        ClientCacheControl::Fixed(value) => {
            headers.insert(header::CACHE_CONTROL, value.clone());
        }
        ClientCacheControl::RemainingTtl => {
            if let http::header::Entry::Vacant(slot) = headers.entry(header::CACHE_CONTROL) {
                slot.insert(max_age(ttl));
            }
        }
    }
}

/// Appends the cache's `Cache-Status` member and the legacy header.
pub(crate) fn stamp(
    cache: &Cache,
    headers: &mut HeaderMap,
    status: &CacheStatus<'_>,
    legacy: &'static str,
) {
    // Caches nearer the origin may have sent several field lines: they
    // form one list, which ours joins at the end (RFC 9211 §2).
    let mut lines = headers.get_all(&CACHE_STATUS).iter();
    let value = match (lines.next(), lines.next()) {
        (None, _) => status.append_to(None),
        (Some(only), None) => status.append_to(Some(only)),
        (Some(first), Some(second)) => {
            let mut joined = first.as_bytes().to_vec();
            for line in std::iter::once(second).chain(lines) {
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(line.as_bytes());
            }
            let joined = HeaderValue::from_bytes(&joined).ok();
            status.append_to(joined.as_ref())
        }
    };
    headers.insert(CACHE_STATUS, value);
    if let Some(name) = &cache.inner.legacy_header {
        headers.insert(name.clone(), HeaderValue::from_static(legacy));
    }
}

/// `max-age=<ttl>` (0 for an expired entry), written without the
/// formatting machinery: the long way writes one on every response.
fn max_age(ttl: i64) -> HeaderValue {
    thread_local! {
        /// The last value this thread made: responses of one remaining
        /// ttl (entries stored in one second, a second's hits) share it.
        static LAST: LastValue<i64> = const { LastValue::new() };
    }
    let made = LAST.with(|last| last.get(ttl, || Ok::<_, Infallible>(max_age_value(ttl))));
    match made {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

fn max_age_value(ttl: i64) -> HeaderValue {
    const PREFIX: &[u8] = b"max-age=";
    let mut buf = [0u8; PREFIX.len() + 20];
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 20];
    let digits = crate::decimal::digits(u64::try_from(ttl).unwrap_or(0), &mut digits);
    let end = PREFIX.len() + digits.len();
    buf[PREFIX.len()..end].copy_from_slice(digits);
    HeaderValue::from_bytes(&buf[..end]).expect("max-age and ASCII digits are a valid field value")
}

/// An `Age` (or any count of seconds) as a field value: a static one
/// under [`STATIC_SECONDS`], so that the clone every hit makes of it
/// moves no reference count.
fn seconds(d: Duration) -> HeaderValue {
    let secs = d.as_secs();
    match static_seconds(secs) {
        Some(digits) => HeaderValue::from_static(digits),
        None => HeaderValue::from(secs),
    }
}

/// How many counts of seconds have a static value: the first 1,000 s of
/// an entry's age (every hit of one that lives up to a quarter hour).
const STATIC_SECONDS: u64 = 1000;

/// The decimal digits of 0 to 999, three bytes each, left-aligned.
static DIGITS: [u8; 3 * STATIC_SECONDS as usize] = {
    let mut table = [0u8; 3 * STATIC_SECONDS as usize];
    let mut n = 0;
    while n < STATIC_SECONDS as usize {
        let at = 3 * n;
        let (h, t, u) = (n / 100, n / 10 % 10, n % 10);
        if n >= 100 {
            table[at] = b'0' + h as u8;
            table[at + 1] = b'0' + t as u8;
            table[at + 2] = b'0' + u as u8;
        } else if n >= 10 {
            table[at] = b'0' + t as u8;
            table[at + 1] = b'0' + u as u8;
        } else {
            table[at] = b'0' + u as u8;
        }
        n += 1;
    }
    table
};

fn static_seconds(n: u64) -> Option<&'static str> {
    if n >= STATIC_SECONDS {
        return None;
    }
    let len = match n {
        0..=9 => 1,
        10..=99 => 2,
        _ => 3,
    };
    let at = 3 * n as usize;
    std::str::from_utf8(&DIGITS[at..at + len]).ok()
}

#[cfg(test)]
mod tests {
    use http::header::{CONTENT_TYPE, ETAG};
    use http::{HeaderMap, HeaderValue};

    use super::{max_age, owned, seconds};

    #[test]
    fn seconds_are_decimal_static_or_not() {
        for n in [0, 7, 10, 99, 100, 599, 999, 1000, 86_400, u64::MAX] {
            let value = seconds(std::time::Duration::from_secs(n));
            assert_eq!(value, n.to_string().as_str(), "{n}");
            // The table's own bytes (no buffer of its own to count) below 1,000.
            let table = super::DIGITS.as_ptr_range();
            assert_eq!(table.contains(&value.as_bytes().as_ptr()), n < 1000, "{n}");
        }
    }

    #[test]
    fn a_threads_own_stamps_copy_shared_values_and_keep_static_ones() {
        let shared = bytes::Bytes::from_static(b"xx\"abc\"").slice(2..);
        let mut headers = HeaderMap::new();
        // As decoded from a store that spelled it out: not static.
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_bytes(b"application/json").unwrap(),
        );
        let mut etag = HeaderValue::from_maybe_shared(shared.clone()).unwrap();
        etag.set_sensitive(true);
        headers.insert(ETAG, etag);
        let own = owned(&headers);
        assert_eq!(own, headers);
        // Its own bytes, not a second reference to the shared buffer.
        assert_ne!(own[ETAG].as_bytes().as_ptr(), shared.as_ptr());
        assert!(own[ETAG].is_sensitive());
        let age = seconds(std::time::Duration::from_secs(5));
        let own_age = owned(&HeaderMap::from_iter([(http::header::AGE, age.clone())]));
        assert_eq!(
            own_age[http::header::AGE].as_bytes().as_ptr(),
            age.as_bytes().as_ptr()
        );
        // The codec's static value: cloning it counts nothing.
        let fixed = crate::entry::static_field(&CONTENT_TYPE, &headers[CONTENT_TYPE]).unwrap();
        assert_eq!(
            own[CONTENT_TYPE].as_bytes().as_ptr(),
            fixed.as_bytes().as_ptr()
        );
        assert_ne!(
            own[CONTENT_TYPE].as_bytes().as_ptr(),
            headers[CONTENT_TYPE].as_bytes().as_ptr()
        );
    }

    #[test]
    fn max_age_is_the_remaining_ttl_and_never_negative() {
        assert_eq!(max_age(0), "max-age=0");
        assert_eq!(max_age(59), "max-age=59");
        assert_eq!(max_age(3600), "max-age=3600");
        assert_eq!(max_age(-5), "max-age=0");
        assert_eq!(max_age(i64::MAX), format!("max-age={}", i64::MAX).as_str());
    }

    #[test]
    fn max_age_of_the_same_ttl_again_is_the_last_value_and_another_its_own() {
        let (first, again) = (max_age(120), max_age(120));
        assert_eq!(first.as_bytes().as_ptr(), again.as_bytes().as_ptr());
        assert_eq!(max_age(119), "max-age=119");
        assert_eq!(max_age(120), "max-age=120");
    }
}
