//! `job-resource` (the custom resource `Custom::ScheduledBackupJob`) as a process behind the
//! Runtime API emulator, fed CloudFormation's Create, Update and Delete requests
//! (`fixtures/cfn-*.json`), its AWS clients pointed at moto through the counting proxy, and
//! answering to a loopback HTTP server that stands in for the pre-signed `ResponseURL`. Run
//! through scripts/test-aws.sh, which starts moto_server and passes `--include-ignored`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::put;
use axum::Router;
use backup_core::api::{ClusterTarget, JobStatus};
use backup_core::retention::BackupStatus;
use backup_engine::ports::{BackupStore, ClusterStore, JobStore};
use backup_engine::{BackupEntry, BackupFilter, ClusterRecord, PageRequest, Scope};
use backup_testkit::eventbridge::rules;
use backup_testkit::{unique, Table, DEAD_LETTER_ARN};
use serde_json::Value;
use support::{Emulator, Function, Proxy, RUNNER_ARN};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One PUT the stand-in for the pre-signed URL received.
#[derive(Debug)]
struct Answer {
    path: String,
    /// `Content-Type` as sent (`None`: no header at all).
    content_type: Option<String>,
    body: Value,
}

type Answers = Arc<Mutex<mpsc::UnboundedSender<Answer>>>;

async fn record(
    State(answers): State<Answers>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> &'static str {
    let answer = Answer {
        path: uri.path().to_owned(),
        content_type: headers
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("(not text)").to_owned()),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let _ = answers.lock().unwrap().send(answer);
    ""
}

struct World {
    // (the process goes first, so it is killed before its emulator)
    _process: Function,
    emulator: Emulator,
    proxy: Proxy,
    table: Table,
    events: aws_sdk_eventbridge::Client,
    prefix: String,
    answers: mpsc::UnboundedReceiver<Answer>,
    response_base: String,
    stack_id: String,
}

fn scope() -> Scope {
    Scope {
        org: "default".into(),
        project: "default".into(),
    }
}

impl World {
    /// A table with the clusters `orders` and `archive`, and a `job-resource` process.
    async fn new() -> World {
        let config = backup_aws::sdk_config().await;
        let table = Table::create().await;
        for id in ["orders", "archive"] {
            table
                .store()
                .insert_cluster(&ClusterRecord {
                    server: Default::default(),
                    status: Default::default(),
                    details: None,
                    source_backup_id: None,
                    id: id.into(),
                    scope: scope(),
                    description: format!("{id} DB"),
                    region: "us-east-1".into(),
                    target: ClusterTarget::AwsEbs {
                        volume_ids: vec!["vol-0abc123def4567890".into()],
                        instance_tag: None,
                    },
                    created: chrono::Utc::now(),
                })
                .await
                .unwrap();
        }
        let (sender, answers) = mpsc::unbounded_channel();
        let app = Router::new()
            .route("/{*path}", put(record))
            .with_state(Arc::new(Mutex::new(sender)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let proxy = Proxy::start().await;
        let emulator = Emulator::start().await;
        let prefix = unique("t-");
        let process = Function::start(
            "job-resource",
            &emulator,
            &proxy.url(),
            &table.name,
            &[
                ("RUNNER_FUNCTION_ARN", RUNNER_ARN),
                ("RULE_PREFIX", &prefix),
                ("DEAD_LETTER_QUEUE_ARN", DEAD_LETTER_ARN),
            ],
        );
        World {
            _process: process,
            emulator,
            proxy,
            table,
            events: aws_sdk_eventbridge::Client::new(&config),
            prefix,
            answers,
            response_base: format!("http://{addr}"),
            stack_id: format!(
                "arn:aws:cloudformation:us-east-1:123456789012:stack/{}/5b918d10",
                unique("orders-backup-")
            ),
        }
    }

    /// The fixture `name` (`create`, `update`, `delete`) of this world's stack, with
    /// `RequestId` `request` and its answer going to this world's stand-in.
    fn event(&self, name: &str, request: &str) -> Value {
        let text = match name {
            "create" => include_str!("fixtures/cfn-create.json"),
            "update" => include_str!("fixtures/cfn-update.json"),
            "delete" => include_str!("fixtures/cfn-delete.json"),
            other => panic!("no fixture {other}"),
        };
        let mut event: Value = serde_json::from_str(text).unwrap();
        event["StackId"] = Value::String(self.stack_id.clone());
        event["RequestId"] = Value::String(request.to_owned());
        event["ResponseURL"] = Value::String(format!(
            "{}/answers/{request}?X-Amz-Signature=0f",
            self.response_base
        ));
        event
    }

    /// Invokes the function with `event`, and the answer it PUT to the response URL.
    async fn send(&mut self, event: Value) -> Answer {
        let request = event["RequestId"].as_str().unwrap_or_default().to_owned();
        let outcome = self.emulator.invoke(event).await;
        assert!(outcome.is_ok(), "the invocation succeeds: {outcome:?}");
        let answer = tokio::time::timeout(Duration::from_secs(60), self.answers.recv())
            .await
            .expect("an answer within 60 s")
            .expect("the stand-in runs");
        assert_eq!(answer.path, format!("/answers/{request}"));
        // CloudFormation's pre-signed URL is signed for an empty Content-Type.
        assert_eq!(answer.content_type.as_deref().unwrap_or(""), "");
        // And the documented body: every field CloudFormation reads.
        for field in [
            "Status",
            "PhysicalResourceId",
            "StackId",
            "RequestId",
            "LogicalResourceId",
        ] {
            assert!(answer.body[field].is_string(), "{field}: {}", answer.body);
        }
        assert_eq!(answer.body["StackId"], self.stack_id.as_str());
        assert_eq!(answer.body["RequestId"], request.as_str());
        assert_eq!(answer.body["LogicalResourceId"], "NightlyBackup");
        answer
    }

    async fn jobs(&self) -> Vec<backup_engine::JobRecord> {
        self.table
            .store()
            .list_jobs(&scope(), &PageRequest::everything())
            .await
            .unwrap()
            .items
    }

    /// The schedule expressions of the job's rules, by name.
    async fn rules_of(&self, job: &str) -> Vec<String> {
        let mut found: Vec<String> = rules(&self.events, &self.prefix)
            .await
            .iter()
            .filter(|r| r.name().is_some_and(|n| n.contains(job)))
            .filter_map(|r| r.schedule_expression().map(str::to_owned))
            .collect();
        found.sort();
        found
    }

    /// Every call the function made is on its list in `backup_aws::iam`.
    fn assert_calls_allowed(&self) {
        assert_eq!(self.proxy.calls_not_allowed(), []);
        let made = self.proxy.operations_of("job-resource");
        let listed: std::collections::BTreeSet<String> = backup_aws::iam::JOB_RESOURCE
            .calls
            .iter()
            .map(|c| c.operation.to_owned())
            .collect();
        let unlisted: Vec<_> = made.difference(&listed).collect();
        assert!(unlisted.is_empty(), "made but not listed: {unlisted:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_bad_job_fails_with_the_cores_reasons_and_creates_nothing() {
    let mut w = World::new().await;
    // GIVEN a Create whose schedule is too frequent and whose count is no number
    let mut event = w.event("create", "req-bad");
    event["ResourceProperties"]["Schedule"] = "*/15 * * * *".into();
    event["ResourceProperties"]["BackupDescription"] = "{nope}".into();
    // WHEN it is sent
    let answer = w.send(event).await;
    // THEN the answer is FAILED with the core's codes, named by property
    assert_eq!(answer.body["Status"], "FAILED", "{}", answer.body);
    let reason = answer.body["Reason"].as_str().unwrap();
    assert!(reason.contains("Schedule: too_frequent"), "{reason}");
    assert!(
        reason.contains("BackupDescription: unknown_placeholder"),
        "{reason}"
    );
    // AND its physical id is no job id, so the Delete that follows finds nothing
    let physical = answer.body["PhysicalResourceId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(physical.starts_with("not-created-"), "{physical}");
    // AND nothing was made
    assert!(w.jobs().await.is_empty());
    assert!(rules(&w.events, &w.prefix).await.is_empty());

    // WHEN a property is misspelt or the cluster is unknown THEN FAILED, saying which
    let mut event = w.event("create", "req-misspelt");
    let properties = event["ResourceProperties"].as_object_mut().unwrap();
    properties.insert("MaxBackups".into(), "3".into());
    let answer = w.send(event).await;
    assert_eq!(answer.body["Status"], "FAILED");
    assert!(answer.body["Reason"]
        .as_str()
        .unwrap()
        .contains("MaxBackups"));
    let mut event = w.event("create", "req-ghost");
    event["ResourceProperties"]["ClusterId"] = "ghost".into();
    let answer = w.send(event).await;
    assert_eq!(answer.body["Status"], "FAILED");
    let reason = answer.body["Reason"].as_str().unwrap();
    assert!(reason.contains("ClusterId: not_found"), "{reason}");
    assert!(w.jobs().await.is_empty());

    // WHEN CloudFormation deletes the failed resource, or a job that does not exist
    for physical_id in [physical.as_str(), "c196ogto0aeqohe3ommq"] {
        let mut event = w.event("delete", &format!("req-delete-{physical_id}"));
        event["PhysicalResourceId"] = physical_id.into();
        let answer = w.send(event).await;
        // THEN it succeeds (there is nothing to delete), keeping the physical id
        assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
        assert_eq!(answer.body["PhysicalResourceId"], physical_id);
    }
    // AND an event nobody can be answered at is an invocation error, not a hang
    let err = w
        .emulator
        .invoke(serde_json::json!({"RequestType": "Create"}))
        .await
        .expect_err("no ResponseURL");
    assert_eq!(err["errorType"], "BadEvent", "{err}");
    w.assert_calls_allowed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_job_is_created_once_updated_in_place_replaced_for_another_cluster_and_deleted() {
    let mut w = World::new().await;
    // WHEN the fixture's Create arrives, and again (Lambda retried the invocation)
    let first = w.send(w.event("create", "req-create")).await;
    let again = w.send(w.event("create", "req-create")).await;
    // THEN both succeed with one job, whose id is the physical id and the JobId attribute
    assert_eq!(first.body["Status"], "SUCCESS", "{}", first.body);
    let job = first.body["PhysicalResourceId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.body["Data"]["JobId"], job.as_str());
    assert_eq!(again.body["Status"], "SUCCESS", "{}", again.body);
    assert_eq!(again.body["PhysicalResourceId"], job.as_str());
    let jobs = w.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, job);
    assert_eq!(jobs[0].max_backup_count, 7, "\"7\" is read as a number");
    assert_eq!(jobs[0].schedule, "0 3 * * *");
    assert_eq!(w.rules_of(&job).await, ["cron(0 3 * * ? *)"]);
    // AND a Create with another request id of the same resource finds it too
    let other = w.send(w.event("create", "req-create-2")).await;
    assert_eq!(other.body["PhysicalResourceId"], job.as_str());
    assert_eq!(w.jobs().await.len(), 1);

    // GIVEN a backup the job made
    let backup = BackupEntry {
        id: "b1".into(),
        scope: scope(),
        job_id: Some(job.clone()),
        cluster_id: "orders".into(),
        cluster_description: "orders DB".into(),
        provider: "aws-ebs".into(),
        description: "orders nightly".into(),
        created: chrono::Utc::now(),
        status: BackupStatus::Available,
        index: 1,
        location: None,
        error_code: None,
        details: None,
        size_bytes: None,
        verification: None,
    };
    assert!(w.table.store().insert_backup(&backup).await.unwrap());

    // WHEN an Update changes its schedule, descriptions and count (same cluster)
    let mut update = w.event("update", "req-update");
    update["PhysicalResourceId"] = job.as_str().into();
    let answer = w.send(update).await;
    // THEN it is updated in place: the same id, the new values, its rules moved
    assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
    assert_eq!(answer.body["PhysicalResourceId"], job.as_str());
    let stored = w.table.store().get_job(&job).await.unwrap().unwrap();
    assert_eq!(stored.schedule, "30 4 * * 1-5");
    assert_eq!(stored.description, "Weekday backup of orders");
    assert_eq!(stored.template, "{cluster} weekday {datetime:RFC3339}");
    assert_eq!(stored.max_backup_count, 5);
    assert_eq!(w.rules_of(&job).await, ["cron(30 4 ? * MON-FRI *)"]);
    // AND its backup stays its own
    let by_job = BackupFilter {
        job_id: Some(job.clone()),
        cluster_id: None,
    };
    let kept = w
        .table
        .store()
        .list_backups(&scope(), &by_job, &PageRequest::everything())
        .await
        .unwrap();
    assert_eq!(kept.items.len(), 1);

    // WHEN an Update names a schedule the core refuses THEN FAILED and the job is as it was
    let mut bad = w.event("update", "req-update-bad");
    bad["PhysicalResourceId"] = job.as_str().into();
    bad["ResourceProperties"]["Schedule"] = "*/5 * * * *".into();
    let answer = w.send(bad).await;
    assert_eq!(answer.body["Status"], "FAILED");
    assert_eq!(answer.body["PhysicalResourceId"], job.as_str());
    let same = w.table.store().get_job(&job).await.unwrap().unwrap();
    assert_eq!(same, stored);

    // WHEN an Update moves it to another cluster
    let mut moved = w.event("update", "req-move");
    moved["PhysicalResourceId"] = job.as_str().into();
    moved["OldResourceProperties"] = moved["ResourceProperties"].clone();
    moved["ResourceProperties"]["ClusterId"] = "archive".into();
    let answer = w.send(moved).await;
    // THEN a new job is made, answered as the new physical id; the old one is untouched
    assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
    let new_job = answer.body["PhysicalResourceId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_job, job);
    let made = w.table.store().get_job(&new_job).await.unwrap().unwrap();
    assert_eq!(made.cluster_id, "archive");
    assert_eq!(made.status, JobStatus::Active);
    assert_eq!(w.rules_of(&new_job).await, ["cron(30 4 ? * MON-FRI *)"]);

    // WHEN CloudFormation then deletes the old job (what a replacement does), twice
    for request in ["req-delete-old", "req-delete-old-again"] {
        let mut delete = w.event("delete", request);
        delete["PhysicalResourceId"] = job.as_str().into();
        let answer = w.send(delete).await;
        assert_eq!(answer.body["Status"], "SUCCESS", "{}", answer.body);
    }
    // THEN the old job is deleted, its rules gone, its backup kept; the new one stays
    let old = w.table.store().get_job(&job).await.unwrap().unwrap();
    assert_eq!(old.status, JobStatus::Deleted);
    assert!(w.rules_of(&job).await.is_empty());
    let left: Vec<String> = rules(&w.events, &w.prefix)
        .await
        .iter()
        .filter_map(|r| r.name().map(str::to_owned))
        .collect();
    assert!(left.iter().all(|name| name.contains(&new_job)), "{left:?}");
    assert!(w.table.store().get_backup("b1").await.unwrap().is_some());
    w.assert_calls_allowed();
}
