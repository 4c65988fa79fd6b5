//! `backup-runner`: scheduled runs, the settling of their snapshots, and the sweeper.
//!
//! It takes three kinds of events (anything else is a [`RunnerError::BadEvent`] that says
//! what was expected, before any write):
//! - **a job's firing**: what each job rule's input transformer sends,
//!   `{"jobId": "…", "scheduledTime": "2026-11-27T05:00:00Z"}`, or a plain EventBridge
//!   "Scheduled Event" (`aws_lambda_events`' [`CloudWatchEvent`]), whose job is found from the
//!   rule name in `resources` (`arn:aws:events:…:rule/<RULE_PREFIX><jobId>[-2]`) and whose
//!   instant is `time`. The run starts the snapshots, records them and returns `running`.
//! - **EC2's `EBS Snapshot Notification`** (`createSnapshot`) and **`EBS Multi-Volume
//!   Snapshots Completion Status`** (`createSnapshots`): settles the
//!   backup the snapshot belongs to (SPEC §16). EC2 sends these for every snapshot of the
//!   region, so one no backup is waiting on (AWS Backup's, DLM's, a person's) is a quiet
//!   success, never an error: a failed invocation would be retried and land in the
//!   dead-letter queue for nothing.
//! - **EC2's `EBS Volume Notification`** (`createVolume`): settles the restore the volume
//!   belongs to (SPEC §14): the cluster becomes `available` once every volume is, or
//!   `failed` (its volumes deleted). As with snapshots, a volume no restore is waiting on is
//!   a quiet success.
//! - **`{"sweep": true}`**, from the sweeper rule every ten minutes.
//! - **a queued run**, `{"historyId": "…", "jobId": "…", "scheduledTime": "…"}`: "run now"
//!   on the deployed API, handed over by an asynchronous invocation; the runner claims it
//!   (a second delivery finds it claimed) and runs it as a firing.
//!
//! A failed invocation reaches CloudWatch and the dead-letter queue as Lambda's
//! `errorType`/`errorMessage` pair: [`ErrorType`] names what went wrong, so an operator can
//! tell a malformed event (fix the rule) from a store outage (wait; Lambda retries).

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use backup_core::api::{RunFailure, RunStatus};
use backup_engine::{Engine, EngineError, ErrorKind, Notice, RestoreSettled, Settled, SweepReport};
use chrono::{DateTime, Utc};
use lambda_runtime::Diagnostic;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What one invocation should run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub job_id: String,
    pub scheduled: DateTime<Utc>,
}

/// The invocation's answer (also logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub job_id: String,
    pub history_id: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<RunFailure>,
    pub details: String,
    /// `true` when this delivery found the run already recorded and did nothing.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The event is not one the runner understands; nothing was written.
    #[error("malformed event: {0}")]
    BadEvent(String),
    /// The engine refused or failed (`job_not_found`, `store_error`, …).
    #[error("{code}: {source}")]
    Engine {
        code: &'static str,
        retryable: bool,
        #[source]
        source: EngineError,
    },
}

impl From<EngineError> for RunnerError {
    fn from(source: EngineError) -> Self {
        RunnerError::Engine {
            code: source.code(),
            retryable: source.kind() == ErrorKind::Unavailable,
            source,
        }
    }
}

/// The `errorType` of a failed invocation, as CloudWatch and the dead-letter queue show it.
/// A run that fails for a domain reason (a locked cluster, a provider error) is recorded in
/// the history and is a successful invocation, so these are only what stops a run from
/// being recorded at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorType {
    /// The event is not a transformer input or a Scheduled Event of a job rule, or names a
    /// malformed job id. Nothing was written; a redelivery fails the same way: fix the rule.
    BadEvent,
    /// The rule names a job that does not exist (a rule left behind). Nothing was written.
    JobNotFound,
    /// The state store failed; nothing or part of the run was recorded. Lambda's retry
    /// finishes it (a redelivery settles a run already begun).
    StoreUnavailable,
    /// A backup provider failed before a run could be recorded.
    ProviderFailed,
    /// The trigger scheduler failed (the runner arms no rules, so this should not happen).
    TriggerFailed,
    /// The engine refused the run for another reason (its `code` starts the message).
    RunRefused,
}

impl RunnerError {
    pub fn error_type(&self) -> ErrorType {
        let RunnerError::Engine { source, .. } = self else {
            return ErrorType::BadEvent;
        };
        match source {
            EngineError::Store(_) => ErrorType::StoreUnavailable,
            EngineError::Provider(_) | EngineError::ProviderUnavailable { .. } => {
                ErrorType::ProviderFailed
            }
            EngineError::Trigger(_) => ErrorType::TriggerFailed,
            EngineError::JobNotFound(_) => ErrorType::JobNotFound,
            // The only input of a run is the event's job id and instant.
            EngineError::Invalid { .. } => ErrorType::BadEvent,
            _ => ErrorType::RunRefused,
        }
    }
}

/// Serde's name of the type (`BadEvent`), the one way an enum becomes text.
impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(Value::String(name)) => f.write_str(&name),
            _ => Err(std::fmt::Error),
        }
    }
}

/// What the runtime reports for a failed invocation (the handler returns
/// `Result<_, RunnerError>`; `lambda_runtime` converts through this).
impl From<RunnerError> for Diagnostic {
    fn from(error: RunnerError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_string(),
            error_message: error.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TransformerInput {
    job_id: String,
    scheduled_time: DateTime<Utc>,
}

const EXPECTED: &str = "expected {\"jobId\": \"…\", \"scheduledTime\": \"<RFC 3339>\"}, {\"historyId\": \"…\"}, an EventBridge \"Scheduled Event\", an \"EBS Snapshot Notification\", an \"EBS Volume Notification\" or {\"sweep\": true}";

use backup_aws::ebs::{
    MULTI_VOLUME_SNAPSHOT_NOTIFICATION, SNAPSHOT_NOTIFICATION, VOLUME_NOTIFICATION,
};

/// What one invocation is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Run a job for one firing.
    Run(RunRequest),
    /// Settle what EC2 says of these snapshots (ids, not ARNs).
    Settle(Vec<(String, Notice)>),
    /// Settle the restore waiting on this volume (an id, not an ARN).
    SettleVolume(String, Notice),
    /// One sweep.
    Sweep,
    /// Make the queued run of this history id ("run now" on the deployed API).
    Queued(String),
    /// An EC2 snapshot event of another kind (`copySnapshot`, `shareSnapshot`): nothing to do.
    Ignore(String),
}

/// The `detail` of an `EBS Snapshot Notification`: `createSnapshot` names one snapshot,
/// `createSnapshots` (crash-consistent snapshots of an instance's volumes) a list.
#[derive(Deserialize)]
struct SnapshotDetail {
    event: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    cause: String,
    #[serde(default)]
    snapshot_id: Option<String>,
    #[serde(default)]
    snapshots: Vec<SnapshotOfSet>,
}

#[derive(Deserialize)]
struct SnapshotOfSet {
    snapshot_id: String,
    #[serde(default)]
    status: String,
}

/// `snap-…` from `arn:aws:ec2::<region>:snapshot/snap-…` (or a bare id).
fn snapshot_id(arn: &str) -> String {
    arn.rsplit_once("snapshot/")
        .map_or(arn, |(_, id)| id)
        .to_owned()
}

fn notice(result: &str, cause: &str) -> Notice {
    match result {
        "succeeded" | "completed" => Notice::Completed,
        other => Notice::Failed(if cause.trim().is_empty() {
            format!("EC2 reported the snapshot {other}")
        } else {
            format!("EC2 reported the snapshot {other}: {}", cause.trim())
        }),
    }
}

fn parse_snapshot_event(event: &CloudWatchEvent) -> Result<Request, RunnerError> {
    let detail = event.detail.clone().unwrap_or_default();
    let detail: SnapshotDetail = serde_path_to_error::deserialize(&detail).map_err(|e| {
        RunnerError::BadEvent(format!(
            "an {SNAPSHOT_NOTIFICATION} with a malformed detail: {e}"
        ))
    })?;
    match detail.event.as_str() {
        "createSnapshot" => {
            let Some(arn) = detail.snapshot_id else {
                return Err(RunnerError::BadEvent(format!(
                    "a createSnapshot {SNAPSHOT_NOTIFICATION} without `detail.snapshot_id`"
                )));
            };
            Ok(Request::Settle(vec![(
                snapshot_id(&arn),
                notice(&detail.result, &detail.cause),
            )]))
        }
        "createSnapshots" => Ok(Request::Settle(
            detail
                .snapshots
                .iter()
                .map(|s| {
                    let result = if s.status.is_empty() {
                        &detail.result
                    } else {
                        &s.status
                    };
                    (snapshot_id(&s.snapshot_id), notice(result, &detail.cause))
                })
                .collect(),
        )),
        other => Ok(Request::Ignore(other.to_owned())),
    }
}

/// The `detail` of an `EBS Volume Notification`; the volume is the event's resource.
#[derive(Deserialize)]
struct VolumeDetail {
    event: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    cause: String,
}

fn parse_volume_event(event: &CloudWatchEvent) -> Result<Request, RunnerError> {
    let detail = event.detail.clone().unwrap_or_default();
    let detail: VolumeDetail = serde_path_to_error::deserialize(&detail).map_err(|e| {
        RunnerError::BadEvent(format!(
            "an {VOLUME_NOTIFICATION} with a malformed detail: {e}"
        ))
    })?;
    if detail.event != "createVolume" {
        return Ok(Request::Ignore(detail.event));
    }
    // `arn:aws:ec2:<region>:<account>:volume/vol-…`
    let Some(volume) = event
        .resources
        .iter()
        .find_map(|arn| arn.rsplit_once("volume/").map(|(_, id)| id.to_owned()))
    else {
        return Err(RunnerError::BadEvent(format!(
            "a createVolume {VOLUME_NOTIFICATION} whose `resources` name no volume: {:?}",
            event.resources
        )));
    };
    let cause = detail.cause.trim();
    let notice = match detail.result.as_str() {
        "available" | "succeeded" => Notice::Completed,
        other if cause.is_empty() => Notice::Failed(format!("EC2 reported the volume {other}")),
        other => Notice::Failed(format!("EC2 reported the volume {other}: {cause}")),
    };
    Ok(Request::SettleVolume(volume, notice))
}

/// `event` as a `T`; a mismatch names the field at fault (`scheduledTime: …`).
fn read<T: DeserializeOwned>(event: &Value) -> Result<T, RunnerError> {
    serde_path_to_error::deserialize(event)
        .map_err(|e| RunnerError::BadEvent(format!("{e}; {EXPECTED}")))
}

/// Reads a job's firing without I/O.
pub fn parse_event(event: &Value, rule_prefix: &str) -> Result<RunRequest, RunnerError> {
    match parse_request(event, rule_prefix)? {
        Request::Run(run) => Ok(run),
        _ => Err(RunnerError::BadEvent(format!(
            "the event is not a job's firing; {EXPECTED}"
        ))),
    }
}

/// Reads any event the runner takes, without I/O.
pub fn parse_request(event: &Value, rule_prefix: &str) -> Result<Request, RunnerError> {
    let Some(object) = event.as_object() else {
        return Err(RunnerError::BadEvent(format!(
            "the event is not a JSON object; {EXPECTED}"
        )));
    };
    if let Some(sweep) = object.get("sweep") {
        if sweep == &Value::Bool(true) && object.len() == 1 {
            return Ok(Request::Sweep);
        }
        return Err(RunnerError::BadEvent(format!(
            "a sweep is exactly {{\"sweep\": true}}; {EXPECTED}"
        )));
    }
    if let Some(id) = object.get("historyId") {
        let Some(id) = id.as_str().filter(|id| !id.trim().is_empty()) else {
            return Err(RunnerError::BadEvent(format!(
                "`historyId` is not a run's id; {EXPECTED}"
            )));
        };
        return Ok(Request::Queued(id.to_owned()));
    }
    if object.contains_key("jobId") {
        let input: TransformerInput = read(event)?;
        if input.job_id.trim().is_empty() {
            return Err(RunnerError::BadEvent("`jobId` is empty".into()));
        }
        return Ok(Request::Run(RunRequest {
            job_id: input.job_id,
            scheduled: input.scheduled_time,
        }));
    }
    if object.contains_key("detail-type") {
        let e: CloudWatchEvent = read(event)?;
        let (detail_type, source) = (
            e.detail_type.as_deref().unwrap_or_default(),
            e.source.as_deref().unwrap_or_default(),
        );
        if (detail_type == SNAPSHOT_NOTIFICATION
            || detail_type == MULTI_VOLUME_SNAPSHOT_NOTIFICATION)
            && source == "aws.ec2"
        {
            return parse_snapshot_event(&e);
        }
        if detail_type == VOLUME_NOTIFICATION && source == "aws.ec2" {
            return parse_volume_event(&e);
        }
        if detail_type != "Scheduled Event" || source != "aws.events" {
            return Err(RunnerError::BadEvent(format!(
                "an EventBridge event of type `{detail_type}` from `{source}` is not a schedule; {EXPECTED}"
            )));
        }
        let job_ids: Vec<String> = e
            .resources
            .iter()
            .filter_map(|arn| arn.rsplit_once(":rule/").map(|(_, name)| name))
            // A rule on a custom event bus is `rule/<bus>/<name>`.
            .map(|name| name.rsplit('/').next().unwrap_or(name))
            .filter_map(|name| backup_aws::eventbridge::job_id_from_rule(rule_prefix, name))
            .collect();
        let job_id = match job_ids.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(RunnerError::BadEvent(format!(
                    "no rule in `resources` is named {rule_prefix}<jobId>: {:?}",
                    e.resources
                )))
            }
            _ => {
                return Err(RunnerError::BadEvent(format!(
                    "`resources` names several job rules: {:?}",
                    e.resources
                )))
            }
        };
        return Ok(Request::Run(RunRequest {
            job_id,
            scheduled: e.time,
        }));
    }
    Err(RunnerError::BadEvent(format!(
        "the event has neither `jobId` nor `detail-type`; {EXPECTED}"
    )))
}

/// What one snapshot notification settled, for the invocation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleReport {
    pub snapshot_id: String,
    /// `unknown` (no backup waits on it), `not-yet` (the backup has other snapshots still
    /// being made), `available` or `defunct`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_id: Option<String>,
}

/// What one volume notification settled, for the invocation's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    pub volume_id: String,
    /// `unknown` (no restore waits on it), `not-yet` (the restore has other volumes still
    /// being made), `available` or `failed`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

/// The invocation's answer, by what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Run(RunReport),
    Settled { settled: Vec<SettleReport> },
    Restored { restored: RestoreReport },
    Swept { sweep: SweepReport },
    Ignored { ignored: String },
}

/// Does what `event` asks for.
pub async fn handle(
    engine: &Engine,
    rule_prefix: &str,
    event: &Value,
) -> Result<Answer, RunnerError> {
    match parse_request(event, rule_prefix)? {
        Request::Run(request) => Ok(Answer::Run(run(engine, request).await?)),
        Request::Queued(history_id) => {
            let outcome = engine.run_queued(&history_id).await?;
            Ok(Answer::Run(report(outcome)))
        }
        Request::Settle(notices) => {
            let mut settled = Vec::new();
            for (snapshot_id, notice) in notices {
                let report = settle(engine, &snapshot_id, notice).await?;
                settled.push(report);
            }
            Ok(Answer::Settled { settled })
        }
        Request::SettleVolume(volume_id, notice) => {
            let (outcome, cluster_id) =
                match engine.settle_restore_notice(&volume_id, notice).await? {
                    RestoreSettled::Unknown => ("unknown", None),
                    RestoreSettled::NotYet { cluster_id } => ("not-yet", Some(cluster_id)),
                    RestoreSettled::Ended {
                        cluster_id,
                        available,
                    } => (
                        if available { "available" } else { "failed" },
                        Some(cluster_id),
                    ),
                };
            if outcome != "unknown" {
                tracing::info!(%volume_id, outcome, cluster_id = cluster_id.as_deref().unwrap_or_default(), "a volume notification for a restore");
            }
            Ok(Answer::Restored {
                restored: RestoreReport {
                    volume_id,
                    outcome: outcome.to_owned(),
                    cluster_id,
                },
            })
        }
        Request::Sweep => {
            let sweep = engine.sweep().await?;
            // The alarm on failed runs counts `RUN_FAILED` lines: what the sweep failed is a
            // failed run too (an interrupted one, a lost "run now", a backup past
            // SNAPSHOT_TIMEOUT), and must be as loud as one that failed by itself.
            for failure in sweep_failures(&sweep) {
                tracing::warn!("RUN_FAILED {failure}");
            }
            for problem in &sweep.problems {
                tracing::warn!(%problem, "the sweep could not finish something; the next sweep retries");
            }
            Ok(Answer::Swept { sweep })
        }
        Request::Ignore(kind) => {
            tracing::debug!(%kind, "an EBS snapshot event of a kind the runner does not settle");
            Ok(Answer::Ignored { ignored: kind })
        }
    }
}

async fn settle(
    engine: &Engine,
    snapshot_id: &str,
    notice: Notice,
) -> Result<SettleReport, RunnerError> {
    let settled = engine.settle_notice(snapshot_id, notice).await?;
    let (outcome, backup_id, history) = match settled {
        Settled::Unknown => ("unknown", None, None),
        Settled::NotYet { backup_id } => ("not-yet", Some(backup_id), None),
        Settled::Ended {
            backup_id,
            available,
            history,
        } => (
            if available { "available" } else { "defunct" },
            Some(backup_id),
            history,
        ),
    };
    if let Some(h) = &history {
        log_end(&RunReport {
            job_id: h.job_id.clone(),
            history_id: h.id.clone(),
            status: h.status,
            error_code: h.error_code,
            details: h.details.clone(),
            duplicate: false,
        });
    }
    Ok(SettleReport {
        snapshot_id: snapshot_id.to_owned(),
        outcome: outcome.to_owned(),
        backup_id,
        history_id: history.map(|h| h.id),
    })
}

/// Runs a job's firing: to its end, or until its snapshots are started and recorded.
async fn run(engine: &Engine, request: RunRequest) -> Result<RunReport, RunnerError> {
    let outcome = engine
        .run_scheduled(&request.job_id, request.scheduled)
        .await?;
    Ok(report(outcome))
}

/// The answer (and log line) of a run's delivery.
fn report(outcome: backup_engine::RunOutcome) -> RunReport {
    let h = outcome.history;
    let report = RunReport {
        job_id: h.job_id,
        history_id: h.id,
        status: h.status,
        error_code: h.error_code,
        details: h.details,
        duplicate: outcome.duplicate,
    };
    log_end(&report);
    report
}

/// One sentence per run (or backup) the sweep failed, for the `RUN_FAILED` lines.
fn sweep_failures(sweep: &SweepReport) -> Vec<String> {
    let abandoned = sweep.abandoned_runs.iter().map(|id| {
        format!("run {id} was left running by a runner that stopped; it is failed (interrupted)")
    });
    let lost = sweep.lost_runs.iter().map(|id| {
        format!("run {id} was queued but never reached the runner; it is failed (interrupted)")
    });
    let timed_out = sweep.timed_out.iter().map(|id| {
        format!(
            "backup {id} did not complete within SNAPSHOT_TIMEOUT; it is defunct \
             (provider_timeout)"
        )
    });
    abandoned.chain(lost).chain(timed_out).collect()
}

/// Logs how a run ended (or that it continues).
fn log_end(report: &RunReport) {
    // The alarm on failed runs counts this line (a metric filter on `RUN_FAILED`).
    if report.status == RunStatus::Failed && !report.duplicate {
        tracing::warn!(
            job_id = %report.job_id,
            history_id = %report.history_id,
            error_code = report.error_code.map(|c| c.to_string()).unwrap_or_default(),
            "RUN_FAILED {}",
            report.details
        );
    } else if report.status == RunStatus::Running {
        tracing::info!(job_id = %report.job_id, history_id = %report.history_id, duplicate = report.duplicate, "run started; its snapshots settle it");
    } else {
        tracing::info!(job_id = %report.job_id, history_id = %report.history_id, duplicate = report.duplicate, status = ?report.status, "run finished");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_run_and_backup_the_sweep_failed_gets_a_run_failed_line() {
        let sweep = super::SweepReport {
            abandoned_runs: vec!["h1".into()],
            lost_runs: vec!["h2".into()],
            timed_out: vec!["b1".into()],
            settled: vec!["b2".into()],
            ..super::SweepReport::default()
        };
        let lines = super::sweep_failures(&sweep);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].contains("h1") && lines[1].contains("h2") && lines[2].contains("b1"));
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn the_transformer_input_names_the_job_and_instant() {
        let r = parse_event(
            &json!({"jobId": "c196ogto0aeqohe3ommq", "scheduledTime": "2026-11-27T05:00:00Z"}),
            "backup-job-",
        )
        .unwrap();
        assert_eq!(r.job_id, "c196ogto0aeqohe3ommq");
        assert_eq!(r.scheduled.to_rfc3339(), "2026-11-27T05:00:00+00:00");
    }

    #[test]
    fn a_scheduled_event_names_the_job_by_its_rule() {
        let r = parse_event(
            &serde_json::from_str(include_str!("../tests/fixtures/scheduled-event.json")).unwrap(),
            "backup-job-",
        )
        .unwrap();
        assert_eq!(r.job_id, "c196ogto0aeqohe3ommq");
    }

    #[test]
    fn malformed_events_say_what_was_expected() {
        for (event, needle) in [
            (json!([]), "not a JSON object"),
            (json!({"hello": 1}), "neither `jobId`"),
            (
                json!({"jobId": "x", "scheduledTime": "yesterday"}),
                "scheduledTime",
            ),
            (json!({"jobId": "x"}), "scheduledTime"),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-27T05:00:00Z", "resources": ["arn:aws:events:us-east-1:123456789012:rule/other"]}),
                "no rule",
            ),
            (
                json!({"detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-27T05:00:00Z", "resources": []}),
                "not a schedule",
            ),
        ] {
            let err = parse_event(&event, "backup-job-").unwrap_err().to_string();
            assert!(err.contains(needle), "{event}: {err}");
        }
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_snapshot_notification_names_the_snapshot_and_its_result() {
        let event = fixture("ebs-snapshot-notification.json");
        assert_eq!(
            parse_request(&event, "backup-job-").unwrap(),
            Request::Settle(vec![("snap-01234567890abcdef".into(), Notice::Completed)])
        );
        let mut failed = event.clone();
        failed["detail"]["result"] = json!("failed");
        failed["detail"]["cause"] = json!("Volume vol-01234567890abcdef was detached.");
        let Request::Settle(notices) = parse_request(&failed, "backup-job-").unwrap() else {
            panic!("a settle")
        };
        let Notice::Failed(reason) = &notices[0].1 else {
            panic!("{notices:?}")
        };
        assert!(reason.contains("was detached"), "{reason}");
        let set = fixture("ebs-snapshots-notification.json");
        assert_eq!(
            parse_request(&set, "backup-job-").unwrap(),
            Request::Settle(vec![
                ("snap-0aaaaaaaaaaaaaaaa".into(), Notice::Completed),
                ("snap-0bbbbbbbbbbbbbbbb".into(), Notice::Completed),
            ])
        );
        let mut copy = event;
        copy["detail"]["event"] = json!("copySnapshot");
        assert_eq!(
            parse_request(&copy, "backup-job-").unwrap(),
            Request::Ignore("copySnapshot".into())
        );
    }

    #[test]
    fn a_volume_notification_names_the_volume_and_its_result() {
        let event = fixture("ebs-volume-notification.json");
        assert_eq!(
            parse_request(&event, "backup-job-").unwrap(),
            Request::SettleVolume("vol-01234567890abcdef".into(), Notice::Completed)
        );
        let mut failed = event.clone();
        failed["detail"]["result"] = json!("failed");
        failed["detail"]["cause"] = json!("The KMS key is disabled.");
        let Request::SettleVolume(_, Notice::Failed(reason)) =
            parse_request(&failed, "backup-job-").unwrap()
        else {
            panic!("a failed volume")
        };
        assert!(reason.contains("KMS key is disabled"), "{reason}");
        let mut attach = event.clone();
        attach["detail"]["event"] = json!("attachVolume");
        assert_eq!(
            parse_request(&attach, "backup-job-").unwrap(),
            Request::Ignore("attachVolume".into())
        );
        let mut nameless = event;
        nameless["resources"] = json!([]);
        let err = parse_request(&nameless, "backup-job-")
            .unwrap_err()
            .to_string();
        assert!(err.contains("name no volume"), "{err}");
    }

    #[test]
    fn a_sweep_is_exactly_sweep_true() {
        assert_eq!(
            parse_request(&json!({"sweep": true}), "p-").unwrap(),
            Request::Sweep
        );
        for bad in [
            json!({"sweep": false}),
            json!({"sweep": true, "jobId": "x"}),
        ] {
            let err = parse_request(&bad, "p-").unwrap_err().to_string();
            assert!(err.contains("{\"sweep\": true}"), "{err}");
        }
    }

    #[test]
    fn the_scheduled_event_fixture_is_aws_lambda_events_shape() {
        let fixture: Value =
            serde_json::from_str(include_str!("../tests/fixtures/scheduled-event.json")).unwrap();
        let event: CloudWatchEvent = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(serde_json::to_value(&event).unwrap(), fixture);
    }

    #[test]
    fn each_failure_has_an_error_type_an_operator_can_act_on() {
        let engine = |e: EngineError| RunnerError::from(e);
        let cases = [
            (
                parse_event(&json!({"hello": 1}), "backup-job-").unwrap_err(),
                "BadEvent",
            ),
            (
                engine(EngineError::Invalid {
                    detail: "jobId is malformed".into(),
                    fields: Default::default(),
                }),
                "BadEvent",
            ),
            (engine(EngineError::JobNotFound("j1".into())), "JobNotFound"),
            (
                engine(EngineError::Store(backup_engine::StoreError::Corrupt(
                    "x".into(),
                ))),
                "StoreUnavailable",
            ),
            (
                engine(EngineError::Provider(backup_engine::ProviderError::new(
                    "EC2 is down",
                ))),
                "ProviderFailed",
            ),
            (engine(EngineError::JobDeleted("j1".into())), "RunRefused"),
        ];
        for (error, expected) in cases {
            let message = error.to_string();
            let diagnostic = Diagnostic::from(error);
            assert_eq!(diagnostic.error_type, expected, "{message}");
            assert_eq!(diagnostic.error_message, message);
        }
    }
}
