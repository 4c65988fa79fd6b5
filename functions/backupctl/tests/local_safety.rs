//! Local mode on a shared machine (SPEC §12–§13), against real `backupctl serve` processes
//! and real files: one server per data directory, private files, paths that change under
//! the server, and a `SIGTERM` in the middle of a copy.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Starts a manual backup of `cluster` and returns its id (the copy continues).
fn start_manual_backup(server: &Server, cluster: &str) -> String {
    let out = server.json(&[
        "backups",
        "create",
        "--source-cluster-id",
        cluster,
        "--description",
        "by hand {index}",
    ]);
    out["id"].as_str().expect("backup id").to_owned()
}

/// Runs `backupctl serve` on a loopback port with `args`, which must make it exit with an
/// error; answers what it wrote on stderr.
fn serve_refused(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wait_backup_settled(server: &Server, id: &str, timeout: Duration) -> Value {
    wait_until(timeout, &format!("backup {id} to settle"), || {
        let backup = server.backup(id);
        (backup["status"] != "creating").then_some(backup)
    })
}

#[test]
fn a_second_server_on_the_same_data_directory_exits_and_the_first_ones_backup_verifies() {
    // GIVEN a server copying a cluster of many files
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("orders", 3_000, 8 * 1024);
    let first = Server::start(&sandbox.data_dir(), &[]);
    first.register_dir("orders", &cluster);
    // Bounded repetitions with a random delay (from the clock's nanoseconds), so the second
    // server arrives at different points of the first one's copy (listing, copying,
    // renaming, or after); the delay is printed so a failure can be replayed.
    for round in 0..3u64 {
        let id = start_manual_backup(&first, "orders");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(round * 37);
        let delay = Duration::from_millis(nanos % 400);
        eprintln!("round {round}: the second server starts {delay:?} after the backup");
        std::thread::sleep(delay);
        // WHEN a second server starts on the same data directory
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(sandbox.data_dir())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run a second server");
        // THEN it exits at once, non-zero, naming the holder
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the second server ran: {stderr}");
        assert!(
            stderr.contains(&format!(
                "data directory {} is in use by process",
                sandbox.data_dir().display()
            )) && stderr.contains("(started "),
            "{stderr}"
        );
        // AND the first one's backup completes and verifies against the source
        let backup = wait_backup_settled(&first, &id, Duration::from_secs(120));
        assert_eq!(backup["status"], "available", "{backup}");
        sandbox.verify_backup(&id, &cluster);
    }
    // AND nothing half-made is left behind
    assert!(
        sandbox
            .backups_dir_entries()
            .iter()
            .all(|n| !n.ends_with(".partial") && !n.ends_with(".deleting")),
        "{:?}",
        sandbox.backups_dir_entries()
    );
}

#[test]
fn the_data_directory_state_and_backups_are_private() {
    // GIVEN a data directory an older version left readable by everyone
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir();
    fs::create_dir_all(&data).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    {
        let server = Server::start(&data, &[]);
        drop(server);
    }
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(data.join("state.db"), fs::Permissions::from_mode(0o644)).unwrap();
    // WHEN the server starts
    let server = Server::start(&data, &[]);
    // THEN it tightens them, and says so
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("state.db")), 0o600);
    assert!(server.log().contains("private"), "{}", server.log());
    assert_eq!(mode(&data.join("token")), 0o600);
    assert_eq!(mode(&data.join("lock")), 0o600);
    // AND a backup of a world-readable tree is private
    let cluster = sandbox.cluster_dir("orders", 3, 1024);
    server.register_dir("orders", &cluster);
    let id = start_manual_backup(&server, "orders");
    let backup = wait_backup_settled(&server, &id, Duration::from_secs(60));
    assert_eq!(backup["status"], "available", "{backup}");
    let dir = sandbox.backups_dir().join(&id);
    assert_eq!(mode(&sandbox.backups_dir()), 0o700);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("manifest.json")), 0o600);
    for wal in ["state.db-wal", "state.db-shm"] {
        let path = data.join(wal);
        if path.exists() {
            assert_eq!(mode(&path) & 0o077, 0, "{wal} is readable by others");
        }
    }
}

#[test]
fn another_user_can_read_nothing_and_call_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root to run a command as another user");
        return;
    }
    // GIVEN a server running as root with one backup
    let sandbox = Sandbox::new();
    // The sandbox itself must be traversable by `nobody` for the test to mean anything.
    fs::set_permissions(sandbox.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cluster = sandbox.cluster_dir("orders", 2, 1024);
    let server = Server::start(&sandbox.data_dir(), &[]);
    server.register_dir("orders", &cluster);
    let id = start_manual_backup(&server, "orders");
    wait_backup_settled(&server, &id, Duration::from_secs(60));
    let data = sandbox.data_dir();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(args)
            .env_remove("BACKUPCTL_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("setpriv")
    };
    // WHEN another user reads the token, the state, a backed-up file
    let chunk = sandbox
        .backups_dir()
        .join(&id)
        .join("data/chunks/chunk-0000");
    assert!(chunk.exists());
    for path in [
        data.join("token"),
        data.join("state.db"),
        sandbox.backups_dir().join(&id).join("manifest.json"),
        chunk,
    ] {
        let out = as_nobody(&["cat", path.to_str().unwrap()]);
        // THEN every read is refused
        assert!(
            !out.status.success(),
            "nobody read {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // AND the API refuses them without the token
    let out = as_nobody(&[BIN, "--url", &server.url, "jobs", "list"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("401") || stderr.to_lowercase().contains("token"),
        "{stderr}"
    );
}

#[test]
fn a_registered_path_that_becomes_a_link_fails_its_runs_and_clusters_list_says_why() {
    // GIVEN a cluster registered at a real directory
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("orders", 2, 1024);
    let server = Server::start(&sandbox.data_dir(), &[]);
    server.register_dir("orders", &cluster);
    let job = server.create_job("orders", 2);
    // WHEN the directory is replaced by a link to /etc
    fs::rename(&cluster, sandbox.path().join("moved")).unwrap();
    std::os::unix::fs::symlink("/etc", &cluster).unwrap();
    // THEN the next run fails `path_not_allowed` and copies nothing
    let history_id = server.run_job(&job);
    let item = server.wait_run(&history_id, Duration::from_secs(60));
    assert_eq!(item["status"], "failed", "{item}");
    assert_eq!(item["errorCode"], "path_not_allowed", "{item}");
    assert!(sandbox.backups_on_disk().is_empty());
    // AND `clusters list` shows why
    let clusters = server.json(&["clusters", "list"]);
    let listed = clusters["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "orders")
        .cloned()
        .unwrap();
    let problem = listed["problem"].as_str().unwrap_or_default();
    assert!(problem.starts_with("path_not_allowed: "), "{listed}");
    let table = server.ok(&["clusters", "list"]);
    assert!(table.contains("orders: path_not_allowed: "), "{table}");
}

#[test]
fn refused_cluster_paths_answer_path_not_allowed_and_change_nothing() {
    let sandbox = Sandbox::new();
    let allowed = sandbox.path().join("allowed");
    fs::create_dir_all(allowed.join("db")).unwrap();
    let data = sandbox.data_dir();
    let server = Server::start_with(&data, &["--allowed-root", allowed.to_str().unwrap()], &[]);
    fs::create_dir_all(data.join("inside")).unwrap();
    let escape = format!("{}/../data", allowed.join("db").display());
    let link = sandbox.path().join("link-to-data");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let refused = [
        "/".to_owned(),
        "/proc/self".to_owned(),
        "/etc".to_owned(),
        data.display().to_string(),
        data.join("backups").display().to_string(),
        data.join("inside").display().to_string(),
        sandbox.path().display().to_string(),
        escape,
        link.display().to_string(),
    ];
    for (i, path) in refused.iter().enumerate() {
        let body = serde_json::json!({
            "id": format!("c{i}"),
            "description": "refused",
            "provider": "directory",
            "path": path,
        });
        let raw = server.request(
            "POST",
            &format!("{MESDB}/clusters"),
            Some(&body.to_string()),
        );
        assert_eq!(raw.status, 400, "{path}: {raw:?}");
        let problem = raw.json();
        assert!(
            problem["fields"]["path"].as_str().is_some(),
            "{path}: {problem}"
        );
    }
    let raw = server.request("POST", &format!("{MESDB}/clusters"), Some(
        &serde_json::json!({"id": "etc", "description": "x", "provider": "directory", "path": "/etc"}).to_string(),
    ));
    assert_eq!(raw.json()["code"], "path_not_allowed", "{raw:?}");
    // AND nothing was registered; a path inside the allowed root is accepted
    assert!(server.json(&["clusters", "list"])["clusters"]
        .as_array()
        .unwrap()
        .is_empty());
    server.register_dir("db", &allowed.join("db"));
}

#[test]
fn sigterm_ends_a_backup_a_client_waits_for_within_ten_seconds() {
    // GIVEN a command cluster whose backup takes half a minute, and a client waiting for it
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("pg", 1, 16);
    let data = sandbox.data_dir();
    let mut server = Server::start_with(&data, &["--allow-commands"], &[]);
    server.ok(&[
        "clusters",
        "register",
        "--cluster-id",
        "pg",
        "--description",
        "pg",
        "--provider",
        "command",
        "--path",
        cluster.to_str().unwrap(),
        "--backup-command",
        "sleep 30",
    ]);
    let (url, token) = (server.url.clone(), server.token.clone());
    let waiting = std::thread::spawn(move || {
        backupctl_with_token(
            &url,
            token.as_deref(),
            &[
                "backups",
                "create",
                "--source-cluster-id",
                "pg",
                "--description",
                "waited for",
                "--wait",
                "60",
            ],
        )
    });
    let id = wait_until(Duration::from_secs(30), "the backup to start", || {
        server
            .backups("")
            .first()
            .map(|b| b["id"].as_str().unwrap_or_default().to_owned())
    });
    // WHEN the server receives SIGTERM
    let (status, took) = server
        .terminate(Duration::from_secs(40))
        .expect("the server exited");
    // THEN it exits within 10 s, the waiting client hears that the backup failed, and the
    // backup is recorded interrupted
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(status.success(), "{status:?}");
    let out = waiting.join().unwrap();
    assert!(!out.success(), "{}", out.describe());
    let server = Server::start_with(&data, &["--allow-commands"], &[]);
    let backup = server.backup(&id);
    assert_eq!(backup["status"], "defunct", "{backup}");
    assert_eq!(backup["errorCode"], "interrupted", "{backup}");
}

#[test]
fn sigterm_exits_within_ten_seconds_while_a_client_holds_a_request_without_its_body() {
    use std::io::{Read, Write};
    // GIVEN a client that sent a request's headers and holds back its body, and another
    // that sent half of its headers
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox.data_dir(), &[]);
    let address = server.url.trim_start_matches("http://").to_owned();
    let token = server.token.clone().unwrap_or_default();
    let mut no_body = std::net::TcpStream::connect(&address).unwrap();
    write!(
        no_body,
        "POST /mesdb/v1/organizations/default/projects/default/clusters HTTP/1.1\r\n\
         Host: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    .unwrap();
    let mut half = std::net::TcpStream::connect(&address).unwrap();
    write!(half, "GET /healthz HTTP/1.1\r\nHost: {address}\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // WHEN the server receives SIGTERM
    let (status, took) = server
        .terminate(Duration::from_secs(40))
        .expect("the server exited");
    // THEN it exits within 10 s, and the held connections are closed
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(status.success(), "{status:?}");
    no_body
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    assert!(no_body.read_to_end(&mut rest).is_ok(), "still open");
    drop(half);
}

#[test]
fn sigterm_mid_copy_exits_within_ten_seconds_and_records_the_backup_interrupted() {
    // GIVEN a server in the middle of a long copy
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("orders", 4_000, 32 * 1024);
    let data = sandbox.data_dir();
    let mut server = Server::start(&data, &[]);
    server.register_dir("orders", &cluster);
    let id = start_manual_backup(&server, "orders");
    wait_until(Duration::from_secs(30), "the copy to start", || {
        sandbox
            .backups_dir_entries()
            .iter()
            .any(|n| n.ends_with(".partial"))
            .then_some(())
    });
    // WHEN it receives SIGTERM
    let (status, took) = server
        .terminate(Duration::from_secs(20))
        .expect("the server exited");
    // THEN it exits within 10 s, successfully
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(status.success(), "{status:?}");
    // AND the backup is recorded interrupted, its lock released, nothing half-made left
    let server = Server::start(&data, &[]);
    let backup = server.backup(&id);
    assert_eq!(backup["status"], "defunct", "{backup}");
    assert_eq!(backup["errorCode"], "interrupted", "{backup}");
    let cluster = server.json(&["clusters", "get", "--cluster-id", "orders"]);
    assert!(cluster["cluster"]["lock"].is_null(), "{cluster}");
    assert!(
        sandbox
            .backups_dir_entries()
            .iter()
            .all(|n| !n.starts_with('.') || n == ".lock"),
        "{:?}",
        sandbox.backups_dir_entries()
    );
}

#[test]
fn sigterm_mid_copy_still_runs_the_post_hook_of_a_pre_hook_that_succeeded() {
    // GIVEN a cluster with hooks (a cold backup), in the middle of a long copy
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("orders", 4_000, 32 * 1024);
    let log = sandbox.path().join("hooks.log");
    let mut server = Server::start_with(&sandbox.data_dir(), &["--allow-commands"], &[]);
    server.ok(&[
        "clusters",
        "register",
        "--cluster-id",
        "orders",
        "--description",
        "orders",
        "--provider",
        "directory",
        "--path",
        cluster.to_str().unwrap(),
        "--pre-hook",
        &format!("echo stopped >> '{}'", log.display()),
        "--post-hook",
        &format!("echo started >> '{}'", log.display()),
    ]);
    start_manual_backup(&server, "orders");
    wait_until(Duration::from_secs(30), "the copy to start", || {
        sandbox
            .backups_dir_entries()
            .iter()
            .any(|n| n.ends_with(".partial"))
            .then_some(())
    });
    // WHEN the server receives SIGTERM before the copy ends
    let (status, took) = server
        .terminate(Duration::from_secs(20))
        .expect("the server exited");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(status.success(), "{status:?}");
    // THEN the post-hook ran all the same, once: the database is started again
    let hooks = wait_until(Duration::from_secs(10), "the post-hook", || {
        let text = fs::read_to_string(&log).unwrap_or_default();
        text.contains("started").then_some(text)
    });
    assert_eq!(hooks, "stopped\nstarted\n");
}

#[test]
fn a_restore_cut_short_by_a_crash_is_failed_at_the_next_start_and_leaves_nothing() {
    // GIVEN a backup large enough that its restore takes a while
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("orders", 4_000, 32 * 1024);
    let data = sandbox.data_dir();
    let mut server = Server::start(&data, &[]);
    server.register_dir("orders", &cluster);
    let id = start_manual_backup(&server, "orders");
    let backup = wait_backup_settled(&server, &id, Duration::from_secs(120));
    assert_eq!(backup["status"], "available", "{backup}");
    // WHEN the server is killed while it restores it
    let place = sandbox.path().join("restored");
    let body = serde_json::json!({"id": "restored", "description": "restored",
                                  "sourceBackupId": id, "path": place.to_str().unwrap()});
    let (url, token) = (server.url.clone(), server.token.clone());
    let restoring = std::thread::spawn(move || {
        backupctl_with_token(
            &url,
            token.as_deref(),
            &[
                "backups",
                "restore",
                "--id",
                body["sourceBackupId"].as_str().unwrap(),
                "--cluster-id",
                "restored",
                "--description",
                "restored",
                "--path",
                body["path"].as_str().unwrap(),
            ],
        )
    });
    let hidden = |dir: &std::path::Path| -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".restored."))
            .collect()
    };
    wait_until(
        Duration::from_secs(60),
        "the restore to start copying",
        || (!hidden(sandbox.path()).is_empty()).then_some(()),
    );
    server.kill();
    let _ = restoring.join();
    // THEN at the next start the cluster is failed, saying why, its lock is free, and
    // nothing the restore made is left
    let server = Server::start(&data, &[]);
    let got = server.json(&["clusters", "get", "--cluster-id", "restored"]);
    assert_eq!(got["cluster"]["status"], "failed", "{got}");
    assert!(
        got["cluster"]["details"]
            .as_str()
            .unwrap_or_default()
            .contains("server stopped"),
        "{got}"
    );
    assert!(got["cluster"]["lock"].is_null(), "{got}");
    assert!(
        hidden(sandbox.path()).is_empty(),
        "{:?}",
        hidden(sandbox.path())
    );
    assert!(!place.exists());
}

#[test]
fn a_separate_backup_root_holds_the_backups_and_is_locked_too() {
    let sandbox = Sandbox::new();
    let root = sandbox.path().join("elsewhere");
    let cluster = sandbox.cluster_dir("orders", 2, 1024);
    let server = Server::start_with(
        &sandbox.data_dir(),
        &["--backup-root", root.to_str().unwrap()],
        &[],
    );
    server.register_dir("orders", &cluster);
    let id = start_manual_backup(&server, "orders");
    let backup = wait_backup_settled(&server, &id, Duration::from_secs(60));
    assert_eq!(backup["status"], "available", "{backup}");
    assert!(root.join(&id).join("manifest.json").is_file());
    assert_eq!(mode(&root), 0o700);
    // WHEN another server (another data directory) names the same backup root
    let other = sandbox.path().join("other-data");
    let stderr = serve_refused(&[
        "--data-dir".as_ref(),
        other.as_os_str(),
        "--backup-root".as_ref(),
        root.as_os_str(),
    ]);
    // THEN it is refused too
    assert!(
        stderr.contains("backup root") && stderr.contains("in use"),
        "{stderr}"
    );
}

#[test]
fn a_backup_root_that_holds_other_things_keeps_them_untouched() {
    // GIVEN a --backup-root that already holds an operator's files: a shared directory, a
    // directory with a manifest.json, hidden directories named like leftovers
    let sandbox = Sandbox::new();
    let root = sandbox.path().join("scratch");
    let photos = root.join("photos");
    let shared = root.join("shared");
    let thesis = root.join(".thesis.partial");
    let deleting = root.join(".notes.deleting");
    for dir in [&photos, &shared, &thesis, &deleting] {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(photos.join("manifest.json"), b"{}").unwrap();
    fs::write(thesis.join("ch1.txt"), b"chapter one").unwrap();
    fs::set_permissions(&photos, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(
        photos.join("manifest.json"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    // ... and one crash leftover of ours
    let ours = root.join(".dc9c0000000000000000.partial");
    fs::create_dir_all(ours.join("data")).unwrap();
    // WHEN a server starts on it and makes a backup
    let cluster = sandbox.cluster_dir("orders", 2, 1024);
    let server = Server::start_with(
        &sandbox.data_dir(),
        &["--backup-root", root.to_str().unwrap()],
        &[],
    );
    server.register_dir("orders", &cluster);
    let id = start_manual_backup(&server, "orders");
    let backup = wait_backup_settled(&server, &id, Duration::from_secs(60));
    assert_eq!(backup["status"], "available", "{backup}");
    // THEN only its own leftover went; nothing else was removed or chmodded
    assert!(!ours.exists());
    assert_eq!(mode(&photos), 0o755);
    assert_eq!(mode(&photos.join("manifest.json")), 0o644);
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(fs::read(thesis.join("ch1.txt")).unwrap(), b"chapter one");
    assert!(deleting.is_dir());
    drop(server);
    // WHEN it starts again (the tightening of older backups runs at every start)
    let server = Server::start_with(
        &sandbox.data_dir(),
        &["--backup-root", root.to_str().unwrap()],
        &[],
    );
    // THEN the same holds, and its own backup is private
    assert_eq!(mode(&photos), 0o755);
    assert_eq!(mode(&shared), 0o1777);
    assert!(thesis.join("ch1.txt").is_file() && deleting.is_dir());
    assert_eq!(mode(&root.join(&id)), 0o700);
    drop(server);
}

#[test]
fn a_backup_root_inside_a_clusters_directory_is_refused_creating_nothing() {
    // GIVEN a server with a registered cluster
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("orders", 2, 1024);
    let mut server = Server::start(&sandbox.data_dir(), &[]);
    server.register_dir("orders", &cluster);
    server.terminate(Duration::from_secs(20));
    // WHEN it is started again with a --backup-root inside that cluster's directory
    let inside = cluster.join("backups");
    let stderr = serve_refused(&[
        "--data-dir".as_ref(),
        sandbox.data_dir().as_os_str(),
        "--backup-root".as_ref(),
        inside.as_os_str(),
    ]);
    // THEN it refuses, naming the cluster and saying to choose another root, and makes
    // nothing inside the database's directory
    assert!(
        stderr.contains("orders") && stderr.contains("outside every cluster's path"),
        "{stderr}"
    );
    assert!(!inside.exists());
}

#[test]
fn serve_checksum_sha256_writes_sha256_manifests_that_verify_and_an_unknown_algorithm_is_refused() {
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("orders", 2, 1024);
    // The environment variable, as a service unit would set it.
    let server = Server::start(&sandbox.data_dir(), &[("BACKUPCTL_CHECKSUM", "sha256")]);
    server.register_dir("orders", &cluster);
    let id = start_manual_backup(&server, "orders");
    let backup = wait_backup_settled(&server, &id, Duration::from_secs(60));
    assert_eq!(backup["status"], "available", "{backup}");
    let text = fs::read_to_string(sandbox.backups_dir().join(&id).join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(manifest["hash"], "sha256", "{manifest}");
    for file in manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "file")
    {
        let rel = file["path"].as_str().unwrap();
        let bytes = fs::read(cluster.join(rel)).unwrap();
        let hex: String = {
            use sha2::{Digest, Sha256};
            Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert_eq!(file["sha256"], hex.as_str(), "{rel}");
        assert!(file.get("blake3").is_none(), "{file}");
    }
    let verified = server.json(&["backups", "verify", "--id", &id]);
    assert_eq!(verified["status"], "ok", "{verified}");

    // WHEN a server is asked for an algorithm it does not know
    let other = sandbox.path().join("other-data");
    let stderr = serve_refused(&[
        "--checksum".as_ref(),
        "md5".as_ref(),
        "--data-dir".as_ref(),
        other.as_os_str(),
    ]);
    // THEN it exits before touching anything, naming the ones it takes
    assert!(
        stderr.contains("md5") && stderr.contains("blake3") && stderr.contains("sha256"),
        "{stderr}"
    );
    assert!(!other.exists());
}

#[test]
fn a_server_given_another_ones_backups_as_its_backup_root_is_refused() {
    // GIVEN a server on its default backup root, with a partial backup in it
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox.data_dir(), &[]);
    let partial = sandbox.backups_dir().join(".dc9c0000000000000000.partial");
    fs::create_dir_all(&partial).unwrap();
    // WHEN a second server (another data directory) names that root
    let other = sandbox.path().join("other-data");
    let stderr = serve_refused(&[
        "--data-dir".as_ref(),
        other.as_os_str(),
        "--backup-root".as_ref(),
        sandbox.backups_dir().as_os_str(),
    ]);
    // THEN it is refused, and the first server's partial backup is still there
    assert!(
        stderr.contains("backup root") && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(
        partial.is_dir(),
        "the second server cleaned the first one's root"
    );
    drop(server);
}

#[test]
fn start_up_tightens_every_backup_and_says_so_in_one_line_without_the_token() {
    // GIVEN a data directory with a backup, all of it left readable by others
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir();
    let cluster = sandbox.cluster_dir("orders", 2, 1024);
    let id = {
        let server = Server::start(&data, &[]);
        server.register_dir("orders", &cluster);
        let id = start_manual_backup(&server, "orders");
        let backup = wait_backup_settled(&server, &id, Duration::from_secs(60));
        assert_eq!(backup["status"], "available", "{backup}");
        id
    };
    let backup = sandbox.backups_dir().join(&id);
    for (path, wide) in [
        (data.clone(), 0o755),
        (sandbox.backups_dir(), 0o755),
        (backup.clone(), 0o755),
        (backup.join("data"), 0o755),
        (backup.join("manifest.json"), 0o644),
        (data.join("token"), 0o644),
        (data.join("lock"), 0o644),
    ] {
        fs::set_permissions(&path, fs::Permissions::from_mode(wide)).unwrap();
    }
    // WHEN the server starts again
    let server = Server::start(&data, &[]);
    // THEN every one of them is private again
    assert_eq!(mode(&backup), 0o700);
    assert_eq!(mode(&backup.join("data")), 0o700);
    assert_eq!(mode(&backup.join("manifest.json")), 0o600);
    assert_eq!(mode(&data.join("token")), 0o600);
    assert_eq!(mode(&data.join("lock")), 0o600);
    assert_eq!(mode(&sandbox.backups_dir()), 0o700);
    // AND the log says so once, and never carries the token
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("private")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("manifest.json"), "{log}");
    let token = server.token.clone().expect("a token");
    assert!(!log.contains(&token), "the log carries the token:\n{log}");
}

#[test]
fn a_mistyped_serve_flag_leaves_no_data_directory_behind() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("no-such-root");
    for (flag, value) in [
        ("--allowed-root", missing.as_os_str()),
        ("--jwt-public-key", missing.as_os_str()),
        ("--listen", "no-such-host.invalid:0".as_ref()),
    ] {
        let data = sandbox.path().join("never-made");
        let stderr = serve_refused(&[
            "--data-dir".as_ref(),
            data.as_os_str(),
            flag.as_ref(),
            value,
        ]);
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(!data.exists(), "{flag}: the data directory was created");
    }
}

#[test]
fn a_manual_backup_that_fails_exits_non_zero_with_its_reason() {
    // GIVEN a cluster whose directory became a link after it was registered
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("orders", 1, 16);
    let server = Server::start(&sandbox.data_dir(), &[]);
    server.register_dir("orders", &cluster);
    let real = sandbox.path().join("moved");
    fs::rename(&cluster, &real).unwrap();
    std::os::unix::fs::symlink(&real, &cluster).unwrap();
    // WHEN a manual backup of it is made from the command line
    let out = server.cli(&[
        "backups",
        "create",
        "--source-cluster-id",
        "orders",
        "--description",
        "by hand",
    ]);
    // THEN the command fails, saying why on stderr
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("failed (path_not_allowed)") && !out.stderr.contains(".."),
        "{}",
        out.describe()
    );
}
