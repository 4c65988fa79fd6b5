//! Job triggers as EventBridge Scheduler schedules (SPEC §16, `Trigger=scheduler`): the
//! other kind of trigger, for accounts with more jobs than EventBridge's 300 rules per bus.
//!
//! A job's schedule becomes the same one or two `cron(...)` expressions as its rules
//! (`backup_core::Schedule::eventbridge`); each becomes a schedule of the group
//! `<RULE_PREFIX>jobs`, named like the rule would be (`<RULE_PREFIX><jobId>`, the second
//! `<RULE_PREFIX><jobId>-2`), evaluated in UTC with the flexible time window off, whose
//! target is the runner function, invoked with the role `SCHEDULER_ROLE_ARN` and the input
//! `{"jobId": "<id>", "scheduledTime": "<aws.scheduler.scheduled-time>"}` (Scheduler has no
//! input transformer; it replaces the placeholder with the firing's instant, such as
//! `2026-11-27T05:00:00Z`, so the runner reads the same input as from a rule).
//!
//! - **All or nothing**: if a call fails while arming a job, the schedules this call
//!   created are deleted before the error is returned, so the engine's undo of a new job
//!   leaves nothing behind. Schedules that already existed (re-arming) are updated in place
//!   and left as they are on failure: a job being moved keeps firing.
//! - **Re-arming** a job whose schedule changed (SPEC §17) is the port's default: arm the
//!   new schedule (its schedules updated in place), and on failure arm the old one again,
//!   which updates them back, makes any the failed attempt deleted and drops a surplus one.
//! - **Create or update**: `CreateSchedule`, and `UpdateSchedule` (which replaces every
//!   field) when it answers `ConflictException` (the schedule exists). No `GetSchedule`:
//!   one call for a new job, two for a re-armed one.
//! - **Removal** deletes every schedule of the job; one that does not exist is already
//!   removed (the typed `ResourceNotFoundException`, which is also the answer when the group
//!   itself does not exist).
//! - **The group** is the template's (`AWS::Scheduler::ScheduleGroup`, made whatever the
//!   `Trigger`): this code never creates or deletes groups, so the function needs no
//!   permission on groups, and deleting the stack deletes the group with its schedules. A
//!   missing group (`serve --scheduler eventbridge-scheduler` on an account without the
//!   stack) fails with a message that says how to make it.
//! - **Delivery**: the target carries the same retry policy as a rule's (one hour, 185
//!   attempts) and, when one is configured (`DEAD_LETTER_QUEUE_ARN`), the dead-letter queue.
//!   Scheduler invokes the runner and writes to the queue *as the role*: no resource policy
//!   of the function or the queue is involved, and the role may do exactly those two things.
//! - **A remover**: a deployment whose triggers are rules still removes schedules a job had
//!   before `jobs rearm` moved it ([`SchedulerTriggers::remover`]), without the role.

use async_trait::async_trait;
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};
use aws_sdk_scheduler::Client;
use backup_engine::ports::TriggerScheduler;
use backup_engine::{JobRecord, TriggerError};

use crate::eventbridge::{rule_name, MAX_EVENT_AGE_SECONDS, MAX_RETRY_ATTEMPTS, MAX_RULES_PER_JOB};
use crate::failure::FailedCall;

/// The time zone of every schedule's expression: a job's schedule is in UTC (SPEC §2.1).
pub const TIME_ZONE: &str = "UTC";

/// The group of a deployment's schedules: `<RULE_PREFIX>jobs`.
pub fn group_name(rule_prefix: &str) -> String {
    format!("{rule_prefix}jobs")
}

/// What a schedule invokes, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleTarget {
    /// The runner function (`RUNNER_FUNCTION_ARN`).
    pub runner_arn: String,
    /// The role Scheduler assumes to invoke it (`SCHEDULER_ROLE_ARN`).
    pub role_arn: String,
    /// Where a firing that could not be delivered goes (`DEAD_LETTER_QUEUE_ARN`).
    pub dead_letter_arn: Option<String>,
}

/// Arms and disarms job schedules.
#[derive(Clone, Debug)]
pub struct SchedulerTriggers {
    client: Client,
    group: String,
    rule_prefix: String,
    /// `None`: a remover, which only deletes schedules.
    target: Option<ScheduleTarget>,
}

impl SchedulerTriggers {
    /// Schedules in the group `<rule_prefix>jobs` invoking `target`.
    pub fn new(client: Client, rule_prefix: impl Into<String>, target: ScheduleTarget) -> Self {
        let rule_prefix = rule_prefix.into();
        SchedulerTriggers {
            client,
            group: group_name(&rule_prefix),
            rule_prefix,
            target: Some(target),
        }
    }

    /// Only removes schedules: for a deployment whose triggers are rules, which deletes the
    /// schedules of a job that had them (a retired kind, see `Ports::retired_triggers`).
    pub fn remover(client: Client, rule_prefix: impl Into<String>) -> Self {
        let rule_prefix = rule_prefix.into();
        SchedulerTriggers {
            client,
            group: group_name(&rule_prefix),
            rule_prefix,
            target: None,
        }
    }

    /// The group of the schedules.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The name of the job's `n`-th schedule (0-based), the name its rule would have.
    pub fn schedule_name(&self, job_id: &str, n: usize) -> String {
        rule_name(&self.rule_prefix, job_id, n)
    }

    /// Makes or updates each schedule of `job`, pushing the names it created onto
    /// `created` (what an undo deletes).
    async fn arm(
        &self,
        job: &JobRecord,
        target: &ScheduleTarget,
        created: &mut Vec<String>,
    ) -> Result<(), TriggerError> {
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
        let target = runner_target(target, &job.id)?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| TriggerError {
                message: format!("cannot describe the flexible time window: {e}"),
                source: Some(Box::new(e)),
            })?;
        let description = format!("Scheduled backup job {} ({})", job.id, job.schedule);
        for (n, expression) in expressions.iter().enumerate() {
            let name = self.schedule_name(&job.id, n);
            let created_now = self
                .client
                .create_schedule()
                .group_name(&self.group)
                .name(&name)
                .schedule_expression(expression)
                .schedule_expression_timezone(TIME_ZONE)
                .flexible_time_window(window.clone())
                .state(ScheduleState::Enabled)
                .description(&description)
                .target(target.clone())
                .send()
                .await;
            match created_now {
                Ok(_) => created.push(name),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conflict_exception()) =>
                {
                    self.client
                        .update_schedule()
                        .group_name(&self.group)
                        .name(&name)
                        .schedule_expression(expression)
                        .schedule_expression_timezone(TIME_ZONE)
                        .flexible_time_window(window.clone())
                        .state(ScheduleState::Enabled)
                        .description(&description)
                        .target(target.clone())
                        .send()
                        .await
                        .map_err(|e| failed(&format!("UpdateSchedule {name}"), e))?;
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_resource_not_found_exception()) =>
                {
                    let group = &self.group;
                    let mut error = failed(&format!("CreateSchedule {name}"), e);
                    error.message = format!(
                        "the schedule group {group} does not exist: deploy the stack (its \
                         template makes the group), or make it with `aws scheduler \
                         create-schedule-group --name {group}` ({})",
                        error.message
                    );
                    return Err(error);
                }
                Err(e) => return Err(failed(&format!("CreateSchedule {name}"), e)),
            }
        }
        // A schedule that needed two expressions before and one now: drop the surplus.
        for n in expressions.len()..MAX_RULES_PER_JOB {
            self.remove_schedule(&self.schedule_name(&job.id, n))
                .await?;
        }
        Ok(())
    }

    async fn remove_schedule(&self, name: &str) -> Result<(), TriggerError> {
        match self
            .client
            .delete_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(&format!("DeleteSchedule {name}"), e)),
        }
    }
}

/// The runner invoked as `target.role_arn` with the input of job `job_id`, its retries and
/// dead-letter queue.
fn runner_target(target: &ScheduleTarget, job_id: &str) -> Result<Target, TriggerError> {
    Target::builder()
        .arn(&target.runner_arn)
        .role_arn(&target.role_arn)
        .input(input(job_id))
        .retry_policy(delivery_retries())
        .set_dead_letter_config(
            target
                .dead_letter_arn
                .as_ref()
                .map(|arn| DeadLetterConfig::builder().arn(arn).build()),
        )
        .build()
        .map_err(|e| TriggerError {
            message: format!("cannot describe the schedule target of job {job_id}: {e}"),
            source: Some(Box::new(e)),
        })
}

/// `{"jobId": "<id>", "scheduledTime": "<aws.scheduler.scheduled-time>"}`: Scheduler
/// replaces the placeholder with the firing's instant (plain text, hence the quotes).
pub fn input(job_id: &str) -> String {
    let job = serde_json::Value::String(job_id.to_owned());
    format!(r#"{{"jobId": {job}, "scheduledTime": "<aws.scheduler.scheduled-time>"}}"#)
}

/// The retries of a rule's target ([`crate::eventbridge::delivery_retries`]), in
/// Scheduler's type: one hour, 185 attempts.
pub fn delivery_retries() -> RetryPolicy {
    RetryPolicy::builder()
        .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECONDS)
        .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
        .build()
}

fn failed(call: &str, e: impl FailedCall) -> TriggerError {
    let failure = e.describe("EventBridge Scheduler", call);
    TriggerError {
        message: failure.message,
        source: Some(failure.source),
    }
}

#[async_trait]
impl TriggerScheduler for SchedulerTriggers {
    async fn register(&self, job: &JobRecord) -> Result<(), TriggerError> {
        let Some(target) = &self.target else {
            return Err(TriggerError::new(format!(
                "this process arms EventBridge rules (TRIGGER=rules), so job {} gets no \
                 schedule here",
                job.id
            )));
        };
        let mut created = Vec::new();
        let result = self.arm(job, target, &mut created).await;
        if result.is_err() {
            for name in &created {
                if let Err(e) = self.remove_schedule(name).await {
                    tracing::warn!(job_id = %job.id, error = %e, "could not undo a half-made schedule");
                }
            }
        }
        result
    }

    async fn remove(&self, job_id: &str) -> Result<(), TriggerError> {
        for n in 0..MAX_RULES_PER_JOB {
            self.remove_schedule(&self.schedule_name(job_id, n)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_is_the_transformer_input_with_schedulers_placeholder() {
        let text = input("c196ogto0aeqohe3ommq");
        assert_eq!(
            text,
            r#"{"jobId": "c196ogto0aeqohe3ommq", "scheduledTime": "<aws.scheduler.scheduled-time>"}"#
        );
        // AND once Scheduler replaced the placeholder it is what the runner reads from a rule
        let fired = text.replace("<aws.scheduler.scheduled-time>", "2026-11-27T05:00:00Z");
        let value: serde_json::Value = serde_json::from_str(&fired).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"jobId": "c196ogto0aeqohe3ommq", "scheduledTime": "2026-11-27T05:00:00Z"})
        );
    }

    #[test]
    fn the_group_is_named_after_the_rule_prefix() {
        assert_eq!(group_name("backup-job-"), "backup-job-jobs");
    }
}
