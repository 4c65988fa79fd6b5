//! Translation to EventBridge `cron(...)` schedule expressions (SPEC §2.3).
//!
//! EventBridge differs from POSIX cron in three ways that matter here: it has a year field,
//! it numbers weekdays 1–7 from Sunday, and it requires exactly one day field to be `?`, so it
//! cannot say "day 1 of the month *or* a Monday". A schedule with both day fields restricted
//! therefore becomes two expressions, one per day field. A day matching both fires both
//! rules at the same instant; the runner's idempotency on (job, scheduled instant) makes the
//! second invocation a no-op.
//!
//! Only the forms AWS documents for rules are produced: `*`, `?`, numbers, weekday names,
//! `A-B` ranges and comma lists. Steps are expanded, since what EventBridge does with `/` in
//! some fields is not documented.

use super::{push_number, sorted_bits, write_runs, Schedule};
use crate::prelude::*;

const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const ALL_DAYS_OF_MONTH: u32 = !1;
const ALL_DAYS_OF_WEEK: u8 = 0b111_1111;

/// What one expression says in one day field.
#[derive(Clone, Copy)]
enum DayField {
    Star,
    Question,
    /// The schedule's own values of that field.
    Values,
}

impl Schedule {
    /// One or two `cron(...)` expressions whose firings together are exactly this schedule's.
    pub fn eventbridge(&self) -> Vec<String> {
        use DayField::{Question, Star, Values};
        let every_dom = !self.dom_restricted || self.days_of_month == ALL_DAYS_OF_MONTH;
        let every_dow = !self.dow_restricted || self.days_of_week == ALL_DAYS_OF_WEEK;
        match (self.dom_restricted, self.dow_restricted) {
            // Either field alone, or an "or" with a field that already matches every day.
            (true, true) if every_dom || every_dow => vec![self.expression(Star, Question)],
            (true, true) => vec![
                self.expression(Values, Question),
                self.expression(Question, Values),
            ],
            (_, true) if !every_dow => vec![self.expression(Question, Values)],
            _ => vec![self.expression(Values, Question)],
        }
    }

    /// `cron(minutes hours day-of-month month day-of-week *)`, written into one string.
    fn expression(&self, dom: DayField, dow: DayField) -> String {
        let mut out = String::with_capacity(48);
        out.push_str("cron(");
        list(&mut out, self.minutes, (1 << 60) - 1, push_number);
        out.push(' ');
        list(&mut out, u64::from(self.hours), (1 << 24) - 1, push_number);
        out.push(' ');
        match dom {
            DayField::Star => out.push('*'),
            DayField::Question => out.push('?'),
            DayField::Values => list(
                &mut out,
                u64::from(self.days_of_month),
                u64::from(ALL_DAYS_OF_MONTH),
                push_number,
            ),
        }
        out.push(' ');
        list(
            &mut out,
            u64::from(self.months),
            0b1_1111_1111_1110,
            push_number,
        );
        out.push(' ');
        match dow {
            DayField::Star => out.push('*'),
            DayField::Question => out.push('?'),
            DayField::Values => list(
                &mut out,
                u64::from(self.days_of_week),
                u64::MAX,
                |out, v| out.push_str(WEEKDAY_NAMES[v as usize]),
            ),
        }
        out.push_str(" *)");
        out
    }
}

/// Appends `*` when `mask` is the field's `full` set, else a comma list with runs of three or
/// more as `A-B`.
fn list(out: &mut String, mask: u64, full: u64, name: impl Fn(&mut String, u32)) {
    if mask == full {
        out.push('*');
        return;
    }
    write_runs(out, &sorted_bits(mask), name, "-", ",", ",");
}
