//! The one error shape every input check produces.
//!
//! A form has to underline the mistake, an API has to name the field and a CLI has to say
//! what to write instead, so an error is data (`code`, `field`, span, `message`) rather than
//! an opaque type. The JSON form of [`FieldError`] is part of the product contract (SPEC §2.2,
//! §3, §8) and is shared unchanged by the CLI, the HTTP API and the WebAssembly module.

use crate::prelude::*;
use alloc::collections::BTreeMap;

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
    /// A path that does not start at the root (`/`).
    NotAbsolute,
    /// Not an EBS volume id such as `vol-0abc123def4567890`.
    InvalidVolumeId,
    /// Not a region: an AWS region name for EBS, `local` (or nothing) for a directory.
    InvalidRegion,
    /// An EC2 instance tag that is not `KEY=VALUE`.
    InvalidInstanceTag,
    /// A lock operation name that backups and restores use for their own locks.
    ReservedOperation,
    /// Two fields given together where only one of them may be (volume ids and a tag).
    Conflicting,
    /// The value names something that does not exist, such as a cluster not registered in
    /// the project (found by the engine, which knows what is registered).
    NotFound,
}

impl ErrorCode {
    /// Every code, for documents that list them (the API's OpenAPI document).
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::Empty,
        ErrorCode::FieldCount,
        ErrorCode::Syntax,
        ErrorCode::OutOfRange,
        ErrorCode::InvalidRange,
        ErrorCode::InvalidStep,
        ErrorCode::Unsupported,
        ErrorCode::TooFrequent,
        ErrorCode::NeverRuns,
        ErrorCode::UnknownPlaceholder,
        ErrorCode::UnknownFormat,
        ErrorCode::Required,
        ErrorCode::TooLong,
        ErrorCode::InvalidValue,
        ErrorCode::NotAbsolute,
        ErrorCode::InvalidVolumeId,
        ErrorCode::InvalidRegion,
        ErrorCode::InvalidInstanceTag,
        ErrorCode::ReservedOperation,
        ErrorCode::Conflicting,
        ErrorCode::NotFound,
    ];

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
            ErrorCode::NotAbsolute => "not_absolute",
            ErrorCode::InvalidVolumeId => "invalid_volume_id",
            ErrorCode::InvalidRegion => "invalid_region",
            ErrorCode::InvalidInstanceTag => "invalid_instance_tag",
            ErrorCode::ReservedOperation => "reserved_operation",
            ErrorCode::Conflicting => "conflicting",
            ErrorCode::NotFound => "not_found",
        }
    }
}

/// Which part of the input an error concerns.
///
/// The schedule's five fields, the schedule as a whole, a backup description template, and
/// the fields of the create-job, register-cluster and lock-cluster requests. This names the
/// kind of value; the key of the API's `fields` map (a JSON path such as `data.clusterId`)
/// says where it sits in a request, so a cluster's own `id` is a [`Field::ClusterId`] too.
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
    /// A cluster's `description` in the register-cluster body.
    #[serde(rename = "clusterDescription")]
    ClusterDescription,
    /// A cluster's `region`.
    #[serde(rename = "region")]
    Region,
    /// A directory cluster's `path`.
    #[serde(rename = "path")]
    Path,
    /// An EBS cluster's `volumeIds` (a list, so its errors carry no span).
    #[serde(rename = "volumeIds")]
    VolumeIds,
    /// An EBS cluster's `instanceTag`.
    #[serde(rename = "instanceTag")]
    InstanceTag,
    /// A maintenance lock's `operation`.
    #[serde(rename = "operation")]
    Operation,
    /// A maintenance lock's `ttlSeconds` (a number, so its errors carry no span).
    #[serde(rename = "ttlSeconds")]
    TtlSeconds,
    /// A cluster's `serverVersion` in the register-cluster body.
    #[serde(rename = "serverVersion")]
    ServerVersion,
    /// A cluster's `serverVersionTag`.
    #[serde(rename = "serverVersionTag")]
    ServerVersionTag,
    /// A cluster's `nodeCount` (a number, so its errors carry no span).
    #[serde(rename = "nodeCount")]
    NodeCount,
    /// A restore's `sourceBackupId` in the register-cluster body.
    #[serde(rename = "sourceBackupId")]
    SourceBackupId,
    /// An EBS restore's `availabilityZone`.
    #[serde(rename = "availabilityZone")]
    AvailabilityZone,
    /// An EBS restore's `volumeType`.
    #[serde(rename = "volumeType")]
    VolumeType,
    /// A shell command of a cluster: `preHook`, `postHook`, `backupCommand`,
    /// `restoreCommand` (the key says which).
    #[serde(rename = "command")]
    Command,
    /// A `command` cluster's `runAs` user name.
    #[serde(rename = "runAs")]
    RunAs,
    /// A `command` cluster's `commandTimeoutSeconds` (a number, so no span).
    #[serde(rename = "commandTimeoutSeconds")]
    CommandTimeoutSeconds,
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
            Field::ClusterDescription => "clusterDescription",
            Field::Region => "region",
            Field::Path => "path",
            Field::VolumeIds => "volumeIds",
            Field::InstanceTag => "instanceTag",
            Field::Operation => "operation",
            Field::TtlSeconds => "ttlSeconds",
            Field::ServerVersion => "serverVersion",
            Field::ServerVersionTag => "serverVersionTag",
            Field::NodeCount => "nodeCount",
            Field::SourceBackupId => "sourceBackupId",
            Field::AvailabilityZone => "availabilityZone",
            Field::VolumeType => "volumeType",
            Field::Command => "command",
            Field::RunAs => "runAs",
            Field::CommandTimeoutSeconds => "commandTimeoutSeconds",
        }
    }
}

/// `Display` for an enum that names itself with `as_str`, so a code or field prints the same
/// in a message, a table and a log as in JSON.
macro_rules! display_as_str {
    ($($name:ty),+ $(,)?) => {$(
        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}
pub(crate) use display_as_str;

display_as_str!(ErrorCode, Field);

/// One problem with an input, located precisely enough to underline it.
///
/// `start..end` is a half-open span of *characters* (Unicode scalar values, what JavaScript's
/// `Array.from(text)` indexes) over the whole input string, so a form can mark the offending
/// characters even when the input holds non-ASCII text. A value that is not text (a count,
/// a TTL, a list of volume ids) or is missing altogether has the empty span `0..0`.
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
        span: core::ops::Range<usize>,
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

    /// `what` (say "A job description") is `n` characters where at most `max` fit: the span
    /// marks the excess, and the message says how many characters to remove.
    pub fn too_long(field: Field, what: &str, max: usize, n: usize) -> Self {
        FieldError::new(
            ErrorCode::TooLong,
            field,
            max..n,
            format!(
                "{what} is at most {max} characters; this one has {n}, so remove {} characters.",
                n - max
            ),
        )
    }
}

impl core::fmt::Display for FieldError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} ({}, characters {}..{}): {}",
            self.field, self.code, self.start, self.end, self.message
        )
    }
}

impl core::error::Error for FieldError {}

/// `items.join(separator)`, written by hand: the messages that list things share this one
/// function instead of linking `join`'s generic code into the WebAssembly module.
pub(crate) fn join(items: &[String], separator: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(item);
    }
    out
}

/// Every problem found in one input, never only the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn iter(&self) -> core::slice::Iter<'_, FieldError> {
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

impl core::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl core::error::Error for FieldErrors {}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = alloc::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Every problem with one request, keyed by the request field's JSON path (`schedule`,
/// `data.clusterId`, `volumeIds`, …), which is also the key of the API's `fields` map and
/// the web form's field name.
///
/// Serializes as a JSON object from key to the list of errors, each with the usual
/// `code`/`field`/span/`message`, so a form can underline inside the offending field.
///
/// Kept as a vector sorted by key, each key once: the order and the answers of a
/// `BTreeMap`, for the handful of keys a request has, without the B-tree's code in the
/// WebAssembly module (about 2.3 KB of it gzipped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(Vec<(String, Vec<FieldError>)>);

/// A JSON object from key to errors, in key order, as the `BTreeMap` it stands for.
impl Serialize for Problems {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, errors)| (key, errors)))
    }
}

impl Problems {
    /// Where `key` is, or where it would go to keep the keys sorted.
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The problems with one field, if any.
    pub fn get(&self, key: &str) -> Option<&[FieldError]> {
        let at = self.find(key).ok()?;
        self.0.get(at).map(|(_, errors)| errors.as_slice())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[FieldError])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// How many fields have problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_map(self) -> BTreeMap<String, Vec<FieldError>> {
        self.0.into_iter().collect()
    }

    /// One message per field, its problems' messages joined by a space: the RFC 7807
    /// `fields` map of a 400 answer.
    pub fn messages(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(key, errors)| {
                // Pushed one by one rather than `join`ed: the same text, without another copy
                // of `join` in the WebAssembly module.
                let mut joined = String::new();
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        joined.push(' ');
                    }
                    joined.push_str(&e.message);
                }
                (key.clone(), joined)
            })
            .collect()
    }

    /// Records `errors` under `key` (nothing when there are none).
    pub fn add(&mut self, key: &str, errors: impl IntoIterator<Item = FieldError>) {
        let mut errors = errors.into_iter().peekable();
        if errors.peek().is_some() {
            let at = match self.find(key) {
                Ok(at) => at,
                Err(at) => {
                    self.0.insert(at, (key.to_owned(), Vec::new()));
                    at
                }
            };
            if let Some((_, list)) = self.0.get_mut(at) {
                list.extend(errors);
            }
        }
    }

    /// The value when it is valid; otherwise records its problems under `key`.
    pub fn take<T>(&mut self, key: &str, checked: Result<T, FieldErrors>) -> Option<T> {
        match checked {
            Ok(value) => Some(value),
            Err(errors) => {
                self.add(key, errors);
                None
            }
        }
    }

    /// `Ok(())` when nothing was recorded, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Problems> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl core::fmt::Display for Problems {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, (key, message)) in self.messages().iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{key}: {message}")?;
        }
        Ok(())
    }
}

impl core::error::Error for Problems {}
