//! The EventBridge translation (SPEC §2.3), checked against an independent reading of AWS's
//! documentation for the `cron(...)` expressions of EventBridge rules.
//!
//! GIVEN a random valid schedule, WHEN it is translated with `Schedule::eventbridge`, THEN
//! every expression passes [`validate`] (the documented rules, narrowed to the forms SPEC §2.3
//! allows) and the union of the expressions' firings over two years, as [`Rule::matches`]
//! evaluates them, is exactly the schedule's own firings.
//!
//! What AWS documents for rules (eb-cron-expressions): six fields separated by white space,
//! `minutes hours day-of-month month day-of-week year`; minutes 0–59, hours 0–23, day of month
//! 1–31, month 1–12 or JAN–DEC, day of week 1–7 or SUN–SAT where 1 is Sunday, year 1970–2199;
//! "You can't specify the Day-of-month and Day-of-week fields in the same cron expression. If
//! you specify a value or a * in one of the fields, you must use a ? in the other." SPEC §2.3
//! narrows the forms to `*`, `?`, numbers, names, `A-B` and comma lists (no `/`, `L`, `W`,
//! `#`), the year to `*`, and the whole expression to 256 characters. Nothing here calls
//! into `backup_core` except to parse the schedule and ask for its expressions and firings.

mod common;

use std::collections::BTreeSet;

use backup_core::Schedule;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use common::Kind;
use proptest::prelude::*;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/// EventBridge numbers weekdays from Sunday = 1.
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A validated EventBridge expression as value sets (bit n = value n). `None` is `?`.
#[derive(Debug)]
struct Rule {
    minutes: u64,
    hours: u64,
    days_of_month: Option<u64>,
    months: u64,
    /// Bits 1..=7, 1 = Sunday.
    days_of_week: Option<u64>,
}

impl Rule {
    /// Whether the rule fires in the minute `hour:minute` of `date`.
    fn matches(&self, date: NaiveDate, hour: u32, minute: u32) -> bool {
        self.matches_day(date) && self.matches_time(hour, minute)
    }

    fn matches_day(&self, date: NaiveDate) -> bool {
        let has = |set: u64, v: u32| set & (1 << v) != 0;
        has(self.months, date.month())
            && self.days_of_month.is_none_or(|d| has(d, date.day()))
            && self
                .days_of_week
                .is_none_or(|d| has(d, date.weekday().number_from_sunday()))
    }

    fn matches_time(&self, hour: u32, minute: u32) -> bool {
        self.minutes & (1 << minute) != 0 && self.hours & (1 << hour) != 0
    }
}

/// Checks `expr` against the documented rules (narrowed as the module notes say) and returns
/// what it means.
fn validate(expr: &str) -> Result<Rule, String> {
    if expr.chars().count() > 256 {
        return Err(format!("longer than 256 characters ({})", expr.len()));
    }
    let inner = expr
        .strip_prefix("cron(")
        .and_then(|e| e.strip_suffix(')'))
        .ok_or("not of the form cron(...)")?;
    let fields: Vec<&str> = inner.split(' ').collect();
    let [minutes, hours, dom, month, dow, year] = fields[..] else {
        return Err(format!(
            "{} fields separated by single spaces, not 6",
            fields.len()
        ));
    };
    if year != "*" {
        return Err(format!("year `{year}` is not `*`"));
    }
    if (dom == "?") == (dow == "?") {
        return Err(format!(
            "exactly one day field must be `?` (day of month `{dom}`, day of week `{dow}`)"
        ));
    }
    let question = |f: &str, min, max, names: &[&str], first| -> Result<Option<u64>, String> {
        if f == "?" {
            Ok(None)
        } else {
            field(f, min, max, names, first).map(Some)
        }
    };
    Ok(Rule {
        minutes: field(minutes, 0, 59, &[], 0)?,
        hours: field(hours, 0, 23, &[], 0)?,
        days_of_month: question(dom, 1, 31, &[], 0)?,
        months: field(month, 1, 12, &MONTHS, 1)?,
        days_of_week: question(dow, 1, 7, &WEEKDAYS, 1)?,
    })
}

/// `*`, or a comma list of values and `A-B` ranges with `A <= B`. `names[i]` is value
/// `first + i`.
fn field(text: &str, min: u32, max: u32, names: &[&str], first: u32) -> Result<u64, String> {
    if text == "*" {
        return Ok((min..=max).fold(0, |m, v| m | 1 << v));
    }
    // Each item is a value or `A-B`: `/`, `L`, `W`, `#`, `?` and `*` inside a list are
    // neither numbers nor names, so they fail below.
    let value = |v: &str| -> Result<u32, String> {
        let n = if let Some(i) = names.iter().position(|n| *n == v) {
            i as u32 + first
        } else if !v.is_empty() && v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse().unwrap()
        } else {
            return Err(format!("`{v}` is not a number or a name"));
        };
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("`{v}` is outside {min}-{max}"))
        }
    };
    let mut set = 0u64;
    for item in text.split(',') {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (value(a)?, value(b)?),
            None => {
                let v = value(item)?;
                (v, v)
            }
        };
        if a > b {
            return Err(format!("range `{item}` runs backwards"));
        }
        set |= (a..=b).fold(0, |m, v| m | 1 << v);
    }
    Ok(set)
}

/// Every firing in `[from, from + 731 days)`, by our schedule and by its rules, as Unix
/// minutes in ascending order. The rules are evaluated on every minute of every day that any
/// of them lists (a rule cannot fire at a minute its own minute field does not hold); the
/// day and the time of day are checked apart only to skip days no rule matches.
fn both_firings(s: &Schedule, from: NaiveDate) -> (Vec<i64>, Vec<i64>, Vec<String>) {
    let start = Utc.from_utc_datetime(&from.and_hms_opt(0, 0, 0).unwrap());
    let until = start + Duration::days(731);
    let ours: Vec<i64> = s
        .upcoming(start - Duration::seconds(1))
        .take_while(|t| *t < until)
        .map(|t| t.timestamp() / 60)
        .collect();

    let exprs = s.eventbridge();
    let rules: Vec<Rule> = exprs
        .iter()
        .map(|e| validate(e).unwrap_or_else(|why| panic!("`{s}` became `{e}`: {why}")))
        .collect();
    let minutes: Vec<u32> = (0..60)
        .filter(|m| rules.iter().any(|r| r.minutes & (1 << m) != 0))
        .collect();
    let mut theirs = Vec::new();
    for (i, date) in from.iter_days().take(731).enumerate() {
        let today: Vec<&Rule> = rules.iter().filter(|r| r.matches_day(date)).collect();
        let first_minute = start.timestamp() / 60 + i as i64 * 1440;
        for hour in 0..24 {
            for &minute in &minutes {
                if today.iter().any(|r| r.matches(date, hour, minute)) {
                    theirs.push(first_minute + i64::from(hour * 60 + minute));
                }
            }
        }
    }
    (ours, theirs, exprs)
}

fn assert_same_firings(s: &Schedule, from: NaiveDate) {
    let (ours, theirs, exprs) = both_firings(s, from);
    if ours != theirs {
        let (a, b): (BTreeSet<i64>, BTreeSet<i64>) = (
            ours.iter().copied().collect(),
            theirs.iter().copied().collect(),
        );
        let fmt = |m: Option<&i64>| m.map(|m| DateTime::from_timestamp(m * 60, 0).unwrap());
        panic!(
            "`{s}` → {exprs:?} from {from}: only ours {:?}, only EventBridge {:?} ({} vs {} firings)",
            fmt(a.difference(&b).next()),
            fmt(b.difference(&a).next()),
            ours.len(),
            theirs.len()
        );
    }
    assert!(!ours.is_empty(), "`{s}` never fired in two years");
}

fn day_2000_2090() -> impl Strategy<Value = NaiveDate> {
    let from = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    (0..(90 * 365i64)).prop_map(move |d| from + Duration::days(d))
}

/// A field written as an explicit comma list of a random set: the longest translations.
fn dense(kind: Kind) -> impl Strategy<Value = String> {
    let (min, max) = (
        kind.min(),
        if kind == Kind::DayOfWeek {
            6
        } else {
            kind.max()
        },
    );
    prop::collection::btree_set(min..=max, 1..=(max - min + 1) as usize).prop_map(|set| {
        set.iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rules_fire_exactly_when_the_schedule_does(e in common::expr(), from in day_2000_2090()) {
        prop_assume!(e.fires());
        let s = Schedule::parse(&e.render()).unwrap();
        assert_same_firings(&s, from);
    }

    #[test]
    fn dense_lists_stay_valid_and_exact(
        minute in 0..60u32,
        hours in dense(Kind::Hour),
        dom in prop_oneof![Just("*".to_string()), dense(Kind::DayOfMonth)],
        months in dense(Kind::Month),
        dow in prop_oneof![Just("*".to_string()), dense(Kind::DayOfWeek)],
        from in day_2000_2090(),
    ) {
        let text = format!("{minute} {hours} {dom} {months} {dow}");
        // Days of the month alone can miss every chosen month (`31` in `2,4`).
        let Ok(s) = Schedule::parse(&text) else { return Ok(()) };
        assert_same_firings(&s, from);
    }
}

/// The validator itself: it accepts what AWS's examples show and rejects what the SPEC rules
/// out, so a translation bug cannot hide behind a lax check.
#[test]
fn the_validator_follows_the_documentation() {
    for ok in [
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0 9 ? * 2-6 *)",
        "cron(0 0 1,15 JAN-MAR,DEC ? *)",
    ] {
        assert!(validate(ok).is_ok(), "{ok}: {:?}", validate(ok).err());
    }
    for bad in [
        "cron(0 10 * * * *)",    // both day fields set
        "cron(0 10 ? * ? *)",    // neither
        "cron(0/15 10 * * ? *)", // a step
        "cron(0 10 L * ? *)",    // last day
        "cron(0 10 15W * ? *)",  // nearest weekday
        "cron(0 10 ? * 6#3 *)",  // n-th weekday
        "cron(0 10 ? * 0 *)",    // Sunday is 1
        "cron(0 10 * * ? 2026)", // a year
        "cron(0 24 * * ? *)",    // hour out of range
        "cron(0 5-3 * * ? *)",   // backwards range
        "cron(0 10 * * ?)",      // five fields
        "cron(0  10 * * ? *)",   // double space
        "0 10 * * ? *",          // no cron(...)
    ] {
        assert!(validate(bad).is_err(), "{bad} should be rejected");
    }
    let long = format!("cron(0 {} * * ? *)", vec!["1"; 130].join(","));
    assert!(validate(&long).is_err(), "over 256 characters");
}

/// Hand-picked translations, including both day fields restricted (two rules) and the ways a
/// restricted field can still mean "every day".
#[test]
fn hand_picked_schedules_translate_exactly() {
    // Two years holding a 29 February.
    let from = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
    for (text, expected) in [
        ("0 */1 * * *", vec!["cron(0 * * * ? *)"]),
        ("30 2 * * *", vec!["cron(30 2 * * ? *)"]),
        ("0 12 * * MON-FRI", vec!["cron(0 12 ? * MON-FRI *)"]),
        ("15 */6 1,15 * *", vec!["cron(15 0,6,12,18 1,15 * ? *)"]),
        ("0 0 1 */3 *", vec!["cron(0 0 1 1,4,7,10 ? *)"]),
        (
            "0 0 13 * 5",
            vec!["cron(0 0 13 * ? *)", "cron(0 0 ? * FRI *)"],
        ),
        ("0 0 */1 * 1", vec!["cron(0 0 * * ? *)"]),
        ("0 0 1 * 0-7", vec!["cron(0 0 * * ? *)"]),
        ("0 0 * * 7", vec!["cron(0 0 ? * SUN *)"]),
        ("0 0 29 2 *", vec!["cron(0 0 29 2 ? *)"]),
        ("@weekly", vec!["cron(0 0 ? * SUN *)"]),
    ] {
        let s = Schedule::parse(text).unwrap();
        assert_eq!(s.eventbridge(), expected, "{text}");
        assert_same_firings(&s, from);
    }
    // 29 February over a century boundary: 2100 is not a leap year.
    assert_same_firings(
        &Schedule::parse("0 0 29 2 1").unwrap(),
        NaiveDate::from_ymd_opt(2099, 1, 1).unwrap(),
    );
}
