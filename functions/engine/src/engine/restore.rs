//! Restores (SPEC §14): a new cluster made from a backup, as Event Store Cloud's
//! `clusters create --source-backup-id` does.
//!
//! # Steps
//! 1. The request is checked as a registration (the core's rules, `sourceBackupId`
//!    included); the new id must be unused (`cluster_exists`), the backup must exist in the
//!    scope (404) and be `available` (409 `backup_not_available`), and the requested
//!    provider must be the backup's (a `command` backup restores from a `directory`-shaped
//!    request too: both name a path). The provider then checks the target
//!    ([`check_restore_target`](crate::ports::BackupProvider::check_restore_target)): a bad
//!    one answers 400 with its field and code. Nothing is written until here.
//! 2. The new cluster is recorded `creating` (with `sourceBackupId`) and its lock taken with
//!    operation `restore`.
//! 3. The provider restores, under the lock's lease, renewed while work moves and abandoned
//!    after the stall limit or at shutdown, like a backup's copy.
//! 4. [`Restoration::Done`]: the cluster becomes `available` with its final target, and the
//!    lock is released. A failure: the cluster becomes `failed` with the reason in its
//!    `details`, the provider has left nothing behind, the lock is released, and the caller
//!    gets [`EngineError::RestoreFailed`].
//!
//! # Decisions
//! - **The work runs in a task of its own**, awaited by the request: a client that hangs up
//!   does not abandon a restore half-way (it finishes, and the cluster says how it ended).
//! - **A cluster that is not `available` is not backed up.** While it is `creating` its lock
//!   is held by the restore, so runs fail with `cluster_locked` naming it; runs and manual
//!   backups also check the status itself (a `failed` cluster holds no lock) and fail with
//!   `cluster_not_available`. Jobs may still be created for it: they run once it is
//!   available.
//! - **A pending restore** ([`Restoration::Pending`]: EBS volumes still being made) leaves
//!   the cluster `creating`, with the handle's location in its `details`, and keeps the lock:
//!   its lease is extended to [`EngineConfig::settle_later`](crate::EngineConfig) (or the
//!   normal lease locally) from now. A deployment that settles later parks it
//!   ([`Engine::park_restore`]); its notifications and the sweeper settle it (`run/restores.rs`:
//!   the cluster `available` with the new volumes or `failed` after `discard_restore`, the
//!   lock released).
//! - **A deleted source cluster** does not stop a restore: the backup keeps what it needs,
//!   and the provider is given a record rebuilt from the backup (its id, description and
//!   provider, the requested region; see [`rebuilt_source`]): a command backup is then copied
//!   back, since its restore command went with its cluster.
//! - **Commands** (SPEC §15): on a server that runs none, a restore is refused 400
//!   `commands_not_allowed` when it asks for a command cluster or hooks, or when the backup
//!   is restored by its source's restore command.
//! - **An aws-ebs restore's region** is the backup's cluster's; a request may leave it out
//!   and must not name another (400 `region`).

use backup_core::api::{self, ClusterStatus, ClusterTarget, RegisterClusterRequest};
use backup_core::retention::BackupStatus;

use super::Engine;
use crate::error::EngineError;
use crate::model::{
    Acquisition, BackupEntry, BackupHandle, ClusterRecord, ClusterServer, LockHolder, Progress,
    Restoration, RestoreRequest, Scope, OPERATION_RESTORE,
};

/// How a restore that did not fail ended, with the new cluster as it is now.
#[derive(Debug, Clone)]
pub enum RestoreOutcome {
    /// The data is in place: the cluster is `available`.
    Done(api::Cluster),
    /// The provider continues outside the request: the cluster is `creating`.
    Pending(api::Cluster),
}

impl RestoreOutcome {
    pub fn cluster(&self) -> &api::Cluster {
        match self {
            RestoreOutcome::Done(c) | RestoreOutcome::Pending(c) => c,
        }
    }
}

impl Engine {
    /// Makes a new cluster from a backup (see the module docs).
    pub async fn restore_cluster(
        &self,
        scope: &Scope,
        request: &RegisterClusterRequest,
    ) -> Result<RestoreOutcome, EngineError> {
        let Some(backup_id) = request.source_backup_id.clone() else {
            return Err(EngineError::invalid(
                "sourceBackupId",
                "A restore names the backup to restore: give sourceBackupId.",
            ));
        };
        let mut cluster = super::validate_cluster(scope, request, self.now())?;
        // A restore that would leave a cluster running commands registers one: the same
        // refusal as a registration (SPEC §15).
        let refusal = self.inner.config.commands.refusal();
        if let (Some(field), Some(why)) = (cluster.target.command_field(), refusal) {
            return Err(EngineError::TargetRefused(crate::error::TargetProblem {
                field,
                code: super::COMMANDS_NOT_ALLOWED,
                message: format!("{why}."),
            }));
        }
        if self.inner.store.get_cluster(&cluster.id).await?.is_some() {
            return Err(EngineError::ClusterExists(cluster.id));
        }
        let backup = self.backup_in_scope(scope, &backup_id).await?;
        if backup.status != BackupStatus::Available {
            return Err(EngineError::BackupNotAvailable {
                backup_id: backup.id,
                status: backup.status.as_str().to_owned(),
                action: "restored",
            });
        }
        let requested = cluster.provider();
        if requested != backup.provider
            && !(requested == "directory" && backup.provider == "command")
        {
            return Err(EngineError::invalid(
                "provider",
                format!(
                    "Backup {} was made by the {} provider, so it restores only as a {} \
                     cluster: leave provider out, or write provider {}.",
                    backup.id, backup.provider, backup.provider, backup.provider
                ),
            ));
        }
        let Some(provider) = self.provider(&backup.provider) else {
            return Err(EngineError::ProviderUnavailable {
                cluster_id: cluster.id,
                provider: backup.provider,
            });
        };
        let source = match self.source_cluster(scope, &backup).await? {
            Some(source) => source,
            None => rebuilt_source(&backup, &cluster),
        };
        // The source's restore command runs on this machine: not on a server that runs no
        // commands (SPEC §15), where the files are not copied instead either, since what
        // such a command makes of them is the cluster's own business.
        if let (
            ClusterTarget::Command {
                restore_command: Some(_),
                ..
            },
            Some(why),
        ) = (&source.target, refusal)
        {
            return Err(EngineError::TargetRefused(crate::error::TargetProblem {
                field: "sourceBackupId",
                code: super::COMMANDS_NOT_ALLOWED,
                message: format!(
                    "backup {} is restored by the restore command of cluster {}, and {why}.",
                    backup.id, source.id
                ),
            }));
        }
        if backup.provider == "aws-ebs" {
            if cluster.region.is_empty() {
                cluster.region = source.region.clone();
            } else if cluster.region != source.region {
                return Err(EngineError::invalid(
                    "region",
                    format!(
                        "Backup {} is in region {}, and its volumes can only be made there: \
                         leave region out, or write region {}.",
                        backup.id, source.region, source.region
                    ),
                ));
            }
        }
        cluster.target = provider
            .check_restore_target(
                &source,
                &cluster.target,
                request.availability_zone.as_deref(),
            )
            .await
            .map_err(EngineError::TargetRefused)?;
        cluster.status = ClusterStatus::Creating;
        cluster.source_backup_id = Some(backup.id.clone());
        cluster.details = Some(format!("restoring backup {}", backup.id));
        if !self.inner.store.insert_cluster(&cluster).await? {
            return Err(EngineError::ClusterExists(cluster.id));
        }
        let restore_id = self.inner.ids.new_id();
        let holder = LockHolder {
            operation: OPERATION_RESTORE.to_owned(),
            job_id: None,
            run_id: Some(restore_id.clone()),
        };
        let lock = match self
            .inner
            .lock
            .try_acquire(&cluster.id, &holder, self.now(), self.lease())
            .await
        {
            Ok(Acquisition::Acquired(lock)) => lock,
            Ok(Acquisition::Held(holder)) => {
                // An operator locked the new id meanwhile: undo the record, change nothing.
                self.inner.store.delete_cluster(&cluster.id).await?;
                return Err(EngineError::ClusterLocked {
                    cluster_id: cluster.id,
                    holder: Box::new(holder),
                });
            }
            Err(error) => {
                if let Err(undo) = self.inner.store.delete_cluster(&cluster.id).await {
                    tracing::error!(cluster_id = %cluster.id, %undo, "could not remove a restore's record after its lock failed");
                }
                return Err(error.into());
            }
        };
        tracing::info!(cluster_id = %cluster.id, backup_id = %backup.id, %restore_id, "restore started");
        let request = RestoreRequest {
            backup: BackupHandle::new(
                backup.id.clone(),
                backup.location.clone().unwrap_or_default(),
            ),
            source,
            cluster_id: cluster.id.clone(),
            target: cluster.target.clone(),
            restore_id,
            progress: Progress::default(),
            availability_zone: request.availability_zone.clone(),
            volume_type: request.volume_type.clone(),
        };
        let engine = self.clone();
        let guard = self.in_flight();
        let task = tokio::spawn(async move {
            let _guard = guard;
            engine
                .run_restore(cluster, request, provider, lock.fencing_token)
                .await
        });
        task.await.map_err(|e| {
            EngineError::Provider(crate::error::ProviderError::with_source(
                "the restore task stopped",
                e,
            ))
        })?
    }

    async fn run_restore(
        &self,
        cluster: ClusterRecord,
        request: RestoreRequest,
        provider: std::sync::Arc<dyn crate::ports::BackupProvider>,
        fencing_token: u64,
    ) -> Result<RestoreOutcome, EngineError> {
        let id = cluster.id.clone();
        let backup_id = request.backup.backup_id.clone();
        let progress = request.progress.clone();
        let made = self
            .with_lease(
                &id,
                fencing_token,
                Some(&progress),
                provider.restore(&request),
            )
            .await;
        let reason = match made {
            Ok(Ok(Restoration::Done(target))) => {
                let stored = self
                    .inner
                    .store
                    .update_cluster_state(&id, ClusterStatus::Available, None, Some(&target))
                    .await;
                self.release_restore_lock(&id, fencing_token).await;
                stored?;
                tracing::info!(cluster_id = %id, %backup_id, "restore done");
                let mut done = cluster;
                done.status = ClusterStatus::Available;
                done.details = None;
                done.target = target;
                return Ok(RestoreOutcome::Done(done.to_api(None, None)));
            }
            Ok(Ok(Restoration::Pending(handle))) => {
                let details = format!(
                    "restoring backup {backup_id}: the provider is making {}",
                    handle.location
                );
                self.inner
                    .store
                    .update_cluster_state(&id, ClusterStatus::Creating, Some(&details), None)
                    .await?;
                // A deployment that settles later parks it for the provider's notifications
                // and the sweeper (`run/restores.rs`); otherwise the lock is held for the
                // normal lease.
                let lock = if self.inner.pending.is_some() {
                    self.park_restore(handle.clone(), &backup_id, provider.kind(), fencing_token)
                        .await?;
                    self.inner.lock.current(&id, self.now()).await?
                } else {
                    let hold = self
                        .inner
                        .config
                        .settle_later
                        .and_then(|d| chrono::Duration::from_std(d).ok())
                        .unwrap_or_else(|| self.lease());
                    self.inner
                        .lock
                        .renew(&id, fencing_token, self.now(), hold)
                        .await?
                };
                tracing::info!(cluster_id = %id, %backup_id, location = %handle.location, "restore continues outside the request");
                let mut pending = cluster;
                pending.details = Some(details);
                return Ok(RestoreOutcome::Pending(pending.to_api(lock, None)));
            }
            Ok(Err(error)) => error.message,
            Err(stop) => stop.describe().reason,
        };
        tracing::warn!(cluster_id = %id, %backup_id, %reason, "restore failed");
        if let Err(error) = self
            .inner
            .store
            .update_cluster_state(&id, ClusterStatus::Failed, Some(&reason), None)
            .await
        {
            tracing::error!(cluster_id = %id, %error, "could not record a failed restore");
        }
        self.release_restore_lock(&id, fencing_token).await;
        Err(EngineError::RestoreFailed {
            cluster_id: id,
            backup_id,
            reason,
        })
    }

    async fn release_restore_lock(&self, cluster_id: &str, fencing_token: u64) {
        match self.inner.lock.release(cluster_id, fencing_token).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%cluster_id, "a restore's lock was no longer held when it ended")
            }
            Err(error) => {
                tracing::error!(%cluster_id, %error, "could not release a restore's lock; it expires with its lease")
            }
        }
    }

    /// Refuses to back up a cluster that is not `available` (being restored, or a failed
    /// restore).
    pub(crate) fn check_available(cluster: &ClusterRecord) -> Result<(), EngineError> {
        if cluster.status == ClusterStatus::Available {
            return Ok(());
        }
        Err(EngineError::ClusterNotAvailable {
            cluster_id: cluster.id.clone(),
            status: cluster.status,
            details: cluster.details.clone(),
        })
    }
}

/// The source cluster of a backup whose cluster was deleted since (or whose record a
/// rebuilt catalogue never had): what the backup knows of it, with the requested region.
/// Its data directory and commands are unknown: a `directory` or `command` source is a
/// directory cluster with an empty path, so the files are copied (no restore command) and
/// no path counts as inside it; an `aws-ebs` one takes the requested target.
fn rebuilt_source(backup: &BackupEntry, requested: &ClusterRecord) -> ClusterRecord {
    let target = match backup.provider.as_str() {
        "directory" | "command" => ClusterTarget::directory(String::new()),
        _ => requested.target.clone(),
    };
    ClusterRecord {
        id: backup.cluster_id.clone(),
        scope: backup.scope.clone(),
        description: backup.cluster_description.clone(),
        region: requested.region.clone(),
        target,
        server: ClusterServer::default(),
        created: backup.created,
        status: ClusterStatus::Available,
        details: None,
        source_backup_id: None,
    }
}
