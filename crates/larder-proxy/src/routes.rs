//! Which rule applies to a request path: prefix and glob patterns, first
//! match wins, matched on the path as `larder::policy::path::for_rules`
//! normalises it (so `/%61ccount` and `//account` are `/account` to a
//! rule), case-insensitively where a route says so. Pure functions,
//! tested beside them.

use std::sync::Arc;

use http::HeaderName;
use larder::Policy;

/// A path pattern of a route rule.
///
/// ```
/// use larder_proxy::routes::Pattern;
///
/// assert!(Pattern::Prefix("/api/".into()).matches("/api/items"));
/// assert!(Pattern::Glob("/static/**/*.css".into()).matches("/static/a/b/site.css"));
/// assert!(!Pattern::Glob("/static/*.css".into()).matches("/static/a/site.css"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Paths that start with this string.
    Prefix(String),
    /// A glob over the whole path: `*` is any run of characters but `/`,
    /// `**` any run including `/`, `?` one character but `/`.
    Glob(String),
}

impl Pattern {
    /// True when `path` (without its query) matches, byte for byte.
    pub fn matches(&self, path: &str) -> bool {
        self.matches_case(path, false)
    }

    /// True when `path` matches, ASCII letters compared without case when
    /// `ignore_case`.
    ///
    /// ```
    /// use larder_proxy::routes::Pattern;
    ///
    /// assert!(Pattern::Prefix("/account".into()).matches_case("/ACCOUNT/me", true));
    /// assert!(!Pattern::Prefix("/account".into()).matches_case("/ACCOUNT/me", false));
    /// ```
    pub fn matches_case(&self, path: &str, ignore_case: bool) -> bool {
        match self {
            Pattern::Prefix(prefix) => path
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|start| same(start, prefix.as_bytes(), ignore_case)),
            Pattern::Glob(glob) => glob_match_case(glob.as_bytes(), path.as_bytes(), ignore_case),
        }
    }
}

fn same(a: &[u8], b: &[u8], ignore_case: bool) -> bool {
    if ignore_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// What the cookie in a request does to caching under a rule.
///
/// ```
/// use larder_proxy::routes::Cookies;
///
/// assert_eq!(Cookies::default(), Cookies::Bypass);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cookies {
    /// Requests with `Cookie` go to the upstream uncached (the default: a
    /// cookie usually means a personal answer).
    #[default]
    Bypass,
    /// `Cookie` is removed before the request is keyed and forwarded: the
    /// upstream never sees it, so its answer cannot depend on it.
    Strip,
    /// `Cookie` is part of the key: each distinct cookie gets its own entry.
    Vary,
}

/// What the proxy does with the requests a route matches (see
/// [`Routes::rule_for`] for an example).
#[derive(Debug, Clone)]
pub struct Rule {
    /// The engine's rules for the route.
    pub policy: Arc<Policy>,
    /// Forward everything uncached (unsafe methods still invalidate nothing).
    pub bypass: bool,
    /// What a request's `Cookie` does.
    pub cookies: Cookies,
    /// Request fields that reach the upstream although the proxy strips
    /// such fields from cacheable requests (`upstream::strip_unkeyed`): the
    /// route's `forward_headers` (passed unkeyed) and its `vary` fields
    /// (keyed).
    pub forward_headers: Arc<[HeaderName]>,
}

/// A pattern and the rule it selects (see [`Routes::rule_for`]).
#[derive(Debug, Clone)]
pub struct Route {
    /// The paths it matches.
    pub pattern: Pattern,
    /// Whether ASCII letters match without case (`/ACCOUNT` as `/account`).
    pub case_insensitive: bool,
    /// What happens to them.
    pub rule: Rule,
}

/// The configured routes, in order, and the rule for every other path
/// (see [`Routes::rule_for`]).
#[derive(Debug, Clone)]
pub struct Routes {
    /// Tried in order; the first match wins.
    pub routes: Vec<Route>,
    /// For paths no route matches.
    pub default: Rule,
}

impl Routes {
    /// The rule for a request path, matched on its normalised form
    /// (`larder::policy::path::for_rules`): encoding, dot-segments and
    /// repeated slashes cannot dodge a rule.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use larder::Policy;
    /// use larder_proxy::routes::{Cookies, Pattern, Route, Routes, Rule};
    ///
    /// let rule = |bypass| Rule {
    ///     policy: Arc::new(Policy::origin_headers()),
    ///     bypass,
    ///     cookies: Cookies::Bypass,
    ///     forward_headers: Arc::new([]),
    /// };
    /// let admin = Pattern::Prefix("/admin".into());
    /// let routes = Routes {
    ///     routes: vec![Route { pattern: admin, case_insensitive: false, rule: rule(true) }],
    ///     default: rule(false),
    /// };
    /// assert!(routes.rule_for("/admin/users").bypass);
    /// assert!(routes.rule_for("/%61dmin/users").bypass);
    /// assert!(routes.rule_for("//admin/users").bypass);
    /// assert!(!routes.rule_for("/items").bypass);
    /// let none = Routes { routes: vec![], default: rule(true) };
    /// assert!(none.rule_for("/%61dmin/users").bypass);
    /// ```
    pub fn rule_for(&self, path: &str) -> &Rule {
        if self.routes.is_empty() {
            // No route to match: the path need not be normalised.
            return &self.default;
        }
        let path = larder::policy::path::for_rules(path);
        self.routes
            .iter()
            .find(|r| r.pattern.matches_case(&path, r.case_insensitive))
            .map_or(&self.default, |r| &r.rule)
    }
}

/// Matches a glob against a whole path: `**` may cross `/`, `*` and `?`
/// may not. It walks the pattern once, keeping the set of path positions
/// reached so far, so its cost is bounded by pattern length × path length
/// whatever the pattern (no backtracking blow-up, no recursion).
///
/// ```
/// use larder_proxy::routes::glob_match;
///
/// assert!(glob_match(b"/a/*/c", b"/a/b/c"));
/// assert!(!glob_match(b"/a/*", b"/a/b/c"));
/// assert!(glob_match(b"/a/**", b"/a/b/c"));
/// ```
pub fn glob_match(pattern: &[u8], path: &[u8]) -> bool {
    glob_match_case(pattern, path, false)
}

/// [`glob_match`], ASCII letters compared without case when `ignore_case`.
///
/// ```
/// use larder_proxy::routes::glob_match_case;
///
/// assert!(glob_match_case(b"/static/*.css", b"/STATIC/Site.CSS", true));
/// assert!(!glob_match_case(b"/static/*.css", b"/STATIC/Site.CSS", false));
/// ```
pub fn glob_match_case(pattern: &[u8], path: &[u8], ignore_case: bool) -> bool {
    // Most routes fail on their literal start: say so before allocating,
    // since every request is matched against the routes in turn.
    let literal = pattern
        .iter()
        .position(|&c| c == b'*' || c == b'?')
        .unwrap_or(pattern.len());
    if !path
        .get(..literal)
        .is_some_and(|start| same(start, &pattern[..literal], ignore_case))
    {
        return false;
    }
    if literal == pattern.len() {
        return path.len() == literal;
    }
    let n = path.len();
    let mut reached = vec![false; n + 1];
    reached[0] = true;
    let mut next = vec![false; n + 1];
    let mut p = 0;
    while p < pattern.len() {
        next.iter_mut().for_each(|r| *r = false);
        match pattern[p] {
            b'*' => {
                let crosses = pattern.get(p + 1) == Some(&b'*');
                p += if crosses { 2 } else { 1 };
                let mut running = false;
                for i in 0..=n {
                    running |= reached[i];
                    next[i] = running;
                    if i < n && path[i] == b'/' && !crosses {
                        running = false;
                    }
                }
            }
            c => {
                p += 1;
                for i in 0..n {
                    let ok = if c == b'?' {
                        path[i] != b'/'
                    } else if ignore_case {
                        path[i].eq_ignore_ascii_case(&c)
                    } else {
                        path[i] == c
                    };
                    next[i + 1] = reached[i] && ok;
                }
            }
        }
        std::mem::swap(&mut reached, &mut next);
        if !reached.contains(&true) {
            return false;
        }
    }
    reached[n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(pattern: &str, path: &str) -> bool {
        glob_match(pattern.as_bytes(), path.as_bytes())
    }

    #[test]
    fn literal_globs_match_exactly() {
        assert!(g("/items", "/items"));
        assert!(!g("/items", "/items/"));
        assert!(!g("/items", "/item"));
        assert!(g("/", "/"));
    }

    #[test]
    fn a_single_star_stays_in_its_segment() {
        assert!(g("/items/*", "/items/42"));
        assert!(g("/items/*", "/items/"));
        assert!(!g("/items/*", "/items/42/reviews"));
        assert!(g("/*/reviews", "/items/reviews"));
        assert!(g("/static/*.css", "/static/site.css"));
        assert!(!g("/static/*.css", "/static/a/site.css"));
        assert!(g("/a*b*c", "/aXbYc"));
        assert!(!g("/a*b*c", "/aXb/c"));
    }

    #[test]
    fn a_double_star_crosses_segments() {
        assert!(g("/static/**", "/static/a/b/c.js"));
        assert!(g("/static/**", "/static/"));
        assert!(g("/static/**/*.css", "/static/a/b/site.css"));
        assert!(!g("/static/**/*.css", "/static/a/b/site.js"));
        assert!(g("**", "/anything/at/all"));
        assert!(!g("/static/**", "/other/static/x"));
    }

    #[test]
    fn question_mark_is_one_character_but_slash() {
        assert!(g("/v?/items", "/v1/items"));
        assert!(!g("/v?/items", "/v12/items"));
        assert!(!g("/a?b", "/a/b"));
    }

    #[test]
    fn prefix_and_first_match_wins() {
        let routes = Routes {
            routes: vec![
                route(Pattern::Glob("/api/public/**".into()), false, false),
                route(Pattern::Prefix("/api/".into()), false, true),
            ],
            default: rule(false),
        };
        assert!(!routes.rule_for("/api/public/x").bypass);
        assert!(routes.rule_for("/api/private").bypass);
        assert!(!routes.rule_for("/apix").bypass);
    }

    fn rule(bypass: bool) -> Rule {
        Rule {
            policy: Arc::new(Policy::origin_headers()),
            bypass,
            cookies: Cookies::Bypass,
            forward_headers: Arc::new([]),
        }
    }

    fn route(pattern: Pattern, case_insensitive: bool, bypass: bool) -> Route {
        Route {
            pattern,
            case_insensitive,
            rule: rule(bypass),
        }
    }

    #[test]
    fn encoding_cannot_dodge_a_rule_3986_6_2_2() {
        let routes = Routes {
            routes: vec![
                route(Pattern::Prefix("/account".into()), false, true),
                route(Pattern::Glob("/private/*/data".into()), false, true),
            ],
            default: rule(false),
        };
        for dodge in [
            "/%61ccount/profile",
            "/%61%63%63%6F%75%6E%74",
            "//account/profile",
            "/x/../account",
            "/./account",
            "/private//me/./data",
            "/private/me/%64ata",
        ] {
            assert!(routes.rule_for(dodge).bypass, "{dodge}");
        }
        // `%2F` is not decoded: not every origin reads it as `/`.
        assert!(!routes.rule_for("/private/me%2Fdata").bypass);
        assert!(
            !routes.rule_for("/ACCOUNT/profile").bypass,
            "case counts by default"
        );
    }

    #[test]
    fn a_case_insensitive_route_ignores_ascii_case() {
        let routes = Routes {
            routes: vec![
                route(Pattern::Prefix("/account".into()), true, true),
                route(Pattern::Glob("/static/**/*.CSS".into()), true, true),
            ],
            default: rule(false),
        };
        assert!(routes.rule_for("/ACCOUNT/profile").bypass);
        assert!(routes.rule_for("/%41ccount").bypass);
        assert!(routes.rule_for("/Static/a/site.css").bypass);
        assert!(!routes.rule_for("/accoun").bypass);
        assert!(g_case("/a?c", "/AbC"));
        assert!(!g_case("/a*c", "/AB/C"));
    }

    fn g_case(pattern: &str, path: &str) -> bool {
        glob_match_case(pattern.as_bytes(), path.as_bytes(), true)
    }
}
