//! RFC 7807 problems: how every error leaves the API, and the extractors that turn bad
//! paths, queries and bodies into them instead of axum's plain-text rejections.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use backup_core::api::Problem;
use backup_engine::{EngineError, ErrorKind};
use serde::de::DeserializeOwned;

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
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>, uri: &Uri) -> ApiError {
        ApiError {
            status,
            problem: Box::new(Problem {
                problem_type: problem_type(code),
                title: title(status).to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                instance: uri.path().to_owned(),
                fields: BTreeMap::new(),
                code: Some(code.to_owned()),
            }),
        }
    }

    pub fn with_fields(mut self, fields: BTreeMap<String, String>) -> ApiError {
        self.problem.fields = fields;
        self
    }

    /// The answer to an engine error, for the request at `uri`.
    pub fn engine(error: EngineError, uri: &Uri) -> ApiError {
        let status = match (error.kind(), &error) {
            (ErrorKind::Invalid, _) => StatusCode::BAD_REQUEST,
            (ErrorKind::NotFound, _) => StatusCode::NOT_FOUND,
            (ErrorKind::Conflict, _) => StatusCode::CONFLICT,
            (ErrorKind::Unavailable, EngineError::Provider(_)) => StatusCode::BAD_GATEWAY,
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
        ApiError::new(status, error.code(), detail, uri).with_fields(error.fields())
    }
}

/// Upper-cases the first letter and ends with a period, so every detail reads as a sentence.
fn sentence(text: &str) -> String {
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_else(|_| b"{}".to_vec());
        (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}

/// A JSON body, read within the router's body limit and parsed strictly (unknown fields are
/// refused by the request types). Any failure is a 400 problem (413 when too large).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let uri = req.uri().clone();
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let ok = content_type
                .to_str()
                .map(|v| {
                    let v = v.to_ascii_lowercase();
                    v.starts_with("application/json") || v.contains("+json")
                })
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send the request body as JSON (Content-Type: application/json).",
                    &uri,
                ));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_rejection(rejection, &uri))?;
        parse_json(&bytes, &uri).map(ApiJson)
    }
}

fn body_rejection(rejection: BytesRejection, uri: &Uri) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "The request body is larger than {} KiB; no request needs that much.",
                crate::MAX_BODY_BYTES / 1024
            ),
            uri,
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            format!("The request body could not be read: {rejection}."),
            uri,
        )
    }
}

/// Parses a JSON body; a syntax or shape error names the field when serde does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], uri: &Uri) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "The request needs a JSON body.",
            uri,
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        let mut fields = BTreeMap::new();
        for marker in ["unknown field `", "missing field `", "duplicate field `"] {
            if let Some(rest) = message.split(marker).nth(1) {
                if let Some(name) = rest.split('`').next() {
                    let what = if marker.starts_with("unknown") {
                        "This field is not part of the request; check its spelling."
                    } else if marker.starts_with("missing") {
                        "This field is required."
                    } else {
                        "This field appears more than once."
                    };
                    fields.insert(name.to_owned(), what.to_owned());
                }
            }
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            format!("The request body is not valid for this request: {message}."),
            uri,
        )
        .with_fields(fields)
    })
}

/// Path parameters; a malformed path (say, invalid percent-encoding) is a 400 problem.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                format!("The request path is invalid: {rejection}."),
                &parts.uri,
            )),
        }
    }
}

/// Query parameters; unknown or malformed ones are a 400 problem.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_like(query)
            .map(ApiQuery)
            .map_err(|message| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("The query string is invalid: {message}."),
                    &parts.uri,
                )
            })
    }
}

/// Decodes `a=b&c=d` into `T` through a JSON object of strings, so `T`'s serde attributes
/// (`deny_unknown_fields`, renames) apply; empty values count as absent.
fn serde_urlencoded_like<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    let mut map = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        let value = percent_decode(value)?;
        if map.contains_key(&key) {
            return Err(format!("`{key}` is given more than once"));
        }
        if !value.is_empty() {
            map.insert(key, serde_json::Value::String(value));
        } else {
            map.insert(key, serde_json::Value::Null);
        }
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "a `%` is not followed by two hex digits".to_owned())?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "a parameter is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Q {
        job_id: Option<String>,
    }

    #[test]
    fn queries_decode_strictly() {
        assert_eq!(serde_urlencoded_like::<Q>("").unwrap(), Q { job_id: None });
        assert_eq!(
            serde_urlencoded_like::<Q>("jobId=").unwrap(),
            Q { job_id: None }
        );
        assert_eq!(
            serde_urlencoded_like::<Q>("jobId=a%20b+c").unwrap(),
            Q {
                job_id: Some("a b c".into())
            }
        );
        assert!(serde_urlencoded_like::<Q>("jobid=x").is_err());
        assert!(serde_urlencoded_like::<Q>("jobId=%zz").is_err());
        assert!(serde_urlencoded_like::<Q>("jobId=a&jobId=b").is_err());
        assert!(serde_urlencoded_like::<Q>("jobId=%ff").is_err());
    }

    #[test]
    fn details_read_as_sentences() {
        assert_eq!(sentence("job x does not exist"), "Job x does not exist.");
        assert_eq!(sentence("Done."), "Done.");
    }
}
