//! Durations, wherever the package takes one: `"15m"`, `"90s"`,
//! `"1h30m"`, `"250ms"`, `"2d"`, a number of seconds, or a
//! `datetime.timedelta`. The text form is the Rust attribute's (numbers
//! with units, largest first, each unit once), plus `ms` for timeouts.

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

/// The longest duration taken: 2^31 seconds (68 years), the largest
/// delta-seconds HTTP caches must handle (RFC 9111 §1.2.2).
const MAX_SECONDS: f64 = (1u64 << 31) as f64;

const HOW: &str = "write a duration such as \"15m\", \"90s\", \"1h30m\" or \"250ms\", a number of seconds such as 900, or a datetime.timedelta";

/// The duration `value` names, for the option `option`.
pub(crate) fn extract(value: &Bound<'_, PyAny>, option: &str) -> PyResult<Duration> {
    let seconds = if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_str()?;
        return parse(text).map_err(|why| {
            PyValueError::new_err(format!(
                "`{option}`: invalid duration {text:?}: {why}; {HOW}"
            ))
        });
    } else if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "`{option}` takes a duration, not a bool; {HOW}"
        )));
    } else if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        value.extract::<f64>()?
    } else if value.hasattr(intern!(value.py(), "total_seconds"))? {
        value
            .call_method0(intern!(value.py(), "total_seconds"))?
            .extract::<f64>()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "`{option}` takes a duration; {HOW}"
        )));
    };
    if !(0.0..=MAX_SECONDS).contains(&seconds) {
        return Err(PyValueError::new_err(format!(
            "`{option}`: {seconds} seconds is not a duration from 0 to 68 years; {HOW}"
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses the text form; the error says what is wrong.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = text.parse().map_err(|_| "it is longer than 68 years")?;
        return checked(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut last_unit = Duration::MAX;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("each unit needs a number before it".into());
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "d" => Duration::from_secs(86_400),
            "h" => Duration::from_secs(3_600),
            "m" => Duration::from_secs(60),
            "s" => Duration::from_secs(1),
            "ms" => Duration::from_millis(1),
            "" => return Err(format!("{number} needs a unit")),
            other => return Err(format!("unknown unit {other:?}")),
        };
        if scale >= last_unit {
            return Err("units go from the largest to the smallest, each once".into());
        }
        last_unit = scale;
        let n: u32 = number.parse().map_err(|_| "it is longer than 68 years")?;
        total = scale
            .checked_mul(n)
            .and_then(|part| total.checked_add(part))
            .ok_or("it is longer than 68 years")?;
        rest = after;
    }
    checked(total)
}

fn checked(d: Duration) -> Result<Duration, String> {
    if d.as_secs_f64() > MAX_SECONDS {
        return Err("it is longer than 68 years".into());
    }
    Ok(d)
}
