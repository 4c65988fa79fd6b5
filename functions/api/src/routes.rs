//! The handlers of SPEC §7: each parses its input, calls one engine use case and answers
//! with the JSON shapes of `backup_core::api`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use backup_core::api::{
    BackupList, ClusterEnvelope, ClusterList, CreateBackupRequest, CreateJobRequest, HistoryList,
    IdResponse, JobEnvelope, JobList, LockClusterRequest, RegisterClusterRequest, RunJobResponse,
};
use backup_engine::{BackupFilter, Engine, EngineError, Scope};
use serde::Deserialize;

use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery};

pub type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
}

/// `{}`: the body of answers that carry nothing but their status.
#[derive(Debug, serde::Serialize)]
pub struct Empty {}

fn scope(org: &str, project: &str, uri: &Uri) -> Result<Scope, ApiError> {
    Scope::new(org, project).map_err(|e| ApiError::engine(e, uri))
}

/// Runs a use case and maps its error to a problem for `uri`.
fn answer<T>(result: Result<T, EngineError>, uri: &Uri) -> ApiResult<T> {
    result.map(Json).map_err(|e| ApiError::engine(e, uri))
}

#[derive(Deserialize)]
pub struct ScopePath {
    org: String,
    project: String,
}

#[derive(Deserialize)]
pub struct JobPath {
    org: String,
    project: String,
    job_id: String,
}

#[derive(Deserialize)]
pub struct BackupPath {
    org: String,
    project: String,
    backup_id: String,
}

#[derive(Deserialize)]
pub struct ClusterPath {
    org: String,
    project: String,
    cluster_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryQuery {
    job_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupQuery {
    job_id: Option<String>,
    cluster_id: Option<String>,
}

/// For routes that take no query: anything given is a mistake worth reporting.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

// ----- jobs --------------------------------------------------------------------------------

pub async fn create_job(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ScopePath>,
    ApiJson(request): ApiJson<CreateJobRequest>,
) -> ApiResult<IdResponse> {
    let scope = scope(&p.org, &p.project, &uri)?;
    let job = state.engine.create_job(&scope, &request).await;
    answer(job.map(|j| IdResponse { id: j.id }), &uri)
}

pub async fn list_jobs(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ScopePath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<JobList> {
    let scope = scope(&p.org, &p.project, &uri)?;
    answer(
        state
            .engine
            .list_jobs(&scope)
            .await
            .map(|jobs| JobList { jobs }),
        &uri,
    )
}

pub async fn get_job(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<JobPath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<JobEnvelope> {
    let scope = scope(&p.org, &p.project, &uri)?;
    answer(
        state
            .engine
            .get_job(&scope, &p.job_id)
            .await
            .map(|job| JobEnvelope { job }),
        &uri,
    )
}

pub async fn delete_job(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<JobPath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<Empty> {
    let scope = scope(&p.org, &p.project, &uri)?;
    answer(
        state
            .engine
            .delete_job(&scope, &p.job_id)
            .await
            .map(|()| Empty {}),
        &uri,
    )
}

pub async fn run_job(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<JobPath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<RunJobResponse> {
    let scope = scope(&p.org, &p.project, &uri)?;
    let outcome = state.engine.run_job_now(&scope, &p.job_id).await;
    answer(
        outcome.map(|o| RunJobResponse {
            history_id: o.history.id,
        }),
        &uri,
    )
}

pub async fn list_history(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ScopePath>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<HistoryList> {
    let scope = scope(&p.org, &p.project, &uri)?;
    let items = state.engine.list_history(&scope, q.job_id.as_deref()).await;
    answer(items.map(|items| HistoryList { items }), &uri)
}

// ----- backups -----------------------------------------------------------------------------

pub async fn create_backup(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ScopePath>,
    ApiJson(request): ApiJson<CreateBackupRequest>,
) -> ApiResult<IdResponse> {
    let scope = scope(&p.org, &p.project, &uri)?;
    let id = state.engine.create_manual_backup(&scope, &request).await;
    answer(id.map(|id| IdResponse { id }), &uri)
}

pub async fn list_backups(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ScopePath>,
    ApiQuery(q): ApiQuery<BackupQuery>,
) -> ApiResult<BackupList> {
    let scope = scope(&p.org, &p.project, &uri)?;
    let filter = BackupFilter {
        job_id: q.job_id,
        cluster_id: q.cluster_id,
    };
    let backups = state.engine.list_backups(&scope, &filter).await;
    answer(backups.map(|backups| BackupList { backups }), &uri)
}

/// `GET …/backups/{id}`: not in the SPEC's table, answered as `{"backup": Backup}` so a
/// client can follow one backup without listing them all.
pub async fn get_backup(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<BackupPath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<serde_json::Value> {
    let scope = scope(&p.org, &p.project, &uri)?;
    let backup = state.engine.get_backup(&scope, &p.backup_id).await;
    answer(backup.map(|b| serde_json::json!({ "backup": b })), &uri)
}

pub async fn delete_backup(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<BackupPath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<Empty> {
    let scope = scope(&p.org, &p.project, &uri)?;
    answer(
        state
            .engine
            .delete_backup(&scope, &p.backup_id)
            .await
            .map(|()| Empty {}),
        &uri,
    )
}

// ----- clusters ----------------------------------------------------------------------------

pub async fn register_cluster(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ScopePath>,
    ApiJson(request): ApiJson<RegisterClusterRequest>,
) -> ApiResult<IdResponse> {
    let scope = scope(&p.org, &p.project, &uri)?;
    let cluster = state.engine.register_cluster(&scope, &request).await;
    answer(cluster.map(|c| IdResponse { id: c.id }), &uri)
}

pub async fn list_clusters(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ScopePath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<ClusterList> {
    let scope = scope(&p.org, &p.project, &uri)?;
    answer(
        state
            .engine
            .list_clusters(&scope)
            .await
            .map(|clusters| ClusterList { clusters }),
        &uri,
    )
}

pub async fn get_cluster(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ClusterPath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<ClusterEnvelope> {
    let scope = scope(&p.org, &p.project, &uri)?;
    answer(
        state
            .engine
            .get_cluster(&scope, &p.cluster_id)
            .await
            .map(|cluster| ClusterEnvelope { cluster }),
        &uri,
    )
}

pub async fn delete_cluster(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ClusterPath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<Empty> {
    let scope = scope(&p.org, &p.project, &uri)?;
    answer(
        state
            .engine
            .delete_cluster(&scope, &p.cluster_id)
            .await
            .map(|()| Empty {}),
        &uri,
    )
}

/// Takes an operator's maintenance lock; answers the cluster with its lock.
pub async fn lock_cluster(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ClusterPath>,
    ApiJson(request): ApiJson<LockClusterRequest>,
) -> ApiResult<ClusterEnvelope> {
    let scope = scope(&p.org, &p.project, &uri)?;
    let engine = &state.engine;
    let result = async {
        let lock = engine.lock_cluster(&scope, &p.cluster_id, &request).await?;
        let mut cluster = engine.get_cluster(&scope, &p.cluster_id).await?;
        cluster.lock = Some(lock);
        Ok(ClusterEnvelope { cluster })
    }
    .await;
    answer(result, &uri)
}

pub async fn unlock_cluster(
    State(state): State<AppState>,
    uri: Uri,
    ApiPath(p): ApiPath<ClusterPath>,
    ApiQuery(_): ApiQuery<NoQuery>,
) -> ApiResult<Empty> {
    let scope = scope(&p.org, &p.project, &uri)?;
    answer(
        state
            .engine
            .unlock_cluster(&scope, &p.cluster_id)
            .await
            .map(|()| Empty {}),
        &uri,
    )
}
