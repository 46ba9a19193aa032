//! The admin listener's `GET /metrics`: everything the engine reports
//! through the `metrics` facade (see the `larder` crate's README, "Seeing
//! what it does"), plus the proxy's own request latency by outcome, in
//! Prometheus text from `metrics-exporter-prometheus`.

use std::sync::OnceLock;
use std::time::Instant;

use http::HeaderMap;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The latency histogram's buckets, in seconds: from a hot hit's tens of
/// microseconds to a slow upstream's seconds.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// The process's recorder, installed on first use (the proxy calls it at
/// startup); `None` when an embedding program installed its own first,
/// which then receives everything.
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "larder_proxy_request_seconds".into(),
                    ),
                    &BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The text `GET /metrics` answers with.
pub(crate) fn render() -> String {
    match handle() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => "# the program embedding larder-proxy installed its own metrics recorder\n".into(),
    }
}

/// Records one client request's time to its response head, by the
/// outcome its `Cache-Status` gives.
pub(crate) fn request_done(headers: &HeaderMap, started: Instant) {
    // One handle per outcome, taken on first use (after `run` installed
    // the recorder): a registry lookup per request would cost a hit more
    // than the rest of its accounting.
    static HANDLES: OnceLock<Vec<metrics::Histogram>> = OnceLock::new();
    let handles = HANDLES.get_or_init(|| {
        OUTCOMES
            .iter()
            .map(|o| metrics::histogram!("larder_proxy_request_seconds", "outcome" => *o))
            .collect()
    });
    let outcome = outcome(headers);
    let at = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
    handles[at].record(started.elapsed().as_secs_f64());
}

/// Every label [`outcome`] gives.
const OUTCOMES: [&str; 13] = [
    "none",
    "hit",
    "stale",
    "collapsed",
    "bypass",
    "method",
    "uri-miss",
    "vary-miss",
    "miss",
    "request",
    "revalidate",
    "partial",
    "other",
];

/// A bounded label from this cache's `Cache-Status` member: `hit`,
/// `stale` (a stale hit), `collapsed` (another request's fetch), the `fwd`
/// reason of a forward (`uri-miss`, `bypass`, `revalidate` for
/// `fwd=stale`, ...), or `none` (an answer the cache never saw, such
/// as a 400 for a bad request target).
pub(crate) fn outcome(headers: &HeaderMap) -> &'static str {
    let params = larder::policy::cache_status::last_member_params(headers);
    if params.is_empty() {
        return "none";
    }
    let (mut hit, mut stale, mut collapsed, mut fwd) = (false, false, false, None);
    for param in params.split(';').map(str::trim) {
        match param {
            "hit" => hit = true,
            "collapsed" => collapsed = true,
            p if p.starts_with("ttl=-") => stale = true,
            p if p.starts_with("fwd=") => fwd = Some(&p[4..]),
            _ => {}
        }
    }
    if hit {
        return if stale { "stale" } else { "hit" };
    }
    if collapsed {
        return "collapsed";
    }
    match fwd {
        Some("bypass") => "bypass",
        Some("method") => "method",
        Some("uri-miss") => "uri-miss",
        Some("vary-miss") => "vary-miss",
        Some("miss") => "miss",
        Some("request") => "request",
        Some("stale") => "revalidate",
        Some("partial") => "partial",
        Some(_) => "other",
        None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cache-status", value.parse().unwrap());
        h
    }

    #[test]
    fn outcome_labels_are_bounded() {
        assert_eq!(outcome(&status("larder; hit; ttl=5")), "hit");
        assert_eq!(outcome(&status("larder; hit; ttl=-3")), "stale");
        assert_eq!(
            outcome(&status("larder; fwd=uri-miss; collapsed")),
            "collapsed"
        );
        assert_eq!(
            outcome(&status("origin; hit, larder; fwd=uri-miss; stored")),
            "uri-miss"
        );
        assert_eq!(
            outcome(&status("larder; fwd=stale; fwd-status=200")),
            "revalidate"
        );
        assert_eq!(outcome(&status("larder; fwd=made-up")), "other");
        assert_eq!(outcome(&HeaderMap::new()), "none");
    }

    #[test]
    fn every_outcome_has_a_handle() {
        for value in [
            "larder; hit",
            "larder; hit; ttl=-1",
            "larder; fwd=uri-miss; collapsed",
            "larder; fwd=bypass",
            "larder; fwd=method",
            "larder; fwd=uri-miss",
            "larder; fwd=vary-miss",
            "larder; fwd=miss",
            "larder; fwd=request",
            "larder; fwd=stale",
            "larder; fwd=partial",
            "larder; fwd=else",
        ] {
            assert!(OUTCOMES.contains(&outcome(&status(value))), "{value}");
        }
        assert!(OUTCOMES.contains(&outcome(&HeaderMap::new())));
    }
}
