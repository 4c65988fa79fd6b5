//! The AWS calls each function makes, and the IAM actions that authorize them: one place for
//! the fact that the roles of `infra/template.yaml` must match.
//!
//! The lists are per function, not per adapter: a function's role allows what *its* code
//! paths call, so the runner (which never touches a rule) holds no `events:` action although
//! the adapters it shares with `jobs-api` could make those calls.
//!
//! Tests hold the lists to the truth:
//! - `tests/least_privilege.rs` parses the template and checks that each function's role
//!   allows exactly the IAM actions of its calls (plus what the Lambda service does with the
//!   role: logs and the dead-letter queue), with no wildcard action and resources scoped to
//!   the table, the rule prefix and the function's own log group and queue;
//! - `backup-lambdas`' `tests/functions.rs` runs both functions as processes through a proxy
//!   that records every call each one makes, and fails if a function called something that is
//!   not on its list, or if a list names a call that no test saw its function make;
//!   `tests/job_resource.rs` does the same for `job-resource` (every call it makes is on its
//!   list).
//!
//! Keep these lists in step with the SDK calls in [`crate::dynamodb`],
//! [`crate::eventbridge`], [`crate::scheduler`] and [`crate::ebs`], and with which engine
//! paths each function runs.
//!
//! `jobs-api` holds the calls of both kinds of trigger whatever the stack's `Trigger`: the
//! kind it arms, and the kind it retires (what `jobs rearm` moves jobs from, and what
//! deleting a job not yet moved removes). Both are scoped to the deployment's own rules
//! and schedule group.

use std::collections::BTreeSet;

/// One AWS API call a function makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// `service:Operation`, as the request names it (`X-Amz-Target` for DynamoDB and
    /// EventBridge, `Action=` for EC2, the method and path for EventBridge Scheduler's REST
    /// API): `dynamodb:TransactWriteItems`, `ec2:CreateSnapshot`, `scheduler:CreateSchedule`.
    pub operation: &'static str,
    /// The IAM actions AWS checks for it. Usually the operation itself; a transaction is
    /// authorized item by item (`Put` as `dynamodb:PutItem`, `Update` as
    /// `dynamodb:UpdateItem`: there is no `TransactWriteItems` action), a snapshot or volume
    /// tagged at creation also needs `ec2:CreateTags` (which the role allows only while the
    /// function's own creating calls run: `ec2:CreateAction`), and a volume made from a
    /// snapshot encrypted with a customer key needs the key's KMS actions (through EC2 only).
    pub actions: &'static [&'static str],
    /// Which of the function's code paths make it.
    pub why: &'static str,
}

/// A function and every AWS call its code paths make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// The binary (`backup-runner`, `jobs-api`).
    pub name: &'static str,
    pub calls: &'static [Call],
}

impl Function {
    /// The IAM actions its role must allow for its code (the Lambda service's own use of the
    /// role, logs and the dead-letter queue, is not part of it).
    pub fn actions(&self) -> BTreeSet<&'static str> {
        self.calls
            .iter()
            .flat_map(|c| c.actions.iter().copied())
            .collect()
    }

    /// Whether `operation` (`service:Operation`) is one of its calls.
    pub fn makes(&self, operation: &str) -> bool {
        self.calls.iter().any(|c| c.operation == operation)
    }
}

/// The functions of the deployment.
pub const FUNCTIONS: [Function; 3] = [RUNNER, JOBS_API, JOB_RESOURCE];

/// The function named `name` (its binary's name).
pub fn function(name: &str) -> Option<Function> {
    FUNCTIONS.into_iter().find(|f| f.name == name)
}

/// `backup-runner`: one scheduled run per invocation (record the run as it takes the lock, start
/// the snapshots, record them pending), the settling of a pending backup from EC2's
/// notification (prune, record the end), the sweeper (SPEC §16) and, for a redelivery of a
/// run whose process is gone, settling it as interrupted; and the settling of restores from
/// EC2's volume notifications and the sweeper (deleting a failed restore's volumes). It
/// never creates or deletes jobs, clusters or rules, and never makes a volume.
pub const RUNNER: Function = Function {
    name: "backup-runner",
    calls: &[
        Call {
            operation: "dynamodb:GetItem",
            actions: &["dynamodb:GetItem"],
            why: "reads the job a trigger names, the run record a duplicate delivery finds, \
                  the lock of a cluster whose run may be abandoned, and a backup another \
                  delete changed under a prune",
        },
        Call {
            operation: "dynamodb:BatchGetItem",
            actions: &["dynamodb:BatchGetItem"],
            why: "reads the cluster, its lock and the job's backup counter in one call \
                  before a run takes the lock",
        },
        Call {
            operation: "dynamodb:PutItem",
            actions: &["dynamodb:PutItem"],
            why: "records a run that does not take the cluster (locked, or its job or \
                  cluster gone), to record its failure (a conditional put, so a second \
                  delivery of one firing finds the first run instead of recording another)",
        },
        Call {
            operation: "dynamodb:TransactWriteItems",
            actions: &[
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ],
            why: "takes the lock, numbers the backup and records it with the run in one \
                  transaction (two updates and two conditional puts); records the started snapshots pending and extends the \
                  lease in another (puts and updates); and records the backup's outcome, the \
                  history item and the lock's release, forgetting the pending record, in a \
                  third (updates and deletes)",
        },
        Call {
            operation: "dynamodb:UpdateItem",
            actions: &["dynamodb:UpdateItem"],
            why: "renews the lease while the snapshots are made, moves pruned backups \
                  through `deleting` to `deleted`, settles an abandoned run and its backup, \
                  and makes a cancelled transaction's parts one by one",
        },
        Call {
            operation: "dynamodb:Query",
            actions: &["dynamodb:Query"],
            why: "lists the job's backups (job index) for retention and for an abandoned \
                  run's backup; the sweeper lists pending backups, running runs and backups \
                  left `creating` or `deleting` (state index)",
        },
        Call {
            operation: "ec2:DescribeInstances",
            actions: &["ec2:DescribeInstances"],
            why: "finds the instances of a cluster registered by instance tag",
        },
        Call {
            operation: "ec2:CreateSnapshot",
            actions: &["ec2:CreateSnapshot", "ec2:CreateTags"],
            why: "one snapshot per volume of a cluster named by volume ids, tagged at \
                  creation (`TagSpecifications`, which needs `CreateTags` on the new \
                  snapshot)",
        },
        Call {
            operation: "ec2:CreateSnapshots",
            actions: &["ec2:CreateSnapshots", "ec2:CreateTags"],
            why: "one crash-consistent set of snapshots per instance of a cluster named by \
                  instance tag, tagged at creation (authorized on the instance, its volumes \
                  and the new snapshots)",
        },
        Call {
            operation: "ec2:DescribeSnapshots",
            actions: &["ec2:DescribeSnapshots"],
            why: "asks whether every snapshot of a backup completed (a notification of one \
                  snapshot of several, and the sweeper), and finds the snapshots of a pruned \
                  or abandoned backup by their `backup:backup-id` tag when its record has \
                  no ids",
        },
        Call {
            operation: "ec2:DeleteSnapshot",
            actions: &["ec2:DeleteSnapshot"],
            why: "prunes the backups retention drops, and undoes the snapshots of a backup \
                  whose creation failed half-way",
        },
        Call {
            operation: "ec2:DescribeVolumes",
            actions: &["ec2:DescribeVolumes"],
            why: "asks whether every volume of a pending restore is available (a volume \
                  notification, and the sweeper)",
        },
        Call {
            operation: "ec2:DeleteVolume",
            actions: &["ec2:DeleteVolume"],
            why: "deletes the volumes of a restore that failed (a `failed` notification, a \
                  volume in `error`, or the sweeper past SNAPSHOT_TIMEOUT)",
        },
    ],
};

/// `jobs-api`: the HTTP API. Jobs (their records and rules), clusters, the lock, manual
/// backups and "run now" (which make backups and prune as the runner does), deleting
/// backups, and starting restores (which the runner settles).
pub const JOBS_API: Function = Function {
    name: "jobs-api",
    calls: &[
        Call {
            operation: "dynamodb:GetItem",
            actions: &["dynamodb:GetItem"],
            why: "reads one job, cluster, backup or lock (every `GET …/{id}`, and the checks \
                  before creating, deleting or running), and a job `jobs rearm` just armed \
                  (deleted meanwhile?)",
        },
        Call {
            operation: "dynamodb:BatchGetItem",
            actions: &["dynamodb:BatchGetItem"],
            why: "reads the cluster, its lock and the backup counter before a manual backup \
                  or \"run now\" takes the lock",
        },
        Call {
            operation: "dynamodb:PutItem",
            actions: &["dynamodb:PutItem"],
            why: "creates jobs and clusters (conditional puts) and records a \"run now\" run",
        },
        Call {
            operation: "dynamodb:TransactWriteItems",
            actions: &["dynamodb:PutItem", "dynamodb:UpdateItem"],
            why: "starts and finishes a manual backup or a \"run now\" run, as the runner \
                  does (lock, counter and backup record; outcome, history and release)",
        },
        Call {
            operation: "dynamodb:UpdateItem",
            actions: &["dynamodb:UpdateItem"],
            why: "marks a job deleted, takes and releases the lock (`…/lock`), renews a \
                  lease, and moves deleted or pruned backups through `deleting`",
        },
        Call {
            operation: "dynamodb:DeleteItem",
            actions: &["dynamodb:DeleteItem"],
            why: "deletes a cluster, and removes a job whose rules could not be made (the \
                  undo that keeps creating a job all-or-nothing)",
        },
        Call {
            operation: "dynamodb:Query",
            actions: &["dynamodb:Query"],
            why: "every list (scope index), a history item by id, the active jobs of a \
                  cluster and of the deployment (`jobs rearm`), a job's backups for retention",
        },
        Call {
            operation: "events:PutRule",
            actions: &["events:PutRule"],
            why: "creates a job's rule (two when both day fields are restricted), and \
                  re-creates it when `jobs rearm` moves a job back from schedules",
        },
        Call {
            operation: "events:PutTargets",
            actions: &["events:PutTargets"],
            why: "points a job's rule at the runner, with its retry policy and dead-letter \
                  queue",
        },
        Call {
            operation: "events:RemoveTargets",
            actions: &["events:RemoveTargets"],
            why: "removes the runner target before deleting a rule",
        },
        Call {
            operation: "events:DeleteRule",
            actions: &["events:DeleteRule"],
            why: "deletes a deleted job's rules, a rule a changed schedule no longer needs, \
                  a half-made rule when creating the job failed, and a job's rules once \
                  `jobs rearm` gave it schedules",
        },
        Call {
            operation: "scheduler:CreateSchedule",
            actions: &["scheduler:CreateSchedule", "iam:PassRole"],
            why: "creates a job's schedule (two when both day fields are restricted) with \
                  TRIGGER=scheduler, and when `jobs rearm` moves a job to schedules; passes \
                  the scheduler's role, which the schedule invokes the runner as",
        },
        Call {
            operation: "scheduler:UpdateSchedule",
            actions: &["scheduler:UpdateSchedule", "iam:PassRole"],
            why: "re-arms a schedule that exists (CreateSchedule answered ConflictException: \
                  `jobs rearm` run again), passing the role again",
        },
        Call {
            operation: "scheduler:DeleteSchedule",
            actions: &["scheduler:DeleteSchedule"],
            why: "deletes a deleted job's schedules (of either TRIGGER), a schedule a \
                  changed schedule no longer needs, a half-made one when creating the job \
                  failed, and a job's schedules once `jobs rearm` gave it rules",
        },
        Call {
            operation: "ec2:DescribeInstances",
            actions: &["ec2:DescribeInstances"],
            why: "finds the instances of a cluster registered by instance tag",
        },
        Call {
            operation: "ec2:CreateSnapshot",
            actions: &["ec2:CreateSnapshot", "ec2:CreateTags"],
            why: "manual backups and \"run now\" of a cluster named by volume ids: one \
                  snapshot per volume, tagged at creation",
        },
        Call {
            operation: "ec2:CreateSnapshots",
            actions: &["ec2:CreateSnapshots", "ec2:CreateTags"],
            why: "manual backups and \"run now\" of a cluster named by instance tag: one \
                  crash-consistent set per instance, tagged at creation",
        },
        Call {
            operation: "ec2:DescribeSnapshots",
            actions: &["ec2:DescribeSnapshots"],
            why: "finds a deleted backup's snapshots by their `backup:backup-id` tag when \
                  its record has no ids (a process stopped before recording them)",
        },
        Call {
            operation: "ec2:DeleteSnapshot",
            actions: &["ec2:DeleteSnapshot"],
            why: "deletes a backup (`DELETE …/backups/{id}`) and prunes after \"run now\"",
        },
        Call {
            operation: "ec2:DescribeAvailabilityZones",
            actions: &["ec2:DescribeAvailabilityZones"],
            why: "checks a restore's availability zone before any volume is made",
        },
        Call {
            operation: "ec2:CreateVolume",
            actions: &[
                "ec2:CreateVolume",
                "ec2:CreateTags",
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:DescribeKey",
            ],
            why: "a restore: one volume per snapshot, tagged at creation; a snapshot \
                  encrypted with a customer key needs EC2 to use the key on the caller's \
                  behalf (the KMS actions, allowed only through EC2)",
        },
        Call {
            operation: "ec2:DeleteVolume",
            actions: &["ec2:DeleteVolume"],
            why: "deletes the volumes a restore made when a later `CreateVolume` fails",
        },
        Call {
            operation: "lambda:Invoke",
            actions: &["lambda:InvokeFunction"],
            why: "\"run now\" hands the queued run to the runner by an asynchronous \
                  invocation (SPEC §16)",
        },
    ],
};

/// `job-resource`: the CloudFormation custom resource `Custom::ScheduledBackupJob` (SPEC
/// §17). Jobs only: their records and their triggers (of either kind, as `jobs-api`: the
/// kind it arms, and the retired kind a deleted or re-scheduled job loses). It reads the
/// cluster a new job names, never writes one, and makes no backup.
pub const JOB_RESOURCE: Function = Function {
    name: "job-resource",
    calls: &[
        Call {
            operation: "dynamodb:GetItem",
            actions: &["dynamodb:GetItem"],
            why: "reads the job a request names (a retried Create finds the one it made) \
                  and the cluster a new job names",
        },
        Call {
            operation: "dynamodb:PutItem",
            actions: &["dynamodb:PutItem"],
            why: "creates the job (a conditional put under the id derived from the stack)",
        },
        Call {
            operation: "dynamodb:UpdateItem",
            actions: &["dynamodb:UpdateItem"],
            why: "updates the job in place, and marks it deleted",
        },
        Call {
            operation: "dynamodb:DeleteItem",
            actions: &["dynamodb:DeleteItem"],
            why: "removes a job whose trigger could not be made (the undo that keeps \
                  creating a job all-or-nothing)",
        },
        Call {
            operation: "events:PutRule",
            actions: &["events:PutRule"],
            why: "creates the job's rule(s), and puts a new schedule on them",
        },
        Call {
            operation: "events:PutTargets",
            actions: &["events:PutTargets"],
            why: "points a job's rule at the runner",
        },
        Call {
            operation: "events:RemoveTargets",
            actions: &["events:RemoveTargets"],
            why: "removes the runner target before deleting a rule",
        },
        Call {
            operation: "events:DeleteRule",
            actions: &["events:DeleteRule"],
            why: "deletes a deleted job's rules, and a rule a changed schedule no longer \
                  needs",
        },
        Call {
            operation: "scheduler:CreateSchedule",
            actions: &["scheduler:CreateSchedule", "iam:PassRole"],
            why: "creates the job's schedule(s) with TRIGGER=scheduler, passing the \
                  scheduler's role",
        },
        Call {
            operation: "scheduler:UpdateSchedule",
            actions: &["scheduler:UpdateSchedule", "iam:PassRole"],
            why: "puts a new schedule on the job's schedules, passing the role again",
        },
        Call {
            operation: "scheduler:DeleteSchedule",
            actions: &["scheduler:DeleteSchedule"],
            why: "deletes a deleted job's schedules (of either TRIGGER), and one a changed \
                  schedule no longer needs",
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_is_listed_once_and_says_why() {
        for f in FUNCTIONS {
            let mut seen = BTreeSet::new();
            for c in f.calls {
                assert!(
                    seen.insert(c.operation),
                    "{}: {} twice",
                    f.name,
                    c.operation
                );
                assert!(!c.actions.is_empty() && !c.why.trim().is_empty(), "{c:?}");
                assert!(c.operation.split_once(':').is_some(), "{c:?}");
            }
        }
    }

    #[test]
    fn the_job_resource_touches_jobs_and_their_triggers_only() {
        for action in JOB_RESOURCE.actions() {
            assert!(
                action.starts_with("dynamodb:")
                    || action.starts_with("events:")
                    || action.starts_with("scheduler:")
                    || action == "iam:PassRole",
                "{action}"
            );
        }
        assert!(!JOB_RESOURCE.makes("dynamodb:Query"));
        assert!(!JOB_RESOURCE.makes("dynamodb:TransactWriteItems"));
    }

    #[test]
    fn the_runner_deletes_only_pending_records_in_transactions_and_arms_no_triggers() {
        let actions = RUNNER.actions();
        assert!(!RUNNER.makes("dynamodb:DeleteItem"));
        assert!(!actions.iter().any(|a| a.starts_with("events:")
            || a.starts_with("scheduler:")
            || a.starts_with("iam:")));
        assert_eq!(function("backup-runner"), Some(RUNNER));
        assert_eq!(function("jobs-api"), Some(JOBS_API));
        assert_eq!(function("job-resource"), Some(JOB_RESOURCE));
        assert_eq!(function("nope"), None);
    }
}
