//! Recording how a run ended: [`RunEnd`], and the one write of its final history item
//! together with the backup's end and the lock's release.

use backup_core::api::{HistoryItem, RunFailure, RunStatus};
use chrono::{DateTime, Utc};

use crate::engine::Engine;
use crate::model::{Applied, BackupEnd, Finish, Finished, PendingBackup, Release};

/// The longest `details` a history item keeps: a run that prunes many backups or a provider
/// with a long error must never make an item near DynamoDB's 400 KB (SPEC §16); what is cut
/// ends with `…`.
pub const MAX_DETAILS_CHARS: usize = 4000;

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
    pub(crate) fn failed(failure: RunFailure, details: String) -> Self {
        RunEnd::Failed {
            failure,
            details,
            backup_id: None,
        }
    }

    /// The final history item: `item` (the `running` one) ended at `now` this way.
    pub(crate) fn apply(self, item: &HistoryItem, now: DateTime<Utc>) -> HistoryItem {
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
        item.details = crate::text::capped(&item.details, MAX_DETAILS_CHARS);
        item
    }
}

impl Engine {
    /// Step 3: writes the run's final history item, ended as `end`, together with the
    /// backup's end and the lock's release when given. A store failure here is logged (the
    /// run itself is over); the item is returned either way.
    pub(crate) async fn end_run(
        &self,
        item: &HistoryItem,
        end: RunEnd,
        backup: Option<BackupEnd<'_>>,
        release: Option<Release<'_>>,
        settled: Option<&PendingBackup>,
    ) -> HistoryItem {
        let item = end.apply(item, self.now());
        self.end_run_once(&item, backup, release, settled).await;
        item
    }

    /// [`end_run`](Self::end_run) of an item already ended: `false` when it was a settle
    /// that another settle of the same backup beat (its writes were all refused), which
    /// is then neither counted nor logged a second time (SPEC §16: a notification
    /// delivered twice settles once).
    pub(crate) async fn end_run_once(
        &self,
        item: &HistoryItem,
        backup: Option<BackupEnd<'_>>,
        release: Option<Release<'_>>,
        settled: Option<&PendingBackup>,
    ) -> bool {
        let finish = Finish {
            backup,
            history: Some(item),
            release,
            settled,
            together: settled.is_some(),
        };
        let done = self.commit(&finish, &item.id).await;
        if finish.together && done.is_some_and(|d| d.backup == Applied::Stale) {
            // The backup's end was written by another settle. If that one also ended the
            // run, nothing is left; if its process stopped in between, the run is still
            // `running` and this one ends it, without the backup's part.
            if !self.still_running(item).await {
                tracing::info!(history_id = %item.id, "the run was settled already; nothing more to do");
                return false;
            }
            tracing::warn!(history_id = %item.id, "an earlier settle stopped before it ended the run; ending it now");
            let rest = Finish {
                backup: None,
                ..finish
            };
            self.commit(&rest, &item.id).await;
        }
        self.observe_end(item);
        match item.error_code {
            Some(failure) => {
                tracing::warn!(job_id = %item.job_id, history_id = %item.id, code = %failure, details = %item.details, "run failed")
            }
            None => {
                tracing::info!(job_id = %item.job_id, history_id = %item.id, details = %item.details, "run finished")
            }
        }
        true
    }

    /// Whether the run `item` is still recorded `running` (read again from the store):
    /// `false` too when the store cannot say, so that nothing is written twice.
    pub(crate) async fn still_running(&self, item: &HistoryItem) -> bool {
        matches!(
            self.inner.store.get_history(&item.id).await,
            Ok(Some(entry)) if entry.item.status == backup_core::api::RunStatus::Running
        )
    }

    /// Ends a manual backup (it has no history item): its end and the release, and, for a
    /// settle, the pending record.
    pub(crate) async fn end_backup(
        &self,
        end: BackupEnd<'_>,
        release: Option<Release<'_>>,
        settled: Option<&PendingBackup>,
    ) {
        let what = end.backup_id.to_owned();
        let finish = Finish {
            backup: Some(end),
            history: None,
            release,
            settled,
            together: settled.is_some(),
        };
        self.commit(&finish, &what).await;
    }

    /// Applies `finish`, logging what did not go as asked: the lock no longer ours, the
    /// backup no longer `creating`, or the store failing (the lease then frees the cluster).
    pub(crate) async fn commit(&self, finish: &Finish<'_>, what: &str) -> Option<Finished> {
        match self.inner.writes.finish(finish).await {
            Ok(done) => {
                if done.backup == Applied::Stale {
                    tracing::warn!(%what, "the backup had left `creating`; its status was not changed");
                }
                if done.release == Applied::Stale {
                    tracing::warn!(%what, "the lock was no longer ours to release");
                }
                Some(done)
            }
            Err(error) => {
                tracing::error!(%what, %error, "could not record the end of a backup or run; a held lock frees itself when its lease expires");
                None
            }
        }
    }
}
