//! Bodies past the limit stream through; bad stored bytes and failing
//! stores are misses, never errors; hits copy no body bytes. Through the
//! layer and the attribute, but for the engine-level zero-copy check.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::*;
use http::Method;
use http_body::Frame;
use larder::entry::Record;
use larder::policy::key;
use larder::store::Store;
use larder::{Cache, Lookup, NotStored, Policy};

fn minute() -> Policy {
    Policy::ttl(Duration::from_secs(60))
}

/// 20 MiB in 64 KiB chunks, with no length known up front; each chunk's
/// bytes depend on its index so reordering or loss would show.
fn streamed_20_mib() -> Body {
    let chunks = (0..320u32).map(|i| {
        let chunk: Vec<u8> = (0..65_536u32)
            .map(|j| (i.wrapping_mul(31) ^ j) as u8)
            .collect();
        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(chunk)))
    });
    Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
        chunks,
    )))
}

async fn big(State(calls): State<Calls>) -> Body {
    bump(&calls);
    streamed_20_mib()
}

#[larder::cache(ttl = "60s")]
async fn cached_big(calls: State<Calls>) -> Body {
    big(calls).await
}

async fn kibibyte() -> Vec<u8> {
    vec![7u8; 1024]
}

#[larder::cache(ttl = "60s")]
async fn cached_kibibyte() -> Vec<u8> {
    kibibyte().await
}

async fn version(State(calls): State<Calls>) -> String {
    format!("v{}", bump(&calls))
}

#[larder::cache(ttl = "60s")]
async fn cached_version(calls: State<Calls>) -> String {
    version(calls).await
}

async fn posted() -> &'static str {
    "posted"
}

#[larder::cache(ttl = "60s")]
async fn cached_posted() -> &'static str {
    posted().await
}

#[larder::cache(ttl = "60s")]
async fn cached_a() -> &'static str {
    "a"
}

#[larder::cache(ttl = "60s")]
async fn cached_b() -> &'static str {
    "b"
}

/// `GET /items`, counted, and a `POST` beside it.
fn counted(mount: Mount, w: &World) -> Router {
    let route = w.route(
        mount,
        minute(),
        get(version).post(posted),
        get(cached_version).post(cached_posted),
    );
    w.app(mount, Router::new().route("/items", route), w.counter())
}

#[tokio::test]
async fn an_entry_the_format_cannot_hold_is_not_stored() {
    let w = World::new();
    let app = Router::new().route(
        "/many",
        get(|| async {
            let mut response = http::Response::new(Body::from("x"));
            for i in 0..1100 {
                response
                    .headers_mut()
                    .append("x-n", http::HeaderValue::from(i));
            }
            response
        })
        .layer(w.cache.layer(minute())),
    );
    for _ in 0..2 {
        let reply = get_reply(&app, "/many").await;
        assert_eq!(reply.headers.get_all("x-n").iter().count(), 1100);
        assert!(!reply.is_hit());
    }
    assert_eq!(w.cache.stats().not_stored(NotStored::TooLarge), 2);
    assert_eq!(
        w.cache.stats().corrupt_entries,
        0,
        "nothing unreadable was written"
    );
}

fn primary_key(uri: &str) -> String {
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static(HOST));
    key::primary(
        "larder",
        "default",
        0,
        &Method::GET,
        &uri.parse().unwrap(),
        &headers,
        None,
    )
    .unwrap()
    .store_key
}

#[tokio::test]
async fn a_hit_copies_no_body_bytes() {
    let store = Arc::new(larder::MemoryStore::new(1 << 20));
    let cache = Cache::builder().shared_store(store.clone()).build();
    let policy = Arc::new(minute());
    let request = || {
        let (parts, ()) = http::Request::get("/k")
            .header("host", HOST)
            .body(())
            .unwrap()
            .into_parts();
        parts
    };
    let Lookup::Forward(fill) = cache.lookup(&request(), &policy).await else {
        panic!("cold cache must forward")
    };
    let body = http_body_util::Full::new(Bytes::from(vec![42u8; 1024]));
    fill.complete(http::Response::new(body)).await;

    let stored = store.get(&primary_key("/k")).await.unwrap().unwrap();
    let Record::Entry(_) = Record::decode(stored.clone(), usize::MAX).unwrap() else {
        panic!("expected an entry")
    };
    let Lookup::Respond(hit) = cache.lookup(&request(), &policy).await else {
        panic!("warm cache must answer")
    };
    assert_eq!(hit.body().len(), 1024);
    // The body handed out points into the bytes the store holds.
    assert!(
        stored.as_ptr_range().contains(&hit.body().as_ptr()),
        "the hit copied the body"
    );
}

both_mounts! {
    #[tokio::test]
    async fn a_20_mib_streamed_body_passes_through_intact_and_uncached(mount) {
        let w = World::with(|b| b.max_body_bytes(8 << 20).cache_status_detail(true));
        let route = w.route(mount, minute(), get(big), get(cached_big));
        let app = w.app(mount, Router::new().route("/big", route), w.counter());
        let expected = http_body_util::BodyExt::collect(streamed_20_mib())
            .await
            .unwrap()
            .to_bytes();
        for round in 1..=2 {
            let reply = get_reply(&app, "/big").await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.body.len(), 20 << 20);
            assert!(reply.body == expected, "body differs in round {round}");
            assert!(
                reply.cache_status().contains("detail=too-large"),
                "{}",
                reply.cache_status()
            );
        }
        assert_eq!(w.calls(), 2);
        assert_eq!(w.cache.stats().not_stored(NotStored::TooLarge), 2);
        assert_eq!(w.cache.stats().stores, 0);
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_stored(mount) {
        let w = World::with(|b| b.max_body_bytes(1024));
        let route = w.route(mount, minute(), get(kibibyte), get(cached_kibibyte));
        let app = w.app(mount, Router::new().route("/k", route), ());
        get_reply(&app, "/k").await;
        let hit = get_reply(&app, "/k").await;
        assert!(hit.is_hit());
        assert_eq!(hit.body.len(), 1024);
    }

    #[tokio::test]
    async fn garbage_under_an_entry_key_is_a_miss_and_is_deleted(mount) {
        let w = World::new();
        let app = counted(mount, &w);
        get_reply(&app, "/items").await;
        let key = primary_key("/items");
        assert!(
            w.store.get(&key).await.unwrap().is_some(),
            "the test computes the engine's key"
        );
        let garbage: [&[u8]; 4] = [
            b"",
            b"\xff\xfe garbage",
            b"LRDR\x02\x01\xff\xff\xff\xff",
            b"LRDR\x09",
        ];
        for (i, bytes) in garbage.into_iter().enumerate() {
            w.store
                .put(&key, Bytes::from_static(bytes), Duration::from_secs(60))
                .await
                .unwrap();
            let reply = get_reply(&app, "/items").await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.text(), format!("v{}", i + 2));
            assert!(!reply.is_hit());
            // The miss stored a good entry again in its place.
            assert!(get_reply(&app, "/items").await.is_hit());
        }
        assert_eq!(w.cache.stats().corrupt_entries, 4);
    }

    #[tokio::test]
    async fn an_entry_of_another_uri_under_this_key_is_not_served(mount) {
        let w = World::new();
        let router = match mount {
            Mount::Layer => Router::new()
                .route("/a", get(|| async { "a" }))
                .route("/b", get(|| async { "b" }))
                .layer(w.cache.layer(minute())),
            Mount::Attribute => Router::new()
                .route("/a", get(cached_a))
                .route("/b", get(cached_b)),
        };
        let app = w.app(mount, router, ());
        get_reply(&app, "/a").await;
        // Move /a's entry under /b's key: a hash collision, as far as the
        // engine can tell. It must compare the full key material.
        let a = w.store.get(&primary_key("/a")).await.unwrap().unwrap();
        w.store
            .put(&primary_key("/b"), a, Duration::from_secs(60))
            .await
            .unwrap();
        let b = get_reply(&app, "/b").await;
        assert_eq!(b.text(), "b");
        assert!(!b.is_hit());
    }

    #[tokio::test]
    async fn a_failing_store_fails_open(mount) {
        let w = World::with(|b| b.store(DeadStore));
        let app = counted(mount, &w);
        for i in 1..=3 {
            let reply = get_reply(&app, "/items").await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.text(), format!("v{i}"));
            assert!(
                !reply.cache_status().contains("stored"),
                "{}",
                reply.cache_status()
            );
        }
        let post = send(&app, request("POST", "/items").body(Body::empty()).unwrap()).await;
        assert_eq!(post.text(), "posted");
        // The namespace generation cannot be read, so no request touches
        // the store any further: one failed read each (the GETs' lookups,
        // the POST's invalidation). The GETs are misses, coalesced in
        // process; the POST is forwarded as ever.
        assert_eq!(w.cache.stats().store_errors, 4);
        assert_eq!(w.cache.stats().misses, 3);
        assert_eq!(w.cache.stats().bypasses, 1);
        assert_eq!(w.cache.stats().stores, 0);
    }
}

/// A memory store that counts read round trips (`get` and `get_many` calls).
fn counting_store() -> (ObservedStore, Arc<std::sync::atomic::AtomicUsize>) {
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = reads.clone();
    let store = ObservedStore::new(Arc::new(move || {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {})
    }));
    (store, reads)
}

/// A handler whose answer varies on Accept-Language, which the route does
/// not declare: only the response's `Vary` says so.
fn varying_app(cache: &Cache) -> Router {
    Router::new().route(
        "/v",
        get(|headers: http::HeaderMap| async move {
            let lang = headers
                .get("accept-language")
                .map(|v| v.to_str().unwrap().to_owned());
            ([("vary", "accept-language")], lang.unwrap_or_default())
        })
        .layer(cache.layer(minute())),
    )
}

#[tokio::test]
async fn a_hit_on_a_response_that_varies_costs_one_round_trip() {
    let (store, reads) = counting_store();
    let reads = move || reads.load(std::sync::atomic::Ordering::SeqCst);
    let fr = || {
        request("GET", "/v")
            .header("accept-language", "fr")
            .body(Body::empty())
            .unwrap()
    };
    // Store round trips are what is counted: no hot tier in front.
    let first = Cache::builder()
        .store(store.clone())
        .hot_tier_bytes(0)
        .build();
    let app = varying_app(&first);
    send(&app, fr()).await; // the miss stores the index and the variant
    let before = reads();
    let hit = send(&app, fr()).await;
    assert!(hit.is_hit());
    assert_eq!(hit.text(), "fr");
    assert_eq!(reads() - before, 1, "index and variant in one read");

    // Another instance on the same store learns the names on its first hit.
    let second = Cache::builder()
        .store(store.clone())
        .hot_tier_bytes(0)
        .build();
    let other = varying_app(&second);
    let before = reads();
    assert!(send(&other, fr()).await.is_hit());
    assert_eq!(reads() - before, 2, "no memo yet: index, then variant");
    let before = reads();
    assert!(send(&other, fr()).await.is_hit());
    assert_eq!(reads() - before, 1);
}
