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
mod decimal;
pub mod duration;
mod engine;
pub mod entry;
mod last_value;
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

/// The two halves of [`Cache::lookup`], for adapters that answer a hot
/// hit without making the lookup's future (the Python extension, which
/// would otherwise move that future, a few kilobytes, into a box per
/// request). Not a public API: its names follow the engine's.
#[doc(hidden)]
pub mod __adapter {
    use std::sync::Arc;

    use bytes::Bytes;
    use http::{request, Response};

    use crate::{Cache, Lookup, Policy};

    /// What [`Cache::lookup`] tries first, synchronously: the response of
    /// a fresh hot-tier copy, if the long way would have served it as a
    /// hit. Call inside the tokio runtime's context.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new().unwrap();
    /// # let _context = runtime.enter();
    /// use std::time::Duration;
    /// use larder::{Cache, Policy};
    ///
    /// let cache = Cache::builder().build();
    /// let policy = Policy::ttl(Duration::from_secs(60));
    /// let (parts, ()) = http::Request::get("http://example.com/a").body(()).unwrap().into_parts();
    /// assert!(larder::__adapter::try_hit(&cache, &parts, &policy).is_none()); // nothing cached yet
    /// ```
    pub fn try_hit(
        cache: &Cache,
        parts: &request::Parts,
        policy: &Policy,
    ) -> Option<Response<Bytes>> {
        cache.try_hit(parts, policy)
    }

    /// The rest of [`Cache::lookup`], once [`try_hit`] declined.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::{sync::Arc, time::Duration};
    /// use larder::{Cache, Lookup, Policy};
    ///
    /// let cache = Cache::builder().build();
    /// let policy = Arc::new(Policy::ttl(Duration::from_secs(60)));
    /// let (parts, ()) = http::Request::get("http://example.com/a").body(()).unwrap().into_parts();
    /// if larder::__adapter::try_hit(&cache, &parts, &policy).is_none() {
    ///     let lookup = larder::__adapter::lookup_past_hot(&cache, &parts, &policy).await;
    ///     assert!(matches!(lookup, Lookup::Forward(_)));
    /// }
    /// # });
    /// ```
    pub async fn lookup_past_hot(
        cache: &Cache,
        parts: &request::Parts,
        policy: &Arc<Policy>,
    ) -> Lookup {
        cache.lookup_past_hot(parts, policy).await
    }
}
