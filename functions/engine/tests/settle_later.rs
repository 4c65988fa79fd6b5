//! Backups that settle later (SPEC §16), decided by the engine: a run that parks its backup
//! and returns, the notification that settles it (once), the sweeper that settles what no
//! notification reached, fails what is past its deadline and cleans up after a process that
//! stopped half-way. The store is the in-memory one (it passes the same contract as SQLite
//! and DynamoDB); the provider is scripted, since what is under test is the engine's
//! decision: the AWS side runs the same steps against moto in `backup-lambdas`' tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backup_core::api::{HistoryItem, RunFailure, RunStatus};
use backup_core::retention::BackupStatus;
use backup_engine::clock::ManualClock;
use backup_engine::memory::MemoryStore;
use backup_engine::ports::{
    BackupProvider, BackupStore, ClusterLock, HistoryStore, JobStore, PendingBackups,
    RunDispatcher, RunStore, TriggerScheduler,
};
use backup_engine::requests::{directory_cluster, hourly_job, manual_backup};
use backup_engine::writes::OneByOne;
use backup_engine::{
    BackupHandle, BackupRequest, Creation, Engine, EngineConfig, HistoryEntry, JobRecord,
    LockHolder, Notice, Ports, ProviderError, ProviderStatus, Scope, Settled, TriggerError,
};
use chrono::{DateTime, Utc};

const TIMEOUT: Duration = Duration::from_secs(24 * 3600);

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap()
}

/// EBS-like: `create` starts `pieces` snapshots named `snap-<backup>-<n>` and returns;
/// `status` answers what the test set.
struct Snapshots {
    pieces: usize,
    status: Mutex<ProviderStatus>,
    polls: AtomicUsize,
    deleted: Mutex<Vec<String>>,
    /// While set, a delete fails half-way (as a `DeleteSnapshot` of the second of two).
    fail_deletes: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl BackupProvider for Snapshots {
    fn kind(&self) -> &'static str {
        "directory"
    }

    fn planned_location(&self, _: &BackupRequest) -> String {
        "planned".to_owned()
    }

    async fn create(&self, request: &BackupRequest) -> Result<Creation, ProviderError> {
        let mut handle = BackupHandle::new(request.backup_id.clone(), "snapshots");
        handle.keys = (0..self.pieces)
            .map(|n| format!("snap-{}-{n}", request.backup_id))
            .collect();
        Ok(Creation::Pending(handle))
    }

    async fn status(&self, _: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Ok(self.status.lock().unwrap().clone())
    }

    async fn delete(&self, handle: &BackupHandle) -> Result<(), ProviderError> {
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(ProviderError::new(
                "EC2 DeleteSnapshot of the second snapshot failed: RequestLimitExceeded",
            ));
        }
        self.deleted.lock().unwrap().push(handle.backup_id.clone());
        Ok(())
    }
}

struct NoTriggers;

#[async_trait]
impl TriggerScheduler for NoTriggers {
    async fn register(&self, _: &JobRecord) -> Result<(), TriggerError> {
        Ok(())
    }

    async fn remove(&self, _: &str) -> Result<(), TriggerError> {
        Ok(())
    }
}

/// Records what "run now" hands over (what the runner's asynchronous invocation carries),
/// or refuses it.
#[derive(Default)]
struct Dispatched {
    runs: Mutex<Vec<String>>,
    refuse: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl RunDispatcher for Dispatched {
    async fn dispatch(
        &self,
        history_id: &str,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<(), TriggerError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(TriggerError::new(
                "Lambda answered 429 TooManyRequestsException",
            ));
        }
        self.runs.lock().unwrap().push(history_id.to_owned());
        Ok(())
    }
}

struct World {
    engine: Engine,
    dispatched: Arc<Dispatched>,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    provider: Arc<Snapshots>,
    scope: Scope,
}

impl World {
    async fn new(pieces: usize) -> World {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(at(0)));
        let provider = Arc::new(Snapshots {
            pieces,
            status: Mutex::new(ProviderStatus::Creating),
            polls: AtomicUsize::new(0),
            deleted: Mutex::new(Vec::new()),
            fail_deletes: Default::default(),
        });
        let dispatched = Arc::new(Dispatched::default());
        let ports = Ports {
            store: store.clone(),
            lock: store.clone(),
            providers: vec![provider.clone()],
            triggers: Arc::new(NoTriggers),
            retired_triggers: Vec::new(),
            clock: clock.clone(),
            ids: Arc::new(backup_engine::ids::RandomIds::default()),
            writes: Arc::new(OneByOne::over(store.clone()).with_pending(store.clone())),
            pending: Some(store.clone()),
            dispatch: Some(dispatched.clone()),
        };
        let config = EngineConfig {
            settle_later: Some(TIMEOUT),
            ..EngineConfig::with_lease(Duration::from_secs(60))
        };
        let w = World {
            engine: Engine::new(ports, config),
            dispatched,
            store,
            clock,
            provider,
            scope: Scope::new("default", "default").unwrap(),
        };
        w.engine
            .register_cluster(&w.scope, &directory_cluster("orders", "Orders", "/srv/o"))
            .await
            .unwrap();
        w
    }

    async fn job(&self, keep: i64) -> String {
        self.engine
            .create_job(
                &self.scope,
                &hourly_job("orders", "{cluster} #{index}", keep),
            )
            .await
            .unwrap()
            .id
    }

    async fn run(&self, job: &str, hour: i64) -> HistoryItem {
        self.engine
            .run_scheduled(job, at(hour * 60))
            .await
            .unwrap()
            .history
    }

    async fn history(&self, id: &str) -> HistoryItem {
        self.store.get_history(id).await.unwrap().unwrap().item
    }

    async fn status(&self, backup: &str) -> BackupStatus {
        self.store.get_backup(backup).await.unwrap().unwrap().status
    }

    /// The backup the run `item` is making (the job's newest).
    async fn backup_of(&self, job: &str) -> String {
        let mut all = self.store.list_job_backups(job).await.unwrap();
        all.sort_by_key(|b| b.index);
        all.last().unwrap().id.clone()
    }

    async fn notify(&self, key: &str, notice: Notice) -> Settled {
        self.engine.settle_notice(key, notice).await.unwrap()
    }

    /// A job keeping one backup, with one available, and its second run, an hour later,
    /// parked on its snapshot: the world, the job, the first backup, the second run's
    /// `running` item and its backup.
    async fn second_run_parked() -> (World, String, String, HistoryItem, String) {
        let w = World::new(1).await;
        let job = w.job(1).await;
        w.run(&job, 0).await;
        let first = w.backup_of(&job).await;
        w.notify(&format!("snap-{first}-0"), Notice::Completed)
            .await;
        w.clock.set(at(60));
        let item = w.run(&job, 1).await;
        let second = w.backup_of(&job).await;
        (w, job, first, item, second)
    }
}

#[tokio::test]
async fn a_run_parks_its_backup_and_a_notification_settles_it_once() {
    // GIVEN a job and a provider whose snapshot is still pending
    let w = World::new(1).await;
    let job = w.job(3).await;
    // WHEN it runs THEN the run returns `running`, the backup is `creating`, and the cluster
    // stays locked until the deadline
    let item = w.run(&job, 0).await;
    assert_eq!(item.status, RunStatus::Running);
    let backup = w.backup_of(&job).await;
    assert_eq!(w.status(&backup).await, BackupStatus::Creating);
    let lock = w.store.current("orders", at(0)).await.unwrap().unwrap();
    assert_eq!(
        lock.expires,
        at(0) + chrono::Duration::from_std(TIMEOUT).unwrap()
    );
    assert_eq!(w.provider.polls.load(Ordering::SeqCst), 0, "no waiting");
    // AND a second job's run on the cluster fails `cluster_locked`
    let other = w.job(3).await;
    w.clock.set(at(30));
    let refused = w.run(&other, 0).await;
    assert_eq!(refused.error_code, Some(RunFailure::ClusterLocked));
    // WHEN the notification of its snapshot arrives
    let key = format!("snap-{backup}-0");
    let parked = w.store.list_pending(10).await.unwrap();
    let settled = w.notify(&key, Notice::Completed).await;
    // THEN the backup is available, the run succeeded and the cluster is free, without
    // asking the provider (a one-snapshot backup's notification says it all)
    let Settled::Ended {
        available: true,
        history: Some(done),
        ..
    } = settled
    else {
        panic!("{settled:?}")
    };
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.details);
    assert_eq!(done.linked_resource, backup);
    assert_eq!(w.history(&item.id).await, done);
    assert_eq!(w.status(&backup).await, BackupStatus::Available);
    assert_eq!(w.store.current("orders", at(30)).await.unwrap(), None);
    assert_eq!(w.provider.polls.load(Ordering::SeqCst), 0);
    // WHEN the same notification arrives again THEN it settles nothing more
    w.clock.set(at(40));
    assert_eq!(w.notify(&key, Notice::Completed).await, Settled::Unknown);
    assert_eq!(w.history(&item.id).await, done);
    // AND a second delivery that raced the first (it read the pending record before the
    // first removed it) writes nothing and answers no run, so it is not counted or logged
    // as a second end
    w.store.park(&parked[0]).await.unwrap();
    let again = w.notify(&key, Notice::Completed).await;
    assert!(
        matches!(again, Settled::Ended { history: None, .. }),
        "{again:?}"
    );
    assert_eq!(w.history(&item.id).await, done);
}

#[tokio::test]
async fn a_failed_snapshot_makes_the_backup_defunct_and_prunes_nothing() {
    // GIVEN a job keeping one backup, which already has one
    let w = World::new(1).await;
    let job = w.job(1).await;
    w.run(&job, 0).await;
    let first = w.backup_of(&job).await;
    w.notify(&format!("snap-{first}-0"), Notice::Completed)
        .await;
    // WHEN the next run's snapshot fails
    let item = w.run(&job, 1).await;
    let second = w.backup_of(&job).await;
    w.notify(
        &format!("snap-{second}-0"),
        Notice::Failed("the volume was detached".into()),
    )
    .await;
    // THEN the new backup is defunct, the run failed saying why, the older backup stays,
    // and the cluster is free
    let item = w.history(&item.id).await;
    assert_eq!(item.status, RunStatus::Failed);
    assert_eq!(item.error_code, Some(RunFailure::ProviderError));
    assert!(
        item.details.contains("the volume was detached"),
        "{}",
        item.details
    );
    assert_eq!(w.status(&second).await, BackupStatus::Defunct);
    assert_eq!(w.status(&first).await, BackupStatus::Available);
    assert_eq!(w.store.current("orders", at(60)).await.unwrap(), None);
}

#[tokio::test]
async fn a_successful_settle_prunes_what_the_job_no_longer_keeps() {
    let (w, _job, first, item, second) = World::second_run_parked().await;
    w.notify(&format!("snap-{second}-0"), Notice::Completed)
        .await;
    let item = w.history(&item.id).await;
    assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
    assert_eq!(item.pruned_backup_ids, vec![first.clone()]);
    assert_eq!(w.status(&first).await, BackupStatus::Deleted);
    assert_eq!(w.status(&second).await, BackupStatus::Available);
}

#[tokio::test]
async fn a_settle_prunes_by_the_job_as_it_is_now_not_as_it_was_when_the_run_started() {
    // GIVEN a job keeping 1 backup, with one available and a second run parked
    let (w, job, first, item, second) = World::second_run_parked().await;
    // WHEN the job is changed to keep 5 while the snapshot is made, and then it settles
    let patch: backup_core::api::UpdateJobRequest =
        serde_json::from_value(serde_json::json!({"data": {"maxBackupCount": 5}})).unwrap();
    w.engine.update_job(&w.scope, &job, &patch).await.unwrap();
    w.notify(&format!("snap-{second}-0"), Notice::Completed)
        .await;
    // THEN nothing is pruned: the job keeps 5 now
    let item = w.history(&item.id).await;
    assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
    assert!(
        item.pruned_backup_ids.is_empty(),
        "{:?}",
        item.pruned_backup_ids
    );
    assert_eq!(w.status(&first).await, BackupStatus::Available);

    // GIVEN the job back at 1, and a third run parked
    let patch: backup_core::api::UpdateJobRequest =
        serde_json::from_value(serde_json::json!({"data": {"maxBackupCount": 1}})).unwrap();
    w.engine.update_job(&w.scope, &job, &patch).await.unwrap();
    w.clock.set(at(120));
    let item = w.run(&job, 2).await;
    let third = w.backup_of(&job).await;
    // WHEN the job is deleted while the snapshot is made, and then it settles
    w.engine.delete_job(&w.scope, &job).await.unwrap();
    w.notify(&format!("snap-{third}-0"), Notice::Completed)
        .await;
    // THEN the run succeeds and prunes nothing: a deleted job's backups remain (SPEC §6)
    let item = w.history(&item.id).await;
    assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
    assert!(
        item.pruned_backup_ids.is_empty(),
        "{:?}",
        item.pruned_backup_ids
    );
    assert!(item.details.contains("job was deleted"), "{}", item.details);
    for backup in [&first, &second, &third] {
        assert_eq!(w.status(backup).await, BackupStatus::Available);
    }
}

#[tokio::test]
async fn a_settle_that_stopped_after_recording_the_backup_available_is_finished_by_the_next() {
    // GIVEN a job keeping 1 backup, one available, and a second run parked
    let (w, _job, first, item, second) = World::second_run_parked().await;
    // AND a settle of it that recorded the backup available and then stopped (its process
    // ended before it pruned, ended the run and released the cluster)
    assert!(w
        .store
        .update_backup_status(&second, BackupStatus::Creating, BackupStatus::Available)
        .await
        .unwrap());
    // WHEN the notification is delivered again
    w.notify(&format!("snap-{second}-0"), Notice::Completed)
        .await;
    // THEN the run is ended, the first backup pruned and the cluster released
    let item = w.history(&item.id).await;
    assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
    assert_eq!(item.pruned_backup_ids, vec![first.clone()]);
    assert_eq!(w.status(&first).await, BackupStatus::Deleted);
    assert_eq!(w.status(&second).await, BackupStatus::Available);
    assert_eq!(w.store.current("orders", at(61)).await.unwrap(), None);
    // AND a further delivery changes nothing
    w.notify(&format!("snap-{second}-0"), Notice::Completed)
        .await;
    assert_eq!(w.history(&item.id).await, item);
}

#[tokio::test]
async fn a_notification_for_a_snapshot_nobody_knows_writes_nothing() {
    let w = World::new(1).await;
    let job = w.job(3).await;
    let item = w.run(&job, 0).await;
    let backup = w.backup_of(&job).await;
    // AWS Backup's and DLM's snapshots are notified too
    assert_eq!(
        w.notify("snap-0123456789abcdef0", Notice::Completed).await,
        Settled::Unknown
    );
    assert_eq!(
        w.notify("snap-0123456789abcdef0", Notice::Failed("x".into()))
            .await,
        Settled::Unknown
    );
    assert_eq!(w.status(&backup).await, BackupStatus::Creating);
    assert_eq!(w.history(&item.id).await, item);
}

#[tokio::test]
async fn a_backup_of_several_snapshots_settles_when_the_provider_says_all_are_done() {
    let w = World::new(2).await;
    let job = w.job(3).await;
    w.run(&job, 0).await;
    let backup = w.backup_of(&job).await;
    // WHEN the first snapshot completes while the second does not THEN nothing settles
    let first = w
        .notify(&format!("snap-{backup}-0"), Notice::Completed)
        .await;
    assert_eq!(
        first,
        Settled::NotYet {
            backup_id: backup.clone()
        }
    );
    assert_eq!(w.status(&backup).await, BackupStatus::Creating);
    // WHEN the second completes THEN the provider says all are done, and it settles
    *w.provider.status.lock().unwrap() = ProviderStatus::Available;
    let second = w
        .notify(&format!("snap-{backup}-1"), Notice::Completed)
        .await;
    assert!(
        matches!(
            second,
            Settled::Ended {
                available: true,
                ..
            }
        ),
        "{second:?}"
    );
    assert_eq!(w.status(&backup).await, BackupStatus::Available);
}

#[tokio::test]
async fn a_manual_backup_settles_without_history_or_pruning() {
    let w = World::new(1).await;
    let id = w
        .engine
        .create_manual_backup(&w.scope, &manual_backup("orders", "by hand"))
        .await
        .unwrap();
    assert!(w.engine.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(w.status(&id).await, BackupStatus::Creating);
    assert!(w.store.current("orders", at(0)).await.unwrap().is_some());
    let settled = w.notify(&format!("snap-{id}-0"), Notice::Completed).await;
    assert!(
        matches!(
            settled,
            Settled::Ended {
                available: true,
                history: None,
                ..
            }
        ),
        "{settled:?}"
    );
    assert_eq!(w.status(&id).await, BackupStatus::Available);
    assert_eq!(w.store.current("orders", at(0)).await.unwrap(), None);
}

#[tokio::test]
async fn the_sweep_settles_what_no_notification_reached_and_fails_what_is_too_late() {
    // GIVEN two clusters' runs whose notifications never arrive
    let w = World::new(1).await;
    w.engine
        .register_cluster(&w.scope, &directory_cluster("billing", "Billing", "/srv/b"))
        .await
        .unwrap();
    let job = w.job(3).await;
    let item = w.run(&job, 0).await;
    let backup = w.backup_of(&job).await;
    // WHILE the provider still makes it THEN a sweep leaves it alone
    w.clock.set(at(10));
    let report = w.engine.sweep().await.unwrap();
    assert!(
        report.settled.is_empty() && report.timed_out.is_empty(),
        "{report:?}"
    );
    assert_eq!(w.status(&backup).await, BackupStatus::Creating);
    // WHEN it completes THEN the next sweep settles it
    *w.provider.status.lock().unwrap() = ProviderStatus::Available;
    let report = w.engine.sweep().await.unwrap();
    assert_eq!(report.settled, vec![backup.clone()]);
    assert_eq!(w.history(&item.id).await.status, RunStatus::Succeeded);
    // GIVEN another run whose snapshot never completes
    *w.provider.status.lock().unwrap() = ProviderStatus::Creating;
    let item = w.run(&job, 1).await;
    let late = w.backup_of(&job).await;
    // WHEN a sweep runs past SNAPSHOT_TIMEOUT THEN the backup is defunct
    // (`provider_timeout`), the run failed and the cluster is free
    w.clock
        .set(at(60) + chrono::Duration::from_std(TIMEOUT).unwrap());
    let report = w.engine.sweep().await.unwrap();
    assert_eq!(report.timed_out, vec![late.clone()]);
    let item = w.history(&item.id).await;
    assert_eq!(item.status, RunStatus::Failed);
    assert_eq!(item.error_code, Some(RunFailure::ProviderTimeout));
    assert!(
        item.details.contains("SNAPSHOT_TIMEOUT"),
        "{}",
        item.details
    );
    assert_eq!(w.status(&late).await, BackupStatus::Defunct);
    assert_eq!(
        w.store.current("orders", w.clock_now()).await.unwrap(),
        None
    );
    // AND its late notification settles nothing
    assert_eq!(
        w.notify(&format!("snap-{late}-0"), Notice::Completed).await,
        Settled::Unknown
    );
    assert_eq!(w.status(&late).await, BackupStatus::Defunct);
}

impl World {
    fn clock_now(&self) -> DateTime<Utc> {
        use backup_engine::ports::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn the_sweep_fails_a_run_whose_process_stopped_and_deletes_what_it_left() {
    // GIVEN a run that took the lock (short lease), recorded its backup `creating`, started
    // its snapshots and stopped before recording them pending
    let w = World::new(1).await;
    let job = w.job(3).await;
    let record = w.store.get_job(&job).await.unwrap().unwrap();
    let entry = HistoryEntry {
        scope: w.scope.clone(),
        cluster_id: "orders".into(),
        item: HistoryItem {
            id: "h-stopped".into(),
            job_id: job.clone(),
            organization_id: w.scope.org.clone(),
            project_id: w.scope.project.clone(),
            status: RunStatus::Running,
            details: "Backing up cluster orders.".into(),
            linked_resource: "orders".into(),
            start_time: at(0),
            end_time: None,
            scheduled_time: at(0),
            trigger: backup_core::api::Trigger::Schedule,
            error_code: None,
            pruned_backup_ids: Vec::new(),
        },
    };
    w.store.begin_run(&entry).await.unwrap();
    let holder = LockHolder {
        operation: "scheduled-backup".into(),
        job_id: Some(job.clone()),
        run_id: Some("h-stopped".into()),
    };
    w.store
        .try_acquire("orders", &holder, at(0), chrono::Duration::seconds(60))
        .await
        .unwrap();
    let mut orphan = backup_engine::BackupEntry {
        size_bytes: None,
        verification: None,
        id: "b-orphan".into(),
        scope: w.scope.clone(),
        job_id: Some(record.id.clone()),
        cluster_id: "orders".into(),
        cluster_description: "Orders".into(),
        provider: "directory".into(),
        description: "orders #1".into(),
        created: at(0),
        status: BackupStatus::Creating,
        index: 1,
        location: Some("planned".into()),
        error_code: None,
        details: None,
    };
    w.store.insert_backup(&orphan).await.unwrap();
    // WHILE its lease runs THEN the sweep leaves it alone
    w.clock.set(at(0) + chrono::Duration::seconds(30));
    let report = w.engine.sweep().await.unwrap();
    assert!(report.orphans_deleted.is_empty(), "{report:?}");
    // WHEN the lease has expired THEN the sweep fails the run and deletes what it left
    w.clock.set(at(2));
    let report = w.engine.sweep().await.unwrap();
    assert_eq!(report.abandoned_runs, vec!["h-stopped".to_owned()]);
    assert_eq!(report.orphans_deleted, vec!["b-orphan".to_owned()]);
    assert_eq!(
        w.history("h-stopped").await.error_code,
        Some(RunFailure::Interrupted)
    );
    orphan = w.store.get_backup("b-orphan").await.unwrap().unwrap();
    assert_eq!(orphan.status, BackupStatus::Deleted);
    assert_eq!(
        *w.provider.deleted.lock().unwrap(),
        vec!["b-orphan".to_owned()]
    );
    // AND a parked run is never taken for a stopped one
    let item = w.run(&job, 1).await;
    w.clock.set(at(200));
    let report = w.engine.sweep().await.unwrap();
    assert!(report.abandoned_runs.is_empty(), "{report:?}");
    assert_eq!(w.history(&item.id).await.status, RunStatus::Running);
    assert!(w.store.list_pending(10).await.unwrap().len() == 1);
}

#[tokio::test]
async fn run_now_queues_the_run_and_the_runner_claims_it_once() {
    // GIVEN a deployment whose "run now" hands the run to the runner
    let w = World::new(1).await;
    let job = w.job(3).await;
    // WHEN an operator runs the job now THEN the run is recorded `queued` and handed over,
    // and nothing else happened yet
    let queued = w.engine.run_job_now(&w.scope, &job).await.unwrap().history;
    assert_eq!(queued.status, RunStatus::Queued);
    assert_eq!(*w.dispatched.runs.lock().unwrap(), vec![queued.id.clone()]);
    assert!(w.store.list_job_backups(&job).await.unwrap().is_empty());
    // WHEN the runner receives it (twice: deliveries are at least once), before the
    // store's index of history ids shows it
    w.store.lag_history_index(2);
    let first = w.engine.run_queued(&queued.id).await.unwrap();
    let second = w.engine.run_queued(&queued.id).await.unwrap();
    // THEN the first claims it and starts the backup, the second does nothing
    assert!(!first.duplicate);
    assert_eq!(first.history.status, RunStatus::Running);
    assert_eq!(first.history.id, queued.id);
    assert!(second.duplicate);
    assert_eq!(w.store.list_job_backups(&job).await.unwrap().len(), 1);
    // AND the notification settles it as any run
    let backup = w.backup_of(&job).await;
    w.notify(&format!("snap-{backup}-0"), Notice::Completed)
        .await;
    assert_eq!(w.history(&queued.id).await.status, RunStatus::Succeeded);
    // AND a delivery naming no run is refused
    let err = w
        .engine
        .run_queued("dc8glb9q1a46imj9oac0")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "run_not_found");
}

#[tokio::test]
async fn a_run_that_cannot_be_handed_over_fails_at_once_and_one_never_delivered_is_swept() {
    let w = World::new(1).await;
    let job = w.job(3).await;
    // WHEN the runner cannot be invoked THEN the request fails and the run is recorded failed
    w.dispatched.refuse.store(true, Ordering::SeqCst);
    let err = w.engine.run_job_now(&w.scope, &job).await.unwrap_err();
    assert!(err.to_string().contains("TooManyRequests"), "{err}");
    let history = w
        .engine
        .list_history(&w.scope, Some(&job), &backup_engine::ListQuery::default())
        .await
        .unwrap()
        .items;
    assert_eq!(history[0].status, RunStatus::Failed);
    assert_eq!(history[0].error_code, Some(RunFailure::Interrupted));
    // GIVEN a run handed over whose delivery never comes
    w.dispatched.refuse.store(false, Ordering::SeqCst);
    w.clock.set(at(1));
    let lost = w.engine.run_job_now(&w.scope, &job).await.unwrap().history;
    // WHILE its delivery may still come THEN the sweep leaves it queued
    w.clock.set(at(60));
    let report = w.engine.sweep().await.unwrap();
    assert!(report.lost_runs.is_empty(), "{report:?}");
    // WHEN it is past the grace THEN the sweep fails it, and a late delivery does nothing
    w.clock.set(at(1) + backup_engine::run::QUEUED_GRACE);
    let report = w.engine.sweep().await.unwrap();
    assert_eq!(report.lost_runs, vec![lost.id.clone()]);
    let item = w.history(&lost.id).await;
    assert_eq!(item.status, RunStatus::Failed);
    assert!(item.details.contains("never received"), "{}", item.details);
    let late = w.engine.run_queued(&lost.id).await.unwrap();
    assert!(late.duplicate);
    assert!(w.store.list_job_backups(&job).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_prune_that_fails_half_way_leaves_the_backup_deleting_and_the_sweep_finishes_it() {
    // GIVEN a job keeping one backup, which has one, and a provider whose deletes fail
    let w = World::new(1).await;
    let job = w.job(1).await;
    w.run(&job, 0).await;
    let first = w.backup_of(&job).await;
    w.notify(&format!("snap-{first}-0"), Notice::Completed)
        .await;
    w.provider.fail_deletes.store(true, Ordering::SeqCst);
    // WHEN the next run settles and prunes the first backup
    w.clock.set(at(60));
    let item = w.run(&job, 1).await;
    let second = w.backup_of(&job).await;
    w.notify(&format!("snap-{second}-0"), Notice::Completed)
        .await;
    // THEN the run succeeded, saying the delete failed, and the first backup is `deleting`
    // (part of it may be gone), never `available` again
    let item = w.history(&item.id).await;
    assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
    assert!(
        item.details.contains("RequestLimitExceeded"),
        "{}",
        item.details
    );
    assert!(item.pruned_backup_ids.is_empty());
    assert_eq!(w.status(&first).await, BackupStatus::Deleting);
    // WHEN the provider recovers THEN the sweep finishes the delete
    w.provider.fail_deletes.store(false, Ordering::SeqCst);
    let report = w.engine.sweep().await.unwrap();
    assert_eq!(report.deletes_finished, vec![first.clone()]);
    assert_eq!(w.status(&first).await, BackupStatus::Deleted);
}

#[tokio::test]
async fn a_run_prunes_at_most_its_share_and_leaves_the_rest_for_the_next() {
    // GIVEN a job keeping one backup that has 30 (its count was lowered)
    let w = World::new(1).await;
    let job = w.job(1).await;
    for n in 0..30 {
        let backup = backup_engine::BackupEntry {
            size_bytes: None,
            verification: None,
            id: format!("b{n:02}"),
            scope: w.scope.clone(),
            job_id: Some(job.clone()),
            cluster_id: "orders".into(),
            cluster_description: "Orders".into(),
            provider: "directory".into(),
            description: format!("orders #{n}"),
            created: at(n),
            status: BackupStatus::Available,
            index: n as u64 + 1,
            location: Some("snapshots".into()),
            error_code: None,
            details: None,
        };
        assert!(w.store.insert_backup(&backup).await.unwrap());
    }
    // WHEN a run succeeds THEN it prunes the 25 oldest and says the rest wait
    w.clock.set(at(120));
    let item = w.run(&job, 2).await;
    let all = w.store.list_job_backups(&job).await.unwrap();
    let made = all.iter().find(|b| b.status == BackupStatus::Creating);
    let backup = made.expect("the run's backup").id.clone();
    w.notify(&format!("snap-{backup}-0"), Notice::Completed)
        .await;
    let item = w.history(&item.id).await;
    assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
    assert_eq!(
        item.pruned_backup_ids.len(),
        backup_engine::run::MAX_PRUNED_PER_RUN
    );
    assert_eq!(item.pruned_backup_ids[0], "b00", "oldest first");
    assert!(
        item.details.contains("5 more backup(s)"),
        "{}",
        item.details
    );
    assert_eq!(w.status("b29").await, BackupStatus::Available);
}
