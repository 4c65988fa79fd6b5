//! `backupctl serve`: the local server (SPEC §9): the HTTP API, the web form and the
//! scheduler in one process, with state in `<data-dir>/state.db` and backups in
//! `<data-dir>/backups/`.
//!
//! - The first line on stdout is `listening on http://ADDR`, with the port actually bound,
//!   so `--listen 127.0.0.1:0` works for tests and scripts. Logs go to stderr (`RUST_LOG`,
//!   default `info`).
//! - `--lease-seconds` / `BACKUPCTL_LEASE_SECONDS` (default 60, renewed every third): how long
//!   a crashed server's locks last.
//! - `--web-dir` / `BACKUPCTL_WEB_DIR`: the built form; by default `wasm/web` under the
//!   current directory, else the workspace that holds the executable
//!   (`target/<profile>/backupctl` → `../../wasm/web`), else `web/` beside the executable.
//!   Without one, `/` says the form is not built and how to build it.
//! - `--cors-origin` / `BACKUPCTL_CORS_ORIGINS`: origins (exact, no wildcard) whose web
//!   pages may call the API; none by default.
//! - `--store dynamodb --table T --scheduler eventbridge`: the AWS deployment's engine
//!   (DynamoDB store and lock, EventBridge rules invoking `RUNNER_FUNCTION_ARN`, prefix
//!   `RULE_PREFIX`, EBS provider) instead of the local mode; the SDK's variables (region,
//!   credentials, `AWS_ENDPOINT_URL`) configure the clients.
//! - SIGINT or SIGTERM stop accepting requests and firing jobs, then wait up to 30 s for
//!   running backups to finish.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backup_engine::EngineConfig;
use backup_local::{LocalMode, LocalOptions};
use tracing_subscriber::EnvFilter;

use crate::cli::{SchedulerKind, ServeArgs, StoreKind};

/// How long a stopping server waits for running backups.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal (and never with NO_COLOR), not in log files.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let origins = args
        .cors_origins
        .iter()
        .map(|o| backup_api::parse_origin(o.trim()))
        .collect::<Result<Vec<_>, _>>()
        .context("--cors-origin / BACKUPCTL_CORS_ORIGINS")?;
    let engine_config = EngineConfig::with_lease(Duration::from_secs(args.lease_seconds));
    let backend = match (args.store, args.scheduler) {
        (StoreKind::Sqlite, SchedulerKind::Local) => {
            let mut options = LocalOptions::new(&args.data_dir);
            options.engine = engine_config;
            Backend::Local(LocalMode::start(options).await.with_context(|| {
                format!("cannot open the data directory {}", args.data_dir.display())
            })?)
        }
        (StoreKind::Dynamodb, SchedulerKind::Eventbridge) => {
            // The AWS deployment's engine (as jobs-api runs it): TABLE_NAME from --table,
            // RUNNER_FUNCTION_ARN and RULE_PREFIX from the environment, SDK clients from the
            // SDK's own variables (AWS_ENDPOINT_URL included).
            let table = args.table.clone();
            let settings = backup_aws::AwsSettings::from_lookup(|name| match name {
                "TABLE_NAME" => table.clone(),
                other => std::env::var(other).ok(),
            })
            .context("--store dynamodb needs --table (or TABLE_NAME)")?;
            let sdk = backup_aws::sdk_config().await;
            let engine = backup_aws::engine(
                &settings,
                &sdk,
                backup_aws::Triggers::EventBridge,
                engine_config,
            )
            .context("--scheduler eventbridge needs RUNNER_FUNCTION_ARN")?;
            tracing::info!(table = %settings.table_name, rule_prefix = %settings.rule_prefix, "state in DynamoDB, jobs fired by EventBridge rules");
            Backend::Aws(engine)
        }
        _ => anyhow::bail!(
            "--store dynamodb goes with --scheduler eventbridge, and --store sqlite with --scheduler local"
        ),
    };
    let web_dir = args.web_dir.clone().or_else(default_web_dir);
    match &web_dir {
        Some(dir) if dir.is_dir() => {
            tracing::info!(web_dir = %dir.display(), "serving the web form")
        }
        Some(dir) => {
            tracing::warn!(web_dir = %dir.display(), "the web form directory does not exist; `/` explains how to build it")
        }
        None => tracing::info!("the web form is not built; `/` explains how to build it"),
    }
    let app = backup_api::with_cors(
        backup_api::router_with_web(
            backup_api::router(Arc::new(backend.engine().clone())),
            web_dir.as_deref(),
        ),
        origins,
    );
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{address}")?;
        stdout.flush()?;
    }
    tracing::info!(%address, data_dir = %args.data_dir.display(), lease_seconds = args.lease_seconds, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("stopping: waiting for running backups");
    if !backend.shutdown(SHUTDOWN_GRACE).await {
        tracing::warn!("backups still running were abandoned; the next start marks them defunct");
    }
    Ok(ExitCode::SUCCESS)
}

/// The engine `serve` runs: local mode (SQLite, in-process scheduler) or the AWS adapters
/// (DynamoDB, EventBridge rules).
enum Backend {
    Local(LocalMode),
    Aws(backup_engine::Engine),
}

impl Backend {
    fn engine(&self) -> &backup_engine::Engine {
        match self {
            Backend::Local(local) => &local.engine,
            Backend::Aws(engine) => engine,
        }
    }

    async fn shutdown(self, grace: Duration) -> bool {
        match self {
            Backend::Local(local) => local.shutdown(grace).await,
            Backend::Aws(engine) => engine.wait_idle(grace).await,
        }
    }
}

/// `wasm/web` under the current directory, or in the workspace holding the executable, or
/// `web/` beside the executable: the first that holds an `index.html`.
fn default_web_dir() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("wasm/web")];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            // target/<profile>/backupctl → <workspace>/wasm/web
            if let Some(workspace) = dir.parent().and_then(Path::parent) {
                candidates.push(workspace.join("wasm").join("web"));
            }
            candidates.push(dir.join("web"));
        }
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("index.html").is_file())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested");
}
