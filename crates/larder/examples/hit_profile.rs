//! A fixed number of cache hits, for profilers: instructions per hit are
//! what `valgrind --tool=callgrind` counts over two runs of different
//! lengths (the difference divided by the difference in hits), free of
//! the machine's load.
//!
//! ```text
//! cargo build --release -p larder --example hit_profile
//! valgrind --tool=callgrind target/release/examples/hit_profile router 20000
//! ```
//!
//! The first argument picks what is measured: `engine` (`Cache::lookup`
//! on a warm key), `router` (an axum route behind the layer, body
//! collected), `plain` (the same route without the cache), `store` (the
//! engine with the hot tier off), `attribute` (the route's handler under
//! `#[larder::cache]`, built with `--features macros`, the router carrying
//! `cache.extension()`; `attribute-global`: found through `larder::init`). The second is the number of requests.
//! With `info` as a third, a tracing subscriber logs at info level, as in
//! production: the hit path's debug span must cost nothing then either.
//! With `prometheus` (and `--features metrics`), a Prometheus recorder
//! counts every hit.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::Request;
use http_body_util::BodyExt;
use larder::{Cache, Lookup, Policy};
use tower::ServiceExt;

static BODY: [u8; 1024] = [b'x'; 1024];

async fn handler() -> ([(http::HeaderName, &'static str); 1], Bytes) {
    (
        [(CONTENT_TYPE, "application/octet-stream")],
        Bytes::from_static(&BODY),
    )
}

#[cfg(feature = "macros")]
#[larder::cache(ttl = "1h")]
async fn attributed() -> ([(http::HeaderName, &'static str); 1], Bytes) {
    handler().await
}

fn request() -> Request<Body> {
    Request::get("/items")
        .header(HOST, "example.com")
        .body(Body::empty())
        .expect("request")
}

async fn send(router: &Router) -> usize {
    let response = router.clone().oneshot(request()).await.expect("infallible");
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .len()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let subject = args.next().unwrap_or_else(|| "router".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    match args.next().as_deref() {
        Some("info") => tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .init(),
        // Built with `--features metrics`: what a recorder costs a hit.
        Some("prometheus") => {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            metrics::set_global_recorder(recorder).expect("one recorder");
        }
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let hot = if subject == "store" {
            0
        } else {
            larder::DEFAULT_HOT_TIER_BYTES
        };
        let cache = Cache::builder().hot_tier_bytes(hot).build();
        let policy = Policy::ttl(Duration::from_secs(3600));
        // `with_state(())` turns the routes into services once, as
        // `axum::serve` does; without it axum rebuilds (and re-layers) each
        // route on every request, which no server pays.
        let cached: Router = Router::new()
            .route("/items", get(handler).layer(cache.layer(policy.clone())))
            .with_state(());
        let plain: Router = Router::new().route("/items", get(handler)).with_state(());
        #[cfg(feature = "macros")]
        let attribute: Router = Router::new()
            .route("/items", get(attributed))
            .layer(cache.extension())
            .with_state(());
        // The same handler finding the cache given to `larder::init`: no
        // layer on the router at all.
        #[cfg(feature = "macros")]
        let global: Router = Router::new()
            .route("/items", get(attributed))
            .with_state(());
        #[cfg(feature = "macros")]
        if subject == "attribute-global" {
            larder::init(cache.clone()).expect("set once");
        }
        #[cfg(feature = "macros")]
        if subject.starts_with("attribute") {
            send(&attribute).await;
            send(&attribute).await;
        }
        // The miss, then the read that makes the hot copy.
        send(&cached).await;
        send(&cached).await;
        let parts = request().into_parts().0;
        let policy = Arc::new(policy);
        let mut total = 0;
        for _ in 0..n {
            total += match subject.as_str() {
                "plain" => send(&plain).await,
                "router" => send(&cached).await,
                #[cfg(feature = "macros")]
                "attribute" => send(&attribute).await,
                #[cfg(feature = "macros")]
                "attribute-global" => send(&global).await,
                _ => match cache.lookup(&parts, &policy).await {
                    Lookup::Respond(r) => r.body().len(),
                    _ => panic!("a miss"),
                },
            };
        }
        assert_eq!(total, n * BODY.len());
        eprintln!("{subject}: {n} requests; {:?}", cache.stats());
    });
}
