//! Work a stopped process left behind: at start-up of a single-process deployment, runs
//! left `running`, backups left `creating` and deletes left `deleting`; and, on a redelivery,
//! a run whose process is gone (SPEC §6, §13, §16).

use backup_core::api::{self, HistoryItem, RunFailure, RunStatus};
use backup_core::retention::BackupStatus;

use super::Engine;
use crate::error::EngineError;
use crate::model::JobRecord;
use crate::run::RunEnd;
use crate::text;

impl Engine {
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
            self.observe_end(&item);
            runs += 1;
        }
        let mut backups = 0;
        for backup in store.list_backups_in_status(BackupStatus::Creating).await? {
            let why = "The server stopped while this backup was being made, so it is \
                       incomplete and marked defunct.";
            if self.mark_interrupted(&backup.id, why).await? {
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
        let restores = self.recover_restores().await?;
        if runs + backups + restores > 0 {
            tracing::warn!(
                runs,
                backups,
                restores,
                "marked work interrupted by the last shutdown as failed"
            );
        }
        Ok((runs, backups))
    }

    /// Restores the last process left `creating` (SPEC §14): nobody is making them any
    /// more, so each cluster becomes `failed` saying so, its restore's lock is released and
    /// what the restore left beside its path is removed. Returns how many.
    async fn recover_restores(&self) -> Result<usize, EngineError> {
        let store = &self.inner.store;
        let now = self.now();
        let mut failed = 0;
        for cluster in store.list_creating_clusters().await? {
            let from = cluster
                .source_backup_id
                .as_deref()
                .map_or_else(String::new, |b| format!(" from backup {b}"));
            let why = format!(
                "The server stopped while this cluster was being restored{from}, so nothing \
                 of it was kept: delete it and restore again."
            );
            store
                .update_cluster_state(&cluster.id, api::ClusterStatus::Failed, Some(&why), None)
                .await?;
            failed += 1;
            if let Some(holder) = self.inner.lock.current(&cluster.id, now).await? {
                if holder.operation == crate::model::OPERATION_RESTORE {
                    self.inner
                        .lock
                        .release(&cluster.id, holder.fencing_token)
                        .await?;
                }
            }
            if let Some(provider) = self.provider(cluster.provider()) {
                if let Err(error) = provider.discard_interrupted_restore(&cluster.target).await {
                    tracing::warn!(cluster_id = %cluster.id, %error, "could not remove what an interrupted restore left");
                }
            }
            tracing::warn!(cluster_id = %cluster.id, "marked a restore interrupted by the last shutdown as failed");
        }
        Ok(failed)
    }

    /// Marks a `creating` backup nobody is making any more `defunct` (`interrupted`), saying
    /// `why`; `false` when it had already left `creating`.
    pub(crate) async fn mark_interrupted(
        &self,
        backup_id: &str,
        why: &str,
    ) -> Result<bool, EngineError> {
        let store = &self.inner.store;
        let marked = store
            .update_backup_status(backup_id, BackupStatus::Creating, BackupStatus::Defunct)
            .await?;
        if marked {
            store
                .set_backup_details(backup_id, Some(RunFailure::Interrupted), Some(why))
                .await?;
        }
        Ok(marked)
    }

    /// A delivery of a run that is recorded `running` but whose process is gone (on AWS:
    /// Lambda retries an invocation that timed out or crashed) records it as failed, with
    /// code `interrupted`, and marks the backup it was making `defunct` so the next run
    /// prunes it. Gone means: started more than a lease ago, and the cluster's lock is not
    /// held by this run, since a live run holds it from before its backup starts until its
    /// history is final (a run whose snapshots settle later holds it until they do).
    /// Anything else (it may still be working, or the store cannot tell) changes nothing.
    pub(crate) async fn settle_abandoned(
        &self,
        job: &JobRecord,
        history: HistoryItem,
    ) -> HistoryItem {
        match self.abandon_run(job, &history).await {
            Some((ended, _)) => ended,
            None => history,
        }
    }

    /// [`settle_abandoned`](Self::settle_abandoned)'s work: `None` when the run is not
    /// abandoned, else its final item and the backups it marked defunct.
    pub(crate) async fn abandon_run(
        &self,
        job: &JobRecord,
        history: &HistoryItem,
    ) -> Option<(HistoryItem, Vec<String>)> {
        let now = self.now();
        if history.status != RunStatus::Running || history.start_time + self.lease() > now {
            return None;
        }
        match self.inner.lock.current(&job.cluster_id, now).await {
            // Another operation holds the cluster (a later run whose snapshots are still
            // being made, an operator's maintenance): this run lost it, so it is gone.
            Ok(Some(holder)) if holder.run_id.as_deref() == Some(history.id.as_str()) => {
                return None
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(history_id = %history.id, %error, "could not tell whether a recorded run is still working");
                return None;
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
        let ended = self.end_run(history, end, None, None, None).await;
        Some((ended, defunct))
    }
}
