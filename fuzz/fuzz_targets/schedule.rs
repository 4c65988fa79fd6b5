//! Any UTF-8 text as a schedule: parsing never panics, every error can be underlined, and a
//! schedule that parses keeps every promise of SPEC §2.3 from several instants.
#![no_main]

use backup_core::schedule::MIN_INTERVAL_MINUTES;
use backup_core::{Field, Schedule};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;

/// 1970, 2026-11-27 06:00, the last second of 2099, 9999-12-31 23:59:59 (the latest instant
/// RFC 3339 can write), and the ends of what chrono represents.
const AFTER: [i64; 6] = [
    0,
    1_795_759_200,
    4_102_444_799,
    253_402_300_799,
    i64::MIN,
    i64::MAX,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let chars = text.chars().count();
    match Schedule::parse(text) {
        Err(errors) => {
            assert!(!errors.is_empty(), "`{text}`: an error without problems");
            for e in errors.iter() {
                assert!(
                    e.start <= e.end && e.end <= chars,
                    "`{text}`: span {}..{} outside 0..{chars}",
                    e.start,
                    e.end
                );
                assert!(!e.message.trim().is_empty(), "`{text}`: empty message");
                if e.field == Field::Schedule {
                    assert_eq!((e.start, e.end), (0, chars), "`{text}`: {e}");
                }
            }
        }
        Ok(s) => {
            assert_eq!(s.as_str(), text);
            assert!(s.min_interval_minutes() >= MIN_INTERVAL_MINUTES, "`{text}`");
            assert!(!s.describe().is_empty(), "`{text}`");
            let rules = s.eventbridge();
            assert!((1..=2).contains(&rules.len()), "`{text}`: {rules:?}");
            for rule in &rules {
                assert!(
                    rule.starts_with("cron(")
                        && rule.ends_with(" *)")
                        && rule.chars().count() <= 256,
                    "`{text}`: {rule}"
                );
            }
            for seconds in AFTER {
                let Some(after) = clamp(seconds) else {
                    continue;
                };
                let runs = s.next_runs(after, 5);
                // Within the years people write, a valid schedule always fires again.
                if seconds < 253_402_300_799 {
                    assert_eq!(runs.len(), 5, "`{text}` after {after}: {runs:?}");
                }
                let mut previous = after;
                for (i, run) in runs.iter().enumerate() {
                    assert!(*run > previous, "`{text}` after {after}: {runs:?}");
                    if i > 0 {
                        assert!(
                            (*run - previous).num_minutes() >= i64::from(MIN_INTERVAL_MINUTES),
                            "`{text}` after {after}: {runs:?}"
                        );
                    }
                    assert!(s.fires_at(*run), "`{text}`: {run} is not a firing");
                    previous = *run;
                }
            }
        }
    }
});

/// The instant `seconds` after 1970, moved into the range chrono represents.
fn clamp(seconds: i64) -> Option<DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    DateTime::from_timestamp(seconds.clamp(min, max), 0)
}
