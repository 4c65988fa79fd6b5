//! The contract every store and lock adapter passes (feature `contract`).
//!
//! Each check is an `async fn` over a fresh [`Adapters`]; [`contract_tests!`](crate::contract_tests) turns them into
//! one `#[tokio::test]` each in an adapter's test crate, given an async factory:
//!
//! ```ignore
//! backup_engine::contract_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
//!     Adapters {
//!         store: store.clone(),
//!         lock: store.clone(),
//!         writes: Arc::new(OneByOne::over(store)),
//!         guard: Box::new(dir),
//!     }
//! });
//! ```
//!
//! The checks panic on failure, as tests do; this module is test support and is compiled
//! only with the `contract` feature. Instants are passed in (no clock is read), whole
//! milliseconds, as the engine gives them.

use std::any::Any;
use std::sync::Arc;

use backup_core::api::{ClusterTarget, HistoryItem, JobStatus, RunFailure, RunStatus, Trigger};
use backup_core::retention::BackupStatus;
use chrono::{DateTime, Duration, Utc};

use backup_core::template::{RenderContext, Template};

use crate::model::{
    Acquisition, Applied, BackupDraft, BackupEnd, BackupEntry, BackupFilter, ClusterRecord, Finish,
    Finished, HistoryEntry, JobRecord, LockHolder, Release, RunStart, Scope, StartBackup, Started,
};
use crate::ports::{BackupWrites, ClusterLock, Store};

/// The adapters under test, fresh and empty, and whatever keeps them alive (a temp dir).
pub struct Adapters {
    pub store: Arc<dyn Store>,
    pub lock: Arc<dyn ClusterLock>,
    /// The adapter's run writes: its batched form, or
    /// [`OneByOne`](crate::writes::OneByOne) over `store` and `lock`.
    pub writes: Arc<dyn BackupWrites>,
    pub guard: Box<dyn Any + Send>,
}

impl Adapters {
    fn writes(&self) -> Arc<dyn BackupWrites> {
        self.writes.clone()
    }
}

/// Expands to one `#[tokio::test]` per contract check, each on a fresh `Adapters` made by
/// `$factory` (an expression evaluating to a future of [`Adapters`]).
#[macro_export]
macro_rules! contract_tests {
    ($factory:expr) => {
        $crate::contract_tests!(@each $factory;
            lock_is_exclusive_and_names_its_holder,
            lock_expires_at_its_absolute_expiry,
            fencing_tokens_only_grow,
            release_is_conditional_on_the_holder,
            renew_extends_only_the_current_holder,
            concurrent_acquisitions_have_one_winner,
            locks_of_different_clusters_are_independent,
            jobs_insert_conditionally_and_round_trip,
            clusters_insert_conditionally_and_round_trip,
            backups_round_trip_filter_and_order_newest_first,
            backup_status_updates_are_conditional,
            backup_failures_and_notes_are_stored_with_the_backup,
            deleting_backups_are_found_at_start_up,
            run_records_are_idempotent,
            concurrent_deliveries_start_one_run,
            history_lists_newest_first_by_scope_and_job,
            sequences_start_at_one_and_never_repeat,
            start_takes_the_lock_and_records_a_numbered_backup,
            start_with_stale_versions_still_decides_right,
            concurrent_starts_have_one_winner,
            finish_applies_every_part,
            finish_after_a_lost_lock_records_and_leaves_the_new_holder
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let adapters = $factory.await;
                $crate::contract::$name(&adapters).await;
            }
        )*
    };
}

/// A fixed instant, to the millisecond, `minutes` after 2026-11-27T05:00:00Z.
pub fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap_or_default()
}

fn scope(org: &str) -> Scope {
    Scope {
        org: org.to_owned(),
        project: "default".to_owned(),
    }
}

fn holder(operation: &str, job: Option<&str>, run: Option<&str>) -> LockHolder {
    LockHolder {
        operation: operation.to_owned(),
        job_id: job.map(str::to_owned),
        run_id: run.map(str::to_owned),
    }
}

fn acquired(a: Acquisition) -> backup_core::api::ClusterLockInfo {
    match a {
        Acquisition::Acquired(info) => info,
        Acquisition::Held(info) => panic!("expected to acquire the lock, but it is held: {info:?}"),
    }
}

fn held(a: Acquisition) -> backup_core::api::ClusterLockInfo {
    match a {
        Acquisition::Held(info) => info,
        Acquisition::Acquired(info) => panic!("expected the lock to be held, but got it: {info:?}"),
    }
}

pub async fn lock_is_exclusive_and_names_its_holder(a: &Adapters) {
    let lease = Duration::seconds(60);
    // GIVEN run r1 of job j1 holds cluster c1
    let first = acquired(
        a.lock
            .try_acquire(
                "c1",
                &holder("scheduled-backup", Some("j1"), Some("r1")),
                at(0),
                lease,
            )
            .await
            .unwrap(),
    );
    assert_eq!(first.operation, "scheduled-backup");
    assert_eq!(first.since, at(0));
    assert_eq!(first.expires, at(1));
    // WHEN someone else tries, before the lease ends
    let other = a
        .lock
        .try_acquire(
            "c1",
            &holder("expand-disk", None, None),
            at(0) + Duration::seconds(30),
            lease,
        )
        .await
        .unwrap();
    // THEN they fail at once, told who holds it and since when
    let h = held(other);
    assert_eq!(h.operation, "scheduled-backup");
    assert_eq!(h.job_id.as_deref(), Some("j1"));
    assert_eq!(h.run_id.as_deref(), Some("r1"));
    assert_eq!(h.since, at(0));
    assert_eq!(h.fencing_token, first.fencing_token);
    // AND the holder is what `current` reports
    let current = a.lock.current("c1", at(0)).await.unwrap().unwrap();
    assert_eq!(current, first);
}

pub async fn lock_expires_at_its_absolute_expiry(a: &Adapters) {
    let lease = Duration::seconds(60);
    let first = acquired(
        a.lock
            .try_acquire("c1", &holder("expand-disk", None, None), at(0), lease)
            .await
            .unwrap(),
    );
    // GIVEN a holder that crashed: one second before expiry the lock is still held
    held(
        a.lock
            .try_acquire(
                "c1",
                &holder("manual-backup", None, Some("b1")),
                at(1) - Duration::seconds(1),
                lease,
            )
            .await
            .unwrap(),
    );
    // WHEN its lease has ended THEN `current` reports no holder and the next caller gets it
    assert_eq!(
        a.lock
            .current("c1", at(1) + Duration::seconds(1))
            .await
            .unwrap(),
        None
    );
    let second = acquired(
        a.lock
            .try_acquire(
                "c1",
                &holder("manual-backup", None, Some("b1")),
                at(1) + Duration::seconds(1),
                lease,
            )
            .await
            .unwrap(),
    );
    assert!(second.fencing_token > first.fencing_token);
    assert_eq!(second.operation, "manual-backup");
    assert_eq!(second.since, at(1) + Duration::seconds(1));
}

pub async fn fencing_tokens_only_grow(a: &Adapters) {
    let lease = Duration::seconds(60);
    let mut last = 0;
    for i in 0..5 {
        let info = acquired(
            a.lock
                .try_acquire("c1", &holder("expand-disk", None, None), at(i * 10), lease)
                .await
                .unwrap(),
        );
        assert!(
            info.fencing_token > last,
            "token {} after {last}",
            info.fencing_token
        );
        last = info.fencing_token;
        // Alternate between a clean release and an abandoned lease.
        if i % 2 == 0 {
            assert!(a.lock.release("c1", info.fencing_token).await.unwrap());
        }
    }
}

pub async fn release_is_conditional_on_the_holder(a: &Adapters) {
    let lease = Duration::seconds(60);
    let info = acquired(
        a.lock
            .try_acquire("c1", &holder("expand-disk", None, None), at(0), lease)
            .await
            .unwrap(),
    );
    // WHEN a stale token releases THEN nothing changes
    assert!(!a.lock.release("c1", info.fencing_token + 1).await.unwrap());
    assert!(!a
        .lock
        .release("c1", info.fencing_token.saturating_sub(1))
        .await
        .unwrap());
    assert_eq!(
        a.lock.current("c1", at(0)).await.unwrap(),
        Some(info.clone())
    );
    // WHEN the holder releases THEN the lock is free, and a second release changes nothing
    assert!(a.lock.release("c1", info.fencing_token).await.unwrap());
    assert_eq!(a.lock.current("c1", at(0)).await.unwrap(), None);
    assert!(!a.lock.release("c1", info.fencing_token).await.unwrap());
    // AND releasing an unknown cluster's lock changes nothing
    assert!(!a.lock.release("never-locked", 1).await.unwrap());
    // AND a stale holder cannot release its successor's lock
    let next = acquired(
        a.lock
            .try_acquire(
                "c1",
                &holder("manual-backup", None, Some("b")),
                at(0),
                lease,
            )
            .await
            .unwrap(),
    );
    assert!(!a.lock.release("c1", info.fencing_token).await.unwrap());
    assert_eq!(a.lock.current("c1", at(0)).await.unwrap(), Some(next));
}

pub async fn renew_extends_only_the_current_holder(a: &Adapters) {
    let lease = Duration::seconds(60);
    let first = acquired(
        a.lock
            .try_acquire(
                "c1",
                &holder("scheduled-backup", Some("j"), Some("r")),
                at(0),
                lease,
            )
            .await
            .unwrap(),
    );
    // WHEN the holder renews before expiry THEN the expiry moves, nothing else
    let renewed = a
        .lock
        .renew(
            "c1",
            first.fencing_token,
            at(0) + Duration::seconds(40),
            lease,
        )
        .await
        .unwrap()
        .expect("the holder renews");
    assert_eq!(renewed.expires, at(0) + Duration::seconds(100));
    assert_eq!(renewed.since, first.since);
    assert_eq!(renewed.fencing_token, first.fencing_token);
    held(
        a.lock
            .try_acquire(
                "c1",
                &holder("expand-disk", None, None),
                at(1) + Duration::seconds(30),
                lease,
            )
            .await
            .unwrap(),
    );
    // WHEN its lease expires and someone else takes the lock
    let second = acquired(
        a.lock
            .try_acquire("c1", &holder("expand-disk", None, None), at(2), lease)
            .await
            .unwrap(),
    );
    // THEN the old holder's renewal fails and the new holder keeps the lock
    assert_eq!(
        a.lock
            .renew("c1", first.fencing_token, at(2), lease)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        a.lock.current("c1", at(2)).await.unwrap(),
        Some(second.clone())
    );
    // AND a renewal after one's own expiry (nobody took it) fails too: the lease is over
    assert!(a.lock.release("c1", second.fencing_token).await.unwrap());
    let third = acquired(
        a.lock
            .try_acquire("c1", &holder("expand-disk", None, None), at(10), lease)
            .await
            .unwrap(),
    );
    assert_eq!(
        a.lock
            .renew("c1", third.fencing_token, at(12), lease)
            .await
            .unwrap(),
        None
    );
}

pub async fn concurrent_acquisitions_have_one_winner(a: &Adapters) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let lock = a.lock.clone();
        tasks.push(tokio::spawn(async move {
            let run = format!("r{i}");
            lock.try_acquire(
                "c1",
                &holder("scheduled-backup", Some("j"), Some(&run)),
                at(0),
                Duration::seconds(60),
            )
            .await
            .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Acquisition::Acquired(info) = t.await.unwrap() {
            winners.push(info);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 20 concurrent callers gets the lock"
    );
    let current = a.lock.current("c1", at(0)).await.unwrap().unwrap();
    assert_eq!(current.run_id, winners[0].run_id);
}

pub async fn locks_of_different_clusters_are_independent(a: &Adapters) {
    let lease = Duration::seconds(60);
    acquired(
        a.lock
            .try_acquire("c1", &holder("expand-disk", None, None), at(0), lease)
            .await
            .unwrap(),
    );
    let other = acquired(
        a.lock
            .try_acquire("c2", &holder("expand-disk", None, None), at(0), lease)
            .await
            .unwrap(),
    );
    assert!(a.lock.release("c2", other.fencing_token).await.unwrap());
    assert!(a.lock.current("c1", at(0)).await.unwrap().is_some());
}

pub fn job(id: &str, org: &str, cluster: &str, created: DateTime<Utc>) -> JobRecord {
    JobRecord {
        id: id.to_owned(),
        scope: scope(org),
        description: format!("Job {id} — nightly ☾"),
        schedule: "0 * * * *".to_owned(),
        status: JobStatus::Active,
        cluster_id: cluster.to_owned(),
        template: "{cluster} {datetime:rfc3339}".to_owned(),
        max_backup_count: 2,
        created,
    }
}

pub async fn jobs_insert_conditionally_and_round_trip(a: &Adapters) {
    let s = &a.store;
    let j1 = job("j1", "o1", "c1", at(0));
    assert!(s.insert_job(&j1).await.unwrap());
    // WHEN the same id is inserted again THEN nothing changes
    let mut clash = job("j1", "o2", "c9", at(5));
    clash.description = "other".into();
    assert!(!s.insert_job(&clash).await.unwrap());
    assert_eq!(s.get_job("j1").await.unwrap(), Some(j1.clone()));
    assert_eq!(s.get_job("nope").await.unwrap(), None);

    let j2 = job("j2", "o1", "c1", at(1));
    let j3 = job("j3", "o2", "c1", at(2));
    assert!(s.insert_job(&j2).await.unwrap());
    assert!(s.insert_job(&j3).await.unwrap());
    // THEN a scope lists only its own jobs, oldest first
    assert_eq!(
        s.list_jobs(&scope("o1")).await.unwrap(),
        vec![j1.clone(), j2.clone()]
    );
    assert_eq!(s.list_jobs(&scope("o2")).await.unwrap(), vec![j3.clone()]);
    // WHEN a job is deleted THEN it is marked, once, and leaves the active list
    assert!(s.mark_job_deleted("j2").await.unwrap());
    assert!(!s.mark_job_deleted("j2").await.unwrap());
    assert!(!s.mark_job_deleted("nope").await.unwrap());
    let j2_deleted = s.get_job("j2").await.unwrap().unwrap();
    assert_eq!(j2_deleted.status, JobStatus::Deleted);
    let mut active: Vec<String> = s
        .list_active_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    active.sort();
    assert_eq!(active, ["j1", "j3"]);
    // AND removing a job (undoing a creation) forgets it
    s.remove_job("j3").await.unwrap();
    assert_eq!(s.get_job("j3").await.unwrap(), None);
}

pub fn cluster(id: &str, org: &str) -> ClusterRecord {
    ClusterRecord {
        id: id.to_owned(),
        scope: scope(org),
        description: format!("Cluster {id}"),
        region: "local".to_owned(),
        target: ClusterTarget::Directory {
            path: format!("/var/lib/{id}"),
        },
        created: at(0),
    }
}

pub async fn clusters_insert_conditionally_and_round_trip(a: &Adapters) {
    let s = &a.store;
    let c2 = cluster("c2", "o1");
    let c1 = cluster("c1", "o1");
    let mut ebs = cluster("c3", "o2");
    ebs.region = "eu-west-1".into();
    ebs.target = ClusterTarget::AwsEbs {
        volume_ids: vec!["vol-0abc123def4567890".into()],
        instance_tag: None,
    };
    assert!(s.insert_cluster(&c2).await.unwrap());
    assert!(s.insert_cluster(&c1).await.unwrap());
    assert!(s.insert_cluster(&ebs).await.unwrap());
    // WHEN an id is registered again, even in another scope THEN nothing changes
    assert!(!s.insert_cluster(&cluster("c1", "o2")).await.unwrap());
    assert_eq!(s.get_cluster("c1").await.unwrap(), Some(c1.clone()));
    assert_eq!(s.get_cluster("c3").await.unwrap(), Some(ebs.clone()));
    assert_eq!(s.list_clusters(&scope("o1")).await.unwrap(), vec![c1, c2]);
    assert!(s.delete_cluster("c3").await.unwrap());
    assert!(!s.delete_cluster("c3").await.unwrap());
    assert_eq!(s.get_cluster("c3").await.unwrap(), None);
}

pub fn backup(
    id: &str,
    org: &str,
    job: Option<&str>,
    cluster: &str,
    created: DateTime<Utc>,
) -> BackupEntry {
    BackupEntry {
        id: id.to_owned(),
        scope: scope(org),
        job_id: job.map(str::to_owned),
        cluster_id: cluster.to_owned(),
        cluster_description: format!("Cluster {cluster}"),
        provider: "directory".to_owned(),
        description: format!("Backup {id} «{cluster}»"),
        created,
        status: BackupStatus::Creating,
        index: 7,
        location: None,
        error_code: None,
        details: None,
    }
}

/// SPEC §13: a manual backup has no history item, so its record carries why it failed.
pub async fn backup_failures_and_notes_are_stored_with_the_backup(a: &Adapters) {
    let s = &a.store;
    // GIVEN a backup inserted with a note
    let mut b = backup("b1", "o1", None, "c1", at(0));
    b.details = Some("1 file changed while it was copied: a.".into());
    assert!(s.insert_backup(&b).await.unwrap());
    assert_eq!(s.get_backup("b1").await.unwrap(), Some(b.clone()));
    // WHEN its failure is recorded
    s.set_backup_details(
        "b1",
        Some(RunFailure::InsufficientSpace),
        Some("It needs 9 GB; 1 GB is free."),
    )
    .await
    .unwrap();
    // THEN both read back, and a later call with only one part keeps the other
    s.set_backup_details("b1", Some(RunFailure::ProviderError), None)
        .await
        .unwrap();
    let stored = s.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.error_code, Some(RunFailure::ProviderError));
    assert_eq!(
        stored.details.as_deref(),
        Some("It needs 9 GB; 1 GB is free.")
    );
    // AND listing shows them too
    let listed = s
        .list_backups(&scope("o1"), &BackupFilter::default())
        .await
        .unwrap();
    assert_eq!(listed, vec![stored]);
}

/// SPEC §13: start-up finishes the deletes a stopped process left `deleting`.
pub async fn deleting_backups_are_found_at_start_up(a: &Adapters) {
    let s = &a.store;
    for (id, minute) in [("b1", 0), ("b2", 1), ("b3", 2)] {
        let mut b = backup(id, "o1", Some("j1"), "c1", at(minute));
        b.status = BackupStatus::Available;
        assert!(s.insert_backup(&b).await.unwrap());
    }
    for id in ["b1", "b3"] {
        assert!(s
            .update_backup_status(id, BackupStatus::Available, BackupStatus::Deleting)
            .await
            .unwrap());
    }
    let mut found: Vec<String> = s
        .list_backups_in_status(BackupStatus::Deleting)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    found.sort();
    assert_eq!(found, ["b1", "b3"]);
}

pub async fn backups_round_trip_filter_and_order_newest_first(a: &Adapters) {
    let s = &a.store;
    let b1 = backup("b1", "o1", Some("j1"), "c1", at(0));
    let b2 = backup("b2", "o1", Some("j2"), "c1", at(10));
    let b3 = backup("b3", "o1", None, "c2", at(20));
    let b4 = backup("b4", "o2", Some("j3"), "c1", at(30));
    // Same instant as b2: ties order by id.
    let b5 = backup("b5", "o1", Some("j1"), "c2", at(10));
    for b in [&b1, &b2, &b3, &b4, &b5] {
        assert!(s.insert_backup(b).await.unwrap());
    }
    assert!(!s.insert_backup(&b1).await.unwrap());
    assert_eq!(s.get_backup("b3").await.unwrap(), Some(b3.clone()));
    let ids = |v: Vec<BackupEntry>| v.into_iter().map(|b| b.id).collect::<Vec<_>>();
    let all = BackupFilter::default();
    assert_eq!(
        ids(s.list_backups(&scope("o1"), &all).await.unwrap()),
        ["b3", "b5", "b2", "b1"]
    );
    let by_job = BackupFilter {
        job_id: Some("j1".into()),
        cluster_id: None,
    };
    assert_eq!(
        ids(s.list_backups(&scope("o1"), &by_job).await.unwrap()),
        ["b5", "b1"]
    );
    let by_cluster = BackupFilter {
        job_id: None,
        cluster_id: Some("c1".into()),
    };
    assert_eq!(
        ids(s.list_backups(&scope("o1"), &by_cluster).await.unwrap()),
        ["b2", "b1"]
    );
    let both = BackupFilter {
        job_id: Some("j1".into()),
        cluster_id: Some("c2".into()),
    };
    assert_eq!(
        ids(s.list_backups(&scope("o1"), &both).await.unwrap()),
        ["b5"]
    );
    let mut job_backups = ids(s.list_job_backups("j1").await.unwrap());
    job_backups.sort();
    assert_eq!(job_backups, ["b1", "b5"]);
    // WHEN the provider reports where it put a backup THEN the record keeps it
    s.set_backup_location("b1", "/data/backups/b1")
        .await
        .unwrap();
    assert_eq!(
        s.get_backup("b1")
            .await
            .unwrap()
            .unwrap()
            .location
            .as_deref(),
        Some("/data/backups/b1")
    );
    let mut creating = ids(s
        .list_backups_in_status(BackupStatus::Creating)
        .await
        .unwrap());
    creating.sort();
    assert_eq!(creating, ["b1", "b2", "b3", "b4", "b5"]);
}

pub async fn backup_status_updates_are_conditional(a: &Adapters) {
    use BackupStatus::*;
    let s = &a.store;
    assert!(s
        .insert_backup(&backup("b1", "o1", Some("j1"), "c1", at(0)))
        .await
        .unwrap());
    // WHEN the expected status is wrong THEN nothing changes
    assert!(!s
        .update_backup_status("b1", Available, Deleting)
        .await
        .unwrap());
    assert_eq!(s.get_backup("b1").await.unwrap().unwrap().status, Creating);
    // WHEN it is right THEN the status moves
    assert!(s
        .update_backup_status("b1", Creating, Available)
        .await
        .unwrap());
    assert!(s
        .update_backup_status("b1", Available, Deleting)
        .await
        .unwrap());
    assert!(!s
        .update_backup_status("b1", Available, Deleting)
        .await
        .unwrap());
    assert!(s
        .update_backup_status("b1", Deleting, Deleted)
        .await
        .unwrap());
    assert_eq!(s.get_backup("b1").await.unwrap().unwrap().status, Deleted);
    assert!(!s
        .update_backup_status("nope", Creating, Available)
        .await
        .unwrap());
    assert_eq!(s.list_backups_in_status(Deleted).await.unwrap().len(), 1);
}

pub fn history(
    id: &str,
    org: &str,
    job: &str,
    scheduled: DateTime<Utc>,
    start: DateTime<Utc>,
) -> HistoryEntry {
    HistoryEntry {
        scope: scope(org),
        cluster_id: "c1".to_owned(),
        item: HistoryItem {
            id: id.to_owned(),
            job_id: job.to_owned(),
            status: RunStatus::Running,
            details: "Backing up cluster c1.".to_owned(),
            linked_resource: "c1".to_owned(),
            start_time: start,
            end_time: None,
            scheduled_time: scheduled,
            trigger: Trigger::Schedule,
            error_code: None,
            pruned_backup_ids: Vec::new(),
        },
    }
}

pub async fn run_records_are_idempotent(a: &Adapters) {
    let s = &a.store;
    let first = history("h1", "o1", "j1", at(60), at(60));
    assert_eq!(s.begin_run(&first).await.unwrap(), RunStart::Started);
    // WHEN the same firing is delivered again THEN the first run is returned, nothing added
    let again = history("h2", "o1", "j1", at(60), at(61));
    assert_eq!(
        s.begin_run(&again).await.unwrap(),
        RunStart::AlreadyRan(first.item.clone())
    );
    assert_eq!(s.get_history("h2").await.unwrap(), None);
    // AND the returned item follows the first run's progress
    let mut done = first.item.clone();
    done.status = RunStatus::Succeeded;
    done.end_time = Some(at(62));
    done.error_code = None;
    done.linked_resource = "b1".into();
    done.pruned_backup_ids = vec!["b0".into()];
    done.details = "Backed up.".into();
    s.update_history(&done).await.unwrap();
    assert_eq!(
        s.begin_run(&again).await.unwrap(),
        RunStart::AlreadyRan(done.clone())
    );
    assert_eq!(s.get_history("h1").await.unwrap().unwrap().item, done);
    // WHEN another instant or another job THEN it is a new run
    assert_eq!(
        s.begin_run(&history("h3", "o1", "j1", at(120), at(120)))
            .await
            .unwrap(),
        RunStart::Started
    );
    assert_eq!(
        s.begin_run(&history("h4", "o1", "j2", at(60), at(60)))
            .await
            .unwrap(),
        RunStart::Started
    );
    // AND instants differing by a millisecond are different runs
    let ms = at(120) + Duration::milliseconds(1);
    assert_eq!(
        s.begin_run(&history("h5", "o1", "j1", ms, ms))
            .await
            .unwrap(),
        RunStart::Started
    );
}

pub async fn concurrent_deliveries_start_one_run(a: &Adapters) {
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = a.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .begin_run(&history(&format!("h{i}"), "o1", "j1", at(60), at(60)))
                .await
                .unwrap()
        }));
    }
    let mut started = 0;
    for t in tasks {
        if t.await.unwrap() == RunStart::Started {
            started += 1;
        }
    }
    assert_eq!(started, 1);
    assert_eq!(
        a.store
            .list_history(&scope("o1"), None)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn history_lists_newest_first_by_scope_and_job(a: &Adapters) {
    let s = &a.store;
    // Recorded out of order, one pair at the same start instant.
    for (id, org, job, minute) in [
        ("h2", "o1", "j1", 2),
        ("h1", "o1", "j1", 1),
        ("h4", "o1", "j2", 4),
        ("h3", "o1", "j1", 4),
        ("hx", "o2", "j9", 9),
    ] {
        assert_eq!(
            s.begin_run(&history(id, org, job, at(minute), at(minute)))
                .await
                .unwrap(),
            RunStart::Started
        );
    }
    let ids = |v: Vec<HistoryItem>| v.into_iter().map(|h| h.id).collect::<Vec<_>>();
    // THEN newest first; at the same instant the later recorded comes first
    assert_eq!(
        ids(s.list_history(&scope("o1"), None).await.unwrap()),
        ["h3", "h4", "h2", "h1"]
    );
    assert_eq!(
        ids(s.list_history(&scope("o1"), Some("j1")).await.unwrap()),
        ["h3", "h2", "h1"]
    );
    assert_eq!(
        ids(s.list_history(&scope("o2"), None).await.unwrap()),
        ["hx"]
    );
    assert!(s
        .list_history(&scope("o1"), Some("j9"))
        .await
        .unwrap()
        .is_empty());
    // AND running runs are found across scopes until they finish
    let mut finished = s.get_history("h1").await.unwrap().unwrap().item;
    finished.status = RunStatus::Failed;
    finished.error_code = Some(RunFailure::ClusterLocked);
    finished.end_time = Some(at(2));
    s.update_history(&finished).await.unwrap();
    let mut running: Vec<String> = s
        .list_running()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.item.id)
        .collect();
    running.sort();
    assert_eq!(running, ["h2", "h3", "h4", "hx"]);
    let entry = s.get_history("h1").await.unwrap().unwrap();
    assert_eq!(entry.item, finished);
    assert_eq!(entry.scope, scope("o1"));
    assert_eq!(entry.cluster_id, "c1");
}

pub async fn sequences_start_at_one_and_never_repeat(a: &Adapters) {
    let s = &a.store;
    assert_eq!(s.next_sequence("job:j1").await.unwrap(), 1);
    assert_eq!(s.next_sequence("job:j1").await.unwrap(), 2);
    assert_eq!(s.next_sequence("manual:c1").await.unwrap(), 1);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = a.store.clone();
        tasks.push(tokio::spawn(async move {
            store.next_sequence("job:j2").await.unwrap()
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=20).collect::<Vec<u64>>());
}

/// The backup `start` records, before its number: described `<cluster id> #<index>`.
fn draft(id: &str, cluster: &str, now: DateTime<Utc>) -> BackupDraft {
    let mut record = backup(id, "o1", Some("j1"), cluster, now);
    record.location = Some(format!("/backups/{id}"));
    BackupDraft {
        record,
        template: Template::parse("{cluster:id} #{index}").expect("a valid template"),
        context: RenderContext {
            cluster_id: cluster.to_owned(),
            cluster_description: format!("Cluster {cluster}"),
            cluster_provider: "directory".to_owned(),
            cluster_region: "local".to_owned(),
            index: 0,
            datetime: now,
        },
    }
}

async fn start(
    w: &dyn BackupWrites,
    cluster: &str,
    who: &LockHolder,
    backup_id: &str,
    now: DateTime<Utc>,
) -> Started {
    w.start(&StartBackup {
        cluster_id: cluster,
        holder: who,
        now,
        lease: Duration::seconds(60),
        sequence_key: "job:j1",
        backup: &draft(backup_id, cluster, now),
    })
    .await
    .unwrap()
}

fn started(s: Started) -> (backup_core::api::ClusterLockInfo, BackupEntry) {
    match s {
        Started::Acquired { lock, backup } => (lock, backup),
        Started::Held(info) => panic!("expected to start, but the lock is held: {info:?}"),
    }
}

pub async fn start_takes_the_lock_and_records_a_numbered_backup(a: &Adapters) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    // GIVEN the cluster read by prepare
    let prep = w.prepare("c1", "job:j1").await.unwrap();
    assert_eq!(prep, Some(cluster("c1", "o1")));
    assert_eq!(w.prepare("nope", "job:j1").await.unwrap(), None);
    // WHEN a run starts THEN it holds the lock and its backup is #1, `creating`
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    let (lock, b1) = started(start(w.as_ref(), "c1", &run, "b1", at(0)).await);
    assert_eq!(lock.operation, "scheduled-backup");
    assert_eq!(b1.index, 1);
    assert_eq!(b1.description, "c1 #1");
    assert_eq!(a.store.get_backup("b1").await.unwrap(), Some(b1.clone()));
    assert_eq!(
        a.lock
            .current("c1", at(0))
            .await
            .unwrap()
            .map(|l| l.fencing_token),
        Some(lock.fencing_token)
    );
    // WHEN another starts while it is held THEN it learns the holder, and writes nothing
    w.prepare("c1", "job:j1").await.unwrap();
    let other = holder("manual-backup", None, Some("b2"));
    match start(w.as_ref(), "c1", &other, "b2", at(0)).await {
        Started::Held(info) => assert_eq!(info.run_id.as_deref(), Some("r1")),
        s => panic!("expected the lock to be held, got {s:?}"),
    }
    assert_eq!(a.store.get_backup("b2").await.unwrap(), None);
    // AND no number was used: the next backup after release is #2
    assert!(a.lock.release("c1", lock.fencing_token).await.unwrap());
    w.prepare("c1", "job:j1").await.unwrap();
    let (lock3, b3) = started(start(w.as_ref(), "c1", &other, "b3", at(1)).await);
    assert_eq!(b3.index, 2);
    assert!(lock3.fencing_token > lock.fencing_token);
}

pub async fn start_with_stale_versions_still_decides_right(a: &Adapters) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    // GIVEN a run prepared (an adapter may keep the versions it read), then another took
    // and released the lock and used a number
    w.prepare("c1", "job:j1").await.unwrap();
    let op = holder("expand-disk", None, None);
    let t1 = acquired(
        a.lock
            .try_acquire("c1", &op, at(0), Duration::seconds(60))
            .await
            .unwrap(),
    );
    assert_eq!(a.store.next_sequence("job:j1").await.unwrap(), 1);
    assert!(a.lock.release("c1", t1.fencing_token).await.unwrap());
    // WHEN the run starts with what it saw THEN it still starts, with fresh numbers
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    let (lock, b) = started(start(w.as_ref(), "c1", &run, "b1", at(1)).await);
    assert!(lock.fencing_token > t1.fencing_token);
    assert_eq!(b.index, 2);
    // AND with the lock now held by someone else and a stale view THEN it is held
    let t2 = acquired(
        a.lock
            .try_acquire("c1", &op, at(5), Duration::seconds(60))
            .await
            .unwrap(),
    );
    assert!(t2.fencing_token > lock.fencing_token);
    match start(w.as_ref(), "c1", &run, "b9", at(5)).await {
        Started::Held(info) => assert_eq!(info.fencing_token, t2.fencing_token),
        s => panic!("expected the lock to be held, got {s:?}"),
    }
    assert_eq!(a.store.get_backup("b9").await.unwrap(), None);
}

pub async fn concurrent_starts_have_one_winner(a: &Adapters) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    w.prepare("c1", "job:j1").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let who = holder("scheduled-backup", Some("j1"), Some(&format!("r{i}")));
            start(w.as_ref(), "c1", &who, &format!("b{i}"), at(0)).await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Started::Acquired { .. }) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let backups = a
        .store
        .list_backups(&scope("o1"), &BackupFilter::default())
        .await
        .unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].index, 1);
}

pub async fn finish_applies_every_part(a: &Adapters) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    let entry = history("r1", "o1", "j1", at(0), at(0));
    assert_eq!(a.store.begin_run(&entry).await.unwrap(), RunStart::Started);
    w.prepare("c1", "job:j1").await.unwrap();
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    let (lock, b) = started(start(w.as_ref(), "c1", &run, "b1", at(0)).await);
    // WHEN the run ends: backup available where the provider put it, history, release
    let mut item = entry.item.clone();
    item.status = RunStatus::Succeeded;
    item.end_time = Some(at(1));
    item.linked_resource = "b1".into();
    item.details = "Backed up.".into();
    let done = w
        .finish(&Finish {
            backup: Some(BackupEnd {
                backup_id: "b1",
                status: BackupStatus::Available,
                location: Some("snap-1,snap-2"),
                error_code: None,
                details: Some("2 files changed while they were copied: a, b."),
            }),
            history: Some(&item),
            release: Some(Release {
                cluster_id: "c1",
                fencing_token: lock.fencing_token,
            }),
        })
        .await
        .unwrap();
    // THEN every part is applied
    assert_eq!(
        done,
        Finished {
            backup: Applied::Done,
            release: Applied::Done
        }
    );
    let stored = a.store.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.status, BackupStatus::Available);
    assert_eq!(stored.location.as_deref(), Some("snap-1,snap-2"));
    assert_eq!(
        stored.details.as_deref(),
        Some("2 files changed while they were copied: a, b.")
    );
    assert_eq!(stored.error_code, None);
    assert_eq!(stored.index, b.index);
    assert_eq!(a.store.get_history("r1").await.unwrap().unwrap().item, item);
    assert_eq!(a.lock.current("c1", at(1)).await.unwrap(), None);
    // AND a backup no longer `creating` is left alone, alone or with other parts
    let again = w
        .finish(&Finish {
            backup: Some(BackupEnd {
                backup_id: "b1",
                status: BackupStatus::Defunct,
                location: None,
                error_code: Some(RunFailure::ProviderError),
                details: Some("a late failure"),
            }),
            ..Finish::default()
        })
        .await
        .unwrap();
    assert_eq!(again.backup, Applied::Stale);
    assert_eq!(again.release, Applied::NotAsked);
    let stored = a.store.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.status, BackupStatus::Available);
    // AND it keeps the reason it ended with, not the late one
    assert_eq!(stored.error_code, None);
    assert_eq!(
        stored.details.as_deref(),
        Some("2 files changed while they were copied: a, b.")
    );
}

pub async fn finish_after_a_lost_lock_records_and_leaves_the_new_holder(a: &Adapters) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    let entry = history("r1", "o1", "j1", at(0), at(0));
    assert_eq!(a.store.begin_run(&entry).await.unwrap(), RunStart::Started);
    w.prepare("c1", "job:j1").await.unwrap();
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    let (lock, _) = started(start(w.as_ref(), "c1", &run, "b1", at(0)).await);
    // GIVEN the lease ran out and an operator took the cluster
    let op = holder("expand-disk", None, None);
    let theirs = acquired(
        a.lock
            .try_acquire("c1", &op, at(2), Duration::seconds(600))
            .await
            .unwrap(),
    );
    // WHEN the run ends with its old token
    let mut item = entry.item.clone();
    item.status = RunStatus::Failed;
    item.end_time = Some(at(3));
    item.error_code = Some(RunFailure::LockLost);
    item.details = "Lost the lock.".into();
    let done = w
        .finish(&Finish {
            backup: Some(BackupEnd {
                backup_id: "b1",
                status: BackupStatus::Defunct,
                location: Some("/backups/b1"),
                error_code: Some(RunFailure::LockLost),
                details: Some("The lease was lost."),
            }),
            history: Some(&item),
            release: Some(Release {
                cluster_id: "c1",
                fencing_token: lock.fencing_token,
            }),
        })
        .await
        .unwrap();
    // THEN its backup and history are recorded, and the operator still holds the lock
    assert_eq!(
        done,
        Finished {
            backup: Applied::Done,
            release: Applied::Stale
        }
    );
    let stored = a.store.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.status, BackupStatus::Defunct);
    assert_eq!(stored.error_code, Some(RunFailure::LockLost));
    assert_eq!(stored.details.as_deref(), Some("The lease was lost."));
    assert_eq!(a.store.get_history("r1").await.unwrap().unwrap().item, item);
    assert_eq!(
        a.lock
            .current("c1", at(3))
            .await
            .unwrap()
            .map(|l| l.fencing_token),
        Some(theirs.fencing_token)
    );
}
