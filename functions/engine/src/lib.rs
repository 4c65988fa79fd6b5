//! The engine of scheduled backups: the use cases of SPEC §4–§7 over ports, with no
//! knowledge of SQLite, the file system or AWS.
//!
//! Like aws-samples/serverless-rust-demo, the business rules depend only on traits
//! ([`ports`]); the local mode (`backup-local`) and, later, the AWS adapters implement them,
//! and each interface (the HTTP API, a Lambda runner, `backupctl serve`) is a thin shell
//! around one [`Engine`]. The pure decisions (schedules, templates, retention, request
//! validation) come from `backup-core`, so they are the same everywhere.
//!
//! # Layout
//! - [`ports`]: the traits adapters implement: `JobStore`, `ClusterStore`, `BackupStore`,
//!   `RunStore`, `HistoryStore`, `SequenceStore` (together `Store`), `ClusterLock`,
//!   `BackupProvider`, `TriggerScheduler`, `Clock`, `IdGenerator`, and `BackupWrites`, the
//!   writes of a run grouped so that an adapter can batch them.
//! - [`model`]: the records the ports carry (jobs, clusters, backups, history, locks).
//! - [`engine`]: [`Engine`], its ports, configuration and background-work bookkeeping, and
//!   the checks of request fields (the rules of jobs, clusters and locks are `backup_core`'s
//!   `job` and `cluster`; the engine adds only what needs state and its own id format); the
//!   use cases, one file per area under `engine/`:
//!   `jobs.rs` (jobs and their history), `clusters.rs` (clusters and operators' locks),
//!   `backups.rs` (the catalogue, deletes and manual backups), `recovery.rs` (work a stopped
//!   process left behind: start-up recovery, a redelivered run whose process died).
//! - [`run`]: running a job (scheduled or "run now") as a short sequence of steps
//!   (`take_cluster`, which records the run with the lock, `complete_run`, `end_run`);
//!   under `run/`: `making.rs`
//!   (making one backup under the lease, shared with manual backups), `prune.rs` (what a
//!   successful run prunes), `end.rs` (how a run ended, `RunEnd`,
//!   and the write that records it), `settle.rs` (backups that settle later, SPEC §16:
//!   `park`, `settle_notice` from a provider's notification, and the sweeper).
//! - [`metrics`]: what counts as a run's end, a lock conflict and bytes copied; this
//!   process's counters, the store's gauges ([`Engine::metrics_report`]) and their
//!   Prometheus text; [`metrics::RunObserver`] for other listeners (SPEC §17).
//! - [`error`]: [`EngineError`] with stable codes, and the ports' errors; its `Invalid`
//!   variant keeps the core's coded [`backup_core::FieldError`]s of each field.
//! - [`ids`]: the id format and the default generator.
//! - [`clock`]: the system clock and two clocks tests drive.
//! - `text`: the human sentences of history details and lock errors.
//! - [`contract`] (feature `contract`): the test suite every store and lock adapter passes,
//!   one file per port under `contract/` (`lock.rs`, `records.rs`, `writes.rs`, `pending.rs`).
//! - `memory` (feature `memory`): `memory::MemoryStore`, every store port and the lock
//!   in memory; it passes the contract suite, and the engine's own tests (`tests/`) run the
//!   use cases on it with scripted providers.
//! - [`requests`] (feature `contract`): the API requests tests of the engine and of the
//!   adapters make again and again (a directory cluster, an hourly job, a manual backup).
//!
//! # Decisions
//! - **Ids** of jobs, runs and backups are 20 lower-case base32hex characters (`0-9a-v`), as
//!   Event Store Cloud's `c196ogto0aeqohe3ommq`: 32 bits of creation second then 64 random
//!   bits. Job ids are unique across organizations and projects (SPEC §10). A path or query
//!   id of another shape is invalid input (400), a well-formed unknown one is not found (404).
//!   Cluster ids are chosen by the operator (`backup_core::job::check_cluster_id`'s
//!   alphabet) and are unique across scopes too, because the lock is per cluster.
//! - **Run id = history id**: a run is recorded by one history item; the lock holder names
//!   it as `runId`. A run is keyed by (job id, scheduled instant), the key of the conditional
//!   insert that makes deliveries idempotent. "Run now" uses the request instant (to the
//!   millisecond) as its scheduled instant and `trigger: manual`.
//! - **Instants** are kept to the millisecond (the engine truncates its clock), shown in
//!   whole seconds by the API.
//! - **Sequence index** (`{index}`): a per-job counter incremented when a run starts making
//!   its backup, from 1; a run that fails after that still uses its number. Manual backups
//!   count per cluster (`manual:<cluster>`), since they have no job.
//! - **Lease**: 60 s by default, renewed every 20 s while a backup is made and pruned, so a
//!   crashed holder blocks its cluster for at most a minute while two renewals in a row may
//!   fail without losing the lock. A holder whose renewal finds the lock taken over abandons
//!   its backup (marked `defunct`, `errorCode: lock_lost`). Maintenance locks last 30 min
//!   unless the operator names a TTL (at most 7 days).
//! - **Fencing tokens** grow per cluster with every acquisition and survive release, so a
//!   stale holder's renew or release can never touch a newer holder's lock.
//! - **Deleting** a backup passes it through `deleting` (so concurrent deletes and prunes
//!   do not race), deletes it through its provider and then marks it `deleted`; a failed
//!   delete puts the status back. Records of deleted backups stay in the catalogue.
//! - **Background work**: "run now" and manual backups answer as soon as the run is
//!   recorded and the lock is taken (so a lock conflict is reported at once); the copy
//!   continues in a task the engine counts ([`Engine::wait_idle`]) so a server can let it
//!   finish before exiting. Scheduled deliveries ([`Engine::run_scheduled`]) run to the end.
//! - **The run-writes port is mandatory and provider-neutral** ([`ports::BackupWrites`]):
//!   every deployment names its implementation, so each transaction rule has one
//!   implementation per store. The versions an adapter conditions `start` on (DynamoDB's
//!   lock token and counter) stay inside the adapter, keyed by cluster and counter: an
//!   associated type would not fit the `Arc<dyn …>` the engine holds. The backup to record
//!   is data ([`model::BackupDraft`]), numbered and rendered by a pure function, not a
//!   callback into the engine.
//! - **Backups are started now and settled later** ([`model::Creation`]): a provider's
//!   `create` answers `Done` (the directory copy, complete in the call) or `Pending` (EBS
//!   snapshots, which outlive a Lambda invocation), and `status` settles a pending one.
//!   The engine settles at once, polling within the run's lease; an event-driven settle
//!   (SPEC §16) is the same `status` call made by a later invocation.
//! - **Clusters** must be registered before a job names them; a cluster with active jobs or
//!   a held lock cannot be deleted. A run whose cluster vanished anyway fails with
//!   `cluster_not_found`; a run of a deleted job (a late trigger) fails with
//!   `job_not_found`.

pub mod clock;
#[cfg(feature = "contract")]
pub mod contract;
pub mod engine;
pub mod error;
pub mod ids;
pub mod job_list_cache;
#[cfg(feature = "memory")]
pub mod memory;
pub mod metrics;
pub mod model;
pub mod page;
pub mod ports;
#[cfg(any(test, feature = "contract"))]
pub mod requests;
pub mod run;
pub mod schedule_cache;
mod text;
pub mod writes;

pub use backup_core::api::RunFailure;
pub use engine::{
    CommandPolicy, Engine, EngineConfig, NamedCreation, Ports, Rearmed, RestoreOutcome,
};
pub use error::{
    EngineError, ErrorKind, ProviderError, ProviderErrorCode, StoreError, TargetProblem,
    TriggerError,
};
pub use model::*;
pub use page::{ListQuery, Listed, Page, PageRequest, MAX_PAGE};
pub use run::{RestoreSettled, RunOutcome, Settled, SweepReport};
