//! A small load benchmark of the local server (`scripts/bench-api.sh` builds and runs it).
//!
//! It starts the release `backupctl serve` on 127.0.0.1 port 0 in a temporary data directory,
//! then measures, on loopback only and with bounded loops:
//! 1. creating `BENCH_JOBS` jobs (default 1,000), one request at a time;
//! 2. `GET …/jobs` (the whole list, every job with its next runs) with `BENCH_CLIENTS`
//!    concurrent clients (default 4) for `BENCH_REQUESTS` requests in all (default 400), and
//!    the same for `GET …/jobs/{id}`;
//! 3. `backupctl jobs run --wait` until it exits with `succeeded`, the whole process, for a
//!    cluster directory of `BENCH_CLUSTER_MB` MB (default 100), `BENCH_RUNS` times (default
//!    3): the first run copies the tree, the later ones link every unchanged file.
//!
//! Every loop is bounded by a count and by `BENCH_MAX_SECONDS` (default 120) per phase.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

const ORCH: &str = "/orchestrate/v1/organizations/default/projects/default";
const MESDB: &str = "/mesdb/v1/organizations/default/projects/default";

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{name}={v} is not a whole number")),
        Err(_) => Ok(default),
    }
}

/// Kills the server when the benchmark ends, however it ends.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP client that sends the server's API token (SPEC §12) with every request.
fn agent(token: &str) -> anyhow::Result<ureq::Agent> {
    let authorization = ureq::http::HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token is not a header value")?;
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .middleware(
            move |mut request: ureq::http::Request<ureq::SendBody>,
                  next: ureq::middleware::MiddlewareNext| {
                request
                    .headers_mut()
                    .insert(ureq::http::header::AUTHORIZATION, authorization.clone());
                next.handle(request)
            },
        )
        .build()
        .into())
}

fn check(response: ureq::http::Response<ureq::Body>, what: &str) -> anyhow::Result<Value> {
    let body = read_ok(response, what)?;
    Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The whole body of a 2xx answer, else an error with it. The measured loops read every byte
/// but parse nothing: parsing 445 KB of JSON in the client took longer than the server took
/// to answer, and the figure is the server's.
fn read_ok(mut response: ureq::http::Response<ureq::Body>, what: &str) -> anyhow::Result<String> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()?;
    if !(200..300).contains(&status) {
        bail!("{what} answered {status}: {body}");
    }
    Ok(body)
}

/// The server under measure, for the sequential calls of `main`: each answer is [`check`]ed.
struct Server<'a> {
    agent: &'a ureq::Agent,
    url: &'a str,
}

impl Server<'_> {
    fn get(&self, path: &str, what: &str) -> anyhow::Result<Value> {
        check(self.agent.get(format!("{}{path}", self.url)).call()?, what)
    }

    /// POSTs `body` as JSON, or nothing.
    fn post(&self, path: &str, body: Option<Value>, what: &str) -> anyhow::Result<Value> {
        let request = self.agent.post(format!("{}{path}", self.url));
        let response = match body {
            Some(body) => request.send_json(body)?,
            None => request.send_empty()?,
        };
        check(response, what)
    }
}

fn backupctl_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("BACKUPCTL_BIN") {
        return Ok(PathBuf::from(path));
    }
    // target/<profile>/examples/bench_api → target/<profile>/backupctl
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot find the target directory from {}", exe.display()))?;
    let bin = profile_dir.join("backupctl");
    if !bin.is_file() {
        bail!(
            "{} does not exist; build it first (`cargo build --release -p backupctl`) or set \
             BACKUPCTL_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// Starts the server; returns it, its URL and its API token (from the `sign in:` line).
fn start_server(bin: &Path, data_dir: &Path) -> anyhow::Result<(ServerProcess, String, String)> {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let server = ServerProcess(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut url = None;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .context("the server printed no URL and sign-in line within 30 s")?;
        if let Some((_, token)) = line
            .strip_prefix("sign in: ")
            .and_then(|rest| rest.split_once("#token="))
        {
            let url = url.ok_or_else(|| anyhow!("the sign-in line came before the address"))?;
            return Ok((server, url, token.trim().to_owned()));
        }
        if let Some(at) = line.find("http://") {
            url = Some(
                line[at..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_owned(),
            );
        }
    }
}

/// `count` GETs of `path` spread over `clients` threads; returns requests per second.
fn measure_gets(
    url: &str,
    token: &str,
    path: &str,
    clients: usize,
    count: usize,
    max: Duration,
) -> anyhow::Result<(f64, usize, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(clients + 1));
    let deadline_after = max;
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (next, done, barrier) = (next.clone(), done.clone(), barrier.clone());
            let target = format!("{url}{path}");
            let token = token.to_owned();
            std::thread::spawn(move || -> anyhow::Result<()> {
                let agent = agent(&token)?;
                barrier.wait();
                let started = Instant::now();
                while next.fetch_add(1, Ordering::Relaxed) < count
                    && started.elapsed() < deadline_after
                {
                    read_ok(agent.get(&target).call()?, "GET")?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow!("a client thread panicked"))??;
    }
    let elapsed = started.elapsed();
    let done = done.load(Ordering::Relaxed);
    Ok((done as f64 / elapsed.as_secs_f64(), done, elapsed))
}

fn main() -> anyhow::Result<()> {
    let jobs = env_number("BENCH_JOBS", 1000)?;
    let clients = env_number("BENCH_CLIENTS", 4)?.max(1);
    let requests = env_number("BENCH_REQUESTS", 400)?;
    let cluster_mb = env_number("BENCH_CLUSTER_MB", 100)?;
    let runs = env_number("BENCH_RUNS", 3)?.max(1);
    let max = Duration::from_secs(env_number("BENCH_MAX_SECONDS", 120)? as u64);

    let bin = backupctl_binary()?;
    let work = tempfile::Builder::new()
        .prefix("backupctl-bench-")
        .tempdir()?;
    let (server, url, token) = start_server(&bin, &work.path().join("data"))?;
    println!("server: {} at {url}", bin.display());
    let agent = agent(&token)?;
    let api = Server {
        agent: &agent,
        url: &url,
    };

    // A small cluster for the many jobs, and a big one for the backup timing.
    let small = work.path().join("small");
    fs::create_dir_all(&small)?;
    fs::write(small.join("data"), b"small")?;
    let big = work.path().join("big");
    fs::create_dir_all(&big)?;
    let file_mb = 4;
    let files = cluster_mb.div_ceil(file_mb);
    for i in 0..files {
        let mut bytes = vec![0u8; file_mb * 1024 * 1024];
        for (j, b) in bytes.iter_mut().enumerate().step_by(4096) {
            *b = (i + j / 4096) as u8;
        }
        fs::write(big.join(format!("segment-{i:04}")), bytes)?;
    }
    for (id, path) in [("small", &small), ("big", &big)] {
        api.post(
            &format!("{MESDB}/clusters"),
            Some(json!({
                "id": id, "description": id, "provider": "directory",
                "path": path.to_string_lossy()
            })),
            "register cluster",
        )?;
    }

    // 1. Create the jobs.
    let started = Instant::now();
    let mut first_job = String::new();
    for i in 0..jobs {
        if started.elapsed() > max {
            bail!("creating {jobs} jobs took longer than {max:?} (made {i})");
        }
        let created = api.post(
            &format!("{ORCH}/jobs"),
            Some(json!({
                "description": format!("Bench job {i}"),
                "schedule": format!("{} {} * * *", i % 60, (i / 60) % 24),
                "type": "ScheduledBackup",
                "data": {"clusterId": "small", "description": "{cluster} {index}",
                         "maxBackupCount": 3}
            })),
            "create job",
        )?;
        if i == 0 {
            first_job = created["id"].as_str().unwrap_or_default().to_owned();
        }
    }
    let elapsed = started.elapsed();
    println!(
        "create {jobs} jobs (1 client): {:.2} s, {:.0} requests/s",
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64()
    );
    let listed = api.get(&format!("{ORCH}/jobs"), "list")?;
    let n = listed["jobs"].as_array().map_or(0, Vec::len);
    let size = serde_json::to_vec(&listed)?.len();
    println!("GET …/jobs answers {n} jobs in {} KB", size / 1024);

    // 2. Read throughput.
    for (label, path) in [
        ("GET …/jobs (all jobs)", format!("{ORCH}/jobs")),
        ("GET …/jobs/{id}", format!("{ORCH}/jobs/{first_job}")),
    ] {
        let (rps, done, elapsed) = measure_gets(&url, &token, &path, clients, requests, max)?;
        println!(
            "{label}: {done} requests, {clients} clients, {:.2} s: {rps:.1} requests/s",
            elapsed.as_secs_f64()
        );
    }

    // 3. Run-to-succeeded latency for the big cluster.
    let job = api.post(
        &format!("{ORCH}/jobs"),
        Some(json!({
            "description": "Bench big", "schedule": "0 3 * * *", "type": "ScheduledBackup",
            "data": {"clusterId": "big", "description": "{cluster} {index}",
                     "maxBackupCount": 1}
        })),
        "create big job",
    )?;
    let job = job["id"].as_str().unwrap_or_default().to_owned();
    // As an operator sees it: the whole `backupctl jobs run` process, which the server
    // answers the moment the run ends (`?wait=`), timed from its start to its exit.
    let mut timings = Vec::new();
    let wait = max.as_secs().max(1).to_string();
    for _ in 0..runs {
        let started = Instant::now();
        let out = Command::new(&bin)
            .args(["jobs", "run", "--id", &job, "--wait", &wait])
            .env("BACKUPCTL_URL", &url)
            .env("BACKUPCTL_TOKEN", &token)
            .stdin(Stdio::null())
            .output()
            .context("running backupctl jobs run")?;
        let elapsed = started.elapsed();
        let said = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !said.contains("succeeded") {
            bail!(
                "the run did not succeed: {said}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        timings.push(elapsed);
    }
    let shown: Vec<String> = timings
        .iter()
        .map(|t| format!("{:.2} s", t.as_secs_f64()))
        .collect();
    let best = timings.iter().min().copied().unwrap_or_default();
    println!(
        "jobs run → succeeded, {} MB in {files} files: {} (best {:.2} s, {:.0} MB/s)",
        files * file_mb,
        shown.join(", "),
        best.as_secs_f64(),
        (files * file_mb) as f64 / best.as_secs_f64()
    );
    drop(server);
    Ok(())
}
