//! Conditional requests answered by the cache (RFC 9110 §13, RFC 9111 §4.3.2).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{
    CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, IF_MATCH, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// The result of evaluating a request's preconditions against the selected
/// representation (RFC 9110 §13.2.2).
///
/// ```
/// use http::{header::IF_MATCH, HeaderMap, HeaderValue, Method};
/// use larder::policy::conditional::{evaluate, Precondition};
///
/// let now = std::time::SystemTime::now();
/// let etag = HeaderValue::from_static(r#""v2""#);
/// let mut request = HeaderMap::new();
/// request.insert(IF_MATCH, HeaderValue::from_static(r#""v1""#));
/// assert_eq!(evaluate(&Method::GET, &request, Some(&etag), None, now), Precondition::Failed);
/// assert_eq!(evaluate(&Method::GET, &HeaderMap::new(), Some(&etag), None, now), Precondition::Proceed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No precondition applies, or all passed: answer normally.
    Proceed,
    /// Answer 304 Not Modified (GET/HEAD only).
    NotModified,
    /// Answer 412 Precondition Failed.
    Failed,
}

/// An entity tag (RFC 9110 §8.8.3), borrowed from a header value.
///
/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE` with
/// `etagc = %x21 / %x23-7E / obs-text`. The opaque part is kept as bytes
/// because obs-text is not UTF-8.
///
/// ```
/// use larder::policy::conditional::EntityTag;
///
/// let tag = EntityTag::parse(br#"W/"abc""#).unwrap();
/// assert!(tag.is_weak());
/// assert_eq!(tag.opaque(), b"abc");
/// assert_eq!(EntityTag::parse(b"abc"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

impl<'a> EntityTag<'a> {
    /// Parses exactly one entity tag, with no surrounding whitespace.
    /// Returns `None` for anything the grammar does not allow (a missing
    /// quote, a lowercase `w/`, a `"` or control byte inside the tag).
    ///
    /// ```
    /// use larder::policy::conditional::EntityTag;
    ///
    /// assert!(EntityTag::parse(br#""a,b""#).is_some());
    /// assert_eq!(EntityTag::parse(br#"w/"abc""#), None);
    /// assert_eq!(EntityTag::parse(br#" "abc""#), None);
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        // The weak prefix is case-sensitive: `weak = %s"W/"`.
        let (weak, quoted) = match bytes.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, bytes),
        };
        let opaque = quoted.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        opaque
            .iter()
            .all(|&b| is_etagc(b))
            .then_some(Self { weak, opaque })
    }

    /// True for a weak tag (`W/"..."`).
    ///
    /// ```
    /// use larder::policy::conditional::EntityTag;
    ///
    /// assert!(EntityTag::parse(br#"W/"1""#).unwrap().is_weak());
    /// assert!(!EntityTag::parse(br#""1""#).unwrap().is_weak());
    /// ```
    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// The bytes between the quotes.
    ///
    /// ```
    /// use larder::policy::conditional::EntityTag;
    ///
    /// assert_eq!(EntityTag::parse(br#"W/"xyz""#).unwrap().opaque(), b"xyz");
    /// ```
    pub fn opaque(&self) -> &'a [u8] {
        self.opaque
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both tags strong and their
    /// opaque parts identical. A weak tag never passes.
    ///
    /// ```
    /// use larder::policy::conditional::EntityTag;
    ///
    /// let strong = EntityTag::parse(br#""1""#).unwrap();
    /// let weak = EntityTag::parse(br#"W/"1""#).unwrap();
    /// assert!(strong.strong_eq(&strong));
    /// assert!(!strong.strong_eq(&weak));
    /// assert!(!weak.strong_eq(&weak));
    /// ```
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): opaque parts identical, whatever
    /// either tag's weakness.
    ///
    /// ```
    /// use larder::policy::conditional::EntityTag;
    ///
    /// let strong = EntityTag::parse(br#""1""#).unwrap();
    /// let weak = EntityTag::parse(br#"W/"1""#).unwrap();
    /// assert!(strong.weak_eq(&weak));
    /// assert!(!weak.weak_eq(&EntityTag::parse(br#"W/"2""#).unwrap()));
    /// ```
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

/// `etagc = %x21 / %x23-7E / obs-text`: visible bytes except `"`.
/// Note that `,` is an etagc, which is why lists are split outside quotes.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80
}

/// Evaluates `If-Match`, `If-Unmodified-Since`, `If-None-Match` and
/// `If-Modified-Since`, in that order (RFC 9110 §13.2.2), against a
/// representation with the given `etag` and `last_modified`.
///
/// `If-None-Match` uses weak comparison and `*` matches any representation;
/// `If-Match` uses strong comparison. `If-Modified-Since` applies only to
/// GET/HEAD, and is ignored when `If-None-Match` is present or its date is
/// invalid. For a stored response without `Last-Modified`, pass its `Date`
/// (or the time it was received) as `last_modified` (RFC 9111 §4.3.2).
/// Dates are read by [`date::parse`](super::date::parse), relative to `now`.
///
/// ```
/// use http::{header::IF_NONE_MATCH, HeaderMap, HeaderValue, Method};
/// use larder::policy::conditional::{evaluate, Precondition};
///
/// let now = std::time::SystemTime::now();
/// let etag = HeaderValue::from_static(r#""v1""#);
/// let mut request = HeaderMap::new();
/// request.insert(IF_NONE_MATCH, HeaderValue::from_static(r#"W/"v0", W/"v1""#));
/// // Weak comparison: W/"v1" matches the stored strong "v1".
/// assert_eq!(evaluate(&Method::GET, &request, Some(&etag), None, now), Precondition::NotModified);
/// // For other methods a match fails the request instead.
/// assert_eq!(evaluate(&Method::PUT, &request, Some(&etag), None, now), Precondition::Failed);
/// ```
///
/// Dates compare at whole-second resolution:
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{header::IF_MODIFIED_SINCE, HeaderMap, HeaderValue, Method};
/// use larder::policy::conditional::{evaluate, Precondition};
///
/// let modified = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_600);
/// let mut request = HeaderMap::new();
/// request.insert(IF_MODIFIED_SINCE, HeaderValue::from_static("Tue, 14 Nov 2023 22:13:20 GMT"));
/// assert_eq!(evaluate(&Method::GET, &request, None, Some(modified), now), Precondition::NotModified);
/// ```
pub fn evaluate(
    method: &Method,
    request: &HeaderMap,
    etag: Option<&HeaderValue>,
    last_modified: Option<SystemTime>,
    now: SystemTime,
) -> Precondition {
    let current = etag.and_then(|value| EntityTag::parse(value.as_bytes().trim_ascii()));
    // HTTP-dates have one-second resolution: the client can only have seen
    // the truncated time, so compare against that, not against sub-second
    // precision it never received.
    let last_modified = last_modified.map(whole_seconds);
    let get_or_head = method == Method::GET || method == Method::HEAD;

    // Steps 1 and 2: If-Unmodified-Since only counts without If-Match.
    if request.contains_key(IF_MATCH) {
        if !list_matches(request, IF_MATCH, current, |a, b| a.strong_eq(b)) {
            return Precondition::Failed;
        }
    } else if let (Some(date), Some(modified)) = (
        single_date(request, IF_UNMODIFIED_SINCE, now),
        last_modified,
    ) {
        if modified > date {
            return Precondition::Failed;
        }
    }

    // Steps 3 and 4: If-Modified-Since only counts without If-None-Match,
    // and only for GET/HEAD.
    if request.contains_key(IF_NONE_MATCH) {
        if list_matches(request, IF_NONE_MATCH, current, |a, b| a.weak_eq(b)) {
            return if get_or_head {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if get_or_head {
        if let (Some(date), Some(modified)) =
            (single_date(request, IF_MODIFIED_SINCE, now), last_modified)
        {
            if modified <= date {
                return Precondition::NotModified;
            }
        }
    }

    Precondition::Proceed
}

/// True when the `If-Match`/`If-None-Match` field `name` matches `current`
/// under `same`. `*` matches because the cache always has a selected
/// representation (RFC 9110 §13.1.1, §13.1.2).
fn list_matches(
    request: &HeaderMap,
    name: HeaderName,
    current: Option<EntityTag<'_>>,
    same: fn(&EntityTag<'_>, &EntityTag<'_>) -> bool,
) -> bool {
    // One list, whichever field lines its members arrived on (RFC 9110 §5.3).
    let members: Vec<&[u8]> = request
        .get_all(name)
        .iter()
        .flat_map(|line| ListMembers::new(line.as_bytes()))
        .collect();
    // `*` is only valid as the whole field value; mixed with tags it is a
    // malformed member and, like any other, matches nothing.
    if let [b"*"] = members.as_slice() {
        return true;
    }
    let Some(current) = current else {
        return false;
    };
    members
        .iter()
        .filter_map(|member| EntityTag::parse(member))
        .any(|tag| same(&tag, &current))
}

/// The non-empty, trimmed members of one comma-separated field line.
/// Commas inside a quoted string do not separate members, since an etagc may
/// be a comma.
struct ListMembers<'a> {
    rest: &'a [u8],
}

impl<'a> ListMembers<'a> {
    fn new(line: &'a [u8]) -> Self {
        Self { rest: line }
    }
}

impl<'a> Iterator for ListMembers<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let mut quoted = false;
            let end = self
                .rest
                .iter()
                .position(|&b| {
                    if b == b'"' {
                        quoted = !quoted;
                    }
                    b == b',' && !quoted
                })
                .unwrap_or(self.rest.len());
            let member = self.rest[..end].trim_ascii();
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            // Empty list elements are allowed and ignored (RFC 9110 §5.6.1.2).
            if !member.is_empty() {
                return Some(member);
            }
        }
        None
    }
}

/// The HTTP-date in field `name`, or `None` when it is absent or invalid.
/// Several field lines form a list of dates, which is invalid
/// (RFC 9110 §13.1.3, §13.1.4).
fn single_date(request: &HeaderMap, name: HeaderName, now: SystemTime) -> Option<SystemTime> {
    let mut lines = request.get_all(name).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return None;
    };
    super::date::parse(line.as_bytes(), now)
}

/// `time` truncated to a whole second since the epoch.
fn whole_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        // Before 1970 no HTTP-date can express it anyway.
        Err(_) => time,
    }
}

/// The fields a 304 copies from the 200 it stands for (RFC 9110 §15.4.5).
/// Content-Length and Content-Type are deliberately absent: a 304 has no
/// content, and a client would otherwise apply them to an empty body.
const NOT_MODIFIED_FIELDS: [HeaderName; 6] =
    [CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, VARY];

/// The header fields a 304 carries, copied from the 200 it stands for
/// (RFC 9110 §15.4.5): `Cache-Control`, `Content-Location`, `Date`, `ETag`,
/// `Expires` and `Vary`. Every field line of each is kept; everything else,
/// `Content-Length` and `Content-Type` included, is dropped.
///
/// ```
/// use http::header::{CONTENT_TYPE, ETAG};
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::conditional::not_modified_headers;
///
/// let mut full = HeaderMap::new();
/// full.insert(ETAG, HeaderValue::from_static(r#""v1""#));
/// full.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
/// let headers = not_modified_headers(&full);
/// assert_eq!(headers[ETAG], r#""v1""#);
/// assert!(!headers.contains_key(CONTENT_TYPE));
/// ```
pub fn not_modified_headers(full: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in NOT_MODIFIED_FIELDS {
        // Every field line, so a list split over lines (Vary, Cache-Control)
        // survives whole.
        for value in full.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// A strong `ETag` over the body's bytes: the same bytes give the same tag in
/// every process and across restarts (xxh3-128, hex, quoted).
///
/// ```
/// use larder::policy::conditional::content_etag;
///
/// let tag = content_etag(b"hello");
/// assert_eq!(tag, content_etag(b"hello"));
/// assert_ne!(tag, content_etag(b"hello!"));
/// assert_eq!(tag.len(), 34); // 32 hex digits between quotes
/// ```
pub fn content_etag(body: &[u8]) -> HeaderValue {
    let hash = xxhash_rust::xxh3::xxh3_128(body);
    let tag = format!("\"{hash:032x}\"");
    HeaderValue::from_str(&tag).expect("a quoted hex digest is a valid header value")
}

/// True when the request carries any precondition header field
/// (`If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`,
/// `If-Range`).
///
/// ```
/// use http::{header::IF_RANGE, HeaderMap, HeaderValue};
/// use larder::policy::conditional::has_preconditions;
///
/// let mut request = HeaderMap::new();
/// assert!(!has_preconditions(&request));
/// request.insert(IF_RANGE, HeaderValue::from_static(r#""v1""#));
/// assert!(has_preconditions(&request));
/// ```
pub fn has_preconditions(request: &HeaderMap) -> bool {
    [
        IF_MATCH,
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
    ]
    .iter()
    .any(|name| request.contains_key(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn eval(method: Method, fields: &[(&str, &str)], etag: Option<&str>) -> Precondition {
        let etag = etag.map(|tag| HeaderValue::from_str(tag).unwrap());
        evaluate(
            &method,
            &headers(fields),
            etag.as_ref(),
            Some(at(T0)),
            at(T0),
        )
    }

    use Precondition::{Failed, NotModified, Proceed};

    #[test]
    fn no_preconditions_proceed_9110_13_2_2() {
        assert_eq!(eval(Method::GET, &[], Some("\"a\"")), Proceed);
        assert_eq!(
            evaluate(&Method::GET, &HeaderMap::new(), None, None, at(T0)),
            Proceed
        );
    }

    #[test]
    fn entity_tag_grammar_9110_8_8_3() {
        // (input, Some((weak, opaque)) when it parses)
        type Case = (&'static [u8], Option<(bool, &'static [u8])>);
        let cases: &[Case] = &[
            (b"\"abc\"", Some((false, b"abc"))),
            (b"W/\"abc\"", Some((true, b"abc"))),
            (b"\"\"", Some((false, b""))),
            (b"\"a,b\"", Some((false, b"a,b"))),
            (b"\"caf\xc3\xa9\"", Some((false, b"caf\xc3\xa9"))),
            (b"abc", None),
            (b"\"abc", None),
            (b"abc\"", None),
            (b"\"", None),
            (b"w/\"abc\"", None),
            (b"W/abc", None),
            (b"\"a\"b\"", None),
            (b"\"a b\"", None),
            (b" \"abc\"", None),
            (b"", None),
        ];
        for (input, expected) in cases {
            let parsed = EntityTag::parse(input).map(|tag| (tag.is_weak(), tag.opaque()));
            assert_eq!(parsed, *expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn weak_tags_never_pass_strong_comparison_9110_8_8_3_2() {
        // The table of RFC 9110 §8.8.3.2.
        let cases = [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
        ];
        for (a, b, strong, weak) in cases {
            let a = EntityTag::parse(a.as_bytes()).unwrap();
            let b = EntityTag::parse(b.as_bytes()).unwrap();
            assert_eq!(a.strong_eq(&b), strong, "{a:?} {b:?}");
            assert_eq!(a.weak_eq(&b), weak, "{a:?} {b:?}");
        }
    }

    #[test]
    fn if_match_uses_strong_comparison_9110_13_1_1() {
        let cases = [
            ("\"a\"", Some("\"a\""), Proceed),
            ("\"b\"", Some("\"a\""), Failed),
            ("\"x\", \"a\"", Some("\"a\""), Proceed),
            // A weak tag on either side fails strong comparison.
            ("W/\"a\"", Some("\"a\""), Failed),
            ("\"a\"", Some("W/\"a\""), Failed),
            ("\"a\"", None, Failed),
            // A malformed member matches nothing.
            ("a", Some("\"a\""), Failed),
        ];
        for (if_match, etag, expected) in cases {
            for method in [Method::GET, Method::PUT] {
                let got = eval(method.clone(), &[("if-match", if_match)], etag);
                assert_eq!(got, expected, "{method} If-Match: {if_match} vs {etag:?}");
            }
        }
    }

    #[test]
    fn if_match_star_passes_with_any_representation_9110_13_1_1() {
        assert_eq!(
            eval(Method::GET, &[("if-match", "*")], Some("\"a\"")),
            Proceed
        );
        assert_eq!(
            eval(Method::GET, &[("if-match", "*")], Some("W/\"a\"")),
            Proceed
        );
        assert_eq!(eval(Method::PUT, &[("if-match", "*")], None), Proceed);
    }

    #[test]
    fn if_match_failure_beats_if_none_match_9110_13_2_2() {
        // Step 1 answers 412 before If-None-Match could answer 304.
        let fields = [("if-match", "\"other\""), ("if-none-match", "\"a\"")];
        assert_eq!(eval(Method::GET, &fields, Some("\"a\"")), Failed);
    }

    #[test]
    fn if_unmodified_since_fails_when_modified_after_9110_13_1_4() {
        let cases = [
            (date(T0 - 1), Failed),
            (date(T0), Proceed),
            (date(T0 + 1), Proceed),
        ];
        for (since, expected) in cases {
            let got = eval(Method::PUT, &[("if-unmodified-since", &since)], None);
            assert_eq!(got, expected, "If-Unmodified-Since: {since}");
        }
    }

    #[test]
    fn if_unmodified_since_ignored_with_if_match_9110_13_1_4() {
        let fields = [
            ("if-match", "\"a\""),
            ("if-unmodified-since", &date(T0 - 100)),
        ];
        assert_eq!(eval(Method::PUT, &fields, Some("\"a\"")), Proceed);
    }

    #[test]
    fn if_unmodified_since_ignored_when_invalid_9110_13_1_4() {
        let two_dates = format!("{}, {}", date(T0 - 10), date(T0 - 10));
        for since in ["yesterday", "0", "", two_dates.as_str()] {
            let got = eval(Method::PUT, &[("if-unmodified-since", since)], None);
            assert_eq!(got, Proceed, "If-Unmodified-Since: {since}");
        }
        // Two field lines are a list of dates, which is invalid too.
        let lines = [
            ("if-unmodified-since", date(T0 - 10)),
            ("if-unmodified-since", date(T0 - 10)),
        ];
        let lines: Vec<_> = lines.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(eval(Method::PUT, &lines, None), Proceed);
    }

    #[test]
    fn if_unmodified_since_ignored_without_modification_date_9110_13_1_4() {
        let map = headers(&[("if-unmodified-since", &date(T0))]);
        assert_eq!(evaluate(&Method::PUT, &map, None, None, at(T0)), Proceed);
    }

    #[test]
    fn if_none_match_uses_weak_comparison_9110_13_1_2() {
        let cases = [
            ("\"a\"", "\"a\"", NotModified),
            ("W/\"a\"", "\"a\"", NotModified),
            ("\"a\"", "W/\"a\"", NotModified),
            ("W/\"a\"", "W/\"a\"", NotModified),
            ("\"b\"", "\"a\"", Proceed),
            ("W/\"b\"", "W/\"a\"", Proceed),
        ];
        for (inm, etag, expected) in cases {
            let got = eval(Method::GET, &[("if-none-match", inm)], Some(etag));
            assert_eq!(got, expected, "If-None-Match: {inm} vs {etag}");
        }
    }

    #[test]
    fn if_none_match_list_spans_field_lines_9110_5_3() {
        let one_line = [("if-none-match", "\"x\", W/\"y\",, \"a\"")];
        assert_eq!(eval(Method::GET, &one_line, Some("\"a\"")), NotModified);
        let lines = [
            ("if-none-match", "\"x\""),
            ("if-none-match", "\"y\", \"a\""),
        ];
        assert_eq!(eval(Method::GET, &lines, Some("\"a\"")), NotModified);
        assert_eq!(eval(Method::GET, &lines, Some("\"z\"")), Proceed);
    }

    #[test]
    fn if_none_match_splits_only_outside_quotes_9110_8_8_3() {
        // `,` is an etagc: `"a,b"` is one tag, not `"a` and `b"`.
        let fields = [("if-none-match", "\"a,b\"")];
        assert_eq!(eval(Method::GET, &fields, Some("\"a,b\"")), NotModified);
        assert_eq!(eval(Method::GET, &fields, Some("\"a\"")), Proceed);
    }

    #[test]
    fn if_none_match_malformed_member_matches_nothing_9110_13_1_2() {
        let cases = ["a", "\"a", "w/\"a\"", "\"a\" junk", "W/ \"a\""];
        for inm in cases {
            let got = eval(Method::GET, &[("if-none-match", inm)], Some("\"a\""));
            assert_eq!(got, Proceed, "If-None-Match: {inm}");
        }
        // A malformed member does not spoil a well-formed one beside it.
        let fields = [("if-none-match", "bogus, \"a\"")];
        assert_eq!(eval(Method::GET, &fields, Some("\"a\"")), NotModified);
    }

    #[test]
    fn if_none_match_star_matches_any_representation_9110_13_1_2() {
        assert_eq!(
            eval(Method::GET, &[("if-none-match", "*")], Some("\"a\"")),
            NotModified
        );
        assert_eq!(
            eval(Method::HEAD, &[("if-none-match", " * ")], None),
            NotModified
        );
        // `*` is only valid alone; inside a list it matches nothing.
        let mixed = [("if-none-match", "*, \"b\"")];
        assert_eq!(eval(Method::GET, &mixed, Some("\"a\"")), Proceed);
    }

    #[test]
    fn if_none_match_on_unsafe_method_fails_9110_13_1_2() {
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let exact = eval(method.clone(), &[("if-none-match", "\"a\"")], Some("\"a\""));
            assert_eq!(exact, Failed, "{method}");
            let star = eval(method.clone(), &[("if-none-match", "*")], Some("\"a\""));
            assert_eq!(star, Failed, "{method}");
        }
    }

    #[test]
    fn if_modified_since_answers_304_when_not_modified_9110_13_1_3() {
        let cases = [
            (date(T0 - 1), Proceed),
            (date(T0), NotModified),
            (date(T0 + 1), NotModified),
        ];
        for (since, expected) in cases {
            for method in [Method::GET, Method::HEAD] {
                let got = eval(method.clone(), &[("if-modified-since", &since)], None);
                assert_eq!(got, expected, "{method} If-Modified-Since: {since}");
            }
        }
    }

    #[test]
    fn if_modified_since_compares_whole_seconds_9110_5_6_7() {
        // The client saw `Last-Modified` at one-second resolution.
        let modified = at(T0) + Duration::from_millis(700);
        let map = headers(&[("if-modified-since", &date(T0))]);
        assert_eq!(
            evaluate(&Method::GET, &map, None, Some(modified), at(T0)),
            NotModified
        );
        let map = headers(&[("if-unmodified-since", &date(T0))]);
        assert_eq!(
            evaluate(&Method::PUT, &map, None, Some(modified), at(T0)),
            Proceed
        );
    }

    #[test]
    fn if_modified_since_ignored_with_if_none_match_9110_13_1_3() {
        // If-None-Match does not match and decides alone: the date that
        // would have answered 304 is ignored.
        let fields = [
            ("if-none-match", "\"b\""),
            ("if-modified-since", &date(T0 + 10)),
        ];
        assert_eq!(eval(Method::GET, &fields, Some("\"a\"")), Proceed);
    }

    #[test]
    fn if_modified_since_ignored_on_other_methods_9110_13_1_3() {
        let since = date(T0 + 10);
        let fields = [("if-modified-since", since.as_str())];
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            assert_eq!(eval(method.clone(), &fields, None), Proceed, "{method}");
        }
    }

    #[test]
    fn if_modified_since_ignored_when_invalid_9110_13_1_3() {
        let two_dates = format!("{}, {}", date(T0 + 10), date(T0 + 10));
        for since in ["tomorrow", "-1", "", two_dates.as_str()] {
            let got = eval(Method::GET, &[("if-modified-since", since)], None);
            assert_eq!(got, Proceed, "If-Modified-Since: {since}");
        }
        let map = headers(&[("if-modified-since", &date(T0 + 10))]);
        assert_eq!(evaluate(&Method::GET, &map, None, None, at(T0)), Proceed);
    }

    #[test]
    fn if_modified_since_accepts_obsolete_date_formats_9110_5_6_7() {
        // 1994-11-06T08:49:37Z in the three formats a recipient must accept.
        let modified = Some(UNIX_EPOCH + Duration::from_secs(784_111_777));
        for since in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            let map = headers(&[("if-modified-since", since)]);
            assert_eq!(
                evaluate(&Method::GET, &map, None, modified, at(T0)),
                NotModified,
                "{since}"
            );
        }
    }

    #[test]
    fn if_modified_since_reads_dates_as_a_cache_should_9111_4_2() {
        // Any case, and a weekday that does not match the date.
        let modified = Some(UNIX_EPOCH + Duration::from_secs(784_111_777));
        for since in [
            "SUN, 06 NOV 1994 08:49:37 GMT",
            "Wed, 06 Nov 1994 08:49:37 gmt",
            "tuesday, 06-nov-94 08:49:37 GMT",
        ] {
            let map = headers(&[("if-modified-since", since)]);
            assert_eq!(
                evaluate(&Method::GET, &map, None, modified, at(T0)),
                NotModified,
                "{since}"
            );
            let map = headers(&[("if-unmodified-since", since)]);
            let earlier = modified.map(|m| m + Duration::from_secs(1));
            assert_eq!(
                evaluate(&Method::PUT, &map, None, earlier, at(T0)),
                Failed,
                "{since}"
            );
        }
    }

    #[test]
    fn garbage_bytes_never_panic_9110_13_2_2() {
        let garbage: &[&[u8]] = &[
            b"\xff\xfe\"",
            b"W/\"\xff\"",
            b"\"\"\"\"",
            b",,,,",
            b"W/",
            b"\"",
            b"*\xff",
        ];
        let names = [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
        ];
        for value in garbage {
            for name in &names {
                let mut map = HeaderMap::new();
                map.insert(name.clone(), HeaderValue::from_bytes(value).unwrap());
                let etag = HeaderValue::from_bytes(value).unwrap();
                for method in [Method::GET, Method::POST] {
                    evaluate(&method, &map, Some(&etag), Some(at(T0)), at(T0));
                    evaluate(&method, &map, None, None, at(T0));
                }
            }
        }
        // obs-text is a legal etagc and compares byte for byte.
        let mut map = HeaderMap::new();
        map.insert(IF_NONE_MATCH, HeaderValue::from_bytes(b"\"\xe9\"").unwrap());
        let etag = HeaderValue::from_bytes(b"\"\xe9\"").unwrap();
        assert_eq!(
            evaluate(&Method::GET, &map, Some(&etag), None, at(T0)),
            NotModified
        );
    }

    #[test]
    fn not_modified_carries_exactly_the_304_fields_9110_15_4_5() {
        let full = headers(&[
            ("cache-control", "max-age=60"),
            ("cache-control", "public"),
            ("content-location", "/items/1"),
            ("date", &date(T0)),
            ("etag", "\"a\""),
            ("expires", &date(T0 + 60)),
            ("vary", "accept"),
            ("vary", "accept-encoding"),
            ("content-length", "12"),
            ("content-type", "text/plain"),
            ("content-encoding", "gzip"),
            ("last-modified", &date(T0 - 60)),
            ("set-cookie", "a=b"),
            ("age", "3"),
        ]);
        let expected = headers(&[
            ("cache-control", "max-age=60"),
            ("cache-control", "public"),
            ("content-location", "/items/1"),
            ("date", &date(T0)),
            ("etag", "\"a\""),
            ("expires", &date(T0 + 60)),
            ("vary", "accept"),
            ("vary", "accept-encoding"),
        ]);
        assert_eq!(not_modified_headers(&full), expected);
        assert!(not_modified_headers(&HeaderMap::new()).is_empty());
    }

    /// Computed once from this implementation; a change means every cached
    /// ETag changes across a deploy, which clients would see as new content.
    const PINNED_HELLO_ETAG: &str = "\"905e2a3442fb4928b7e7ba08325af066\"";

    #[test]
    fn content_etag_is_stable_and_strong_9110_8_8_3() {
        let tag = content_etag(b"hello, larder");
        assert_eq!(tag, PINNED_HELLO_ETAG);
        // The published XXH3-128 test vector for empty input.
        assert_eq!(content_etag(b""), "\"99aa06d3014798d86001c324468d497f\"");
        let parsed = EntityTag::parse(tag.as_bytes()).expect("a valid entity tag");
        assert!(!parsed.is_weak());
        assert_eq!(parsed.opaque().len(), 32);
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        assert!(parsed.opaque().iter().all(lower_hex));
        assert_ne!(content_etag(b"hello, larder!"), tag);
        assert_ne!(content_etag(b"hello, larder\0"), tag);
    }

    #[test]
    fn has_preconditions_sees_every_conditional_field_9110_13_1() {
        assert!(!has_preconditions(&headers(&[(
            "cache-control",
            "no-cache"
        )])));
        for name in [
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
            "if-range",
        ] {
            assert!(has_preconditions(&headers(&[(name, "x")])), "{name}");
        }
    }
}
