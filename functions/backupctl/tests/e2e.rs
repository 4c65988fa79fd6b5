//! End-to-end tests: a real `backupctl serve` (SQLite state, directory provider, scheduler)
//! on 127.0.0.1 port 0 in its own temporary data directory, driven by the real `backupctl`
//! binary and, for bad input, by raw HTTP.
//!
//! Every test that starts a server says so in its name's neighbourhood (they all do, except
//! the `offline_` ones). Tests that take longer than about 20 s are named `slow_…`; the
//! slowest waits for the scheduler's next minute (at most ~80 s). The file runs in well
//! under three minutes on two cores, because the tests run in parallel and most of the slow
//! ones are waiting, not working.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Timelike, Utc};
use serde_json::{json, Value};
use support::{backupctl, tree_contents, wait_until, words, Sandbox, Server, MESDB, ORCH};

/// A generous bound for one small backup on a loaded machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn start(sandbox: &Sandbox) -> Server {
    Server::start(&sandbox.data_dir(), &[])
}

/// A server with one directory cluster `id`, whose data is `sandbox.cluster_dir(name, files,
/// size)`: the server and the data's path.
fn start_with_cluster(
    sandbox: &Sandbox,
    name: &str,
    files: usize,
    size: usize,
    id: &str,
) -> (Server, PathBuf) {
    let server = start(sandbox);
    let data = sandbox.cluster_dir(name, files, size);
    server.register_dir(id, &data);
    (server, data)
}

/// [`start_with_cluster`] with a job keeping `keep` backups, run once: the server, the data's
/// path, the job's id and the id of the backup its first run made.
fn start_with_backup(
    sandbox: &Sandbox,
    id: &str,
    files: usize,
    size: usize,
    keep: u32,
) -> (Server, PathBuf, String, String) {
    let (server, data) = start_with_cluster(sandbox, id, files, size, id);
    let job = server.create_job(id, keep);
    let first = run_now(&server, &job);
    assert_eq!(first["status"], "succeeded", "{first}");
    let backup = str_of(&first, "linkedResource").to_owned();
    (server, data, job, backup)
}

/// Runs `job` through the CLI and waits for the run to end; its history item.
fn run_now(server: &Server, job: &str) -> Value {
    server.wait_run(&server.run_job(job), RUN_TIMEOUT)
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {value}"))
}

// --- the seed's command lines ---------------------------------------------------------------

#[test]
fn the_seed_command_lines_work_verbatim() {
    // GIVEN a server and the seed's cluster registered as a directory cluster
    let sandbox = Sandbox::new();
    let (server, _data) = start_with_cluster(&sandbox, "seed", 3, 1024, "c196ogto0aeqohe3ommq");

    // WHEN the seed's first line is run as written (SPEC §6, after `backupctl`)
    let created = server.cli(&words("orchestrate jobs create --description 'My Hourly Backup' --schedule '0 */1 * * *' scheduled-backup --description '{cluster} Hourly Backup {datetime:RFC3339}' --max-backup-count 2 --cluster-id c196ogto0aeqohe3ommq"));
    // THEN it says which job it created, and when it runs next
    assert!(created.success(), "{}", created.describe());
    let job_id = created
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Created job "))
        .unwrap_or_else(|| panic!("no job id in:\n{}", created.stdout))
        .trim()
        .to_owned();
    assert!(
        created.stdout.contains("At minute 0 of every hour"),
        "{}",
        created.stdout
    );
    assert!(created.stdout.contains("Next runs:"), "{}", created.stdout);

    // WHEN the second line lists the jobs
    let listed = server.ok(&["orchestrate", "jobs", "list"]);
    // THEN the job is there with its schedule, cluster, retention and next run
    let jobs = server.json(&["orchestrate", "jobs", "list"]);
    let job = jobs["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["id"] == job_id.as_str())
        .expect("the job is listed")
        .clone();
    let next_runs: Vec<&str> = job["nextRuns"]
        .as_array()
        .expect("nextRuns")
        .iter()
        .map(|v| v.as_str().expect("instant"))
        .collect();
    assert!(!next_runs.is_empty(), "{job}");
    let mut previous: Option<DateTime<Utc>> = None;
    for run in &next_runs {
        let t: DateTime<Utc> = run.parse().expect("RFC 3339");
        assert!(run.ends_with(":00:00Z"), "{run}");
        assert!(
            t > Utc::now() - ChronoDuration::seconds(5),
            "{run} is in the future"
        );
        if let Some(p) = previous {
            assert_eq!(t - p, ChronoDuration::hours(1), "hourly");
        }
        previous = Some(t);
    }
    let header = listed.lines().next().unwrap_or_default();
    for column in [
        "ID",
        "DESCRIPTION",
        "SCHEDULE",
        "CLUSTER",
        "KEEP",
        "STATUS",
        "NEXT RUN",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = listed
        .lines()
        .find(|l| l.starts_with(&job_id))
        .unwrap_or_else(|| panic!("no row for {job_id}:\n{listed}"));
    for cell in [
        "My Hourly Backup",
        "0 */1 * * *",
        "c196ogto0aeqohe3ommq",
        "active",
        next_runs[0],
    ] {
        assert!(row.contains(cell), "{cell} missing from {row}");
    }
    // The same job also lists without `orchestrate`.
    assert!(server.ok(&["jobs", "list"]).contains(&job_id));

    // WHEN the third line lists the job's history before any run
    let empty = server.ok(&["orchestrate", "history", "list", "--job-id", &job_id]);
    assert!(empty.contains("No runs"), "{empty}");

    // AND after a run
    let history_id = server.run_job(&job_id);
    let item = server.wait_run(&history_id, RUN_TIMEOUT);
    assert_eq!(item["status"], "succeeded", "{item}");
    let history = server.ok(&["orchestrate", "history", "list", "--job-id", &job_id]);
    // THEN the run is listed with its outcome
    let row = history
        .lines()
        .find(|l| l.starts_with(&history_id))
        .unwrap_or_else(|| panic!("no row for {history_id}:\n{history}"));
    assert!(row.contains(&job_id) && row.contains("succeeded"), "{row}");
    // AND the backup is named by the job's template at the run's instant
    let backup = server.backup(str_of(&item, "linkedResource"));
    assert_eq!(
        backup["description"],
        format!(
            "Cluster c196ogto0aeqohe3ommq Hourly Backup {}",
            str_of(&item, "scheduledTime")
        )
    );
    assert_eq!(backup["linkedResource"], job_id.as_str());
    assert_eq!(backup["status"], "available");
}

// --- retention ------------------------------------------------------------------------------

#[test]
fn three_runs_keep_the_two_newest_backups_on_disk() {
    // GIVEN a job that keeps 2 backups
    let sandbox = Sandbox::new();
    let (server, data) = start_with_cluster(&sandbox, "orders", 4, 64 * 1024, "orders");
    let job = server.create_job("orders", 2);

    // WHEN it runs three times, one after the other
    let mut backups = Vec::new();
    let mut items = Vec::new();
    for _ in 0..3 {
        let history_id = server.run_job(&job);
        let item = server.wait_run(&history_id, RUN_TIMEOUT);
        assert_eq!(item["status"], "succeeded", "{item}");
        backups.push(str_of(&item, "linkedResource").to_owned());
        items.push(item);
    }

    // THEN exactly the two newest backups are on disk, each matching its manifest
    let mut newest = backups[1..].to_vec();
    newest.sort();
    assert_eq!(sandbox.backups_on_disk(), newest);
    for id in &backups[1..] {
        let manifest = sandbox.verify_backup(id, &data);
        assert_eq!(manifest["clusterId"], "orders");
        assert_eq!(manifest["jobId"], job.as_str());
        assert_eq!(server.backup(id)["status"], "available");
    }
    // AND the oldest's directory is gone, its record `deleted`, and the third run says so
    assert!(!sandbox.backups_dir().join(&backups[0]).exists());
    assert_eq!(server.backup(&backups[0])["status"], "deleted");
    assert_eq!(items[2]["prunedBackupIds"], json!([backups[0]]));
    assert_eq!(items[1]["prunedBackupIds"], json!([]));
    // AND the CLI's table shows the same
    let table = server.ok(&["backups", "list", "--job-id", &job]);
    for column in ["ID", "DESCRIPTION", "CLUSTER", "CREATED", "STATUS", "JOB"] {
        assert!(table.lines().next().unwrap_or_default().contains(column));
    }
    let deleted_row = table
        .lines()
        .find(|l| l.starts_with(&backups[0]))
        .expect("the deleted backup is listed");
    assert!(deleted_row.contains("deleted"), "{deleted_row}");
    // AND nothing partial is left behind
    assert_eq!(sandbox.backups_dir_entries(), newest);

    // AND `--json` prints the API's own JSON, byte for byte
    for (args, path) in [
        (
            vec!["--json", "history", "list", "--job-id", job.as_str()],
            format!("{ORCH}/history?jobId={job}"),
        ),
        (
            vec!["--json", "backups", "list", "--job-id", job.as_str()],
            format!("{MESDB}/backups?jobId={job}"),
        ),
        (
            vec!["--json", "clusters", "list"],
            format!("{MESDB}/clusters"),
        ),
    ] {
        let printed = server.ok(&args);
        let raw = server.request("GET", &path, None);
        assert_eq!(printed, format!("{}\n", raw.body), "{args:?}");
    }

    // WHEN the operator deletes one backup by hand THEN it is gone from disk and `deleted`
    let out = server.ok(&["backups", "delete", "-i", &backups[1]]);
    assert!(out.contains(&backups[1]), "{out}");
    assert!(!sandbox.backups_dir().join(&backups[1]).exists());
    assert_eq!(server.backup(&backups[1])["status"], "deleted");
    // WHEN the job is deleted THEN it stops, and its history and backups remain
    server.ok(&["jobs", "delete", "-i", &job]);
    let shown = server.ok(&["jobs", "get", "-i", &job]);
    assert!(shown.contains("deleted"), "{shown}");
    assert_eq!(
        server.json(&["jobs", "get", "-i", &job])["job"]["status"],
        "deleted"
    );
    assert_eq!(server.history(Some(&job)).len(), 3);
    assert_eq!(server.backup(&backups[2])["status"], "available");
    let refused = server.cli(&["jobs", "run", "-i", &job]);
    assert_eq!(refused.code, Some(1), "{}", refused.describe());
    assert!(refused.stderr.contains("deleted"), "{}", refused.stderr);
}

// --- overlaps ---------------------------------------------------------------------------------

/// Runs `jobs run` through the CLI for each job at the same moment (threads released by one
/// barrier); returns each history id.
fn run_together(server: &Arc<Server>, jobs: &[String]) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(jobs.len()));
    let handles: Vec<_> = jobs
        .iter()
        .map(|job| {
            let (server, barrier, job) = (server.clone(), barrier.clone(), job.clone());
            std::thread::spawn(move || {
                barrier.wait();
                server.run_job(&job)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("runner thread"))
        .collect()
}

/// `POST …/jobs/{id}/run` for each job at the same moment; returns each history id.
fn post_runs_together(server: &Arc<Server>, jobs: &[String]) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(jobs.len()));
    let handles: Vec<_> = jobs
        .iter()
        .map(|job| {
            let (server, barrier, job) = (server.clone(), barrier.clone(), job.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let raw = server.request("POST", &format!("{ORCH}/jobs/{job}/run"), None);
                assert_eq!(raw.status, 200, "{raw:?}");
                str_of(&raw.json(), "historyId").to_owned()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("request thread"))
        .collect()
}

#[test]
fn two_jobs_on_one_cluster_at_the_same_moment_make_one_backup() {
    // GIVEN two jobs on one cluster whose backup takes a while (32 MB)
    let sandbox = Sandbox::new();
    let server = Arc::new(start(&sandbox));
    let data = sandbox.cluster_dir("big", 16, 2 * 1024 * 1024);
    server.register_dir("big", &data);
    let jobs = vec![server.create_job("big", 5), server.create_job("big", 5)];

    // WHEN both are run at the same moment
    let ids = run_together(&server, &jobs);
    let items: Vec<Value> = ids
        .iter()
        .map(|id| server.wait_run(id, RUN_TIMEOUT))
        .collect();

    // THEN exactly one made a backup
    let (won, lost): (Vec<&Value>, Vec<&Value>) =
        items.iter().partition(|i| i["status"] == "succeeded");
    assert_eq!((won.len(), lost.len()), (1, 1), "{items:#?}");
    let (won, lost) = (won[0], lost[0]);
    assert_eq!(server.backups("?clusterId=big").len(), 1);
    assert_eq!(sandbox.backups_on_disk().len(), 1);
    // AND the other failed at once with `cluster_locked`, naming the run that held the lock
    assert_eq!(lost["status"], "failed");
    assert_eq!(lost["errorCode"], "cluster_locked", "{lost}");
    let details = str_of(lost, "details");
    assert!(details.contains(str_of(won, "id")), "{details}");
    assert!(details.contains(str_of(won, "jobId")), "{details}");
    assert_eq!(lost["linkedResource"], "big");
    // AND the CLI tells the operator which run failed and why
    let table = server.ok(&["history", "list", "--job-id", str_of(lost, "jobId")]);
    assert!(table.contains("cluster_locked"), "{table}");
}

#[test]
fn slow_fifty_concurrent_runs_over_five_clusters_lose_nothing() {
    // GIVEN five clusters with two jobs each
    let sandbox = Sandbox::new();
    let server = Arc::new(start(&sandbox));
    let clusters: Vec<String> = (0..5).map(|i| format!("wave-{i}")).collect();
    let mut jobs = Vec::new();
    let mut cluster_of = BTreeMap::new();
    for cluster in &clusters {
        let data = sandbox.cluster_dir(cluster, 4, 1024 * 1024);
        server.register_dir(cluster, &data);
        for _ in 0..2 {
            let job = server.create_job(cluster, 100);
            cluster_of.insert(job.clone(), cluster.clone());
            jobs.push(job);
        }
    }

    // WHEN five waves of ten simultaneous run requests (one per job) are sent, as raw HTTP
    // so that each wave's requests arrive within milliseconds of each other
    let mut all_ids = Vec::new();
    let mut made: BTreeMap<String, usize> = BTreeMap::new();
    for wave in 0..5 {
        let ids = post_runs_together(&server, &jobs);
        let items: Vec<Value> = ids
            .iter()
            .map(|id| server.wait_run(id, RUN_TIMEOUT))
            .collect();
        // THEN each cluster got at least one backup in this wave, and a run that made none
        // failed because the other run held the cluster's lock. Both may succeed: an
        // incremental backup of an unchanged cluster links its files in milliseconds, so the
        // second request can arrive after the first run released the lock.
        // `two_jobs_on_one_cluster_at_the_same_moment_make_one_backup` pins the overlap itself.
        for cluster in &clusters {
            let of_cluster: Vec<&Value> = items
                .iter()
                .filter(|i| cluster_of[str_of(i, "jobId")] == *cluster)
                .collect();
            let statuses: Vec<(String, String)> = of_cluster
                .iter()
                .map(|i| {
                    (
                        str_of(i, "status").to_owned(),
                        i["errorCode"].as_str().unwrap_or("-").to_owned(),
                    )
                })
                .collect();
            assert_eq!(statuses.len(), 2, "wave {wave}, cluster {cluster}");
            let succeeded = statuses.iter().filter(|s| s.0 == "succeeded").count();
            assert!(
                succeeded >= 1
                    && statuses.iter().all(|s| s.0 == "succeeded"
                        || (s.0 == "failed" && s.1 == "cluster_locked")),
                "wave {wave}, cluster {cluster}: {of_cluster:#?}"
            );
            *made.entry(cluster.clone()).or_insert(0) += succeeded;
        }
        all_ids.extend(ids);
    }

    // THEN every request has its own history item, and nothing was lost or doubled
    let unique: BTreeSet<&String> = all_ids.iter().collect();
    assert_eq!(unique.len(), 50);
    let history = server.history(None);
    assert_eq!(history.len(), 50);
    let listed: BTreeSet<&str> = history.iter().map(|i| str_of(i, "id")).collect();
    assert!(all_ids.iter().all(|id| listed.contains(id.as_str())));
    for cluster in &clusters {
        let backups = server.backups(&format!("?clusterId={cluster}"));
        assert_eq!(
            backups.len(),
            made[cluster],
            "{cluster}: one backup per successful run"
        );
        assert!(backups.iter().all(|b| b["status"] == "available"));
    }
    assert_eq!(
        sandbox.backups_on_disk().len(),
        made.values().sum::<usize>()
    );
}

#[test]
fn a_manual_backup_while_an_operator_lock_is_held_is_refused() {
    // GIVEN a cluster an operator locked for a disk expansion
    let sandbox = Sandbox::new();
    let (server, data) = start_with_cluster(&sandbox, "maint", 2, 1024, "maint");
    let locked = server.ok(&words(
        "clusters lock --cluster-id maint --operation expand-disk --ttl 30m",
    ));
    assert!(locked.contains("expand-disk"), "{locked}");
    let shown = server.ok(&["clusters", "list"]);
    assert!(shown.contains("expand-disk until"), "{shown}");

    // WHEN a manual backup is asked for through the CLI
    let refused = server.cli(&words(
        "backups create --source-cluster-id maint --description 'Before the upgrade'",
    ));
    // THEN it fails, saying the cluster is locked and by what
    assert_eq!(refused.code, Some(1), "{}", refused.describe());
    assert!(refused.stderr.contains("locked"), "{}", refused.stderr);
    assert!(refused.stderr.contains("expand-disk"), "{}", refused.stderr);
    // AND the API answered 409 with a problem
    let raw = server.request(
        "POST",
        &format!("{MESDB}/backups"),
        Some(r#"{"description":"x","sourceClusterId":"maint"}"#),
    );
    assert_eq!(raw.status, 409, "{raw:?}");
    assert!(raw.content_type.starts_with("application/problem+json"));
    assert_eq!(raw.json()["code"], "cluster_locked");
    // AND no backup was made
    assert!(server.backups("").is_empty());

    // WHEN the operator releases the lock THEN a manual backup is taken
    let released = server.ok(&["clusters", "unlock", "--cluster-id", "maint"]);
    assert!(
        released.starts_with("Released the maintenance lock"),
        "{released}"
    );
    // (releasing it again changes nothing, and says so)
    let again = server.ok(&["clusters", "unlock", "--cluster-id", "maint"]);
    assert!(again.contains("held no lock; nothing changed"), "{again}");
    let created = server.json(&words(
        "backups create --source-cluster-id maint --description 'After the upgrade'",
    ));
    let id = str_of(&created, "id").to_owned();
    wait_until(RUN_TIMEOUT, "the manual backup", || {
        (server.backup(&id)["status"] == "available").then_some(())
    });
    let backup = server.backup(&id);
    assert!(backup.get("linkedResource").is_none(), "manual: {backup}");
    sandbox.verify_backup(&id, &data);
}

// --- failures -----------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn an_unreadable_cluster_fails_with_provider_error_and_prunes_nothing() {
    use std::os::unix::ffi::OsStrExt;

    // GIVEN a job keeping one backup, which it has made
    let sandbox = Sandbox::new();
    let (server, data, job, kept) = start_with_backup(&sandbox, "fragile", 3, 4096, 1);

    // WHEN the data directory holds a file the provider cannot copy (a name that is not
    // UTF-8: unlike chmod 000, this stops a copy running as root too)
    let bad = data.join(std::ffi::OsStr::from_bytes(b"bad-\xff-name"));
    std::fs::write(&bad, b"x").expect("bad file");
    let failed = run_now(&server, &job);

    // THEN the run fails with provider_error and says why
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["errorCode"], "provider_error", "{failed}");
    assert!(
        str_of(&failed, "details").contains("nothing was pruned"),
        "{failed}"
    );
    // AND nothing was pruned: the earlier backup is still available and complete
    assert_eq!(failed["prunedBackupIds"], json!([]));
    assert_eq!(server.backup(&kept)["status"], "available");
    // AND the failed copy is not on disk, not even half
    assert_eq!(sandbox.backups_dir_entries(), vec![kept.clone()]);
    let failed_backup = str_of(&failed, "linkedResource");
    if failed_backup != "fragile" {
        assert_eq!(server.backup(failed_backup)["status"], "defunct");
    }
    std::fs::remove_file(&bad).expect("remove");
    sandbox.verify_backup(&kept, &data);

    // AND the lock is free again: a manual backup right after is taken
    let cluster = server.json(&["clusters", "get", "--cluster-id", "fragile"]);
    assert!(cluster["cluster"].get("lock").is_none(), "{cluster}");
    let manual = server.json(&words(
        "backups create --source-cluster-id fragile --description '{cluster} manual'",
    ));
    let manual = str_of(&manual, "id").to_owned();
    wait_until(RUN_TIMEOUT, "the manual backup", || {
        (server.backup(&manual)["status"] == "available").then_some(())
    });

    // AND a path that is not a directory at all is refused when it is registered
    let not_a_dir = sandbox.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"just a file").expect("file");
    let refused = server.cli(&words(&format!(
        "clusters register --cluster-id plainfile --description 'a file' --provider directory \
         --path '{}'",
        not_a_dir.to_str().expect("UTF-8")
    )));
    assert!(!refused.success(), "{}", refused.describe());
    assert!(
        refused.stderr.contains("not a directory"),
        "{}",
        refused.describe()
    );
    // AND one that stops being a directory after it was registered fails its runs
    let was_a_dir = sandbox.cluster_dir("plainfile", 1, 16);
    server.register_dir("plainfile", &was_a_dir);
    std::fs::remove_dir_all(&was_a_dir).expect("remove");
    std::fs::write(&was_a_dir, b"just a file").expect("file");
    let job = server.create_job("plainfile", 1);
    let failed = run_now(&server, &job);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["errorCode"] == "provider_error" || failed["errorCode"] == "path_not_allowed",
        "{failed}"
    );
    let cluster = server.json(&["clusters", "get", "--cluster-id", "plainfile"]);
    assert!(cluster["cluster"].get("lock").is_none(), "{cluster}");
}

#[test]
fn a_crash_mid_backup_recovers_once_the_lease_expires() {
    // GIVEN a server with a 5 s lease (renewed every 5/3 s), backing up a large cluster
    const LEASE: &str = "5";
    let env = [("BACKUPCTL_LEASE_SECONDS", LEASE)];
    let sandbox = Sandbox::new();
    let mut server = Server::start(&sandbox.data_dir(), &env);
    let data = sandbox.cluster_dir("crashy", 32, 2 * 1024 * 1024);
    server.register_dir("crashy", &data);
    let job = server.create_job("crashy", 3);
    let interrupted = server.run_job(&job);

    // WHEN the process is killed (SIGKILL) while the copy is being written
    wait_until(RUN_TIMEOUT, "the copy to start", || {
        sandbox
            .backups_dir_entries()
            .iter()
            .any(|n| n.ends_with(".partial"))
            .then_some(())
    });
    server.kill();
    let killed_at = std::time::Instant::now();
    // (The data shrinks meanwhile, so the recovery run below is quick.)
    for i in 2..32 {
        std::fs::remove_file(data.join("chunks").join(format!("chunk-{i:04}"))).expect("trim");
    }

    // AND it is restarted on the same data directory
    let server = Server::start(&sandbox.data_dir(), &env);

    // THEN state survived: the job, the cluster and the interrupted run are still there, the
    // run marked as failed because it was interrupted
    let jobs = server.json(&["jobs", "list"]);
    assert_eq!(jobs["jobs"][0]["id"], job.as_str());
    assert_eq!(
        server.json(&["clusters", "list"])["clusters"][0]["id"],
        "crashy"
    );
    let item = server
        .history_item(&interrupted)
        .expect("the interrupted run");
    assert_eq!(item["status"], "failed", "{item}");
    assert_eq!(item["errorCode"], "interrupted", "{item}");
    // AND the half-written copy is not `available`, and nothing of it is on disk
    let records = server.backups("");
    assert_eq!(records.len(), 1, "{records:#?}");
    let half = str_of(&records[0], "id").to_owned();
    assert_eq!(records[0]["status"], "defunct", "{records:#?}");
    assert!(
        sandbox.backups_dir_entries().is_empty(),
        "{:?}",
        sandbox.backups_dir_entries()
    );
    // AND while the dead run's lease lasts, the cluster stays locked by it (checked only if
    // the restart was quick enough to be sure the lease is still running)
    let lease = Duration::from_secs(LEASE.parse().expect("seconds"));
    if killed_at.elapsed() < lease / 2 {
        let early = run_now(&server, &job);
        assert_eq!(early["errorCode"], "cluster_locked", "{early}");
        assert!(str_of(&early, "details").contains(&interrupted), "{early}");
    } else {
        eprintln!(
            "the restart took {:?}, too long to check the lock within the lease",
            killed_at.elapsed()
        );
    }

    // WHEN the lease has run out
    std::thread::sleep(lease.saturating_sub(killed_at.elapsed()) + Duration::from_millis(300));
    // THEN the next run takes the lock and succeeds, and prunes the defunct copy's record
    let next = run_now(&server, &job);
    assert_eq!(next["status"], "succeeded", "{next}");
    let backup = str_of(&next, "linkedResource");
    sandbox.verify_backup(backup, &data);
    assert_eq!(sandbox.backups_on_disk(), vec![backup.to_owned()]);
    assert_ne!(server.backup(&half)["status"], "available");
}

// --- the scheduler ------------------------------------------------------------------------

/// There is no API route to deliver a scheduled instant by hand (the engine's
/// `run_scheduled` is reached only through the scheduler), so the duplicate delivery is made
/// the way it happens in production: by two triggers. A second `backupctl serve` on the same
/// data directory arms the same job at start-up (the SQLite store is built for a second
/// process: `BEGIN IMMEDIATE` and a busy timeout), and both schedulers fire it at its minute.
#[test]
/// A second delivery of the same firing is proven where it can be made: the engine's
/// duplicate-delivery test (`functions/local/tests/engine.rs`) and the Lambda runner fed the
/// same event three times. Two servers can no longer share a data directory (SPEC §12), which
/// is how this test used to make one.
fn slow_the_scheduler_fires_at_the_minute_and_backs_up_once() {
    // GIVEN a daily job whose minute is the next one (or the one after, if the next is too
    // close to create the job in time)
    let sandbox = Sandbox::new();
    let first = start(&sandbox);
    let data = sandbox.cluster_dir("timely", 2, 1024);
    first.register_dir("timely", &data);
    let now = Utc::now();
    let ahead = if now.second() <= 45 { 1 } else { 2 };
    let due = now
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .expect("whole minute")
        + ChronoDuration::minutes(ahead);
    let schedule = format!("{} {} * * *", due.minute(), due.hour());
    let template = "{cluster} at {datetime:rfc3339}";
    let created = first.json(&words(&format!(
        "jobs create --description Soon --schedule '{schedule}' scheduled-backup \
         --description '{template}' --max-backup-count 1 --cluster-id timely"
    )));
    let job = str_of(&created, "id").to_owned();
    let due_text = due.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let got = first.json(&["jobs", "get", "-i", &job]);
    assert_eq!(got["job"]["nextRuns"][0], due_text.as_str());
    // WHEN the minute comes (bounded: at most ~2 minutes from now plus a margin)
    let wait = (due - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(30);
    let item = wait_until(wait, "the scheduled run", || {
        first
            .history(Some(&job))
            .into_iter()
            .find(|i| i["status"] != "running")
    });

    // THEN the job ran for that instant, by the schedule, and made its backup
    assert_eq!(item["trigger"], "schedule", "{item}");
    assert_eq!(item["scheduledTime"], due_text.as_str());
    assert_eq!(item["status"], "succeeded", "{item}");
    let started: DateTime<Utc> = str_of(&item, "startTime").parse().expect("instant");
    assert!(started >= due, "started {started}, due {due}");
    assert!(
        started - due < ChronoDuration::seconds(15),
        "late: {started}"
    );
    let backup = first.backup(str_of(&item, "linkedResource"));
    assert_eq!(
        backup["description"],
        format!("Cluster timely at {due_text}")
    );

    // AND it ran once for that instant
    assert_eq!(
        first.history(Some(&job)).len(),
        1,
        "one run for one instant"
    );
    assert_eq!(first.backups(&format!("?jobId={job}")).len(), 1);
    assert_eq!(sandbox.backups_on_disk().len(), 1);
}

// --- bad input ----------------------------------------------------------------------------

/// A bad request: method, path, body, the status expected, a field the problem must name.
type BadRequest = (
    &'static str,
    String,
    Option<String>,
    u16,
    Option<&'static str>,
);

/// Everything the API lists, to compare before and after bad requests.
fn snapshot(server: &Server) -> Value {
    let mut all = serde_json::Map::new();
    for path in [
        format!("{ORCH}/jobs"),
        format!("{ORCH}/history"),
        format!("{MESDB}/backups"),
        format!("{MESDB}/clusters"),
    ] {
        let raw = server.request("GET", &path, None);
        assert_eq!(raw.status, 200, "{path}: {raw:?}");
        let mut value = raw.json();
        // Next runs move with the clock; everything else must stay as it was.
        if let Some(jobs) = value["jobs"].as_array_mut() {
            for job in jobs {
                job["nextRuns"] = Value::Null;
            }
        }
        all.insert(path, value);
    }
    Value::Object(all)
}

#[test]
fn bad_input_on_every_route_is_a_problem_and_changes_nothing() {
    // GIVEN a server with one cluster, one job and one backup
    let sandbox = Sandbox::new();
    let (server, data, _job, backup) = start_with_backup(&sandbox, "steady", 2, 1024, 2);
    let before = snapshot(&server);

    let long = "x".repeat(257);
    let good_job = json!({
        "description": "d", "schedule": "0 * * * *", "type": "ScheduledBackup",
        "data": {"clusterId": "steady", "description": "{cluster}", "maxBackupCount": 2}
    });
    let with = |path: &[&str], value: Value| {
        let mut body = good_job.clone();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        body.to_string()
    };
    let unknown_job = "00000000000000000000";
    let jobs = format!("{ORCH}/jobs");
    let backups = format!("{MESDB}/backups");
    let clusters = format!("{MESDB}/clusters");
    let cases: Vec<BadRequest> = vec![
        // jobs
        ("POST", jobs.clone(), Some("{".into()), 400, None),
        ("POST", jobs.clone(), Some("[1,2]".into()), 400, None),
        ("POST", jobs.clone(), Some("".into()), 400, None),
        (
            "POST",
            jobs.clone(),
            Some(with(&["schedul"], json!("0 * * * *"))),
            400,
            None,
        ),
        (
            "POST",
            jobs.clone(),
            Some(with(&["data", "maxBackupCnt"], json!(3))),
            400,
            None,
        ),
        (
            "POST",
            jobs.clone(),
            Some(with(&["description"], json!(long))),
            400,
            Some("description"),
        ),
        (
            "POST",
            jobs.clone(),
            Some(with(&["data", "description"], json!(long))),
            400,
            Some("data.description"),
        ),
        (
            "POST",
            jobs.clone(),
            Some(with(&["schedule"], json!("*/30 * * * *"))),
            400,
            Some("schedule"),
        ),
        (
            "POST",
            jobs.clone(),
            Some(with(&["data", "maxBackupCount"], json!(0))),
            400,
            Some("data.maxBackupCount"),
        ),
        (
            "POST",
            jobs.clone(),
            Some(with(&["data", "clusterId"], json!("../etc"))),
            400,
            Some("data.clusterId"),
        ),
        (
            "POST",
            jobs.clone(),
            Some(with(&["data", "clusterId"], json!("nosuchcluster"))),
            400,
            Some("data.clusterId"),
        ),
        ("GET", format!("{jobs}/not-an-id"), None, 400, None),
        ("GET", format!("{jobs}/{unknown_job}"), None, 404, None),
        ("DELETE", format!("{jobs}/not-an-id"), None, 400, None),
        ("DELETE", format!("{jobs}/{unknown_job}"), None, 404, None),
        ("POST", format!("{jobs}/not-an-id/run"), None, 400, None),
        ("POST", format!("{jobs}/{unknown_job}/run"), None, 404, None),
        (
            "GET",
            format!("{ORCH}/history?jobId=not-an-id"),
            None,
            400,
            None,
        ),
        // backups
        (
            "POST",
            backups.clone(),
            Some("{\"description\":".into()),
            400,
            None,
        ),
        (
            "POST",
            backups.clone(),
            Some(r#"{"description":"x","sourceClusterId":"steady","extra":1}"#.into()),
            400,
            None,
        ),
        (
            "POST",
            backups.clone(),
            Some(json!({"description": long, "sourceClusterId": "steady"}).to_string()),
            400,
            Some("description"),
        ),
        (
            "POST",
            backups.clone(),
            Some(r#"{"description":"{nope}","sourceClusterId":"steady"}"#.into()),
            400,
            Some("description"),
        ),
        (
            "POST",
            backups.clone(),
            Some(r#"{"description":"x","sourceClusterId":"nosuch"}"#.into()),
            404,
            None,
        ),
        (
            "POST",
            backups.clone(),
            Some(r#"{"description":"x","sourceClusterId":"a/b"}"#.into()),
            400,
            None,
        ),
        ("DELETE", format!("{backups}/not-an-id"), None, 400, None),
        (
            "DELETE",
            format!("{backups}/{unknown_job}"),
            None,
            404,
            None,
        ),
        ("GET", format!("{backups}?clusterId=a%2Fb"), None, 400, None),
        // clusters
        ("POST", clusters.clone(), Some("nope".into()), 400, None),
        (
            "POST",
            clusters.clone(),
            Some(
                json!({"id": "new1", "description": "d", "provider": "directory",
                       "path": "/tmp", "colour": "red"})
                .to_string(),
            ),
            400,
            None,
        ),
        (
            "POST",
            clusters.clone(),
            Some(
                json!({"id": "new1", "description": long, "provider": "directory",
                       "path": "/tmp"})
                .to_string(),
            ),
            400,
            Some("description"),
        ),
        (
            "POST",
            clusters.clone(),
            Some(
                json!({"id": "new1", "description": "d", "provider": "directory",
                       "path": "relative/dir"})
                .to_string(),
            ),
            400,
            Some("path"),
        ),
        (
            "POST",
            clusters.clone(),
            Some(
                json!({"id": "new1", "description": "d", "provider": "tape", "path": "/tmp"})
                    .to_string(),
            ),
            400,
            None,
        ),
        (
            "POST",
            clusters.clone(),
            Some(
                json!({"id": "steady", "description": "again", "provider": "directory",
                       "path": data})
                .to_string(),
            ),
            409,
            None,
        ),
        ("GET", format!("{clusters}/a%20b"), None, 400, None),
        ("GET", format!("{clusters}/nosuch"), None, 404, None),
        ("DELETE", format!("{clusters}/nosuch"), None, 404, None),
        ("DELETE", format!("{clusters}/steady"), None, 409, None),
        (
            "POST",
            format!("{clusters}/steady/lock"),
            Some(r#"{"operation":"expand-disk","ttlSeconds":0}"#.into()),
            400,
            Some("ttlSeconds"),
        ),
        (
            "POST",
            format!("{clusters}/steady/lock"),
            Some(r#"{"operation":"expand-disk","until":"later"}"#.into()),
            400,
            None,
        ),
        (
            "POST",
            format!("{clusters}/steady/lock"),
            Some(json!({ "operation": long }).to_string()),
            400,
            Some("operation"),
        ),
        (
            "POST",
            format!("{clusters}/nosuch/lock"),
            Some(r#"{"operation":"expand-disk"}"#.into()),
            404,
            None,
        ),
        ("DELETE", format!("{clusters}/nosuch/lock"), None, 404, None),
    ];

    for (method, path, body, status, field) in &cases {
        // WHEN the bad request is sent
        let raw = server.request(method, path, body.as_deref());
        // THEN it is answered with a problem of the right status, naming the field
        let label = format!("{method} {path} {body:?}");
        assert_eq!(raw.status, *status, "{label}: {raw:?}");
        assert!(
            raw.content_type.starts_with("application/problem+json"),
            "{label}: {raw:?}"
        );
        let problem = raw.json();
        assert_eq!(problem["status"], *status, "{label}");
        assert!(
            !str_of(&problem, "detail").is_empty() && !str_of(&problem, "title").is_empty(),
            "{label}: {problem}"
        );
        if let Some(field) = field {
            assert!(
                problem["fields"].get(*field).is_some(),
                "{label}: no field {field} in {problem}"
            );
        }
    }
    // A body that is not JSON at all, declared as something else.
    let raw = server.request_typed(
        "POST",
        &format!("{ORCH}/jobs"),
        Some("description=x"),
        "application/x-www-form-urlencoded",
    );
    assert!(raw.status == 400 || raw.status == 415, "form body: {raw:?}");
    assert!(raw.content_type.starts_with("application/problem+json"));
    // An oversized body (over the server's limit, but small enough for the socket's buffers,
    // so the client finishes sending before the server answers and hangs up).
    let huge = format!("{{\"description\":\"{}\"}}", "x".repeat(100 * 1024));
    let raw = server.request("POST", &format!("{ORCH}/jobs"), Some(&huge));
    assert!(raw.status == 400 || raw.status == 413, "huge body: {raw:?}");

    // THEN nothing changed
    assert_eq!(snapshot(&server), before);
    assert!(sandbox.backups_dir().join(&backup).exists());
    assert_eq!(sandbox.backups_on_disk(), vec![backup]);
}

#[test]
fn cli_failures_print_the_problem_and_every_field() {
    // GIVEN a server
    let sandbox = Sandbox::new();
    let server = start(&sandbox);

    // WHEN a job names a cluster that is not registered
    let out = server.cli(&words(
        "jobs create --description d --schedule '0 * * * *' scheduled-backup \
         --description {cluster} --max-backup-count 1 --cluster-id ghost",
    ));
    // THEN it exits 1 with the server's detail
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("ghost"), "{}", out.stderr);
    assert!(out.stdout.is_empty());

    // WHEN an unknown job is run THEN the detail says so
    let out = server.cli(&["jobs", "run", "-i", "00000000000000000000"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("00000000000000000000"),
        "{}",
        out.stderr
    );

    // WHEN a lock is released that nobody holds on a missing cluster THEN 404 → exit 1
    let out = server.cli(&["clusters", "unlock", "--cluster-id", "ghost"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());

    // WHEN a run fails because the cluster is locked THEN `jobs run` says so and exits 1
    let data = sandbox.cluster_dir("held", 1, 16);
    server.register_dir("held", &data);
    let job = server.create_job("held", 1);
    server.ok(&words(
        "clusters lock --cluster-id held --operation expand-disk",
    ));
    let out = server.cli(&["jobs", "run", "-i", &job]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("cluster_locked") && out.stderr.contains("expand-disk"),
        "{}",
        out.stderr
    );
    let shown = server.ok(&["clusters", "get", "--cluster-id", "held"]);
    assert!(shown.contains("held by expand-disk"), "{shown}");
}

#[test]
fn jobs_update_changes_a_job_in_place_and_keeps_its_backups() {
    // GIVEN a job that made a backup
    let sandbox = Sandbox::new();
    let (server, _data, job, backup) = start_with_backup(&sandbox, "upd", 1, 64, 3);
    // WHEN its schedule and description change, and the template in `jobs create`'s words
    let out = server.ok(&[
        "jobs",
        "update",
        "--id",
        &job,
        "--schedule",
        "30 4 * * 1-5",
        "--description",
        "Weekday orders",
        "scheduled-backup",
        "--description",
        "{cluster} weekday {datetime:RFC3339}",
        "--max-backup-count",
        "5",
    ]);
    // THEN it says so and shows the job as it is now
    assert!(out.contains(&format!("Updated job {job}")), "{out}");
    assert!(out.contains("30 4 * * 1-5"), "{out}");
    let shown = server.json(&["jobs", "get", "-i", &job])["job"].clone();
    assert_eq!(shown["schedule"], "30 4 * * 1-5");
    assert_eq!(shown["description"], "Weekday orders");
    assert_eq!(
        shown["data"]["description"],
        "{cluster} weekday {datetime:RFC3339}"
    );
    assert_eq!(shown["data"]["maxBackupCount"], 5);
    // AND the `orchestrate` form with `--label-template` works too, as JSON
    let updated = server.json(&[
        "orchestrate",
        "jobs",
        "update",
        "-i",
        &job,
        "--label-template",
        "{cluster} #{index}",
        "--max-backup-count",
        "4",
    ]);
    assert_eq!(updated["job"]["id"], job.as_str());
    assert_eq!(updated["job"]["data"]["description"], "{cluster} #{index}");
    assert_eq!(updated["job"]["data"]["maxBackupCount"], 4);
    assert_eq!(updated["job"]["schedule"], "30 4 * * 1-5");
    // AND its backup is still listed as its own
    let backups = server.json(&["backups", "list", "--job-id", &job]);
    assert_eq!(backups["backups"][0]["id"], backup.as_str());

    // WHEN the update is wrong THEN every problem is printed, exit 1, nothing changes
    let out = server.cli(&[
        "jobs",
        "update",
        "-i",
        &job,
        "--schedule",
        "*/5 * * * *",
        "scheduled-backup",
        "--cluster-id",
        "elsewhere",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("schedule"), "{}", out.stderr);
    assert!(out.stderr.contains("create a new job"), "{}", out.stderr);
    let after = server.json(&["jobs", "get", "-i", &job])["job"].clone();
    assert_eq!(after, updated["job"]);
    // WHEN nothing is given to change, or the two template flags disagree THEN usage errors
    let out = server.cli(&["jobs", "update", "-i", &job]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(out.stderr.contains("nothing to change"), "{}", out.stderr);
    let out = server.cli(&[
        "jobs",
        "update",
        "-i",
        &job,
        "--label-template",
        "a {cluster}",
        "scheduled-backup",
        "--description",
        "b {cluster}",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.describe());
}

// --- the CLI alone (no server) ---------------------------------------------------------------

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn offline_an_unreachable_server_is_named_with_what_to_do() {
    let out = backupctl(&closed_port_url(), &["jobs", "list"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("not reachable at http://127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("backupctl serve") && out.stderr.contains("--url"),
        "{}",
        out.stderr
    );
}

#[test]
fn offline_an_invalid_job_is_refused_with_every_problem_before_sending() {
    // GIVEN no server at all WHEN a job with several mistakes is created
    let out = backupctl(
        &closed_port_url(),
        &words(
            "jobs create --description d --schedule '*/30 * * * *' scheduled-backup \
             --description {nope} --max-backup-count 0 --cluster-id c1",
        ),
    );
    // THEN every problem is printed, one line per field, and nothing was sent
    assert_eq!(out.code, Some(1), "{}", out.describe());
    for field in [
        "  schedule: ",
        "  data.description: ",
        "  data.maxBackupCount: ",
    ] {
        assert!(
            out.stderr.contains(field),
            "{field} missing:\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("not reachable"), "{}", out.stderr);
}

#[test]
fn offline_bad_flags_are_usage_errors_that_say_what_to_write() {
    let url = closed_port_url();
    let register = "clusters register --cluster-id c --description d";
    let ebs = format!("{register} --provider aws-ebs --region eu-west-1");
    let cases = [
        (
            "clusters lock --cluster-id c --operation x --ttl 30".to_owned(),
            "30m",
        ),
        (format!("{register} --provider directory"), "--path"),
        (ebs.clone(), "--volume-id"),
        (format!("{ebs} --instance-tag novalue"), "KEY=VALUE"),
        (format!("{register} --provider nfs"), "--provider directory"),
        ("--url localhost:8080 jobs list".to_owned(), "http://"),
    ];
    for (line, hint) in &cases {
        let out = backupctl(&url, &words(line));
        assert_eq!(out.code, Some(2), "{}", out.describe());
        assert!(out.stderr.contains(hint), "{line}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn clusters_register_makes_the_path_absolute() {
    // GIVEN a server, and a cluster directory named relative to the current directory
    let sandbox = Sandbox::new();
    let server = start(&sandbox);
    sandbox.cluster_dir("rel", 1, 16);
    let out = std::process::Command::new(support::BIN)
        .current_dir(sandbox.path())
        .env("BACKUPCTL_URL", &server.url)
        .env(
            "BACKUPCTL_TOKEN",
            server.token.as_deref().unwrap_or_default(),
        )
        .args(words(
            "clusters register --cluster-id rel --description Relative --provider directory \
             --path clusters/rel",
        ))
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    // THEN the server stores the absolute path
    let cluster = server.json(&["clusters", "get", "--cluster-id", "rel"]);
    let path = str_of(&cluster["cluster"], "path").to_owned();
    assert!(Path::new(&path).is_absolute(), "{path}");
    assert_eq!(
        std::fs::canonicalize(&path).expect("the path exists"),
        std::fs::canonicalize(sandbox.path().join("clusters/rel")).expect("canonical")
    );
    assert_eq!(cluster["cluster"]["region"], "local");
    let table = server.ok(&["clusters", "list"]);
    for column in ["ID", "DESCRIPTION", "PROVIDER", "REGION", "LOCK"] {
        assert!(
            table.lines().next().unwrap_or_default().contains(column),
            "{table}"
        );
    }
    assert!(table.contains(&path), "{table}");
}

#[test]
fn clusters_register_records_the_server_version_and_node_count() {
    // GIVEN a server and a cluster directory
    let sandbox = Sandbox::new();
    let server = start(&sandbox);
    let data = sandbox.cluster_dir("versioned", 1, 16);
    let path = data.to_str().expect("UTF-8 path");
    let register = format!(
        "clusters register --cluster-id versioned --description Versioned --provider directory \
         --path '{path}'"
    );
    // WHEN it is registered with its server's version, tag and node count
    server.ok(&words(&format!(
        "{register} --server-version 23.10.1 --server-version-tag 23.10.1-jammy --node-count 3"
    )));
    // THEN `clusters get` shows them, as JSON and as text
    let cluster = server.json(&["clusters", "get", "--cluster-id", "versioned"]);
    assert_eq!(cluster["cluster"]["serverVersion"], "23.10.1", "{cluster}");
    assert_eq!(cluster["cluster"]["serverVersionTag"], "23.10.1-jammy");
    assert_eq!(cluster["cluster"]["nodeCount"], 3);
    let text = server.ok(&["clusters", "get", "--cluster-id", "versioned"]);
    assert!(text.contains("23.10.1, tag 23.10.1-jammy"), "{text}");
    // AND a node count out of range is refused before anything is sent, saying what to write
    for bad in ["0", "100"] {
        let line = format!(
            "clusters register --cluster-id other --description Other --provider directory \
             --path '{path}' --node-count {bad}"
        );
        let out = server.cli(&words(&line));
        assert_eq!(out.code, Some(2), "{}", out.describe());
        assert!(
            out.stderr.contains("--node-count") && out.stderr.contains("1 to 99 nodes, such as 3"),
            "{}",
            out.stderr
        );
    }
    let listed = server.json(&["clusters", "list"]);
    assert_eq!(
        listed["clusters"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

#[test]
fn lists_page_and_say_how_to_go_on() {
    // GIVEN three clusters
    let sandbox = Sandbox::new();
    let server = start(&sandbox);
    for id in ["p1", "p2", "p3"] {
        let data = sandbox.cluster_dir(id, 1, 16);
        server.register_dir(id, &data);
    }
    // WHEN the list asks for two
    let first = server.cli(&words("clusters list --limit 2"));
    assert!(first.success(), "{first:?}");
    // THEN the table holds two, and stderr says the command for the rest
    assert!(
        first.stdout.contains("p1") && first.stdout.contains("p2"),
        "{first:?}"
    );
    assert!(!first.stdout.contains("p3"), "{first:?}");
    let hint = first.stderr.trim();
    let rest = hint
        .strip_prefix("More follow: backupctl ")
        .unwrap_or_else(|| panic!("no hint: {first:?}"));
    let second = server.cli(&words(rest));
    assert!(second.success(), "{second:?}");
    assert!(
        second.stdout.contains("p3") && !second.stdout.contains("p1"),
        "{second:?}"
    );
    assert_eq!(second.stderr.trim(), "", "{second:?}");
    // AND with --json the page's nextToken is in the reply
    let json = server.json(&words("clusters list --limit 1"));
    assert_eq!(json["clusters"].as_array().map(Vec::len), Some(1), "{json}");
    assert!(json["nextToken"].is_string(), "{json}");
    // AND a limit out of range is refused, naming the flag's field
    let bad = server.cli(&words("clusters list --limit 0"));
    assert!(!bad.success() && bad.stderr.contains("limit"), "{bad:?}");

    // WHEN a filtered list of another project pages (three manual backups of q1, one of q2)
    for id in ["q1", "q2"] {
        let data = sandbox.cluster_dir(id, 1, 16);
        let path = data.to_str().expect("UTF-8 path");
        server.ok(&[
            "--project-id",
            "other",
            "clusters",
            "register",
            "--cluster-id",
            id,
            "--description",
            id,
            "--provider",
            "directory",
            "--path",
            path,
        ]);
    }
    for (cluster, description) in [
        ("q1", "mark-q1"),
        ("q2", "mark-q2"),
        ("q1", "mark-q1"),
        ("q1", "mark-q1"),
    ] {
        server.ok(&[
            "--project-id",
            "other",
            "backups",
            "create",
            "--source-cluster-id",
            cluster,
            "--description",
            description,
            "--wait",
            "60",
        ]);
    }
    let first = server.cli(&words(
        "--project-id other backups list --cluster-id q1 --limit 2",
    ));
    // THEN the filter and the page both reach the server
    assert!(first.success(), "{first:?}");
    assert_eq!(first.stdout.matches("mark-q1").count(), 2, "{first:?}");
    assert!(!first.stdout.contains("mark-q2"), "{first:?}");
    // AND the command printed for the rest keeps the project, the filter and the limit
    let rest = first
        .stderr
        .trim()
        .strip_prefix("More follow: backupctl ")
        .unwrap_or_else(|| panic!("no hint: {first:?}"))
        .to_owned();
    for part in ["--project-id other", "--cluster-id q1", "--limit 2"] {
        assert!(rest.contains(part), "{rest}");
    }
    let second = server.cli(&words(&rest));
    assert!(second.success(), "{second:?}");
    assert_eq!(second.stdout.matches("mark-q1").count(), 1, "{second:?}");
    assert_eq!(second.stderr.trim(), "", "{second:?}");
}

// --- esc mesdb lines ------------------------------------------------------------------------

#[test]
fn esc_mesdb_backup_lines_work_with_esc_replaced() {
    // GIVEN a server with a directory cluster
    let sandbox = Sandbox::new();
    let (server, _data) = start_with_cluster(&sandbox, "orders", 2, 64, "orders");
    // WHEN `esc mesdb backups create` is run with `esc` replaced, with esc's flags
    let created = server.json(&words(
        "mesdb backups create --organization-id default --project-id default \
         --source-cluster-id orders --description manual-one",
    ));
    let id = str_of(&created, "id").to_owned();
    // THEN `mesdb backups list` and `mesdb backups get --backup-id` show it
    let listed = server.json(&words("mesdb backups list --organization-id default"));
    let ids: Vec<&str> = listed["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()], "{listed}");
    let got = wait_until(RUN_TIMEOUT, "the manual backup to end", || {
        let got = server.json(&["mesdb", "backups", "get", "--backup-id", &id]);
        (got["backup"]["status"] != "creating").then_some(got)
    });
    assert_eq!(got["backup"]["id"], id.as_str(), "{got}");
    assert_eq!(got["backup"]["status"], "available", "{got}");
    assert_eq!(got["backup"]["description"], "manual-one", "{got}");
    let table = server.ok(&["mesdb", "backups", "get", "--backup-id", &id]);
    assert!(table.contains(&id) && table.contains("(manual)"), "{table}");
    // AND the same backup under our own names
    let ours = server.json(&["backups", "get", "-i", &id]);
    assert_eq!(ours, got);
    // AND `mesdb backups delete --backup-id` deletes it
    server.ok(&["mesdb", "backups", "delete", "--backup-id", &id]);
    let gone = server.json(&["backups", "get", "--id", &id]);
    assert_ne!(gone["backup"]["status"], "available", "{gone}");
    // AND a backup that does not exist is a 404 named on stderr
    let missing = server.cli(&words("mesdb backups get --backup-id no-such-backup"));
    assert_eq!(missing.code, Some(1), "{}", missing.describe());
    assert!(
        missing.stderr.contains("no-such-backup"),
        "{}",
        missing.stderr
    );
}

/// The names in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn esc_mesdb_clusters_create_restores_a_backup_into_a_new_cluster() {
    // GIVEN a server with a backup of a directory cluster
    let sandbox = Sandbox::new();
    let (server, data, _job, backup) = start_with_backup(&sandbox, "orders", 3, 4096, 2);
    let target = sandbox.path().join("restored");
    // WHEN esc's restore line is run with `esc` replaced (esc's cloud flags included, which
    // change nothing) and a path to restore to
    let out = server.cli(&words(&format!(
        "mesdb clusters create --organization-id default --project-id default \
         --description restored --disk-size-gb 10 --disk-type gp3 --instance-type F1 \
         --network-id n1 --projection-level off --server-version 23.10 \
         --topology single-node --source-backup-id {backup} --cluster-id orders-restored \
         --path '{}'",
        target.display()
    )));
    // THEN it says the backup was restored, and the new data directory holds the same files
    assert!(out.success(), "{}", out.describe());
    assert!(
        out.stdout.contains(&format!(
            "Restored backup {backup} into cluster orders-restored"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(tree_contents(&target), tree_contents(&data));
    let left = listing(sandbox.path());
    assert!(
        left.contains(&"restored".to_owned()) && !left.iter().any(|n| n.starts_with('.')),
        "no sibling left behind: {left:?}"
    );
    // AND the new cluster is available, names its backup, and its lock is free
    let cluster = server.json(&["clusters", "get", "--cluster-id", "orders-restored"]);
    let cluster = &cluster["cluster"];
    assert_eq!(cluster["status"], "available", "{cluster}");
    assert_eq!(cluster["sourceBackupId"], backup.as_str(), "{cluster}");
    assert_eq!(cluster["provider"], "directory", "{cluster}");
    let canonical = std::fs::canonicalize(&target).unwrap();
    assert_eq!(cluster["path"], canonical.to_str().unwrap(), "{cluster}");
    assert!(cluster["lock"].is_null(), "{cluster}");
    let shown = server.ok(&["clusters", "get", "--cluster-id", "orders-restored"]);
    assert!(
        shown.contains("available") && shown.contains(&backup),
        "{shown}"
    );
    // AND it can be backed up like any cluster
    let manual = server.json(&words(
        "mesdb backups create --source-cluster-id orders-restored --description again",
    ));
    assert!(manual["id"].is_string(), "{manual}");
    // AND without a backup to restore, `clusters create` says how to register a cluster
    let out = server.cli(&words("clusters create --description fresh"));
    assert_eq!(out.code, Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("--source-backup-id") && out.stderr.contains("clusters register"),
        "{}",
        out.stderr
    );
}

#[test]
fn backups_restore_is_the_same_and_refused_restores_change_nothing() {
    // GIVEN a server with a backup, and a deleted backup
    let sandbox = Sandbox::new();
    let (server, data, _job, backup) = start_with_backup(&sandbox, "orders", 2, 1024, 2);
    let gone = server.json(&words(
        "mesdb backups create --source-cluster-id orders --description doomed",
    ));
    let gone = str_of(&gone, "id").to_owned();
    wait_until(RUN_TIMEOUT, "the manual backup to finish", || {
        (server.backup(&gone)["status"] == "available").then_some(())
    });
    server.ok(&["backups", "delete", "--id", &gone]);
    let busy = sandbox.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("precious"), b"keep").unwrap();
    let before = snapshot(&server);
    let places = listing(sandbox.path());
    let body = |id: &str, backup: &str, path: &Path| {
        json!({"id": id, "description": "restored", "sourceBackupId": backup,
               "path": path.to_str().unwrap()})
        .to_string()
    };
    let post = |b: String| server.request("POST", &format!("{MESDB}/clusters"), Some(&b));
    // WHEN a restore names an existing cluster id THEN 409, and no directory is made
    let answer = post(body("orders", &backup, &sandbox.path().join("new")));
    assert_eq!(answer.status, 409, "{answer:?}");
    // WHEN the backup is not available THEN 409
    let answer = post(body("r1", &gone, &sandbox.path().join("new")));
    assert_eq!(answer.status, 409, "{answer:?}");
    assert!(answer.body.contains(&gone), "{answer:?}");
    // WHEN the backup does not exist THEN 404
    let answer = post(body(
        "r1",
        "c196ogto0aeqohe3ommq",
        &sandbox.path().join("new"),
    ));
    assert_eq!(answer.status, 404, "{answer:?}");
    // WHEN the target is not empty, inside the data directory, inside the backup's own
    // cluster, or missing THEN 400 naming `path` with its code
    for (path, code) in [
        (busy.clone(), "path_not_empty"),
        (sandbox.data_dir().join("restored"), "path_not_allowed"),
        (data.clone(), "path_not_empty"),
        (data.join("restored-inside"), "path_not_allowed"),
    ] {
        let answer = post(body("r1", &backup, &path));
        assert_eq!(answer.status, 400, "{path:?}: {answer:?}");
        let problem = answer.json();
        assert_eq!(
            problem["problems"]["path"][0]["code"], code,
            "{path:?}: {problem}"
        );
    }
    let answer =
        post(json!({"id": "r1", "description": "restored", "sourceBackupId": backup}).to_string());
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.json()["fields"]["path"].is_string(), "{answer:?}");
    // AND nothing changed: no cluster, backup, run or directory was made
    assert_eq!(snapshot(&server), before);
    assert_eq!(listing(sandbox.path()), places);
    assert_eq!(listing(&busy), ["precious"]);
    // WHEN `backups restore` restores the backup THEN it is a restore like any other
    let target = sandbox.path().join("again");
    let out = server.cli(&words(&format!(
        "backups restore --id {backup} --cluster-id orders-again --description again --path '{}'",
        target.display()
    )));
    assert!(out.success(), "{}", out.describe());
    assert_eq!(tree_contents(&target), tree_contents(&data));
    let listed = server.ok(&["clusters", "list"]);
    assert!(listed.contains("STATUS"), "{listed}");
    let row = listed
        .lines()
        .find(|l| l.starts_with("orders-again"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("available"), "{listed}");
}

// --- verify (SPEC §14) ------------------------------------------------------------------------

/// Flips one bit of the byte at `offset` of `path` in place, behind the server's back.
fn flip_byte(path: &Path, offset: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open the copy");
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.read_exact(&mut byte).expect("read");
    byte[0] ^= 0x01;
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.write_all(&byte).expect("write");
}

#[test]
fn backups_verify_says_ok_then_names_a_flipped_byte_and_backups_get_shows_it() {
    // GIVEN a server with one backup of a cluster
    let sandbox = Sandbox::new();
    let (server, data, _job, backup) = start_with_backup(&sandbox, "orders", 3, 4096, 2);
    // WHEN it is verified THEN it is ok, exit 0, saying when it was checked
    let out = server.ok(&["backups", "verify", "--id", &backup]);
    assert!(
        out.contains(&format!("Backup {backup}: ok (checked ")),
        "{out}"
    );
    // AND the esc-style spelling says the same, and `--json` prints the API's answer
    let out = server.ok(&["mesdb", "backups", "verify", "--backup-id", &backup]);
    assert!(out.contains(": ok"), "{out}");
    let answer = server.json(&["backups", "verify", "--id", &backup]);
    assert_eq!(answer["backupId"], backup.as_str());
    assert_eq!(answer["status"], "ok");
    assert_eq!(answer["problems"], json!([]));
    let manifest_before =
        std::fs::read(sandbox.backups_dir().join(&backup).join("manifest.json")).expect("read");

    // WHEN one byte of one file of its copy flips on disk
    let damaged = sandbox
        .backups_dir()
        .join(&backup)
        .join("data/chunks/chunk-0001");
    flip_byte(&damaged, 2000);
    // THEN verify exits 1, naming the file and what is wrong with it
    let out = server.cli(&["backups", "verify", "--id", &backup]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stdout
            .contains(&format!("Backup {backup}: failed (checked ")),
        "{}",
        out.describe()
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("chunks/chunk-0001: "))
        .unwrap_or_else(|| panic!("the file is not named:\n{}", out.describe()));
    assert!(line.contains("BLAKE3 checksum"), "{line}");
    assert!(!out.stdout.contains("chunk-0000"), "{}", out.describe());
    // AND with `--json` too, the answer being the API's
    let out = server.cli(&["--json", "backups", "verify", "--id", &backup]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    let answer: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(answer["status"], "failed");
    assert!(answer["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .any(|p| p["path"] == "chunks/chunk-0001"));
    // AND `backups get` shows the stored result, in JSON and as text
    let stored = server.json(&["backups", "get", "--id", &backup]);
    assert_eq!(stored["backup"]["verification"], {
        let mut v = answer.clone();
        v.as_object_mut().expect("object").remove("backupId");
        v
    });
    assert_eq!(stored["backup"]["verifiedAt"], answer["checkedAt"]);
    assert_eq!(stored["backup"]["status"], "available");
    let text = server.ok(&["backups", "get", "--id", &backup]);
    assert!(
        text.lines().next().unwrap_or_default().contains("VERIFIED"),
        "{text}"
    );
    assert!(text.contains("failed 20"), "{text}");
    assert!(text.contains("chunks/chunk-0001: "), "{text}");
    let list = server.ok(&["backups", "list"]);
    assert!(list.contains("its last verify found"), "{list}");
    // AND verify changed nothing of the backup: its manifest, and its other files
    assert_eq!(
        std::fs::read(sandbox.backups_dir().join(&backup).join("manifest.json")).expect("read"),
        manifest_before
    );
    assert_eq!(
        std::fs::read(
            sandbox
                .backups_dir()
                .join(&backup)
                .join("data/chunks/chunk-0000")
        )
        .expect("read"),
        std::fs::read(data.join("chunks/chunk-0000")).expect("read")
    );
}
