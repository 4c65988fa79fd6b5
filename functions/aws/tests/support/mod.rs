//! A table of its own for each test, on the endpoint of `AWS_ENDPOINT_URL`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use backup_aws::DynamoStore;

pub struct Table {
    pub client: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl Table {
    pub async fn create() -> Table {
        static N: AtomicU32 = AtomicU32::new(0);
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "AWS_ENDPOINT_URL is not set: run these tests through scripts/test-aws.sh, which starts moto_server"
        );
        let config = backup_aws::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        let name = format!(
            "test-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros()
        );
        DynamoStore::create_table(&client, &name)
            .await
            .expect("create the test table");
        Table { client, name }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        let client = self.client.clone();
        let name = self.name.clone();
        // Tests run on a multi-threaded runtime: block this worker while the table goes.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            tokio::task::block_in_place(|| {
                handle.block_on(async {
                    let _ = client.delete_table().table_name(&name).send().await;
                })
            });
        }
    }
}
