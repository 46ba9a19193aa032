//! The axum adapter behind `#[larder::cache]`.
//!
//! The attribute turns a handler into one that also takes a
//! [`CacheRequest`] extractor (in a tuple with the handler's first one, so
//! that it takes as many arguments as the handler) and hands it, with the
//! handler's own future, to [`run`]. `run` does what the tower layer does: ask the engine,
//! answer from the cache or call the handler, and give the engine the
//! response. Nothing here decides anything about caching.
//!
//! Written by hand, without the attribute, a cached handler looks like this:
//!
//! ```
//! use std::time::Duration;
//! use axum::{response::Response, routing::get, Router};
//! use larder::axum::{run, CacheRequest, CachedRoute};
//! use larder::{Cache, Policy};
//!
//! async fn list_items() -> &'static str {
//!     "[\"apple\", \"pear\"]"
//! }
//!
//! static LIST_ITEMS: CachedRoute = CachedRoute::new("list_items", None, || {
//!     Policy::ttl(Duration::from_secs(900)).namespace("items")
//! });
//!
//! async fn cached_list_items(request: CacheRequest) -> Response {
//!     run(request, &LIST_ITEMS, list_items()).await
//! }
//!
//! let cache = Cache::builder().build();
//! let app: Router = Router::new()
//!     .route("/items", get(cached_list_items))
//!     .layer(cache.extension());
//! ```
//!
//! The handler's extractors run before the cache is asked, on the request
//! as the client sent it: a `HEAD` stays `HEAD` and conditional header
//! fields are still there (the tower layer, which runs first, hands the
//! handler a `GET` without them). The cache still answers `HEAD` and
//! conditional requests itself, from the full response the handler gives.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use ::axum::body::Body;
use ::axum::extract::FromRequestParts;
use ::axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::Request;

use crate::engine::Filling;
use crate::registry::{self, Installed};
use crate::{Cache, CacheBody, Lookup, Policy};

/// The extractor `#[larder::cache]` adds to a handler: what the cache needs
/// of the request (method, URI, version, header fields, whether a cache
/// layer further out is filling it) and the caches the request carries.
/// It takes nothing from the request, so it may stand before any other
/// extractor, a body extractor included. The attribute pairs it with the
/// handler's first extractor: in axum's errors about the handler's type,
/// `(CacheRequest<__larder_route_name>, T)` is that first argument `T`.
///
/// ```
/// use axum::response::Response;
/// use larder::axum::{run, CacheRequest, CachedRoute};
///
/// static ROUTE: CachedRoute = CachedRoute::new("echo", None, || {
///     larder::Policy::ttl(std::time::Duration::from_secs(60))
/// });
///
/// // The cache's extractor first, the body extractor last.
/// async fn echo(cache: CacheRequest, body: String) -> Response {
///     run(cache, &ROUTE, async move { body }).await
/// }
/// let app: axum::Router = axum::Router::new().route("/echo", axum::routing::post(echo));
/// ```
///
/// `#[larder::cache]` names its handler's route in the type
/// (`CacheRequest<R>`, see [`KnownRoute`]): the extractor then looks for a
/// hot-tier hit itself, on the request in place, and copies nothing when
/// it finds one. The hit is only sent from [`run`], after every other
/// extractor has run, so they still refuse a request as they would
/// without the cache.
pub struct CacheRequest<R: KnownRoute = ()> {
    taken: Taken,
    route: PhantomData<fn() -> R>,
}

enum Taken {
    /// What the engine reads of the request.
    Parts {
        parts: Parts,
        installed: Option<Installed>,
    },
    /// The hot tier's answer, found at extraction.
    Hit(http::Response<bytes::Bytes>),
}

impl<R: KnownRoute> std::fmt::Debug for CacheRequest<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.taken {
            Taken::Parts { parts, installed } => f
                .debug_struct("CacheRequest")
                .field("parts", parts)
                .field("installed", installed)
                .finish(),
            Taken::Hit(response) => f
                .debug_struct("CacheRequest")
                .field("hit", &response.status())
                .finish(),
        }
    }
}

/// The route a [`CacheRequest`] is extracted for, when its type says:
/// `#[larder::cache]` implements it for a type it makes per handler. `()`,
/// the default, knows no route (the extractor copies the request for
/// [`run`], which is given the route).
///
/// ```
/// use std::time::Duration;
/// use larder::axum::{CachedRoute, KnownRoute};
///
/// struct Items;
/// impl KnownRoute for Items {
///     fn route() -> Option<&'static CachedRoute> {
///         static ROUTE: CachedRoute = CachedRoute::new("items", None, || {
///             larder::Policy::ttl(Duration::from_secs(60))
///         });
///         Some(&ROUTE)
///     }
/// }
/// assert!(Items::route().is_some());
/// assert!(<() as KnownRoute>::route().is_none());
/// ```
pub trait KnownRoute: 'static {
    /// The route, if known.
    fn route() -> Option<&'static CachedRoute>;
}

impl KnownRoute for () {
    fn route() -> Option<&'static CachedRoute> {
        None
    }
}

impl<S: Send + Sync, R: KnownRoute> FromRequestParts<S> for CacheRequest<R> {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let installed = parts.extensions.get::<Installed>();
        if let Some(route) = R::route().filter(|r| !r.zero_ttl()) {
            let cache = registry::find(installed, route.cache, || route.global_cache());
            if let Some(response) = cache.and_then(|c| c.try_hit(parts, route.policy())) {
                return Ok(CacheRequest {
                    taken: Taken::Hit(response),
                    route: PhantomData,
                });
            }
        }
        let installed = installed.cloned();
        // Extensions stay behind: they are the other extractors' to take,
        // and the engine has no use for them.
        let (mut copy, ()) = Request::new(()).into_parts();
        copy.method = parts.method.clone();
        copy.uri = parts.uri.clone();
        copy.version = parts.version;
        copy.headers = parts.headers.clone();
        // Save one: whether a cache layer further out is filling this
        // request, so that the handler's use of that cache does not wait
        // for it.
        Filling::copy(&parts.extensions, &mut copy.extensions);
        Ok(CacheRequest {
            taken: Taken::Parts {
                parts: copy,
                installed,
            },
            route: PhantomData,
        })
    }
}

/// One cached handler: its name (for the log), the cache it asks for, and
/// its [`Policy`], built on first use. `#[larder::cache]` makes one `static`
/// of these per handler.
pub struct CachedRoute {
    handler: &'static str,
    cache: Option<&'static str>,
    make_policy: fn() -> Policy,
    policy: OnceLock<Arc<Policy>>,
    /// The process-wide cache this handler found, once found: [`init`]
    /// never replaces a cache it was given, so the lookup (a lock shared by
    /// every request) is made until it succeeds, then never again.
    ///
    /// [`init`]: crate::init
    global: OnceLock<Cache>,
    warned: AtomicBool,
    warned_read: AtomicBool,
    warned_zero: AtomicBool,
}

impl std::fmt::Debug for CachedRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedRoute")
            .field("handler", &self.handler)
            .field("cache", &self.cache)
            .field("policy", &self.policy.get())
            .finish_non_exhaustive()
    }
}

impl CachedRoute {
    /// A handler named `handler`, cached with the cache named `cache` (the
    /// innermost or default one when `None`) under the policy `policy`
    /// makes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::{axum::CachedRoute, Policy};
    ///
    /// static ROUTE: CachedRoute = CachedRoute::new("profile", Some("sessions"), || {
    ///     Policy::ttl(Duration::from_secs(30))
    /// });
    /// assert_eq!(ROUTE.policy().namespace_name(), "default");
    /// ```
    pub const fn new(
        handler: &'static str,
        cache: Option<&'static str>,
        policy: fn() -> Policy,
    ) -> Self {
        CachedRoute {
            handler,
            cache,
            make_policy: policy,
            policy: OnceLock::new(),
            global: OnceLock::new(),
            warned: AtomicBool::new(false),
            warned_read: AtomicBool::new(false),
            warned_zero: AtomicBool::new(false),
        }
    }

    /// The handler's policy.
    pub fn policy(&self) -> &Arc<Policy> {
        self.policy.get_or_init(|| Arc::new((self.make_policy)()))
    }

    /// Says once per handler that a GET or HEAD reached a write handler
    /// (no `ttl`), which therefore runs uncached: most likely a `ttl` was
    /// forgotten.
    fn read_on_write(&self, parts: &Parts) {
        if !self.policy().is_write()
            || !(parts.method == http::Method::GET || parts.method == http::Method::HEAD)
            || self.warned_read.swap(true, Ordering::Relaxed)
        {
            return;
        }
        tracing::warn!(
            handler = self.handler,
            "larder: #[larder::cache] handler `{}` has no `ttl`, so it is a write handler that \
             caches nothing, and a {} reached it uncached: give it a `ttl` such as \
             #[larder::cache(ttl = \"15m\")] to cache its GETs",
            self.handler,
            parts.method,
        );
    }

    /// Whether the policy's `ttl` is zero, which caches nothing: a `ttl`
    /// given as an expression (`ttl = TTL`) is only known at run time. The
    /// handler then runs uncached, and one error per handler says why.
    fn zero_ttl(&self) -> bool {
        let policy = self.policy();
        let zero = matches!(policy.mode(), crate::policy::Mode::RouteTtl(ttl) if ttl.is_zero())
            && !policy.is_write();
        if zero && !self.warned_zero.swap(true, Ordering::Relaxed) {
            tracing::error!(
                handler = self.handler,
                "larder: #[larder::cache] handler `{}` runs uncached: {}",
                self.handler,
                crate::duration::ZERO_TTL,
            );
        }
        zero
    }

    /// The process-wide cache this handler uses, if [`crate::init`] was
    /// given it.
    fn global_cache(&self) -> Option<&Cache> {
        if let Some(cache) = self.global.get() {
            return Some(cache);
        }
        let found = registry::lookup(self.cache)?;
        Some(self.global.get_or_init(|| found))
    }

    /// Says once per handler that it found no cache, and how to give it one.
    fn no_cache(&self) {
        if self.warned.swap(true, Ordering::Relaxed) {
            return;
        }
        match self.cache {
            None => tracing::error!(
                handler = self.handler,
                "larder: #[larder::cache] handler `{}` found no cache, so it runs uncached: \
                 add `.layer(cache.extension())` to its router, or call `larder::init(cache)` at startup",
                self.handler,
            ),
            Some(name) => tracing::error!(
                handler = self.handler,
                cache = name,
                "larder: #[larder::cache] handler `{}` found no cache named {name:?}, so it runs uncached: \
                 build one with `Cache::builder().name({name:?})` and add `.layer(cache.extension())` \
                 to the router or call `larder::init(cache)` at startup",
                self.handler,
            ),
        }
    }
}

/// Runs a cached handler: answers from the cache, or awaits `handler` and
/// gives its response to the cache. What `#[larder::cache]` expands to.
///
/// Without a cache (none on the request, none set with [`crate::init`]),
/// or with a `ttl` of zero, the handler runs uncached and one error is
/// logged for it.
///
/// The handler's future is `Send + 'static` (axum handlers' futures are):
/// when the client is answered from a stale entry, it runs in a spawned
/// task to refresh it (stale-while-revalidate, early refresh).
pub async fn run<F, R>(request: CacheRequest<R>, route: &CachedRoute, handler: F) -> Response
where
    F: Future + Send + 'static,
    F::Output: IntoResponse,
    R: KnownRoute,
{
    let (parts, installed) = match request.taken {
        // Every extractor has run: the hit found at extraction is sent.
        Taken::Hit(response) => return CacheBody::<Body>::for_response(response).map(Body::new),
        Taken::Parts { parts, installed } => (parts, installed),
    };
    // Boxed: axum moves a handler's future by value and boxes it on every
    // request, and a future is as large as its largest state; inline, the
    // long way's (the store read, the fill) made every hit copy kilobytes.
    Box::pin(long_way(parts, installed, route, handler)).await
}

async fn long_way<F>(
    parts: Parts,
    installed: Option<Installed>,
    route: &CachedRoute,
    handler: F,
) -> Response
where
    F: Future + Send + 'static,
    F::Output: IntoResponse,
{
    if route.zero_ttl() {
        return handler.await.into_response();
    }
    let Some(cache) = registry::find(installed.as_ref(), route.cache, || route.global_cache())
    else {
        route.no_cache();
        return handler.await.into_response();
    };
    route.read_on_write(&parts);
    respond(cache, &parts, route.policy(), handler).await
}

async fn respond<F>(cache: &Cache, parts: &Parts, policy: &Arc<Policy>, handler: F) -> Response
where
    F: Future + Send + 'static,
    F::Output: IntoResponse,
{
    // A hot hit answers here, synchronously; the long way is boxed so that
    // the handler's future (which axum moves and boxes on every request)
    // does not carry its state.
    if let Some(response) = cache.try_hit(parts, policy) {
        return CacheBody::<Body>::for_response(response).map(Body::new);
    }
    match Box::pin(cache.lookup_past_hot(parts, policy)).await {
        Lookup::Respond(response) => CacheBody::<Body>::for_response(response).map(Body::new),
        Lookup::Refresh(response, fill) => {
            // The extractors have run; the handler's future owns what they
            // took, so it can finish after the client has its answer.
            tokio::spawn(async move {
                let fresh = handler.await.into_response();
                drop(fill.complete(fresh).await);
            });
            CacheBody::<Body>::for_response(response).map(Body::new)
        }
        Lookup::Forward(fill) => {
            // No `fill.prepare`: the handler's extractors have already read
            // the request. The engine answers HEAD and preconditions from
            // the full response either way.
            let response = handler.await.into_response();
            // Boxed apart, as in the layer: the fill's future is kilobytes.
            Box::pin(fill.complete(response)).await.map(Body::new)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROUTE: CachedRoute = CachedRoute::new("items", None, || {
        Policy::ttl(std::time::Duration::from_secs(60))
    });

    /// axum builds a handler's future and copies it into a box on every
    /// request, hits included: the long way's state (the store read, the
    /// fill) must not be part of it. Inline, it made the future 7.5 KB (a
    /// debug build; 504 bytes boxed).
    #[test]
    fn a_cached_handlers_future_does_not_carry_the_long_way() {
        let (parts, ()) = Request::new(()).into_parts();
        let request = CacheRequest::<()> {
            taken: Taken::Parts {
                parts,
                installed: None,
            },
            route: PhantomData,
        };
        let future = run(request, &ROUTE, async { "items" });
        let size = std::mem::size_of_val(&future);
        assert!(
            size <= 1024,
            "larder::axum::run's future is {size} bytes: box what only a miss needs"
        );
    }
}
