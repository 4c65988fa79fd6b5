//! Random schedules of the SPEC §2.1 dialect, built as a small syntax tree so that each test
//! can render the same schedule for a different cron implementation, together with an
//! independent model of what each field means.
//!
//! The model is written from SPEC §2.1, not from `backup_core`'s parser: a field's values are
//! the union of its items' values, `*`/`?` stand for the whole range, `N/S` means `N-max/S`,
//! 7 in the day-of-week field is Sunday, and a day field is *unrestricted* only when its text
//! is exactly `*` or `?`.

#![allow(dead_code)] // Each test crate uses a different part of this module.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

pub const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
pub const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Minute,
        Kind::Hour,
        Kind::DayOfMonth,
        Kind::Month,
        Kind::DayOfWeek,
    ];

    pub fn min(self) -> u32 {
        match self {
            Kind::DayOfMonth | Kind::Month => 1,
            _ => 0,
        }
    }

    /// The largest value the syntax accepts (7 for the day of week, an alias of Sunday).
    pub fn max(self) -> u32 {
        match self {
            Kind::Minute => 59,
            Kind::Hour => 23,
            Kind::DayOfMonth => 31,
            Kind::Month => 12,
            Kind::DayOfWeek => 7,
        }
    }

    pub fn is_day(self) -> bool {
        matches!(self, Kind::DayOfMonth | Kind::DayOfWeek)
    }

    /// The name of value `n`, when the field has names for it.
    pub fn name(self, n: u32) -> Option<&'static str> {
        match self {
            Kind::Month => MONTH_NAMES.get(n.checked_sub(1)? as usize).copied(),
            Kind::DayOfWeek => DAY_NAMES.get(n as usize).copied(),
            _ => None,
        }
    }
}

/// One value as written: a number, or a name in upper or lower case.
#[derive(Debug, Clone, Copy)]
pub struct Value {
    pub n: u32,
    pub named: bool,
    pub lower: bool,
}

impl Value {
    pub fn render(self, kind: Kind) -> String {
        match kind.name(self.n) {
            Some(name) if self.named && self.lower => name.to_ascii_lowercase(),
            Some(name) if self.named => name.to_string(),
            _ => self.n.to_string(),
        }
    }

    /// Whether this value is written as a name.
    pub fn is_name(self, kind: Kind) -> bool {
        self.named && kind.name(self.n).is_some()
    }
}

/// One comma-separated item of SPEC §2.1.
#[derive(Debug, Clone)]
pub enum Item {
    Value(Value),
    Range(Value, Value),
    /// `*` written as one item of a list.
    Star,
    /// `?` written as one item of a list (day fields only).
    Question,
    StarStep(u32),
    QuestionStep(u32),
    RangeStep(Value, Value, u32),
    /// `N/S`, meaning `N-max/S`.
    ValueStep(Value, u32),
}

impl Item {
    pub fn render(&self, kind: Kind) -> String {
        match self {
            Item::Value(v) => v.render(kind),
            Item::Range(a, b) => format!("{}-{}", a.render(kind), b.render(kind)),
            Item::Star => "*".into(),
            Item::Question => "?".into(),
            Item::StarStep(s) => format!("*/{s}"),
            Item::QuestionStep(s) => format!("?/{s}"),
            Item::RangeStep(a, b, s) => format!("{}-{}/{s}", a.render(kind), b.render(kind)),
            Item::ValueStep(v, s) => format!("{}/{s}", v.render(kind)),
        }
    }

    /// The values this item stands for, before 7 is folded onto Sunday.
    pub fn raw_values(&self, kind: Kind) -> Vec<u32> {
        let stepped = |from: u32, to: u32, step: u32| -> Vec<u32> {
            (from..=to).step_by(step as usize).collect()
        };
        match *self {
            Item::Value(v) => vec![v.n],
            Item::Range(a, b) => stepped(a.n, b.n, 1),
            Item::Star | Item::Question => stepped(kind.min(), kind.max(), 1),
            Item::StarStep(s) | Item::QuestionStep(s) => stepped(kind.min(), kind.max(), s),
            Item::RangeStep(a, b, s) => stepped(a.n, b.n, s),
            Item::ValueStep(v, s) => stepped(v.n, kind.max(), s),
        }
    }

    /// The values this item stands for, with day-of-week 7 folded onto 0 (Sunday).
    pub fn values(&self, kind: Kind) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .raw_values(kind)
            .into_iter()
            .map(|v| {
                if kind == Kind::DayOfWeek && v == 7 {
                    0
                } else {
                    v
                }
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A whole field: `*`, `?` or a comma list.
#[derive(Debug, Clone)]
pub enum Field {
    Star,
    Question,
    List(Vec<Item>),
}

impl Field {
    pub fn render(&self, kind: Kind) -> String {
        match self {
            Field::Star => "*".into(),
            Field::Question => "?".into(),
            Field::List(items) => items
                .iter()
                .map(|i| i.render(kind))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// SPEC §2.1: a day field is unrestricted only when it is exactly `*` or `?`.
    pub fn restricted(&self, kind: Kind) -> bool {
        let text = self.render(kind);
        text != "*" && text != "?"
    }

    /// The field's values as a bit mask (bit n = value n), 7 folded onto Sunday.
    pub fn mask(&self, kind: Kind) -> u64 {
        let items: Vec<Item> = match self {
            Field::Star => vec![Item::Star],
            Field::Question => vec![Item::Question],
            Field::List(items) => items.clone(),
        };
        items
            .iter()
            .flat_map(|i| i.values(kind))
            .fold(0, |m, v| m | 1 << v)
    }

    pub fn items(&self) -> &[Item] {
        match self {
            Field::List(items) => items,
            _ => &[],
        }
    }
}

/// A five-field schedule with the whitespace between its fields.
#[derive(Debug, Clone)]
pub struct Expr {
    pub fields: [Field; 5],
    pub separators: [&'static str; 4],
}

impl Expr {
    pub fn field(&self, kind: Kind) -> &Field {
        &self.fields[Kind::ALL.iter().position(|k| *k == kind).unwrap()]
    }

    /// The text in our dialect.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, (field, kind)) in self.fields.iter().zip(Kind::ALL).enumerate() {
            if i > 0 {
                out.push_str(self.separators[i - 1]);
            }
            out.push_str(&field.render(kind));
        }
        out
    }

    pub fn dom_restricted(&self) -> bool {
        self.field(Kind::DayOfMonth).restricted(Kind::DayOfMonth)
    }

    pub fn dow_restricted(&self) -> bool {
        self.field(Kind::DayOfWeek).restricted(Kind::DayOfWeek)
    }

    /// The model's reading of the schedule, computed once.
    pub fn model(&self) -> Model {
        Model {
            masks: Kind::ALL.map(|kind| self.field(kind).mask(kind)),
            dom_restricted: self.dom_restricted(),
            dow_restricted: self.dow_restricted(),
        }
    }

    /// SPEC §2.2 validity, from the model: the generator only writes well-formed items and a
    /// single minute, so the only way to be invalid is to never fire, which only a
    /// day-of-month field on its own can cause (every month has every weekday).
    pub fn fires(&self) -> bool {
        if !self.dom_restricted() || self.dow_restricted() {
            return self.field(Kind::DayOfWeek).mask(Kind::DayOfWeek) != 0 || self.dom_restricted();
        }
        let days = self.field(Kind::DayOfMonth).mask(Kind::DayOfMonth);
        let months = self.field(Kind::Month).mask(Kind::Month);
        (1..=12u32).any(|m| {
            // The longest form of each month: 29 days for February.
            let len = match m {
                2 => 29,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            months & (1 << m) != 0 && (1..=len).any(|d| days & (1 << d) != 0)
        })
    }
}

/// What a schedule means by SPEC §2.1: each field's values, and which day fields restrict.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// Minute, hour, day of month, month, day of week (0 = Sunday), as bit masks.
    pub masks: [u64; 5],
    pub dom_restricted: bool,
    pub dow_restricted: bool,
}

impl Model {
    /// Whether the schedule fires in the minute `t`.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let [minute, hour, dom, month, dow] = self.masks;
        let has = |mask: u64, v: u32| mask & (1 << v) != 0;
        let by_dom = has(dom, t.day());
        let by_dow = has(dow, t.weekday().num_days_from_sunday());
        let day = if self.dom_restricted && self.dow_restricted {
            by_dom || by_dow
        } else {
            by_dom && by_dow
        };
        has(minute, t.minute()) && has(hour, t.hour()) && has(month, t.month()) && day
    }
}

fn value(kind: Kind, range: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = Value> + Clone {
    (range, prop::bool::weighted(0.4), any::<bool>()).prop_map(move |(n, named, lower)| Value {
        n,
        named: named && kind.name(n).is_some(),
        lower,
    })
}

/// `A-B` with `A <= B`.
fn ordered_pair(kind: Kind) -> impl Strategy<Value = (Value, Value)> {
    (kind.min()..=kind.max())
        .prop_flat_map(move |a| (value(kind, a..=a), value(kind, a..=kind.max())))
}

fn step(kind: Kind) -> impl Strategy<Value = u32> {
    // Small steps are the common case; the largest the dialect allows is the field's width.
    let width = kind.max() - kind.min() + 1;
    prop_oneof![3 => 1..=6u32, 1 => 1..=width]
}

/// Any valid item of a field other than the minute.
pub fn item(kind: Kind) -> BoxedStrategy<Item> {
    let any_value = value(kind, kind.min()..=kind.max());
    let mut choices: Vec<(u32, BoxedStrategy<Item>)> = vec![
        (4, any_value.clone().prop_map(Item::Value).boxed()),
        (
            3,
            ordered_pair(kind)
                .prop_map(|(a, b)| Item::Range(a, b))
                .boxed(),
        ),
        (3, step(kind).prop_map(Item::StarStep).boxed()),
        (
            3,
            (ordered_pair(kind), step(kind))
                .prop_map(|((a, b), s)| Item::RangeStep(a, b, s))
                .boxed(),
        ),
        (
            2,
            (any_value, step(kind))
                .prop_map(|(v, s)| Item::ValueStep(v, s))
                .boxed(),
        ),
    ];
    // A lone `*` or `?` is a whole field ([`Field::Star`]), never an item of a list.
    if kind.is_day() {
        choices.push((1, step(kind).prop_map(Item::QuestionStep).boxed()));
    }
    prop::strategy::Union::new_weighted(choices).boxed()
}

pub fn field(kind: Kind) -> BoxedStrategy<Field> {
    let list = prop::collection::vec(item(kind), 1..=3).prop_map(Field::List);
    if kind.is_day() {
        prop_oneof![3 => Just(Field::Star), 1 => Just(Field::Question), 5 => list].boxed()
    } else {
        prop_oneof![2 => Just(Field::Star), 5 => list].boxed()
    }
}

/// A minute field with exactly one value, written in every way the dialect allows: our
/// schedules may not fire twice within 60 minutes, so no valid schedule has two minutes.
pub fn single_minute() -> BoxedStrategy<Field> {
    let m = Kind::Minute;
    let v = |n: u32| Value {
        n,
        named: false,
        lower: false,
    };
    (0..60u32)
        .prop_flat_map(move |n| {
            let max = m.max();
            prop_oneof![
                4 => Just(Field::List(vec![Item::Value(v(n))])),
                1 => Just(Field::List(vec![Item::Range(v(n), v(n))])),
                1 => Just(Field::List(vec![Item::Value(v(n)), Item::Value(v(n))])),
                // `N/S` whose second value would pass 59.
                1 => ((max + 1 - n)..=60).prop_map(move |s| Field::List(vec![Item::ValueStep(v(n), s)])),
                // `A-B/S` whose step jumps past `B`.
                1 => (n..=max).prop_flat_map(move |b| ((b - n + 1)..=60)
                    .prop_map(move |s| Field::List(vec![Item::RangeStep(v(n), v(b), s)]))),
                // `*/60` is minute 0 only.
                1 => Just(if n == 0 { Field::List(vec![Item::StarStep(60)]) } else { Field::List(vec![Item::Value(v(n))]) }),
            ]
        })
        .boxed()
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(" "), 1 => Just("  "), 1 => Just("\t")]
}

/// A schedule that is well-formed and fires at most once an hour; it may still never fire
/// (`0 0 31 2 *`), which [`Expr::fires`] tells.
pub fn expr() -> BoxedStrategy<Expr> {
    (
        single_minute(),
        field(Kind::Hour),
        field(Kind::DayOfMonth),
        field(Kind::Month),
        field(Kind::DayOfWeek),
        [separator(), separator(), separator(), separator()],
    )
        .prop_map(|(minute, hour, dom, month, dow, separators)| Expr {
            fields: [minute, hour, dom, month, dow],
            separators,
        })
        .boxed()
}

/// An instant from 2000 to 2090, with seconds, so "strictly after" is exercised mid-minute.
pub fn instant_2000_2090() -> impl Strategy<Value = DateTime<Utc>> {
    let from = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let to = Utc
        .with_ymd_and_hms(2090, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    (from..to).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

/// Two years after `t`, counted in days so that the window never depends on leap years.
pub fn two_years_after(t: DateTime<Utc>) -> DateTime<Utc> {
    t + chrono::Duration::days(731)
}

/// The first day of the window `[from, to)` as a date, for day-by-day walks.
pub fn date_of(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}
