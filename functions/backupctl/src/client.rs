//! The commands that talk to the HTTP API at `--url` (SPEC §7, §8).
//!
//! With `--json` a command prints the API's JSON body exactly as the server sent it
//! (`{"jobs":[…]}`, `{"items":[…]}`, `{"backups":[…]}`, `{"id":…}`, `{"historyId":…}`), so
//! scripts see what the API documents. Without it, lists are aligned tables and single results
//! are short sentences. A failure prints the problem's detail and each field's message to
//! stderr and exits 1; a flag the server would never accept (a `--ttl` without a unit, a
//! directory cluster without `--path`) is refused before anything is sent, with exit status 2.
//!
//! # Layout
//! - this file: one function per command, and how each result is shown.
//! - `http`: the blocking HTTP client: paths, requests, problems, unreachable servers.
//! - `flags`: checks of flags that need no server (`--ttl`, `clusters register`).
//! - `table`: aligned tables and `key: value` blocks.

mod flags;
mod http;
#[cfg(feature = "aws")]
mod sigv4;
mod table;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use backup_core::api::{
    Backup, BackupEnvelope, BackupList, BackupStatus, Cluster, ClusterEnvelope, ClusterList,
    ClusterLockInfo, ClusterStatus, ClusterTarget, CreateBackupRequest, CreateJobRequest,
    HistoryItem, HistoryList, IdResponse, Job, JobEnvelope, JobList, RearmResponse, RunJobResponse,
    RunStatus, ScheduledBackupData, UpdateJobRequest, VerificationStatus, VerifyProblem,
    VerifyResponse, REARM_JOBS_PATH, SCHEDULED_BACKUP,
};
use backup_core::civil::format_rfc3339;
use backup_core::job::validate_job;
use backup_core::Schedule;
use chrono::{DateTime, Utc};

use crate::cli::{
    Backups, Clusters, Command, CreateCluster, CreateJob, Global, History, JobKind, Jobs, Mesdb,
    Orchestrate, PageArgs, UpdateJob, UpdateJobKind, WaitArgs,
};
use http::{shell_word, with_query, Api, Failure, Reply};
use table::{key_values, Table};

/// How many next runs `jobs create` shows.
const NEXT_RUNS_SHOWN: usize = 5;

/// What a command prints on success, and its exit status.
struct Shown {
    stdout: String,
    stderr: String,
    status: u8,
}

impl Shown {
    fn out(stdout: String) -> Self {
        Shown {
            stdout,
            stderr: String::new(),
            status: 0,
        }
    }
}

type Outcome = Result<Shown, Failure>;

pub fn run(global: &Global, command: Command) -> anyhow::Result<ExitCode> {
    let outcome = Api::new(global).and_then(|api| dispatch(&api, global.json, command));
    let (stdout, stderr, status) = match outcome {
        Ok(shown) => (shown.stdout, shown.stderr, shown.status),
        Err(failure) => {
            let (text, status) = explain(&failure);
            (String::new(), text, status)
        }
    };
    // A closed pipe (`backupctl jobs list | head -1`) is not an error worth a message.
    let _ = std::io::stdout().lock().write_all(stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(stderr.as_bytes());
    Ok(ExitCode::from(status))
}

fn dispatch(api: &Api, json: bool, command: Command) -> Outcome {
    match command {
        Command::Orchestrate {
            command: Orchestrate::Jobs(jobs),
        }
        | Command::Jobs(jobs) => run_jobs(api, json, jobs),
        Command::Orchestrate {
            command: Orchestrate::History(history),
        }
        | Command::History(history) => run_history(api, json, history),
        Command::Backups(backups)
        | Command::Mesdb {
            command: Mesdb::Backups(backups),
        } => run_backups(api, json, backups),
        Command::Clusters(clusters)
        | Command::Mesdb {
            command: Mesdb::Clusters(clusters),
        } => run_clusters(api, json, clusters),
        Command::Serve(_) | Command::Schedule(_) | Command::Template(_) => Err(
            Failure::Unexpected("this command does not talk to the API".to_owned()),
        ),
    }
}

/// The text for stderr and the exit status of a failure.
fn explain(failure: &Failure) -> (String, u8) {
    match failure {
        Failure::Problem(problem) => {
            let detail = if problem.detail.trim().is_empty() {
                problem.title.as_str()
            } else {
                problem.detail.as_str()
            };
            // The API's detail of a validation error already reads `field: message`; say
            // each field once.
            let repeated = |(field, message): &(&String, &String)| {
                detail.contains(&format!("{field}: {message}"))
            };
            let fields: Vec<(&String, &String)> = problem.fields.iter().collect();
            let mut text = match fields.len() {
                0 => format!("error: {detail}\n"),
                1 if fields.iter().all(repeated) => return (format!("error: {detail}\n"), 1),
                _ if fields.iter().all(repeated) => format!("error: {}\n", problem.title),
                _ => format!("error: {detail}\n"),
            };
            for (field, message) in fields {
                text.push_str(&format!("  {field}: {message}\n"));
            }
            (text, 1)
        }
        Failure::Invalid { detail, fields } => {
            let mut text = format!("error: {detail}\n");
            for (field, message) in fields {
                text.push_str(&format!("  {field}: {message}\n"));
            }
            (text, 1)
        }
        Failure::Usage(problems) => {
            let mut text = String::new();
            for problem in problems {
                text.push_str(&format!("error: {problem}\n"));
            }
            (text, 2)
        }
        Failure::Unreachable { url, reason } => (
            format!(
                "error: the server is not reachable at {url}: {reason}.\n\
                 Start one with `backupctl serve`, or point --url (or BACKUPCTL_URL) at a \
                 running server.\n"
            ),
            1,
        ),
        Failure::Unexpected(message) => (format!("error: {message}\n"), 1),
    }
}

/// The body exactly as the server sent it, one JSON document per line.
fn raw(reply: &Reply) -> Shown {
    let body = reply.body.trim();
    Shown::out(if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n")
    })
}

/// What a command that reads one reply shows: the reply itself with `--json`, else `text`
/// of its parsed body.
fn show_reply<T: serde::de::DeserializeOwned>(
    reply: &Reply,
    json: bool,
    text: impl FnOnce(T) -> String,
) -> Outcome {
    if json {
        return Ok(raw(reply));
    }
    Ok(Shown::out(text(reply.json()?)))
}

/// What a list command shows: its page as `text` makes it, or the reply itself with
/// `--json`; when more follow, how to ask for them (on stderr, so the table stays clean
/// for a pipe; with `--json` the reply's `nextToken` says it). The command printed repeats
/// the server, scope, filters and `--limit` of this one, so it lists the next page of the
/// same list.
fn show_page<T: serde::de::DeserializeOwned>(
    reply: &Reply,
    json: bool,
    next_command: (&Api, &str, &PageArgs),
    text: impl FnOnce(T) -> (String, Option<String>),
) -> Outcome {
    if json {
        return Ok(raw(reply));
    }
    let (table, next) = text(reply.json()?);
    let mut shown = Shown::out(table);
    if let Some(next) = next {
        let (api, command, page) = next_command;
        let limit = page
            .limit
            .map_or_else(String::new, |l| format!(" --limit {l}"));
        shown.stderr = format!(
            "More follow: backupctl{} {command}{limit} --next-token {}\n",
            api.scope_flags(),
            shell_word(&next)
        );
    }
    Ok(shown)
}

/// `url` asking for the page `page` names.
fn paged(url: String, page: &PageArgs) -> String {
    let limit = page.limit.map(|l| l.to_string());
    with_query(
        url,
        &[
            ("limit", limit.as_deref()),
            ("nextToken", page.next_token.as_deref()),
        ],
    )
}

/// What a command whose reply carries nothing to show shows: the reply itself with `--json`,
/// else `text`.
fn show_done(reply: &Reply, json: bool, text: String) -> Outcome {
    Ok(if json { raw(reply) } else { Shown::out(text) })
}

// --- jobs ---------------------------------------------------------------------------------

fn run_jobs(api: &Api, json: bool, command: Jobs) -> Outcome {
    match command {
        Jobs::Create(args) => create_job(api, json, args),
        Jobs::List(page) => {
            let reply = api.get(&paged(api.orchestrate(&["jobs"]), &page))?;
            show_page(&reply, json, (api, "jobs list", &page), |list: JobList| {
                (jobs_table(&list.jobs), list.next_token)
            })
        }
        Jobs::Get(id) => {
            require("--id", &id.id)?;
            let reply = api.get(&api.orchestrate(&["jobs", &id.id]))?;
            show_reply(&reply, json, |envelope: JobEnvelope| {
                job_details(&envelope.job)
            })
        }
        Jobs::Update(args) => update_job(api, json, args),
        Jobs::Delete(id) => {
            require("--id", &id.id)?;
            let reply = api.delete(&api.orchestrate(&["jobs", &id.id]))?;
            show_done(
                &reply,
                json,
                format!(
                    "Deleted job {}: it no longer runs; its history and backups remain.\n",
                    id.id
                ),
            )
        }
        Jobs::Run(args) => {
            require("--id", &args.id)?;
            run_job(api, json, &args.id, wait_for(&args.wait, json))
        }
        Jobs::Rearm => rearm_jobs(api, json),
    }
}

/// `jobs rearm`: asks for page after page until no active job is left. With `--json`, one
/// `{"rearmed": [...]}` of every page. A failure after some pages still says how many moved.
fn rearm_jobs(api: &Api, json: bool) -> Outcome {
    let mut moved: Vec<String> = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let url = with_query(api.root(REARM_JOBS_PATH), &[("nextToken", next.as_deref())]);
        let page = match api
            .post::<()>(&url, None)
            .and_then(|reply| reply.json::<RearmResponse>())
        {
            Ok(page) => page,
            Err(failure) if moved.is_empty() => return Err(failure),
            Err(failure) => {
                let (mut text, status) = explain(&failure);
                text.push_str(&format!(
                    "{} jobs were moved before this; run `backupctl jobs rearm` again once the \
                     cause is fixed (moved jobs are re-armed harmlessly).\n",
                    moved.len()
                ));
                return Ok(Shown {
                    stdout: String::new(),
                    stderr: text,
                    status,
                });
            }
        };
        moved.extend(page.rearmed);
        next = page.next_token;
        if next.is_none() {
            break;
        }
    }
    if json {
        let all = RearmResponse {
            rearmed: moved,
            next_token: None,
        };
        let text = serde_json::to_string(&all)
            .map_err(|e| Failure::Unexpected(format!("could not write JSON: {e}")))?;
        return Ok(Shown::out(format!("{text}\n")));
    }
    Ok(Shown::out(match moved.len() {
        0 => "No active jobs: nothing to re-arm.\n".to_owned(),
        n => format!(
            "Re-armed {n} active job{}: each has the trigger the server is configured with, \
             and none of the other kind.\n",
            if n == 1 { "" } else { "s" }
        ),
    }))
}

fn create_job(api: &Api, json: bool, args: CreateJob) -> Outcome {
    let JobKind::ScheduledBackup(data) = args.kind;
    let request = CreateJobRequest {
        description: Some(args.description),
        schedule: Some(args.schedule),
        job_type: Some(SCHEDULED_BACKUP.to_owned()),
        data: Some(ScheduledBackupData {
            cluster_id: Some(data.cluster_id),
            description: Some(data.description),
            max_backup_count: Some(data.max_backup_count),
        }),
    };
    // The same check the API makes. A request it refuses is still sent, since only the
    // server also knows whether the cluster exists and its answer names every problem
    // (the server creates nothing from it); the local check speaks only when no server
    // answers, so a mistake is reported even then.
    let checked = validate_job(&request);
    let reply = match (
        api.post(&api.orchestrate(&["jobs"]), Some(&request)),
        checked,
    ) {
        (Err(Failure::Unreachable { .. }), Err(problems)) => {
            return Err(Failure::Invalid {
                detail: "the job is not valid, so nothing was created.".to_owned(),
                fields: problems.messages(),
            })
        }
        (reply, _) => reply?,
    };
    if json {
        return Ok(raw(&reply));
    }
    let created: IdResponse = reply.json()?;
    let mut out = format!("Created job {}\n", created.id);
    let schedule_text = request.schedule.unwrap_or_default();
    let next_runs = match api
        .get(&api.orchestrate(&["jobs", &created.id]))
        .and_then(|r| r.json::<JobEnvelope>())
    {
        Ok(envelope) => envelope.job.next_runs,
        // The job exists; only the follow-up read failed, so show what the schedule says.
        Err(_) => Schedule::parse(&schedule_text)
            .map(|s| {
                s.next_runs(Utc::now(), NEXT_RUNS_SHOWN)
                    .into_iter()
                    .map(format_rfc3339)
                    .collect()
            })
            .unwrap_or_default(),
    };
    out.push_str(&format!("Schedule:  {}\n", schedule_line(&schedule_text)));
    if !next_runs.is_empty() {
        out.push_str("Next runs:\n");
        for instant in next_runs.iter().take(NEXT_RUNS_SHOWN) {
            out.push_str(&format!("  {instant}\n"));
        }
    }
    Ok(Shown::out(out))
}

/// `jobs update`: the flags given become the PATCH body; the ones left out keep the job's
/// values. `--label-template` and `scheduled-backup --description` say the same thing, as
/// do the two `--max-backup-count`: given both ways they must agree.
fn update_job(api: &Api, json: bool, args: UpdateJob) -> Outcome {
    require("--id", &args.id)?;
    let (template, count, cluster_id) = match args.kind {
        Some(UpdateJobKind::ScheduledBackup(data)) => {
            (data.description, data.max_backup_count, data.cluster_id)
        }
        None => (None, None, None),
    };
    let mut usage = Vec::new();
    let template = one_of(
        "--label-template",
        args.label_template,
        "scheduled-backup --description",
        template,
        &mut usage,
    );
    let max_backup_count = one_of(
        "--max-backup-count",
        args.max_backup_count,
        "scheduled-backup --max-backup-count",
        count,
        &mut usage,
    );
    if !usage.is_empty() {
        return Err(Failure::Usage(usage));
    }
    let has_data = template.is_some() || max_backup_count.is_some() || cluster_id.is_some();
    let data = has_data.then_some(ScheduledBackupData {
        cluster_id,
        description: template,
        max_backup_count,
    });
    let patch = UpdateJobRequest {
        description: args.description,
        schedule: args.schedule,
        job_type: None,
        data,
    };
    if patch == UpdateJobRequest::default() {
        return Err(Failure::Usage(vec![
            "nothing to change: give at least one of --description, --schedule, \
             --label-template and --max-backup-count."
                .to_owned(),
        ]));
    }
    let reply = api.patch(&api.orchestrate(&["jobs", &args.id]), &patch)?;
    show_reply(&reply, json, |envelope: JobEnvelope| {
        format!(
            "Updated job {}\n{}",
            envelope.job.id,
            job_details(&envelope.job)
        )
    })
}

/// The value of a setting that two flags can give: either, or both when they agree.
fn one_of<T: PartialEq>(
    flag: &str,
    value: Option<T>,
    other_flag: &str,
    other: Option<T>,
    usage: &mut Vec<String>,
) -> Option<T> {
    match (value, other) {
        (Some(a), Some(b)) if a != b => {
            usage.push(format!(
                "{flag} and {other_flag} say different things; give one of them."
            ));
            None
        }
        (Some(a), _) => Some(a),
        (None, b) => b,
    }
}

/// How long a "run now" or a manual backup waits for its outcome: `--wait`, else
/// [`SETTLE_FOR`] as text and nothing with `--json`.
fn wait_for(args: &WaitArgs, json: bool) -> Duration {
    match args.wait {
        Some(seconds) => Duration::from_secs(seconds),
        None if json => Duration::ZERO,
        None => SETTLE_FOR,
    }
}

/// The `?wait=` of a "run now" or a manual backup: the server answers the moment the
/// outcome is known, within `wait` (at most [`SERVER_WAIT_MAX`]; the rest is polled).
fn waiting(url: String, wait: Duration) -> String {
    if wait.is_zero() {
        url
    } else {
        let seconds = wait.as_secs().clamp(1, SERVER_WAIT_MAX);
        with_query(url, &[("wait", Some(&seconds.to_string()))])
    }
}

/// The longest `?wait=` the API takes.
const SERVER_WAIT_MAX: u64 = 60;

fn run_job(api: &Api, json: bool, job_id: &str, wait: Duration) -> Outcome {
    let until = Instant::now() + wait;
    let reply = api.post::<()>(
        &waiting(api.orchestrate(&["jobs", job_id, "run"]), wait),
        None,
    )?;
    if json {
        return Ok(raw(&reply));
    }
    let started: RunJobResponse = reply.json()?;
    let history_url = with_query(api.orchestrate(&["history"]), &[("jobId", Some(job_id))]);
    // The API answered once the run ended or `wait` passed; a run still going is shown as
    // it is now (a server without `wait` answers once the run holds the lock, and this
    // polls briefly as before).
    let item = settle(
        api,
        &history_url,
        |list: HistoryList| list.items.into_iter().find(|i| i.id == started.history_id),
        |item| item.status.is_final(),
        until,
    );
    let hid = &started.history_id;
    Ok(match item {
        Some(item) => match item.status {
            RunStatus::Succeeded => Shown::out(format!(
                "Run {hid} of job {job_id} succeeded: {}\n",
                item.details
            )),
            RunStatus::Failed => Shown {
                stdout: String::new(),
                stderr: format!(
                    "error: run {hid} of job {job_id} failed ({}): {}\n",
                    item.error_code
                        .map_or_else(|| "error".to_owned(), |c| c.to_string()),
                    item.details
                ),
                status: 1,
            },
            RunStatus::Running => Shown::out(format!(
                "Run {hid} of job {job_id} is running; follow it with `backupctl history list \
                 --job-id {job_id}`.\n"
            )),
            RunStatus::Queued => Shown::out(format!(
                "Run {hid} of job {job_id} is queued for the runner; follow it with \
                 `backupctl history list --job-id {job_id}`.\n"
            )),
        },
        None => Shown::out(format!("Started run {hid} of job {job_id}.\n")),
    })
}

fn jobs_table(jobs: &[Job]) -> String {
    if jobs.is_empty() {
        return "No jobs. Create one with `backupctl jobs create`.\n".to_owned();
    }
    let mut table = Table::new(&[
        "ID",
        "DESCRIPTION",
        "SCHEDULE",
        "CLUSTER",
        "KEEP",
        "STATUS",
        "NEXT RUN",
    ]);
    for job in jobs {
        table.row(vec![
            job.id.clone(),
            job.description.clone(),
            job.schedule.clone(),
            job.data.cluster_id.clone(),
            job.data.max_backup_count.to_string(),
            enum_name(&job.status),
            job.next_runs.first().cloned().unwrap_or_else(|| "-".into()),
        ]);
    }
    table.render()
}

fn job_details(job: &Job) -> String {
    let mut pairs = vec![
        ("ID", job.id.clone()),
        ("Description", job.description.clone()),
        ("Schedule", schedule_line(&job.schedule)),
        ("Cluster", job.data.cluster_id.clone()),
        ("Backup description", job.data.description.clone()),
        (
            "Keep",
            format!("{} newest backups", job.data.max_backup_count),
        ),
        ("Status", enum_name(&job.status)),
        ("Created", format_rfc3339(job.created)),
        ("Next runs", join_or_dash(&job.next_runs)),
    ];
    if !job.eventbridge.is_empty() {
        pairs.push(("EventBridge", job.eventbridge.join(", ")));
    }
    key_values(&pairs)
}

/// `0 */1 * * *  (At minute 0 of every hour, UTC)`.
fn schedule_line(schedule: &str) -> String {
    match Schedule::parse(schedule) {
        Ok(s) => format!("{schedule}  ({}, UTC)", s.describe()),
        Err(_) => schedule.to_owned(),
    }
}

// --- history ------------------------------------------------------------------------------

fn run_history(api: &Api, json: bool, command: History) -> Outcome {
    let History::List { job_id, page } = command;
    let url = with_query(
        api.orchestrate(&["history"]),
        &[("jobId", job_id.as_deref())],
    );
    let reply = api.get(&paged(url, &page))?;
    let command = match &job_id {
        Some(job_id) => format!("history list --job-id {}", shell_word(job_id)),
        None => "history list".to_owned(),
    };
    show_page(&reply, json, (api, &command, &page), |list: HistoryList| {
        (history_table(&list.items), list.next_token)
    })
}

fn history_table(items: &[HistoryItem]) -> String {
    if items.is_empty() {
        return "No runs yet.\n".to_owned();
    }
    let mut table = Table::new(&[
        "ID", "JOB", "STATUS", "STARTED", "ENDED", "ERROR", "DETAILS",
    ]);
    for item in items {
        table.row(vec![
            item.id.clone(),
            item.job_id.clone(),
            enum_name(&item.status),
            format_rfc3339(item.start_time),
            item.end_time.map_or_else(|| "-".to_owned(), format_rfc3339),
            item.error_code
                .map_or_else(|| "-".to_owned(), |c| c.to_string()),
            item.details.clone(),
        ]);
    }
    table.render()
}

// --- backups ------------------------------------------------------------------------------

fn run_backups(api: &Api, json: bool, command: Backups) -> Outcome {
    match command {
        Backups::List {
            job_id,
            cluster_id,
            page,
        } => {
            let url = with_query(
                api.mesdb(&["backups"]),
                &[
                    ("jobId", job_id.as_deref()),
                    ("clusterId", cluster_id.as_deref()),
                ],
            );
            let reply = api.get(&paged(url, &page))?;
            let mut command = "backups list".to_owned();
            for (flag, value) in [("--job-id", &job_id), ("--cluster-id", &cluster_id)] {
                if let Some(value) = value {
                    command.push_str(&format!(" {flag} {}", shell_word(value)));
                }
            }
            show_page(&reply, json, (api, &command, &page), |list: BackupList| {
                (backups_table(&list.backups), list.next_token)
            })
        }
        Backups::Create {
            source_cluster_id,
            description,
            wait,
        } => {
            let request = CreateBackupRequest {
                description,
                source_cluster_id,
            };
            let wait = wait_for(&wait, json);
            let until = Instant::now() + wait;
            let reply = api.post(&waiting(api.mesdb(&["backups"]), wait), Some(&request))?;
            if json {
                return Ok(raw(&reply));
            }
            let created: IdResponse = reply.json()?;
            let cluster = &request.source_cluster_id;
            // The backup itself, not the cluster's list: a cluster of a year's hourly backups
            // lists a page of 1,000 each time.
            let found = settle(
                api,
                &api.mesdb(&["backups", &created.id]),
                |envelope: BackupEnvelope| Some(envelope.backup),
                |backup| backup.status != BackupStatus::Creating,
                until,
            );
            Ok(match found {
                // A backup that failed is a command that failed (SPEC §8): its reason on
                // stderr, exit 1, as `jobs run` does for a failed run.
                Some(b) if b.status == BackupStatus::Defunct => Shown {
                    stdout: String::new(),
                    stderr: format!(
                        "error: backup {} of cluster {cluster} failed ({}): {}\n",
                        b.id,
                        b.error_code
                            .map_or_else(|| "error".to_owned(), |c| c.to_string()),
                        b.details.as_deref().unwrap_or("no reason was recorded")
                    ),
                    status: 1,
                },
                Some(b) => Shown::out({
                    let mut text = format!(
                        "Created backup {} of cluster {cluster}: \"{}\" ({}).\n",
                        b.id, b.description, b.status
                    );
                    if let Some(code) = &b.error_code {
                        text.push_str(&format!("Error code: {code}\n"));
                    }
                    if let Some(details) = &b.details {
                        text.push_str(details);
                        text.push('\n');
                    }
                    text
                }),
                // Asked to wait and told nothing: the server went away (it was stopped,
                // say), which is no success to report.
                None => Shown {
                    stdout: String::new(),
                    stderr: format!(
                        "error: backup {} of cluster {cluster} was started, but its state could \
                         not be read from the server; `backupctl backups get --id {}` shows \
                         it once the server answers.\n",
                        created.id, created.id
                    ),
                    status: 1,
                },
            })
        }
        Backups::Get { id } => {
            require("--id", &id)?;
            let reply = api.get(&api.mesdb(&["backups", &id]))?;
            show_reply(&reply, json, |envelope: BackupEnvelope| {
                let mut text = backups_table(std::slice::from_ref(&envelope.backup));
                if let Some(v) = &envelope.backup.verification {
                    if !v.problems.is_empty() {
                        text.push_str(&format!(
                            "\nLast verify ({}) found:\n{}",
                            format_rfc3339(v.checked_at),
                            problem_lines(&v.problems)
                        ));
                    }
                }
                text
            })
        }
        Backups::Restore(args) => restore_cluster(api, json, &args.into()),
        Backups::Delete { id } => {
            require("--id", &id)?;
            let reply = api.delete(&api.mesdb(&["backups", &id]))?;
            show_done(&reply, json, format!("Deleted backup {id}.\n"))
        }
        Backups::Verify { id } => {
            require("--id", &id)?;
            let reply = api.post::<()>(&api.mesdb(&["backups", &id, "verify"]), None)?;
            let answer: VerifyResponse = reply.json()?;
            // A damaged backup is the verify's answer, not a failed request: it is shown
            // (on stdout, or as the JSON), and the exit status says it.
            let mut shown = if json {
                raw(&reply)
            } else {
                Shown::out(verify_text(&answer))
            };
            if answer.status == VerificationStatus::Failed {
                shown.status = 1;
            }
            Ok(shown)
        }
    }
}

/// `backups verify`'s answer: the verdict and when, then each problem on its own line.
fn verify_text(answer: &VerifyResponse) -> String {
    let mut text = format!(
        "Backup {}: {} (checked {}).\n",
        answer.backup_id,
        answer.status.as_str(),
        format_rfc3339(answer.checked_at)
    );
    text.push_str(&problem_lines(&answer.problems));
    text
}

/// One line per problem, indented: `path: problem`, or the problem alone when it is the
/// backup's as a whole.
fn problem_lines(problems: &[VerifyProblem]) -> String {
    problems
        .iter()
        .map(|p| {
            if p.path.is_empty() {
                format!("  {}\n", p.problem)
            } else {
                format!("  {}: {}\n", p.path, p.problem)
            }
        })
        .collect()
}

/// A backup's last verify, for its table row: `ok 2026-12-03T15:00:00Z`, or `-` when it
/// was never verified.
fn verified_cell(backup: &Backup) -> String {
    match &backup.verification {
        Some(v) => format!("{} {}", v.status.as_str(), format_rfc3339(v.checked_at)),
        None => "-".to_owned(),
    }
}

fn backups_table(backups: &[Backup]) -> String {
    if backups.is_empty() {
        return "No backups.\n".to_owned();
    }
    let mut table = Table::new(&[
        "ID",
        "DESCRIPTION",
        "CLUSTER",
        "CREATED",
        "STATUS",
        "JOB",
        "VERIFIED",
    ]);
    let mut notes = String::new();
    for b in backups {
        table.row(vec![
            b.id.clone(),
            b.description.clone(),
            b.source_cluster_id.clone(),
            format_rfc3339(b.created),
            match &b.error_code {
                Some(code) => format!("{} ({code})", b.status),
                None => b.status.to_string(),
            },
            b.linked_resource
                .clone()
                .unwrap_or_else(|| "(manual)".into()),
            verified_cell(b),
        ]);
        // Why a backup failed, or what to know of it, under the table: a sentence does not
        // fit a column.
        if let Some(details) = &b.details {
            notes.push_str(&format!("{}: {details}\n", b.id));
        }
        if let Some(v) = b.verification.as_ref().filter(|v| !v.problems.is_empty()) {
            notes.push_str(&format!(
                "{}: its last verify found {} problem(s); `backupctl backups get --id {}` lists them.\n",
                b.id,
                v.problems.len(),
                b.id
            ));
        }
    }
    let mut text = table.render();
    if !notes.is_empty() {
        text.push('\n');
        text.push_str(&notes);
    }
    text
}

// --- clusters -----------------------------------------------------------------------------

fn run_clusters(api: &Api, json: bool, command: Clusters) -> Outcome {
    match command {
        Clusters::Register(args) => {
            let request = flags::register_request(&args).map_err(Failure::Usage)?;
            let reply = api.post(&api.mesdb(&["clusters"]), Some(&request))?;
            show_done(
                &reply,
                json,
                format!(
                    "Registered cluster {} ({}: {}).\n",
                    request.id,
                    request.target.provider(),
                    target_text(&request.target)
                ),
            )
        }
        Clusters::Create(args) => restore_cluster(api, json, &args),
        Clusters::List(page) => {
            let reply = api.get(&paged(api.mesdb(&["clusters"]), &page))?;
            show_page(
                &reply,
                json,
                (api, "clusters list", &page),
                |list: ClusterList| (clusters_table(&list.clusters, Utc::now()), list.next_token),
            )
        }
        Clusters::Get { cluster_id } => {
            require("--cluster-id", &cluster_id)?;
            let reply = api.get(&api.mesdb(&["clusters", &cluster_id]))?;
            show_reply(&reply, json, |envelope: ClusterEnvelope| {
                cluster_details(&envelope.cluster, Utc::now())
            })
        }
        Clusters::Delete { cluster_id } => {
            require("--cluster-id", &cluster_id)?;
            let reply = api.delete(&api.mesdb(&["clusters", &cluster_id]))?;
            show_done(
                &reply,
                json,
                format!("Deleted cluster {cluster_id}; its backups remain.\n"),
            )
        }
        Clusters::Lock {
            cluster_id,
            operation,
            ttl,
        } => {
            require("--cluster-id", &cluster_id)?;
            let request = flags::lock_request(operation, &ttl).map_err(Failure::Usage)?;
            let reply = api.post(
                &api.mesdb(&["clusters", &cluster_id, "lock"]),
                Some(&request),
            )?;
            if json {
                return Ok(raw(&reply));
            }
            let expires = lock_from_reply(&reply)
                .map(|lock| format_rfc3339(lock.expires))
                .unwrap_or_else(|| format!("{ttl} from now"));
            Ok(Shown::out(format!(
                "Locked cluster {cluster_id} for {} until {expires}: runs and manual backups \
                 of it fail until then. Release it with `backupctl clusters unlock \
                 --cluster-id {cluster_id}`.\n",
                request.operation
            )))
        }
        Clusters::Unlock { cluster_id } => {
            require("--cluster-id", &cluster_id)?;
            // Releasing a lock nobody holds changes nothing (SPEC §5) and the API answers
            // the same `{}`; the table says which it was, from the cluster read first.
            let held = if json {
                true
            } else {
                api.get(&api.mesdb(&["clusters", &cluster_id]))
                    .ok()
                    .and_then(|reply| reply.json::<ClusterEnvelope>().ok())
                    .is_none_or(|envelope| envelope.cluster.lock.is_some())
            };
            let reply = api.delete(&api.mesdb(&["clusters", &cluster_id, "lock"]))?;
            show_done(
                &reply,
                json,
                if held {
                    format!("Released the maintenance lock on cluster {cluster_id}.\n")
                } else {
                    format!("Cluster {cluster_id} held no lock; nothing changed.\n")
                },
            )
        }
    }
}

/// `clusters create --source-backup-id` and `backups restore`: the restore of SPEC §14. The
/// flags are checked first (nothing is sent when they are wrong); then the new cluster is
/// read back to say where it stands: `available` once a directory restore is in place,
/// `creating` while an aws-ebs restore's volumes are being made.
fn restore_cluster(api: &Api, json: bool, args: &CreateCluster) -> Outcome {
    let request = flags::restore_request(args).map_err(Failure::Usage)?;
    let backup = request.source_backup_id.clone().unwrap_or_default();
    let reply = api.post(&api.mesdb(&["clusters"]), Some(&request))?;
    if json {
        return Ok(raw(&reply));
    }
    let made: IdResponse = reply.json()?;
    let envelope: ClusterEnvelope = api.get(&api.mesdb(&["clusters", &made.id]))?.json()?;
    let cluster = envelope.cluster;
    let id = &cluster.id;
    Ok(Shown::out(match cluster.status {
        ClusterStatus::Available => format!(
            "Restored backup {backup} into cluster {id} ({}: {}).\n",
            cluster.target.provider(),
            target_text(&cluster.target)
        ),
        ClusterStatus::Creating => format!(
            "Restoring backup {backup} into cluster {id}: it is `creating` until its data is in \
             place; `backupctl clusters get --cluster-id {id}` shows when it is available.\n"
        ),
        ClusterStatus::Failed => format!(
            "The restore of backup {backup} into cluster {id} failed: {}\n",
            cluster
                .details
                .as_deref()
                .unwrap_or("no reason was recorded")
        ),
    }))
}

/// The lock in a lock answer: the API answers `{"cluster": Cluster}` with its new lock; a
/// bare lock is read too.
fn lock_from_reply(reply: &Reply) -> Option<ClusterLockInfo> {
    match serde_json::from_str::<ClusterEnvelope>(&reply.body) {
        Ok(envelope) => envelope.cluster.lock,
        Err(_) => serde_json::from_str(&reply.body).ok(),
    }
}

fn clusters_table(clusters: &[Cluster], now: DateTime<Utc>) -> String {
    if clusters.is_empty() {
        return "No clusters. Register one with `backupctl clusters register`.\n".to_owned();
    }
    let mut table = Table::new(&[
        "ID",
        "DESCRIPTION",
        "PROVIDER",
        "REGION",
        "STATUS",
        "LOCK",
        "TARGET",
    ]);
    for c in clusters {
        table.row(vec![
            c.id.clone(),
            c.description.clone(),
            c.target.provider().to_owned(),
            c.region.clone(),
            c.status.to_string(),
            c.lock
                .as_ref()
                .map_or_else(|| "-".to_owned(), |l| lock_short(l, now)),
            target_text(&c.target),
        ]);
    }
    let mut text = table.render();
    // A cluster whose path breaks the policy now fails its runs, and a restore's state has a
    // sentence: say them under the table.
    for c in clusters {
        if let Some(details) = &c.details {
            text.push_str(&format!("\n{}: {details}\n", c.id));
        }
        if let Some(problem) = &c.problem {
            text.push_str(&format!("\n{}: {problem}\n", c.id));
        }
    }
    text
}

fn cluster_details(c: &Cluster, now: DateTime<Utc>) -> String {
    let mut rows = vec![
        ("ID", c.id.clone()),
        ("Description", c.description.clone()),
        ("Provider", c.target.provider().to_owned()),
        ("Region", c.region.clone()),
        ("Status", c.status.to_string()),
        ("Target", target_text(&c.target)),
        (
            "Server",
            match (&c.server_version, &c.server_version_tag) {
                (None, None) => "unknown".to_owned(),
                (version, tag) => [version, tag]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", tag "),
            },
        ),
        ("Nodes", c.node_count.to_string()),
        (
            "Lock",
            c.lock
                .as_ref()
                .map_or_else(|| "free".to_owned(), |l| lock_long(l, now)),
        ),
    ];
    if let Some(backup) = &c.source_backup_id {
        rows.push(("Restored from", backup.clone()));
    }
    if let Some(details) = &c.details {
        rows.push(("Details", details.clone()));
    }
    if let Some(problem) = &c.problem {
        rows.push(("Problem", problem.clone()));
    }
    key_values(&rows)
}

fn target_text(target: &ClusterTarget) -> String {
    match target {
        ClusterTarget::Directory {
            path,
            pre_hook,
            post_hook,
        } => {
            let hooks = match (pre_hook.is_some(), post_hook.is_some()) {
                (true, true) => " (pre- and post-hook)",
                (true, false) => " (pre-hook)",
                (false, true) => " (post-hook)",
                (false, false) => "",
            };
            format!("{path}{hooks}")
        }
        ClusterTarget::Command { path, run_as, .. } => match run_as {
            Some(user) => format!("{path} (command, as {user})"),
            None => format!("{path} (command)"),
        },
        ClusterTarget::AwsEbs {
            volume_ids,
            instance_tag,
        } => match instance_tag {
            Some(tag) => format!("instances tagged {tag}"),
            None => volume_ids.join(", "),
        },
    }
}

/// `expand-disk until 2026-11-27T06:30:00Z`, for a table cell.
fn lock_short(lock: &ClusterLockInfo, now: DateTime<Utc>) -> String {
    let expired = if lock.expires <= now {
        " (expired)"
    } else {
        ""
    };
    format!(
        "{} until {}{expired}",
        lock.operation,
        format_rfc3339(lock.expires)
    )
}

/// Everything about the holder, for `clusters get`.
fn lock_long(lock: &ClusterLockInfo, now: DateTime<Utc>) -> String {
    let mut text = format!("held by {}", lock.operation);
    if let Some(job) = &lock.job_id {
        text.push_str(&format!(" of job {job}"));
    }
    if let Some(run) = &lock.run_id {
        text.push_str(&format!(" (run {run})"));
    }
    text.push_str(&format!(
        " since {}, {} {} (fencing token {})",
        format_rfc3339(lock.since),
        if lock.expires <= now {
            "lease expired at"
        } else {
            "lease until"
        },
        format_rfc3339(lock.expires),
        lock.fencing_token
    ));
    text
}

// --- helpers ------------------------------------------------------------------------------

/// A blank id would address the collection instead of one of its items.
fn require(flag: &str, value: &str) -> Result<(), Failure> {
    if value.trim().is_empty() {
        Err(Failure::Usage(vec![format!(
            "{flag} is empty; give the id to act on."
        )]))
    } else {
        Ok(())
    }
}

/// How long a command waits for a backup it started to finish before reporting it as still
/// running (the API answers as soon as the backup holds the cluster's lock).
const SETTLE_FOR: Duration = Duration::from_secs(3);

/// Polls the list at `url` until the item `find` picks from it is `done`, or `deadline`
/// passes (reading it at least once); returns the last state of that item seen (`None`: it never showed up).
fn settle<L: serde::de::DeserializeOwned, T>(
    api: &Api,
    url: &str,
    find: impl Fn(L) -> Option<T>,
    done: impl Fn(&T) -> bool,
    deadline: Instant,
) -> Option<T> {
    let mut delay = Duration::from_millis(20);
    let mut last = None;
    loop {
        let read = api.get(url);
        // A server that no longer accepts connections (it was stopped) will not answer
        // later in this wait either: say what was last seen instead of retrying until the
        // deadline.
        if let Err(Failure::Unreachable { .. }) = read {
            return last;
        }
        if let Some(item) = read.and_then(|r| r.json::<L>()).ok().and_then(&find) {
            if done(&item) {
                return Some(item);
            }
            last = Some(item);
        }
        if Instant::now() + delay > deadline {
            return last;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// The serialized (lower-case) name of a status enum.
fn enum_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".to_owned(),
    }
}

fn join_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use backup_core::api::{JobData, JobStatus};
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, h, m, 0).unwrap()
    }

    fn job() -> Job {
        Job {
            id: "j1".into(),
            organization_id: "default".into(),
            project_id: "default".into(),
            description: "My Hourly Backup".into(),
            schedule: "0 */1 * * *".into(),
            status: JobStatus::Active,
            job_type: SCHEDULED_BACKUP.into(),
            data: JobData {
                cluster_id: "c196ogto0aeqohe3ommq".into(),
                description: "{cluster} Hourly Backup {datetime:RFC3339}".into(),
                max_backup_count: 2,
            },
            created: at(5, 0),
            next_runs: vec!["2026-11-27T06:00:00Z".into(), "2026-11-27T07:00:00Z".into()],
            eventbridge: vec!["cron(0 * * * ? *)".into()],
        }
    }

    #[test]
    fn the_jobs_table_shows_the_next_run() {
        let text = jobs_table(&[job()]);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "ID  DESCRIPTION       SCHEDULE     CLUSTER               KEEP  STATUS  NEXT RUN"
        );
        assert_eq!(
            lines.next().unwrap(),
            "j1  My Hourly Backup  0 */1 * * *  c196ogto0aeqohe3ommq  2     active  \
             2026-11-27T06:00:00Z"
        );
    }

    #[test]
    fn job_details_describe_the_schedule() {
        let text = job_details(&job());
        assert!(
            text.contains("0 */1 * * *  (At minute 0 of every hour, UTC)"),
            "{text}"
        );
        assert!(text.contains("2026-11-27T06:00:00Z, 2026-11-27T07:00:00Z"));
    }

    #[test]
    fn a_problem_prints_its_detail_and_every_field() {
        let problem: backup_core::api::Problem = serde_json::from_value(serde_json::json!({
            "type": "about:blank", "title": "Bad Request", "status": 400,
            "detail": "The job is not valid.", "instance": "/x",
            "fields": {"schedule": "Too often.", "data.maxBackupCount": "At most 1000."}
        }))
        .unwrap();
        let (text, status) = explain(&Failure::Problem(Box::new(problem)));
        assert_eq!(status, 1);
        assert_eq!(
            text,
            "error: The job is not valid.\n  data.maxBackupCount: At most 1000.\n  schedule: \
             Too often.\n"
        );
    }

    #[test]
    fn a_field_the_detail_already_names_is_said_once() {
        let problem = |detail: &str, fields: serde_json::Value| {
            let problem: backup_core::api::Problem = serde_json::from_value(serde_json::json!({
                "type": "urn:x", "title": "Invalid request", "status": 400,
                "detail": detail, "instance": "/x", "fields": fields
            }))
            .unwrap();
            explain(&Failure::Problem(Box::new(problem))).0
        };
        assert_eq!(
            problem(
                "jobId: `x` is not an id.",
                serde_json::json!({"jobId": "`x` is not an id."})
            ),
            "error: jobId: `x` is not an id.\n"
        );
        assert_eq!(
            problem("a: A. b: B.", serde_json::json!({"a": "A.", "b": "B."})),
            "error: Invalid request\n  a: A.\n  b: B.\n"
        );
    }

    #[test]
    fn an_unreachable_server_suggests_serve_and_url() {
        let (text, status) = explain(&Failure::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        });
        assert_eq!(status, 1);
        assert!(
            text.contains("not reachable at http://127.0.0.1:1"),
            "{text}"
        );
        assert!(text.contains("backupctl serve") && text.contains("--url"));
    }

    #[test]
    fn a_held_lock_names_its_holder() {
        let lock = ClusterLockInfo {
            operation: "scheduled-backup".into(),
            job_id: Some("j1".into()),
            run_id: Some("r1".into()),
            since: at(5, 0),
            expires: at(5, 5),
            fencing_token: 7,
        };
        assert_eq!(
            lock_long(&lock, at(5, 1)),
            "held by scheduled-backup of job j1 (run r1) since 2026-11-27T05:00:00Z, lease \
             until 2026-11-27T05:05:00Z (fencing token 7)"
        );
        assert!(lock_short(&lock, at(6, 0)).ends_with("(expired)"));
    }

    #[test]
    fn a_lock_answer_is_read_from_any_envelope() {
        let lock = serde_json::json!({"operation": "expand-disk", "since": "2026-11-27T05:00:00Z",
            "expires": "2026-11-27T05:30:00Z", "fencingToken": 3});
        let cluster = serde_json::json!({"cluster": {"id": "c", "description": "d",
            "region": "local", "provider": "directory", "path": "/d", "lock": lock}});
        for body in [lock.clone(), cluster] {
            let reply = Reply {
                url: String::new(),
                body: body.to_string(),
            };
            assert_eq!(lock_from_reply(&reply).unwrap().fencing_token, 3);
        }
    }
}
