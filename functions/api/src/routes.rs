//! The handlers of SPEC §7: each takes its checked input from the extractors of
//! [`crate::extract`], calls one engine use case and answers with the JSON shapes of
//! `backup_core::api`. Errors leave through `?` (`ApiError: From<EngineError>`); the
//! problem's `instance` is filled in by the router's layer.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use backup_core::api::{
    BackupList, ClusterEnvelope, ClusterList, CreateBackupRequest, CreateJobRequest, HistoryList,
    IdResponse, JobEnvelope, JobList, LockClusterRequest, RegisterClusterRequest, RunJobResponse,
};
use backup_engine::{BackupFilter, Engine};
use serde::Deserialize;

use crate::extract::{empty_as_none, ApiJson, ApiPath, ApiQuery, InScope, NoQuery};
use crate::problem::ApiError;

pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// The router's one piece of state.
pub type AppState = Arc<Engine>;

/// `{}`: the body of answers that carry nothing but their status.
#[derive(Debug, serde::Serialize)]
pub struct Empty {}

/// The id segment of `…/jobs/{job_id}…` (the scope is read by [`InScope`]).
#[derive(Deserialize)]
pub struct JobId {
    job_id: String,
}

#[derive(Deserialize)]
pub struct BackupId {
    backup_id: String,
}

#[derive(Deserialize)]
pub struct ClusterId {
    cluster_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryQuery {
    #[serde(default, deserialize_with = "empty_as_none")]
    job_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupQuery {
    #[serde(default, deserialize_with = "empty_as_none")]
    job_id: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    cluster_id: Option<String>,
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

// ----- jobs --------------------------------------------------------------------------------

pub async fn create_job(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiJson(request): ApiJson<CreateJobRequest>,
) -> ApiResult<IdResponse> {
    let job = engine.create_job(&scope, &request).await?;
    Ok(Json(IdResponse { id: job.id }))
}

pub async fn list_jobs(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<JobList> {
    let jobs = engine.list_jobs(&scope).await?;
    Ok(Json(JobList { jobs }))
}

pub async fn get_job(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<JobId>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<JobEnvelope> {
    let job = engine.get_job(&scope, &p.job_id).await?;
    Ok(Json(JobEnvelope { job }))
}

pub async fn delete_job(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<JobId>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<Empty> {
    engine.delete_job(&scope, &p.job_id).await?;
    Ok(Json(Empty {}))
}

pub async fn run_job(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<JobId>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<RunJobResponse> {
    let outcome = engine.run_job_now(&scope, &p.job_id).await?;
    Ok(Json(RunJobResponse {
        history_id: outcome.history.id,
    }))
}

pub async fn list_history(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<HistoryList> {
    let items = engine.list_history(&scope, q.job_id.as_deref()).await?;
    Ok(Json(HistoryList { items }))
}

// ----- backups -----------------------------------------------------------------------------

pub async fn create_backup(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiJson(request): ApiJson<CreateBackupRequest>,
) -> ApiResult<IdResponse> {
    let id = engine.create_manual_backup(&scope, &request).await?;
    Ok(Json(IdResponse { id }))
}

pub async fn list_backups(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiQuery(q): ApiQuery<BackupQuery>,
) -> ApiResult<BackupList> {
    let filter = BackupFilter {
        job_id: q.job_id,
        cluster_id: q.cluster_id,
    };
    let backups = engine.list_backups(&scope, &filter).await?;
    Ok(Json(BackupList { backups }))
}

/// `GET …/backups/{id}`: not in the SPEC's table, answered as `{"backup": Backup}` so a
/// client can follow one backup without listing them all.
pub async fn get_backup(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<BackupId>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<serde_json::Value> {
    let backup = engine.get_backup(&scope, &p.backup_id).await?;
    Ok(Json(serde_json::json!({ "backup": backup })))
}

pub async fn delete_backup(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<BackupId>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<Empty> {
    engine.delete_backup(&scope, &p.backup_id).await?;
    Ok(Json(Empty {}))
}

// ----- clusters ----------------------------------------------------------------------------

pub async fn register_cluster(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiJson(request): ApiJson<RegisterClusterRequest>,
) -> ApiResult<IdResponse> {
    let cluster = engine.register_cluster(&scope, &request).await?;
    Ok(Json(IdResponse { id: cluster.id }))
}

pub async fn list_clusters(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<ClusterList> {
    let clusters = engine.list_clusters(&scope).await?;
    Ok(Json(ClusterList { clusters }))
}

pub async fn get_cluster(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<ClusterId>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<ClusterEnvelope> {
    let cluster = engine.get_cluster(&scope, &p.cluster_id).await?;
    Ok(Json(ClusterEnvelope { cluster }))
}

pub async fn delete_cluster(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<ClusterId>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<Empty> {
    engine.delete_cluster(&scope, &p.cluster_id).await?;
    Ok(Json(Empty {}))
}

/// Takes an operator's maintenance lock; answers the cluster with its lock.
pub async fn lock_cluster(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<ClusterId>,
    ApiJson(request): ApiJson<LockClusterRequest>,
) -> ApiResult<ClusterEnvelope> {
    let lock = engine.lock_cluster(&scope, &p.cluster_id, &request).await?;
    let mut cluster = engine.get_cluster(&scope, &p.cluster_id).await?;
    cluster.lock = Some(lock);
    Ok(Json(ClusterEnvelope { cluster }))
}

pub async fn unlock_cluster(
    State(engine): State<AppState>,
    InScope(scope): InScope,
    ApiPath(p): ApiPath<ClusterId>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> ApiResult<Empty> {
    engine.unlock_cluster(&scope, &p.cluster_id).await?;
    Ok(Json(Empty {}))
}
