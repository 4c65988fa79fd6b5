//! The kept answers of `GET …/jobs` (`EngineConfig::cache_job_lists`, the local server's
//! setting) are exactly what a fresh listing says, through every job write and as runs come
//! and go: checked against an engine on the same store that keeps nothing.

use std::sync::Arc;

use async_trait::async_trait;
use backup_core::api::{JobList, UpdateJobRequest};
use backup_engine::clock::ManualClock;
use backup_engine::contract::{at, cluster, scope};
use backup_engine::memory::MemoryStore;
use backup_engine::ports::{ClusterStore, TriggerScheduler};
use backup_engine::requests::hourly_job;
use backup_engine::writes::OneByOne;
use backup_engine::{Engine, EngineConfig, JobRecord, ListQuery, Ports, TriggerError};

/// Arms every schedule but `refused`.
struct Triggers {
    refused: &'static str,
}

#[async_trait]
impl TriggerScheduler for Triggers {
    async fn register(&self, job: &JobRecord) -> Result<(), TriggerError> {
        if job.schedule == self.refused {
            return Err(TriggerError::new(
                "the rule limit of the account is reached",
            ));
        }
        Ok(())
    }

    async fn remove(&self, _job_id: &str) -> Result<(), TriggerError> {
        Ok(())
    }
}

fn engine(store: &Arc<MemoryStore>, clock: &Arc<ManualClock>, cache: bool) -> Engine {
    Engine::new(
        Ports {
            store: store.clone(),
            lock: store.clone(),
            providers: Vec::new(),
            triggers: Arc::new(Triggers {
                refused: "17 3 * * *",
            }),
            retired_triggers: Vec::new(),
            clock: clock.clone(),
            ids: Arc::new(backup_engine::ids::RandomIds::default()),
            writes: Arc::new(OneByOne::over(store.clone())),
            pending: None,
            dispatch: None,
        },
        EngineConfig {
            cache_job_lists: cache,
            ..EngineConfig::default()
        },
    )
}

async fn answers_agree(kept: &Engine, fresh: &Engine, query: &ListQuery) -> JobList {
    let s = scope("o1");
    let cached = kept.list_jobs_json(&s, query).await.unwrap();
    let again = kept.list_jobs_json(&s, query).await.unwrap();
    let made = fresh.list_jobs_json(&s, query).await.unwrap();
    assert_eq!(cached, made, "the kept answer differs from a fresh one");
    assert_eq!(again, made);
    serde_json::from_slice(&made).unwrap()
}

#[tokio::test]
async fn kept_job_lists_follow_every_write_and_every_run() {
    let store = Arc::new(MemoryStore::new());
    assert!(store.insert_cluster(&cluster("c1", "o1")).await.unwrap());
    let clock = Arc::new(ManualClock::new(at(0) + chrono::Duration::seconds(7)));
    let kept = engine(&store, &clock, true);
    let fresh = engine(&store, &clock, false);
    let all = ListQuery::default();
    let first_two = ListQuery {
        limit: Some(2),
        next_token: None,
    };
    assert!(answers_agree(&kept, &fresh, &all).await.jobs.is_empty());

    // Writes through the caching engine.
    let mut ids = Vec::new();
    for i in 0..3 {
        let job = kept
            .create_job(
                &scope("o1"),
                &hourly_job("c1", &format!("{{cluster}} {i}"), 2),
            )
            .await
            .unwrap();
        ids.push(job.id);
        assert_eq!(answers_agree(&kept, &fresh, &all).await.jobs.len(), i + 1);
        answers_agree(&kept, &fresh, &first_two).await;
    }
    let patch: UpdateJobRequest =
        serde_json::from_value(serde_json::json!({"schedule": "5 */2 * * *"})).unwrap();
    kept.update_job(&scope("o1"), &ids[0], &patch)
        .await
        .unwrap();
    let listed = answers_agree(&kept, &fresh, &all).await;
    assert!(listed.jobs.iter().any(|j| j.schedule == "5 */2 * * *"));
    kept.delete_job(&scope("o1"), &ids[1]).await.unwrap();
    answers_agree(&kept, &fresh, &all).await;
    // A job whose trigger cannot be armed is removed again: the list never keeps it.
    let mut refused = hourly_job("c1", "{cluster}", 2);
    refused.schedule = Some("17 3 * * *".into());
    assert!(kept.create_job(&scope("o1"), &refused).await.is_err());
    assert_eq!(answers_agree(&kept, &fresh, &all).await.jobs.len(), 3);

    // Time: the answers move on as the first listed run comes, and not before.
    for minutes in [1, 59, 60, 61, 125, 24 * 60, 24 * 60 + 1] {
        clock.set(at(minutes));
        answers_agree(&kept, &fresh, &all).await;
        answers_agree(&kept, &fresh, &first_two).await;
    }

    // Writes through another engine on the same store are what the setting rules out:
    // the kept answer does not see them until its first run comes.
    fresh.delete_job(&scope("o1"), &ids[2]).await.unwrap();
    let s = scope("o1");
    let stale: JobList =
        serde_json::from_slice(&kept.list_jobs_json(&s, &all).await.unwrap()).unwrap();
    let now: JobList =
        serde_json::from_slice(&fresh.list_jobs_json(&s, &all).await.unwrap()).unwrap();
    assert_ne!(stale, now, "only one writer of jobs may keep their lists");
}
