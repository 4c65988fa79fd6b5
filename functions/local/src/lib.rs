//! The local, embedded mode (SPEC §9): the engine over one SQLite file, the `directory`
//! backup provider and an in-process scheduler, with no AWS account.
//!
//! # Layout
//! - [`sqlite`]: [`SqliteStore`], every store port and the cluster lock in `state.db`.
//! - [`directory`]: [`DirectoryProvider`], atomic, verifiable copies of a data directory,
//!   made through directory descriptors: `directory/walk.rs` (the descriptor-relative walk),
//!   `directory/copy.rs` (sparse copy, hashing, metadata), `directory/manifest.rs`
//!   (`manifest.json` and the checks behind [`directory::verify`]).
//! - [`directory::CommandProvider`]: the `command` provider (SPEC §15), which shares the
//!   directory provider's backup root and manifest; [`command`] runs hooks and commands.
//! - [`catalogue`]: `serve --rebuild-catalogue`, backup records recreated from manifests.
//! - [`policy`]: [`PathPolicy`], where cluster paths may be (SPEC §12 "Cluster paths").
//! - [`scheduler`]: [`LocalScheduler`], the timers that stand in for EventBridge rules.
//! - [`data_dir`]: the exclusive lock on the data directory (and a separate backup root)
//!   and the private modes of what the server keeps there.
//! - this file: [`LocalMode`], which wires them into an [`Engine`] and starts the scheduler.
//!
//! # Decisions
//! - **Files**: `<data-dir>/lock`, `<data-dir>/state.db` (plus SQLite's `-wal`/`-shm`),
//!   `<data-dir>/token` and `<backup-root>/<backup-id>/` (`manifest.json` + `data/`; the
//!   backup root is `<data-dir>/backups` unless `--backup-root` moves it). Directories are
//!   `0700`, files `0600`. One server per data directory, enforced by an OS lock taken before
//!   anything else: only then does start-up mark the runs and backups the previous process
//!   left unfinished as failed/defunct ([`Engine::recover_interrupted`]), finish its
//!   interrupted deletes and remove its partial copies, which is only right because no other
//!   process can be working on them.
//! - **Scheduler**: firings are computed from the injected clock in UTC; missed firings while
//!   the process was down are not caught up (SPEC §9).
//! - **Runs** of scheduled firings are spawned as tasks the engine counts, so a graceful
//!   shutdown can wait for them ([`LocalMode::shutdown`]).

pub mod catalogue;
pub mod command;
pub mod data_dir;
pub mod directory;
pub mod policy;
pub mod scheduler;
pub mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backup_engine::clock::SystemClock;
use backup_engine::ids::RandomIds;
use backup_engine::ports::Clock;
use backup_engine::{Engine, EngineConfig, EngineError, Ports, StoreError};
use data_dir::DirLock;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use directory::{CommandProvider, DirectoryProvider};
pub use policy::PathPolicy;
pub use scheduler::{Firing, LocalScheduler};
pub use sqlite::SqliteStore;

/// The state file inside the data directory.
pub const STATE_FILE: &str = "state.db";
/// The backups directory inside the data directory.
pub const BACKUPS_DIR: &str = "backups";

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Another server holds the data directory or the backup root.
    #[error(transparent)]
    Locked(#[from] data_dir::DirLockError),
    #[error("cannot prepare {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `--backup-root` lies inside a registered cluster's directory.
    #[error(
        "--backup-root {} is inside {}, the directory of cluster {cluster}: its backups would be \
         written into that database's files and copied into every backup of it. Choose a \
         --backup-root outside every cluster's path",
        root.display(),
        path.display()
    )]
    BackupRootInCluster {
        root: PathBuf,
        cluster: String,
        path: PathBuf,
    },
}

/// How to start the local mode.
pub struct LocalOptions {
    pub data_dir: PathBuf,
    /// Where backups go (`serve --backup-root`); `<data-dir>/backups` when `None`.
    pub backup_root: Option<PathBuf>,
    /// Cluster paths must lie inside one of these (`serve --allowed-root`); any path the
    /// policy does not refuse when empty.
    pub allowed_roots: Vec<PathBuf>,
    pub engine: EngineConfig,
    pub clock: Arc<dyn Clock>,
    /// Recreate missing backup records from the manifests at start-up
    /// (`serve --rebuild-catalogue`), before recovery and the scheduler.
    pub rebuild_catalogue: bool,
    /// Read and checksum every file that looks unchanged before linking it from the
    /// cluster's previous backup (`serve --verify-unchanged`).
    pub verify_unchanged: bool,
    /// The algorithm of the checksums new backups record (`serve --checksum`).
    pub checksum: directory::HashAlgorithm,
}

impl LocalOptions {
    /// The defaults: the system clock and the default engine timings.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LocalOptions {
            data_dir: data_dir.into(),
            backup_root: None,
            allowed_roots: Vec::new(),
            engine: EngineConfig::default(),
            clock: Arc::new(SystemClock),
            rebuild_catalogue: false,
            verify_unchanged: false,
            checksum: directory::HashAlgorithm::CURRENT,
        }
    }
}

/// A running local mode: the engine, and the scheduler and runner tasks behind it.
pub struct LocalMode {
    pub engine: Engine,
    pub store: SqliteStore,
    pub scheduler: Arc<LocalScheduler>,
    pub provider: DirectoryProvider,
    /// What `--rebuild-catalogue` did at start-up, when asked.
    pub rebuilt_catalogue: Option<catalogue::Rebuilt>,
    tasks: Vec<JoinHandle<()>>,
    /// The exclusive holds on the data directory (and a separate backup root), released
    /// when the local mode is dropped or the process dies.
    _locks: Vec<DirLock>,
}

impl LocalMode {
    /// Takes the data directory (refusing at once, having touched nothing, when another
    /// server holds it), makes it private, opens the state, recovers from an unclean stop,
    /// arms every active job's trigger and starts the scheduler. Must be called inside a
    /// tokio runtime.
    pub async fn start(options: LocalOptions) -> Result<LocalMode, LocalError> {
        let data_dir = options.data_dir;
        // Before anything else: no recovery or clean-up may run beside another server.
        let mut locks = vec![DirLock::acquire(
            &data_dir,
            data_dir::LOCK_FILE,
            "data directory",
        )?];
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LocalError::Io { path, source }
        };
        let state = data_dir.join(STATE_FILE);
        // The backup root is held too, the default one included: another server given this
        // one's `backups/` as its `--backup-root` would otherwise clean up (delete) the
        // partial backups this one is writing. The directory itself first, so that a
        // refused server creates nothing in it.
        let backups = options
            .backup_root
            .clone()
            .unwrap_or_else(|| data_dir.join(BACKUPS_DIR));
        // SPEC §13: a backup root must be outside every cluster path. Checked before the
        // root is made, so a refused start creates nothing inside a database's directory.
        if options.backup_root.is_some() {
            let state_path = data_dir.join(STATE_FILE);
            if state_path.exists() {
                let root = resolved_as_far_as_it_exists(&backups);
                let clusters = SqliteStore::cluster_paths(&state_path).unwrap_or_else(|error| {
                    // The store's own open reports a damaged database; this check is only
                    // skipped.
                    tracing::warn!(%error, "could not read the clusters to check --backup-root against them");
                    Vec::new()
                });
                for (cluster, path) in clusters {
                    let path = PathBuf::from(path);
                    if !path.as_os_str().is_empty() && root.starts_with(&path) {
                        return Err(LocalError::BackupRootInCluster {
                            root: backups.clone(),
                            cluster,
                            path,
                        });
                    }
                }
            }
        }
        locks.extend(DirLock::hold_dir(&backups, "backup root")?);
        if options.backup_root.is_some() {
            locks.push(DirLock::acquire(
                &backups,
                data_dir::ROOT_LOCK_FILE,
                "backup root",
            )?);
        }
        // What an older version (or a careless hand) left wider, said in one log line.
        let mut tightened = Vec::new();
        if data_dir::tighten_followed(&data_dir, 0o700).map_err(io(&data_dir))? {
            tightened.push(data_dir.display().to_string());
        }
        let mut private = vec![
            (state.clone(), 0o600),
            (data_dir.join(format!("{STATE_FILE}-wal")), 0o600),
            (data_dir.join(format!("{STATE_FILE}-shm")), 0o600),
            (data_dir.join(data_dir::LOCK_FILE), 0o600),
            (data_dir.join(data_dir::TOKEN_FILE), 0o600),
            (backups.join(data_dir::ROOT_LOCK_FILE), 0o600),
        ];
        if data_dir::tighten_followed(&backups, 0o700).map_err(io(&backups))? {
            tightened.push(backups.display().to_string());
        }
        private.extend(data_dir::backups_within(&backups).map_err(io(&backups))?);
        for (path, mode) in private {
            if data_dir::tighten(&path, mode).map_err(io(&path))? {
                tightened.push(path.display().to_string());
            }
        }
        if !tightened.is_empty() {
            // A year of hourly backups is thousands of paths: name the first few.
            const SHOWN: usize = 20;
            let mut paths = tightened[..tightened.len().min(SHOWN)].join(", ");
            if tightened.len() > SHOWN {
                paths.push_str(&format!(" and {} more", tightened.len() - SHOWN));
            }
            tracing::warn!(%paths, count = tightened.len(), "made files an older version left readable by other users private");
        }
        // SQLite creates its file with the process's umask: create it private first (its
        // -wal and -shm files take the database file's mode).
        data_dir::create_private(&state).map_err(io(&state))?;
        let store = SqliteStore::open(&state)?;
        // The policy resolves the backup root, so it must exist (the provider tightens it).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&backups)
            .map_err(io(&backups))?;
        let policy =
            PathPolicy::new(&data_dir, &backups, &options.allowed_roots).map_err(io(&data_dir))?;
        let provider = DirectoryProvider::new(&backups, policy)
            .map_err(io(&backups))?
            .verify_unchanged(options.verify_unchanged)
            .checksum(options.checksum);
        let scheduler = LocalScheduler::new(options.clock.clone());
        let mut rebuilt_catalogue = None;
        let engine = Engine::new(
            Ports {
                store: Arc::new(store.clone()),
                lock: Arc::new(store.clone()),
                providers: vec![
                    Arc::new(provider.clone()),
                    Arc::new(CommandProvider::new(provider.clone())),
                ],
                triggers: scheduler.clone(),
                retired_triggers: Vec::new(),
                clock: options.clock,
                ids: Arc::new(RandomIds::default()),
                // Each group of a run's writes in one transaction (`sqlite/writes.rs`).
                writes: Arc::new(store.clone()),
                // The local mode waits for its backups: nothing settles later.
                pending: None,
                // "Run now" continues in a background task of this server.
                dispatch: None,
            },
            // The one server of this data directory is the only writer of its jobs, so
            // its job lists can be kept between requests (backup_engine::job_list_cache).
            EngineConfig {
                cache_job_lists: true,
                ..options.engine
            },
        );
        if options.rebuild_catalogue {
            let rebuilt = catalogue::rebuild_catalogue(&store, &backups).await?;
            for (id, why) in &rebuilt.skipped {
                tracing::warn!(backup_id = %id, reason = %why, "a backup's record could not be recreated");
            }
            tracing::info!(
                recreated = rebuilt.recreated.len(),
                present = rebuilt.present,
                skipped = rebuilt.skipped.len(),
                "rebuilt the catalogue from the backup root"
            );
            rebuilt_catalogue = Some(rebuilt);
        }
        engine.recover_interrupted().await?;
        let armed = engine.resume_triggers().await?;
        tracing::info!(armed, data_dir = %data_dir.display(), "local mode started");
        let (tx, rx) = mpsc::channel(64);
        let tasks = vec![
            tokio::spawn(scheduler.clone().run(tx)),
            spawn_runner(engine.clone(), rx),
        ];
        Ok(LocalMode {
            engine,
            store,
            scheduler,
            provider,
            rebuilt_catalogue,
            tasks,
            _locks: locks,
        })
    }

    /// The data directory's backups directory.
    pub fn backups_dir(&self) -> &Path {
        self.provider.root()
    }

    /// Stops firing, stops running backups at their next step (each recorded
    /// `interrupted`, its lock released), and waits up to `grace` for them to record that.
    /// A backup still running after that (a worker stuck in a system call) is abandoned;
    /// its lock frees itself when its lease expires and the next start marks it defunct.
    pub async fn shutdown(self, grace: Duration) -> bool {
        for task in &self.tasks {
            task.abort();
        }
        self.engine.stop();
        self.engine.wait_idle(grace).await
    }
}

/// Runs each firing received on `firings` as its own task.
pub fn spawn_runner(engine: Engine, mut firings: mpsc::Receiver<Firing>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(firing) = firings.recv().await {
            let engine = engine.clone();
            let guard = engine.in_flight();
            tokio::spawn(async move {
                let _guard = guard;
                if let Err(error) = engine.run_scheduled(&firing.job_id, firing.scheduled).await {
                    tracing::error!(job_id = %firing.job_id, %error, "scheduled run failed");
                }
            });
        }
    })
}

/// `path` with its longest existing ancestor resolved (links followed) and the rest as
/// written: where a directory about to be created will be.
fn resolved_as_far_as_it_exists(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    loop {
        if let Ok(real) = std::fs::canonicalize(&at) {
            return rest.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}
