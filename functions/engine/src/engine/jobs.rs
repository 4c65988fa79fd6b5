//! Jobs (SPEC §7): create (validated, its trigger armed, all or nothing), read, list,
//! delete (its history and backups remain), re-arm every trigger at start-up, move every
//! job's trigger to the deployment's kind (SPEC §16 `jobs rearm`); and the runs' history,
//! which is listed per job.

use backup_core::api::{self, CreateJobRequest, JobStatus};
use backup_core::job::{check_cluster_id, validate_job};

use super::{check_job_id, Engine};
use crate::error::{EngineError, Problems, TriggerError};
use crate::model::{JobRecord, Scope};
use crate::page::{ListQuery, Listed, Positions};

/// The most jobs one [`Engine::rearm_jobs`] call moves.
pub const MAX_REARM_PAGE: usize = 100;
/// How many jobs a `jobs rearm` request moves unless it says: a few AWS calls each, well
/// within API Gateway's 30 s.
pub const DEFAULT_REARM_PAGE: usize = 20;

/// One page of [`Engine::rearm_jobs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rearmed {
    /// The jobs whose triggers were moved, in id order.
    pub jobs: Vec<String>,
    /// Where the next page starts (its `after`); `None` when no active job is left.
    pub next: Option<String>,
}

impl Engine {
    /// Validates and stores a job and arms its trigger, all or nothing: when the trigger
    /// cannot be armed the job is removed again and the error returned.
    pub async fn create_job(
        &self,
        scope: &Scope,
        request: &CreateJobRequest,
    ) -> Result<api::Job, EngineError> {
        let store = &self.inner.store;
        let mut problems = Problems::default();
        let valid = match validate_job(request) {
            Ok(valid) => Some(valid),
            Err(job_problems) => {
                problems.extend(job_problems);
                None
            }
        };
        // The cluster must be registered in this project, checked even when other fields
        // are wrong so the operator sees every problem at once.
        let cluster_id = request.data.as_ref().and_then(|d| d.cluster_id.as_deref());
        if let Some(cluster_id) = cluster_id {
            if check_cluster_id(Some(cluster_id)).is_ok()
                && !self.cluster_in_scope(scope, cluster_id).await?
            {
                problems.add_errors(
                    backup_core::job::keys::CLUSTER_ID,
                    [backup_core::FieldError::new(
                        backup_core::ErrorCode::NotFound,
                        backup_core::Field::ClusterId,
                        0..cluster_id.chars().count(),
                        format!(
                            "No cluster {cluster_id} is registered in this project; register it \
                             first (`backupctl clusters register --cluster-id {cluster_id} …`)."
                        ),
                    )],
                );
            }
        }
        problems.into_result()?;
        let Some(valid) = valid else {
            return Err(EngineError::invalid("data", "The job is invalid."));
        };

        let now = self.now();
        let mut job = JobRecord {
            id: String::new(),
            scope: scope.clone(),
            description: valid.description,
            schedule: valid.schedule.as_str().to_owned(),
            status: JobStatus::Active,
            cluster_id: valid.cluster_id,
            template: valid.template.as_str().to_owned(),
            max_backup_count: valid.max_backup_count.get(),
            created: now,
        };
        // A collision of 64 random bits is not expected; retrying keeps it harmless anyway.
        let mut inserted = false;
        for _ in 0..3 {
            job.id = self.inner.ids.new_id();
            if store.insert_job(&job).await? {
                inserted = true;
                break;
            }
        }
        if !inserted {
            return Err(crate::error::StoreError::Corrupt(
                "could not find a free job id after three tries".to_owned(),
            )
            .into());
        }
        if let Err(error) = self.inner.triggers.register(&job).await {
            if let Err(undo) = store.remove_job(&job.id).await {
                tracing::error!(job_id = %job.id, %undo, "could not remove a job whose trigger failed");
            }
            return Err(error.into());
        }
        tracing::info!(job_id = %job.id, schedule = %job.schedule, cluster_id = %job.cluster_id, "job created");
        Ok(job.to_api(now))
    }

    async fn cluster_in_scope(&self, scope: &Scope, cluster_id: &str) -> Result<bool, EngineError> {
        Ok(self
            .inner
            .store
            .get_cluster(cluster_id)
            .await?
            .is_some_and(|c| c.scope == *scope))
    }

    /// A job of this scope, or `JobNotFound`; a malformed id is invalid input.
    pub(crate) async fn job_in_scope(
        &self,
        scope: &Scope,
        job_id: &str,
    ) -> Result<JobRecord, EngineError> {
        check_job_id("jobId", job_id)?;
        match self.inner.store.get_job(job_id).await? {
            Some(job) if job.scope == *scope => Ok(job),
            _ => Err(EngineError::JobNotFound(job_id.to_owned())),
        }
    }

    pub async fn get_job(&self, scope: &Scope, job_id: &str) -> Result<api::Job, EngineError> {
        let job = self.job_in_scope(scope, job_id).await?;
        Ok(job.to_api(self.now()))
    }

    /// A page of the scope's jobs, oldest first (SPEC §16).
    pub async fn list_jobs(
        &self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Listed<api::Job>, EngineError> {
        let page = query.request(Positions::InstantThenId)?;
        let now = self.now();
        let jobs = self.inner.store.list_jobs(scope, &page).await?;
        Ok(Listed::from_page(jobs.map(|j| j.to_api(now))))
    }

    /// Marks the job deleted and disarms its trigger; its history and backups remain.
    /// Deleting a deleted job disarms the trigger again (so a failed attempt can be retried).
    /// A trigger of a retired kind goes too: a job deleted before `jobs rearm` moved it
    /// would otherwise keep firing, and record a failed run each time.
    pub async fn delete_job(&self, scope: &Scope, job_id: &str) -> Result<(), EngineError> {
        self.job_in_scope(scope, job_id).await?;
        self.inner.store.mark_job_deleted(job_id).await?;
        self.inner.triggers.remove(job_id).await?;
        for retired in &self.inner.retired_triggers {
            retired.remove(job_id).await?;
        }
        tracing::info!(%job_id, "job deleted");
        Ok(())
    }

    /// Moves the triggers of up to `limit` active jobs (in id order, after the job id
    /// `after`) to this deployment's kind (SPEC §16, `backupctl jobs rearm`): each job's
    /// trigger is armed (or re-armed) first, then removed from every retired kind
    /// ([`Ports::retired_triggers`](crate::Ports)), so a job is never without one; for a
    /// moment it has both, and the run key (job, scheduled instant) makes their firings one
    /// run. Idempotent: a job already moved is armed again and loses nothing.
    ///
    /// A page at a time, because the deployed API answers within API Gateway's 30 s and a
    /// job takes a few AWS calls: [`Rearmed::next`] is the `after` of the next page, `None`
    /// once every active job is done. The first job that fails stops the page with an
    /// error naming it; the jobs before it are moved, and it keeps its old trigger.
    pub async fn rearm_jobs(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Rearmed, EngineError> {
        if let Some(after) = after {
            check_job_id("nextToken", after)?;
        }
        if !(1..=MAX_REARM_PAGE).contains(&limit) {
            return Err(EngineError::invalid(
                "limit",
                format!("Re-arm between 1 and {MAX_REARM_PAGE} jobs per request; {limit} is not."),
            ));
        }
        let mut jobs = self.inner.store.list_active_jobs().await?;
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        let mut remaining = jobs
            .into_iter()
            .filter(|j| after.is_none_or(|after| j.id.as_str() > after))
            .peekable();
        let mut moved = Vec::new();
        while moved.len() < limit {
            let Some(job) = remaining.next() else { break };
            self.rearm(&job).await.map_err(|e| match e {
                EngineError::Trigger(e) => EngineError::Trigger(TriggerError {
                    message: format!(
                        "job {} could not be moved ({} moved before it in this request; it \
                         keeps its old trigger): {}",
                        job.id,
                        moved.len(),
                        e.message
                    ),
                    source: Some(Box::new(e)),
                }),
                other => other,
            })?;
            moved.push(job.id);
        }
        let next = match remaining.peek() {
            Some(_) => moved.last().cloned(),
            None => None,
        };
        tracing::info!(moved = moved.len(), more = next.is_some(), "jobs re-armed");
        Ok(Rearmed { jobs: moved, next })
    }

    /// Arms `job` with the current kind, then removes it from the retired ones.
    async fn rearm(&self, job: &JobRecord) -> Result<(), EngineError> {
        self.inner.triggers.register(job).await?;
        for retired in &self.inner.retired_triggers {
            retired.remove(&job.id).await?;
        }
        // A job deleted meanwhile may have lost its triggers before this armed it: its
        // delete marks it first, so reading it after arming sees the mark.
        let still_active = self
            .inner
            .store
            .get_job(&job.id)
            .await?
            .is_some_and(|j| j.status == JobStatus::Active);
        if !still_active {
            self.inner.triggers.remove(&job.id).await?;
        }
        Ok(())
    }

    /// Arms the trigger of every active job: what a local server does at start-up, since
    /// its triggers live in memory. Returns how many were armed.
    pub async fn resume_triggers(&self) -> Result<usize, EngineError> {
        let jobs = self.inner.store.list_active_jobs().await?;
        for job in &jobs {
            self.inner.triggers.register(job).await?;
        }
        Ok(jobs.len())
    }

    pub async fn list_history(
        &self,
        scope: &Scope,
        job_id: Option<&str>,
        query: &ListQuery,
    ) -> Result<Listed<api::HistoryItem>, EngineError> {
        if let Some(job_id) = job_id {
            check_job_id("jobId", job_id)?;
        }
        let page = query.request(Positions::InstantThenOrder)?;
        let items = self.inner.store.list_history(scope, job_id, &page).await?;
        Ok(Listed::from_page(items))
    }
}
