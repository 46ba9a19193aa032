//! Durations as the attributes take them: `"15m"`, `"90s"`, `"1h30m"`,
//! `"2d"`, or an integer of seconds. Parsed at compile time, so a typo is a
//! compile error that says what to write.

use syn::Lit;

/// The longest duration taken: 2^31 seconds (68 years), the largest
/// delta-seconds HTTP caches must handle (RFC 9111 §1.2.2). Anything longer
/// is a typo, and would overflow time arithmetic.
pub const MAX_SECONDS: u64 = 1 << 31;

/// What to write, for error messages.
pub const HOW: &str =
    "write a string of numbers with units d, h, m, s, such as \"15m\", \"90s\" or \"1h30m\", or an integer of seconds such as 900";

/// Seconds in a duration literal, or a message saying what is wrong.
pub fn seconds(lit: &Lit) -> Result<u64, String> {
    match lit {
        Lit::Str(s) => parse(&s.value()),
        Lit::Int(i) if i.suffix().is_empty() => i
            .base10_parse::<u64>()
            .ok()
            .filter(|s| *s <= MAX_SECONDS)
            .ok_or_else(|| {
                format!(
                    "{} seconds is longer than 68 years; {HOW}",
                    i.base10_digits()
                )
            }),
        // `15m` lexes as the integer 15 with the suffix `m`.
        Lit::Int(i) => Err(format!(
            "write the duration in quotes: \"{}{}\"",
            i.base10_digits(),
            i.suffix()
        )),
        _ => Err(format!("expected a duration: {HOW}")),
    }
}

/// Parses `"1h30m"`-style text: numbers with units, largest unit first,
/// each unit at most once.
pub fn parse(text: &str) -> Result<u64, String> {
    let bad = |why: &str| Err(format!("invalid duration {text:?}: {why}; {HOW}"));
    if text.is_empty() {
        return bad("it is empty");
    }
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return bad("each unit needs a number before it");
        }
        let (number, after) = rest.split_at(digits);
        let Some(unit) = after.chars().next() else {
            return bad(&format!("{number} needs a unit"));
        };
        let scale = match unit {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return bad(&format!("unknown unit {unit:?}")),
        };
        if scale >= last_unit {
            return bad("units go from the largest to the smallest, each once");
        }
        last_unit = scale;
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .and_then(|n| total.checked_add(n));
        match part.filter(|t| *t <= MAX_SECONDS) {
            Some(t) => total = t,
            None => return bad("it is longer than 68 years"),
        }
        rest = &after[unit.len_utf8()..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_add_up() {
        assert_eq!(parse("90s"), Ok(90));
        assert_eq!(parse("15m"), Ok(900));
        assert_eq!(parse("1h30m"), Ok(5_400));
        assert_eq!(parse("2d"), Ok(172_800));
        assert_eq!(parse("1d2h3m4s"), Ok(93_784));
        assert_eq!(parse("0s"), Ok(0));
        assert_eq!(parse("24855d"), Ok(2_147_472_000));
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        for (text, why) in [
            ("", "empty"),
            ("15", "needs a unit"),
            ("15 m", "unknown unit ' '"),
            ("15min", "needs a number"),
            ("m", "needs a number"),
            ("30m1h", "largest to the smallest"),
            ("1m1m", "largest to the smallest"),
            ("3w", "unknown unit 'w'"),
            ("99999999999999999999s", "longer than 68 years"),
            ("24856d", "longer than 68 years"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.contains("\"1h30m\""), "says what to write: {err}");
        }
    }

    #[test]
    fn literals_in_quotes_or_plain_seconds() {
        let lit = |s: &str| syn::parse_str::<Lit>(s).unwrap();
        assert_eq!(seconds(&lit("\"15m\"")), Ok(900));
        assert_eq!(seconds(&lit("900")), Ok(900));
        assert!(seconds(&lit("15m")).unwrap_err().contains("\"15m\""));
        assert!(seconds(&lit("1.5")).is_err());
        assert!(seconds(&lit("2147483649"))
            .unwrap_err()
            .contains("68 years"));
        assert!(seconds(&lit("true")).is_err());
    }
}
