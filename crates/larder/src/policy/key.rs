//! Cache keys and Vary (RFC 9111 §4.1), laid out as DESIGN.md says.
//!
//! A request has a *primary* key, over the URI alone: method class (HEAD is
//! answered from GET), scheme, lowercased host without its default port, raw
//! path and raw query, and the namespace. What is stored at the primary key is
//! either the entry itself (a response without Vary) or a variant index that
//! names the Vary fields. Each *variant* is stored under the primary key plus
//! a hash of the request's values for those fields, so deleting the primary
//! key invalidates every variant of the URI at once.

use std::borrow::Cow;
use std::fmt::Write;

use http::{HeaderMap, HeaderName, Method, Uri};

/// How every URI's key material begins: the key layout's version and the
/// entry format's ([`crate::entry::FORMAT_VERSION`]). With the format in
/// the material, instances of two releases sharing one Redis during a
/// rolling deploy keep their entries under different keys, rather than
/// deleting each other's as unreadable and filling them again.
const MATERIAL_HEAD: &str = "larder-key-1-f2\n";

/// The same for memoized calls.
const MEMO_HEAD: &str = "larder-memo-1-f2\n";

/// The header fields a cache must not key on by name alone: their presence
/// makes the response selection depend on every value (`Vary: *`).
const VARY_STAR: &str = "*";

/// The key material and store key of a request's URI.
///
/// ```
/// use http::{HeaderMap, Method, Uri};
/// use larder::policy::key::primary;
///
/// let uri: Uri = "https://example.com/items?page=2".parse().unwrap();
/// let key = primary("larder", "items", 0, &Method::GET, &uri, &HeaderMap::new(), None).unwrap();
/// assert!(key.store_key.starts_with("larder:items:0:{") && key.store_key.ends_with('}'));
/// assert!(key.material.ends_with("https\nexample.com\n/items?page=2"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    /// The canonical text the hash is taken over; stored in the entry and
    /// compared on read, so a hash collision or a foreign value is a miss.
    pub material: String,
    /// The store key: `<prefix>:<namespace>:{<hash>}`, with the namespace
    /// percent-escaped except for ASCII letters, digits, `-`, `_` and `.`.
    /// The hash is wrapped in braces so that a Redis Cluster keeps a URI's
    /// variants in one slot.
    pub store_key: String,
}

/// The method class used for keys: GET and HEAD share GET's entries; other
/// methods are not looked up (RFC 9111 §4).
///
/// ```
/// use http::Method;
/// use larder::policy::key::method_class;
///
/// assert_eq!(method_class(&Method::HEAD), Some("GET"));
/// assert_eq!(method_class(&Method::POST), None);
/// ```
pub fn method_class(method: &Method) -> Option<&'static str> {
    if method == Method::GET || method == Method::HEAD {
        Some("GET")
    } else {
        None
    }
}

/// The scheme of a request: the URI's when it has one, else `http`.
///
/// ```
/// use http::Uri;
/// use larder::policy::key::scheme;
///
/// assert_eq!(scheme(&"https://example.com/".parse::<Uri>().unwrap()), "https");
/// assert_eq!(scheme(&"/items".parse::<Uri>().unwrap()), "http");
/// ```
pub fn scheme(uri: &Uri) -> &str {
    uri.scheme_str().unwrap_or("http")
}

/// Why a `Host` field or a URI's authority cannot name an origin.
///
/// ```
/// use larder::policy::key::{authority, InvalidHost};
///
/// assert_eq!(authority(b"victim.example/evil", "http"), Err(InvalidHost::Delimiter));
/// assert_eq!(InvalidHost::Delimiter.to_string(), "the host holds a URI delimiter (/ ? # \\)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidHost {
    /// No host where the scheme needs one (`http`, `https`: RFC 9110 §4.2.1).
    Empty,
    /// A byte outside ASCII: hosts on the wire are ASCII (IDNs in punycode).
    NotAscii,
    /// Space, tab or another control character.
    Whitespace,
    /// `userinfo@`: never part of an HTTP authority (RFC 9110 §4.2.4).
    Userinfo,
    /// `/`, `?`, `#` or `\`: the end of an authority, not part of one.
    Delimiter,
    /// A character a reg-name may not hold (RFC 3986 §3.2.2), or a broken
    /// percent-encoding.
    Character,
    /// A port that is not 1 to 5 digits up to 65535 (RFC 3986 §3.2.3).
    Port,
    /// A bracketed host that is not an IPv6 address or an IPvFuture.
    IpLiteral,
    /// More than one `Host` line (RFC 9112 §3.2).
    Repeated,
    /// A `Host` naming another authority than the request target's.
    Conflict,
    /// No `Host` on a request that needs one (HTTP/1.1: RFC 9112 §3.2).
    Missing,
}

impl std::fmt::Display for InvalidHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvalidHost::Empty => "the host is empty",
            InvalidHost::NotAscii => "the host is not ASCII",
            InvalidHost::Whitespace => "the host holds whitespace or a control character",
            InvalidHost::Userinfo => "the host holds userinfo (@)",
            InvalidHost::Delimiter => "the host holds a URI delimiter (/ ? # \\)",
            InvalidHost::Character => "the host holds a character a host name may not",
            InvalidHost::Port => "the port is not a number up to 65535",
            InvalidHost::IpLiteral => "the bracketed host is not an IPv6 address",
            InvalidHost::Repeated => "more than one Host field",
            InvalidHost::Conflict => "Host names another authority than the request target",
            InvalidHost::Missing => "no Host field",
        })
    }
}

impl std::error::Error for InvalidHost {}

/// What [`host`] keys a request whose authority is invalid under: no
/// valid host can be written so (`<` is not allowed in one), so such a
/// request can never share another's key. The engine bypasses the cache
/// for it before any key is used ([`check_request_host`]).
const INVALID_HOST: &str = "<invalid>";

/// Validates an authority as RFC 3986 `host [":" port]` (§3.2.2, §3.2.3)
/// and returns the form keys use: lowercased (percent-encodings in
/// uppercase, RFC 3986 §6.2.2.1), the port as a plain number and left out
/// when it is the scheme's default or empty (RFC 3986 §6.2.3,
/// RFC 9110 §4.2.3). A host is a reg-name (which covers IPv4 addresses)
/// or a bracketed IPv6 address or IPvFuture; nothing else is accepted, in
/// particular no userinfo, no `/ ? # \`, no whitespace, nothing outside
/// ASCII. An empty host is valid only for schemes other than `http` and
/// `https`.
///
/// ```
/// use larder::policy::key::{authority, InvalidHost};
///
/// assert_eq!(authority(b"Example.COM:80", "http").as_deref(), Ok("example.com"));
/// assert_eq!(authority(b"[::1]:08080", "https").as_deref(), Ok("[::1]:8080"));
/// assert_eq!(authority(b"evil.example@victim.example", "http"), Err(InvalidHost::Userinfo));
/// assert_eq!(authority(b"", "http"), Err(InvalidHost::Empty));
/// ```
pub fn authority<'a>(raw: &'a [u8], scheme: &str) -> Result<Cow<'a, str>, InvalidHost> {
    if let Some(plain) = plain_authority(raw, scheme) {
        return Ok(Cow::Borrowed(plain));
    }
    let (host, port) = split_authority(raw, scheme)?;
    Ok(normalized(raw, host, port))
}

/// The request's host as keys use it: the URI's authority (HTTP/2,
/// absolute-form) or else the `Host` field, validated by [`authority`].
/// Empty when neither exists (an HTTP/1.0 request without `Host`). An
/// error when either is invalid, when there are several `Host` lines, or
/// when the URI's authority and `Host` disagree: a handler reading `Host`
/// would then answer for another host than the one keyed.
///
/// ```
/// use http::{header::HOST, HeaderMap, HeaderValue, Uri};
/// use larder::policy::key::{request_host, InvalidHost};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(HOST, HeaderValue::from_static("Example.COM:80"));
/// let path: Uri = "/items".parse().unwrap();
/// assert_eq!(request_host(&path, &headers).as_deref(), Ok("example.com"));
/// let absolute: Uri = "http://other.example/items".parse().unwrap();
/// assert_eq!(request_host(&absolute, &headers), Err(InvalidHost::Conflict));
/// assert_eq!(request_host(&path, &HeaderMap::new()).as_deref(), Ok(""));
/// ```
pub fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Result<Cow<'a, str>, InvalidHost> {
    if let Some(host) = plain_host(uri, headers) {
        return Ok(Cow::Borrowed(host));
    }
    Ok(match resolve_host(uri, headers)? {
        Some(named) => normalized(named.raw, named.host, named.port),
        None => Cow::Borrowed(""),
    })
}

/// The usual request, answered without the full parse: origin-form, one
/// `Host` line of lowercase letters, digits, `-` and `.`, and at most a
/// short port that is not the scheme's default. Such a value is valid and
/// already in the key's form; anything else takes the full parse.
fn plain_host<'a>(uri: &Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    if uri.authority().is_some() {
        return None;
    }
    let mut lines = headers.get_all(http::header::HOST).iter();
    let raw = lines.next()?.as_bytes();
    if lines.next().is_some() {
        return None;
    }
    plain_authority(raw, scheme(uri))
}

/// The bytes of a host [`plain_authority`] takes as they are: lowercase
/// letters, digits, `-` and `.`. A table, as every long-way request reads
/// its host byte by byte.
const PLAIN_HOST: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.';
        b += 1;
    }
    table
};

/// [`authority`]'s shortcut: lowercase letters, digits, `-` and `.`, and
/// at most a short port that is not `scheme`'s default, are valid and
/// already in the key's form.
fn plain_authority<'a>(raw: &'a [u8], scheme: &str) -> Option<&'a str> {
    let (host, port) = match raw.iter().position(|&b| b == b':') {
        Some(colon) => (&raw[..colon], Some(&raw[colon + 1..])),
        None => (raw, None),
    };
    if host.is_empty() || !host.iter().all(|&b| PLAIN_HOST[usize::from(b)]) {
        return None;
    }
    if let Some(port) = port {
        let default: &[u8] = match scheme {
            "http" => b"80",
            "https" => b"443",
            _ => return None,
        };
        // Up to 65535, as the full parse reads it (5 digits compare as
        // numbers do when neither has a leading zero).
        let number = (1..=5).contains(&port.len())
            && port.iter().all(u8::is_ascii_digit)
            && (port.len() < 5 || port <= b"65535".as_slice());
        if !number || port[0] == b'0' || port == default {
            return None;
        }
    }
    std::str::from_utf8(raw).ok()
}

/// Whether [`request_host`] accepts the request, without building the
/// host: what the engine asks of every request before using its key.
///
/// ```
/// use http::{header::HOST, HeaderMap, HeaderValue, Uri};
/// use larder::policy::key::{check_request_host, InvalidHost};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(HOST, HeaderValue::from_bytes("vïctim.example".as_bytes()).unwrap());
/// let uri: Uri = "/".parse().unwrap();
/// assert_eq!(check_request_host(&uri, &headers), Err(InvalidHost::NotAscii));
/// ```
pub fn check_request_host(uri: &Uri, headers: &HeaderMap) -> Result<(), InvalidHost> {
    resolve_host(uri, headers).map(|_| ())
}

/// The request's host for its key: [`request_host`], or for an invalid
/// one a value no valid host can equal, so that it never shares another
/// request's key.
///
/// ```
/// use http::{header::HOST, HeaderMap, HeaderValue, Uri};
/// use larder::policy::key::host;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(HOST, HeaderValue::from_static("Example.COM:80"));
/// assert_eq!(host(&"/items".parse::<Uri>().unwrap(), &headers), "example.com");
/// // What follows an `@` is not the host: the whole value is invalid.
/// headers.insert(HOST, HeaderValue::from_static("evil.example/?@victim.example"));
/// assert_ne!(host(&"/items".parse::<Uri>().unwrap(), &headers), "victim.example");
/// ```
pub fn host(uri: &Uri, headers: &HeaderMap) -> String {
    key_host(uri, headers).into_owned()
}

/// [`host`], borrowed when the request already names it in normal form.
pub(crate) fn key_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Cow<'a, str> {
    request_host(uri, headers).unwrap_or(Cow::Borrowed(INVALID_HOST))
}

/// A validated authority as the request wrote it, split.
struct Named<'a> {
    raw: &'a [u8],
    host: &'a [u8],
    /// `None` when absent, empty or the scheme's default.
    port: Option<u16>,
}

impl<'a> Named<'a> {
    fn parse(raw: &'a [u8], scheme: &str) -> Result<Self, InvalidHost> {
        let (host, port) = split_authority(raw, scheme)?;
        Ok(Named { raw, host, port })
    }
}

/// The host and port a request names (see [`request_host`]); `None`
/// when it names none.
fn resolve_host<'a>(
    uri: &'a Uri,
    headers: &'a HeaderMap,
) -> Result<Option<Named<'a>>, InvalidHost> {
    let scheme = scheme(uri);
    let mut lines = headers.get_all(http::header::HOST).iter();
    let field = lines.next();
    if lines.next().is_some() {
        return Err(InvalidHost::Repeated);
    }
    let field = field
        .map(|v| Named::parse(v.as_bytes(), scheme))
        .transpose()?;
    let Some(target) = uri.authority() else {
        return Ok(field);
    };
    let target = Named::parse(target.as_str().as_bytes(), scheme)?;
    match field {
        // Normalising is case folding and the port's number: equal when
        // the normalised forms are.
        Some(f) if !(f.host.eq_ignore_ascii_case(target.host) && f.port == target.port) => {
            Err(InvalidHost::Conflict)
        }
        _ => Ok(Some(target)),
    }
}

/// Splits and validates `host [":" port]`; the port is `None` when it is
/// empty or the scheme's default.
fn split_authority<'a>(
    raw: &'a [u8],
    scheme: &str,
) -> Result<(&'a [u8], Option<u16>), InvalidHost> {
    // The usual authority, letters, digits, `-._~` and a port, is told in
    // one pass: none of the checks below can refuse its bytes.
    let plain = raw.iter().all(|&b| unreserved(b) || b == b':');
    if !plain {
        // The reasons a hostile value is most often refused, named first.
        for &b in raw {
            match b {
                0x80.. => return Err(InvalidHost::NotAscii),
                b' ' | 0..=0x1f | 0x7f => return Err(InvalidHost::Whitespace),
                _ => {}
            }
        }
        if raw.contains(&b'@') {
            return Err(InvalidHost::Userinfo);
        }
        if raw.iter().any(|b| matches!(b, b'/' | b'?' | b'#' | b'\\')) {
            return Err(InvalidHost::Delimiter);
        }
    }
    let (host, port) = if raw.first() == Some(&b'[') {
        let close = raw
            .iter()
            .position(|&b| b == b']')
            .ok_or(InvalidHost::IpLiteral)?;
        if !ip_literal(&raw[1..close]) {
            return Err(InvalidHost::IpLiteral);
        }
        match &raw[close + 1..] {
            [] => (&raw[..=close], None),
            [b':', port @ ..] => (&raw[..=close], Some(port)),
            _ => return Err(InvalidHost::IpLiteral),
        }
    } else {
        match raw.iter().position(|&b| b == b':') {
            Some(colon) => (&raw[..colon], Some(&raw[colon + 1..])),
            None => (raw, None),
        }
    };
    let special = matches!(scheme, "http" | "https");
    if host.is_empty() && special {
        return Err(InvalidHost::Empty);
    }
    if !plain && host.first() != Some(&b'[') && !reg_name(host) {
        return Err(InvalidHost::Character);
    }
    let port = match port {
        None | Some([]) => None,
        Some(digits) => {
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(InvalidHost::Port);
            }
            let significant = &digits[digits.iter().take_while(|&&d| d == b'0').count()..];
            if significant.len() > 5 {
                return Err(InvalidHost::Port);
            }
            let n = significant
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            let n = u16::try_from(n).map_err(|_| InvalidHost::Port)?;
            let default = match scheme {
                "http" => Some(80),
                "https" => Some(443),
                _ => None,
            };
            (default != Some(n)).then_some(n)
        }
    };
    Ok((host, port))
}

/// RFC 3986 §3.2.2: `reg-name = *( unreserved / pct-encoded / sub-delims )`.
/// IPv4 addresses are reg-names too.
fn reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                let hex = host.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
                continue;
            }
            b if unreserved(b) || sub_delim(b) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// RFC 3986 §3.2.2: `IPv6address / IPvFuture`, between the brackets.
fn ip_literal(inside: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = inside {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| unreserved(b) || sub_delim(b) || b == b':');
    }
    std::str::from_utf8(inside).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok())
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// The key's form of a validated authority `raw`, split into `host` and
/// `port`: `raw` itself when it is already in that form (the usual case,
/// and no allocation).
fn normalized<'a>(raw: &'a [u8], host: &[u8], port: Option<u16>) -> Cow<'a, str> {
    let mut digits = [0u8; 20];
    let port_text: &[u8] = match port {
        None => &[],
        Some(port) => crate::decimal::digits(u64::from(port), &mut digits),
    };
    let canonical_port = match port {
        None => raw.len() == host.len(),
        Some(_) => raw.get(host.len() + 1..) == Some(port_text),
    };
    let canonical_host = host.iter().copied().eq(folded(host));
    if canonical_port && canonical_host {
        // Validated as ASCII.
        if let Ok(text) = std::str::from_utf8(raw) {
            return Cow::Borrowed(text);
        }
    }
    let mut out = String::with_capacity(host.len() + 6);
    out.extend(folded(host).map(char::from));
    if !port_text.is_empty() {
        out.push(':');
        out.extend(port_text.iter().map(|&d| d as char));
    }
    Cow::Owned(out)
}

/// A host's bytes in normal form: percent-encodings in uppercase
/// (RFC 3986 §6.2.2.1), everything else in lowercase (§6.2.2.1 too).
fn folded(host: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut hex = 0;
    host.iter().map(move |&b| {
        if hex > 0 {
            hex -= 1;
            b.to_ascii_uppercase()
        } else {
            if b == b'%' {
                hex = 2;
            }
            b.to_ascii_lowercase()
        }
    })
}

/// Lowercases a host and removes the scheme's default port (RFC 9110 §4.2.3:
/// `Example.COM:80` and `example.com` name the same origin over http).
/// Only `http` and `https` have a default port. A valid authority gets
/// exactly [`authority`]'s form; anything else is only trimmed and
/// lowercased (for values that do not come from a request, such as a
/// configured allowlist).
///
/// ```
/// use larder::policy::key::normalize_host;
///
/// assert_eq!(normalize_host("Example.COM:443", "https"), "example.com");
/// assert_eq!(normalize_host("example.com:443", "http"), "example.com:443");
/// ```
pub fn normalize_host(host: &str, scheme: &str) -> String {
    if let Ok(normal) = authority(host.trim().as_bytes(), scheme) {
        return normal.into_owned();
    }
    let host = host.trim().to_ascii_lowercase();
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return host,
    };
    match host.strip_suffix(default_port) {
        Some(stripped) => stripped.to_owned(),
        None => host,
    }
}

/// Builds the primary key of a request URI. `None` for methods that are not
/// looked up. `extra` is the route's extra key part
/// ([`Policy::key_extra`](crate::Policy::key_extra)), if it has one.
///
/// ```
/// use http::{header::HOST, HeaderMap, HeaderValue, Method, Uri};
/// use larder::policy::key::primary;
///
/// let uri: Uri = "/items".parse().unwrap();
/// let key_for = |host: &'static str, method: &Method| {
///     let mut headers = HeaderMap::new();
///     headers.insert(HOST, HeaderValue::from_static(host));
///     primary("larder", "default", 0, method, &uri, &headers, None)
/// };
/// assert_eq!(key_for("Example.COM", &Method::GET), key_for("example.com", &Method::HEAD));
/// assert_eq!(key_for("example.com", &Method::POST), None);
/// ```
pub fn primary(
    prefix: &str,
    namespace: &str,
    generation: u64,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    extra: Option<&str>,
) -> Option<PrimaryKey> {
    primary_at(
        prefix,
        namespace,
        generation,
        method,
        uri,
        &request_host(uri, headers),
        extra,
    )
}

/// [`primary`] for a request whose [`request_host`] the caller already
/// read: the long way checks the host and keys by it from one parse.
pub(crate) fn primary_at(
    prefix: &str,
    namespace: &str,
    generation: u64,
    method: &Method,
    uri: &Uri,
    host: &Result<Cow<'_, str>, InvalidHost>,
    extra: Option<&str>,
) -> Option<PrimaryKey> {
    let class = method_class(method)?;
    let host = host.as_deref().unwrap_or(INVALID_HOST);
    Some(primary_for(
        prefix,
        namespace,
        generation,
        class,
        scheme(uri),
        host,
        uri,
        extra,
    ))
}

/// Builds the primary key of a URI whose scheme and host are already known
/// (invalidation of `Location` targets uses this). `class` is a
/// [`method_class`]; `scheme` and `host` are used as given, so normalise
/// the host with [`normalize_host`] first.
///
/// ```
/// use http::{HeaderMap, Method, Uri};
/// use larder::policy::key::{primary, primary_for};
///
/// let uri: Uri = "http://example.com/items".parse().unwrap();
/// let direct = primary_for("larder", "default", 0, "GET", "http", "example.com", &uri, None);
/// let from_request = primary("larder", "default", 0, &Method::GET, &uri, &HeaderMap::new(), None);
/// assert_eq!(Some(direct), from_request);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn primary_for(
    prefix: &str,
    namespace: &str,
    generation: u64,
    class: &str,
    scheme: &str,
    host: &str,
    uri: &Uri,
    extra: Option<&str>,
) -> PrimaryKey {
    // The raw path and query, never normalised: the cache must not decide
    // that two URIs are equal where the origin might not.
    let path = uri.path();
    let query = uri.query();
    let mut material = String::with_capacity(
        40 + namespace.len()
            + scheme.len()
            + host.len()
            + path.len()
            + query.map_or(0, |q| q.len() + 1)
            + extra.map_or(0, |e| e.len() + 1),
    );
    let pieces = Pieces {
        namespace,
        class,
        scheme,
        host,
        path,
        query,
        extra,
    };
    pieces.each(|piece| material.push_str(piece));
    key_for(prefix, namespace, generation, material)
}

/// The pieces a URI's key material is made of, in order: the one layout
/// both the store keys and the hot tier's keys are built from, so that
/// the hot tier can hash and compare material without building it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pieces<'a> {
    pub namespace: &'a str,
    pub class: &'a str,
    pub scheme: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub extra: Option<&'a str>,
}

impl<'a> Pieces<'a> {
    /// Gives each piece in order; their concatenation is the material.
    pub fn each(&self, mut f: impl FnMut(&'a str)) {
        for piece in [
            MATERIAL_HEAD,
            self.namespace,
            "\n",
            self.class,
            "\n",
            self.scheme,
            "\n",
            self.host,
            "\n",
            self.path,
        ] {
            f(piece);
        }
        if let Some(q) = self.query {
            f("?");
            f(q);
        }
        // A URI holds no line break, so the extra part, last and after one,
        // can never make the material of another URI.
        if let Some(extra) = self.extra {
            f("\n");
            f(extra);
        }
    }

    /// True when `material` is exactly these pieces, compared in place.
    pub fn are(&self, material: &str) -> bool {
        let mut rest = Some(material);
        self.each(|piece| rest = rest.and_then(|r| r.strip_prefix(piece)));
        rest == Some("")
    }
}

fn key_for(prefix: &str, namespace: &str, generation: u64, material: String) -> PrimaryKey {
    let hash = blake3::hash(material.as_bytes());
    // The generation is in the store key only: a namespace purge moves every
    // key of the namespace at once (engine/namespaces.rs).
    let mut store_key = String::with_capacity(prefix.len() + namespace.len() + 60);
    store_key.push_str(prefix);
    store_key.push(':');
    push_escaped(&mut store_key, namespace);
    store_key.push(':');
    if generation == 0 {
        store_key.push('0');
    } else {
        let _ = write!(store_key, "{generation}");
    }
    store_key.push_str(":{");
    push_hex16(&mut store_key, hash.as_bytes());
    store_key.push('}');
    PrimaryKey {
        material,
        store_key,
    }
}

/// The keys of one call of a memoized function, laid out like a URI and
/// its variants: the function's key holds an index whose deletion forgets
/// every result at once, and each result sits under it by its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoKey {
    /// The function's key: where its index lives.
    pub function: PrimaryKey,
    /// The store key of this call's result.
    pub call_key: String,
    /// The material the stored result carries and is checked against.
    pub call_material: String,
}

/// Builds the keys of a call of `function` (a path such as
/// `my_app::users::profile`) with `args`, the arguments' serialized bytes.
pub fn memo(prefix: &str, namespace: &str, function: &str, args: &[u8]) -> MemoKey {
    // Memo keys have no generation: a memoized function is purged with its
    // own `purge()`, not with the namespace of routes.
    let function = key_for(
        prefix,
        namespace,
        0,
        format!("{MEMO_HEAD}{namespace}\n{function}"),
    );
    let args_hash = blake3::hash(args);
    let call_key = format!("{}:{}", function.store_key, hex16(args_hash.as_bytes()));
    // The whole hash, not the key's half of it: a stored result is only
    // ever served for the arguments it was computed from.
    let call_material = format!("{}\n{}", function.material, args_hash.to_hex());
    MemoKey {
        function,
        call_key,
        call_material,
    }
}

/// The store key of one variant: the primary key plus a hash of the Vary
/// field names and the request's values for them.
///
/// ```
/// use http::{header::ACCEPT_ENCODING, Uri};
/// use larder::policy::key::{primary_for, variant_key};
///
/// let uri: Uri = "/items".parse().unwrap();
/// let key = primary_for("larder", "default", 0, "GET", "http", "example.com", &uri, None);
/// let names = [ACCEPT_ENCODING];
/// let gzip = variant_key(&key, &names, &[Some(b"gzip".to_vec())]);
/// assert!(gzip.starts_with(&format!("{}:", key.store_key)));
/// assert_ne!(gzip, variant_key(&key, &names, &[None]));
/// ```
pub fn variant_key(
    primary: &PrimaryKey,
    names: &[HeaderName],
    values: &[Option<Vec<u8>>],
) -> String {
    let mut hasher = blake3::Hasher::new();
    for (name, value) in names.iter().zip(values) {
        hasher.update(&(name.as_str().len() as u64).to_le_bytes());
        hasher.update(name.as_str().as_bytes());
        match value {
            None => {
                hasher.update(&[0]);
            }
            Some(v) => {
                hasher.update(&[1]);
                hasher.update(&(v.len() as u64).to_le_bytes());
                hasher.update(v);
            }
        }
    }
    format!(
        "{}:{}",
        primary.store_key,
        hex16(hasher.finalize().as_bytes())
    )
}

/// What a response's `Vary` says.
///
/// ```
/// use http::{header::VARY, HeaderMap, HeaderValue};
/// use larder::policy::key::{response_vary, Vary};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(VARY, HeaderValue::from_static("accept-encoding, *"));
/// assert_eq!(response_vary(&headers), Vary::Star);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    /// `Vary: *`, alone or in a list: the response is never reused (RFC 9111 §4.1).
    Star,
    /// The named fields, lowercased, sorted, without duplicates.
    Names(Vec<HeaderName>),
}

/// Parses every `Vary` field line of a response. A line that is not
/// UTF-8, or a member that is not a field name, reads as `*`: the response
/// is then never reused, rather than reused for the wrong requests.
///
/// ```
/// use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE, VARY};
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::key::{response_vary, Vary};
///
/// let mut headers = HeaderMap::new();
/// headers.append(VARY, HeaderValue::from_static("Accept-Language, accept-encoding"));
/// headers.append(VARY, HeaderValue::from_static("ACCEPT-LANGUAGE"));
/// let expected = Vary::Names(vec![ACCEPT_ENCODING, ACCEPT_LANGUAGE]);
/// assert_eq!(response_vary(&headers), expected);
/// ```
pub fn response_vary(headers: &HeaderMap) -> Vary {
    let mut names = Vec::new();
    for value in headers.get_all(http::header::VARY) {
        // A Vary the cache cannot read could name anything: treat it as
        // `*` (never reused) rather than ignore it and mix variants.
        let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
            return Vary::Star;
        };
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == VARY_STAR {
                return Vary::Star;
            }
            match HeaderName::from_bytes(item.to_ascii_lowercase().as_bytes()) {
                Ok(name) => names.push(name),
                Err(_) => return Vary::Star,
            }
        }
    }
    sort_names(&mut names);
    Vary::Names(names)
}

/// The union of a route's declared vary names and a response's, sorted,
/// without duplicates.
///
/// ```
/// use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE};
/// use larder::policy::key::merge_vary;
///
/// let merged = merge_vary(&[ACCEPT_LANGUAGE], &[ACCEPT_ENCODING, ACCEPT_LANGUAGE]);
/// assert_eq!(merged, [ACCEPT_ENCODING, ACCEPT_LANGUAGE]);
/// ```
pub fn merge_vary(declared: &[HeaderName], response: &[HeaderName]) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = declared.iter().chain(response).cloned().collect();
    sort_names(&mut names);
    names
}

fn sort_names(names: &mut Vec<HeaderName>) {
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
}

/// The request's values for the Vary fields, normalised so that
/// insignificant differences select the same variant (RFC 9111 §4.1): field
/// lines are combined, list members trimmed, empty members dropped. `None`
/// when the field is absent (absent matches only absent).
///
/// ```
/// use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE};
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::key::vary_values;
///
/// let mut request = HeaderMap::new();
/// request.append(ACCEPT_ENCODING, HeaderValue::from_static("gzip ,, "));
/// request.append(ACCEPT_ENCODING, HeaderValue::from_static("br"));
/// let values = vary_values(&[ACCEPT_ENCODING, ACCEPT_LANGUAGE], &request);
/// assert_eq!(values, [Some(b"gzip,br".to_vec()), None]);
/// ```
pub fn vary_values(names: &[HeaderName], request: &HeaderMap) -> Vec<Option<Vec<u8>>> {
    names
        .iter()
        .map(|name| {
            let mut lines = request.get_all(name).iter().peekable();
            lines.peek()?;
            let mut out = Vec::new();
            for line in lines {
                for member in line.as_bytes().split(|b| *b == b',') {
                    let member = member.trim_ascii();
                    if member.is_empty() {
                        continue;
                    }
                    if !out.is_empty() {
                        out.push(b',');
                    }
                    out.extend_from_slice(member);
                }
            }
            Some(out)
        })
        .collect()
}

/// True when a stored response's Vary fields match the request's: every
/// field named in the stored Vary has the same normalised value, and absent
/// on both sides is a match (RFC 9111 §4.1). `stored` holds values
/// normalised as [`vary_values`] produces them.
///
/// ```
/// use bytes::Bytes;
/// use http::{header::ACCEPT_ENCODING, HeaderMap, HeaderValue};
/// use larder::policy::key::vary_matches;
///
/// let stored = [(ACCEPT_ENCODING, Some(Bytes::from_static(b"gzip,br")))];
/// let mut request = HeaderMap::new();
/// request.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
/// assert!(vary_matches(&stored, &request));
/// assert!(!vary_matches(&stored, &HeaderMap::new()));
/// ```
pub fn vary_matches(stored: &[(HeaderName, Option<bytes::Bytes>)], request: &HeaderMap) -> bool {
    stored.iter().all(|(name, value)| {
        let now = vary_values(std::slice::from_ref(name), request)
            .pop()
            .flatten();
        now.as_deref() == value.as_deref()
    })
}

/// Escapes free text (a namespace, a tag) for use inside a store key:
/// only characters that cannot be mistaken for key structure (`:`, Redis
/// hash-tag braces) are kept; the others are percent-encoded.
///
/// ```
/// use larder::policy::key::escape;
///
/// assert_eq!(escape("items"), "items");
/// assert_eq!(escape("a:{b}"), "a%3A%7Bb%7D");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped(&mut out, text);
    out
}

fn push_escaped(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    // Namespaces are nearly always plain words: copy them whole.
    if text.bytes().all(safe) {
        out.push_str(text);
        return;
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// 128 bits of a hash, as lowercase hex: collision-resistant enough for a
/// key, and every entry carries its full material for the final check.
fn hex16(hash: &[u8; 32]) -> String {
    let mut out = String::with_capacity(32);
    push_hex16(&mut out, hash);
    out
}

fn push_hex16(out: &mut String, hash: &[u8; 32]) {
    // Both digits of a byte at once: every store key writes sixteen.
    const PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut table = [[0u8; 2]; 256];
        let mut b = 0;
        while b < 256 {
            table[b] = [HEX[b >> 4], HEX[b & 15]];
            b += 1;
        }
        table
    };
    let mut digits = [0u8; 32];
    for (pair, b) in digits.chunks_exact_mut(2).zip(&hash[..16]) {
        pair.copy_from_slice(&PAIRS[usize::from(*b)]);
    }
    // Hex digits are ASCII: one copy instead of 32 pushes.
    out.push_str(std::str::from_utf8(&digits).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{ACCEPT_ENCODING, ACCEPT_LANGUAGE, HOST};
    use http::HeaderValue;

    fn key(method: &str, uri: &str, host: Option<&str>) -> Option<PrimaryKey> {
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(HOST, HeaderValue::from_str(h).unwrap());
        }
        primary(
            "larder",
            "default",
            0,
            &method.parse().unwrap(),
            &uri.parse().unwrap(),
            &headers,
            None,
        )
    }

    #[test]
    fn store_keys_carry_the_first_half_of_the_hash_as_lowercase_hex() {
        let mut hash = [0u8; 32];
        for (i, b) in hash.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0xa5);
        }
        let expected: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex16(&hash), expected);
        assert_eq!(hex16(&[0xff; 32]), "f".repeat(32));
        assert_eq!(hex16(&[0; 32]), "0".repeat(32));
    }

    #[test]
    fn the_plain_host_shortcut_agrees_with_the_full_parse() {
        let hosts = [
            "example.com",
            "a-b.example",
            "127.0.0.1",
            "127.0.0.1:3000",
            "example.com:80",
            "example.com:8080",
            "example.com:080",
            "example.com:65535",
            "example.com:",
            "Example.com",
            "localhost:1",
            "-",
            ".",
            "a..b",
            "example.com:99999",
            "",
            "example.com:0",
            "exa_mple.com",
            // Five digits: the ports bench/run and many proxies listen on.
            "127.0.0.1:43210",
            "example.com:10000",
            "example.com:65536",
            "example.com:70000",
            "example.com:01234",
            "example.com:123456",
        ];
        for scheme_uri in ["/items", "https://example.com/items"] {
            let uri: Uri = scheme_uri.parse().unwrap();
            for host in hosts {
                let headers = one_host(host.as_bytes());
                let full = resolve_host(&uri, &headers)
                    .map(|n| n.map(|n| normalized(n.raw, n.host, n.port).into_owned()));
                if let Some(plain) = plain_host(&uri, &headers) {
                    assert_eq!(full, Ok(Some(plain.to_owned())), "{host:?}");
                }
            }
        }
        // Every byte, inside a host and alone: the shortcut takes exactly
        // the ones it names, and what it takes the full parse gives too.
        for b in 0..=255u8 {
            for raw in [vec![b'a', b, b'z'], vec![b]] {
                let taken = plain_authority(&raw, "http").is_some();
                let named = b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
                assert_eq!(taken, named, "byte {b:#04x} in {raw:?}");
                if taken {
                    let full = split_authority(&raw, "http").map(|(h, p)| normalized(&raw, h, p));
                    assert_eq!(
                        full.as_deref().ok().map(str::as_bytes),
                        Some(raw.as_slice())
                    );
                }
            }
        }
        let uri: Uri = "/items".parse().unwrap();
        assert!(plain_host(&uri, &one_host(b"example.com:3000")).is_some());
        assert!(plain_host(&uri, &one_host(b"127.0.0.1:43210")).is_some());
        assert!(plain_host(&uri, &one_host(b"127.0.0.1:65535")).is_some());
        assert!(plain_host(&uri, &one_host(b"127.0.0.1:65536")).is_none());
        // `authority` takes the same shortcut: what it gives must be what
        // the full parse gives.
        for scheme in ["http", "https", "ftp"] {
            for host in hosts {
                let raw = host.as_bytes();
                let full = split_authority(raw, scheme).map(|(h, p)| normalized(raw, h, p));
                if let Some(plain) = plain_authority(raw, scheme) {
                    assert_eq!(full.as_deref(), Ok(plain), "{host:?} over {scheme}");
                }
            }
        }
        assert_eq!(
            plain_authority(b"example.com:3000", "https"),
            Some("example.com:3000")
        );
    }

    #[test]
    fn the_material_names_the_entry_format() {
        let format = format!("-f{}\n", crate::entry::FORMAT_VERSION);
        assert!(
            MATERIAL_HEAD.ends_with(&format),
            "bump MATERIAL_HEAD with the format"
        );
        assert!(
            MEMO_HEAD.ends_with(&format),
            "bump MEMO_HEAD with the format"
        );
    }

    #[test]
    fn pieces_compare_as_the_material_they_make() {
        let uri: Uri = "/items?page=2".parse().unwrap();
        let key = primary_for(
            "larder",
            "ns",
            0,
            "GET",
            "http",
            "a.example",
            &uri,
            Some("x"),
        );
        let pieces = Pieces {
            namespace: "ns",
            class: "GET",
            scheme: "http",
            host: "a.example",
            path: "/items",
            query: Some("page=2"),
            extra: Some("x"),
        };
        assert!(pieces.are(&key.material));
        assert!(!pieces.are(&format!("{}y", key.material)));
        assert!(!Pieces {
            extra: None,
            ..pieces
        }
        .are(&key.material));
        assert!(!Pieces {
            query: Some("page=3"),
            ..pieces
        }
        .are(&key.material));
        // Pieces that split differently but join the same are the same material.
        let moved = Pieces {
            path: "/items?page=2",
            query: None,
            ..pieces
        };
        assert!(moved.are(&key.material));
    }

    #[test]
    fn head_shares_the_get_entry_9111_4() {
        assert_eq!(key("HEAD", "/a", Some("x")), key("GET", "/a", Some("x")));
    }

    #[test]
    fn unsafe_methods_have_no_key_9111_4() {
        assert!(key("POST", "/a", Some("x")).is_none());
        assert!(key("PURGE", "/a", Some("x")).is_none());
    }

    #[test]
    fn host_is_case_insensitive_and_default_port_dropped_9110_4_2_3() {
        let a = key("GET", "/a", Some("Example.COM")).unwrap();
        assert_eq!(a, key("GET", "/a", Some("example.com:80")).unwrap());
        assert_ne!(a, key("GET", "/a", Some("example.com:8080")).unwrap());
        assert_ne!(a, key("GET", "/a", Some("example.org")).unwrap());
        assert_eq!(normalize_host("A.b:443", "https"), "a.b");
        assert_eq!(normalize_host("a.b:443", "http"), "a.b:443");
    }

    fn one_host(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn absolute_form_authority_replaces_host_9112_3_2_2() {
        let uri: Uri = "https://good.example/a".parse().unwrap();
        assert_eq!(host(&uri, &HeaderMap::new()), "good.example");
        assert_eq!(host(&uri, &one_host(b"GOOD.example:443")), "good.example");
        assert_eq!(scheme(&uri), "https");
    }

    #[test]
    fn a_host_that_differs_from_the_target_authority_is_refused() {
        // A handler reading Host would answer for evil.example under
        // good.example's key.
        let uri: Uri = "https://good.example/a".parse().unwrap();
        let headers = one_host(b"evil.example");
        assert_eq!(request_host(&uri, &headers), Err(InvalidHost::Conflict));
        assert_eq!(host(&uri, &headers), INVALID_HOST);
    }

    #[test]
    fn host_is_an_rfc_3986_authority_and_nothing_after_an_at_3986_3_2() {
        // Every way of making a key read `victim.example` while the
        // origin reads something else.
        for (attack, why) in [
            (&b"evil.example/?@victim.example"[..], InvalidHost::Userinfo),
            (b"evil.example#@victim.example", InvalidHost::Userinfo),
            (b"evil.example\\@victim.example", InvalidHost::Userinfo),
            (b"evil.example@victim.example", InvalidHost::Userinfo),
            (b"user:pass@victim.example", InvalidHost::Userinfo),
            (b"victim.example/evil", InvalidHost::Delimiter),
            (b"victim.example?x", InvalidHost::Delimiter),
            (b"victim.example#x", InvalidHost::Delimiter),
            (b"victim.example\\x", InvalidHost::Delimiter),
            (b"victim.example evil.example", InvalidHost::Whitespace),
            (b" victim.example", InvalidHost::Whitespace),
            (b"victim.example\t", InvalidHost::Whitespace),
            (b"victim.example\x00", InvalidHost::Whitespace),
            ("v\u{ef}ctim.example".as_bytes(), InvalidHost::NotAscii),
            (b"victim.example\xff", InvalidHost::NotAscii),
            (b"", InvalidHost::Empty),
            (b":80", InvalidHost::Empty),
            (b"victim.example:80:80", InvalidHost::Port),
            (b"victim.example:http", InvalidHost::Port),
            (b"victim.example:65536", InvalidHost::Port),
            (b"victim.example:-1", InvalidHost::Port),
            (b"vic<tim>.example", InvalidHost::Character),
            (b"victim%2.example", InvalidHost::Character),
            (b"victim%zz.example", InvalidHost::Character),
            (b"[::1", InvalidHost::IpLiteral),
            (b"[::1]x", InvalidHost::IpLiteral),
            (b"[victim.example]", InvalidHost::IpLiteral),
            (b"[v.x]", InvalidHost::IpLiteral),
        ] {
            assert_eq!(
                authority(attack, "http"),
                Err(why),
                "{:?}",
                String::from_utf8_lossy(attack)
            );
            // (A NUL cannot even be a field value.)
            if let Ok(value) = HeaderValue::from_bytes(attack) {
                let mut headers = HeaderMap::new();
                headers.insert(HOST, value);
                let uri: Uri = "/a".parse().unwrap();
                assert_eq!(host(&uri, &headers), INVALID_HOST);
            }
        }
    }

    #[test]
    fn an_absolute_form_authority_with_userinfo_is_refused_9110_4_2_4() {
        let uri: Uri = "http://evil.example@victim.example/x".parse().unwrap();
        assert_eq!(
            request_host(&uri, &HeaderMap::new()),
            Err(InvalidHost::Userinfo)
        );
    }

    #[test]
    fn valid_authorities_keep_their_host_and_lose_the_default_port_3986_6_2_3() {
        for (raw, scheme, normal) in [
            ("Example.COM", "http", "example.com"),
            ("example.com:80", "http", "example.com"),
            ("example.com:0080", "http", "example.com"),
            ("example.com:", "http", "example.com"),
            ("example.com:443", "http", "example.com:443"),
            ("example.com:443", "https", "example.com"),
            ("example.com:08080", "http", "example.com:8080"),
            ("192.0.2.7:8080", "http", "192.0.2.7:8080"),
            ("[2001:DB8::1]", "http", "[2001:db8::1]"),
            ("[::ffff:192.0.2.7]:443", "https", "[::ffff:192.0.2.7]"),
            ("[v1.Fe:x]", "http", "[v1.fe:x]"),
            ("a_b-c~d.example", "http", "a_b-c~d.example"),
            ("caf%c3%a9.example", "http", "caf%C3%A9.example"),
            ("example.com.", "http", "example.com."),
        ] {
            assert_eq!(
                authority(raw.as_bytes(), scheme).as_deref(),
                Ok(normal),
                "{raw}"
            );
            assert_eq!(normalize_host(raw, scheme), normal, "{raw}");
        }
        // Only http and https need a host.
        assert_eq!(authority(b"", "file").as_deref(), Ok(""));
        // A host already in normal form is not copied (the hit path).
        for normal in [
            "example.com",
            "example.com:8080",
            "[::1]:0",
            "caf%C3%A9.example",
        ] {
            assert!(
                matches!(authority(normal.as_bytes(), "http"), Ok(Cow::Borrowed(_))),
                "{normal}"
            );
        }
        for other in [
            "Example.com",
            "example.com:80",
            "example.com:",
            "example.com:08080",
        ] {
            assert!(
                matches!(authority(other.as_bytes(), "http"), Ok(Cow::Owned(_))),
                "{other}"
            );
        }
    }

    #[test]
    fn two_host_lines_are_refused_9112_3_2() {
        let mut headers = one_host(b"a.example");
        headers.append(HOST, HeaderValue::from_static("a.example"));
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(request_host(&uri, &headers), Err(InvalidHost::Repeated));
    }

    #[test]
    fn no_host_at_all_keys_as_empty_and_nothing_invalid_falls_onto_it() {
        let uri: Uri = "/".parse().unwrap();
        assert_eq!(host(&uri, &HeaderMap::new()), "");
        for invalid in [&b"v\xc3\xafctim.example"[..], b"", b" "] {
            assert_ne!(host(&uri, &one_host(invalid)), "", "{invalid:?}");
        }
    }

    #[test]
    fn scheme_is_keyed() {
        let http = key("GET", "http://h/a", None).unwrap();
        let https = key("GET", "https://h/a", None).unwrap();
        assert_ne!(http, https);
    }

    #[test]
    fn path_and_query_are_raw_not_normalised() {
        let plain = key("GET", "/a/b?x=1&y=2", Some("h")).unwrap();
        for other in [
            "/a%2Fb?x=1&y=2",
            "/a//b?x=1&y=2",
            "/a/./b?x=1&y=2",
            "/a/b?y=2&x=1",
            "/a/b?x=1&y=2&",
            "/A/b?x=1&y=2",
        ] {
            assert_ne!(plain, key("GET", other, Some("h")).unwrap(), "{other}");
        }
        // An empty query differs from no query: the origin may tell them apart.
        assert_ne!(key("GET", "/a?", Some("h")), key("GET", "/a", Some("h")));
    }

    #[test]
    fn namespace_is_keyed_and_escaped() {
        let uri: Uri = "/a".parse().unwrap();
        let h = HeaderMap::new();
        let a = primary("p", "items", 0, &Method::GET, &uri, &h, None).unwrap();
        let b = primary("p", "users", 0, &Method::GET, &uri, &h, None).unwrap();
        assert_ne!(a.store_key, b.store_key);
        assert!(a.store_key.starts_with("p:items:0:{"));
        let odd = primary("p", "a:{b}", 0, &Method::GET, &uri, &h, None).unwrap();
        assert!(
            odd.store_key.starts_with("p:a%3A%7Bb%7D:0:{"),
            "{}",
            odd.store_key
        );
    }

    #[test]
    fn a_route_extra_part_is_keyed_apart_from_the_uri() {
        let uri: Uri = "/a".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("h"));
        let k = |extra| primary("p", "n", 0, &Method::GET, &uri, &h, extra).unwrap();
        let plain = k(None);
        let alice = k(Some("alice"));
        assert_ne!(plain, alice);
        assert_ne!(alice, k(Some("bob")));
        assert_ne!(plain, k(Some("")), "an empty extra is still an extra");
        assert_eq!(alice, k(Some("alice")));
        assert!(
            alice.material.ends_with("\n/a\nalice"),
            "{}",
            alice.material
        );
        // HEAD still shares GET's entry.
        let head = primary("p", "n", 0, &Method::HEAD, &uri, &h, Some("alice")).unwrap();
        assert_eq!(head, alice);
    }

    #[test]
    fn memo_calls_share_their_function_slot_and_differ_by_arguments() {
        let a = memo("p", "n", "app::profile", b"[1]");
        let b = memo("p", "n", "app::profile", b"[2]");
        assert_eq!(a.function, b.function);
        assert_ne!(a.call_key, b.call_key);
        assert!(a.call_key.starts_with(&a.function.store_key));
        assert_ne!(a.call_material, b.call_material);
        let other = memo("p", "n", "app::settings", b"[1]");
        assert_ne!(a.function, other.function);
        assert_ne!(
            a.function,
            memo("p", "m", "app::profile", b"[1]").function,
            "the namespace is keyed"
        );
        // A memo key never lands where a URI's key could.
        let uri: Uri = "/".parse().unwrap();
        let page = primary("p", "n", 0, &Method::GET, &uri, &HeaderMap::new(), None).unwrap();
        assert_ne!(page.material, a.function.material);
    }

    #[test]
    fn vary_star_anywhere_in_the_list_9111_4_1() {
        let mut h = HeaderMap::new();
        h.append(http::header::VARY, HeaderValue::from_static("accept"));
        h.append(http::header::VARY, HeaderValue::from_static("origin, *"));
        assert_eq!(response_vary(&h), Vary::Star);
    }

    #[test]
    fn vary_names_lowercased_sorted_deduplicated_9111_4_1() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::VARY,
            HeaderValue::from_static("Accept-Language, accept-encoding"),
        );
        h.append(
            http::header::VARY,
            HeaderValue::from_static("ACCEPT-LANGUAGE,, accept-encoding"),
        );
        assert_eq!(
            response_vary(&h),
            Vary::Names(vec![ACCEPT_ENCODING, ACCEPT_LANGUAGE])
        );
        assert_eq!(
            merge_vary(&[ACCEPT_LANGUAGE], &[ACCEPT_ENCODING, ACCEPT_LANGUAGE]),
            vec![ACCEPT_ENCODING, ACCEPT_LANGUAGE]
        );
    }

    #[test]
    fn unreadable_vary_is_treated_as_star_9111_4_1() {
        for bad in [&b"accept, bad name"[..], b"accept, \xff"] {
            let mut h = HeaderMap::new();
            h.insert(http::header::VARY, HeaderValue::from_bytes(bad).unwrap());
            assert_eq!(response_vary(&h), Vary::Star, "{bad:?}");
        }
    }

    #[test]
    fn generation_moves_the_store_key_not_the_material() {
        let uri: Uri = "/a".parse().unwrap();
        let h = HeaderMap::new();
        let g0 = primary("p", "ns", 0, &Method::GET, &uri, &h, None).unwrap();
        let g1 = primary("p", "ns", 1, &Method::GET, &uri, &h, None).unwrap();
        assert_ne!(g0.store_key, g1.store_key);
        assert_eq!(g0.material, g1.material);
        assert!(g1.store_key.starts_with("p:ns:1:{"));
    }

    #[test]
    fn vary_values_absent_differs_from_empty_9111_4_1() {
        let names = [ACCEPT_LANGUAGE];
        let absent = vary_values(&names, &HeaderMap::new());
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_LANGUAGE, HeaderValue::from_static(""));
        let empty = vary_values(&names, &h);
        assert_eq!(absent, vec![None]);
        assert_eq!(empty, vec![Some(Vec::new())]);
        let p = key("GET", "/", Some("h")).unwrap();
        assert_ne!(
            variant_key(&p, &names, &absent),
            variant_key(&p, &names, &empty)
        );
    }

    #[test]
    fn vary_values_normalise_whitespace_and_lines_9111_4_1() {
        let names = [ACCEPT_LANGUAGE];
        let mut a = HeaderMap::new();
        a.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("en,  fr"));
        let mut b = HeaderMap::new();
        b.append(ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
        b.append(ACCEPT_LANGUAGE, HeaderValue::from_static(" fr "));
        assert_eq!(vary_values(&names, &a), vary_values(&names, &b));
        let mut c = HeaderMap::new();
        c.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("fr, en"));
        assert_ne!(vary_values(&names, &a), vary_values(&names, &c));
    }

    #[test]
    fn vary_matches_compares_normalised_values_and_absence_9111_4_1() {
        let stored = vec![
            (ACCEPT_LANGUAGE, Some(bytes::Bytes::from_static(b"en,fr"))),
            (ACCEPT_ENCODING, None),
        ];
        let mut req = HeaderMap::new();
        req.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("en, fr"));
        assert!(vary_matches(&stored, &req));
        req.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(
            !vary_matches(&stored, &req),
            "present where the stored request had none"
        );
        req.remove(ACCEPT_ENCODING);
        req.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("de"));
        assert!(!vary_matches(&stored, &req));
        assert!(vary_matches(&[], &req), "no Vary matches every request");
    }

    #[test]
    fn variant_keys_differ_by_value_and_share_the_primary_slot() {
        let p = key("GET", "/", Some("h")).unwrap();
        let names = [ACCEPT_LANGUAGE];
        let en = variant_key(&p, &names, &[Some(b"en".to_vec())]);
        let fr = variant_key(&p, &names, &[Some(b"fr".to_vec())]);
        assert_ne!(en, fr);
        assert!(en.starts_with(&p.store_key));
    }
}
