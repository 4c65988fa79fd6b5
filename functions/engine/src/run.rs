//! Runs (SPEC §5, §6) and manual backups: lock, back up, wait, prune, record, release.
//!
//! A run is identified by (job id, scheduled instant). Its first step is the conditional
//! insert of that run record together with its `running` history item, so a second delivery
//! of the same firing finds the first run and returns its history without doing anything.
//! From then on every outcome, including every failure, ends in the history item, and the
//! cluster's lock, once taken, is released on every path.

use std::future::Future;
use std::sync::Arc;

use backup_core::api::{ClusterLockInfo, HistoryItem, JobStatus, RunFailure, RunStatus, Trigger};
use backup_core::civil::format_rfc3339;
use backup_core::retention::{plan_prune, BackupStatus, MaxBackupCount};
use backup_core::template::{RenderContext, Template};
use chrono::{DateTime, Utc};

use crate::engine::Deletion;
use crate::engine::{check_job_id, Engine};
use crate::error::{EngineError, ProviderError, StoreError};
use crate::model::{
    Applied, BackupDraft, BackupEnd, BackupEntry, BackupHandle, BackupRequest, ClusterRecord,
    Creation, Finish, HistoryEntry, JobRecord, LockHolder, Progress, ProviderStatus, Release,
    RunStart, Scope, StartBackup, Started, OPERATION_MANUAL, OPERATION_SCHEDULED,
};
use crate::ports::BackupProvider;
use crate::text;

/// What one delivery of a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The run's history item as it stands: final when the run completed in this call,
    /// `running` when it continues in the background ("run now").
    pub history: HistoryItem,
    /// `true` when this delivery found the run already recorded and did nothing.
    pub duplicate: bool,
}

/// How far [`Engine::begin_run`] got.
enum Begun {
    /// Nothing more to do: a duplicate delivery, or a run that failed before making a backup.
    Done(RunOutcome),
    /// The run holds the cluster's lock; [`Engine::complete_run`] makes the backup.
    Locked(Box<LockedRun>),
}

struct LockedRun {
    entry: HistoryEntry,
    job: JobRecord,
    cluster: ClusterRecord,
    provider: Arc<dyn BackupProvider>,
    lock: ClusterLockInfo,
    /// The backup `start` recorded as `creating`.
    backup: BackupEntry,
}

/// What making a backup came to, before anything about it is written.
struct Made {
    result: Result<(), BackupFailure>,
    /// Where the provider put it (its planned location when `create` failed).
    location: String,
    /// What the provider says an operator must know of a backup that succeeded.
    notes: Vec<String>,
}

/// What step 1 of a run found.
enum Recorded {
    /// The run is new and recorded `running`.
    New(HistoryEntry),
    /// This firing was delivered before: its history as it stands.
    Duplicate(HistoryItem),
}

/// Why step 2 of a run did not take the cluster.
enum NotStarted {
    /// A domain reason, recorded as the run's failure.
    Failed(RunEnd),
    /// The store failed: recorded as `store_error` and answered as an error.
    Store(StoreError),
}

impl NotStarted {
    fn failed(failure: RunFailure, details: String) -> Self {
        NotStarted::Failed(RunEnd::failed(failure, details))
    }
}

impl From<StoreError> for NotStarted {
    fn from(error: StoreError) -> Self {
        NotStarted::Store(error)
    }
}

/// How a run ended: what its final history item says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunEnd {
    /// The backup became available (and the job pruned what its rule selects).
    Succeeded {
        backup_id: String,
        pruned: Vec<String>,
        details: String,
    },
    /// The run failed; `backup_id` names the backup it made, if it got that far.
    Failed {
        failure: RunFailure,
        details: String,
        backup_id: Option<String>,
    },
}

impl RunEnd {
    /// A failure before any backup was made.
    fn failed(failure: RunFailure, details: String) -> Self {
        RunEnd::Failed {
            failure,
            details,
            backup_id: None,
        }
    }

    /// The final history item: `item` (the `running` one) ended at `now` this way.
    fn apply(self, item: &HistoryItem, now: DateTime<Utc>) -> HistoryItem {
        let mut item = item.clone();
        item.end_time = Some(now);
        let backup_id = match self {
            RunEnd::Succeeded {
                backup_id,
                pruned,
                details,
            } => {
                item.status = RunStatus::Succeeded;
                item.error_code = None;
                item.details = details;
                item.pruned_backup_ids = pruned;
                Some(backup_id)
            }
            RunEnd::Failed {
                failure,
                details,
                backup_id,
            } => {
                item.status = RunStatus::Failed;
                item.error_code = Some(failure);
                item.details = details;
                item.pruned_backup_ids = Vec::new();
                backup_id
            }
        };
        if let Some(backup_id) = backup_id {
            item.linked_resource = backup_id;
        }
        item
    }
}

/// Why making a backup failed, for the history's `errorCode` and details.
enum BackupFailure {
    Provider(ProviderError),
    Stopped(Stop),
}

/// A failure's stable code and its reason, as the end of a sentence.
pub(crate) struct Cause {
    pub(crate) failure: RunFailure,
    pub(crate) reason: String,
}

impl BackupFailure {
    fn describe(&self, provider: &str) -> Cause {
        match self {
            BackupFailure::Provider(e) => Cause {
                failure: e.code.into(),
                reason: format!("the {provider} provider failed: {}", e.message),
            },
            BackupFailure::Stopped(stop) => stop.describe(),
        }
    }
}

/// Why [`Engine::with_lease`] gave up on its work (and dropped it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The lease ran out and someone else took the lock while we worked.
    LeaseLost,
    /// The provider made no progress for the stall limit (SPEC §13).
    Stalled(std::time::Duration),
    /// The server is shutting down.
    Interrupted,
}

impl Stop {
    fn describe(self) -> Cause {
        let (failure, reason) = match self {
            Stop::LeaseLost => (
                RunFailure::LockLost,
                "its lock's lease expired and another operation took the cluster".to_owned(),
            ),
            Stop::Stalled(limit) => (
                RunFailure::ProviderStalled,
                format!(
                    "the provider made no progress for {} seconds, so the backup was abandoned \
                     (a file system that stopped answering, such as a hung network mount)",
                    limit.as_secs()
                ),
            ),
            Stop::Interrupted => (
                RunFailure::Interrupted,
                "the server was shutting down, so the copy was stopped".to_owned(),
            ),
        };
        Cause { failure, reason }
    }
}

impl Engine {
    /// Runs `job_id` for its firing at `scheduled` (what a trigger delivers, at least once),
    /// to the end. A job that does not exist answers `JobNotFound` and records nothing (it
    /// has no organization to record it in); a deleted one records a failed run.
    pub async fn run_scheduled(
        &self,
        job_id: &str,
        scheduled: DateTime<Utc>,
    ) -> Result<RunOutcome, EngineError> {
        check_job_id("jobId", job_id)?;
        let Some(job) = self.inner.store.get_job(job_id).await? else {
            tracing::warn!(%job_id, "a trigger fired for a job that does not exist");
            return Err(EngineError::JobNotFound(job_id.to_owned()));
        };
        match self.begin_run(&job, scheduled, Trigger::Schedule).await? {
            Begun::Done(outcome) => Ok(outcome),
            Begun::Locked(run) => Ok(RunOutcome {
                history: self.complete_run(*run).await,
                duplicate: false,
            }),
        }
    }

    /// "Run now": a run at the request's instant. Returns once the run is recorded and holds
    /// the cluster's lock (or has failed to take it); the backup continues in the background.
    pub async fn run_job_now(
        &self,
        scope: &Scope,
        job_id: &str,
    ) -> Result<RunOutcome, EngineError> {
        let job = self.job_in_scope(scope, job_id).await?;
        if job.status == JobStatus::Deleted {
            return Err(EngineError::JobDeleted(job.id));
        }
        match self.begin_run(&job, self.now(), Trigger::Manual).await? {
            Begun::Done(outcome) => Ok(outcome),
            Begun::Locked(run) => {
                let history = run.entry.item.clone();
                let engine = self.clone();
                let guard = self.in_flight();
                tokio::spawn(async move {
                    let _guard = guard;
                    engine.complete_run(*run).await;
                });
                Ok(RunOutcome {
                    history,
                    duplicate: false,
                })
            }
        }
    }

    /// Records the run (or finds it already recorded) and takes the cluster's lock: three
    /// steps, [`Engine::record_run`], [`Engine::take_cluster`] and, when the second one
    /// refuses, [`Engine::end_run`].
    async fn begin_run(
        &self,
        job: &JobRecord,
        scheduled: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<Begun, EngineError> {
        let entry = match self.record_run(job, scheduled, trigger).await? {
            Recorded::New(entry) => entry,
            Recorded::Duplicate(history) => {
                tracing::info!(job_id = %job.id, scheduled = %format_rfc3339(scheduled), history_id = %history.id, "run already recorded; not running it again");
                let history = self.settle_abandoned(job, history).await;
                return Ok(Begun::Done(RunOutcome {
                    history,
                    duplicate: true,
                }));
            }
        };
        match self.take_cluster(job, &entry).await {
            Ok(run) => Ok(Begun::Locked(run)),
            Err(NotStarted::Failed(end)) => {
                let history = self.end_run(&entry.item, end, None, None).await;
                Ok(Begun::Done(RunOutcome {
                    history,
                    duplicate: false,
                }))
            }
            Err(NotStarted::Store(error)) => {
                let end = RunEnd::failed(
                    RunFailure::StoreError,
                    format!("The state store failed before the backup started: {error}."),
                );
                self.end_run(&entry.item, end, None, None).await;
                Err(error.into())
            }
        }
    }

    /// Step 1: the conditional insert of the run record and its `running` history item.
    async fn record_run(
        &self,
        job: &JobRecord,
        scheduled: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<Recorded, StoreError> {
        let entry = HistoryEntry {
            scope: job.scope.clone(),
            cluster_id: job.cluster_id.clone(),
            item: HistoryItem {
                id: self.inner.ids.new_id(),
                job_id: job.id.clone(),
                status: RunStatus::Running,
                details: format!("Backing up cluster {}.", job.cluster_id),
                linked_resource: job.cluster_id.clone(),
                start_time: self.now(),
                end_time: None,
                scheduled_time: scheduled,
                trigger,
                error_code: None,
                pruned_backup_ids: Vec::new(),
            },
        };
        Ok(match self.inner.store.begin_run(&entry).await? {
            RunStart::Started => Recorded::New(entry),
            RunStart::AlreadyRan(history) => Recorded::Duplicate(history),
        })
    }

    /// Step 2: checks that the run can make a backup (its job, cluster, provider and
    /// template), then takes the cluster's lock and records the numbered backup.
    async fn take_cluster(
        &self,
        job: &JobRecord,
        entry: &HistoryEntry,
    ) -> Result<Box<LockedRun>, NotStarted> {
        if job.status == JobStatus::Deleted {
            return Err(NotStarted::failed(
                RunFailure::JobNotFound,
                format!(
                    "Job {} is deleted, so its run for {} made no backup.",
                    job.id,
                    format_rfc3339(entry.item.scheduled_time)
                ),
            ));
        }
        let sequence_key = format!("job:{}", job.id);
        let cluster = self
            .inner
            .writes
            .prepare(&job.cluster_id, &sequence_key)
            .await?;
        let cluster = match cluster {
            Some(c) if c.scope == job.scope => c,
            _ => {
                return Err(NotStarted::failed(
                    RunFailure::ClusterNotFound,
                    format!(
                        "Cluster {} is not registered, so no backup was made; register it \
                         again or delete this job.",
                        job.cluster_id
                    ),
                ))
            }
        };
        let Some(provider) = self.provider(cluster.provider()) else {
            return Err(NotStarted::failed(
                RunFailure::ProviderUnavailable,
                format!(
                    "This server has no {} backup provider, so cluster {} was not backed up.",
                    cluster.provider(),
                    cluster.id
                ),
            ));
        };
        let template = Template::parse(&job.template).map_err(|e| {
            NotStarted::failed(
                RunFailure::InvalidTemplate,
                format!(
                    "The job's stored description template no longer parses ({e}), so no \
                     backup was made; recreate the job."
                ),
            )
        })?;
        let holder = LockHolder {
            operation: OPERATION_SCHEDULED.to_owned(),
            job_id: Some(job.id.clone()),
            run_id: Some(entry.item.id.clone()),
        };
        let backup_id = self.inner.ids.new_id();
        match self
            .start_backup(NewBackup {
                scope: &job.scope,
                cluster: &cluster,
                provider: provider.as_ref(),
                job_id: Some(&job.id),
                sequence_key: &sequence_key,
                template: &template,
                datetime: entry.item.scheduled_time,
                holder: &holder,
                backup_id,
            })
            .await?
        {
            Started::Held(holder) => Err(NotStarted::failed(
                RunFailure::ClusterLocked,
                text::locked_sentence(&cluster.id, &holder),
            )),
            Started::Acquired { lock, backup } => Ok(Box::new(LockedRun {
                entry: entry.clone(),
                job: job.clone(),
                cluster,
                provider,
                lock,
                backup,
            })),
        }
    }

    /// A delivery of a run that is recorded `running` but whose process is gone (on AWS:
    /// Lambda retries an invocation that timed out or crashed) records it as failed, with
    /// code `interrupted`, and marks the backup it was making `defunct` so the next run
    /// prunes it. Gone means: started more than a lease ago, and the cluster's lock is free,
    /// since a live run holds it from before its backup starts until its history is final.
    /// Anything else (it may still be working, or the store cannot tell) changes nothing.
    async fn settle_abandoned(&self, job: &JobRecord, history: HistoryItem) -> HistoryItem {
        let now = self.now();
        if history.status != RunStatus::Running || history.start_time + self.lease() > now {
            return history;
        }
        match self.inner.lock.current(&job.cluster_id, now).await {
            Ok(None) => {}
            Ok(Some(_)) => return history,
            Err(error) => {
                tracing::warn!(history_id = %history.id, %error, "could not tell whether a recorded run is still working");
                return history;
            }
        }
        let store = &self.inner.store;
        let mut defunct = Vec::new();
        match store.list_job_backups(&job.id).await {
            Ok(backups) => {
                for b in backups.iter().filter(|b| {
                    b.status == BackupStatus::Creating && b.created >= history.start_time
                }) {
                    match store
                        .update_backup_status(&b.id, BackupStatus::Creating, BackupStatus::Defunct)
                        .await
                    {
                        Ok(true) => defunct.push(b.id.clone()),
                        Ok(false) => {}
                        Err(error) => {
                            tracing::warn!(backup_id = %b.id, %error, "could not mark an abandoned backup defunct")
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(job_id = %job.id, %error, "could not list the job's backups")
            }
        }
        let details = match defunct.as_slice() {
            [] => "The run stopped before it finished (its process ended or timed out) and \
                   made no backup; a later delivery recorded it."
                .to_owned(),
            [_] => format!(
                "The run stopped before it finished (its process ended or timed out); its {} \
                 is marked defunct and the next run prunes it.",
                text::list_backups(&defunct)
            ),
            _ => format!(
                "The run stopped before it finished (its process ended or timed out); its {} \
                 are marked defunct and the next run prunes them.",
                text::list_backups(&defunct)
            ),
        };
        let end = RunEnd::Failed {
            failure: RunFailure::Interrupted,
            details,
            backup_id: defunct.first().cloned(),
        };
        self.end_run(&history, end, None, None).await
    }

    /// Makes the backup, prunes on success, records the outcome and releases the lock.
    ///
    /// With nothing to prune, the backup's final status, the history item and the release
    /// are one [`Finish`]. When something is to be pruned, the backup is first recorded
    /// `available`, so that a process stopping mid-prune can never leave the new backup
    /// looking unfinished while older ones are already gone.
    async fn complete_run(&self, run: LockedRun) -> HistoryItem {
        let LockedRun {
            entry,
            job,
            cluster,
            provider,
            lock,
            backup,
        } = &run;
        let item = &entry.item;
        let release = Some(Release {
            cluster_id: &cluster.id,
            fencing_token: lock.fencing_token,
        });
        let made = self.make_backup(backup, cluster, provider, lock).await;
        if let Err(failure) = &made.result {
            let Cause { failure, reason } = failure.describe(provider.kind());
            tracing::warn!(backup_id = %backup.id, %reason, "backup failed");
            let details = format!(
                "Backup {} of cluster {} failed because {reason}; it is marked defunct and nothing \
                 was pruned.",
                backup.id, cluster.id
            );
            let backup_details = details.clone();
            let end = BackupEnd {
                backup_id: &backup.id,
                status: BackupStatus::Defunct,
                location: Some(&made.location),
                error_code: Some(failure),
                details: Some(&backup_details),
            };
            let run_end = RunEnd::Failed {
                failure,
                details,
                backup_id: Some(backup.id.clone()),
            };
            return self.end_run(item, run_end, Some(end), release).await;
        }
        tracing::info!(backup_id = %backup.id, cluster_id = %cluster.id, "backup available");
        let provider_notes = made.notes.join("; ");
        let available = BackupEnd {
            backup_id: &backup.id,
            status: BackupStatus::Available,
            location: Some(&made.location),
            error_code: None,
            details: (!made.notes.is_empty()).then_some(provider_notes.as_str()),
        };

        // Planning and pruning run under the lock too, and keep renewing it.
        let planned = self
            .with_lease(
                &cluster.id,
                lock.fencing_token,
                None,
                self.plan(job, &backup.id),
            )
            .await;
        let mut notes = made.notes.clone();
        let doomed = match planned {
            Ok(Ok((doomed, plan_notes))) => {
                notes.extend(plan_notes);
                doomed
            }
            Ok(Err(e)) => {
                notes.push(format!("listing the job's backups to prune failed ({e})"));
                Vec::new()
            }
            Err(stop) => {
                notes.push(format!(
                    "the run stopped before pruning ({}), so it pruned nothing",
                    stop.describe().reason
                ));
                Vec::new()
            }
        };
        let mut pending = Some(available);
        let mut pruned = Vec::new();
        if !doomed.is_empty() {
            let first = Finish {
                backup: pending.take(),
                ..Finish::default()
            };
            match self.inner.writes.finish(&first).await {
                Ok(done) if done.backup != Applied::Stale => {
                    let deleted = self
                        .with_lease(&cluster.id, lock.fencing_token, None, self.prune(&doomed))
                        .await;
                    match deleted {
                        Ok((ids, failures)) => {
                            pruned = ids;
                            notes.extend(failures);
                        }
                        Err(stop) => notes.push(format!(
                            "the run stopped while pruning ({}), so it pruned nothing more",
                            stop.describe().reason
                        )),
                    }
                }
                Ok(_) => notes.push(
                    "the backup's record had left `creating`, so nothing was pruned".to_owned(),
                ),
                Err(e) => {
                    let details = format!(
                        "Backup {} of cluster {} was made, but recording it as available \
                         failed ({e}), so nothing was pruned.",
                        backup.id, cluster.id
                    );
                    let end = RunEnd::Failed {
                        failure: RunFailure::StoreError,
                        details,
                        backup_id: Some(backup.id.clone()),
                    };
                    return self.end_run(item, end, None, release).await;
                }
            }
        }
        let mut sentence = format!(
            "Backed up cluster {} as backup {} (\"{}\")",
            cluster.id, backup.id, backup.description
        );
        if pruned.is_empty() && notes.is_empty() {
            sentence.push_str("; nothing needed pruning");
        }
        if !pruned.is_empty() {
            sentence.push_str(&format!("; pruned {}", text::list_backups(&pruned)));
        }
        for note in &notes {
            sentence.push_str("; ");
            sentence.push_str(note);
        }
        sentence.push('.');
        let end = RunEnd::Succeeded {
            backup_id: backup.id.clone(),
            pruned,
            details: sentence,
        };
        self.end_run(item, end, pending, release).await
    }

    /// What the retention rule selects among the job's backups (SPEC §4), counting the
    /// backup this run just made (`made`) as available, since it is, even though its record
    /// still says `creating`; and notes on what cannot be pruned.
    ///
    /// The backup this run just made is never selected, even if the rule's tie-break (same
    /// millisecond, then id) ranks it below an older one: deleting less is always safe, and
    /// the next run prunes the surplus.
    async fn plan(
        &self,
        job: &JobRecord,
        made: &str,
    ) -> Result<(Vec<BackupEntry>, Vec<String>), StoreError> {
        let backups = self.inner.store.list_job_backups(&job.id).await?;
        let Ok(max) = MaxBackupCount::new(i64::from(job.max_backup_count)) else {
            return Ok((
                Vec::new(),
                vec![format!(
                    "the job's maxBackupCount {} is out of range, so nothing was pruned",
                    job.max_backup_count
                )],
            ));
        };
        let records: Vec<_> = backups
            .iter()
            .map(|b| {
                let mut record = b.to_retention();
                if b.id == made {
                    record.status = BackupStatus::Available;
                }
                record
            })
            .collect();
        let plan = plan_prune(&job.id, &records, max, true);
        let doomed = plan
            .prune
            .iter()
            .filter(|d| d.backup_id != made)
            .filter_map(|d| backups.iter().find(|b| b.id == d.backup_id).cloned())
            .collect();
        Ok((doomed, Vec::new()))
    }

    /// Deletes `doomed`. Returns the ids deleted and a note for each delete that failed
    /// (those backups stay).
    async fn prune(&self, doomed: &[BackupEntry]) -> (Vec<String>, Vec<String>) {
        let mut pruned = Vec::new();
        let mut notes = Vec::new();
        for backup in doomed {
            match self.delete_backup_entry(backup).await {
                Ok(Deletion::Deleted) => pruned.push(backup.id.clone()),
                Ok(Deletion::ByAnother) => notes.push(format!(
                    "backup {} was being deleted by another request, which finishes it",
                    backup.id
                )),
                Err(error) => {
                    tracing::warn!(backup_id = %backup.id, %error, "could not prune a backup");
                    notes.push(format!(
                        "could not delete backup {} ({error}), so it stays {}",
                        backup.id, backup.status
                    ));
                }
            }
        }
        (pruned, notes)
    }

    /// Takes a manual backup's lock and record, then lets the copy finish in the background.
    pub(crate) async fn start_manual_backup(
        &self,
        scope: &Scope,
        cluster: ClusterRecord,
        template: Template,
    ) -> Result<String, EngineError> {
        let Some(provider) = self.provider(cluster.provider()) else {
            return Err(EngineError::ProviderUnavailable {
                provider: cluster.provider().to_owned(),
                cluster_id: cluster.id,
            });
        };
        let backup_id = self.inner.ids.new_id();
        let holder = LockHolder {
            operation: OPERATION_MANUAL.to_owned(),
            job_id: None,
            run_id: Some(backup_id.clone()),
        };
        let manual_key = format!("manual:{}", cluster.id);
        let started = self
            .start_backup(NewBackup {
                scope,
                cluster: &cluster,
                provider: provider.as_ref(),
                job_id: None,
                sequence_key: &manual_key,
                template: &template,
                datetime: self.now(),
                holder: &holder,
                backup_id,
            })
            .await?;
        let (lock, backup) = match started {
            Started::Acquired { lock, backup } => (lock, backup),
            Started::Held(holder) => {
                return Err(EngineError::ClusterLocked {
                    cluster_id: cluster.id,
                    holder: Box::new(holder),
                })
            }
        };
        let id = backup.id.clone();
        let engine = self.clone();
        let guard = self.in_flight();
        tokio::spawn(async move {
            let _guard = guard;
            let made = engine
                .make_backup(&backup, &cluster, &provider, &lock)
                .await;
            // A manual backup has no history item: the backup itself says why it failed
            // (SPEC §13), or what to know of it.
            let (status, error_code, details) = match &made.result {
                Ok(()) => (
                    BackupStatus::Available,
                    None,
                    (!made.notes.is_empty()).then(|| made.notes.join("; ")),
                ),
                Err(failure) => {
                    let Cause { failure, reason } = failure.describe(provider.kind());
                    tracing::warn!(backup_id = %backup.id, %reason, "manual backup failed");
                    (
                        BackupStatus::Defunct,
                        Some(failure),
                        Some(format!(
                            "Backup {} of cluster {} failed because {reason}.",
                            backup.id, cluster.id
                        )),
                    )
                }
            };
            let finish = Finish {
                backup: Some(BackupEnd {
                    backup_id: &backup.id,
                    status,
                    location: Some(&made.location),
                    error_code,
                    details: details.as_deref(),
                }),
                history: None,
                release: Some(Release {
                    cluster_id: &cluster.id,
                    fencing_token: lock.fencing_token,
                }),
            };
            engine.commit(&finish, &backup.id).await;
        });
        Ok(id)
    }

    /// Takes the cluster's lock and, with it, numbers, names and records a new backup as
    /// `creating` at its planned location.
    async fn start_backup(&self, new: NewBackup<'_>) -> Result<Started, StoreError> {
        let NewBackup {
            scope,
            cluster,
            provider,
            job_id,
            sequence_key,
            template,
            datetime,
            holder,
            backup_id,
        } = new;
        let now = self.now();
        let location = provider.planned_location(&BackupRequest {
            backup_id: backup_id.clone(),
            job_id: job_id.map(str::to_owned),
            description: String::new(),
            cluster: cluster.clone(),
            progress: Progress::default(),
        });
        let draft = BackupDraft {
            record: BackupEntry {
                id: backup_id,
                scope: scope.clone(),
                job_id: job_id.map(str::to_owned),
                cluster_id: cluster.id.clone(),
                cluster_description: cluster.description.clone(),
                provider: cluster.provider().to_owned(),
                description: String::new(),
                created: now,
                status: BackupStatus::Creating,
                index: 0,
                location: Some(location),
                error_code: None,
                details: None,
            },
            template: template.clone(),
            context: RenderContext {
                cluster_id: cluster.id.clone(),
                cluster_description: cluster.description.clone(),
                cluster_provider: cluster.provider().to_owned(),
                cluster_region: cluster.region.clone(),
                index: 0,
                datetime,
            },
        };
        self.inner
            .writes
            .start(&StartBackup {
                cluster_id: &cluster.id,
                holder,
                now,
                lease: self.lease(),
                sequence_key,
                backup: &draft,
            })
            .await
    }

    /// Has the provider make the backup and waits until it is available, renewing the lease
    /// meanwhile. Writes nothing: the caller records the outcome.
    async fn make_backup(
        &self,
        backup: &BackupEntry,
        cluster: &ClusterRecord,
        provider: &Arc<dyn BackupProvider>,
        lock: &ClusterLockInfo,
    ) -> Made {
        let progress = Progress::default();
        let request = BackupRequest {
            backup_id: backup.id.clone(),
            job_id: backup.job_id.clone(),
            description: backup.description.clone(),
            cluster: cluster.clone(),
            progress: progress.clone(),
        };
        let mut location = backup.location.clone().unwrap_or_default();
        let mut notes = Vec::new();
        let work = async {
            let created = provider
                .create(&request)
                .await
                .map_err(BackupFailure::Provider)?;
            let settled = match &created {
                Creation::Done(_) => Ok(()),
                // Settled now, within the lease; the event-driven settle of SPEC §16 is
                // the same `status` call made later.
                Creation::Pending(handle) => {
                    self.wait_available(provider.as_ref(), handle, &progress)
                        .await
                }
            };
            Ok::<_, BackupFailure>((created.into_handle(), settled))
        };
        let result = match self
            .with_lease(&cluster.id, lock.fencing_token, Some(&progress), work)
            .await
        {
            Ok(Ok((handle, waited))) => {
                location = handle.location;
                notes = handle.notes;
                waited
            }
            Ok(Err(failure)) => Err(failure),
            Err(stop) => Err(BackupFailure::Stopped(stop)),
        };
        Made {
            result,
            location,
            notes,
        }
    }

    async fn wait_available(
        &self,
        provider: &dyn BackupProvider,
        handle: &BackupHandle,
        progress: &Progress,
    ) -> Result<(), BackupFailure> {
        let config = &self.inner.config;
        let deadline = tokio::time::Instant::now() + config.max_backup_wait;
        loop {
            match provider
                .status(handle)
                .await
                .map_err(BackupFailure::Provider)?
            {
                ProviderStatus::Available => return Ok(()),
                ProviderStatus::Failed(reason) => {
                    return Err(BackupFailure::Provider(ProviderError::new(reason)))
                }
                ProviderStatus::Creating => {
                    // The provider answered: waiting on a snapshot is progress.
                    progress.tick();
                    if tokio::time::Instant::now() >= deadline {
                        return Err(BackupFailure::Provider(ProviderError::new(format!(
                            "the backup did not become available within {} seconds",
                            config.max_backup_wait.as_secs()
                        ))));
                    }
                    tokio::time::sleep(config.poll_interval).await;
                }
            }
        }
    }

    /// Runs `work` while renewing the lease every `renew_every`, and drops it (abandoning
    /// it) when it must stop:
    /// - a renewal finds the lock taken over ([`Stop::LeaseLost`]);
    /// - with `progress`, the lease is renewed only while work moves, and no movement for
    ///   `stall_after` gives up ([`Stop::Stalled`]): a worker stuck in a system call must
    ///   not hold the cluster for ever (SPEC §13);
    /// - the server is stopping ([`Stop::Interrupted`]).
    ///
    /// A renewal that fails for another reason (the store hiccups) is retried at the next
    /// tick: the lease is still valid until its expiry.
    pub(crate) async fn with_lease<F: Future>(
        &self,
        cluster_id: &str,
        fencing_token: u64,
        progress: Option<&Progress>,
        work: F,
    ) -> Result<F::Output, Stop> {
        let config = &self.inner.config;
        let every = config.renew_every.min(config.stall_after);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = self.inner.stopping.subscribe();
        let stopped = async move {
            // The guard `wait_for` answers is not `Send`: drop it before the next await.
            let _ = stopping.wait_for(|stop| *stop).await.is_ok();
        };
        tokio::pin!(stopped);
        let mut seen = progress.map(Progress::events);
        let mut moved_at = tokio::time::Instant::now();
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = &mut stopped => {
                    tracing::warn!(%cluster_id, "stopping work for the shutdown");
                    return Err(Stop::Interrupted);
                }
                _ = ticker.tick() => {
                    if let (Some(progress), Some(last)) = (progress, seen.as_mut()) {
                        let now_events = progress.events();
                        if now_events != *last {
                            *last = now_events;
                            moved_at = tokio::time::Instant::now();
                        } else if moved_at.elapsed() >= config.stall_after {
                            tracing::warn!(%cluster_id, stalled_for = ?moved_at.elapsed(), "the provider made no progress; abandoning its work");
                            return Err(Stop::Stalled(config.stall_after));
                        } else {
                            continue;
                        }
                    }
                    match self.inner.lock.renew(cluster_id, fencing_token, self.now(), self.lease()).await {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            tracing::warn!(%cluster_id, fencing_token, "lost the cluster lock while working");
                            return Err(Stop::LeaseLost);
                        }
                        Err(error) => tracing::warn!(%cluster_id, %error, "could not renew the lease; retrying"),
                    }
                }
            }
        }
    }

    /// Step 3: writes the run's final history item, ended as `end`, together with the
    /// backup's end and the lock's release when given. A store failure here is logged (the
    /// run itself is over); the item is returned either way.
    async fn end_run(
        &self,
        item: &HistoryItem,
        end: RunEnd,
        backup: Option<BackupEnd<'_>>,
        release: Option<Release<'_>>,
    ) -> HistoryItem {
        let item = end.apply(item, self.now());
        let finish = Finish {
            backup,
            history: Some(&item),
            release,
        };
        self.commit(&finish, &item.id).await;
        match item.error_code {
            Some(failure) => {
                tracing::warn!(job_id = %item.job_id, history_id = %item.id, code = %failure, details = %item.details, "run failed")
            }
            None => {
                tracing::info!(job_id = %item.job_id, history_id = %item.id, details = %item.details, "run finished")
            }
        }
        item
    }

    /// Applies `finish`, logging what did not go as asked: the lock no longer ours, the
    /// backup no longer `creating`, or the store failing (the lease then frees the cluster).
    async fn commit(&self, finish: &Finish<'_>, what: &str) {
        match self.inner.writes.finish(finish).await {
            Ok(done) => {
                if done.backup == Applied::Stale {
                    tracing::warn!(%what, "the backup had left `creating`; its status was not changed");
                }
                if done.release == Applied::Stale {
                    tracing::warn!(%what, "the lock was no longer ours to release");
                }
            }
            Err(error) => {
                tracing::error!(%what, %error, "could not record the end of a backup or run; a held lock frees itself when its lease expires");
            }
        }
    }
}

/// What [`Engine::start_backup`] needs to record a new backup.
struct NewBackup<'a> {
    scope: &'a Scope,
    cluster: &'a ClusterRecord,
    provider: &'a dyn BackupProvider,
    job_id: Option<&'a str>,
    sequence_key: &'a str,
    template: &'a Template,
    datetime: DateTime<Utc>,
    holder: &'a LockHolder,
    backup_id: String,
}
