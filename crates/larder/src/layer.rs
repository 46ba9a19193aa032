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
            cache: self.cache.clone(),
        }
    }
}

/// A service whose requests carry a [`Cache`]. Made by [`ExtensionLayer`].
#[derive(Clone, Debug)]
pub struct ExtensionService<S> {
    inner: S,
    cache: Cache,
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
        Installed::add(request.extensions_mut(), &self.cache);
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
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready is the one we must call; keep a
        // fresh clone in its place for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let cache = self.cache.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
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
                cache.lookup(&parts, &policy).await
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
                    Ok(fill.complete(response).await)
                }
            }
        })
    }
}
