//! How much memory a cached response costs in the [`MemoryStore`]: resident
//! bytes per entry for N entries of B body bytes, against B.
//!
//! Fills the store through the real engine, as a layer would on N misses
//! of distinct URIs: [`Cache::lookup`] forwards, [`Fill::complete`] stores a
//! `200` with the handler's usual headers (`content-type`) and a body of its
//! own allocation. The resident set size (`/proc/self/statm`, Linux only) is
//! read before the first entry and after the last, once the store has run
//! its pending work; the difference over N is the cost of one entry: the
//! encoded record (body, headers, key material), the moka entry and its
//! key, allocator slack. One warm-up entry is stored before the first
//! reading, so that the cache's own start-up allocations are not counted.
//!
//! ```text
//! cargo run --release -p larder --example memory_per_entry
//! cargo run --release -p larder --example memory_per_entry -- 100000 1024   # entries, body bytes
//! ```
//!
//! Prints one line:
//! `entries=100000 body_bytes=1024 rss_before=… rss_after=… bytes_per_entry=… ratio=…`
//! where `ratio` is bytes per entry over body bytes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Request, Response};
use http_body_util::Full;
use larder::{Cache, Lookup, MemoryStore, Policy};

/// Resident set size in bytes, from `/proc/self/statm` (second field, in
/// pages).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm")
        .expect("/proc/self/statm (this example needs Linux)");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages in /proc/self/statm");
    pages * page_size()
}

/// The page size `getconf` reports, else 4 KiB.
fn page_size() -> u64 {
    std::process::Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Stores one response for `/items/{i}` through the engine.
async fn store_one(cache: &Cache, policy: &Arc<Policy>, i: usize, body_len: usize) {
    let mut parts = Request::get(format!("/items/{i}"))
        .header(HOST, "example.com")
        .body(())
        .expect("request")
        .into_parts()
        .0;
    let Lookup::Forward(fill) = cache.lookup(&parts, policy).await else {
        panic!("/items/{i} was already cached");
    };
    fill.prepare(&mut parts);
    // Each body its own allocation, as a handler's would be; distinct
    // contents so nothing could share them.
    let mut body = vec![b'a' + (i % 26) as u8; body_len];
    body[..8].copy_from_slice(&(i as u64).to_le_bytes());
    let response = Response::builder()
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(Full::new(Bytes::from(body)))
        .expect("response");
    let response = fill.complete(response).await;
    let status = response
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(status.contains("stored"), "/items/{i} not stored: {status}");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let entries: usize = args
        .next()
        .map(|a| a.parse().expect("entries must be a number"))
        .unwrap_or(100_000);
    let body_len: usize = args
        .next()
        .map(|a| a.parse().expect("body bytes must be a number"))
        .unwrap_or(1024);
    assert!(body_len >= 8, "bodies of at least 8 bytes");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        // Room for every entry several times over: nothing may be evicted.
        let store = MemoryStore::new(2 * (entries as u64) * (body_len as u64 + 1024));
        let cache = Cache::builder().store(store.clone()).build();
        let policy = Arc::new(Policy::ttl(Duration::from_secs(3600)));

        store_one(&cache, &policy, usize::MAX, body_len).await;
        tokio::task::yield_now().await;
        store.run_pending_tasks().await;
        let before = rss_bytes();
        for i in 0..entries {
            store_one(&cache, &policy, i, body_len).await;
            // A fill ends its store lease in a spawned task; let it run, as
            // a server's runtime would between requests. Without this the
            // ended leases pile up in the store until the loop is done.
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        store.run_pending_tasks().await;
        let after = rss_bytes();
        assert_eq!(
            store.len(),
            entries as u64 + 1,
            "entries were evicted: the figure would be too low"
        );

        let per_entry = after.saturating_sub(before) as f64 / entries as f64;
        println!(
            "entries={entries} body_bytes={body_len} rss_before={before} rss_after={after} \
             bytes_per_entry={per_entry:.0} ratio={:.2}",
            per_entry / body_len as f64
        );
    });
}
