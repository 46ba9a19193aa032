//! An ASGI request scope as the engine's `http::request::Parts`, built the
//! way the Rust adapters get them from hyper: method, the request target
//! exactly as received (raw path and raw query, origin-form for HTTP/1),
//! version and every header field, `Host` included. So a Python app, a
//! Rust app and the `larder` proxy key the same request the same way.

use bytes::{BufMut, BytesMut};
use http::header::{HeaderName, HeaderValue, HOST};
use http::request::Parts;
use http::{HeaderMap, Method, Uri, Version};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// The engine's view of an HTTP scope, or `None` when the request cannot
/// be represented faithfully (a header field `http` rejects, an
/// unparsable target): such a request is passed to the app untouched,
/// since keying it as something else could serve it another's answer.
pub(crate) fn parts(scope: &Bound<'_, PyDict>) -> PyResult<Option<Parts>> {
    let py = scope.py();
    let Some(method) = scope.get_item(intern!(py, "method"))? else {
        return Ok(None);
    };
    let method = method.cast::<PyString>()?.to_str()?;
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Ok(None);
    };
    let version = match scope.get_item(intern!(py, "http_version"))? {
        Some(v) => match v.cast::<PyString>()?.to_str()? {
            "1.0" => Version::HTTP_10,
            "2" => Version::HTTP_2,
            "3" => Version::HTTP_3,
            _ => Version::HTTP_11,
        },
        None => Version::HTTP_11,
    };
    let Some(headers) = headers(scope)? else {
        return Ok(None);
    };
    let Some(uri) = uri(scope, version, &headers)? else {
        return Ok(None);
    };
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(parts))
}

/// The scope's header fields, in order, repeated ones kept.
fn headers(scope: &Bound<'_, PyDict>) -> PyResult<Option<HeaderMap>> {
    let py = scope.py();
    let Some(list) = scope.get_item(intern!(py, "headers"))? else {
        return Ok(Some(HeaderMap::new()));
    };
    let mut map = HeaderMap::new();
    if let Ok(list) = list.cast::<PyList>() {
        map.reserve(list.len());
        for item in list.iter() {
            if !add_header(&mut map, &item)? {
                return Ok(None);
            }
        }
    } else {
        for item in list.try_iter()? {
            if !add_header(&mut map, &item?)? {
                return Ok(None);
            }
        }
    }
    Ok(Some(map))
}

fn add_header(map: &mut HeaderMap, item: &Bound<'_, PyAny>) -> PyResult<bool> {
    let (name, value) = match item.cast::<PyTuple>() {
        Ok(pair) if pair.len() == 2 => (pair.get_item(0)?, pair.get_item(1)?),
        _ => (item.get_item(0)?, item.get_item(1)?),
    };
    let name = name.cast::<PyBytes>()?.as_bytes();
    let value = value.cast::<PyBytes>()?.as_bytes();
    match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
        (Ok(name), Ok(value)) => {
            map.append(name, value);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The request target as hyper hands it to a Rust adapter: origin-form
/// (`/path?query`) over HTTP/1, absolute-form (with the scheme and the
/// `Host`, which ASGI servers make of `:authority`) over HTTP/2 and 3.
fn uri(scope: &Bound<'_, PyDict>, version: Version, headers: &HeaderMap) -> PyResult<Option<Uri>> {
    let py = scope.py();
    // Read in place from the scope's bytes: the target is copied once.
    let raw = scope
        .get_item(intern!(py, "raw_path"))?
        .filter(|r| !r.is_none());
    let encoded;
    let path: &[u8] = match &raw {
        Some(raw) => raw.cast::<PyBytes>()?.as_bytes(),
        None => {
            encoded = encoded_path(scope)?;
            &encoded
        }
    };
    // Only origin-form targets: an ASGI server hands anything else on in
    // ways that differ between servers.
    if !path.starts_with(b"/") {
        return Ok(None);
    }
    let query = scope
        .get_item(intern!(py, "query_string"))?
        .filter(|q| !q.is_none());
    let query: &[u8] = match &query {
        Some(q) => q.cast::<PyBytes>()?.as_bytes(),
        None => b"",
    };
    let mut target = BytesMut::with_capacity(path.len() + query.len() + 1);
    if version >= Version::HTTP_2 {
        if let Some(host) = headers.get(HOST) {
            match scope.get_item(intern!(py, "scheme"))? {
                Some(s) => target.put_slice(s.cast::<PyString>()?.to_str()?.as_bytes()),
                None => target.put_slice(b"http"),
            }
            target.put_slice(b"://");
            target.put_slice(host.as_bytes());
        }
    }
    target.put_slice(path);
    if !query.is_empty() {
        target.put_u8(b'?');
        target.put_slice(query);
    }
    Ok(Uri::from_maybe_shared(target.freeze()).ok())
}

/// For servers that give no `raw_path`: the decoded `path`
/// percent-encoded again.
fn encoded_path(scope: &Bound<'_, PyDict>) -> PyResult<Vec<u8>> {
    let py = scope.py();
    let Some(path) = scope.get_item(intern!(py, "path"))? else {
        return Ok(Vec::new());
    };
    let path = path.cast::<PyString>()?.to_str()?;
    let mut out = Vec::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    Ok(out)
}

/// The path a Starlette router matches routes against: `path` without the
/// app's `root_path` (what `starlette.routing.get_route_path` returns).
pub(crate) struct RoutePath<'py> {
    path: Bound<'py, PyString>,
    /// Where the route path starts in `path` (after the root).
    start: usize,
}

impl RoutePath<'_> {
    pub fn as_str(&self) -> PyResult<&str> {
        Ok(&self.path.to_str()?[self.start..])
    }
}

/// The scope's [`RoutePath`], read in place; `None` without a `path`.
pub(crate) fn route_path<'py>(scope: &Bound<'py, PyDict>) -> PyResult<Option<RoutePath<'py>>> {
    let py = scope.py();
    let Some(path) = scope.get_item(intern!(py, "path"))? else {
        return Ok(None);
    };
    let path = path.cast_into::<PyString>()?;
    let start = match scope.get_item(intern!(py, "root_path"))? {
        Some(root) => {
            let root = root.cast::<PyString>()?.to_str()?;
            let full = path.to_str()?;
            // `root` itself routes as "", `root/...` as "/...", anything
            // else (another prefix, `rootx`) as the whole path.
            if root.is_empty() || !full.starts_with(root) {
                0
            } else if full.len() == root.len() || full.as_bytes()[root.len()] == b'/' {
                root.len()
            } else {
                0
            }
        }
        None => 0,
    };
    Ok(Some(RoutePath { path, start }))
}

/// `headers` as an ASGI header list: `[(name, value), ...]` of bytes,
/// without the fields named `skip`.
pub(crate) fn header_list<'py>(
    py: Python<'py>,
    headers: &HeaderMap,
    skip: Option<&HeaderName>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in headers {
        if skip == Some(name) {
            continue;
        }
        let pair = PyTuple::new(
            py,
            [
                PyBytes::new(py, name.as_str().as_bytes()),
                PyBytes::new(py, value.as_bytes()),
            ],
        )?;
        list.append(pair)?;
    }
    Ok(list)
}

/// Header fields from an ASGI header list (or any iterable of pairs of
/// bytes); `None` when one is not a valid HTTP field.
pub(crate) fn header_map(list: &Bound<'_, PyAny>) -> PyResult<Option<HeaderMap>> {
    let mut map = HeaderMap::new();
    for item in list.try_iter()? {
        if !add_header(&mut map, &item?)? {
            return Ok(None);
        }
    }
    Ok(Some(map))
}
