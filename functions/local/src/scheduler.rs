//! The in-process trigger scheduler: the local stand-in for EventBridge rules.
//!
//! [`LocalScheduler`] keeps, for every active job, its schedule and its next firing. One tokio
//! task ([`LocalScheduler::run`]) sleeps until the earliest firing, sends a [`Firing`] (job id
//! and scheduled instant, in UTC) on a channel and computes that job's next one. Whoever reads
//! the channel runs the job (see [`crate::spawn_runner`]), which keeps the scheduler free of
//! any engine type and lets tests watch the firings alone.
//!
//! - Creating or deleting a job wakes the task, so a new job's first firing is never missed.
//! - Times come from the injected [`Clock`]; the task never sleeps more than a minute at a
//!   time, so a jump of the wall clock (a suspended laptop, an NTP step) is noticed.
//! - No catch-up: at start-up (and after a long stall) each job's next firing is the first
//!   one after *now*. A firing that fell in a stall is sent once, late, and the next one is
//!   computed from the current time, so a sleeping machine does not wake to a burst of runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backup_core::Schedule;
use backup_engine::ports::{Clock, TriggerScheduler};
use backup_engine::{JobRecord, TriggerError};
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Notify};

/// The longest the task sleeps before looking at the clock again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// A job's trigger fired for this scheduled instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub job_id: String,
    pub scheduled: DateTime<Utc>,
}

struct Armed {
    schedule: Schedule,
    next: Option<DateTime<Utc>>,
}

/// Armed jobs and the task that fires them.
pub struct LocalScheduler {
    clock: Arc<dyn Clock>,
    // A plain mutex: held for map updates only, never across an `.await`.
    jobs: Mutex<HashMap<String, Armed>>,
    changed: Notify,
}

impl LocalScheduler {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<LocalScheduler> {
        Arc::new(LocalScheduler {
            clock,
            jobs: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        })
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Armed>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The armed jobs and their next firings, for inspection.
    pub fn armed(&self) -> Vec<(String, Option<DateTime<Utc>>)> {
        let mut out: Vec<_> = self
            .jobs()
            .iter()
            .map(|(id, a)| (id.clone(), a.next))
            .collect();
        out.sort();
        out
    }

    /// Fires jobs until `firings` is closed. Spawn it once.
    pub async fn run(self: Arc<Self>, firings: mpsc::Sender<Firing>) {
        loop {
            let now = self.clock.now();
            let mut due = Vec::new();
            let mut earliest: Option<DateTime<Utc>> = None;
            // Register the interest in changes before reading the jobs, so a change made
            // between the read and the sleep still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut jobs = self.jobs();
                for (id, armed) in jobs.iter_mut() {
                    let Some(next) = armed.next else { continue };
                    if next <= now {
                        due.push(Firing {
                            job_id: id.clone(),
                            scheduled: next,
                        });
                        armed.next = armed.schedule.next_after(now.max(next));
                    }
                    if let Some(next) = armed.next {
                        earliest = Some(earliest.map_or(next, |e| e.min(next)));
                    }
                }
            }
            due.sort_by(|a, b| (a.scheduled, &a.job_id).cmp(&(b.scheduled, &b.job_id)));
            for firing in due {
                tracing::info!(job_id = %firing.job_id, scheduled = %backup_core::civil::format_rfc3339(firing.scheduled), "trigger fired");
                if firings.send(firing).await.is_err() {
                    return; // nobody runs jobs any more: shutting down
                }
            }
            let sleep = match earliest {
                Some(next) => (next - self.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = &mut changed => {}
                _ = firings.closed() => return,
            }
        }
    }
}

#[async_trait]
impl TriggerScheduler for LocalScheduler {
    async fn register(&self, job: &JobRecord) -> Result<(), TriggerError> {
        let schedule = job.parsed_schedule().map_err(|e| {
            TriggerError::new(format!("job {} has an invalid schedule: {e}", job.id))
        })?;
        let next = schedule.next_after(self.clock.now());
        self.jobs().insert(job.id.clone(), Armed { schedule, next });
        self.changed.notify_one();
        Ok(())
    }

    async fn remove(&self, job_id: &str) -> Result<(), TriggerError> {
        self.jobs().remove(job_id);
        self.changed.notify_one();
        Ok(())
    }
}
