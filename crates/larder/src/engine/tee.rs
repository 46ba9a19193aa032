//! A miss streamed to its client while it is stored: the response's head
//! goes out as soon as the handler's does, each body frame as it comes,
//! and a copy of the frames is kept to store the whole when it ends.
//!
//! - Stored when the body ends within `max_body_bytes` (and without
//!   trailers); dropped from storing, never from the client, when it grows
//!   past it, or when all fills together would hold more than the cache's
//!   in-flight budget ([`CacheBuilder::in_flight_bytes`]).
//! - Requests coalesced on the key wait for the stored entry, as they do
//!   for a buffered fill. They are released at once when the stream ends
//!   otherwise: too large (they fetch their own), broken or stalled (they
//!   get the same failure, [`Failure`]), or its client gone (the key is
//!   abandoned and the next of them fetches it).
//! - Memory: the copy kept for storing is at most `max_body_bytes` per
//!   fill and the budget for all; what streams to the client is never
//!   held here. The handler's body is read only as fast as the client
//!   reads (backpressure): a slow reader slows its own fetch.
//!
//! [`CacheBuilder::in_flight_bytes`]: super::CacheBuilder::in_flight_bytes

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header;
use http::{response, Method, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};

use super::body::{to_bytes_frame, CacheBody};
use super::coalesce::{Landed, Leader};
use super::failed::Failure;
use super::fill::{Fill, Plan};
use super::respond::Answer;
use super::Cache;
use crate::entry::VariantIndex;
use crate::policy::key::PrimaryKey;
use crate::policy::storable::Storable;
use crate::policy::{conditional, freshness, NotStored};

/// The default in-flight budget of streamed misses: 64 MiB.
///
/// ```
/// assert_eq!(larder::DEFAULT_IN_FLIGHT_BYTES, 64 << 20);
/// ```
pub const DEFAULT_IN_FLIGHT_BYTES: usize = 64 << 20;

/// Bytes held by streamed fills to store their bodies, all together.
pub(crate) struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Budget {
        Budget {
            used: AtomicUsize::new(0),
            max,
        }
    }

    fn take(&self, n: usize) -> bool {
        let before = self.used.fetch_add(n, Ordering::AcqRel);
        if before.saturating_add(n) > self.max {
            self.used.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// A share of the budget; given back when dropped.
struct Reserved {
    cache: Cache,
    bytes: usize,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.cache.inner.in_flight.give(self.bytes);
    }
}

impl Fill {
    /// Like [`Fill::complete`], but a storable response is not read whole
    /// before its client gets it: the head goes out at once and the body
    /// streams as the handler sends it, while a copy is stored when it
    /// ends (see the module notes on limits and coalesced requests). A
    /// failure of the body (`failure_of` says which: a timeout or broken)
    /// ends the client's body in that error, stores nothing, and answers
    /// the requests waiting on this fill at once ([`Fill::failed`]).
    ///
    /// What cannot stream is completed as [`Fill::complete`] does: HEAD,
    /// requests with preconditions or `Range` (their answer is computed
    /// from the whole body), a 304 to a revalidation, an error answered
    /// with a stale entry. On a streamed miss `Cache-Status` says `stored`
    /// when the body's length is known and within the limit (the entry is
    /// written when it ends), and the client's response carries the
    /// handler's `Content-Length` or none; the `ETag` the cache derives
    /// from a body is only on the stored entry.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use http_body_util::BodyExt;
    /// use larder::{Cache, Failure, Lookup, Policy};
    ///
    /// let cache = Cache::builder().build();
    /// let policy = Arc::new(Policy::ttl(Duration::from_secs(60)));
    /// let (parts, ()) = http::Request::get("http://h/a").body(()).unwrap().into_parts();
    /// let Lookup::Forward(fill) = cache.lookup(&parts, &policy).await else { unreachable!() };
    /// let upstream = http::Response::new(http_body_util::Full::new(bytes::Bytes::from("hi")));
    /// let response = fill.complete_streaming(upstream, |_| Failure::Broken).await;
    /// assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "hi");
    /// # tokio::time::sleep(Duration::from_millis(50)).await; // stored in the background
    /// let Lookup::Respond(hit) = cache.lookup(&parts, &policy).await else { panic!("stored") };
    /// assert_eq!(hit.body(), "hi");
    /// # });
    /// ```
    pub async fn complete_streaming<B>(
        mut self,
        response: Response<B>,
        failure_of: fn(&B::Error) -> Failure,
    ) -> Response<CacheBody<B>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Send,
    {
        if !self.streams(response.status()) {
            return self.complete(response).await;
        }
        let (primary, index, leader) = self.take_store_plan();
        let response_time = self.cache.inner.clock.now();
        let (parts, body) = response.into_parts();
        let (storable, initial_age) = match self.decide(&parts, response_time) {
            Ok(decided) => decided,
            Err(reason) => {
                self.uncacheable(&primary, leader, reason).await;
                let response = Response::from_parts(parts, CacheBody::stream(body));
                return self.forwarded(response, Some(reason), true);
            }
        };
        let max = self.cache.inner.max_body;
        let hint = body.size_hint();
        if hint.lower() > max as u64 {
            let reason = NotStored::TooLarge;
            self.uncacheable(&primary, leader, reason).await;
            let response = Response::from_parts(parts, CacheBody::stream(body));
            return self.forwarded(response, Some(reason), true);
        }
        let stored = !self.offline && hint.exact().is_some_and(|n| n <= max as u64);
        let head = self.streamed_head(
            &primary,
            &parts,
            &storable,
            response_time,
            initial_age,
            stored,
        );
        let cache = self.cache.clone();
        let tee = Tee {
            body: Box::pin(body),
            failure_of,
            storing: None,
            last: None,
            capture: Some(Capture {
                fill: self,
                primary,
                index,
                leader,
                parts,
                storable,
                response_time,
                initial_age,
                frames: Vec::new(),
                len: 0,
                reserved: Reserved { cache, bytes: 0 },
            }),
        };
        Response::from_parts(head, CacheBody::tee(tee))
    }

    /// Whether this fill's response streams (see [`Fill::complete_streaming`]).
    fn streams(&self, status: StatusCode) -> bool {
        let Plan::Store { .. } = self.plan else {
            return false;
        };
        let revalidated = status == StatusCode::NOT_MODIFIED
            && self.validating.load(Ordering::Relaxed)
            && self.stored.is_some();
        let stale_instead =
            freshness::is_error_for_stale(status) && self.stale_fallback && self.stored.is_some();
        self.method == Method::GET
            && !conditional::has_preconditions(&self.headers)
            && !self.headers.contains_key(header::RANGE)
            && !revalidated
            && !stale_instead
    }

    /// The head a streamed miss's client gets: what it would get from the
    /// stored entry, but for what only the whole body can tell
    /// (`Content-Length` is the handler's, or none; no derived `ETag`).
    fn streamed_head(
        &self,
        primary: &PrimaryKey,
        parts: &response::Parts,
        storable: &Storable,
        response_time: SystemTime,
        initial_age: Duration,
        stored: bool,
    ) -> response::Parts {
        let length = parts.headers.get(header::CONTENT_LENGTH).cloned();
        let etag = parts.headers.contains_key(header::ETAG);
        // Fields named by private="..."/no-cache="..." are not stored, but
        // this client, whose request produced them, gets them.
        let own_fields: Vec<_> = storable
            .strip
            .iter()
            .flat_map(|name| {
                let values = parts.headers.get_all(name).iter();
                values.map(move |v| (name.clone(), v.clone()))
            })
            .collect();
        let mut entry = self.entry(
            primary,
            parts.headers.clone(),
            parts.status,
            Bytes::new(),
            storable.clone(),
            response_time,
            initial_age,
        );
        match length {
            Some(length) => entry.headers.insert(header::CONTENT_LENGTH, length),
            None => entry.headers.remove(header::CONTENT_LENGTH),
        };
        if !etag {
            entry.headers.remove(header::ETAG);
        }
        let answer = Answer {
            fwd: Some(self.fwd),
            fwd_status: Some(parts.status.as_u16()),
            stored,
            legacy: "MISS",
            ..Answer::default()
        };
        let (mut head, _) = self.answer_from(entry, answer).into_parts();
        head.version = parts.version;
        for (name, value) in own_fields {
            head.headers.append(name, value);
        }
        head
    }
}

/// The handler's body on its way to the client, copied for storing.
pub(crate) struct Tee<B: Body> {
    body: Pin<Box<B>>,
    failure_of: fn(&B::Error) -> Failure,
    /// `None` once storing, given up, or failed.
    capture: Option<Capture>,
    /// Storing the whole body, before its end reaches the client.
    storing: Option<Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    /// The last frame, held while storing.
    last: Option<Frame<Bytes>>,
}

/// What storing the body takes once it has all come.
struct Capture {
    fill: Fill,
    primary: PrimaryKey,
    index: Option<VariantIndex>,
    leader: Option<Leader>,
    parts: response::Parts,
    storable: Storable,
    response_time: SystemTime,
    initial_age: Duration,
    frames: Vec<Bytes>,
    len: usize,
    reserved: Reserved,
}

impl Capture {
    /// Keeps a copy of `data`; `Err` when storing must stop.
    fn keep(&mut self, data: &Bytes) -> Result<(), NotStored> {
        let n = data.len();
        if self.len.saturating_add(n) > self.fill.cache.inner.max_body {
            return Err(NotStored::TooLarge);
        }
        if !self.fill.cache.inner.in_flight.take(n) {
            return Err(NotStored::TooLarge);
        }
        self.reserved.bytes += n;
        self.len += n;
        self.frames.push(data.clone());
        Ok(())
    }

    /// The body came whole: store it. The client's body ends once this
    /// has run, so that its next request finds the entry.
    fn finish(self) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let Capture {
                mut fill,
                primary,
                index,
                leader,
                parts,
                storable,
                response_time,
                initial_age,
                frames,
                len,
                reserved,
            } = self;
            let body = concat(frames, len);
            let entry = fill.entry(
                &primary,
                parts.headers,
                parts.status,
                body,
                storable,
                response_time,
                initial_age,
            );
            let _ = fill.land(&primary, index, leader, entry).await;
            drop(reserved);
        })
    }

    /// Storing stops; the client's stream goes on. A body too large or
    /// with trailers is uncacheable (hit-for-miss, waiting requests fetch
    /// their own); one that found the budget spent is only not stored.
    fn give_up(self, reason: NotStored, budget_spent: bool) {
        let Capture {
            mut fill,
            primary,
            leader,
            reserved,
            ..
        } = self;
        drop(reserved);
        if budget_spent {
            tracing::debug!(uri = %fill.uri, "larder: in-flight budget spent; streaming on without storing");
            fill.cache.inner.counters.not_stored(reason);
            if let Some(leader) = leader {
                leader.land(Landed::Uncacheable);
            }
            drop(fill);
            return;
        }
        spawn(async move {
            fill.uncacheable(&primary, leader, reason).await;
        });
    }

    /// The body broke off or stalled: nothing is stored, and the requests
    /// waiting on the fill get the same failure at once.
    fn fail(self, failure: Failure) {
        let Capture {
            mut fill, leader, ..
        } = self;
        fill.release_failed(leader, failure);
    }
}

/// Runs `task` on the current runtime; outside one, drops it (a fill
/// dropped is abandoned, and its waiters fetch on their own).
fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(task);
    }
}

fn concat(frames: Vec<Bytes>, len: usize) -> Bytes {
    if frames.len() == 1 {
        return frames.into_iter().next().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(len);
    for frame in frames {
        out.extend_from_slice(&frame);
    }
    out.freeze()
}

// The inner body is boxed and pinned, and `Capture` holds no pinned data.
impl<B: Body> Unpin for Tee<B> {}

impl<B: Body> Tee<B> {
    pub(crate) fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(storing) = &mut this.storing {
            ready!(storing.as_mut().poll(cx));
            this.storing = None;
            return Poll::Ready(this.last.take().map(Ok));
        }
        match ready!(this.body.as_mut().poll_frame(cx)) {
            None => match this.capture.take() {
                Some(capture) => {
                    this.storing = Some(capture.finish());
                    Pin::new(this).poll_frame(cx)
                }
                None => Poll::Ready(None),
            },
            Some(Err(e)) => {
                if let Some(capture) = this.capture.take() {
                    capture.fail((this.failure_of)(&e));
                }
                Poll::Ready(Some(Err(e)))
            }
            Some(Ok(frame)) => {
                let frame = to_bytes_frame(frame);
                if let Some(capture) = &mut this.capture {
                    let kept = match frame.data_ref() {
                        Some(data) => capture.keep(data),
                        // Trailers are not stored; they pass on.
                        None => Err(NotStored::Body),
                    };
                    if let Err(reason) = kept {
                        let budget_spent = reason == NotStored::TooLarge
                            && capture.len + frame.data_ref().map_or(0, Bytes::len)
                                <= capture.fill.cache.inner.max_body;
                        if let Some(capture) = this.capture.take() {
                            capture.give_up(reason, budget_spent);
                        }
                    }
                }
                // A body that knows it has ended (its length reached) may
                // not be polled again: store now, then hand on its frame.
                if this.capture.is_some() && this.body.is_end_stream() {
                    if let Some(capture) = this.capture.take() {
                        this.storing = Some(capture.finish());
                        this.last = Some(frame);
                        return Pin::new(this).poll_frame(cx);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        // Until stored, the end is still to be polled for.
        self.capture.is_none()
            && self.storing.is_none()
            && self.last.is_none()
            && self.body.is_end_stream()
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Fill {
    /// Tells the requests waiting on this fill that it failed, and frees
    /// the key's lease (the stream of its own client goes on to its end).
    fn release_failed(&mut self, leader: Option<Leader>, failure: Failure) {
        if let Some(leader) = leader {
            leader.land(Landed::Failed(failure));
        }
        if let Some(lease) = self.lease.take() {
            lease.release_in_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = Budget::new(10);
        assert!(budget.take(6));
        assert!(!budget.take(5), "over the limit");
        assert_eq!(budget.used(), 6, "a refused share is not kept");
        assert!(budget.take(4));
        budget.give(10);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn concat_keeps_order() {
        let frames = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")];
        assert_eq!(concat(frames, 4), "abcd");
        assert_eq!(concat(vec![Bytes::from_static(b"x")], 1), "x");
        assert_eq!(concat(Vec::new(), 0), "");
    }
}
