//! The AWS adapters of the engine (SPEC §10, §16): DynamoDB for the store and the cluster lock,
//! EventBridge rules (or EventBridge Scheduler schedules) for the triggers, EBS snapshots for
//! the `aws-ebs` provider.
//!
//! Every client is built from `aws_config::load_defaults(BehaviorVersion::latest())`, so the
//! SDK's own variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials) configure them and the
//! tests point everything at a local endpoint (moto) without special code.
//!
//! # Layout
//! - [`config`]: [`AwsSettings`], the project's variables (`TABLE_NAME`,
//!   `RUNNER_FUNCTION_ARN`, `RULE_PREFIX`, `DEAD_LETTER_QUEUE_ARN`, `TRIGGER`,
//!   `SCHEDULER_ROLE_ARN`), read once through a lookup so tests never set process variables;
//!   [`Triggers`], the kind of trigger an engine arms.
//! - [`dynamodb`]: [`DynamoStore`], every store port and the cluster lock in one table; the
//!   table design is written down there.
//! - [`eventbridge`]: [`EventBridgeTriggers`], one rule per EventBridge expression of a job.
//! - [`scheduler`]: [`SchedulerTriggers`], one EventBridge Scheduler schedule per
//!   expression instead (`TRIGGER=scheduler`, SPEC §16).
//! - [`ebs`]: [`EbsProvider`], one snapshot per volume of a cluster named by volume ids, one
//!   crash-consistent set per instance (`CreateSnapshots`) of one named by instance tag.
//! - `failure`: how every adapter describes a failed AWS call (service, call, the SDK's
//!   error and its causes), whichever port error carries it.
//! - [`iam`]: the AWS calls each function (`backup-runner`, `jobs-api`) makes and the IAM
//!   actions that authorize them, which its role in `infra/template.yaml` must allow exactly
//!   (a test compares them; another checks every call the functions make in the tests).

pub mod config;
pub mod dynamodb;
pub mod ebs;
pub mod eventbridge;
mod failure;
pub mod iam;
pub mod lambda;
pub mod scheduler;

pub use config::{AwsSettings, ConfigError, Triggers};
pub use dynamodb::DynamoStore;
pub use ebs::EbsProvider;
pub use eventbridge::EventBridgeTriggers;
pub use scheduler::{ScheduleTarget, SchedulerTriggers};

use std::sync::Arc;

use backup_engine::clock::SystemClock;
use backup_engine::ids::RandomIds;
use backup_engine::ports::TriggerScheduler;
use backup_engine::{Engine, EngineConfig, Ports};

/// The shared SDK configuration, from the environment (`AWS_ENDPOINT_URL` included).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An engine on DynamoDB, EBS and (optionally) EventBridge rules or Scheduler schedules,
/// all clients made from `sdk`; its "run now" continues in the process that answers it. An
/// engine that arms one kind of trigger removes the other kind as a retired one
/// (`Ports::retired_triggers`): what `jobs rearm` moves jobs from after the stack's
/// `Trigger` changed, and what deleting a job not yet moved removes.
pub fn engine(
    settings: &AwsSettings,
    sdk: &aws_config::SdkConfig,
    triggers: Triggers,
    config: EngineConfig,
) -> Result<Engine, ConfigError> {
    Ok(Engine::new(ports(settings, sdk, triggers)?, on_aws(config)))
}

/// An AWS deployment never runs commands (SPEC §15): `command` clusters and hooks are
/// refused with a 400 that says so, whatever the caller's configuration said.
fn on_aws(mut config: EngineConfig) -> EngineConfig {
    config.commands = backup_engine::CommandPolicy::Unavailable;
    config
}

/// The jobs API's engine on Lambda: [`engine`]'s, with "run now" recorded `queued` and
/// handed to the runner (`RUNNER_FUNCTION_ARN`) by an asynchronous invocation (SPEC §16),
/// since API Gateway gives up on a request after 30 s.
pub fn dispatching_engine(
    settings: &AwsSettings,
    sdk: &aws_config::SdkConfig,
    triggers: Triggers,
    config: EngineConfig,
) -> Result<Engine, ConfigError> {
    let mut ports = ports(settings, sdk, triggers)?;
    ports.dispatch = Some(Arc::new(lambda::InvokeRunner::new(
        aws_sdk_lambda::Client::new(sdk),
        settings.require_runner_arn()?.to_owned(),
    )));
    Ok(Engine::new(ports, on_aws(config)))
}

/// The ports of an AWS deployment.
fn ports(
    settings: &AwsSettings,
    sdk: &aws_config::SdkConfig,
    triggers: Triggers,
) -> Result<Ports, ConfigError> {
    let store = Arc::new(
        DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            settings.table_name.clone(),
        )
        .with_history_days(settings.history_days),
    );
    let rules = || -> Result<EventBridgeTriggers, ConfigError> {
        Ok(EventBridgeTriggers::new(
            aws_sdk_eventbridge::Client::new(sdk),
            settings.rule_prefix.clone(),
            settings.require_runner_arn()?.to_owned(),
        )
        .with_dead_letter_queue(settings.dead_letter_queue_arn.clone()))
    };
    let (triggers, retired_triggers): (Arc<dyn TriggerScheduler>, Vec<Arc<dyn TriggerScheduler>>) =
        match triggers {
            Triggers::EventBridge => (
                Arc::new(rules()?),
                vec![Arc::new(SchedulerTriggers::remover(
                    aws_sdk_scheduler::Client::new(sdk),
                    settings.rule_prefix.clone(),
                ))],
            ),
            Triggers::Scheduler => (
                Arc::new(SchedulerTriggers::new(
                    aws_sdk_scheduler::Client::new(sdk),
                    settings.rule_prefix.clone(),
                    ScheduleTarget {
                        runner_arn: settings.require_runner_arn()?.to_owned(),
                        role_arn: settings.require_scheduler_role_arn()?.to_owned(),
                        dead_letter_arn: settings.dead_letter_queue_arn.clone(),
                    },
                )),
                vec![Arc::new(rules()?)],
            ),
            Triggers::None => (Arc::new(eventbridge::NoTriggers), Vec::new()),
        };
    Ok(Ports {
        store: store.clone(),
        lock: store.clone(),
        writes: store.clone(),
        pending: Some(store),
        dispatch: None,
        providers: vec![Arc::new(EbsProvider::new(sdk))],
        triggers,
        retired_triggers,
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds::default()),
    })
}
