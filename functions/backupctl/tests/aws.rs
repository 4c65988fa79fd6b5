#![cfg(feature = "aws")]
//! `backupctl serve --store dynamodb --table T --scheduler eventbridge` as a process against
//! moto_server (`AWS_ENDPOINT_URL`; `scripts/test-aws.sh` starts it and runs these with
//! `--ignored`), driven by the real `backupctl` client: a job made through the API gets its
//! EventBridge rule, "run now" snapshots the cluster's EBS volume under the DynamoDB lock,
//! and deleting the job removes the rule; `backupctl jobs rearm` moves jobs from rules to
//! EventBridge Scheduler schedules (`--scheduler eventbridge-scheduler`) and back.

mod support;

use std::time::Duration;

use backup_aws::DynamoStore;
use backup_testkit::ec2::{snapshots_tagged, volume};
use backup_testkit::eventbridge::{assert_runner_target, only_target, rules};
use backup_testkit::scheduler::{
    assert_job_schedule, create_group, expected_runner_target as expected_schedule_target,
    schedule, schedule_names,
};
use backup_testkit::{RUNNER_ARN, SCHEDULER_ROLE_ARN};
use serde_json::Value;
use support::{wait_until, Sandbox, Server};

/// Runs `backupctl args` against `server` (with its token); its standard output, once it
/// succeeded.
fn ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args);
    assert!(out.success(), "{}", out.describe());
    out.stdout
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
#[ignore = "needs moto_server at AWS_ENDPOINT_URL (scripts/test-aws.sh)"]
fn serve_on_dynamodb_and_eventbridge_arms_rules_and_runs_backups() {
    let rt = runtime();
    let sdk = rt.block_on(backup_aws::sdk_config());
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let nonce = std::process::id();
    let table = format!("backupctl-e2e-{nonce}");
    let prefix = format!("e2e-{nonce}-");
    rt.block_on(DynamoStore::create_table(&dynamodb, &table))
        .expect("create the table");
    let volume = rt.block_on(volume(&ec2));

    // GIVEN backupctl serve on that table, firing jobs through EventBridge rules
    let sandbox = Sandbox::new();
    let server = Server::start_with(
        &sandbox.data_dir(),
        &[
            "--store",
            "dynamodb",
            "--table",
            &table,
            "--scheduler",
            "eventbridge",
        ],
        &[
            ("RUNNER_FUNCTION_ARN", RUNNER_ARN),
            ("RULE_PREFIX", &prefix),
        ],
    );

    // WHEN an EBS cluster and a job are created with the CLI
    ok(
        &server,
        &[
            "clusters",
            "register",
            "--cluster-id",
            "orders",
            "--description",
            "Orders DB",
            "--provider",
            "aws-ebs",
            "--region",
            "us-east-1",
            "--volume-id",
            &volume,
        ],
    );
    let created = ok(
        &server,
        &[
            "orchestrate",
            "jobs",
            "create",
            "--description",
            "Hourly",
            "--schedule",
            "0 */1 * * *",
            "scheduled-backup",
            "--description",
            "{cluster} #{index}",
            "--max-backup-count",
            "2",
            "--cluster-id",
            "orders",
            "--json",
        ],
    );
    let job: Value = serde_json::from_str(&created).expect("job JSON");
    let job_id = job["id"].as_str().expect("a job id").to_owned();

    // THEN its rule targets the runner, and the job is in the table
    let rule = format!("{prefix}{job_id}");
    let described = rt
        .block_on(events.describe_rule().name(&rule).send())
        .expect("the job's rule exists");
    assert_eq!(described.schedule_expression(), Some("cron(0 * * * ? *)"));
    let target = rt.block_on(only_target(&events, &rule));
    assert_runner_target(&target, RUNNER_ARN, &job_id);
    let item = rt
        .block_on(
            dynamodb
                .get_item()
                .table_name(&table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("JOB#{job_id}")),
                )
                .key(
                    "sk",
                    aws_sdk_dynamodb::types::AttributeValue::S("JOB".into()),
                )
                .send(),
        )
        .expect("GetItem");
    assert!(item.item.is_some(), "the job is stored in {table}");

    // WHEN it is run now THEN the run succeeds with one snapshot of the volume, tagged
    ok(&server, &["jobs", "run", "--id", &job_id]);
    let history = wait_until(Duration::from_secs(60), "the run to succeed", || {
        let out = ok(
            &server,
            &[
                "orchestrate",
                "history",
                "list",
                "--job-id",
                &job_id,
                "--json",
            ],
        );
        let items: Value = serde_json::from_str(&out).ok()?;
        let first = items["items"].as_array()?.first()?.clone();
        (first["status"] != "running").then_some(first)
    });
    assert_eq!(history["status"], "succeeded", "{history}");
    let snapshots = rt.block_on(snapshots_tagged(&ec2, "backup:job-id", &job_id));
    let [snapshot] = snapshots.as_slice() else {
        panic!("expected one snapshot, got {snapshots:?}")
    };
    assert_eq!(snapshot.volume_id(), Some(volume.as_str()));
    let backups = ok(&server, &["backups", "list", "--json"]);
    assert!(backups.contains("\"available\""), "{backups}");
    assert!(backups.contains("Orders DB #1"), "{backups}");

    // WHEN the job is deleted THEN its rule is gone, its history and backup stay
    ok(&server, &["orchestrate", "jobs", "delete", "--id", &job_id]);
    let left = rt.block_on(rules(&events, &prefix));
    assert!(left.is_empty(), "{left:?}");
    let backups = ok(&server, &["backups", "list", "--json"]);
    assert!(backups.contains("Orders DB #1"), "{backups}");

    drop(server);
    let _ = rt.block_on(dynamodb.delete_table().table_name(&table).send());
}

#[test]
#[ignore = "needs moto_server at AWS_ENDPOINT_URL (scripts/test-aws.sh)"]
fn jobs_rearm_moves_jobs_from_rules_to_schedules_and_back() {
    let rt = runtime();
    let sdk = rt.block_on(backup_aws::sdk_config());
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let scheduler = aws_sdk_scheduler::Client::new(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let nonce = std::process::id();
    let table = format!("backupctl-rearm-{nonce}");
    let prefix = format!("rearm-{nonce}-");
    rt.block_on(DynamoStore::create_table(&dynamodb, &table))
        .expect("create the table");
    let group = rt.block_on(create_group(&scheduler, &prefix));
    let volume = rt.block_on(volume(&ec2));
    let aws = |kind: &'static str| {
        [
            "--store".to_owned(),
            "dynamodb".to_owned(),
            "--table".to_owned(),
            table.clone(),
            "--scheduler".to_owned(),
            kind.to_owned(),
        ]
    };
    let env = [
        ("RUNNER_FUNCTION_ARN", RUNNER_ARN),
        ("RULE_PREFIX", prefix.as_str()),
        ("SCHEDULER_ROLE_ARN", SCHEDULER_ROLE_ARN),
    ];

    // GIVEN a server on rules with a job whose two day fields are restricted (two rules)
    let rules_sandbox = Sandbox::new();
    let args = aws("eventbridge");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let on_rules = Server::start_with(&rules_sandbox.data_dir(), &args, &env);
    ok(
        &on_rules,
        &[
            "clusters",
            "register",
            "--cluster-id",
            "orders",
            "--description",
            "Orders DB",
            "--provider",
            "aws-ebs",
            "--region",
            "us-east-1",
            "--volume-id",
            &volume,
        ],
    );
    let created = ok(
        &on_rules,
        &[
            "jobs",
            "create",
            "--description",
            "Monthly or Mondays",
            "--schedule",
            "0 5 1 * MON",
            "scheduled-backup",
            "--description",
            "{cluster} #{index}",
            "--max-backup-count",
            "2",
            "--cluster-id",
            "orders",
            "--json",
        ],
    );
    let job: Value = serde_json::from_str(&created).expect("job JSON");
    let job_id = job["id"].as_str().expect("a job id").to_owned();
    let names = [format!("{prefix}{job_id}"), format!("{prefix}{job_id}-2")];
    let rule_names = || {
        let mut names: Vec<String> = rt
            .block_on(rules(&events, &prefix))
            .iter()
            .filter_map(|r| r.name().map(str::to_owned))
            .collect();
        names.sort();
        names
    };
    assert_eq!(rule_names(), names);

    // WHEN the deployment switches to EventBridge Scheduler and an operator runs
    // `backupctl jobs rearm`
    let scheduler_sandbox = Sandbox::new();
    let args = aws("eventbridge-scheduler");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let on_schedules = Server::start_with(&scheduler_sandbox.data_dir(), &args, &env);
    let said = ok(&on_schedules, &["jobs", "rearm"]);
    // THEN it says so, the job has one schedule per day field, and its rules are gone
    assert!(said.contains("Re-armed 1 active job"), "{said}");
    assert_eq!(rt.block_on(schedule_names(&scheduler, &group)), names);
    let target = expected_schedule_target(RUNNER_ARN, SCHEDULER_ROLE_ARN, &job_id, None);
    for (name, expression) in names
        .iter()
        .zip(["cron(0 5 1 * ? *)", "cron(0 5 ? * MON *)"])
    {
        let made = rt.block_on(schedule(&scheduler, &group, name));
        assert_job_schedule(&made, expression, &target);
    }
    assert!(rule_names().is_empty(), "{:?}", rule_names());

    // WHEN the deployment goes back to rules and `jobs rearm --json` runs there
    let back: Value =
        serde_json::from_str(&ok(&on_rules, &["jobs", "rearm", "--json"])).expect("rearm JSON");
    // THEN it names the job, which has its two rules again, each targeting the runner, and
    // no schedule
    assert_eq!(back, serde_json::json!({"rearmed": [job_id]}));
    assert_eq!(rule_names(), names);
    for rule in &names {
        let target = rt.block_on(only_target(&events, rule));
        assert_runner_target(&target, RUNNER_ARN, &job_id);
    }
    assert!(rt.block_on(schedule_names(&scheduler, &group)).is_empty());

    ok(&on_rules, &["jobs", "delete", "--id", &job_id]);
    drop(on_schedules);
    drop(on_rules);
    let _ = rt.block_on(scheduler.delete_schedule_group().name(&group).send());
    let _ = rt.block_on(dynamodb.delete_table().table_name(&table).send());
}

#[test]
#[ignore = "needs moto_server at AWS_ENDPOINT_URL (scripts/test-aws.sh)"]
fn readyz_answers_503_until_the_store_answers() {
    let rt = runtime();
    let sdk = rt.block_on(backup_aws::sdk_config());
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = format!("backupctl-readyz-{}", std::process::id());
    // GIVEN a server on a table that does not exist yet
    let sandbox = Sandbox::new();
    let server = Server::start_with(
        &sandbox.data_dir(),
        &[
            "--store",
            "dynamodb",
            "--table",
            &table,
            "--scheduler",
            "eventbridge",
        ],
        &[("RUNNER_FUNCTION_ARN", RUNNER_ARN)],
    );
    // WHEN a probe asks whether it is ready THEN it is not, in a problem that says so
    let probe = server.request("GET", "/readyz", None);
    assert_eq!(probe.status, 503, "{probe:?}");
    assert!(
        probe.content_type.starts_with("application/problem+json"),
        "{probe:?}"
    );
    assert_eq!(probe.json()["code"], "store_error", "{probe:?}");
    // AND once the table exists it is
    rt.block_on(DynamoStore::create_table(&dynamodb, &table))
        .expect("create the table");
    let probe = server.request("GET", "/readyz", None);
    assert_eq!(probe.status, 200, "{probe:?}");
    assert_eq!(probe.json()["status"], "ready");
}
