//! The command-line grammar of SPEC §8. Flag names follow `esc` wherever `esc` has the
//! command, so an operator's muscle memory and scripts carry over.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "backupctl",
    version,
    about = "Scheduled backups for database clusters",
    long_about = "Scheduled backups for database clusters.\n\nAccepts Event Store Cloud's `esc orchestrate` command lines with `esc` replaced by `backupctl`; `orchestrate` may be left out."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Where `backupctl serve` listens unless told otherwise, and so where the client looks.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The API to talk to.
    #[arg(
        long,
        global = true,
        env = "BACKUPCTL_URL",
        default_value = DEFAULT_URL
    )]
    pub url: String,
    /// The organization that scopes everything (`--organization-id`, as `esc mesdb` names
    /// it, works too).
    #[arg(
        long,
        global = true,
        visible_alias = "organization-id",
        default_value = "default"
    )]
    pub org_id: String,
    /// The project that scopes everything.
    #[arg(long, global = true, default_value = "default")]
    pub project_id: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// The API token to send (`Authorization: Bearer`). Without it, a loopback --url uses
    /// the token in `<data-dir>/token`. A token may begin with `-` (base64url), so the value
    /// after `--token` is taken as it is.
    #[arg(
        long,
        global = true,
        env = "BACKUPCTL_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub token: Option<String>,
    /// Sign every request with AWS Signature Version 4 (service `execute-api`), with the AWS
    /// SDK's credentials and region (`AWS_PROFILE`, `aws sso login`, `AWS_REGION`, …): for
    /// the API of a `Deploy to AWS` stack.
    #[arg(
        long,
        global = true,
        env = "BACKUPCTL_AWS_SIGV4",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub aws_sigv4: bool,
    /// The server's data directory, where its token is (for a loopback --url). `serve` has
    /// its own `--data-dir`, which wins for `serve`.
    #[arg(
        long,
        global = true,
        env = "BACKUPCTL_DATA_DIR",
        default_value = "./.backupctl"
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Jobs and their history, as `esc orchestrate` has them.
    Orchestrate {
        #[command(subcommand)]
        command: Orchestrate,
    },
    /// Scheduled-backup jobs.
    #[command(subcommand)]
    Jobs(Jobs),
    /// The history of job runs.
    #[command(subcommand)]
    History(History),
    /// Backups, scheduled and manual.
    #[command(subcommand)]
    Backups(Backups),
    /// The clusters backups are taken of, and their locks.
    #[command(subcommand)]
    Clusters(Clusters),
    /// Backups and clusters, as `esc mesdb` has them.
    Mesdb {
        #[command(subcommand)]
        command: Mesdb,
    },
    /// Run the API, the web form and the scheduler on this machine, with state in SQLite.
    Serve(ServeArgs),
    /// Check a schedule expression offline.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Preview a backup description template offline.
    #[command(subcommand)]
    Template(TemplateCommand),
}

#[derive(Debug, Subcommand)]
pub enum Orchestrate {
    #[command(subcommand)]
    Jobs(Jobs),
    #[command(subcommand)]
    History(History),
}

/// `esc mesdb` lines with `esc` replaced by `backupctl`: the same commands as `backupctl
/// backups …` and `backupctl clusters …`.
#[derive(Debug, Subcommand)]
pub enum Mesdb {
    #[command(subcommand)]
    Backups(Backups),
    #[command(subcommand)]
    Clusters(Clusters),
}

#[derive(Debug, Subcommand)]
pub enum Jobs {
    /// Create a job.
    Create(CreateJob),
    /// List the jobs, newest first (a page of up to 1,000; see `--next-token`).
    List(PageArgs),
    /// Show one job.
    Get(JobId),
    /// Change a job in place: its description, schedule, backup description template or
    /// how many backups it keeps. Its id, cluster, backups and history stay; a new schedule
    /// takes effect at once.
    Update(UpdateJob),
    /// Delete a job: it stops firing; its history and backups remain.
    Delete(JobId),
    /// Run a job now.
    Run(RunArgs),
    /// Move every active job's trigger (of every organization and project) to the kind the
    /// server is configured with: after a stack's `Trigger` changed (EventBridge rules ⇄
    /// EventBridge Scheduler schedules), or `serve --scheduler`. The new trigger is made
    /// before the old one is removed; safe to run again.
    Rearm,
}

#[derive(Debug, Args)]
pub struct CreateJob {
    /// What the job is for.
    #[arg(long)]
    pub description: String,
    /// When it runs: five cron fields in UTC, at most once an hour (`0 */1 * * *`).
    #[arg(long)]
    pub schedule: String,
    #[command(subcommand)]
    pub kind: JobKind,
}

#[derive(Debug, Subcommand)]
pub enum JobKind {
    /// Back a cluster up and keep the newest backups.
    ScheduledBackup(ScheduledBackupArgs),
}

#[derive(Debug, Args)]
pub struct ScheduledBackupArgs {
    /// The description template of each backup (`{cluster} Hourly Backup {datetime:RFC3339}`).
    /// `-d`, `-m` and `-c` are `esc`'s short forms.
    #[arg(short = 'd', long)]
    pub description: String,
    /// How many of this job's backups to keep (1–1000).
    #[arg(short = 'm', long, allow_negative_numbers = true, value_parser = backup_count)]
    pub max_backup_count: i64,
    /// The cluster to back up.
    #[arg(short = 'c', long)]
    pub cluster_id: String,
}

#[derive(Debug, Args)]
pub struct UpdateJob {
    /// The job's id.
    #[arg(short = 'i', long = "id")]
    pub id: String,
    /// A new description of what the job is for.
    #[arg(long)]
    pub description: Option<String>,
    /// A new schedule: five cron fields in UTC, at most once an hour.
    #[arg(long)]
    pub schedule: Option<String>,
    /// A new description template of each backup (what `jobs create … scheduled-backup
    /// --description` sets).
    #[arg(long)]
    pub label_template: Option<String>,
    /// How many of this job's backups to keep from now on (1–1000).
    #[arg(long, allow_negative_numbers = true, value_parser = backup_count)]
    pub max_backup_count: Option<i64>,
    /// The job's data in `jobs create`'s words: `scheduled-backup --description T
    /// --max-backup-count N`.
    #[command(subcommand)]
    pub kind: Option<UpdateJobKind>,
}

#[derive(Debug, Subcommand)]
pub enum UpdateJobKind {
    /// The scheduled backup's own settings, as `jobs create` names them.
    ScheduledBackup(UpdateScheduledBackupArgs),
}

#[derive(Debug, Args)]
pub struct UpdateScheduledBackupArgs {
    /// A new description template of each backup.
    #[arg(short = 'd', long)]
    pub description: Option<String>,
    /// How many of this job's backups to keep from now on (1–1000).
    #[arg(short = 'm', long, allow_negative_numbers = true, value_parser = backup_count)]
    pub max_backup_count: Option<i64>,
    /// The job's cluster: accepted only when it is the job's own (a job's cluster cannot
    /// change; create a new job for another).
    #[arg(short = 'c', long)]
    pub cluster_id: Option<String>,
}

/// Which page of a list to show: lists answer at most 1,000 items, and say how to ask for
/// the rest.
#[derive(Debug, Args, Default, Clone)]
pub struct PageArgs {
    /// At most this many items (1–1000; default 1000).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Go on from where a previous list stopped: the token it printed.
    #[arg(long)]
    pub next_token: Option<String>,
}

/// How long a command that starts work waits for its outcome.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait up to SECONDS (0–3600) for the outcome before answering; the server answers the
    /// moment it is known. Default: 3 as text, 0 with --json (answer at once).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub wait: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job's id.
    #[arg(short = 'i', long = "id")]
    pub id: String,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct JobId {
    /// The job's id.
    #[arg(short = 'i', long = "id")]
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum History {
    /// List runs, newest first (a page of up to 1,000; see `--next-token`).
    List {
        /// Only this job's runs.
        #[arg(long)]
        job_id: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum Backups {
    /// List backups, newest first (a page of up to 1,000; see `--next-token`).
    List {
        #[arg(long)]
        job_id: Option<String>,
        #[arg(long)]
        cluster_id: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Take a manual backup now (never pruned by a job).
    Create {
        #[arg(long)]
        source_cluster_id: String,
        /// A description template, rendered now.
        #[arg(long)]
        description: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Show one backup.
    Get {
        /// The backup's id (`--backup-id`, as `esc mesdb` names it, works too).
        #[arg(short = 'i', long = "id", visible_alias = "backup-id")]
        id: String,
    },
    /// Delete a backup.
    Delete {
        /// The backup's id (`--backup-id`, as `esc mesdb` names it, works too).
        #[arg(short = 'i', long = "id", visible_alias = "backup-id")]
        id: String,
    },
    /// Re-read a backup and check it against what was recorded when it was made (it is
    /// never changed); exits 1 when it is damaged, naming each problem.
    Verify {
        /// The backup's id (`--backup-id`, as `esc mesdb` names it, works too).
        #[arg(short = 'i', long = "id", visible_alias = "backup-id")]
        id: String,
    },
    /// Restore a backup into a new cluster: the same as `clusters create
    /// --source-backup-id`.
    Restore(RestoreBackup),
}

/// `backups restore`: a restore named from the backup's side.
#[derive(Debug, Args)]
pub struct RestoreBackup {
    /// The backup to restore (`--backup-id` works too).
    #[arg(short = 'i', long = "id", visible_alias = "backup-id")]
    pub id: String,
    /// The new cluster's id (`restored-<backup id>` when left out).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// The new cluster's description.
    #[arg(long)]
    pub description: String,
    /// For a `directory` or `command` backup: where the restored data directory goes (a new
    /// path, or an empty directory).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// For an `aws-ebs` backup: the availability zone of the new volumes.
    #[arg(long)]
    pub availability_zone: Option<String>,
    /// For an `aws-ebs` backup: the new volumes' type (gp3 when left out).
    #[arg(long)]
    pub volume_type: Option<String>,
}

impl From<RestoreBackup> for CreateCluster {
    fn from(r: RestoreBackup) -> CreateCluster {
        CreateCluster {
            source_backup_id: Some(r.id),
            description: r.description,
            cluster_id: r.cluster_id,
            path: r.path,
            availability_zone: r.availability_zone,
            volume_type: r.volume_type,
            disk_size_gb: None,
            disk_type: None,
            instance_type: None,
            network_id: None,
            projection_level: None,
            server_version: None,
            topology: None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Clusters {
    /// Register a cluster.
    Register(Box<RegisterCluster>),
    /// Make a new cluster from a backup (a restore), as `esc mesdb clusters create
    /// --source-backup-id` does.
    Create(Box<CreateCluster>),
    /// List clusters, by id (a page of up to 1,000; see `--next-token`).
    List(PageArgs),
    /// Show one cluster and its lock.
    Get {
        /// The cluster's id (`-i`/`--id`, as `esc mesdb clusters get` names it, works too).
        #[arg(long, short = 'i', visible_alias = "id")]
        cluster_id: String,
    },
    /// Forget a cluster (its backups remain).
    Delete {
        /// The cluster's id (`-i`/`--id`, as `esc mesdb clusters delete` names it, works
        /// too).
        #[arg(long, short = 'i', visible_alias = "id")]
        cluster_id: String,
    },
    /// Take an operator's maintenance lock: runs and manual backups fail until it is released
    /// or its lease expires.
    Lock {
        #[arg(long)]
        cluster_id: String,
        /// What you are doing, such as `expand-disk`.
        #[arg(long)]
        operation: String,
        /// How long the lease lasts: `90s`, `30m`, `2h`.
        #[arg(long, default_value = "30m")]
        ttl: String,
    },
    /// Release an operator's maintenance lock.
    Unlock {
        #[arg(long)]
        cluster_id: String,
    },
}

#[derive(Debug, Args)]
pub struct RegisterCluster {
    #[arg(long)]
    pub cluster_id: String,
    #[arg(long)]
    pub description: String,
    /// `directory` (a data directory on this machine), `command` (a backup command such as
    /// pg_basebackup) or `aws-ebs`.
    #[arg(long)]
    pub provider: String,
    /// For `directory` and `command`: the cluster's data directory.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// For `aws-ebs`: the region of the volumes.
    #[arg(long)]
    pub region: Option<String>,
    /// For `aws-ebs`: a volume to snapshot (repeat for several).
    #[arg(long = "volume-id")]
    pub volume_ids: Vec<String>,
    /// For `aws-ebs`: find the volumes attached to instances with this tag, `KEY=VALUE`.
    #[arg(long)]
    pub instance_tag: Option<String>,
    /// The database server's version, such as 23.10.1 (backups of the cluster show it).
    #[arg(long)]
    pub server_version: Option<String>,
    /// The server's build tag, such as 23.10.1-jammy.
    #[arg(long)]
    pub server_version_tag: Option<String>,
    /// How many nodes the cluster has, 1 to 99 (1 when left out).
    #[arg(long)]
    pub node_count: Option<u32>,
    /// For `directory`: a shell command run before each copy, such as `pg_ctl stop -D DIR
    /// -m fast`; when it fails the run fails `hook_failed` and nothing is copied. Needs
    /// `serve --allow-commands`.
    #[arg(long, value_name = "CMD")]
    pub pre_hook: Option<String>,
    /// For `directory`: a shell command run after each copy whenever the pre-hook succeeded,
    /// also after a failed copy, such as `pg_ctl start -D DIR`.
    #[arg(long, value_name = "CMD")]
    pub post_hook: Option<String>,
    /// For `command`: the shell command that fills the empty directory `$BACKUP_DIR` with
    /// the backup, such as `pg_basebackup -D "$BACKUP_DIR" -X stream`. Needs
    /// `serve --allow-commands`.
    #[arg(long, value_name = "CMD")]
    pub backup_command: Option<String>,
    /// For `command`: the shell command that restores `$BACKUP_DIR` into the empty
    /// directory `$TARGET_DIR` (without one a restore copies the files).
    #[arg(long, value_name = "CMD")]
    pub restore_command: Option<String>,
    /// For `command`: run the commands as this user (the server must be root, or be it),
    /// such as postgres.
    #[arg(long, value_name = "USER")]
    pub run_as: Option<String>,
    /// For `command`: kill a command (with its whole process group) after this many
    /// seconds; 3600 when left out.
    #[arg(long, value_name = "SECONDS")]
    pub command_timeout: Option<u64>,
}

/// `clusters create`: the restore of SPEC §14, with `esc mesdb clusters create`'s flag names.
/// esc's flags for a cloud cluster's hardware are accepted so its lines parse; a restore
/// here takes its shape from the backup, so they change nothing.
#[derive(Debug, Args)]
pub struct CreateCluster {
    /// The backup to restore.
    #[arg(long)]
    pub source_backup_id: Option<String>,
    /// The new cluster's description.
    #[arg(long)]
    pub description: String,
    /// The new cluster's id (`restored-<backup id>` when left out).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// For a `directory` or `command` backup: where the restored data directory goes (a new
    /// path, or an empty directory).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// For an `aws-ebs` backup: the availability zone of the new volumes.
    #[arg(long)]
    pub availability_zone: Option<String>,
    /// For an `aws-ebs` backup: the new volumes' type (gp3 when left out).
    #[arg(long)]
    pub volume_type: Option<String>,
    #[arg(long, help_heading = "esc's cloud flags (accepted, not used)")]
    pub disk_size_gb: Option<String>,
    #[arg(long, help_heading = "esc's cloud flags (accepted, not used)")]
    pub disk_type: Option<String>,
    #[arg(long, help_heading = "esc's cloud flags (accepted, not used)")]
    pub instance_type: Option<String>,
    #[arg(long, help_heading = "esc's cloud flags (accepted, not used)")]
    pub network_id: Option<String>,
    #[arg(long, help_heading = "esc's cloud flags (accepted, not used)")]
    pub projection_level: Option<String>,
    #[arg(long, help_heading = "esc's cloud flags (accepted, not used)")]
    pub server_version: Option<String>,
    #[arg(long, help_heading = "esc's cloud flags (accepted, not used)")]
    pub topology: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the API and the web form listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where state (`state.db`) and backups (`backups/`) live.
    #[arg(long, default_value = ".backupctl")]
    pub data_dir: PathBuf,
    /// Keep backups here instead of `<data-dir>/backups` (another disk, a mounted remote file
    /// system). It must lie outside every cluster's path; it is locked like the data
    /// directory, so two servers never share it.
    #[arg(long, env = "BACKUPCTL_BACKUP_ROOT", value_name = "DIR")]
    pub backup_root: Option<PathBuf>,
    /// Accept only cluster paths inside this directory (repeat for several). Recommended:
    /// without it any directory the server can read may be registered, except system trees
    /// and the server's own directories.
    #[arg(long = "allowed-root", value_name = "DIR")]
    pub allowed_roots: Vec<PathBuf>,
    /// A backup whose copy makes no progress for this many seconds fails with
    /// `provider_stalled` and its cluster's lock is released.
    #[arg(long, env = "BACKUPCTL_STALL_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub stall_seconds: u64,
    /// The built web form to serve at `/` (default: `wasm/web` under the current directory,
    /// else beside the executable's workspace).
    #[arg(long, env = "BACKUPCTL_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// How long a backup's cluster lock lasts unless renewed (every third of it), in seconds.
    /// A crashed server's locks free themselves after this long.
    #[arg(long, env = "BACKUPCTL_LEASE_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_seconds: u64,
    /// Let a web console served from this origin call the API (repeat, or comma-separate in
    /// the variable), such as `http://localhost:5173`. Off by default.
    #[arg(
        long = "cors-origin",
        env = "BACKUPCTL_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Where state lives: `sqlite` (`state.db` in --data-dir) or `dynamodb` (the table named
    /// by --table; AWS credentials, region and `AWS_ENDPOINT_URL` come from the SDK's usual
    /// variables). `dynamodb` goes with `--scheduler eventbridge` or
    /// `eventbridge-scheduler`.
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// The DynamoDB table, with --store dynamodb.
    #[arg(long, env = "TABLE_NAME")]
    pub table: Option<String>,
    /// What fires jobs: `local` (timers in this process), `eventbridge` (one rule per job,
    /// `<RULE_PREFIX><jobId>`, invoking the function `RUNNER_FUNCTION_ARN`) or
    /// `eventbridge-scheduler` (one EventBridge Scheduler schedule per job in the group
    /// `<RULE_PREFIX>jobs`, invoking it as the role `SCHEDULER_ROLE_ARN`). After switching
    /// between the last two, `backupctl jobs rearm` moves the existing jobs.
    #[arg(long, value_enum, default_value_t = SchedulerKind::Local)]
    pub scheduler: SchedulerKind,
    /// How API clients prove who they are: `token` (the token in `<data-dir>/token`, or a
    /// JWT with --jwt-public-key) or `none` (only with a loopback --listen: then any local
    /// user or process can drive the API).
    #[arg(long, value_enum, default_value_t = AuthMode::Token)]
    pub auth: AuthMode,
    /// Also accept bearer JWTs signed (RS256) by this PEM RSA public key, with a future `exp`.
    #[arg(long, value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// A host name (or `NAME:PORT`) this server answers to besides loopback addresses and the
    /// --listen host, such as the name a reverse proxy forwards (repeat for several).
    #[arg(long = "public-host", value_name = "NAME")]
    pub public_hosts: Vec<String>,
    /// Run the shell commands of `command` clusters and of hooks (SPEC §15), with this
    /// server's rights. Off by default: then such clusters cannot be registered, and the
    /// runs of those already registered fail.
    #[arg(long)]
    pub allow_commands: bool,
    /// At start-up, recreate the records of backups whose `state.db` entry is missing (a
    /// lost or replaced `state.db`) from their manifests under the backup root, print how
    /// many, then serve.
    #[arg(long)]
    pub rebuild_catalogue: bool,
    /// A directory backup links each file that is unchanged since the cluster's previous
    /// backup (same size, modification and status change times, inode, mode and owner)
    /// instead of copying it; with this, such a file is also read and its checksum
    /// compared first. Slower: for file systems whose metadata you do not trust.
    #[arg(long, env = "BACKUPCTL_VERIFY_UNCHANGED")]
    pub verify_unchanged: bool,
    /// The checksum every new directory and command backup records for each file, and that
    /// `backups verify` and restores check: `blake3` (fast), or `sha256` where a site's
    /// rules require a FIPS 140 approved hash. Backups of either verify and restore alike;
    /// the first backup of a cluster after a change copies every file once, since a backup
    /// links only from one of its own algorithm.
    #[arg(long, env = "BACKUPCTL_CHECKSUM", value_enum, default_value_t = Checksum::Blake3)]
    pub checksum: Checksum,
    /// How log lines on stderr look: `text` (for people) or `json` (one JSON object per
    /// line, for a log collector). Colours only at a terminal, and never with NO_COLOR.
    #[arg(long, env = "BACKUPCTL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `serve --checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Checksum {
    Blake3,
    Sha256,
}

/// `serve --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `serve --auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Token,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Sqlite,
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchedulerKind {
    Local,
    Eventbridge,
    EventbridgeScheduler,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Validate schedules and show their next runs, description and EventBridge expressions.
    Check(ScheduleCheckArgs),
}

#[derive(Debug, Args)]
pub struct ScheduleCheckArgs {
    /// One or more schedule expressions (quote each).
    #[arg(required = true)]
    pub expressions: Vec<String>,
    /// List runs strictly after this RFC 3339 instant (default: now).
    #[arg(long)]
    pub after: Option<String>,
    /// How many next runs to list (1–1000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub count: u16,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Render description templates as a backup would be named.
    Render(TemplateRenderArgs),
}

#[derive(Debug, Args)]
pub struct TemplateRenderArgs {
    /// One or more templates (quote each).
    #[arg(required = true)]
    pub templates: Vec<String>,
    #[arg(long, default_value = "My Cluster")]
    pub cluster_description: String,
    #[arg(long, default_value = "c196ogto0aeqohe3ommq")]
    pub cluster_id: String,
    #[arg(long, default_value = "directory")]
    pub cluster_provider: String,
    #[arg(long, default_value = "local")]
    pub cluster_region: String,
    /// The backup's sequence number within its job.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = sequence_number)]
    pub index: u64,
    /// The run's instant, RFC 3339 (default: now).
    #[arg(long)]
    pub datetime: Option<String>,
}

/// `--max-backup-count`: any whole number is read here, so that one out of range (`-3`,
/// `0`, `5000`) gets the API's own message, which says what to write; what is not such a
/// number at all (`ten`, or more than an `i64` holds) is refused with the same advice.
fn backup_count(text: &str) -> Result<i64, String> {
    text.trim().parse::<i64>().map_err(|_| {
        format!("`{text}` is not a number of backups to keep; write a whole number from 1 to 1000")
    })
}

/// `--index`: a backup's sequence number, from 1.
fn sequence_number(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{text}` is not a backup's sequence number; write a whole number from 1, such as 1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    fn refusal(args: &[&str]) -> String {
        super::Cli::try_parse_from(args)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn a_negative_or_huge_count_reaches_the_check_that_says_what_to_write() {
        let update = |count: &str| {
            refusal(&[
                "backupctl",
                "jobs",
                "update",
                "--id",
                "j",
                "--max-backup-count",
                count,
            ])
        };
        // A negative count is read (the API's check then says 1 to 1000), not taken for a flag
        assert_eq!(update("-3"), "");
        let huge = update("99999999999999999999");
        assert!(huge.contains("from 1 to 1000"), "{huge}");
        let index = refusal(&[
            "backupctl",
            "template",
            "render",
            "{index}",
            "--index",
            "-1",
        ]);
        assert!(index.contains("sequence number"), "{index}");
        // A job's first backup is number 1 (SPEC §3), so 0 is refused the same way
        let zero = refusal(&["backupctl", "template", "render", "{index}", "--index", "0"]);
        assert!(zero.contains("write a whole number from 1"), "{zero}");
    }

    #[test]
    fn esc_short_flags_of_a_scheduled_backup_are_read() {
        let parsed = super::Cli::try_parse_from([
            "backupctl",
            "orchestrate",
            "jobs",
            "create",
            "--description",
            "Hourly",
            "--schedule",
            "0 */1 * * *",
            "scheduled-backup",
            "-d",
            "{cluster} Hourly Backup {datetime:RFC3339}",
            "-m",
            "2",
            "-c",
            "c196ogto0aeqohe3ommq",
        ]);
        let parsed = format!("{:?}", parsed.expect("esc's short flags"));
        for line in [
            ["backupctl", "mesdb", "clusters", "get", "-i", "c1"],
            ["backupctl", "mesdb", "clusters", "delete", "--id", "c1"],
        ] {
            let parsed = super::Cli::try_parse_from(line).expect("esc's -i/--id");
            assert!(format!("{parsed:?}").contains("cluster_id: \"c1\""));
        }
        for needle in [
            "description: \"{cluster} Hourly Backup {datetime:RFC3339}\"",
            "max_backup_count: 2",
            "cluster_id: \"c196ogto0aeqohe3ommq\"",
        ] {
            assert!(parsed.contains(needle), "{needle}: {parsed}");
        }
    }
}
