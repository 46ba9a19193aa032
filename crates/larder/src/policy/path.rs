//! The path a rule is matched against (RFC 3986 §6.2.2), so that encoding
//! cannot dodge a rule: `/%61ccount`, `//account` and `/x/../account` are
//! all `/account` to a rule, as they are to nearly every origin. Keys and
//! upstreams keep the raw path: only the choice of rule uses this.

use std::borrow::Cow;

/// Normalises a request path for matching route rules:
///
/// - percent-encoded unreserved characters are decoded (RFC 3986 §6.2.2.2:
///   `%61` is `a`, `%2E` is `.`), and the hex digits of every other
///   percent-encoding are uppercased (§6.2.2.1);
/// - dot-segments are resolved (§5.2.4, §6.2.2.3): `/a/./b` is `/a/b`,
///   `/a/../b` is `/b`, and `..` never climbs above the root;
/// - repeated slashes are merged: `//a///b` is `/a/b`.
///
/// Nothing else is decoded: `%2F` stays `%2F` and `%00` stays `%00`, since
/// origins differ on what those mean, and neither is turned into a `/` the
/// origin might not see. A path that does not start with `/` (`*`) is left
/// alone. Borrowed when there is nothing to do (the common case).
///
/// ```
/// use larder::policy::path::for_rules;
///
/// assert_eq!(for_rules("/%61ccount/profile"), "/account/profile");
/// assert_eq!(for_rules("//account//profile"), "/account/profile");
/// assert_eq!(for_rules("/x/../account"), "/account");
/// assert_eq!(for_rules("/account%2fprofile"), "/account%2Fprofile");
/// assert!(matches!(for_rules("/items/42"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn for_rules(path: &str) -> Cow<'_, str> {
    if !path.starts_with('/') || is_normal(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path.as_bytes());
    let mut out: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    // The first segment is the empty one before the leading `/`.
    let segments: Vec<&[u8]> = decoded.split(|&b| b == b'/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        trailing_slash = false;
        match *segment {
            b"" | b"." => trailing_slash = i == last,
            b".." => {
                out.pop();
                trailing_slash = i == last;
            }
            s => out.push(s),
        }
    }
    let mut normal = String::with_capacity(path.len());
    for segment in &out {
        normal.push('/');
        // Only ASCII bytes were decoded; the rest is the path's own UTF-8.
        normal.push_str(std::str::from_utf8(segment).unwrap_or_default());
    }
    if out.is_empty() || trailing_slash {
        normal.push('/');
    }
    Cow::Owned(normal)
}

/// True when [`for_rules`] would leave the path as it is: no
/// percent-encoding, no empty segment but a trailing one, no dot-segment.
fn is_normal(path: &[u8]) -> bool {
    if path.contains(&b'%') {
        return false;
    }
    let segments = path.split(|&b| b == b'/').skip(1);
    let count = path.iter().filter(|&&b| b == b'/').count();
    segments.enumerate().all(|(i, s)| match s {
        b"." | b".." => false,
        b"" => i + 1 == count,
        _ => true,
    })
}

/// Decodes `%XX` when it stands for an unreserved character and uppercases
/// the hex digits of any other; a `%` not followed by two hex digits is
/// left as it is.
fn decode_unreserved(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'%' {
            if let Some(hex) = path
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                let value = (hex_value(hex[0]) << 4) | hex_value(hex[1]);
                if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                    out.push(value);
                } else {
                    out.push(b'%');
                    out.push(hex[0].to_ascii_uppercase());
                    out.push(hex[1].to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(path: &str) -> String {
        for_rules(path).into_owned()
    }

    #[test]
    fn unreserved_percent_encodings_are_decoded_3986_6_2_2_2() {
        assert_eq!(n("/%61ccount/profile"), "/account/profile");
        assert_eq!(n("/%41%7a%30%2d%2E%5F%7E"), "/Az0-._~");
    }

    #[test]
    fn other_percent_encodings_stay_encoded_with_uppercase_hex_3986_6_2_2_1() {
        // `%2F` is not `/` to every origin: never decoded, so a rule for
        // `/account/profile` does not claim `/account%2Fprofile`.
        assert_eq!(n("/account%2fprofile"), "/account%2Fprofile");
        assert_eq!(n("/a%00b"), "/a%00b");
        assert_eq!(n("/a%5cb"), "/a%5Cb");
        assert_eq!(n("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(n("/a%2"), "/a%2");
        assert_eq!(n("/a%zz"), "/a%zz");
        assert_eq!(n("/..%2Faccount"), "/..%2Faccount");
    }

    #[test]
    fn dot_segments_are_resolved_3986_5_2_4() {
        assert_eq!(n("/x/../account"), "/account");
        assert_eq!(n("/a/./b"), "/a/b");
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/a/."), "/a/");
        assert_eq!(n("/../../account"), "/account");
        assert_eq!(n("/.."), "/");
        assert_eq!(n("/x/%2e%2e/account"), "/account");
        assert_eq!(n("/a/..b/c"), "/a/..b/c");
    }

    #[test]
    fn repeated_slashes_are_merged() {
        assert_eq!(n("//account/profile"), "/account/profile");
        assert_eq!(n("/account///profile//"), "/account/profile/");
        assert_eq!(n("//"), "/");
    }

    #[test]
    fn normal_paths_are_borrowed_as_they_are() {
        for path in ["/", "/items", "/items/", "/a/b.c/d", "*", "/caf\u{e9}"] {
            assert!(matches!(for_rules(path), Cow::Borrowed(_)), "{path}");
            assert_eq!(n(path), path);
        }
    }

    #[test]
    fn case_is_kept_rules_choose_to_ignore_it() {
        assert_eq!(n("/ACCOUNT/profile"), "/ACCOUNT/profile");
    }
}
