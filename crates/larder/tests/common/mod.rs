//! Shared test harness: a real axum `Router` driven with `oneshot`, a
//! handler that counts its calls, and a manual clock.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use larder::clock::ManualClock;
use larder::{Cache, MemoryStore};
use tower::ServiceExt;

pub const HOST: &str = "example.com";

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
