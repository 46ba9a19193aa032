//! A fetch that gave no usable response: the upstream refused, timed out,
//! or broke off mid-body. Its client gets a stale entry where
//! `stale-if-error` allows, or a 502/504 that says what failed; requests
//! coalesced on the key get the same answer at once instead of waiting for
//! `coalesce_wait` or fetching one after another.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use super::coalesce::Landed;
use super::fill::{Fill, Plan};
use super::respond::{self, Answer};
use super::stats::Counters;
use super::Cache;
use crate::entry::Entry;
use crate::policy::{CacheStatus, Fwd, Policy};

/// Why a fetch gave no usable response (see [`Fill::failed`]).
///
/// ```
/// use larder::Failure;
///
/// assert_eq!(Failure::Timeout.status(), 504);
/// assert_eq!(Failure::Broken.status(), 502);
/// assert_eq!(Failure::Timeout.detail(), "upstream-timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// No response (or no more of its body) within a timeout: 504.
    Timeout,
    /// Refused, reset, or not HTTP: 502.
    Broken,
}

impl Failure {
    /// The status a client gets for it.
    pub fn status(self) -> StatusCode {
        match self {
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::Broken => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `detail` of its `Cache-Status` (RFC 9211 §2.8).
    pub fn detail(self) -> &'static str {
        match self {
            Failure::Timeout => "upstream-timeout",
            Failure::Broken => "upstream-failed",
        }
    }

    /// What an error says: a timeout when an [`std::io::Error`] of kind
    /// `TimedOut` is anywhere in its chain, broken otherwise.
    ///
    /// ```
    /// use larder::Failure;
    ///
    /// let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "stalled");
    /// assert_eq!(Failure::of(&e), Failure::Timeout);
    /// let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
    /// assert_eq!(Failure::of(&e), Failure::Broken);
    /// ```
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Failure {
        let mut next = Some(error);
        while let Some(e) = next {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                return Failure::Timeout;
            }
            next = e.source();
        }
        Failure::Broken
    }
}

/// The response the cache makes up for a failed fetch: the status, a
/// short body saying what failed, `Cache-Status` with `fwd` and `detail`.
pub(crate) fn error_response(cache: &Cache, fwd: Fwd, failure: Failure) -> Response<Bytes> {
    let status = failure.status();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let cache_status = CacheStatus {
        name: &cache.inner.name,
        fwd: Some(fwd),
        // Says what failed, not why a response was not stored: always on.
        detail: Some(failure.detail()),
        ..CacheStatus::default()
    };
    respond::stamp(cache, &mut headers, &cache_status, "MISS");
    let text = match failure {
        Failure::Timeout => format!("{status}: the upstream did not answer in time\n"),
        Failure::Broken => format!("{status}: the upstream could not be reached or broke off\n"),
    };
    let mut response = Response::new(Bytes::from(text));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

impl Fill {
    /// The handler could not answer: the upstream refused, timed out, or
    /// broke off before its response could be used. Returns what this
    /// fill's client gets: the stored response where `stale-if-error`
    /// allows (RFC 5861 §4), else a 502 or 504 with `Cache-Status: …;
    /// fwd=…; detail=upstream-timeout` (or `upstream-failed`). Requests
    /// coalesced on this fill get the same answer at once, and the key's
    /// lease is freed for the next fetch (nothing is marked uncacheable:
    /// a failure says nothing of the next response).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use larder::{Cache, Failure, Lookup, Policy};
    ///
    /// let cache = Cache::builder().build();
    /// let policy = Arc::new(Policy::ttl(Duration::from_secs(60)));
    /// let (parts, ()) = http::Request::get("http://h/a").body(()).unwrap().into_parts();
    /// let Lookup::Forward(fill) = cache.lookup(&parts, &policy).await else { unreachable!() };
    /// let response = fill.failed(Failure::Timeout);
    /// assert_eq!(response.status(), 504);
    /// assert!(response.headers()["cache-status"].to_str().unwrap().contains("detail=upstream-timeout"));
    /// # });
    /// ```
    pub fn failed(mut self, failure: Failure) -> Response<Bytes> {
        let stale = self.stale_fallback.then(|| self.stored.take()).flatten();
        if let Plan::Store {
            leader: Some(leader),
            ..
        } = std::mem::replace(&mut self.plan, Plan::Pass(None))
        {
            leader.land(Landed::Failed(failure));
        }
        if let Some(lease) = self.lease.take() {
            lease.release_in_background();
        }
        match stale {
            Some(entry) => {
                tracing::warn!(uri = %self.uri, failure = failure.detail(), "larder: upstream failed; serving stale");
                let now = self.cache.inner.clock.now();
                stale_if_error(
                    &self.cache,
                    &self.policy,
                    *entry,
                    &self.method,
                    &self.headers,
                    now,
                )
            }
            None => error_response(&self.cache, self.fwd, failure),
        }
    }
}

/// A stored response standing in for a failed fetch.
fn stale_if_error(
    cache: &Cache,
    policy: &Policy,
    entry: Entry,
    method: &Method,
    request: &HeaderMap,
    now: std::time::SystemTime,
) -> Response<Bytes> {
    Counters::bump(&cache.inner.counters.stale_hits);
    let answer = Answer {
        fwd: Some(Fwd::Stale),
        detail: cache.inner.detail.then_some("stale-if-error"),
        legacy: "STALE",
        ..Answer::default()
    };
    respond::from_entry(
        cache,
        policy,
        std::borrow::Cow::Owned(entry),
        method,
        request,
        answer,
        now,
    )
}

impl Cache {
    /// What a request coalesced on a fill that failed gets: its own stale
    /// entry where `stale-if-error` allows, else the same error.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn follower_of_failed(
        &self,
        parts: &http::request::Parts,
        policy: &Policy,
        fwd: Fwd,
        stored: Option<Box<Entry>>,
        stale_fallback: bool,
        failure: Failure,
    ) -> Response<Bytes> {
        match stored.filter(|_| stale_fallback) {
            Some(entry) => {
                let now = self.inner.clock.now();
                stale_if_error(self, policy, *entry, &parts.method, &parts.headers, now)
            }
            None => error_response(self, fwd, failure),
        }
    }
}
