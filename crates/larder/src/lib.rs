//! larder: an HTTP response cache for Rust web services.
//!
//! Put a [`Cache`] in front of slow handlers, with the `#[larder::cache]`
//! attribute (feature `macros`) or a tower layer. Responses are stored with
//! the semantics of a shared HTTP cache (RFC 9111), announced with
//! `Cache-Status` (RFC 9211), and concurrent misses on one key run the
//! handler once.
//!
#![cfg_attr(
    feature = "macros",
    doc = r#"
With the attribute, the per-view decorator of Django's `cache_page` or
fastapi-cache's `@cache`, the handler stays as written:

```
use axum::{routing::get, Router};
use larder::Cache;

#[larder::cache(ttl = "15m", namespace = "items")]
async fn list_items() -> &'static str {
    "[\"apple\", \"pear\"]" // imagine a slow database query here
}

let cache = Cache::builder().build();
let app: Router = Router::new()
    .route("/items", get(list_items))
    .layer(cache.extension()); // or larder::init(cache) once, at startup
```

See [`cache`] for its options and [`memoize`] for plain async functions.
With the tower layer, the rules are a [`Policy`] value:
"#
)]
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use larder::{Cache, MemoryStore, Policy};
//!
//! async fn list_items() -> &'static str {
//!     // imagine a slow database query here
//!     "[\"apple\", \"pear\"]"
//! }
//!
//! async fn add_item() -> &'static str {
//!     "added"
//! }
//!
//! # async fn run() {
//! let cache = Cache::builder().store(MemoryStore::new(256 << 20)).build();
//! let app: Router = Router::new().route(
//!     "/items",
//!     get(list_items)
//!         .post(add_item) // a successful POST invalidates the cached GET
//!         .layer(cache.layer(Policy::ttl(Duration::from_secs(900)))),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! # let _ = (listener, app);
//! // axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! # The pieces
//!
//! - [`Policy`]: one route's rules. [`Policy::ttl`] caches for a fixed time,
//!   as Django's `cache_page` does; [`Policy::origin_headers`] is a shared
//!   cache that follows the response's `Cache-Control` and `Expires`.
//! - [`Cache`]: a store and how to use it; [`Cache::layer`] makes the tower
//!   layer, [`Cache::extension`] hands the cache to attribute handlers,
//!   [`init`] sets one up process-wide, [`Cache::stats`] tells what it did.
//! - [`store`]: where entries live. [`MemoryStore`] is the embedded default.
//! - [`policy`]: the HTTP caching rules as pure functions, usable on their own.
//! - [`Cache::lookup`] and [`Fill`]: the engine's two calls, for adapters to
//!   other frameworks; `larder::axum` is the one the attribute uses.
//!
//! # What clients see
//!
//! Every response the cache touched carries `Cache-Status`, e.g.
//! `larder; hit; ttl=376` or `larder; fwd=uri-miss; fwd-status=200; ttl=900; stored`;
//! stored responses carry `Age`. A store that fails, or an entry that cannot
//! be read, makes a miss, never an error.
#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod clock;
pub mod duration;
mod engine;
pub mod entry;
mod layer;
#[cfg(feature = "macros")]
pub mod memo;
pub mod policy;
mod registry;
pub mod store;

pub use duration::parse_duration;
pub use engine::{
    Cache, CacheBody, CacheBuilder, Failure, Fill, Lookup, PurgeError, Stats,
    DEFAULT_HOT_TIER_BYTES, DEFAULT_IN_FLIGHT_BYTES, DEFAULT_L1_TTL, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MEMORY_BYTES,
};
#[cfg(feature = "macros")]
pub use larder_macros::{cache, memoize};
pub use layer::{CacheFuture, CacheLayer, CacheService, ExtensionLayer, ExtensionService};
pub use policy::{ClientCacheControl, Heuristic, NotStored, Policy};
pub use registry::{global, global_named, init, InitError};
pub use store::MemoryStore;
/// The Redis store beside the memory one (also at `larder::store`).
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreBuilder};

/// What the attributes' expansions name; not a public API.
#[cfg(feature = "macros")]
#[doc(hidden)]
pub mod __private {
    pub use ::axum::response::Response;
    pub use http::{HeaderName, HeaderValue, StatusCode};
}
