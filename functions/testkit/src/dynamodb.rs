//! A DynamoDB table of the test's own, with the product's key schema and indexes.

use backup_aws::DynamoStore;

/// A table made for one test; dropping it deletes the table.
pub struct Table {
    pub client: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl Table {
    /// Creates a table with a unique name on the endpoint of `AWS_ENDPOINT_URL`.
    pub async fn create() -> Table {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "AWS_ENDPOINT_URL is not set: run these tests through scripts/test-aws.sh, which starts moto_server"
        );
        let config = backup_aws::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        let name = crate::unique("test-");
        DynamoStore::create_table(&client, &name)
            .await
            .expect("create the test table");
        Table { client, name }
    }

    /// The store on this table.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.client.clone(), self.name.clone())
    }

    /// How many items the table holds (a test-only scan).
    pub async fn item_count(&self) -> usize {
        let out = self
            .client
            .scan()
            .table_name(&self.name)
            .send()
            .await
            .expect("Scan the test table");
        out.items().len()
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
