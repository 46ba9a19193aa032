//! `larder.Cache`: a store and how to use it, and the engine's calls as
//! the Python layer makes them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use larder::policy::key::method_class;
use larder::{NotStored, DEFAULT_MAX_BODY_BYTES};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

use crate::duration;
use crate::fill::Fill;
use crate::outcome::Outcome;
use crate::policy::{KeyPart, PyPolicy};
use crate::request;
use crate::response::Answer;
use crate::routes::PyRoutes;
use crate::runtime::now_or_later;
use crate::stores::{PyMemoryStore, PyRedisStore};

/// A `CacheBuilder` method that takes a duration.
type SetDuration = fn(larder::CacheBuilder, Duration) -> larder::CacheBuilder;

/// An HTTP response cache: the engine of the Rust crate, in this process.
#[pyclass(module = "larder._native", name = "Cache", frozen)]
pub(crate) struct PyCache {
    inner: larder::Cache,
    max_body: usize,
    store_repr: String,
    /// The ASGI server stamps `Date` on every response itself.
    server_date: bool,
}

#[pymethods]
impl PyCache {
    #[new]
    #[pyo3(signature = (
        store = None,
        *,
        name = "larder".to_owned(),
        prefix = "larder".to_owned(),
        max_body_bytes = DEFAULT_MAX_BODY_BYTES,
        legacy_status_header = None,
        allowed_hosts = None,
        cache_status_detail = false,
        coalesce_wait = None,
        lease_ttl = None,
        hit_for_miss = None,
        namespace_refresh = None,
        server_date = true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        store: Option<&Bound<'_, PyAny>>,
        name: String,
        prefix: String,
        max_body_bytes: usize,
        legacy_status_header: Option<String>,
        allowed_hosts: Option<Vec<String>>,
        cache_status_detail: bool,
        coalesce_wait: Option<&Bound<'_, PyAny>>,
        lease_ttl: Option<&Bound<'_, PyAny>>,
        hit_for_miss: Option<&Bound<'_, PyAny>>,
        namespace_refresh: Option<&Bound<'_, PyAny>>,
        server_date: bool,
    ) -> PyResult<Self> {
        let mut builder = larder::Cache::builder()
            .name(name)
            .prefix(prefix)
            .max_body_bytes(max_body_bytes)
            .cache_status_detail(cache_status_detail);
        let store_repr = match store {
            None => {
                let memory = PyMemoryStore::default_store();
                builder = builder.shared_store(memory.store.clone());
                memory.__repr__()
            }
            Some(s) => {
                if let Ok(memory) = s.cast::<PyMemoryStore>() {
                    builder = builder.shared_store(memory.get().store.clone());
                } else if let Ok(redis) = s.cast::<PyRedisStore>() {
                    builder = builder.shared_store(redis.get().store.clone());
                } else {
                    return Err(PyTypeError::new_err(
                        "`store` takes larder.MemoryStore(...) or larder.RedisStore(url)",
                    ));
                }
                s.repr()?.to_str()?.to_owned()
            }
        };
        if let Some(header) = &legacy_status_header {
            builder = builder.legacy_status_header(header);
        }
        if let Some(hosts) = allowed_hosts {
            builder = builder.allowed_hosts(hosts);
        }
        // A wait, a lease and an interval have no "off": zero is refused.
        let durations: [(_, _, SetDuration); 3] = [
            (
                coalesce_wait,
                "coalesce_wait",
                larder::CacheBuilder::coalesce_wait,
            ),
            (lease_ttl, "lease_ttl", larder::CacheBuilder::lease_ttl),
            (
                namespace_refresh,
                "namespace_refresh",
                larder::CacheBuilder::namespace_refresh,
            ),
        ];
        for (value, option, set) in durations {
            if let Some(value) = value {
                builder = set(builder, duration::positive(value, option)?);
            }
        }
        // Zero turns hit-for-miss off.
        if let Some(value) = hit_for_miss {
            builder = builder.hit_for_miss(duration::extract(value, "hit_for_miss")?);
        }
        Ok(PyCache {
            inner: builder.build(),
            max_body: max_body_bytes,
            store_repr,
            server_date,
        })
    }

    /// The cache's name (in `Cache-Status`, and for `cache="name"`).
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The largest body the cache stores; larger ones stream through.
    #[getter]
    fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    /// Whether the ASGI server stamps `Date` itself, so that the cache's
    /// responses leave it to the server (see `larder.init`).
    #[getter]
    fn server_date(&self) -> bool {
        self.server_date
    }

    /// What the engine decided for the ASGI `scope` under `policy`: `None`
    /// (let the app answer, untouched), a response `(status, headers,
    /// body)` to send, a `Fill` (run the app, then `Fill.complete`), or an
    /// awaitable of one of these.
    fn lookup<'py>(
        &self,
        policy: &Bound<'py, PyPolicy>,
        scope: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.decide(policy, scope)
    }

    /// `lookup` under the policy of the first of `routes` whose template
    /// matches the scope's path; `None` when none does.
    fn lookup_routed<'py>(
        &self,
        routes: &Bound<'py, PyRoutes>,
        scope: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = scope.py();
        let Some(path) = request::route_path(scope)? else {
            return Ok(py.None().into_bound(py));
        };
        match routes.get().find(py, path.as_str()?) {
            Some(policy) => self.decide(&policy, scope),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// Removes the stored responses for one absolute URL in `namespace`:
    /// every variant, for GET and HEAD.
    #[pyo3(signature = (url, namespace = "default".to_owned()))]
    fn purge_url<'py>(
        &self,
        py: Python<'py>,
        url: String,
        namespace: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cache = self.inner.clone();
        now_or_later(py, async move {
            let purged = cache.purge_url(&namespace, &url).await;
            crate::reuse::forget_all();
            match purged {
                // Whether anything was stored is the admin API's to say.
                Ok(_) => Outcome::Done,
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    }

    /// Removes every stored response tagged `tag`; the number of URIs purged.
    fn purge_tag<'py>(&self, py: Python<'py>, tag: String) -> PyResult<Bound<'py, PyAny>> {
        let cache = self.inner.clone();
        now_or_later(py, async move {
            let purged = cache.purge_tag(&tag).await;
            crate::reuse::forget_all();
            match purged {
                Ok(n) => Outcome::Count(n),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    }

    /// Removes every stored response of `namespace` (O(1)); the
    /// namespace's new generation.
    fn purge_namespace<'py>(
        &self,
        py: Python<'py>,
        namespace: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cache = self.inner.clone();
        now_or_later(py, async move {
            let purged = cache.purge_namespace(&namespace).await;
            crate::reuse::forget_all();
            match purged {
                Ok(n) => Outcome::Count(n),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    }

    /// What the cache has done so far, as a dict of counters (and
    /// `not_stored`: the reasons responses were not stored).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let out = PyDict::new(py);
        for (name, value) in [
            ("hits", s.hits),
            ("stale_hits", s.stale_hits),
            ("misses", s.misses),
            ("bypasses", s.bypasses),
            ("collapsed", s.collapsed),
            ("refreshes", s.refreshes),
            ("revalidated", s.revalidated),
            ("not_modified", s.not_modified),
            ("stores", s.stores),
            ("invalidations", s.invalidations),
            ("store_errors", s.store_errors),
            ("corrupt_entries", s.corrupt_entries),
        ] {
            out.set_item(name, value)?;
        }
        let reasons = PyDict::new(py);
        for reason in NotStored::ALL {
            reasons.set_item(reason.as_str(), s.not_stored(reason))?;
        }
        out.set_item("not_stored", reasons)?;
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!(
            "Cache(name={:?}, store={})",
            self.inner.name(),
            self.store_repr
        )
    }
}

impl PyCache {
    fn decide<'py>(
        &self,
        policy: &Bound<'py, PyPolicy>,
        scope: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = scope.py();
        let Some(mut parts) = request::parts(scope)? else {
            return Ok(py.None().into_bound(py));
        };
        let rules = policy.get();
        if let Some(key) = &rules.key {
            let part = key.bind(py).call1((starlette_request(py, scope)?,))?;
            let part = part.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err("larder: the `key` function must return a str")
            })?;
            parts.extensions.insert(KeyPart(part.to_str()?.to_owned()));
        }
        if !rules.reads && method_class(&parts.method).is_some() {
            rules.warn_write_only_once(scope)?;
            let fill = self
                .inner
                .forward_uncached(&parts, &rules.inner, NotStored::Rule);
            return Fill::wrap(py, Box::new(fill), parts, self.server_date, None);
        }
        let server_date = self.server_date;
        // A hot hit is answered here, without the lookup's future: that
        // future is sized for the long way (about 5 KB), and boxing it
        // per request cost a hit more than the rest of this function.
        let hot = {
            let _context = crate::runtime::runtime().enter();
            larder::__adapter::try_hit(&self.inner, &parts, &rules.inner)
        };
        crate::log::flush(py);
        if let Some(hit) = hot {
            return Answer::from_cache(hit, server_date).into_python(py);
        }
        let cache = self.inner.clone();
        let policy = rules.inner.clone();
        now_or_later(py, async move {
            let lookup = larder::__adapter::lookup_past_hot(&cache, &parts, &policy).await;
            Outcome::Lookup(Box::new(lookup), Box::new(parts), server_date)
        })
    }
}

impl PyPolicy {
    /// A policy without `ttl` on a GET: said once, since the view then
    /// runs uncached.
    fn warn_write_only_once(&self, scope: &Bound<'_, PyDict>) -> PyResult<()> {
        if self.warned.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let path = match request::route_path(scope)? {
            Some(path) => path.as_str()?.to_owned(),
            None => String::new(),
        };
        crate::log::warn(
            scope.py(),
            &format!(
                "larder: {path} is a GET under a policy with neither `ttl` nor `origin_headers`, so it is not cached (it only invalidates on POST, PUT, PATCH and DELETE); give ttl=\"15m\" or origin_headers=True"
            ),
        )
    }
}

/// `starlette.requests.Request(scope)`, for `key` functions.
fn starlette_request<'py>(
    py: Python<'py>,
    scope: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    static REQUEST: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    REQUEST
        .import(py, "starlette.requests", "Request")?
        .call1((scope,))
}
