//! Proleptic Gregorian calendar arithmetic on whole minutes, in UTC.
//!
//! Schedules step through the calendar millions of times in a benchmark and thousands of
//! times while an operator types, so the hot path works on plain integers (Howard Hinnant's
//! `days_from_civil` algorithms) instead of going through a general date-time library.

use crate::prelude::*;
use core::fmt::Write as _;

use chrono::{DateTime, Utc};

/// A calendar minute in UTC. Fields are always in range when built by this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct CivilMinute {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    /// 0..=23
    pub hour: u32,
    /// 0..=59
    pub minute: u32,
}

pub(crate) fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    month_len(month, is_leap(year))
}

/// The length of `month` in a leap year or not.
pub(crate) fn month_len(month: u32, leap: bool) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if leap => 29,
        _ => 28,
    }
}

/// The days of a year before the first day of `month` (0 for January), in a leap year or not.
pub(crate) fn days_before_month(month: u32, leap: bool) -> u32 {
    const BEFORE: [u32; 13] = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    BEFORE[month as usize % 13] + u32::from(month > 2 && leap)
}

/// Days since 1970-01-01 of a civil date. Public for the WebAssembly package, which reads
/// RFC 3339 instants with it.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

/// Day of the week, 0 = Sunday.
pub(crate) fn weekday(year: i32, month: u32, day: u32) -> u32 {
    // 1970-01-01 was a Thursday (4).
    (days_from_civil(year, month, day) + 4).rem_euclid(7) as u32
}

impl CivilMinute {
    /// The minute that contains `instant` (seconds and below are dropped).
    pub fn containing(instant: DateTime<Utc>) -> Self {
        Self::from_epoch_minutes(instant.timestamp().div_euclid(60))
    }

    pub fn from_epoch_minutes(minutes: i64) -> Self {
        let days = minutes.div_euclid(1440);
        let in_day = minutes.rem_euclid(1440) as u32;
        let (year, month, day) = civil_from_days(days);
        CivilMinute {
            year,
            month,
            day,
            hour: in_day / 60,
            minute: in_day % 60,
        }
    }

    #[cfg(test)]
    pub fn epoch_minutes(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 1440
            + i64::from(self.hour * 60 + self.minute)
    }

    /// `None` only for instants chrono cannot represent (beyond ±262,000 years).
    #[cfg(test)]
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(self.epoch_minutes() * 60, 0)
    }
}

/// `2026-11-27T06:00:00Z`: RFC 3339 with a `Z` suffix and whole seconds, the one format the
/// product prints instants in.
///
/// The text of `format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")`, written two digits
/// at a time: `validateSchedule` writes five of these on every keystroke, and the padded
/// formatting was about a sixth of its time in the WebAssembly module. A year outside
/// 0..=9999 (a sign, or a fifth digit) is still written by the formatting machinery.
pub fn format_rfc3339(instant: DateTime<Utc>) -> String {
    let secs = instant.timestamp();
    let days = secs.div_euclid(86_400);
    // In 0..86_400, so the cast is exact.
    let in_day = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(20);
    match u32::try_from(y) {
        Ok(y @ 0..=9999) => {
            push_two_digits(&mut out, y / 100);
            push_two_digits(&mut out, y % 100);
        }
        _ => {
            let _ = write!(out, "{y:04}");
        }
    }
    for (separator, n) in [
        ('-', m),
        ('-', d),
        ('T', in_day / 3600),
        (':', in_day / 60 % 60),
        (':', in_day % 60),
    ] {
        out.push(separator);
        push_two_digits(&mut out, n);
    }
    out.push('Z');
    out
}

/// `n` (below 100) as two decimal digits, taken whole from [`TWO_DIGITS`]: one `push_str`
/// rather than two pushes of a `char`, which at the module's size optimisation are calls.
fn push_two_digits(out: &mut String, n: u32) {
    let at = (n % 100) as usize * 2;
    out.push_str(TWO_DIGITS.get(at..at + 2).unwrap_or_default());
}

/// `000102…9899`: the numbers 0 to 99 as two digits each, made when compiling.
const TWO_DIGITS: &str = match core::str::from_utf8(&TWO_DIGIT_BYTES) {
    Ok(text) => text,
    Err(_) => panic!("ASCII digits are UTF-8"),
};

const TWO_DIGIT_BYTES: [u8; 200] = {
    let mut bytes = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        bytes[2 * n] = b'0' + (n / 10) as u8;
        bytes[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    bytes
};

#[cfg(test)]
/// Day of the week of an instant, 0 = Sunday.
pub(crate) fn weekday_of(instant: DateTime<Utc>) -> u32 {
    (instant.timestamp().div_euclid(86_400) + 4).rem_euclid(7) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_days_across_four_centuries() {
        for days in (-146_097 * 2)..(146_097 * 2) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert!((1..=days_in_month(y, m)).contains(&d));
        }
    }

    #[test]
    fn days_before_a_month_are_the_difference_of_day_numbers() {
        for year in [1900, 1999, 2000, 2024, 2026, 2100] {
            for month in 1..=12 {
                assert_eq!(
                    i64::from(days_before_month(month, is_leap(year))),
                    days_from_civil(year, month, 1) - days_from_civil(year, 1, 1),
                    "{year}-{month}"
                );
            }
        }
    }

    #[test]
    fn knows_weekdays() {
        assert_eq!(weekday(1970, 1, 1), 4);
        assert_eq!(weekday(2026, 11, 27), 5, "2026-11-27 is a Friday");
        assert_eq!(weekday(2000, 2, 29), 2, "2000-02-29 was a Tuesday");
    }

    #[test]
    fn formats_rfc3339_with_z() {
        let t = DateTime::from_timestamp(1_795_755_600, 0).unwrap();
        assert_eq!(format_rfc3339(t), "2026-11-27T05:00:00Z");
    }

    #[test]
    fn formats_rfc3339_as_the_padded_format_does_for_every_year_chrono_has() {
        let padded = |t: DateTime<Utc>| {
            let secs = t.timestamp();
            let in_day = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                in_day / 3600,
                in_day / 60 % 60,
                in_day % 60
            )
        };
        // Every year from 9999 BC to 10,000 AD, at a time of day that moves through the
        // hours, minutes and seconds, and both ends of chrono's range.
        let start = days_from_civil(-9999, 1, 1) * 86_400;
        let step = 86_400 * 365 + 3_661;
        let mut instants: Vec<i64> = (0..20_000).map(|i| start + i * step).collect();
        let (min, max) = (
            DateTime::<Utc>::MIN_UTC.timestamp(),
            DateTime::<Utc>::MAX_UTC.timestamp(),
        );
        instants.extend([min, min + 59, max, max - 3_599, -1, 0, 1]);
        for secs in instants {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            assert_eq!(format_rfc3339(t), padded(t), "{secs}");
        }
    }
}
