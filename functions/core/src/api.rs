//! The JSON shapes of the HTTP API (SPEC §7), defined once for the server, the CLI, the web
//! console and the tests.
//!
//! Paths and names follow the Event Store Cloud orchestrate and mesdb APIs so their clients
//! feel at home: camelCase, `{jobs: [...]}` / `{items: [...]}` / `{backups: [...]}` envelopes,
//! `{id}` for creations. Instants are RFC 3339 in UTC with a `Z` suffix and whole seconds.
//! Request types reject unknown fields, so a typo in a field name is an error instead of a
//! silently ignored setting.

use crate::prelude::*;
use alloc::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::job::{CreateJobRequest, ScheduledBackupData, UpdateJobRequest};
pub use crate::retention::BackupStatus;

/// The only job type there is, named as Event Store Cloud names it.
pub const SCHEDULED_BACKUP: &str = "ScheduledBackup";

/// The `type` of a job, for the OpenAPI document: [`SCHEDULED_BACKUP`] is the only one.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
pub enum JobType {
    ScheduledBackup,
}

/// A backup's `provider` as [`esc_provider`] shows it, for the OpenAPI document.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum BackupProvider {
    Aws,
    Directory,
    Command,
}

/// `active` until deleted; a deleted job stops firing and keeps its history and backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Active,
    Deleted,
}

/// What a job does: back `cluster_id` up, describing each backup with the template
/// `description`, keeping `max_backup_count` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobData {
    pub cluster_id: String,
    pub description: String,
    /// 1 to 1000, as a job is created with (SPEC §4).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub max_backup_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub organization_id: String,
    pub project_id: String,
    pub description: String,
    pub schedule: String,
    pub status: JobStatus,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = JobType))]
    pub job_type: String,
    pub data: JobData,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created: DateTime<Utc>,
    /// The next few firings after the response was made (empty for a deleted job).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_runs: Vec<String>,
    /// The EventBridge expressions the job deploys as.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub eventbridge: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Recorded, and handed to another process that has not started it yet (a "run now"
    /// on AWS, SPEC §16).
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    /// Whether the run has ended (`succeeded` or `failed`).
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }
}

/// Why a run, or a backup, failed: the `errorCode` of a history item and of a backup
/// (SPEC §6, §13). Serde's snake_case names are the stable codes and the one way a failure
/// becomes text ([`Display`](core::fmt::Display) and [`FromStr`](core::str::FromStr) go
/// through them), so stores keep the same text the API shows.
///
/// A stored code this version does not know (written by a newer version, or by hand) reads
/// back as [`RunFailure::Unknown`] rather than making its record unreadable; it is then
/// shown, and written again, as `unknown`. Nothing in this version produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunFailure {
    /// Another operation holds the cluster's lock (SPEC §5).
    ClusterLocked,
    /// The provider failed; the details say how.
    ProviderError,
    /// The job's cluster is no longer registered.
    ClusterNotFound,
    /// The job was deleted before its trigger fired.
    JobNotFound,
    /// This deployment has no provider for the cluster's kind.
    ProviderUnavailable,
    /// The job's stored description template no longer parses.
    InvalidTemplate,
    /// The state store failed during the run.
    StoreError,
    /// The lock's lease expired and another operation took the cluster.
    LockLost,
    /// The process stopped (a shutdown, a crash, a timed-out invocation) before the end.
    Interrupted,
    /// The cluster's path breaks the path policy (SPEC §12).
    PathNotAllowed,
    /// The bytes to write exceed the free space of the backup root (SPEC §13).
    InsufficientSpace,
    /// No progress for the stall limit; the worker was abandoned (SPEC §13).
    ProviderStalled,
    /// The backup did not complete within `SNAPSHOT_TIMEOUT` (SPEC §16).
    ProviderTimeout,
    /// The provider refused to start more work now (EC2's concurrent-snapshot limits); a
    /// later run succeeds (SPEC §16).
    ProviderBusy,
    /// The cluster is not `available`: still being restored (`creating`) or a restore that
    /// failed (SPEC §14).
    ClusterNotAvailable,
    /// A cluster's pre-hook failed, so nothing was copied (SPEC §15); the details hold the
    /// end of its stderr.
    HookFailed,
    /// A stored code this version does not know.
    #[serde(other)]
    Unknown,
}

impl core::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Serde writes a unit variant to a formatter as its name: the one source of the text.
        Serialize::serialize(self, f)
    }
}

impl core::str::FromStr for RunFailure {
    type Err = core::convert::Infallible;

    /// Never fails: a code this version does not know is [`RunFailure::Unknown`].
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        use serde::de::IntoDeserializer;
        let text: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            code.into_deserializer();
        Ok(RunFailure::deserialize(text).unwrap_or(RunFailure::Unknown))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Manual,
}

/// One run of a job, as history shows it: esc's `HistoryItem` (SPEC §17) and our own fields
/// after it (esc ignores fields it does not know).
///
/// `organizationId` and `projectId` are the scope of the job the run belongs to. They are not
/// stored apart from that scope: every store keeps an item under its scope (the engine's
/// `HistoryEntry::scope`) and fills these two from it when it reads the item back, so they
/// cannot disagree with where the item is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    pub id: String,
    pub job_id: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub organization_id: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub project_id: String,
    pub status: RunStatus,
    /// One human sentence: what happened, and for a failure why and what to do.
    pub details: String,
    /// The backup id, or the cluster id when no backup was made.
    pub linked_resource: String,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub start_time: DateTime<Utc>,
    #[serde(
        default,
        with = "rfc3339_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, nullable = false))]
    pub end_time: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub scheduled_time: DateTime<Utc>,
    pub trigger: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub error_code: Option<RunFailure>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub pruned_backup_ids: Vec<String>,
}

/// One backup: esc's `Backup` (SPEC §17: every field it requires is always present, text
/// never null, the two counts 32-bit integers) and our own fields after it.
///
/// Where each of esc's fields comes from (decided in the engine, which builds this shape):
/// `projectId` is the scope the backup is listed in; `region`, `serverVersion`,
/// `serverVersionTag` and `availableNodeCount` are the source cluster's as registered now
/// (`""`, `""`, `""` and 1 once the cluster is deleted, or when it never said); `provider`
/// is [`esc_provider`] of the provider that made it; `sizeGb` is the size the provider
/// reported when the backup became available, in GiB rounded up, and 0 until then (or for
/// a backup made before sizes were recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub id: String,
    pub project_id: String,
    pub description: String,
    pub source_cluster_id: String,
    pub source_cluster_description: String,
    /// `aws` for EBS snapshots, else our provider's name (`directory`, `command`).
    #[cfg_attr(feature = "openapi", schema(value_type = BackupProvider))]
    pub provider: String,
    /// The source cluster's region (`local` for a directory cluster).
    pub region: String,
    pub server_version: String,
    pub server_version_tag: String,
    /// The source cluster's node count (32-bit, as esc reads it).
    pub available_node_count: i32,
    /// The backup's size in GiB, rounded up; 0 while unknown.
    pub size_gb: i32,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created: DateTime<Utc>,
    pub status: BackupStatus,
    /// The job that made it; absent for a manual backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub linked_resource: Option<String>,
    /// Why a `defunct` backup failed (`provider_error`, `insufficient_space`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub error_code: Option<RunFailure>,
    /// Why it failed, or what to know of it (files changed during the copy, links whose
    /// target is not in the backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub details: Option<String>,
    /// When it was last verified (SPEC §14); absent until it is.
    #[serde(
        default,
        with = "rfc3339_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, nullable = false))]
    pub verified_at: Option<DateTime<Utc>>,
    /// What its last verify found; absent until it is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub verification: Option<Verification>,
}

/// One thing a verify found wrong with a backup: the entry (a path inside the backup, or a
/// snapshot id) and what is wrong with it, in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerifyProblem {
    pub path: String,
    pub problem: String,
}

/// A verify's verdict: `ok` when it found nothing wrong, `failed` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VerificationStatus {
    Ok,
    Failed,
}

impl VerificationStatus {
    /// `ok` when there are no problems, `failed` otherwise: the one rule, so the server and
    /// every store agree.
    pub fn of(problems: &[VerifyProblem]) -> VerificationStatus {
        if problems.is_empty() {
            VerificationStatus::Ok
        } else {
            VerificationStatus::Failed
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Ok => "ok",
            VerificationStatus::Failed => "failed",
        }
    }
}

/// The last verify of a backup, as stored with it (SPEC §14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub status: VerificationStatus,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub checked_at: DateTime<Utc>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub problems: Vec<VerifyProblem>,
}

/// `POST /mesdb/…/backups/{backupId}/verify`: what the verify found, also when it found
/// the backup damaged (`status: failed`; the verify itself ran).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub backup_id: String,
    pub status: VerificationStatus,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub checked_at: DateTime<Utc>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub problems: Vec<VerifyProblem>,
}

impl VerifyResponse {
    pub fn new(backup_id: impl Into<String>, verification: Verification) -> VerifyResponse {
        VerifyResponse {
            backup_id: backup_id.into(),
            status: verification.status,
            checked_at: verification.checked_at,
            problems: verification.problems,
        }
    }
}

/// Where a cluster's data lives, by provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "provider", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ClusterTarget {
    /// A data directory on this machine, copied whole into `<data-dir>/backups/`.
    #[serde(rename_all = "camelCase")]
    Directory {
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4096))]
        path: String,
        /// Run with `sh -c` before the copy (to quiesce the database); a failure fails the
        /// run `hook_failed` and nothing is copied (SPEC §15). Needs `serve --allow-commands`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(
            feature = "openapi",
            schema(nullable = false, min_length = 1, max_length = 4096)
        )]
        pre_hook: Option<String>,
        /// Run with `sh -c` after the copy whenever the pre-hook succeeded, also after a
        /// failed copy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(
            feature = "openapi",
            schema(nullable = false, min_length = 1, max_length = 4096)
        )]
        post_hook: Option<String>,
    },
    /// A database's data directory backed up by a command of its own (such as
    /// `pg_basebackup`) that fills `$BACKUP_DIR` (SPEC §15). Needs `serve --allow-commands`.
    #[serde(rename_all = "camelCase")]
    Command {
        /// The database's data directory: checked like a directory cluster's path, and
        /// where a restore into a new cluster puts the data (`TARGET_DIR`).
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4096))]
        path: String,
        #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4096))]
        backup_command: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(
            feature = "openapi",
            schema(nullable = false, min_length = 1, max_length = 4096)
        )]
        restore_command: Option<String>,
        /// The user the commands run as (the server must be root, or be that user).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(
            feature = "openapi",
            schema(nullable = false, pattern = r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$")
        )]
        run_as: Option<String>,
        /// How long a command may run before its whole process group is killed; 3600 when
        /// absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(
            feature = "openapi",
            schema(nullable = false, minimum = 1, maximum = 604800)
        )]
        command_timeout_seconds: Option<u64>,
    },
    /// EBS volumes, named by id or found by an instance tag `KEY=VALUE`.
    #[serde(rename_all = "camelCase")]
    AwsEbs {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        volume_ids: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(nullable = false))]
        instance_tag: Option<String>,
    },
}

/// The `provider` esc shows for a backup made by our provider `kind`: `aws` for `aws-ebs`
/// (esc's table shows cloud providers by their cloud's name), our own name otherwise.
pub fn esc_provider(kind: &str) -> &str {
    match kind {
        "aws-ebs" => "aws",
        other => other,
    }
}

/// A size in bytes as esc's `sizeGb`: GiB rounded up (so 1 byte is 1), at most `i32::MAX`.
pub fn size_gb(bytes: u64) -> i32 {
    const GIB: u64 = 1 << 30;
    i32::try_from(bytes.div_ceil(GIB)).unwrap_or(i32::MAX)
}

/// How long a cluster's command (backup, restore or hook) may run when it does not say.
pub const DEFAULT_COMMAND_TIMEOUT_SECONDS: u64 = 3600;

impl ClusterTarget {
    pub fn provider(&self) -> &'static str {
        match self {
            ClusterTarget::Directory { .. } => "directory",
            ClusterTarget::Command { .. } => "command",
            ClusterTarget::AwsEbs { .. } => "aws-ebs",
        }
    }

    /// A directory target without hooks.
    pub fn directory(path: impl Into<String>) -> ClusterTarget {
        ClusterTarget::Directory {
            path: path.into(),
            pre_hook: None,
            post_hook: None,
        }
    }

    /// The data directory of a `directory` or `command` cluster.
    pub fn path(&self) -> Option<&str> {
        match self {
            ClusterTarget::Directory { path, .. } | ClusterTarget::Command { path, .. } => {
                Some(path)
            }
            ClusterTarget::AwsEbs { .. } => None,
        }
    }

    /// The same target with another data directory (its canonical form).
    pub fn with_path(&self, new: String) -> ClusterTarget {
        let mut target = self.clone();
        if let ClusterTarget::Directory { path, .. } | ClusterTarget::Command { path, .. } =
            &mut target
        {
            *path = new;
        }
        target
    }

    /// Whether the server runs commands for this cluster (a `command` cluster, or hooks),
    /// which only `serve --allow-commands` permits (SPEC §15): the request field to name
    /// when it refuses.
    pub fn command_field(&self) -> Option<&'static str> {
        match self {
            ClusterTarget::Command { .. } => Some("backupCommand"),
            ClusterTarget::Directory {
                pre_hook: Some(_), ..
            } => Some("preHook"),
            ClusterTarget::Directory {
                post_hook: Some(_), ..
            } => Some("postHook"),
            _ => None,
        }
    }
}

/// Who holds a cluster's lock, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClusterLockInfo {
    /// `scheduled-backup`, `manual-backup`, or an operator's maintenance operation name.
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub run_id: Option<String>,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub since: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires: DateTime<Utc>,
    pub fencing_token: u64,
}

/// Whether a cluster's data is in place: a registered cluster is `available`; a restored
/// one is `creating` until its data is, then `available`, or `failed` with the reason in
/// its `details` (SPEC §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ClusterStatus {
    Creating,
    #[default]
    Available,
    Failed,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Creating => "creating",
            ClusterStatus::Available => "available",
            ClusterStatus::Failed => "failed",
        }
    }
}

impl core::fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::str::FromStr for ClusterStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "creating" => Ok(ClusterStatus::Creating),
            "available" => Ok(ClusterStatus::Available),
            "failed" => Ok(ClusterStatus::Failed),
            other => Err(format!(
                "`{other}` is not a cluster status; it is creating, available or failed"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub id: String,
    pub description: String,
    /// `local` for directory clusters.
    pub region: String,
    #[serde(flatten)]
    pub target: ClusterTarget,
    /// The database server's version, as registered (what backups of it show).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub server_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub server_version_tag: Option<String>,
    /// How many nodes the cluster has: 1 unless registered otherwise.
    #[serde(default = "one_node")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub node_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub lock: Option<ClusterLockInfo>,
    /// Why its runs fail now, as `code: sentence`: `path_not_allowed` (its path became a
    /// link, or breaks the server's `--allowed-root` policy), `path_not_found` (its
    /// directory is gone), … or `commands_not_allowed` (it runs commands on a server started
    /// without `--allow-commands`); absent when its target is fine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub problem: Option<String>,
    /// `available` for a registered cluster; a restored one is `creating` until its data
    /// is in place.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub status: ClusterStatus,
    /// Why a restore failed, or what to know of the cluster's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub details: Option<String>,
    /// The backup it was restored from; absent for a registered cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub source_backup_id: Option<String>,
}

/// `POST …/clusters`.
///
/// With `sourceBackupId` it is a restore (SPEC §14): a new cluster made from that backup, at
/// `path` (directory and command backups) or in `availabilityZone` (aws-ebs). A restore may
/// leave `provider` out: it is then `aws-ebs` when `availabilityZone` or `volumeType` is
/// given, `directory` otherwise, and the server checks it against the backup's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", remote = "Self")]
pub struct RegisterClusterRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub id: String,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 256, pattern = r"\S")
    )]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 32))]
    pub region: Option<String>,
    #[serde(flatten)]
    pub target: ClusterTarget,
    /// The database server's version (such as `23.10.1`): at most 64 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub server_version: Option<String>,
    /// Its build tag (such as `23.10.1-jammy`): at most 64 printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub server_version_tag: Option<String>,
    /// How many nodes the cluster has, 1 to 99; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 99))]
    pub node_count: Option<u32>,
    /// Makes the cluster a restore of this backup (an id such as `c196ogto0aeqohe3ommq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[0-9a-v]{20}$", nullable = false)
    )]
    pub source_backup_id: Option<String>,
    /// An aws-ebs restore's availability zone, such as `eu-west-1a`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, nullable = false)
    )]
    pub availability_zone: Option<String>,
    /// An aws-ebs restore's volume type (`gp3` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub volume_type: Option<String>,
}

impl Serialize for RegisterClusterRequest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RegisterClusterRequest::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for RegisterClusterRequest {
    /// The derived form, after giving a restore that left `provider` out the provider its
    /// fields imply (see the type's notes).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut body = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        if !body.contains_key("provider") && body.contains_key("sourceBackupId") {
            let ebs = body.contains_key("availabilityZone") || body.contains_key("volumeType");
            let provider = if ebs { "aws-ebs" } else { "directory" };
            body.insert("provider".to_owned(), provider.into());
        }
        RegisterClusterRequest::deserialize(serde_json::Value::Object(body))
            .map_err(serde::de::Error::custom)
    }
}

impl RegisterClusterRequest {
    /// Whether this registration is a restore (it names a backup).
    pub fn is_restore(&self) -> bool {
        self.source_backup_id.is_some()
    }
}

/// A cluster's node count when its registration did not say.
pub const DEFAULT_NODE_COUNT: u32 = 1;

fn one_node() -> u32 {
    DEFAULT_NODE_COUNT
}

/// `POST …/clusters/{id}/lock`: an operator's maintenance lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockClusterRequest {
    /// What the operator is doing, such as `expand-disk`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub operation: String,
    /// How long the lease lasts unless released; the server's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604800))]
    pub ttl_seconds: Option<u64>,
}

/// `POST /mesdb/…/backups`: a manual backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBackupRequest {
    /// The backup's description template (SPEC §3).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 256, pattern = r"\S")
    )]
    pub description: String,
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub source_cluster_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdResponse {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunJobResponse {
    pub history_id: String,
}

/// `POST /orchestrate/v1/jobs/rearm`: moves the triggers of every active job, of every
/// organization and project, to the deployment's kind (SPEC §16, `backupctl jobs rearm`),
/// a page at a time (`?limit=N&nextToken=T`, both optional).
pub const REARM_JOBS_PATH: &str = "/orchestrate/v1/jobs/rearm";

/// The answer of [`REARM_JOBS_PATH`]: the jobs this request moved, in id order, and, while
/// active jobs remain, the `nextToken` to ask for the next page with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RearmResponse {
    pub rearmed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobList {
    pub jobs: Vec<Job>,
    /// Present when more follow: pass it as `nextToken` for the next page (SPEC §16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobEnvelope {
    pub job: Job,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct HistoryList {
    pub items: Vec<HistoryItem>,
    /// Present when more follow: pass it as `nextToken` for the next page (SPEC §16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BackupList {
    pub backups: Vec<Backup>,
    /// Present when more follow: pass it as `nextToken` for the next page (SPEC §16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClusterList {
    pub clusters: Vec<Cluster>,
    /// Present when more follow: pass it as `nextToken` for the next page (SPEC §16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterEnvelope {
    pub cluster: Cluster,
}

/// `GET /mesdb/…/backups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupEnvelope {
    pub backup: Backup,
}

/// An RFC 7807 problem (`application/problem+json`), with `fields` mapping each request
/// field to what is wrong with it and `problems` mapping it to the same errors with their
/// stable codes (and spans), for clients that act on a code rather than show a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub instance: String,
    /// Field → what to write instead; `{}` when no field is at fault (a 404, a 409), so
    /// every problem has the members SPEC §7 lists.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub fields: BTreeMap<String, String>,
    /// Field → every coded error of that field, for the fields a rule of the core (or a
    /// provider's path policy) found; `fields` joins their messages. A field only the
    /// server's own checks found (a malformed id in the path) is in `fields` alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub problems: BTreeMap<String, Vec<FieldProblem>>,
    /// The stable error code (`cluster_locked`, `job_not_found`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub code: Option<String>,
}

/// One coded error of a field in a 400 answer: a [`FieldError`](crate::FieldError), whose
/// `field` kind is kept for a schedule's errors only (elsewhere the map's key says where it
/// is). The code is kept as text so a client
/// built against an older core still reads an answer with a code it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldProblem {
    /// A stable code such as `required`, `too_long`, `invalid_volume_id`, `path_not_allowed`.
    pub code: String,
    pub message: String,
    /// Of a schedule's error only: the part of the schedule it concerns (`minute`, `hour`,
    /// `dayOfMonth`, `month`, `dayOfWeek`, or `schedule` for the whole), as SPEC §2.2 has
    /// every schedule error carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub field: Option<String>,
    /// The characters to underline, `start`..`end`; absent when the value is not text or
    /// there is nothing to underline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub start: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub end: Option<usize>,
}

impl From<&crate::FieldError> for FieldProblem {
    fn from(error: &crate::FieldError) -> Self {
        use crate::Field;
        // A schedule's error always carries its span (SPEC §2.2), `0..0` for an empty one.
        let schedule = matches!(
            error.field,
            Field::Minute
                | Field::Hour
                | Field::DayOfMonth
                | Field::Month
                | Field::DayOfWeek
                | Field::Schedule
        );
        let span = schedule || error.start < error.end;
        FieldProblem {
            code: error.code.as_str().to_owned(),
            message: error.message.clone(),
            field: schedule.then(|| error.field.as_str().to_owned()),
            start: span.then_some(error.start),
            end: span.then_some(error.end),
        }
    }
}

/// Whole-second RFC 3339 with `Z`, the one format the product prints instants in.
pub mod rfc3339 {
    use crate::prelude::*;
    use chrono::{DateTime, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::civil::format_rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| D::Error::custom(format!("`{text}` is not an RFC 3339 instant: {e}")))
    }
}

/// [`rfc3339`] for optional instants.
pub mod rfc3339_option {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::rfc3339")] DateTime<Utc>);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_failure_is_its_serde_name_everywhere() {
        // GIVEN every code WHEN shown, parsed back and put in JSON THEN all three agree
        for (failure, code) in [
            (RunFailure::ClusterLocked, "cluster_locked"),
            (RunFailure::ProviderError, "provider_error"),
            (RunFailure::ClusterNotFound, "cluster_not_found"),
            (RunFailure::JobNotFound, "job_not_found"),
            (RunFailure::ProviderUnavailable, "provider_unavailable"),
            (RunFailure::InvalidTemplate, "invalid_template"),
            (RunFailure::StoreError, "store_error"),
            (RunFailure::LockLost, "lock_lost"),
            (RunFailure::Interrupted, "interrupted"),
            (RunFailure::PathNotAllowed, "path_not_allowed"),
            (RunFailure::InsufficientSpace, "insufficient_space"),
            (RunFailure::ProviderStalled, "provider_stalled"),
            (RunFailure::ProviderTimeout, "provider_timeout"),
            (RunFailure::ProviderBusy, "provider_busy"),
            (RunFailure::ClusterNotAvailable, "cluster_not_available"),
            (RunFailure::HookFailed, "hook_failed"),
        ] {
            assert_eq!(failure.to_string(), code);
            assert_eq!(code.parse::<RunFailure>(), Ok(failure));
            assert_eq!(
                serde_json::to_value(failure).unwrap(),
                serde_json::json!(code)
            );
        }
    }

    #[test]
    fn esc_reads_sizes_in_whole_gib_rounded_up_and_ebs_as_aws() {
        assert_eq!(size_gb(0), 0);
        assert_eq!(size_gb(1), 1);
        assert_eq!(size_gb(1 << 30), 1);
        assert_eq!(size_gb((1 << 30) + 1), 2);
        assert_eq!(size_gb(u64::MAX), i32::MAX);
        assert_eq!(esc_provider("aws-ebs"), "aws");
        assert_eq!(esc_provider("directory"), "directory");
    }

    #[test]
    fn an_unknown_stored_code_keeps_its_record_readable() {
        // GIVEN a code a newer version wrote WHEN read THEN it is `Unknown`, not an error
        assert_eq!(
            "disk_on_fire".parse::<RunFailure>(),
            Ok(RunFailure::Unknown)
        );
        let item: HistoryItem = serde_json::from_value(serde_json::json!({
            "id": "h1", "jobId": "j1", "status": "failed", "details": "It failed.",
            "linkedResource": "c1", "startTime": "2026-11-30T12:00:00Z",
            "scheduledTime": "2026-11-30T12:00:00Z", "trigger": "schedule",
            "errorCode": "disk_on_fire"
        }))
        .unwrap();
        assert_eq!(item.error_code, Some(RunFailure::Unknown));
    }
}
