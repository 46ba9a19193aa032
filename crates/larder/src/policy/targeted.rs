//! Cache directives aimed at one kind of cache (RFC 9213 targeted fields,
//! and the older `Surrogate-Control`), and tags a response gives itself
//! (`Surrogate-Key`, `Cache-Tag`).
//!
//! An origin behind larder can tell larder something else than it tells
//! browsers: `Larder-Cache-Control: max-age=600` beside
//! `Cache-Control: no-cache` caches for ten minutes here while browsers
//! revalidate. The first configured field that is present and valid
//! replaces `Cache-Control` and `Expires` for the cache's own decision.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::cache_control::CacheControl;

/// `Surrogate-Control` (W3C Edge Architecture Specification): a target
/// list may name it beside RFC 9213 fields; it is parsed as that
/// specification says, not as a Structured Field.
pub const SURROGATE_CONTROL: HeaderName = HeaderName::from_static("surrogate-control");
/// `CDN-Cache-Control` (RFC 9213 §3): meant for every CDN on the path, so a
/// cache that uses it still forwards it.
pub const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");
/// `Surrogate-Key`: space-separated tags (Fastly's convention).
pub const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");
/// `Cache-Tag`: comma-separated tags (Cloudflare's and Akamai's convention).
pub const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

/// The most tags one response may give itself; more are ignored, so that a
/// response cannot make its stores unbounded.
pub const MAX_HEADER_TAGS: usize = 64;
/// The longest tag taken from a response header, in bytes.
pub const MAX_TAG_LEN: usize = 256;

/// The directives the cache uses for a response: those of the first field
/// of `targets` that is present and valid, else `Cache-Control`.
/// `cache_name` is this cache's name, which `Surrogate-Control` directives
/// can target (`max-age=60;larder`).
///
/// ```
/// use http::{HeaderMap, HeaderName, HeaderValue};
/// use larder::policy::targeted::directives;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("cache-control", HeaderValue::from_static("no-cache"));
/// headers.insert("larder-cache-control", HeaderValue::from_static("max-age=600"));
/// let targets = [HeaderName::from_static("larder-cache-control")];
/// let cc = directives(&targets, "larder", &headers);
/// assert_eq!(cc.max_age, Some(600));
/// assert!(cc.no_cache.is_none());
/// assert!(cc.targeted); // Expires no longer applies either
/// ```
pub fn directives(targets: &[HeaderName], cache_name: &str, headers: &HeaderMap) -> CacheControl {
    for target in targets {
        if !headers.contains_key(target) {
            continue;
        }
        let lines = headers.get_all(target);
        let found = if *target == SURROGATE_CONTROL {
            surrogate_control(lines, cache_name)
        } else {
            targeted_field(lines)
        };
        if let Some(mut cc) = found {
            cc.targeted = true;
            return cc;
        }
    }
    CacheControl::from_headers(headers)
}

/// Parses an RFC 9213 targeted field (a Structured Fields dictionary,
/// RFC 8941 §3.2). `None` when it does not parse: the whole field is then
/// ignored (RFC 9213 §2.1). Members whose value has the wrong type for
/// their directive are ignored one by one.
///
/// ```
/// use http::HeaderValue;
/// use larder::policy::targeted::targeted_field;
///
/// let v = HeaderValue::from_static("max-age=60, stale-if-error=300");
/// let cc = targeted_field([&v]).unwrap();
/// assert_eq!((cc.max_age, cc.stale_if_error), (Some(60), Some(300)));
/// // Not a Structured Field (uppercase key): ignored whole.
/// assert!(targeted_field([&HeaderValue::from_static("Max-Age=60")]).is_none());
/// ```
pub fn targeted_field<'a>(
    lines: impl IntoIterator<Item = &'a HeaderValue>,
) -> Option<CacheControl> {
    // RFC 8941 §4.2: field lines are joined with commas before parsing.
    let mut joined = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line.as_bytes());
    }
    let members = sf::dictionary(&joined)?;
    let mut rendered = Vec::new();
    for (key, value) in members {
        if let Some(directive) = render(&key, &value) {
            rendered.push(directive);
        }
    }
    let line = HeaderValue::from_str(&rendered.join(", ")).ok()?;
    Some(CacheControl::parse([&line]))
}

/// One dictionary member as a Cache-Control directive, when its value has
/// the type the directive takes.
fn render(key: &str, value: &sf::Item) -> Option<String> {
    const SECONDS: [&str; 4] = [
        "max-age",
        "s-maxage",
        "stale-while-revalidate",
        "stale-if-error",
    ];
    const FLAGS: [&str; 9] = [
        "no-store",
        "no-cache",
        "private",
        "public",
        "must-revalidate",
        "proxy-revalidate",
        "immutable",
        "no-transform",
        "must-understand",
    ];
    match value {
        sf::Item::Integer(n) if *n >= 0 && SECONDS.contains(&key) => Some(format!("{key}={n}")),
        sf::Item::Boolean(true) if FLAGS.contains(&key) => Some(key.to_owned()),
        // RFC 9213 §2.1: field-name arguments of no-cache/private are
        // lists of strings or tokens.
        sf::Item::List(names) if key == "no-cache" || key == "private" => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Some(format!("{key}=\"{}\"", names.join(", ")))
        }
        _ => None,
    }
}

/// Parses `Surrogate-Control`: Cache-Control-like directives, each
/// optionally aimed at one surrogate with `;name`. Directives aimed at
/// another surrogate are dropped. `None` when no directive applies to
/// this cache, so that the next field decides.
///
/// ```
/// use http::HeaderValue;
/// use larder::policy::targeted::surrogate_control;
///
/// let v = HeaderValue::from_static("max-age=60, no-store;other-cdn, content=\"ESI/1.0\"");
/// let cc = surrogate_control([&v], "larder").unwrap();
/// assert_eq!(cc.max_age, Some(60));
/// assert!(!cc.no_store);
/// assert!(surrogate_control([&HeaderValue::from_static("max-age=5;other")], "larder").is_none());
/// ```
pub fn surrogate_control<'a>(
    lines: impl IntoIterator<Item = &'a HeaderValue>,
    cache_name: &str,
) -> Option<CacheControl> {
    let mut kept = Vec::new();
    for line in lines {
        let Ok(line) = line.to_str() else { continue };
        for directive in line.split(',') {
            let directive = directive.trim();
            let (body, target) = match directive.rsplit_once(';') {
                // A `;` inside a quoted argument is not a target.
                Some((body, target)) if !target.contains('"') => (body, Some(target.trim())),
                _ => (directive, None),
            };
            if target.is_none_or(|t| t.eq_ignore_ascii_case(cache_name)) && !body.is_empty() {
                kept.push(body.trim().to_owned());
            }
        }
    }
    let line = HeaderValue::from_str(&kept.join(", ")).ok()?;
    let cc = CacheControl::parse([&line]);
    (cc != CacheControl::default()).then_some(cc)
}

/// Tags a response gives itself: `Surrogate-Key` (space-separated) and
/// `Cache-Tag` (comma-separated), at most [`MAX_HEADER_TAGS`] of at most
/// [`MAX_TAG_LEN`] bytes each, without duplicates.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use larder::policy::targeted::header_tags;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("surrogate-key", HeaderValue::from_static("product-1  catalog"));
/// headers.insert("cache-tag", HeaderValue::from_static("catalog, eu"));
/// assert_eq!(header_tags(&headers), ["product-1", "catalog", "eu"]);
/// ```
pub fn header_tags(headers: &HeaderMap) -> Vec<String> {
    let surrogate = headers
        .get_all(SURROGATE_KEY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split_ascii_whitespace());
    let cache_tag = headers
        .get_all(CACHE_TAG)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    let mut tags: Vec<String> = Vec::new();
    for tag in surrogate.chain(cache_tag) {
        if tags.len() == MAX_HEADER_TAGS {
            break;
        }
        if !tag.is_empty() && tag.len() <= MAX_TAG_LEN && !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
    tags
}

/// Removes the fields meant for this cache alone before a response reaches
/// a client or the store: the tag fields (when `tags` is on) and the
/// targets, except `CDN-Cache-Control`, which every CDN further down the
/// path may also use (RFC 9213 §3).
///
/// ```
/// use http::{HeaderMap, HeaderName, HeaderValue};
/// use larder::policy::targeted::strip_fields;
///
/// let mut headers = HeaderMap::new();
/// for name in ["larder-cache-control", "cdn-cache-control", "surrogate-key", "cache-control"] {
///     headers.insert(name, HeaderValue::from_static("max-age=60"));
/// }
/// let targets = [HeaderName::from_static("larder-cache-control"), HeaderName::from_static("cdn-cache-control")];
/// strip_fields(&targets, true, &mut headers);
/// let mut left: Vec<&str> = headers.keys().map(|n| n.as_str()).collect();
/// left.sort();
/// assert_eq!(left, ["cache-control", "cdn-cache-control"]);
/// ```
pub fn strip_fields(targets: &[HeaderName], tags: bool, headers: &mut HeaderMap) {
    for target in targets {
        if *target != CDN_CACHE_CONTROL {
            headers.remove(target);
        }
    }
    if tags {
        headers.remove(SURROGATE_KEY);
        headers.remove(CACHE_TAG);
    }
}

/// The subset of RFC 8941 Structured Fields a dictionary of cache
/// directives needs, strict as §4.2 requires: any syntax error fails the
/// whole field.
mod sf {
    /// A member value, reduced to what cache directives can use.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Item {
        Integer(i64),
        Boolean(bool),
        /// An inner list of strings and tokens.
        List(Vec<String>),
        /// Any other valid value (decimal, string, token, bytes, mixed list).
        Other,
    }

    struct Parser<'a> {
        input: &'a [u8],
        pos: usize,
    }

    /// Parses a dictionary; a repeated key keeps its last value (§4.2.2).
    pub fn dictionary(input: &[u8]) -> Option<Vec<(String, Item)>> {
        let mut p = Parser { input, pos: 0 };
        p.skip_sp();
        let mut members: Vec<(String, Item)> = Vec::new();
        while !p.done() {
            let key = p.key()?;
            let value = if p.eat(b'=') {
                p.member_value()?
            } else {
                Item::Boolean(true)
            };
            p.parameters()?;
            members.retain(|(k, _)| *k != key);
            members.push((key, value));
            p.skip_ows();
            if p.done() {
                return Some(members);
            }
            if !p.eat(b',') {
                return None;
            }
            p.skip_ows();
            if p.done() {
                return None; // a trailing comma
            }
        }
        p.skip_sp();
        Some(members)
    }

    impl Parser<'_> {
        fn done(&self) -> bool {
            self.pos >= self.input.len()
        }

        fn peek(&self) -> Option<u8> {
            self.input.get(self.pos).copied()
        }

        fn eat(&mut self, b: u8) -> bool {
            if self.peek() == Some(b) {
                self.pos += 1;
                true
            } else {
                false
            }
        }

        fn skip_sp(&mut self) {
            while self.peek() == Some(b' ') {
                self.pos += 1;
            }
        }

        fn skip_ows(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t')) {
                self.pos += 1;
            }
        }

        fn key(&mut self) -> Option<String> {
            let start = self.pos;
            match self.peek()? {
                b'a'..=b'z' | b'*' => self.pos += 1,
                _ => return None,
            }
            while let Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*') = self.peek() {
                self.pos += 1;
            }
            std::str::from_utf8(&self.input[start..self.pos])
                .ok()
                .map(str::to_owned)
        }

        fn parameters(&mut self) -> Option<()> {
            while self.eat(b';') {
                self.skip_sp();
                self.key()?;
                if self.eat(b'=') {
                    self.bare_item()?;
                }
            }
            Some(())
        }

        fn member_value(&mut self) -> Option<Item> {
            if !self.eat(b'(') {
                return self.bare_item().map(|(item, _)| item);
            }
            let mut names = Some(Vec::new());
            loop {
                self.skip_sp();
                if self.eat(b')') {
                    return Some(names.map_or(Item::Other, Item::List));
                }
                let (_, text) = self.bare_item()?;
                self.parameters()?;
                match (&mut names, text) {
                    (Some(list), Some(text)) => list.push(text),
                    _ => names = None,
                }
                match self.peek()? {
                    b' ' | b')' => {}
                    _ => return None,
                }
            }
        }

        /// A bare item, and its text when it is a string or a token.
        fn bare_item(&mut self) -> Option<(Item, Option<String>)> {
            match self.peek()? {
                b'-' | b'0'..=b'9' => self.number().map(|i| (i, None)),
                b'"' => self.string().map(|s| (Item::Other, Some(s))),
                b'?' => {
                    self.pos += 1;
                    let b = match self.peek()? {
                        b'0' => false,
                        b'1' => true,
                        _ => return None,
                    };
                    self.pos += 1;
                    Some((Item::Boolean(b), None))
                }
                b':' => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        match c {
                            b':' => return Some((Item::Other, None)),
                            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => {}
                            _ => return None,
                        }
                    }
                    None
                }
                b'A'..=b'Z' | b'a'..=b'z' | b'*' => {
                    let start = self.pos;
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        let tchar = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c);
                        if !tchar {
                            break;
                        }
                        self.pos += 1;
                    }
                    let token = String::from_utf8_lossy(&self.input[start..self.pos]).into_owned();
                    Some((Item::Other, Some(token)))
                }
                _ => None,
            }
        }

        fn number(&mut self) -> Option<Item> {
            let negative = self.eat(b'-');
            let start = self.pos;
            let mut dot = None;
            while let Some(c) = self.peek() {
                match c {
                    b'0'..=b'9' => self.pos += 1,
                    b'.' if dot.is_none() => {
                        dot = Some(self.pos);
                        self.pos += 1;
                    }
                    _ => break,
                }
            }
            let digits = &self.input[start..self.pos];
            if digits.first().is_none_or(|c| !c.is_ascii_digit()) {
                return None;
            }
            match dot {
                None => {
                    if digits.len() > 15 {
                        return None;
                    }
                    let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
                    Some(Item::Integer(if negative { -n } else { n }))
                }
                Some(at) => {
                    let (int, frac) = (at - start, self.pos - at - 1);
                    (int <= 12 && (1..=3).contains(&frac)).then_some(Item::Other)
                }
            }
        }

        fn string(&mut self) -> Option<String> {
            self.pos += 1; // the opening quote
            let mut out = String::new();
            loop {
                let c = self.peek()?;
                self.pos += 1;
                match c {
                    b'"' => return Some(out),
                    b'\\' => {
                        let next = self.peek()?;
                        if next != b'"' && next != b'\\' {
                            return None;
                        }
                        self.pos += 1;
                        out.push(next as char);
                    }
                    0x20..=0x7e => out.push(c as char),
                    _ => return None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    fn field(s: &'static str) -> Option<CacheControl> {
        targeted_field([&hv(s)])
    }

    #[test]
    fn a_valid_dictionary_maps_to_directives_9213_2_1() {
        let cc = field("max-age=60, s-maxage=30, no-store, private=?0, public").unwrap();
        assert_eq!(cc.max_age, Some(60));
        assert_eq!(cc.s_maxage, Some(30));
        assert!(cc.no_store);
        assert!(cc.private.is_none(), "?0 is an absent directive");
        assert!(cc.public);
        let cc = field(r#"no-cache=("set-cookie" x-user), max-age=5;p=1"#).unwrap();
        assert_eq!(
            cc.no_cache,
            Some(crate::policy::FieldNames::Only(vec![
                HeaderName::from_static("set-cookie"),
                HeaderName::from_static("x-user")
            ]))
        );
        assert_eq!(cc.max_age, Some(5));
    }

    #[test]
    fn an_invalid_field_is_ignored_whole_9213_2_1() {
        for bad in [
            "Max-Age=60",
            "max-age=60,",
            "max-age=60 no-store",
            "max-age=\"60",
            "max-age=1234567890123456",
            "max-age=60, , public",
            "max-age=6é",
            "=60",
        ] {
            let value = HeaderValue::from_bytes(bad.as_bytes()).unwrap();
            assert!(targeted_field([&value]).is_none(), "{bad}");
        }
    }

    #[test]
    fn members_of_the_wrong_type_are_ignored_one_by_one_9213_2_1() {
        let cc = field("max-age=\"60\", s-maxage=1.5, max-age=-3, no-store=5, public").unwrap();
        assert_eq!(cc.max_age, None);
        assert_eq!(cc.s_maxage, None);
        assert!(!cc.no_store);
        assert!(cc.public);
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_8941_4_2_2() {
        assert_eq!(field("max-age=60, max-age=10").unwrap().max_age, Some(10));
    }

    #[test]
    fn field_lines_join_into_one_dictionary_8941_4_2() {
        let (a, b) = (hv("max-age=60"), hv("no-transform"));
        let cc = targeted_field([&a, &b]).unwrap();
        assert_eq!(cc.max_age, Some(60));
        assert!(cc.no_transform);
    }

    #[test]
    fn the_first_present_valid_target_wins_over_cache_control_9213_2_2() {
        let targets = [
            HeaderName::from_static("larder-cache-control"),
            CDN_CACHE_CONTROL,
        ];
        let mut h = HeaderMap::new();
        h.insert("cache-control", hv("max-age=5"));
        assert_eq!(directives(&targets, "larder", &h).max_age, Some(5));
        assert!(!directives(&targets, "larder", &h).targeted);
        h.insert("cdn-cache-control", hv("max-age=50"));
        assert_eq!(directives(&targets, "larder", &h).max_age, Some(50));
        // Invalid: skipped, the next one decides.
        h.insert("larder-cache-control", hv("max-age=?"));
        assert_eq!(directives(&targets, "larder", &h).max_age, Some(50));
        h.insert("larder-cache-control", hv("no-store"));
        let cc = directives(&targets, "larder", &h);
        assert!(cc.no_store && cc.max_age.is_none() && cc.targeted);
    }

    #[test]
    fn a_targeted_field_replaces_expires_too_9213_2_2() {
        use std::time::UNIX_EPOCH;
        let mut h = HeaderMap::new();
        h.insert("date", hv("Sun, 06 Nov 1994 08:49:37 GMT"));
        h.insert("expires", hv("Sun, 06 Nov 1994 09:49:37 GMT"));
        h.insert("larder-cache-control", hv("public"));
        let status = http::StatusCode::OK;
        let plain = CacheControl::from_headers(&h);
        let with_expires =
            crate::policy::freshness::freshness_lifetime(status, &h, &plain, None, UNIX_EPOCH);
        assert_eq!(with_expires, Some(std::time::Duration::from_secs(3600)));
        let targets = [HeaderName::from_static("larder-cache-control")];
        let cc = directives(&targets, "larder", &h);
        assert_eq!(
            crate::policy::freshness::freshness_lifetime(status, &h, &cc, None, UNIX_EPOCH),
            None
        );
    }

    #[test]
    fn surrogate_control_keeps_our_own_and_untargeted_directives() {
        let targets = [SURROGATE_CONTROL];
        let mut h = HeaderMap::new();
        h.insert("cache-control", hv("no-cache"));
        h.insert(
            "surrogate-control",
            hv("max-age=30;LARDER, max-age=1;other"),
        );
        let cc = directives(&targets, "larder", &h);
        assert_eq!(cc.max_age, Some(30));
        assert!(cc.no_cache.is_none());
        let only_esi = hv("content=\"ESI/1.0;x\"");
        assert!(surrogate_control([&only_esi], "larder").is_none());
    }

    #[test]
    fn header_tags_are_bounded_and_deduplicated() {
        let mut h = HeaderMap::new();
        let many: String = (0..100).map(|i| format!("t{i} ")).collect();
        h.insert(SURROGATE_KEY, HeaderValue::from_str(&many).unwrap());
        assert_eq!(header_tags(&h).len(), MAX_HEADER_TAGS);
        let long = "x".repeat(MAX_TAG_LEN + 1);
        let mut h = HeaderMap::new();
        h.insert(
            CACHE_TAG,
            HeaderValue::from_str(&format!("{long}, a,, a")).unwrap(),
        );
        assert_eq!(header_tags(&h), ["a"]);
    }

    #[test]
    fn strip_leaves_tags_alone_when_not_taken_from_headers() {
        let mut h = HeaderMap::new();
        h.insert(SURROGATE_KEY, hv("a"));
        strip_fields(&[], false, &mut h);
        assert!(h.contains_key(SURROGATE_KEY));
    }
}
