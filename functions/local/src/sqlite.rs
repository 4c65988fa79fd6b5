//! The SQLite store and cluster lock: one file (`state.db`) holds jobs, clusters, the backup
//! catalogue, run records, history, sequences and locks.
//!
//! # Why one connection behind a mutex, on blocking threads
//! `rusqlite` is synchronous, and SQLite runs one writer at a time anyway. Every call takes
//! the one connection (a `std::sync::Mutex`, held only for the call, never across an
//! `.await`) on `tokio::task::spawn_blocking`, so the async runtime never blocks on disk and
//! our own calls never contend for SQLite's write lock (no `SQLITE_BUSY` between them). The
//! local server's load (a handful of requests and runs) needs no more; a second process on the
//! same file is still safe, because every read-modify-write runs in a `BEGIN IMMEDIATE`
//! transaction and the connection waits up to five seconds for the file lock.
//!
//! # Durability
//! WAL journal with `synchronous = FULL`: a committed lock, run record or backup status
//! survives a crash and a power cut, which is what the lock's and runs' guarantees rest on.
//! A backup's start and its end are each one transaction (`sqlite/writes.rs`), so a backup
//! costs two such commits, not one per write.
//! Instants are stored as integer milliseconds since the epoch (UTC).

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use backup_core::api::{
    ClusterLockInfo, ClusterStatus, ClusterTarget, HistoryItem, JobStatus, RunFailure, RunStatus,
    Trigger, Verification,
};
use backup_core::retention::BackupStatus;
use backup_engine::page::{instant_position, split_instant_position};
use backup_engine::ports::{
    BackupStore, ClusterLock, ClusterStore, HistoryStore, JobStore, RunStore, SequenceStore,
    StoreResult,
};
use backup_engine::{
    Acquisition, BackupEntry, BackupFilter, ClusterRecord, ClusterServer, HistoryEntry, JobRecord,
    LockHolder, Page, PageRequest, RunStart, Scope, StoreError,
};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

mod writes;

/// The schema version this code writes (`PRAGMA user_version`).
/// Version 2 added `backups.error_code` and `backups.details` (manual backups say why they
/// failed); [`SqliteStore::init`] adds them to a version-1 file.
/// Version 3 added `clusters.server_version`, `clusters.server_version_tag`,
/// `clusters.node_count` (what backups show as esc's fields) and `backups.size_bytes`;
/// an older file gets them with the values of "not said": NULL, NULL, 1 and NULL.
/// Version 4 added `clusters.status`, `clusters.details`, `clusters.source_backup_id`
/// (restores, SPEC §14) and `backups.verification` (the last verify, as JSON); an older
/// file's clusters are `available`, registered rather than restored, and its backups not
/// verified yet.
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    description TEXT NOT NULL,
    schedule TEXT NOT NULL,
    status TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    template TEXT NOT NULL,
    max_backup_count INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_scope ON jobs (org, project, created_ms);
CREATE TABLE IF NOT EXISTS clusters (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    description TEXT NOT NULL,
    region TEXT NOT NULL,
    target TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    server_version TEXT,
    server_version_tag TEXT,
    node_count INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'available',
    details TEXT,
    source_backup_id TEXT
);
CREATE TABLE IF NOT EXISTS backups (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    job_id TEXT,
    cluster_id TEXT NOT NULL,
    cluster_description TEXT NOT NULL,
    provider TEXT NOT NULL,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    seq_index INTEGER NOT NULL,
    location TEXT,
    error_code TEXT,
    details TEXT,
    size_bytes INTEGER,
    verification TEXT
);
CREATE INDEX IF NOT EXISTS backups_by_scope ON backups (org, project, created_ms);
CREATE INDEX IF NOT EXISTS backups_by_job ON backups (job_id);
CREATE TABLE IF NOT EXISTS runs (
    job_id TEXT NOT NULL,
    scheduled_ms INTEGER NOT NULL,
    history_id TEXT NOT NULL,
    PRIMARY KEY (job_id, scheduled_ms)
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    details TEXT NOT NULL,
    linked_resource TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    scheduled_ms INTEGER NOT NULL,
    run_trigger TEXT NOT NULL,
    error_code TEXT,
    pruned TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_scope ON history (org, project, start_ms);
CREATE INDEX IF NOT EXISTS history_by_status ON history (status);
CREATE TABLE IF NOT EXISTS locks (
    cluster_id TEXT PRIMARY KEY,
    fencing_token INTEGER NOT NULL,
    held INTEGER NOT NULL,
    operation TEXT NOT NULL,
    job_id TEXT,
    run_id TEXT,
    since_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sequences (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"#;

/// Errors inside a blocking call, turned into the engine's [`StoreError`] at the boundary.
#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Corrupt(String),
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Sqlite(e) => StoreError::backend("SQLite failed", e),
            DbError::Corrupt(m) => StoreError::Corrupt(m),
        }
    }
}

type DbResult<T> = Result<T, DbError>;

/// The state of the local mode in one SQLite file. Implements every store port and
/// [`ClusterLock`]. Clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Replaces a history item's outcome; with `only_queued`, only while it is `queued`.
    /// `true` when a row changed.
    async fn write_history(&self, item: &HistoryItem, only_queued: bool) -> StoreResult<bool> {
        let item = item.clone();
        let pruned = pruned_text(&item)?;
        self.call(move |c| write_history_in(c, &item, &pruned, only_queued))
            .await
    }
}

/// A history item's pruned backup ids as stored (a JSON array).
fn pruned_text(item: &HistoryItem) -> StoreResult<String> {
    serde_json::to_string(&item.pruned_backup_ids)
        .map_err(|err| StoreError::Corrupt(format!("cannot encode pruned ids: {err}")))
}

/// [`SqliteStore::write_history`]'s statement, on a connection or in a transaction.
fn write_history_in(
    c: &Connection,
    item: &HistoryItem,
    pruned: &str,
    only_queued: bool,
) -> DbResult<bool> {
    let condition = if only_queued {
        " AND status = 'queued'"
    } else {
        ""
    };
    let changed = c.execute(
        &format!(
            "UPDATE history SET status = ?2, details = ?3, linked_resource = ?4, \
             end_ms = ?5, error_code = ?6, pruned = ?7 WHERE id = ?1{condition}"
        ),
        params![
            item.id,
            run_status_str(item.status),
            item.details,
            item.linked_resource,
            item.end_time.map(ms),
            item.error_code.map(|c| c.to_string()),
            pruned,
        ],
    )?;
    Ok(changed == 1)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::backend(format!("cannot open {}", path.display()), e))?;
        Self::init(conn)
    }

    /// Every registered cluster's id and data directory, read from the database at `path`
    /// without opening it as the store (for start-up checks made before the store opens).
    pub fn cluster_paths(path: &Path) -> Result<Vec<(String, String)>, StoreError> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| StoreError::backend(format!("cannot open {}", path.display()), e))?;
        let read = || -> rusqlite::Result<Vec<(String, String)>> {
            let mut stmt = conn.prepare("SELECT id, target FROM clusters")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            rows.collect()
        };
        let rows = match read() {
            Ok(rows) => rows,
            // A database made before clusters had a table: no cluster.
            Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("no such table") => {
                Vec::new()
            }
            Err(e) => return Err(StoreError::backend("cannot read the clusters", e)),
        };
        Ok(rows
            .into_iter()
            .filter_map(|(id, target)| {
                let target: ClusterTarget = serde_json::from_str(&target).ok()?;
                Some((id, target.path()?.to_owned()))
            })
            .collect())
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()
            .map_err(|e| StoreError::backend("cannot open an in-memory database", e))?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        let setup = || -> DbResult<()> {
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            // `journal_mode` answers with the mode in force (`memory` for in-memory files).
            let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            conn.execute_batch("PRAGMA synchronous = FULL;")?;
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(DbError::Corrupt(format!(
                    "the database has schema version {version}, newer than this backupctl \
                     understands ({SCHEMA_VERSION}); upgrade backupctl"
                )));
            }
            conn.execute_batch(SCHEMA)?;
            if version == 1 {
                conn.execute_batch(
                    "ALTER TABLE backups ADD COLUMN error_code TEXT; \
                     ALTER TABLE backups ADD COLUMN details TEXT;",
                )?;
            }
            if version == 1 || version == 2 {
                conn.execute_batch(
                    "ALTER TABLE clusters ADD COLUMN server_version TEXT; \
                     ALTER TABLE clusters ADD COLUMN server_version_tag TEXT; \
                     ALTER TABLE clusters ADD COLUMN node_count INTEGER NOT NULL DEFAULT 1; \
                     ALTER TABLE backups ADD COLUMN size_bytes INTEGER;",
                )?;
            }
            if (1..=3).contains(&version) {
                conn.execute_batch(
                    "ALTER TABLE clusters ADD COLUMN status TEXT NOT NULL DEFAULT 'available'; \
                     ALTER TABLE clusters ADD COLUMN details TEXT; \
                     ALTER TABLE clusters ADD COLUMN source_backup_id TEXT; \
                     ALTER TABLE backups ADD COLUMN verification TEXT;",
                )?;
            }
            conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
            Ok(())
        };
        setup()?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on a blocking thread.
    async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let joined = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a transaction open (rusqlite rolls
            // back on drop), so a poisoned mutex still guards a usable connection.
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await;
        match joined {
            Ok(result) => result.map_err(StoreError::from),
            Err(e) => Err(StoreError::backend("a database task stopped", e)),
        }
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn instant(ms: i64) -> DbResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| DbError::Corrupt(format!("instant {ms} ms is out of range")))
}

fn job_status_str(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Active => "active",
        JobStatus::Deleted => "deleted",
    }
}

fn job_status(s: &str) -> DbResult<JobStatus> {
    match s {
        "active" => Ok(JobStatus::Active),
        "deleted" => Ok(JobStatus::Deleted),
        other => Err(DbError::Corrupt(format!("unknown job status {other:?}"))),
    }
}

fn run_status_str(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Queued => "queued",
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
    }
}

/// A stored `errorCode`: the text [`RunFailure`]'s serde names give; one this version does
/// not know reads as `Unknown`, so the record stays readable.
fn failure(code: Option<String>) -> Option<RunFailure> {
    code.map(|c| c.parse().unwrap_or(RunFailure::Unknown))
}

fn run_status(s: &str) -> DbResult<RunStatus> {
    match s {
        "queued" => Ok(RunStatus::Queued),
        "running" => Ok(RunStatus::Running),
        "succeeded" => Ok(RunStatus::Succeeded),
        "failed" => Ok(RunStatus::Failed),
        other => Err(DbError::Corrupt(format!("unknown run status {other:?}"))),
    }
}

fn trigger_str(t: Trigger) -> &'static str {
    match t {
        Trigger::Schedule => "schedule",
        Trigger::Manual => "manual",
    }
}

fn trigger(s: &str) -> DbResult<Trigger> {
    match s {
        "schedule" => Ok(Trigger::Schedule),
        "manual" => Ok(Trigger::Manual),
        other => Err(DbError::Corrupt(format!("unknown trigger {other:?}"))),
    }
}

const JOB_COLUMNS: &str =
    "id, org, project, description, schedule, status, cluster_id, template, max_backup_count, created_ms";

fn job_from_row(row: &Row<'_>) -> DbResult<JobRecord> {
    let status: String = row.get(5)?;
    let max: i64 = row.get(8)?;
    Ok(JobRecord {
        id: row.get(0)?,
        scope: Scope {
            org: row.get(1)?,
            project: row.get(2)?,
        },
        description: row.get(3)?,
        schedule: row.get(4)?,
        status: job_status(&status)?,
        cluster_id: row.get(6)?,
        template: row.get(7)?,
        max_backup_count: u32::try_from(max)
            .map_err(|_| DbError::Corrupt(format!("maxBackupCount {max} is out of range")))?,
        created: instant(row.get(9)?)?,
    })
}

const CLUSTER_COLUMNS: &str = "id, org, project, description, region, target, created_ms, \
     server_version, server_version_tag, node_count, status, details, source_backup_id";

fn cluster_from_row(row: &Row<'_>) -> DbResult<ClusterRecord> {
    let target: String = row.get(5)?;
    let target: ClusterTarget = serde_json::from_str(&target)
        .map_err(|e| DbError::Corrupt(format!("a cluster's target is unreadable: {e}")))?;
    Ok(ClusterRecord {
        id: row.get(0)?,
        scope: Scope {
            org: row.get(1)?,
            project: row.get(2)?,
        },
        description: row.get(3)?,
        region: row.get(4)?,
        target,
        server: ClusterServer {
            version: row.get(7)?,
            version_tag: row.get(8)?,
            node_count: u32::try_from(row.get::<_, i64>(9)?)
                .map_err(|_| DbError::Corrupt("a cluster's node count is out of range".into()))?,
        },
        created: instant(row.get(6)?)?,
        status: row
            .get::<_, String>(10)?
            .parse::<ClusterStatus>()
            .map_err(DbError::Corrupt)?,
        details: row.get(11)?,
        source_backup_id: row.get(12)?,
    })
}

const BACKUP_COLUMNS: &str =
    "id, org, project, job_id, cluster_id, cluster_description, provider, \
     description, created_ms, status, seq_index, location, error_code, details, size_bytes, \
     verification";

fn backup_from_row(row: &Row<'_>) -> DbResult<BackupEntry> {
    let status: String = row.get(9)?;
    let index: i64 = row.get(10)?;
    Ok(BackupEntry {
        id: row.get(0)?,
        scope: Scope {
            org: row.get(1)?,
            project: row.get(2)?,
        },
        job_id: row.get(3)?,
        cluster_id: row.get(4)?,
        cluster_description: row.get(5)?,
        provider: row.get(6)?,
        description: row.get(7)?,
        created: instant(row.get(8)?)?,
        status: status
            .parse::<BackupStatus>()
            .map_err(|e| DbError::Corrupt(e.to_string()))?,
        index: u64::try_from(index)
            .map_err(|_| DbError::Corrupt(format!("backup index {index} is negative")))?,
        location: row.get(11)?,
        error_code: failure(row.get(12)?),
        details: row.get(13)?,
        size_bytes: row
            .get::<_, Option<i64>>(14)?
            .map(u64::try_from)
            .transpose()
            .map_err(|_| DbError::Corrupt("a backup's size is negative".into()))?,
        verification: row
            .get::<_, Option<String>>(15)?
            .map(|text| serde_json::from_str::<Verification>(&text))
            .transpose()
            .map_err(|e| DbError::Corrupt(format!("a backup's verification is unreadable: {e}")))?,
    })
}

/// A verification as stored: its API JSON, which already has a stable shape (SPEC §14).
fn verification_text(verification: Option<&Verification>) -> StoreResult<Option<String>> {
    verification
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a backup's verification: {e}")))
}

const HISTORY_COLUMNS: &str = "id, org, project, cluster_id, job_id, status, details, \
     linked_resource, start_ms, end_ms, scheduled_ms, run_trigger, error_code, pruned";

fn history_from_row(row: &Row<'_>) -> DbResult<HistoryEntry> {
    let status: String = row.get(5)?;
    let end: Option<i64> = row.get(9)?;
    let run_trigger: String = row.get(11)?;
    let pruned: String = row.get(13)?;
    Ok(HistoryEntry {
        scope: Scope {
            org: row.get(1)?,
            project: row.get(2)?,
        },
        cluster_id: row.get(3)?,
        item: HistoryItem {
            id: row.get(0)?,
            job_id: row.get(4)?,
            organization_id: row.get(1)?,
            project_id: row.get(2)?,
            status: run_status(&status)?,
            details: row.get(6)?,
            linked_resource: row.get(7)?,
            start_time: instant(row.get(8)?)?,
            end_time: end.map(instant).transpose()?,
            scheduled_time: instant(row.get(10)?)?,
            trigger: trigger(&run_trigger)?,
            error_code: failure(row.get(12)?),
            pruned_backup_ids: serde_json::from_str(&pruned)
                .map_err(|e| DbError::Corrupt(format!("pruned backup ids are unreadable: {e}")))?,
        },
    })
}

/// A history row selected with its `seq` after the other columns (the order of recording,
/// the tie-break of the history's pages).
fn history_and_seq_from_row(row: &Row<'_>) -> DbResult<(HistoryEntry, i64)> {
    Ok((history_from_row(row)?, row.get(14)?))
}

/// A page's position `<ms>#<tie-break>` as the two values SQLite compares as a row.
fn instant_after(page: &PageRequest) -> StoreResult<(Option<i64>, Option<String>)> {
    match page.after.as_deref() {
        None => Ok((None, None)),
        Some(after) => match split_instant_position(after) {
            Some((ms, rest)) => Ok((Some(ms), Some(rest.to_owned()))),
            None => Err(StoreError::Corrupt(format!(
                "`{after}` is not a position of this list"
            ))),
        },
    }
}

/// The `LIMIT` of a page's query: one more than the page, to know whether another follows.
fn fetch(page: &PageRequest) -> i64 {
    i64::try_from(page.fetch()).unwrap_or(i64::MAX)
}

/// Collects a query's rows through a fallible row mapper.
fn collect<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    map: fn(&Row<'_>) -> DbResult<T>,
) -> DbResult<Vec<T>> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

fn get_history_tx(conn: &Connection, id: &str) -> DbResult<Option<HistoryEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {HISTORY_COLUMNS} FROM history WHERE id = ?1"
    ))?;
    Ok(collect(&mut stmt, params![id], history_from_row)?
        .into_iter()
        .next())
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn insert_job(&self, job: &JobRecord) -> StoreResult<bool> {
        let job = job.clone();
        self.call(move |c| {
            let n = c.execute(
                &format!("INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING"),
                params![
                    job.id,
                    job.scope.org,
                    job.scope.project,
                    job.description,
                    job.schedule,
                    job_status_str(job.status),
                    job.cluster_id,
                    job.template,
                    i64::from(job.max_backup_count),
                    ms(job.created),
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_job(&self, job_id: &str) -> StoreResult<Option<JobRecord>> {
        let id = job_id.to_owned();
        self.call(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?;
            Ok(collect(&mut stmt, params![id], job_from_row)?
                .into_iter()
                .next())
        })
        .await
    }

    async fn list_jobs(&self, scope: &Scope, page: &PageRequest) -> StoreResult<Page<JobRecord>> {
        let scope = scope.clone();
        let (after_ms, after_id) = instant_after(page)?;
        let fetch = fetch(page);
        let jobs = self
            .call(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE org = ?1 AND project = ?2 \
                     AND (?3 IS NULL OR (created_ms, id) < (?3, ?4)) \
                     ORDER BY created_ms DESC, id DESC LIMIT ?5"
                ))?;
                collect(
                    &mut stmt,
                    params![scope.org, scope.project, after_ms, after_id, fetch],
                    job_from_row,
                )
            })
            .await?;
        Ok(Page::cut(jobs, page, |j| {
            instant_position(j.created, &j.id)
        }))
    }

    async fn list_active_jobs(&self) -> StoreResult<Vec<JobRecord>> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'active' ORDER BY created_ms, id"
            ))?;
            collect(&mut stmt, [], job_from_row)
        })
        .await
    }

    async fn mark_job_deleted(&self, job_id: &str) -> StoreResult<bool> {
        let id = job_id.to_owned();
        self.call(move |c| {
            let n = c.execute(
                "UPDATE jobs SET status = 'deleted' WHERE id = ?1 AND status = 'active'",
                params![id],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn update_job(&self, job: &JobRecord) -> StoreResult<bool> {
        let job = job.clone();
        self.call(move |c| {
            let n = c.execute(
                "UPDATE jobs SET description = ?2, schedule = ?3, template = ?4, \
                 max_backup_count = ?5 WHERE id = ?1 AND status = 'active'",
                params![
                    job.id,
                    job.description,
                    job.schedule,
                    job.template,
                    i64::from(job.max_backup_count)
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn remove_job(&self, job_id: &str) -> StoreResult<()> {
        let id = job_id.to_owned();
        self.call(move |c| {
            c.execute("DELETE FROM jobs WHERE id = ?1", params![id])?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn insert_cluster(&self, cluster: &ClusterRecord) -> StoreResult<bool> {
        let cluster = cluster.clone();
        let target = serde_json::to_string(&cluster.target)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode the cluster's target: {e}")))?;
        self.call(move |c| {
            let n = c.execute(
                &format!("INSERT INTO clusters ({CLUSTER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (id) DO NOTHING"),
                params![
                    cluster.id,
                    cluster.scope.org,
                    cluster.scope.project,
                    cluster.description,
                    cluster.region,
                    target,
                    ms(cluster.created),
                    cluster.server.version,
                    cluster.server.version_tag,
                    i64::from(cluster.server.node_count),
                    cluster.status.as_str(),
                    cluster.details,
                    cluster.source_backup_id,
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_cluster(&self, cluster_id: &str) -> StoreResult<Option<ClusterRecord>> {
        let id = cluster_id.to_owned();
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE id = ?1"
            ))?;
            Ok(collect(&mut stmt, params![id], cluster_from_row)?
                .into_iter()
                .next())
        })
        .await
    }

    async fn list_clusters(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> StoreResult<Page<ClusterRecord>> {
        let scope = scope.clone();
        let after = page.after.clone();
        let fetch = fetch(page);
        let clusters = self
            .call(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE org = ?1 AND project = ?2 \
                     AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4"
                ))?;
                collect(
                    &mut stmt,
                    params![scope.org, scope.project, after, fetch],
                    cluster_from_row,
                )
            })
            .await?;
        Ok(Page::cut(clusters, page, |c| c.id.clone()))
    }

    async fn delete_cluster(&self, cluster_id: &str) -> StoreResult<bool> {
        let id = cluster_id.to_owned();
        self.call(move |c| Ok(c.execute("DELETE FROM clusters WHERE id = ?1", params![id])? == 1))
            .await
    }

    async fn update_cluster_state(
        &self,
        cluster_id: &str,
        status: ClusterStatus,
        details: Option<&str>,
        target: Option<&ClusterTarget>,
    ) -> StoreResult<bool> {
        let id = cluster_id.to_owned();
        let details = details.map(str::to_owned);
        let target = target
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("cannot encode the cluster's target: {e}")))?;
        self.call(move |c| {
            let n = c.execute(
                "UPDATE clusters SET status = ?2, details = ?3, target = COALESCE(?4, target) \
                 WHERE id = ?1",
                params![id, status.as_str(), details, target],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_creating_clusters(&self) -> StoreResult<Vec<ClusterRecord>> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE status = ?1 ORDER BY id"
            ))?;
            collect(
                &mut stmt,
                params![ClusterStatus::Creating.as_str()],
                cluster_from_row,
            )
        })
        .await
    }
}

/// [`BackupStore::insert_backup`]'s statement, on a connection or in a transaction.
fn insert_backup_in(c: &Connection, b: &BackupEntry) -> DbResult<bool> {
    let verification =
        verification_text(b.verification.as_ref()).map_err(|e| DbError::Corrupt(e.to_string()))?;
    let index = i64::try_from(b.index)
        .map_err(|_| DbError::Corrupt(format!("backup index {} is too large", b.index)))?;
    let n = c.execute(
        &format!("INSERT INTO backups ({BACKUP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT (id) DO NOTHING"),
        params![
            b.id,
            b.scope.org,
            b.scope.project,
            b.job_id,
            b.cluster_id,
            b.cluster_description,
            b.provider,
            b.description,
            ms(b.created),
            b.status.as_str(),
            index,
            b.location,
            b.error_code.map(|c| c.to_string()),
            b.details,
            b.size_bytes.map(i64::try_from).transpose().map_err(|_| {
                DbError::Corrupt(format!("backup size {:?} is too large", b.size_bytes))
            })?,
            verification,
        ],
    )?;
    Ok(n == 1)
}

/// [`BackupStore::update_backup_status`]'s statement.
fn update_backup_status_in(
    c: &Connection,
    id: &str,
    from: BackupStatus,
    to: BackupStatus,
) -> DbResult<bool> {
    let n = c.execute(
        "UPDATE backups SET status = ?3 WHERE id = ?1 AND status = ?2",
        params![id, from.as_str(), to.as_str()],
    )?;
    Ok(n == 1)
}

/// [`BackupStore::set_backup_location`]'s statement.
fn set_backup_location_in(c: &Connection, id: &str, location: &str) -> DbResult<()> {
    c.execute(
        "UPDATE backups SET location = ?2 WHERE id = ?1",
        params![id, location],
    )?;
    Ok(())
}

/// [`BackupStore::set_backup_details`]'s statement.
fn set_backup_details_in(
    c: &Connection,
    id: &str,
    error_code: Option<RunFailure>,
    details: Option<&str>,
) -> DbResult<()> {
    c.execute(
        "UPDATE backups SET error_code = COALESCE(?2, error_code), \
         details = COALESCE(?3, details) WHERE id = ?1",
        params![id, error_code.map(|c| c.to_string()), details],
    )?;
    Ok(())
}

/// [`BackupStore::set_backup_size`]'s statement.
fn set_backup_size_in(c: &Connection, id: &str, size_bytes: u64) -> DbResult<()> {
    let size = i64::try_from(size_bytes)
        .map_err(|_| DbError::Corrupt(format!("backup size {size_bytes} is too large")))?;
    c.execute(
        "UPDATE backups SET size_bytes = ?2 WHERE id = ?1",
        params![id, size],
    )?;
    Ok(())
}

#[async_trait]
impl BackupStore for SqliteStore {
    async fn insert_backup(&self, backup: &BackupEntry) -> StoreResult<bool> {
        let b = backup.clone();
        self.call(move |c| insert_backup_in(c, &b)).await
    }

    async fn get_backup(&self, backup_id: &str) -> StoreResult<Option<BackupEntry>> {
        let id = backup_id.to_owned();
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {BACKUP_COLUMNS} FROM backups WHERE id = ?1"
            ))?;
            Ok(collect(&mut stmt, params![id], backup_from_row)?
                .into_iter()
                .next())
        })
        .await
    }

    async fn list_backups(
        &self,
        scope: &Scope,
        filter: &BackupFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<BackupEntry>> {
        let scope = scope.clone();
        let filter = filter.clone();
        let (after_ms, after_id) = instant_after(page)?;
        let fetch = fetch(page);
        let backups = self
            .call(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {BACKUP_COLUMNS} FROM backups WHERE org = ?1 AND project = ?2 \
                     AND (?3 IS NULL OR job_id = ?3) AND (?4 IS NULL OR cluster_id = ?4) \
                     AND (?5 IS NULL OR (created_ms, id) < (?5, ?6)) \
                     ORDER BY created_ms DESC, id DESC LIMIT ?7"
                ))?;
                collect(
                    &mut stmt,
                    params![
                        scope.org,
                        scope.project,
                        filter.job_id,
                        filter.cluster_id,
                        after_ms,
                        after_id,
                        fetch
                    ],
                    backup_from_row,
                )
            })
            .await?;
        Ok(Page::cut(backups, page, |b| {
            instant_position(b.created, &b.id)
        }))
    }

    async fn list_job_backups(&self, job_id: &str) -> StoreResult<Vec<BackupEntry>> {
        let id = job_id.to_owned();
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {BACKUP_COLUMNS} FROM backups WHERE job_id = ?1 ORDER BY created_ms, id"
            ))?;
            collect(&mut stmt, params![id], backup_from_row)
        })
        .await
    }

    async fn list_backups_in_status(&self, status: BackupStatus) -> StoreResult<Vec<BackupEntry>> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {BACKUP_COLUMNS} FROM backups WHERE status = ?1 ORDER BY created_ms, id"
            ))?;
            collect(&mut stmt, params![status.as_str()], backup_from_row)
        })
        .await
    }

    async fn update_backup_status(
        &self,
        backup_id: &str,
        from: BackupStatus,
        to: BackupStatus,
    ) -> StoreResult<bool> {
        let id = backup_id.to_owned();
        self.call(move |c| update_backup_status_in(c, &id, from, to))
            .await
    }

    async fn set_backup_location(&self, backup_id: &str, location: &str) -> StoreResult<()> {
        let id = backup_id.to_owned();
        let location = location.to_owned();
        self.call(move |c| set_backup_location_in(c, &id, &location))
            .await
    }

    async fn set_backup_details(
        &self,
        backup_id: &str,
        error_code: Option<RunFailure>,
        details: Option<&str>,
    ) -> StoreResult<()> {
        let id = backup_id.to_owned();
        let details = details.map(str::to_owned);
        self.call(move |c| set_backup_details_in(c, &id, error_code, details.as_deref()))
            .await
    }

    async fn set_backup_size(&self, backup_id: &str, size_bytes: u64) -> StoreResult<()> {
        let id = backup_id.to_owned();
        self.call(move |c| set_backup_size_in(c, &id, size_bytes))
            .await
    }

    async fn set_backup_verification(
        &self,
        backup_id: &str,
        verification: &Verification,
    ) -> StoreResult<()> {
        let id = backup_id.to_owned();
        let text = verification_text(Some(verification))?;
        self.call(move |c| {
            c.execute(
                "UPDATE backups SET verification = ?2 WHERE id = ?1",
                params![id, text],
            )?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn begin_run(&self, entry: &HistoryEntry) -> StoreResult<RunStart> {
        let e = entry.clone();
        let pruned = pruned_text(&e.item)?;
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let started = begin_run_in(&tx, &e, &pruned)?;
            tx.commit()?;
            Ok(started)
        })
        .await
    }
}

/// [`RunStore::begin_run`]'s statements, inside the caller's `BEGIN IMMEDIATE` transaction
/// (the check and the insert must see the same state).
fn begin_run_in(tx: &Connection, e: &HistoryEntry, pruned: &str) -> DbResult<RunStart> {
    let item = &e.item;
    let inserted = tx.execute(
        "INSERT INTO runs (job_id, scheduled_ms, history_id) VALUES (?1, ?2, ?3) \
         ON CONFLICT (job_id, scheduled_ms) DO NOTHING",
        params![item.job_id, ms(item.scheduled_time), item.id],
    )?;
    if inserted == 0 {
        let history_id: String = tx.query_row(
            "SELECT history_id FROM runs WHERE job_id = ?1 AND scheduled_ms = ?2",
            params![item.job_id, ms(item.scheduled_time)],
            |r| r.get(0),
        )?;
        let first = get_history_tx(tx, &history_id)?.ok_or_else(|| {
            DbError::Corrupt(format!("run record points at missing history {history_id}"))
        })?;
        return Ok(RunStart::AlreadyRan(first.item));
    }
    tx.execute(
        &format!("INSERT INTO history ({HISTORY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
        params![
            item.id,
            e.scope.org,
            e.scope.project,
            e.cluster_id,
            item.job_id,
            run_status_str(item.status),
            item.details,
            item.linked_resource,
            ms(item.start_time),
            item.end_time.map(ms),
            ms(item.scheduled_time),
            trigger_str(item.trigger),
            item.error_code.map(|c| c.to_string()),
            pruned,
        ],
    )?;
    Ok(RunStart::Started)
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn update_history(&self, item: &HistoryItem) -> StoreResult<()> {
        self.write_history(item, false).await.map(|_| ())
    }

    async fn claim_queued(&self, item: &HistoryItem) -> StoreResult<bool> {
        self.write_history(item, true).await
    }

    async fn get_history(&self, history_id: &str) -> StoreResult<Option<HistoryEntry>> {
        let id = history_id.to_owned();
        self.call(move |c| get_history_tx(c, &id)).await
    }

    async fn list_history(
        &self,
        scope: &Scope,
        job_id: Option<&str>,
        page: &PageRequest,
    ) -> StoreResult<Page<HistoryItem>> {
        let scope = scope.clone();
        let job_id = job_id.map(str::to_owned);
        let (after_ms, after_order) = instant_after(page)?;
        // The tie-break is the row's `seq`, in digits; one beyond i64 sorts after every row.
        let after_seq = after_order.map(|o| o.parse::<i64>().unwrap_or(i64::MAX));
        let fetch = fetch(page);
        let entries = self
            .call(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {HISTORY_COLUMNS}, seq FROM history WHERE org = ?1 AND project = ?2 \
                     AND (?3 IS NULL OR job_id = ?3) \
                     AND (?4 IS NULL OR (start_ms, seq) < (?4, ?5)) \
                     ORDER BY start_ms DESC, seq DESC LIMIT ?6"
                ))?;
                collect(
                    &mut stmt,
                    params![scope.org, scope.project, job_id, after_ms, after_seq, fetch],
                    history_and_seq_from_row,
                )
            })
            .await?;
        let page = Page::cut(entries, page, |(e, seq)| {
            instant_position(e.item.start_time, &seq.to_string())
        });
        Ok(page.map(|(e, _)| e.item))
    }

    async fn list_running(&self) -> StoreResult<Vec<HistoryEntry>> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {HISTORY_COLUMNS} FROM history WHERE status IN ('running', 'queued') ORDER BY seq"
            ))?;
            collect(&mut stmt, [], history_from_row)
        })
        .await
    }
}

#[async_trait]
impl SequenceStore for SqliteStore {
    async fn next_sequence(&self, key: &str) -> StoreResult<u64> {
        let key = key.to_owned();
        self.call(move |c| next_sequence_in(c, &key)).await
    }
}

/// [`SequenceStore::next_sequence`]'s statement.
fn next_sequence_in(c: &Connection, key: &str) -> DbResult<u64> {
    let value: i64 = c.query_row(
        "INSERT INTO sequences (key, value) VALUES (?1, 1) \
         ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
        params![key],
        |r| r.get(0),
    )?;
    u64::try_from(value).map_err(|_| DbError::Corrupt(format!("sequence {key} is negative")))
}

/// One row of `locks`.
struct LockRow {
    token: i64,
    held: bool,
    info: ClusterLockInfo,
}

fn lock_row(conn: &Connection, cluster_id: &str) -> DbResult<Option<LockRow>> {
    let row = conn
        .query_row(
            "SELECT fencing_token, held, operation, job_id, run_id, since_ms, expires_ms \
             FROM locks WHERE cluster_id = ?1",
            params![cluster_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((token, held, operation, job_id, run_id, since, expires)) = row else {
        return Ok(None);
    };
    Ok(Some(LockRow {
        token,
        held,
        info: ClusterLockInfo {
            operation,
            job_id,
            run_id,
            since: instant(since)?,
            expires: instant(expires)?,
            fencing_token: u64::try_from(token)
                .map_err(|_| DbError::Corrupt(format!("fencing token {token} is negative")))?,
        },
    }))
}

fn token_param(token: u64) -> i64 {
    // Tokens start at 1 and grow by one per acquisition; one beyond i64 cannot match a row.
    i64::try_from(token).unwrap_or(-1)
}

#[async_trait]
impl ClusterLock for SqliteStore {
    async fn try_acquire(
        &self,
        cluster_id: &str,
        holder: &LockHolder,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<Acquisition> {
        let cluster_id = cluster_id.to_owned();
        let holder = holder.clone();
        let expires = now
            .checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let acquisition = try_acquire_in(&tx, &cluster_id, &holder, now, expires)?;
            tx.commit()?;
            Ok(acquisition)
        })
        .await
    }

    async fn renew(
        &self,
        cluster_id: &str,
        fencing_token: u64,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<Option<ClusterLockInfo>> {
        let cluster_id = cluster_id.to_owned();
        let expires = now
            .checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.call(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE locks SET expires_ms = ?3 WHERE cluster_id = ?1 AND fencing_token = ?2 \
                 AND held = 1 AND expires_ms > ?4",
                params![cluster_id, token_param(fencing_token), ms(expires), ms(now)],
            )?;
            let info = if n == 1 {
                lock_row(&tx, &cluster_id)?.map(|r| r.info)
            } else {
                None
            };
            tx.commit()?;
            Ok(info)
        })
        .await
    }

    async fn release(&self, cluster_id: &str, fencing_token: u64) -> StoreResult<bool> {
        let cluster_id = cluster_id.to_owned();
        self.call(move |c| release_in(c, &cluster_id, fencing_token))
            .await
    }

    async fn current(
        &self,
        cluster_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ClusterLockInfo>> {
        let cluster_id = cluster_id.to_owned();
        self.call(move |c| {
            Ok(lock_row(c, &cluster_id)?
                .filter(|r| r.held && r.info.expires > now)
                .map(|r| r.info))
        })
        .await
    }
}

/// [`ClusterLock::release`]'s statement.
fn release_in(c: &Connection, cluster_id: &str, fencing_token: u64) -> DbResult<bool> {
    let n = c.execute(
        "UPDATE locks SET held = 0 WHERE cluster_id = ?1 AND fencing_token = ?2 AND held = 1",
        params![cluster_id, token_param(fencing_token)],
    )?;
    Ok(n == 1)
}

/// [`ClusterLock::try_acquire`]'s statements, inside the caller's `BEGIN IMMEDIATE`
/// transaction (the lock row read and written in one step).
fn try_acquire_in(
    tx: &Connection,
    cluster_id: &str,
    holder: &LockHolder,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> DbResult<Acquisition> {
    let current = lock_row(tx, cluster_id)?;
    if let Some(row) = &current {
        if row.held && row.info.expires > now {
            return Ok(Acquisition::Held(row.info.clone()));
        }
    }
    let token = current.map_or(0, |r| r.token) + 1;
    tx.execute(
        "INSERT INTO locks (cluster_id, fencing_token, held, operation, job_id, run_id, since_ms, expires_ms) \
         VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (cluster_id) DO UPDATE SET fencing_token = excluded.fencing_token, held = 1, \
         operation = excluded.operation, job_id = excluded.job_id, run_id = excluded.run_id, \
         since_ms = excluded.since_ms, expires_ms = excluded.expires_ms",
        params![cluster_id, token, holder.operation, holder.job_id, holder.run_id, ms(now), ms(expires)],
    )?;
    Ok(Acquisition::Acquired(ClusterLockInfo {
        operation: holder.operation.clone(),
        job_id: holder.job_id.clone(),
        run_id: holder.run_id.clone(),
        since: now,
        expires,
        fencing_token: u64::try_from(token)
            .map_err(|_| DbError::Corrupt(format!("fencing token {token} is negative")))?,
    }))
}
