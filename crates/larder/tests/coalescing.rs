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
