//! Route-TTL mode through a real axum Router, with the layer and with the
//! attribute: hits, expiry, Age, Cache-Status, HEAD, conditional requests,
//! Vary and Host.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use common::*;
use http::header::ACCEPT_LANGUAGE;
use http::HeaderMap;
use larder::{ClientCacheControl, Policy};

fn minute() -> Policy {
    Policy::ttl(Duration::from_secs(60))
}

async fn items(State(calls): State<Calls>) -> String {
    format!("items v{}", bump(&calls))
}

#[larder::cache(ttl = "60s")]
async fn cached_items(calls: State<Calls>) -> String {
    items(calls).await
}

/// `GET /items`, counted, cached for a minute.
fn counted_app(mount: Mount, w: &World) -> Router {
    let route = w.route(mount, minute(), get(items), get(cached_items));
    w.app(mount, Router::new().route("/items", route), w.counter())
}

async fn own_cache_control() -> ([(&'static str, &'static str); 1], &'static str) {
    ([("cache-control", "public, max-age=5")], "x")
}

#[larder::cache(ttl = "1m")]
async fn cached_own_cache_control() -> impl axum::response::IntoResponse {
    own_cache_control().await
}

#[larder::cache(ttl = "1m", client_cache_control = "no-cache")]
async fn cached_fixed() -> &'static str {
    "x"
}

fn cache_control_app(mount: Mount, w: &World) -> Router {
    let fixed = minute().client_cache_control(ClientCacheControl::Fixed(
        http::HeaderValue::from_static("no-cache"),
    ));
    let own = w.route(
        mount,
        minute(),
        get(own_cache_control),
        get(cached_own_cache_control),
    );
    let fixed = w.route(mount, fixed, get(|| async { "x" }), get(cached_fixed));
    w.app(
        mount,
        Router::new().route("/own", own).route("/fixed", fixed),
        (),
    )
}

async fn weak_etag() -> ([(&'static str, &'static str); 1], &'static str) {
    ([("etag", "W/\"v7\"")], "x")
}

#[larder::cache(ttl = "60s")]
async fn cached_weak_etag() -> ([(&'static str, &'static str); 1], &'static str) {
    weak_etag().await
}

async fn greeting(State(calls): State<Calls>, headers: HeaderMap) -> &'static str {
    bump(&calls);
    match headers.get(ACCEPT_LANGUAGE).map(|v| v.as_bytes()) {
        Some(b"fr") => "Bonjour",
        _ => "Hello",
    }
}

#[larder::cache(ttl = "60s", vary = ["accept-language"])]
async fn cached_greeting(calls: State<Calls>, headers: HeaderMap) -> &'static str {
    greeting(calls, headers).await
}

async fn echo_language(
    State(calls): State<Calls>,
    headers: HeaderMap,
) -> impl axum::response::IntoResponse {
    bump(&calls);
    let lang = headers
        .get(ACCEPT_LANGUAGE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    ([("vary", "Accept-Language")], lang)
}

#[larder::cache(ttl = "60s")]
async fn cached_echo_language(
    calls: State<Calls>,
    headers: HeaderMap,
) -> impl axum::response::IntoResponse {
    echo_language(calls, headers).await
}

#[derive(Clone)]
struct RequestId(u32);

async fn for_request(State(calls): State<Calls>, ext: axum::Extension<RequestId>) -> String {
    bump(&calls);
    format!("a for {}", ext.0 .0)
}

#[larder::cache(ttl = "60s")]
async fn cached_for_request(calls: State<Calls>, ext: axum::Extension<RequestId>) -> String {
    for_request(calls, ext).await
}

#[larder::cache(ttl = "60s")]
async fn cached_b() -> &'static str {
    "b"
}

async fn not_found(State(calls): State<Calls>) -> (http::StatusCode, &'static str) {
    bump(&calls);
    (http::StatusCode::NOT_FOUND, "gone")
}

#[larder::cache(ttl = "60s")]
async fn cached_not_found(calls: State<Calls>) -> (http::StatusCode, &'static str) {
    not_found(calls).await
}

#[larder::cache(ttl = "60s", statuses = [404])]
async fn cached_negative(calls: State<Calls>) -> (http::StatusCode, &'static str) {
    not_found(calls).await
}

async fn conditional(app: &Router, inm: &str) -> Reply {
    send(
        app,
        request("GET", "/items")
            .header("if-none-match", inm)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

both_mounts! {
    #[tokio::test]
    async fn handler_runs_once_within_the_ttl_and_again_after(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);

        let first = get_reply(&app, "/items").await;
        assert_eq!(first.status, 200);
        assert_eq!(first.text(), "items v1");
        assert_eq!(
            first.cache_status(),
            "larder; fwd=uri-miss; fwd-status=200; ttl=60; stored"
        );
        assert_eq!(first.header("x-cache"), Some("MISS"));
        assert_eq!(first.header("age"), Some("0"));

        for second in 1..=5u64 {
            w.clock.advance(Duration::from_secs(10));
            let hit = get_reply(&app, "/items").await;
            assert_eq!(hit.text(), "items v1");
            let age = second * 10;
            assert_eq!(hit.header("age"), Some(age.to_string().as_str()));
            assert_eq!(hit.cache_status(), format!("larder; hit; ttl={}", 60 - age));
            assert_eq!(hit.header("x-cache"), Some("HIT"));
            // Toward clients: max-age is what is left of the route's TTL.
            assert_eq!(
                hit.header("cache-control"),
                Some(format!("max-age={}", 60 - age).as_str())
            );
        }
        assert_eq!(w.calls(), 1);

        w.clock.advance(Duration::from_secs(11)); // age 61 > 60
        let expired = get_reply(&app, "/items").await;
        assert_eq!(expired.text(), "items v2");
        assert_eq!(
            expired.cache_status(),
            "larder; fwd=stale; fwd-status=200; ttl=60; stored"
        );
        assert_eq!(w.calls(), 2);
        let again = get_reply(&app, "/items").await;
        assert!(again.is_hit());
        assert_eq!(again.text(), "items v2");
        let stats = w.cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.stores), (6, 2, 2));
    }

    #[tokio::test]
    async fn date_is_added_once_and_never_rewritten_9110_6_6_1(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        let first = get_reply(&app, "/items").await;
        let date = first
            .header("date")
            .expect("a cached response gets a Date")
            .to_owned();
        assert_eq!(date, httpdate::fmt_http_date(epoch()));
        w.clock.advance(Duration::from_secs(30));
        let hit = get_reply(&app, "/items").await;
        assert_eq!(hit.header("date"), Some(date.as_str()));
        assert_eq!(hit.header("age"), Some("30"));
    }

    #[tokio::test]
    async fn handler_cache_control_is_kept_or_replaced_as_the_route_says(mount) {
        let w = World::new();
        let app = cache_control_app(mount, &w);
        for _ in 0..2 {
            assert_eq!(
                get_reply(&app, "/own").await.header("cache-control"),
                Some("public, max-age=5")
            );
            assert_eq!(
                get_reply(&app, "/fixed").await.header("cache-control"),
                Some("no-cache")
            );
        }
        // The route's TTL, not the handler's max-age=5, decides freshness here.
        w.clock.advance(Duration::from_secs(30));
        assert!(get_reply(&app, "/own").await.is_hit());
    }

    #[tokio::test]
    async fn head_after_get_is_a_hit_without_a_body_9111_4(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        let full = get_reply(&app, "/items").await;
        let head = send(&app, request("HEAD", "/items").body(Body::empty()).unwrap()).await;
        assert!(head.is_hit(), "{}", head.cache_status());
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert_eq!(head.header("etag"), full.header("etag"));
        // RFC 9110 §9.3.2: the length the GET's body has, not 0.
        assert_eq!(head.header("content-length"), Some("8"));
        assert_eq!(w.calls(), 1);
    }

    #[tokio::test]
    async fn head_on_a_cold_key_fills_the_entry_for_get(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        let head = send(&app, request("HEAD", "/items").body(Body::empty()).unwrap()).await;
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
        assert!(head.cache_status().contains("stored"));
        let full = get_reply(&app, "/items").await;
        assert!(full.is_hit());
        assert_eq!(full.text(), "items v1");
        assert_eq!(w.calls(), 1);
    }

    #[tokio::test]
    async fn generated_etag_is_a_strong_content_hash(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        let etag = get_reply(&app, "/items")
            .await
            .header("etag")
            .unwrap()
            .to_owned();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
        // The same bytes in another process (another cache) give the same tag.
        let other = World::new();
        let other_app = counted_app(mount, &other);
        assert_eq!(
            get_reply(&other_app, "/items").await.header("etag"),
            Some(etag.as_str())
        );
    }

    #[tokio::test]
    async fn handler_etag_is_kept(mount) {
        let w = World::new();
        let route = w.route(mount, minute(), get(weak_etag), get(cached_weak_etag));
        let app = w.app(mount, Router::new().route("/e", route), ());
        assert_eq!(get_reply(&app, "/e").await.header("etag"), Some("W/\"v7\""));
        assert_eq!(get_reply(&app, "/e").await.header("etag"), Some("W/\"v7\""));
    }

    #[tokio::test]
    async fn if_none_match_on_a_hit_answers_304_9110_13_1_2(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        let full = get_reply(&app, "/items").await;
        let etag = full.header("etag").unwrap().to_owned();
        let weak = format!("W/{etag}");
        let list = format!("\"nope\", {etag}");
        for inm in [etag.as_str(), weak.as_str(), list.as_str(), "*"] {
            let r = conditional(&app, inm).await;
            assert_eq!(r.status, 304, "If-None-Match: {inm}");
            assert!(r.body.is_empty());
            assert!(r.is_hit());
            // RFC 9110 §15.4.5: the fields the 200 would have carried.
            assert_eq!(r.header("etag"), Some(etag.as_str()));
            assert_eq!(r.header("date"), full.header("date"));
            assert_eq!(r.header("cache-control"), Some("max-age=60"));
            assert!(r.header("content-type").is_none());
            assert!(r.header("content-length").is_none());
        }
        let r = conditional(&app, "\"other\"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "items v1");
        assert_eq!(w.calls(), 1);
        assert_eq!(w.cache.stats().not_modified, 4);
    }

    #[tokio::test]
    async fn if_none_match_on_a_miss_answers_304_from_the_fresh_response(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        // The tag of "items v1", as any process computes it.
        let etag = {
            let other = World::new();
            let other_app = counted_app(mount, &other);
            get_reply(&other_app, "/items")
                .await
                .header("etag")
                .unwrap()
                .to_owned()
        };
        let r = conditional(&app, &etag).await;
        assert_eq!(r.status, 304);
        assert!(
            r.header("content-length").is_none(),
            "a 304 must not claim Content-Length: 0"
        );
        assert!(r.cache_status().contains("stored"));
        // The handler produced (and the cache stored) the full response.
        let full = get_reply(&app, "/items").await;
        assert!(full.is_hit());
        assert_eq!(full.text(), "items v1");
    }

    #[tokio::test]
    async fn if_modified_since_on_a_hit_9110_13_1_3(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        get_reply(&app, "/items").await;
        let at = |t| httpdate::fmt_http_date(t);
        let later = at(epoch() + Duration::from_secs(5));
        let earlier = at(epoch() - Duration::from_secs(5));
        let ims = |d: &str| {
            request("GET", "/items")
                .header("if-modified-since", d)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(send(&app, ims(&later)).await.status, 304);
        assert_eq!(send(&app, ims(&earlier)).await.status, 200);
        assert_eq!(send(&app, ims("not a date")).await.status, 200);
    }

    #[tokio::test]
    async fn declared_vary_header_selects_different_entries_9111_4_1(mount) {
        let w = World::new();
        let policy = minute().vary([ACCEPT_LANGUAGE]);
        let route = w.route(mount, policy, get(greeting), get(cached_greeting));
        let app = w.app(mount, Router::new().route("/greeting", route), w.counter());
        let lang = |l: &str| {
            request("GET", "/greeting")
                .header("accept-language", l)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(send(&app, lang("fr")).await.text(), "Bonjour");
        let en = send(&app, lang("en")).await;
        assert_eq!(en.text(), "Hello");
        assert!(!en.is_hit());
        assert_eq!(
            en.header("vary"),
            Some("accept-language"),
            "downstream caches must vary too"
        );
        assert_eq!(send(&app, lang("fr")).await.text(), "Bonjour");
        assert!(send(&app, lang("fr")).await.is_hit());
        assert!(send(&app, lang("en")).await.is_hit());
        assert_eq!(w.calls(), 2);
        // Absent is its own variant.
        assert_eq!(get_reply(&app, "/greeting").await.text(), "Hello");
        assert_eq!(w.calls(), 3);
    }

    #[tokio::test]
    async fn response_vary_is_honoured_without_declaring_it_9111_4_1(mount) {
        let w = World::new();
        let route = w.route(mount, minute(), get(echo_language), get(cached_echo_language));
        let app = w.app(mount, Router::new().route("/v", route), w.counter());
        let lang = |l: &str| {
            request("GET", "/v")
                .header("accept-language", l)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(send(&app, lang("fr")).await.text(), "fr");
        let en = send(&app, lang("en")).await;
        assert_eq!(en.text(), "en");
        assert!(
            en.cache_status().contains("fwd=vary-miss"),
            "{}",
            en.cache_status()
        );
        assert!(send(&app, lang("fr")).await.is_hit());
        assert!(send(&app, lang("en")).await.is_hit());
        assert_eq!(send(&app, lang("en")).await.text(), "en");
        assert_eq!(w.calls(), 2);
    }

    #[tokio::test]
    async fn host_case_shares_an_entry_and_other_hosts_do_not(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        let host = |h: &str| {
            http::Request::get("/items")
                .header("host", h)
                .body(Body::empty())
                .unwrap()
        };
        assert!(!send(&app, host("example.com")).await.is_hit());
        assert!(send(&app, host("EXAMPLE.com")).await.is_hit());
        assert!(send(&app, host("example.com:80")).await.is_hit());
        let other = send(&app, host("other.example")).await;
        assert!(!other.is_hit());
        assert_eq!(other.text(), "items v2");
        assert_eq!(w.calls(), 2);
    }

    #[tokio::test]
    async fn query_is_part_of_the_key(mount) {
        let w = World::new();
        let app = counted_app(mount, &w);
        get_reply(&app, "/items?page=1").await;
        assert!(!get_reply(&app, "/items?page=2").await.is_hit());
        assert!(get_reply(&app, "/items?page=1").await.is_hit());
        assert_eq!(w.calls(), 2);
    }

    #[tokio::test]
    async fn router_wide_layer_caches_every_route_and_keeps_extensions(mount) {
        let w = World::new();
        // The layer wraps the router; the attribute is on each handler, with
        // the cache on the router as an extension.
        let router = match mount {
            Mount::Layer => Router::new()
                .route("/a", get(for_request))
                .route("/b", get(|| async { "b" }))
                .layer(w.cache.layer(minute())),
            Mount::Attribute => Router::new()
                .route("/a", get(cached_for_request))
                .route("/b", get(cached_b)),
        };
        let app = w.app(mount, router, w.counter());
        let with_ext = || {
            let mut r = common::get("/a");
            r.extensions_mut().insert(RequestId(7));
            r
        };
        assert_eq!(send(&app, with_ext()).await.text(), "a for 7");
        assert!(send(&app, with_ext()).await.is_hit());
        assert!(!get_reply(&app, "/b").await.is_hit());
        assert!(get_reply(&app, "/b").await.is_hit());
        assert_eq!(w.calls(), 1);
    }

    #[tokio::test]
    async fn only_200_is_stored_by_default_and_other_statuses_on_request(mount) {
        let w = World::new();
        let negative = minute().statuses([http::StatusCode::NOT_FOUND]);
        let default = w.route(mount, minute(), get(not_found), get(cached_not_found));
        let negative = w.route(mount, negative, get(not_found), get(cached_negative));
        let router = Router::new()
            .route("/default", default)
            .route("/negative", negative);
        let app = w.app(mount, router, w.counter());
        get_reply(&app, "/default").await;
        let second = get_reply(&app, "/default").await;
        assert_eq!(second.status, 404);
        assert!(!second.is_hit());
        get_reply(&app, "/negative").await;
        let neg = get_reply(&app, "/negative").await;
        assert_eq!(neg.status, 404);
        assert!(neg.is_hit());
        assert_eq!(w.calls(), 3);
    }
}

#[tokio::test]
async fn cache_status_joins_the_list_from_nearer_the_origin_9211_2() {
    let w = World::new();
    let app = Router::new().route(
        "/chain",
        get(|| async {
            let mut response = http::Response::new(Body::from("x"));
            let h = response.headers_mut();
            h.append(
                "cache-status",
                http::HeaderValue::from_static("origin-cache; hit"),
            );
            h.append(
                "cache-status",
                http::HeaderValue::from_static("edge; fwd=miss"),
            );
            h.insert("cache-control", http::HeaderValue::from_static("private"));
            response
        })
        .layer(w.cache.layer(minute())),
    );
    let reply = get_reply(&app, "/chain").await;
    assert_eq!(reply.headers.get_all("cache-status").iter().count(), 1);
    assert_eq!(
        reply.cache_status(),
        "origin-cache; hit, edge; fwd=miss, larder; fwd=uri-miss; fwd-status=200"
    );
}
