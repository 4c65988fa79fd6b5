//! The records the engine keeps, in domain terms. Adapters convert them to rows or items;
//! the HTTP shapes of `backup_core::api` are built from them.

use backup_core::api::{
    self, ClusterStatus, ClusterTarget, HistoryItem, JobStatus, RunFailure, Verification,
};
use backup_core::retention::{BackupRecord, BackupStatus};
use backup_core::template::{RenderContext, Template};
use backup_core::Schedule;
use chrono::{DateTime, Utc};

use crate::error::EngineError;

/// How many upcoming firings a job shows (`nextRuns`).
pub const NEXT_RUNS_SHOWN: usize = 5;

/// The organization and project that scope every resource (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub org: String,
    pub project: String,
}

/// Organization and project ids are at most this many characters.
pub const MAX_SCOPE_ID_CHARS: usize = 64;

impl Scope {
    /// Checks both ids: 1–64 ASCII letters, digits, `-`, `_` or `.`, the same alphabet in
    /// every store key, tag and path they end up in.
    pub fn new(org: &str, project: &str) -> Result<Scope, EngineError> {
        let mut problems = crate::error::Problems::default();
        problems.check("organizationId", check_scope_id(org));
        problems.check("projectId", check_scope_id(project));
        problems.into_result()?;
        Ok(Scope {
            org: org.to_owned(),
            project: project.to_owned(),
        })
    }
}

fn check_scope_id(id: &str) -> Result<(), String> {
    let n = id.chars().count();
    if n == 0 || n > MAX_SCOPE_ID_CHARS {
        return Err(format!(
            "An organization or project id is 1 to {MAX_SCOPE_ID_CHARS} characters, such as `default`."
        ));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(
            "An organization or project id may contain only ASCII letters, digits, -, _ and ."
                .to_owned(),
        );
    }
    Ok(())
}

/// A scheduled-backup job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: String,
    pub scope: Scope,
    pub description: String,
    /// The schedule text as the operator wrote it (validated when the job was created).
    pub schedule: String,
    pub status: JobStatus,
    pub cluster_id: String,
    /// The backup description template, as written.
    pub template: String,
    pub max_backup_count: u32,
    pub created: DateTime<Utc>,
}

impl JobRecord {
    /// The stored schedule, parsed again. It was valid when stored, so a failure means the
    /// record was changed behind our back or the rules changed: reported, never a panic.
    pub fn parsed_schedule(&self) -> Result<Schedule, String> {
        Schedule::parse(&self.schedule).map_err(|e| e.to_string())
    }

    /// The API shape, with the next runs after `now` (none once deleted).
    pub fn to_api(&self, now: DateTime<Utc>) -> api::Job {
        let (next_runs, eventbridge) =
            match crate::schedule_cache::view(&self.schedule, now, NEXT_RUNS_SHOWN) {
                Some(view) if self.status == JobStatus::Active => {
                    (view.next_runs, view.eventbridge)
                }
                Some(view) => (Vec::new(), view.eventbridge),
                None => (Vec::new(), Vec::new()),
            };
        api::Job {
            id: self.id.clone(),
            organization_id: self.scope.org.clone(),
            project_id: self.scope.project.clone(),
            description: self.description.clone(),
            schedule: self.schedule.clone(),
            status: self.status,
            job_type: api::SCHEDULED_BACKUP.to_owned(),
            data: api::JobData {
                cluster_id: self.cluster_id.clone(),
                description: self.template.clone(),
                max_backup_count: self.max_backup_count,
            },
            created: self.created,
            next_runs,
            eventbridge,
        }
    }
}

/// A registered cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRecord {
    pub id: String,
    pub scope: Scope,
    pub description: String,
    /// `local` for directory clusters.
    pub region: String,
    pub target: ClusterTarget,
    /// What its registration said of its database server.
    pub server: ClusterServer,
    pub created: DateTime<Utc>,
    /// `available` for a registered cluster (and every cluster a store kept before
    /// restores existed); a restored one is `creating` until its data is in place.
    pub status: ClusterStatus,
    /// Why a restore failed, or what to know of the cluster's state.
    pub details: Option<String>,
    /// The backup it was restored from; `None` for a registered cluster.
    pub source_backup_id: Option<String>,
}

/// What a cluster's registration said of its database server, for its backups to show as
/// esc's `serverVersion`, `serverVersionTag` and `availableNodeCount` (SPEC §17). Every part
/// is optional in the request; a store that has none of it (a cluster registered before)
/// reads it as [`ClusterServer::default`]: versions unknown, one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterServer {
    pub version: Option<String>,
    pub version_tag: Option<String>,
    pub node_count: u32,
}

impl Default for ClusterServer {
    fn default() -> Self {
        ClusterServer {
            version: None,
            version_tag: None,
            node_count: api::DEFAULT_NODE_COUNT,
        }
    }
}

impl ClusterRecord {
    pub fn provider(&self) -> &'static str {
        self.target.provider()
    }

    /// The API's view; `problem` is why its target breaks the provider's policy now.
    pub fn to_api(
        &self,
        lock: Option<api::ClusterLockInfo>,
        problem: Option<String>,
    ) -> api::Cluster {
        api::Cluster {
            id: self.id.clone(),
            description: self.description.clone(),
            region: self.region.clone(),
            target: self.target.clone(),
            server_version: self.server.version.clone(),
            server_version_tag: self.server.version_tag.clone(),
            node_count: self.server.node_count,
            lock,
            problem,
            status: self.status,
            details: self.details.clone(),
            source_backup_id: self.source_backup_id.clone(),
        }
    }
}

/// One backup, scheduled or manual, in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEntry {
    pub id: String,
    pub scope: Scope,
    /// The job that made it; `None` for a manual backup.
    pub job_id: Option<String>,
    pub cluster_id: String,
    pub cluster_description: String,
    /// The provider that made it (`directory`, `aws-ebs`), which is the one that deletes it.
    pub provider: String,
    /// The rendered description.
    pub description: String,
    pub created: DateTime<Utc>,
    pub status: BackupStatus,
    /// Its sequence number within its job (or among the cluster's manual backups), from 1.
    pub index: u64,
    /// Where the provider keeps it (a directory, snapshot ids); `None` until created.
    pub location: Option<String>,
    /// Why it failed, for a `defunct` backup: the stable code (`provider_error`,
    /// `insufficient_space`, …). Manual backups have no history item, so this is where an
    /// operator reads the reason.
    pub error_code: Option<RunFailure>,
    /// One sentence: why it failed, or what an operator must know of a backup that
    /// succeeded (files that changed during the copy, links pointing outside the cluster).
    pub details: Option<String>,
    /// How many bytes the backup holds, as its provider reported when it became available
    /// (a directory copy: the bytes it wrote; EBS: its volumes' sizes); `None` until then,
    /// and for a backup recorded before sizes were.
    pub size_bytes: Option<u64>,
    /// What its last verify found (SPEC §14); `None` until it is verified. Its
    /// `checked_at` is the backup's `verifiedAt`, so the two cannot disagree.
    pub verification: Option<Verification>,
}

impl BackupEntry {
    /// esc's shape of the backup (SPEC §17). `cluster` is its source cluster as registered
    /// now, `None` once deleted: the region, server versions and node count are the
    /// cluster's, since a backup records none of them; without the cluster they read `""`
    /// and 1. The project is the backup's own scope.
    pub fn to_api(&self, cluster: Option<&ClusterRecord>) -> api::Backup {
        let unknown = ClusterServer::default();
        let server = cluster.map_or(&unknown, |c| &c.server);
        api::Backup {
            id: self.id.clone(),
            project_id: self.scope.project.clone(),
            description: self.description.clone(),
            source_cluster_id: self.cluster_id.clone(),
            source_cluster_description: self.cluster_description.clone(),
            provider: api::esc_provider(&self.provider).to_owned(),
            // A deleted cluster's region is gone with it, except what the provider implies:
            // `directory` and `command` clusters are always `local` (SPEC §3).
            region: cluster.map_or_else(
                || match self.provider.as_str() {
                    "directory" | "command" => backup_core::cluster::LOCAL_REGION.to_owned(),
                    _ => String::new(),
                },
                |c| c.region.clone(),
            ),
            server_version: server.version.clone().unwrap_or_default(),
            server_version_tag: server.version_tag.clone().unwrap_or_default(),
            // At most 99 when registered (SPEC §17's 32-bit integer either way).
            available_node_count: i32::try_from(server.node_count).unwrap_or(i32::MAX),
            size_gb: self.size_bytes.map_or(0, api::size_gb),
            created: self.created,
            status: self.status,
            linked_resource: self.job_id.clone(),
            error_code: self.error_code,
            details: self.details.clone(),
            verified_at: self.verification.as_ref().map(|v| v.checked_at),
            verification: self.verification.clone(),
        }
    }

    /// What the retention planner needs.
    pub fn to_retention(&self) -> BackupRecord {
        BackupRecord {
            id: self.id.clone(),
            job_id: self.job_id.clone(),
            created: self.created,
            status: self.status,
        }
    }
}

/// Which backups to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupFilter {
    pub job_id: Option<String>,
    pub cluster_id: Option<String>,
}

/// One run's history record and the scope it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub scope: Scope,
    /// The cluster the run was for (for operators' queries and the AWS table's indexes).
    pub cluster_id: String,
    pub item: HistoryItem,
}

/// What [`RunStore::begin_run`](crate::ports::RunStore::begin_run) found.
// One answer per delivery, moved once: boxing the item would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStart {
    /// No run of this job at this scheduled instant existed: this one is recorded.
    Started,
    /// A run of this job at this instant already exists: here is its history, as it is now.
    AlreadyRan(HistoryItem),
}

/// Who takes a cluster's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// `scheduled-backup`, `manual-backup`, or an operator's maintenance operation.
    pub operation: String,
    pub job_id: Option<String>,
    /// The run (history id) or manual backup id; `None` for a maintenance lock.
    pub run_id: Option<String>,
}

impl Scope {
    /// `item` as this scope's: its `organizationId` and `projectId` set to the scope's.
    /// What every store does to an item it reads back (see [`HistoryItem`]).
    pub fn owns(&self, item: HistoryItem) -> HistoryItem {
        HistoryItem {
            organization_id: self.org.clone(),
            project_id: self.project.clone(),
            ..item
        }
    }
}

/// The operation names of a scheduled run's, a manual backup's and a restore's lock, which
/// an operator's lock may not take (a rule of `backup_core::cluster`, so they are defined
/// there).
pub use backup_core::cluster::{OPERATION_MANUAL, OPERATION_RESTORE, OPERATION_SCHEDULED};

/// The answer of [`ClusterLock::try_acquire`](crate::ports::ClusterLock::try_acquire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquisition {
    /// The caller holds the lock now; keep the fencing token to renew and release it.
    Acquired(api::ClusterLockInfo),
    /// Someone else holds an unexpired lease: here is who and since when.
    Held(api::ClusterLockInfo),
}

/// What a run or manual backup asks of
/// [`BackupWrites::start`](crate::ports::BackupWrites::start).
pub struct StartBackup<'a> {
    pub cluster_id: &'a str,
    pub holder: &'a LockHolder,
    pub now: DateTime<Utc>,
    pub lease: chrono::Duration,
    /// The counter that numbers the backup (`job:<id>`, `manual:<cluster>`).
    pub sequence_key: &'a str,
    /// The backup to record, before it has its number.
    pub backup: &'a BackupDraft,
    /// The run to record in the same write, as
    /// [`RunStore::begin_run`](crate::ports::RunStore::begin_run) records it (only if no
    /// run of its job at its scheduled instant exists): a run's first write, which makes
    /// a second delivery of the same firing start nothing. `None` for a run recorded
    /// already (a claimed "run now") and for a manual backup.
    pub run: Option<&'a HistoryEntry>,
}

/// A backup about to be recorded, everything known but its sequence number and so its
/// rendered description: data, so that the adapter numbers it in the same write that takes
/// the lock, and renders it through [`BackupDraft::numbered`], a pure function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDraft {
    /// The record as it will be stored (status `creating`), `index` and `description` aside.
    pub record: BackupEntry,
    /// The job's (or the manual request's) description template.
    pub template: Template,
    /// What the template may name; `index` aside.
    pub context: RenderContext,
}

impl BackupDraft {
    /// The record with sequence number `index` and its description rendered with it.
    pub fn numbered(&self, index: u64) -> BackupEntry {
        let context = RenderContext {
            index,
            ..self.context.clone()
        };
        BackupEntry {
            index,
            description: self.template.render(&context),
            ..self.record.clone()
        }
    }
}

/// The answer of [`BackupWrites::start`](crate::ports::BackupWrites::start).
// One answer per run, moved once: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The lock is ours and the backup is recorded as `creating`.
    Acquired {
        lock: api::ClusterLockInfo,
        backup: BackupEntry,
    },
    /// Someone else holds an unexpired lease; no number was used and no backup recorded.
    /// [`StartBackup::run`] is recorded all the same (`running`, for the caller to end it
    /// failed), unless it was recorded before: then the answer is `AlreadyRan`.
    Held(api::ClusterLockInfo),
    /// [`StartBackup::run`] was recorded before (another delivery of the same firing):
    /// nothing was written; here is that run's history, as it is now.
    AlreadyRan(HistoryItem),
}

/// The writes that end a backup, a run or both, for
/// [`BackupWrites::finish`](crate::ports::BackupWrites::finish). Each part is optional.
#[derive(Debug, Clone, Default)]
pub struct Finish<'a> {
    /// The backup's final status and location, applied only while it is `creating`.
    pub backup: Option<BackupEnd<'a>>,
    /// The run's final history item.
    pub history: Option<&'a HistoryItem>,
    /// Releases the cluster's lock if that fencing token still holds it.
    pub release: Option<Release<'a>>,
    /// The pending backup this settles: its record is forgotten with the rest.
    pub settled: Option<&'a PendingBackup>,
    /// Writes the history item, the release and `settled` only if the backup's end applies
    /// (the backup was still `creating`). A settle sets it: a second notification of the
    /// same snapshot, racing the first, must change nothing.
    pub together: bool,
}

/// Which lock [`Finish`] releases: the cluster's, if `fencing_token` still holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release<'a> {
    pub cluster_id: &'a str,
    pub fencing_token: u64,
}

#[derive(Debug, Clone)]
pub struct BackupEnd<'a> {
    pub backup_id: &'a str,
    pub status: BackupStatus,
    pub location: Option<&'a str>,
    /// The failure's code, for a backup that ends `defunct`.
    pub error_code: Option<RunFailure>,
    /// The sentence recorded with the backup (why it failed, or what to know of it).
    pub details: Option<&'a str>,
    /// Its size as the provider reported it, for a backup that ends `available`; `None`
    /// leaves the stored size as it was.
    pub size_bytes: Option<u64>,
}

/// What [`BackupWrites::finish`](crate::ports::BackupWrites::finish) did with each of its
/// conditional parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Finished {
    /// The backup's end; `Stale` when it was no longer `creating`.
    pub backup: Applied,
    /// The release; `Stale` when that fencing token no longer held the lock.
    pub release: Applied,
}

/// What became of one conditional part of a [`Finish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Applied {
    /// The part was not asked for.
    #[default]
    NotAsked,
    /// Its condition held and it was written.
    Done,
    /// Its condition no longer held (someone else moved first); nothing changed.
    Stale,
}

impl Applied {
    /// `Done` or `Stale` as a condition that held or not.
    pub fn from_condition(held: bool) -> Applied {
        if held {
            Applied::Done
        } else {
            Applied::Stale
        }
    }
}

/// Where a provider put a backup, as the engine stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupHandle {
    pub backup_id: String,
    /// Provider-specific: a directory path, snapshot ids as JSON, ...
    pub location: String,
    /// Sentences the run's details must carry about a backup that succeeded: files that
    /// changed while they were copied, links whose target is not in the backup, entries
    /// skipped. A torn or partial copy is never silent.
    pub notes: Vec<String>,
    /// What the provider's completion notifications will name, for a backup that settles
    /// later (EBS snapshot ids); empty when it sends none.
    pub keys: Vec<String>,
    /// How many bytes the backup holds, when the provider knows (a directory copy: its
    /// manifest's total). Recorded with the backup when it becomes available.
    pub size_bytes: Option<u64>,
    /// How many of those bytes were linked from an earlier backup rather than copied (an
    /// incremental directory backup), when the provider links.
    pub linked_bytes: Option<u64>,
}

impl BackupHandle {
    /// A handle with no notes or keys (what deleting or polling a backup needs).
    pub fn new(backup_id: impl Into<String>, location: impl Into<String>) -> Self {
        BackupHandle {
            backup_id: backup_id.into(),
            location: location.into(),
            notes: Vec::new(),
            keys: Vec::new(),
            size_bytes: None,
            linked_bytes: None,
        }
    }
}

/// How a provider answered [`create`](crate::ports::BackupProvider::create): a backup made
/// at once, or one started that settles later (EBS snapshots take longer than a Lambda
/// invocation lives, SPEC §16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    /// The backup is complete (a directory copy): nothing is left to settle.
    Done(BackupHandle),
    /// The backup continues outside this call; [`status`](crate::ports::BackupProvider::status)
    /// settles it. The engine settles it at once, waiting within the run's lease; a
    /// deployment whose backups outlive its process settles it later, from an event or a
    /// sweep, with the same call.
    Pending(BackupHandle),
}

impl Creation {
    /// Where the backup is, settled or not.
    pub fn handle(&self) -> &BackupHandle {
        match self {
            Creation::Done(handle) | Creation::Pending(handle) => handle,
        }
    }

    pub fn into_handle(self) -> BackupHandle {
        match self {
            Creation::Done(handle) | Creation::Pending(handle) => handle,
        }
    }
}

/// A backup started and left to settle later (SPEC §16: EBS snapshots outlive the Lambda
/// invocation that starts them), with everything its settling needs, so that a
/// notification settles it from this one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingBackup {
    /// The backup as recorded, `creating`, its location the provider's handle.
    pub backup: BackupEntry,
    /// What the provider's completion notifications name (EBS snapshot ids).
    pub keys: Vec<String>,
    /// The scheduled run waiting on it, or `None` for a manual backup.
    pub run: Option<PendingRun>,
    /// The lock the backup holds until it settles.
    pub fencing_token: u64,
    /// When it was started: its run's `SNAPSHOT_TIMEOUT` counts from here.
    pub started: DateTime<Utc>,
    /// Past this instant the sweeper fails it, and its lock's lease ends.
    pub deadline: DateTime<Utc>,
}

/// The run a [`PendingBackup`] ends: its job (what it prunes by) and its `running` history
/// item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRun {
    pub job: JobRecord,
    pub entry: HistoryEntry,
}

impl PendingBackup {
    /// The provider's handle of the backup.
    pub fn handle(&self) -> BackupHandle {
        BackupHandle {
            backup_id: self.backup.id.clone(),
            location: self.backup.location.clone().unwrap_or_default(),
            notes: Vec::new(),
            keys: self.keys.clone(),
            size_bytes: self.backup.size_bytes,
            linked_bytes: None,
        }
    }
}

/// What a provider's notification says of one piece of a pending backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The piece is complete (EBS: `result: succeeded`).
    Completed,
    /// The piece failed; the sentence says why.
    Failed(String),
}

/// A provider's view of a backup it is making: how a [`Creation::Pending`] one settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    /// Not settled yet: ask again later.
    Creating,
    Available,
    /// It failed; the sentence says why.
    Failed(String),
}

/// What a provider needs to make one backup.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    pub backup_id: String,
    pub job_id: Option<String>,
    pub description: String,
    pub cluster: ClusterRecord,
    /// The backup record's creation instant, which a provider may keep beside the backup
    /// so the catalogue can be rebuilt from the backups alone (SPEC §14).
    pub created: DateTime<Utc>,
    /// The run's scheduled instant (the request's instant for a manual backup): what a
    /// hook sees as `SCHEDULED_TIME` (SPEC §15).
    pub scheduled: DateTime<Utc>,
    /// Where the provider reports that work moves; the engine renews the lease only while
    /// it does, and abandons a backup that made none for its stall limit (SPEC §13).
    pub progress: Progress,
    /// The cluster's newest `available` backup, for a provider that
    /// [links unchanged files](crate::ports::BackupProvider::links_unchanged) from it;
    /// `None` for the others, and when the cluster has none.
    pub base_backup_id: Option<String>,
}

/// A provider's heartbeat: a count of events (a chunk written, an entry copied) and bytes.
/// Shared between the provider's worker and the engine's watchdog; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Progress(std::sync::Arc<ProgressCounters>);

#[derive(Debug, Default)]
struct ProgressCounters {
    events: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// Something moved (an entry listed or created, a status poll that answered).
    pub fn tick(&self) {
        self.0
            .events
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// `n` bytes were written.
    pub fn add_bytes(&self, n: u64) {
        self.0
            .bytes
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.tick();
    }

    /// How many times work moved so far: the watchdog compares two readings.
    pub fn events(&self) -> u64 {
        self.0.events.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What a provider needs to restore one backup into a new cluster (SPEC §14).
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The backup to restore, where its provider keeps it.
    pub backup: BackupHandle,
    /// The cluster the backup was made of, as registered (its target says what the data
    /// looked like; the restore never touches it).
    pub source: ClusterRecord,
    /// The new cluster's id.
    pub cluster_id: String,
    /// The target the operator asked for (a path, an availability zone).
    pub target: ClusterTarget,
    /// An aws-ebs restore's zone (`availabilityZone` of the request), which an EBS target
    /// has no place for: the provider makes the volumes there.
    pub availability_zone: Option<String>,
    /// An aws-ebs restore's volume type (`volumeType`); `None` lets EC2 choose.
    pub volume_type: Option<String>,
    /// Names this restore in what the provider makes (tags, hidden directories).
    pub restore_id: String,
    /// Where the provider reports that work moves, as a backup's copy does.
    pub progress: Progress,
}

/// How a provider answered [`restore`](crate::ports::BackupProvider::restore): the data
/// is in place, or it continues outside the call (EBS volumes being created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restoration {
    /// The new cluster is ready: its final target (a canonical path, the new volume ids).
    Done(ClusterTarget),
    /// The restore continues; [`restore_status`](crate::ports::BackupProvider::restore_status)
    /// settles it.
    Pending(RestoreHandle),
}

/// Where a restore that settles later is, for its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreHandle {
    /// The cluster being restored.
    pub cluster_id: String,
    /// Provider-specific: the new volume ids, a hidden directory, ...
    pub location: String,
    /// What the provider's notifications will name (EBS volume ids); empty when it sends
    /// none.
    pub keys: Vec<String>,
}

/// A provider's view of a restore it is making.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreStatus {
    /// Not settled yet: ask again later.
    Creating,
    /// The data is in place; the new cluster's final target.
    Available(ClusterTarget),
    /// It failed; the sentence says why.
    Failed(String),
}

/// A restore started and left to settle later (SPEC §14, §16: EBS volumes outlive the
/// Lambda invocation that starts them), with everything its settling needs: a volume
/// notification or the sweeper settles it from this one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRestore {
    /// The provider's handle: the new cluster, where its data is being made, and what the
    /// provider's notifications name (EBS volume ids).
    pub handle: RestoreHandle,
    /// The backup it restores.
    pub backup_id: String,
    /// The provider that makes it (`aws-ebs`).
    pub provider: String,
    /// The `restore` lock the new cluster holds until it settles.
    pub fencing_token: u64,
    pub started: DateTime<Utc>,
    /// Past this instant the sweeper fails it, deletes what it made and frees the cluster.
    pub deadline: DateTime<Utc>,
}
