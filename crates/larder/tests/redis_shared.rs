//! Several application instances sharing one Redis, and Redis failing
//! under them: requests must keep succeeding through the handler.
#![cfg(feature = "redis")]

mod common;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::*;
use http::StatusCode;
use larder::clock::ManualClock;
use larder::store::RedisStore;
use larder::{Cache, Policy};
use support::redis::RedisServer;
use tokio::sync::Semaphore;

/// One "app instance": its own Cache (own in-process state, own stats) on
/// the shared store, with a handler counting into a counter all instances
/// share, as one database would.
fn instance(
    store: RedisStore,
    clock: &ManualClock,
    db_calls: &Arc<AtomicUsize>,
) -> (Cache, Router) {
    instance_with(store, clock, db_calls, |b| b)
}

/// [`instance`], with more said to its cache's builder.
fn instance_with(
    store: RedisStore,
    clock: &ManualClock,
    db_calls: &Arc<AtomicUsize>,
    configure: impl FnOnce(larder::CacheBuilder) -> larder::CacheBuilder,
) -> (Cache, Router) {
    let cache = configure(Cache::builder().store(store).clock(clock.clone())).build();
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
    // Every request must reach Redis: no hot tier to answer from meanwhile.
    let (cache, app) = instance_with(redis.clone(), &clock, &db, |b| b.hot_tier_bytes(0));
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

/// A Redis store on a port nothing listens on: every command fails, and
/// no namespace generation is ever read.
fn dead_redis() -> RedisStore {
    let port = support::redis::free_port();
    RedisStore::builder(format!("redis://127.0.0.1:{port}"))
        .command_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

async fn item_version(State(calls): State<Calls>) -> String {
    format!("v{}", bump(&calls))
}

#[larder::cache(ttl = "60s", namespace = "items")]
async fn cached_item_version(calls: State<Calls>) -> String {
    item_version(calls).await
}

async fn create_item() -> impl IntoResponse {
    (StatusCode::CREATED, "created")
}

#[larder::cache(namespace = "items")]
async fn cached_create_item() -> impl IntoResponse {
    create_item().await
}

/// `GET /items` cached in namespace `items`, `POST /items` writing it.
fn items_app(mount: Mount, w: &World) -> Router {
    let policy = Policy::ttl(Duration::from_secs(60)).namespace("items");
    let plain = get(item_version).post(create_item);
    let attributed = get(cached_item_version).post(cached_create_item);
    let route = w.route(mount, policy, plain, attributed);
    w.app(mount, Router::new().route("/items", route), w.counter())
}

fn post_items() -> http::Request<Body> {
    request("POST", "/items").body(Body::empty()).unwrap()
}

#[derive(Clone)]
struct Gated {
    calls: Calls,
    gate: Arc<Semaphore>,
}

/// Held at the gate; answers with a cookie too when `cookie` is set.
async fn gated(calls: &Calls, gate: &Semaphore, cookie: bool) -> axum::response::Response {
    let n = bump(calls);
    let _permit = gate.acquire().await.unwrap();
    let body = format!("computed {n}");
    match cookie {
        true => ([("set-cookie", format!("n={n}"))], body).into_response(),
        false => body.into_response(),
    }
}

async fn slow(State(g): State<Gated>) -> axum::response::Response {
    gated(&g.calls, &g.gate, false).await
}

#[larder::cache(ttl = "60s")]
async fn cached_slow(g: State<Gated>) -> axum::response::Response {
    slow(g).await
}

async fn slow_with_cookie(State(g): State<Gated>) -> axum::response::Response {
    gated(&g.calls, &g.gate, true).await
}

#[larder::cache(ttl = "60s")]
async fn cached_slow_with_cookie(g: State<Gated>) -> axum::response::Response {
    slow_with_cookie(g).await
}

fn gated_app(mount: Mount, w: &World, gate: Arc<Semaphore>, cookie: bool) -> Router {
    let policy = Policy::ttl(Duration::from_secs(60));
    let route = match cookie {
        false => w.route(mount, policy, get(slow), get(cached_slow)),
        true => w.route(
            mount,
            policy,
            get(slow_with_cookie),
            get(cached_slow_with_cookie),
        ),
    };
    let state = Gated {
        calls: w.counter(),
        gate,
    };
    w.app(mount, Router::new().route("/slow", route), state)
}

/// Sends `n` concurrent cold requests to a gated app on a dead Redis and
/// opens the gate once every one of them is past its failed read (one
/// store error each: the generation's, or the entry's when the generation
/// is known), so in the flight or in the handler: on this single-threaded
/// runtime a request joins the flight in the same poll in which its read
/// fails.
async fn while_redis_is_down(w: &World, app: &Router, gate: &Semaphore, n: usize) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { get_reply(&app, "/slow").await })
        })
        .collect();
    until("every request read the store", || {
        w.cache.stats().store_errors >= n as u64 && w.calls() >= 1
    })
    .await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(n);
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(within("a request with Redis down", task).await.unwrap());
    }
    replies
}

both_mounts! {
    #[tokio::test]
    async fn after_a_purge_a_post_invalidates_the_get_on_redis(mount) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        let redis = store(&server, Duration::from_secs(2)).await;
        let w = World::with(|b| b.store(redis));
        let app = items_app(mount, &w);
        w.cache.purge_namespace("items").await.unwrap();
        get_reply(&app, "/items").await;
        assert!(get_reply(&app, "/items").await.is_hit());
        assert_eq!(send(&app, post_items()).await.status, StatusCode::CREATED);
        let after = get_reply(&app, "/items").await;
        assert!(!after.is_hit(), "the POST deleted a key of generation 0");
        assert_eq!(after.text(), "v2");
    }

    #[tokio::test]
    async fn a_restarted_instance_invalidates_under_the_stored_generation(mount) {
        let Some(server) = RedisServer::start() else {
            return;
        };
        // An earlier run of the app purged the namespace: Redis keeps the
        // counter, so a new instance starts at generation 1.
        let redis = store(&server, Duration::from_secs(2)).await;
        let earlier = Cache::builder().store(redis).build();
        earlier.purge_namespace("items").await.unwrap();
        drop(earlier);
        let redis = store(&server, Duration::from_secs(2)).await;
        let w = World::with(|b| b.store(redis));
        let app = items_app(mount, &w);
        get_reply(&app, "/items").await;
        assert!(get_reply(&app, "/items").await.is_hit());
        send(&app, post_items()).await;
        assert!(!get_reply(&app, "/items").await.is_hit());
    }

    #[tokio::test]
    async fn with_redis_down_a_post_is_answered_and_its_invalidation_counted_as_a_store_error(mount) {
        let w = World::with(|b| b.store(dead_redis()));
        let app = items_app(mount, &w);
        let posted = send(&app, post_items()).await;
        assert_eq!(posted.status, StatusCode::CREATED);
        assert_eq!(posted.text(), "created");
        // Forwarded as any write is; nothing could be deleted from a store
        // that cannot even say which generation is current.
        assert_eq!(posted.cache_status(), "larder; fwd=method; fwd-status=201");
        assert_eq!(w.cache.stats().invalidations, 0);
        assert_eq!(w.cache.stats().store_errors, 1);
    }

    #[tokio::test]
    async fn with_redis_down_concurrent_cold_misses_run_the_handler_once(mount) {
        let w = World::with(|b| b.store(dead_redis()));
        let gate = Arc::new(Semaphore::new(0));
        let app = gated_app(mount, &w, gate.clone(), false);
        let replies = while_redis_is_down(&w, &app, &gate, 24).await;
        assert_eq!(w.calls(), 1, "stampede protection held with Redis down");
        let mut collapsed = 0;
        for reply in &replies {
            assert_eq!(reply.status, 200);
            assert_eq!(reply.text(), "computed 1");
            assert!(!reply.cache_status().contains("stored"), "{}", reply.cache_status());
            collapsed += usize::from(reply.cache_status().contains("collapsed"));
        }
        assert_eq!(collapsed, 23);
        assert_eq!(w.cache.stats().stores, 0);
    }

    #[tokio::test]
    async fn with_redis_killed_after_the_generation_was_read_misses_still_run_the_handler_once(mount) {
        let Some(mut server) = RedisServer::start() else {
            return;
        };
        if server.port == 0 {
            return; // an external Redis cannot be killed by this test
        }
        let redis = store(&server, Duration::from_millis(500)).await;
        let w = World::with(|b| b.store(redis));
        let gate = Arc::new(Semaphore::new(1));
        let app = gated_app(mount, &w, gate.clone(), false);
        // Another URL of the namespace: the generation is read and known.
        assert_eq!(get_reply(&app, "/slow?warm").await.status, 200);
        gate.acquire().await.unwrap().forget();
        server.kill();
        let replies = while_redis_is_down(&w, &app, &gate, 20).await;
        assert_eq!(w.calls(), 2, "one warm-up, one fill for twenty misses");
        for reply in &replies {
            assert_eq!(reply.text(), "computed 2");
        }
    }

    #[tokio::test]
    async fn with_redis_down_no_request_gets_another_ones_uncacheable_answer(mount) {
        let w = World::with(|b| b.store(dead_redis()));
        let gate = Arc::new(Semaphore::new(0));
        let app = gated_app(mount, &w, gate.clone(), true);
        let replies = while_redis_is_down(&w, &app, &gate, 20).await;
        // The first answer sets a cookie: each waiting request ran its own.
        assert_eq!(w.calls(), 20);
        let mut cookies: Vec<_> = replies
            .iter()
            .map(|r| r.header("set-cookie").unwrap().to_owned())
            .collect();
        cookies.sort();
        cookies.dedup();
        assert_eq!(cookies.len(), 20, "a cookie was shared: {cookies:?}");
        for reply in &replies {
            let n = reply.header("set-cookie").unwrap().trim_start_matches("n=");
            assert_eq!(reply.text(), format!("computed {n}"));
        }
    }
}
