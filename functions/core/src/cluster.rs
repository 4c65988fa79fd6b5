//! Validation of a register-cluster request and of an operator's lock request (SPEC §5, §7),
//! every problem keyed by the request's JSON field name.
//!
//! The engine answers 400 with these problems, `backupctl` checks its flags with them before
//! sending, and the web form runs them in the browser: one home for each rule, next to the
//! job rules of [`crate::job`], with the same error shape.
//!
//! What is *not* here, on purpose: whether a directory exists, where its links lead and
//! whether the server's path policy (SPEC §12, `path_not_allowed`) allows it. Those need the
//! file system, so the local provider checks them when the cluster is registered and again
//! at every run. This module checks only the shape of the text.
//!
//! Decisions the SPEC leaves open, written down here:
//! - A cluster id follows the job's `data.clusterId` rule ([`check_cluster_id`]), since a
//!   job names the cluster by it.
//! - A directory cluster's region is always `local`; a request may leave it out or say
//!   `local`, anything else is an error rather than silently replaced.
//! - An EBS region is 1 to [`MAX_REGION_CHARS`] of `a-z`, `0-9` and `-`: the shape of every
//!   AWS region name, checked without a list that would age.
//! - The volumes are named by ids or by one instance tag `KEY=VALUE`, never both, so a
//!   backup never depends on which of the two the provider happened to read first.
//! - A cluster may say its server's version and build tag (1 to [`MAX_SERVER_VERSION_CHARS`]
//!   printable characters each, no control characters; left out when unknown) and its node
//!   count (1 to [`MAX_NODE_COUNT`], 1 when left out): backups of it show them, as esc's
//!   `serverVersion`, `serverVersionTag` and `availableNodeCount`.
//! - Hooks and backup/restore commands (SPEC §15) are shell text of 1 to
//!   [`MAX_COMMAND_CHARS`] characters without NUL; whether the server may run them at all
//!   (`serve --allow-commands`, never on AWS) is the engine's decision, not a shape. A
//!   `command` cluster's region is `local`, like a directory's; `runAs` is a POSIX-shaped
//!   user name and `commandTimeoutSeconds` 1 s to a week.
//! - A registration with `sourceBackupId` is a restore (SPEC §14). A directory restore
//!   needs `path` (the new data directory); an aws-ebs restore needs `availabilityZone`
//!   (1 to [`MAX_REGION_CHARS`] of `a-z`, `0-9`, `-`, like a region, plus its zone letter)
//!   and may give `volumeType` (one of [`VOLUME_TYPES`]); its volumes come from the backup,
//!   so `volumeIds` or `instanceTag` are `conflicting`. `availabilityZone` and `volumeType`
//!   without `sourceBackupId`, or with a directory target, are `conflicting` too: they would
//!   otherwise be silently ignored. An aws-ebs restore may leave `region` out (the
//!   [`ValidCluster::region`] is then empty): its volumes are made in the backup's region,
//!   which the engine fills in. The backup id has the shape of every id the server makes
//!   ([`is_backup_id`]). Whether the backup exists, is `available` and is of the same
//!   provider is the engine's check.
//! - The TTL of a maintenance lock is 1 s to [`MAX_LOCK_TTL_SECONDS`] (7 days): a longer
//!   window is almost certainly a typo (`30d` for `30m`), and a lock can be taken again.

use crate::api::{ClusterTarget, LockClusterRequest, RegisterClusterRequest};
use crate::error::{ErrorCode, Field, FieldError, FieldErrors, Problems};
pub use crate::job::{check_cluster_id, MAX_CLUSTER_ID_CHARS};
use crate::prelude::*;

/// Descriptions of clusters are at most this many characters (SPEC §11).
pub const MAX_CLUSTER_DESCRIPTION_CHARS: usize = 256;
/// A directory cluster's path is at most this many characters (Linux's `PATH_MAX`).
pub const MAX_PATH_CHARS: usize = 4096;
/// A hook or a backup or restore command is at most this many characters.
pub const MAX_COMMAND_CHARS: usize = 4096;
/// The longest a cluster's command may run, in seconds: a week.
pub const MAX_COMMAND_TIMEOUT_SECONDS: u64 = 7 * 24 * 3600;
/// An AWS region name is at most this many characters.
pub const MAX_REGION_CHARS: usize = 32;
/// An EBS cluster names at most this many volumes.
pub const MAX_VOLUME_IDS: usize = 64;
/// An instance tag `KEY=VALUE` is at most this many characters (EC2's key and value limits).
pub const MAX_INSTANCE_TAG_CHARS: usize = 256;
/// A maintenance operation's name is at most this many characters.
pub const MAX_OPERATION_CHARS: usize = 64;
/// A server version or version tag is at most this many characters.
pub const MAX_SERVER_VERSION_CHARS: usize = 64;
/// A cluster has at most this many nodes.
pub const MAX_NODE_COUNT: u32 = 99;
/// The shortest maintenance lock, in seconds.
pub const MIN_LOCK_TTL_SECONDS: u64 = 1;
/// The longest maintenance lock, in seconds: a week.
pub const MAX_LOCK_TTL_SECONDS: u64 = 7 * 24 * 3600;
/// The EBS volume types a restore may ask for.
pub const VOLUME_TYPES: [&str; 7] = ["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"];
/// The length of a backup id.
pub const BACKUP_ID_CHARS: usize = 20;
/// The region of every directory cluster.
pub const LOCAL_REGION: &str = "local";
/// The operation name of a scheduled run's lock.
pub const OPERATION_SCHEDULED: &str = "scheduled-backup";
/// The operation name of a manual backup's lock.
pub const OPERATION_MANUAL: &str = "manual-backup";
/// The operation name of the lock a restore holds on the cluster it makes (SPEC §14).
pub const OPERATION_RESTORE: &str = "restore";

/// The keys of a cluster or lock check: the JSON field names of the register-cluster and
/// lock bodies, which are also the keys of the API's `fields` map.
pub mod keys {
    pub const ID: &str = "id";
    pub const DESCRIPTION: &str = "description";
    pub const REGION: &str = "region";
    pub const PATH: &str = "path";
    pub const VOLUME_IDS: &str = "volumeIds";
    pub const INSTANCE_TAG: &str = "instanceTag";
    pub const SERVER_VERSION: &str = "serverVersion";
    pub const SERVER_VERSION_TAG: &str = "serverVersionTag";
    pub const NODE_COUNT: &str = "nodeCount";
    pub const SOURCE_BACKUP_ID: &str = "sourceBackupId";
    pub const AVAILABILITY_ZONE: &str = "availabilityZone";
    pub const VOLUME_TYPE: &str = "volumeType";
    pub const PRE_HOOK: &str = "preHook";
    pub const POST_HOOK: &str = "postHook";
    pub const BACKUP_COMMAND: &str = "backupCommand";
    pub const RESTORE_COMMAND: &str = "restoreCommand";
    pub const RUN_AS: &str = "runAs";
    pub const COMMAND_TIMEOUT_SECONDS: &str = "commandTimeoutSeconds";
    /// Every key of a register-cluster check.
    pub const CLUSTER_ALL: [&str; 18] = [
        ID,
        DESCRIPTION,
        REGION,
        PATH,
        VOLUME_IDS,
        INSTANCE_TAG,
        SERVER_VERSION,
        SERVER_VERSION_TAG,
        NODE_COUNT,
        SOURCE_BACKUP_ID,
        AVAILABILITY_ZONE,
        VOLUME_TYPE,
        PRE_HOOK,
        POST_HOOK,
        BACKUP_COMMAND,
        RESTORE_COMMAND,
        RUN_AS,
        COMMAND_TIMEOUT_SECONDS,
    ];

    pub const OPERATION: &str = "operation";
    pub const TTL_SECONDS: &str = "ttlSeconds";
    /// Every key of a lock check.
    pub const LOCK_ALL: [&str; 2] = [OPERATION, TTL_SECONDS];
}

/// A register-cluster request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCluster {
    /// The region to store: `local` for a directory cluster, as written for EBS; empty for
    /// an aws-ebs restore that left it out (the backup's, which the engine knows).
    pub region: String,
}

/// Checks every field of `request`, reporting every problem of every field at once.
pub fn validate_cluster(request: &RegisterClusterRequest) -> Result<ValidCluster, Problems> {
    let mut problems = Problems::default();
    problems.take(keys::ID, check_cluster_id(Some(&request.id)));
    problems.take(
        keys::DESCRIPTION,
        check_cluster_description(&request.description),
    );
    if let Some(version) = &request.server_version {
        problems.take(
            keys::SERVER_VERSION,
            check_server_version(Field::ServerVersion, version),
        );
    }
    if let Some(tag) = &request.server_version_tag {
        problems.take(
            keys::SERVER_VERSION_TAG,
            check_server_version(Field::ServerVersionTag, tag),
        );
    }
    if let Some(count) = request.node_count {
        problems.take(keys::NODE_COUNT, check_node_count(count));
    }
    if let Some(id) = &request.source_backup_id {
        problems.take(keys::SOURCE_BACKUP_ID, check_backup_id(id));
    }
    let restore = request.is_restore();
    let ebs = matches!(request.target, ClusterTarget::AwsEbs { .. });
    for (key, field, given) in [
        (
            keys::AVAILABILITY_ZONE,
            Field::AvailabilityZone,
            &request.availability_zone,
        ),
        (keys::VOLUME_TYPE, Field::VolumeType, &request.volume_type),
    ] {
        if given.is_some() && !(restore && ebs) {
            let why = if restore {
                "it is only for restoring an aws-ebs backup; a directory restore takes a path"
            } else {
                "it is only for a restore: give sourceBackupId too, or leave it out"
            };
            problems.take::<()>(
                key,
                Err(one(
                    ErrorCode::Conflicting,
                    field,
                    0..0,
                    format!("`{key}` does not belong here: {why}."),
                )),
            );
        }
    }
    let region = match &request.target {
        ClusterTarget::Directory {
            path,
            pre_hook,
            post_hook,
        } => {
            problems.take(keys::PATH, check_path(path));
            for (key, hook) in [(keys::PRE_HOOK, pre_hook), (keys::POST_HOOK, post_hook)] {
                if let Some(hook) = hook {
                    problems.take(key, check_command(hook));
                }
            }
            problems.take(
                keys::REGION,
                check_directory_region(request.region.as_deref()),
            )
        }
        ClusterTarget::Command {
            path,
            backup_command,
            restore_command,
            run_as,
            command_timeout_seconds,
        } => {
            problems.take(keys::PATH, check_path(path));
            problems.take(keys::BACKUP_COMMAND, check_command(backup_command));
            if let Some(command) = restore_command {
                problems.take(keys::RESTORE_COMMAND, check_command(command));
            }
            if let Some(user) = run_as {
                problems.take(keys::RUN_AS, check_run_as(user));
            }
            if let Some(seconds) = command_timeout_seconds {
                problems.take(
                    keys::COMMAND_TIMEOUT_SECONDS,
                    check_command_timeout(*seconds),
                );
            }
            problems.take(
                keys::REGION,
                check_directory_region(request.region.as_deref()),
            )
        }
        ClusterTarget::AwsEbs {
            volume_ids,
            instance_tag,
        } if restore => {
            if !volume_ids.is_empty() || instance_tag.is_some() {
                let (key, field) = if volume_ids.is_empty() {
                    (keys::INSTANCE_TAG, Field::InstanceTag)
                } else {
                    (keys::VOLUME_IDS, Field::VolumeIds)
                };
                problems.take::<()>(
                    key,
                    Err(one(
                        ErrorCode::Conflicting,
                        field,
                        0..0,
                        "A restore makes new volumes from the backup's snapshots: leave out \
                         volumeIds and instanceTag, and give availabilityZone."
                            .to_owned(),
                    )),
                );
            }
            problems.take(
                keys::AVAILABILITY_ZONE,
                check_availability_zone(request.availability_zone.as_deref()),
            );
            if let Some(kind) = &request.volume_type {
                problems.take(keys::VOLUME_TYPE, check_volume_type(kind));
            }
            // The new volumes are made in the backup's region, so a restore may leave the
            // region out (the engine fills it in and refuses another one).
            match request.region.as_deref() {
                None => Some(String::new()),
                given => problems.take(keys::REGION, check_aws_region(given)),
            }
        }
        ClusterTarget::AwsEbs {
            volume_ids,
            instance_tag,
        } => {
            let region = problems.take(keys::REGION, check_aws_region(request.region.as_deref()));
            match (volume_ids.is_empty(), instance_tag) {
                (true, None) | (false, Some(_)) => {
                    let (code, message) = if volume_ids.is_empty() {
                        (
                            ErrorCode::Required,
                            "Name the volumes to snapshot: their volume ids, such as \
                             [\"vol-0123456789abcdef0\"], or one instance tag KEY=VALUE, such \
                             as Cluster=orders.",
                        )
                    } else {
                        (
                            ErrorCode::Conflicting,
                            "Name the volumes either by volume ids or by one instance tag \
                             KEY=VALUE, not both.",
                        )
                    };
                    problems.take::<()>(
                        keys::VOLUME_IDS,
                        Err(one(code, Field::VolumeIds, 0..0, message.to_owned())),
                    );
                }
                (false, None) => {
                    problems.take(keys::VOLUME_IDS, check_volume_ids(volume_ids));
                }
                (true, Some(tag)) => {
                    problems.take(keys::INSTANCE_TAG, check_instance_tag(tag));
                }
            }
            region
        }
    };
    match region {
        Some(region) if problems.is_empty() => Ok(ValidCluster { region }),
        _ => Err(problems),
    }
}

/// Checks an operator's lock request against the longest lease allowed,
/// [`MAX_LOCK_TTL_SECONDS`]. See [`validate_lock_within`].
pub fn validate_lock(request: &LockClusterRequest) -> Result<Option<u64>, Problems> {
    validate_lock_within(request, MAX_LOCK_TTL_SECONDS)
}

/// Checks an operator's lock request, allowing a TTL of 1 to `max_ttl_seconds` (a server may
/// allow less than [`MAX_LOCK_TTL_SECONDS`], never more), and answers the TTL it asked for
/// (`None`: the server's default).
pub fn validate_lock_within(
    request: &LockClusterRequest,
    max_ttl_seconds: u64,
) -> Result<Option<u64>, Problems> {
    let mut problems = Problems::default();
    problems.take(keys::OPERATION, check_operation(&request.operation));
    if let Some(ttl) = request.ttl_seconds {
        problems.take(keys::TTL_SECONDS, check_ttl_seconds(ttl, max_ttl_seconds));
    }
    problems.into_result().map(|()| request.ttl_seconds)
}

fn one(
    code: ErrorCode,
    field: Field,
    span: core::ops::Range<usize>,
    message: String,
) -> FieldErrors {
    FieldErrors(vec![FieldError::new(code, field, span, message)])
}

/// At most 40 characters of user input, for quoting it back in a message.
fn shorten(text: &str) -> String {
    // Sliced at the 41st character's byte offset rather than collected char by char: the
    // same text, in less code for the WebAssembly module. `get` rather than `&text[..end]`
    // (a character's offset, so the same text): indexing links the slicing panic's
    // formatting into the module.
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or(text)),
        None => text.to_owned(),
    }
}

/// A cluster's description: not blank, at most [`MAX_CLUSTER_DESCRIPTION_CHARS`] characters.
pub fn check_cluster_description(text: &str) -> Result<(), FieldErrors> {
    let n = text.chars().count();
    if text.trim().is_empty() {
        Err(one(
            ErrorCode::Required,
            Field::ClusterDescription,
            0..n,
            "Give a description, such as \"Orders database\".".to_owned(),
        ))
    } else if n > MAX_CLUSTER_DESCRIPTION_CHARS {
        Err(one(
            ErrorCode::TooLong,
            Field::ClusterDescription,
            MAX_CLUSTER_DESCRIPTION_CHARS..n,
            format!(
                "A description is at most {MAX_CLUSTER_DESCRIPTION_CHARS} characters; this one \
                 has {n}."
            ),
        ))
    } else {
        Ok(())
    }
}

/// A server version or its build tag (`field` says which): 1 to
/// [`MAX_SERVER_VERSION_CHARS`] characters, none of them a control character.
pub fn check_server_version(field: Field, text: &str) -> Result<(), FieldErrors> {
    let n = text.chars().count();
    let example = match field {
        Field::ServerVersionTag => "23.10.1-jammy",
        _ => "23.10.1",
    };
    if text.trim().is_empty() {
        return Err(one(
            ErrorCode::Required,
            field,
            0..n,
            format!("Write the version, such as {example}, or leave it out when unknown."),
        ));
    }
    if n > MAX_SERVER_VERSION_CHARS {
        return Err(one(
            ErrorCode::TooLong,
            field,
            MAX_SERVER_VERSION_CHARS..n,
            format!(
                "A version is at most {MAX_SERVER_VERSION_CHARS} characters, such as \
                 {example}; this one has {n}."
            ),
        ));
    }
    if let Some((i, _)) = text.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(one(
            ErrorCode::InvalidValue,
            field,
            i..i + 1,
            format!("A version is printable text, such as {example}, without control characters."),
        ));
    }
    Ok(())
}

/// A cluster's node count: 1 to [`MAX_NODE_COUNT`].
pub fn check_node_count(count: u32) -> Result<(), FieldErrors> {
    if (1..=MAX_NODE_COUNT).contains(&count) {
        Ok(())
    } else {
        Err(one(
            ErrorCode::OutOfRange,
            Field::NodeCount,
            0..0,
            format!(
                "A cluster has 1 to {MAX_NODE_COUNT} nodes, such as 3; {count} is not. Leave \
                 it out for a single node."
            ),
        ))
    }
}

/// A directory cluster's path, by its text alone: given, absolute, not too long, no NUL.
/// Whether it exists and is allowed is the local provider's check (see the module notes).
pub fn check_path(path: &str) -> Result<(), FieldErrors> {
    let n = path.chars().count();
    if path.trim().is_empty() {
        return Err(one(
            ErrorCode::Required,
            Field::Path,
            0..n,
            "Give the cluster's data directory, such as /var/lib/db.".to_owned(),
        ));
    }
    if n > MAX_PATH_CHARS {
        return Err(one(
            ErrorCode::TooLong,
            Field::Path,
            MAX_PATH_CHARS..n,
            format!("A path is at most {MAX_PATH_CHARS} characters."),
        ));
    }
    // `starts_with('/')` rather than `Path::is_absolute`, which answers `false` for every
    // path on wasm32-unknown-unknown; on the Unix hosts the server runs on they agree.
    let nul = path.chars().position(|c| c == '\0');
    if nul.is_some() || !path.starts_with('/') {
        let (code, span) = match nul {
            Some(i) => (ErrorCode::InvalidValue, i..i + 1),
            None => (ErrorCode::NotAbsolute, 0..n),
        };
        return Err(one(
            code,
            Field::Path,
            span,
            format!(
                "Give the data directory as an absolute path (starting with /); `{}` is not.",
                shorten(path)
            ),
        ));
    }
    Ok(())
}

/// Whether `id` has the shape of a backup id: 20 of `0-9a-v`.
pub fn is_backup_id(id: &str) -> bool {
    id.len() == BACKUP_ID_CHARS && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'v'))
}

/// A restore's `sourceBackupId`.
pub fn check_backup_id(id: &str) -> Result<(), FieldErrors> {
    let n = id.chars().count();
    if id.trim().is_empty() {
        return Err(one(
            ErrorCode::Required,
            Field::SourceBackupId,
            0..n,
            "Give the id of the backup to restore, as `backups list` shows it.".to_owned(),
        ));
    }
    if !is_backup_id(id) {
        return Err(one(
            ErrorCode::InvalidValue,
            Field::SourceBackupId,
            0..n,
            format!(
                "`{}` is not a backup id: an id is {BACKUP_ID_CHARS} characters of 0-9 and a-v, \
                 such as c196ogto0aeqohe3ommq, as `backups list` shows it.",
                shorten(id)
            ),
        ));
    }
    Ok(())
}

/// An aws-ebs restore's availability zone: given, and shaped like one (`eu-west-1a`).
pub fn check_availability_zone(zone: Option<&str>) -> Result<(), FieldErrors> {
    let text = zone.unwrap_or("");
    let n = text.chars().count();
    if text.trim().is_empty() {
        return Err(one(
            ErrorCode::Required,
            Field::AvailabilityZone,
            0..n,
            "Give the availability zone to make the restored volumes in, such as eu-west-1a."
                .to_owned(),
        ));
    }
    let shaped = n <= MAX_REGION_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && text.bytes().last().is_some_and(|b| b.is_ascii_lowercase())
        && text.bytes().any(|b| b.is_ascii_digit());
    if !shaped {
        return Err(one(
            ErrorCode::InvalidValue,
            Field::AvailabilityZone,
            0..n,
            format!(
                "`{}` is not an availability zone: write one such as eu-west-1a (at most \
                 {MAX_REGION_CHARS} of a-z, 0-9 and -).",
                shorten(text)
            ),
        ));
    }
    Ok(())
}

/// An aws-ebs restore's volume type: one of [`VOLUME_TYPES`].
pub fn check_volume_type(kind: &str) -> Result<(), FieldErrors> {
    if VOLUME_TYPES.contains(&kind) {
        return Ok(());
    }
    Err(one(
        ErrorCode::InvalidValue,
        Field::VolumeType,
        0..kind.chars().count(),
        format!(
            "`{}` is not an EBS volume type: write one of {}.",
            shorten(kind),
            VOLUME_TYPES.join(", ")
        ),
    ))
}

/// A shell command (a hook, a backup or restore command): not blank, at most
/// [`MAX_COMMAND_CHARS`] characters, no NUL (which `sh -c` cannot receive).
pub fn check_command(text: &str) -> Result<(), FieldErrors> {
    let n = text.chars().count();
    if text.trim().is_empty() {
        return Err(one(
            ErrorCode::Required,
            Field::Command,
            0..n,
            "Write the shell command, such as `pg_ctl stop -D /srv/pg -m fast`, or leave it out."
                .to_owned(),
        ));
    }
    if n > MAX_COMMAND_CHARS {
        return Err(one(
            ErrorCode::TooLong,
            Field::Command,
            MAX_COMMAND_CHARS..n,
            format!(
                "A command is at most {MAX_COMMAND_CHARS} characters; this one has {n}: put a \
                 longer one in a script and run the script."
            ),
        ));
    }
    if let Some(i) = text.chars().position(|c| c == '\0') {
        return Err(one(
            ErrorCode::InvalidValue,
            Field::Command,
            i..i + 1,
            "A command cannot hold a NUL character; remove it.".to_owned(),
        ));
    }
    Ok(())
}

/// A user name to run commands as: 1 to 32 of ASCII letters, digits, `.`, `_` and `-`, not
/// starting with `-` (the portable shape of a POSIX user name).
pub fn check_run_as(user: &str) -> Result<(), FieldErrors> {
    let n = user.chars().count();
    let ok = (1..=32).contains(&n)
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        return Ok(());
    }
    Err(one(
        if n == 0 {
            ErrorCode::Required
        } else {
            ErrorCode::InvalidValue
        },
        Field::RunAs,
        0..n,
        "Give a user name such as postgres (1 to 32 letters, digits, ., _ or -), or leave it \
         out to run as the server's user."
            .to_owned(),
    ))
}

/// A command's timeout: 1 s to [`MAX_COMMAND_TIMEOUT_SECONDS`] (a week).
pub fn check_command_timeout(seconds: u64) -> Result<(), FieldErrors> {
    if (1..=MAX_COMMAND_TIMEOUT_SECONDS).contains(&seconds) {
        return Ok(());
    }
    Err(one(
        ErrorCode::OutOfRange,
        Field::CommandTimeoutSeconds,
        0..0,
        format!(
            "A command may run 1 to {MAX_COMMAND_TIMEOUT_SECONDS} seconds, such as 3600; \
             {seconds} is not in that range."
        ),
    ))
}

fn check_directory_region(region: Option<&str>) -> Result<String, FieldErrors> {
    match region {
        None | Some(LOCAL_REGION) => Ok(LOCAL_REGION.to_owned()),
        Some(other) => Err(one(
            ErrorCode::InvalidRegion,
            Field::Region,
            0..other.chars().count(),
            "A directory cluster's region is `local`; leave it out.".to_owned(),
        )),
    }
}

/// An EBS cluster's AWS region, by its shape (see the module notes).
pub fn check_aws_region(region: Option<&str>) -> Result<String, FieldErrors> {
    let text = region.unwrap_or_default();
    let ok = (1..=MAX_REGION_CHARS).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        return Ok(text.to_owned());
    }
    let code = if text.is_empty() {
        ErrorCode::Required
    } else {
        ErrorCode::InvalidRegion
    };
    Err(one(
        code,
        Field::Region,
        0..text.chars().count(),
        "Give the AWS region of the volumes, such as eu-west-1.".to_owned(),
    ))
}

/// `vol-` followed by 8 to 17 lower-case hexadecimal digits, as EC2 writes volume ids (8 for
/// old volumes, 17 for new ones).
pub fn is_volume_id(text: &str) -> bool {
    text.strip_prefix("vol-").is_some_and(|hex| {
        (8..=17).contains(&hex.len())
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// At most [`MAX_VOLUME_IDS`] volume ids, each one [`is_volume_id`]; one error per bad id.
pub fn check_volume_ids(volume_ids: &[String]) -> Result<(), FieldErrors> {
    let mut errors = Vec::new();
    if volume_ids.len() > MAX_VOLUME_IDS {
        errors.push(FieldError::new(
            ErrorCode::TooLong,
            Field::VolumeIds,
            0..0,
            format!("Name at most {MAX_VOLUME_IDS} volumes."),
        ));
    }
    for v in volume_ids.iter().filter(|v| !is_volume_id(v)) {
        errors.push(FieldError::new(
            ErrorCode::InvalidVolumeId,
            Field::VolumeIds,
            0..0,
            format!(
                "`{}` is not an EBS volume id such as vol-0abc123def4567890.",
                shorten(v)
            ),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(FieldErrors(errors))
    }
}

/// An instance tag `KEY=VALUE` with a non-blank key, at most [`MAX_INSTANCE_TAG_CHARS`].
pub fn check_instance_tag(tag: &str) -> Result<(), FieldErrors> {
    let n = tag.chars().count();
    let has_key = tag
        .split_once('=')
        .is_some_and(|(k, _)| !k.trim().is_empty());
    if n <= MAX_INSTANCE_TAG_CHARS && has_key {
        return Ok(());
    }
    let (code, span) = if n > MAX_INSTANCE_TAG_CHARS {
        (ErrorCode::TooLong, MAX_INSTANCE_TAG_CHARS..n)
    } else {
        (ErrorCode::InvalidInstanceTag, 0..n)
    };
    Err(one(
        code,
        Field::InstanceTag,
        span,
        format!(
            "Give the instance tag as KEY=VALUE (at most {MAX_INSTANCE_TAG_CHARS} characters), \
             such as cluster=orders."
        ),
    ))
}

/// A maintenance operation's name: 1 to [`MAX_OPERATION_CHARS`] of ASCII letters, digits,
/// `-`, `_` and `.`, and not one of the names backups and restores lock with (an operator
/// taking `scheduled-backup` would look like a run to everyone reading the lock).
pub fn check_operation(text: &str) -> Result<(), FieldErrors> {
    let n = text.chars().count();
    if n == 0 || n > MAX_OPERATION_CHARS {
        let (code, span) = if n == 0 {
            (ErrorCode::Required, 0..0)
        } else {
            (ErrorCode::TooLong, MAX_OPERATION_CHARS..n)
        };
        return Err(one(
            code,
            Field::Operation,
            span,
            format!(
                "Name the operation in 1 to {MAX_OPERATION_CHARS} characters, such as expand-disk."
            ),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let first = text.chars().position(|c| !allowed(c));
    if let Some(first) = first {
        let last = n - text.chars().rev().position(|c| !allowed(c)).unwrap_or(0);
        return Err(one(
            ErrorCode::InvalidValue,
            Field::Operation,
            first..last,
            "An operation name may contain only ASCII letters, digits, -, _ and ., such as \
             expand-disk."
                .to_owned(),
        ));
    }
    if [OPERATION_SCHEDULED, OPERATION_MANUAL, OPERATION_RESTORE].contains(&text) {
        return Err(one(
            ErrorCode::ReservedOperation,
            Field::Operation,
            0..n,
            format!(
                "`{text}` is the name backups and restores use for their own locks; name the maintenance, \
                 such as expand-disk."
            ),
        ));
    }
    Ok(())
}

/// A maintenance lock's TTL: [`MIN_LOCK_TTL_SECONDS`] to `max` seconds.
pub fn check_ttl_seconds(seconds: u64, max: u64) -> Result<(), FieldErrors> {
    if (MIN_LOCK_TTL_SECONDS..=max).contains(&seconds) {
        return Ok(());
    }
    Err(one(
        ErrorCode::OutOfRange,
        Field::TtlSeconds,
        0..0,
        format!("A maintenance lock lasts 1 to {max} seconds; {seconds} is not in that range."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(id: &str, path: &str) -> RegisterClusterRequest {
        RegisterClusterRequest {
            id: id.to_owned(),
            description: "Orders".to_owned(),
            region: None,
            target: ClusterTarget::directory(path),
            server_version: None,
            server_version_tag: None,
            node_count: None,
            source_backup_id: None,
            availability_zone: None,
            volume_type: None,
        }
    }

    fn ebs(volume_ids: &[&str], instance_tag: Option<&str>) -> RegisterClusterRequest {
        RegisterClusterRequest {
            id: "c2".into(),
            description: "EBS".into(),
            region: Some("eu-west-1".into()),
            target: ClusterTarget::AwsEbs {
                volume_ids: volume_ids.iter().map(|v| v.to_string()).collect(),
                instance_tag: instance_tag.map(str::to_owned),
            },
            server_version: None,
            server_version_tag: None,
            node_count: None,
            source_backup_id: None,
            availability_zone: None,
            volume_type: None,
        }
    }

    fn codes(p: &Problems, key: &str) -> Vec<ErrorCode> {
        p.get(key)
            .unwrap_or_else(|| panic!("no problem for {key}: {p}"))
            .iter()
            .map(|e| e.code)
            .collect()
    }

    fn lock(operation: &str, ttl_seconds: Option<u64>) -> LockClusterRequest {
        LockClusterRequest {
            operation: operation.to_owned(),
            ttl_seconds,
        }
    }

    // Moved from the engine (`a_directory_cluster_needs_an_absolute_path_and_gets_region_local`).
    #[test]
    fn a_directory_cluster_needs_an_absolute_path_and_gets_region_local() {
        // GIVEN a valid registration WHEN validated THEN the region is local
        let ok = validate_cluster(&directory("c1", "/var/lib/db")).unwrap();
        assert_eq!(ok.region, "local");
        // GIVEN a relative path and a bad id WHEN validated THEN both fields are reported
        let err = validate_cluster(&directory("a b", "data")).unwrap_err();
        let fields = err.messages();
        assert!(fields.contains_key("id"), "{fields:?}");
        assert!(fields["path"].contains("absolute"), "{fields:?}");
        // AND each carries its code
        assert_eq!(codes(&err, "id"), [ErrorCode::InvalidValue]);
        assert_eq!(codes(&err, "path"), [ErrorCode::NotAbsolute]);
    }

    // Moved from the engine (`an_ebs_cluster_names_volumes_or_a_tag_not_both`).
    #[test]
    fn an_ebs_cluster_names_volumes_or_a_tag_not_both() {
        let mut req = ebs(&["vol-0abc123def4567890"], None);
        assert_eq!(validate_cluster(&req).unwrap().region, "eu-west-1");
        req = ebs(&["vol-0abc123def4567890"], Some("a=b"));
        let err = validate_cluster(&req).unwrap_err();
        assert!(err.messages().contains_key("volumeIds"));
        assert_eq!(codes(&err, "volumeIds"), [ErrorCode::Conflicting]);
        req = ebs(&[], Some("cluster=orders"));
        req.region = None;
        let err = validate_cluster(&req).unwrap_err();
        assert_eq!(err.keys().collect::<Vec<_>>(), ["region"]);
        assert_eq!(codes(&err, "region"), [ErrorCode::Required]);
    }

    #[test]
    fn an_ebs_cluster_without_volumes_or_tag_is_told_to_name_them() {
        let err = validate_cluster(&ebs(&[], None)).unwrap_err();
        assert_eq!(codes(&err, "volumeIds"), [ErrorCode::Required]);
        let message = &err.messages()["volumeIds"];
        assert!(
            message.starts_with("Name the volumes to snapshot"),
            "{message}"
        );
        assert!(!message.contains("not both"), "{message}");
    }

    #[test]
    fn no_message_holds_a_run_of_spaces_from_a_broken_line() {
        let err = validate_cluster(&ebs(&[], None)).unwrap_err();
        let mut texts: Vec<String> = err.messages().into_values().collect();
        for count in [0, MAX_NODE_COUNT + 1] {
            if let Err(e) = check_node_count(count) {
                texts.extend(e.iter().map(|e| e.message.clone()));
            }
        }
        let long = "1".repeat(MAX_SERVER_VERSION_CHARS + 1);
        if let Err(e) = check_server_version(Field::ServerVersion, &long) {
            texts.extend(e.iter().map(|e| e.message.clone()));
        }
        assert!(texts.len() >= 4, "{texts:?}");
        for text in texts {
            assert!(!text.contains("  "), "{text}");
        }
    }

    #[test]
    fn every_bad_volume_id_is_named() {
        // GIVEN one good and two bad ids WHEN validated THEN each bad one has its own error
        let err = validate_cluster(&ebs(
            &["vol-0abc123def4567890", "volume-1", "vol-ABCDEF12"],
            None,
        ))
        .unwrap_err();
        assert_eq!(
            codes(&err, "volumeIds"),
            [ErrorCode::InvalidVolumeId, ErrorCode::InvalidVolumeId]
        );
        assert_eq!(
            err.messages()["volumeIds"],
            "`volume-1` is not an EBS volume id such as vol-0abc123def4567890. `vol-ABCDEF12` \
             is not an EBS volume id such as vol-0abc123def4567890."
        );
        // AND old 8-digit and new 17-digit ids are both volume ids
        assert!(is_volume_id("vol-01234567"));
        assert!(is_volume_id("vol-0123456789abcdef0"));
        assert!(!is_volume_id("vol-0123456"));
        assert!(!is_volume_id("vol-0123456789abcdef01"));
        // AND more than 64 volumes is too many
        let many: Vec<String> = (0..65).map(|i| format!("vol-{i:08x}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let err = validate_cluster(&ebs(&many, None)).unwrap_err();
        assert_eq!(codes(&err, "volumeIds"), [ErrorCode::TooLong]);
    }

    #[test]
    fn an_instance_tag_is_key_equals_value() {
        assert!(validate_cluster(&ebs(&[], Some("cluster=orders"))).is_ok());
        assert!(validate_cluster(&ebs(&[], Some("cluster="))).is_ok());
        for bad in ["=orders", "cluster", " =x"] {
            let err = validate_cluster(&ebs(&[], Some(bad))).unwrap_err();
            assert_eq!(
                codes(&err, "instanceTag"),
                [ErrorCode::InvalidInstanceTag],
                "{bad}"
            );
            assert!(err.messages()["instanceTag"].contains("KEY=VALUE"));
        }
        let long = format!("k={}", "v".repeat(255));
        let err = validate_cluster(&ebs(&[], Some(&long))).unwrap_err();
        let e = &err.get("instanceTag").unwrap()[0];
        assert_eq!((e.code, e.start, e.end), (ErrorCode::TooLong, 256, 257));
    }

    #[test]
    fn a_region_is_local_for_directories_and_an_aws_name_for_ebs() {
        let mut req = directory("c1", "/data");
        req.region = Some("local".into());
        assert!(validate_cluster(&req).is_ok());
        req.region = Some("eu-west-1".into());
        let err = validate_cluster(&req).unwrap_err();
        assert_eq!(codes(&err, "region"), [ErrorCode::InvalidRegion]);
        assert_eq!(
            err.messages()["region"],
            "A directory cluster's region is `local`; leave it out."
        );
        for bad in ["EU-WEST-1", "eu west", &"a".repeat(33)] {
            let mut req = ebs(&["vol-01234567"], None);
            req.region = Some(bad.to_owned());
            let err = validate_cluster(&req).unwrap_err();
            assert_eq!(codes(&err, "region"), [ErrorCode::InvalidRegion], "{bad}");
        }
    }

    #[test]
    fn a_path_is_checked_by_its_text() {
        for (path, code, span) in [
            ("", ErrorCode::Required, 0..0),
            ("  ", ErrorCode::Required, 0..2),
            ("data/db", ErrorCode::NotAbsolute, 0..7),
            ("/data\0x", ErrorCode::InvalidValue, 5..6),
        ] {
            let e = &check_path(path).unwrap_err().0[0];
            assert_eq!((e.code, e.start..e.end), (code, span), "{path:?}");
            assert_eq!(e.field, Field::Path);
        }
        let long = format!("/{}", "x".repeat(4096));
        let e = &check_path(&long).unwrap_err().0[0];
        assert_eq!((e.code, e.start, e.end), (ErrorCode::TooLong, 4096, 4097));
        assert_eq!(e.message, "A path is at most 4096 characters.");
        // AND the message quotes at most 40 characters of what was written
        let e = &check_path(&"x".repeat(50)).unwrap_err().0[0];
        assert_eq!(
            e.message,
            format!(
                "Give the data directory as an absolute path (starting with /); `{}…` is not.",
                "x".repeat(40)
            )
        );
    }

    #[test]
    fn a_description_is_given_and_at_most_256_characters() {
        let mut req = directory("c1", "/data");
        req.description = " ".into();
        let err = validate_cluster(&req).unwrap_err();
        assert_eq!(
            err.messages()["description"],
            "Give a description, such as \"Orders database\"."
        );
        req.description = "é".repeat(256);
        assert!(validate_cluster(&req).is_ok());
        req.description = "é".repeat(257);
        let err = validate_cluster(&req).unwrap_err();
        let e = &err.get("description").unwrap()[0];
        assert_eq!(
            (e.code, e.field, e.start, e.end),
            (ErrorCode::TooLong, Field::ClusterDescription, 256, 257)
        );
        assert_eq!(
            e.message,
            "A description is at most 256 characters; this one has 257."
        );
    }

    // Moved from the engine (`operations_reserved_for_backups_cannot_be_taken_by_hand`).
    #[test]
    fn operations_reserved_for_backups_cannot_be_taken_by_hand() {
        assert!(check_operation("expand-disk").is_ok());
        for bad in [
            "",
            "scheduled-backup",
            "manual-backup",
            "restore",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(check_operation(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_operation("manual-backup").unwrap_err().codes(),
            [ErrorCode::ReservedOperation]
        );
    }

    #[test]
    fn an_operation_name_error_underlines_the_bad_characters() {
        let e = &check_operation("fix disk/now").unwrap_err().0[0];
        assert_eq!((e.code, e.start, e.end), (ErrorCode::InvalidValue, 3, 9));
        let e = &check_operation(&"x".repeat(65)).unwrap_err().0[0];
        assert_eq!((e.code, e.start, e.end), (ErrorCode::TooLong, 64, 65));
        assert_eq!(
            check_operation("").unwrap_err().codes(),
            [ErrorCode::Required]
        );
    }

    #[test]
    fn a_cluster_may_say_its_server_and_nodes_within_bounds() {
        // GIVEN a registration that says its server's version, tag and node count
        let mut req = directory("c1", "/var/lib/db");
        req.server_version = Some("23.10.1".into());
        req.server_version_tag = Some("23.10.1-jammy «lts»".into());
        req.node_count = Some(99);
        assert!(validate_cluster(&req).is_ok());
        // WHEN any is out of bounds THEN that field says what to write
        req.node_count = Some(0);
        req.server_version = Some("v".repeat(65));
        req.server_version_tag = Some("a\tb".into());
        let err = validate_cluster(&req).unwrap_err();
        assert_eq!(codes(&err, "nodeCount"), [ErrorCode::OutOfRange]);
        assert_eq!(codes(&err, "serverVersion"), [ErrorCode::TooLong]);
        assert_eq!(codes(&err, "serverVersionTag"), [ErrorCode::InvalidValue]);
        let e = &check_server_version(Field::ServerVersionTag, "a\tb")
            .unwrap_err()
            .0[0];
        assert_eq!((e.start, e.end), (1, 2));
        assert!(check_node_count(100).unwrap_err().0[0]
            .message
            .contains("such as 3"));
        assert_eq!(
            check_server_version(Field::ServerVersion, " ")
                .unwrap_err()
                .codes(),
            [ErrorCode::Required]
        );
    }

    #[test]
    fn a_lock_lasts_one_second_to_seven_days() {
        assert_eq!(validate_lock(&lock("expand-disk", None)), Ok(None));
        assert_eq!(validate_lock(&lock("expand-disk", Some(1))), Ok(Some(1)));
        assert_eq!(
            validate_lock(&lock("expand-disk", Some(604_800))),
            Ok(Some(604_800))
        );
        for bad in [0, 604_801, u64::MAX] {
            let err = validate_lock(&lock("expand-disk", Some(bad))).unwrap_err();
            assert_eq!(codes(&err, "ttlSeconds"), [ErrorCode::OutOfRange]);
            assert_eq!(
                err.messages()["ttlSeconds"],
                format!(
                    "A maintenance lock lasts 1 to 604800 seconds; {bad} is not in that range."
                )
            );
        }
        // AND a server that allows less says so in its message
        let err = validate_lock_within(&lock("expand-disk", Some(61)), 60).unwrap_err();
        assert!(err.messages()["ttlSeconds"].contains("1 to 60 seconds"));
    }

    #[test]
    fn a_lock_reports_every_problem_at_once() {
        let err = validate_lock(&lock("scheduled-backup", Some(0))).unwrap_err();
        assert_eq!(err.keys().collect::<Vec<_>>(), ["operation", "ttlSeconds"]);
        for key in err.keys() {
            assert!(keys::LOCK_ALL.contains(&key));
        }
    }

    #[test]
    fn a_cluster_reports_every_problem_at_once_by_api_field_name() {
        let req = RegisterClusterRequest {
            id: "".into(),
            description: "".into(),
            region: Some("Mars".into()),
            target: ClusterTarget::AwsEbs {
                volume_ids: vec!["vol-x".into()],
                instance_tag: None,
            },
            server_version: None,
            server_version_tag: None,
            node_count: None,
            source_backup_id: None,
            availability_zone: None,
            volume_type: None,
        };
        let err = validate_cluster(&req).unwrap_err();
        assert_eq!(
            err.keys().collect::<Vec<_>>(),
            ["description", "id", "region", "volumeIds"]
        );
        for key in err.keys() {
            assert!(keys::CLUSTER_ALL.contains(&key));
        }
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["id"][0]["code"], "required");
        assert_eq!(json["id"][0]["field"], "clusterId");
        assert_eq!(json["description"][0]["field"], "clusterDescription");
        assert_eq!(json["region"][0]["code"], "invalid_region");
        assert_eq!(json["volumeIds"][0]["code"], "invalid_volume_id");
    }

    fn restore(body: serde_json::Value) -> RegisterClusterRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn a_restore_may_leave_the_provider_out_and_gets_it_from_its_fields() {
        let dir = restore(serde_json::json!({
            "id": "orders-restored", "description": "Orders, restored",
            "sourceBackupId": "c196ogto0aeqohe3ommq", "path": "/srv/restored"
        }));
        assert_eq!(
            dir.target,
            ClusterTarget::directory("/srv/restored".to_owned())
        );
        assert!(dir.is_restore());
        validate_cluster(&dir).unwrap();
        let ebs = restore(serde_json::json!({
            "id": "orders-restored", "description": "Orders, restored", "region": "eu-west-1",
            "sourceBackupId": "c196ogto0aeqohe3ommq", "availabilityZone": "eu-west-1a",
            "volumeType": "gp3"
        }));
        assert_eq!(ebs.target.provider(), "aws-ebs");
        validate_cluster(&ebs).unwrap();
        // a registration (no sourceBackupId) still needs its provider
        let err = serde_json::from_value::<RegisterClusterRequest>(serde_json::json!({
            "id": "orders", "description": "Orders", "path": "/srv/db"
        }))
        .unwrap_err();
        assert!(err.to_string().contains("provider"), "{err}");
        // and the body round-trips
        let text = serde_json::to_value(&ebs).unwrap();
        assert_eq!(text["sourceBackupId"], "c196ogto0aeqohe3ommq");
        assert_eq!(restore(text), ebs);
    }

    #[test]
    fn a_restore_names_a_backup_and_a_target_of_its_kind() {
        // a directory restore needs a path, and takes no zone
        let mut dir = directory("r1", "");
        dir.source_backup_id = Some("not-an-id".into());
        dir.availability_zone = Some("eu-west-1a".into());
        let err = validate_cluster(&dir).unwrap_err();
        assert_eq!(codes(&err, "sourceBackupId"), [ErrorCode::InvalidValue]);
        assert_eq!(codes(&err, "path"), [ErrorCode::Required]);
        assert_eq!(codes(&err, "availabilityZone"), [ErrorCode::Conflicting]);
        // an ebs restore needs a zone, and its volumes come from the backup
        let mut ebs = ebs(&["vol-0abc123def4567890"], None);
        ebs.source_backup_id = Some("c196ogto0aeqohe3ommq".into());
        ebs.volume_type = Some("floppy".into());
        let err = validate_cluster(&ebs).unwrap_err();
        assert_eq!(codes(&err, "volumeIds"), [ErrorCode::Conflicting]);
        assert_eq!(codes(&err, "availabilityZone"), [ErrorCode::Required]);
        assert_eq!(codes(&err, "volumeType"), [ErrorCode::InvalidValue]);
        ebs.target = ClusterTarget::AwsEbs {
            volume_ids: Vec::new(),
            instance_tag: Some("db=orders".into()),
        };
        ebs.availability_zone = Some("EU west".into());
        let err = validate_cluster(&ebs).unwrap_err();
        assert_eq!(codes(&err, "instanceTag"), [ErrorCode::Conflicting]);
        assert_eq!(codes(&err, "availabilityZone"), [ErrorCode::InvalidValue]);
        // a zone or volume type without a backup to restore is refused, not ignored
        let mut plain = directory("c1", "/srv/db");
        plain.volume_type = Some("gp3".into());
        let err = validate_cluster(&plain).unwrap_err();
        assert_eq!(codes(&err, "volumeType"), [ErrorCode::Conflicting]);
        assert!(err.messages()["volumeType"].contains("sourceBackupId"));
    }

    #[test]
    fn hooks_and_commands_are_checked_by_shape() {
        // GIVEN a directory cluster with a blank pre-hook and a post-hook holding a NUL
        let mut request = directory("c1", "/srv/pg");
        request.target = ClusterTarget::Directory {
            path: "/srv/pg".into(),
            pre_hook: Some("  ".into()),
            post_hook: Some("pg_ctl\0start".into()),
        };
        // WHEN checked THEN each is named with its code
        let p = validate_cluster(&request).unwrap_err();
        assert_eq!(codes(&p, keys::PRE_HOOK), [ErrorCode::Required]);
        assert_eq!(codes(&p, keys::POST_HOOK), [ErrorCode::InvalidValue]);
        // GIVEN a command cluster with an overlong command, a bad user and a zero timeout
        request.target = ClusterTarget::Command {
            path: "/srv/pg".into(),
            backup_command: "x".repeat(MAX_COMMAND_CHARS + 1),
            restore_command: None,
            run_as: Some("-root".into()),
            command_timeout_seconds: Some(0),
        };
        let p = validate_cluster(&request).unwrap_err();
        assert_eq!(codes(&p, keys::BACKUP_COMMAND), [ErrorCode::TooLong]);
        assert_eq!(codes(&p, keys::RUN_AS), [ErrorCode::InvalidValue]);
        assert_eq!(
            codes(&p, keys::COMMAND_TIMEOUT_SECONDS),
            [ErrorCode::OutOfRange]
        );
        // GIVEN a good one THEN it passes, in the local region
        request.target = ClusterTarget::Command {
            path: "/srv/pg".into(),
            backup_command: "pg_basebackup -D \"$BACKUP_DIR\"".into(),
            restore_command: None,
            run_as: Some("postgres".into()),
            command_timeout_seconds: Some(600),
        };
        assert_eq!(validate_cluster(&request).unwrap().region, LOCAL_REGION);
    }
}
