//! The functions' configuration: `backup_aws::AwsSettings` (`TABLE_NAME`,
//! `RUNNER_FUNCTION_ARN`, `RULE_PREFIX`, `DEAD_LETTER_QUEUE_ARN`, and for jobs-api `TRIGGER`
//! and `SCHEDULER_ROLE_ARN`) plus the engine's timings on Lambda:
//! `LEASE_SECONDS` (default 60), the lease a run holds while it starts its snapshots, and
//! `SNAPSHOT_TIMEOUT` (seconds, default 86400 = 24 h), how long a backup's snapshots may
//! take before the sweeper fails it (SPEC §16). A run does not wait for its snapshots: it
//! records them and returns, and EC2's notification settles the backup.
//!
//! Their errors are `backup_aws`'s [`ConfigError`]: one error type names the variable,
//! whichever crate reads it.

use std::time::Duration;

use backup_aws::{AwsSettings, ConfigError};
use backup_engine::EngineConfig;

pub const DEFAULT_LEASE_SECONDS: u64 = 60;
pub const DEFAULT_SNAPSHOT_TIMEOUT_SECONDS: u64 = 24 * 3600;
/// The longest `SNAPSHOT_TIMEOUT`: a first snapshot of a large volume takes hours, not weeks.
pub const MAX_SNAPSHOT_TIMEOUT_SECONDS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct LambdaSettings {
    pub aws: AwsSettings,
    pub engine: EngineConfig,
}

impl LambdaSettings {
    pub fn from_env() -> Result<LambdaSettings, ConfigError> {
        LambdaSettings::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<LambdaSettings, ConfigError> {
        let aws = AwsSettings::from_lookup(&lookup)?;
        let seconds = |name: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<u64>() {
                    Ok(v) if (1..=max).contains(&v) => Ok(v),
                    _ => Err(ConfigError::Invalid(
                        name,
                        format!("`{text}` is not a whole number of seconds from 1 to {max}"),
                    )),
                },
            }
        };
        let lease = seconds("LEASE_SECONDS", DEFAULT_LEASE_SECONDS, 3600)?;
        let timeout = seconds(
            "SNAPSHOT_TIMEOUT",
            DEFAULT_SNAPSHOT_TIMEOUT_SECONDS,
            MAX_SNAPSHOT_TIMEOUT_SECONDS,
        )?;
        let mut engine = EngineConfig::with_lease(Duration::from_secs(lease));
        engine.settle_later = Some(Duration::from_secs(timeout));
        Ok(LambdaSettings { aws, engine })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_lease_names_the_variable() {
        let err = LambdaSettings::from_lookup(|k| match k {
            "TABLE_NAME" => Some("t-able".into()),
            "LEASE_SECONDS" => Some("soon".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("LEASE_SECONDS"), "{err}");
    }

    #[test]
    fn by_default_a_run_leaves_its_snapshots_to_settle_within_a_day() {
        let s =
            LambdaSettings::from_lookup(|k| (k == "TABLE_NAME").then(|| "backups".into())).unwrap();
        assert_eq!(s.engine.lease, Duration::from_secs(60));
        assert_eq!(s.engine.settle_later, Some(Duration::from_secs(86400)));
        let s = LambdaSettings::from_lookup(|k| match k {
            "TABLE_NAME" => Some("backups".into()),
            "SNAPSHOT_TIMEOUT" => Some("3 days".into()),
            _ => None,
        })
        .unwrap_err();
        assert!(s.to_string().contains("SNAPSHOT_TIMEOUT"), "{s}");
    }
}
