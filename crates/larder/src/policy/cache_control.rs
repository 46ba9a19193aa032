//! Cache-Control parsing for requests and responses (RFC 9111 §5.2, RFC 5861).
//!
//! The parser is deliberately lenient about syntax and strict about meaning:
//! it never fails and never panics, it skips what it cannot understand, and
//! when directives repeat or conflict it keeps the most restrictive reading,
//! because a cache that errs towards "stale" or "private" only costs a fetch,
//! while one that errs the other way can serve the wrong content.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};

/// The largest delta-seconds value, 2^31; larger ones clamp to it (RFC 9111 §1.2.2).
///
/// ```
/// use http::HeaderValue;
/// use larder::policy::cache_control::MAX_DELTA_SECONDS;
/// use larder::policy::CacheControl;
///
/// let cc = CacheControl::parse([&HeaderValue::from_static("max-age=99999999999")]);
/// assert_eq!(cc.max_age, Some(MAX_DELTA_SECONDS));
/// assert_eq!(MAX_DELTA_SECONDS, 2_147_483_648);
/// ```
pub const MAX_DELTA_SECONDS: u32 = 1 << 31;

/// A field-name list argument of `no-cache` or `private` (RFC 9111 §5.2.2.4, §5.2.2.7).
///
/// Names are lowercased; an argument that names no valid field reads as
/// [`FieldNames::All`], the restrictive choice.
///
/// ```
/// use http::{header::SET_COOKIE, HeaderValue};
/// use larder::policy::{CacheControl, FieldNames};
///
/// let cc = CacheControl::parse([&HeaderValue::from_static(r#"private="Set-Cookie", no-cache"#)]);
/// assert_eq!(cc.private, Some(FieldNames::Only(vec![SET_COOKIE])));
/// assert_eq!(cc.no_cache, Some(FieldNames::All));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldNames {
    /// The directive without an argument: it applies to the whole response.
    All,
    /// `no-cache="a, b"`: only these fields are affected (lowercased).
    Only(Vec<HeaderName>),
}

/// The argument of the `max-stale` request directive (RFC 9111 §5.2.1.2).
///
/// When it repeats, a bounded occurrence beats an unbounded one and the
/// smaller bound wins.
///
/// ```
/// use http::HeaderValue;
/// use larder::policy::{CacheControl, MaxStale};
///
/// let parse = |line| CacheControl::parse([&HeaderValue::from_static(line)]).max_stale;
/// assert_eq!(parse("max-stale"), Some(MaxStale::Any));
/// assert_eq!(parse("max-stale, max-stale=30"), Some(MaxStale::Seconds(30)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: any staleness is acceptable.
    Any,
    /// `max-stale=N`.
    Seconds(u32),
}

/// Parsed Cache-Control directives, request or response.
///
/// Absent directives are `None`/`false`. Durations are in seconds. Parsing
/// never fails: unknown directives are ignored, and a directive that repeats
/// keeps its most restrictive value.
///
/// ```
/// use http::HeaderValue;
/// use larder::policy::CacheControl;
///
/// let cc = CacheControl::parse([&HeaderValue::from_static("public, max-age=60, max-age=30")]);
/// assert!(cc.public);
/// assert_eq!(cc.max_age, Some(30));
/// assert_eq!(cc.s_maxage, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age=N` (request §5.2.1.1, response §5.2.2.1). An invalid or
    /// missing argument reads as 0.
    pub max_age: Option<u32>,
    /// `s-maxage=N` (response, shared caches only, §5.2.2.10). An invalid or
    /// missing argument reads as 0.
    pub s_maxage: Option<u32>,
    /// `max-stale[=N]` (request, §5.2.1.2).
    pub max_stale: Option<MaxStale>,
    /// `min-fresh=N` (request, §5.2.1.3).
    pub min_fresh: Option<u32>,
    /// `no-cache[="fields"]` (request §5.2.1.4, response §5.2.2.4); also set
    /// by `Pragma: no-cache` in [`CacheControl::from_request`].
    pub no_cache: Option<FieldNames>,
    /// `no-store` (request §5.2.1.5, response §5.2.2.5).
    pub no_store: bool,
    /// `no-transform` (request §5.2.1.6, response §5.2.2.6).
    pub no_transform: bool,
    /// `only-if-cached` (request, §5.2.1.7).
    pub only_if_cached: bool,
    /// `must-revalidate` (response, §5.2.2.2).
    pub must_revalidate: bool,
    /// `proxy-revalidate` (response, §5.2.2.8).
    pub proxy_revalidate: bool,
    /// `must-understand` (response, §5.2.2.3).
    pub must_understand: bool,
    /// `private[="fields"]` (response, §5.2.2.7).
    pub private: Option<FieldNames>,
    /// `public` (response, §5.2.2.9).
    pub public: bool,
    /// `immutable` (response, RFC 8246).
    pub immutable: bool,
    /// `stale-while-revalidate=N` (response, RFC 5861 §3).
    pub stale_while_revalidate: Option<u32>,
    /// `stale-if-error=N` (request or response, RFC 5861 §4).
    pub stale_if_error: Option<u32>,
    /// The directives came from a targeted field (RFC 9213), which replaces
    /// `Expires` as well as `Cache-Control` for the cache's own decision.
    pub targeted: bool,
}

impl CacheControl {
    /// Parses every `Cache-Control` field line in `headers` as one list.
    ///
    /// ```
    /// use http::{header::CACHE_CONTROL, HeaderMap, HeaderValue};
    /// use larder::policy::CacheControl;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.append(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    /// headers.append(CACHE_CONTROL, HeaderValue::from_static("no-transform"));
    /// let cc = CacheControl::from_headers(&headers);
    /// assert_eq!(cc.max_age, Some(60));
    /// assert!(cc.no_transform);
    /// ```
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::parse(headers.get_all(http::header::CACHE_CONTROL))
    }

    /// Parses a request's directives: `Cache-Control`, and `Pragma: no-cache`
    /// as `no-cache` when no `Cache-Control` is present (RFC 9111 §5.4).
    ///
    /// ```
    /// use http::{header::PRAGMA, HeaderMap, HeaderValue};
    /// use larder::policy::CacheControl;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    /// assert!(CacheControl::from_request(&headers).no_cache_all());
    /// // Responses do not read Pragma.
    /// assert!(!CacheControl::from_headers(&headers).no_cache_all());
    /// ```
    pub fn from_request(headers: &HeaderMap) -> Self {
        let mut cc = Self::from_headers(headers);
        // §5.4: Pragma is only a fallback for HTTP/1.0 clients; any
        // Cache-Control field, even one we cannot parse, takes over.
        if !headers.contains_key(http::header::CACHE_CONTROL) && pragma_no_cache(headers) {
            cc.no_cache = Some(FieldNames::All);
        }
        cc
    }

    /// Parses the given field lines as one list.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use larder::policy::CacheControl;
    ///
    /// let line = HeaderValue::from_static("Max-Age=60, stale-while-revalidate=30");
    /// let cc = CacheControl::parse([&line]);
    /// assert_eq!(cc.max_age, Some(60));
    /// assert_eq!(cc.stale_while_revalidate, Some(30));
    /// ```
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Self {
        let mut cc = Self::default();
        for value in values {
            // Quoted strings never span field lines, so each line is split
            // on its own and the directives are merged into one set.
            for directive in directives(value.as_bytes()) {
                cc.apply(directive);
            }
        }
        cc
    }

    /// True when `no-cache` is present without a field-name list.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use larder::policy::CacheControl;
    ///
    /// let parse = |line| CacheControl::parse([&HeaderValue::from_static(line)]);
    /// assert!(parse("no-cache").no_cache_all());
    /// assert!(!parse(r#"no-cache="set-cookie""#).no_cache_all());
    /// ```
    pub fn no_cache_all(&self) -> bool {
        matches!(self.no_cache, Some(FieldNames::All))
    }

    /// True when `private` is present without a field-name list.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use larder::policy::CacheControl;
    ///
    /// let parse = |line| CacheControl::parse([&HeaderValue::from_static(line)]);
    /// assert!(parse("private, max-age=60").private_all());
    /// assert!(!parse(r#"private="x-user""#).private_all());
    /// ```
    pub fn private_all(&self) -> bool {
        matches!(self.private, Some(FieldNames::All))
    }

    /// True when the directives forbid serving the response stale
    /// (RFC 9111 §4.2.4: `must-revalidate`, `proxy-revalidate`, `s-maxage`,
    /// or `no-cache` without a field-name list).
    ///
    /// ```
    /// use http::HeaderValue;
    /// use larder::policy::CacheControl;
    ///
    /// let parse = |line| CacheControl::parse([&HeaderValue::from_static(line)]);
    /// assert!(parse("max-age=60, must-revalidate").forbids_stale());
    /// assert!(parse("s-maxage=60").forbids_stale());
    /// assert!(!parse("max-age=60, stale-if-error=300").forbids_stale());
    /// ```
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate
            || self.proxy_revalidate
            || self.s_maxage.is_some()
            || self.no_cache_all()
    }

    /// Merges one directive into the set, keeping the most restrictive
    /// reading when it repeats.
    fn apply(&mut self, directive: Directive<'_>) {
        let Some(kind) = Kind::of(directive.name) else {
            return; // §5.2.3: unknown directives are ignored.
        };
        let arg = &directive.arg;
        match kind {
            // A freshness limit we cannot read is treated as "already stale".
            Kind::MaxAge => keep_min(&mut self.max_age, Some(delta_seconds(arg).unwrap_or(0))),
            Kind::SMaxage => keep_min(&mut self.s_maxage, Some(delta_seconds(arg).unwrap_or(0))),
            // These only ever relax freshness, so an unreadable one is dropped.
            Kind::StaleWhileRevalidate => {
                keep_min(&mut self.stale_while_revalidate, delta_seconds(arg))
            }
            Kind::StaleIfError => keep_min(&mut self.stale_if_error, delta_seconds(arg)),
            Kind::MaxStale => self.apply_max_stale(arg),
            // min-fresh tightens freshness, so the largest is the most
            // restrictive. An unreadable one is dropped rather than guessed:
            // it only ever concerns the request that sent it.
            Kind::MinFresh => {
                if let Some(n) = delta_seconds(arg) {
                    self.min_fresh = Some(self.min_fresh.map_or(n, |m| m.max(n)));
                }
            }
            Kind::NoCache => merge_field_names(&mut self.no_cache, field_names(arg)),
            Kind::Private => merge_field_names(&mut self.private, field_names(arg)),
            // Flags hold whatever their (undefined) argument says.
            Kind::NoStore => self.no_store = true,
            Kind::NoTransform => self.no_transform = true,
            Kind::OnlyIfCached => self.only_if_cached = true,
            Kind::MustRevalidate => self.must_revalidate = true,
            Kind::ProxyRevalidate => self.proxy_revalidate = true,
            Kind::MustUnderstand => self.must_understand = true,
            Kind::Public => self.public = true,
            Kind::Immutable => self.immutable = true,
        }
    }

    /// `max-stale` alone accepts any staleness; a bounded occurrence is
    /// more restrictive and wins; an unreadable bound is dropped.
    fn apply_max_stale(&mut self, arg: &Arg<'_>) {
        let new = match arg {
            Arg::Missing => MaxStale::Any,
            _ => match delta_seconds(arg) {
                Some(n) => MaxStale::Seconds(n),
                None => return,
            },
        };
        self.max_stale = Some(match (self.max_stale, new) {
            (Some(MaxStale::Seconds(a)), MaxStale::Seconds(b)) => MaxStale::Seconds(a.min(b)),
            (Some(MaxStale::Seconds(a)), MaxStale::Any) => MaxStale::Seconds(a),
            (None | Some(MaxStale::Any), new) => new,
        });
    }
}

/// The directives larder understands.
#[derive(Debug, Clone, Copy)]
enum Kind {
    MaxAge,
    SMaxage,
    MaxStale,
    MinFresh,
    NoCache,
    NoStore,
    NoTransform,
    OnlyIfCached,
    MustRevalidate,
    ProxyRevalidate,
    MustUnderstand,
    Private,
    Public,
    Immutable,
    StaleWhileRevalidate,
    StaleIfError,
}

impl Kind {
    const NAMES: [(&'static str, Kind); 16] = [
        ("max-age", Kind::MaxAge),
        ("s-maxage", Kind::SMaxage),
        ("max-stale", Kind::MaxStale),
        ("min-fresh", Kind::MinFresh),
        ("no-cache", Kind::NoCache),
        ("no-store", Kind::NoStore),
        ("no-transform", Kind::NoTransform),
        ("only-if-cached", Kind::OnlyIfCached),
        ("must-revalidate", Kind::MustRevalidate),
        ("proxy-revalidate", Kind::ProxyRevalidate),
        ("must-understand", Kind::MustUnderstand),
        ("private", Kind::Private),
        ("public", Kind::Public),
        ("immutable", Kind::Immutable),
        ("stale-while-revalidate", Kind::StaleWhileRevalidate),
        ("stale-if-error", Kind::StaleIfError),
    ];

    /// Directive names are case-insensitive (RFC 9111 §5.2).
    fn of(name: &[u8]) -> Option<Kind> {
        Self::NAMES
            .iter()
            .find(|(known, _)| known.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, kind)| kind)
    }
}

/// One list element: `token [ "=" ( token / quoted-string ) ]`.
#[derive(Debug)]
struct Directive<'a> {
    name: &'a [u8],
    arg: Arg<'a>,
}

/// A directive's argument, with quoted strings already unescaped.
#[derive(Debug)]
enum Arg<'a> {
    /// No `=` at all.
    Missing,
    /// A token, or the content of a well-formed quoted string.
    Value(Cow<'a, [u8]>),
    /// Something follows the name that is neither a token nor a
    /// quoted string (`max-age=`, `max-age=1 2`, `private="unterminated`).
    Invalid,
}

/// The directives of one field line; elements without a name are skipped.
fn directives(line: &[u8]) -> impl Iterator<Item = Directive<'_>> {
    split_list(line).filter_map(parse_element)
}

/// Splits a field line on the commas that are not inside a quoted string.
/// An unterminated quoted string runs to the end of the line.
fn split_list(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let current = rest?;
        let end = top_level_comma(current);
        match end {
            Some(i) => {
                rest = Some(&current[i + 1..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// The index of the first comma outside a quoted string, if any.
fn top_level_comma(bytes: &[u8]) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        match (quoted, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => quoted = false,
            (false, _, b'"') => quoted = true,
            (false, _, b',') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Parses one list element; `None` for an empty or nameless one.
fn parse_element(element: &[u8]) -> Option<Directive<'_>> {
    let element = trim_ows(element);
    let name_len = element.iter().take_while(|&&b| is_tchar(b)).count();
    if name_len == 0 {
        return None;
    }
    let (name, rest) = element.split_at(name_len);
    // Whitespace around `=` is not in the grammar, but real senders emit
    // it (`max-age = 60`), and reading it is less surprising than turning
    // the directive into `max-age=0`.
    let arg = match trim_ows(rest).split_first() {
        None => Arg::Missing,
        Some((b'=', value)) => parse_arg(trim_ows(value)),
        Some(_) => Arg::Invalid,
    };
    Some(Directive { name, arg })
}

fn parse_arg(value: &[u8]) -> Arg<'_> {
    match value.first() {
        Some(b'"') => unquote(value).map_or(Arg::Invalid, Arg::Value),
        Some(_) if value.iter().all(|&b| is_tchar(b)) => Arg::Value(Cow::Borrowed(value)),
        _ => Arg::Invalid,
    }
}

/// The content of a quoted string (RFC 9110 §5.6.4) that must make up all of
/// `value`; `None` when unterminated or followed by anything.
fn unquote(value: &[u8]) -> Option<Cow<'_, [u8]>> {
    let body = value.strip_prefix(b"\"")?;
    let mut out = Vec::with_capacity(body.len());
    let mut escaped = false;
    for (i, &b) in body.iter().enumerate() {
        match (escaped, b) {
            (true, _) => {
                out.push(b);
                escaped = false;
            }
            (false, b'\\') => escaped = true,
            (false, b'"') => return (i + 1 == body.len()).then_some(Cow::Owned(out)),
            (false, _) => out.push(b),
        }
    }
    None
}

/// Reads delta-seconds (`1*DIGIT`, RFC 9111 §1.2.2), clamping at
/// [`MAX_DELTA_SECONDS`]; `None` when missing or not all digits.
fn delta_seconds(arg: &Arg<'_>) -> Option<u32> {
    let Arg::Value(digits) = arg else {
        return None;
    };
    parse_delta_seconds(digits)
}

/// Parses `delta-seconds` (1*DIGIT, RFC 9111 §1.2.2), clamping values past
/// 2^31 to it; `None` for anything else. `Age` uses the same rule.
pub(crate) fn parse_delta_seconds(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let cap = u64::from(MAX_DELTA_SECONDS);
    // Clamping at every step keeps the accumulator far from u64 overflow.
    let n = digits
        .iter()
        .fold(0u64, |n, &d| (n * 10 + u64::from(d - b'0')).min(cap));
    u32::try_from(n).ok()
}

/// Reads the field-name list of `no-cache` or `private`.
///
/// Invalid names are skipped. Without an argument the directive covers the
/// whole response; the same goes for an argument we cannot read or one that
/// names nothing valid, since guessing a narrower scope would be unsafe.
fn field_names(arg: &Arg<'_>) -> FieldNames {
    let Arg::Value(list) = arg else {
        return FieldNames::All;
    };
    let mut names: Vec<HeaderName> = Vec::new();
    for name in list.split(|&b| b == b',').map(trim_ows) {
        // from_bytes lowercases, so `Set-Cookie` and `set-cookie` are one name.
        if let Ok(name) = HeaderName::from_bytes(name) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    if names.is_empty() {
        FieldNames::All
    } else {
        FieldNames::Only(names)
    }
}

/// An unqualified occurrence wins; qualified lists from repeats merge.
fn merge_field_names(current: &mut Option<FieldNames>, new: FieldNames) {
    *current = Some(match (current.take(), new) {
        (Some(FieldNames::Only(mut have)), FieldNames::Only(more)) => {
            for name in more {
                if !have.contains(&name) {
                    have.push(name);
                }
            }
            FieldNames::Only(have)
        }
        (None, new) => new,
        (Some(FieldNames::All), _) | (Some(FieldNames::Only(_)), FieldNames::All) => {
            FieldNames::All
        }
    });
}

/// Keeps the smaller of two optional limits.
fn keep_min(current: &mut Option<u32>, new: Option<u32>) {
    if let Some(n) = new {
        *current = Some(current.map_or(n, |c| c.min(n)));
    }
}

/// `Pragma: no-cache` anywhere in the Pragma list (RFC 9111 §5.4).
fn pragma_no_cache(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::PRAGMA)
        .iter()
        .flat_map(|line| directives(line.as_bytes()))
        .any(|d| d.name.eq_ignore_ascii_case(b"no-cache"))
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Strips optional whitespace (SP / HTAB) from both ends.
fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(line: &str) -> CacheControl {
        CacheControl::parse([&HeaderValue::from_str(line).unwrap()])
    }

    fn cc_bytes(line: &[u8]) -> CacheControl {
        CacheControl::parse([&HeaderValue::from_bytes(line).unwrap()])
    }

    fn names(list: &[&'static str]) -> FieldNames {
        FieldNames::Only(list.iter().map(|n| HeaderName::from_static(n)).collect())
    }

    fn request(fields: &[(&str, &str)]) -> CacheControl {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        CacheControl::from_request(&headers)
    }

    #[test]
    fn every_directive_is_recognised_9111_5_2_and_5861() {
        let cases: &[(&str, CacheControl)] = &[
            (
                "max-age=60",
                CacheControl {
                    max_age: Some(60),
                    ..Default::default()
                },
            ),
            (
                "s-maxage=30",
                CacheControl {
                    s_maxage: Some(30),
                    ..Default::default()
                },
            ),
            (
                "max-stale",
                CacheControl {
                    max_stale: Some(MaxStale::Any),
                    ..Default::default()
                },
            ),
            (
                "max-stale=9",
                CacheControl {
                    max_stale: Some(MaxStale::Seconds(9)),
                    ..Default::default()
                },
            ),
            (
                "min-fresh=5",
                CacheControl {
                    min_fresh: Some(5),
                    ..Default::default()
                },
            ),
            (
                "no-cache",
                CacheControl {
                    no_cache: Some(FieldNames::All),
                    ..Default::default()
                },
            ),
            (
                "no-store",
                CacheControl {
                    no_store: true,
                    ..Default::default()
                },
            ),
            (
                "no-transform",
                CacheControl {
                    no_transform: true,
                    ..Default::default()
                },
            ),
            (
                "only-if-cached",
                CacheControl {
                    only_if_cached: true,
                    ..Default::default()
                },
            ),
            (
                "must-revalidate",
                CacheControl {
                    must_revalidate: true,
                    ..Default::default()
                },
            ),
            (
                "proxy-revalidate",
                CacheControl {
                    proxy_revalidate: true,
                    ..Default::default()
                },
            ),
            (
                "must-understand",
                CacheControl {
                    must_understand: true,
                    ..Default::default()
                },
            ),
            (
                "private",
                CacheControl {
                    private: Some(FieldNames::All),
                    ..Default::default()
                },
            ),
            (
                "public",
                CacheControl {
                    public: true,
                    ..Default::default()
                },
            ),
            (
                "immutable",
                CacheControl {
                    immutable: true,
                    ..Default::default()
                },
            ),
            (
                "stale-while-revalidate=7",
                CacheControl {
                    stale_while_revalidate: Some(7),
                    ..Default::default()
                },
            ),
            (
                "stale-if-error=8",
                CacheControl {
                    stale_if_error: Some(8),
                    ..Default::default()
                },
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(&cc(line), expected, "{line}");
        }
    }

    #[test]
    fn directive_names_are_case_insensitive_9111_5_2() {
        let parsed = cc("MAX-AGE=5, No-Store, PRIVATE=\"X-Foo\", Stale-If-Error=3");
        assert_eq!(parsed.max_age, Some(5));
        assert!(parsed.no_store);
        assert_eq!(parsed.private, Some(names(&["x-foo"])));
        assert_eq!(parsed.stale_if_error, Some(3));
    }

    #[test]
    fn quoted_numbers_are_accepted_9111_5_2() {
        // Senders SHOULD NOT quote delta-seconds, but recipients may read them.
        assert_eq!(cc("max-age=\"60\"").max_age, Some(60));
        assert_eq!(cc("s-maxage=\"1\"").s_maxage, Some(1));
        assert_eq!(cc("max-stale=\"2\"").max_stale, Some(MaxStale::Seconds(2)));
        assert_eq!(cc("stale-if-error=\"4\"").stale_if_error, Some(4));
    }

    #[test]
    fn quoted_string_backslash_escapes_are_removed_9110_5_6_4() {
        assert_eq!(cc(r#"private="x-\foo""#).private, Some(names(&["x-foo"])));
        // An escaped quote does not end the string: the comma after it is
        // still inside, so max-age stays part of the (unknown) argument.
        let parsed = cc(r#"foo="a\", max-age=0", public"#);
        assert_eq!(parsed.max_age, None);
        assert!(parsed.public);
    }

    #[test]
    fn commas_inside_quoted_strings_do_not_split_9110_5_6_4() {
        let parsed = cc(r#"no-cache="x-a, max-age=0", max-age=5"#);
        assert_eq!(parsed.max_age, Some(5));
        assert_eq!(parsed.no_cache, Some(names(&["x-a"])));
    }

    #[test]
    fn whitespace_and_empty_elements_are_tolerated_9110_5_6_1() {
        let expected = CacheControl {
            max_age: Some(5),
            no_store: true,
            ..Default::default()
        };
        for line in [
            "max-age=5,no-store",
            "  max-age=5 ,\tno-store  ",
            ", ,max-age=5,,, no-store,",
            "max-age = 5, no-store",
        ] {
            assert_eq!(cc(line), expected, "{line:?}");
        }
    }

    #[test]
    fn unknown_directives_are_ignored_9111_5_2_3() {
        let parsed = cc(r#"foo, bar=baz, qux="a, b", community="UCI", max-age=5"#);
        assert_eq!(
            parsed,
            CacheControl {
                max_age: Some(5),
                ..Default::default()
            }
        );
        // A prefix of a known name is not that name.
        assert_eq!(cc("max-ag=5, no-stores"), CacheControl::default());
    }

    #[test]
    fn multiple_field_lines_form_one_list_9110_5_3() {
        let lines = [
            HeaderValue::from_static("max-age=60"),
            HeaderValue::from_static("private=\"x-a\""),
            HeaderValue::from_static("max-age=10, private=\"x-b\""),
        ];
        let parsed = CacheControl::parse(&lines);
        assert_eq!(parsed.max_age, Some(10));
        assert_eq!(parsed.private, Some(names(&["x-a", "x-b"])));

        let mut headers = HeaderMap::new();
        headers.append(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        headers.append(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=3"),
        );
        let parsed = CacheControl::from_headers(&headers);
        assert!(parsed.no_store);
        assert_eq!(parsed.max_age, Some(3));
    }

    #[test]
    fn field_name_lists_are_lowercased_and_skip_invalid_names_9111_5_2_2_7() {
        assert_eq!(
            cc(r#"private="Set-Cookie, X-Foo""#).private,
            Some(names(&["set-cookie", "x-foo"]))
        );
        assert_eq!(
            cc(r#"no-cache="x-a, bad name, b@d, , x-b, X-A""#).no_cache,
            Some(names(&["x-a", "x-b"]))
        );
        // The token form names a single field.
        assert_eq!(
            cc("no-cache=Set-Cookie").no_cache,
            Some(names(&["set-cookie"]))
        );
    }

    #[test]
    fn field_name_list_with_nothing_usable_covers_everything_9111_5_2_2_4() {
        // Narrowing the directive to no field at all would drop it entirely;
        // treating it as unqualified is the restrictive reading.
        for line in [
            r#"private="""#,
            r#"private="b@d""#,
            "private=",
            r#"private="unterminated"#,
        ] {
            assert_eq!(cc(line).private, Some(FieldNames::All), "{line}");
        }
        assert_eq!(cc(r#"no-cache=" , ""#).no_cache, Some(FieldNames::All));
    }

    #[test]
    fn unqualified_beats_qualified_9111_5_2_2_7() {
        for line in [r#"private, private="x-a""#, r#"private="x-a", private"#] {
            assert_eq!(cc(line).private, Some(FieldNames::All), "{line}");
        }
        for line in [r#"no-cache, no-cache="x-a""#, r#"no-cache="x-a", no-cache"#] {
            assert_eq!(cc(line).no_cache, Some(FieldNames::All), "{line}");
        }
    }

    #[test]
    fn qualified_lists_from_duplicates_merge_9111_5_2() {
        assert_eq!(
            cc(r#"no-cache="x-a, x-b", no-cache="x-b, x-c""#).no_cache,
            Some(names(&["x-a", "x-b", "x-c"]))
        );
    }

    #[test]
    fn duplicates_keep_the_most_restrictive_value_9111_4_2_1() {
        type Field = fn(&CacheControl) -> Option<u32>;
        let cases: &[(&str, Field, Option<u32>)] = &[
            (
                "max-age=60, max-age=10, max-age=30",
                |c| c.max_age,
                Some(10),
            ),
            ("s-maxage=5, s-maxage=50", |c| c.s_maxage, Some(5)),
            (
                "stale-while-revalidate=9, stale-while-revalidate=3",
                |c| c.stale_while_revalidate,
                Some(3),
            ),
            (
                "stale-if-error=2, stale-if-error=20",
                |c| c.stale_if_error,
                Some(2),
            ),
            // min-fresh asks for more freshness, so the largest is strictest.
            (
                "min-fresh=2, min-fresh=20, min-fresh=5",
                |c| c.min_fresh,
                Some(20),
            ),
        ];
        for (line, field, expected) in cases {
            assert_eq!(field(&cc(line)), *expected, "{line}");
        }
    }

    #[test]
    fn bounded_max_stale_beats_unbounded_9111_5_2_1_2() {
        let cases = [
            ("max-stale, max-stale=30", Some(MaxStale::Seconds(30))),
            ("max-stale=30, max-stale", Some(MaxStale::Seconds(30))),
            ("max-stale=30, max-stale=10", Some(MaxStale::Seconds(10))),
            ("max-stale, max-stale", Some(MaxStale::Any)),
        ];
        for (line, expected) in cases {
            assert_eq!(cc(line).max_stale, expected, "{line}");
        }
    }

    #[test]
    fn delta_seconds_overflow_clamps_to_2_pow_31_9111_1_2_2() {
        let cases = [
            ("max-age=2147483647", 2_147_483_647),
            ("max-age=2147483648", MAX_DELTA_SECONDS),
            ("max-age=2147483649", MAX_DELTA_SECONDS),
            (
                "max-age=99999999999999999999999999999999",
                MAX_DELTA_SECONDS,
            ),
            ("max-age=007", 7),
        ];
        for (line, expected) in cases {
            assert_eq!(cc(line).max_age, Some(expected), "{line}");
        }
        assert_eq!(
            cc("min-fresh=4294967296").min_fresh,
            Some(MAX_DELTA_SECONDS)
        );
        assert_eq!(
            cc("max-stale=4294967296").max_stale,
            Some(MaxStale::Seconds(MAX_DELTA_SECONDS))
        );
    }

    #[test]
    fn invalid_or_missing_max_age_means_stale_9111_4_2_1() {
        for arg in [
            "", "=", "=abc", "=-1", "=+5", "=1.5", "=5s", "=1 2", "=\"\"", "=\" 5\"", "=\"5",
        ] {
            let line = format!("max-age{arg}");
            assert_eq!(cc(&line).max_age, Some(0), "{line:?}");
            let line = format!("s-maxage{arg}");
            assert_eq!(cc(&line).s_maxage, Some(0), "{line:?}");
        }
        // And an invalid occurrence beats a valid one.
        assert_eq!(cc("max-age=60, max-age=abc").max_age, Some(0));
    }

    #[test]
    fn invalid_relaxing_arguments_are_dropped_9111_5_2_1_and_5861() {
        for arg in ["", "=", "=abc", "=-1", "=1.5"] {
            let parsed = cc(&format!(
                "min-fresh{arg}, stale-while-revalidate{arg}, stale-if-error{arg}"
            ));
            assert_eq!(parsed, CacheControl::default(), "{arg:?}");
        }
        // A bad max-stale value is dropped, but a bare max-stale means Any.
        assert_eq!(cc("max-stale=abc").max_stale, None);
        assert_eq!(
            cc("max-stale=abc, max-stale=5").max_stale,
            Some(MaxStale::Seconds(5))
        );
        // A dropped occurrence does not undo a good one.
        assert_eq!(
            cc("stale-if-error=5, stale-if-error=x").stale_if_error,
            Some(5)
        );
    }

    #[test]
    fn flags_hold_even_with_an_unexpected_argument_9111_5_2() {
        let parsed = cc("no-store=1, must-revalidate junk, public=\"x\"");
        assert!(parsed.no_store);
        assert!(parsed.must_revalidate);
        assert!(parsed.public);
    }

    #[test]
    fn garbage_elements_do_not_poison_their_neighbours_9111_5_2() {
        let parsed = cc(r#"max-age=5, ===, "quoted", @, no-store"#);
        assert_eq!(
            parsed,
            CacheControl {
                max_age: Some(5),
                no_store: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn unterminated_quote_swallows_the_rest_of_the_line_9110_5_6_4() {
        // The comma is inside the open quoted string, so `no-store` is part
        // of private's (invalid) argument; private then covers everything.
        let parsed = cc(r#"private="x-a, no-store"#);
        assert_eq!(parsed.private, Some(FieldNames::All));
        assert!(!parsed.no_store);
    }

    #[test]
    fn non_utf8_and_garbage_bytes_never_panic() {
        let parsed = cc_bytes(b"max-age=5, \xff\xfe, private=\"\xc3\x28, x-a\", no-store");
        assert_eq!(parsed.max_age, Some(5));
        assert!(parsed.no_store);
        assert_eq!(parsed.private, Some(names(&["x-a"])));
        assert_eq!(cc_bytes(b"max-age=\xff").max_age, Some(0));

        // Every short line over a hostile alphabet parses without panicking.
        let alphabet: &[u8] = b"\"\\,= \ta1-\x80\xff";
        let mut line = Vec::new();
        for n in 0..alphabet.len().pow(4) {
            line.clear();
            let mut k = n;
            for _ in 0..4 {
                line.push(alphabet[k % alphabet.len()]);
                k /= alphabet.len();
            }
            let _ = cc_bytes(&line);
            line.splice(0..0, b"max-age".iter().copied());
            let _ = cc_bytes(&line);
        }
    }

    #[test]
    fn pragma_no_cache_counts_only_without_cache_control_9111_5_4() {
        let all = Some(FieldNames::All);
        assert_eq!(request(&[("pragma", "no-cache")]).no_cache, all);
        assert_eq!(request(&[("pragma", "No-Cache")]).no_cache, all);
        assert_eq!(request(&[("pragma", "foo=bar, NO-CACHE")]).no_cache, all);
        assert_eq!(
            request(&[("pragma", "x"), ("pragma", "no-cache")]).no_cache,
            all
        );
        assert_eq!(request(&[("pragma", "no-cacheX, foo")]).no_cache, None);
        assert_eq!(request(&[]).no_cache, None);
        // Any Cache-Control field, even one without no-cache, takes over.
        let with_cc = request(&[("pragma", "no-cache"), ("cache-control", "max-age=5")]);
        assert_eq!(with_cc.no_cache, None);
        assert_eq!(with_cc.max_age, Some(5));
        assert_eq!(
            request(&[("pragma", "no-cache"), ("cache-control", "")]).no_cache,
            None
        );
    }

    #[test]
    fn from_request_reads_cache_control_9111_5_2_1() {
        let parsed = request(&[("cache-control", "max-stale, min-fresh=3, only-if-cached")]);
        assert_eq!(parsed.max_stale, Some(MaxStale::Any));
        assert_eq!(parsed.min_fresh, Some(3));
        assert!(parsed.only_if_cached);
    }

    #[test]
    fn stale_forbidden_by_revalidation_directives_9111_4_2_4() {
        let cases = [
            ("must-revalidate", true),
            ("proxy-revalidate", true),
            ("s-maxage=60", true),
            ("no-cache", true),
            (r#"no-cache="x-a""#, false),
            ("max-age=60, public, stale-if-error=5", false),
        ];
        for (line, expected) in cases {
            assert_eq!(cc(line).forbids_stale(), expected, "{line}");
        }
    }
}
