//! Backup schedules: the five-field cron dialect of SPEC §2.
//!
//! Two stages, as in cloudflare/saffron: [`Schedule::parse`] turns text into value sets
//! (bit masks) and validates them; the masks then answer "next after" by the next set bit of
//! each unit, with no allocation: the calendar is consulted once per month crossed, and
//! chrono only builds the instants returned.
//!
//! Everything is UTC. Day matching follows POSIX: a day field is *unrestricted* only when it
//! is exactly `*` or `?`; when both day fields are restricted a day matches if either does.
//!
//! ```
//! use backup_core::Schedule;
//! use chrono::{TimeZone, Utc};
//!
//! let s = Schedule::parse("0 12 * * MON").unwrap();
//! let after = Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).unwrap();
//! assert_eq!(s.next_after(after), Some(Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()));
//! assert_eq!(s.describe(), "At 12:00 on Monday");
//! assert_eq!(s.eventbridge(), vec!["cron(0 12 ? * MON *)"]);
//!
//! // Does not fire, since February has no 30th day.
//! let err = Schedule::parse("0 0 30 2 *").unwrap_err();
//! assert_eq!(err.codes(), vec![backup_core::ErrorCode::NeverRuns]);
//! ```

use crate::prelude::*;
mod describe;
mod eventbridge;
mod parse;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};

use crate::civil::{self, CivilMinute};
use crate::error::{ErrorCode, Field, FieldError, FieldErrors};
use parse::{ParsedField, Shape, FIELDS};

/// The longest schedule text accepted, in characters. Far above any real expression (the
/// longest useful one lists every value of every field) and low enough to bound the work a
/// hostile input can cause.
pub const MAX_SCHEDULE_CHARS: usize = 1024;

/// The shortest time allowed between two runs of one job, in minutes.
pub const MIN_INTERVAL_MINUTES: u32 = 60;

/// A validated schedule. Only [`Schedule::parse`] builds one, so every value fires at least
/// once and never twice within [`MIN_INTERVAL_MINUTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    source: String,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days_of_month: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, 0 = Sunday.
    days_of_week: u8,
    dom_restricted: bool,
    dow_restricted: bool,
}

impl Schedule {
    /// Parses and validates `text`, reporting every problem found.
    pub fn parse(text: &str) -> Result<Schedule, FieldErrors> {
        let mut errors = Vec::new();
        let char_count = text.chars().count();
        if char_count > MAX_SCHEDULE_CHARS {
            errors.push(FieldError::new(
                ErrorCode::TooLong,
                Field::Schedule,
                0..char_count,
                format!(
                    "The schedule is {char_count} characters long; write at most {MAX_SCHEDULE_CHARS}, such as `0 * * * *`."
                ),
            ));
            return Err(FieldErrors(errors));
        }
        // The span a too-frequent error marks: the minute field, or the whole macro.
        let mut minute_span = 0..char_count;
        let parsed = match parse::shape(text, &mut errors) {
            None => [None; 5],
            Some(Shape::Macro(expansion)) => {
                // A known macro expands to fields that always parse.
                let toks = parse::tokens(expansion);
                parse_fields(toks.iter().copied(), &mut errors)
            }
            Some(Shape::Fields(toks)) => {
                minute_span = toks[0].start..toks[0].start + toks[0].text.chars().count();
                parse_fields(toks.into_iter(), &mut errors)
            }
        };
        let [Some(minute), Some(hour), Some(dom), Some(month), Some(dow)] = parsed else {
            // Every problem is reported (SPEC §2.2): a minute field of several values runs
            // more than once an hour whatever the other fields say, once they are fixed.
            if let Some(minute) = parsed[0].filter(|m| m.mask.count_ones() > 1) {
                let minutes = sorted_bits(minute.mask);
                let gap = minutes.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
                errors.push(FieldError::new(
                    ErrorCode::TooFrequent,
                    Field::Minute,
                    minute_span,
                    too_frequent_message(&minutes, gap),
                ));
            }
            return Err(FieldErrors(errors));
        };
        let schedule = Schedule::from_fields(text, minute, hour, dom, month, dow);

        if schedule.minutes.count_ones() > 1 {
            errors.push(FieldError::new(
                ErrorCode::TooFrequent,
                Field::Minute,
                minute_span,
                schedule.too_frequent_message(),
            ));
        }
        if let Some(message) = schedule.never_runs_message() {
            errors.push(FieldError::new(
                ErrorCode::NeverRuns,
                Field::Schedule,
                0..char_count,
                message,
            ));
        }
        if errors.is_empty() {
            Ok(schedule)
        } else {
            Err(FieldErrors(errors))
        }
    }

    fn from_fields(
        text: &str,
        minute: ParsedField,
        hour: ParsedField,
        dom: ParsedField,
        month: ParsedField,
        dow: ParsedField,
    ) -> Schedule {
        Schedule {
            source: text.to_string(),
            minutes: minute.mask,
            hours: hour.mask as u32,
            days_of_month: dom.mask as u32,
            months: month.mask as u16,
            days_of_week: dow.mask as u8,
            dom_restricted: dom.restricted,
            dow_restricted: dow.restricted,
        }
    }

    /// The text this schedule was parsed from, as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first firing strictly after `after`. Firings fall on whole minutes, so the minute
    /// containing `after` never counts, even when `after` is its first second.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.upcoming(after).next()
    }

    /// Firings strictly after `after`, in order, without end.
    pub fn upcoming(&self, after: DateTime<Utc>) -> Upcoming<'_> {
        let c = CivilMinute::from_epoch_minutes(after.timestamp().div_euclid(60) + 1);
        Upcoming {
            schedule: self,
            position: self.month(c.year, c.month).map(|month| Position {
                month,
                day: c.day,
                hour: c.hour,
                minute: c.minute,
            }),
            started: false,
        }
    }

    /// The next `count` firings strictly after `after`.
    pub fn next_runs(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        self.upcoming(after).take(count).collect()
    }

    /// Whether the schedule fires at the minute containing `instant`.
    pub fn fires_at(&self, instant: DateTime<Utc>) -> bool {
        let c = CivilMinute::containing(instant);
        self.minutes & (1 << c.minute) != 0
            && self.hours & (1 << c.hour) != 0
            && self.months & (1 << c.month) != 0
            && self.days_in(c.year, c.month) & (1 << c.day) != 0
    }

    /// The days of a month on which the schedule fires, as bits 1..=31.
    fn days_in(&self, year: i32, month: u32) -> u32 {
        self.month_days(
            civil::days_in_month(year, month),
            civil::weekday(year, month, 1),
        )
    }

    /// The days on which the schedule fires in a month of `len` days whose first day is
    /// `first_weekday` (0 = Sunday), as bits 1..=31; the month itself is not checked.
    fn month_days(&self, len: u32, first_weekday: u32) -> u32 {
        let valid = (((1u64 << (len + 1)) - 1) & !1) as u32;
        let by_weekday = weekday_days(self.days_of_week, first_weekday % 7);
        let days = if self.dom_restricted && self.dow_restricted {
            self.days_of_month | by_weekday
        } else {
            self.days_of_month & by_weekday
        };
        days & valid
    }

    /// The month `month` of `year`, with the days on which the schedule fires in it.
    fn month(&self, year: i32, month: u32) -> Option<Month> {
        let year_start = civil::days_from_civil(year, 1, 1);
        self.month_of(year, civil::is_leap(year), year_start, month)
    }

    /// The month `month` of `year` (a leap year or not, starting `year_start` days after
    /// 1970-01-01), with the days on which the schedule fires in it (none when it skips the
    /// month). `None` when the schedule fires in it but chrono cannot represent it.
    fn month_of(&self, year: i32, leap: bool, year_start: i64, month: u32) -> Option<Month> {
        let skipped = Month {
            year,
            month,
            leap,
            days: 0,
            year_start,
            start: NaiveDate::MIN,
        };
        if u32::from(self.months) & (1 << month) == 0 {
            return Some(skipped);
        }
        let before = civil::days_before_month(month, leap);
        // 1970-01-01 was a Thursday (4).
        let first_weekday = (year_start + i64::from(before) + 4).rem_euclid(7) as u32;
        let days = self.month_days(civil::month_len(month, leap), first_weekday);
        if days == 0 {
            return Some(skipped);
        }
        Some(Month {
            days,
            start: NaiveDate::from_yo_opt(year, before + 1)?,
            ..skipped
        })
    }

    /// The first month after `after` in which the schedule fires. Every valid schedule fires
    /// within eight years (29 February skips a leap year every century); a bound of 401
    /// years keeps a bug from becoming an endless loop.
    ///
    /// Years are counted on from `after`'s by their lengths, not converted from the calendar:
    /// this runs once for every month a search crosses.
    fn next_month(&self, after: Month) -> Option<Month> {
        let months = u64::from(self.months);
        let limit = after.year.saturating_add(401);
        let (mut year, mut month) = (after.year, after.month);
        let (mut leap, mut year_start) = (after.leap, after.year_start);
        loop {
            match next_bit(months, month + 1) {
                Some(m) if m <= 12 => month = m,
                _ => {
                    year_start += if leap { 366 } else { 365 };
                    year += 1;
                    if year > limit {
                        return None;
                    }
                    leap = civil::is_leap(year);
                    month = next_bit(months, 1)?;
                }
            }
            let found = self.month_of(year, leap, year_start, month)?;
            if found.days != 0 {
                return Some(found);
            }
        }
    }

    /// Moves `p` to the first firing at or after it; `false` when there is none. `p.minute`
    /// may be 60 (one past the hour's last): the search then starts at the next hour.
    ///
    /// Each unit is found by the next set bit of its mask, from the smallest up: a unit that
    /// moves on starts every unit below it at its first value, so no day, hour or minute is
    /// ever stepped through one by one, and the calendar is consulted once per month. The
    /// position is moved in place: it is all an iterator carries from one firing to the next.
    fn seek(&self, p: &mut Position) -> bool {
        let first_minute = self.minutes.trailing_zeros();
        if p.month.days & (1 << p.day) != 0 {
            if self.hours & (1 << p.hour) != 0 {
                if let Some(minute) = next_bit(self.minutes, p.minute) {
                    p.minute = minute;
                    return true;
                }
            }
            if let Some(hour) = next_bit(u64::from(self.hours), p.hour + 1) {
                p.hour = hour;
                p.minute = first_minute;
                return true;
            }
        }
        match next_bit(u64::from(p.month.days), p.day + 1) {
            Some(day) => p.day = day,
            None => {
                let Some(next) = self.next_month(p.month) else {
                    return false;
                };
                p.month = next;
                p.day = next.days.trailing_zeros();
            }
        }
        p.hour = self.hours.trailing_zeros();
        p.minute = first_minute;
        true
    }

    /// The shortest time between two consecutive firings, in minutes.
    pub fn min_interval_minutes(&self) -> u32 {
        let minutes = sorted_bits(self.minutes);
        let hours = sorted_bits(u64::from(self.hours));
        let (Some(&first_minute), Some(&last_minute)) = (minutes.first(), minutes.last()) else {
            return 0;
        };
        let (Some(&first_hour), Some(&last_hour)) = (hours.first(), hours.last()) else {
            return 0;
        };
        let mut best = u32::MAX;
        for w in minutes.windows(2) {
            best = best.min(w[1] - w[0]);
        }
        for w in hours.windows(2) {
            best = best.min((w[1] - w[0]) * 60 + first_minute - last_minute);
        }
        let first = first_hour * 60 + first_minute;
        let last = last_hour * 60 + last_minute;
        // Across days the interval is at least a day less the span of one day's firings:
        // when that cannot beat what one day shows, the day gap need not be looked for.
        if best <= 1440 - (last - first) {
            return best;
        }
        if let Some(gap) = self.min_day_gap() {
            best = best.min(gap * 1440 - (last - first));
        }
        best
    }

    /// The fewest days between two consecutive days on which the schedule fires.
    fn min_day_gap(&self) -> Option<u32> {
        match (self.dom_restricted, self.dow_restricted) {
            // Every day of the chosen months: every month has consecutive days.
            (false, false) => Some(1),
            // Weekdays only: every month is long enough to hold each weekday gap.
            (false, true) => {
                let days = sorted_bits(u64::from(self.days_of_week));
                let mut best = 7;
                for w in days.windows(2) {
                    best = best.min(w[1] - w[0]);
                }
                if let (Some(first), Some(last)) = (days.first(), days.last()) {
                    best = best.min(first + 7 - last);
                }
                Some(best)
            }
            // Days of the month depend on month lengths and, with weekdays, on where each
            // month starts in the week: on the kind of year, of which there are fourteen
            // (the weekday of 1 January, leap or not). Each kind's firing days are
            // summarised once (first, last, fewest days apart); the years from 2001 to 2032
            // then only join summaries. From 2001 to 2099 the calendar repeats every 28
            // years, and these 32 years hold every kind and every pair of adjacent kinds
            // that the 400-year cycle holds (and the next leap day after each), so they
            // show every gap.
            _ => {
                let mut kinds: [Option<Option<YearDays>>; 14] = [None; 14];
                let mut best: Option<u32> = None;
                let mut previous_last: Option<i64> = None;
                let mut year_start: i64 = 0;
                let mut jan1 = civil::weekday(2001, 1, 1);
                for year in 2001..2033 {
                    let leap = civil::is_leap(year);
                    // Without weekdays, where the year starts in the week does not matter.
                    let start = if self.dow_restricted { jan1 } else { 0 };
                    let kind = usize::from(leap) * 7 + start as usize;
                    let days = *kinds[kind].get_or_insert_with(|| self.year_days(start, leap));
                    if let Some(days) = days {
                        let mut candidates = [days.gap, None];
                        if let Some(last) = previous_last {
                            candidates[1] =
                                Some((year_start + i64::from(days.first) - last) as u32);
                        }
                        for gap in candidates.into_iter().flatten() {
                            if gap == 1 {
                                return Some(1);
                            }
                            best = Some(best.map_or(gap, |b| b.min(gap)));
                        }
                        previous_last = Some(year_start + i64::from(days.last));
                    }
                    let len = if leap { 366 } else { 365 };
                    year_start += len;
                    jan1 = (jan1 + len as u32) % 7;
                }
                best
            }
        }
    }

    /// The firing days of a year that starts on weekday `jan1` (0 = Sunday), by month
    /// masks: `None` when it has none (only a 29 February can be missing from a year).
    fn year_days(&self, jan1: u32, leap: bool) -> Option<YearDays> {
        let mut first: Option<u32> = None;
        let mut previous: Option<u32> = None;
        let mut gap: Option<u32> = None;
        let mut month_start = 0u32;
        let mut weekday = jan1;
        for month in 1..=12u32 {
            let len = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if u32::from(self.months) & (1 << month) != 0 {
                let mut days = self.month_days(len, weekday);
                while days != 0 {
                    let day = month_start + days.trailing_zeros() - 1;
                    days &= days - 1;
                    match previous {
                        Some(p) => {
                            let g = day - p;
                            gap = Some(gap.map_or(g, |b| b.min(g)));
                        }
                        None => first = Some(day),
                    }
                    previous = Some(day);
                }
            }
            month_start += len;
            weekday = (weekday + len) % 7;
        }
        Some(YearDays {
            first: first?,
            last: previous?,
            gap,
        })
    }

    fn too_frequent_message(&self) -> String {
        too_frequent_message(&sorted_bits(self.minutes), self.min_interval_minutes())
    }

    /// `Some(why)` when no calendar day ever matches.
    fn never_runs_message(&self) -> Option<String> {
        // A restricted day of week always matches some day of every month, and with both
        // restricted a day matches if either does; only days of the month alone can miss.
        if self.dow_restricted || !self.dom_restricted {
            return None;
        }
        for month in 1..=12u32 {
            if u32::from(self.months) & (1 << month) == 0 {
                continue;
            }
            // The longest form of each month (29 days for February).
            let len = civil::days_in_month(2000, month);
            if self.days_of_month & ((((1u64 << (len + 1)) - 1) & !1) as u32) != 0 {
                return None;
            }
        }
        let days = describe::join_alternatives(&sorted_bits(u64::from(self.days_of_month)));
        let months = describe::join_values(&sorted_bits(u64::from(self.months)), |out, m| {
            out.push_str(describe::MONTHS[m as usize - 1])
        });
        // "February has", "April and June have".
        let has = if self.months.count_ones() == 1 {
            "has"
        } else {
            "have"
        };
        Some(format!(
            "This never runs: {months} {has} no day {days}; choose days of the month that exist in those months, such as `1`."
        ))
    }
}

impl core::fmt::Display for Schedule {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.source)
    }
}

impl core::str::FromStr for Schedule {
    type Err = FieldErrors;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

/// One kind of year's firing days: the day of the year (from 0) of the first and the last,
/// and the fewest days between two (`None` with one day).
#[derive(Debug, Clone, Copy)]
struct YearDays {
    first: u32,
    last: u32,
    gap: Option<u32>,
}

/// Parses each of the five fields in turn, reporting every problem; the fields only when all
/// five parse.
/// Each field that parsed (`None` where it did not: its errors are in `errors`).
fn parse_fields<'a>(
    toks: impl Iterator<Item = parse::Token<'a>>,
    errors: &mut Vec<FieldError>,
) -> [Option<ParsedField>; 5] {
    let mut fields = [None; 5];
    for ((slot, kind), tok) in fields.iter_mut().zip(FIELDS).zip(toks) {
        *slot = parse::parse_field(kind, tok, errors);
    }
    fields
}

/// `minutes` (sorted, more than one) run `gap` minutes apart at the closest.
fn too_frequent_message(minutes: &[u32], gap: u32) -> String {
    // The first six minutes, joined by pushes: neither `join` nor `to_string` in the
    // WebAssembly module for one message.
    let mut listed = String::new();
    for (i, &minute) in minutes.iter().take(6).enumerate() {
        if i > 0 {
            listed.push_str(", ");
        }
        push_number(&mut listed, minute);
    }
    let more = if minutes.len() > 6 { ", …" } else { "" };
    format!(
        "This runs {} times an hour (at minutes {}{more}), {gap} minute{} apart; a backup may run at most once an hour, so write a single minute, such as `{}`.",
        minutes.len(),
        listed,
        if gap == 1 { "" } else { "s" },
        minutes.first().copied().unwrap_or(0)
    )
}

/// One month of the search: the days on which the schedule fires in it, and where it starts.
#[derive(Debug, Clone, Copy)]
struct Month {
    year: i32,
    /// 1..=12
    month: u32,
    /// Whether `year` is a leap year.
    leap: bool,
    /// Bits 1..=31; 0 when the schedule does not fire in this month.
    days: u32,
    /// Days from 1970-01-01 to the first day of `year`.
    year_start: i64,
    /// The first day as chrono's date, for the firings' instants (a placeholder in a month
    /// without firings).
    start: NaiveDate,
}

/// A minute of the search, with its month: from one firing the search for the next starts
/// without any calendar arithmetic until the month runs out.
#[derive(Debug, Clone, Copy)]
struct Position {
    month: Month,
    day: u32,
    hour: u32,
    minute: u32,
}

impl Position {
    /// From the month's date by days within its year: chrono's fast path, without the
    /// conversion from a day number that `DateTime::from_timestamp` makes.
    fn to_datetime(self) -> Option<DateTime<Utc>> {
        let date = self
            .month
            .start
            .checked_add_days(Days::new(u64::from(self.day - 1)))?;
        let time = NaiveTime::from_hms_opt(self.hour, self.minute, 0)?;
        Some(date.and_time(time).and_utc())
    }
}

/// Firings in order; see [`Schedule::upcoming`].
#[derive(Debug, Clone)]
pub struct Upcoming<'a> {
    schedule: &'a Schedule,
    /// The last firing returned, or where the search starts before the first; `None` once
    /// past what can be represented or past the search bound.
    position: Option<Position>,
    started: bool,
}

impl Iterator for Upcoming<'_> {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        let p = self.position.as_mut()?;
        if self.started {
            p.minute += 1;
        }
        self.started = true;
        let instant = if self.schedule.seek(p) {
            p.to_datetime()
        } else {
            None
        };
        if instant.is_none() {
            self.position = None;
        }
        instant
    }
}

/// The days 1..=31 (as bits) of a month whose first day is weekday `first` (0..=6, 0 =
/// Sunday) that fall on one of `days_of_week`: the week rotated to start on `first`, repeated
/// every seven days. Weekday matching is then one AND or OR per month.
fn weekday_days(days_of_week: u8, first: u32) -> u32 {
    let week = u64::from(days_of_week);
    // Bit i: the month's day i + 1, whose weekday is (first + i) % 7.
    let first_week = ((week >> first) | (week << (7 - first))) & 0x7f;
    let month =
        first_week | first_week << 7 | first_week << 14 | first_week << 21 | first_week << 28;
    (month << 1) as u32
}

/// The lowest set bit at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask >> from;
    (rest != 0).then(|| from + rest.trailing_zeros())
}

/// The values of a mask in increasing order, kept on the stack: the form checks a schedule on
/// every keystroke, and a vector for each field cost more than the work done with it.
#[derive(Clone, Copy)]
pub(crate) struct Bits {
    values: [u32; 64],
    len: usize,
}

impl core::ops::Deref for Bits {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        &self.values[..self.len]
    }
}

pub(crate) fn sorted_bits(mut mask: u64) -> Bits {
    let mut out = Bits {
        values: [0; 64],
        len: 0,
    };
    while mask != 0 {
        out.values[out.len] = mask.trailing_zeros();
        out.len += 1;
        mask &= mask - 1;
    }
    out
}

/// The sorted `values` in parts: each run of three or more consecutive values as one
/// `(first, last)`, every other value alone as `(value, value)`.
fn run_parts(values: &[u32]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let mut i = 0;
    core::iter::from_fn(move || {
        let first = *values.get(i)?;
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            i = j + 1;
            Some((first, values[j]))
        } else {
            i += 1;
            Some((first, first))
        }
    })
}

/// Appends the sorted `values` to `out` as names, each run of three or more consecutive
/// values as one `first{through}last`; parts are separated by `separator`, the last two by
/// `last_separator`. Written in place, without a string per value or per part.
pub(crate) fn write_runs(
    out: &mut String,
    values: &[u32],
    name: impl Fn(&mut String, u32),
    through: &str,
    separator: &str,
    last_separator: &str,
) {
    let count = run_parts(values).count();
    for (n, (first, last)) in run_parts(values).enumerate() {
        if n > 0 {
            out.push_str(if n + 1 == count {
                last_separator
            } else {
                separator
            });
        }
        name(out, first);
        if last != first {
            out.push_str(through);
            name(out, last);
        }
    }
}

/// Appends `n` in decimal, without the formatting machinery.
pub(crate) fn push_number(out: &mut String, n: u32) {
    if n >= 10 {
        push_number(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

#[cfg(test)]
mod tests;
