//! Backups that settle later ([`PendingBackups`], SPEC §16) on DynamoDB.
//!
//! A pending backup is written as one item per key, `PENDING#KEY#<key>` (what an EBS
//! snapshot notification looks up: one strongly consistent `GetItem`), and one item
//! `PENDING#BACKUP#<backupId>` in the sparse `state-index` partition `PENDING`, sorted by
//! deadline (what the sweeper pages through with one `Query`). Each item carries the whole
//! record (the backup, its run's job and history item, the fencing token and the instants),
//! so a notification settles a backup from the one item it reads. They are written with
//! the backup's location and the lease extension in one transaction, and deleted by the
//! transaction that settles the backup; TTL removes any left a week after the deadline.
//!
//! A pending restore (SPEC §14) is kept the same way under its own prefixes, so neither kind
//! is ever read as the other: one item per key, `PENDING#RESTORE#KEY#<volumeId>`, and one
//! `PENDING#RESTORE#<clusterId>` in the sparse `state-index` partition `PENDING-RESTORE`,
//! sorted by deadline. They are written with the lease extension of the `restore` lock in
//! one transaction, and forgotten by one transaction of deletes when the restore settles.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use backup_engine::ports::{PendingBackups, StoreResult};
use backup_engine::{
    Applied, PendingBackup, PendingRestore, PendingRun, RestoreHandle, StoreError,
};

use super::update::Update;
use super::{
    backend, backup_from, backup_item, get_instant, get_n, get_s, history_from, history_item,
    job_from, job_item, key_ms, ms, n, s, ttl_after, DynamoStore, Item, STATE_INDEX,
};

/// The `state-index` partition of pending backups.
const PENDING_PARTITION: &str = "PENDING";
/// DynamoDB's limit of actions in one transaction.
const MAX_TRANSACTION_ACTIONS: usize = 100;

fn backup_key(backup_id: &str) -> String {
    format!("PENDING#BACKUP#{backup_id}")
}

fn key_key(key: &str) -> String {
    format!("PENDING#KEY#{key}")
}

/// The items of `p`: the listed one first, then one per key.
fn pending_items(p: &PendingBackup) -> Vec<Item> {
    let mut body = Item::from([
        ("sk".into(), s("PENDING")),
        ("backup".into(), AttributeValue::M(backup_item(&p.backup))),
        (
            "keys".into(),
            AttributeValue::L(p.keys.iter().map(s).collect()),
        ),
        ("token".into(), n(p.fencing_token)),
        ("started".into(), n(ms(p.started))),
        ("deadline".into(), n(ms(p.deadline))),
        (super::TTL_ATTRIBUTE.into(), ttl_after(p.deadline)),
    ]);
    if let Some(PendingRun { job, entry }) = &p.run {
        body.insert("job".into(), AttributeValue::M(job_item(job)));
        body.insert(
            "run".into(),
            AttributeValue::M(history_item(
                entry,
                // A parked run is running: its copy here has no expiry to compute.
                crate::config::DEFAULT_HISTORY_DAYS,
            )),
        );
    }
    let mut listed = body.clone();
    listed.insert("pk".into(), s(backup_key(&p.backup.id)));
    listed.insert("state_pk".into(), s(PENDING_PARTITION));
    listed.insert(
        "state_sk".into(),
        s(format!("{}#{}", key_ms(p.deadline), p.backup.id)),
    );
    let mut items = vec![listed];
    for key in &p.keys {
        let mut item = body.clone();
        item.insert("pk".into(), s(key_key(key)));
        items.push(item);
    }
    items
}

fn map<'a>(item: &'a Item, name: &str) -> StoreResult<&'a Item> {
    match item.get(name) {
        Some(AttributeValue::M(m)) => Ok(m),
        _ => Err(StoreError::Corrupt(format!(
            "a pending backup item has no `{name}` map"
        ))),
    }
}

fn pending_from(item: &Item) -> StoreResult<PendingBackup> {
    let keys = match item.get("keys") {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(k) => Ok(k.clone()),
                _ => Err(StoreError::Corrupt("a pending key is not text".into())),
            })
            .collect::<StoreResult<Vec<_>>>()?,
        _ => Vec::new(),
    };
    let run = match (item.get("job"), item.get("run")) {
        (Some(_), Some(_)) => Some(PendingRun {
            job: job_from(map(item, "job")?)?,
            entry: history_from(map(item, "run")?)?,
        }),
        _ => None,
    };
    Ok(PendingBackup {
        backup: backup_from(map(item, "backup")?)?,
        keys,
        run,
        fencing_token: get_n(item, "token")?,
        started: get_instant(item, "started")?,
        deadline: get_instant(item, "deadline")?,
    })
}

fn put(table: &str, item: Item) -> StoreResult<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(|e| StoreError::backend("invalid transaction put", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The deletes that forget `p` (one per item), as transaction actions.
pub(super) fn forget(table: &str, p: &PendingBackup) -> StoreResult<Vec<TransactWriteItem>> {
    pending_pks(p)
        .into_iter()
        .map(|pk| {
            let delete = Delete::builder()
                .table_name(table)
                .key("pk", s(pk))
                .key("sk", s("PENDING"))
                .build()
                .map_err(|e| StoreError::backend("invalid transaction delete", e))?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        })
        .collect()
}

fn pending_pks(p: &PendingBackup) -> Vec<String> {
    std::iter::once(backup_key(&p.backup.id))
        .chain(p.keys.iter().map(|k| key_key(k)))
        .collect()
}

fn too_many(p: &PendingBackup) -> StoreError {
    StoreError::Backend {
        message: format!(
            "backup {} has {} snapshots; one backup can record at most {} pending",
            p.backup.id,
            p.keys.len(),
            MAX_TRANSACTION_ACTIONS - 4
        ),
        source: None,
    }
}

/// The `state-index` partition of pending restores.
const RESTORE_PARTITION: &str = "PENDING-RESTORE";

fn restore_key(cluster_id: &str) -> String {
    format!("PENDING#RESTORE#{cluster_id}")
}

fn restore_key_key(key: &str) -> String {
    format!("PENDING#RESTORE#KEY#{key}")
}

fn restore_pks(p: &PendingRestore) -> Vec<String> {
    std::iter::once(restore_key(&p.handle.cluster_id))
        .chain(p.handle.keys.iter().map(|k| restore_key_key(k)))
        .collect()
}

/// The items of `p`: the listed one first, then one per key.
fn restore_items(p: &PendingRestore) -> Vec<Item> {
    let body = Item::from([
        ("sk".into(), s("PENDING")),
        ("cluster".into(), s(&p.handle.cluster_id)),
        ("location".into(), s(&p.handle.location)),
        (
            "keys".into(),
            AttributeValue::L(p.handle.keys.iter().map(s).collect()),
        ),
        ("backupId".into(), s(&p.backup_id)),
        ("provider".into(), s(&p.provider)),
        ("token".into(), n(p.fencing_token)),
        ("started".into(), n(ms(p.started))),
        ("deadline".into(), n(ms(p.deadline))),
        (super::TTL_ATTRIBUTE.into(), ttl_after(p.deadline)),
    ]);
    let mut listed = body.clone();
    listed.insert("pk".into(), s(restore_key(&p.handle.cluster_id)));
    listed.insert("state_pk".into(), s(RESTORE_PARTITION));
    listed.insert(
        "state_sk".into(),
        s(format!("{}#{}", key_ms(p.deadline), p.handle.cluster_id)),
    );
    let mut items = vec![listed];
    for key in &p.handle.keys {
        let mut item = body.clone();
        item.insert("pk".into(), s(restore_key_key(key)));
        items.push(item);
    }
    items
}

fn restore_from(item: &Item) -> StoreResult<PendingRestore> {
    let keys = match item.get("keys") {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(k) => Ok(k.clone()),
                _ => Err(StoreError::Corrupt("a pending key is not text".into())),
            })
            .collect::<StoreResult<Vec<_>>>()?,
        _ => Vec::new(),
    };
    Ok(PendingRestore {
        handle: RestoreHandle {
            cluster_id: get_s(item, "cluster")?,
            location: get_s(item, "location")?,
            keys,
        },
        backup_id: get_s(item, "backupId")?,
        provider: get_s(item, "provider")?,
        fencing_token: get_n(item, "token")?,
        started: get_instant(item, "started")?,
        deadline: get_instant(item, "deadline")?,
    })
}

#[async_trait::async_trait]
impl PendingBackups for DynamoStore {
    async fn park(&self, p: &PendingBackup) -> StoreResult<Applied> {
        let location = Update::new(format!("BACKUP#{}", p.backup.id), "BACKUP")
            .set("location", s(p.backup.location.clone().unwrap_or_default()))
            .condition("attribute_exists(pk)");
        let extend = Update::new(format!("LOCK#{}", p.backup.cluster_id), "LOCK")
            .set("expires", n(ms(p.deadline)))
            .set(super::TTL_ATTRIBUTE, ttl_after(p.deadline))
            .condition("#held = :true AND #token = :token")
            .name("#held", "held")
            .name("#token", "token")
            .value(":true", AttributeValue::Bool(true))
            .value(":token", n(p.fencing_token));
        let mut actions = pending_items(p)
            .into_iter()
            .map(|item| put(&self.table, item))
            .collect::<StoreResult<Vec<_>>>()?;
        actions.push(location.transact(&self.table)?);
        // Room for the lock's extension here, and for what settles the backup later: its
        // record, the run's history and the lock's release beside the forgetting of every
        // key parked here (one more than this leaves). A backup parked at the limit of this
        // write alone could never be settled (the settle would be one action too many).
        if actions.len() + 2 > MAX_TRANSACTION_ACTIONS {
            return Err(too_many(p));
        }
        let with_lock = {
            let mut all = actions.clone();
            all.push(extend.transact(&self.table)?);
            all
        };
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(with_lock))
            .client_request_token(format!("park-{}", p.backup.id))
            .send()
            .await
        {
            Ok(_) => return Ok(Applied::Done),
            Err(e) => match super::writes::cancellation(&e) {
                Some(codes)
                    if codes.last().map(String::as_str) == Some("ConditionalCheckFailed") => {}
                _ => return Err(backend("TransactWriteItems", e)),
            },
        }
        // The lock is no longer this backup's: record it pending all the same.
        self.client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .client_request_token(format!("park-unlocked-{}", p.backup.id))
            .send()
            .await
            .map_err(|e| backend("TransactWriteItems", e))?;
        Ok(Applied::Stale)
    }

    async fn find_pending(&self, key: &str) -> StoreResult<Option<PendingBackup>> {
        self.get(key_key(key), "PENDING")
            .await?
            .as_ref()
            .map(pending_from)
            .transpose()
    }

    async fn list_pending(&self, limit: usize) -> StoreResult<Vec<PendingBackup>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(STATE_INDEX)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "state_pk")
            .expression_attribute_values(":pk", s(PENDING_PARTITION))
            .scan_index_forward(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| backend("Query", e))?;
        out.items().iter().map(pending_from).collect()
    }

    async fn park_restore(&self, p: &PendingRestore) -> StoreResult<Applied> {
        let cluster = &p.handle.cluster_id;
        let extend = Update::new(format!("LOCK#{cluster}"), "LOCK")
            .set("expires", n(ms(p.deadline)))
            .set(super::TTL_ATTRIBUTE, ttl_after(p.deadline))
            .condition("#held = :true AND #token = :token")
            .name("#held", "held")
            .name("#token", "token")
            .value(":true", AttributeValue::Bool(true))
            .value(":token", n(p.fencing_token));
        let actions = restore_items(p)
            .into_iter()
            .map(|item| put(&self.table, item))
            .collect::<StoreResult<Vec<_>>>()?;
        if actions.len() + 1 > MAX_TRANSACTION_ACTIONS {
            return Err(StoreError::Backend {
                message: format!(
                    "the restore of cluster {cluster} makes {} volumes; one restore can record \
                     at most {} pending",
                    p.handle.keys.len(),
                    MAX_TRANSACTION_ACTIONS - 2
                ),
                source: None,
            });
        }
        let mut with_lock = actions.clone();
        with_lock.push(extend.transact(&self.table)?);
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(with_lock))
            .send()
            .await
        {
            Ok(_) => return Ok(Applied::Done),
            Err(e) => match super::writes::cancellation(&e) {
                Some(codes)
                    if codes.last().map(String::as_str) == Some("ConditionalCheckFailed") => {}
                _ => return Err(backend("TransactWriteItems", e)),
            },
        }
        // The lock is no longer this restore's: record it pending all the same.
        self.client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
            .map_err(|e| backend("TransactWriteItems", e))?;
        Ok(Applied::Stale)
    }

    async fn find_pending_restore(&self, key: &str) -> StoreResult<Option<PendingRestore>> {
        self.get(restore_key_key(key), "PENDING")
            .await?
            .as_ref()
            .map(restore_from)
            .transpose()
    }

    async fn list_pending_restores(&self, limit: usize) -> StoreResult<Vec<PendingRestore>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(STATE_INDEX)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "state_pk")
            .expression_attribute_values(":pk", s(RESTORE_PARTITION))
            .scan_index_forward(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| backend("Query", e))?;
        out.items().iter().map(restore_from).collect()
    }

    async fn unpark_restore(&self, p: &PendingRestore) -> StoreResult<()> {
        let deletes = restore_pks(p)
            .into_iter()
            .map(|pk| {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s("PENDING"))
                    .build()
                    .map_err(|e| StoreError::backend("invalid transaction delete", e))?;
                Ok(TransactWriteItem::builder().delete(delete).build())
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // One transaction of deletes (authorized as `DeleteItem`), as a settled backup's.
        self.client
            .transact_write_items()
            .set_transact_items(Some(deletes))
            .send()
            .await
            .map_err(|e| backend("TransactWriteItems", e))?;
        Ok(())
    }

    async fn unpark(&self, p: &PendingBackup) -> StoreResult<()> {
        // One transaction of deletes (authorized as `DeleteItem`, item by item): the runner
        // makes no lone `DeleteItem`.
        self.client
            .transact_write_items()
            .set_transact_items(Some(forget(&self.table, p)?))
            .send()
            .await
            .map_err(|e| backend("TransactWriteItems", e))?;
        Ok(())
    }
}
