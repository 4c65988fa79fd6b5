//! SPEC §16 "nothing grows without bound", on DynamoDB (moto_server at `AWS_ENDPOINT_URL`;
//! `scripts/test-aws.sh` starts it): deleted backups and ended runs carry a TTL of
//! `HISTORY_DAYS` after their end, a deleted backup leaves its job's index partition, and
//! lists page by sort key.
#![cfg(feature = "moto")]

use aws_sdk_dynamodb::types::AttributeValue;
use backup_core::api::RunStatus;
use backup_core::retention::BackupStatus;
use backup_engine::contract::{at, backup, history, scope};
use backup_engine::ports::{BackupStore, BackupWrites, HistoryStore, RunStore};
use backup_engine::{BackupEnd, BackupFilter, Finish, PageRequest};
use backup_testkit::Table;

/// One item's attributes, read by key.
async fn item(
    table: &Table,
    pk: &str,
    sk: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default()
}

fn number(attrs: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    match attrs.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_backup_expires_after_history_days_and_leaves_its_jobs_index() {
    let table = Table::create().await;
    let store = table.store().with_history_days(30);
    // GIVEN two backups of one job, one of them deleted
    for id in ["b1", "b2"] {
        let mut b = backup(id, "o1", Some("j1"), "c1", at(1));
        b.status = BackupStatus::Deleting;
        assert!(store.insert_backup(&b).await.unwrap());
    }
    let before = chrono::Utc::now().timestamp();
    assert!(store
        .update_backup_status("b1", BackupStatus::Deleting, BackupStatus::Deleted)
        .await
        .unwrap());
    // THEN it expires 30 days from now, and the live one never
    let deleted = item(&table, "BACKUP#b1", "BACKUP").await;
    let expires = number(&deleted, "expires_at").expect("a deleted backup expires");
    let thirty_days = 30 * 86_400;
    assert!(
        (before + thirty_days..=chrono::Utc::now().timestamp() + thirty_days).contains(&expires),
        "{expires}"
    );
    assert!(!deleted.contains_key("job_pk"), "{deleted:?}");
    let live = item(&table, "BACKUP#b2", "BACKUP").await;
    assert_eq!(number(&live, "expires_at"), None);
    // AND retention reads only the live one, while the list still shows both
    let job_backups = store.list_job_backups("j1").await.unwrap();
    assert_eq!(
        job_backups
            .iter()
            .map(|b| b.id.as_str())
            .collect::<Vec<_>>(),
        ["b2"]
    );
    let by_job = BackupFilter {
        job_id: Some("j1".into()),
        cluster_id: None,
    };
    let listed = store
        .list_backups(&scope("o1"), &by_job, &PageRequest::everything())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_ends_deleted_because_nothing_was_made_expires_too() {
    // GIVEN a backup whose provider refused to start (too busy): it ends `deleted` through
    // the run's final write, not through a delete
    let table = Table::create().await;
    let store = table.store().with_history_days(30);
    let mut b = backup("busy", "o1", Some("j1"), "c1", at(1));
    b.status = BackupStatus::Creating;
    assert!(store.insert_backup(&b).await.unwrap());
    let before = chrono::Utc::now().timestamp();
    store
        .finish(&Finish {
            backup: Some(BackupEnd {
                backup_id: "busy",
                status: BackupStatus::Deleted,
                location: None,
                error_code: Some(backup_core::api::RunFailure::ProviderBusy),
                details: Some("nothing was made"),
                size_bytes: None,
            }),
            ..Finish::default()
        })
        .await
        .unwrap();
    // THEN it expires HISTORY_DAYS from now and leaves its job's index, like a deleted one
    let ended = item(&table, "BACKUP#busy", "BACKUP").await;
    let expires = number(&ended, "expires_at").expect("a deleted backup expires");
    assert!(expires >= before + 30 * 86_400, "{expires}");
    assert!(!ended.contains_key("job_pk"), "{ended:?}");
    assert!(store.list_job_backups("j1").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_run_expires_history_days_after_its_end_and_a_running_one_never() {
    let table = Table::create().await;
    let store = table.store().with_history_days(7);
    // GIVEN a run recorded running
    let entry = history("h1", "o1", "j1", at(0), at(0));
    store.begin_run(&entry).await.unwrap();
    let pk = format!("RUN#j1#{:013}", at(0).timestamp_millis());
    assert_eq!(number(&item(&table, &pk, "RUN").await, "expires_at"), None);
    // WHEN it ends
    let mut ended = entry.item.clone();
    ended.status = RunStatus::Succeeded;
    ended.end_time = Some(at(30));
    store.update_history(&ended).await.unwrap();
    // THEN it expires 7 days after its end
    assert_eq!(
        number(&item(&table, &pk, "RUN").await, "expires_at"),
        Some(at(30).timestamp() + 7 * 86_400)
    );
}
