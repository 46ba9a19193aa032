//! Shared test harness: a real axum `Router` driven with `oneshot`, a
//! handler that counts its calls, and a manual clock.
//!
//! Behaviour tests run twice, once per [`Mount`]: the tower layer and the
//! `#[larder::cache]` attribute. [`both_mounts!`] turns one test body into
//! `layer::name` and `attribute::name`; the body builds its app through a
//! scenario function that takes the mount, and asserts the same either way.
#![allow(dead_code, unused_macros, unused_imports)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::routing::MethodRouter;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use larder::clock::ManualClock;
use larder::{Cache, MemoryStore};
use tower::ServiceExt;

pub const HOST: &str = "example.com";

/// How a scenario's handlers are cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// `cache.layer(policy)` around plain handlers.
    Layer,
    /// `#[larder::cache(..)]` handlers; the router carries `cache.extension()`.
    Attribute,
}

/// Runs each test body against both mounts:
///
/// ```text
/// both_mounts! {
///     #[tokio::test]
///     async fn name(mount) { let app = scenario(mount, &world); ... }
/// }
/// ```
/// makes `layer::name` and `attribute::name`.
macro_rules! both_mounts {
    ($($(#[$attr:meta])* async fn $name:ident($mount:ident) $body:block)*) => {
        mod layer {
            use super::*;
            $($(#[$attr])* async fn $name() {
                let $mount = Mount::Layer;
                $body
            })*
        }
        mod attribute {
            use super::*;
            $($(#[$attr])* async fn $name() {
                let $mount = Mount::Attribute;
                $body
            })*
        }
    };
}
pub(crate) use both_mounts;

/// The counter handlers bump, as axum state.
pub type Calls = Arc<AtomicUsize>;

/// 2023-11-14T22:13:20Z: a fixed start, so dates in assertions are stable.
pub fn epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub struct World {
    pub clock: ManualClock,
    pub store: Arc<MemoryStore>,
    pub cache: Cache,
    pub calls: Arc<AtomicUsize>,
}

impl World {
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    pub fn with(configure: impl FnOnce(larder::CacheBuilder) -> larder::CacheBuilder) -> Self {
        let clock = ManualClock::new(epoch());
        let store = Arc::new(MemoryStore::new(64 << 20));
        let builder = Cache::builder()
            .shared_store(store.clone())
            .clock(clock.clone())
            .legacy_status_header("x-cache");
        let cache = configure(builder).build();
        World {
            clock,
            store,
            cache,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// A counter a handler bumps; the test reads it through `calls()`.
    pub fn counter(&self) -> Arc<AtomicUsize> {
        self.calls.clone()
    }
}

impl World {
    /// A route cached by the mount: `plain` under the layer with `policy`,
    /// or `attributed`, whose `#[larder::cache]` options say the same.
    pub fn route<S>(
        &self,
        mount: Mount,
        policy: larder::Policy,
        plain: MethodRouter<S>,
        attributed: MethodRouter<S>,
    ) -> MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        match mount {
            Mount::Layer => plain.layer(self.cache.layer(policy)),
            Mount::Attribute => attributed,
        }
    }

    /// The finished app: attribute handlers find this world's cache (and
    /// so its manual clock) on the request, never in a global.
    pub fn app<S>(&self, mount: Mount, router: Router<S>, state: S) -> Router
    where
        S: Clone + Send + Sync + 'static,
    {
        let router = match mount {
            Mount::Layer => router,
            Mount::Attribute => router.layer(self.cache.extension()),
        };
        router.with_state(state)
    }
}

pub fn bump(counter: &AtomicUsize) -> usize {
    counter.fetch_add(1, Ordering::SeqCst) + 1
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn cache_status(&self) -> &str {
        self.header("cache-status").unwrap_or("")
    }

    pub fn is_hit(&self) -> bool {
        self.cache_status().contains("; hit")
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

pub fn request(method: &str, uri: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", HOST)
}

pub fn get(uri: &str) -> Request<Body> {
    request("GET", uri).body(Body::empty()).unwrap()
}

pub async fn get_reply(app: &Router, uri: &str) -> Reply {
    send(app, get(uri)).await
}

/// How long a test waits for something that must happen before it fails:
/// long enough that a request blocked for real fails the test, never so
/// short that a slow machine does. A hang guard, not a timing assertion.
pub const GUARD: Duration = Duration::from_secs(20);

/// Awaits `f`, failing the test (naming `what`) if it takes past [`GUARD`].
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {GUARD:?}"))
}

/// Polls until `done` holds (sleeping a little in between), within [`GUARD`].
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    within(what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
}

/// Sends the requests all at once, each from its own task, and returns the
/// replies in the order of `requests`, within [`GUARD`] (`what` names the
/// wait if it hangs).
pub async fn all_at_once(
    what: &str,
    app: &Router,
    requests: impl IntoIterator<Item = Request<Body>>,
) -> Vec<Reply> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let app = app.clone();
            tokio::spawn(async move { send(&app, request).await })
        })
        .collect();
    within(what, async {
        let mut replies = Vec::with_capacity(tasks.len());
        for task in tasks {
            replies.push(task.await.expect("a request task panicked"));
        }
        replies
    })
    .await
}

/// A store that fails every operation, as a dead Redis would.
pub struct DeadStore;

fn refused<'a, T: Send + 'a>() -> larder::store::StoreFuture<'a, T> {
    Box::pin(async { Err(larder::store::StoreError::new("dead", "connection refused")) })
}

impl larder::store::Store for DeadStore {
    fn get<'a>(&'a self, _: &'a str) -> larder::store::StoreFuture<'a, Option<Bytes>> {
        refused()
    }
    fn put<'a>(&'a self, _: &'a str, _: Bytes, _: Duration) -> larder::store::StoreFuture<'a, ()> {
        refused()
    }
    fn delete<'a>(&'a self, _: &'a str) -> larder::store::StoreFuture<'a, ()> {
        refused()
    }
    fn index_add<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Duration,
    ) -> larder::store::StoreFuture<'a, ()> {
        refused()
    }
    fn index_purge<'a>(&'a self, _: &'a str) -> larder::store::StoreFuture<'a, u64> {
        refused()
    }
    fn incr<'a>(&'a self, _: &'a str) -> larder::store::StoreFuture<'a, u64> {
        refused()
    }
    fn counter<'a>(&'a self, _: &'a str) -> larder::store::StoreFuture<'a, u64> {
        refused()
    }
}

/// What an [`ObservedStore`] runs after each read round trip (`get` or
/// `get_many`), before the read's result is handed back.
pub type AfterRead =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// A memory store that lets a test watch, or hold up, its reads.
#[derive(Clone)]
pub struct ObservedStore {
    pub inner: Arc<larder::MemoryStore>,
    after_read: AfterRead,
    /// Whether it offers the memory store's leases (the engine then
    /// coordinates fills through them) or none (in-process only).
    leases: bool,
}

impl ObservedStore {
    pub fn new(after_read: AfterRead) -> Self {
        ObservedStore {
            inner: Arc::new(larder::MemoryStore::new(1 << 20)),
            after_read,
            leases: false,
        }
    }

    /// The same store, offering leases.
    pub fn with_leases(mut self) -> Self {
        self.leases = true;
        self
    }
}

impl larder::store::Store for ObservedStore {
    fn get<'a>(&'a self, key: &'a str) -> larder::store::StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            let got = self.inner.get(key).await?;
            (self.after_read)().await;
            Ok(got)
        })
    }
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> larder::store::StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            let got = self.inner.get_many(keys).await?;
            (self.after_read)().await;
            Ok(got)
        })
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Duration,
    ) -> larder::store::StoreFuture<'a, ()> {
        self.inner.put(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a str) -> larder::store::StoreFuture<'a, ()> {
        self.inner.delete(key)
    }
    fn index_add<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        ttl: Duration,
    ) -> larder::store::StoreFuture<'a, ()> {
        self.inner.index_add(index, member, ttl)
    }
    fn index_purge<'a>(&'a self, index: &'a str) -> larder::store::StoreFuture<'a, u64> {
        self.inner.index_purge(index)
    }
    fn incr<'a>(&'a self, key: &'a str) -> larder::store::StoreFuture<'a, u64> {
        self.inner.incr(key)
    }
    fn counter<'a>(&'a self, key: &'a str) -> larder::store::StoreFuture<'a, u64> {
        self.inner.counter(key)
    }
    fn lease<'a>(
        &'a self,
        key: &'a str,
        holder: Bytes,
        ttl: Duration,
    ) -> larder::store::StoreFuture<'a, larder::store::Lease> {
        if !self.leases {
            return Box::pin(async { Ok(larder::store::Lease::Unsupported) });
        }
        self.inner.lease(key, holder, ttl)
    }
    fn end_lease<'a>(
        &'a self,
        key: &'a str,
        holder: Bytes,
        then: Option<(Bytes, Duration)>,
    ) -> larder::store::StoreFuture<'a, bool> {
        if !self.leases {
            return Box::pin(async { Ok(false) });
        }
        self.inner.end_lease(key, holder, then)
    }
}
