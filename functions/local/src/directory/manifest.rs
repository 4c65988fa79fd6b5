//! `manifest.json`: what a backup holds, entry by entry, and the checks of a copy against it
//! (the cheap one before the final rename, the full one of [`verify`](super::verify)).
//!
//! # Format (version 5)
//! ```json
//! {"version": 5, "backupId": "…", "clusterId": "…", "jobId": "…", "description": "…",
//!  "record": {"organizationId": "default", "projectId": "default",
//!             "clusterDescription": "Orders", "provider": "directory",
//!             "created": "2026-12-03T14:00:00.123Z"},
//!  "source": "/srv/pg", "ownersKept": true, "hash": "blake3",
//!  "root": {"mode": 448, "uid": 26, "gid": 26, "mtimeNs": 1795755600000000000},
//!  "entries": [{"path": "base/1", "type": "file", "size": 8192, "mode": 384, "uid": 26,
//!               "gid": 26, "mtimeNs": …, "blake3": "…",
//!               "dev": 2049, "ino": 131077, "ctimeNs": …},
//!              {"path": "pg_wal", "type": "symlink", "size": 8, "target": "/mnt/wal",
//!               "outside": true, …},
//!              {"path": "run/sock", "type": "socket", "size": 0, …}],
//!  "totalBytes": 8192}
//! ```
//! Entries are in walk order (a directory before its contents, names sorted). `type` is one
//! of `file`, `dir`, `symlink`, `fifo`, `socket`, `char-device`, `block-device` (`unknown`
//! for what a version-1 manifest listed as skipped); only the first three are in the copy.
//! `changed` marks a file whose size or modification time changed while it was copied,
//! `outside` a link whose target is outside the cluster. `ownersKept` says whether the copy
//! carries the source's owners (the server ran as root), and so which modes to expect: see
//! [`ManifestEntry::expected_mode`].
//!
//! `record` (version 3) is the rest of the backup's own record, so that `serve
//! --rebuild-catalogue` can recreate it from the backup alone (SPEC §14); `provider` is
//! `command` for a backup made by a cluster's backup command, whose manifest describes the
//! files as the command left them (`ownersKept` is then always true).
//!
//! `dev`, `ino` and `ctimeNs` (version 4) are the source file's as it was read: what the next
//! backup of the cluster compares to hard-link an unchanged file from this one instead of
//! copying it (see `directory::base`). A version-3 manifest has none, so a backup after one
//! copies everything once.
//!
//! `hash` (version 5) names the algorithm of the files' checksums, and each file's checksum
//! is under that algorithm's name: `blake3` (what this version writes: several times
//! SHA-256's speed with the CPU's SIMD, so a copy, restore or verify is not bound by hashing)
//! or `sha256`. A manifest without `hash` is an older version's, whose checksums are SHA-256:
//! it verifies and restores as before, and the backup after it copies everything once.
//!
//! Version-2 manifests have no `record` and are read and verified as before; a rebuild
//! skips them, naming them. Version-1 manifests (`files`, `directories`, `links`, `skipped`, no metadata) are still
//! read: their entries carry no metadata, so only types, sizes, checksums and targets are
//! checked.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use backup_engine::Progress;

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use super::copy::{hash_file, hex};
use super::digest::{FileHashers, Inline};
use super::walk::{shown, Entry, FsError, Meta, Visitor};

/// The version this code writes.
pub const MANIFEST_VERSION: u32 = 5;

/// The algorithm of a manifest's checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// Versions 1 to 4 (a manifest that names none).
    #[default]
    Sha256,
    /// Version 5 on.
    Blake3,
}

impl HashAlgorithm {
    /// What this version writes unless `serve --checksum sha256` says otherwise.
    pub const CURRENT: HashAlgorithm = HashAlgorithm::Blake3;

    /// The manifest's name of the algorithm, as `serve --checksum` takes it.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Blake3 => "blake3",
        }
    }

    /// The algorithm's name as people write it ("the content does not match its BLAKE3").
    pub fn shown(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Blake3 => "BLAKE3",
        }
    }
}

/// The type of a manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    /// A version-1 `skipped` entry, whose type was not recorded, or a type the walk does
    /// not tell apart.
    Unknown,
}

impl EntryKind {
    /// Whether entries of this type are in the copy (the others are listed and skipped).
    pub fn is_copied(self) -> bool {
        matches!(self, EntryKind::File | EntryKind::Dir | EntryKind::Symlink)
    }

    /// The manifest's name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Socket => "socket",
            EntryKind::CharDevice => "char-device",
            EntryKind::BlockDevice => "block-device",
            EntryKind::Unknown => "unknown",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One entry of the source tree: copied (file, directory, link) or skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestEntry {
    /// Relative to the data directory, `/`-separated.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Bytes (a link's: its target's length).
    #[serde(default)]
    pub size: u64,
    /// Permission bits of the source (`0o7777`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Modification time, nanoseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime_ns: Option<i128>,
    /// Files, in a manifest whose `hash` is SHA-256: the content's digest, lower-case hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Files, in a manifest whose `hash` is BLAKE3 (version 5): the content's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Links: the target, as written in the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Files: the size or modification time changed while it was copied (maybe torn).
    #[serde(default, skip_serializing_if = "is_false")]
    pub changed: bool,
    /// Links: the target is outside the cluster, so not in the backup.
    #[serde(default, skip_serializing_if = "is_false")]
    pub outside: bool,
    /// Files (version 4): the source's device, inode and status change time (ns) as read
    /// before the copy: with its size, modification time, mode and owner, what the next
    /// backup compares to link a file that did not change instead of copying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime_ns: Option<i128>,
}

impl ManifestEntry {
    pub(crate) fn new(path: String, kind: EntryKind, meta: &Meta) -> ManifestEntry {
        ManifestEntry {
            size: if kind == EntryKind::Dir { 0 } else { meta.size },
            mode: Some(meta.mode),
            uid: Some(meta.uid),
            gid: Some(meta.gid),
            mtime_ns: Some(meta.mtime_ns()),
            dev: (kind == EntryKind::File).then_some(meta.dev),
            ino: (kind == EntryKind::File).then_some(meta.ino),
            ctime_ns: (kind == EntryKind::File).then(|| meta.ctime_ns()),
            ..ManifestEntry::bare(path, kind)
        }
    }

    /// An entry without metadata, size, checksum or target: what a version-1 manifest
    /// starts from.
    fn bare(path: String, kind: EntryKind) -> ManifestEntry {
        ManifestEntry {
            path,
            kind,
            size: 0,
            mode: None,
            uid: None,
            gid: None,
            mtime_ns: None,
            sha256: None,
            blake3: None,
            target: None,
            changed: false,
            outside: false,
            dev: None,
            ino: None,
            ctime_ns: None,
        }
    }

    /// The file's checksum (lower-case hex) under `algorithm`, the manifest's.
    pub fn checksum(&self, algorithm: HashAlgorithm) -> Option<&str> {
        match algorithm {
            HashAlgorithm::Sha256 => self.sha256.as_deref(),
            HashAlgorithm::Blake3 => self.blake3.as_deref(),
        }
    }

    /// Records the file's checksum under `algorithm`.
    pub fn set_checksum(&mut self, algorithm: HashAlgorithm, hex: String) {
        match algorithm {
            HashAlgorithm::Sha256 => self.sha256 = Some(hex),
            HashAlgorithm::Blake3 => self.blake3 = Some(hex),
        }
    }

    /// The permission bits the copy has: the source's when the owners were kept; otherwise
    /// without set-user-id, set-group-id and sticky bits, since the copy then belongs to the
    /// server's user, whose rights a set-user-id bit would lend.
    pub fn expected_mode(&self, owners_kept: bool) -> Option<u32> {
        self.mode
            .map(|m| if owners_kept { m & 0o7777 } else { m & 0o777 })
    }
}

/// The cluster directory's own metadata (the copy's `data/` is always `0700`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i128,
}

/// The parts of a backup's record that the manifest's own fields do not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogueRecord {
    pub organization_id: String,
    pub project_id: String,
    pub cluster_description: String,
    /// `directory` or `command`.
    pub provider: String,
    /// The record's creation instant, to the millisecond as stores keep it.
    #[serde(with = "millis")]
    pub created: chrono::DateTime<chrono::Utc>,
}

/// RFC 3339 with milliseconds: the catalogue's instants are milliseconds, and a rebuilt
/// record must equal the lost one.
mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| D::Error::custom(format!("`{text}` is not an RFC 3339 instant: {e}")))
    }
}

/// What a backup directory holds, written last so its presence means the copy is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "StoredManifest")]
pub struct Manifest {
    pub version: u32,
    pub backup_id: String,
    pub cluster_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub description: String,
    /// The rest of the backup's record (version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<CatalogueRecord>,
    /// The data directory copied.
    pub source: String,
    /// Whether copies carry the source's owner and group (the server ran as root).
    pub owners_kept: bool,
    /// The files' checksum algorithm (version 5; SHA-256 before).
    pub hash: HashAlgorithm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<RootMeta>,
    /// Every entry, in walk order.
    pub entries: Vec<ManifestEntry>,
    /// The sum of the copied files' sizes.
    pub total_bytes: u64,
}

impl Manifest {
    /// The regular files.
    pub fn files(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.of(EntryKind::File)
    }

    /// The directories.
    pub fn directories(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.of(EntryKind::Dir)
    }

    /// The symbolic links.
    pub fn links(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.of(EntryKind::Symlink)
    }

    /// The entries found and not copied (FIFOs, sockets, devices).
    pub fn skipped(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(|e| !e.kind.is_copied())
    }

    fn of(&self, kind: EntryKind) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(move |e| e.kind == kind)
    }
}

/// The manifest as stored, of either version.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredManifest {
    #[serde(default)]
    version: Option<u32>,
    backup_id: String,
    cluster_id: String,
    #[serde(default)]
    job_id: Option<String>,
    description: String,
    #[serde(default)]
    record: Option<CatalogueRecord>,
    source: String,
    #[serde(default)]
    owners_kept: bool,
    #[serde(default)]
    hash: HashAlgorithm,
    #[serde(default)]
    root: Option<RootMeta>,
    #[serde(default)]
    entries: Vec<ManifestEntry>,
    #[serde(default)]
    total_bytes: u64,
    // Version 1.
    #[serde(default)]
    files: Vec<LegacyFile>,
    #[serde(default)]
    directories: Vec<String>,
    #[serde(default)]
    links: Vec<LegacyLink>,
    #[serde(default)]
    skipped: Vec<String>,
}

#[derive(Deserialize)]
struct LegacyFile {
    path: String,
    size: u64,
    sha256: String,
}

#[derive(Deserialize)]
struct LegacyLink {
    path: String,
    target: String,
}

impl From<StoredManifest> for Manifest {
    fn from(s: StoredManifest) -> Self {
        let mut entries = s.entries;
        entries.extend(
            s.directories
                .into_iter()
                .map(|d| ManifestEntry::bare(d, EntryKind::Dir)),
        );
        entries.extend(s.files.into_iter().map(|f| ManifestEntry {
            size: f.size,
            sha256: Some(f.sha256),
            ..ManifestEntry::bare(f.path, EntryKind::File)
        }));
        entries.extend(s.links.into_iter().map(|l| ManifestEntry {
            size: l.target.len() as u64,
            target: Some(l.target),
            ..ManifestEntry::bare(l.path, EntryKind::Symlink)
        }));
        entries.extend(
            s.skipped
                .into_iter()
                .map(|p| ManifestEntry::bare(p, EntryKind::Unknown)),
        );
        Manifest {
            version: s.version.unwrap_or(1),
            backup_id: s.backup_id,
            cluster_id: s.cluster_id,
            job_id: s.job_id,
            description: s.description,
            record: s.record,
            source: s.source,
            owners_kept: s.owners_kept,
            hash: s.hash,
            root: s.root,
            entries,
            total_bytes: s.total_bytes,
        }
    }
}

/// One way a copy differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Relative to `data/` (empty for the backup as a whole).
    pub path: String,
    pub problem: String,
}

/// How much a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Types and sizes, nothing missing, nothing extra: cheap (metadata only).
    Quick,
    /// Also checksums (every byte re-read), link targets, modes, times and owners.
    Full,
}

/// The most problems a check keeps (it counts the rest).
const MAX_PROBLEMS: usize = 20;

/// Compares the tree below `data` with `manifest`.
pub(crate) struct Checker<'m> {
    manifest: &'m Manifest,
    expected: HashMap<&'m str, (&'m ManifestEntry, bool), foldhash::fast::RandomState>,
    depth: Depth,
    /// The first problems, each keyed by where the walk met it (see [`Checker::problem`]).
    problems: Vec<(u64, Problem)>,
    more: usize,
    /// How many entries the walk has met.
    seq: u64,
    /// Hashes in this thread when the hashing threads could not start.
    inline: Inline,
    /// A full check's reading and hashing threads, one per core (see
    /// [`FileHashers`]); the walk opens each file and hands it over.
    hashers: Option<FileHashers>,
    /// The files handed to `hashers`: result index, entry number, entry.
    pending: Vec<(usize, u64, &'m ManifestEntry)>,
    /// During a run: the heartbeat to tick and the abandon flag to honour.
    watch: Option<(Progress, Arc<AtomicBool>)>,
}

impl<'m> Checker<'m> {
    pub(crate) fn new(manifest: &'m Manifest, depth: Depth) -> Checker<'m> {
        Checker {
            manifest,
            expected: manifest
                .entries
                .iter()
                .map(|e| (e.path.as_str(), (e, false)))
                .collect(),
            depth,
            problems: Vec::new(),
            more: 0,
            seq: 0,
            inline: Inline::new(manifest.hash),
            hashers: match depth {
                Depth::Full => FileHashers::start(manifest.hash).ok(),
                Depth::Quick => None,
            },
            pending: Vec::new(),
            watch: None,
        }
    }

    /// Ticks `progress` at every entry and stops when `cancelled` is set (a run's check).
    pub(crate) fn watched(mut self, progress: Progress, cancelled: Arc<AtomicBool>) -> Self {
        self.watch = Some((progress, cancelled));
        self
    }

    fn step(&self) -> Result<(), FsError> {
        if let Some((progress, cancelled)) = &self.watch {
            if cancelled.load(Ordering::Relaxed) {
                return Err(FsError::Cancelled);
            }
            progress.tick();
        }
        Ok(())
    }

    /// Records a problem of the entry the walk is at. The key (twice the entry's number,
    /// plus one) orders it after that entry's checksum mismatch, which the hashing threads
    /// may only report once the walk is done, so problems read in walk order, a file's
    /// content first, however the checksums were computed.
    fn problem(&mut self, path: &str, problem: String) {
        if self.problems.len() < MAX_PROBLEMS {
            let path = path.to_owned();
            self.problems
                .push((self.seq * 2 + 1, Problem { path, problem }));
        } else {
            self.more += 1;
        }
    }

    /// The problems found, then how many more there were; call after the walk.
    pub(crate) fn finish(mut self) -> (Vec<Problem>, usize) {
        let mut late = Vec::new();
        if let Some(hashers) = self.hashers.take() {
            match hashers.finish() {
                Ok(found) => {
                    for (k, seq, entry) in std::mem::take(&mut self.pending) {
                        let problem = match found.get(k) {
                            Some(Ok((len, _))) if *len != entry.size => {
                                format!("{len} bytes read, the manifest says {}", entry.size)
                            }
                            Some(Ok((_, digest)))
                                if Some(hex(digest).as_str())
                                    == entry.checksum(self.manifest.hash) =>
                            {
                                continue
                            }
                            Some(Ok(_)) | None => self.not_matching(),
                            Some(Err(e)) => format!("cannot be read: {e}"),
                        };
                        let path = entry.path.clone();
                        late.push((seq * 2, Problem { path, problem }));
                    }
                }
                Err(e) => late.push((
                    0,
                    Problem {
                        path: String::new(),
                        problem: format!("the checksums were not computed: {e}"),
                    },
                )),
            }
        }
        if !late.is_empty() {
            // The walk kept its first problems; with these, the first of all are kept.
            let total = self.problems.len() + self.more + late.len();
            self.problems.extend(late);
            self.problems.sort_by_key(|(key, _)| *key);
            self.problems.truncate(MAX_PROBLEMS);
            self.more = total - self.problems.len();
        }
        let mut missing: Vec<&str> = self
            .expected
            .iter()
            .filter(|(_, (e, seen))| !seen && e.kind.is_copied())
            .map(|(p, _)| *p)
            .collect();
        missing.sort_unstable();
        for path in missing {
            self.problem(path, "missing from the copy".to_owned());
        }
        let problems = self.problems.into_iter().map(|(_, p)| p).collect();
        (problems, self.more)
    }

    /// Looks `rel` up and marks it seen; records a problem and answers `None` when the copy
    /// should not hold it.
    fn expect(&mut self, rel: &str, found: EntryKind) -> Option<&'m ManifestEntry> {
        let Some(&mut (entry, ref mut seen)) = self.expected.get_mut(rel) else {
            self.problem(
                rel,
                format!("a {} that is not in the manifest", found.as_str()),
            );
            return None;
        };
        *seen = true;
        if !entry.kind.is_copied() {
            self.problem(
                rel,
                format!(
                    "a {} that the manifest lists as a skipped {}",
                    found.as_str(),
                    entry.kind.as_str()
                ),
            );
            return None;
        }
        if entry.kind != found {
            self.problem(
                rel,
                format!(
                    "a {} where the manifest has a {}",
                    found.as_str(),
                    entry.kind.as_str()
                ),
            );
            return None;
        }
        Some(entry)
    }

    fn check_meta(&mut self, rel: &str, entry: &ManifestEntry, meta: &Meta) {
        if self.depth != Depth::Full {
            return;
        }
        let owners = self.manifest.owners_kept;
        if entry.kind != EntryKind::Symlink {
            if let Some(mode) = entry.expected_mode(owners) {
                if meta.mode != mode {
                    self.problem(
                        rel,
                        format!("mode is {:04o}, the manifest says {mode:04o}", meta.mode),
                    );
                }
            }
        }
        if let Some(mtime) = entry.mtime_ns {
            if meta.mtime_ns() != mtime {
                self.problem(
                    rel,
                    format!(
                        "modification time is {} ns, the manifest says {mtime} ns",
                        meta.mtime_ns()
                    ),
                );
            }
        }
        if owners {
            if let (Some(uid), Some(gid)) = (entry.uid, entry.gid) {
                if (meta.uid, meta.gid) != (uid, gid) {
                    self.problem(
                        rel,
                        format!(
                            "owner is {}:{}, the manifest says {uid}:{gid}",
                            meta.uid, meta.gid
                        ),
                    );
                }
            }
        }
    }
}

impl Visitor for Checker<'_> {
    fn entry(&mut self, found: &Entry<'_>) -> Result<(), FsError> {
        let Entry { dir, name, rel, .. } = *found;
        let meta = &found.meta;
        self.seq += 1;
        self.step()?;
        let Some(entry) = self.expect(rel, meta.kind) else {
            return Ok(());
        };
        match entry.kind {
            EntryKind::File => {
                if meta.size != entry.size {
                    self.problem(
                        rel,
                        format!("{} bytes, the manifest says {}", meta.size, entry.size),
                    );
                    return Ok(());
                }
                if self.depth == Depth::Full {
                    self.check_content(found, entry)?;
                }
            }
            EntryKind::Symlink if self.depth == Depth::Full => {
                match rfs::readlinkat(dir, name, Vec::new()) {
                    Ok(target) => {
                        let target = target.to_string_lossy();
                        if Some(target.as_ref()) != entry.target.as_deref() {
                            self.problem(
                                rel,
                                format!(
                                    "the link points to {target}, the manifest says {}",
                                    entry.target.as_deref().unwrap_or("nothing")
                                ),
                            );
                        }
                    }
                    Err(e) => self.problem(rel, format!("cannot read the link: {e}")),
                }
            }
            _ => {}
        }
        self.check_meta(rel, entry, meta);
        Ok(())
    }

    fn enter(&mut self, found: &Entry<'_>, _fd: BorrowedFd<'_>) -> Result<bool, FsError> {
        self.seq += 1;
        self.step()?;
        match self.expect(found.rel, EntryKind::Dir) {
            Some(entry) => {
                self.check_meta(found.rel, entry, &found.meta);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn vanished(&mut self, rel: &str) -> Result<(), FsError> {
        self.problem(rel, "disappeared while it was checked".to_owned());
        Ok(())
    }

    fn bad_name(&mut self, rel: &str) -> Result<(), FsError> {
        self.problem(
            rel,
            "a name that is not UTF-8, which no manifest lists".to_owned(),
        );
        Ok(())
    }
}

impl<'m> Checker<'m> {
    /// Re-reads a file and compares its checksum (holes hashed as zeros, never read): now,
    /// or once the walk is done when the hashing threads compute it.
    fn check_content(
        &mut self,
        found: &Entry<'_>,
        entry: &'m ManifestEntry,
    ) -> Result<(), FsError> {
        let rel = found.rel;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        // Reading leaves no trace where the server may say so: without an access time
        // (allowed on the files it owns), else as a plain read-only open.
        let opened = match rfs::openat(
            found.dir,
            found.name,
            flags | OFlags::NOATIME,
            Mode::empty(),
        ) {
            Err(Errno::PERM) => rfs::openat(found.dir, found.name, flags, Mode::empty()),
            other => other,
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(e) => {
                self.problem(rel, format!("cannot be opened: {e}"));
                return Ok(());
            }
        };
        if let Some(hashers) = self.hashers.as_mut() {
            let k = hashers.hash(fd)?;
            self.pending.push((k, self.seq, entry));
            return Ok(());
        }
        match hash_file(std::os::fd::AsFd::as_fd(&fd), &mut self.inline) {
            Ok((len, _)) if len != entry.size => self.problem(
                rel,
                format!("{len} bytes read, the manifest says {}", entry.size),
            ),
            Ok((_, digest)) => {
                if Some(hex(&digest).as_str()) != entry.checksum(self.manifest.hash) {
                    let problem = self.not_matching();
                    self.problem(rel, problem);
                }
            }
            Err(Errno::INTR) => return Err(FsError::Cancelled),
            Err(e) => self.problem(rel, format!("cannot be read: {e}")),
        }
        Ok(())
    }

    fn not_matching(&self) -> String {
        let algorithm = self.manifest.hash.shown();
        format!("the content does not match its {algorithm} checksum")
    }
}

/// Formats problems as one readable sentence for `verify`'s error.
pub(crate) fn describe(base: &str, problems: &[Problem], more: usize) -> String {
    let mut parts: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", shown(base, &p.path), p.problem))
        .collect();
    if more > 0 {
        parts.push(format!("and {more} more problem(s)"));
    }
    parts.join("; ")
}
