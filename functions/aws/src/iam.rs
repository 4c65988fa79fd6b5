//! The AWS API actions each adapter calls: one place for the fact that the IAM policies of
//! `infra/template.yaml` must match. The test `tests/least_privilege.rs` parses the template
//! and checks that each function's role allows exactly the actions of the adapters it uses
//! (plus what the Lambda service does with the role: logs and the dead-letter queue), with
//! no wildcard action and resources scoped to the table, the rule prefix and the function.
//!
//! Keep these lists in step with the SDK calls in [`crate::dynamodb`],
//! [`crate::eventbridge`] and [`crate::ebs`].

/// [`crate::DynamoStore`]: every store port and the cluster lock. (`CreateTable` and
/// `UpdateTimeToLive` are only for tests; the template creates the table. Transactions need
/// no action of their own: each of their writes is authorized as `PutItem`/`UpdateItem`.)
pub const DYNAMODB_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
];

/// [`crate::EventBridgeTriggers`]: arming and removing job rules.
pub const EVENTBRIDGE_ACTIONS: &[&str] = &[
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "events:DeleteRule",
];

/// [`crate::EbsProvider`]: snapshots (tagged at creation) and finding volumes by tag.
pub const EBS_ACTIONS: &[&str] = &[
    "ec2:CreateSnapshot",
    "ec2:CreateTags",
    "ec2:DescribeSnapshots",
    "ec2:DeleteSnapshot",
    "ec2:DescribeInstances",
];

/// The runner makes backups: the store, the lock and the EBS provider; it never arms rules.
pub fn runner_actions() -> Vec<&'static str> {
    [DYNAMODB_ACTIONS, EBS_ACTIONS].concat()
}

/// The jobs API: the store, the lock, rules (job creation and deletion) and the EBS provider
/// (manual backups, "run now", deleting backups).
pub fn jobs_api_actions() -> Vec<&'static str> {
    [DYNAMODB_ACTIONS, EVENTBRIDGE_ACTIONS, EBS_ACTIONS].concat()
}
