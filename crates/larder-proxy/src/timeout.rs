//! Bodies that may not stall: a stream whose next frame does not come
//! within a limit ends in an error, as nginx's `proxy_read_timeout` and
//! `client_body_timeout` and Varnish's `between_bytes_timeout` end theirs.
//!
//! The clock runs only while the reader waits for a frame: a slow reader
//! (backpressure) never makes the writer look stalled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which side stalled: the upstream's response body, or the client's
/// request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Upstream,
    Client,
}

/// The error a stalled body ends in: an [`std::io::Error`] of kind
/// `TimedOut` (so that `larder::Failure::of` reads it as a timeout), with
/// [`ClientStalled`] inside when the client's body stalled.
fn stalled(side: Side, limit: Duration) -> BoxError {
    match side {
        Side::Upstream => Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no body bytes from the upstream within between_bytes_timeout ({limit:?})"),
        )),
        Side::Client => Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            ClientStalled(limit),
        )),
    }
}

/// The client stopped sending its request body (`client_body_timeout`).
#[derive(Debug)]
pub(crate) struct ClientStalled(Duration);

impl std::fmt::Display for ClientStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no request body bytes from the client within client_body_timeout ({:?})",
            self.0
        )
    }
}

impl std::error::Error for ClientStalled {}

/// Whether an error's chain says the client's body stalled.
pub(crate) fn client_stalled(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<ClientStalled>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if inner.is::<ClientStalled>() {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// A body whose frames must come within `limit` of being asked for.
pub(crate) struct Timed<B> {
    inner: Pin<Box<B>>,
    limit: Duration,
    side: Side,
    /// Armed while the reader waits; reset for each wait.
    sleep: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    done: bool,
}

impl<B> Timed<B> {
    pub(crate) fn new(inner: B, limit: Duration, side: Side) -> Timed<B> {
        Timed {
            inner: Box::pin(inner),
            limit,
            side,
            sleep: None,
            waiting: false,
            done: false,
        }
    }
}

impl<B> std::fmt::Debug for Timed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed")
            .field("limit", &self.limit)
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

impl<B> Body for Timed<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                if frame.is_none() {
                    this.done = true;
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if this.limit.is_zero() {
                    return Poll::Pending;
                }
                let deadline = Instant::now() + this.limit;
                if !this.waiting {
                    this.waiting = true;
                    match &mut this.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                let Some(sleep) = &mut this.sleep else {
                    return Poll::Pending;
                };
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.done = true;
                        Poll::Ready(Some(Err(stalled(this.side, this.limit))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body that sends one frame, then never another.
    struct Stalls(bool);

    impl Body for Stalls {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 {
                return Poll::Pending;
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"first")))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_ends_in_a_timeout_error() {
        let mut body = Timed::new(Stalls(false), Duration::from_secs(60), Side::Upstream);
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        let e = body.frame().await.unwrap().unwrap_err();
        assert_eq!(larder::Failure::of(&*e), larder::Failure::Timeout);
        assert!(!client_stalled(&*e));
        assert!(body.frame().await.is_none(), "ended after the error");
        let mut body = Timed::new(Stalls(true), Duration::from_secs(1), Side::Client);
        let e = body.frame().await.unwrap().unwrap_err();
        assert!(client_stalled(&*e), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_is_not_a_stall() {
        let mut body = Timed::new(
            http_body_util::Full::new(Bytes::from_static(b"all")),
            Duration::from_secs(1),
            Side::Upstream,
        );
        // The reader takes its time before asking: the clock is not running.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let all = body.frame().await.unwrap().unwrap();
        assert_eq!(all.into_data().unwrap(), "all");
        assert!(body.frame().await.is_none());
    }
}
