//! Restores that settle later (SPEC §14, §16), decided by the engine: a restore parked with
//! its `restore` lock extended, the notification that settles it (once), a failed piece that
//! deletes what the restore made, and the sweeper that settles what no notification reached
//! and fails what is past its deadline. The store is the in-memory one (it passes the same
//! contract as DynamoDB); the provider is scripted: the EBS side runs the same steps against
//! moto in `backup-lambdas`' tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backup_core::api::{ClusterStatus, ClusterTarget};
use backup_engine::clock::ManualClock;
use backup_engine::memory::MemoryStore;
use backup_engine::ports::{
    BackupProvider, ClusterLock, ClusterStore, PendingBackups, TriggerScheduler,
};
use backup_engine::requests::directory_cluster;
use backup_engine::writes::OneByOne;
use backup_engine::{
    Acquisition, BackupHandle, BackupRequest, Creation, Engine, EngineConfig, JobRecord,
    LockHolder, Notice, Ports, ProviderError, ProviderStatus, RestoreHandle, RestoreSettled,
    RestoreStatus, Scope, TriggerError, OPERATION_RESTORE,
};
use chrono::{DateTime, Utc};

const TIMEOUT: Duration = Duration::from_secs(24 * 3600);

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap()
}

/// EBS-like restores: `restore_status` answers what the test set; `discard_restore` records
/// the cluster whose volumes it deleted, or fails while `fail_discard` is set.
#[derive(Default)]
struct Volumes {
    status: Mutex<Option<RestoreStatus>>,
    discarded: Mutex<Vec<String>>,
    fail_discard: AtomicBool,
}

#[async_trait]
impl BackupProvider for Volumes {
    fn kind(&self) -> &'static str {
        "directory"
    }

    fn planned_location(&self, _: &BackupRequest) -> String {
        String::new()
    }

    async fn create(&self, _: &BackupRequest) -> Result<Creation, ProviderError> {
        Err(ProviderError::new("not under test"))
    }

    async fn status(&self, _: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        Err(ProviderError::new("not under test"))
    }

    async fn delete(&self, _: &BackupHandle) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn restore_status(&self, _: &RestoreHandle) -> Result<RestoreStatus, ProviderError> {
        Ok(self
            .status
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(RestoreStatus::Creating))
    }

    async fn discard_restore(&self, handle: &RestoreHandle) -> Result<(), ProviderError> {
        if self.fail_discard.load(Ordering::SeqCst) {
            return Err(ProviderError::new(
                "EC2 DeleteVolume failed: RequestLimitExceeded",
            ));
        }
        self.discarded
            .lock()
            .unwrap()
            .push(handle.cluster_id.clone());
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

struct World {
    engine: Engine,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    provider: Arc<Volumes>,
}

fn volumes_of(cluster: &str) -> Vec<String> {
    vec![format!("vol-{cluster}-a"), format!("vol-{cluster}-b")]
}

fn restored(cluster: &str) -> ClusterTarget {
    ClusterTarget::AwsEbs {
        volume_ids: volumes_of(cluster),
        instance_tag: None,
    }
}

impl World {
    fn new() -> World {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(at(0)));
        let provider = Arc::new(Volumes::default());
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
            dispatch: None,
        };
        let config = EngineConfig {
            settle_later: Some(TIMEOUT),
            ..EngineConfig::with_lease(Duration::from_secs(60))
        };
        World {
            engine: Engine::new(ports, config),
            store,
            clock,
            provider,
        }
    }

    /// A new cluster `creating`, its `restore` lock taken, its two volumes being made and
    /// the restore parked, as a restore on the deployed API leaves it.
    async fn restoring(&self, cluster: &str) {
        let scope = Scope::new("default", "default").unwrap();
        self.engine
            .register_cluster(&scope, &directory_cluster(cluster, "Orders", "/srv/o"))
            .await
            .unwrap();
        assert!(self
            .store
            .update_cluster_state(cluster, ClusterStatus::Creating, None, None)
            .await
            .unwrap());
        let holder = LockHolder {
            operation: OPERATION_RESTORE.to_owned(),
            job_id: None,
            run_id: Some("b1".to_owned()),
        };
        let Acquisition::Acquired(lock) = self
            .store
            .try_acquire(
                cluster,
                &holder,
                self.clock_now(),
                chrono::Duration::seconds(60),
            )
            .await
            .unwrap()
        else {
            panic!("a new cluster is free")
        };
        let handle = RestoreHandle {
            cluster_id: cluster.to_owned(),
            location: "volumes".to_owned(),
            keys: volumes_of(cluster),
        };
        self.engine
            .park_restore(handle, "b1", "directory", lock.fencing_token)
            .await
            .unwrap();
    }

    fn clock_now(&self) -> DateTime<Utc> {
        self.engine.now()
    }

    fn answer(&self, status: RestoreStatus) {
        *self.provider.status.lock().unwrap() = Some(status);
    }

    async fn cluster(&self, id: &str) -> (ClusterStatus, Option<String>, ClusterTarget) {
        let c = self.store.get_cluster(id).await.unwrap().unwrap();
        (c.status, c.details, c.target)
    }

    async fn held(&self, cluster: &str) -> bool {
        self.store
            .current(cluster, self.clock_now())
            .await
            .unwrap()
            .is_some()
    }
}

#[tokio::test]
async fn a_parked_restore_holds_its_cluster_until_its_notices_settle_it_once() {
    let w = World::new();
    w.restoring("orders-2").await;
    // THEN the restore lock lasts until the deadline, not the short lease
    w.clock.advance(chrono::Duration::hours(23));
    assert!(w.held("orders-2").await);
    // WHEN a notice names a volume no restore waits on THEN nothing happens
    let unknown = w
        .engine
        .settle_restore_notice("vol-other", Notice::Completed)
        .await
        .unwrap();
    assert_eq!(unknown, RestoreSettled::Unknown);
    // WHEN the first volume is made while the second is not THEN it is not settled yet
    let first = w
        .engine
        .settle_restore_notice("vol-orders-2-a", Notice::Completed)
        .await
        .unwrap();
    assert_eq!(
        first,
        RestoreSettled::NotYet {
            cluster_id: "orders-2".into()
        }
    );
    assert_eq!(w.cluster("orders-2").await.0, ClusterStatus::Creating);
    // WHEN the second is made THEN the cluster is available with the new volumes, and free
    w.answer(RestoreStatus::Available(restored("orders-2")));
    let second = w
        .engine
        .settle_restore_notice("vol-orders-2-b", Notice::Completed)
        .await
        .unwrap();
    assert_eq!(
        second,
        RestoreSettled::Ended {
            cluster_id: "orders-2".into(),
            available: true
        }
    );
    assert_eq!(
        w.cluster("orders-2").await,
        (ClusterStatus::Available, None, restored("orders-2"))
    );
    assert!(!w.held("orders-2").await);
    // WHEN the same notice arrives again THEN nothing more happens
    let again = w
        .engine
        .settle_restore_notice("vol-orders-2-b", Notice::Completed)
        .await
        .unwrap();
    assert_eq!(again, RestoreSettled::Unknown);
    assert!(w.provider.discarded.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_volume_deletes_what_the_restore_made_and_fails_the_cluster_saying_why() {
    let w = World::new();
    w.restoring("orders-2").await;
    // GIVEN volumes that cannot be deleted yet
    w.provider.fail_discard.store(true, Ordering::SeqCst);
    // WHEN a volume's failure is notified THEN the error is answered (the notification is
    // retried) and the restore stays pending, its cluster creating and held
    let failed = Notice::Failed("EC2 reported the volume failed: the KMS key is disabled".into());
    let err = w
        .engine
        .settle_restore_notice("vol-orders-2-a", failed.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("DeleteVolume"), "{err}");
    assert_eq!(w.cluster("orders-2").await.0, ClusterStatus::Creating);
    assert!(w.held("orders-2").await);
    assert!(w
        .store
        .find_pending_restore("vol-orders-2-a")
        .await
        .unwrap()
        .is_some());
    // WHEN it is notified again once the volumes can be deleted THEN they are, and the
    // cluster is failed with the reason, and free
    w.provider.fail_discard.store(false, Ordering::SeqCst);
    let settled = w
        .engine
        .settle_restore_notice("vol-orders-2-a", failed)
        .await
        .unwrap();
    assert_eq!(
        settled,
        RestoreSettled::Ended {
            cluster_id: "orders-2".into(),
            available: false
        }
    );
    let (status, details, _) = w.cluster("orders-2").await;
    assert_eq!(status, ClusterStatus::Failed);
    let details = details.unwrap_or_default();
    assert!(details.contains("KMS key is disabled"), "{details}");
    assert!(details.contains("backup b1"), "{details}");
    assert_eq!(*w.provider.discarded.lock().unwrap(), ["orders-2"]);
    assert!(!w.held("orders-2").await);
}

#[tokio::test]
async fn the_sweep_settles_a_finished_restore_and_fails_one_past_its_deadline() {
    let w = World::new();
    // GIVEN a restore whose volumes were made without a notification
    w.restoring("orders-2").await;
    w.answer(RestoreStatus::Available(restored("orders-2")));
    // WHEN the sweep runs THEN it is settled
    let report = w.engine.sweep().await.unwrap();
    assert_eq!(report.restores_settled, ["orders-2"]);
    assert_eq!(w.cluster("orders-2").await.0, ClusterStatus::Available);
    // GIVEN a restore whose volumes are still being made at its deadline
    w.answer(RestoreStatus::Creating);
    w.restoring("orders-3").await;
    let report = w.engine.sweep().await.unwrap();
    assert!(report.restores_settled.is_empty() && report.restores_timed_out.is_empty());
    w.clock.advance(chrono::Duration::hours(24));
    // WHEN the sweep runs THEN its volumes are deleted, the cluster failed saying why, and
    // free; the next sweep finds nothing
    let report = w.engine.sweep().await.unwrap();
    assert_eq!(report.restores_timed_out, ["orders-3"]);
    let (status, details, _) = w.cluster("orders-3").await;
    assert_eq!(status, ClusterStatus::Failed);
    assert!(
        details.unwrap_or_default().contains("SNAPSHOT_TIMEOUT"),
        "the reason names the limit"
    );
    assert_eq!(*w.provider.discarded.lock().unwrap(), ["orders-3"]);
    assert!(!w.held("orders-3").await);
    let report = w.engine.sweep().await.unwrap();
    assert!(report.restores_timed_out.is_empty() && report.restores_settled.is_empty());
}

#[tokio::test]
async fn a_restore_of_a_cluster_deleted_meanwhile_deletes_what_it_made_when_it_settles() {
    let w = World::new();
    w.restoring("orders-2").await;
    // GIVEN the new cluster deleted while its volumes are made
    assert!(w.store.delete_cluster("orders-2").await.unwrap());
    // WHEN its volumes are made THEN they are deleted, and nothing is recorded again
    w.answer(RestoreStatus::Available(restored("orders-2")));
    let settled = w
        .engine
        .settle_restore_notice("vol-orders-2-a", Notice::Completed)
        .await
        .unwrap();
    assert!(
        matches!(settled, RestoreSettled::Ended { .. }),
        "{settled:?}"
    );
    assert_eq!(*w.provider.discarded.lock().unwrap(), ["orders-2"]);
    assert_eq!(w.store.get_cluster("orders-2").await.unwrap(), None);
    assert!(!w.held("orders-2").await);
}
