//! The contract of the stores: jobs, clusters, backups, runs, history and sequences.

use super::*;
use crate::model::ClusterServer;
use crate::page::PageRequest;
use backup_core::api::{ClusterStatus, Verification, VerificationStatus, VerifyProblem};

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
    // THEN a scope lists only its own jobs, newest first
    assert_eq!(
        s.list_jobs(&scope("o1"), &PageRequest::everything())
            .await
            .unwrap()
            .items,
        vec![j2.clone(), j1.clone()]
    );
    assert_eq!(
        s.list_jobs(&scope("o2"), &PageRequest::everything())
            .await
            .unwrap()
            .items,
        vec![j3.clone()]
    );
    // WHEN a job is deleted THEN it is marked, once, and leaves the active list
    assert!(s.mark_job_deleted("j2").await.unwrap());
    assert!(!s.mark_job_deleted("j2").await.unwrap());
    assert!(!s.mark_job_deleted("nope").await.unwrap());
    let j2_deleted = s.get_job("j2").await.unwrap().unwrap();
    assert_eq!(j2_deleted.status, JobStatus::Deleted);
    let active = sorted_ids(s.list_active_jobs().await.unwrap(), |j| j.id);
    assert_eq!(active, ["j1", "j3"]);
    // AND removing a job (undoing a creation) forgets it
    s.remove_job("j3").await.unwrap();
    assert_eq!(s.get_job("j3").await.unwrap(), None);
}

pub async fn jobs_update_in_place_only_while_active(a: &Adapters) {
    let s = &a.store;
    let j1 = job("j1", "o1", "c1", at(0));
    assert!(s.insert_job(&j1).await.unwrap());
    // WHEN its changeable fields are replaced
    let mut changed = j1.clone();
    changed.description = "Nightly orders — ☾ changed".into();
    changed.schedule = "0 3 * * *".into();
    changed.template = "{cluster} nightly {index}".into();
    changed.max_backup_count = 7;
    // (what a store must not take from an update: the scope, cluster, status and creation)
    let mut asked = changed.clone();
    asked.scope = scope("o2");
    asked.cluster_id = "c9".into();
    asked.created = at(9);
    assert!(s.update_job(&asked).await.unwrap());
    // THEN it reads back changed, the rest as it was, and stays listed and active
    assert_eq!(s.get_job("j1").await.unwrap(), Some(changed.clone()));
    assert_eq!(
        s.list_jobs(&scope("o1"), &PageRequest::everything())
            .await
            .unwrap()
            .items,
        vec![changed.clone()]
    );
    assert_eq!(s.list_active_jobs().await.unwrap(), vec![changed.clone()]);
    // WHEN the job is deleted THEN an update changes nothing and says so
    assert!(s.mark_job_deleted("j1").await.unwrap());
    let mut late = changed.clone();
    late.description = "too late".into();
    assert!(!s.update_job(&late).await.unwrap());
    let stored = s.get_job("j1").await.unwrap().unwrap();
    assert_eq!(stored.description, changed.description);
    assert_eq!(stored.status, JobStatus::Deleted);
    assert!(s.list_active_jobs().await.unwrap().is_empty());
    // AND a job that does not exist is not made by an update
    assert!(!s.update_job(&job("nope", "o1", "c1", at(0))).await.unwrap());
    assert_eq!(s.get_job("nope").await.unwrap(), None);
}

/// The ids of `items`, sorted, for lists whose order is not part of the contract.
fn sorted_ids<T>(items: Vec<T>, id: impl Fn(T) -> String) -> Vec<String> {
    let mut ids: Vec<String> = items.into_iter().map(id).collect();
    ids.sort();
    ids
}

pub fn cluster(id: &str, org: &str) -> ClusterRecord {
    ClusterRecord {
        id: id.to_owned(),
        scope: scope(org),
        description: format!("Cluster {id}"),
        region: "local".to_owned(),
        target: ClusterTarget::directory(format!("/var/lib/{id}")),
        server: ClusterServer::default(),
        created: at(0),
        status: ClusterStatus::Available,
        details: None,
        source_backup_id: None,
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
    // AND one says what its server is (esc shows it with its backups)
    ebs.server = ClusterServer {
        version: Some("23.10.1".into()),
        version_tag: Some("23.10.1-jammy «lts»".into()),
        node_count: 3,
    };
    assert!(s.insert_cluster(&c2).await.unwrap());
    assert!(s.insert_cluster(&c1).await.unwrap());
    assert!(s.insert_cluster(&ebs).await.unwrap());
    // WHEN an id is registered again, even in another scope THEN nothing changes
    assert!(!s.insert_cluster(&cluster("c1", "o2")).await.unwrap());
    assert_eq!(s.get_cluster("c1").await.unwrap(), Some(c1.clone()));
    assert_eq!(s.get_cluster("c3").await.unwrap(), Some(ebs.clone()));
    assert_eq!(
        s.list_clusters(&scope("o1"), &PageRequest::everything())
            .await
            .unwrap()
            .items,
        vec![c1, c2]
    );
    assert!(s.delete_cluster("c3").await.unwrap());
    assert!(!s.delete_cluster("c3").await.unwrap());
    assert_eq!(s.get_cluster("c3").await.unwrap(), None);
}

/// SPEC §14: a restored cluster is `creating` until its data is in place, then
/// `available` with its final target, or `failed` with the reason.
pub async fn clusters_change_state_in_place(a: &Adapters) {
    let s = &a.store;
    // GIVEN a cluster being restored from a backup
    let mut restoring = cluster("c1", "o1");
    restoring.status = ClusterStatus::Creating;
    restoring.source_backup_id = Some("b1".into());
    restoring.target = ClusterTarget::AwsEbs {
        volume_ids: Vec::new(),
        instance_tag: None,
    };
    assert!(s.insert_cluster(&restoring).await.unwrap());
    assert_eq!(s.get_cluster("c1").await.unwrap(), Some(restoring.clone()));
    // WHEN it becomes available with its final target
    let target = ClusterTarget::AwsEbs {
        volume_ids: vec!["vol-0abc123def4567890".into()],
        instance_tag: None,
    };
    assert!(s
        .update_cluster_state("c1", ClusterStatus::Available, None, Some(&target))
        .await
        .unwrap());
    // THEN it reads back so, the rest as it was, in the list too
    let available = ClusterRecord {
        status: ClusterStatus::Available,
        target: target.clone(),
        ..restoring.clone()
    };
    assert_eq!(s.get_cluster("c1").await.unwrap(), Some(available.clone()));
    let listed = s
        .list_clusters(&scope("o1"), &PageRequest::everything())
        .await
        .unwrap()
        .items;
    assert_eq!(listed, vec![available.clone()]);
    // WHEN it fails, its target left as it is THEN the reason reads back with it
    assert!(s
        .update_cluster_state(
            "c1",
            ClusterStatus::Failed,
            Some("Volume vol-0abc123def4567890 failed «error»."),
            None
        )
        .await
        .unwrap());
    let failed = s.get_cluster("c1").await.unwrap().unwrap();
    assert_eq!(failed.status, ClusterStatus::Failed);
    assert_eq!(
        failed.details.as_deref(),
        Some("Volume vol-0abc123def4567890 failed «error».")
    );
    assert_eq!(failed.target, target);
    assert_eq!(failed.source_backup_id.as_deref(), Some("b1"));
    // AND a later state without details clears them
    assert!(s
        .update_cluster_state("c1", ClusterStatus::Available, None, None)
        .await
        .unwrap());
    assert_eq!(s.get_cluster("c1").await.unwrap(), Some(available));
    // AND a cluster that does not exist is not made by an update
    assert!(!s
        .update_cluster_state("nope", ClusterStatus::Available, None, None)
        .await
        .unwrap());
    assert_eq!(s.get_cluster("nope").await.unwrap(), None);
}

/// SPEC §14: a verify's result is stored with the backup, the last one replacing the one
/// before, and nothing else of the backup changes.
pub async fn backup_verifications_are_stored_and_replaced(a: &Adapters) {
    let s = &a.store;
    let mut b = backup("b1", "o1", Some("j1"), "c1", at(0));
    b.status = BackupStatus::Available;
    b.location = Some("/backups/b1".into());
    b.size_bytes = Some(4096);
    assert!(s.insert_backup(&b).await.unwrap());
    assert_eq!(
        s.get_backup("b1").await.unwrap().unwrap().verification,
        None
    );
    // WHEN a verify finds problems
    let failed = Verification {
        status: VerificationStatus::Failed,
        checked_at: at(3),
        problems: vec![
            VerifyProblem {
                path: "data/chunk-0 «x»".into(),
                problem: "Its checksum differs from the manifest's.".into(),
            },
            VerifyProblem {
                path: "extra".into(),
                problem: "It is not in the manifest.".into(),
            },
        ],
    };
    s.set_backup_verification("b1", &failed).await.unwrap();
    // THEN it reads back with the backup, which is otherwise as it was
    let stored = s.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(
        stored,
        BackupEntry {
            verification: Some(failed.clone()),
            ..b.clone()
        }
    );
    // WHEN a later verify finds none THEN it replaces the first
    let ok = Verification {
        status: VerificationStatus::Ok,
        checked_at: at(4),
        problems: Vec::new(),
    };
    s.set_backup_verification("b1", &ok).await.unwrap();
    let stored = s.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.verification, Some(ok.clone()));
    // AND lists show it too
    let listed = s
        .list_backups(
            &scope("o1"),
            &BackupFilter::default(),
            &PageRequest::everything(),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(listed, vec![stored.clone()]);
    assert_eq!(s.list_job_backups("j1").await.unwrap(), vec![stored]);
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
        size_bytes: None,
        verification: None,
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
    // AND its size, once recorded, reads back with the rest
    s.set_backup_size("b1", 5_000_000_000).await.unwrap();
    let stored = s.get_backup("b1").await.unwrap().unwrap();
    assert_eq!(stored.size_bytes, Some(5_000_000_000));
    // AND listing shows them too
    let listed = s
        .list_backups(
            &scope("o1"),
            &BackupFilter::default(),
            &PageRequest::everything(),
        )
        .await
        .unwrap()
        .items;
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
    let found = sorted_ids(
        s.list_backups_in_status(BackupStatus::Deleting)
            .await
            .unwrap(),
        |b| b.id,
    );
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
        ids(s
            .list_backups(&scope("o1"), &all, &PageRequest::everything())
            .await
            .unwrap()
            .items),
        ["b3", "b5", "b2", "b1"]
    );
    let by_job = BackupFilter {
        job_id: Some("j1".into()),
        cluster_id: None,
    };
    assert_eq!(
        ids(s
            .list_backups(&scope("o1"), &by_job, &PageRequest::everything())
            .await
            .unwrap()
            .items),
        ["b5", "b1"]
    );
    let by_cluster = BackupFilter {
        job_id: None,
        cluster_id: Some("c1".into()),
    };
    assert_eq!(
        ids(s
            .list_backups(&scope("o1"), &by_cluster, &PageRequest::everything())
            .await
            .unwrap()
            .items),
        ["b2", "b1"]
    );
    let both = BackupFilter {
        job_id: Some("j1".into()),
        cluster_id: Some("c2".into()),
    };
    assert_eq!(
        ids(s
            .list_backups(&scope("o1"), &both, &PageRequest::everything())
            .await
            .unwrap()
            .items),
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

/// A prune decides on backups read consistently by id; an id of no backup is left out.
pub async fn backups_are_read_again_by_id(a: &Adapters) {
    let s = &a.store;
    let b1 = backup("b1", "o1", Some("j1"), "c1", at(1));
    let b2 = backup("b2", "o1", Some("j1"), "c1", at(2));
    assert!(s.insert_backup(&b1).await.unwrap());
    assert!(s.insert_backup(&b2).await.unwrap());
    assert!(s
        .update_backup_status("b2", BackupStatus::Creating, BackupStatus::Available)
        .await
        .unwrap());
    let ids = ["b2".to_owned(), "nope".to_owned(), "b1".to_owned()];
    let mut read = s.get_backups(&ids).await.unwrap();
    read.sort_by(|x, y| x.id.cmp(&y.id));
    let mut b2_now = b2.clone();
    b2_now.status = BackupStatus::Available;
    assert_eq!(read, vec![b1, b2_now]);
    assert!(s.get_backups(&[]).await.unwrap().is_empty());
}

pub async fn backup_status_updates_are_conditional(a: &Adapters) {
    use BackupStatus::*;
    /// Whether the backup's status moved from `from` to `to`.
    async fn moves(s: &dyn Store, id: &str, from: BackupStatus, to: BackupStatus) -> bool {
        s.update_backup_status(id, from, to).await.unwrap()
    }
    let s = &a.store;
    assert!(s
        .insert_backup(&backup("b1", "o1", Some("j1"), "c1", at(0)))
        .await
        .unwrap());
    // WHEN the expected status is wrong THEN nothing changes
    assert!(!moves(s.as_ref(), "b1", Available, Deleting).await);
    assert_eq!(s.get_backup("b1").await.unwrap().unwrap().status, Creating);
    // WHEN it is right THEN the status moves
    assert!(moves(s.as_ref(), "b1", Creating, Available).await);
    assert!(moves(s.as_ref(), "b1", Available, Deleting).await);
    assert!(!moves(s.as_ref(), "b1", Available, Deleting).await);
    assert!(moves(s.as_ref(), "b1", Deleting, Deleted).await);
    assert_eq!(s.get_backup("b1").await.unwrap().unwrap().status, Deleted);
    assert!(!moves(s.as_ref(), "nope", Creating, Available).await);
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
            organization_id: org.to_owned(),
            project_id: scope(org).project,
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

/// A `queued` run ("run now" handed to another process, SPEC §16) is listed with the
/// unfinished runs and claimed once: the first claim moves it on, a second finds it moved.
pub async fn queued_runs_are_claimed_once(a: &Adapters) {
    let s = &a.store;
    let mut queued = history("q1", "o1", "j1", at(60), at(60));
    queued.item.status = RunStatus::Queued;
    assert_eq!(s.begin_run(&queued).await.unwrap(), RunStart::Started);
    assert_eq!(s.get_history("q1").await.unwrap(), Some(queued.clone()));
    let unfinished: Vec<String> = (s.list_running().await.unwrap().into_iter())
        .map(|e| e.item.id)
        .collect();
    assert_eq!(unfinished, vec!["q1".to_owned()]);
    // WHEN two deliveries claim it THEN one does
    let mut running = queued.item.clone();
    running.status = RunStatus::Running;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (store, item) = (s.clone(), running.clone());
        tasks.push(tokio::spawn(async move { store.claim_queued(&item).await }));
    }
    let mut claimed = 0;
    for t in tasks {
        claimed += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(claimed, 1);
    assert_eq!(s.get_history("q1").await.unwrap().unwrap().item, running);
    // AND a run that is not queued is never claimed (nor one that does not exist)
    let mut failed = running.clone();
    failed.status = RunStatus::Failed;
    assert!(!s.claim_queued(&failed).await.unwrap());
    assert_eq!(s.get_history("q1").await.unwrap().unwrap().item, running);
    let unfinished = s.list_running().await.unwrap();
    assert_eq!(unfinished.len(), 1, "a running run is still unfinished");
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
            .list_history(&scope("o1"), None, &PageRequest::everything())
            .await
            .unwrap()
            .items
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
        ids(s
            .list_history(&scope("o1"), None, &PageRequest::everything())
            .await
            .unwrap()
            .items),
        ["h3", "h4", "h2", "h1"]
    );
    assert_eq!(
        ids(s
            .list_history(&scope("o1"), Some("j1"), &PageRequest::everything())
            .await
            .unwrap()
            .items),
        ["h3", "h2", "h1"]
    );
    assert_eq!(
        ids(s
            .list_history(&scope("o2"), None, &PageRequest::everything())
            .await
            .unwrap()
            .items),
        ["hx"]
    );
    assert!(s
        .list_history(&scope("o1"), Some("j9"), &PageRequest::everything())
        .await
        .unwrap()
        .items
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

/// Follows a list page by page (`limit` items each) and returns every item's id, in the
/// order the pages gave them.
async fn walk<T, F, Fut>(limit: usize, mut list: F, id: fn(&T) -> String) -> Vec<String>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = crate::ports::StoreResult<crate::page::Page<T>>>,
{
    let mut ids = Vec::new();
    let mut request = PageRequest::first(limit);
    for _ in 0..100 {
        let page = list(request.clone()).await.unwrap();
        assert!(page.items.len() <= limit, "a page holds at most its limit");
        ids.extend(page.items.iter().map(id));
        match page.next {
            Some(next) => request = PageRequest::after(limit, next),
            None => return ids,
        }
    }
    panic!("the pages never end");
}

/// SPEC §16: every list pages, and following the positions gives each item once, in the
/// list's order, whatever the page size (also when a filter drops items between pages).
pub async fn lists_page_in_order_without_gaps_or_repeats(a: &Adapters) {
    let s = a.store.clone();
    for i in 0..7 {
        let job_id = format!("j{i}");
        // Two jobs share an instant: ties order by id.
        assert!(s
            .insert_job(&job(&job_id, "o1", "c1", at(i.min(5))))
            .await
            .unwrap());
        assert!(s
            .insert_cluster(&cluster(&format!("c{i}"), "o1"))
            .await
            .unwrap());
        let job_of = if i % 2 == 0 { Some("j0") } else { Some("j1") };
        let b = backup(&format!("b{i}"), "o1", job_of, "c1", at(i.min(5)));
        assert!(s.insert_backup(&b).await.unwrap());
        let h = history(
            &format!("h{i}"),
            "o1",
            job_of.unwrap_or("j0"),
            at(i),
            at(i.min(5)),
        );
        assert_eq!(s.begin_run(&h).await.unwrap(), RunStart::Started);
    }
    let sc = scope("o1");
    let whole_jobs: Vec<String> = (s
        .list_jobs(&sc, &PageRequest::everything())
        .await
        .unwrap()
        .items)
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(whole_jobs.len(), 7);
    let by_j0 = BackupFilter {
        job_id: Some("j0".into()),
        cluster_id: None,
    };
    let everything = BackupFilter::default();
    for limit in [1, 2, 3, 7, 8] {
        let jobs = walk(
            limit,
            |p| {
                let s = s.clone();
                let sc = sc.clone();
                async move { s.list_jobs(&sc, &p).await }
            },
            |j: &JobRecord| j.id.clone(),
        )
        .await;
        assert_eq!(jobs, whole_jobs, "jobs in pages of {limit}");
        let clusters = walk(
            limit,
            |p| {
                let s = s.clone();
                let sc = sc.clone();
                async move { s.list_clusters(&sc, &p).await }
            },
            |c: &ClusterRecord| c.id.clone(),
        )
        .await;
        assert_eq!(
            clusters,
            ["c0", "c1", "c2", "c3", "c4", "c5", "c6"],
            "clusters in pages of {limit}"
        );
        let backups = walk(
            limit,
            |p| {
                let s = s.clone();
                let sc = sc.clone();
                let f = everything.clone();
                async move { s.list_backups(&sc, &f, &p).await }
            },
            |b: &BackupEntry| b.id.clone(),
        )
        .await;
        assert_eq!(
            backups,
            ["b6", "b5", "b4", "b3", "b2", "b1", "b0"],
            "backups in pages of {limit}"
        );
        let j0 = walk(
            limit,
            |p| {
                let s = s.clone();
                let sc = sc.clone();
                let f = by_j0.clone();
                async move { s.list_backups(&sc, &f, &p).await }
            },
            |b: &BackupEntry| b.id.clone(),
        )
        .await;
        assert_eq!(
            j0,
            ["b6", "b4", "b2", "b0"],
            "one job's backups in pages of {limit}"
        );
        let history = walk(
            limit,
            |p| {
                let s = s.clone();
                let sc = sc.clone();
                async move { s.list_history(&sc, None, &p).await }
            },
            |h: &HistoryItem| h.id.clone(),
        )
        .await;
        assert_eq!(
            history,
            ["h6", "h5", "h4", "h3", "h2", "h1", "h0"],
            "history in pages of {limit}"
        );
        let h1 = walk(
            limit,
            |p| {
                let s = s.clone();
                let sc = sc.clone();
                async move { s.list_history(&sc, Some("j1"), &p).await }
            },
            |h: &HistoryItem| h.id.clone(),
        )
        .await;
        assert_eq!(
            h1,
            ["h5", "h3", "h1"],
            "one job's history in pages of {limit}"
        );
    }
    // AND an exact fit says no more; another scope sees none of it
    let page = s
        .list_backups(&sc, &everything, &PageRequest::first(7))
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next), (7, None));
    let other = s
        .list_backups(&scope("o2"), &everything, &PageRequest::first(3))
        .await
        .unwrap();
    assert_eq!((other.items.len(), other.next), (0, None));
}
