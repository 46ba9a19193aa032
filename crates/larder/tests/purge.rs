//! Purging from code: one URL given absolute or as a path on a host.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::*;
use larder::{Policy, PurgeError};

fn app(world: &World) -> Router {
    Router::new().route(
        "/items",
        get(|| async { "[1, 2]" }).layer(world.cache.layer(Policy::ttl(Duration::from_secs(60)))),
    )
}

#[tokio::test]
async fn purge_path_removes_the_entry_of_an_origin_form_request() {
    let world = World::new();
    let app = app(&world);
    get_reply(&app, "/items?page=2").await;
    assert!(get_reply(&app, "/items?page=2").await.is_hit());
    // Another query is another URL: untouched.
    assert!(!world
        .cache
        .purge_path("default", HOST, "/items")
        .await
        .unwrap());
    assert!(get_reply(&app, "/items?page=2").await.is_hit());
    assert!(world
        .cache
        .purge_path("default", HOST, "/items?page=2")
        .await
        .unwrap());
    assert!(!get_reply(&app, "/items?page=2").await.is_hit());
}

#[tokio::test]
async fn purge_path_covers_both_schemes_and_the_default_port() {
    let world = World::new();
    let app = app(&world);
    // What an HTTP/2 client's request looks like to a handler: absolute.
    let h2 = || {
        request("GET", "https://example.com:443/items")
            .body(Body::empty())
            .unwrap()
    };
    send(&app, h2()).await;
    assert!(send(&app, h2()).await.is_hit());
    assert!(world
        .cache
        .purge_path("default", "Example.com", "/items")
        .await
        .unwrap());
    assert!(!send(&app, h2()).await.is_hit());
}

#[tokio::test]
async fn purge_path_rejects_what_is_not_a_path_or_a_host() {
    let cache = World::new().cache;
    for (host, path) in [
        ("example.com", "items"),
        ("example.com", "https://example.com/items"),
        ("example.com/evil", "/items"),
        ("", "/items"),
    ] {
        let err = cache.purge_path("default", host, path).await.unwrap_err();
        assert!(
            matches!(err, PurgeError::NotAPath { .. }),
            "{host} {path}: {err}"
        );
        assert!(err.to_string().contains("purge_path needs"), "{err}");
    }
    let err = cache.purge_url("default", "/items").await.unwrap_err();
    assert!(
        err.to_string().contains("purge_path"),
        "names the other: {err}"
    );
}
