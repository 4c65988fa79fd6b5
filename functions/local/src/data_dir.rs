//! The data directory's ownership and privacy (SPEC §12): one server per directory, held by
//! an OS file lock, and nothing in it readable by other users.
//!
//! # Decisions
//! - **The lock** is `flock(LOCK_EX | LOCK_NB)` on `<dir>/lock`, which the kernel releases
//!   when the process dies however it dies, so a crash never leaves a stale lock to clean by
//!   hand. The file holds `pid=… started=…` for the refusal message only; its content is
//!   never trusted for the decision. It is taken **before** anything else in the directory is
//!   touched: a second server opens the lock file, fails to lock it, and exits having changed
//!   nothing (not even a mode).
//! - The backup root is held too: a lock on the directory itself (nothing is created in
//!   it), whether it is the default `<data-dir>/backups` or `serve --backup-root`, and for
//!   a `--backup-root` also the lock file `<root>/.lock`, which works on file systems that
//!   cannot lock a directory. So two servers can never clean up or prune each other's
//!   backups there, not even one given the other's `backups/` as its `--backup-root`.
//! - **Modes**: directories `0700`, files `0600`. Creating them private is what matters
//!   (there is no window in which another user can open them); at start-up, what an older
//!   version left wider is tightened and said once in the log.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The lock file inside a data directory.
pub const LOCK_FILE: &str = "lock";
/// The lock file inside a backup root given with `--backup-root`.
pub const ROOT_LOCK_FILE: &str = ".lock";
/// The API token of `serve` (written by `backupctl`; listed here so that start-up tightens
/// it with the rest, in the same log line).
pub const TOKEN_FILE: &str = "token";

/// Why a directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DirLockError {
    /// Another live process holds it.
    #[error("{what} {} is in use by {holder}; stop that server or choose another directory", path.display())]
    InUse {
        what: &'static str,
        path: PathBuf,
        /// `process PID (started …)`, as that process wrote it.
        holder: String,
    },
    #[error("cannot prepare {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DirLockError + '_ {
    move |source| DirLockError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An exclusive hold on a directory, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `dir` (`0700`) if missing and takes its lock file `name`, never waiting.
    /// `what` names the directory in the refusal ("data directory", "backup root").
    pub fn acquire(dir: &Path, name: &str, what: &'static str) -> Result<DirLock, DirLockError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(io(&path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                // Best effort: the holder may be writing it right now.
                let _ = file.read_to_string(&mut text);
                return Err(DirLockError::InUse {
                    what,
                    path: dir.to_path_buf(),
                    holder: describe_holder(&text),
                });
            }
            Err(e) => return Err(io(&path)(e.into())),
        }
        let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let line = format!("pid={} started={started}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(line.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io(&path))?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes a lock on the directory `dir` itself (`flock` on the directory), never
    /// waiting and creating nothing in it: how a backup root is held, the default
    /// `<data-dir>/backups` included, so that a server given another one's root as its
    /// `--backup-root` is refused before it writes or cleans anything there. `None` when
    /// the file system cannot lock a directory (some remote ones): the root's lock file,
    /// where there is one, still holds it.
    pub fn hold_dir(dir: &Path, what: &'static str) -> Result<Option<DirLock>, DirLockError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        let file = File::open(dir).map_err(io(dir))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(DirLock {
                _file: file,
                path: dir.to_path_buf(),
            })),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                // Who holds it: the root's own lock file, or the data directory it is the
                // default root of.
                let holder = [dir.join(ROOT_LOCK_FILE), dir.join("..").join(LOCK_FILE)]
                    .iter()
                    .find_map(|path| fs::read_to_string(path).ok())
                    .map_or_else(|| "another server".to_owned(), |t| describe_holder(&t));
                Err(DirLockError::InUse {
                    what,
                    path: dir.to_path_buf(),
                    holder,
                })
            }
            Err(_) => Ok(None),
        }
    }
}

/// `process 1234 (started 2026-11-30T07:00:00Z)` from the lock file's `pid=… started=…`.
fn describe_holder(text: &str) -> String {
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(str::to_owned)
    };
    match (field("pid="), field("started=")) {
        (Some(pid), Some(started)) => format!("process {pid} (started {started})"),
        (Some(pid), None) => format!("process {pid}"),
        _ => "another process".to_owned(),
    }
}

/// Makes `path` no wider than `mode` (`0700` for directories, `0600` for files), leaving
/// it alone when missing or already private. Answers whether it changed anything.
pub fn tighten(path: &Path, mode: u32) -> std::io::Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        // Never chmod through a link: the target may be anyone's file.
        return Ok(false);
    }
    let current = meta.permissions().mode() & 0o7777;
    if current & !mode == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(current & mode))?;
    Ok(true)
}

/// [`tighten`] for a directory the operator named (the data directory, the backup root),
/// following a symlink to it: the directory it leads to is the one the server writes in.
pub fn tighten_followed(path: &Path, mode: u32) -> std::io::Result<bool> {
    match fs::canonicalize(path) {
        Ok(real) => tighten(&real, mode),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every backup directory of a backup root with its `data/` (`0700`) and manifest
/// (`0600`), for [`tighten`]: what an older version may have left wider. Only directories
/// named by a backup id are backups: a `--backup-root` may be a directory that already
/// holds other things, which the server never changes. Entries are not followed.
pub fn backups_within(root: &Path) -> std::io::Result<Vec<(PathBuf, u32)>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(backup_engine::ids::is_valid_id);
        if !ours || !entry.file_type()?.is_dir() {
            continue;
        }
        let dir = entry.path();
        found.push((dir.join("data"), 0o700));
        found.push((dir.join("manifest.json"), 0o600));
        found.push((dir, 0o700));
    }
    Ok(found)
}

/// Creates an empty file with mode `0600` unless it exists, so a program that opens it
/// later (SQLite) never creates it with the process's umask.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), LOCK_FILE, "data directory").unwrap();
        let before = fs::read_to_string(first.path()).unwrap();
        let err = DirLock::acquire(dir.path(), LOCK_FILE, "data directory").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("is in use by process {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("(started "), "{text}");
        assert_eq!(fs::read_to_string(first.path()).unwrap(), before);
        drop(first);
        // Free again once dropped. Not always at the same instant: another test of this
        // process may be starting a child (a hook), and between its fork and its exec the
        // child shares every descriptor, the lock's too (close-on-exec closes it at exec).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match DirLock::acquire(dir.path(), LOCK_FILE, "data directory") {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("the lock stayed held after it was dropped: {e}"),
            }
        }
    }

    #[test]
    fn tighten_narrows_wide_modes_and_leaves_private_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.db");
        fs::write(&file, b"x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(tighten(&file, 0o600).unwrap());
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!tighten(&file, 0o600).unwrap());
        assert!(!tighten(&dir.path().join("missing"), 0o600).unwrap());
    }
}
