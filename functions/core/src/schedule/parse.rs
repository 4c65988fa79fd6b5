//! From text to value sets: the five-field dialect of SPEC §2.1 with every error of §2.2.
//!
//! Parsing never stops at the first problem: each field and each comma-separated item is
//! checked on its own so that a form can underline every mistake at once.

use crate::prelude::*;
use core::ops::Range;

use crate::error::{ErrorCode, Field, FieldError};

/// One of the five fields, with what its values may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldKind {
    pub field: Field,
    /// Human name used in messages ("minute", "day of month").
    pub label: &'static str,
    pub min: u32,
    pub max: u32,
    pub names: &'static [&'static str],
    /// Where `?` may stand for `*`.
    pub allows_question: bool,
}

const MONTH_NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

pub(crate) const MINUTE: FieldKind = FieldKind {
    field: Field::Minute,
    label: "minute",
    min: 0,
    max: 59,
    names: &[],
    allows_question: false,
};
pub(crate) const HOUR: FieldKind = FieldKind {
    field: Field::Hour,
    label: "hour",
    min: 0,
    max: 23,
    names: &[],
    allows_question: false,
};
pub(crate) const DAY_OF_MONTH: FieldKind = FieldKind {
    field: Field::DayOfMonth,
    label: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    allows_question: true,
};
pub(crate) const MONTH: FieldKind = FieldKind {
    field: Field::Month,
    label: "month",
    min: 1,
    max: 12,
    names: MONTH_NAMES,
    allows_question: false,
};
pub(crate) const DAY_OF_WEEK: FieldKind = FieldKind {
    field: Field::DayOfWeek,
    label: "day-of-week",
    min: 0,
    max: 7,
    names: DAY_NAMES,
    allows_question: true,
};

pub(crate) const FIELDS: [FieldKind; 5] = [MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK];

/// A parsed field: the set of values it allows as a bit mask (bit `n` = value `n`), and
/// whether it restricts anything in the POSIX sense (it is not exactly `*` or `?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedField {
    pub mask: u64,
    pub restricted: bool,
}

/// A token of the input with its character span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub text: &'a str,
    /// Character offset of the token's first character in the whole input.
    pub start: usize,
}

/// Splits on whitespace, remembering where each token starts in characters.
///
/// The tokens are taken with `get`, not `&input[..]`: the offsets come from `char_indices`,
/// so both are the same text, and indexing would link the slicing panic's formatting (with
/// `char`'s `Debug` and its Unicode tables) into the WebAssembly module.
pub(crate) fn tokens(input: &str) -> Vec<Token<'_>> {
    // Room for the five fields and a sixth, the usual mistake, without growing.
    let mut out = Vec::with_capacity(6);
    let mut token_start: Option<(usize, usize)> = None; // (byte, char)
    for (chars, (byte, c)) in input.char_indices().enumerate() {
        if c.is_whitespace() {
            if let Some((b, ch)) = token_start.take() {
                out.push(Token {
                    text: input.get(b..byte).unwrap_or_default(),
                    start: ch,
                });
            }
        } else if token_start.is_none() {
            token_start = Some((byte, chars));
        }
    }
    if let Some((b, ch)) = token_start {
        out.push(Token {
            text: input.get(b..).unwrap_or_default(),
            start: ch,
        });
    }
    out
}

/// The macros of SPEC §2.1, as the five fields they stand for.
pub(crate) fn expand_macro(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        _ => return None,
    })
}

const MACROS_HINT: &str = "@hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually";

/// Parses one field, appending every problem found to `errors`.
pub(crate) fn parse_field(
    kind: FieldKind,
    token: Token<'_>,
    errors: &mut Vec<FieldError>,
) -> Option<ParsedField> {
    if token.text == "*" || (kind.allows_question && token.text == "?") {
        return Some(ParsedField {
            mask: full_mask(kind),
            restricted: false,
        });
    }
    let before = errors.len();
    let mut mask = 0u64;
    let mut offset = token.start;
    let mut items = token.text.split(',').peekable();
    while let Some(item) = items.next() {
        let is_last = items.peek().is_none();
        let len = item.chars().count();
        if item.is_empty() {
            // Mark the comma that has nothing before (or after) it.
            let at = if is_last {
                offset.saturating_sub(1)
            } else {
                offset
            };
            let error = FieldError::new(
                ErrorCode::Syntax,
                kind.field,
                at..at + 1,
                format!(
                    "The {} field has an empty item between commas; write values separated by single commas, such as `{}`.",
                    kind.label,
                    example_list(kind)
                ),
            );
            // A lone `,` has an empty item on each side of one comma: report it once.
            if errors.last() != Some(&error) {
                errors.push(error);
            }
        } else if let Some(bits) = parse_item(kind, item, offset, errors) {
            mask |= bits;
        }
        offset += len + 1;
    }
    if errors.len() > before {
        return None;
    }
    if kind.field == Field::DayOfWeek && mask & (1 << 7) != 0 {
        // 7 is another name for Sunday.
        mask = (mask & !(1 << 7)) | 1;
    }
    Some(ParsedField {
        mask,
        restricted: true,
    })
}

fn full_mask(kind: FieldKind) -> u64 {
    let max = if kind.field == Field::DayOfWeek {
        6
    } else {
        kind.max
    };
    ((1u64 << (max + 1)) - 1) & !((1u64 << kind.min) - 1)
}

fn example_list(kind: FieldKind) -> &'static str {
    match kind.field {
        Field::Minute => "0,30",
        Field::Hour => "0,12",
        Field::DayOfMonth => "1,15",
        Field::Month => "1,7",
        _ => "1,5",
    }
}

fn example_range(kind: FieldKind) -> &'static str {
    match kind.field {
        Field::Minute => "10-20",
        Field::Hour => "9-17",
        Field::DayOfMonth => "1-7",
        Field::Month => "3-5",
        _ => "1-5",
    }
}

/// One comma-separated item: `*/S`, `N`, `A-B`, `A-B/S`, `N/S` (a lone `*` is a whole field).
fn parse_item(
    kind: FieldKind,
    item: &str,
    start: usize,
    errors: &mut Vec<FieldError>,
) -> Option<u64> {
    let span = start..start + item.chars().count();
    let (range_part, step_part) = match item.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (item, None),
    };
    let step_start = start + range_part.chars().count() + 1;

    if let Some(unsupported) = unsupported_feature(kind, item) {
        errors.push(FieldError::new(
            ErrorCode::Unsupported,
            kind.field,
            span,
            unsupported,
        ));
        return None;
    }

    let step = match step_part {
        None => None,
        Some(s) => {
            let step_span = step_start..step_start + s.chars().count();
            match parse_number(s) {
                Number::Value(0) => {
                    errors.push(FieldError::new(
                        ErrorCode::InvalidStep,
                        kind.field,
                        span.clone(),
                        format!(
                            "A step of 0 never advances; write a step of at least 1, such as `*/2` in the {} field.",
                            kind.label
                        ),
                    ));
                    None
                }
                Number::Value(v) if v <= u64::from(kind.max - kind.min + 1) => Some(v as u32),
                Number::Value(_) | Number::TooLarge => {
                    errors.push(FieldError::new(
                        ErrorCode::OutOfRange,
                        kind.field,
                        step_span,
                        format!(
                            "A step in the {} field can be at most {}; write a smaller step, such as `*/2`.",
                            kind.label,
                            kind.max - kind.min + 1
                        ),
                    ));
                    None
                }
                Number::Malformed => {
                    errors.push(FieldError::new(
                        ErrorCode::Syntax,
                        kind.field,
                        if s.is_empty() { span.clone() } else { step_span },
                        format!(
                            "A step must be a whole number after `/`, such as `*/2` or `{}/2` in the {} field.",
                            example_range(kind),
                            kind.label
                        ),
                    ));
                    return None;
                }
            }
        }
    };
    let had_step_error = step_part.is_some() && step.is_none();

    let range_span = start..start + range_part.chars().count();
    let star = range_part == "*" || (kind.allows_question && range_part == "?");
    if star && step_part.is_none() {
        // A whole field of `*` never reaches here: this `*` is one item of a list (`1,*`),
        // which SPEC §2.1's items do not include (and which would make a day field
        // "restricted" while it covers every day).
        errors.push(FieldError::new(
            ErrorCode::Syntax,
            kind.field,
            span,
            format!(
                "`{range_part}` stands for every value and cannot be one item of a list; write `*` alone, or list the values, such as `{}`.",
                example_list(kind)
            ),
        ));
        return None;
    }
    let (low, high) = if star {
        (kind.min, kind.max_value())
    } else if range_part.is_empty() {
        // `/2`: a step with nothing to step through. The item is all there is to mark.
        errors.push(FieldError::new(
            ErrorCode::Syntax,
            kind.field,
            span,
            format!(
                "A step needs values to step through before `/`; write `*/2` or `{}/2` in the {} field.",
                example_range(kind),
                kind.label
            ),
        ));
        return None;
    } else if let Some((a, b)) = range_part.split_once('-') {
        let a_span = start..start + a.chars().count();
        let b_start = a_span.end + 1;
        let b_span = b_start..b_start + b.chars().count();
        // A missing side (`1-`, `-5`) has no characters to mark: mark the whole range.
        let a_span = if a.is_empty() {
            range_span.clone()
        } else {
            a_span
        };
        let b_span = if b.is_empty() {
            range_span.clone()
        } else {
            b_span
        };
        let a = parse_value(kind, a, a_span, errors);
        let b = parse_value(kind, b, b_span, errors);
        let (a, b) = (a?, b?);
        if a > b {
            errors.push(FieldError::new(
                ErrorCode::InvalidRange,
                kind.field,
                range_span,
                format!(
                    "The range `{range_part}` starts after it ends; write the smaller value first, such as `{}`.",
                    example_range(kind)
                ),
            ));
            return None;
        }
        (a, b)
    } else {
        let v = parse_value(kind, range_part, range_span, errors)?;
        // `N/S` means `N-max/S`, with the field's largest value as written: 7 for the day
        // of week, so `7/2` is Sunday (not an empty set) and `1/2` reaches Sunday as `1-7/2`
        // does, as in croner. 7 then folds onto 0 below.
        if step_part.is_some() {
            (v, kind.max)
        } else {
            (v, v)
        }
    };
    if had_step_error {
        return None;
    }
    let step = step.unwrap_or(1);
    let mut mask = 0u64;
    let mut v = low;
    while v <= high {
        mask |= 1 << v;
        v += step;
    }
    Some(mask)
}

impl FieldKind {
    /// The largest value `*` reaches (Saturday for the day of week: 7 is an alias, and `*/S`
    /// is the same set either way).
    fn max_value(&self) -> u32 {
        if self.field == Field::DayOfWeek {
            6
        } else {
            self.max
        }
    }
}

enum Number {
    Value(u64),
    TooLarge,
    Malformed,
}

fn parse_number(text: &str) -> Number {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Number::Malformed;
    }
    match text.parse::<u64>() {
        Ok(v) => Number::Value(v),
        Err(_) => Number::TooLarge,
    }
}

fn parse_value(
    kind: FieldKind,
    text: &str,
    span: Range<usize>,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    let out_of_range = |errors: &mut Vec<FieldError>| {
        errors.push(FieldError::new(
            ErrorCode::OutOfRange,
            kind.field,
            span.clone(),
            format!(
                "`{text}` is outside the {} field's range; write a value from {} to {}{}.",
                kind.label,
                kind.min,
                kind.max,
                names_hint(kind)
            ),
        ));
    };
    match parse_number(text) {
        Number::Value(v) if (u64::from(kind.min)..=u64::from(kind.max)).contains(&v) => {
            Some(v as u32)
        }
        Number::Value(_) | Number::TooLarge => {
            out_of_range(errors);
            None
        }
        Number::Malformed => {
            if let Some(i) = kind.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
                return Some(i as u32 + if kind.field == Field::Month { 1 } else { 0 });
            }
            let message = if text == "?" && !kind.allows_question {
                "`?` is only allowed in the day-of-month and day-of-week fields; write `*`."
                    .to_string()
            } else if text.is_empty() {
                format!(
                    "A range needs a value on both sides of `-`; write it like `{}`.",
                    example_range(kind)
                )
            } else if text == "*" || text == "?" {
                format!(
                    "`{text}` cannot be part of a range; write `*` alone, or a range of values such as `{}`.",
                    example_range(kind)
                )
            } else {
                format!(
                    "`{text}` is not a valid {} value; write a number from {} to {}{}.",
                    kind.label,
                    kind.min,
                    kind.max,
                    names_hint(kind)
                )
            };
            errors.push(FieldError::new(
                ErrorCode::Syntax,
                kind.field,
                span.clone(),
                message,
            ));
            None
        }
    }
}

fn names_hint(kind: FieldKind) -> &'static str {
    match kind.field {
        Field::Month => " or a name from JAN to DEC",
        Field::DayOfWeek => " (0 and 7 are Sunday) or a name from SUN to SAT",
        _ => "",
    }
}

/// Recognises features of other cron dialects so the message can say so, instead of calling
/// a perfectly reasonable Quartz expression a typo.
fn unsupported_feature(kind: FieldKind, item: &str) -> Option<String> {
    if item.contains('#') {
        return Some(format!(
            "`{item}` (the n-th weekday of the month) is not supported; choose a day of the week such as `MON`, or days of the month such as `1-7`."
        ));
    }
    if !matches!(kind.field, Field::DayOfMonth | Field::DayOfWeek) {
        return None;
    }
    // Names such as `WED` and `JUL` contain the letters too: only what is not made of numbers
    // and names can be one of these features.
    let plain = item.split(['-', '/']).all(|part| {
        parse_number(part).is_value() || kind.names.iter().any(|n| n.eq_ignore_ascii_case(part))
    });
    if plain {
        return None;
    }
    let upper = item.to_ascii_uppercase();
    let stem = upper.trim_end_matches(['L', 'W']);
    let l_or_w = upper == "L"
        || upper == "LW"
        || upper.starts_with("L-")
        || (stem.len() < upper.len()
            && !stem.is_empty()
            && (parse_number(stem).is_value() || kind.names.contains(&stem)));
    l_or_w.then(|| {
        format!(
            "`{item}` (last day or nearest weekday) is not supported; write explicit days instead, such as `28` for the day of the month or `FRI` for the day of the week."
        )
    })
}

impl Number {
    fn is_value(&self) -> bool {
        matches!(self, Number::Value(_))
    }
}

/// The whole-input errors: blank input, macros, field counts.
pub(crate) enum Shape<'a> {
    Fields([Token<'a>; 5]),
    Macro(&'static str),
}

pub(crate) fn shape<'a>(input: &'a str, errors: &mut Vec<FieldError>) -> Option<Shape<'a>> {
    match whole_shape(&tokens(input)) {
        Ok(shape) => Some(shape),
        Err((code, message)) => {
            let whole = 0..input.chars().count();
            errors.push(FieldError::new(code, Field::Schedule, whole, message));
            None
        }
    }
}

/// Five fields or a known macro; otherwise the code and message of the one error, which
/// marks the whole input.
fn whole_shape<'a>(toks: &[Token<'a>]) -> Result<Shape<'a>, (ErrorCode, String)> {
    let Some(head) = toks.first() else {
        return Err((
            ErrorCode::Empty,
            "The schedule is empty; write five fields (minute hour day-of-month month day-of-week), such as `0 * * * *` for every hour.".to_owned(),
        ));
    };
    // `@every` (a robfig/cron extension): alone and glued to its argument (`@every5m`), or
    // followed by it as a second token.
    // Fields, the usual case, need no lower-case copy: every macro starts with `@`.
    if !head.text.starts_with('@') {
        return fields(toks);
    }
    let first = head.text.to_ascii_lowercase();
    // Glued means a duration follows: `@everyday` is an unknown macro (a `syntax` error
    // that lists the macros), not `@every`.
    let glued = first
        .strip_prefix("@every")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    if first == "@every" || (toks.len() == 1 && glued) {
        return Err((
            ErrorCode::Unsupported,
            "`@every` is not supported; write a cron schedule instead, such as `0 */6 * * *` for every six hours.".to_owned(),
        ));
    }
    if toks.len() == 1 && head.text.starts_with('@') {
        let name = head.text;
        if let Some(expanded) = expand_macro(name) {
            return Ok(Shape::Macro(expanded));
        }
        return Err(if first == "@reboot" {
            (
                ErrorCode::Unsupported,
                "`@reboot` is not supported: a backup runs on a clock, not when a machine starts; write a schedule such as `@daily` or `0 2 * * *`.".to_owned(),
            )
        } else {
            (
                ErrorCode::Syntax,
                format!(
                    "`{name}` is not a known macro; write one of {MACROS_HINT}, or five fields."
                ),
            )
        });
    }
    fields(toks)
}

/// Exactly five fields; otherwise the field-count error.
fn fields<'a>(toks: &[Token<'a>]) -> Result<Shape<'a>, (ErrorCode, String)> {
    <[Token<'a>; 5]>::try_from(toks)
        .map(Shape::Fields)
        .map_err(|_| {
            let n = toks.len();
            let message = if n == 6 || n == 7 {
                format!(
                    "The schedule has {n} fields, but seconds and year fields are not supported; write the five fields minute hour day-of-month month day-of-week, such as `0 * * * *`."
                )
            } else {
                format!(
                    "The schedule has {n} field{}; write exactly five (minute hour day-of-month month day-of-week), such as `0 * * * *`, or a macro such as `@daily`.",
                    if n == 1 { "" } else { "s" }
                )
            };
            (ErrorCode::FieldCount, message)
        })
}
