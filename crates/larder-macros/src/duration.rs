//! Duration literals as the attributes take them: text in humantime's
//! grammar (`"250ms"`, `"90s"`, `"15m"`, `"1h30m"`, `"2d"`), or an integer
//! of seconds. Checked at compile time, so a typo is a compile error that
//! says what to write.
//!
//! The rules and the words are `larder::parse_duration`'s (this crate
//! cannot depend on `larder`, which depends on it): at most 68 years, whole
//! milliseconds, the same message. Change them together.

use std::time::Duration;

use syn::Lit;

/// The longest duration taken: 2^31 seconds (68 years), the largest
/// delta-seconds HTTP caches must handle (RFC 9111 §1.2.2).
pub const MAX: Duration = Duration::from_secs(1 << 31);

/// What every face says about a `ttl` of zero (`larder::duration::ZERO_TTL`).
pub const ZERO_TTL: &str = "a ttl of zero caches nothing: give a positive duration such as \"15m\", or leave this route uncached";

/// What to write, for errors about the form of a value.
pub const HOW: &str = "write one such as \"90s\", \"15m\", \"1h30m\" or \"250ms\", an integer of seconds such as 900, or a `Duration` expression such as Duration::from_secs(900)";

const TOO_LONG: &str = "it is longer than 68 years";
const FINER: &str = "it is finer than a millisecond, the finest larder keeps";

/// The duration a literal names, or a message saying what is wrong.
pub fn literal(lit: &Lit) -> Result<Duration, String> {
    match lit {
        Lit::Str(s) => parse(&s.value()),
        Lit::Int(i) if i.suffix().is_empty() => {
            let text = i.base10_digits();
            match i.base10_parse::<u64>() {
                Ok(seconds) if seconds <= MAX.as_secs() => Ok(Duration::from_secs(seconds)),
                _ => Err(error(text, TOO_LONG)),
            }
        }
        // `15m` lexes as the integer 15 with the suffix `m`.
        Lit::Int(i) => Err(format!(
            "write the duration in quotes: \"{}{}\"",
            i.base10_digits(),
            i.suffix()
        )),
        _ => Err(format!("expected a duration: {HOW}")),
    }
}

/// `larder::parse_duration`, word for word.
pub fn parse(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d > MAX => Err(error(text, TOO_LONG)),
        Ok(d) if d.subsec_nanos() % 1_000_000 != 0 => Err(error(text, FINER)),
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => Err(error(text, TOO_LONG)),
        Err(e) => Err(error(text, &e.to_string())),
    }
}

fn error(text: &str, reason: &str) -> String {
    format!("{text:?} is not a duration: {reason}; write one such as \"90s\", \"15m\", \"1h30m\" or \"250ms\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_grammar() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("1m1m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
    }

    /// The same words as `larder::parse_duration` (its test has this line).
    #[test]
    fn errors_are_larders_word_for_word() {
        assert_eq!(
            parse("15").unwrap_err(),
            "\"15\" is not a duration: time unit needed, for example 15sec or 15ms; write one such as \"90s\", \"15m\", \"1h30m\" or \"250ms\""
        );
        for (text, why) in [
            ("", "value was empty"),
            ("3fortnights", "unknown time unit \"fortnights\""),
            ("69y", "longer than 68 years"),
            ("99999999999999999999s", "longer than 68 years"),
            ("1500us", "finer than a millisecond"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.starts_with(&format!("{text:?} is not a duration: ")));
        }
    }

    #[test]
    fn literals_in_quotes_or_plain_seconds() {
        let lit = |s: &str| syn::parse_str::<Lit>(s).unwrap();
        assert_eq!(literal(&lit("\"15m\"")), Ok(Duration::from_secs(900)));
        assert_eq!(literal(&lit("900")), Ok(Duration::from_secs(900)));
        assert_eq!(literal(&lit("0")), Ok(Duration::ZERO));
        assert!(literal(&lit("15m")).unwrap_err().contains("\"15m\""));
        assert!(literal(&lit("1.5")).is_err());
        assert!(literal(&lit("2147483649"))
            .unwrap_err()
            .contains("68 years"));
        assert!(literal(&lit("true")).is_err());
    }
}
