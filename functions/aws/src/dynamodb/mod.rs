//! Every store port and the cluster lock in one DynamoDB table.
//!
//! # Table design
//!
//! One table (on-demand), primary key `pk` (S) + `sk` (S), four global secondary indexes
//! (projection ALL), and TTL on `expires_at` (epoch seconds). Every read is a `GetItem` (or a
//! `BatchGetItem` of known keys) or a `Query`; nothing scans. Instants are epoch milliseconds (`N`), and in sort keys 13-digit
//! zero-padded milliseconds so that they sort as text.
//!
//! | item | `pk` | `sk` | indexes (pk / sk) |
//! |---|---|---|---|
//! | job | `JOB#<jobId>` | `JOB` | scope: `SCOPE#<org>#<project>#JOB` / `<created>#<jobId>`; state: `JOB#ACTIVE` / `<jobId>` while active |
//! | cluster | `CLUSTER#<clusterId>` | `CLUSTER` | scope: `SCOPE#<org>#<project>#CLUSTER` / `<clusterId>` |
//! | backup | `BACKUP#<backupId>` | `BACKUP` | scope: `SCOPE#…#BACKUP` / `<created>#<backupId>`; job: `JOB#<jobId>#BACKUP` / `<created>#<backupId>` (job backups only, and only until `deleted`); state: `BACKUP#<status>` / `<created>#<backupId>` |
//! | run (= history item) | `RUN#<jobId>#<scheduled>` | `RUN` | scope: `SCOPE#…#HISTORY` / `<start>#<recorded>`; job: `JOB#<jobId>#HISTORY` / `<start>#<recorded>`; state: `RUN#RUNNING` / `<start>#<recorded>` while running or queued; history-id: `history_id` |
//! | cluster lock | `LOCK#<clusterId>` | `LOCK` | none; TTL `expires_at` = lease expiry + 7 days |
//! | sequence | `SEQ#<key>` | `SEQ` | none |
//!
//! Deleted backups and ended runs carry `expires_at` = their end + `HISTORY_DAYS` (default 90),
//! so DynamoDB's TTL removes them and no list grows for ever (SPEC §16).
//!
//! Index names: `scope-index` (`scope_pk`, `scope_sk`), `job-index` (`job_pk`, `job_sk`),
//! `state-index` (`state_pk`, `state_sk`, sparse: only active jobs, unfinished runs and every
//! backup by status), `history-id-index` (`history_id`).
//!
//! # Decisions
//! - **The run record is the history item**, keyed by (job id, scheduled instant): starting
//!   a run puts it with `attribute_not_exists(pk)`, in the transaction that takes the lock
//!   (below), or alone (`PutItem`) for a run that does not start and a queued one; a
//!   duplicate delivery gets the first run's item back in the same call
//!   (`ReturnValuesOnConditionCheckFailure`, in the transaction's cancellation reasons).
//!   `update_history` computes the key from the item's job and scheduled instant.
//! - **History order**: newest first by start instant, then by `recorded`, the recording
//!   process's wall clock in nanoseconds (kept strictly increasing within a process). Two
//!   processes recording in the same millisecond may tie-break in either order.
//! - **The lock** is one item per cluster. Acquisition is an `UpdateItem` conditional on
//!   "absent, released, or lease expired" that adds 1 to `token`; the token is seeded from
//!   the clock's milliseconds when the item is new (`if_not_exists(token, :seed)`), so it
//!   only grows even after TTL removed the item of a cluster unused for a week. Renewal is
//!   conditional on the token, `held` and an unexpired lease; release on the token and
//!   `held`. A failed condition is a domain answer (`Held`, `None`, `false`), read from the
//!   typed `ConditionalCheckFailedException`, never from a message.
//! - **Sequences** are `ADD seq :1` with `ReturnValues: UPDATED_NEW`.
//! - **A run's writes are grouped** (module `writes`): one `BatchGetItem` reads the cluster, its
//!   lock and the job's counter; one `TransactWriteItems` takes the lock, numbers the backup
//!   and records it with the run, conditional on the lock token and counter just read and
//!   on the run being new (the token is set to the one after it, as the single `UpdateItem`
//!   would; the adapter keeps those versions itself, keyed by cluster and counter, so the
//!   engine carries no DynamoDB state); one `TransactWriteItems` records the backup's
//!   outcome and the history item and releases the lock. A failed condition cancels the
//!   whole transaction, so the group is then decided again from fresh reads, or made one
//!   write at a time; a run that finds the lock held records itself and its failure
//!   afterwards, with the same conditional put. `update::Update` builds each conditional
//!   update once for both forms. With the job's `GetItem`, the snapshot and the pending
//!   record's transaction (module `pending`), a run of a one-volume cluster starts in five
//!   calls and settles in three (SPEC §16: at most eight).
//! - **Consistency**: `GetItem`s are strongly consistent; index queries are eventually
//!   consistent, as lists on the API may be.
//! - **Lists page** by sort key: a page `Query` starts after the previous page's last sort
//!   key (`scope_sk < :after`, newest first) and stops at the page's size, so an answer
//!   never holds more than 1,000 records however long the history. A job's backups are
//!   listed from the scope's partition filtered by job: the job index holds live backups
//!   only, for retention.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use backup_core::api::{
    ClusterLockInfo, ClusterStatus, ClusterTarget, HistoryItem, JobStatus, RunFailure, RunStatus,
    Trigger, Verification, VerifyProblem, DEFAULT_NODE_COUNT,
};
use backup_core::retention::BackupStatus;
use backup_engine::ports::{
    BackupStore, ClusterLock, ClusterStore, HistoryStore, JobStore, RunStore, SequenceStore,
    StoreResult,
};
use backup_engine::{
    Acquisition, BackupEntry, BackupFilter, ClusterRecord, ClusterServer, HistoryEntry, JobRecord,
    LockHolder, Page, PageRequest, RunStart, Scope, StoreError,
};
use chrono::{DateTime, Utc};

use update::Update;

use crate::failure::FailedCall;

mod pending;
mod update;
mod writes;

type Item = HashMap<String, AttributeValue>;

pub const SCOPE_INDEX: &str = "scope-index";
pub const JOB_INDEX: &str = "job-index";
pub const STATE_INDEX: &str = "state-index";
pub const HISTORY_ID_INDEX: &str = "history-id-index";
/// The TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long an unused lock item stays after its lease ended.
const LOCK_ITEM_RETENTION_SECONDS: i64 = 7 * 24 * 3600;

/// The store and the cluster lock over one table. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The versions `start` conditions its transaction on (see [`writes`]); shared by clones.
    seen: Arc<writes::SeenVersions>,
    /// Days a deleted backup or an ended run stays before its TTL (`HISTORY_DAYS`).
    history_days: u32,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            seen: Arc::default(),
            history_days: crate::config::DEFAULT_HISTORY_DAYS,
        }
    }

    /// Deleted backups and ended runs expire `days` after their end (SPEC §16).
    pub fn with_history_days(mut self, days: u32) -> DynamoStore {
        self.history_days = days;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table as `infra/template.yaml` declares it (for tests and local
    /// endpoints; deployments use the template) and waits until it is active.
    pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::backend("invalid attribute definition", e))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| StoreError::backend("invalid key schema", e))
        };
        let gsi = |name: &str, pk: &str, sk: Option<&str>| -> StoreResult<GlobalSecondaryIndex> {
            let mut b = GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(pk, KeyType::Hash)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                );
            if let Some(sk) = sk {
                b = b.key_schema(key(sk, KeyType::Range)?);
            }
            b.build()
                .map_err(|e| StoreError::backend("invalid index definition", e))
        };
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi(SCOPE_INDEX, "scope_pk", Some("scope_sk"))?)
            .global_secondary_indexes(gsi(JOB_INDEX, "job_pk", Some("job_sk"))?)
            .global_secondary_indexes(gsi(STATE_INDEX, "state_pk", Some("state_sk"))?)
            .global_secondary_indexes(gsi(HISTORY_ID_INDEX, "history_id", None)?);
        for name in [
            "pk",
            "sk",
            "scope_pk",
            "scope_sk",
            "job_pk",
            "job_sk",
            "state_pk",
            "state_sk",
            "history_id",
        ] {
            request = request.attribute_definitions(attr(name)?);
        }
        request
            .send()
            .await
            .map_err(|e| backend("CreateTable", e))?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(|e| StoreError::backend("invalid TTL specification", e))?,
            )
            .send()
            .await
            .map_err(|e| backend("UpdateTimeToLive", e))?;
        Ok(())
    }

    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        Ok(out.item)
    }

    /// Inserts `item` unless its key exists: `false` when it does.
    async fn put_new(&self, item: Item) -> StoreResult<bool> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if put_condition_failed(&e) => Ok(false),
            Err(e) => Err(backend("PutItem", e)),
        }
    }

    /// Every item of one index partition, in sort-key order (`forward`) or reverse,
    /// optionally filtered (`filter` is an expression over `:f0`, `:f1`, … values). The
    /// SDK's paginator follows `LastEvaluatedKey` (a filtered page may be empty and still
    /// not the last).
    async fn query(
        &self,
        index: Option<&str>,
        pk_attr: &str,
        pk: String,
        forward: bool,
        filter: Option<(&str, Vec<AttributeValue>)>,
    ) -> StoreResult<Vec<Item>> {
        self.partition(index, pk_attr, pk, forward, filter)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| backend("Query", e))
    }

    /// One page of an index partition (SPEC §16): up to [`PageRequest::fetch`] items after
    /// the page's position in the sort key `sk_attr` (`>` going `forward`, `<` going
    /// back), optionally filtered. Unfiltered, DynamoDB's `Limit` reads just that many;
    /// filtered, whole pages (up to 1 MB each) are read until enough items match, since
    /// `Limit` counts items before the filter. The position is a sort-key value, so it
    /// needs no `ExclusiveStartKey` and stays valid when its item is gone.
    async fn query_page(
        &self,
        index: &str,
        (pk_attr, pk): (&str, String),
        sk_attr: &str,
        forward: bool,
        page: &PageRequest,
        filter: Option<(&str, Vec<AttributeValue>)>,
    ) -> StoreResult<Vec<Item>> {
        let want = page.fetch();
        let unfiltered = filter.is_none();
        let mut q = self.partition(Some(index), pk_attr, pk, forward, filter);
        if let Some(after) = &page.after {
            let op = if forward { ">" } else { "<" };
            q = q
                .key_condition_expression(format!("#pk = :pk AND #sk {op} :after"))
                .expression_attribute_names("#sk", sk_attr)
                .expression_attribute_values(":after", s(after));
        }
        if unfiltered {
            q = q.limit(
                i32::try_from(want)
                    .unwrap_or(i32::MAX)
                    .min(QUERY_PAGE_ITEMS),
            );
        }
        let mut items = q.into_paginator().items().send();
        let mut found = Vec::new();
        while found.len() < want {
            match items.next().await {
                Some(item) => found.push(item.map_err(|e| backend("Query", e))?),
                None => break,
            }
        }
        Ok(found)
    }

    /// A `Query` of one index partition (or the table's, `index` `None`).
    fn partition(
        &self,
        index: Option<&str>,
        pk_attr: &str,
        pk: String,
        forward: bool,
        filter: Option<(&str, Vec<AttributeValue>)>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(forward);
        if let Some((expression, values)) = filter {
            for name in ["org", "project", "cluster_id", "job_id"] {
                if expression.contains(&format!("#{name}")) {
                    q = q.expression_attribute_names(format!("#{name}"), name);
                }
            }
            q = q.filter_expression(expression);
            for (i, v) in values.into_iter().enumerate() {
                q = q.expression_attribute_values(format!(":f{i}"), v);
            }
        }
        q
    }

    /// Every record of one index partition, unfiltered, each item read with `from`.
    async fn query_as<T>(
        &self,
        index: &str,
        pk_attr: &str,
        pk: String,
        forward: bool,
        from: fn(&Item) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.query(Some(index), pk_attr, pk, forward, None)
            .await?
            .iter()
            .map(from)
            .collect()
    }
}

/// The most items one unfiltered page `Query` asks for (`Limit`).
const QUERY_PAGE_ITEMS: i32 = 1001;

/// A page of records from the items a [`DynamoStore::query_page`] read: the next page
/// starts after the last kept item's sort key `sk_attr`.
fn page_of<T>(
    items: Vec<Item>,
    page: &PageRequest,
    sk_attr: &str,
    from: impl Fn(&Item) -> StoreResult<T>,
) -> StoreResult<Page<T>> {
    let cut = Page::cut(items, page, |i| opt_s(i, sk_attr).unwrap_or_default());
    Ok(Page {
        items: cut.items.iter().map(from).collect::<StoreResult<_>>()?,
        next: cut.next,
    })
}

// ---------------------------------------------------------------------------------------
// Attribute helpers

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn backend(operation: &str, e: impl FailedCall) -> StoreError {
    let failure = e.describe("DynamoDB", operation);
    StoreError::Backend {
        message: failure.message,
        source: Some(failure.source),
    }
}

fn put_condition_failed(
    e: &SdkError<
        aws_sdk_dynamodb::operation::put_item::PutItemError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    e.as_service_error()
        .is_some_and(|se| se.is_conditional_check_failed_exception())
}

fn update_condition_failed(
    e: &SdkError<
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    e.as_service_error()
        .is_some_and(|se| se.is_conditional_check_failed_exception())
}

fn get_s(item: &Item, name: &str) -> StoreResult<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "item {} has no text attribute `{name}`",
            describe(item)
        ))),
    }
}

fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> StoreResult<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
            StoreError::Corrupt(format!("item {} has a bad number `{name}`", describe(item)))
        }),
        _ => Err(StoreError::Corrupt(format!(
            "item {} has no number attribute `{name}`",
            describe(item)
        ))),
    }
}

/// A number attribute that older items may lack: `None` when absent.
fn opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> StoreResult<Option<T>> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => get_n(item, name).map(Some),
    }
}

fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

fn describe(item: &Item) -> String {
    match (item.get("pk"), item.get("sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => format!("{pk}/{sk}"),
        _ => "(no key)".to_owned(),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Milliseconds as a sortable text key (instants before 1970 sort first as 0).
fn key_ms(t: DateTime<Utc>) -> String {
    format!("{:013}", t.timestamp_millis().max(0))
}

fn get_instant(item: &Item, name: &str) -> StoreResult<DateTime<Utc>> {
    let v: i64 = get_n(item, name)?;
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Corrupt(format!("`{name}` {v} is not an instant")))
}

fn opt_instant(item: &Item, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
    if item.contains_key(name) {
        get_instant(item, name).map(Some)
    } else {
        Ok(None)
    }
}

/// Serde's name of a unit variant (`available`, `schedule`): the one way an enum becomes
/// text in the table, so items use the same names as the API's JSON; [`parse_enum`] reads
/// them back the same way.
fn enum_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A stored `errorCode` ([`RunFailure`]'s serde name); one this version does not know
/// reads as `Unknown`, so the item stays readable.
fn failure(item: &Item) -> Option<RunFailure> {
    opt_s(item, "error_code").map(|c| c.parse().unwrap_or(RunFailure::Unknown))
}

fn parse_enum<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> StoreResult<T> {
    let text = get_s(item, name)?;
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| StoreError::Corrupt(format!("unknown {name} `{text}` in {}", describe(item))))
}

fn scope_key(scope: &Scope, kind: &str) -> String {
    format!("SCOPE#{}#{}#{kind}", scope.org, scope.project)
}

fn read_scope(item: &Item) -> StoreResult<Scope> {
    Ok(Scope {
        org: get_s(item, "org")?,
        project: get_s(item, "project")?,
    })
}

/// Nanoseconds since the epoch, strictly increasing within this process: the recording
/// order of history items.
fn recorded_ns() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Conversions between records and items

fn job_item(job: &JobRecord) -> Item {
    let mut item = Item::from([
        ("pk".into(), s(format!("JOB#{}", job.id))),
        ("sk".into(), s("JOB")),
        ("id".into(), s(&job.id)),
        ("org".into(), s(&job.scope.org)),
        ("project".into(), s(&job.scope.project)),
        ("description".into(), s(&job.description)),
        ("schedule".into(), s(&job.schedule)),
        ("status".into(), s(enum_text(&job.status))),
        ("cluster_id".into(), s(&job.cluster_id)),
        ("template".into(), s(&job.template)),
        ("max_backup_count".into(), n(job.max_backup_count)),
        ("created".into(), n(ms(job.created))),
        ("scope_pk".into(), s(scope_key(&job.scope, "JOB"))),
        (
            "scope_sk".into(),
            s(format!("{}#{}", key_ms(job.created), job.id)),
        ),
    ]);
    if job.status == JobStatus::Active {
        item.insert("state_pk".into(), s("JOB#ACTIVE"));
        item.insert("state_sk".into(), s(&job.id));
    }
    item
}

fn job_from(item: &Item) -> StoreResult<JobRecord> {
    Ok(JobRecord {
        id: get_s(item, "id")?,
        scope: read_scope(item)?,
        description: get_s(item, "description")?,
        schedule: get_s(item, "schedule")?,
        status: parse_enum(item, "status")?,
        cluster_id: get_s(item, "cluster_id")?,
        template: get_s(item, "template")?,
        max_backup_count: get_n(item, "max_backup_count")?,
        created: get_instant(item, "created")?,
    })
}

fn cluster_item(c: &ClusterRecord) -> StoreResult<Item> {
    let target = serde_json::to_string(&c.target)
        .map_err(|e| StoreError::Corrupt(format!("cluster target: {e}")))?;
    let mut item = Item::from([
        ("pk".into(), s(format!("CLUSTER#{}", c.id))),
        ("sk".into(), s("CLUSTER")),
        ("id".into(), s(&c.id)),
        ("org".into(), s(&c.scope.org)),
        ("project".into(), s(&c.scope.project)),
        ("description".into(), s(&c.description)),
        ("region".into(), s(&c.region)),
        ("provider".into(), s(c.target.provider())),
        ("target".into(), s(target)),
        ("created".into(), n(ms(c.created))),
        ("scope_pk".into(), s(scope_key(&c.scope, "CLUSTER"))),
        ("scope_sk".into(), s(&c.id)),
        ("node_count".into(), n(c.server.node_count)),
    ]);
    if let Some(version) = &c.server.version {
        item.insert("server_version".into(), s(version));
    }
    if let Some(tag) = &c.server.version_tag {
        item.insert("server_version_tag".into(), s(tag));
    }
    item.insert("status".into(), s(c.status.as_str()));
    if let Some(details) = &c.details {
        item.insert("details".into(), s(details));
    }
    if let Some(backup_id) = &c.source_backup_id {
        item.insert("source_backup_id".into(), s(backup_id));
    }
    Ok(item)
}

fn cluster_from(item: &Item) -> StoreResult<ClusterRecord> {
    let target_text = get_s(item, "target")?;
    let target: ClusterTarget = serde_json::from_str(&target_text)
        .map_err(|e| StoreError::Corrupt(format!("cluster target `{target_text}`: {e}")))?;
    Ok(ClusterRecord {
        id: get_s(item, "id")?,
        scope: read_scope(item)?,
        description: get_s(item, "description")?,
        region: get_s(item, "region")?,
        target,
        // A cluster registered before these were kept has none of them: not said.
        server: ClusterServer {
            version: opt_s(item, "server_version"),
            version_tag: opt_s(item, "server_version_tag"),
            node_count: opt_n(item, "node_count")?.unwrap_or(DEFAULT_NODE_COUNT),
        },
        created: get_instant(item, "created")?,
        // A cluster registered before restores existed has no status: it is available.
        status: match opt_s(item, "status") {
            Some(text) => text.parse().map_err(StoreError::Corrupt)?,
            None => ClusterStatus::Available,
        },
        details: opt_s(item, "details"),
        source_backup_id: opt_s(item, "source_backup_id"),
    })
}

fn backup_item(b: &BackupEntry) -> Item {
    let order = format!("{}#{}", key_ms(b.created), b.id);
    let mut item = Item::from([
        ("pk".into(), s(format!("BACKUP#{}", b.id))),
        ("sk".into(), s("BACKUP")),
        ("id".into(), s(&b.id)),
        ("org".into(), s(&b.scope.org)),
        ("project".into(), s(&b.scope.project)),
        ("cluster_id".into(), s(&b.cluster_id)),
        ("cluster_description".into(), s(&b.cluster_description)),
        ("provider".into(), s(&b.provider)),
        ("description".into(), s(&b.description)),
        ("created".into(), n(ms(b.created))),
        ("status".into(), s(enum_text(&b.status))),
        ("seq".into(), n(b.index)),
        ("scope_pk".into(), s(scope_key(&b.scope, "BACKUP"))),
        ("scope_sk".into(), s(order.clone())),
        (
            "state_pk".into(),
            s(format!("BACKUP#{}", enum_text(&b.status))),
        ),
        ("state_sk".into(), s(order.clone())),
    ]);
    if let Some(job) = &b.job_id {
        item.insert("job_id".into(), s(job));
        if b.status != BackupStatus::Deleted {
            item.insert("job_pk".into(), s(format!("JOB#{job}#BACKUP")));
            item.insert("job_sk".into(), s(order));
        }
    }
    if let Some(location) = &b.location {
        item.insert("location".into(), s(location));
    }
    if let Some(code) = b.error_code {
        item.insert("error_code".into(), s(code.to_string()));
    }
    if let Some(details) = &b.details {
        item.insert("details".into(), s(details));
    }
    if let Some(size) = b.size_bytes {
        item.insert("size_bytes".into(), n(size));
    }
    if let Some(verification) = &b.verification {
        item.insert("verification".into(), verification_value(verification));
    }
    item
}

/// A verification as a map attribute: `status`, `checked_at` (ms) and `problems`, a list
/// of `{path, problem}` maps.
fn verification_value(v: &Verification) -> AttributeValue {
    let problems = (v.problems.iter())
        .map(|p| {
            AttributeValue::M(Item::from([
                ("path".into(), s(&p.path)),
                ("problem".into(), s(&p.problem)),
            ]))
        })
        .collect();
    AttributeValue::M(Item::from([
        ("status".into(), s(v.status.as_str())),
        ("checked_at".into(), n(ms(v.checked_at))),
        ("problems".into(), AttributeValue::L(problems)),
    ]))
}

fn verification_from(item: &Item) -> StoreResult<Option<Verification>> {
    let Some(value) = item.get("verification") else {
        return Ok(None);
    };
    let corrupt = || {
        StoreError::Corrupt(format!(
            "item {} has an unreadable verification",
            describe(item)
        ))
    };
    let map = value.as_m().map_err(|_| corrupt())?;
    let problems = match map.get("problems") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|p| {
                let p = p.as_m().map_err(|_| corrupt())?;
                Ok(VerifyProblem {
                    path: get_s(p, "path")?,
                    problem: get_s(p, "problem")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?,
        _ => return Err(corrupt()),
    };
    Ok(Some(Verification {
        status: parse_enum(map, "status")?,
        checked_at: get_instant(map, "checked_at")?,
        problems,
    }))
}

fn backup_from(item: &Item) -> StoreResult<BackupEntry> {
    Ok(BackupEntry {
        id: get_s(item, "id")?,
        scope: read_scope(item)?,
        job_id: opt_s(item, "job_id"),
        cluster_id: get_s(item, "cluster_id")?,
        cluster_description: get_s(item, "cluster_description")?,
        provider: get_s(item, "provider")?,
        description: get_s(item, "description")?,
        created: get_instant(item, "created")?,
        status: parse_enum(item, "status")?,
        index: get_n(item, "seq")?,
        location: opt_s(item, "location"),
        error_code: failure(item),
        details: opt_s(item, "details"),
        size_bytes: opt_n(item, "size_bytes")?,
        verification: verification_from(item)?,
    })
}

fn run_key(job_id: &str, scheduled: DateTime<Utc>) -> String {
    format!("RUN#{job_id}#{}", key_ms(scheduled))
}

fn history_item(entry: &HistoryEntry, days: u32) -> Item {
    let h = &entry.item;
    let order = format!("{}#{:020}", key_ms(h.start_time), recorded_ns());
    let mut item = Item::from([
        ("pk".into(), s(run_key(&h.job_id, h.scheduled_time))),
        ("sk".into(), s("RUN")),
        ("history_id".into(), s(&h.id)),
        ("job_id".into(), s(&h.job_id)),
        ("org".into(), s(&entry.scope.org)),
        ("project".into(), s(&entry.scope.project)),
        ("cluster_id".into(), s(&entry.cluster_id)),
        ("scheduled".into(), n(ms(h.scheduled_time))),
        ("trigger".into(), s(enum_text(&h.trigger))),
        ("start".into(), n(ms(h.start_time))),
        ("scope_pk".into(), s(scope_key(&entry.scope, "HISTORY"))),
        ("scope_sk".into(), s(order.clone())),
        ("job_pk".into(), s(format!("JOB#{}#HISTORY", h.job_id))),
        ("job_sk".into(), s(order.clone())),
    ]);
    item.extend(history_outcome(h));
    if h.status.is_final() {
        item.insert("expires_at".into(), history_expiry(h, days));
    } else {
        item.insert("state_pk".into(), s("RUN#RUNNING"));
        item.insert("state_sk".into(), s(order));
    }
    item
}

/// When an ended run's history item expires: `days` after it ended.
fn history_expiry(h: &HistoryItem, days: u32) -> AttributeValue {
    expires_after(h.end_time.unwrap_or(h.start_time), days)
}

/// The attributes a run's progress changes.
fn history_outcome(h: &HistoryItem) -> Item {
    let mut item = Item::from([
        ("status".into(), s(enum_text(&h.status))),
        ("details".into(), s(&h.details)),
        ("linked_resource".into(), s(&h.linked_resource)),
        (
            "pruned".into(),
            AttributeValue::L(h.pruned_backup_ids.iter().map(s).collect()),
        ),
    ]);
    if let Some(end) = h.end_time {
        item.insert("end".into(), n(ms(end)));
    }
    if let Some(code) = h.error_code {
        item.insert("error_code".into(), s(code.to_string()));
    }
    item
}

fn history_from(item: &Item) -> StoreResult<HistoryEntry> {
    let pruned = match item.get("pruned") {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(id) => Ok(id.clone()),
                _ => Err(StoreError::Corrupt("a pruned backup id is not text".into())),
            })
            .collect::<StoreResult<Vec<_>>>()?,
        _ => Vec::new(),
    };
    let trigger: Trigger = parse_enum(item, "trigger")?;
    Ok(HistoryEntry {
        scope: read_scope(item)?,
        cluster_id: get_s(item, "cluster_id")?,
        item: HistoryItem {
            id: get_s(item, "history_id")?,
            job_id: get_s(item, "job_id")?,
            organization_id: get_s(item, "org")?,
            project_id: get_s(item, "project")?,
            status: parse_enum(item, "status")?,
            details: get_s(item, "details")?,
            linked_resource: get_s(item, "linked_resource")?,
            start_time: get_instant(item, "start")?,
            end_time: opt_instant(item, "end")?,
            scheduled_time: get_instant(item, "scheduled")?,
            trigger,
            error_code: failure(item),
            pruned_backup_ids: pruned,
        },
    })
}

fn lock_from(item: &Item) -> StoreResult<ClusterLockInfo> {
    Ok(ClusterLockInfo {
        operation: get_s(item, "operation")?,
        job_id: opt_s(item, "job_id"),
        run_id: opt_s(item, "run_id"),
        since: get_instant(item, "since")?,
        expires: get_instant(item, "expires")?,
        fencing_token: get_n(item, "token")?,
    })
}

fn ttl_after(expires: DateTime<Utc>) -> AttributeValue {
    n(expires.timestamp() + LOCK_ITEM_RETENTION_SECONDS)
}

/// The TTL (`expires_at`, epoch seconds) of a record that ended at `end` and stays listed
/// `days` more (SPEC §16: `HISTORY_DAYS`). DynamoDB removes it some time after, within
/// days, so lists may show it a little longer.
fn expires_after(end: DateTime<Utc>, days: u32) -> AttributeValue {
    n(end.timestamp() + i64::from(days) * 86_400)
}

// ---------------------------------------------------------------------------------------
// Conditional updates, shared by the single writes and the transactions of `writes`

/// Moves a backup from `from` to `to` (and records where it is), only from `from`.
fn backup_status_update(
    backup_id: &str,
    from: BackupStatus,
    to: BackupStatus,
    location: Option<&str>,
) -> Update {
    let update = Update::new(format!("BACKUP#{backup_id}"), "BACKUP")
        .set("status", s(enum_text(&to)))
        .set("state_pk", s(format!("BACKUP#{}", enum_text(&to))))
        .condition("attribute_exists(pk) AND #status = :from")
        .value(":from", s(enum_text(&from)));
    match location {
        Some(location) => update.set("location", s(location)),
        None => update,
    }
}

/// A backup that becomes `deleted` leaves its job's partition (retention plans over live
/// backups only) and expires `HISTORY_DAYS` from now (SPEC §16), however it got there: a
/// delete, or a provider that refused to start and made nothing.
fn deleted_expires(update: Update, to: BackupStatus, history_days: u32) -> Update {
    if to == BackupStatus::Deleted {
        update
            .remove("job_pk")
            .remove("job_sk")
            .set("expires_at", expires_after(Utc::now(), history_days))
    } else {
        update
    }
}

/// Sets the failure code and sentence of a backup (each only when given).
fn backup_details(update: Update, error_code: Option<RunFailure>, details: Option<&str>) -> Update {
    let update = match error_code {
        Some(code) => update.set("error_code", s(code.to_string())),
        None => update,
    };
    match details {
        Some(details) => update.set("details", s(details)),
        None => update,
    }
}

/// Sets a backup's size as its provider reported it, when it did.
fn backup_size(update: Update, size_bytes: Option<u64>) -> Update {
    match size_bytes {
        Some(size) => update.set("size_bytes", n(size)),
        None => update,
    }
}

/// Replaces a run's outcome; the run record must exist and carry this history id.
fn history_update(item: &HistoryItem, days: u32) -> Update {
    let mut update = Update::new(run_key(&item.job_id, item.scheduled_time), "RUN")
        .condition("attribute_exists(pk) AND #history_id = :history_id")
        .name("#history_id", "history_id")
        .value(":history_id", s(&item.id));
    for (name, value) in history_outcome(item) {
        update = update.set(&name, value);
    }
    if item.end_time.is_none() {
        update = update.remove("end");
    }
    if item.error_code.is_none() {
        update = update.remove("error_code");
    }
    if item.status.is_final() {
        update = update
            .remove("state_pk")
            .remove("state_sk")
            .set("expires_at", history_expiry(item, days));
    } else {
        update = update.remove("expires_at");
    }
    update
}

fn no_run_record(item: &HistoryItem) -> StoreError {
    StoreError::Corrupt(format!(
        "history item {} has no run record to update",
        item.id
    ))
}

/// How an acquisition sets the fencing token.
#[derive(Debug, Clone, Copy)]
enum TokenRule {
    /// Adds 1 to whatever it is (seeded from the clock for a new item), if the lock is
    /// absent, released or expired: for a lone `UpdateItem`, which returns the new token.
    Increment,
    /// Sets it to one more than the token seen (`None`: the item did not exist), only if
    /// it is still that token and the lock is released or expired: for a transaction,
    /// which returns nothing, so the token must be known in advance.
    After(Option<u64>),
}

/// Takes a cluster's lock for `holder` until `now + lease`.
fn lock_take(
    cluster_id: &str,
    holder: &LockHolder,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    rule: TokenRule,
) -> Update {
    let expires = now + lease;
    let update = Update::new(format!("LOCK#{cluster_id}"), "LOCK")
        .set("held", AttributeValue::Bool(true))
        .set("operation", s(&holder.operation))
        .set("since", n(ms(now)))
        .set("expires", n(ms(expires)))
        .set(TTL_ATTRIBUTE, ttl_after(expires))
        .set_or_remove("job_id", holder.job_id.as_deref().map(s))
        .set_or_remove("run_id", holder.run_id.as_deref().map(s))
        .name("#token", "token");
    let free = |update: Update| {
        update
            .value(":false", AttributeValue::Bool(false))
            .value(":now", n(ms(now)))
    };
    match rule {
        TokenRule::Increment => free(update)
            .set_expression("#token = if_not_exists(#token, :seed) + :one")
            .value(":seed", n(token_seed(now)))
            .value(":one", n(1))
            .condition("attribute_not_exists(pk) OR #held = :false OR #expires <= :now"),
        TokenRule::After(seen) => {
            let update = update
                .set_expression("#token = :token")
                .value(":token", n(token_after(seen, now)));
            match seen {
                None => update.condition("attribute_not_exists(pk)"),
                Some(token) => free(update)
                    .condition("#token = :seen AND (#held = :false OR #expires <= :now)")
                    .value(":seen", n(token)),
            }
        }
    }
}

/// A new lock item's token starts from the clock's milliseconds, so tokens keep growing
/// even after TTL removed the item of a cluster unused for a week.
fn token_seed(now: DateTime<Utc>) -> i64 {
    ms(now).max(0)
}

/// The token an acquisition after `seen` gets (what [`TokenRule::Increment`] would give).
fn token_after(seen: Option<u64>, now: DateTime<Utc>) -> u64 {
    match seen {
        Some(token) => token.saturating_add(1),
        None => u64::try_from(token_seed(now))
            .unwrap_or(0)
            .saturating_add(1),
    }
}

/// Releases the lock if `fencing_token` still holds it.
fn lock_release(cluster_id: &str, fencing_token: u64) -> Update {
    Update::new(format!("LOCK#{cluster_id}"), "LOCK")
        .set("held", AttributeValue::Bool(false))
        .condition("#held = :true AND #token = :token")
        .name("#token", "token")
        .value(":true", AttributeValue::Bool(true))
        .value(":token", n(fencing_token))
}

// ---------------------------------------------------------------------------------------
// Ports

#[async_trait]
impl JobStore for DynamoStore {
    async fn insert_job(&self, job: &JobRecord) -> StoreResult<bool> {
        self.put_new(job_item(job)).await
    }

    async fn get_job(&self, job_id: &str) -> StoreResult<Option<JobRecord>> {
        self.get(format!("JOB#{job_id}"), "JOB")
            .await?
            .map(|i| job_from(&i))
            .transpose()
    }

    async fn list_jobs(&self, scope: &Scope, page: &PageRequest) -> StoreResult<Page<JobRecord>> {
        let partition = ("scope_pk", scope_key(scope, "JOB"));
        let items =
            (self.query_page(SCOPE_INDEX, partition, "scope_sk", false, page, None)).await?;
        page_of(items, page, "scope_sk", job_from)
    }

    async fn list_active_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        self.query_as(STATE_INDEX, "state_pk", "JOB#ACTIVE".into(), true, job_from)
            .await
    }

    async fn mark_job_deleted(&self, job_id: &str) -> StoreResult<bool> {
        Update::new(format!("JOB#{job_id}"), "JOB")
            .set("status", s(enum_text(&JobStatus::Deleted)))
            .remove("state_pk")
            .remove("state_sk")
            .condition("attribute_exists(pk) AND #status = :active")
            .value(":active", s(enum_text(&JobStatus::Active)))
            .apply(&self.client, &self.table)
            .await
    }

    async fn update_job(&self, job: &JobRecord) -> StoreResult<bool> {
        // Conditional on `active`, in the same request: a delete that lands between the
        // engine's read and this write wins, and the job stays deleted.
        Update::new(format!("JOB#{}", job.id), "JOB")
            .set("description", s(&job.description))
            .set("schedule", s(&job.schedule))
            .set("template", s(&job.template))
            .set("max_backup_count", n(job.max_backup_count))
            .condition("attribute_exists(pk) AND #status = :active")
            .name("#status", "status")
            .value(":active", s(enum_text(&JobStatus::Active)))
            .apply(&self.client, &self.table)
            .await
    }

    async fn remove_job(&self, job_id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("JOB#{job_id}")))
            .key("sk", s("JOB"))
            .send()
            .await
            .map_err(|e| backend("DeleteItem", e))?;
        Ok(())
    }
}

#[async_trait]
impl ClusterStore for DynamoStore {
    async fn insert_cluster(&self, cluster: &ClusterRecord) -> StoreResult<bool> {
        self.put_new(cluster_item(cluster)?).await
    }

    async fn get_cluster(&self, cluster_id: &str) -> StoreResult<Option<ClusterRecord>> {
        self.get(format!("CLUSTER#{cluster_id}"), "CLUSTER")
            .await?
            .map(|i| cluster_from(&i))
            .transpose()
    }

    async fn list_clusters(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Page<ClusterRecord>> {
        let partition = ("scope_pk", scope_key(scope, "CLUSTER"));
        let items = (self.query_page(SCOPE_INDEX, partition, "scope_sk", true, page, None)).await?;
        page_of(items, page, "scope_sk", cluster_from)
    }

    async fn delete_cluster(&self, cluster_id: &str) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("CLUSTER#{cluster_id}")))
            .key("sk", s("CLUSTER"))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| backend("DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn update_cluster_state(
        &self,
        cluster_id: &str,
        status: ClusterStatus,
        details: Option<&str>,
        target: Option<&ClusterTarget>,
    ) -> StoreResult<bool> {
        let mut update = Update::new(format!("CLUSTER#{cluster_id}"), "CLUSTER")
            .set("status", s(status.as_str()))
            .set_or_remove("details", details.map(s))
            .condition("attribute_exists(pk)");
        if let Some(target) = target {
            let text = serde_json::to_string(target)
                .map_err(|e| StoreError::Corrupt(format!("cluster target: {e}")))?;
            update = update
                .set("target", s(text))
                .set("provider", s(target.provider()));
        }
        update.apply(&self.client, &self.table).await
    }
}

#[async_trait]
impl BackupStore for DynamoStore {
    async fn insert_backup(&self, backup: &BackupEntry) -> StoreResult<bool> {
        self.put_new(backup_item(backup)).await
    }

    async fn get_backup(&self, backup_id: &str) -> StoreResult<Option<BackupEntry>> {
        self.get(format!("BACKUP#{backup_id}"), "BACKUP")
            .await?
            .map(|i| backup_from(&i))
            .transpose()
    }

    async fn list_backups(
        &self,
        scope: &Scope,
        filter: &BackupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackupEntry>> {
        // The scope's partition, newest first, filtered by job and cluster: the job index
        // holds live backups only (a sparse key, so retention reads no deleted ones), and
        // the list shows deleted ones too until they expire.
        let mut values = Vec::new();
        let mut conditions = Vec::new();
        for (name, value) in [
            ("job_id", &filter.job_id),
            ("cluster_id", &filter.cluster_id),
        ] {
            if let Some(value) = value {
                conditions.push(format!("#{name} = :f{}", values.len()));
                values.push(s(value));
            }
        }
        let expression = conditions.join(" AND ");
        let filter = (!values.is_empty()).then_some((expression.as_str(), values));
        let partition = ("scope_pk", scope_key(scope, "BACKUP"));
        let items =
            (self.query_page(SCOPE_INDEX, partition, "scope_sk", false, page, filter)).await?;
        page_of(items, page, "scope_sk", backup_from)
    }

    async fn list_job_backups(&self, job_id: &str) -> StoreResult<Vec<BackupEntry>> {
        self.query_as(
            JOB_INDEX,
            "job_pk",
            format!("JOB#{job_id}#BACKUP"),
            false,
            backup_from,
        )
        .await
    }

    async fn get_backups(&self, ids: &[String]) -> StoreResult<Vec<BackupEntry>> {
        let keys = ids
            .iter()
            .map(|id| (format!("BACKUP#{id}"), "BACKUP"))
            .collect();
        self.batch_get(keys)
            .await?
            .iter()
            .map(backup_from)
            .collect()
    }

    async fn list_backups_in_status(&self, status: BackupStatus) -> StoreResult<Vec<BackupEntry>> {
        self.query_as(
            STATE_INDEX,
            "state_pk",
            format!("BACKUP#{}", enum_text(&status)),
            false,
            backup_from,
        )
        .await
    }

    async fn update_backup_status(
        &self,
        backup_id: &str,
        from: BackupStatus,
        to: BackupStatus,
    ) -> StoreResult<bool> {
        let update = backup_status_update(backup_id, from, to, None);
        deleted_expires(update, to, self.history_days)
            .apply(&self.client, &self.table)
            .await
    }

    async fn set_backup_location(&self, backup_id: &str, location: &str) -> StoreResult<()> {
        let applied = Update::new(format!("BACKUP#{backup_id}"), "BACKUP")
            .set("location", s(location))
            .condition("attribute_exists(pk)")
            .apply(&self.client, &self.table)
            .await?;
        if applied {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "backup {backup_id} has no record to set its location on"
            )))
        }
    }

    async fn set_backup_details(
        &self,
        backup_id: &str,
        error_code: Option<RunFailure>,
        details: Option<&str>,
    ) -> StoreResult<()> {
        if error_code.is_none() && details.is_none() {
            return Ok(());
        }
        let update =
            Update::new(format!("BACKUP#{backup_id}"), "BACKUP").condition("attribute_exists(pk)");
        let applied = backup_details(update, error_code, details)
            .apply(&self.client, &self.table)
            .await?;
        if applied {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "backup {backup_id} has no record to set its details on"
            )))
        }
    }

    async fn set_backup_size(&self, backup_id: &str, size_bytes: u64) -> StoreResult<()> {
        let update =
            Update::new(format!("BACKUP#{backup_id}"), "BACKUP").condition("attribute_exists(pk)");
        let applied = backup_size(update, Some(size_bytes))
            .apply(&self.client, &self.table)
            .await?;
        if applied {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "backup {backup_id} has no record to set its size on"
            )))
        }
    }

    async fn set_backup_verification(
        &self,
        backup_id: &str,
        verification: &Verification,
    ) -> StoreResult<()> {
        let applied = Update::new(format!("BACKUP#{backup_id}"), "BACKUP")
            .set("verification", verification_value(verification))
            .condition("attribute_exists(pk)")
            .apply(&self.client, &self.table)
            .await?;
        if applied {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!(
                "backup {backup_id} has no record to set its verification on"
            )))
        }
    }
}

#[async_trait]
impl RunStore for DynamoStore {
    async fn begin_run(&self, entry: &HistoryEntry) -> StoreResult<RunStart> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(history_item(entry, self.history_days)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(RunStart::Started),
            Err(e) if put_condition_failed(&e) => {
                // The first delivery's item comes back with the failure; read it if not.
                let old = e
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
                        _ => None,
                    })
                    .filter(|i| !i.is_empty());
                let item = match old {
                    Some(item) => item,
                    None => self
                        .get(
                            run_key(&entry.item.job_id, entry.item.scheduled_time),
                            "RUN",
                        )
                        .await?
                        .ok_or_else(|| {
                            StoreError::Corrupt("a run record vanished while read".into())
                        })?,
                };
                Ok(RunStart::AlreadyRan(history_from(&item)?.item))
            }
            Err(e) => Err(backend("PutItem", e)),
        }
    }
}

#[async_trait]
impl HistoryStore for DynamoStore {
    async fn update_history(&self, item: &HistoryItem) -> StoreResult<()> {
        if history_update(item, self.history_days)
            .apply(&self.client, &self.table)
            .await?
        {
            Ok(())
        } else {
            Err(no_run_record(item))
        }
    }

    async fn claim_queued(&self, item: &HistoryItem) -> StoreResult<bool> {
        history_update(item, self.history_days)
            .condition("attribute_exists(pk) AND #history_id = :history_id AND #status = :queued")
            .name("#status", "status")
            .value(":queued", s(enum_text(&RunStatus::Queued)))
            .apply(&self.client, &self.table)
            .await
    }

    async fn get_history(&self, history_id: &str) -> StoreResult<Option<HistoryEntry>> {
        let items = self
            .query(
                Some(HISTORY_ID_INDEX),
                "history_id",
                history_id.to_owned(),
                true,
                None,
            )
            .await?;
        items.first().map(history_from).transpose()
    }

    async fn list_history(
        &self,
        scope: &Scope,
        job_id: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<HistoryItem>> {
        let in_scope = (
            "#org = :f0 AND #project = :f1",
            vec![s(&scope.org), s(&scope.project)],
        );
        let (index, partition, sk, filter) = match job_id {
            Some(job) => (
                JOB_INDEX,
                ("job_pk", format!("JOB#{job}#HISTORY")),
                "job_sk",
                Some(in_scope),
            ),
            None => (
                SCOPE_INDEX,
                ("scope_pk", scope_key(scope, "HISTORY")),
                "scope_sk",
                None,
            ),
        };
        let items = self
            .query_page(index, partition, sk, false, page, filter)
            .await?;
        page_of(items, page, sk, |i| history_from(i).map(|h| h.item))
    }

    async fn list_running(&self) -> StoreResult<Vec<HistoryEntry>> {
        self.query_as(
            STATE_INDEX,
            "state_pk",
            "RUN#RUNNING".into(),
            true,
            history_from,
        )
        .await
    }
}

#[async_trait]
impl SequenceStore for DynamoStore {
    async fn next_sequence(&self, key: &str) -> StoreResult<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("SEQ#{key}")))
            .key("sk", s("SEQ"))
            .update_expression("ADD #seq :one")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| backend("UpdateItem", e))?;
        get_n(&out.attributes.unwrap_or_default(), "seq")
    }
}

#[async_trait]
impl ClusterLock for DynamoStore {
    async fn try_acquire(
        &self,
        cluster_id: &str,
        holder: &LockHolder,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<Acquisition> {
        let take = lock_take(cluster_id, holder, now, lease, TokenRule::Increment);
        match take
            .send(&self.client, &self.table, ReturnValue::AllNew)
            .await
        {
            Ok(out) => Ok(Acquisition::Acquired(lock_from(
                &out.attributes.unwrap_or_default(),
            )?)),
            Err(e) if update_condition_failed(&e) => {
                // The holder comes back with the failure. Should it be unreadable (an
                // endpoint that returns a partial item), read the lock again.
                let old = e
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
                        _ => None,
                    })
                    .and_then(|item| lock_from(&item).ok());
                match old {
                    Some(info) => Ok(Acquisition::Held(info)),
                    None => match self.current(cluster_id, now).await? {
                        Some(info) => Ok(Acquisition::Held(info)),
                        None => Err(StoreError::Backend {
                            message: format!(
                                "the lock of cluster {cluster_id} was refused but has no holder; try again"
                            ),
                            source: None,
                        }),
                    },
                }
            }
            Err(e) => Err(backend("UpdateItem", e)),
        }
    }

    async fn renew(
        &self,
        cluster_id: &str,
        fencing_token: u64,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<Option<ClusterLockInfo>> {
        let expires = now + lease;
        let renewal = Update::new(format!("LOCK#{cluster_id}"), "LOCK")
            .set("expires", n(ms(expires)))
            .set(TTL_ATTRIBUTE, ttl_after(expires))
            .condition("#held = :true AND #token = :token AND #expires > :now")
            .name("#held", "held")
            .name("#token", "token")
            .value(":true", AttributeValue::Bool(true))
            .value(":token", n(fencing_token))
            .value(":now", n(ms(now)));
        match renewal
            .send(&self.client, &self.table, ReturnValue::AllNew)
            .await
        {
            Ok(out) => Ok(Some(lock_from(&out.attributes.unwrap_or_default())?)),
            Err(e) if update_condition_failed(&e) => Ok(None),
            Err(e) => Err(backend("UpdateItem", e)),
        }
    }

    async fn release(&self, cluster_id: &str, fencing_token: u64) -> StoreResult<bool> {
        lock_release(cluster_id, fencing_token)
            .apply(&self.client, &self.table)
            .await
    }

    async fn current(
        &self,
        cluster_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClusterLockInfo>> {
        let Some(item) = self.get(format!("LOCK#{cluster_id}"), "LOCK").await? else {
            return Ok(None);
        };
        if !get_bool(&item, "held") {
            return Ok(None);
        }
        let info = lock_from(&item)?;
        Ok((info.expires > now).then_some(info))
    }
}
