//! The admin listener's `GET /metrics`: everything the engine reports
//! through the `metrics` facade (see the `larder` crate's README, "Seeing
//! what it does"), plus the proxy's own request latency by outcome, in
//! Prometheus text from `metrics-exporter-prometheus`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName};
use larder::policy::Fwd;
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
            start_upkeep(handle.clone());
            Some(handle)
        })
        .as_ref()
}

/// How often the recorder folds the samples it holds into its
/// histograms. The exporter keeps every histogram sample until then (or
/// until a scrape): without this, a proxy nobody scrapes, or one without
/// an admin listener, would keep them all, about 18 bytes a request, for
/// as long as it runs.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Upkeeps run so far, for the test that they run unasked.
static UPKEEPS: AtomicU64 = AtomicU64::new(0);

fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("larder-metrics".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
            UPKEEPS.fetch_add(1, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "larder: cannot start the metrics upkeep; samples wait for scrapes");
    }
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
    handles[outcome_of(headers) as usize].record(started.elapsed().as_secs_f64());
}

/// Every [`Outcome`]'s label, in its order.
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
/// as a 400 for a bad request target). Its value is its label's place in
/// [`OUTCOMES`].
#[derive(Clone, Copy)]
enum Outcome {
    None,
    Hit,
    Stale,
    Collapsed,
    Bypass,
    Method,
    UriMiss,
    VaryMiss,
    Miss,
    Request,
    Revalidate,
    Partial,
    Other,
}

/// The outcome a response's `Cache-Status` gives. Every request pays for
/// it, so it reads the member's bytes once, from the end, in place: no
/// `str` searches and no label comparisons (the engine says the outcome
/// only in the header it writes).
fn outcome_of(headers: &HeaderMap) -> Outcome {
    const NAME: HeaderName = HeaderName::from_static("cache-status");
    // This cache's member is the last one: the last line, after its last
    // comma (RFC 9211 §2: each cache appends its own).
    let Some(value) = headers.get_all(NAME).iter().next_back() else {
        return Outcome::None;
    };
    let value = value.as_bytes();
    let (mut hit, mut stale, mut collapsed, mut fwd) = (false, false, false, None);
    // Each `;` from the end starts a parameter that runs to the previous
    // one found; what is left before the first is the cache's name.
    let mut end = value.len();
    for at in (0..value.len()).rev() {
        match value[at] {
            b';' => {
                match value[at + 1..end].trim_ascii() {
                    b"hit" => hit = true,
                    b"collapsed" => collapsed = true,
                    p if p.starts_with(b"ttl=-") => stale = true,
                    // The last `fwd` (the first seen from the end) counts.
                    p if p.starts_with(b"fwd=") && fwd.is_none() => fwd = Some(&p[4..]),
                    _ => {}
                }
                end = at;
            }
            b',' => break,
            _ => {}
        }
    }
    if hit {
        return if stale { Outcome::Stale } else { Outcome::Hit };
    }
    if collapsed {
        return Outcome::Collapsed;
    }
    let Some(token) = fwd else {
        return Outcome::None;
    };
    match Fwd::from_token(token) {
        Some(Fwd::Bypass) => Outcome::Bypass,
        Some(Fwd::Method) => Outcome::Method,
        Some(Fwd::UriMiss) => Outcome::UriMiss,
        Some(Fwd::VaryMiss) => Outcome::VaryMiss,
        Some(Fwd::Miss) => Outcome::Miss,
        Some(Fwd::Request) => Outcome::Request,
        Some(Fwd::Stale) => Outcome::Revalidate,
        // RFC 9211's, which caches nearer the origin may write.
        None if token == b"partial" => Outcome::Partial,
        None => Outcome::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(headers: &HeaderMap) -> &'static str {
        OUTCOMES[outcome_of(headers) as usize]
    }

    /// What the recorder holds is folded in without a scrape: otherwise
    /// every request's sample stays in memory until someone asks.
    #[test]
    fn samples_are_folded_in_though_nobody_scrapes() {
        assert!(handle().is_some(), "nothing else here installs a recorder");
        let before = UPKEEPS.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        while UPKEEPS.load(Ordering::Relaxed) < before + 2 {
            assert!(Instant::now() < deadline, "no upkeep ran in a minute");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

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
    fn outcome_reads_only_the_last_member_as_written() {
        // Spacing is the writer's choice (RFC 9211 §2 is a structured list).
        assert_eq!(outcome(&status("larder;hit;ttl=-2")), "stale");
        assert_eq!(outcome(&status("larder ;\thit ; ttl=9 ")), "hit");
        assert_eq!(
            outcome(&status("a; hit,b; fwd=miss ,larder;fwd=bypass")),
            "bypass"
        );
        // The last line is the last member's, whatever earlier lines say.
        let mut two = status("larder; hit");
        two.append("cache-status", "larder; fwd=vary-miss".parse().unwrap());
        assert_eq!(outcome(&two), "vary-miss");
        // A member without parameters, or an earlier member's, say nothing.
        assert_eq!(outcome(&status("larder")), "none");
        assert_eq!(outcome(&status("larder; hit, larder")), "none");
        assert_eq!(outcome(&status("larder; hits; ttl=-1")), "none");
        // Of two `fwd`, the last; another member's bytes are its own.
        assert_eq!(outcome(&status("larder; fwd=miss; fwd=bypass")), "bypass");
        let mut odd = HeaderMap::new();
        odd.insert(
            "cache-status",
            http::HeaderValue::from_bytes(b"origin; x=\xff, larder; hit").unwrap(),
        );
        assert_eq!(outcome(&odd), "hit");
    }

    #[test]
    fn every_label_is_in_its_place() {
        assert_eq!(OUTCOMES[Outcome::None as usize], "none");
        assert_eq!(OUTCOMES[Outcome::Other as usize], "other");
        assert_eq!(OUTCOMES.len(), Outcome::Other as usize + 1);
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
