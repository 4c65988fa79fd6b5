//! How the adapters describe a failed AWS call: `<service> <call> failed: <the SDK's error
//! and its causes>`, the SDK error kept as the source, whichever port error it ends up in.
//! The SDK crates re-export the same smithy error and response types, so one implementation
//! serves DynamoDB, EventBridge and EC2 alike.

use std::error::Error;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};

/// A failed call, described: what to show, and the SDK error it came from.
pub(crate) struct CallFailure {
    pub message: String,
    pub source: Box<dyn Error + Send + Sync>,
}

/// The error of an SDK call, which describes itself as a [`CallFailure`].
pub(crate) trait FailedCall {
    fn describe(self, service: &str, call: &str) -> CallFailure;
}

impl<E> FailedCall for SdkError<E, HttpResponse>
where
    E: Error + Send + Sync + 'static,
{
    fn describe(self, service: &str, call: &str) -> CallFailure {
        CallFailure {
            message: format!("{service} {call} failed: {}", DisplayErrorContext(&self)),
            source: Box::new(self),
        }
    }
}
