//! A deployment's EventBridge Scheduler group, a job's schedules in it, and the one way a
//! job schedule must look: what the adapter must send, written out here so that a change to
//! what it sends fails a test (moto keeps a schedule as it was sent, and accepts any
//! expression, so reading it back is the request).

use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindowMode, RetryPolicy, ScheduleState, Target,
};
use aws_sdk_scheduler::Client;

/// Makes the group of the schedules of `rule_prefix` (`<prefix>jobs`), as the template
/// does; its name.
pub async fn create_group(scheduler: &Client, rule_prefix: &str) -> String {
    let group = backup_aws::scheduler::group_name(rule_prefix);
    scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .expect("CreateScheduleGroup");
    group
}

/// The names of the schedules in `group`, sorted.
pub async fn schedule_names(scheduler: &Client, group: &str) -> Vec<String> {
    let out = scheduler
        .list_schedules()
        .group_name(group)
        .send()
        .await
        .expect("ListSchedules");
    let mut names: Vec<String> = out
        .schedules()
        .iter()
        .filter_map(|s| s.name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// The schedule `name` of `group`, as `GetSchedule` answers it.
pub async fn schedule(scheduler: &Client, group: &str, name: &str) -> GetScheduleOutput {
    scheduler
        .get_schedule()
        .group_name(group)
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetSchedule {group}/{name}: {e:?}"))
}

/// The exact target of `job_id`'s schedules: the runner, invoked as `role_arn` with the job
/// id and Scheduler's instant of the firing, one hour and 185 retries, and `dead_letters`
/// (if any).
pub fn expected_runner_target(
    runner_arn: &str,
    role_arn: &str,
    job_id: &str,
    dead_letters: Option<&str>,
) -> Target {
    Target::builder()
        .arn(runner_arn)
        .role_arn(role_arn)
        .input(format!(
            r#"{{"jobId": "{job_id}", "scheduledTime": "<aws.scheduler.scheduled-time>"}}"#
        ))
        .retry_policy(
            RetryPolicy::builder()
                .maximum_event_age_in_seconds(3600)
                .maximum_retry_attempts(185)
                .build(),
        )
        .set_dead_letter_config(
            dead_letters.map(|arn| DeadLetterConfig::builder().arn(arn).build()),
        )
        .build()
        .expect("a target")
}

/// Asserts that `schedule` fires `expression` in UTC, on the dot (no flexible window),
/// enabled, invoking `target`.
pub fn assert_job_schedule(schedule: &GetScheduleOutput, expression: &str, target: &Target) {
    assert_eq!(schedule.schedule_expression(), Some(expression));
    assert_eq!(schedule.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(
        schedule.flexible_time_window().map(|w| w.mode()),
        Some(&FlexibleTimeWindowMode::Off)
    );
    assert_eq!(schedule.state(), Some(&ScheduleState::Enabled));
    assert_eq!(schedule.target(), Some(target));
}
