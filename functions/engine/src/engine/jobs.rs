//! Jobs (SPEC §7): create (validated, its trigger armed, all or nothing), read, list,
//! update in place (its trigger re-armed all or nothing, SPEC §17), delete (its history and
//! backups remain), re-arm every trigger at start-up, move every
//! job's trigger to the deployment's kind (SPEC §16 `jobs rearm`); and the runs' history,
//! which is listed per job.

use backup_core::api::{self, CreateJobRequest, JobStatus, ScheduledBackupData, UpdateJobRequest};
use backup_core::job::{check_cluster_id, validate_job, validate_update};

use super::{check_job_id, Engine};
use crate::error::{EngineError, Problems, TriggerError};
use crate::model::{JobRecord, Scope};
use crate::page::{ListQuery, Listed, Positions};

/// The most jobs one [`Engine::rearm_jobs`] call moves.
pub const MAX_REARM_PAGE: usize = 100;
/// How many jobs a `jobs rearm` request moves unless it says: a few AWS calls each, well
/// within API Gateway's 30 s.
pub const DEFAULT_REARM_PAGE: usize = 20;

/// What [`Engine::create_job_with_id`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum NamedCreation {
    /// The job was created, its trigger armed.
    Created(api::Job),
    /// An active job of this scope had the id already: it is answered unchanged.
    Existing(api::Job),
    /// The id is a deleted job's or another scope's: nothing was done.
    Taken,
}

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
        let mut job = self.new_job(scope, request).await?;
        // A collision of 64 random bits is not expected; retrying keeps it harmless anyway.
        let mut inserted = false;
        for _ in 0..3 {
            job.id = self.inner.ids.new_id();
            if self.inner.store.insert_job(&job).await? {
                self.inner.job_lists.invalidate();
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
        self.arm_new(&job).await?;
        Ok(job.to_api(job.created))
    }

    /// [`create_job`](Self::create_job) with an id the caller chose, for a caller that must
    /// be idempotent (a CloudFormation custom resource derives the id from its stack and
    /// logical id, so a retried creation finds the job the first attempt made). When `job_id`
    /// is already an active job of this scope, that job is answered as it is
    /// ([`NamedCreation::Existing`]) and its trigger armed again, since the first attempt may
    /// have stopped between writing the record and arming it; when the id is a deleted job
    /// or one of another scope, nothing is done ([`NamedCreation::Taken`]).
    pub async fn create_job_with_id(
        &self,
        scope: &Scope,
        request: &CreateJobRequest,
        job_id: &str,
    ) -> Result<NamedCreation, EngineError> {
        check_job_id("id", job_id)?;
        if let Some(existing) = self.existing_named(scope, job_id).await? {
            return Ok(existing);
        }
        let mut job = self.new_job(scope, request).await?;
        job.id = job_id.to_owned();
        let inserted = self.inner.store.insert_job(&job).await?;
        self.inner.job_lists.invalidate();
        if !inserted {
            // Another attempt was first: answer what it made.
            return Ok(self
                .existing_named(scope, job_id)
                .await?
                .unwrap_or(NamedCreation::Taken));
        }
        self.arm_new(&job).await?;
        Ok(NamedCreation::Created(job.to_api(job.created)))
    }

    async fn existing_named(
        &self,
        scope: &Scope,
        job_id: &str,
    ) -> Result<Option<NamedCreation>, EngineError> {
        match self.inner.store.get_job(job_id).await? {
            None => Ok(None),
            Some(job) if job.scope == *scope && job.status == JobStatus::Active => {
                self.inner.triggers.register(&job).await?;
                Ok(Some(NamedCreation::Existing(job.to_api(self.now()))))
            }
            Some(_) => Ok(Some(NamedCreation::Taken)),
        }
    }

    /// A new job's record (its id left empty), checked with the core; the cluster must be
    /// registered in this project.
    async fn new_job(
        &self,
        scope: &Scope,
        request: &CreateJobRequest,
    ) -> Result<JobRecord, EngineError> {
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
        Ok(JobRecord {
            id: String::new(),
            scope: scope.clone(),
            description: valid.description,
            schedule: valid.schedule.as_str().to_owned(),
            status: JobStatus::Active,
            cluster_id: valid.cluster_id,
            template: valid.template.as_str().to_owned(),
            max_backup_count: valid.max_backup_count.get(),
            created: self.now(),
        })
    }

    /// Arms a just-inserted job's trigger; when that fails the record is removed again.
    async fn arm_new(&self, job: &JobRecord) -> Result<(), EngineError> {
        if let Err(error) = self.inner.triggers.register(job).await {
            let removed = self.inner.store.remove_job(&job.id).await;
            // After the write, as every job write: a list that read the store before it
            // then keeps an answer of an older generation, which no lookup uses.
            self.inner.job_lists.invalidate();
            if let Err(undo) = removed {
                tracing::error!(job_id = %job.id, %undo, "could not remove a job whose trigger failed");
            }
            return Err(error.into());
        }
        tracing::info!(job_id = %job.id, schedule = %job.schedule, cluster_id = %job.cluster_id, "job created");
        Ok(())
    }

    /// Changes a job in place (SPEC §17): any of its description, schedule, template and
    /// maximum backup count, checked with the core exactly as a new job is
    /// ([`validate_update`]: every problem at once; its cluster cannot change). Its id,
    /// backups and history stay. A new schedule is armed before the job record changes,
    /// all or nothing ([`TriggerScheduler::rearm`](crate::ports::TriggerScheduler::rearm)):
    /// when arming fails the job keeps its old schedule and trigger and the error is
    /// returned; when the record cannot be written the old trigger is armed again. A
    /// deleted job cannot change (`JobDeleted`, 409, as "run now" answers for it).
    pub async fn update_job(
        &self,
        scope: &Scope,
        job_id: &str,
        patch: &UpdateJobRequest,
    ) -> Result<api::Job, EngineError> {
        let current = self.job_in_scope(scope, job_id).await?;
        if current.status == JobStatus::Deleted {
            return Err(EngineError::JobDeleted(current.id));
        }
        let valid =
            validate_update(&as_request(&current), patch).map_err(EngineError::from_problems)?;
        let updated = JobRecord {
            description: valid.description,
            schedule: valid.schedule.as_str().to_owned(),
            template: valid.template.as_str().to_owned(),
            max_backup_count: valid.max_backup_count.get(),
            ..current.clone()
        };
        let now = self.now();
        if updated == current {
            return Ok(current.to_api(now));
        }
        let rearm = updated.schedule != current.schedule;
        if rearm {
            self.inner.triggers.rearm(&current, &updated).await?;
        }
        let written = self.inner.store.update_job(&updated).await;
        self.inner.job_lists.invalidate();
        match written {
            Ok(true) => {}
            Ok(false) => {
                // Deleted since it was read: its delete may have disarmed it before the
                // re-arm above, so disarm it again.
                if rearm {
                    self.inner.triggers.remove(job_id).await?;
                }
                return Err(EngineError::JobDeleted(current.id));
            }
            Err(error) => {
                if rearm {
                    if let Err(undo) = self.inner.triggers.rearm(&updated, &current).await {
                        tracing::error!(%job_id, %undo, "could not arm a job's old schedule again after its record failed to change");
                    }
                }
                return Err(error.into());
            }
        }
        if rearm {
            // The job is armed with this deployment's kind now; one it had of a retired
            // kind would go on firing on the old schedule.
            for retired in &self.inner.retired_triggers {
                retired.remove(job_id).await?;
            }
        }
        tracing::info!(%job_id, schedule = %updated.schedule, rearmed = rearm, "job updated");
        Ok(updated.to_api(now))
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

    /// A page of the scope's jobs, newest first (SPEC §16: the newest 1,000 by default).
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

    /// [`list_jobs`](Self::list_jobs) as the API's JSON (`JobList`), kept between requests
    /// when [`EngineConfig::cache_job_lists`](crate::EngineConfig::cache_job_lists) says
    /// this engine is the only writer of its jobs ([`crate::job_list_cache`]).
    pub async fn list_jobs_json(
        &self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<std::sync::Arc<[u8]>, EngineError> {
        let now = self.now();
        let ticket = if self.inner.config.cache_job_lists {
            match self.inner.job_lists.lookup(
                &scope.org,
                &scope.project,
                query.limit,
                query.next_token.as_deref(),
                now,
            ) {
                Ok(body) => return Ok(body),
                Err(ticket) => Some(ticket),
            }
        } else {
            None
        };
        let page = self.list_jobs(scope, query).await?;
        let until = page
            .items
            .iter()
            .filter_map(|job| job.next_runs.first())
            .filter_map(|run| chrono::DateTime::parse_from_rfc3339(run).ok())
            .map(|run| run.with_timezone(&chrono::Utc))
            .min();
        let list = api::JobList {
            jobs: page.items,
            next_token: page.next_token,
        };
        let body: std::sync::Arc<[u8]> = serde_json::to_vec(&list)
            .map_err(|e| {
                crate::error::StoreError::Corrupt(format!("a job list did not serialise: {e}"))
            })?
            .into();
        if let Some(ticket) = ticket {
            self.inner.job_lists.keep(ticket, now, until, body.clone());
        }
        Ok(body)
    }

    /// Marks the job deleted and disarms its trigger; its history and backups remain.
    /// Deleting a deleted job disarms the trigger again (so a failed attempt can be retried).
    /// A trigger of a retired kind goes too: a job deleted before `jobs rearm` moved it
    /// would otherwise keep firing, and record a failed run each time.
    pub async fn delete_job(&self, scope: &Scope, job_id: &str) -> Result<(), EngineError> {
        self.job_in_scope(scope, job_id).await?;
        let marked = self.inner.store.mark_job_deleted(job_id).await;
        self.inner.job_lists.invalidate();
        marked?;
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
    ///
    /// Through the kind's `rearm`, not `register`: a job may already have the current kind's
    /// trigger (created after the switch), and a failed `register` of EventBridge rules
    /// removes every rule of the job (a new job leaves nothing behind), which here would
    /// leave a working job with no trigger at all; `rearm` keeps what it had.
    async fn rearm(&self, job: &JobRecord) -> Result<(), EngineError> {
        self.inner.triggers.rearm(job, job).await?;
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

/// A stored job as the create body that would make it, for [`validate_update`].
fn as_request(job: &JobRecord) -> CreateJobRequest {
    CreateJobRequest {
        description: Some(job.description.clone()),
        schedule: Some(job.schedule.clone()),
        job_type: Some(api::SCHEDULED_BACKUP.to_owned()),
        data: Some(ScheduledBackupData {
            cluster_id: Some(job.cluster_id.clone()),
            description: Some(job.template.clone()),
            max_backup_count: Some(i64::from(job.max_backup_count)),
        }),
    }
}
