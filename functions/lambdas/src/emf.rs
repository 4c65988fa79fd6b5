//! The runner's metrics as CloudWatch Embedded Metric Format (SPEC §17): one JSON line on
//! stdout per run end, which CloudWatch Logs turns into metrics with no API call (and no
//! `cloudwatch:PutMetricData` permission) of ours.
//!
//! What counts as a run's end, its outcome and a lock conflict is the engine's
//! ([`backup_engine::metrics::RunEnded`]); this file only shapes it. Namespace
//! [`NAMESPACE`]; dimensions `FunctionName` + `Outcome` (`succeeded`, `failed`) and
//! `FunctionName` + `Outcome` + `ErrorCode` (`none` for a success); metrics `Runs` (Count,
//! 1), `RunDuration` (Milliseconds) and `LockConflicts` (Count, 1 for `cluster_locked`).
//! The job id is a property, not a dimension: searchable in Logs Insights without a metric
//! per job.

use std::io::Write;

use backup_engine::metrics::{run_status_name, RunEnded, RunObserver};
use serde_json::{json, Value};

/// The CloudWatch namespace of the runner's metrics.
pub const NAMESPACE: &str = "ScheduledBackups";

/// The EMF object for one run's end, at `timestamp_ms` (Unix milliseconds).
pub fn run_end_record(run: &RunEnded, function_name: &str, timestamp_ms: i64) -> Value {
    let code = run
        .error_code
        .map_or_else(|| "none".to_owned(), |c| c.to_string());
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [
                    ["FunctionName", "Outcome"],
                    ["FunctionName", "Outcome", "ErrorCode"]
                ],
                "Metrics": [
                    {"Name": "Runs", "Unit": "Count"},
                    {"Name": "RunDuration", "Unit": "Milliseconds"},
                    {"Name": "LockConflicts", "Unit": "Count"}
                ]
            }]
        },
        "FunctionName": function_name,
        "Outcome": run_status_name(run.status),
        "ErrorCode": code,
        "Runs": 1,
        "RunDuration": (run.duration_seconds * 1000.0).round() as u64,
        "LockConflicts": u8::from(run.lock_conflict()),
        "jobId": run.job_id,
    })
}

/// Writes [`run_end_record`] on stdout, one line, for every run the engine ends.
pub struct EmfRunLines {
    function_name: String,
}

impl EmfRunLines {
    /// `function_name`: Lambda's `AWS_LAMBDA_FUNCTION_NAME` (one per stack).
    pub fn new(function_name: impl Into<String>) -> EmfRunLines {
        EmfRunLines {
            function_name: function_name.into(),
        }
    }
}

impl RunObserver for EmfRunLines {
    fn run_ended(&self, run: &RunEnded) {
        let record = run_end_record(
            run,
            &self.function_name,
            chrono::Utc::now().timestamp_millis(),
        );
        // One write of a whole line, so it never interleaves with a log line.
        let line = format!("{record}\n");
        let mut stdout = std::io::stdout().lock();
        if let Err(error) = stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
        {
            tracing::warn!(%error, "could not write the run's metrics line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::api::{RunFailure, RunStatus};

    #[test]
    fn a_locked_run_is_one_failed_run_and_one_lock_conflict() {
        let run = RunEnded {
            job_id: "c196ogto0aeqohe3ommq".into(),
            status: RunStatus::Failed,
            error_code: Some(RunFailure::ClusterLocked),
            duration_seconds: 0.25,
        };
        let record = run_end_record(&run, "stack-BackupRunner", 1_764_000_000_000);
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(record["_aws"]["Timestamp"], 1_764_000_000_000i64);
        assert_eq!(directive["Namespace"], "ScheduledBackups");
        // Every dimension and metric the directive names is a member of the record, as
        // CloudWatch requires (a missing one drops the whole record).
        for set in directive["Dimensions"].as_array().unwrap() {
            for name in set.as_array().unwrap() {
                assert!(record[name.as_str().unwrap()].is_string(), "{name}");
            }
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(
                record[metric["Name"].as_str().unwrap()].is_number(),
                "{metric}"
            );
        }
        assert_eq!(record["Outcome"], "failed");
        assert_eq!(record["ErrorCode"], "cluster_locked");
        assert_eq!(record["Runs"], 1);
        assert_eq!(record["RunDuration"], 250);
        assert_eq!(record["LockConflicts"], 1);
        assert_eq!(record["FunctionName"], "stack-BackupRunner");

        let ok = RunEnded {
            status: RunStatus::Succeeded,
            error_code: None,
            duration_seconds: 61.0,
            ..run
        };
        let record = run_end_record(&ok, "f", 0);
        assert_eq!(
            (
                &record["Outcome"],
                &record["ErrorCode"],
                &record["LockConflicts"]
            ),
            (&json!("succeeded"), &json!("none"), &json!(0))
        );
        assert_eq!(record["RunDuration"], 61_000);
    }
}
