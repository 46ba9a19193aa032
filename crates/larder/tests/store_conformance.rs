//! One conformance suite for every store: memory, Redis on one node, and a
//! three-master Redis Cluster. Each test runs against each store.

mod common;
mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::*;
use larder::store::{Lease, Store};
use larder::Policy;

/// A store for one test, and whatever keeps it alive (a Redis process).
type Subject = (Arc<dyn Store>, Box<dyn std::any::Any + Send>);

fn memory() -> Option<Subject> {
    Some((Arc::new(larder::MemoryStore::new(16 << 20)), Box::new(())))
}

#[cfg(feature = "redis")]
async fn redis() -> Option<Subject> {
    let server = support::redis::RedisServer::start()?;
    let store = larder::store::RedisStore::builder(server.url())
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects to the test redis-server");
    Some((Arc::new(store), Box::new(server)))
}

#[cfg(feature = "redis")]
async fn cluster() -> Option<Subject> {
    let cluster = support::redis::RedisCluster::start()?;
    let store = larder::store::RedisStore::builder(cluster.url())
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects to the test cluster");
    Some((Arc::new(store), Box::new(cluster)))
}

async fn get_put_delete(store: Arc<dyn Store>) {
    assert_eq!(store.get("larder:t:{a}").await.unwrap(), None);
    store
        .put(
            "larder:t:{a}",
            Bytes::from_static(b"\x00\xffbinary"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get("larder:t:{a}").await.unwrap(),
        Some(Bytes::from_static(b"\x00\xffbinary"))
    );
    store
        .put(
            "larder:t:{a}",
            Bytes::from_static(b"replaced"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get("larder:t:{a}").await.unwrap(),
        Some(Bytes::from_static(b"replaced"))
    );
    store.delete("larder:t:{a}").await.unwrap();
    assert_eq!(store.get("larder:t:{a}").await.unwrap(), None);
    store.delete("larder:t:{absent}").await.unwrap();
}

async fn get_many_in_order(store: Arc<dyn Store>) {
    store
        .put(
            "larder:t:{m}:2",
            Bytes::from_static(b"two"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let keys = ["larder:t:{m}".to_owned(), "larder:t:{m}:2".to_owned()];
    assert_eq!(
        store.get_many(&keys).await.unwrap(),
        vec![None, Some(Bytes::from_static(b"two"))]
    );
}

async fn ttl_expires(store: Arc<dyn Store>) {
    store
        .put(
            "larder:t:{short}",
            Bytes::from_static(b"v"),
            Duration::from_millis(30),
        )
        .await
        .unwrap();
    store
        .put(
            "larder:t:{long}",
            Bytes::from_static(b"v"),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    // The store's own clock decides; wait for it (bounded), assert no times.
    let mut gone = false;
    for _ in 0..500 {
        if store.get("larder:t:{short}").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "an entry outlived its TTL");
    assert!(store.get("larder:t:{long}").await.unwrap().is_some());
}

async fn counters(store: Arc<dyn Store>) {
    assert_eq!(store.counter("larder:ns:x:gen").await.unwrap(), 0);
    assert_eq!(store.incr("larder:ns:x:gen").await.unwrap(), 1);
    assert_eq!(store.incr("larder:ns:x:gen").await.unwrap(), 2);
    assert_eq!(store.counter("larder:ns:x:gen").await.unwrap(), 2);
}

async fn index_purge(store: Arc<dyn Store>) {
    let ttl = Duration::from_secs(60);
    for k in ["larder:d:{1}", "larder:d:{2}", "larder:d:{3}"] {
        store.put(k, Bytes::from_static(b"v"), ttl).await.unwrap();
    }
    store
        .index_add("larder:tag:{t}", "larder:d:{1}", ttl)
        .await
        .unwrap();
    store
        .index_add("larder:tag:{t}", "larder:d:{2}", ttl)
        .await
        .unwrap();
    store
        .index_add("larder:tag:{t}", "larder:d:{2}", ttl)
        .await
        .unwrap();
    assert_eq!(store.index_purge("larder:tag:{t}").await.unwrap(), 2);
    assert_eq!(store.get("larder:d:{1}").await.unwrap(), None);
    assert_eq!(store.get("larder:d:{2}").await.unwrap(), None);
    assert!(store.get("larder:d:{3}").await.unwrap().is_some());
    assert_eq!(store.index_purge("larder:tag:{t}").await.unwrap(), 0);
}

async fn lease_is_exclusive_until_ended(store: Arc<dyn Store>) {
    let key = "larder:l:{k}:lease";
    let ttl = Duration::from_secs(60);
    let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
    assert_eq!(
        store.lease(key, a.clone(), ttl).await.unwrap(),
        Lease::Granted
    );
    assert_eq!(
        store.lease(key, b.clone(), ttl).await.unwrap(),
        Lease::Held(a.clone())
    );
    // Only the holder ends it (compare and delete).
    assert!(!store.end_lease(key, b.clone(), None).await.unwrap());
    assert_eq!(
        store.lease(key, b.clone(), ttl).await.unwrap(),
        Lease::Held(a.clone())
    );
    assert!(store.end_lease(key, a.clone(), None).await.unwrap());
    assert_eq!(
        store.lease(key, b.clone(), ttl).await.unwrap(),
        Lease::Granted
    );
    assert!(!store.end_lease(key, a, None).await.unwrap());
}

async fn lease_expires_when_its_holder_dies(store: Arc<dyn Store>) {
    let key = "larder:l:{dies}:lease";
    let a = Bytes::from_static(b"a");
    let short = Duration::from_millis(30);
    assert_eq!(store.lease(key, a, short).await.unwrap(), Lease::Granted);
    // Nobody ends it; the store's clock frees it (bounded wait, no timing).
    let b = Bytes::from_static(b"b");
    let mut granted = false;
    for _ in 0..500 {
        if store
            .lease(key, b.clone(), Duration::from_secs(60))
            .await
            .unwrap()
            == Lease::Granted
        {
            granted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(granted, "a lease outlived its TTL");
}

async fn ended_lease_can_leave_a_marker(store: Arc<dyn Store>) {
    let key = "larder:l:{marker}:lease";
    let ttl = Duration::from_secs(60);
    let a = Bytes::from_static(b"a");
    let marker = Bytes::from_static(b"uncacheable");
    store.lease(key, a.clone(), ttl).await.unwrap();
    assert!(store
        .end_lease(key, a, Some((marker.clone(), ttl)))
        .await
        .unwrap());
    assert_eq!(
        store
            .lease(key, Bytes::from_static(b"b"), ttl)
            .await
            .unwrap(),
        Lease::Held(marker)
    );
}

/// A Cache on the store with a counted route, tagged and namespaced.
fn app(store: Arc<dyn Store>) -> (World, Router) {
    let w = World::with(|b| b.shared_store(store));
    let calls = w.counter();
    let items = Policy::ttl(Duration::from_secs(60))
        .namespace("items")
        .tags(["catalog"]);
    let app = Router::new()
        .route(
            "/items",
            get(move || {
                let calls = calls.clone();
                async move { format!("v{}", bump(&calls)) }
            })
            .layer(
                w.cache
                    .layer(items.clone().vary([http::header::ACCEPT_LANGUAGE])),
            ),
        )
        .route(
            "/other",
            get(|| async { "other" }).layer(w.cache.layer(Policy::ttl(Duration::from_secs(60)))),
        );
    (w, app)
}

async fn purge_url(store: Arc<dyn Store>) {
    let (w, app) = app(store);
    let lang = |l: &str| {
        request("GET", "/items")
            .header("accept-language", l)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    send(&app, lang("en")).await;
    send(&app, lang("fr")).await;
    assert!(send(&app, lang("fr")).await.is_hit());
    w.cache
        .purge_url("items", &format!("http://{HOST}/items"))
        .await
        .unwrap();
    assert!(
        !send(&app, lang("fr")).await.is_hit(),
        "every variant is purged"
    );
    assert!(!send(&app, lang("en")).await.is_hit());
}

async fn purge_namespace(store: Arc<dyn Store>) {
    let (w, app) = app(store);
    get_reply(&app, "/items").await;
    get_reply(&app, "/other").await;
    w.cache.purge_namespace("items").await.unwrap();
    assert!(!get_reply(&app, "/items").await.is_hit());
    assert!(
        get_reply(&app, "/other").await.is_hit(),
        "other namespaces stay"
    );
}

async fn purge_tag(store: Arc<dyn Store>) {
    let (w, app) = app(store);
    get_reply(&app, "/items").await;
    get_reply(&app, "/other").await;
    assert_eq!(w.cache.purge_tag("catalog").await.unwrap(), 1);
    assert!(!get_reply(&app, "/items").await.is_hit());
    assert!(
        get_reply(&app, "/other").await.is_hit(),
        "untagged entries stay"
    );
}

async fn corrupt_value_is_a_miss_and_deleted(store: Arc<dyn Store>) {
    let (w, app) = app(store.clone());
    get_reply(&app, "/other").await;
    let uri: http::Uri = "/other".parse().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static(HOST));
    let key = larder::policy::key::primary(
        "larder",
        "default",
        0,
        &http::Method::GET,
        &uri,
        &headers,
        None,
    )
    .unwrap()
    .store_key;
    store
        .put(
            &key,
            Bytes::from_static(b"not larder's"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let r = get_reply(&app, "/other").await;
    assert_eq!(r.text(), "other");
    assert!(!r.is_hit());
    assert_eq!(w.cache.stats().corrupt_entries, 1);
    assert!(get_reply(&app, "/other").await.is_hit());
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let (store, _guard) = memory().unwrap();
                    super::$test(store).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let Some((store, _guard)) = redis().await else { return };
                    super::$test(store).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis_cluster_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let Some((store, _guard)) = cluster().await else { return };
                    super::$test(store).await;
                }
            )*
        }
    };
}

conformance!(
    get_put_delete,
    get_many_in_order,
    ttl_expires,
    counters,
    index_purge,
    purge_url,
    purge_namespace,
    purge_tag,
    corrupt_value_is_a_miss_and_deleted,
    lease_is_exclusive_until_ended,
    lease_expires_when_its_holder_dies,
    ended_lease_can_leave_a_marker,
);
