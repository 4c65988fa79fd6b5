//! The store and lock contract, run against the in-memory store the engine's own tests use,
//! so a test that passes on it tests the engine and not a shortcut.

use std::sync::Arc;

use backup_engine::contract::Adapters;
use backup_engine::memory::MemoryStore;

backup_engine::contract_tests!(async {
    Adapters::one_by_one_pending(Arc::new(MemoryStore::new()), Box::new(()))
});
