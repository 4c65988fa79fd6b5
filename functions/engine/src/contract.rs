//! The contract every store and lock adapter passes (feature `contract`).
//!
//! Each check is an `async fn` over a fresh [`Adapters`]; [`contract_tests!`](crate::contract_tests) turns them into
//! one `#[tokio::test]` each in an adapter's test crate, given an async factory:
//!
//! ```ignore
//! backup_engine::contract_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
//!     Adapters::one_by_one(Arc::new(store), Box::new(dir))
//! });
//! ```
//!
//! The checks panic on failure, as tests do; this module is test support and is compiled
//! only with the `contract` feature. Instants are passed in (no clock is read), whole
//! milliseconds, as the engine gives them.

use std::any::Any;
use std::sync::Arc;

use backup_core::api::{
    ClusterLockInfo, ClusterTarget, HistoryItem, JobStatus, RunFailure, RunStatus, Trigger,
};
use backup_core::retention::BackupStatus;
use chrono::{DateTime, Duration, Utc};

use backup_core::template::{RenderContext, Template};

use crate::model::{
    Acquisition, Applied, BackupDraft, BackupEnd, BackupEntry, BackupFilter, ClusterRecord, Finish,
    HistoryEntry, JobRecord, LockHolder, Release, RunStart, Scope, StartBackup, Started,
};
use crate::ports::{BackupWrites, ClusterLock, PendingBackups, Store};
use crate::writes::OneByOne;

mod lock;
mod pending;
mod records;
mod writes;

pub use lock::*;
pub use pending::*;
pub use records::*;
pub use writes::*;

/// The adapters under test, fresh and empty, and whatever keeps them alive (a temp dir).
pub struct Adapters {
    pub store: Arc<dyn Store>,
    pub lock: Arc<dyn ClusterLock>,
    /// The adapter's run writes: its batched form, or
    /// [`OneByOne`](crate::writes::OneByOne) over `store` and `lock`.
    pub writes: Arc<dyn BackupWrites>,
    /// The adapter's pending backups, if it keeps them (SPEC §16); the checks of
    /// `contract/pending.rs` pass at once without.
    pub pending: Option<Arc<dyn PendingBackups>>,
    pub guard: Box<dyn Any + Send>,
}

impl Adapters {
    /// Adapters over one `store` that is also the lock, its run writes made call by call
    /// ([`OneByOne`]); `guard` keeps whatever the store lives in (a temp dir) until the check
    /// ends.
    pub fn one_by_one<S: Store + ClusterLock + 'static>(
        store: Arc<S>,
        guard: Box<dyn Any + Send>,
    ) -> Adapters {
        Adapters {
            store: store.clone(),
            lock: store.clone(),
            writes: Arc::new(OneByOne::over(store)),
            pending: None,
            guard,
        }
    }

    /// [`one_by_one`](Self::one_by_one) over a store that also keeps pending backups.
    pub fn one_by_one_pending<S: Store + ClusterLock + PendingBackups + 'static>(
        store: Arc<S>,
        guard: Box<dyn Any + Send>,
    ) -> Adapters {
        Adapters {
            store: store.clone(),
            lock: store.clone(),
            writes: Arc::new(OneByOne::over(store.clone()).with_pending(store.clone())),
            pending: Some(store),
            guard,
        }
    }

    fn writes(&self) -> Arc<dyn BackupWrites> {
        self.writes.clone()
    }

    /// Asks for `cluster`'s lock for `who` at `now`, for [`LEASE`].
    async fn try_lock(&self, cluster: &str, who: &LockHolder, now: DateTime<Utc>) -> Acquisition {
        self.lock
            .try_acquire(cluster, who, now, LEASE)
            .await
            .expect("the lock answers")
    }

    /// Takes `cluster`'s lock for `who` at `now`; the check fails if it is held.
    async fn take_lock(
        &self,
        cluster: &str,
        who: &LockHolder,
        now: DateTime<Utc>,
    ) -> ClusterLockInfo {
        acquired(self.try_lock(cluster, who, now).await)
    }

    /// The holder that keeps `who` from taking `cluster`'s lock at `now`; the check fails if
    /// `who` gets it.
    async fn refused_lock(
        &self,
        cluster: &str,
        who: &LockHolder,
        now: DateTime<Utc>,
    ) -> ClusterLockInfo {
        held(self.try_lock(cluster, who, now).await)
    }

    /// The fencing token of whoever holds `cluster`'s lock at `now`.
    async fn holder_token(&self, cluster: &str, now: DateTime<Utc>) -> Option<u64> {
        let current = self
            .lock
            .current(cluster, now)
            .await
            .expect("the lock answers");
        current.map(|l| l.fencing_token)
    }
}

/// The lease most checks take locks for: one taken at `at(n)` ends at `at(n + 1)`.
const LEASE: Duration = Duration::seconds(60);

/// Expands to one `#[tokio::test]` per contract check, each on a fresh `Adapters` made by
/// `$factory` (an expression evaluating to a future of [`Adapters`]).
#[macro_export]
macro_rules! contract_tests {
    ($factory:expr) => {
        $crate::contract_tests!(@each $factory;
            lock_is_exclusive_and_names_its_holder,
            lock_expires_at_its_absolute_expiry,
            fencing_tokens_only_grow,
            release_is_conditional_on_the_holder,
            renew_extends_only_the_current_holder,
            concurrent_acquisitions_have_one_winner,
            locks_of_different_clusters_are_independent,
            jobs_insert_conditionally_and_round_trip,
            jobs_update_in_place_only_while_active,
            clusters_insert_conditionally_and_round_trip,
            clusters_change_state_in_place,
            backups_round_trip_filter_and_order_newest_first,
            backup_status_updates_are_conditional,
            backups_are_read_again_by_id,
            backup_failures_and_notes_are_stored_with_the_backup,
            backup_verifications_are_stored_and_replaced,
            deleting_backups_are_found_at_start_up,
            run_records_are_idempotent,
            concurrent_deliveries_start_one_run,
            queued_runs_are_claimed_once,
            history_lists_newest_first_by_scope_and_job,
            lists_page_in_order_without_gaps_or_repeats,
            sequences_start_at_one_and_never_repeat,
            start_takes_the_lock_and_records_a_numbered_backup,
            start_records_its_run_once,
            start_refused_by_a_held_lock_records_the_run_alone,
            start_with_stale_versions_still_decides_right,
            concurrent_starts_have_one_winner,
            finish_applies_every_part,
            finish_after_a_lost_lock_records_and_leaves_the_new_holder,
            pending_backups_are_found_by_key_listed_by_deadline_and_forgotten,
            parking_after_a_lost_lock_records_it_and_leaves_the_new_holder,
            a_settle_applies_once,
            pending_restores_are_found_by_key_listed_by_deadline_and_forgotten
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let adapters = $factory.await;
                $crate::contract::$name(&adapters).await;
            }
        )*
    };
}

/// A fixed instant, to the millisecond, `minutes` after 2026-11-27T05:00:00Z.
pub fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_755_600 + minutes * 60, 0).unwrap_or_default()
}

pub fn scope(org: &str) -> Scope {
    Scope {
        org: org.to_owned(),
        project: "default".to_owned(),
    }
}

fn holder(operation: &str, job: Option<&str>, run: Option<&str>) -> LockHolder {
    LockHolder {
        operation: operation.to_owned(),
        job_id: job.map(str::to_owned),
        run_id: run.map(str::to_owned),
    }
}

fn acquired(a: Acquisition) -> ClusterLockInfo {
    match a {
        Acquisition::Acquired(info) => info,
        Acquisition::Held(info) => panic!("expected to acquire the lock, but it is held: {info:?}"),
    }
}

fn held(a: Acquisition) -> ClusterLockInfo {
    match a {
        Acquisition::Held(info) => info,
        Acquisition::Acquired(info) => panic!("expected the lock to be held, but got it: {info:?}"),
    }
}
