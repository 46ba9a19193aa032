//! Response bodies: buffered up to a limit for storing, streamed past it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// The body of a response that passed through the cache: either bytes the
/// cache holds (a hit, or a miss it buffered), or the handler's body
/// streamed on, after whatever the cache had already read of it.
///
/// ```
/// use http_body_util::Full;
/// use larder::CacheBody;
///
/// let body: CacheBody<Full<bytes::Bytes>> = CacheBody::full("hello".into());
/// # let _ = body;
/// ```
pub struct CacheBody<B: Body> {
    kind: Kind<B>,
}

enum Kind<B: Body> {
    Full(Option<Bytes>),
    /// No body, and no claim about its length: a 304, or a HEAD answer,
    /// whose `Content-Length` (if any) describes the GET's body. An exact
    /// size hint of 0 would make frameworks write `Content-Length: 0`.
    NoBody,
    Stream {
        read: VecDeque<Frame<Bytes>>,
        rest: Option<Pin<Box<B>>>,
        error: Option<B::Error>,
    },
    /// A miss streamed to its client while it is stored (`tee.rs`).
    Tee(Box<super::tee::Tee<B>>),
}

impl<B: Body> CacheBody<B> {
    /// A body of bytes the cache holds.
    pub fn full(bytes: Bytes) -> Self {
        CacheBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        CacheBody {
            kind: Kind::Full(None),
        }
    }

    /// The body for a response the cache built. A 304, and an empty body
    /// whose `Content-Length` describes another message (a HEAD answer),
    /// get a body with no size hint, so that frameworks do not write
    /// `Content-Length: 0` over the real length (RFC 9110 §8.6, §9.3.2).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body::Body;
    /// use http_body_util::Empty;
    /// use larder::CacheBody;
    ///
    /// let head = http::Response::builder()
    ///     .header("content-length", "8")
    ///     .body(Bytes::new())
    ///     .unwrap();
    /// let body = CacheBody::<Empty<Bytes>>::for_response(head).into_body();
    /// assert_eq!(body.size_hint().exact(), None);
    /// let full = http::Response::new(Bytes::from("items v1"));
    /// let body = CacheBody::<Empty<Bytes>>::for_response(full).into_body();
    /// assert_eq!(body.size_hint().exact(), Some(8));
    /// ```
    pub fn for_response(response: http::Response<Bytes>) -> http::Response<Self> {
        let bodiless = response.status() == http::StatusCode::NOT_MODIFIED
            || (response.body().is_empty()
                && response
                    .headers()
                    .contains_key(http::header::CONTENT_LENGTH));
        response.map(|b| {
            if bodiless {
                Self::no_body()
            } else {
                Self::full(b)
            }
        })
    }

    /// No body and no size hint, for responses whose `Content-Length`
    /// describes another message's body (304, HEAD).
    pub(crate) fn no_body() -> Self {
        CacheBody { kind: Kind::NoBody }
    }

    /// The handler's body, untouched.
    pub fn stream(body: B) -> Self {
        Self::resume(VecDeque::new(), Some(Box::pin(body)), None)
    }

    /// A miss streamed to its client while it is stored.
    pub(crate) fn tee(tee: super::tee::Tee<B>) -> Self {
        CacheBody {
            kind: Kind::Tee(Box::new(tee)),
        }
    }

    fn resume(
        read: VecDeque<Frame<Bytes>>,
        rest: Option<Pin<Box<B>>>,
        error: Option<B::Error>,
    ) -> Self {
        CacheBody {
            kind: Kind::Stream { read, rest, error },
        }
    }
}

impl<B: Body> std::fmt::Debug for CacheBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::NoBody => f.write_str("CacheBody::NoBody"),
            Kind::Full(b) => f
                .debug_struct("CacheBody::Full")
                .field("len", &b.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Stream { read, .. } => f
                .debug_struct("CacheBody::Stream")
                .field("read_frames", &read.len())
                .finish(),
            Kind::Tee(_) => f.write_str("CacheBody::Tee"),
        }
    }
}

// `Kind` holds the inner body boxed and pinned, so the whole is Unpin.
impl<B: Body> Unpin for CacheBody<B> {}

impl<B: Body> Body for CacheBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Tee(tee) => Pin::new(tee.as_mut()).poll_frame(cx),
            Kind::NoBody => Poll::Ready(None),
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream { read, rest, error } => {
                if let Some(frame) = read.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(e) = error.take() {
                    return Poll::Ready(Some(Err(e)));
                }
                let Some(inner) = rest else {
                    return Poll::Ready(None);
                };
                match inner.as_mut().poll_frame(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => {
                        *rest = None;
                        Poll::Ready(None)
                    }
                    Poll::Ready(Some(Err(e))) => {
                        *rest = None;
                        Poll::Ready(Some(Err(e)))
                    }
                    Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(to_bytes_frame(frame)))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Tee(tee) => tee.is_end_stream(),
            Kind::NoBody => true,
            Kind::Full(b) => b.is_none(),
            Kind::Stream { read, rest, error } => {
                read.is_empty()
                    && error.is_none()
                    && rest.as_ref().is_none_or(|r| r.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Tee(tee) => tee.size_hint(),
            Kind::NoBody => SizeHint::new(),
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream { read, rest, error } => {
                let read: u64 = read
                    .iter()
                    .filter_map(Frame::data_ref)
                    .map(|d| d.len() as u64)
                    .sum();
                match rest {
                    // A body that ends in an error has no length: an exact
                    // one would let the server frame it as complete.
                    None if error.is_some() => {
                        let mut out = SizeHint::new();
                        out.set_lower(read);
                        out
                    }
                    None => SizeHint::with_exact(read),
                    Some(r) => {
                        let h = r.size_hint();
                        let mut out = SizeHint::new();
                        out.set_lower(h.lower() + read);
                        if let Some(upper) = h.upper() {
                            out.set_upper(upper + read);
                        }
                        out
                    }
                }
            }
        }
    }
}

pub(super) fn to_bytes_frame<D: Buf>(frame: Frame<D>) -> Frame<Bytes> {
    frame.map_data(|mut d| d.copy_to_bytes(d.remaining()))
}

/// What reading a body up to a limit gave.
pub(crate) enum Buffered<B: Body> {
    /// The whole body, within the limit and without trailers.
    Complete(Bytes),
    /// Not storable: the body is handed on as read so far plus the rest.
    Unstorable {
        body: CacheBody<B>,
        reason: crate::policy::NotStored,
    },
}

/// Reads `body` while it stays within `limit` bytes.
pub(crate) async fn buffer<B: Body>(body: B, limit: usize) -> Buffered<B> {
    let too_large = crate::policy::NotStored::TooLarge;
    if body.size_hint().lower() > limit as u64 {
        return Buffered::Unstorable {
            body: CacheBody::stream(body),
            reason: too_large,
        };
    }
    let mut body = Box::pin(body);
    let mut read: VecDeque<Frame<Bytes>> = VecDeque::new();
    let mut len = 0usize;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                return Buffered::Unstorable {
                    body: CacheBody::resume(read, None, Some(e)),
                    reason: crate::policy::NotStored::Body,
                }
            }
            Some(Ok(frame)) => {
                let frame = to_bytes_frame(frame);
                match frame.data_ref() {
                    Some(data) => len += data.len(),
                    None => {
                        // Trailers are not stored; pass them on with the rest.
                        read.push_back(frame);
                        return Buffered::Unstorable {
                            body: CacheBody::resume(read, Some(body), None),
                            reason: crate::policy::NotStored::Body,
                        };
                    }
                }
                read.push_back(frame);
                if len > limit {
                    return Buffered::Unstorable {
                        body: CacheBody::resume(read, Some(body), None),
                        reason: too_large,
                    };
                }
            }
        }
    }
    Buffered::Complete(concat(read, len))
}

fn concat(mut frames: VecDeque<Frame<Bytes>>, len: usize) -> Bytes {
    if frames.len() == 1 {
        if let Some(Ok(data)) = frames.pop_front().map(Frame::into_data) {
            return data;
        }
        return Bytes::new();
    }
    let mut out = BytesMut::with_capacity(len);
    for frame in frames {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use std::convert::Infallible;

    type Frames = futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>;

    fn chunks(n: usize, size: usize) -> StreamBody<Frames> {
        let frames: Vec<_> = (0..n)
            .map(|i| Ok(Frame::data(Bytes::from(vec![i as u8; size]))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn small_bodies_are_buffered_whole() {
        match buffer(chunks(4, 10), 100).await {
            Buffered::Complete(b) => assert_eq!(b.len(), 40),
            Buffered::Unstorable { .. } => panic!("should buffer"),
        }
    }

    #[tokio::test]
    async fn large_bodies_stream_on_intact() {
        let Buffered::Unstorable { body, reason } = buffer(chunks(10, 100), 250).await else {
            panic!("should not buffer")
        };
        assert_eq!(reason, crate::policy::NotStored::TooLarge);
        let all = body.collect().await.unwrap().to_bytes();
        let expected: Vec<u8> = (0..10u8).flat_map(|i| vec![i; 100]).collect();
        assert_eq!(all, expected);
    }

    #[tokio::test]
    async fn a_known_oversize_length_is_not_read() {
        let body = Full::new(Bytes::from(vec![1u8; 1000]));
        let Buffered::Unstorable { body, reason } = buffer(body, 10).await else {
            panic!()
        };
        assert_eq!(reason, crate::policy::NotStored::TooLarge);
        assert_eq!(body.size_hint().exact(), Some(1000));
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 1000);
    }

    #[tokio::test]
    async fn trailers_are_passed_on_not_stored() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-sum", http::HeaderValue::from_static("1"));
        let frames: Vec<Result<_, Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Ok(Frame::trailers(trailers.clone())),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let Buffered::Unstorable { body, reason } = buffer(body, 100).await else {
            panic!()
        };
        assert_eq!(reason, crate::policy::NotStored::Body);
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers(), Some(&trailers));
        assert_eq!(collected.to_bytes(), "ab");
    }

    #[tokio::test]
    async fn errors_reach_the_client_after_what_was_read() {
        let frames: Vec<Result<Frame<Bytes>, &'static str>> =
            vec![Ok(Frame::data(Bytes::from_static(b"ab"))), Err("boom")];
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let Buffered::Unstorable { mut body, reason } = buffer(body, 100).await else {
            panic!()
        };
        assert_eq!(reason, crate::policy::NotStored::Body);
        assert_eq!(body.size_hint().exact(), None, "not framed as complete");
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "ab");
        assert_eq!(body.frame().await.unwrap().unwrap_err(), "boom");
        assert!(body.frame().await.is_none());
    }
}
