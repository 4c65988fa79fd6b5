//! The extractors of the API: each turns a malformed path, query or body into a 400-class
//! problem (instead of axum's plain-text rejections) before a handler runs.
//!
//! Handlers take them in the order path, query, body, so a request with several mistakes is
//! answered about the first of them in that order.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use backup_engine::Scope;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_path_to_error::Segment;

use crate::problem::{sentence, ApiError};
use crate::routes::AppState;

/// The organization and project of a request, from the `{org}` and `{project}` segments of
/// its path, checked (`validation` problem naming `organizationId`/`projectId`).
pub struct InScope(pub Scope);

impl<S: Send + Sync> FromRequestParts<S> for InScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        #[derive(Deserialize)]
        struct ScopePath {
            org: String,
            project: String,
        }
        let ApiPath(p) = ApiPath::<ScopePath>::from_request_parts(parts, state).await?;
        Ok(InScope(Scope::new(&p.org, &p.project)?))
    }
}

/// What every handler starts from: the engine, and the scope of the request's path
/// ([`InScope`]).
pub struct InProject {
    pub engine: AppState,
    pub scope: Scope,
}

impl FromRequestParts<AppState> for InProject {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let InScope(scope) = InScope::from_request_parts(parts, state).await?;
        Ok(InProject {
            engine: Arc::clone(state),
            scope,
        })
    }
}

/// A request about one item that takes no query (`GET`/`DELETE …/jobs/{job_id}`,
/// `POST …/jobs/{job_id}/run`, …): the project, then the item's id, the path's segment after
/// `{org}` and `{project}`, then [`NoQuery`], in the order of the module notes.
pub struct OneItem {
    pub engine: AppState,
    pub scope: Scope,
    pub id: String,
}

impl FromRequestParts<AppState> for OneItem {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let InProject { engine, scope } = InProject::from_request_parts(parts, state).await?;
        let ApiPath((_org, _project, id)) =
            ApiPath::<(String, String, String)>::from_request_parts(parts, state).await?;
        let ApiQuery(NoQuery {}) = ApiQuery::from_request_parts(parts, state).await?;
        Ok(OneItem { engine, scope, id })
    }
}

/// [`OneItem`] of a route that takes a query `Q` (`POST …/jobs/{job_id}/run?wait=`).
pub struct OneItemWith<Q> {
    pub item: OneItem,
    pub query: Q,
}

impl<Q: DeserializeOwned + Send> FromRequestParts<AppState> for OneItemWith<Q> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let InProject { engine, scope } = InProject::from_request_parts(parts, state).await?;
        let ApiPath((_org, _project, id)) =
            ApiPath::<(String, String, String)>::from_request_parts(parts, state).await?;
        let ApiQuery(query) = ApiQuery::<Q>::from_request_parts(parts, state).await?;
        Ok(OneItemWith {
            item: OneItem { engine, scope, id },
            query,
        })
    }
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
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::of(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                format!("The request path is invalid: {rejection}."),
            )),
        }
    }
}

/// Query parameters, read by axum's [`Query`]; unknown, repeated or malformed ones are a
/// 400 problem. The query types refuse unknown names (`deny_unknown_fields`) and read an
/// empty value as absent ([`empty_as_none`]).
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = |message: &dyn std::fmt::Display| {
            ApiError::of(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("The query string is invalid: {message}."),
            )
        };
        check_query(parts.uri.query().unwrap_or_default()).map_err(|m| invalid(&m))?;
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(match query_field(&rejection) {
                // A value of a known parameter: name it, in the detail and in `fields`.
                Some((name, message)) => {
                    let message = format!("The query parameter `{name}` is invalid: {message}.");
                    ApiError::of(StatusCode::BAD_REQUEST, "invalid_query", message.clone())
                        .with_fields([(name, message)].into())
                }
                None => invalid(&query_reason(&rejection)),
            }),
        }
    }
}

/// The parameter whose value failed, and what to write instead, when the failure is one
/// value's (not an unknown or repeated name).
fn query_field(rejection: &QueryRejection) -> Option<(String, String)> {
    type QueryError = serde_path_to_error::Error<serde_urlencoded::de::Error>;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if let Some(error) = error.downcast_ref::<QueryError>() {
            let name = error.path().to_string();
            if name.is_empty() || name == "." {
                return None;
            }
            let inner = error.inner().to_string();
            // serde_urlencoded reports a bad number with `str::parse`'s words alone.
            let number = ["invalid digit", "too large", "too small", "empty string"]
                .iter()
                .any(|words| inner.contains(words));
            let message = if number {
                format!("{inner}; write a whole number, such as `{name}=10`")
            } else {
                inner
            };
            return Some((name, message));
        }
        source = error.source();
    }
    None
}

/// What `Query` leaves to the caller: `form_urlencoded` decodes leniently (a stray `%` stays
/// as it is, bytes that are not UTF-8 become U+FFFD) and serde takes the last of a repeated
/// name. Each would silently turn a mistake into another value, so they are refused here.
fn check_query(query: &str) -> Result<(), String> {
    let bytes = query.as_bytes();
    let escapes_ok = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return Err("a `%` is not followed by two hex digits".to_owned());
    }
    // `&` and `=` are ASCII, so the whole string decodes to UTF-8 exactly when each name
    // and value does.
    if percent_encoding::percent_decode(bytes)
        .decode_utf8()
        .is_err()
    {
        return Err("a parameter is not UTF-8".to_owned());
    }
    let mut seen = BTreeSet::new();
    for (name, _) in form_urlencoded::parse(bytes) {
        if !seen.insert(name.clone()) {
            return Err(format!("`{name}` is given more than once"));
        }
    }
    Ok(())
}

/// serde's own message for a query that does not fit its type (an unknown name), without
/// the path and the rejection's prefix `Query` puts in front of it.
fn query_reason(rejection: &QueryRejection) -> String {
    type QueryError = serde_path_to_error::Error<serde_urlencoded::de::Error>;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(error) = source {
        if let Some(error) = error.downcast_ref::<QueryError>() {
            return error.inner().to_string();
        }
        source = error.source();
    }
    rejection.body_text()
}

/// For optional query values: `?jobId=` means "no filter", as if it were absent.
pub fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|v| !v.is_empty()))
}

/// A JSON body, read within the router's body limit and parsed strictly (unknown fields are
/// refused by the request types). Any failure is a 400 problem (413 when too large, 415
/// when it says it is not JSON).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
            let ok = content_type
                .to_str()
                .map(|v| {
                    let v = v.to_ascii_lowercase();
                    v.starts_with("application/json") || v.contains("+json")
                })
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::of(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send the request body as JSON (Content-Type: application/json).",
                ));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::of(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "The request body is larger than {} KiB; no request needs that much.",
                crate::MAX_BODY_BYTES / 1024
            ),
        )
    } else {
        ApiError::of(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            format!("The request body could not be read: {rejection}."),
        )
    }
}

/// Parses a JSON body. When the body is JSON but does not fit the request, `fields` names
/// the field at fault by its JSON path (`schedul`, `data.maxBackupCount`), as the
/// validation problems do, so a form can show the message under that field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::of(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "The request needs a JSON body.",
        ));
    }
    let invalid = |error: &serde_json::Error, fields: Option<(String, String)>| {
        ApiError::of(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            format!("The request body is not valid for this request: {error}."),
        )
        .with_fields(fields.into_iter().collect())
    };
    // Every request body is an object, and so is a job's `data`. serde's derive would also
    // read a struct from an array of its fields in order (`["Nightly", "0 2 * * *", …]`),
    // which no client means and the OpenAPI document does not describe. (A body that is
    // not JSON at all is left to the reader below, which says where it breaks.)
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => {
            if map.get("data").is_some_and(serde_json::Value::is_array) {
                let message = "`data` must be a JSON object ({\"clusterId\": …, \
                               \"description\": …, \"maxBackupCount\": …}), not an array.";
                return Err(
                    ApiError::of(StatusCode::BAD_REQUEST, "malformed_body", message)
                        .with_fields([("data".to_owned(), message.to_owned())].into()),
                );
            }
        }
        Ok(_) => {
            return Err(ApiError::of(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                "The request body must be a JSON object ({\"name\": value, …}).",
            ))
        }
        Err(_) => {}
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let fault = field_at_fault(&e).or_else(|| unknown_variant(bytes, &e));
        // serde stops at the first field at fault: find the others, so that one answer
        // names every field to add, fix or remove (SPEC §7: every problem found).
        let problems = match &fault {
            Some(first) => shape_problems::<T>(bytes, first.clone()),
            None => Vec::new(),
        };
        if problems.len() > 1 {
            let shown = problems
                .iter()
                .map(|(key, what)| format!("`{key}`: {what}"))
                .collect::<Vec<_>>()
                .join(" ");
            ApiError::of(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                format!("The request body is not valid for this request. {shown}"),
            )
            .with_fields(problems.into_iter().collect())
        } else {
            invalid(e.inner(), fault)
        }
    })?;
    // Trailing characters, which `serde_json::from_slice` refuses too.
    deserializer.end().map_err(|e| invalid(&e, None))?;
    Ok(value)
}

/// The field a body's shape error is about, and what to do about it.
///
/// serde_path_to_error gives the place: the path of the field whose name or value was
/// refused. What kind of refusal it was serde reports only in words: `de::Error`'s
/// `unknown_field`, `missing_field` and `duplicate_field` are fixed sentences. A missing or
/// repeated field (and an unknown one in a flattened object) is refused by the object that
/// holds it, so the path is that object's and the field is named only in the sentence.
/// What a missing field's entry in `fields` says.
const MISSING: &str = "This field is required.";
/// What an unknown field's entry in `fields` says.
const UNKNOWN_FIELD: &str = "This field is not part of the request; check its spelling.";

/// Every field at fault in a body serde refused for `first` (its key and what to do): the
/// field is mended in a copy of the body (an unknown one removed, a missing or mistyped one
/// given a stand-in of whichever JSON type it takes) and the copy read again, until it
/// reads or fails where it cannot be mended. Bounded: a body has a handful of fields.
fn shape_problems<T: DeserializeOwned>(
    bytes: &[u8],
    first: (String, String),
) -> Vec<(String, String)> {
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return vec![first];
    };
    let stand_ins = [
        serde_json::json!(""),
        serde_json::json!(1),
        serde_json::json!({}),
        serde_json::json!([]),
        serde_json::json!(false),
    ];
    let mut problems = vec![first];
    let mut tried = 0;
    for _ in 0..64 {
        let Some((key, what)) = problems.last().cloned() else {
            break;
        };
        let mended = if what == UNKNOWN_FIELD {
            remove(&mut body, &key)
        } else {
            match stand_ins.get(tried) {
                Some(stand_in) => put(&mut body, &key, stand_in.clone()),
                None => false,
            }
        };
        tried += 1;
        if !mended {
            break;
        }
        let error = match serde_path_to_error::deserialize::<_, T>(&body) {
            Ok(_) => break,
            Err(e) => e,
        };
        match field_at_fault_in(&error, &error.inner().to_string()) {
            // The stand-in's type is wrong for this field too: try the next one.
            Some((next, _)) if next == key => {}
            Some(next) if !problems.iter().any(|(k, _)| *k == next.0) => {
                problems.push(next);
                tried = 0;
            }
            _ => break,
        }
    }
    problems
}

/// Removes the dotted `key` from `body`: whether it was there.
fn remove(body: &mut serde_json::Value, key: &str) -> bool {
    let (parent, name) = key.rsplit_once('.').unwrap_or(("", key));
    let mut at = body;
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        let Some(next) = at.get_mut(part) else {
            return false;
        };
        at = next;
    }
    at.as_object_mut()
        .is_some_and(|object| object.remove(name).is_some())
}

/// Sets `value` at the dotted `key` of `body` (its objects must exist): whether it could.
fn put(body: &mut serde_json::Value, key: &str, value: serde_json::Value) -> bool {
    let mut at = body;
    let mut names = key.split('.').peekable();
    while let Some(name) = names.next() {
        let Some(object) = at.as_object_mut() else {
            return false;
        };
        if names.peek().is_none() {
            object.insert(name.to_owned(), value);
            return true;
        }
        let Some(next) = object.get_mut(name) else {
            return false;
        };
        at = next;
    }
    false
}

fn field_at_fault(
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> Option<(String, String)> {
    if !error.inner().is_data() {
        return None; // a syntax error: no field is at fault
    }
    field_at_fault_in(error, &bare_sentence(error.inner()))
}

/// serde_json's sentence of `error` without its ` at line L column C`.
fn bare_sentence(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let place = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&place) {
        Some(bare) => bare.to_owned(),
        None => message,
    }
}

/// An unknown variant of an internally tagged enum (a cluster's `provider`), which serde
/// refuses without a path: the field that holds it, and serde's sentence (which lists the
/// variants there are).
fn unknown_variant(
    bytes: &[u8],
    error: &serde_path_to_error::Error<serde_json::Error>,
) -> Option<(String, String)> {
    let message = bare_sentence(error.inner());
    let variant = message
        .strip_prefix("unknown variant `")?
        .split('`')
        .next()?;
    Some((key_holding(bytes, variant)?, sentence(&message)))
}

/// [`field_at_fault`] of a data error whose sentence is `message`.
fn field_at_fault_in<E>(
    error: &serde_path_to_error::Error<E>,
    message: &str,
) -> Option<(String, String)> {
    const UNKNOWN: &str = "unknown field `";
    const KINDS: [(&str, &str); 3] = [
        (UNKNOWN, UNKNOWN_FIELD),
        ("missing field `", MISSING),
        ("duplicate field `", "This field appears more than once."),
    ];
    let path = error.path().to_string();
    let names_a_field = matches!(error.path().iter().next_back(), Some(Segment::Map { .. }));
    match KINDS.iter().find(|(start, _)| message.starts_with(start)) {
        Some((UNKNOWN, what)) if names_a_field => Some((path, (*what).to_owned())),
        Some((start, what)) => {
            let name = message[start.len()..].split('`').next()?;
            let key = match path.as_str() {
                "." => name.to_owned(),
                object => format!("{object}.{name}"),
            };
            Some((key, (*what).to_owned()))
        }
        None if names_a_field => Some((path, sentence(&plain_words(message)))),
        None => None,
    }
}

/// serde's sentence of a wrongly typed value in words a client's author uses, with what to
/// write instead: `invalid type: string "2", expected i64` becomes `… expected a whole
/// number; write one such as 3, without quotes`. Rust's type names (`i64`, `struct
/// ScheduledBackupData`) mean nothing to a caller.
fn plain_words(message: &str) -> String {
    let Some((head, expected)) = message.rsplit_once(", expected ") else {
        return message.to_owned();
    };
    let (what, example) = match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => ("a whole number of 0 or more", "3"),
        "i8" | "i16" | "i32" | "i64" | "isize" => ("a whole number", "3"),
        "f32" | "f64" => ("a number", "1.5"),
        "a string" => ("a string", "\"text\""),
        "a boolean" => ("a boolean", "true"),
        "a sequence" => ("a JSON array", "[…]"),
        "a map" => ("a JSON object", "{…}"),
        other if other.starts_with("struct ") => ("a JSON object", "{…}"),
        _ => return message.to_owned(),
    };
    let quoted = head.starts_with("invalid type: string")
        && example.starts_with(|c: char| c.is_ascii_digit());
    format!(
        "{head}, expected {what}; write one such as {example}{}",
        if quoted { ", without quotes" } else { "" }
    )
}

/// The key of `body` (top level or in `data`) whose value is the string `variant`: where an
/// internally tagged enum's unknown variant came from, which serde reports without a path.
fn key_holding(body: &[u8], variant: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let top = object
        .iter()
        .find(|(_, v)| v.as_str() == Some(variant))
        .map(|(k, _)| k.clone());
    top.or_else(|| {
        object
            .get("data")?
            .as_object()?
            .iter()
            .find(|(_, v)| v.as_str() == Some(variant))
            .map(|(k, _)| format!("data.{k}"))
    })
}

/// Handlers without a query take `ApiQuery<NoQuery>`: anything given is a mistake worth
/// reporting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Inner {
        count: Option<u32>,
    }

    fn fields(body: &str) -> BTreeMap<String, String> {
        parse_json::<Body>(body.as_bytes())
            .unwrap_err()
            .problem
            .fields
    }

    #[test]
    fn every_missing_field_is_named_not_only_the_first() {
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        #[allow(dead_code)]
        struct Three {
            name: String,
            count: u32,
            inner: Inner,
            tags: Vec<String>,
        }
        let error = parse_json::<Three>(b"{}").unwrap_err();
        let named: Vec<String> = error.problem.fields.into_keys().collect();
        assert_eq!(named, ["count", "inner", "name", "tags"]);
        // a mistyped field, an unknown one and a missing one, all in one answer
        let error =
            parse_json::<Three>(br#"{"name":5,"count":"two","inner":{"count":1},"extra":true}"#)
                .unwrap_err();
        let fields = error.problem.fields;
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            ["count", "extra", "name", "tags"],
            "{fields:?}"
        );
        assert!(fields["name"].contains("expected a string"), "{fields:?}");
        assert_eq!(fields["tags"], MISSING);
        assert_eq!(fields["extra"], UNKNOWN_FIELD);
        // one missing field is reported as before
        let error = parse_json::<Three>(br#"{"name":"x","count":1,"inner":{}}"#).unwrap_err();
        assert_eq!(
            error.problem.fields.into_keys().collect::<Vec<_>>(),
            ["tags"]
        );
    }

    #[test]
    fn a_body_or_a_jobs_data_that_is_not_an_object_is_refused() {
        // serde's derive alone reads a struct from an array of its fields
        for body in [r#"["x"]"#, "[]", "null", "5", r#""x""#] {
            let error = parse_json::<Body>(body.as_bytes()).unwrap_err();
            assert!(
                error.problem.detail.contains("must be a JSON object"),
                "{body}: {}",
                error.problem.detail
            );
        }
        let error = parse_json::<serde_json::Value>(br#"{"data":["c1","x",1]}"#).unwrap_err();
        assert!(error.problem.fields.contains_key("data"));
        assert_eq!(
            parse_json::<Body>(br#"{"name":"x"}"#).unwrap(),
            Body {
                name: "x".to_owned(),
                inner: None
            }
        );
    }

    #[test]
    fn a_body_that_does_not_fit_names_the_field_by_its_path() {
        let named = |body: &str| fields(body).into_keys().collect::<Vec<_>>();
        assert_eq!(named(r#"{"name":"x","nmae":1}"#), ["nmae"]);
        assert_eq!(named(r#"{"name":"x","inner":{"cnt":1}}"#), ["inner.cnt"]);
        assert_eq!(
            named(r#"{"name":"x","inner":{"count":"2"}}"#),
            ["inner.count"]
        );
        assert_eq!(named(r#"{"inner":{}}"#), ["name"]);
        assert_eq!(named(r#"{"name":"x","name":"y"}"#), ["name"]);
        assert_eq!(
            named(r#"{"name":"x","inner":{"count":1,"count":2}}"#),
            ["inner.count"]
        );
        // Syntax errors name nothing.
        assert!(fields(r#"{"name":"#).is_empty());
        assert!(fields(r#"{"name":"x"} trailing"#).is_empty());
        assert_eq!(
            fields(r#"{"name":"x","inner":{"count":"2"}}"#)["inner.count"],
            "Invalid type: string \"2\", expected a whole number of 0 or more; write one such \
             as 3, without quotes."
        );
        assert_eq!(
            fields(r#"{"name":1}"#)["name"],
            "Invalid type: integer `1`, expected a string; write one such as \"text\"."
        );
        assert_eq!(
            fields(r#"{"name":"x","inner":"y"}"#)["inner"],
            "Invalid type: string \"y\", expected a JSON object; write one such as {…}."
        );
    }

    #[test]
    fn queries_are_refused_when_axum_would_guess() {
        assert!(check_query("").is_ok());
        assert!(check_query("jobId=a%20b+c&clusterId=").is_ok());
        assert!(check_query("jobId=%zz").is_err());
        assert!(check_query("jobId=%2").is_err());
        assert!(check_query("jobId=%ff").is_err());
        assert!(check_query("jobId=a&jobId=b").is_err());
        assert!(check_query("jobId=a&job%49d=b").is_err());
    }
}
