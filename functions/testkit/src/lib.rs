//! Test support for the AWS side: what the tests of `backup-aws`, `backup-lambdas` and
//! `backupctl` (its `serve --store dynamodb`) set up and look at in the local AWS endpoint
//! (moto_server at `AWS_ENDPOINT_URL`, started by `scripts/test-aws.sh`).
//!
//! # Layout
//! - [`dynamodb`]: [`Table`], a table of the test's own, deleted when the test ends.
//! - [`ec2`]: EBS volumes (alone or attached to a tagged instance) to back up, and the
//!   snapshots a backup left, found by their tags.
//! - [`eventbridge`]: a job's rules and the runner target on each, checked the one way.
//! - [`scheduler`]: the schedule group, a job's schedules and their target, checked the one
//!   way.
//!
//! # Decisions
//! - A dev-only crate (`publish = false`) rather than a `tests/support` module per crate, so
//!   that the three crates set up and check AWS resources the same way.
//! - Helpers panic with a message instead of returning errors: they only run in tests, where
//!   a failed setup call is the test's failure.
//! - Clients come from `backup_aws::sdk_config()`, like the code under test, so nothing here
//!   knows the endpoint.

pub mod dynamodb;
pub mod ec2;
pub mod eventbridge;
pub mod scheduler;

pub use dynamodb::Table;

use std::sync::atomic::{AtomicU32, Ordering};

/// The runner function's ARN that job rules target in tests (moto accepts any ARN).
pub const RUNNER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:backup-runner";
/// The dead-letter queue job rules name in tests (moto does not check that it exists).
pub const DEAD_LETTER_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:backup-runner-dead-letters";
/// The role job schedules invoke the runner as in tests (moto does not check it).
pub const SCHEDULER_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/backup-job-schedules";

/// `prefix` followed by what makes a name unique among concurrent tests and test processes
/// sharing one endpoint: the process id, a counter and the current microsecond.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    )
}
