//! One English sentence a person can check at a glance ("At 12:00 on Monday").
//!
//! The sentence is built from the value sets, not the text, so `*/6`, `0,6,12,18` and
//! `0-23/6` read the same: what an operator checks is when the backup runs, not how the
//! expression was spelt.

use super::{push_number, sorted_bits, write_runs, Schedule};
use crate::prelude::*;

pub(crate) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

pub(crate) const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The most times of day listed one by one before the sentence switches to a pattern.
const MAX_LISTED_TIMES: usize = 4;

impl Schedule {
    /// One English sentence describing when the schedule fires, in UTC.
    ///
    /// Written into one string as it goes: the form describes the schedule on every
    /// keystroke.
    pub fn describe(&self) -> String {
        let minutes = sorted_bits(self.minutes);
        let hours = sorted_bits(u64::from(self.hours));
        let mut out = String::with_capacity(80);
        time_of_day(&mut out, &minutes, &hours);
        // `out.contains("every")`, by bytes: the same answer without the two-way string
        // searcher's forward search in the WebAssembly module.
        let every_hour_like = out.as_bytes().windows(5).any(|w| w == b"every");
        if self.dom_restricted || self.dow_restricted {
            out.push(' ');
            self.day_phrase(&mut out);
        } else if !every_hour_like {
            out.push_str(" every day");
        }
        if self.months != ALL_MONTHS && !self.names_a_date() {
            out.push_str(" in ");
            write_values(&mut out, &sorted_bits(u64::from(self.months)), month_name);
        }
        out
    }

    /// One day of one month, and no weekday: "on 1 January".
    fn names_a_date(&self) -> bool {
        self.dom_restricted
            && !self.dow_restricted
            && self.days_of_month.count_ones() == 1
            && self.months.count_ones() == 1
    }

    /// "on days 1 and 15 of the month", "on Monday through Friday", or both joined by "or".
    fn day_phrase(&self, out: &mut String) {
        if self.dom_restricted {
            self.days_of_month_phrase(out);
            if self.dow_restricted {
                out.push_str(" or ");
            }
        }
        if self.dow_restricted {
            // Monday first, as people list a week: place 0 is Monday, place 6 Sunday.
            let mut by_place = 0u64;
            for place in 0..7 {
                if self.days_of_week & (1 << ((place + 1) % 7)) != 0 {
                    by_place |= 1 << place;
                }
            }
            out.push_str("on ");
            write_values(out, &sorted_bits(by_place), |out, place| {
                out.push_str(WEEKDAYS[((place + 1) % 7) as usize])
            });
        }
    }

    fn days_of_month_phrase(&self, out: &mut String) {
        let days = sorted_bits(u64::from(self.days_of_month));
        if self.names_a_date() {
            let month = self.months.trailing_zeros();
            out.push_str("on ");
            push_number(out, days[0]);
            out.push(' ');
            month_name(out, month);
            return;
        }
        if let (Some(step), true) = (common_step(&days), days.len() >= 4) {
            out.push_str("on every ");
            push_ordinal(out, step);
            out.push_str(" day of the month from day ");
            push_number(out, days[0]);
            out.push_str(" to day ");
            push_number(out, days[days.len() - 1]);
            return;
        }
        out.push_str(if days.len() == 1 {
            "on day "
        } else {
            "on days "
        });
        write_values(out, &days, push_number);
        out.push_str(" of the month");
    }
}

const ALL_MONTHS: u16 = 0b1_1111_1111_1110;

fn month_name(out: &mut String, month: u32) {
    out.push_str(MONTHS[month as usize - 1]);
}

/// `HH:MM`.
fn push_hhmm(out: &mut String, hour: u32, minute: u32) {
    for n in [hour, minute] {
        if n < 10 {
            out.push('0');
        }
        push_number(out, n);
        out.push(':');
    }
    out.pop();
}

fn time_of_day(out: &mut String, minutes: &[u32], hours: &[u32]) {
    // A valid schedule has one minute; describe other sets too, for error messages.
    if minutes.len() != 1 {
        out.push_str("At minutes ");
        write_values(out, minutes, push_number);
        if hours.len() == 24 {
            out.push_str(" of every hour");
        } else {
            out.push_str(" past hours ");
            write_values(out, hours, push_number);
        }
        return;
    }
    let minute = minutes[0];
    let (Some(&first), Some(&last)) = (hours.first(), hours.last()) else {
        return;
    };
    if hours.len() == 24 {
        out.push_str("At minute ");
        push_number(out, minute);
        out.push_str(" of every hour");
        return;
    }
    if hours.len() <= MAX_LISTED_TIMES {
        out.push_str("At ");
        for (n, &hour) in hours.iter().enumerate() {
            if n > 0 {
                out.push_str(if n + 1 == hours.len() { " and " } else { ", " });
            }
            push_hhmm(out, hour, minute);
        }
        return;
    }
    out.push_str("At minute ");
    push_number(out, minute);
    if let Some(step) = common_step(hours) {
        if step == 1 {
            out.push_str(" of every hour from ");
        } else {
            out.push_str(" of every ");
            push_ordinal(out, step);
            out.push_str(" hour from ");
        }
        push_hhmm(out, first, minute);
        out.push_str(" to ");
        push_hhmm(out, last, minute);
        return;
    }
    out.push_str(" of hours ");
    write_values(out, hours, push_number);
}

/// The step of an arithmetic progression of at least three values.
fn common_step(values: &[u32]) -> Option<u32> {
    let step = values.get(1)? - values.first()?;
    (values.len() >= 3 && values.windows(2).all(|w| w[1] - w[0] == step)).then_some(step)
}

fn push_ordinal(out: &mut String, n: u32) {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    push_number(out, n);
    out.push_str(suffix);
}

/// Appends "1, 2 and 5", with runs of three or more as "9 through 17".
fn write_values(out: &mut String, values: &[u32], name: impl Fn(&mut String, u32)) {
    write_runs(out, values, name, " through ", ", ", " and ");
}

/// "1, 2 and 5", with runs of three or more as "9 through 17".
pub(crate) fn join_values(values: &[u32], name: impl Fn(&mut String, u32)) -> String {
    let mut out = String::new();
    write_values(&mut out, values, name);
    out
}

/// "30 or 31": values of which none is wanted, as in "has no day 30 or 31".
pub(crate) fn join_alternatives(values: &[u32]) -> String {
    let mut out = String::new();
    write_runs(&mut out, values, push_number, " through ", ", ", " or ");
    out
}
