//! Request directives (RFC 9111 §5.2.1), invalidation by unsafe methods
//! (§4.4), and origin-headers mode (§3, §4.2), through the layer and the
//! attribute.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use common::*;
use http::StatusCode;
use larder::Policy;

fn minute() -> Policy {
    Policy::ttl(Duration::from_secs(60))
}

/// The rules `/items` is cached under, written once as a `Policy` for the
/// layer and once as attribute options on the `cached_*` handlers.
#[derive(Clone, Copy)]
enum Rules {
    Minute,
    IgnoringRequestDirectives,
    ByLanguage,
}

async fn version(State(calls): State<Calls>) -> String {
    format!("v{}", bump(&calls))
}

#[larder::cache(ttl = "60s")]
async fn cached_version(calls: State<Calls>) -> String {
    version(calls).await
}

#[larder::cache(ttl = "60s", honor_request_directives = false)]
async fn cached_version_ignoring_requests(calls: State<Calls>) -> String {
    version(calls).await
}

#[larder::cache(ttl = "60s", vary = ["accept-language"])]
async fn cached_version_by_language(calls: State<Calls>) -> String {
    version(calls).await
}

async fn created() -> impl IntoResponse {
    (StatusCode::CREATED, [("location", "/items/9")], "created")
}

#[larder::cache(ttl = "60s")]
async fn cached_created() -> impl IntoResponse {
    created().await
}

async fn replaced() -> &'static str {
    "replaced"
}

#[larder::cache(ttl = "60s")]
async fn cached_replaced() -> &'static str {
    replaced().await
}

async fn deleted() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[larder::cache(ttl = "60s")]
async fn cached_deleted() -> StatusCode {
    deleted().await
}

async fn refused() -> (StatusCode, &'static str) {
    (StatusCode::BAD_REQUEST, "no")
}

#[larder::cache(ttl = "60s")]
async fn cached_refused() -> (StatusCode, &'static str) {
    refused().await
}

/// Stores nothing; a success invalidates `/items` in `admin` and `items`.
#[larder::cache(namespace = "admin", invalidates = ["items"])]
async fn cached_admin_created() -> impl IntoResponse {
    created().await
}

/// Stores nothing; a success invalidates `/items` in `admin` only.
#[larder::cache(namespace = "admin")]
async fn cached_admin_created_alone() -> impl IntoResponse {
    created().await
}

/// A write handler without options: its own (default) namespace.
#[larder::cache]
async fn cached_plain_write() -> &'static str {
    replaced().await
}

#[larder::cache(ttl = "60s", namespace = "items")]
async fn cached_items_version(calls: State<Calls>) -> String {
    version(calls).await
}

/// `/items` read in namespace `items` and written by a handler in `admin`
/// that names `items` (or, with `names_items` false, does not).
fn admin_app(mount: Mount, w: &World, names_items: bool) -> Router {
    let route = match mount {
        Mount::Layer => {
            let admin = match names_items {
                true => Policy::write().namespace("admin").invalidates(["items"]),
                false => Policy::write().namespace("admin"),
            };
            get(version)
                .layer(w.cache.layer(minute().namespace("items")))
                .merge(post(created).layer(w.cache.layer(admin)))
        }
        Mount::Attribute => match names_items {
            true => get(cached_items_version).post(cached_admin_created),
            false => get(cached_items_version).post(cached_admin_created_alone),
        },
    };
    w.app(mount, Router::new().route("/items", route), w.counter())
}

fn counted(mount: Mount, w: &World, rules: Rules) -> Router {
    let (policy, cached_get): (Policy, MethodRouter<Calls>) = match rules {
        Rules::Minute => (minute(), get(cached_version)),
        Rules::IgnoringRequestDirectives => (
            minute().honor_request_directives(false),
            get(cached_version_ignoring_requests),
        ),
        Rules::ByLanguage => (
            minute().vary([http::header::ACCEPT_LANGUAGE]),
            get(cached_version_by_language),
        ),
    };
    let plain = get(version)
        .post(created)
        .put(replaced)
        .delete(deleted)
        .patch(refused);
    let attributed = cached_get
        .post(cached_created)
        .put(cached_replaced)
        .delete(cached_deleted)
        .patch(cached_refused);
    let route = w.route(mount, policy, plain, attributed);
    w.app(mount, Router::new().route("/items", route), w.counter())
}

async fn item(State(calls): State<Calls>) -> String {
    format!("item v{}", bump(&calls))
}

#[larder::cache(ttl = "60s")]
async fn cached_item(calls: State<Calls>) -> String {
    item(calls).await
}

async fn moved_elsewhere() -> impl IntoResponse {
    (
        [("content-location", "http://other.example/items/9")],
        "moved",
    )
}

#[larder::cache(ttl = "60s")]
async fn cached_moved_elsewhere() -> impl IntoResponse {
    moved_elsewhere().await
}

/// What `/o` answers with: the counter and fixed header fields.
#[derive(Clone)]
struct Origin {
    calls: Calls,
    headers: &'static [(&'static str, &'static str)],
}

async fn origin(State(o): State<Origin>) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(format!("v{}", bump(&o.calls))));
    for (name, value) in o.headers {
        response
            .headers_mut()
            .append(*name, http::HeaderValue::from_static(value));
    }
    response
}

#[larder::cache(origin_headers)]
async fn cached_origin(o: State<Origin>) -> http::Response<Body> {
    origin(o).await
}

fn origin_app(mount: Mount, w: &World, headers: &'static [(&'static str, &'static str)]) -> Router {
    let route = w.route(
        mount,
        Policy::origin_headers(),
        get(origin),
        get(cached_origin),
    );
    let state = Origin {
        calls: w.counter(),
        headers,
    };
    w.app(mount, Router::new().route("/o", route), state)
}

fn with_header(method: &str, name: &str, value: &str) -> http::Request<Body> {
    request(method, "/items")
        .header(name, value)
        .body(Body::empty())
        .unwrap()
}

both_mounts! {
    #[tokio::test]
    async fn request_no_cache_skips_the_read_but_stores_the_fresh_answer_9111_5_2_1_4(mount) {
        let w = World::new();
        let app = counted(mount, &w, Rules::Minute);
        get_reply(&app, "/items").await;
        for (name, value) in [
            ("cache-control", "no-cache"),
            ("cache-control", "max-age=0"),
            ("pragma", "no-cache"),
        ] {
            let before = w.calls();
            // max-age=0 needs an entry older than zero seconds to refuse.
            w.clock.advance(Duration::from_secs(1));
            let fresh = send(&app, with_header("GET", name, value)).await;
            assert_eq!(w.calls(), before + 1, "{name}: {value}");
            assert!(
                fresh.cache_status().contains("fwd=") && fresh.cache_status().contains("stored"),
                "{}",
                fresh.cache_status()
            );
            // Everyone else now gets the fresher answer.
            let hit = get_reply(&app, "/items").await;
            assert!(hit.is_hit());
            assert_eq!(hit.text(), fresh.text());
        }
    }

    #[tokio::test]
    async fn request_no_store_neither_reads_nor_writes_9111_5_2_1_5(mount) {
        let w = World::new();
        let app = counted(mount, &w, Rules::Minute);
        let r = send(&app, with_header("GET", "cache-control", "no-store")).await;
        assert!(r.cache_status().contains("fwd=request"));
        assert!(
            !get_reply(&app, "/items").await.is_hit(),
            "no-store must not write"
        );
        let r = send(&app, with_header("GET", "cache-control", "no-store")).await;
        assert!(!r.is_hit(), "no-store must not read");
        assert_eq!(w.calls(), 3);
    }

    #[tokio::test]
    async fn only_if_cached_answers_504_when_nothing_is_stored_9111_5_2_1_7(mount) {
        let w = World::new();
        let app = counted(mount, &w, Rules::Minute);
        let r = send(&app, with_header("GET", "cache-control", "only-if-cached")).await;
        assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(w.calls(), 0);
        get_reply(&app, "/items").await;
        let r = send(&app, with_header("GET", "cache-control", "only-if-cached")).await;
        assert_eq!(r.status, 200);
        assert!(r.is_hit());
    }

    #[tokio::test]
    async fn max_stale_accepts_a_stale_entry_9111_5_2_1_2(mount) {
        let w = World::new();
        let app = counted(mount, &w, Rules::Minute);
        get_reply(&app, "/items").await;
        w.clock.advance(Duration::from_secs(70)); // 10 s stale
        let r = send(&app, with_header("GET", "cache-control", "max-stale=30")).await;
        assert_eq!(r.text(), "v1");
        assert_eq!(r.cache_status(), "larder; hit; ttl=-10");
        assert_eq!(r.header("x-cache"), Some("STALE"));
        let r = send(&app, with_header("GET", "cache-control", "max-stale=5")).await;
        assert_eq!(r.text(), "v2");
    }

    #[tokio::test]
    async fn min_fresh_and_max_age_refuse_entries_that_do_not_meet_them_9111_5_2_1(mount) {
        let w = World::new();
        let app = counted(mount, &w, Rules::Minute);
        get_reply(&app, "/items").await;
        w.clock.advance(Duration::from_secs(40));
        assert!(
            send(&app, with_header("GET", "cache-control", "min-fresh=10"))
                .await
                .is_hit()
        );
        assert!(
            !send(&app, with_header("GET", "cache-control", "min-fresh=30"))
                .await
                .is_hit()
        );
        w.clock.advance(Duration::from_secs(20));
        assert!(
            !send(&app, with_header("GET", "cache-control", "max-age=10"))
                .await
                .is_hit()
        );
        assert!(
            send(&app, with_header("GET", "cache-control", "max-age=30"))
                .await
                .is_hit()
        );
    }

    #[tokio::test]
    async fn a_route_can_ignore_request_directives(mount) {
        let w = World::new();
        let app = counted(mount, &w, Rules::IgnoringRequestDirectives);
        get_reply(&app, "/items").await;
        for (name, value) in [
            ("cache-control", "no-cache"),
            ("pragma", "no-cache"),
            ("cache-control", "no-store"),
        ] {
            assert!(
                send(&app, with_header("GET", name, value)).await.is_hit(),
                "{name}: {value}"
            );
        }
        assert_eq!(w.calls(), 1);
    }

    #[tokio::test]
    async fn successful_unsafe_methods_invalidate_the_uri_9111_4_4(mount) {
        for method in ["POST", "PUT", "DELETE"] {
            let w = World::new();
            let app = counted(mount, &w, Rules::Minute);
            get_reply(&app, "/items").await;
            assert!(get_reply(&app, "/items").await.is_hit());
            let r = send(&app, request(method, "/items").body(Body::empty()).unwrap()).await;
            assert!(r.status.is_success());
            assert!(
                r.cache_status().contains("fwd=method"),
                "{}",
                r.cache_status()
            );
            let after = get_reply(&app, "/items").await;
            assert!(!after.is_hit(), "{method} did not invalidate");
            assert_eq!(after.text(), "v2");
            assert_eq!(
                w.cache.stats().invalidations,
                if method == "POST" { 2 } else { 1 }
            );
        }
    }

    #[tokio::test]
    async fn unsafe_methods_invalidate_under_the_current_generation_after_a_purge_9111_4_4(mount) {
        for method in ["POST", "PUT", "DELETE"] {
            let w = World::new();
            let app = counted(mount, &w, Rules::Minute);
            w.cache.purge_namespace("default").await.unwrap();
            w.cache.purge_namespace("default").await.unwrap();
            get_reply(&app, "/items").await;
            assert!(get_reply(&app, "/items").await.is_hit());
            let r = send(&app, request(method, "/items").body(Body::empty()).unwrap()).await;
            assert!(r.status.is_success());
            let after = get_reply(&app, "/items").await;
            assert!(!after.is_hit(), "{method} after a purge did not invalidate");
            assert_eq!(after.text(), "v2");
        }
    }

    #[tokio::test]
    async fn a_write_invalidates_the_namespaces_it_names_9111_4_4(mount) {
        let w = World::new();
        let app = admin_app(mount, &w, true);
        get_reply(&app, "/items").await;
        assert!(get_reply(&app, "/items").await.is_hit());
        let r = send(&app, request("POST", "/items").body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(r.cache_status().contains("fwd=method"), "{}", r.cache_status());
        let after = get_reply(&app, "/items").await;
        assert!(!after.is_hit(), "the admin POST left the items GET in place");
        assert_eq!(after.text(), "v2");
        // Its own namespace and `items`, for the URI and its Location.
        assert_eq!(w.cache.stats().invalidations, 4);
    }

    #[tokio::test]
    async fn a_write_in_another_namespace_that_names_none_leaves_the_get_9111_4_4(mount) {
        let w = World::new();
        let app = admin_app(mount, &w, false);
        get_reply(&app, "/items").await;
        send(&app, request("POST", "/items").body(Body::empty()).unwrap()).await;
        assert!(get_reply(&app, "/items").await.is_hit());
    }

    #[tokio::test]
    async fn a_write_route_invalidates_its_own_namespace_and_stores_nothing(mount) {
        let w = World::new();
        let route = match mount {
            Mount::Layer => get(version)
                .layer(w.cache.layer(minute()))
                .merge(put(replaced).layer(w.cache.layer(Policy::write()))),
            Mount::Attribute => get(cached_version).put(cached_plain_write),
        };
        let app = w.app(mount, Router::new().route("/items", route), w.counter());
        get_reply(&app, "/items").await;
        assert!(get_reply(&app, "/items").await.is_hit());
        let r = send(&app, request("PUT", "/items").body(Body::empty()).unwrap()).await;
        assert_eq!(r.text(), "replaced");
        assert!(!get_reply(&app, "/items").await.is_hit());
        assert_eq!(w.cache.stats().invalidations, 1);
    }

    #[tokio::test]
    async fn failed_unsafe_methods_do_not_invalidate_9111_4_4(mount) {
        let w = World::new();
        let app = counted(mount, &w, Rules::Minute);
        get_reply(&app, "/items").await;
        let r = send(
            &app,
            request("PATCH", "/items").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(r.status, 400);
        assert!(get_reply(&app, "/items").await.is_hit());
    }

    #[tokio::test]
    async fn unsafe_methods_invalidate_same_origin_location_9111_4_4(mount) {
        let w = World::new();
        let router = match mount {
            Mount::Layer => Router::new()
                .route("/items/9", get(item))
                .route("/items", post(created))
                .route("/elsewhere", post(moved_elsewhere))
                .layer(w.cache.layer(minute())),
            Mount::Attribute => Router::new()
                .route("/items/9", get(cached_item))
                .route("/items", post(cached_created))
                .route("/elsewhere", post(cached_moved_elsewhere)),
        };
        let app = w.app(mount, router, w.counter());
        get_reply(&app, "/items/9").await;
        // Another origin's Content-Location invalidates nothing here.
        send(
            &app,
            request("POST", "/elsewhere").body(Body::empty()).unwrap(),
        )
        .await;
        assert!(get_reply(&app, "/items/9").await.is_hit());
        send(&app, request("POST", "/items").body(Body::empty()).unwrap()).await;
        let after = get_reply(&app, "/items/9").await;
        assert!(!after.is_hit());
        assert_eq!(after.text(), "item v2");
    }

    #[tokio::test]
    async fn same_origin_location_is_invalidated_under_the_current_generation_9111_4_4(mount) {
        let w = World::new();
        let router = match mount {
            Mount::Layer => Router::new()
                .route("/items/9", get(item))
                .route("/items", post(created))
                .layer(w.cache.layer(minute())),
            Mount::Attribute => Router::new()
                .route("/items/9", get(cached_item))
                .route("/items", post(cached_created)),
        };
        let app = w.app(mount, router, w.counter());
        w.cache.purge_namespace("default").await.unwrap();
        get_reply(&app, "/items/9").await;
        assert!(get_reply(&app, "/items/9").await.is_hit());
        send(&app, request("POST", "/items").body(Body::empty()).unwrap()).await;
        let after = get_reply(&app, "/items/9").await;
        assert!(!after.is_hit(), "the Location was invalidated under generation 0");
        assert_eq!(after.text(), "item v2");
    }

    #[tokio::test]
    async fn a_post_invalidates_every_variant_of_the_uri_9111_4_4(mount) {
        let w = World::new();
        let app = counted(mount, &w, Rules::ByLanguage);
        let lang = |l: &str| with_header("GET", "accept-language", l);
        send(&app, lang("en")).await;
        send(&app, lang("fr")).await;
        assert!(send(&app, lang("fr")).await.is_hit());
        // The POST carries no Accept-Language at all.
        send(&app, request("POST", "/items").body(Body::empty()).unwrap()).await;
        assert!(!send(&app, lang("en")).await.is_hit());
        // fr was stored before the POST: it must not come back with the new index.
        assert!(!send(&app, lang("fr")).await.is_hit());
        assert_eq!(w.calls(), 4);
    }

    #[tokio::test]
    async fn origin_mode_stores_nothing_without_explicit_freshness_9111_3(mount) {
        let w = World::new();
        let app = origin_app(mount, &w, &[("content-type", "text/plain")]);
        get_reply(&app, "/o").await;
        assert!(!get_reply(&app, "/o").await.is_hit());
        assert_eq!(
            w.cache.stats().not_stored(larder::NotStored::NoFreshness),
            2
        );
    }

    #[tokio::test]
    async fn origin_mode_s_maxage_beats_max_age_9111_4_2_1(mount) {
        let w = World::new();
        let app = origin_app(mount, &w, &[("cache-control", "max-age=10, s-maxage=100")]);
        get_reply(&app, "/o").await;
        w.clock.advance(Duration::from_secs(50));
        let hit = get_reply(&app, "/o").await;
        assert!(hit.is_hit());
        assert_eq!(hit.cache_status(), "larder; hit; ttl=50");
        // Clients see the origin's own Cache-Control, untouched.
        assert_eq!(
            hit.header("cache-control"),
            Some("max-age=10, s-maxage=100")
        );
    }

    #[tokio::test]
    async fn origin_mode_counts_the_upstream_age_9111_4_2_3(mount) {
        let w = World::new();
        let app = origin_app(mount, &w, &[("cache-control", "max-age=100"), ("age", "30")]);
        let first = get_reply(&app, "/o").await;
        assert_eq!(first.header("age"), Some("30"));
        w.clock.advance(Duration::from_secs(60));
        let hit = get_reply(&app, "/o").await;
        assert_eq!(hit.header("age"), Some("90"));
        assert_eq!(hit.cache_status(), "larder; hit; ttl=10");
        w.clock.advance(Duration::from_secs(11));
        assert!(!get_reply(&app, "/o").await.is_hit());
    }

    #[tokio::test]
    async fn origin_mode_expires_in_the_past_is_not_stored_9111_5_3(mount) {
        let w = World::new();
        let app = origin_app(mount, &w, &[("expires", "0")]);
        get_reply(&app, "/o").await;
        assert!(!get_reply(&app, "/o").await.is_hit());
    }

    #[tokio::test]
    async fn hop_by_hop_fields_are_not_stored_9111_3_1(mount) {
        let w = World::new();
        let app = origin_app(
            mount,
            &w,
            &[
                ("cache-control", "max-age=60"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("keep-alive", "timeout=5"),
                ("x-end", "kept"),
            ],
        );
        get_reply(&app, "/o").await;
        let hit = get_reply(&app, "/o").await;
        assert!(hit.is_hit());
        assert_eq!(hit.header("x-end"), Some("kept"));
        for gone in ["connection", "x-hop", "keep-alive"] {
            assert!(hit.header(gone).is_none(), "{gone} was stored");
        }
    }
}

/// A handler that answers `v1` with the given Cache-Control while healthy,
/// and 503 once `failing` is set.
fn flaky_app(
    w: &World,
    policy: Policy,
    cache_control: &'static str,
) -> (Router, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = failing.clone();
    let app = Router::new().route(
        "/flaky",
        get(move || {
            let flag = flag.clone();
            async move {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("cache-control", "no-store")],
                        "down",
                    )
                        .into_response()
                } else {
                    ([("cache-control", cache_control)], "v1").into_response()
                }
            }
        })
        .layer(w.cache.layer(policy)),
    );
    (app, failing)
}

fn fail(flag: &std::sync::atomic::AtomicBool) {
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
}

#[tokio::test]
async fn stale_if_error_serves_the_stale_answer_inside_its_window_5861_4() {
    let w = World::new();
    let (app, failing) = flaky_app(&w, minute(), "max-age=60, stale-if-error=300");
    get_reply(&app, "/flaky").await;
    fail(&failing);
    w.clock.advance(Duration::from_secs(100)); // 40 s stale, window 300 s
    let r = get_reply(&app, "/flaky").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "v1");
    assert_eq!(
        r.cache_status(),
        "larder; fwd=stale; fwd-status=503; ttl=-40"
    );
    assert_eq!(r.header("x-cache"), Some("STALE"));
    assert_eq!(r.header("age"), Some("100"));
    w.clock.advance(Duration::from_secs(300)); // 340 s stale: outside
    let r = get_reply(&app, "/flaky").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "down");
}

#[tokio::test]
async fn stale_if_error_from_the_route_policy_5861_4() {
    let w = World::new();
    let policy = minute().stale_if_error(Duration::from_secs(300));
    let (app, failing) = flaky_app(&w, policy, "public");
    get_reply(&app, "/flaky").await;
    fail(&failing);
    w.clock.advance(Duration::from_secs(100));
    assert_eq!(get_reply(&app, "/flaky").await.text(), "v1");
}

#[tokio::test]
async fn stale_if_error_from_the_request_5861_4() {
    let w = World::new();
    let (app, failing) = flaky_app(&w, minute(), "public");
    get_reply(&app, "/flaky").await;
    fail(&failing);
    w.clock.advance(Duration::from_secs(100));
    assert_eq!(
        get_reply(&app, "/flaky").await.status,
        503,
        "no window anywhere"
    );
    let asks = request("GET", "/flaky")
        .header("cache-control", "stale-if-error=60")
        .body(Body::empty())
        .unwrap();
    let r = send(&app, asks).await;
    assert_eq!(r.text(), "v1");
}

#[tokio::test]
async fn must_revalidate_never_serves_stale_on_error_9111_4_2_4() {
    let w = World::new();
    let (app, failing) = flaky_app(
        &w,
        minute(),
        "max-age=60, must-revalidate, stale-if-error=300",
    );
    get_reply(&app, "/flaky").await;
    fail(&failing);
    w.clock.advance(Duration::from_secs(100));
    assert_eq!(get_reply(&app, "/flaky").await.status, 503);
}

#[tokio::test]
async fn stale_if_error_stands_in_for_a_service_error_5861_4() {
    use tower::{Layer, ServiceExt};
    let w = World::new();
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = failing.clone();
    let inner = tower::service_fn(move |_req: http::Request<Body>| {
        let down = flag.load(std::sync::atomic::Ordering::SeqCst);
        async move {
            if down {
                Err("connection refused")
            } else {
                let mut r = http::Response::new(Body::from("v1"));
                r.headers_mut().insert(
                    "cache-control",
                    http::HeaderValue::from_static("stale-if-error=300"),
                );
                Ok(r)
            }
        }
    });
    let service = w.cache.layer(minute()).layer(inner);
    let get = || request("GET", "/s").body(Body::empty()).unwrap();
    service.clone().oneshot(get()).await.unwrap();
    fail(&failing);
    w.clock.advance(Duration::from_secs(100));
    let r = service.clone().oneshot(get()).await.unwrap();
    assert_eq!(r.headers()["cache-status"], "larder; fwd=stale; ttl=-40");
    w.clock.advance(Duration::from_secs(300));
    assert_eq!(
        service.oneshot(get()).await.unwrap_err(),
        "connection refused"
    );
}
