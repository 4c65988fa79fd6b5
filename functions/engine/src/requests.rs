//! The API requests the engine's and the adapters' tests make again and again (compiled for
//! the engine's own tests and with feature `contract`, which every adapter's tests enable).
//!
//! Each builds the request as a client would send it, so a test still goes through the
//! engine's validation.

use backup_core::api::{
    ClusterTarget, CreateBackupRequest, CreateJobRequest, RegisterClusterRequest,
    ScheduledBackupData,
};

/// Registers the `directory` cluster `id`, described `description`, at `path`.
pub fn directory_cluster(
    id: &str,
    description: &str,
    path: impl Into<String>,
) -> RegisterClusterRequest {
    RegisterClusterRequest {
        id: id.to_owned(),
        description: description.to_owned(),
        region: None,
        target: ClusterTarget::Directory { path: path.into() },
        server_version: None,
        server_version_tag: None,
        node_count: None,
        source_backup_id: None,
        availability_zone: None,
        volume_type: None,
    }
}

/// An hourly `ScheduledBackup` job of `cluster` that describes its backups with `template`
/// and keeps `max` of them.
pub fn hourly_job(cluster: &str, template: &str, max: i64) -> CreateJobRequest {
    CreateJobRequest {
        description: Some("hourly".to_owned()),
        schedule: Some("0 * * * *".to_owned()),
        job_type: Some("ScheduledBackup".to_owned()),
        data: Some(ScheduledBackupData {
            cluster_id: Some(cluster.to_owned()),
            description: Some(template.to_owned()),
            max_backup_count: Some(max),
        }),
    }
}

/// A manual backup of `cluster`, described by `template`.
pub fn manual_backup(cluster: &str, template: &str) -> CreateBackupRequest {
    CreateBackupRequest {
        description: template.to_owned(),
        source_cluster_id: cluster.to_owned(),
    }
}
