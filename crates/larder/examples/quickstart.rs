//! Quickstart: cache slow axum handlers with `#[larder::cache]`.
//!
//! Shows a per-handler TTL cache (`GET /items`), invalidation by a POST to
//! the same URI, a handler that varies on `Accept-Language` (`GET
//! /greeting`), the `Cache-Status`/`Age`/`x-cache` headers, conditional
//! requests, purging by tag from a handler (`POST /purge`), and the cache's
//! stats as JSON. The handlers carry the attribute; the cache is set up
//! once with `larder::init`. Run it, then try the curl commands it prints
//! (`RUST_LOG=larder=debug` shows a line per lookup):
//!
//! ```text
//! cargo run -p larder --example quickstart --features macros
//! ```
//!
//! Set `LARDER_QUICKSTART_ADDR` (default `127.0.0.1:3000`) to listen elsewhere,
//! and `LARDER_REDIS_URL` (with `--features macros,redis`) to share the cache
//! between instances through Redis.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::http::header::{ACCEPT_LANGUAGE, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use larder::Cache;

/// How many times the slow query really ran (for `/items` and `/uncached`):
/// a cache hit leaves it unchanged.
static HANDLER_CALLS: AtomicU64 = AtomicU64::new(0);
/// Items "added" by `POST /items`.
static ADDED: AtomicU64 = AtomicU64::new(0);

/// Stands in for a 200 ms database query.
async fn slow_items() -> impl IntoResponse {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = HANDLER_CALLS.fetch_add(1, Relaxed) + 1;
    let mut items = vec!["\"apple\"".to_owned(), "\"pear\"".to_owned()];
    items.extend((1..=ADDED.load(Relaxed)).map(|n| format!("\"item-{n}\"")));
    let body = format!(
        "{{\"items\":[{}],\"handler_calls\":{calls}}}\n",
        items.join(",")
    );
    ([(CONTENT_TYPE, "application/json")], body)
}

/// The slow query, cached for a minute: it runs once, whoever asks.
#[larder::cache(ttl = "1m", namespace = "items", tags = ["items"])]
async fn list_items() -> impl IntoResponse {
    slow_items().await
}

/// On a POST the attribute stores nothing: a successful answer
/// invalidates the cached `GET /items` of the same namespace.
#[larder::cache(ttl = "1m", namespace = "items")]
async fn add_item() -> impl IntoResponse {
    let n = ADDED.fetch_add(1, Relaxed) + 1;
    (StatusCode::CREATED, format!("added item-{n}\n"))
}

/// Purging by tag from a handler: `larder::global()` is the cache given to
/// `larder::init`. Every instance sharing the store stops serving what it
/// purges.
async fn purge_items() -> Result<String, (StatusCode, String)> {
    let cache = larder::global().expect("larder::init ran in main");
    match cache.purge_tag("items").await {
        Ok(purged) => Ok(format!("purged {purged} cached URL(s) tagged \"items\"\n")),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))),
    }
}

/// Each Accept-Language value gets its own entry; `Vary` tells downstream
/// caches to do the same.
#[larder::cache(ttl = "1m", vary = ["accept-language"])]
async fn greeting(headers: HeaderMap) -> &'static str {
    let lang = headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match lang.get(..2) {
        Some("fr") => "Bonjour\n",
        Some("de") => "Hallo\n",
        _ => "Hello\n",
    }
}

/// The in-memory store, or Redis when `LARDER_REDIS_URL` is set: then every
/// instance of the app started with that URL shares one cache.
fn store(builder: larder::CacheBuilder) -> larder::CacheBuilder {
    let Ok(url) = std::env::var("LARDER_REDIS_URL") else {
        println!("store: in memory (set LARDER_REDIS_URL=redis://127.0.0.1:6379 to share it)");
        return builder;
    };
    #[cfg(feature = "redis")]
    match larder::store::RedisStore::builder(&url).build() {
        Ok(redis) => {
            println!("store: Redis at {url}");
            builder.store(redis)
        }
        Err(e) => {
            eprintln!("{e}; using the in-memory store");
            builder
        }
    }
    #[cfg(not(feature = "redis"))]
    {
        eprintln!(
            "LARDER_REDIS_URL={url} is set, but this build has no Redis store: \
             run with --features macros,redis. Using the in-memory store."
        );
        builder
    }
}

#[tokio::main]
async fn main() {
    // Store warnings and "no cache found" errors show up here;
    // `RUST_LOG=larder=debug` adds a `larder.lookup` span per request.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // In-memory store (64 MiB); `x-cache: HIT|MISS` beside the standard
    // `Cache-Status` for tools that expect the legacy header. Set up once,
    // for every `#[larder::cache]` handler (the counterpart of
    // fastapi-cache's `FastAPICache.init`).
    let cache = store(Cache::builder().legacy_status_header("x-cache")).build();
    larder::init(cache.clone()).expect("the quickstart sets one cache");

    let app = Router::new()
        .route("/items", get(list_items).post(add_item))
        .route("/uncached", get(slow_items))
        .route("/greeting", get(greeting))
        .route("/purge", post(purge_items))
        .route(
            "/stats",
            get(move || async move { axum::Json(cache.stats()) }),
        );

    let addr =
        std::env::var("LARDER_QUICKSTART_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "cannot listen on {addr}: {e}\n\
                 hint: another program has the port; run with \
                 LARDER_QUICKSTART_ADDR=127.0.0.1:3001 (or any free address)"
            );
            std::process::exit(2);
        }
    };
    let url = format!("http://{addr}");
    println!(
        "larder quickstart listening on {url}

Try:
  curl -i {url}/items        # twice: a 200 ms MISS, then a fast HIT with `age`
  curl -i {url}/uncached     # always 200 ms, never cached
  curl -i -H 'Cache-Control: no-cache' {url}/items   # forces a fresh fetch
  curl -i -H 'If-None-Match: <etag from above>' {url}/items   # 304
  curl -I {url}/items        # HEAD: headers of the cached GET, no body
  curl -i -H 'Accept-Language: fr' {url}/greeting   # one entry per language
  curl -X POST {url}/items   # adds an item and invalidates the cached GET
  curl -i {url}/items        # MISS again, handler_calls went up
  curl -X POST {url}/purge   # purges everything tagged \"items\" (larder::global)
  curl {url}/stats           # JSON: hits, misses, hit_ratio, ..."
    );

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("server error");
}
