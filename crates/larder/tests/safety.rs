//! What must never be shared, through the layer and the attribute:
//! Set-Cookie, private, no-store, Vary: *, Authorization; and coalesced
//! requests never get another's private answer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::*;
use http::HeaderMap;
use larder::{NotStored, Policy};

fn minute() -> Policy {
    Policy::ttl(Duration::from_secs(60))
}

/// What `/me` needs: the counter, and the header that makes its response
/// unshareable.
#[derive(Clone)]
struct Personal {
    calls: Calls,
    extra: (&'static str, &'static str),
}

/// Answers each caller with its own name, and the header `extra`.
async fn personal(State(p): State<Personal>, headers: HeaderMap) -> impl IntoResponse {
    bump(&p.calls);
    let user = headers
        .get("x-user")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    ([p.extra], format!("hello {user}"))
}

#[larder::cache(ttl = "60s")]
async fn cached_personal(p: State<Personal>, headers: HeaderMap) -> impl IntoResponse {
    personal(p, headers).await
}

fn personal_app(mount: Mount, w: &World, extra: (&'static str, &'static str)) -> Router {
    let route = w.route(mount, minute(), get(personal), get(cached_personal));
    let state = Personal {
        calls: w.counter(),
        extra,
    };
    w.app(mount, Router::new().route("/me", route), state)
}

async fn partly_private() -> impl IntoResponse {
    (
        [
            ("cache-control", "private=\"x-user-id\""),
            ("x-user-id", "42"),
        ],
        "shared part",
    )
}

#[larder::cache(ttl = "60s")]
async fn cached_partly_private() -> impl IntoResponse {
    partly_private().await
}

async fn public(State(calls): State<Calls>) -> String {
    format!("v{}", bump(&calls))
}

#[larder::cache(ttl = "60s", allow_authorization = true)]
async fn cached_public(calls: State<Calls>) -> String {
    public(calls).await
}

async fn slow_personal(State(calls): State<Calls>, headers: HeaderMap) -> impl IntoResponse {
    bump(&calls);
    // Long enough that the others arrive while this one runs.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let user = headers.get("x-user").unwrap().to_str().unwrap().to_owned();
    (
        [("set-cookie", format!("session={user}"))],
        format!("hello {user}"),
    )
}

#[larder::cache(ttl = "60s")]
async fn cached_slow_personal(calls: State<Calls>, headers: HeaderMap) -> impl IntoResponse {
    slow_personal(calls, headers).await
}

fn as_user(user: &str) -> http::Request<Body> {
    request("GET", "/me")
        .header("x-user", user)
        .body(Body::empty())
        .unwrap()
}

async fn never_shared(mount: Mount, extra: (&'static str, &'static str), reason: NotStored) {
    let w = World::with(|b| b.cache_status_detail(true));
    let app = personal_app(mount, &w, extra);
    assert_eq!(send(&app, as_user("alice")).await.text(), "hello alice");
    let bob = send(&app, as_user("bob")).await;
    assert_eq!(bob.text(), "hello bob", "{extra:?} was shared");
    assert!(!bob.is_hit());
    assert!(
        bob.cache_status()
            .contains(&format!("detail={}", reason.as_str())),
        "{}",
        bob.cache_status()
    );
    assert_eq!(w.calls(), 2);
    assert_eq!(w.cache.stats().not_stored(reason), 2);
    assert_eq!(w.cache.stats().stores, 0);
}

/// Answers with the request's body: a handler whose answer the key (URL
/// and vary fields) does not determine when a GET carries a body.
async fn echo(State(calls): State<Calls>, body: String) -> String {
    bump(&calls);
    format!("you sent {body:?}")
}

#[larder::cache(ttl = "60s")]
async fn cached_echo(calls: State<Calls>, body: String) -> String {
    echo(calls, body).await
}

/// Builds its links from the `Host` it is given, as most origins do: what
/// a forged Host would put in front of every client if it were keyed as
/// another host.
async fn links(State(calls): State<Calls>, headers: HeaderMap) -> String {
    bump(&calls);
    let host = headers
        .get("host")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    format!("<script src=\"//{host}/app.js\">")
}

#[larder::cache(ttl = "60s")]
async fn cached_links(calls: State<Calls>, headers: HeaderMap) -> String {
    links(calls, headers).await
}

fn links_app(mount: Mount, w: &World) -> Router {
    let route = w.route(mount, minute(), get(links), get(cached_links));
    w.app(mount, Router::new().route("/links", route), w.counter())
}

fn with_host(target: &str, host: &[u8]) -> http::Request<Body> {
    http::Request::get(target)
        .header("host", http::HeaderValue::from_bytes(host).unwrap())
        .body(Body::empty())
        .unwrap()
}

both_mounts! {
    #[tokio::test]
    async fn an_invalid_host_bypasses_and_is_never_keyed_as_another_host_3986_3_2_2(mount) {
        let w = World::with(|b| b.cache_status_detail(true));
        let app = links_app(mount, &w);
        let attacks: [&[u8]; 8] = [
            b"evil.example/?@victim.example",
            b"evil.example#@victim.example",
            b"evil.example\\@victim.example",
            b"evil.example@victim.example",
            b"evil.example victim.example",
            b"victim.example/evil.example",
            "victim.example\u{2024}evil".as_bytes(),
            b"",
        ];
        for attack in attacks {
            let forged = send(&app, with_host("/links", attack)).await;
            assert!(forged.cache_status().contains("fwd=bypass"), "{attack:?}: {}", forged.cache_status());
            assert!(forged.cache_status().contains("detail=host"), "{attack:?}: {}", forged.cache_status());
        }
        let victim = send(&app, with_host("/links", b"victim.example")).await;
        assert_eq!(victim.text(), "<script src=\"//victim.example/app.js\">");
        assert!(!victim.is_hit(), "a forged Host was stored as victim.example's");
        assert!(send(&app, with_host("/links", b"victim.example")).await.is_hit());
        assert_eq!(w.calls(), attacks.len() + 1);
        assert_eq!(w.cache.stats().stores, 1);
        assert_eq!(w.cache.stats().not_stored(NotStored::Host), attacks.len() as u64);
    }

    #[tokio::test]
    async fn a_host_the_target_authority_contradicts_bypasses_9112_3_2_2(mount) {
        let w = World::with(|b| b.cache_status_detail(true));
        let app = links_app(mount, &w);
        // The key would read victim.example; the handler reads Host.
        let forged = send(&app, with_host("http://victim.example/links", b"evil.example")).await;
        assert!(forged.cache_status().contains("detail=host"), "{}", forged.cache_status());
        let userinfo = send(&app, with_host("http://evil.example@victim.example/links", b"victim.example")).await;
        assert!(userinfo.cache_status().contains("detail=host"), "{}", userinfo.cache_status());
        let victim = send(&app, with_host("/links", b"victim.example")).await;
        assert_eq!(victim.text(), "<script src=\"//victim.example/app.js\">");
        assert!(!victim.is_hit());
        // When they agree, the absolute form shares the origin-form entry.
        let agreed = send(&app, with_host("http://Victim.example:80/links", b"victim.example")).await;
        assert!(agreed.is_hit(), "{}", agreed.cache_status());
        assert_eq!(w.calls(), 3);
    }

    #[tokio::test]
    async fn a_non_ascii_host_never_falls_onto_the_key_of_requests_without_host(mount) {
        let w = World::with(|b| b.cache_status_detail(true));
        let app = links_app(mount, &w);
        let forged = send(&app, with_host("/links", "v\u{ef}ctim.example".as_bytes())).await;
        assert!(forged.cache_status().contains("detail=host"), "{}", forged.cache_status());
        // An HTTP/1.0 request without Host keeps its own (empty-host) key.
        let bare = || {
            http::Request::get("/links")
                .version(http::Version::HTTP_10)
                .body(Body::empty())
                .unwrap()
        };
        let first = send(&app, bare()).await;
        assert_eq!(first.text(), "<script src=\"///app.js\">");
        assert!(!first.is_hit(), "the non-ASCII Host's answer was stored for requests without Host");
        assert!(send(&app, bare()).await.is_hit());
        assert_eq!(w.calls(), 2);
    }

    #[tokio::test]
    async fn hosts_outside_the_allowlist_bypass_the_cache(mount) {
        let w = World::with(|b| b.allowed_hosts(["Example.com"]).cache_status_detail(true));
        let route = w.route(mount, minute(), get(echo), get(cached_echo));
        let app = w.app(mount, Router::new().route("/echo", route), w.counter());
        let host = |h: &'static str| http::Request::get("/echo").header("host", h).body(Body::empty()).unwrap();
        send(&app, host("example.com")).await;
        assert!(send(&app, host("example.com:80")).await.is_hit());
        for _ in 0..2 {
            let forged = send(&app, host("evil.example")).await;
            assert!(forged.cache_status().contains("fwd=bypass"), "{}", forged.cache_status());
            assert!(forged.cache_status().contains("detail=host"), "{}", forged.cache_status());
        }
        assert_eq!(w.calls(), 3);
        assert_eq!(w.cache.stats().stores, 1);
    }

    #[tokio::test]
    async fn a_get_with_a_body_bypasses_the_cache(mount) {
        let w = World::with(|b| b.cache_status_detail(true));
        let route = w.route(mount, minute(), get(echo), get(cached_echo));
        let app = w.app(mount, Router::new().route("/echo", route), w.counter());
        // As on the wire: an HTTP/1.1 body comes with its length.
        let with_body = |b: &'static str| {
            request("GET", "/echo")
                .header("content-length", b.len())
                .body(Body::from(b))
                .unwrap()
        };
        assert_eq!(send(&app, with_body("alice")).await.text(), "you sent \"alice\"");
        let bob = send(&app, with_body("bob")).await;
        assert_eq!(bob.text(), "you sent \"bob\"", "one body's answer served for another");
        assert!(bob.cache_status().contains("fwd=bypass; fwd-status=200; detail=request-body"), "{}", bob.cache_status());
        // Without a body the route caches as usual.
        get_reply(&app, "/echo").await;
        assert!(get_reply(&app, "/echo").await.is_hit());
        assert_eq!(w.calls(), 3);
        assert_eq!(w.cache.stats().not_stored(NotStored::RequestBody), 2);
    }

    #[tokio::test]
    async fn set_cookie_responses_are_never_shared(mount) {
        never_shared(mount, ("set-cookie", "session=alice"), NotStored::SetCookie).await;
    }

    #[tokio::test]
    async fn private_responses_are_never_shared_9111_5_2_2_7(mount) {
        never_shared(mount, ("cache-control", "private"), NotStored::Private).await;
    }

    #[tokio::test]
    async fn no_store_responses_are_never_shared_9111_5_2_2_5(mount) {
        never_shared(mount, ("cache-control", "no-store"), NotStored::NoStore).await;
    }

    #[tokio::test]
    async fn vary_star_responses_are_never_reused_9111_4_1(mount) {
        never_shared(mount, ("vary", "*"), NotStored::VaryStar).await;
    }

    #[tokio::test]
    async fn qualified_private_strips_the_named_field_and_stores_the_rest_9111_5_2_2_7(mount) {
        let w = World::new();
        let route = w.route(mount, minute(), get(partly_private), get(cached_partly_private));
        let app = w.app(mount, Router::new().route("/p", route), ());
        let first = get_reply(&app, "/p").await;
        // The client whose request produced the field still gets it,
        assert_eq!(first.header("x-user-id"), Some("42"));
        // but it is not stored, so nobody else does.
        let hit = get_reply(&app, "/p").await;
        assert!(hit.is_hit());
        assert_eq!(hit.header("x-user-id"), None);
        assert_eq!(hit.text(), "shared part");
    }

    #[tokio::test]
    async fn authorization_requests_are_not_shared_by_default_9111_3_5(mount) {
        let w = World::new();
        let app = personal_app(mount, &w, ("x-none", "1"));
        let authed = |user: &str| {
            request("GET", "/me")
                .header("x-user", user)
                .header("authorization", format!("Bearer {user}"))
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(send(&app, authed("alice")).await.text(), "hello alice");
        let bob = send(&app, authed("bob")).await;
        assert_eq!(bob.text(), "hello bob");
        assert!(
            bob.cache_status().contains("fwd=bypass"),
            "{}",
            bob.cache_status()
        );
        // Nor does an authorized request read what an anonymous one stored.
        assert_eq!(send(&app, as_user("anon")).await.text(), "hello anon");
        assert_eq!(send(&app, authed("carol")).await.text(), "hello carol");
        assert_eq!(w.calls(), 4);
    }

    #[tokio::test]
    async fn authorization_requests_are_shared_when_the_route_allows_it(mount) {
        let w = World::new();
        let policy = minute().allow_authorization(true);
        let route = w.route(mount, policy, get(public), get(cached_public));
        let app = w.app(mount, Router::new().route("/public", route), w.counter());
        let authed = || {
            request("GET", "/public")
                .header("authorization", "Bearer x")
                .body(Body::empty())
                .unwrap()
        };
        send(&app, authed()).await;
        assert!(send(&app, authed()).await.is_hit());
        assert_eq!(w.calls(), 1);
    }

    #[tokio::test]
    async fn coalesced_requests_never_receive_another_users_private_answer(mount) {
        let w = World::new();
        let route = w.route(mount, minute(), get(slow_personal), get(cached_slow_personal));
        let app = w.app(mount, Router::new().route("/me", route), w.counter());
        let app = Arc::new(app);
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let app = app.clone();
                tokio::spawn(async move {
                    let user = format!("user{i}");
                    let reply = send(&app, as_user(&user)).await;
                    (user, reply)
                })
            })
            .collect();
        for task in tasks {
            let (user, reply) = task.await.unwrap();
            assert_eq!(reply.text(), format!("hello {user}"));
            assert_eq!(
                reply.header("set-cookie"),
                Some(format!("session={user}").as_str())
            );
            assert!(!reply.cache_status().contains("collapsed"));
        }
        assert_eq!(w.calls(), 20);
        assert_eq!(w.cache.stats().stores, 0);
    }
}

/// HTTP/2 needs no Content-Length: the layer sees the body itself.
#[tokio::test]
async fn an_http2_get_body_without_a_length_bypasses_the_layer() {
    let w = World::new();
    let route = w.route(Mount::Layer, minute(), get(echo), get(cached_echo));
    let app = w.app(
        Mount::Layer,
        Router::new().route("/echo", route),
        w.counter(),
    );
    let h2 = |b: &'static str| {
        request("GET", "/echo")
            .version(http::Version::HTTP_2)
            .body(Body::from(b))
            .unwrap()
    };
    assert_eq!(send(&app, h2("alice")).await.text(), "you sent \"alice\"");
    assert_eq!(send(&app, h2("bob")).await.text(), "you sent \"bob\"");
    // An HTTP/2 GET without a body is cached as usual.
    let empty = || {
        request("GET", "/echo")
            .version(http::Version::HTTP_2)
            .body(Body::empty())
            .unwrap()
    };
    send(&app, empty()).await;
    assert!(send(&app, empty()).await.is_hit());
    assert_eq!(w.calls(), 3);
}

fn with_cookie(cookie: &str) -> http::Request<Body> {
    request("GET", "/public")
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn bypass_cookies_sends_requests_with_cookies_past_the_cache() {
    let w = World::new();
    let policy = minute().bypass_cookies(true);
    let app = Router::new()
        .route("/public", get(public).layer(w.cache.layer(policy)))
        .with_state(w.counter());
    let first = send(&app, with_cookie("session=alice")).await;
    assert!(
        first.cache_status().contains("fwd=bypass"),
        "{}",
        first.cache_status()
    );
    // Nothing was stored: the next request without a cookie misses.
    assert!(!get_reply(&app, "/public").await.is_hit());
    assert!(get_reply(&app, "/public").await.is_hit());
    // And a stored entry is not handed to a request with a cookie either.
    assert!(!send(&app, with_cookie("session=bob")).await.is_hit());
    assert_eq!(w.cache.stats().not_stored(NotStored::Cookie), 2);
}

#[tokio::test]
async fn without_bypass_cookies_a_cookie_does_not_change_the_key() {
    let w = World::new();
    let app = Router::new()
        .route("/public", get(public).layer(w.cache.layer(minute())))
        .with_state(w.counter());
    send(&app, with_cookie("session=alice")).await;
    assert!(send(&app, with_cookie("session=bob")).await.is_hit());
}
