//! Verify and restore for the `aws-ebs` provider (SPEC §14), the EC2 side.
//!
//! - **Verify** reads the backup's snapshots (`DescribeSnapshots` filtered by their ids, so a
//!   snapshot that is gone is named instead of failing the whole call) and reports each one
//!   that is missing, not `completed`, or does not carry the tags the provider wrote
//!   (`backup:backup-id` = the backup's id, `backup:cluster-id`). It changes nothing.
//! - **Restore** makes a new cluster: the zone is checked first (`DescribeAvailabilityZones`:
//!   an unknown zone is refused on the field `availabilityZone` before anything is made), then
//!   one `CreateVolume` per snapshot, in that zone, of the optional volume type, tagged at
//!   creation with `backup:restored-from` (the backup's id), `backup:cluster-id` (the new
//!   cluster's) and `Name`. A volume made from a snapshot encrypted with a customer key is
//!   encrypted with that key: EC2 uses it on the caller's behalf, which needs
//!   `kms:CreateGrant`, `kms:Decrypt` and `kms:DescribeKey` through EC2. A `CreateVolume` that
//!   fails half-way deletes the volumes already made before the error is answered (waiting,
//!   for up to two minutes, for those EC2 is still making: it refuses to delete them until
//!   they are `available`).
//! - The volumes take a while (EC2 copies the snapshot's blocks lazily, but the volume is
//!   `creating` first): the restore settles later, from EC2's `EBS Volume Notification`
//!   (`createVolume`) or the sweeper, through [`EbsProvider::volumes_state`]. A volume in
//!   `error`, or gone past [`NOT_FOUND_GRACE`], fails it; the volumes are then deleted
//!   ([`EbsProvider::delete_volumes`]: one already gone counts as deleted).

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    AvailabilityZoneState, Filter, ResourceType, Snapshot, SnapshotState, TagSpecification, Volume,
    VolumeState, VolumeType,
};
use aws_sdk_ec2::Client;
use backup_engine::{BackupHandle, ProviderError, TargetProblem};
use serde::{Deserialize, Serialize};

use super::{
    failed, fit_label, parse_location, tag, EbsProvider, MAX_TAG_VALUE, NOT_FOUND_GRACE,
    TAG_BACKUP, TAG_CLUSTER, THROTTLED,
};

/// The tag every restored volume carries: the id of the backup it was made from. The roles
/// may delete only volumes carrying it.
pub const TAG_RESTORED_FROM: &str = "backup:restored-from";
/// The `detail-type` of EC2's events at the end of a volume's creation, which settle
/// restores.
pub const VOLUME_NOTIFICATION: &str = "EBS Volume Notification";
/// The code of an availability zone the region does not have (or that is not available).
pub const UNKNOWN_ZONE: &str = "unknown_availability_zone";
/// The code of a volume type EC2 does not have.
pub const UNKNOWN_VOLUME_TYPE: &str = "unknown_volume_type";

/// How many values EC2 takes in one filter: the ids are asked in chunks of it.
const FILTER_VALUES: usize = 200;

/// Where a restored cluster's volumes are: a restore's location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSet {
    pub region: String,
    /// The backup the volumes were made from.
    pub backup_id: String,
    /// One per snapshot of the backup, in the backup's order.
    pub volume_ids: Vec<String>,
    /// When the first `CreateVolume` was sent: a volume EC2 does not show yet counts as
    /// still being made for [`NOT_FOUND_GRACE`] after it.
    pub started_ms: i64,
}

impl VolumeSet {
    /// The set a restore's location records.
    pub fn parse(location: &str) -> Result<VolumeSet, ProviderError> {
        serde_json::from_str(location).map_err(|e| {
            ProviderError::new(format!("a restore has an unreadable volume location ({e})"))
        })
    }

    pub fn to_location(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What is wrong with one snapshot of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotProblem {
    pub snapshot_id: String,
    pub problem: String,
}

/// What a restore asks of EC2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumesRequest<'a> {
    /// The new cluster's id (its volumes' `backup:cluster-id`).
    pub cluster_id: &'a str,
    /// The new cluster's description (its volumes' `Name`).
    pub name: &'a str,
    pub availability_zone: &'a str,
    /// EC2's name (`gp3`, `io2`, …); `None` lets EC2 choose (`gp2`).
    pub volume_type: Option<&'a str>,
}

/// Why a restore made nothing.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The request names a zone or volume type EC2 does not have: a bad request (400 on the
    /// field), checked before anything is made.
    #[error(transparent)]
    Refused(TargetProblem),
    /// EC2 failed; whatever was made was deleted (or the message says what was left).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// How a restore's volumes stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumesState {
    /// Some are still `creating` (or not visible yet).
    Creating,
    /// Every one is `available` (or already attached: `in-use`).
    Available,
    /// One failed or vanished; the sentence says which and why.
    Failed(String),
}

impl EbsProvider {
    /// The problems of the backup's snapshots: each one missing, not `completed`, or without
    /// the tags the provider wrote. Empty when the backup is whole. Changes nothing.
    pub async fn check_snapshots(
        &self,
        handle: &BackupHandle,
    ) -> Result<Vec<SnapshotProblem>, ProviderError> {
        let set = parse_location(handle)?;
        if set.snapshot_ids.is_empty() {
            return Ok(vec![SnapshotProblem {
                snapshot_id: handle.backup_id.clone(),
                problem: "the backup records no snapshot (its process stopped before it \
                          started them)"
                    .to_owned(),
            }]);
        }
        let client = self.client(&set.region);
        let mut found: Vec<Snapshot> = Vec::new();
        for ids in set.snapshot_ids.chunks(FILTER_VALUES) {
            // The account's own snapshots only: without an owner EC2 looks through every
            // public snapshot too before the filter narrows them to ours.
            let page: Vec<Snapshot> = client
                .describe_snapshots()
                .owner_ids("self")
                .filters(ids_filter("snapshot-id", ids))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| failed("DescribeSnapshots", e))?;
            found.extend(page);
        }
        let mut problems = Vec::new();
        for id in &set.snapshot_ids {
            let mut problem = |problem: String| {
                problems.push(SnapshotProblem {
                    snapshot_id: id.clone(),
                    problem,
                })
            };
            let Some(snapshot) = found.iter().find(|s| s.snapshot_id() == Some(id.as_str())) else {
                problem("the snapshot does not exist (it was deleted outside the product)".into());
                continue;
            };
            match snapshot.state() {
                Some(SnapshotState::Completed) => {}
                Some(SnapshotState::Error) => problem(format!(
                    "the snapshot failed: {}",
                    snapshot.state_message().unwrap_or("EC2 gives no reason")
                )),
                other => problem(format!(
                    "the snapshot is {}, not completed",
                    other.map_or("in no state", |s| s.as_str())
                )),
            }
            match snapshot_tag(snapshot, TAG_BACKUP) {
                Some(value) if value == handle.backup_id => {}
                Some(value) => problem(format!(
                    "its tag {TAG_BACKUP} is `{value}`, not this backup's id `{}`",
                    handle.backup_id
                )),
                None => problem(format!("it carries no tag {TAG_BACKUP}")),
            }
            if snapshot_tag(snapshot, TAG_CLUSTER).is_none_or(str::is_empty) {
                problem(format!("it carries no tag {TAG_CLUSTER}"));
            }
        }
        Ok(problems)
    }

    /// Refuses a zone the region does not have, or that is not `available`, naming the ones
    /// it has.
    pub async fn check_zone(&self, region: &str, zone: &str) -> Result<(), RestoreError> {
        let client = self.client(region);
        self.check_zone_with(&client, region, zone).await
    }

    async fn check_zone_with(
        &self,
        client: &Client,
        region: &str,
        zone: &str,
    ) -> Result<(), RestoreError> {
        let out = client
            .describe_availability_zones()
            .send()
            .await
            .map_err(|e| failed("DescribeAvailabilityZones", e))?;
        let zones: Vec<&str> = out
            .availability_zones()
            .iter()
            .filter(|z| {
                z.state()
                    .is_none_or(|s| *s == AvailabilityZoneState::Available)
            })
            .filter_map(|z| z.zone_name())
            .collect();
        if zones.contains(&zone) {
            return Ok(());
        }
        Err(RestoreError::Refused(TargetProblem {
            field: "availabilityZone",
            code: UNKNOWN_ZONE,
            message: format!(
                "`{zone}` is not an available availability zone of {region}; write one of {}",
                zones.join(", ")
            ),
        }))
    }

    /// One volume per snapshot of the backup, in `request`'s zone, tagged at creation. A
    /// failure half-way deletes the volumes already made.
    pub async fn create_volumes(
        &self,
        handle: &BackupHandle,
        request: &VolumesRequest<'_>,
    ) -> Result<VolumeSet, RestoreError> {
        let volume_type = match request.volume_type {
            None => None,
            Some(name) if VolumeType::values().contains(&name) => Some(VolumeType::from(name)),
            Some(name) => {
                return Err(RestoreError::Refused(TargetProblem {
                    field: "volumeType",
                    code: UNKNOWN_VOLUME_TYPE,
                    message: format!(
                        "`{name}` is not an EBS volume type; write one of {}, or leave it out",
                        VolumeType::values().join(", ")
                    ),
                }))
            }
        };
        let set = parse_location(handle)?;
        if set.snapshot_ids.is_empty() {
            return Err(ProviderError::new(format!(
                "backup {} records no snapshot, so there is nothing to restore",
                handle.backup_id
            ))
            .into());
        }
        let client = self.client(&set.region);
        self.check_zone_with(&client, &set.region, request.availability_zone)
            .await?;
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Volume)
            .tags(tag(TAG_RESTORED_FROM, &handle.backup_id))
            .tags(tag(TAG_CLUSTER, request.cluster_id))
            .tags(tag("Name", &fit_label(request.name, MAX_TAG_VALUE)))
            .build();
        let started = chrono::Utc::now().timestamp_millis();
        let mut made: Vec<String> = Vec::new();
        for snapshot in &set.snapshot_ids {
            let answer = client
                .create_volume()
                .availability_zone(request.availability_zone)
                .snapshot_id(snapshot)
                .set_volume_type(volume_type.clone())
                .tag_specifications(tags.clone())
                .send()
                .await;
            let error = match answer {
                Ok(out) => match out.volume_id {
                    Some(id) => {
                        made.push(id);
                        continue;
                    }
                    None => ProviderError::new(format!(
                        "EC2 CreateVolume from {snapshot} answered no volume id"
                    )),
                },
                Err(e) => failed(&format!("CreateVolume from {snapshot}"), e),
            };
            return Err(self.undo(&client, &made, error).await.into());
        }
        Ok(VolumeSet {
            region: set.region,
            backup_id: handle.backup_id.clone(),
            volume_ids: made,
            started_ms: started,
        })
    }

    /// Deletes the volumes a failed restore made, and answers `error`, saying what could not
    /// be deleted if anything. A volume EC2 is still making cannot be deleted yet
    /// (`IncorrectState`): it is asked again every [`UNDO_RETRY`] for [`UNDO_WAIT`], since
    /// the caller answers the error only once nothing is left.
    async fn undo(&self, client: &Client, made: &[String], error: ProviderError) -> ProviderError {
        let mut outcome = delete_all(client, made).await;
        let waited = std::time::Instant::now();
        while matches!(&outcome, Err(Undo::NotYet(_))) && waited.elapsed() < UNDO_WAIT {
            tokio::time::sleep(UNDO_RETRY).await;
            outcome = delete_all(client, made).await;
        }
        match outcome.map_err(Undo::into_error) {
            Ok(()) => error,
            Err(undo) => {
                tracing::warn!(error = %undo, "could not delete the volumes of a failed restore");
                ProviderError {
                    message: format!(
                        "{}; deleting the volumes already made failed too ({}): delete the \
                         volumes tagged {TAG_RESTORED_FROM} by hand",
                        error.message, undo.message
                    ),
                    ..error
                }
            }
        }
    }

    /// How the restore's volumes stand. A throttled `DescribeVolumes` is "still creating".
    pub async fn volumes_state(&self, set: &VolumeSet) -> Result<VolumesState, ProviderError> {
        let client = self.client(&set.region);
        let mut found: Vec<Volume> = Vec::new();
        for ids in set.volume_ids.chunks(FILTER_VALUES) {
            let page: Result<Vec<Volume>, _> = client
                .describe_volumes()
                .filters(ids_filter("volume-id", ids))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await;
            match page {
                Ok(page) => found.extend(page),
                Err(e) if e.code().is_some_and(|code| THROTTLED.contains(&code)) => {
                    tracing::info!(backup_id = %set.backup_id, "DescribeVolumes was throttled; asking again later");
                    return Ok(VolumesState::Creating);
                }
                Err(e) => return Err(failed("DescribeVolumes", e)),
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let fresh = now - set.started_ms < NOT_FOUND_GRACE.num_milliseconds();
        let mut all_available = true;
        for id in &set.volume_ids {
            let Some(volume) = found.iter().find(|v| v.volume_id() == Some(id.as_str())) else {
                if fresh {
                    all_available = false;
                    continue;
                }
                return Ok(VolumesState::Failed(format!(
                    "volume {id} no longer exists"
                )));
            };
            match volume.state() {
                Some(VolumeState::Available | VolumeState::InUse) => {}
                Some(VolumeState::Creating) => all_available = false,
                Some(VolumeState::Error) => {
                    return Ok(VolumesState::Failed(format!(
                        "EC2 could not make volume {id} (it is in the `error` state)"
                    )))
                }
                Some(VolumeState::Deleting | VolumeState::Deleted) => {
                    return Ok(VolumesState::Failed(format!("volume {id} was deleted")))
                }
                _ => all_available = false,
            }
        }
        Ok(if all_available {
            VolumesState::Available
        } else {
            VolumesState::Creating
        })
    }

    /// Deletes the restore's volumes; one already gone counts as deleted. One EC2 is still
    /// making fails the call (the caller asks again later: a notification's retry, the
    /// next sweep).
    pub async fn delete_volumes(&self, set: &VolumeSet) -> Result<(), ProviderError> {
        delete_all(&self.client(&set.region), &set.volume_ids)
            .await
            .map_err(Undo::into_error)
    }
}

/// How often, and how long, a failed restore asks again to delete a volume EC2 is still
/// making.
const UNDO_RETRY: std::time::Duration = std::time::Duration::from_secs(2);
const UNDO_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Why volumes could not all be deleted.
enum Undo {
    /// EC2 is still making one (`IncorrectState`): it can be deleted later.
    NotYet(ProviderError),
    Failed(ProviderError),
}

impl Undo {
    fn into_error(self) -> ProviderError {
        match self {
            Undo::NotYet(e) | Undo::Failed(e) => e,
        }
    }
}

async fn delete_all(client: &Client, ids: &[String]) -> Result<(), Undo> {
    for id in ids {
        match client.delete_volume().volume_id(id).send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("InvalidVolume.NotFound") => {}
            Err(e) if e.code() == Some("IncorrectState") => {
                return Err(Undo::NotYet(failed(&format!("DeleteVolume {id}"), e)))
            }
            Err(e) => return Err(Undo::Failed(failed(&format!("DeleteVolume {id}"), e))),
        }
    }
    Ok(())
}

/// What EC2 calls "resources whose `name` is one of `ids`".
fn ids_filter(name: &str, ids: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(ids.to_vec()))
        .build()
}

fn snapshot_tag<'a>(snapshot: &'a Snapshot, key: &str) -> Option<&'a str> {
    snapshot
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}
