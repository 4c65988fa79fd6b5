//! The API's OpenAPI 3.1 document (SPEC §17), served at `GET /openapi.json`.
//!
//! Nothing here is written by hand as YAML: the schemas are derived on `backup_core::api`'s
//! types (its `openapi` feature), each route is described by the `#[utoipa::path]` of its
//! handler, and [`api_routes`] builds the router's routes *from those annotations*
//! (`utoipa_axum::routes!`), so a route and its description cannot disagree on path or
//! method. Adding a route is one annotated handler and one `routes!` entry.
//!
//! [`document`] then adds what every route shares, from the same facts the server acts on:
//! - the problem answers each route can give (`application/problem+json`, [`Problem`]):
//!   421 (a foreign `Host`) and 415 (a body that is not JSON) on every route, as `backupctl
//!   serve`'s guard answers them; 401 on every route that needs a credential; 403 on every
//!   state-changing method (a foreign `Origin`); 400 on every route with parameters or a
//!   body; 404 on every route with path parameters (an id that names nothing, or segments
//!   that name no route); 413 on every route with a body; 503 on every route that reads the
//!   state store. Route-specific ones (409, 502) are in the handler's annotation.
//! - strictness: `additionalProperties: false` on every object with fixed properties (the
//!   server writes nothing else, and the request types refuse anything else); an object
//!   that flattens a tagged enum (a cluster and its `provider`'s target) becomes one
//!   closed object per provider;
//! - the stable codes of a problem's `code` and of its `problems[…][].code` as enums;
//! - links from each creation to reading, deleting (and running, locking) what it created,
//!   so a client (or a property-based tester) can follow create → get → delete.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use backup_core::api::{FieldProblem, Problem};
use serde_json::{json, Map, Value};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::routes::{self, AppState};

/// The organization and project every scoped route starts with.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// The organization: 1 to 64 ASCII letters, digits, `-`, `_` and `.` (`default` by
    /// default in the CLI).
    #[param(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub org: String,
    /// The project, in the same alphabet.
    #[param(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub project: String,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The job's id, as `POST …/jobs` answered it.
    #[param(pattern = r"^[0-9a-v]{20}$")]
    pub job_id: String,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BackupPath {
    /// The backup's id, as `POST …/backups` or a run answered it.
    #[param(pattern = r"^[0-9a-v]{20}$")]
    pub backup_id: String,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ClusterPath {
    /// The cluster's id, as registered.
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub cluster_id: String,
}

/// `PATCH …/jobs/{jobId}`'s body, for the document only: the server reads it as the create
/// body ([`backup_core::api::UpdateJobRequest`]), but here every field is optional and an
/// absent one keeps the job's value.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = UpdateJobRequest)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct UpdateJobBody {
    /// The job's new description: 1 to 256 characters, not blank.
    #[schema(nullable = false, min_length = 1, max_length = 256, pattern = r"\S")]
    description: Option<String>,
    /// A new five-field cron expression in UTC, at least an hour apart; its trigger is
    /// re-armed all or nothing.
    #[schema(nullable = false, min_length = 1, max_length = 1024, pattern = r"\S")]
    schedule: Option<String>,
    /// `ScheduledBackup`, the only kind.
    #[serde(rename = "type")]
    #[schema(value_type = Option<backup_core::api::JobType>, nullable = false)]
    job_type: Option<String>,
    #[schema(nullable = false)]
    data: Option<UpdateJobData>,
}

/// `PATCH …/jobs/{jobId}`'s `data`, every field optional.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct UpdateJobData {
    /// The job's cluster, if sent, must be the one it has: a job cannot change cluster.
    #[schema(nullable = false, pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    cluster_id: Option<String>,
    /// The new description template for each backup (SPEC §3).
    #[schema(nullable = false, min_length = 1, max_length = 256, pattern = r"\S")]
    description: Option<String>,
    /// How many of its backups the job keeps, 1 to 1000.
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    max_backup_count: Option<i64>,
}

/// `404`: the id names nothing in this organization and project (`job_not_found`,
/// `cluster_not_found`, `backup_not_found`), or the path names no route (`route_not_found`).
#[derive(utoipa::ToResponse)]
#[response(
    description = "Not found: the id names nothing in this organization and project, or the path no route.",
    content_type = "application/problem+json"
)]
pub struct NotFound(#[allow(dead_code)] Problem);

/// `409`: a conflict with the current state; nothing was changed.
#[derive(utoipa::ToResponse)]
#[response(
    description = "Conflict: a held lock, a deleted job, a duplicate or in-use cluster, a busy backup; nothing was changed.",
    content_type = "application/problem+json"
)]
pub struct Conflict(#[allow(dead_code)] Problem);

/// `502`: the backup provider failed.
#[derive(utoipa::ToResponse)]
#[response(
    description = "The backup provider failed (`provider_error`).",
    content_type = "application/problem+json"
)]
pub struct ProviderFailed(#[allow(dead_code)] Problem);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "backupctl API",
        description = "Scheduled backups of database clusters: jobs and their history \
            (`/orchestrate/v1`), backups and clusters (`/mesdb/v1`), in the shapes of the Event \
            Store Cloud API. Every error is an RFC 7807 `application/problem+json` document with \
            a stable `code`; invalid input also names each field at fault in `fields`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Problem, FieldProblem), responses(NotFound, Conflict, ProviderFailed)),
    security(("bearer" = [])),
    modifiers(&Bearer),
)]
struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every route of the API, each registered from its handler's `#[utoipa::path]`: the router
/// ([`crate::router`]) and the document ([`document`]) are both built from this.
pub fn api_routes() -> OpenApiRouter<AppState> {
    let jobs = OpenApiRouter::new()
        .routes(routes!(routes::list_jobs, routes::create_job))
        .routes(routes!(
            routes::get_job,
            routes::update_job,
            routes::delete_job
        ))
        .routes(routes!(routes::run_job))
        .routes(routes!(routes::list_history));
    let mesdb = OpenApiRouter::new()
        .routes(routes!(routes::list_backups, routes::create_backup))
        .routes(routes!(routes::get_backup, routes::delete_backup))
        .routes(routes!(routes::verify_backup))
        .routes(routes!(routes::list_clusters, routes::register_cluster))
        .routes(routes!(routes::get_cluster, routes::delete_cluster))
        .routes(routes!(routes::lock_cluster, routes::unlock_cluster));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::readyz))
        .routes(routes!(routes::metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(routes::rearm_jobs))
        .nest(
            "/orchestrate/v1/organizations/{org}/projects/{project}",
            jobs,
        )
        .nest("/mesdb/v1/organizations/{org}/projects/{project}", mesdb)
}

/// Paths that answer without a credential (`backupctl serve`'s guard lets anyone GET them).
pub const PUBLIC_PATHS: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// Every `code` a problem answer can carry: the engine's, the extractors' and the router's,
/// a provider's refusal of a cluster's target, and `backupctl serve`'s guard's.
pub const PROBLEM_CODES: &[&str] = &[
    // engine (`EngineError::code`)
    "validation",
    "job_not_found",
    "cluster_not_found",
    "backup_not_found",
    "run_not_found",
    "job_deleted",
    "cluster_exists",
    "cluster_in_use",
    "cluster_locked",
    "lock_not_maintenance",
    "backup_busy",
    "backup_not_available",
    "cluster_not_available",
    "restore_failed",
    "provider_unavailable",
    "provider_error",
    "trigger_error",
    "store_error",
    // a provider's refusal of a target (SPEC §12)
    "path_not_allowed",
    "path_not_found",
    "path_not_directory",
    "path_not_absolute",
    "path_not_utf8",
    "path_not_empty",
    // a cluster that runs commands where none may run, a runAs user the server cannot be
    // (SPEC §15)
    "commands_not_allowed",
    "run_as_not_allowed",
    // an aws-ebs restore's availability zone or volume type that EC2 does not know
    "unknown_availability_zone",
    "unknown_volume_type",
    // the extractors and the router
    "invalid_path",
    "invalid_query",
    "malformed_body",
    "body_too_large",
    "unsupported_media_type",
    "method_not_allowed",
    "route_not_found",
    "internal_error",
    // `backupctl serve`'s guard
    "misdirected_request",
    "forbidden_origin",
    "unauthorized",
];

/// The codes of a provider's refusal of a target, which a field's coded errors carry next
/// to the core's [`backup_core::ErrorCode`]s.
pub const TARGET_CODES: [&str; 10] = [
    "path_not_allowed",
    "path_not_found",
    "path_not_directory",
    "path_not_absolute",
    "path_not_utf8",
    "path_not_empty",
    "commands_not_allowed",
    "run_as_not_allowed",
    "unknown_availability_zone",
    "unknown_volume_type",
];

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This API's OpenAPI 3.1 document.", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| serde_json::to_vec(&document()).unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response()
}

/// The whole document, as served.
pub fn document() -> Value {
    let openapi = api_routes().into_openapi();
    let mut doc = serde_json::to_value(&openapi).unwrap_or_else(|_| json!({}));
    add_problem_responses(&mut doc);
    close_objects(&mut doc);
    code_enums(&mut doc);
    add_links(&mut doc);
    doc
}

/// The reusable problem answers, keyed by status, and what each means.
const PROBLEMS: [(&str, &str, &str); 10] = [
    ("400", "BadRequest", "Invalid input: a malformed path segment, an unknown or malformed query parameter, or an invalid body; `fields` names every field at fault and `problems` keeps their stable codes."),
    ("401", "Unauthorized", "No credential, or a wrong one: send `Authorization: Bearer <token>` (`backupctl serve` prints the token's sign-in URL when it starts)."),
    ("403", "Forbidden", "A state-changing request from a web page of another origin than this server's (or a `--cors-origin`)."),
    ("404", "NotFound", ""),
    ("409", "Conflict", ""),
    ("413", "PayloadTooLarge", "The request body is larger than 64 KiB."),
    ("415", "UnsupportedMediaType", "A request body that is not `application/json`."),
    ("421", "MisdirectedRequest", "A `Host` this server does not answer to (reach it as localhost, 127.0.0.1 or a `--public-host`)."),
    ("502", "ProviderFailed", ""),
    ("503", "ServiceUnavailable", "The state store (or the trigger scheduler) failed; nothing was changed. Try again."),
];

fn problem_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn add_problem_responses(doc: &mut Value) {
    let problem = json!({ "application/problem+json": {
        "schema": { "$ref": "#/components/schemas/Problem" } } });
    if let Some(responses) = doc
        .pointer_mut("/components/responses")
        .and_then(Value::as_object_mut)
    {
        for (status, name, description) in PROBLEMS {
            if description.is_empty() {
                continue;
            }
            let mut response = json!({ "description": description, "content": problem });
            if status == "401" {
                response["headers"] = json!({ "WWW-Authenticate": {
                    "description": "`Bearer`, or `Bearer error=\"invalid_token\"` when a credential was sent but refused (RFC 6750).",
                    "schema": { "type": "string" } } });
            }
            responses.insert(name.to_owned(), response);
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let public = PUBLIC_PATHS.contains(&path.as_str());
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let params = operation
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let in_path = params.iter().any(|p| p["in"] == "path");
            let body = operation.get("requestBody").is_some();
            let state_changing = !matches!(method.as_str(), "get" | "head" | "options");
            let mut statuses = vec!["415", "421"];
            if !public {
                statuses.extend(["401", "503"]);
            }
            if state_changing {
                statuses.push("403");
            }
            if !params.is_empty() || body {
                statuses.push("400");
            }
            if in_path {
                statuses.push("404");
            }
            if body {
                statuses.push("413");
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for status in statuses {
                if let Some((_, name, _)) = PROBLEMS.iter().find(|(s, _, _)| *s == status) {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_ref(name));
                }
            }
            let sorted: BTreeMap<String, Value> = std::mem::take(responses).into_iter().collect();
            responses.extend(sorted);
        }
    }
}

/// `additionalProperties: false` on every object with fixed properties that does not say
/// otherwise; an object flattening a tagged enum (`allOf` of a `oneOf` and an object)
/// becomes a `oneOf` of closed objects, one per variant.
fn close_objects(doc: &mut Value) {
    let schemas = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(components) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in components.values_mut() {
            distribute_all_of(schema, &schemas);
        }
        // `{}` (the answer of a delete or an unlock) has no properties to close by, and is
        // exactly empty.
        if let Some(Value::Object(empty)) = components.get_mut("Empty") {
            empty.insert("additionalProperties".to_owned(), Value::Bool(false));
        }
    }
    close(doc);
}

fn close(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let is_object = object.get("type").is_some_and(|t| {
                t == "object" || t.as_array().is_some_and(|a| a.contains(&json!("object")))
            });
            if is_object && object.contains_key("properties") {
                object
                    .entry("additionalProperties")
                    .or_insert(Value::Bool(false));
            }
            for child in object.values_mut() {
                close(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close),
        _ => {}
    }
}

/// `allOf: [oneOf [A, B], C]` (or with a `$ref` to such a `oneOf`) → `oneOf: [A ∪ C, B ∪ C]`,
/// each union an object with both parts' properties and required fields.
fn distribute_all_of(schema: &mut Value, components: &Value) {
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
        return;
    };
    let resolve = |part: &Value| -> Value {
        match part.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix("#/components/schemas/")
                .and_then(|name| components.get(name))
                .cloned()
                .unwrap_or(Value::Null),
            None => part.clone(),
        }
    };
    let parts: Vec<Value> = parts.iter().map(resolve).collect();
    let mut variants: Vec<Value> = vec![json!({})];
    for part in &parts {
        let alternatives = match part.get("oneOf").and_then(Value::as_array) {
            Some(alternatives) => alternatives.iter().map(resolve).collect(),
            None => vec![part.clone()],
        };
        variants = variants
            .iter()
            .flat_map(|v| alternatives.iter().map(move |a| merge(v, a)))
            .collect();
    }
    let description = schema.get("description").cloned();
    *schema = json!({ "oneOf": variants });
    if let Some(description) = description {
        schema["description"] = description;
    }
}

fn merge(a: &Value, b: &Value) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for part in [a, b] {
        if let Some(p) = part.get("properties").and_then(Value::as_object) {
            properties.extend(p.clone());
        }
        if let Some(r) = part.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
    }
    let mut merged = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        merged["required"] = Value::Array(required);
    }
    merged
}

/// The stable codes as enums: a problem's `code`, and the code of each of a field's errors
/// (the core's [`backup_core::ErrorCode`]s and a provider's refusals).
fn code_enums(doc: &mut Value) {
    if let Some(code) = doc.pointer_mut("/components/schemas/Problem/properties/code") {
        *code = json!({ "type": "string", "enum": PROBLEM_CODES,
            "description": "The stable error code." });
    }
    let mut field_codes: Vec<String> = backup_core::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    field_codes.extend(TARGET_CODES.iter().map(|c| (*c).to_owned()));
    if let Some(code) = doc.pointer_mut("/components/schemas/FieldProblem/properties/code") {
        *code = json!({ "type": "string", "enum": field_codes,
            "description": "The stable code of this error of the field." });
    }
}

/// From a creation's answer to what can be done with the created thing: (operation, link
/// name, target operation, the target's id parameter).
const LINKS: [(&str, &str, &str, &str); 8] = [
    ("create_job", "GetJob", "get_job", "job_id"),
    ("create_job", "RunJob", "run_job", "job_id"),
    ("create_job", "DeleteJob", "delete_job", "job_id"),
    ("create_backup", "GetBackup", "get_backup", "backup_id"),
    (
        "create_backup",
        "DeleteBackup",
        "delete_backup",
        "backup_id",
    ),
    (
        "register_cluster",
        "GetCluster",
        "get_cluster",
        "cluster_id",
    ),
    (
        "register_cluster",
        "LockCluster",
        "lock_cluster",
        "cluster_id",
    ),
    (
        "register_cluster",
        "DeleteCluster",
        "delete_cluster",
        "cluster_id",
    ),
];

fn add_links(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            let Some(id) = operation.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let id = id.to_owned();
            for (from, name, to, parameter) in LINKS {
                if from != id {
                    continue;
                }
                if let Some(ok) = operation.pointer_mut("/responses/200") {
                    ok["links"][name] = json!({
                        "operationId": to,
                        "parameters": {
                            "org": "$request.path.org",
                            "project": "$request.path.project",
                            parameter: "$response.body#/id",
                        },
                    });
                }
            }
        }
    }
}
