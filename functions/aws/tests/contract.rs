//! The store and lock contract of `backup-engine`, run against DynamoDB (moto_server at
//! `AWS_ENDPOINT_URL`; `scripts/test-aws.sh` starts it). Each test gets its own table,
//! deleted when the test ends.
#![cfg(feature = "moto")]

use std::sync::Arc;

use backup_engine::contract::Adapters;
use backup_testkit::Table;

async fn dynamodb() -> Adapters {
    let table = Table::create().await;
    let store = Arc::new(table.store());
    Adapters {
        store: store.clone(),
        lock: store.clone(),
        writes: store.clone(),
        pending: Some(store),
        guard: Box::new(table),
    }
}

backup_engine::contract_tests!(dynamodb());
