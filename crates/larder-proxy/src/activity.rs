//! What one client connection is doing, for its idle (keep-alive) and
//! header timeouts, which hyper runs as one: its `header_read_timeout`
//! starts when the connection goes idle, so a connection kept alive for
//! 75 s would also get 75 s to send a request head. Here the two are
//! apart, as in nginx: `client_keepalive_timeout` from the end of the
//! last response until the next request's first byte, then
//! `client_header_timeout` until its head is read.
//!
//! The connection's stream counts the bytes it reads ([`Watched`]); its
//! service counts the requests being answered, whose bodies say when
//! they end ([`Tracked`]); a watchdog beside the connection ([`watchdog`])
//! sleeps until the next deadline and says which one passed.
//!
//! The stream also carries the upstream's 1xx responses to an HTTP/1.1
//! client ([`Interim`]): RFC 9110 §15.2 has a proxy forward them, and
//! hyper's server (1.x) cannot send one. While a request is in flight
//! hyper writes nothing of its own until the final response, so an
//! interim response written between two of hyper's flushed writes lands
//! exactly where it belongs: after the request, before the final head.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// No byte read since the connection went idle.
const NONE: u64 = u64::MAX;
/// Bytes read since the connection went idle, their time not taken yet:
/// a head that comes whole starts its request before its time is needed,
/// so only one that stops short is stamped (by the read that finds no
/// more), and a hit costs no clock read for it.
const UNSTAMPED: u64 = u64::MAX - 1;

/// One connection's activity, shared by its stream, its service and its
/// watchdog. Times are milliseconds since the connection opened.
pub(crate) struct Activity {
    start: Instant,
    /// Requests whose responses have not ended.
    active: AtomicUsize,
    /// When the first byte came since the connection went idle.
    first_read: AtomicU64,
    /// When the last response ended.
    idle_since: AtomicU64,
}

/// Which deadline passed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Idle past `client_keepalive_timeout`: close it (gracefully).
    Idle,
    /// A request head not read within `client_header_timeout`: drop it.
    Header,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            active: AtomicUsize::new(0),
            // A new connection is waiting for its first request head: the
            // header timeout runs from its start (nginx does the same).
            first_read: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
        })
    }

    /// Whether a request has reached the service and its response has not
    /// ended.
    pub(crate) fn in_flight(&self) -> bool {
        self.active.load(Ordering::Acquire) > 0
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(UNSTAMPED - 1)
    }

    /// Bytes came.
    fn read(&self) {
        if self.first_read.load(Ordering::Relaxed) == NONE {
            let _ = self.first_read.compare_exchange(
                NONE,
                UNSTAMPED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// A read found nothing more: a head begun since the connection went
    /// idle, and not yet a request, gets the time (hyper reads until
    /// nothing is left before it waits, so this comes within the same
    /// poll as the head's first bytes).
    fn stalled(&self) {
        // A request in flight (its head whole) needs no time: the reads
        // hyper makes meanwhile cost none.
        if self.first_read.load(Ordering::Relaxed) == UNSTAMPED
            && self.active.load(Ordering::Acquire) == 0
        {
            self.stamp();
        }
    }

    /// When the first byte since the connection went idle came, taking
    /// now if it was not taken yet; [`NONE`] if none came.
    fn stamp(&self) -> u64 {
        let now = self.now();
        match self
            .first_read
            .compare_exchange(UNSTAMPED, now, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => now,
            Err(first) => first,
        }
    }

    /// A request reached the service; its response body ends it.
    pub(crate) fn begin(self: &Arc<Self>) -> Arc<Activity> {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.clone()
    }

    fn end(&self) {
        if self.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since.store(self.now(), Ordering::Relaxed);
            self.first_read.store(NONE, Ordering::Relaxed);
        }
    }
}

/// Resolves when the connection has been idle past `keepalive`, or has
/// been reading a request head for longer than `header`.
///
/// Nothing tells it of requests and responses (that would cost every
/// request a wake-up and a timer): it looks at the connection's activity
/// when a deadline may have come, and no deadline can come sooner than
/// the shorter of the two timeouts from any moment, so it sleeps at most
/// that long between looks (30 s by default).
pub(crate) async fn watchdog(
    activity: &Activity,
    keepalive: Duration,
    header: Duration,
) -> Expired {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 2);
    let step = ms(keepalive.min(header)).max(1);
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        let now = activity.now();
        let next = if activity.active.load(Ordering::Acquire) > 0 {
            now.saturating_add(step)
        } else {
            let mut first = activity.first_read.load(Ordering::Relaxed);
            if first == UNSTAMPED {
                // Not stamped by a read (only if one came from another
                // path than hyper's): from now, at the latest.
                first = activity.stamp();
            }
            let (deadline, what) = if first == NONE {
                let idle = activity.idle_since.load(Ordering::Relaxed);
                (idle.saturating_add(ms(keepalive)), Expired::Idle)
            } else {
                (first.saturating_add(ms(header)), Expired::Header)
            };
            // A request may have begun since the loads: look once more.
            if now >= deadline && activity.active.load(Ordering::Acquire) == 0 {
                return what;
            }
            deadline.min(now.saturating_add(step)).max(now + 1)
        };
        sleep
            .as_mut()
            .reset(activity.start + Duration::from_millis(next));
        sleep.as_mut().await;
    }
}

/// Interim (1xx) responses waiting to be written to one HTTP/1.1
/// connection, for the request in flight on it.
/// No request open for interim responses.
const CLOSED: u64 = 0;

/// The hit path touches only its atomics: the lock is taken when a 1xx
/// comes, or while a forwarded request may get one.
#[derive(Default)]
pub(crate) struct Interim {
    state: Mutex<InterimState>,
    /// Whether `state` holds bytes: most polls find none and skip the lock.
    pending: AtomicBool,
    /// The request that may still get interim responses, numbered so that
    /// a late one for a request already answered is dropped; [`CLOSED`]:
    /// none.
    open: AtomicU64,
    next: AtomicU64,
    /// Whether the open request was forwarded asking for them: the stream
    /// then leaves its waker to be woken when one comes.
    armed: AtomicBool,
}

#[derive(Default)]
struct InterimState {
    /// Encoded heads, and how much of them is written.
    bytes: Vec<u8>,
    written: usize,
    /// The connection's task, to wake when there is something to write.
    waker: Option<Waker>,
}

impl Interim {
    /// A request reached the service: interim responses for it may come
    /// until [`Interim::close`].
    pub(crate) fn open(self: &Arc<Self>) -> InterimSender {
        let request = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.open.store(request, Ordering::Release);
        InterimSender {
            interim: self.clone(),
            request,
        }
    }

    /// The final response is about to be written: what was not started
    /// is dropped (it would come after the final head).
    pub(crate) fn close(&self, request: u64) {
        if self
            .open
            .compare_exchange(request, CLOSED, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.armed.store(false, Ordering::Release);
        if self.pending.load(Ordering::Acquire) {
            let mut state = self.lock();
            if state.written == 0 {
                state.bytes.clear();
                self.pending.store(false, Ordering::Release);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InterimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends interim responses to the client of one request (a request
/// extension the listener sets on HTTP/1.1 requests).
#[derive(Clone)]
pub(crate) struct InterimSender {
    interim: Arc<Interim>,
    request: u64,
}

impl InterimSender {
    /// Queues a 1xx head for the client (hop-by-hop fields left out).
    pub(crate) fn send(&self, status: http::StatusCode, headers: &http::HeaderMap) {
        let mut headers = headers.clone();
        larder::policy::headers::strip_hop_by_hop(&mut headers);
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .into_bytes();
        for (name, value) in &headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let mut state = self.interim.lock();
        if self.interim.open.load(Ordering::Acquire) != self.request {
            return;
        }
        state.bytes.extend_from_slice(&head);
        self.interim.pending.store(true, Ordering::Release);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// The request this sender belongs to.
    pub(crate) fn request(&self) -> u64 {
        self.request
    }

    /// The request goes upstream asking for 1xx: from now on the
    /// connection's stream leaves its waker for them.
    pub(crate) fn arm(&self) {
        if self.interim.open.load(Ordering::Acquire) == self.request {
            self.interim.armed.store(true, Ordering::Release);
        }
    }
}

/// A client connection's stream, noting when bytes arrive, and writing
/// interim responses between hyper's writes.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    interim: Option<Arc<Interim>>,
    /// hyper wrote bytes it has not flushed yet: an interim response now
    /// could land inside its previous response.
    dirty: bool,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Watched<S> {
        Watched {
            inner,
            activity,
            interim: None,
            dirty: false,
        }
    }

    /// With interim responses written to it (HTTP/1.1 connections).
    pub(crate) fn with_interim(mut self, interim: Arc<Interim>) -> Watched<S> {
        self.interim = Some(interim);
        self
    }
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Writes the queued interim responses, if hyper has nothing of its
    /// own unflushed. `Ready(Ok)`: nothing (more) to write now.
    fn poll_interim(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Some(interim) = &self.interim else {
            return Poll::Ready(Ok(()));
        };
        if !interim.pending.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        let mut state = interim.lock();
        if self.dirty && state.written == 0 {
            // Not between two of hyper's writes: later, after its flush.
            return Poll::Ready(Ok(()));
        }
        let mut wrote = false;
        while state.written < state.bytes.len() {
            let from = state.written;
            match Pin::new(&mut self.inner).poll_write(cx, &state.bytes[from..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    state.written += n;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        state.bytes.clear();
        state.written = 0;
        interim.pending.store(false, Ordering::Release);
        drop(state);
        if wrote {
            // Sent now, not when hyper next flushes (after the final head).
            return Pin::new(&mut self.inner).poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }

    fn park(&self, cx: &Context<'_>) {
        let armed = |i: &&Arc<Interim>| i.armed.load(Ordering::Acquire);
        if let Some(interim) = self.interim.as_ref().filter(armed) {
            let mut state = interim.lock();
            let same = state
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()));
            if !same {
                state.waker = Some(cx.waker().clone());
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        // hyper reads (for the body, or to see the client go) while the
        // final response is not ready: the moment to send what came.
        if let Poll::Ready(Err(e)) = this.poll_interim(cx) {
            return Poll::Ready(Err(e));
        }
        this.park(cx);
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.activity.read(),
            Poll::Pending => this.activity.stalled(),
            _ => {}
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        // The final head comes after what is queued, never inside it.
        std::task::ready!(this.poll_interim(cx))?;
        let wrote = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.dirty |= wrote > 0;
        Poll::Ready(Ok(wrote))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        this.dirty = false;
        this.poll_interim(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_interim(cx))?;
        let wrote = std::task::ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.dirty |= wrote > 0;
        Poll::Ready(Ok(wrote))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A response body that tells its connection's [`Activity`] when it ends
/// (sent whole, broken off, or dropped).
pub(crate) struct Tracked<B> {
    inner: B,
    activity: Option<Arc<Activity>>,
}

impl<B> Tracked<B> {
    pub(crate) fn new(inner: B, activity: Arc<Activity>) -> Tracked<B> {
        Tracked {
            inner,
            activity: Some(activity),
        }
    }

    fn finish(&mut self) {
        if let Some(activity) = self.activity.take() {
            activity.end();
        }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_and_header_deadlines_are_apart() {
        let keepalive = Duration::from_secs(75);
        let header = Duration::from_secs(5);
        // A new connection that sends nothing: the header timeout.
        let a = Activity::new();
        let started = Instant::now();
        assert_eq!(watchdog(&a, keepalive, header).await, Expired::Header);
        assert_eq!(started.elapsed(), header);
        // After a response: idle until the keep-alive timeout.
        let a = Activity::new();
        drop(Tracked::new((), a.begin()));
        let idle = Instant::now();
        assert_eq!(watchdog(&a, keepalive, header).await, Expired::Idle);
        assert_eq!(idle.elapsed(), keepalive);
        // A request in flight holds the watchdog however long it takes.
        let a = Activity::new();
        let answering = Tracked::new((), a.begin());
        let waited =
            tokio::time::timeout(Duration::from_secs(600), watchdog(&a, keepalive, header));
        assert!(waited.await.is_err());
        drop(answering);
        assert_eq!(watchdog(&a, keepalive, header).await, Expired::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn the_header_timeout_runs_from_a_heads_first_byte() {
        let keepalive = Duration::from_secs(75);
        let header = Duration::from_secs(5);
        let a = Activity::new();
        drop(Tracked::new((), a.begin()));
        tokio::time::sleep(Duration::from_secs(10)).await;
        // Part of a head, then nothing more to read.
        a.read();
        a.stalled();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let looked = Instant::now();
        assert_eq!(watchdog(&a, keepalive, header).await, Expired::Header);
        assert_eq!(looked.elapsed(), header - Duration::from_secs(1));
        // A head read whole starts its request: no header deadline, and
        // the keep-alive one from the end of its response.
        let a = Activity::new();
        drop(Tracked::new((), a.begin()));
        a.read();
        let answering = Tracked::new((), a.begin());
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(answering);
        let idle = Instant::now();
        assert_eq!(watchdog(&a, keepalive, header).await, Expired::Idle);
        assert_eq!(idle.elapsed(), keepalive);
    }
}
