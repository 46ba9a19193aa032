//! `#[larder::memoize]`: counted functions run once per key and TTL, again
//! for other arguments and after their purge helper; only `Ok` is kept;
//! concurrent calls coalesce; without a cache, or with a failing store,
//! the function still runs. Each test uses its own named cache, set with
//! `larder::init`, so tests stay independent in this one process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use larder::policy::key;
use larder::store::Store;
use tokio::sync::Semaphore;

/// A world whose cache is set up process-wide under `name`.
fn world(name: &str) -> World {
    let w = World::with(|b| b.name(name));
    larder::init(w.cache.clone()).unwrap();
    w
}

fn count(calls: &AtomicUsize) -> usize {
    calls.load(Ordering::SeqCst)
}

static PRICE_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Not a `Result`: every value is kept.
#[larder::memoize(ttl = "5m", namespace = "prices", cache = "memo-price")]
async fn price(item: String, quantity: u32) -> u64 {
    bump(&PRICE_CALLS);
    u64::from(quantity) * item.len() as u64
}

#[tokio::test]
async fn equal_arguments_run_once_others_again_and_purge_forgets_them_all() {
    let w = world("memo-price");
    for _ in 0..3 {
        assert_eq!(price("apple".into(), 2).await, 10);
    }
    assert_eq!(count(&PRICE_CALLS), 1);
    assert_eq!(price("apple".into(), 3).await, 15);
    assert_eq!(price("pear".into(), 2).await, 8);
    assert_eq!(count(&PRICE_CALLS), 3);
    assert_eq!(price("pear".into(), 2).await, 8);
    assert_eq!(count(&PRICE_CALLS), 3);

    price::purge().await;
    assert_eq!(price("apple".into(), 2).await, 10);
    assert_eq!(price("pear".into(), 2).await, 8);
    assert_eq!(
        count(&PRICE_CALLS),
        5,
        "purge forgets every argument's result"
    );
    assert_eq!(price("pear".into(), 2).await, 8);
    assert_eq!(count(&PRICE_CALLS), 5);

    // Results live for the TTL, on the cache's clock.
    w.clock.advance(Duration::from_secs(299));
    price("pear".into(), 2).await;
    assert_eq!(count(&PRICE_CALLS), 5);
    w.clock.advance(Duration::from_secs(2));
    price("pear".into(), 2).await;
    assert_eq!(count(&PRICE_CALLS), 6);
    let stats = w.cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.stores), (5, 6, 6));
}

static FALLIBLE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[larder::memoize(ttl = "1m", cache = "memo-fallible")]
async fn fallible(n: u32) -> Result<u32, String> {
    if bump(&FALLIBLE_CALLS) == 1 {
        return Err("the database is down".into());
    }
    Ok(n * 10)
}

#[tokio::test]
async fn a_result_keeps_only_ok() {
    let w = world("memo-fallible");
    assert_eq!(fallible(1).await, Err("the database is down".into()));
    assert_eq!(fallible(1).await, Ok(10));
    assert_eq!(fallible(1).await, Ok(10));
    assert_eq!(count(&FALLIBLE_CALLS), 2);
    assert_eq!(w.cache.stats().stores, 1);
}

/// A database pool: not serializable, and not part of the key.
struct Pool(u32);

static LOOKUP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[larder::memoize(ttl = "1m", cache = "memo-skip", skip(pool))]
async fn lookup(pool: &Pool, id: u64) -> String {
    bump(&LOOKUP_CALLS);
    format!("{id} via pool {}", pool.0)
}

#[tokio::test]
async fn skipped_arguments_are_not_part_of_the_key() {
    let _w = world("memo-skip");
    assert_eq!(lookup(&Pool(1), 5).await, "5 via pool 1");
    assert_eq!(lookup(&Pool(2), 5).await, "5 via pool 1");
    assert_eq!(lookup(&Pool(2), 6).await, "6 via pool 2");
    assert_eq!(count(&LOOKUP_CALLS), 2);
}

static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);
static GATE: Semaphore = Semaphore::const_new(0);

#[larder::memoize(ttl = "1m", cache = "memo-slow")]
async fn slow_square(n: u64) -> u64 {
    bump(&SLOW_CALLS);
    let _permit = GATE.acquire().await.unwrap();
    n * n
}

#[tokio::test]
async fn concurrent_equal_calls_run_once() {
    let w = world("memo-slow");
    // Spawned on the runtime: a memoized function's future is Send.
    let tasks: Vec<_> = (0..20).map(|_| tokio::spawn(slow_square(4))).collect();
    while count(&SLOW_CALLS) == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..1_000 {
        tokio::task::yield_now().await;
    }
    GATE.add_permits(1);
    for task in tasks {
        assert_eq!(task.await.unwrap(), 16);
    }
    assert_eq!(count(&SLOW_CALLS), 1);
    let stats = w.cache.stats();
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.collapsed + stats.hits, 19);
}

static ORPHAN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[larder::memoize(ttl = "1m", cache = "memo-nowhere")]
async fn orphan(n: u32) -> u32 {
    bump(&ORPHAN_CALLS);
    n + 1
}

static DEAD_CALLS: AtomicUsize = AtomicUsize::new(0);

#[larder::memoize(ttl = "1m", cache = "memo-dead")]
async fn on_dead_store(n: u32) -> u32 {
    bump(&DEAD_CALLS);
    n + 1
}

#[tokio::test]
async fn without_a_cache_or_with_a_failing_store_the_function_still_runs() {
    for _ in 0..3 {
        assert_eq!(orphan(1).await, 2);
    }
    assert_eq!(count(&ORPHAN_CALLS), 3);
    orphan::purge().await; // nothing to purge, and no panic

    let dead = World::with(|b| b.name("memo-dead").store(DeadStore));
    larder::init(dead.cache.clone()).unwrap();
    for _ in 0..3 {
        assert_eq!(on_dead_store(1).await, 2);
    }
    assert_eq!(count(&DEAD_CALLS), 3);
    // Each call: a failed read, then a failed write.
    assert_eq!(dead.cache.stats().store_errors, 6);
}

static PARITY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[larder::memoize(ttl = "1m", cache = "memo-parity")]
async fn is_even(n: u32) -> bool {
    bump(&PARITY_CALLS);
    n % 2 == 0
}

#[tokio::test]
async fn an_unreadable_stored_value_is_a_miss() {
    let w = world("memo-parity");
    // The keys the attribute uses: the function's path and its arguments' JSON.
    let function = "memoize::is_even";
    let call = key::memo("larder", "default", function, b"[7]");
    assert!(!is_even(7).await);
    assert!(
        w.store.get(&call.call_key).await.unwrap().is_some(),
        "the test computes the attribute's key"
    );

    w.store
        .put(
            &call.call_key,
            Bytes::from_static(b"garbage"),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(!is_even(7).await);
    assert_eq!(count(&PARITY_CALLS), 2);
    assert_eq!(w.cache.stats().corrupt_entries, 1);

    // A value of another type under the key (the function's return type
    // changed between deploys) is as unreadable.
    let ttl = Duration::from_secs(60);
    w.cache.purge_memoized("default", function).await;
    let other = async { Ok::<_, ()>("seven".to_owned()) };
    w.cache
        .memoize("default", function, b"[7]", ttl, other)
        .await
        .unwrap();
    assert!(!is_even(7).await);
    assert_eq!(count(&PARITY_CALLS), 3);
    assert_eq!(w.cache.stats().corrupt_entries, 2);
    assert!(!is_even(7).await);
    assert_eq!(count(&PARITY_CALLS), 3);
}

static MAP_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Serializable, but not as JSON: object keys must be strings.
#[larder::memoize(ttl = "1m", cache = "memo-unjsonable")]
async fn total(counts: std::collections::BTreeMap<(u8, u8), u32>) -> u32 {
    bump(&MAP_CALLS);
    counts.values().sum()
}

#[tokio::test]
async fn arguments_that_cannot_be_serialized_run_uncached() {
    let w = world("memo-unjsonable");
    let counts = std::collections::BTreeMap::from([((1, 2), 3), ((3, 4), 5)]);
    for _ in 0..2 {
        assert_eq!(total(counts.clone()).await, 8);
    }
    assert_eq!(count(&MAP_CALLS), 2);
    assert_eq!(w.cache.stats().misses, 0, "the cache was never asked");
}

static PROFILE_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The ttl as a constant: any `Duration` expression the compiler can
/// evaluate (it sets up a `static`).
const PROFILE_TTL: Duration = Duration::from_secs(60 * 5);

#[larder::memoize(ttl = PROFILE_TTL, cache = "memo-forget", skip(pool))]
async fn profile(pool: &Pool, id: u64, name: &str) -> String {
    bump(&PROFILE_CALLS);
    format!("{id} {name} via pool {}", pool.0)
}

#[tokio::test]
async fn forget_forgets_one_key_and_keeps_the_others() {
    let w = world("memo-forget");
    let pool = Pool(1);
    profile(&pool, 1, "ann").await;
    profile(&pool, 2, "bob").await;
    profile(&pool, 1, "ann").await;
    assert_eq!(count(&PROFILE_CALLS), 2);

    // The key's arguments only: the pool is skipped.
    profile::forget(1, "ann").await;
    assert_eq!(profile(&pool, 1, "ann").await, "1 ann via pool 1");
    assert_eq!(count(&PROFILE_CALLS), 3, "ann's result was forgotten");
    profile(&pool, 2, "bob").await;
    assert_eq!(count(&PROFILE_CALLS), 3, "bob's result was kept");
    // Forgetting arguments never stored is no error.
    profile::forget(3, "cy").await;

    // The constant's five minutes, on the cache's clock.
    w.clock.advance(Duration::from_secs(299));
    profile(&pool, 2, "bob").await;
    assert_eq!(count(&PROFILE_CALLS), 3);
    w.clock.advance(Duration::from_secs(2));
    profile(&pool, 2, "bob").await;
    assert_eq!(count(&PROFILE_CALLS), 4);
}

static SETTINGS_CALLS: AtomicUsize = AtomicUsize::new(0);

/// An item already has the function's name in the type namespace.
mod settings {}

#[larder::memoize(ttl = "250ms", cache = "memo-module", module = settings_memo)]
async fn settings(user: u32) -> u32 {
    bump(&SETTINGS_CALLS);
    user
}

#[tokio::test]
async fn module_names_the_companion_module_and_milliseconds_are_kept() {
    let w = world("memo-module");
    settings(1).await;
    settings(1).await;
    assert_eq!(count(&SETTINGS_CALLS), 1);
    settings_memo::forget(1).await;
    settings(1).await;
    assert_eq!(count(&SETTINGS_CALLS), 2);
    settings_memo::purge().await;
    settings(1).await;
    assert_eq!(count(&SETTINGS_CALLS), 3);
    // "250ms" is 250 milliseconds, not a whole second.
    w.clock.advance(Duration::from_millis(249));
    settings(1).await;
    assert_eq!(count(&SETTINGS_CALLS), 3);
    w.clock.advance(Duration::from_millis(2));
    settings(1).await;
    assert_eq!(count(&SETTINGS_CALLS), 4);
}
