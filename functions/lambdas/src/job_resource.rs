//! `job-resource`: the CloudFormation custom resource `Custom::ScheduledBackupJob` (SPEC
//! §17), so a stack can declare a scheduled backup job beside the cluster it backs up.
//!
//! # Properties
//! CloudFormation's PascalCase names for the job's fields (every value arrives as a string;
//! `MaxBackupCount` may be `"3"` or `3`):
//!
//! | property | job field | |
//! |---|---|---|
//! | `ServiceToken` | — | the function's ARN (the stack's `JobServiceToken` export) |
//! | `OrganizationId` | `organizationId` | optional, `default` |
//! | `ProjectId` | `projectId` | optional, `default` |
//! | `Description` | `description` | what the job is for |
//! | `Schedule` | `schedule` | five cron fields in UTC, at most hourly |
//! | `ClusterId` | `data.clusterId` | a cluster registered in the project |
//! | `BackupDescription` | `data.description` | each backup's description template |
//! | `MaxBackupCount` | `data.maxBackupCount` | how many backups the job keeps |
//!
//! Any other property is refused, so a misspelt one does not silently leave a job without
//! its setting. The resource's `Fn::GetAtt` attribute is `JobId` (also its `Ref`).
//!
//! # Decisions
//! - **Validation** is the core's, as for `POST …/jobs`: a Create or Update with problems
//!   answers `FAILED` with every problem as `<Property>: <code> <message>` (`Schedule:
//!   too_frequent …`), which `sam deploy` shows, and makes or changes nothing.
//! - **Idempotent creation**: the job id is derived from the stack id and the logical id
//!   (SHA-256, as a 20-character id), so a Create delivered again (Lambda retries an
//!   invocation that failed) answers the job the first delivery made. When that id is taken
//!   by a deleted job (the resource was removed from the stack and added back) the request
//!   id is mixed in, which a redelivery shares too.
//! - **Update**: the same organization, project and cluster update the job in place (PATCH
//!   semantics of [`Engine::update_job`]: its id, backups and history stay). Another
//!   cluster, organization or project is a replacement: a new job (its id from the request
//!   id), whose id CloudFormation sees change and so sends a Delete for the old one.
//! - **Delete** deletes the job (its backups and history stay). A job that does not exist,
//!   is already deleted or whose physical id is no job id (what a failed Create answered) is
//!   deleted already: `SUCCESS`, or the stack could never be deleted.
//! - **Always an answer**: whatever fails (bad properties, a store or trigger error), the
//!   function PUTs `FAILED` with the reason to the pre-signed `ResponseURL`, so the stack
//!   never waits an hour for a timeout. Only an event without a `ResponseURL` (which cannot
//!   be answered) and a failed PUT are invocation errors, the latter retried by Lambda.
//! - **The answer** is CloudFormation's documented JSON body, PUT with an empty
//!   `Content-Type` (the URL is pre-signed for exactly that); `Reason` is cut so the body
//!   stays within CloudFormation's 4 KiB.

use std::time::Duration;

use backup_core::api::{CreateJobRequest, ScheduledBackupData, UpdateJobRequest};
use backup_engine::{Engine, EngineError, NamedCreation, Scope};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The resource type this function serves.
pub const RESOURCE_TYPE: &str = "Custom::ScheduledBackupJob";
/// The organization and project of a job whose properties name none.
pub const DEFAULT_SCOPE: &str = "default";
/// CloudFormation refuses an answer larger than this.
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// How long the PUT of the answer may take.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the function could not answer CloudFormation (an invocation error).
#[derive(Debug, thiserror::Error)]
pub enum JobResourceError {
    /// The event has no `ResponseURL`: nobody can be told anything.
    #[error("the event is not a CloudFormation custom resource request: {0}")]
    BadEvent(String),
    /// The answer could not be delivered; Lambda retries the invocation, which finds the
    /// same job.
    #[error("could not send the answer to CloudFormation's response URL: {0}")]
    Unanswered(String),
}

impl From<JobResourceError> for lambda_runtime::Diagnostic {
    fn from(error: JobResourceError) -> Self {
        let error_type = match &error {
            JobResourceError::BadEvent(_) => "BadEvent",
            JobResourceError::Unanswered(_) => "Unanswered",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// What every request carries to be answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(rename = "ResponseURL")]
    response_url: String,
    #[serde(default)]
    stack_id: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    logical_resource_id: String,
    #[serde(default)]
    physical_resource_id: Option<String>,
}

/// The rest of a request, read once it can be answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    request_type: RequestType,
    #[serde(default)]
    resource_properties: Value,
    #[serde(default)]
    old_resource_properties: Option<Value>,
}

/// The job's properties as CloudFormation sends them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Properties {
    #[serde(default)]
    pub service_token: Option<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub cluster_id: Option<String>,
    #[serde(default)]
    pub backup_description: Option<String>,
    #[serde(default)]
    pub max_backup_count: Option<Value>,
}

/// CloudFormation's answer body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub no_echo: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<ResponseData>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

/// The attributes `Fn::GetAtt` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseData {
    pub job_id: String,
}

/// A failed request: what `Reason` says.
struct Refusal(String);

impl From<EngineError> for Refusal {
    fn from(error: EngineError) -> Self {
        let problems = error.problems();
        let fields = error.fields();
        if problems.is_empty() && fields.is_empty() {
            return Refusal(format!("{} ({})", error, error.code()));
        }
        let mut parts = Vec::new();
        for (field, list) in &problems {
            for problem in list {
                parts.push(format!(
                    "{}: {} {}",
                    property_of(field),
                    problem.code,
                    problem.message
                ));
            }
        }
        for (field, message) in &fields {
            if !problems.contains_key(field) {
                parts.push(format!("{}: {message}", property_of(field)));
            }
        }
        Refusal(parts.join("; "))
    }
}

/// The property a problem of the job's JSON path `field` is about.
fn property_of(field: &str) -> &str {
    match field {
        "description" => "Description",
        "schedule" => "Schedule",
        "data.clusterId" => "ClusterId",
        "data.description" => "BackupDescription",
        "data.maxBackupCount" => "MaxBackupCount",
        "org" | "organizationId" => "OrganizationId",
        "project" | "projectId" => "ProjectId",
        other => other,
    }
}

impl Properties {
    /// Reads `value` (the request's `ResourceProperties`), every problem named by property.
    fn read(value: &Value) -> Result<Properties, Refusal> {
        if value.is_null() {
            return Ok(Properties::default());
        }
        serde_json::from_value(value.clone()).map_err(|e| {
            Refusal(format!(
                "The properties are not those of {RESOURCE_TYPE}: {e}"
            ))
        })
    }

    fn scope(&self) -> Result<Scope, Refusal> {
        Scope::new(
            self.organization_id.as_deref().unwrap_or(DEFAULT_SCOPE),
            self.project_id.as_deref().unwrap_or(DEFAULT_SCOPE),
        )
        .map_err(Refusal::from)
    }

    /// `MaxBackupCount` as a number: CloudFormation sends `"3"`, a hand-made event `3`.
    fn max_backup_count(&self) -> Result<Option<i64>, Refusal> {
        match &self.max_backup_count {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(Value::String(text)) if text.trim().parse::<i64>().is_ok() => {
                Ok(text.trim().parse::<i64>().ok())
            }
            Some(other) => Err(Refusal(format!(
                "MaxBackupCount: invalid_value write a whole number such as \"3\"; {other} is \
                 not one."
            ))),
        }
    }

    fn job(&self) -> Result<CreateJobRequest, Refusal> {
        Ok(CreateJobRequest {
            description: self.description.clone(),
            schedule: self.schedule.clone(),
            job_type: None,
            data: Some(ScheduledBackupData {
                cluster_id: self.cluster_id.clone(),
                description: self.backup_description.clone(),
                max_backup_count: self.max_backup_count()?,
            }),
        })
    }

    /// Whether a job of `self` is another job than one of `old`: a job's cluster, and the
    /// project it lives in, cannot change.
    fn replaces(&self, old: &Properties) -> bool {
        let or_default = |v: &Option<String>| v.clone().unwrap_or_else(|| DEFAULT_SCOPE.into());
        self.cluster_id != old.cluster_id
            || or_default(&self.organization_id) != or_default(&old.organization_id)
            || or_default(&self.project_id) != or_default(&old.project_id)
    }
}

/// A job id (20 characters of `0-9a-v`, as the engine's) derived from `parts`.
pub fn derived_job_id(parts: &[&str]) -> String {
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        // A separator no id contains, so ("ab", "c") and ("a", "bc") differ.
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    // The first 100 bits, five at a time.
    let mut bits: u128 = 0;
    for byte in &digest[..13] {
        bits = (bits << 8) | u128::from(*byte);
    }
    bits >>= 4;
    (0..20)
        .rev()
        .map(|i| char::from(DIGITS[((bits >> (i * 5)) & 31) as usize]))
        .collect()
}

/// Answers one request: the URL to PUT the answer to, and the answer. Never fails once the
/// request can be answered: every error becomes a `FAILED` answer.
pub async fn respond(
    engine: &Engine,
    event: &Value,
) -> Result<(String, Response), JobResourceError> {
    let envelope: Envelope = serde_json::from_value(event.clone())
        .map_err(|e| JobResourceError::BadEvent(e.to_string()))?;
    if !envelope.response_url.starts_with("https://")
        && !envelope.response_url.starts_with("http://")
    {
        return Err(JobResourceError::BadEvent(format!(
            "ResponseURL `{}` is not an http(s) URL",
            envelope.response_url.chars().take(80).collect::<String>()
        )));
    }
    let outcome = match serde_json::from_value::<Request>(event.clone()) {
        Ok(request) => decide(engine, &envelope, &request).await,
        Err(e) => Err(Refusal(format!(
            "The request is not a Create, Update or Delete of {RESOURCE_TYPE}: {e}"
        ))),
    };
    let response = match outcome {
        Ok(job_id) => Response {
            status: Status::Success,
            reason: None,
            physical_resource_id: job_id.clone(),
            stack_id: envelope.stack_id.clone(),
            request_id: envelope.request_id.clone(),
            logical_resource_id: envelope.logical_resource_id.clone(),
            no_echo: false,
            data: Some(ResponseData { job_id }),
        },
        Err(Refusal(reason)) => {
            tracing::warn!(logical_id = %envelope.logical_resource_id, %reason, "request failed");
            Response {
                status: Status::Failed,
                reason: Some(reason),
                physical_resource_id: failed_physical_id(&envelope),
                stack_id: envelope.stack_id.clone(),
                request_id: envelope.request_id.clone(),
                logical_resource_id: envelope.logical_resource_id.clone(),
                no_echo: false,
                data: None,
            }
        }
    };
    Ok((envelope.response_url, fit(response)))
}

/// The physical id of a failed answer: the resource's own when it has one (a failed
/// Update leaves the job as it was), else one that is no job id, so the Delete that
/// follows a failed Create finds nothing to delete.
fn failed_physical_id(envelope: &Envelope) -> String {
    match &envelope.physical_resource_id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => format!(
            "not-created-{}",
            envelope
                .logical_resource_id
                .chars()
                .take(200)
                .collect::<String>()
        ),
    }
}

/// Cuts `Reason` until the body fits CloudFormation's limit.
fn fit(mut response: Response) -> Response {
    while serde_json::to_vec(&response).map_or(0, |b| b.len()) > MAX_RESPONSE_BYTES {
        let Some(reason) = response.reason.as_mut() else {
            break;
        };
        let keep = reason.chars().count().saturating_sub(64);
        *reason = reason.chars().take(keep).collect::<String>();
        reason.push('…');
        if keep == 0 {
            break;
        }
    }
    response
}

/// The job id to answer, or why not.
async fn decide(
    engine: &Engine,
    envelope: &Envelope,
    request: &Request,
) -> Result<String, Refusal> {
    let properties = Properties::read(&request.resource_properties);
    match request.request_type {
        RequestType::Create => {
            let properties = properties?;
            create(engine, envelope, &properties, false).await
        }
        RequestType::Update => {
            let properties = properties?;
            let old = match &request.old_resource_properties {
                Some(old) => Properties::read(old)?,
                None => Properties::default(),
            };
            let job_id = envelope.physical_resource_id.clone().unwrap_or_default();
            if properties.replaces(&old) {
                return create(engine, envelope, &properties, true).await;
            }
            let patch: UpdateJobRequest = properties.job()?;
            // The stack states the whole job: a property taken out of the template is a
            // missing one, as in a Create, not "keep what the job has".
            backup_core::job::validate_job(&patch)
                .map_err(|problems| Refusal::from(EngineError::from_problems(problems)))?;
            let job = engine
                .update_job(&properties.scope()?, &job_id, &patch)
                .await?;
            Ok(job.id)
        }
        RequestType::Delete => {
            let job_id = envelope.physical_resource_id.clone().unwrap_or_default();
            // Properties that cannot be read belong to a Create that failed: no job.
            let Ok(scope) = properties.and_then(|p| p.scope()) else {
                return Ok(job_id);
            };
            match engine.delete_job(&scope, &job_id).await {
                Ok(()) | Err(EngineError::JobNotFound(_) | EngineError::Invalid { .. }) => {
                    Ok(job_id)
                }
                Err(error) => Err(error.into()),
            }
        }
    }
}

/// Creates the resource's job under its derived id: from the stack and logical id (a
/// replacement: the request id too), or, when that id is a deleted job's, the request id
/// mixed in.
async fn create(
    engine: &Engine,
    envelope: &Envelope,
    properties: &Properties,
    replacement: bool,
) -> Result<String, Refusal> {
    let scope = properties.scope()?;
    let request = properties.job()?;
    let base = [
        envelope.stack_id.as_str(),
        envelope.logical_resource_id.as_str(),
    ];
    let with_request = [base[0], base[1], envelope.request_id.as_str()];
    let mut candidates = vec![derived_job_id(&with_request)];
    if !replacement {
        candidates.insert(0, derived_job_id(&base));
    }
    for id in &candidates {
        match engine.create_job_with_id(&scope, &request, id).await? {
            NamedCreation::Created(job) | NamedCreation::Existing(job) => return Ok(job.id),
            NamedCreation::Taken => continue,
        }
    }
    Err(Refusal(format!(
        "The job ids derived for {} in this stack are taken by deleted jobs; rename the \
         resource's logical id.",
        envelope.logical_resource_id
    )))
}

/// PUTs `response` to the pre-signed `url` with an empty `Content-Type`, as CloudFormation
/// documents for custom resources.
pub async fn send(url: &str, response: &Response) -> Result<(), JobResourceError> {
    let body =
        serde_json::to_vec(response).map_err(|e| JobResourceError::Unanswered(e.to_string()))?;
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(PUT_TIMEOUT))
            .http_status_as_error(true)
            .build()
            .into();
        agent
            .put(&url)
            .header("Content-Type", "")
            .send(&body[..])
            .map(|_| ())
            .map_err(|e| JobResourceError::Unanswered(e.to_string()))
    })
    .await
    .map_err(|e| JobResourceError::Unanswered(e.to_string()))?
}

/// The handler: answers the request, then tells CloudFormation.
pub async fn handle(engine: &Engine, event: Value) -> Result<Response, JobResourceError> {
    let (url, response) = respond(engine, &event).await?;
    send(&url, &response).await?;
    tracing::info!(status = ?response.status, physical_id = %response.physical_resource_id, "answered");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_job_ids_and_depend_on_every_part() {
        let a = derived_job_id(&["arn:aws:cloudformation:…:stack/s/1", "NightlyJob"]);
        assert_eq!(a.len(), 20);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c)));
        assert_eq!(
            a,
            derived_job_id(&["arn:aws:cloudformation:…:stack/s/1", "NightlyJob"])
        );
        assert_ne!(
            a,
            derived_job_id(&["arn:aws:cloudformation:…:stack/s/2", "NightlyJob"])
        );
        assert_ne!(derived_job_id(&["ab", "c"]), derived_job_id(&["a", "bc"]));
    }

    #[test]
    fn properties_take_numbers_as_strings_and_refuse_unknown_names() {
        let p = Properties::read(&serde_json::json!({"MaxBackupCount": "3", "ClusterId": "c1"}))
            .ok()
            .unwrap();
        assert_eq!(p.max_backup_count().ok().flatten(), Some(3));
        let p = Properties::read(&serde_json::json!({"MaxBackupCount": 4}))
            .ok()
            .unwrap();
        assert_eq!(p.max_backup_count().ok().flatten(), Some(4));
        let p = Properties::read(&serde_json::json!({"MaxBackupCount": "three"}))
            .ok()
            .unwrap();
        assert!(p.max_backup_count().is_err());
        let Err(Refusal(reason)) = Properties::read(&serde_json::json!({"MaxBackupCnt": "3"}))
        else {
            panic!("accepted")
        };
        assert!(reason.contains("MaxBackupCnt"), "{reason}");
    }

    #[test]
    fn a_long_reason_is_cut_to_fit_the_answer() {
        let response = fit(Response {
            status: Status::Failed,
            reason: Some("x".repeat(10_000)),
            physical_resource_id: "p".into(),
            stack_id: "s".into(),
            request_id: "r".into(),
            logical_resource_id: "l".into(),
            no_echo: false,
            data: None,
        });
        let size = serde_json::to_vec(&response).unwrap().len();
        assert!(size <= MAX_RESPONSE_BYTES, "{size}");
        assert!(response.reason.unwrap().ends_with('…'));
    }
}
