//! What a cache hit costs.
//!
//! Two comparisons, each in its own criterion group so that its benchmarks
//! run in the same process, one after the other:
//!
//! - `engine/engine_hit_1k`: [`Cache::lookup`] on a warm key whose entry is
//!   a 1 KiB body in the [`MemoryStore`], up to the hit `Response<Bytes>`.
//!   This is the engine alone: key, store read, decode, freshness, headers.
//! - `router/router_plain_1k` vs `router/router_cached_hit_1k`: an axum
//!   `Router` whose handler returns the same 1 KiB body, without and with
//!   the cache layer on the route (warmed), each driven by
//!   `tower::ServiceExt::oneshot` with a GET request and the body collected.
//!   A cached hit should cost about what the plain handler does, or less.
//!
//! - `engine/engine_store_hit_1k`: the same with the hot tier off: every
//!   hit reads and decodes the stored entry (what a hit cost before it).
//! - `floor/*`: what a hit pays that the plain route does not, whatever
//!   the cache does (see [`floor`]): the hit's header map, its body, a
//!   clock read.
//! - `hot_set/*`: several threads at once looking up one set of 256 warm
//!   keys, with the hot tier (quick_cache: reads take a shard's read lock
//!   and touch no shared queue) and without it (the memory store's moka,
//!   which records every read on a shared channel). The elements per
//!   second are lookups; flat from 1 to 4 threads is what scales.
//!
//! Every benchmark checks once, outside the timed loop, that it measures
//! what it says (a hit with a 1024-byte body), so a miss cannot pass for a
//! fast hit.
//!
//! Run with:
//!
//! ```text
//! cargo bench -p larder --bench hit_path
//! cargo bench -p larder --bench hit_path -- engine_hit_1k   # one benchmark
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::header::{CONTENT_TYPE, HOST};
use http::{request, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use larder::{Cache, Lookup, MemoryStore, Policy};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const BODY_LEN: usize = 1024;
static BODY_BYTES: [u8; BODY_LEN] = [b'x'; BODY_LEN];
const CONTENT_TYPE_VALUE: &str = "application/octet-stream";
const PATH: &str = "/items";
const HOST_VALUE: &str = "example.com";

fn body() -> Bytes {
    Bytes::from_static(&BODY_BYTES)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn policy() -> Policy {
    Policy::ttl(Duration::from_secs(3600))
}

fn cache() -> Cache {
    Cache::builder().store(MemoryStore::new(64 << 20)).build()
}

fn cache_with_hot_tier(bytes: u64) -> Cache {
    Cache::builder()
        .store(MemoryStore::new(64 << 20))
        .hot_tier_bytes(bytes)
        .build()
}

fn get_parts() -> request::Parts {
    parts_for(PATH)
}

fn parts_for(path: &str) -> request::Parts {
    Request::get(path)
        .header(HOST, HOST_VALUE)
        .body(())
        .expect("request")
        .into_parts()
        .0
}

fn get_request() -> Request<Body> {
    Request::get(PATH)
        .header(HOST, HOST_VALUE)
        .body(Body::empty())
        .expect("request")
}

fn cache_status(response: &Response<impl Sized>) -> &str {
    response
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Stores the 1 KiB response under the request's key, as the first request
/// for it would.
async fn warm_engine(cache: &Cache, policy: &Arc<Policy>) {
    warm_path(cache, policy, PATH).await;
    // The first read from the store makes the hot tier's copy.
    let read = cache.lookup(&get_parts(), policy).await;
    assert!(matches!(read, Lookup::Respond(_)), "the warm key missed");
}

async fn warm_path(cache: &Cache, policy: &Arc<Policy>, path: &str) {
    let mut parts = parts_for(path);
    let Lookup::Forward(fill) = cache.lookup(&parts, policy).await else {
        panic!("the first lookup of a cold cache must forward");
    };
    assert!(fill.stores(), "the request must be storable");
    fill.prepare(&mut parts);
    let response = Response::builder()
        .header(CONTENT_TYPE, CONTENT_TYPE_VALUE)
        .body(Full::new(body()))
        .expect("response");
    let response = fill.complete(response).await;
    assert!(
        cache_status(&response).contains("stored"),
        "the warming response was not stored: {:?}",
        cache_status(&response)
    );
}

fn engine(c: &mut Criterion) {
    let rt = runtime();
    let policy = Arc::new(policy());
    let hot = cache();
    let store_only = cache_with_hot_tier(0);
    let mut group = c.benchmark_group("engine");
    for (name, cache) in [
        ("engine_hit_1k", &hot),
        ("engine_store_hit_1k", &store_only),
    ] {
        rt.block_on(warm_engine(cache, &policy));
        let parts = get_parts();
        match rt.block_on(cache.lookup(&parts, &policy)) {
            Lookup::Respond(response) => {
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(response.body().len(), BODY_LEN);
                assert!(cache_status(&response).contains("hit"));
            }
            Lookup::Forward(_) | Lookup::Refresh(..) => panic!("{name} would measure a miss"),
        }
        let (parts, policy) = (&parts, &policy);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async move {
                match cache.lookup(black_box(parts), policy).await {
                    Lookup::Respond(response) => black_box(response),
                    Lookup::Forward(_) | Lookup::Refresh(..) => {
                        unreachable!("a miss inside the timed loop")
                    }
                }
            })
        });
    }
    let before = hot.stats().hot_hits;
    rt.block_on(hot.lookup(&get_parts(), &policy));
    assert_eq!(
        hot.stats().hot_hits,
        before + 1,
        "engine_hit_1k did not hit the hot tier"
    );
    assert_eq!(store_only.stats().hot_hits, 0);
    group.finish();
}

/// The keys `hot_set` reads.
const HOT_SET: usize = 256;

fn hot_set(c: &mut Criterion) {
    let rt = runtime();
    let policy = Arc::new(policy());
    let paths: Vec<String> = (0..HOT_SET).map(|i| format!("/items/{i}")).collect();
    let parts: Vec<request::Parts> = paths.iter().map(|p| parts_for(p)).collect();
    let mut group = c.benchmark_group("hot_set");
    for (label, bytes) in [
        ("hot_tier", larder::DEFAULT_HOT_TIER_BYTES),
        ("store_only", 0),
    ] {
        let cache = cache_with_hot_tier(bytes);
        rt.block_on(async {
            for (path, parts) in paths.iter().zip(&parts) {
                warm_path(&cache, &policy, path).await;
                // The first read copies the entry to the hot tier (if on),
                // the second is what the timed loop measures.
                for _ in 0..2 {
                    assert!(matches!(
                        cache.lookup(parts, &policy).await,
                        Lookup::Respond(_)
                    ));
                }
            }
        });
        // Checked here, not after the loop: a filtered run skips the loop.
        let expected = if bytes > 0 { HOT_SET as u64 } else { 0 };
        assert_eq!(
            cache.stats().hot_hits,
            expected,
            "hot_set/{label} would not measure what it says"
        );
        for threads in [1usize, 2, 4] {
            group.throughput(criterion::Throughput::Elements(threads as u64));
            let (cache, parts, policy) = (&cache, &parts, &policy);
            group.bench_function(format!("{label}_{threads}_threads"), |b| {
                b.iter_custom(|iters| {
                    let start = std::time::Instant::now();
                    std::thread::scope(|scope| {
                        for t in 0..threads {
                            scope.spawn(move || {
                                runtime().block_on(async {
                                    for i in 0..iters as usize {
                                        let parts = &parts[(i * 7 + t * 31) % HOT_SET];
                                        match cache.lookup(parts, policy).await {
                                            Lookup::Respond(r) => drop(black_box(r)),
                                            _ => unreachable!("a miss inside the timed loop"),
                                        }
                                    }
                                })
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

async fn handler() -> ([(http::HeaderName, &'static str); 1], Bytes) {
    ([(CONTENT_TYPE, CONTENT_TYPE_VALUE)], body())
}

/// Sends one GET through a clone of `router` and reads the whole body, as a
/// server would.
async fn send(router: &Router) -> (Response<()>, Bytes) {
    let response = router
        .clone()
        .oneshot(get_request())
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (Response::from_parts(parts, ()), bytes)
}

/// The plain route and the same route behind the layer (and its cache).
fn routers() -> (Router, Router, Cache) {
    // `with_state(())` makes each route a service once, as `axum::serve`
    // does; without it axum rebuilds (and re-layers) every route on every
    // request, which no server pays.
    let plain: Router = Router::new().route(PATH, get(handler)).with_state(());
    let cache = cache();
    let cached: Router = Router::new()
        .route(PATH, get(handler).layer(cache.layer(policy())))
        .with_state(());
    (plain, cached, cache)
}

fn router(c: &mut Criterion) {
    let rt = runtime();
    let (plain, cached, cache) = routers();

    let (response, bytes) = rt.block_on(send(&plain));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(bytes.len(), BODY_LEN);

    let (warming, _) = rt.block_on(send(&cached));
    assert!(
        cache_status(&warming).contains("stored"),
        "the warming response was not stored: {:?}",
        cache_status(&warming)
    );
    // The first hit reads the store and copies the entry to the hot tier.
    rt.block_on(send(&cached));
    let (response, bytes) = rt.block_on(send(&cached));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(bytes.len(), BODY_LEN);
    assert!(
        cache_status(&response).contains("hit"),
        "router_cached_hit_1k would not measure a hit: {:?}",
        cache_status(&response)
    );

    let mut group = c.benchmark_group("router");
    let (plain, cached) = (&plain, &cached);
    group.bench_function("router_plain_1k", |b| {
        b.to_async(&rt)
            .iter(|| async move { black_box(send(plain).await) })
    });
    group.bench_function("router_cached_hit_1k", |b| {
        b.to_async(&rt)
            .iter(|| async move { black_box(send(cached).await) })
    });
    group.finish();
    assert!(
        cache.stats().hot_hits > 0,
        "router_cached_hit_1k never hit the hot tier"
    );
}

/// What a hit must pay beyond the plain handler, whatever the cache does:
/// the pieces `router_cached_hit_1k` is made of that the plain route does
/// without. `floor/hit_fields_clone` clones and drops the header map of a
/// real hit (the fields a hit must send: the origin's `Content-Type`,
/// `Content-Length`, `Date` and `ETag`, and its own `Age` and
/// `Cache-Status`), `floor/plain_fields_clone` the plain route's one field;
/// `floor/body_clone` the hit's body; `floor/clock_now` the clock read
/// every hit makes. Their sum against the routed figures says how near a
/// hit is to its floor.
fn floor(c: &mut Criterion) {
    let rt = runtime();
    let (plain, cached, _cache) = routers();
    rt.block_on(send(&cached));
    rt.block_on(send(&cached));
    let hit = rt
        .block_on(cached.clone().oneshot(get_request()))
        .expect("infallible");
    assert!(
        cache_status(&hit).contains("hit"),
        "floor would not measure a hit"
    );
    let (hit, hit_body) = hit.into_parts();
    let hit_body = rt.block_on(hit_body.collect()).expect("body").to_bytes();
    assert_eq!(hit_body.len(), BODY_LEN);
    let (plain, _) = rt
        .block_on(plain.oneshot(get_request()))
        .expect("infallible")
        .into_parts();
    assert!(hit.headers.len() > plain.headers.len());
    let mut group = c.benchmark_group("floor");
    group.bench_function("hit_fields_clone", |b| {
        b.iter(|| black_box(black_box(&hit.headers).clone()))
    });
    group.bench_function("plain_fields_clone", |b| {
        b.iter(|| black_box(black_box(&plain.headers).clone()))
    });
    group.bench_function("body_clone", |b| {
        b.iter(|| black_box(black_box(&hit_body).clone()))
    });
    group.bench_function("clock_now", |b| {
        b.iter(|| black_box(std::time::SystemTime::now()))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = engine, router, floor, hot_set
}
criterion_main!(benches);
