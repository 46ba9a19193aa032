//! Freshness lifetime, age and reuse of stored responses (RFC 9111 §4.2, RFC 5861).

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use super::cache_control::{CacheControl, MaxStale, MAX_DELTA_SECONDS};
use super::date;
use super::route::Heuristic;

/// What the `Expires` field says (RFC 9111 §5.3).
///
/// ```
/// use http::{header::EXPIRES, HeaderMap, HeaderValue};
/// use larder::policy::freshness::{expires, Expires};
///
/// let now = std::time::SystemTime::UNIX_EPOCH;
/// let mut headers = HeaderMap::new();
/// assert_eq!(expires(&headers, now), Expires::Absent);
/// headers.insert(EXPIRES, HeaderValue::from_static("0"));
/// assert_eq!(expires(&headers, now), Expires::Invalid);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expires {
    /// No `Expires` field.
    Absent,
    /// An invalid date (such as `0`) or several field lines: already expired.
    Invalid,
    /// A valid HTTP-date.
    At(SystemTime),
}

/// Reads `Expires`: several field lines are treated as invalid. `now`
/// places two-digit years ([`date::parse`]).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{header::EXPIRES, HeaderMap, HeaderValue};
/// use larder::policy::freshness::{expires, Expires};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let mut headers = HeaderMap::new();
/// headers.insert(EXPIRES, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
/// assert_eq!(expires(&headers, now), Expires::At(UNIX_EPOCH + Duration::from_secs(784_111_777)));
/// headers.append(EXPIRES, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
/// assert_eq!(expires(&headers, now), Expires::Invalid);
/// ```
pub fn expires(headers: &HeaderMap, now: SystemTime) -> Expires {
    match single_value(headers, http::header::EXPIRES) {
        Single::Absent => Expires::Absent,
        // §5.3: a cache must treat an invalid Expires, which includes one we
        // cannot tell apart from another, as a time in the past.
        Single::Repeated => Expires::Invalid,
        Single::One(value) => {
            date::parse(value.as_bytes(), now).map_or(Expires::Invalid, Expires::At)
        }
    }
}

/// Reads an HTTP-date field (`Date`, `Last-Modified`); `None` when absent,
/// repeated or invalid. All three HTTP-date formats are accepted, as a
/// cache should read them ([`date::parse`]: any case,
/// whatever the weekday says, two-digit years placed relative to `now`).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{header::DATE, HeaderMap, HeaderValue};
/// use larder::policy::freshness::http_date;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let mut headers = HeaderMap::new();
/// headers.insert(DATE, HeaderValue::from_static("Sunday, 06-Nov-94 08:49:37 GMT"));
/// assert_eq!(http_date(&headers, DATE, now), Some(UNIX_EPOCH + Duration::from_secs(784_111_777)));
/// headers.insert(DATE, HeaderValue::from_static("yesterday"));
/// assert_eq!(http_date(&headers, DATE, now), None);
/// ```
pub fn http_date(
    headers: &HeaderMap,
    name: http::header::HeaderName,
    now: SystemTime,
) -> Option<SystemTime> {
    match single_value(headers, name) {
        Single::One(value) => date::parse(value.as_bytes(), now),
        Single::Absent | Single::Repeated => None,
    }
}

/// Reads `Age` as delta-seconds (RFC 9111 §5.1). Values beyond 2^31 clamp.
///
/// A list-valued `Age` (`7200, 0` on one line, or several `Age` lines,
/// which are one list by RFC 9110 §5.3) uses its first member and discards
/// the rest, as §5.1 says a cache should: ignoring the whole field would
/// take an already stale response for a new one. The field is ignored only
/// when that first member is not a valid delta-seconds.
///
/// ```
/// use http::{header::AGE, HeaderMap, HeaderValue};
/// use larder::policy::freshness::age_value;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(AGE, HeaderValue::from_static("60"));
/// assert_eq!(age_value(&headers), Some(60));
/// headers.insert(AGE, HeaderValue::from_static("7200, 0"));
/// assert_eq!(age_value(&headers), Some(7200));
/// headers.insert(AGE, HeaderValue::from_static("-1"));
/// assert_eq!(age_value(&headers), None);
/// ```
pub fn age_value(headers: &HeaderMap) -> Option<u32> {
    // Empty list elements are allowed and skipped (RFC 9110 §5.6.1.2).
    let first = headers
        .get_all(http::header::AGE)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .find(|member| !member.is_empty())?;
    super::cache_control::parse_delta_seconds(first)
}

/// Statuses that are heuristically cacheable (RFC 9110 §15.1).
///
/// ```
/// use http::StatusCode;
/// use larder::policy::freshness::heuristically_cacheable;
///
/// assert!(heuristically_cacheable(StatusCode::NOT_FOUND));
/// assert!(!heuristically_cacheable(StatusCode::FOUND));
/// ```
pub fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// The freshness lifetime a shared cache gives a response (RFC 9111 §4.2.1):
/// `s-maxage` > `max-age` > `Expires − Date` > heuristic (when configured,
/// §4.2.2: [`Heuristic::percent`] percent of `Date − Last-Modified`, at most
/// [`Heuristic::cap`], only for heuristically cacheable statuses and for
/// responses marked `public`). `None` when the response states no
/// freshness and no heuristic applies. When `Date` is absent,
/// `response_time` stands in for it. An invalid `Expires` gives a lifetime
/// of zero.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{HeaderMap, HeaderValue, StatusCode};
/// use larder::policy::{freshness::freshness_lifetime, CacheControl};
///
/// let lifetime = |line| {
///     let cc = CacheControl::parse([&HeaderValue::from_static(line)]);
///     freshness_lifetime(StatusCode::OK, &HeaderMap::new(), &cc, None, UNIX_EPOCH)
/// };
/// assert_eq!(lifetime("max-age=60, s-maxage=600"), Some(Duration::from_secs(600)));
/// assert_eq!(lifetime("public"), None);
/// ```
///
/// With a [`Heuristic`], a response unchanged for ten days is fresh for one:
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{header::{DATE, LAST_MODIFIED}, HeaderMap, HeaderValue, StatusCode};
/// use larder::policy::{freshness::freshness_lifetime, CacheControl};
/// use larder::Heuristic;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(DATE, HeaderValue::from_static("Sat, 11 Jan 2025 00:00:00 GMT"));
/// headers.insert(LAST_MODIFIED, HeaderValue::from_static("Wed, 01 Jan 2025 00:00:00 GMT"));
/// let heuristic = Heuristic { percent: 10, cap: Duration::from_secs(7 * 86_400) };
/// let cc = CacheControl::default();
/// let lifetime = freshness_lifetime(StatusCode::OK, &headers, &cc, Some(&heuristic), UNIX_EPOCH);
/// assert_eq!(lifetime, Some(Duration::from_secs(86_400)));
/// ```
pub fn freshness_lifetime(
    status: StatusCode,
    headers: &HeaderMap,
    cc: &CacheControl,
    heuristic: Option<&Heuristic>,
    response_time: SystemTime,
) -> Option<Duration> {
    if let Some(seconds) = cc.s_maxage.or(cc.max_age) {
        return Some(Duration::from_secs(seconds.into()));
    }
    // §4.2.1: without Date, the time the response arrived is the best
    // estimate of when the origin generated it.
    let date = || http_date(headers, http::header::DATE, response_time).unwrap_or(response_time);
    // RFC 9213 §2.2: a targeted field replaces Expires too.
    let expires = if cc.targeted {
        Expires::Absent
    } else {
        expires(headers, response_time)
    };
    let lifetime = match expires {
        Expires::At(at) => since(date(), at),
        Expires::Invalid => Duration::ZERO,
        Expires::Absent => {
            // §4.2.2 with §3: heuristics only for statuses that allow them,
            // or for responses explicitly marked cacheable.
            if !(heuristically_cacheable(status) || cc.public) {
                return None;
            }
            heuristic_lifetime(headers, heuristic?, date(), response_time)?
        }
    };
    Some(lifetime.min(max_delta()))
}

/// §4.2.2: a fraction of the time since the resource last changed, only
/// when `Last-Modified` says when that was.
fn heuristic_lifetime(
    headers: &HeaderMap,
    heuristic: &Heuristic,
    date: SystemTime,
    response_time: SystemTime,
) -> Option<Duration> {
    let last_modified = http_date(headers, http::header::LAST_MODIFIED, response_time)?;
    let unchanged_for = since(last_modified, date);
    let lifetime = unchanged_for.saturating_mul(heuristic.percent.into()) / 100;
    Some(lifetime.min(heuristic.cap))
}

/// The lifetime a stored response is reused with. An unqualified
/// `no-cache` (RFC 9111 §5.2.2.4) means the response may be stored but
/// never reused without successful validation: it is stored as fresh for
/// zero seconds, so every request that finds it goes forward with its
/// validators ([`reuse`] answers [`Reuse::Forward`] at any age), and since
/// `no-cache` also forbids stale answers (§4.2.4) no `max-stale`,
/// `stale-while-revalidate` or `stale-if-error` can serve it unvalidated.
/// A qualified `no-cache="field"` only strips those fields and keeps the
/// lifetime.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderValue;
/// use larder::policy::{freshness::reuse_lifetime, CacheControl};
///
/// let parse = |line| CacheControl::parse([&HeaderValue::from_static(line)]);
/// let minute = Duration::from_secs(60);
/// assert_eq!(reuse_lifetime(&parse("no-cache, max-age=60"), minute), Duration::ZERO);
/// assert_eq!(reuse_lifetime(&parse(r#"no-cache="x-trace", max-age=60"#), minute), minute);
/// ```
pub fn reuse_lifetime(directives: &CacheControl, lifetime: Duration) -> Duration {
    if directives.no_cache_all() {
        Duration::ZERO
    } else {
        lifetime
    }
}

/// The corrected initial age of a response when it is received
/// (RFC 9111 §4.2.3): `max(apparent_age, corrected_age_value)` where
/// `apparent_age = max(0, response_time − date)` and
/// `corrected_age_value = age_value + (response_time − request_time)`.
/// A `date` later than `response_time` (clock skew) gives no apparent age.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use larder::policy::freshness::initial_age;
///
/// let sent = UNIX_EPOCH + Duration::from_secs(1_000);
/// let received = sent + Duration::from_secs(2);
/// // Age: 30 plus the 2 s round trip beats the 1 s the Date implies.
/// let date = Some(received - Duration::from_secs(1));
/// assert_eq!(initial_age(date, Some(30), sent, received), Duration::from_secs(32));
/// ```
pub fn initial_age(
    date: Option<SystemTime>,
    age_value: Option<u32>,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Duration {
    // A Date ahead of our clock (skew) gives no apparent age rather than a
    // negative one; a missing Date gives none either.
    let apparent_age = date.map_or(Duration::ZERO, |date| since(date, response_time));
    // §4.2.3: the whole round trip is charged to the response, since it
    // may have aged in transit; age_value is 0 when Age is absent.
    let response_delay = since(request_time, response_time);
    let corrected_age_value =
        Duration::from_secs(age_value.unwrap_or(0).into()).saturating_add(response_delay);
    apparent_age.max(corrected_age_value)
}

/// The current age of a stored response (RFC 9111 §4.2.3):
/// `initial_age + (now − response_time)`, never negative.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use larder::policy::freshness::current_age;
///
/// let received = UNIX_EPOCH + Duration::from_secs(1_000);
/// let now = received + Duration::from_secs(50);
/// assert_eq!(current_age(Duration::from_secs(10), received, now), Duration::from_secs(60));
/// // A clock that went backwards adds nothing.
/// assert_eq!(current_age(Duration::from_secs(10), now, received), Duration::from_secs(10));
/// ```
pub fn current_age(initial_age: Duration, response_time: SystemTime, now: SystemTime) -> Duration {
    initial_age.saturating_add(since(response_time, now))
}

/// Seconds of freshness left: `lifetime − age`, negative when stale.
/// Saturates instead of overflowing.
///
/// Rounds down, so a response stale by a fraction of a second reports `-1`
/// rather than a `0` that would read as still fresh.
///
/// ```
/// use std::time::Duration;
/// use larder::policy::freshness::remaining_ttl;
///
/// assert_eq!(remaining_ttl(Duration::from_secs(60), Duration::from_secs(45)), 15);
/// assert_eq!(remaining_ttl(Duration::from_secs(60), Duration::from_millis(60_500)), -1);
/// ```
pub fn remaining_ttl(lifetime: Duration, age: Duration) -> i64 {
    let nanos = lifetime.as_nanos() as i128 - age.as_nanos() as i128;
    let seconds = nanos.div_euclid(1_000_000_000);
    i64::try_from(seconds).unwrap_or(if seconds < 0 { i64::MIN } else { i64::MAX })
}

/// May a stored response be reused for this request without going forward?
///
/// ```
/// use std::time::Duration;
/// use larder::policy::freshness::{reuse, Reuse};
///
/// let minute = Duration::from_secs(60);
/// assert_eq!(reuse(minute, Duration::from_secs(10), false, None), Reuse::Fresh);
/// assert_eq!(reuse(minute, minute, false, None), Reuse::Forward);
/// ```
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
/// `None` when the route does not honour request directives; a stale
/// response is then always [`Reuse::Forward`].
///
/// ```
/// use std::time::Duration;
/// use http::HeaderValue;
/// use larder::policy::{freshness::{reuse, Reuse}, CacheControl};
///
/// let (lifetime, age) = (Duration::from_secs(60), Duration::from_secs(70));
/// let request = CacheControl::parse([&HeaderValue::from_static("max-stale=30")]);
/// assert_eq!(reuse(lifetime, age, false, Some(&request)), Reuse::Stale);
/// // must-revalidate and friends on the stored response overrule max-stale.
/// assert_eq!(reuse(lifetime, age, true, Some(&request)), Reuse::Forward);
/// ```
pub fn reuse(
    lifetime: Duration,
    age: Duration,
    forbids_stale: bool,
    request: Option<&CacheControl>,
) -> Reuse {
    let fresh = lifetime > age; // §4.2: fresh while lifetime exceeds age.
    let Some(request) = request else {
        return if fresh { Reuse::Fresh } else { Reuse::Forward };
    };
    if rejected_by_max_age(request.max_age, age)
        || rejected_by_min_fresh(request.min_fresh, lifetime, age)
    {
        return Reuse::Forward;
    }
    if fresh {
        return Reuse::Fresh;
    }
    let staleness = age - lifetime;
    let accepted = match request.max_stale {
        Some(MaxStale::Any) => true,
        Some(MaxStale::Seconds(n)) => staleness <= secs(n),
        None => false,
    };
    if accepted && !forbids_stale {
        Reuse::Stale
    } else {
        Reuse::Forward
    }
}

/// §5.2.1.1: the client wants a response no older than `max-age`.
/// `max-age=0` always goes forward: clients send it to force revalidation,
/// and an age of exactly zero only happens with a stopped clock.
fn rejected_by_max_age(max_age: Option<u32>, age: Duration) -> bool {
    max_age.is_some_and(|n| n == 0 || age > secs(n))
}

/// §5.2.1.3: the client wants at least `min-fresh` seconds of freshness left.
fn rejected_by_min_fresh(min_fresh: Option<u32>, lifetime: Duration, age: Duration) -> bool {
    min_fresh.is_some_and(|n| lifetime.saturating_sub(age) < secs(n))
}

fn secs(n: u32) -> Duration {
    Duration::from_secs(n.into())
}

fn max_delta() -> Duration {
    secs(MAX_DELTA_SECONDS)
}

/// `to − from`, or zero when `to` is earlier (clocks disagree).
fn since(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or(Duration::ZERO)
}

/// How many lines a singleton field has.
enum Single<'a> {
    Absent,
    One(&'a http::HeaderValue),
    Repeated,
}

fn single_value(headers: &HeaderMap, name: http::header::HeaderName) -> Single<'_> {
    let mut values = headers.get_all(name).into_iter();
    match (values.next(), values.next()) {
        (None, _) => Single::Absent,
        (Some(value), None) => Single::One(value),
        (Some(_), Some(_)) => Single::Repeated,
    }
}

/// May a stale stored response stand in for a failed fetch (RFC 5861 §4)?
/// Only when it may be served stale at all (RFC 9111 §4.2.4), and its age
/// is within the `stale-if-error` window: the longer of the stored
/// response's and the request's (when the route honours request
/// directives).
///
/// ```
/// use std::time::Duration;
/// use larder::policy::freshness::stale_if_error_allows;
///
/// let minute = Duration::from_secs(60);
/// let window = Duration::from_secs(300);
/// assert!(stale_if_error_allows(minute, Duration::from_secs(200), false, window, None));
/// assert!(!stale_if_error_allows(minute, Duration::from_secs(400), false, window, None));
/// assert!(!stale_if_error_allows(minute, Duration::from_secs(200), true, window, None));
/// ```
pub fn stale_if_error_allows(
    lifetime: Duration,
    age: Duration,
    forbids_stale: bool,
    stored_window: Duration,
    request: Option<&CacheControl>,
) -> bool {
    let requested = request
        .and_then(|cc| cc.stale_if_error)
        .map_or(Duration::ZERO, |s| Duration::from_secs(u64::from(s)));
    let window = stored_window.max(requested);
    !forbids_stale && !window.is_zero() && age <= lifetime.saturating_add(window)
}

/// Whether a stale response may be sent at once while one refresh runs in
/// the background (RFC 5861 §3): inside the `stale-while-revalidate`
/// window, never where stale answers are forbidden (`must-revalidate`,
/// `proxy-revalidate`, `s-maxage`, `no-cache`), and not for a request that
/// asked for something fresher (`max-age`, `min-fresh`, `no-cache`).
///
/// ```
/// use std::time::Duration;
/// use larder::policy::freshness::stale_while_revalidate_allows;
///
/// let (lifetime, window) = (Duration::from_secs(60), Duration::from_secs(30));
/// assert!(stale_while_revalidate_allows(lifetime, Duration::from_secs(75), false, window, None));
/// assert!(!stale_while_revalidate_allows(lifetime, Duration::from_secs(91), false, window, None));
/// assert!(!stale_while_revalidate_allows(lifetime, Duration::from_secs(75), true, window, None));
/// ```
pub fn stale_while_revalidate_allows(
    lifetime: Duration,
    age: Duration,
    forbids_stale: bool,
    window: Duration,
    request: Option<&CacheControl>,
) -> bool {
    if let Some(request) = request {
        let wants_fresher =
            request.no_cache_all() || request.max_age.is_some() || request.min_fresh.is_some();
        if wants_fresher {
            return false;
        }
    }
    !forbids_stale && !window.is_zero() && age >= lifetime && age < lifetime.saturating_add(window)
}

/// Probabilistic early expiration ("XFetch", Vattani et al., VLDB 2015):
/// refresh a fresh entry before it expires with a probability that grows
/// as expiry nears, so that one request, not a crowd at the moment of
/// expiry, recomputes it. `delta` is about how long a refresh takes (the
/// larger, the earlier); `u` is uniform in (0, 1]. Refresh when
/// `remaining <= delta * -ln(u)`.
///
/// ```
/// use std::time::Duration;
/// use larder::policy::freshness::refresh_early;
///
/// let delta = Duration::from_millis(100);
/// assert!(!refresh_early(Duration::from_secs(3600), delta, 0.5));
/// assert!(refresh_early(Duration::from_millis(10), delta, 0.5));
/// ```
pub fn refresh_early(remaining: Duration, delta: Duration, u: f64) -> bool {
    if !(u > 0.0 && u <= 1.0) {
        return false;
    }
    remaining.as_secs_f64() <= delta.as_secs_f64() * -u.ln()
}

/// The answers a stale response may replace (RFC 5861 §4): 500, 502, 503
/// and 504. A failed fetch with no answer at all counts too.
///
/// ```
/// use http::StatusCode;
/// use larder::policy::freshness::is_error_for_stale;
///
/// assert!(is_error_for_stale(StatusCode::SERVICE_UNAVAILABLE));
/// assert!(!is_error_for_stale(StatusCode::NOT_FOUND));
/// ```
pub fn is_error_for_stale(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod swr_tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn stale_while_revalidate_only_inside_the_window_5861_3() {
        let (life, win) = (secs(60), secs(30));
        assert!(
            !stale_while_revalidate_allows(life, secs(59), false, win, None),
            "still fresh"
        );
        assert!(stale_while_revalidate_allows(
            life,
            secs(60),
            false,
            win,
            None
        ));
        assert!(stale_while_revalidate_allows(
            life,
            secs(89),
            false,
            win,
            None
        ));
        assert!(!stale_while_revalidate_allows(
            life,
            secs(90),
            false,
            win,
            None
        ));
        assert!(!stale_while_revalidate_allows(
            life,
            secs(70),
            false,
            Duration::ZERO,
            None
        ));
    }

    #[test]
    fn stale_while_revalidate_never_where_stale_is_forbidden_9111_4_2_4() {
        // must-revalidate, proxy-revalidate, s-maxage and no-cache set it.
        assert!(!stale_while_revalidate_allows(
            secs(60),
            secs(70),
            true,
            secs(30),
            None
        ));
    }

    #[test]
    fn stale_while_revalidate_not_for_requests_wanting_fresher_9111_5_2_1() {
        let ask = |v: &'static str| CacheControl::parse([&http::HeaderValue::from_static(v)]);
        for value in ["max-age=0", "min-fresh=5", "no-cache"] {
            let cc = ask(value);
            assert!(
                !stale_while_revalidate_allows(secs(60), secs(70), false, secs(30), Some(&cc)),
                "{value}"
            );
        }
        let cc = ask("max-stale=1");
        assert!(stale_while_revalidate_allows(
            secs(60),
            secs(70),
            false,
            secs(30),
            Some(&cc)
        ));
    }

    #[test]
    fn refresh_early_grows_likelier_toward_expiry() {
        let delta = Duration::from_millis(200);
        // -ln(u) for u = 0.5 is ~0.69: refresh with 138 ms or less left.
        assert!(refresh_early(Duration::from_millis(100), delta, 0.5));
        assert!(!refresh_early(Duration::from_millis(200), delta, 0.5));
        // A small u (an unlucky draw) refreshes much earlier.
        assert!(refresh_early(Duration::from_millis(900), delta, 0.01));
        // u = 1 never refreshes before expiry; out-of-range u never refreshes.
        assert!(!refresh_early(Duration::from_millis(1), delta, 1.0));
        assert!(!refresh_early(Duration::ZERO, delta, 0.0));
        assert!(!refresh_early(Duration::ZERO, delta, f64::NAN));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stale_if_error_window_from_response_or_request_5861_4() {
        let (life, win) = (Duration::from_secs(60), Duration::from_secs(100));
        let age = |s| Duration::from_secs(s);
        assert!(stale_if_error_allows(life, age(160), false, win, None));
        assert!(!stale_if_error_allows(life, age(161), false, win, None));
        assert!(!stale_if_error_allows(
            life,
            age(70),
            false,
            Duration::ZERO,
            None
        ));
        let req = CacheControl {
            stale_if_error: Some(500),
            ..CacheControl::default()
        };
        assert!(stale_if_error_allows(
            life,
            age(500),
            false,
            Duration::ZERO,
            Some(&req)
        ));
        assert!(!stale_if_error_allows(
            life,
            age(600),
            false,
            win,
            Some(&req)
        ));
    }

    #[test]
    fn stale_if_error_never_when_stale_is_forbidden_9111_4_2_4() {
        let (life, win) = (Duration::from_secs(60), Duration::from_secs(100));
        assert!(!stale_if_error_allows(
            life,
            Duration::from_secs(70),
            true,
            win,
            None
        ));
    }

    #[test]
    fn only_server_errors_are_replaced_5861_4() {
        for code in [500, 502, 503, 504] {
            assert!(
                is_error_for_stale(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 404, 501, 505, 429] {
            assert!(
                !is_error_for_stale(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    use super::*;
    use http::header::{HeaderName, HeaderValue, AGE, DATE, EXPIRES, LAST_MODIFIED};
    use std::time::UNIX_EPOCH;

    /// 2023-11-14T22:13:20Z, a whole second so HTTP-dates round-trip.
    fn t(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    fn s(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    fn date(at: SystemTime) -> String {
        httpdate::fmt_http_date(at)
    }

    fn headers(fields: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn cc(line: &str) -> CacheControl {
        CacheControl::parse([&HeaderValue::from_str(line).unwrap()])
    }

    /// The lifetime of a 200 with the given fields and Cache-Control,
    /// received at t(0).
    fn lifetime(fields: &[(HeaderName, &str)], cache_control: &str) -> Option<Duration> {
        let map = headers(fields);
        freshness_lifetime(StatusCode::OK, &map, &cc(cache_control), None, t(0))
    }

    fn heuristic_lifetime_of(
        status: StatusCode,
        fields: &[(HeaderName, &str)],
        heuristic: Heuristic,
    ) -> Option<Duration> {
        freshness_lifetime(
            status,
            &headers(fields),
            &CacheControl::default(),
            Some(&heuristic),
            t(0),
        )
    }

    const TEN_PERCENT_DAY_CAP: Heuristic = Heuristic {
        percent: 10,
        cap: Duration::from_secs(24 * 3600),
    };

    #[test]
    fn expires_reads_one_valid_http_date_9111_5_3() {
        assert_eq!(expires(&HeaderMap::new(), t(0)), Expires::Absent);
        assert_eq!(
            expires(&headers(&[(EXPIRES, &date(t(60)))]), t(0)),
            Expires::At(t(60))
        );
        // RFC 9110 §5.6.7: the obsolete RFC 850 and asctime forms are accepted too.
        let obsolete = [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ];
        let expected = UNIX_EPOCH + s(784_111_777);
        for value in obsolete {
            assert_eq!(
                expires(&headers(&[(EXPIRES, value)]), t(0)),
                Expires::At(expected),
                "{value}"
            );
        }
    }

    #[test]
    fn expires_is_read_leniently_as_a_cache_should_9111_4_2() {
        // Case-insensitive, and a weekday that does not match the date
        // (1994-11-06 was a Sunday) is no reason to call it expired.
        let expected = Expires::At(UNIX_EPOCH + s(784_111_777));
        for value in [
            "SUN, 06 NOV 1994 08:49:37 GMT",
            "sun, 06 nov 1994 08:49:37 gmt",
            "Thu, 06 Nov 1994 08:49:37 GMT",
            "thursday, 06-nov-94 08:49:37 GMT",
            "Mon Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                expires(&headers(&[(EXPIRES, value)]), t(0)),
                expected,
                "{value}"
            );
        }
        // Far ahead stays far ahead: lifetime from a lowercase date.
        let later = "thu, 14 nov 2024 22:13:20 gmt";
        assert_eq!(
            lifetime(&[(DATE, &date(t(0))), (EXPIRES, later)], ""),
            Some(s(366 * 86_400))
        );
    }

    #[test]
    fn expires_in_rfc_850_form_uses_the_two_digit_year_rule_9110_5_6_7() {
        // Received in 2023: "-24" is 2024, a year ahead, not 1924.
        let got = lifetime(&[(EXPIRES, "Thursday, 14-Nov-24 22:13:20 GMT")], "");
        assert_eq!(got, Some(s(366 * 86_400)));
    }

    #[test]
    fn invalid_expires_is_already_expired_9111_5_3() {
        for value in ["0", "-1", "tomorrow", "", "Sun, 06 Nov 1994 08:49:37"] {
            assert_eq!(
                expires(&headers(&[(EXPIRES, value)]), t(0)),
                Expires::Invalid,
                "{value:?}"
            );
        }
        let non_utf8 = HeaderValue::from_bytes(b"Sun, 06 Nov 1994 \xff").unwrap();
        let mut map = HeaderMap::new();
        map.insert(EXPIRES, non_utf8);
        assert_eq!(expires(&map, t(0)), Expires::Invalid);
    }

    #[test]
    fn several_expires_lines_are_invalid_9111_5_3() {
        let same = date(t(60));
        let map = headers(&[(EXPIRES, &same), (EXPIRES, &same)]);
        assert_eq!(expires(&map, t(0)), Expires::Invalid);
    }

    #[test]
    fn http_date_is_none_when_absent_repeated_or_invalid_9110_5_6_7() {
        let one = date(t(5));
        let now = t(0);
        assert_eq!(http_date(&headers(&[(DATE, &one)]), DATE, now), Some(t(5)));
        assert_eq!(http_date(&HeaderMap::new(), DATE, now), None);
        assert_eq!(
            http_date(&headers(&[(DATE, &one), (DATE, &one)]), DATE, now),
            None
        );
        assert_eq!(
            http_date(
                &headers(&[(LAST_MODIFIED, "yesterday")]),
                LAST_MODIFIED,
                now
            ),
            None
        );
    }

    #[test]
    fn age_value_reads_delta_seconds_9111_5_1() {
        let cases = [
            ("0", Some(0)),
            ("42", Some(42)),
            ("2147483648", Some(MAX_DELTA_SECONDS)),
            ("99999999999999999999999", Some(MAX_DELTA_SECONDS)),
            ("-1", None),
            ("1.5", None),
            ("abc", None),
            ("", None),
            (" 7 ", Some(7)),
        ];
        for (value, expected) in cases {
            assert_eq!(age_value(&headers(&[(AGE, value)])), expected, "{value:?}");
        }
        assert_eq!(age_value(&HeaderMap::new()), None);
    }

    #[test]
    fn age_list_uses_first_member_9111_5_1() {
        // One line: the first member, the rest discarded.
        let one_line = [
            ("7200, 0", Some(7200)),
            ("5, 6", Some(5)),
            ("0, 7200", Some(0)),
            ("7200,0", Some(7200)),
            // Empty list elements are not members (RFC 9110 §5.6.1.2).
            (", 30, 0", Some(30)),
            (" ,,7200", Some(7200)),
            // Only the first member is read: garbage after it is discarded.
            ("60, banana", Some(60)),
            // An invalid first member: the field is ignored, not the next member used.
            ("banana, 60", None),
            ("-1, 60", None),
            ("1.5, 60", None),
            (",", None),
        ];
        for (value, expected) in one_line {
            assert_eq!(age_value(&headers(&[(AGE, value)])), expected, "{value:?}");
        }
        // Several lines are one list (RFC 9110 §5.3).
        let lines = [
            (&["7200", "0"][..], Some(7200)),
            (&["5", "5"], Some(5)),
            (&["0", "7200"], Some(0)),
            (&["", "30"], Some(30)),
            (&["7200, 1", "2"], Some(7200)),
            (&["x", "30"], None),
        ];
        for (values, expected) in lines {
            let fields: Vec<_> = values.iter().map(|v| (AGE, *v)).collect();
            assert_eq!(age_value(&headers(&fields)), expected, "{values:?}");
        }
    }

    #[test]
    fn age_list_makes_a_stale_response_stale_9111_5_1() {
        // A response fresh for an hour that already spent two hours in
        // another cache arrives stale.
        let age = age_value(&headers(&[(AGE, "7200, 0")]));
        let initial = initial_age(None, age, t(0), t(0));
        assert!(initial >= s(3600), "{initial:?}");
        let age = age_value(&headers(&[(AGE, "7200"), (AGE, "0")]));
        assert_eq!(initial_age(None, age, t(0), t(0)), s(7200));
    }

    #[test]
    fn heuristically_cacheable_statuses_9110_15_1() {
        let yes = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];
        for code in 100..600 {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                heuristically_cacheable(status),
                yes.contains(&code),
                "{code}"
            );
        }
    }

    #[test]
    fn s_maxage_beats_max_age_9111_4_2_1() {
        assert_eq!(lifetime(&[], "max-age=60, s-maxage=10"), Some(s(10)));
        assert_eq!(lifetime(&[], "s-maxage=100, max-age=10"), Some(s(100)));
    }

    #[test]
    fn max_age_beats_expires_9111_4_2_1() {
        let later = date(t(500));
        assert_eq!(lifetime(&[(EXPIRES, &later)], "max-age=60"), Some(s(60)));
        // Even an invalid or repeated Expires is ignored next to max-age.
        assert_eq!(lifetime(&[(EXPIRES, "0")], "max-age=60"), Some(s(60)));
        assert_eq!(lifetime(&[(EXPIRES, "0")], "s-maxage=60"), Some(s(60)));
    }

    #[test]
    fn expires_minus_date_9111_4_2_1() {
        let (d, e) = (date(t(100)), date(t(400)));
        assert_eq!(lifetime(&[(DATE, &d), (EXPIRES, &e)], ""), Some(s(300)));
    }

    #[test]
    fn expires_before_date_is_zero_not_negative_9111_4_2_1() {
        let (d, e) = (date(t(400)), date(t(100)));
        assert_eq!(
            lifetime(&[(DATE, &d), (EXPIRES, &e)], ""),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn expires_without_date_uses_response_time_9111_4_2_1() {
        // Received at t(0), no Date: Expires counts from arrival.
        assert_eq!(lifetime(&[(EXPIRES, &date(t(90)))], ""), Some(s(90)));
        // A repeated (so unusable) Date also falls back to arrival.
        let d = date(t(50));
        assert_eq!(
            lifetime(&[(DATE, &d), (DATE, &d), (EXPIRES, &date(t(90)))], ""),
            Some(s(90))
        );
    }

    #[test]
    fn invalid_or_repeated_expires_means_lifetime_zero_9111_5_3() {
        assert_eq!(lifetime(&[(EXPIRES, "0")], ""), Some(Duration::ZERO));
        let e = date(t(90));
        assert_eq!(
            lifetime(&[(EXPIRES, &e), (EXPIRES, &e)], ""),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn expires_lifetime_clamps_to_2_pow_31_9111_1_2_2() {
        let far = "Fri, 31 Dec 9999 23:59:59 GMT";
        assert_eq!(
            lifetime(&[(EXPIRES, far)], ""),
            Some(s(MAX_DELTA_SECONDS.into()))
        );
    }

    #[test]
    fn invalid_max_age_makes_the_response_stale_9111_4_2_1() {
        let later = date(t(500));
        assert_eq!(
            lifetime(&[(EXPIRES, &later)], "max-age=oops"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn no_explicit_freshness_and_no_heuristic_is_none_9111_4_2_2() {
        let lm = date(t(0) - s(1000));
        assert_eq!(lifetime(&[(LAST_MODIFIED, &lm)], "public"), None);
    }

    #[test]
    fn heuristic_is_a_percentage_of_date_minus_last_modified_9111_4_2_2() {
        let (d, lm) = (date(t(0)), date(t(0) - s(1000)));
        let fields = [(DATE, d.as_str()), (LAST_MODIFIED, lm.as_str())];
        let got = heuristic_lifetime_of(StatusCode::OK, &fields, TEN_PERCENT_DAY_CAP);
        assert_eq!(got, Some(s(100)));
        let quarter = Heuristic {
            percent: 25,
            ..TEN_PERCENT_DAY_CAP
        };
        assert_eq!(
            heuristic_lifetime_of(StatusCode::OK, &fields, quarter),
            Some(s(250))
        );
    }

    #[test]
    fn heuristic_without_date_uses_response_time_9111_4_2_2() {
        let lm = date(t(0) - s(1000));
        let got =
            heuristic_lifetime_of(StatusCode::OK, &[(LAST_MODIFIED, &lm)], TEN_PERCENT_DAY_CAP);
        assert_eq!(got, Some(s(100)));
    }

    #[test]
    fn heuristic_is_capped_9111_4_2_2() {
        let lm = date(t(0) - s(1_000_000));
        let capped = Heuristic {
            percent: 10,
            cap: s(60),
        };
        let got = heuristic_lifetime_of(StatusCode::OK, &[(LAST_MODIFIED, &lm)], capped);
        assert_eq!(got, Some(s(60)));
    }

    #[test]
    fn heuristic_is_never_negative_9111_4_2_2() {
        // Last-Modified after Date (a confused origin) gives no freshness.
        let (d, lm) = (date(t(0)), date(t(500)));
        let got = heuristic_lifetime_of(
            StatusCode::OK,
            &[(DATE, &d), (LAST_MODIFIED, &lm)],
            TEN_PERCENT_DAY_CAP,
        );
        assert_eq!(got, Some(Duration::ZERO));
    }

    #[test]
    fn heuristic_needs_last_modified_9111_4_2_2() {
        let d = date(t(0));
        assert_eq!(
            heuristic_lifetime_of(StatusCode::OK, &[(DATE, &d)], TEN_PERCENT_DAY_CAP),
            None
        );
        assert_eq!(
            heuristic_lifetime_of(
                StatusCode::OK,
                &[(LAST_MODIFIED, "garbage")],
                TEN_PERCENT_DAY_CAP
            ),
            None
        );
    }

    #[test]
    fn heuristic_only_for_heuristically_cacheable_statuses_9111_4_2_2() {
        let lm = date(t(0) - s(1000));
        let fields = [(LAST_MODIFIED, lm.as_str())];
        for (status, expected) in [
            (StatusCode::NOT_FOUND, Some(s(100))),
            (StatusCode::PERMANENT_REDIRECT, Some(s(100))),
            (StatusCode::FOUND, None),
            (StatusCode::INTERNAL_SERVER_ERROR, None),
            (StatusCode::CREATED, None),
        ] {
            assert_eq!(
                heuristic_lifetime_of(status, &fields, TEN_PERCENT_DAY_CAP),
                expected,
                "{status}"
            );
        }
    }

    #[test]
    fn heuristic_for_public_responses_of_any_status_9111_4_2_2() {
        // §4.2.2: heuristics apply to heuristically cacheable statuses and
        // to responses explicitly marked cacheable, such as with public.
        let lm = date(t(0) - s(1000));
        let map = headers(&[(LAST_MODIFIED, &lm)]);
        let run = |status: StatusCode, line: &str| {
            freshness_lifetime(status, &map, &cc(line), Some(&TEN_PERCENT_DAY_CAP), t(0))
        };
        for status in [
            StatusCode::FOUND,
            StatusCode::CREATED,
            StatusCode::FORBIDDEN,
        ] {
            assert_eq!(run(status, "public"), Some(s(100)), "{status}");
            assert_eq!(run(status, ""), None, "{status}");
        }
        // public without Last-Modified still has nothing to estimate from.
        let none = freshness_lifetime(
            StatusCode::FOUND,
            &HeaderMap::new(),
            &cc("public"),
            Some(&TEN_PERCENT_DAY_CAP),
            t(0),
        );
        assert_eq!(none, None);
    }

    #[test]
    fn no_cache_is_reused_with_a_zero_lifetime_9111_5_2_2_4() {
        assert_eq!(reuse_lifetime(&cc("no-cache"), s(600)), Duration::ZERO);
        assert_eq!(
            reuse_lifetime(&cc("max-age=600, No-Cache"), s(600)),
            Duration::ZERO
        );
        assert_eq!(reuse_lifetime(&cc("no-cache=\"x-a\""), s(600)), s(600));
        assert_eq!(reuse_lifetime(&cc("max-age=600"), s(600)), s(600));
        // Zero lifetime and no stale use: every reuse goes forward, even for
        // a request that accepts anything stale, even at age zero.
        let forbids = cc("no-cache").forbids_stale();
        for request in ["", "max-stale", "max-stale=99999"] {
            for age in [s(0), s(1), s(10_000)] {
                assert_eq!(
                    reuse(Duration::ZERO, age, forbids, Some(&cc(request))),
                    Reuse::Forward,
                    "{request:?} {age:?}"
                );
            }
        }
        assert_eq!(reuse(Duration::ZERO, s(0), forbids, None), Reuse::Forward);
        assert!(!stale_while_revalidate_allows(
            Duration::ZERO,
            s(1),
            forbids,
            s(60),
            None
        ));
        assert!(!stale_if_error_allows(
            Duration::ZERO,
            s(1),
            forbids,
            s(600),
            None
        ));
    }

    #[test]
    fn expires_beats_heuristic_9111_4_2_1() {
        let lm = date(t(0) - s(1000));
        let e = date(t(7));
        let got = heuristic_lifetime_of(
            StatusCode::OK,
            &[(LAST_MODIFIED, &lm), (EXPIRES, &e)],
            TEN_PERCENT_DAY_CAP,
        );
        assert_eq!(got, Some(s(7)));
        // Even an invalid Expires: it means "already expired", not "absent".
        let got = heuristic_lifetime_of(
            StatusCode::OK,
            &[(LAST_MODIFIED, &lm), (EXPIRES, "0")],
            TEN_PERCENT_DAY_CAP,
        );
        assert_eq!(got, Some(Duration::ZERO));
    }

    #[test]
    fn initial_age_formula_9111_4_2_3() {
        // (date, age, request_time, response_time) → initial age
        let cases = [
            // Nothing known and no delay: zero.
            (None, None, t(10), t(10), s(0)),
            // Age absent still charges the round trip (age_value = 0).
            (None, None, t(7), t(10), s(3)),
            // Apparent age from an older Date.
            (Some(t(0)), None, t(10), t(10), s(10)),
            // Age header plus response delay beats the apparent age.
            (Some(t(8)), Some(30), t(7), t(10), s(33)),
            // Apparent age beats a small Age (origin clock behind ours).
            (Some(t(0)), Some(2), t(10), t(10), s(10)),
            // Date in the future (clock skew): apparent age is 0, not negative.
            (Some(t(100)), None, t(10), t(10), s(0)),
            (Some(t(100)), Some(5), t(9), t(10), s(6)),
            // Request time after response time (clock stepped back): no delay.
            (None, Some(4), t(12), t(10), s(4)),
            // Clamped Age stays representable.
            (
                None,
                Some(MAX_DELTA_SECONDS),
                t(10),
                t(10),
                s(MAX_DELTA_SECONDS.into()),
            ),
        ];
        for (date, age, request_time, response_time, expected) in cases {
            assert_eq!(
                initial_age(date, age, request_time, response_time),
                expected,
                "date={date:?} age={age:?}"
            );
        }
    }

    #[test]
    fn current_age_adds_resident_time_9111_4_2_3() {
        assert_eq!(current_age(s(5), t(10), t(25)), s(20));
        // A clock that went backwards adds nothing rather than subtracting.
        assert_eq!(current_age(s(5), t(10), t(3)), s(5));
        assert_eq!(current_age(Duration::MAX, t(0), t(10)), Duration::MAX);
    }

    #[test]
    fn remaining_ttl_is_negative_when_stale_9211_2_3() {
        let cases = [
            (s(100), s(40), 60),
            (s(100), s(100), 0),
            (s(100), s(130), -30),
            (s(0), s(5), -5),
            // Rounded down: stale by half a second already reads as stale.
            (s(10), Duration::from_millis(10_500), -1),
            (s(10), Duration::from_millis(9_500), 0),
            (Duration::MAX, Duration::ZERO, i64::MAX),
            (Duration::ZERO, Duration::MAX, i64::MIN),
        ];
        for (lifetime, age, expected) in cases {
            assert_eq!(
                remaining_ttl(lifetime, age),
                expected,
                "{lifetime:?} {age:?}"
            );
        }
    }

    #[test]
    fn reuse_without_request_directives_9111_4_2() {
        // The route ignores request directives: freshness alone decides.
        let ignored = cc("max-stale, max-age=0, min-fresh=999");
        let cases = [
            (s(60), s(10), Reuse::Fresh),
            (s(60), s(60), Reuse::Forward),
            (s(60), s(61), Reuse::Forward),
        ];
        for (lifetime, age, expected) in cases {
            assert_eq!(reuse(lifetime, age, false, None), expected, "{age:?}");
        }
        // Same directives, honoured, would have changed the answers.
        assert_eq!(reuse(s(60), s(10), false, Some(&ignored)), Reuse::Forward);
    }

    #[test]
    fn reuse_request_max_age_9111_5_2_1_1() {
        let cases = [
            ("max-age=20", s(10), Reuse::Fresh),
            ("max-age=20", s(20), Reuse::Fresh),
            ("max-age=20", s(21), Reuse::Forward),
            // max-age=0 forces revalidation, even at age zero.
            ("max-age=0", s(0), Reuse::Forward),
            // max-age rejects before max-stale can accept.
            ("max-age=20, max-stale", s(100), Reuse::Forward),
            ("max-age=200, max-stale", s(100), Reuse::Stale),
        ];
        for (line, age, expected) in cases {
            assert_eq!(
                reuse(s(60), age, false, Some(&cc(line))),
                expected,
                "{line} {age:?}"
            );
        }
    }

    #[test]
    fn reuse_request_min_fresh_9111_5_2_1_3() {
        let cases = [
            ("min-fresh=10", s(49), Reuse::Fresh),
            ("min-fresh=10", s(50), Reuse::Fresh),
            ("min-fresh=10", s(51), Reuse::Forward),
            ("min-fresh=0", s(59), Reuse::Fresh),
            // Wanting freshness left excludes serving stale.
            ("min-fresh=1, max-stale", s(70), Reuse::Forward),
        ];
        for (line, age, expected) in cases {
            assert_eq!(
                reuse(s(60), age, false, Some(&cc(line))),
                expected,
                "{line} {age:?}"
            );
        }
    }

    #[test]
    fn reuse_stale_with_request_max_stale_9111_5_2_1_2() {
        // (request, age, forbids_stale) → outcome, for a 60 s lifetime.
        let cases = [
            ("", s(70), false, Reuse::Forward),
            ("max-stale", s(10_000), false, Reuse::Stale),
            ("max-stale=10", s(70), false, Reuse::Stale),
            ("max-stale=10", s(71), false, Reuse::Forward),
            ("max-stale=10", s(60), false, Reuse::Stale),
            // §4.2.4: must-revalidate and friends override max-stale.
            ("max-stale", s(70), true, Reuse::Forward),
            ("max-stale=100", s(70), true, Reuse::Forward),
            // Fresh responses are fresh, whatever forbids_stale says.
            ("max-stale", s(10), true, Reuse::Fresh),
        ];
        for (line, age, forbids_stale, expected) in cases {
            assert_eq!(
                reuse(s(60), age, forbids_stale, Some(&cc(line))),
                expected,
                "{line:?} {age:?} {forbids_stale}"
            );
        }
    }
}
