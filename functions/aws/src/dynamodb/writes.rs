//! A run's grouped writes ([`BackupWrites`]) on DynamoDB: `prepare` is one `BatchGetItem`
//! (cluster, lock, counter), `start` one `TransactWriteItems` (lock, counter, backup record,
//! and the run record when it is a new run's) conditional on the versions `prepare` saw, and
//! `finish` one `TransactWriteItems` (backup, history item, release). A successful run
//! therefore costs three DynamoDB calls for what the narrow ports do in nine.
//!
//! Each transaction carries an idempotency token (`ClientRequestToken`), so that the SDK's
//! retry of a request whose answer was lost is answered as the first attempt was, instead of
//! failing its conditions against its own writes.
//!
//! **Versions.** `start` conditions its transaction on the lock's fencing token and the
//! counter's value. The engine carries none of this (the port is provider-neutral): the
//! adapter keeps the versions it last saw for each (cluster, counter) in [`SeenVersions`],
//! filled by `prepare` and by `start` itself, so a run still costs one read and one
//! transaction to start. A version another process moved since only costs a cancelled
//! transaction and a fresh read; a missing one, a read first.
//!
//! A transaction is all or nothing, so when one of its conditions fails nothing is written
//! and the group is decided again: `start` answers `AlreadyRan` if the run record's
//! condition failed (with the first delivery's item, which comes back with the
//! cancellation, or else is read), and otherwise reads the lock and the counter again and,
//! if the lock is taken, records the run alone (`PutItem`, as `begin_run`) and answers
//! `Held`, or tries once more with the fresh versions;
//! `finish` makes its parts one by one, each under its own condition, exactly as the narrow
//! ports would.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use backup_core::api::ClusterLockInfo;
use backup_core::retention::BackupStatus;
use backup_engine::ports::{BackupWrites, RunStore, StoreResult};
use backup_engine::{
    Applied, ClusterRecord, Finish, Finished, Release, RunStart, StartBackup, Started, StoreError,
};

use super::update::Update;
use super::{
    backend, backup_details, backup_item, backup_size, backup_status_update, cluster_from,
    deleted_expires, get_bool, get_n, history_from, history_item, history_update, lock_from,
    lock_release, lock_take, no_run_record, run_key, s, token_after, DynamoStore, Item, TokenRule,
};

/// How many times `start` decides again after the lock or the counter moved under it.
const START_ATTEMPTS: usize = 5;
/// Where the run record is among the actions of `start`'s transaction: after the lock, the
/// counter and the backup.
const RUN_ACTION: usize = 3;
/// How many `BatchGetItem` rounds may leave keys unprocessed before giving up.
const BATCH_GET_ROUNDS: u32 = 8;

/// How many (cluster, counter) pairs [`SeenVersions`] remembers before it forgets them all:
/// a bound on memory in a long-lived process, at the price of one read per pair afterwards.
const SEEN_VERSIONS_KEPT: usize = 4096;

/// The lock's fencing token (`None`: no lock item yet) and the counter's value (0: no
/// counter yet) as this process last saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Versions {
    lock_token: Option<u64>,
    sequence: u64,
}

/// What `start` may condition its transaction on, per (cluster id, counter key): an
/// optimisation only, since `start` decides right with stale versions too.
#[derive(Debug, Default)]
pub(super) struct SeenVersions(Mutex<HashMap<(String, String), Versions>>);

impl SeenVersions {
    fn get(&self, cluster_id: &str, sequence_key: &str) -> Option<Versions> {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&(cluster_id.to_owned(), sequence_key.to_owned()))
            .copied()
    }

    fn remember(&self, cluster_id: &str, sequence_key: &str, versions: Versions) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SEEN_VERSIONS_KEPT {
            seen.clear();
        }
        seen.insert((cluster_id.to_owned(), sequence_key.to_owned()), versions);
    }
}

/// The three items a run reads before it starts.
struct RunItems {
    cluster: Option<Item>,
    lock: Option<Item>,
    counter: Option<Item>,
}

impl RunItems {
    fn lock_token(&self) -> StoreResult<Option<u64>> {
        self.lock.as_ref().map(|i| get_n(i, "token")).transpose()
    }

    fn sequence(&self) -> StoreResult<u64> {
        Ok(self
            .counter
            .as_ref()
            .map(|i| get_n(i, "seq"))
            .transpose()?
            .unwrap_or(0))
    }

    fn versions(&self) -> StoreResult<Versions> {
        Ok(Versions {
            lock_token: self.lock_token()?,
            sequence: self.sequence()?,
        })
    }
}

impl DynamoStore {
    /// The cluster, its lock and the counter `sequence_key`, in one consistent read.
    async fn run_items(&self, cluster_id: &str, sequence_key: &str) -> StoreResult<RunItems> {
        let keys = [
            (format!("CLUSTER#{cluster_id}"), "CLUSTER"),
            (format!("LOCK#{cluster_id}"), "LOCK"),
            (format!("SEQ#{sequence_key}"), "SEQ"),
        ];
        let mut found = self
            .batch_get(keys.iter().map(|(pk, sk)| (pk.clone(), *sk)).collect())
            .await?;
        let mut take = |pk: &str| {
            let at = found.iter().position(
                |i| matches!(i.get("pk"), Some(v) if v.as_s().ok().map(String::as_str) == Some(pk)),
            )?;
            Some(found.swap_remove(at))
        };
        Ok(RunItems {
            cluster: take(&keys[0].0),
            lock: take(&keys[1].0),
            counter: take(&keys[2].0),
        })
    }

    /// The run record of `run`'s job and scheduled instant, which a failed condition said
    /// exists.
    async fn recorded_run(&self, run: &backup_engine::HistoryEntry) -> StoreResult<Item> {
        self.get(run_key(&run.item.job_id, run.item.scheduled_time), "RUN")
            .await?
            .ok_or_else(|| StoreError::Corrupt("a run record vanished while read".into()))
    }

    /// The items of `keys` (`pk`, `sk`) that exist, read consistently with `BatchGetItem`
    /// (at most 100 keys a request), unprocessed keys asked again with a growing pause.
    pub(super) async fn batch_get(&self, keys: Vec<(String, &str)>) -> StoreResult<Vec<Item>> {
        let mut found: Vec<Item> = Vec::new();
        for chunk in keys.chunks(100) {
            let mut wanted: Vec<Item> = chunk
                .iter()
                .map(|(pk, sk)| Item::from([("pk".into(), s(pk.clone())), ("sk".into(), s(*sk))]))
                .collect();
            let mut round = 0;
            while !wanted.is_empty() {
                if round == BATCH_GET_ROUNDS {
                    return Err(StoreError::Backend {
                        message: format!(
                            "DynamoDB left keys unprocessed after {BATCH_GET_ROUNDS} BatchGetItem rounds; try again"
                        ),
                        source: None,
                    });
                }
                if round > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << round.min(5))).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(wanted.clone()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::backend("invalid BatchGetItem keys", e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| backend("BatchGetItem", e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                wanted = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                round += 1;
            }
        }
        Ok(found)
    }
}

/// Sets the counter to one more than `seen`, only if it is still `seen`.
fn counter_after(sequence_key: &str, seen: u64) -> Update {
    let update = Update::new(format!("SEQ#{sequence_key}"), "SEQ").set("seq", super::n(seen + 1));
    if seen == 0 {
        update.condition("attribute_not_exists(pk)")
    } else {
        update
            .condition("#seq = :seen")
            .value(":seen", super::n(seen))
    }
}

/// The item the action at `index` of a cancelled transaction found, when it asked for it
/// (`ReturnValuesOnConditionCheckFailure`) and its condition failed.
fn cancelled_item(
    e: &SdkError<TransactWriteItemsError, HttpResponse>,
    index: usize,
) -> Option<Item> {
    match e.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(c) => c
            .cancellation_reasons()
            .get(index)?
            .item()
            .filter(|i| !i.is_empty())
            .cloned(),
        _ => None,
    }
}

/// The codes of a cancelled transaction, one per action (`ConditionalCheckFailed`, `None`,
/// …); `None` when the error is not a cancellation (a conflict with another transaction
/// is one, with the code `TransactionConflict`).
pub(super) fn cancellation(
    e: &SdkError<TransactWriteItemsError, HttpResponse>,
) -> Option<Vec<String>> {
    match e.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(c) => Some(
            c.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or_default().to_owned())
                .collect(),
        ),
        _ => None,
    }
}

/// The idempotency token of a `finish` transaction: the SDK retries a request whose answer
/// was lost, and without a token the retry would fail its conditions (the first attempt
/// already applied) and be taken for a lost lock. One run or backup finishes once.
fn finish_token(finish: &Finish<'_>) -> Option<String> {
    let id = finish
        .history
        .map(|h| h.id.as_str())
        .or(finish.backup.as_ref().map(|b| b.backup_id))?;
    // A settle that finds the backup's part written by an earlier one retries without it
    // (`end_run_once`): other parameters, so another token, which DynamoDB would otherwise
    // refuse as a mismatch of the first.
    Some(match finish.backup {
        Some(_) => format!("finish-{id}"),
        None => format!("finish-{id}-rest"),
    })
}

#[async_trait]
impl BackupWrites for DynamoStore {
    async fn prepare(
        &self,
        cluster_id: &str,
        sequence_key: &str,
    ) -> StoreResult<Option<ClusterRecord>> {
        let items = self.run_items(cluster_id, sequence_key).await?;
        self.seen
            .remember(cluster_id, sequence_key, items.versions()?);
        items.cluster.as_ref().map(cluster_from).transpose()
    }

    async fn start(&self, start: &StartBackup<'_>) -> StoreResult<Started> {
        let (
            Versions {
                mut lock_token,
                mut sequence,
            },
            mut lock_item,
        ) = match self.seen.get(start.cluster_id, start.sequence_key) {
            Some(versions) => (versions, None),
            None => {
                let items = self.run_items(start.cluster_id, start.sequence_key).await?;
                (items.versions()?, items.lock)
            }
        };
        for attempt in 0..START_ATTEMPTS {
            if let Some(item) = &lock_item {
                if get_bool(item, "held") {
                    let info = lock_from(item)?;
                    if info.expires > start.now {
                        // The run is recorded all the same, to fail `cluster_locked`.
                        if let Some(run) = start.run {
                            if let RunStart::AlreadyRan(history) = self.begin_run(run).await? {
                                return Ok(Started::AlreadyRan(history));
                            }
                        }
                        return Ok(Started::Held(info));
                    }
                }
            }
            let backup = start.backup.numbered(sequence + 1);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(backup_item(&backup)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::backend("invalid transaction put", e))?;
            let mut actions = vec![
                lock_take(
                    start.cluster_id,
                    start.holder,
                    start.now,
                    start.lease,
                    TokenRule::After(lock_token),
                )
                .transact(&self.table)?,
                counter_after(start.sequence_key, sequence).transact(&self.table)?,
                TransactWriteItem::builder().put(put).build(),
            ];
            if let Some(run) = start.run {
                // What `begin_run` puts, under the same condition (action `RUN_ACTION`).
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(history_item(run, self.history_days)))
                    .condition_expression("attribute_not_exists(pk)")
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(|e| StoreError::backend("invalid transaction put", e))?;
                actions.push(TransactWriteItem::builder().put(put).build());
            }
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .client_request_token(format!("start-{}-{attempt}", backup.id))
                .send()
                .await
            {
                Ok(_) => {
                    let fencing_token = token_after(lock_token, start.now);
                    self.seen.remember(
                        start.cluster_id,
                        start.sequence_key,
                        Versions {
                            lock_token: Some(fencing_token),
                            sequence: sequence + 1,
                        },
                    );
                    let lock = ClusterLockInfo {
                        operation: start.holder.operation.clone(),
                        job_id: start.holder.job_id.clone(),
                        run_id: start.holder.run_id.clone(),
                        since: start.now,
                        expires: start.now + start.lease,
                        fencing_token,
                    };
                    return Ok(Started::Acquired { lock, backup });
                }
                Err(e) => {
                    let Some(codes) = cancellation(&e) else {
                        return Err(backend("TransactWriteItems", e));
                    };
                    let failed = |index: usize| {
                        codes.get(index).map(String::as_str) == Some("ConditionalCheckFailed")
                    };
                    if let (Some(run), true) = (start.run, failed(RUN_ACTION)) {
                        // Another delivery of the same firing recorded the run first.
                        let item = match cancelled_item(&e, RUN_ACTION) {
                            Some(item) => item,
                            None => self.recorded_run(run).await?,
                        };
                        return Ok(Started::AlreadyRan(history_from(&item)?.item));
                    }
                    if failed(2) {
                        return Err(StoreError::Corrupt(format!(
                            "backup id {} is already taken",
                            backup.id
                        )));
                    }
                    // The lock or the counter moved since it was read: read both again.
                    let items = self.run_items(start.cluster_id, start.sequence_key).await?;
                    let versions = items.versions()?;
                    self.seen
                        .remember(start.cluster_id, start.sequence_key, versions);
                    lock_token = versions.lock_token;
                    sequence = versions.sequence;
                    lock_item = items.lock;
                }
            }
        }
        Err(StoreError::Backend {
            message: format!(
                "the lock of cluster {} kept changing while it was being taken; try again",
                start.cluster_id
            ),
            source: None,
        })
    }

    async fn finish(&self, finish: &Finish<'_>) -> StoreResult<Finished> {
        enum Part<'a> {
            Backup,
            History(&'a backup_core::api::HistoryItem),
            Release,
        }
        let mut parts = Vec::new();
        if let Some(end) = &finish.backup {
            let update = deleted_expires(
                backup_size(
                    backup_details(
                        backup_status_update(
                            end.backup_id,
                            BackupStatus::Creating,
                            end.status,
                            end.location,
                        ),
                        end.error_code,
                        end.details,
                    ),
                    end.size_bytes,
                ),
                end.status,
                self.history_days,
            );
            parts.push((Part::Backup, update));
        }
        if let Some(item) = finish.history {
            parts.push((Part::History(item), history_update(item, self.history_days)));
        }
        if let Some(Release {
            cluster_id,
            fencing_token,
        }) = finish.release
        {
            parts.push((Part::Release, lock_release(cluster_id, fencing_token)));
        }
        let forget = match finish.settled {
            Some(p) => super::pending::forget(&self.table, p)?,
            None => Vec::new(),
        };
        if parts.len() + forget.len() > 1 {
            let mut actions = parts
                .iter()
                .map(|(_, update)| update.transact(&self.table))
                .collect::<StoreResult<Vec<_>>>()?;
            actions.extend(forget);
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .set_client_request_token(finish_token(finish))
                .send()
                .await
            {
                Ok(_) => {
                    let asked = |part: bool| {
                        if part {
                            Applied::Done
                        } else {
                            Applied::NotAsked
                        }
                    };
                    return Ok(Finished {
                        backup: asked(finish.backup.is_some()),
                        release: asked(finish.release.is_some()),
                    });
                }
                // A condition failed, so nothing was written. A settle whose backup had
                // already left `creating` changes nothing more; otherwise the parts are
                // made one by one.
                Err(e) if cancellation(&e).is_some() => {
                    let backup_stale = finish.backup.is_some()
                        && cancellation(&e)
                            .and_then(|codes| codes.first().cloned())
                            .as_deref()
                            == Some("ConditionalCheckFailed");
                    if finish.together && backup_stale {
                        return Ok(Finished {
                            backup: Applied::Stale,
                            ..Finished::default()
                        });
                    }
                }
                Err(e) => return Err(backend("TransactWriteItems", e)),
            }
        }
        let mut finished = Finished::default();
        let mut first_error = None;
        for (part, update) in &parts {
            let applied = match update.apply(&self.client, &self.table).await {
                Ok(applied) => applied,
                Err(e) if finish.together && matches!(part, Part::Backup) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            match part {
                Part::Backup if finish.together && !applied => {
                    finished.backup = Applied::Stale;
                    return Ok(finished);
                }
                Part::Backup => finished.backup = Applied::from_condition(applied),
                Part::Release => finished.release = Applied::from_condition(applied),
                Part::History(item) if !applied => {
                    first_error.get_or_insert(no_run_record(item));
                }
                Part::History(_) => {}
            }
        }
        if let Some(p) = finish.settled {
            if let Err(e) = backup_engine::ports::PendingBackups::unpark(self, p).await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(finished),
        }
    }
}
