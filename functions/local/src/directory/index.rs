//! The manifest of a directory in place, without copying it: what a `command` backup
//! (SPEC §15) is checksummed into once its command filled `$BACKUP_DIR`.
//!
//! The same walk as a copy ([`walk`](super::walk)), the same entries and the same hashing
//! ([`hash_file`]): a command backup's manifest reads, verifies and restores exactly like a
//! directory backup's. What differs: nothing is copied (a FIFO, socket or device left there
//! is removed and listed as skipped, as a copy leaves one out), and a file that changes
//! while it is hashed means the command (or a process it left behind) is still writing,
//! which fails the backup rather than being noted, since nothing else writes there.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::AtomicBool;

use backup_engine::Progress;
use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use super::copy::{hash_file, hex, is_outside, step};
use super::digest::Inline;
use super::manifest::{EntryKind, HashAlgorithm, ManifestEntry};
use super::walk::{fmeta, shown, Entry, FsError, Visitor};

/// Lists and hashes every entry of a tree, in walk order.
pub(crate) struct Indexer<'a> {
    pub entries: Vec<ManifestEntry>,
    pub total_bytes: u64,
    pub base: &'a str,
    pub cancelled: &'a AtomicBool,
    pub progress: &'a Progress,
    digest: Inline,
    hash: HashAlgorithm,
}

impl<'a> Indexer<'a> {
    pub fn new(
        base: &'a str,
        cancelled: &'a AtomicBool,
        progress: &'a Progress,
        hash: HashAlgorithm,
    ) -> Self {
        Indexer {
            entries: Vec::new(),
            total_bytes: 0,
            base,
            cancelled,
            progress,
            digest: Inline::new(hash),
            hash,
        }
    }

    fn file(&mut self, entry: &Entry<'_>) -> Result<(), FsError> {
        let shown_as = shown(self.base, entry.rel);
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = rfs::openat(entry.dir, entry.name, flags, Mode::empty())
            .map_err(|e| FsError::io("open", &shown_as, e))?;
        let before = fmeta(fd.as_fd()).map_err(|e| FsError::io("read", &shown_as, e))?;
        if before.kind != EntryKind::File {
            return Err(FsError::Replaced(shown_as));
        }
        let (len, digest) = hash_file(fd.as_fd(), &mut self.digest).map_err(|e| match e {
            Errno::INTR => FsError::Cancelled,
            e => FsError::io("read", &shown_as, e),
        })?;
        self.progress.add_bytes(len);
        let after = fmeta(fd.as_fd()).map_err(|e| FsError::io("read", &shown_as, e))?;
        if after.size != before.size || after.mtime != before.mtime {
            return Err(FsError::Refused(format!(
                "{shown_as} changed while it was checksummed: something is still writing the \
                 backup after its command exited"
            )));
        }
        let mut made = ManifestEntry::new(entry.rel.to_owned(), EntryKind::File, &before);
        made.size = len;
        made.set_checksum(self.hash, hex(&digest));
        self.total_bytes += len;
        self.entries.push(made);
        Ok(())
    }

    fn link(&mut self, entry: &Entry<'_>) -> Result<(), FsError> {
        let shown_as = shown(self.base, entry.rel);
        let target = rfs::readlinkat(entry.dir, entry.name, Vec::new())
            .map_err(|e| FsError::io("read the link", &shown_as, e))?;
        let Ok(text) = target.to_str() else {
            return Err(FsError::Refused(format!(
                "the link {shown_as} points to a name that is not UTF-8, which the manifest \
                 cannot record"
            )));
        };
        let mut made = ManifestEntry::new(entry.rel.to_owned(), EntryKind::Symlink, &entry.meta);
        made.size = text.len() as u64;
        made.outside = is_outside(entry.rel, text);
        made.target = Some(text.to_owned());
        self.entries.push(made);
        Ok(())
    }
}

impl Visitor for Indexer<'_> {
    fn entry(&mut self, entry: &Entry<'_>) -> Result<(), FsError> {
        step(self.cancelled, self.progress)?;
        match entry.meta.kind {
            EntryKind::File => self.file(entry),
            EntryKind::Symlink => self.link(entry),
            EntryKind::Dir => Err(FsError::Replaced(shown(self.base, entry.rel))),
            kind => {
                // A FIFO, socket or device the command left is skipped and listed, as a
                // directory backup skips one: it goes from the backup (which is ours), so
                // that verify and restore find what the manifest says, nothing extra.
                rfs::unlinkat(entry.dir, entry.name, rfs::AtFlags::empty()).map_err(|e| {
                    FsError::io("remove the skipped entry", shown(self.base, entry.rel), e)
                })?;
                let mut made = ManifestEntry::new(entry.rel.to_owned(), kind, &entry.meta);
                made.size = 0;
                self.entries.push(made);
                Ok(())
            }
        }
    }

    fn enter(&mut self, entry: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<bool, FsError> {
        step(self.cancelled, self.progress)?;
        self.entries.push(ManifestEntry::new(
            entry.rel.to_owned(),
            EntryKind::Dir,
            &entry.meta,
        ));
        Ok(true)
    }

    fn vanished(&mut self, rel: &str) -> Result<(), FsError> {
        Err(FsError::Refused(format!(
            "{} disappeared while it was checksummed: something is still writing the backup \
             after its command exited",
            shown(self.base, rel)
        )))
    }

    fn bad_name(&mut self, rel: &str) -> Result<(), FsError> {
        Err(FsError::Refused(format!(
            "{} has a name that is not UTF-8, which the manifest cannot record",
            shown(self.base, rel)
        )))
    }
}
