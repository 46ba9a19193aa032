//! Building the responses the cache sends: from an entry, and the few it
//! makes up itself (304, 412, 504).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use super::hot::{Copy, Stamps};
use super::stats::Counters;
use super::Cache;
use crate::entry::Entry;
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
    entry: &Entry,
    method: &Method,
    request: &HeaderMap,
    answer: Answer<'_>,
    now: SystemTime,
) -> Response<Bytes> {
    let age = freshness::current_age(entry.initial_age, entry.response_time, now);
    let ttl = freshness::remaining_ttl(entry.lifetime, age);
    // Most requests carry no precondition: skip the date parsing for them.
    let precondition = if conditional::has_preconditions(request) {
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
        Precondition::Proceed if request.contains_key(header::RANGE) => {
            ranged(entry, method, request, now)
        }
        Precondition::Proceed => {
            let body = if method == Method::HEAD {
                Bytes::new()
            } else {
                entry.body.clone()
            };
            (entry.status, entry.headers.clone(), body)
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

/// Sends a hot-tier copy as a hit. A request with preconditions or a
/// `Range` (`special`) takes [`from_entry`]; every other one gets the
/// prepared headers with this second's `Age`, `Cache-Status` and
/// remaining-lifetime `Cache-Control` filled in, computed once a second.
pub(crate) fn from_copy(
    cache: &Cache,
    policy: &Policy,
    copy: &Copy,
    method: &Method,
    request: &HeaderMap,
    special: bool,
    now: SystemTime,
) -> Response<Bytes> {
    let entry = &copy.entry;
    if special {
        return from_entry(cache, policy, entry, method, request, Answer::hit(), now);
    }
    let stamps = stamps(cache, copy, age_of(entry, now));
    let mut headers = copy.prepared.clone();
    let remaining = matches!(
        policy.client_cache_control,
        ClientCacheControl::RemainingTtl
    );
    let Stamps {
        age,
        cache_status,
        control,
        ..
    } = stamps;
    // The slots are filled in place: one pass over a few fields costs
    // less than hashing each name again.
    let (mut age, mut cache_status) = (Some(age), Some(cache_status));
    let mut control = (remaining && copy.control_slot).then_some(control);
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
                let ttl = freshness::remaining_ttl(entry.lifetime, age_of(entry, now));
                client_cache_control(policy, &mut headers, ttl);
            }
        }
    }
    if let Some(name) = &cache.inner.legacy_header {
        headers.insert(name.clone(), HeaderValue::from_static("HIT"));
    }
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        entry.body.clone()
    };
    let mut response = Response::new(body);
    *response.status_mut() = entry.status;
    *response.headers_mut() = headers;
    response
}

fn age_of(entry: &Entry, now: SystemTime) -> Duration {
    freshness::current_age(entry.initial_age, entry.response_time, now)
}

/// This second's per-hit values of a copy: the ones already made within
/// it, or new ones (kept for the next hit, unless another is writing them).
fn stamps(cache: &Cache, copy: &Copy, age: Duration) -> Stamps {
    let age_secs = age.as_secs();
    if let Ok(held) = copy.stamps.try_lock() {
        if let Some(stamps) = held.as_ref().filter(|s| s.age_secs == age_secs) {
            return stamps.clone();
        }
    }
    let ttl = freshness::remaining_ttl(copy.entry.lifetime, age);
    let cache_status = CacheStatus {
        name: &cache.inner.name,
        hit: true,
        ttl: Some(ttl),
        ..CacheStatus::default()
    };
    let control = HeaderValue::from_maybe_shared(Bytes::from(format!("max-age={}", ttl.max(0))))
        .unwrap_or_else(|_| HeaderValue::from_static("max-age=0"));
    let stamps = Stamps {
        age_secs,
        age: seconds(age),
        cache_status: cache_status.append_to(copy.upstream_status.as_ref()),
        control,
    };
    if let Ok(mut held) = copy.stamps.try_lock() {
        *held = Some(stamps.clone());
    }
    stamps
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
            if !headers.contains_key(header::CACHE_CONTROL) {
                let value = format!("max-age={}", ttl.max(0));
                if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
                    headers.insert(header::CACHE_CONTROL, v);
                }
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

fn seconds(d: Duration) -> HeaderValue {
    HeaderValue::from(d.as_secs())
}
