//! What each export does, in plain Rust: turn JavaScript's arguments into core types, call
//! the core, and shape the answer. Nothing here knows about `JsValue`, so it builds and is
//! tested on the host like any other crate.

use std::collections::BTreeMap;

use backup_core::api::{ClusterTarget, RegisterClusterRequest};
use backup_core::check::{check_schedule, check_template, ScheduleCheck, TemplateCheck};
use backup_core::cluster::validate_cluster;
use backup_core::job::{
    validate_job, CreateJobRequest, JobProblems, MAX_CLUSTER_ID_CHARS, MAX_JOB_DESCRIPTION_CHARS,
};
use backup_core::retention::MaxBackupCount;
use backup_core::schedule::{MAX_SCHEDULE_CHARS, MIN_INTERVAL_MINUTES};
use backup_core::template::{RenderContext, MAX_TEMPLATE_CHARS};
use backup_core::Problems;
use chrono::{DateTime, Utc};
use serde::Serialize;

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
    let context: RenderContext = serde_json::from_str(context_json).map_err(|e| {
        ArgumentError::Type(format!(
            "context must be {{clusterId, clusterDescription, clusterProvider, clusterRegion, \
             index, datetime}} with datetime an RFC 3339 instant: {e}"
        ))
    })?;
    Ok(check_template(template, &context))
}

/// The result of `validateJob`.
///
/// `problems` keeps every error with its span (for underlining inside a field); `fields` is
/// the core's one-message-per-field map, the same `fields` the API's RFC 7807 answer carries,
/// so a form can show a server's 400 and its own check the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobCheck {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<JobProblems>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

/// `validateJob`: every problem of a create-job request given as JSON text.
pub fn job(request_json: &str) -> Result<JobCheck, ArgumentError> {
    let request: CreateJobRequest = serde_json::from_str(request_json).map_err(|e| {
        ArgumentError::Type(format!(
            "request must be a create-job body {{description, schedule, type, data: \
             {{clusterId, description, maxBackupCount}}}} with a whole-number maxBackupCount: \
             {e}"
        ))
    })?;
    Ok(request_check(validate_job(&request)))
}

/// The result of `validateCluster`: the shape of [`JobCheck`], keyed by the request's field
/// names (`id`, `path`, `volumeIds`, …).
pub type RequestCheck = JobCheck;

fn request_check<T>(checked: Result<T, Problems>) -> RequestCheck {
    match checked {
        Ok(_) => JobCheck {
            valid: true,
            problems: None,
            fields: None,
        },
        Err(problems) => JobCheck {
            valid: false,
            fields: Some(problems.messages()),
            problems: Some(problems),
        },
    }
}

/// `validateCluster`: every problem of a register-cluster request given as JSON text. The
/// path's shape only: whether the directory exists and is allowed is the server's to say.
pub fn cluster(request_json: &str) -> Result<RequestCheck, ArgumentError> {
    let body: ClusterBody =
        serde_json::from_str(request_json).map_err(|e| cluster_shape_error(&e))?;
    let target = match (body.provider.as_str(), body.path) {
        ("directory", Some(path)) => ClusterTarget::Directory { path },
        ("directory", None) => return Err(cluster_shape_error(&"missing field `path`")),
        ("aws-ebs", None) => ClusterTarget::AwsEbs {
            volume_ids: body.volume_ids,
            instance_tag: body.instance_tag,
        },
        (other, _) => {
            return Err(cluster_shape_error(&format_args!(
                "unknown provider `{other}`"
            )))
        }
    };
    let request = RegisterClusterRequest {
        id: body.id,
        description: body.description,
        region: body.region,
        target,
        server_version: body.server_version,
        server_version_tag: body.server_version_tag,
        node_count: body.node_count,
        source_backup_id: None,
        availability_zone: None,
        volume_type: None,
    };
    Ok(request_check(validate_cluster(&request)))
}

fn cluster_shape_error(detail: &dyn std::fmt::Display) -> ArgumentError {
    ArgumentError::Type(format!(
        "request must be a register-cluster body {{id, description, region?, provider: \
         \"directory\", path}} or {{…, provider: \"aws-ebs\", volumeIds | instanceTag}}, \
         with serverVersion?, serverVersionTag? and nodeCount? in either: {detail}"
    ))
}

/// The register-cluster body read flat. `RegisterClusterRequest` itself is read through
/// `#[serde(flatten)]` and an internally tagged enum, which pull serde's buffering
/// deserializer into the module (about 10 KB gzipped, five times the budget of this
/// export); this flat reading accepts the same bodies, and the core's type is built from it.
///
/// Read by hand rather than derived: the derive also writes a visitor for the body as a JSON
/// array and an identifier visitor for the keys, which this export does not need (about
/// 0.6 KB gzipped). For every JSON object it accepts and rejects exactly what
/// `#[serde(rename_all = "camelCase", deny_unknown_fields)]` with `#[serde(default)]` on the
/// optional fields does, with serde's own messages (a test holds it to the derive).
struct ClusterBody {
    id: String,
    description: String,
    region: Option<String>,
    provider: String,
    path: Option<String>,
    volume_ids: Vec<String>,
    instance_tag: Option<String>,
    server_version: Option<String>,
    server_version_tag: Option<String>,
    node_count: Option<u32>,
}

/// The body's keys, in the order serde's derive lists them in an `unknown field` error.
const CLUSTER_BODY_FIELDS: &[&str] = &[
    "id",
    "description",
    "region",
    "provider",
    "path",
    "volumeIds",
    "instanceTag",
    "serverVersion",
    "serverVersionTag",
    "nodeCount",
];

impl<'de> serde::Deserialize<'de> for ClusterBody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClusterBodyVisitor)
    }
}

struct ClusterBodyVisitor;

impl<'de> serde::de::Visitor<'de> for ClusterBodyVisitor {
    type Value = ClusterBody;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("struct ClusterBody")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ClusterBody, A::Error> {
        use serde::de::Error;
        let mut seen = 0u16;
        let mut id: Option<String> = None;
        let mut description: Option<String> = None;
        let mut region: Option<String> = None;
        let mut provider: Option<String> = None;
        let mut path: Option<String> = None;
        let mut volume_ids: Vec<String> = Vec::new();
        let mut instance_tag: Option<String> = None;
        let mut server_version: Option<String> = None;
        let mut server_version_tag: Option<String> = None;
        let mut node_count: Option<u32> = None;
        while let Some(key) = map.next_key::<String>()? {
            let index = CLUSTER_BODY_FIELDS
                .iter()
                .position(|f| *f == key)
                .ok_or_else(|| A::Error::unknown_field(&key, CLUSTER_BODY_FIELDS))?;
            // A key seen twice is an error before its value is read, as with the derive.
            if seen & (1 << index) != 0 {
                return Err(A::Error::duplicate_field(CLUSTER_BODY_FIELDS[index]));
            }
            seen |= 1 << index;
            match index {
                0 => id = Some(map.next_value()?),
                1 => description = Some(map.next_value()?),
                2 => region = map.next_value()?,
                3 => provider = Some(map.next_value()?),
                4 => path = map.next_value()?,
                5 => volume_ids = map.next_value()?,
                6 => instance_tag = map.next_value()?,
                7 => server_version = map.next_value()?,
                8 => server_version_tag = map.next_value()?,
                _ => node_count = map.next_value()?,
            }
        }
        let required = |value: Option<String>, index: usize| {
            value.ok_or_else(|| A::Error::missing_field(CLUSTER_BODY_FIELDS[index]))
        };
        Ok(ClusterBody {
            id: required(id, 0)?,
            description: required(description, 1)?,
            region,
            provider: required(provider, 3)?,
            path,
            volume_ids,
            instance_tag,
            server_version,
            server_version_tag,
            node_count,
        })
    }
}

/// The core's limits, by the names a form uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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

/// Whole milliseconds since the epoch (fractions are dropped, as `new Date(ms)` does) as a UTC
/// instant.
pub fn instant_from_millis(millis: f64) -> Result<DateTime<Utc>, ArgumentError> {
    let out_of_range = || {
        ArgumentError::Range(format!(
            "afterEpochMillis must be a finite number of milliseconds since the Unix epoch, \
             such as Date.now(); {millis} is not"
        ))
    };
    if !millis.is_finite() || millis.abs() > MAX_EPOCH_MILLIS {
        return Err(out_of_range());
    }
    // In range and finite, so the cast is exact after truncation.
    DateTime::from_timestamp_millis(millis.trunc() as i64).ok_or_else(out_of_range)
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
        let problems = check.problems.unwrap();
        assert_eq!(check.fields.unwrap(), problems.messages());
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

    /// What `#[derive(Deserialize)]` reads; the hand-written reading of [`ClusterBody`] must
    /// accept, read and reject the same bodies, with the same messages.
    mod derived {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct ClusterBody {
            pub id: String,
            pub description: String,
            #[serde(default)]
            pub region: Option<String>,
            pub provider: String,
            #[serde(default)]
            pub path: Option<String>,
            #[serde(default)]
            pub volume_ids: Vec<String>,
            #[serde(default)]
            pub instance_tag: Option<String>,
            #[serde(default)]
            pub server_version: Option<String>,
            #[serde(default)]
            pub server_version_tag: Option<String>,
            #[serde(default)]
            pub node_count: Option<u32>,
        }
    }

    #[test]
    fn the_cluster_body_is_read_as_the_derive_reads_it() {
        type Fields = (
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Vec<String>,
            Option<String>,
            (Option<String>, Option<String>, Option<u32>),
        );
        let by_hand = |json: &str| -> Result<Fields, String> {
            serde_json::from_str::<ClusterBody>(json)
                .map(|b| {
                    (
                        b.id,
                        b.description,
                        b.region,
                        b.provider,
                        b.path,
                        b.volume_ids,
                        b.instance_tag,
                        (b.server_version, b.server_version_tag, b.node_count),
                    )
                })
                .map_err(|e| e.to_string())
        };
        let derived = |json: &str| -> Result<Fields, String> {
            serde_json::from_str::<derived::ClusterBody>(json)
                .map(|b| {
                    (
                        b.id,
                        b.description,
                        b.region,
                        b.provider,
                        b.path,
                        b.volume_ids,
                        b.instance_tag,
                        (b.server_version, b.server_version_tag, b.node_count),
                    )
                })
                .map_err(|e| e.to_string())
        };
        for json in [
            r#"{"id":"c1","description":"Orders","provider":"directory","path":"/var/lib/db"}"#,
            r#"{"id":"c1","description":"d","region":null,"provider":"directory","path":null}"#,
            r#"{"provider":"aws-ebs","id":"c2","description":"EBS","region":"eu-west-1","volumeIds":["vol-0abc123d"],"instanceTag":null}"#,
            r#"{"id":"c2","description":"EBS","provider":"aws-ebs","instanceTag":"k=v","volumeIds":[]}"#,
            r#"{"id":"c\u0031","description":"\"x\"","provider":"directory","path":"/"}"#,
            r#"{}"#,
            r#"{"id":"c1"}"#,
            r#"{"id":"c1","description":"d"}"#,
            r#"{"id":"c1","provider":"directory"}"#,
            r#"{"id":"c1","id":"c2","description":"d","provider":"directory"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","path":"/b"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","Path":"/a"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","target":{}}"#,
            r#"{"id":1,"description":"d","provider":"directory"}"#,
            r#"{"id":null,"description":"d","provider":"directory"}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","volumeIds":null}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","volumeIds":"vol-1"}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","volumeIds":[1]}"#,
            r#"{"id":"c1","description":"d","provider":"aws-ebs","instanceTag":false}"#,
            r#"{"id":"c1","description":"d","provider":"directory","path":"/a","serverVersion":"23.10.1","serverVersionTag":"23.10.1-jammy","nodeCount":3}"#,
            r#"{"id":"c1","description":"d","provider":"directory","serverVersion":null,"nodeCount":null}"#,
            r#"{"id":"c1","description":"d","provider":"directory","nodeCount":-1}"#,
            r#"{"id":"c1","description":"d","provider":"directory","nodeCount":"3"}"#,
            r#"{"id":"c1","description":"d","provider":"directory","nodeCount":1,"nodeCount":2}"#,
            r#"null"#,
            r#""c1""#,
            r#"{"id":"c1","#,
        ] {
            assert_eq!(by_hand(json), derived(json), "{json}");
        }
        // Not the same for a JSON array (the derive reads it as the fields in order), which
        // `validateCluster` never passes on: `json_argument` throws for an array first.
        assert!(by_hand(r#"["c1","d","local","directory","/a",[],null]"#).is_err());
    }
}
