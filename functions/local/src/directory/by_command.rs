//! The `command` provider (SPEC §15): a cluster's own backup command (such as
//! `pg_basebackup -D "$BACKUP_DIR" -X stream`) fills an empty private directory, which is
//! then checksummed in place into the same manifest as a directory backup and renamed into
//! place the same way.
//!
//! # A backup, step by step
//! 1. The cluster's `path` (its database's data directory) is checked against the
//!    [`PathPolicy`](crate::PathPolicy) again, as a directory cluster's is.
//! 2. `<backup-root>/.<backup-id>.partial/data` is made (`0700`; owned by the `runAs` user
//!    when the server is root, so the command can write it).
//! 3. The command runs with `sh -c` ([`crate::command`]): `BACKUP_DIR` and the variables of
//!    the hooks. Exit 0 goes on; anything else fails `provider_error` with the end of its
//!    stderr; past its timeout its whole process group is killed and the run fails
//!    `provider_timeout`. The partial directory is removed on every failure.
//! 4. The tree it left is walked and hashed in place ([`super::index`]), the manifest
//!    written (`ownersKept: true`: the files are exactly the command's), and the partial
//!    directory renamed to `<backup-id>` in one `rename`.
//!
//! # Decisions
//! - **`BACKUP_DIR` for another user.** The backup root is `0700` and the server's, so a
//!   `runAs` user cannot reach a directory inside it by its path. Rather than open the
//!   backup root to others, the command inherits a descriptor of its directory and
//!   `BACKUP_DIR` is `/proc/self/fd/N`, which the kernel resolves for that process (and
//!   its children, which inherit the descriptor) without searching the directories above.
//!   It works as a path for every tool; a process that closes the descriptors it inherited
//!   (a daemon) loses it. For the server's own user `BACKUP_DIR` is the real path.
//! - **Restore** with a restore command: the command runs with `BACKUP_DIR` (the backup's
//!   data, to be read, never changed) and `TARGET_DIR` (an empty hidden sibling
//!   `.<name>.restore-<restore-id>` of the requested path, `0700`, the `runAs` user's), as
//!   that user; on exit 0 the sibling is renamed to the requested path (which must not exist
//!   or be an empty directory, and must pass the path policy), on anything else it is
//!   removed. The restored cluster's target is the requested one, with its path canonical.
//!   For another user `BACKUP_DIR` is again `/proc/self/fd/N`. `TARGET_DIR` is always
//!   `/proc/self/fd/N`, a descriptor of the sibling, which was made through a descriptor of
//!   the parent opened without following links, and the rename goes through that same
//!   descriptor: a directory above the path swapped for a link while the command runs
//!   moves neither the command's writes nor the result (SPEC §12).
//! - **Restore without a restore command** is the directory restore's copy, which this
//!   server does not have yet: it answers a provider error that says what to do instead.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backup_core::api::{ClusterTarget, DEFAULT_COMMAND_TIMEOUT_SECONDS};
use backup_engine::ports::BackupProvider;
use backup_engine::{
    BackupHandle, BackupRequest, Creation, ProviderError, ProviderErrorCode, ProviderStatus,
    Restoration, RestoreHandle, RestoreRequest, TargetProblem,
};
use rustix::fs::{self as rfs, Gid, Mode, Uid};

use super::index::Indexer;
use super::manifest::{Manifest, RootMeta, MANIFEST_VERSION};
use super::walk::{self, fmeta, open_dir_at, remove_tree, shown, FsError};
use super::{
    catalogue_record, notes, provider_error, rename_noreplace, run_env, write_manifest,
    CancelOnDrop, DirectoryProvider, DATA,
};
use crate::command::{resolve_user, CommandFailure, RunAs, Shell};
use crate::policy::PATH_NOT_ALLOWED;

/// The code of a `runAs` user the server cannot run commands as.
pub const RUN_AS_NOT_ALLOWED: &str = "run_as_not_allowed";

/// Backs `command` clusters up under the same backup root as [`DirectoryProvider`].
#[derive(Debug, Clone)]
pub struct CommandProvider {
    dir: DirectoryProvider,
}

impl CommandProvider {
    /// Shares `dir`'s backup root, policy and clean-up of partial backups.
    pub fn new(dir: DirectoryProvider) -> CommandProvider {
        CommandProvider { dir }
    }
}

/// The staging directory of one backup: `.<id>.partial` and its `data`.
struct Stage {
    partial: CString,
    final_name: CString,
    partial_fd: OwnedFd,
    data_fd: OwnedFd,
    partial_shown: String,
}

/// A `runAs` user this server can run commands as (none is the server's own user).
async fn check_run_as(user: Option<&str>) -> Result<(), TargetProblem> {
    let Some(user) = user else { return Ok(()) };
    resolve_user(user)
        .await
        .map(|_| ())
        .map_err(|message| TargetProblem {
            field: "runAs",
            code: RUN_AS_NOT_ALLOWED,
            message,
        })
}

fn timeout_of(seconds: Option<u64>) -> Duration {
    Duration::from_secs(seconds.unwrap_or(DEFAULT_COMMAND_TIMEOUT_SECONDS))
}

/// What a failed command becomes: a timeout is `provider_timeout`, the rest
/// `provider_error`, each with the end of the command's stderr.
fn command_error(failure: CommandFailure) -> ProviderError {
    let code = match failure {
        CommandFailure::TimedOut { .. } => ProviderErrorCode::ProviderTimeout,
        _ => ProviderErrorCode::ProviderError,
    };
    ProviderError::coded(code, failure.to_string())
}

#[async_trait]
impl BackupProvider for CommandProvider {
    fn kind(&self) -> &'static str {
        "command"
    }

    /// The path as a directory cluster's (stored canonical), and a `runAs` user this
    /// server can run commands as.
    async fn check_target(&self, target: &ClusterTarget) -> Result<ClusterTarget, TargetProblem> {
        let ClusterTarget::Command { path, run_as, .. } = target else {
            return Ok(target.clone());
        };
        let path = path.clone();
        let canonical = self.dir.with_policy(move |p| p.resolve(&path)).await?;
        check_run_as(run_as.as_deref()).await?;
        Ok(target.with_path(canonical.to_string_lossy().into_owned()))
    }

    /// A command backup restores into a path checked as a directory restore's is (the
    /// policy, absent or empty, not inside the source); a request for a command cluster
    /// also names a `runAs` user this server can run commands as, as a registration does.
    async fn check_restore_target(
        &self,
        source: &backup_engine::ClusterRecord,
        target: &ClusterTarget,
        zone: Option<&str>,
    ) -> Result<ClusterTarget, TargetProblem> {
        let ClusterTarget::Command { path, run_as, .. } = target else {
            return self.dir.check_restore_target(source, target, zone).await;
        };
        check_run_as(run_as.as_deref()).await?;
        let as_directory = ClusterTarget::directory(path.clone());
        let checked = self
            .dir
            .check_restore_target(source, &as_directory, zone)
            .await?;
        Ok(target.with_path(checked.path().unwrap_or(path).to_owned()))
    }

    async fn recheck_target(&self, target: &ClusterTarget) -> Result<(), TargetProblem> {
        match target {
            ClusterTarget::Command { path, .. } => {
                let path = path.clone();
                self.dir
                    .with_policy(move |p| p.recheck(&path).map(|_| ()))
                    .await
            }
            _ => Ok(()),
        }
    }

    fn planned_location(&self, request: &BackupRequest) -> String {
        self.dir.planned_location(request)
    }

    /// Runs the backup command in this call: the backup is [`Creation::Done`].
    async fn create(&self, request: &BackupRequest) -> Result<Creation, ProviderError> {
        let ClusterTarget::Command {
            path,
            backup_command,
            run_as,
            command_timeout_seconds,
            ..
        } = &request.cluster.target
        else {
            return Err(ProviderError::new(format!(
                "cluster {} is not a command cluster",
                request.cluster.id
            )));
        };
        let id = &request.backup_id;
        if !backup_engine::ids::is_valid_id(id) {
            return Err(ProviderError::new(format!("`{id}` is not a backup id")));
        }
        let stored = path.clone();
        self.dir
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
        let user = match run_as {
            Some(name) => Some(resolve_user(name).await.map_err(ProviderError::new)?),
            None => None,
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(cancelled.clone());
        let provider = self.dir.clone();
        let (for_stage, owner) = (id.clone(), user.clone());
        let stage = tokio::task::spawn_blocking(move || provider.stage(&for_stage, owner.as_ref()))
            .await
            .map_err(|e| ProviderError::with_source("the staging task stopped", e))??;
        let mut env = run_env(request);
        let me = rustix::process::geteuid().as_raw();
        let other_user = user.as_ref().is_some_and(|u| u.uid != me);
        let backup_dir = if other_user {
            format!("/proc/self/fd/{}", stage.data_fd.as_raw_fd())
        } else {
            shown(&stage.partial_shown, DATA)
        };
        env.push(("BACKUP_DIR", backup_dir));
        let ran = Shell {
            role: "backup command",
            command: backup_command,
            env,
            run_as: user.as_ref(),
            cwd: other_user.then_some(std::path::Path::new("/")),
            timeout: timeout_of(*command_timeout_seconds),
            progress: &request.progress,
            inherit: if other_user {
                vec![stage.data_fd.as_raw_fd()]
            } else {
                Vec::new()
            },
        }
        .run()
        .await;
        let provider = self.dir.clone();
        let request_copy = request.clone();
        let published = tokio::task::spawn_blocking(move || {
            let result = match ran {
                Ok(()) => provider.publish(&stage, &request_copy, &cancelled),
                Err(failure) => Err(command_error(failure)),
            };
            if result.is_err() {
                let shown_root = provider.root().display().to_string();
                if let Err(e) = remove_tree(provider.root_fd.as_fd(), &stage.partial, &shown_root) {
                    tracing::warn!(error = %e, "could not remove a failed partial backup");
                }
            }
            result
        })
        .await
        .map_err(|e| ProviderError::with_source("the manifest task stopped", e))?;
        let (notes, size_bytes) = published?;
        let mut handle = BackupHandle::new(
            id.clone(),
            self.dir.backup_dir(id).to_string_lossy().into_owned(),
        );
        handle.notes = notes;
        handle.size_bytes = Some(size_bytes);
        Ok(Creation::Done(handle))
    }

    async fn status(&self, handle: &BackupHandle) -> Result<ProviderStatus, ProviderError> {
        self.dir.backup_status(handle).await
    }

    async fn delete(&self, handle: &BackupHandle) -> Result<(), ProviderError> {
        self.dir.remove_backup(handle).await
    }

    /// A command backup is checked exactly as a directory backup is (same manifest).
    async fn verify(
        &self,
        handle: &BackupHandle,
    ) -> Result<Vec<backup_core::api::VerifyProblem>, ProviderError> {
        BackupProvider::verify(&self.dir, handle).await
    }

    /// Runs the source cluster's restore command into a hidden sibling of the requested
    /// path and renames it into place (see the module notes).
    async fn restore(&self, request: &RestoreRequest) -> Result<Restoration, ProviderError> {
        // A source that is no longer a command cluster (deleted since: the engine rebuilds
        // it as a directory of unknown path) has no restore command to run.
        let (restore_command, run_as, command_timeout_seconds) = match &request.source.target {
            ClusterTarget::Command {
                restore_command,
                run_as,
                command_timeout_seconds,
                ..
            } => (
                restore_command.as_ref(),
                run_as.as_ref(),
                *command_timeout_seconds,
            ),
            _ => (None, None, None),
        };
        let Some(restore_command) = restore_command else {
            // Without a restore command the files are copied back as a directory backup's
            // are (checked against the manifest, owners and modes as recorded), into a
            // directory cluster: the source's commands would act on the source's database.
            let (ClusterTarget::Command { path, .. } | ClusterTarget::Directory { path, .. }) =
                &request.target
            else {
                return Err(ProviderError::new(
                    "a command backup is restored into a directory: give its path",
                ));
            };
            let as_directory = RestoreRequest {
                target: ClusterTarget::directory(path.clone()),
                ..request.clone()
            };
            return BackupProvider::restore(&self.dir, &as_directory).await;
        };
        let Some(requested) = request.target.path() else {
            return Err(ProviderError::new(
                "a command backup is restored into a directory: give its path",
            ));
        };
        if !backup_engine::ids::is_valid_id(&request.restore_id) {
            return Err(ProviderError::new(format!(
                "`{}` is not a restore id",
                request.restore_id
            )));
        }
        let user = match run_as {
            Some(name) => Some(resolve_user(name).await.map_err(ProviderError::new)?),
            None => None,
        };
        let (place, id, owner) = (
            requested.to_owned(),
            request.restore_id.clone(),
            user.clone(),
        );
        let policy = self.dir.policy.clone();
        let handle = self.dir.clone();
        let backup = request.backup.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let backup_data = handle.open_backup_data(&backup)?;
            prepare_target(&policy, &place, &id, owner.as_ref()).map(|t| (t, backup_data))
        })
        .await
        .map_err(|e| ProviderError::with_source("the restore task stopped", e))?;
        let (target, backup_data) = prepared?;
        let me = rustix::process::geteuid().as_raw();
        let other_user = user.as_ref().is_some_and(|u| u.uid != me);
        let mut env = vec![
            ("CLUSTER_ID", request.cluster_id.clone()),
            ("SOURCE_CLUSTER_ID", request.source.id.clone()),
            ("BACKUP_ID", request.backup.backup_id.clone()),
            (
                "TARGET_DIR",
                format!("/proc/self/fd/{}", target.sibling_fd.as_raw_fd()),
            ),
        ];
        env.push((
            "BACKUP_DIR",
            if other_user {
                format!("/proc/self/fd/{}", backup_data.as_raw_fd())
            } else {
                format!("{}/{DATA}", request.backup.location)
            },
        ));
        let ran = Shell {
            role: "restore command",
            command: restore_command,
            env,
            run_as: user.as_ref(),
            cwd: other_user.then_some(std::path::Path::new("/")),
            timeout: timeout_of(command_timeout_seconds),
            progress: &request.progress,
            inherit: if other_user {
                vec![backup_data.as_raw_fd(), target.sibling_fd.as_raw_fd()]
            } else {
                vec![target.sibling_fd.as_raw_fd()]
            },
        }
        .run()
        .await;
        drop(backup_data);
        let mut target = target;
        let placed = tokio::task::spawn_blocking(move || {
            // On failure, dropping `target` removes the sibling.
            match ran {
                Ok(()) => target.place().map(|()| target.final_path.clone()),
                Err(failure) => Err(command_error(failure)),
            }
        })
        .await
        .map_err(|e| ProviderError::with_source("the restore task stopped", e))??;
        Ok(Restoration::Done(
            request
                .target
                .with_path(placed.to_string_lossy().into_owned()),
        ))
    }

    /// Removes what restores into `target` left when the server stopped: a restore
    /// command's `.<name>.restore-<id>`, and a copy's `.<name>.restoring-<id>` (a backup
    /// restored without a restore command is copied as a directory backup is).
    async fn discard_interrupted_restore(
        &self,
        target: &ClusterTarget,
    ) -> Result<(), ProviderError> {
        super::discard_siblings(target, ".restore-").await?;
        super::discard_siblings(target, ".restoring-").await
    }

    /// A command restore settles in its call: there is never anything left to settle.
    async fn restore_status(
        &self,
        handle: &RestoreHandle,
    ) -> Result<backup_engine::RestoreStatus, ProviderError> {
        Err(ProviderError::new(format!(
            "the restore of cluster {} ended in its call; there is nothing to settle",
            handle.cluster_id
        )))
    }

    /// A failed command restore removes its hidden directory itself; a leftover one (the
    /// process stopped meanwhile) is removed here when the handle names it.
    async fn discard_restore(&self, handle: &RestoreHandle) -> Result<(), ProviderError> {
        let path = std::path::PathBuf::from(&handle.location);
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') && n.contains(".restore-"));
        if !hidden {
            return Ok(());
        }
        tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ProviderError::with_source(
                format!("cannot remove {}", path.display()),
                e,
            )),
            _ => Ok(()),
        })
        .await
        .map_err(|e| ProviderError::with_source("the discard task stopped", e))?
    }
}

/// Where a restore puts the data: an empty hidden sibling of the requested path, renamed
/// to it at the end, all through a descriptor of the parent directory opened without
/// following links (SPEC §12): a directory above it swapped for a link while the command
/// runs changes neither where the command writes (`TARGET_DIR` is the sibling's own
/// descriptor) nor where the result is renamed to. Dropped before it is placed (a failed
/// or abandoned restore), it removes the sibling.
struct RestoreTarget {
    parent: OwnedFd,
    parent_shown: String,
    /// The sibling, open: what `TARGET_DIR` names (`/proc/self/fd/N`).
    sibling_fd: OwnedFd,
    sibling: CString,
    name: CString,
    /// The requested path is an empty directory, which the rename replaces.
    replace: bool,
    final_path: std::path::PathBuf,
    placed: bool,
}

/// Checks the requested path as a directory restore's (the policy, its parent existing and
/// no link, the path absent or an empty directory) and makes the hidden sibling, owned by
/// `owner` when the server is root.
fn prepare_target(
    policy: &crate::PathPolicy,
    requested: &str,
    restore_id: &str,
    owner: Option<&RunAs>,
) -> Result<RestoreTarget, ProviderError> {
    if !backup_engine::ids::is_valid_id(restore_id) {
        return Err(ProviderError::new(format!(
            "`{restore_id}` is not a restore id"
        )));
    }
    let final_path = policy.resolve_restore_target(requested).map_err(|p| {
        let code = if p.code == PATH_NOT_ALLOWED {
            ProviderErrorCode::PathNotAllowed
        } else {
            ProviderErrorCode::ProviderError
        };
        ProviderError::coded(code, p.message)
    })?;
    let (Some(parent), Some(name)) = (final_path.parent(), final_path.file_name()) else {
        return Err(ProviderError::new(format!(
            "{requested} cannot be restored into: give an absolute path such as \
             /var/lib/postgresql/16/restored"
        )));
    };
    let parent_shown = parent.display().to_string();
    let parent_fd = walk::open_dir_nofollow(parent).map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => ProviderError::coded(
            ProviderErrorCode::PathNotAllowed,
            format!(
                "{parent_shown} (or a directory above it) is a link now, and links are never \
                 followed: restore into a real directory"
            ),
        ),
        e => ProviderError::new(format!("cannot open {parent_shown}: {e}")),
    })?;
    let name_text = name.to_string_lossy();
    let name = CString::new(name.as_encoded_bytes())
        .map_err(|_| ProviderError::new("a path holds a NUL byte"))?;
    let shown_target = final_path.display().to_string();
    let replace = super::restore::target_state(parent_fd.as_fd(), &name, &shown_target)?;
    let sibling = CString::new(format!(".{name_text}.restore-{restore_id}"))
        .map_err(|_| ProviderError::new("a path holds a NUL byte"))?;
    let sibling_shown = shown(&parent_shown, &sibling.to_string_lossy());
    rfs::mkdirat(&parent_fd, &sibling, Mode::from_raw_mode(0o700))
        .map_err(|e| ProviderError::new(format!("cannot create {sibling_shown}: {e}")))?;
    let opened = open_dir_at(parent_fd.as_fd(), &sibling).and_then(|fd| {
        rfs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
        if let Some(user) = owner {
            if rustix::process::geteuid().is_root() {
                rfs::fchown(
                    &fd,
                    Some(Uid::from_raw(user.uid)),
                    Some(Gid::from_raw(user.gid)),
                )?;
            }
        }
        Ok(fd)
    });
    let sibling_fd = match opened {
        Ok(fd) => fd,
        Err(e) => {
            let _ = remove_tree(parent_fd.as_fd(), &sibling, &parent_shown);
            return Err(ProviderError::new(format!(
                "cannot prepare {sibling_shown}: {e}"
            )));
        }
    };
    Ok(RestoreTarget {
        parent: parent_fd,
        parent_shown,
        sibling_fd,
        sibling,
        name,
        replace,
        final_path,
        placed: false,
    })
}

impl RestoreTarget {
    /// Renames the filled sibling to the requested path, in the parent opened at the start
    /// (an empty directory there is replaced; anything else that appeared meanwhile is
    /// never overwritten).
    fn place(&mut self) -> Result<(), ProviderError> {
        super::restore::into_place(
            self.parent.as_fd(),
            &self.sibling,
            &self.name,
            self.replace,
            &self.final_path.display().to_string(),
        )?;
        self.placed = true;
        if let Err(e) = rfs::fsync(&self.parent) {
            tracing::warn!(error = %e, path = %self.parent_shown, "could not sync the restore's parent");
        }
        Ok(())
    }
}

impl Drop for RestoreTarget {
    fn drop(&mut self) {
        if self.placed {
            return;
        }
        if let Err(e) = remove_tree(self.parent.as_fd(), &self.sibling, &self.parent_shown) {
            tracing::warn!(error = %e, "could not remove a failed restore");
        }
    }
}

impl DirectoryProvider {
    /// Opens a complete backup's `data/` (read only), checking the handle is one of ours.
    fn open_backup_data(&self, handle: &BackupHandle) -> Result<OwnedFd, ProviderError> {
        let id = self.checked_id(handle)?;
        let dir = open_dir_at(self.root_fd.as_fd(), &id).map_err(|e| {
            ProviderError::with_source(
                format!("backup {} is not in the backup root", handle.backup_id),
                std::io::Error::from(e),
            )
        })?;
        open_dir_at(dir.as_fd(), c"data").map_err(|e| {
            ProviderError::with_source(
                format!("backup {} has no data directory", handle.backup_id),
                std::io::Error::from(e),
            )
        })
    }

    /// Makes `.<id>.partial/data`, empty and private (owned by `owner` when the server is
    /// root), for a backup command to fill.
    fn stage(&self, id: &str, owner: Option<&RunAs>) -> Result<Stage, ProviderError> {
        let shown_root = self.root.display().to_string();
        let fail = |e: FsError| provider_error(e, &shown_root);
        let root = self.root_fd.as_fd();
        let partial = CString::new(format!(".{id}.partial"))
            .map_err(|_| ProviderError::new(format!("`{id}` is not a backup id")))?;
        let final_name = CString::new(id)
            .map_err(|_| ProviderError::new(format!("`{id}` is not a backup id")))?;
        match rfs::statat(root, &final_name, rfs::AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => {}
            Ok(_) => {
                return Err(ProviderError::new(format!(
                    "{} already exists",
                    shown(&shown_root, id)
                )))
            }
            Err(e) => return Err(fail(FsError::io("read", shown_root.as_str(), e))),
        }
        remove_tree(root, &partial, &shown_root).map_err(fail)?;
        let partial_shown = shown(&shown_root, &partial.to_string_lossy());
        let data_shown = shown(&partial_shown, DATA);
        let mkdir = |dir, name: &CStr, shown_as: &str| -> Result<OwnedFd, ProviderError> {
            rfs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                .map_err(|e| fail(FsError::io("create", shown_as, e)))?;
            let fd = open_dir_at(dir, name).map_err(|e| fail(FsError::io("open", shown_as, e)))?;
            rfs::fchmod(&fd, Mode::from_raw_mode(0o700))
                .map_err(|e| fail(FsError::io("set the mode of", shown_as, e)))?;
            Ok(fd)
        };
        let partial_fd = mkdir(root, &partial, &partial_shown)?;
        let data_fd = mkdir(partial_fd.as_fd(), c"data", &data_shown)?;
        if let Some(user) = owner {
            if rustix::process::geteuid().is_root() {
                rfs::fchown(
                    &data_fd,
                    Some(Uid::from_raw(user.uid)),
                    Some(Gid::from_raw(user.gid)),
                )
                .map_err(|e| fail(FsError::io("give to the user", &data_shown, e)))?;
            }
        }
        Ok(Stage {
            partial,
            final_name,
            partial_fd,
            data_fd,
            partial_shown,
        })
    }

    /// Writes the manifest of what the command left, in place, and renames the backup
    /// into place: the notes and size of the backup.
    fn publish(
        &self,
        stage: &Stage,
        request: &BackupRequest,
        cancelled: &AtomicBool,
    ) -> Result<(Vec<String>, u64), ProviderError> {
        let shown_root = self.root.display().to_string();
        let fail = |e: FsError| provider_error(e, &shown_root);
        let root = self.root_fd.as_fd();
        let data_shown = shown(&stage.partial_shown, DATA);
        // Whatever mode the command gave it, the backup's data stays private.
        rfs::fchmod(&stage.data_fd, Mode::from_raw_mode(0o700))
            .map_err(|e| fail(FsError::io("set the mode of", &data_shown, e)))?;
        let root_meta = fmeta(stage.data_fd.as_fd())
            .map_err(|e| fail(FsError::io("read", data_shown.as_str(), e)))?;
        let mut indexer = Indexer::new(&data_shown, cancelled, &request.progress, self.hash);
        walk::walk(stage.data_fd.as_fd(), &data_shown, &mut indexer).map_err(fail)?;
        let ClusterTarget::Command { path, .. } = &request.cluster.target else {
            return Err(ProviderError::new("not a command cluster"));
        };
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            backup_id: request.backup_id.clone(),
            cluster_id: request.cluster.id.clone(),
            job_id: request.job_id.clone(),
            description: request.description.clone(),
            record: Some(catalogue_record(request)),
            source: path.clone(),
            owners_kept: true,
            hash: self.hash,
            root: Some(RootMeta {
                mode: root_meta.mode,
                uid: root_meta.uid,
                gid: root_meta.gid,
                mtime_ns: root_meta.mtime_ns(),
            }),
            total_bytes: indexer.total_bytes,
            entries: std::mem::take(&mut indexer.entries),
        };
        write_manifest(stage.partial_fd.as_fd(), &manifest, &stage.partial_shown).map_err(fail)?;
        // The command may have left its files in the page cache only: they, the manifest and
        // the directories are made durable in one wait before the rename publishes them.
        super::durable(stage.partial_fd.as_fd(), &stage.partial_shown).map_err(fail)?;
        if cancelled.load(Ordering::Relaxed) {
            return Err(ProviderError::new("the backup was abandoned"));
        }
        rename_noreplace(root, &stage.partial, &stage.final_name).map_err(|e| {
            fail(FsError::io(
                "move the backup into",
                shown(&shown_root, &stage.final_name.to_string_lossy()),
                e,
            ))
        })?;
        rfs::fsync(root).map_err(|e| fail(FsError::io("sync", shown_root.as_str(), e)))?;
        Ok((notes(&manifest, &[]), manifest.total_bytes))
    }
}
