//! What each export does, in plain Rust: turn JavaScript's arguments into core types, call
//! the core, and shape the answer. Nothing here knows about `JsValue`, so it builds and is
//! tested on the host like any other crate.

use crate::prelude::*;
use alloc::collections::BTreeMap;

use backup_core::api::{ClusterTarget, RegisterClusterRequest};
use backup_core::check::{check_schedule, check_template, ScheduleCheck, TemplateCheck};
use backup_core::cluster::validate_cluster;
use backup_core::job::{
    validate_job, CreateJobRequest, JobProblems, ScheduledBackupData, MAX_CLUSTER_ID_CHARS,
    MAX_JOB_DESCRIPTION_CHARS,
};
use backup_core::retention::MaxBackupCount;
use backup_core::schedule::{MAX_SCHEDULE_CHARS, MIN_INTERVAL_MINUTES};
use backup_core::template::{RenderContext, MAX_TEMPLATE_CHARS};
use backup_core::Problems;
use chrono::{DateTime, Utc};
#[cfg(test)]
use serde::Serialize;

use crate::json::{self, Value, Writer};
use crate::rfc3339;

/// How many next runs `validateSchedule` lists when the caller does not say: the CLI's
/// `--count` default (SPEC §8).
pub const DEFAULT_NEXT_RUNS: u32 = 5;

/// JavaScript's `Date` covers ±8.64e15 ms around the epoch; nothing outside is an instant a
/// page can hold.
const MAX_EPOCH_MILLIS: f64 = 8.64e15;

/// An argument that does not have the documented type or range: a bug in the calling code,
/// thrown in JavaScript as a `TypeError` or a `RangeError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentError {
    Type(String),
    Range(String),
}

/// `validateSchedule`: the core's check, with runs listed after `after_epoch_millis`.
pub fn schedule(
    expr: &str,
    after_epoch_millis: f64,
    count: Option<u32>,
) -> Result<ScheduleCheck, ArgumentError> {
    let after = instant_from_millis(after_epoch_millis)?;
    let count = count.unwrap_or(DEFAULT_NEXT_RUNS);
    Ok(check_schedule(
        expr,
        after,
        usize::try_from(count).unwrap_or(usize::MAX),
    ))
}

/// `renderTemplate`: the core's preview, with the context given as JSON text.
pub fn template(template: &str, context_json: &str) -> Result<TemplateCheck, ArgumentError> {
    let context = json::parse(context_json)
        .and_then(render_context)
        .map_err(|e| {
            ArgumentError::Type(format!(
                "context must be {{clusterId, clusterDescription, clusterProvider, \
                 clusterRegion, index, datetime}} with datetime an RFC 3339 instant: {e}"
            ))
        })?;
    Ok(check_template(template, &context))
}

/// The JSON names of `RenderContext`'s fields, in declaration order.
const RENDER_CONTEXT_FIELDS: &[&str] = &[
    "clusterId",
    "clusterDescription",
    "clusterProvider",
    "clusterRegion",
    "index",
    "datetime",
];

/// Reads a `RenderContext` as its derive does (unknown keys ignored, every field required).
fn render_context(value: Value) -> Result<RenderContext, String> {
    let mut strings: [Option<String>; 4] = Default::default();
    let mut index = None;
    let mut datetime = None;
    json::fields(
        value,
        "RenderContext",
        RENDER_CONTEXT_FIELDS,
        false,
        |i, v| {
            match i {
                0..=3 => strings[i] = Some(json::string(v)?),
                4 => index = Some(json::u64(v)?),
                _ => {
                    let text = json::string(v)?;
                    let instant = rfc3339::parse(&text).map_err(|e| {
                        format!(
                        "datetime must be an RFC 3339 instant such as 2026-11-27T05:00:00Z ({e})"
                    )
                    })?;
                    datetime = Some(instant);
                }
            }
            Ok(())
        },
    )?;
    let [cluster_id, cluster_description, cluster_provider, cluster_region] = strings;
    let missing = |i: usize| json::missing_field(RENDER_CONTEXT_FIELDS[i]);
    Ok(RenderContext {
        cluster_id: cluster_id.ok_or_else(|| missing(0))?,
        cluster_description: cluster_description.ok_or_else(|| missing(1))?,
        cluster_provider: cluster_provider.ok_or_else(|| missing(2))?,
        cluster_region: cluster_region.ok_or_else(|| missing(3))?,
        index: index.ok_or_else(|| missing(4))?,
        datetime: datetime.ok_or_else(|| missing(5))?,
    })
}

/// The result of `validateJob`.
///
/// `problems` keeps every error with its span (for underlining inside a field); `fields` is
/// the core's one-message-per-field map, the same `fields` the API's RFC 7807 answer carries,
/// so a form can show a server's 400 and its own check the same way. `fields` is not kept
/// here but written from `problems` by [`request_json`]: building the map pulled a sort and
/// the map's own code into the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCheck {
    pub valid: bool,
    pub problems: Option<JobProblems>,
}

impl JobCheck {
    /// The API's `fields` map: each key's messages joined by a space.
    pub fn fields(&self) -> Option<BTreeMap<String, String>> {
        self.problems.as_ref().map(Problems::messages)
    }
}

/// The object `validateJob` returns, for the host tests to compare with `request_json`.
#[cfg(test)]
impl Serialize for JobCheck {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape<'a> {
            valid: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            problems: Option<&'a JobProblems>,
            #[serde(skip_serializing_if = "Option::is_none")]
            fields: Option<BTreeMap<String, String>>,
        }
        Shape {
            valid: self.valid,
            problems: self.problems.as_ref(),
            fields: self.fields(),
        }
        .serialize(s)
    }
}

/// `validateJob`: every problem of a create-job request given as JSON text.
pub fn job(request_json: &str) -> Result<JobCheck, ArgumentError> {
    let request = json::parse(request_json)
        .and_then(create_job_request)
        .map_err(|e| {
            ArgumentError::Type(format!(
                "request must be a create-job body {{description, schedule, type, data: \
                 {{clusterId, description, maxBackupCount}}}} with a whole-number \
                 maxBackupCount: {e}"
            ))
        })?;
    Ok(request_check(validate_job(&request)))
}

/// Reads a `CreateJobRequest` as its derive does: every field optional, unknown keys refused.
fn create_job_request(value: Value) -> Result<CreateJobRequest, String> {
    let mut request = CreateJobRequest::default();
    json::fields(
        value,
        "CreateJobRequest",
        &["description", "schedule", "type", "data"],
        true,
        |i, v| {
            match i {
                0 => request.description = json::opt_string(v)?,
                1 => request.schedule = json::opt_string(v)?,
                2 => request.job_type = json::opt_string(v)?,
                _ if matches!(v, Value::Null) => request.data = None,
                _ => {
                    let mut data = ScheduledBackupData::default();
                    json::fields(
                        v,
                        "ScheduledBackupData",
                        &["clusterId", "description", "maxBackupCount"],
                        true,
                        |i, v| {
                            match i {
                                0 => data.cluster_id = json::opt_string(v)?,
                                1 => data.description = json::opt_string(v)?,
                                _ => data.max_backup_count = json::opt_i64(v)?,
                            }
                            Ok(())
                        },
                    )?;
                    request.data = Some(data);
                }
            }
            Ok(())
        },
    )?;
    Ok(request)
}

/// The result of `validateCluster`: the shape of [`JobCheck`], keyed by the request's field
/// names (`id`, `path`, `volumeIds`, …).
pub type RequestCheck = JobCheck;

fn request_check<T>(checked: Result<T, Problems>) -> RequestCheck {
    match checked {
        Ok(_) => JobCheck {
            valid: true,
            problems: None,
        },
        Err(problems) => JobCheck {
            valid: false,
            problems: Some(problems),
        },
    }
}

/// `validateCluster`: every problem of a register-cluster request given as JSON text. The
/// path's shape only: whether the directory exists and is allowed is the server's to say.
pub fn cluster(request_json: &str) -> Result<RequestCheck, ArgumentError> {
    let request = json::parse(request_json)
        .and_then(register_cluster_request)
        .map_err(|e| {
            ArgumentError::Type(format!(
                "request must be a register-cluster body {{id, description, region?, \
                 serverVersion?, serverVersionTag?, nodeCount?, sourceBackupId?, \
                 availabilityZone?, volumeType?}} with provider \"directory\" {{path, preHook?, \
                 postHook?}}, \"command\" {{path, backupCommand, restoreCommand?, runAs?, \
                 commandTimeoutSeconds?}} or \"aws-ebs\" {{volumeIds?, instanceTag?}} (a \
                 restore may leave provider out): {e}"
            ))
        })?;
    Ok(request_check(validate_cluster(&request)))
}

/// `RegisterClusterRequest`'s own fields (all but the flattened target), by their JSON names
/// in declaration order.
const CLUSTER_FIELDS: &[&str] = &[
    "id",
    "description",
    "region",
    "serverVersion",
    "serverVersionTag",
    "nodeCount",
    "sourceBackupId",
    "availabilityZone",
    "volumeType",
];

/// `ClusterTarget`'s variants in declaration order (a variant's index is its number as
/// serde reads it), by the `provider` that names each.
const PROVIDERS: [&str; 3] = ["directory", "command", "aws-ebs"];

/// The JSON names of each `ClusterTarget` variant's fields, in declaration order.
const TARGET_FIELDS: [&[&str]; 3] = [
    &["path", "preHook", "postHook"],
    &[
        "path",
        "backupCommand",
        "restoreCommand",
        "runAs",
        "commandTimeoutSeconds",
    ],
    &["volumeIds", "instanceTag"],
];

/// Reads a `RegisterClusterRequest` as its `Deserialize` does: see [`read_cluster`].
fn register_cluster_request(value: Value) -> Result<RegisterClusterRequest, String> {
    let mut request = RegisterClusterRequest {
        id: String::new(),
        description: String::new(),
        region: None,
        target: ClusterTarget::directory(String::new()),
        server_version: None,
        server_version_tag: None,
        node_count: None,
        source_backup_id: None,
        availability_zone: None,
        volume_type: None,
    };
    read_cluster(&mut request, value)?;
    Ok(request)
}

/// Reads `value` into `request` as `RegisterClusterRequest`'s `Deserialize` does, step by
/// step, so that every JSON object is accepted or refused alike, with serde's message for
/// the first fault (a test holds it to the real thing):
///
/// 1. The body is read into a `serde_json::Map`: keys sorted, a repeated key's last value
///    kept, and a restore without `provider` given the one its fields imply.
/// 2. The derive of the struct, over the sorted keys: its own fields are read as they come,
///    the others kept for the flattened target; then `id` and `description` must be there.
/// 3. The internally tagged target: `provider` names the variant (by name, or by its index
///    as a whole number), whose fields are read in key order with unknown ones refused;
///    then its required fields must be there.
///
/// Nothing but `provider` can be refused before the struct's own checks are done, so it is
/// set apart while the keys are read and only looked at in step 3.
///
/// The request is the caller's, so that a refusal leaves one thing to drop: the module holds
/// that clean-up once instead of at every place a body can be refused.
fn read_cluster(request: &mut RegisterClusterRequest, value: Value) -> Result<(), String> {
    use ClusterTarget::{AwsEbs, Command, Directory};
    let Value::Object(mut map) = value else {
        return Err(json::invalid_type(&value, "a map"));
    };
    // In key order: each time the smallest key after the last one read, of a repeated key
    // the last written (a body has a handful of keys, so this costs nothing and links no
    // sort). The target's fields are kept in that order, `provider` apart.
    let mut seen = 0;
    let mut target = Vec::new();
    let mut provider = None;
    let mut last: Option<usize> = None;
    while let Some(at) = (0..map.len())
        .rev()
        .filter(|&i| last.is_none_or(|l| map[i].0 > map[l].0))
        .min_by(|&a, &b| map[a].0.cmp(&map[b].0))
    {
        last = Some(at);
        let (key, v) = &mut map[at];
        let v = core::mem::replace(v, Value::Null);
        let r = &mut *request;
        let field = CLUSTER_FIELDS.iter().position(|f| f == key);
        seen |= field.map_or(0, |i| 1 << i);
        // Each kind of value is read in one place, into the field chosen first.
        let text = match field {
            None if key == "provider" => {
                provider = Some(v);
                continue;
            }
            None => {
                target.push((key.clone(), v));
                continue;
            }
            Some(5) => {
                r.node_count = json::opt_u32(v)?;
                continue;
            }
            Some(i @ (0 | 1)) => {
                *[&mut r.id, &mut r.description][i] = json::string(v)?;
                continue;
            }
            Some(2) => &mut r.region,
            Some(3) => &mut r.server_version,
            Some(4) => &mut r.server_version_tag,
            Some(6) => &mut r.source_backup_id,
            Some(7) => &mut r.availability_zone,
            Some(_) => &mut r.volume_type,
        };
        *text = json::opt_string(v)?;
    }
    for (i, name) in ["id", "description"].into_iter().enumerate() {
        if seen & (1 << i) == 0 {
            return Err(json::missing_field(name));
        }
    }

    let variant = match provider {
        // A restore (`sourceBackupId`, null or not) that left `provider` out: `aws-ebs` with
        // `availabilityZone` or `volumeType`, `directory` otherwise, as the API fills it in.
        // (Bits 6, 7 and 8 of `seen`, as in `CLUSTER_FIELDS`.)
        None if seen & 1 << 6 != 0 => usize::from(seen & (1 << 7 | 1 << 8) != 0) * 2,
        None => return Err(json::missing_field("provider")),
        Some(Value::String(name)) => PROVIDERS
            .iter()
            .position(|p| *p == name)
            .ok_or_else(|| json::unknown("variant", &name, &PROVIDERS))?,
        Some(Value::Unsigned(n)) if n < 3 => n as usize,
        Some(n @ Value::Unsigned(_)) => {
            return Err(json::invalid_value(&n, "variant index 0 <= i < 3"))
        }
        Some(other) => return Err(json::invalid_type(&other, "variant identifier")),
    };
    request.target = match variant {
        0 => ClusterTarget::directory(String::new()),
        1 => Command {
            path: String::new(),
            backup_command: String::new(),
            restore_command: None,
            run_as: None,
            command_timeout_seconds: None,
        },
        _ => AwsEbs {
            volume_ids: Vec::new(),
            instance_tag: None,
        },
    };
    let fields = TARGET_FIELDS[variant];
    let mut seen = 0;
    json::fields(
        Value::Object(target),
        "ClusterTarget",
        fields,
        true,
        |i, v| {
            seen |= 1 << i;
            let text = match (&mut request.target, i) {
                (AwsEbs { volume_ids, .. }, 0) => {
                    *volume_ids = json::strings(v)?;
                    return Ok(());
                }
                (
                    Command {
                        command_timeout_seconds: seconds,
                        ..
                    },
                    4,
                ) => {
                    *seconds = json::opt_u64(v)?;
                    return Ok(());
                }
                (Directory { path, .. } | Command { path, .. }, 0)
                | (
                    Command {
                        backup_command: path,
                        ..
                    },
                    1,
                ) => {
                    *path = json::string(v)?;
                    return Ok(());
                }
                (Directory { pre_hook: text, .. }, 1)
                | (
                    Directory {
                        post_hook: text, ..
                    },
                    _,
                )
                | (
                    Command {
                        restore_command: text,
                        ..
                    },
                    2,
                )
                | (Command { run_as: text, .. }, _)
                | (
                    AwsEbs {
                        instance_tag: text, ..
                    },
                    _,
                ) => text,
            };
            *text = json::opt_string(v)?;
            Ok(())
        },
    )?;
    // `path` of a directory or command cluster, then a command cluster's `backupCommand`.
    for (i, name) in fields.iter().enumerate().take([1, 2, 0][variant]) {
        if seen & (1 << i) == 0 {
            return Err(json::missing_field(name));
        }
    }
    Ok(())
}

/// The core's limits, by the names a form uses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize), serde(rename_all = "camelCase"))]
pub struct Limits {
    pub max_job_description_chars: usize,
    pub max_cluster_id_chars: usize,
    pub max_template_chars: usize,
    pub max_schedule_chars: usize,
    pub min_backup_count: u32,
    pub max_backup_count: u32,
    pub min_interval_minutes: u32,
    pub max_next_runs: usize,
}

pub fn limits() -> Limits {
    Limits {
        max_job_description_chars: MAX_JOB_DESCRIPTION_CHARS,
        max_cluster_id_chars: MAX_CLUSTER_ID_CHARS,
        max_template_chars: MAX_TEMPLATE_CHARS,
        max_schedule_chars: MAX_SCHEDULE_CHARS,
        min_backup_count: MaxBackupCount::MIN,
        max_backup_count: MaxBackupCount::MAX,
        min_interval_minutes: MIN_INTERVAL_MINUTES,
        max_next_runs: backup_core::check::MAX_NEXT_RUNS,
    }
}

/// `validateSchedule`'s object as JSON text, keys in the order of the core's derive.
pub fn schedule_json(check: &ScheduleCheck) -> String {
    let mut w = Writer::default();
    w.open();
    w.key("valid");
    w.bool(check.valid);
    w.key("schedule");
    w.string(&check.schedule);
    if let Some(description) = &check.description {
        w.key("description");
        w.string(description);
    }
    if let Some(eventbridge) = &check.eventbridge {
        w.key("eventbridge");
        w.strings(eventbridge);
    }
    if let Some(minutes) = check.min_interval_minutes {
        w.key("minIntervalMinutes");
        w.number(minutes.into());
    }
    if let Some(next) = &check.next {
        w.key("next");
        w.strings(next);
    }
    if let Some(errors) = &check.errors {
        w.key("errors");
        w.errors(errors);
    }
    w.close();
    w.out
}

/// `renderTemplate`'s object as JSON text.
pub fn template_json(check: &TemplateCheck) -> String {
    let mut w = Writer::default();
    w.open();
    w.key("valid");
    w.bool(check.valid);
    if let Some(rendered) = &check.rendered {
        w.key("rendered");
        w.string(rendered);
    }
    if let Some(errors) = &check.errors {
        w.key("errors");
        w.errors(errors);
    }
    w.close();
    w.out
}

/// `validateJob`'s and `validateCluster`'s object as JSON text (map keys sorted, as the
/// core's `BTreeMap`s iterate).
pub fn request_json(check: &RequestCheck) -> String {
    let mut w = Writer::default();
    w.open();
    w.key("valid");
    w.bool(check.valid);
    if let Some(problems) = &check.problems {
        w.key("problems");
        w.open();
        for (key, errors) in problems.iter() {
            w.key(key);
            w.errors(errors);
        }
        w.close();
        // `Problems::messages`, written as it is built.
        w.key("fields");
        w.open();
        for (key, errors) in problems.iter() {
            w.key(key);
            w.out.push('"');
            for (i, e) in errors.iter().enumerate() {
                if i > 0 {
                    w.out.push(' ');
                }
                w.escaped(&e.message);
            }
            w.out.push('"');
        }
        w.close();
    }
    w.close();
    w.out
}

/// `limits()`'s object as JSON text.
pub fn limits_json(limits: &Limits) -> String {
    let mut w = Writer::default();
    w.open();
    for (key, value) in [
        (
            "maxJobDescriptionChars",
            limits.max_job_description_chars as u64,
        ),
        ("maxClusterIdChars", limits.max_cluster_id_chars as u64),
        ("maxTemplateChars", limits.max_template_chars as u64),
        ("maxScheduleChars", limits.max_schedule_chars as u64),
        ("minBackupCount", limits.min_backup_count.into()),
        ("maxBackupCount", limits.max_backup_count.into()),
        ("minIntervalMinutes", limits.min_interval_minutes.into()),
        ("maxNextRuns", limits.max_next_runs as u64),
    ] {
        w.key(key);
        w.number(value);
    }
    w.close();
    w.out
}

/// Whole milliseconds since the epoch (fractions are dropped, as `new Date(ms)` does) as a UTC
/// instant.
pub fn instant_from_millis(millis: f64) -> Result<DateTime<Utc>, ArgumentError> {
    let out_of_range = || {
        ArgumentError::Range(format!(
            "afterEpochMillis must be a finite number of milliseconds since the Unix epoch, \
             such as Date.now(); {} is not",
            show_number(millis)
        ))
    };
    if !millis.is_finite() || millis.abs() > MAX_EPOCH_MILLIS {
        return Err(out_of_range());
    }
    // In range and finite: `as` truncates toward zero, as `new Date(ms)` does.
    DateTime::from_timestamp_millis(millis as i64).ok_or_else(out_of_range)
}

/// `millis` as Rust's `Display` for `f64` writes it (`NaN`, `inf`, `-inf`, or the shortest
/// digits that round-trip, padded with zeros, without an exponent). In the module this asks
/// JavaScript for the digits instead: Rust's float formatting alone is about 10 KB of
/// WebAssembly, here only for an error message. Both choose the shortest round-trip digits.
#[cfg(not(target_arch = "wasm32"))]
fn show_number(millis: f64) -> String {
    millis.to_string()
}

#[cfg(target_arch = "wasm32")]
fn show_number(millis: f64) -> String {
    if millis.is_nan() {
        return "NaN".into();
    }
    if millis.is_infinite() {
        return if millis < 0.0 { "-inf" } else { "inf" }.into();
    }
    let text: String = js_sys::Number::from(millis)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_default();
    expand_exponent(&text)
}

/// `-1.5e+300` (JavaScript's `Number.prototype.toString` for 1e21 and above) as `-15` and 299
/// zeros; any other text unchanged. Only whole numbers reach this (the range check refuses
/// every fraction), so a negative exponent never occurs.
pub fn expand_exponent(text: &str) -> String {
    // Byte searches for one character: a `&str` pattern would link a substring searcher.
    // `split_once` rather than indexing, which links the slicing panic's formatting.
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return text.to_owned();
    };
    // `u64`, the type the JSON reader parses too: one integer parser in the module.
    let Ok(exponent) = exponent.trim_start_matches('+').parse::<u64>() else {
        return text.to_owned();
    };
    let mut out: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digits = out.trim_start_matches('-').len() as u64;
    for _ in digits..=exponent {
        out.push('0');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SEED_JSON: &str = r#"{"description":"My Hourly Backup","schedule":"0 */1 * * *","type":"ScheduledBackup","data":{"clusterId":"c196ogto0aeqohe3ommq","description":"{cluster} Hourly Backup {datetime:RFC3339}","maxBackupCount":2}}"#;

    fn millis(rfc3339: &str) -> f64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis() as f64
    }

    #[test]
    fn a_schedule_check_is_the_cli_object() {
        // GIVEN the instant the CLI would get as --after WHEN checked through the wasm path
        let after = Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).unwrap();
        let ours = schedule("0 12 * * 1", millis("2026-11-27T06:00:00Z"), None).unwrap();
        // THEN it is the core's object with the CLI's default count
        assert_eq!(ours, check_schedule("0 12 * * 1", after, 5));
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            r#"{"valid":true,"schedule":"0 12 * * 1","description":"At 12:00 on Monday","eventbridge":["cron(0 12 ? * MON *)"],"minIntervalMinutes":10080,"next":["2026-11-30T12:00:00Z","2026-12-07T12:00:00Z","2026-12-14T12:00:00Z","2026-12-21T12:00:00Z","2026-12-28T12:00:00Z"]}"#
        );
    }

    #[test]
    fn runs_are_listed_strictly_after_the_instant_to_the_millisecond() {
        // GIVEN an instant one millisecond before a firing THEN that firing is the first run
        let check = schedule("0 * * * *", millis("2026-01-01T00:59:59.999Z"), Some(1)).unwrap();
        assert_eq!(check.next.unwrap(), ["2026-01-01T01:00:00Z"]);
        // AND fractions of a millisecond are dropped like `new Date(ms)` does
        let check = schedule("0 * * * *", millis("2026-01-01T01:00:00Z") + 0.9, Some(1)).unwrap();
        assert_eq!(check.next.unwrap(), ["2026-01-01T02:00:00Z"]);
    }

    #[test]
    fn a_count_is_capped_like_the_cli() {
        let check = schedule("0 * * * *", 0.0, Some(u32::MAX)).unwrap();
        assert_eq!(check.next.unwrap().len(), backup_core::check::MAX_NEXT_RUNS);
        let check = schedule("0 * * * *", 0.0, Some(0)).unwrap();
        assert_eq!(check.next.unwrap().len(), 0);
    }

    #[test]
    fn an_instant_that_is_not_a_date_is_a_range_error() {
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            8.64e15 + 1.0,
            -1e300,
        ] {
            match schedule("0 * * * *", bad, None) {
                Err(ArgumentError::Range(message)) => {
                    assert!(message.contains("Date.now()"), "{message}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        // JavaScript's Date reaches a little further than chrono (±273,790 years against
        // ±262,143): the instants in between are refused, not wrapped.
        assert!(matches!(
            instant_from_millis(8.6e15),
            Err(ArgumentError::Range(_))
        ));
        // AND the far future chrono holds lists what it can without panicking.
        let far = schedule("0 * * * *", 8.2e15, Some(3)).unwrap();
        assert!(far.valid);
    }

    #[test]
    fn an_invalid_schedule_is_a_value_not_an_exception() {
        let check = schedule("*/30 * * * *", 0.0, None).unwrap();
        assert!(!check.valid);
        let errors = check.errors.unwrap();
        assert_eq!(
            (errors[0].code.as_str(), errors[0].start, errors[0].end),
            ("too_frequent", 0, 4)
        );
    }

    #[test]
    fn a_template_renders_with_a_json_context() {
        let context = r#"{"clusterId":"c1","clusterDescription":"Orders","clusterProvider":"directory","clusterRegion":"local","index":255,"datetime":"2026-11-27T05:00:00.000Z"}"#;
        let check = template("{cluster} #{index:hex} {datetime:json}", context).unwrap();
        assert_eq!(
            serde_json::to_string(&check).unwrap(),
            r#"{"valid":true,"rendered":"Orders #ff 2026-11-27T05:00:00.000Z"}"#
        );
    }

    #[test]
    fn a_context_of_the_wrong_shape_is_a_type_error() {
        for bad in [
            r#"{}"#,
            r#"{"clusterId":"c1","clusterDescription":"d","clusterProvider":"p","clusterRegion":"r","index":1,"datetime":"yesterday"}"#,
            r#"{"clusterId":"c1","clusterDescription":"d","clusterProvider":"p","clusterRegion":"r","index":-1,"datetime":"2026-11-27T05:00:00Z"}"#,
        ] {
            assert!(
                matches!(template("{index}", bad), Err(ArgumentError::Type(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_seed_request_is_valid() {
        assert_eq!(
            serde_json::to_string(&job(SEED_JSON).unwrap()).unwrap(),
            r#"{"valid":true}"#
        );
    }

    #[test]
    fn every_problem_is_keyed_by_field_with_the_api_messages_beside() {
        // GIVEN a request where three fields are wrong
        let check = job(r#"{"description":"","schedule":"*/30 * * * *","data":{"clusterId":"c1","description":"{foo}","maxBackupCount":2}}"#).unwrap();
        // THEN each is keyed by its JSON path, with spans, and flattened like the API's 400
        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(json["valid"], false);
        let keys: Vec<&String> = json["problems"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["data.description", "description", "schedule"]);
        assert_eq!(json["problems"]["schedule"][0]["code"], "too_frequent");
        assert_eq!(json["problems"]["data.description"][0]["start"], 0);
        assert_eq!(json["problems"]["data.description"][0]["end"], 5);
        let problems = check.problems.clone().unwrap();
        assert_eq!(check.fields().unwrap(), problems.messages());
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_a_type_error() {
        for bad in [
            r#"{"schedul":"0 * * * *"}"#,
            r#"{"data":{"maxBackupCount":2.5}}"#,
            r#"{"data":{"maxBackupCount":"2"}}"#,
        ] {
            match job(bad) {
                Err(ArgumentError::Type(message)) => {
                    assert!(message.starts_with("request must be"), "{message}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_are_the_cores() {
        let json = serde_json::to_string(&limits()).unwrap();
        assert_eq!(
            json,
            r#"{"maxJobDescriptionChars":256,"maxClusterIdChars":64,"maxTemplateChars":256,"maxScheduleChars":1024,"minBackupCount":1,"maxBackupCount":1000,"minIntervalMinutes":60,"maxNextRuns":1000}"#
        );
    }

    #[test]
    fn a_cluster_is_checked_like_the_api_checks_it() {
        assert_eq!(
            serde_json::to_string(
                &cluster(r#"{"id":"c1","description":"Orders","provider":"directory","path":"/var/lib/db"}"#)
                    .unwrap()
            )
            .unwrap(),
            r#"{"valid":true}"#
        );
        let check = cluster(
            r#"{"id":"a b","description":"EBS","provider":"aws-ebs","region":"eu-west-1","volumeIds":["volume-1"]}"#,
        )
        .unwrap();
        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(json["valid"], false);
        assert_eq!(json["problems"]["id"][0]["code"], "invalid_value");
        assert_eq!(json["problems"]["id"][0]["start"], 1);
        assert_eq!(
            json["problems"]["volumeIds"][0]["code"],
            "invalid_volume_id"
        );
        assert_eq!(
            json["fields"]["volumeIds"],
            "`volume-1` is not an EBS volume id such as vol-0abc123def4567890."
        );
        assert!(matches!(
            cluster(r#"{"id":"c1","description":"d","provider":"floppy"}"#),
            Err(ArgumentError::Type(_))
        ));
    }

    /// A `serde_json` message without its ` at line L column C` suffix, which the hand-written
    /// readers do not add.
    fn without_position(message: &str) -> String {
        match message.rfind(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message.to_owned(),
        }
    }

    #[test]
    fn a_create_job_body_is_read_as_the_derive_reads_it() {
        let by_hand = |text: &str| json::parse(text).and_then(create_job_request);
        let derived = |text: &str| {
            serde_json::from_str::<CreateJobRequest>(text)
                .map_err(|e| without_position(&e.to_string()))
        };
        for text in [
            SEED_JSON,
            r#"{}"#,
            r#"{"description":null,"schedule":null,"type":null,"data":null}"#,
            r#"{"type":"ScheduledBackup","data":{}}"#,
            r#"{"schedul":"0 * * * *"}"#,
            r#"{"data":{"maxBackupCnt":2}}"#,
            r#"{"data":{"maxBackupCount":2.5}}"#,
            r#"{"data":{"maxBackupCount":"2"}}"#,
            r#"{"data":{"maxBackupCount":-3}}"#,
            r#"{"data":{"maxBackupCount":9223372036854775807}}"#,
            r#"{"data":{"maxBackupCount":9223372036854775808}}"#,
            r#"{"data":{"maxBackupCount":-9223372036854775808}}"#,
            r#"{"data":{"maxBackupCount":true}}"#,
            r#"{"data":"c1"}"#,
            r#"{"data":{"clusterId":1}}"#,
            r#"{"data":{"clusterId":"a","clusterId":"b"}}"#,
            r#"{"schedule":"a","schedule":"b"}"#,
            r#"{"description":["x"]}"#,
            r#"{"description":{"a":1}}"#,
            r#"{"data":{"description":"{cluster}"},"extra":1}"#,
        ] {
            assert_eq!(by_hand(text), derived(text), "{text}");
        }
    }

    #[test]
    fn integers_are_read_with_the_distinctions_serde_makes() {
        use json::Value::{Float, Signed, Unsigned};
        for (text, value) in [
            ("0", Unsigned(0)),
            ("18446744073709551615", Unsigned(u64::MAX)),
            ("18446744073709551616", Float("18446744073709551616".into())),
            ("-0", Signed(0)),
            ("-1", Signed(-1)),
            ("-9223372036854775808", Signed(i64::MIN)),
            ("-9223372036854775809", Float("-9223372036854775809".into())),
            ("--1", Float("--1".into())),
            ("1-", Float("1-".into())),
        ] {
            assert_eq!(json::parse(text), Ok(value), "{text}");
        }
    }

    #[test]
    fn a_render_context_is_read_as_the_derive_reads_it() {
        let by_hand = |text: &str| json::parse(text).and_then(render_context);
        let derived = |text: &str| {
            serde_json::from_str::<RenderContext>(text)
                .map_err(|e| without_position(&e.to_string()))
        };
        for text in [
            r#"{"clusterId":"c1","clusterDescription":"Orders","clusterProvider":"directory","clusterRegion":"local","index":255,"datetime":"2026-11-27T05:00:00.000Z"}"#,
            r#"{"datetime":"2026-11-27T05:00:00+02:00","index":0,"clusterRegion":"r","clusterProvider":"p","clusterDescription":"d","clusterId":"c","other":[1]}"#,
            r#"{"clusterId":"c1","clusterDescription":"d","clusterProvider":"p","clusterRegion":"r","index":1,"datetime":"yesterday"}"#,
            r#"{"clusterId":"c1","clusterDescription":"d","clusterProvider":"p","clusterRegion":"r","index":-1,"datetime":"2026-11-27T05:00:00Z"}"#,
            r#"{"clusterId":"c1","clusterDescription":"d","clusterProvider":"p","clusterRegion":"r","index":1.5,"datetime":"2026-11-27T05:00:00Z"}"#,
            r#"{"clusterId":"c1","clusterDescription":"d","clusterProvider":"p","clusterRegion":"r","index":1}"#,
            r#"{"clusterId":"c1","clusterId":"c2"}"#,
            r#"{"clusterId":null}"#,
            r#"{}"#,
        ] {
            assert_eq!(by_hand(text), derived(text), "{text}");
        }
    }

    #[test]
    fn results_are_written_as_serde_writes_them() {
        let after = chrono::Utc.with_ymd_and_hms(2026, 11, 27, 6, 0, 0).unwrap();
        for expr in [
            "0 12 * * 1",
            "*/30 * * * *",
            "",
            "0 0 31 2 *",
            "\"\\\n\u{1}é",
        ] {
            let check = check_schedule(expr, after, 3);
            assert_eq!(
                schedule_json(&check),
                serde_json::to_string(&check).unwrap()
            );
        }
        let context = json::parse(r#"{"clusterId":"c\"1","clusterDescription":"Or\\ders","clusterProvider":"directory","clusterRegion":"local","index":255,"datetime":"2026-11-27T05:00:00.000Z"}"#)
            .and_then(render_context)
            .unwrap();
        for text in ["{cluster} #{index:hex}", "{nope} {", "{cluster:id}\t"] {
            let check = check_template(text, &context);
            assert_eq!(
                template_json(&check),
                serde_json::to_string(&check).unwrap()
            );
        }
        for body in [
            SEED_JSON,
            r#"{"description":"","schedule":"*/30 * * * *","data":{"clusterId":"c 1","description":"{foo}","maxBackupCount":0}}"#,
        ] {
            let check = job(body).unwrap();
            assert_eq!(request_json(&check), serde_json::to_string(&check).unwrap());
        }
        let check = cluster(r#"{"id":"a b","description":"","provider":"aws-ebs","volumeIds":["x"],"instanceTag":"k"}"#).unwrap();
        assert_eq!(request_json(&check), serde_json::to_string(&check).unwrap());
        assert_eq!(
            limits_json(&limits()),
            serde_json::to_string(&limits()).unwrap()
        );
    }

    #[test]
    fn an_exponent_is_written_out_as_rust_writes_it() {
        for x in [
            8.64e15 + 1.0,
            -1e300,
            1e21,
            1.5e22,
            f64::MAX,
            -9.007199254740993e15,
        ] {
            // What JavaScript's Number.prototype.toString writes for x.
            let js = format!("{x:e}").replace('e', "e+");
            let js = if x.abs() < 1e21 { x.to_string() } else { js };
            assert_eq!(expand_exponent(&js), x.to_string(), "{js}");
        }
        assert_eq!(expand_exponent("NaN"), "NaN");
    }

    /// The flat reading of a register-cluster body, beside the API's own: `RegisterClusterRequest`'s
    /// `Deserialize` (its serde derive behind the `serde_json::Map` that fills in a restore's
    /// provider), as `serde_json::from_str` runs it on a request's body.
    fn both_readings(
        json: &str,
    ) -> (
        Result<RegisterClusterRequest, String>,
        Result<RegisterClusterRequest, String>,
    ) {
        let by_hand = json::parse(json).and_then(register_cluster_request);
        let derived = serde_json::from_str::<RegisterClusterRequest>(json)
            .map_err(|e| without_position(&e.to_string()));
        (by_hand, derived)
    }

    #[test]
    fn the_cluster_body_is_read_as_the_api_reads_it() {
        for json in [
            // Each provider, its optional fields present, null or left out.
            r#"{"id":"c1","description":"Orders","provider":"directory","path":"/var/lib/db"}"#,
            r#"{"id":"c1","description":"d","region":null,"provider":"directory","path":"/a","preHook":null,"postHook":null}"#,
            r#"{"id":"c1","description":"d","region":"local","provider":"directory","path":"/a","preHook":"sync","postHook":"echo done"}"#,
            r#"{"provider":"aws-ebs","id":"c2","description":"EBS","region":"eu-west-1","volumeIds":["vol-0abc123d"],"instanceTag":null}"#,
            r#"{"id":"c2","description":"EBS","provider":"aws-ebs","instanceTag":"k=v","volumeIds":[]}"#,
            r#"{"id":"c2","description":"EBS","provider":"aws-ebs"}"#,
            r#"{"id":"pg","description":"PostgreSQL","provider":"command","path":"/var/lib/postgresql/16/main","backupCommand":"pg_basebackup -D \"$BACKUP_DIR\" -Ft -z","restoreCommand":"tar -xzf \"$BACKUP_DIR/base.tar.gz\" -C \"$TARGET_DIR\"","runAs":"postgres","commandTimeoutSeconds":7200}"#,
            r#"{"id":"pg","description":"d","provider":"command","path":"/a","backupCommand":"b","restoreCommand":null,"runAs":null,"commandTimeoutSeconds":null}"#,
            r#"{"id":"pg","description":"d","provider":"command","path":"/a","backupCommand":"b","commandTimeoutSeconds":0}"#,
            r#"{"id":"pg","description":"d","provider":"command","path":"/a","backupCommand":"b","commandTimeoutSeconds":18446744073709551615}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","serverVersion":"23.10.1","serverVersionTag":"23.10.1-jammy","nodeCount":3}"#,
            r#"{"id":"c1","description":"d","provider":"directory","serverVersion":null,"nodeCount":null,"path":"/a"}"#,
            // Restores: with a provider, or with the one their fields imply.
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","path":"/srv/restored"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","availabilityZone":"eu-west-1a"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","volumeType":"io2"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","availabilityZone":"eu-west-1a","volumeType":"gp3","region":"eu-west-1"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","provider":"aws-ebs","availabilityZone":"eu-west-1a"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","provider":"command","path":"/a","backupCommand":"b"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","path":"/a","preHook":"sync"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","backupCommand":"b","path":"/a"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","availabilityZone":"eu-west-1a","path":"/a"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq","volumeIds":["vol-0abc123d"]}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":"c196ogto0aeqohe3ommq"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":null,"path":"/a"}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":null,"availabilityZone":null}"#,
            r#"{"id":"r1","description":"d","sourceBackupId":1,"volumeType":"gp3"}"#,
            r#"{"id":"r1","description":"d","availabilityZone":"eu-west-1a"}"#,
            r#"{"id":"r1","description":"d","provider":"directory","path":"/a","availabilityZone":"eu-west-1a","volumeType":"gp3"}"#,
            r#"{"id":"r1","description":"d","provider":"directory","path":"/a","availabilityZone":5}"#,
            r#"{"id":"r1","description":"d","provider":"aws-ebs","volumeType":["gp3"]}"#,
            // Missing fields, in the order the derive checks them.
            r#"{}"#,
            r#"{"id":"c1"}"#,
            r#"{"description":"d","provider":"floppy"}"#,
            r#"{"id":"c1","provider":"floppy"}"#,
            r#"{"id":"c1","description":"d"}"#,
            r#"{"id":"c1","description":"d","provider":"directory"}"#,
            r#"{"id":"c1","description":"d","provider":"command"}"#,
            r#"{"id":"c1","description":"d","provider":"command","backupCommand":"b"}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","restoreCommand":"r"}"#,
            // Providers: by name, by variant index, or neither.
            r#"{"id":"c1","description":"d","provider":"floppy","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"Directory","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"a`b","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":0,"path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":1,"path":"/a","backupCommand":"b"}"#,
            r#"{"id":"c1","description":"d","provider":2,"volumeIds":["vol-0abc123d"]}"#,
            r#"{"id":"c1","description":"d","provider":3,"path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":18446744073709551615,"path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":-1,"path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":1.5,"path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":null,"path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":true,"path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":["directory"],"path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":{},"path":"/a"}"#,
            // Fields of another provider, or of none, are unknown to the target.
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","foo":1}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","Path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","backupCommand":"b"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","volumeIds":[]}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","target":{}}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":"b","preHook":"x"}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":"b","instanceTag":"k=v"}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","preHook":"x"}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","foo":1}"#,
            r#"{"id":"c1","description":"d","provider":"floppy","foo":1}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","x`y":1}"#,
            // Wrong types, of the struct's fields and of the target's.
            r#"{"id":1,"description":"d","provider":"directory"}"#,
            r#"{"id":null,"description":"d","provider":"directory"}"#,
            r#"{"id":true,"description":"d","provider":"directory"}"#,
            r#"{"id":{},"description":"d","provider":"directory"}"#,
            r#"{"id":"c1","description":["d"],"provider":"directory"}"#,
            r#"{"id":"c1","description":"d","region":1,"provider":"floppy"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":null}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":7}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","preHook":false}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","postHook":["sync"]}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":null}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":"b","runAs":0}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":"b","restoreCommand":{}}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":"b","commandTimeoutSeconds":-1}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":"b","commandTimeoutSeconds":1.5}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":"b","commandTimeoutSeconds":"60"}"#,
            r#"{"id":"c1","description":"d","provider":"command","path":"/a","backupCommand":"b","commandTimeoutSeconds":-9223372036854775808}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","volumeIds":null}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","volumeIds":"vol-1"}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","volumeIds":[1]}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","volumeIds":["vol-1",null]}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","instanceTag":false}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","nodeCount":-1}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","nodeCount":"3"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","nodeCount":4294967296}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","nodeCount":1.5}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","nodeCount":1e+300}"#,
            // Several faults: the first in the derive's order (keys sorted, the struct's
            // own fields before the target's), whatever order they were written in.
            r#"{"id":1,"description":2,"provider":"directory","path":"/a"}"#,
            r#"{"zzz":1,"id":"c1","description":"d","provider":"floppy"}"#,
            r#"{"aaa":1,"id":"c1","description":"d","provider":"directory","path":1}"#,
            r#"{"path":1,"aaa":1,"id":"c1","description":"d","provider":"directory"}"#,
            r#"{"volumeType":1,"provider":"floppy","id":"c1"}"#,
            r#"{"provider":"command","runAs":1,"commandTimeoutSeconds":-1,"id":"c1","description":"d"}"#,
            r#"{"provider":"command","restoreCommand":1,"backupCommand":2,"id":"c1","description":"d"}"#,
            r#"{"foo":1,"provider":null,"id":"c1","description":"d"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","nodeCount":-1}"#,
            // A repeated key: the last one is read, as a `serde_json::Map` keeps it.
            r#"{"id":1,"id":"c1","description":"d","provider":"directory","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","path":"/b"}"#,
            r#"{"id":"c1","description":"d","provider":"floppy","provider":"directory","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","provider":"floppy","path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","nodeCount":1,"nodeCount":"2"}"#,
            // Escapes, in values and in keys.
            r#"{"id":"c\u0031","description":"\"x\"","provider":"directory","path":"/"}"#,
            r#"{"id":"c1","description":"d\n\"\\\u00e9\ud83d\ude00","provider":"directory","path":"/a"}"#,
            r#"{"\u0069d":"c1","description":"d","pro\u0076ider":"comm\u0061nd","path":"/a","backupCommand":"b"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","\u00e9":1}"#,
            // Text copied between escapes, unescaped characters of every UTF-8 length.
            r#"{"id":"c1","description":"é\"ß\"バックアップ🙂\\\u00e9x🙂","provider":"directory","path":"/é"}"#,
            // Not an object.
            r#"[1]"#,
            r#""c1""#,
            r#"null"#,
            r#"3"#,
        ] {
            let (by_hand, derived) = both_readings(json);
            assert_eq!(by_hand, derived, "{json}");
        }
        // Not the same for text that is not JSON, which `JSON.stringify` never writes: both
        // refuse it, in their own words.
        for bad in [
            r#"{"id":"c1","#,
            "",
            "nul",
            r#"{"a" 1}"#,
            "[1,]",
            r#""\ud800""#,
        ] {
            let (by_hand, derived) = both_readings(bad);
            assert!(by_hand.is_err() && derived.is_err(), "{bad}");
        }
    }

    /// Numbers from xorshift64*, so the generated bodies are the same on every run.
    struct Draws(u64);

    impl Draws {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    #[test]
    fn generated_cluster_bodies_are_read_as_the_api_reads_them() {
        // GIVEN thousands of bodies, each mostly one provider's (directory, command, aws-ebs)
        // or any keys at all: the provider's fields often, other providers' and unknown keys
        // seldom, some repeated, in random order, with a value that fits, or null, or one of
        // another type; `provider` sometimes left out or not a provider's name
        let keys = [
            "id",
            "description",
            "region",
            "provider",
            "path",
            "preHook",
            "postHook",
            "backupCommand",
            "restoreCommand",
            "runAs",
            "commandTimeoutSeconds",
            "volumeIds",
            "instanceTag",
            "serverVersion",
            "serverVersionTag",
            "nodeCount",
            "sourceBackupId",
            "availabilityZone",
            "volumeType",
            "foo",
            "Path",
        ];
        let providers = [
            r#""floppy""#,
            r#""Directory""#,
            "0",
            "1",
            "2",
            "3",
            "-1",
            "null",
            r#"["command"]"#,
        ];
        let others = [
            "null",
            "true",
            "7",
            "-7",
            "2.5",
            "4294967296",
            r#""x""#,
            r#"["vol-0abc123d"]"#,
            "[7]",
            "{}",
        ];
        let fitting = |key: &str, draws: &mut Draws| match key {
            "description" => r#""Orders""#,
            "region" => draws.pick(&[r#""local""#, r#""eu-west-1""#]),
            "path" => r#""/var/lib/db""#,
            "backupCommand" | "restoreCommand" | "preHook" | "postHook" => r#""sync""#,
            "runAs" => r#""postgres""#,
            "commandTimeoutSeconds" => draws.pick(&["600", "0"]),
            "volumeIds" => draws.pick(&[r#"["vol-0abc123d"]"#, "[]"]),
            "instanceTag" => r#""k=v""#,
            "serverVersion" | "serverVersionTag" => r#""23.10.1""#,
            "nodeCount" => draws.pick(&["3", "100"]),
            "sourceBackupId" => r#""c196ogto0aeqohe3ommq""#,
            "availabilityZone" => r#""eu-west-1a""#,
            "volumeType" => r#""gp3""#,
            _ => r#""c1""#,
        };
        let mut draws = Draws(0x9e37_79b9_7f4a_7c15);
        let mut outcomes = BTreeMap::<String, usize>::new();
        for _ in 0..20_000 {
            let family = draws.below(4);
            let own = TARGET_FIELDS.get(family).copied().unwrap_or(&keys[..]);
            let mut entries = Vec::new();
            for key in keys {
                // In twentieths.
                let odds = match key {
                    "id" | "description" | "provider" => 19,
                    "path" | "backupCommand" if own.contains(&key) => 18,
                    _ if own.contains(&key) || CLUSTER_FIELDS.contains(&key) => 6,
                    _ => 1,
                };
                for _ in 0..1 + usize::from(draws.below(30) == 0) {
                    if draws.below(20) < odds {
                        let value = match (key, draws.below(6)) {
                            ("provider", 0) => draws.pick(&providers).to_owned(),
                            ("provider", _) => {
                                let name = PROVIDERS.get(family).copied();
                                format!("\"{}\"", name.unwrap_or(PROVIDERS[draws.below(3)]))
                            }
                            (_, 0) => draws.pick(&others).to_owned(),
                            _ => fitting(key, &mut draws).to_owned(),
                        };
                        entries.push(format!("\"{key}\":{value}"));
                    }
                }
            }
            for i in (1..entries.len()).rev() {
                let j = draws.below(i + 1);
                entries.swap(i, j);
            }
            let json = format!("{{{}}}", entries.join(","));
            // WHEN read by hand and by the API's Deserialize
            let (by_hand, derived) = both_readings(&json);
            // THEN both accept the same request or refuse with the same message
            assert_eq!(by_hand, derived, "{json}");
            // AND validateCluster answers the core's check of the API's request
            let outcome = match &derived {
                Ok(request) => {
                    let check = cluster(&json).unwrap();
                    assert_eq!(check, request_check(validate_cluster(request)), "{json}");
                    let kind = request.target.provider();
                    let restore = if request.is_restore() { " restore" } else { "" };
                    let valid = if check.valid { "valid" } else { "invalid" };
                    format!("{valid} {kind}{restore}")
                }
                Err(message) => message.split([':', '`']).next().unwrap_or("").to_owned(),
            };
            *outcomes.entry(outcome).or_default() += 1;
        }
        // The bodies reach every outcome, not only the first refusal.
        for outcome in [
            "valid directory",
            "valid directory restore",
            "valid command",
            "valid command restore",
            "valid aws-ebs",
            "valid aws-ebs restore",
            "invalid directory",
            "invalid command",
            "invalid aws-ebs restore",
            "unknown field ",
            "missing field ",
            "invalid type",
            "invalid value",
            "unknown variant ",
        ] {
            assert!(
                outcomes.get(outcome).is_some_and(|n| *n >= 5),
                "{outcome}: {outcomes:#?}"
            );
        }
    }

    #[test]
    fn command_clusters_hooks_and_restores_are_checked_like_the_api_checks_them() {
        // GIVEN a command cluster, a directory cluster with hooks, and restores of each kind
        for json in [
            r#"{"id":"pg","description":"PostgreSQL","provider":"command","path":"/var/lib/postgresql/16/main","backupCommand":"pg_basebackup -D \"$BACKUP_DIR\"","restoreCommand":"cp -a \"$BACKUP_DIR\"/. \"$TARGET_DIR\"","runAs":"postgres","commandTimeoutSeconds":7200}"#,
            r#"{"id":"c1","description":"Orders","provider":"directory","path":"/var/lib/db","preHook":"fsfreeze -f /var/lib/db","postHook":"fsfreeze -u /var/lib/db"}"#,
            r#"{"id":"r1","description":"Restored","sourceBackupId":"c196ogto0aeqohe3ommq","path":"/srv/restored"}"#,
            r#"{"id":"r2","description":"Restored","sourceBackupId":"c196ogto0aeqohe3ommq","availabilityZone":"eu-west-1a","volumeType":"gp3"}"#,
        ] {
            // THEN each is valid
            let check = cluster(json).unwrap();
            assert_eq!(request_json(&check), r#"{"valid":true}"#, "{json}");
        }
        // GIVEN each of them wrong in its new fields
        let check = cluster(r#"{"id":"pg","description":"d","provider":"command","path":"data","backupCommand":"","runAs":"-x","commandTimeoutSeconds":0}"#).unwrap();
        // THEN every problem is keyed by the body's field, as the API's 400 keys it
        let problems = check.problems.clone().unwrap();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["backupCommand", "commandTimeoutSeconds", "path", "runAs"]
        );
        let check = cluster(r#"{"id":"c1","description":"d","provider":"directory","path":"/a","preHook":"","availabilityZone":"eu-west-1a"}"#).unwrap();
        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(json["problems"]["preHook"][0]["code"], "required");
        assert_eq!(
            json["problems"]["availabilityZone"][0]["code"],
            "conflicting"
        );
        let check = cluster(r#"{"id":"r1","description":"d","sourceBackupId":"nope","volumeType":"gp9","volumeIds":["vol-0abc123d"]}"#).unwrap();
        let json = serde_json::to_value(&check).unwrap();
        let keys: Vec<&String> = json["problems"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "availabilityZone",
                "sourceBackupId",
                "volumeIds",
                "volumeType"
            ]
        );
        assert_eq!(request_json(&check), serde_json::to_string(&check).unwrap());
        // AND a body the API refuses as malformed throws, naming the accepted bodies
        match cluster(r#"{"id":"pg","description":"d","provider":"command","path":"/a"}"#) {
            Err(ArgumentError::Type(message)) => {
                assert!(
                    message.contains(r#""command" {path, backupCommand,"#),
                    "{message}"
                );
                assert!(
                    message.ends_with(": missing field `backupCommand`"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
