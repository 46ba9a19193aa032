//! The host a request is keyed and forwarded with. The proxy refuses
//! (400, as nginx does: RFC 9112 §3.2) any request whose `Host` or
//! absolute-form target is not a valid authority, and otherwise rewrites
//! it so that the key, the upstream and every later step read one value:
//! `Host` in the form the key uses, and the target in origin form.

use std::borrow::Cow;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{request, Uri, Version};
use larder::policy::key::{self, InvalidHost};

/// Why a request names no host the proxy can key.
///
/// ```
/// use larder::policy::key::InvalidHost;
/// use larder_proxy::target::BadTarget;
///
/// assert!(BadTarget::Host(InvalidHost::Userinfo).to_string().contains("userinfo"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadTarget {
    /// `Host` or the target's authority is invalid, repeated or missing.
    Host(InvalidHost),
    /// An absolute-form target with a scheme other than `http`/`https`,
    /// or an authority-form one (`CONNECT`): not for a reverse proxy.
    Form,
}

impl std::fmt::Display for BadTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadTarget::Host(why) => write!(f, "{why}"),
            BadTarget::Form => f.write_str("the request target is not an http(s) URI or a path"),
        }
    }
}

impl From<InvalidHost> for BadTarget {
    fn from(why: InvalidHost) -> Self {
        BadTarget::Host(why)
    }
}

/// Settles a request's host before it is keyed:
///
/// - more than one `Host` line, a `Host` that is not an RFC 3986 `host
///   [":" port]`, or none on HTTP/1.1: refused;
/// - an absolute-form target (`GET http://a.example/x`) must have a valid
///   authority, which replaces `Host` (RFC 9112 §3.2.2), and the target
///   becomes its path and query;
/// - `Host` is rewritten in the form the key uses (lowercase, no default
///   port), so the upstream never sees a value the key did not.
///
/// An HTTP/1.0 request without `Host` stays without.
///
/// ```
/// use larder_proxy::target::settle;
///
/// let (mut parts, ()) = http::Request::get("http://Victim.example:80/a?b")
///     .header("host", "other.example")
///     .body(())
///     .unwrap()
///     .into_parts();
/// settle(&mut parts).unwrap();
/// assert_eq!(parts.headers["host"], "victim.example");
/// assert_eq!(parts.uri, "/a?b");
///
/// let (mut parts, ()) = http::Request::get("/a")
///     .header("host", "evil.example/?@victim.example")
///     .body(())
///     .unwrap()
///     .into_parts();
/// assert!(settle(&mut parts).is_err());
/// ```
pub fn settle(parts: &mut request::Parts) -> Result<(), BadTarget> {
    let mut lines = parts.headers.get_all(header::HOST).iter();
    let field = lines.next();
    if lines.next().is_some() {
        return Err(InvalidHost::Repeated.into());
    }
    // Validated even when the target's authority replaces it, as nginx does.
    let host = field
        .map(|v| key::authority(v.as_bytes(), "http"))
        .transpose()?;
    let rewrite: Option<String> = match parts.uri.authority() {
        Some(target) => {
            let scheme = match parts.uri.scheme_str() {
                Some(s @ ("http" | "https")) => s,
                _ => return Err(BadTarget::Form),
            };
            let authority = key::authority(target.as_str().as_bytes(), scheme)?;
            // RFC 9113 §8.3.1: over HTTP/2 the authority is `:authority`,
            // and a Host naming another one makes the request malformed
            // (HTTP/1.1's absolute form instead overrides Host, §3.2.2).
            if parts.version == Version::HTTP_2 {
                if let Some(field) = field {
                    if key::authority(field.as_bytes(), scheme)? != authority {
                        return Err(InvalidHost::Conflict.into());
                    }
                }
            }
            Some(authority.into_owned())
        }
        None => match host {
            Some(Cow::Owned(normal)) => Some(normal),
            // Already as the key reads it: nothing to rewrite (the hit path).
            Some(Cow::Borrowed(_)) => None,
            None if parts.version >= Version::HTTP_11 => {
                return Err(InvalidHost::Missing.into());
            }
            None => None,
        },
    };
    if let Some(normal) = rewrite {
        let value = HeaderValue::from_str(&normal).map_err(|_| InvalidHost::Character)?;
        parts.headers.insert(header::HOST, value);
    }
    if parts.uri.authority().is_some() {
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path);
    }
    Ok(())
}

/// Marks a settled request as received over TLS: its target becomes
/// `https://<Host><path>`, so that the cache keys it apart from the same
/// URL over plain HTTP (the upstream is told `X-Forwarded-Proto: https`
/// and may answer differently) and the upstream request says `https`.
/// A request without `Host` (HTTP/1.0) keeps its origin form.
///
/// ```
/// use larder_proxy::target::{on_tls, settle};
///
/// let (mut parts, ()) = http::Request::get("/a?b").header("host", "App.example").body(()).unwrap().into_parts();
/// settle(&mut parts).unwrap();
/// on_tls(&mut parts);
/// assert_eq!(parts.uri, "https://app.example/a?b");
/// assert_eq!(parts.headers["host"], "app.example");
/// ```
pub fn on_tls(parts: &mut request::Parts) {
    let Some(host) = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return;
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    if let Ok(uri) = format!("https://{host}{path}").parse() {
        parts.uri = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, hosts: &[&[u8]]) -> request::Parts {
        let mut b = http::Request::get(uri);
        for h in hosts {
            b = b.header("host", HeaderValue::from_bytes(h).unwrap());
        }
        b.body(()).unwrap().into_parts().0
    }

    fn settled(uri: &str, hosts: &[&[u8]]) -> Result<(String, String), BadTarget> {
        let mut p = parts(uri, hosts);
        settle(&mut p)?;
        let host = p.headers.get("host").map_or("-".into(), |v| {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        });
        Ok((host, p.uri.to_string()))
    }

    #[test]
    fn an_invalid_host_is_refused_9112_3_2() {
        for bad in [
            &b"evil.example/?@victim.example"[..],
            b"evil.example#@victim.example",
            b"evil.example\\@victim.example",
            b"evil.example@victim.example",
            b"v\xc3\xafctim.example",
            b"victim.example evil",
            b"",
        ] {
            assert!(
                matches!(settled("/x", &[bad]), Err(BadTarget::Host(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn two_host_lines_are_refused_9112_3_2() {
        let two = settled("/x", &[b"a.example", b"a.example"]);
        assert_eq!(two, Err(BadTarget::Host(InvalidHost::Repeated)));
    }

    #[test]
    fn http_1_1_needs_a_host_and_http_1_0_does_not_9112_3_2() {
        assert_eq!(
            settled("/x", &[]),
            Err(BadTarget::Host(InvalidHost::Missing))
        );
        let mut p = parts("/x", &[]);
        p.version = Version::HTTP_10;
        assert_eq!(settle(&mut p), Ok(()));
        assert!(!p.headers.contains_key("host"));
    }

    #[test]
    fn host_is_forwarded_in_the_form_the_key_uses() {
        assert_eq!(
            settled("/x", &[b"App.Example:80"]),
            Ok(("app.example".into(), "/x".into()))
        );
        assert_eq!(
            settled("/x", &[b"app.example:8080"]),
            Ok(("app.example:8080".into(), "/x".into()))
        );
    }

    #[test]
    fn an_absolute_target_replaces_host_9112_3_2_2() {
        assert_eq!(
            settled("http://Real.example/a?b=1", &[b"other.example"]),
            Ok(("real.example".into(), "/a?b=1".into()))
        );
        assert_eq!(
            settled("https://real.example:443", &[]),
            Ok(("real.example".into(), "/".into()))
        );
        // The target's userinfo is refused, not skipped.
        assert_eq!(
            settled("http://evil.example@victim.example/x", &[b"victim.example"]),
            Err(BadTarget::Host(InvalidHost::Userinfo))
        );
        // And an invalid Host still is, as nginx does.
        assert!(settled("http://victim.example/x", &[b"evil/?@victim.example"]).is_err());
    }

    #[test]
    fn an_http2_authority_is_keyed_as_an_http1_host_9113_8_3_1() {
        let h2 = |uri: &str, hosts: &[&[u8]]| {
            let mut p = parts(uri, hosts);
            p.version = Version::HTTP_2;
            settle(&mut p)?;
            let host = p.headers["host"].to_str().unwrap().to_owned();
            Ok::<_, BadTarget>((host, p.uri.to_string()))
        };
        // What an HTTP/1.1 request with `Host: app.example` settles to.
        let h1 = settled("/a?b", &[b"App.Example:80"]);
        assert_eq!(h2("http://App.Example:80/a?b", &[]), h1);
        assert_eq!(h2("https://app.example/a?b", &[]).unwrap().1, "/a?b");
        // A Host that agrees is fine; one that does not is malformed.
        assert_eq!(h2("http://app.example/a?b", &[b"APP.example"]), h1);
        assert_eq!(
            h2("http://app.example/a", &[b"evil.example"]),
            Err(BadTarget::Host(InvalidHost::Conflict))
        );
        assert!(h2("http://app.example/a", &[b"evil/?@app.example"]).is_err());
    }

    #[test]
    fn other_schemes_and_authority_form_are_refused() {
        assert_eq!(settled("ftp://victim.example/x", &[]), Err(BadTarget::Form));
        assert_eq!(
            settled("victim.example:443", &[b"victim.example"]),
            Err(BadTarget::Form)
        );
    }
}
