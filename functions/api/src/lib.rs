//! The HTTP API of scheduled backups (SPEC §7), as one axum [`Router`] built by [`router`]:
//! the local server serves it, and a Lambda (`lambda_http`) can run the same router unchanged.
//!
//! Every route lives under `/orchestrate/v1/organizations/{org}/projects/{project}/…` (jobs,
//! history) or `/mesdb/v1/organizations/{org}/projects/{project}/…` (backups, clusters and
//! their locks), but for `POST /orchestrate/v1/jobs/rearm`, which moves the jobs of every
//! scope to the deployment's kind of trigger (SPEC §16), speaks camelCase JSON with the types of `backup_core::api`, and answers
//! every error as an RFC 7807 `application/problem+json` document with a stable `code` and,
//! for invalid input, a `fields` map naming every offending field and a `problems` map
//! keeping each field's stable codes:
//!
//! ```json
//! {"type": "urn:backupctl:problem:validation", "title": "Invalid request", "status": 400,
//!  "detail": "2 fields are invalid (path, region); `fields` says what to write in each.",
//!  "instance": "/mesdb/v1/organizations/default/projects/default/clusters",
//!  "fields": {"path": "Give the data directory as an absolute path (starting with /); `data` is not.",
//!             "region": "A directory cluster's region is `local`; leave it out."},
//!  "problems": {"path": [{"code": "not_absolute", "message": "Give the data directory …", "start": 0, "end": 4}],
//!               "region": [{"code": "invalid_region", "message": "A directory cluster's …", "start": 0, "end": 9}]},
//!  "code": "validation"}
//! ```
//!
//! # Layout
//! - [`routes`]: one handler per route: checked input in, one engine call, JSON out; errors
//!   leave through `?`.
//! - [`extract`]: the extractors that turn malformed paths (and scopes), queries and bodies
//!   into problems: [`extract::InScope`], [`extract::ApiPath`], [`extract::ApiQuery`],
//!   [`extract::ApiJson`], and the two every handler starts from, [`extract::InProject`]
//!   (engine and scope) and [`extract::OneItem`] (engine, scope and id, no query).
//! - [`problem`]: the problem answer, `From<EngineError>` for it, and the layer that fills
//!   in its `instance`.
//! - [`openapi`]: the routes, each from its handler's `#[utoipa::path]`, and the OpenAPI 3.1
//!   document built from the same annotations, served at `GET /openapi.json`.
//! - [`web`]: the web form's static files (local server only).
//! - [`cors`]: opt-in CORS for a console served from another origin.
//!
//! # Decisions
//! - Success is `200 OK` for every route (creations answer `{id}`; deletions `{}`), as the
//!   Event Store Cloud API does; errors: 400 invalid input (malformed JSON, unknown fields,
//!   over-long strings, malformed ids), 404 unknown ids, 405 wrong method, 409 conflicts (a
//!   held lock, a duplicate cluster id, a cluster in use), 413 bodies over 64 KiB, 415 a
//!   non-JSON content type, 502 a provider failure, 503 a store failure.
//! - A request body may omit `Content-Type`; one that names another type than JSON is
//!   refused (415). Besides being honest, this keeps a hostile web page from driving a local
//!   server with a plain form post: a cross-origin `application/json` request needs a CORS
//!   preflight, which this API never grants. `POST …/jobs/{id}/run` takes no body.
//! - [`router`] takes the engine as `Arc<Engine>` and holds no other state, so a Lambda can
//!   build it once per cold start and hand it to `lambda_http::run` unchanged.
//! - `PATCH …/jobs/{id}` (SPEC §17) takes the create body's fields, each optional, and
//!   answers `{"job": Job}` as it is now.
//! - `POST …/clusters/{id}/lock` answers `{"cluster": Cluster}` with its new `lock`;
//!   `GET …/backups/{id}` (an addition) answers `{"backup": Backup}`.
//! - `POST …/backups/{id}/verify` (SPEC §14) takes no body and answers the verify's result,
//!   200 also when it says `failed` (the verify ran; a check that could not be made is the
//!   502); it is stored on the backup as `verifiedAt` and `verification`.
//! - `/healthz` and `/readyz` are probes and `/metrics` a scrape target; which of them need a
//!   credential is the server's guard's to decide (`backupctl serve`: `/metrics` does, the
//!   probes do not; behind API Gateway only the routes the stack declares are reachable).
//!   `/readyz` answers 503 problem+json (`store_error`) when the store does not.
//! - A panic in a handler (there should be none) becomes a 500 problem, not a dropped
//!   connection.
//! - Handlers never see the URI: a problem's `instance` is the request's path, written by the
//!   [`problem::fill_instance`] layer on the way out. Only the fallbacks (whose detail names
//!   the path anyway) and code in front of the router (`backupctl serve`'s guard) pass a URI
//!   to [`problem::ApiError::new`].
//! - Input is read by axum's own extractors behind ours, which only map their rejections to
//!   problems: `Path`, `Query` (serde_urlencoded; a malformed `%` escape, bytes that are not
//!   UTF-8 and a repeated name are refused first, since `Query` would quietly keep them) and
//!   a JSON body through `serde_path_to_error`, so `fields` names the field at fault by its
//!   JSON path (`data.maxBackupCount`), as validation problems do.
//! - `problems` (field → `[{code, message, start?, end?}]`) sits beside `fields` rather than
//!   replacing it, so existing clients keep working. It holds the errors a rule of
//!   `backup_core` found (job, cluster, lock and id checks: codes such as `required`,
//!   `too_long`, `not_absolute`, `invalid_volume_id`, `reserved_operation`, `out_of_range`,
//!   `not_found`) and a provider's refusal (`path_not_allowed`); `start`/`end` are present
//!   when there is text to underline. A field only the server's own checks found (a
//!   malformed job id in the path, a malformed body) is in `fields` alone.
//! - Extractors run in the order path, query, body: a request with several mistakes is
//!   answered about the first in that order (a malformed organization id before a
//!   malformed body).

pub mod cors;
pub mod extract;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod web;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use backup_engine::Engine;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use problem::ApiError;

pub use cors::{parse_origin, with_cors};
pub use web::{router_with_web, WEB_NOT_BUILT_HTML};

/// The largest request body accepted. The largest real request (a job with a 256-character
/// template and description) is under 2 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The API prefixes, for the fallback that tells API 404s from web form files.
pub const API_PREFIXES: [&str; 2] = ["/orchestrate/", "/mesdb/"];

/// The API's router: every route of SPEC §7, `POST /orchestrate/v1/jobs/rearm` (SPEC §16),
/// the probes `GET /healthz` (the process answers) and `GET /readyz` (its store answers),
/// `GET /metrics` (Prometheus text) and `GET /openapi.json` (SPEC §17).
pub fn router(engine: Arc<Engine>) -> Router {
    // Every route comes from its handler's OpenAPI annotation (see `openapi`), so the router
    // and `/openapi.json` list the same paths and methods.
    let (routes, _) = openapi::api_routes().split_for_parts();
    routes
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(engine)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(problem::fill_instance))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(TraceLayer::new_for_http())
}

async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not accept this method; see the API reference.",
            uri.path()
        ),
        &uri,
    )
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!("There is no API route {}.", uri.path()),
        &uri,
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    // Outside the `instance` layer (the request is gone with the panic), so `instance` is
    // left empty.
    ApiError::of(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "The server failed to handle this request; nothing should have changed. Check the server's log.",
    )
    .into_response()
}
