//! Responses between Python and the engine.
//!
//! Into the engine: a status, header fields and either the whole body
//! (bytes) or a note that the body streams and stays with Python (a
//! `StreamingResponse`, a body past the cache's limit). The engine sees
//! such a body as larger than it may store, so it passes it through,
//! deciding only the header fields. Out of the engine: a status, header
//! fields, and the body bytes, or `None` for "send your own body".

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::header::DATE;
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use larder::CacheBody;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// A response's body as Python hands it to the engine.
pub(crate) enum PyBody {
    /// The whole body.
    Full(Option<Bytes>),
    /// The body streams and Python sends it: the engine must not read it.
    Streamed,
}

/// What a [`PyBody::Streamed`] yields if the engine passes it on: the
/// signal that the client gets Python's own body.
#[derive(Debug)]
pub(crate) struct StreamedByPython;

impl Body for PyBody {
    type Data = Bytes;
    type Error = StreamedByPython;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamedByPython>>> {
        match self.get_mut() {
            PyBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            PyBody::Streamed => Poll::Ready(Some(Err(StreamedByPython))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, PyBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            PyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            // Past any limit: the engine streams it on without reading it.
            PyBody::Streamed => {
                let mut hint = SizeHint::new();
                hint.set_lower(u64::MAX >> 2);
                hint
            }
        }
    }
}

/// A response for the client, as the engine made it.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// `None`: send Python's own (streamed) body.
    pub body: Option<Bytes>,
    /// Answered from the cache: the body is an entry's, whose Python
    /// objects later hits may reuse ([`crate::reuse`]).
    pub from_cache: bool,
    /// The ASGI server stamps `Date` itself: the engine's is not handed
    /// to it, so the client gets one `Date` field, not two.
    pub server_date: bool,
}

impl Answer {
    /// A response the engine answered from the cache (or built itself).
    pub fn from_cache(response: Response<Bytes>, server_date: bool) -> Self {
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: Some(body),
            from_cache: true,
            server_date,
        }
    }

    /// What `Fill::complete` returned. Its body is either bytes the
    /// engine holds or Python's own, untouched: both are ready at once.
    pub fn from_fill(response: Response<CacheBody<PyBody>>, server_date: bool) -> Self {
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: collect_ready(body),
            from_cache: false,
            server_date,
        }
    }

    /// `(status, [(name, value), ...], body or None)`.
    pub fn into_python(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let skip = self.server_date.then_some(&DATE);
        let (headers, body) = match &self.body {
            Some(b) if self.from_cache => crate::reuse::hit(py, &self.headers, skip, b)?,
            Some(b) => crate::reuse::fresh(py, &self.headers, skip, b)?,
            None => (
                crate::request::header_list(py, &self.headers, skip)?,
                py.None().into_bound(py),
            ),
        };
        Ok(PyTuple::new(
            py,
            [
                self.status.into_pyobject(py)?.into_any(),
                headers.into_any(),
                body,
            ],
        )?
        .into_any())
    }
}

/// The frames of a body that needs no waiting; `None` if it turns out to
/// be Python's streamed body.
fn collect_ready(body: CacheBody<PyBody>) -> Option<Bytes> {
    let mut body = std::pin::pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(None) => break,
            Poll::Ready(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue; // no trailers come from Python
                };
                match (&mut first, &mut more) {
                    (None, _) => first = Some(data),
                    (Some(f), None) => {
                        let mut joined = BytesMut::from(&f[..]);
                        joined.extend_from_slice(&data);
                        more = Some(joined);
                    }
                    (Some(_), Some(m)) => m.extend_from_slice(&data),
                }
            }
            Poll::Ready(Some(Err(StreamedByPython))) | Poll::Pending => return None,
        }
    }
    Some(match more {
        Some(m) => m.freeze(),
        None => first.unwrap_or_default(),
    })
}

/// A response from Python for `Fill::complete`.
pub(crate) fn from_python(
    status: u16,
    headers: &Bound<'_, PyAny>,
    body: Option<Bytes>,
) -> PyResult<Response<PyBody>> {
    let status = StatusCode::from_u16(status)
        .map_err(|_| PyValueError::new_err(format!("{status} is not an HTTP status")))?;
    let Some(headers) = crate::request::header_map(headers)? else {
        return Err(PyValueError::new_err(
            "a response header field is not valid HTTP (names are tokens, values have no control characters)",
        ));
    };
    let body = match body {
        Some(b) => PyBody::Full((!b.is_empty()).then_some(b)),
        None => PyBody::Streamed,
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}
