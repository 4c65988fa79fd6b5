//! The handlers of SPEC §7: each takes its checked input from the extractors of
//! [`crate::extract`] ([`InProject`] for the engine and scope, [`OneItem`] for a route about
//! one item that takes no query), calls one engine use case and answers with the JSON shapes of
//! `backup_core::api`. Errors leave through `?` (`ApiError: From<EngineError>`); the
//! problem's `instance` is filled in by the router's layer.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use backup_core::api::{
    BackupEnvelope, BackupList, ClusterEnvelope, ClusterList, CreateBackupRequest,
    CreateJobRequest, HistoryList, IdResponse, JobEnvelope, JobList, LockClusterRequest,
    RearmResponse, RegisterClusterRequest, RunJobResponse, UpdateJobRequest,
};
use backup_engine::{BackupFilter, Engine, EngineError, ListQuery, RestoreOutcome};
use serde::Deserialize;

use crate::extract::{empty_as_none, ApiJson, ApiPath, ApiQuery, InProject, OneItem};
use crate::openapi::{
    BackupPath, ClusterPath, Conflict, JobPath, NotFound, ProjectPath, ProviderFailed,
};
use crate::problem::ApiError;

pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// The router's one piece of state.
pub type AppState = Arc<Engine>;

/// `{}`: the body of answers that carry nothing but their status.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Empty {}

/// The id segment of `…/clusters/{cluster_id}/lock`, for the one item route with a body
/// (the others read their id with [`OneItem`]).
#[derive(Deserialize)]
pub struct ClusterId {
    cluster_id: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only this job's runs; empty means every job's.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(pattern = r"^([0-9a-v]{20})?$")]
    job_id: Option<String>,
    /// At most this many items (1–1000, default 1000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `nextToken` of the previous page.
    #[serde(default, deserialize_with = "empty_as_none")]
    next_token: Option<String>,
}

/// The page of a list route (SPEC §16): `limit` (1–1000, default 1000) and the `nextToken`
/// of the previous answer.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1–1000, default 1000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `nextToken` of the previous page.
    #[serde(default, deserialize_with = "empty_as_none")]
    next_token: Option<String>,
}

impl PageQuery {
    fn list(self) -> ListQuery {
        ListQuery {
            limit: self.limit,
            next_token: self.next_token,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RearmQuery {
    /// At most this many jobs (1–100, default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `nextToken` of the previous page (the last job id it moved).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(pattern = r"^([0-9a-v]{20})?$")]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BackupQuery {
    /// Only the backups this job made; empty means any.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(pattern = r"^([0-9a-v]{20})?$")]
    job_id: Option<String>,
    /// Only the backups of this cluster; empty means any.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(pattern = r"^([A-Za-z0-9_-]{1,64})?$")]
    cluster_id: Option<String>,
    /// At most this many items (1–1000, default 1000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `nextToken` of the previous page.
    #[serde(default, deserialize_with = "empty_as_none")]
    next_token: Option<String>,
}

#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The server is up.", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: HealthStatus::Ok,
    })
}

/// `GET /healthz`: `{"status": "ok"}` while the server answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// `GET /readyz`: `{"status": "ready"}` once the store answers a read; its failure is the
/// store's 503 problem.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "The server's store answers a read.", body = Ready),
        (status = 503, description = "The store does not answer (`store_error`).",
            content_type = "application/problem+json", body = backup_core::api::Problem)))]
pub async fn readyz(State(engine): State<AppState>) -> ApiResult<Ready> {
    engine.ready().await?;
    Ok(Json(Ready {
        status: ReadyStatus::Ready,
    }))
}

/// `GET /readyz`: `{"status": "ready"}` while the store answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Ready {
    pub status: ReadyStatus,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadyStatus {
    Ready,
}

/// `GET /metrics`: the Prometheus text of [`backup_engine::metrics`] (what counts as what is
/// decided there).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus' text exposition format 0.0.4: runs by outcome and error code, run duration, lock conflicts, bytes copied and linked, backups by status, and per job the time of its last available backup and last verification.",
        content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(
    State(engine): State<AppState>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let report = engine.metrics_report().await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            backup_engine::metrics::PROMETHEUS_CONTENT_TYPE,
        )],
        report.to_prometheus(),
    ))
}

/// `{}` once a use case that answers nothing has succeeded.
fn done(result: Result<(), EngineError>) -> ApiResult<Empty> {
    result?;
    Ok(Json(Empty {}))
}

// ----- jobs --------------------------------------------------------------------------------

#[utoipa::path(post, path = "/jobs", tag = "jobs", params(ProjectPath),
    request_body = CreateJobRequest,
    responses((status = 200, description = "The job was created; its id.", body = IdResponse)))]
pub async fn create_job(
    InProject { engine, scope }: InProject,
    ApiJson(request): ApiJson<CreateJobRequest>,
) -> ApiResult<IdResponse> {
    let job = engine.create_job(&scope, &request).await?;
    Ok(Json(IdResponse { id: job.id }))
}

#[utoipa::path(get, path = "/jobs", tag = "jobs", params(ProjectPath, PageQuery),
    responses((status = 200, description = "A page of the project's jobs.", body = JobList)))]
pub async fn list_jobs(
    InProject { engine, scope }: InProject,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<JobList> {
    let page = engine.list_jobs(&scope, &q.list()).await?;
    Ok(Json(JobList {
        jobs: page.items,
        next_token: page.next_token,
    }))
}

#[utoipa::path(get, path = "/jobs/{job_id}", tag = "jobs", params(ProjectPath, JobPath),
    responses((status = 200, description = "The job.", body = JobEnvelope),
        (status = 404, response = NotFound)))]
pub async fn get_job(OneItem { engine, scope, id }: OneItem) -> ApiResult<JobEnvelope> {
    let job = engine.get_job(&scope, &id).await?;
    Ok(Json(JobEnvelope { job }))
}

/// `PATCH …/jobs/{jobId}` (SPEC §17): changes the job in place and answers it as it is now.
#[utoipa::path(patch, path = "/jobs/{job_id}", tag = "jobs", params(ProjectPath, JobPath),
    request_body = crate::openapi::UpdateJobBody,
    responses((status = 200, description = "The job, changed in place (its id, cluster, backups and history stay).", body = JobEnvelope),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn update_job(
    OneItem { engine, scope, id }: OneItem,
    ApiJson(patch): ApiJson<UpdateJobRequest>,
) -> ApiResult<JobEnvelope> {
    let job = engine.update_job(&scope, &id, &patch).await?;
    Ok(Json(JobEnvelope { job }))
}

#[utoipa::path(delete, path = "/jobs/{job_id}", tag = "jobs", params(ProjectPath, JobPath),
    responses((status = 200, description = "The job is deleted (it keeps its history and backups).", body = Empty),
        (status = 404, response = NotFound)))]
pub async fn delete_job(OneItem { engine, scope, id }: OneItem) -> ApiResult<Empty> {
    done(engine.delete_job(&scope, &id).await)
}

/// "Run now": 200 once the run holds its cluster (the backup continues in the background),
/// or 202 when the run was handed to the runner and is `queued` (on AWS, SPEC §16: API
/// Gateway gives up on a request after 30 s). The body is `{historyId}` either way.
#[utoipa::path(post, path = "/jobs/{job_id}/run", tag = "jobs", params(ProjectPath, JobPath),
    responses(
        (status = 200, description = "Local mode: the run holds its cluster and continues in the background.", body = RunJobResponse),
        (status = 202, description = "Deployed (AWS): the run was handed to the runner and is `queued`.", body = RunJobResponse),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn run_job(
    OneItem { engine, scope, id }: OneItem,
) -> Result<(axum::http::StatusCode, Json<RunJobResponse>), ApiError> {
    let outcome = engine.run_job_now(&scope, &id).await?;
    let status = if outcome.history.status == backup_core::api::RunStatus::Queued {
        axum::http::StatusCode::ACCEPTED
    } else {
        axum::http::StatusCode::OK
    };
    Ok((
        status,
        Json(RunJobResponse {
            history_id: outcome.history.id,
        }),
    ))
}

/// `POST /orchestrate/v1/jobs/rearm`: one page of moving every active job's trigger to the
/// deployment's kind. Not scoped to a project: the kind of trigger is the deployment's, so
/// every job of every scope moves (authenticated like every route: `serve`'s guard, IAM
/// behind API Gateway).
#[utoipa::path(post, path = "/orchestrate/v1/jobs/rearm", tag = "jobs", params(RearmQuery),
    responses((status = 200, description = "The jobs this request moved, and the token of the next page.", body = RearmResponse)))]
pub async fn rearm_jobs(
    State(engine): State<AppState>,
    ApiQuery(q): ApiQuery<RearmQuery>,
) -> ApiResult<RearmResponse> {
    let limit = q.limit.unwrap_or(backup_engine::engine::DEFAULT_REARM_PAGE);
    let page = engine.rearm_jobs(q.next_token.as_deref(), limit).await?;
    Ok(Json(RearmResponse {
        rearmed: page.jobs,
        next_token: page.next,
    }))
}

#[utoipa::path(get, path = "/history", tag = "history", params(ProjectPath, HistoryQuery),
    responses((status = 200, description = "A page of runs, newest first.", body = HistoryList)))]
pub async fn list_history(
    InProject { engine, scope }: InProject,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<HistoryList> {
    let query = ListQuery {
        limit: q.limit,
        next_token: q.next_token,
    };
    let page = engine
        .list_history(&scope, q.job_id.as_deref(), &query)
        .await?;
    Ok(Json(HistoryList {
        items: page.items,
        next_token: page.next_token,
    }))
}

// ----- backups -----------------------------------------------------------------------------

#[utoipa::path(post, path = "/backups", tag = "backups", params(ProjectPath),
    request_body = CreateBackupRequest,
    responses((status = 200, description = "The backup was started; its id.", body = IdResponse),
        (status = 409, response = Conflict)))]
pub async fn create_backup(
    InProject { engine, scope }: InProject,
    ApiJson(request): ApiJson<CreateBackupRequest>,
) -> ApiResult<IdResponse> {
    let id = engine.create_manual_backup(&scope, &request).await?;
    Ok(Json(IdResponse { id }))
}

#[utoipa::path(get, path = "/backups", tag = "backups", params(ProjectPath, BackupQuery),
    responses((status = 200, description = "A page of the project's backups.", body = BackupList)))]
pub async fn list_backups(
    InProject { engine, scope }: InProject,
    ApiQuery(q): ApiQuery<BackupQuery>,
) -> ApiResult<BackupList> {
    let filter = BackupFilter {
        job_id: q.job_id,
        cluster_id: q.cluster_id,
    };
    let query = ListQuery {
        limit: q.limit,
        next_token: q.next_token,
    };
    let page = engine.list_backups(&scope, &filter, &query).await?;
    Ok(Json(BackupList {
        backups: page.items,
        next_token: page.next_token,
    }))
}

/// `GET …/backups/{id}`: not in the SPEC's table, answered as `{"backup": Backup}` so a
/// client can follow one backup without listing them all.
#[utoipa::path(get, path = "/backups/{backup_id}", tag = "backups", params(ProjectPath, BackupPath),
    responses((status = 200, description = "The backup.", body = BackupEnvelope),
        (status = 404, response = NotFound)))]
pub async fn get_backup(OneItem { engine, scope, id }: OneItem) -> ApiResult<BackupEnvelope> {
    let backup = engine.get_backup(&scope, &id).await?;
    Ok(Json(BackupEnvelope { backup }))
}

#[utoipa::path(delete, path = "/backups/{backup_id}", tag = "backups", params(ProjectPath, BackupPath),
    responses((status = 200, description = "The backup is deleted.", body = Empty),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = ProviderFailed)))]
pub async fn delete_backup(OneItem { engine, scope, id }: OneItem) -> ApiResult<Empty> {
    done(engine.delete_backup(&scope, &id).await)
}

// ----- clusters ----------------------------------------------------------------------------

/// Registers a cluster (200), or, with `sourceBackupId`, restores a backup into a new one
/// (SPEC §14): 201 once its data is in place (a directory restore; the cluster is
/// `available`), 202 when the provider continues outside the request (EBS volumes being
/// made; the cluster is `creating` until they are). The body is `{id}` either way. A
/// restore that ran and failed answers 502, and the cluster stays recorded `failed` with
/// the reason in its `details`.
#[utoipa::path(post, path = "/clusters", tag = "clusters", params(ProjectPath),
    request_body = RegisterClusterRequest,
    responses((status = 200, description = "The cluster is registered; its id.", body = IdResponse),
        (status = 201, description = "A restore (`sourceBackupId`): the backup's data is in place and the new cluster is `available`; its id.", body = IdResponse),
        (status = 202, description = "A restore (`sourceBackupId`) that continues outside the request (EBS volumes being made): the new cluster is `creating`; its id.", body = IdResponse),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = ProviderFailed)))]
pub async fn register_cluster(
    InProject { engine, scope }: InProject,
    ApiJson(request): ApiJson<RegisterClusterRequest>,
) -> Result<(axum::http::StatusCode, Json<IdResponse>), ApiError> {
    if request.is_restore() {
        let outcome = engine.restore_cluster(&scope, &request).await?;
        let status = match outcome {
            RestoreOutcome::Done(_) => axum::http::StatusCode::CREATED,
            RestoreOutcome::Pending(_) => axum::http::StatusCode::ACCEPTED,
        };
        let id = outcome.cluster().id.clone();
        return Ok((status, Json(IdResponse { id })));
    }
    let cluster = engine.register_cluster(&scope, &request).await?;
    Ok((
        axum::http::StatusCode::OK,
        Json(IdResponse { id: cluster.id }),
    ))
}

#[utoipa::path(get, path = "/clusters", tag = "clusters", params(ProjectPath, PageQuery),
    responses((status = 200, description = "A page of the project's clusters.", body = ClusterList)))]
pub async fn list_clusters(
    InProject { engine, scope }: InProject,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<ClusterList> {
    let page = engine.list_clusters(&scope, &q.list()).await?;
    Ok(Json(ClusterList {
        clusters: page.items,
        next_token: page.next_token,
    }))
}

#[utoipa::path(get, path = "/clusters/{cluster_id}", tag = "clusters", params(ProjectPath, ClusterPath),
    responses((status = 200, description = "The cluster.", body = ClusterEnvelope),
        (status = 404, response = NotFound)))]
pub async fn get_cluster(OneItem { engine, scope, id }: OneItem) -> ApiResult<ClusterEnvelope> {
    let cluster = engine.get_cluster(&scope, &id).await?;
    Ok(Json(ClusterEnvelope { cluster }))
}

#[utoipa::path(delete, path = "/clusters/{cluster_id}", tag = "clusters", params(ProjectPath, ClusterPath),
    responses((status = 200, description = "The cluster is unregistered.", body = Empty),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn delete_cluster(OneItem { engine, scope, id }: OneItem) -> ApiResult<Empty> {
    done(engine.delete_cluster(&scope, &id).await)
}

/// Takes an operator's maintenance lock; answers the cluster with its lock.
#[utoipa::path(post, path = "/clusters/{cluster_id}/lock", tag = "clusters", params(ProjectPath, ClusterPath),
    request_body = LockClusterRequest,
    responses((status = 200, description = "The lock is taken; the cluster with its lock.", body = ClusterEnvelope),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn lock_cluster(
    InProject { engine, scope }: InProject,
    ApiPath(p): ApiPath<ClusterId>,
    ApiJson(request): ApiJson<LockClusterRequest>,
) -> ApiResult<ClusterEnvelope> {
    let lock = engine.lock_cluster(&scope, &p.cluster_id, &request).await?;
    let mut cluster = engine.get_cluster(&scope, &p.cluster_id).await?;
    cluster.lock = Some(lock);
    Ok(Json(ClusterEnvelope { cluster }))
}

#[utoipa::path(delete, path = "/clusters/{cluster_id}/lock", tag = "clusters", params(ProjectPath, ClusterPath),
    responses((status = 200, description = "The operator's lock is released.", body = Empty),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
pub async fn unlock_cluster(OneItem { engine, scope, id }: OneItem) -> ApiResult<Empty> {
    done(engine.unlock_cluster(&scope, &id).await)
}
