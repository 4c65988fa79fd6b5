//! Making one backup under the cluster's lease: record it numbered (`start_backup`), have
//! the provider make it and settle it (`make_backup`, `wait_available`), all while the lease
//! is renewed and the work abandoned when it must stop (`with_lease`). Writes nothing about
//! the outcome: the run or manual backup records it.

use std::future::Future;
use std::sync::Arc;

use backup_core::api::{ClusterLockInfo, RunFailure};
use backup_core::retention::BackupStatus;
use backup_core::template::{RenderContext, Template};
use chrono::{DateTime, Utc};

use crate::engine::Engine;
use crate::error::{ProviderError, StoreError};
use crate::model::{
    BackupDraft, BackupEntry, BackupFilter, BackupHandle, BackupRequest, ClusterRecord, Creation,
    HistoryEntry, LockHolder, Progress, ProviderStatus, Scope, StartBackup, Started,
};
use crate::page::PageRequest;
use crate::ports::BackupProvider;

/// What making a backup came to, before anything about it is written.
pub(crate) struct Made {
    pub(crate) result: Result<(), BackupFailure>,
    /// Where the provider put it (its planned location when `create` failed).
    pub(crate) location: String,
    /// What the provider says an operator must know of a backup that succeeded.
    pub(crate) notes: Vec<String>,
    /// The provider's handle when the backup was started and left to settle later
    /// ([`EngineConfig::settle_later`](crate::EngineConfig::settle_later)): `result` is
    /// then `Ok` and says nothing yet of how it ends.
    pub(crate) later: Option<BackupHandle>,
    /// The backup's size, when the provider reported it.
    pub(crate) size_bytes: Option<u64>,
    /// How much of it was linked from an earlier backup, when the provider links.
    pub(crate) linked_bytes: Option<u64>,
}

/// Why making a backup failed, for the history's `errorCode` and details.
pub(crate) enum BackupFailure {
    Provider(ProviderError),
    Stopped(Stop),
}

/// A failure's stable code and its reason, as the end of a sentence.
pub(crate) struct Cause {
    pub(crate) failure: RunFailure,
    pub(crate) reason: String,
}

impl BackupFailure {
    pub(crate) fn describe(&self, provider: &str) -> Cause {
        match self {
            BackupFailure::Provider(e) => Cause {
                failure: e.code.into(),
                reason: format!("the {provider} provider failed: {}", e.message),
            },
            BackupFailure::Stopped(stop) => stop.describe(),
        }
    }
}

/// Why [`Engine::with_lease`] gave up on its work (and dropped it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The lease ran out and someone else took the lock while we worked.
    LeaseLost,
    /// The provider made no progress for the stall limit (SPEC §13).
    Stalled(std::time::Duration),
    /// The server is shutting down.
    Interrupted,
}

impl Stop {
    pub(crate) fn describe(self) -> Cause {
        let (failure, reason) = match self {
            Stop::LeaseLost => (
                RunFailure::LockLost,
                "its lock's lease expired and another operation took the cluster".to_owned(),
            ),
            Stop::Stalled(limit) => (
                RunFailure::ProviderStalled,
                format!(
                    "the provider made no progress for {} seconds, so the backup was abandoned \
                     (a file system that stopped answering, such as a hung network mount)",
                    limit.as_secs()
                ),
            ),
            Stop::Interrupted => (
                RunFailure::Interrupted,
                "the server was shutting down, so the copy was stopped".to_owned(),
            ),
        };
        Cause { failure, reason }
    }
}

/// What [`Engine::start_backup`] needs to record a new backup.
pub(crate) struct NewBackup<'a> {
    pub(crate) scope: &'a Scope,
    pub(crate) cluster: &'a ClusterRecord,
    pub(crate) provider: &'a dyn BackupProvider,
    pub(crate) job_id: Option<&'a str>,
    pub(crate) sequence_key: &'a str,
    pub(crate) template: &'a Template,
    pub(crate) datetime: DateTime<Utc>,
    pub(crate) holder: &'a LockHolder,
    pub(crate) backup_id: String,
    /// The run to record with the backup, when it is not recorded yet.
    pub(crate) run: Option<&'a HistoryEntry>,
}

impl Engine {
    /// Takes the cluster's lock and, with it, numbers, names and records a new backup as
    /// `creating` at its planned location.
    pub(crate) async fn start_backup(&self, new: NewBackup<'_>) -> Result<Started, StoreError> {
        let NewBackup {
            scope,
            cluster,
            provider,
            job_id,
            sequence_key,
            template,
            datetime,
            holder,
            backup_id,
            run,
        } = new;
        let now = self.now();
        let location = provider.planned_location(&BackupRequest {
            backup_id: backup_id.clone(),
            job_id: job_id.map(str::to_owned),
            description: String::new(),
            cluster: cluster.clone(),
            created: now,
            scheduled: datetime,
            progress: Progress::default(),
            base_backup_id: None,
        });
        let draft = BackupDraft {
            record: BackupEntry {
                id: backup_id,
                scope: scope.clone(),
                job_id: job_id.map(str::to_owned),
                cluster_id: cluster.id.clone(),
                cluster_description: cluster.description.clone(),
                provider: cluster.provider().to_owned(),
                description: String::new(),
                created: now,
                status: BackupStatus::Creating,
                index: 0,
                location: Some(location),
                error_code: None,
                details: None,
                size_bytes: None,
                verification: None,
            },
            template: template.clone(),
            context: RenderContext {
                cluster_id: cluster.id.clone(),
                cluster_description: cluster.description.clone(),
                cluster_provider: cluster.provider().to_owned(),
                cluster_region: cluster.region.clone(),
                index: 0,
                datetime,
            },
        };
        let started = self
            .inner
            .writes
            .start(&StartBackup {
                cluster_id: &cluster.id,
                holder,
                now,
                lease: self.lease(),
                sequence_key,
                backup: &draft,
                run,
            })
            .await?;
        if matches!(started, Started::Held(_)) {
            self.observe(|o| o.lock_conflict());
        }
        Ok(started)
    }

    /// Has the provider make the backup and waits until it is available, renewing the lease
    /// meanwhile. Writes nothing: the caller records the outcome.
    pub(crate) async fn make_backup(
        &self,
        backup: &BackupEntry,
        cluster: &ClusterRecord,
        provider: &Arc<dyn BackupProvider>,
        lock: &ClusterLockInfo,
        scheduled: DateTime<Utc>,
    ) -> Made {
        let progress = Progress::default();
        let base_backup_id = if provider.links_unchanged() {
            self.newest_available(backup).await
        } else {
            None
        };
        let request = BackupRequest {
            backup_id: backup.id.clone(),
            job_id: backup.job_id.clone(),
            description: backup.description.clone(),
            cluster: cluster.clone(),
            created: backup.created,
            scheduled,
            progress: progress.clone(),
            base_backup_id,
        };
        let mut location = backup.location.clone().unwrap_or_default();
        let mut notes = Vec::new();
        let mut later = None;
        let mut size_bytes = None;
        let mut linked_bytes = None;
        let refusal = cluster
            .target
            .command_field()
            .and(self.inner.config.commands.refusal());
        let work = async {
            if let Some(why) = refusal {
                return Err(BackupFailure::Provider(ProviderError::new(format!(
                    "cluster {} runs commands, and {why}",
                    cluster.id
                ))));
            }
            let created = provider
                .create(&request)
                .await
                .map_err(BackupFailure::Provider)?;
            let settled = match &created {
                Creation::Done(_) => Ok(()),
                // Left to a notification or the sweeper (SPEC §16).
                Creation::Pending(_) if self.settles_later() => Ok(()),
                // Settled now, within the lease; the event-driven settle of SPEC §16 is
                // the same `status` call made later.
                Creation::Pending(handle) => {
                    self.wait_available(provider.as_ref(), handle, &progress)
                        .await
                }
            };
            let pending = matches!(created, Creation::Pending(_)) && self.settles_later();
            Ok::<_, BackupFailure>((created.into_handle(), pending, settled))
        };
        let result = match self
            .with_lease(&cluster.id, lock.fencing_token, Some(&progress), work)
            .await
        {
            Ok(Ok((handle, pending, waited))) => {
                location = handle.location.clone();
                notes = handle.notes.clone();
                size_bytes = handle.size_bytes;
                linked_bytes = handle.linked_bytes;
                later = pending.then_some(handle);
                waited
            }
            Ok(Err(failure)) => Err(failure),
            Err(stop) => Err(BackupFailure::Stopped(stop)),
        };
        Made {
            result,
            location,
            notes,
            later,
            size_bytes,
            linked_bytes,
        }
    }

    /// Whether backups that continue outside this call are left to settle later.
    pub(crate) fn settles_later(&self) -> bool {
        self.inner.config.settle_later.is_some() && self.inner.pending.is_some()
    }

    async fn wait_available(
        &self,
        provider: &dyn BackupProvider,
        handle: &BackupHandle,
        progress: &Progress,
    ) -> Result<(), BackupFailure> {
        let config = &self.inner.config;
        let deadline = tokio::time::Instant::now() + config.max_backup_wait;
        loop {
            match provider
                .status(handle)
                .await
                .map_err(BackupFailure::Provider)?
            {
                ProviderStatus::Available => return Ok(()),
                ProviderStatus::Failed(reason) => {
                    return Err(BackupFailure::Provider(ProviderError::new(reason)))
                }
                ProviderStatus::Creating => {
                    // The provider answered: waiting on a snapshot is progress.
                    progress.tick();
                    if tokio::time::Instant::now() >= deadline {
                        return Err(BackupFailure::Provider(ProviderError::new(format!(
                            "the backup did not become available within {} seconds",
                            config.max_backup_wait.as_secs()
                        ))));
                    }
                    tokio::time::sleep(config.poll_interval).await;
                }
            }
        }
    }

    /// Runs `work` while renewing the lease every `renew_every`, and drops it (abandoning
    /// it) when it must stop:
    /// - a renewal finds the lock taken over ([`Stop::LeaseLost`]);
    /// - with `progress`, the lease is renewed only while work moves, and no movement for
    ///   `stall_after` gives up ([`Stop::Stalled`]): a worker stuck in a system call must
    ///   not hold the cluster for ever (SPEC §13);
    /// - the server is stopping ([`Stop::Interrupted`]).
    ///
    /// A renewal that fails for another reason (the store hiccups) is retried at the next
    /// tick: the lease is still valid until its expiry.
    pub(crate) async fn with_lease<F: Future>(
        &self,
        cluster_id: &str,
        fencing_token: u64,
        progress: Option<&Progress>,
        work: F,
    ) -> Result<F::Output, Stop> {
        let config = &self.inner.config;
        let every = config.renew_every.min(config.stall_after);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = self.inner.stopping.subscribe();
        let stopped = async move {
            // The guard `wait_for` answers is not `Send`: drop it before the next await.
            let _ = stopping.wait_for(|stop| *stop).await.is_ok();
        };
        tokio::pin!(stopped);
        let mut seen = progress.map(Progress::events);
        let mut moved_at = tokio::time::Instant::now();
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Ok(out),
                _ = &mut stopped => {
                    tracing::warn!(%cluster_id, "stopping work for the shutdown");
                    return Err(Stop::Interrupted);
                }
                _ = ticker.tick() => {
                    if let (Some(progress), Some(last)) = (progress, seen.as_mut()) {
                        let now_events = progress.events();
                        if now_events != *last {
                            *last = now_events;
                            moved_at = tokio::time::Instant::now();
                        } else if moved_at.elapsed() >= config.stall_after {
                            tracing::warn!(%cluster_id, stalled_for = ?moved_at.elapsed(), "the provider made no progress; abandoning its work");
                            return Err(Stop::Stalled(config.stall_after));
                        } else {
                            continue;
                        }
                    }
                    match self.inner.lock.renew(cluster_id, fencing_token, self.now(), self.lease()).await {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            tracing::warn!(%cluster_id, fencing_token, "lost the cluster lock while working");
                            return Err(Stop::LeaseLost);
                        }
                        Err(error) => tracing::warn!(%cluster_id, %error, "could not renew the lease; retrying"),
                    }
                }
            }
        }
    }
}

impl Engine {
    /// The cluster's newest `available` backup other than `backup`: what an incremental
    /// provider links unchanged files from. A store that cannot answer costs only the
    /// links (everything is copied), so the failure is logged, not the run's.
    async fn newest_available(&self, backup: &BackupEntry) -> Option<String> {
        let filter = BackupFilter {
            job_id: None,
            cluster_id: Some(backup.cluster_id.clone()),
        };
        let mut page = PageRequest::first(50);
        // Bounded: a cluster whose newest 500 backups are none of them available is
        // copied whole.
        for _ in 0..10 {
            let found = match self
                .inner
                .store
                .list_backups(&backup.scope, &filter, &page)
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, cluster_id = %backup.cluster_id,
                        "could not list the cluster's backups; copying every file");
                    return None;
                }
            };
            if let Some(newest) = found
                .items
                .iter()
                .find(|b| b.status == BackupStatus::Available && b.id != backup.id)
            {
                return Some(newest.id.clone());
            }
            page = PageRequest {
                limit: 50,
                after: Some(found.next?),
            };
        }
        None
    }
}
