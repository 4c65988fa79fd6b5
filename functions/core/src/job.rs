//! Validation of a whole create-job request (SPEC §7 body), every problem keyed by the
//! request's JSON path.
//!
//! The API answers 400 with every problem at once, the CLI maps each key back to its flag and
//! the web form underlines each field while the operator types; all three call
//! [`validate_job`], so a job the form accepts is a job the API accepts.
//!
//! Decisions the SPEC leaves open, written down here:
//! - A missing `type` means `ScheduledBackup`, the only type there is, so a hand-written
//!   request need not repeat it; any other value (including another spelling or case) is an
//!   error, so a client that means something else finds out.
//! - `data.clusterId` is 1 to [`MAX_CLUSTER_ID_CHARS`] ASCII letters, digits, `-` and `_`.
//!   The id becomes a DynamoDB key, a lock name, an EBS tag value and a directory name under
//!   `<data-dir>/backups/`; this alphabet is safe in all of them (no `/`, `..`, spaces or
//!   look-alike Unicode letters), and it covers Event Store Cloud ids such as
//!   `c196ogto0aeqohe3ommq`.
//! - The job description and the template are stored as written (not trimmed), but a blank
//!   one counts as missing.
//! - `null` counts as missing, so `{"schedule": null}` reads like `{}`.

use crate::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::SCHEDULED_BACKUP;
use crate::error::{join, ErrorCode, Field, FieldError, FieldErrors, Problems};
use crate::retention::MaxBackupCount;
use crate::schedule::Schedule;
use crate::template::{quote, Template};

/// Job descriptions are at most this many characters (SPEC §11).
pub const MAX_JOB_DESCRIPTION_CHARS: usize = 256;

/// Cluster ids are at most this many characters.
pub const MAX_CLUSTER_ID_CHARS: usize = 64;

/// The keys of [`JobProblems`]: JSON paths into the create-job body, which are also the
/// field names of the API's RFC 7807 `fields` map and of the web form.
pub mod keys {
    pub const DESCRIPTION: &str = "description";
    pub const SCHEDULE: &str = "schedule";
    pub const TYPE: &str = "type";
    pub const CLUSTER_ID: &str = "data.clusterId";
    pub const TEMPLATE: &str = "data.description";
    pub const MAX_BACKUP_COUNT: &str = "data.maxBackupCount";
    /// Every key, in the order the body lists them.
    pub const ALL: [&str; 6] = [
        DESCRIPTION,
        SCHEDULE,
        TYPE,
        CLUSTER_ID,
        TEMPLATE,
        MAX_BACKUP_COUNT,
    ];
}

/// `POST …/jobs`, as sent. Every field is optional here so that a missing one becomes a
/// `required` problem next to all the others, instead of a bare deserialization error that
/// hides them. Unknown fields are refused: a misspelt `maxBackupCnt` must not silently leave
/// the job without its retention setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateJobRequest {
    /// The job's description: 1 to 256 characters, not blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            nullable = false,
            min_length = 1,
            max_length = 256,
            pattern = r"\S"
        )
    )]
    pub description: Option<String>,
    /// A five-field cron expression in UTC, such as `0 3 * * *`, at least an hour apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            nullable = false,
            min_length = 1,
            max_length = 1024,
            pattern = r"\S"
        )
    )]
    pub schedule: Option<String>,
    /// `ScheduledBackup` when absent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::api::JobType, required = false))]
    pub job_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(required = true, nullable = false))]
    pub data: Option<ScheduledBackupData>,
}

/// The `data` of a `ScheduledBackup` job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduledBackupData {
    /// The registered cluster to back up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, nullable = false, pattern = r"^[A-Za-z0-9_-]{1,64}$")
    )]
    pub cluster_id: Option<String>,
    /// The description template for each backup (SPEC §3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            nullable = false,
            min_length = 1,
            max_length = 256,
            pattern = r"\S"
        )
    )]
    pub description: Option<String>,
    /// How many of its backups the job keeps, 1 to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, nullable = false, minimum = 1, maximum = 1000)
    )]
    pub max_backup_count: Option<i64>,
}

/// A create-job request that passed every check, in checked types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidJob {
    pub description: String,
    pub schedule: Schedule,
    pub template: Template,
    pub cluster_id: String,
    pub max_backup_count: MaxBackupCount,
}

/// Every problem with a create-job request, keyed by JSON path (see [`keys`]): the core's
/// one [`Problems`] type, named for what it holds here.
pub type JobProblems = Problems;

/// Checks every field of `req`, reporting every problem of every field at once.
pub fn validate_job(req: &CreateJobRequest) -> Result<ValidJob, JobProblems> {
    let no_data = ScheduledBackupData::default();
    let data = req.data.as_ref().unwrap_or(&no_data);
    let mut problems = JobProblems::default();

    let description = problems.take(
        keys::DESCRIPTION,
        check_job_description(req.description.as_deref()),
    );
    let schedule = problems.take(keys::SCHEDULE, check_schedule(req.schedule.as_deref()));
    problems.take(keys::TYPE, check_type(req.job_type.as_deref()));
    let cluster_id = problems.take(
        keys::CLUSTER_ID,
        check_cluster_id(data.cluster_id.as_deref()),
    );
    let template = problems.take(keys::TEMPLATE, check_template(data.description.as_deref()));
    let max_backup_count = problems.take(
        keys::MAX_BACKUP_COUNT,
        check_max_backup_count(data.max_backup_count),
    );

    match (
        description,
        schedule,
        cluster_id,
        template,
        max_backup_count,
    ) {
        (
            Some(description),
            Some(schedule),
            Some(cluster_id),
            Some(template),
            Some(max_backup_count),
        ) if problems.is_empty() => Ok(ValidJob {
            description,
            schedule,
            template,
            cluster_id,
            max_backup_count,
        }),
        _ => Err(problems),
    }
}

/// `PATCH …/jobs/{jobId}` (SPEC §17), as sent: the create body's shape, every field
/// optional, and an absent (or `null`) field keeps the job's value. One shape for both, so
/// a client may send back a whole job body with a few fields changed.
pub type UpdateJobRequest = CreateJobRequest;

/// Checks a job with `patch` applied to `current` (the job as a create body), exactly as
/// [`validate_job`] checks a new one, every problem at once. The cluster is the one thing
/// an update cannot change: a job's backups, history and retention are the cluster's, so
/// another cluster is another job. Naming the same cluster again is accepted, so a client
/// may send back the whole body.
pub fn validate_update(
    current: &CreateJobRequest,
    patch: &UpdateJobRequest,
) -> Result<ValidJob, JobProblems> {
    let current_data = current.data.clone().unwrap_or_default();
    let patch_data = patch.data.clone().unwrap_or_default();
    let current_cluster = current_data.cluster_id.clone().unwrap_or_default();
    let merged = CreateJobRequest {
        description: patch.description.clone().or(current.description.clone()),
        schedule: patch.schedule.clone().or(current.schedule.clone()),
        job_type: patch.job_type.clone().or(current.job_type.clone()),
        data: Some(ScheduledBackupData {
            cluster_id: Some(current_cluster.clone()),
            description: patch_data.description.or(current_data.description),
            max_backup_count: patch_data
                .max_backup_count
                .or(current_data.max_backup_count),
        }),
    };
    let mut problems = JobProblems::default();
    if let Some(asked) = patch_data.cluster_id.as_deref() {
        if asked != current_cluster {
            problems.add(
                keys::CLUSTER_ID,
                one(
                    ErrorCode::InvalidValue,
                    Field::ClusterId,
                    0..asked.chars().count(),
                    format!(
                        "A job's cluster cannot change (this job backs up `{}`): create a new \
                         job for cluster `{}` instead, and delete this one if it is no longer \
                         wanted.",
                        quote(&current_cluster),
                        quote(asked)
                    ),
                )
                .0,
            );
        }
    }
    match validate_job(&merged) {
        Ok(valid) if problems.is_empty() => Ok(valid),
        Ok(_) => Err(problems),
        Err(found) => {
            for (key, errors) in found.iter() {
                problems.add(key, errors.iter().cloned());
            }
            Err(problems)
        }
    }
}

fn one(
    code: ErrorCode,
    field: Field,
    span: core::ops::Range<usize>,
    message: String,
) -> FieldErrors {
    FieldErrors(vec![FieldError::new(code, field, span, message)])
}

/// `Some(blank)` and `None` are both "missing"; the span covers the blank text, if any.
fn required(
    value: Option<&str>,
    field: Field,
    message: &str,
) -> Result<(String, usize), FieldErrors> {
    match value {
        Some(text) if !text.trim().is_empty() => Ok((text.to_owned(), text.chars().count())),
        other => Err(one(
            ErrorCode::Required,
            field,
            0..other.map_or(0, |t| t.chars().count()),
            message.to_owned(),
        )),
    }
}

/// Checks the job's own description (what lists show), not the backup template.
pub fn check_job_description(value: Option<&str>) -> Result<String, FieldErrors> {
    let (text, n) = required(
        value,
        Field::JobDescription,
        "Give the job a description, such as `Nightly backup of orders`.",
    )?;
    if n > MAX_JOB_DESCRIPTION_CHARS {
        return Err(FieldErrors(vec![FieldError::too_long(
            Field::JobDescription,
            "A job description",
            MAX_JOB_DESCRIPTION_CHARS,
            n,
        )]));
    }
    Ok(text)
}

fn check_schedule(value: Option<&str>) -> Result<Schedule, FieldErrors> {
    match value {
        Some(text) => Schedule::parse(text),
        None => Err(one(
            ErrorCode::Required,
            Field::Schedule,
            0..0,
            "Give a schedule, such as `0 * * * *` for every hour at minute 0.".to_owned(),
        )),
    }
}

fn check_type(value: Option<&str>) -> Result<(), FieldErrors> {
    match value {
        None | Some(SCHEDULED_BACKUP) => Ok(()),
        Some(other) => Err(one(
            ErrorCode::InvalidValue,
            Field::JobType,
            0..other.chars().count(),
            format!(
                "The job type must be `{SCHEDULED_BACKUP}`, the only type there is (or leave \
                 it out); `{}` is not.",
                quote(other)
            ),
        )),
    }
}

/// Checks a cluster id: see the module notes for why the alphabet is this narrow.
pub fn check_cluster_id(value: Option<&str>) -> Result<String, FieldErrors> {
    let (text, n) = required(
        value,
        Field::ClusterId,
        "Give the id of the cluster to back up, such as `c196ogto0aeqohe3ommq`.",
    )?;
    let mut errors = Vec::new();
    if n > MAX_CLUSTER_ID_CHARS {
        errors.push(FieldError::new(
            ErrorCode::TooLong,
            Field::ClusterId,
            MAX_CLUSTER_ID_CHARS..n,
            format!("A cluster id is at most {MAX_CLUSTER_ID_CHARS} characters; this one has {n}."),
        ));
    }
    let is_allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut bad_span: Option<(usize, usize)> = None;
    // The first few distinct offenders, enough to say what to remove without echoing a paste.
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    for (i, c) in text.chars().enumerate() {
        if is_allowed(c) {
            continue;
        }
        bad_span = Some((bad_span.map_or(i, |(first, _)| first), i + 1));
        let name = if c == ' ' {
            "spaces".to_owned()
        } else {
            format!("`{}`", quote(&c.to_string()))
        };
        if !shown.contains(&name) {
            if shown.len() < 5 {
                shown.push(name);
            } else {
                more = true;
            }
        }
    }
    if let Some((first, end)) = bad_span {
        errors.push(FieldError::new(
            ErrorCode::InvalidValue,
            Field::ClusterId,
            first..end,
            format!(
                "A cluster id may contain only ASCII letters, digits, `-` and `_`; remove {}{}.",
                join(&shown, ", "),
                if more { " and the like" } else { "" }
            ),
        ));
    }
    if errors.is_empty() {
        Ok(text)
    } else {
        Err(FieldErrors(errors))
    }
}

fn check_template(value: Option<&str>) -> Result<Template, FieldErrors> {
    required(
        value,
        Field::Description,
        "Give a description template for each backup, such as `{cluster} backup \
         {datetime:rfc3339}`.",
    )?;
    Template::parse(value.unwrap_or_default())
}

/// A manual backup's description (SPEC §7's `POST …/backups`): required like a job's
/// template, since it is what lists show of the backup, and read as a template, so
/// `{cluster}` and `{datetime}` work in it too.
pub fn check_manual_description(value: &str) -> Result<Template, FieldErrors> {
    required(
        Some(value),
        Field::Description,
        "Give the backup a description, such as `Before the upgrade to 24.10`.",
    )?;
    Template::parse(value)
}

fn check_max_backup_count(value: Option<i64>) -> Result<MaxBackupCount, FieldErrors> {
    match value {
        Some(n) => MaxBackupCount::new(n).map_err(|e| FieldErrors(vec![e])),
        None => Err(one(
            ErrorCode::Required,
            Field::MaxBackupCount,
            0..0,
            format!(
                "Say how many backups the job keeps, a whole number from {} to {}.",
                MaxBackupCount::MIN,
                MaxBackupCount::MAX
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The SPEC §8 seed command line, as the API body it becomes.
    fn seed_json() -> serde_json::Value {
        serde_json::json!({
            "description": "My Hourly Backup",
            "schedule": "0 */1 * * *",
            "type": "ScheduledBackup",
            "data": {
                "clusterId": "c196ogto0aeqohe3ommq",
                "description": "{cluster} Hourly Backup {datetime:RFC3339}",
                "maxBackupCount": 2
            }
        })
    }

    fn request(json: serde_json::Value) -> CreateJobRequest {
        serde_json::from_value(json).unwrap()
    }

    fn problems(json: serde_json::Value) -> JobProblems {
        match validate_job(&request(json)) {
            Ok(job) => panic!("should be rejected: {job:?}"),
            Err(p) => p,
        }
    }

    fn codes(p: &JobProblems, key: &str) -> Vec<ErrorCode> {
        p.get(key)
            .unwrap_or_else(|| panic!("no problem for {key}: {p}"))
            .iter()
            .map(|e| e.code)
            .collect()
    }

    fn seed_with(path: &[&str], value: serde_json::Value) -> serde_json::Value {
        let mut json = seed_json();
        let mut at = &mut json;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        json
    }

    #[test]
    fn the_seed_request_is_a_valid_job() {
        // GIVEN the request the SPEC's example command line sends WHEN validated
        let job = validate_job(&request(seed_json())).unwrap();
        // THEN every value arrives checked and as written
        assert_eq!(job.description, "My Hourly Backup");
        assert_eq!(job.schedule.as_str(), "0 */1 * * *");
        assert_eq!(
            job.template.as_str(),
            "{cluster} Hourly Backup {datetime:RFC3339}"
        );
        assert_eq!(job.cluster_id, "c196ogto0aeqohe3ommq");
        assert_eq!(job.max_backup_count.get(), 2);
    }

    #[test]
    fn a_missing_type_means_scheduled_backup() {
        let mut json = seed_json();
        json.as_object_mut().unwrap().remove("type");
        assert!(validate_job(&request(json)).is_ok());
    }

    #[test]
    fn every_wrong_field_is_reported_at_once() {
        // GIVEN a request where every field is wrong
        let json = serde_json::json!({
            "description": "   ",
            "schedule": "*/30 * * * *",
            "type": "Backup",
            "data": {
                "clusterId": "my cluster/1",
                "description": "{foo} {index",
                "maxBackupCount": 0
            }
        });
        // WHEN validated
        let p = problems(json);
        // THEN each field has its own problem, keyed by JSON path
        assert_eq!(p.keys().collect::<Vec<_>>(), {
            let mut all = keys::ALL.to_vec();
            all.sort_unstable();
            all
        });
        assert_eq!(codes(&p, "description"), [ErrorCode::Required]);
        assert_eq!(codes(&p, "schedule"), [ErrorCode::TooFrequent]);
        assert_eq!(codes(&p, "type"), [ErrorCode::InvalidValue]);
        assert_eq!(codes(&p, "data.clusterId"), [ErrorCode::InvalidValue]);
        assert_eq!(
            codes(&p, "data.description"),
            [ErrorCode::UnknownPlaceholder, ErrorCode::Syntax]
        );
        assert_eq!(codes(&p, "data.maxBackupCount"), [ErrorCode::InvalidValue]);
    }

    #[test]
    fn an_empty_request_names_every_required_field() {
        // GIVEN `{}` WHEN validated THEN every required field is reported, but not `type`
        let p = problems(serde_json::json!({}));
        for key in [
            "description",
            "schedule",
            "data.clusterId",
            "data.description",
            "data.maxBackupCount",
        ] {
            assert_eq!(codes(&p, key), [ErrorCode::Required], "{key}");
        }
        assert!(p.get("type").is_none());
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn null_reads_as_missing() {
        let p = problems(seed_with(
            &["data", "maxBackupCount"],
            serde_json::Value::Null,
        ));
        assert_eq!(codes(&p, "data.maxBackupCount"), [ErrorCode::Required]);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn unknown_fields_are_rejected_by_deserialization() {
        // GIVEN a misspelt field at the top level or inside data WHEN deserialized THEN refused
        let mut top = seed_json();
        top["schedul"] = "0 * * * *".into();
        let e = serde_json::from_value::<CreateJobRequest>(top).unwrap_err();
        assert!(e.to_string().contains("unknown field `schedul`"), "{e}");

        let inner = seed_with(&["data", "maxBackupCnt"], 3.into());
        let e = serde_json::from_value::<CreateJobRequest>(inner).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `maxBackupCnt`"),
            "{e}"
        );
    }

    #[test]
    fn the_request_round_trips_through_json() {
        let req = request(seed_json());
        assert_eq!(serde_json::to_value(&req).unwrap(), seed_json());
    }

    /// The first error of the seed request with the value at `path` replaced, found under
    /// the key that path spells (`data.description`).
    fn first_error(path: &[&str], value: serde_json::Value) -> FieldError {
        let key = path.join(".");
        let p = problems(seed_with(path, value));
        p.get(&key)
            .and_then(|errors| errors.first().cloned())
            .unwrap_or_else(|| panic!("no problem for {key}: {p}"))
    }

    #[test]
    fn errors_are_keyed_by_json_path_and_keep_their_own_field_and_span() {
        for (path, value, expected) in [
            // An hour out of range: the schedule key carries the hour error.
            (
                &["schedule"][..],
                "0 24 * * *",
                (ErrorCode::OutOfRange, Field::Hour, 2, 4),
            ),
            // Template errors are keyed by data.description.
            (
                &["data", "description"][..],
                "Backup }",
                (ErrorCode::Syntax, Field::Description, 7, 8),
            ),
            // A blank template is missing.
            (
                &["data", "description"][..],
                "  ",
                (ErrorCode::Required, Field::Description, 0, 2),
            ),
        ] {
            let e = first_error(path, value.into());
            assert_eq!((e.code, e.field, e.start, e.end), expected, "{value:?}");
        }
    }

    #[test]
    fn job_description_limit_counts_characters() {
        // GIVEN 256 non-ASCII characters THEN accepted; GIVEN 257 THEN too long past the limit
        let ok = seed_with(&["description"], "é".repeat(256).into());
        assert!(validate_job(&request(ok)).is_ok());
        let e = first_error(&["description"], "é".repeat(257).into());
        assert_eq!(
            (e.code, e.field, e.start, e.end),
            (ErrorCode::TooLong, Field::JobDescription, 256, 257)
        );
    }

    #[test]
    fn cluster_ids_are_safe_as_keys_and_directory_names() {
        // GIVEN ids an operator might write
        for good in ["c196ogto0aeqohe3ommq", "prod-eu_1", "A", &"x".repeat(64)] {
            let ok = seed_with(&["data", "clusterId"], good.into());
            assert!(validate_job(&request(ok)).is_ok(), "{good}");
        }
        // WHEN an id could escape a directory or confuse a reader THEN it is refused
        for bad in ["../etc", "a b", "clustér", "a/b", "x.y", "tab\there"] {
            let p = problems(seed_with(&["data", "clusterId"], bad.into()));
            assert_eq!(
                codes(&p, "data.clusterId"),
                [ErrorCode::InvalidValue],
                "{bad}"
            );
        }
    }

    #[test]
    fn cluster_id_error_underlines_the_bad_characters_and_names_them() {
        let p = problems(seed_with(&["data", "clusterId"], "ab c/d".into()));
        let e = &p.get("data.clusterId").unwrap()[0];
        // "ab c/d": from the space (2) to the slash (4), inclusive
        assert_eq!((e.start, e.end), (2, 5));
        assert!(e.message.ends_with("remove spaces, `/`."), "{}", e.message);
    }

    #[test]
    fn an_overlong_cluster_id_is_too_long() {
        let p = problems(seed_with(&["data", "clusterId"], "x".repeat(65).into()));
        let e = &p.get("data.clusterId").unwrap()[0];
        assert_eq!((e.code, e.start, e.end), (ErrorCode::TooLong, 64, 65));
    }

    #[test]
    fn type_must_be_exactly_scheduled_backup() {
        for bad in ["scheduledbackup", "scheduled-backup", ""] {
            let p = problems(seed_with(&["type"], bad.into()));
            let e = &p.get("type").unwrap()[0];
            assert_eq!(
                (e.code, e.field),
                (ErrorCode::InvalidValue, Field::JobType),
                "{bad}"
            );
            assert!(e.message.contains("`ScheduledBackup`"), "{}", e.message);
        }
    }

    #[test]
    fn max_backup_count_bounds() {
        for (n, ok) in [
            (1, true),
            (1000, true),
            (0, false),
            (1001, false),
            (-5, false),
        ] {
            let json = seed_with(&["data", "maxBackupCount"], n.into());
            assert_eq!(validate_job(&request(json)).is_ok(), ok, "{n}");
        }
        // A fractional or string count never reaches validation: serde refuses it.
        let json = seed_with(&["data", "maxBackupCount"], 1.5.into());
        assert!(serde_json::from_value::<CreateJobRequest>(json).is_err());
    }

    #[test]
    fn problems_serialize_by_json_path_and_flatten_to_messages() {
        // GIVEN two problems in one field and one in another
        let p = problems(seed_with(
            &["data", "clusterId"],
            format!("{}!", "x".repeat(64)).into(),
        ));
        let p = {
            let mut p = p;
            p.add(keys::TYPE, check_type(Some("x")).unwrap_err());
            p
        };
        // THEN the JSON is an object from path to the errors
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["data.clusterId"][0]["code"], "too_long");
        assert_eq!(json["data.clusterId"][1]["code"], "invalid_value");
        assert_eq!(json["type"][0]["field"], "type");
        // AND the RFC 7807 `fields` map joins a field's messages with a space
        let messages = p.messages();
        let cluster = &messages["data.clusterId"];
        assert!(
            cluster.starts_with(
                "A cluster id is at most 64 characters; this one has 65. A cluster id may \
                 contain only"
            ),
            "{cluster}"
        );
        assert_eq!(messages.len(), 2);
        assert!(p.to_string().contains("type: The job type must be"), "{p}");
    }

    proptest! {
        #[test]
        fn no_request_panics(
            description in proptest::option::of(".{0,300}"),
            schedule in proptest::option::of("[0-9*/, a-zA-Z@?-]{0,30}"),
            job_type in proptest::option::of(".{0,20}"),
            cluster_id in proptest::option::of(".{0,80}"),
            template in proptest::option::of("[{}a-z: ]{0,300}"),
            max in proptest::option::of(any::<i64>()),
        ) {
            let req = CreateJobRequest {
                description,
                schedule,
                job_type,
                data: Some(ScheduledBackupData {
                    cluster_id,
                    description: template,
                    max_backup_count: max,
                }),
            };
            match validate_job(&req) {
                Ok(job) => {
                    prop_assert!(job.description.chars().count() <= MAX_JOB_DESCRIPTION_CHARS);
                    prop_assert!(job.cluster_id.chars().count() <= MAX_CLUSTER_ID_CHARS);
                }
                Err(p) => {
                    prop_assert!(!p.is_empty());
                    for key in p.keys() {
                        prop_assert!(keys::ALL.contains(&key), "unexpected key {}", key);
                    }
                    for (_, errors) in p.iter() {
                        prop_assert!(!errors.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn an_update_is_checked_as_the_whole_job_it_makes() {
        let current = request(seed_json());
        // GIVEN a patch of the schedule alone THEN the rest of the job is kept
        let valid = validate_update(
            &current,
            &request(serde_json::json!({"schedule": "0 3 * * *"})),
        )
        .unwrap();
        assert_eq!(valid.schedule.as_str(), "0 3 * * *");
        assert_eq!(valid.description, "My Hourly Backup");
        assert_eq!(valid.max_backup_count.get(), 2);
        // AND naming the same cluster again is accepted
        let same =
            serde_json::json!({"data": {"clusterId": "c196ogto0aeqohe3ommq", "maxBackupCount": 5}});
        let valid = validate_update(&current, &request(same)).unwrap();
        assert_eq!(valid.max_backup_count.get(), 5);
        assert_eq!(
            valid.template.as_str(),
            "{cluster} Hourly Backup {datetime:RFC3339}"
        );
    }

    #[test]
    fn an_update_reports_every_problem_and_refuses_another_cluster() {
        let current = request(seed_json());
        let patch = serde_json::json!({
            "schedule": "*/30 * * * *",
            "description": " ",
            "data": {"clusterId": "other", "description": "{nope}", "maxBackupCount": 0}
        });
        let found = validate_update(&current, &request(patch)).unwrap_err();
        let keys: Vec<&str> = found.keys().collect();
        assert_eq!(
            keys,
            [
                "data.clusterId",
                "data.description",
                "data.maxBackupCount",
                "description",
                "schedule"
            ]
        );
        assert_eq!(
            found.get("schedule").unwrap()[0].code,
            ErrorCode::TooFrequent
        );
        let cluster = &found.get("data.clusterId").unwrap()[0];
        assert!(cluster.message.contains("create a new job"), "{cluster:?}");
    }
}
