//! The `aws-ebs` provider (SPEC §10): a cluster is a set of EBS volumes, named by id or found
//! by an instance tag `KEY=VALUE` (every EBS volume attached to the instances carrying it).
//!
//! - A cluster named by volume ids is snapshotted volume by volume (`CreateSnapshot` each).
//! - A cluster named by an instance tag is snapshotted instance by instance: one
//!   `CreateSnapshots` per matching instance, which snapshots every EBS volume attached to it
//!   (the boot volume included) at one instant, so the set is crash-consistent across that
//!   instance's volumes ([`InstanceSnapshot`] says what happens with several instances).
//! - Either way a backup is every snapshot those calls started, recorded as one set.
//! - Each snapshot is tagged at creation (`TagSpecifications`, so there is no untagged
//!   moment) with `backup:job-id` (scheduled backups), `backup:cluster-id`,
//!   `backup:backup-id` and `Name` (the backup's description); `CreateSnapshots` is not asked
//!   to copy the volumes' own tags (`CopyTagsFromSource` unset), so both kinds of cluster get
//!   the same tags.
//! - A rendered description can be longer than EC2 takes (a tag value is at most 256
//!   characters, a snapshot's description 255; `{cluster}` alone may be long): the `Name` tag
//!   and the snapshot's description are cut to fit, ending with `…` ([`fit_label`]). The
//!   backup's record keeps the whole description.
//! - The backup's location is `{"region": "…", "snapshotIds": ["snap-…", …]}`. Before the
//!   snapshots exist it is recorded with no ids (the planned location); a backup left so by
//!   a process that stopped half-way is found by its `backup:backup-id` tag when it is
//!   deleted, so its snapshots are never orphaned.
//! - Status: `available` when every snapshot is `completed`; failed when any is `error` or is
//!   missing past [`NOT_FOUND_GRACE`] (EC2 may briefly not show a new snapshot); a throttled
//!   `DescribeSnapshots` is "still creating". On Lambda the backup settles from EC2's
//!   notifications (`createSnapshot` for one snapshot, `createSnapshots` listing an
//!   instance's; the handle's keys are the snapshot ids) or the sweeper, which fails it past
//!   `SNAPSHOT_TIMEOUT` (SPEC §16).
//! - EC2's concurrent-snapshot limits fail the creation `provider_busy`.
//! - A creation that fails half-way (a volume's `CreateSnapshot`, or a later instance's
//!   `CreateSnapshots`) deletes the snapshots it already started, so a failed backup leaves
//!   nothing behind.
//! - Pruning deletes every snapshot; one already gone (`InvalidSnapshot.NotFound`) counts as
//!   deleted. EC2 reports errors by code only (it has no modelled exceptions), so the code
//!   is compared, never the message.
//! - Each cluster names its region; the client for another region than the configured one
//!   is made from the same shared configuration (endpoint and credentials included).

use std::borrow::Cow;

use async_trait::async_trait;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    Filter, Instance, InstanceSpecification, InstanceStateName, ResourceType, SnapshotState, Tag,
    TagSpecification,
};
use aws_sdk_ec2::Client;
use backup_core::api::{ClusterTarget, VerifyProblem};
use backup_engine::ports::BackupProvider;
use backup_engine::{
    BackupHandle, BackupRequest, ClusterRecord, Creation, ProviderError, ProviderErrorCode,
    ProviderStatus, Restoration, RestoreHandle, RestoreRequest, RestoreStatus, TargetProblem,
};
use serde::{Deserialize, Serialize};

use crate::failure::FailedCall;

mod restore;
pub use restore::{
    RestoreError, SnapshotProblem, VolumeSet, VolumesRequest, VolumesState, TAG_RESTORED_FROM,
    UNKNOWN_VOLUME_TYPE, UNKNOWN_ZONE, VOLUME_NOTIFICATION,
};

pub const PROVIDER: &str = "aws-ebs";
pub const TAG_JOB: &str = "backup:job-id";
pub const TAG_CLUSTER: &str = "backup:cluster-id";
pub const TAG_BACKUP: &str = "backup:backup-id";
/// The `detail-type` of EC2's events at the end of a snapshot (SPEC §16), which settle
/// backups.
pub const SNAPSHOT_NOTIFICATION: &str = "EBS Snapshot Notification";
/// The `detail-type` of EC2's event at the end of a `CreateSnapshots` (a cluster found by
/// its instance tag): one event for all of the instance's snapshots, with its own type.
pub const MULTI_VOLUME_SNAPSHOT_NOTIFICATION: &str = "EBS Multi-Volume Snapshots Completion Status";

/// The longest tag value EC2 accepts (the `Name` tag), in characters.
pub const MAX_TAG_VALUE: usize = 256;
/// The longest snapshot description EC2 accepts, in characters.
pub const MAX_DESCRIPTION: usize = 255;
/// What ends a label [`fit_label`] cut.
const ELLIPSIS: char = '…';

/// `label` as EC2 takes it where it allows at most `max` characters: unchanged when it fits,
/// otherwise cut at a character boundary and ended with `…`.
///
/// EC2 documents its limits in characters, but not every check counts them the same way
/// (some layers count UTF-8 bytes): the result is held to `max` UTF-8 bytes, which is also at
/// most `max` characters, so it fits either way. A long non-ASCII label is therefore cut a
/// little shorter than strictly needed; nothing is lost, as the backup's record keeps it all.
pub fn fit_label(label: &str, max: usize) -> Cow<'_, str> {
    if label.len() <= max {
        return Cow::Borrowed(label);
    }
    let mut end = max.saturating_sub(ELLIPSIS.len_utf8());
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{ELLIPSIS}", label[..end].trim_end()))
}

/// Where a backup's snapshots are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSet {
    pub region: String,
    pub snapshot_ids: Vec<String>,
    /// When the snapshots were started (absent in locations recorded before it was kept):
    /// a snapshot EC2 does not show yet counts as still being made for [`NOT_FOUND_GRACE`]
    /// after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
}

/// How long after `CreateSnapshot` (or `CreateSnapshots`) a snapshot EC2 answers `InvalidSnapshot.NotFound` for
/// counts as still being made: EC2 is eventually consistent, and a new snapshot may briefly
/// be invisible to `DescribeSnapshots`. After it, a missing snapshot fails the backup.
pub const NOT_FOUND_GRACE: chrono::Duration = chrono::Duration::minutes(10);

/// EC2's error codes that mean "too many snapshots right now": the run fails
/// `provider_busy` and a later run succeeds.
const BUSY: &[&str] = &[
    "ConcurrentSnapshotLimitExceeded",
    "SnapshotCreationPerVolumeRateExceeded",
];

/// EC2's error codes of a throttled call: the question is asked again later.
const THROTTLED: &[&str] = &["RequestLimitExceeded", "Throttling", "ThrottlingException"];

#[derive(Clone, Debug)]
pub struct EbsProvider {
    config: aws_config::SdkConfig,
}

impl EbsProvider {
    pub fn new(config: &aws_config::SdkConfig) -> EbsProvider {
        EbsProvider {
            config: config.clone(),
        }
    }

    fn client(&self, region: &str) -> Client {
        let same = self.config.region().is_some_and(|r| r.as_ref() == region);
        if same || region.is_empty() || region == "local" {
            Client::new(&self.config)
        } else {
            let conf = aws_sdk_ec2::config::Builder::from(&self.config)
                .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
                .build();
            Client::from_conf(conf)
        }
    }

    /// What a backup of the cluster snapshots: its volumes one by one, or, for an instance
    /// tag, each instance carrying it whole.
    async fn sources(
        &self,
        client: &Client,
        region: &str,
        volume_ids: &[String],
        instance_tag: Option<&str>,
    ) -> Result<Vec<Source>, ProviderError> {
        if !volume_ids.is_empty() {
            return Ok(volume_ids.iter().cloned().map(Source::Volume).collect());
        }
        let Some(tag) = instance_tag else {
            return Err(ProviderError::new(
                "the cluster names neither volume ids nor an instance tag",
            ));
        };
        let Some((key, value)) = tag.split_once('=') else {
            return Err(ProviderError::new(format!(
                "the instance tag `{tag}` is not KEY=VALUE"
            )));
        };
        let reservations = client
            .describe_instances()
            .filters(tag_filter(key, value))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| failed("DescribeInstances", e))?;
        let instances: Vec<Instance> = reservations
            .iter()
            .flat_map(|r| r.instances())
            .cloned()
            .collect();
        if instances.is_empty() {
            return Err(ProviderError::new(format!(
                "no instance in {region} is tagged {tag}: tag the cluster's instances so, or \
                 register the cluster by its volume ids"
            )));
        }
        let plan = instance_snapshots(&instances);
        if plan.is_empty() {
            return Err(ProviderError::new(format!(
                "none of the {} instance(s) tagged {tag} in {region} has an EBS volume to \
                 snapshot (shutting-down and terminated instances do not count)",
                instances.len()
            )));
        }
        Ok(plan.into_iter().map(Source::Instance).collect())
    }

    /// Starts the snapshots of one source, adding their ids to `started` as EC2 answers
    /// (so that a failure after some started can undo them), and the sizes of their
    /// volumes in GiB (EC2's `VolumeSize`) to `gib`.
    async fn start(
        &self,
        client: &Client,
        source: &Source,
        request: &BackupRequest,
        tags: &TagSpecification,
        started: &mut Vec<String>,
        gib: &mut u64,
    ) -> Result<(), ProviderError> {
        let description = fit_label(&request.description, MAX_DESCRIPTION);
        match source {
            Source::Volume(volume) => {
                let out = client
                    .create_snapshot()
                    .volume_id(volume)
                    .description(description)
                    .tag_specifications(tags.clone())
                    .send()
                    .await
                    .map_err(|e| creation_failed(&format!("CreateSnapshot of {volume}"), e))?;
                *gib += volume_gib(out.volume_size);
                match out.snapshot_id {
                    Some(id) => started.push(id),
                    None => {
                        return Err(ProviderError::new(format!(
                            "EC2 CreateSnapshot of {volume} answered no snapshot id"
                        )))
                    }
                }
            }
            Source::Instance(instance) => {
                let spec = InstanceSpecification::builder()
                    .instance_id(&instance.instance_id)
                    .exclude_boot_volume(false)
                    .set_exclude_data_volume_ids(
                        (!instance.exclude_data_volume_ids.is_empty())
                            .then(|| instance.exclude_data_volume_ids.clone()),
                    )
                    .build();
                // `CopyTagsFromSource` is left unset: the snapshots carry our tags only, as
                // those of a cluster named by volume ids do.
                let out = client
                    .create_snapshots()
                    .instance_specification(spec)
                    .description(description)
                    .tag_specifications(tags.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        creation_failed(
                            &format!("CreateSnapshots of instance {}", instance.instance_id),
                            e,
                        )
                    })?;
                let before = started.len();
                let mut unnamed = 0;
                for snapshot in out.snapshots() {
                    *gib += volume_gib(snapshot.volume_size());
                    match snapshot.snapshot_id() {
                        Some(id) => started.push(id.to_owned()),
                        None => unnamed += 1,
                    }
                }
                let answered = if unnamed > 0 {
                    format!("{unnamed} snapshot(s) without an id")
                } else if started.len() == before {
                    "no snapshot".to_owned()
                } else {
                    return Ok(());
                };
                return Err(ProviderError::new(format!(
                    "EC2 CreateSnapshots of instance {} answered {answered}",
                    instance.instance_id
                )));
            }
        }
        Ok(())
    }

    async fn delete_snapshots(&self, client: &Client, ids: &[String]) -> Result<(), ProviderError> {
        for id in ids {
            match client.delete_snapshot().snapshot_id(id).send().await {
                Ok(_) => {}
                Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => {}
                Err(e) => return Err(failed(&format!("DeleteSnapshot {id}"), e)),
            }
        }
        Ok(())
    }

    /// The ids of the snapshots of `set`, or, for a planned location that has none, of the
    /// snapshots tagged with the backup's id.
    async fn snapshot_ids(
        &self,
        client: &Client,
        set: &SnapshotSet,
        backup_id: &str,
    ) -> Result<Vec<String>, ProviderError> {
        if !set.snapshot_ids.is_empty() {
            return Ok(set.snapshot_ids.clone());
        }
        let snapshots = client
            .describe_snapshots()
            .owner_ids("self")
            .filters(tag_filter(TAG_BACKUP, backup_id))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| failed("DescribeSnapshots", e))?;
        Ok(snapshots
            .iter()
            .filter_map(|s| s.snapshot_id().map(str::to_owned))
            .collect())
    }
}

fn failed(call: &str, e: impl FailedCall) -> ProviderError {
    let failure = e.describe("EC2", call);
    ProviderError {
        source: Some(failure.source),
        ..ProviderError::new(failure.message)
    }
}

/// A creation call's failure; EC2's concurrent-snapshot limits make it `provider_busy`.
fn creation_failed(call: &str, e: impl FailedCall + ProvideErrorMetadata) -> ProviderError {
    let busy = e.code().is_some_and(|code| BUSY.contains(&code));
    let mut error = failed(call, e);
    if busy {
        error.code = ProviderErrorCode::ProviderBusy;
        error.message = format!(
            "EC2 refused to start more snapshots now ({}); the next run tries again",
            error.message
        );
    }
    error
}

/// What one creation call of a backup snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// One volume of a cluster named by volume ids (`CreateSnapshot`).
    Volume(String),
    /// Every EBS volume of one instance carrying the cluster's tag (`CreateSnapshots`).
    Instance(InstanceSnapshot),
}

/// One `CreateSnapshots` of a cluster named by an instance tag: every EBS volume attached to
/// the instance, the boot volume included, snapshotted at one instant.
///
/// With several instances carrying the tag, each gets its own `CreateSnapshots`, one after
/// the other, and every snapshot of every instance is recorded as one backup: the set is
/// crash-consistent within each instance, not across instances (EC2 has no call for that).
/// If a later instance's call fails, the snapshots the earlier ones started are deleted and
/// the backup fails, as a failed volume does for a cluster named by volume ids.
///
/// Instances that are `shutting-down` or `terminated` (EC2 lists them for a while after)
/// are skipped, as are instances with no EBS volume: `CreateSnapshots` refuses them. A data
/// volume attached to several matching instances (EBS Multi-Attach) is snapshotted once,
/// with the first instance: the later ones name it in `ExcludeDataVolumeIds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSnapshot {
    pub instance_id: String,
    /// Data volumes of the instance an earlier instance's snapshots already cover.
    pub exclude_data_volume_ids: Vec<String>,
}

/// The `CreateSnapshots` calls that back up `instances` (in `DescribeInstances`' order):
/// see [`InstanceSnapshot`]. Empty when no instance has an EBS volume to snapshot.
pub fn instance_snapshots(instances: &[Instance]) -> Vec<InstanceSnapshot> {
    let mut covered: Vec<&str> = Vec::new();
    let mut plan: Vec<InstanceSnapshot> = Vec::new();
    for instance in instances {
        let Some(id) = instance.instance_id() else {
            continue;
        };
        let gone = matches!(
            instance.state().and_then(|s| s.name()),
            Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
        );
        if gone || plan.iter().any(|p| p.instance_id == id) {
            continue;
        }
        let root = instance.root_device_name();
        let mut exclude = Vec::new();
        let mut new = Vec::new();
        for mapping in instance.block_device_mappings() {
            let Some(volume) = mapping.ebs().and_then(|e| e.volume_id()) else {
                continue;
            };
            let boot = root.is_some() && mapping.device_name() == root;
            if !boot && covered.contains(&volume) {
                exclude.push(volume.to_owned());
            } else {
                new.push(volume);
            }
        }
        if new.is_empty() {
            continue;
        }
        covered.extend(new);
        plan.push(InstanceSnapshot {
            instance_id: id.to_owned(),
            exclude_data_volume_ids: exclude,
        });
    }
    plan
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// What EC2 calls "resources tagged `key` = `value`".
fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

/// A snapshot EC2 does not show: still being made within [`NOT_FOUND_GRACE`] of its start
/// (EC2 is eventually consistent), gone after it.
fn missing(set: &SnapshotSet, what: &str) -> ProviderStatus {
    let now = chrono::Utc::now().timestamp_millis();
    let fresh = set
        .started_ms
        .is_some_and(|started| now - started < NOT_FOUND_GRACE.num_milliseconds());
    if fresh {
        ProviderStatus::Creating
    } else {
        ProviderStatus::Failed(format!("{what} no longer exists"))
    }
}

fn parse_location(handle: &BackupHandle) -> Result<SnapshotSet, ProviderError> {
    serde_json::from_str(&handle.location).map_err(|e| {
        ProviderError::new(format!(
            "backup {} has an unreadable snapshot location ({e})",
            handle.backup_id
        ))
    })
}

#[async_trait]
impl BackupProvider for EbsProvider {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    fn planned_location(&self, request: &BackupRequest) -> String {
        let planned = SnapshotSet {
            region: request.cluster.region.clone(),
            snapshot_ids: Vec::new(),
            started_ms: None,
        };
        serde_json::to_string(&planned).unwrap_or_default()
    }

    /// Starts one snapshot per volume (`CreateSnapshot`), or, for a cluster named by an
    /// instance tag, one crash-consistent set per instance (`CreateSnapshots`, see
    /// [`InstanceSnapshot`]): the backup is [`Creation::Pending`] until every snapshot is
    /// `completed` ([`status`](BackupProvider::status)).
    async fn create(&self, request: &BackupRequest) -> Result<Creation, ProviderError> {
        let ClusterTarget::AwsEbs {
            volume_ids,
            instance_tag,
        } = &request.cluster.target
        else {
            return Err(ProviderError::new(format!(
                "cluster {} is not an aws-ebs cluster",
                request.cluster.id
            )));
        };
        let region = request.cluster.region.clone();
        let client = self.client(&region);
        let sources = self
            .sources(&client, &region, volume_ids, instance_tag.as_deref())
            .await?;
        // Each answered call is progress: the engine renews the lease while work moves and
        // gives a start that moves for a minute up as stalled (SPEC §5), and an instance
        // with many volumes, or a throttled account, starts its snapshots for longer.
        request.progress.tick();
        let mut tags = vec![
            tag(TAG_CLUSTER, &request.cluster.id),
            tag(TAG_BACKUP, &request.backup_id),
            tag("Name", &fit_label(&request.description, MAX_TAG_VALUE)),
        ];
        if let Some(job) = &request.job_id {
            tags.push(tag(TAG_JOB, job));
        }
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Snapshot)
            .set_tags(Some(tags))
            .build();
        let mut snapshot_ids = Vec::new();
        let mut gib = 0;
        let started = chrono::Utc::now();
        for source in &sources {
            let result = self
                .start(&client, source, request, &spec, &mut snapshot_ids, &mut gib)
                .await;
            if let Err(error) = result {
                if let Err(undo) = self.delete_snapshots(&client, &snapshot_ids).await {
                    tracing::warn!(error = %undo, "could not delete the snapshots of a failed backup");
                }
                return Err(error);
            }
            request.progress.tick();
        }
        let location = serde_json::to_string(&SnapshotSet {
            region,
            snapshot_ids: snapshot_ids.clone(),
            started_ms: Some(started.timestamp_millis()),
        })
        .map_err(|e| ProviderError::new(format!("cannot record the snapshot ids: {e}")))?;
        let mut handle = BackupHandle::new(request.backup_id.clone(), location);
        // EC2's notifications name each snapshot: they settle the backup (SPEC §16).
        handle.keys = snapshot_ids;
        // The backup's size is its volumes' (a snapshot stores at most that much).
        handle.size_bytes = Some(gib << 30);
        Ok(Creation::Pending(handle))
    }

    async fn status(&self, handle: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        let set = parse_location(handle)?;
        let client = self.client(&set.region);
        let out = match client
            .describe_snapshots()
            .set_snapshot_ids(Some(set.snapshot_ids.clone()))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => {
                return Ok(missing(&set, "one of its snapshots"))
            }
            Err(e) if e.code().is_some_and(|code| THROTTLED.contains(&code)) => {
                tracing::info!(backup_id = %handle.backup_id, "DescribeSnapshots was throttled; asking again later");
                return Ok(ProviderStatus::Creating);
            }
            Err(e) => return Err(failed("DescribeSnapshots", e)),
        };
        let snapshots = out.snapshots();
        let mut all_completed = true;
        for id in &set.snapshot_ids {
            let Some(snapshot) = snapshots
                .iter()
                .find(|s| s.snapshot_id() == Some(id.as_str()))
            else {
                match missing(&set, &format!("snapshot {id}")) {
                    ProviderStatus::Creating => {
                        all_completed = false;
                        continue;
                    }
                    failed => return Ok(failed),
                }
            };
            match snapshot.state() {
                Some(SnapshotState::Completed) => {}
                Some(SnapshotState::Error) => {
                    return Ok(ProviderStatus::Failed(format!(
                        "snapshot {id} failed: {}",
                        snapshot.state_message().unwrap_or("no reason given")
                    )))
                }
                _ => all_completed = false,
            }
        }
        Ok(if all_completed {
            ProviderStatus::Available
        } else {
            ProviderStatus::Creating
        })
    }

    async fn delete(&self, handle: &BackupHandle) -> Result<(), ProviderError> {
        let set = parse_location(handle)?;
        let client = self.client(&set.region);
        let ids = self.snapshot_ids(&client, &set, &handle.backup_id).await?;
        self.delete_snapshots(&client, &ids).await
    }

    /// Every snapshot exists, is `completed` and carries the backup's tags; each problem is
    /// named by its snapshot id ([`EbsProvider::check_snapshots`]).
    async fn verify(&self, handle: &BackupHandle) -> Result<Vec<VerifyProblem>, ProviderError> {
        Ok(self
            .check_snapshots(handle)
            .await?
            .into_iter()
            .map(|p| VerifyProblem {
                path: p.snapshot_id,
                problem: p.problem,
            })
            .collect())
    }

    /// An EBS restore's zone must exist in the source's region (`DescribeAvailabilityZones`),
    /// so an unknown one answers 400 on `availabilityZone` before anything is recorded.
    /// When EC2 cannot be asked, the target passes here and [`restore`](Self::restore),
    /// which checks the zone again before it makes anything, fails instead.
    async fn check_restore_target(
        &self,
        source: &ClusterRecord,
        target: &ClusterTarget,
        zone: Option<&str>,
    ) -> Result<ClusterTarget, TargetProblem> {
        if let Some(zone) = zone {
            match self.check_zone(&source.region, zone).await {
                Err(restore::RestoreError::Refused(problem)) => return Err(problem),
                Err(restore::RestoreError::Provider(error)) => {
                    tracing::warn!(%error, "could not check a restore's availability zone before starting it");
                }
                Ok(()) => {}
            }
        }
        Ok(target.clone())
    }

    /// One volume per snapshot in the request's zone ([`EbsProvider::create_volumes`]),
    /// [`Restoration::Pending`] until every volume is `available`; the notifications name
    /// the volumes. A refused zone or volume type answers the refusal's sentence, having
    /// made nothing.
    async fn restore(&self, request: &RestoreRequest) -> Result<Restoration, ProviderError> {
        let Some(zone) = request.availability_zone.as_deref() else {
            return Err(ProviderError::new(
                "an aws-ebs restore needs availabilityZone, the zone to make its volumes in",
            ));
        };
        let volumes = VolumesRequest {
            cluster_id: &request.cluster_id,
            name: &request.cluster_id,
            availability_zone: zone,
            volume_type: request.volume_type.as_deref(),
        };
        let set = match self.create_volumes(&request.backup, &volumes).await {
            Ok(set) => set,
            Err(RestoreError::Refused(problem)) => return Err(ProviderError::new(problem.message)),
            Err(RestoreError::Provider(error)) => return Err(error),
        };
        Ok(Restoration::Pending(RestoreHandle {
            cluster_id: request.cluster_id.clone(),
            location: set.to_location(),
            keys: set.volume_ids,
        }))
    }

    /// `Available` with the new volume ids once every volume is.
    async fn restore_status(&self, handle: &RestoreHandle) -> Result<RestoreStatus, ProviderError> {
        let set = VolumeSet::parse(&handle.location)?;
        Ok(match self.volumes_state(&set).await? {
            VolumesState::Creating => RestoreStatus::Creating,
            VolumesState::Failed(reason) => RestoreStatus::Failed(reason),
            VolumesState::Available => RestoreStatus::Available(ClusterTarget::AwsEbs {
                volume_ids: set.volume_ids,
                instance_tag: None,
            }),
        })
    }

    /// Deletes the restore's volumes; those already gone count as deleted.
    async fn discard_restore(&self, handle: &RestoreHandle) -> Result<(), ProviderError> {
        self.delete_volumes(&VolumeSet::parse(&handle.location)?)
            .await
    }
}

/// A snapshot's `VolumeSize` in GiB; 0 when EC2 did not say (or said nonsense).
fn volume_gib(size: Option<i32>) -> u64 {
    size.and_then(|gib| u64::try_from(gib).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cut's length in characters and bytes, and whether it ends with the ellipsis.
    fn shape(label: &str, max: usize) -> (usize, usize, bool) {
        let fitted = fit_label(label, max);
        (
            fitted.chars().count(),
            fitted.len(),
            fitted.ends_with(ELLIPSIS),
        )
    }

    #[test]
    fn a_label_that_fits_is_kept_whole() {
        for label in ["", "Orders #3", &"a".repeat(MAX_DESCRIPTION)] {
            assert!(matches!(fit_label(label, MAX_DESCRIPTION), Cow::Borrowed(l) if l == label));
        }
    }

    #[test]
    fn a_long_ascii_label_is_cut_to_the_limit_with_an_ellipsis() {
        let label = "x".repeat(400);
        // 252 bytes of text and the 3 of `…`: 255 bytes, 253 characters
        assert_eq!(shape(&label, MAX_DESCRIPTION), (253, 255, true));
        assert_eq!(shape(&label, MAX_TAG_VALUE), (254, 256, true));
        assert!(fit_label(&label, MAX_TAG_VALUE).starts_with(&"x".repeat(253)));
    }

    #[test]
    fn a_non_ascii_label_is_cut_on_a_character_boundary_within_bytes_and_characters() {
        // 2-, 3- and 4-byte characters, and a label under the limit in characters but over
        // it in bytes
        for label in [
            "é".repeat(200),
            "日本".repeat(100),
            "🦀".repeat(90),
            format!("{}{}", "a".repeat(250), "é".repeat(10)),
        ] {
            for max in [MAX_DESCRIPTION, MAX_TAG_VALUE] {
                let (chars, bytes, ellipsis) = shape(&label, max);
                assert!(bytes <= max && chars <= max && ellipsis, "{label}: {max}");
                // as much as fits: one more character would not
                assert!(bytes + 4 > max, "{label}: {bytes} of {max}");
                let kept = fit_label(&label, max);
                assert!(label.starts_with(kept.trim_end_matches(ELLIPSIS)));
            }
        }
    }

    #[test]
    fn no_space_is_left_before_the_ellipsis() {
        // GIVEN a cut that falls right after a space
        let label = format!("{} {}", "a".repeat(251), "b".repeat(100));
        let fitted = fit_label(&label, MAX_DESCRIPTION);
        assert_eq!(fitted, format!("{}…", "a".repeat(251)));
    }

    fn instance(id: &str, state: InstanceStateName, volumes: &[(&str, &str)]) -> Instance {
        use aws_sdk_ec2::types::{
            EbsInstanceBlockDevice, InstanceBlockDeviceMapping, InstanceState,
        };
        let mut builder = Instance::builder()
            .instance_id(id)
            .root_device_name("/dev/xvda")
            .state(InstanceState::builder().name(state).build());
        for (device, volume) in volumes {
            builder = builder.block_device_mappings(
                InstanceBlockDeviceMapping::builder()
                    .device_name(*device)
                    .ebs(EbsInstanceBlockDevice::builder().volume_id(*volume).build())
                    .build(),
            );
        }
        builder.build()
    }

    fn shot(id: &str, exclude: &[&str]) -> InstanceSnapshot {
        InstanceSnapshot {
            instance_id: id.into(),
            exclude_data_volume_ids: exclude.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn each_instance_carrying_the_tag_gets_one_create_snapshots_in_order() {
        // GIVEN two running instances, one stopped, each with a boot volume and a data volume
        use InstanceStateName::*;
        let instances = [
            instance(
                "i-1",
                Running,
                &[("/dev/xvda", "vol-1a"), ("/dev/sdf", "vol-1b")],
            ),
            instance("i-2", Stopped, &[("/dev/xvda", "vol-2a")]),
            instance(
                "i-3",
                Running,
                &[("/dev/xvda", "vol-3a"), ("/dev/sdf", "vol-3b")],
            ),
        ];
        // THEN each is snapshotted whole, nothing excluded
        assert_eq!(
            instance_snapshots(&instances),
            [shot("i-1", &[]), shot("i-2", &[]), shot("i-3", &[])]
        );
    }

    #[test]
    fn instances_ending_or_without_an_ebs_volume_are_skipped() {
        use InstanceStateName::*;
        let instances = [
            instance("i-gone", Terminated, &[]),
            instance("i-ending", ShuttingDown, &[("/dev/xvda", "vol-e")]),
            // an instance-store instance: nothing for CreateSnapshots
            instance("i-store", Running, &[]),
            instance("i-1", Pending, &[("/dev/xvda", "vol-1")]),
        ];
        assert_eq!(instance_snapshots(&instances), [shot("i-1", &[])]);
        assert!(instance_snapshots(&instances[..3]).is_empty());
        assert!(instance_snapshots(&[]).is_empty());
    }

    #[test]
    fn a_multi_attached_data_volume_is_snapshotted_once_with_its_first_instance() {
        // GIVEN a data volume attached to two instances carrying the tag (EBS Multi-Attach)
        use InstanceStateName::*;
        let instances = [
            instance(
                "i-1",
                Running,
                &[("/dev/xvda", "vol-1"), ("/dev/sdf", "vol-shared")],
            ),
            instance(
                "i-2",
                Running,
                &[("/dev/xvda", "vol-2"), ("/dev/sdf", "vol-shared")],
            ),
            // listed twice (two reservations cannot, but the plan does not count on it)
            instance(
                "i-1",
                Running,
                &[("/dev/xvda", "vol-1"), ("/dev/sdf", "vol-shared")],
            ),
        ];
        // THEN the second instance excludes it, and keeps its own boot volume
        assert_eq!(
            instance_snapshots(&instances),
            [shot("i-1", &[]), shot("i-2", &["vol-shared"])]
        );
    }
}
