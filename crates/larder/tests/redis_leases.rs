//! Coalescing across instances: several `Cache`s, each with its own
//! in-process state, sharing one real Redis through leases.
#![cfg(feature = "redis")]

mod common;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::*;
use larder::clock::ManualClock;
use larder::store::{Lease, RedisStore, Store, StoreFuture};
use larder::{Cache, CacheBuilder, Policy};
use support::redis::RedisServer;
use tokio::sync::{Barrier, Semaphore};

/// Far longer than the guard of `within`, so that an answer within it
/// cannot come from giving up on waiting.
const COALESCE_WAIT: Duration = Duration::from_secs(120);

async fn redis(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects to the test redis-server")
}

/// What every instance's handler shares: one database.
#[derive(Clone)]
struct Db {
    calls: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

async fn report(State(db): State<Db>) -> impl IntoResponse {
    let n = db.calls.fetch_add(1, Ordering::SeqCst) + 1;
    db.gate.acquire().await.unwrap().forget();
    format!("v{n}")
}

/// One app instance: its own `Cache` on the store given.
fn instance(
    store: impl Store,
    clock: &ManualClock,
    db: &Db,
    policy: Policy,
    configure: impl FnOnce(CacheBuilder) -> CacheBuilder,
) -> (Cache, Router) {
    let builder = Cache::builder()
        .store(store)
        .clock(clock.clone())
        .coalesce_wait(COALESCE_WAIT);
    let cache = configure(builder).build();
    let app = Router::new()
        .route("/report", get(report).layer(cache.layer(policy)))
        .with_state(db.clone());
    (cache, app)
}

fn db(open: usize) -> Db {
    Db {
        calls: Arc::new(AtomicUsize::new(0)),
        gate: Arc::new(Semaphore::new(open)),
    }
}

fn ttl(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_instances_with_250_concurrent_misses_each_call_the_handler_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new(epoch());
    let db = db(0);
    let mut instances = Vec::new();
    for _ in 0..4 {
        let store = redis(&server).await;
        instances.push(instance(store, &clock, &db, Policy::ttl(ttl(60)), |b| b));
    }
    let mut tasks = Vec::new();
    for (_, app) in &instances {
        for _ in 0..250 {
            let app = app.clone();
            tasks.push(tokio::spawn(
                async move { get_reply(&app, "/report").await },
            ));
        }
    }
    until("one handler call", || db.calls.load(Ordering::SeqCst) == 1).await;
    // Let the other instances find the lease taken and start waiting. How
    // long this takes decides nothing asserted: late requests are hits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.gate.add_permits(1);
    let (mut collapsed, mut hits) = (0, 0);
    for task in tasks {
        let reply = within("every reply", task).await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), "v1");
        if reply.cache_status().contains("collapsed") {
            collapsed += 1;
        } else if reply.is_hit() {
            hits += 1;
        }
    }
    assert_eq!(db.calls.load(Ordering::SeqCst), 1);
    assert_eq!(collapsed + hits, 999);
    let stats: Vec<_> = instances.iter().map(|(c, _)| c.stats()).collect();
    assert_eq!(stats.iter().map(|s| s.stores).sum::<u64>(), 1);
    // Every instance had requests waiting on the one fetch.
    for s in &stats {
        assert!(s.collapsed > 0, "{s:?}");
    }
}

/// A store whose leases are never ended, as if its process died holding
/// them: only their expiry frees them.
struct DiesHoldingLeases(RedisStore);

impl Store for DiesHoldingLeases {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        self.0.get(key)
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        self.0.get_many(keys)
    }
    fn put<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        self.0.put(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.0.delete(key)
    }
    fn index_add<'a>(&'a self, i: &'a str, m: &'a str, ttl: Duration) -> StoreFuture<'a, ()> {
        self.0.index_add(i, m, ttl)
    }
    fn index_purge<'a>(&'a self, index: &'a str) -> StoreFuture<'a, u64> {
        self.0.index_purge(index)
    }
    fn incr<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        self.0.incr(key)
    }
    fn counter<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        self.0.counter(key)
    }
    fn lease<'a>(&'a self, key: &'a str, holder: Bytes, ttl: Duration) -> StoreFuture<'a, Lease> {
        self.0.lease(key, holder, ttl)
    }
    fn end_lease<'a>(
        &'a self,
        _: &'a str,
        _: Bytes,
        _: Option<(Bytes, Duration)>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
}

/// A leader on instance A whose future is dropped mid-fetch; B's request,
/// waiting on A's lease, must fetch for itself once the lease is gone.
async fn a_dropped_leader_frees_the_key(
    server: &RedisServer,
    a_store: impl Store,
    lease_ttl: Duration,
) {
    let clock = ManualClock::new(epoch());
    let db = db(0);
    let policy = Policy::ttl(ttl(60));
    let (_, app_a) = instance(a_store, &clock, &db, policy.clone(), |b| {
        b.lease_ttl(lease_ttl)
    });
    let (b, app_b) = instance(redis(server).await, &clock, &db, policy, |b| {
        b.lease_ttl(lease_ttl)
    });
    let leader = {
        let app = app_a.clone();
        tokio::spawn(async move { get_reply(&app, "/report").await })
    };
    until("A inside the handler", || {
        db.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    let follower = {
        let app = app_b.clone();
        tokio::spawn(async move { get_reply(&app, "/report").await })
    };
    // B finds A's lease and waits (a miss counted only when it fetches).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(db.calls.load(Ordering::SeqCst), 1);
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    until("B to fetch", || db.calls.load(Ordering::SeqCst) == 2).await;
    db.gate.add_permits(1);
    let reply = within("B's answer", follower).await.unwrap();
    assert_eq!(reply.text(), "v2");
    assert!(
        reply.cache_status().contains("stored"),
        "{}",
        reply.cache_status()
    );
    assert_eq!(b.stats().misses, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_dropped_mid_fetch_hands_the_key_to_another_instance_at_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // A lease far longer than the guard: only its release can free it.
    let a = redis(&server).await;
    a_dropped_leader_frees_the_key(&server, a, Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_died_holding_the_lease_frees_the_key_when_it_expires() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let dies = DiesHoldingLeases(redis(&server).await);
    // Long enough that B is surely still waiting on it when the test looks
    // (100 ms in, on a loaded machine); short enough to expire in the test.
    a_dropped_leader_frees_the_key(&server, dies, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_runs_one_refresh_across_instances() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new(epoch());
    let db = db(1);
    let policy = Policy::ttl(ttl(60)).stale_while_revalidate(ttl(30));
    let mut instances = Vec::new();
    for _ in 0..3 {
        let store = redis(&server).await;
        instances.push(instance(store, &clock, &db, policy.clone(), |b| b));
    }
    assert_eq!(get_reply(&instances[0].1, "/report").await.text(), "v1");
    clock.advance(ttl(70));
    // The refresh is held at the gate; every instance answers stale at once.
    for _ in 0..5 {
        for (_, app) in &instances {
            let reply = within("a stale answer", get_reply(app, "/report")).await;
            assert_eq!(reply.text(), "v1");
            assert!(
                reply.cache_status().contains("ttl=-10"),
                "{}",
                reply.cache_status()
            );
        }
    }
    until("the refresh", || db.calls.load(Ordering::SeqCst) == 2).await;
    let refreshes: u64 = instances.iter().map(|(c, _)| c.stats().refreshes).sum();
    assert_eq!(refreshes, 1);
    assert_eq!(db.calls.load(Ordering::SeqCst), 2);
    db.gate.add_permits(1);
    let stored = || instances.iter().map(|(c, _)| c.stats().stores).sum::<u64>() == 2;
    until("the refresh to land", stored).await;
    for (_, app) in &instances {
        assert_eq!(get_reply(app, "/report").await.text(), "v2");
    }
}

#[derive(Clone)]
struct Private {
    together: Arc<Barrier>,
    calls: Arc<AtomicUsize>,
}

async fn private(State(p): State<Private>, headers: HeaderMap) -> impl IntoResponse {
    if p.calls.fetch_add(1, Ordering::SeqCst) > 0 {
        p.together.wait().await;
    }
    let user = headers["x-user"].to_str().unwrap().to_owned();
    ([("cache-control", "private")], format!("for {user}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncacheable_answer_on_one_instance_lets_another_run_in_parallel() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let together = 10;
    let state = Private {
        together: Arc::new(Barrier::new(together)),
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let app = |cache: &Cache| {
        Router::new()
            .route("/me", get(private).layer(cache.layer(Policy::ttl(ttl(60)))))
            .with_state(state.clone())
    };
    let a = Cache::builder().store(redis(&server).await).build();
    let b = Cache::builder()
        .store(redis(&server).await)
        .coalesce_wait(COALESCE_WAIT)
        .build();
    let (app_a, app_b) = (app(&a), app(&b));
    let ask = |user: String| {
        request("GET", "/me")
            .header("x-user", user)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app_a, ask("a".into())).await.text(), "for a");
    // B has never seen the key: only the store can tell it the answer was
    // private. Queued behind one leader, its requests would never all
    // reach the handler together.
    let requests = (0..together).map(|i| ask(format!("b{i}")));
    let what = "ten requests on B inside the handler at once";
    let replies = all_at_once(what, &app_b, requests).await;
    for (i, reply) in replies.iter().enumerate() {
        assert_eq!(reply.text(), format!("for b{i}"));
    }
}
