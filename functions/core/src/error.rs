//! The one error shape every input check produces.
//!
//! A form has to underline the mistake, an API has to name the field and a CLI has to say
//! what to write instead, so an error is data (`code`, `field`, span, `message`) rather than
//! an opaque type. The JSON form of [`FieldError`] is part of the product contract (SPEC §2.2,
//! §3, §8) and is shared unchanged by the CLI, the HTTP API and the WebAssembly module.

use serde::Serialize;

/// A stable, machine-readable reason. The serialized names never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Blank input.
    Empty,
    /// Not five fields and not a macro.
    FieldCount,
    /// A malformed item, an unclosed `{` or a lone `}`.
    Syntax,
    /// A value outside its field's range.
    OutOfRange,
    /// A range whose start is after its end.
    InvalidRange,
    /// A step of zero.
    InvalidStep,
    /// Valid in some cron dialect, but not in ours.
    Unsupported,
    /// Two firings less than 60 minutes apart.
    TooFrequent,
    /// The schedule never fires.
    NeverRuns,
    /// A template placeholder whose name is not known.
    UnknownPlaceholder,
    /// A template placeholder whose format is not known for its name.
    UnknownFormat,
    /// A required value is missing or blank.
    Required,
    /// A value is longer than allowed.
    TooLong,
    /// A value is not one of those allowed (a number out of its range, a malformed id).
    InvalidValue,
}

impl ErrorCode {
    /// The serialized name, for places that print the code without JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Empty => "empty",
            ErrorCode::FieldCount => "field_count",
            ErrorCode::Syntax => "syntax",
            ErrorCode::OutOfRange => "out_of_range",
            ErrorCode::InvalidRange => "invalid_range",
            ErrorCode::InvalidStep => "invalid_step",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::TooFrequent => "too_frequent",
            ErrorCode::NeverRuns => "never_runs",
            ErrorCode::UnknownPlaceholder => "unknown_placeholder",
            ErrorCode::UnknownFormat => "unknown_format",
            ErrorCode::Required => "required",
            ErrorCode::TooLong => "too_long",
            ErrorCode::InvalidValue => "invalid_value",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the input an error concerns.
///
/// The schedule's five fields, the schedule as a whole, a backup description template, and
/// the fields of a create-job request (named by their JSON path in the SPEC §7 body, which is
/// also the key of the API's `fields` map and the web form's field name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Field {
    #[serde(rename = "minute")]
    Minute,
    #[serde(rename = "hour")]
    Hour,
    #[serde(rename = "dayOfMonth")]
    DayOfMonth,
    #[serde(rename = "month")]
    Month,
    #[serde(rename = "dayOfWeek")]
    DayOfWeek,
    /// The whole schedule expression.
    #[serde(rename = "schedule")]
    Schedule,
    /// A backup description template (SPEC §3 names this field `description`).
    #[serde(rename = "description")]
    Description,
    /// The job's own description (`description` in the create-job body).
    #[serde(rename = "jobDescription")]
    JobDescription,
    /// The job's `type` in the create-job body.
    #[serde(rename = "type")]
    JobType,
    /// `data.clusterId` in the create-job body.
    #[serde(rename = "clusterId")]
    ClusterId,
    /// `data.maxBackupCount` in the create-job body.
    #[serde(rename = "maxBackupCount")]
    MaxBackupCount,
}

impl Field {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "dayOfMonth",
            Field::Month => "month",
            Field::DayOfWeek => "dayOfWeek",
            Field::Schedule => "schedule",
            Field::Description => "description",
            Field::JobDescription => "jobDescription",
            Field::JobType => "type",
            Field::ClusterId => "clusterId",
            Field::MaxBackupCount => "maxBackupCount",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with an input, located precisely enough to underline it.
///
/// `start..end` is a half-open span of *characters* (Unicode scalar values, what JavaScript's
/// `Array.from(text)` indexes) over the whole input string, so a form can mark the offending
/// characters even when the input holds non-ASCII text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub code: ErrorCode,
    pub field: Field,
    pub start: usize,
    pub end: usize,
    /// One sentence saying what is wrong and what to write instead.
    pub message: String,
}

impl FieldError {
    pub fn new(
        code: ErrorCode,
        field: Field,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            code,
            field,
            start: span.start,
            end: span.end,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, characters {}..{}): {}",
            self.field, self.code, self.start, self.end, self.message
        )
    }
}

impl std::error::Error for FieldError {}

/// Every problem found in one input, never only the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn codes(&self) -> Vec<ErrorCode> {
        self.0.iter().map(|e| e.code).collect()
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
