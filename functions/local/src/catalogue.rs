//! `serve --rebuild-catalogue` (SPEC §14): recreates the backup records of a lost or
//! incomplete `state.db` from the manifests under the backup root.
//!
//! # Decisions
//! - Only complete backups are read: directories named by a backup id (a `.partial` or
//!   `.deleting` one is never a backup), each with a `manifest.json` that parses. The
//!   manifest is read, not verified: a full re-read of every backup would make a start-up
//!   take as long as reading every byte kept; `backups verify` does that per backup.
//! - A backup whose record exists is left as it is (the rebuild only adds), so running it
//!   twice, or on a `state.db` that lost only some backups, is harmless.
//! - A manifest without the record (written before version 3) cannot say its scope or
//!   creation instant: it is skipped and named in the report.
//! - A recreated backup is `available`, with its job, cluster, description, scope,
//!   provider, creation instant and size as recorded; its sequence number (only ever used
//!   to render `{index}` in descriptions) is not recorded and reads 0; its details say it
//!   was recreated. Jobs, clusters and history are not in the manifests and are not
//!   recreated: register the clusters and create the jobs again (a job id is new, so a
//!   recreated job does not prune the backups of the lost one).

use std::path::Path;

use backup_core::retention::BackupStatus;
use backup_engine::ports::BackupStore;
use backup_engine::{BackupEntry, Scope, StoreError};

use crate::directory::{Manifest, MANIFEST};

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Backup ids whose records were recreated.
    pub recreated: Vec<String>,
    /// How many backups already had their records.
    pub present: usize,
    /// Backups that could not be recreated, each with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Recreates the missing records of the backups under `backup_root` in `store`.
pub async fn rebuild_catalogue(
    store: &dyn BackupStore,
    backup_root: &Path,
) -> Result<Rebuilt, StoreError> {
    let mut report = Rebuilt::default();
    let root = backup_root.to_path_buf();
    let found = tokio::task::spawn_blocking(move || read_manifests(&root))
        .await
        .map_err(|e| StoreError::Corrupt(format!("the catalogue task stopped: {e}")))?;
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            return Err(StoreError::Corrupt(format!(
                "cannot list the backup root {}: {e}",
                backup_root.display()
            )))
        }
    };
    for (id, read) in found {
        let manifest = match read {
            Ok(manifest) => manifest,
            Err(why) => {
                report.skipped.push((id, why));
                continue;
            }
        };
        let Some(record) = manifest.record.clone() else {
            report.skipped.push((
                id,
                "its manifest was written before manifests recorded the backup's own record"
                    .to_owned(),
            ));
            continue;
        };
        if manifest.backup_id != id {
            report.skipped.push((
                id.clone(),
                format!("its manifest names another backup, {}", manifest.backup_id),
            ));
            continue;
        }
        if store.get_backup(&id).await?.is_some() {
            report.present += 1;
            continue;
        }
        let entry = BackupEntry {
            id: id.clone(),
            scope: Scope {
                org: record.organization_id,
                project: record.project_id,
            },
            job_id: manifest.job_id.clone(),
            cluster_id: manifest.cluster_id.clone(),
            cluster_description: record.cluster_description,
            provider: record.provider,
            description: manifest.description.clone(),
            created: record.created,
            status: BackupStatus::Available,
            index: 0,
            location: Some(backup_root.join(&id).to_string_lossy().into_owned()),
            error_code: None,
            details: Some(
                "Recreated from its manifest by --rebuild-catalogue; verify it with backups \
                 verify."
                    .to_owned(),
            ),
            size_bytes: Some(manifest.total_bytes),
            verification: None,
        };
        if store.insert_backup(&entry).await? {
            report.recreated.push(id);
        } else {
            report.present += 1;
        }
    }
    Ok(report)
}

type Found = Vec<(String, Result<Manifest, String>)>;

/// Every directory of the root named by a backup id, with its manifest or why it has none.
fn read_manifests(root: &Path) -> std::io::Result<Found> {
    let mut found = Vec::new();
    for dirent in std::fs::read_dir(root)? {
        let dirent = dirent?;
        let Ok(name) = dirent.file_name().into_string() else {
            continue;
        };
        // `.partial`, `.deleting` and the lock file are not backups.
        if name.starts_with('.') || !backup_engine::ids::is_valid_id(&name) {
            continue;
        }
        if !dirent.file_type()?.is_dir() {
            continue;
        }
        let path = dirent.path().join(MANIFEST);
        let read = std::fs::read(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|bytes| {
                serde_json::from_slice::<Manifest>(&bytes)
                    .map_err(|e| format!("{} is unreadable: {e}", path.display()))
            });
        found.push((name, read));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}
