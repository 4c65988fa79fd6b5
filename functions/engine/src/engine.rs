//! The [`Engine`]: its ports, configuration and background-work bookkeeping, and the
//! checks of request fields. The use cases live in one file each, by area:
//! `engine/jobs.rs` (and history), `engine/clusters.rs` (and operators' locks),
//! `engine/backups.rs` (the catalogue and manual backups), `engine/recovery.rs` (work a
//! stopped process left behind); runs are in [`crate::run`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backup_core::api::{ClusterTarget, RegisterClusterRequest};
use backup_core::job::check_cluster_id;
use chrono::{DateTime, DurationRound, Utc};

use crate::error::{EngineError, Problems};
use crate::ids::is_valid_id;
use crate::model::{ClusterRecord, Scope, OPERATION_MANUAL, OPERATION_SCHEDULED};
use crate::ports::{
    BackupProvider, BackupWrites, Clock, ClusterLock, IdGenerator, Store, TriggerScheduler,
};

mod backups;
mod clusters;
mod jobs;
mod recovery;

pub(crate) use backups::Deletion;

/// Descriptions of clusters and backups are at most this many characters (SPEC §11).
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// A maintenance operation's name is at most this many characters.
pub const MAX_OPERATION_CHARS: usize = 64;
/// A directory cluster's path is at most this many characters.
pub const MAX_PATH_CHARS: usize = 4096;

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
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// A run's grouped writes: the adapter's batched form, or
    /// [`OneByOne`](crate::writes::OneByOne) over `store` and `lock`.
    pub writes: Arc<dyn BackupWrites>,
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
    pub(crate) providers: HashMap<&'static str, Arc<dyn BackupProvider>>,
    pub(crate) triggers: Arc<dyn TriggerScheduler>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGenerator>,
    pub(crate) config: EngineConfig,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
    /// `true` once the server is stopping: running backups stop at their next chunk.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
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
                providers,
                triggers: ports.triggers,
                clock: ports.clock,
                ids: ports.ids,
                config,
                in_flight: AtomicUsize::new(0),
                idle: tokio::sync::Notify::new(),
                stopping: tokio::sync::watch::Sender::new(false),
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

fn cluster_id_message(id: &str) -> Result<(), String> {
    check_cluster_id(Some(id)).map(|_| ()).map_err(|e| {
        e.iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn check_cluster_field(field: &str, id: &str) -> Result<(), EngineError> {
    cluster_id_message(id).map_err(|m| EngineError::invalid(field, m))
}

/// At most 40 characters of user input, for quoting it back in a message.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn check_description(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if text.trim().is_empty() {
        Err("Give a description, such as \"Orders database\".".to_owned())
    } else if n > MAX_DESCRIPTION_CHARS {
        Err(format!(
            "A description is at most {MAX_DESCRIPTION_CHARS} characters; this one has {n}."
        ))
    } else {
        Ok(())
    }
}

fn check_operation(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if n == 0 || n > MAX_OPERATION_CHARS {
        return Err(format!(
            "Name the operation in 1 to {MAX_OPERATION_CHARS} characters, such as expand-disk."
        ));
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(
            "An operation name may contain only ASCII letters, digits, -, _ and ., such as expand-disk."
                .to_owned(),
        );
    }
    if text == OPERATION_SCHEDULED || text == OPERATION_MANUAL {
        return Err(format!(
            "`{text}` is the name backups use for their own locks; name the maintenance, such as expand-disk."
        ));
    }
    Ok(())
}

fn validate_cluster(
    scope: &Scope,
    request: &RegisterClusterRequest,
    now: DateTime<Utc>,
) -> Result<ClusterRecord, EngineError> {
    let mut problems = Problems::default();
    problems.check("id", cluster_id_message(&request.id));
    problems.check("description", check_description(&request.description));
    let region = match &request.target {
        ClusterTarget::Directory { path } => {
            let n = path.chars().count();
            if path.trim().is_empty() {
                problems.add(
                    "path",
                    "Give the cluster's data directory, such as /var/lib/db.",
                );
            } else if n > MAX_PATH_CHARS {
                problems.add(
                    "path",
                    format!("A path is at most {MAX_PATH_CHARS} characters."),
                );
            } else if path.contains('\0') || !Path::new(path).is_absolute() {
                problems.add(
                    "path",
                    format!(
                        "Give the data directory as an absolute path (starting with /); `{}` is not.",
                        shorten(path)
                    ),
                );
            }
            match request.region.as_deref() {
                None | Some("local") => "local".to_owned(),
                Some(_) => {
                    problems.add(
                        "region",
                        "A directory cluster's region is `local`; leave it out.",
                    );
                    String::new()
                }
            }
        }
        ClusterTarget::AwsEbs {
            volume_ids,
            instance_tag,
        } => {
            let region = request.region.clone().unwrap_or_default();
            let region_ok = (1..=32).contains(&region.len())
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !region_ok {
                problems.add(
                    "region",
                    "Give the AWS region of the volumes, such as eu-west-1.",
                );
            }
            match (volume_ids.is_empty(), instance_tag) {
                (true, None) | (false, Some(_)) => problems.add(
                    "volumeIds",
                    "Name the volumes either by volume ids or by one instance tag KEY=VALUE, not both.",
                ),
                (false, None) => {
                    if volume_ids.len() > 64 {
                        problems.add("volumeIds", "Name at most 64 volumes.");
                    }
                    for v in volume_ids {
                        let hex = v.strip_prefix("vol-").unwrap_or("");
                        if !(8..=17).contains(&hex.len())
                            || !hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                        {
                            problems.add(
                                "volumeIds",
                                format!("`{}` is not an EBS volume id such as vol-0abc123def4567890.", shorten(v)),
                            );
                        }
                    }
                }
                (true, Some(tag)) => {
                    let ok = tag.chars().count() <= 256
                        && tag.split_once('=').is_some_and(|(k, _)| !k.trim().is_empty());
                    if !ok {
                        problems.add(
                            "instanceTag",
                            "Give the instance tag as KEY=VALUE (at most 256 characters), such as cluster=orders.",
                        );
                    }
                }
            }
            region
        }
    };
    problems.into_result()?;
    Ok(ClusterRecord {
        id: request.id.clone(),
        scope: scope.clone(),
        description: request.description.clone(),
        region,
        target: request.target.clone(),
        created: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("default", "default").unwrap()
    }

    fn directory(id: &str, path: &str) -> RegisterClusterRequest {
        RegisterClusterRequest {
            id: id.to_owned(),
            description: "Orders".to_owned(),
            region: None,
            target: ClusterTarget::Directory {
                path: path.to_owned(),
            },
        }
    }

    #[test]
    fn a_directory_cluster_needs_an_absolute_path_and_gets_region_local() {
        // GIVEN a valid registration WHEN validated THEN the region is local
        let ok = validate_cluster(&scope(), &directory("c1", "/var/lib/db"), Utc::now()).unwrap();
        assert_eq!(ok.region, "local");
        // GIVEN a relative path and a bad id WHEN validated THEN both fields are reported
        let err = validate_cluster(&scope(), &directory("a b", "data"), Utc::now()).unwrap_err();
        let fields = err.fields();
        assert!(fields.contains_key("id"), "{fields:?}");
        assert!(fields["path"].contains("absolute"), "{fields:?}");
    }

    #[test]
    fn an_ebs_cluster_names_volumes_or_a_tag_not_both() {
        let mut req = RegisterClusterRequest {
            id: "c2".into(),
            description: "EBS".into(),
            region: Some("eu-west-1".into()),
            target: ClusterTarget::AwsEbs {
                volume_ids: vec!["vol-0abc123def4567890".into()],
                instance_tag: None,
            },
        };
        assert!(validate_cluster(&scope(), &req, Utc::now()).is_ok());
        req.target = ClusterTarget::AwsEbs {
            volume_ids: vec!["vol-0abc123def4567890".into()],
            instance_tag: Some("a=b".into()),
        };
        let err = validate_cluster(&scope(), &req, Utc::now()).unwrap_err();
        assert!(err.fields().contains_key("volumeIds"));
        req.target = ClusterTarget::AwsEbs {
            volume_ids: vec![],
            instance_tag: Some("cluster=orders".into()),
        };
        req.region = None;
        let err = validate_cluster(&scope(), &req, Utc::now()).unwrap_err();
        assert_eq!(err.fields().keys().collect::<Vec<_>>(), ["region"]);
    }

    #[test]
    fn operations_reserved_for_backups_cannot_be_taken_by_hand() {
        assert!(check_operation("expand-disk").is_ok());
        for bad in [
            "",
            "scheduled-backup",
            "manual-backup",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(check_operation(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_ids_are_checked() {
        assert!(Scope::new("default", "default").is_ok());
        let err = Scope::new("", "a/b").unwrap_err();
        assert_eq!(err.fields().len(), 2);
    }
}
