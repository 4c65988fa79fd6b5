//! Least privilege, proven against `infra/template.yaml`: each function's role allows exactly
//! the IAM actions of the AWS calls its code paths make (`backup_aws::iam`, per function),
//! plus what the Lambda service does with the role (writing logs, the dead-letter queue); no
//! statement has a wildcard action;
//! resources are scoped to the table, the rule prefix, the schedule group, the scheduler's
//! role, the function's own log group and queue; only job rules may invoke the runner, and
//! the role job schedules invoke it as may do nothing else. Also the template's other promises to an
//! operator: every alarm reaches a topic CloudWatch may publish to, a firing no rule could
//! deliver reaches the dead-letter queue and an alarm, and every name fits AWS's limits
//! whatever the stack's name.

use std::collections::BTreeSet;

use serde_yaml::Value;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("read infra/template.yaml");
    serde_yaml::from_str(&text).expect("infra/template.yaml is plain YAML (long-form intrinsics)")
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    &t["Resources"][name]
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The statements of a role's inline policies.
fn statements(t: &Value, role: &str) -> Vec<Value> {
    let policies = resource(t, role)["Properties"]["Policies"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{role} has inline policies"));
    assert!(
        resource(t, role)["Properties"]["ManagedPolicyArns"].is_null(),
        "{role} must not attach managed policies (their actions are not checked here)"
    );
    policies
        .iter()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// A resource entry as text: a plain string, `Fn::Sub`'s template or `Fn::GetAtt`'s target.
fn resource_text(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    if let Some(sub) = v.get("Fn::Sub") {
        return sub.as_str().unwrap_or_default().to_owned();
    }
    if let Some(att) = v.get("Fn::GetAtt") {
        return format!("GetAtt:{}", strings(att).join("."));
    }
    panic!("unexpected resource form {v:?}")
}

/// What the Lambda service itself does with a function's role.
const PLATFORM_ACTIONS: &[&str] = &[
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
];

/// Checks the role of function `name`: the template's logical ids of its resources are
/// `{name}Function`, `{name}Role` and `{name}LogGroup` (their physical names may be chosen by
/// CloudFormation); `dlq` is its dead-letter queue, if it has one.
fn check_role(t: &Value, name: &str, code: backup_aws::iam::Function, dlq: Option<&str>) {
    let code_actions = code.actions();
    let role = format!("{name}Role");
    let role = role.as_str();
    let function = format!("{name}Function");
    let log_group = format!("{name}LogGroup");
    // The function runs under this role, and logs to the group the role may write to.
    let function_role = &resource(t, &function)["Properties"]["Role"]["Fn::GetAtt"];
    assert_eq!(
        strings(function_role),
        [role, "Arn"],
        "{function} uses {role}"
    );
    let logs_to = &resource(t, &function)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"];
    assert_eq!(
        logs_to.as_str(),
        Some(log_group.as_str()),
        "{function} logs to {log_group}"
    );

    // The calls that tag what they create (`CreateSnapshot`, `CreateSnapshots`): what
    // `ec2:CreateAction` may name.
    let mut tagged_on_create: Vec<String> = code
        .calls
        .iter()
        .filter(|c| c.actions.contains(&"ec2:CreateTags"))
        .filter_map(|c| c.operation.strip_prefix("ec2:").map(str::to_owned))
        .collect();
    tagged_on_create.sort();
    assert_eq!(
        tagged_on_create.is_empty(),
        !code.makes("ec2:CreateSnapshot"),
        "{role}: tags exactly the snapshots it creates"
    );
    let mut allowed = BTreeSet::new();
    for st in statements(t, role) {
        assert_eq!(st["Effect"].as_str(), Some("Allow"), "{role}: {st:?}");
        assert!(st.get("NotAction").is_none() && st.get("NotResource").is_none());
        let actions = strings(&st["Action"]);
        let resources: Vec<String> = match &st["Resource"] {
            Value::Sequence(items) => items.iter().map(resource_text).collect(),
            other => vec![resource_text(other)],
        };
        for action in &actions {
            assert!(!action.contains('*'), "{role}: wildcard action {action}");
            allowed.insert(action.clone());
            let (service, name) = action.split_once(':').expect("service:Action");
            for r in &resources {
                match service {
                    "dynamodb" => assert!(
                        r == "GetAtt:Table.Arn"
                            || (r == "${Table.Arn}/index/*" && action == "dynamodb:Query"),
                        "{role}: {action} on {r}, not the table (an index is only queried)"
                    ),
                    "events" => assert!(
                        r.ends_with(":rule/${RulePrefix}*"),
                        "{role}: {action} on {r}, not the job rules"
                    ),
                    "scheduler" => assert!(
                        r.ends_with(":schedule/${RulePrefix}jobs/*"),
                        "{role}: {action} on {r}, not the job schedule group"
                    ),
                    "iam" => {
                        assert_eq!(action, "iam:PassRole", "{role}");
                        assert_eq!(r, "GetAtt:SchedulerRole.Arn", "{role}: passes only it");
                        assert_eq!(
                            st["Condition"]["StringEquals"]["iam:PassedToService"].as_str(),
                            Some("scheduler.amazonaws.com"),
                            "{role}: passes it only to EventBridge Scheduler"
                        );
                    }
                    "ec2" if name.starts_with("Describe") => assert_eq!(r, "*"),
                    // A snapshot is made of a volume; `CreateSnapshots` of an instance's; a
                    // restore's volume of a snapshot, tagged at creation, deleted on failure.
                    "ec2" => assert!(
                        r.ends_with(":snapshot/*")
                            || (name.starts_with("CreateSnapshot") && r.ends_with(":volume/*"))
                            || (name == "CreateSnapshots" && r.ends_with(":instance/*"))
                            || (matches!(name, "CreateVolume" | "CreateTags" | "DeleteVolume")
                                && r.ends_with(":volume/*")),
                        "{role}: {action} on {r}"
                    ),
                    // Keys of snapshots encrypted with a customer key, used through EC2 only.
                    "kms" => {
                        assert!(
                            r.ends_with(":kms:${AWS::Region}:${AWS::AccountId}:key/*"),
                            "{role}: {r}"
                        );
                        if action == "kms:CreateGrant" {
                            assert_eq!(
                                st["Condition"]["Bool"]["kms:GrantIsForAWSResource"].as_str(),
                                Some("true"),
                                "{role}: only grants for an AWS resource (EC2's volume)"
                            );
                        }
                        assert_eq!(
                            resource_text(&st["Condition"]["StringEquals"]["kms:ViaService"]),
                            "ec2.${AWS::Region}.amazonaws.com",
                            "{role}: {action} only through EC2"
                        );
                    }
                    "lambda" => assert_eq!(
                        r, "GetAtt:RunnerFunction.Arn",
                        "{role}: {action} only on the runner"
                    ),
                    "logs" => assert_eq!(r, &format!("GetAtt:{log_group}.Arn"), "{role}: {action}"),
                    "sqs" => assert_eq!(
                        Some(r.as_str()),
                        dlq.map(|q| format!("GetAtt:{q}.Arn")).as_deref()
                    ),
                    other => panic!("{role}: unexpected service {other}"),
                }
            }
            // Deleting and tagging are limited further by conditions.
            if action == "ec2:DeleteSnapshot" {
                assert!(
                    !st["Condition"]["StringLike"]["aws:ResourceTag/backup:backup-id"].is_null(),
                    "{role}: DeleteSnapshot only on the product's snapshots"
                );
            }
            // A restore makes, and deletes, only volumes tagged as restored.
            if action == "ec2:DeleteVolume" {
                assert!(
                    !st["Condition"]["StringLike"]["aws:ResourceTag/backup:restored-from"]
                        .is_null(),
                    "{role}: DeleteVolume only on volumes a restore made"
                );
            }
            if action == "ec2:CreateVolume" && resources.iter().any(|r| r.ends_with(":volume/*")) {
                assert!(
                    !st["Condition"]["StringLike"]["aws:RequestTag/backup:restored-from"].is_null(),
                    "{role}: CreateVolume only of volumes tagged as restored"
                );
            }
            if action == "ec2:CreateVolume" && resources.iter().any(|r| r.ends_with(":snapshot/*"))
            {
                assert!(
                    !st["Condition"]["StringLike"]["aws:ResourceTag/backup:backup-id"].is_null(),
                    "{role}: CreateVolume only from the product's snapshots"
                );
            }
            if action == "ec2:CreateTags" {
                let mut during = strings(&st["Condition"]["StringEquals"]["ec2:CreateAction"]);
                during.sort();
                assert_eq!(
                    during, tagged_on_create,
                    "{role}: CreateTags only while the function's own calls create snapshots \
                     or volumes"
                );
            }
        }
    }
    let mut expected: BTreeSet<String> = code_actions.iter().map(|a| a.to_string()).collect();
    expected.insert("logs:CreateLogStream".into());
    expected.insert("logs:PutLogEvents".into());
    if dlq.is_some() {
        expected.insert("sqs:SendMessage".into());
    }
    let missing: Vec<_> = expected.difference(&allowed).collect();
    let extra: Vec<_> = allowed.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "{role} lacks actions its code calls: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "{role} allows actions its code never calls: {extra:?}"
    );
    for a in PLATFORM_ACTIONS {
        assert!(!code_actions.contains(a));
    }
}

#[test]
fn the_runner_may_call_exactly_what_its_code_calls() {
    check_role(
        &template(),
        "Runner",
        backup_aws::iam::RUNNER,
        Some("RunnerDeadLetterQueue"),
    );
}

#[test]
fn the_jobs_api_may_call_exactly_what_its_code_calls() {
    check_role(&template(), "JobsApi", backup_aws::iam::JOBS_API, None);
}

#[test]
fn the_job_resource_may_call_exactly_what_its_code_calls() {
    check_role(
        &template(),
        "JobResource",
        backup_aws::iam::JOB_RESOURCE,
        None,
    );
}

#[test]
fn the_job_service_token_is_exported_for_other_stacks() {
    let t = template();
    let output = &t["Outputs"]["JobServiceToken"];
    assert_eq!(
        strings(&output["Value"]["Fn::GetAtt"]),
        ["JobResourceFunction", "Arn"]
    );
    assert_eq!(
        output["Export"]["Name"]["Fn::Sub"].as_str(),
        Some("${AWS::StackName}-JobServiceToken")
    );
    let function = resource(&t, "JobResourceFunction");
    assert_eq!(
        function["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("job-resource")
    );
    assert_eq!(
        function["Metadata"]["BuildMethod"].as_str(),
        Some("rust-cargolambda")
    );
}

#[test]
fn only_job_rules_the_notification_rules_and_the_sweeper_may_invoke_the_runner() {
    let t = template();
    let mut sources: Vec<String> = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Lambda::Permission"))
        .map(|r| {
            let p = &r["Properties"];
            assert_eq!(p["Action"].as_str(), Some("lambda:InvokeFunction"));
            assert_eq!(p["Principal"].as_str(), Some("events.amazonaws.com"));
            assert_eq!(
                strings(&p["FunctionName"]["Fn::GetAtt"]),
                ["RunnerFunction", "Arn"]
            );
            assert_eq!(p["SourceAccount"]["Ref"].as_str(), Some("AWS::AccountId"));
            resource_text(&p["SourceArn"])
        })
        .collect();
    sources.sort();
    assert_eq!(sources.len(), 4, "{sources:?}");
    assert_eq!(sources[0], "GetAtt:SnapshotNotificationRule.Arn");
    assert_eq!(sources[1], "GetAtt:SweepRule.Arn");
    assert_eq!(sources[2], "GetAtt:VolumeNotificationRule.Arn");
    assert!(sources[3].ends_with(":rule/${RulePrefix}*"), "{sources:?}");
}

#[test]
fn snapshot_notifications_and_the_sweeper_reach_the_runner() {
    let t = template();
    let rule = &resource(&t, "SnapshotNotificationRule")["Properties"];
    let pattern = &rule["EventPattern"];
    assert_eq!(strings(&pattern["source"]), ["aws.ec2"]);
    assert_eq!(
        strings(&pattern["detail-type"]),
        [
            backup_aws::ebs::SNAPSHOT_NOTIFICATION,
            backup_aws::ebs::MULTI_VOLUME_SNAPSHOT_NOTIFICATION
        ]
    );
    assert_eq!(
        strings(&pattern["detail"]["event"]),
        ["createSnapshot", "createSnapshots"]
    );
    // AND EC2's volume notifications settle restores (SPEC §14)
    let volumes = &resource(&t, "VolumeNotificationRule")["Properties"];
    assert_eq!(strings(&volumes["EventPattern"]["source"]), ["aws.ec2"]);
    assert_eq!(
        strings(&volumes["EventPattern"]["detail-type"]),
        [backup_aws::ebs::VOLUME_NOTIFICATION]
    );
    assert_eq!(
        strings(&volumes["EventPattern"]["detail"]["event"]),
        ["createVolume"]
    );
    let sweep = &resource(&t, "SweepRule")["Properties"];
    assert_eq!(
        sweep["ScheduleExpression"].as_str(),
        Some("rate(10 minutes)")
    );
    for props in [rule, volumes, sweep] {
        let target = &props["Targets"][0];
        assert_eq!(
            strings(&target["Arn"]["Fn::GetAtt"]),
            ["RunnerFunction", "Arn"]
        );
        assert!(target["RetryPolicy"]["MaximumRetryAttempts"].is_number());
        assert_eq!(
            strings(&target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"]),
            ["RunnerDeadLetterQueue", "Arn"]
        );
    }
    let input: serde_json::Value =
        serde_json::from_str(sweep["Targets"][0]["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input, serde_json::json!({"sweep": true}));
    let timeout = &t["Parameters"]["SnapshotTimeout"];
    assert_eq!(timeout["Default"].as_u64(), Some(86400));
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"]["SNAPSHOT_TIMEOUT"]["Ref"].as_str(),
        Some("SnapshotTimeout")
    );
    // AND deleted backups and ended runs expire after HistoryDays (SPEC §16), 90 by default
    let days = &t["Parameters"]["HistoryDays"];
    assert_eq!(days["Default"].as_u64(), Some(90));
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"]["HISTORY_DAYS"]["Ref"].as_str(),
        Some("HistoryDays")
    );
}

#[test]
fn job_schedules_invoke_the_runner_as_a_role_that_may_do_nothing_else() {
    let t = template();
    // GIVEN the Trigger parameter THEN rules stay the default and scheduler is the other kind
    let trigger = &t["Parameters"]["Trigger"];
    assert_eq!(trigger["Default"].as_str(), Some("rules"));
    assert_eq!(strings(&trigger["AllowedValues"]), ["rules", "scheduler"]);
    // AND jobs-api reads it as TRIGGER, with the role its schedules invoke the runner as
    let env = &resource(&t, "JobsApiFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(env["TRIGGER"]["Ref"].as_str(), Some("Trigger"));
    assert_eq!(
        resource_text(&env["SCHEDULER_ROLE_ARN"]),
        "GetAtt:SchedulerRole.Arn"
    );
    // AND the schedule group is the one the code names, made whatever Trigger says (a job
    // keeps firing by its old kind until `jobs rearm` moves it)
    let group = resource(&t, "JobSchedules");
    assert_eq!(
        group["Type"].as_str(),
        Some("AWS::Scheduler::ScheduleGroup")
    );
    assert!(group["Condition"].is_null());
    assert_eq!(
        resource_text(&group["Properties"]["Name"]),
        backup_aws::scheduler::group_name("${RulePrefix}")
    );
    // AND only EventBridge Scheduler, for this account's job group, may assume the role
    let role = resource(&t, "SchedulerRole");
    assert!(role["Condition"].is_null());
    let trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let [trust] = trust.as_slice() else {
        panic!("one trust statement: {trust:?}")
    };
    assert_eq!(
        trust["Principal"]["Service"].as_str(),
        Some("scheduler.amazonaws.com")
    );
    assert_eq!(strings(&trust["Action"]), ["sts:AssumeRole"]);
    assert_eq!(
        trust["Condition"]["StringEquals"]["aws:SourceAccount"]["Ref"].as_str(),
        Some("AWS::AccountId")
    );
    assert_eq!(
        resource_text(&trust["Condition"]["ArnEquals"]["aws:SourceArn"]),
        "GetAtt:JobSchedules.Arn"
    );
    // AND it may invoke the runner and send to its dead-letter queue, nothing else
    let mut allowed = Vec::new();
    for st in statements(&t, "SchedulerRole") {
        assert_eq!(st["Effect"].as_str(), Some("Allow"));
        assert!(st.get("NotAction").is_none() && st.get("NotResource").is_none());
        let resources: Vec<String> = match &st["Resource"] {
            Value::Sequence(items) => items.iter().map(resource_text).collect(),
            other => vec![resource_text(other)],
        };
        for action in strings(&st["Action"]) {
            for r in &resources {
                allowed.push((action.clone(), r.clone()));
            }
        }
    }
    allowed.sort();
    assert_eq!(
        allowed,
        [
            (
                "lambda:InvokeFunction".to_owned(),
                "GetAtt:RunnerFunction.Arn".to_owned()
            ),
            (
                "sqs:SendMessage".to_owned(),
                "GetAtt:RunnerDeadLetterQueue.Arn".to_owned()
            ),
        ]
    );
    // AND a firing no schedule could deliver raises an alarm (dead-lettered or dropped)
    let watches_the_group = |alarm: &Value| {
        let metrics = alarm["Properties"]["Metrics"].as_sequence();
        let of = |name: &str| {
            metrics.is_some_and(|m| {
                m.iter().any(|q| {
                    let metric = &q["MetricStat"]["Metric"];
                    metric["Namespace"].as_str() == Some("AWS/Scheduler")
                        && metric["MetricName"].as_str() == Some(name)
                        && metric["Dimensions"][0]["Name"].as_str() == Some("ScheduleGroup")
                        && metric["Dimensions"][0]["Value"]["Ref"].as_str() == Some("JobSchedules")
                })
            })
        };
        of("InvocationsSentToDeadLetterCount") && of("InvocationDroppedCount")
    };
    assert!(
        resources_of(&t, "AWS::CloudWatch::Alarm")
            .iter()
            .any(|(_, a)| watches_the_group(a)),
        "an alarm on the job group's dead-lettered and dropped invocations"
    );
}

#[test]
fn the_table_and_functions_are_as_spec_section_10_says() {
    let t = template();
    let table = &resource(&t, "Table")["Properties"];
    assert_eq!(table["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(backup_aws::dynamodb::TTL_ATTRIBUTE)
    );
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    let indexes: BTreeSet<String> = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| i["IndexName"].as_str().unwrap().to_owned())
        .collect();
    let code: BTreeSet<String> = [
        backup_aws::dynamodb::SCOPE_INDEX,
        backup_aws::dynamodb::JOB_INDEX,
        backup_aws::dynamodb::STATE_INDEX,
        backup_aws::dynamodb::HISTORY_ID_INDEX,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(indexes, code);
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(strings(&globals["Architectures"]), ["arm64"]);
    assert_eq!(
        t["Parameters"]["RulePrefix"]["Default"].as_str(),
        Some(backup_aws::config::DEFAULT_RULE_PREFIX)
    );
    let api = &resource(&t, "HttpApi")["Properties"]["Auth"];
    assert_eq!(api["DefaultAuthorizer"].as_str(), Some("AWS_IAM"));
}

/// The resources of type `kind`, by logical id.
fn resources_of<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap(), r))
        .collect()
}

#[test]
fn every_alarm_reaches_a_topic_cloudwatch_may_publish_to() {
    let t = template();
    // GIVEN the alarms THEN each notifies the alarm topic
    let alarms = resources_of(&t, "AWS::CloudWatch::Alarm");
    assert!(!alarms.is_empty());
    for (id, alarm) in alarms {
        let actions = &alarm["Properties"]["AlarmActions"];
        assert_eq!(
            actions.as_sequence().map(|a| a.len()),
            Some(1),
            "{id}: {actions:?}"
        );
        assert_eq!(actions[0]["Ref"].as_str(), Some("AlarmTopic"), "{id}");
    }
    // AND the topic is unencrypted, or encrypted with a key of the template (never the
    // AWS-managed alias/aws/sns, which CloudWatch may not use) whose policy lets CloudWatch
    // encrypt for it and the account administer it
    let key = &resource(&t, "AlarmTopic")["Properties"]["KmsMasterKeyId"];
    if key.is_null() {
        return;
    }
    let key_id = key["Ref"]
        .as_str()
        .unwrap_or_else(|| panic!("the alarm topic's key is a key of the template, not {key:?}"));
    let key = resource(&t, key_id);
    assert_eq!(key["Type"].as_str(), Some("AWS::KMS::Key"));
    let statements = key["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence()
        .expect("a key policy");
    let allows = |principal: &dyn Fn(&Value) -> bool, wanted: &[&str]| {
        statements.iter().any(|st| {
            let actions = strings(&st["Action"]);
            st["Effect"].as_str() == Some("Allow")
                && principal(&st["Principal"])
                && wanted.iter().all(|w| actions.iter().any(|a| a == w))
        })
    };
    assert!(
        allows(
            &|p| p["Service"].as_str() == Some("cloudwatch.amazonaws.com"),
            &["kms:Decrypt", "kms:GenerateDataKey*"]
        ),
        "CloudWatch may encrypt for the topic"
    );
    assert!(
        allows(
            &|p| resource_text(&p["AWS"]).ends_with(":iam::${AWS::AccountId}:root"),
            &["kms:*"]
        ),
        "the account administers the key"
    );
}

#[test]
fn a_firing_no_rule_could_deliver_reaches_the_dead_letter_queue_and_an_alarm() {
    let t = template();
    // GIVEN jobs-api, which makes the rules THEN it names the runner's dead-letter queue
    let env = &resource(&t, "JobsApiFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        resource_text(&env["DEAD_LETTER_QUEUE_ARN"]),
        "GetAtt:RunnerDeadLetterQueue.Arn"
    );
    // AND the queue lets EventBridge send into it from the job rules, the snapshot and
    // volume notification rules and the sweeper, and only from them
    let policies = resources_of(&t, "AWS::SQS::QueuePolicy");
    let [(_, policy)] = policies.as_slice() else {
        panic!("one queue policy: {policies:?}")
    };
    let policy = &policy["Properties"];
    assert_eq!(
        strings(&policy["Queues"][0]["Ref"]),
        ["RunnerDeadLetterQueue"]
    );
    let statements = policy["PolicyDocument"]["Statement"].as_sequence().unwrap();
    let [jobs, own] = statements.as_slice() else {
        panic!("two statements: {statements:?}")
    };
    for st in [jobs, own] {
        assert_eq!(st["Effect"].as_str(), Some("Allow"));
        assert_eq!(
            st["Principal"]["Service"].as_str(),
            Some("events.amazonaws.com")
        );
        assert_eq!(strings(&st["Action"]), ["sqs:SendMessage"]);
        assert_eq!(
            resource_text(&st["Resource"]),
            "GetAtt:RunnerDeadLetterQueue.Arn"
        );
    }
    assert!(
        resource_text(&jobs["Condition"]["ArnLike"]["aws:SourceArn"])
            .ends_with(":rule/${RulePrefix}*"),
        "{jobs:?}"
    );
    let rules: Vec<String> = own["Condition"]["ArnEquals"]["aws:SourceArn"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(resource_text)
        .collect();
    assert_eq!(
        rules,
        [
            "GetAtt:SnapshotNotificationRule.Arn",
            "GetAtt:VolumeNotificationRule.Arn",
            "GetAtt:SweepRule.Arn"
        ]
    );
    // AND an alarm counts the invocations EventBridge gave up on (FailedInvocations)
    let watches_failed_invocations = |alarm: &Value| {
        let p = &alarm["Properties"];
        let plain = p["Namespace"].as_str() == Some("AWS/Events")
            && p["MetricName"].as_str() == Some("FailedInvocations");
        let query = p["Metrics"].as_sequence().is_some_and(|m| {
            m.iter().any(|q| {
                q["Expression"].as_str().is_some_and(|e| {
                    e.contains("SUM(FailedInvocations)") && e.contains("\"AWS/Events\"")
                }) && q["ReturnData"].as_bool() == Some(true)
            })
        });
        plain || query
    };
    assert!(
        resources_of(&t, "AWS::CloudWatch::Alarm")
            .iter()
            .any(|(_, a)| watches_failed_invocations(a)),
        "an alarm on AWS/Events FailedInvocations"
    );
}

/// `name` (a plain string or an `Fn::Sub` template) as CloudFormation would make it in a stack
/// named `stack`; a template naming anything else cannot be bounded here.
fn rendered(name: &Value, stack: &str) -> String {
    let text = resource_text(name).replace("${AWS::StackName}", stack);
    assert!(!text.contains("${"), "cannot tell the length of {name:?}");
    text
}

#[test]
fn every_name_fits_aws_limits_for_the_longest_stack_name() {
    let t = template();
    // GIVEN a stack name of CloudFormation's maximum, 128 characters
    let stack = "s".repeat(128);
    // THEN each function's name fits Lambda's 64 characters: CloudFormation makes one that
    // does when the template names none
    let functions: Vec<_> = ["AWS::Serverless::Function", "AWS::Lambda::Function"]
        .iter()
        .flat_map(|kind| resources_of(&t, kind))
        .collect();
    assert_eq!(functions.len(), 3, "{functions:?}");
    for (id, function) in functions {
        let name = &function["Properties"]["FunctionName"];
        if !name.is_null() {
            let name = rendered(name, &stack);
            assert!(name.chars().count() <= 64, "{id}: {name}");
        }
    }
    // AND each export's name fits CloudFormation's 255
    if let Value::Mapping(outputs) = &t["Outputs"] {
        for (id, output) in outputs {
            let name = &output["Export"]["Name"];
            if !name.is_null() {
                let name = rendered(name, &stack);
                assert!(name.chars().count() <= 255, "{id:?}: {name}");
            }
        }
    }
    // AND each log group's name fits CloudWatch Logs' 512
    for (id, group) in resources_of(&t, "AWS::Logs::LogGroup") {
        let name = &group["Properties"]["LogGroupName"];
        if !name.is_null() {
            let name = rendered(name, &stack);
            assert!(name.chars().count() <= 512, "{id}: {name}");
        }
    }
}
