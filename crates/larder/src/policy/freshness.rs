//! Freshness lifetime, age and reuse of stored responses (RFC 9111 §4.2, RFC 5861).

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use super::cache_control::CacheControl;
use super::route::Heuristic;

/// What the `Expires` field says (RFC 9111 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expires {
    /// No `Expires` field.
    Absent,
    /// An invalid date (such as `0`) or several field lines: already expired.
    Invalid,
    /// A valid HTTP-date.
    At(SystemTime),
}

/// Reads `Expires`: several field lines are treated as invalid.
pub fn expires(headers: &HeaderMap) -> Expires {
    let _ = headers;
    todo!()
}

/// Reads an HTTP-date field (`Date`, `Last-Modified`); `None` when absent,
/// repeated or invalid.
pub fn http_date(headers: &HeaderMap, name: http::header::HeaderName) -> Option<SystemTime> {
    let _ = (headers, name);
    todo!()
}

/// Reads `Age` as delta-seconds; an invalid or repeated value is ignored
/// (RFC 9111 §5.1). Values beyond 2^31 clamp.
pub fn age_value(headers: &HeaderMap) -> Option<u32> {
    let _ = headers;
    todo!()
}

/// Statuses that are heuristically cacheable (RFC 9110 §15.1).
pub fn heuristically_cacheable(status: StatusCode) -> bool {
    let _ = status;
    todo!()
}

/// The freshness lifetime a shared cache gives a response (RFC 9111 §4.2.1):
/// `s-maxage` > `max-age` > `Expires − Date` > heuristic (when configured,
/// §4.2.2: `fraction` of `Date − Last-Modified`, capped, only for
/// heuristically cacheable statuses). `None` when the response states no
/// freshness and no heuristic applies. When `Date` is absent,
/// `response_time` stands in for it.
pub fn freshness_lifetime(
    status: StatusCode,
    headers: &HeaderMap,
    cc: &CacheControl,
    heuristic: Option<&Heuristic>,
    response_time: SystemTime,
) -> Option<Duration> {
    let _ = (status, headers, cc, heuristic, response_time);
    todo!()
}

/// The corrected initial age of a response when it is received
/// (RFC 9111 §4.2.3): `max(apparent_age, corrected_age_value)` where
/// `apparent_age = max(0, response_time − date)` and
/// `corrected_age_value = age_value + (response_time − request_time)`.
pub fn initial_age(
    date: Option<SystemTime>,
    age_value: Option<u32>,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Duration {
    let _ = (date, age_value, request_time, response_time);
    todo!()
}

/// The current age of a stored response (RFC 9111 §4.2.3):
/// `initial_age + (now − response_time)`, never negative.
pub fn current_age(initial_age: Duration, response_time: SystemTime, now: SystemTime) -> Duration {
    let _ = (initial_age, response_time, now);
    todo!()
}

/// Seconds of freshness left: `lifetime − age`, negative when stale.
/// Saturates instead of overflowing.
pub fn remaining_ttl(lifetime: Duration, age: Duration) -> i64 {
    let _ = (lifetime, age);
    todo!()
}

/// May a stored response be reused for this request without going forward?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Fresh and acceptable to the request.
    Fresh,
    /// Stale, but the request's `max-stale` accepts it and the response does
    /// not forbid stale use.
    Stale,
    /// Must go forward (stale, or the request's `max-age` / `min-fresh`
    /// rejects it).
    Forward,
}

/// Applies the request directives `max-age`, `min-fresh` and `max-stale`
/// (RFC 9111 §5.2.1) to a stored response of the given lifetime and age.
/// `forbids_stale` comes from the stored response (§4.2.4). `request` is
/// `None` when the route does not honour request directives.
pub fn reuse(
    lifetime: Duration,
    age: Duration,
    forbids_stale: bool,
    request: Option<&CacheControl>,
) -> Reuse {
    let _ = (lifetime, age, forbids_stale, request);
    todo!()
}
