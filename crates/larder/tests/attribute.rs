//! What only the attribute does: take the handler's own extractors and
//! return types as written, map its options onto the policy, find its
//! cache on the request, and run uncached, saying so once, without one.
//! (Its caching behaviour is tested through both mounts in the other files.)

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use common::*;
use http::request::Parts;
use http::StatusCode;
use larder::entry::Record;
use larder::policy::key;
use larder::store::Store;
use larder::{Cache, Policy};

#[derive(serde::Deserialize)]
struct Page {
    page: u32,
}

/// A custom extractor, taken from a header.
struct Tenant(String);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, StatusCode> {
        let tenant = parts
            .headers
            .get("x-tenant")
            .ok_or(StatusCode::BAD_REQUEST)?;
        Ok(Tenant(
            tenant
                .to_str()
                .map_err(|_| StatusCode::BAD_REQUEST)?
                .to_owned(),
        ))
    }
}

/// Every kind of extractor at once, patterns and all, the body last. Seven
/// of them, so that the wrapper's eighth would trip clippy's
/// too_many_arguments if the attribute did not allow it.
#[larder::cache(ttl = "1m")]
async fn everything(
    State(calls): State<Calls>,
    Path((shelf, item)): Path<(String, u32)>,
    Query(Page { page }): Query<Page>,
    tenant: Tenant,
    headers: http::HeaderMap,
    method: http::Method,
    body: String,
) -> Result<Json<serde_json::Value>, StatusCode> {
    let n = bump(&calls);
    if shelf == "broken" {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(Json(serde_json::json!({
        "shelf": shelf,
        "item": item,
        "page": page,
        "tenant": tenant.0,
        "agent": headers.get("user-agent").and_then(|v| v.to_str().ok()),
        "method": method.as_str(),
        "body": body,
        "call": n,
    })))
}

#[tokio::test]
async fn the_handler_gets_its_own_extractors_and_keeps_its_result_type() {
    let w = World::new();
    let app = w.app(
        Mount::Attribute,
        Router::new().route("/shelves/{shelf}/{item}", get(everything)),
        w.counter(),
    );
    let ask = |uri: &str| {
        request("GET", uri)
            .header("x-tenant", "acme")
            .header("user-agent", "test")
            .body(Body::empty())
            .unwrap()
    };
    let first = send(&app, ask("/shelves/fruit/7?page=2")).await;
    assert_eq!(first.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"shelf": "fruit", "item": 7, "page": 2, "tenant": "acme", "agent": "test", "method": "GET", "body": "", "call": 1})
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    let hit = send(&app, ask("/shelves/fruit/7?page=2")).await;
    assert!(hit.is_hit());
    assert_eq!(hit.body, first.body);
    // Path and query are the key, as for any route.
    assert!(!send(&app, ask("/shelves/fruit/8?page=2")).await.is_hit());
    assert!(!send(&app, ask("/shelves/fruit/7?page=3")).await.is_hit());
    assert_eq!(w.calls(), 3);
    // An Err is a response like any other: not a 200, so not stored.
    for _ in 0..2 {
        let err = send(&app, ask("/shelves/broken/1?page=1")).await;
        assert_eq!(err.status, 503);
        assert!(!err.is_hit());
    }
    assert_eq!(w.calls(), 5);
    // The hot tier has the page (the attribute's extractor looks there
    // before the handler's own extractors run).
    let hot = w.cache.stats().hot_hits;
    assert!(send(&app, ask("/shelves/fruit/7?page=2")).await.is_hit());
    assert_eq!(w.cache.stats().hot_hits, hot + 1);
    // A failing extractor still answers, though the copy is warm: the
    // cache cannot get a client past an extractor that refuses it.
    let no_tenant = send(&app, common::get("/shelves/fruit/7?page=2")).await;
    assert_eq!(no_tenant.status, 400);
    assert_eq!(no_tenant.header("cache-status"), None);
}

#[larder::cache(ttl = "1m", namespace = "notes")]
async fn note(State(calls): State<Calls>) -> String {
    format!("note v{}", bump(&calls))
}

/// A body extractor after the hidden one; on a POST the attribute stores
/// nothing and a success invalidates the URI in its namespace.
#[larder::cache(ttl = "1m", namespace = "notes")]
async fn add_note(Json(text): Json<String>) -> (StatusCode, String) {
    (StatusCode::CREATED, text)
}

#[tokio::test]
async fn a_post_handler_takes_its_body_and_invalidates_the_get() {
    let w = World::new();
    let route = get(note).post(add_note);
    let app = w.app(
        Mount::Attribute,
        Router::new().route("/notes", route),
        w.counter(),
    );
    get_reply(&app, "/notes").await;
    assert!(get_reply(&app, "/notes").await.is_hit());
    let post = request("POST", "/notes")
        .header("content-type", "application/json")
        .body(Body::from("\"hello\""))
        .unwrap();
    let created = send(&app, post).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.text(), "hello");
    assert!(
        created.cache_status().contains("fwd=method"),
        "{}",
        created.cache_status()
    );
    let after = get_reply(&app, "/notes").await;
    assert!(!after.is_hit());
    assert_eq!(after.text(), "note v2");
}

fn tenant_key(parts: &Parts) -> String {
    let tenant = parts.headers.get("x-tenant").and_then(|v| v.to_str().ok());
    tenant.unwrap_or("none").to_owned()
}

#[larder::cache(ttl = "1m", key_extra = tenant_key)]
async fn dashboard(State(calls): State<Calls>, tenant: Tenant) -> String {
    format!("{} v{}", tenant.0, bump(&calls))
}

#[larder::cache(ttl = "1m", key_extra = tenant_key)]
async fn reset_dashboard() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn key_option_keys_entries_by_the_function_and_invalidates_by_it_too() {
    let w = World::new();
    let route = get(dashboard).delete(reset_dashboard);
    let app = w.app(
        Mount::Attribute,
        Router::new().route("/dash", route),
        w.counter(),
    );
    let as_tenant = |method: &str, tenant: &str| {
        request(method, "/dash")
            .header("x-tenant", tenant)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, as_tenant("GET", "a")).await.text(), "a v1");
    assert_eq!(send(&app, as_tenant("GET", "b")).await.text(), "b v2");
    assert!(send(&app, as_tenant("GET", "a")).await.is_hit());
    assert!(send(&app, as_tenant("GET", "b")).await.is_hit());
    // Tenant b's reset removes b's entry, not a's.
    send(&app, as_tenant("DELETE", "b")).await;
    assert!(send(&app, as_tenant("GET", "a")).await.is_hit());
    assert_eq!(send(&app, as_tenant("GET", "b")).await.text(), "b v3");
}

#[larder::cache(
    ttl = "1h30m",
    namespace = "items",
    tags = ["items", "shelf"],
    stale_while_revalidate = "30s",
    stale_if_error = "5m",
)]
async fn tagged() -> &'static str {
    "tagged"
}

#[tokio::test]
async fn options_reach_the_stored_entry() {
    let w = World::new();
    let app = w.app(Mount::Attribute, Router::new().route("/t", get(tagged)), ());
    let first = get_reply(&app, "/t").await;
    assert!(
        first.cache_status().contains("ttl=5400"),
        "{}",
        first.cache_status()
    );
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static(HOST));
    let key = key::primary(
        "larder",
        "items",
        0,
        &http::Method::GET,
        &"/t".parse().unwrap(),
        &headers,
        None,
    )
    .unwrap();
    let stored = w
        .store
        .get(&key.store_key)
        .await
        .unwrap()
        .expect("stored under the namespace");
    let Record::Entry(entry) = Record::decode(stored, usize::MAX).unwrap() else {
        panic!("expected an entry")
    };
    assert_eq!(entry.lifetime, Duration::from_secs(5_400));
    assert_eq!(entry.tags, ["items", "shelf"]);
    assert_eq!(entry.stale_while_revalidate, Duration::from_secs(30));
    assert_eq!(entry.stale_if_error, Duration::from_secs(300));
}

#[larder::cache(ttl = "1m", cache = "sessions")]
async fn session_page(State(calls): State<Calls>) -> String {
    format!("session v{}", bump(&calls))
}

#[larder::cache(ttl = "1m")]
async fn default_page(State(calls): State<Calls>) -> String {
    format!("default v{}", bump(&calls))
}

#[tokio::test]
async fn a_named_cache_is_found_by_its_name_and_the_innermost_is_the_default() {
    let w = World::new();
    let sessions = Cache::builder().name("sessions").build();
    let app = Router::new()
        .route("/s", get(session_page))
        .route("/d", get(default_page))
        .layer(sessions.extension())
        .layer(w.cache.extension())
        .with_state(w.counter());
    get_reply(&app, "/s").await;
    let s = get_reply(&app, "/s").await;
    assert!(
        s.cache_status().starts_with("sessions; hit"),
        "{}",
        s.cache_status()
    );
    get_reply(&app, "/d").await;
    let d = get_reply(&app, "/d").await;
    // `sessions` was installed last, closest to the handler.
    assert!(
        d.cache_status().starts_with("sessions; hit"),
        "{}",
        d.cache_status()
    );
    assert_eq!(sessions.stats().hits, 2);
    assert_eq!(w.cache.stats().hits, 0);
}

#[tokio::test]
async fn the_tower_layer_hands_its_cache_to_attribute_handlers() {
    let w = World::new();
    // The layer stores nothing itself (it keeps 418s only, in its own
    // namespace); the handler's attribute must find the layer's cache.
    let outer = Policy::ttl(Duration::from_secs(60))
        .namespace("outer")
        .statuses([StatusCode::IM_A_TEAPOT]);
    let app = Router::new()
        .route("/d", get(default_page))
        .layer(w.cache.layer(outer))
        .with_state(w.counter());
    get_reply(&app, "/d").await;
    let second = get_reply(&app, "/d").await;
    assert!(
        second.cache_status().starts_with("larder; hit"),
        "{}",
        second.cache_status()
    );
    assert_eq!(w.calls(), 1);
}

/// Records the messages of ERROR events (or, made with `at`, of another
/// level) on this thread.
#[derive(Clone)]
struct Errors(Arc<Mutex<Vec<String>>>, tracing::Level);

impl Default for Errors {
    fn default() -> Self {
        Errors::at(tracing::Level::ERROR)
    }
}

impl Errors {
    fn at(level: tracing::Level) -> Self {
        Errors(Arc::default(), level)
    }
}

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Errors {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() == self.1
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        self.0.lock().unwrap().push(message);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[larder::cache(ttl = "1m")]
async fn orphan(State(calls): State<Calls>) -> String {
    format!("orphan v{}", bump(&calls))
}

#[larder::cache(ttl = "1m", cache = "nowhere")]
async fn named_orphan() -> &'static str {
    "named orphan"
}

#[tokio::test]
async fn without_a_cache_the_handler_runs_uncached_and_one_error_says_why() {
    // This binary never calls larder::init, and this router has no cache.
    let errors = Errors::default();
    let _guard = tracing::subscriber::set_default(errors.clone());
    let w = World::new();
    let app = Router::new()
        .route("/o", get(orphan))
        .route("/n", get(named_orphan))
        .with_state(w.counter());
    for i in 1..=3 {
        let reply = get_reply(&app, "/o").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), format!("orphan v{i}"));
        assert_eq!(reply.header("cache-status"), None);
        assert_eq!(get_reply(&app, "/n").await.text(), "named orphan");
    }
    let errors = errors.0.lock().unwrap().clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("`orphan` found no cache"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("cache.extension()"), "{}", errors[0]);
    assert!(errors[0].contains("larder::init(cache)"), "{}", errors[0]);
    assert!(
        errors[1].contains("no cache named \"nowhere\""),
        "{}",
        errors[1]
    );
    assert!(
        errors[1].contains("Cache::builder().name(\"nowhere\")"),
        "{}",
        errors[1]
    );
}

/// A write handler (no `ttl`) that a GET reaches by mistake.
#[larder::cache(namespace = "notes")]
async fn forgot_the_ttl(State(calls): State<Calls>) -> String {
    format!("uncached v{}", bump(&calls))
}

#[tokio::test]
async fn a_get_that_reaches_a_write_handler_runs_uncached_and_one_warning_says_why() {
    let warnings = Errors::at(tracing::Level::WARN);
    let _guard = tracing::subscriber::set_default(warnings.clone());
    let w = World::new();
    let app = w.app(
        Mount::Attribute,
        Router::new().route("/forgot", get(forgot_the_ttl)),
        w.counter(),
    );
    for i in 1..=3 {
        let reply = get_reply(&app, "/forgot").await;
        assert_eq!(reply.text(), format!("uncached v{i}"));
        assert_eq!(reply.cache_status(), "larder; fwd=bypass; fwd-status=200");
    }
    assert_eq!(w.cache.stats().not_stored(larder::NotStored::Rule), 3);
    let warnings = warnings.0.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("`forgot_the_ttl` has no `ttl`"),
        "{}",
        warnings[0]
    );
}

/// The stored entry of `path` in `namespace`.
async fn stored_entry(w: &World, namespace: &str, path: &str) -> larder::entry::Entry {
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static(HOST));
    let key = key::primary(
        "larder",
        namespace,
        0,
        &http::Method::GET,
        &path.parse().unwrap(),
        &headers,
        None,
    )
    .unwrap();
    let stored = w.store.get(&key.store_key).await.unwrap().expect("stored");
    let Record::Entry(entry) = Record::decode(stored, usize::MAX).unwrap() else {
        panic!("expected an entry")
    };
    entry
}

const REPORT_TTL: Duration = Duration::from_secs(15 * 60);

fn report_window() -> Duration {
    Duration::from_secs(45)
}

/// A const, and any `Duration` expression (evaluated when the handler
/// first runs).
#[larder::cache(ttl = REPORT_TTL, stale_while_revalidate = report_window())]
async fn report(State(calls): State<Calls>) -> String {
    format!("report v{}", bump(&calls))
}

#[larder::cache(ttl = Duration::from_secs(60 * 5), namespace = "computed")]
async fn computed() -> &'static str {
    "computed"
}

/// humantime's grammar: milliseconds, repeated units; a zero window is off.
#[larder::cache(ttl = "1500ms", stale_while_revalidate = "1m1m", stale_if_error = "0s")]
async fn quick(State(calls): State<Calls>) -> String {
    format!("quick v{}", bump(&calls))
}

#[tokio::test]
async fn durations_are_expressions_or_humantime_text_to_the_millisecond() {
    let w = World::new();
    let app = w.app(
        Mount::Attribute,
        Router::new()
            .route("/report", get(report))
            .route("/computed", get(computed))
            .route("/quick", get(quick)),
        w.counter(),
    );
    let first = get_reply(&app, "/report").await;
    assert!(
        first.cache_status().contains("ttl=900"),
        "{}",
        first.cache_status()
    );
    let entry = stored_entry(&w, "default", "/report").await;
    assert_eq!(entry.lifetime, REPORT_TTL);
    assert_eq!(entry.stale_while_revalidate, Duration::from_secs(45));
    get_reply(&app, "/computed").await;
    let entry = stored_entry(&w, "computed", "/computed").await;
    assert_eq!(entry.lifetime, Duration::from_secs(300));

    assert_eq!(get_reply(&app, "/quick").await.text(), "quick v2");
    let entry = stored_entry(&w, "default", "/quick").await;
    assert_eq!(entry.lifetime, Duration::from_millis(1_500));
    assert_eq!(entry.stale_while_revalidate, Duration::from_secs(120));
    assert_eq!(entry.stale_if_error, Duration::ZERO);
    w.clock.advance(Duration::from_millis(1_400));
    assert!(get_reply(&app, "/quick").await.is_hit());
    assert_eq!(w.calls(), 2);
    // Past 1.5 s: stale, served while a refresh runs.
    w.clock.advance(Duration::from_millis(200));
    let stale = get_reply(&app, "/quick").await;
    assert!(
        stale.cache_status().contains("ttl=-"),
        "{}",
        stale.cache_status()
    );
}

const NO_TIME: Duration = Duration::ZERO;

/// A `ttl` expression that comes to zero: only known at run time.
#[larder::cache(ttl = NO_TIME)]
async fn never_kept(State(calls): State<Calls>) -> String {
    format!("never kept v{}", bump(&calls))
}

#[tokio::test]
async fn a_ttl_expression_of_zero_leaves_the_route_uncached_and_one_error_says_why() {
    let errors = Errors::default();
    let _guard = tracing::subscriber::set_default(errors.clone());
    let w = World::new();
    let app = w.app(
        Mount::Attribute,
        Router::new().route("/never", get(never_kept)),
        w.counter(),
    );
    for i in 1..=3 {
        let reply = get_reply(&app, "/never").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.text(), format!("never kept v{i}"));
        assert_eq!(reply.header("cache-status"), None);
    }
    assert_eq!(w.cache.stats().stores, 0);
    let errors = errors.0.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("`never_kept` runs uncached: a ttl of zero caches nothing"),
        "{}",
        errors[0]
    );
}

mod handlers {
    /// Public, documented, and visible from outside its module.
    #[larder::cache(ttl = "1m")]
    #[allow(clippy::unused_async)]
    pub async fn visible() -> &'static str {
        "visible"
    }

    // Never compiled: if the attribute dropped the `cfg`, this would be a
    // second `twice` and the file would not build.
    #[larder::cache(ttl = "1m")]
    #[cfg(any())]
    pub async fn twice() -> &'static str {
        "never"
    }

    #[larder::cache(ttl = "1m")]
    pub async fn twice() -> &'static str {
        "twice"
    }
}

#[tokio::test]
async fn the_handler_keeps_its_visibility_and_attributes() {
    let w = World::new();
    let app = w.app(
        Mount::Attribute,
        Router::new()
            .route("/v", get(handlers::visible))
            .route("/t", get(handlers::twice)),
        (),
    );
    assert_eq!(get_reply(&app, "/v").await.text(), "visible");
    assert!(get_reply(&app, "/v").await.is_hit());
    assert_eq!(get_reply(&app, "/t").await.text(), "twice");
}
