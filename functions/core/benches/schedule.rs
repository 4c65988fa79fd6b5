//! Schedule benchmarks, ours against `croner` and `cron` on the same expressions and from the
//! same instant: `scripts/bench-core.sh` runs them and prints the medians and ratios.
//!
//! - `next_100`: the next 100 runs after 2026-01-01T00:00:00Z, from an already parsed schedule.
//! - `parse`: text to a schedule, with whatever validation each library does.
//! - `check`: what the form does on each keystroke with ours: parse and validate, describe,
//!   translate to EventBridge and compute the minimum interval.
//!
//! `cron` needs a seconds field, so it gets `0 ` in front of each expression; none of these
//! expressions writes a day of week as a number, so its Sunday = 1 numbering does not matter
//! (names mean the same in all three). Before timing, each expression's 100 runs are checked
//! to be the same in all three libraries.

use std::hint::black_box;
use std::str::FromStr;
use std::time::Duration;

use backup_core::Schedule;
use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use croner::parser::{CronParser, Seconds};

/// Typical backup schedules: hourly, daily, weekdays, four times a day on two days a month,
/// quarterly.
const EXPRESSIONS: [&str; 5] = [
    "0 */1 * * *",
    "30 2 * * *",
    "0 12 * * MON-FRI",
    "15 */6 1,15 * *",
    "0 0 1 */3 *",
];

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn croner_parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .sloppy_ranges(true)
        .build()
}

fn with_seconds(expr: &str) -> String {
    format!("0 {expr}")
}

/// Folds runs into one number so that no library's work can be optimised away.
fn digest(runs: impl Iterator<Item = DateTime<Utc>>) -> i64 {
    runs.fold(0, |acc, t| acc.wrapping_mul(31) ^ t.timestamp())
}

fn next_100(c: &mut Criterion) {
    let mut group = c.benchmark_group("next_100");
    for expr in EXPRESSIONS {
        let ours = Schedule::parse(expr).unwrap();
        let croner = croner_parser().parse(expr).unwrap();
        let cron = cron::Schedule::from_str(&with_seconds(expr)).unwrap();

        let expected: Vec<_> = ours.upcoming(start()).take(100).collect();
        assert_eq!(
            croner.iter_after(start()).take(100).collect::<Vec<_>>(),
            expected,
            "croner disagrees on `{expr}`"
        );
        assert_eq!(
            cron.after(&start()).take(100).collect::<Vec<_>>(),
            expected,
            "cron disagrees on `{expr}`"
        );

        group.bench_with_input(BenchmarkId::new("ours", expr), &ours, |b, s| {
            b.iter(|| digest(s.upcoming(black_box(start())).take(100)))
        });
        group.bench_with_input(BenchmarkId::new("croner", expr), &croner, |b, s| {
            b.iter(|| digest(s.iter_after(black_box(start())).take(100)))
        });
        group.bench_with_input(BenchmarkId::new("cron", expr), &cron, |b, s| {
            b.iter(|| digest(s.after(&black_box(start())).take(100)))
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let croner = croner_parser();
    for expr in EXPRESSIONS {
        group.bench_with_input(BenchmarkId::new("ours", expr), expr, |b, e| {
            b.iter(|| Schedule::parse(black_box(e)).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("croner", expr), expr, |b, e| {
            b.iter(|| croner.parse(black_box(e)).unwrap())
        });
        let six = with_seconds(expr);
        group.bench_with_input(BenchmarkId::new("cron", expr), six.as_str(), |b, e| {
            b.iter(|| cron::Schedule::from_str(black_box(e)).unwrap())
        });
    }
    group.finish();
}

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    for expr in EXPRESSIONS {
        group.bench_with_input(BenchmarkId::new("ours", expr), expr, |b, e| {
            b.iter(|| {
                let s = Schedule::parse(black_box(e)).unwrap();
                (s.describe(), s.eventbridge(), s.min_interval_minutes())
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // Short runs: 35 benchmarks on a shared two-core machine. The medians are stable to a few
    // per cent at this length; pass `--measurement-time` to go longer.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = next_100, parse, check
}
criterion_main!(benches);
