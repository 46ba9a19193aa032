//! One conformance suite for every store: memory, Redis on one node, and a
//! three-master Redis Cluster. Each test runs against each store (the ones
//! that write what larder never would under its keys run against the
//! stores that can hold it).

mod common;
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::*;
use larder::store::{Lease, Store};
use larder::Policy;

/// A store for one test, a way around it to its data, and whatever keeps
/// it alive (a Redis process).
type Subject = (Arc<dyn Store>, Raw, Box<dyn std::any::Any + Send>);

/// Direct access to what a store holds, bypassing larder: to write there
/// what another program could.
enum Raw {
    Memory(larder::MemoryStore),
    /// `redis-cli` against this port (`-c`: follow a cluster's redirects);
    /// port 0 is a server the test did not start.
    Redis {
        port: u16,
        cluster: bool,
    },
}

impl Raw {
    /// Runs a Redis command with `redis-cli`, returning its output.
    fn cli(&self, args: &[&str]) -> String {
        let Raw::Redis { port, cluster } = *self else {
            panic!("the memory store has no command line");
        };
        assert_ne!(port, 0, "a server the test did not start");
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        if cluster {
            cmd.arg("-c");
        }
        let out = cmd.args(args).output().expect("redis-cli runs");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // redis-cli exits 0 on an error reply; it prints the code first.
        let refused = ["ERR", "WRONGTYPE", "MOVED", "CROSSSLOT"]
            .iter()
            .any(|code| text.starts_with(code));
        assert!(
            out.status.success() && !refused,
            "redis-cli {args:?}: {text}"
        );
        text
    }

    /// False for a Redis the test did not start (`LARDER_TEST_REDIS_URL`).
    fn usable(&self) -> bool {
        !matches!(self, Raw::Redis { port: 0, .. })
    }
}

fn memory() -> Option<Subject> {
    let store = larder::MemoryStore::new(16 << 20);
    Some((Arc::new(store.clone()), Raw::Memory(store), Box::new(())))
}

#[cfg(feature = "redis")]
async fn redis() -> Option<Subject> {
    let server = support::redis::RedisServer::start()?;
    let store = larder::store::RedisStore::builder(server.url())
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects to the test redis-server");
    let raw = Raw::Redis {
        port: server.port,
        cluster: false,
    };
    Some((Arc::new(store), raw, Box::new(server)))
}

#[cfg(feature = "redis")]
async fn cluster() -> Option<Subject> {
    let cluster = support::redis::RedisCluster::start()?;
    let store = larder::store::RedisStore::builder(cluster.url())
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects to the test cluster");
    let raw = Raw::Redis {
        port: cluster.nodes[0].port,
        cluster: true,
    };
    Some((Arc::new(store), raw, Box::new(cluster)))
}

async fn get_put_delete(store: Arc<dyn Store>) {
    assert_eq!(store.get("larder:t:{a}").await.unwrap(), None);
    store
        .put(
            "larder:t:{a}",
            Bytes::from_static(b"\x00\xffbinary"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get("larder:t:{a}").await.unwrap(),
        Some(Bytes::from_static(b"\x00\xffbinary"))
    );
    store
        .put(
            "larder:t:{a}",
            Bytes::from_static(b"replaced"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get("larder:t:{a}").await.unwrap(),
        Some(Bytes::from_static(b"replaced"))
    );
    store.delete("larder:t:{a}").await.unwrap();
    assert_eq!(store.get("larder:t:{a}").await.unwrap(), None);
    store.delete("larder:t:{absent}").await.unwrap();
}

async fn get_many_in_order(store: Arc<dyn Store>) {
    store
        .put(
            "larder:t:{m}:2",
            Bytes::from_static(b"two"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let keys = ["larder:t:{m}".to_owned(), "larder:t:{m}:2".to_owned()];
    assert_eq!(
        store.get_many(&keys).await.unwrap(),
        vec![None, Some(Bytes::from_static(b"two"))]
    );
}

async fn ttl_expires(store: Arc<dyn Store>) {
    store
        .put(
            "larder:t:{short}",
            Bytes::from_static(b"v"),
            Duration::from_millis(30),
        )
        .await
        .unwrap();
    store
        .put(
            "larder:t:{long}",
            Bytes::from_static(b"v"),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    // The store's own clock decides; wait for it (bounded), assert no times.
    let mut gone = false;
    for _ in 0..500 {
        if store.get("larder:t:{short}").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "an entry outlived its TTL");
    assert!(store.get("larder:t:{long}").await.unwrap().is_some());
}

async fn counters(store: Arc<dyn Store>) {
    assert_eq!(store.counter("larder:ns:x:gen").await.unwrap(), 0);
    assert_eq!(store.incr("larder:ns:x:gen").await.unwrap(), 1);
    assert_eq!(store.incr("larder:ns:x:gen").await.unwrap(), 2);
    assert_eq!(store.counter("larder:ns:x:gen").await.unwrap(), 2);
}

async fn index_purge(store: Arc<dyn Store>) {
    let ttl = Duration::from_secs(60);
    for k in ["larder:d:{1}", "larder:d:{2}", "larder:d:{3}"] {
        store.put(k, Bytes::from_static(b"v"), ttl).await.unwrap();
    }
    store
        .index_add("larder:tag:{t}", "larder:d:{1}", ttl)
        .await
        .unwrap();
    store
        .index_add("larder:tag:{t}", "larder:d:{2}", ttl)
        .await
        .unwrap();
    store
        .index_add("larder:tag:{t}", "larder:d:{2}", ttl)
        .await
        .unwrap();
    assert_eq!(store.index_purge("larder:tag:{t}").await.unwrap(), 2);
    assert_eq!(store.get("larder:d:{1}").await.unwrap(), None);
    assert_eq!(store.get("larder:d:{2}").await.unwrap(), None);
    assert!(store.get("larder:d:{3}").await.unwrap().is_some());
    assert_eq!(store.index_purge("larder:tag:{t}").await.unwrap(), 0);
}

async fn lease_is_exclusive_until_ended(store: Arc<dyn Store>) {
    let key = "larder:l:{k}:lease";
    let ttl = Duration::from_secs(60);
    let (a, b) = (
        Bytes::from_static(b"larder:lease:a"),
        Bytes::from_static(b"larder:lease:b"),
    );
    assert_eq!(
        store.lease(key, a.clone(), ttl).await.unwrap(),
        Lease::Granted
    );
    assert_eq!(
        store.lease(key, b.clone(), ttl).await.unwrap(),
        Lease::Held(a.clone())
    );
    // Only the holder ends it (compare and delete).
    assert!(!store.end_lease(key, b.clone(), None).await.unwrap());
    assert_eq!(
        store.lease(key, b.clone(), ttl).await.unwrap(),
        Lease::Held(a.clone())
    );
    assert!(store.end_lease(key, a.clone(), None).await.unwrap());
    assert_eq!(
        store.lease(key, b.clone(), ttl).await.unwrap(),
        Lease::Granted
    );
    assert!(!store.end_lease(key, a, None).await.unwrap());
}

async fn lease_expires_when_its_holder_dies(store: Arc<dyn Store>) {
    let key = "larder:l:{dies}:lease";
    let a = Bytes::from_static(b"larder:lease:a");
    let short = Duration::from_millis(30);
    assert_eq!(store.lease(key, a, short).await.unwrap(), Lease::Granted);
    // Nobody ends it; the store's clock frees it (bounded wait, no timing).
    let b = Bytes::from_static(b"larder:lease:b");
    let mut granted = false;
    for _ in 0..500 {
        if store
            .lease(key, b.clone(), Duration::from_secs(60))
            .await
            .unwrap()
            == Lease::Granted
        {
            granted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(granted, "a lease outlived its TTL");
}

async fn ended_lease_can_leave_a_marker(store: Arc<dyn Store>) {
    let key = "larder:l:{marker}:lease";
    let ttl = Duration::from_secs(60);
    let a = Bytes::from_static(b"larder:lease:a");
    let marker = Bytes::from_static(b"larder:uncacheable");
    store.lease(key, a.clone(), ttl).await.unwrap();
    assert!(store
        .end_lease(key, a, Some((marker.clone(), ttl)))
        .await
        .unwrap());
    assert_eq!(
        store
            .lease(key, Bytes::from_static(b"larder:lease:b"), ttl)
            .await
            .unwrap(),
        Lease::Held(marker)
    );
}

/// A Cache on the store with a counted route, tagged and namespaced.
fn app(store: Arc<dyn Store>) -> (World, Router) {
    app_with(store, |b| b)
}

fn app_with(
    store: Arc<dyn Store>,
    configure: impl FnOnce(larder::CacheBuilder) -> larder::CacheBuilder,
) -> (World, Router) {
    let w = World::with(|b| configure(b.shared_store(store)));
    let calls = w.counter();
    let items = Policy::ttl(Duration::from_secs(60))
        .namespace("items")
        .tags(["catalog"]);
    let app = Router::new()
        .route(
            "/items",
            get(move || {
                let calls = calls.clone();
                async move { format!("v{}", bump(&calls)) }
            })
            .layer(
                w.cache
                    .layer(items.clone().vary([http::header::ACCEPT_LANGUAGE])),
            ),
        )
        .route(
            "/other",
            get(|| async { "other" }).layer(w.cache.layer(Policy::ttl(Duration::from_secs(60)))),
        );
    (w, app)
}

async fn purge_url(store: Arc<dyn Store>) {
    let (w, app) = app(store);
    let lang = |l: &str| {
        request("GET", "/items")
            .header("accept-language", l)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    send(&app, lang("en")).await;
    send(&app, lang("fr")).await;
    assert!(send(&app, lang("fr")).await.is_hit());
    w.cache
        .purge_url("items", &format!("http://{HOST}/items"))
        .await
        .unwrap();
    assert!(
        !send(&app, lang("fr")).await.is_hit(),
        "every variant is purged"
    );
    assert!(!send(&app, lang("en")).await.is_hit());
}

async fn purge_namespace(store: Arc<dyn Store>) {
    let (w, app) = app(store);
    get_reply(&app, "/items").await;
    get_reply(&app, "/other").await;
    w.cache.purge_namespace("items").await.unwrap();
    assert!(!get_reply(&app, "/items").await.is_hit());
    assert!(
        get_reply(&app, "/other").await.is_hit(),
        "other namespaces stay"
    );
}

async fn purge_tag(store: Arc<dyn Store>) {
    let (w, app) = app(store);
    get_reply(&app, "/items").await;
    get_reply(&app, "/other").await;
    assert_eq!(w.cache.purge_tag("catalog").await.unwrap(), 1);
    assert!(!get_reply(&app, "/items").await.is_hit());
    assert!(
        get_reply(&app, "/other").await.is_hit(),
        "untagged entries stay"
    );
}

/// The store key of `/other` (namespace `default`, generation 0).
fn other_key() -> String {
    let uri: http::Uri = "/other".parse().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static(HOST));
    larder::policy::key::primary(
        "larder",
        "default",
        0,
        &http::Method::GET,
        &uri,
        &headers,
        None,
    )
    .unwrap()
    .store_key
}

async fn corrupt_value_is_a_miss_and_deleted(store: Arc<dyn Store>) {
    let (w, app) = app(store.clone());
    get_reply(&app, "/other").await;
    let key = other_key();
    store
        .put(
            &key,
            Bytes::from_static(b"not larder's"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let r = get_reply(&app, "/other").await;
    assert_eq!(r.text(), "other");
    assert!(!r.is_hit());
    assert_eq!(w.cache.stats().corrupt_entries, 1);
    assert!(get_reply(&app, "/other").await.is_hit());
}

// --- What another program can leave under larder's keys ------------------

/// Longer than any wait a test allows: a request that waited for it would
/// fail the test, and one answered in time did not wait at all.
const LONG_COALESCE_WAIT: Duration = Duration::from_secs(60);
/// A tenth of the coalescing wait: the bound on a request's answer.
const NO_WAIT: Duration = Duration::from_secs(10);

/// The lease key of `/other`.
fn other_lease_key() -> String {
    format!("{}:lease", other_key())
}

/// Requests `/other`, whose lease key holds something that is not a live
/// lease, on a cache that would wait a minute for a lease: the answer must
/// come at once, as a miss that repairs the key and stores the entry.
async fn miss_is_not_held_up(store: Arc<dyn Store>) {
    let (w, app) = app_with(store.clone(), |b| b.coalesce_wait(LONG_COALESCE_WAIT));
    let r = tokio::time::timeout(NO_WAIT, get_reply(&app, "/other"))
        .await
        .expect("a value under the lease key that is not a lease made the miss wait");
    assert_eq!(r.text(), "other");
    assert!(!r.is_hit());
    let stats = w.cache.stats();
    assert_eq!((stats.repaired, stats.store_errors), (1, 0), "{stats:?}");
    assert!(get_reply(&app, "/other").await.is_hit());
    // The fill ended its lease: the key is free for the next one.
    let holder = Bytes::from_static(b"larder:lease:next");
    let ttl = Duration::from_secs(60);
    assert_eq!(
        store.lease(&other_lease_key(), holder, ttl).await.unwrap(),
        Lease::Granted
    );
}

async fn foreign_value_under_a_lease_key_is_taken_over(store: Arc<dyn Store>, raw: Raw) {
    let key = other_lease_key();
    match &raw {
        // The memory store keeps what its API was given, for as long.
        Raw::Memory(memory) => {
            let foreign = Bytes::from_static(b"foreign");
            let got = memory.lease(&key, foreign, Duration::from_secs(3600));
            assert_eq!(got.await.unwrap(), Lease::Granted);
        }
        Raw::Redis { .. } if raw.usable() => {
            raw.cli(&["SET", &key, "foreign"]);
        }
        Raw::Redis { .. } => return,
    }
    miss_is_not_held_up(store).await;
}

async fn lease_value_without_expiry_is_taken_over(store: Arc<dyn Store>, raw: Raw) {
    if raw.usable() {
        // Looks like larder's own, but a lease always expires.
        raw.cli(&["SET", &other_lease_key(), "larder:lease:00000000000000ff"]);
        miss_is_not_held_up(store).await;
    }
}

async fn lease_key_of_another_type_is_taken_over(store: Arc<dyn Store>, raw: Raw) {
    if raw.usable() {
        raw.cli(&["RPUSH", &other_lease_key(), "x"]);
        miss_is_not_held_up(store).await;
        assert_ne!(raw.cli(&["TYPE", &other_lease_key()]), "list");
    }
}

/// The namespace `items` stores its entry under generations 0, 1 and 2
/// (purged twice), then its counter is overwritten by `garbage`. A new
/// instance must neither lose the namespace nor read any of the old
/// entries again.
async fn generation_is_reset_above_old_ones(store: Arc<dyn Store>, raw: &Raw, garbage: &[&[&str]]) {
    let (old, old_app) = app(store.clone());
    for _ in 0..2 {
        get_reply(&old_app, "/items").await;
        assert!(get_reply(&old_app, "/items").await.is_hit());
        old.cache.purge_namespace("items").await.unwrap();
    }
    get_reply(&old_app, "/items").await;
    for command in garbage {
        raw.cli(command);
    }

    let (w, app) = app(store.clone());
    let first = get_reply(&app, "/items").await;
    assert!(
        !first.is_hit(),
        "an entry of a purged generation came back: {}",
        first.text()
    );
    let second = get_reply(&app, "/items").await;
    assert!(second.is_hit(), "the namespace is no longer cached");
    assert_eq!(second.text(), first.text());
    assert_eq!(w.cache.stats().repaired, 1, "{:?}", w.cache.stats());
    let generation: u64 = raw.cli(&["GET", "larder:ns:items:gen"]).parse().unwrap();
    assert!(generation > 2, "reset to {generation}");
    // And it can be purged.
    let purged = w.cache.purge_namespace("items").await.unwrap();
    assert_eq!(purged, generation + 1);
    assert!(!get_reply(&app, "/items").await.is_hit());
    assert!(get_reply(&app, "/items").await.is_hit());
}

async fn generation_that_is_not_a_number_is_reset(store: Arc<dyn Store>, raw: Raw) {
    if raw.usable() {
        let garbage: &[&[&str]] = &[&["SET", "larder:ns:items:gen", "x1"]];
        generation_is_reset_above_old_ones(store, &raw, garbage).await;
    }
}

async fn generation_of_another_type_is_reset(store: Arc<dyn Store>, raw: Raw) {
    if raw.usable() {
        let garbage: &[&[&str]] = &[
            &["DEL", "larder:ns:items:gen"],
            &["HSET", "larder:ns:items:gen", "a", "1"],
        ];
        generation_is_reset_above_old_ones(store, &raw, garbage).await;
    }
}

async fn purge_resets_a_generation_that_is_not_a_number(store: Arc<dyn Store>, raw: Raw) {
    if !raw.usable() {
        return;
    }
    let (w, app) = app(store);
    get_reply(&app, "/items").await;
    assert!(get_reply(&app, "/items").await.is_hit());
    raw.cli(&["SET", "larder:ns:items:gen", "-3"]);
    let generation = w.cache.purge_namespace("items").await.unwrap();
    assert!(generation > 1, "{generation}");
    assert_eq!(w.cache.stats().repaired, 1);
    assert!(
        !get_reply(&app, "/items").await.is_hit(),
        "the purge purged"
    );
    assert!(get_reply(&app, "/items").await.is_hit());
}

async fn tag_index_of_another_type_is_made_again(store: Arc<dyn Store>, raw: Raw) {
    if !raw.usable() {
        return;
    }
    raw.cli(&["SET", "larder:tag:{catalog}", "not a set"]);
    let (w, app) = app(store);
    get_reply(&app, "/items").await;
    let stats = w.cache.stats();
    assert_eq!((stats.stores, stats.store_errors), (1, 0), "{stats:?}");
    assert_eq!(stats.repaired, 1);
    assert_eq!(raw.cli(&["TYPE", "larder:tag:{catalog}"]), "set");
    assert!(get_reply(&app, "/items").await.is_hit());
    assert_eq!(w.cache.purge_tag("catalog").await.unwrap(), 1);
    assert!(!get_reply(&app, "/items").await.is_hit());
}

async fn purging_a_tag_index_of_another_type_repairs_it(store: Arc<dyn Store>, raw: Raw) {
    if !raw.usable() {
        return;
    }
    raw.cli(&["HSET", "larder:tag:{catalog}", "a", "1"]);
    let (w, app) = app(store);
    assert_eq!(w.cache.purge_tag("catalog").await.unwrap(), 0);
    assert_eq!(w.cache.stats().repaired, 1);
    assert_eq!(raw.cli(&["TYPE", "larder:tag:{catalog}"]), "none");
    get_reply(&app, "/items").await;
    assert_eq!(w.cache.purge_tag("catalog").await.unwrap(), 1);
}

// --- Tag indexes do not outlive their members ------------------------------

/// 2,000 tagged entries, of which every tenth stays: the index must not
/// keep the other 1,800, and a purge still takes every one that stayed.
async fn tag_index_drops_members_whose_entries_are_gone(store: Arc<dyn Store>, raw: Raw) {
    if !raw.usable() {
        return;
    }
    let (ttl, index) = (Duration::from_secs(600), "larder:tag:{busy}");
    let mut kept = Vec::new();
    for i in 0..2000 {
        let key = format!("larder:d:{{{i}}}");
        store
            .put(&key, Bytes::from_static(b"v"), ttl)
            .await
            .unwrap();
        store.index_add(index, &key, ttl).await.unwrap();
        if i % 10 == 0 {
            kept.push(key);
        } else {
            store.delete(&key).await.unwrap();
        }
    }
    // Redis prunes beside the fills; wait for it (bounded), never for a time.
    let held = |raw: &Raw| match raw {
        Raw::Memory(memory) => memory.tag_memberships(),
        Raw::Redis { .. } => raw.cli(&["SCARD", index]).parse().unwrap(),
    };
    let mut members = held(&raw);
    for _ in 0..1000 {
        if members <= 1000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        members = held(&raw);
    }
    assert!(
        members <= 1000,
        "{members} members for {} entries",
        kept.len()
    );
    let purged = store.index_purge(index).await.unwrap();
    assert!(purged >= kept.len() as u64, "{purged}");
    for key in &kept {
        assert_eq!(store.get(key).await.unwrap(), None, "{key} was not purged");
    }
}

async fn tag_index_lives_as_long_as_its_longest_member(store: Arc<dyn Store>, raw: Raw) {
    if !raw.usable() {
        return;
    }
    let index = "larder:tag:{ttl}";
    for (key, secs) in [
        ("larder:d:{s}", 5),
        ("larder:d:{l}", 600),
        ("larder:d:{m}", 60),
    ] {
        let ttl = Duration::from_secs(secs);
        store.put(key, Bytes::from_static(b"v"), ttl).await.unwrap();
        store.index_add(index, key, ttl).await.unwrap();
    }
    let pttl: i64 = raw.cli(&["PTTL", index]).parse().unwrap();
    assert!(pttl > 60_000 && pttl <= 600_000, "{pttl}");
}

macro_rules! conformance {
    (
        all: [$($test:ident),* $(,)?],
        raw: [$($raw:ident),* $(,)?],
        redis: [$($redis:ident),* $(,)?] $(,)?
    ) => {
        mod memory_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let (store, _raw, _guard) = memory().unwrap();
                    super::$test(store).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $raw() {
                    let (store, raw, _guard) = memory().unwrap();
                    super::$raw(store, raw).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let Some((store, _raw, _guard)) = redis().await else { return };
                    super::$test(store).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $raw() {
                    let Some((store, raw, _guard)) = redis().await else { return };
                    super::$raw(store, raw).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $redis() {
                    let Some((store, raw, _guard)) = redis().await else { return };
                    super::$redis(store, raw).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis_cluster_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $test() {
                    let Some((store, _raw, _guard)) = cluster().await else { return };
                    super::$test(store).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $raw() {
                    let Some((store, raw, _guard)) = cluster().await else { return };
                    super::$raw(store, raw).await;
                }
            )*
            $(
                #[tokio::test]
                async fn $redis() {
                    let Some((store, raw, _guard)) = cluster().await else { return };
                    super::$redis(store, raw).await;
                }
            )*
        }
    };
}

conformance!(
    all: [
        get_put_delete,
        get_many_in_order,
        ttl_expires,
        counters,
        index_purge,
        purge_url,
        purge_namespace,
        purge_tag,
        corrupt_value_is_a_miss_and_deleted,
        lease_is_exclusive_until_ended,
        lease_expires_when_its_holder_dies,
        ended_lease_can_leave_a_marker,
    ],
    // Every store: what its own API or a raw write can leave there.
    raw: [
        foreign_value_under_a_lease_key_is_taken_over,
        tag_index_drops_members_whose_entries_are_gone,
    ],
    // What only Redis can hold: values without expiry, other types,
    // counters that are not numbers (the memory store's are typed).
    redis: [
        lease_value_without_expiry_is_taken_over,
        lease_key_of_another_type_is_taken_over,
        generation_that_is_not_a_number_is_reset,
        generation_of_another_type_is_reset,
        purge_resets_a_generation_that_is_not_a_number,
        tag_index_of_another_type_is_made_again,
        purging_a_tag_index_of_another_type_repairs_it,
        tag_index_lives_as_long_as_its_longest_member,
    ],
);
