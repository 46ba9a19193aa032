//! `larder._native`: the larder engine as a Python extension module, for
//! the `larder` Python package (FastAPI's `@larder.cache` and
//! `larder.ASGIMiddleware`).
//!
//! The Python layer only translates: an ASGI scope becomes the engine's
//! `http::request::Parts` (`request.rs`), a Starlette response its
//! `http::Response` (`response.rs`), and back. Every caching rule is the
//! engine's, exactly as the Rust adapters run it; the entries and keys in
//! a shared Redis are the same.

mod bridge;
mod cache;
mod duration;
mod fill;
mod log;
mod outcome;
mod policy;
mod request;
mod response;
mod reuse;
mod routes;
mod runtime;
mod stores;

use pyo3::prelude::*;

pyo3::create_exception!(
    larder,
    PurgeError,
    pyo3::exceptions::PyException,
    "A purge did not happen: the URL names no cached response, or the store failed."
);

#[pymodule]
#[pyo3(name = "_native")]
fn larder_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    log::install();
    m.add_class::<cache::PyCache>()?;
    m.add_class::<policy::PyPolicy>()?;
    m.add_class::<routes::PyRoutes>()?;
    m.add_class::<fill::Fill>()?;
    m.add_class::<stores::PyMemoryStore>()?;
    m.add_class::<stores::PyRedisStore>()?;
    m.add_class::<bridge::Bridge>()?;
    m.add("PurgeError", m.py().get_type::<PurgeError>())?;
    m.add("DEFAULT_MAX_BODY_BYTES", larder::DEFAULT_MAX_BODY_BYTES)?;
    m.add("DEFAULT_MEMORY_BYTES", larder::DEFAULT_MEMORY_BYTES)?;
    m.add_function(wrap_pyfunction!(reused, m)?)?;
    Ok(())
}

/// How many cached entries' Python objects hits are reusing, and their
/// body bytes: `(entries, bytes)` (see `src/reuse.rs`; for tests).
#[pyfunction]
#[pyo3(name = "_reused")]
fn reused() -> (usize, usize) {
    reuse::kept()
}
