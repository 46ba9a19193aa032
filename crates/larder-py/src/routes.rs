//! `larder.Routes`: which policy the ASGI middleware applies to a path.
//!
//! Templates are written as FastAPI and Starlette routes are
//! (`/items/{id}`, `/files/{rest:path}`, `{n:int}`, `{x:float}`,
//! `{u:uuid}`) and matched against the path the framework routes on
//! (`scope["path"]` without `root_path`: decoded, as Starlette matches
//! it), so a route rule applies to exactly the requests the framework
//! sends to that route, however the client encoded them. The cache key
//! still takes the raw path.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::policy::PyPolicy;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    Param(Kind),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Path,
    Int,
    Float,
    Uuid,
}

impl Kind {
    fn accepts(self, s: &[u8]) -> bool {
        match self {
            Kind::Str => !s.is_empty() && !s.contains(&b'/'),
            Kind::Path => true,
            Kind::Int => !s.is_empty() && s.iter().all(u8::is_ascii_digit),
            Kind::Float => {
                let (whole, frac) = match s.iter().position(|&b| b == b'.') {
                    Some(dot) => (&s[..dot], Some(&s[dot + 1..])),
                    None => (s, None),
                };
                let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
                digits(whole) && frac.is_none_or(digits)
            }
            Kind::Uuid => {
                s.len() == 36
                    && s.iter().enumerate().all(|(i, &b)| match i {
                        8 | 13 | 18 | 23 => b == b'-',
                        _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
                    })
            }
        }
    }
}

/// Compiles a route template; the error says what is wrong with it.
fn compile(template: &str) -> Result<Vec<Token>, String> {
    if !template.starts_with('/') {
        return Err(format!("route {template:?} must start with '/'"));
    }
    let mut tokens = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            tokens.push(Token::Literal(rest[..open].to_owned()));
        }
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("route {template:?} has a '{{' without '}}'"))?;
        let inner = &rest[open + 1..close];
        let (name, kind) = inner.split_once(':').unwrap_or((inner, "str"));
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!(
                "route {template:?}: {{{inner}}} needs a parameter name such as {{item_id}}"
            ));
        }
        let kind = match kind {
            "str" => Kind::Str,
            "path" => Kind::Path,
            "int" => Kind::Int,
            "float" => Kind::Float,
            "uuid" => Kind::Uuid,
            other => {
                return Err(format!(
                "route {template:?}: unknown convertor {other:?} (str, path, int, float or uuid)"
            ))
            }
        };
        tokens.push(Token::Param(kind));
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        tokens.push(Token::Literal(rest.to_owned()));
    }
    Ok(tokens)
}

/// Whether `path` matches the whole template.
fn matches(tokens: &[Token], path: &[u8]) -> bool {
    match tokens.split_first() {
        None => path.is_empty(),
        Some((Token::Literal(lit), rest)) => {
            path.starts_with(lit.as_bytes()) && matches(rest, &path[lit.len()..])
        }
        Some((Token::Param(kind), rest)) => {
            let max = match kind {
                Kind::Path => path.len(),
                _ => path.iter().position(|&b| b == b'/').unwrap_or(path.len()),
            };
            (0..=max)
                .rev()
                .any(|end| kind.accepts(&path[..end]) && matches(rest, &path[end..]))
        }
    }
}

/// Route templates and their policies; the first match wins.
#[pyclass(module = "larder._native", name = "Routes", frozen)]
pub(crate) struct PyRoutes {
    routes: Vec<(String, Vec<Token>, Py<PyPolicy>)>,
}

impl PyRoutes {
    /// The policy of the first route matching `path`.
    pub fn find<'py>(&self, py: Python<'py>, path: &str) -> Option<Bound<'py, PyPolicy>> {
        self.routes
            .iter()
            .find(|(_, tokens, _)| matches(tokens, path.as_bytes()))
            .map(|(_, _, policy)| policy.bind(py).clone())
    }
}

#[pymethods]
impl PyRoutes {
    /// `routes`: a dict (or a list of pairs) of route templates to
    /// `larder.Policy` values, in the order they are tried.
    #[new]
    fn new(routes: &Bound<'_, PyAny>) -> PyResult<Self> {
        let pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = match routes.cast::<PyDict>() {
            Ok(dict) => dict.iter().collect(),
            Err(_) => routes.extract().map_err(|_| {
                PyTypeError::new_err(
                    "`routes` takes a dict of route templates to larder.Policy, such as {\"/items/{item_id}\": larder.Policy(ttl=\"15m\")}",
                )
            })?,
        };
        let mut out = Vec::with_capacity(pairs.len());
        for (template, policy) in pairs {
            let template = template
                .cast::<PyString>()
                .map_err(|_| {
                    PyTypeError::new_err("a route template is a str such as \"/items/{item_id}\"")
                })?
                .to_str()?
                .to_owned();
            let policy = policy.cast::<PyPolicy>().map_err(|_| {
                PyTypeError::new_err(format!("route {template:?} needs a larder.Policy(...)"))
            })?;
            let tokens = compile(&template).map_err(PyValueError::new_err)?;
            out.push((template, tokens, policy.clone().unbind()));
        }
        Ok(PyRoutes { routes: out })
    }

    /// The policy for `path` (as Starlette routes it), or `None`.
    #[pyo3(name = "match")]
    fn match_<'py>(&self, py: Python<'py>, path: &str) -> Option<Bound<'py, PyPolicy>> {
        self.find(py, path)
    }

    fn __len__(&self) -> usize {
        self.routes.len()
    }

    fn __repr__(&self) -> String {
        let names: Vec<_> = self
            .routes
            .iter()
            .map(|(t, _, _)| format!("{t:?}"))
            .collect();
        format!("Routes([{}])", names.join(", "))
    }
}
