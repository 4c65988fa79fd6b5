//! The `directory` backup provider: a complete, verifiable copy of a cluster's data
//! directory under `<data-dir>/backups/<backup-id>/`.
//!
//! A backup directory holds `data/` (the copy) and `manifest.json` (every file's relative
//! path, size and SHA-256, plus symbolic links). It is written under a temporary sibling
//! `.<backup-id>.partial`, every file and directory is fsynced, the manifest written last, and
//! only then is the whole renamed into place in one atomic `rename`: a directory named after a
//! backup id is always complete. A failed or abandoned copy removes its partial directory;
//! one left by a crash is removed when the provider starts ([`DirectoryProvider::new`]), and
//! in the meantime it is never mistaken for a backup (its name is not an id). Deleting renames
//! the backup to `.<backup-id>.deleting` first, for the same reason.
//!
//! What is copied: regular files and directories, byte for byte; symbolic links as links
//! (their targets are not followed). Sockets, FIFOs and device files (a server's socket in
//! its data directory) are skipped and listed in the manifest. The copy is only consistent if
//! the database is not writing meanwhile (or is crash-consistent by design): the provider
//! copies what is on disk, as the cluster's lock promises that no other backup or maintenance
//! runs at the same time.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use backup_core::api::ClusterTarget;
use backup_engine::ports::BackupProvider;
use backup_engine::{BackupHandle, BackupRequest, ProviderError, ProviderStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The name of the manifest inside a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The directory inside a backup that holds the copied files.
pub const DATA: &str = "data";

/// One copied file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    /// Relative to the data directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// One symbolic link, copied as a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestLink {
    pub path: String,
    pub target: String,
}

/// What a backup directory holds, written last so its presence means the copy is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub backup_id: String,
    pub cluster_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub description: String,
    /// The data directory copied.
    pub source: String,
    /// Every regular file, sorted by path.
    pub files: Vec<ManifestFile>,
    /// Every directory (including empty ones), sorted.
    pub directories: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<ManifestLink>,
    /// Sockets, FIFOs and devices found and not copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub total_bytes: u64,
}

/// Makes and deletes directory backups under one `backups/` directory.
#[derive(Debug, Clone)]
pub struct DirectoryProvider {
    root: PathBuf,
}

impl DirectoryProvider {
    /// Uses `root` (`<data-dir>/backups`), creating it, and removes the partial copies and
    /// half-deleted backups a crash may have left there.
    pub fn new(root: &Path) -> std::io::Result<DirectoryProvider> {
        fs::create_dir_all(root)?;
        for entry in fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && (name.ends_with(".partial") || name.ends_with(".deleting"))
            {
                tracing::warn!(path = %entry.path().display(), "removing an incomplete backup left by a crash");
                fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(DirectoryProvider {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a backup lives once complete.
    pub fn backup_dir(&self, backup_id: &str) -> PathBuf {
        self.root.join(backup_id)
    }

    fn checked_dir(&self, handle: &BackupHandle) -> Result<PathBuf, ProviderError> {
        // The location is ours, but it comes back from the store: never act outside root.
        if !backup_engine::ids::is_valid_id(&handle.backup_id) {
            return Err(ProviderError::new(format!(
                "`{}` is not a backup id",
                handle.backup_id
            )));
        }
        let dir = self.backup_dir(&handle.backup_id);
        if Path::new(&handle.location) != dir {
            return Err(ProviderError::new(format!(
                "backup {} is recorded at {}, outside this server's backups directory {}",
                handle.backup_id,
                handle.location,
                self.root.display()
            )));
        }
        Ok(dir)
    }
}

/// Sets the flag when the `create` future is dropped, so the blocking copy stops early.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl BackupProvider for DirectoryProvider {
    fn kind(&self) -> &'static str {
        "directory"
    }

    fn planned_location(&self, request: &BackupRequest) -> String {
        self.backup_dir(&request.backup_id)
            .to_string_lossy()
            .into_owned()
    }

    async fn create(&self, request: &BackupRequest) -> Result<BackupHandle, ProviderError> {
        let ClusterTarget::Directory { path } = &request.cluster.target else {
            return Err(ProviderError::new(format!(
                "cluster {} is not a directory cluster",
                request.cluster.id
            )));
        };
        if !backup_engine::ids::is_valid_id(&request.backup_id) {
            return Err(ProviderError::new(format!(
                "`{}` is not a backup id",
                request.backup_id
            )));
        }
        let source = PathBuf::from(path);
        let root = self.root.clone();
        let request = request.clone();
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(cancelled.clone());
        let location = self.backup_dir(&request.backup_id);
        let joined =
            tokio::task::spawn_blocking(move || copy_backup(&source, &root, &request, &cancelled))
                .await;
        match joined {
            Ok(Ok(())) => Ok(BackupHandle {
                backup_id: location
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                location: location.to_string_lossy().into_owned(),
            }),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(ProviderError::with_source("the copy task stopped", e)),
        }
    }

    async fn status(&self, handle: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        let dir = self.checked_dir(handle)?;
        Ok(if dir.join(MANIFEST).is_file() {
            ProviderStatus::Available
        } else {
            ProviderStatus::Failed(format!("backup directory {} is missing", dir.display()))
        })
    }

    async fn delete(&self, handle: &BackupHandle) -> Result<(), ProviderError> {
        let dir = self.checked_dir(handle)?;
        let doomed = self.root.join(format!(".{}.deleting", handle.backup_id));
        tokio::task::spawn_blocking(move || -> Result<(), ProviderError> {
            match fs::rename(&dir, &doomed) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !doomed.exists() {
                        return Ok(()); // already gone
                    }
                }
                Err(e) => {
                    return Err(ProviderError::with_source(
                        format!("cannot remove {}: {e}", dir.display()),
                        e,
                    ))
                }
            }
            fs::remove_dir_all(&doomed).map_err(|e| {
                ProviderError::with_source(format!("cannot remove {}: {e}", doomed.display()), e)
            })
        })
        .await
        .map_err(|e| ProviderError::with_source("the delete task stopped", e))?
    }
}

fn io_error(what: String, e: std::io::Error) -> ProviderError {
    ProviderError::with_source(format!("{what}: {e}"), e)
}

/// Copies `source` into `<root>/.<id>.partial/data`, writes the manifest and renames the
/// whole to `<root>/<id>`; on any failure removes the partial directory.
fn copy_backup(
    source: &Path,
    root: &Path,
    request: &BackupRequest,
    cancelled: &AtomicBool,
) -> Result<(), ProviderError> {
    let id = &request.backup_id;
    let partial = root.join(format!(".{id}.partial"));
    let target = root.join(id);
    let result = (|| {
        if target.exists() {
            return Err(ProviderError::new(format!(
                "{} already exists",
                target.display()
            )));
        }
        let meta = fs::metadata(source).map_err(|e| {
            io_error(
                format!("cannot read the data directory {}", source.display()),
                e,
            )
        })?;
        if !meta.is_dir() {
            return Err(ProviderError::new(format!(
                "the data directory {} is not a directory",
                source.display()
            )));
        }
        if partial.exists() {
            fs::remove_dir_all(&partial)
                .map_err(|e| io_error(format!("cannot clear {}", partial.display()), e))?;
        }
        let data = partial.join(DATA);
        fs::create_dir_all(&data)
            .map_err(|e| io_error(format!("cannot create {}", data.display()), e))?;
        let mut manifest = Manifest {
            backup_id: id.clone(),
            cluster_id: request.cluster.id.clone(),
            job_id: request.job_id.clone(),
            description: request.description.clone(),
            source: source.to_string_lossy().into_owned(),
            files: Vec::new(),
            directories: Vec::new(),
            links: Vec::new(),
            skipped: Vec::new(),
            total_bytes: 0,
        };
        copy_dir(source, &data, "", &mut manifest, cancelled)?;
        manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
        manifest.directories.sort();
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ProviderError::with_source("cannot encode the manifest", e))?;
        let manifest_path = partial.join(MANIFEST);
        let mut file = File::create(&manifest_path)
            .map_err(|e| io_error(format!("cannot create {}", manifest_path.display()), e))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(format!("cannot write {}", manifest_path.display()), e))?;
        sync_dir(&partial)?;
        if cancelled.load(Ordering::Relaxed) {
            return Err(ProviderError::new("the backup was abandoned"));
        }
        fs::rename(&partial, &target).map_err(|e| {
            io_error(
                format!("cannot move the backup into {}", target.display()),
                e,
            )
        })?;
        sync_dir(root)?;
        Ok(())
    })();
    if result.is_err() && partial.exists() {
        if let Err(e) = fs::remove_dir_all(&partial) {
            tracing::warn!(path = %partial.display(), error = %e, "could not remove a failed partial backup");
        }
    }
    result
}

fn sync_dir(dir: &Path) -> Result<(), ProviderError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(format!("cannot sync {}", dir.display()), e))
}

fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

fn copy_dir(
    from: &Path,
    to: &Path,
    rel: &str,
    manifest: &mut Manifest,
    cancelled: &AtomicBool,
) -> Result<(), ProviderError> {
    let mut entries = fs::read_dir(from)
        .map_err(|e| io_error(format!("cannot list {}", from.display()), e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_error(format!("cannot list {}", from.display()), e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if cancelled.load(Ordering::Relaxed) {
            return Err(ProviderError::new("the backup was abandoned"));
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(ProviderError::new(format!(
                "{} has a name that is not UTF-8, which the manifest cannot record",
                entry.path().display()
            )));
        };
        let rel_path = join_rel(rel, name);
        let src = entry.path();
        let dst = to.join(name);
        let kind = entry
            .file_type()
            .map_err(|e| io_error(format!("cannot read {}", src.display()), e))?;
        if kind.is_dir() {
            fs::create_dir(&dst)
                .map_err(|e| io_error(format!("cannot create {}", dst.display()), e))?;
            manifest.directories.push(rel_path.clone());
            copy_dir(&src, &dst, &rel_path, manifest, cancelled)?;
        } else if kind.is_file() {
            let (size, sha256) = copy_file(&src, &dst)?;
            manifest.total_bytes += size;
            manifest.files.push(ManifestFile {
                path: rel_path,
                size,
                sha256,
            });
        } else if kind.is_symlink() {
            let target = fs::read_link(&src)
                .map_err(|e| io_error(format!("cannot read the link {}", src.display()), e))?;
            copy_link(&target, &dst)?;
            manifest.links.push(ManifestLink {
                path: rel_path,
                target: target.to_string_lossy().into_owned(),
            });
        } else {
            manifest.skipped.push(rel_path);
        }
    }
    sync_dir(to)
}

#[cfg(unix)]
fn copy_link(target: &Path, dst: &Path) -> Result<(), ProviderError> {
    std::os::unix::fs::symlink(target, dst)
        .map_err(|e| io_error(format!("cannot create the link {}", dst.display()), e))
}

#[cfg(not(unix))]
fn copy_link(_target: &Path, dst: &Path) -> Result<(), ProviderError> {
    Err(ProviderError::new(format!(
        "{} is a symbolic link, which this platform's directory provider cannot copy",
        dst.display()
    )))
}

/// Copies one file while hashing what was read, then fsyncs the copy.
fn copy_file(src: &Path, dst: &Path) -> Result<(u64, String), ProviderError> {
    let mut input =
        File::open(src).map_err(|e| io_error(format!("cannot read {}", src.display()), e))?;
    let mut output =
        File::create(dst).map_err(|e| io_error(format!("cannot create {}", dst.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| io_error(format!("cannot read {}", src.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output
            .write_all(&buf[..n])
            .map_err(|e| io_error(format!("cannot write {}", dst.display()), e))?;
        size += n as u64;
    }
    output
        .sync_all()
        .map_err(|e| io_error(format!("cannot sync {}", dst.display()), e))?;
    Ok((size, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Re-reads a backup directory and checks it against its manifest: every listed file with
/// its size and hash, and nothing unlisted. Returns the manifest.
pub fn verify(backup_dir: &Path) -> Result<Manifest, String> {
    let text = fs::read(backup_dir.join(MANIFEST))
        .map_err(|e| format!("cannot read the manifest of {}: {e}", backup_dir.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| format!("the manifest is unreadable: {e}"))?;
    let data = backup_dir.join(DATA);
    for file in &manifest.files {
        let path = data.join(&file.path);
        let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if bytes.len() as u64 != file.size {
            return Err(format!(
                "{} has {} bytes, the manifest says {}",
                file.path,
                bytes.len(),
                file.size
            ));
        }
        let digest = hex(&Sha256::digest(&bytes));
        if digest != file.sha256 {
            return Err(format!("{} does not match its SHA-256", file.path));
        }
    }
    let mut found = Vec::new();
    list_files(&data, "", &mut found)
        .map_err(|e| format!("cannot list {}: {e}", data.display()))?;
    found.sort();
    let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    if found != listed {
        return Err(format!(
            "the files on disk {found:?} differ from the manifest's {listed:?}"
        ));
    }
    Ok(manifest)
}

fn list_files(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        let rel_path = join_rel(rel, &name);
        if kind.is_dir() {
            list_files(&entry.path(), &rel_path, out)?;
        } else if kind.is_file() {
            out.push(rel_path);
        }
    }
    Ok(())
}
