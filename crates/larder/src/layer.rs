//! The tower layer: caching for any tower HTTP service.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use larder::{Cache, Policy};
//!
//! async fn list_items() -> &'static str {
//!     "[\"apple\", \"pear\"]" // imagine a slow database query here
//! }
//!
//! let cache = Cache::builder().build(); // in-memory, 64 MiB
//! let app: Router = Router::new()
//!     // One route, cached for 15 minutes:
//!     .route("/items", get(list_items).layer(cache.layer(Policy::ttl(Duration::from_secs(900)))))
//!     // Or every route of a router, origin-headers mode (RFC 9111 shared cache):
//!     .layer(cache.layer(Policy::origin_headers()));
//! ```
//!
//! Put the layer on the whole method router (`get(list).post(create).layer(..)`)
//! or on the router, so that a successful POST, PUT, PATCH or DELETE reaches
//! it and invalidates the URI's cached GET (RFC 9111 §4.4). A route that only
//! writes can take [`Policy::write`], and name the namespaces of the GETs it
//! changes with [`Policy::invalidates`].
//!
//! One cache may meet a request more than once (a router's layer, a route's
//! layer, a `#[larder::cache]` handler): the outermost use that misses fills
//! the key, and inner uses of the same key pass the request through to the
//! handler instead of waiting for that fill, so the outermost policy is the
//! one that stores (it also answers the hits).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use crate::policy::storable;
use crate::registry::Installed;
use crate::{Cache, CacheBody, Lookup, NotStored, Policy};

impl Cache {
    /// A tower layer that caches what the wrapped service answers, under
    /// `policy`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::{routing::get, Router};
    /// use larder::{Cache, Policy};
    ///
    /// let cache = Cache::builder().build();
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "hi" }).layer(cache.layer(Policy::ttl(Duration::from_secs(60)))));
    /// ```
    pub fn layer(&self, policy: Policy) -> CacheLayer {
        CacheLayer {
            cache: self.clone(),
            policy: Arc::new(policy),
        }
    }
}

impl Cache {
    /// A tower layer that caches nothing itself: it hands this cache to the
    /// `#[larder::cache]` handlers below it, as a request extension. Use it
    /// on a router whose handlers carry the attribute.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use larder::Cache;
    ///
    /// # async fn list_items() -> &'static str { "items" }
    /// let cache = Cache::builder().build();
    /// let app: Router = Router::new()
    ///     .route("/items", get(list_items))
    ///     .layer(cache.extension());
    /// ```
    pub fn extension(&self) -> ExtensionLayer {
        ExtensionLayer {
            cache: self.clone(),
        }
    }
}

/// Hands a [`Cache`] to the handlers below it. Made by [`Cache::extension`].
#[derive(Clone, Debug)]
pub struct ExtensionLayer {
    cache: Cache,
}

impl<S> Layer<S> for ExtensionLayer {
    type Service = ExtensionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ExtensionService {
            inner,
            installed: Installed::of(&self.cache),
        }
    }
}

/// A service whose requests carry a [`Cache`]. Made by [`ExtensionLayer`].
#[derive(Clone, Debug)]
pub struct ExtensionService<S> {
    inner: S,
    installed: Installed,
}

impl<S, B> Service<Request<B>> for ExtensionService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        Installed::add_alone(request.extensions_mut(), &self.installed);
        self.inner.call(request)
    }
}

/// Applies a [`Cache`] with one [`Policy`] to a service. Made by
/// [`Cache::layer`].
#[derive(Clone, Debug)]
pub struct CacheLayer {
    cache: Cache,
    policy: Arc<Policy>,
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            cache: self.cache.clone(),
            policy: self.policy.clone(),
        }
    }
}

/// A service whose responses are cached. Made by [`CacheLayer`].
#[derive(Clone, Debug)]
pub struct CacheService<S> {
    inner: S,
    cache: Cache,
    policy: Arc<Policy>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Send,
{
    type Response = Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = CacheFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let mut request = request;
        let plain = !storable::unannounced_body(
            request.method(),
            request.version(),
            request.body().is_end_stream(),
        );
        if plain {
            // A hot-tier hit is answered here and now: no task state, no
            // box, no clone of the service.
            let (parts, body) = request.into_parts();
            if let Some(response) = self.cache.try_hit(&parts, &self.policy) {
                return CacheFuture::ready(Ok(CacheBody::for_response(response)));
            }
            request = Request::from_parts(parts, body);
        }
        // The service that was polled ready is the one we must call; keep a
        // fresh clone in its place for the next request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let cache = self.cache.clone();
        let policy = self.policy.clone();
        CacheFuture::boxed(long_way(request, inner, cache, policy))
    }
}

/// A request the hot tier did not answer: the lookup, then the handler
/// and the fill. Its own function so that its size can be tested: it is
/// made and copied for every such request, store hits included.
async fn long_way<S, ReqBody, ResBody>(
    request: Request<ReqBody>,
    mut inner: S,
    cache: Cache,
    policy: Arc<Policy>,
) -> Result<Response<CacheBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Body + Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Send,
{
    let (mut parts, body) = request.into_parts();
    // The layer alone sees the body; the rule is policy's.
    let unannounced_body =
        storable::unannounced_body(&parts.method, parts.version, body.is_end_stream());
    let lookup = if unannounced_body {
        Lookup::Forward(Box::new(cache.forward_uncached(
            &parts,
            &policy,
            NotStored::RequestBody,
        )))
    } else {
        cache.lookup_past_hot(&parts, &policy).await
    };
    match lookup {
        Lookup::Respond(response) => Ok(CacheBody::for_response(response)),
        Lookup::Refresh(response, fill) => {
            // The client has its answer; the same request, without
            // a body to replay (a cacheable request has none), now
            // refreshes the entry in the background.
            fill.prepare(&mut parts);
            Installed::add(&mut parts.extensions, &cache);
            let request = Request::from_parts(parts, body);
            tokio::spawn(async move {
                // A service error abandons the refresh: the entry
                // stays as it is until it expires.
                let response = inner.call(request).await.ok();
                if let Some(response) = response {
                    drop(fill.complete(response).await);
                }
            });
            Ok(CacheBody::for_response(response))
        }
        Lookup::Forward(fill) => {
            fill.prepare(&mut parts);
            // `#[larder::cache]` handlers behind this layer use this
            // cache. Only forwarded requests reach them, so a hit
            // does not pay for the extension.
            Installed::add(&mut parts.extensions, &cache);
            let response = match inner.call(Request::from_parts(parts, body)).await {
                Ok(response) => response,
                // No answer at all: a stale one may stand in.
                Err(e) => {
                    return match fill.stale_on_error() {
                        Some(stale) => Ok(CacheBody::for_response(stale)),
                        None => Err(e),
                    }
                }
            };
            // Boxed apart: the fill's future is several kilobytes, and
            // inline this future (made and copied for every request
            // the hot tier does not answer, store hits too) was 7 KB.
            Ok(Box::pin(fill.complete(response)).await)
        }
    }
}

/// The future a [`CacheService`] returns: ready at once for a hot-tier
/// hit, boxed for everything else (a lookup in the store, the handler).
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, Layer, Service, ServiceExt};
/// use larder::{Cache, Policy};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let cache = Cache::builder().build();
/// let handler = service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("items")))
/// });
/// let mut service = cache.layer(Policy::ttl(Duration::from_secs(60))).layer(handler);
/// let request = || http::Request::get("http://example.com/items").body(String::new()).unwrap();
/// // The first request misses; its store read copies nothing (a fill is no read).
/// service.ready().await.unwrap().call(request()).await.unwrap();
/// // The second reads the store and keeps a copy; the third is a hot hit.
/// service.ready().await.unwrap().call(request()).await.unwrap();
/// let future = service.ready().await.unwrap().call(request());
/// let response = future.await.unwrap();
/// assert!(response.headers()["cache-status"].to_str().unwrap().contains("hit"));
/// assert_eq!(cache.stats().hot_hits, 1);
/// # });
/// ```
pub struct CacheFuture<R, E> {
    state: FutureState<R, E>,
}

type BoxedResult<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

enum FutureState<R, E> {
    Ready(Option<Result<R, E>>),
    Boxed(BoxedResult<R, E>),
}

impl<R, E> CacheFuture<R, E> {
    fn ready(result: Result<R, E>) -> Self {
        CacheFuture {
            state: FutureState::Ready(Some(result)),
        }
    }

    fn boxed(future: impl Future<Output = Result<R, E>> + Send + 'static) -> Self {
        CacheFuture {
            state: FutureState::Boxed(Box::pin(future)),
        }
    }
}

// Nothing in it is ever pinned in place: the result is moved out whole,
// and the boxed future is pinned on the heap.
impl<R, E> Unpin for CacheFuture<R, E> {}

impl<R, E> Future for CacheFuture<R, E> {
    type Output = Result<R, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            FutureState::Ready(result) => match result.take() {
                Some(result) => Poll::Ready(result),
                None => panic!("CacheFuture polled after it completed"),
            },
            FutureState::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl<R, E> std::fmt::Debug for CacheFuture<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            FutureState::Ready(_) => "ready",
            FutureState::Boxed(_) => "boxed",
        };
        f.debug_struct("CacheFuture")
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use super::*;

    /// The long way's future is made and copied for every request the hot
    /// tier does not answer, store hits included: the fill's (kilobytes)
    /// is boxed apart, not carried in it.
    #[test]
    fn the_long_ways_future_does_not_carry_the_fill() {
        let cache = Cache::builder().build();
        let policy = Arc::new(Policy::ttl(Duration::from_secs(60)));
        let inner = tower::service_fn(|_request: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::from("items")))
        });
        let request = Request::get("/items").body(String::new()).unwrap();
        let size = std::mem::size_of_val(&long_way(request, inner, cache, policy));
        assert!(
            size <= 3072,
            "the layer's long way is a {size}-byte future: box what only a miss awaits"
        );
    }
}
