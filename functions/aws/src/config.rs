//! The project's configuration on AWS (SPEC §10), read once and validated.
//!
//! Read through a lookup function rather than `std::env` directly so tests pass a map and
//! never call `std::env::set_var`.

use std::ops::RangeInclusive;

/// The default prefix of job rule names.
pub const DEFAULT_RULE_PREFIX: &str = "backup-job-";

/// Which trigger scheduler an AWS engine gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triggers {
    /// EventBridge rules invoking `RUNNER_FUNCTION_ARN` (`TRIGGER=rules`, the default;
    /// `backupctl serve --scheduler eventbridge`).
    EventBridge,
    /// EventBridge Scheduler schedules in the group `<RULE_PREFIX>jobs`, invoking
    /// `RUNNER_FUNCTION_ARN` as `SCHEDULER_ROLE_ARN` (`TRIGGER=scheduler`; `backupctl serve
    /// --scheduler eventbridge-scheduler`).
    Scheduler,
    /// None: the runner only runs jobs, it never arms triggers.
    None,
}

/// The variables, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `TABLE_NAME`: the DynamoDB table of jobs, clusters, backups, runs and locks.
    pub table_name: String,
    /// `RUNNER_FUNCTION_ARN`: what job rules invoke; only whatever creates rules needs it.
    pub runner_function_arn: Option<String>,
    /// `RULE_PREFIX` (default `backup-job-`).
    pub rule_prefix: String,
    /// `DEAD_LETTER_QUEUE_ARN`: the SQS queue where a job rule puts a firing it could not
    /// deliver to the runner (the runner's dead-letter queue in the template). Optional: a
    /// rule made without it retries and then drops the event (`backupctl serve --scheduler
    /// eventbridge` against a local endpoint needs none).
    pub dead_letter_queue_arn: Option<String>,
    /// `TRIGGER`: `rules` (the default) or `scheduler`, what jobs-api arms jobs with
    /// ([`Triggers::EventBridge`] or [`Triggers::Scheduler`]).
    pub trigger: Triggers,
    /// `SCHEDULER_ROLE_ARN`: the role EventBridge Scheduler assumes to invoke the runner
    /// (the stack's `SchedulerRole`); needed to make schedules.
    pub scheduler_role_arn: Option<String>,
    /// `HISTORY_DAYS` (default 90): how many days a deleted backup's record and an ended
    /// run's history item stay listed before DynamoDB's TTL removes them (SPEC §16).
    pub history_days: u32,
}

/// How long deleted backups and ended runs stay listed unless `HISTORY_DAYS` says.
pub const DEFAULT_HISTORY_DAYS: u32 = 90;
/// The longest `HISTORY_DAYS`: ten years.
pub const MAX_HISTORY_DAYS: u32 = 3650;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set; set it to {1}")]
    Missing(&'static str, &'static str),
    #[error("{0} is invalid: {1}")]
    Invalid(&'static str, String),
}

impl AwsSettings {
    /// Reads the variables through `lookup`: a map in tests, the process environment in
    /// `LambdaSettings::from_env` (backup-lambdas), `backupctl serve`'s flags and variables.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<AwsSettings, ConfigError> {
        let table_name = lookup("TABLE_NAME")
            .filter(|t| !t.trim().is_empty())
            .ok_or(ConfigError::Missing(
                "TABLE_NAME",
                "the name of the DynamoDB table (the stack's `Table` output)",
            ))?;
        let table_name = name_text(
            "TABLE_NAME",
            table_name,
            3..=255,
            "is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .)",
        )?;
        let runner_function_arn = lookup("RUNNER_FUNCTION_ARN").filter(|a| !a.trim().is_empty());
        if let Some(arn) = &runner_function_arn {
            if !arn.starts_with("arn:") || !arn.contains(":lambda:") {
                return Err(ConfigError::Invalid(
                    "RUNNER_FUNCTION_ARN",
                    format!("`{arn}` is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"),
                ));
            }
        }
        let rule_prefix = lookup("RULE_PREFIX")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_RULE_PREFIX.to_owned());
        // A rule name is at most 64 characters of [.-_A-Za-z0-9]; a job id is 20, plus "-2".
        let rule_prefix = name_text(
            "RULE_PREFIX",
            rule_prefix,
            0..=40,
            "must be at most 40 of a-z A-Z 0-9 _ - . (rule names are at most 64 characters)",
        )?;
        let dead_letter_queue_arn = lookup("DEAD_LETTER_QUEUE_ARN")
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty());
        if let Some(arn) = &dead_letter_queue_arn {
            check_queue_arn("DEAD_LETTER_QUEUE_ARN", arn)?;
        }
        let trigger = match lookup("TRIGGER").as_deref().map(str::trim) {
            None | Some("") | Some("rules") => Triggers::EventBridge,
            Some("scheduler") => Triggers::Scheduler,
            Some(other) => {
                return Err(ConfigError::Invalid(
                    "TRIGGER",
                    format!(
                        "`{other}` is not a kind of trigger: write `rules` (EventBridge rules, \
                         the default) or `scheduler` (EventBridge Scheduler schedules)"
                    ),
                ))
            }
        };
        let scheduler_role_arn = lookup("SCHEDULER_ROLE_ARN")
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty());
        if let Some(arn) = &scheduler_role_arn {
            let valid = arn
                .split_once(":iam::")
                .is_some_and(|(head, rest)| head.starts_with("arn:") && rest.contains(":role/"));
            if !valid {
                return Err(ConfigError::Invalid(
                    "SCHEDULER_ROLE_ARN",
                    format!(
                        "`{arn}` is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME, such \
                         as the stack's SchedulerRole ARN)"
                    ),
                ));
            }
        }
        let history_days = match lookup("HISTORY_DAYS").as_deref().map(str::trim) {
            None | Some("") => DEFAULT_HISTORY_DAYS,
            Some(text) => match text.parse::<u32>() {
                Ok(days) if (1..=MAX_HISTORY_DAYS).contains(&days) => days,
                _ => {
                    return Err(ConfigError::Invalid(
                        "HISTORY_DAYS",
                        format!(
                            "`{text}` is not a whole number of days from 1 to {MAX_HISTORY_DAYS} \
                             (how long deleted backups and ended runs stay listed; default \
                             {DEFAULT_HISTORY_DAYS})"
                        ),
                    ))
                }
            },
        };
        Ok(AwsSettings {
            table_name,
            history_days,
            runner_function_arn,
            rule_prefix,
            dead_letter_queue_arn,
            trigger,
            scheduler_role_arn,
        })
    }

    /// `SCHEDULER_ROLE_ARN`, required by whatever makes schedules.
    pub fn require_scheduler_role_arn(&self) -> Result<&str, ConfigError> {
        self.scheduler_role_arn
            .as_deref()
            .ok_or(ConfigError::Missing(
                "SCHEDULER_ROLE_ARN",
                "the ARN of the role EventBridge Scheduler invokes the runner with (the \
                 stack's SchedulerRole)",
            ))
    }

    /// `RUNNER_FUNCTION_ARN`, required by whatever creates rules.
    pub fn require_runner_arn(&self) -> Result<&str, ConfigError> {
        self.runner_function_arn
            .as_deref()
            .ok_or(ConfigError::Missing(
                "RUNNER_FUNCTION_ARN",
                "the ARN of the backup-runner function that job rules invoke",
            ))
    }
}

/// Whether `arn` is an SQS queue's: `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`, the account
/// 12 digits and the name 1-80 of a-z A-Z 0-9 _ - (a FIFO queue's ending `.fifo`).
fn check_queue_arn(variable: &'static str, arn: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let valid = match parts.as_slice() {
        ["arn", partition, "sqs", region, account, name] => {
            let base = name.strip_suffix(".fifo").unwrap_or(name);
            !partition.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && (1..=80).contains(&name.len())
                && !base.is_empty()
                && base
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Invalid(
            variable,
            format!(
                "`{arn}` is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME, such as the \
                 stack's RunnerDeadLetterQueue ARN); leave it unset for rules without a \
                 dead-letter queue"
            ),
        ))
    }
}

/// `value` of `variable` if it is `len` characters long, each of a-z A-Z 0-9 _ - . (what
/// both DynamoDB table names and EventBridge rule names allow); otherwise the variable is
/// invalid, `why` saying what it must be.
fn name_text(
    variable: &'static str,
    value: String,
    len: RangeInclusive<usize>,
    why: &str,
) -> Result<String, ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if len.contains(&value.len()) && value.chars().all(allowed) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid(variable, format!("`{value}` {why}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_missing_table_name_names_the_variable() {
        let err = AwsSettings::from_lookup(lookup(&[])).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME"), "{err}");
    }

    #[test]
    fn the_rule_prefix_defaults_and_the_runner_arn_is_checked() {
        let s = AwsSettings::from_lookup(lookup(&[("TABLE_NAME", "backups")])).unwrap();
        assert_eq!(s.rule_prefix, "backup-job-");
        assert!(s
            .require_runner_arn()
            .unwrap_err()
            .to_string()
            .contains("RUNNER_FUNCTION_ARN"));
        let err = AwsSettings::from_lookup(lookup(&[
            ("TABLE_NAME", "backups"),
            ("RUNNER_FUNCTION_ARN", "nope"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("RUNNER_FUNCTION_ARN"), "{err}");
        let err =
            AwsSettings::from_lookup(lookup(&[("TABLE_NAME", "backups"), ("RULE_PREFIX", "a b")]))
                .unwrap_err();
        assert!(err.to_string().contains("RULE_PREFIX"), "{err}");
    }

    #[test]
    fn the_trigger_kind_defaults_to_rules_and_schedules_need_a_role() {
        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![("TABLE_NAME", "backups")];
            all.extend_from_slice(pairs);
            AwsSettings::from_lookup(lookup(&all))
        };
        // GIVEN no TRIGGER (or `rules`) THEN rules, and no role is needed
        assert_eq!(with(&[]).unwrap().trigger, Triggers::EventBridge);
        assert_eq!(
            with(&[("TRIGGER", "rules")]).unwrap().trigger,
            Triggers::EventBridge
        );
        // GIVEN `scheduler` THEN schedules, whose role is required when they are made
        let s = with(&[("TRIGGER", "scheduler")]).unwrap();
        assert_eq!(s.trigger, Triggers::Scheduler);
        let err = s.require_scheduler_role_arn().unwrap_err();
        assert!(err.to_string().contains("SCHEDULER_ROLE_ARN"), "{err}");
        let role = "arn:aws:iam::123456789012:role/backups-SchedulerRole-1A2B";
        let s = with(&[("TRIGGER", "scheduler"), ("SCHEDULER_ROLE_ARN", role)]).unwrap();
        assert_eq!(s.require_scheduler_role_arn().unwrap(), role);
        // GIVEN anything else THEN the error names the variable and the two kinds
        let err = with(&[("TRIGGER", "eventbridge")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid("TRIGGER", _)), "{err}");
        assert!(err.to_string().contains("`scheduler`"), "{err}");
        let err = with(&[("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:user/me")]).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid("SCHEDULER_ROLE_ARN", _)),
            "{err}"
        );
    }

    #[test]
    fn history_days_default_to_ninety_and_a_bad_value_says_what_to_write() {
        let days = |v: Option<&str>| {
            let mut pairs = vec![("TABLE_NAME", "backups")];
            pairs.extend(v.map(|v| ("HISTORY_DAYS", v)));
            AwsSettings::from_lookup(lookup(&pairs)).map(|s| s.history_days)
        };
        assert_eq!(days(None), Ok(90));
        assert_eq!(days(Some(" 30 ")), Ok(30));
        for bad in ["0", "3651", "-1", "ninety", "1.5"] {
            let err = days(Some(bad)).unwrap_err().to_string();
            assert!(
                err.contains("HISTORY_DAYS") && err.contains("1 to 3650"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_dead_letter_queue_is_optional_and_must_be_an_sqs_queue_arn() {
        let with = |arn: &str| {
            AwsSettings::from_lookup(lookup(&[
                ("TABLE_NAME", "backups"),
                ("DEAD_LETTER_QUEUE_ARN", arn),
            ]))
        };
        // GIVEN none (or an empty value) THEN rules get no dead-letter queue
        let none = AwsSettings::from_lookup(lookup(&[("TABLE_NAME", "backups")])).unwrap();
        assert_eq!(none.dead_letter_queue_arn, None);
        assert_eq!(with("").unwrap().dead_letter_queue_arn, None);
        // GIVEN a queue's ARN THEN it is kept
        let arn = "arn:aws:sqs:eu-west-1:123456789012:backups-RunnerDeadLetterQueue-1A2B3C";
        assert_eq!(
            with(arn).unwrap().dead_letter_queue_arn.as_deref(),
            Some(arn)
        );
        assert!(with("arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo").is_ok());
        // GIVEN anything else THEN the error names the variable and what it must be
        for bad in [
            "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
            "arn:aws:sns:eu-west-1:123456789012:alarms",
            "arn:aws:sqs:eu-west-1:1234:q",
            "arn:aws:sqs:eu-west-1:123456789012:",
            "arn:aws:sqs:eu-west-1:123456789012:a/b",
        ] {
            let err = with(bad).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid("DEAD_LETTER_QUEUE_ARN", _)),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("not an SQS queue ARN"), "{err}");
        }
    }
}
