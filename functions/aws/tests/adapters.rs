//! The EventBridge triggers and the EBS provider against moto (`AWS_ENDPOINT_URL`; run
//! through scripts/test-aws.sh, which starts it and passes `--include-ignored`).

use backup_aws::eventbridge::{rule_name, TARGET_ID};
use backup_aws::{EbsProvider, EventBridgeTriggers};
use backup_core::api::{ClusterTarget, JobStatus};
use backup_engine::ports::{BackupProvider, TriggerScheduler};
use backup_engine::{BackupRequest, ClusterRecord, Creation, JobRecord, ProviderStatus, Scope};

const RUNNER: &str = "arn:aws:lambda:us-east-1:123456789012:function:backup-runner";

fn job(id: &str, schedule: &str) -> JobRecord {
    JobRecord {
        id: id.into(),
        scope: Scope {
            org: "default".into(),
            project: "default".into(),
        },
        description: "nightly".into(),
        schedule: schedule.into(),
        status: JobStatus::Active,
        cluster_id: "c1".into(),
        template: "{cluster}".into(),
        max_backup_count: 2,
        created: chrono::Utc::now(),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", chrono::Utc::now().timestamp_micros())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_job_gets_one_rule_per_expression_targeting_the_runner_and_loses_them_when_removed() {
    let config = backup_aws::sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let prefix = unique("t-");
    let triggers = EventBridgeTriggers::new(events.clone(), prefix.clone(), RUNNER);
    // GIVEN a schedule whose two day fields are restricted (two EventBridge expressions)
    let j = job("c196ogto0aeqohe3ommq", "0 5 1 * MON");
    // WHEN it is armed
    triggers.register(&j).await.unwrap();
    // THEN there is a rule per expression, each targeting the runner with the transformer
    let rules = events
        .list_rules()
        .name_prefix(&prefix)
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = rules
        .rules()
        .iter()
        .filter_map(|r| r.name().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [rule_name(&prefix, &j.id, 0), rule_name(&prefix, &j.id, 1)]
    );
    let expressions: Vec<String> = rules
        .rules()
        .iter()
        .filter_map(|r| r.schedule_expression().map(str::to_owned))
        .collect();
    let mut expected = j.parsed_schedule().unwrap().eventbridge();
    expected.sort();
    let mut got = expressions.clone();
    got.sort();
    assert_eq!(got, expected);
    for name in &names {
        let targets = events
            .list_targets_by_rule()
            .rule(name)
            .send()
            .await
            .unwrap();
        let [target] = targets.targets() else {
            panic!("one target on {name}: {targets:?}")
        };
        assert_eq!(target.id(), TARGET_ID);
        assert_eq!(target.arn(), RUNNER);
        let t = target.input_transformer().expect("an input transformer");
        assert_eq!(
            t.input_paths_map()
                .and_then(|m| m.get("time"))
                .map(String::as_str),
            Some("$.time")
        );
        assert_eq!(
            t.input_template(),
            format!(r#"{{"jobId": "{}", "scheduledTime": <time>}}"#, j.id)
        );
    }
    // WHEN it is re-armed with a one-expression schedule THEN the second rule goes
    triggers.register(&job(&j.id, "0 5 * * *")).await.unwrap();
    let rules = events
        .list_rules()
        .name_prefix(&prefix)
        .send()
        .await
        .unwrap();
    assert_eq!(rules.rules().len(), 1);
    // WHEN it is removed (twice: removing nothing succeeds) THEN no rule is left
    triggers.remove(&j.id).await.unwrap();
    triggers.remove(&j.id).await.unwrap();
    let rules = events
        .list_rules()
        .name_prefix(&prefix)
        .send()
        .await
        .unwrap();
    assert!(rules.rules().is_empty(), "{rules:?}");
}

/// The snapshots tagged with `backup_id`.
async fn snapshots_of(
    ec2: &aws_sdk_ec2::Client,
    backup_id: &str,
) -> aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput {
    ec2.describe_snapshots()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:backup:backup-id")
                .values(backup_id)
                .build(),
        )
        .send()
        .await
        .unwrap()
}

pub async fn volume(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.create_volume()
        .availability_zone("us-east-1a")
        .size(8)
        .send()
        .await
        .unwrap()
        .volume_id
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn an_ebs_backup_is_one_tagged_snapshot_per_volume_and_pruning_deletes_them() {
    let config = backup_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let volumes = vec![volume(&ec2).await, volume(&ec2).await];
    let provider = EbsProvider::new(&config);
    let backup_id = unique("b");
    let request = BackupRequest {
        backup_id: backup_id.clone(),
        job_id: Some("j1".into()),
        description: "c1 nightly".into(),
        cluster: ClusterRecord {
            id: "c1".into(),
            scope: Scope {
                org: "default".into(),
                project: "default".into(),
            },
            description: "c1".into(),
            region: "us-east-1".into(),
            target: ClusterTarget::AwsEbs {
                volume_ids: volumes.clone(),
                instance_tag: None,
            },
            created: chrono::Utc::now(),
        },
        progress: Default::default(),
    };
    // WHEN a backup is made
    let created = provider.create(&request).await.unwrap();
    // (snapshots outlive the call: the backup settles later, through `status`)
    assert!(matches!(created, Creation::Pending(_)), "{created:?}");
    let handle = created.into_handle();
    // THEN each volume has a snapshot tagged with the job, cluster and backup ids
    let snaps = snapshots_of(&ec2, &backup_id).await;
    let mut snapped: Vec<String> = snaps
        .snapshots()
        .iter()
        .filter_map(|s| s.volume_id().map(str::to_owned))
        .collect();
    snapped.sort();
    let mut expected = volumes.clone();
    expected.sort();
    assert_eq!(snapped, expected);
    for s in snaps.snapshots() {
        let tag = |k: &str| {
            s.tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        assert_eq!(tag("backup:job-id").as_deref(), Some("j1"));
        assert_eq!(tag("backup:cluster-id").as_deref(), Some("c1"));
    }
    assert_eq!(
        provider.status(&handle).await.unwrap(),
        ProviderStatus::Available
    );
    // WHEN it is pruned THEN its snapshots are gone, and deleting again succeeds
    provider.delete(&handle).await.unwrap();
    provider.delete(&handle).await.unwrap();
    let left = snapshots_of(&ec2, &backup_id).await;
    assert!(left.snapshots().is_empty());
    // AND a backup whose snapshots vanished is reported failed, not available
    assert!(matches!(
        provider.status(&handle).await.unwrap(),
        ProviderStatus::Failed(_)
    ));
}
