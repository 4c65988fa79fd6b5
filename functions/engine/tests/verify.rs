//! Verify's decisions (SPEC §14) that do not depend on a provider's check: which backups
//! may be verified, what is stored and answered, what a provider's failure answers, and
//! that a verify neither takes nor waits for the cluster's lock. The store is the in-memory
//! one (it passes the same contract as SQLite and DynamoDB); the provider is scripted,
//! because the check itself is the directory provider's, tested on real files in
//! `backup-local`'s `tests/directory.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use backup_core::api::{
    LockClusterRequest, Verification, VerificationStatus, VerifyProblem, VerifyResponse,
};
use backup_core::retention::BackupStatus;
use backup_engine::clock::ManualClock;
use backup_engine::memory::MemoryStore;
use backup_engine::ports::{BackupProvider, BackupStore, ClusterLock, TriggerScheduler};
use backup_engine::requests::directory_cluster;
use backup_engine::{
    BackupEntry, BackupHandle, BackupRequest, Creation, Engine, EngineConfig, EngineError,
    ErrorKind, JobRecord, Ports, ProviderError, ProviderStatus, Scope, TriggerError,
};
use chrono::{DateTime, Duration, Utc};

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap()
}

/// What the scripted provider's `verify` answers.
#[derive(Clone)]
enum Script {
    /// These problems (none: the backup is whole).
    Found(Vec<VerifyProblem>),
    /// The check cannot be made.
    Fail,
    /// The backup is deleted while the check runs (a prune racing the verify); then these
    /// problems.
    DeletedMeanwhile(Vec<VerifyProblem>),
}

struct Scripted {
    script: Mutex<Script>,
    store: MemoryStore,
    verifies: AtomicUsize,
    /// The handle of the last verify.
    seen: Mutex<Option<BackupHandle>>,
}

#[async_trait]
impl BackupProvider for Scripted {
    fn kind(&self) -> &'static str {
        "directory"
    }

    fn planned_location(&self, request: &BackupRequest) -> String {
        format!("/backups/{}", request.backup_id)
    }

    async fn create(&self, _: &BackupRequest) -> Result<Creation, ProviderError> {
        Err(ProviderError::new("backups are not made in these tests"))
    }

    async fn status(&self, _: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        Ok(ProviderStatus::Available)
    }

    async fn delete(&self, _: &BackupHandle) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn verify(&self, handle: &BackupHandle) -> Result<Vec<VerifyProblem>, ProviderError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        *self.seen.lock().unwrap() = Some(handle.clone());
        let script = self.script.lock().unwrap().clone();
        match script {
            Script::Found(problems) => Ok(problems),
            Script::Fail => Err(ProviderError::new(
                "cannot open /backups/b: permission denied",
            )),
            Script::DeletedMeanwhile(problems) => {
                assert!(self
                    .store
                    .update_backup_status(
                        &handle.backup_id,
                        BackupStatus::Available,
                        BackupStatus::Deleting
                    )
                    .await
                    .unwrap());
                Ok(problems)
            }
        }
    }
}

/// A provider of another kind that has no verify of its own.
struct NoVerify;

#[async_trait]
impl BackupProvider for NoVerify {
    fn kind(&self) -> &'static str {
        "aws-ebs"
    }

    fn planned_location(&self, request: &BackupRequest) -> String {
        request.backup_id.clone()
    }

    async fn create(&self, _: &BackupRequest) -> Result<Creation, ProviderError> {
        Err(ProviderError::new("not in these tests"))
    }

    async fn status(&self, _: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        Ok(ProviderStatus::Available)
    }

    async fn delete(&self, _: &BackupHandle) -> Result<(), ProviderError> {
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

struct Harness {
    engine: Engine,
    store: MemoryStore,
    provider: Arc<Scripted>,
    scope: Scope,
}

const B1: &str = "c196ogto0aeqohe3ommq";

fn problem(path: &str, problem: &str) -> VerifyProblem {
    VerifyProblem {
        path: path.to_owned(),
        problem: problem.to_owned(),
    }
}

impl Harness {
    /// An engine whose clock reads `at(5)` and half a second, with the cluster `orders`
    /// and its backup [`B1`] in `status`.
    async fn new(script: Script, status: BackupStatus) -> Harness {
        let store = MemoryStore::new();
        let provider = Arc::new(Scripted {
            script: Mutex::new(script),
            store: store.clone(),
            verifies: AtomicUsize::new(0),
            seen: Mutex::new(None),
        });
        let clock = Arc::new(ManualClock::new(at(5) + Duration::milliseconds(500)));
        let ports = Ports::one_store(
            store.clone(),
            vec![provider.clone(), Arc::new(NoVerify)],
            Arc::new(NoTriggers),
            clock,
        );
        let engine = Engine::new(ports, EngineConfig::default());
        let scope = Scope::new("default", "default").unwrap();
        engine
            .register_cluster(
                &scope,
                &directory_cluster("orders", "Orders", "/srv/orders"),
            )
            .await
            .unwrap();
        let h = Harness {
            engine,
            store,
            provider,
            scope,
        };
        h.insert(B1, "directory", status).await;
        h
    }

    async fn insert(&self, id: &str, provider: &str, status: BackupStatus) {
        let backup = BackupEntry {
            id: id.to_owned(),
            scope: self.scope.clone(),
            job_id: None,
            cluster_id: "orders".to_owned(),
            cluster_description: "Orders".to_owned(),
            provider: provider.to_owned(),
            description: "Orders by hand".to_owned(),
            created: at(0),
            status,
            index: 1,
            location: Some(format!("/backups/{id}")),
            error_code: None,
            details: None,
            size_bytes: Some(4096),
            verification: None,
        };
        assert!(self.store.insert_backup(&backup).await.unwrap());
    }

    async fn verify(&self, id: &str) -> Result<VerifyResponse, EngineError> {
        self.engine.verify_backup(&self.scope, id).await
    }

    async fn stored(&self, id: &str) -> Option<Verification> {
        self.store
            .get_backup(id)
            .await
            .unwrap()
            .unwrap()
            .verification
    }

    fn verifies(&self) -> usize {
        self.provider.verifies.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_whole_backup_verifies_ok_and_the_result_is_stored_with_it() {
    // GIVEN an available backup its provider finds whole
    let h = Harness::new(Script::Found(Vec::new()), BackupStatus::Available).await;
    // WHEN it is verified
    let answer = h.verify(B1).await.unwrap();
    // THEN the answer is ok, checked now (in whole seconds, as the API shows instants)
    assert_eq!(
        answer,
        VerifyResponse {
            backup_id: B1.into(),
            status: VerificationStatus::Ok,
            checked_at: at(5),
            problems: Vec::new(),
        }
    );
    // AND the provider was asked about the backup where it is recorded
    let seen = h.provider.seen.lock().unwrap().clone().unwrap();
    assert_eq!(seen.backup_id, B1);
    assert_eq!(seen.location, format!("/backups/{B1}"));
    // AND the backup shows it, as `verifiedAt` and `verification`, and is otherwise as it was
    let backup = h.engine.get_backup(&h.scope, B1).await.unwrap();
    assert_eq!(backup.verified_at, Some(at(5)));
    assert_eq!(
        backup.verification,
        Some(Verification {
            status: VerificationStatus::Ok,
            checked_at: at(5),
            problems: Vec::new(),
        })
    );
    assert_eq!(backup.status, BackupStatus::Available);
    let json = serde_json::to_value(&backup).unwrap();
    assert_eq!(json["verifiedAt"], "2026-11-27T05:05:00Z");
    assert_eq!(json["verification"]["status"], "ok");
}

#[tokio::test]
async fn a_damaged_backup_is_an_answer_that_says_failed_not_an_error() {
    // GIVEN a backup whose provider finds a flipped byte and an extra file
    let found = vec![
        problem(
            "base/1/1234",
            "the content does not match its BLAKE3 checksum",
        ),
        problem("stray", "a file that is not in the manifest"),
    ];
    let h = Harness::new(Script::Found(found.clone()), BackupStatus::Available).await;
    // WHEN it is verified THEN the answer says failed, naming each file
    let answer = h.verify(B1).await.unwrap();
    assert_eq!(answer.status, VerificationStatus::Failed);
    assert_eq!(answer.problems, found);
    // AND that is stored too, and the backup stays available (a verify changes nothing of it)
    let stored = h.stored(B1).await.unwrap();
    assert_eq!(stored.status, VerificationStatus::Failed);
    assert_eq!(stored.problems, found);
    let backup = h.store.get_backup(B1).await.unwrap().unwrap();
    assert_eq!(backup.status, BackupStatus::Available);
    // WHEN it is repaired and verified again THEN the new result replaces the old one
    *h.provider.script.lock().unwrap() = Script::Found(Vec::new());
    assert_eq!(h.verify(B1).await.unwrap().status, VerificationStatus::Ok);
    assert_eq!(h.stored(B1).await.unwrap().problems, Vec::new());
}

#[tokio::test]
async fn only_an_available_backup_is_verified() {
    for status in [
        BackupStatus::Creating,
        BackupStatus::Defunct,
        BackupStatus::Deleting,
        BackupStatus::Deleted,
    ] {
        // GIVEN a backup in another state
        let h = Harness::new(Script::Found(Vec::new()), status).await;
        // WHEN it is verified THEN 409 `backup_not_available`, naming its state
        let error = h.verify(B1).await.unwrap_err();
        assert_eq!(error.code(), "backup_not_available", "{status}");
        assert_eq!(error.kind(), ErrorKind::Conflict);
        let text = error.to_string();
        assert!(text.contains(&format!("is {status}")), "{text}");
        assert!(
            text.contains("only an available backup can be verified"),
            "{text}"
        );
        // AND the provider was not asked and nothing is stored
        assert_eq!(h.verifies(), 0);
        assert_eq!(h.stored(B1).await, None);
    }
}

#[tokio::test]
async fn a_backup_of_another_project_or_none_is_not_found_and_a_bad_id_is_invalid() {
    let h = Harness::new(Script::Found(Vec::new()), BackupStatus::Available).await;
    let elsewhere = Scope::new("default", "other").unwrap();
    let error = h.engine.verify_backup(&elsewhere, B1).await.unwrap_err();
    assert_eq!(error.code(), "backup_not_found");
    let error = h.verify("c196ogto0aeqohe3ommr").await.unwrap_err();
    assert_eq!(error.code(), "backup_not_found");
    let error = h.verify("../etc").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert_eq!(h.verifies(), 0);
}

#[tokio::test]
async fn a_check_that_cannot_be_made_is_a_provider_error_and_keeps_the_last_result() {
    // GIVEN a backup verified ok once
    let h = Harness::new(Script::Found(Vec::new()), BackupStatus::Available).await;
    let first = h.verify(B1).await.unwrap();
    // WHEN its provider cannot make the check
    *h.provider.script.lock().unwrap() = Script::Fail;
    let error = h.verify(B1).await.unwrap_err();
    // THEN the answer is `provider_error` (502), saying why
    assert_eq!(error.code(), "provider_error");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.to_string().contains("permission denied"), "{error}");
    // AND the last result stays, since nothing was learnt
    assert_eq!(h.stored(B1).await.unwrap().checked_at, first.checked_at);
}

#[tokio::test]
async fn a_provider_without_a_verify_says_it_cannot() {
    // GIVEN a backup whose provider has no verify of its own
    let h = Harness::new(Script::Found(Vec::new()), BackupStatus::Available).await;
    let b2 = "c196ogto0aeqohe3omm2";
    h.insert(b2, "aws-ebs", BackupStatus::Available).await;
    // WHEN it is verified THEN a provider error says it cannot, and nothing is stored
    let error = h.verify(b2).await.unwrap_err();
    assert_eq!(error.code(), "provider_error");
    assert!(
        error.to_string().contains("cannot verify backups"),
        "{error}"
    );
    assert_eq!(h.stored(b2).await, None);
}

#[tokio::test]
async fn a_verify_neither_takes_nor_waits_for_the_clusters_lock() {
    // GIVEN the backup's cluster locked by an operator (a run's lock is the same lock)
    let h = Harness::new(Script::Found(Vec::new()), BackupStatus::Available).await;
    let lock = h
        .engine
        .lock_cluster(
            &h.scope,
            "orders",
            &LockClusterRequest {
                operation: "expand-disk".into(),
                ttl_seconds: Some(3600),
            },
        )
        .await
        .unwrap();
    // WHEN the backup is verified THEN it is, at once
    assert_eq!(h.verify(B1).await.unwrap().status, VerificationStatus::Ok);
    // AND the lock is the operator's as it was
    let now = h.store.current("orders", at(5)).await.unwrap();
    assert_eq!(now, Some(lock));
}

#[tokio::test]
async fn a_backup_deleted_while_it_is_verified_keeps_no_result() {
    // GIVEN a backup that a prune deletes while the provider checks it (so files vanish)
    let h = Harness::new(
        Script::DeletedMeanwhile(vec![problem("base/1", "missing from the copy")]),
        BackupStatus::Available,
    )
    .await;
    // WHEN it is verified THEN the answer is that it is no longer available
    let error = h.verify(B1).await.unwrap_err();
    assert_eq!(error.code(), "backup_not_available");
    assert!(error.to_string().contains("is deleting"), "{error}");
    // AND no result made of vanishing files is stored
    assert_eq!(h.stored(B1).await, None);
}
