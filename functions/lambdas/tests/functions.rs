//! The two Lambda functions as processes: each started with `AWS_LAMBDA_RUNTIME_API` at an
//! emulator of the Runtime API, fed the JSON that EventBridge and API Gateway send, its AWS
//! clients pointed at moto (through a proxy that counts the calls, can slow `CreateSnapshot`
//! down, and fails a test whose functions made a call their IAM list in `backup_aws::iam`
//! does not name). Run through scripts/test-aws.sh, which starts moto_server and passes
//! `--include-ignored`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backup_aws::ebs::{fit_label, MAX_DESCRIPTION, MAX_TAG_VALUE};
use backup_core::api::{ClusterTarget, JobStatus, RunFailure, RunStatus};
use backup_engine::ids::RandomIds;
use backup_engine::ports::{
    BackupStore, ClusterLock, ClusterStore, HistoryStore, IdGenerator, JobStore,
};
use backup_engine::{Acquisition, BackupFilter, ClusterRecord, JobRecord, LockHolder, Scope};
use backup_testkit::ec2::{
    instance_tagged_with_data_volumes, snapshots_tagged, snapshotted_volumes, tag, TaggedInstance,
};
use backup_testkit::eventbridge::{expected_runner_target, only_target, rules};
use backup_testkit::scheduler::{
    assert_job_schedule, create_group, expected_runner_target as expected_schedule_target,
    schedule, schedule_names,
};
use backup_testkit::{Table, DEAD_LETTER_ARN, SCHEDULER_ROLE_ARN};
use serde_json::{json, Value};
use support::{apigw, Emulator, Function, Proxy, RUNNER_ARN};

fn scope() -> Scope {
    Scope {
        org: "default".into(),
        project: "default".into(),
    }
}

struct World {
    table: Table,
    proxy: Proxy,
    emulator: Arc<Emulator>,
    ec2: aws_sdk_ec2::Client,
    events: aws_sdk_eventbridge::Client,
    cluster: String,
    volumes: Vec<String>,
}

impl World {
    async fn new(volumes: usize) -> World {
        World::with_cluster_described(volumes, "Orders DB").await
    }

    /// A world whose cluster's description (what `{cluster}` renders) is `description`.
    async fn with_cluster_described(volumes: usize, description: &str) -> World {
        let config = backup_aws::sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let mut ids = Vec::new();
        for _ in 0..volumes {
            ids.push(backup_testkit::ec2::volume(&ec2).await);
        }
        let target = ClusterTarget::AwsEbs {
            volume_ids: ids.clone(),
            instance_tag: None,
        };
        World::with_cluster(description, target, ids).await
    }

    /// A world whose cluster is named by an instance tag: one instance carrying it per item
    /// of `data_volumes`, with that many data volumes besides its root volume. The world's
    /// `volumes` are every one of them.
    async fn of_tagged_instances(data_volumes: &[usize]) -> (World, Vec<TaggedInstance>) {
        let config = backup_aws::sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let value = backup_testkit::unique("orders-");
        let mut instances = Vec::new();
        for data in data_volumes {
            instances.push(instance_tagged_with_data_volumes(&ec2, "Cluster", &value, *data).await);
        }
        let mut volumes: Vec<String> = instances.iter().flat_map(|i| i.volumes.clone()).collect();
        volumes.sort();
        let target = ClusterTarget::AwsEbs {
            volume_ids: Vec::new(),
            instance_tag: Some(format!("Cluster={value}")),
        };
        (
            World::with_cluster("Orders DB", target, volumes).await,
            instances,
        )
    }

    async fn with_cluster(description: &str, target: ClusterTarget, volumes: Vec<String>) -> World {
        let config = backup_aws::sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let events = aws_sdk_eventbridge::Client::new(&config);
        let table = Table::create().await;
        let cluster = format!("c{}", chrono::Utc::now().timestamp_micros());
        table
            .store()
            .insert_cluster(&ClusterRecord {
                server: Default::default(),
                status: Default::default(),
                details: None,
                source_backup_id: None,
                id: cluster.clone(),
                scope: scope(),
                description: description.into(),
                region: "us-east-1".into(),
                target,
                created: chrono::Utc::now(),
            })
            .await
            .unwrap();
        World {
            table,
            proxy: Proxy::start().await,
            emulator: Arc::new(Emulator::start().await),
            ec2,
            events,
            cluster,
            volumes,
        }
    }

    async fn add_job(&self) -> String {
        self.add_job_naming_backups("{cluster} Hourly Backup {datetime:rfc3339}")
            .await
    }

    /// A job of the world's cluster whose backups are named by `template`.
    async fn add_job_naming_backups(&self, template: &str) -> String {
        let id = RandomIds::default().new_id();
        let job = JobRecord {
            id: id.clone(),
            scope: scope(),
            description: "Hourly".into(),
            schedule: "0 * * * *".into(),
            status: JobStatus::Active,
            cluster_id: self.cluster.clone(),
            template: template.into(),
            max_backup_count: 2,
            created: chrono::Utc::now(),
        };
        assert!(self.table.store().insert_job(&job).await.unwrap());
        id
    }

    /// The jobs API's answer to creating a scheduled backup job of the world's cluster,
    /// making backups named by `template`.
    async fn create_job(&self, description: &str, schedule: &str, template: &str) -> Value {
        let job = json!({
            "description": description,
            "schedule": schedule,
            "type": "ScheduledBackup",
            "data": {"clusterId": self.cluster, "description": template, "maxBackupCount": 2}
        });
        self.api("POST", JOBS, Some(&job)).await
    }

    /// The answer of the jobs API to `method path body`, through API Gateway.
    async fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.emulator
            .invoke(apigw(method, path, body))
            .await
            .expect("answers")
    }

    fn runner(&self, extra: &[(&str, &str)]) -> Function {
        Function::start(
            "backup-runner",
            &self.emulator,
            &self.proxy.url(),
            &self.table.name,
            extra,
        )
    }

    /// The runner's answer when the rule of `job` fires at `hour`:00 (see [`at`]).
    async fn fire(&self, job: &str, hour: u32) -> Result<Value, Value> {
        self.emulator
            .invoke(transformer_input(job, &at(hour)))
            .await
    }

    /// The runner's answer to EC2's notification that `snapshot` ended with `result`
    /// (`succeeded`, `failed`).
    async fn notify(&self, snapshot: &str, result: &str) -> Value {
        self.emulator
            .invoke(snapshot_notification(snapshot, result))
            .await
            .expect("a notification always succeeds")
    }

    /// Sends the notification of each of `job`'s snapshots, as EC2 does when they complete.
    async fn settle(&self, job: &str) -> Vec<Value> {
        let mut answers = Vec::new();
        for s in self.snapshots_of_job(job).await {
            answers.push(self.notify(s.snapshot_id().unwrap(), "succeeded").await);
        }
        answers
    }

    /// The runner's answer to the sweeper rule.
    async fn sweep(&self) -> Value {
        self.emulator
            .invoke(json!({"sweep": true}))
            .await
            .expect("a sweep succeeds")
    }

    async fn history_status(&self, history_id: &Value) -> RunStatus {
        let id = history_id.as_str().expect("a history id");
        let h = self.table.store().get_history(id).await.unwrap();
        h.expect("the history item").item.status
    }

    /// The snapshots made for `job`.
    async fn snapshots_of_job(&self, job: &str) -> Vec<aws_sdk_ec2::types::Snapshot> {
        snapshots_tagged(&self.ec2, "backup:job-id", job).await
    }
}

/// A world with one job and one runner process waiting for events, the setup of most tests.
async fn one_job_and_a_runner(volumes: usize) -> (World, String, Function) {
    let w = World::new(volumes).await;
    let job = w.add_job().await;
    let runner = w.runner(&[]);
    (w, job, runner)
}

/// `hour`:00 UTC on the day the tests' events fire.
fn at(hour: u32) -> String {
    format!("2026-11-27T{hour:02}:00:00Z")
}

/// The jobs of the default project, in the API.
const JOBS: &str = "/orchestrate/v1/organizations/default/projects/default/jobs";

fn transformer_input(job: &str, time: &str) -> Value {
    json!({"jobId": job, "scheduledTime": time})
}

/// EC2's `EBS Snapshot Notification` (the fixture) for `snapshot`'s end.
fn snapshot_notification(snapshot: &str, result: &str) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("fixtures/ebs-snapshot-notification.json")).unwrap();
    let arn = format!("arn:aws:ec2::us-east-1:snapshot/{snapshot}");
    e["resources"] = json!([arn]);
    e["detail"]["snapshot_id"] = json!(arn);
    e["detail"]["result"] = json!(result);
    if result != "succeeded" {
        e["detail"]["cause"] = json!("The volume was detached while it was snapshotted.");
    }
    e
}

fn scheduled_event(job: &str, time: &str) -> Value {
    let mut e: Value = serde_json::from_str(include_str!("fixtures/scheduled-event.json")).unwrap();
    e["time"] = Value::String(time.into());
    e["resources"] = json!([format!(
        "arn:aws:events:us-east-1:123456789012:rule/backup-job-{job}"
    )]);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn the_runner_backs_up_from_the_transformer_input_and_from_a_plain_scheduled_event() {
    let (w, job, _runner) = one_job_and_a_runner(2).await;
    // WHEN the rule's transformer input arrives
    let report = w.fire(&job, 5).await.expect("the invocation succeeds");
    // THEN the run started one snapshot per volume, tagged with its ids, and returned
    // without waiting for them
    assert_eq!(report["status"], "running", "{report}");
    assert_eq!(report["duplicate"], false);
    // AND EC2's notification of the first snapshot's end, while the second is still
    // pending, settles nothing; the second's settles the backup
    let snaps = w.snapshots_of_job(&job).await;
    w.proxy.hold_snapshots_pending(true);
    let first = w.notify(snaps[0].snapshot_id().unwrap(), "succeeded").await;
    assert_eq!(first["settled"][0]["outcome"], "not-yet", "{first}");
    w.proxy.hold_snapshots_pending(false);
    let second = w.notify(snaps[1].snapshot_id().unwrap(), "succeeded").await;
    assert_eq!(second["settled"][0]["outcome"], "available", "{second}");
    let mut expected = w.volumes.clone();
    expected.sort();
    assert_eq!(snapshotted_volumes(&snaps), expected);
    let backups = w.table.store().list_job_backups(&job).await.unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0].status.to_string(), "available");
    for s in &snaps {
        assert_eq!(tag(s, "backup:backup-id"), Some(backups[0].id.as_str()));
        assert_eq!(tag(s, "backup:cluster-id"), Some(w.cluster.as_str()));
    }
    // AND the history item is in DynamoDB
    let history = w
        .table
        .store()
        .get_history(report["historyId"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.item.status, RunStatus::Succeeded);
    assert_eq!(history.item.linked_resource, backups[0].id);

    // WHEN EventBridge sends its plain Scheduled Event for the job's rule
    let report = w
        .emulator
        .invoke(scheduled_event(&job, &at(6)))
        .await
        .expect("the invocation succeeds");
    // THEN the job is found from the rule name and backed up for the event's time
    assert_eq!(report["status"], "running", "{report}");
    assert_eq!(report["jobId"], job.as_str());
    assert_eq!(
        w.table.store().list_job_backups(&job).await.unwrap().len(),
        2
    );
}

/// EC2's `EBS Multi-Volume Snapshots Completion Status` of a `CreateSnapshots` (the
/// fixture, with that event's own detail-type): one event for
/// the whole set of an instance, listing each snapshot `completed`.
fn snapshots_notification(snapshots: &[&aws_sdk_ec2::types::Snapshot]) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("fixtures/ebs-snapshots-notification.json")).unwrap();
    let arn = |s: &aws_sdk_ec2::types::Snapshot| {
        format!(
            "arn:aws:ec2::us-east-1:snapshot/{}",
            s.snapshot_id().unwrap()
        )
    };
    e["resources"] = json!(snapshots.iter().map(|s| arn(s)).collect::<Vec<_>>());
    e["detail"]["snapshots"] = json!(snapshots
        .iter()
        .map(|s| json!({
            "snapshot_id": arn(s),
            "source": format!("arn:aws:ec2::us-east-1:volume/{}", s.volume_id().unwrap()),
            "status": "completed",
        }))
        .collect::<Vec<_>>());
    e
}

/// The snapshots of backup `backup_id`, one list per instance of `instances` (by volume).
async fn sets_of(
    w: &World,
    backup_id: &str,
    instances: &[TaggedInstance],
) -> Vec<Vec<aws_sdk_ec2::types::Snapshot>> {
    let snaps = snapshots_tagged(&w.ec2, "backup:backup-id", backup_id).await;
    instances
        .iter()
        .map(|i| {
            snaps
                .iter()
                .filter(|s| i.volumes.iter().any(|v| Some(v.as_str()) == s.volume_id()))
                .cloned()
                .collect()
        })
        .collect()
}

/// The tags of the first `TagSpecification` of an EC2 request's parameters.
fn requested_tags(params: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for n in 1.. {
        let Some(key) = params.get(&format!("TagSpecification.1.Tag.{n}.Key")) else {
            break;
        };
        let value = params
            .get(&format!("TagSpecification.1.Tag.{n}.Value"))
            .cloned()
            .unwrap_or_default();
        tags.push((key.clone(), value));
    }
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn an_instance_tag_cluster_is_one_create_snapshots_per_instance_settled_by_their_notifications(
) {
    // GIVEN a cluster named by an instance tag two instances carry, with two and three EBS
    // volumes, and a job of it keeping two backups
    let (w, instances) = World::of_tagged_instances(&[1, 2]).await;
    let job = w.add_job().await;
    let _runner = w.runner(&[]);
    w.proxy.take_calls();
    // WHEN its rule fires
    let report = w.fire(&job, 5).await.expect("the invocation succeeds");
    assert_eq!(report["status"], "running", "{report}");
    // THEN EC2 was asked for the tagged instances, then for one crash-consistent set per
    // instance, and never for a volume's snapshot alone
    let ec2_calls: Vec<String> = w
        .proxy
        .take_calls()
        .into_iter()
        .filter(|c| c.starts_with("ec2:"))
        .collect();
    assert_eq!(
        ec2_calls,
        [
            "ec2:DescribeInstances",
            "ec2:CreateSnapshots",
            "ec2:CreateSnapshots"
        ]
    );
    let backups = w.table.store().list_job_backups(&job).await.unwrap();
    let [backup] = backups.as_slice() else {
        panic!("one backup: {backups:?}")
    };
    // AND each request is the instance whole (boot volume included), tagged at creation
    // with our tags only, described as `CreateSnapshot` describes
    let requests = w.proxy.ec2_requests("ec2:CreateSnapshots");
    let mut asked: Vec<&str> = requests
        .iter()
        .map(|r| r["InstanceSpecification.InstanceId"].as_str())
        .collect();
    asked.sort();
    let mut expected: Vec<&str> = instances.iter().map(|i| i.instance_id.as_str()).collect();
    expected.sort();
    assert_eq!(asked, expected);
    let mut tags = vec![
        (
            "Name".to_owned(),
            fit_label(&backup.description, MAX_TAG_VALUE).into_owned(),
        ),
        ("backup:backup-id".to_owned(), backup.id.clone()),
        ("backup:cluster-id".to_owned(), w.cluster.clone()),
        ("backup:job-id".to_owned(), job.clone()),
    ];
    tags.sort();
    for r in &requests {
        assert_eq!(
            r.get("InstanceSpecification.ExcludeBootVolume")
                .map(String::as_str),
            Some("false"),
            "{r:?}"
        );
        assert!(
            !r.keys()
                .any(|k| k.starts_with("InstanceSpecification.ExcludeDataVolume")
                    || k.starts_with("CopyTagsFromSource")),
            "{r:?}"
        );
        assert_eq!(
            r["Description"],
            fit_label(&backup.description, MAX_DESCRIPTION),
            "{r:?}"
        );
        assert_eq!(r["TagSpecification.1.ResourceType"], "snapshot", "{r:?}");
        assert_eq!(requested_tags(r), tags, "{r:?}");
    }
    // AND the backup's location lists a snapshot of every volume of both instances
    let set: backup_aws::ebs::SnapshotSet =
        serde_json::from_str(backup.location.as_deref().expect("a location")).unwrap();
    assert_eq!(set.region, "us-east-1");
    let snaps = snapshots_tagged(&w.ec2, "backup:backup-id", &backup.id).await;
    assert_eq!(snapshotted_volumes(&snaps), w.volumes);
    let mut recorded = set.snapshot_ids.clone();
    recorded.sort();
    let mut made: Vec<String> = snaps
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect();
    made.sort();
    assert_eq!(recorded, made);

    // WHEN EC2 notifies the first instance's set while the second's is still pending
    // THEN nothing settles; its notification settles the backup and the run
    let sets = sets_of(&w, &backup.id, &instances).await;
    w.proxy.hold_snapshots_pending(true);
    let first = w
        .emulator
        .invoke(snapshots_notification(&sets[0].iter().collect::<Vec<_>>()))
        .await
        .expect("a notification always succeeds");
    let outcomes = |answer: &Value| -> Vec<String> {
        answer["settled"]
            .as_array()
            .expect("settled")
            .iter()
            .map(|s| s["outcome"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(outcomes(&first), vec!["not-yet"; sets[0].len()], "{first}");
    w.proxy.hold_snapshots_pending(false);
    let second = w
        .emulator
        .invoke(snapshots_notification(&sets[1].iter().collect::<Vec<_>>()))
        .await
        .expect("a notification always succeeds");
    assert!(
        outcomes(&second).iter().any(|o| o == "available"),
        "{second}"
    );
    assert_eq!(
        w.history_status(&report["historyId"]).await,
        RunStatus::Succeeded
    );
    // AND the backup's size is its volumes', as CreateSnapshots answered them
    let made = w
        .table
        .store()
        .get_backup(&backup.id)
        .await
        .unwrap()
        .unwrap();
    assert!(made.size_bytes.is_some_and(|b| b > 0), "{made:?}");

    // WHEN two more runs make the job prune the first backup
    for hour in [6, 7] {
        let report = w.fire(&job, hour).await.expect("the invocation succeeds");
        assert_eq!(report["status"], "running", "{report}");
        let newest = w.table.store().list_job_backups(&job).await.unwrap();
        let newest = newest.iter().max_by_key(|b| b.index).unwrap();
        for set in sets_of(&w, &newest.id, &instances).await {
            w.emulator
                .invoke(snapshots_notification(&set.iter().collect::<Vec<_>>()))
                .await
                .expect("a notification always succeeds");
        }
        assert_eq!(
            w.history_status(&report["historyId"]).await,
            RunStatus::Succeeded
        );
    }
    // THEN every snapshot of both instances' sets is deleted with it
    let left = snapshots_tagged(&w.ec2, "backup:backup-id", &backup.id).await;
    assert!(left.is_empty(), "{left:?}");
    assert!(pruned_any(&w, &job).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_later_instance_refused_for_ec2s_snapshot_limit_fails_the_run_busy_leaving_no_snapshot() {
    // GIVEN a cluster of two tagged instances, and EC2 refusing the second instance's
    // `CreateSnapshots` (too many snapshots in progress)
    let (w, _instances) = World::of_tagged_instances(&[1, 0]).await;
    let job = w.add_job().await;
    let _runner = w.runner(&[]);
    w.proxy.take_calls();
    w.proxy.inject_after(
        "ec2:CreateSnapshots",
        "ConcurrentSnapshotLimitExceeded",
        400,
        1,
        1,
    );
    // WHEN its rule fires
    let report = w.fire(&job, 5).await.expect("the invocation succeeds");
    // THEN the run fails `provider_busy` (a later run succeeds), saying what EC2 refused
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["errorCode"], "provider_busy", "{report}");
    let details = report["details"].as_str().unwrap_or_default();
    assert!(
        details.contains("CreateSnapshots of instance i-"),
        "{details}"
    );
    // AND the first instance's snapshots, already started, are deleted: nothing is left
    let ec2_calls: Vec<String> = w
        .proxy
        .take_calls()
        .into_iter()
        .filter(|c| c.starts_with("ec2:"))
        .collect();
    assert_eq!(
        ec2_calls,
        [
            "ec2:DescribeInstances",
            "ec2:CreateSnapshots",
            "ec2:CreateSnapshots",
            "ec2:DeleteSnapshot",
            "ec2:DeleteSnapshot"
        ]
    );
    let left = w.snapshots_of_job(&job).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_label_longer_than_ec2_takes_stays_whole_in_the_record_and_is_cut_on_the_snapshot() {
    // GIVEN a cluster described in 150 characters and a job naming its backups after it
    // three times: a 456-character label
    let described: String = "Orders — EU primary · ".chars().cycle().take(150).collect();
    let w = World::with_cluster_described(1, &described).await;
    let job = w
        .add_job_naming_backups("{cluster} | {cluster} | {cluster}")
        .await;
    let _runner = w.runner(&[]);
    // WHEN its rule fires
    let report = w.fire(&job, 5).await.expect("the invocation succeeds");
    assert_eq!(report["status"], "running", "{report}");
    w.settle(&job).await;
    // THEN the run succeeds and the backup's record keeps the whole label
    assert_eq!(
        w.history_status(&report["historyId"]).await,
        RunStatus::Succeeded
    );
    let label = format!("{described} | {described} | {described}");
    let backups = w.table.store().list_job_backups(&job).await.unwrap();
    assert_eq!(backups[0].description, label);
    // AND the snapshot carries as much of it as EC2 takes, ended with `…`
    let snaps = w.snapshots_of_job(&job).await;
    let name = tag(&snaps[0], "Name").unwrap_or_default();
    let description = snaps[0].description().unwrap_or_default();
    assert_eq!(name, fit_label(&label, MAX_TAG_VALUE));
    assert_eq!(description, fit_label(&label, MAX_DESCRIPTION));
    assert!(name.ends_with('…') && name.len() <= MAX_TAG_VALUE, "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn the_same_scheduled_event_delivered_three_times_makes_one_backup() {
    let (w, job, _runner) = one_job_and_a_runner(1).await;
    let mut reports = Vec::new();
    for _ in 0..3 {
        reports.push(w.fire(&job, 5).await.expect("succeeds"));
    }
    assert_eq!(reports[0]["duplicate"], false);
    for r in &reports[1..] {
        assert_eq!(r["duplicate"], true, "{r}");
        assert_eq!(r["historyId"], reports[0]["historyId"]);
        assert_eq!(r["status"], "running");
    }
    assert_eq!(
        w.table.store().list_job_backups(&job).await.unwrap().len(),
        1
    );
    assert_eq!(w.snapshots_of_job(&job).await.len(), 1);
    assert_eq!(
        w.table
            .store()
            .list_history(
                &scope(),
                Some(&job),
                &backup_engine::PageRequest::everything()
            )
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn twenty_concurrent_runs_for_one_cluster_make_one_backup_and_nineteen_locked_failures() {
    let w = World::new(1).await;
    let mut jobs = Vec::new();
    for _ in 0..20 {
        jobs.push(w.add_job().await);
    }
    // Each invocation in its own process, as Lambda scales out; the backup takes a while.
    w.proxy.set_create_snapshot_delay(Duration::from_secs(3));
    let _runners: Vec<Function> = (0..20).map(|_| w.runner(&[])).collect();
    w.emulator.wait_for_polls(20).await;
    let mut tasks = tokio::task::JoinSet::new();
    for job in &jobs {
        let emulator = w.emulator.clone();
        let event = transformer_input(job, &at(5));
        tasks.spawn(async move { emulator.invoke(event).await });
    }
    let mut reports = Vec::new();
    while let Some(r) = tasks.join_next().await {
        reports.push(r.unwrap().expect("every invocation succeeds"));
    }
    let succeeded = reports.iter().filter(|r| r["status"] == "running").count();
    let locked = reports
        .iter()
        .filter(|r| r["errorCode"] == "cluster_locked")
        .count();
    assert_eq!((succeeded, locked), (1, 19), "{reports:#?}");
    // THEN DynamoDB holds one backup and 19 cluster_locked history items naming the holder
    let backups = w
        .table
        .store()
        .list_backups(
            &scope(),
            &BackupFilter {
                job_id: None,
                cluster_id: Some(w.cluster.clone()),
            },
            &backup_engine::PageRequest::everything(),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(backups.len(), 1);
    let history = w
        .table
        .store()
        .list_history(&scope(), None, &backup_engine::PageRequest::everything())
        .await
        .unwrap()
        .items;
    let locked: Vec<_> = history
        .iter()
        .filter(|h| h.error_code == Some(RunFailure::ClusterLocked))
        .collect();
    assert_eq!(locked.len(), 19);
    assert!(
        locked
            .iter()
            .all(|h| h.details.contains("scheduled-backup")),
        "{locked:#?}"
    );
    let snapshots = snapshots_tagged(&w.ec2, "backup:cluster-id", &w.cluster).await;
    assert_eq!(snapshots.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_runner_killed_mid_backup_frees_the_cluster_when_its_lease_expires() {
    let w = World::new(1).await;
    let (first, second) = (w.add_job().await, w.add_job().await);
    let lease = [("LEASE_SECONDS", "2")];
    let mut doomed = w.runner(&lease);
    w.emulator.wait_for_polls(1).await;
    // GIVEN a run that holds the cluster and is stuck in CreateSnapshot
    w.proxy.set_create_snapshot_delay(Duration::from_secs(15));
    let emulator = w.emulator.clone();
    let event = transformer_input(&first, &at(5));
    let _stuck = tokio::spawn(async move { emulator.invoke(event).await });
    let store = w.table.store();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store
        .current(&w.cluster, chrono::Utc::now())
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the run never took the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // WHEN its process is killed
    doomed.kill().await;
    w.proxy.set_create_snapshot_delay(Duration::ZERO);
    let _runner = w.runner(&lease);
    // THEN until the lease ends, other runs find the cluster locked
    let report = w.fire(&second, 5).await.expect("succeeds");
    assert_eq!(report["errorCode"], "cluster_locked", "{report}");
    // AND once it has ended, the next run backs the cluster up
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let report = w.fire(&second, 6).await.expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    // AND Lambda's retry of the killed invocation records that run as interrupted, its
    // backup defunct, instead of leaving it `running`
    let report = w.fire(&first, 5).await.expect("succeeds");
    assert_eq!(report["status"], "failed", "{report}");
    assert_eq!(report["errorCode"], "interrupted", "{report}");
    let history_id = report["historyId"].as_str().unwrap_or_default();
    let history = store
        .get_history(history_id)
        .await
        .unwrap()
        .expect("its history");
    let backup = history.item.linked_resource;
    assert_eq!(
        store.get_backup(&backup).await.unwrap().map(|b| b.status),
        Some(backup_core::retention::BackupStatus::Defunct),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_pending_snapshot_holds_its_cluster_until_its_notification_settles_it_once() {
    // GIVEN a snapshot that stays `pending` (moto completes them at once; the proxy says
    // otherwise until the test lets go)
    let (w, job, _runner) = one_job_and_a_runner(1).await;
    let other = w.add_job().await;
    w.proxy.hold_snapshots_pending(true);
    // WHEN the job fires THEN the run returns at once, `running`
    let started = Instant::now();
    let report = w.fire(&job, 5).await.expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // AND the cluster stays locked: a second job's run fails `cluster_locked`
    let refused = w.fire(&other, 5).await.expect("succeeds");
    assert_eq!(refused["errorCode"], "cluster_locked", "{refused}");
    // AND a sweep while the snapshot is pending changes nothing
    let swept = w.sweep().await;
    assert_eq!(swept["sweep"]["settled"], json!([]), "{swept}");
    assert_eq!(
        w.history_status(&report["historyId"]).await,
        RunStatus::Running
    );
    // WHEN a notification for a snapshot nobody waits on arrives (AWS Backup's, DLM's)
    // THEN it answers success and writes nothing
    let before = w.table.item_count().await;
    let unknown = w.notify("snap-0123456789abcdef0", "succeeded").await;
    assert_eq!(unknown["settled"][0]["outcome"], "unknown", "{unknown}");
    assert_eq!(w.table.item_count().await, before);
    // WHEN EC2's notification of its end arrives THEN the backup is available, the run
    // succeeded and the cluster is free
    let snapshot = w.snapshots_of_job(&job).await[0]
        .snapshot_id()
        .unwrap()
        .to_owned();
    let settled = w.notify(&snapshot, "succeeded").await;
    assert_eq!(settled["settled"][0]["outcome"], "available", "{settled}");
    assert_eq!(settled["settled"][0]["historyId"], report["historyId"]);
    assert_eq!(
        w.history_status(&report["historyId"]).await,
        RunStatus::Succeeded
    );
    let backups = w.table.store().list_job_backups(&job).await.unwrap();
    assert_eq!(backups[0].status.to_string(), "available");
    // AND its size is its volume's, as CreateSnapshot answered it (esc's `sizeGb`: 8)
    assert_eq!(backups[0].size_bytes, Some(8 << 30));
    let store = w.table.store();
    assert_eq!(
        store.current(&w.cluster, chrono::Utc::now()).await.unwrap(),
        None
    );
    // WHEN the same notification arrives again THEN nothing more happens
    let items = w.table.item_count().await;
    let again = w.notify(&snapshot, "succeeded").await;
    assert_eq!(again["settled"][0]["outcome"], "unknown", "{again}");
    assert_eq!(w.table.item_count().await, items);
    assert_eq!(
        w.history_status(&report["historyId"]).await,
        RunStatus::Succeeded
    );

    // GIVEN the next run, whose snapshot fails
    let failing = w.fire(&job, 6).await.expect("succeeds");
    assert_eq!(failing["status"], "running", "{failing}");
    let newest = w
        .snapshots_of_job(&job)
        .await
        .into_iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .find(|id| *id != snapshot)
        .expect("a second snapshot");
    // WHEN EC2 notifies its failure THEN the backup is defunct, the run failed saying why,
    // nothing was pruned and the cluster is free
    let failed = w.notify(&newest, "failed").await;
    assert_eq!(failed["settled"][0]["outcome"], "defunct", "{failed}");
    let id = failing["historyId"].as_str().unwrap();
    let item = store.get_history(id).await.unwrap().unwrap().item;
    assert_eq!(item.status, RunStatus::Failed);
    assert_eq!(item.error_code, Some(RunFailure::ProviderError));
    assert!(item.details.contains("was detached"), "{}", item.details);
    let statuses: Vec<String> = store
        .list_job_backups(&job)
        .await
        .unwrap()
        .iter()
        .map(|b| b.status.to_string())
        .collect();
    assert!(statuses.contains(&"available".to_owned()), "{statuses:?}");
    assert!(statuses.contains(&"defunct".to_owned()), "{statuses:?}");
    assert_eq!(
        store.current(&w.cluster, chrono::Utc::now()).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn without_a_notification_the_sweep_settles_a_backup_or_fails_it_past_the_timeout() {
    let w = World::new(1).await;
    let job = w.add_job().await;
    let _runner = w.runner(&[("SNAPSHOT_TIMEOUT", "3")]);
    // GIVEN a run whose notification never comes
    let report = w.fire(&job, 5).await.expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    // WHEN the snapshot is complete THEN the sweep settles it
    let swept = w.sweep().await;
    assert_eq!(
        swept["sweep"]["settled"].as_array().map(Vec::len),
        Some(1),
        "{swept}"
    );
    assert_eq!(
        w.history_status(&report["historyId"]).await,
        RunStatus::Succeeded
    );
    // GIVEN a run whose snapshot stays pending past SNAPSHOT_TIMEOUT
    w.proxy.hold_snapshots_pending(true);
    let report = w.fire(&job, 6).await.expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    let swept = w.sweep().await;
    assert_eq!(swept["sweep"]["timedOut"], json!([]), "{swept}");
    tokio::time::sleep(Duration::from_millis(3200)).await;
    // WHEN the sweep runs THEN the backup is defunct (`provider_timeout`), the run failed
    // and the cluster is free
    let swept = w.sweep().await;
    assert_eq!(
        swept["sweep"]["timedOut"].as_array().map(Vec::len),
        Some(1),
        "{swept}"
    );
    let store = w.table.store();
    let id = report["historyId"].as_str().unwrap();
    let item = store.get_history(id).await.unwrap().unwrap().item;
    assert_eq!(
        item.error_code,
        Some(RunFailure::ProviderTimeout),
        "{}",
        item.details
    );
    assert_eq!(
        store.current(&w.cluster, chrono::Utc::now()).await.unwrap(),
        None
    );
    let backup = store
        .get_backup(&item.linked_resource)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backup.status.to_string(), "defunct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_runner_killed_after_starting_its_snapshot_leaves_nothing_the_sweep_does_not_clean() {
    let w = World::new(1).await;
    let job = w.add_job().await;
    let lease = [("LEASE_SECONDS", "2")];
    let mut doomed = w.runner(&lease);
    w.emulator.wait_for_polls(1).await;
    // GIVEN a run killed while its CreateSnapshot is on the way (the call still reaches EC2,
    // so the snapshot exists, but the run never records it)
    w.proxy.set_create_snapshot_delay(Duration::from_secs(2));
    let emulator = w.emulator.clone();
    let event = transformer_input(&job, &at(5));
    let _stuck = tokio::spawn(async move { emulator.invoke(event).await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !w
        .proxy
        .take_calls()
        .iter()
        .any(|c| c == "ec2:CreateSnapshot")
    {
        assert!(
            Instant::now() < deadline,
            "the run never called CreateSnapshot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    w.proxy.set_create_snapshot_delay(Duration::ZERO);
    assert_eq!(w.snapshots_of_job(&job).await.len(), 1, "the orphan exists");
    // THEN the cluster is free once the short lease has ended
    let store = w.table.store();
    assert_eq!(
        store.current(&w.cluster, chrono::Utc::now()).await.unwrap(),
        None
    );
    // WHEN the sweep runs THEN the run failed `interrupted`, and the orphan snapshot is found
    // by its tags and deleted
    let _runner = w.runner(&lease);
    let swept = w.sweep().await;
    assert_eq!(
        swept["sweep"]["abandonedRuns"].as_array().map(Vec::len),
        Some(1),
        "{swept}"
    );
    assert_eq!(
        swept["sweep"]["orphansDeleted"].as_array().map(Vec::len),
        Some(1),
        "{swept}"
    );
    assert!(w.snapshots_of_job(&job).await.is_empty());
    let history = store
        .list_history(
            &scope(),
            Some(&job),
            &backup_engine::PageRequest::everything(),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(history[0].error_code, Some(RunFailure::Interrupted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_malformed_event_is_an_error_with_a_clear_message_and_writes_nothing() {
    let (w, job, _runner) = one_job_and_a_runner(1).await;
    let before = w.table.item_count().await;
    w.proxy.take_calls();
    for event in [
        json!({"hello": "world"}),
        json!({"jobId": job, "scheduledTime": "yesterday"}),
        json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-27T05:00:00Z", "resources": []}),
        json!("just a string"),
    ] {
        let err = w
            .emulator
            .invoke(event.clone())
            .await
            .expect_err("a malformed event is an error");
        let message = err["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains("malformed event"), "{event}: {err}");
    }
    assert_eq!(w.table.item_count().await, before, "nothing was written");
    // AND the runner made no AWS call at all for them
    assert!(w.proxy.take_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_failed_invocation_names_its_error_type_so_a_bad_event_is_told_from_a_store_outage() {
    let w = World::new(1).await;
    let _runner = w.runner(&[]);
    // WHEN a malformed event arrives THEN the runtime is told `BadEvent`, with the reason
    let err = w
        .emulator
        .invoke(json!({"hello": "world"}))
        .await
        .expect_err("a malformed event is an error");
    assert_eq!(err["errorType"], "BadEvent", "{err}");
    let message = err["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("malformed event"), "{err}");
    // WHEN a rule names a job that does not exist THEN `JobNotFound`
    let gone = RandomIds::default().new_id();
    let err = w
        .fire(&gone, 5)
        .await
        .expect_err("an unknown job is an error");
    assert_eq!(err["errorType"], "JobNotFound", "{err}");
    // WHEN the state store fails (here: its table does not exist) THEN `StoreUnavailable`
    let outage = Emulator::start().await;
    let missing = format!("{}-missing", w.table.name);
    let _broken = Function::start("backup-runner", &outage, &w.proxy.url(), &missing, &[]);
    let job = w.add_job().await;
    let err = outage
        .invoke(transformer_input(&job, &at(5)))
        .await
        .expect_err("a store failure is an error");
    assert_eq!(err["errorType"], "StoreUnavailable", "{err}");
}

/// The jobs API behind the world's emulator; its asynchronous invocations of the runner
/// ("run now") go to the runner process behind `runner`.
async fn api(w: &World, prefix: &str, runner: &Arc<Emulator>) -> Function {
    let lambda = w.proxy.lambda_endpoint(runner.clone()).await;
    Function::start(
        "jobs-api",
        &w.emulator,
        &w.proxy.url(),
        &w.table.name,
        &[
            ("RUNNER_FUNCTION_ARN", RUNNER_ARN),
            ("RULE_PREFIX", prefix),
            ("DEAD_LETTER_QUEUE_ARN", DEAD_LETTER_ARN),
            ("AWS_ENDPOINT_URL_LAMBDA", &lambda),
        ],
    )
}

/// A jobs-api of the stack with `Trigger=scheduler` (TRIGGER, SCHEDULER_ROLE_ARN), behind
/// its own emulator (an invocation goes to whichever process asks); the group of its
/// schedules is made in moto, as the template makes it.
struct SchedulerApi {
    // (the process goes first, so it is killed before its emulator answers it `Gone`)
    _process: Function,
    emulator: Emulator,
    scheduler: aws_sdk_scheduler::Client,
    group: String,
}

impl SchedulerApi {
    async fn start(w: &World, prefix: &str) -> SchedulerApi {
        let scheduler = aws_sdk_scheduler::Client::new(&backup_aws::sdk_config().await);
        let group = create_group(&scheduler, prefix).await;
        let emulator = Emulator::start().await;
        let process = Function::start(
            "jobs-api",
            &emulator,
            &w.proxy.url(),
            &w.table.name,
            &[
                ("RUNNER_FUNCTION_ARN", RUNNER_ARN),
                ("RULE_PREFIX", prefix),
                ("DEAD_LETTER_QUEUE_ARN", DEAD_LETTER_ARN),
                ("TRIGGER", "scheduler"),
                ("SCHEDULER_ROLE_ARN", SCHEDULER_ROLE_ARN),
            ],
        );
        SchedulerApi {
            _process: process,
            emulator,
            scheduler,
            group,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.emulator
            .invoke(apigw(method, path, body))
            .await
            .expect("answers")
    }
}

/// `POST /orchestrate/v1/jobs/rearm` (one page: the tests have fewer jobs than one).
const REARM: &str = "/orchestrate/v1/jobs/rearm";

fn body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn the_jobs_api_creates_a_job_with_its_rule_and_deleting_it_removes_the_rule() {
    let w = World::new(1).await;
    let prefix = format!(
        "t{}-",
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    );
    let _api = api(&w, &prefix, &Arc::new(Emulator::start().await)).await;
    // WHEN a job is created through API Gateway
    let template = "{cluster} Hourly Backup {datetime:RFC3339}";
    let response = w
        .create_job("My Hourly Backup", "0 */1 * * *", template)
        .await;
    assert!(
        response["statusCode"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s)),
        "{response}"
    );
    let id = body(&response)["id"].as_str().expect("an id").to_owned();
    // THEN its rule targets the runner with the input transformer
    let rule = format!("{prefix}{id}");
    let described = w
        .events
        .describe_rule()
        .name(&rule)
        .send()
        .await
        .expect("the rule exists");
    assert_eq!(described.schedule_expression(), Some("cron(0 * * * ? *)"));
    // with the retry policy and the dead-letter queue of DEAD_LETTER_QUEUE_ARN
    assert_eq!(
        only_target(&w.events, &rule).await,
        expected_runner_target(RUNNER_ARN, &id, Some(DEAD_LETTER_ARN))
    );
    // AND it is listed
    let response = w.api("GET", JOBS, None).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(body(&response)["jobs"][0]["id"], id.as_str());

    // WHEN a job with an invalid schedule is posted THEN 400 and no rule, no job
    let response = w.create_job("Too often", "*/30 * * * *", "x").await;
    assert_eq!(response["statusCode"], 400, "{response}");
    assert_eq!(rules(&w.events, &prefix).await.len(), 1);

    // WHEN the job is deleted THEN its rule is gone and the job is marked deleted
    let response = w.api("DELETE", &format!("{JOBS}/{id}"), None).await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let left = rules(&w.events, &prefix).await;
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        w.table.store().get_job(&id).await.unwrap().unwrap().status,
        JobStatus::Deleted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn run_now_answers_202_at_once_and_the_runner_makes_the_run() {
    // GIVEN the jobs API and the runner, each its own process, the API's Lambda client
    // pointed (AWS_ENDPOINT_URL_LAMBDA) at an Invoke endpoint that hands asynchronous
    // invocations to the runner through its Runtime API emulator
    let w = World::new(1).await;
    let job = w.add_job().await;
    let runner = Arc::new(Emulator::start().await);
    let _runner = Function::start("backup-runner", &runner, &w.proxy.url(), &w.table.name, &[]);
    let prefix = format!(
        "t{}-",
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    );
    let _api = api(&w, &prefix, &runner).await;
    ok(&w.api("GET", JOBS, None).await);
    // AND a snapshot that stays pending
    w.proxy.hold_snapshots_pending(true);
    // WHEN an operator runs the job now
    let started = Instant::now();
    let response = w.api("POST", &format!("{JOBS}/{job}/run"), None).await;
    let answered = started.elapsed();
    // THEN the API answers 202 with the run's history id at once, the run `queued` or
    // already claimed
    assert_eq!(response["statusCode"], 202, "{response}");
    assert!(
        answered < Duration::from_secs(1),
        "answered in {answered:?}"
    );
    let history_id = body(&response)["historyId"].clone();
    assert!(history_id.is_string(), "{response}");
    // AND the runner received the invocation and made the run: its snapshot started and the
    // cluster held while it is pending
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.history_status(&history_id).await != RunStatus::Running
        || w.snapshots_of_job(&job).await.is_empty()
    {
        assert!(Instant::now() < deadline, "the runner never made the run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let invocations = w.proxy.invocations();
    assert_eq!(invocations.len(), 1, "{invocations:?}");
    assert_eq!(invocations[0]["historyId"], history_id);
    assert_eq!(invocations[0]["jobId"], job.as_str());
    // WHEN EC2 notifies the snapshot's end THEN the run succeeded
    w.proxy.hold_snapshots_pending(false);
    let snapshot = w.snapshots_of_job(&job).await[0]
        .snapshot_id()
        .unwrap()
        .to_owned();
    let settled = runner
        .invoke(snapshot_notification(&snapshot, "succeeded"))
        .await
        .expect("succeeds");
    assert_eq!(settled["settled"][0]["outcome"], "available", "{settled}");
    assert_eq!(w.history_status(&history_id).await, RunStatus::Succeeded);
    // AND a second delivery of the same invocation does nothing
    let again = runner
        .invoke(invocations[0].clone())
        .await
        .expect("succeeds");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(w.snapshots_of_job(&job).await.len(), 1);
}

/// The clusters and backups of the default project, in the API.
const MESDB: &str = "/mesdb/v1/organizations/default/projects/default";

/// Asserts that an API Gateway answer is a 2xx; its body.
fn ok(response: &Value) -> Value {
    assert!(
        response["statusCode"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s)),
        "{response}"
    );
    body(response)
}

/// What [`notify_until`] waits for: a run's history item, or a manual backup, to settle.
enum Awaited<'a> {
    Run(&'a Value),
    Backup(&'a str),
}

/// Sends EC2's notification of every snapshot of `cluster` to the runner behind `runner`
/// until `awaited` has settled (its backup may still be starting in the background).
async fn notify_until(w: &World, runner: &Emulator, cluster: &str, awaited: Awaited<'_>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let store = w.table.store();
    loop {
        for s in snapshots_tagged(&w.ec2, "backup:cluster-id", cluster).await {
            let event = snapshot_notification(s.snapshot_id().unwrap(), "succeeded");
            runner.invoke(event).await.expect("a notification succeeds");
        }
        let settled = match awaited {
            Awaited::Run(id) => w.history_status(id).await.is_final(),
            Awaited::Backup(id) => store
                .get_backup(id)
                .await
                .unwrap()
                .is_some_and(|b| b.status != backup_core::retention::BackupStatus::Creating),
        };
        if settled {
            return;
        }
        assert!(Instant::now() < deadline, "the backup never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operations of `function`'s list in `backup_aws::iam`.
fn listed(function: backup_aws::iam::Function) -> std::collections::BTreeSet<String> {
    function
        .calls
        .iter()
        .map(|c| c.operation.to_owned())
        .collect()
}

/// The job ids of `response`'s `rearmed`.
fn rearmed(response: &Value) -> Vec<String> {
    let body = ok(response);
    assert!(body["nextToken"].is_null(), "one page: {body}");
    let mut ids: Vec<String> = body["rearmed"]
        .as_array()
        .expect("rearmed")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn with_trigger_scheduler_jobs_get_schedules_all_or_nothing_and_rearm_moves_them_back_and_forth(
) {
    let w = World::new(1).await;
    let prefix = format!(
        "t{}-",
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    );
    // GIVEN the stack on rules, with a job whose two day fields are restricted (two rules)
    let _rules_api = api(&w, &prefix, &Arc::new(Emulator::start().await)).await;
    let template = "{cluster} #{index}";
    let both_days = body(
        &w.create_job("Monthly or Mondays", "0 5 1 * MON", template)
            .await,
    );
    let j1 = both_days["id"].as_str().expect("an id").to_owned();
    assert_eq!(rules(&w.events, &prefix).await.len(), 2);

    // WHEN Trigger becomes `scheduler` and a job is created through that jobs-api
    let s = SchedulerApi::start(&w, &prefix).await;
    let job = json!({
        "description": "Hourly", "schedule": "0 * * * *", "type": "ScheduledBackup",
        "data": {"clusterId": w.cluster, "description": template, "maxBackupCount": 2}
    });
    let j2 = ok(&s.call("POST", JOBS, Some(&job)).await)["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    // THEN it has one schedule in the group, exactly as we send it, and no rule
    let name = |job: &str, n: usize| backup_aws::eventbridge::rule_name(&prefix, job, n);
    assert_eq!(schedule_names(&s.scheduler, &s.group).await, [name(&j2, 0)]);
    let target =
        expected_schedule_target(RUNNER_ARN, SCHEDULER_ROLE_ARN, &j2, Some(DEAD_LETTER_ARN));
    let made = schedule(&s.scheduler, &s.group, &name(&j2, 0)).await;
    assert_job_schedule(&made, "cron(0 * * * ? *)", &target);
    assert_eq!(
        rules(&w.events, &prefix).await.len(),
        2,
        "only the first job's"
    );

    // WHEN a job's second schedule cannot be made (Scheduler refuses the second
    // CreateSchedule) THEN the API says so and neither the job nor its first schedule stays
    w.proxy.inject_after(
        "scheduler:CreateSchedule",
        "ServiceQuotaExceededException",
        402,
        1,
        1,
    );
    let refused = json!({
        "description": "Refused", "schedule": "0 6 1 * MON", "type": "ScheduledBackup",
        "data": {"clusterId": w.cluster, "description": template, "maxBackupCount": 2}
    });
    let answer = s.call("POST", JOBS, Some(&refused)).await;
    assert_eq!(answer["statusCode"], 503, "{answer}");
    assert!(
        body(&answer)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ServiceQuotaExceededException")),
        "{answer}"
    );
    let jobs = body(&s.call("GET", JOBS, None).await)["jobs"].clone();
    assert_eq!(jobs.as_array().map(Vec::len), Some(2), "{jobs}");
    assert_eq!(schedule_names(&s.scheduler, &s.group).await, [name(&j2, 0)]);

    // WHEN `jobs rearm` runs on the scheduler stack
    let mut both = vec![j1.clone(), j2.clone()];
    both.sort();
    assert_eq!(rearmed(&s.call("POST", REARM, None).await), both);
    // THEN the first job's two rules became two schedules (one per day field), and no rule
    // is left
    let mut expected = vec![name(&j1, 0), name(&j1, 1), name(&j2, 0)];
    expected.sort();
    assert_eq!(schedule_names(&s.scheduler, &s.group).await, expected);
    let j1_target =
        expected_schedule_target(RUNNER_ARN, SCHEDULER_ROLE_ARN, &j1, Some(DEAD_LETTER_ARN));
    for (n, expression) in ["cron(0 5 1 * ? *)", "cron(0 5 ? * MON *)"]
        .iter()
        .enumerate()
    {
        let made = schedule(&s.scheduler, &s.group, &name(&j1, n)).await;
        assert_job_schedule(&made, expression, &j1_target);
    }
    let left = rules(&w.events, &prefix).await;
    assert!(left.is_empty(), "{left:?}");

    // WHEN Trigger goes back to `rules` and `jobs rearm` runs there
    assert_eq!(rearmed(&w.api("POST", REARM, None).await), both);
    // THEN every job has its rules again, each targeting the runner, and no schedule is left
    let mut names: Vec<String> = rules(&w.events, &prefix)
        .await
        .iter()
        .filter_map(|r| r.name().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names, expected);
    for rule in &names {
        let job = if rule.starts_with(&name(&j1, 0)) {
            &j1
        } else {
            &j2
        };
        assert_eq!(
            only_target(&w.events, rule).await,
            expected_runner_target(RUNNER_ARN, job, Some(DEAD_LETTER_ARN))
        );
    }
    assert!(schedule_names(&s.scheduler, &s.group).await.is_empty());

    // WHEN the scheduler stack deletes a job still on rules THEN its rule goes too
    ok(&s.call("DELETE", &format!("{JOBS}/{j2}"), None).await);
    assert_eq!(
        rules(&w.events, &prefix).await.len(),
        2,
        "the first job's only"
    );
    let _ = s
        .scheduler
        .delete_schedule_group()
        .name(&s.group)
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn each_function_makes_exactly_the_calls_its_iam_list_names() {
    // GIVEN both functions, each signing as itself, and an instance tagged for a cluster
    // (and a cluster of two volumes, whose restore can fail half-way)
    let w = World::new(2).await;
    let prefix = format!(
        "t{}-",
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    );
    // (the runner behind an emulator of its own: an invocation goes to whichever process asks)
    let runner_invocations = Arc::new(Emulator::start().await);
    let _api = api(&w, &prefix, &runner_invocations).await;
    let _runner = Function::start(
        "backup-runner",
        &runner_invocations,
        &w.proxy.url(),
        &w.table.name,
        &[],
    );
    let tag = backup_testkit::unique("orders-");
    backup_testkit::ec2::instance_tagged(&w.ec2, "Cluster", &tag).await;
    let cluster = format!("c{}", chrono::Utc::now().timestamp_micros());
    let register = |id: &str, target: Value| {
        let mut request = json!({"id": id, "description": "Orders DB", "region": "us-east-1"});
        request
            .as_object_mut()
            .unwrap()
            .extend(target.as_object().unwrap().clone());
        request
    };

    // WHEN an operator drives every route that reaches AWS through the jobs API
    let clusters = format!("{MESDB}/clusters");
    let tagged = register(
        &cluster,
        json!({"provider": "aws-ebs", "instanceTag": format!("Cluster={tag}")}),
    );
    ok(&w.api("POST", &clusters, Some(&tagged)).await);
    let job = json!({
        "description": "Orders hourly",
        "schedule": "0 * * * *",
        "type": "ScheduledBackup",
        "data": {"clusterId": cluster, "description": "{cluster} #{index}", "maxBackupCount": 2}
    });
    let job = ok(&w.api("POST", JOBS, Some(&job)).await)["id"]
        .as_str()
        .expect("a job id")
        .to_owned();
    ok(&w.api("GET", JOBS, None).await);
    // AND the stack's Trigger becomes `scheduler`: a jobs-api with TRIGGER=scheduler moves
    // the job's rule to a schedule, twice (the second finds it: UpdateSchedule), and the
    // rules jobs-api moves it back
    let scheduler_api = SchedulerApi::start(&w, &prefix).await;
    ok(&scheduler_api.call("POST", REARM, None).await);
    ok(&scheduler_api.call("POST", REARM, None).await);
    ok(&w.api("POST", REARM, None).await);
    // (each backup holds the cluster until EC2's notification of its snapshots reaches the
    // runner: sent here until the backup, started in the background, has settled)
    let run = ok(&w.api("POST", &format!("{JOBS}/{job}/run"), None).await)["historyId"].clone();
    notify_until(&w, &runner_invocations, &cluster, Awaited::Run(&run)).await;
    let manual = json!({"description": "before the upgrade", "sourceClusterId": cluster});
    let manual = ok(&w
        .api("POST", &format!("{MESDB}/backups"), Some(&manual))
        .await)["id"]
        .as_str()
        .expect("a backup id")
        .to_owned();
    notify_until(&w, &runner_invocations, &cluster, Awaited::Backup(&manual)).await;
    // AND the job's rule fires twice, so the runner prunes the oldest of three backups: the
    // first settled by its notification, the second by the sweeper
    let report = runner_invocations
        .invoke(transformer_input(&job, &at(5)))
        .await
        .expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    let run = report["historyId"].clone();
    notify_until(&w, &runner_invocations, &cluster, Awaited::Run(&run)).await;
    let report = runner_invocations
        .invoke(transformer_input(&job, &at(6)))
        .await
        .expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    // (and fires once more while that backup still holds the cluster: a run that finds it
    // locked is recorded by itself, to fail)
    let refused = runner_invocations
        .invoke(transformer_input(&job, &at(7)))
        .await
        .expect("succeeds");
    assert_eq!(refused["errorCode"], "cluster_locked", "{refused}");
    let swept = runner_invocations
        .invoke(json!({"sweep": true}))
        .await
        .expect("succeeds");
    assert_eq!(
        swept["sweep"]["settled"].as_array().map(Vec::len),
        Some(1),
        "{swept}"
    );
    assert!(pruned_any(&w, &job).await, "the runner pruned a backup");
    ok(&w
        .api("DELETE", &format!("{MESDB}/backups/{manual}"), None)
        .await);
    // AND an operator deletes a backup a stopped process left without its snapshot ids
    // (its snapshots are found by their `backup:backup-id` tag)
    let left = backup_engine::BackupEntry {
        size_bytes: None,
        verification: None,
        id: RandomIds::default().new_id(),
        scope: scope(),
        job_id: None,
        cluster_id: cluster.clone(),
        cluster_description: "Orders DB".into(),
        provider: "aws-ebs".into(),
        description: "left half-way".into(),
        created: chrono::Utc::now(),
        status: backup_core::retention::BackupStatus::Defunct,
        index: 99,
        location: Some(r#"{"region":"us-east-1","snapshotIds":[]}"#.into()),
        error_code: Some(RunFailure::Interrupted),
        details: None,
    };
    assert!(w.table.store().insert_backup(&left).await.unwrap());
    ok(&w
        .api("DELETE", &format!("{MESDB}/backups/{}", left.id), None)
        .await);
    // AND a cluster named by volume ids (the world's) is backed up by both functions: a
    // manual backup through the API, and a run of a job of it (each volume on its own
    // `CreateSnapshot`, where the tagged cluster's instance took one `CreateSnapshots`)
    let by_volumes = json!({"description": "by volume", "sourceClusterId": w.cluster});
    let by_volumes = ok(&w
        .api("POST", &format!("{MESDB}/backups"), Some(&by_volumes))
        .await)["id"]
        .as_str()
        .expect("a backup id")
        .to_owned();
    notify_until(
        &w,
        &runner_invocations,
        &w.cluster,
        Awaited::Backup(&by_volumes),
    )
    .await;
    let volume_job = w.add_job().await;
    let report = runner_invocations
        .invoke(transformer_input(&volume_job, &at(7)))
        .await
        .expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    let run = report["historyId"].clone();
    notify_until(&w, &runner_invocations, &w.cluster, Awaited::Run(&run)).await;
    for function in ["jobs-api", "backup-runner"] {
        let made = w.proxy.operations_of(function);
        assert!(made.contains("ec2:CreateSnapshots"), "{function}: {made:?}");
        assert!(made.contains("ec2:CreateSnapshot"), "{function}: {made:?}");
    }
    // AND a backup of the volumes is restored as jobs-api restores one: a first attempt
    // whose second CreateVolume fails (the volume made before it is deleted), one settled by
    // its volumes' notifications, and one whose failed volume the runner deletes with the
    // rest
    w.proxy
        .inject_after("ec2:CreateVolume", "VolumeLimitExceeded", 400, 1, 1);
    assert!(start_restore(&w, &by_volumes, Duration::from_secs(3600))
        .await
        .is_err());
    let restoring = start_restore(&w, &by_volumes, Duration::from_secs(3600))
        .await
        .unwrap();
    for volume in &restoring.volumes {
        runner_invocations
            .invoke(volume_notification(volume, "available"))
            .await
            .expect("succeeds");
    }
    let failing = start_restore(&w, &by_volumes, Duration::from_secs(3600))
        .await
        .unwrap();
    let failed = runner_invocations
        .invoke(volume_notification(&failing.volumes[0], "failed"))
        .await
        .expect("succeeds");
    assert_eq!(failed["restored"]["outcome"], "failed", "{failed}");
    let spare = format!("{cluster}-spare");
    let spare_request = register(
        &spare,
        json!({"provider": "aws-ebs", "volumeIds": w.volumes}),
    );
    ok(&w.api("POST", &clusters, Some(&spare_request)).await);
    ok(&w.api("DELETE", &format!("{clusters}/{spare}"), None).await);
    ok(&w.api("DELETE", &format!("{JOBS}/{job}"), None).await);

    // THEN each function made exactly the calls of its list: nothing its role would refuse,
    // and nothing on its list that no code path of the function makes
    // (`job-resource` runs in tests/job_resource.rs, which checks its list)
    for function in [backup_aws::iam::RUNNER, backup_aws::iam::JOBS_API] {
        let made = w.proxy.operations_of(function.name);
        let listed = listed(function);
        let unlisted: Vec<_> = made.difference(&listed).collect();
        let unused: Vec<_> = listed.difference(&made).collect();
        assert!(
            unlisted.is_empty() && unused.is_empty(),
            "{}: made but not listed {unlisted:?}; listed but never made {unused:?} (drive \
             the path that makes it here, or take it off the list and the role)",
            function.name
        );
    }
    assert_eq!(w.proxy.calls_not_allowed(), []);
}

/// Whether one of `job`'s backups was pruned (is `deleted`).
async fn pruned_any(w: &World, job: &str) -> bool {
    // The job index holds live backups only: a pruned one is found in the scope's list.
    let by_job = BackupFilter {
        job_id: Some(job.to_owned()),
        cluster_id: None,
    };
    w.table
        .store()
        .list_backups(&scope(), &by_job, &backup_engine::PageRequest::everything())
        .await
        .unwrap()
        .items
        .iter()
        .any(|b| b.status == backup_core::retention::BackupStatus::Deleted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn one_run_of_a_one_volume_cluster_and_its_settle_make_eight_aws_calls() {
    // GIVEN a job on a one-volume cluster with nothing to prune
    let (w, job, _runner) = one_job_and_a_runner(1).await;
    w.proxy.take_calls();
    // WHEN its rule fires and EC2 then notifies the snapshot's completion
    let report = w.fire(&job, 5).await.expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    let start = w.proxy.take_calls();
    let settled = w.settle(&job).await;
    assert_eq!(
        settled[0]["settled"][0]["outcome"], "available",
        "{settled:?}"
    );
    let settle = w.proxy.take_calls();
    // THEN the two invocations made 8 AWS calls (SPEC §16: at most 8)
    assert_eq!(
        start,
        [
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:TransactWriteItems",
            "ec2:CreateSnapshot",
            "dynamodb:TransactWriteItems"
        ]
    );
    assert_eq!(
        settle,
        [
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:TransactWriteItems"
        ]
    );
}

/// Figures for scripts/bench-aws.sh: the runner's init and cold/warm invocation times
/// through the emulator, and the AWS calls of one successful run with nothing to prune.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/bench-aws.sh"]
async fn bench_runner_figures() {
    let w = World::new(1).await;
    let job = w.add_job().await;
    w.proxy.take_calls();
    w.proxy.take_waited();
    let spawned = Instant::now();
    let _runner = w.runner(&[]);
    w.emulator.wait_for_polls(1).await;
    let init = w.emulator.first_poll().unwrap() - spawned;
    let started = Instant::now();
    let report = w.fire(&job, 5).await.expect("succeeds");
    let cold = started.elapsed();
    assert_eq!(report["status"], "running", "{report}");
    let start_calls = w.proxy.take_calls();
    let waited = w.proxy.take_waited();
    // The notification's invocation: the second (and last) of the run.
    let settling = Instant::now();
    let settled = w.settle(&job).await;
    let settle = settling.elapsed();
    assert_eq!(
        settled[0]["settled"][0]["outcome"], "available",
        "{settled:?}"
    );
    let settle_calls = w.proxy.take_calls();
    let mut warm = Vec::new();
    for hour in 6..16 {
        let started = Instant::now();
        let report = w.fire(&job, hour).await.expect("succeeds");
        warm.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(report["status"], "running");
        w.settle(&job).await;
    }
    warm.sort_by(f64::total_cmp);
    let figures = json!({
        "runnerInitMs": init.as_secs_f64() * 1000.0,
        "runnerColdStartMs": (init + cold).as_secs_f64() * 1000.0,
        "runnerFirstInvocationMs": cold.as_secs_f64() * 1000.0,
        "runnerWarmInvocationMedianMs": warm[warm.len() / 2],
        "firstInvocationWaitingOnAwsMs": waited.as_secs_f64() * 1000.0,
        "runnerColdStartOwnMs": (init + cold).saturating_sub(waited).as_secs_f64() * 1000.0,
        "settleInvocationMs": settle.as_secs_f64() * 1000.0,
        "lambdaMsBilledPerRun": (cold + settle).as_secs_f64() * 1000.0,
        "awsCallsOneRunNothingToPrune": start_calls.len() + settle_calls.len(),
        "awsCallsStart": start_calls,
        "awsCallsSettle": settle_calls,
    });
    println!("BENCH {figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn the_runner_writes_one_embedded_metric_line_per_run_end() {
    let w = World::new(1).await;
    let job = w.add_job().await;
    let runner = Function::start_capturing(
        "backup-runner",
        &w.emulator,
        &w.proxy.url(),
        &w.table.name,
        &[],
    );
    let emf_lines = || -> Vec<Value> {
        runner
            .stdout_lines()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|record| record.get("_aws").is_some())
            .collect()
    };
    // GIVEN the cluster held by an operator
    let store = w.table.store();
    let holder = LockHolder {
        operation: "expand-disk".into(),
        job_id: None,
        run_id: None,
    };
    let Acquisition::Acquired(lock) = store
        .try_acquire(
            &w.cluster,
            &holder,
            chrono::Utc::now(),
            chrono::Duration::minutes(10),
        )
        .await
        .unwrap()
    else {
        panic!("the cluster's lock was free");
    };
    // WHEN the job fires
    let report = w.fire(&job, 5).await.expect("succeeds");
    assert_eq!(report["errorCode"], "cluster_locked", "{report}");
    // THEN the runner wrote one Embedded Metric Format line for that run's end
    let deadline = Instant::now() + Duration::from_secs(30);
    while emf_lines().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no EMF line: {:?}",
            runner.stdout_lines()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = emf_lines().remove(0);
    assert_eq!(
        first["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "ScheduledBackups"
    );
    assert_eq!(first["Outcome"], "failed", "{first}");
    assert_eq!(first["ErrorCode"], "cluster_locked", "{first}");
    assert_eq!(first["LockConflicts"], 1, "{first}");
    assert_eq!(first["Runs"], 1, "{first}");
    assert_eq!(first["FunctionName"], "backup-runner", "{first}");
    assert_eq!(first["jobId"], job.as_str(), "{first}");

    // WHEN the lock is released, the next firing starts its snapshot (no end yet) and EC2's
    // notification settles it
    assert!(store.release(&w.cluster, lock.fencing_token).await.unwrap());
    let report = w.fire(&job, 6).await.expect("succeeds");
    assert_eq!(report["status"], "running", "{report}");
    let settled = w.settle(&job).await;
    assert_eq!(
        settled[0]["settled"][0]["outcome"], "available",
        "{settled:?}"
    );
    // THEN the settle wrote the second line, a success
    let deadline = Instant::now() + Duration::from_secs(30);
    while emf_lines().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no second EMF line: {:?}",
            runner.stdout_lines()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines = emf_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["Outcome"], "succeeded", "{}", lines[1]);
    assert_eq!(lines[1]["ErrorCode"], "none", "{}", lines[1]);
    assert_eq!(lines[1]["LockConflicts"], 0, "{}", lines[1]);
}

// ---------------------------------------------------------------------------------------
// Restores of aws-ebs backups (SPEC §14), settled later (§16)

/// The SDK configuration of a process signing as `function`, its calls through the world's
/// proxy (recorded as that function's).
async fn signed_as(w: &World, function: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(w.proxy.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            support::access_key_of(function),
            "testing",
            None,
            None,
            "tests",
        ))
        .load()
        .await
}

/// A restore started as `jobs-api` starts one: the new cluster recorded `creating`, its
/// `restore` lock taken, the provider's volumes made, and the restore parked to settle
/// before `timeout`.
struct Restoring {
    cluster: String,
    volumes: Vec<String>,
}

/// Starts a restore of `backup_id` into us-east-1a, in this process signing as `jobs-api`
/// (the engine's steps of a restore on the deployed API); the provider's error when it
/// fails.
async fn start_restore(
    w: &World,
    backup_id: &str,
    timeout: Duration,
) -> Result<Restoring, backup_engine::ProviderError> {
    use backup_engine::ports::BackupProvider;
    let sdk = signed_as(w, "jobs-api").await;
    let store =
        backup_aws::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), w.table.name.clone());
    let backup = store
        .get_backup(backup_id)
        .await
        .unwrap()
        .expect("the backup");
    let source = store
        .get_cluster(&w.cluster)
        .await
        .unwrap()
        .expect("its cluster");
    let cluster = format!("r{}", chrono::Utc::now().timestamp_micros());
    let target = ClusterTarget::AwsEbs {
        volume_ids: Vec::new(),
        instance_tag: None,
    };
    let record = ClusterRecord {
        id: cluster.clone(),
        description: "Orders DB (restored)".into(),
        target: target.clone(),
        status: backup_core::api::ClusterStatus::Creating,
        source_backup_id: Some(backup_id.to_owned()),
        details: None,
        created: chrono::Utc::now(),
        ..source.clone()
    };
    assert!(store.insert_cluster(&record).await.unwrap());
    let holder = LockHolder {
        operation: backup_engine::OPERATION_RESTORE.into(),
        job_id: None,
        run_id: Some(backup_id.to_owned()),
    };
    let Acquisition::Acquired(lock) = store
        .try_acquire(
            &cluster,
            &holder,
            chrono::Utc::now(),
            chrono::Duration::seconds(60),
        )
        .await
        .unwrap()
    else {
        panic!("a new cluster is free")
    };
    let request = backup_engine::RestoreRequest {
        backup: backup_engine::BackupHandle::new(backup_id, backup.location.unwrap_or_default()),
        source,
        cluster_id: cluster.clone(),
        target,
        restore_id: cluster.clone(),
        progress: Default::default(),
        availability_zone: Some("us-east-1a".into()),
        volume_type: None,
    };
    let provider = backup_aws::EbsProvider::new(&sdk);
    let backup_engine::Restoration::Pending(handle) = provider.restore(&request).await? else {
        panic!("an EBS restore settles later")
    };
    let settings = backup_aws::AwsSettings::from_lookup(|name| {
        (name == "TABLE_NAME").then(|| w.table.name.clone())
    })
    .unwrap();
    let config = backup_engine::EngineConfig {
        settle_later: Some(timeout),
        ..Default::default()
    };
    let engine = backup_aws::engine(&settings, &sdk, backup_aws::Triggers::None, config).unwrap();
    engine
        .park_restore(handle.clone(), backup_id, "aws-ebs", lock.fencing_token)
        .await
        .unwrap();
    Ok(Restoring {
        cluster,
        volumes: handle.keys,
    })
}

/// EC2's `EBS Volume Notification` (the fixture) for the creation of `volume`.
fn volume_notification(volume: &str, result: &str) -> Value {
    let mut e: Value =
        serde_json::from_str(include_str!("fixtures/ebs-volume-notification.json")).unwrap();
    e["resources"] = json!([format!(
        "arn:aws:ec2:us-east-1:123456789012:volume/{volume}"
    )]);
    e["detail"]["result"] = json!(result);
    if result != "available" {
        e["detail"]["cause"] = json!("The snapshot's KMS key is disabled.");
    }
    e
}

impl World {
    /// The runner's answer to EC2's notification that `volume` was made (or not).
    async fn notify_volume(&self, volume: &str, result: &str) -> Value {
        self.emulator
            .invoke(volume_notification(volume, result))
            .await
            .expect("a notification always succeeds")
    }

    /// A backup of the world's cluster by `job`, made and settled; its id and location.
    async fn settled_backup(&self, job: &str, hour: u32) -> (String, String) {
        let report = self.fire(job, hour).await.expect("succeeds");
        assert_eq!(report["status"], "running", "{report}");
        self.settle(job).await;
        let id = report["historyId"].as_str().unwrap();
        let store = self.table.store();
        let item = store.get_history(id).await.unwrap().unwrap().item;
        assert_eq!(item.status, RunStatus::Succeeded, "{}", item.details);
        let backup = store
            .get_backup(&item.linked_resource)
            .await
            .unwrap()
            .unwrap();
        (backup.id, backup.location.unwrap_or_default())
    }

    /// The volumes made from `backup_id` that EC2 still has.
    async fn restored_volumes(&self, backup_id: &str) -> Vec<String> {
        let out = self
            .ec2
            .describe_volumes()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag:backup:restored-from")
                    .values(backup_id)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut ids: Vec<String> = out
            .volumes()
            .iter()
            .filter(|v| v.state().map(|s| s.as_str()) != Some("deleted"))
            .filter_map(|v| v.volume_id().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    async fn cluster_record(&self, id: &str) -> ClusterRecord {
        self.table
            .store()
            .get_cluster(id)
            .await
            .unwrap()
            .expect("the cluster")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn the_jobs_api_refuses_clusters_that_run_commands_with_a_400_on_the_field() {
    let w = World::new(1).await;
    let prefix = format!(
        "t{}-",
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    );
    let _api = api(&w, &prefix, &Arc::new(Emulator::start().await)).await;
    let clusters = format!("{MESDB}/clusters");
    for (request, field) in [
        (
            json!({"id": "pg", "description": "Postgres", "provider": "command",
                   "path": "/srv/pg", "backupCommand": "pg_basebackup -D \"$BACKUP_DIR\""}),
            "backupCommand",
        ),
        (
            json!({"id": "pg", "description": "Postgres", "provider": "directory",
                   "path": "/srv/pg", "preHook": "pg_ctl stop"}),
            "preHook",
        ),
    ] {
        // WHEN a cluster that would run a command is registered through API Gateway
        let refused = w.api("POST", &clusters, Some(&request)).await;
        // THEN it answers 400 on the field, saying why, and stores nothing
        assert_eq!(refused["statusCode"], 400, "{refused}");
        let answer = body(&refused);
        let text = answer.to_string();
        assert!(text.contains(field), "{text}");
        assert!(text.contains("commands_not_allowed"), "{text}");
        assert!(text.contains("AWS deployment"), "{text}");
        assert!(w.table.store().get_cluster("pg").await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_restore_through_the_jobs_api_answers_202_and_the_runner_settles_it() {
    // GIVEN an available backup, then the jobs API on the world's emulator and the runner
    // behind its own
    let (w, job, mut first_runner) = one_job_and_a_runner(1).await;
    let (backup, _) = w.settled_backup(&job, 5).await;
    // (its waiting `/next` call let go of first, or it would take the API's first event)
    first_runner.kill().await;
    w.emulator.wait_for_no_pollers().await;
    let runner = Arc::new(Emulator::start().await);
    let _runner = Function::start("backup-runner", &runner, &w.proxy.url(), &w.table.name, &[]);
    let prefix = format!(
        "t{}-",
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    );
    let _api = api(&w, &prefix, &runner).await;
    let clusters = format!("{MESDB}/clusters");
    // WHEN a restore names a zone the region does not have THEN it answers 400 on the
    // field, and no cluster or volume is made
    let refused = w
        .api(
            "POST",
            &clusters,
            Some(
                &json!({"id": "restored-z", "description": "Orders, restored",
                "sourceBackupId": backup, "availabilityZone": "us-east-1z"}),
            ),
        )
        .await;
    assert_eq!(refused["statusCode"], 400, "{refused}");
    let body = refused["body"].as_str().unwrap_or_default();
    assert!(body.contains("availabilityZone"), "{body}");
    assert!(body.contains("unknown_availability_zone"), "{body}");
    let store = w.table.store();
    assert!(store.get_cluster("restored-z").await.unwrap().is_none());
    assert_eq!(w.restored_volumes(&backup).await, Vec::<String>::new());
    // WHEN it names a zone of the region, while EC2 still makes the volumes
    w.proxy.hold_volumes_creating(true);
    let started = w
        .api(
            "POST",
            &clusters,
            Some(&json!({"id": "restored", "description": "Orders, restored",
                "sourceBackupId": backup, "availabilityZone": "us-east-1a"})),
        )
        .await;
    // THEN the API answers 202 with the new cluster's id, `creating`, one volume made
    assert_eq!(started["statusCode"], 202, "{started}");
    assert!(started["body"]
        .as_str()
        .unwrap_or_default()
        .contains("restored"));
    assert_eq!(
        w.cluster_record("restored").await.status,
        backup_core::api::ClusterStatus::Creating
    );
    let volumes = w.restored_volumes(&backup).await;
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    // WHEN EC2's notification that the volume is made reaches the runner THEN the cluster
    // is available with it, and free
    w.proxy.hold_volumes_creating(false);
    let settled = runner
        .invoke(volume_notification(&volumes[0], "available"))
        .await
        .expect("a notification always succeeds");
    assert_eq!(settled["restored"]["outcome"], "available", "{settled}");
    let restored = w.cluster_record("restored").await;
    assert_eq!(restored.status, backup_core::api::ClusterStatus::Available);
    assert_eq!(
        restored.target,
        ClusterTarget::AwsEbs {
            volume_ids: volumes,
            instance_tag: None
        }
    );
    assert_eq!(
        store.current("restored", chrono::Utc::now()).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_restore_holds_its_new_cluster_until_its_volume_notifications_settle_it_once() {
    use backup_engine::ports::BackupProvider;
    // GIVEN an available backup of a two-volume cluster
    let (w, job, _runner) = one_job_and_a_runner(2).await;
    let (backup, location) = w.settled_backup(&job, 5).await;
    // WHEN it is verified while EC2 still shows its snapshots pending THEN each is named
    let provider = backup_aws::EbsProvider::new(&signed_as(&w, "jobs-api").await);
    let handle = backup_engine::BackupHandle::new(backup.clone(), location);
    w.proxy.hold_snapshots_pending(true);
    let problems = provider.verify(&handle).await.unwrap();
    w.proxy.hold_snapshots_pending(false);
    assert_eq!(problems.len(), 2, "{problems:?}");
    for p in &problems {
        assert!(p.path.starts_with("snap-"), "{p:?}");
        assert!(p.problem.contains("pending, not completed"), "{p:?}");
    }
    // AND once they are completed nothing is wrong
    assert_eq!(provider.verify(&handle).await.unwrap(), []);

    // GIVEN a restore whose second CreateVolume fails, and whose first volume EC2 refuses
    // to delete once (still being made)
    w.proxy
        .inject_after("ec2:CreateVolume", "VolumeLimitExceeded", 400, 1, 1);
    w.proxy.inject("ec2:DeleteVolume", "IncorrectState", 400, 1);
    // WHEN it is started THEN it fails naming EC2's error, and the volume it made is gone
    let error = start_restore(&w, &backup, Duration::from_secs(3600))
        .await
        .err()
        .expect("a failed restore");
    assert!(error.message.contains("VolumeLimitExceeded"), "{error}");
    assert_eq!(w.restored_volumes(&backup).await, Vec::<String>::new());

    // GIVEN volumes that stay `creating` (moto makes them at once; the proxy says otherwise)
    w.proxy.hold_volumes_creating(true);
    // WHEN the restore is started THEN the new cluster is `creating`, held by its restore,
    // with one volume per snapshot
    let r = start_restore(&w, &backup, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(r.volumes.len(), 2);
    let mut volumes = r.volumes.clone();
    volumes.sort();
    assert_eq!(w.restored_volumes(&backup).await, volumes);
    assert_eq!(
        w.cluster_record(&r.cluster).await.status,
        backup_core::api::ClusterStatus::Creating
    );
    let store = w.table.store();
    let lock = store.current(&r.cluster, chrono::Utc::now()).await.unwrap();
    assert_eq!(lock.map(|l| l.operation).as_deref(), Some("restore"));
    // AND a sweep while they are creating changes nothing
    let swept = w.sweep().await;
    assert_eq!(swept["sweep"]["restoresSettled"], json!([]), "{swept}");
    // WHEN a notification for a volume no restore waits on arrives THEN it answers success
    // and writes nothing
    let before = w.table.item_count().await;
    let unknown = w.notify_volume("vol-0123456789abcdef0", "available").await;
    assert_eq!(unknown["restored"]["outcome"], "unknown", "{unknown}");
    assert_eq!(w.table.item_count().await, before);
    // WHEN the first volume's notification arrives while the second is still creating
    // THEN the restore is not settled yet
    let first = w.notify_volume(&r.volumes[0], "available").await;
    assert_eq!(first["restored"]["outcome"], "not-yet", "{first}");
    // WHEN the second is made and its notification arrives THEN the cluster is available
    // with the new volumes, and free
    w.proxy.hold_volumes_creating(false);
    let second = w.notify_volume(&r.volumes[1], "available").await;
    assert_eq!(second["restored"]["outcome"], "available", "{second}");
    assert_eq!(second["restored"]["clusterId"], json!(r.cluster));
    let restored = w.cluster_record(&r.cluster).await;
    assert_eq!(restored.status, backup_core::api::ClusterStatus::Available);
    assert_eq!(
        restored.target,
        ClusterTarget::AwsEbs {
            volume_ids: r.volumes.clone(),
            instance_tag: None
        }
    );
    assert_eq!(restored.source_backup_id.as_deref(), Some(backup.as_str()));
    assert_eq!(
        store.current(&r.cluster, chrono::Utc::now()).await.unwrap(),
        None
    );
    // WHEN the same notification arrives again THEN nothing more happens
    let items = w.table.item_count().await;
    let again = w.notify_volume(&r.volumes[1], "available").await;
    assert_eq!(again["restored"]["outcome"], "unknown", "{again}");
    assert_eq!(w.table.item_count().await, items);

    // GIVEN another restore WHEN EC2 notifies that a volume failed THEN its volumes are
    // deleted, and the cluster is failed saying why, and free
    let failing = start_restore(&w, &backup, Duration::from_secs(3600))
        .await
        .unwrap();
    let failed = w.notify_volume(&failing.volumes[0], "failed").await;
    assert_eq!(failed["restored"]["outcome"], "failed", "{failed}");
    let record = w.cluster_record(&failing.cluster).await;
    assert_eq!(record.status, backup_core::api::ClusterStatus::Failed);
    let details = record.details.unwrap_or_default();
    assert!(details.contains("KMS key is disabled"), "{details}");
    assert_eq!(
        w.restored_volumes(&backup).await,
        volumes,
        "only the first restore's are left"
    );
    assert_eq!(
        store
            .current(&failing.cluster, chrono::Utc::now())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn without_a_notification_the_sweep_settles_a_restore_or_fails_it_past_its_deadline() {
    let (w, job, _runner) = one_job_and_a_runner(1).await;
    let (backup, _) = w.settled_backup(&job, 5).await;
    // GIVEN a restore whose notification never comes
    let r = start_restore(&w, &backup, Duration::from_secs(3600))
        .await
        .unwrap();
    // WHEN the sweep runs THEN the cluster is available with its volume
    let swept = w.sweep().await;
    assert_eq!(
        swept["sweep"]["restoresSettled"],
        json!([r.cluster]),
        "{swept}"
    );
    let record = w.cluster_record(&r.cluster).await;
    assert_eq!(record.status, backup_core::api::ClusterStatus::Available);
    // GIVEN a restore whose volume stays creating past its deadline
    w.proxy.hold_volumes_creating(true);
    let late = start_restore(&w, &backup, Duration::from_secs(3))
        .await
        .unwrap();
    let swept = w.sweep().await;
    assert_eq!(swept["sweep"]["restoresTimedOut"], json!([]), "{swept}");
    tokio::time::sleep(Duration::from_millis(3200)).await;
    // WHEN the sweep runs THEN its volume is deleted, the cluster failed saying why, and free
    let swept = w.sweep().await;
    assert_eq!(
        swept["sweep"]["restoresTimedOut"],
        json!([late.cluster]),
        "{swept}"
    );
    let record = w.cluster_record(&late.cluster).await;
    assert_eq!(record.status, backup_core::api::ClusterStatus::Failed);
    let details = record.details.unwrap_or_default();
    assert!(details.contains("SNAPSHOT_TIMEOUT"), "{details}");
    let left = w.restored_volumes(&backup).await;
    assert_eq!(left, r.volumes, "only the first restore's volume is left");
    assert_eq!(
        w.table
            .store()
            .current(&late.cluster, chrono::Utc::now())
            .await
            .unwrap(),
        None
    );
    // AND the next sweep finds nothing more to do
    let swept = w.sweep().await;
    assert_eq!(swept["sweep"]["restoresTimedOut"], json!([]), "{swept}");
}
