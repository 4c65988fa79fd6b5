//! Runs (SPEC §5, §6): record, lock, back up, prune, record the end, release.
//!
//! A run is identified by (job id, scheduled instant). The run record and its `running`
//! history item are inserted, only if no run with that key exists, by the write that takes
//! the cluster's lock and records the backup ([`BackupWrites::start`]), so a second delivery
//! of the same firing finds the first run and returns its history without doing anything.
//! That write records the run also when it finds the lock held (the run then fails
//! `cluster_locked`); a run refused before it asks for the lock (its job deleted, its
//! cluster gone) is recorded with its failure by the same conditional insert alone. Every
//! outcome, including every failure, ends in the history item, and the cluster's lock, once
//! taken, is released on every path.
//!
//! [`BackupWrites::start`]: crate::ports::BackupWrites::start
//!
//! Here: the steps of a run. `run/making.rs`: making one backup under the lease (shared with
//! manual backups, in `engine/backups.rs`). `run/prune.rs`: what a successful run prunes.
//! `run/end.rs`: how a run ended (`RunEnd`) and the write that records it.

use std::sync::Arc;
use std::time::Duration;

use backup_core::api::{ClusterLockInfo, HistoryItem, JobStatus, RunFailure, RunStatus, Trigger};
use backup_core::civil::format_rfc3339;
use backup_core::retention::BackupStatus;
use backup_core::template::Template;
use chrono::{DateTime, Utc};

use crate::engine::{check_job_id, Engine};
use crate::error::{EngineError, StoreError};
use crate::model::{
    Applied, BackupEnd, BackupEntry, ClusterRecord, Finish, HistoryEntry, JobRecord, LockHolder,
    PendingBackup, PendingRun, Release, RunStart, Scope, Started, OPERATION_SCHEDULED,
};
use crate::ports::{BackupProvider, RunDispatcher};
use crate::text;

mod end;
mod making;
mod prune;
mod restores;
mod settle;

pub(crate) use end::RunEnd;
pub(crate) use making::{Cause, Made, NewBackup};
pub use prune::MAX_PRUNED_PER_RUN;
pub use restores::RestoreSettled;
pub use settle::{Settled, SweepReport, QUEUED_GRACE, SWEEP_PAGE};

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
// One per run, moved once: boxing the outcome too would buy nothing.
#[allow(clippy::large_enum_variant)]
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

/// Whether a run that takes its cluster is recorded yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// Not yet (a new run): the write that takes the lock records it, or, for a run
    /// refused before it asks for the lock, the record of its failure.
    WithStart,
    /// Recorded before (a claimed "run now").
    Done,
}

/// Why a run did not take the cluster.
enum NotStarted {
    /// A domain reason found before the lock was asked for, recorded as the run's failure.
    Failed(RunEnd),
    /// The cluster is locked: `start` recorded the run, which ends failed.
    Locked(RunEnd),
    /// The store failed: recorded as `store_error` and answered as an error.
    Store(StoreError),
    /// This firing was delivered before: its history as it stands.
    Duplicate(HistoryItem),
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

/// The pauses before each further look for a queued run not found at once (2 s in all).
const QUEUED_RUN_LOOKS_MS: [u64; 4] = [100, 300, 600, 1000];

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
        self.run_job_now_within(scope, job_id, Duration::ZERO).await
    }

    /// [`run_job_now`](Self::run_job_now), answering with the ended run if it ends within
    /// `wait` (the API's `?wait=`): a client that wants the outcome learns it the moment it
    /// is known, instead of polling the history on a timer. The run continues in the
    /// background either way; a run handed to another process (`queued`) is answered at
    /// once.
    pub async fn run_job_now_within(
        &self,
        scope: &Scope,
        job_id: &str,
        wait: Duration,
    ) -> Result<RunOutcome, EngineError> {
        let job = self.job_in_scope(scope, job_id).await?;
        if job.status == JobStatus::Deleted {
            return Err(EngineError::JobDeleted(job.id));
        }
        if let Some(dispatch) = self.inner.dispatch.clone() {
            return self.queue_run(&job, dispatch.as_ref()).await;
        }
        match self.begin_run(&job, self.now(), Trigger::Manual).await? {
            Begun::Done(outcome) => Ok(outcome),
            Begun::Locked(run) => {
                let history = run.entry.item.clone();
                let engine = self.clone();
                let guard = self.in_flight();
                let (ended, end) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    let _guard = guard;
                    let _ = ended.send(engine.complete_run(*run).await);
                });
                let history = match tokio::time::timeout(wait, end).await {
                    Ok(Ok(ended)) => ended,
                    _ => history,
                };
                Ok(RunOutcome {
                    history,
                    duplicate: false,
                })
            }
        }
    }

    /// "Run now" on a deployment whose API answers at once (SPEC §16): records the run
    /// `queued` and hands it to the process that makes it ([`Engine::run_queued`]). A run
    /// that cannot be handed over is failed at once, and the error answered.
    async fn queue_run(
        &self,
        job: &JobRecord,
        dispatch: &dyn RunDispatcher,
    ) -> Result<RunOutcome, EngineError> {
        let scheduled = self.now();
        let entry = self.new_run(job, scheduled, Trigger::Manual, RunStatus::Queued);
        if let RunStart::AlreadyRan(history) = self.inner.store.begin_run(&entry).await? {
            return Ok(RunOutcome {
                history,
                duplicate: true,
            });
        }
        let item = entry.item;
        if let Err(error) = dispatch.dispatch(&item.id, &job.id, scheduled).await {
            let failed = RunEnd::failed(
                RunFailure::Interrupted,
                format!("The runner could not be invoked ({error}), so no backup was made."),
            )
            .apply(&item, self.now());
            // Only while still queued: a delivery that went through despite the error wins.
            match self.inner.store.claim_queued(&failed).await {
                Ok(true) => self.observe_end(&failed),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(history_id = %item.id, error = %e, "could not record a run that was never handed over")
                }
            }
            return Err(error.into());
        }
        tracing::info!(job_id = %job.id, history_id = %item.id, "run queued");
        Ok(RunOutcome {
            history: item,
            duplicate: false,
        })
    }

    /// Makes a queued run (what [`Engine::queue_run`] dispatched), at least once delivered:
    /// claims it (`queued` → `running`, conditionally, so a second delivery finds it claimed
    /// and does nothing), then takes the cluster and makes the backup as a scheduled run
    /// does.
    pub async fn run_queued(&self, history_id: &str) -> Result<RunOutcome, EngineError> {
        check_job_id("historyId", history_id)?;
        let store = &self.inner.store;
        // A deployed store finds a history item by id through an index that trails the
        // write by moments (SPEC §16: real AWS is eventually consistent), and the runner
        // is invoked right after the run was queued: look again briefly before calling
        // the run unknown (which would fail the invocation and raise the errors alarm).
        let mut found = store.get_history(history_id).await?;
        for wait_ms in QUEUED_RUN_LOOKS_MS {
            if found.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
            found = store.get_history(history_id).await?;
        }
        let Some(entry) = found else {
            return Err(EngineError::RunNotFound(history_id.to_owned()));
        };
        if entry.item.status != RunStatus::Queued {
            return Ok(RunOutcome {
                history: entry.item,
                duplicate: true,
            });
        }
        let mut running = entry.item.clone();
        running.status = RunStatus::Running;
        if !store.claim_queued(&running).await? {
            let history = store
                .get_history(history_id)
                .await?
                .map_or(running, |e| e.item);
            return Ok(RunOutcome {
                history,
                duplicate: true,
            });
        }
        let entry = HistoryEntry {
            item: running,
            ..entry
        };
        let job = match store.get_job(&entry.item.job_id).await? {
            Some(job) if job.status != JobStatus::Deleted => job,
            _ => {
                let end = RunEnd::failed(
                    RunFailure::JobNotFound,
                    format!(
                        "Job {} was deleted before its run started, so no backup was made.",
                        entry.item.job_id
                    ),
                );
                let history = self.end_run(&entry.item, end, None, None, None).await;
                return Ok(RunOutcome {
                    history,
                    duplicate: false,
                });
            }
        };
        let history = match self.lock_and_make(&job, &entry, Record::Done).await? {
            Begun::Done(outcome) => outcome.history,
            Begun::Locked(run) => self.complete_run(*run).await,
        };
        Ok(RunOutcome {
            history,
            duplicate: false,
        })
    }

    /// Takes the cluster's lock for a new run and records the run with it, or finds the run
    /// recorded already: [`Engine::lock_and_make`] of a run not recorded yet.
    async fn begin_run(
        &self,
        job: &JobRecord,
        scheduled: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<Begun, EngineError> {
        let entry = self.new_run(job, scheduled, trigger, RunStatus::Running);
        self.lock_and_make(job, &entry, Record::WithStart).await
    }

    /// [`Engine::take_cluster`] and, when it refuses, [`Engine::end_run`]. A run refused
    /// before it asked for the lock is recorded first (if it is not yet), and a firing
    /// delivered before, found by either record, does nothing more.
    async fn lock_and_make(
        &self,
        job: &JobRecord,
        entry: &HistoryEntry,
        record: Record,
    ) -> Result<Begun, EngineError> {
        match self.take_cluster(job, entry, record).await {
            Ok(run) => Ok(Begun::Locked(run)),
            Err(NotStarted::Duplicate(history)) => Ok(self.duplicate(job, history).await),
            // `start` recorded the run when it found the lock held.
            Err(NotStarted::Locked(end)) => Ok(self.refused(entry, end).await),
            Err(NotStarted::Failed(end)) => {
                if let Some(first) = self.record_refused(job, entry, record).await? {
                    return Ok(first);
                }
                Ok(self.refused(entry, end).await)
            }
            Err(NotStarted::Store(error)) => {
                match self.record_refused(job, entry, record).await {
                    Ok(Some(first)) => return Ok(first),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(history_id = %entry.item.id, error = %e, "could not record a run the store failed to start");
                        return Err(error.into());
                    }
                }
                let end = RunEnd::failed(
                    RunFailure::StoreError,
                    format!("The state store failed before the backup started: {error}."),
                );
                self.end_run(&entry.item, end, None, None, None).await;
                Err(error.into())
            }
        }
    }

    /// Records a run that did not start, if `start` was to record it: `Some` (the first
    /// run's answer) when a delivery of the same firing recorded it first.
    async fn record_refused(
        &self,
        job: &JobRecord,
        entry: &HistoryEntry,
        record: Record,
    ) -> Result<Option<Begun>, StoreError> {
        if record == Record::Done {
            return Ok(None);
        }
        Ok(match self.inner.store.begin_run(entry).await? {
            RunStart::Started => None,
            // Its own record: `start` failed after it had written it.
            RunStart::AlreadyRan(history) if history.id == entry.item.id => None,
            RunStart::AlreadyRan(history) => Some(self.duplicate(job, history).await),
        })
    }

    /// Ends a recorded run that did not take its cluster.
    async fn refused(&self, entry: &HistoryEntry, end: RunEnd) -> Begun {
        let history = self.end_run(&entry.item, end, None, None, None).await;
        Begun::Done(RunOutcome {
            history,
            duplicate: false,
        })
    }

    /// What a second delivery of a firing answers: the first run's history (ended first if
    /// that run was abandoned), and nothing done.
    async fn duplicate(&self, job: &JobRecord, history: HistoryItem) -> Begun {
        tracing::info!(job_id = %job.id, scheduled = %format_rfc3339(history.scheduled_time), history_id = %history.id, "run already recorded; not running it again");
        let history = self.settle_abandoned(job, history).await;
        Begun::Done(RunOutcome {
            history,
            duplicate: true,
        })
    }

    /// A new run's record and its history item (`running`, or `queued` for "run now" on a
    /// deployment that hands it over), not yet written.
    fn new_run(
        &self,
        job: &JobRecord,
        scheduled: DateTime<Utc>,
        trigger: Trigger,
        status: RunStatus,
    ) -> HistoryEntry {
        HistoryEntry {
            scope: job.scope.clone(),
            cluster_id: job.cluster_id.clone(),
            item: HistoryItem {
                id: self.inner.ids.new_id(),
                job_id: job.id.clone(),
                organization_id: job.scope.org.clone(),
                project_id: job.scope.project.clone(),
                status,
                details: match status {
                    RunStatus::Queued => format!(
                        "Waiting for the runner to back up cluster {}.",
                        job.cluster_id
                    ),
                    _ => format!("Backing up cluster {}.", job.cluster_id),
                },
                linked_resource: job.cluster_id.clone(),
                start_time: self.now(),
                end_time: None,
                scheduled_time: scheduled,
                trigger,
                error_code: None,
                pruned_backup_ids: Vec::new(),
            },
        }
    }

    /// Checks that the run can make a backup (its job, cluster, provider and template),
    /// then takes the cluster's lock and records the numbered backup, and the run with them
    /// if it is not recorded yet.
    async fn take_cluster(
        &self,
        job: &JobRecord,
        entry: &HistoryEntry,
        record: Record,
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
        if cluster.status != backup_core::api::ClusterStatus::Available {
            return Err(NotStarted::failed(
                RunFailure::ClusterNotAvailable,
                text::not_available_sentence(
                    &cluster.id,
                    cluster.status,
                    cluster.details.as_deref(),
                ),
            ));
        }
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
                run: (record == Record::WithStart).then_some(entry),
            })
            .await?
        {
            Started::Held(holder) => Err(NotStarted::Locked(RunEnd::failed(
                RunFailure::ClusterLocked,
                text::locked_sentence(&cluster.id, &holder),
            ))),
            Started::AlreadyRan(history) => Err(NotStarted::Duplicate(history)),
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

    /// Makes the backup, then ends the run ([`Engine::conclude`]), or, for a backup the
    /// provider continues and this deployment settles later, records it pending and leaves
    /// the run `running` ([`Engine::park`]).
    async fn complete_run(&self, run: LockedRun) -> HistoryItem {
        let LockedRun {
            entry,
            job,
            cluster,
            provider,
            lock,
            backup,
        } = &run;
        let made = self
            .make_backup(backup, cluster, provider, lock, entry.item.scheduled_time)
            .await;
        let ending = Ending {
            run: Some((job, &entry.item)),
            backup,
            provider: provider.kind(),
            fencing_token: lock.fencing_token,
            settled: None,
        };
        match &made.later {
            Some(handle) => {
                let run = PendingRun {
                    job: job.clone(),
                    entry: entry.clone(),
                };
                self.park(&ending, handle, Some(run)).await
            }
            None => self.conclude(&ending, made).await,
        }
        .unwrap_or_else(|| entry.item.clone())
    }

    /// Ends a run that holds its cluster, once its backup is made or failed: on success
    /// prunes, then records the backup's end, the history item and the release; on failure
    /// marks the backup defunct and prunes nothing. A manual backup (no `job`) only records
    /// the backup's end and the release.
    ///
    /// With nothing to prune, the backup's final status, the history item and the release
    /// are one [`Finish`]. When something is to be pruned, the backup is first recorded
    /// `available`, so that a process stopping mid-prune can never leave the new backup
    /// looking unfinished while older ones are already gone.
    ///
    /// A settle ([`Ending::settled`]) writes nothing at all if the backup has already left
    /// `creating`: a second notification changes nothing.
    /// Answers the run's final history item (`None` for a manual backup; for a settle that
    /// found the backup settled already, the item as it was).
    pub(crate) async fn conclude(&self, ending: &Ending<'_>, made: Made) -> Option<HistoryItem> {
        let Ending {
            run,
            backup,
            provider,
            fencing_token,
            settled,
        } = *ending;
        let cluster_id = &backup.cluster_id;
        let release = Some(Release {
            cluster_id,
            fencing_token,
        });
        if let Err(failure) = &made.result {
            let Cause { failure, reason } = failure.describe(provider);
            tracing::warn!(backup_id = %backup.id, %reason, "backup failed");
            // A provider that refused to start (too busy) made nothing: the record ends
            // `deleted`, not `defunct`, since there is nothing to clean up (SPEC §16).
            let (status, outcome) = if failure == RunFailure::ProviderBusy {
                (BackupStatus::Deleted, "nothing was made")
            } else {
                (BackupStatus::Defunct, "it is marked defunct")
            };
            // The reason may be a sentence of its own (a provider's message ending in `.`).
            let reason = reason.trim_end_matches('.');
            let details = match run {
                Some(_) => format!(
                    "Backup {} of cluster {cluster_id} failed because {reason}; {outcome} and \
                     nothing was pruned.",
                    backup.id
                ),
                None => format!(
                    "Backup {} of cluster {cluster_id} failed because {reason}.",
                    backup.id
                ),
            };
            let end = BackupEnd {
                backup_id: &backup.id,
                status,
                location: Some(&made.location),
                error_code: Some(failure),
                details: Some(&details),
                size_bytes: None,
            };
            let Some((_, item)) = run else {
                self.end_backup(end, release, settled).await;
                return None;
            };
            let run_end = RunEnd::Failed {
                failure,
                details: details.clone(),
                backup_id: Some(backup.id.clone()),
            };
            // A settle that another settle of the same backup beat answers nothing.
            let item = run_end.apply(item, self.now());
            return self
                .end_run_once(&item, Some(end), release, settled)
                .await
                .then_some(item);
        }
        tracing::info!(backup_id = %backup.id, %cluster_id, "backup available");
        if let Some(bytes) = made.size_bytes {
            let linked = made.linked_bytes.unwrap_or(0).min(bytes);
            self.observe(|o| o.backup_made(bytes - linked, linked));
        }
        let provider_notes = made.notes.join("; ");
        let available = BackupEnd {
            backup_id: &backup.id,
            status: BackupStatus::Available,
            location: Some(&made.location),
            error_code: None,
            details: (!made.notes.is_empty()).then_some(provider_notes.as_str()),
            size_bytes: made.size_bytes,
        };
        let Some((job, item)) = run else {
            // A manual backup: never pruned, no history item (SPEC §13).
            self.end_backup(available, release, settled).await;
            return None;
        };

        // Planning and pruning run under the lock too, and keep renewing it.
        let planned = self
            .with_lease(cluster_id, fencing_token, None, self.plan(job, &backup.id))
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
                together: settled.is_some(),
                ..Finish::default()
            };
            let first_written = match self.inner.writes.finish(&first).await {
                Ok(done) if done.backup != Applied::Stale => Ok(true),
                Ok(_) if settled.is_some() => {
                    // Another settle recorded the backup available first. If it also ended
                    // the run, nothing is left to do; if its process stopped in between (a
                    // Lambda that timed out while pruning), the run is still `running`, its
                    // cluster locked and its pending record kept, and no later settle would
                    // ever end it: this one does (SPEC §16), pruning again what is left.
                    if !self.still_running(item).await {
                        tracing::info!(backup_id = %backup.id, "already settled; nothing more to do");
                        return Some(item.clone());
                    }
                    tracing::warn!(backup_id = %backup.id, history_id = %item.id, "an earlier settle stopped before it ended the run; ending it now");
                    notes.push(
                        "an earlier settle recorded the backup available and stopped before it \
                         ended the run, which this one ended"
                            .to_owned(),
                    );
                    Ok(true)
                }
                other => other.map(|_| false),
            };
            match first_written {
                Ok(true) => {
                    let deleted = self
                        .with_lease(cluster_id, fencing_token, None, self.prune(&doomed))
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
                Ok(false) => notes.push(
                    "the backup's record had left `creating`, so nothing was pruned".to_owned(),
                ),
                Err(e) => {
                    let details = format!(
                        "Backup {} of cluster {cluster_id} was made, but recording it as \
                         available failed ({e}), so nothing was pruned.",
                        backup.id
                    );
                    let end = RunEnd::Failed {
                        failure: RunFailure::StoreError,
                        details,
                        backup_id: Some(backup.id.clone()),
                    };
                    return Some(self.end_run(item, end, None, release, None).await);
                }
            }
        }
        let mut sentence = format!(
            "Backed up cluster {cluster_id} as backup {} (\"{}\")",
            backup.id, backup.description
        );
        if pruned.is_empty() && notes.is_empty() {
            sentence.push_str("; nothing needed pruning");
        }
        if !pruned.is_empty() {
            sentence.push_str(&format!("; pruned {}", text::list_backups(&pruned)));
        }
        if let (Some(size), Some(linked)) = (made.size_bytes, made.linked_bytes) {
            sentence.push_str(&format!("; {}", text::copied_and_linked(size, linked)));
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
        let item = end.apply(item, self.now());
        self.end_run_once(&item, pending, release, settled)
            .await
            .then_some(item)
    }
}

/// What [`Engine::conclude`] ends: a run (or a manual backup) holding its cluster, whether
/// its backup was made in this call or is settled later from a [`PendingBackup`].
#[derive(Clone, Copy)]
pub(crate) struct Ending<'a> {
    /// The run's job (what it prunes by) and `running` history item; `None` for a manual
    /// backup, which prunes nothing and has no history item.
    pub(crate) run: Option<(&'a JobRecord, &'a HistoryItem)>,
    pub(crate) backup: &'a BackupEntry,
    /// The provider's kind, for the sentences.
    pub(crate) provider: &'a str,
    pub(crate) fencing_token: u64,
    /// The pending backup this settles, forgotten with the end.
    pub(crate) settled: Option<&'a PendingBackup>,
}
