//! `backupctl serve`: the local server (SPEC §9): the HTTP API, the web form and the
//! scheduler in one process, with state in `<data-dir>/state.db` and backups in
//! `<data-dir>/backups/`.
//!
//! - The first line on stdout is `listening on http://ADDR`, with the port actually bound,
//!   so `--listen 127.0.0.1:0` works for tests and scripts. Logs go to stderr (`RUST_LOG`,
//!   default `info`), as text (coloured only at a terminal without `NO_COLOR`) or, with
//!   `--log-format json`, one JSON object per line.
//! - `--lease-seconds` / `BACKUPCTL_LEASE_SECONDS` (default 60, renewed every third): how long
//!   a crashed server's locks last.
//! - `--web-dir` / `BACKUPCTL_WEB_DIR`: the built form; by default `wasm/web` under the
//!   current directory, else the workspace that holds the executable
//!   (`target/<profile>/backupctl` → `../../wasm/web`), else `web/` beside the executable.
//!   Without one, `/` says the form is not built and how to build it.
//! - `--cors-origin` / `BACKUPCTL_CORS_ORIGINS`: origins (exact, no wildcard) whose web
//!   pages may call the API; none by default.
//! - Access (SPEC §12, in `guard`, `token` and `listener`): the second line on stdout is
//!   `sign in: http://ADDR/#token=…` (the token of `<data-dir>/token`; absent with
//!   `--auth none`); `--auth`, `--jwt-public-key`, `--public-host`; header, body and idle
//!   timeouts, and the open-file limit raised to its hard limit.
//! - `--store dynamodb --table T --scheduler eventbridge`: the AWS deployment's engine
//!   (DynamoDB store and lock, EventBridge rules invoking `RUNNER_FUNCTION_ARN`, prefix
//!   `RULE_PREFIX`, EBS provider) instead of the local mode; the SDK's variables (region,
//!   credentials, `AWS_ENDPOINT_URL`) configure the clients. `--scheduler
//!   eventbridge-scheduler` makes EventBridge Scheduler schedules instead (group
//!   `<RULE_PREFIX>jobs`, invoking the runner as `SCHEDULER_ROLE_ARN`).
//! - `--allow-commands` lets `command` clusters and hooks run their shell commands (SPEC
//!   §15); without it they cannot be registered and their runs fail. With `--store
//!   dynamodb` they are refused whatever the flag says, as on AWS.
//! - `--rebuild-catalogue` recreates missing backup records from the manifests under the
//!   backup root before anything else runs, prints `rebuilt the catalogue: N backups
//!   recreated, …` as the line after the sign-in URL, and then serves as usual (one start
//!   both repairs and serves, so an operator does not have to start the server twice).
//! - SIGINT or SIGTERM stop accepting requests and firing jobs, then wait up to 30 s for
//!   running backups to finish.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backup_engine::EngineConfig;
use backup_local::directory::HashAlgorithm;
use backup_local::{LocalMode, LocalOptions};
use tracing_subscriber::EnvFilter;

use crate::cli::{Checksum, LogFormat, SchedulerKind, ServeArgs, StoreKind};

/// How long a stopping server waits for running backups to record that they were stopped
/// (SPEC §13: a `SIGTERM` ends the process within 10 s, which this, the listener's
/// `DRAIN_LIMIT` before it and [`RUNTIME_GRACE`] after it share). Backups stop at their next
/// chunk, so this is only ever reached by a worker stuck in a system call, which is
/// abandoned.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(6);
/// How long the runtime then waits for abandoned blocking workers before the process exits.
const RUNTIME_GRACE: Duration = Duration::from_secs(1);

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Everything the server creates is private unless it says otherwise (SPEC §12).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let result = runtime.block_on(serve(args));
    // A worker stuck in a system call (a hung mount) must not keep the process alive.
    runtime.shutdown_timeout(RUNTIME_GRACE);
    result
}

/// Logs on stderr, filtered by `RUST_LOG` (default `info`): text, or one JSON object per
/// line (`{"timestamp", "level", "fields": {"message", …}, "target"}`) for a collector.
fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match format {
        // Colours only for a person at a terminal (and never with NO_COLOR), not in log files.
        LogFormat::Text => builder
            .with_ansi(
                std::io::IsTerminal::is_terminal(&std::io::stderr())
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            )
            .init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // SPEC §12: refuse `--auth none` off loopback before touching anything.
    crate::guard::check_auth_mode(&args)?;
    let origins = args
        .cors_origins
        .iter()
        .map(|o| backup_api::parse_origin(o.trim()))
        .collect::<Result<Vec<_>, _>>()
        .context("--cors-origin / BACKUPCTL_CORS_ORIGINS")?;
    // Every flag that can be wrong is checked before the data directory is created or
    // opened, so a mistyped command line leaves nothing behind (SPEC §11).
    crate::guard::check_jwt_key(&args)?;
    check_allowed_roots(&args.allowed_roots)?;
    check_listen(&args.listen).await?;
    let mut engine_config = EngineConfig::with_lease(Duration::from_secs(args.lease_seconds));
    engine_config.stall_after = Duration::from_secs(args.stall_seconds);
    engine_config.commands = if args.allow_commands {
        tracing::warn!("--allow-commands: command clusters and hooks run shell commands with this server's rights");
        backup_engine::CommandPolicy::Allowed
    } else {
        backup_engine::CommandPolicy::NeedsFlag
    };
    let backend = match (args.store, args.scheduler) {
        (StoreKind::Sqlite, SchedulerKind::Local) => {
            let mut options = LocalOptions::new(&args.data_dir);
            options.engine = engine_config;
            options.backup_root = args.backup_root.clone();
            options.allowed_roots = args.allowed_roots.clone();
            options.rebuild_catalogue = args.rebuild_catalogue;
            options.verify_unchanged = args.verify_unchanged;
            options.checksum = match args.checksum {
                Checksum::Blake3 => HashAlgorithm::Blake3,
                Checksum::Sha256 => HashAlgorithm::Sha256,
            };
            Backend::Local(LocalMode::start(options).await.with_context(|| {
                format!("cannot open the data directory {}", args.data_dir.display())
            })?)
        }
        (StoreKind::Dynamodb, SchedulerKind::Eventbridge | SchedulerKind::EventbridgeScheduler) => {
            Backend::Aws(aws_engine(&args, engine_config).await?)
        }
        _ => anyhow::bail!(
            "--store dynamodb goes with --scheduler eventbridge or eventbridge-scheduler, and \
             --store sqlite with --scheduler local"
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
    // SPEC §12: the guard (Host, Origin, credential, media type) wraps the API and the web
    // pages; CORS sits outside it so preflights are answered without a credential.
    let security = crate::guard::setup(&args)?;
    let app = backup_api::with_cors(
        backup_api::router_with_web(
            backup_api::router(Arc::new(backend.engine().clone())),
            web_dir.as_deref(),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&security.guard),
            crate::guard::guard,
        )),
        origins,
    )
    .layer(axum::middleware::from_fn_with_state(
        Arc::clone(&security.guard),
        crate::guard::host_guard,
    ));
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
        if let Some(token) = &security.token {
            writeln!(
                stdout,
                "sign in: http://{}/#token={token}",
                sign_in_address(address)
            )?;
        }
        if let Some(rebuilt) = backend.rebuilt_catalogue() {
            writeln!(
                stdout,
                "rebuilt the catalogue: {} backups recreated, {} already recorded, {} skipped",
                rebuilt.recreated.len(),
                rebuilt.present,
                rebuilt.skipped.len()
            )?;
        }
        stdout.flush()?;
    }
    // The sign-in URL carries the token: it goes to stdout, the operator's terminal, and
    // never to the log, which a collector may ship elsewhere.
    if security.token.is_some() {
        tracing::info!("the sign-in URL (with the API token) is on standard output");
    }
    tracing::info!(%address, data_dir = %args.data_dir.display(), lease_seconds = args.lease_seconds, "serving");
    // SPEC §12 slow clients: our own accept loop (header, body and idle timeouts).
    crate::listener::raise_open_file_limit();
    // At the signal the engine stops at once: running copies end at their next chunk
    // (recorded `interrupted`), so a request waiting on one (a manual backup's `?wait=`, a
    // restore) is answered and the drain below takes moments, not its 2 s limit (SPEC §13:
    // exit within 10 s).
    let stopper = backend.engine().clone();
    let signal = async move {
        shutdown_signal().await;
        stopper.stop();
    };
    crate::listener::serve(listener, app, crate::listener::Timeouts::from_env(), signal).await;
    tracing::info!("stopping: waiting for running backups");
    if !backend.shutdown(SHUTDOWN_GRACE).await {
        tracing::warn!("backups still running were abandoned; the next start marks them defunct");
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a browser on this machine reaches the server: the bound address, or loopback
/// when it listens on every address (`0.0.0.0`, `[::]`), a host the guard refuses (421).
fn sign_in_address(bound: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, bound.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, bound.port()).into(),
        _ => bound,
    }
}

/// Each `--allowed-root` must be an existing directory: the policy resolves it.
fn check_allowed_roots(roots: &[std::path::PathBuf]) -> anyhow::Result<()> {
    for root in roots {
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => anyhow::bail!(
                "--allowed-root {}: not a directory; give a directory that cluster paths may lie in",
                root.display()
            ),
            Err(e) => anyhow::bail!(
                "--allowed-root {}: {e}; give an existing directory that cluster paths may lie in",
                root.display()
            ),
        }
    }
    Ok(())
}

/// `--listen` must name an address this machine can resolve.
async fn check_listen(listen: &str) -> anyhow::Result<()> {
    match tokio::net::lookup_host(listen).await.map(|mut a| a.next()) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => anyhow::bail!(
            "--listen {listen}: the name has no address; give HOST:PORT such as 127.0.0.1:8080"
        ),
        Err(e) => anyhow::bail!("--listen {listen}: {e}; give HOST:PORT such as 127.0.0.1:8080"),
    }
}

/// The AWS deployment's engine (as jobs-api runs it): TABLE_NAME from --table, the trigger
/// kind from --scheduler (`eventbridge` rules, or `eventbridge-scheduler` schedules, which
/// need SCHEDULER_ROLE_ARN), RUNNER_FUNCTION_ARN, RULE_PREFIX and DEAD_LETTER_QUEUE_ARN
/// (optional) from the environment, SDK clients from the SDK's own variables
/// (AWS_ENDPOINT_URL included). The other kind is removed from jobs that still have it
/// (`jobs rearm`, and deleting a job).
#[cfg(feature = "aws")]
async fn aws_engine(
    args: &ServeArgs,
    engine_config: EngineConfig,
) -> anyhow::Result<backup_engine::Engine> {
    let table = args.table.clone();
    let settings = backup_aws::AwsSettings::from_lookup(|name| match name {
        "TABLE_NAME" => table.clone(),
        other => std::env::var(other).ok(),
    })
    .context("--store dynamodb needs --table (or TABLE_NAME) and valid AWS variables")?;
    let sdk = backup_aws::sdk_config().await;
    let (triggers, needs, fired_by) = match args.scheduler {
        SchedulerKind::EventbridgeScheduler => (
            backup_aws::Triggers::Scheduler,
            "--scheduler eventbridge-scheduler needs RUNNER_FUNCTION_ARN and SCHEDULER_ROLE_ARN",
            "EventBridge Scheduler schedules",
        ),
        _ => (
            backup_aws::Triggers::EventBridge,
            "--scheduler eventbridge needs RUNNER_FUNCTION_ARN",
            "EventBridge rules",
        ),
    };
    let engine = backup_aws::engine(&settings, &sdk, triggers, engine_config).context(needs)?;
    tracing::info!(table = %settings.table_name, rule_prefix = %settings.rule_prefix, "state in DynamoDB, jobs fired by {fired_by}");
    Ok(engine)
}

/// A `backupctl` built without the `aws` feature (as `scripts/run.sh` builds it, to start
/// fast) has no AWS adapters: say how to get them.
#[cfg(not(feature = "aws"))]
async fn aws_engine(
    _args: &ServeArgs,
    _engine_config: EngineConfig,
) -> anyhow::Result<backup_engine::Engine> {
    anyhow::bail!(
        "this backupctl was built without the `aws` feature, so it cannot serve --store \
         dynamodb; build it with the default features (`cargo build --release -p backupctl`)"
    )
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

    /// What `--rebuild-catalogue` did, in the local mode.
    fn rebuilt_catalogue(&self) -> Option<&backup_local::catalogue::Rebuilt> {
        match self {
            Backend::Local(local) => local.rebuilt_catalogue.as_ref(),
            Backend::Aws(_) => None,
        }
    }

    async fn shutdown(self, grace: Duration) -> bool {
        match self {
            Backend::Local(local) => local.shutdown(grace).await,
            Backend::Aws(engine) => {
                engine.stop();
                engine.wait_idle(grace).await
            }
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
