//! Restores that settle later (SPEC §14, §16). An EBS restore's volumes take longer than a
//! Lambda invocation lives, so the provider answers [`Restoration::Pending`] and the restore
//! is parked ([`Engine::park_restore`]) with the `restore` lock extended to the deadline;
//! [`Engine::settle_restore_notice`] settles it from EC2's `EBS Volume Notification` and the
//! sweeper ([`Engine::sweep`]) settles what finished without one, and fails what is past
//! its deadline.
//!
//! Settling records the new cluster `available` with its final target (the new volume
//! ids), or deletes what the restore made ([`discard_restore`]) and records it `failed`
//! with the reason; either way the `restore` lock is released and the record forgotten,
//! so a notification delivered again finds nothing and changes nothing. When the volumes
//! cannot be deleted the restore stays pending and the error is answered: the next sweep
//! tries again. A cluster deleted while it was being restored gets nothing: what the
//! restore made is deleted when it settles.
//!
//! The pending record lives in the [`PendingBackups`] port beside pending backups (its
//! `*_restore` methods): one port for "what settles later", no new adapter to wire.
//!
//! [`Restoration::Pending`]: crate::model::Restoration::Pending
//! [`discard_restore`]: crate::ports::BackupProvider::discard_restore
//! [`PendingBackups`]: crate::ports::PendingBackups

use backup_core::api::ClusterStatus;

use crate::engine::Engine;
use crate::error::{EngineError, StoreError};
use crate::model::{Applied, Notice, PendingRestore, RestoreHandle, RestoreStatus};
use crate::run::settle::{describe_duration, SweepReport, SWEEP_PAGE};

/// What a volume notification (or a sweep) did with a pending restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreSettled {
    /// No pending restore has this key: another tool's volume, or a restore settled
    /// already. Nothing was written.
    Unknown,
    /// Some of its volumes are still being made; nothing was written.
    NotYet { cluster_id: String },
    /// The cluster is now `available` or `failed`, and free.
    Ended { cluster_id: String, available: bool },
}

impl Engine {
    /// Records a restore the provider continues (`handle`), made under the `restore` lock
    /// `fencing_token` holds, as pending until `SNAPSHOT_TIMEOUT` from now, and extends
    /// the lock to then. Needs a deployment that settles later ([`Ports::pending`]).
    ///
    /// [`Ports::pending`]: crate::Ports::pending
    pub async fn park_restore(
        &self,
        handle: RestoreHandle,
        backup_id: &str,
        provider: &str,
        fencing_token: u64,
    ) -> Result<PendingRestore, EngineError> {
        let Some(store) = &self.inner.pending else {
            return Err(EngineError::Store(StoreError::Corrupt(
                "this deployment keeps no pending restores".to_owned(),
            )));
        };
        let timeout = self.inner.config.settle_later.unwrap_or_default();
        let started = self.now();
        let deadline =
            started + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        let pending = PendingRestore {
            handle,
            backup_id: backup_id.to_owned(),
            provider: provider.to_owned(),
            fencing_token,
            started,
            deadline,
        };
        if store.park_restore(&pending).await? == Applied::Stale {
            tracing::warn!(cluster_id = %pending.handle.cluster_id, "the restore lock was lost before the restore was recorded pending; it settles all the same");
        }
        tracing::info!(cluster_id = %pending.handle.cluster_id, %deadline, keys = ?pending.handle.keys, "restore started; it settles when the provider completes it");
        Ok(pending)
    }

    /// Settles the pending restore one of whose pieces the provider's notification names
    /// (`key`, an EBS volume id). A key of no pending restore is [`RestoreSettled::Unknown`]
    /// and writes nothing, which is also what a notification delivered again finds.
    pub async fn settle_restore_notice(
        &self,
        key: &str,
        notice: Notice,
    ) -> Result<RestoreSettled, EngineError> {
        let Some(store) = &self.inner.pending else {
            return Ok(RestoreSettled::Unknown);
        };
        let Some(pending) = store.find_pending_restore(key).await? else {
            tracing::debug!(%key, "a volume notification for nothing pending");
            return Ok(RestoreSettled::Unknown);
        };
        let status = match notice {
            Notice::Failed(reason) => RestoreStatus::Failed(format!("{key} failed: {reason}")),
            // The new target names every volume: the provider says whether all are done.
            Notice::Completed => self.restore_status(&pending).await?,
        };
        self.settle_restore(&pending, status).await
    }

    /// Ends `pending` as `status` says (`Creating`: nothing yet): the cluster `available`
    /// with its final target, or what the restore made deleted and the cluster `failed`
    /// with the reason; then the lock released and the record forgotten.
    pub async fn settle_restore(
        &self,
        pending: &PendingRestore,
        status: RestoreStatus,
    ) -> Result<RestoreSettled, EngineError> {
        let cluster_id = pending.handle.cluster_id.clone();
        let (state, details, target) = match status {
            RestoreStatus::Creating => return Ok(RestoreSettled::NotYet { cluster_id }),
            RestoreStatus::Available(target) => (ClusterStatus::Available, None, Some(target)),
            RestoreStatus::Failed(reason) => {
                let provider = self.restore_provider(pending)?;
                provider.discard_restore(&pending.handle).await?;
                let details = format!(
                    "The restore of backup {} failed, and what it had made was deleted: \
                     {reason}",
                    pending.backup_id
                );
                (ClusterStatus::Failed, Some(details), None)
            }
        };
        let available = state == ClusterStatus::Available;
        let store = &self.inner.store;
        let found = store
            .update_cluster_state(&cluster_id, state, details.as_deref(), target.as_ref())
            .await?;
        if !found && available {
            // Deleted while it was being restored: its volumes belong to nothing now.
            tracing::warn!(%cluster_id, "a restore settled for a cluster deleted meanwhile; deleting what it made");
            self.restore_provider(pending)?
                .discard_restore(&pending.handle)
                .await?;
        }
        if !self
            .inner
            .lock
            .release(&cluster_id, pending.fencing_token)
            .await?
        {
            tracing::info!(%cluster_id, "the restore lock was no longer held when the restore settled");
        }
        if let Some(pending_store) = &self.inner.pending {
            pending_store.unpark_restore(pending).await?;
        }
        tracing::info!(%cluster_id, status = %state, details = details.as_deref().unwrap_or_default(), "restore settled");
        Ok(RestoreSettled::Ended {
            cluster_id,
            available,
        })
    }

    fn restore_provider(
        &self,
        pending: &PendingRestore,
    ) -> Result<std::sync::Arc<dyn crate::ports::BackupProvider>, EngineError> {
        self.provider(&pending.provider)
            .ok_or_else(|| EngineError::ProviderUnavailable {
                provider: pending.provider.clone(),
                cluster_id: pending.handle.cluster_id.clone(),
            })
    }

    async fn restore_status(&self, pending: &PendingRestore) -> Result<RestoreStatus, EngineError> {
        Ok(self
            .restore_provider(pending)?
            .restore_status(&pending.handle)
            .await?)
    }

    /// The sweep's part for restores: a page of pending restores, each past its deadline
    /// failed (its volumes deleted, the cluster `failed`, the lock released), the others
    /// settled if the provider says they finished without a notification.
    pub(crate) async fn sweep_restores(&self, report: &mut SweepReport) -> Result<(), EngineError> {
        let Some(store) = &self.inner.pending else {
            return Ok(());
        };
        let now = self.now();
        for pending in store.list_pending_restores(SWEEP_PAGE).await? {
            let id = pending.handle.cluster_id.clone();
            let status = if pending.deadline <= now {
                RestoreStatus::Failed(format!(
                    "it did not complete within {} (SNAPSHOT_TIMEOUT), counted from {}",
                    describe_duration(pending.deadline - pending.started),
                    backup_core::civil::format_rfc3339(pending.started)
                ))
            } else {
                match self.restore_status(&pending).await {
                    Ok(status) => status,
                    Err(error) => {
                        report.problems.push(format!(
                            "restore of cluster {id}: could not ask its provider ({error})"
                        ));
                        continue;
                    }
                }
            };
            let timed_out = pending.deadline <= now;
            match self.settle_restore(&pending, status).await {
                Ok(RestoreSettled::Ended { .. }) if timed_out => report.restores_timed_out.push(id),
                Ok(RestoreSettled::Ended { .. }) => report.restores_settled.push(id),
                Ok(_) => {}
                Err(error) => report.problems.push(format!(
                    "restore of cluster {id}: could not settle it ({error})"
                )),
            }
        }
        Ok(())
    }
}
