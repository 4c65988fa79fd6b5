//! Table tests of SPEC §2: every example, every error code.

use chrono::{DateTime, TimeZone, Utc};

use super::*;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn next5(expr: &str, after: DateTime<Utc>) -> Vec<String> {
    let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    s.next_runs(after, 5)
        .into_iter()
        .map(civil::format_rfc3339)
        .collect()
}

/// The one error of `expr`, asserting there is exactly one.
fn only_error(expr: &str) -> FieldError {
    let errors = Schedule::parse(expr).expect_err(expr).0;
    assert_eq!(errors.len(), 1, "{expr}: {errors:?}");
    errors.into_iter().next().unwrap()
}

fn span(e: &FieldError) -> (usize, usize) {
    (e.start, e.end)
}

#[test]
fn given_the_seed_hourly_schedule_then_it_fires_on_every_hour() {
    assert_eq!(
        next5("0 */1 * * *", at(2026, 1, 1, 0, 0)),
        [
            "2026-01-01T01:00:00Z",
            "2026-01-01T02:00:00Z",
            "2026-01-01T03:00:00Z",
            "2026-01-01T04:00:00Z",
            "2026-01-01T05:00:00Z"
        ]
    );
    let s = Schedule::parse("0 */1 * * *").unwrap();
    assert_eq!(s.describe(), "At minute 0 of every hour");
    assert_eq!(s.eventbridge(), ["cron(0 * * * ? *)"]);
    assert_eq!(s.min_interval_minutes(), 60);
}

#[test]
fn next_runs_are_strictly_after_the_given_instant() {
    let s = Schedule::parse("0 * * * *").unwrap();
    assert_eq!(
        s.next_after(at(2026, 1, 1, 5, 0)),
        Some(at(2026, 1, 1, 6, 0))
    );
    let just_before = at(2026, 1, 1, 4, 59) + chrono::Duration::seconds(59);
    assert_eq!(s.next_after(just_before), Some(at(2026, 1, 1, 5, 0)));
}

#[test]
fn names_are_case_insensitive_and_sunday_is_0_or_7() {
    let a = Schedule::parse("0 12 * jan,Jul sun").unwrap();
    let b = Schedule::parse("0 12 * 1,7 7").unwrap();
    let c = Schedule::parse("0 12 * JAN,JUL 0").unwrap();
    let after = at(2026, 1, 1, 0, 0);
    assert_eq!(a.next_runs(after, 20), b.next_runs(after, 20));
    assert_eq!(a.next_runs(after, 20), c.next_runs(after, 20));
    assert_eq!(
        a.next_after(after),
        Some(at(2026, 1, 4, 12, 0)),
        "4 January 2026 is a Sunday"
    );
}

#[test]
fn every_item_form_is_accepted() {
    for expr in [
        "0 9-17 * * *",
        "0 9-17/2 * * *",
        "0 1/6 * * *",
        "0 */6 * * *",
        "5 0,12 1,15 * *",
        "0 0 ? * MON-FRI",
        "0 0 1 * ?",
        "0 0 1-7/3 jan-mar/2 *",
        "0\t0   * *  *",
    ] {
        assert!(Schedule::parse(expr).is_ok(), "{expr}");
    }
    let s = Schedule::parse("0 1/6 * * *").unwrap();
    assert_eq!(
        next5("0 1/6 * * *", at(2026, 1, 1, 0, 0)),
        [
            "2026-01-01T01:00:00Z",
            "2026-01-01T07:00:00Z",
            "2026-01-01T13:00:00Z",
            "2026-01-01T19:00:00Z",
            "2026-01-02T01:00:00Z"
        ]
    );
    assert_eq!(s.eventbridge(), ["cron(0 1,7,13,19 * * ? *)"]);
}

#[test]
fn macros_expand_to_their_five_fields() {
    for (mac, fields) in [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ] {
        let after = at(2026, 3, 1, 0, 0);
        assert_eq!(next5(mac, after), next5(fields, after), "{mac} is {fields}");
        assert_eq!(Schedule::parse(mac).unwrap().as_str(), mac);
    }
}

#[test]
fn posix_day_matching_uses_or_when_both_day_fields_are_restricted() {
    // The 13th, or any Friday.
    let runs = next5("0 0 13 * 5", at(2026, 11, 1, 0, 0));
    assert_eq!(
        runs,
        [
            "2026-11-06T00:00:00Z",
            "2026-11-13T00:00:00Z",
            "2026-11-20T00:00:00Z",
            "2026-11-27T00:00:00Z",
            "2026-12-04T00:00:00Z"
        ]
    );
    let runs = next5("0 0 1 * MON", at(2026, 11, 27, 0, 0));
    assert_eq!(runs[0], "2026-11-30T00:00:00Z");
    assert_eq!(runs[1], "2026-12-01T00:00:00Z");
}

#[test]
fn an_unrestricted_day_field_does_not_widen_the_other() {
    // `*` or `?` in one day field: only the other decides.
    for expr in ["0 0 * * 1", "0 0 ? * 1"] {
        for t in Schedule::parse(expr)
            .unwrap()
            .next_runs(at(2026, 1, 1, 0, 0), 30)
        {
            assert_eq!(civil::weekday_of(t), 1, "{expr} fired on {t}");
        }
    }
    // `*/1` is restricted in the POSIX sense: the "either" rule applies, and it covers every day.
    let runs = next5("0 0 */1 * 1", at(2026, 1, 1, 0, 0));
    assert_eq!(runs[0], "2026-01-02T00:00:00Z");
    assert_eq!(runs[1], "2026-01-03T00:00:00Z");
}

#[test]
fn february_29_fires_in_leap_years_only_and_skips_2100() {
    let s = Schedule::parse("0 0 29 2 *").unwrap();
    let runs: Vec<String> = s
        .next_runs(at(2026, 1, 1, 0, 0), 3)
        .into_iter()
        .map(civil::format_rfc3339)
        .collect();
    assert_eq!(
        runs,
        [
            "2028-02-29T00:00:00Z",
            "2032-02-29T00:00:00Z",
            "2036-02-29T00:00:00Z"
        ]
    );
    assert_eq!(
        s.next_after(at(2096, 3, 1, 0, 0)),
        Some(at(2104, 2, 29, 0, 0))
    );
    assert_eq!(s.min_interval_minutes(), 1461 * 1440);
}

#[test]
fn minimum_interval_spans_days_when_needed() {
    for (expr, minutes) in [
        ("0 * * * *", 60),
        ("0 */6 * * *", 360),
        ("30 2 * * *", 1440),
        ("0 3,5 * * *", 120),
        ("0 0 * * 1", 7 * 1440),
        ("0 0 * * 1,3", 2 * 1440),
        ("0 0 * * 0,6", 1440),
        ("0 0 1 * *", 28 * 1440),
        ("0 0 1,31 * *", 1440),
        ("0 0 1 1 *", 365 * 1440),
        ("0 23 * * *", 1440),
        ("0 0,23 * * *", 60),
    ] {
        assert_eq!(
            Schedule::parse(expr).unwrap().min_interval_minutes(),
            minutes,
            "{expr}"
        );
    }
}

#[test]
fn descriptions_read_as_one_sentence() {
    for (expr, text) in [
        ("0 */1 * * *", "At minute 0 of every hour"),
        ("0 12 * * 1", "At 12:00 on Monday"),
        ("30 2 * * *", "At 02:30 every day"),
        ("0 */6 * * *", "At 00:00, 06:00, 12:00 and 18:00 every day"),
        (
            "15 */2 * * *",
            "At minute 15 of every 2nd hour from 00:15 to 22:15",
        ),
        (
            "0 9-17 * * MON-FRI",
            "At minute 0 of every hour from 09:00 to 17:00 on Monday through Friday",
        ),
        ("0 0 1 * *", "At 00:00 on day 1 of the month"),
        ("0 0 1,15 * *", "At 00:00 on days 1 and 15 of the month"),
        ("0 0 13 * 5", "At 00:00 on day 13 of the month or on Friday"),
        ("0 0 1 1 *", "At 00:00 on 1 January"),
        ("5 4 * * SAT,SUN", "At 04:05 on Saturday and Sunday"),
        ("0 0 * * 0-6", "At 00:00 on Monday through Sunday"),
        (
            "0 3 */2 * *",
            "At 03:00 on every 2nd day of the month from day 1 to day 31",
        ),
        (
            "0 0 1 1,7 *",
            "At 00:00 on day 1 of the month in January and July",
        ),
        ("0 4 * 3-5 *", "At 04:00 every day in March through May"),
        (
            "0 1,2,5,7,11 * * *",
            "At minute 0 of hours 1, 2, 5, 7 and 11 every day",
        ),
    ] {
        assert_eq!(Schedule::parse(expr).unwrap().describe(), text, "{expr}");
    }
}

#[test]
fn eventbridge_expressions_follow_the_documented_subset() {
    for (expr, rules) in [
        ("0 12 * * 1", vec!["cron(0 12 ? * MON *)"]),
        ("0 12 * * 7", vec!["cron(0 12 ? * SUN *)"]),
        ("0 0 * * 1-5", vec!["cron(0 0 ? * MON-FRI *)"]),
        ("0 0 1 * *", vec!["cron(0 0 1 * ? *)"]),
        ("0 */4 1-15 * *", vec!["cron(0 0,4,8,12,16,20 1-15 * ? *)"]),
        ("0 0 1 */3 *", vec!["cron(0 0 1 1,4,7,10 ? *)"]),
        (
            "0 0 13 * 5",
            vec!["cron(0 0 13 * ? *)", "cron(0 0 ? * FRI *)"],
        ),
        ("0 0 1-31 * 1", vec!["cron(0 0 * * ? *)"]),
        ("0 0 1 * 0-6", vec!["cron(0 0 * * ? *)"]),
        ("0 0 * * 0-7", vec!["cron(0 0 * * ? *)"]),
        ("@weekly", vec!["cron(0 0 ? * SUN *)"]),
    ] {
        assert_eq!(
            Schedule::parse(expr).unwrap().eventbridge(),
            rules,
            "{expr}"
        );
    }
}

#[test]
fn blank_input_is_empty() {
    for expr in ["", "   ", "\t\n"] {
        let e = only_error(expr);
        assert_eq!(e.code, ErrorCode::Empty);
        assert_eq!(e.field, Field::Schedule);
        assert_eq!(span(&e), (0, expr.chars().count()));
    }
}

#[test]
fn field_count_mentions_seconds_and_years_for_six_or_seven_fields() {
    let e = only_error("0 0 * * * *");
    assert_eq!(e.code, ErrorCode::FieldCount);
    assert_eq!(e.field, Field::Schedule);
    assert_eq!(span(&e), (0, 11));
    assert!(e.message.contains("seconds and year"), "{}", e.message);
    let e = only_error("0 0 * * * * 2026");
    assert!(e.message.contains("seconds and year"), "{}", e.message);
    let e = only_error("0 0 *");
    assert_eq!(e.code, ErrorCode::FieldCount);
    assert!(e.message.contains("exactly five"), "{}", e.message);
}

#[test]
fn malformed_items_are_syntax_errors_on_their_field() {
    let e = only_error("0 1-* * * *");
    assert_eq!((e.code, e.field), (ErrorCode::Syntax, Field::Hour));
    assert_eq!(span(&e), (4, 5));
    let e = only_error("0 0 1,,2 * *");
    assert_eq!((e.code, e.field), (ErrorCode::Syntax, Field::DayOfMonth));
    assert_eq!(span(&e), (6, 7), "the stray comma");
    for (expr, field) in [
        ("a * * * *", Field::Minute),
        ("0 ? * * *", Field::Hour),
        ("0 0 * FOO *", Field::Month),
        ("0 0 * * MONDAY", Field::DayOfWeek),
        ("0 0 1, * *", Field::DayOfMonth),
        ("0 0 * * 1/", Field::DayOfWeek),
        ("0 */x * * *", Field::Hour),
        ("0 0 -1 * *", Field::DayOfMonth),
        ("@fortnightly", Field::Schedule),
        ("0 0 * * 1-2-3", Field::DayOfWeek),
        ("0 ０ * * *", Field::Hour),
    ] {
        let e = only_error(expr);
        assert_eq!((e.code, e.field), (ErrorCode::Syntax, field), "{expr}");
    }
}

/// Asserts that `expr` has exactly one error, with this code, field and span.
fn assert_only_error(expr: &str, expected: (ErrorCode, Field, (usize, usize))) {
    let e = only_error(expr);
    assert_eq!((e.code, e.field, span(&e)), expected, "{expr}");
}

#[test]
fn values_outside_their_field_are_out_of_range_on_the_value() {
    for (expr, field, sp) in [
        ("60 * * * *", Field::Minute, (0, 2)),
        ("0 24 * * *", Field::Hour, (2, 4)),
        ("0 0 0 * *", Field::DayOfMonth, (4, 5)),
        ("0 0 32 * *", Field::DayOfMonth, (4, 6)),
        ("0 0 * 13 *", Field::Month, (6, 8)),
        ("0 0 * 0 *", Field::Month, (6, 7)),
        ("0 0 * * 8", Field::DayOfWeek, (8, 9)),
        ("0 1-99 * * *", Field::Hour, (4, 6)),
        ("0 99999999999999999999999 * * *", Field::Hour, (2, 25)),
    ] {
        assert_only_error(expr, (ErrorCode::OutOfRange, field, sp));
    }
}

#[test]
fn backwards_ranges_are_invalid_ranges_spanning_the_whole_range() {
    assert_only_error(
        "0 5-3 * * *",
        (ErrorCode::InvalidRange, Field::Hour, (2, 5)),
    );
    assert_only_error(
        "0 0 * * FRI-MON",
        (ErrorCode::InvalidRange, Field::DayOfWeek, (8, 15)),
    );
}

#[test]
fn zero_steps_are_invalid_steps() {
    let e = only_error("0 */0 * * *");
    assert_eq!((e.code, e.field), (ErrorCode::InvalidStep, Field::Hour));
    assert_eq!(span(&e), (2, 5));
}

#[test]
fn other_dialects_features_are_unsupported() {
    for (expr, field) in [
        ("0 0 L * *", Field::DayOfMonth),
        ("0 0 15W * *", Field::DayOfMonth),
        ("0 0 LW * *", Field::DayOfMonth),
        ("0 0 * * 5L", Field::DayOfWeek),
        ("0 0 * * FRI#2", Field::DayOfWeek),
        ("0 0 * * 5#3", Field::DayOfWeek),
        ("@reboot", Field::Schedule),
        ("@every 1h", Field::Schedule),
    ] {
        let e = only_error(expr);
        assert_eq!((e.code, e.field), (ErrorCode::Unsupported, field), "{expr}");
    }
    // Names that contain L or W are names, not features.
    assert!(Schedule::parse("0 0 * JUL WED").is_ok());
}

#[test]
fn more_than_one_run_an_hour_is_too_frequent_on_the_minute_field() {
    for expr in ["*/30 * * * *", "0,30 2 * * *", "* 5 * * *", "0,59 * * * *"] {
        let minute_len = expr.split(' ').next().unwrap().len();
        assert_only_error(
            expr,
            (ErrorCode::TooFrequent, Field::Minute, (0, minute_len)),
        );
        let e = only_error(expr);
        assert!(e.message.contains("at most once an hour"), "{}", e.message);
    }
    // The minute field is marked wherever it starts.
    let e = only_error("  */30 * * * *");
    assert_eq!(span(&e), (2, 6));
}

#[test]
fn a_schedule_without_any_firing_never_runs() {
    for expr in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 FEB *"] {
        assert_only_error(
            expr,
            (ErrorCode::NeverRuns, Field::Schedule, (0, expr.len())),
        );
    }
    // The sentence agrees with its months and offers the missing days as alternatives.
    let message = |expr: &str| only_error(expr).message;
    assert!(message("0 0 30,31 2 *").contains(": February has no day 30 or 31;"));
    assert!(message("0 0 31 4,6,9,11 *")
        .contains(": April, June, September and November have no day 31;"));
    // One month of the list has the day: it runs.
    assert!(Schedule::parse("0 0 31 4,5 *").is_ok());
    // With a day of week too, the "either" rule always finds a day.
    assert!(Schedule::parse("0 0 30 2 1").is_ok());
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let errors = Schedule::parse("60 24 0 13 8").unwrap_err();
    assert_eq!(
        errors.iter().map(|e| e.field).collect::<Vec<_>>(),
        [
            Field::Minute,
            Field::Hour,
            Field::DayOfMonth,
            Field::Month,
            Field::DayOfWeek
        ]
    );
    let errors = Schedule::parse("*/15 0 31 2 *").unwrap_err();
    assert_eq!(
        errors.codes(),
        [ErrorCode::TooFrequent, ErrorCode::NeverRuns]
    );
    let errors = Schedule::parse("0 5-3,25 * * *").unwrap_err();
    assert_eq!(
        errors.codes(),
        [ErrorCode::InvalidRange, ErrorCode::OutOfRange]
    );
    // A minute field of several values is too frequent whatever another field's error: fixing
    // the hour must not reveal a second problem.
    let errors = Schedule::parse("*/30 25 * * *").unwrap_err();
    assert_eq!(
        errors.codes(),
        [ErrorCode::OutOfRange, ErrorCode::TooFrequent]
    );
    let too_frequent = &errors.0[1];
    assert_eq!(
        (too_frequent.field, span(too_frequent)),
        (Field::Minute, (0, 4))
    );
    assert!(
        too_frequent
            .message
            .contains("2 times an hour (at minutes 0, 30), 30 minutes apart"),
        "{}",
        too_frequent.message
    );
    let errors = Schedule::parse("0,10 0 30 2 MONX").unwrap_err();
    assert_eq!(errors.codes(), [ErrorCode::Syntax, ErrorCode::TooFrequent]);
    // A minute field that failed says nothing of frequency.
    let errors = Schedule::parse("0,60 25 * * *").unwrap_err();
    assert_eq!(
        errors.codes(),
        [ErrorCode::OutOfRange, ErrorCode::OutOfRange]
    );
}

#[test]
fn a_star_is_a_whole_field_not_an_item_of_a_list() {
    for (expr, field, item) in [
        ("0 0 1,* * MON", Field::DayOfMonth, (6, 7)),
        ("0 0 1,? * *", Field::DayOfMonth, (6, 7)),
        ("0 *,3 * * *", Field::Hour, (2, 3)),
        ("0 0 * * ?,MON", Field::DayOfWeek, (8, 9)),
    ] {
        let e = only_error(expr);
        assert_eq!(
            (e.code, e.field, span(&e)),
            (ErrorCode::Syntax, field, item),
            "{expr}"
        );
        assert!(e.message.contains("write `*` alone"), "{}", e.message);
    }
    // A step of `*` is an item like any other.
    assert!(Schedule::parse("0 */6,1 * * *").is_ok());
    assert!(Schedule::parse("0 0 ?/10,2 * *").is_ok());
}

#[test]
fn an_unknown_macro_that_begins_with_every_is_a_syntax_error_not_every() {
    for expr in ["@everyday", "@everyhour", "@every_day"] {
        let e = only_error(expr);
        assert_eq!(
            (e.code, e.field),
            (ErrorCode::Syntax, Field::Schedule),
            "{expr}"
        );
        assert!(e.message.contains("@daily"), "{}", e.message);
    }
    for expr in ["@every5m", "@every 1h", "@EVERY"] {
        let e = only_error(expr);
        assert_eq!(e.code, ErrorCode::Unsupported, "{expr}");
    }
}

#[test]
fn spans_count_characters_not_bytes() {
    // "é" is two bytes but one character.
    let e = only_error("0 0 * é *");
    assert_eq!(span(&e), (6, 7));
    let e = only_error("0 0 * * 1 é");
    assert_eq!(e.code, ErrorCode::FieldCount);
    assert_eq!(span(&e), (0, 11));
}

#[test]
fn every_message_says_what_to_write_instead() {
    for expr in [
        "",
        "0 0 * * * *",
        "0 1-* * * *",
        "60 * * * *",
        "0 5-3 * * *",
        "0 */0 * * *",
        "0 0 L * *",
        "*/30 * * * *",
        "0 0 30 2 *",
        "@nope",
    ] {
        for e in Schedule::parse(expr).unwrap_err() {
            assert!(
                e.message.contains("write") || e.message.contains("choose"),
                "{expr}: {}",
                e.message
            );
        }
    }
}

/// The day gap as it was first found: every firing day from 2001 to 2032 in turn. The oracle
/// of the summary by kind of year that replaced it.
fn min_day_gap_by_scan(s: &Schedule) -> Option<u32> {
    let mut best: Option<u32> = None;
    let mut previous: Option<i64> = None;
    for year in 2001..2033 {
        for month in 1..=12u32 {
            if u32::from(s.months) & (1 << month) == 0 {
                continue;
            }
            let mut days = s.days_in(year, month);
            let base = civil::days_from_civil(year, month, 1) - 1;
            while days != 0 {
                let d = days.trailing_zeros();
                days &= days - 1;
                let n = base + i64::from(d);
                if let Some(p) = previous {
                    let gap = (n - p) as u32;
                    best = Some(best.map_or(gap, |b| b.min(gap)));
                }
                previous = Some(n);
            }
        }
    }
    best
}

fn day_list(values: &[u32]) -> String {
    if values.is_empty() {
        "*".to_owned()
    } else {
        values
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    #[test]
    fn the_day_gap_by_kind_of_year_is_the_scans(
        doms in proptest::collection::btree_set(1u32..=31, 0..5),
        months in proptest::collection::btree_set(1u32..=12, 0..4),
        dows in proptest::collection::btree_set(0u32..=6, 0..3),
    ) {
        let doms: Vec<u32> = doms.into_iter().collect();
        let months: Vec<u32> = months.into_iter().collect();
        let dows: Vec<u32> = dows.into_iter().collect();
        let expr = format!("0 0 {} {} {}", day_list(&doms), day_list(&months), day_list(&dows));
        if let Ok(s) = Schedule::parse(&expr) {
            proptest::prop_assert_eq!(s.min_day_gap(), min_day_gap_by_scan(&s), "{}", expr);
        }
    }
}

#[test]
fn the_day_gap_of_hard_calendars_is_the_scans() {
    for expr in [
        "0 0 29 2 *",
        "0 0 29 2 MON",
        "0 0 31 * *",
        "0 0 30,31 1,2,3 *",
        "0 0 1,15 * *",
        "0 0 28 2 *",
        "0 0 29 2,3 *",
        "0 0 31 12 *",
        "0 0 1 1 SUN",
        "0 0 13 * FRI",
        "0 0 1 */3 *",
    ] {
        let s = Schedule::parse(expr).unwrap();
        assert_eq!(s.min_day_gap(), min_day_gap_by_scan(&s), "{expr}");
    }
}

/// The weekday days of a month as first computed: every day of the month in turn. The
/// oracle of the rotated week that replaced it.
fn weekday_days_by_scan(days_of_week: u8, first: u32) -> u32 {
    let mut mask = 0;
    for day in 1..=31u32 {
        if days_of_week & (1 << ((first + day - 1) % 7)) != 0 {
            mask |= 1 << day;
        }
    }
    mask
}

#[test]
fn weekday_days_are_the_scans_for_every_week_and_first_day() {
    for days_of_week in 0..=0x7fu8 {
        for first in 0..7 {
            assert_eq!(
                weekday_days(days_of_week, first),
                weekday_days_by_scan(days_of_week, first),
                "{days_of_week:#09b} from weekday {first}"
            );
        }
    }
}

/// The next-run search as it was first written: one loop over a calendar minute whose units
/// carry over like an odometer's, consulting the calendar at every turn. The oracle of the
/// search by month that replaced it.
fn first_at_or_after_by_odometer(s: &Schedule, mut c: CivilMinute) -> Option<CivilMinute> {
    let month_start = |year: i32, month: u32| CivilMinute {
        year,
        month,
        day: 1,
        hour: 0,
        minute: 0,
    };
    let day_start = |c: CivilMinute, day: u32| CivilMinute {
        day,
        hour: 0,
        minute: 0,
        ..c
    };
    let hour_start = |c: CivilMinute, hour: u32| CivilMinute {
        hour,
        minute: 0,
        ..c
    };
    let limit = c.year.saturating_add(401);
    loop {
        if c.year > limit {
            return None;
        }
        if c.month > 12 || u32::from(s.months) & (1 << c.month) == 0 {
            c = match next_bit(u64::from(s.months), c.month.min(13)) {
                Some(m) if m <= 12 => month_start(c.year, m),
                _ => month_start(c.year + 1, next_bit(u64::from(s.months), 1)?),
            };
        }
        let Some(d) = next_bit(u64::from(s.days_in(c.year, c.month)), c.day) else {
            c = month_start(c.year, c.month + 1);
            continue;
        };
        if d != c.day {
            c = day_start(c, d);
        }
        let Some(h) = next_bit(u64::from(s.hours), c.hour) else {
            c = day_start(c, c.day + 1);
            continue;
        };
        if h != c.hour {
            c = hour_start(c, h);
        }
        let Some(m) = next_bit(s.minutes, c.minute) else {
            c = hour_start(c, c.hour + 1);
            continue;
        };
        return Some(CivilMinute { minute: m, ..c });
    }
}

/// The first `count` firings strictly after `after`, by the odometer.
fn upcoming_by_odometer(s: &Schedule, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut c = CivilMinute::from_epoch_minutes(after.timestamp().div_euclid(60) + 1);
    while out.len() < count {
        let Some(found) = first_at_or_after_by_odometer(s, c) else {
            break;
        };
        let Some(instant) = found.to_datetime() else {
            break;
        };
        out.push(instant);
        c = CivilMinute {
            minute: found.minute + 1,
            ..found
        };
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

    /// Sparse and dense value sets in every field, from any minute of four centuries (and
    /// the first and last seconds of a minute): the search by month lists exactly the
    /// odometer's runs.
    #[test]
    fn next_runs_by_month_are_the_odometers(
        minute in 0u32..60,
        hours in proptest::collection::btree_set(0u32..24, 0..6),
        doms in proptest::collection::btree_set(1u32..=31, 0..6),
        months in proptest::collection::btree_set(1u32..=12, 0..5),
        dows in proptest::collection::btree_set(0u32..=6, 0..4),
        // 146,097 days: the 400 years from 1970.
        after in 0i64..146_097 * 86_400,
        second in proptest::prop_oneof![proptest::strategy::Just(0i64), proptest::strategy::Just(59i64), 0i64..60],
    ) {
        let hours: Vec<u32> = hours.into_iter().collect();
        let doms: Vec<u32> = doms.into_iter().collect();
        let months: Vec<u32> = months.into_iter().collect();
        let dows: Vec<u32> = dows.into_iter().collect();
        let expr = format!(
            "{minute} {} {} {} {}",
            day_list(&hours),
            day_list(&doms),
            day_list(&months),
            day_list(&dows)
        );
        if let Ok(s) = Schedule::parse(&expr) {
            // On any second of a minute: the first, the last or any other.
            let after = DateTime::from_timestamp(after / 60 * 60 + second, 0).unwrap();
            let ours: Vec<_> = s.upcoming(after).take(60).collect();
            proptest::prop_assert_eq!(ours, upcoming_by_odometer(&s, after, 60), "{} after {}", expr, after);
        }
    }
}

#[test]
fn next_runs_by_month_are_the_odometers_across_hard_calendars() {
    let starts = [
        at(2026, 1, 1, 0, 0),
        at(2024, 2, 28, 23, 59),
        at(2024, 2, 29, 0, 0),
        at(2099, 12, 31, 23, 59),
        at(2100, 2, 28, 12, 0),
        at(1999, 12, 31, 23, 59),
        at(2026, 12, 31, 23, 0),
        at(2026, 6, 30, 23, 59),
    ];
    for expr in [
        "0 0 29 2 *",
        "0 0 29 2 MON",
        "0 0 31 * *",
        "0 0 30,31 1,2,3 *",
        "59 23 31 12 *",
        "0 0 1 1 SUN",
        "0 0 13 * FRI",
        "0 0 1 */3 *",
        "0 */1 * * *",
        "30 2 * * *",
        "0 12 * * MON-FRI",
        "15 */6 1,15 * *",
        "59 23 * * SAT",
        "0 0 * * *",
        "0 0-23/7 29-31 * SUN",
        "@hourly",
        "@yearly",
    ] {
        let s = Schedule::parse(expr).unwrap();
        for after in starts {
            for second in [0, 1, 59] {
                let after = after + chrono::Duration::seconds(second);
                let ours: Vec<_> = s.upcoming(after).take(500).collect();
                assert_eq!(
                    ours,
                    upcoming_by_odometer(&s, after, 500),
                    "{expr} after {after}"
                );
            }
        }
    }
}

#[test]
fn the_search_ends_at_the_last_representable_instant() {
    // chrono ends in year 262143: both searches stop there rather than run on.
    let s = Schedule::parse("0 0 1 1 *").unwrap();
    let after = DateTime::<Utc>::MAX_UTC - chrono::Duration::days(800);
    let ours: Vec<_> = s.upcoming(after).take(5).collect();
    assert_eq!(ours, upcoming_by_odometer(&s, after, 5));
    assert!(ours.len() < 5, "{ours:?}");
}
