//! The store and lock contract of `backup-engine`, run against DynamoDB (moto_server at
//! `AWS_ENDPOINT_URL`; `scripts/test-aws.sh` starts it). Each test gets its own table,
//! deleted when the test ends.
#![cfg(feature = "moto")]

mod support;

use std::sync::Arc;

use backup_aws::DynamoStore;
use backup_engine::contract::Adapters;

async fn dynamodb() -> Adapters {
    let table = support::Table::create().await;
    let store = Arc::new(DynamoStore::new(table.client.clone(), table.name.clone()));
    Adapters {
        store: store.clone(),
        lock: store.clone(),
        writes: store,
        guard: Box::new(table),
    }
}

backup_engine::contract_tests!(dynamodb());
