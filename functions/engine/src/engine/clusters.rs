//! Clusters (SPEC §5, §12): register (checked against the provider's policy), read and list
//! (with their lock and any policy problem), delete; and operators' maintenance locks.

use std::time::Duration;

use backup_core::api::{self, ClusterLockInfo, LockClusterRequest, RegisterClusterRequest};

use backup_core::cluster;

use super::{check_cluster_field, validate_cluster, Engine};
use crate::error::EngineError;
use crate::model::{Acquisition, ClusterRecord, LockHolder, Scope};
use crate::page::{ListQuery, Listed, Page, Positions};

/// The code of a cluster refused because it would run commands where none may run.
pub const COMMANDS_NOT_ALLOWED: &str = "commands_not_allowed";

impl Engine {
    pub async fn register_cluster(
        &self,
        scope: &Scope,
        request: &RegisterClusterRequest,
    ) -> Result<api::Cluster, EngineError> {
        if request.is_restore() {
            return Err(EngineError::invalid(
                "sourceBackupId",
                "A registration names an existing cluster; a request with sourceBackupId is a \
                 restore, made with Engine::restore_cluster.",
            ));
        }
        let mut cluster = validate_cluster(scope, request, self.now())?;
        if let (Some(field), Some(why)) = (
            cluster.target.command_field(),
            self.inner.config.commands.refusal(),
        ) {
            return Err(EngineError::TargetRefused(crate::error::TargetProblem {
                field,
                code: COMMANDS_NOT_ALLOWED,
                message: format!("{why}."),
            }));
        }
        if let Some(provider) = self.provider(cluster.provider()) {
            cluster.target = provider
                .check_target(&cluster.target)
                .await
                .map_err(EngineError::TargetRefused)?;
        }
        if !self.inner.store.insert_cluster(&cluster).await? {
            return Err(EngineError::ClusterExists(cluster.id));
        }
        tracing::info!(cluster_id = %cluster.id, provider = cluster.provider(), "cluster registered");
        Ok(cluster.to_api(None, None))
    }

    pub(crate) async fn cluster_of_scope(
        &self,
        scope: &Scope,
        cluster_id: &str,
        field: &str,
    ) -> Result<ClusterRecord, EngineError> {
        check_cluster_field(field, cluster_id)?;
        match self.inner.store.get_cluster(cluster_id).await? {
            Some(c) if c.scope == *scope => Ok(c),
            _ => Err(EngineError::ClusterNotFound(cluster_id.to_owned())),
        }
    }

    pub async fn get_cluster(
        &self,
        scope: &Scope,
        cluster_id: &str,
    ) -> Result<api::Cluster, EngineError> {
        let cluster = self
            .cluster_of_scope(scope, cluster_id, "clusterId")
            .await?;
        let lock = self.inner.lock.current(&cluster.id, self.now()).await?;
        let problem = self.target_problem(&cluster).await;
        Ok(cluster.to_api(lock, problem))
    }

    /// Why the cluster's stored target breaks its provider's policy now, if it does. Not
    /// asked of a cluster that is not `available`: a restore's target does not exist until
    /// its data is in place (or ever, when it failed), and its status and details say why.
    async fn target_problem(&self, cluster: &ClusterRecord) -> Option<String> {
        if cluster.status != api::ClusterStatus::Available {
            return None;
        }
        if let (Some(_), Some(why)) = (
            cluster.target.command_field(),
            self.inner.config.commands.refusal(),
        ) {
            return Some(format!(
                "{COMMANDS_NOT_ALLOWED}: its runs fail: it runs commands, and {why}."
            ));
        }
        let provider = self.provider(cluster.provider())?;
        provider
            .recheck_target(&cluster.target)
            .await
            .err()
            .map(|p| format!("{}: {}", p.code, p.message))
    }

    /// A page of the scope's clusters, by id, each with its lock and whether its target
    /// can be backed up now.
    pub async fn list_clusters(
        &self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Listed<api::Cluster>, EngineError> {
        let page = query.request(Positions::Id)?;
        let now = self.now();
        let clusters = self.inner.store.list_clusters(scope, &page).await?;
        let mut out = Vec::new();
        for cluster in clusters.items {
            let lock = self.inner.lock.current(&cluster.id, now).await?;
            let problem = self.target_problem(&cluster).await;
            out.push(cluster.to_api(lock, problem));
        }
        Ok(Listed::from_page(Page {
            items: out,
            next: clusters.next,
        }))
    }

    /// Forgets a cluster. Refused while an active job backs it up or its lock is held, so
    /// nothing scheduled silently starts failing; its backups remain.
    pub async fn delete_cluster(&self, scope: &Scope, cluster_id: &str) -> Result<(), EngineError> {
        let cluster = self
            .cluster_of_scope(scope, cluster_id, "clusterId")
            .await?;
        let job_ids: Vec<String> = self
            .inner
            .store
            .list_active_jobs()
            .await?
            .into_iter()
            .filter(|j| j.cluster_id == cluster.id)
            .map(|j| j.id)
            .collect();
        if !job_ids.is_empty() {
            return Err(EngineError::ClusterInUse {
                cluster_id: cluster.id,
                job_ids,
            });
        }
        if let Some(holder) = self.inner.lock.current(&cluster.id, self.now()).await? {
            return Err(EngineError::ClusterLocked {
                cluster_id: cluster.id,
                holder: Box::new(holder),
            });
        }
        self.inner.store.delete_cluster(&cluster.id).await?;
        tracing::info!(cluster_id = %cluster.id, "cluster deleted");
        Ok(())
    }

    /// Takes an operator's maintenance lock (SPEC §5), failing at once when it is held.
    pub async fn lock_cluster(
        &self,
        scope: &Scope,
        cluster_id: &str,
        request: &LockClusterRequest,
    ) -> Result<ClusterLockInfo, EngineError> {
        let max = self.inner.config.max_maintenance_ttl.as_secs();
        let ttl = cluster::validate_lock_within(request, max)
            .map_err(EngineError::from_problems)?
            .map_or(
                self.inner.config.default_maintenance_ttl,
                Duration::from_secs,
            );
        let cluster = self
            .cluster_of_scope(scope, cluster_id, "clusterId")
            .await?;
        let holder = LockHolder {
            operation: request.operation.clone(),
            job_id: None,
            run_id: None,
        };
        let lease = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        match self
            .inner
            .lock
            .try_acquire(&cluster.id, &holder, self.now(), lease)
            .await?
        {
            Acquisition::Acquired(info) => {
                tracing::info!(cluster_id = %cluster.id, operation = %info.operation, "maintenance lock taken");
                Ok(info)
            }
            Acquisition::Held(holder) => Err(EngineError::ClusterLocked {
                cluster_id: cluster.id,
                holder: Box::new(holder),
            }),
        }
    }

    /// Releases an operator's maintenance lock. A free cluster is fine (nothing to do); a
    /// lock held by a backup is refused, since that backup releases it itself.
    pub async fn unlock_cluster(&self, scope: &Scope, cluster_id: &str) -> Result<(), EngineError> {
        let cluster = self
            .cluster_of_scope(scope, cluster_id, "clusterId")
            .await?;
        let Some(holder) = self.inner.lock.current(&cluster.id, self.now()).await? else {
            return Ok(());
        };
        if holder.run_id.is_some() || holder.job_id.is_some() {
            return Err(EngineError::LockNotMaintenance {
                cluster_id: cluster.id,
                holder: Box::new(holder),
            });
        }
        self.inner
            .lock
            .release(&cluster.id, holder.fencing_token)
            .await?;
        tracing::info!(cluster_id = %cluster.id, "maintenance lock released");
        Ok(())
    }
}
