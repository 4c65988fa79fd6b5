//! The [`Engine`]: every use case of SPEC §4–§7 except runs (in [`crate::run`]), over the
//! ports of [`crate::ports`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backup_core::api::{
    self, ClusterLockInfo, ClusterTarget, CreateBackupRequest, CreateJobRequest, JobStatus,
    LockClusterRequest, RegisterClusterRequest,
};
use backup_core::job::{check_cluster_id, validate_job};
use backup_core::retention::BackupStatus;
use chrono::{DateTime, DurationRound, Utc};

use crate::error::{EngineError, Problems};
use crate::ids::is_valid_id;
use crate::model::{
    Acquisition, BackupEntry, BackupFilter, BackupHandle, ClusterRecord, JobRecord, LockHolder,
    Scope, OPERATION_MANUAL, OPERATION_SCHEDULED,
};
use crate::ports::{
    BackupProvider, BackupWrites, Clock, ClusterLock, IdGenerator, Store, TriggerScheduler,
};

/// Descriptions of clusters and backups are at most this many characters (SPEC §11).
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// A maintenance operation's name is at most this many characters.
pub const MAX_OPERATION_CHARS: usize = 64;
/// A directory cluster's path is at most this many characters.
pub const MAX_PATH_CHARS: usize = 4096;

/// Timings of the engine. The defaults suit the local mode; see the crate docs for why.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a run's or manual backup's lock lasts unless renewed.
    pub lease: Duration,
    /// How often a holder renews its lease while it works (a third of the lease by default,
    /// so two renewals can fail before the lease runs out).
    pub renew_every: Duration,
    /// How often a provider is asked whether a backup is available yet.
    pub poll_interval: Duration,
    /// How long a run waits for its backup to become available before calling it failed.
    pub max_backup_wait: Duration,
    /// An operator's maintenance lock lasts this long when the request names no TTL.
    pub default_maintenance_ttl: Duration,
    /// The longest maintenance lock an operator may take.
    pub max_maintenance_ttl: Duration,
    /// A backup whose provider reports no progress for this long is abandoned with
    /// `provider_stalled` and its lock released (SPEC §13, `serve --stall-seconds`).
    pub stall_after: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::with_lease(Duration::from_secs(60))
    }
}

impl EngineConfig {
    /// The default timings with another lease, renewed every third of it.
    pub fn with_lease(lease: Duration) -> Self {
        let lease = lease.max(Duration::from_millis(30));
        EngineConfig {
            lease,
            renew_every: lease / 3,
            poll_interval: Duration::from_secs(2),
            max_backup_wait: Duration::from_secs(6 * 3600),
            default_maintenance_ttl: Duration::from_secs(30 * 60),
            max_maintenance_ttl: Duration::from_secs(7 * 24 * 3600),
            stall_after: Duration::from_secs(60),
        }
    }
}

/// The adapters an engine runs on.
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub lock: Arc<dyn ClusterLock>,
    /// One per cluster `provider` kind this deployment can back up.
    pub providers: Vec<Arc<dyn BackupProvider>>,
    pub triggers: Arc<dyn TriggerScheduler>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// A run's grouped writes: the adapter's batched form, or
    /// [`OneByOne`](crate::writes::OneByOne) over `store` and `lock`.
    pub writes: Arc<dyn BackupWrites>,
}

/// The use cases. Cheap to clone: clones share the adapters.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) lock: Arc<dyn ClusterLock>,
    pub(crate) writes: Arc<dyn BackupWrites>,
    pub(crate) providers: HashMap<&'static str, Arc<dyn BackupProvider>>,
    pub(crate) triggers: Arc<dyn TriggerScheduler>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGenerator>,
    pub(crate) config: EngineConfig,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
    /// `true` once the server is stopping: running backups stop at their next chunk.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

/// What a delete came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deletion {
    /// This call deleted it.
    Deleted,
    /// It was already deleted, or another request is deleting it (and converges on it).
    ByAnother,
}

/// Counts a background task (a manual backup, a run started by "run now") until dropped, so
/// a server can wait for them before it exits.
pub struct InFlightGuard(Arc<Inner>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Engine {
    pub fn new(ports: Ports, config: EngineConfig) -> Engine {
        let providers = ports.providers.into_iter().map(|p| (p.kind(), p)).collect();
        Engine {
            inner: Arc::new(Inner {
                store: ports.store,
                lock: ports.lock,
                writes: ports.writes,
                providers,
                triggers: ports.triggers,
                clock: ports.clock,
                ids: ports.ids,
                config,
                in_flight: AtomicUsize::new(0),
                idle: tokio::sync::Notify::new(),
                stopping: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The clock's instant, to the millisecond: every store keeps milliseconds, so an
    /// instant read back equals the one written.
    pub fn now(&self) -> DateTime<Utc> {
        let now = self.inner.clock.now();
        now.duration_trunc(chrono::Duration::milliseconds(1))
            .unwrap_or(now)
    }

    /// Counts a background task until the guard drops ([`Engine::wait_idle`] waits for it).
    pub fn in_flight(&self) -> InFlightGuard {
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.inner.clone())
    }

    /// How many background backups are running.
    pub fn busy(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Stops every running backup at its next step (SPEC §13, `SIGTERM`): each is recorded
    /// failed with `interrupted`, its backup `defunct`, its lock released. Then
    /// [`Engine::wait_idle`] sees them end.
    pub fn stop(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Waits until no background backup runs, or `timeout` passes; `true` when idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.idle.notified();
                if self.busy() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    pub(crate) fn provider(&self, kind: &str) -> Option<Arc<dyn BackupProvider>> {
        self.inner.providers.get(kind).cloned()
    }

    pub(crate) fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.inner.config.lease).unwrap_or(chrono::Duration::MAX)
    }

    // ----- jobs -------------------------------------------------------------------------

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
                for (key, message) in job_problems.messages() {
                    problems.add(&key, message);
                }
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
                problems.add(
                    backup_core::job::keys::CLUSTER_ID,
                    format!(
                        "No cluster {cluster_id} is registered in this project; register it first \
                         (`backupctl clusters register --cluster-id {cluster_id} …`)."
                    ),
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

    pub async fn list_jobs(&self, scope: &Scope) -> Result<Vec<api::Job>, EngineError> {
        let now = self.now();
        let jobs = self.inner.store.list_jobs(scope).await?;
        Ok(jobs.iter().map(|j| j.to_api(now)).collect())
    }

    /// Marks the job deleted and disarms its trigger; its history and backups remain.
    /// Deleting a deleted job disarms the trigger again (so a failed attempt can be retried).
    pub async fn delete_job(&self, scope: &Scope, job_id: &str) -> Result<(), EngineError> {
        self.job_in_scope(scope, job_id).await?;
        self.inner.store.mark_job_deleted(job_id).await?;
        self.inner.triggers.remove(job_id).await?;
        tracing::info!(%job_id, "job deleted");
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

    // ----- history ----------------------------------------------------------------------

    pub async fn list_history(
        &self,
        scope: &Scope,
        job_id: Option<&str>,
    ) -> Result<Vec<api::HistoryItem>, EngineError> {
        if let Some(job_id) = job_id {
            check_job_id("jobId", job_id)?;
        }
        Ok(self.inner.store.list_history(scope, job_id).await?)
    }

    // ----- clusters ---------------------------------------------------------------------

    pub async fn register_cluster(
        &self,
        scope: &Scope,
        request: &RegisterClusterRequest,
    ) -> Result<api::Cluster, EngineError> {
        let mut cluster = validate_cluster(scope, request, self.now())?;
        if let Some(provider) = self.provider(cluster.provider()) {
            cluster.target = provider
                .check_target(&cluster.target)
                .await
                .map_err(EngineError::TargetRefused)?;
        }
        if !self.inner.store.insert_cluster(&cluster).await? {
            return Err(EngineError::ClusterExists(cluster.id));
        }
        tracing::info!(cluster_id = %cluster.id, provider = cluster.provider(), "cluster registered");
        Ok(cluster.to_api(None, None))
    }

    pub(crate) async fn cluster_of_scope(
        &self,
        scope: &Scope,
        cluster_id: &str,
        field: &str,
    ) -> Result<ClusterRecord, EngineError> {
        check_cluster_field(field, cluster_id)?;
        match self.inner.store.get_cluster(cluster_id).await? {
            Some(c) if c.scope == *scope => Ok(c),
            _ => Err(EngineError::ClusterNotFound(cluster_id.to_owned())),
        }
    }

    pub async fn get_cluster(
        &self,
        scope: &Scope,
        cluster_id: &str,
    ) -> Result<api::Cluster, EngineError> {
        let cluster = self
            .cluster_of_scope(scope, cluster_id, "clusterId")
            .await?;
        let lock = self.inner.lock.current(&cluster.id, self.now()).await?;
        let problem = self.target_problem(&cluster).await;
        Ok(cluster.to_api(lock, problem))
    }

    /// Why the cluster's stored target breaks its provider's policy now, if it does.
    async fn target_problem(&self, cluster: &ClusterRecord) -> Option<String> {
        let provider = self.provider(cluster.provider())?;
        provider
            .recheck_target(&cluster.target)
            .await
            .err()
            .map(|p| p.message)
    }

    pub async fn list_clusters(&self, scope: &Scope) -> Result<Vec<api::Cluster>, EngineError> {
        let now = self.now();
        let mut out = Vec::new();
        for cluster in self.inner.store.list_clusters(scope).await? {
            let lock = self.inner.lock.current(&cluster.id, now).await?;
            let problem = self.target_problem(&cluster).await;
            out.push(cluster.to_api(lock, problem));
        }
        Ok(out)
    }

    /// Forgets a cluster. Refused while an active job backs it up or its lock is held, so
    /// nothing scheduled silently starts failing; its backups remain.
    pub async fn delete_cluster(&self, scope: &Scope, cluster_id: &str) -> Result<(), EngineError> {
        let cluster = self
            .cluster_of_scope(scope, cluster_id, "clusterId")
            .await?;
        let job_ids: Vec<String> = self
            .inner
            .store
            .list_active_jobs()
            .await?
            .into_iter()
            .filter(|j| j.cluster_id == cluster.id)
            .map(|j| j.id)
            .collect();
        if !job_ids.is_empty() {
            return Err(EngineError::ClusterInUse {
                cluster_id: cluster.id,
                job_ids,
            });
        }
        if let Some(holder) = self.inner.lock.current(&cluster.id, self.now()).await? {
            return Err(EngineError::ClusterLocked {
                cluster_id: cluster.id,
                holder: Box::new(holder),
            });
        }
        self.inner.store.delete_cluster(&cluster.id).await?;
        tracing::info!(cluster_id = %cluster.id, "cluster deleted");
        Ok(())
    }

    // ----- operator locks ---------------------------------------------------------------

    /// Takes an operator's maintenance lock (SPEC §5), failing at once when it is held.
    pub async fn lock_cluster(
        &self,
        scope: &Scope,
        cluster_id: &str,
        request: &LockClusterRequest,
    ) -> Result<ClusterLockInfo, EngineError> {
        let mut problems = Problems::default();
        problems.check("operation", check_operation(&request.operation));
        let max = self.inner.config.max_maintenance_ttl.as_secs();
        let ttl = match request.ttl_seconds {
            None => Some(self.inner.config.default_maintenance_ttl),
            Some(s) if (1..=max).contains(&s) => Some(Duration::from_secs(s)),
            Some(s) => {
                problems.add(
                    "ttlSeconds",
                    format!(
                        "A maintenance lock lasts 1 to {max} seconds; {s} is not in that range."
                    ),
                );
                None
            }
        };
        problems.into_result()?;
        let ttl = ttl.unwrap_or(self.inner.config.default_maintenance_ttl);
        let cluster = self
            .cluster_of_scope(scope, cluster_id, "clusterId")
            .await?;
        let holder = LockHolder {
            operation: request.operation.clone(),
            job_id: None,
            run_id: None,
        };
        let lease = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        match self
            .inner
            .lock
            .try_acquire(&cluster.id, &holder, self.now(), lease)
            .await?
        {
            Acquisition::Acquired(info) => {
                tracing::info!(cluster_id = %cluster.id, operation = %info.operation, "maintenance lock taken");
                Ok(info)
            }
            Acquisition::Held(holder) => Err(EngineError::ClusterLocked {
                cluster_id: cluster.id,
                holder: Box::new(holder),
            }),
        }
    }

    /// Releases an operator's maintenance lock. A free cluster is fine (nothing to do); a
    /// lock held by a backup is refused, since that backup releases it itself.
    pub async fn unlock_cluster(&self, scope: &Scope, cluster_id: &str) -> Result<(), EngineError> {
        let cluster = self
            .cluster_of_scope(scope, cluster_id, "clusterId")
            .await?;
        let Some(holder) = self.inner.lock.current(&cluster.id, self.now()).await? else {
            return Ok(());
        };
        if holder.run_id.is_some() || holder.job_id.is_some() {
            return Err(EngineError::LockNotMaintenance {
                cluster_id: cluster.id,
                holder: Box::new(holder),
            });
        }
        self.inner
            .lock
            .release(&cluster.id, holder.fencing_token)
            .await?;
        tracing::info!(cluster_id = %cluster.id, "maintenance lock released");
        Ok(())
    }

    // ----- backups ----------------------------------------------------------------------

    pub async fn list_backups(
        &self,
        scope: &Scope,
        filter: &BackupFilter,
    ) -> Result<Vec<api::Backup>, EngineError> {
        let mut problems = Problems::default();
        if let Some(job_id) = &filter.job_id {
            problems.check("jobId", job_id_message(job_id));
        }
        if let Some(cluster_id) = &filter.cluster_id {
            problems.check("clusterId", cluster_id_message(cluster_id));
        }
        problems.into_result()?;
        let backups = self.inner.store.list_backups(scope, filter).await?;
        Ok(backups.iter().map(BackupEntry::to_api).collect())
    }

    pub(crate) async fn backup_in_scope(
        &self,
        scope: &Scope,
        backup_id: &str,
    ) -> Result<BackupEntry, EngineError> {
        check_job_id("backupId", backup_id)?;
        match self.inner.store.get_backup(backup_id).await? {
            Some(b) if b.scope == *scope => Ok(b),
            _ => Err(EngineError::BackupNotFound(backup_id.to_owned())),
        }
    }

    pub async fn get_backup(
        &self,
        scope: &Scope,
        backup_id: &str,
    ) -> Result<api::Backup, EngineError> {
        Ok(self.backup_in_scope(scope, backup_id).await?.to_api())
    }

    /// Deletes a backup through its provider, then marks the record `deleted` (the record
    /// stays). Idempotent (SPEC §13): deleting a backup that is `deleting` or `deleted`
    /// succeeds and converges; one still `creating` is refused.
    pub async fn delete_backup(&self, scope: &Scope, backup_id: &str) -> Result<(), EngineError> {
        let backup = self.backup_in_scope(scope, backup_id).await?;
        self.delete_backup_entry(&backup).await.map(|_| ())
    }

    /// Provider first, record second (SPEC §4). The record passes through `deleting` so a
    /// concurrent prune or delete does not delete it twice; a failed delete puts the status
    /// back, leaving the backup as it was. A backup already `deleting` (another request, or
    /// a process that stopped half-way) is deleted again: the provider's delete is
    /// idempotent, so both converge on `deleted`.
    pub(crate) async fn delete_backup_entry(
        &self,
        backup: &BackupEntry,
    ) -> Result<Deletion, EngineError> {
        let store = &self.inner.store;
        let from = match backup.status {
            BackupStatus::Deleted => return Ok(Deletion::ByAnother),
            BackupStatus::Creating => {
                return Err(EngineError::BackupBusy {
                    backup_id: backup.id.clone(),
                    status: backup.status.to_string(),
                })
            }
            BackupStatus::Deleting => BackupStatus::Deleting,
            status @ (BackupStatus::Available | BackupStatus::Defunct) => {
                if !store
                    .update_backup_status(&backup.id, status, BackupStatus::Deleting)
                    .await?
                {
                    // Someone else changed it meanwhile (a concurrent delete): look again.
                    let now = store.get_backup(&backup.id).await?;
                    return match now.map(|b| b.status) {
                        Some(BackupStatus::Deleted | BackupStatus::Deleting) | None => {
                            Ok(Deletion::ByAnother)
                        }
                        Some(status) => Err(EngineError::BackupBusy {
                            backup_id: backup.id.clone(),
                            status: status.to_string(),
                        }),
                    };
                }
                status
            }
        };
        if let Some(location) = &backup.location {
            let result = match self.provider(&backup.provider) {
                Some(provider) => {
                    provider
                        .delete(&BackupHandle::new(backup.id.clone(), location.clone()))
                        .await
                }
                None => Err(crate::error::ProviderError::new(format!(
                    "this server has no {} backup provider to delete it with",
                    backup.provider
                ))),
            };
            if let Err(error) = result {
                if from != BackupStatus::Deleting {
                    store
                        .update_backup_status(&backup.id, BackupStatus::Deleting, from)
                        .await?;
                }
                return Err(error.into());
            }
        }
        if store
            .update_backup_status(&backup.id, BackupStatus::Deleting, BackupStatus::Deleted)
            .await?
        {
            tracing::info!(backup_id = %backup.id, "backup deleted");
            Ok(Deletion::Deleted)
        } else {
            // A concurrent delete of a `deleting` backup finished first.
            Ok(Deletion::ByAnother)
        }
    }

    /// Starts a manual backup (SPEC §7): checks the request, takes the cluster's lock at once
    /// (or fails with `cluster_locked`), records the backup as `creating` and returns its id;
    /// the copy continues in the background and releases the lock when done. Manual backups
    /// are never pruned.
    pub async fn create_manual_backup(
        &self,
        scope: &Scope,
        request: &CreateBackupRequest,
    ) -> Result<String, EngineError> {
        let mut problems = Problems::default();
        let template = problems.check(
            "description",
            backup_core::template::Template::parse(&request.description).map_err(|e| {
                e.iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        );
        problems.check(
            "sourceClusterId",
            cluster_id_message(&request.source_cluster_id),
        );
        problems.into_result()?;
        let Some(template) = template else {
            return Err(EngineError::invalid(
                "description",
                "The template is invalid.",
            ));
        };
        let cluster = self
            .cluster_of_scope(scope, &request.source_cluster_id, "sourceClusterId")
            .await?;
        self.start_manual_backup(scope, cluster, template).await
    }

    // ----- start-up recovery ------------------------------------------------------------

    /// After a restart of a single-process deployment (the local server), marks the runs
    /// the previous process left `running` as failed and its `creating` backups as defunct:
    /// nobody is working on them any more. Their locks expire with their leases. Not for
    /// deployments where another process may still be working on them.
    pub async fn recover_interrupted(&self) -> Result<(usize, usize), EngineError> {
        let store = &self.inner.store;
        let now = self.now();
        let mut runs = 0;
        for entry in store.list_running().await? {
            let mut item = entry.item;
            item.status = api::RunStatus::Failed;
            item.end_time = Some(now);
            item.error_code = Some(api::RunFailure::Interrupted);
            item.details = "The server stopped while this run was in progress, so it did not \
                            finish; its backup, if any, is marked defunct and the next run \
                            cleans it up."
                .to_owned();
            store.update_history(&item).await?;
            runs += 1;
        }
        let mut backups = 0;
        for backup in store.list_backups_in_status(BackupStatus::Creating).await? {
            if store
                .update_backup_status(&backup.id, BackupStatus::Creating, BackupStatus::Defunct)
                .await?
            {
                store
                    .set_backup_details(
                        &backup.id,
                        Some(api::RunFailure::Interrupted),
                        Some(
                            "The server stopped while this backup was being made, so it is \
                             incomplete and marked defunct.",
                        ),
                    )
                    .await?;
                backups += 1;
            }
        }
        // A delete the last process started and did not finish (SPEC §13): finish it.
        for backup in store.list_backups_in_status(BackupStatus::Deleting).await? {
            match self.delete_backup_entry(&backup).await {
                Ok(_) => tracing::info!(backup_id = %backup.id, "finished an interrupted delete"),
                Err(error) => {
                    tracing::warn!(backup_id = %backup.id, %error, "could not finish an interrupted delete; it stays `deleting`")
                }
            }
        }
        if runs + backups > 0 {
            tracing::warn!(
                runs,
                backups,
                "marked work interrupted by the last shutdown as failed"
            );
        }
        Ok((runs, backups))
    }
}

fn job_id_message(id: &str) -> Result<(), String> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an id: ids are 20 characters of 0-9 and a-v, such as c196ogto0aeqohe3ommq.",
            shorten(id)
        ))
    }
}

/// Engine-made ids (jobs, backups, runs) have one shape; anything else is invalid input.
pub(crate) fn check_job_id(field: &str, id: &str) -> Result<(), EngineError> {
    job_id_message(id).map_err(|m| EngineError::invalid(field, m))
}

fn cluster_id_message(id: &str) -> Result<(), String> {
    check_cluster_id(Some(id)).map(|_| ()).map_err(|e| {
        e.iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn check_cluster_field(field: &str, id: &str) -> Result<(), EngineError> {
    cluster_id_message(id).map_err(|m| EngineError::invalid(field, m))
}

/// At most 40 characters of user input, for quoting it back in a message.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn check_description(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if text.trim().is_empty() {
        Err("Give a description, such as \"Orders database\".".to_owned())
    } else if n > MAX_DESCRIPTION_CHARS {
        Err(format!(
            "A description is at most {MAX_DESCRIPTION_CHARS} characters; this one has {n}."
        ))
    } else {
        Ok(())
    }
}

fn check_operation(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if n == 0 || n > MAX_OPERATION_CHARS {
        return Err(format!(
            "Name the operation in 1 to {MAX_OPERATION_CHARS} characters, such as expand-disk."
        ));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(
            "An operation name may contain only ASCII letters, digits, -, _ and ., such as expand-disk."
                .to_owned(),
        );
    }
    if text == OPERATION_SCHEDULED || text == OPERATION_MANUAL {
        return Err(format!(
            "`{text}` is the name backups use for their own locks; name the maintenance, such as expand-disk."
        ));
    }
    Ok(())
}

fn validate_cluster(
    scope: &Scope,
    request: &RegisterClusterRequest,
    now: DateTime<Utc>,
) -> Result<ClusterRecord, EngineError> {
    let mut problems = Problems::default();
    problems.check("id", cluster_id_message(&request.id));
    problems.check("description", check_description(&request.description));
    let region = match &request.target {
        ClusterTarget::Directory { path } => {
            let n = path.chars().count();
            if path.trim().is_empty() {
                problems.add(
                    "path",
                    "Give the cluster's data directory, such as /var/lib/db.",
                );
            } else if n > MAX_PATH_CHARS {
                problems.add(
                    "path",
                    format!("A path is at most {MAX_PATH_CHARS} characters."),
                );
            } else if path.contains('\0') || !Path::new(path).is_absolute() {
                problems.add(
                    "path",
                    format!(
                        "Give the data directory as an absolute path (starting with /); `{}` is not.",
                        shorten(path)
                    ),
                );
            }
            match request.region.as_deref() {
                None | Some("local") => "local".to_owned(),
                Some(_) => {
                    problems.add(
                        "region",
                        "A directory cluster's region is `local`; leave it out.",
                    );
                    String::new()
                }
            }
        }
        ClusterTarget::AwsEbs {
            volume_ids,
            instance_tag,
        } => {
            let region = request.region.clone().unwrap_or_default();
            let region_ok = (1..=32).contains(&region.len())
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !region_ok {
                problems.add(
                    "region",
                    "Give the AWS region of the volumes, such as eu-west-1.",
                );
            }
            match (volume_ids.is_empty(), instance_tag) {
                (true, None) | (false, Some(_)) => problems.add(
                    "volumeIds",
                    "Name the volumes either by volume ids or by one instance tag KEY=VALUE, not both.",
                ),
                (false, None) => {
                    if volume_ids.len() > 64 {
                        problems.add("volumeIds", "Name at most 64 volumes.");
                    }
                    for v in volume_ids {
                        let hex = v.strip_prefix("vol-").unwrap_or("");
                        if !(8..=17).contains(&hex.len())
                            || !hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                        {
                            problems.add(
                                "volumeIds",
                                format!("`{}` is not an EBS volume id such as vol-0abc123def4567890.", shorten(v)),
                            );
                        }
                    }
                }
                (true, Some(tag)) => {
                    let ok = tag.chars().count() <= 256
                        && tag.split_once('=').is_some_and(|(k, _)| !k.trim().is_empty());
                    if !ok {
                        problems.add(
                            "instanceTag",
                            "Give the instance tag as KEY=VALUE (at most 256 characters), such as cluster=orders.",
                        );
                    }
                }
            }
            region
        }
    };
    problems.into_result()?;
    Ok(ClusterRecord {
        id: request.id.clone(),
        scope: scope.clone(),
        description: request.description.clone(),
        region,
        target: request.target.clone(),
        created: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("default", "default").unwrap()
    }

    fn directory(id: &str, path: &str) -> RegisterClusterRequest {
        RegisterClusterRequest {
            id: id.to_owned(),
            description: "Orders".to_owned(),
            region: None,
            target: ClusterTarget::Directory {
                path: path.to_owned(),
            },
        }
    }

    #[test]
    fn a_directory_cluster_needs_an_absolute_path_and_gets_region_local() {
        // GIVEN a valid registration WHEN validated THEN the region is local
        let ok = validate_cluster(&scope(), &directory("c1", "/var/lib/db"), Utc::now()).unwrap();
        assert_eq!(ok.region, "local");
        // GIVEN a relative path and a bad id WHEN validated THEN both fields are reported
        let err = validate_cluster(&scope(), &directory("a b", "data"), Utc::now()).unwrap_err();
        let fields = err.fields();
        assert!(fields.contains_key("id"), "{fields:?}");
        assert!(fields["path"].contains("absolute"), "{fields:?}");
    }

    #[test]
    fn an_ebs_cluster_names_volumes_or_a_tag_not_both() {
        let mut req = RegisterClusterRequest {
            id: "c2".into(),
            description: "EBS".into(),
            region: Some("eu-west-1".into()),
            target: ClusterTarget::AwsEbs {
                volume_ids: vec!["vol-0abc123def4567890".into()],
                instance_tag: None,
            },
        };
        assert!(validate_cluster(&scope(), &req, Utc::now()).is_ok());
        req.target = ClusterTarget::AwsEbs {
            volume_ids: vec!["vol-0abc123def4567890".into()],
            instance_tag: Some("a=b".into()),
        };
        let err = validate_cluster(&scope(), &req, Utc::now()).unwrap_err();
        assert!(err.fields().contains_key("volumeIds"));
        req.target = ClusterTarget::AwsEbs {
            volume_ids: vec![],
            instance_tag: Some("cluster=orders".into()),
        };
        req.region = None;
        let err = validate_cluster(&scope(), &req, Utc::now()).unwrap_err();
        assert_eq!(err.fields().keys().collect::<Vec<_>>(), ["region"]);
    }

    #[test]
    fn operations_reserved_for_backups_cannot_be_taken_by_hand() {
        assert!(check_operation("expand-disk").is_ok());
        for bad in [
            "",
            "scheduled-backup",
            "manual-backup",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(check_operation(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_ids_are_checked() {
        assert!(Scope::new("default", "default").is_ok());
        let err = Scope::new("", "a/b").unwrap_err();
        assert_eq!(err.fields().len(), 2);
    }
}
