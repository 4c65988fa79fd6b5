//! The handlers of SPEC §7: each takes its checked input from the extractors of
//! [`crate::extract`] ([`InProject`] for the engine and scope, [`OneItem`] for a route about
//! one item that takes no query), calls one engine use case and answers with the JSON shapes of
//! `backup_core::api`. Errors leave through `?` (`ApiError: From<EngineError>`); the
//! problem's `instance` is filled in by the router's layer.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use backup_core::api::{
    BackupList, ClusterEnvelope, ClusterList, CreateBackupRequest, CreateJobRequest, HistoryList,
    IdResponse, JobEnvelope, JobList, LockClusterRequest, RearmResponse, RegisterClusterRequest,
    RunJobResponse, UpdateJobRequest,
};
use backup_engine::{BackupFilter, Engine, EngineError, ListQuery};
use serde::Deserialize;

use crate::extract::{empty_as_none, ApiJson, ApiPath, ApiQuery, InProject, OneItem};
use crate::problem::ApiError;

pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// The router's one piece of state.
pub type AppState = Arc<Engine>;

/// `{}`: the body of answers that carry nothing but their status.
#[derive(Debug, serde::Serialize)]
pub struct Empty {}

/// The id segment of `…/clusters/{cluster_id}/lock`, for the one item route with a body
/// (the others read their id with [`OneItem`]).
#[derive(Deserialize)]
pub struct ClusterId {
    cluster_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HistoryQuery {
    #[serde(default, deserialize_with = "empty_as_none")]
    job_id: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default, deserialize_with = "empty_as_none")]
    next_token: Option<String>,
}

/// The page of a list route (SPEC §16): `limit` (1–1000, default 1000) and the `nextToken`
/// of the previous answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    limit: Option<usize>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RearmQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default, deserialize_with = "empty_as_none")]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupQuery {
    #[serde(default, deserialize_with = "empty_as_none")]
    job_id: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    cluster_id: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default, deserialize_with = "empty_as_none")]
    next_token: Option<String>,
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `{}` once a use case that answers nothing has succeeded.
fn done(result: Result<(), EngineError>) -> ApiResult<Empty> {
    result?;
    Ok(Json(Empty {}))
}

// ----- jobs --------------------------------------------------------------------------------

pub async fn create_job(
    InProject { engine, scope }: InProject,
    ApiJson(request): ApiJson<CreateJobRequest>,
) -> ApiResult<IdResponse> {
    let job = engine.create_job(&scope, &request).await?;
    Ok(Json(IdResponse { id: job.id }))
}

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

pub async fn get_job(OneItem { engine, scope, id }: OneItem) -> ApiResult<JobEnvelope> {
    let job = engine.get_job(&scope, &id).await?;
    Ok(Json(JobEnvelope { job }))
}

/// `PATCH …/jobs/{jobId}` (SPEC §17): changes the job in place and answers it as it is now.
pub async fn update_job(
    OneItem { engine, scope, id }: OneItem,
    ApiJson(patch): ApiJson<UpdateJobRequest>,
) -> ApiResult<JobEnvelope> {
    let job = engine.update_job(&scope, &id, &patch).await?;
    Ok(Json(JobEnvelope { job }))
}

pub async fn delete_job(OneItem { engine, scope, id }: OneItem) -> ApiResult<Empty> {
    done(engine.delete_job(&scope, &id).await)
}

/// "Run now": 200 once the run holds its cluster (the backup continues in the background),
/// or 202 when the run was handed to the runner and is `queued` (on AWS, SPEC §16: API
/// Gateway gives up on a request after 30 s). The body is `{historyId}` either way.
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

pub async fn create_backup(
    InProject { engine, scope }: InProject,
    ApiJson(request): ApiJson<CreateBackupRequest>,
) -> ApiResult<IdResponse> {
    let id = engine.create_manual_backup(&scope, &request).await?;
    Ok(Json(IdResponse { id }))
}

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
pub async fn get_backup(OneItem { engine, scope, id }: OneItem) -> ApiResult<serde_json::Value> {
    let backup = engine.get_backup(&scope, &id).await?;
    Ok(Json(serde_json::json!({ "backup": backup })))
}

pub async fn delete_backup(OneItem { engine, scope, id }: OneItem) -> ApiResult<Empty> {
    done(engine.delete_backup(&scope, &id).await)
}

// ----- clusters ----------------------------------------------------------------------------

pub async fn register_cluster(
    InProject { engine, scope }: InProject,
    ApiJson(request): ApiJson<RegisterClusterRequest>,
) -> ApiResult<IdResponse> {
    let cluster = engine.register_cluster(&scope, &request).await?;
    Ok(Json(IdResponse { id: cluster.id }))
}

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

pub async fn get_cluster(OneItem { engine, scope, id }: OneItem) -> ApiResult<ClusterEnvelope> {
    let cluster = engine.get_cluster(&scope, &id).await?;
    Ok(Json(ClusterEnvelope { cluster }))
}

pub async fn delete_cluster(OneItem { engine, scope, id }: OneItem) -> ApiResult<Empty> {
    done(engine.delete_cluster(&scope, &id).await)
}

/// Takes an operator's maintenance lock; answers the cluster with its lock.
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

pub async fn unlock_cluster(OneItem { engine, scope, id }: OneItem) -> ApiResult<Empty> {
    done(engine.unlock_cluster(&scope, &id).await)
}
