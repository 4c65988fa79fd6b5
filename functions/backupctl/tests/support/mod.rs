//! The harness of the end-to-end tests: a real `backupctl serve` on 127.0.0.1 port 0 in its
//! own temporary data directory, driven by the real `backupctl` binary and by raw HTTP.
//!
//! Every wait is bounded: a server that does not start, a command that hangs or a run that
//! never finishes fails the test with what was seen (and the server's log) instead of hanging
//! the suite. Servers are killed when dropped.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_backupctl");

/// The org/project scope every test uses (the CLI's defaults).
pub const ORCH: &str = "/orchestrate/v1/organizations/default/projects/default";
pub const MESDB: &str = "/mesdb/v1/organizations/default/projects/default";

/// How long a server may take to print its address (a loaded 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one CLI invocation may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// A temporary directory for one test: the server's data directory and cluster directories.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("backupctl-e2e-")
                .tempdir()
                .expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The server's `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// `<data-dir>/backups`.
    pub fn backups_dir(&self) -> PathBuf {
        self.data_dir().join("backups")
    }

    /// A cluster data directory with `files` files of `size` bytes each (distinct contents,
    /// so checksums tell them apart), plus a nested directory.
    pub fn cluster_dir(&self, name: &str, files: usize, size: usize) -> PathBuf {
        let dir = self.path().join("clusters").join(name);
        fs::create_dir_all(dir.join("chunks")).expect("cluster dir");
        fs::write(dir.join("README"), format!("cluster {name}\n")).expect("write");
        for i in 0..files {
            let mut bytes = vec![0u8; size];
            // A few distinct bytes per file are enough to give each its own checksum.
            let stamp = format!("{name}/{i}");
            let n = stamp.len().min(size);
            bytes[..n].copy_from_slice(&stamp.as_bytes()[..n]);
            fs::write(dir.join("chunks").join(format!("chunk-{i:04}")), bytes).expect("write");
        }
        dir
    }

    /// The ids of the complete backups on disk (directories named like an id).
    pub fn backups_on_disk(&self) -> Vec<String> {
        let mut ids: Vec<String> = match fs::read_dir(self.backups_dir()) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(_) => Vec::new(),
        };
        ids.sort();
        ids
    }

    /// Every entry of the backups directory, hidden ones too.
    pub fn backups_dir_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.backups_dir())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Checks a backup on disk against its manifest, file by file, by size and BLAKE3, and
    /// against the source directory it copied. Returns the manifest.
    pub fn verify_backup(&self, backup_id: &str, source: &Path) -> Value {
        let dir = self.backups_dir().join(backup_id);
        let text = fs::read_to_string(dir.join("manifest.json"))
            .unwrap_or_else(|e| panic!("manifest of {backup_id}: {e}"));
        let manifest: Value = serde_json::from_str(&text).expect("manifest JSON");
        assert_eq!(manifest["backupId"], backup_id, "{manifest}");
        assert_eq!(manifest["hash"], "blake3", "{manifest}");
        // Manifest version 2: one entry per file, directory, link or skipped entry.
        let files: Vec<&Value> = manifest["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["type"] == "file")
            .collect();
        let mut listed = Vec::new();
        for file in files {
            let rel = file["path"].as_str().expect("path");
            let copy = fs::read(dir.join("data").join(rel))
                .unwrap_or_else(|e| panic!("{backup_id}/data/{rel}: {e}"));
            assert_eq!(
                copy.len() as u64,
                file["size"].as_u64().expect("size"),
                "{rel}"
            );
            assert_eq!(
                blake3::hash(&copy).to_hex().as_str(),
                file["blake3"],
                "{rel} checksum"
            );
            let original = fs::read(source.join(rel)).expect("source file");
            assert!(original == copy, "{rel} differs from the source");
            listed.push(rel.to_owned());
        }
        let mut in_source = Vec::new();
        list_files(source, "", &mut in_source);
        listed.sort();
        in_source.sort();
        assert_eq!(listed, in_source, "the manifest lists every source file");
        manifest
    }
}

fn list_files(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("list") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type().expect("type");
        if kind.is_dir() {
            list_files(&entry.path(), &rel, out);
        } else if kind.is_file() {
            out.push(rel);
        }
    }
}

/// Splits a command line into its arguments as a POSIX shell would, for the subset tests
/// write: words separated by spaces, and a word holding spaces wholly in single quotes
/// (`--description 'My Hourly Backup'`), so a test reads like the line an operator types.
pub fn words(line: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let (word, after) = match rest.strip_prefix('\'') {
            Some(quoted) => quoted
                .split_once('\'')
                .unwrap_or_else(|| panic!("unclosed quote in {line}")),
            None => rest.split_once(char::is_whitespace).unwrap_or((rest, "")),
        };
        words.push(word);
        rest = after.trim_start();
    }
    words
}

/// The permission bits of `path` itself (a link is not followed), such as `0o600`.
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// What one `backupctl` invocation did.
#[derive(Debug)]
pub struct CliOutput {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub fn describe(&self) -> String {
        format!(
            "backupctl {:?} exited {:?}\n--- stdout\n{}--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `backupctl` with `args` against `url`, bounded by [`CLI_TIMEOUT`], with no token
/// (unless `args` has one): the environment's `BACKUPCTL_TOKEN` and `BACKUPCTL_DATA_DIR`
/// are removed.
pub fn backupctl(url: &str, args: &[&str]) -> CliOutput {
    backupctl_with_token(url, None, args)
}

/// [`backupctl`] with `BACKUPCTL_TOKEN` set to `token`.
pub fn backupctl_with_token(url: &str, token: Option<&str>, args: &[&str]) -> CliOutput {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("BACKUPCTL_URL", url)
        .env_remove("BACKUPCTL_TOKEN")
        .env_remove("BACKUPCTL_DATA_DIR");
    if let Some(token) = token {
        command.env("BACKUPCTL_TOKEN", token);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backupctl");
    let stdout = reader(child.stdout.take().expect("stdout"));
    let stderr = reader(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("backupctl {args:?} did not finish in {CLI_TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    CliOutput {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn reader<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Raw {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// A running `backupctl serve`, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// The API token, from the `sign in: http://ADDR/#token=…` line (`None` with `--auth none`).
    pub token: Option<String>,
    pub data_dir: PathBuf,
    log: PathBuf,
    agent: ureq::Agent,
}

impl Server {
    /// Starts `backupctl serve --listen 127.0.0.1:0 --data-dir <data_dir>` with `env`.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_with(data_dir, &[], env)
    }

    /// [`Server::start`] with more `serve` arguments.
    pub fn start_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        fs::create_dir_all(data_dir).expect("data dir");
        // The log sits next to the data directory, numbered so a restart keeps the first.
        let parent = data_dir.parent().unwrap_or(data_dir);
        let mut n = 0;
        let log = loop {
            let candidate = parent.join(format!("server-{n}.log"));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        let log_file = fs::File::create(&log).expect("log file");
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("BACKUPCTL_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn backupctl serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading after the first line so the pipe never fills up.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        // The next line the server prints; a server that prints nothing more in time is
        // stopped, and the test fails with its log.
        let mut next_line = |what: &str| -> String {
            let left = deadline.saturating_duration_since(Instant::now());
            rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "backupctl serve printed no {what} within {START_TIMEOUT:?}; log:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            })
        };
        let url = loop {
            let line = next_line("URL");
            if let Some(at) = line.find("http://") {
                break line[at..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_owned();
            }
        };
        // The second line is the sign-in URL, unless the server runs with `--auth none`.
        let auth_none = args.windows(2).any(|w| w == ["--auth", "none"]);
        let mut token = None;
        if !auth_none {
            let line = next_line("sign-in URL");
            token = line
                .strip_prefix("sign in: ")
                .and_then(|rest| rest.split_once("#token="))
                .map(|(_, token)| token.trim().to_owned());
            assert!(token.is_some(), "no sign-in line after the address: {line}");
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Server {
            child: Some(child),
            url,
            token,
            data_dir: data_dir.to_path_buf(),
            log,
            agent,
        }
    }

    /// Sends SIGTERM, as a service manager stopping it would, and waits up to `timeout`
    /// for the process to exit: its exit status and how long it took, or `None` (then it
    /// is killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let mut child = self.child.take()?;
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some((status, started.elapsed()));
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    // --- the CLI ---

    /// Runs `backupctl` against this server with its token (`BACKUPCTL_TOKEN`).
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        backupctl_with_token(&self.url, self.token.as_deref(), args)
    }

    /// The `Authorization` header value of this server's token.
    pub fn bearer(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.success(), "{}", out.describe());
        out.stdout
    }

    /// Runs a command with `--json` that must succeed; returns its JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("backupctl {args:?} printed no JSON ({e}):\n{out}"))
    }

    /// Registers a directory cluster.
    pub fn register_dir(&self, id: &str, path: &Path) {
        let path = path.to_str().expect("UTF-8 path");
        self.ok(&words(&format!(
            "clusters register --cluster-id {id} --description 'Cluster {id}' \
             --provider directory --path '{path}'"
        )));
    }

    /// Creates a daily job (so the scheduler stays out of the way) and returns its id.
    pub fn create_job(&self, cluster: &str, keep: u32) -> String {
        let template = "{cluster} #{index} {datetime:RFC3339}";
        let created = self.json(&words(&format!(
            "jobs create --description 'Job of {cluster}' --schedule '0 3 * * *' \
             scheduled-backup --description '{template}' --max-backup-count {keep} \
             --cluster-id {cluster}"
        )));
        created["id"].as_str().expect("job id").to_owned()
    }

    /// `jobs run` through the CLI; returns the history id.
    pub fn run_job(&self, job: &str) -> String {
        let out = self.json(&["jobs", "run", "-i", job]);
        out["historyId"].as_str().expect("historyId").to_owned()
    }

    pub fn history(&self, job: Option<&str>) -> Vec<Value> {
        let mut args = vec!["history", "list"];
        if let Some(job) = job {
            args.extend(["--job-id", job]);
        }
        let list = self.json(&args);
        list["items"].as_array().expect("items").clone()
    }

    pub fn history_item(&self, history_id: &str) -> Option<Value> {
        let raw = self.request("GET", &format!("{ORCH}/history"), None);
        raw.json()["items"]
            .as_array()?
            .iter()
            .find(|i| i["id"] == history_id)
            .cloned()
    }

    /// Waits until the run is no longer `running`; returns its history item.
    pub fn wait_run(&self, history_id: &str, timeout: Duration) -> Value {
        wait_until(timeout, &format!("run {history_id} to finish"), || {
            self.history_item(history_id)
                .filter(|item| item["status"] != "running")
        })
    }

    pub fn backups(&self, query: &str) -> Vec<Value> {
        let raw = self.request("GET", &format!("{MESDB}/backups{query}"), None);
        assert_eq!(raw.status, 200, "{raw:?}");
        raw.json()["backups"].as_array().expect("backups").clone()
    }

    pub fn backup(&self, id: &str) -> Value {
        self.backups("")
            .into_iter()
            .find(|b| b["id"] == id)
            .unwrap_or_else(|| panic!("no backup {id}"))
    }

    // --- raw HTTP ---

    /// Sends `body` (as `application/json`) and returns the answer, whatever its status.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Raw {
        self.request_typed(method, path, body, "application/json")
    }

    pub fn request_typed(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        content_type: &str,
    ) -> Raw {
        let url = format!("{}{path}", self.url);
        // Every request carries the server's token, as the CLI's do.
        let auth = self.bearer().unwrap_or_default();
        let with_body = |request: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            let request = request.header("authorization", &auth);
            match body {
                Some(body) => request.header("content-type", content_type).send(body),
                None => request.send_empty(),
            }
        };
        let result = match method {
            "GET" => self.agent.get(&url).header("authorization", &auth).call(),
            "DELETE" => self
                .agent
                .delete(&url)
                .header("authorization", &auth)
                .call(),
            "POST" => with_body(self.agent.post(&url)),
            "PUT" => with_body(self.agent.put(&url)),
            _ => panic!("unsupported method {method}"),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {path} body: {e}"));
        Raw {
            status: response.status().as_u16(),
            content_type,
            body,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- last lines of the server log {}:\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// Polls `check` every 20 ms until it answers `Some`, for at most `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("gave up after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file below `dir` (relative path → content), through `std::fs`.
pub fn tree_contents(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}
