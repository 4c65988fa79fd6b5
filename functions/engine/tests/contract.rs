//! The store and lock contract, run against the in-memory store the engine's own tests use,
//! so a test that passes on it tests the engine and not a shortcut.

use std::sync::Arc;

use backup_engine::contract::Adapters;
use backup_engine::memory::MemoryStore;
use backup_engine::writes::OneByOne;

async fn memory() -> Adapters {
    let store = Arc::new(MemoryStore::new());
    Adapters {
        store: store.clone(),
        lock: store.clone(),
        writes: Arc::new(OneByOne::over(store)),
        guard: Box::new(()),
    }
}

backup_engine::contract_tests!(memory());
