//! The `Cache-Status` response field (RFC 9211).

use std::fmt;

use http::HeaderValue;

/// Why the cache went forward (RFC 9211 §2.2): the `fwd` parameter.
///
/// ```
/// use larder::policy::{CacheStatus, Fwd};
///
/// let status = CacheStatus { name: "larder", fwd: Some(Fwd::UriMiss), ..Default::default() };
/// assert_eq!(status.member(), "larder; fwd=uri-miss");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// Configured not to handle this request.
    Bypass,
    /// The request method is not cacheable.
    Method,
    /// No stored response for the URI.
    UriMiss,
    /// Stored responses for the URI, none matching the request's Vary fields.
    VaryMiss,
    /// No usable stored response (generic).
    Miss,
    /// A stored response existed, but the request's directives forbade it.
    Request,
    /// The stored response was stale and needed revalidation.
    Stale,
}

impl Fwd {
    /// The token RFC 9211 uses for this reason.
    ///
    /// ```
    /// use larder::policy::Fwd;
    ///
    /// assert_eq!(Fwd::VaryMiss.as_str(), "vary-miss");
    /// assert_eq!(Fwd::Stale.as_str(), "stale");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Miss => "miss",
            Fwd::Request => "request",
            Fwd::Stale => "stale",
        }
    }

    /// The reason a `fwd` parameter's token names ([`as_str`](Self::as_str)
    /// read back); `None` for a token this cache does not write.
    ///
    /// ```
    /// use larder::policy::Fwd;
    ///
    /// assert_eq!(Fwd::from_token(b"uri-miss"), Some(Fwd::UriMiss));
    /// assert_eq!(Fwd::from_token(b"partial"), None);
    /// ```
    pub fn from_token(token: &[u8]) -> Option<Fwd> {
        Some(match token {
            b"bypass" => Fwd::Bypass,
            b"method" => Fwd::Method,
            b"uri-miss" => Fwd::UriMiss,
            b"vary-miss" => Fwd::VaryMiss,
            b"miss" => Fwd::Miss,
            b"request" => Fwd::Request,
            b"stale" => Fwd::Stale,
            _ => return None,
        })
    }
}

/// One cache's member of the `Cache-Status` list.
///
/// Build it with struct-update syntax; `Display` gives the same text as
/// [`CacheStatus::member`].
///
/// ```
/// use larder::policy::{CacheStatus, Fwd};
///
/// let status = CacheStatus {
///     name: "larder",
///     fwd: Some(Fwd::Miss),
///     stored: true,
///     ..Default::default()
/// };
/// assert_eq!(status.to_string(), "larder; fwd=miss; stored");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStatus<'a> {
    /// The cache's name, a token or else serialized as a string.
    pub name: &'a str,
    /// `hit`: answered from cache without going forward.
    pub hit: bool,
    /// `fwd`: why the request went forward.
    pub fwd: Option<Fwd>,
    /// `fwd-status`: the status the next hop returned.
    pub fwd_status: Option<u16>,
    /// `ttl`: seconds of freshness left, negative when stale. Clamped to the
    /// 15-digit range of a Structured Fields integer.
    pub ttl: Option<i64>,
    /// `stored`: the forwarded response was stored.
    pub stored: bool,
    /// `collapsed`: the request was collapsed with another's forward.
    pub collapsed: bool,
    /// `key`: the cache key; always serialized as a quoted string.
    pub key: Option<&'a str>,
    /// `detail`: implementation-specific detail, a token or else a quoted string.
    pub detail: Option<&'a str>,
}

thread_local! {
    /// Where [`CacheStatus::append_to`] writes a member before copying it,
    /// and the value it made last: the next response with the same member
    /// (a hit on an entry of the same remaining ttl, in the same second)
    /// clones that (a reference count) instead of allocating a copy.
    static MEMBER: std::cell::RefCell<(String, Option<HeaderValue>)> =
        const { std::cell::RefCell::new((String::new(), None)) };
}

/// The largest magnitude an sf-integer may have: 15 decimal digits
/// (RFC 8941 §3.3.1). Larger values are clamped so the field stays valid.
const SF_INTEGER_MAX: i64 = 999_999_999_999_999;

impl CacheStatus<'_> {
    /// Serializes this member as a Structured Fields list member
    /// (e.g. `larder; hit; ttl=376` or `larder; fwd=miss; stored`).
    ///
    /// A name that is not an sf-token is quoted.
    ///
    /// ```
    /// use larder::policy::CacheStatus;
    ///
    /// let hit = CacheStatus { name: "larder", hit: true, ttl: Some(376), ..Default::default() };
    /// assert_eq!(hit.member(), "larder; hit; ttl=376");
    /// let quoted = CacheStatus { name: "my cache", ..Default::default() };
    /// assert_eq!(quoted.member(), r#""my cache""#);
    /// ```
    pub fn member(&self) -> String {
        let mut out = String::with_capacity(self.name.len() + 48);
        self.write_member(&mut out);
        out
    }

    /// Appends this member to an existing `Cache-Status` value from a cache
    /// nearer the origin, or starts a new list (RFC 9211 §2: the list is
    /// ordered from the origin towards the client). Stray commas and
    /// whitespace at the edges of `existing` are trimmed.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use larder::policy::CacheStatus;
    ///
    /// let ours = CacheStatus { name: "larder", hit: true, ..Default::default() };
    /// let upstream = HeaderValue::from_static("OriginCache; hit; ttl=1100");
    /// let value = ours.append_to(Some(&upstream));
    /// assert_eq!(value, "OriginCache; hit; ttl=1100, larder; hit");
    /// assert_eq!(ours.append_to(None), "larder; hit");
    /// ```
    pub fn append_to(&self, existing: Option<&HeaderValue>) -> HeaderValue {
        if existing.is_none() {
            // The common case, on every response: written into this
            // thread's buffer and copied once into the value (a `String`
            // of its own would cost an allocation, and another for the
            // `Bytes` that shares it).
            return MEMBER.with(|cell| {
                let Ok(mut held) = cell.try_borrow_mut() else {
                    return HeaderValue::from_str(&self.member())
                        .expect("Cache-Status is built from valid field bytes");
                };
                let (buffer, last) = &mut *held;
                buffer.clear();
                self.write_member(buffer);
                if let Some(last) = last.as_ref().filter(|l| l.as_bytes() == buffer.as_bytes()) {
                    return last.clone();
                }
                let value = HeaderValue::from_str(buffer)
                    .expect("Cache-Status is built from valid field bytes");
                *last = Some(value.clone());
                value
            });
        }
        let member = self.member();
        // Trailing commas and whitespace would leave an empty list member
        // after ours, which no Structured Fields parser accepts.
        let earlier = existing
            .map(|value| trim_list_edges(value.as_bytes()))
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(earlier.len() + 2 + member.len());
        if !earlier.is_empty() {
            bytes.extend_from_slice(earlier);
            bytes.extend_from_slice(b", ");
        }
        bytes.extend_from_slice(member.as_bytes());
        // Both parts are valid field-value bytes: `earlier` is a slice of a
        // HeaderValue and the member is visible ASCII by construction.
        HeaderValue::from_bytes(&bytes).expect("Cache-Status is built from valid field bytes")
    }
}

/// Serializes the member, parameters in the order of RFC 9211 §2.1–§2.8.
/// Parameters are separated by `; ` as in RFC 9211's examples; Structured
/// Fields parsers accept the space (RFC 8941 §4.2.3.2).
impl fmt::Display for CacheStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.member())
    }
}

impl CacheStatus<'_> {
    /// Writes the member straight into a `String`: this runs on every
    /// response, and the formatting machinery costs more than the bytes.
    fn write_member(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = write_token_or_string(out, self.name);
        if self.hit {
            out.push_str("; hit");
        }
        if let Some(fwd) = self.fwd {
            out.push_str("; fwd=");
            out.push_str(fwd.as_str());
        }
        if let Some(status) = self.fwd_status {
            out.push_str("; fwd-status=");
            push_int(out, i64::from(status));
        }
        if let Some(ttl) = self.ttl {
            out.push_str("; ttl=");
            push_int(out, ttl.clamp(-SF_INTEGER_MAX, SF_INTEGER_MAX));
        }
        if self.stored {
            out.push_str("; stored");
        }
        if self.collapsed {
            out.push_str("; collapsed");
        }
        if let Some(key) = self.key {
            out.push_str("; key=");
            let _ = write_string(out, key);
        }
        if let Some(detail) = self.detail {
            out.push_str("; detail=");
            let _ = write_token_or_string(out, detail);
        }
    }
}

/// Decimal digits of `n`, without the formatting machinery.
fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut buf = [0u8; 20];
    for &d in crate::decimal::digits(n.unsigned_abs(), &mut buf) {
        out.push(d as char);
    }
}

/// `value` as an sf-token when it is one, else as an sf-string
/// (the cache name and `detail` may be either, RFC 9211 §2, §2.8).
fn write_token_or_string(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    if is_sf_token(value) {
        out.write_str(value)
    } else {
        write_string(out, value)
    }
}

/// `value` as an sf-string (RFC 8941 §4.1.6). sf-strings hold only visible
/// ASCII and space; anything else (controls, non-ASCII) becomes `?` so the
/// field stays parseable rather than being dropped by the client whole.
fn write_string(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            ' '..='~' => out.write_char(c)?,
            _ => out.write_char('?')?,
        }
    }
    out.write_char('"')
}

/// `bytes` without leading or trailing whitespace and commas.
fn trim_list_edges(bytes: &[u8]) -> &[u8] {
    let is_edge = |b: &u8| matches!(b, b' ' | b'\t' | b',');
    let start = bytes
        .iter()
        .position(|b| !is_edge(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_edge(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// True when `name` is a Structured Fields token (and so needs no quoting).
///
/// `sf-token = ( ALPHA / "*" ) *( tchar / ":" / "/" )` (RFC 8941 §3.3.4).
///
/// ```
/// use larder::policy::cache_status::is_sf_token;
///
/// assert!(is_sf_token("edge-1.example:8080/a"));
/// assert!(!is_sf_token("1cache"));
/// assert!(!is_sf_token("my cache"));
/// ```
pub fn is_sf_token(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'*')
        && bytes.all(|b| is_tchar(b) || b == b':' || b == b'/')
}

/// The parameters of the last `Cache-Status` member in `headers`: the
/// nearest cache's (RFC 9211 §2: each cache appends its own), such as
/// `hit; ttl=59` of `origin; fwd=miss, larder; hit; ttl=59`. Empty when
/// there is none.
///
/// ```
/// use larder::policy::cache_status::last_member_params;
///
/// let mut headers = http::HeaderMap::new();
/// headers.append("cache-status", "origin; hit".parse().unwrap());
/// headers.append("cache-status", "edge; fwd=miss, larder; hit; ttl=59".parse().unwrap());
/// assert_eq!(last_member_params(&headers), "hit; ttl=59");
/// assert_eq!(last_member_params(&http::HeaderMap::new()), "");
/// ```
pub fn last_member_params(headers: &http::HeaderMap) -> &str {
    // The name as a constant: a `&str` would be parsed on every call.
    const NAME: http::HeaderName = http::HeaderName::from_static("cache-status");
    let Some(value) = headers
        .get_all(NAME)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
    else {
        return "";
    };
    let member = value.rsplit(',').next().unwrap_or(value).trim();
    member
        .split_once(';')
        .map_or("", |(_, params)| params.trim())
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fwd_token_reads_back() {
        for fwd in [
            Fwd::Bypass,
            Fwd::Method,
            Fwd::UriMiss,
            Fwd::VaryMiss,
            Fwd::Miss,
            Fwd::Request,
            Fwd::Stale,
        ] {
            assert_eq!(Fwd::from_token(fwd.as_str().as_bytes()), Some(fwd));
        }
        assert_eq!(Fwd::from_token(b"Miss"), None);
    }

    fn named(name: &str) -> CacheStatus<'_> {
        CacheStatus {
            name,
            ..CacheStatus::default()
        }
    }

    #[test]
    fn sf_token_grammar_8941_3_3_4() {
        let cases = [
            ("larder", true),
            ("Larder", true),
            ("*cache", true),
            ("edge-1.example:8080/a", true),
            ("a!#$%&'*+-.^_`|~", true),
            ("", false),
            ("1cache", false),
            ("-cache", false),
            ("my cache", false),
            ("cache\"", false),
            ("cache,x", false),
            ("cache;x", false),
            ("cache=x", false),
            ("cach\u{e9}", false),
            ("cache\t", false),
        ];
        for (name, token) in cases {
            assert_eq!(is_sf_token(name), token, "{name:?}");
        }
    }

    #[test]
    fn rfc_examples_serialize_9211_2() {
        let hit = CacheStatus {
            hit: true,
            ttl: Some(376),
            ..named("larder")
        };
        assert_eq!(hit.member(), "larder; hit; ttl=376");
        let miss = CacheStatus {
            fwd: Some(Fwd::Miss),
            stored: true,
            ..named("larder")
        };
        assert_eq!(miss.member(), "larder; fwd=miss; stored");
        let uri_miss = CacheStatus {
            fwd: Some(Fwd::UriMiss),
            fwd_status: Some(200),
            stored: true,
            ..named("larder")
        };
        assert_eq!(
            uri_miss.member(),
            "larder; fwd=uri-miss; fwd-status=200; stored"
        );
        let stale = CacheStatus {
            fwd: Some(Fwd::Stale),
            fwd_status: Some(304),
            ..named("larder")
        };
        assert_eq!(stale.member(), "larder; fwd=stale; fwd-status=304");
        assert_eq!(named("larder").member(), "larder");
    }

    #[test]
    fn every_parameter_in_order_9211_2_1_to_2_8() {
        let all = CacheStatus {
            name: "larder",
            hit: true,
            fwd: Some(Fwd::Request),
            fwd_status: Some(503),
            ttl: Some(12),
            stored: true,
            collapsed: true,
            key: Some("GET https://a.example/items"),
            detail: Some("memory"),
        };
        assert_eq!(
            all.member(),
            "larder; hit; fwd=request; fwd-status=503; ttl=12; stored; collapsed; \
             key=\"GET https://a.example/items\"; detail=memory"
        );
    }

    #[test]
    fn fwd_reasons_are_rfc_tokens_9211_2_2() {
        let cases = [
            (Fwd::Bypass, "bypass"),
            (Fwd::Method, "method"),
            (Fwd::UriMiss, "uri-miss"),
            (Fwd::VaryMiss, "vary-miss"),
            (Fwd::Miss, "miss"),
            (Fwd::Request, "request"),
            (Fwd::Stale, "stale"),
        ];
        for (fwd, token) in cases {
            let status = CacheStatus {
                fwd: Some(fwd),
                ..named("larder")
            };
            assert_eq!(status.member(), format!("larder; fwd={token}"));
        }
    }

    #[test]
    fn false_booleans_are_omitted_8941_4_1_1_2() {
        let status = CacheStatus {
            hit: false,
            stored: false,
            collapsed: false,
            ttl: Some(0),
            ..named("larder")
        };
        assert_eq!(status.member(), "larder; ttl=0");
    }

    #[test]
    fn ttl_is_negative_when_stale_9211_2_4() {
        let status = CacheStatus {
            fwd: Some(Fwd::Stale),
            ttl: Some(-42),
            ..named("larder")
        };
        assert_eq!(status.member(), "larder; fwd=stale; ttl=-42");
    }

    #[test]
    fn ttl_clamps_to_sf_integer_range_8941_3_3_1() {
        let cases = [
            (i64::MAX, "999999999999999"),
            (i64::MIN, "-999999999999999"),
        ];
        for (ttl, expected) in cases {
            let status = CacheStatus {
                ttl: Some(ttl),
                ..named("larder")
            };
            assert_eq!(status.member(), format!("larder; ttl={expected}"));
        }
    }

    #[test]
    fn non_token_name_is_quoted_9211_2() {
        let cases = [
            ("CDN Company Here", "\"CDN Company Here\""),
            ("1st", "\"1st\""),
            ("", "\"\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("caf\u{e9}", "\"caf?\""),
            ("tab\there\n", "\"tab?here?\""),
        ];
        for (name, expected) in cases {
            assert_eq!(named(name).member(), expected, "{name:?}");
        }
    }

    #[test]
    fn key_is_always_a_string_and_detail_token_or_string_9211_2_7_2_8() {
        let status = CacheStatus {
            key: Some("abc"),
            detail: Some("two words"),
            ..named("larder")
        };
        assert_eq!(status.member(), "larder; key=\"abc\"; detail=\"two words\"");
    }

    #[test]
    fn each_value_is_its_own_member_though_the_buffer_is_shared() {
        let long = CacheStatus {
            name: "larder",
            fwd: Some(Fwd::UriMiss),
            stored: true,
            detail: Some("a long detail"),
            ..CacheStatus::default()
        };
        let short = CacheStatus {
            name: "larder",
            hit: true,
            ..CacheStatus::default()
        };
        assert_eq!(
            long.append_to(None),
            "larder; fwd=uri-miss; stored; detail=\"a long detail\""
        );
        assert_eq!(short.append_to(None), "larder; hit");
        assert_eq!(long.append_to(None).as_bytes(), long.member().as_bytes());
    }

    #[test]
    fn the_same_member_again_is_the_last_value_and_another_its_own() {
        let hit = |ttl| CacheStatus {
            name: "larder",
            hit: true,
            ttl: Some(ttl),
            ..CacheStatus::default()
        };
        let (first, again) = (hit(60).append_to(None), hit(60).append_to(None));
        assert_eq!(first, "larder; hit; ttl=60");
        // One value, shared: not copied again.
        assert_eq!(first.as_bytes().as_ptr(), again.as_bytes().as_ptr());
        assert_eq!(hit(59).append_to(None), "larder; hit; ttl=59");
        assert_eq!(hit(60).append_to(None), "larder; hit; ttl=60");
    }

    #[test]
    fn member_is_always_a_valid_header_value_8941_4_1() {
        // Every char class a name, key or detail could carry.
        let nasty: String = (0u32..0x300).filter_map(char::from_u32).collect();
        let status = CacheStatus {
            name: &nasty,
            key: Some(&nasty),
            detail: Some(&nasty),
            ..CacheStatus::default()
        };
        let value = status.append_to(None);
        assert!(value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)));
    }

    #[test]
    fn append_puts_own_member_last_9211_2() {
        let ours = CacheStatus {
            hit: true,
            ..named("larder")
        };
        let cases = [
            (
                "OriginCache; hit; ttl=1100",
                "OriginCache; hit; ttl=1100, larder; hit",
            ),
            ("a, b", "a, b, larder; hit"),
            ("a, b, ", "a, b, larder; hit"),
            (" a ,", "a, larder; hit"),
            ("", "larder; hit"),
            ("  ", "larder; hit"),
            (",", "larder; hit"),
        ];
        for (existing, expected) in cases {
            let existing = HeaderValue::from_str(existing).unwrap();
            assert_eq!(ours.append_to(Some(&existing)), expected, "{existing:?}");
        }
        assert_eq!(ours.append_to(None), "larder; hit");
    }

    #[test]
    fn append_keeps_opaque_upstream_bytes_9211_2() {
        // A member we cannot read is not ours to rewrite; it stays verbatim.
        let existing = HeaderValue::from_bytes(b"\"caf\xe9\"").unwrap();
        let value = named("larder").append_to(Some(&existing));
        assert_eq!(value.as_bytes(), b"\"caf\xe9\", larder");
    }
}
