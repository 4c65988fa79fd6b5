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

use super::{runs, sorted_bits, Schedule};

const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const ALL_DAYS_OF_MONTH: u32 = !1;
const ALL_DAYS_OF_WEEK: u8 = 0b111_1111;

impl Schedule {
    /// One or two `cron(...)` expressions whose firings together are exactly this schedule's.
    pub fn eventbridge(&self) -> Vec<String> {
        let number = |v: u32| v.to_string();
        let minutes = list(self.minutes, (1 << 60) - 1, number);
        let hours = list(u64::from(self.hours), (1 << 24) - 1, number);
        let months = list(u64::from(self.months), 0b1_1111_1111_1110, number);
        let dom = list(
            u64::from(self.days_of_month),
            u64::from(ALL_DAYS_OF_MONTH),
            number,
        );
        let dow = list(u64::from(self.days_of_week), u64::MAX, |v| {
            WEEKDAY_NAMES[v as usize].to_string()
        });
        let expr = |dom: &str, dow: &str| format!("cron({minutes} {hours} {dom} {months} {dow} *)");

        let every_dom = !self.dom_restricted || self.days_of_month == ALL_DAYS_OF_MONTH;
        let every_dow = !self.dow_restricted || self.days_of_week == ALL_DAYS_OF_WEEK;
        match (self.dom_restricted, self.dow_restricted) {
            // Either field alone, or an "or" with a field that already matches every day.
            (true, true) if every_dom || every_dow => vec![expr("*", "?")],
            (true, true) => vec![expr(&dom, "?"), expr("?", &dow)],
            (_, true) if !every_dow => vec![expr("?", &dow)],
            _ => vec![expr(&dom, "?")],
        }
    }
}

/// `*` when `mask` is the field's `full` set, else a comma list with runs of three or more
/// as `A-B`.
fn list(mask: u64, full: u64, name: impl Fn(u32) -> String) -> String {
    if mask == full {
        return "*".to_string();
    }
    let values = sorted_bits(mask);
    let parts = runs(&values, name, "-");
    parts.join(",")
}
