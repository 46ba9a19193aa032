//! `larder.MemoryStore` and `larder.RedisStore`: where entries live.

use std::sync::Arc;

use larder::store::{RedisStore, Store};
use larder::{MemoryStore, DEFAULT_MEMORY_BYTES};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::duration;
use crate::runtime::runtime;

/// Entries in this process's memory, bounded in bytes. Each process (each
/// uvicorn or gunicorn worker) has its own: use a `RedisStore` to share
/// entries, leases and purges between workers and hosts.
#[pyclass(module = "larder._native", name = "MemoryStore", frozen)]
pub(crate) struct PyMemoryStore {
    pub store: Arc<dyn Store>,
    capacity: u64,
}

impl PyMemoryStore {
    /// The store of a cache built without one.
    pub fn default_store() -> Self {
        Self::new(DEFAULT_MEMORY_BYTES)
    }
}

#[pymethods]
impl PyMemoryStore {
    #[new]
    #[pyo3(signature = (capacity_bytes = DEFAULT_MEMORY_BYTES))]
    fn new(capacity_bytes: u64) -> Self {
        PyMemoryStore {
            store: Arc::new(MemoryStore::new(capacity_bytes)),
            capacity: capacity_bytes,
        }
    }

    pub fn __repr__(&self) -> String {
        format!("MemoryStore(capacity_bytes={})", self.capacity)
    }
}

/// Entries in Redis, shared by every worker and host that uses the same
/// Redis and prefix: `redis://host:6379/0`, `rediss://` (TLS),
/// `redis+cluster://h1:7000,h2:7000` for a cluster. Connects in the
/// background: the app starts while Redis is down, requests are misses
/// until it answers, and a Redis that fails later never fails a request.
#[pyclass(module = "larder._native", name = "RedisStore", frozen)]
pub(crate) struct PyRedisStore {
    pub store: Arc<dyn Store>,
    redis: RedisStore,
    url: String,
}

#[pymethods]
impl PyRedisStore {
    #[new]
    #[pyo3(signature = (url, *, command_timeout = None, connect_timeout = None, max_value_bytes = None))]
    fn new(
        url: String,
        command_timeout: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        max_value_bytes: Option<usize>,
    ) -> PyResult<Self> {
        let mut builder = RedisStore::builder(url.clone());
        if let Some(t) = command_timeout {
            builder = builder.command_timeout(duration::positive(t, "command_timeout")?);
        }
        if let Some(t) = connect_timeout {
            builder = builder.connect_timeout(duration::positive(t, "connect_timeout")?);
        }
        if let Some(max) = max_value_bytes {
            builder = builder.max_value_bytes(max);
        }
        // Inside the runtime, so that it starts connecting now.
        let redis = {
            let _context = runtime().enter();
            builder.build()
        }
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyRedisStore {
            store: Arc::new(redis.clone()),
            redis,
            url: redact(&url),
        })
    }

    /// True while the circuit breaker keeps commands away from a failing
    /// Redis (requests are misses meanwhile).
    #[getter]
    fn circuit_open(&self) -> bool {
        self.redis.is_open()
    }

    fn __repr__(&self) -> String {
        format!("RedisStore({:?})", self.url)
    }
}

/// The URL without its password, for `repr`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
