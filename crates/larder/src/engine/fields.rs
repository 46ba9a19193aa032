//! One pass over a request's fields, for the checks every lookup makes.
//!
//! Most requests carry none of the fields a cache must look twice at
//! (a body, directives, credentials, preconditions, a second `Host`), and
//! one pass over the fields costs less than a map lookup for each name.
//! The hot path and the long way both decide from it, so that the two
//! cannot disagree about what a request carries.

/// Which of the request fields a lookup looks twice at are present, and
/// the `Host` line. A bit that is clear means the field is absent; a set
/// one only that the rule it stands for must read the field.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    bits: u8,
    /// The first `Host` line.
    pub host: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// `Content-Length` or `Transfer-Encoding`: maybe a body.
    pub const BODY: u8 = 1;
    /// `Cache-Control` or `Pragma`.
    pub const DIRECTIVES: u8 = 2;
    pub const AUTHORIZATION: u8 = 4;
    pub const COOKIE: u8 = 8;
    /// Preconditions or `Range`: the long answer builder handles them.
    pub const SPECIAL: u8 = 16;
    /// More than one `Host` line.
    pub const HOSTS: u8 = 32;

    pub fn of(headers: &'a http::HeaderMap) -> Self {
        use http::header::*;
        let mut bits = 0;
        let mut host = None;
        for (name, value) in headers {
            bits |= if name == HOST {
                if host.replace(value.as_bytes()).is_some() {
                    Self::HOSTS
                } else {
                    0
                }
            } else if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                Self::BODY
            } else if name == CACHE_CONTROL || name == PRAGMA {
                Self::DIRECTIVES
            } else if name == AUTHORIZATION {
                Self::AUTHORIZATION
            } else if name == COOKIE {
                Self::COOKIE
            } else if name == RANGE
                || name == IF_MATCH
                || name == IF_NONE_MATCH
                || name == IF_MODIFIED_SINCE
                || name == IF_UNMODIFIED_SINCE
                || name == IF_RANGE
            {
                Self::SPECIAL
            } else {
                0
            };
        }
        Fields { bits, host }
    }

    pub fn has(self, bit: u8) -> bool {
        self.bits & bit != 0
    }
}

#[cfg(test)]
mod tests {
    use http::header::*;

    #[test]
    fn the_field_scan_finds_the_host_line_and_a_second_one() {
        let mut headers = HeaderMap::new();
        assert_eq!(Fields::of(&headers).host, None);
        headers.insert(HOST, HeaderValue::from_static("a.example"));
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        let seen = Fields::of(&headers);
        assert_eq!(seen.host, Some(&b"a.example"[..]));
        assert!(!seen.has(Fields::HOSTS));
        headers.append(HOST, HeaderValue::from_static("b.example"));
        assert!(Fields::of(&headers).has(Fields::HOSTS));
    }
    use http::{HeaderMap, HeaderValue};

    use super::Fields;
    use crate::policy::{conditional, storable, CacheControl};

    /// The one pass stands in for the policy functions and lookups both
    /// paths would otherwise make: wherever they find a precondition, a
    /// body, directives or credentials, so must it; where it finds no
    /// directives, their parse must be the default it is replaced by.
    #[test]
    fn the_field_scan_agrees_with_the_rules_it_stands_in_for() {
        let names = [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
            IF_RANGE,
            RANGE,
            CONTENT_LENGTH,
            TRANSFER_ENCODING,
            CACHE_CONTROL,
            PRAGMA,
            AUTHORIZATION,
            COOKIE,
            ACCEPT,
            HOST,
        ];
        for name in names {
            let mut headers = HeaderMap::new();
            headers.insert(name.clone(), HeaderValue::from_static("1"));
            let seen = Fields::of(&headers);
            assert!(!seen.has(Fields::HOSTS), "{name}");
            let special = conditional::has_preconditions(&headers) || headers.contains_key(RANGE);
            assert_eq!(seen.has(Fields::SPECIAL), special, "{name}");
            if storable::request_has_body(&headers) {
                assert!(seen.has(Fields::BODY), "{name}");
            }
            if !seen.has(Fields::DIRECTIVES) {
                assert_eq!(
                    CacheControl::from_request(&headers),
                    CacheControl::default(),
                    "{name}"
                );
            }
            assert_eq!(
                seen.has(Fields::AUTHORIZATION),
                headers.contains_key(AUTHORIZATION),
                "{name}"
            );
            assert_eq!(
                seen.has(Fields::COOKIE),
                headers.contains_key(COOKIE),
                "{name}"
            );
        }
        // Directives in either field are seen and parsed.
        for name in [CACHE_CONTROL, PRAGMA] {
            let mut headers = HeaderMap::new();
            headers.insert(name.clone(), HeaderValue::from_static("no-cache"));
            assert!(Fields::of(&headers).has(Fields::DIRECTIVES), "{name}");
            assert_ne!(
                CacheControl::from_request(&headers),
                CacheControl::default(),
                "{name}"
            );
        }
    }
}
