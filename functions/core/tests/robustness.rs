//! No input makes the core panic (SPEC §11), and every error can be underlined (SPEC §2.2, §3).
//!
//! GIVEN any text (long, non-ASCII, control characters, or a soup of cron-ish tokens), WHEN it
//! is parsed as a schedule or a description template, THEN parsing returns, twice the same;
//! an error lists at least one problem, each with a span inside the input and a message; and a
//! schedule that parses answers every question (next runs, description, EventBridge rules,
//! minimum interval) without panicking and fires at most once an hour.

mod common;

use backup_core::schedule::{MAX_SCHEDULE_CHARS, MIN_INTERVAL_MINUTES};
use backup_core::template::{RenderContext, Template, MAX_TEMPLATE_CHARS};
use backup_core::{ErrorCode, Field, FieldErrors, Schedule};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

/// Any characters, control and non-ASCII ones included.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect())
}

/// Text made of the tokens parsers trip on.
fn token_soup(tokens: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 0..max).prop_map(|t| t.concat())
}

const SCHEDULE_TOKENS: &[&str] = &[
    "*",
    "/",
    ",",
    "-",
    "?",
    "L",
    "W",
    "#",
    "@",
    " ",
    " ",
    " ",
    "\t",
    "\n",
    "\u{3000}",
    "\u{0}",
    "0",
    "1",
    "5",
    "7",
    "12",
    "23",
    "24",
    "29",
    "31",
    "59",
    "60",
    "99999999999999999999",
    "MON",
    "sun",
    "Sat",
    "JAN",
    "dec",
    "Feb",
    "LW",
    "L-3",
    "5#2",
    "15W",
    "@daily",
    "@weekly",
    "@every",
    "@reboot",
    "@yearly",
    "é",
    "٣",
    "𝟘",
    "ⅻ",
    "*/",
    "/0",
    "-1",
];

/// Five fields of cron-ish tokens: the shapes that get furthest into the parser.
fn five_fields() -> impl Strategy<Value = String> {
    prop::collection::vec(token_soup(SCHEDULE_TOKENS, 6), 5).prop_map(|f| {
        f.iter()
            .map(|f| f.replace(' ', ""))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn schedule_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any_text(64),
        1 => any_text(3000),
        4 => token_soup(SCHEDULE_TOKENS, 40),
        1 => token_soup(SCHEDULE_TOKENS, 1200),
        6 => five_fields(),
        2 => common::expr().prop_map(|e| e.render()),
    ]
}

/// Any instant chrono can represent, with the common range weighted up.
fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    prop_oneof![
        3 => 0i64..7_000_000_000,
        1 => min..=max,
        1 => prop::sample::select(vec![min, max, -1, 0]),
    ]
    .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

/// SPEC §2.2 / §3: at least one problem, each with a message and a span over the input.
fn check_errors(text: &str, errors: &FieldErrors) {
    let chars = text.chars().count();
    assert!(!errors.is_empty(), "{text:?}: an error without problems");
    for e in errors.iter() {
        assert!(
            e.start <= e.end && e.end <= chars,
            "{text:?}: {e} has a span outside 0..{chars}"
        );
        assert!(
            !e.message.trim().is_empty(),
            "{text:?}: {e:?} has no message"
        );
    }
}

/// The whole minute field, as characters: the first whitespace-separated token.
fn first_token(text: &str) -> (usize, usize) {
    let chars: Vec<char> = text.chars().collect();
    let start = chars.iter().position(|c| !c.is_whitespace()).unwrap_or(0);
    let len = chars[start..]
        .iter()
        .take_while(|c| !c.is_whitespace())
        .count();
    (start, start + len)
}

fn check_schedule(text: &str, after: DateTime<Utc>) {
    let first = Schedule::parse(text);
    assert_eq!(
        first,
        Schedule::parse(text),
        "{text:?}: parsing is not deterministic"
    );
    let chars = text.chars().count();
    match first {
        Err(errors) => {
            check_errors(text, &errors);
            for e in errors.iter() {
                match (e.field, e.code) {
                    // Errors about the whole schedule mark the whole input.
                    (Field::Schedule, _) => {
                        assert_eq!((e.start, e.end), (0, chars), "{text:?}: {e}")
                    }
                    // Too frequent marks the whole minute field.
                    (Field::Minute, ErrorCode::TooFrequent) => {
                        assert_eq!((e.start, e.end), first_token(text), "{text:?}: {e}")
                    }
                    (
                        Field::Minute
                        | Field::Hour
                        | Field::DayOfMonth
                        | Field::Month
                        | Field::DayOfWeek,
                        _,
                    ) => {
                        assert!(e.end > e.start, "{text:?}: {e} marks nothing")
                    }
                    (field, _) => panic!("{text:?}: a schedule error about {field}"),
                }
            }
            if chars > MAX_SCHEDULE_CHARS {
                assert_eq!(errors.codes(), [ErrorCode::TooLong], "{text:?}");
            }
        }
        Ok(s) => {
            assert_eq!(s.as_str(), text);
            assert!(s.min_interval_minutes() >= MIN_INTERVAL_MINUTES, "{text:?}");
            assert!(!s.describe().trim().is_empty(), "{text:?}");
            let rules = s.eventbridge();
            assert!((1..=2).contains(&rules.len()), "{text:?}: {rules:?}");
            for rule in &rules {
                assert!(
                    rule.starts_with("cron(") && rule.len() <= 256,
                    "{text:?}: {rule}"
                );
            }
            let runs = s.next_runs(after, 5);
            // Every valid schedule fires within eight years, wherever chrono can count them.
            // (Five runs take at most 40 years: 29 February skips 2100.)
            if after.timestamp() < DateTime::<Utc>::MAX_UTC.timestamp() - 50 * 366 * 86_400 {
                assert_eq!(runs.len(), 5, "{text:?} after {after}: {runs:?}");
            }
            let mut previous = after;
            for (i, run) in runs.iter().enumerate() {
                assert!(*run > previous, "{text:?} after {after}: {runs:?}");
                assert!(s.fires_at(*run), "{text:?}: {run} is not a firing");
                if i > 0 {
                    assert!(
                        *run - previous >= Duration::minutes(60),
                        "{text:?}: {runs:?}"
                    );
                }
                previous = *run;
            }
        }
    }
}

fn context(index: u64, datetime: DateTime<Utc>, description: String) -> RenderContext {
    RenderContext {
        cluster_id: "c196ogto0aeqohe3ommq".into(),
        cluster_description: description,
        cluster_provider: "aws-ebs".into(),
        cluster_region: "eu-west-1".into(),
        index,
        datetime,
    }
}

const TEMPLATE_TOKENS: &[&str] = &[
    "{",
    "}",
    "{{",
    "}}",
    ":",
    " ",
    "cluster",
    "CLUSTER",
    "index",
    "datetime",
    "DateTime",
    "description",
    "id",
    "provider",
    "region",
    "decimal",
    "hex",
    "utc",
    "rfc822",
    "RFC3339",
    "json",
    "unix",
    "nope",
    "é",
    "\u{0}",
    "\n",
    "𝟘",
    "{cluster}",
    "{index:hex}",
    "{datetime:json}",
];

fn template_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any_text(64),
        1 => any_text(1000),
        5 => token_soup(TEMPLATE_TOKENS, 40),
        1 => token_soup(TEMPLATE_TOKENS, 200),
    ]
}

/// The instants `template render --datetime` can be given: RFC 3339 years 0000 to 9999.
fn rfc3339_instant() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_167_219_200i64..=253_402_300_799, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn no_schedule_text_panics(text in schedule_text(), after in any_instant()) {
        check_schedule(&text, after);
    }

    #[test]
    fn no_template_text_panics(
        text in template_text(),
        index in any::<u64>(),
        datetime in rfc3339_instant(),
        description in any_text(40),
    ) {
        let first = Template::parse(&text);
        prop_assert_eq!(&first, &Template::parse(&text), "{:?}: parsing is not deterministic", text);
        match first {
            Err(errors) => {
                check_errors(&text, &errors);
                for e in errors.iter() {
                    prop_assert_eq!(e.field, Field::Description);
                }
                if text.chars().count() > MAX_TEMPLATE_CHARS {
                    prop_assert!(errors.codes().contains(&ErrorCode::TooLong), "{:?}", text);
                }
            }
            Ok(t) => {
                prop_assert_eq!(t.as_str(), text.as_str());
                let rendered = t.render(&context(index, datetime, description.clone()));
                if !text.contains(['{', '}']) {
                    prop_assert_eq!(rendered, text, "plain text renders as itself");
                }
            }
        }
    }
}

/// Inputs that once looked dangerous, kept as fixed cases.
#[test]
fn pinned_inputs_do_not_panic() {
    let far = [
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        DateTime::from_timestamp(0, 0).unwrap(),
    ];
    for text in [
        "",
        " ",
        "\u{0}",
        "@",
        "@every 5m",
        "* * * * * * * *",
        "0 0 * * 7/2",
        "0 0 31 2 *",
        "0 0 29 2 *",
        "99999999999999999999 * * * *",
        "0 0 1-99999999999999999999 * *",
        "0 0 */99999999999999999999 * *",
        "0 0 ,,, * *",
        "0 0 1-/ * *",
        "0 0 --- * *",
        "0 0 ?/? * ?",
        "0 0 L-3 * 5L",
        "0 0 * * 5#9",
        "٣ ٣ ٣ ٣ ٣",
        "0\u{3000}0\u{3000}*\u{3000}*\u{3000}*",
        &"0 ".repeat(600),
        &"*".repeat(MAX_SCHEDULE_CHARS + 1),
    ] {
        for after in far {
            check_schedule(text, after);
        }
    }
    let ctx = context(u64::MAX, DateTime::<Utc>::MAX_UTC, "{".into());
    for text in [
        "{",
        "}",
        "{{{",
        "}}}",
        "{:}",
        "{cluster:}",
        "{datetime:json}",
        "{index:hex}",
    ] {
        if let Ok(t) = Template::parse(text) {
            let _ = t.render(&ctx);
        }
    }
}

/// Found by `no_schedule_text_panics`: a range with a missing side (`1-`, `-1`) and a step
/// with nothing before it (`/2`) were marked with empty spans, which a form cannot underline,
/// and `/2` was called a range; a lone `,` was reported twice.
#[test]
fn every_schedule_error_marks_at_least_one_character() {
    for (text, expected) in [
        ("0 0 1- * *", vec![(4, 6)]),
        ("0 0 -1 * *", vec![(4, 6)]),
        ("0 0 --- * *", vec![(4, 7), (5, 7)]),
        ("0 0 /2 * *", vec![(4, 6)]),
        ("0 * * /0 *", vec![(6, 8), (6, 8)]),
        ("0 0 , * *", vec![(4, 5)]),
    ] {
        let errors = Schedule::parse(text).expect_err(text);
        let spans: Vec<(usize, usize)> = errors.iter().map(|e| (e.start, e.end)).collect();
        assert_eq!(spans, expected, "{text}: {errors}");
        assert!(errors
            .iter()
            .all(|e| e.code == ErrorCode::Syntax || e.code == ErrorCode::InvalidStep));
    }
    let errors = Schedule::parse("0 0 /2 * *").unwrap_err();
    assert!(errors.0[0].message.contains("`*/2`"), "{errors}");
    assert!(
        !errors.0[0].message.contains("both sides of `-`"),
        "{errors}"
    );
}
