//! The store and lock contract of `backup-engine`, run against SQLite on a real file.

use std::sync::Arc;

use backup_engine::contract::Adapters;
use backup_local::SqliteStore;

async fn sqlite() -> Adapters {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("state.db")).expect("open store");
    Adapters::one_by_one(Arc::new(store), Box::new(dir))
}

backup_engine::contract_tests!(sqlite());

/// The same contract over an in-memory database (the engine's unit tests use it).
mod in_memory {
    use super::*;

    async fn memory() -> Adapters {
        let store = SqliteStore::open_in_memory().expect("open store");
        Adapters::one_by_one(Arc::new(store), Box::new(()))
    }

    backup_engine::contract_tests!(memory());
}

/// The same contract with the store's own run writes (each group one transaction), which
/// the local mode uses, in place of the engine's call-by-call ones.
mod transactional {
    use super::*;

    async fn sqlite_writes() -> Adapters {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("open store"));
        Adapters {
            store: store.clone(),
            lock: store.clone(),
            writes: store,
            pending: None,
            guard: Box::new(dir),
        }
    }

    backup_engine::contract_tests!(sqlite_writes());
}
