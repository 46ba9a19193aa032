//! Serving stale while one refresh runs (RFC 5861 §3), early refresh,
//! revalidation with stored validators (RFC 9111 §4.3), and hit-for-miss,
//! through the layer and the attribute.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Router;
use common::*;
use larder::Policy;
use tokio::sync::{Barrier, Semaphore};

#[derive(Clone)]
struct Gated {
    calls: Calls,
    gate: Arc<Semaphore>,
}

async fn gated(State(g): State<Gated>) -> String {
    let n = bump(&g.calls);
    // The first call runs free; every later one waits for the test.
    if n > 1 {
        g.gate.acquire().await.unwrap().forget();
    }
    format!("computed {n}")
}

#[larder::cache(ttl = "60s", stale_while_revalidate = "30s")]
async fn cached_swr(g: State<Gated>) -> String {
    gated(g).await
}

#[larder::cache(ttl = "60s")]
async fn cached_plain(g: State<Gated>) -> String {
    gated(g).await
}

#[larder::cache(ttl = "60s", early_refresh = "3600s")]
async fn cached_early(g: State<Gated>) -> String {
    gated(g).await
}

/// The gated handler under the layer with `policy`, or as `attributed`
/// (whose options say the same).
fn gated_app(
    mount: Mount,
    w: &World,
    policy: Policy,
    attributed: MethodRouter<Gated>,
    gate: Arc<Semaphore>,
) -> Router {
    let route = w.route(mount, policy, get(gated), attributed);
    let state = Gated {
        calls: w.counter(),
        gate,
    };
    w.app(mount, Router::new().route("/report", route), state)
}

fn ttl(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

both_mounts! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_while_revalidate_answers_at_once_and_refreshes_once(mount) {
        let w = World::new();
        let gate = Arc::new(Semaphore::new(0));
        let policy = Policy::ttl(ttl(60)).stale_while_revalidate(ttl(30));
        let app = gated_app(mount, &w, policy, get(cached_swr), gate.clone());
        assert_eq!(get_reply(&app, "/report").await.text(), "computed 1");
        w.clock.advance(ttl(70));
        // The refresh is held at the gate: answers that waited for it would
        // never come.
        let replies = all_at_once("stale answers", &app, (0..20).map(|_| common::get("/report"))).await;
        for reply in &replies {
            assert_eq!(reply.text(), "computed 1");
            assert!(reply.is_hit(), "{}", reply.cache_status());
            assert!(reply.cache_status().contains("ttl=-10"), "{}", reply.cache_status());
        }
        until("the refresh to start", || w.calls() == 2).await;
        // However long we look, one refresh: the others saw it running.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(w.calls(), 2);
        assert_eq!(w.cache.stats().refreshes, 1);
        gate.add_permits(1);
        until("the refresh to be stored", || w.cache.stats().stores == 2).await;
        let fresh = get_reply(&app, "/report").await;
        assert_eq!(fresh.text(), "computed 2");
        assert!(fresh.is_hit() && fresh.cache_status().contains("ttl=60"), "{}", fresh.cache_status());
        assert_eq!(w.calls(), 2);
    }

    #[tokio::test]
    async fn past_the_stale_while_revalidate_window_the_request_waits_for_the_handler(mount) {
        let w = World::new();
        let gate = Arc::new(Semaphore::new(10));
        let policy = Policy::ttl(ttl(60)).stale_while_revalidate(ttl(30));
        let app = gated_app(mount, &w, policy, get(cached_swr), gate);
        get_reply(&app, "/report").await;
        w.clock.advance(ttl(91));
        let reply = get_reply(&app, "/report").await;
        assert_eq!(reply.text(), "computed 2");
        assert!(reply.cache_status().contains("fwd=stale"), "{}", reply.cache_status());
    }

    #[tokio::test]
    async fn without_a_window_an_expired_entry_is_fetched_again(mount) {
        let w = World::new();
        let gate = Arc::new(Semaphore::new(10));
        let app = gated_app(mount, &w, Policy::ttl(ttl(60)), get(cached_plain), gate);
        get_reply(&app, "/report").await;
        w.clock.advance(ttl(61));
        let reply = get_reply(&app, "/report").await;
        assert_eq!(reply.text(), "computed 2");
        assert_eq!(w.cache.stats().refreshes, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn early_refresh_refreshes_a_fresh_entry_near_expiry_in_the_background(mount) {
        let w = World::new();
        let gate = Arc::new(Semaphore::new(0));
        // delta = 1 h: with 1 ns left, a refresh is all but certain (the
        // chance of none is about 3e-13).
        let policy = Policy::ttl(ttl(60)).early_refresh(ttl(3600));
        let app = gated_app(mount, &w, policy, get(cached_early), gate.clone());
        get_reply(&app, "/report").await;
        w.clock.advance(ttl(60) - Duration::from_nanos(1));
        let reply = within("a fresh hit", get_reply(&app, "/report")).await;
        assert_eq!(reply.text(), "computed 1");
        assert!(reply.is_hit(), "{}", reply.cache_status());
        until("the early refresh to start", || w.calls() == 2).await;
        gate.add_permits(1);
        until("the early refresh to be stored", || w.cache.stats().stores == 2).await;
        assert_eq!(get_reply(&app, "/report").await.text(), "computed 2");
    }

    #[tokio::test]
    async fn early_refresh_is_off_by_default(mount) {
        let w = World::new();
        let gate = Arc::new(Semaphore::new(10));
        let app = gated_app(mount, &w, Policy::ttl(ttl(60)), get(cached_plain), gate);
        get_reply(&app, "/report").await;
        w.clock.advance(ttl(60) - Duration::from_nanos(1));
        for _ in 0..50 {
            assert!(get_reply(&app, "/report").await.is_hit());
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(w.calls(), 1);
        assert_eq!(w.cache.stats().refreshes, 0);
    }
}

/// A handler whose answer says `must-revalidate` (or another directive that
/// forbids stale answers), under a route with a stale-while-revalidate
/// window.
async fn forbidding(State(calls): State<Calls>, headers: HeaderMap) -> impl IntoResponse {
    let n = bump(&calls);
    let directive = headers
        .get("x-directive")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    ([("cache-control", directive)], format!("v{n}"))
}

#[tokio::test]
async fn stale_while_revalidate_never_where_stale_is_forbidden() {
    for directive in [
        "must-revalidate",
        "proxy-revalidate",
        "no-cache",
        "s-maxage=60",
    ] {
        let w = World::new();
        let policy = Policy::ttl(ttl(60)).stale_while_revalidate(ttl(30));
        let app = Router::new()
            .route("/r", get(forbidding).layer(w.cache.layer(policy)))
            .with_state(w.counter());
        let ask = || request("GET", "/r").header("x-directive", directive);
        send(&app, ask().body(axum::body::Body::empty()).unwrap()).await;
        w.clock.advance(ttl(70));
        let reply = send(&app, ask().body(axum::body::Body::empty()).unwrap()).await;
        assert_eq!(reply.text(), "v2", "{directive}: {}", reply.cache_status());
        assert_eq!(w.cache.stats().refreshes, 0, "{directive}");
    }
}

#[tokio::test]
async fn a_request_asking_for_fresher_is_not_served_stale_while_revalidating() {
    let w = World::new();
    let gate = Arc::new(Semaphore::new(10));
    let policy = Policy::ttl(ttl(60)).stale_while_revalidate(ttl(30));
    let app = gated_app(Mount::Layer, &w, policy, get(cached_swr), gate);
    get_reply(&app, "/report").await;
    w.clock.advance(ttl(70));
    let fresh = request("GET", "/report")
        .header("cache-control", "max-age=30")
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = send(&app, fresh).await;
    assert_eq!(reply.text(), "computed 2");
    assert_eq!(w.cache.stats().refreshes, 0);
}

/// The `If-None-Match` and `If-Modified-Since` a request carried.
type Validators = (Option<String>, Option<String>);

/// An origin that understands validators: it answers 304 when the request
/// names the current representation, and says what it was asked.
#[derive(Clone, Default)]
struct Origin {
    full: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
    asked: Arc<Mutex<Vec<Validators>>>,
}

const LAST_MODIFIED: &str = "Tue, 14 Nov 2023 20:00:00 GMT";

async fn validating(State(o): State<Origin>, headers: HeaderMap) -> axum::response::Response {
    let field = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
    let (inm, ims) = (field("if-none-match"), field("if-modified-since"));
    o.asked.lock().unwrap().push((inm.clone(), ims.clone()));
    let by_etag = field("x-with-etag").is_some();
    let matches = if by_etag {
        inm.as_deref() == Some("\"v1\"")
    } else {
        ims.as_deref() == Some(LAST_MODIFIED)
    };
    let seen = o.full.load(Ordering::SeqCst) + o.not_modified.load(Ordering::SeqCst) + 1;
    let mut response = if matches {
        o.not_modified.fetch_add(1, Ordering::SeqCst);
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        o.full.fetch_add(1, Ordering::SeqCst);
        "the full report".into_response()
    };
    let h = response.headers_mut();
    h.insert("cache-control", "max-age=60".parse().unwrap());
    h.insert("x-seen", seen.to_string().parse().unwrap());
    if by_etag {
        h.insert("etag", "\"v1\"".parse().unwrap());
    } else {
        h.insert("last-modified", LAST_MODIFIED.parse().unwrap());
    }
    response
}

fn origin_app(w: &World, origin: &Origin) -> Router {
    Router::new()
        .route(
            "/doc",
            get(validating).layer(w.cache.layer(Policy::origin_headers())),
        )
        .with_state(origin.clone())
}

async fn revalidates_with_an_upstream_304(by_etag: bool) {
    let w = World::new();
    let origin = Origin::default();
    let app = origin_app(&w, &origin);
    let ask = |client_inm: Option<&str>| {
        let mut r = request("GET", "/doc");
        if by_etag {
            r = r.header("x-with-etag", "1");
        }
        if let Some(tag) = client_inm {
            r = r.header("if-none-match", tag);
        }
        r.body(axum::body::Body::empty()).unwrap()
    };
    let first = send(&app, ask(None)).await;
    assert_eq!(first.text(), "the full report");
    w.clock.advance(ttl(70));
    // Expired: the stored validators go upstream, a 304 comes back, and
    // the client still gets the whole response, with updated fields.
    let second = send(&app, ask(None)).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "the full report");
    assert_eq!(second.header("x-seen"), Some("2"));
    let status = second.cache_status();
    assert!(
        status.contains("fwd=stale")
            && status.contains("fwd-status=304")
            && status.contains("stored"),
        "{status}"
    );
    let asked = origin.asked.lock().unwrap().clone();
    if by_etag {
        assert_eq!(asked[1].0.as_deref(), Some("\"v1\""));
    } else {
        assert_eq!(asked[1].1.as_deref(), Some(LAST_MODIFIED));
    }
    assert_eq!(origin.full.load(Ordering::SeqCst), 1);
    assert_eq!(origin.not_modified.load(Ordering::SeqCst), 1);
    assert_eq!(w.cache.stats().revalidated, 1);
    // The freshened entry is fresh again, for the 304's max-age.
    w.clock.advance(ttl(50));
    let third = send(&app, ask(None)).await;
    assert!(third.is_hit(), "{}", third.cache_status());
    assert_eq!(third.header("x-seen"), Some("2"));
    // After the next expiry, a client's own If-None-Match gets a 304 from
    // the cache, once the origin confirmed the entry.
    if by_etag {
        w.clock.advance(ttl(70));
        let conditional = send(&app, ask(Some("\"v1\""))).await;
        assert_eq!(conditional.status, 304);
        assert!(conditional.body.is_empty());
        assert_eq!(origin.full.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn an_upstream_304_to_the_stored_etag_freshens_the_entry() {
    revalidates_with_an_upstream_304(true).await;
}

#[tokio::test]
async fn an_upstream_304_to_the_stored_last_modified_freshens_the_entry() {
    revalidates_with_an_upstream_304(false).await;
}

#[tokio::test]
async fn an_etag_the_cache_made_up_is_not_sent_upstream() {
    let w = World::new();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let app = Router::new().route(
        "/plain",
        get(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(headers.contains_key("if-none-match"));
                ([("cache-control", "max-age=60")], "body")
            }
        })
        .layer(w.cache.layer(Policy::origin_headers())),
    );
    let first = get_reply(&app, "/plain").await;
    assert!(first.header("etag").is_some(), "the cache adds an ETag");
    w.clock.advance(ttl(70));
    get_reply(&app, "/plain").await;
    assert_eq!(*asked.lock().unwrap(), [false, false]);
}

#[tokio::test]
async fn a_304_for_another_representation_does_not_freshen_the_entry() {
    let w = World::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = Router::new().route(
        "/odd",
        get(move |headers: HeaderMap| {
            let n = bump(&counted);
            async move {
                if n > 1 && headers.contains_key("if-none-match") {
                    // A broken origin: a 304 naming a different tag.
                    let r = (StatusCode::NOT_MODIFIED, [("etag", "\"other\"")]);
                    return r.into_response();
                }
                (
                    [("cache-control", "max-age=60"), ("etag", "\"v1\"")],
                    "original",
                )
                    .into_response()
            }
        })
        .layer(w.cache.layer(Policy::origin_headers())),
    );
    get_reply(&app, "/odd").await;
    w.clock.advance(ttl(70));
    let reply = get_reply(&app, "/odd").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "original");
    assert!(
        !reply.cache_status().contains("stored"),
        "{}",
        reply.cache_status()
    );
    assert_eq!(w.cache.stats().revalidated, 0);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A handler whose answer is private to the user who asked, held until
/// `n` requests are inside it at once.
#[derive(Clone)]
struct Private {
    calls: Calls,
    together: Arc<Barrier>,
}

async fn private(State(p): State<Private>, headers: HeaderMap) -> impl IntoResponse {
    let n = bump(&p.calls);
    if n > 1 {
        p.together.wait().await;
    }
    let user = headers["x-user"].to_str().unwrap().to_owned();
    ([("cache-control", "private")], format!("for {user}"))
}

#[larder::cache(ttl = "60s")]
async fn cached_private(p: State<Private>, headers: HeaderMap) -> axum::response::Response {
    private(p, headers).await.into_response()
}

mod uncacheable {
    use super::*;

    both_mounts! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn hit_for_miss_lets_requests_for_an_uncacheable_key_run_in_parallel(mount) {
            let w = World::new();
            let together = 10;
            let state = Private {
                calls: w.counter(),
                together: Arc::new(Barrier::new(together)),
            };
            let route = w.route(mount, Policy::ttl(ttl(60)), get(private), get(cached_private));
            let app = w.app(mount, Router::new().route("/me", route), state);
            let ask = |user: String| {
                request("GET", "/me")
                    .header("x-user", user)
                    .body(axum::body::Body::empty())
                    .unwrap()
            };
            let first = send(&app, ask("u0".into())).await;
            assert_eq!(first.text(), "for u0");
            // Each handler waits until all ten are inside it: requests queued
            // behind one leader would never get there.
            let requests = (1..=together).map(|i| ask(format!("u{i}")));
            let what = "ten requests inside the handler at once";
            let replies = all_at_once(what, &app, requests).await;
            // And nobody got another's private answer.
            for (i, reply) in (1..).zip(replies) {
                assert_eq!(reply.text(), format!("for u{i}"));
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_private_answers_never_reach_another_request(mount) {
            let w = World::with(|b| b.hit_for_miss(Duration::ZERO));
            let state = Private {
                calls: w.counter(),
                // Never waited on: the first call skips it, and with more
                // than one call the test is about who gets what, not timing.
                together: Arc::new(Barrier::new(1)),
            };
            let route = w.route(mount, Policy::ttl(ttl(60)), get(private), get(cached_private));
            let app = w.app(mount, Router::new().route("/me", route), state);
            let tasks: Vec<_> = (0..50)
                .map(|i| {
                    let app = app.clone();
                    let req = request("GET", "/me")
                        .header("x-user", format!("u{i}"))
                        .body(axum::body::Body::empty())
                        .unwrap();
                    tokio::spawn(async move { (i, send(&app, req).await) })
                })
                .collect();
            for t in tasks {
                let (i, reply) = t.await.unwrap();
                assert_eq!(reply.text(), format!("for u{i}"));
            }
            assert_eq!(w.calls(), 50);
        }
    }
}
