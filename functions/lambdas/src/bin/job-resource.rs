//! `job-resource`: the CloudFormation custom resource `Custom::ScheduledBackupJob` (see
//! `backup_lambdas::job_resource`).

use backup_lambdas::LambdaSettings;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    backup_lambdas::init_tracing();
    let settings = LambdaSettings::from_env()?;
    let sdk = backup_aws::sdk_config().await;
    // `TRIGGER` (the template's `Trigger`): the job's rules, or its Scheduler schedules.
    let engine = backup_lambdas::engine(&settings, &sdk, settings.aws.trigger)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let engine = &engine;
        async move { backup_lambdas::job_resource::handle(engine, event.payload).await }
    }))
    .await
}
