//! The engine's use cases over the real adapters: SQLite in a temp dir and the directory
//! provider copying real files. Time is a `ManualClock` so leases and schedules are driven by
//! the test, never by sleeping.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backup_core::api::{HistoryItem, RunFailure, RunStatus, Trigger};
use backup_core::retention::BackupStatus;
use backup_engine::clock::ManualClock;
use backup_engine::ports::{BackupProvider, ClusterLock};
use backup_engine::requests::{directory_cluster, hourly_job, manual_backup};
use backup_engine::{
    Acquisition, BackupFilter, BackupHandle, BackupRequest, Creation, Engine, EngineConfig,
    EngineError, LockHolder, Ports, ProviderError, ProviderStatus, RunStart, Scope,
};
use backup_local::directory::verify;
use backup_local::{DirectoryProvider, LocalScheduler, SqliteStore};
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

fn at(minutes: i64) -> DateTime<Utc> {
    // 2026-11-27T05:00:00Z
    DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap()
}

/// The directory provider, counting how many backups of each cluster run at once, and
/// optionally held at a gate until the test opens it.
struct Watched {
    inner: DirectoryProvider,
    active: Mutex<HashMap<String, usize>>,
    most: Mutex<HashMap<String, usize>>,
    gate: Option<Arc<Semaphore>>,
    delay: Duration,
}

impl Watched {
    fn new(inner: DirectoryProvider) -> Self {
        Watched {
            inner,
            active: Mutex::new(HashMap::new()),
            most: Mutex::new(HashMap::new()),
            gate: None,
            delay: Duration::ZERO,
        }
    }

    fn most_at_once(&self) -> usize {
        self.most
            .lock()
            .unwrap()
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

#[async_trait]
impl BackupProvider for Watched {
    fn kind(&self) -> &'static str {
        "directory"
    }

    async fn create(&self, request: &BackupRequest) -> Result<Creation, ProviderError> {
        let cluster = request.cluster.id.clone();
        {
            let mut active = self.active.lock().unwrap();
            let n = active.entry(cluster.clone()).or_default();
            *n += 1;
            let mut most = self.most.lock().unwrap();
            let m = most.entry(cluster.clone()).or_default();
            *m = (*m).max(*n);
        }
        if let Some(gate) = &self.gate {
            let _permit = gate.acquire().await.unwrap();
        }
        // A slow copy that keeps moving: it reports progress as a real one does, so the
        // engine keeps renewing its lease (SPEC §13 renews only while work moves).
        let step = Duration::from_millis(50);
        let mut left = self.delay;
        while !left.is_zero() {
            let now = left.min(step);
            tokio::time::sleep(now).await;
            request.progress.tick();
            left -= now;
        }
        let result = self.inner.create(request).await;
        *self.active.lock().unwrap().get_mut(&cluster).unwrap() -= 1;
        result
    }

    fn planned_location(&self, request: &BackupRequest) -> String {
        self.inner.planned_location(request)
    }

    fn links_unchanged(&self) -> bool {
        self.inner.links_unchanged()
    }

    async fn status(&self, handle: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        self.inner.status(handle).await
    }

    async fn delete(&self, handle: &BackupHandle) -> Result<(), ProviderError> {
        self.inner.delete(handle).await
    }

    async fn check_restore_target(
        &self,
        source: &backup_engine::ClusterRecord,
        target: &backup_core::api::ClusterTarget,
        zone: Option<&str>,
    ) -> Result<backup_core::api::ClusterTarget, backup_engine::TargetProblem> {
        self.inner.check_restore_target(source, target, zone).await
    }

    async fn restore(
        &self,
        request: &backup_engine::RestoreRequest,
    ) -> Result<backup_engine::Restoration, ProviderError> {
        self.inner.restore(request).await
    }
}

struct Harness {
    engine: Engine,
    clock: Arc<ManualClock>,
    store: SqliteStore,
    provider: Arc<Watched>,
    scope: Scope,
    root: tempfile::TempDir,
    /// Cluster data directories: outside the data directory, as the path policy requires.
    clusters: tempfile::TempDir,
}

/// The path policy of a server whose data directory is `data_dir`, creating its backup root.
fn policy(data_dir: &Path, backups: &Path) -> backup_local::PathPolicy {
    std::fs::create_dir_all(backups).unwrap();
    backup_local::PathPolicy::new(data_dir, backups, &[]).unwrap()
}

impl Harness {
    async fn new() -> Harness {
        Self::with(|_| {}).await
    }

    async fn with(tune: impl FnOnce(&mut Watched)) -> Harness {
        let config = EngineConfig {
            poll_interval: Duration::from_millis(10),
            ..EngineConfig::default()
        };
        Self::build(tune, None, config).await
    }

    /// With `real_clock`, leases run on the system clock (for renewal tests).
    async fn build(
        tune: impl FnOnce(&mut Watched),
        real_clock: Option<Arc<dyn backup_engine::ports::Clock>>,
        config: EngineConfig,
    ) -> Harness {
        let root = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&root.path().join("state.db")).unwrap();
        let backups = root.path().join("backups");
        let mut watched =
            Watched::new(DirectoryProvider::new(&backups, policy(root.path(), &backups)).unwrap());
        tune(&mut watched);
        let provider = Arc::new(watched);
        let clock = Arc::new(ManualClock::new(at(0)));
        let engine_clock: Arc<dyn backup_engine::ports::Clock> =
            real_clock.unwrap_or_else(|| clock.clone());
        let ports = Ports::one_store(
            store.clone(),
            vec![provider.clone()],
            LocalScheduler::new(engine_clock.clone()),
            engine_clock,
        );
        let engine = Engine::new(ports, config);
        Harness {
            engine,
            clock,
            store,
            provider,
            scope: Scope::new("default", "default").unwrap(),
            root,
            clusters: tempfile::tempdir().unwrap(),
        }
    }

    fn backups_dir(&self) -> PathBuf {
        self.root.path().join("backups")
    }

    /// A data directory with a few files, registered as cluster `id`.
    async fn cluster(&self, id: &str) -> PathBuf {
        let data = self.clusters.path().join(id);
        std::fs::create_dir_all(data.join("pg_wal")).unwrap();
        std::fs::create_dir_all(data.join("empty")).unwrap();
        std::fs::write(data.join("PG_VERSION"), "16\n").unwrap();
        std::fs::write(data.join("pg_wal").join("000001"), vec![7u8; 300_000]).unwrap();
        self.engine
            .register_cluster(
                &self.scope,
                &directory_cluster(id, &format!("Cluster {id}"), data.to_string_lossy()),
            )
            .await
            .unwrap();
        data
    }

    async fn job(&self, cluster: &str, max: i64) -> String {
        self.engine
            .create_job(
                &self.scope,
                &hourly_job(cluster, "{cluster} #{index} {datetime:rfc3339}", max),
            )
            .await
            .unwrap()
            .id
    }

    /// Runs the job's delivery scheduled at `scheduled` to its end: its history item.
    async fn run(&self, job: &str, scheduled: DateTime<Utc>) -> HistoryItem {
        let outcome = self.engine.run_scheduled(job, scheduled).await.unwrap();
        outcome.history
    }

    /// Asks for a manual backup of `cluster`, described by `template`: its id.
    async fn manual(&self, cluster: &str, template: &str) -> Result<String, EngineError> {
        let request = manual_backup(cluster, template);
        self.engine
            .create_manual_backup(&self.scope, &request)
            .await
    }

    async fn history(&self, job: Option<&str>) -> Vec<HistoryItem> {
        self.engine
            .list_history(&self.scope, job, &backup_engine::ListQuery::default())
            .await
            .unwrap()
            .items
    }

    async fn backups(&self, job: Option<&str>) -> Vec<backup_core::api::Backup> {
        let filter = BackupFilter {
            job_id: job.map(str::to_owned),
            cluster_id: None,
        };
        self.engine
            .list_backups(&self.scope, &filter, &backup_engine::ListQuery::default())
            .await
            .unwrap()
            .items
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runs_keep_the_two_newest_backups_on_disk() {
    // GIVEN a cluster with files and a job keeping 2 backups
    let h = Harness::new().await;
    let data = h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    // WHEN it runs at three scheduled instants
    let mut outcomes = Vec::new();
    for hour in 1..=3 {
        h.clock.set(at(hour * 60) + chrono::Duration::seconds(2));
        let o = h.engine.run_scheduled(&job, at(hour * 60)).await.unwrap();
        assert_eq!(
            o.history.status,
            RunStatus::Succeeded,
            "{}",
            o.history.details
        );
        outcomes.push(o.history);
    }
    // THEN three records: the oldest `deleted`, the two newest `available`
    let backups = h.backups(Some(&job)).await;
    assert_eq!(backups.len(), 3);
    let (newest, middle, oldest) = (&backups[0], &backups[1], &backups[2]);
    assert_eq!(newest.status, BackupStatus::Available);
    assert_eq!(middle.status, BackupStatus::Available);
    assert_eq!(oldest.status, BackupStatus::Deleted);
    assert_eq!(oldest.id, outcomes[0].linked_resource);
    // AND labels render the cluster, the index and the scheduled instant
    assert_eq!(newest.description, "Cluster orders #3 2026-11-27T08:00:00Z");
    assert_eq!(oldest.description, "Cluster orders #1 2026-11-27T06:00:00Z");
    // AND the third run pruned exactly the oldest and says so
    assert_eq!(outcomes[2].pruned_backup_ids, vec![oldest.id.clone()]);
    assert!(
        outcomes[2]
            .details
            .contains(&format!("pruned backup {}", oldest.id)),
        "{}",
        outcomes[2].details
    );
    assert!(outcomes[0].pruned_backup_ids.is_empty());
    // AND the runs after the first linked every unchanged file from the one before
    assert!(
        outcomes[0]
            .details
            .contains("copied 300003 bytes, linked 0 bytes"),
        "{}",
        outcomes[0].details
    );
    for later in &outcomes[1..] {
        assert!(
            later
                .details
                .contains("copied 0 bytes, linked 300003 bytes"),
            "{}",
            later.details
        );
    }
    use std::os::unix::fs::MetadataExt;
    let wal = |id: &str| {
        std::fs::metadata(h.backups_dir().join(id).join("data/pg_wal/000001"))
            .unwrap()
            .ino()
    };
    assert_eq!(wal(&newest.id), wal(&middle.id));
    // AND on disk: the two newest verify against their manifests (though the oldest they
    // linked from is pruned), the oldest is gone
    assert!(!h.backups_dir().join(&oldest.id).exists());
    for b in [newest, middle] {
        let manifest = verify(&h.backups_dir().join(&b.id)).unwrap();
        let paths: Vec<&str> = manifest.files().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["PG_VERSION", "pg_wal/000001"]);
        assert_eq!(manifest.total_bytes, 300_003);
        assert!(manifest.directories().any(|d| d.path == "empty"));
        assert_eq!(
            std::fs::read(h.backups_dir().join(&b.id).join("data/pg_wal/000001")).unwrap(),
            std::fs::read(data.join("pg_wal/000001")).unwrap()
        );
    }
    let names: Vec<String> = std::fs::read_dir(h.backups_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // AND the lock is free again
    assert_eq!(
        h.store.current("orders", h.engine.now()).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_on_one_cluster_at_the_same_moment_make_one_backup() {
    // GIVEN two jobs on one cluster, and a provider held at a gate
    let gate = Arc::new(Semaphore::new(0));
    let h = Arc::new(Harness::with(|w| w.gate = Some(gate.clone())).await);
    h.cluster("shared").await;
    let a = h.job("shared", 5).await;
    let b = h.job("shared", 5).await;
    // WHEN both fire at the same instant
    let runs: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|job| {
            let h = h.clone();
            tokio::spawn(async move { h.engine.run_scheduled(&job, at(60)).await.unwrap() })
        })
        .collect();
    // THEN one fails at once, while the other still holds the lock
    let failed = loop {
        let items = h.history(None).await;
        if let Some(f) = items.iter().find(|i| i.status == RunStatus::Failed) {
            break f.clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    gate.add_permits(1);
    let mut outcomes = Vec::new();
    for r in runs {
        outcomes.push(r.await.unwrap().history);
    }
    let winner = outcomes
        .iter()
        .find(|o| o.status == RunStatus::Succeeded)
        .unwrap();
    assert_eq!(failed.error_code, Some(RunFailure::ClusterLocked));
    assert_ne!(failed.job_id, winner.job_id);
    // AND the failure names the holder: its operation, job, run and since when
    for needle in ["scheduled-backup", &winner.job_id, &winner.id, "since"] {
        assert!(
            failed.details.contains(needle),
            "{needle} missing from: {}",
            failed.details
        );
    }
    assert_eq!(failed.linked_resource, "shared");
    assert!(failed.pruned_backup_ids.is_empty());
    // AND exactly one backup exists
    let backups = h.backups(None).await;
    assert_eq!(backups.len(), 1);
    assert_eq!(
        backups[0].linked_resource.as_deref(),
        Some(winner.job_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_runs_over_five_clusters_never_overlap_on_a_cluster() {
    // GIVEN 5 clusters with 10 jobs each and a provider that takes a moment
    let h = Arc::new(Harness::with(|w| w.delay = Duration::from_millis(20)).await);
    let mut jobs = Vec::new();
    for c in 0..5 {
        let cluster = format!("c{c}");
        h.cluster(&cluster).await;
        for _ in 0..10 {
            jobs.push(h.job(&cluster, 3).await);
        }
    }
    // WHEN all 50 fire at once
    let tasks: Vec<_> = jobs
        .iter()
        .cloned()
        .map(|job| {
            let h = h.clone();
            tokio::spawn(async move { h.run(&job, at(60)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // THEN no cluster ever had two backups at once
    assert_eq!(h.provider.most_at_once(), 1);
    // AND every run succeeded or failed cleanly with cluster_locked
    let succeeded = outcomes
        .iter()
        .filter(|o| o.status == RunStatus::Succeeded)
        .count();
    for o in &outcomes {
        match o.status {
            RunStatus::Succeeded => {}
            RunStatus::Failed => assert_eq!(
                o.error_code,
                Some(RunFailure::ClusterLocked),
                "{}",
                o.details
            ),
            RunStatus::Running | RunStatus::Queued => panic!("run {} not finished", o.id),
        }
    }
    assert!(succeeded >= 5, "at least one run per cluster gets through");
    // AND one available backup per successful run, none left creating, all locks free
    let backups = h.backups(None).await;
    assert_eq!(backups.len(), succeeded);
    assert!(backups.iter().all(|b| b.status == BackupStatus::Available));
    for c in 0..5 {
        assert_eq!(
            h.store
                .current(&format!("c{c}"), h.engine.now())
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(h.history(None).await.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_scheduled_instant_delivered_twice_makes_one_backup() {
    let h = Arc::new(Harness::new().await);
    h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    // WHEN the same firing is delivered twice in a row
    let first = h.engine.run_scheduled(&job, at(60)).await.unwrap();
    let second = h.engine.run_scheduled(&job, at(60)).await.unwrap();
    // THEN the second returns the first's outcome and does nothing
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.history, first.history);
    // AND WHEN another firing is delivered three times at once THEN one more run happens
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (h, job) = (h.clone(), job.clone());
            tokio::spawn(async move { h.engine.run_scheduled(&job, at(120)).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        if !t.await.unwrap().duplicate {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(h.backups(Some(&job)).await.len(), 2);
    assert_eq!(h.history(Some(&job)).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_cluster_directory_is_a_provider_error_that_prunes_nothing() {
    // GIVEN a job keeping 1 backup that has one good backup
    let h = Harness::new().await;
    let data = h.cluster("orders").await;
    let job = h.job("orders", 1).await;
    h.clock.set(at(60));
    let good = h.run(&job, at(60)).await;
    assert_eq!(good.status, RunStatus::Succeeded);
    // WHEN the data directory disappears and the job runs again
    std::fs::rename(&data, data.with_extension("moved")).unwrap();
    h.clock.set(at(120));
    let bad = h.run(&job, at(120)).await;
    // THEN the run fails with provider_error, names the backup it marked defunct
    assert_eq!(bad.status, RunStatus::Failed);
    assert_eq!(bad.error_code, Some(RunFailure::ProviderError));
    assert!(
        bad.details.contains("nothing was pruned"),
        "{}",
        bad.details
    );
    assert!(
        bad.details.contains(&data.display().to_string()),
        "{}",
        bad.details
    );
    assert!(bad.pruned_backup_ids.is_empty());
    let backups = h.backups(Some(&job)).await;
    let failed = backups
        .iter()
        .find(|b| b.id == bad.linked_resource)
        .unwrap();
    assert_eq!(failed.status, BackupStatus::Defunct);
    // AND the good backup is untouched, on disk and in the catalogue
    let kept = backups
        .iter()
        .find(|b| b.id == good.linked_resource)
        .unwrap();
    assert_eq!(kept.status, BackupStatus::Available);
    verify(&h.backups_dir().join(&kept.id)).unwrap();
    assert!(!h.backups_dir().join(&failed.id).exists());
    // AND the lock is free
    assert_eq!(
        h.store.current("orders", h.engine.now()).await.unwrap(),
        None
    );
    // AND WHEN the directory is back, the next run succeeds and cleans up the defunct one
    std::fs::rename(data.with_extension("moved"), &data).unwrap();
    h.clock.set(at(180));
    let next = h.run(&job, at(180)).await;
    assert_eq!(next.status, RunStatus::Succeeded);
    let mut pruned = next.pruned_backup_ids.clone();
    pruned.sort();
    let mut expected = vec![good.linked_resource.clone(), failed.id.clone()];
    expected.sort();
    assert_eq!(pruned, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_lock_expires_and_the_next_run_succeeds() {
    let h = Harness::new().await;
    h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    // GIVEN a run of another server that took the lock at 06:00 and crashed
    let crashed = match h
        .store
        .try_acquire(
            "orders",
            &LockHolder {
                operation: "scheduled-backup".into(),
                job_id: Some("deadjob0000000000000".into()),
                run_id: Some("deadrun0000000000000".into()),
            },
            at(60),
            chrono::Duration::seconds(60),
        )
        .await
        .unwrap()
    {
        Acquisition::Acquired(info) => info,
        Acquisition::Held(_) => panic!("the lock should be free"),
    };
    // WHEN a run comes 30 s later THEN it fails, naming the crashed holder
    h.clock.set(at(60) + chrono::Duration::seconds(30));
    let early = h.run(&job, at(60)).await;
    assert_eq!(early.error_code, Some(RunFailure::ClusterLocked));
    assert!(
        early.details.contains("deadrun0000000000000"),
        "{}",
        early.details
    );
    // WHEN the next run comes after the lease expired THEN it takes the lock and succeeds
    h.clock.set(at(120));
    let later = h.run(&job, at(120)).await;
    assert_eq!(later.status, RunStatus::Succeeded, "{}", later.details);
    // AND its fencing token was larger; the crashed holder cannot release it any more
    assert!(!h
        .store
        .release("orders", crashed.fencing_token)
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_copy_is_never_available() {
    // GIVEN a leftover partial copy from a crash, with files but no manifest
    let root = tempfile::tempdir().unwrap();
    let backups = root.path().join("backups");
    let partial = backups.join(".dc4j2k1l7ch6v7cc77n0.partial");
    std::fs::create_dir_all(partial.join("data")).unwrap();
    std::fs::write(partial.join("data/half"), b"half").unwrap();
    // WHEN the provider starts THEN the partial copy is removed
    let provider = DirectoryProvider::new(&backups, policy(root.path(), &backups)).unwrap();
    assert!(!partial.exists());
    // AND a backup whose directory is not complete is never reported available
    let handle = BackupHandle::new(
        "dc4j2k1l7ch6v7cc77n0",
        backups
            .join("dc4j2k1l7ch6v7cc77n0")
            .to_string_lossy()
            .into_owned(),
    );
    assert!(matches!(
        provider.status(&handle).await.unwrap(),
        ProviderStatus::Failed(_)
    ));
    std::fs::create_dir_all(backups.join("dc4j2k1l7ch6v7cc77n0/data")).unwrap();
    assert!(matches!(
        provider.status(&handle).await.unwrap(),
        ProviderStatus::Failed(_)
    ));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_fails_midway_leaves_nothing_behind() {
    use std::os::unix::ffi::OsStrExt;
    // GIVEN a data directory whose second file cannot be recorded (a non-UTF-8 name)
    let h = Harness::new().await;
    let data = h.cluster("odd").await;
    std::fs::write(data.join(std::ffi::OsStr::from_bytes(b"zz\xff")), b"x").unwrap();
    let job = h.job("odd", 1).await;
    // WHEN the job runs
    let run = h.run(&job, at(60)).await;
    // THEN it fails, its backup is defunct, and no directory of it exists, partial or not
    assert_eq!(run.error_code, Some(RunFailure::ProviderError));
    assert!(run.details.contains("not UTF-8"), "{}", run.details);
    let backup = &h.backups(Some(&job)).await[0];
    assert_eq!(backup.status, BackupStatus::Defunct);
    let leftovers: Vec<_> = std::fs::read_dir(h.backups_dir()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_backups_take_the_lock_and_are_never_pruned() {
    let h = Harness::new().await;
    h.cluster("orders").await;
    let job = h.job("orders", 1).await;
    // GIVEN a manual backup
    let manual = h.manual("orders", "before upgrade {index}").await.unwrap();
    assert!(h.engine.wait_idle(Duration::from_secs(30)).await);
    // WHEN the job runs twice, keeping one backup
    for hour in 1..=2 {
        h.clock.set(at(hour * 60));
        let o = h.run(&job, at(hour * 60)).await;
        assert_eq!(o.status, RunStatus::Succeeded);
    }
    // THEN the manual backup is still available and on disk
    let all = h.backups(None).await;
    let m = all.iter().find(|b| b.id == manual).unwrap();
    assert_eq!(m.status, BackupStatus::Available);
    assert_eq!(m.description, "before upgrade 1");
    assert_eq!(m.linked_resource, None);
    verify(&h.backups_dir().join(&manual)).unwrap();
    // AND while an operator holds the lock, a manual backup is refused at once
    h.engine
        .lock_cluster(
            &h.scope,
            "orders",
            &backup_core::api::LockClusterRequest {
                operation: "expand-disk".into(),
                ttl_seconds: Some(600),
            },
        )
        .await
        .unwrap();
    let err = h.manual("orders", "x").await.unwrap_err();
    assert_eq!(err.code(), "cluster_locked");
    assert!(err.to_string().contains("expand-disk"), "{err}");
    h.engine.unlock_cluster(&h.scope, "orders").await.unwrap();
    assert_eq!(
        h.store.current("orders", h.engine.now()).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_job_stops_running_and_keeps_its_history_and_backups() {
    let h = Harness::new().await;
    h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    h.engine.run_scheduled(&job, at(60)).await.unwrap();
    // WHEN the job is deleted
    h.engine.delete_job(&h.scope, &job).await.unwrap();
    // THEN it shows as deleted with no next runs, and run-now refuses it
    let shown = h.engine.get_job(&h.scope, &job).await.unwrap();
    assert_eq!(shown.status, backup_core::api::JobStatus::Deleted);
    assert!(shown.next_runs.is_empty());
    assert_eq!(
        h.engine
            .run_job_now(&h.scope, &job)
            .await
            .unwrap_err()
            .code(),
        "job_deleted"
    );
    // AND a late trigger records a failed run and makes no backup
    let late = h.run(&job, at(120)).await;
    assert_eq!(late.error_code, Some(RunFailure::JobNotFound));
    // AND its history and backups remain
    assert_eq!(h.history(Some(&job)).await.len(), 2);
    assert_eq!(h.backups(Some(&job)).await.len(), 1);
    // AND deleting it again succeeds
    h.engine.delete_job(&h.scope, &job).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_uses_the_request_instant_and_a_manual_trigger() {
    let h = Harness::new().await;
    h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    h.clock.set(at(7) + chrono::Duration::milliseconds(250));
    let started = h.engine.run_job_now(&h.scope, &job).await.unwrap().history;
    assert_eq!(started.trigger, Trigger::Manual);
    assert_eq!(
        started.scheduled_time,
        at(7) + chrono::Duration::milliseconds(250)
    );
    assert!(h.engine.wait_idle(Duration::from_secs(30)).await);
    let done = h.history(Some(&job)).await;
    assert_eq!(done[0].id, started.id);
    assert_eq!(done[0].status, RunStatus::Succeeded, "{}", done[0].details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_and_a_manual_backup_answer_with_their_outcome_when_asked_to_wait() {
    let h = Harness::new().await;
    h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    // WHEN "run now" may wait for the outcome
    let outcome = h
        .engine
        .run_job_now_within(&h.scope, &job, Duration::from_secs(60))
        .await
        .unwrap();
    // THEN it answers with the ended run, no polling needed
    assert_eq!(
        outcome.history.status,
        RunStatus::Succeeded,
        "{}",
        outcome.history.details
    );
    assert_eq!(h.history(Some(&job)).await[0], outcome.history);
    // AND a manual backup that may wait answers once its backup is available
    let request = backup_core::api::CreateBackupRequest {
        description: "before upgrade".into(),
        source_cluster_id: "orders".into(),
    };
    let id = h
        .engine
        .create_manual_backup_within(&h.scope, &request, Duration::from_secs(60))
        .await
        .unwrap();
    let made = h.engine.get_backup(&h.scope, &id).await.unwrap();
    assert_eq!(made.status, BackupStatus::Available, "{:?}", made.details);
    // AND without waiting, a run is answered while it holds the lock (as before)
    let started = h.engine.run_job_now(&h.scope, &job).await.unwrap().history;
    assert!(!started.status.is_final() || started.status == RunStatus::Succeeded);
    assert!(h.engine.wait_idle(Duration::from_secs(30)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_marks_interrupted_work_failed_and_defunct() {
    // GIVEN a data dir whose previous server died mid-run
    let dir = tempfile::tempdir().unwrap();
    let clusters = tempfile::tempdir().unwrap();
    {
        let local = backup_local::LocalMode::start(backup_local::LocalOptions::new(dir.path()))
            .await
            .unwrap();
        let scope = Scope::new("default", "default").unwrap();
        let data = clusters.path().join("db");
        std::fs::create_dir_all(&data).unwrap();
        register(&local.engine, &scope, "orders", &data).await;
        let store = &local.store;
        use backup_engine::ports::{BackupStore, RunStore};
        let mut entry = backup_engine::contract::history(
            "dc4j2k1bjjdf78g0d1fg",
            "default",
            "dc4j2jt29p8ur8g3cso0",
            at(60),
            at(60),
        );
        entry.item.status = RunStatus::Running;
        store.begin_run(&entry).await.unwrap();
        let b = backup_engine::contract::backup(
            "dc4j2k1l7ch6v7cc77n0",
            "default",
            Some("dc4j2jt29p8ur8g3cso0"),
            "orders",
            at(60),
        );
        store.insert_backup(&b).await.unwrap();
        drop(local);
    }
    // WHEN the server starts again
    let local = backup_local::LocalMode::start(backup_local::LocalOptions::new(dir.path()))
        .await
        .unwrap();
    // THEN the run is failed as interrupted and the backup defunct
    let scope = Scope::new("default", "default").unwrap();
    let items = local
        .engine
        .list_history(&scope, None, &backup_engine::ListQuery::default())
        .await
        .unwrap()
        .items;
    assert_eq!(items[0].status, RunStatus::Failed);
    assert_eq!(items[0].error_code, Some(RunFailure::Interrupted));
    let backups = local
        .engine
        .list_backups(
            &scope,
            &BackupFilter::default(),
            &backup_engine::ListQuery::default(),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(backups[0].status, BackupStatus::Defunct);
    local.shutdown(Duration::from_secs(1)).await;
}

async fn register(engine: &Engine, scope: &Scope, id: &str, data: &Path) {
    engine
        .register_cluster(
            scope,
            &directory_cluster(id, "Orders", data.to_string_lossy()),
        )
        .await
        .unwrap();
}

/// Short real-time leases: 300 ms, renewed every 100 ms.
fn short_leases() -> EngineConfig {
    leases_of(Duration::from_millis(300))
}

/// Real-time leases of `lease`, renewed every third of it.
fn leases_of(lease: Duration) -> EngineConfig {
    let mut config = EngineConfig::with_lease(lease);
    config.poll_interval = Duration::from_millis(10);
    config
}

/// A harness on the system clock with short leases, one cluster `orders` and a backup of it
/// that takes `delay_ms`, already running in the background: the harness, the job, the run.
async fn slow_real_time_backup(
    delay_ms: u64,
) -> (Arc<Harness>, String, tokio::task::JoinHandle<HistoryItem>) {
    slow_real_time_backup_with(delay_ms, short_leases()).await
}

async fn slow_real_time_backup_with(
    delay_ms: u64,
    config: EngineConfig,
) -> (Arc<Harness>, String, tokio::task::JoinHandle<HistoryItem>) {
    let h = Arc::new(
        Harness::build(
            |w| w.delay = Duration::from_millis(delay_ms),
            Some(Arc::new(backup_engine::clock::SystemClock)),
            config,
        )
        .await,
    );
    h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    let run = {
        let (h, job) = (h.clone(), job.clone());
        tokio::spawn(async move { h.run(&job, at(60)).await })
    };
    (h, job, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_backup_renews_its_lease_and_keeps_the_cluster() {
    // GIVEN 3 s leases (renewed each second: a renewal may come 2 s late on a loaded machine
    // and still hold) and a backup that takes 7 s, holding the cluster
    let (h, _job, run) = slow_real_time_backup_with(7000, leases_of(Duration::from_secs(3))).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h
        .store
        .current("orders", Utc::now())
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // WHEN an operator tries to lock the cluster after the first lease would have ended
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let err = h
        .engine
        .lock_cluster(
            &h.scope,
            "orders",
            &backup_core::api::LockClusterRequest {
                operation: "expand-disk".into(),
                ttl_seconds: None,
            },
        )
        .await
        .unwrap_err();
    // THEN the run still holds it, because it renewed its lease
    assert_eq!(err.code(), "cluster_locked");
    let done = run.await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.details);
    assert_eq!(h.store.current("orders", Utc::now()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_loses_its_lock_abandons_its_backup() {
    // GIVEN a slow backup under 300 ms leases
    let (h, job, run) = slow_real_time_backup(1500).await;
    // WHEN its lock is taken from it (as if its lease had run out unnoticed)
    let holder = loop {
        if let Some(holder) = h.store.current("orders", Utc::now()).await.unwrap() {
            break holder;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(h
        .store
        .release("orders", holder.fencing_token)
        .await
        .unwrap());
    let thief = LockHolder {
        operation: "expand-disk".into(),
        job_id: None,
        run_id: None,
    };
    let taken = h
        .store
        .try_acquire("orders", &thief, Utc::now(), chrono::Duration::seconds(60))
        .await
        .unwrap();
    assert!(matches!(taken, Acquisition::Acquired(_)));
    // THEN the run notices at its next renewal, fails with lock_lost and prunes nothing
    let done = run.await.unwrap();
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(
        done.error_code,
        Some(RunFailure::LockLost),
        "{}",
        done.details
    );
    let backups = h.backups(Some(&job)).await;
    assert_eq!(backups[0].status, BackupStatus::Defunct);
    // AND it did not release the new holder's lock
    assert_eq!(
        h.store
            .current("orders", Utc::now())
            .await
            .unwrap()
            .map(|l| l.operation),
        Some("expand-disk".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_never_prunes_the_backup_it_just_made() {
    // GIVEN a frozen clock, so every backup is created in the same millisecond and the
    // retention rule can only tell them apart by id
    let h = Harness::new().await;
    h.cluster("orders").await;
    let job = h.job("orders", 1).await;
    for hour in 1..=6 {
        // WHEN the job keeping one backup runs
        let run = h.run(&job, at(hour * 60)).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.details);
        // THEN the backup it made is available, whatever its id
        let made = h
            .engine
            .get_backup(&h.scope, &run.linked_resource)
            .await
            .unwrap();
        assert_eq!(made.status, BackupStatus::Available);
        assert!(!run.pruned_backup_ids.contains(&run.linked_resource));
        verify(&h.backups_dir().join(&made.id)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_of_a_run_whose_process_died_records_it_as_interrupted() {
    let h = Harness::new().await;
    h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    // GIVEN a run of this job at 06:00 whose process died while its backup was `creating`
    // (recorded, lock taken, then nothing more: as a Lambda that timed out leaves it)
    use backup_engine::ports::{BackupStore, RunStore};
    let mut entry =
        backup_engine::contract::history("dc4j2k1bjjdf78g0d1fg", "default", &job, at(60), at(60));
    entry.cluster_id = "orders".into();
    assert_eq!(h.store.begin_run(&entry).await.unwrap(), RunStart::Started);
    let mut b = backup_engine::contract::backup(
        "dc4j2k1l7ch6v7cc77n0",
        "default",
        Some(&job),
        "orders",
        at(60),
    );
    b.location = Some(h.backups_dir().join(&b.id).to_string_lossy().into_owned());
    assert!(h.store.insert_backup(&b).await.unwrap());
    let dead = LockHolder {
        operation: "scheduled-backup".into(),
        job_id: Some(job.clone()),
        run_id: Some(entry.item.id.clone()),
    };
    let Acquisition::Acquired(_) = h
        .store
        .try_acquire("orders", &dead, at(60), chrono::Duration::seconds(60))
        .await
        .unwrap()
    else {
        panic!("the lock should be free")
    };
    // WHEN the same firing is delivered again while its lease still runs THEN nothing changes
    h.clock.set(at(60) + chrono::Duration::seconds(30));
    let early = h.engine.run_scheduled(&job, at(60)).await.unwrap();
    assert!(early.duplicate);
    assert_eq!(early.history.status, RunStatus::Running);
    // WHEN it is delivered again after the lease expired (Lambda's retry)
    h.clock.set(at(63));
    let later = h.engine.run_scheduled(&job, at(60)).await.unwrap();
    // THEN the run is recorded as interrupted, linked to its backup, which is defunct
    assert!(later.duplicate);
    assert_eq!(later.history.status, RunStatus::Failed);
    assert_eq!(later.history.error_code, Some(RunFailure::Interrupted));
    assert_eq!(later.history.linked_resource, b.id);
    assert!(
        later.history.details.contains("defunct"),
        "{}",
        later.history.details
    );
    assert_eq!(h.history(Some(&job)).await[0], later.history);
    assert_eq!(
        h.store.get_backup(&b.id).await.unwrap().unwrap().status,
        BackupStatus::Defunct
    );
    // AND the next run succeeds and prunes the defunct backup
    let next = h.run(&job, at(120)).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{}", next.details);
    assert_eq!(next.pruned_backup_ids, vec![b.id.clone()]);
}

/// A restore request of `backup` into cluster `id` at `path`.
fn restore_request(
    id: &str,
    backup: &str,
    path: &Path,
) -> backup_core::api::RegisterClusterRequest {
    let mut request = directory_cluster(id, "Orders, restored", path.to_string_lossy());
    request.source_backup_id = Some(backup.to_owned());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_makes_an_available_cluster_and_a_failed_one_is_recorded_and_never_backed_up() {
    // GIVEN a backup of a cluster
    let h = Harness::new().await;
    let data = h.cluster("orders").await;
    let job = h.job("orders", 2).await;
    let run = h.run(&job, at(0)).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.details);
    let backup = run.linked_resource.clone();
    // WHEN it is restored into a new path
    let target = h.clusters.path().join("restored");
    let outcome = h
        .engine
        .restore_cluster(&h.scope, &restore_request("restored", &backup, &target))
        .await
        .unwrap();
    // THEN the new cluster is available, names its backup, holds the same files, and its
    // lock is free
    let backup_engine::RestoreOutcome::Done(cluster) = outcome else {
        panic!("a directory restore is done in the call: {outcome:?}")
    };
    assert_eq!(cluster.status, backup_core::api::ClusterStatus::Available);
    assert_eq!(cluster.source_backup_id.as_deref(), Some(backup.as_str()));
    assert_eq!(
        std::fs::read(target.join("pg_wal/000001")).unwrap(),
        std::fs::read(data.join("pg_wal/000001")).unwrap()
    );
    assert!(target.join("empty").is_dir());
    assert_eq!(
        h.store.current("restored", h.engine.now()).await.unwrap(),
        None
    );
    let stored = h.engine.get_cluster(&h.scope, "restored").await.unwrap();
    assert_eq!(stored.status, backup_core::api::ClusterStatus::Available);
    // AND it is backed up like any cluster
    let again = h.job("restored", 1).await;
    h.clock.set(at(60));
    assert_eq!(h.run(&again, at(60)).await.status, RunStatus::Succeeded);
    // AND the same id again is refused, changing nothing
    let err = h
        .engine
        .restore_cluster(&h.scope, &restore_request("restored", &backup, &target))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "cluster_exists");

    // WHEN a file of the backup is altered behind the server's back and it is restored
    std::fs::write(
        h.backups_dir().join(&backup).join("data/pg_wal/000001"),
        vec![8u8; 300_000],
    )
    .unwrap();
    let broken = h.clusters.path().join("broken");
    let err = h
        .engine
        .restore_cluster(&h.scope, &restore_request("broken", &backup, &broken))
        .await
        .unwrap_err();
    // THEN it fails naming the file, the cluster is recorded failed with the reason, its
    // lock is free, and nothing is left on disk
    assert_eq!(err.code(), "restore_failed");
    assert!(err.to_string().contains("pg_wal/000001"), "{err}");
    let failed = h.engine.get_cluster(&h.scope, "broken").await.unwrap();
    assert_eq!(failed.status, backup_core::api::ClusterStatus::Failed);
    assert!(
        failed
            .details
            .as_deref()
            .unwrap_or("")
            .contains("BLAKE3 checksum"),
        "{failed:?}"
    );
    assert_eq!(
        h.store.current("broken", h.engine.now()).await.unwrap(),
        None
    );
    let mut left: Vec<String> = std::fs::read_dir(h.clusters.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["orders", "restored"]);
    // AND a failed cluster is never backed up: a manual backup is refused, a run fails
    let err = h.manual("broken", "x").await.unwrap_err();
    assert_eq!(err.code(), "cluster_not_available");
    let job = h.job("broken", 1).await;
    h.clock.set(at(120));
    let run = h.run(&job, at(120)).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error_code, Some(RunFailure::ClusterNotAvailable));
    assert!(run.details.contains("broken is failed"), "{}", run.details);
    // AND it can be deleted, and the id restored again
    h.engine.delete_job(&h.scope, &job).await.unwrap();
    h.engine.delete_cluster(&h.scope, "broken").await.unwrap();
}
