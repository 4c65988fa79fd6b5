//! The functions' configuration: `backup_aws::AwsSettings` (`TABLE_NAME`,
//! `RUNNER_FUNCTION_ARN`, `RULE_PREFIX`) plus the engine's timings on Lambda:
//! `LEASE_SECONDS` (default 60) and `BACKUP_WAIT_SECONDS` (default 780, so a run gives up
//! waiting for its snapshots before the function's 15-minute limit and marks the backup
//! defunct).
//!
//! Their errors are `backup_aws`'s [`ConfigError`]: one error type names the variable,
//! whichever crate reads it.

use std::time::Duration;

use backup_aws::{AwsSettings, ConfigError};
use backup_engine::EngineConfig;

pub const DEFAULT_LEASE_SECONDS: u64 = 60;
pub const DEFAULT_BACKUP_WAIT_SECONDS: u64 = 780;
/// How often a run asks EC2 whether its snapshots are complete.
pub const POLL_INTERVAL: Duration = Duration::from_secs(10);

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
        let wait = seconds("BACKUP_WAIT_SECONDS", DEFAULT_BACKUP_WAIT_SECONDS, 6 * 3600)?;
        let mut engine = EngineConfig::with_lease(Duration::from_secs(lease));
        engine.max_backup_wait = Duration::from_secs(wait);
        engine.poll_interval = POLL_INTERVAL.min(Duration::from_secs(wait));
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
    fn defaults_fit_in_a_lambda_invocation() {
        let s =
            LambdaSettings::from_lookup(|k| (k == "TABLE_NAME").then(|| "backups".into())).unwrap();
        assert_eq!(s.engine.lease, Duration::from_secs(60));
        assert!(s.engine.max_backup_wait < Duration::from_secs(900));
    }
}
