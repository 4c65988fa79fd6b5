//! The ports: what the engine needs from the world, as narrow traits.
//!
//! Narrow on purpose (as in aws-samples/serverless-rust-demo): each adapter call maps to one
//! conditional write or query, and on AWS each function's IAM role allows exactly the calls
//! its ports make. Every conditional write reports its outcome as a value (`bool`,
//! [`RunStart`], [`Acquisition`]), never as an error, because "someone else was first" is a
//! normal domain outcome.
//!
//! The traits use `async_trait` so the engine can hold them as `Arc<dyn …>` and a deployment
//! picks its adapters at start-up.

use async_trait::async_trait;
use backup_core::api::{
    ClusterLockInfo, ClusterStatus, HistoryItem, RunFailure, Verification, VerifyProblem,
};
use backup_core::retention::BackupStatus;
use chrono::{DateTime, Utc};

use backup_core::api::ClusterTarget;

use crate::error::{ProviderError, StoreError, TargetProblem, TriggerError};
use crate::model::{
    Acquisition, Applied, BackupEntry, BackupFilter, BackupHandle, BackupRequest, ClusterRecord,
    Creation, Finish, Finished, HistoryEntry, JobRecord, LockHolder, PendingBackup, PendingRestore,
    ProviderStatus, Restoration, RestoreHandle, RestoreRequest, RestoreStatus, RunStart, Scope,
    StartBackup, Started,
};
use crate::page::{Page, PageRequest};

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts a new job; `false` when a job with this id exists (nothing changes).
    async fn insert_job(&self, job: &JobRecord) -> StoreResult<bool>;
    /// A job by id, whatever its scope and status.
    async fn get_job(&self, job_id: &str) -> StoreResult<Option<JobRecord>>;
    /// A page of a scope's jobs, active and deleted, newest first (by creation instant,
    /// then id, both descending; positions as
    /// [`instant_position`](crate::page::instant_position)), so that a first page of 1,000
    /// holds the newest 1,000 (SPEC §16).
    async fn list_jobs(&self, scope: &Scope, page: &PageRequest) -> StoreResult<Page<JobRecord>>;
    /// Every active job of every scope (what a scheduler arms at start-up).
    async fn list_active_jobs(&self) -> StoreResult<Vec<JobRecord>>;
    /// Marks an active job deleted; `false` when it is not active (or does not exist).
    async fn mark_job_deleted(&self, job_id: &str) -> StoreResult<bool>;
    /// Removes a job record entirely: only to undo a creation whose trigger failed.
    async fn remove_job(&self, job_id: &str) -> StoreResult<()>;
    /// Replaces the changeable fields of an active job (description, schedule, template,
    /// maximum backup count) with `job`'s; its scope, cluster, status and creation instant
    /// stay. `false` (and no change) when the job is not active or does not exist: a job
    /// deleted meanwhile stays deleted.
    async fn update_job(&self, job: &JobRecord) -> StoreResult<bool>;
}

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Registers a cluster; `false` when the id is taken (in any scope).
    async fn insert_cluster(&self, cluster: &ClusterRecord) -> StoreResult<bool>;
    async fn get_cluster(&self, cluster_id: &str) -> StoreResult<Option<ClusterRecord>>;
    /// A page of a scope's clusters, by id (the position is the id).
    async fn list_clusters(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Page<ClusterRecord>>;
    /// `false` when there was no such cluster.
    async fn delete_cluster(&self, cluster_id: &str) -> StoreResult<bool>;
    /// Sets a cluster's status and details (`None` clears them: the details belong to the
    /// status they explain) and, when `target` is given, its target (a restore's final
    /// one); the rest of the record stays. `false` (and no change) when there is no such
    /// cluster.
    async fn update_cluster_state(
        &self,
        cluster_id: &str,
        status: ClusterStatus,
        details: Option<&str>,
        target: Option<&ClusterTarget>,
    ) -> StoreResult<bool>;
    /// Every cluster still `creating` (a restore), in every scope: what a single-process
    /// deployment's start-up finds its last process left (see
    /// [`Engine::recover_interrupted`](crate::Engine::recover_interrupted)). None by default:
    /// where restores settle later (DynamoDB), the sweeper settles them instead.
    async fn list_creating_clusters(&self) -> StoreResult<Vec<ClusterRecord>> {
        Ok(Vec::new())
    }
}

#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Adds a backup record; `false` when the id exists.
    async fn insert_backup(&self, backup: &BackupEntry) -> StoreResult<bool>;
    async fn get_backup(&self, backup_id: &str) -> StoreResult<Option<BackupEntry>>;
    /// A page of a scope's backups matching `filter`, newest first (by creation instant,
    /// then id; positions as [`instant_position`](crate::page::instant_position)).
    async fn list_backups(
        &self,
        scope: &Scope,
        filter: &BackupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackupEntry>>;
    /// The backups a job made (what retention plans over and recovery looks through). A
    /// store may leave out `deleted` ones: DynamoDB's job index holds live backups only, so
    /// this read does not grow with a job's age (SPEC §16).
    async fn list_job_backups(&self, job_id: &str) -> StoreResult<Vec<BackupEntry>>;
    /// The backups of `ids` as they are now, read consistently: a prune decides on these,
    /// since a list may be served eventually consistently (DynamoDB's indexes, SPEC §16).
    /// Ids of no backup are left out.
    async fn get_backups(&self, ids: &[String]) -> StoreResult<Vec<BackupEntry>> {
        let mut found = Vec::new();
        for id in ids {
            if let Some(backup) = self.get_backup(id).await? {
                found.push(backup);
            }
        }
        Ok(found)
    }
    /// Every backup in `status`, across scopes (start-up recovery looks for `creating`).
    async fn list_backups_in_status(&self, status: BackupStatus) -> StoreResult<Vec<BackupEntry>>;
    /// Sets the status only if it is currently `from`; `false` otherwise (nothing changes).
    async fn update_backup_status(
        &self,
        backup_id: &str,
        from: BackupStatus,
        to: BackupStatus,
    ) -> StoreResult<bool>;
    /// Records where the provider put the backup.
    async fn set_backup_location(&self, backup_id: &str, location: &str) -> StoreResult<()>;
    /// Records why a backup failed (`error_code`) and the sentence an operator reads with it
    /// (why it failed, or what to know of a backup that succeeded). `None` leaves a part as
    /// it is.
    async fn set_backup_details(
        &self,
        backup_id: &str,
        error_code: Option<RunFailure>,
        details: Option<&str>,
    ) -> StoreResult<()>;
    /// Records the backup's size as its provider reported it (esc's `sizeGb`).
    async fn set_backup_size(&self, backup_id: &str, size_bytes: u64) -> StoreResult<()>;
    /// Records what a verify found, replacing the last one (SPEC §14); nothing else of
    /// the backup changes, its status least of all.
    async fn set_backup_verification(
        &self,
        backup_id: &str,
        verification: &Verification,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait RunStore: Send + Sync {
    /// Records the start of a run: a run record keyed by (job id, scheduled instant) and its
    /// history item, together and only if no run with that key exists. This is what makes
    /// at-least-once delivery run a backup at most once.
    async fn begin_run(&self, entry: &HistoryEntry) -> StoreResult<RunStart>;
}

#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Replaces a history item (found by its id) with its final state.
    async fn update_history(&self, item: &HistoryItem) -> StoreResult<()>;
    /// Replaces a `queued` history item with `item` (the run claimed, or failed), only while
    /// it is still `queued`: `false` (and no change) when another delivery claimed it first.
    async fn claim_queued(&self, item: &HistoryItem) -> StoreResult<bool>;
    async fn get_history(&self, history_id: &str) -> StoreResult<Option<HistoryEntry>>;
    /// A page of a scope's history, optionally one job's, newest first: by start time, then
    /// by the order of recording (positions `<start ms>#<order>`, the order in digits).
    async fn list_history(
        &self,
        scope: &Scope,
        job_id: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<HistoryItem>>;
    /// Every run not ended yet (`running` or `queued`), across scopes (start-up recovery,
    /// the sweeper).
    async fn list_running(&self) -> StoreResult<Vec<HistoryEntry>>;
}

#[async_trait]
pub trait SequenceStore: Send + Sync {
    /// Atomically increments the counter `key` (created at 0) and returns its new value, so
    /// the first call answers 1.
    async fn next_sequence(&self, key: &str) -> StoreResult<u64>;
}

/// Everything the engine stores, for adapters that implement it all in one place.
pub trait Store:
    JobStore + ClusterStore + BackupStore + RunStore + HistoryStore + SequenceStore
{
}

impl<T> Store for T where
    T: JobStore + ClusterStore + BackupStore + RunStore + HistoryStore + SequenceStore
{
}

/// One lease lock per cluster (SPEC §5).
///
/// Every method takes `now` from the engine's clock, so the lease arithmetic is the same in
/// every adapter and testable with a fake clock; expiries are absolute instants.
#[async_trait]
pub trait ClusterLock: Send + Sync {
    /// Takes the lock if it is free or its lease expired before `now`, never waiting. The
    /// fencing token of each acquisition is greater than every earlier one of this cluster.
    async fn try_acquire(
        &self,
        cluster_id: &str,
        holder: &LockHolder,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<Acquisition>;
    /// Extends the lease of the holder with `fencing_token` to `now + lease`. `None` when it
    /// no longer holds the lock (released, or expired and taken by someone else).
    async fn renew(
        &self,
        cluster_id: &str,
        fencing_token: u64,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<Option<ClusterLockInfo>>;
    /// Releases the lock if `fencing_token` still holds it; `false` (and no change) otherwise.
    async fn release(&self, cluster_id: &str, fencing_token: u64) -> StoreResult<bool>;
    /// The unexpired holder at `now`, if any.
    async fn current(
        &self,
        cluster_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClusterLockInfo>>;
}

/// The writes that start and end a backup, grouped so that an adapter which is both the
/// store and the lock can make each group one request.
///
/// A run reads its cluster (`prepare`), records itself, takes the lock and records a
/// numbered backup (`start`), and at the end records the backup's outcome and the run's history and releases
/// the lock (`finish`). [`OneByOne`](crate::writes::OneByOne) is the one implementation for
/// stores without multi-item transactions (SQLite, whose calls are local and cheap, and the
/// in-memory store): each group through the narrow ports, call by call. The DynamoDB
/// adapter makes `prepare` one `BatchGetItem` and `start` and `finish` one
/// `TransactWriteItems` each, which is what keeps a run within a handful of AWS calls. Either
/// way the outcome must be the same: the contract suite runs the same checks on both.
///
/// **Versions.** The port carries no adapter state: an adapter that conditions `start` on
/// versions it read in `prepare` (optimistic concurrency) keeps them itself, keyed by the
/// cluster and the counter, and must decide right with versions that are stale or missing
/// (another process moved the lock or the counter meanwhile; `start` without `prepare`).
/// An associated type would say this in the signature, but the engine holds its adapters
/// as `Arc<dyn …>`, chosen at start-up, which an associated type does not allow without a
/// type-erasing box.
#[async_trait]
pub trait BackupWrites: Send + Sync {
    /// The cluster a backup is about to be started on, read with whatever `start` may
    /// condition its writes on.
    async fn prepare(
        &self,
        cluster_id: &str,
        sequence_key: &str,
    ) -> StoreResult<Option<ClusterRecord>>;
    /// Takes the cluster's lock if it is free or expired, never waiting, and, only then,
    /// numbers the backup from the counter and records it ([`BackupDraft::numbered`]), with
    /// the run of [`StartBackup::run`] when given. All of it or none of it: when the lock is
    /// held, no number is used and no backup recorded, and the run alone is recorded
    /// ([`Started::Held`]); when the run was recorded before, nothing is written
    /// ([`Started::AlreadyRan`]), whoever holds the lock.
    ///
    /// [`BackupDraft::numbered`]: crate::model::BackupDraft::numbered
    async fn start(&self, start: &StartBackup<'_>) -> StoreResult<Started>;
    /// Applies every part of `finish`, each part's condition checked on its own as the
    /// narrow ports do. Every part is attempted even if another fails.
    async fn finish(&self, finish: &Finish<'_>) -> StoreResult<Finished>;
}

/// Backups left to settle later (SPEC §16), for deployments whose backups outlive the
/// process that starts them (AWS: a snapshot takes longer than a Lambda invocation lives).
/// The local mode waits for its backups and has none.
///
/// A pending backup is found by any of its keys (what the provider's notifications name),
/// and listed by deadline for the sweeper, a page at a time. It is forgotten by the
/// [`Finish`] that settles it ([`Finish::settled`]).
#[async_trait]
pub trait PendingBackups: Send + Sync {
    /// Records `pending`, sets the backup's location to its handle, and extends the lease of
    /// the lock `pending.fencing_token` holds to `pending.deadline`. The lock's part is
    /// `Stale` when that token no longer holds it: the backup is recorded pending all the
    /// same (its snapshots exist, and settling it needs the record).
    async fn park(&self, pending: &PendingBackup) -> StoreResult<Applied>;
    /// The pending backup one of whose keys is `key`; `None` for a key of no pending backup
    /// (another tool's snapshot, or one already settled).
    async fn find_pending(&self, key: &str) -> StoreResult<Option<PendingBackup>>;
    /// Up to `limit` pending backups, the earliest deadline first.
    async fn list_pending(&self, limit: usize) -> StoreResult<Vec<PendingBackup>>;
    /// Forgets a pending backup and its keys (what a [`Finish`] with `settled` does with the
    /// rest of its writes); forgetting one already forgotten succeeds.
    async fn unpark(&self, pending: &PendingBackup) -> StoreResult<()>;

    /// Records a restore that settles later ([`PendingRestore`]) and extends the lease of
    /// the `restore` lock `pending.fencing_token` holds to `pending.deadline`; `Stale` when
    /// that token no longer holds it (recorded all the same: its volumes exist, and
    /// settling it needs the record). Restores are kept here, beside pending backups, so a
    /// deployment that settles later has one port for it; a store that keeps no pending
    /// restores refuses.
    async fn park_restore(&self, pending: &PendingRestore) -> StoreResult<Applied> {
        Err(StoreError::Corrupt(format!(
            "this deployment keeps no pending restores (cluster {})",
            pending.handle.cluster_id
        )))
    }
    /// The pending restore one of whose keys is `key`; `None` for a key of none (another
    /// tool's volume, or a restore already settled).
    async fn find_pending_restore(&self, key: &str) -> StoreResult<Option<PendingRestore>> {
        let _ = key;
        Ok(None)
    }
    /// Up to `limit` pending restores, the earliest deadline first.
    async fn list_pending_restores(&self, limit: usize) -> StoreResult<Vec<PendingRestore>> {
        let _ = limit;
        Ok(Vec::new())
    }
    /// Forgets a pending restore and its keys; forgetting one already forgotten succeeds.
    async fn unpark_restore(&self, pending: &PendingRestore) -> StoreResult<()> {
        let _ = pending;
        Ok(())
    }
}

/// Makes, watches and deletes backups of one kind of cluster (`directory`, `aws-ebs`).
#[async_trait]
pub trait BackupProvider: Send + Sync {
    /// The `provider` name of the clusters it serves.
    fn kind(&self) -> &'static str;
    /// Checks a target at registration against this provider's policy (SPEC §12: the path
    /// policy of `directory` clusters) and answers the form to store (a canonical path).
    async fn check_target(&self, target: &ClusterTarget) -> Result<ClusterTarget, TargetProblem> {
        Ok(target.clone())
    }
    /// Checks a stored target again (a path may have become a link since it was
    /// registered): `clusters list` shows the problem, and runs fail `path_not_allowed`.
    async fn recheck_target(&self, target: &ClusterTarget) -> Result<(), TargetProblem> {
        let _ = target;
        Ok(())
    }
    /// Where the backup `request` asks for will be, known before it is started: it is
    /// recorded with the backup, so a backup whose process stopped half-way can still be
    /// found and deleted. `create` answers the final location.
    fn planned_location(&self, request: &BackupRequest) -> String;
    /// Whether the provider makes a backup from the cluster's previous one, linking what did
    /// not change (the directory copy): the engine then looks up the cluster's newest
    /// `available` backup and names it in [`BackupRequest::base_backup_id`]. The others are
    /// spared that read (an AWS run's calls are counted, SPEC §16).
    fn links_unchanged(&self) -> bool {
        false
    }
    /// Starts a backup, and answers either [`Creation::Done`] (a synchronous provider, such
    /// as the directory copy, completes it in this call) or [`Creation::Pending`] (it
    /// continues outside this call, as EBS snapshots do, and [`status`](Self::status)
    /// settles it, now or from a later invocation). Dropping the future abandons the
    /// backup: the provider must never leave it looking complete.
    async fn create(&self, request: &BackupRequest) -> Result<Creation, ProviderError>;
    /// Settles a [`Creation::Pending`] backup: `Creating` while it is not done yet,
    /// `Available` or `Failed` once it is. Asking twice settles once: the answer does not
    /// change once it is final.
    async fn status(&self, handle: &BackupHandle) -> Result<ProviderStatus, ProviderError>;
    /// Deletes the backup; deleting one that is already gone succeeds. `handle.location`
    /// may be the planned location, when the process that made it stopped before the end.
    async fn delete(&self, handle: &BackupHandle) -> Result<(), ProviderError>;
    /// Checks that the backup is whole (SPEC §14) and answers what is wrong with it, empty
    /// when nothing is. Never changes the backup: it only reads. An error means the check
    /// itself could not be made (the backup root is unreadable, the cloud API failed), not
    /// that the backup is damaged.
    async fn verify(&self, handle: &BackupHandle) -> Result<Vec<VerifyProblem>, ProviderError> {
        let _ = handle;
        Err(cannot(self.kind(), "verify backups"))
    }
    /// Checks (and may canonicalize) the target a restore of a backup of `source` asks for,
    /// before anything is recorded or written, so a bad target answers 400 with its field
    /// and code and changes nothing (SPEC §14: a directory restore's path must pass the path
    /// policy and not exist or be an empty directory; an EBS restore's `availabilityZone`,
    /// given as `zone`, must exist in the source's region). This default accepts every
    /// target: a provider that cannot restore refuses in [`restore`](Self::restore).
    async fn check_restore_target(
        &self,
        source: &ClusterRecord,
        target: &ClusterTarget,
        zone: Option<&str>,
    ) -> Result<ClusterTarget, TargetProblem> {
        let _ = (source, zone);
        Ok(target.clone())
    }
    /// Makes a new cluster's data from a backup (SPEC §14): [`Restoration::Done`] when it
    /// is in place at the end of the call, [`Restoration::Pending`] when it continues and
    /// [`restore_status`](Self::restore_status) settles it.
    async fn restore(&self, request: &RestoreRequest) -> Result<Restoration, ProviderError> {
        let _ = request;
        Err(cannot(self.kind(), "restore backups"))
    }
    /// Settles a [`Restoration::Pending`] restore; the answer does not change once final.
    async fn restore_status(&self, handle: &RestoreHandle) -> Result<RestoreStatus, ProviderError> {
        let _ = handle;
        Err(cannot(self.kind(), "restore backups"))
    }
    /// Deletes what a failed restore made, so a failed cluster leaves nothing behind;
    /// discarding what is already gone succeeds.
    async fn discard_restore(&self, handle: &RestoreHandle) -> Result<(), ProviderError> {
        let _ = handle;
        Err(cannot(self.kind(), "restore backups"))
    }
    /// Removes what a restore into `target` left when its process stopped half-way (the
    /// local server's next start): a provider whose restores work beside the target (a
    /// hidden directory) removes them. Nothing to remove succeeds.
    async fn discard_interrupted_restore(
        &self,
        target: &ClusterTarget,
    ) -> Result<(), ProviderError> {
        let _ = target;
        Ok(())
    }
}

/// The error of a provider asked for something its kind does not do.
fn cannot(kind: &str, what: &str) -> ProviderError {
    ProviderError::new(format!(
        "the {kind} provider cannot {what} in this version of backupctl"
    ))
}

/// Arms and disarms the trigger that runs a job on its schedule: an in-process timer
/// locally, EventBridge rules on AWS.
#[async_trait]
pub trait TriggerScheduler: Send + Sync {
    /// Arms (or re-arms) the job's trigger.
    async fn register(&self, job: &JobRecord) -> Result<(), TriggerError>;
    /// Disarms the job's trigger; removing one that does not exist succeeds.
    async fn remove(&self, job_id: &str) -> Result<(), TriggerError>;
    /// Moves an armed job from `old`'s schedule to `new`'s (SPEC §17 updates), all or
    /// nothing: the new trigger is in place before the old one goes, and when arming the new
    /// one fails the old one is armed again and the error returned. This default suits a
    /// kind whose [`register`](Self::register) replaces a job's trigger in place and
    /// leaves it as it was on failure; a kind whose failed `register` removes what it had
    /// (so that a new job leaves nothing behind) overrides it.
    async fn rearm(&self, old: &JobRecord, new: &JobRecord) -> Result<(), TriggerError> {
        match self.register(new).await {
            Ok(()) => Ok(()),
            Err(error) => {
                if let Err(undo) = self.register(old).await {
                    tracing::error!(job_id = %old.id, %undo, "could not arm a job's old schedule again after its new one failed");
                }
                Err(error)
            }
        }
    }
}

/// Hands a queued run to the process that makes it (on AWS: the runner, invoked
/// asynchronously), for a deployment whose API must answer at once (SPEC §16: API Gateway
/// gives up on a request after 30 s). The local server has none: its "run now" continues in
/// a background task of its own.
#[async_trait]
pub trait RunDispatcher: Send + Sync {
    /// Sends the run of `history_id` (job `job_id`, at `scheduled`) on its way; it is
    /// delivered at least once.
    async fn dispatch(
        &self,
        history_id: &str,
        job_id: &str,
        scheduled: DateTime<Utc>,
    ) -> Result<(), TriggerError>;
}

/// The current instant. Injected so tests can drive time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// New ids for jobs, runs and backups.
pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> String;
}
