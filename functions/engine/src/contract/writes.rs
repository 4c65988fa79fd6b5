//! The contract of a run's grouped writes (`BackupWrites`): start and finish.

use super::*;
use crate::page::PageRequest;

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
    start_with(w, cluster, who, backup_id, now, None).await
}

/// [`start`], recording `run` with the backup when given.
async fn start_with(
    w: &dyn BackupWrites,
    cluster: &str,
    who: &LockHolder,
    backup_id: &str,
    now: DateTime<Utc>,
    run: Option<&HistoryEntry>,
) -> Started {
    w.start(&StartBackup {
        cluster_id: cluster,
        holder: who,
        now,
        lease: LEASE,
        sequence_key: "job:j1",
        backup: &draft(backup_id, cluster, now),
        run,
    })
    .await
    .unwrap()
}

fn started(s: Started) -> (ClusterLockInfo, BackupEntry) {
    match s {
        Started::Acquired { lock, backup } => (lock, backup),
        s => panic!("expected to start, got {s:?}"),
    }
}

/// A run `r1` of job `j1` on cluster `c1` (org `o1`) that has begun and started its backup
/// `b1` at `at(0)`: the writes, its history entry, its lock and its backup.
pub(super) async fn started_run(
    a: &Adapters,
) -> (
    Arc<dyn BackupWrites>,
    HistoryEntry,
    ClusterLockInfo,
    BackupEntry,
) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    let entry = history("r1", "o1", "j1", at(0), at(0));
    w.prepare("c1", "job:j1").await.unwrap();
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    let (lock, b) = started(start_with(w.as_ref(), "c1", &run, "b1", at(0), Some(&entry)).await);
    (w, entry, lock, b)
}

/// Ends the run of `started_run` with `backup`, its history `item` and the release of
/// `lock`, and answers what became of the release. The backup and the history item are
/// recorded whoever holds the lock by then, so they are checked here: the backup ended as
/// `backup` says, and the history item reads back as `item`.
async fn finish_run(
    a: &Adapters,
    w: &dyn BackupWrites,
    backup: BackupEnd<'_>,
    item: &HistoryItem,
    lock: &ClusterLockInfo,
) -> Applied {
    let done = w
        .finish(&Finish {
            backup: Some(backup.clone()),
            history: Some(item),
            release: Some(Release {
                cluster_id: "c1",
                fencing_token: lock.fencing_token,
            }),
            ..Finish::default()
        })
        .await
        .unwrap();
    assert_eq!(done.backup, Applied::Done, "the backup ends");
    let stored = a.store.get_backup(backup.backup_id).await.unwrap().unwrap();
    assert_eq!(stored.status, backup.status);
    assert_eq!(stored.location.as_deref(), backup.location);
    assert_eq!(stored.error_code, backup.error_code);
    assert_eq!(stored.details.as_deref(), backup.details);
    assert_eq!(
        a.store.get_history(&item.id).await.unwrap().unwrap().item,
        *item
    );
    done.release
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
    assert_eq!(a.holder_token("c1", at(0)).await, Some(lock.fencing_token));
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

pub async fn start_records_its_run_once(a: &Adapters) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    // GIVEN a run of j1 at at(0), not recorded yet
    let first = history("r1", "o1", "j1", at(0), at(0));
    w.prepare("c1", "job:j1").await.unwrap();
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    // WHEN it starts THEN it holds the lock, its backup is #1, and the run is recorded
    let (lock, b1) = started(start_with(w.as_ref(), "c1", &run, "b1", at(0), Some(&first)).await);
    assert_eq!(b1.index, 1);
    assert_eq!(
        a.store.get_history("r1").await.unwrap(),
        Some(first.clone())
    );
    // WHEN the same firing is delivered again while the first run holds the lock
    let soon = at(0) + Duration::seconds(30);
    let again = history("r2", "o1", "j1", at(0), soon);
    let second = holder("scheduled-backup", Some("j1"), Some("r2"));
    w.prepare("c1", "job:j1").await.unwrap();
    // THEN it gets the first run's history, and writes nothing
    assert_eq!(
        start_with(w.as_ref(), "c1", &second, "b2", soon, Some(&again)).await,
        Started::AlreadyRan(first.item.clone())
    );
    assert_eq!(a.store.get_history("r2").await.unwrap(), None);
    assert_eq!(a.store.get_backup("b2").await.unwrap(), None);
    assert_eq!(a.holder_token("c1", soon).await, Some(lock.fencing_token));
    // WHEN the first run has ended, and the firing is delivered again
    let mut done = first.item.clone();
    done.status = RunStatus::Succeeded;
    done.end_time = Some(at(1));
    done.linked_resource = "b1".into();
    done.details = "Backed up.".into();
    a.store.update_history(&done).await.unwrap();
    assert!(a.lock.release("c1", lock.fencing_token).await.unwrap());
    w.prepare("c1", "job:j1").await.unwrap();
    // THEN it gets the first run's history as it is now, and writes nothing
    assert_eq!(
        start_with(w.as_ref(), "c1", &second, "b3", at(2), Some(&again)).await,
        Started::AlreadyRan(done)
    );
    assert_eq!(a.store.get_history("r2").await.unwrap(), None);
    assert_eq!(a.store.get_backup("b3").await.unwrap(), None);
    assert_eq!(a.holder_token("c1", at(2)).await, None);
    // AND no number was used: the next backup is #2
    let (_, b4) = started(start(w.as_ref(), "c1", &second, "b4", at(3)).await);
    assert_eq!(b4.index, 2);
}

pub async fn start_refused_by_a_held_lock_records_the_run_alone(a: &Adapters) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    let op = holder("expand-disk", None, None);
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    for prepared in [true, false] {
        // GIVEN an operator holds the cluster, taken before or after the run prepared
        let now = at(if prepared { 0 } else { 2 });
        let entry = history(if prepared { "r1" } else { "r2" }, "o1", "j1", now, now);
        if prepared {
            w.prepare("c1", "job:j1").await.unwrap();
        }
        let theirs = a.take_lock("c1", &op, now).await;
        if !prepared {
            w.prepare("c1", "job:j1").await.unwrap();
        }
        // WHEN the run starts THEN the lock is held
        match start_with(w.as_ref(), "c1", &run, "b1", now, Some(&entry)).await {
            Started::Held(info) => assert_eq!(info.fencing_token, theirs.fencing_token),
            s => panic!("expected the lock to be held, got {s:?}"),
        }
        // AND the run is recorded, for its failure, but no backup and no number
        assert_eq!(
            a.store.get_history(&entry.item.id).await.unwrap(),
            Some(entry)
        );
        assert_eq!(a.store.get_backup("b1").await.unwrap(), None);
        assert!(a.lock.release("c1", theirs.fencing_token).await.unwrap());
    }
    assert_eq!(a.store.next_sequence("job:j1").await.unwrap(), 1);
}

pub async fn start_with_stale_versions_still_decides_right(a: &Adapters) {
    let w = a.writes();
    assert!(a.store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    // GIVEN a run prepared (an adapter may keep the versions it read), then another took
    // and released the lock and used a number
    w.prepare("c1", "job:j1").await.unwrap();
    let op = holder("expand-disk", None, None);
    let t1 = a.take_lock("c1", &op, at(0)).await;
    assert_eq!(a.store.next_sequence("job:j1").await.unwrap(), 1);
    assert!(a.lock.release("c1", t1.fencing_token).await.unwrap());
    // WHEN the run starts with what it saw THEN it still starts, with fresh numbers
    let run = holder("scheduled-backup", Some("j1"), Some("r1"));
    let (lock, b) = started(start(w.as_ref(), "c1", &run, "b1", at(1)).await);
    assert!(lock.fencing_token > t1.fencing_token);
    assert_eq!(b.index, 2);
    // AND with the lock now held by someone else and a stale view THEN it is held
    let t2 = a.take_lock("c1", &op, at(5)).await;
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
        .list_backups(
            &scope("o1"),
            &BackupFilter::default(),
            &PageRequest::everything(),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].index, 1);
}

pub async fn finish_applies_every_part(a: &Adapters) {
    let (w, entry, lock, b) = started_run(a).await;
    // WHEN the run ends: backup available where the provider put it, history, release
    let end = BackupEnd {
        backup_id: "b1",
        status: BackupStatus::Available,
        location: Some("snap-1,snap-2"),
        error_code: None,
        details: Some("2 files changed while they were copied: a, b."),
        size_bytes: Some(3 << 30),
    };
    let mut item = entry.item.clone();
    item.status = RunStatus::Succeeded;
    item.end_time = Some(at(1));
    item.linked_resource = "b1".into();
    item.details = "Backed up.".into();
    // THEN every part is applied
    let release = finish_run(a, w.as_ref(), end, &item, &lock).await;
    assert_eq!(release, Applied::Done);
    let stored = a.store.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.index, b.index);
    assert_eq!(stored.size_bytes, Some(3 << 30));
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
                size_bytes: Some(1),
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
    let (w, entry, lock, _) = started_run(a).await;
    // GIVEN the lease ran out and an operator took the cluster
    let op = holder("expand-disk", None, None);
    let theirs = acquired(
        a.lock
            .try_acquire("c1", &op, at(2), Duration::minutes(10))
            .await
            .unwrap(),
    );
    // WHEN the run ends with its old token
    let end = BackupEnd {
        backup_id: "b1",
        status: BackupStatus::Defunct,
        location: Some("/backups/b1"),
        error_code: Some(RunFailure::LockLost),
        details: Some("The lease was lost."),
        size_bytes: None,
    };
    let mut item = entry.item.clone();
    item.status = RunStatus::Failed;
    item.end_time = Some(at(3));
    item.error_code = Some(RunFailure::LockLost);
    item.details = "Lost the lock.".into();
    // THEN its backup and history are recorded, and the operator still holds the lock
    let release = finish_run(a, w.as_ref(), end, &item, &lock).await;
    assert_eq!(release, Applied::Stale);
    assert_eq!(
        a.holder_token("c1", at(3)).await,
        Some(theirs.fencing_token)
    );
}
