//! The contract of backups that settle later (`PendingBackups`, SPEC §16), for adapters
//! that keep them ([`Adapters::pending`]); a check passes at once on one that keeps none
//! (the local mode waits for its backups).

use super::writes::started_run;
use super::*;
use crate::model::{PendingBackup, PendingRestore, PendingRun, RestoreHandle};

fn pending_of(
    backup: &BackupEntry,
    entry: &HistoryEntry,
    token: u64,
    keys: &[&str],
    deadline: DateTime<Utc>,
) -> PendingBackup {
    let mut backup = backup.clone();
    backup.location = Some(format!("{{\"snapshotIds\":{keys:?}}}"));
    PendingBackup {
        backup,
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        run: Some(PendingRun {
            job: job("j1", "o1", "c1", at(0)),
            entry: entry.clone(),
        }),
        fencing_token: token,
        started: at(0),
        deadline,
    }
}

/// Parking records the backup's handle, extends its lock to the deadline, and makes the
/// record findable by each of its keys and listable by deadline until it is forgotten.
pub async fn pending_backups_are_found_by_key_listed_by_deadline_and_forgotten(a: &Adapters) {
    let Some(pending) = a.pending.clone() else {
        return;
    };
    let (_, entry, lock, b1) = started_run(a).await;
    let late = pending_of(
        &b1,
        &entry,
        lock.fencing_token,
        &["snap-1", "snap-2"],
        at(600),
    );
    assert_eq!(pending.park(&late).await.unwrap(), Applied::Done);
    // THEN the lock lasts until the deadline, and the backup is where the handle says
    let info = a.lock.current("c1", at(500)).await.unwrap().expect("held");
    assert_eq!(
        (info.fencing_token, info.expires),
        (lock.fencing_token, at(600))
    );
    let stored = a.store.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.location, late.backup.location);
    assert_eq!(stored.status, BackupStatus::Creating);
    // AND each key finds the whole record; another key finds nothing
    for key in ["snap-1", "snap-2"] {
        assert_eq!(pending.find_pending(key).await.unwrap(), Some(late.clone()));
    }
    assert_eq!(pending.find_pending("snap-other").await.unwrap(), None);
    // AND a manual backup on another cluster with an earlier deadline lists first
    assert!(a.store.insert_cluster(&cluster("c2", "o1")).await.unwrap());
    let who = holder("manual-backup", None, Some("b2"));
    let lock2 = a.take_lock("c2", &who, at(1)).await;
    let mut b2 = backup("b2", "o1", None, "c2", at(1));
    assert!(a.store.insert_backup(&b2).await.unwrap());
    b2.location = Some("{}".into());
    let early = PendingBackup {
        backup: b2,
        keys: vec!["snap-3".into()],
        run: None,
        fencing_token: lock2.fencing_token,
        started: at(1),
        deadline: at(300),
    };
    assert_eq!(pending.park(&early).await.unwrap(), Applied::Done);
    let listed = pending.list_pending(10).await.unwrap();
    assert_eq!(listed, vec![early.clone(), late.clone()]);
    assert_eq!(pending.list_pending(1).await.unwrap(), vec![early.clone()]);
    // WHEN one is forgotten THEN neither its keys nor the list know it, twice over
    pending.unpark(&late).await.unwrap();
    pending.unpark(&late).await.unwrap();
    assert_eq!(pending.find_pending("snap-1").await.unwrap(), None);
    assert_eq!(pending.find_pending("snap-2").await.unwrap(), None);
    assert_eq!(pending.list_pending(10).await.unwrap(), vec![early]);
}

/// A backup whose lock was lost before it was parked is recorded pending all the same (its
/// snapshots exist), and the lock of the new holder is left alone.
pub async fn parking_after_a_lost_lock_records_it_and_leaves_the_new_holder(a: &Adapters) {
    let Some(pending) = a.pending.clone() else {
        return;
    };
    let (_, entry, lock, b1) = started_run(a).await;
    let other = a
        .take_lock("c1", &holder("maintenance", None, None), at(2))
        .await;
    let p = pending_of(&b1, &entry, lock.fencing_token, &["snap-1"], at(600));
    assert_eq!(pending.park(&p).await.unwrap(), Applied::Stale);
    assert_eq!(pending.find_pending("snap-1").await.unwrap(), Some(p));
    let info = a.lock.current("c1", at(2)).await.unwrap().expect("held");
    assert_eq!(
        (info.fencing_token, info.expires),
        (other.fencing_token, other.expires)
    );
}

/// A settle (`Finish` with `settled` and `together`) ends the backup, records the history,
/// releases the lock and forgets the pending record together; a second settle of the same
/// backup (a duplicate notification racing the first) changes nothing at all.
pub async fn a_settle_applies_once(a: &Adapters) {
    let Some(pending) = a.pending.clone() else {
        return;
    };
    let (w, entry, lock, b1) = started_run(a).await;
    let p = pending_of(&b1, &entry, lock.fencing_token, &["snap-1"], at(600));
    pending.park(&p).await.unwrap();
    let mut item = entry.item.clone();
    item.status = RunStatus::Succeeded;
    item.end_time = Some(at(30));
    item.details = "Backed up.".into();
    let location = p.backup.location.clone().unwrap_or_default();
    let settle = |item: &HistoryItem, status| {
        let item = item.clone();
        let w = w.clone();
        let p = p.clone();
        let location = location.clone();
        async move {
            w.finish(&Finish {
                backup: Some(BackupEnd {
                    backup_id: "b1",
                    status,
                    location: Some(&location),
                    error_code: None,
                    details: None,
                    size_bytes: None,
                }),
                history: Some(&item),
                release: Some(Release {
                    cluster_id: "c1",
                    fencing_token: p.fencing_token,
                }),
                settled: Some(&p),
                together: true,
            })
            .await
            .unwrap()
        }
    };
    let first = settle(&item, BackupStatus::Available).await;
    assert_eq!(first.backup, Applied::Done);
    assert_eq!(first.release, Applied::Done);
    assert_eq!(pending.find_pending("snap-1").await.unwrap(), None);
    assert_eq!(a.lock.current("c1", at(31)).await.unwrap(), None);
    // WHEN it is settled again, differently THEN nothing changes
    let mut other = item.clone();
    other.status = RunStatus::Failed;
    other.details = "A late duplicate.".into();
    let second = settle(&other, BackupStatus::Defunct).await;
    assert_eq!(second.backup, Applied::Stale);
    let stored = a.store.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.status, BackupStatus::Available);
    let history = a.store.get_history("r1").await.unwrap().unwrap();
    assert_eq!(history.item, item);
}

fn restore_of(cluster: &str, keys: &[&str], token: u64, deadline: DateTime<Utc>) -> PendingRestore {
    PendingRestore {
        handle: RestoreHandle {
            cluster_id: cluster.to_owned(),
            location: format!("{{\"volumeIds\":{keys:?}}}"),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        },
        backup_id: "b1".to_owned(),
        provider: "aws-ebs".to_owned(),
        fencing_token: token,
        started: at(0),
        deadline,
    }
}

/// A pending restore (SPEC §14) extends its `restore` lock to the deadline, is found by
/// each of its keys and by no backup's, is listed by deadline apart from pending backups,
/// and is forgotten (twice: forgetting what is gone succeeds).
pub async fn pending_restores_are_found_by_key_listed_by_deadline_and_forgotten(a: &Adapters) {
    let Some(pending) = a.pending.clone() else {
        return;
    };
    // GIVEN a restore holding the lock of its new cluster
    let restoring = holder(crate::model::OPERATION_RESTORE, None, None);
    let lock = acquired(
        a.lock
            .try_acquire("c9", &restoring, at(0), Duration::minutes(5))
            .await
            .unwrap(),
    );
    let late = restore_of("c9", &["vol-1", "vol-2"], lock.fencing_token, at(600));
    // WHEN it is parked THEN its lock lasts until the deadline
    assert_eq!(pending.park_restore(&late).await.unwrap(), Applied::Done);
    let info = a.lock.current("c9", at(500)).await.unwrap().expect("held");
    assert_eq!(
        (info.fencing_token, info.expires),
        (lock.fencing_token, at(600))
    );
    // AND each key finds the whole record; another key, or a backup's lookup, finds nothing
    for key in ["vol-1", "vol-2"] {
        assert_eq!(
            pending.find_pending_restore(key).await.unwrap(),
            Some(late.clone())
        );
        assert_eq!(pending.find_pending(key).await.unwrap(), None);
    }
    assert_eq!(
        pending.find_pending_restore("vol-other").await.unwrap(),
        None
    );
    // AND one whose lock is gone is recorded all the same, and an earlier deadline lists
    // first; pending backups list none of them
    let early = restore_of("c8", &["vol-3"], 1, at(300));
    assert_eq!(pending.park_restore(&early).await.unwrap(), Applied::Stale);
    assert_eq!(
        pending.list_pending_restores(10).await.unwrap(),
        [early.clone(), late.clone()]
    );
    assert_eq!(
        pending.list_pending_restores(1).await.unwrap(),
        std::slice::from_ref(&early)
    );
    assert!(pending.list_pending(10).await.unwrap().is_empty());
    // WHEN it is forgotten (twice) THEN no key finds it and it is not listed
    pending.unpark_restore(&late).await.unwrap();
    pending.unpark_restore(&late).await.unwrap();
    assert_eq!(pending.find_pending_restore("vol-1").await.unwrap(), None);
    assert_eq!(pending.list_pending_restores(10).await.unwrap(), [early]);
}
