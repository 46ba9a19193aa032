//! Range requests answered from a stored complete response (RFC 9110 §14).
//!
//! The cache stores whole representations only (a request with `Range`
//! that misses fetches the full one); this module decides what part of a
//! stored one a request gets. The engine slices the stored body, so a 206
//! copies nothing.

use std::ops::Range;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{DATE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::conditional::EntityTag;
use super::date;

/// What a request's `Range` asks of a stored response, once checked.
///
/// ```
/// use http::{header::RANGE, HeaderMap, HeaderValue, Method, StatusCode};
/// use larder::policy::range::{select, Ranged};
///
/// let mut request = HeaderMap::new();
/// request.insert(RANGE, HeaderValue::from_static("bytes=-3"));
/// let now = std::time::SystemTime::now();
/// let got = select(&Method::GET, &request, StatusCode::OK, &HeaderMap::new(), 10, now);
/// assert_eq!(got, Ranged::Part(7..10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    /// The whole representation, as a 200: no `Range`, one that does not
    /// apply (not GET/HEAD, not a 200, another unit, invalid, several
    /// ranges) or an `If-Range` that does not hold.
    Full,
    /// These bytes of the body (end exclusive), as a 206 with
    /// `Content-Range`.
    Part(Range<usize>),
    /// No byte of the representation is in the range: 416 with
    /// `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// One `bytes` range-spec (RFC 9110 §14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last` or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-length`: the last `length` bytes.
    Suffix(u64),
}

/// What a `Range` field value says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parsed {
    One(Spec),
    /// More than one range: answered with the whole representation (a
    /// server may ignore `Range`, RFC 9110 §14.2), rather than multipart.
    Several,
}

/// Decides how to answer `request` from a stored response with `status`,
/// header fields `stored` and a body of `len` bytes (RFC 9110 §14.2,
/// §13.1.5):
///
/// - only GET, and HEAD answered as GET would be;
/// - only a stored 200 (another status has no range semantics here);
/// - exactly one `Range` line, in `bytes` (any case), valid: an invalid
///   one is ignored (§14.2);
/// - `If-Range`, when present, must hold ([`if_range_holds`]) or the
///   whole representation is sent;
/// - several ranges get the whole representation;
/// - `first-last` (last past the end is cut to the end), `first-`, and
///   `-suffix` (longer than the body: all of it) are satisfiable when
///   they select at least one byte; otherwise 416.
///
/// Preconditions (`If-None-Match` and the rest) come first: a request they
/// answer with 304 or 412 never gets here (RFC 9110 §13.2.2). `now` places
/// two-digit years in an `If-Range` date.
///
/// ```
/// use http::{header::RANGE, HeaderMap, HeaderValue, Method, StatusCode};
/// use larder::policy::range::{select, Ranged};
///
/// let now = std::time::SystemTime::now();
/// let ask = |range: &'static str| {
///     let mut request = HeaderMap::new();
///     request.insert(RANGE, HeaderValue::from_static(range));
///     select(&Method::GET, &request, StatusCode::OK, &HeaderMap::new(), 100, now)
/// };
/// assert_eq!(ask("bytes=0-9"), Ranged::Part(0..10));
/// assert_eq!(ask("bytes=90-"), Ranged::Part(90..100));
/// assert_eq!(ask("bytes=100-"), Ranged::Unsatisfiable);
/// assert_eq!(ask("bytes=0-1, 5-6"), Ranged::Full);
/// assert_eq!(ask("pages=1-2"), Ranged::Full);
/// ```
pub fn select(
    method: &Method,
    request: &HeaderMap,
    status: StatusCode,
    stored: &HeaderMap,
    len: usize,
    now: SystemTime,
) -> Ranged {
    if !(method == Method::GET || method == Method::HEAD) || status != StatusCode::OK {
        return Ranged::Full;
    }
    let mut lines = request.get_all(RANGE).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Ranged::Full;
    };
    let Some(parsed) = parse(line.as_bytes()) else {
        return Ranged::Full;
    };
    if request.contains_key(IF_RANGE) && !if_range_holds(request, stored, now) {
        return Ranged::Full;
    }
    let Parsed::One(spec) = parsed else {
        return Ranged::Full;
    };
    let len64 = len as u64;
    match spec {
        Spec::From { first, .. } if first >= len64 => Ranged::Unsatisfiable,
        Spec::From { first, last } => {
            let end = last.map_or(len64, |last| last.saturating_add(1).min(len64));
            Ranged::Part(first as usize..end as usize)
        }
        Spec::Suffix(0) => Ranged::Unsatisfiable,
        // §14.1.3: a suffix of an empty representation is satisfiable but
        // has no byte to name in a Content-Range: the (empty) whole.
        Spec::Suffix(_) if len == 0 => Ranged::Full,
        Spec::Suffix(length) => Ranged::Part(len64.saturating_sub(length) as usize..len),
    }
}

/// Whether the request's `If-Range` holds for the stored response
/// (RFC 9110 §13.1.5), so that its `Range` may be answered:
///
/// - an entity-tag must match the stored `ETag` by strong comparison (a
///   weak tag on either side never does);
/// - an HTTP-date must be exactly the stored `Last-Modified`, and that
///   must be a strong validator: for a cache, at least 60 seconds before
///   the stored `Date` (RFC 9110 §8.8.2.2);
/// - anything else (several lines, garbage) does not hold.
///
/// ```
/// use http::header::{DATE, ETAG, IF_RANGE, LAST_MODIFIED};
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::range::if_range_holds;
///
/// let now = std::time::SystemTime::now();
/// let mut stored = HeaderMap::new();
/// stored.insert(ETAG, HeaderValue::from_static(r#""v1""#));
/// stored.insert(LAST_MODIFIED, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
/// stored.insert(DATE, HeaderValue::from_static("Mon, 07 Nov 1994 08:49:37 GMT"));
/// let with = |value: &'static str| {
///     let mut request = HeaderMap::new();
///     request.insert(IF_RANGE, HeaderValue::from_static(value));
///     if_range_holds(&request, &stored, now)
/// };
/// assert!(with(r#""v1""#));
/// assert!(!with(r#"W/"v1""#));
/// assert!(with("Sun, 06 Nov 1994 08:49:37 GMT"));
/// assert!(!with("Sun, 06 Nov 1994 08:49:38 GMT"));
/// ```
pub fn if_range_holds(request: &HeaderMap, stored: &HeaderMap, now: SystemTime) -> bool {
    let mut lines = request.get_all(IF_RANGE).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return false;
    };
    let value = line.as_bytes().trim_ascii();
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        let (Some(theirs), Some(ours)) = (
            EntityTag::parse(value),
            stored
                .get(ETAG)
                .and_then(|v| EntityTag::parse(v.as_bytes().trim_ascii())),
        ) else {
            return false;
        };
        return theirs.strong_eq(&ours);
    }
    let Some(asked) = date::parse(value, now) else {
        return false;
    };
    let single = |name| {
        let mut lines = stored.get_all(name).iter();
        match (lines.next(), lines.next()) {
            (Some(v), None) => date::parse(v.as_bytes(), now),
            _ => None,
        }
    };
    let (Some(modified), Some(sent)) = (single(LAST_MODIFIED), single(DATE)) else {
        return false;
    };
    // §8.8.2.2: a modification time is strong only if the representation
    // could not have changed twice within its second.
    asked == modified && modified + Duration::from_secs(60) <= sent
}

/// Parses a `Range` value: `None` when it is not a valid `bytes` range set
/// (then it is ignored, RFC 9110 §14.2). Stops at the second range: two
/// or more are answered alike, so a long list costs no more to read.
fn parse(value: &[u8]) -> Option<Parsed> {
    let (unit, set) = split_once(value, b'=')?;
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let mut first = None;
    // range-set = 1#range-spec: empty elements are allowed and skipped.
    for member in set.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        if member.is_empty() {
            continue;
        }
        if first.is_some() {
            return Some(Parsed::Several);
        }
        first = Some(spec(member)?);
    }
    first.map(Parsed::One)
}

/// One range-spec: `first-[last]` or `-suffix`, digits only; invalid when
/// `last < first` (RFC 9110 §14.1.1).
fn spec(member: &[u8]) -> Option<Spec> {
    let (first, last) = split_once(member, b'-')?;
    if first.is_empty() {
        return Some(Spec::Suffix(digits(last)?));
    }
    let first = digits(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    if last.is_some_and(|last| last < first) {
        return None;
    }
    Some(Spec::From { first, last })
}

/// `1*DIGIT`, saturating: a position past any body is as good as infinite.
fn digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn split_once(bytes: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == at)?;
    Some((&bytes[..i], &bytes[i + 1..]))
}

/// `Content-Range: bytes first-last/len` for a 206 of `part`.
///
/// ```
/// use larder::policy::range::content_range;
///
/// assert_eq!(content_range(&(0..10), 100), "bytes 0-9/100");
/// ```
pub fn content_range(part: &Range<usize>, len: usize) -> HeaderValue {
    let text = format!("bytes {}-{}/{len}", part.start, part.end.saturating_sub(1));
    HeaderValue::from_maybe_shared(Bytes::from(text)).expect("digits, a dash and a slash")
}

/// `Content-Range: bytes */len` for a 416.
///
/// ```
/// use larder::policy::range::unsatisfied_range;
///
/// assert_eq!(unsatisfied_range(100), "bytes */100");
/// ```
pub fn unsatisfied_range(len: usize) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(format!("bytes */{len}")))
        .expect("digits and a slash")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn map(fields: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const DATE_LATER: &str = "Mon, 07 Nov 1994 08:49:37 GMT";

    fn stored() -> HeaderMap {
        map(&[
            ("etag", "\"v1\""),
            ("last-modified", LM),
            ("date", DATE_LATER),
        ])
    }

    fn range(value: &str, len: usize) -> Ranged {
        let request = map(&[("range", value)]);
        select(
            &Method::GET,
            &request,
            StatusCode::OK,
            &stored(),
            len,
            now(),
        )
    }

    #[test]
    fn single_byte_ranges_9110_14_1_2() {
        let cases = [
            ("bytes=0-0", Ranged::Part(0..1)),
            ("bytes=0-9", Ranged::Part(0..10)),
            ("bytes=10-19", Ranged::Part(10..20)),
            ("bytes=99-99", Ranged::Part(99..100)),
            // A last position past the end is cut to the end.
            ("bytes=90-1000", Ranged::Part(90..100)),
            ("bytes=0-99999999999999999999999", Ranged::Part(0..100)),
            // Open-ended.
            ("bytes=90-", Ranged::Part(90..100)),
            ("bytes=0-", Ranged::Part(0..100)),
            // Suffixes; one longer than the body is all of it.
            ("bytes=-1", Ranged::Part(99..100)),
            ("bytes=-10", Ranged::Part(90..100)),
            ("bytes=-100", Ranged::Part(0..100)),
            ("bytes=-1000", Ranged::Part(0..100)),
            // The unit is case-insensitive; whitespace around members is OWS.
            ("BYTES=0-9", Ranged::Part(0..10)),
            ("Bytes= 0-9 ", Ranged::Part(0..10)),
            ("bytes=0-9,", Ranged::Part(0..10)),
            ("bytes=, 0-9", Ranged::Part(0..10)),
        ];
        for (value, expected) in cases {
            assert_eq!(range(value, 100), expected, "{value}");
        }
    }

    #[test]
    fn unsatisfiable_ranges_9110_15_5_17() {
        for value in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=1000-",
            "bytes=-0",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(range(value, 100), Ranged::Unsatisfiable, "{value}");
        }
        // An empty representation: no int-range is satisfiable; a suffix
        // is, and gets the (empty) whole.
        assert_eq!(range("bytes=0-", 0), Ranged::Unsatisfiable);
        assert_eq!(range("bytes=0-0", 0), Ranged::Unsatisfiable);
        assert_eq!(range("bytes=-5", 0), Ranged::Full);
    }

    #[test]
    fn invalid_or_foreign_ranges_are_ignored_9110_14_2() {
        for value in [
            "bytes=9-0",
            "bytes=",
            "bytes=,",
            "bytes=a-b",
            "bytes=0-a",
            "bytes=--1",
            "bytes=-",
            "bytes=1",
            "bytes=+1-2",
            "bytes=0 - 9",
            "bytes 0-9",
            "bytes =0-9",
            "items=0-9",
            "0-9",
            "",
            "bytes=0-9, x",
        ] {
            assert_eq!(range(value, 100), Ranged::Full, "{value:?}");
        }
        // Two Range lines are not one range.
        let request = map(&[("range", "bytes=0-1"), ("range", "bytes=2-3")]);
        let got = select(
            &Method::GET,
            &request,
            StatusCode::OK,
            &stored(),
            100,
            now(),
        );
        assert_eq!(got, Ranged::Full);
    }

    #[test]
    fn several_ranges_get_the_whole_representation_9110_14_2() {
        for value in [
            "bytes=0-1,5-6",
            "bytes=0-1, -5",
            "bytes=0-0,0-0",
            "bytes=500-,600-",
        ] {
            assert_eq!(range(value, 100), Ranged::Full, "{value}");
        }
        // However long the list, only two members are read.
        let long = format!("bytes=0-1{}", ",2-3".repeat(10_000));
        assert_eq!(range(&long, 100), Ranged::Full);
    }

    #[test]
    fn only_get_and_head_of_a_200_9110_14_2() {
        let request = map(&[("range", "bytes=0-9")]);
        let ask = |method: Method, status: StatusCode| {
            select(&method, &request, status, &stored(), 100, now())
        };
        assert_eq!(ask(Method::GET, StatusCode::OK), Ranged::Part(0..10));
        assert_eq!(ask(Method::HEAD, StatusCode::OK), Ranged::Part(0..10));
        for method in [Method::POST, Method::PUT, Method::OPTIONS] {
            assert_eq!(
                ask(method.clone(), StatusCode::OK),
                Ranged::Full,
                "{method}"
            );
        }
        for status in [
            StatusCode::NOT_FOUND,
            StatusCode::MOVED_PERMANENTLY,
            StatusCode::NO_CONTENT,
        ] {
            assert_eq!(ask(Method::GET, status), Ranged::Full, "{status}");
        }
        // No Range at all.
        let none = select(
            &Method::GET,
            &HeaderMap::new(),
            StatusCode::OK,
            &stored(),
            100,
            now(),
        );
        assert_eq!(none, Ranged::Full);
    }

    #[test]
    fn if_range_with_a_strong_entity_tag_9110_13_1_5() {
        let ask = |if_range: &str, etag: &str| {
            let request = map(&[("range", "bytes=0-9"), ("if-range", if_range)]);
            let stored = map(&[("etag", etag)]);
            select(&Method::GET, &request, StatusCode::OK, &stored, 100, now())
        };
        assert_eq!(ask("\"v1\"", "\"v1\""), Ranged::Part(0..10));
        assert_eq!(ask(" \"v1\" ", "\"v1\""), Ranged::Part(0..10));
        // Strong comparison: a weak tag on either side never matches.
        assert_eq!(ask("W/\"v1\"", "\"v1\""), Ranged::Full);
        assert_eq!(ask("\"v1\"", "W/\"v1\""), Ranged::Full);
        assert_eq!(ask("W/\"v1\"", "W/\"v1\""), Ranged::Full);
        assert_eq!(ask("\"v2\"", "\"v1\""), Ranged::Full);
        assert_eq!(ask("\"v1", "\"v1\""), Ranged::Full);
        // If-Range does not rescue a range that is not satisfiable or not
        // applied: it only decides between the range and the whole.
        let request = map(&[("range", "bytes=500-"), ("if-range", "\"v2\"")]);
        let got = select(
            &Method::GET,
            &request,
            StatusCode::OK,
            &stored(),
            100,
            now(),
        );
        assert_eq!(got, Ranged::Full);
        let request = map(&[("range", "bytes=500-"), ("if-range", "\"v1\"")]);
        let got = select(
            &Method::GET,
            &request,
            StatusCode::OK,
            &stored(),
            100,
            now(),
        );
        assert_eq!(got, Ranged::Unsatisfiable);
    }

    #[test]
    fn if_range_with_the_exact_strong_date_9110_13_1_5() {
        let ask = |if_range: &str, stored: &HeaderMap| {
            let request = map(&[("range", "bytes=0-9"), ("if-range", if_range)]);
            select(&Method::GET, &request, StatusCode::OK, stored, 100, now())
        };
        let dated = stored();
        assert_eq!(ask(LM, &dated), Ranged::Part(0..10));
        // The same instant in another form, or another case, is that date.
        assert_eq!(
            ask("Sunday, 06-Nov-94 08:49:37 GMT", &dated),
            Ranged::Part(0..10)
        );
        assert_eq!(
            ask("sun, 06 nov 1994 08:49:37 gmt", &dated),
            Ranged::Part(0..10)
        );
        // Not exactly it: earlier, later, or no date at all.
        assert_eq!(ask("Sun, 06 Nov 1994 08:49:36 GMT", &dated), Ranged::Full);
        assert_eq!(ask("Sun, 06 Nov 1994 08:49:38 GMT", &dated), Ranged::Full);
        assert_eq!(ask("yesterday", &dated), Ranged::Full);
        // §8.8.2.2: Last-Modified less than 60 s before Date is weak.
        let close = map(&[
            ("last-modified", LM),
            ("date", "Sun, 06 Nov 1994 08:50:36 GMT"),
        ]);
        assert_eq!(ask(LM, &close), Ranged::Full);
        let minute = map(&[
            ("last-modified", LM),
            ("date", "Sun, 06 Nov 1994 08:50:37 GMT"),
        ]);
        assert_eq!(ask(LM, &minute), Ranged::Part(0..10));
        // Without Date, or without Last-Modified, there is nothing strong.
        assert_eq!(ask(LM, &map(&[("last-modified", LM)])), Ranged::Full);
        assert_eq!(ask(LM, &map(&[("date", DATE_LATER)])), Ranged::Full);
    }

    #[test]
    fn if_range_on_several_lines_does_not_hold_9110_13_1_5() {
        let request = map(&[
            ("range", "bytes=0-9"),
            ("if-range", "\"v1\""),
            ("if-range", "\"v1\""),
        ]);
        let got = select(
            &Method::GET,
            &request,
            StatusCode::OK,
            &stored(),
            100,
            now(),
        );
        assert_eq!(got, Ranged::Full);
    }

    #[test]
    fn content_range_values_9110_14_4() {
        assert_eq!(content_range(&(0..1), 1), "bytes 0-0/1");
        assert_eq!(content_range(&(90..100), 100), "bytes 90-99/100");
        assert_eq!(unsatisfied_range(0), "bytes */0");
    }

    #[test]
    fn garbage_never_panics() {
        let values: &[&[u8]] = &[b"bytes=\xff-", b"\xff=0-1", b"bytes=0-1\xff", b"=", b"=-"];
        for value in values {
            let mut request = HeaderMap::new();
            request.insert(RANGE, HeaderValue::from_bytes(value).unwrap());
            request.insert(IF_RANGE, HeaderValue::from_bytes(value).unwrap());
            let _ = select(
                &Method::GET,
                &request,
                StatusCode::OK,
                &stored(),
                100,
                now(),
            );
        }
    }
}
