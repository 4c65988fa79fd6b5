//! EBS volumes for a cluster to back up, and the snapshots its backups left.

use aws_sdk_ec2::types::{Filter, Snapshot};

/// A new 8 GiB volume in us-east-1a; its id.
pub async fn volume(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.create_volume()
        .availability_zone("us-east-1a")
        .size(8)
        .send()
        .await
        .expect("CreateVolume")
        .volume_id
        .expect("a volume id")
}

/// The snapshots tagged `key=value` (`backup:backup-id`, `backup:job-id`, …).
pub async fn snapshots_tagged(ec2: &aws_sdk_ec2::Client, key: &str, value: &str) -> Vec<Snapshot> {
    ec2.describe_snapshots()
        .filters(
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
        )
        .send()
        .await
        .expect("DescribeSnapshots")
        .snapshots()
        .to_vec()
}

/// The value of the snapshot's tag `key`.
pub fn tag<'a>(snapshot: &'a Snapshot, key: &str) -> Option<&'a str> {
    snapshot
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// The volumes the snapshots are of, sorted (to compare with the cluster's).
pub fn snapshotted_volumes(snapshots: &[Snapshot]) -> Vec<String> {
    let mut volumes: Vec<String> = snapshots
        .iter()
        .filter_map(|s| s.volume_id().map(str::to_owned))
        .collect();
    volumes.sort();
    volumes
}
