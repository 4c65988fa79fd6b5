//! The EventBridge triggers (rules and Scheduler schedules) and the EBS provider against moto
//! (`AWS_ENDPOINT_URL`; run through scripts/test-aws.sh, which starts it and passes
//! `--include-ignored`).

use aws_sdk_eventbridge::types::Rule;
use backup_aws::ebs::{
    fit_label, RestoreError, SnapshotSet, VolumeSet, VolumesRequest, VolumesState, MAX_DESCRIPTION,
    MAX_TAG_VALUE, NOT_FOUND_GRACE, TAG_RESTORED_FROM, UNKNOWN_VOLUME_TYPE, UNKNOWN_ZONE,
};
use backup_aws::eventbridge::rule_name;
use backup_aws::{EbsProvider, EventBridgeTriggers, ScheduleTarget, SchedulerTriggers};
use backup_core::api::{ClusterTarget, JobStatus};
use backup_engine::ports::{BackupProvider, TriggerScheduler};
use backup_engine::{
    BackupHandle, BackupRequest, ClusterRecord, Creation, JobRecord, ProviderStatus, Scope,
};
use backup_testkit::ec2::{
    instance_tagged_with_data_volumes, snapshots_tagged, snapshotted_volumes, tag, volume,
};
use backup_testkit::eventbridge::{expected_runner_target, only_target, rules};
use backup_testkit::scheduler::{
    assert_job_schedule, create_group, expected_runner_target as expected_schedule_target,
    schedule, schedule_names,
};
use backup_testkit::{unique, DEAD_LETTER_ARN, RUNNER_ARN, SCHEDULER_ROLE_ARN};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_job_gets_one_rule_per_expression_targeting_the_runner_and_loses_them_when_removed() {
    let config = backup_aws::sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let prefix = unique("t-");
    let triggers = EventBridgeTriggers::new(events.clone(), prefix.clone(), RUNNER_ARN)
        .with_dead_letter_queue(Some(DEAD_LETTER_ARN.to_owned()));
    // GIVEN a schedule whose two day fields are restricted (two EventBridge expressions)
    let j = job("c196ogto0aeqohe3ommq", "0 5 1 * MON");
    // WHEN it is armed
    triggers.register(&j).await.unwrap();
    // THEN there is a rule per expression, each targeting the runner with the transformer
    let armed = rules(&events, &prefix).await;
    let sorted = |field: fn(&Rule) -> Option<&str>| {
        let mut values: Vec<String> = armed
            .iter()
            .filter_map(|r| field(r).map(str::to_owned))
            .collect();
        values.sort();
        values
    };
    let names = sorted(Rule::name);
    assert_eq!(
        names,
        [rule_name(&prefix, &j.id, 0), rule_name(&prefix, &j.id, 1)]
    );
    let mut expected = j.parsed_schedule().unwrap().eventbridge();
    expected.sort();
    assert_eq!(sorted(Rule::schedule_expression), expected);
    // (moto keeps a target as it was sent: this is PutTargets' request, to the field)
    for name in &names {
        assert_eq!(
            only_target(&events, name).await,
            expected_runner_target(RUNNER_ARN, &j.id, Some(DEAD_LETTER_ARN))
        );
    }
    // WHEN it is re-armed with a one-expression schedule THEN the second rule goes
    triggers.register(&job(&j.id, "0 5 * * *")).await.unwrap();
    assert_eq!(rules(&events, &prefix).await.len(), 1);
    // WHEN it is removed (twice: removing nothing succeeds) THEN no rule is left
    triggers.remove(&j.id).await.unwrap();
    triggers.remove(&j.id).await.unwrap();
    let left = rules(&events, &prefix).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_rule_made_without_a_dead_letter_queue_still_retries_for_an_hour() {
    let config = backup_aws::sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let prefix = unique("t-");
    // GIVEN triggers with no DEAD_LETTER_QUEUE_ARN (a local `serve --scheduler eventbridge`)
    let triggers = EventBridgeTriggers::new(events.clone(), prefix.clone(), RUNNER_ARN);
    let j = job("c196ogto0aeqohe3ommr", "0 5 * * *");
    // WHEN a job is armed THEN its target retries as always and names no queue
    triggers.register(&j).await.unwrap();
    let target = only_target(&events, &rule_name(&prefix, &j.id, 0)).await;
    assert_eq!(target, expected_runner_target(RUNNER_ARN, &j.id, None));
    triggers.remove(&j.id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_job_gets_one_schedule_per_expression_invoking_the_runner_as_the_role_and_loses_them_when_removed(
) {
    let config = backup_aws::sdk_config().await;
    let client = aws_sdk_scheduler::Client::new(&config);
    let prefix = unique("t-");
    // GIVEN the deployment's schedule group (the template's JobSchedules)
    let group = create_group(&client, &prefix).await;
    let target = ScheduleTarget {
        runner_arn: RUNNER_ARN.to_owned(),
        role_arn: SCHEDULER_ROLE_ARN.to_owned(),
        dead_letter_arn: Some(DEAD_LETTER_ARN.to_owned()),
    };
    let triggers = SchedulerTriggers::new(client.clone(), prefix.clone(), target);
    assert_eq!(triggers.group(), group);
    // GIVEN a schedule whose two day fields are restricted (two EventBridge expressions)
    let j = job("c196ogto0aeqohe3ommq", "0 5 1 * MON");
    // WHEN it is armed
    triggers.register(&j).await.unwrap();
    // THEN the group holds a schedule per expression, named as its rules would be
    let names = [rule_name(&prefix, &j.id, 0), rule_name(&prefix, &j.id, 1)];
    assert_eq!(schedule_names(&client, &group).await, names);
    // AND each is exactly what we send (moto keeps a schedule as it was sent and accepts
    // any expression): its expression in UTC, no flexible window, the runner invoked as the
    // role with the job's input, the retry policy and the dead-letter queue
    let expressions = j.parsed_schedule().unwrap().eventbridge();
    assert_eq!(
        expressions,
        ["cron(0 5 1 * ? *)", "cron(0 5 ? * MON *)"],
        "the core's translation, one expression per day field"
    );
    let expected =
        expected_schedule_target(RUNNER_ARN, SCHEDULER_ROLE_ARN, &j.id, Some(DEAD_LETTER_ARN));
    for (name, expression) in names.iter().zip(&expressions) {
        let s = schedule(&client, &group, name).await;
        assert_eq!(s.group_name(), Some(group.as_str()));
        assert_job_schedule(&s, expression, &expected);
    }

    // WHEN it is armed again with a one-expression schedule (CreateSchedule finds the first
    // schedule: it is updated in place) THEN the first fires the new expression, the second
    // goes
    triggers.register(&job(&j.id, "0 6 * * *")).await.unwrap();
    assert_eq!(schedule_names(&client, &group).await, names[..1]);
    let s = schedule(&client, &group, &names[0]).await;
    assert_job_schedule(&s, "cron(0 6 * * ? *)", &expected);

    // WHEN it is removed (twice: removing nothing succeeds) THEN no schedule is left
    triggers.remove(&j.id).await.unwrap();
    triggers.remove(&j.id).await.unwrap();
    assert!(schedule_names(&client, &group).await.is_empty());

    // GIVEN a remover (a deployment on rules) THEN it removes, and refuses to arm
    let remover = SchedulerTriggers::remover(client.clone(), prefix.clone());
    triggers.register(&j).await.unwrap();
    remover.remove(&j.id).await.unwrap();
    assert!(schedule_names(&client, &group).await.is_empty());
    let err = remover.register(&j).await.unwrap_err();
    assert!(err.message.contains("TRIGGER=rules"), "{err}");
    assert!(schedule_names(&client, &group).await.is_empty());
    let _ = client.delete_schedule_group().name(&group).send().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn an_updated_schedule_moves_onto_the_jobs_rules_and_a_failed_one_leaves_them_as_they_were() {
    let config = backup_aws::sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let prefix = unique("t-");
    let triggers = EventBridgeTriggers::new(events.clone(), prefix.clone(), RUNNER_ARN);
    let expressions = |rules: Vec<Rule>| {
        let mut found: Vec<(String, String)> = rules
            .iter()
            .map(|r| {
                (
                    r.name().unwrap_or_default().to_owned(),
                    r.schedule_expression().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        found.sort();
        found
    };
    // GIVEN an armed hourly job
    let hourly = job("c196ogto0aeqohe3omms", "0 * * * *");
    triggers.register(&hourly).await.unwrap();
    let first = rule_name(&prefix, &hourly.id, 0);
    let second = rule_name(&prefix, &hourly.id, 1);
    // WHEN its schedule becomes one of two expressions
    let two = job(&hourly.id, "0 5 1 * MON");
    triggers.rearm(&hourly, &two).await.unwrap();
    // THEN its rules fire the new expressions, each still targeting the runner
    assert_eq!(
        expressions(rules(&events, &prefix).await),
        [
            (first.clone(), "cron(0 5 1 * ? *)".to_owned()),
            (second.clone(), "cron(0 5 ? * MON *)".to_owned())
        ]
    );
    for name in [&first, &second] {
        assert_eq!(
            only_target(&events, name).await,
            expected_runner_target(RUNNER_ARN, &hourly.id, None)
        );
    }
    // WHEN it goes back to one expression THEN the surplus rule goes
    let daily = job(&hourly.id, "0 6 * * *");
    triggers.rearm(&two, &daily).await.unwrap();
    assert_eq!(
        expressions(rules(&events, &prefix).await),
        [(first.clone(), "cron(0 6 * * ? *)".to_owned())]
    );
    // WHEN the new schedule cannot be armed THEN the error says so and the rule is as it was
    let broken = job(&hourly.id, "not a schedule");
    let err = triggers.rearm(&daily, &broken).await.unwrap_err();
    assert!(err.message.contains("invalid schedule"), "{err}");
    assert_eq!(
        expressions(rules(&events, &prefix).await),
        [(first.clone(), "cron(0 6 * * ? *)".to_owned())]
    );
    triggers.remove(&hourly.id).await.unwrap();
    assert!(rules(&events, &prefix).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn an_updated_schedule_moves_onto_the_jobs_schedules() {
    let config = backup_aws::sdk_config().await;
    let client = aws_sdk_scheduler::Client::new(&config);
    let prefix = unique("t-");
    let group = create_group(&client, &prefix).await;
    let target = ScheduleTarget {
        runner_arn: RUNNER_ARN.to_owned(),
        role_arn: SCHEDULER_ROLE_ARN.to_owned(),
        dead_letter_arn: None,
    };
    let triggers = SchedulerTriggers::new(client.clone(), prefix.clone(), target);
    let expected =
        expected_schedule_target(RUNNER_ARN, SCHEDULER_ROLE_ARN, "c196ogto0aeqohe3omms", None);
    // GIVEN an armed hourly job
    let hourly = job("c196ogto0aeqohe3omms", "0 * * * *");
    triggers.register(&hourly).await.unwrap();
    let names = [
        rule_name(&prefix, &hourly.id, 0),
        rule_name(&prefix, &hourly.id, 1),
    ];
    // WHEN its schedule becomes one of two expressions THEN both schedules fire the new ones
    let two = job(&hourly.id, "0 5 1 * MON");
    triggers.rearm(&hourly, &two).await.unwrap();
    assert_eq!(schedule_names(&client, &group).await, names);
    assert_job_schedule(
        &schedule(&client, &group, &names[0]).await,
        "cron(0 5 1 * ? *)",
        &expected,
    );
    assert_job_schedule(
        &schedule(&client, &group, &names[1]).await,
        "cron(0 5 ? * MON *)",
        &expected,
    );
    // WHEN the next schedule cannot be armed THEN both stay as they were
    let err = triggers
        .rearm(&two, &job(&hourly.id, "not a schedule"))
        .await
        .unwrap_err();
    assert!(err.message.contains("invalid schedule"), "{err}");
    assert_eq!(schedule_names(&client, &group).await, names);
    assert_job_schedule(
        &schedule(&client, &group, &names[1]).await,
        "cron(0 5 ? * MON *)",
        &expected,
    );
    // WHEN it goes back to one expression THEN the surplus schedule goes
    triggers
        .rearm(&two, &job(&hourly.id, "0 6 * * *"))
        .await
        .unwrap();
    assert_eq!(schedule_names(&client, &group).await, names[..1]);
    assert_job_schedule(
        &schedule(&client, &group, &names[0]).await,
        "cron(0 6 * * ? *)",
        &expected,
    );
    triggers.remove(&hourly.id).await.unwrap();
    let _ = client.delete_schedule_group().name(&group).send().await;
}

/// Backup `backup_id` of job `j1`'s cluster `c1`, the EBS volumes `volumes`.
fn ebs_request(backup_id: &str, volumes: &[String]) -> BackupRequest {
    BackupRequest {
        backup_id: backup_id.to_owned(),
        job_id: Some("j1".into()),
        description: "c1 nightly".into(),
        cluster: ClusterRecord {
            server: Default::default(),
            status: Default::default(),
            details: None,
            source_backup_id: None,
            id: "c1".into(),
            scope: Scope {
                org: "default".into(),
                project: "default".into(),
            },
            description: "c1".into(),
            region: "us-east-1".into(),
            target: ClusterTarget::AwsEbs {
                volume_ids: volumes.to_vec(),
                instance_tag: None,
            },
            created: chrono::Utc::now(),
        },
        created: chrono::DateTime::from_timestamp(1_795_755_660, 0).unwrap(),
        scheduled: chrono::DateTime::from_timestamp(1_795_755_660, 0).unwrap(),
        progress: Default::default(),
        base_backup_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn an_ebs_backup_is_one_tagged_snapshot_per_volume_and_pruning_deletes_them() {
    let config = backup_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let volumes = vec![volume(&ec2).await, volume(&ec2).await];
    let provider = EbsProvider::new(&config);
    let backup_id = unique("b");
    let request = ebs_request(&backup_id, &volumes);
    // WHEN a backup is made
    let created = provider.create(&request).await.unwrap();
    // (snapshots outlive the call: the backup settles later, through `status`)
    assert!(matches!(created, Creation::Pending(_)), "{created:?}");
    // AND each answered call was progress, which keeps the run's lease renewed (SPEC §5)
    assert!(
        request.progress.events() >= 3,
        "{}",
        request.progress.events()
    );
    let handle = created.into_handle();
    // THEN each volume has a snapshot tagged with the job, cluster and backup ids
    let snaps = snapshots_tagged(&ec2, "backup:backup-id", &backup_id).await;
    let mut expected = volumes.clone();
    expected.sort();
    assert_eq!(snapshotted_volumes(&snaps), expected);
    for s in &snaps {
        assert_eq!(tag(s, "backup:job-id"), Some("j1"));
        assert_eq!(tag(s, "backup:cluster-id"), Some("c1"));
    }
    assert_eq!(
        provider.status(&handle).await.unwrap(),
        ProviderStatus::Available
    );
    // WHEN it is pruned THEN its snapshots are gone, and deleting again succeeds
    provider.delete(&handle).await.unwrap();
    provider.delete(&handle).await.unwrap();
    let left = snapshots_tagged(&ec2, "backup:backup-id", &backup_id).await;
    assert!(left.is_empty(), "{left:?}");
    // AND its handle names each snapshot, which is what EC2's notifications name
    let mut keys = handle.keys.clone();
    keys.sort();
    let mut ids: Vec<String> = snaps
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect();
    ids.sort();
    assert_eq!(keys, ids);
    // AND a snapshot EC2 does not show just after it was started counts as still being
    // made (EC2 is eventually consistent), never as failed
    assert_eq!(
        provider.status(&handle).await.unwrap(),
        ProviderStatus::Creating
    );
    // AND past the grace period a backup whose snapshots vanished is failed, not available
    let mut set: SnapshotSet = serde_json::from_str(&handle.location).unwrap();
    let started = set.started_ms.expect("the start is recorded");
    set.started_ms = Some(started - NOT_FOUND_GRACE.num_milliseconds() - 1000);
    let old = BackupHandle::new(
        handle.backup_id.clone(),
        serde_json::to_string(&set).unwrap(),
    );
    assert!(matches!(
        provider.status(&old).await.unwrap(),
        ProviderStatus::Failed(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_label_longer_than_ec2_takes_is_cut_to_fit_its_name_tag_and_description() {
    let config = backup_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let provider = EbsProvider::new(&config);
    let backup_id = unique("b");
    // GIVEN a backup whose rendered label is 400 characters, some of them several bytes
    let label: String = "Orders — nightly · ".chars().cycle().take(400).collect();
    let mut request = ebs_request(&backup_id, &[volume(&ec2).await]);
    request.description = label.clone();
    // WHEN it is made
    let handle = provider.create(&request).await.unwrap().into_handle();
    // THEN the snapshot's description and Name tag are the label's start, ended with `…`,
    // within EC2's limits (255 and 256 characters, and as many bytes)
    let snaps = snapshots_tagged(&ec2, "backup:backup-id", &backup_id).await;
    let [snapshot] = snaps.as_slice() else {
        panic!("one snapshot: {snaps:?}")
    };
    let description = snapshot.description().unwrap_or_default();
    let name = tag(snapshot, "Name").unwrap_or_default();
    for (text, max) in [(description, MAX_DESCRIPTION), (name, MAX_TAG_VALUE)] {
        assert!(text.len() <= max && text.ends_with('…'), "{text}");
        assert!(label.starts_with(text.trim_end_matches('…')), "{text}");
        assert!(
            text.chars().count() > 200,
            "as much of the label as fits: {text}"
        );
    }
    assert_eq!(description, fit_label(&label, MAX_DESCRIPTION));
    assert_eq!(name, fit_label(&label, MAX_TAG_VALUE));
    provider.delete(&handle).await.unwrap();
}

/// Backup `backup_id` of job `j1`'s cluster `c1`, the instances tagged `instance_tag`.
fn tagged_request(backup_id: &str, instance_tag: &str) -> BackupRequest {
    let mut request = ebs_request(backup_id, &[]);
    request.cluster.target = ClusterTarget::AwsEbs {
        volume_ids: Vec::new(),
        instance_tag: Some(instance_tag.to_owned()),
    };
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn an_instance_tag_backup_is_every_volume_of_every_tagged_instance_in_one_set() {
    let config = backup_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let provider = EbsProvider::new(&config);
    // GIVEN two instances carrying the cluster's tag, with two and three EBS volumes, and an
    // instance of another cluster
    let value = unique("orders-");
    let first = instance_tagged_with_data_volumes(&ec2, "Cluster", &value, 1).await;
    let second = instance_tagged_with_data_volumes(&ec2, "Cluster", &value, 2).await;
    let other = instance_tagged_with_data_volumes(&ec2, "Cluster", &unique("other-"), 0).await;
    let backup_id = unique("b");
    // WHEN the cluster is backed up
    let request = tagged_request(&backup_id, &format!("Cluster={value}"));
    let handle = provider.create(&request).await.unwrap().into_handle();
    // THEN the backup is one set: a snapshot of each volume of both instances (and none of
    // the other's), each tagged with the job, cluster and backup ids and the label
    let snaps = snapshots_tagged(&ec2, "backup:backup-id", &backup_id).await;
    let mut expected: Vec<String> = [&first.volumes[..], &second.volumes[..]].concat();
    expected.sort();
    assert_eq!(snapshotted_volumes(&snaps), expected);
    assert!(!snapshotted_volumes(&snaps).contains(&other.volumes[0]));
    for s in &snaps {
        assert_eq!(tag(s, "backup:job-id"), Some("j1"));
        assert_eq!(tag(s, "backup:cluster-id"), Some("c1"));
        assert_eq!(tag(s, "Name"), Some("c1 nightly"));
        assert_eq!(s.description(), Some("c1 nightly"));
    }
    // AND its location and keys name every one of them, in the format of a volume cluster's
    let set: SnapshotSet = serde_json::from_str(&handle.location).unwrap();
    assert_eq!(set.region, "us-east-1");
    assert!(set.started_ms.is_some());
    let mut ids: Vec<String> = snaps
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect();
    ids.sort();
    let mut recorded = set.snapshot_ids.clone();
    recorded.sort();
    assert_eq!(recorded, ids);
    let mut keys = handle.keys.clone();
    keys.sort();
    assert_eq!(keys, ids);
    assert_eq!(
        provider.status(&handle).await.unwrap(),
        ProviderStatus::Available
    );
    // WHEN it is deleted THEN every snapshot of both instances is gone
    provider.delete(&handle).await.unwrap();
    let left = snapshots_tagged(&ec2, "backup:backup-id", &backup_id).await;
    assert!(left.is_empty(), "{left:?}");
    // AND a backup recorded without its ids (a process stopped half-way) is found by its tag
    let again = unique("b");
    let made = provider
        .create(&tagged_request(&again, &format!("Cluster={value}")))
        .await
        .unwrap()
        .into_handle();
    assert_eq!(made.keys.len(), expected.len());
    let planned = BackupHandle::new(again.clone(), provider.planned_location(&request));
    provider.delete(&planned).await.unwrap();
    let left = snapshots_tagged(&ec2, "backup:backup-id", &again).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn an_instance_tag_no_instance_carries_fails_naming_the_tag_and_what_to_do() {
    let config = backup_aws::sdk_config().await;
    let provider = EbsProvider::new(&config);
    // GIVEN a cluster whose tag no instance carries
    let value = unique("nobody-");
    let request = tagged_request(&unique("b"), &format!("Cluster={value}"));
    // WHEN it is backed up THEN the error names the tag, the region and the way out
    let err = provider.create(&request).await.unwrap_err();
    let message = err.message;
    assert!(message.contains(&format!("Cluster={value}")), "{message}");
    assert!(message.contains("us-east-1"), "{message}");
    assert!(message.contains("volume ids"), "{message}");
}

/// The volumes tagged `backup:restored-from` = `backup_id`, as EC2 shows them.
async fn restored_from(
    ec2: &aws_sdk_ec2::Client,
    backup_id: &str,
) -> Vec<aws_sdk_ec2::types::Volume> {
    ec2.describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{TAG_RESTORED_FROM}"))
                .values(backup_id)
                .build(),
        )
        .send()
        .await
        .expect("DescribeVolumes")
        .volumes()
        .to_vec()
}

fn volume_tag<'a>(volume: &'a aws_sdk_ec2::types::Volume, key: &str) -> Option<&'a str> {
    volume
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// A backup of `n` new volumes, made and settled; its handle.
async fn made_backup(provider: &EbsProvider, ec2: &aws_sdk_ec2::Client, n: usize) -> BackupHandle {
    let mut volumes = Vec::new();
    for _ in 0..n {
        volumes.push(volume(ec2).await);
    }
    let handle = provider
        .create(&ebs_request(&unique("b"), &volumes))
        .await
        .unwrap()
        .into_handle();
    assert_eq!(
        provider.status(&handle).await.unwrap(),
        ProviderStatus::Available
    );
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn verify_finds_a_whole_backup_whole_and_names_each_missing_or_mistagged_snapshot() {
    let config = backup_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let provider = EbsProvider::new(&config);
    // GIVEN a backup of three volumes
    let handle = made_backup(&provider, &ec2, 3).await;
    let set: SnapshotSet = serde_json::from_str(&handle.location).unwrap();
    // WHEN it is verified THEN nothing is wrong
    assert_eq!(provider.check_snapshots(&handle).await.unwrap(), []);
    // GIVEN one snapshot deleted outside the product and another retagged as another backup's
    ec2.delete_snapshot()
        .snapshot_id(&set.snapshot_ids[0])
        .send()
        .await
        .unwrap();
    ec2.create_tags()
        .resources(&set.snapshot_ids[2])
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("backup:backup-id")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tags_before = snapshots_tagged(&ec2, "backup:backup-id", &handle.backup_id).await;
    // WHEN it is verified THEN each problem names its snapshot and says what is wrong
    let problems = provider.check_snapshots(&handle).await.unwrap();
    let named: Vec<&str> = problems.iter().map(|p| p.snapshot_id.as_str()).collect();
    assert_eq!(
        named,
        [&set.snapshot_ids[0], &set.snapshot_ids[2]],
        "{problems:?}"
    );
    assert!(
        problems[0].problem.contains("does not exist"),
        "{problems:?}"
    );
    assert!(
        problems[1].problem.contains("someone-else")
            && problems[1].problem.contains(&handle.backup_id),
        "{problems:?}"
    );
    // AND verifying changed nothing
    let tags_after = snapshots_tagged(&ec2, "backup:backup-id", &handle.backup_id).await;
    assert_eq!(tags_before, tags_after);
    provider.delete(&handle).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_restore_is_one_tagged_volume_per_snapshot_in_the_zone_and_discarding_deletes_them() {
    let config = backup_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let provider = EbsProvider::new(&config);
    // GIVEN a backup of two volumes
    let handle = made_backup(&provider, &ec2, 2).await;
    let snapshots: SnapshotSet = serde_json::from_str(&handle.location).unwrap();
    // WHEN it is restored into us-east-1b as gp3 volumes
    let request = VolumesRequest {
        cluster_id: "c-restored",
        name: "Orders DB (restored)",
        availability_zone: "us-east-1b",
        volume_type: Some("gp3"),
    };
    let set = provider.create_volumes(&handle, &request).await.unwrap();
    // THEN there is one volume per snapshot, in that zone and of that type, tagged with the
    // backup it came from, the new cluster and a name
    assert_eq!(set.backup_id, handle.backup_id);
    assert_eq!(set.region, "us-east-1");
    let volumes = restored_from(&ec2, &handle.backup_id).await;
    let mut made: Vec<String> = volumes
        .iter()
        .filter_map(|v| v.volume_id().map(str::to_owned))
        .collect();
    made.sort();
    let mut recorded = set.volume_ids.clone();
    recorded.sort();
    assert_eq!(made, recorded);
    let mut from: Vec<String> = volumes
        .iter()
        .filter_map(|v| v.snapshot_id().map(str::to_owned))
        .collect();
    from.sort();
    let mut expected = snapshots.snapshot_ids.clone();
    expected.sort();
    assert_eq!(from, expected);
    for v in &volumes {
        assert_eq!(v.availability_zone(), Some("us-east-1b"));
        assert_eq!(v.volume_type().map(|t| t.as_str()), Some("gp3"));
        assert_eq!(volume_tag(v, "backup:cluster-id"), Some("c-restored"));
        assert_eq!(volume_tag(v, "Name"), Some("Orders DB (restored)"));
    }
    // AND once EC2 made them they are available
    assert_eq!(
        provider.volumes_state(&set).await.unwrap(),
        VolumesState::Available
    );
    // AND the set round-trips through its location
    assert_eq!(VolumeSet::parse(&set.to_location()).unwrap(), set);
    // WHEN the restore is discarded (twice: deleting what is gone succeeds) THEN no volume
    // is left, and the restore counts as failed
    provider.delete_volumes(&set).await.unwrap();
    provider.delete_volumes(&set).await.unwrap();
    assert!(restored_from(&ec2, &handle.backup_id).await.is_empty());
    let mut old = set.clone();
    old.started_ms -= NOT_FOUND_GRACE.num_milliseconds() + 1000;
    assert!(matches!(
        provider.volumes_state(&old).await.unwrap(),
        VolumesState::Failed(reason) if reason.contains("no longer exists")
    ));
    provider.delete(&handle).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn an_unknown_zone_or_volume_type_is_refused_on_its_field_and_makes_nothing() {
    let config = backup_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let provider = EbsProvider::new(&config);
    let handle = made_backup(&provider, &ec2, 1).await;
    let request = VolumesRequest {
        cluster_id: "c-restored",
        name: "Orders DB",
        availability_zone: "us-east-1z",
        volume_type: None,
    };
    // WHEN the zone is not one of the region's THEN the refusal names the field and the
    // zones to write instead, and no volume was made
    let Err(RestoreError::Refused(problem)) = provider.create_volumes(&handle, &request).await
    else {
        panic!("refused")
    };
    assert_eq!(
        (problem.field, problem.code),
        ("availabilityZone", UNKNOWN_ZONE)
    );
    assert!(problem.message.contains("us-east-1z"), "{problem:?}");
    assert!(problem.message.contains("us-east-1a"), "{problem:?}");
    assert!(restored_from(&ec2, &handle.backup_id).await.is_empty());
    // AND the engine's check before it records anything refuses it the same way (a 400 on
    // the field), and passes a zone of the source's region
    let mut source = backup_engine::contract::cluster("c1", "o1");
    source.region = "us-east-1".into();
    let target = source.target.clone();
    let refused =
        BackupProvider::check_restore_target(&provider, &source, &target, Some("us-east-1z"))
            .await
            .unwrap_err();
    assert_eq!(
        (refused.field, refused.code),
        ("availabilityZone", UNKNOWN_ZONE)
    );
    BackupProvider::check_restore_target(&provider, &source, &target, Some("us-east-1a"))
        .await
        .unwrap();
    // AND a volume type EC2 does not have is refused the same way
    let typed = VolumesRequest {
        availability_zone: "us-east-1a",
        volume_type: Some("fast"),
        ..request
    };
    let Err(RestoreError::Refused(problem)) = provider.create_volumes(&handle, &typed).await else {
        panic!("refused")
    };
    assert_eq!(
        (problem.field, problem.code),
        ("volumeType", UNKNOWN_VOLUME_TYPE)
    );
    assert!(problem.message.contains("gp3"), "{problem:?}");
    assert!(restored_from(&ec2, &handle.backup_id).await.is_empty());
    provider.delete(&handle).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: run scripts/test-aws.sh"]
async fn a_restore_failing_half_way_deletes_the_volumes_it_made() {
    let config = backup_aws::sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let provider = EbsProvider::new(&config);
    // GIVEN a backup of three volumes whose last snapshot was deleted outside the product
    let handle = made_backup(&provider, &ec2, 3).await;
    let set: SnapshotSet = serde_json::from_str(&handle.location).unwrap();
    ec2.delete_snapshot()
        .snapshot_id(&set.snapshot_ids[2])
        .send()
        .await
        .unwrap();
    // WHEN it is restored THEN the third CreateVolume fails, the error names it, and the two
    // volumes already made are gone
    let request = VolumesRequest {
        cluster_id: "c-restored",
        name: "Orders DB",
        availability_zone: "us-east-1a",
        volume_type: None,
    };
    let Err(RestoreError::Provider(error)) = provider.create_volumes(&handle, &request).await
    else {
        panic!("a provider error")
    };
    assert!(error.message.contains("CreateVolume"), "{error}");
    assert!(error.message.contains(&set.snapshot_ids[2]), "{error}");
    let left: Vec<_> = restored_from(&ec2, &handle.backup_id)
        .await
        .into_iter()
        .filter(|v| v.state().map(|s| s.as_str()) != Some("deleted"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    provider.delete(&handle).await.unwrap();
}
