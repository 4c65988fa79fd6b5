//! The `directory` backup provider: a complete, verifiable copy of a cluster's data
//! directory under `<backup-root>/<backup-id>/` (SPEC §9, §12, §13).
//!
//! A backup directory (`0700`) holds `data/` (`0700`, the copy) and `manifest.json` (`0600`,
//! every entry with its type, size, mode, owner, group, modification time, and the checksum
//! of files or the target of links: see [`manifest`]). It is written under a hidden sibling
//! `.<backup-id>.partial`, the manifest last, checked, and only then renamed into place in
//! one `rename`: a directory named after a backup id is always complete. A failed or
//! abandoned copy removes its partial directory; one left by a crash is removed when the
//! provider starts ([`DirectoryProvider::new`]), and meanwhile it is never mistaken for a
//! backup (its name is not an id). Deleting renames the backup to `.<backup-id>.deleting`
//! first, for the same reason.
//!
//! # A run, step by step
//! 1. The cluster's path is checked against the [`PathPolicy`] again (it may have become a
//!    link since it was registered): `path_not_allowed` otherwise.
//! 2. The path is opened component by component from `/` with `O_NOFOLLOW`, and everything
//!    below is reached through directory descriptors ([`walk`]), never rebuilt paths.
//! 3. A first walk reads only metadata and sums the allocated size of the regular files it
//!    will copy (not those it will link); more than the backup root's free space fails at
//!    once with `insufficient_space`.
//! 4. The copy: a regular file unchanged since the cluster's previous backup is hard-linked
//!    from it ([`base`]); any other is copied extent by extent (holes stay holes) and hashed
//!    beside the copy ([`digest`]); directories created and given their metadata once their
//!    contents are written; links recreated as links; FIFOs, sockets and devices listed,
//!    never read.
//! 5. The manifest, a check that every entry is in the copy with its type and size, one
//!    `syncfs` ([`durable`]), the rename, an fsync of the root.
//!
//! # Decisions
//! - **Descriptors.** A walk keeps at most [`walk::WINDOW`] directory descriptors open
//!   (source and destination each), re-opening an ancestor through `..` with an identity
//!   check when it comes back up (see [`walk`]). Depth is limited only by the file system.
//! - **Durability.** Nothing is fsynced as it is written: once the copy and its manifest
//!   are complete, one `syncfs` of the backup root's file system makes all of it durable
//!   before the rename, and an fsync of the root makes the rename durable (see [`durable`]
//!   for the argument, and its cost). Writeback is only started earlier, so the disk works
//!   during the copy: per large file (`sync_file_range`, in [`copy`]) and every 32 MB for the
//!   rest ([`flusher`]).
//! - **Metadata.** Copies keep the source's permission bits and modification time (ns);
//!   as root also owner and group (`chown` before `chmod`, which `chown` would clear).
//!   Not as root, the set-user-id, set-group-id and sticky bits are dropped, since the copy
//!   then belongs to the server's user. `data/` itself stays `0700` and the server's; the
//!   cluster root's own metadata is recorded in the manifest's `root`.
//! - **Names that are not UTF-8** are refused (the run fails, naming the entry) rather than
//!   encoded: the manifest is JSON text, and an encoding would be one more format for every
//!   restore tool to learn. Link targets likewise.
//! - **Entries that vanish** between the listing and their turn (a database removing a WAL
//!   segment) are left out and named in the notes; the run does not fail.
//! - **Links outside the cluster** are judged lexically: an absolute target, or a relative
//!   one whose `..` climbs above the cluster's root from the link's own directory.
//! - **Changed files**: the size or modification time of the open source differ between the
//!   `fstat` before and after the copy. The manifest records the times applied (before).
//! - **Free space** counts only regular files' allocated blocks (links, directories and the
//!   manifest are small and not counted); `f_bavail * f_frsize` of the backup root.
//! - **Hard links** are not detected: each name is copied as its own file (and counted as
//!   such by the free-space estimate), which a restore can always apply.
//! - **Listing.** Each directory's names are read and sorted before its entries are visited:
//!   the manifest's order is stable, and memory grows with the largest directory, not with
//!   the tree.
//! - **Entries swapped after the listing** are judged by what is there when their turn
//!   comes: a file opened and found (by `fstat`) to be a FIFO, socket or device, or one that
//!   refuses to open and is no longer a file, is skipped and listed like any other.
//! - **Abandoned runs.** Dropping the `create` future sets a flag that the worker checks at
//!   every entry and chunk; it then removes its partial directory. A worker that completes
//!   its rename after being abandoned deletes what it made.

mod base;
mod by_command;
mod copy;
mod digest;
mod flusher;
mod index;
mod linker;
pub mod manifest;
mod restore;
mod walk;

pub use by_command::{CommandProvider, RUN_AS_NOT_ALLOWED};

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use backup_core::api::{ClusterTarget, VerifyProblem};
use backup_engine::ports::BackupProvider;
use backup_engine::{
    BackupHandle, BackupRequest, ClusterRecord, Creation, ProviderError, ProviderErrorCode,
    ProviderStatus, Restoration, RestoreRequest, TargetProblem,
};
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

pub use manifest::{
    CatalogueRecord, EntryKind, HashAlgorithm, Manifest, ManifestEntry, Problem, RootMeta,
};
pub use restore::{read_manifest, restore, sibling_name};

use crate::policy::{PathPolicy, PATH_NOT_ALLOWED};
use base::Base;
use copy::{Copier, Sizer};
use digest::{Inline, Piped};
use flusher::Flusher;
use linker::Linker;
use manifest::{describe, Checker, Depth, MANIFEST_VERSION};
use walk::{dir_flags, fmeta, open_dir_at, open_dir_nofollow, remove_tree, shown, Chain, FsError};

/// The name of the manifest inside a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The directory inside a backup that holds the copied files.
pub const DATA: &str = "data";

/// How many names a note lists before "and N more".
const NOTE_NAMES: usize = 10;

/// A test hook: called with an entry's path relative to the data directory.
pub type Hook = Arc<dyn Fn(&str) + Send + Sync>;

/// **Test-only** hooks into a copy, to make races happen on purpose. All off by default;
/// the server never sets them.
#[doc(hidden)]
#[derive(Clone, Default)]
pub struct TestHooks {
    /// Right before a regular file (as listed) is opened: swap it for a FIFO, say.
    pub before_open: Option<Hook>,
    /// After the first chunk of a file is written: append to it, say.
    pub after_first_chunk: Option<Hook>,
}

impl fmt::Debug for TestHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHooks")
            .field("before_open", &self.before_open.is_some())
            .field("after_first_chunk", &self.after_first_chunk.is_some())
            .finish()
    }
}

/// Makes and deletes directory backups under one backup root.
#[derive(Debug, Clone)]
pub struct DirectoryProvider {
    root: PathBuf,
    root_fd: Arc<OwnedFd>,
    policy: Arc<PathPolicy>,
    /// `serve --verify-unchanged`: an unchanged file is read and its checksum compared
    /// before it is linked (see [`base`]).
    verify_unchanged: bool,
    /// The algorithm of the checksums a backup records (`serve --checksum`).
    hash: HashAlgorithm,
    /// Test-only: see [`TestHooks`].
    #[doc(hidden)]
    pub hooks: TestHooks,
}

fn io_err(e: Errno, what: String) -> std::io::Error {
    let e = std::io::Error::from(e);
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Removes every `.<name><infix><restore-id>` beside `target`'s path (`<restore-id>` an id):
/// what restores into it left when the server stopped. Through a descriptor of the parent
/// opened without following links; nothing else is touched.
pub(crate) async fn discard_siblings(
    target: &ClusterTarget,
    infix: &'static str,
) -> Result<(), ProviderError> {
    let Some(path) = target.path().map(PathBuf::from) else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(());
        };
        let prefix = format!(".{}{infix}", name.to_string_lossy());
        let parent_fd = match walk::open_dir_nofollow(parent) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => {
                return Err(ProviderError::new(format!(
                    "cannot open {}: {e}",
                    parent.display()
                )))
            }
        };
        let shown_parent = parent.display().to_string();
        let names = walk::list(parent_fd.as_fd())
            .map_err(|e| ProviderError::new(format!("cannot list {shown_parent}: {e}")))?;
        for entry in names {
            let text = entry.to_string_lossy();
            let ours = text
                .strip_prefix(&prefix)
                .is_some_and(backup_engine::ids::is_valid_id);
            if ours {
                tracing::warn!(path = %shown(&shown_parent, &text), "removing what an interrupted restore left");
                remove_tree(parent_fd.as_fd(), &entry, &shown_parent)
                    .map_err(|e| ProviderError::with_source(e.to_string(), e))?;
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| ProviderError::with_source("the clean-up task stopped", e))?
}

/// Runs a directory cluster's post-hook if it is dropped armed: the backup's call was
/// abandoned after its pre-hook succeeded (a stalled copy, a lost lease, a stopping
/// server), so the post-hook that restarts what the pre-hook stopped would otherwise never
/// run, leaving a database stopped.
///
/// The hook is started as a process of its own (`sh -c`, the run's variables, its own
/// process group, output discarded) and not waited for: the server may be exiting, and
/// the hook must outlive it. A thread reaps it. Its outcome is not recorded; the warning
/// logged says it was started and why.
struct PostHookOnDrop {
    hook: Option<String>,
    env: Vec<(&'static str, String)>,
    backup_id: String,
}

impl PostHookOnDrop {
    fn new(hook: &str, env: Vec<(&'static str, String)>, backup_id: &str) -> PostHookOnDrop {
        PostHookOnDrop {
            hook: Some(hook.to_owned()),
            env,
            backup_id: backup_id.to_owned(),
        }
    }

    /// The post-hook ran in the call: nothing to do on drop.
    fn disarm(mut self) {
        self.hook = None;
    }
}

impl Drop for PostHookOnDrop {
    fn drop(&mut self) {
        let Some(hook) = self.hook.take() else {
            return;
        };
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(&hook)
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0);
        match command.spawn() {
            Ok(mut child) => {
                tracing::warn!(backup_id = %self.backup_id, pid = child.id(), "the backup was abandoned after its pre-hook; started its post-hook on its own");
                let _ = std::thread::Builder::new()
                    .name("backup-post-hook".into())
                    .spawn(move || child.wait());
            }
            Err(error) => {
                tracing::error!(backup_id = %self.backup_id, %error, "the backup was abandoned after its pre-hook, and its post-hook could not be started: run it by hand");
            }
        }
    }
}

/// Whether `name` in the backup root is what a crash left of one of ours: `.<id>.partial`
/// or `.<id>.deleting`, `<id>` a backup id. Nothing else is removed at start-up, so a
/// `--backup-root` that also holds other files loses none of them.
fn is_leftover(name: &str) -> bool {
    [".partial", ".deleting"].iter().any(|suffix| {
        name.strip_prefix('.')
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(backup_engine::ids::is_valid_id)
    })
}

impl DirectoryProvider {
    /// Uses `root` (the backup root, `<data-dir>/backups` by default), creating it `0700`
    /// and tightening it to `0700` if it is wider (logged once), and removes the partial
    /// copies and half-deleted backups a crash may have left there. The caller holds the
    /// exclusive locks of the data directory and the backup root, so everything in it is
    /// this server's. `root` must be the policy's backup root.
    pub fn new(root: &Path, policy: PathPolicy) -> std::io::Result<DirectoryProvider> {
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)?;
        }
        let canonical = std::fs::canonicalize(root)?;
        if canonical != policy.backup_root() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the backup root {} is not the policy's backup root {}",
                    canonical.display(),
                    policy.backup_root().display()
                ),
            ));
        }
        let shown_root = root.display().to_string();
        let root_fd = rfs::open(root, dir_flags(), Mode::empty())
            .map_err(|e| io_err(e, format!("cannot open {shown_root}")))?;
        let meta =
            fmeta(root_fd.as_fd()).map_err(|e| io_err(e, format!("cannot read {shown_root}")))?;
        if meta.mode & 0o077 != 0 {
            rfs::fchmod(&root_fd, Mode::from_raw_mode(0o700))
                .map_err(|e| io_err(e, format!("cannot tighten {shown_root}")))?;
            tracing::warn!(
                path = %shown_root,
                was = format!("{:04o}", meta.mode),
                "the backup root was readable by others; tightened it to 0700"
            );
        }
        let names = walk::list(root_fd.as_fd())
            .map_err(|e| io_err(e, format!("cannot list {shown_root}")))?;
        for name in names {
            let text = name.to_string_lossy();
            if is_leftover(&text) {
                tracing::warn!(path = %shown(&shown_root, &text), "removing an incomplete backup left by a crash");
                remove_tree(root_fd.as_fd(), &name, &shown_root).map_err(|e| {
                    std::io::Error::other(format!("cannot remove a leftover backup: {e}"))
                })?;
            }
        }
        Ok(DirectoryProvider {
            root: root.to_path_buf(),
            root_fd: Arc::new(root_fd),
            policy: Arc::new(policy),
            verify_unchanged: false,
            hash: HashAlgorithm::CURRENT,
            hooks: TestHooks::default(),
        })
    }

    /// The algorithm of the checksums new backups record (`serve --checksum`): BLAKE3 by
    /// default, SHA-256 where a site's rules name it (FIPS 140 approves SHA-256, not
    /// BLAKE3). Backups of either algorithm verify and restore alike; a backup links only
    /// from a previous backup of the same algorithm, so the first backup of a cluster after
    /// a change copies every file once.
    pub fn checksum(mut self, algorithm: HashAlgorithm) -> DirectoryProvider {
        self.hash = algorithm;
        self
    }

    /// Reads and checksums every file that looks unchanged before linking it from the
    /// previous backup (`serve --verify-unchanged`): slower, for file systems whose
    /// metadata an operator does not trust.
    pub fn verify_unchanged(mut self, on: bool) -> DirectoryProvider {
        self.verify_unchanged = on;
        self
    }

    /// The backup root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path policy cluster paths are checked against.
    pub fn policy(&self) -> &PathPolicy {
        &self.policy
    }

    /// Where a backup lives once complete.
    pub fn backup_dir(&self, backup_id: &str) -> PathBuf {
        self.root.join(backup_id)
    }

    fn checked_id(&self, handle: &BackupHandle) -> Result<CString, ProviderError> {
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
                "backup {} is recorded at {}, outside this server's backup root {}",
                handle.backup_id,
                handle.location,
                self.root.display()
            )));
        }
        CString::new(handle.backup_id.as_str())
            .map_err(|_| ProviderError::new(format!("`{}` is not a backup id", handle.backup_id)))
    }

    /// Runs a policy call on a blocking thread: canonicalizing reads the file system, which
    /// may hang (a dead network mount) and must not stall the runtime.
    async fn with_policy<T: Send + 'static>(
        &self,
        f: impl FnOnce(&PathPolicy) -> Result<T, TargetProblem> + Send + 'static,
    ) -> Result<T, TargetProblem> {
        let policy = self.policy.clone();
        tokio::task::spawn_blocking(move || f(&policy))
            .await
            .unwrap_or_else(|e| {
                Err(TargetProblem {
                    field: "path",
                    code: crate::policy::PATH_NOT_FOUND,
                    message: format!("the path could not be checked: {e}"),
                })
            })
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

    /// A directory target must be an existing directory that passes the policy; it is
    /// stored canonical. Codes: `path_not_allowed` for a breach of the policy,
    /// `path_not_found`, `path_not_directory`, `path_not_absolute`, `path_not_utf8` for the
    /// rest (see [`crate::policy`]).
    async fn check_target(&self, target: &ClusterTarget) -> Result<ClusterTarget, TargetProblem> {
        match target {
            ClusterTarget::Directory { path, .. } => {
                let path = path.clone();
                let canonical = self.with_policy(move |p| p.resolve(&path)).await?;
                Ok(target.with_path(canonical.to_string_lossy().into_owned()))
            }
            other => Ok(other.clone()),
        }
    }

    async fn recheck_target(&self, target: &ClusterTarget) -> Result<(), TargetProblem> {
        match target {
            ClusterTarget::Directory { path, .. } => {
                let path = path.clone();
                self.with_policy(move |p| p.recheck(&path).map(|_| ()))
                    .await
            }
            _ => Ok(()),
        }
    }

    fn links_unchanged(&self) -> bool {
        true
    }

    fn planned_location(&self, request: &BackupRequest) -> String {
        self.backup_dir(&request.backup_id)
            .to_string_lossy()
            .into_owned()
    }

    /// Copies the directory in this call, between its hooks: the backup is
    /// [`Creation::Done`].
    async fn create(&self, request: &BackupRequest) -> Result<Creation, ProviderError> {
        let ClusterTarget::Directory {
            path,
            pre_hook,
            post_hook,
        } = &request.cluster.target
        else {
            return Err(ProviderError::new(format!(
                "cluster {} is not a directory cluster",
                request.cluster.id
            )));
        };
        if let Some(hook) = pre_hook {
            self.run_hook("pre-hook", hook, request)
                .await
                .map_err(|failure| {
                    ProviderError::coded(
                        ProviderErrorCode::HookFailed,
                        format!("{failure}\nNothing was copied."),
                    )
                })?;
        }
        // Armed from here until the post-hook has run: if this call is abandoned in between
        // (the copy stalled, the lease was lost, the server is stopping), the post-hook still
        // runs, on its own (SPEC §15: it runs whenever the pre-hook succeeded).
        let abandoned = post_hook
            .as_ref()
            .map(|hook| PostHookOnDrop::new(hook, run_env(request), &request.backup_id));
        let copied = self.copy_directory(path, request).await;
        let Some(hook) = post_hook else {
            return copied;
        };
        // The post-hook runs whatever the copy did (it restarts what the pre-hook stopped).
        // Its failure does not fail a copy that succeeded: the backup is good, and the run's
        // details say what the operator must look at.
        let ran = self.run_hook("post-hook", hook, request).await;
        if let Some(guard) = abandoned {
            guard.disarm();
        }
        match (copied, ran) {
            (copied, Ok(())) => copied,
            (Ok(Creation::Done(mut handle)), Err(failure)) => {
                handle.notes.push(format!(
                    "{failure}\nThe copy itself succeeded and is kept: check the database"
                ));
                Ok(Creation::Done(handle))
            }
            (Ok(other), Err(failure)) => {
                tracing::warn!(%failure, "a post-hook failed");
                Ok(other)
            }
            (Err(mut error), Err(failure)) => {
                error.message = format!("{}; then {failure}", error.message);
                Err(error)
            }
        }
    }

    /// Re-reads the backup against its manifest ([`check_backup`]): every entry present
    /// with its type, size, mode, owner (when kept), modification time and checksum or link
    /// target, nothing extra. Opens everything read-only and writes nothing.
    async fn verify(&self, handle: &BackupHandle) -> Result<Vec<VerifyProblem>, ProviderError> {
        let id = self.checked_id(handle)?;
        let root = self.root_fd.clone();
        let shown_dir = self.backup_dir(&handle.backup_id).display().to_string();
        tokio::task::spawn_blocking(move || check_backup(root.as_fd(), &id, &shown_dir))
            .await
            .map_err(|e| ProviderError::with_source("the verify task stopped", e))?
    }

    /// A restore's path must pass the policy and not exist or be an empty directory (see
    /// [`PathPolicy::resolve_restore_target`]); it is answered with its parent canonical.
    async fn check_restore_target(
        &self,
        source: &ClusterRecord,
        target: &ClusterTarget,
        _zone: Option<&str>,
    ) -> Result<ClusterTarget, TargetProblem> {
        match target {
            ClusterTarget::Directory { path, .. } => {
                let path = path.clone();
                let resolved = self
                    .with_policy(move |p| p.resolve_restore_target(&path))
                    .await?;
                // Not into the cluster the backup was made of: a restore never touches it,
                // and its next backup would copy the restored tree too.
                // (An empty path is a source whose directory is unknown: see the engine's
                // restore of a backup whose cluster was deleted.)
                if let Some(inside) = source
                    .target
                    .path()
                    .filter(|path| !path.is_empty())
                    .map(std::path::Path::new)
                    .filter(|cluster| resolved.starts_with(cluster))
                {
                    return Err(TargetProblem {
                        field: "path",
                        code: PATH_NOT_ALLOWED,
                        message: format!(
                            "{} is inside {}, the directory of cluster {} that this backup was \
                             made of: a restore never writes into its source, whose next backup \
                             would copy the restore too; restore beside it, such as {}-restored",
                            resolved.display(),
                            inside.display(),
                            source.id,
                            inside.display()
                        ),
                    });
                }
                // A restored cluster has no hooks: the source's would act on the source's
                // database.
                Ok(ClusterTarget::directory(
                    resolved.to_string_lossy().into_owned(),
                ))
            }
            other => Err(TargetProblem {
                field: "provider",
                code: "conflicting",
                message: format!(
                    "a directory backup restores into a path, not as an {} cluster: give path",
                    other.provider()
                ),
            }),
        }
    }

    /// Copies the backup into its new path in this call ([`restore`](restore::restore)):
    /// the restore is [`Restoration::Done`] with the path, or failed with nothing left.
    async fn restore(&self, request: &RestoreRequest) -> Result<Restoration, ProviderError> {
        self.checked_id(&request.backup)?;
        let ClusterTarget::Directory { path, .. } = &request.target else {
            return Err(ProviderError::new(format!(
                "a directory backup restores into a path, not as an {} cluster",
                request.target.provider()
            )));
        };
        // Again, at the last moment: the path may have changed since it was checked.
        let asked = path.clone();
        let target = self
            .with_policy(move |p| p.resolve_restore_target(&asked))
            .await
            .map_err(|p| {
                let code = if p.code == PATH_NOT_ALLOWED {
                    ProviderErrorCode::PathNotAllowed
                } else {
                    ProviderErrorCode::ProviderError
                };
                ProviderError::coded(code, format!("the restore's path {path}: {}", p.message))
            })?;
        let backup_dir = self.backup_dir(&request.backup.backup_id);
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(cancelled.clone());
        let (restore_id, progress) = (request.restore_id.clone(), request.progress.clone());
        let placed = tokio::task::spawn_blocking(move || {
            let manifest = restore::read_manifest(&backup_dir).map_err(ProviderError::new)?;
            let placed = restore::restore(
                &backup_dir,
                &manifest,
                &target,
                &restore_id,
                &progress,
                &cancelled,
            )?;
            if cancelled.load(Ordering::Relaxed) {
                // Abandoned while renaming: the restore is over and its cluster failed, so
                // what it put in place goes too.
                restore::discard(&placed);
                return Err(ProviderError::new("the restore was abandoned"));
            }
            Ok(placed)
        })
        .await
        .map_err(|e| ProviderError::with_source("the restore task stopped", e))??;
        Ok(Restoration::Done(ClusterTarget::directory(
            placed.to_string_lossy().into_owned(),
        )))
    }

    /// Removes the hidden siblings a restore into `target` left when the server stopped:
    /// a copy's `.<name>.restoring-<restore-id>`, and a restore command's
    /// `.<name>.restore-<restore-id>` (a command backup restores into a directory cluster
    /// too).
    async fn discard_interrupted_restore(
        &self,
        target: &ClusterTarget,
    ) -> Result<(), ProviderError> {
        discard_siblings(target, ".restoring-").await?;
        discard_siblings(target, ".restore-").await
    }

    async fn status(&self, handle: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        self.backup_status(handle).await
    }

    async fn delete(&self, handle: &BackupHandle) -> Result<(), ProviderError> {
        self.remove_backup(handle).await
    }
}

impl DirectoryProvider {
    /// Runs a hook of `request`'s cluster with the variables of SPEC §15, within the
    /// command timeout.
    async fn run_hook(
        &self,
        role: crate::command::Role,
        command: &str,
        request: &BackupRequest,
    ) -> Result<(), crate::command::CommandFailure> {
        crate::command::Shell {
            role,
            command,
            env: run_env(request),
            run_as: None,
            cwd: None,
            timeout: std::time::Duration::from_secs(
                backup_core::api::DEFAULT_COMMAND_TIMEOUT_SECONDS,
            ),
            progress: &request.progress,
            inherit: Vec::new(),
        }
        .run()
        .await
    }

    /// The copy of a directory backup (the part between the hooks).
    async fn copy_directory(
        &self,
        path: &str,
        request: &BackupRequest,
    ) -> Result<Creation, ProviderError> {
        if !backup_engine::ids::is_valid_id(&request.backup_id) {
            return Err(ProviderError::new(format!(
                "`{}` is not a backup id",
                request.backup_id
            )));
        }
        let stored = path.to_owned();
        let source = self
            .with_policy(move |p| p.recheck(&stored))
            .await
            .map_err(|p| {
                let code = if p.code == PATH_NOT_ALLOWED {
                    ProviderErrorCode::PathNotAllowed
                } else {
                    ProviderErrorCode::ProviderError
                };
                ProviderError::coded(code, format!("the data directory {path}: {}", p.message))
            })?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(cancelled.clone());
        let job = Job {
            provider: self.clone(),
            source,
            request: request.clone(),
            cancelled: cancelled.clone(),
        };
        let location = self.backup_dir(&request.backup_id);
        let made = tokio::task::spawn_blocking(move || job.run())
            .await
            .map_err(|e| ProviderError::with_source("the copy task stopped", e))??;
        let mut handle = BackupHandle::new(
            request.backup_id.clone(),
            location.to_string_lossy().into_owned(),
        );
        handle.notes = made.notes;
        handle.size_bytes = Some(made.size_bytes);
        handle.linked_bytes = Some(made.linked_bytes);
        Ok(Creation::Done(handle))
    }

    async fn backup_status(&self, handle: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        let id = self.checked_id(handle)?;
        let dir = self.backup_dir(&handle.backup_id);
        let root = self.root_fd.clone();
        let found = tokio::task::spawn_blocking(move || {
            let backup = open_dir_at(root.as_fd(), &id)?;
            rfs::statat(&backup, MANIFEST, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| walk::meta(&st).kind == manifest::EntryKind::File)
        })
        .await
        .map_err(|e| ProviderError::with_source("the status task stopped", e))?;
        Ok(match found {
            Ok(true) => ProviderStatus::Available,
            Ok(false) | Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {
                ProviderStatus::Failed(format!(
                    "backup directory {} is missing or incomplete",
                    dir.display()
                ))
            }
            Err(e) => {
                return Err(ProviderError::with_source(
                    format!("cannot read {}: {e}", dir.display()),
                    std::io::Error::from(e),
                ))
            }
        })
    }

    async fn remove_backup(&self, handle: &BackupHandle) -> Result<(), ProviderError> {
        let id = self.checked_id(handle)?;
        let root = self.root_fd.clone();
        let shown_root = self.root.display().to_string();
        tokio::task::spawn_blocking(move || delete_backup(root.as_fd(), &id, &shown_root))
            .await
            .map_err(|e| ProviderError::with_source("the delete task stopped", e))?
            .map_err(|e| ProviderError::with_source(format!("cannot delete the backup: {e}"), e))
    }
}

/// What a verify found in the backup `<root>/<id>`: the problems [`Checker`] finds at
/// full depth, paths relative to `data/`, and the backup-wide ones (no directory, no or an
/// unreadable manifest, no `data/`) with an empty path. A damaged backup is problems, not
/// an error: the error is for a check that could not be made (a backup root the server
/// cannot read). Everything is opened read-only, without following links.
fn check_backup(
    root: std::os::fd::BorrowedFd<'_>,
    id: &CStr,
    shown_dir: &str,
) -> Result<Vec<VerifyProblem>, ProviderError> {
    let whole = |problem: String| {
        Ok(vec![VerifyProblem {
            path: String::new(),
            problem,
        }])
    };
    let cannot = |what: &str, e: Errno| {
        ProviderError::with_source(format!("cannot {what}: {e}"), std::io::Error::from(e))
    };
    let dir = match open_dir_at(root, id) {
        Ok(dir) => dir,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {
            return whole(format!("the backup directory {shown_dir} is missing"));
        }
        Err(e) => return Err(cannot(&format!("open {shown_dir}"), e)),
    };
    let read_flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let manifest_fd = match rfs::openat(&dir, MANIFEST, read_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::LOOP) => {
            return whole(format!("its {MANIFEST} is missing"));
        }
        Err(e) => return Err(cannot(&format!("open the {MANIFEST} of {shown_dir}"), e)),
    };
    if walk::fmeta(manifest_fd.as_fd()).map(|m| m.kind) != Ok(EntryKind::File) {
        return whole(format!("its {MANIFEST} is not a regular file"));
    }
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(manifest_fd), &mut text).map_err(|e| {
        ProviderError::with_source(format!("cannot read the {MANIFEST} of {shown_dir}"), e)
    })?;
    let manifest: Manifest = match serde_json::from_slice(&text) {
        Ok(manifest) => manifest,
        Err(e) => return whole(format!("its {MANIFEST} is unreadable: {e}")),
    };
    let mut found = Vec::new();
    let id_text = id.to_string_lossy();
    if manifest.backup_id != id_text {
        found.push(VerifyProblem {
            path: String::new(),
            problem: format!(
                "its {MANIFEST} is backup {}'s, not {id_text}'s",
                manifest.backup_id
            ),
        });
    }
    let data_shown = shown(shown_dir, DATA);
    let data = match open_dir_at(dir.as_fd(), c"data") {
        Ok(data) => data,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => {
            found.push(VerifyProblem {
                path: String::new(),
                problem: format!("its {DATA} directory is missing"),
            });
            return Ok(found);
        }
        Err(e) => return Err(cannot(&format!("open {data_shown}"), e)),
    };
    let mut checker = Checker::new(&manifest, Depth::Full);
    walk::walk(data.as_fd(), &data_shown, &mut checker)
        .map_err(|e| ProviderError::new(format!("cannot check {data_shown}: {e}")))?;
    let (problems, more) = checker.finish();
    found.extend(problems.into_iter().map(|p| VerifyProblem {
        path: p.path,
        problem: p.problem,
    }));
    if more > 0 {
        found.push(VerifyProblem {
            path: String::new(),
            problem: format!("and {more} more problem(s), not listed"),
        });
    }
    Ok(found)
}

/// The variables every command of a backup sees (SPEC §15): `JOB_ID` is empty for a
/// manual backup.
pub(crate) fn run_env(request: &BackupRequest) -> Vec<(&'static str, String)> {
    vec![
        ("CLUSTER_ID", request.cluster.id.clone()),
        ("BACKUP_ID", request.backup_id.clone()),
        ("JOB_ID", request.job_id.clone().unwrap_or_default()),
        (
            "SCHEDULED_TIME",
            backup_core::civil::format_rfc3339(request.scheduled),
        ),
    ]
}

/// The backup's record as the manifest keeps it (SPEC §14, `--rebuild-catalogue`).
pub(crate) fn catalogue_record(request: &BackupRequest) -> manifest::CatalogueRecord {
    manifest::CatalogueRecord {
        organization_id: request.cluster.scope.org.clone(),
        project_id: request.cluster.scope.project.clone(),
        cluster_description: request.cluster.description.clone(),
        provider: request.cluster.provider().to_owned(),
        created: request.created,
    }
}

/// Renames `<id>` to `.<id>.deleting` on the root descriptor, then removes that tree.
/// A backup already gone, or entries removed by a concurrent deleter, count as deleted.
fn delete_backup(
    root: std::os::fd::BorrowedFd<'_>,
    id: &CStr,
    shown_root: &str,
) -> Result<(), FsError> {
    let doomed = CString::new(format!(".{}.deleting", id.to_string_lossy()))
        .map_err(|_| FsError::Refused("a backup id holds a NUL byte".to_owned()))?;
    match rfs::renameat(root, id, root, &doomed) {
        // Gone already, or another deleter renamed it first: finish whatever is left.
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => {
            return Err(FsError::io(
                "rename",
                shown(shown_root, &id.to_string_lossy()),
                e,
            ))
        }
    }
    remove_tree(root, &doomed, shown_root)?;
    rfs::fsync(root).map_err(|e| FsError::io("sync", shown_root, e))
}

/// What a copy made: its notes, its size (the manifest's total) and how much of that was
/// linked from the base.
struct Copied {
    notes: Vec<String>,
    size_bytes: u64,
    linked_bytes: u64,
}

/// One `create`, run on a blocking thread.
struct Job {
    provider: DirectoryProvider,
    source: PathBuf,
    request: BackupRequest,
    cancelled: Arc<AtomicBool>,
}

/// What a failure of the copy becomes: a full disk is `insufficient_space`.
fn provider_error(e: FsError, root: &str) -> ProviderError {
    match e.errno() {
        Some(Errno::NOSPC | Errno::DQUOT) => ProviderError::coded(
            ProviderErrorCode::InsufficientSpace,
            format!("the backup root {root} ran out of space during the copy ({e}); the partial copy was removed"),
        ),
        _ => ProviderError::with_source(e.to_string(), e),
    }
}

impl Job {
    fn run(self) -> Result<Copied, ProviderError> {
        let root = self.provider.root_fd.clone();
        let shown_root = self.provider.root.display().to_string();
        let id = &self.request.backup_id;
        let partial = CString::new(format!(".{id}.partial"))
            .map_err(|_| ProviderError::new(format!("`{id}` is not a backup id")))?;
        let final_name = CString::new(id.as_str())
            .map_err(|_| ProviderError::new(format!("`{id}` is not a backup id")))?;
        let result = self.copy(root.as_fd(), &partial, &final_name, &shown_root);
        if result.is_err() {
            if let Err(e) = remove_tree(root.as_fd(), &partial, &shown_root) {
                tracing::warn!(error = %e, "could not remove a failed partial backup");
            }
        }
        let made = result?;
        if self.cancelled.load(Ordering::Relaxed) {
            // Abandoned while renaming: the run is over, and what it made is discarded.
            if let Err(e) = delete_backup(root.as_fd(), &final_name, &shown_root) {
                tracing::warn!(error = %e, "could not remove an abandoned backup");
            }
            return Err(ProviderError::new("the backup was abandoned"));
        }
        Ok(made)
    }

    fn copy(
        &self,
        root: std::os::fd::BorrowedFd<'_>,
        partial: &CStr,
        final_name: &CStr,
        shown_root: &str,
    ) -> Result<Copied, ProviderError> {
        let source_shown = self.source.display().to_string();
        let progress = &self.request.progress;
        let fail = |e: FsError| provider_error(e, shown_root);
        // The source, opened without following any link on the way.
        let src = open_dir_nofollow(&self.source).map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => ProviderError::coded(
                ProviderErrorCode::PathNotAllowed,
                format!(
                    "the data directory {source_shown} (or a directory above it) is a link now, and links are never followed: register the cluster again with its real path"
                ),
            ),
            e => ProviderError::with_source(
                format!("cannot open the data directory {source_shown}: {e}"),
                std::io::Error::from(e),
            ),
        })?;
        match rfs::statat(root, final_name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => {}
            Ok(_) => {
                return Err(ProviderError::new(format!(
                    "{} already exists",
                    shown(shown_root, &final_name.to_string_lossy())
                )))
            }
            Err(e) => return Err(fail(FsError::io("read", shown_root, e))),
        }
        let owners = rustix::process::geteuid().is_root();
        let base_id = self.request.base_backup_id.as_deref();
        let cluster_id = self.request.cluster.id.as_str();
        let hash = self.provider.hash;
        let open_base = |id: &str| Base::open(root, shown_root, id, cluster_id, owners, hash);
        // Free space, from metadata only, while another thread reads the base's manifest
        // (on a large tree each takes tens of milliseconds).
        let mut sizer = Sizer {
            needed: 0,
            files: base_id.map(|_| Vec::new()),
            base: &source_shown,
            cancelled: &self.cancelled,
            progress,
        };
        let (opened, walked) = std::thread::scope(|scope| {
            let opening = base_id.map(|id| {
                let thread = std::thread::Builder::new().name("backup-base".into());
                (id, thread.spawn_scoped(scope, move || open_base(id)))
            });
            let walked = walk::walk(src.as_fd(), &source_shown, &mut sizer);
            let opened = opening.map(|(id, opening)| {
                let opened = match opening {
                    Ok(thread) => thread
                        .join()
                        .unwrap_or_else(|_| Err("the thread reading it failed".to_owned())),
                    Err(_) => open_base(id),
                };
                (id, opened)
            });
            (opened, walked)
        });
        let mut base_notes = Vec::new();
        let link_from = opened.and_then(|(id, opened)| {
            opened
                .map_err(|why| {
                    base_notes.push(format!(
                        "every file was copied, since the previous backup {id} could not be linked from: {why}"
                    ));
                })
                .ok()
        });
        walked.map_err(fail)?;
        sizer.settle(link_from.as_ref());
        let vfs = rfs::fstatvfs(root).map_err(|e| fail(FsError::io("read", shown_root, e)))?;
        let free = vfs.f_bavail.saturating_mul(vfs.f_frsize);
        if sizer.needed > free {
            return Err(ProviderError::coded(
                ProviderErrorCode::InsufficientSpace,
                format!(
                    "the copy of {source_shown} needs {} bytes, the backup root {shown_root} has {free} free: free some space or move the backup root (--backup-root)",
                    sizer.needed
                ),
            ));
        }
        // A leftover of an earlier attempt with this id (not possible with fresh ids, but
        // cheap to rule out).
        remove_tree(root, partial, shown_root).map_err(fail)?;
        let partial_shown = shown(shown_root, &partial.to_string_lossy());
        let data_shown = shown(&partial_shown, DATA);
        let mkdir = |dir, name: &CStr, shown_as: &str| -> Result<OwnedFd, ProviderError> {
            rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                .map_err(|e| fail(FsError::io("create", shown_as, e)))?;
            let fd = open_dir_at(dir, name).map_err(|e| fail(FsError::io("open", shown_as, e)))?;
            // The umask may have narrowed 0700 further; make it exactly 0700.
            rfs::fchmod(&fd, Mode::from_raw_mode(0o700))
                .map_err(|e| fail(FsError::io("set the mode of", shown_as, e)))?;
            Ok(fd)
        };
        let partial_fd = mkdir(root, partial, &partial_shown)?;
        let data_fd = mkdir(partial_fd.as_fd(), c"data", &data_shown)?;
        let root_meta =
            fmeta(src.as_fd()).map_err(|e| fail(FsError::io("read", source_shown.as_str(), e)))?;
        let dest_anchor =
            walk::dup(data_fd.as_fd()).map_err(|e| fail(FsError::io("open", &data_shown, e)))?;
        let mut copier = Copier {
            dest: Chain::new(dest_anchor, data_shown.clone()),
            entries: Vec::new(),
            total_bytes: 0,
            vanished: Vec::new(),
            owners,
            base: &source_shown,
            dest_base: &data_shown,
            cancelled: &self.cancelled,
            progress,
            hooks: &self.provider.hooks,
            hash: self.provider.hash,
            inline: Inline::new(self.provider.hash),
            piped: Some(Piped::start(progress, self.provider.hash).map_err(fail)?),
            waiting: Vec::new(),
            link_from,
            verify_unchanged: self.provider.verify_unchanged,
            linked_bytes: 0,
            linked_files: 0,
            linker: None,
            batch: None,
            removed: Vec::new(),
            flusher: Flusher::new(partial_fd.as_fd()),
        };
        if copier.link_from.is_some() && !copier.verify_unchanged {
            copier.linker = Some(Linker::start(owners).map_err(fail)?);
        }
        walk::walk(src.as_fd(), &source_shown, &mut copier).map_err(fail)?;
        copier.finish().map_err(fail)?;
        let linked_bytes = copier.linked_bytes;
        let vanished = std::mem::take(&mut copier.vanished);
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            backup_id: self.request.backup_id.clone(),
            cluster_id: self.request.cluster.id.clone(),
            job_id: self.request.job_id.clone(),
            description: self.request.description.clone(),
            record: Some(catalogue_record(&self.request)),
            source: source_shown.clone(),
            owners_kept: owners,
            hash: self.provider.hash,
            root: Some(RootMeta {
                mode: root_meta.mode,
                uid: root_meta.uid,
                gid: root_meta.gid,
                mtime_ns: root_meta.mtime_ns(),
            }),
            entries: std::mem::take(&mut copier.entries),
            total_bytes: copier.total_bytes,
        };
        drop(copier);
        // Every entry in the copy with its type and size, nothing extra: catches a copy
        // altered behind the server's back before it is published. The manifest is written
        // meanwhile: both only read it, and on a large tree each takes tens of milliseconds.
        let mut checker =
            Checker::new(&manifest, Depth::Quick).watched(progress.clone(), self.cancelled.clone());
        let (written, walked) = std::thread::scope(|scope| {
            let writer = std::thread::Builder::new()
                .name("backup-manifest".into())
                .spawn_scoped(scope, || {
                    write_manifest(partial_fd.as_fd(), &manifest, &partial_shown)
                });
            let walked = walk::walk(data_fd.as_fd(), &data_shown, &mut checker);
            let written = match writer {
                Ok(writer) => writer.join().unwrap_or_else(|_| {
                    Err(FsError::Refused(
                        "the thread writing the manifest failed".into(),
                    ))
                }),
                // No thread to spare: write it here.
                Err(_) => write_manifest(partial_fd.as_fd(), &manifest, &partial_shown),
            };
            (written, walked)
        });
        written.map_err(fail)?;
        walked.map_err(fail)?;
        let (problems, more) = checker.finish();
        if !problems.is_empty() {
            return Err(ProviderError::new(format!(
                "the copy does not match its manifest, so it was discarded: {}",
                describe(&data_shown, &problems, more)
            )));
        }
        durable(partial_fd.as_fd(), &partial_shown).map_err(fail)?;
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(ProviderError::new("the backup was abandoned"));
        }
        rename_noreplace(root, partial, final_name).map_err(|e| {
            fail(FsError::io(
                "move the backup into",
                shown(shown_root, &final_name.to_string_lossy()),
                e,
            ))
        })?;
        rfs::fsync(root).map_err(|e| fail(FsError::io("sync", shown_root, e)))?;
        let mut notes = notes(&manifest, &vanished);
        notes.extend(base_notes);
        Ok(Copied {
            notes,
            size_bytes: manifest.total_bytes,
            linked_bytes,
        })
    }
}

/// `renameat2(RENAME_NOREPLACE)`, so an existing (even empty) directory is never replaced;
/// on a file system without it, a check then a plain `renameat`.
fn rename_noreplace(
    root: std::os::fd::BorrowedFd<'_>,
    from: &CStr,
    to: &CStr,
) -> Result<(), Errno> {
    match rfs::renameat_with(root, from, root, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            match rfs::statat(root, to, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(_) => Err(Errno::EXIST),
                Err(Errno::NOENT) => rfs::renameat(root, from, root, to),
                Err(e) => Err(e),
            }
        }
        other => other,
    }
}

fn write_manifest(
    partial: std::os::fd::BorrowedFd<'_>,
    manifest: &Manifest,
    partial_shown: &str,
) -> Result<(), FsError> {
    use std::io::Write;
    let shown_as = shown(partial_shown, MANIFEST);
    // Compact: a large tree's manifest is 40% smaller than indented, and every byte is
    // written, synced and read back by the next backup (`jq .` shows it indented).
    let json = serde_json::to_vec(manifest)
        .map_err(|e| FsError::Refused(format!("cannot encode the manifest: {e}")))?;
    let fd = rfs::openat(
        partial,
        MANIFEST,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| FsError::io("create", &shown_as, e))?;
    rfs::fchmod(&fd, Mode::from_raw_mode(0o600))
        .map_err(|e| FsError::io("set the mode of", &shown_as, e))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&json).map_err(|e| {
        FsError::io(
            "write",
            &shown_as,
            Errno::from_io_error(&e).unwrap_or(Errno::IO),
        )
    })
}

/// Makes everything written under `dir` since it was opened durable: file data, inodes and
/// directory entries, with one `syncfs(2)` of the file system `dir` is on.
///
/// Why this and not an fsync per entry: an fsync of a directory makes its entries (names →
/// inodes) durable, not the files' data, so a crash after one could leave a published copy
/// whose files are empty or hold zeros; making each file durable takes an fsync (a journal
/// commit and a cache flush) per file, which for thousands of small files is most of a
/// copy's time. One `syncfs` writes back every dirty page and inode of the file system and
/// waits once. Since Linux 5.8 it also answers any writeback error met on that file system
/// since `dir` was opened (the superblock's error sequence, sampled at `open`), and `dir` is
/// opened before anything is written under it, so a lost write fails the copy. Its cost is
/// that it also flushes unrelated writers of the same file system, which a backup root on its
/// own volume does not have. The rename that publishes the copy is made durable afterwards by
/// an fsync of its parent.
pub(crate) fn durable(dir: std::os::fd::BorrowedFd<'_>, shown_as: &str) -> Result<(), FsError> {
    rfs::syncfs(dir).map_err(|e| FsError::io("sync", shown_as, e))
}

/// "a, b, c and 3 more"
fn names(list: &[String]) -> String {
    let mut out = list
        .iter()
        .take(NOTE_NAMES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > NOTE_NAMES {
        out.push_str(&format!(" and {} more", list.len() - NOTE_NAMES));
    }
    out
}

/// Adds the note about `items`, if there are any: `one` words the note for a single item,
/// `many` for their count and the first of their `label`s.
fn push_note<T>(
    notes: &mut Vec<String>,
    items: &[T],
    label: impl Fn(&T) -> String,
    one: impl FnOnce(&T) -> String,
    many: impl FnOnce(usize, String) -> String,
) {
    match items {
        [] => {}
        [item] => notes.push(one(item)),
        _ => {
            let labels: Vec<String> = items.iter().map(label).collect();
            notes.push(many(items.len(), names(&labels)));
        }
    }
}

/// The sentences an operator must read about a backup that succeeded.
fn notes(manifest: &Manifest, vanished: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    let changed: Vec<&ManifestEntry> = manifest.files().filter(|e| e.changed).collect();
    push_note(
        &mut notes,
        &changed,
        |e| e.path.clone(),
        |e| {
            format!(
            "1 file changed while it was copied, so its copy may be torn: {} (quiesce the database with pre/post hooks)",
            e.path
        )
        },
        |n, names| {
            format!(
            "{n} files changed while they were copied, so their copies may be torn: {names} (quiesce the database with pre/post hooks)"
        )
        },
    );
    let outside: Vec<&ManifestEntry> = manifest.links().filter(|e| e.outside).collect();
    let target = |e: &ManifestEntry| e.target.clone().unwrap_or_default();
    push_note(
        &mut notes,
        &outside,
        |e| format!("{} -> {}", e.path, target(e)),
        |e| {
            format!(
                "link {} points outside the cluster to {}: its target is not in the backup",
                e.path,
                target(e)
            )
        },
        |n, names| {
            format!(
                "{n} links point outside the cluster, so their targets are not in the backup: {names}"
            )
        },
    );
    let skipped: Vec<&ManifestEntry> = manifest.skipped().collect();
    let kind_of = |e: &ManifestEntry| format!("{} ({})", e.path, e.kind.as_str());
    push_note(
        &mut notes,
        &skipped,
        |e| kind_of(e),
        |e| {
            format!(
                "skipped 1 entry that is not a file, directory or link: {}",
                kind_of(e)
            )
        },
        |n, names| format!("skipped {n} entries that are not files, directories or links: {names}"),
    );
    push_note(
        &mut notes,
        vanished,
        String::clone,
        |path| {
            format!("1 entry disappeared while the copy ran, so it is not in the backup: {path}")
        },
        |n, names| {
            format!(
                "{n} entries disappeared while the copy ran, so they are not in the backup: {names}"
            )
        },
    );
    notes
}

/// Reads a backup directory's manifest and compares the copy with it in full: every entry
/// present with its type and size, every file's checksum (re-reading every byte; holes are
/// hashed without being read), every link's target, modes and modification times (owners
/// too when the backup kept them), and nothing extra. Never changes the backup. Answers the
/// manifest and the problems found (the first 20, then a count of the rest).
pub fn inspect(backup_dir: &Path) -> Result<(Manifest, Vec<Problem>, usize), String> {
    let shown_dir = backup_dir.display().to_string();
    let dir = rfs::open(backup_dir, dir_flags() & !OFlags::NOFOLLOW, Mode::empty())
        .map_err(|e| format!("cannot open {shown_dir}: {e}"))?;
    let manifest = restore::read_manifest_at(dir.as_fd(), &shown_dir)?;
    let data_shown = shown(&shown_dir, DATA);
    let data =
        open_dir_at(dir.as_fd(), c"data").map_err(|e| format!("cannot open {data_shown}: {e}"))?;
    let (problems, more) = {
        let mut checker = Checker::new(&manifest, Depth::Full);
        walk::walk(data.as_fd(), &data_shown, &mut checker)
            .map_err(|e| format!("cannot check {data_shown}: {e}"))?;
        checker.finish()
    };
    Ok((manifest, problems, more))
}

/// Re-reads a backup directory and checks it against its manifest (see [`inspect`]):
/// answers the manifest when everything matches, else the first problems in one sentence.
pub fn verify(backup_dir: &Path) -> Result<Manifest, String> {
    let (manifest, problems, more) = inspect(backup_dir)?;
    if problems.is_empty() {
        return Ok(manifest);
    }
    let data_shown = shown(&backup_dir.display().to_string(), DATA);
    Err(format!(
        "{} does not match its manifest: {}",
        backup_dir.display(),
        describe(&data_shown, &problems, more)
    ))
}

#[cfg(test)]
mod post_hook_tests {
    use super::PostHookOnDrop;

    #[test]
    fn an_abandoned_backup_runs_its_post_hook_on_its_own_and_a_finished_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let hook = format!("echo \"started $BACKUP_ID\" >> '{}'", log.display());
        // WHEN a guard is disarmed (the post-hook ran in the call) THEN nothing runs
        PostHookOnDrop::new(&hook, vec![("BACKUP_ID", "b1".into())], "b1").disarm();
        // WHEN one is dropped armed (the call was abandoned) THEN the hook runs, with the
        // run's variables
        drop(PostHookOnDrop::new(
            &hook,
            vec![("BACKUP_ID", "b2".into())],
            "b2",
        ));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read_to_string(&log).is_ok_and(|t| t.ends_with('\n'))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "started b2\n");
    }
}
