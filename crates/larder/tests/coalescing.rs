//! In-process coalescing, through the layer and the attribute: concurrent
//! misses on one key run the handler once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use common::*;
use larder::Policy;
use tokio::sync::Semaphore;

#[derive(Clone)]
struct Gated {
    calls: Calls,
    gate: Arc<Semaphore>,
}

async fn slow(State(g): State<Gated>) -> String {
    let n = bump(&g.calls);
    let _permit = g.gate.acquire().await.unwrap();
    format!("computed {n}")
}

#[larder::cache(ttl = "60s")]
async fn cached_slow(gated: State<Gated>) -> String {
    slow(gated).await
}

/// A handler held at a gate until the test opens it, so every request is
/// surely in flight before the first one finishes.
fn gated_app(mount: Mount, w: &World, gate: Arc<Semaphore>) -> Router {
    let policy = Policy::ttl(Duration::from_secs(60));
    let route = w.route(mount, policy, get(slow), get(cached_slow));
    let state = Gated {
        calls: w.counter(),
        gate,
    };
    w.app(mount, Router::new().route("/slow", route), state)
}

/// A store whose first read stalls, after reading, until the test lets it go:
/// it puts one request's miss "in the past" of another request's fetch.
fn stall_first_read(stalled: Arc<tokio::sync::Notify>, release: Arc<Semaphore>) -> ObservedStore {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    ObservedStore::new(Arc::new(move || {
        let (first, stalled, release) = (first.clone(), stalled.clone(), release.clone());
        Box::pin(async move {
            if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                stalled.notify_one();
                let _permit = release.acquire().await.unwrap();
            }
        })
    }))
}

both_mounts! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_concurrent_misses_run_the_handler_once(mount) {
        let w = World::new();
        let gate = Arc::new(Semaphore::new(0));
        let app = gated_app(mount, &w, gate.clone());
        let tasks: Vec<_> = (0..1_000)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { get_reply(&app, "/slow").await })
            })
            .collect();
        // Wait until the leader is inside the handler, and give the others a
        // chance to pile up behind it. However the requests interleave, the
        // handler must run once: later ones are followers or hits.
        while w.calls() == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);
        let (mut collapsed, mut hits) = (0, 0);
        for task in tasks {
            let reply = task.await.unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(reply.text(), "computed 1");
            if reply.cache_status().contains("collapsed") {
                collapsed += 1;
            } else if reply.is_hit() {
                hits += 1;
            }
        }
        assert_eq!(w.calls(), 1);
        assert_eq!(collapsed + hits, 999);
        let stats = w.cache.stats();
        assert_eq!(
            (stats.misses, stats.collapsed, stats.hits),
            (1, collapsed, hits)
        );
    }

    #[tokio::test]
    async fn a_leader_dropped_mid_fetch_hands_the_key_to_a_follower(mount) {
        let w = World::new();
        let gate = Arc::new(Semaphore::new(0));
        let app = gated_app(mount, &w, gate.clone());
        let leader = {
            let app = app.clone();
            tokio::spawn(async move { get_reply(&app, "/slow").await })
        };
        while w.calls() == 0 {
            tokio::task::yield_now().await;
        }
        let follower = {
            let app = app.clone();
            tokio::spawn(async move { get_reply(&app, "/slow").await })
        };
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
        // The client of the leader goes away: its future is dropped.
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        // The follower takes over and fetches.
        while w.calls() < 2 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);
        let reply = follower.await.unwrap();
        assert_eq!(reply.text(), "computed 2");
        assert!(reply.cache_status().contains("stored"));
        assert!(get_reply(&app, "/slow").await.is_hit());
    }

    #[tokio::test]
    async fn followers_give_up_waiting_after_the_coalesce_wait(mount) {
        let w = World::with(|b| b.coalesce_wait(Duration::ZERO));
        let gate = Arc::new(Semaphore::new(0));
        let app = gated_app(mount, &w, gate.clone());
        let first = {
            let app = app.clone();
            tokio::spawn(async move { get_reply(&app, "/slow").await })
        };
        while w.calls() == 0 {
            tokio::task::yield_now().await;
        }
        let second = {
            let app = app.clone();
            tokio::spawn(async move { get_reply(&app, "/slow").await })
        };
        // With no wait at all, the second runs the handler itself.
        while w.calls() < 2 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(2);
        let (a, b) = (first.await.unwrap(), second.await.unwrap());
        let mut texts = [a.text().to_owned(), b.text().to_owned()];
        texts.sort();
        assert_eq!(texts, ["computed 1", "computed 2"]);
    }

    #[tokio::test]
    async fn concurrent_forced_refetches_run_the_handler_once(mount) {
        let w = World::new();
        let gate = Arc::new(Semaphore::new(1));
        let app = gated_app(mount, &w, gate.clone());
        assert_eq!(get_reply(&app, "/slow").await.text(), "computed 1");
        // Shut the gate again: the refetch waits there until every forced
        // request has arrived.
        gate.acquire().await.unwrap().forget();
        w.clock.advance(Duration::from_secs(1));
        let forced = ["cache-control: no-cache", "pragma: no-cache", "cache-control: max-age=0"];
        let tasks: Vec<_> = (0..21)
            .map(|i| {
                let (name, value) = forced[i % 3].split_once(": ").unwrap();
                let request = request("GET", "/slow")
                    .header(name, value)
                    .body(axum::body::Body::empty())
                    .unwrap();
                let app = app.clone();
                tokio::spawn(async move { send(&app, request).await })
            })
            .collect();
        until("the refetch runs", || w.calls() >= 2).await;
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);
        let mut collapsed = 0;
        for task in tasks {
            let reply = within("a forced refetch", task).await.unwrap();
            // Everyone gets the refetched answer, none the stored one.
            assert_eq!(reply.text(), "computed 2");
            collapsed += usize::from(reply.cache_status().contains("collapsed"));
        }
        assert_eq!(w.calls(), 2);
        assert_eq!(collapsed, 20);
        let hit = get_reply(&app, "/slow").await;
        assert!(hit.is_hit());
        assert_eq!(hit.text(), "computed 2");
    }

    #[tokio::test]
    async fn a_miss_read_before_another_fetch_landed_does_not_fetch_again(mount) {
        // A store without leases: the landing counter catches it.
        read_before_landing(mount, false).await;
    }

    #[tokio::test]
    async fn with_leases_a_miss_read_before_another_fetch_landed_does_not_fetch_again(mount) {
        // A store with leases: the read after taking the lease catches it.
        read_before_landing(mount, true).await;
    }
}

/// One request's miss "in the past" of another's whole fetch: it must find
/// the stored answer rather than run the handler again.
async fn read_before_landing(mount: Mount, leases: bool) {
    let stalled = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(Semaphore::new(0));
    let store = stall_first_read(stalled.clone(), release.clone());
    let store = if leases { store.with_leases() } else { store };
    let w = World::with(|b| b.store(store));
    let app = gated_app(mount, &w, Arc::new(Semaphore::new(100)));
    // A reads the store (a miss) and stalls before it can join a flight.
    let late = {
        let app = app.clone();
        tokio::spawn(async move { get_reply(&app, "/slow").await })
    };
    stalled.notified().await;
    // B misses, fetches, stores and lands, all while A is stalled.
    let first = get_reply(&app, "/slow").await;
    assert!(first.cache_status().contains("stored"));
    release.add_permits(1);
    // A finds nobody in flight; it must look again, not run the handler.
    let reply = late.await.unwrap();
    assert_eq!(reply.text(), "computed 1");
    assert_eq!(w.calls(), 1);
}

#[larder::cache(ttl = "1h")]
async fn cached_slow_for_an_hour(gated: State<Gated>) -> String {
    slow(gated).await
}

#[larder::cache(ttl = "60s", namespace = "inner")]
async fn cached_slow_inner(gated: State<Gated>) -> String {
    slow(gated).await
}

/// Long enough that a request waiting for its own flight outlasts
/// [`GUARD`] and fails the test, instead of being freed by the timeout.
const FOREVER: Duration = Duration::from_secs(3600);

/// One cache met three times by one request: a router-wide layer, the
/// route's layer, and the handler's attribute.
fn nested_app(
    w: &World,
    gate: Arc<Semaphore>,
    route: axum::routing::MethodRouter<Gated>,
) -> Router {
    let minute = Policy::ttl(Duration::from_secs(60));
    let state = Gated {
        calls: w.counter(),
        gate,
    };
    Router::new()
        .route("/slow", route)
        .layer(w.cache.layer(minute))
        .with_state(state)
}

/// Sends the first request to a gated app, opens the gate once the handler
/// runs, and returns the reply: it must come without any wait for a flight.
async fn first_through_the_gate(w: &World, app: &Router, gate: &Semaphore) -> Reply {
    let first = {
        let app = app.clone();
        tokio::spawn(async move { get_reply(&app, "/slow").await })
    };
    until("the handler runs", || w.calls() == 1).await;
    gate.add_permits(1);
    within("the first request, which no one else fills", first)
        .await
        .unwrap()
}

#[tokio::test]
async fn one_cache_used_three_times_on_a_request_fills_it_once_without_waiting() {
    let w = World::with(|b| b.coalesce_wait(FOREVER));
    let gate = Arc::new(Semaphore::new(0));
    let route = get(cached_slow).layer(w.cache.layer(Policy::ttl(Duration::from_secs(60))));
    let app = nested_app(&w, gate.clone(), route);
    let first = first_through_the_gate(&w, &app, &gate).await;
    assert_eq!(first.text(), "computed 1");
    assert_eq!(first.header("age"), Some("0"));
    // The outermost use speaks for the cache: one member, one store.
    assert_eq!(
        first.cache_status(),
        "larder; fwd=uri-miss; fwd-status=200; ttl=60; stored"
    );
    assert_eq!(w.cache.stats().stores, 1);
    let second = get_reply(&app, "/slow").await;
    assert!(second.is_hit(), "{}", second.cache_status());
    assert_eq!(second.text(), "computed 1");
    assert_eq!(w.calls(), 1);
}

#[tokio::test]
async fn nested_uses_of_one_key_store_what_the_outermost_policy_says() {
    // The handler's own `ttl` is an hour; the router's layer, which answers
    // every hit before the handler is reached, says a minute.
    let w = World::with(|b| b.coalesce_wait(FOREVER));
    let gate = Arc::new(Semaphore::new(0));
    let app = nested_app(&w, gate.clone(), get(cached_slow_for_an_hour));
    let first = first_through_the_gate(&w, &app, &gate).await;
    assert!(
        first.cache_status().ends_with("ttl=60; stored"),
        "{}",
        first.cache_status()
    );
    assert_eq!(w.cache.stats().stores, 1);
    let hit = get_reply(&app, "/slow").await;
    assert_eq!(hit.cache_status(), "larder; hit; ttl=60");
}

#[tokio::test]
async fn nested_uses_in_two_namespaces_each_store_their_own_entry() {
    let w = World::with(|b| b.coalesce_wait(FOREVER));
    let gate = Arc::new(Semaphore::new(0));
    let app = nested_app(&w, gate.clone(), get(cached_slow_inner));
    let first = first_through_the_gate(&w, &app, &gate).await;
    assert_eq!(first.header("age"), Some("0"));
    // Two keys, two flights, two entries; the router's answers the hits.
    assert_eq!(w.cache.stats().stores, 2);
    assert!(get_reply(&app, "/slow").await.is_hit());
    assert_eq!(w.calls(), 1);
}

#[tokio::test]
async fn two_requests_through_nested_uses_still_coalesce() {
    let w = World::with(|b| b.coalesce_wait(FOREVER));
    let gate = Arc::new(Semaphore::new(0));
    let route = get(cached_slow).layer(w.cache.layer(Policy::ttl(Duration::from_secs(60))));
    let app = nested_app(&w, gate.clone(), route);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { get_reply(&app, "/slow").await })
        })
        .collect();
    until("the handler runs", || w.calls() == 1).await;
    for _ in 0..1_000 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(1);
    for task in tasks {
        let reply = within("a request", task).await.unwrap();
        assert_eq!(reply.text(), "computed 1");
    }
    assert_eq!(w.calls(), 1);
    assert_eq!(w.cache.stats().stores, 1);
}

#[larder::cache(ttl = "60s", stale_while_revalidate = "30s")]
async fn cached_counted(State(calls): State<Calls>) -> String {
    format!("v{}", bump(&calls))
}

#[tokio::test]
async fn a_background_refresh_through_nested_uses_refreshes_the_entry() {
    let w = World::new();
    let policy =
        Policy::ttl(Duration::from_secs(60)).stale_while_revalidate(Duration::from_secs(30));
    let app = Router::new()
        .route("/v", get(cached_counted))
        .layer(w.cache.layer(policy))
        .with_state(w.counter());
    get_reply(&app, "/v").await;
    w.clock.advance(Duration::from_secs(70));
    let stale = get_reply(&app, "/v").await;
    assert_eq!(stale.text(), "v1");
    assert_eq!(stale.cache_status(), "larder; hit; ttl=-10");
    until("the refresh stores", || w.cache.stats().stores == 2).await;
    let fresh = get_reply(&app, "/v").await;
    assert_eq!(fresh.text(), "v2");
    assert_eq!(fresh.cache_status(), "larder; hit; ttl=60");
}
