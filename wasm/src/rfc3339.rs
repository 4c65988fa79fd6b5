//! `renderTemplate`'s `datetime`: chrono's `DateTime::parse_from_rfc3339`, step for step.
//!
//! chrono's parser brings its general formatting machinery with it (the `Parsed` fields,
//! the scanners, `ParseError`'s `Display` and, through its string slicing, the slicing
//! panic's formatting with `char`'s `Debug` and Unicode tables): about 5.6 KB of the gzipped
//! module for one field of one argument. This reader takes the same steps in the same order,
//! so it accepts the same texts, makes the same instants (leap seconds included) and refuses
//! the rest with the same one of chrono's `ParseError` messages; a host test compares the
//! two over every variation of a set of instants.

use backup_core::civil::days_from_civil;
use chrono::{DateTime, Utc};

/// chrono's `ParseError` texts, for the kinds its RFC 3339 parser returns.
pub const OUT_OF_RANGE: &str = "input is out of range";
pub const INVALID: &str = "input contains invalid characters";
pub const TOO_SHORT: &str = "premature end of input";
pub const TOO_LONG: &str = "trailing input";

/// Reads `2026-11-27T05:00:00Z` (`t` or a space between date and time, any number of
/// fraction digits of which nine count, `Z`, `z` or an offset from `-23:59` to `+23:59` with
/// `+`, `-` or `−`), as UTC; otherwise chrono's message for the first fault.
pub fn parse(s: &str) -> Result<DateTime<Utc>, &'static str> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return Err(TOO_SHORT);
    }
    // Two digits at `at` as a number; every byte before 19 exists.
    let two = |at: usize| Ok(digit(b, at)? * 10 + digit(b, at + 1)?);
    let year = two(0)? * 100 + two(2)?;
    separator(b, 4, b"-")?;
    let month = two(5)?;
    separator(b, 7, b"-")?;
    let day = two(8)?;
    // chrono's `NaiveDate::from_ymd_opt`, by the month's length: its month-and-day tables
    // are a kilobyte of the module. Every four-digit year is within chrono's range.
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_len = match month {
        2 => 28 + u32::from(leap),
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => 0,
    };
    if day == 0 || day > month_len {
        return Err(OUT_OF_RANGE);
    }
    separator(b, 10, b"tT ")?;
    let hour = two(11)?;
    separator(b, 13, b":")?;
    let minute = two(14)?;
    separator(b, 16, b":")?;
    let (second, mut nano) = match two(17)? {
        60 => (59, 1_000_000_000),
        second => (second, 0),
    };
    // The bytes from 19 on: everything before is ASCII, so 19 is a character boundary.
    let mut rest = b.get(19..).unwrap_or_default();
    if let Some((b'.', fraction)) = rest.split_first() {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(if fraction.is_empty() {
                TOO_SHORT
            } else {
                INVALID
            });
        }
        // The first nine digits as nanoseconds; the others are read and ignored.
        let mut value = 0;
        for i in 0..9 {
            let next = fraction.get(i).filter(|_| i < digits);
            value = value * 10 + next.map_or(0, |c| u32::from(c - b'0'));
        }
        nano += value;
        rest = fraction.get(digits..).unwrap_or_default();
    }
    // chrono's `NaiveTime::from_hms_nano_opt`: a leap second only as the 60th second.
    if hour >= 24 || minute >= 60 || second >= 60 || (nano >= 1_000_000_000 && second != 59) {
        return Err(OUT_OF_RANGE);
    }
    let offset = offset(rest)?;
    // chrono's `FixedOffset::east_opt`.
    if offset.abs() >= 86_400 {
        return Err(OUT_OF_RANGE);
    }
    // The local time less the offset, as chrono's `and_local_timezone` makes it: offsets
    // are whole minutes, so a leap second stays at a 59th second and keeps its nanoseconds.
    let local = days_from_civil(year as i32, month, day) * 86_400
        + i64::from(hour * 3600 + minute * 60 + second);
    DateTime::from_timestamp(local - i64::from(offset), nano).ok_or(OUT_OF_RANGE)
}

fn digit(b: &[u8], at: usize) -> Result<u32, &'static str> {
    match b.get(at) {
        Some(c @ b'0'..=b'9') => Ok(u32::from(c - b'0')),
        _ => Err(INVALID),
    }
}

fn separator(b: &[u8], at: usize, allowed: &[u8]) -> Result<(), &'static str> {
    match b.get(at) {
        Some(c) if allowed.contains(c) => Ok(()),
        _ => Err(INVALID),
    }
}

/// The time offset in seconds east of UTC, which must end the text: chrono's
/// `timezone_offset` with a colon, `Z`, the minus sign `−` allowed and the minutes required.
fn offset(s: &[u8]) -> Result<i32, &'static str> {
    let (negative, s) = match s {
        [b'Z' | b'z', rest @ ..] => {
            return if rest.is_empty() {
                Ok(0)
            } else {
                Err(TOO_LONG)
            }
        }
        [b'+', rest @ ..] => (false, rest),
        [b'-', rest @ ..] => (true, rest),
        // U+2212 MINUS SIGN.
        [0xe2, 0x88, 0x92, rest @ ..] => (true, rest),
        [] => return Err(TOO_SHORT),
        _ => return Err(INVALID),
    };
    let hours = match s {
        [h1 @ b'0'..=b'9', h2 @ b'0'..=b'9', ..] => i32::from((h1 - b'0') * 10 + (h2 - b'0')),
        [_, _, ..] => return Err(INVALID),
        _ => return Err(TOO_SHORT),
    };
    let s = match s.get(2..) {
        Some([b':', rest @ ..]) => rest,
        Some([_, ..]) => return Err(INVALID),
        _ => return Err(TOO_SHORT),
    };
    let minutes = match s {
        [m1 @ b'0'..=b'5', m2 @ b'0'..=b'9', ..] => i32::from((m1 - b'0') * 10 + (m2 - b'0')),
        [b'6'..=b'9', b'0'..=b'9', ..] => return Err(OUT_OF_RANGE),
        [_, _, ..] => return Err(INVALID),
        _ => return Err(TOO_SHORT),
    };
    if s.len() > 2 {
        return Err(TOO_LONG);
    }
    let seconds = hours * 3600 + minutes * 60;
    Ok(if negative { -seconds } else { seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// chrono's answer in this reader's terms.
    fn chrono(s: &str) -> Result<DateTime<Utc>, String> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| e.to_string())
    }

    fn ours(s: &str) -> Result<DateTime<Utc>, String> {
        parse(s).map_err(str::to_owned)
    }

    const SEEDS: &[&str] = &[
        "2026-11-27T05:00:00Z",
        "2026-11-27t05:00:00z",
        "2026-11-27 05:00:00.123Z",
        "2024-02-29T23:59:60.999999999+23:59",
        "0000-01-01T00:00:00-23:59",
        "9999-12-31T23:59:59.1234567891234−05:30",
        "2026-11-27T05:00:00.5+01:00",
        "2026-06-30T23:59:60Z",
        "2025-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-11-27T24:00:00Z",
        "2026-11-27T05:00:00+24:00",
        "2026-11-27T05:00:00+05:60",
        "2026-11-27T05:00:00.Z",
    ];

    /// Bytes that each take a different branch somewhere in the parser.
    const PROBES: &[&str] = &[
        "", "0", "1", "2", "5", "6", "9", "-", "+", ":", ".", "T", "t", " ", "Z", "z", "x", "−",
        "é", "00", "60",
    ];

    #[test]
    fn every_variation_of_the_seeds_reads_as_chrono_reads_it() {
        let mut cases = 0;
        for seed in SEEDS {
            let chars: Vec<(usize, char)> = seed.char_indices().collect();
            let mut variants = vec![(*seed).to_owned()];
            for (i, &(at, c)) in chars.iter().enumerate() {
                let (before, after) = (&seed[..at], &seed[at + c.len_utf8()..]);
                // Cut short here, this character replaced, or something put before it.
                variants.push(before.to_owned());
                for probe in PROBES {
                    variants.push(format!("{before}{probe}{after}"));
                    variants.push(format!("{before}{probe}{c}{after}"));
                }
                // Two characters replaced at once, reaching the later checks with an early
                // one already different.
                if let Some(&(next_at, next)) = chars.get(i + 1) {
                    let tail = &seed[next_at + next.len_utf8()..];
                    for p in ["0", "9", "x", "6"] {
                        variants.push(format!("{before}{p}{p}{tail}"));
                    }
                }
            }
            for suffix in PROBES {
                variants.push(format!("{seed}{suffix}"));
            }
            for text in variants {
                assert_eq!(ours(&text), chrono(&text), "{text:?}");
                cases += 1;
            }
        }
        assert!(cases > 5_000, "{cases}");
    }

    #[test]
    fn a_leap_second_keeps_its_nanoseconds() {
        let leap = parse("2026-06-30T23:59:60.5Z").unwrap();
        assert_eq!(leap, chrono("2026-06-30T23:59:60.5Z").unwrap());
        assert_eq!(
            chrono::Timelike::nanosecond(&leap),
            1_500_000_000,
            "chrono keeps a leap second as nanoseconds past 1e9"
        );
    }
}
