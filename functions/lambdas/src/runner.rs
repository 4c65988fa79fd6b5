//! `backup-runner`: one scheduled run per invocation.
//!
//! The input is what each job rule's input transformer sends,
//! `{"jobId": "…", "scheduledTime": "2026-11-27T05:00:00Z"}`, or a plain EventBridge
//! "Scheduled Event", whose job is found from the rule name in `resources`
//! (`arn:aws:events:…:rule/<RULE_PREFIX><jobId>[-2]`) and whose instant is `time`.
//! Anything else is a [`RunnerError::BadEvent`] that says what was expected, before any
//! write.

use backup_core::api::RunStatus;
use backup_engine::{Engine, EngineError, ErrorKind};
use chrono::{DateTime, Utc};
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
    pub error_code: Option<String>,
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TransformerInput {
    job_id: String,
    scheduled_time: String,
}

#[derive(Deserialize)]
struct ScheduledEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    time: String,
    #[serde(default)]
    resources: Vec<String>,
}

fn instant(field: &str, text: &str) -> Result<DateTime<Utc>, RunnerError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            RunnerError::BadEvent(format!(
                "`{field}` is `{text}`, not an RFC 3339 instant such as 2026-11-27T05:00:00Z ({e})"
            ))
        })
}

/// Reads an event without I/O.
pub fn parse_event(event: &Value, rule_prefix: &str) -> Result<RunRequest, RunnerError> {
    const EXPECTED: &str = "expected {\"jobId\": \"…\", \"scheduledTime\": \"<RFC 3339>\"} or an EventBridge \"Scheduled Event\"";
    let Some(object) = event.as_object() else {
        return Err(RunnerError::BadEvent(format!(
            "the event is not a JSON object; {EXPECTED}"
        )));
    };
    if object.contains_key("jobId") {
        let input: TransformerInput = serde_json::from_value(event.clone())
            .map_err(|e| RunnerError::BadEvent(format!("{e}; {EXPECTED}")))?;
        if input.job_id.trim().is_empty() {
            return Err(RunnerError::BadEvent("`jobId` is empty".into()));
        }
        return Ok(RunRequest {
            scheduled: instant("scheduledTime", &input.scheduled_time)?,
            job_id: input.job_id,
        });
    }
    if object.contains_key("detail-type") {
        let e: ScheduledEvent = serde_json::from_value(event.clone())
            .map_err(|e| RunnerError::BadEvent(format!("{e}; {EXPECTED}")))?;
        if e.detail_type != "Scheduled Event" || e.source != "aws.events" {
            return Err(RunnerError::BadEvent(format!(
                "an EventBridge event of type `{}` from `{}` is not a schedule; {EXPECTED}",
                e.detail_type, e.source
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
        return Ok(RunRequest {
            job_id,
            scheduled: instant("time", &e.time)?,
        });
    }
    Err(RunnerError::BadEvent(format!(
        "the event has neither `jobId` nor `detail-type`; {EXPECTED}"
    )))
}

/// Runs what `event` asks for, to the end.
pub async fn handle(
    engine: &Engine,
    rule_prefix: &str,
    event: &Value,
) -> Result<RunReport, RunnerError> {
    let request = parse_event(event, rule_prefix)?;
    let outcome = engine
        .run_scheduled(&request.job_id, request.scheduled)
        .await?;
    let h = outcome.history;
    let report = RunReport {
        job_id: h.job_id,
        history_id: h.id,
        status: h.status,
        error_code: h.error_code,
        details: h.details,
        duplicate: outcome.duplicate,
    };
    // The alarm on failed runs counts this line (a metric filter on `RUN_FAILED`).
    if report.status == RunStatus::Failed && !report.duplicate {
        tracing::warn!(
            job_id = %report.job_id,
            history_id = %report.history_id,
            error_code = report.error_code.as_deref().unwrap_or(""),
            "RUN_FAILED {}",
            report.details
        );
    } else {
        tracing::info!(job_id = %report.job_id, history_id = %report.history_id, duplicate = report.duplicate, status = ?report.status, "run finished");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
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
}
