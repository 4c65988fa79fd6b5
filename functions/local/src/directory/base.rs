//! The backup an incremental directory backup links unchanged files from: the cluster's
//! newest `available` backup, which the engine names in the request
//! ([`BackupRequest::base_backup_id`](backup_engine::BackupRequest)), read through its
//! manifest.
//!
//! # Decisions
//! - **Unchanged** means that the source file's size, modification time (ns), status change
//!   time (ns), device, inode, permission bits, owner and group all equal what the base's
//!   manifest recorded when it read the file, and that the base did not mark it `changed`
//!   (torn). The comparison is with the manifest, never with the base's copy: a server that
//!   is not root owns its copies, and a copy's inode is not the source's. A user can set a
//!   modification time back (`touch -d`, `cp -p`) but not a status change time, and a file
//!   replaced by a rename has a new inode, so a rewritten file whose size and modification
//!   time were put back is still copied. With `serve --verify-unchanged` the source is also
//!   read and its checksum compared with the base's before it is linked.
//! - **Linking** is `linkat` of the base's file, whose directory is reached from the base's
//!   `data/` with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`; the new link is then
//!   checked (`fstatat`) to be a regular file with the size, mode and modification time the
//!   base recorded, else it is removed and the file copied. `EMLINK` (the inode has as many
//!   links as the file system allows), `EXDEV`, `EPERM` (a file system without hard links),
//!   a kernel without `openat2`, and a base file that is gone all fall back to a copy.
//! - **A linked file is never touched** (no `chmod`, no `utimens`): its inode is shared with
//!   the base and every other backup that links it, and already carries what the manifest
//!   records.
//! - **Each manifest stays complete**, so verify, restore and pruning work on any backup
//!   alone: deleting a backup removes its names, and an inode lives while another backup
//!   still names it. The flip side: one damaged inode is damaged in every backup that links
//!   it, and `backups verify` of each of them reports it.
//! - **A base that cannot be used** (gone, unreadable, of another cluster, written by a
//!   server that kept owners when this one does not, or the reverse) makes the run copy
//!   everything, and its details say why.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use foldhash::fast::RandomState;
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::manifest::{EntryKind, HashAlgorithm, ManifestEntry};
use super::restore::read_manifest_at;
use super::walk::{lmeta, open_dir_at, shown, Meta};

/// The base backup, opened.
pub(crate) struct Base {
    data: OwnedFd,
    /// The manifest's files, by path.
    files: HashMap<String, ManifestEntry, RandomState>,
    /// The directory of the last file linked (relative to `data/`), open: the walk visits a
    /// directory's files one after another.
    dir: Option<(String, OwnedFd)>,
}

/// What linking one file did.
pub(crate) enum Linked {
    /// The file is in the new backup, sharing the base's inode.
    Yes,
    /// It could not be linked (see the module docs); copy it instead.
    Copy,
}

impl Base {
    /// Opens backup `id` under the backup root `root` as the base of a backup of
    /// `cluster_id`, made by a server that keeps owners (`owners`) or not and records `hash`
    /// checksums. An error says why it cannot serve, for the run's details.
    pub(crate) fn open(
        root: BorrowedFd<'_>,
        root_shown: &str,
        id: &str,
        cluster_id: &str,
        owners: bool,
        hash: HashAlgorithm,
    ) -> Result<Base, String> {
        if !backup_engine::ids::is_valid_id(id) {
            return Err(format!("`{id}` is not a backup id"));
        }
        let name = CString::new(id).map_err(|_| format!("`{id}` is not a backup id"))?;
        let dir_shown = shown(root_shown, id);
        let dir = open_dir_at(root, &name).map_err(|e| format!("cannot open {dir_shown}: {e}"))?;
        let manifest = read_manifest_at(dir.as_fd(), &dir_shown)?;
        if manifest.cluster_id != cluster_id {
            return Err(format!(
                "{dir_shown} is a backup of cluster {}, not {cluster_id}",
                manifest.cluster_id
            ));
        }
        if manifest.owners_kept != owners {
            return Err(format!(
                "{dir_shown} was made by a server that {} owners, and this one {}",
                if manifest.owners_kept {
                    "kept"
                } else {
                    "did not keep"
                },
                if owners { "keeps them" } else { "does not" }
            ));
        }
        if manifest.hash != hash {
            // A linked file's checksum is the base's, and the new manifest has one algorithm.
            return Err(format!(
                "{dir_shown} has {} checksums, and this server writes {} (`serve --checksum {}`): \
                 every file is copied once",
                manifest.hash.shown(),
                hash.shown(),
                hash.name()
            ));
        }
        let data = open_dir_at(dir.as_fd(), c"data")
            .map_err(|e| format!("cannot open {}: {e}", shown(&dir_shown, "data")))?;
        let files = manifest
            .entries
            .into_iter()
            .filter(|e| e.kind == EntryKind::File && !e.changed && e.checksum(hash).is_some())
            .map(|e| (e.path.clone(), e))
            .collect();
        Ok(Base {
            data,
            files,
            dir: None,
        })
    }

    /// The base's entry for the source file `rel` (its metadata `meta`, read from the open
    /// file) when the file is unchanged since the base read it.
    pub(crate) fn unchanged(&self, rel: &str, meta: &Meta) -> Option<&ManifestEntry> {
        let entry = self.files.get(rel)?;
        let same = entry.size == meta.size
            && entry.mtime_ns == Some(meta.mtime_ns())
            && entry.ctime_ns == Some(meta.ctime_ns())
            && entry.ino == Some(meta.ino)
            && entry.dev == Some(meta.dev)
            && entry.mode == Some(meta.mode)
            && entry.uid == Some(meta.uid)
            && entry.gid == Some(meta.gid);
        same.then_some(entry)
    }

    /// Links the base's copy of `entry` as `name` in `dest`, then checks the link against
    /// the entry: `mode` is the permission bits the base's copy was given.
    pub(crate) fn link(
        &mut self,
        entry: &ManifestEntry,
        dest: BorrowedFd<'_>,
        name: &CStr,
        mode: u32,
        owners: bool,
    ) -> Result<Linked, Errno> {
        let (parent, file) = split(&entry.path);
        let Ok(file) = CString::new(file) else {
            return Ok(Linked::Copy);
        };
        let dir = match self.parent(parent) {
            Ok(dir) => dir,
            Err(e) if falls_back(e) => return Ok(Linked::Copy),
            Err(e) => return Err(e),
        };
        Expected::of(entry, mode).link(dir, &file, dest, name, owners)
    }

    /// The base's directory `rel` (`""` for `data/`), opened afresh as
    /// [`parent`](Self::parent) opens it, for a [`super::linker`] batch to own; `None`
    /// when it cannot be (its files are then copied).
    pub(crate) fn open_parent(&self, rel: &str) -> Result<Option<OwnedFd>, Errno> {
        let opened = if rel.is_empty() {
            super::walk::dup(self.data.as_fd())
        } else {
            open_beneath(self.data.as_fd(), rel)
        };
        match opened {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if falls_back(e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The base's directory `rel` (`""` for `data/` itself), without following links.
    fn parent(&mut self, rel: &str) -> Result<BorrowedFd<'_>, Errno> {
        if rel.is_empty() {
            return Ok(self.data.as_fd());
        }
        let cached = matches!(&self.dir, Some((at, _)) if at == rel);
        if !cached {
            let fd = open_beneath(self.data.as_fd(), rel)?;
            self.dir = Some((rel.to_owned(), fd));
        }
        match &self.dir {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(Errno::NOENT),
        }
    }
}

/// Whether a failure to link means "copy instead" rather than "the run fails".
fn falls_back(e: Errno) -> bool {
    matches!(
        e,
        Errno::MLINK
            | Errno::XDEV
            | Errno::PERM
            | Errno::NOENT
            | Errno::NOTDIR
            | Errno::LOOP
            | Errno::NOSYS
            | Errno::OPNOTSUPP
            | Errno::INVAL
            | Errno::ACCESS
            | Errno::NAMETOOLONG
    )
}

/// `(parent, file name)` of a `/`-separated relative path.
pub(crate) fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// The longest path handed to one `openat2`: the kernel refuses paths of `PATH_MAX` (4096)
/// bytes or more with `ENAMETOOLONG`, and a tree may be deeper than that (SPEC §13).
const PIECE: usize = 2048;

/// The directory `rel` below `data`, without following links on the way. A path longer
/// than [`PIECE`] is opened a piece at a time (cut at `/`), each piece beneath the last,
/// with the same refusals: no link, no `..` above where it starts.
fn open_beneath(data: BorrowedFd<'_>, rel: &str) -> Result<OwnedFd, Errno> {
    let open = |from: BorrowedFd<'_>, piece: &str| {
        rfs::openat2(
            from,
            piece,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
    };
    let mut rest = rel;
    let mut at: Option<OwnedFd> = None;
    loop {
        let cut = if rest.len() <= PIECE {
            rest.len()
        } else {
            // The last `/` within the piece; a single name longer than a piece (the
            // kernel refuses it anyway) is passed whole.
            rest.as_bytes()[..PIECE]
                .iter()
                .rposition(|&b| b == b'/')
                .filter(|&i| i > 0)
                .or_else(|| rest.find('/'))
                .unwrap_or(rest.len())
        };
        let (piece, tail) = rest.split_at(cut);
        let fd = open(at.as_ref().map_or(data, |fd| fd.as_fd()), piece)?;
        at = Some(fd);
        rest = tail.trim_start_matches('/');
        if rest.is_empty() {
            return at.ok_or(Errno::NOENT);
        }
    }
}

/// What the base's manifest says of a file's copy, which a new link must show before it
/// is kept: owned, so a [`super::linker`] worker can check it away from the walk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    size: u64,
    /// The permission bits the base's copy was given.
    mode: u32,
    mtime_ns: Option<i128>,
    uid: Option<u32>,
    gid: Option<u32>,
}

impl Expected {
    pub(crate) fn of(entry: &ManifestEntry, mode: u32) -> Expected {
        Expected {
            size: entry.size,
            mode,
            mtime_ns: entry.mtime_ns,
            uid: entry.uid,
            gid: entry.gid,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Links `file` of the base's directory `dir` as `name` in `dest`, then checks the link;
    /// a link that is not what the base's manifest says is removed again (`Copy`).
    pub(crate) fn link(
        &self,
        dir: BorrowedFd<'_>,
        file: &CStr,
        dest: BorrowedFd<'_>,
        name: &CStr,
        owners: bool,
    ) -> Result<Linked, Errno> {
        match rfs::linkat(dir, file, dest, name, AtFlags::empty()) {
            Ok(()) => {}
            Err(e) if falls_back(e) => return Ok(Linked::Copy),
            Err(e) => return Err(e),
        }
        let made = lmeta(dest, name)?;
        let owner_ok = !owners || (self.uid == Some(made.uid) && self.gid == Some(made.gid));
        if made.kind == EntryKind::File
            && made.size == self.size
            && made.mode == self.mode
            && Some(made.mtime_ns()) == self.mtime_ns
            && owner_ok
        {
            return Ok(Linked::Yes);
        }
        // The base's copy is not what its manifest says (verify will say how): copy afresh.
        rfs::unlinkat(dest, name, AtFlags::empty())?;
        Ok(Linked::Copy)
    }
}
