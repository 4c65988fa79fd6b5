//! Descriptor-relative tree walks (SPEC §12, §13): the copy, the free-space estimate, the
//! checks and the deletes all go through [`walk`], which reaches every entry through the
//! descriptor of its directory, never through a rebuilt path string, and without recursion.
//!
//! # How many descriptors
//! A [`Chain`] holds the directories from the walk's root down to the current one. Only the
//! deepest [`WINDOW`] of them keep a descriptor open; going deeper closes the shallowest one.
//! Coming back up to a directory whose descriptor was closed re-opens it with
//! `openat(child, "..")` and accepts it only if its device and inode are the ones recorded on
//! the way down (so a directory moved meanwhile is never mistaken for it); failing that, it is
//! re-opened from the nearest open ancestor name by name with `O_NOFOLLOW`, again checking
//! every identity. A walk therefore holds at most `WINDOW + 2` descriptors (the window, the
//! root, a listing), whatever the depth: a tree 5,000 directories deep needs no more than a
//! flat one.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::manifest::EntryKind;

/// How many directory descriptors of a chain stay open.
pub(crate) const WINDOW: usize = 16;

/// A failure of a walk or of what a visitor did.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FsError {
    #[error("cannot {action} {path}: {errno}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        errno: Errno,
    },
    /// A directory was moved or replaced while the walk was below it.
    #[error("{0} was moved or replaced while it was being read")]
    Replaced(String),
    /// Something the walk cannot record (a name that is not UTF-8, a torn check).
    #[error("{0}")]
    Refused(String),
    /// The backup was abandoned (its `create` future dropped).
    #[error("the backup was abandoned")]
    Cancelled,
}

impl FsError {
    pub(crate) fn io(action: &'static str, path: impl Into<String>, errno: Errno) -> Self {
        FsError::Io {
            action,
            path: path.into(),
            errno,
        }
    }

    /// The errno of an I/O failure, if this is one.
    pub(crate) fn errno(&self) -> Option<Errno> {
        match self {
            FsError::Io { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// What the walks need of a `struct stat`, in fixed-width types on every architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub kind: EntryKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Allocated bytes (`st_blocks * 512`).
    pub allocated: u64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    /// Status change time: moves with any change of content or metadata, and cannot be set
    /// back by `touch` (what an incremental backup trusts, with the inode).
    pub ctime: (i64, i64),
    pub dev: u64,
    pub ino: u64,
}

impl Meta {
    /// Nanoseconds since the epoch.
    pub fn mtime_ns(&self) -> i128 {
        i128::from(self.mtime.0) * 1_000_000_000 + i128::from(self.mtime.1)
    }

    /// Nanoseconds since the epoch.
    pub fn ctime_ns(&self) -> i128 {
        i128::from(self.ctime.0) * 1_000_000_000 + i128::from(self.ctime.1)
    }

    pub fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

// The field types of `struct stat` differ between architectures (`c_uint` here, `u32`
// there): the casts are no-ops on some and conversions on others.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub(crate) fn meta(st: &Stat) -> Meta {
    let kind = match FileType::from_raw_mode(st.st_mode as _) {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        FileType::Fifo => EntryKind::Fifo,
        FileType::Socket => EntryKind::Socket,
        FileType::CharacterDevice => EntryKind::CharDevice,
        FileType::BlockDevice => EntryKind::BlockDevice,
        _ => EntryKind::Unknown,
    };
    Meta {
        kind,
        mode: (st.st_mode as u32) & 0o7777,
        uid: st.st_uid as u32,
        gid: st.st_gid as u32,
        size: u64::try_from(st.st_size as i64).unwrap_or(0),
        allocated: u64::try_from(st.st_blocks as i64)
            .unwrap_or(0)
            .saturating_mul(512),
        atime: (st.st_atime as i64, st.st_atime_nsec as i64),
        mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
        ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
    }
}

/// `fstat` as a [`Meta`].
pub(crate) fn fmeta(fd: BorrowedFd<'_>) -> Result<Meta, Errno> {
    rfs::fstat(fd).map(|st| meta(&st))
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)` as a [`Meta`].
pub(crate) fn lmeta(dir: BorrowedFd<'_>, name: &CStr) -> Result<Meta, Errno> {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|st| meta(&st))
}

/// The flags every directory is opened with: no link is ever followed, no descriptor leaks
/// into a child process, and a FIFO swapped in for a directory does not block the open.
pub(crate) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK
}

/// Opens the directory `name` of `dir` without following a link.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    rfs::openat(dir, name, dir_flags(), Mode::empty())
}

/// Opens an absolute path component by component from `/`, with `O_NOFOLLOW` at every step,
/// so no component can be a link. `Err(ELOOP)`/`Err(ENOTDIR)` means one is.
pub(crate) fn open_dir_nofollow(path: &Path) -> Result<OwnedFd, Errno> {
    let mut fd = rfs::open("/", dir_flags(), Mode::empty())?;
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => {
                let name = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name))
                    .map_err(|_| Errno::INVAL)?;
                fd = open_dir_at(fd.as_fd(), &name)?;
            }
            // A canonical path has none of these; refuse rather than interpret them.
            Component::Prefix(_) | Component::CurDir | Component::ParentDir => {
                return Err(Errno::INVAL)
            }
        }
    }
    Ok(fd)
}

/// A second descriptor on the same directory, for a walk to own.
pub(crate) fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0)
}

/// The entries of a directory, sorted by name, without `.` and `..`.
pub(crate) fn list(fd: BorrowedFd<'_>) -> Result<Vec<CString>, Errno> {
    let mut dir = rfs::Dir::read_from(fd)?;
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

/// `rel/name`, or `name` at the top.
pub(crate) fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

/// `base/rel` for messages only (never opened).
pub(crate) fn shown(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        base.to_owned()
    } else {
        format!("{base}/{rel}")
    }
}

struct Level {
    name: CString,
    id: (u64, u64),
    fd: Option<OwnedFd>,
}

/// The open directories from a walk's root down to the current one (see the module docs).
pub(crate) struct Chain {
    /// For messages: the root as the operator knows it.
    base: String,
    anchor: OwnedFd,
    levels: Vec<Level>,
}

impl Chain {
    pub fn new(anchor: OwnedFd, base: impl Into<String>) -> Chain {
        Chain {
            base: base.into(),
            anchor,
            levels: Vec::new(),
        }
    }

    /// The current directory's path relative to the root, `/`-separated (lossy: messages).
    fn rel(&self, upto: usize) -> String {
        let names: Vec<String> = self.levels[..upto]
            .iter()
            .map(|l| l.name.to_string_lossy().into_owned())
            .collect();
        shown(&self.base, &names.join("/"))
    }

    /// Enters `name`, whose open descriptor is `fd` and identity `id`.
    pub fn push(&mut self, name: CString, fd: OwnedFd, id: (u64, u64)) {
        self.levels.push(Level {
            name,
            id,
            fd: Some(fd),
        });
        let n = self.levels.len();
        if n > WINDOW {
            self.levels[n - 1 - WINDOW].fd = None;
        }
    }

    /// The current directory's descriptor, re-opened if the window closed it.
    pub fn current(&mut self) -> Result<BorrowedFd<'_>, FsError> {
        self.reopen()?;
        match self.levels.last() {
            None => Ok(self.anchor.as_fd()),
            Some(level) => level
                .fd
                .as_ref()
                .map(|fd| fd.as_fd())
                .ok_or_else(|| FsError::Replaced(self.rel(self.levels.len()))),
        }
    }

    /// Leaves the current directory (not the root): answers its descriptor and name. The
    /// parent becomes current; its descriptor, if closed, is re-opened through `..` and
    /// accepted only if it is the same directory.
    pub fn pop(&mut self) -> Result<Option<(CString, OwnedFd)>, FsError> {
        self.reopen()?;
        let Some(level) = self.levels.pop() else {
            return Ok(None);
        };
        let Some(fd) = level.fd else {
            return Err(FsError::Replaced(self.rel(self.levels.len())));
        };
        if let Some(parent) = self.levels.last_mut() {
            if parent.fd.is_none() {
                if let Ok(up) = open_dir_at(fd.as_fd(), c"..") {
                    if fmeta(up.as_fd()).map(|m| m.id()) == Ok(parent.id) {
                        parent.fd = Some(up);
                    }
                }
            }
        }
        Ok(Some((level.name, fd)))
    }

    /// Re-opens the current level, if closed, from its nearest open ancestor, name by name.
    fn reopen(&mut self) -> Result<(), FsError> {
        let n = self.levels.len();
        if n == 0 || self.levels[n - 1].fd.is_some() {
            return Ok(());
        }
        let start = self.levels[..n - 1]
            .iter()
            .rposition(|l| l.fd.is_some())
            .map_or(0, |i| i + 1);
        let keep_from = n.saturating_sub(WINDOW);
        for i in start..n {
            let opened = {
                let parent = if i == 0 {
                    self.anchor.as_fd()
                } else {
                    match &self.levels[i - 1].fd {
                        Some(fd) => fd.as_fd(),
                        None => return Err(FsError::Replaced(self.rel(i))),
                    }
                };
                open_dir_at(parent, &self.levels[i].name)
                    .map_err(|e| FsError::io("re-open", self.rel(i + 1), e))?
            };
            let id = fmeta(opened.as_fd())
                .map_err(|e| FsError::io("read", self.rel(i + 1), e))?
                .id();
            if id != self.levels[i].id {
                return Err(FsError::Replaced(self.rel(i + 1)));
            }
            self.levels[i].fd = Some(opened);
            if i > 0 && i - 1 < keep_from {
                self.levels[i - 1].fd = None;
            }
        }
        Ok(())
    }
}

/// An entry a walk reached. Visitors reach it through `dir`, the descriptor of the
/// directory it is in, and `name`, never through a path; `rel` (its path relative to the
/// root) is for the manifest and for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub dir: BorrowedFd<'a>,
    pub name: &'a CStr,
    pub rel: &'a str,
    /// `fstatat(AT_SYMLINK_NOFOLLOW)`; for a directory walked into, `fstat` of its open
    /// descriptor.
    pub meta: Meta,
}

/// What a walk does at each entry.
pub(crate) trait Visitor {
    /// A directory was listed (before its entries are visited).
    fn listed(&mut self, _rel: &str, _count: usize) -> Result<(), FsError> {
        Ok(())
    }
    /// An entry that is not a directory.
    fn entry(&mut self, entry: &Entry<'_>) -> Result<(), FsError>;
    /// A directory, open as `fd`: answer whether to walk into it.
    fn enter(&mut self, entry: &Entry<'_>, fd: BorrowedFd<'_>) -> Result<bool, FsError>;
    /// Every entry of a directory `enter` walked into was visited; `fd` is still open.
    /// Nothing to do by default.
    fn leave(&mut self, _entry: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<(), FsError> {
        Ok(())
    }
    /// A listed entry disappeared before it could be read: by default it no longer matters.
    fn vanished(&mut self, _rel: &str) -> Result<(), FsError> {
        Ok(())
    }
    /// A name that is not UTF-8 (`rel` is shown lossily): refuse it or carry on.
    fn bad_name(&mut self, rel: &str) -> Result<(), FsError>;
}

struct Frame {
    rel: String,
    name: CString,
    meta: Meta,
    entries: Vec<CString>,
    next: usize,
}

/// Walks the tree below `root` (not `root` itself) depth first, entries in name order,
/// without recursion. `base` names the root in messages.
pub(crate) fn walk(
    root: BorrowedFd<'_>,
    base: &str,
    visitor: &mut dyn Visitor,
) -> Result<(), FsError> {
    let anchor = dup(root).map_err(|e| FsError::io("open", base, e))?;
    let root_meta = fmeta(anchor.as_fd()).map_err(|e| FsError::io("read", base, e))?;
    let entries = list(anchor.as_fd()).map_err(|e| FsError::io("list", base, e))?;
    visitor.listed("", entries.len())?;
    let mut chain = Chain::new(anchor, base);
    let mut frames = vec![Frame {
        rel: String::new(),
        name: CString::default(),
        meta: root_meta,
        entries,
        next: 0,
    }];
    while let Some(frame) = frames.last_mut() {
        let Some(name) = frame.entries.get(frame.next).cloned() else {
            let Some(done) = frames.pop() else { break };
            if frames.is_empty() {
                break;
            }
            let Some((_, fd)) = chain.pop()? else { break };
            let left = Entry {
                dir: chain.current()?,
                name: &done.name,
                rel: &done.rel,
                meta: done.meta,
            };
            visitor.leave(&left, fd.as_fd())?;
            continue;
        };
        frame.next += 1;
        let rel = match name.to_str() {
            Ok(n) => join_rel(&frame.rel, n),
            Err(_) => {
                let rel = join_rel(&frame.rel, &name.to_string_lossy());
                visitor.bad_name(&rel)?;
                rel
            }
        };
        let dir = chain.current()?;
        let lstat = match lmeta(dir, &name) {
            Ok(m) => m,
            Err(Errno::NOENT) => {
                visitor.vanished(&rel)?;
                continue;
            }
            Err(e) => return Err(FsError::io("read", shown(base, &rel), e)),
        };
        let found = Entry {
            dir,
            name: &name,
            rel: &rel,
            meta: lstat,
        };
        if lstat.kind != EntryKind::Dir {
            visitor.entry(&found)?;
            continue;
        }
        let fd = match open_dir_at(dir, &name) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                visitor.vanished(&rel)?;
                continue;
            }
            // Swapped for something else since it was stat'ed: visit what it is now.
            Err(Errno::NOTDIR | Errno::LOOP) => match lmeta(dir, &name) {
                Ok(now) if now.kind != EntryKind::Dir => {
                    visitor.entry(&Entry { meta: now, ..found })?;
                    continue;
                }
                Ok(_) => return Err(FsError::Replaced(shown(base, &rel))),
                Err(Errno::NOENT) => {
                    visitor.vanished(&rel)?;
                    continue;
                }
                Err(e) => return Err(FsError::io("read", shown(base, &rel), e)),
            },
            Err(e) => return Err(FsError::io("open", shown(base, &rel), e)),
        };
        let dmeta = fmeta(fd.as_fd()).map_err(|e| FsError::io("read", shown(base, &rel), e))?;
        let opened = Entry {
            meta: dmeta,
            ..found
        };
        if !visitor.enter(&opened, fd.as_fd())? {
            continue;
        }
        let entries = list(fd.as_fd()).map_err(|e| FsError::io("list", shown(base, &rel), e))?;
        visitor.listed(&rel, entries.len())?;
        chain.push(name.clone(), fd, dmeta.id());
        frames.push(Frame {
            rel,
            name,
            meta: dmeta,
            entries,
            next: 0,
        });
    }
    Ok(())
}

/// Removes the tree `name` of `dir` (a directory, or anything else) without following links,
/// through descriptors, to any depth. Entries already gone (a concurrent deleter) count as
/// removed; so does `name` itself being gone.
pub(crate) fn remove_tree(dir: BorrowedFd<'_>, name: &CStr, base: &str) -> Result<(), FsError> {
    let shown_name = shown(base, &name.to_string_lossy());
    let fd = match open_dir_at(dir, name) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(Errno::NOTDIR | Errno::LOOP) => {
            return remove_entry(dir, name, AtFlags::empty(), shown_name)
        }
        Err(Errno::ACCESS) => {
            // A directory left without permissions: make it ours to empty, then retry.
            open_tightened(dir, name).map_err(|e| FsError::io("open", shown_name.clone(), e))?
        }
        Err(e) => return Err(FsError::io("open", shown_name, e)),
    };
    if let Ok(m) = fmeta(fd.as_fd()) {
        make_removable(fd.as_fd(), &m);
    }
    walk(fd.as_fd(), &shown_name, &mut Remover)?;
    drop(fd);
    remove_entry(dir, name, AtFlags::REMOVEDIR, shown_name)
}

/// `unlinkat(dir, name, flags)`, where an entry already gone (a concurrent deleter) counts
/// as removed. `shown_as` names it in the error.
fn remove_entry(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: AtFlags,
    shown_as: impl Into<String>,
) -> Result<(), FsError> {
    match rfs::unlinkat(dir, name, flags) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(FsError::io("remove", shown_as, e)),
    }
}

/// Opens a directory that refused to open (`EACCES`: a copy of a source directory without
/// read permission, deleted by a server that is not root) after giving its owner `rwx`.
/// Only a directory is changed: the name is checked not to be a link first, and `fchmodat`
/// without flags would follow one, so a link swapped in meanwhile is the only risk, in a
/// root that is this server's alone.
fn open_tightened(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    let m = lmeta(dir, name)?;
    if m.kind != EntryKind::Dir {
        return Err(Errno::NOTDIR);
    }
    rfs::chmodat(dir, name, Mode::from_raw_mode(0o700), AtFlags::empty())?;
    open_dir_at(dir, name)
}

/// A directory whose owner lacks `rwx` (a copy of a `0500` source directory) cannot be
/// emptied by a server that is not root: give the owner `rwx` first. Best effort.
fn make_removable(fd: BorrowedFd<'_>, m: &Meta) {
    if m.mode & 0o700 != 0o700 {
        let _ = rfs::fchmod(fd, Mode::from_raw_mode(m.mode | 0o700));
    }
}

/// The visitor of [`remove_tree`].
struct Remover;

impl Visitor for Remover {
    fn entry(&mut self, entry: &Entry<'_>) -> Result<(), FsError> {
        remove_entry(entry.dir, entry.name, AtFlags::empty(), entry.rel)
    }

    fn enter(&mut self, entry: &Entry<'_>, fd: BorrowedFd<'_>) -> Result<bool, FsError> {
        make_removable(fd, &entry.meta);
        Ok(true)
    }

    fn leave(&mut self, entry: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<(), FsError> {
        remove_entry(entry.dir, entry.name, AtFlags::REMOVEDIR, entry.rel)
    }

    fn bad_name(&mut self, _rel: &str) -> Result<(), FsError> {
        Ok(())
    }
}
