//! `larder.Policy`: one route's rules, with the option names of the Rust
//! attribute `#[larder::cache(..)]` and `larder::Policy`'s methods. Each
//! option is one call on `larder::Policy`; nothing here decides anything
//! about caching. Old spellings, and other caches' words for `ttl`, are a
//! `TypeError` that names larder's.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode};
use larder::ClientCacheControl;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::duration;

/// A route's caching rules.
#[pyclass(module = "larder._native", name = "Policy", frozen)]
pub(crate) struct PyPolicy {
    pub inner: Arc<larder::Policy>,
    /// `ttl` or `origin_headers` was given: GET and HEAD are cached. Without
    /// either, the policy only invalidates (a write view's decorator).
    pub reads: bool,
    /// The user's `key(request) -> str`.
    pub key: Option<Py<PyAny>>,
    /// The name of the cache to use (`cache="sessions"`).
    pub cache: Option<String>,
    /// Whether a GET under a policy that only invalidates was logged.
    pub warned: AtomicBool,
    repr: String,
}

/// The `key` callable's result for one request, where the engine's key
/// function ([`python_key`]) finds it.
#[derive(Clone)]
pub(crate) struct KeyPart(pub String);

/// The engine's `Policy::key_extra` for every policy with a `key`: the
/// adapter calls the Python function first and puts its answer on the
/// request.
fn python_key(parts: &Parts) -> String {
    parts
        .extensions
        .get::<KeyPart>()
        .map(|k| k.0.clone())
        .unwrap_or_default()
}

#[pymethods]
impl PyPolicy {
    #[new]
    #[pyo3(signature = (
        *,
        ttl = None,
        origin_headers = false,
        namespace = None,
        vary = None,
        tags = None,
        statuses = None,
        client_cache_control = None,
        stale_while_revalidate = None,
        stale_if_error = None,
        early_refresh = None,
        key_extra = None,
        cache = None,
        honor_request_directives = true,
        allow_authorization = false,
        **renamed,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        ttl: Option<&Bound<'_, PyAny>>,
        origin_headers: bool,
        namespace: Option<String>,
        vary: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        statuses: Option<Vec<u16>>,
        client_cache_control: Option<String>,
        stale_while_revalidate: Option<&Bound<'_, PyAny>>,
        stale_if_error: Option<&Bound<'_, PyAny>>,
        early_refresh: Option<&Bound<'_, PyAny>>,
        key_extra: Option<Bound<'_, PyAny>>,
        cache: Option<String>,
        honor_request_directives: bool,
        allow_authorization: bool,
        renamed: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        if let Some(renamed) = renamed {
            if let Some((name, _)) = renamed.iter().next() {
                return Err(PyTypeError::new_err(unknown_keyword(
                    &name.str()?.to_cow()?,
                )));
            }
        }
        let key = key_extra;
        let ttl = ttl.map(duration::ttl).transpose()?;
        let mut policy = match (ttl, origin_headers) {
            (Some(_), true) => {
                return Err(PyValueError::new_err(
                    "give `ttl` or `origin_headers=True`, not both: `ttl` caches for that long whatever the view says, `origin_headers` follows its Cache-Control",
                ))
            }
            (Some(ttl), false) => larder::Policy::ttl(ttl),
            (None, _) => larder::Policy::origin_headers(),
        };
        let reads = ttl.is_some() || origin_headers;
        if let Some(namespace) = &namespace {
            if namespace.is_empty() {
                return Err(PyValueError::new_err(
                    "a namespace cannot be empty; leave it out for \"default\"",
                ));
            }
            policy = policy.namespace(namespace.clone());
        }
        if let Some(vary) = vary {
            let names = strings(vary, "vary", "header names such as [\"accept-language\"]")?
                .into_iter()
                .map(|n| header_name(&n))
                .collect::<PyResult<Vec<_>>>()?;
            policy = policy.vary(names);
        }
        if let Some(tags) = tags {
            policy = policy.tags(strings(tags, "tags", "tags such as [\"items\"]")?);
        }
        if let Some(statuses) = statuses {
            let statuses = statuses
                .into_iter()
                .map(|s| {
                    StatusCode::from_u16(s).ok().filter(|_| (100..=999).contains(&s)).ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "{s} is not an HTTP status; give statuses from 100 to 999, such as statuses=[200, 404]"
                        ))
                    })
                })
                .collect::<PyResult<Vec<_>>>()?;
            policy = policy.statuses(statuses);
        }
        if let Some(value) = &client_cache_control {
            let visible = value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
            let header = HeaderValue::from_str(value).ok().filter(|_| visible).ok_or_else(|| {
                PyValueError::new_err(
                    "a Cache-Control value holds visible ASCII only, such as \"public, max-age=60\"",
                )
            })?;
            policy = policy.client_cache_control(ClientCacheControl::Fixed(header));
        }
        // A zero window is off, as if not given.
        if let Some(w) = stale_while_revalidate {
            if let Some(w) = duration::window(w, "stale_while_revalidate")? {
                policy = policy.stale_while_revalidate(w);
            }
        }
        if let Some(w) = stale_if_error {
            if let Some(w) = duration::window(w, "stale_if_error")? {
                policy = policy.stale_if_error(w);
            }
        }
        if let Some(d) = early_refresh {
            if let Some(d) = duration::window(d, "early_refresh")? {
                policy = policy.early_refresh(d);
            }
        }
        if let Some(key) = &key {
            if !key.is_callable() {
                return Err(PyTypeError::new_err(
                    "`key_extra` takes a function of the request that returns a str, such as key_extra=lambda request: request.headers.get(\"x-tenant\", \"\")",
                ));
            }
            policy = policy.key_extra(python_key);
        }
        if let Some(name) = &cache {
            if name.is_empty() {
                return Err(PyValueError::new_err("a cache's name cannot be empty"));
            }
        }
        policy = policy
            .honor_request_directives(honor_request_directives)
            .allow_authorization(allow_authorization);
        let repr = match (ttl, origin_headers) {
            (Some(ttl), _) => format!(
                "Policy(ttl={}s, namespace={:?})",
                ttl.as_secs_f64(),
                policy.namespace_name()
            ),
            (None, true) => format!(
                "Policy(origin_headers=True, namespace={:?})",
                policy.namespace_name()
            ),
            (None, false) => format!(
                "Policy(namespace={:?}, invalidates only)",
                policy.namespace_name()
            ),
        };
        Ok(PyPolicy {
            inner: Arc::new(policy),
            reads,
            key: key.map(Bound::unbind),
            cache,
            warned: AtomicBool::new(false),
            repr,
        })
    }

    /// The namespace: the routes purged together by `purge_namespace`.
    #[getter]
    fn namespace(&self) -> &str {
        self.inner.namespace_name()
    }

    /// The name of the cache this policy asks for (`None`: the default).
    #[getter]
    fn cache(&self) -> Option<&str> {
        self.cache.as_deref()
    }

    /// True when GET and HEAD are cached (`ttl` or `origin_headers` given);
    /// false for a policy that only invalidates.
    #[getter]
    fn reads(&self) -> bool {
        self.reads
    }

    fn __repr__(&self) -> &str {
        &self.repr
    }
}

/// Options renamed to `larder::Policy`'s names (those of the attribute and
/// the proxy's TOML): the old spelling names the new one.
const RENAMED: &[(&str, &str)] = &[
    ("cache_control", "client_cache_control"),
    ("honor_request_cache_control", "honor_request_directives"),
    ("key", "key_extra"),
];

/// The `TypeError` for a keyword `Policy` does not take.
pub(crate) fn unknown_keyword(name: &str) -> String {
    if let Some((_, new)) = RENAMED.iter().find(|(old, _)| *old == name) {
        return format!(
            "`{name}` is now `{new}`, the name larder's Rust Policy and the proxy's TOML use: write {new}=..."
        );
    }
    let whose = match name {
        "expire" => Some("fastapi-cache"),
        "timeout" => Some("Django"),
        _ => None,
    };
    match whose {
        Some(whose) => format!(
            "unexpected keyword argument `{name}` (did you mean `ttl`?): `{name}` is {whose}'s word for how long a response is kept; larder's is `ttl`, such as ttl=\"15m\""
        ),
        None => format!("Policy() got an unexpected keyword argument `{name}`"),
    }
}

/// One string, or a list of them.
fn strings(value: &Bound<'_, PyAny>, option: &str, what: &str) -> PyResult<Vec<String>> {
    if let Ok(one) = value.cast::<PyString>() {
        return Ok(vec![one.to_str()?.to_owned()]);
    }
    value
        .extract::<Vec<String>>()
        .map_err(|_| PyTypeError::new_err(format!("`{option}` takes {what}")))
}

/// A request header name, lowercased; a clear error for anything else.
fn header_name(name: &str) -> PyResult<HeaderName> {
    let lower = name.to_ascii_lowercase();
    HeaderName::from_bytes(lower.as_bytes()).map_err(|_| {
        PyValueError::new_err(format!(
            "{name:?} is not a header name; write one such as \"accept-language\""
        ))
    })
}
