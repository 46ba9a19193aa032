//! Durations, wherever the package takes one: text in humantime's grammar
//! (`"250ms"`, `"90s"`, `"15m"`, `"1h30m"`, `"1h 30m"`, `"2d"`), a number
//! of seconds, or a `datetime.timedelta`. The rules and the words are
//! `larder::parse_duration`'s, as in the Rust attribute and the proxy's
//! TOML; so is what zero means:
//!
//! - a `ttl` of zero is an error ([`ttl`]);
//! - a zero stale window or `early_refresh` is off, as if not given
//!   ([`window`]);
//! - a zero timeout or interval is an error naming the option
//!   ([`positive`]).

use std::time::Duration;

use larder::duration::{from_seconds, zero_not_allowed, ZERO_TTL};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

const HOW: &str = "write a duration such as \"90s\", \"15m\", \"1h30m\" or \"250ms\", a number of seconds such as 900, or a datetime.timedelta";

/// The duration `value` names, for the option `option`; zero included.
pub(crate) fn extract(value: &Bound<'_, PyAny>, option: &str) -> PyResult<Duration> {
    let read = if let Ok(text) = value.cast::<PyString>() {
        larder::parse_duration(text.to_str()?)
    } else if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "`{option}` takes a duration, not a bool; {HOW}"
        )));
    } else if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        from_seconds(value.extract::<f64>()?)
    } else if value.hasattr(intern!(value.py(), "total_seconds"))? {
        from_seconds(
            value
                .call_method0(intern!(value.py(), "total_seconds"))?
                .extract::<f64>()?,
        )
    } else {
        return Err(PyTypeError::new_err(format!(
            "`{option}` takes a duration; {HOW}"
        )));
    };
    read.map_err(|e| PyValueError::new_err(format!("`{option}`: {e}")))
}

/// A `ttl`: zero caches nothing, so it is refused.
pub(crate) fn ttl(value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let ttl = extract(value, "ttl")?;
    if ttl.is_zero() {
        return Err(PyValueError::new_err(ZERO_TTL));
    }
    Ok(ttl)
}

/// A stale window or `early_refresh`: zero is off (`None`).
pub(crate) fn window(value: &Bound<'_, PyAny>, option: &str) -> PyResult<Option<Duration>> {
    Ok(Some(extract(value, option)?).filter(|d| !d.is_zero()))
}

/// A timeout or an interval, which has no "off": zero is refused.
pub(crate) fn positive(value: &Bound<'_, PyAny>, option: &str) -> PyResult<Duration> {
    let duration = extract(value, option)?;
    if duration.is_zero() {
        return Err(PyValueError::new_err(zero_not_allowed(option)));
    }
    Ok(duration)
}
