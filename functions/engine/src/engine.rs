//! The [`Engine`]: its ports, configuration and background-work bookkeeping, and the
//! checks of request fields. The use cases live in one file each, by area:
//! `engine/jobs.rs` (and history), `engine/clusters.rs` (and operators' locks),
//! `engine/backups.rs` (the catalogue and manual backups), `engine/recovery.rs` (work a
//! stopped process left behind); runs are in [`crate::run`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backup_core::api::{self, RegisterClusterRequest};
use backup_core::cluster;
use backup_core::job::check_cluster_id;
use chrono::{DateTime, DurationRound, Utc};

use crate::error::{EngineError, Problems};
use crate::ids::{is_valid_id, RandomIds};
use crate::model::{ClusterRecord, ClusterServer, Scope};
use crate::ports::{
    BackupProvider, BackupWrites, Clock, ClusterLock, IdGenerator, PendingBackups, RunDispatcher,
    Store, TriggerScheduler,
};
use crate::writes::OneByOne;

mod backups;
mod clusters;
mod jobs;
mod recovery;
mod restore;

pub(crate) use backups::Deletion;
pub use jobs::{NamedCreation, Rearmed, DEFAULT_REARM_PAGE, MAX_REARM_PAGE};
pub use restore::RestoreOutcome;

/// Descriptions of clusters and backups are at most this many characters (SPEC §11).
pub const MAX_DESCRIPTION_CHARS: usize = cluster::MAX_CLUSTER_DESCRIPTION_CHARS;
/// A maintenance operation's name is at most this many characters.
pub const MAX_OPERATION_CHARS: usize = cluster::MAX_OPERATION_CHARS;
/// A directory cluster's path is at most this many characters.
pub const MAX_PATH_CHARS: usize = cluster::MAX_PATH_CHARS;

/// Timings of the engine. The defaults suit the local mode; see the crate docs for why.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a run's or manual backup's lock lasts unless renewed.
    pub lease: Duration,
    /// How often a holder renews its lease while it works (a third of the lease by default,
    /// so two renewals can fail before the lease runs out).
    pub renew_every: Duration,
    /// How often a provider is asked whether a backup is available yet.
    pub poll_interval: Duration,
    /// How long a run waits for its backup to become available before calling it failed.
    pub max_backup_wait: Duration,
    /// An operator's maintenance lock lasts this long when the request names no TTL.
    pub default_maintenance_ttl: Duration,
    /// `Some(timeout)`: a backup that its provider continues outside the call
    /// ([`Creation::Pending`](crate::Creation::Pending), EBS snapshots) is not waited for.
    /// The run records it pending, extends its lock to `timeout` from the start, and
    /// returns; a provider notification or the sweeper settles it, and fails it past the
    /// timeout (SPEC §16, `SNAPSHOT_TIMEOUT` on AWS). Needs [`Ports::pending`]. `None` (the
    /// local mode): the run waits, within its lease, up to `max_backup_wait`.
    pub settle_later: Option<Duration>,
    /// The longest maintenance lock an operator may take.
    pub max_maintenance_ttl: Duration,
    /// A backup whose provider reports no progress for this long is abandoned with
    /// `provider_stalled` and its lock released (SPEC §13, `serve --stall-seconds`).
    pub stall_after: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::with_lease(Duration::from_secs(60))
    }
}

impl EngineConfig {
    /// The default timings with another lease, renewed every third of it.
    pub fn with_lease(lease: Duration) -> Self {
        let lease = lease.max(Duration::from_millis(30));
        EngineConfig {
            lease,
            renew_every: lease / 3,
            poll_interval: Duration::from_secs(2),
            max_backup_wait: Duration::from_secs(6 * 3600),
            settle_later: None,
            default_maintenance_ttl: Duration::from_secs(30 * 60),
            max_maintenance_ttl: Duration::from_secs(7 * 24 * 3600),
            stall_after: Duration::from_secs(60),
        }
    }
}

/// The adapters an engine runs on.
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub lock: Arc<dyn ClusterLock>,
    /// One per cluster `provider` kind this deployment can back up.
    pub providers: Vec<Arc<dyn BackupProvider>>,
    pub triggers: Arc<dyn TriggerScheduler>,
    /// The trigger schedulers of the kinds this deployment no longer arms, whose triggers
    /// jobs may still have (an AWS stack whose `Trigger` changed: EventBridge rules when it
    /// now makes Scheduler schedules, and the other way round). [`Engine::rearm_jobs`]
    /// removes a job's triggers from each once `triggers` has armed it, and deleting a job
    /// removes them too. Empty where there is one kind (the local mode).
    pub retired_triggers: Vec<Arc<dyn TriggerScheduler>>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// A run's grouped writes: the adapter's batched form, or
    /// [`OneByOne`](crate::writes::OneByOne) over `store` and `lock`.
    pub writes: Arc<dyn BackupWrites>,
    /// Where backups that settle later are kept: needed with
    /// [`EngineConfig::settle_later`], `None` for a deployment that waits for its backups.
    pub pending: Option<Arc<dyn PendingBackups>>,
    /// Where "run now" sends its run (SPEC §16), recorded `queued`; `None`: the run
    /// continues in a background task of this process.
    pub dispatch: Option<Arc<dyn RunDispatcher>>,
}

impl Ports {
    /// The ports of a deployment whose one store is also its lock and makes a run's writes
    /// call by call ([`OneByOne`]: SQLite, the in-memory store), with random ids.
    pub fn one_store<S: Store + ClusterLock + 'static>(
        store: S,
        providers: Vec<Arc<dyn BackupProvider>>,
        triggers: Arc<dyn TriggerScheduler>,
        clock: Arc<dyn Clock>,
    ) -> Ports {
        let store = Arc::new(store);
        Ports {
            store: store.clone(),
            lock: store.clone(),
            providers,
            triggers,
            retired_triggers: Vec::new(),
            clock,
            ids: Arc::new(RandomIds::default()),
            writes: Arc::new(OneByOne::over(store)),
            pending: None,
            dispatch: None,
        }
    }
}

/// The use cases. Cheap to clone: clones share the adapters.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) lock: Arc<dyn ClusterLock>,
    pub(crate) writes: Arc<dyn BackupWrites>,
    pub(crate) pending: Option<Arc<dyn PendingBackups>>,
    pub(crate) dispatch: Option<Arc<dyn RunDispatcher>>,
    pub(crate) providers: HashMap<&'static str, Arc<dyn BackupProvider>>,
    pub(crate) triggers: Arc<dyn TriggerScheduler>,
    pub(crate) retired_triggers: Vec<Arc<dyn TriggerScheduler>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGenerator>,
    pub(crate) config: EngineConfig,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
    /// `true` once the server is stopping: running backups stop at their next chunk.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// This process's counters of runs (SPEC §17 `/metrics`).
    pub(crate) metrics: crate::metrics::RunMetrics,
    /// Who else listens to runs ([`Engine::add_run_observer`]).
    pub(crate) observers: std::sync::RwLock<Vec<Arc<dyn crate::metrics::RunObserver>>>,
}

/// Counts a background task (a manual backup, a run started by "run now") until dropped, so
/// a server can wait for them before it exits.
pub struct InFlightGuard(Arc<Inner>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Engine {
    pub fn new(ports: Ports, config: EngineConfig) -> Engine {
        let providers = ports.providers.into_iter().map(|p| (p.kind(), p)).collect();
        Engine {
            inner: Arc::new(Inner {
                store: ports.store,
                lock: ports.lock,
                writes: ports.writes,
                pending: ports.pending,
                dispatch: ports.dispatch,
                providers,
                triggers: ports.triggers,
                retired_triggers: ports.retired_triggers,
                clock: ports.clock,
                ids: ports.ids,
                config,
                in_flight: AtomicUsize::new(0),
                idle: tokio::sync::Notify::new(),
                stopping: tokio::sync::watch::Sender::new(false),
                metrics: crate::metrics::RunMetrics::default(),
                observers: std::sync::RwLock::new(Vec::new()),
            }),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The clock's instant, to the millisecond: every store keeps milliseconds, so an
    /// instant read back equals the one written.
    pub fn now(&self) -> DateTime<Utc> {
        let now = self.inner.clock.now();
        now.duration_trunc(chrono::Duration::milliseconds(1))
            .unwrap_or(now)
    }

    /// Counts a background task until the guard drops ([`Engine::wait_idle`] waits for it).
    pub fn in_flight(&self) -> InFlightGuard {
        self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlightGuard(self.inner.clone())
    }

    /// How many background backups are running.
    pub fn busy(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Stops every running backup at its next step (SPEC §13, `SIGTERM`): each is recorded
    /// failed with `interrupted`, its backup `defunct`, its lock released. Then
    /// [`Engine::wait_idle`] sees them end.
    pub fn stop(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Waits until no background backup runs, or `timeout` passes; `true` when idle.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.idle.notified();
                if self.busy() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    pub(crate) fn provider(&self, kind: &str) -> Option<Arc<dyn BackupProvider>> {
        self.inner.providers.get(kind).cloned()
    }

    pub(crate) fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.inner.config.lease).unwrap_or(chrono::Duration::MAX)
    }
}

fn job_id_message(id: &str) -> Result<(), String> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an id: ids are 20 characters of 0-9 and a-v, such as c196ogto0aeqohe3ommq.",
            shorten(id)
        ))
    }
}

/// Engine-made ids (jobs, backups, runs) have one shape; anything else is invalid input.
pub(crate) fn check_job_id(field: &str, id: &str) -> Result<(), EngineError> {
    job_id_message(id).map_err(|m| EngineError::invalid(field, m))
}

/// A cluster id (the core's rule) in `field`, its codes kept.
fn check_cluster_field(field: &str, id: &str) -> Result<(), EngineError> {
    let mut problems = Problems::default();
    problems.take(field, check_cluster_id(Some(id)));
    problems.into_result()
}

/// At most 40 characters of user input, for quoting it back in a message.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// The core's checks of a registration (SPEC §7), as the record to store. The provider's
/// own checks of the target (the path policy) follow in [`Engine::register_cluster`].
fn validate_cluster(
    scope: &Scope,
    request: &RegisterClusterRequest,
    now: DateTime<Utc>,
) -> Result<ClusterRecord, EngineError> {
    let valid = cluster::validate_cluster(request).map_err(EngineError::from_problems)?;
    Ok(ClusterRecord {
        id: request.id.clone(),
        scope: scope.clone(),
        description: request.description.clone(),
        region: valid.region,
        target: request.target.clone(),
        server: ClusterServer {
            version: request.server_version.clone(),
            version_tag: request.server_version_tag.clone(),
            node_count: request.node_count.unwrap_or(api::DEFAULT_NODE_COUNT),
        },
        created: now,
        status: api::ClusterStatus::Available,
        details: None,
        source_backup_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("default", "default").unwrap()
    }

    fn directory(id: &str, path: &str) -> RegisterClusterRequest {
        crate::requests::directory_cluster(id, "Orders", path)
    }

    // The rules of cluster registrations and operator locks, and their tests, live in
    // `backup_core::cluster`; this checks that the engine keeps their codes.
    #[test]
    fn a_refused_registration_keeps_the_cores_codes() {
        let err = validate_cluster(&scope(), &directory("a b", "data"), Utc::now()).unwrap_err();
        let fields = err.fields();
        assert!(fields.contains_key("id"), "{fields:?}");
        assert!(fields["path"].contains("absolute"), "{fields:?}");
        let problems = err.problems();
        assert_eq!(problems["id"][0].code, "invalid_value");
        assert_eq!(problems["path"][0].code, "not_absolute");
        assert_eq!(problems["path"][0].message, fields["path"]);
        let ok = validate_cluster(&scope(), &directory("c1", "/var/lib/db"), Utc::now()).unwrap();
        assert_eq!(ok.region, "local");
    }

    #[test]
    fn scope_ids_are_checked() {
        assert!(Scope::new("default", "default").is_ok());
        let err = Scope::new("", "a/b").unwrap_err();
        assert_eq!(err.fields().len(), 2);
    }
}
