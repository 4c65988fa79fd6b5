//! `backup-runner`: invoked by each job's EventBridge rule; runs the job once for the
//! scheduled instant (see `backup_lambdas::runner`).

use backup_lambdas::runner;
use backup_lambdas::{LambdaSettings, Triggers};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    backup_lambdas::init_tracing();
    let settings = LambdaSettings::from_env()?;
    let sdk = backup_aws::sdk_config().await;
    let engine = backup_lambdas::engine(&settings, &sdk, Triggers::None)?;
    // One Embedded Metric Format line on stdout per run end (SPEC §17).
    let function_name =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "backup-runner".to_owned());
    engine.add_run_observer(std::sync::Arc::new(backup_lambdas::emf::EmfRunLines::new(
        function_name,
    )));
    let prefix = settings.aws.rule_prefix.clone();
    // The event stays a JSON value here so that a malformed one is the runner's `BadEvent`
    // (with what was expected) rather than the runtime's own deserialization error.
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let engine = &engine;
        let prefix = &prefix;
        async move { runner::handle(engine, prefix, &event.payload).await }
    }))
    .await
}
