//! The server `bench/redis_hits.sh` loads: one route per subject, every one
//! answering the same N bytes with the same content type, so that the only
//! difference between two routes is where the bytes come from.
//!
//! - `/plain`: bytes from memory, no cache. The ceiling of this server.
//! - `/redis-direct`: the handler GETs `bench:payload` through one
//!   multiplexed redis-rs connection shared by every request. The limit for
//!   any Redis-backed hit: one round trip, no decoding, no cache logic.
//! - `/larder-redis`: the `/plain` handler behind larder with a
//!   `RedisStore`; after the first request every request is a hit.
//! - `/larder-memory`: the same with the default in-memory store.
//! - `/larder-redis-cold`: `/larder-redis` with the hot tier off, so that
//!   every hit is a Redis round trip and a decode (a cold L1: what the
//!   first read of a key on an instance costs).
//! - `/larder-attribute`: a `#[larder::cache]` handler returning the same
//!   bytes, on the memory store (the cache comes from `larder::init`, the
//!   setup the quickstart uses; `Cache::extension` on the router costs a hit
//!   a router layer more: see BENCHMARKS.md, instructions per hit).
//! - `/origin`: the `/plain` bytes with `Cache-Control: public, max-age=3600`,
//!   counting its requests: the origin that `bench/run` puts the `larder`
//!   proxy and nginx's `proxy_cache` in front of.
//! - `/stats`: hits, misses and store errors of both caches, one line each,
//!   and the origin's request count, so that the scripts can check that the
//!   cached runs were all hits.
//!
//! ```text
//! LARDER_BENCH_REDIS_URL=redis://127.0.0.1:6379 LARDER_BENCH_BYTES=1024 \
//!   cargo run --release -p larder --features redis,macros --example bench_server -- 127.0.0.1:3000
//! ```
//!
//! The address comes from the first argument, else `LARDER_BENCH_ADDR`, else
//! `127.0.0.1:3000` (port 0 picks a free one; the chosen address is printed).
//! `LARDER_BENCH_REDIS_TIMEOUT_MS` (default 1000) is the `RedisStore` command
//! timeout: generous, so that a loaded machine does not turn hits into
//! fail-open misses and make larder look faster or slower than it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use larder::store::RedisStore;
use larder::{Cache, Policy};
use redis::aio::MultiplexedConnection;

/// The Redis key `/redis-direct` reads; written at startup.
const PAYLOAD_KEY: &str = "bench:payload";
const CONTENT_TYPE_VALUE: &str = "application/octet-stream";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `n` printable bytes, the same on every run.
fn payload(n: usize) -> Bytes {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn octets(body: Bytes) -> Response {
    ([(CONTENT_TYPE, CONTENT_TYPE_VALUE)], body).into_response()
}

async fn direct(State(mut conn): State<MultiplexedConnection>) -> Response {
    // Clones of a multiplexed connection share one socket; this clone is
    // per request and costs an Arc bump.
    match redis::cmd("GET")
        .arg(PAYLOAD_KEY)
        .query_async::<Option<Vec<u8>>>(&mut conn)
        .await
    {
        Ok(Some(bytes)) => octets(Bytes::from(bytes)),
        Ok(None) => (StatusCode::BAD_GATEWAY, "payload key missing").into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The `/plain` bytes from a `#[larder::cache]` handler.
#[larder::cache(ttl = "1h")]
async fn attributed(State(body): State<Bytes>) -> Response {
    octets(body)
}

fn stats_line(name: &str, cache: &Cache) -> String {
    let s = cache.stats();
    format!(
        "{name} hits={} misses={} store_errors={} corrupt_entries={}\n",
        s.hits, s.misses, s.store_errors, s.corrupt_entries
    )
}

#[tokio::main] // multi-thread, one worker per core
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| env_or("LARDER_BENCH_ADDR", "127.0.0.1:3000"));
    let redis_url = env_or("LARDER_BENCH_REDIS_URL", "redis://127.0.0.1:6379");
    let bytes: usize = env_or("LARDER_BENCH_BYTES", "1024")
        .parse()
        .expect("LARDER_BENCH_BYTES must be a number of bytes");
    let timeout_ms: u64 = env_or("LARDER_BENCH_REDIS_TIMEOUT_MS", "1000")
        .parse()
        .expect("LARDER_BENCH_REDIS_TIMEOUT_MS must be a number of milliseconds");
    let body = payload(bytes);

    // The baseline's connection, and the key it reads.
    let client = redis::Client::open(redis_url.as_str()).expect("invalid LARDER_BENCH_REDIS_URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {redis_url}: {e}"));
    redis::cmd("SET")
        .arg(PAYLOAD_KEY)
        .arg(body.as_ref())
        .query_async::<()>(&mut conn)
        .await
        .expect("cannot write the payload key");

    // Two caches, so that each one's stats are its own. The prefix carries
    // the size: a run at another size never hits this run's entries.
    let store = RedisStore::builder(redis_url.as_str())
        .command_timeout(Duration::from_millis(timeout_ms))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("RedisStore: {e}"));
    let prefix = format!("larder-bench-{bytes}");
    let redis_cache = Cache::builder().store(store).prefix(&prefix).build();
    let memory_cache = Cache::builder().prefix(&prefix).build();
    let cold_store = RedisStore::builder(redis_url.as_str())
        .command_timeout(Duration::from_millis(timeout_ms))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("RedisStore: {e}"));
    let cold_cache = Cache::builder()
        .store(cold_store)
        .prefix(format!("{prefix}-cold"))
        .hot_tier_bytes(0)
        .build();
    let attribute_cache = Cache::builder()
        .prefix(format!("{prefix}-attribute"))
        .build();
    let hour = Duration::from_secs(3600);

    let plain = {
        let body = body.clone();
        move || async move { octets(body) }
    };
    // What a proxy's origin sends: cacheable by any shared cache for an
    // hour. The count tells whether a proxy run reached the origin.
    let origin_requests = Arc::new(AtomicU64::new(0));
    let origin = {
        let (body, count) = (body.clone(), origin_requests.clone());
        move || async move {
            count.fetch_add(1, Ordering::Relaxed);
            (
                [
                    (CONTENT_TYPE, CONTENT_TYPE_VALUE),
                    (CACHE_CONTROL, "public, max-age=3600"),
                ],
                body,
            )
                .into_response()
        }
    };
    let (stats_redis, stats_memory) = (redis_cache.clone(), memory_cache.clone());
    let (stats_cold, stats_attribute) = (cold_cache.clone(), attribute_cache.clone());
    larder::init(attribute_cache.clone()).expect("the bench server's one process-wide cache");
    let attributed = Router::new()
        .route("/larder-attribute", get(attributed))
        .with_state(body.clone());
    let app = Router::new()
        .route("/plain", get(plain.clone()))
        .route("/redis-direct", get(direct).with_state(conn))
        .route(
            "/larder-redis",
            get(plain.clone()).layer(redis_cache.layer(Policy::ttl(hour))),
        )
        .route(
            "/larder-redis-cold",
            get(plain.clone()).layer(cold_cache.layer(Policy::ttl(hour))),
        )
        .route(
            "/larder-memory",
            get(plain).layer(memory_cache.layer(Policy::ttl(hour))),
        )
        .merge(attributed)
        .route("/origin", get(origin))
        .route(
            "/stats",
            get(move || async move {
                stats_line("larder-redis", &stats_redis)
                    + &stats_line("larder-memory", &stats_memory)
                    + &stats_line("larder-redis-cold", &stats_cold)
                    + &stats_line("larder-attribute", &stats_attribute)
                    + &format!(
                        "origin requests={}\n",
                        origin_requests.load(Ordering::Relaxed)
                    )
            }),
        );

    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    let local = listener.local_addr().expect("local address");
    println!("bench_server listening on http://{local} ({bytes} bytes, redis {redis_url})");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("server error");
}
