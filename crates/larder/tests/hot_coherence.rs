//! The hot tier kept coherent: two instances on one store, and a write,
//! purge or lost connection on one never leaves the other serving its old
//! copy. On the memory store (clones shared by two caches), on Redis with
//! client tracking, and on a Redis Cluster.
//!
//! Waits are bounded (`until`), never timed: with Redis the other
//! instance learns of a change from a push, and the tests wait for that
//! push to have been seen before they ask.
#![cfg(feature = "redis")]

mod common;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::*;
use larder::store::Store;
// At the crate root, beside MemoryStore.
use larder::{Cache, MemoryStore, Policy, RedisStore};
use support::redis::{RedisCluster, RedisServer};

/// One application instance: its own cache (and hot tier) on the shared
/// store; its handler counts into the counter all instances share.
struct Instance {
    cache: Cache,
    app: Router,
}

fn instance(store: Arc<dyn Store>, db: &Arc<AtomicUsize>) -> Instance {
    let cache = Cache::builder().shared_store(store).build();
    let calls = db.clone();
    let policy = Policy::ttl(Duration::from_secs(600))
        .namespace("items")
        .tags(["catalog"]);
    let app = Router::new().route(
        "/items",
        get(move || {
            let calls = calls.clone();
            async move { format!("v{}", calls.fetch_add(1, Ordering::SeqCst) + 1) }
        })
        .post(|| async { "created" })
        .layer(cache.layer(policy)),
    );
    Instance { cache, app }
}

impl Instance {
    async fn get(&self) -> Reply {
        get_reply(&self.app, "/items").await
    }

    fn hot_hits(&self) -> u64 {
        self.cache.stats().hot_hits
    }

    /// Reads until the hot tier serves the URI, and returns what it serves.
    async fn warm(&self) -> String {
        for _ in 0..3 {
            let before = self.hot_hits();
            let reply = self.get().await;
            if self.hot_hits() > before {
                return reply.text().to_owned();
            }
        }
        panic!("the hot tier never served /items: {:?}", self.cache.stats());
    }

    /// Waits until the store has reported something to this instance
    /// since `before` (a count from `hot_tier_reports`).
    async fn saw_report_since(&self, before: u64) {
        until("the store's report of the change", || {
            self.cache.hot_tier_reports() > before
        })
        .await;
    }
}

/// What each store under test gives: two instances' stores, and whether
/// changes reach the other instance asynchronously (Redis pushes).
struct Shared {
    a: Arc<dyn Store>,
    b: Arc<dyn Store>,
}

fn memory() -> Shared {
    let store = MemoryStore::new(64 << 20);
    Shared {
        a: Arc::new(store.clone()),
        b: Arc::new(store),
    }
}

async fn redis_store(url: String) -> Arc<dyn Store> {
    Arc::new(
        RedisStore::builder(url)
            .command_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connects to the test redis"),
    )
}

async fn two(shared: Shared) -> (Instance, Instance, Arc<AtomicUsize>) {
    let db = Arc::new(AtomicUsize::new(0));
    let a = instance(shared.a, &db);
    let b = instance(shared.b, &db);
    until("both instances watch the store", || {
        a.cache.hot_tier_watched() && b.cache.hot_tier_watched()
    })
    .await;
    (a, b, db)
}

/// The scenarios, run on each store.
async fn a_write_on_one_instance_retires_the_others_copy(shared: Shared) {
    let (a, b, db) = two(shared).await;
    assert_eq!(a.get().await.text(), "v1");
    assert_eq!(b.warm().await, "v1");
    let reports = b.cache.hot_tier_reports();
    let post = send(
        &a.app,
        request("POST", "/items").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(post.text(), "created");
    b.saw_report_since(reports).await;
    let hot = b.hot_hits();
    let after = b.get().await;
    assert_eq!(b.hot_hits(), hot, "served from B's hot tier after A's POST");
    assert_eq!(after.text(), "v2", "{}", after.cache_status());
    assert_eq!(db.load(Ordering::SeqCst), 2);
}

async fn a_url_purge_on_one_instance_retires_the_others_copy(shared: Shared) {
    let (a, b, _db) = two(shared).await;
    a.get().await;
    assert_eq!(b.warm().await, "v1");
    let reports = b.cache.hot_tier_reports();
    let purged = a
        .cache
        .purge_url("items", &format!("http://{HOST}/items"))
        .await
        .unwrap();
    assert!(purged);
    b.saw_report_since(reports).await;
    let hot = b.hot_hits();
    assert_eq!(b.get().await.text(), "v2");
    assert_eq!(b.hot_hits(), hot);
}

async fn a_namespace_purge_on_one_instance_is_seen_at_once_by_the_other(shared: Shared) {
    let (a, b, _db) = two(shared).await;
    a.get().await;
    assert_eq!(b.warm().await, "v1");
    let reports = b.cache.hot_tier_reports();
    a.cache.purge_namespace("items").await.unwrap();
    b.saw_report_since(reports).await;
    // No clock moves: the purge is not seen "within namespace_refresh"
    // but on the next request.
    let hot = b.hot_hits();
    assert_eq!(b.get().await.text(), "v2");
    assert_eq!(b.hot_hits(), hot);
}

async fn a_tag_purge_on_one_instance_retires_the_others_copy(shared: Shared) {
    let (a, b, _db) = two(shared).await;
    a.get().await;
    assert_eq!(b.warm().await, "v1");
    // A's own copy too: its purge must retire it without a report.
    assert_eq!(a.warm().await, "v1");
    let reports = b.cache.hot_tier_reports();
    assert_eq!(a.cache.purge_tag("catalog").await.unwrap(), 1);
    b.saw_report_since(reports).await;
    let hot = b.hot_hits();
    assert_eq!(b.get().await.text(), "v2");
    assert_eq!(b.hot_hits(), hot);
    let hot = a.hot_hits();
    assert_eq!(a.get().await.text(), "v2");
    assert_eq!(a.hot_hits(), hot);
}

async fn own_writes_retire_own_copies(shared: Shared) {
    let (a, _b, _db) = two(shared).await;
    a.get().await;
    assert_eq!(a.warm().await, "v1");
    send(
        &a.app,
        request("POST", "/items").body(Body::empty()).unwrap(),
    )
    .await;
    let hot = a.hot_hits();
    assert_eq!(a.get().await.text(), "v2");
    assert_eq!(a.hot_hits(), hot);
}

mod memory_store {
    use super::*;

    #[tokio::test]
    async fn a_write_on_one_instance_retires_the_others_copy() {
        super::a_write_on_one_instance_retires_the_others_copy(memory()).await;
    }

    #[tokio::test]
    async fn a_url_purge_on_one_instance_retires_the_others_copy() {
        super::a_url_purge_on_one_instance_retires_the_others_copy(memory()).await;
    }

    #[tokio::test]
    async fn a_namespace_purge_on_one_instance_is_seen_at_once_by_the_other() {
        super::a_namespace_purge_on_one_instance_is_seen_at_once_by_the_other(memory()).await;
    }

    #[tokio::test]
    async fn a_tag_purge_on_one_instance_retires_the_others_copy() {
        super::a_tag_purge_on_one_instance_retires_the_others_copy(memory()).await;
    }

    #[tokio::test]
    async fn own_writes_retire_own_copies() {
        super::own_writes_retire_own_copies(memory()).await;
    }
}

macro_rules! on_redis {
    ($module:ident, $start:expr) => {
        mod $module {
            use super::*;

            async fn shared() -> Option<(Shared, Box<dyn std::any::Any + Send>)> {
                let (url, guard): (String, Box<dyn std::any::Any + Send>) = $start?;
                let shared = Shared {
                    a: redis_store(url.clone()).await,
                    b: redis_store(url).await,
                };
                Some((shared, guard))
            }

            #[tokio::test]
            async fn a_write_on_one_instance_retires_the_others_copy() {
                let Some((shared, _server)) = shared().await else {
                    return;
                };
                super::a_write_on_one_instance_retires_the_others_copy(shared).await;
            }

            #[tokio::test]
            async fn a_url_purge_on_one_instance_retires_the_others_copy() {
                let Some((shared, _server)) = shared().await else {
                    return;
                };
                super::a_url_purge_on_one_instance_retires_the_others_copy(shared).await;
            }

            #[tokio::test]
            async fn a_namespace_purge_on_one_instance_is_seen_at_once_by_the_other() {
                let Some((shared, _server)) = shared().await else {
                    return;
                };
                super::a_namespace_purge_on_one_instance_is_seen_at_once_by_the_other(shared).await;
            }

            #[tokio::test]
            async fn a_tag_purge_on_one_instance_retires_the_others_copy() {
                let Some((shared, _server)) = shared().await else {
                    return;
                };
                super::a_tag_purge_on_one_instance_retires_the_others_copy(shared).await;
            }

            #[tokio::test]
            async fn own_writes_retire_own_copies() {
                let Some((shared, _server)) = shared().await else {
                    return;
                };
                super::own_writes_retire_own_copies(shared).await;
            }
        }
    };
}

on_redis!(
    redis,
    RedisServer::start().map(|s| (s.url(), Box::new(s) as Box<dyn std::any::Any + Send>))
);
on_redis!(
    redis_cluster,
    RedisCluster::start().map(|c| (c.url(), Box::new(c) as Box<dyn std::any::Any + Send>))
);

/// The tracking connection killed: B must serve nothing it copied before
/// (A writes meanwhile, and B cannot be told), and once tracking is back
/// it serves copies again, and is told of changes again.
#[tokio::test]
async fn a_killed_tracking_connection_leaves_nothing_stale_in_the_hot_tier() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let shared = Shared {
        a: redis_store(server.url()).await,
        b: redis_store(server.url()).await,
    };
    let (a, b, _db) = two(shared).await;
    a.get().await;
    assert_eq!(b.warm().await, "v1");
    let reports = b.cache.hot_tier_reports();
    // The tracking connections (A's and B's: they name themselves), not
    // the ones the stores read and write with, so A's write lands.
    let list = server.cli(&["CLIENT", "LIST"]).expect("CLIENT LIST");
    let tracking: Vec<&str> = list
        .lines()
        .filter(|l| l.contains("name=larder-watch"))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .collect();
    assert!(!tracking.is_empty(), "no tracking connection in {list}");
    for id in tracking {
        server.cli(&["CLIENT", "KILL", "ID", id]);
    }
    b.saw_report_since(reports).await;
    // A changes the entry while B may not be told.
    send(
        &a.app,
        request("POST", "/items").body(Body::empty()).unwrap(),
    )
    .await;
    let hot = b.hot_hits();
    let reply = b.get().await;
    assert_eq!(reply.text(), "v2", "{}", reply.cache_status());
    assert_eq!(b.hot_hits(), hot, "a copy from before the loss was served");
    until("B's tracking is back", || b.cache.hot_tier_watched()).await;
    assert_eq!(b.warm().await, "v2");
    // And changes are reported again.
    let reports = b.cache.hot_tier_reports();
    send(
        &a.app,
        request("POST", "/items").body(Body::empty()).unwrap(),
    )
    .await;
    b.saw_report_since(reports).await;
    let hot = b.hot_hits();
    assert_eq!(b.get().await.text(), "v3");
    assert_eq!(b.hot_hits(), hot);
}

/// Without reports (the hot tier's copies bounded by `l1_ttl`), a cache
/// on a store that cannot watch still serves hot hits, and says so.
#[tokio::test]
async fn a_store_that_cannot_watch_bounds_copies_by_l1_ttl() {
    let clock = larder::clock::ManualClock::new(epoch());
    let cache = Cache::builder()
        .store(ObservedStore::new(Arc::new(|| Box::pin(async {}))))
        .clock(clock.clone())
        .l1_ttl(Duration::from_secs(2))
        .build();
    assert!(!cache.hot_tier_watched());
    let db = Arc::new(AtomicUsize::new(0));
    let calls = db.clone();
    let app: Router = Router::new().route(
        "/items",
        get(move || {
            let calls = calls.clone();
            async move { format!("v{}", calls.fetch_add(1, Ordering::SeqCst) + 1) }
        })
        .layer(cache.layer(Policy::ttl(Duration::from_secs(600)))),
    );
    get_reply(&app, "/items").await;
    get_reply(&app, "/items").await; // the store read that makes a copy
    get_reply(&app, "/items").await;
    assert_eq!(cache.stats().hot_hits, 1);
    clock.advance(Duration::from_secs(3));
    // Past l1_ttl the copy is not served: the store is read again (and
    // the entry, still fresh, copied again).
    get_reply(&app, "/items").await;
    assert_eq!(cache.stats().hot_hits, 1);
    assert_eq!(cache.stats().hits, 3);
    // The namespace's generation is read again beside the requests (no
    // reports, so it is polled); once it is, copies serve again.
    for _ in 0..100 {
        if cache.stats().hot_hits > 1 {
            break;
        }
        tokio::task::yield_now().await;
        get_reply(&app, "/items").await;
    }
    assert_eq!(cache.stats().hot_hits, 2, "{:?}", cache.stats());
    assert_eq!(db.load(Ordering::SeqCst), 1);
}

/// What a client shapes never reaches another's hot copy: with the copy
/// of victim.example's page warm, a Host that names victim.example only
/// after an `@` or a delimiter, or a host outside `allowed_hosts`, goes
/// the long way (a bypass) and is never answered from the copy.
#[tokio::test]
async fn a_host_a_client_shapes_never_reaches_a_warm_copy() {
    let db = Arc::new(AtomicUsize::new(0));
    let cache = Cache::builder().allowed_hosts(["victim.example"]).build();
    let calls = db.clone();
    let app: Router = Router::new().route(
        "/items",
        get(move || {
            let calls = calls.clone();
            async move { format!("v{}", calls.fetch_add(1, Ordering::SeqCst) + 1) }
        })
        .layer(cache.layer(Policy::ttl(Duration::from_secs(600)))),
    );
    let with_host = |host: &str| {
        http::Request::get("/items")
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    };
    send(&app, with_host("victim.example")).await;
    send(&app, with_host("victim.example")).await; // the read that copies
    let hot = cache.stats().hot_hits;
    assert!(send(&app, with_host("victim.example")).await.is_hit());
    assert_eq!(cache.stats().hot_hits, hot + 1, "the copy is warm");
    for shaped in [
        "evil.example/?@victim.example",
        "evil.example#@victim.example",
        "evil.example@victim.example",
        "other.example",
        "VICTIM.example:8080",
    ] {
        // Twice: the hot tier keys a Host as sent, and the first must
        // not have left a copy the second finds.
        for _ in 0..2 {
            let hot = cache.stats().hot_hits;
            let reply = send(&app, with_host(shaped)).await;
            assert!(!reply.is_hit(), "{shaped}: {}", reply.cache_status());
            assert_eq!(
                cache.stats().hot_hits,
                hot,
                "{shaped} was answered from the copy"
            );
        }
    }
    // An absolute-form target naming the warm host, with a Host naming
    // another: the two disagree, so it is refused every time, and the
    // target's authority alone never reaches the copy.
    for _ in 0..2 {
        let conflicting = http::Request::get("http://victim.example/items")
            .header("host", "evil.example")
            .body(Body::empty())
            .unwrap();
        let hot = cache.stats().hot_hits;
        assert!(!send(&app, conflicting).await.is_hit());
        assert_eq!(
            cache.stats().hot_hits,
            hot,
            "a conflicting Host hit the copy"
        );
    }
    // Two Host lines are refused however often they come.
    for _ in 0..2 {
        let mut twice = with_host("victim.example");
        twice
            .headers_mut()
            .append("host", http::HeaderValue::from_static("victim.example"));
        let hot = cache.stats().hot_hits;
        assert!(!send(&app, twice).await.is_hit());
        assert_eq!(cache.stats().hot_hits, hot, "two Host lines hit the copy");
    }
    // Another spelling of the same host is the same entry: the store's
    // hit, which makes that spelling's own copy, then the copy's.
    assert!(send(&app, with_host("Victim.Example:80")).await.is_hit());
    let hot = cache.stats().hot_hits;
    assert!(send(&app, with_host("Victim.Example:80")).await.is_hit());
    assert_eq!(cache.stats().hot_hits, hot + 1);
}

/// A hot hit reuses the header fields it made within one second of age,
/// but only for the route form they were made for: two routes on one URI
/// (one cache, one namespace, so one copy) each get their own
/// `Cache-Control` toward clients, and a new second gets a new `Age`.
#[tokio::test]
async fn hot_hits_reuse_a_seconds_fields_only_for_the_same_route_form() {
    let clock = larder::clock::ManualClock::new(epoch());
    let cache = Cache::builder().clock(clock.clone()).build();
    let route = |policy: Policy| -> Router {
        Router::new().route("/items", get(|| async { "v1" }).layer(cache.layer(policy)))
    };
    let remaining = route(Policy::ttl(Duration::from_secs(600)));
    let fixed = route(Policy::ttl(Duration::from_secs(600)).client_cache_control(
        larder::ClientCacheControl::Fixed(http::HeaderValue::from_static("no-cache")),
    ));
    get_reply(&remaining, "/items").await;
    get_reply(&remaining, "/items").await; // the read that copies
    clock.advance(Duration::from_secs(5));
    let hot = cache.stats().hot_hits;
    for _ in 0..2 {
        let a = get_reply(&remaining, "/items").await;
        assert_eq!(a.header("cache-control"), Some("max-age=595"));
        assert_eq!(a.header("age"), Some("5"));
        let b = get_reply(&fixed, "/items").await;
        assert_eq!(b.header("cache-control"), Some("no-cache"));
        assert_eq!(b.header("age"), Some("5"));
    }
    clock.advance(Duration::from_secs(1));
    let a = get_reply(&remaining, "/items").await;
    assert_eq!(a.header("age"), Some("6"));
    assert_eq!(a.header("cache-control"), Some("max-age=594"));
    assert!(a.cache_status().contains("ttl=594"), "{}", a.cache_status());
    assert_eq!(cache.stats().hot_hits, hot + 5, "all from the hot tier");
}
