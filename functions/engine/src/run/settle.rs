//! Backups that settle later (SPEC §16). EBS snapshots outlive the Lambda invocation that
//! starts them, so on AWS a run does not wait: [`Engine::park`] records the started backup
//! pending and extends the cluster's lock to the deadline, and the run returns `running`.
//! [`Engine::settle_notice`] settles it from the provider's notification (EC2's `EBS
//! Snapshot Notification`), and [`Engine::sweep`] settles what finished without one, fails
//! what is past its deadline, and cleans up after processes that stopped half-way.
//!
//! Settling is the same [`Engine::conclude`] a run that waited makes: `available`, prune,
//! history, release; or `defunct`, failed history, release. It happens once: the backup's
//! end is conditional on it still being `creating`, and the rest of the settle is written
//! only with it ([`Finish::together`](crate::model::Finish::together)).

use backup_core::api::{HistoryItem, RunFailure, RunStatus};
use backup_core::retention::BackupStatus;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::{EngineError, ProviderError, ProviderErrorCode};
use crate::model::{
    Applied, BackupEnd, BackupEntry, BackupHandle, Notice, PendingBackup, PendingRun,
    ProviderStatus, Release, OPERATION_MANUAL,
};
use crate::run::making::BackupFailure;
use crate::run::{Ending, Made, RunEnd};

/// How many records of each kind one sweep looks at: a sweep is one Lambda invocation, so
/// its work is bounded, and the next sweep (ten minutes later) takes the rest.
pub const SWEEP_PAGE: usize = 50;

/// How long a `queued` run may wait for its delivery before the sweeper fails it: longer
/// than the runner's asynchronous invocations are kept and retried (the template's
/// `MaximumEventAgeInSeconds`, one hour), so a run failed here can no longer arrive.
pub const QUEUED_GRACE: chrono::Duration = chrono::Duration::minutes(70);

/// What a notification settled.
// One answer per notification, moved once: boxing the history item would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// No pending backup has this key: another tool's snapshot (AWS Backup, DLM, a person),
    /// or one settled already. Nothing was written.
    Unknown,
    /// The backup has other pieces still being made; nothing was written.
    NotYet { backup_id: String },
    /// The backup ended `available` or `defunct`, with its run's final history item (`None`
    /// for a manual backup).
    Ended {
        backup_id: String,
        available: bool,
        history: Option<HistoryItem>,
    },
}

/// What one [`Engine::sweep`] did, by backup or history id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Pending backups that finished without a notification, now `available` or `defunct`.
    pub settled: Vec<String>,
    /// Pending backups past their deadline, now `defunct` (`provider_timeout`).
    pub timed_out: Vec<String>,
    /// Runs left `running` by a process that stopped, now `failed` (`interrupted`).
    pub abandoned_runs: Vec<String>,
    /// "Run now" runs whose delivery to the runner was lost, now `failed` (`interrupted`).
    pub lost_runs: Vec<String>,
    /// Backups left `creating` by a process that stopped, now defunct and deleted with
    /// whatever the provider had made of them (found by its tags).
    pub orphans_deleted: Vec<String>,
    /// Deletes a stopped process left `deleting`, now finished.
    pub deletes_finished: Vec<String>,
    /// Pending restores that finished without a notification, by cluster id: the cluster
    /// is now `available` or `failed`.
    pub restores_settled: Vec<String>,
    /// Pending restores past their deadline, by cluster id: what they made is deleted and
    /// the cluster is `failed`.
    pub restores_timed_out: Vec<String>,
    /// What could not be done this time (each is tried again by the next sweep).
    pub problems: Vec<String>,
}

impl Engine {
    /// Records a backup the provider continues as pending, with its run, and extends the
    /// lock to `SNAPSHOT_TIMEOUT` from the backup's start. Answers the run's history item,
    /// still `running` (`None` for a manual backup).
    ///
    /// If it cannot be recorded, nothing would ever settle it: the backup is marked defunct
    /// at once (`store_error`), so the next run prunes what the provider made.
    pub(crate) async fn park(
        &self,
        ending: &Ending<'_>,
        handle: &BackupHandle,
        run: Option<PendingRun>,
    ) -> Option<HistoryItem> {
        let backup = ending.backup;
        let timeout = self.inner.config.settle_later.unwrap_or_default();
        let started = backup.created;
        let deadline =
            started + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        let mut record = backup.clone();
        record.location = Some(handle.location.clone());
        // Kept with the pending record, for the backup's end to record (esc's `sizeGb`).
        record.size_bytes = handle.size_bytes;
        let pending = PendingBackup {
            backup: record,
            keys: handle.keys.clone(),
            run,
            fencing_token: ending.fencing_token,
            started,
            deadline,
        };
        let parked = match &self.inner.pending {
            Some(store) => store.park(&pending).await,
            None => Err(crate::StoreError::Corrupt(
                "this deployment keeps no pending backups".to_owned(),
            )),
        };
        let error = match parked {
            Ok(lock) => {
                if lock == Applied::Stale {
                    tracing::warn!(backup_id = %backup.id, "the lock was lost before the backup was recorded pending; it settles all the same");
                }
                tracing::info!(backup_id = %backup.id, deadline = %deadline, keys = ?pending.keys, "backup started; it settles when the provider completes it");
                return ending.run.map(|(_, item)| item.clone());
            }
            Err(error) => error,
        };
        tracing::error!(backup_id = %backup.id, %error, "could not record a started backup as pending");
        let details = format!(
            "Backup {} of cluster {} was started, but recording it as pending failed \
             ({error}), so it is marked defunct and the next run deletes it.",
            backup.id, backup.cluster_id
        );
        let end = BackupEnd {
            backup_id: &backup.id,
            status: BackupStatus::Defunct,
            location: Some(&handle.location),
            error_code: Some(RunFailure::StoreError),
            details: Some(&details),
            size_bytes: None,
        };
        let release = Some(Release {
            cluster_id: &backup.cluster_id,
            fencing_token: ending.fencing_token,
        });
        let Some((_, item)) = ending.run else {
            self.end_backup(end, release, None).await;
            return None;
        };
        let run_end = RunEnd::Failed {
            failure: RunFailure::StoreError,
            details: details.clone(),
            backup_id: Some(backup.id.clone()),
        };
        Some(self.end_run(item, run_end, Some(end), release, None).await)
    }

    /// Settles the pending backup one of whose pieces the provider's notification names
    /// (`key`, an EBS snapshot id). A key no pending backup has is [`Settled::Unknown`]
    /// and writes nothing; so does a notification delivered again after the backup
    /// settled. A `Completed` piece of a one-piece backup settles it without asking the
    /// provider; otherwise the provider says whether every piece is done.
    pub async fn settle_notice(&self, key: &str, notice: Notice) -> Result<Settled, EngineError> {
        let Some(store) = &self.inner.pending else {
            return Ok(Settled::Unknown);
        };
        let Some(pending) = store.find_pending(key).await? else {
            tracing::debug!(%key, "a notification for nothing pending");
            return Ok(Settled::Unknown);
        };
        let status = match notice {
            Notice::Failed(reason) => ProviderStatus::Failed(format!("{key} failed: {reason}")),
            Notice::Completed if pending.keys.len() == 1 && pending.keys[0] == key => {
                ProviderStatus::Available
            }
            Notice::Completed => self.provider_status(&pending).await?,
        };
        Ok(self.settle(&pending, status, None).await)
    }

    /// Ends `pending` as `status` says (`Creating`: nothing yet), with `code` for a failure
    /// (`provider_error` when `None`).
    async fn settle(
        &self,
        pending: &PendingBackup,
        status: ProviderStatus,
        code: Option<ProviderErrorCode>,
    ) -> Settled {
        let backup_id = pending.backup.id.clone();
        let result = match status {
            ProviderStatus::Creating => return Settled::NotYet { backup_id },
            ProviderStatus::Available => Ok(()),
            ProviderStatus::Failed(reason) => {
                let mut error = ProviderError::new(reason);
                error.code = code.unwrap_or_default();
                Err(BackupFailure::Provider(error))
            }
        };
        let available = result.is_ok();
        let made = Made {
            result,
            location: pending.backup.location.clone().unwrap_or_default(),
            notes: Vec::new(),
            later: None,
            size_bytes: pending.backup.size_bytes,
            linked_bytes: None,
        };
        let ending = Ending {
            run: pending
                .run
                .as_ref()
                .map(|PendingRun { job, entry }| (job, &entry.item)),
            backup: &pending.backup,
            provider: self
                .provider(&pending.backup.provider)
                .map_or("unknown", |p| p.kind()),
            fencing_token: pending.fencing_token,
            settled: Some(pending),
        };
        let history = self.conclude(&ending, made).await;
        Settled::Ended {
            backup_id,
            available,
            history,
        }
    }

    async fn provider_status(
        &self,
        pending: &PendingBackup,
    ) -> Result<ProviderStatus, EngineError> {
        let Some(provider) = self.provider(&pending.backup.provider) else {
            return Err(EngineError::ProviderUnavailable {
                provider: pending.backup.provider.clone(),
                cluster_id: pending.backup.cluster_id.clone(),
            });
        };
        Ok(provider.status(&pending.handle()).await?)
    }

    /// One sweep (SPEC §16), a page of each kind of work:
    /// 1. pending backups: past their deadline, failed `provider_timeout` (lock released);
    ///    otherwise settled if the provider says they finished without a notification;
    /// 2. runs left `running` whose cluster their run no longer holds, and `queued` runs
    ///    never delivered within [`QUEUED_GRACE`]: failed `interrupted`;
    /// 3. backups left `creating` by a process that stopped before recording them pending:
    ///    defunct, and deleted with what the provider made (found by its tags);
    /// 4. deletes left `deleting`: finished.
    ///
    /// A problem with one record is noted and the sweep goes on; the next sweep retries.
    pub async fn sweep(&self) -> Result<SweepReport, EngineError> {
        let mut report = SweepReport::default();
        let now = self.now();
        let mut pending_ids = std::collections::HashSet::new();
        if let Some(store) = &self.inner.pending {
            for pending in store.list_pending(SWEEP_PAGE).await? {
                pending_ids.insert(pending.backup.id.clone());
                let id = pending.backup.id.clone();
                if pending.deadline <= now {
                    let reason = format!(
                        "it did not complete within {} (SNAPSHOT_TIMEOUT), counted from {}",
                        describe_duration(pending.deadline - pending.started),
                        backup_core::civil::format_rfc3339(pending.started)
                    );
                    let status = ProviderStatus::Failed(reason);
                    self.settle(&pending, status, Some(ProviderErrorCode::ProviderTimeout))
                        .await;
                    report.timed_out.push(id);
                    continue;
                }
                match self.provider_status(&pending).await {
                    Ok(ProviderStatus::Creating) => {}
                    Ok(status) => {
                        self.settle(&pending, status, None).await;
                        report.settled.push(id);
                    }
                    Err(error) => report
                        .problems
                        .push(format!("backup {id}: could not ask its provider ({error})")),
                }
            }
        }
        self.sweep_restores(&mut report).await?;
        let store = &self.inner.store;
        let running = store.list_running().await?;
        for entry in page_of(running, now) {
            let item = entry.item;
            if item.status == RunStatus::Queued {
                if item.start_time + QUEUED_GRACE <= now {
                    match self.fail_lost(&item).await {
                        Ok(true) => report.lost_runs.push(item.id),
                        Ok(false) => {}
                        Err(error) => report
                            .problems
                            .push(format!("run {}: could not fail it ({error})", item.id)),
                    }
                }
                continue;
            }
            if item.start_time + self.lease() > now {
                continue;
            }
            let job = match store.get_job(&item.job_id).await {
                Ok(Some(job)) => job,
                Ok(None) => continue,
                Err(error) => {
                    report
                        .problems
                        .push(format!("run {}: could not read its job ({error})", item.id));
                    continue;
                }
            };
            let Some((_, defunct)) = self.abandon_run(&job, &item).await else {
                continue;
            };
            report.abandoned_runs.push(item.id.clone());
            // What the stopped run's provider made is deleted now, not left for retention.
            for id in defunct {
                let deleted = match store.get_backup(&id).await {
                    Ok(Some(backup)) => self.delete_orphan(&backup).await,
                    Ok(None) => Ok(()),
                    Err(error) => Err(error.into()),
                };
                match deleted {
                    Ok(()) => report.orphans_deleted.push(id),
                    Err(error) => report.problems.push(format!(
                        "backup {id}: could not delete what a stopped run left ({error})"
                    )),
                }
            }
        }
        let creating = store.list_backups_in_status(BackupStatus::Creating).await?;
        for backup in page_of(creating, now) {
            if backup.created + self.lease() > now || pending_ids.contains(&backup.id) {
                continue;
            }
            match self.abandoned(&backup).await {
                Ok(false) => {}
                Ok(true) => match self.delete_orphan(&backup).await {
                    Ok(()) => report.orphans_deleted.push(backup.id),
                    Err(error) => report.problems.push(format!(
                        "backup {}: could not delete what a stopped process left ({error})",
                        backup.id
                    )),
                },
                Err(error) => report.problems.push(format!(
                    "backup {}: could not tell whether it is still being made ({error})",
                    backup.id
                )),
            }
        }
        let deleting = store.list_backups_in_status(BackupStatus::Deleting).await?;
        for backup in page_of(deleting, now) {
            match self.delete_backup_entry(&backup).await {
                Ok(_) => report.deletes_finished.push(backup.id),
                Err(error) => report.problems.push(format!(
                    "backup {}: could not finish its delete ({error})",
                    backup.id
                )),
            }
        }
        if report != SweepReport::default() {
            tracing::info!(?report, "sweep");
        }
        Ok(report)
    }

    /// Fails a `queued` run whose delivery never came, only while it is still queued.
    async fn fail_lost(&self, item: &HistoryItem) -> Result<bool, EngineError> {
        let failed = RunEnd::failed(
            RunFailure::Interrupted,
            format!(
                "The runner never received this run (its invocation was lost or expired \
                 within {} minutes), so no backup was made; run the job again.",
                QUEUED_GRACE.num_minutes()
            ),
        )
        .apply(item, self.now());
        let failed_now = self.inner.store.claim_queued(&failed).await?;
        if failed_now {
            self.observe_end(&failed);
        }
        Ok(failed_now)
    }

    /// Whether nobody is making `backup` any more: its cluster's lock is free or held by
    /// another operation than the one that started it. (A pending backup holds its lock
    /// until its deadline, and the sweep's first step settles it.)
    async fn abandoned(&self, backup: &BackupEntry) -> Result<bool, EngineError> {
        let holder = self
            .inner
            .lock
            .current(&backup.cluster_id, self.now())
            .await?;
        Ok(match holder {
            None => true,
            Some(lock) => match &backup.job_id {
                Some(job_id) => lock.job_id.as_deref() != Some(job_id),
                None => {
                    lock.operation != OPERATION_MANUAL || lock.run_id.as_deref() != Some(&backup.id)
                }
            },
        })
    }

    /// Marks an abandoned `creating` backup defunct (`interrupted`) and deletes what its
    /// provider made of it.
    async fn delete_orphan(&self, backup: &BackupEntry) -> Result<(), EngineError> {
        let why = "The process making this backup stopped before it was recorded, so it is \
                   incomplete; the sweeper deleted what had been made of it.";
        self.mark_interrupted(&backup.id, why).await?;
        let mut defunct = backup.clone();
        defunct.status = BackupStatus::Defunct;
        self.delete_backup_entry(&defunct).await?;
        Ok(())
    }
}

/// The [`SWEEP_PAGE`] items of `items` one sweep looks at. When there are more, the page
/// starts a page further at each sweep (every 10 minutes), so records that stay
/// in the list (runs parked for hours, deletes that keep failing) cannot keep the ones
/// behind them from ever being looked at.
fn page_of<T>(mut items: Vec<T>, now: chrono::DateTime<chrono::Utc>) -> impl Iterator<Item = T> {
    if items.len() > SWEEP_PAGE {
        let turn = u64::try_from(now.timestamp().div_euclid(600)).unwrap_or(0);
        // A page further each sweep: every item is looked at within ⌈len / page⌉ sweeps.
        let start =
            usize::try_from(turn.wrapping_mul(SWEEP_PAGE as u64) % items.len() as u64).unwrap_or(0);
        items.rotate_left(start);
    }
    items.into_iter().take(SWEEP_PAGE)
}

/// `90 s`, `45 min`, `24 h`: a duration as an operator wrote it.
pub(super) fn describe_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s % 3600 == 0 && s >= 3600 {
        format!("{} h", s / 3600)
    } else if s % 60 == 0 && s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_is_swept_a_page_at_a_time_from_a_place_that_moves() {
        let at = |minutes: i64| chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(minutes);
        // a short list: all of it, in order
        assert_eq!(
            page_of(vec![1, 2, 3], at(10)).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        // a long one: a page, and over enough sweeps every item
        let items: Vec<usize> = (0..SWEEP_PAGE * 3).collect();
        let mut seen = std::collections::BTreeSet::new();
        for sweep in 0..3 {
            let page: Vec<usize> = page_of(items.clone(), at(sweep * 10)).collect();
            assert_eq!(page.len(), SWEEP_PAGE);
            seen.extend(page);
        }
        assert_eq!(seen.len(), items.len());
    }
}
