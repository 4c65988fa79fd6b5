//! Updating a job in place (SPEC §17): checked as a new job is, every problem at once; its
//! cluster cannot change; a new schedule is armed all or nothing; its id, backups and
//! history stay; a deleted job cannot change. And creating a job under a chosen id (what the
//! CloudFormation resource does) is idempotent. The trigger scheduler is a recording one
//! over the in-memory store: what is under test is the engine's order of calls (the AWS
//! adapters' tests arm real rules and schedules).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use backup_core::api::{JobStatus, UpdateJobRequest};
use backup_engine::clock::ManualClock;
use backup_engine::contract::{at, backup, cluster, scope};
use backup_engine::memory::MemoryStore;
use backup_engine::ports::{BackupStore, ClusterStore, JobStore, TriggerScheduler};
use backup_engine::requests::hourly_job;
use backup_engine::writes::OneByOne;
use backup_engine::{
    BackupFilter, Engine, EngineConfig, EngineError, JobRecord, ListQuery, NamedCreation, Ports,
    TriggerError,
};

/// Armed jobs and their schedules; refuses to arm the schedule `refuse`, if set.
#[derive(Default)]
struct Triggers {
    armed: Mutex<BTreeMap<String, String>>,
    refuse: Mutex<Option<String>>,
    calls: Mutex<Vec<String>>,
}

impl Triggers {
    fn armed(&self) -> BTreeMap<String, String> {
        self.armed.lock().unwrap().clone()
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl TriggerScheduler for Triggers {
    async fn register(&self, job: &JobRecord) -> Result<(), TriggerError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("register {}", job.schedule));
        if self.refuse.lock().unwrap().as_deref() == Some(job.schedule.as_str()) {
            return Err(TriggerError::new(
                "the rule limit of the account is reached",
            ));
        }
        self.armed
            .lock()
            .unwrap()
            .insert(job.id.clone(), job.schedule.clone());
        Ok(())
    }

    async fn remove(&self, job_id: &str) -> Result<(), TriggerError> {
        self.calls.lock().unwrap().push(format!("remove {job_id}"));
        self.armed.lock().unwrap().remove(job_id);
        Ok(())
    }
}

struct World {
    engine: Engine,
    store: Arc<MemoryStore>,
    triggers: Arc<Triggers>,
}

/// An engine with the cluster `c1` registered in `o1`.
async fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    assert!(store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    let triggers = Arc::new(Triggers::default());
    let engine = Engine::new(
        Ports {
            store: store.clone(),
            lock: store.clone(),
            providers: Vec::new(),
            triggers: triggers.clone(),
            retired_triggers: Vec::new(),
            clock: Arc::new(ManualClock::new(at(0))),
            ids: Arc::new(backup_engine::ids::RandomIds::default()),
            writes: Arc::new(OneByOne::over(store.clone())),
            pending: None,
            dispatch: None,
        },
        EngineConfig::default(),
    );
    World {
        engine,
        store,
        triggers,
    }
}

fn patch(json: serde_json::Value) -> UpdateJobRequest {
    serde_json::from_value(json).unwrap()
}

#[tokio::test]
async fn an_update_changes_the_job_in_place_and_keeps_its_backups_and_history() {
    let w = world().await;
    let job = w
        .engine
        .create_job(&scope("o1"), &hourly_job("c1", "{cluster}", 2))
        .await
        .unwrap();
    let made = backup("b1", "o1", Some(&job.id), "c1", at(1));
    assert!(w.store.insert_backup(&made).await.unwrap());
    // WHEN every changeable field is patched, the cluster named again as it is
    let updated = w
        .engine
        .update_job(
            &scope("o1"),
            &job.id,
            &patch(serde_json::json!({
                "description": "Nightly orders",
                "schedule": "0 3 * * *",
                "data": {"clusterId": "c1", "description": "{cluster} nightly", "maxBackupCount": 7}
            })),
        )
        .await
        .unwrap();
    // THEN the job keeps its id and cluster and has the new values, read back too
    assert_eq!(updated.id, job.id);
    assert_eq!(updated.description, "Nightly orders");
    assert_eq!(updated.schedule, "0 3 * * *");
    assert_eq!(updated.data.description, "{cluster} nightly");
    assert_eq!(updated.data.max_backup_count, 7);
    assert_eq!(updated.data.cluster_id, "c1");
    assert_eq!(updated.created, job.created);
    assert_eq!(updated.next_runs[0], "2026-11-28T03:00:00Z");
    assert_eq!(
        w.engine.get_job(&scope("o1"), &job.id).await.unwrap(),
        updated
    );
    // AND its trigger fires on the new schedule
    assert_eq!(w.triggers.armed()[&job.id], "0 3 * * *");
    // AND its backups stay its own
    let filter = BackupFilter {
        job_id: Some(job.id.clone()),
        cluster_id: None,
    };
    let backups = w
        .engine
        .list_backups(&scope("o1"), &filter, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(backups.items.len(), 1);
    assert_eq!(backups.items[0].id, "b1");

    // WHEN only the retention changes THEN the trigger is left alone
    let calls = w.triggers.calls().len();
    let kept = w
        .engine
        .update_job(
            &scope("o1"),
            &job.id,
            &patch(serde_json::json!({"data": {"maxBackupCount": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(kept.data.max_backup_count, 3);
    assert_eq!(kept.schedule, "0 3 * * *");
    assert_eq!(w.triggers.calls().len(), calls);
}

#[tokio::test]
async fn a_bad_update_reports_every_problem_and_changes_nothing() {
    let w = world().await;
    let job = w
        .engine
        .create_job(&scope("o1"), &hourly_job("c1", "{cluster}", 2))
        .await
        .unwrap();
    let before = w.store.get_job(&job.id).await.unwrap();
    // WHEN the patch has a schedule too frequent, a bad template and another cluster
    let err = w
        .engine
        .update_job(
            &scope("o1"),
            &job.id,
            &patch(serde_json::json!({
                "schedule": "*/30 * * * *",
                "data": {"clusterId": "c2", "description": "{nope}"}
            })),
        )
        .await
        .unwrap_err();
    // THEN it is a 400 naming each field, with the core's codes
    assert_eq!(err.code(), "validation");
    let problems = err.problems();
    assert_eq!(problems["schedule"][0].code, "too_frequent");
    assert_eq!(problems["data.description"][0].code, "unknown_placeholder");
    assert!(
        problems["data.clusterId"][0]
            .message
            .contains("create a new job"),
        "{problems:?}"
    );
    // AND nothing changed, the trigger untouched
    assert_eq!(w.store.get_job(&job.id).await.unwrap(), before);
    assert_eq!(w.triggers.armed()[&job.id], "0 * * * *");
    // AND an unknown field is refused by the body's own type
    let unknown: Result<UpdateJobRequest, _> =
        serde_json::from_value(serde_json::json!({"maxBackupCnt": 3}));
    assert!(unknown.is_err());
}

#[tokio::test]
async fn a_schedule_that_cannot_be_armed_leaves_the_job_on_its_old_one() {
    let w = world().await;
    let job = w
        .engine
        .create_job(&scope("o1"), &hourly_job("c1", "{cluster}", 2))
        .await
        .unwrap();
    *w.triggers.refuse.lock().unwrap() = Some("0 3 * * *".into());
    // WHEN arming the new schedule fails
    let err = w
        .engine
        .update_job(
            &scope("o1"),
            &job.id,
            &patch(serde_json::json!({"schedule": "0 3 * * *", "description": "changed"})),
        )
        .await
        .unwrap_err();
    // THEN the request fails with the trigger's error
    assert_eq!(err.code(), "trigger_error");
    assert!(err.to_string().contains("rule limit"), "{err}");
    // AND the job keeps its old schedule, description and trigger
    let stored = w.store.get_job(&job.id).await.unwrap().unwrap();
    assert_eq!(stored.schedule, "0 * * * *");
    assert_eq!(stored.description, "hourly");
    assert_eq!(w.triggers.armed()[&job.id], "0 * * * *");
    // AND the new one was tried first, then the old armed again
    let calls = w.triggers.calls();
    assert_eq!(
        calls[calls.len() - 2..],
        ["register 0 3 * * *", "register 0 * * * *"]
    );
}

#[tokio::test]
async fn a_deleted_or_foreign_job_cannot_be_updated() {
    let w = world().await;
    let job = w
        .engine
        .create_job(&scope("o1"), &hourly_job("c1", "{cluster}", 2))
        .await
        .unwrap();
    let change = patch(serde_json::json!({"schedule": "0 3 * * *"}));
    // WHEN another project asks THEN the job is not found there
    let err = w
        .engine
        .update_job(&scope("o2"), &job.id, &change)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::JobNotFound(_)), "{err}");
    // WHEN the job is deleted THEN it cannot change (409, as for "run now") and stays disarmed
    w.engine.delete_job(&scope("o1"), &job.id).await.unwrap();
    let err = w
        .engine
        .update_job(&scope("o1"), &job.id, &change)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::JobDeleted(_)), "{err}");
    assert!(err.to_string().contains("create a new job"), "{err}");
    let stored = w.store.get_job(&job.id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Deleted);
    assert_eq!(stored.schedule, "0 * * * *");
    assert!(w.triggers.armed().is_empty());
}

#[tokio::test]
async fn creating_under_a_chosen_id_twice_makes_one_job() {
    let w = world().await;
    let id = "c196ogto0aeqohe3ommq";
    let request = hourly_job("c1", "{cluster}", 2);
    // WHEN the same creation arrives twice
    let first = w
        .engine
        .create_job_with_id(&scope("o1"), &request, id)
        .await
        .unwrap();
    let again = w
        .engine
        .create_job_with_id(&scope("o1"), &request, id)
        .await
        .unwrap();
    // THEN the first made the job and the second answers it
    let NamedCreation::Created(made) = first else {
        panic!("not created: {first:?}")
    };
    assert_eq!(made.id, id);
    assert_eq!(again, NamedCreation::Existing(made));
    assert_eq!(w.store.list_active_jobs().await.unwrap().len(), 1);
    assert_eq!(w.triggers.armed()[id], "0 * * * *");
    // WHEN the id is a deleted job's, or asked from another project THEN nothing is done
    w.engine.delete_job(&scope("o1"), id).await.unwrap();
    let taken = w
        .engine
        .create_job_with_id(&scope("o1"), &request, id)
        .await
        .unwrap();
    assert_eq!(taken, NamedCreation::Taken);
    // AND an invalid job under a new id is refused with every problem, nothing made
    let mut bad = request.clone();
    bad.schedule = Some("*/5 * * * *".into());
    let err = w
        .engine
        .create_job_with_id(&scope("o1"), &bad, "c196ogto0aeqohe3ommr")
        .await
        .unwrap_err();
    assert_eq!(err.problems()["schedule"][0].code, "too_frequent");
    assert_eq!(w.store.get_job("c196ogto0aeqohe3ommr").await.unwrap(), None);
}
