//! Which response header fields a cache stores (RFC 9111 §3.1, RFC 9110 §7.6.1).

use http::header::CONNECTION;
use http::{HeaderMap, HeaderName};

/// Fields that describe one connection, never the response: RFC 9110 §7.6.1
/// names them, and `Keep-Alive`/`Proxy-Connection` are their pre-standard
/// forms still seen in the wild (RFC 9110 §7.6.1, RFC 9112 §9.3).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop fields before storing: `Connection` and every field it
/// names, `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
/// `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::headers::strip_hop_by_hop;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("connection", HeaderValue::from_static("X-Trace, close"));
/// headers.insert("x-trace", HeaderValue::from_static("abc"));
/// headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
/// headers.insert("content-type", HeaderValue::from_static("text/plain"));
/// strip_hop_by_hop(&mut headers);
/// let kept: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
/// assert_eq!(kept, ["content-type"]);
/// ```
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Read the connection options before `Connection` itself goes.
    for name in connection_options(headers) {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The field names listed in every `Connection` line (RFC 9110 §7.6.1).
/// Options that are not valid field names (`close` is one that is) cannot
/// name a field we hold, so they are skipped.
fn connection_options(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b','))
        // HeaderName lowercases, so matching is case-insensitive.
        .filter_map(|option| HeaderName::from_bytes(option.trim_ascii()).ok())
        .collect()
}

/// Removes the fields named by a qualified `private="..."` or
/// `no-cache="..."` directive (RFC 9111 §5.2.2.4, §5.2.2.7), every field
/// line of each.
///
/// ```
/// use http::header::{CONTENT_TYPE, SET_COOKIE};
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::headers::strip_named;
///
/// let mut headers = HeaderMap::new();
/// headers.append(SET_COOKIE, HeaderValue::from_static("a=1"));
/// headers.append(SET_COOKIE, HeaderValue::from_static("b=2"));
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
/// strip_named(&mut headers, &[SET_COOKIE]);
/// assert!(!headers.contains_key(SET_COOKIE));
/// assert!(headers.contains_key(CONTENT_TYPE));
/// ```
pub fn strip_named(headers: &mut HeaderMap, names: &[HeaderName]) {
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(fields: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn fixed_hop_by_hop_fields_are_not_stored_9111_3_1() {
        let mut map = headers(&[
            ("keep-alive", b"timeout=5"),
            ("proxy-connection", b"keep-alive"),
            ("proxy-authenticate", b"Basic realm=x"),
            ("proxy-authorization", b"Basic eDp5"),
            ("te", b"trailers"),
            ("trailer", b"x-checksum"),
            ("transfer-encoding", b"chunked"),
            ("upgrade", b"websocket"),
            ("content-type", b"text/plain"),
            ("cache-control", b"max-age=60"),
        ]);
        strip_hop_by_hop(&mut map);
        assert_eq!(names(&map), ["cache-control", "content-type"]);
    }

    #[test]
    fn connection_and_the_fields_it_names_are_not_stored_9110_7_6_1() {
        let mut map = headers(&[
            ("connection", b"X-Hop, close"),
            ("connection", b"x-other ,,"),
            ("x-hop", b"1"),
            ("x-hop", b"2"),
            ("x-other", b"3"),
            ("x-end-to-end", b"4"),
        ]);
        strip_hop_by_hop(&mut map);
        assert_eq!(names(&map), ["x-end-to-end"]);
    }

    #[test]
    fn connection_options_are_case_insensitive_9110_5_1() {
        let mut map = headers(&[("connection", b"X-HOP"), ("x-hop", b"1"), ("x-keep", b"2")]);
        strip_hop_by_hop(&mut map);
        assert_eq!(names(&map), ["x-keep"]);
    }

    #[test]
    fn invalid_connection_options_are_skipped_9110_7_6_1() {
        let mut map = headers(&[
            ("connection", b"bad name, \"quoted\", caf\xe9, x-hop"),
            ("x-hop", b"1"),
            ("x-keep", b"2"),
        ]);
        strip_hop_by_hop(&mut map);
        assert_eq!(names(&map), ["x-keep"]);
    }

    #[test]
    fn nothing_to_strip_leaves_headers_alone_9111_3_1() {
        let original = headers(&[("etag", b"\"a\""), ("vary", b"accept"), ("vary", b"origin")]);
        let mut map = original.clone();
        strip_hop_by_hop(&mut map);
        assert_eq!(map, original);
    }

    #[test]
    fn qualified_private_and_no_cache_fields_are_stripped_9111_5_2_2_4() {
        let mut map = headers(&[
            ("set-cookie", b"a=1"),
            ("set-cookie", b"b=2"),
            ("x-user", b"alice"),
            ("content-type", b"text/plain"),
        ]);
        let named = [
            HeaderName::from_static("set-cookie"),
            HeaderName::from_static("x-user"),
            HeaderName::from_static("x-absent"),
        ];
        strip_named(&mut map, &named);
        assert_eq!(names(&map), ["content-type"]);
        strip_named(&mut map, &[]);
        assert_eq!(names(&map), ["content-type"]);
    }
}
