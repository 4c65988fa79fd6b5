//! RFC 7807 problems: how every error leaves the API.
//!
//! A handler or extractor answers an [`ApiError`] without knowing the request it belongs to;
//! the [`fill_instance`] layer writes the request's path into the problem's `instance` on its
//! way out, so no handler has to carry the URI around just for that.

use std::collections::BTreeMap;

use axum::extract::Request;
use axum::http::{header, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use backup_core::api::{FieldProblem, Problem};
use backup_engine::{EngineError, ErrorKind};

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: a status and its problem document.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: errors travel through every handler's `Result`, which should stay small.
    pub problem: Box<Problem>,
}

impl ApiError {
    /// A problem for the request at `uri` (for code outside the router, such as a guard in
    /// front of it, which the [`fill_instance`] layer does not see).
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>, uri: &Uri) -> ApiError {
        let mut error = ApiError::of(status, code, detail);
        uri.path().clone_into(&mut error.problem.instance);
        error
    }

    /// A problem whose `instance` the [`fill_instance`] layer fills from the request.
    pub fn of(status: StatusCode, code: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            problem: Box::new(Problem {
                problem_type: problem_type(code),
                title: title(status).to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                instance: String::new(),
                fields: BTreeMap::new(),
                problems: BTreeMap::new(),
                code: Some(code.to_owned()),
            }),
        }
    }

    pub fn with_fields(mut self, fields: BTreeMap<String, String>) -> ApiError {
        self.problem.fields = fields;
        self
    }

    /// Sets the coded errors of each field (the `problems` map beside `fields`).
    pub fn with_problems(mut self, problems: BTreeMap<String, Vec<FieldProblem>>) -> ApiError {
        self.problem.problems = problems;
        self
    }
}

/// The answer to an engine error: its kind picks the status, its code and fields pass
/// through, so `?` in a handler is the whole error path.
impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        let status = match (error.kind(), &error) {
            (ErrorKind::Invalid, _) => StatusCode::BAD_REQUEST,
            (ErrorKind::NotFound, _) => StatusCode::NOT_FOUND,
            (ErrorKind::Conflict, _) => StatusCode::CONFLICT,
            (
                ErrorKind::Unavailable,
                EngineError::Provider(_) | EngineError::RestoreFailed { .. },
            ) => StatusCode::BAD_GATEWAY,
            (ErrorKind::Unavailable, _) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let detail = match &error {
            // The store's own message may name files or SQL; log it, answer plainly.
            EngineError::Store(e) => {
                tracing::error!(error = %e, source = ?std::error::Error::source(e), "store failure");
                "The server's state store failed; nothing was changed. Try again, and check \
                 the server's log if it keeps failing."
                    .to_owned()
            }
            EngineError::Trigger(e) => {
                tracing::error!(error = %e, "trigger scheduler failure");
                format!("The job's trigger could not be changed ({e}); try again.")
            }
            EngineError::Invalid { detail, .. } => detail.clone(),
            other => sentence(&other.to_string()),
        };
        ApiError::of(status, error.code(), detail)
            .with_fields(error.fields())
            .with_problems(error.problems())
    }
}

/// Upper-cases the first letter and ends with a period, so every detail reads as a sentence.
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A stable URI per error code (RFC 7807 `type`).
pub fn problem_type(code: &str) -> String {
    format!("urn:backupctl:problem:{code}")
}

fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "Invalid request",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "Request body too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
        StatusCode::BAD_GATEWAY => "Backup provider failed",
        StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
        _ => "Internal error",
    }
}

/// A problem still waiting for its `instance`, left on the response for [`fill_instance`].
#[derive(Clone)]
struct Unplaced(Box<Problem>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut response =
            (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        // The body is complete either way, so an error answered outside the layer is still
        // a whole problem; the layer only rewrites it with the request's path.
        if self.problem.instance.is_empty() {
            response.extensions_mut().insert(Unplaced(self.problem));
        }
        response
    }
}

/// Middleware (`axum::middleware::from_fn`) that sets the `instance` of a problem answered
/// without one to the request's path.
pub async fn fill_instance(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    match response.extensions_mut().remove::<Unplaced>() {
        Some(Unplaced(mut problem)) => {
            problem.instance = path;
            ApiError {
                status: response.status(),
                problem,
            }
            .into_response()
        }
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_read_as_sentences() {
        assert_eq!(sentence("job x does not exist"), "Job x does not exist.");
        assert_eq!(sentence("Done."), "Done.");
    }
}
