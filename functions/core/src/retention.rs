//! Which of a job's backups a run keeps and which it prunes (SPEC §4).
//!
//! Deleting a backup is the one thing this product does that cannot be undone, so the rule is
//! a pure planner: it reads a list of backup records and returns a [`RetentionPlan`] that
//! names every backup with the reason it is kept or pruned. The engine deletes exactly the
//! plan's `prune` list and can copy the reasons into the run's history, and tests can check
//! the rule on any list without a store or a provider.
//!
//! Decisions the SPEC leaves open, written down here:
//! - Every backup passed in appears exactly once, in `keep` or in `prune`; there is no third
//!   list. The [`Reason`] tells a kept backup of this job (`WithinNewest`) from one the rule
//!   does not touch at all (`ManualBackup`, `OtherJob`, `StillCreating`, ...).
//! - "Newest" orders by creation instant, then by id: of two backups created in the same
//!   instant, the one whose id sorts later (byte-wise) counts as newer. Ids are compared only
//!   to make the order total and repeatable, not because they carry meaning.
//! - Both lists are ordered oldest first (by creation instant, then id), so a run deletes its
//!   oldest backup first and an interrupted prune leaves the newer ones.
//! - The caller includes the run's own new backup (as `available`), so it counts towards
//!   `maxBackupCount` like any other.

use crate::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, Field, FieldError};

/// Where a backup is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    /// The provider is still making it; not usable, and not to be touched.
    Creating,
    /// Complete and restorable.
    Available,
    /// The backup failed; it holds nothing worth keeping.
    Defunct,
    /// A delete is in progress.
    Deleting,
    /// Gone from the provider; the record stays for history.
    Deleted,
}

impl BackupStatus {
    pub const ALL: [BackupStatus; 5] = [
        BackupStatus::Creating,
        BackupStatus::Available,
        BackupStatus::Defunct,
        BackupStatus::Deleting,
        BackupStatus::Deleted,
    ];

    /// The serialized name, as stores and tables write it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Creating => "creating",
            BackupStatus::Available => "available",
            BackupStatus::Defunct => "defunct",
            BackupStatus::Deleting => "deleting",
            BackupStatus::Deleted => "deleted",
        }
    }
}

crate::error::display_as_str!(BackupStatus);

/// A status name that is not one of [`BackupStatus`]'s, as read from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackupStatus(pub String);

impl core::fmt::Display for UnknownBackupStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "unknown backup status {:?}; expected creating, available, defunct, deleting or \
             deleted",
            self.0
        )
    }
}

impl core::error::Error for UnknownBackupStatus {}

impl core::str::FromStr for BackupStatus {
    type Err = UnknownBackupStatus;
    /// Exact, lower-case names only: these come from our own stores, never from people.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackupStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownBackupStatus(s.to_owned()))
    }
}

/// What the planner needs to know about one backup. Adapters build it from their records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    pub id: String,
    /// The job that made it; `None` for a manual backup.
    pub job_id: Option<String>,
    pub created: DateTime<Utc>,
    pub status: BackupStatus,
}

/// How many `available` backups a job keeps: a whole number from 1 to 1000.
///
/// Zero is refused because a job that keeps nothing would delete the backup it has just made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct MaxBackupCount(u32);

impl MaxBackupCount {
    pub const MIN: u32 = 1;
    pub const MAX: u32 = 1000;

    /// Checks the number as the operator gave it. The error's span covers the number as
    /// written in decimal, since that is how a form or a command line shows it.
    pub fn new(value: i64) -> Result<MaxBackupCount, FieldError> {
        match u32::try_from(value) {
            Ok(v) if (Self::MIN..=Self::MAX).contains(&v) => Ok(MaxBackupCount(v)),
            _ => Err(FieldError::new(
                ErrorCode::InvalidValue,
                Field::MaxBackupCount,
                0..value.to_string().len(),
                format!(
                    "maxBackupCount must be a whole number from {} to {}; {value} is not.",
                    Self::MIN,
                    Self::MAX
                ),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for MaxBackupCount {
    type Error = FieldError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        MaxBackupCount::new(value)
    }
}

impl From<MaxBackupCount> for u32 {
    fn from(value: MaxBackupCount) -> u32 {
        value.0
    }
}

impl core::fmt::Display for MaxBackupCount {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a backup is kept or pruned. Serialized as `{"kind": "withinNewest", "rank": 1}` etc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reason {
    /// Kept: one of the job's `max` newest available backups; `rank` 1 is the newest.
    #[serde(rename_all = "camelCase")]
    WithinNewest { rank: usize, max: u32 },
    /// Pruned: an available backup of the job older than its `max` newest.
    #[serde(rename_all = "camelCase")]
    BeyondMaxBackupCount { rank: usize, max: u32 },
    /// Pruned: a failed backup of the job, cleaned up after a successful run.
    Defunct,
    /// Kept: made by hand, so only an operator deletes it.
    ManualBackup,
    /// Kept: another job's backup; each job prunes only its own.
    #[serde(rename_all = "camelCase")]
    OtherJob { job_id: String },
    /// Kept: the provider is still making it.
    StillCreating,
    /// Kept: a delete is already in progress.
    AlreadyDeleting,
    /// Kept: already deleted; only the record remains.
    AlreadyDeleted,
    /// Kept: this run's backup did not become available, so nothing is pruned.
    RunDidNotSucceed,
}

impl Reason {
    /// Whether a backup with this reason is deleted.
    pub fn prunes(&self) -> bool {
        matches!(self, Reason::BeyondMaxBackupCount { .. } | Reason::Defunct)
    }

    /// One sentence for history details and logs.
    pub fn describe(&self) -> String {
        match self {
            Reason::WithinNewest { rank, max } => {
                format!("Kept: it is number {rank} of the job's {max} newest available backups.")
            }
            Reason::BeyondMaxBackupCount { rank, max } => format!(
                "Pruned: it is number {rank} of the job's available backups, and the job keeps \
                 only the {max} newest."
            ),
            Reason::Defunct => {
                "Pruned: the backup failed (defunct) and holds nothing to restore.".to_owned()
            }
            Reason::ManualBackup => {
                "Kept: manual backups are never pruned by a job; delete it by hand if unneeded."
                    .to_owned()
            }
            Reason::OtherJob { job_id } => {
                format!("Kept: it belongs to job {job_id}, which prunes its own backups.")
            }
            Reason::StillCreating => "Kept: the backup is still being created.".to_owned(),
            Reason::AlreadyDeleting => "Kept: the backup is already being deleted.".to_owned(),
            Reason::AlreadyDeleted => "Kept: the backup is already deleted.".to_owned(),
            Reason::RunDidNotSucceed => {
                "Kept: this run's backup did not become available, so the run prunes nothing."
                    .to_owned()
            }
        }
    }
}

/// One backup and what the plan does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub backup_id: String,
    pub reason: Reason,
}

impl Decision {
    pub fn describe(&self) -> String {
        format!("Backup {}: {}", self.backup_id, self.reason.describe())
    }
}

/// Every backup given to [`plan_prune`], split into those kept and those to delete, each list
/// oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPlan {
    pub keep: Vec<Decision>,
    pub prune: Vec<Decision>,
}

impl RetentionPlan {
    /// The ids to delete, oldest first: what a run records as `prunedBackupIds` once done.
    pub fn prune_ids(&self) -> Vec<&str> {
        self.prune.iter().map(|d| d.backup_id.as_str()).collect()
    }
}

/// Plans the pruning that follows a run of job `job_id` (SPEC §4).
///
/// `backups` may hold any backups (all of a cluster's, say): the rule itself picks out the
/// job's own. `run_succeeded` is whether this run's backup became `available`; when it did
/// not, the plan prunes nothing, so a failing provider can never eat into the backups the job
/// still has.
pub fn plan_prune(
    job_id: &str,
    backups: &[BackupRecord],
    max: MaxBackupCount,
    run_succeeded: bool,
) -> RetentionPlan {
    let limit = max.get();
    // The job's available backups, newest first, to rank them.
    let mut available: Vec<usize> = (0..backups.len())
        .filter(|&i| {
            let b = &backups[i];
            b.job_id.as_deref() == Some(job_id) && b.status == BackupStatus::Available
        })
        .collect();
    available.sort_by(|&a, &b| newness(&backups[b]).cmp(&newness(&backups[a])));
    let mut rank_of = vec![0usize; backups.len()];
    for (position, &i) in available.iter().enumerate() {
        rank_of[i] = position + 1;
    }

    let mut order: Vec<usize> = (0..backups.len()).collect();
    // Stable: exact duplicates keep the order they were given in.
    order.sort_by(|&a, &b| newness(&backups[a]).cmp(&newness(&backups[b])));

    let mut plan = RetentionPlan::default();
    for i in order {
        let backup = &backups[i];
        let reason = match backup.job_id.as_deref() {
            None => Reason::ManualBackup,
            Some(other) if other != job_id => Reason::OtherJob {
                job_id: other.to_owned(),
            },
            Some(_) => match backup.status {
                BackupStatus::Creating => Reason::StillCreating,
                BackupStatus::Deleting => Reason::AlreadyDeleting,
                BackupStatus::Deleted => Reason::AlreadyDeleted,
                _ if !run_succeeded => Reason::RunDidNotSucceed,
                BackupStatus::Defunct => Reason::Defunct,
                BackupStatus::Available => {
                    let rank = rank_of[i];
                    // `u32` → `usize` never truncates on the targets we build for (≥ 32 bits).
                    if rank <= limit as usize {
                        Reason::WithinNewest { rank, max: limit }
                    } else {
                        Reason::BeyondMaxBackupCount { rank, max: limit }
                    }
                }
            },
        };
        let decision = Decision {
            backup_id: backup.id.clone(),
            reason,
        };
        if decision.reason.prunes() {
            plan.prune.push(decision);
        } else {
            plan.keep.push(decision);
        }
    }
    plan
}

/// The order "newest" means: creation instant, then id.
fn newness(b: &BackupRecord) -> (DateTime<Utc>, &str) {
    (b.created, b.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const JOB: &str = "job-1";

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap()
    }

    fn backup(id: &str, job: Option<&str>, minutes: i64, status: BackupStatus) -> BackupRecord {
        BackupRecord {
            id: id.to_owned(),
            job_id: job.map(str::to_owned),
            created: at(minutes),
            status,
        }
    }

    fn mine(id: &str, minutes: i64, status: BackupStatus) -> BackupRecord {
        backup(id, Some(JOB), minutes, status)
    }

    fn max(n: i64) -> MaxBackupCount {
        MaxBackupCount::new(n).unwrap()
    }

    fn ids(decisions: &[Decision]) -> Vec<&str> {
        decisions.iter().map(|d| d.backup_id.as_str()).collect()
    }

    fn reason_of<'a>(plan: &'a RetentionPlan, id: &str) -> &'a Reason {
        &plan
            .keep
            .iter()
            .chain(&plan.prune)
            .find(|d| d.backup_id == id)
            .unwrap_or_else(|| panic!("{id} missing from {plan:?}"))
            .reason
    }

    use BackupStatus::*;

    #[test]
    fn keeps_the_newest_and_prunes_older_available_backups_oldest_first() {
        // GIVEN four available backups of the job and maxBackupCount 2
        let backups = [
            mine("b3", 30, Available),
            mine("b1", 10, Available),
            mine("b4", 40, Available),
            mine("b2", 20, Available),
        ];
        // WHEN a successful run plans its pruning
        let plan = plan_prune(JOB, &backups, max(2), true);
        // THEN the two newest are kept and the two oldest pruned, oldest first
        assert_eq!(ids(&plan.prune), ["b1", "b2"]);
        assert_eq!(ids(&plan.keep), ["b3", "b4"]);
        assert_eq!(plan.prune_ids(), ["b1", "b2"]);
        assert_eq!(
            reason_of(&plan, "b4"),
            &Reason::WithinNewest { rank: 1, max: 2 }
        );
        assert_eq!(
            reason_of(&plan, "b1"),
            &Reason::BeyondMaxBackupCount { rank: 4, max: 2 }
        );
    }

    #[test]
    fn fewer_backups_than_the_maximum_prunes_nothing() {
        let backups = [mine("b1", 10, Available), mine("b2", 20, Available)];
        let plan = plan_prune(JOB, &backups, max(5), true);
        assert!(plan.prune.is_empty());
        assert_eq!(ids(&plan.keep), ["b1", "b2"]);
    }

    #[test]
    fn an_empty_list_plans_nothing() {
        assert_eq!(plan_prune(JOB, &[], max(1), true), RetentionPlan::default());
    }

    #[test]
    fn defunct_backups_of_the_job_are_pruned_even_when_recent() {
        // GIVEN a defunct backup newer than every available one
        let backups = [mine("ok", 10, Available), mine("failed", 20, Defunct)];
        // WHEN a successful run plans with room to spare
        let plan = plan_prune(JOB, &backups, max(10), true);
        // THEN the failed backup is cleaned up and the good one kept
        assert_eq!(ids(&plan.prune), ["failed"]);
        assert_eq!(reason_of(&plan, "failed"), &Reason::Defunct);
    }

    #[test]
    fn defunct_backups_do_not_count_towards_the_maximum() {
        // GIVEN one defunct and two available backups, maxBackupCount 2
        let backups = [
            mine("a1", 10, Available),
            mine("d", 15, Defunct),
            mine("a2", 20, Available),
        ];
        let plan = plan_prune(JOB, &backups, max(2), true);
        // THEN both available ones stay: only available backups fill the quota
        assert_eq!(ids(&plan.keep), ["a1", "a2"]);
        assert_eq!(ids(&plan.prune), ["d"]);
    }

    #[test]
    fn a_failed_run_prunes_nothing() {
        // GIVEN more backups than the maximum, and a defunct one
        let backups = [
            mine("b1", 10, Available),
            mine("b2", 20, Available),
            mine("b3", 30, Defunct),
        ];
        // WHEN the run's backup did not become available
        let plan = plan_prune(JOB, &backups, max(1), false);
        // THEN nothing at all is pruned, and the plan says why
        assert!(plan.prune.is_empty());
        assert_eq!(reason_of(&plan, "b1"), &Reason::RunDidNotSucceed);
        assert_eq!(reason_of(&plan, "b3"), &Reason::RunDidNotSucceed);
    }

    #[test]
    fn manual_and_other_jobs_backups_are_never_pruned() {
        // GIVEN old manual and other-job backups, available and defunct, beside the job's own
        let backups = [
            backup("manual", None, 1, Available),
            backup("manual-failed", None, 2, Defunct),
            backup("theirs", Some("job-2"), 3, Available),
            backup("theirs-failed", Some("job-2"), 4, Defunct),
            mine("mine-old", 5, Available),
            mine("mine-new", 6, Available),
        ];
        // WHEN the job keeping one backup prunes
        let plan = plan_prune(JOB, &backups, max(1), true);
        // THEN only the job's own older backup goes
        assert_eq!(ids(&plan.prune), ["mine-old"]);
        assert_eq!(reason_of(&plan, "manual"), &Reason::ManualBackup);
        assert_eq!(reason_of(&plan, "manual-failed"), &Reason::ManualBackup);
        assert_eq!(
            reason_of(&plan, "theirs-failed"),
            &Reason::OtherJob {
                job_id: "job-2".into()
            }
        );
    }

    #[test]
    fn other_jobs_backups_do_not_use_up_this_jobs_quota() {
        // GIVEN a newer backup of another job WHEN the job keeping one prunes
        let backups = [
            mine("mine", 1, Available),
            backup("theirs", Some("job-2"), 2, Available),
        ];
        // THEN the job still keeps its own newest
        let plan = plan_prune(JOB, &backups, max(1), true);
        assert!(plan.prune.is_empty());
        assert_eq!(
            reason_of(&plan, "mine"),
            &Reason::WithinNewest { rank: 1, max: 1 }
        );
    }

    #[test]
    fn backups_in_progress_or_gone_are_left_alone() {
        // GIVEN old backups of the job that are creating, deleting or deleted
        let backups = [
            mine("creating", 1, Creating),
            mine("deleting", 2, Deleting),
            mine("deleted", 3, Deleted),
            mine("newest", 4, Available),
        ];
        let plan = plan_prune(JOB, &backups, max(1), true);
        // THEN none of them is pruned (again) nor counted
        assert!(plan.prune.is_empty());
        assert_eq!(reason_of(&plan, "creating"), &Reason::StillCreating);
        assert_eq!(reason_of(&plan, "deleting"), &Reason::AlreadyDeleting);
        assert_eq!(reason_of(&plan, "deleted"), &Reason::AlreadyDeleted);
        assert_eq!(
            reason_of(&plan, "newest"),
            &Reason::WithinNewest { rank: 1, max: 1 }
        );
    }

    #[test]
    fn a_creating_backup_is_left_alone_even_after_a_failed_run() {
        let plan = plan_prune(JOB, &[mine("c", 1, Creating)], max(1), false);
        assert_eq!(reason_of(&plan, "c"), &Reason::StillCreating);
    }

    #[test]
    fn same_instant_ties_count_the_larger_id_as_newer() {
        // GIVEN three backups created in the same instant
        let backups = [
            mine("b", 10, Available),
            mine("c", 10, Available),
            mine("a", 10, Available),
        ];
        // WHEN the job keeps one THEN the one with the largest id stays, the rest go oldest first
        let plan = plan_prune(JOB, &backups, max(1), true);
        assert_eq!(ids(&plan.keep), ["c"]);
        assert_eq!(ids(&plan.prune), ["a", "b"]);
    }

    #[test]
    fn the_plan_does_not_depend_on_input_order() {
        let mut backups = vec![
            mine("b1", 10, Available),
            mine("b2", 20, Defunct),
            backup("m", None, 5, Available),
            mine("b3", 30, Available),
            mine("b4", 40, Available),
        ];
        let first = plan_prune(JOB, &backups, max(2), true);
        backups.reverse();
        assert_eq!(plan_prune(JOB, &backups, max(2), true), first);
        assert_eq!(ids(&first.keep), ["m", "b3", "b4"]);
        assert_eq!(ids(&first.prune), ["b1", "b2"]);
    }

    #[test]
    fn max_backup_count_accepts_1_to_1000_only() {
        // GIVEN the edges of the range WHEN validated THEN 1 and 1000 pass, 0 and 1001 fail
        assert_eq!(MaxBackupCount::new(1).unwrap().get(), 1);
        assert_eq!(MaxBackupCount::new(1000).unwrap().get(), 1000);
        for bad in [0, -1, 1001, i64::MAX, i64::MIN] {
            let e = MaxBackupCount::new(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidValue);
            assert_eq!(e.field, Field::MaxBackupCount);
            assert_eq!((e.start, e.end), (0, bad.to_string().len()));
            assert!(e.message.contains("from 1 to 1000"), "{}", e.message);
        }
    }

    #[test]
    fn max_backup_count_validates_when_deserialized() {
        let ok: MaxBackupCount = serde_json::from_str("7").unwrap();
        assert_eq!(ok.get(), 7);
        assert_eq!(serde_json::to_string(&ok).unwrap(), "7");
        let err = serde_json::from_str::<MaxBackupCount>("0").unwrap_err();
        assert!(err.to_string().contains("from 1 to 1000"), "{err}");
    }

    #[test]
    fn statuses_use_their_lower_case_names_everywhere() {
        for status in BackupStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_str().parse::<BackupStatus>(), Ok(status));
            assert_eq!(serde_json::from_str::<BackupStatus>(&json).unwrap(), status);
        }
        let err = "Available".parse::<BackupStatus>().unwrap_err();
        assert!(err.to_string().contains("available"), "{err}");
    }

    #[test]
    fn reasons_read_as_sentences_and_serialize_with_a_kind() {
        let d = Decision {
            backup_id: "b1".into(),
            reason: Reason::BeyondMaxBackupCount { rank: 3, max: 2 },
        };
        assert_eq!(
            d.describe(),
            "Backup b1: Pruned: it is number 3 of the job's available backups, and the job keeps \
             only the 2 newest."
        );
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({
                "backupId": "b1",
                "reason": {"kind": "beyondMaxBackupCount", "rank": 3, "max": 2}
            })
        );
        let other = Reason::OtherJob {
            job_id: "j2".into(),
        };
        assert_eq!(
            serde_json::to_value(&other).unwrap(),
            serde_json::json!({"kind": "otherJob", "jobId": "j2"})
        );
        for reason in [
            Reason::WithinNewest { rank: 1, max: 1 },
            Reason::Defunct,
            Reason::ManualBackup,
            other,
            Reason::StillCreating,
            Reason::AlreadyDeleting,
            Reason::AlreadyDeleted,
            Reason::RunDidNotSucceed,
        ] {
            let text = reason.describe();
            assert!(text.ends_with('.'), "{text}");
            assert_eq!(text.starts_with("Pruned"), reason.prunes(), "{text}");
            let back: Reason =
                serde_json::from_value(serde_json::to_value(&reason).unwrap()).unwrap();
            assert_eq!(back, reason);
        }
    }

    fn record_without_id() -> impl Strategy<Value = (Option<String>, i64, BackupStatus)> {
        let job = prop_oneof![
            3 => Just(Some(JOB.to_owned())),
            1 => Just(None),
            1 => Just(Some("job-2".to_owned())),
        ];
        let status = prop::sample::select(BackupStatus::ALL.to_vec());
        // Few distinct instants, so same-instant ties happen often.
        (job, 0i64..20, status)
    }

    /// Backups with unique ids (in an order unrelated to their creation), a maximum and the
    /// run's outcome.
    fn unique_backups() -> impl Strategy<Value = (Vec<BackupRecord>, i64, bool)> {
        prop::collection::vec(record_without_id(), 0..40)
            .prop_flat_map(|records| {
                let n = records.len();
                (
                    Just(records),
                    Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                )
            })
            .prop_map(|(records, ids)| {
                records
                    .into_iter()
                    .zip(ids)
                    .map(|((job_id, minutes, status), id)| BackupRecord {
                        id: format!("b{id:02}"),
                        job_id,
                        created: at(minutes),
                        status,
                    })
                    .collect::<Vec<_>>()
            })
            .prop_flat_map(|backups| (Just(backups), 1i64..=8, any::<bool>()))
    }

    fn is_jobs_available(b: &BackupRecord) -> bool {
        b.job_id.as_deref() == Some(JOB) && b.status == Available
    }

    proptest! {
        #[test]
        fn never_prunes_one_of_the_newest_available((backups, n, ok) in unique_backups()) {
            let plan = plan_prune(JOB, &backups, max(n), ok);
            let mut newest: Vec<&BackupRecord> =
                backups.iter().filter(|b| is_jobs_available(b)).collect();
            newest.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
            for protected in newest.iter().take(n as usize) {
                let pruned = plan.prune_ids().contains(&protected.id.as_str());
                prop_assert!(!pruned, "pruned {}", protected.id);
            }
            if ok {
                // ...and every older available one does go.
                for old in newest.iter().skip(n as usize) {
                    prop_assert!(plan.prune_ids().contains(&old.id.as_str()), "kept {}", old.id);
                }
            }
        }

        #[test]
        fn prunes_only_the_jobs_own_finished_backups((backups, n, ok) in unique_backups()) {
            let plan = plan_prune(JOB, &backups, max(n), ok);
            for id in plan.prune_ids() {
                let b = backups.iter().find(|b| b.id == id).unwrap();
                prop_assert_eq!(b.job_id.as_deref(), Some(JOB), "pruned someone else's backup");
                prop_assert!(matches!(b.status, Available | Defunct), "pruned a {}", b.status);
            }
        }

        #[test]
        fn a_failed_run_never_prunes((backups, n, _ok) in unique_backups()) {
            prop_assert!(plan_prune(JOB, &backups, max(n), false).prune.is_empty());
        }

        #[test]
        fn prune_list_is_oldest_first((backups, n, ok) in unique_backups()) {
            let plan = plan_prune(JOB, &backups, max(n), ok);
            let created: Vec<_> = plan
                .prune_ids()
                .iter()
                .map(|id| {
                    let b = backups.iter().find(|b| b.id == *id).unwrap();
                    (b.created, b.id.clone())
                })
                .collect();
            prop_assert!(created.windows(2).all(|w| w[0] <= w[1]), "{:?}", created);
        }

        #[test]
        fn every_backup_appears_exactly_once_even_with_repeated_ids(
            records in prop::collection::vec(("[a-c]", record_without_id()), 0..40),
            n in 1i64..=8,
            ok in any::<bool>(),
        ) {
            let backups: Vec<BackupRecord> = records
                .into_iter()
                .map(|(id, (job_id, minutes, status))| BackupRecord {
                    id,
                    job_id,
                    created: at(minutes),
                    status,
                })
                .collect();
            let plan = plan_prune(JOB, &backups, max(n), ok);
            let mut given: Vec<&str> = backups.iter().map(|b| b.id.as_str()).collect();
            let mut planned: Vec<&str> =
                plan.keep.iter().chain(&plan.prune).map(|d| d.backup_id.as_str()).collect();
            given.sort_unstable();
            planned.sort_unstable();
            prop_assert_eq!(given, planned);
            prop_assert!(plan.prune.iter().all(|d| d.reason.prunes()));
            prop_assert!(plan.keep.iter().all(|d| !d.reason.prunes()));
        }
    }
}
