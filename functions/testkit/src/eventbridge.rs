//! A job's EventBridge rules, and the one target each must have: the runner, passed the job
//! id and the event's time, with its retry policy and dead-letter queue.

use aws_sdk_eventbridge::types::{DeadLetterConfig, InputTransformer, RetryPolicy, Rule, Target};

/// The rules whose names start with `prefix`.
pub async fn rules(events: &aws_sdk_eventbridge::Client, prefix: &str) -> Vec<Rule> {
    events
        .list_rules()
        .name_prefix(prefix)
        .send()
        .await
        .expect("ListRules")
        .rules()
        .to_vec()
}

/// The one target of `rule` (panics if it has none or several).
pub async fn only_target(events: &aws_sdk_eventbridge::Client, rule: &str) -> Target {
    let out = events
        .list_targets_by_rule()
        .rule(rule)
        .send()
        .await
        .expect("ListTargetsByRule");
    let [target] = out.targets() else {
        panic!("one target on {rule}: {out:?}")
    };
    target.clone()
}

/// The exact runner target of `job_id`'s rules, as `PutTargets` must send it: the runner,
/// the input transformer, one hour and EventBridge's maximum of retries, and `dead_letters`
/// (if any). Written out here, not built with the adapter's helpers, so that a change to what
/// the adapter sends fails a test.
pub fn expected_runner_target(
    runner_arn: &str,
    job_id: &str,
    dead_letters: Option<&str>,
) -> Target {
    Target::builder()
        .id("backup-runner")
        .arn(runner_arn)
        .input_transformer(
            InputTransformer::builder()
                .input_paths_map("time", "$.time")
                .input_template(format!(
                    r#"{{"jobId": "{job_id}", "scheduledTime": <time>}}"#
                ))
                .build()
                .expect("a transformer"),
        )
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

/// Asserts that `target` invokes the runner at `runner_arn` for `job_id`.
pub fn assert_runner_target(target: &Target, runner_arn: &str, job_id: &str) {
    assert_eq!(target.id(), backup_aws::eventbridge::TARGET_ID);
    assert_eq!(target.arn(), runner_arn);
    assert_job_transformer(
        target.input_transformer().expect("an input transformer"),
        job_id,
    );
}

/// Asserts that `t` turns an event into `{"jobId": "<job_id>", "scheduledTime": <its time>}`.
pub fn assert_job_transformer(t: &InputTransformer, job_id: &str) {
    assert_eq!(
        t.input_paths_map()
            .and_then(|m| m.get("time"))
            .map(String::as_str),
        Some("$.time")
    );
    assert_eq!(
        t.input_template(),
        format!(r#"{{"jobId": "{job_id}", "scheduledTime": <time>}}"#)
    );
}
