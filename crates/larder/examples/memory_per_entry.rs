//! How much memory a cached response costs in the [`MemoryStore`]: resident
//! bytes per entry for N entries of B body bytes, against B.
//!
//! Fills the store through the real engine, as a layer would on N misses
//! of distinct URIs: [`Cache::lookup`] forwards, [`Fill::complete`] stores a
//! `200` with the handler's usual headers (`content-type`) and a body of its
//! own allocation. The resident set size (`/proc/self/statm`, Linux only) is
//! read before the first entry and after the last, once the store has run
//! its pending work; the difference over N is the cost of one entry: the
//! encoded record (body, headers, key material), the map's slot and the
//! key, allocator slack. One warm-up entry is stored before the first
//! reading, so that the cache's own start-up allocations are not counted.
//! Then every entry is read once, as hits, and the resident set read
//! again: reading may cost memory too (a value's shared header).
//!
//! ```text
//! cargo run --release -p larder --example memory_per_entry
//! cargo run --release -p larder --example memory_per_entry -- 100000 1024   # entries, body bytes
//! ```
//!
//! Prints one line:
//! `entries=100000 body_bytes=1024 rss_before=… rss_after=… bytes_per_entry=… ratio=… weight_per_entry=… read_bytes_per_entry=…`
//! where `ratio` is bytes per entry over body bytes, `weight_per_entry`
//! what the store weighs each entry at against its capacity, and
//! `read_bytes_per_entry` the resident bytes per entry once all were read.
//! The store's byte bound is honest when the weight is at least the
//! resident cost.
//!
//! The `flood` mode checks the bound itself: N distinct keys of the
//! engine's shape, with values of B bytes, written straight into a store
//! of C bytes (far fewer than N fit), and the resident set read every
//! tenth of the way. The bound holds when the resident growth stays near
//! C (plus the map's constant bookkeeping) however many keys go by.
//!
//! ```text
//! cargo run --release -p larder --example memory_per_entry -- flood 1000000 64 16777216   # keys, value bytes, capacity
//! ```
//!
//! Prints one line per tenth and a last one:
//! `flood keys=… value_bytes=… capacity=… held=… weighted=… rss_growth=… max_rss_growth=… over_capacity=…`
//! where `over_capacity` is the largest growth over the capacity.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Request, Response};
use http_body_util::Full;
use larder::store::Store;
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

fn request(i: usize) -> http::request::Parts {
    Request::get(format!("/items/{i}"))
        .header(HOST, "example.com")
        .body(())
        .expect("request")
        .into_parts()
        .0
}

/// Reads `/items/{i}` through the engine: it must be a hit.
async fn read_one(cache: &Cache, policy: &Arc<Policy>, i: usize) {
    let parts = request(i);
    let Lookup::Respond(response) = cache.lookup(&parts, policy).await else {
        panic!("/items/{i} was not a hit");
    };
    assert_eq!(response.status(), 200, "/items/{i}");
}

/// Stores one response for `/items/{i}` through the engine.
async fn store_one(cache: &Cache, policy: &Arc<Policy>, i: usize, body_len: usize) {
    let mut parts = request(i);
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

/// Writes `keys` distinct keys into a store of `capacity` bytes and
/// watches the resident set.
async fn flood(keys: usize, value_bytes: usize, capacity: u64) {
    let store = MemoryStore::new(capacity);
    let ttl = Duration::from_secs(3600);
    let before = rss_bytes();
    let mut max_growth = 0u64;
    let report = |i: usize, store: &MemoryStore, max_growth: &mut u64| {
        let growth = rss_bytes().saturating_sub(before);
        *max_growth = (*max_growth).max(growth);
        println!(
            "flood keys={i} value_bytes={value_bytes} capacity={capacity} held={} weighted={} \
             rss_growth={growth} max_rss_growth={} over_capacity={}",
            store.len(),
            store.weighted_size(),
            *max_growth,
            max_growth.saturating_sub(capacity) as i64,
        );
    };
    for i in 0..keys {
        // The engine's key shape: prefix, namespace, generation, a hash.
        let key = format!(
            "larder:default:0:{{{:032x}}}",
            (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
        );
        let mut value = vec![b'a' + (i % 26) as u8; value_bytes];
        value[..8.min(value_bytes)]
            .copy_from_slice(&(i as u64).to_le_bytes()[..8.min(value_bytes)]);
        store.put(&key, Bytes::from(value), ttl).await.expect("put");
        // Read one key in eight back, as a cache's hits would.
        if i % 8 == 0 {
            let _ = store.get(&key).await;
        }
        if (i + 1) % (keys / 10).max(1) == 0 && i + 1 < keys {
            report(i + 1, &store, &mut max_growth);
        }
    }
    store.run_pending_tasks().await;
    report(keys, &store, &mut max_growth);
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("flood") {
        args.next();
        let mut number = |default: u64| {
            args.next()
                .map(|a| a.parse().expect("flood keys, value bytes, capacity"))
                .unwrap_or(default)
        };
        let (keys, value_bytes, capacity) = (number(1_000_000), number(64), number(16 << 20));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(flood(keys as usize, value_bytes as usize, capacity));
        return;
    }
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

        let weight = store.weighted_size() as f64 / (entries as f64 + 1.0);
        for i in 0..entries {
            read_one(&cache, &policy, i).await;
        }
        let read = rss_bytes();

        let per_entry = after.saturating_sub(before) as f64 / entries as f64;
        let read_per_entry = read.saturating_sub(before) as f64 / entries as f64;
        println!(
            "entries={entries} body_bytes={body_len} rss_before={before} rss_after={after} \
             bytes_per_entry={per_entry:.0} ratio={:.2} weight_per_entry={weight:.0} \
             read_bytes_per_entry={read_per_entry:.0}",
            per_entry / body_len as f64
        );
    });
}
