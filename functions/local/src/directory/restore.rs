//! Restoring a directory backup into a new data directory (SPEC §14).
//!
//! The backup's `data/` is walked through descriptors (every entry opened with
//! `O_NOFOLLOW`, as a backup is made) and copied (never hard-linked: the restored database
//! writes to its files, and a link would write into the backup) into a hidden sibling of
//! the target, `.<name>.restoring-<restore-id>` (`0700`) in the target's parent. Each file is
//! hashed as it is written and compared with the manifest in the same pass; directories,
//! links (as links) and holes are recreated, and modes, modification times (ns) and, when
//! the server runs as root, owners are applied as the manifest records them, the target's
//! own from the manifest's `root`. Anything that differs from the manifest (content, size,
//! type, an entry missing or one the manifest does not list) aborts the restore, naming the
//! entry, and removes the sibling. Only a complete, checked copy is renamed into place.
//!
//! # Decisions
//! - **Into place.** A target that does not exist is created by
//!   `renameat2(RENAME_NOREPLACE)`, so something created there meanwhile is never replaced.
//!   A target that is an empty directory is replaced by a plain `renameat`: the kernel
//!   replaces a directory only when it is empty, checking that and replacing it in one step,
//!   so a file that appeared in it since it was checked makes the rename fail (`ENOTEMPTY`)
//!   rather than vanish, and a link or file swapped in for it makes it fail (`ENOTDIR`). In
//!   both cases the restore fails clearly and removes its sibling. (`rmdir` then a
//!   no-replace rename would leave a moment with no directory there at all.)
//! - **The parent** is opened from `/` component by component without following links, so
//!   the caller passes a canonical parent (the policy's); a parent that became a link since
//!   fails the restore.
//! - **Owners** are applied only as root (anyone else cannot give files away); not as root,
//!   set-user-id, set-group-id and sticky bits are dropped, as a backup made by a server that
//!   is not root drops them.
//! - **Access times** are set to the modification times: the manifest does not record them.
//! - **Skipped entries** (FIFOs, sockets, devices the backup listed but did not copy) are not
//!   recreated: the backup's notes named them when it was made.
//! - **Version-1 manifests** carry no metadata: such entries take the backup copy's own
//!   modes and times.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use backup_engine::{Progress, ProviderError, ProviderErrorCode};
use rustix::fs::{self as rfs, AtFlags, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use super::copy::{hex, stream, Moved};
use super::digest::{Digester, Ended, Piped};
use super::flusher::Flusher;
use super::manifest::{EntryKind, HashAlgorithm, Manifest, ManifestEntry};
use super::walk::{
    self, dir_flags, fmeta, open_dir_at, open_dir_nofollow, remove_tree, shown, Chain, Entry,
    FsError, Meta, Visitor,
};
use super::{rename_noreplace, DATA, MANIFEST};

/// Reads a backup directory's manifest.
pub fn read_manifest(backup_dir: &Path) -> Result<Manifest, String> {
    let shown_dir = backup_dir.display().to_string();
    let dir = rfs::open(backup_dir, dir_flags() & !OFlags::NOFOLLOW, Mode::empty())
        .map_err(|e| format!("cannot open {shown_dir}: {e}"))?;
    read_manifest_at(dir.as_fd(), &shown_dir)
}

pub(crate) fn read_manifest_at(dir: BorrowedFd<'_>, shown_dir: &str) -> Result<Manifest, String> {
    let fd = rfs::openat(
        dir,
        MANIFEST,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot read the manifest of {shown_dir}: {e}"))?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut text)
        .map_err(|e| format!("cannot read the manifest of {shown_dir}: {e}"))?;
    serde_json::from_slice(&text)
        .map_err(|e| format!("the manifest of {shown_dir} is unreadable: {e}"))
}

/// The name of the hidden sibling a restore writes into.
pub fn sibling_name(target_name: &str, restore_id: &str) -> String {
    format!(".{target_name}.restoring-{restore_id}")
}

/// Copies the backup in `backup_dir` (described by `manifest`, its own manifest) to
/// `target`, an absolute path whose parent is canonical and exists, and which must not exist
/// or be an empty directory (see the module docs). Answers `target` once the copy is in
/// place; on any failure nothing is left (no sibling, no target). `restore_id` names the
/// sibling; `progress` ticks as bytes move; setting `cancelled` stops the copy at the next
/// entry or chunk.
pub fn restore(
    backup_dir: &Path,
    manifest: &Manifest,
    target: &Path,
    restore_id: &str,
    progress: &Progress,
    cancelled: &AtomicBool,
) -> Result<PathBuf, ProviderError> {
    let target_shown = target.display().to_string();
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(ProviderError::new(format!(
            "{target_shown} cannot be restored into: write the path of a directory to create"
        )));
    };
    let Some(name) = name.to_str() else {
        return Err(ProviderError::new(format!(
            "{target_shown} is not UTF-8: choose another name"
        )));
    };
    if restore_id.is_empty() || restore_id.contains('/') {
        return Err(ProviderError::new(format!(
            "`{restore_id}` cannot name a restore"
        )));
    }
    let parent_shown = parent.display().to_string();
    let parent_fd = open_dir_nofollow(parent).map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => ProviderError::coded(
            ProviderErrorCode::PathNotAllowed,
            format!("{parent_shown} (or a directory above it) is a link now, and links are never followed: restore into a real directory"),
        ),
        e => ProviderError::new(format!("cannot open {parent_shown}: {e}")),
    })?;
    let name_c = CString::new(name)
        .map_err(|_| ProviderError::new(format!("{target_shown} holds a NUL byte")))?;
    let sibling = sibling_name(name, restore_id);
    let sibling_c = CString::new(sibling.as_str())
        .map_err(|_| ProviderError::new(format!("`{restore_id}` cannot name a restore")))?;
    let replace = target_state(parent_fd.as_fd(), &name_c, &target_shown)?;
    let result = copy_into(
        backup_dir,
        manifest,
        parent_fd.as_fd(),
        &sibling_c,
        &parent_shown,
        progress,
        cancelled,
    )
    .and_then(|()| {
        if cancelled.load(Ordering::Relaxed) {
            return Err(ProviderError::new("the restore was abandoned"));
        }
        into_place(
            parent_fd.as_fd(),
            &sibling_c,
            &name_c,
            replace,
            &target_shown,
        )
    });
    if let Err(e) = result {
        if let Err(rm) = remove_tree(parent_fd.as_fd(), &sibling_c, &parent_shown) {
            tracing::warn!(error = %rm, "could not remove a failed restore's copy");
        }
        return Err(e);
    }
    if let Err(e) = rfs::fsync(&parent_fd) {
        tracing::warn!(error = %e, path = %parent_shown, "could not sync the restore's parent");
    }
    Ok(target.to_path_buf())
}

/// Removes a restored tree that was put in place by a restore abandoned at that moment.
/// Best effort: a failure is logged.
pub(crate) fn discard(target: &Path) {
    let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let removed = open_dir_nofollow(parent)
        .map_err(|e| FsError::io("open", parent.display().to_string(), e))
        .and_then(|fd| {
            let name = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name))
                .map_err(|_| FsError::Refused("a name holds a NUL byte".to_owned()))?;
            remove_tree(fd.as_fd(), &name, &parent.display().to_string())
        });
    if let Err(e) = removed {
        tracing::warn!(error = %e, path = %target.display(), "could not remove an abandoned restore");
    }
}

/// Whether the target exists as an empty directory (`true`: replace it) or not at all
/// (`false`); anything else is refused.
pub(crate) fn target_state(
    parent: BorrowedFd<'_>,
    name: &CStr,
    shown_as: &str,
) -> Result<bool, ProviderError> {
    match walk::lmeta(parent, name) {
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(ProviderError::new(format!("cannot read {shown_as}: {e}"))),
        Ok(m) if m.kind == EntryKind::Dir => {
            let fd = open_dir_at(parent, name)
                .map_err(|e| ProviderError::new(format!("cannot open {shown_as}: {e}")))?;
            let names = walk::list(fd.as_fd())
                .map_err(|e| ProviderError::new(format!("cannot list {shown_as}: {e}")))?;
            if names.is_empty() {
                Ok(true)
            } else {
                Err(ProviderError::new(format!(
                    "{shown_as} is not empty: restore into a new path or an empty directory"
                )))
            }
        }
        Ok(m) => Err(ProviderError::new(format!(
            "{shown_as} exists and is a {}, not an empty directory: restore into a new path",
            m.kind.as_str()
        ))),
    }
}

pub(crate) fn into_place(
    parent: BorrowedFd<'_>,
    sibling: &CStr,
    name: &CStr,
    replace: bool,
    shown_as: &str,
) -> Result<(), ProviderError> {
    let moved = if replace {
        rfs::renameat(parent, sibling, parent, name)
    } else {
        rename_noreplace(parent, sibling, name)
    };
    moved.map_err(|e| match e {
        Errno::EXIST | Errno::NOTEMPTY => ProviderError::new(format!(
            "something was written to {shown_as} while the restore ran, so it was not replaced and the restored copy was removed: restore into a new path"
        )),
        Errno::NOTDIR | Errno::ISDIR => ProviderError::new(format!(
            "{shown_as} was replaced by something that is not a directory while the restore ran, so the restored copy was removed: restore into a new path"
        )),
        e => ProviderError::new(format!("cannot move the restored copy to {shown_as}: {e}")),
    })
}

fn copy_into(
    backup_dir: &Path,
    manifest: &Manifest,
    parent: BorrowedFd<'_>,
    sibling: &CStr,
    parent_shown: &str,
    progress: &Progress,
    cancelled: &AtomicBool,
) -> Result<(), ProviderError> {
    let backup_shown = backup_dir.display().to_string();
    let fail = |e: FsError| {
        match e.errno() {
        Some(Errno::NOSPC | Errno::DQUOT) => ProviderError::coded(
            ProviderErrorCode::InsufficientSpace,
            format!("{parent_shown} ran out of space during the restore ({e}); the partial copy was removed"),
        ),
        _ => ProviderError::with_source(e.to_string(), e),
    }
    };
    let backup = rfs::open(backup_dir, dir_flags() & !OFlags::NOFOLLOW, Mode::empty())
        .map_err(|e| ProviderError::new(format!("cannot open the backup {backup_shown}: {e}")))?;
    let data_shown = shown(&backup_shown, DATA);
    let data = open_dir_at(backup.as_fd(), c"data")
        .map_err(|e| ProviderError::new(format!("cannot open {data_shown}: {e}")))?;
    let sibling_shown = shown(parent_shown, &sibling.to_string_lossy());
    // A leftover of an earlier attempt with this id.
    remove_tree(parent, sibling, parent_shown).map_err(fail)?;
    rfs::mkdirat(parent, sibling, Mode::from_raw_mode(0o700))
        .map_err(|e| fail(FsError::io("create", &sibling_shown, e)))?;
    let top =
        open_dir_at(parent, sibling).map_err(|e| fail(FsError::io("open", &sibling_shown, e)))?;
    rfs::fchmod(&top, Mode::from_raw_mode(0o700))
        .map_err(|e| fail(FsError::io("set the mode of", &sibling_shown, e)))?;
    let owners = rustix::process::geteuid().is_root();
    let anchor =
        walk::dup(top.as_fd()).map_err(|e| fail(FsError::io("open", &sibling_shown, e)))?;
    let mut restorer = Restorer {
        dest: Chain::new(anchor, sibling_shown.clone()),
        expected: manifest
            .entries
            .iter()
            .filter(|e| e.kind.is_copied())
            .map(|e| (e.path.as_str(), (e, false)))
            .collect(),
        owners,
        base: &data_shown,
        dest_base: &sibling_shown,
        cancelled,
        progress,
        hash: manifest.hash,
        piped: Some(Piped::start(progress, manifest.hash).map_err(fail)?),
        waiting: Vec::new(),
        flusher: Flusher::new(top.as_fd()),
    };
    walk::walk(data.as_fd(), &data_shown, &mut restorer).map_err(fail)?;
    restorer.check_hashes().map_err(fail)?;
    let mut missing: Vec<&str> = restorer
        .expected
        .iter()
        .filter(|(_, (_, seen))| !seen)
        .map(|(p, _)| *p)
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        let more = missing.len().saturating_sub(10);
        missing.truncate(10);
        let mut list = missing.join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        return Err(ProviderError::new(format!(
            "the backup {backup_shown} does not match its manifest, so the restore was abandoned and its copy removed: missing from the backup: {list}"
        )));
    }
    drop(restorer);
    if let Some(root) = &manifest.root {
        let entry = ManifestEntry {
            path: String::new(),
            kind: EntryKind::Dir,
            size: 0,
            mode: Some(root.mode),
            uid: Some(root.uid),
            gid: Some(root.gid),
            mtime_ns: Some(root.mtime_ns),
            sha256: None,
            blake3: None,
            target: None,
            changed: false,
            outside: false,
            dev: None,
            ino: None,
            ctime_ns: None,
        };
        let now = fmeta(top.as_fd()).map_err(|e| fail(FsError::io("read", &sibling_shown, e)))?;
        apply_meta(top.as_fd(), &entry, &now, owners)
            .map_err(|e| fail(FsError::io("set the metadata of", &sibling_shown, e)))?;
    }
    // Everything written under the sibling, data and metadata, in one wait (see
    // `durable` in the provider's docs).
    super::durable(top.as_fd(), &sibling_shown).map_err(fail)
}

/// The metadata an entry gets: the manifest's, else (a version-1 manifest) the backup
/// copy's own.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn timestamps(entry: &ManifestEntry, fallback: &Meta) -> Timestamps {
    let (sec, nsec) = match entry.mtime_ns {
        Some(ns) => (
            i64::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(0),
            i64::try_from(ns.rem_euclid(1_000_000_000)).unwrap_or(0),
        ),
        None => fallback.mtime,
    };
    let ts = Timespec {
        tv_sec: sec as _,
        tv_nsec: nsec as _,
    };
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

fn mode_of(entry: &ManifestEntry, fallback: &Meta, owners: bool) -> Mode {
    let mode = entry.mode.unwrap_or(fallback.mode);
    Mode::from_raw_mode(if owners { mode & 0o7777 } else { mode & 0o777 })
}

/// Owner (as root) first, since `chown` clears set-user-id bits; then mode; times last.
fn apply_meta(
    fd: BorrowedFd<'_>,
    entry: &ManifestEntry,
    fallback: &Meta,
    owners: bool,
) -> Result<(), Errno> {
    if owners {
        if let (Some(uid), Some(gid)) = (entry.uid, entry.gid) {
            rfs::fchown(
                fd,
                Some(Uid::from_raw_unchecked(uid)),
                Some(Gid::from_raw_unchecked(gid)),
            )?;
        }
    }
    rfs::fchmod(fd, mode_of(entry, fallback, owners))?;
    rfs::futimens(fd, &timestamps(entry, fallback))
}

/// Copies the backup's `data/` into the sibling, checking it against the manifest.
struct Restorer<'a> {
    dest: Chain,
    /// Every copied entry of the manifest, and whether the backup held it.
    expected: HashMap<&'a str, (&'a ManifestEntry, bool)>,
    owners: bool,
    base: &'a str,
    dest_base: &'a str,
    cancelled: &'a AtomicBool,
    progress: &'a Progress,
    /// The manifest's checksum algorithm.
    hash: HashAlgorithm,
    /// Hashes what is copied, beside the copy (see [`super::digest`]).
    piped: Option<Piped>,
    /// The files whose digests `piped` will hand over, in order.
    waiting: Vec<&'a ManifestEntry>,
    /// Runs `syncfs` as the copy goes (see [`super::flusher`]).
    flusher: Option<Flusher>,
}

impl<'a> Restorer<'a> {
    /// Waits for the hashes of the files copied and compares each with the manifest.
    fn check_hashes(&mut self) -> Result<(), FsError> {
        let Some(piped) = self.piped.take() else {
            return Ok(());
        };
        let digests = piped.finish()?;
        for (k, entry) in self.waiting.iter().enumerate() {
            let digest = digests.get(k).map(|d| hex(d));
            if entry.checksum(self.hash) != digest.as_deref() {
                return Err(self.mismatch(&entry.path, self.not_matching()));
            }
        }
        Ok(())
    }

    fn not_matching(&self) -> String {
        format!(
            "does not match its {} checksum in the manifest",
            self.hash.shown()
        )
    }

    fn step(&self) -> Result<(), FsError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(FsError::Cancelled);
        }
        self.progress.tick();
        Ok(())
    }

    fn mismatch(&self, rel: &str, what: impl std::fmt::Display) -> FsError {
        FsError::Refused(format!(
            "{} {what}, so the backup is damaged or was altered: the restore was abandoned and its copy removed (verify the backup, or restore another one)",
            shown(self.base, rel)
        ))
    }

    /// The manifest's entry for `rel`, which must have the type found.
    fn expect(&mut self, rel: &str, found: EntryKind) -> Result<&'a ManifestEntry, FsError> {
        let Some((entry, seen)) = self.expected.get_mut(rel) else {
            return Err(self.mismatch(
                rel,
                format!("is a {} the manifest does not list", found.as_str()),
            ));
        };
        *seen = true;
        let entry: &'a ManifestEntry = entry;
        if entry.kind != found {
            return Err(self.mismatch(
                rel,
                format!(
                    "is a {} where the manifest has a {}",
                    found.as_str(),
                    entry.kind.as_str()
                ),
            ));
        }
        Ok(entry)
    }

    fn file(&mut self, found: &Entry<'_>, entry: &'a ManifestEntry) -> Result<(), FsError> {
        let Entry { dir, name, rel, .. } = *found;
        let src_shown = shown(self.base, rel);
        let dst_shown = shown(self.dest_base, rel);
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let src = rfs::openat(dir, name, flags, Mode::empty())
            .map_err(|e| FsError::io("open", &src_shown, e))?;
        let meta = fmeta(src.as_fd()).map_err(|e| FsError::io("read", &src_shown, e))?;
        if meta.kind != EntryKind::File {
            return Err(self.mismatch(rel, format!("is a {} now", meta.kind.as_str())));
        }
        let out = rfs::openat(
            self.dest.current()?,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| FsError::io("create", &dst_shown, e))?;
        let (cancelled, progress) = (self.cancelled, self.progress);
        let mut on = |moved: Moved| -> Result<(), FsError> {
            if cancelled.load(Ordering::Relaxed) {
                return Err(FsError::Cancelled);
            }
            match moved {
                Moved::Data(n) => progress.add_bytes(n as u64),
                Moved::Hole => progress.tick(),
            }
            Ok(())
        };
        let Some(piped) = self.piped.as_mut() else {
            return Err(FsError::Refused("the restore's hashing stopped".to_owned()));
        };
        let pos = stream(src.as_fd(), Some(out.as_fd()), piped, &mut on)
            .map_err(|e| e.into_fs(&src_shown, &dst_shown))?;
        let len = pos.max(meta.size);
        piped.zeros(len - pos, &mut on)?;
        let ended = piped.end();
        if let Some(flusher) = &mut self.flusher {
            flusher.wrote(pos);
        }
        if len != entry.size {
            return Err(self.mismatch(
                rel,
                format!("holds {len} bytes, the manifest says {}", entry.size),
            ));
        }
        match ended {
            // Checked once every file is copied, before anything is put in place.
            Ended::Later(_) => self.waiting.push(entry),
            Ended::Now(digest) => {
                if entry.checksum(self.hash) != Some(hex(&digest).as_str()) {
                    return Err(self.mismatch(rel, self.not_matching()));
                }
            }
        }
        if len > pos {
            // A trailing hole: the size is set without writing it.
            rfs::ftruncate(&out, len).map_err(|e| FsError::io("write", &dst_shown, e))?;
        }
        apply_meta(out.as_fd(), entry, &meta, self.owners)
            .map_err(|e| FsError::io("set the metadata of", &dst_shown, e))
    }

    fn link(&mut self, found: &Entry<'_>, entry: &ManifestEntry) -> Result<(), FsError> {
        let Entry { dir, name, rel, .. } = *found;
        let dst_shown = shown(self.dest_base, rel);
        let target = rfs::readlinkat(dir, name, Vec::new())
            .map_err(|e| FsError::io("read the link", shown(self.base, rel), e))?;
        let text = target.to_string_lossy();
        if entry.target.as_deref() != Some(text.as_ref()) {
            return Err(self.mismatch(
                rel,
                format!(
                    "points to {text}, the manifest says {}",
                    entry.target.as_deref().unwrap_or("nothing")
                ),
            ));
        }
        let out = self.dest.current()?;
        rfs::symlinkat(target.as_c_str(), out, name)
            .map_err(|e| FsError::io("create the link", &dst_shown, e))?;
        if self.owners {
            if let (Some(uid), Some(gid)) = (entry.uid, entry.gid) {
                rfs::chownat(
                    out,
                    name,
                    Some(Uid::from_raw_unchecked(uid)),
                    Some(Gid::from_raw_unchecked(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| FsError::io("set the owner of", &dst_shown, e))?;
            }
        }
        rfs::utimensat(
            out,
            name,
            &timestamps(entry, &found.meta),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| FsError::io("set the times of", &dst_shown, e))
    }
}

impl Visitor for Restorer<'_> {
    fn entry(&mut self, found: &Entry<'_>) -> Result<(), FsError> {
        self.step()?;
        let entry = self.expect(found.rel, found.meta.kind)?;
        match found.meta.kind {
            EntryKind::File => self.file(found, entry),
            EntryKind::Symlink => self.link(found, entry),
            other => Err(self.mismatch(found.rel, format!("is a {}", other.as_str()))),
        }
    }

    fn enter(&mut self, found: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<bool, FsError> {
        self.step()?;
        self.expect(found.rel, EntryKind::Dir)?;
        let dst_shown = shown(self.dest_base, found.rel);
        let parent = self.dest.current()?;
        rfs::mkdirat(parent, found.name, Mode::from_raw_mode(0o700))
            .map_err(|e| FsError::io("create", &dst_shown, e))?;
        let made =
            open_dir_at(parent, found.name).map_err(|e| FsError::io("open", &dst_shown, e))?;
        let id = fmeta(made.as_fd())
            .map_err(|e| FsError::io("read", &dst_shown, e))?
            .id();
        self.dest.push(found.name.to_owned(), made, id);
        Ok(true)
    }

    fn leave(&mut self, found: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<(), FsError> {
        let dst_shown = shown(self.dest_base, found.rel);
        let Some((_, made)) = self.dest.pop()? else {
            return Err(FsError::Replaced(dst_shown));
        };
        let entry = self
            .expected
            .get(found.rel)
            .map(|(e, _)| *e)
            .ok_or_else(|| FsError::Replaced(dst_shown.clone()))?;
        apply_meta(made.as_fd(), entry, &found.meta, self.owners)
            .map_err(|e| FsError::io("set the metadata of", &dst_shown, e))
    }

    fn vanished(&mut self, rel: &str) -> Result<(), FsError> {
        Err(self.mismatch(rel, "disappeared while it was read"))
    }

    fn bad_name(&mut self, rel: &str) -> Result<(), FsError> {
        Err(self.mismatch(rel, "has a name that is not UTF-8, which no manifest lists"))
    }
}
