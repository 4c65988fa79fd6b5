//! The `directory` provider on real files (SPEC §12, §13): metadata, links, depth, special
//! files, sparse files, torn copies, free space, the path policy, deletes and verify.
//!
//! Tests that need root (owners, tmpfs mounts) print a skip note and pass when not root.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backup_core::api::ClusterTarget;
use backup_engine::ids::RandomIds;
use backup_engine::ports::{BackupProvider, IdGenerator};
use backup_engine::{
    BackupHandle, BackupRequest, ClusterRecord, Progress, ProviderErrorCode, ProviderStatus, Scope,
};
use backup_local::directory::{self, EntryKind, Manifest, TestHooks};
use backup_local::{DirectoryProvider, PathPolicy};
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, Timespec, Timestamps};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// A server's data directory (with its backup root) and a cluster's data directory,
/// each in its own temporary directory.
///
/// Fields drop in order: the provider (and its descriptor on the backup root) first, then
/// a tmpfs mounted on the backup root, then the directories.
struct Setup {
    provider: DirectoryProvider,
    _mount: Option<Tmpfs>,
    server: tempfile::TempDir,
    source: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Self::with_roots(&[])
    }

    fn with_roots(allowed: &[PathBuf]) -> Setup {
        let server = tempfile::tempdir().unwrap();
        let source = tempfile::tempdir().unwrap();
        let backups = server.path().join("backups");
        fs::create_dir_all(&backups).unwrap();
        let policy = PathPolicy::new(server.path(), &backups, allowed).unwrap();
        let provider = DirectoryProvider::new(&backups, policy).unwrap();
        Setup {
            provider,
            _mount: None,
            server,
            source,
        }
    }

    fn backups(&self) -> PathBuf {
        self.server.path().join("backups")
    }

    fn src(&self) -> &Path {
        self.source.path()
    }

    fn request(&self) -> BackupRequest {
        request_for(&self.src().to_string_lossy())
    }

    async fn backup(&self) -> Result<(BackupHandle, Manifest), backup_engine::ProviderError> {
        let request = self.request();
        let handle = self.provider.create(&request).await?.into_handle();
        let manifest = directory::verify(&self.backups().join(&request.backup_id))
            .unwrap_or_else(|e| panic!("verify failed: {e}"));
        Ok((handle, manifest))
    }

    /// Names in the backup root (backups, partial or deleting).
    fn leftovers(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.backups())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn request_for(path: &str) -> BackupRequest {
    BackupRequest {
        backup_id: RandomIds::default().new_id(),
        job_id: None,
        description: "test backup".into(),
        cluster: ClusterRecord {
            server: Default::default(),
            status: Default::default(),
            details: None,
            source_backup_id: None,
            id: "orders".into(),
            scope: Scope::new("default", "default").unwrap(),
            description: "Orders".into(),
            region: "local".into(),
            target: ClusterTarget::directory(path),
            created: chrono::DateTime::from_timestamp(1_795_755_600, 0).unwrap(),
        },
        created: chrono::DateTime::from_timestamp(1_795_755_660, 0).unwrap(),
        scheduled: chrono::DateTime::from_timestamp(1_795_755_660, 0).unwrap(),
        progress: Progress::default(),
        base_backup_id: None,
    }
}

fn set_mtime(path: &Path, sec: i64, nsec: i64) {
    let ts = Timestamps {
        last_access: Timespec {
            tv_sec: sec,
            tv_nsec: nsec as _,
        },
        last_modification: Timespec {
            tv_sec: sec,
            tv_nsec: nsec as _,
        },
    };
    rfs::utimensat(rfs::CWD, path, &ts, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn entry<'m>(manifest: &'m Manifest, path: &str) -> &'m directory::ManifestEntry {
    manifest
        .entries
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} missing from the manifest"))
}

// ----- metadata ------------------------------------------------------------------------

#[tokio::test]
async fn modes_times_and_owners_are_kept_entry_by_entry_and_recorded() {
    // GIVEN files 0640, 0600, 0755, a directory 0750 and (as root) a file owned by uid 1234,
    // each with a modification time down to the nanosecond
    let s = Setup::new();
    let src = s.src();
    fs::create_dir(src.join("conf")).unwrap();
    for (name, mode) in [
        ("conf/a.conf", 0o640),
        ("secret", 0o600),
        ("run.sh", 0o755),
        ("owned", 0o644),
    ] {
        fs::write(src.join(name), name.as_bytes()).unwrap();
        fs::set_permissions(src.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::set_permissions(src.join("conf"), fs::Permissions::from_mode(0o750)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(src.join("owned"), Some(1234), Some(4321)).unwrap();
    }
    for (i, name) in ["conf/a.conf", "secret", "run.sh", "owned", "conf"]
        .iter()
        .enumerate()
    {
        set_mtime(
            &src.join(name),
            1_700_000_000 + i as i64,
            123_456_789 + i as i64,
        );
    }
    // WHEN it is backed up
    let (handle, manifest) = s.backup().await.unwrap();
    assert!(handle.notes.is_empty(), "{:?}", handle.notes);
    // THEN every copy has the source's mode and time (and owner as root), and the manifest
    // records them
    let data = s.backups().join(&handle.backup_id).join("data");
    for name in ["conf/a.conf", "secret", "run.sh", "owned", "conf"] {
        let (from, to) = (
            fs::symlink_metadata(src.join(name)).unwrap(),
            fs::symlink_metadata(data.join(name)).unwrap(),
        );
        assert_eq!(to.mode() & 0o7777, from.mode() & 0o7777, "{name} mode");
        assert_eq!(
            (to.mtime(), to.mtime_nsec()),
            (from.mtime(), from.mtime_nsec()),
            "{name} mtime"
        );
        if is_root() {
            assert_eq!(
                (to.uid(), to.gid()),
                (from.uid(), from.gid()),
                "{name} owner"
            );
        }
        let e = entry(&manifest, name);
        assert_eq!(e.mode, Some(from.mode() & 0o7777));
        assert_eq!(e.uid, Some(from.uid()));
        assert_eq!(e.gid, Some(from.gid()));
        assert_eq!(
            e.mtime_ns,
            Some(i128::from(from.mtime()) * 1_000_000_000 + i128::from(from.mtime_nsec()))
        );
    }
    assert_eq!(entry(&manifest, "conf").kind, EntryKind::Dir);
    assert_eq!(entry(&manifest, "secret").kind, EntryKind::File);
    assert_eq!(entry(&manifest, "secret").size, 6);
    assert_eq!(manifest.owners_kept, is_root());
    if is_root() {
        assert_eq!(entry(&manifest, "owned").uid, Some(1234));
        assert_eq!(fs::metadata(data.join("owned")).unwrap().uid(), 1234);
    } else {
        skip("owners", "not root, so owners are not kept");
    }
    // AND the backup, its data/ and the root are 0700, the manifest 0600
    let dir = s.backups().join(&handle.backup_id);
    assert_eq!(mode_of(&dir), 0o700);
    assert_eq!(mode_of(&dir.join("data")), 0o700);
    assert_eq!(mode_of(&dir.join("manifest.json")), 0o600);
    assert_eq!(mode_of(&s.backups()), 0o700);
    // AND the status is available
    assert_eq!(
        s.provider.status(&handle).await.unwrap(),
        ProviderStatus::Available
    );
}

#[tokio::test]
async fn a_backup_root_left_readable_is_tightened_at_start() {
    let server = tempfile::tempdir().unwrap();
    let backups = server.path().join("backups");
    fs::create_dir_all(&backups).unwrap();
    fs::set_permissions(&backups, fs::Permissions::from_mode(0o755)).unwrap();
    let policy = PathPolicy::new(server.path(), &backups, &[]).unwrap();
    DirectoryProvider::new(&backups, policy).unwrap();
    assert_eq!(mode_of(&backups), 0o700);
}

// ----- links -----------------------------------------------------------------------------

#[tokio::test]
async fn links_are_kept_as_links_and_one_pointing_outside_is_listed_and_named() {
    // GIVEN a link inside the tree, one climbing out with .., and pg_wal on another disk
    let s = Setup::new();
    let src = s.src();
    fs::create_dir(src.join("base")).unwrap();
    fs::write(src.join("base/1"), b"one").unwrap();
    std::os::unix::fs::symlink("base/1", src.join("inside")).unwrap();
    std::os::unix::fs::symlink("../../elsewhere", src.join("base/climbs")).unwrap();
    std::os::unix::fs::symlink("/mnt/wal", src.join("pg_wal")).unwrap();
    // WHEN it is backed up
    let (handle, manifest) = s.backup().await.unwrap();
    // THEN every link is a link in the copy, with its target, never followed
    let data = s.backups().join(&handle.backup_id).join("data");
    for (name, target) in [
        ("inside", "base/1"),
        ("base/climbs", "../../elsewhere"),
        ("pg_wal", "/mnt/wal"),
    ] {
        assert!(fs::symlink_metadata(data.join(name))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_link(data.join(name)).unwrap(), Path::new(target));
        let e = entry(&manifest, name);
        assert_eq!(e.kind, EntryKind::Symlink);
        assert_eq!(e.target.as_deref(), Some(target));
    }
    // AND the ones pointing outside are marked and named in the notes
    assert!(!entry(&manifest, "inside").outside);
    assert!(entry(&manifest, "pg_wal").outside);
    assert!(entry(&manifest, "base/climbs").outside);
    let notes = handle.notes.join(" | ");
    assert!(notes.contains("pg_wal -> /mnt/wal"), "{notes}");
    assert!(notes.contains("outside the cluster"), "{notes}");
    assert!(!notes.contains("inside"), "{notes}");
}

#[tokio::test]
async fn one_link_outside_gets_the_short_note() {
    let s = Setup::new();
    std::os::unix::fs::symlink("/mnt/wal", s.src().join("pg_wal")).unwrap();
    let (handle, _) = s.backup().await.unwrap();
    assert_eq!(
        handle.notes,
        ["link pg_wal points outside the cluster to /mnt/wal: its target is not in the backup"]
    );
}

// ----- depth -----------------------------------------------------------------------------

/// Builds `depth` nested directories named `d` below `root` through descriptors (a path
/// this deep is longer than PATH_MAX), with a file at the bottom.
fn deep_tree(root: &Path, depth: usize) {
    let mut fd: OwnedFd =
        rfs::open(root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..depth {
        rfs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
        fd = rfs::openat(&fd, "d", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    }
    let file = rfs::openat(
        &fd,
        "bottom",
        OFlags::WRONLY | OFlags::CREATE,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&file, b"deep").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_five_thousand_directories_deep_backs_up_verifies_and_deletes() {
    // GIVEN a tree 5,000 directories deep: its deepest path is ~10,000 bytes
    let mut s = Setup::new();
    deep_tree(s.src(), 5_000);
    // (counting the descriptors open on this test's own trees when the copy reaches the
    // bottom: other tests of this process run beside it, and `std::fs::remove_dir_all` of
    // another deep tree holds one descriptor per level while it cleans up)
    let open_at_bottom = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = open_at_bottom.clone();
    let ours = [s.server.path().to_owned(), s.src().to_owned()];
    s.provider.hooks = TestHooks {
        before_open: Some(Arc::new(move |rel: &str| {
            if rel.ends_with("bottom") {
                let n = fs::read_dir("/proc/self/fd").map_or(0, |d| {
                    d.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                        .filter(|target| ours.iter().any(|root| target.starts_with(root)))
                        .count()
                });
                seen.store(n, Ordering::SeqCst);
            }
        })),
        after_first_chunk: None,
    };
    // WHEN it is backed up THEN it verifies, with every level in the manifest
    let (handle, manifest) = s.backup().await.unwrap();
    assert_eq!(manifest.directories().count(), 5_000);
    let bottom = manifest.files().next().unwrap();
    assert_eq!(bottom.path.len(), 5_000 * 2 + "bottom".len());
    assert_eq!(bottom.size, 4);
    // AND the walk held a bounded number of descriptors, not one per level
    let open = open_at_bottom.load(Ordering::SeqCst);
    assert!(
        open > 0 && open < 200,
        "{open} descriptors open at depth 5,000"
    );
    // AND deleting it removes the whole tree
    s.provider.delete(&handle).await.unwrap();
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

// ----- special files ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_swapped_in_after_the_listing_is_skipped_and_listed_never_read() {
    // GIVEN a file that becomes a FIFO after its directory was listed, and a socket
    let mut s = Setup::new();
    let src = s.src().to_path_buf();
    fs::write(src.join("swapped"), b"was a file").unwrap();
    fs::write(src.join("swapped-sock"), b"was a file too").unwrap();
    fs::write(src.join("kept"), b"kept").unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let swap_dir = src.clone();
    s.provider.hooks = TestHooks {
        before_open: Some(Arc::new(move |rel: &str| {
            if rel == "swapped" {
                fs::remove_file(swap_dir.join("swapped")).unwrap();
                rfs::mkfifoat(
                    rfs::CWD,
                    swap_dir.join("swapped"),
                    Mode::from_raw_mode(0o600),
                )
                .unwrap();
            }
            if rel == "swapped-sock" {
                // (a socket cannot even be opened: ENXIO)
                fs::remove_file(swap_dir.join("swapped-sock")).unwrap();
                drop(
                    std::os::unix::net::UnixListener::bind(swap_dir.join("swapped-sock")).unwrap(),
                );
            }
        })),
        after_first_chunk: None,
    };
    // WHEN it is backed up (a FIFO opened for reading without O_NONBLOCK would block forever)
    let (handle, manifest) = tokio::time::timeout(Duration::from_secs(30), s.backup())
        .await
        .expect("the copy blocked on the FIFO")
        .unwrap();
    // THEN the FIFO and the socket are listed as skipped, not copied, and named in the notes
    assert_eq!(entry(&manifest, "swapped").kind, EntryKind::Fifo);
    assert_eq!(entry(&manifest, "sock").kind, EntryKind::Socket);
    assert_eq!(entry(&manifest, "swapped-sock").kind, EntryKind::Socket);
    let data = s.backups().join(&handle.backup_id).join("data");
    assert!(!data.join("swapped").exists());
    assert!(!data.join("sock").exists());
    assert_eq!(fs::read(data.join("kept")).unwrap(), b"kept");
    assert_eq!(
        handle.notes,
        ["skipped 3 entries that are not files, directories or links: sock (socket), swapped (fifo), swapped-sock (socket)"]
    );
}

// ----- sparse files ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_files_stay_sparse_and_hash_their_holes() {
    // GIVEN a 1 GiB file holding 4 KiB of data in its middle
    let s = Setup::new();
    let path = s.src().join("sparse");
    {
        let file = fs::File::create(&path).unwrap();
        file.set_len(1 << 30).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[0xab; 4096], 512 << 20).unwrap();
    }
    let source_blocks = fs::metadata(&path).unwrap().blocks();
    // WHEN it is backed up
    let (handle, manifest) = s.backup().await.unwrap();
    // THEN the copy is 1 GiB long but uses less than 1 MiB, like the source
    let copy = s.backups().join(&handle.backup_id).join("data/sparse");
    let meta = fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), 1 << 30);
    assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
    assert!(
        meta.blocks() <= source_blocks.max(8) * 2,
        "{} blocks",
        meta.blocks()
    );
    // AND its checksum is that of the full logical content (verify re-hashed it)
    let e = entry(&manifest, "sparse");
    assert_eq!(e.size, 1 << 30);
    assert_eq!(manifest.total_bytes, 1 << 30);
}

// ----- torn copies -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_during_its_copy_is_marked_changed_and_named() {
    // GIVEN a 1 MiB file that grows after its first chunk was copied
    let mut s = Setup::new();
    let path = s.src().join("wal");
    fs::write(&path, vec![1u8; 1 << 20]).unwrap();
    fs::write(s.src().join("quiet"), b"still").unwrap();
    let grow = path.clone();
    s.provider.hooks = TestHooks {
        before_open: None,
        after_first_chunk: Some(Arc::new(move |rel: &str| {
            if rel == "wal" {
                use std::io::Write;
                let mut f = fs::OpenOptions::new().append(true).open(&grow).unwrap();
                f.write_all(&[2u8; 1000]).unwrap();
            }
        })),
    };
    // WHEN it is backed up
    let (handle, manifest) = s.backup().await.unwrap();
    // THEN the file is marked changed, the other not, and the notes say so
    assert!(entry(&manifest, "wal").changed);
    assert!(!entry(&manifest, "quiet").changed);
    assert_eq!(
        handle.notes,
        ["1 file changed while it was copied, so its copy may be torn: wal (quiesce the database with pre/post hooks)"]
    );
}

// ----- free space ------------------------------------------------------------------------

/// A 4 MiB tmpfs mounted on `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
            .arg(dir)
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A setup whose backup root is a 4 MiB tmpfs, or `None` (with a note) when that cannot be.
fn small_root(test: &str) -> Option<Setup> {
    if !is_root() {
        skip(test, "mounting a tmpfs needs root");
        return None;
    }
    let server = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    let backups = server.path().join("backups");
    let Some(mount) = Tmpfs::mount(&backups) else {
        skip(test, "cannot mount a tmpfs here");
        return None;
    };
    let policy = PathPolicy::new(server.path(), &backups, &[]).unwrap();
    let provider = DirectoryProvider::new(&backups, policy).unwrap();
    Some(Setup {
        provider,
        _mount: Some(mount),
        server,
        source,
    })
}

#[tokio::test]
async fn a_backup_bigger_than_the_backup_root_fails_at_once_with_insufficient_space() {
    let Some(s) = small_root("insufficient_space") else {
        return;
    };
    // GIVEN 6 MiB of data for a 4 MiB backup root
    fs::write(s.src().join("big"), vec![9u8; 6 << 20]).unwrap();
    // WHEN it is backed up THEN it fails with insufficient_space, naming both sizes
    let err = s.provider.create(&s.request()).await.unwrap_err();
    assert_eq!(err.code, ProviderErrorCode::InsufficientSpace, "{err}");
    assert!(err.message.contains(&(6u64 << 20).to_string()), "{err}");
    assert!(err.message.contains("free"), "{err}");
    // AND nothing is left behind
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_space_during_the_copy_is_insufficient_space_and_leaves_nothing() {
    let Some(mut s) = small_root("enospc") else {
        return;
    };
    // GIVEN 2 MiB of data that fits, until something else fills the disk mid-copy
    fs::write(s.src().join("a"), vec![1u8; 1 << 20]).unwrap();
    fs::write(s.src().join("b"), vec![2u8; 1 << 20]).unwrap();
    let filler = s.backups().join("filler");
    let fill = filler.clone();
    s.provider.hooks = TestHooks {
        before_open: Some(Arc::new(move |rel: &str| {
            if rel == "b" {
                let _ = fs::write(&fill, vec![0u8; 3 << 20]);
            }
        })),
        after_first_chunk: None,
    };
    // WHEN it is backed up THEN it fails as insufficient_space
    let err = s.provider.create(&s.request()).await.unwrap_err();
    assert_eq!(err.code, ProviderErrorCode::InsufficientSpace, "{err}");
    // AND the partial copy is gone (only the filler remains)
    assert_eq!(s.leftovers(), ["filler"]);
}

// ----- abandoning ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_copy_stops_at_the_next_chunk_and_leaves_nothing() {
    // GIVEN a copy that stalls after its first chunk
    let mut s = Setup::new();
    fs::write(s.src().join("big"), vec![3u8; 4 << 20]).unwrap();
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    let first_chunk = Arc::new(tokio::sync::Notify::new());
    let reached = first_chunk.clone();
    s.provider.hooks = TestHooks {
        before_open: None,
        after_first_chunk: Some(Arc::new(move |_: &str| {
            flag.store(true, Ordering::SeqCst);
            reached.notify_one();
            std::thread::sleep(Duration::from_millis(300));
        })),
    };
    // WHEN the engine drops the create future (a stall or a shutdown) once the first chunk
    // is written: waiting for the hook, not for a fixed time, keeps this true on a loaded
    // machine where the worker may not have started within any given delay
    let request = s.request();
    let made = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            made = s.provider.create(&request) => Some(made),
            () = first_chunk.notified() => None,
        }
    })
    .await;
    assert!(
        matches!(made, Ok(None)),
        "the copy should have reached its first chunk and still be running"
    );
    // THEN the worker stops and removes its partial copy
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !s.leftovers().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stalled.load(Ordering::SeqCst));
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

// ----- names -----------------------------------------------------------------------------

#[tokio::test]
async fn a_name_that_is_not_utf8_fails_the_run_before_anything_is_written() {
    use std::os::unix::ffi::OsStrExt;
    let s = Setup::new();
    fs::write(s.src().join(std::ffi::OsStr::from_bytes(b"bad\xff")), b"x").unwrap();
    let err = s.provider.create(&s.request()).await.unwrap_err();
    assert!(err.message.contains("not UTF-8"), "{err}");
    assert!(s.leftovers().is_empty());
}

// ----- the path policy -------------------------------------------------------------------

async fn refusal(p: &DirectoryProvider, path: &str) -> backup_engine::TargetProblem {
    p.check_target(&ClusterTarget::directory(path))
        .await
        .expect_err(path)
}

#[tokio::test]
async fn the_policy_refuses_system_trees_and_the_servers_own_directories() {
    let s = Setup::new();
    let data_dir = fs::canonicalize(s.server.path()).unwrap();
    let inside = data_dir.join("inside");
    fs::create_dir(&inside).unwrap();
    let link = s.src().join("sneaky");
    std::os::unix::fs::symlink(&inside, &link).unwrap();
    let parent = data_dir.parent().unwrap().to_path_buf();
    let cases = [
        "/".to_owned(),
        "/proc/self".to_owned(),
        format!(
            "{}/../{}/inside",
            data_dir.display(),
            data_dir.file_name().unwrap().to_string_lossy()
        ),
        link.display().to_string(),
        data_dir.display().to_string(),
        s.backups().display().to_string(),
        parent.display().to_string(),
    ];
    for path in &cases {
        let problem = refusal(&s.provider, path).await;
        assert_eq!(problem.field, "path");
        assert_eq!(
            problem.code, "path_not_allowed",
            "{path}: {}",
            problem.message
        );
        assert!(problem.message.contains("register"), "{}", problem.message);
    }
    // AND other problems have their own codes
    assert_eq!(
        refusal(&s.provider, "relative/dir").await.code,
        "path_not_absolute"
    );
    assert_eq!(
        refusal(&s.provider, &s.src().join("missing").display().to_string())
            .await
            .code,
        "path_not_found"
    );
    fs::write(s.src().join("file"), b"x").unwrap();
    assert_eq!(
        refusal(&s.provider, &s.src().join("file").display().to_string())
            .await
            .code,
        "path_not_directory"
    );
    // AND a good path is accepted in its canonical form
    fs::create_dir(s.src().join("db")).unwrap();
    let answer = s
        .provider
        .check_target(&ClusterTarget::directory(format!(
            "{}/./db/../db",
            s.src().display()
        )))
        .await
        .unwrap();
    assert_eq!(
        answer,
        ClusterTarget::directory(
            fs::canonicalize(s.src().join("db"))
                .unwrap()
                .display()
                .to_string()
        )
    );
    // AND targets of other providers pass untouched
    let ebs = ClusterTarget::AwsEbs {
        volume_ids: vec!["vol-1".into()],
        instance_tag: None,
    };
    assert_eq!(s.provider.check_target(&ebs).await.unwrap(), ebs);
}

#[tokio::test]
async fn allowed_roots_refuse_everything_outside_them() {
    let roots = tempfile::tempdir().unwrap();
    let s = Setup::with_roots(&[roots.path().to_path_buf()]);
    let problem = refusal(&s.provider, "/etc").await;
    assert_eq!(problem.code, "path_not_allowed");
    assert!(
        problem.message.contains("--allowed-root"),
        "{}",
        problem.message
    );
    let inside = roots.path().join("db");
    fs::create_dir(&inside).unwrap();
    s.provider
        .check_target(&ClusterTarget::directory(inside.display().to_string()))
        .await
        .unwrap();
    // AND a path outside them is refused whether it exists, is a file, a device or a
    // directory, so the answer tells nothing of what is there
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"x").unwrap();
    let server_files = fs::canonicalize(s.server.path()).unwrap();
    fs::write(server_files.join("token-like"), b"x").unwrap();
    for path in [
        outside.path().join("secret"),
        outside.path().join("missing"),
        outside.path().join("missing/deeper"),
        outside.path().to_path_buf(),
        "/dev/null".into(),
        "/proc/no-such-entry".into(),
        "/run/no-such-entry".into(),
        server_files.join("token-like"),
        roots.path().join("../elsewhere"),
    ] {
        let path = path.display().to_string();
        let problem = refusal(&s.provider, &path).await;
        assert_eq!(
            problem.code, "path_not_allowed",
            "{path}: {}",
            problem.message
        );
    }
    // AND inside them a missing directory is still told apart
    let missing = roots.path().join("missing").display().to_string();
    assert_eq!(refusal(&s.provider, &missing).await.code, "path_not_found");
    // AND an allowed root written through a link accepts paths written through it too
    let link = outside.path().join("roots-link");
    std::os::unix::fs::symlink(roots.path(), &link).unwrap();
    let linked = Setup::with_roots(std::slice::from_ref(&link));
    linked
        .provider
        .check_target(&ClusterTarget::directory(
            link.join("db").display().to_string(),
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_registered_path_that_becomes_a_link_fails_recheck_and_create() {
    // GIVEN a registered cluster path
    let s = Setup::new();
    let real = s.src().join("real");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("f"), b"x").unwrap();
    let registered = s.src().join("db");
    fs::create_dir(&registered).unwrap();
    let target = s
        .provider
        .check_target(&ClusterTarget::directory(registered.display().to_string()))
        .await
        .unwrap();
    s.provider.recheck_target(&target).await.unwrap();
    // WHEN it is replaced by a link
    fs::remove_dir(&registered).unwrap();
    std::os::unix::fs::symlink(&real, &registered).unwrap();
    // THEN the recheck refuses it, saying where it points now
    let problem = s.provider.recheck_target(&target).await.unwrap_err();
    assert_eq!(problem.code, "path_not_allowed");
    assert!(
        problem.message.contains(&real.display().to_string()),
        "{}",
        problem.message
    );
    // AND a run fails with path_not_allowed, leaving nothing
    let ClusterTarget::Directory { path, .. } = &target else {
        unreachable!()
    };
    let err = s.provider.create(&request_for(path)).await.unwrap_err();
    assert_eq!(err.code, ProviderErrorCode::PathNotAllowed, "{err}");
    assert!(s.leftovers().is_empty());
    // AND a path that moved into the data directory fails the same way
    let err = s
        .provider
        .create(&request_for(&s.backups().display().to_string()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ProviderErrorCode::PathNotAllowed, "{err}");
}

// ----- delete, start-up, verify ----------------------------------------------------------

#[tokio::test]
async fn delete_is_idempotent() {
    let s = Setup::new();
    fs::create_dir(s.src().join("sub")).unwrap();
    fs::write(s.src().join("sub/f"), b"x").unwrap();
    fs::set_permissions(s.src().join("sub"), fs::Permissions::from_mode(0o500)).unwrap();
    let (handle, _) = s.backup().await.unwrap();
    // WHEN it is deleted twice THEN both succeed and nothing remains
    s.provider.delete(&handle).await.unwrap();
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
    s.provider.delete(&handle).await.unwrap();
    assert_eq!(
        s.provider.status(&handle).await.unwrap(),
        ProviderStatus::Failed(format!(
            "backup directory {} is missing or incomplete",
            s.backups().join(&handle.backup_id).display()
        ))
    );
    // AND a delete interrupted after its rename is finished by the next one
    let (again, _) = s.backup().await.unwrap();
    fs::rename(
        s.backups().join(&again.backup_id),
        s.backups().join(format!(".{}.deleting", again.backup_id)),
    )
    .unwrap();
    s.provider.delete(&again).await.unwrap();
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
    fs::set_permissions(s.src().join("sub"), fs::Permissions::from_mode(0o700)).unwrap();
}

#[tokio::test]
async fn start_up_removes_partial_and_deleting_leftovers_of_any_depth() {
    let server = tempfile::tempdir().unwrap();
    let backups = server.path().join("backups");
    let partial = backups.join(".dc4j2k1l7ch6v7cc77n0.partial");
    let deleting = backups.join(".dc4j2k1l7ch6v7cc77n1.deleting");
    let kept = backups.join("dc4j2k1l7ch6v7cc77n2");
    for dir in [&partial, &deleting, &kept] {
        fs::create_dir_all(dir.join("data")).unwrap();
    }
    deep_tree(&partial.join("data"), 2_000);
    std::os::unix::fs::symlink("/etc", deleting.join("data/etc")).unwrap();
    let policy = PathPolicy::new(server.path(), &backups, &[]).unwrap();
    DirectoryProvider::new(&backups, policy).unwrap();
    assert!(!partial.exists());
    assert!(!deleting.exists());
    assert!(kept.exists());
    assert!(Path::new("/etc").exists());
}

#[tokio::test]
async fn verify_finds_a_copy_altered_behind_the_servers_back() {
    let s = Setup::new();
    fs::write(s.src().join("a"), b"alpha").unwrap();
    fs::write(s.src().join("b"), b"bravo").unwrap();
    fs::create_dir(s.src().join("d")).unwrap();
    let (handle, _) = s.backup().await.unwrap();
    let dir = s.backups().join(&handle.backup_id);
    let data = dir.join("data");
    // a byte changed (same size), a file removed, one added, a mode widened
    fs::write(data.join("a"), b"alphA").unwrap();
    fs::remove_file(data.join("b")).unwrap();
    fs::write(data.join("d/extra"), b"x").unwrap();
    fs::set_permissions(data.join("d"), fs::Permissions::from_mode(0o777)).unwrap();
    let err = directory::verify(&dir).unwrap_err();
    for needle in [
        "a: the content does not match",
        "b: missing",
        "d/extra: a file that is not in the manifest",
        "d: mode is 0777",
    ] {
        assert!(err.contains(needle), "{needle} not in: {err}");
    }
}

#[tokio::test]
async fn verify_reads_a_version_one_manifest() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("data/sub")).unwrap();
    fs::write(dir.path().join("data/sub/f"), b"abc").unwrap();
    let manifest = serde_json::json!({
        "backupId": "dc4j2k1l7ch6v7cc77n0", "clusterId": "orders", "description": "old",
        "source": "/srv/db",
        "files": [{"path": "sub/f", "size": 3,
                   "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}],
        "directories": ["sub"], "totalBytes": 3
    });
    fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
    let read = directory::verify(dir.path()).unwrap();
    assert_eq!(read.version, 1);
    assert_eq!(read.files().count(), 1);
}

/// Everything a verify must leave as it was under `dir`: each entry's type, mode, owner,
/// size, modification and change times, and content or link target (access times aside:
/// reading may set them, as any reader's does).
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let body = if meta.file_type().is_symlink() {
            format!("-> {}", fs::read_link(&path).unwrap().display())
        } else if meta.is_file() {
            format!("{:?}", fs::read(&path).unwrap())
        } else {
            let mut names: Vec<PathBuf> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            stack.extend(names);
            String::from("dir")
        };
        out.push((
            rel,
            format!(
                "{:o} {}:{} {} m{}.{} c{}.{} {body}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec()
            ),
        ));
    }
    out.sort();
    out
}

/// A source tree with a few files, a directory and a link, and its backup.
async fn small_backup(s: &Setup) -> (BackupHandle, PathBuf) {
    fs::write(s.src().join("a"), b"alpha").unwrap();
    fs::create_dir(s.src().join("base")).unwrap();
    fs::write(s.src().join("base/1234"), vec![7u8; 200_000]).unwrap();
    fs::write(s.src().join("base/5678"), b"bravo").unwrap();
    std::os::unix::fs::symlink("base/5678", s.src().join("latest")).unwrap();
    let (handle, _) = s.backup().await.unwrap();
    let dir = s.backups().join(&handle.backup_id);
    (handle, dir)
}

/// Flips one bit of the byte at `offset` in place, then puts the modification time back,
/// as bit rot would leave it: only the checksum can tell.
fn flip_byte(path: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let before = fs::metadata(path).unwrap();
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.read_exact(&mut byte).unwrap();
    byte[0] ^= 0x01;
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(&byte).unwrap();
    drop(file);
    set_mtime(path, before.mtime(), before.mtime_nsec());
}

#[tokio::test]
async fn provider_verify_finds_nothing_wrong_with_a_whole_backup_and_changes_nothing() {
    // GIVEN a backup
    let s = Setup::new();
    let (handle, dir) = small_backup(&s).await;
    let before = snapshot(&dir);
    // WHEN the provider verifies it, twice
    for _ in 0..2 {
        let problems = s.provider.verify(&handle).await.unwrap();
        // THEN it finds nothing wrong
        assert_eq!(problems, Vec::new());
    }
    // AND nothing of the backup changed: no entry, mode, time or byte
    assert_eq!(snapshot(&dir), before);
    assert_eq!(s.leftovers(), vec![handle.backup_id]);
}

#[tokio::test]
async fn provider_verify_names_a_flipped_byte_a_missing_file_and_an_extra_file() {
    let s = Setup::new();
    type Damage = fn(&Path);
    let cases: [(&str, Damage, &str, &str); 3] = [
        (
            "a flipped byte",
            |data| flip_byte(&data.join("base/1234"), 150_000),
            "base/1234",
            "the content does not match its BLAKE3 checksum",
        ),
        (
            "a missing file",
            |data| fs::remove_file(data.join("a")).unwrap(),
            "a",
            "missing from the copy",
        ),
        (
            "an extra file",
            |data| fs::write(data.join("base/stray"), b"x").unwrap(),
            "base/stray",
            "a file that is not in the manifest",
        ),
    ];
    for (what, damage, path, says) in cases {
        // GIVEN a backup with one damage done behind the server's back
        let (handle, dir) = small_backup(&s).await;
        damage(&dir.join("data"));
        let before = snapshot(&dir);
        // WHEN the provider verifies it
        let problems = s.provider.verify(&handle).await.unwrap();
        // THEN it names the file and what is wrong with it, and no other file (adding or
        // removing a name also changes its directory's modification time, reported apart)
        let of_files: Vec<_> = problems
            .iter()
            .filter(|p| p.path != "base" && !p.path.is_empty())
            .collect();
        assert_eq!(of_files.len(), 1, "{what}: {problems:?}");
        assert_eq!(of_files[0].path, path, "{what}: {problems:?}");
        assert!(
            of_files[0].problem.contains(says),
            "{what}: {:?} does not say {says:?}",
            of_files[0].problem
        );
        // AND the verify changed nothing, the damage included
        assert_eq!(snapshot(&dir), before, "{what}");
        // (the source is backed up again for the next case)
        fs::remove_dir_all(s.src()).unwrap();
        fs::create_dir(s.src()).unwrap();
    }
}

// ----- restore ---------------------------------------------------------------------------

/// Restores the backup `backup_id` of `s` to `target`.
fn restore_to(
    s: &Setup,
    backup_id: &str,
    target: &Path,
) -> Result<PathBuf, backup_engine::ProviderError> {
    let dir = s.backups().join(backup_id);
    let manifest = directory::read_manifest(&dir).unwrap();
    directory::restore(
        &dir,
        &manifest,
        target,
        "r1",
        &Progress::default(),
        &AtomicBool::new(false),
    )
}

/// The names in a directory, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What a restored entry must equal in its manifest entry.
fn comparable(e: &directory::ManifestEntry) -> impl PartialEq + std::fmt::Debug {
    (
        e.path.clone(),
        e.kind,
        e.size,
        e.mode,
        e.uid,
        e.gid,
        e.mtime_ns,
        e.blake3.clone(),
        e.target.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_recreates_the_tree_byte_for_byte_with_its_metadata_and_never_links() {
    // GIVEN a tree with modes, (as root) a file owned by nobody and a set-user-id file,
    // links, a sparse file, a tree deeper than PATH_MAX and names that are not ASCII
    let s = Setup::new();
    let src = s.src();
    fs::create_dir_all(src.join("conf/données")).unwrap();
    for (name, mode) in [
        ("conf/a.conf", 0o640),
        ("conf/données/日本語.txt", 0o600),
        ("run.sh", 0o755),
        ("owned", 0o644),
        ("setuid", 0o4755),
    ] {
        fs::write(src.join(name), format!("content of {name}")).unwrap();
        fs::set_permissions(src.join(name), fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::set_permissions(src.join("conf"), fs::Permissions::from_mode(0o750)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(src.join("owned"), Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(src.join("conf/données"), Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::symlink("conf/a.conf", src.join("current.conf")).unwrap();
    std::os::unix::fs::symlink("/mnt/wal", src.join("pg_wal")).unwrap();
    {
        let file = fs::File::create(src.join("sparse")).unwrap();
        file.set_len(256 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[0xcd; 8192], 100 << 20).unwrap();
    }
    fs::create_dir(src.join("deep")).unwrap();
    deep_tree(&src.join("deep"), 2_500);
    for (i, name) in ["conf/a.conf", "run.sh", "owned", "sparse", "conf", "deep"]
        .iter()
        .enumerate()
    {
        set_mtime(
            &src.join(name),
            1_700_000_000 + i as i64,
            987_654_321 - i as i64,
        );
    }
    set_mtime(&src.join("current.conf"), 1_650_000_000, 1);
    fs::set_permissions(src, fs::Permissions::from_mode(0o751)).unwrap();
    set_mtime(src, 1_690_000_000, 42);
    let (handle, manifest) = s.backup().await.unwrap();
    // WHEN it is restored to a new path
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("restored");
    let restored = restore_to(&s, &handle.backup_id, &target).unwrap();
    assert_eq!(restored, target);
    // THEN only the target is in the parent (no sibling left), and a backup of the restored
    // tree has the same manifest, entry by entry: same content (BLAKE3), types, sizes,
    // link targets, modes, times to the nanosecond and owners, at every depth
    assert_eq!(names_in(parent.path()), ["restored"]);
    let request = request_for(&target.to_string_lossy());
    let again_handle = s.provider.create(&request).await.unwrap().into_handle();
    let again = directory::verify(&s.backups().join(&again_handle.backup_id)).unwrap();
    assert_eq!(again.entries.len(), manifest.entries.len());
    for (a, b) in again.entries.iter().zip(&manifest.entries) {
        assert_eq!(comparable(a), comparable(b));
    }
    assert_eq!(again.root, manifest.root);
    assert_eq!(mode_of(&target), 0o751);
    // AND the restored files are new files: one link each, not the backup's inodes
    let data = s.backups().join(&handle.backup_id).join("data");
    for name in [
        "conf/a.conf",
        "conf/données/日本語.txt",
        "run.sh",
        "owned",
        "sparse",
    ] {
        let (copy, kept) = (
            fs::metadata(target.join(name)).unwrap(),
            fs::metadata(data.join(name)).unwrap(),
        );
        assert_eq!(copy.nlink(), 1, "{name} is hard-linked");
        assert_ne!(copy.ino(), kept.ino(), "{name} shares the backup's inode");
    }
    // AND links are links, the sparse file keeps its holes
    assert_eq!(
        fs::read_link(target.join("pg_wal")).unwrap(),
        Path::new("/mnt/wal")
    );
    assert!(fs::symlink_metadata(target.join("current.conf"))
        .unwrap()
        .file_type()
        .is_symlink());
    let sparse = fs::metadata(target.join("sparse")).unwrap();
    assert_eq!(sparse.len(), 256 << 20);
    assert!(
        sparse.blocks() <= fs::metadata(src.join("sparse")).unwrap().blocks().max(16) * 2,
        "{} blocks",
        sparse.blocks()
    );
    if is_root() {
        assert_eq!(fs::metadata(target.join("owned")).unwrap().uid(), 65534);
        assert_eq!(mode_of(&target.join("setuid")), 0o4755);
    } else {
        skip("restored owners", "not root");
    }
}

#[tokio::test]
async fn provider_verify_says_when_the_manifest_or_the_backup_is_gone() {
    let s = Setup::new();
    // GIVEN a backup whose manifest was removed
    let (handle, dir) = small_backup(&s).await;
    fs::remove_file(dir.join("manifest.json")).unwrap();
    // THEN verify answers a problem of the backup as a whole, naming the manifest
    let problems = s.provider.verify(&handle).await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "");
    assert!(problems[0].problem.contains("manifest.json is missing"));
    // WHEN the whole backup directory is gone THEN verify says so
    fs::remove_dir_all(&dir).unwrap();
    let problems = s.provider.verify(&handle).await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].problem.contains("is missing"), "{problems:?}");
    // AND a handle outside the backup root is refused, not read
    let outside = BackupHandle::new(handle.backup_id.clone(), "/etc");
    assert!(s.provider.verify(&outside).await.is_err());
}

#[tokio::test]
async fn a_restore_into_an_empty_directory_replaces_it() {
    let s = Setup::new();
    fs::write(s.src().join("a"), b"alpha").unwrap();
    let (handle, _) = s.backup().await.unwrap();
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("empty");
    fs::create_dir(&target).unwrap();
    restore_to(&s, &handle.backup_id, &target).unwrap();
    assert_eq!(fs::read(target.join("a")).unwrap(), b"alpha");
    assert_eq!(names_in(parent.path()), ["empty"]);
}

#[tokio::test]
async fn a_corrupted_backup_aborts_the_restore_naming_the_file_and_leaves_nothing() {
    // GIVEN a backup one of whose files was altered behind the server's back (same size)
    let s = Setup::new();
    fs::create_dir(s.src().join("base")).unwrap();
    fs::write(s.src().join("base/1"), vec![7u8; 300_000]).unwrap();
    fs::write(s.src().join("base/2"), b"two").unwrap();
    let (handle, _) = s.backup().await.unwrap();
    let altered = s.backups().join(&handle.backup_id).join("data/base/2");
    fs::write(&altered, b"tw0").unwrap();
    // WHEN it is restored, to a new path and to an empty directory
    for existing in [false, true] {
        let parent = tempfile::tempdir().unwrap();
        let target = parent.path().join("restored");
        if existing {
            fs::create_dir(&target).unwrap();
        }
        let err = restore_to(&s, &handle.backup_id, &target)
            .unwrap_err()
            .to_string();
        // THEN it fails naming the file, and leaves no sibling and no target behind (the
        // empty directory stays as it was)
        assert!(
            err.contains("data/base/2 does not match its BLAKE3 checksum"),
            "{err}"
        );
        let left = names_in(parent.path());
        if existing {
            assert_eq!(left, ["restored"]);
            assert!(names_in(&target).is_empty());
        } else {
            assert!(left.is_empty(), "{left:?}");
        }
    }
    // AND a file missing from the backup is named too
    fs::remove_file(&altered).unwrap();
    let parent = tempfile::tempdir().unwrap();
    let err = restore_to(&s, &handle.backup_id, &parent.path().join("r"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing from the backup: base/2"), "{err}");
    assert!(names_in(parent.path()).is_empty());
}

#[tokio::test]
async fn a_restore_never_writes_into_a_directory_that_is_not_empty() {
    let s = Setup::new();
    fs::write(s.src().join("a"), b"alpha").unwrap();
    let (handle, _) = s.backup().await.unwrap();
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("busy");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("precious"), b"keep").unwrap();
    let err = restore_to(&s, &handle.backup_id, &target)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(names_in(&target), ["precious"]);
    assert_eq!(names_in(parent.path()), ["busy"]);
}

#[tokio::test]
async fn the_policy_checks_a_restores_target() {
    let allowed = tempfile::tempdir().unwrap();
    let s = Setup::with_roots(&[allowed.path().to_path_buf()]);
    let policy = s.provider.policy();
    let code = |path: &Path| {
        policy
            .resolve_restore_target(&path.to_string_lossy())
            .unwrap_err()
            .code
    };
    // a new path or an empty directory inside an allowed root is fine, and canonical
    let fine = allowed.path().join("new");
    assert_eq!(
        policy
            .resolve_restore_target(&fine.to_string_lossy())
            .unwrap(),
        fs::canonicalize(allowed.path()).unwrap().join("new")
    );
    fs::create_dir(allowed.path().join("empty")).unwrap();
    policy
        .resolve_restore_target(&allowed.path().join("empty").to_string_lossy())
        .unwrap();
    // a directory that is not empty, a file
    fs::create_dir(allowed.path().join("full")).unwrap();
    fs::write(allowed.path().join("full/x"), b"x").unwrap();
    fs::write(allowed.path().join("file"), b"x").unwrap();
    assert_eq!(code(&allowed.path().join("full")), "path_not_empty");
    assert_eq!(code(&allowed.path().join("file")), "path_not_empty");
    // a link, outside the allowed roots, inside the backup root, a missing parent, relative
    std::os::unix::fs::symlink(allowed.path().join("empty"), allowed.path().join("link")).unwrap();
    assert_eq!(code(&allowed.path().join("link")), "path_not_allowed");
    assert_eq!(code(&s.src().join("elsewhere")), "path_not_allowed");
    assert_eq!(code(&s.backups().join("restored")), "path_not_allowed");
    assert_eq!(code(Path::new("/proc/restored")), "path_not_allowed");
    assert_eq!(
        code(&allowed.path().join("no/such/parent")),
        "path_not_found"
    );
    assert_eq!(code(Path::new("restored")), "path_not_absolute");
    // and nothing was created
    let mut left = names_in(allowed.path());
    left.sort();
    assert_eq!(left, ["empty", "file", "full", "link"]);
}

// ---- Incremental backups: unchanged files linked from the cluster's previous backup ----

/// A backup of the setup's source that may link from `base`.
async fn backup_from(s: &Setup, base: Option<&str>) -> (BackupHandle, Manifest, PathBuf) {
    let mut request = s.request();
    request.base_backup_id = base.map(str::to_owned);
    let handle = s.provider.create(&request).await.unwrap().into_handle();
    let dir = s.backups().join(&handle.backup_id);
    let manifest = directory::verify(&dir).unwrap_or_else(|e| panic!("verify failed: {e}"));
    (handle, manifest, dir)
}

fn inode(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().ino()
}

fn incremental_source(s: &Setup) {
    fs::create_dir(s.src().join("base")).unwrap();
    fs::write(s.src().join("base/chunk-1"), vec![1u8; 300_000]).unwrap();
    fs::write(s.src().join("base/chunk-2"), vec![2u8; 200_000]).unwrap();
    fs::write(s.src().join("wal"), b"first").unwrap();
    fs::write(s.src().join("conf"), b"setting = 1").unwrap();
    fs::set_permissions(s.src().join("conf"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("base/chunk-1", s.src().join("latest")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deeper_than_path_max_is_linked_by_the_next_backup() {
    // GIVEN a backup of a tree whose deepest file's path is ~5,000 bytes
    let s = Setup::new();
    deep_tree(s.src(), 2_500);
    let (first, _, first_dir) = backup_from(&s, None).await;
    // WHEN nothing changed and the next backup links from it
    let (second, manifest, second_dir) = backup_from(&s, Some(&first.backup_id)).await;
    // THEN it succeeds and the deep file shares the first backup's inode
    let bottom = manifest.files().next().unwrap();
    assert!(bottom.path.len() > 4096);
    assert_eq!(second.linked_bytes, Some(4));
    let inode_at = |dir: &Path| {
        let mut fd: OwnedFd = rfs::open(
            dir.join("data"),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        for _ in 0..2_500 {
            fd = rfs::openat(&fd, "d", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        }
        rfs::statat(&fd, "bottom", rfs::AtFlags::SYMLINK_NOFOLLOW)
            .unwrap()
            .st_ino
    };
    assert_eq!(inode_at(&first_dir), inode_at(&second_dir));
}

#[tokio::test]
async fn an_unchanged_file_is_linked_a_changed_one_copied_and_a_changed_mode_copied_not_linked() {
    let s = Setup::new();
    incremental_source(&s);
    let (first, _, first_dir) = backup_from(&s, None).await;
    assert_eq!(first.linked_bytes, Some(0));
    // WHEN one file's content and another's mode change, and the next backup links from
    // the first
    fs::write(s.src().join("wal"), b"second").unwrap();
    fs::set_permissions(s.src().join("conf"), fs::Permissions::from_mode(0o600)).unwrap();
    let (second, manifest, second_dir) = backup_from(&s, Some(&first.backup_id)).await;
    // THEN the unchanged files share the first backup's inodes
    for name in ["base/chunk-1", "base/chunk-2"] {
        assert_eq!(
            inode(&first_dir.join("data").join(name)),
            inode(&second_dir.join("data").join(name)),
            "{name} was copied, not linked"
        );
    }
    // AND the changed content and the changed mode were copied, with what they are now
    for name in ["wal", "conf"] {
        assert_ne!(
            inode(&first_dir.join("data").join(name)),
            inode(&second_dir.join("data").join(name)),
            "{name} was linked"
        );
    }
    assert_eq!(fs::read(second_dir.join("data/wal")).unwrap(), b"second");
    assert_eq!(fs::read(first_dir.join("data/wal")).unwrap(), b"first");
    assert_eq!(mode_of(&second_dir.join("data/conf")), 0o600);
    assert_eq!(mode_of(&first_dir.join("data/conf")), 0o640);
    // AND the handle says how much was linked; the manifest is complete on its own
    assert_eq!(second.linked_bytes, Some(500_000));
    assert_eq!(second.size_bytes, Some(500_000 + 6 + 11));
    assert_eq!(entry(&manifest, "base/chunk-1").size, 300_000);
    assert!(entry(&manifest, "base/chunk-1").blake3.is_some());
    assert_eq!(entry(&manifest, "latest").kind, EntryKind::Symlink);
    // AND the first backup still verifies
    directory::verify(&first_dir).unwrap();
}

#[tokio::test]
async fn a_file_rewritten_with_its_size_and_mtime_put_back_is_copied() {
    let s = Setup::new();
    fs::write(s.src().join("segment"), b"aaaa").unwrap();
    set_mtime(&s.src().join("segment"), 1_700_000_000, 5);
    let (first, _, first_dir) = backup_from(&s, None).await;
    // Same size, modification time set back: only the status change time tells.
    std::thread::sleep(Duration::from_millis(20));
    fs::write(s.src().join("segment"), b"bbbb").unwrap();
    set_mtime(&s.src().join("segment"), 1_700_000_000, 5);
    let (second, _, second_dir) = backup_from(&s, Some(&first.backup_id)).await;
    assert_eq!(second.linked_bytes, Some(0));
    assert_eq!(fs::read(second_dir.join("data/segment")).unwrap(), b"bbbb");
    assert_ne!(
        inode(&first_dir.join("data/segment")),
        inode(&second_dir.join("data/segment"))
    );
}

#[tokio::test]
async fn pruning_the_older_backup_leaves_the_newer_verifying_and_restorable() {
    let s = Setup::new();
    incremental_source(&s);
    let (first, _, _) = backup_from(&s, None).await;
    let (second, _, second_dir) = backup_from(&s, Some(&first.backup_id)).await;
    assert_eq!(second.linked_bytes, Some(500_000 + 5 + 11));
    s.provider.delete(&first).await.unwrap();
    directory::verify(&second_dir).unwrap();
    // AND a restore of the linked backup copies: nothing restored shares an inode with it
    let target = s.server.path().join("restored");
    restore_to(&s, &second.backup_id, &target).unwrap();
    for name in ["base/chunk-1", "base/chunk-2", "wal", "conf"] {
        let restored = fs::symlink_metadata(target.join(name)).unwrap();
        assert_eq!(restored.nlink(), 1, "{name} is linked");
        assert_ne!(restored.ino(), inode(&second_dir.join("data").join(name)));
    }
    assert_eq!(
        fs::read(target.join("base/chunk-2")).unwrap(),
        vec![2u8; 200_000]
    );
}

#[tokio::test]
async fn one_damaged_inode_is_reported_by_every_backup_that_links_it() {
    let s = Setup::new();
    incremental_source(&s);
    let (first, _, first_dir) = backup_from(&s, None).await;
    let (_, _, second_dir) = backup_from(&s, Some(&first.backup_id)).await;
    flip_byte(&first_dir.join("data/base/chunk-2"), 1_000);
    for dir in [&first_dir, &second_dir] {
        let err = directory::verify(dir).unwrap_err();
        assert!(
            err.contains("base/chunk-2: the content does not match"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn verify_unchanged_reads_an_unchanged_file_before_linking_it() {
    let mut s = Setup::new();
    s.provider = s.provider.clone().verify_unchanged(true);
    incremental_source(&s);
    let (first, _, _) = backup_from(&s, None).await;
    let (second, _, _) = backup_from(&s, Some(&first.backup_id)).await;
    assert_eq!(second.linked_bytes, Some(500_000 + 5 + 11));
}

#[tokio::test]
async fn a_base_that_cannot_serve_copies_everything_and_says_why() {
    let s = Setup::new();
    incremental_source(&s);
    let (first, _, first_dir) = backup_from(&s, None).await;
    // Gone (deleted behind the server's back).
    fs::remove_dir_all(&first_dir).unwrap();
    let (second, _, _) = backup_from(&s, Some(&first.backup_id)).await;
    assert_eq!(second.linked_bytes, Some(0));
    assert!(
        second
            .notes
            .iter()
            .any(|n| n.contains("every file was copied") && n.contains(&first.backup_id)),
        "{:?}",
        second.notes
    );
    // Not a backup id at all: refused before anything is opened.
    let (third, _, _) = backup_from(&s, Some("../../etc")).await;
    assert_eq!(third.linked_bytes, Some(0));
    // A base file altered behind the server's back is copied afresh, not linked.
    let (fourth, _, fourth_dir) = backup_from(&s, Some(&second.backup_id)).await;
    assert_eq!(fourth.linked_bytes, Some(500_000 + 5 + 11));
    // (the fourth links the second's inode, so it sees the change too: verify says so)
    let second_dir = s.backups().join(&second.backup_id);
    fs::set_permissions(
        second_dir.join("data/wal"),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let (fifth, _, fifth_dir) = backup_from(&s, Some(&second.backup_id)).await;
    assert_eq!(fifth.linked_bytes, Some(500_000 + 11));
    assert_eq!(
        mode_of(&fifth_dir.join("data/wal")),
        mode_of(&s.src().join("wal"))
    );
    assert!(directory::verify(&fourth_dir)
        .unwrap_err()
        .contains("wal: mode is 0666"));
    assert_ne!(
        inode(&fifth_dir.join("data/wal")),
        inode(&second_dir.join("data/wal"))
    );
}

#[tokio::test]
async fn links_made_beside_the_walk_keep_every_directory_s_times_and_mode_and_copy_a_bad_base_file()
{
    // GIVEN directories of many files (more than one batch of links), nested, with set
    // modification times and modes
    let s = Setup::new();
    let mut total = 0u64;
    for (dir, files) in [("a", 600), ("a/b", 10), ("c", 5), ("", 3)] {
        fs::create_dir_all(s.src().join(dir)).unwrap();
        for i in 0..files {
            let bytes = format!("{dir}/{i}").repeat(3);
            total += bytes.len() as u64;
            fs::write(s.src().join(dir).join(format!("file-{i}")), bytes).unwrap();
        }
    }
    fs::set_permissions(s.src().join("c"), fs::Permissions::from_mode(0o750)).unwrap();
    for (dir, sec) in [
        ("a/b", 1_600_000_100),
        ("a", 1_600_000_000),
        ("c", 1_600_000_200),
    ] {
        set_mtime(&s.src().join(dir), sec, 7);
    }
    let (first, _, first_dir) = backup_from(&s, None).await;
    // AND one base copy deep in the tree altered behind the server's back
    let bad = "a/b/file-3";
    let bad_size = fs::metadata(s.src().join(bad)).unwrap().len();
    fs::set_permissions(
        first_dir.join("data").join(bad),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    // WHEN the next backup links from it
    let (second, _, second_dir) = backup_from(&s, Some(&first.backup_id)).await;
    // THEN everything else is linked, and the altered file copied afresh from the source
    assert_eq!(second.linked_bytes, Some(total - bad_size));
    assert_eq!(
        inode(&first_dir.join("data/a/file-599")),
        inode(&second_dir.join("data/a/file-599"))
    );
    assert_ne!(
        inode(&first_dir.join("data").join(bad)),
        inode(&second_dir.join("data").join(bad))
    );
    assert_eq!(
        mode_of(&second_dir.join("data").join(bad)),
        mode_of(&s.src().join(bad))
    );
    // AND every directory has the source's modification time and mode, though links and
    // the copy went into it after the walk had left it
    for dir in ["a", "a/b", "c"] {
        let made = fs::metadata(second_dir.join("data").join(dir)).unwrap();
        let source = fs::metadata(s.src().join(dir)).unwrap();
        assert_eq!(
            (made.mtime(), made.mtime_nsec()),
            (source.mtime(), source.mtime_nsec()),
            "{dir}"
        );
        assert_eq!(made.mode() & 0o7777, source.mode() & 0o7777, "{dir}");
    }
}

/// Rewrites a backup's manifest as a version-4 server wrote it: SHA-256 checksums, no `hash`.
fn as_sha256_manifest(dir: &Path) {
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    manifest["version"] = 4.into();
    manifest.as_object_mut().unwrap().remove("hash");
    for e in manifest["entries"].as_array_mut().unwrap() {
        let e = e.as_object_mut().unwrap();
        if e.remove("blake3").is_some() {
            let rel = e["path"].as_str().unwrap();
            let bytes = fs::read(dir.join("data").join(rel)).unwrap();
            e.insert("sha256".to_owned(), sha256_hex(&bytes).into());
        }
    }
    fs::write(&path, manifest.to_string()).unwrap();
}

#[tokio::test]
async fn a_manifest_of_sha256_checksums_still_verifies_and_restores_and_the_next_backup_copies() {
    let s = Setup::new();
    incremental_source(&s);
    let (first, written, first_dir) = backup_from(&s, None).await;
    // This version writes BLAKE3 and says so.
    assert_eq!(written.hash, directory::HashAlgorithm::Blake3);
    assert_eq!(
        entry(&written, "wal").blake3.as_deref(),
        Some(blake3::hash(b"first").to_hex().as_str())
    );
    // GIVEN the backup as an older version wrote it
    as_sha256_manifest(&first_dir);
    // THEN it verifies with its own algorithm
    let read = directory::verify(&first_dir).unwrap();
    assert_eq!(read.hash, directory::HashAlgorithm::Sha256);
    // AND restores
    let target = s.server.path().join("restored");
    restore_to(&s, &first.backup_id, &target).unwrap();
    assert_eq!(fs::read(target.join("wal")).unwrap(), b"first");
    // AND the next backup cannot link from it: it copies everything once and says why
    let (second, manifest, second_dir) = backup_from(&s, Some(&first.backup_id)).await;
    assert_eq!(second.linked_bytes, Some(0));
    assert!(
        second.notes.iter().any(|n| n.contains("SHA-256")),
        "{:?}",
        second.notes
    );
    assert_eq!(manifest.hash, directory::HashAlgorithm::Blake3);
    // AND the one after links from that one
    let (third, _, _) = backup_from(&s, Some(&second.backup_id)).await;
    assert_eq!(third.linked_bytes, Some(500_000 + 5 + 11));
    // AND a damaged byte in the old backup is named with its algorithm
    flip_byte(&first_dir.join("data/base/chunk-2"), 1_000);
    let err = directory::verify(&first_dir).unwrap_err();
    assert!(
        err.contains("base/chunk-2: the content does not match its SHA-256 checksum"),
        "{err}"
    );
    directory::verify(&second_dir).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn serve_checksum_sha256_records_verifies_links_and_restores_with_sha256() {
    let mut s = Setup::new();
    s.provider = s
        .provider
        .clone()
        .checksum(directory::HashAlgorithm::Sha256);
    incremental_source(&s);
    // WHEN a server that records SHA-256 backs the tree up twice, one file changed between
    let (first, written, first_dir) = backup_from(&s, None).await;
    // THEN the manifest names SHA-256 and holds each file's SHA-256, and no BLAKE3
    assert_eq!(written.hash, directory::HashAlgorithm::Sha256);
    let raw = fs::read_to_string(first_dir.join("manifest.json")).unwrap();
    assert!(raw.contains(r#""hash":"sha256""#), "{raw}");
    assert_eq!(
        entry(&written, "base/chunk-1").sha256.as_deref(),
        Some(sha256_hex(&[1u8; 300_000]).as_str())
    );
    assert!(written.files().all(|e| e.blake3.is_none()));
    fs::write(s.src().join("wal"), b"second").unwrap();
    let (second, manifest, second_dir) = backup_from(&s, Some(&first.backup_id)).await;
    // AND the second links the unchanged files from the first, their checksums carried over
    assert_eq!(second.linked_bytes, Some(500_000 + 11));
    assert_eq!(
        inode(&first_dir.join("data/base/chunk-2")),
        inode(&second_dir.join("data/base/chunk-2"))
    );
    assert_eq!(
        entry(&manifest, "base/chunk-2").sha256.as_deref(),
        Some(sha256_hex(&[2u8; 200_000]).as_str())
    );
    assert_eq!(
        entry(&manifest, "wal").sha256.as_deref(),
        Some(sha256_hex(b"second").as_str())
    );
    // AND it restores
    let target = s.server.path().join("restored");
    restore_to(&s, &second.backup_id, &target).unwrap();
    assert_eq!(fs::read(target.join("wal")).unwrap(), b"second");
    // AND a damaged byte is named with the algorithm
    flip_byte(&second_dir.join("data/wal"), 1);
    let err = directory::verify(&second_dir).unwrap_err();
    assert!(
        err.contains("wal: the content does not match its SHA-256 checksum"),
        "{err}"
    );
    // WHEN the server goes back to BLAKE3
    s.provider = s
        .provider
        .clone()
        .checksum(directory::HashAlgorithm::Blake3);
    let (third, manifest, _) = backup_from(&s, Some(&first.backup_id)).await;
    // THEN the next backup copies every file once and says why
    assert_eq!(third.linked_bytes, Some(0));
    assert_eq!(manifest.hash, directory::HashAlgorithm::Blake3);
    assert!(
        third
            .notes
            .iter()
            .any(|n| n.contains("SHA-256") && n.contains("--checksum blake3")),
        "{:?}",
        third.notes
    );
}
