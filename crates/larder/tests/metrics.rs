//! The `metrics` feature, read back as Prometheus text: every outcome and
//! not-stored reason, store errors by operation, store and fill times, and
//! the hot tier's size.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::*;
use larder::{Cache, Policy};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// One recorder for the whole test binary (a process has one).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("the only recorder");
        handle
    })
}

/// The samples of a Prometheus text exposition: `name{labels}` (labels
/// sorted, as `k="v"` joined by commas) to value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = value.parse().expect("a number");
        let series = match series.split_once('{') {
            None => series.to_owned(),
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("closed labels");
                let mut pairs: Vec<&str> = labels.split(',').filter(|p| !p.is_empty()).collect();
                pairs.sort_unstable();
                format!("{name}{{{}}}", pairs.join(","))
            }
        };
        samples.insert(series, value);
    }
    samples
}

fn sample(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

fn app(cache: &Cache) -> Router {
    Router::new()
        .route("/items", get(|| async { "[1, 2]" }))
        .route(
            "/session",
            get(|| async { ([("set-cookie", "id=1")], "yours") }),
        )
        .layer(cache.layer(Policy::ttl(Duration::from_secs(60))))
}

#[tokio::test]
async fn outcomes_reasons_times_and_sizes_reach_the_recorder() {
    let handle = handle();
    let cache = Cache::builder().name("metered").build();
    let app = app(&cache);
    get_reply(&app, "/items").await; // miss, stored
    get_reply(&app, "/items").await; // store hit; the hot tier keeps a copy
    get_reply(&app, "/items").await; // hot hit
    get_reply(&app, "/session").await; // miss, not stored: set-cookie
    send(
        &app,
        request("POST", "/items")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;

    let s = parse(&handle.render());
    let c = r#"cache="metered""#;
    assert_eq!(
        sample(
            &s,
            &format!(r#"larder_requests_total{{{c},outcome="hit"}}"#)
        ),
        2.0
    );
    assert_eq!(
        sample(
            &s,
            &format!(r#"larder_requests_total{{{c},outcome="miss"}}"#)
        ),
        2.0
    );
    assert_eq!(
        sample(
            &s,
            &format!(r#"larder_requests_total{{{c},outcome="bypass"}}"#)
        ),
        1.0
    );
    assert_eq!(sample(&s, &format!("larder_hot_hits_total{{{c}}}")), 1.0);
    assert_eq!(sample(&s, &format!("larder_stores_total{{{c}}}")), 1.0);
    assert_eq!(
        sample(
            &s,
            &format!(r#"larder_not_stored_total{{{c},reason="set-cookie"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(&s, &format!("larder_fill_seconds_count{{{c}}}")),
        1.0
    );
    assert!(
        sample(
            &s,
            &format!(r#"larder_store_seconds_count{{{c},op="get"}}"#)
        ) >= 2.0
    );
    assert!(
        sample(
            &s,
            &format!(r#"larder_store_seconds_count{{{c},op="put"}}"#)
        ) >= 1.0
    );
    assert_eq!(sample(&s, &format!("larder_hot_entries{{{c}}}")), 1.0);
    assert!(sample(&s, &format!("larder_hot_bytes{{{c}}}")) > 0.0);
    // The memory stores of this binary's caches, together (no cache label).
    assert!(sample(&s, "larder_memory_store_entries") >= 1.0);
    assert!(sample(&s, "larder_memory_store_bytes") > 0.0);
}

#[tokio::test]
async fn store_errors_are_counted_by_operation() {
    let handle = handle();
    let cache = Cache::builder()
        .name("dead")
        .shared_store(Arc::new(DeadStore))
        .build();
    let reply = get_reply(&app(&cache), "/items").await;
    assert_eq!(reply.text(), "[1, 2]", "served as a miss");
    cache.purge_tag("products").await.unwrap_err();
    let s = parse(&handle.render());
    let errors: f64 = s
        .iter()
        .filter(|(k, _)| {
            k.starts_with("larder_store_errors_total{") && k.contains(r#"cache="dead""#)
        })
        .map(|(_, v)| v)
        .sum();
    assert!(errors >= 1.0, "{s:#?}");
    assert!(
        s.keys()
            .any(|k| k.starts_with("larder_store_errors_total{") && k.contains(r#"op=""#)),
        "by operation: {s:#?}"
    );
}
