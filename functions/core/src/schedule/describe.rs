//! One English sentence a person can check at a glance ("At 12:00 on Monday").
//!
//! The sentence is built from the value sets, not the text, so `*/6`, `0,6,12,18` and
//! `0-23/6` read the same: what an operator checks is when the backup runs, not how the
//! expression was spelt.

use super::{runs, sorted_bits, Schedule};

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
    pub fn describe(&self) -> String {
        let minutes = sorted_bits(self.minutes);
        let hours = sorted_bits(u64::from(self.hours));
        let mut out = time_of_day(&minutes, &hours);
        let days = self.day_phrase();
        // `out.contains("every")`, by bytes: the same answer without the two-way string
        // searcher's forward search in the WebAssembly module.
        let every_hour_like = out.as_bytes().windows(5).any(|w| w == b"every");
        match days {
            Some(d) => {
                out.push(' ');
                out.push_str(&d);
            }
            None if !every_hour_like => out.push_str(" every day"),
            None => {}
        }
        if self.months != ALL_MONTHS && !self.names_a_date() {
            let months = sorted_bits(u64::from(self.months));
            out.push_str(" in ");
            out.push_str(&join_values(&months, |m| {
                MONTHS[m as usize - 1].to_string()
            }));
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

    fn day_phrase(&self) -> Option<String> {
        let dom = || {
            let days = sorted_bits(u64::from(self.days_of_month));
            if self.names_a_date() {
                let month = self.months.trailing_zeros() as usize;
                return format!("on {} {}", days[0], MONTHS[month - 1]);
            }
            if let (Some(step), true) = (common_step(&days), days.len() >= 4) {
                return format!(
                    "on every {} day of the month from day {} to day {}",
                    ordinal(step),
                    days[0],
                    days[days.len() - 1]
                );
            }
            let noun = if days.len() == 1 { "day" } else { "days" };
            format!(
                "on {noun} {} of the month",
                join_values(&days, |d| d.to_string())
            )
        };
        let dow = || {
            // Monday first, as people list a week.
            // Each day moved to its Monday-first place, in order: what sorting the moved days
            // gives, without a sort routine in the WebAssembly module for seven numbers.
            let bits = sorted_bits(u64::from(self.days_of_week));
            let days: Vec<u32> = (0..7)
                .flat_map(|place| bits.iter().filter(move |&&d| (d + 6) % 7 == place))
                .map(|&d| (d + 6) % 7)
                .collect();
            format!(
                "on {}",
                join_values(&days, |d| WEEKDAYS[((d + 1) % 7) as usize].to_string())
            )
        };
        match (self.dom_restricted, self.dow_restricted) {
            (false, false) => None,
            (true, false) => Some(dom()),
            (false, true) => Some(dow()),
            (true, true) => Some(format!("{} or {}", dom(), dow())),
        }
    }
}

const ALL_MONTHS: u16 = 0b1_1111_1111_1110;

fn hhmm(hour: u32, minute: u32) -> String {
    format!("{hour:02}:{minute:02}")
}

fn time_of_day(minutes: &[u32], hours: &[u32]) -> String {
    // A valid schedule has one minute; describe other sets too, for error messages.
    if minutes.len() != 1 {
        let m = join_values(minutes, |m| m.to_string());
        return match hours.len() {
            24 => format!("At minutes {m} of every hour"),
            _ => format!(
                "At minutes {m} past hours {}",
                join_values(hours, |h| h.to_string())
            ),
        };
    }
    let minute = minutes[0];
    let (Some(&first), Some(&last)) = (hours.first(), hours.last()) else {
        return String::new();
    };
    if hours.len() == 24 {
        return format!("At minute {minute} of every hour");
    }
    if hours.len() <= MAX_LISTED_TIMES {
        return format!(
            "At {}",
            join_list(&hours.iter().map(|&h| hhmm(h, minute)).collect::<Vec<_>>())
        );
    }
    if let Some(step) = common_step(hours) {
        let every = if step == 1 {
            "every hour".to_string()
        } else {
            format!("every {} hour", ordinal(step))
        };
        return format!(
            "At minute {minute} of {every} from {} to {}",
            hhmm(first, minute),
            hhmm(last, minute)
        );
    }
    format!(
        "At minute {minute} of hours {}",
        join_values(hours, |h| h.to_string())
    )
}

/// The step of an arithmetic progression of at least three values.
fn common_step(values: &[u32]) -> Option<u32> {
    let step = values.get(1)? - values.first()?;
    (values.len() >= 3 && values.windows(2).all(|w| w[1] - w[0] == step)).then_some(step)
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "1, 2 and 5", with runs of three or more as "9 through 17".
pub(crate) fn join_values(values: &[u32], name: impl Fn(u32) -> String) -> String {
    let parts = runs(values, name, " through ");
    join_list(&parts)
}

fn join_list(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
