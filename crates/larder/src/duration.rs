//! Durations as every face of larder reads them: the attribute's options,
//! the Python package's keyword arguments and the proxy's TOML.
//!
//! Text uses [`humantime`]'s grammar (`"250ms"`, `"90s"`, `"15m"`,
//! `"1h30m"`, `"1h 30m"`, `"2d"`; units may repeat, `"1m1m"` is two
//! minutes), and a bare number means seconds. Every face refuses the same
//! inputs with the same words:
//!
//! ```
//! use std::time::Duration;
//!
//! assert_eq!(larder::parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
//! assert_eq!(larder::parse_duration("250ms"), Ok(Duration::from_millis(250)));
//! assert_eq!(
//!     larder::parse_duration("15").unwrap_err().to_string(),
//!     "\"15\" is not a duration: time unit needed, for example 15sec or 15ms; \
//!      write one such as \"90s\", \"15m\", \"1h30m\" or \"250ms\"",
//! );
//! ```
//!
//! Two rules on top of the grammar: a duration is at most
//! [`MAX_DURATION`] (68 years: longer is a typo, and would overflow time
//! arithmetic), and it is a whole number of milliseconds, the finest
//! larder keeps (entries store whole milliseconds).
//!
//! Zero means the same on every face: a `ttl` of zero is an error
//! ([`ZERO_TTL`] says why), a zero stale window or `early_refresh` is off
//! (as if it were not given), and a zero timeout or interval is an error
//! naming the option ([`zero_not_allowed`]).

use std::fmt;
use std::time::Duration;

/// The longest duration taken: 2^31 seconds (68 years), the largest
/// delta-seconds an HTTP cache must handle (RFC 9111 §1.2.2).
pub const MAX_DURATION: Duration = Duration::from_secs(1 << 31);

/// What every face says about a `ttl` of zero.
pub const ZERO_TTL: &str = "a ttl of zero caches nothing: give a positive duration such as \"15m\", or leave this route uncached";

/// What to write instead, at the end of every duration error.
const HOW: &str = "write one such as \"90s\", \"15m\", \"1h30m\" or \"250ms\"";

/// A duration that could not be read: the text as given and why.
///
/// ```
/// let error = larder::parse_duration("15min30").unwrap_err();
/// assert_eq!(error.text(), "15min30");
/// assert!(error.to_string().starts_with("\"15min30\" is not a duration: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    text: String,
    reason: String,
}

impl DurationError {
    fn new(text: impl Into<String>, reason: impl Into<String>) -> Self {
        DurationError {
            text: text.into(),
            reason: reason.into(),
        }
    }

    /// The text that was refused.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Why, without the text or the advice around it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a duration: {}; {HOW}",
            self.text, self.reason
        )
    }
}

impl std::error::Error for DurationError {}

/// Reads a duration written as text: humantime's grammar, at most
/// [`MAX_DURATION`], whole milliseconds.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(larder::parse_duration("1m1m"), Ok(Duration::from_secs(120)));
/// assert_eq!(larder::parse_duration("0s"), Ok(Duration::ZERO));
/// assert!(larder::parse_duration("1500us").is_err()); // finer than a millisecond
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    match humantime::parse_duration(text) {
        Ok(duration) => check(text, duration),
        Err(humantime::DurationError::NumberOverflow) => Err(DurationError::new(text, TOO_LONG)),
        Err(e) => Err(DurationError::new(text, e.to_string())),
    }
}

/// A number of seconds as a duration (TOML integers, Python numbers): at
/// most [`MAX_DURATION`], not negative, whole milliseconds.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(larder::duration::from_seconds(90.0), Ok(Duration::from_secs(90)));
/// assert_eq!(larder::duration::from_seconds(0.25), Ok(Duration::from_millis(250)));
/// assert!(larder::duration::from_seconds(-1.0).is_err());
/// ```
pub fn from_seconds(seconds: f64) -> Result<Duration, DurationError> {
    let text = format!("{seconds}");
    if seconds.is_nan() {
        return Err(DurationError::new(text, "it is not a number"));
    }
    if seconds < 0.0 {
        return Err(DurationError::new(text, "it is negative"));
    }
    if seconds > MAX_DURATION.as_secs_f64() {
        return Err(DurationError::new(text, TOO_LONG));
    }
    let millis = seconds * 1000.0;
    // Decimal fractions such as 0.3 are not exact in binary: a hair off a
    // whole millisecond counts as that millisecond.
    if (millis - millis.round()).abs() > 1e-6 {
        return Err(DurationError::new(text, FINER));
    }
    Ok(Duration::from_millis(millis.round() as u64))
}

/// The error for a zero timeout or interval `option`, which has no "off".
///
/// ```
/// assert_eq!(
///     larder::duration::zero_not_allowed("command_timeout"),
///     "`command_timeout` cannot be zero: give a positive duration such as \"50ms\"",
/// );
/// ```
pub fn zero_not_allowed(option: &str) -> String {
    format!("`{option}` cannot be zero: give a positive duration such as \"50ms\"")
}

const TOO_LONG: &str = "it is longer than 68 years";
const FINER: &str = "it is finer than a millisecond, the finest larder keeps";

fn check(text: &str, duration: Duration) -> Result<Duration, DurationError> {
    if duration > MAX_DURATION {
        return Err(DurationError::new(text, TOO_LONG));
    }
    if duration.subsec_nanos() % 1_000_000 != 0 {
        return Err(DurationError::new(text, FINER));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_grammar() {
        for (text, want) in [
            ("90s", Duration::from_secs(90)),
            ("15m", Duration::from_secs(900)),
            ("1h30m", Duration::from_secs(5_400)),
            ("1h 30m", Duration::from_secs(5_400)),
            ("1m1m", Duration::from_secs(120)),
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1_500)),
            ("2d", Duration::from_secs(172_800)),
            ("0s", Duration::ZERO),
            ("68years", Duration::from_secs(68 * 31_557_600)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    /// The exact words, which the attribute (larder-macros' duration.rs)
    /// and the proxy repeat: change them together.
    #[test]
    fn errors_name_the_text_the_reason_and_what_to_write() {
        for (text, said) in [
            ("15", "\"15\" is not a duration: time unit needed, for example 15sec or 15ms; write one such as \"90s\", \"15m\", \"1h30m\" or \"250ms\""),
            ("", "\"\" is not a duration: value was empty; write one such as \"90s\", \"15m\", \"1h30m\" or \"250ms\""),
            ("3fortnights", "\"3fortnights\" is not a duration: unknown time unit \"fortnights\""),
            ("m", "\"m\" is not a duration: expected number at 0"),
            ("69y", "\"69y\" is not a duration: it is longer than 68 years"),
            ("99999999999999999999s", "\"99999999999999999999s\" is not a duration: it is longer than 68 years"),
            ("1500us", "\"1500us\" is not a duration: it is finer than a millisecond, the finest larder keeps"),
        ] {
            let error = parse_duration(text).unwrap_err().to_string();
            assert!(error.starts_with(said), "{text:?}: {error}");
            assert!(error.ends_with("\"250ms\""), "{text:?}: {error}");
        }
    }

    #[test]
    fn seconds_as_numbers() {
        assert_eq!(from_seconds(0.0), Ok(Duration::ZERO));
        assert_eq!(from_seconds(0.3), Ok(Duration::from_millis(300)));
        assert_eq!(from_seconds(900.0), Ok(Duration::from_secs(900)));
        assert_eq!(
            from_seconds(2_147_483_648.0),
            Ok(MAX_DURATION),
            "68 years exactly"
        );
        for (seconds, why) in [
            (-1.0, "it is negative"),
            (f64::NAN, "not a number"),
            (f64::INFINITY, "longer than 68 years"),
            (2_147_483_649.0, "longer than 68 years"),
            (0.0005, "finer than a millisecond"),
        ] {
            let error = from_seconds(seconds).unwrap_err().to_string();
            assert!(error.contains(why), "{seconds}: {error}");
        }
    }
}
