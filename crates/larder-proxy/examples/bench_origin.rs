//! The origin `bench/proxy_hits.sh` puts larder and nginx in front of, and
//! the plain baseline they are measured against: one axum server answering
//! the same N bytes on two paths.
//!
//! - `/obj/{n}`: `n` bytes with `Cache-Control: public, max-age=3600`, for
//!   the caches to store. Counted: after the warm-up every request should be
//!   a hit, so this count must not move while they are measured.
//! - `/plain/{n}`: the same bytes and headers, loaded directly: the limit of
//!   any proxy in front of it (a plain handler on the same machine).
//! - `/count`: how many `/obj` requests reached the origin.
//!
//! ```text
//! cargo run --release -p larder-proxy --example bench_origin -- 127.0.0.1:3000
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;

#[derive(Clone)]
struct Origin {
    small: Bytes,
    large: Bytes,
    obj_requests: Arc<AtomicU64>,
}

impl Origin {
    fn bytes(&self, n: usize) -> Bytes {
        match n {
            1024 => self.small.clone(),
            65536 => self.large.clone(),
            n => payload(n.min(1 << 20)),
        }
    }
}

/// `n` printable bytes, the same on every run.
fn payload(n: usize) -> Bytes {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn answer(body: Bytes) -> Response {
    (
        [
            (CONTENT_TYPE, "application/octet-stream"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn obj(State(o): State<Origin>, Path(n): Path<usize>) -> Response {
    o.obj_requests.fetch_add(1, Ordering::Relaxed);
    answer(o.bytes(n))
}

async fn plain(State(o): State<Origin>, Path(n): Path<usize>) -> Response {
    answer(o.bytes(n))
}

async fn count(State(o): State<Origin>) -> String {
    format!("{}\n", o.obj_requests.load(Ordering::Relaxed))
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let origin = Origin {
        small: payload(1024),
        large: payload(65536),
        obj_requests: Arc::default(),
    };
    let app = Router::new()
        .route("/obj/{n}", get(obj))
        .route("/plain/{n}", get(plain))
        .route("/count", get(count))
        .with_state(origin);
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("bench_origin on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
