//! What a job's schedule shows (its next runs and EventBridge expressions), computed once
//! per schedule text and kept until the first of those runs.
//!
//! `GET …/jobs` shows every job's next runs: without this, each request parsed, validated,
//! searched and formatted every job's schedule again, most of the list's cost. The answer
//! for a text depends only on the text and on which minute "now" is, and stays the same
//! until the first run it lists has come, so one process-wide memo keyed by the text is
//! exact, and a change to a job's schedule simply looks up another text. Bounded: past
//! [`MAX_ENTRIES`] texts it starts afresh.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use backup_core::civil::format_rfc3339;
use backup_core::Schedule;
use chrono::{DateTime, Utc};

/// The most schedule texts kept; a list of 1,000 jobs with 1,000 different schedules fits.
pub const MAX_ENTRIES: usize = 10_000;

/// A schedule's view: its next `count` runs after some instant and its translations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleView {
    pub next_runs: Vec<String>,
    pub eventbridge: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    count: usize,
    /// The first run `view` lists: until then the view holds for any instant after the one
    /// it was computed for.
    until: Option<DateTime<Utc>>,
    computed_at: DateTime<Utc>,
    view: ScheduleView,
}

fn memo() -> &'static Mutex<HashMap<String, Entry>> {
    static MEMO: OnceLock<Mutex<HashMap<String, Entry>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The next `count` runs after `now` and the EventBridge expressions of `schedule`; `None`
/// when the text does not parse (a record changed behind the engine's back).
pub fn view(schedule: &str, now: DateTime<Utc>, count: usize) -> Option<ScheduleView> {
    if let Ok(memo) = memo().lock() {
        if let Some(entry) = memo.get(schedule) {
            let fresh = entry.count == count
                && now >= entry.computed_at
                && entry.until.is_none_or(|until| now < until);
            if fresh {
                return Some(entry.view.clone());
            }
        }
    }
    let parsed = Schedule::parse(schedule).ok()?;
    let runs = parsed.next_runs(now, count);
    let view = ScheduleView {
        next_runs: runs.iter().copied().map(format_rfc3339).collect(),
        eventbridge: parsed.eventbridge(),
    };
    // A poisoned lock only loses the memo, never the answer.
    if let Ok(mut memo) = memo().lock() {
        if memo.len() >= MAX_ENTRIES && !memo.contains_key(schedule) {
            memo.clear();
        }
        memo.insert(
            schedule.to_owned(),
            Entry {
                count,
                until: runs.first().copied(),
                computed_at: now,
                view: view.clone(),
            },
        );
    }
    Some(view)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, h, mi, s).unwrap()
    }

    fn uncached(schedule: &str, now: DateTime<Utc>, count: usize) -> ScheduleView {
        let parsed = Schedule::parse(schedule).unwrap();
        ScheduleView {
            next_runs: parsed
                .next_runs(now, count)
                .into_iter()
                .map(format_rfc3339)
                .collect(),
            eventbridge: parsed.eventbridge(),
        }
    }

    #[test]
    fn a_view_is_the_uncached_one_at_every_second_around_its_runs() {
        // Every second from 11:58:00 to 12:02:59 across the 12:00 run, and back in time.
        let schedule = "0 */2 * * *";
        let mut instants: Vec<_> = (0..300)
            .map(|s| at(11, 58, 0) + chrono::Duration::seconds(s))
            .collect();
        instants.extend(instants.clone().into_iter().rev());
        for now in instants {
            assert_eq!(
                view(schedule, now, 5),
                Some(uncached(schedule, now, 5)),
                "{now}"
            );
        }
    }

    #[test]
    fn another_count_or_text_is_its_own_answer() {
        let now = at(6, 30, 0);
        assert_eq!(
            view("5 * * * *", now, 3),
            Some(uncached("5 * * * *", now, 3))
        );
        assert_eq!(
            view("5 * * * *", now, 5),
            Some(uncached("5 * * * *", now, 5))
        );
        assert_eq!(
            view("7 * * * *", now, 5),
            Some(uncached("7 * * * *", now, 5))
        );
        assert_eq!(view("not a schedule", now, 5), None);
    }
}
