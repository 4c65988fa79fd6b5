//! The Lambda functions of the AWS deployment (SPEC §10), as thin shells around one
//! [`Engine`] on the AWS adapters of `backup-aws`.
//!
//! # Layout
//! - [`settings`]: what the functions read from the environment, once, with errors naming
//!   the variable.
//! - [`emf`]: the runner's CloudWatch Embedded Metric Format line per run end.
//! - [`runner`]: `backup-runner`'s event parsing, handler and error types
//!   (`src/bin/backup-runner.rs`).
//! - [`api`]: `jobs-api`'s service: the same axum router as `backupctl serve`
//!   (`src/bin/jobs-api.rs`).
//! - [`job_resource`]: `job-resource`, the CloudFormation custom resource
//!   `Custom::ScheduledBackupJob` (`src/bin/job-resource.rs`).
//! - this file: building the engine on DynamoDB, EventBridge (rules or Scheduler) and EBS.
//!
//! # Decisions
//! - Clients are built once per cold start from `aws_config::load_defaults`, so
//!   `AWS_ENDPOINT_URL` points them all at a local endpoint in tests.
//! - A run that fails for a domain reason (`cluster_locked`, `provider_error`, …) is a
//!   *successful* invocation: its outcome is in the history, and retrying would only find
//!   the run already recorded. Only a malformed event (nothing written) and a failing state
//!   store are invocation errors; the latter is worth Lambda's retry and, after that, the
//!   dead-letter queue.
//! - Invocation errors are typed on purpose: the runner's handler returns
//!   `Result<RunReport, RunnerError>` and `From<RunnerError> for lambda_runtime::Diagnostic`
//!   sets `errorType` to a [`runner::ErrorType`] (`BadEvent`, `JobNotFound`,
//!   `StoreUnavailable`, `ProviderFailed`, …), so CloudWatch and the dead-letter queue say
//!   what to do instead of naming a Rust type. `jobs-api` cannot fail (`Infallible`): every
//!   error is a problem+json answer.
//! - The runner reads its event as JSON and then as `aws_lambda_events`' `CloudWatchEvent` or
//!   the transformer input, not as a typed `LambdaEvent<…>`, so that a malformed event is
//!   the runner's `BadEvent` saying what was expected rather than the runtime's own
//!   deserialization error.
//! - The Lambda environment freezes once a response is sent, so `jobs-api` waits for the
//!   engine's background work ("run now", manual backups) before answering.

pub mod api;
pub mod emf;
pub mod job_resource;
pub mod runner;
pub mod settings;

use backup_engine::Engine;

pub use backup_aws::{ConfigError, Triggers};
pub use settings::LambdaSettings;

/// Builds the engine on the AWS adapters from one shared SDK configuration.
pub fn engine(
    settings: &LambdaSettings,
    sdk: &aws_config::SdkConfig,
    triggers: Triggers,
) -> Result<Engine, ConfigError> {
    backup_aws::engine(&settings.aws, sdk, triggers, settings.engine.clone())
}

/// The jobs API's engine: [`engine`]'s, with "run now" handed to the runner by an
/// asynchronous invocation (answered 202, SPEC §16).
pub fn api_engine(
    settings: &LambdaSettings,
    sdk: &aws_config::SdkConfig,
    triggers: Triggers,
) -> Result<Engine, ConfigError> {
    backup_aws::dispatching_engine(&settings.aws, sdk, triggers, settings.engine.clone())
}

/// Logs to stdout (CloudWatch), never with colour codes, filtered by `RUST_LOG` (default
/// `info`): plain text, or one JSON object per line when the function's log format is JSON
/// (Lambda sets `AWS_LAMBDA_LOG_FORMAT=JSON` for `LoggingConfig: {LogFormat: JSON}`), so
/// CloudWatch Logs Insights can query its fields.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
