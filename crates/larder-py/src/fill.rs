//! `larder._native.Fill`: a request the app must answer, and what the
//! engine does with the answer.

use std::sync::Mutex;

use bytes::Bytes;
use http::request::Parts;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::outcome::Outcome;
use crate::response::{self, Answer};
use crate::runtime::{drop_in_context, now_or_later};

/// A forwarded request: run the view (or the app), then give its response
/// to `complete`. Dropping it without completing (the view raised, the
/// client went away) releases every request waiting on it.
#[pyclass(module = "larder._native", frozen)]
pub(crate) struct Fill {
    fill: Mutex<Option<Box<larder::Fill>>>,
    /// The request as the engine saw it, for `prepare`.
    parts: Parts,
    stores: bool,
    /// The ASGI server stamps `Date` itself (see [`Answer::server_date`]).
    server_date: bool,
    /// For a background refresh: the (stale or early) response the client
    /// gets now.
    stale: Option<Py<PyAny>>,
}

impl Fill {
    pub fn wrap<'py>(
        py: Python<'py>,
        fill: Box<larder::Fill>,
        parts: Parts,
        server_date: bool,
        stale: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let stores = fill.stores();
        let fill = Fill {
            fill: Mutex::new(Some(fill)),
            parts,
            stores,
            server_date,
            stale: stale.map(Bound::unbind),
        };
        Ok(Bound::new(py, fill)?.into_any())
    }

    fn take(&self) -> PyResult<Box<larder::Fill>> {
        self.fill
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("larder: this Fill was already completed"))
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        let fill = self
            .fill
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop_in_context(fill);
    }
}

#[pymethods]
impl Fill {
    /// True when the response may be stored (so the app must produce the
    /// full representation; see `prepare`).
    #[getter]
    fn stores(&self) -> bool {
        self.stores
    }

    /// For a background refresh, the response the client gets now:
    /// `(status, headers, body)`; else `None`.
    #[getter]
    fn stale(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.stale.as_ref().map(|s| s.clone_ref(py))
    }

    /// The scope the app should answer: when the response may be stored,
    /// HEAD becomes GET and the client's conditional fields give way to
    /// the stored entry's validators (the engine's `Fill::prepare`). The
    /// same scope when nothing changes, else a copy.
    fn prepare<'py>(&self, scope: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyDict>> {
        let py = scope.py();
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.method = self.parts.method.clone();
        parts.uri = self.parts.uri.clone();
        parts.version = self.parts.version;
        parts.headers = self.parts.headers.clone();
        {
            let guard = self.fill.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_ref() {
                Some(fill) => fill.prepare(&mut parts),
                None => return Ok(scope.clone()),
            }
        }
        if parts.method == self.parts.method && parts.headers == self.parts.headers {
            return Ok(scope.clone());
        }
        let copy = scope.copy()?;
        copy.set_item(
            intern!(py, "method"),
            PyString::new(py, parts.method.as_str()),
        )?;
        copy.set_item(
            intern!(py, "headers"),
            crate::request::header_list(py, &parts.headers, None)?,
        )?;
        Ok(copy)
    }

    /// Gives the engine the app's response: `status`, ASGI `headers` and
    /// the whole `body`, or `None` when the body streams and the caller
    /// sends it. Returns what the client gets, `(status, headers, body)`
    /// with `body` `None` meaning "send your streamed body" (or an
    /// awaitable of it).
    #[pyo3(signature = (status, headers, body))]
    fn complete<'py>(
        &self,
        py: Python<'py>,
        status: u16,
        headers: &Bound<'py, PyAny>,
        body: Option<Bound<'py, PyBytes>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fill = self.take()?;
        let body = body.map(|b| Bytes::copy_from_slice(b.as_bytes()));
        let response = response::from_python(status, headers, body)?;
        let server_date = self.server_date;
        now_or_later(py, async move {
            Outcome::Answer(Answer::from_fill(
                fill.complete(response).await,
                server_date,
            ))
        })
    }

    /// Drops the fill now (no-op once completed): the requests waiting on
    /// it fetch for themselves. For a view that raised, whose frame (and
    /// so this object) an exception may keep alive.
    fn abandon(&self) {
        let fill = self.fill.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop_in_context(fill);
    }

    /// When the app failed outright (raised before answering), the stale
    /// response that may stand in for it (`stale-if-error`), or `None`.
    fn stale_on_error<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let fill = self.take()?;
        let _context = crate::runtime::runtime().enter();
        fill.stale_on_error()
            .map(|stale| Answer::from_cache(stale, self.server_date).into_python(py))
            .transpose()
    }
}
