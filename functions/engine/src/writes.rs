//! [`OneByOne`]: the one [`BackupWrites`] of stores without multi-item transactions
//! (SQLite, whose calls are local and cheap, and the in-memory store): each group of writes
//! made through the narrow ports, in order. It reads nothing ahead in `prepare`, so it has
//! no versions to keep. `start` records the run before it asks for the lock, so that a
//! duplicate takes no lock and a run that finds the lock held stays recorded.

use std::sync::Arc;

use async_trait::async_trait;
use backup_core::retention::BackupStatus;

use crate::error::StoreError;
use crate::model::{
    Acquisition, Applied, BackupEnd, ClusterRecord, Finish, Finished, Release, RunStart,
    StartBackup, Started,
};
use crate::ports::{BackupWrites, ClusterLock, PendingBackups, Store, StoreResult};

/// Groups of writes made one call at a time through `store` and `lock`.
pub struct OneByOne {
    store: Arc<dyn Store>,
    lock: Arc<dyn ClusterLock>,
    /// Where settled backups are forgotten, for a store that parks them.
    pending: Option<Arc<dyn PendingBackups>>,
}

impl OneByOne {
    pub fn new(store: Arc<dyn Store>, lock: Arc<dyn ClusterLock>) -> OneByOne {
        OneByOne {
            store,
            lock,
            pending: None,
        }
    }

    /// With the pending backups a [`Finish`] forgets when it settles one.
    pub fn with_pending(mut self, pending: Arc<dyn PendingBackups>) -> OneByOne {
        self.pending = Some(pending);
        self
    }

    /// Over an adapter that is both the store and the lock.
    pub fn over<S: Store + ClusterLock + 'static>(adapter: Arc<S>) -> OneByOne {
        OneByOne::new(adapter.clone(), adapter)
    }
}

#[async_trait]
impl BackupWrites for OneByOne {
    async fn prepare(
        &self,
        cluster_id: &str,
        _sequence_key: &str,
    ) -> StoreResult<Option<ClusterRecord>> {
        self.store.get_cluster(cluster_id).await
    }

    async fn start(&self, start: &StartBackup<'_>) -> StoreResult<Started> {
        if let Some(run) = start.run {
            if let RunStart::AlreadyRan(history) = self.store.begin_run(run).await? {
                return Ok(Started::AlreadyRan(history));
            }
        }
        let lock = match self
            .lock
            .try_acquire(start.cluster_id, start.holder, start.now, start.lease)
            .await?
        {
            Acquisition::Held(holder) => return Ok(Started::Held(holder)),
            Acquisition::Acquired(lock) => lock,
        };
        let recorded = async {
            let index = self.store.next_sequence(start.sequence_key).await?;
            let backup = start.backup.numbered(index);
            if !self.store.insert_backup(&backup).await? {
                return Err(StoreError::Corrupt(format!(
                    "backup id {} is already taken",
                    backup.id
                )));
            }
            Ok(backup)
        }
        .await;
        match recorded {
            Ok(backup) => Ok(Started::Acquired { lock, backup }),
            Err(error) => {
                // Not started after all: free the cluster rather than wait for the lease.
                // (The run stays recorded: the caller finds it by its own id and ends it.)
                if let Err(release) = self
                    .lock
                    .release(start.cluster_id, lock.fencing_token)
                    .await
                {
                    tracing::warn!(cluster_id = %start.cluster_id, error = %release, "could not release the lock of a backup that did not start");
                }
                Err(error)
            }
        }
    }

    async fn finish(&self, finish: &Finish<'_>) -> StoreResult<Finished> {
        let mut errors = Vec::new();
        let mut finished = Finished::default();
        if let Some(end) = &finish.backup {
            match self.end_backup(end).await {
                Ok(applied) => finished.backup = applied,
                Err(e) => errors.push(e),
            }
            if finish.together && (finished.backup != Applied::Done) {
                // Settled by someone else (or not at all): change nothing more.
                return match errors.into_iter().next() {
                    Some(e) => Err(e),
                    None => Ok(finished),
                };
            }
        }
        if let Some(item) = finish.history {
            if let Err(e) = self.store.update_history(item).await {
                errors.push(e);
            }
        }
        if let Some(Release {
            cluster_id,
            fencing_token,
        }) = finish.release
        {
            match self.lock.release(cluster_id, fencing_token).await {
                Ok(released) => finished.release = Applied::from_condition(released),
                Err(e) => errors.push(e),
            }
        }
        if let Some(pending) = finish.settled {
            let forgotten = match &self.pending {
                Some(store) => store.unpark(pending).await,
                None => Err(StoreError::Corrupt(
                    "a pending backup was settled on a store that keeps none".to_owned(),
                )),
            };
            if let Err(e) = forgotten {
                errors.push(e);
            }
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(finished),
        }
    }
}

impl OneByOne {
    /// The backup's end: its location, then its status (only from `creating`), then, if
    /// that applied, why.
    async fn end_backup(&self, end: &BackupEnd<'_>) -> StoreResult<Applied> {
        if let Some(location) = end.location {
            self.store
                .set_backup_location(end.backup_id, location)
                .await?;
        }
        let updated = self
            .store
            .update_backup_status(end.backup_id, BackupStatus::Creating, end.status)
            .await?;
        // Only the write that ended the backup says why: a backup that had already left
        // `creating` keeps its own reason.
        if updated && (end.error_code.is_some() || end.details.is_some()) {
            self.store
                .set_backup_details(end.backup_id, end.error_code, end.details)
                .await?;
        }
        if let (true, Some(size)) = (updated, end.size_bytes) {
            self.store.set_backup_size(end.backup_id, size).await?;
        }
        Ok(Applied::from_condition(updated))
    }
}
