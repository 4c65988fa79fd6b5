//! Backup description templates (SPEC §3): free text with `{name}` / `{name:format}`
//! placeholders that a run fills in when it names a backup.
//!
//! A template is parsed once, when the job is created, so that every mistake reaches the operator
//! at the form (with a span to underline) instead of surfacing as an odd backup name at 3 am.
//! Rendering a parsed [`Template`] therefore cannot fail.
//!
//! Decisions the SPEC leaves open, written down here:
//! - Names and formats match ASCII case-insensitively (`{DateTime:RFC3339}` works); no Unicode
//!   case folding, so what matches never depends on the reader's locale tables.
//! - Whitespace inside braces is an error (`{ cluster }` is an `unknown_placeholder`) whose
//!   message shows the spelling without spaces. Accepting it silently would make
//!   `{ cluster }` and `{cluster}` both "right", and a later format with spaces ambiguous.
//! - A `{` followed by another `{` before any `}` (`{cluster {index}`) is an unclosed `{`
//!   whose span stops just before the second `{`; parsing resumes there, so the valid
//!   `{index}` is not reported too.
//! - Every problem is reported, up to [`MAX_TEMPLATE_CHARS`] of them. A template within the
//!   length limit cannot hold more, so the cap only trims the list for an oversized paste
//!   (which also gets a `too_long` error) and keeps one bad request from allocating
//!   megabytes of messages.

use crate::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::civil::{civil_from_days, format_rfc3339};
use crate::error::{join, ErrorCode, Field, FieldError, FieldErrors};

/// Templates are at most this many characters (Unicode scalar values), SPEC §3.
pub const MAX_TEMPLATE_CHARS: usize = 256;

/// The longest text an error message quotes back; a 10 000-character paste should not be
/// repeated inside its own error message.
const MAX_QUOTED_CHARS: usize = 40;

/// What one placeholder renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `{cluster}`, `{cluster:description}`
    ClusterDescription,
    /// `{cluster:id}`
    ClusterId,
    /// `{cluster:provider}`
    ClusterProvider,
    /// `{cluster:region}`
    ClusterRegion,
    /// `{index}`, `{index:decimal}`
    IndexDecimal,
    /// `{index:hex}`
    IndexHex,
    /// `{datetime}`, `{datetime:utc}`: `2026-11-27 05:00:00 UTC`
    DatetimeUtc,
    /// `{datetime:rfc822}`: `27 Nov 26 05:00 UTC`
    DatetimeRfc822,
    /// `{datetime:rfc3339}`: `2026-11-27T05:00:00Z`
    DatetimeRfc3339,
    /// `{datetime:json}`: `2026-11-27T05:00:00.000Z`
    DatetimeJson,
    /// `{datetime:unix}`: `1795755600`
    DatetimeUnix,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is (with `{{` / `}}` already turned into single braces).
    Literal(String),
    Placeholder(Placeholder),
}

/// Every spelling the SPEC accepts, in the order messages list them. `None` is the bare
/// `{name}` form. One table, so parsing, messages and suggestions can never disagree.
const PLACEHOLDERS: &[(&str, Option<&str>, Placeholder)] = &[
    ("cluster", None, Placeholder::ClusterDescription),
    (
        "cluster",
        Some("description"),
        Placeholder::ClusterDescription,
    ),
    ("cluster", Some("id"), Placeholder::ClusterId),
    ("cluster", Some("provider"), Placeholder::ClusterProvider),
    ("cluster", Some("region"), Placeholder::ClusterRegion),
    ("index", None, Placeholder::IndexDecimal),
    ("index", Some("decimal"), Placeholder::IndexDecimal),
    ("index", Some("hex"), Placeholder::IndexHex),
    ("datetime", None, Placeholder::DatetimeUtc),
    ("datetime", Some("utc"), Placeholder::DatetimeUtc),
    ("datetime", Some("rfc822"), Placeholder::DatetimeRfc822),
    ("datetime", Some("rfc3339"), Placeholder::DatetimeRfc3339),
    ("datetime", Some("json"), Placeholder::DatetimeJson),
    ("datetime", Some("unix"), Placeholder::DatetimeUnix),
];

/// A backup description template that is known to be valid.
///
/// Keeps the text as the operator wrote it ([`Template::as_str`]), because that is what a job
/// stores and shows back; the parts are what rendering walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What a run knows when it names a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderContext {
    pub cluster_id: String,
    pub cluster_description: String,
    pub cluster_provider: String,
    pub cluster_region: String,
    /// The backup's sequence number within its job, from 1.
    pub index: u64,
    /// The scheduled instant of the run (so a retried run renders the same text), or the
    /// moment a manual backup was accepted.
    #[serde(with = "rfc3339_instant")]
    pub datetime: DateTime<Utc>,
}

/// Serde for the one instant in [`RenderContext`], as an RFC 3339 string.
///
/// The core builds chrono without its `serde` feature (the wasm build stays small and the
/// workspace's chrono features stay untouched), so the instant is (de)serialized by hand.
/// Sub-second digits are kept, because `{datetime:json}` renders milliseconds.
mod rfc3339_instant {
    use crate::prelude::*;
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(instant: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&instant.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                serde::de::Error::custom(format_args!(
                    "datetime must be an RFC 3339 instant such as 2026-11-27T05:00:00Z ({e})"
                ))
            })
    }
}

impl Template {
    /// Parses `text`, reporting every problem at once (see the module notes for the cap).
    ///
    /// Every error has field [`Field::Description`] and a character span over `text`.
    pub fn parse(text: &str) -> Result<Template, FieldErrors> {
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len();
        let mut errors = Vec::new();
        if n > MAX_TEMPLATE_CHARS {
            errors.push(FieldError::too_long(
                Field::Description,
                "A description template",
                MAX_TEMPLATE_CHARS,
                n,
            ));
        }
        // One more than the template-syntax errors a legal-length template can hold.
        let cap = MAX_TEMPLATE_CHARS + 1;

        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < n && errors.len() < cap {
            match chars[i] {
                '{' if chars.get(i + 1) == Some(&'{') => {
                    literal.push('{');
                    i += 2;
                }
                '{' => {
                    let mut j = i + 1;
                    while j < n && chars[j] != '}' && chars[j] != '{' {
                        j += 1;
                    }
                    let inner: String = chars[i + 1..j].iter().collect();
                    if j < n && chars[j] == '}' {
                        match resolve(&inner) {
                            Ok(placeholder) => {
                                if !literal.is_empty() {
                                    parts.push(Part::Literal(core::mem::take(&mut literal)));
                                }
                                parts.push(Part::Placeholder(placeholder));
                            }
                            Err((code, message)) => errors.push(error(code, i..j + 1, message)),
                        }
                        i = j + 1;
                    } else {
                        errors.push(error(ErrorCode::Syntax, i..j, unclosed_message(&inner)));
                        i = j;
                    }
                }
                '}' if chars.get(i + 1) == Some(&'}') => {
                    literal.push('}');
                    i += 2;
                }
                '}' => {
                    errors.push(error(
                        ErrorCode::Syntax,
                        i..i + 1,
                        "This } closes no placeholder; write }} for a literal brace.",
                    ));
                    i += 1;
                }
                c => {
                    literal.push(c);
                    i += 1;
                }
            }
        }
        if !errors.is_empty() {
            return Err(FieldErrors(errors));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: text.to_owned(),
            parts,
        })
    }

    /// The template as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The backup description for one run. Values are inserted verbatim: a cluster
    /// description containing braces is not a template.
    pub fn render(&self, ctx: &RenderContext) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Placeholder(p) => out.push_str(&render_placeholder(*p, ctx)),
            }
        }
        out
    }
}

impl core::str::FromStr for Template {
    type Err = FieldErrors;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Template::parse(text)
    }
}

impl core::fmt::Display for Template {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.source)
    }
}

fn error(code: ErrorCode, span: core::ops::Range<usize>, message: impl Into<String>) -> FieldError {
    FieldError::new(code, Field::Description, span, message)
}

/// Looks up the text between the braces; on failure, the code and the message to show.
fn resolve(inner: &str) -> Result<Placeholder, (ErrorCode, String)> {
    if let Some(p) = lookup(inner) {
        return Ok(p);
    }
    let (name, format) = match inner.split_once(':') {
        Some((name, format)) => (name, Some(format)),
        None => (inner, None),
    };
    let written = format!("{{{}}}", quote(inner));
    // The fix for `{ cluster }` is obvious; say it before anything else.
    let without_spaces: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
    let spaces_hint = if without_spaces != inner {
        lookup(&without_spaces).map(|_| {
            format!(
                "Placeholders cannot contain spaces: write {{{}}} instead of {written}.",
                without_spaces.to_ascii_lowercase()
            )
        })
    } else {
        None
    };
    let known_name = PLACEHOLDERS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|(n, _, _)| *n);
    match known_name {
        Some(name) => {
            let message = spaces_hint.unwrap_or_else(|| {
                let problem = match format.map(quote) {
                    Some(shown) if !shown.is_empty() => {
                        format!("{written} has an unknown format \"{shown}\"")
                    }
                    _ => format!("{written} has no format after the colon"),
                };
                format!(
                    "{problem}{}; write {}.",
                    did_you_mean(inner),
                    list(&spellings_of(name), "or")
                )
            });
            Err((ErrorCode::UnknownFormat, message))
        }
        None => {
            let message = spaces_hint.unwrap_or_else(|| {
                let what = if inner.is_empty() {
                    "{} is an empty placeholder".to_owned()
                } else {
                    format!("{written} is not a known placeholder")
                };
                format!(
                    "{what}{}; write one of {} (and {{{{ for a literal brace).",
                    did_you_mean(inner),
                    list(&all_spellings(), "or")
                )
            });
            Err((ErrorCode::UnknownPlaceholder, message))
        }
    }
}

fn lookup(inner: &str) -> Option<Placeholder> {
    let (name, format) = match inner.split_once(':') {
        Some((name, format)) => (name, Some(format)),
        None => (inner, None),
    };
    PLACEHOLDERS
        .iter()
        .find(|(n, f, _)| {
            n.eq_ignore_ascii_case(name)
                && match (f, format) {
                    (None, None) => true,
                    (Some(f), Some(format)) => f.eq_ignore_ascii_case(format),
                    _ => false,
                }
        })
        .map(|(_, _, p)| *p)
}

fn unclosed_message(inner: &str) -> String {
    let suggestion = match lookup(inner.trim_end()) {
        Some(_) => format!(" (write {{{}}})", inner.trim_end().to_ascii_lowercase()),
        None => String::new(),
    };
    format!(
        "This {{ is never closed; end the placeholder with }}{suggestion}, or write {{{{ for a \
         literal brace."
    )
}

fn spellings_of(name: &str) -> Vec<String> {
    PLACEHOLDERS
        .iter()
        .filter(|(n, _, _)| *n == name)
        .map(|(n, f, _)| spelling(n, *f))
        .collect()
}

fn all_spellings() -> Vec<String> {
    PLACEHOLDERS
        .iter()
        .map(|(n, f, _)| spelling(n, *f))
        .collect()
}

fn spelling(name: &str, format: Option<&str>) -> String {
    match format {
        Some(f) => format!("{{{name}:{f}}}"),
        None => format!("{{{name}}}"),
    }
}

/// `a, b or c`
fn list(items: &[String], conjunction: &str) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {conjunction} {last}", join(rest, ", ")),
    }
}

/// ` (did you mean {cluster:id}?)` for a near miss such as `{cluster:idd}`, else nothing.
///
/// Only short inputs are compared, so a long paste costs nothing.
fn did_you_mean(inner: &str) -> String {
    if inner.is_empty() || inner.chars().count() > 24 {
        return String::new();
    }
    let lower = inner.to_ascii_lowercase();
    // The nearest spelling within two edits, the first of equals; each compared without its
    // braces, taken from the spelling itself rather than written a second time.
    let mut nearest: Option<(usize, String)> = None;
    for (n, f, _) in PLACEHOLDERS {
        let written = spelling(n, *f);
        let bare = written.get(1..written.len() - 1).unwrap_or_default();
        let distance = edit_distance(&lower, bare);
        if distance <= 2 && nearest.as_ref().is_none_or(|(d, _)| distance < *d) {
            nearest = Some((distance, written));
        }
    }
    nearest
        .map(|(_, s)| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev_diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev_diag + cost);
            prev_diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The operator's text as a message may show it: control characters escaped (a form cannot
/// show a raw NUL or newline inside a sentence) and long text shortened.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn render_placeholder(p: Placeholder, ctx: &RenderContext) -> String {
    match p {
        Placeholder::ClusterDescription => ctx.cluster_description.clone(),
        Placeholder::ClusterId => ctx.cluster_id.clone(),
        Placeholder::ClusterProvider => ctx.cluster_provider.clone(),
        Placeholder::ClusterRegion => ctx.cluster_region.clone(),
        Placeholder::IndexDecimal => ctx.index.to_string(),
        Placeholder::IndexHex => format!("{:x}", ctx.index),
        Placeholder::DatetimeUtc => {
            let c = Civil::of(ctx.datetime);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                c.year, c.month, c.day, c.hour, c.minute, c.second
            )
        }
        Placeholder::DatetimeRfc822 => {
            let c = Civil::of(ctx.datetime);
            format!(
                "{:02} {} {:02} {:02}:{:02} UTC",
                c.day,
                MONTH_ABBREVIATIONS[(c.month as usize).saturating_sub(1) % 12],
                c.year.rem_euclid(100),
                c.hour,
                c.minute
            )
        }
        Placeholder::DatetimeRfc3339 => format_rfc3339(ctx.datetime),
        Placeholder::DatetimeJson => {
            let c = Civil::of(ctx.datetime);
            // A leap second is represented with nanoseconds ≥ 1e9; never print ".1500".
            let millis = ctx.datetime.timestamp_subsec_millis().min(999);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
                c.year, c.month, c.day, c.hour, c.minute, c.second
            )
        }
        Placeholder::DatetimeUnix => ctx.datetime.timestamp().to_string(),
    }
}

const MONTH_ABBREVIATIONS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The calendar fields of an instant, computed with the same integer arithmetic as the
/// schedules so that templates and next-run lists never disagree about a date.
struct Civil {
    year: i32,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Civil {
    fn of(instant: DateTime<Utc>) -> Civil {
        let secs = instant.timestamp();
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let in_day = secs.rem_euclid(86_400);
        Civil {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;
    use proptest::prelude::*;

    /// 2026-11-27T05:00:00Z, the SPEC's example instant.
    fn spec_instant() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_755_600, 0).unwrap()
    }

    fn ctx() -> RenderContext {
        RenderContext {
            cluster_id: "c196ogto0aeqohe3ommq".into(),
            cluster_description: "Production EU".into(),
            cluster_provider: "aws-ebs".into(),
            cluster_region: "eu-west-1".into(),
            index: 255,
            datetime: spec_instant(),
        }
    }

    fn render(text: &str) -> String {
        Template::parse(text)
            .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
            .render(&ctx())
    }

    fn errors(text: &str) -> Vec<FieldError> {
        match Template::parse(text) {
            Ok(_) => panic!("{text:?} should be rejected"),
            Err(e) => e.0,
        }
    }

    fn only_error(text: &str) -> FieldError {
        let mut all = errors(text);
        assert_eq!(all.len(), 1, "{text:?}: {all:?}");
        all.remove(0)
    }

    #[test]
    fn renders_every_placeholder_of_the_spec_table() {
        // GIVEN the SPEC §3 table WHEN each placeholder is rendered THEN it prints the SPEC's text
        let cases = [
            ("{cluster}", "Production EU"),
            ("{cluster:description}", "Production EU"),
            ("{cluster:id}", "c196ogto0aeqohe3ommq"),
            ("{cluster:provider}", "aws-ebs"),
            ("{cluster:region}", "eu-west-1"),
            ("{index}", "255"),
            ("{index:decimal}", "255"),
            ("{index:hex}", "ff"),
            ("{datetime}", "2026-11-27 05:00:00 UTC"),
            ("{datetime:utc}", "2026-11-27 05:00:00 UTC"),
            ("{datetime:rfc822}", "27 Nov 26 05:00 UTC"),
            ("{datetime:rfc3339}", "2026-11-27T05:00:00Z"),
            ("{datetime:json}", "2026-11-27T05:00:00.000Z"),
            ("{datetime:unix}", "1795755600"),
        ];
        for (template, expected) in cases {
            assert_eq!(render(template), expected, "{template}");
        }
    }

    #[test]
    fn renders_the_seed_command_line_template() {
        // GIVEN the template from the SPEC §8 command line (upper-case format)
        // WHEN it is rendered for a run
        // THEN the operator gets the cluster description and an RFC 3339 instant
        assert_eq!(
            render("{cluster} Hourly Backup {datetime:RFC3339}"),
            "Production EU Hourly Backup 2026-11-27T05:00:00Z"
        );
    }

    #[test]
    fn names_and_formats_are_case_insensitive() {
        assert_eq!(render("{CLUSTER:ID}"), "c196ogto0aeqohe3ommq");
        assert_eq!(render("{DateTime:Unix}"), "1795755600");
        assert_eq!(render("{Index:HEX}"), "ff");
    }

    #[test]
    fn doubled_braces_write_literal_braces() {
        // GIVEN braces the operator wants to see WHEN doubled THEN they render once, unexpanded
        assert_eq!(
            render("{{cluster}} is {cluster}"),
            "{cluster} is Production EU"
        );
        assert_eq!(render("}}{{"), "}{");
        assert_eq!(render("{{{index}}}"), "{255}");
    }

    #[test]
    fn text_without_placeholders_renders_unchanged_including_non_ascii() {
        assert_eq!(
            render("Sauvegarde nocturne 🦀 — été"),
            "Sauvegarde nocturne 🦀 — été"
        );
        assert_eq!(render(""), "");
    }

    #[test]
    fn inserted_values_are_not_templates_themselves() {
        // GIVEN a cluster description with braces WHEN rendered THEN the braces print verbatim
        let t = Template::parse("{cluster}").unwrap();
        let c = RenderContext {
            cluster_description: "odd {index} }{ name".into(),
            ..ctx()
        };
        assert_eq!(t.render(&c), "odd {index} }{ name");
    }

    #[test]
    fn json_format_prints_the_instants_milliseconds_and_others_drop_them() {
        // GIVEN a run instant with sub-second precision
        let t = DateTime::from_timestamp(1_795_755_600, 123_999_999).unwrap();
        let c = RenderContext {
            datetime: t,
            ..ctx()
        };
        // THEN json shows truncated milliseconds, rfc3339/unix show whole seconds
        let parsed = Template::parse("{datetime:json}|{datetime:rfc3339}|{datetime:unix}").unwrap();
        assert_eq!(
            parsed.render(&c),
            "2026-11-27T05:00:00.123Z|2026-11-27T05:00:00Z|1795755600"
        );
    }

    #[test]
    fn rfc822_pads_the_day_and_uses_a_two_digit_year() {
        // GIVEN 2009-01-05 07:08:09 UTC WHEN rendered as rfc822 THEN `05 Jan 09 07:08 UTC`
        let t = DateTime::from_timestamp(1_231_139_289, 0).unwrap();
        let c = RenderContext {
            datetime: t,
            ..ctx()
        };
        assert_eq!(
            Template::parse("{datetime:rfc822}").unwrap().render(&c),
            "05 Jan 09 07:08 UTC"
        );
        assert_eq!(
            Template::parse("{datetime}").unwrap().render(&c),
            "2009-01-05 07:08:09 UTC"
        );
    }

    #[test]
    fn index_one_renders_as_one_in_both_bases() {
        let c = RenderContext { index: 1, ..ctx() };
        let t = Template::parse("#{index} 0x{index:hex}").unwrap();
        assert_eq!(t.render(&c), "#1 0x1");
    }

    /// The one error of `text`, after checking its code and that its message says each of
    /// `says` (what to write instead, the names to choose from).
    fn error_saying(text: &str, code: ErrorCode, says: &[&str]) -> FieldError {
        let e = only_error(text);
        assert_eq!(e.code, code, "{text:?}: {e:?}");
        for part in says {
            assert!(
                e.message.contains(part),
                "{part} missing from {}",
                e.message
            );
        }
        e
    }

    #[test]
    fn unknown_placeholder_is_underlined_and_lists_what_to_write() {
        // GIVEN a misspelt name WHEN parsed THEN the whole placeholder is underlined
        // AND the message lists the known placeholders and the literal-brace escape
        let e = error_saying(
            "Backup {foo} done",
            ErrorCode::UnknownPlaceholder,
            &[
                "{cluster}",
                "{cluster:id}",
                "{index:hex}",
                "{datetime:rfc3339}",
                "{{",
            ],
        );
        assert_eq!(e.field, Field::Description);
        assert_eq!((e.start, e.end), (7, 12));
    }

    #[test]
    fn did_you_mean_picks_the_first_nearest_spelling_as_the_map_and_min_by_key_did() {
        // The suggestion as first written: each spelling's bare form written on its own,
        // every candidate built, the first of the nearest kept.
        let oracle = |inner: &str| {
            if inner.is_empty() || inner.chars().count() > 24 {
                return String::new();
            }
            let lower = inner.to_ascii_lowercase();
            PLACEHOLDERS
                .iter()
                .map(|(n, f, _)| {
                    let bare = match f {
                        Some(f) => format!("{n}:{f}"),
                        None => (*n).to_owned(),
                    };
                    (edit_distance(&lower, &bare), spelling(n, *f))
                })
                .filter(|(d, _)| *d <= 2)
                .min_by_key(|(d, _)| *d)
                .map(|(_, s)| format!(" (did you mean {s}?)"))
                .unwrap_or_default()
        };
        let mut inputs = vec![String::new(), "x".repeat(25), "é".repeat(3)];
        for (n, f, _) in PLACEHOLDERS {
            let bare = f.map_or_else(|| (*n).to_owned(), |f| format!("{n}:{f}"));
            let chars: Vec<char> = bare.chars().collect();
            for i in 0..=chars.len() {
                let (before, after) = chars.split_at(i);
                let before: String = before.iter().collect();
                let rest: String = after.iter().skip(1).collect();
                let after: String = after.iter().collect();
                inputs.push(format!("{before}{rest}"));
                inputs.push(format!("{before}x{after}"));
                inputs.push(format!("{before}x{rest}"));
                inputs.push(format!("{before}XY{rest}").to_uppercase());
                // Prefixes, where two spellings are often equally near (`index:h`).
                inputs.push(before);
            }
        }
        for inner in &inputs {
            assert_eq!(did_you_mean(inner), oracle(inner), "{inner:?}");
        }
        assert!(inputs.len() > 400, "{}", inputs.len());
    }

    #[test]
    fn near_miss_suggests_the_intended_placeholder() {
        error_saying(
            "{clustr}",
            ErrorCode::UnknownPlaceholder,
            &["did you mean {cluster}?"],
        );
    }

    #[test]
    fn unknown_format_lists_the_formats_of_that_name() {
        // GIVEN {datetime:xyz} WHEN parsed THEN unknown_format on the placeholder, listing formats
        let e = error_saying(
            "at {datetime:xyz}",
            ErrorCode::UnknownFormat,
            &["utc", "rfc822", "rfc3339", "json", "unix", "\"xyz\""],
        );
        assert_eq!((e.start, e.end), (3, 17));
        error_saying(
            "{index:octal}",
            ErrorCode::UnknownFormat,
            &["write {index}, {index:decimal} or {index:hex}."],
        );
    }

    #[test]
    fn empty_format_and_empty_placeholder_are_errors() {
        error_saying(
            "{cluster:}",
            ErrorCode::UnknownFormat,
            &["no format after the colon", "did you mean {cluster}?"],
        );
        let e = error_saying(
            "a {} b",
            ErrorCode::UnknownPlaceholder,
            &["empty placeholder"],
        );
        assert_eq!((e.start, e.end), (2, 4));
    }

    #[test]
    fn lone_closing_brace_is_a_syntax_error_on_that_character() {
        // GIVEN a stray `}` WHEN parsed THEN syntax error on that one character, advising `}}`
        let e = error_saying("a } b", ErrorCode::Syntax, &["}}"]);
        assert_eq!((e.start, e.end), (2, 3));
    }

    #[test]
    fn unclosed_brace_spans_to_the_end_of_the_input() {
        // GIVEN `{cluster` never closed WHEN parsed THEN syntax error from `{` to the end
        let e = error_saying(
            "Backup {cluster",
            ErrorCode::Syntax,
            &["write {cluster}", "{{"],
        );
        assert_eq!((e.start, e.end), (7, 15));
    }

    #[test]
    fn unclosed_brace_before_another_placeholder_stops_at_that_placeholder() {
        // GIVEN `{cluster {index}` WHEN parsed THEN only the first `{` is reported, up to the 2nd
        let e = error_saying("{cluster {index}", ErrorCode::Syntax, &[]);
        assert_eq!((e.start, e.end), (0, 9));
    }

    #[test]
    fn whitespace_inside_braces_is_rejected_with_the_spelling_to_use() {
        // GIVEN spaces around a known name WHEN parsed THEN rejected, and told the exact fix
        error_saying(
            "{ cluster }",
            ErrorCode::UnknownPlaceholder,
            &["write {cluster} instead"],
        );
        error_saying(
            "{datetime: RFC3339}",
            ErrorCode::UnknownFormat,
            &["write {datetime:rfc3339} instead"],
        );
    }

    #[test]
    fn every_problem_is_reported_in_order() {
        // GIVEN four different mistakes WHEN parsed THEN four errors, left to right
        let all = errors("{foo} } {datetime:x} {index");
        let got: Vec<_> = all.iter().map(|e| (e.code, e.start, e.end)).collect();
        assert_eq!(
            got,
            vec![
                (ErrorCode::UnknownPlaceholder, 0, 5),
                (ErrorCode::Syntax, 6, 7),
                (ErrorCode::UnknownFormat, 8, 20),
                (ErrorCode::Syntax, 21, 27),
            ]
        );
    }

    #[test]
    fn spans_count_characters_not_bytes() {
        // GIVEN non-ASCII text before a mistake WHEN parsed THEN the span counts characters
        let e = only_error("été 🦀 {nope}");
        assert_eq!((e.start, e.end), (6, 12));
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        let e = only_error("{a\nb}");
        assert!(e.message.contains("{a\\nb}"), "{}", e.message);
        assert!(!e.message.contains('\n'));
    }

    #[test]
    fn length_limit_counts_characters() {
        // GIVEN 256 multi-byte characters WHEN parsed THEN accepted (the limit is not in bytes)
        let at_limit = "é".repeat(MAX_TEMPLATE_CHARS);
        assert!(Template::parse(&at_limit).is_ok());
        // GIVEN 257 THEN too_long, underlining the characters past the limit
        let over = "é".repeat(MAX_TEMPLATE_CHARS + 1);
        let e = error_saying(&over, ErrorCode::TooLong, &["257"]);
        assert_eq!((e.start, e.end), (256, 257));
    }

    #[test]
    fn too_long_is_reported_together_with_other_problems() {
        let text = format!("{{foo}}{}", "x".repeat(300));
        let codes: Vec<_> = errors(&text).iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            vec![ErrorCode::TooLong, ErrorCode::UnknownPlaceholder]
        );
    }

    #[test]
    fn an_enormous_paste_gets_a_bounded_error_list() {
        // GIVEN a megabyte of stray braces WHEN parsed THEN a short, still-useful error list
        let all = errors(&"}".repeat(1_000_000));
        assert_eq!(all[0].code, ErrorCode::TooLong);
        assert!(all.len() <= MAX_TEMPLATE_CHARS + 1, "{}", all.len());
    }

    #[test]
    fn a_parsed_template_keeps_the_operators_text() {
        let t: Template = "{Cluster} {{x}}".parse().unwrap();
        assert_eq!(t.as_str(), "{Cluster} {{x}}");
        assert_eq!(t.to_string(), "{Cluster} {{x}}");
        assert_eq!(
            t.parts(),
            &[
                Part::Placeholder(Placeholder::ClusterDescription),
                Part::Literal(" {x}".into())
            ]
        );
    }

    #[test]
    fn errors_serialize_in_the_shape_of_schedule_errors() {
        let json = serde_json::to_value(Template::parse("}").unwrap_err()).unwrap();
        assert_eq!(json[0]["code"], "syntax");
        assert_eq!(json[0]["field"], "description");
        assert_eq!(json[0]["start"], 0);
        assert_eq!(json[0]["end"], 1);
    }

    #[test]
    fn render_context_round_trips_as_camel_case_json() {
        // GIVEN the JSON a CLI or browser sends WHEN deserialized THEN every field arrives
        let json = serde_json::json!({
            "clusterId": "c1", "clusterDescription": "Prod", "clusterProvider": "directory",
            "clusterRegion": "local", "index": 3, "datetime": "2026-11-27T05:00:00.250Z"
        });
        let c: RenderContext = serde_json::from_value(json).unwrap();
        assert_eq!(c.datetime.timestamp_subsec_millis(), 250);
        assert_eq!(
            serde_json::to_value(&c).unwrap()["datetime"],
            "2026-11-27T05:00:00.250Z"
        );
        let bad = serde_json::json!({
            "clusterId": "c1", "clusterDescription": "Prod", "clusterProvider": "directory",
            "clusterRegion": "local", "index": 3, "datetime": "yesterday"
        });
        let e = serde_json::from_value::<RenderContext>(bad).unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }

    #[test]
    fn dates_far_from_today_still_render() {
        // GIVEN the earliest and latest instants chrono represents WHEN rendered THEN no panic
        let t = Template::parse(
            "{datetime} {datetime:rfc822} {datetime:rfc3339} {datetime:json} {datetime:unix}",
        )
        .unwrap();
        for instant in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::UNIX_EPOCH,
        ] {
            let c = RenderContext {
                datetime: instant,
                ..ctx()
            };
            assert!(!t.render(&c).is_empty());
        }
        let epoch = RenderContext {
            datetime: DateTime::UNIX_EPOCH,
            ..ctx()
        };
        assert_eq!(
            t.render(&epoch),
            "1970-01-01 00:00:00 UTC 01 Jan 70 00:00 UTC 1970-01-01T00:00:00Z \
             1970-01-01T00:00:00.000Z 0"
        );
    }

    /// Text built from the pieces that make templates interesting.
    fn template_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("{{".to_owned()),
            Just("}}".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\u{0}".to_owned()),
            Just("\n".to_owned()),
            Just("é🦀".to_owned()),
            Just("cluster".to_owned()),
            Just("DateTime".to_owned()),
            Just("rfc3339".to_owned()),
            Just("index:hex".to_owned()),
            "[a-z]{0,5}",
            ".{0,3}",
        ];
        prop::collection::vec(piece, 0..200).prop_map(|v| v.concat())
    }

    fn check_no_panic_and_spans(text: &str) -> Result<(), TestCaseError> {
        let n = text.chars().count();
        match Template::parse(text) {
            Ok(t) => {
                prop_assert!(n <= MAX_TEMPLATE_CHARS);
                let _ = t.render(&ctx());
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in errors.iter() {
                    prop_assert_eq!(e.field, Field::Description);
                    prop_assert!(e.start <= e.end && e.end <= n, "{:?} over {} chars", e, n);
                    prop_assert!(!e.message.is_empty());
                }
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn no_text_panics_and_spans_stay_inside_the_input(text in template_like()) {
            check_no_panic_and_spans(&text)?;
        }

        #[test]
        fn no_arbitrary_unicode_panics(text in ".{0,400}") {
            check_no_panic_and_spans(&text)?;
        }

        #[test]
        fn text_without_braces_renders_to_itself(text in "[^{}]{0,256}") {
            let t = Template::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(t.render(&ctx()), text);
        }

        #[test]
        fn any_instant_renders_its_unix_seconds(secs in -62_135_596_800i64..253_402_300_799) {
            // Years 1..=9999: the unix rendering always matches chrono's own timestamp.
            let c = RenderContext { datetime: DateTime::from_timestamp(secs, 0).unwrap(), ..ctx() };
            let t = Template::parse(
                "{datetime:unix}|{datetime:rfc3339}|{datetime:utc}|{datetime:rfc822}",
            )
            .unwrap();
            let expected = format!(
                "{secs}|{}|{}|{}",
                c.datetime.to_rfc3339_opts(SecondsFormat::Secs, true),
                c.datetime.format("%Y-%m-%d %H:%M:%S UTC"),
                c.datetime.format("%d %b %y %H:%M UTC"),
            );
            prop_assert_eq!(t.render(&c), expected);
        }
    }
}
