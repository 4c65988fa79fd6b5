//! Commands on a real `backupctl serve` (SPEC §14, §15): clusters that run commands only
//! under `--allow-commands`, a failing pre-hook recorded as `hook_failed`, a `command`
//! cluster backed up through the CLI, and `--rebuild-catalogue` after `state.db` is lost.

mod support;

use std::fs;
use std::time::Duration;

use serde_json::Value;
use support::*;

const RUN: Duration = Duration::from_secs(120);

fn wait_backup_settled(server: &Server, id: &str) -> Value {
    wait_until(RUN, &format!("backup {id} to settle"), || {
        let backup = server.backup(id);
        (backup["status"] != "creating").then_some(backup)
    })
}

#[test]
fn without_allow_commands_command_clusters_and_hooks_are_refused_and_nothing_is_registered() {
    // GIVEN a server started without --allow-commands
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("db", 2, 100);
    let server = Server::start(&sandbox.data_dir(), &[]);
    let path = cluster.display().to_string();
    // WHEN a command cluster is registered through the API
    let body = serde_json::json!({
        "id": "pg", "description": "Postgres", "provider": "command", "path": path,
        "backupCommand": "pg_basebackup -D \"$BACKUP_DIR\""
    });
    let raw = server.request(
        "POST",
        &format!("{MESDB}/clusters"),
        Some(&body.to_string()),
    );
    // THEN it answers 400 with a coded field error saying how to allow it
    assert_eq!(raw.status, 400, "{raw:?}");
    let problem = raw.json();
    assert_eq!(
        problem["problems"]["backupCommand"][0]["code"], "commands_not_allowed",
        "{problem}"
    );
    assert!(
        problem["fields"]["backupCommand"]
            .as_str()
            .unwrap()
            .contains("--allow-commands"),
        "{problem}"
    );
    // AND a directory cluster with a hook is refused the same way, through the CLI
    let out = server.cli(&[
        "clusters",
        "register",
        "--cluster-id",
        "hooked",
        "--description",
        "Hooked",
        "--provider",
        "directory",
        "--path",
        &path,
        "--pre-hook",
        "true",
    ]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("--allow-commands"),
        "{}",
        out.describe()
    );
    // AND nothing was registered
    let clusters = server.json(&["clusters", "list"]);
    assert_eq!(clusters["clusters"], serde_json::json!([]), "{clusters}");
}

#[test]
fn with_allow_commands_a_failing_pre_hook_is_hook_failed_and_a_command_cluster_backs_up() {
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("db", 2, 100);
    let path = cluster.display().to_string();
    let mut server = Server::start_with(&sandbox.data_dir(), &["--allow-commands"], &[]);
    // GIVEN a directory cluster whose pre-hook fails
    server.ok(&[
        "clusters",
        "register",
        "--cluster-id",
        "hooked",
        "--description",
        "Hooked",
        "--provider",
        "directory",
        "--path",
        &path,
        "--pre-hook",
        "echo 'pg_ctl: server is not running' >&2; exit 1",
        "--post-hook",
        "true",
    ]);
    // WHEN a job of it runs
    let job = server.create_job("hooked", 3);
    let item = server.wait_run(&server.run_job(&job), RUN);
    // THEN the run failed `hook_failed`, saying why, and no backup was kept
    assert_eq!(item["status"], "failed", "{item}");
    assert_eq!(item["errorCode"], "hook_failed", "{item}");
    assert!(
        item["details"]
            .as_str()
            .unwrap()
            .contains("server is not running"),
        "{item}"
    );
    assert!(sandbox.backups_on_disk().is_empty());
    // GIVEN a command cluster registered through the CLI
    server.ok(&[
        "clusters",
        "register",
        "--cluster-id",
        "pg",
        "--description",
        "Postgres",
        "--provider",
        "command",
        "--path",
        &path,
        "--backup-command",
        &format!("cp -a '{path}/.' \"$BACKUP_DIR/\""),
        "--command-timeout",
        "60",
    ]);
    let listed = server.json(&["clusters", "get", "--cluster-id", "pg"]);
    assert_eq!(listed["cluster"]["provider"], "command", "{listed}");
    assert_eq!(listed["cluster"]["commandTimeoutSeconds"], 60, "{listed}");
    // WHEN a manual backup of it is made
    let created = server.json(&[
        "backups",
        "create",
        "--source-cluster-id",
        "pg",
        "--description",
        "by command",
    ]);
    let id = created["id"].as_str().unwrap();
    let backup = wait_backup_settled(&server, id);
    // THEN it is available, as a `command` backup whose manifest verifies
    assert_eq!(backup["status"], "available", "{backup}");
    assert_eq!(backup["provider"], "command", "{backup}");
    let manifest: Value = serde_json::from_slice(
        &fs::read(sandbox.backups_dir().join(id).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["record"]["provider"], "command", "{manifest}");
    // WHEN the server starts again without --allow-commands
    server.terminate(Duration::from_secs(20));
    let server = Server::start(&sandbox.data_dir(), &[]);
    // THEN the cluster says why its runs fail, and a backup of it fails saying so
    let got = server.json(&["clusters", "get", "--cluster-id", "pg"]);
    let problem = got["cluster"]["problem"].as_str().unwrap_or_default();
    assert!(problem.contains("--allow-commands"), "{got}");
    assert!(problem.starts_with("commands_not_allowed: "), "{got}");
    let shown = server.ok(&["clusters", "get", "--cluster-id", "pg"]);
    assert!(shown.contains("commands_not_allowed: "), "{shown}");
    assert!(!shown.contains("path_not_allowed"), "{shown}");
    let created = server.json(&[
        "backups",
        "create",
        "--source-cluster-id",
        "pg",
        "--description",
        "refused",
    ]);
    let backup = wait_backup_settled(&server, created["id"].as_str().unwrap());
    assert_eq!(backup["status"], "defunct", "{backup}");
    assert!(
        backup["details"]
            .as_str()
            .unwrap_or_default()
            .contains("--allow-commands"),
        "{backup}"
    );
}

#[test]
fn a_restore_runs_no_command_the_server_does_not_allow_and_checks_its_target_as_a_registration() {
    // GIVEN a command cluster with a restore command, and a backup of it
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("db", 2, 100);
    let path = cluster.display().to_string();
    let mut server = Server::start_with(&sandbox.data_dir(), &["--allow-commands"], &[]);
    let witness = sandbox.path().join("restore-command-ran");
    server.ok(&[
        "clusters",
        "register",
        "--cluster-id",
        "pg",
        "--description",
        "Postgres",
        "--provider",
        "command",
        "--path",
        &path,
        "--backup-command",
        &format!("cp -a '{path}/.' \"$BACKUP_DIR/\""),
        "--restore-command",
        &format!(
            "touch '{}'; cp -a \"$BACKUP_DIR/.\" \"$TARGET_DIR/\"",
            witness.display()
        ),
    ]);
    let created = server.json(&[
        "backups",
        "create",
        "--source-cluster-id",
        "pg",
        "--description",
        "by command",
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_backup_settled(&server, &id)["status"], "available");
    let post = |server: &Server, body: Value| {
        server.request(
            "POST",
            &format!("{MESDB}/clusters"),
            Some(&body.to_string()),
        )
    };
    let restore = |new: &str, place: &str| {
        serde_json::json!({"id": new, "description": "restored", "sourceBackupId": id,
                           "path": sandbox.path().join(place).display().to_string()})
    };
    // WHEN it is restored with --allow-commands into a directory that is not empty, or as
    // a command cluster whose runAs user does not exist
    let busy = sandbox.path().join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("precious"), b"keep").unwrap();
    let answer = post(&server, restore("r1", "busy"));
    // THEN each is a 400 naming its field, as a directory backup's restore is, and nothing
    // is recorded or run
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(
        answer.json()["problems"]["path"][0]["code"],
        "path_not_empty",
        "{answer:?}"
    );
    let mut as_command = restore("r2", "r2");
    as_command["provider"] = "command".into();
    as_command["backupCommand"] = "true".into();
    as_command["runAs"] = "no-such-user-here".into();
    let answer = post(&server, as_command.clone());
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(
        answer.json()["problems"]["runAs"][0]["code"],
        "run_as_not_allowed",
        "{answer:?}"
    );
    assert!(!witness.exists());
    // WHEN the server starts again without --allow-commands
    server.terminate(Duration::from_secs(20));
    let server = Server::start(&sandbox.data_dir(), &[]);
    // THEN restoring the backup, whose cluster restores it by a command, is refused
    let answer = post(&server, restore("r3", "r3"));
    assert_eq!(answer.status, 400, "{answer:?}");
    let problem = answer.json();
    assert_eq!(
        problem["problems"]["sourceBackupId"][0]["code"], "commands_not_allowed",
        "{problem}"
    );
    assert!(
        problem["fields"]["sourceBackupId"]
            .as_str()
            .unwrap_or_default()
            .contains("--allow-commands"),
        "{problem}"
    );
    // AND so is a restore that asks for a command cluster
    as_command["runAs"] = Value::Null;
    let answer = post(&server, as_command);
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(
        answer.json()["problems"]["backupCommand"][0]["code"],
        "commands_not_allowed",
        "{answer:?}"
    );
    // AND no command ran, no cluster was recorded and no directory made
    assert!(!witness.exists());
    let clusters = server.json(&["clusters", "list"]);
    assert_eq!(
        clusters["clusters"].as_array().map(Vec::len),
        Some(1),
        "{clusters}"
    );
    for place in ["r1", "r2", "r3"] {
        assert!(!sandbox.path().join(place).exists(), "{place}");
    }
    assert_eq!(fs::read(busy.join("precious")).unwrap(), b"keep");
    // WHEN its cluster is deleted THEN the backup restores by copying its files, since its
    // restore command went with the cluster
    server.ok(&["clusters", "delete", "--cluster-id", "pg"]);
    let answer = post(&server, restore("r4", "r4"));
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(
        tree_contents(&sandbox.path().join("r4")),
        tree_contents(&cluster)
    );
    assert!(!witness.exists());
}

#[test]
fn rebuild_catalogue_recreates_every_backup_after_state_db_is_lost() {
    // GIVEN a server with a scheduled backup and a manual one
    let sandbox = Sandbox::new();
    let cluster = sandbox.cluster_dir("db", 3, 1000);
    let mut server = Server::start(&sandbox.data_dir(), &[]);
    server.register_dir("orders", &cluster);
    let job = server.create_job("orders", 5);
    let item = server.wait_run(&server.run_job(&job), RUN);
    assert_eq!(item["status"], "succeeded", "{item}");
    let manual = server.json(&[
        "backups",
        "create",
        "--source-cluster-id",
        "orders",
        "--description",
        "before the upgrade",
    ]);
    wait_backup_settled(&server, manual["id"].as_str().unwrap());
    let before = server.json(&["backups", "list"]);
    let before = before["backups"].as_array().unwrap().clone();
    assert_eq!(before.len(), 2, "{before:?}");
    server.terminate(Duration::from_secs(20));
    // WHEN state.db is lost and the server starts with --rebuild-catalogue
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = fs::remove_file(sandbox.data_dir().join(name));
    }
    let server = Server::start_with(&sandbox.data_dir(), &["--rebuild-catalogue"], &[]);
    // THEN `backups list` shows every backup again with its job, cluster, description and
    // creation instant
    let after = server.json(&["backups", "list"]);
    let after = after["backups"].as_array().unwrap().clone();
    assert_eq!(after.len(), before.len(), "{after:?}");
    for old in &before {
        let new = after
            .iter()
            .find(|b| b["id"] == old["id"])
            .unwrap_or_else(|| panic!("{} was not recreated: {after:?}", old["id"]));
        for field in [
            "linkedResource",
            "sourceClusterId",
            "sourceClusterDescription",
            "description",
            "created",
            "status",
            "provider",
            "projectId",
            "sizeGb",
        ] {
            assert_eq!(new[field], old[field], "{field} of {}", old["id"]);
        }
    }
    // AND each restores, though the catalogue has no record of its cluster
    let restored = sandbox.path().join("restored");
    let out = server.cli(&[
        "backups",
        "restore",
        "--id",
        before[1]["id"].as_str().unwrap(),
        "--cluster-id",
        "orders-restored",
        "--description",
        "restored",
        "--path",
        restored.to_str().unwrap(),
    ]);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(tree_contents(&restored), tree_contents(&cluster));
    // AND the recreated backups are the server's to delete like any other
    let id = before[0]["id"].as_str().unwrap();
    server.ok(&["backups", "delete", "-i", id]);
    wait_until(RUN, "the delete", || {
        (!sandbox.backups_on_disk().contains(&id.to_owned())).then_some(())
    });
}
