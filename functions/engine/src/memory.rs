//! [`MemoryStore`] (feature `memory`): every store port and the cluster lock in one process's
//! memory, so the engine's own tests run its use cases without SQLite or DynamoDB.
//!
//! It passes the same [`contract`](crate::contract) suite as the real adapters, so a test
//! that passes here tests the engine, not a shortcut. Everything sits behind one mutex and
//! each call is one critical section: the conditional writes are trivially atomic, as a
//! transaction would make them. Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use backup_core::api::{
    ClusterLockInfo, ClusterStatus, ClusterTarget, HistoryItem, JobStatus, RunFailure, RunStatus,
    Verification,
};
use backup_core::retention::BackupStatus;
use chrono::{DateTime, Utc};

use crate::model::{
    Acquisition, Applied, BackupEntry, BackupFilter, ClusterRecord, HistoryEntry, JobRecord,
    LockHolder, PendingBackup, PendingRestore, RunStart, Scope,
};
use crate::page::{instant_position, Page, PageRequest};
use crate::ports::{
    BackupStore, ClusterLock, ClusterStore, HistoryStore, JobStore, PendingBackups, RunStore,
    SequenceStore, StoreResult,
};

/// The store and lock ports in memory. Cheap to clone: clones share the state.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    /// How many more reads of a history item by id miss it, as DynamoDB's index does for
    /// moments after a write (see [`MemoryStore::lag_history_index`]).
    history_index_lag: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<String, JobRecord>,
    clusters: BTreeMap<String, ClusterRecord>,
    backups: BTreeMap<String, BackupEntry>,
    /// (job id, scheduled instant) → history id: the key of idempotent deliveries.
    runs: HashMap<(String, DateTime<Utc>), String>,
    /// History items in the order they were recorded (the tie-break of listing).
    history: Vec<HistoryEntry>,
    sequences: HashMap<String, u64>,
    locks: HashMap<String, LockRecord>,
    /// Backups left to settle later, by id, and their keys.
    pending: BTreeMap<String, PendingBackup>,
    pending_keys: HashMap<String, String>,
    /// Pending restores by cluster id, and the cluster of each key.
    restores: BTreeMap<String, PendingRestore>,
    restore_keys: HashMap<String, String>,
}

/// A cluster's lock record; it stays after release so fencing tokens keep growing.
struct LockRecord {
    info: ClusterLockInfo,
    held: bool,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Makes the next `reads` reads of a history item by id find nothing, as a deployed
    /// store's index does for moments after the item was written (SPEC §16: eventual
    /// consistency), so the engine's patience with it can be tested.
    pub fn lag_history_index(&self, reads: usize) {
        self.history_index_lag
            .store(reads, std::sync::atomic::Ordering::SeqCst);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves consistent data: each
        // critical section writes whole records.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Inserts `record` under `id` unless the id is taken: `false` when it is (nothing changes),
/// as the ports' conditional inserts answer.
fn insert_new<T: Clone>(records: &mut BTreeMap<String, T>, id: &str, record: &T) -> bool {
    if records.contains_key(id) {
        return false;
    }
    records.insert(id.to_owned(), record.clone());
    true
}

/// The records `keep` selects, oldest first: by `created`, then by id. The map iterates by
/// id and the sort is stable, so records created at the same instant stay in id order.
fn oldest_first<T: Clone>(
    records: &BTreeMap<String, T>,
    created: fn(&T) -> DateTime<Utc>,
    keep: impl Fn(&T) -> bool,
) -> Vec<T> {
    let mut selected: Vec<T> = records.values().filter(|r| keep(r)).cloned().collect();
    selected.sort_by_key(created);
    selected
}

#[async_trait]
impl JobStore for MemoryStore {
    async fn insert_job(&self, job: &JobRecord) -> StoreResult<bool> {
        Ok(insert_new(&mut self.state().jobs, &job.id, job))
    }

    async fn get_job(&self, job_id: &str) -> StoreResult<Option<JobRecord>> {
        Ok(self.state().jobs.get(job_id).cloned())
    }

    async fn list_jobs(&self, scope: &Scope, page: &PageRequest) -> StoreResult<Page<JobRecord>> {
        let mut jobs = oldest_first(&self.state().jobs, |j| j.created, |j| j.scope == *scope);
        jobs.reverse();
        Ok(Page::of_list(jobs, page, false, |j| {
            instant_position(j.created, &j.id)
        }))
    }

    async fn list_active_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        let jobs = &self.state().jobs;
        Ok(oldest_first(
            jobs,
            |j| j.created,
            |j| j.status == JobStatus::Active,
        ))
    }

    async fn mark_job_deleted(&self, job_id: &str) -> StoreResult<bool> {
        match self.state().jobs.get_mut(job_id) {
            Some(job) if job.status == JobStatus::Active => {
                job.status = JobStatus::Deleted;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove_job(&self, job_id: &str) -> StoreResult<()> {
        self.state().jobs.remove(job_id);
        Ok(())
    }

    async fn update_job(&self, job: &JobRecord) -> StoreResult<bool> {
        match self.state().jobs.get_mut(&job.id) {
            Some(stored) if stored.status == JobStatus::Active => {
                stored.description.clone_from(&job.description);
                stored.schedule.clone_from(&job.schedule);
                stored.template.clone_from(&job.template);
                stored.max_backup_count = job.max_backup_count;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl ClusterStore for MemoryStore {
    async fn insert_cluster(&self, cluster: &ClusterRecord) -> StoreResult<bool> {
        Ok(insert_new(&mut self.state().clusters, &cluster.id, cluster))
    }

    async fn get_cluster(&self, cluster_id: &str) -> StoreResult<Option<ClusterRecord>> {
        Ok(self.state().clusters.get(cluster_id).cloned())
    }

    async fn list_clusters(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Page<ClusterRecord>> {
        // A BTreeMap iterates by id, the order the port promises.
        let clusters = (self.state().clusters.values())
            .filter(|c| c.scope == *scope)
            .cloned()
            .collect::<Vec<_>>();
        Ok(Page::of_list(clusters, page, true, |c| c.id.clone()))
    }

    async fn delete_cluster(&self, cluster_id: &str) -> StoreResult<bool> {
        Ok(self.state().clusters.remove(cluster_id).is_some())
    }

    async fn update_cluster_state(
        &self,
        cluster_id: &str,
        status: ClusterStatus,
        details: Option<&str>,
        target: Option<&ClusterTarget>,
    ) -> StoreResult<bool> {
        let mut state = self.state();
        let Some(cluster) = state.clusters.get_mut(cluster_id) else {
            return Ok(false);
        };
        cluster.status = status;
        cluster.details = details.map(str::to_owned);
        if let Some(target) = target {
            cluster.target = target.clone();
        }
        Ok(true)
    }

    async fn list_creating_clusters(&self) -> StoreResult<Vec<ClusterRecord>> {
        Ok(self
            .state()
            .clusters
            .values()
            .filter(|c| c.status == ClusterStatus::Creating)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl BackupStore for MemoryStore {
    async fn insert_backup(&self, backup: &BackupEntry) -> StoreResult<bool> {
        Ok(insert_new(&mut self.state().backups, &backup.id, backup))
    }

    async fn get_backup(&self, backup_id: &str) -> StoreResult<Option<BackupEntry>> {
        Ok(self.state().backups.get(backup_id).cloned())
    }

    async fn list_backups(
        &self,
        scope: &Scope,
        filter: &BackupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackupEntry>> {
        let mut backups = oldest_first(
            &self.state().backups,
            |b| b.created,
            |b| {
                b.scope == *scope
                    && (filter.job_id.is_none() || b.job_id == filter.job_id)
                    && (filter.cluster_id.as_ref()).is_none_or(|c| *c == b.cluster_id)
            },
        );
        backups.reverse();
        Ok(Page::of_list(backups, page, false, |b| {
            instant_position(b.created, &b.id)
        }))
    }

    async fn list_job_backups(&self, job_id: &str) -> StoreResult<Vec<BackupEntry>> {
        let backups = &self.state().backups;
        Ok(oldest_first(
            backups,
            |b| b.created,
            |b| b.job_id.as_deref() == Some(job_id),
        ))
    }

    async fn list_backups_in_status(&self, status: BackupStatus) -> StoreResult<Vec<BackupEntry>> {
        let backups = &self.state().backups;
        Ok(oldest_first(backups, |b| b.created, |b| b.status == status))
    }

    async fn update_backup_status(
        &self,
        backup_id: &str,
        from: BackupStatus,
        to: BackupStatus,
    ) -> StoreResult<bool> {
        match self.state().backups.get_mut(backup_id) {
            Some(b) if b.status == from => {
                b.status = to;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_backup_location(&self, backup_id: &str, location: &str) -> StoreResult<()> {
        if let Some(b) = self.state().backups.get_mut(backup_id) {
            b.location = Some(location.to_owned());
        }
        Ok(())
    }

    async fn set_backup_details(
        &self,
        backup_id: &str,
        error_code: Option<RunFailure>,
        details: Option<&str>,
    ) -> StoreResult<()> {
        if let Some(b) = self.state().backups.get_mut(backup_id) {
            if let Some(code) = error_code {
                b.error_code = Some(code);
            }
            if let Some(details) = details {
                b.details = Some(details.to_owned());
            }
        }
        Ok(())
    }

    async fn set_backup_size(&self, backup_id: &str, size_bytes: u64) -> StoreResult<()> {
        if let Some(b) = self.state().backups.get_mut(backup_id) {
            b.size_bytes = Some(size_bytes);
        }
        Ok(())
    }

    async fn set_backup_verification(
        &self,
        backup_id: &str,
        verification: &Verification,
    ) -> StoreResult<()> {
        if let Some(b) = self.state().backups.get_mut(backup_id) {
            b.verification = Some(verification.clone());
        }
        Ok(())
    }
}

#[async_trait]
impl RunStore for MemoryStore {
    async fn begin_run(&self, entry: &HistoryEntry) -> StoreResult<RunStart> {
        let mut s = self.state();
        let key = (entry.item.job_id.clone(), entry.item.scheduled_time);
        if let Some(history_id) = s.runs.get(&key) {
            let first = (s.history.iter())
                .find(|h| h.item.id == *history_id)
                .map(|h| h.item.clone());
            return match first {
                Some(item) => Ok(RunStart::AlreadyRan(item)),
                None => Err(crate::error::StoreError::Corrupt(format!(
                    "run record points at missing history {history_id}"
                ))),
            };
        }
        s.runs.insert(key, entry.item.id.clone());
        s.history.push(HistoryEntry {
            item: entry.scope.owns(entry.item.clone()),
            ..entry.clone()
        });
        Ok(RunStart::Started)
    }
}

#[async_trait]
impl HistoryStore for MemoryStore {
    async fn update_history(&self, item: &HistoryItem) -> StoreResult<()> {
        if let Some(h) = self
            .state()
            .history
            .iter_mut()
            .find(|h| h.item.id == item.id)
        {
            h.item = h.scope.owns(item.clone());
        }
        Ok(())
    }

    async fn claim_queued(&self, item: &HistoryItem) -> StoreResult<bool> {
        let mut s = self.state();
        let queued = (s.history.iter_mut())
            .find(|h| h.item.id == item.id && h.item.status == RunStatus::Queued);
        Ok(match queued {
            Some(h) => {
                h.item = h.scope.owns(item.clone());
                true
            }
            None => false,
        })
    }

    async fn get_history(&self, history_id: &str) -> StoreResult<Option<HistoryEntry>> {
        use std::sync::atomic::Ordering;
        let lagging = self
            .history_index_lag
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lagging {
            return Ok(None);
        }
        Ok((self.state().history.iter())
            .find(|h| h.item.id == history_id)
            .cloned())
    }

    async fn list_history(
        &self,
        scope: &Scope,
        job_id: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<HistoryItem>> {
        let s = self.state();
        let mut items: Vec<(usize, &HistoryItem)> = (s.history.iter().enumerate())
            .filter(|(_, h)| h.scope == *scope)
            .filter(|(_, h)| job_id.is_none_or(|j| h.item.job_id == j))
            .map(|(order, h)| (order, &h.item))
            .collect();
        // Newest first: by start time, then by the order of recording.
        items.sort_by(|(ao, a), (bo, b)| (b.start_time, bo).cmp(&(a.start_time, ao)));
        let page = Page::of_list(items, page, false, |(order, item)| {
            instant_position(item.start_time, &format!("{order:020}"))
        });
        Ok(page.map(|(_, item)| item.clone()))
    }

    async fn list_running(&self) -> StoreResult<Vec<HistoryEntry>> {
        Ok((self.state().history.iter())
            .filter(|h| !h.item.status.is_final())
            .cloned()
            .collect())
    }
}

#[async_trait]
impl SequenceStore for MemoryStore {
    async fn next_sequence(&self, key: &str) -> StoreResult<u64> {
        let mut s = self.state();
        let value = s.sequences.entry(key.to_owned()).or_insert(0);
        *value += 1;
        Ok(*value)
    }
}

#[async_trait]
impl ClusterLock for MemoryStore {
    async fn try_acquire(
        &self,
        cluster_id: &str,
        holder: &LockHolder,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<Acquisition> {
        let mut s = self.state();
        let current = s.locks.get(cluster_id);
        if let Some(lock) = current.filter(|l| l.held && l.info.expires > now) {
            return Ok(Acquisition::Held(lock.info.clone()));
        }
        let info = ClusterLockInfo {
            operation: holder.operation.clone(),
            job_id: holder.job_id.clone(),
            run_id: holder.run_id.clone(),
            since: now,
            expires: now
                .checked_add_signed(lease)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            fencing_token: current.map_or(0, |l| l.info.fencing_token) + 1,
        };
        s.locks.insert(
            cluster_id.to_owned(),
            LockRecord {
                info: info.clone(),
                held: true,
            },
        );
        Ok(Acquisition::Acquired(info))
    }

    async fn renew(
        &self,
        cluster_id: &str,
        fencing_token: u64,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<Option<ClusterLockInfo>> {
        let mut s = self.state();
        match s.locks.get_mut(cluster_id) {
            Some(l) if l.held && l.info.fencing_token == fencing_token && l.info.expires > now => {
                l.info.expires = now
                    .checked_add_signed(lease)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                Ok(Some(l.info.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn release(&self, cluster_id: &str, fencing_token: u64) -> StoreResult<bool> {
        match self.state().locks.get_mut(cluster_id) {
            Some(l) if l.held && l.info.fencing_token == fencing_token => {
                l.held = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn current(
        &self,
        cluster_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClusterLockInfo>> {
        Ok((self.state().locks.get(cluster_id))
            .filter(|l| l.held && l.info.expires > now)
            .map(|l| l.info.clone()))
    }
}

#[async_trait]
impl PendingBackups for MemoryStore {
    async fn park(&self, pending: &PendingBackup) -> StoreResult<Applied> {
        let mut s = self.state();
        let id = &pending.backup.id;
        if let Some(b) = s.backups.get_mut(id) {
            b.location = pending.backup.location.clone();
        }
        for key in &pending.keys {
            s.pending_keys.insert(key.clone(), id.clone());
        }
        s.pending.insert(id.clone(), pending.clone());
        let lock = s
            .locks
            .get_mut(&pending.backup.cluster_id)
            .filter(|l| l.held && l.info.fencing_token == pending.fencing_token);
        Ok(match lock {
            Some(l) => {
                l.info.expires = pending.deadline;
                Applied::Done
            }
            None => Applied::Stale,
        })
    }

    async fn find_pending(&self, key: &str) -> StoreResult<Option<PendingBackup>> {
        let s = self.state();
        Ok(s.pending_keys
            .get(key)
            .and_then(|id| s.pending.get(id))
            .cloned())
    }

    async fn list_pending(&self, limit: usize) -> StoreResult<Vec<PendingBackup>> {
        let mut all: Vec<PendingBackup> = self.state().pending.values().cloned().collect();
        all.sort_by(|a, b| (a.deadline, &a.backup.id).cmp(&(b.deadline, &b.backup.id)));
        all.truncate(limit);
        Ok(all)
    }

    async fn unpark(&self, pending: &PendingBackup) -> StoreResult<()> {
        let mut s = self.state();
        s.pending.remove(&pending.backup.id);
        for key in &pending.keys {
            if s.pending_keys.get(key) == Some(&pending.backup.id) {
                s.pending_keys.remove(key);
            }
        }
        Ok(())
    }

    async fn park_restore(&self, pending: &PendingRestore) -> StoreResult<Applied> {
        let mut s = self.state();
        let cluster = &pending.handle.cluster_id;
        for key in &pending.handle.keys {
            s.restore_keys.insert(key.clone(), cluster.clone());
        }
        s.restores.insert(cluster.clone(), pending.clone());
        let lock = s
            .locks
            .get_mut(cluster)
            .filter(|l| l.held && l.info.fencing_token == pending.fencing_token);
        Ok(match lock {
            Some(l) => {
                l.info.expires = pending.deadline;
                Applied::Done
            }
            None => Applied::Stale,
        })
    }

    async fn find_pending_restore(&self, key: &str) -> StoreResult<Option<PendingRestore>> {
        let s = self.state();
        Ok(s.restore_keys
            .get(key)
            .and_then(|cluster| s.restores.get(cluster))
            .cloned())
    }

    async fn list_pending_restores(&self, limit: usize) -> StoreResult<Vec<PendingRestore>> {
        let mut all: Vec<PendingRestore> = self.state().restores.values().cloned().collect();
        all.sort_by(|a, b| {
            (a.deadline, &a.handle.cluster_id).cmp(&(b.deadline, &b.handle.cluster_id))
        });
        all.truncate(limit);
        Ok(all)
    }

    async fn unpark_restore(&self, pending: &PendingRestore) -> StoreResult<()> {
        let mut s = self.state();
        let cluster = &pending.handle.cluster_id;
        if s.restores.get(cluster) == Some(pending) {
            s.restores.remove(cluster);
        }
        for key in &pending.handle.keys {
            if s.restore_keys.get(key) == Some(cluster) {
                s.restore_keys.remove(key);
            }
        }
        Ok(())
    }
}
