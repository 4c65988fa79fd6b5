//! The backup catalogue (SPEC §4, §7, §13): list, read, delete (idempotent, provider first
//! and record second), and manual backups, which take the cluster's lock at once and make
//! their copy in the background.

use std::collections::HashMap;
use std::time::Duration;

use backup_core::api::{self, CreateBackupRequest};
use backup_core::retention::BackupStatus;
use backup_core::template::Template;

use backup_core::job::check_cluster_id;

use super::{check_job_id, job_id_message, Engine};
use crate::error::{EngineError, Problems, StoreError};
use crate::model::{
    BackupEntry, BackupFilter, BackupHandle, ClusterRecord, LockHolder, Scope, Started,
    OPERATION_MANUAL,
};
use crate::page::{ListQuery, Listed, Positions};
use crate::run::{Ending, NewBackup};

/// What a delete came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deletion {
    /// This call deleted it.
    Deleted,
    /// It was already deleted, or another request is deleting it (and converges on it).
    ByAnother,
}

impl Engine {
    pub async fn list_backups(
        &self,
        scope: &Scope,
        filter: &BackupFilter,
        query: &ListQuery,
    ) -> Result<Listed<api::Backup>, EngineError> {
        let mut problems = Problems::default();
        if let Some(job_id) = &filter.job_id {
            problems.check("jobId", job_id_message(job_id));
        }
        if let Some(cluster_id) = &filter.cluster_id {
            problems.take("clusterId", check_cluster_id(Some(cluster_id)));
        }
        problems.into_result()?;
        let page = query.request(Positions::InstantThenId)?;
        let backups = self.inner.store.list_backups(scope, filter, &page).await?;
        // Each distinct source cluster is read once per page.
        let mut clusters: HashMap<String, Option<ClusterRecord>> = HashMap::new();
        for backup in &backups.items {
            if !clusters.contains_key(&backup.cluster_id) {
                let cluster = self.source_cluster(scope, backup).await?;
                clusters.insert(backup.cluster_id.clone(), cluster);
            }
        }
        Ok(Listed::from_page(backups.map(|b| {
            let cluster = clusters.get(&b.cluster_id).and_then(Option::as_ref);
            b.to_api(cluster)
        })))
    }

    /// The backup's source cluster as registered now, if it still is (in the backup's
    /// scope: a cluster id registered again elsewhere is not its source).
    pub(crate) async fn source_cluster(
        &self,
        scope: &Scope,
        backup: &BackupEntry,
    ) -> Result<Option<ClusterRecord>, EngineError> {
        Ok(self
            .inner
            .store
            .get_cluster(&backup.cluster_id)
            .await?
            .filter(|c| c.scope == *scope))
    }

    pub(crate) async fn backup_in_scope(
        &self,
        scope: &Scope,
        backup_id: &str,
    ) -> Result<BackupEntry, EngineError> {
        check_job_id("backupId", backup_id)?;
        match self.inner.store.get_backup(backup_id).await? {
            Some(b) if b.scope == *scope => Ok(b),
            _ => Err(EngineError::BackupNotFound(backup_id.to_owned())),
        }
    }

    pub async fn get_backup(
        &self,
        scope: &Scope,
        backup_id: &str,
    ) -> Result<api::Backup, EngineError> {
        let backup = self.backup_in_scope(scope, backup_id).await?;
        let cluster = self.source_cluster(scope, &backup).await?;
        Ok(backup.to_api(cluster.as_ref()))
    }

    /// Deletes a backup through its provider, then marks the record `deleted` (the record
    /// stays). Idempotent (SPEC §13): deleting a backup that is `deleting` or `deleted`
    /// succeeds and converges; one still `creating` is refused.
    pub async fn delete_backup(&self, scope: &Scope, backup_id: &str) -> Result<(), EngineError> {
        let backup = self.backup_in_scope(scope, backup_id).await?;
        self.delete_backup_entry(&backup).await.map(|_| ())
    }

    /// Provider first, record second (SPEC §4). The record passes through `deleting` so a
    /// concurrent prune or delete does not delete it twice; a failed delete puts the status
    /// back, leaving the backup as it was. A backup already `deleting` (another request, or
    /// a process that stopped half-way) is deleted again: the provider's delete is
    /// idempotent, so both converge on `deleted`.
    pub(crate) async fn delete_backup_entry(
        &self,
        backup: &BackupEntry,
    ) -> Result<Deletion, EngineError> {
        let store = &self.inner.store;
        match backup.status {
            BackupStatus::Deleted => return Ok(Deletion::ByAnother),
            BackupStatus::Creating => {
                return Err(EngineError::BackupBusy {
                    backup_id: backup.id.clone(),
                    status: backup.status.to_string(),
                })
            }
            BackupStatus::Deleting => BackupStatus::Deleting,
            status @ (BackupStatus::Available | BackupStatus::Defunct) => {
                if !store
                    .update_backup_status(&backup.id, status, BackupStatus::Deleting)
                    .await?
                {
                    // Someone else changed it meanwhile (a concurrent delete): look again.
                    let now = store.get_backup(&backup.id).await?;
                    return match now.map(|b| b.status) {
                        Some(BackupStatus::Deleted | BackupStatus::Deleting) | None => {
                            Ok(Deletion::ByAnother)
                        }
                        Some(status) => Err(EngineError::BackupBusy {
                            backup_id: backup.id.clone(),
                            status: status.to_string(),
                        }),
                    };
                }
                status
            }
        };
        if let Some(location) = &backup.location {
            let result = match self.provider(&backup.provider) {
                Some(provider) => {
                    provider
                        .delete(&BackupHandle::new(backup.id.clone(), location.clone()))
                        .await
                }
                None => Err(crate::error::ProviderError::new(format!(
                    "this server has no {} backup provider to delete it with",
                    backup.provider
                ))),
            };
            if let Err(error) = result {
                // The provider may have deleted part of it (some snapshots of several): it
                // stays `deleting`, never `available` again, and deleting it again (a retry,
                // the sweeper, start-up recovery) finishes it.
                tracing::warn!(backup_id = %backup.id, %error, "delete failed; the backup stays `deleting` until a retry finishes it");
                return Err(error.into());
            }
        }
        if store
            .update_backup_status(&backup.id, BackupStatus::Deleting, BackupStatus::Deleted)
            .await?
        {
            tracing::info!(backup_id = %backup.id, "backup deleted");
            Ok(Deletion::Deleted)
        } else {
            // A concurrent delete of a `deleting` backup finished first.
            Ok(Deletion::ByAnother)
        }
    }

    /// Starts a manual backup (SPEC §7): checks the request, takes the cluster's lock at once
    /// (or fails with `cluster_locked`), records the backup as `creating` and returns its id;
    /// the copy continues in the background and releases the lock when done. Manual backups
    /// are never pruned.
    pub async fn create_manual_backup(
        &self,
        scope: &Scope,
        request: &CreateBackupRequest,
    ) -> Result<String, EngineError> {
        self.create_manual_backup_within(scope, request, Duration::ZERO)
            .await
    }

    /// [`create_manual_backup`](Self::create_manual_backup), answering once the backup
    /// has ended (available, failed, or handed over to settle later) or `wait` has passed,
    /// whichever comes first (the API's `?wait=`): a client learns the outcome the moment it
    /// is known instead of polling. The backup continues in the background either way.
    pub async fn create_manual_backup_within(
        &self,
        scope: &Scope,
        request: &CreateBackupRequest,
        wait: Duration,
    ) -> Result<String, EngineError> {
        let mut problems = Problems::default();
        let template = problems.take(
            "description",
            backup_core::job::check_manual_description(&request.description),
        );
        problems.take(
            "sourceClusterId",
            check_cluster_id(Some(&request.source_cluster_id)),
        );
        problems.into_result()?;
        let Some(template) = template else {
            return Err(EngineError::invalid(
                "description",
                "The template is invalid.",
            ));
        };
        let cluster = self
            .cluster_of_scope(scope, &request.source_cluster_id, "sourceClusterId")
            .await?;
        Engine::check_available(&cluster)?;
        self.start_manual_backup(scope, cluster, template, wait)
            .await
    }

    /// Takes a manual backup's lock and record, then lets the copy finish in the background,
    /// answering once it has ended or `wait` has passed.
    pub(crate) async fn start_manual_backup(
        &self,
        scope: &Scope,
        cluster: ClusterRecord,
        template: Template,
        wait: Duration,
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
                run: None,
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
            Started::AlreadyRan(history) => {
                return Err(StoreError::Corrupt(format!(
                    "a manual backup was answered with run {}, which it did not ask to record",
                    history.id
                ))
                .into())
            }
        };
        let id = backup.id.clone();
        let engine = self.clone();
        let guard = self.in_flight();
        let (ended, end) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _guard = guard;
            let _ended = ended;
            let made = engine
                .make_backup(&backup, &cluster, &provider, &lock, backup.created)
                .await;
            // A manual backup has no history item: the backup itself says why it failed
            // (SPEC §13), or what to know of it.
            let ending = Ending {
                run: None,
                backup: &backup,
                provider: provider.kind(),
                fencing_token: lock.fencing_token,
                settled: None,
            };
            match &made.later {
                Some(handle) => {
                    engine.park(&ending, handle, None).await;
                }
                None => {
                    engine.conclude(&ending, made).await;
                }
            }
        });
        // The sender is dropped when the task ends, however it ends.
        let _ = tokio::time::timeout(wait, end).await;
        Ok(id)
    }
}
