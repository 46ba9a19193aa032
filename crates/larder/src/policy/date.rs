//! HTTP-dates (RFC 9110 §5.6.7), read the way RFC 9111 §4.2 asks a cache
//! to: every date field the cache reads (`Date`, `Expires`,
//! `Last-Modified`, `If-Modified-Since`, `If-Unmodified-Since`, `If-Range`)
//! goes through [`parse`].
//!
//! Writing dates stays with `httpdate::fmt_http_date` (IMF-fixdate, the only
//! form a sender may generate).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses an HTTP-date in any of its three forms (RFC 9110 §5.6.7):
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`). `None` for anything else.
///
/// It reads dates as a cache recipient should, not as strictly as a sender
/// must write them:
/// - names are matched case-insensitively (RFC 9111 §4.2: `THU`, `aug`,
///   `gmt` are all read);
/// - a weekday that does not match the date is not a reason to refuse it
///   (the date says when; the weekday is redundant), though it must be a
///   weekday name, short or long, in any of the forms;
/// - a two-digit RFC 850 year more than 50 years after `now`'s year is in
///   the previous century (RFC 9110 §5.6.7), so `now` is the only clock
///   read; a four-digit year there is read as written;
/// - spaces may repeat where one is expected, and surrounding whitespace
///   is ignored;
/// - only `GMT` is accepted as the zone (RFC 9111 §4.2: another zone makes
///   the date invalid), and the calendar is checked (no 31 April, no
///   29 February outside leap years, no hour 24).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use larder::policy::date::parse;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000); // November 2023
/// let expected = Some(UNIX_EPOCH + Duration::from_secs(784_111_777));
/// assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT", now), expected);
/// assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT", now), expected);
/// assert_eq!(parse(b"Sun Nov  6 08:49:37 1994", now), expected);
/// assert_eq!(parse(b"SUN, 06 NOV 1994 08:49:37 gmt", now), expected);
/// // 6 November 1994 was a Sunday; a sender that got the weekday wrong
/// // still meant that date.
/// assert_eq!(parse(b"Thu, 06 Nov 1994 08:49:37 GMT", now), expected);
/// assert_eq!(parse(b"0", now), None);
/// assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 UTC", now), None);
/// ```
pub fn parse(value: &[u8], now: SystemTime) -> Option<SystemTime> {
    let mut c = Cursor(value.trim_ascii());
    let weekday = c.letters();
    if !is_weekday(weekday) {
        return None;
    }
    let date = if c.eat(b',') {
        c.spaces()?;
        let day = c.number(1, 2)?;
        if c.eat(b'-') {
            // RFC 850: 06-Nov-94
            let month = month(c.letters())?;
            c.expect(b'-')?;
            let year = c.digits();
            let year = match year.len() {
                2 => two_digit_year(number(year)?, now),
                4 => number(year)?,
                _ => return None,
            };
            c.spaces()?;
            let time = c.time()?;
            c.gmt()?;
            (year, month, day, time)
        } else {
            // IMF-fixdate: 06 Nov 1994
            c.spaces()?;
            let month = month(c.letters())?;
            c.spaces()?;
            let year = c.number(4, 4)?;
            c.spaces()?;
            let time = c.time()?;
            c.gmt()?;
            (year, month, day, time)
        }
    } else {
        // asctime: Nov  6 08:49:37 1994
        c.spaces()?;
        let month = month(c.letters())?;
        c.spaces()?;
        let day = c.number(1, 2)?;
        c.spaces()?;
        let time = c.time()?;
        c.spaces()?;
        let year = c.number(4, 4)?;
        (year, month, day, time)
    };
    if !c.0.is_empty() {
        return None;
    }
    let (year, month, day, (hour, minute, second)) = date;
    if day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    at(seconds)
}

/// RFC 9110 §5.6.7: "a timestamp that appears to be more than 50 years in
/// the future" is in the most recent past year with those last two digits.
/// Judged by year: `yy` is the year ending in those digits that is at most
/// 50 years after `now`'s.
fn two_digit_year(yy: u32, now: SystemTime) -> u32 {
    let this_year = year_of(now);
    let latest = this_year + 50;
    // The largest year <= latest ending in yy.
    let candidate = latest - (latest % 100) + yy;
    if candidate > latest {
        candidate - 100
    } else {
        candidate
    }
}

/// The (proleptic Gregorian) year `time` falls in; 1970 for earlier times.
fn year_of(time: SystemTime) -> u32 {
    let days = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64);
    civil_from_days(days)
}

fn at(seconds: i64) -> Option<SystemTime> {
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))
    }
}

/// Days since 1970-01-01 of a civil date (Gregorian calendar; the usual
/// era-based conversion, exact for every year a 4-digit field can hold).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(month);
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The year of a day counted from 1970-01-01 (inverse of
/// [`days_from_civil`], year only).
fn civil_from_days(days: i64) -> u32 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let year = yoe + era * 400 + i64::from(mp >= 10);
    u32::try_from(year).unwrap_or(1970)
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const WEEKDAYS: [(&[u8], &[u8]); 7] = [
    (b"mon", b"monday"),
    (b"tue", b"tuesday"),
    (b"wed", b"wednesday"),
    (b"thu", b"thursday"),
    (b"fri", b"friday"),
    (b"sat", b"saturday"),
    (b"sun", b"sunday"),
];

const MONTHS: [&[u8]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

fn is_weekday(name: &[u8]) -> bool {
    WEEKDAYS
        .iter()
        .any(|(short, long)| name.eq_ignore_ascii_case(short) || name.eq_ignore_ascii_case(long))
}

/// 1 to 12 for a three-letter month name.
fn month(name: &[u8]) -> Option<u32> {
    let i = MONTHS.iter().position(|m| name.eq_ignore_ascii_case(m))?;
    Some(i as u32 + 1)
}

fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u32::from(d - b'0')))
            .flatten()
    })
}

/// The unread rest of a date.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.0.iter().take_while(|&&b| f(b)).count();
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }

    fn letters(&mut self) -> &'a [u8] {
        self.take_while(|b| b.is_ascii_alphabetic())
    }

    fn digits(&mut self) -> &'a [u8] {
        self.take_while(|b| b.is_ascii_digit())
    }

    /// One or more spaces.
    fn spaces(&mut self) -> Option<()> {
        (!self.take_while(|b| b == b' ').is_empty()).then_some(())
    }

    fn eat(&mut self, byte: u8) -> bool {
        match self.0.split_first() {
            Some((&b, rest)) if b == byte => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A number of `min` to `max` digits.
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let digits = self.digits();
        if digits.len() < min || digits.len() > max {
            return None;
        }
        number(digits)
    }

    /// `HH:MM:SS`, two digits each.
    fn time(&mut self) -> Option<(u32, u32, u32)> {
        let hour = self.number(2, 2)?;
        self.expect(b':')?;
        let minute = self.number(2, 2)?;
        self.expect(b':')?;
        let second = self.number(2, 2)?;
        Some((hour, minute, second))
    }

    /// ` GMT`, in any case.
    fn gmt(&mut self) -> Option<()> {
        self.spaces()?;
        self.letters().eq_ignore_ascii_case(b"gmt").then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2023-11-14T22:13:20Z.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn secs(value: &str) -> Option<u64> {
        parse(value.as_bytes(), now()).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    const SUNDAY_1994: u64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT

    #[test]
    fn the_three_formats_9110_5_6_7() {
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
        ] {
            assert_eq!(secs(value), Some(SUNDAY_1994), "{value}");
        }
    }

    #[test]
    fn names_match_case_insensitively_9111_4_2() {
        for value in [
            "SUN, 06 NOV 1994 08:49:37 GMT",
            "sun, 06 nov 1994 08:49:37 gmt",
            "sUnDaY, 06-nOv-94 08:49:37 gMT",
            "SUN NOV  6 08:49:37 1994",
        ] {
            assert_eq!(secs(value), Some(SUNDAY_1994), "{value}");
        }
    }

    #[test]
    fn a_wrong_weekday_is_not_a_reason_to_refuse_9110_5_6_7() {
        for value in [
            "Thu, 06 Nov 1994 08:49:37 GMT",
            "Monday, 06-Nov-94 08:49:37 GMT",
            "Fri Nov  6 08:49:37 1994",
            // Long names in the short forms, short in the RFC 850 one.
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(secs(value), Some(SUNDAY_1994), "{value}");
        }
        // It must still be a weekday name.
        assert_eq!(secs("Sux, 06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(secs("06 Nov 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn two_digit_years_more_than_50_years_ahead_are_past_9110_5_6_7() {
        // Now is 2023: 73 is not more than 50 years ahead as 2073 is; 74
        // would be 2074, more than 50 years ahead, so 1974.
        let year = |value: &str| {
            let t = parse(value.as_bytes(), now()).unwrap();
            year_of(t)
        };
        assert_eq!(year("Sun, 01-Jan-73 00:00:00 GMT"), 2073);
        assert_eq!(year("Sun, 01-Jan-74 00:00:00 GMT"), 1974);
        assert_eq!(year("Sun, 01-Jan-23 00:00:00 GMT"), 2023);
        assert_eq!(year("Sun, 01-Jan-00 00:00:00 GMT"), 2000);
        assert_eq!(year("Sun, 01-Jan-99 00:00:00 GMT"), 1999);
        // The rule moves with the clock, which is a parameter.
        let later = UNIX_EPOCH + Duration::from_secs(days_from_civil(2090, 6, 1) as u64 * 86_400);
        let t = parse(b"Sun, 01-Jan-30 00:00:00 GMT", later).unwrap();
        assert_eq!(year_of(t), 2130);
        let t = parse(b"Sun, 01-Jan-41 00:00:00 GMT", later).unwrap();
        assert_eq!(year_of(t), 2141 - 100);
        // A four-digit year in the RFC 850 form is read as written.
        assert_eq!(year("Sunday, 06-Nov-1994 08:49:37 GMT"), 1994);
    }

    #[test]
    fn only_gmt_and_real_calendar_dates_9111_4_2() {
        for value in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 31 Apr 1994 08:49:37 GMT",
            "Sun, 29 Feb 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nox 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT trailing",
            "Sun, 006 Nov 1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov  6 08:49:37 1994 GMT",
            "0",
            "-1",
            "",
            "tomorrow",
        ] {
            assert_eq!(secs(value), None, "{value:?}");
        }
        // Leap days and leap seconds are real.
        assert!(secs("Thu, 29 Feb 2024 00:00:00 GMT").is_some());
        assert!(secs("Sat, 29 Feb 2000 00:00:00 GMT").is_some());
        assert_eq!(secs("Mon, 29 Feb 1900 00:00:00 GMT"), None);
        assert_eq!(
            secs("Sat, 31 Dec 2016 23:59:60 GMT"),
            secs("Sun, 01 Jan 2017 00:00:00 GMT")
        );
    }

    #[test]
    fn spaces_may_repeat_and_surround_9110_5_6_7() {
        for value in [
            "  Sun, 06 Nov 1994 08:49:37 GMT ",
            "Sun,  06  Nov  1994  08:49:37  GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(secs(value), Some(SUNDAY_1994), "{value:?}");
        }
    }

    #[test]
    fn agrees_with_the_formatter_over_the_years() {
        // Every 1000003 s from 1970 to 2100: what httpdate writes we read.
        let mut t = 0u64;
        while t < 4_102_444_800 {
            let time = UNIX_EPOCH + Duration::from_secs(t);
            let text = httpdate::fmt_http_date(time);
            assert_eq!(parse(text.as_bytes(), now()), Some(time), "{text}");
            t += 1_000_003;
        }
    }

    #[test]
    fn dates_before_1970_and_far_ahead() {
        let before = parse(b"Thu, 01 Jan 1970 00:00:00 GMT", now());
        assert_eq!(before, Some(UNIX_EPOCH));
        let earlier = parse(b"Wed, 31 Dec 1969 23:59:59 GMT", now()).unwrap();
        assert_eq!(UNIX_EPOCH.duration_since(earlier).unwrap().as_secs(), 1);
        assert!(parse(b"Fri, 31 Dec 9999 23:59:59 GMT", now()).is_some());
        assert_eq!(parse(b"Fri, 31 Dec 99999 23:59:59 GMT", now()), None);
    }

    #[test]
    fn civil_round_trip() {
        for days in [-700_000, -1, 0, 1, 19_675, 2_932_896] {
            let year = civil_from_days(days);
            assert!(days_from_civil(year, 1, 1) <= days, "{days}");
            assert!(days_from_civil(year + 1, 1, 1) > days, "{days}");
        }
    }
}
