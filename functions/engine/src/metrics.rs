//! What a deployment observes of its runs (SPEC §17): the counters a process keeps as runs
//! end, the gauges read from the store when asked, and the Prometheus text they make.
//!
//! The decisions of what counts as what live here, not in an HTTP adapter or a Lambda:
//! - **A run ended** ([`RunEnded::of`]) when its history item is final (`succeeded` or
//!   `failed`), counted once by the process that wrote that end; `running` and `queued` items
//!   are not ends. Its duration is `endTime - startTime` (never negative). A duplicate
//!   delivery that changed nothing ends nothing.
//! - **A lock conflict** is a run or a manual backup that found its cluster's lock held
//!   (counted where the lock was asked for, so the 409 of a manual backup counts too).
//! - **Bytes copied** are what a backup made in this process holds once it is `available`,
//!   as its provider reported it (a directory copy: the bytes it wrote). **Bytes linked**
//!   are what an incremental backup shares with an earlier one instead of copying (a
//!   directory backup's hard links), as its provider reported them.
//! - **Backups by status** and **each job's last `available` backup** are read from the
//!   store at scrape time ([`crate::Engine::metrics_report`]), a page at a time, over the
//!   projects that have an active job, newest first, at most [`MAX_SCANNED_PER_PROJECT`]
//!   backups per project; a scan cut short says so (`backupctl_backups_scan_truncated`).
//!   What is left out is the oldest records, which retention has long made `deleted`.
//! - **Last verification** is read the same way: per active job, the newest `checkedAt` of
//!   a verify of one of its `available` backups, whatever it found (a job none of whose
//!   backups was verified has no sample).
//!
//! Counters are per process (they start at 0 when it starts, which Prometheus expects of a
//! counter); the gauges are the store's and the same whichever process answers.
//!
//! [`RunObserver`] is how a deployment listens to the same events beyond these counters
//! (the AWS runner writes a CloudWatch Embedded Metric Format line per run end).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use backup_core::api::{HistoryItem, RunFailure, RunStatus};
use backup_core::retention::BackupStatus;
use chrono::{DateTime, Utc};

/// The most backups one scrape reads per project (ten pages of the store's largest page).
pub const MAX_SCANNED_PER_PROJECT: usize = 10 * crate::page::MAX_PAGE;

/// The most jobs that get a per-job series: a label per job is fine for hundreds, and a
/// scrape must not grow without bound.
pub const MAX_JOB_SERIES: usize = 1000;

/// The upper bounds (seconds) of the run-duration histogram: from a refused run (about
/// nothing) to the six hours a backup may take (`max_backup_wait`).
pub const DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0,
];

/// One run's end, as every observer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnded {
    pub job_id: String,
    /// `Succeeded` or `Failed`.
    pub status: RunStatus,
    /// The failure's code; `None` for a success.
    pub error_code: Option<RunFailure>,
    /// `endTime - startTime`, in seconds, never negative.
    pub duration_seconds: f64,
}

impl RunEnded {
    /// The end `item` records, or `None` when the item is not final.
    pub fn of(item: &HistoryItem) -> Option<RunEnded> {
        if !item.status.is_final() {
            return None;
        }
        let end = item.end_time.unwrap_or(item.start_time);
        let millis = (end - item.start_time).num_milliseconds().max(0);
        Some(RunEnded {
            job_id: item.job_id.clone(),
            status: item.status,
            error_code: match item.status {
                RunStatus::Failed => Some(item.error_code.unwrap_or(RunFailure::Unknown)),
                _ => None,
            },
            duration_seconds: millis as f64 / 1000.0,
        })
    }

    /// Whether the run failed because its cluster was locked.
    pub fn lock_conflict(&self) -> bool {
        self.error_code == Some(RunFailure::ClusterLocked)
    }
}

/// The `status` label of a run: serde's name, the one way the enum becomes text.
pub fn run_status_name(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued => "queued",
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
    }
}

/// Listens to what runs do. Every method defaults to nothing.
pub trait RunObserver: Send + Sync {
    /// A run ended (once per end, by the process that recorded it).
    fn run_ended(&self, run: &RunEnded) {
        let _ = run;
    }
    /// A run or a manual backup found its cluster's lock held.
    fn lock_conflict(&self) {}
    /// A backup made in this process became available, holding `copied` bytes it wrote and
    /// `linked` bytes it shares with an earlier backup.
    fn backup_made(&self, copied: u64, linked: u64) {
        let _ = (copied, linked);
    }
}

/// The counters of one process: what [`RunObserver`] saw since it started.
#[derive(Debug, Default)]
pub struct RunMetrics {
    counts: Mutex<Counters>,
}

/// A copy of [`RunMetrics`]' counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Runs by (status, error code).
    pub runs: BTreeMap<(&'static str, String), u64>,
    /// Runs per duration bucket ([`DURATION_BUCKETS`], not cumulative; one more for `+Inf`).
    pub duration_buckets: [u64; DURATION_BUCKETS.len() + 1],
    pub duration_sum_seconds: f64,
    pub lock_conflicts: u64,
    pub copied_bytes: u64,
    pub linked_bytes: u64,
}

impl RunMetrics {
    pub fn snapshot(&self) -> Counters {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic while counting leaves numbers, never a broken invariant: keep counting.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RunObserver for RunMetrics {
    fn run_ended(&self, run: &RunEnded) {
        let code = run.error_code.map(|c| c.to_string()).unwrap_or_default();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|bound| run.duration_seconds <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        let mut counts = self.lock();
        *counts
            .runs
            .entry((run_status_name(run.status), code))
            .or_default() += 1;
        counts.duration_buckets[bucket] += 1;
        counts.duration_sum_seconds += run.duration_seconds;
    }

    fn lock_conflict(&self) {
        self.lock().lock_conflicts += 1;
    }

    fn backup_made(&self, copied: u64, linked: u64) {
        let mut counts = self.lock();
        counts.copied_bytes = counts.copied_bytes.saturating_add(copied);
        counts.linked_bytes = counts.linked_bytes.saturating_add(linked);
    }
}

/// What the store says at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreGauges {
    /// Backups by status (every status present, 0 when none).
    pub backups: BTreeMap<BackupStatus, u64>,
    /// Active jobs' newest `available` backup's creation instant.
    pub last_available: BTreeMap<String, DateTime<Utc>>,
    /// Active jobs' newest verification of one of their `available` backups (whatever it
    /// found: a failed one is in `backups verify` and the backup's `verification`).
    pub last_verified: BTreeMap<String, DateTime<Utc>>,
    /// Whether a project had more backups than one scrape reads, or more jobs than get a
    /// series.
    pub truncated: bool,
}

impl StoreGauges {
    pub fn new() -> StoreGauges {
        StoreGauges {
            backups: BackupStatus::ALL.into_iter().map(|s| (s, 0)).collect(),
            ..StoreGauges::default()
        }
    }

    /// Counts one backup of a scan; `active` says whether its job gets a series.
    pub fn count(&mut self, backup: &crate::model::BackupEntry, active: bool) {
        *self.backups.entry(backup.status).or_default() += 1;
        if backup.status != BackupStatus::Available || !active {
            return;
        }
        if let Some(job_id) = &backup.job_id {
            let newest = self
                .last_available
                .entry(job_id.clone())
                .or_insert(backup.created);
            *newest = (*newest).max(backup.created);
            if let Some(checked) = backup.verification.as_ref().map(|v| v.checked_at) {
                let newest = self.last_verified.entry(job_id.clone()).or_insert(checked);
                *newest = (*newest).max(checked);
            }
        }
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsReport {
    pub counters: Counters,
    pub store: StoreGauges,
}

/// The media type of [`MetricsReport::to_prometheus`].
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl MetricsReport {
    /// The Prometheus text exposition format, version 0.0.4.
    pub fn to_prometheus(&self) -> String {
        let c = &self.counters;
        let mut out = Text::default();
        out.describe(
            "backupctl_runs_total",
            "counter",
            "Runs that ended in this process, by outcome and error code (empty for a success).",
        );
        let mut runs = c.runs.clone();
        // Present from the start, so a rate over it is defined before the first run.
        runs.entry(("succeeded", String::new())).or_default();
        for ((status, code), n) in &runs {
            out.sample(
                "backupctl_runs_total",
                &[("status", status), ("error_code", code)],
                *n,
            );
        }
        out.describe(
            "backupctl_run_duration_seconds",
            "histogram",
            "How long runs that ended in this process took, from start to end.",
        );
        let mut cumulative = 0;
        for (i, n) in c.duration_buckets.iter().enumerate() {
            cumulative += n;
            let le = DURATION_BUCKETS
                .get(i)
                .map_or("+Inf".to_owned(), |b| float(*b));
            out.sample(
                "backupctl_run_duration_seconds_bucket",
                &[("le", &le)],
                cumulative,
            );
        }
        out.sample(
            "backupctl_run_duration_seconds_sum",
            &[],
            float(c.duration_sum_seconds),
        );
        out.sample("backupctl_run_duration_seconds_count", &[], cumulative);
        out.describe(
            "backupctl_lock_conflicts_total",
            "counter",
            "Runs and manual backups in this process that found their cluster's lock held.",
        );
        out.sample("backupctl_lock_conflicts_total", &[], c.lock_conflicts);
        out.describe(
            "backupctl_backup_copied_bytes_total",
            "counter",
            "Bytes copied into backups this process made available, as their providers reported.",
        );
        out.sample("backupctl_backup_copied_bytes_total", &[], c.copied_bytes);
        out.describe(
            "backupctl_backup_linked_bytes_total",
            "counter",
            "Bytes backups this process made share with earlier backups instead of copying them .",
        );
        out.sample("backupctl_backup_linked_bytes_total", &[], c.linked_bytes);

        let s = &self.store;
        out.describe(
            "backupctl_backups",
            "gauge",
            "Backups in the store by status (projects with an active job).",
        );
        for (status, n) in &s.backups {
            out.sample("backupctl_backups", &[("status", status.as_str())], *n);
        }
        out.describe(
            "backupctl_job_last_available_backup_timestamp_seconds",
            "gauge",
            "Creation time (Unix seconds) of each active job's newest available backup.",
        );
        for (job, at) in &s.last_available {
            out.sample(
                "backupctl_job_last_available_backup_timestamp_seconds",
                &[("job_id", job)],
                at.timestamp(),
            );
        }
        out.describe(
            "backupctl_job_last_verification_timestamp_seconds",
            "gauge",
            "Time (Unix seconds) of the newest verification of each active job's available backups (no sample for a job none of whose backups was verified).",
        );
        for (job, at) in &s.last_verified {
            out.sample(
                "backupctl_job_last_verification_timestamp_seconds",
                &[("job_id", job)],
                at.timestamp(),
            );
        }
        out.describe(
            "backupctl_backups_scan_truncated",
            "gauge",
            "1 when this scrape read only part of the store (over 10000 backups in a project, or over 1000 active jobs).",
        );
        out.sample(
            "backupctl_backups_scan_truncated",
            &[],
            u8::from(s.truncated),
        );
        out.0
    }
}

impl crate::Engine {
    /// Adds a listener to run ends, lock conflicts and backups made (besides the engine's
    /// own counters, [`crate::Engine::metrics_report`]).
    pub fn add_run_observer(&self, observer: std::sync::Arc<dyn RunObserver>) {
        self.inner
            .observers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(observer);
    }

    /// Tells the engine's counters and every observer.
    pub(crate) fn observe(&self, event: impl Fn(&dyn RunObserver)) {
        event(&self.inner.metrics);
        let observers = self
            .inner
            .observers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for observer in observers.iter() {
            event(observer.as_ref());
        }
    }

    /// Tells observers that `item` ended a run, if it is final.
    pub(crate) fn observe_end(&self, item: &HistoryItem) {
        if let Some(ended) = RunEnded::of(item) {
            self.observe(|o| o.run_ended(&ended));
        }
    }

    /// This process's counters and the store's gauges, read now (see the module's docs for
    /// what is read and how far).
    pub async fn metrics_report(&self) -> Result<MetricsReport, crate::EngineError> {
        let store = &self.inner.store;
        let mut jobs = store.list_active_jobs().await?;
        let mut gauges = StoreGauges::new();
        if jobs.len() > MAX_JOB_SERIES {
            gauges.truncated = true;
        }
        let scopes: std::collections::BTreeSet<(String, String)> = jobs
            .iter()
            .map(|j| (j.scope.org.clone(), j.scope.project.clone()))
            .collect();
        jobs.sort_by(|a, b| a.id.cmp(&b.id));
        let active: std::collections::BTreeSet<String> = jobs
            .into_iter()
            .take(MAX_JOB_SERIES)
            .map(|j| j.id)
            .collect();
        let filter = crate::BackupFilter::default();
        for (org, project) in scopes {
            let scope = crate::Scope { org, project };
            let mut request = crate::PageRequest::first(crate::page::MAX_PAGE);
            let mut scanned = 0;
            loop {
                let page = store.list_backups(&scope, &filter, &request).await?;
                scanned += page.items.len();
                for backup in &page.items {
                    let counted = backup.job_id.as_ref().is_some_and(|j| active.contains(j));
                    gauges.count(backup, counted);
                }
                match page.next {
                    None => break,
                    Some(_) if scanned >= MAX_SCANNED_PER_PROJECT => {
                        gauges.truncated = true;
                        break;
                    }
                    Some(next) => request = crate::PageRequest::after(crate::page::MAX_PAGE, next),
                }
            }
        }
        Ok(MetricsReport {
            counters: self.inner.metrics.snapshot(),
            store: gauges,
        })
    }

    /// Whether the store answers: one read of a record that does not exist (what `/readyz`
    /// asks before a load balancer or an orchestrator sends traffic).
    pub async fn ready(&self) -> Result<(), crate::EngineError> {
        self.inner.store.get_job(READINESS_PROBE_ID).await?;
        Ok(())
    }
}

/// A well-formed id no job has (ids start with their creation second, and this one's is
/// 1970's), read by [`crate::Engine::ready`].
const READINESS_PROBE_ID: &str = "00000000000000000000";

/// A float as Prometheus reads it: whole numbers without a fraction, `+Inf`/`-Inf`/`NaN`.
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// The text being written.
#[derive(Default)]
struct Text(String);

impl Text {
    fn describe(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, text)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let escaped = text
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{label}=\"{escaped}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::api::Trigger;

    fn item(status: RunStatus, code: Option<RunFailure>, seconds: i64) -> HistoryItem {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        HistoryItem {
            id: "h".into(),
            job_id: "j".into(),
            organization_id: "o".into(),
            project_id: "p".into(),
            status,
            details: String::new(),
            linked_resource: String::new(),
            start_time: start,
            end_time: status
                .is_final()
                .then(|| start + chrono::Duration::seconds(seconds)),
            scheduled_time: start,
            trigger: Trigger::Schedule,
            error_code: code,
            pruned_backup_ids: Vec::new(),
        }
    }

    #[test]
    fn only_final_items_are_run_ends() {
        assert_eq!(RunEnded::of(&item(RunStatus::Running, None, 0)), None);
        assert_eq!(RunEnded::of(&item(RunStatus::Queued, None, 0)), None);
        let ok = RunEnded::of(&item(RunStatus::Succeeded, None, 90)).unwrap();
        assert_eq!((ok.error_code, ok.duration_seconds), (None, 90.0));
        let locked =
            RunEnded::of(&item(RunStatus::Failed, Some(RunFailure::ClusterLocked), 0)).unwrap();
        assert!(locked.lock_conflict());
        // A failure without a code (should not happen) still counts, as `unknown`.
        let odd = RunEnded::of(&item(RunStatus::Failed, None, -5)).unwrap();
        assert_eq!(odd.error_code, Some(RunFailure::Unknown));
        assert_eq!(odd.duration_seconds, 0.0);
    }

    #[test]
    fn the_text_names_every_series_with_its_counts() {
        let metrics = RunMetrics::default();
        for (status, code, seconds) in [
            (RunStatus::Succeeded, None, 2),
            (RunStatus::Succeeded, None, 4000),
            (RunStatus::Failed, Some(RunFailure::ClusterLocked), 0),
        ] {
            metrics.run_ended(&RunEnded::of(&item(status, code, seconds)).unwrap());
        }
        metrics.lock_conflict();
        metrics.backup_made(1234, 0);
        let mut store = StoreGauges::new();
        store.last_available.insert(
            "job\"1".into(),
            DateTime::from_timestamp(1_700_000_100, 0).unwrap(),
        );
        *store.backups.get_mut(&BackupStatus::Available).unwrap() = 3;
        let text = MetricsReport {
            counters: metrics.snapshot(),
            store,
        }
        .to_prometheus();
        for line in [
            "# TYPE backupctl_runs_total counter",
            "backupctl_runs_total{status=\"succeeded\",error_code=\"\"} 2",
            "backupctl_runs_total{status=\"failed\",error_code=\"cluster_locked\"} 1",
            "backupctl_run_duration_seconds_bucket{le=\"1\"} 1",
            "backupctl_run_duration_seconds_bucket{le=\"5\"} 2",
            "backupctl_run_duration_seconds_bucket{le=\"3600\"} 2",
            "backupctl_run_duration_seconds_bucket{le=\"7200\"} 3",
            "backupctl_run_duration_seconds_bucket{le=\"+Inf\"} 3",
            "backupctl_run_duration_seconds_sum 4002",
            "backupctl_run_duration_seconds_count 3",
            "backupctl_lock_conflicts_total 1",
            "backupctl_backup_copied_bytes_total 1234",
            "backupctl_backup_linked_bytes_total 0",
            "backupctl_backups{status=\"available\"} 3",
            "backupctl_backups{status=\"deleted\"} 0",
            "backupctl_job_last_available_backup_timestamp_seconds{job_id=\"job\\\"1\"} 1700000100",
            "# TYPE backupctl_job_last_verification_timestamp_seconds gauge",
            "backupctl_backups_scan_truncated 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("backupctl_job_last_verification_timestamp_seconds{"));
        // Every line is a comment or `name[{labels}] value`.
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line
                        .rsplit_once(' ')
                        .is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }
}
