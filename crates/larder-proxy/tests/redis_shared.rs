//! Two proxies sharing one real `redis-server`: a response fetched through
//! one is a hit on the other, a purge on one is seen by both, and a Redis
//! that goes away never fails a request.

mod common;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use common::{get, proxy, Upstream};
use support::redis::RedisServer;

/// The `[server]` lines of a proxy on `server`. A generous command
/// timeout: the default 50 ms is what production wants, and what a loaded
/// test machine misses now and then (a put that times out is a miss the
/// test would take for a bug).
fn redis_lines(server: &RedisServer) -> String {
    format!("redis = \"{}\"\nredis_timeout = \"5s\"\n", server.url())
}

/// The store connects in the background and the proxy serves meanwhile,
/// as a miss it neither reads nor writes (`fwd=miss`, nothing stored):
/// wait, bounded, until a response is stored or hit, i.e. Redis is in use.
async fn until_redis_is_used(addr: SocketAddr) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let status = get(addr, "/warm-up").await.cache_status().to_owned();
            if status.contains("stored") || status.contains("hit") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the proxy reaches redis");
}

#[tokio::test]
async fn a_fleet_of_proxies_shares_one_cache_through_redis() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let up = Upstream::start().await;
    let redis = redis_lines(&server);
    let a = proxy(&up.url(), &redis, "").await;
    let b = proxy(&up.url(), &redis, "").await;
    until_redis_is_used(a.addr()).await;
    until_redis_is_used(b.addr()).await;
    let first = get(a.addr(), "/items").await;
    assert!(
        first.cache_status().contains("stored"),
        "{}",
        first.cache_status()
    );
    let other = get(b.addr(), "/items").await;
    assert!(
        other.cache_status().contains("hit"),
        "{}",
        other.cache_status()
    );
    assert_eq!(up.gets("/items"), 1);
    // Tags from response headers purge on every proxy.
    get(a.addr(), "/tagged").await;
    assert!(get(b.addr(), "/tagged")
        .await
        .cache_status()
        .contains("hit"));
    assert_eq!(b.cache().purge_tag("product-1").await.unwrap(), 1);
    assert!(!get(a.addr(), "/tagged")
        .await
        .cache_status()
        .contains("hit"));
}

#[tokio::test]
async fn a_redis_outage_never_fails_a_request() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let up = Upstream::start().await;
    let p = proxy(&up.url(), &redis_lines(&server), "").await;
    until_redis_is_used(p.addr()).await;
    let first = get(p.addr(), "/items").await;
    let second = get(p.addr(), "/items").await;
    assert!(
        second.cache_status().contains("hit"),
        "{} then {}",
        first.cache_status(),
        second.cache_status()
    );
    server.kill();
    for _ in 0..3 {
        let got = get(p.addr(), "/items").await;
        assert_eq!(got.status, 200);
        assert_eq!(got.text(), "body of /items");
    }
}
