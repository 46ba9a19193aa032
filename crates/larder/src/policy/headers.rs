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
/// name a field we hold, so they are skipped. `Host` is never one: it is
/// meant for every recipient (RFC 9110 §7.2), and a request that lost it
/// would be keyed and answered as one that never had it.
fn connection_options(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b','))
        // HeaderName lowercases, so matching is case-insensitive.
        .filter_map(|option| HeaderName::from_bytes(option.trim_ascii()).ok())
        .filter(|name| name != http::header::HOST)
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

/// Updates a stored response's header fields from a 304 that revalidated
/// it (RFC 9111 §3.2, §4.3.4): each field the 304 carries replaces the
/// stored field of that name, but for `Content-Length` (the 304 has no
/// body to describe) and hop-by-hop fields (they describe the 304's
/// connection).
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::headers::freshen;
///
/// let mut stored = HeaderMap::new();
/// stored.insert("cache-control", HeaderValue::from_static("max-age=60"));
/// stored.insert("content-length", HeaderValue::from_static("1234"));
/// let mut not_modified = HeaderMap::new();
/// not_modified.insert("cache-control", HeaderValue::from_static("max-age=600"));
/// not_modified.insert("content-length", HeaderValue::from_static("0"));
/// freshen(&mut stored, &not_modified);
/// assert_eq!(stored["cache-control"], "max-age=600");
/// assert_eq!(stored["content-length"], "1234");
/// ```
pub fn freshen(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    let mut update = not_modified.clone();
    strip_hop_by_hop(&mut update);
    update.remove(http::header::CONTENT_LENGTH);
    for name in update.keys() {
        stored.remove(name);
    }
    for (name, value) in &update {
        stored.append(name.clone(), value.clone());
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
    fn connection_never_names_host_away_9110_7_2() {
        let mut map = headers(&[
            ("connection", b"Host, x-hop"),
            ("host", b"a.example"),
            ("x-hop", b"1"),
        ]);
        strip_hop_by_hop(&mut map);
        assert_eq!(names(&map), ["host"]);
    }

    #[test]
    fn nothing_to_strip_leaves_headers_alone_9111_3_1() {
        let original = headers(&[("etag", b"\"a\""), ("vary", b"accept"), ("vary", b"origin")]);
        let mut map = original.clone();
        strip_hop_by_hop(&mut map);
        assert_eq!(map, original);
    }

    #[test]
    fn a_304_replaces_stored_fields_but_content_length_9111_3_2() {
        let mut stored = headers(&[
            ("cache-control", b"max-age=60"),
            ("content-length", b"1234"),
            ("content-type", b"text/html"),
            ("x-seen", b"1"),
            ("x-seen", b"2"),
        ]);
        let update = headers(&[
            ("cache-control", b"max-age=600"),
            ("content-length", b"0"),
            ("x-seen", b"3"),
            ("connection", b"x-conn"),
            ("x-conn", b"hop"),
            ("date", b"Tue, 14 Nov 2023 22:13:20 GMT"),
        ]);
        freshen(&mut stored, &update);
        assert_eq!(stored["cache-control"], "max-age=600");
        assert_eq!(stored["content-length"], "1234");
        assert_eq!(stored["content-type"], "text/html");
        let seen: Vec<_> = stored.get_all("x-seen").iter().collect();
        assert_eq!(seen, ["3"]);
        assert!(stored.contains_key("date"));
        assert!(!stored.contains_key("x-conn") && !stored.contains_key("connection"));
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
