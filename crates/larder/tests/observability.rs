//! What a subscriber sees: a `larder.lookup` span per cached request with
//! its outcome, the fill's events inside it, purge events, and a line for
//! a long wait on another request's fetch.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::*;
use larder::Policy;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span or event as the subscriber saw it: its name (an event's message)
/// and its fields, as text.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: String,
    fields: Vec<(String, String)>,
    /// For an event: the name of the span it was in.
    parent: Option<String>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Visit for Seen {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.name = text;
        } else {
            self.fields.push((field.name().to_owned(), text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// Keeps every span (with the fields recorded on it later) and event.
#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<(Id, Seen)>>>,
    events: Arc<Mutex<Vec<Seen>>>,
}

impl Capture {
    fn lookups(&self) -> Vec<Seen> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|(_, s)| s.name == "larder.lookup")
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn events(&self, message: &str) -> Vec<Seen> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.name.contains(message))
            .cloned()
            .collect()
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name().to_owned(),
            ..Seen::default()
        };
        attrs.record(&mut seen);
        self.spans.lock().unwrap().push((id.clone(), seen));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some((_, seen)) = spans.iter_mut().rev().find(|(i, _)| i == id) {
            // `record_debug` would take a `message` field as the name.
            let name = std::mem::take(&mut seen.name);
            values.record(seen);
            seen.name = name;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut seen = Seen::default();
        event.record(&mut seen);
        seen.parent = ctx.event_span(event).map(|s| s.name().to_owned());
        self.events.lock().unwrap().push(seen);
    }
}

/// Runs `test` with `capture` as this thread's subscriber (the tests run on
/// a current-thread runtime, so every span is made on this thread).
fn capturing() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(
        capture
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
    );
    let guard = tracing::subscriber::set_default(subscriber);
    (capture, guard)
}

fn app(world: &World) -> Router {
    let policy = Policy::ttl(Duration::from_secs(60))
        .namespace("items")
        .tags(["products"]);
    Router::new()
        .route("/items", get(|| async { "[1, 2]" }))
        .route(
            "/session",
            get(|| async { ([("set-cookie", "id=1")], "yours") }),
        )
        .layer(world.cache.layer(policy))
}

#[tokio::test]
async fn a_miss_and_a_hit_each_get_a_lookup_span_with_their_outcome() {
    let (capture, _guard) = capturing();
    let world = World::new();
    let app = app(&world);
    assert!(!get_reply(&app, "/items").await.is_hit());
    assert!(get_reply(&app, "/items").await.is_hit());
    assert!(get_reply(&app, "/items").await.is_hit());

    let lookups = capture.lookups();
    assert_eq!(lookups.len(), 3, "{lookups:#?}");
    let (miss, read, hit) = (&lookups[0], &lookups[1], &lookups[2]);
    assert_eq!(miss.field("outcome"), Some("fwd=uri-miss"), "{miss:#?}");
    assert_eq!(miss.field("namespace"), Some("items"));
    assert_eq!(miss.field("uri"), Some("/items"));
    let key = miss.field("key").expect("the miss records its key");
    assert_eq!(key.len(), 12, "a short hash: {key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert!(miss.field("store_ms").is_some(), "the store read is timed");
    // The store answered the second (and the hot tier kept a copy)...
    assert_eq!(read.field("outcome"), Some("hit; ttl=60"), "{read:#?}");
    assert_eq!(read.field("key"), Some(key));
    assert_eq!(read.field("hot"), None);
    // ...which answered the third: its span says so, with the same key.
    assert_eq!(hit.field("outcome"), Some("hit"), "{hit:#?}");
    assert_eq!(hit.field("hot"), Some("true"));
    assert_eq!(hit.field("key"), Some(key));

    let stored = capture.events("larder: stored");
    assert_eq!(stored.len(), 1, "one store");
    assert_eq!(stored[0].parent.as_deref(), Some("larder.lookup"));
    assert_eq!(stored[0].field("status"), Some("200"));
    assert_eq!(stored[0].field("ttl_s"), Some("60"));
}

#[tokio::test]
async fn a_response_not_stored_says_why_inside_its_span() {
    let (capture, _guard) = capturing();
    let world = World::new();
    let app = app(&world);
    get_reply(&app, "/session").await;
    let not_stored = capture.events("larder: response not stored");
    assert_eq!(not_stored.len(), 1, "{:#?}", capture.events(""));
    assert_eq!(not_stored[0].field("reason"), Some("set-cookie"));
    assert_eq!(not_stored[0].parent.as_deref(), Some("larder.lookup"));
}

#[tokio::test]
async fn purges_are_events() {
    let (capture, _guard) = capturing();
    let world = World::new();
    let app = app(&world);
    get_reply(&app, "/items").await;
    assert_eq!(world.cache.purge_tag("products").await.unwrap(), 1);
    world.cache.purge_namespace("items").await.unwrap();
    let tag = capture.events("larder: purged a tag");
    assert_eq!(tag.len(), 1);
    assert_eq!(tag[0].field("purged"), Some("1"));
    assert_eq!(capture.events("larder: purged a namespace").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_long_wait_on_another_requests_fetch_is_logged() {
    let (capture, _guard) = capturing();
    let world = World::with(|b| b.coalesce_wait(Duration::from_secs(30)));
    // Paused time: the handler's 3 s pass as soon as every task is idle.
    let slow = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "done"
            }),
        )
        .layer(world.cache.layer(Policy::ttl(Duration::from_secs(60))));
    let fast = Router::new()
        .route("/fast", get(|| async { "done" }))
        .layer(world.cache.layer(Policy::ttl(Duration::from_secs(60))));
    let (a, b) = tokio::join!(get_reply(&slow, "/slow"), get_reply(&slow, "/slow"));
    assert_eq!((a.text(), b.text()), ("done", "done"));
    get_reply(&fast, "/fast").await;
    let waits = capture.events("larder: a request waited");
    assert_eq!(
        waits.len(),
        1,
        "the follower's wait, nothing for /fast: {waits:#?}"
    );
    assert!(
        waits[0].name.contains("another request's fetch"),
        "{waits:#?}"
    );
}
