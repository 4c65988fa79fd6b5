//! `/metrics`' store gauges ([`Engine::metrics_report`]) over the in-memory store: what a
//! scrape counts, and where it stops.

use std::sync::Arc;

use async_trait::async_trait;
use backup_core::api::JobStatus;
use backup_core::retention::BackupStatus;
use backup_engine::clock::ManualClock;
use backup_engine::memory::MemoryStore;
use backup_engine::metrics::MAX_SCANNED_PER_PROJECT;
use backup_engine::ports::{BackupStore, JobStore, TriggerScheduler};
use backup_engine::{BackupEntry, Engine, EngineConfig, JobRecord, Ports, Scope, TriggerError};
use chrono::{DateTime, Utc};

struct NoTriggers;

#[async_trait]
impl TriggerScheduler for NoTriggers {
    async fn register(&self, _job: &JobRecord) -> Result<(), TriggerError> {
        Ok(())
    }
    async fn remove(&self, _job_id: &str) -> Result<(), TriggerError> {
        Ok(())
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_755_600 + seconds, 0).unwrap()
}

fn scope(project: &str) -> Scope {
    Scope::new("default", project).unwrap()
}

fn job(id: &str, project: &str, status: JobStatus) -> JobRecord {
    JobRecord {
        id: id.into(),
        scope: scope(project),
        description: "Hourly".into(),
        schedule: "0 */1 * * *".into(),
        status,
        cluster_id: "c1".into(),
        template: "{cluster}".into(),
        max_backup_count: 3,
        created: at(0),
    }
}

fn backup(
    id: &str,
    project: &str,
    job: Option<&str>,
    status: BackupStatus,
    created: i64,
) -> BackupEntry {
    BackupEntry {
        id: id.into(),
        scope: scope(project),
        job_id: job.map(str::to_owned),
        cluster_id: "c1".into(),
        cluster_description: "Orders".into(),
        provider: "directory".into(),
        description: id.into(),
        created: at(created),
        status,
        index: 1,
        location: None,
        error_code: None,
        details: None,
        size_bytes: None,
        verification: None,
    }
}

fn engine(store: MemoryStore) -> Engine {
    Engine::new(
        Ports::one_store(
            store,
            Vec::new(),
            Arc::new(NoTriggers),
            Arc::new(ManualClock::new(at(0))),
        ),
        EngineConfig::default(),
    )
}

#[tokio::test]
async fn a_scrape_counts_the_projects_of_active_jobs_and_each_active_jobs_newest_available_backup()
{
    // GIVEN an active job with an older and a newer available backup and a defunct one, a
    // deleted job with an available backup, and a project without an active job
    let store = MemoryStore::new();
    store
        .insert_job(&job("j1", "p", JobStatus::Active))
        .await
        .unwrap();
    store
        .insert_job(&job("j2", "p", JobStatus::Deleted))
        .await
        .unwrap();
    for b in [
        backup("b1", "p", Some("j1"), BackupStatus::Available, 10),
        backup("b2", "p", Some("j1"), BackupStatus::Available, 20),
        backup("b3", "p", Some("j1"), BackupStatus::Defunct, 30),
        backup("b4", "p", Some("j2"), BackupStatus::Available, 40),
        backup("m1", "p", None, BackupStatus::Creating, 50),
        backup("x1", "other", None, BackupStatus::Available, 60),
    ] {
        store.insert_backup(&b).await.unwrap();
    }
    // WHEN metrics are read
    let report = engine(store).metrics_report().await.unwrap();
    // THEN the project of the active job is counted, manual backups included
    let counts: Vec<(BackupStatus, u64)> = report.store.backups.clone().into_iter().collect();
    assert_eq!(
        counts,
        vec![
            (BackupStatus::Creating, 1),
            (BackupStatus::Available, 3),
            (BackupStatus::Defunct, 1),
            (BackupStatus::Deleting, 0),
            (BackupStatus::Deleted, 0),
        ]
    );
    // AND only the active job has a last-available time: its newest available backup's
    assert_eq!(report.store.last_available.len(), 1);
    assert_eq!(report.store.last_available["j1"], at(20));
    assert!(!report.store.truncated);
    let text = report.to_prometheus();
    assert!(text.contains(&format!(
        "backupctl_job_last_available_backup_timestamp_seconds{{job_id=\"j1\"}} {}\n",
        at(20).timestamp()
    )));
    assert!(
        text.contains("backupctl_backups_scan_truncated 0\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_scrape_reads_at_most_ten_thousand_backups_per_project_and_says_so() {
    // GIVEN a project whose newest backup is available, after more deleted ones than a
    // scrape reads
    let store = MemoryStore::new();
    store
        .insert_job(&job("j1", "p", JobStatus::Active))
        .await
        .unwrap();
    let total = MAX_SCANNED_PER_PROJECT + 5;
    for i in 0..total {
        let status = if i + 1 == total {
            BackupStatus::Available
        } else {
            BackupStatus::Deleted
        };
        let b = backup(&format!("b{i:06}"), "p", Some("j1"), status, i as i64);
        store.insert_backup(&b).await.unwrap();
    }
    // WHEN metrics are read
    let report = engine(store).metrics_report().await.unwrap();
    // THEN the newest 10,000 are counted, the newest available backup among them, and the
    // scrape says it stopped short
    assert!(report.store.truncated);
    assert_eq!(report.store.backups[&BackupStatus::Available], 1);
    assert_eq!(
        report.store.backups[&BackupStatus::Deleted],
        (MAX_SCANNED_PER_PROJECT - 1) as u64
    );
    assert_eq!(report.store.last_available["j1"], at(total as i64 - 1));
    assert!(report
        .to_prometheus()
        .contains("backupctl_backups_scan_truncated 1\n"));
}

#[test]
fn a_backup_of_a_deleted_cluster_keeps_the_region_its_provider_implies() {
    let mut entry = backup("b1", "p", None, BackupStatus::Available, 0);
    assert_eq!(entry.to_api(None).region, "local");
    entry.provider = "command".to_owned();
    assert_eq!(entry.to_api(None).region, "local");
    entry.provider = "aws-ebs".to_owned();
    assert_eq!(entry.to_api(None).region, "");
}
