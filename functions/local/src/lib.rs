//! The local, embedded mode (SPEC §9): the engine over one SQLite file, the `directory`
//! backup provider and an in-process scheduler, with no AWS account.
//!
//! # Layout
//! - [`sqlite`]: [`SqliteStore`], every store port and the cluster lock in `state.db`.
//! - [`directory`]: [`DirectoryProvider`], atomic, verifiable copies of a data directory.
//! - [`scheduler`]: [`LocalScheduler`], the timers that stand in for EventBridge rules.
//! - this file: [`LocalMode`], which wires them into an [`Engine`] and starts the scheduler.
//!
//! # Decisions
//! - **Files**: `<data-dir>/state.db` (plus SQLite's `-wal`/`-shm`) and
//!   `<data-dir>/backups/<backup-id>/` (`manifest.json` + `data/`). One server per data
//!   directory: at start-up it marks the runs and backups the previous process left
//!   unfinished as failed/defunct ([`Engine::recover_interrupted`]), which is only right if
//!   no other process is working on them.
//! - **Scheduler**: firings are computed from the injected clock in UTC; missed firings while
//!   the process was down are not caught up (SPEC §9).
//! - **Runs** of scheduled firings are spawned as tasks the engine counts, so a graceful
//!   shutdown can wait for them ([`LocalMode::shutdown`]).

pub mod directory;
pub mod scheduler;
pub mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backup_engine::clock::SystemClock;
use backup_engine::ids::RandomIds;
use backup_engine::ports::Clock;
use backup_engine::{Engine, EngineConfig, EngineError, Ports, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use directory::DirectoryProvider;
pub use scheduler::{Firing, LocalScheduler};
pub use sqlite::SqliteStore;

/// The state file inside the data directory.
pub const STATE_FILE: &str = "state.db";
/// The backups directory inside the data directory.
pub const BACKUPS_DIR: &str = "backups";

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
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
}

/// How to start the local mode.
pub struct LocalOptions {
    pub data_dir: PathBuf,
    pub engine: EngineConfig,
    pub clock: Arc<dyn Clock>,
}

impl LocalOptions {
    /// The defaults: the system clock and the default engine timings.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        LocalOptions {
            data_dir: data_dir.into(),
            engine: EngineConfig::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// A running local mode: the engine, and the scheduler and runner tasks behind it.
pub struct LocalMode {
    pub engine: Engine,
    pub store: SqliteStore,
    pub scheduler: Arc<LocalScheduler>,
    pub provider: DirectoryProvider,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalMode {
    /// Opens (or creates) the data directory, recovers from an unclean stop, arms every
    /// active job's trigger and starts the scheduler. Must be called inside a tokio runtime.
    pub async fn start(options: LocalOptions) -> Result<LocalMode, LocalError> {
        let data_dir = options.data_dir;
        std::fs::create_dir_all(&data_dir).map_err(|source| LocalError::Io {
            path: data_dir.clone(),
            source,
        })?;
        let store = SqliteStore::open(&data_dir.join(STATE_FILE))?;
        let backups = data_dir.join(BACKUPS_DIR);
        let provider = DirectoryProvider::new(&backups).map_err(|source| LocalError::Io {
            path: backups.clone(),
            source,
        })?;
        let scheduler = LocalScheduler::new(options.clock.clone());
        let engine = Engine::new(
            Ports {
                store: Arc::new(store.clone()),
                lock: Arc::new(store.clone()),
                providers: vec![Arc::new(provider.clone())],
                triggers: scheduler.clone(),
                clock: options.clock,
                ids: Arc::new(RandomIds::default()),
                writes: None,
            },
            options.engine,
        );
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
            tasks,
        })
    }

    /// The data directory's backups directory.
    pub fn backups_dir(&self) -> &Path {
        self.provider.root()
    }

    /// Stops firing, then waits up to `grace` for running backups to finish. A backup still
    /// running after that is abandoned; its lock frees itself when its lease expires and the
    /// next start marks it defunct.
    pub async fn shutdown(self, grace: Duration) -> bool {
        for task in &self.tasks {
            task.abort();
        }
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
