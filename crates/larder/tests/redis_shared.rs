//! Several application instances sharing one Redis, and Redis failing
//! under them: requests must keep succeeding through the handler.
#![cfg(feature = "redis")]

mod common;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use common::*;
use larder::clock::ManualClock;
use larder::store::RedisStore;
use larder::{Cache, Policy};
use support::redis::RedisServer;

/// One "app instance": its own Cache (own in-process state, own stats) on
/// the shared store, with a handler counting into a counter all instances
/// share, as one database would.
fn instance(
    store: RedisStore,
    clock: &ManualClock,
    db_calls: &Arc<AtomicUsize>,
) -> (Cache, Router) {
    let cache = Cache::builder().store(store).clock(clock.clone()).build();
    let calls = db_calls.clone();
    let app = Router::new().route(
        "/items",
        get(move || {
            let calls = calls.clone();
            async move { format!("v{}", calls.fetch_add(1, Ordering::SeqCst) + 1) }
        })
        .layer(cache.layer(Policy::ttl(Duration::from_secs(60)).namespace("items"))),
    );
    (cache, app)
}

async fn store(server: &RedisServer, timeout: Duration) -> RedisStore {
    RedisStore::builder(server.url())
        .command_timeout(timeout)
        .circuit_breaker(3, Duration::from_millis(200))
        .connect()
        .await
        .expect("connects to the test redis-server")
}

#[tokio::test]
async fn a_miss_on_one_instance_is_a_hit_on_the_other() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new(epoch());
    let db = Arc::new(AtomicUsize::new(0));
    let (_a, app_a) = instance(store(&server, Duration::from_secs(2)).await, &clock, &db);
    let (b, app_b) = instance(store(&server, Duration::from_secs(2)).await, &clock, &db);
    assert!(!get_reply(&app_a, "/items").await.is_hit());
    let on_b = get_reply(&app_b, "/items").await;
    assert!(on_b.is_hit(), "{}", on_b.cache_status());
    assert_eq!(on_b.text(), "v1");
    assert_eq!(db.load(Ordering::SeqCst), 1);
    assert_eq!(b.stats().hits, 1);
}

#[tokio::test]
async fn a_namespace_purge_on_one_instance_is_seen_by_the_other() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new(epoch());
    let db = Arc::new(AtomicUsize::new(0));
    let (a, app_a) = instance(store(&server, Duration::from_secs(2)).await, &clock, &db);
    let (_b, app_b) = instance(store(&server, Duration::from_secs(2)).await, &clock, &db);
    get_reply(&app_a, "/items").await;
    assert!(get_reply(&app_b, "/items").await.is_hit());
    a.purge_namespace("items").await.unwrap();
    // A sees its own purge at once.
    assert!(!get_reply(&app_a, "/items").await.is_hit());
    // B re-reads the generation once its refresh interval has passed, beside
    // a request (which may still get the old entry), and then uses it.
    clock.advance(Duration::from_secs(1));
    let mut seen = false;
    for _ in 0..100 {
        let on_b = get_reply(&app_b, "/items").await;
        assert!(on_b.is_hit());
        if on_b.text() == "v2" {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen, "B never saw A's purge");
    assert_eq!(
        db.load(Ordering::SeqCst),
        2,
        "B read the entry A stored after the purge"
    );
}

/// Sends a request and returns the reply and how long it took. The bound
/// asserted on is generous (a multiple of the configured timeout), as a
/// failing Redis must cost a request at most about one timeout.
async fn timed(app: &Router) -> (Reply, Duration) {
    let start = Instant::now();
    let reply = get_reply(app, "/items").await;
    (reply, start.elapsed())
}

#[tokio::test]
async fn a_paused_then_killed_then_restarted_redis_never_fails_a_request() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    if server.port == 0 {
        return; // an external Redis cannot be paused by this test
    }
    let clock = ManualClock::new(epoch());
    let db = Arc::new(AtomicUsize::new(0));
    let timeout = Duration::from_millis(100);
    let redis = store(&server, timeout).await;
    let (cache, app) = instance(redis.clone(), &clock, &db);
    get_reply(&app, "/items").await;
    assert!(get_reply(&app, "/items").await.is_hit());

    // Paused: connections hang. Every request still succeeds, within a
    // generous bound of the command timeout (read + write + slack).
    server.pause();
    let bound = timeout * 10;
    for _ in 0..8 {
        let (reply, took) = timed(&app).await;
        assert_eq!(reply.status, 200);
        assert!(reply.text().starts_with('v'));
        assert!(took < bound, "a request waited {took:?} on a paused Redis");
    }
    assert!(cache.stats().store_errors > 0);
    assert!(
        redis.is_open(),
        "the breaker opens after consecutive failures"
    );
    assert!(redis.skipped() > 0, "an open breaker sends nothing");

    // Killed: connection refused. Still served.
    server.resume();
    server.kill();
    for _ in 0..5 {
        let (reply, took) = timed(&app).await;
        assert_eq!(reply.status, 200);
        assert!(took < bound, "a request waited {took:?} on a dead Redis");
    }

    // Restarted (empty): hits resume without restarting the app.
    server.restart();
    let mut resumed = false;
    for _ in 0..200 {
        let reply = get_reply(&app, "/items").await;
        assert_eq!(reply.status, 200);
        if reply.is_hit() {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(resumed, "hits did not resume after Redis came back");
}

#[tokio::test]
async fn entries_over_the_value_limit_are_not_written() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let redis = RedisStore::builder(server.url())
        .max_value_bytes(512)
        .connect()
        .await
        .unwrap();
    let cache = Cache::builder().store(redis).build();
    let app = Router::new()
        .route("/big", get(|| async { vec![b'x'; 4096] }))
        .layer(cache.layer(Policy::ttl(Duration::from_secs(60))));
    for _ in 0..2 {
        let reply = get_reply(&app, "/big").await;
        assert_eq!(reply.body.len(), 4096);
        assert!(!reply.is_hit());
    }
    assert_eq!(cache.stats().not_stored(larder::NotStored::TooLarge), 2);
    assert_eq!(
        cache.stats().store_errors,
        0,
        "too large is a decision, not an error"
    );
}

#[tokio::test]
async fn an_app_starts_and_serves_while_redis_is_down() {
    let port = support::redis::free_port();
    // Nothing listens there: build() does not connect, requests are misses.
    let redis = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let cache = Cache::builder().store(redis).build();
    let app = Router::new()
        .route("/items", get(|| async { "ok" }))
        .layer(cache.layer(Policy::ttl(Duration::from_secs(60))));
    for _ in 0..3 {
        let reply = get_reply(&app, "/items").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), "ok");
    }
}

#[cfg(feature = "redis-tls")]
#[tokio::test]
async fn a_rediss_url_speaks_tls() {
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    let redis = RedisStore::builder(server.url())
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects over TLS");
    let cache = Cache::builder().store(redis).build();
    let app = Router::new()
        .route("/items", get(|| async { "over tls" }))
        .layer(cache.layer(Policy::ttl(Duration::from_secs(60))));
    get_reply(&app, "/items").await;
    let hit = get_reply(&app, "/items").await;
    assert!(hit.is_hit(), "{}", hit.cache_status());
    assert_eq!(hit.text(), "over tls");
}
