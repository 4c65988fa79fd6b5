//! "Run now" on Lambda (SPEC §16): [`InvokeRunner`] hands a queued run to the runner by an
//! asynchronous invocation (`InvocationType=Event`), so the jobs API answers 202 at once
//! instead of holding the request (API Gateway gives up after 30 s) while the snapshots are
//! started. Lambda keeps the event and retries it; the runner claims the run with a
//! conditional update, so a second delivery does nothing.

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use backup_core::civil::format_rfc3339;
use backup_engine::ports::RunDispatcher;
use backup_engine::TriggerError;
use chrono::{DateTime, Utc};

use crate::failure::FailedCall;

/// The runner's input for a queued run.
pub fn queued_run_event(history_id: &str, job_id: &str, scheduled: DateTime<Utc>) -> String {
    serde_json::json!({
        "historyId": history_id,
        "jobId": job_id,
        "scheduledTime": format_rfc3339(scheduled),
    })
    .to_string()
}

/// Invokes the runner function asynchronously with a queued run.
#[derive(Clone, Debug)]
pub struct InvokeRunner {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl InvokeRunner {
    pub fn new(client: aws_sdk_lambda::Client, function: String) -> InvokeRunner {
        InvokeRunner { client, function }
    }
}

#[async_trait]
impl RunDispatcher for InvokeRunner {
    async fn dispatch(
        &self,
        history_id: &str,
        job_id: &str,
        scheduled: DateTime<Utc>,
    ) -> Result<(), TriggerError> {
        let payload = queued_run_event(history_id, job_id, scheduled);
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload.into_bytes()))
            .send()
            .await
            .map_err(|e| {
                let failure = e.describe("Lambda", "Invoke");
                TriggerError {
                    message: failure.message,
                    source: Some(failure.source),
                }
            })?;
        // An asynchronous invocation is accepted with 202.
        if out.status_code() != 202 {
            return Err(TriggerError::new(format!(
                "Lambda answered {} to the asynchronous invocation of {}",
                out.status_code(),
                self.function
            )));
        }
        Ok(())
    }
}
