//! The run writes of the SQLite store ([`BackupWrites`]): each group in one transaction.
//!
//! A backup's start (its run record, the cluster's lock, its number and its record) and its
//! end (its status and location, the run's history item and the lock's release) are each one
//! `BEGIN IMMEDIATE` transaction on the one connection, so each is one commit and one WAL
//! `fsync` instead of one per write (about six per manual backup before), and a crash between
//! the lock and the record can no longer leave the cluster locked by a backup that was never
//! recorded. Every decision is the one the narrow ports make (the same statements, shared
//! with them), in the order [`OneByOne`](backup_engine::writes::OneByOne) makes them, and the
//! engine's `BackupWrites` contract holds it to that.

use async_trait::async_trait;
use backup_core::api::{HistoryItem, RunFailure};
use backup_core::retention::BackupStatus;
use backup_engine::ports::{BackupWrites, ClusterStore, StoreResult};
use backup_engine::{
    Acquisition, Applied, BackupDraft, ClusterRecord, Finish, Finished, HistoryEntry, LockHolder,
    RunStart, StartBackup, Started,
};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

use super::{
    begin_run_in, insert_backup_in, next_sequence_in, pruned_text, release_in,
    set_backup_details_in, set_backup_location_in, set_backup_size_in, try_acquire_in,
    update_backup_status_in, write_history_in, DbError, DbResult, SqliteStore,
};

/// A [`backup_engine::BackupEnd`] owned, to cross onto the blocking thread.
struct End {
    backup_id: String,
    status: BackupStatus,
    location: Option<String>,
    error_code: Option<RunFailure>,
    details: Option<String>,
    size_bytes: Option<u64>,
}

/// The backup's end as the narrow ports write it: its location, then its status (only from
/// `creating`), then, if that applied, why and its size.
fn end_backup_in(c: &Connection, end: &End) -> DbResult<Applied> {
    if let Some(location) = &end.location {
        set_backup_location_in(c, &end.backup_id, location)?;
    }
    let updated = update_backup_status_in(c, &end.backup_id, BackupStatus::Creating, end.status)?;
    // Only the write that ended the backup says why: a backup that had already left
    // `creating` keeps its own reason.
    if updated && (end.error_code.is_some() || end.details.is_some()) {
        set_backup_details_in(c, &end.backup_id, end.error_code, end.details.as_deref())?;
    }
    if let (true, Some(size)) = (updated, end.size_bytes) {
        set_backup_size_in(c, &end.backup_id, size)?;
    }
    Ok(Applied::from_condition(updated))
}

/// What [`SqliteStore::start`](BackupWrites::start) needs, owned.
struct Start {
    cluster_id: String,
    holder: LockHolder,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
    sequence_key: String,
    backup: BackupDraft,
    run: Option<(HistoryEntry, String)>,
}

/// The lock, the number and the record, after the run (if any) is recorded: all of it, or,
/// when any part fails, none of it.
fn acquire_and_record(c: &Connection, start: &Start) -> DbResult<Started> {
    let lock = match try_acquire_in(
        c,
        &start.cluster_id,
        &start.holder,
        start.now,
        start.expires,
    )? {
        Acquisition::Held(holder) => return Ok(Started::Held(holder)),
        Acquisition::Acquired(lock) => lock,
    };
    let index = next_sequence_in(c, &start.sequence_key)?;
    let backup = start.backup.numbered(index);
    if !insert_backup_in(c, &backup)? {
        return Err(DbError::Corrupt(format!(
            "backup id {} is already taken",
            backup.id
        )));
    }
    Ok(Started::Acquired { lock, backup })
}

#[async_trait]
impl BackupWrites for SqliteStore {
    async fn prepare(
        &self,
        cluster_id: &str,
        _sequence_key: &str,
    ) -> StoreResult<Option<ClusterRecord>> {
        // Nothing is read ahead: `start` reads and writes in one transaction.
        self.get_cluster(cluster_id).await
    }

    async fn start(&self, start: &StartBackup<'_>) -> StoreResult<Started> {
        let run = match start.run {
            Some(entry) => Some((entry.clone(), pruned_text(&entry.item)?)),
            None => None,
        };
        let start = Start {
            cluster_id: start.cluster_id.to_owned(),
            holder: start.holder.clone(),
            now: start.now,
            expires: start
                .now
                .checked_add_signed(start.lease)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            sequence_key: start.sequence_key.to_owned(),
            backup: start.backup.clone(),
            run,
        };
        self.call(move |c| {
            let mut tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some((entry, pruned)) = &start.run {
                if let RunStart::AlreadyRan(history) = begin_run_in(&tx, entry, pruned)? {
                    // Nothing was written: the transaction ends without a commit.
                    return Ok(Started::AlreadyRan(history));
                }
            }
            // The run stays recorded whatever becomes of the rest, as the contract says:
            // the caller finds it by its own id and ends it.
            let savepoint = tx.savepoint()?;
            let started = acquire_and_record(&savepoint, &start);
            match started {
                Ok(started) => {
                    savepoint.commit()?;
                    tx.commit()?;
                    Ok(started)
                }
                Err(e) => {
                    // Dropping the savepoint rolls the lock and the number back.
                    drop(savepoint);
                    tx.commit()?;
                    Err(e)
                }
            }
        })
        .await
    }

    async fn finish(&self, finish: &Finish<'_>) -> StoreResult<Finished> {
        let end = finish.backup.as_ref().map(|end| End {
            backup_id: end.backup_id.to_owned(),
            status: end.status,
            location: end.location.map(str::to_owned),
            error_code: end.error_code,
            details: end.details.map(str::to_owned),
            size_bytes: end.size_bytes,
        });
        let history: Option<(HistoryItem, String)> = match finish.history {
            Some(item) => Some((item.clone(), pruned_text(item)?)),
            None => None,
        };
        let release = finish
            .release
            .map(|r| (r.cluster_id.to_owned(), r.fencing_token));
        let settled = finish.settled.is_some();
        let together = finish.together;
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Every part is attempted even if another fails (a failed statement undoes
            // itself, not the transaction); the first failure is the answer.
            let mut errors = Vec::new();
            let mut finished = Finished::default();
            let mut rest = true;
            if let Some(end) = &end {
                match end_backup_in(&tx, end) {
                    Ok(applied) => finished.backup = applied,
                    Err(e) => errors.push(e),
                }
                // Settled by someone else (or not at all): change nothing more.
                rest = !together || finished.backup == Applied::Done;
            }
            if rest {
                if let Some((item, pruned)) = &history {
                    if let Err(e) = write_history_in(&tx, item, pruned, false) {
                        errors.push(e);
                    }
                }
                if let Some((cluster_id, token)) = &release {
                    match release_in(&tx, cluster_id, *token) {
                        Ok(released) => finished.release = Applied::from_condition(released),
                        Err(e) => errors.push(e),
                    }
                }
                if settled {
                    errors.push(DbError::Corrupt(
                        "a pending backup was settled on a store that keeps none".to_owned(),
                    ));
                }
            }
            tx.commit()?;
            match errors.into_iter().next() {
                Some(e) => Err(e),
                None => Ok(finished),
            }
        })
        .await
    }
}
