//! `jobs-api`: the HTTP API (SPEC §7) behind API Gateway, the same router as
//! `backupctl serve` (see `backup_lambdas::api`).

use std::sync::Arc;

use backup_lambdas::LambdaSettings;
use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    backup_lambdas::init_tracing();
    let settings = LambdaSettings::from_env()?;
    let sdk = backup_aws::sdk_config().await;
    // `TRIGGER` (the template's `Trigger`): rules, or EventBridge Scheduler schedules; "run
    // now" is handed to the runner (answered 202).
    let engine = Arc::new(backup_lambdas::api_engine(
        &settings,
        &sdk,
        settings.aws.trigger,
    )?);
    let router = backup_api::router(engine.clone());
    lambda_http::run(service_fn(move |request: Request| {
        backup_lambdas::api::handle(router.clone(), engine.clone(), request)
    }))
    .await
}
