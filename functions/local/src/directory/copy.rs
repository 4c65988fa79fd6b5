//! The copy itself: the visitor that writes `data/` through descriptors, hashing what it
//! writes in the same pass and keeping holes, and the one that estimates the space a copy
//! needs first.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use backup_engine::Progress;
use rustix::fs::{self as rfs, AtFlags, Gid, Mode, OFlags, SeekFrom, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use super::base::{split, Base, Expected, Linked};
use super::digest::{Digester, Ended, Inline, Piped};
use super::flusher::Flusher;
use super::linker::{Batch, Item, Linker, Pending, BATCH};
use super::manifest::{EntryKind, HashAlgorithm, ManifestEntry};
use super::walk::{dup, fmeta, lmeta, open_dir_at, shown, Chain, Entry, FsError, Meta, Visitor};
use super::TestHooks;

/// Directories at most whose metadata waits, with a descriptor each, for links in flight.
const MAX_WAITING_DIRS: usize = 64;

/// Bytes read and written at a time.
pub(crate) const CHUNK: usize = 256 * 1024;

/// What holes are hashed with: they are never read.
pub(crate) static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// What moved, for progress and cancellation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Moved {
    /// Bytes read (and written, when copying).
    Data(usize),
    /// A stretch of a hole hashed as zeros.
    Hole,
}

/// A failure of [`stream`]: which side, or the callback's own stop.
#[derive(Debug)]
pub(crate) enum StreamError {
    Read(Errno),
    Write(Errno),
    Stop(FsError),
}

impl StreamError {
    pub(crate) fn into_fs(self, src: &str, dst: &str) -> FsError {
        match self {
            StreamError::Read(e) => FsError::io("read", src, e),
            StreamError::Write(e) => FsError::io("write", dst, e),
            StreamError::Stop(e) => e,
        }
    }
}

/// Reads `src`'s data extents (`SEEK_DATA`/`SEEK_HOLE`; the whole file where the file
/// system cannot tell), feeding `digest` the bytes read and holes as zeros and, with `out`,
/// writing each extent at the same offset, so holes stay holes. Answers where reading
/// stopped: the caller feeds the trailing hole up to the file's final length, and ends it.
pub(crate) fn stream(
    src: BorrowedFd<'_>,
    out: Option<BorrowedFd<'_>>,
    digest: &mut dyn Digester,
    on: &mut dyn FnMut(Moved) -> Result<(), FsError>,
) -> Result<u64, StreamError> {
    let mut pos: u64 = 0;
    let mut sparse = true;
    loop {
        let (data, hole) = if sparse {
            match rfs::seek(src, SeekFrom::Data(pos)) {
                Ok(data) => match rfs::seek(src, SeekFrom::Hole(data)) {
                    Ok(hole) => (data, hole),
                    Err(Errno::NXIO) => break,
                    Err(e) => return Err(StreamError::Read(e)),
                },
                Err(Errno::NXIO) => break,
                Err(Errno::INVAL | Errno::OPNOTSUPP) if pos == 0 => {
                    sparse = false;
                    (0, u64::MAX)
                }
                Err(e) => return Err(StreamError::Read(e)),
            }
        } else {
            (pos, u64::MAX)
        };
        if data > pos {
            digest.zeros(data - pos, on).map_err(StreamError::Stop)?;
            pos = data;
        }
        let mut eof = false;
        let mut unflushed = pos;
        while pos < hole {
            let mut buf = digest.buffer().map_err(StreamError::Stop)?;
            let want = usize::try_from(hole - pos).map_or(buf.len(), |n| n.min(buf.len()));
            let n = loop {
                match rustix::io::pread(src, &mut buf[..want], pos) {
                    Ok(n) => break n,
                    Err(Errno::INTR) => continue,
                    Err(e) => {
                        // The buffer goes back to a piped digester's pool: a verify goes on
                        // after a file it cannot read, and must not run out of buffers.
                        let _ = digest.data(buf, 0);
                        return Err(StreamError::Read(e));
                    }
                }
            };
            if n > 0 {
                if let Some(out) = out {
                    if let Err(e) = write_all_at(out, &buf[..n], pos) {
                        let _ = digest.data(buf, 0);
                        return Err(StreamError::Write(e));
                    }
                }
            }
            // The buffer goes back even when nothing was read.
            digest.data(buf, n).map_err(StreamError::Stop)?;
            if n == 0 {
                eof = true;
                break;
            }
            pos += n as u64;
            if let Some(out) = out {
                if pos - unflushed >= WRITEBACK_EVERY {
                    start_writeback(out, unflushed, pos - unflushed);
                    unflushed = pos;
                }
            }
            on(Moved::Data(n)).map_err(StreamError::Stop)?;
        }
        if let Some(out) = out {
            if pos > unflushed && pos >= WRITEBACK_FILES_FROM {
                start_writeback(out, unflushed, pos - unflushed);
            }
        }
        if eof || !sparse {
            break;
        }
    }
    Ok(pos)
}

/// A copy starts the writeback of what it wrote every this many bytes of a file.
const WRITEBACK_EVERY: u64 = 8 << 20;

/// ... and at the end of a file of at least this many bytes. Smaller files are left to the
/// one `syncfs`: a `sync_file_range` per file cost about 25 µs, half a second more for
/// 20,000 files of 50 KB (backup and restore alike), while for files of 4 MB starting their
/// writeback at once made a backup and a restore of 100 MB in 25 files about 45% faster
/// (six interleaved runs each).
const WRITEBACK_FILES_FROM: u64 = 1 << 20;

/// Starts writing `len` bytes of `out` at `at` to the disk, without waiting for it
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`), so the disk works while the copy goes
/// on and the `syncfs` before the rename (see "Durability" in the README) finds most of the
/// data written already, instead of all of it: a copy then costs about the longer of its
/// reading and its writing, not their sum. It is only a start: it makes nothing durable (no
/// metadata, no cache flush), which stays the `syncfs`'s job, and an error here (a file
/// system without it) changes nothing, since the `syncfs` reports writeback errors.
fn start_writeback(out: BorrowedFd<'_>, at: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(at), Ok(len)) = (i64::try_from(at), i64::try_from(len)) else {
        return;
    };
    // SAFETY: `out` is a valid open descriptor for the whole call (a `BorrowedFd`), and
    // `sync_file_range` reads no memory of ours.
    let _ = unsafe { libc::sync_file_range(out.as_raw_fd(), at, len, libc::SYNC_FILE_RANGE_WRITE) };
}

fn write_all_at(out: BorrowedFd<'_>, mut bytes: &[u8], mut at: u64) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::pwrite(out, bytes, at) {
            Ok(0) => return Err(Errno::NOSPC),
            Ok(n) => {
                bytes = &bytes[n..];
                at += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The length and digest of an open file's content, holes hashed without being read.
pub(crate) fn hash_file(fd: BorrowedFd<'_>, digest: &mut Inline) -> Result<(u64, [u8; 32]), Errno> {
    let fed = feed_file(fd, digest);
    // Ended after an error too, so the next file starts afresh.
    let digest = digest.finish_file();
    fed.map(|len| (len, digest))
}

/// Feeds `digest` an open file's content (holes as zeros, never read) and answers its
/// length; the caller ends the file, also after an error.
fn feed_file(fd: BorrowedFd<'_>, digest: &mut dyn Digester) -> Result<u64, Errno> {
    let size = fmeta(fd)?.size;
    let mut on = |_| Ok(());
    let pos = stream(fd, None, digest, &mut on).map_err(|e| match e {
        StreamError::Read(e) | StreamError::Write(e) => e,
        StreamError::Stop(_) => Errno::INTR,
    })?;
    let len = pos.max(size);
    digest.zeros(len - pos, &mut on).map_err(|_| Errno::INTR)?;
    Ok(len)
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// `Timespec`'s field types differ between architectures.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn timestamps(meta: &Meta) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime.0 as _,
            tv_nsec: meta.atime.1 as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime.0 as _,
            tv_nsec: meta.mtime.1 as _,
        },
    }
}

/// The permission bits a copy gets (see [`ManifestEntry::expected_mode`]).
fn applied_mode(meta: &Meta, owners: bool) -> Mode {
    Mode::from_raw_mode(if owners {
        meta.mode & 0o7777
    } else {
        meta.mode & 0o777
    })
}

/// Gives an open copy the source's owner (as root), permission bits and times, in the
/// order that keeps them: `chown` clears set-user-id bits, so it goes first; times last.
fn apply_meta(fd: BorrowedFd<'_>, meta: &Meta, owners: bool) -> Result<(), Errno> {
    if owners {
        rfs::fchown(
            fd,
            Some(Uid::from_raw_unchecked(meta.uid)),
            Some(Gid::from_raw_unchecked(meta.gid)),
        )?;
    }
    rfs::fchmod(fd, applied_mode(meta, owners))?;
    rfs::futimens(fd, &timestamps(meta))
}

/// Whether a link's target lies outside the cluster: absolute, or climbing above the root
/// with `..` (judged lexically from the link's own directory).
pub(crate) fn is_outside(rel: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth = rel.matches('/').count();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            _ => depth += 1,
        }
    }
    false
}

/// Checks the abandon flag and reports that work moved.
pub(crate) fn step(cancelled: &AtomicBool, progress: &Progress) -> Result<(), FsError> {
    if cancelled.load(Ordering::Relaxed) {
        return Err(FsError::Cancelled);
    }
    progress.tick();
    Ok(())
}

fn not_utf8(base: &str, rel: &str) -> FsError {
    FsError::Refused(format!(
        "{} has a name that is not UTF-8, which the manifest cannot record: rename it or move \
         it out of the data directory",
        shown(base, rel)
    ))
}

/// Sums the allocated size of the regular files (what the copy will write), reading only
/// metadata.
pub(crate) struct Sizer<'a> {
    pub needed: u64,
    /// With a base to link from: every file met, whose size counts only if it is not
    /// unchanged since the base (see [`Sizer::settle`]). The walk goes on while another
    /// thread reads the base's manifest.
    pub files: Option<Vec<(String, Meta)>>,
    pub base: &'a str,
    pub cancelled: &'a AtomicBool,
    pub progress: &'a Progress,
}

impl Sizer<'_> {
    /// Adds the files met that are not unchanged since `base` (all of them without one):
    /// files linked need no space.
    pub(crate) fn settle(&mut self, base: Option<&Base>) {
        for (rel, meta) in self.files.take().unwrap_or_default() {
            if base.is_none_or(|base| base.unchanged(&rel, &meta).is_none()) {
                self.needed = self.needed.saturating_add(meta.allocated);
            }
        }
    }
}

impl Visitor for Sizer<'_> {
    fn entry(&mut self, entry: &Entry<'_>) -> Result<(), FsError> {
        step(self.cancelled, self.progress)?;
        if entry.meta.kind != EntryKind::File {
            return Ok(());
        }
        match self.files.as_mut() {
            Some(files) => files.push((entry.rel.to_owned(), entry.meta)),
            None => self.needed = self.needed.saturating_add(entry.meta.allocated),
        }
        Ok(())
    }

    fn enter(&mut self, _entry: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<bool, FsError> {
        step(self.cancelled, self.progress)?;
        Ok(true)
    }

    fn bad_name(&mut self, rel: &str) -> Result<(), FsError> {
        Err(not_utf8(self.base, rel))
    }
}

/// Copies the source tree into the destination chain, recording every entry.
pub(crate) struct Copier<'a> {
    pub dest: Chain,
    pub entries: Vec<ManifestEntry>,
    pub total_bytes: u64,
    /// Entries listed that were gone when their turn came.
    pub vanished: Vec<String>,
    pub owners: bool,
    /// The source, for messages.
    pub base: &'a str,
    /// The destination `data/`, for messages.
    pub dest_base: &'a str,
    pub cancelled: &'a AtomicBool,
    pub progress: &'a Progress,
    pub hooks: &'a TestHooks,
    /// The algorithm of the checksums the copy records (`serve --checksum`).
    pub hash: HashAlgorithm,
    /// Hashes what is read without being copied (`--verify-unchanged`).
    pub inline: Inline,
    /// Hashes what is copied, beside the copy (see [`super::digest`]); `None` hashes in
    /// this thread.
    pub piped: Option<Piped>,
    /// Which digest of `piped` belongs to which entry: (digest, entry) indexes.
    pub waiting: Vec<(usize, usize)>,
    /// The backup to link unchanged files from (see [`super::base`]).
    pub link_from: Option<Base>,
    /// Also compare an unchanged file's checksum before linking it.
    pub verify_unchanged: bool,
    /// Bytes and files linked from the base rather than copied.
    pub linked_bytes: u64,
    pub linked_files: u64,
    /// Links made on worker threads (see [`super::linker`]), when there is a base and
    /// `--verify-unchanged` is off; `None` links in this thread.
    pub linker: Option<Linker>,
    /// The batch of links being gathered for the current directory.
    pub batch: Option<Batch>,
    /// Entries queued as linked whose file vanished before it could be copied instead.
    pub removed: Vec<usize>,
    /// Runs `syncfs` as the copy goes (see [`super::flusher`]); `None` leaves it all to
    /// the one before the rename.
    pub flusher: Option<Flusher>,
}

impl Copier<'_> {
    fn file(&mut self, entry: &Entry<'_>) -> Result<(), FsError> {
        if let Some(hook) = &self.hooks.before_open {
            hook(entry.rel);
        }
        // An unchanged file is linked from the base without being opened: it is the base's
        // copy that is linked, never the source that is read, and the listing's `lstat` is
        // the moment the backup saw it (as the open is for a file it copies). On a second
        // backup that skips an open, an `fstat` and a close for nearly every file.
        // (`--verify-unchanged` reads the file first: see `linked_after_reading`.)
        if self.queue_link(entry)? {
            return Ok(());
        }
        self.copy_file(entry, None, None)
    }

    /// Copies the regular file `entry` (as listed) into the current directory, or into
    /// `dest` at manifest index `at` (a queued link that must be a copy instead).
    fn copy_file(
        &mut self,
        entry: &Entry<'_>,
        dest: Option<BorrowedFd<'_>>,
        at: Option<usize>,
    ) -> Result<(), FsError> {
        let Entry { dir, name, rel, .. } = *entry;
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let src = match rfs::openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return self.gone(rel, at),
            // Replaced since it was listed: by a link (`ELOOP`), a socket (`ENXIO`), ...
            // Look again and store or skip what is there now.
            Err(e) => {
                return match lmeta(dir, name) {
                    Ok(now) if now.kind == EntryKind::Symlink => self.link(
                        &Entry {
                            meta: now,
                            ..*entry
                        },
                        dest,
                        at,
                    ),
                    Ok(now) if !matches!(now.kind, EntryKind::File | EntryKind::Dir) => {
                        self.skip(rel, &now, at);
                        Ok(())
                    }
                    Ok(now) if now.kind == EntryKind::Dir => {
                        Err(FsError::Replaced(shown(self.base, rel)))
                    }
                    Err(Errno::NOENT) => self.gone(rel, at),
                    _ => Err(FsError::io("open", shown(self.base, rel), e)),
                };
            }
        };
        let before =
            fmeta(src.as_fd()).map_err(|e| FsError::io("read", shown(self.base, rel), e))?;
        match before.kind {
            EntryKind::File => {
                if at.is_none()
                    && self.verify_unchanged
                    && self.linked_after_reading(&src, &before, name, rel)?
                {
                    return Ok(());
                }
                self.regular(src, &before, name, rel, dest, at)
            }
            EntryKind::Dir | EntryKind::Symlink => Err(FsError::Replaced(shown(self.base, rel))),
            // A FIFO, socket or device swapped in after the listing: opened without
            // blocking, never read.
            _ => {
                self.skip(rel, &before, at);
                Ok(())
            }
        }
    }

    /// Records `entry` as the manifest's next entry, or at index `at` (in place of a queued
    /// link's); answers its index.
    fn place(&mut self, entry: ManifestEntry, at: Option<usize>) -> usize {
        match at.and_then(|at| self.entries.get_mut(at).map(|slot| (at, slot))) {
            Some((at, slot)) => {
                *slot = entry;
                at
            }
            None => {
                self.entries.push(entry);
                self.entries.len() - 1
            }
        }
    }

    /// The file `rel` vanished before it was read; `at` is its queued link's entry.
    fn gone(&mut self, rel: &str, at: Option<usize>) -> Result<(), FsError> {
        if let Some(at) = at {
            self.removed.push(at);
        }
        self.vanished(rel)
    }

    /// Queues the link of a file unchanged since the base (see [`super::linker`]): whether
    /// it was queued (else it is to be copied now).
    fn queue_link(&mut self, entry: &Entry<'_>) -> Result<bool, FsError> {
        let Entry { dir, name, rel, .. } = *entry;
        // Without a pool there is nothing to link from, or `--verify-unchanged` links after
        // reading.
        let (Some(base), Some(_)) = (self.link_from.as_ref(), self.linker.as_ref()) else {
            return Ok(false);
        };
        let Some(found) = base.unchanged(rel, &entry.meta) else {
            return Ok(false);
        };
        let expected = Expected::of(found, applied_mode(&entry.meta, self.owners).as_raw_mode());
        let checksum = found.checksum(self.hash).map(str::to_owned);
        let (parent, _) = split(rel);
        let depth = self.linker.as_ref().map_or(0, Linker::depth);
        let same = |b: &Batch| b.parent == parent && b.depth == depth && b.items.len() < BATCH;
        if !self.batch.as_ref().is_some_and(same) {
            self.flush()?;
            let dest_base = self.dest_base;
            let link_err = |e| FsError::io("link", shown(dest_base, rel), e);
            let Some(base) = self.link_from.as_ref() else {
                return Ok(false);
            };
            let Some(base_dir) = base.open_parent(parent).map_err(link_err)? else {
                return Ok(false);
            };
            let src = dup(dir).map_err(|e| FsError::io("open", shown(self.base, parent), e))?;
            let dest = dup(self.dest.current()?).map_err(link_err)?;
            self.batch = Some(Batch::new(parent.to_owned(), depth, src, dest, base_dir));
        }
        let mut made = ManifestEntry::new(rel.to_owned(), EntryKind::File, &entry.meta);
        if let Some(checksum) = checksum {
            made.set_checksum(self.hash, checksum);
        }
        let at = self.place(made, None);
        if let Some(batch) = self.batch.as_mut() {
            batch.items.push(Item {
                name: name.to_owned(),
                at,
                expected,
            });
        }
        Ok(true)
    }

    /// Sends the batch being gathered, then settles the batches that are back.
    fn flush(&mut self) -> Result<(), FsError> {
        if let (Some(batch), Some(linker)) = (self.batch.take(), self.linker.as_mut()) {
            if !batch.items.is_empty() {
                linker.send(batch)?;
            }
        }
        self.settle(false)
    }

    /// Settles the batches that are back (with `wait`, every batch sent): counts what was
    /// linked, copies what was not, and sets the metadata of the directories that no
    /// longer wait for a batch.
    fn settle(&mut self, wait: bool) -> Result<(), FsError> {
        loop {
            let Some(linker) = self.linker.as_mut() else {
                return Ok(());
            };
            let Some(done) = linker.back(wait)? else {
                break;
            };
            if done.broke {
                return Err(FsError::Refused(
                    "a thread linking files into the backup failed".into(),
                ));
            }
            if done.stopped {
                return Err(FsError::Cancelled);
            }
            let batch = done.batch;
            if let Some((i, e)) = done.failed {
                let rel = batch
                    .items
                    .get(i)
                    .and_then(|item| self.entries.get(item.at));
                let rel = rel.map_or(batch.parent.as_str(), |entry| entry.path.as_str());
                return Err(FsError::io("link", shown(self.dest_base, rel), e));
            }
            for (item, linked) in batch.items.iter().zip(&done.linked) {
                if *linked {
                    let size = item.expected.size();
                    self.total_bytes += size;
                    self.linked_bytes += size;
                    self.linked_files += 1;
                    continue;
                }
                let rel = match self.entries.get(item.at) {
                    Some(entry) => entry.path.clone(),
                    None => continue,
                };
                match lmeta(batch.src.as_fd(), &item.name) {
                    Ok(meta) => {
                        let entry = Entry {
                            dir: batch.src.as_fd(),
                            name: &item.name,
                            rel: &rel,
                            meta,
                        };
                        self.copy_file(&entry, Some(batch.dest.as_fd()), Some(item.at))?;
                    }
                    Err(Errno::NOENT) => self.gone(&rel, Some(item.at))?,
                    Err(e) => return Err(FsError::io("read", shown(self.base, &rel), e)),
                }
            }
        }
        let Some(linker) = self.linker.as_mut() else {
            return Ok(());
        };
        let (ready, waiting): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut linker.pending)
            .into_iter()
            .partition(|p| linker.is_back(p.after));
        linker.pending = waiting;
        for p in ready {
            apply_meta(p.fd.as_fd(), &p.meta, self.owners).map_err(|e| {
                FsError::io("set the metadata of", shown(self.dest_base, &p.rel), e)
            })?;
        }
        Ok(())
    }

    /// Waits for every queued link, copies what could not be linked, stops the workers and
    /// drops the entries of files that vanished meanwhile; then waits for the checksums of
    /// the files copied and records them.
    pub(crate) fn finish(&mut self) -> Result<(), FsError> {
        self.flush()?;
        // Every batch is back, so every directory waiting for one has its metadata.
        self.settle(true)?;
        // Dropping the pool joins its workers.
        self.linker = None;
        self.finish_hashes()?;
        if !self.removed.is_empty() {
            let removed: std::collections::HashSet<usize> = self.removed.drain(..).collect();
            let mut i = 0;
            self.entries.retain(|_| {
                i += 1;
                !removed.contains(&(i - 1))
            });
        }
        Ok(())
    }

    /// `--verify-unchanged`: links the file from the base when it is unchanged since the
    /// base read it and the open source `src`, read whole, has the base's checksum; whether
    /// it did (else it is to be copied).
    fn linked_after_reading(
        &mut self,
        src: &OwnedFd,
        before: &Meta,
        name: &CStr,
        rel: &str,
    ) -> Result<bool, FsError> {
        let Some(base) = self.link_from.as_mut() else {
            return Ok(false);
        };
        let Some(entry) = base.unchanged(rel, before).cloned() else {
            return Ok(false);
        };
        let (len, digest) = hash_file(src.as_fd(), &mut self.inline).map_err(|e| match e {
            Errno::INTR => FsError::Cancelled,
            e => FsError::io("read", shown(self.base, rel), e),
        })?;
        let checksum = hex(&digest);
        if len != entry.size || entry.checksum(self.hash) != Some(checksum.as_str()) {
            return Ok(false);
        }
        let dest = self.dest.current()?;
        let mode = applied_mode(before, self.owners).as_raw_mode();
        let linked = base
            .link(&entry, dest, name, mode, self.owners)
            .map_err(|e| FsError::io("link", shown(self.dest_base, rel), e))?;
        if matches!(linked, Linked::Copy) {
            return Ok(false);
        }
        let mut made = ManifestEntry::new(rel.to_owned(), EntryKind::File, before);
        made.set_checksum(self.hash, checksum);
        self.total_bytes += entry.size;
        self.linked_bytes += entry.size;
        self.linked_files += 1;
        self.entries.push(made);
        Ok(true)
    }

    fn regular(
        &mut self,
        src: OwnedFd,
        before: &Meta,
        name: &CStr,
        rel: &str,
        into: Option<BorrowedFd<'_>>,
        at: Option<usize>,
    ) -> Result<(), FsError> {
        let src_shown = shown(self.base, rel);
        let dst_shown = shown(self.dest_base, rel);
        let Copier {
            dest,
            inline,
            piped,
            cancelled,
            progress,
            hooks,
            owners,
            ..
        } = self;
        let into = match into {
            Some(fd) => fd,
            None => dest.current()?,
        };
        let out = rfs::openat(
            into,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| FsError::io("create", &dst_shown, e))?;
        let mut first = true;
        let mut on = |moved: Moved| -> Result<(), FsError> {
            if cancelled.load(Ordering::Relaxed) {
                return Err(FsError::Cancelled);
            }
            match moved {
                Moved::Data(n) => {
                    progress.add_bytes(n as u64);
                    if first {
                        first = false;
                        if let Some(hook) = &hooks.after_first_chunk {
                            hook(rel);
                        }
                    }
                }
                Moved::Hole => progress.tick(),
            }
            Ok(())
        };
        let digest: &mut dyn Digester = match piped {
            Some(piped) => piped,
            None => inline,
        };
        let pos = stream(src.as_fd(), Some(out.as_fd()), digest, &mut on)
            .map_err(|e| e.into_fs(&src_shown, &dst_shown))?;
        let after = fmeta(src.as_fd()).map_err(|e| FsError::io("read", &src_shown, e))?;
        let len = pos.max(after.size);
        digest.zeros(len - pos, &mut on)?;
        let ended = digest.end();
        if len > pos {
            // A trailing hole: the size is set without writing it.
            rfs::ftruncate(&out, len).map_err(|e| FsError::io("write", &dst_shown, e))?;
        }
        apply_meta(out.as_fd(), before, *owners)
            .map_err(|e| FsError::io("set the metadata of", &dst_shown, e))?;
        let mut entry = ManifestEntry::new(rel.to_owned(), EntryKind::File, before);
        entry.size = len;
        entry.changed = after.size != before.size || after.mtime != before.mtime;
        if let Ended::Now(digest) = &ended {
            entry.set_checksum(self.hash, hex(digest));
        }
        self.total_bytes += len;
        if let Some(f) = &mut self.flusher {
            f.wrote(len);
        }
        let at = self.place(entry, at);
        if let Ended::Later(k) = ended {
            self.waiting.push((k, at));
        }
        Ok(())
    }

    /// Waits for the hashes of the files copied and records them in their entries.
    pub(crate) fn finish_hashes(&mut self) -> Result<(), FsError> {
        let Some(piped) = self.piped.take() else {
            return Ok(());
        };
        let digests = piped.finish()?;
        for (k, at) in self.waiting.drain(..) {
            if let (Some(digest), Some(entry)) = (digests.get(k), self.entries.get_mut(at)) {
                entry.set_checksum(self.hash, hex(digest));
            }
        }
        Ok(())
    }

    /// Copies the symbolic link `entry` into the current directory, or into `into` at
    /// manifest index `at`.
    fn link(
        &mut self,
        entry: &Entry<'_>,
        into: Option<BorrowedFd<'_>>,
        at: Option<usize>,
    ) -> Result<(), FsError> {
        let Entry { dir, name, rel, .. } = *entry;
        let meta = &entry.meta;
        let target: CString = match rfs::readlinkat(dir, name, Vec::new()) {
            Ok(t) => t,
            Err(Errno::NOENT) => return self.gone(rel, at),
            Err(Errno::INVAL) => return Err(FsError::Replaced(shown(self.base, rel))),
            Err(e) => return Err(FsError::io("read the link", shown(self.base, rel), e)),
        };
        let Ok(text) = target.to_str() else {
            return Err(FsError::Refused(format!(
                "the link {} points to a name that is not UTF-8, which the manifest cannot \
                 record",
                shown(self.base, rel)
            )));
        };
        let dst_shown = shown(self.dest_base, rel);
        let out = match into {
            Some(fd) => fd,
            None => self.dest.current()?,
        };
        rfs::symlinkat(target.as_c_str(), out, name)
            .map_err(|e| FsError::io("create the link", &dst_shown, e))?;
        if self.owners {
            rfs::chownat(
                out,
                name,
                Some(Uid::from_raw_unchecked(meta.uid)),
                Some(Gid::from_raw_unchecked(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| FsError::io("set the owner of", &dst_shown, e))?;
        }
        rfs::utimensat(out, name, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| FsError::io("set the times of", &dst_shown, e))?;
        let mut entry = ManifestEntry::new(rel.to_owned(), EntryKind::Symlink, meta);
        entry.size = text.len() as u64;
        entry.outside = is_outside(rel, text);
        entry.target = Some(text.to_owned());
        self.place(entry, at);
        Ok(())
    }

    fn skip(&mut self, rel: &str, meta: &Meta, at: Option<usize>) {
        let mut entry = ManifestEntry::new(rel.to_owned(), meta.kind, meta);
        entry.size = 0;
        self.place(entry, at);
    }
}

impl Visitor for Copier<'_> {
    fn entry(&mut self, entry: &Entry<'_>) -> Result<(), FsError> {
        step(self.cancelled, self.progress)?;
        match entry.meta.kind {
            EntryKind::File => self.file(entry),
            EntryKind::Symlink => self.link(entry, None, None),
            EntryKind::Dir => Err(FsError::Replaced(shown(self.base, entry.rel))),
            _ => {
                self.skip(entry.rel, &entry.meta, None);
                Ok(())
            }
        }
    }

    fn enter(&mut self, entry: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<bool, FsError> {
        let Entry { name, rel, .. } = *entry;
        let meta = &entry.meta;
        step(self.cancelled, self.progress)?;
        // The batch gathered belongs to the directory being left for this one.
        self.flush()?;
        let dst_shown = shown(self.dest_base, rel);
        let parent = self.dest.current()?;
        rfs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
            .map_err(|e| FsError::io("create", &dst_shown, e))?;
        let made = open_dir_at(parent, name).map_err(|e| FsError::io("open", &dst_shown, e))?;
        let id = fmeta(made.as_fd())
            .map_err(|e| FsError::io("read", &dst_shown, e))?
            .id();
        self.dest.push(name.to_owned(), made, id);
        if let Some(linker) = self.linker.as_mut() {
            linker.enter();
        }
        self.entries
            .push(ManifestEntry::new(rel.to_owned(), EntryKind::Dir, meta));
        Ok(true)
    }

    fn leave(&mut self, entry: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<(), FsError> {
        self.flush()?;
        let dst_shown = shown(self.dest_base, entry.rel);
        let Some((_, made)) = self.dest.pop()? else {
            return Err(FsError::Replaced(dst_shown));
        };
        // Directories left while their links are being made wait with their descriptors;
        // climbing a deep tree leaves one per level, so past a bound the walk first waits
        // for the batches in flight (the descriptors held stay bounded, SPEC §13's depth).
        if self
            .linker
            .as_ref()
            .is_some_and(|l| l.pending.len() >= MAX_WAITING_DIRS)
        {
            self.settle(true)?;
        }
        if let Some(linker) = self.linker.as_mut() {
            if let Some(after) = linker.leave() {
                if !linker.is_back(after) {
                    // Its links are still being made, and each would move its times.
                    linker.pending.push(Pending {
                        fd: made,
                        meta: entry.meta,
                        rel: entry.rel.to_owned(),
                        after,
                    });
                    return Ok(());
                }
            }
        }
        apply_meta(made.as_fd(), &entry.meta, self.owners)
            .map_err(|e| FsError::io("set the metadata of", &dst_shown, e))
    }

    fn vanished(&mut self, rel: &str) -> Result<(), FsError> {
        self.vanished.push(rel.to_owned());
        Ok(())
    }

    fn bad_name(&mut self, rel: &str) -> Result<(), FsError> {
        Err(not_utf8(self.base, rel))
    }
}

#[cfg(test)]
mod tests {
    use super::is_outside;

    #[test]
    fn links_that_climb_out_are_outside() {
        assert!(is_outside("pg_wal", "/mnt/wal"));
        assert!(is_outside("pg_wal", "../wal"));
        assert!(is_outside("a/b", "../../x"));
        assert!(is_outside("a/b", "../c/../../x"));
        assert!(!is_outside("a/b", "../c"));
        assert!(!is_outside("a/b", "./c/../d"));
        assert!(!is_outside("link", "target"));
    }
}
