//! Job triggers as EventBridge rules (SPEC §10).
//!
//! A job's schedule becomes one or two `cron(...)` expressions
//! (`backup_core::Schedule::eventbridge`); each becomes a rule named `<RULE_PREFIX><jobId>`
//! (the second `<RULE_PREFIX><jobId>-2`) with one target, the runner function, whose input
//! transformer passes `{"jobId": "<id>", "scheduledTime": "<the event's time>"}`.
//!
//! - **All or nothing**: if any call fails while arming a job, the rules already made for it
//!   are removed before the error is returned, so the engine's undo of the job record leaves
//!   nothing behind. `PutTargets` answers 200 with `FailedEntryCount` for a target it could
//!   not add; that is a failure too.
//! - **Re-arming** a job whose schedule changed (SPEC §17) puts the new expressions on the
//!   same rules, then removes a surplus one; when that fails the old expressions are put
//!   back, so the job keeps its rules and its old schedule.
//! - **Removal** deletes the targets, then the rules; a rule that does not exist is already
//!   removed (the typed `ResourceNotFoundException`).
//! - **Delivery**: the target carries a retry policy ([`delivery_retries`]) and, when one is
//!   configured (`DEAD_LETTER_QUEUE_ARN`), a dead-letter queue: a firing EventBridge could not
//!   hand to the runner (the invoke throttled or refused for the whole retry window) lands
//!   there with the rule's ARN and the error, instead of vanishing; the template's
//!   `FailedInvocations` alarm says so. The queue's policy must let `events.amazonaws.com`
//!   send from the job rules (the template's does).

use async_trait::async_trait;
use aws_sdk_eventbridge::types::{
    DeadLetterConfig, InputTransformer, RetryPolicy, RuleState, Target,
};
use aws_sdk_eventbridge::Client;
use backup_engine::ports::TriggerScheduler;
use backup_engine::{JobRecord, TriggerError};

use crate::failure::FailedCall;

/// The id of the runner target on every job rule.
pub const TARGET_ID: &str = "backup-runner";
/// How many rules a job can need (both day fields restricted → two).
pub const MAX_RULES_PER_JOB: usize = 2;

/// How long EventBridge keeps trying to hand a firing to the runner: one hour, not its
/// default of a day. A firing is for its scheduled instant; a job fires at most hourly, so a
/// firing still undelivered after an hour is overtaken by the job's next one (with which it
/// would contend for the cluster's lock). It goes to the dead-letter queue instead, and the
/// `FailedInvocations` alarm tells the operator within the hour rather than the next day.
pub const MAX_EVENT_AGE_SECONDS: i32 = 3600;
/// EventBridge's own maximum of retries: within [`MAX_EVENT_AGE_SECONDS`], the age, not the
/// count, is what ends them (EventBridge backs off between attempts).
pub const MAX_RETRY_ATTEMPTS: i32 = 185;

/// Arms and disarms job rules.
#[derive(Clone, Debug)]
pub struct EventBridgeTriggers {
    client: Client,
    rule_prefix: String,
    runner_arn: String,
    /// Where a rule puts a firing it could not deliver (`DEAD_LETTER_QUEUE_ARN`).
    dead_letter_arn: Option<String>,
}

impl EventBridgeTriggers {
    pub fn new(
        client: Client,
        rule_prefix: impl Into<String>,
        runner_arn: impl Into<String>,
    ) -> Self {
        EventBridgeTriggers {
            client,
            rule_prefix: rule_prefix.into(),
            runner_arn: runner_arn.into(),
            dead_letter_arn: None,
        }
    }

    /// Rules made from now on put what they could not deliver into the SQS queue `arn`
    /// (`None`: no dead-letter queue).
    pub fn with_dead_letter_queue(mut self, arn: Option<String>) -> Self {
        self.dead_letter_arn = arn;
        self
    }

    /// The name of the job's `n`-th rule (0-based).
    pub fn rule_name(&self, job_id: &str, n: usize) -> String {
        rule_name(&self.rule_prefix, job_id, n)
    }

    async fn arm(&self, job: &JobRecord) -> Result<(), TriggerError> {
        let schedule = job.parsed_schedule().map_err(|e| {
            TriggerError::new(format!("job {} has an invalid schedule: {e}", job.id))
        })?;
        let expressions = schedule.eventbridge();
        if expressions.is_empty() || expressions.len() > MAX_RULES_PER_JOB {
            return Err(TriggerError::new(format!(
                "job {}'s schedule translates to {} EventBridge expressions",
                job.id,
                expressions.len()
            )));
        }
        for (n, expression) in expressions.iter().enumerate() {
            let name = self.rule_name(&job.id, n);
            self.client
                .put_rule()
                .name(&name)
                .schedule_expression(expression)
                .state(RuleState::Enabled)
                .description(format!(
                    "Scheduled backup job {} ({})",
                    job.id, job.schedule
                ))
                .send()
                .await
                .map_err(|e| failed(&format!("PutRule {name}"), e))?;
            let target = Target::builder()
                .id(TARGET_ID)
                .arn(&self.runner_arn)
                .input_transformer(transformer(&job.id)?)
                .retry_policy(delivery_retries())
                .set_dead_letter_config(
                    self.dead_letter_arn
                        .as_ref()
                        .map(|arn| DeadLetterConfig::builder().arn(arn).build()),
                )
                .build()
                .map_err(|e| TriggerError {
                    message: format!("cannot describe the target of rule {name}: {e}"),
                    source: Some(Box::new(e)),
                })?;
            let out = self
                .client
                .put_targets()
                .rule(&name)
                .targets(target)
                .send()
                .await
                .map_err(|e| failed(&format!("PutTargets {name}"), e))?;
            if out.failed_entry_count > 0 {
                let reasons: Vec<String> = out
                    .failed_entries()
                    .iter()
                    .map(|f| {
                        format!(
                            "{}: {}",
                            f.error_code().unwrap_or("error"),
                            f.error_message().unwrap_or("no message")
                        )
                    })
                    .collect();
                return Err(TriggerError::new(format!(
                    "EventBridge did not add the runner target to rule {name} ({})",
                    reasons.join("; ")
                )));
            }
        }
        // A schedule that needed two rules before and one now: drop the surplus.
        for n in expressions.len()..MAX_RULES_PER_JOB {
            self.remove_rule(&self.rule_name(&job.id, n)).await?;
        }
        Ok(())
    }

    async fn remove_rule(&self, name: &str) -> Result<(), TriggerError> {
        match self
            .client
            .remove_targets()
            .rule(name)
            .ids(TARGET_ID)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) =>
            {
                return Ok(());
            }
            Err(e) => return Err(failed(&format!("RemoveTargets {name}"), e)),
        }
        match self.client.delete_rule().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(&format!("DeleteRule {name}"), e)),
        }
    }
}

/// `<prefix><jobId>`, then `<prefix><jobId>-2`.
pub fn rule_name(prefix: &str, job_id: &str, n: usize) -> String {
    if n == 0 {
        format!("{prefix}{job_id}")
    } else {
        format!("{prefix}{job_id}-{}", n + 1)
    }
}

/// The job id a rule name belongs to (what the runner reads from a plain Scheduled Event).
pub fn job_id_from_rule(prefix: &str, rule_name: &str) -> Option<String> {
    let rest = rule_name.strip_prefix(prefix)?;
    let id = match rest.rsplit_once('-') {
        Some((id, suffix)) if suffix.parse::<usize>().is_ok() => id,
        _ => rest,
    };
    (!id.is_empty()).then(|| id.to_owned())
}

/// How long and how often EventBridge retries handing a firing to the runner.
pub fn delivery_retries() -> RetryPolicy {
    RetryPolicy::builder()
        .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECONDS)
        .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
        .build()
}

/// `{"jobId": "<id>", "scheduledTime": <time>}`: `<time>` is replaced by the event's
/// `time` (a JSON string, quoted by EventBridge).
fn transformer(job_id: &str) -> Result<InputTransformer, TriggerError> {
    let job = serde_json::Value::String(job_id.to_owned());
    InputTransformer::builder()
        .input_paths_map("time", "$.time")
        .input_template(format!(r#"{{"jobId": {job}, "scheduledTime": <time>}}"#))
        .build()
        .map_err(|e| TriggerError {
            message: format!("cannot describe the input transformer of job {job_id}: {e}"),
            source: Some(Box::new(e)),
        })
}

fn failed(call: &str, e: impl FailedCall) -> TriggerError {
    let failure = e.describe("EventBridge", call);
    TriggerError {
        message: failure.message,
        source: Some(failure.source),
    }
}

#[async_trait]
impl TriggerScheduler for EventBridgeTriggers {
    async fn register(&self, job: &JobRecord) -> Result<(), TriggerError> {
        let result = self.arm(job).await;
        if result.is_err() {
            for n in 0..MAX_RULES_PER_JOB {
                if let Err(e) = self.remove_rule(&self.rule_name(&job.id, n)).await {
                    tracing::warn!(job_id = %job.id, error = %e, "could not undo a half-made rule");
                }
            }
        }
        result
    }

    async fn remove(&self, job_id: &str) -> Result<(), TriggerError> {
        for n in 0..MAX_RULES_PER_JOB {
            self.remove_rule(&self.rule_name(job_id, n)).await?;
        }
        Ok(())
    }

    /// Puts the new expressions on the job's rules (`PutRule` replaces a rule's expression
    /// in one call, so the job is never without a rule), then drops a surplus one. On
    /// failure the old schedule is put back the same way, never by removing rules as
    /// [`register`](TriggerScheduler::register)'s undo does: an armed job keeps firing.
    async fn rearm(&self, old: &JobRecord, new: &JobRecord) -> Result<(), TriggerError> {
        let result = self.arm(new).await;
        if result.is_err() {
            if let Err(e) = self.arm(old).await {
                tracing::error!(job_id = %old.id, error = %e, "could not put a job's old schedule back on its rules");
            }
        }
        result
    }
}

/// A trigger scheduler for processes that only run jobs (the runner): it never arms rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTriggers;

#[async_trait]
impl TriggerScheduler for NoTriggers {
    async fn register(&self, job: &JobRecord) -> Result<(), TriggerError> {
        Err(TriggerError::new(format!(
            "this process does not manage job rules, so job {} cannot be armed here",
            job.id
        )))
    }

    async fn remove(&self, job_id: &str) -> Result<(), TriggerError> {
        Err(TriggerError::new(format!(
            "this process does not manage job rules, so job {job_id}'s rules cannot be removed here"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_round_trip_to_job_ids() {
        let p = "backup-job-";
        assert_eq!(
            rule_name(p, "c196ogto0aeqohe3ommq", 0),
            "backup-job-c196ogto0aeqohe3ommq"
        );
        assert_eq!(
            rule_name(p, "c196ogto0aeqohe3ommq", 1),
            "backup-job-c196ogto0aeqohe3ommq-2"
        );
        for n in 0..2 {
            assert_eq!(
                job_id_from_rule(p, &rule_name(p, "c196ogto0aeqohe3ommq", n)).as_deref(),
                Some("c196ogto0aeqohe3ommq")
            );
        }
        assert_eq!(job_id_from_rule(p, "other-rule"), None);
    }

    #[test]
    fn the_transformer_passes_the_job_and_the_event_time() {
        let t = transformer("c196ogto0aeqohe3ommq").unwrap();
        backup_testkit::eventbridge::assert_job_transformer(&t, "c196ogto0aeqohe3ommq");
    }
}
