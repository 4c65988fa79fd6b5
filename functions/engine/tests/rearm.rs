//! Moving every job's trigger to the deployment's kind (SPEC §16, `backupctl jobs rearm`):
//! the new trigger is armed before the old one goes, page by page, all jobs in the end; a
//! job that cannot be moved keeps its old trigger; deleting a job removes both kinds. The
//! two kinds are recording trigger schedulers over the in-memory store, since what is under
//! test is the engine's order of calls, not EventBridge (the AWS adapters' tests do that).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use backup_core::api::ClusterTarget;
use backup_engine::clock::ManualClock;
use backup_engine::memory::MemoryStore;
use backup_engine::ports::{ClusterStore, TriggerScheduler};
use backup_engine::requests::hourly_job;
use backup_engine::writes::OneByOne;
use backup_engine::{
    ClusterRecord, Engine, EngineConfig, EngineError, JobRecord, Ports, Rearmed, Scope,
    TriggerError,
};
use chrono::{DateTime, Utc};

/// What every trigger scheduler of a test did, in order: `("rules", "register", job)`.
type Log = Arc<Mutex<Vec<(&'static str, &'static str, String)>>>;

/// A trigger kind that keeps the jobs it armed and logs each call; it refuses to arm the
/// job `refuse`, if set.
struct Kind {
    name: &'static str,
    armed: Mutex<BTreeSet<String>>,
    refuse: Mutex<Option<String>>,
    /// A refused `register` also drops what the job had, as EventBridge rules' undo does
    /// (a new job leaves nothing behind); `rearm` then keeps it, as theirs does.
    forgets_on_failure: Mutex<bool>,
    log: Log,
}

impl Kind {
    fn new(name: &'static str, log: &Log) -> Arc<Kind> {
        Arc::new(Kind {
            name,
            armed: Mutex::new(BTreeSet::new()),
            refuse: Mutex::new(None),
            forgets_on_failure: Mutex::new(false),
            log: log.clone(),
        })
    }

    fn armed(&self) -> BTreeSet<String> {
        self.armed.lock().unwrap().clone()
    }
}

#[async_trait]
impl TriggerScheduler for Kind {
    async fn register(&self, job: &JobRecord) -> Result<(), TriggerError> {
        self.log
            .lock()
            .unwrap()
            .push((self.name, "register", job.id.clone()));
        if self.refuse.lock().unwrap().as_deref() == Some(job.id.as_str()) {
            if *self.forgets_on_failure.lock().unwrap() {
                self.armed.lock().unwrap().remove(&job.id);
            }
            return Err(TriggerError::new("the schedule group does not exist"));
        }
        self.armed.lock().unwrap().insert(job.id.clone());
        Ok(())
    }

    async fn rearm(&self, old: &JobRecord, new: &JobRecord) -> Result<(), TriggerError> {
        if !*self.forgets_on_failure.lock().unwrap() {
            // The trait's default: register the new, the old again on failure.
            return match self.register(new).await {
                Err(e) => {
                    let _ = self.register(old).await;
                    Err(e)
                }
                ok => ok,
            };
        }
        self.log
            .lock()
            .unwrap()
            .push((self.name, "rearm", new.id.clone()));
        if self.refuse.lock().unwrap().as_deref() == Some(new.id.as_str()) {
            return Err(TriggerError::new("throttled"));
        }
        self.armed.lock().unwrap().insert(new.id.clone());
        Ok(())
    }

    async fn remove(&self, job_id: &str) -> Result<(), TriggerError> {
        self.log
            .lock()
            .unwrap()
            .push((self.name, "remove", job_id.to_owned()));
        self.armed.lock().unwrap().remove(job_id);
        Ok(())
    }
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap()
}

fn scope() -> Scope {
    Scope::new("default", "default").unwrap()
}

/// An engine over `store` whose jobs are armed by `current`, with `retired` kinds.
fn engine(
    store: &Arc<MemoryStore>,
    current: &Arc<Kind>,
    retired: Vec<Arc<dyn TriggerScheduler>>,
) -> Engine {
    Engine::new(
        Ports {
            store: store.clone(),
            lock: store.clone(),
            providers: Vec::new(),
            triggers: current.clone(),
            retired_triggers: retired,
            clock: Arc::new(ManualClock::new(at(0))),
            ids: Arc::new(backup_engine::ids::RandomIds::default()),
            writes: Arc::new(OneByOne::over(store.clone())),
            pending: None,
            dispatch: None,
        },
        EngineConfig::default(),
    )
}

/// A store with a cluster and `n` jobs armed as rules; the rules, the schedules and the log.
async fn jobs_on_rules(n: usize) -> (Arc<MemoryStore>, Arc<Kind>, Arc<Kind>, Log, Vec<String>) {
    let store = Arc::new(MemoryStore::new());
    store
        .insert_cluster(&ClusterRecord {
            server: Default::default(),
            status: Default::default(),
            details: None,
            source_backup_id: None,
            id: "orders".into(),
            scope: scope(),
            description: "Orders".into(),
            region: "local".into(),
            target: ClusterTarget::directory("/srv/orders"),
            created: at(0),
        })
        .await
        .unwrap();
    let log: Log = Arc::default();
    let rules = Kind::new("rules", &log);
    let schedules = Kind::new("schedules", &log);
    let before = engine(&store, &rules, Vec::new());
    let mut ids = Vec::new();
    for _ in 0..n {
        let job = before
            .create_job(&scope(), &hourly_job("orders", "{cluster}", 2))
            .await
            .unwrap();
        ids.push(job.id);
    }
    ids.sort();
    log.lock().unwrap().clear();
    (store, rules, schedules, log, ids)
}

#[tokio::test]
async fn rearm_moves_every_job_page_by_page_arming_the_new_trigger_before_removing_the_old() {
    // GIVEN three jobs armed as rules, and the deployment switched to schedules
    let (store, rules, schedules, log, ids) = jobs_on_rules(3).await;
    let after = engine(&store, &schedules, vec![rules.clone()]);
    // WHEN jobs are re-armed two at a time
    let first = after.rearm_jobs(None, 2).await.unwrap();
    // THEN the first page moved the first two jobs and says where the next one starts
    assert_eq!(
        first,
        Rearmed {
            jobs: ids[..2].to_vec(),
            next: Some(ids[1].clone())
        }
    );
    let second = after.rearm_jobs(first.next.as_deref(), 2).await.unwrap();
    assert_eq!(
        second,
        Rearmed {
            jobs: ids[2..].to_vec(),
            next: None
        }
    );
    // AND every job has a schedule and no rule
    assert_eq!(schedules.armed(), ids.iter().cloned().collect());
    assert!(rules.armed().is_empty(), "{:?}", rules.armed());
    // AND each job's schedule was made before its rule was removed (never without one)
    let log = log.lock().unwrap().clone();
    let expected: Vec<_> = ids
        .iter()
        .flat_map(|id| {
            [
                ("schedules", "register", id.clone()),
                ("rules", "remove", id.clone()),
            ]
        })
        .collect();
    assert_eq!(log, expected);

    // WHEN it runs again THEN it is harmless: the same jobs, still on schedules
    let again = after.rearm_jobs(None, 100).await.unwrap();
    assert_eq!(again.jobs, ids);
    assert_eq!(schedules.armed().len(), 3);

    // WHEN the deployment switches back to rules and re-arms THEN every job is a rule again
    let back = engine(&store, &rules, vec![schedules.clone()]);
    back.rearm_jobs(None, 100).await.unwrap();
    assert_eq!(rules.armed(), ids.iter().cloned().collect());
    assert!(schedules.armed().is_empty());
}

#[tokio::test]
async fn a_job_that_cannot_be_moved_keeps_its_old_trigger_and_stops_the_page() {
    let (store, rules, schedules, _log, ids) = jobs_on_rules(3).await;
    let after = engine(&store, &schedules, vec![rules.clone()]);
    // GIVEN the second job's schedule cannot be made
    *schedules.refuse.lock().unwrap() = Some(ids[1].clone());
    // WHEN jobs are re-armed
    let err = after.rearm_jobs(None, 100).await.unwrap_err();
    // THEN the error names the job and what was moved, and says the job keeps its rule
    let EngineError::Trigger(e) = &err else {
        panic!("a trigger error: {err:?}")
    };
    assert!(e.message.contains(&ids[1]), "{e}");
    assert!(e.message.contains("1 moved before it"), "{e}");
    assert!(
        e.message.contains("the schedule group does not exist"),
        "{e}"
    );
    // AND the first job moved, the second and third still fire by their rules
    assert_eq!(schedules.armed(), [ids[0].clone()].into());
    assert_eq!(rules.armed(), [ids[1].clone(), ids[2].clone()].into());
    // WHEN the cause is fixed and it runs again THEN every job moves
    *schedules.refuse.lock().unwrap() = None;
    after.rearm_jobs(None, 100).await.unwrap();
    assert_eq!(schedules.armed().len(), 3);
    assert!(rules.armed().is_empty());
}

#[tokio::test]
async fn a_job_already_on_the_new_kind_that_fails_to_move_keeps_its_trigger() {
    // GIVEN jobs already armed as rules (the current kind, whose failed `register` drops a
    // job's rules), and one of them failing to arm
    let (store, rules, _schedules, _log, ids) = jobs_on_rules(2).await;
    *rules.forgets_on_failure.lock().unwrap() = true;
    *rules.refuse.lock().unwrap() = Some(ids[0].clone());
    let again = engine(&store, &rules, Vec::new());
    // WHEN jobs are re-armed
    let err = again.rearm_jobs(None, 100).await.unwrap_err();
    // THEN it fails, and the job still has its rules: it keeps firing
    assert!(matches!(err, EngineError::Trigger(_)), "{err:?}");
    assert_eq!(rules.armed(), ids.iter().cloned().collect());
}

#[tokio::test]
async fn deleting_a_job_not_yet_moved_removes_its_old_trigger_too() {
    let (store, rules, schedules, _log, ids) = jobs_on_rules(1).await;
    let after = engine(&store, &schedules, vec![rules.clone()]);
    // WHEN a job still armed as a rule is deleted after the switch
    after.delete_job(&scope(), &ids[0]).await.unwrap();
    // THEN it fires by neither kind, and re-arming skips it
    assert!(rules.armed().is_empty());
    assert!(schedules.armed().is_empty());
    let page = after.rearm_jobs(None, 100).await.unwrap();
    assert_eq!(
        page,
        Rearmed {
            jobs: Vec::new(),
            next: None
        }
    );
}

#[tokio::test]
async fn a_page_size_or_token_out_of_shape_is_invalid_input() {
    let (store, rules, schedules, _log, _ids) = jobs_on_rules(0).await;
    let after = engine(&store, &schedules, vec![rules]);
    for limit in [0, 101] {
        let err = after.rearm_jobs(None, limit).await.unwrap_err();
        assert!(err.fields().contains_key("limit"), "{err:?}");
    }
    let err = after.rearm_jobs(Some("../x"), 10).await.unwrap_err();
    assert!(err.fields().contains_key("nextToken"), "{err:?}");
}
