//! What a successful run prunes (SPEC §4): the retention plan over the job's backups, and
//! the deletes, each through its provider first.

use backup_core::retention::{plan_prune, BackupStatus, MaxBackupCount};

use crate::engine::{Deletion, Engine};
use crate::error::StoreError;
use crate::model::{BackupEntry, JobRecord};

/// The most backups one run prunes: bounds the run's time and its history item (SPEC §16);
/// the next run prunes the rest.
pub const MAX_PRUNED_PER_RUN: usize = 25;

/// What the retention rule selects among `backups` (counting `made` as available), oldest
/// first, never `made` itself.
fn doomed_among(
    job: &JobRecord,
    backups: &[BackupEntry],
    made: &str,
    max: MaxBackupCount,
) -> Vec<BackupEntry> {
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
    plan.prune
        .iter()
        .filter(|d| d.backup_id != made)
        .filter_map(|d| backups.iter().find(|b| b.id == d.backup_id).cloned())
        .collect()
}

impl Engine {
    /// What the retention rule selects among the job's backups (SPEC §4), counting the
    /// backup this run just made (`made`) as available, since it is, even though its record
    /// still says `creating`; and notes on what cannot be pruned.
    ///
    /// The backup this run just made is never selected, even if the rule's tie-break (same
    /// millisecond, then id) ranks it below an older one: deleting less is always safe, and
    /// the next run prunes the surplus.
    pub(super) async fn plan(
        &self,
        job: &JobRecord,
        made: &str,
    ) -> Result<(Vec<BackupEntry>, Vec<String>), StoreError> {
        let Ok(max) = MaxBackupCount::new(i64::from(job.max_backup_count)) else {
            return Ok((
                Vec::new(),
                vec![format!(
                    "the job's maxBackupCount {} is out of range, so nothing was pruned",
                    job.max_backup_count
                )],
            ));
        };
        let listed = self.inner.store.list_job_backups(&job.id).await?;
        let mut doomed = doomed_among(job, &listed, made, max);
        if !doomed.is_empty() {
            // The job this run started with may be old (a snapshot on AWS settles hours
            // later, and the job is read once when the run starts): the job as it is now
            // decides, so a maxBackupCount raised or a job deleted meanwhile never deletes a
            // backup the rule no longer selects (SPEC §4, §6). Read only when something
            // would be deleted, so a run that prunes nothing makes no extra call.
            let now = match self.inner.store.get_job(&job.id).await? {
                Some(now) if now.status == backup_core::api::JobStatus::Active => now,
                _ => {
                    return Ok((
                        Vec::new(),
                        vec![
                            "the job was deleted during the run, so nothing was pruned: a \
                             deleted job's backups stay"
                                .to_owned(),
                        ],
                    ))
                }
            };
            let Ok(max) = MaxBackupCount::new(i64::from(now.max_backup_count)) else {
                return Ok((Vec::new(), Vec::new()));
            };
            // The list may lag (DynamoDB serves its index eventually consistently): before
            // deleting anything, decide again on the records as they are now, read
            // consistently, so a backup another request moved is never counted wrong.
            let ids: Vec<String> = listed.iter().map(|b| b.id.clone()).collect();
            let fresh = self.inner.store.get_backups(&ids).await?;
            doomed = doomed_among(&now, &fresh, made, max);
        }
        let mut notes = Vec::new();
        if doomed.len() > MAX_PRUNED_PER_RUN {
            // Oldest first: the rest wait for the next run, so one run's work and record
            // stay bounded.
            let left = doomed.len() - MAX_PRUNED_PER_RUN;
            doomed.truncate(MAX_PRUNED_PER_RUN);
            notes.push(format!(
                "{left} more backup(s) beyond the job's maxBackupCount are left for the next \
                 run (a run prunes at most {MAX_PRUNED_PER_RUN})"
            ));
        }
        Ok((doomed, notes))
    }

    /// Deletes `doomed`. Returns the ids deleted and a note for each delete that failed
    /// (those backups stay).
    pub(super) async fn prune(&self, doomed: &[BackupEntry]) -> (Vec<String>, Vec<String>) {
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
                        "could not delete backup {} ({error}), so it stays `deleting` until a \
                         retry finishes it",
                        backup.id
                    ));
                }
            }
        }
        (pruned, notes)
    }
}
