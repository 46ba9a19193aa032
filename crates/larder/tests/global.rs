//! An app that uses only the attribute: no layer anywhere, the cache set
//! once with `larder::init`. Process-wide state, so this binary holds one
//! test, which owns it.

mod common;

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use common::*;
use larder::Cache;

#[larder::cache(ttl = "15m", namespace = "items")]
async fn list_items(State(calls): State<Calls>) -> String {
    format!("items v{}", bump(&calls))
}

#[larder::cache(ttl = "90s", cache = "sessions")]
async fn session(State(calls): State<Calls>) -> String {
    format!("session v{}", bump(&calls))
}

#[tokio::test]
async fn an_app_with_only_the_attribute_caches_through_the_process_wide_cache() {
    let w = World::new();
    let sessions = World::with(|b| b.name("sessions"));
    larder::init(w.cache.clone()).unwrap();
    larder::init(sessions.cache.clone()).unwrap();
    assert_eq!(
        larder::init(Cache::builder().name("sessions").build()),
        Err(larder::InitError("sessions".to_owned())),
        "a name is taken once"
    );
    let app = Router::new()
        .route("/items", get(list_items))
        .route("/session", get(session))
        .with_state(w.counter());

    // The handler body runs once per TTL.
    let first = get_reply(&app, "/items").await;
    assert_eq!(first.text(), "items v1");
    assert!(
        first.cache_status().contains("stored"),
        "{}",
        first.cache_status()
    );
    w.clock.advance(Duration::from_secs(899));
    let hit = get_reply(&app, "/items").await;
    assert!(hit.is_hit());
    assert_eq!(hit.text(), "items v1");
    w.clock.advance(Duration::from_secs(2));
    assert_eq!(get_reply(&app, "/items").await.text(), "items v2");
    assert_eq!(w.calls(), 2);
    assert_eq!(w.cache.stats().hits, 1);

    // `cache = "sessions"` is served by the cache of that name, on its clock.
    get_reply(&app, "/session").await;
    let s = get_reply(&app, "/session").await;
    assert!(
        s.cache_status().starts_with("sessions; hit"),
        "{}",
        s.cache_status()
    );
    sessions.clock.advance(Duration::from_secs(91));
    assert!(!get_reply(&app, "/session").await.is_hit());
    assert_eq!(sessions.cache.stats().stores, 2);
    assert_eq!(w.calls(), 4);

    // Purging from code without wiring: the caches given to `init`.
    assert!(larder::global().is_some_and(|c| c.name() == w.cache.name()));
    assert!(larder::global_named("sessions").is_some());
    assert!(larder::global_named("nowhere").is_none());
    assert!(get_reply(&app, "/items").await.is_hit());
    let purged = larder::global()
        .unwrap()
        .purge_path("items", HOST, "/items")
        .await
        .unwrap();
    assert!(purged, "the entry was there");
    assert_eq!(
        get_reply(&app, "/items").await.text(),
        "items v5",
        "purged: a miss"
    );
}
