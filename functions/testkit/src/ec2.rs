//! EBS volumes for a cluster to back up (alone, or attached to a tagged instance), and the
//! snapshots its backups left.

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

/// A new instance tagged `key=value` (moto gives it a root EBS volume); the ids of the EBS
/// volumes attached to it, sorted.
pub async fn instance_tagged(ec2: &aws_sdk_ec2::Client, key: &str, value: &str) -> Vec<String> {
    instance_tagged_with_data_volumes(ec2, key, value, 0)
        .await
        .volumes
}

/// An instance a test made, and the EBS volumes attached to it.
#[derive(Debug, Clone)]
pub struct TaggedInstance {
    pub instance_id: String,
    /// Every EBS volume attached to it (its root volume too), sorted.
    pub volumes: Vec<String>,
}

/// A new instance tagged `key=value`, with its root EBS volume and `data` more volumes
/// attached (`/dev/sdf`, `/dev/sdg`, …).
pub async fn instance_tagged_with_data_volumes(
    ec2: &aws_sdk_ec2::Client,
    key: &str,
    value: &str,
    data: usize,
) -> TaggedInstance {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let out = ec2
        .run_instances()
        // One of moto's own images.
        .image_id("ami-03cf127a")
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key(key).value(value).build())
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    let made = &out.instances()[0];
    let id = made.instance_id().expect("an instance id").to_owned();
    let zone = made
        .placement()
        .and_then(|p| p.availability_zone())
        .unwrap_or("us-east-1a")
        .to_owned();
    for n in 0..data {
        let volume = ec2
            .create_volume()
            .availability_zone(&zone)
            .size(8)
            .send()
            .await
            .expect("CreateVolume")
            .volume_id
            .expect("a volume id");
        let device = format!("/dev/sd{}", (b'f' + n as u8) as char);
        ec2.attach_volume()
            .volume_id(&volume)
            .instance_id(&id)
            .device(device)
            .send()
            .await
            .expect("AttachVolume");
    }
    let described = ec2
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("DescribeInstances");
    let mut volumes: Vec<String> = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_owned))
        .collect();
    volumes.sort();
    assert!(
        volumes.len() > data,
        "instance {id} has its root volume and {data} data volume(s): {volumes:?}"
    );
    TaggedInstance {
        instance_id: id,
        volumes,
    }
}
