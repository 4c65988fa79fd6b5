//! Hooks and the `command` provider on real processes (SPEC §15): what a hook sees, what a
//! failing hook does to a run, backup commands checksummed into verifiable manifests,
//! stderr tails, timeouts that kill a whole process group, and `runAs`.
//!
//! The `runAs` test needs root (it prints a skip note and passes otherwise).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backup_core::api::ClusterTarget;
use backup_engine::ids::RandomIds;
use backup_engine::ports::{BackupProvider, IdGenerator};
use backup_engine::{
    BackupRequest, ClusterRecord, Progress, ProviderErrorCode, Restoration, Scope,
};
use backup_local::directory;
use backup_local::{CommandProvider, DirectoryProvider, PathPolicy};
use chrono::{DateTime, Utc};

/// A server's backup root, a cluster's data directory and a scratch directory where
/// commands leave what the tests look at, each temporary.
struct Setup {
    provider: DirectoryProvider,
    commands: CommandProvider,
    server: tempfile::TempDir,
    source: tempfile::TempDir,
    scratch: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let server = tempfile::tempdir().unwrap();
        let source = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let backups = server.path().join("backups");
        fs::create_dir_all(&backups).unwrap();
        let policy = PathPolicy::new(server.path(), &backups, &[]).unwrap();
        let provider = DirectoryProvider::new(&backups, policy).unwrap();
        let commands = CommandProvider::new(provider.clone());
        fs::write(source.path().join("PG_VERSION"), "16\n").unwrap();
        Setup {
            provider,
            commands,
            server,
            source,
            scratch,
        }
    }

    fn backups(&self) -> PathBuf {
        self.server.path().join("backups")
    }

    fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    fn request(&self, target: ClusterTarget) -> BackupRequest {
        BackupRequest {
            backup_id: RandomIds::default().new_id(),
            job_id: Some("job1".into()),
            description: "nightly".into(),
            cluster: ClusterRecord {
                server: Default::default(),
                id: "orders".into(),
                scope: Scope::new("default", "default").unwrap(),
                description: "Orders".into(),
                region: "local".into(),
                target,
                created: at(1_795_755_600),
                status: Default::default(),
                details: None,
                source_backup_id: None,
            },
            created: at(1_795_755_660),
            scheduled: at(1_795_755_600),
            progress: Progress::default(),
            base_backup_id: None,
        }
    }

    fn hooked(&self, pre: Option<&str>, post: Option<&str>) -> BackupRequest {
        self.request(ClusterTarget::Directory {
            path: self.source.path().display().to_string(),
            pre_hook: pre.map(str::to_owned),
            post_hook: post.map(str::to_owned),
        })
    }

    fn command(&self, backup_command: &str, timeout: Option<u64>) -> BackupRequest {
        self.request(ClusterTarget::Command {
            path: self.source.path().display().to_string(),
            backup_command: backup_command.to_owned(),
            restore_command: None,
            run_as: None,
            command_timeout_seconds: timeout,
        })
    }

    /// Names in the backup root (backups, partial or deleting).
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.backups())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

fn q(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// Whether a process is gone (or a zombie nobody reaped yet, which runs nothing).
fn dead(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

#[tokio::test]
async fn hooks_see_the_runs_variables_and_run_around_the_copy() {
    // GIVEN a pre-hook that records its environment and a post-hook that records that it ran
    let s = Setup::new();
    let env = s.scratch("env");
    let post = s.scratch("post");
    let request = s.hooked(
        Some(&format!(
            "printf '%s|%s|%s|%s' \"$CLUSTER_ID\" \"$BACKUP_ID\" \"$JOB_ID\" \"$SCHEDULED_TIME\" > {}",
            q(&env)
        )),
        Some(&format!("test -f {} && echo ran > {}", q(&env), q(&post))),
    );
    // WHEN the backup runs
    let handle = s.provider.create(&request).await.unwrap().into_handle();
    // THEN the pre-hook saw the cluster, backup, job and scheduled instant
    assert_eq!(
        fs::read_to_string(&env).unwrap(),
        format!("orders|{}|job1|2026-11-27T05:00:00Z", request.backup_id)
    );
    // AND the post-hook ran after it, and the backup is complete and verifiable
    assert_eq!(fs::read_to_string(&post).unwrap(), "ran\n");
    assert!(handle.notes.is_empty(), "{:?}", handle.notes);
    let manifest = directory::verify(&s.backups().join(&request.backup_id)).unwrap();
    assert!(manifest.files().any(|f| f.path == "PG_VERSION"));
    // AND the manifest keeps the backup's own record for a rebuild of the catalogue
    let record = manifest.record.expect("record");
    assert_eq!(record.provider, "directory");
    assert_eq!(record.cluster_description, "Orders");
    assert_eq!(record.created, request.created);
    assert_eq!(manifest.job_id.as_deref(), Some("job1"));
}

#[tokio::test]
async fn a_manual_backups_hook_sees_an_empty_job_id() {
    let s = Setup::new();
    let env = s.scratch("env");
    let mut request = s.hooked(
        Some(&format!(
            "printf '[%s]' \"${{JOB_ID-unset}}\" > {}",
            q(&env)
        )),
        None,
    );
    request.job_id = None;
    s.provider.create(&request).await.unwrap();
    assert_eq!(fs::read_to_string(&env).unwrap(), "[]");
}

#[tokio::test]
async fn the_post_hook_runs_after_a_failed_copy() {
    // GIVEN a cluster whose copy fails (a name that is not UTF-8) and both hooks
    let s = Setup::new();
    let bad: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(b"bad-\xff");
    fs::write(s.source.path().join(bad), "x").unwrap();
    let post = s.scratch("post");
    let request = s.hooked(Some("true"), Some(&format!("echo ran > {}", q(&post))));
    // WHEN the backup runs THEN it fails for the copy's reason
    let error = s.provider.create(&request).await.unwrap_err();
    assert_eq!(error.code, ProviderErrorCode::ProviderError, "{error}");
    assert!(error.message.contains("UTF-8"), "{error}");
    // AND the post-hook ran all the same (it restarts what the pre-hook stopped)
    assert_eq!(fs::read_to_string(&post).unwrap(), "ran\n");
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

#[tokio::test]
async fn a_failing_pre_hook_fails_the_run_with_its_stderr_tail_and_copies_nothing() {
    // GIVEN a pre-hook that writes 30 lines to stderr and exits 3, and a post-hook
    let s = Setup::new();
    let post = s.scratch("post");
    let request = s.hooked(
        Some("for i in $(seq 1 30); do echo \"line $i\" >&2; done; exit 3"),
        Some(&format!("echo ran > {}", q(&post))),
    );
    // WHEN the backup runs
    let error = s.provider.create(&request).await.unwrap_err();
    // THEN it fails `hook_failed` with the exit status and the last 20 lines of stderr
    assert_eq!(error.code, ProviderErrorCode::HookFailed, "{error}");
    assert!(error.message.contains("exit status 3"), "{error}");
    assert!(error.message.contains("line 30"), "{error}");
    assert!(error.message.contains("line 11\n"), "{error}");
    assert!(!error.message.contains("line 10\n"), "{error}");
    // AND nothing was copied, and the post-hook did not run (the pre-hook did not succeed)
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
    assert!(!post.exists());
}

#[tokio::test]
async fn a_failing_post_hook_keeps_a_good_backup_and_says_so() {
    let s = Setup::new();
    let request = s.hooked(
        None,
        Some("echo 'pg_ctl: could not start server' >&2; exit 1"),
    );
    let handle = s.provider.create(&request).await.unwrap().into_handle();
    assert!(
        handle
            .notes
            .iter()
            .any(|n| n.contains("post-hook failed") && n.contains("could not start server")),
        "{:?}",
        handle.notes
    );
    directory::verify(&s.backups().join(&request.backup_id)).unwrap();
}

#[tokio::test]
async fn a_backup_command_fills_backup_dir_and_the_result_verifies() {
    // GIVEN a backup command that writes files, a directory and a link into $BACKUP_DIR
    let s = Setup::new();
    let request = s.command(
        "set -e; cd \"$BACKUP_DIR\"; mkdir base; head -c 100000 /dev/urandom > base/1; \
         echo \"$CLUSTER_ID $BACKUP_ID\" > who; ln -s base/1 current; echo done >&2",
        None,
    );
    // WHEN the backup runs
    let handle = s.commands.create(&request).await.unwrap().into_handle();
    // THEN the backup is in place, and a full verify of its manifest passes
    let dir = s.backups().join(&request.backup_id);
    assert_eq!(handle.location, dir.display().to_string());
    assert_eq!(
        handle.size_bytes,
        Some(100_000 + 4 + request.backup_id.len() as u64 + 4)
    );
    let manifest = directory::verify(&dir).unwrap();
    let paths: Vec<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["base", "base/1", "current", "who"]);
    assert_eq!(
        fs::read_to_string(dir.join("data/who")).unwrap(),
        format!("orders {}\n", request.backup_id)
    );
    assert_eq!(manifest.record.unwrap().provider, "command");
    // AND nothing but the backup is left in the backup root
    assert_eq!(s.leftovers(), std::slice::from_ref(&request.backup_id));
}

#[tokio::test]
async fn a_fifo_or_socket_the_command_leaves_is_skipped_and_the_backup_verifies_and_restores() {
    // GIVEN a backup command that leaves a FIFO and a socket beside a file
    let s = Setup::new();
    let request = s.command(
        "set -e; cd \"$BACKUP_DIR\"; echo a > a; mkfifo ff; \
         python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"so\")'",
        None,
    );
    // WHEN the backup runs
    s.commands.create(&request).await.unwrap();
    // THEN they are listed as skipped, gone from the copy, and a full verify passes
    let dir = s.backups().join(&request.backup_id);
    assert!(!dir.join("data/ff").exists() && !dir.join("data/so").exists());
    let manifest = directory::verify(&dir).unwrap_or_else(|e| panic!("verify failed: {e}"));
    let kinds: Vec<(&str, String)> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), format!("{:?}", e.kind)))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(kinds[0].0, "a");
}

#[tokio::test]
async fn a_failing_backup_command_is_a_provider_error_with_its_stderr_tail() {
    let s = Setup::new();
    let request = s.command(
        "echo 'partial' > \"$BACKUP_DIR/x\"; echo 'pg_basebackup: error: connection refused' >&2; exit 1",
        None,
    );
    let error = s.commands.create(&request).await.unwrap_err();
    assert_eq!(error.code, ProviderErrorCode::ProviderError, "{error}");
    assert!(
        error
            .message
            .contains("backup command failed (exit status 1)"),
        "{error}"
    );
    assert!(error.message.contains("connection refused"), "{error}");
    // AND what it wrote is gone
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_with_its_children() {
    // GIVEN a backup command that starts a child in the background and then sleeps, with
    // a 2 s timeout
    let s = Setup::new();
    let (child_pid, shell_pid) = (s.scratch("child.pid"), s.scratch("shell.pid"));
    let request = s.command(
        &format!(
            "sleep 600 & echo $! > {}; echo $$ > {}; echo waiting >&2; sleep 600",
            q(&child_pid),
            q(&shell_pid)
        ),
        Some(2),
    );
    // WHEN the backup runs
    let started = Instant::now();
    let error = s.commands.create(&request).await.unwrap_err();
    // THEN it fails clearly, as a timeout, well before the command would have ended
    assert_eq!(error.code, ProviderErrorCode::ProviderTimeout, "{error}");
    assert!(error.message.contains("timeout of 2 s"), "{error}");
    assert!(error.message.contains("waiting"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(60));
    // AND the command and the child it started are both killed
    for file in [&child_pid, &shell_pid] {
        let pid = fs::read_to_string(file).unwrap().trim().to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dead(&pid) {
            assert!(Instant::now() < deadline, "process {pid} still runs");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
}

#[tokio::test]
async fn run_as_runs_the_command_as_that_user_who_owns_backup_dir() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED run_as_runs_the_command_as_that_user_who_owns_backup_dir: needs root");
        return;
    }
    // GIVEN a root server and a command cluster run as `nobody`
    let s = Setup::new();
    let mut request = s.command(
        "id -u > \"$BACKUP_DIR/uid\"; mkdir \"$BACKUP_DIR/sub\"",
        None,
    );
    if let ClusterTarget::Command { run_as, .. } = &mut request.cluster.target {
        *run_as = Some("nobody".into());
    }
    // WHEN the backup runs
    s.commands.create(&request).await.unwrap();
    // THEN the command ran as nobody, could write BACKUP_DIR, and its files are nobody's
    let data = s.backups().join(&request.backup_id).join("data");
    let nobody = fs::metadata(data.join("uid")).unwrap().uid();
    assert_ne!(nobody, 0);
    assert_eq!(
        fs::read_to_string(data.join("uid")).unwrap().trim(),
        nobody.to_string()
    );
    assert_eq!(fs::metadata(data.join("sub")).unwrap().uid(), nobody);
    // AND the backup root stayed private to the server
    let root_mode = fs::metadata(s.backups()).unwrap().mode() & 0o777;
    assert_eq!(root_mode, 0o700);
    directory::verify(&s.backups().join(&request.backup_id)).unwrap();
}

#[tokio::test]
async fn a_command_clusters_run_as_user_must_exist() {
    let s = Setup::new();
    let target = ClusterTarget::Command {
        path: s.source.path().display().to_string(),
        backup_command: "true".into(),
        restore_command: None,
        run_as: Some("no-such-user-here".into()),
        command_timeout_seconds: None,
    };
    let problem = s.commands.check_target(&target).await.unwrap_err();
    assert_eq!(problem.field, "runAs");
    assert!(
        problem.message.contains("no user no-such-user-here"),
        "{problem}"
    );
}

fn restore_request(
    backup: &backup_engine::BackupHandle,
    source: &BackupRequest,
    path: &Path,
) -> backup_engine::RestoreRequest {
    backup_engine::RestoreRequest {
        backup: backup.clone(),
        source: source.cluster.clone(),
        cluster_id: "restored".into(),
        target: source.cluster.target.with_path(path.display().to_string()),
        restore_id: RandomIds::default().new_id(),
        progress: Progress::default(),
        availability_zone: None,
        volume_type: None,
    }
}

#[tokio::test]
async fn a_restore_command_fills_target_dir_which_is_renamed_into_place() {
    // GIVEN a command backup whose cluster restores with `cp -a`
    let s = Setup::new();
    let mut request = s.command(
        "mkdir \"$BACKUP_DIR/base\" && echo 42 > \"$BACKUP_DIR/base/1\"",
        None,
    );
    if let ClusterTarget::Command {
        restore_command, ..
    } = &mut request.cluster.target
    {
        *restore_command = Some(
            "test -z \"$(ls -A \"$TARGET_DIR\")\" && cp -a \"$BACKUP_DIR/.\" \"$TARGET_DIR/\""
                .into(),
        );
    }
    let handle = s.commands.create(&request).await.unwrap().into_handle();
    // WHEN it is restored into a new path
    let place = s.scratch("restored");
    let restored = s
        .commands
        .restore(&restore_request(&handle, &request, &place))
        .await
        .unwrap();
    // THEN the data is there, the answer names the path, and no hidden directory is left
    assert_eq!(fs::read_to_string(place.join("base/1")).unwrap(), "42\n");
    let backup_engine::Restoration::Done(target) = restored else {
        panic!("{restored:?}")
    };
    assert_eq!(target.path(), Some(place.to_str().unwrap()));
    let names: Vec<String> = fs::read_dir(s.scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["restored"]);
    // AND restoring into a directory that is not empty is refused, changing nothing
    let error = s
        .commands
        .restore(&restore_request(&handle, &request, &place))
        .await
        .unwrap_err();
    assert!(error.message.contains("not empty"), "{error}");
    assert_eq!(fs::read_to_string(place.join("base/1")).unwrap(), "42\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_swapped_for_a_link_during_a_restore_command_changes_nothing_of_where_it_writes() {
    // GIVEN a command backup whose restore command waits for a signal before it copies
    let s = Setup::new();
    let started = s.scratch.path().join("started");
    let go = s.scratch.path().join("go");
    let mut request = s.command("echo 42 > \"$BACKUP_DIR/1\"", None);
    if let ClusterTarget::Command {
        restore_command, ..
    } = &mut request.cluster.target
    {
        *restore_command = Some(format!(
            "touch '{}'; while [ ! -e '{}' ]; do sleep 0.02; done; \
             cp -a \"$BACKUP_DIR/.\" \"$TARGET_DIR/\"",
            started.display(),
            go.display()
        ));
    }
    let handle = s.commands.create(&request).await.unwrap().into_handle();
    let parent = s.scratch("sub");
    fs::create_dir(&parent).unwrap();
    let place = parent.join("restored");
    let commands = s.commands.clone();
    let asked = restore_request(&handle, &request, &place);
    let restoring = tokio::spawn(async move { commands.restore(&asked).await });
    while !started.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // WHEN, while the command runs, the parent directory is moved away and a link to
    // another directory put in its place
    let moved = s.scratch("moved");
    let elsewhere = s.scratch("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::rename(&parent, &moved).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &parent).unwrap();
    fs::write(&go, b"").unwrap();
    let restored = restoring.await.unwrap();
    // THEN nothing was written through the link: the data went where the path was checked
    // (the directory now moved), never into the link's target
    assert!(restored.is_ok(), "{restored:?}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert_eq!(
        fs::read_to_string(moved.join("restored/1")).unwrap(),
        "42\n"
    );
}

#[tokio::test]
async fn without_a_restore_command_a_restore_copies_the_files_into_a_directory_cluster() {
    let s = Setup::new();
    let request = s.command("echo x > \"$BACKUP_DIR/x\"", None);
    let handle = s.commands.create(&request).await.unwrap().into_handle();
    let placed = s
        .commands
        .restore(&restore_request(&handle, &request, &s.scratch("new")))
        .await
        .unwrap();
    let path = s.scratch("new").display().to_string();
    assert!(
        matches!(&placed, Restoration::Done(ClusterTarget::Directory { path: p, pre_hook: None, post_hook: None }) if *p == path),
        "{placed:?}"
    );
    assert_eq!(fs::read(s.scratch("new").join("x")).unwrap(), b"x\n");
}
