//! What the engine's work gives back to Python: plain Rust values, turned
//! into Python objects on the Python thread.

use http::request::Parts;
use larder::Lookup;
use pyo3::prelude::*;

use crate::fill::Fill;
use crate::response::Answer;

/// The result of one piece of engine work.
pub(crate) enum Outcome {
    /// What the engine decided for a request, the request, and whether
    /// the ASGI server stamps `Date` itself.
    Lookup(Box<Lookup>, Box<Parts>, bool),
    /// A response for the client.
    Answer(Answer),
    /// Done, nothing to say (Python gets `None`).
    Done,
    /// A count (purges).
    Count(u64),
    /// A purge that failed, and why.
    Failed(String),
}

impl Outcome {
    /// Python's view: `None`, a response tuple, a [`Fill`], an int, or a
    /// raised `larder.PurgeError`.
    pub fn into_python(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        match self {
            Outcome::Done => Ok(py.None().into_bound(py)),
            Outcome::Answer(answer) => answer.into_python(py),
            Outcome::Count(n) => Ok(n.into_pyobject(py)?.into_any()),
            Outcome::Failed(why) => Err(crate::PurgeError::new_err(why)),
            Outcome::Lookup(lookup, parts, server_date) => match *lookup {
                Lookup::Respond(response) => {
                    Answer::from_cache(response, server_date).into_python(py)
                }
                Lookup::Forward(fill) => Fill::wrap(py, fill, *parts, server_date, None),
                Lookup::Refresh(response, fill) => {
                    let stale = Answer::from_cache(response, server_date).into_python(py)?;
                    Fill::wrap(py, fill, *parts, server_date, Some(stale))
                }
            },
        }
    }
}
