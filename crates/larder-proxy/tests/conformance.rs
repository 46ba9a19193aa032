//! HTTP caching conformance end to end: an origin that sends exactly the
//! header fields each rule is about, the proxy in front of it, real HTTP
//! between them. Each test names the RFC section it holds the proxy to.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use common::{get, proxy, send, Got, LAST_MODIFIED};
use http::{HeaderMap, StatusCode};

/// The body `/range` sends: 100 bytes, `0123456789` ten times.
const RANGE_BODY: &str = "0123456789012345678901234567890123456789\
                          0123456789012345678901234567890123456789\
                          01234567890123456789";

/// An origin whose answers are chosen per path, counting what reaches it.
#[derive(Clone, Default)]
struct Origin {
    addr: Option<SocketAddr>,
    state: Arc<OriginState>,
}

#[derive(Default)]
struct OriginState {
    /// Requests per "METHOD /path".
    calls: Mutex<HashMap<String, usize>>,
    /// The last request's header fields per path.
    headers: Mutex<HashMap<String, HeaderMap>>,
    /// 304s answered.
    not_modified: AtomicUsize,
    /// The representation `/no-cache` currently has (its ETag is `"v{n}"`).
    version: AtomicUsize,
    /// `/no-cache` answers 503 while set.
    failing: AtomicBool,
}

impl Origin {
    async fn start() -> Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = Origin {
            addr: Some(listener.local_addr().unwrap()),
            ..Origin::default()
        };
        origin.state.version.store(1, Ordering::SeqCst);
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(origin.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        origin
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    fn calls(&self, method: &str, path: &str) -> usize {
        let calls = self.state.calls.lock().unwrap();
        calls.get(&format!("{method} {path}")).copied().unwrap_or(0)
    }

    fn gets(&self, path: &str) -> usize {
        self.calls("GET", path)
    }

    fn last_header(&self, path: &str, name: &str) -> Option<String> {
        let headers = self.state.headers.lock().unwrap();
        let value = headers.get(path)?.get(name)?;
        Some(value.to_str().unwrap().to_owned())
    }

    fn not_modified(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }
}

/// An HTTP-date `offset` from now, IMF-fixdate as `httpdate` writes it.
fn date_from_now(offset: i64) -> String {
    let now = SystemTime::now();
    let at = if offset >= 0 {
        now + Duration::from_secs(offset as u64)
    } else {
        now - Duration::from_secs(offset.unsigned_abs())
    };
    httpdate::fmt_http_date(at)
}

/// The same instant with a weekday that is not its own.
fn wrong_weekday(imf: &str) -> String {
    let wrong = if imf.starts_with("Mon") { "Tue" } else { "Mon" };
    format!("{wrong}{}", &imf[3..])
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as RFC 850 (`Monday, 06-Nov-94 ...`),
/// with a wrong weekday and in lowercase, as the oldest senders write it.
fn rfc_850_lowercase_wrong_weekday(imf: &str) -> String {
    let (day, month, year, time) = (&imf[5..7], &imf[8..11], &imf[14..16], &imf[17..25]);
    let weekday = if imf.starts_with("Mon") {
        "tuesday"
    } else {
        "monday"
    };
    format!("{weekday}, {day}-{month}-{year} {time} gmt").to_lowercase()
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as asctime (`Sun Nov  6 08:49:37 1994`),
/// in uppercase.
fn asctime_uppercase(imf: &str) -> String {
    let (weekday, day, month, year, time) = (
        &imf[0..3],
        &imf[5..7],
        &imf[8..11],
        &imf[12..16],
        &imf[17..25],
    );
    let day = day.trim_start_matches('0');
    format!("{weekday} {month} {day:>2} {time} {year}").to_uppercase()
}

fn respond(status: u16, headers: &[(&str, String)], body: impl Into<Body>) -> Response {
    let mut b = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (name, value) in headers {
        b = b.header(*name, value.as_str());
    }
    b.body(body.into()).unwrap()
}

fn s(text: &str) -> String {
    text.to_owned()
}

/// What the origin answers, by path.
async fn answer(State(origin): State<Origin>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let state = &origin.state;
    *state
        .calls
        .lock()
        .unwrap()
        .entry(format!("{} {path}", parts.method))
        .or_default() += 1;
    state
        .headers
        .lock()
        .unwrap()
        .insert(path.clone(), parts.headers.clone());
    let asked = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let hour = s("max-age=3600");
    match path.as_str() {
        // RFC 9111 §5.1: a list-valued Age.
        "/age/one-line" => respond(
            200,
            &[("cache-control", hour), ("age", s("7200, 0"))],
            "aged",
        ),
        "/age/lines" => respond(
            200,
            &[("cache-control", hour), ("age", s("7200")), ("age", s("0"))],
            "aged",
        ),
        "/age/first-small" => respond(
            200,
            &[("cache-control", hour), ("age", s("600, 7200"))],
            "aged a little",
        ),
        // RFC 9110 §5.6.7, RFC 9111 §4.2: Expires an hour ahead, written
        // as no sender should but many do.
        "/expires/uppercase" => {
            let expires = date_from_now(3600).to_uppercase();
            respond(200, &[("expires", expires)], "expires")
        }
        "/expires/lowercase" => {
            let expires = date_from_now(3600).to_lowercase();
            respond(200, &[("expires", expires)], "expires")
        }
        "/expires/weekday" => {
            let expires = wrong_weekday(&date_from_now(3600));
            respond(200, &[("expires", expires)], "expires")
        }
        "/expires/rfc850" => {
            let expires = rfc_850_lowercase_wrong_weekday(&date_from_now(3600));
            respond(200, &[("expires", expires)], "expires")
        }
        "/expires/asctime" => {
            let expires = asctime_uppercase(&date_from_now(3600));
            respond(200, &[("expires", expires)], "expires")
        }
        "/expires/invalid" => respond(
            200,
            &[
                ("expires", s("soon")),
                ("last-modified", date_from_now(-30 * 86_400)),
            ],
            "expired",
        ),
        "/dated" => respond(
            200,
            &[("cache-control", hour), ("last-modified", s(LAST_MODIFIED))],
            "dated",
        ),
        // RFC 9111 §5.2.2.4: stored, revalidated before every reuse.
        "/no-cache" => {
            let version = state.version.load(Ordering::SeqCst);
            let cache_control = s("no-cache, stale-if-error=600, stale-while-revalidate=600");
            if state.failing.load(Ordering::SeqCst) {
                return respond(503, &[("cache-control", cache_control)], "down");
            }
            let etag = format!("\"v{version}\"");
            if asked("if-none-match").as_deref() == Some(etag.as_str()) {
                let n = state.not_modified.fetch_add(1, Ordering::SeqCst) + 1;
                // Each 304 adds a field of its own, so a later answer shows
                // which revalidations updated the stored entry.
                let mark = format!("x-validated-{n}");
                return respond(
                    304,
                    &[
                        ("cache-control", cache_control),
                        ("etag", etag),
                        (mark.as_str(), s("yes")),
                    ],
                    Body::empty(),
                );
            }
            respond(
                200,
                &[("cache-control", cache_control), ("etag", etag)],
                format!("version {version}"),
            )
        }
        "/no-cache/without-validator" => respond(200, &[("cache-control", s("no-cache"))], "x"),
        "/no-cache/qualified" => respond(
            200,
            &[
                ("cache-control", s("no-cache=\"x-trace\", max-age=60")),
                ("x-trace", s("origin-only")),
            ],
            "qualified",
        ),
        // RFC 9111 §4.2.2: Last-Modified and nothing else.
        p if p.starts_with("/heuristic/")
            || p.starts_with("/tuned/")
            || p.starts_with("/off/")
            || p.starts_with("/found/") =>
        {
            let mut segments = p.rsplit('/');
            let seconds: i64 = segments.next().unwrap().parse().unwrap();
            let mut headers = vec![("last-modified", date_from_now(-seconds))];
            let mut status = 200;
            if p.starts_with("/found/") {
                status = 302;
                headers.push(("location", s("/elsewhere")));
                if p.starts_with("/found/public/") {
                    headers.push(("cache-control", s("public")));
                }
            }
            respond(status, &headers, "unchanged for a while")
        }
        "/heuristic-without-last-modified" => respond(200, &[], "no date"),
        // RFC 9110 §14.
        "/range" => respond(
            200,
            &[
                ("cache-control", s("max-age=60")),
                ("etag", s("\"r1\"")),
                ("last-modified", s(LAST_MODIFIED)),
                ("content-type", s("text/plain")),
            ],
            RANGE_BODY,
        ),
        // RFC 9111 §5.2.2.3.
        "/must-understand/200" => respond(
            200,
            &[("cache-control", s("max-age=60, must-understand, no-store"))],
            "understood",
        ),
        "/must-understand/404" => respond(
            404,
            &[("cache-control", s("max-age=60, must-understand, no-store"))],
            "gone, understood",
        ),
        "/must-understand/299" => respond(
            299,
            &[("cache-control", s("max-age=60, must-understand, no-store"))],
            "a status from the future",
        ),
        "/must-understand-only/299" => respond(
            299,
            &[("cache-control", s("max-age=60, must-understand"))],
            "a status from the future",
        ),
        "/no-store/200" => respond(200, &[("cache-control", s("max-age=60, no-store"))], "no"),
        _ => respond(404, &[], "no such test path"),
    }
}

fn stored_then_hit(first: &Got, second: &Got) {
    assert!(
        first.cache_status().contains("stored"),
        "{}",
        first.cache_status()
    );
    assert!(
        second.cache_status().starts_with("larder; hit"),
        "{}",
        second.cache_status()
    );
}

fn not_stored(first: &Got, second: &Got) {
    for got in [first, second] {
        assert!(
            !got.cache_status().contains("stored") && !got.cache_status().contains("hit"),
            "{}",
            got.cache_status()
        );
    }
}

// ---- 1. Age as a list (RFC 9111 §5.1) ----

#[tokio::test]
async fn age_list_uses_its_first_member_9111_5_1() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    // Two hours old and fresh for one: already stale, on one line or two.
    for path in ["/age/one-line", "/age/lines"] {
        let first = get(p.addr(), path).await;
        let second = get(p.addr(), path).await;
        assert_eq!(first.status, 200);
        assert_eq!(second.text(), "aged");
        not_stored(&first, &second);
        assert_eq!(origin.gets(path), 2, "{path}: stale on arrival, not served");
    }
    // A small first member is used too: the hit is at least that old.
    let first = get(p.addr(), "/age/first-small").await;
    let second = get(p.addr(), "/age/first-small").await;
    stored_then_hit(&first, &second);
    let age: u64 = second.header("age").unwrap().parse().unwrap();
    assert!(age >= 600, "Age {age}: the origin's 600 counts");
    assert!(age < 7200, "Age {age}: the second member is discarded");
    p.shutdown().await;
}

// ---- 3. HTTP-dates (RFC 9110 §5.6.7, RFC 9111 §4.2) ----

#[tokio::test]
async fn expires_in_any_case_form_or_weekday_is_read_9111_4_2() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    for path in [
        "/expires/uppercase",
        "/expires/lowercase",
        "/expires/weekday",
        "/expires/rfc850",
        "/expires/asctime",
    ] {
        let first = get(p.addr(), path).await;
        let second = get(p.addr(), path).await;
        stored_then_hit(&first, &second);
        assert_eq!(origin.gets(path), 1, "{path}");
        // An hour ahead: the hit's ttl says so (give or take a slow test).
        let status = second.cache_status();
        let ttl: i64 = status
            .split("ttl=")
            .nth(1)
            .and_then(|t| t.split(';').next())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!((3000..=3600).contains(&ttl), "{path}: {status}");
    }
    p.shutdown().await;
}

#[tokio::test]
async fn an_invalid_expires_is_already_expired_even_with_a_heuristic_9111_5_3() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    let first = get(p.addr(), "/expires/invalid").await;
    let second = get(p.addr(), "/expires/invalid").await;
    not_stored(&first, &second);
    assert_eq!(origin.gets("/expires/invalid"), 2);
    p.shutdown().await;
}

#[tokio::test]
async fn if_modified_since_in_any_case_or_form_is_answered_from_cache_9111_4_2() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    get(p.addr(), "/dated").await;
    // LAST_MODIFIED is Sun, 06 Nov 1994 08:49:37 GMT.
    for since in [
        "SUN, 06 NOV 1994 08:49:37 GMT",
        "Thu, 06 Nov 1994 08:49:37 gmt",
        "sunday, 06-nov-94 08:49:37 GMT",
        "Fri Nov  6 08:49:37 1994",
    ] {
        let got = send(
            p.addr(),
            "GET",
            "/dated",
            &[("if-modified-since", since)],
            "",
        )
        .await;
        assert_eq!(got.status, 304, "If-Modified-Since: {since}");
        assert!(got.body.is_empty());
    }
    assert_eq!(origin.gets("/dated"), 1);
    p.shutdown().await;
}

// ---- 4. no-cache responses (RFC 9111 §5.2.2.4) ----

#[tokio::test]
async fn no_cache_is_stored_and_revalidated_before_every_reuse_9111_5_2_2_4() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    let first = get(p.addr(), "/no-cache").await;
    assert_eq!(first.text(), "version 1");
    assert!(
        first.cache_status().contains("stored"),
        "{}",
        first.cache_status()
    );
    assert_eq!(origin.last_header("/no-cache", "if-none-match"), None);

    // Every reuse asks the origin first, with the stored validator; its
    // 304 serves the stored body with the 304's fields.
    for n in 1..=2 {
        let again = get(p.addr(), "/no-cache").await;
        assert_eq!(again.status, 200);
        assert_eq!(again.text(), "version 1");
        assert_eq!(
            origin.last_header("/no-cache", "if-none-match").as_deref(),
            Some("\"v1\"")
        );
        assert_eq!(origin.not_modified(), n);
        assert!(
            again.cache_status().contains("fwd-status=304"),
            "{}",
            again.cache_status()
        );
        assert_eq!(again.header(&format!("x-validated-{n}")), Some("yes"));
    }
    assert_eq!(origin.gets("/no-cache"), 3);

    // A client's own validator gets its own 304, after the origin's.
    let conditional = send(
        p.addr(),
        "GET",
        "/no-cache",
        &[("if-none-match", "\"v1\"")],
        "",
    )
    .await;
    assert_eq!(conditional.status, 304);
    assert_eq!(origin.gets("/no-cache"), 4);

    // A new representation: the origin's 200 replaces the stored one.
    origin.state.version.store(2, Ordering::SeqCst);
    let changed = get(p.addr(), "/no-cache").await;
    assert_eq!(changed.text(), "version 2");
    assert!(
        changed.cache_status().contains("stored"),
        "{}",
        changed.cache_status()
    );
    let after = get(p.addr(), "/no-cache").await;
    assert_eq!(after.text(), "version 2");
    assert_eq!(
        origin.last_header("/no-cache", "if-none-match").as_deref(),
        Some("\"v2\""),
        "the new entry's validator"
    );
    assert_eq!(origin.gets("/no-cache"), 6);
    p.shutdown().await;
}

#[tokio::test]
async fn no_cache_is_never_served_stale_9111_4_2_4() {
    let origin = Origin::start().await;
    // Clients' directives count here (the proxy ignores them by default):
    // even a client that asks for stale or cached-only answers gets none.
    let p = proxy(
        &origin.url(),
        "",
        "[cache]\nhonor_request_directives = true",
    )
    .await;
    get(p.addr(), "/no-cache").await;
    // The client would take anything; the response says no.
    let lenient = send(
        p.addr(),
        "GET",
        "/no-cache",
        &[("cache-control", "max-stale=99999")],
        "",
    )
    .await;
    assert!(
        lenient.cache_status().contains("fwd-status=304"),
        "{}",
        lenient.cache_status()
    );
    assert_eq!(origin.gets("/no-cache"), 2);
    // The response's own stale-if-error does not stand in for a failure:
    // the client gets the origin's 503.
    origin.state.failing.store(true, Ordering::SeqCst);
    let failed = get(p.addr(), "/no-cache").await;
    assert_eq!(failed.status, 503, "{}", failed.cache_status());
    assert_eq!(failed.text(), "down");
    assert_eq!(origin.gets("/no-cache"), 3);
    // Nor does only-if-cached get it unvalidated.
    let only = send(
        p.addr(),
        "GET",
        "/no-cache",
        &[("cache-control", "only-if-cached")],
        "",
    )
    .await;
    assert_eq!(only.status, 504);
    assert_eq!(origin.gets("/no-cache"), 3);
    p.shutdown().await;
}

#[tokio::test]
async fn no_cache_without_a_validator_and_qualified_no_cache_9111_5_2_2_4() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    // Nothing to revalidate with: nothing stored.
    let first = get(p.addr(), "/no-cache/without-validator").await;
    let second = get(p.addr(), "/no-cache/without-validator").await;
    not_stored(&first, &second);
    // no-cache="x-trace" keeps its meaning: stored, fresh, that field
    // for its own client only.
    let first = get(p.addr(), "/no-cache/qualified").await;
    assert_eq!(first.header("x-trace"), Some("origin-only"));
    let second = get(p.addr(), "/no-cache/qualified").await;
    stored_then_hit(&first, &second);
    assert_eq!(second.header("x-trace"), None);
    assert_eq!(origin.gets("/no-cache/qualified"), 1);
    p.shutdown().await;
}

// ---- 8. Stored-header updates on every path that freshens an entry ----

#[tokio::test]
async fn a_head_revalidates_the_stored_get_and_its_304_updates_it_9111_4_3_4() {
    // A HEAD the cache may answer is sent upstream as the GET it stores
    // (so no HEAD response ever reaches the cache to freshen it, RFC 9111
    // §4.3.5): the GET's validators go with it and the 304 updates the
    // stored GET, as for any revalidation.
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    let first = get(p.addr(), "/no-cache").await;
    let head = send(p.addr(), "HEAD", "/no-cache", &[], "").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("9"), "the GET's length");
    assert_eq!(head.header("x-validated-1"), Some("yes"));
    assert_eq!(origin.calls("HEAD", "/no-cache"), 0);
    assert_eq!(origin.gets("/no-cache"), 2);
    assert_eq!(
        origin.last_header("/no-cache", "if-none-match").as_deref(),
        Some("\"v1\"")
    );
    // The stored GET kept what the HEAD's 304 said, besides the next one's.
    let after = get(p.addr(), "/no-cache").await;
    assert_eq!(after.text(), first.text());
    assert_eq!(after.header("x-validated-1"), Some("yes"));
    assert_eq!(after.header("x-validated-2"), Some("yes"));
    p.shutdown().await;
}

// ---- 5. Heuristic freshness (RFC 9111 §4.2.2) ----

fn ttl_of(got: &Got) -> i64 {
    let status = got.cache_status();
    status
        .split("ttl=")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .unwrap_or_else(|| panic!("no ttl in {status}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_proxy_applies_a_heuristic_by_default_9111_4_2_2() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    // Unchanged for 10 000 s: fresh for a tenth of that.
    let first = get(p.addr(), "/heuristic/10000").await;
    let second = get(p.addr(), "/heuristic/10000").await;
    stored_then_hit(&first, &second);
    let ttl = ttl_of(&second);
    assert!((900..=1000).contains(&ttl), "ttl {ttl}");
    // Unchanged for 30 days: capped at one day.
    let first = get(p.addr(), "/heuristic/2592000").await;
    let second = get(p.addr(), "/heuristic/2592000").await;
    stored_then_hit(&first, &second);
    let ttl = ttl_of(&second);
    assert!((86_000..=86_400).contains(&ttl), "ttl {ttl}");
    // No Last-Modified: nothing to estimate from, nothing stored.
    let first = get(p.addr(), "/heuristic-without-last-modified").await;
    let second = get(p.addr(), "/heuristic-without-last-modified").await;
    not_stored(&first, &second);
    p.shutdown().await;
}

#[tokio::test]
async fn the_heuristic_covers_its_statuses_and_public_responses_9111_4_2_2() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    // 302 is not heuristically cacheable...
    let first = get(p.addr(), "/found/plain/10000").await;
    let second = get(p.addr(), "/found/plain/10000").await;
    not_stored(&first, &second);
    assert_eq!(origin.gets("/found/plain/10000"), 2);
    // ...unless the origin marks it public.
    let first = get(p.addr(), "/found/public/10000").await;
    let second = get(p.addr(), "/found/public/10000").await;
    assert_eq!(second.status, 302);
    stored_then_hit(&first, &second);
    assert_eq!(origin.gets("/found/public/10000"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn a_route_tunes_or_turns_off_the_heuristic_9111_4_2_2() {
    let origin = Origin::start().await;
    let routes = "[[route]]\nprefix = \"/off/\"\nheuristic = false\n\
                  [[route]]\nprefix = \"/tuned/\"\nheuristic = { percent = 50, cap = \"1h\" }\n";
    let p = proxy(&origin.url(), "", routes).await;
    let first = get(p.addr(), "/off/10000").await;
    let second = get(p.addr(), "/off/10000").await;
    not_stored(&first, &second);
    assert_eq!(origin.gets("/off/10000"), 2);
    // Half of 1000 s.
    let first = get(p.addr(), "/tuned/1000").await;
    let second = get(p.addr(), "/tuned/1000").await;
    stored_then_hit(&first, &second);
    let ttl = ttl_of(&second);
    assert!((400..=500).contains(&ttl), "ttl {ttl}");
    // Half of 10 000 s, capped at an hour.
    let second = {
        get(p.addr(), "/tuned/10000").await;
        get(p.addr(), "/tuned/10000").await
    };
    let ttl = ttl_of(&second);
    assert!((3500..=3600).contains(&ttl), "ttl {ttl}");
    // [cache] turns it off for every route.
    let off = proxy(&origin.url(), "", "[cache]\nheuristic = false\n").await;
    let first = get(off.addr(), "/heuristic/10000").await;
    let second = get(off.addr(), "/heuristic/10000").await;
    not_stored(&first, &second);
    p.shutdown().await;
    off.shutdown().await;
}

// ---- 6. Range requests from a stored complete response (RFC 9110 §14) ----

#[tokio::test]
async fn a_range_miss_fetches_the_whole_and_answers_the_range_9110_14_2() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    let first = send(p.addr(), "GET", "/range", &[("range", "bytes=0-9")], "").await;
    assert_eq!(first.status, 206, "{}", first.cache_status());
    assert_eq!(first.text(), "0123456789");
    assert_eq!(first.header("content-range"), Some("bytes 0-9/100"));
    assert_eq!(first.header("content-length"), Some("10"));
    assert_eq!(
        origin.last_header("/range", "range"),
        None,
        "the whole went upstream"
    );
    assert!(
        first.cache_status().contains("stored"),
        "{}",
        first.cache_status()
    );
    // The whole is what was stored.
    let whole = get(p.addr(), "/range").await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.text(), RANGE_BODY);
    assert_eq!(origin.gets("/range"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn single_ranges_are_answered_from_the_stored_response_9110_14_1_2() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    get(p.addr(), "/range").await;
    let cases = [
        ("bytes=10-19", "bytes 10-19/100", "0123456789"),
        ("bytes=95-", "bytes 95-99/100", "56789"),
        ("bytes=-3", "bytes 97-99/100", "789"),
        ("bytes=90-5000", "bytes 90-99/100", "0123456789"),
        ("BYTES=0-0", "bytes 0-0/100", "0"),
    ];
    for (range, content_range, body) in cases {
        let got = send(p.addr(), "GET", "/range", &[("range", range)], "").await;
        assert_eq!(got.status, 206, "{range}");
        assert_eq!(got.header("content-range"), Some(content_range), "{range}");
        assert_eq!(got.text(), body, "{range}");
        assert_eq!(
            got.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(got.header("etag"), Some("\"r1\""));
        assert!(
            got.cache_status().starts_with("larder; hit"),
            "{}",
            got.cache_status()
        );
    }
    // Nothing of the body in the range: 416, with the length.
    let got = send(p.addr(), "GET", "/range", &[("range", "bytes=100-")], "").await;
    assert_eq!(got.status, 416);
    assert_eq!(got.header("content-range"), Some("bytes */100"));
    assert!(got.body.is_empty());
    assert_eq!(
        got.header("cache-control"),
        None,
        "a 416 is not for keeping"
    );
    // Several ranges, another unit, an invalid range: the whole, as a 200.
    for range in ["bytes=0-1,5-6", "lines=1-2", "bytes=9-0"] {
        let got = send(p.addr(), "GET", "/range", &[("range", range)], "").await;
        assert_eq!(got.status, 200, "{range}");
        assert_eq!(got.text(), RANGE_BODY, "{range}");
        assert_eq!(got.header("content-range"), None, "{range}");
    }
    assert_eq!(origin.gets("/range"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn if_range_needs_a_strong_match_or_the_exact_date_9110_13_1_5() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    get(p.addr(), "/range").await;
    let cases = [
        ("\"r1\"", 206),
        ("W/\"r1\"", 200),
        ("\"r0\"", 200),
        (LAST_MODIFIED, 206),
        ("Sun, 06 Nov 1994 08:49:38 GMT", 200),
        ("not a validator", 200),
    ];
    for (if_range, status) in cases {
        let got = send(
            p.addr(),
            "GET",
            "/range",
            &[("range", "bytes=0-4"), ("if-range", if_range)],
            "",
        )
        .await;
        assert_eq!(got.status, status, "If-Range: {if_range}");
        let body = if status == 206 { "01234" } else { RANGE_BODY };
        assert_eq!(got.text(), body, "If-Range: {if_range}");
    }
    assert_eq!(origin.gets("/range"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn head_and_conditionals_with_a_range_as_for_get_9110_14_2() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    get(p.addr(), "/range").await;
    let head = send(p.addr(), "HEAD", "/range", &[("range", "bytes=0-9")], "").await;
    assert_eq!(head.status, 206);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-range"), Some("bytes 0-9/100"));
    assert_eq!(head.header("content-length"), Some("10"));
    // Preconditions come first (RFC 9110 §13.2.2): a match is a 304, a
    // failed If-Match a 412, whatever the range.
    let not_modified = send(
        p.addr(),
        "GET",
        "/range",
        &[("range", "bytes=0-9"), ("if-none-match", "\"r1\"")],
        "",
    )
    .await;
    assert_eq!(not_modified.status, 304);
    let failed = send(
        p.addr(),
        "GET",
        "/range",
        &[("range", "bytes=0-9"), ("if-match", "\"other\"")],
        "",
    )
    .await;
    assert_eq!(failed.status, 412);
    let passed = send(
        p.addr(),
        "GET",
        "/range",
        &[("range", "bytes=0-9"), ("if-none-match", "\"other\"")],
        "",
    )
    .await;
    assert_eq!(passed.status, 206);
    assert_eq!(passed.text(), "0123456789");
    assert_eq!(origin.gets("/range"), 1);
    assert_eq!(origin.calls("HEAD", "/range"), 0);
    p.shutdown().await;
}

// ---- 7. must-understand (RFC 9111 §5.2.2.3) ----

#[tokio::test]
async fn must_understand_stores_understood_statuses_despite_no_store_9111_5_2_2_3() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    for (path, status) in [("/must-understand/200", 200), ("/must-understand/404", 404)] {
        let first = get(p.addr(), path).await;
        let second = get(p.addr(), path).await;
        assert_eq!(second.status, status);
        stored_then_hit(&first, &second);
        assert_eq!(origin.gets(path), 1, "{path}");
    }
    // Without must-understand, no-store still means no-store.
    let first = get(p.addr(), "/no-store/200").await;
    let second = get(p.addr(), "/no-store/200").await;
    not_stored(&first, &second);
    p.shutdown().await;
}

#[tokio::test]
async fn must_understand_keeps_unknown_statuses_out_9111_5_2_2_3() {
    let origin = Origin::start().await;
    let p = proxy(&origin.url(), "", "").await;
    for path in ["/must-understand/299", "/must-understand-only/299"] {
        let first = get(p.addr(), path).await;
        let second = get(p.addr(), path).await;
        assert_eq!(second.status, 299);
        not_stored(&first, &second);
        assert_eq!(origin.gets(path), 2, "{path}");
    }
    p.shutdown().await;
}
