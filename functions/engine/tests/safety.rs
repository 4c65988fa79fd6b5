//! The engine's safety rules of SPEC §12–§13 that do not depend on the file system: the
//! stall watchdog, a shutdown that interrupts running backups, failures recorded on manual
//! backups, idempotent deletes settled at start-up, and a provider's path policy at
//! registration and at every list. The store is the in-memory one (it passes the same
//! contract as SQLite and DynamoDB); the provider is scripted, because what is under test is
//! the engine's decision, not a copy.
//!
//! Time is paused (`start_paused`): the watchdog and the lease renewals run on tokio's clock,
//! which jumps ahead whenever every task waits, so a minute-long stall takes no real time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backup_core::api::{ClusterTarget, HistoryItem, RunFailure, RunStatus};
use backup_core::retention::BackupStatus;
use backup_engine::clock::ManualClock;
use backup_engine::memory::MemoryStore;
use backup_engine::ports::TriggerScheduler;
use backup_engine::ports::{BackupProvider, BackupStore, ClusterLock};
use backup_engine::requests::{directory_cluster, hourly_job, manual_backup};
use backup_engine::{
    BackupHandle, BackupRequest, Creation, Engine, EngineConfig, Ports, ProviderError,
    ProviderErrorCode, ProviderStatus, Scope, TargetProblem,
};
use backup_engine::{JobRecord, TriggerError};
use chrono::{DateTime, Utc};

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap()
}

/// Fails, showing `text`, unless `text` says `part`.
fn assert_says(text: &str, part: &str) {
    assert!(text.contains(part), "{text:?} does not say {part:?}");
}

/// What the scripted provider's `create` does.
#[derive(Clone, Copy)]
enum Script {
    /// Reports one step, then never moves again (a read stuck on a hung mount).
    StallAfterOneStep,
    /// Moves a byte every second, for ever (a long copy).
    KeepCopying,
    /// Fails at once with this code.
    Fail(ProviderErrorCode),
    /// Succeeds at once, with a note.
    SucceedWithNote,
    /// Starts a backup that settles later (as EBS snapshots do): `status` answers
    /// `Creating` twice, then `Available`, or `Failed` with this sentence.
    Pending(Option<&'static str>),
}

struct Scripted {
    script: Mutex<Script>,
    deletes: AtomicUsize,
    polls: AtomicUsize,
}

impl Scripted {
    fn new(script: Script) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(script),
            deletes: AtomicUsize::new(0),
            polls: AtomicUsize::new(0),
        })
    }
}

/// The scripted provider's refusal of a path, as the directory provider's policy words it.
fn path_not_allowed(message: String) -> TargetProblem {
    TargetProblem {
        field: "path",
        code: "path_not_allowed",
        message,
    }
}

#[async_trait]
impl BackupProvider for Scripted {
    fn kind(&self) -> &'static str {
        "directory"
    }

    async fn check_target(&self, target: &ClusterTarget) -> Result<ClusterTarget, TargetProblem> {
        match target {
            ClusterTarget::Directory { path, .. } if path.starts_with("/forbidden") => Err(
                path_not_allowed(format!("{path} is refused; choose a directory under /srv.")),
            ),
            other => Ok(other.clone()),
        }
    }

    async fn recheck_target(&self, target: &ClusterTarget) -> Result<(), TargetProblem> {
        match target {
            ClusterTarget::Directory { path, .. } if path.ends_with("became-a-link") => {
                Err(path_not_allowed(format!("{path} is now a link to /etc.")))
            }
            _ => Ok(()),
        }
    }

    fn planned_location(&self, request: &BackupRequest) -> String {
        format!("/backups/{}", request.backup_id)
    }

    async fn create(&self, request: &BackupRequest) -> Result<Creation, ProviderError> {
        let script = *self.script.lock().unwrap();
        match script {
            Script::StallAfterOneStep => {
                request.progress.tick();
                std::future::pending().await
            }
            Script::KeepCopying => loop {
                request.progress.add_bytes(1);
                tokio::time::sleep(Duration::from_secs(1)).await;
            },
            Script::Fail(code) => Err(ProviderError::coded(
                code,
                "the backup needs 9000 bytes and the backup root has 100 free",
            )),
            Script::Pending(_) => Ok(Creation::Pending(BackupHandle::new(
                request.backup_id.clone(),
                "snap-1",
            ))),
            Script::SucceedWithNote => {
                let mut handle =
                    BackupHandle::new(request.backup_id.clone(), self.planned_location(request));
                handle.notes.push(
                    "1 file changed while it was copied, so its copy may be torn: base/1".into(),
                );
                Ok(Creation::Done(handle))
            }
        }
    }

    async fn status(&self, _: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        let polls = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(match *self.script.lock().unwrap() {
            Script::Pending(_) if polls <= 2 => ProviderStatus::Creating,
            Script::Pending(Some(reason)) => ProviderStatus::Failed(reason.to_owned()),
            _ => ProviderStatus::Available,
        })
    }

    async fn delete(&self, _: &BackupHandle) -> Result<(), ProviderError> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Triggers are not under test: these runs are started by the tests themselves.
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

struct Harness {
    engine: Engine,
    store: MemoryStore,
    provider: Arc<Scripted>,
    scope: Scope,
}

impl Harness {
    fn new(script: Script) -> Harness {
        let store = MemoryStore::new();
        let provider = Scripted::new(script);
        let clock: Arc<dyn backup_engine::ports::Clock> = Arc::new(ManualClock::new(at(0)));
        let config = EngineConfig {
            poll_interval: Duration::from_millis(10),
            stall_after: Duration::from_secs(60),
            ..EngineConfig::default()
        };
        let ports = Ports::one_store(
            store.clone(),
            vec![provider.clone()],
            Arc::new(NoTriggers),
            clock,
        );
        let engine = Engine::new(ports, config);
        Harness {
            engine,
            store,
            provider,
            scope: Scope::new("default", "default").unwrap(),
        }
    }

    async fn cluster(&self, id: &str, path: &str) -> Result<(), backup_engine::EngineError> {
        self.engine
            .register_cluster(
                &self.scope,
                &directory_cluster(id, &format!("Cluster {id}"), path),
            )
            .await
            .map(|_| ())
    }

    /// The stored record of the backup `id`, which must exist.
    async fn stored_backup(&self, id: &str) -> backup_engine::BackupEntry {
        self.store.get_backup(id).await.unwrap().unwrap()
    }

    /// A harness with the cluster `orders` at `/srv/orders` and a job on it: the harness and
    /// the job's id.
    async fn with_orders_job(script: Script) -> (Harness, String) {
        let h = Harness::new(script);
        h.cluster("orders", "/srv/orders").await.unwrap();
        let job = h.job("orders").await;
        (h, job)
    }

    /// A harness whose `orders` job (as [`with_orders_job`](Self::with_orders_job) makes
    /// it) ran to its end once, scheduled at `at(0)`: the harness and the run's history item.
    async fn ran_orders_job(script: Script) -> (Harness, HistoryItem) {
        let (h, job) = Harness::with_orders_job(script).await;
        let outcome = h.engine.run_scheduled(&job, at(0)).await.unwrap();
        (h, outcome.history)
    }

    async fn job(&self, cluster: &str) -> String {
        self.engine
            .create_job(&self.scope, &hourly_job(cluster, "{cluster} #{index}", 1))
            .await
            .unwrap()
            .id
    }

    async fn manual(&self, cluster: &str) -> String {
        let id = self
            .engine
            .create_manual_backup(&self.scope, &manual_backup(cluster, "by hand"))
            .await
            .unwrap();
        assert!(self.engine.wait_idle(Duration::from_secs(600)).await);
        id
    }
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_stops_making_progress_fails_the_run_and_frees_the_cluster() {
    // GIVEN a provider whose copy makes one step and then hangs (a stuck system call)
    // WHEN the job runs
    let (h, item) = Harness::ran_orders_job(Script::StallAfterOneStep).await;
    // THEN the run fails `provider_stalled` after the stall limit, saying why
    assert_eq!(item.status, RunStatus::Failed);
    assert_eq!(item.error_code, Some(RunFailure::ProviderStalled));
    assert_says(&item.details, "no progress for 60 seconds");
    // AND the cluster's lock is free for the next run
    assert_eq!(h.store.current("orders", at(0)).await.unwrap(), None);
    // AND the backup is defunct with the reason on it
    let backup = h.stored_backup(&item.linked_resource).await;
    assert_eq!(backup.status, BackupStatus::Defunct);
    assert_eq!(backup.error_code, Some(RunFailure::ProviderStalled));
}

#[tokio::test(start_paused = true)]
async fn a_copy_that_keeps_moving_is_not_stalled_however_long_it_takes() {
    // GIVEN a copy that moves every second
    let (h, job) = Harness::with_orders_job(Script::KeepCopying).await;
    let engine = h.engine.clone();
    let run = tokio::spawn(async move { engine.run_scheduled(&job, at(0)).await });
    // WHEN ten minutes pass
    tokio::time::sleep(Duration::from_secs(600)).await;
    // THEN it still runs and holds the lock
    assert!(!run.is_finished());
    let holder = h.store.current("orders", at(0)).await.unwrap().unwrap();
    assert_eq!(holder.operation, "scheduled-backup");
    // WHEN the server stops
    h.engine.stop();
    // THEN the run ends `interrupted` and releases the lock
    let item = run.await.unwrap().unwrap().history;
    assert_eq!(item.status, RunStatus::Failed);
    assert_eq!(item.error_code, Some(RunFailure::Interrupted));
    assert_eq!(h.store.current("orders", at(0)).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_failed_manual_backup_says_why_on_the_backup_itself() {
    // GIVEN a provider that finds too little free space
    let h = Harness::new(Script::Fail(ProviderErrorCode::InsufficientSpace));
    h.cluster("orders", "/srv/orders").await.unwrap();
    // WHEN a manual backup is made
    let id = h.manual("orders").await;
    // THEN the API's backup carries the code and the sentence
    let backup = h.engine.get_backup(&h.scope, &id).await.unwrap();
    assert_eq!(backup.status, BackupStatus::Defunct);
    assert_eq!(backup.error_code, Some(RunFailure::InsufficientSpace));
    let details = backup.details.unwrap();
    assert!(details.contains("9000 bytes"), "{details}");
    // AND the lock is free
    assert_eq!(h.store.current("orders", at(0)).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn what_a_provider_notes_reaches_the_history_and_the_backup() {
    let (h, item) = Harness::ran_orders_job(Script::SucceedWithNote).await;
    assert_eq!(item.status, RunStatus::Succeeded);
    assert_says(&item.details, "changed while it was copied");
    let backup = h
        .engine
        .get_backup(&h.scope, &item.linked_resource)
        .await
        .unwrap();
    assert!(backup.details.unwrap().contains("base/1"));
}

#[tokio::test(start_paused = true)]
async fn deleting_is_idempotent_and_a_delete_left_half_done_finishes_at_start_up() {
    let h = Harness::new(Script::SucceedWithNote);
    h.cluster("orders", "/srv/orders").await.unwrap();
    let a = h.manual("orders").await;
    let b = h.manual("orders").await;
    // WHEN a backup is deleted twice THEN both answer success and it is deleted once
    h.engine.delete_backup(&h.scope, &a).await.unwrap();
    h.engine.delete_backup(&h.scope, &a).await.unwrap();
    assert_eq!(h.provider.deletes.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.store.get_backup(&a).await.unwrap().unwrap().status,
        BackupStatus::Deleted
    );
    // GIVEN a delete that a process began and did not finish (the record says `deleting`)
    assert!(h
        .store
        .update_backup_status(&b, BackupStatus::Available, BackupStatus::Deleting)
        .await
        .unwrap());
    // WHEN the server starts again THEN it finishes the delete
    h.engine.recover_interrupted().await.unwrap();
    assert_eq!(
        h.store.get_backup(&b).await.unwrap().unwrap().status,
        BackupStatus::Deleted
    );
    assert_eq!(h.provider.deletes.load(Ordering::SeqCst), 2);
    // AND deleting it again by hand converges without another provider call
    h.engine.delete_backup(&h.scope, &b).await.unwrap();
    assert_eq!(h.provider.deletes.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_deleting_backup_deleted_again_converges_on_deleted() {
    let h = Harness::new(Script::SucceedWithNote);
    h.cluster("orders", "/srv/orders").await.unwrap();
    let a = h.manual("orders").await;
    assert!(h
        .store
        .update_backup_status(&a, BackupStatus::Available, BackupStatus::Deleting)
        .await
        .unwrap());
    h.engine.delete_backup(&h.scope, &a).await.unwrap();
    assert_eq!(
        h.store.get_backup(&a).await.unwrap().unwrap().status,
        BackupStatus::Deleted
    );
}

#[tokio::test(start_paused = true)]
async fn a_path_the_provider_refuses_is_a_400_with_its_own_code_and_changes_nothing() {
    let h = Harness::new(Script::SucceedWithNote);
    // WHEN a refused path is registered
    let err = h.cluster("etc", "/forbidden/etc").await.unwrap_err();
    // THEN the error has the policy's code, under `path`
    assert_eq!(err.code(), "path_not_allowed");
    assert!(err.fields()["path"].contains("choose a directory"));
    assert!(h
        .engine
        .list_clusters(&h.scope, &backup_engine::ListQuery::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test(start_paused = true)]
async fn clusters_list_shows_why_a_registered_path_now_breaks_the_policy() {
    let h = Harness::new(Script::SucceedWithNote);
    h.cluster("ok", "/srv/ok").await.unwrap();
    h.cluster("moved", "/srv/became-a-link").await.unwrap();
    let clusters = h
        .engine
        .list_clusters(&h.scope, &backup_engine::ListQuery::default())
        .await
        .unwrap()
        .items;
    let problem = |id: &str| {
        clusters
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .problem
            .clone()
    };
    assert_eq!(problem("ok"), None);
    assert!(problem("moved").unwrap().contains("now a link"));
}

#[tokio::test(start_paused = true)]
async fn a_backup_that_settles_later_is_settled_within_the_run() {
    // GIVEN a provider whose backups are started now and settle later
    // WHEN the job runs
    let (h, item) = Harness::ran_orders_job(Script::Pending(None)).await;
    // THEN the run waited for it to settle, and it is available where the provider put it
    assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
    assert_eq!(h.provider.polls.load(Ordering::SeqCst), 3);
    let backup = h.stored_backup(&item.linked_resource).await;
    assert_eq!(backup.status, BackupStatus::Available);
    assert_eq!(backup.location.as_deref(), Some("snap-1"));
    assert_eq!(h.store.current("orders", at(0)).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_backup_that_settles_as_failed_fails_the_run() {
    // GIVEN a provider whose started backup fails while it settles
    // WHEN the job runs THEN it fails with provider_error, and the backup is defunct
    let (h, item) = Harness::ran_orders_job(Script::Pending(Some("snapshot snap-1 failed"))).await;
    assert_eq!(item.status, RunStatus::Failed);
    assert_eq!(item.error_code, Some(RunFailure::ProviderError));
    assert_says(&item.details, "snapshot snap-1 failed");
    let backup = h.stored_backup(&item.linked_resource).await;
    assert_eq!(backup.status, BackupStatus::Defunct);
    assert_eq!(h.store.current("orders", at(0)).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_backup_made_at_once_is_not_polled() {
    // GIVEN a provider that completes its backups in `create`
    // WHEN the job runs THEN it succeeds without asking the provider to settle anything
    let (h, item) = Harness::ran_orders_job(Script::SucceedWithNote).await;
    assert_eq!(item.status, RunStatus::Succeeded);
    assert_eq!(h.provider.polls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn clusters_that_run_commands_exist_only_where_commands_are_allowed() {
    // GIVEN a command cluster and a directory cluster with a pre-hook
    let command = ClusterTarget::Command {
        path: "/srv/pg".into(),
        backup_command: "pg_basebackup -D \"$BACKUP_DIR\"".into(),
        restore_command: None,
        run_as: None,
        command_timeout_seconds: None,
    };
    let hooked = ClusterTarget::Directory {
        path: "/srv/pg".into(),
        pre_hook: Some("pg_ctl stop".into()),
        post_hook: None,
    };
    for (policy, says) in [
        (backup_engine::CommandPolicy::NeedsFlag, "--allow-commands"),
        (backup_engine::CommandPolicy::Unavailable, "AWS deployment"),
    ] {
        let h = Harness::new(Script::SucceedWithNote);
        let mut config = h.engine.config().clone();
        config.commands = policy;
        let engine = Engine::new(
            Ports::one_store(
                h.store.clone(),
                vec![h.provider.clone()],
                Arc::new(NoTriggers),
                Arc::new(ManualClock::new(at(0))),
            ),
            config,
        );
        for (target, field) in [(&command, "backupCommand"), (&hooked, "preHook")] {
            // WHEN it is registered where commands may not run
            let mut request = directory_cluster("pg", "Postgres", "/srv/pg");
            request.target = target.clone();
            let refused = engine.register_cluster(&h.scope, &request).await;
            // THEN it is refused on the field, with a code and what to do, and not stored
            let Err(backup_engine::EngineError::TargetRefused(problem)) = refused else {
                panic!("{policy:?}: {refused:?}")
            };
            assert_eq!(problem.field, field);
            assert_eq!(problem.code, backup_engine::engine::COMMANDS_NOT_ALLOWED);
            assert!(problem.message.contains(says), "{problem}");
            let stored = backup_engine::ports::ClusterStore::get_cluster(&h.store, "pg").await;
            assert!(stored.unwrap().is_none());
        }
    }
}
