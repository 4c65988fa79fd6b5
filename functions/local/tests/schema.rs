//! A state file written by an older backupctl opens, and reads as it did.

use backup_core::api::{ClusterStatus, Verification, VerificationStatus};
use backup_engine::ports::{BackupStore, ClusterStore};
use backup_engine::{ClusterServer, PageRequest, Scope};
use backup_local::SqliteStore;

/// The clusters and backups tables of schema version 2, before clusters said what their
/// server is and backups how big they are.
const VERSION_2: &str = r#"
CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    description TEXT NOT NULL,
    region TEXT NOT NULL,
    target TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE backups (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    job_id TEXT,
    cluster_id TEXT NOT NULL,
    cluster_description TEXT NOT NULL,
    provider TEXT NOT NULL,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    seq_index INTEGER NOT NULL,
    location TEXT,
    error_code TEXT,
    details TEXT
);
INSERT INTO clusters VALUES ('orders', 'default', 'default', 'Orders', 'local',
    '{"provider":"directory","path":"/var/lib/orders"}', 1764590400000);
INSERT INTO backups VALUES ('c196ogto0aeqohe3ommq', 'default', 'default', NULL, 'orders',
    'Orders', 'directory', 'Orders 1', 1764590400000, 'available', 1,
    '/backups/c196ogto0aeqohe3ommq', NULL, NULL);
PRAGMA user_version = 2;
"#;

#[tokio::test]
async fn a_version_2_file_opens_and_reads_as_not_said() {
    // GIVEN a state file of schema version 2 with a cluster and a backup
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(VERSION_2)
        .unwrap();
    // WHEN this version opens it
    let store = SqliteStore::open(&path).unwrap();
    // THEN the cluster reads with its server unknown and one node
    let cluster = store.get_cluster("orders").await.unwrap().unwrap();
    assert_eq!(cluster.server, ClusterServer::default());
    assert_eq!(cluster.server.node_count, 1);
    // AND the backup with no size yet, which can now be recorded
    let backup = store
        .get_backup("c196ogto0aeqohe3ommq")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backup.size_bytes, None);
    store
        .set_backup_size("c196ogto0aeqohe3ommq", 4096)
        .await
        .unwrap();
    let scope = Scope::new("default", "default").unwrap();
    let listed = store
        .list_backups(&scope, &Default::default(), &PageRequest::everything())
        .await
        .unwrap();
    assert_eq!(listed.items[0].size_bytes, Some(4096));
    // AND a cluster registered now keeps what it says of its server
    let mut c2 = cluster.clone();
    c2.id = "billing".into();
    c2.server = ClusterServer {
        version: Some("24.2.0".into()),
        version_tag: None,
        node_count: 3,
    };
    assert!(store.insert_cluster(&c2).await.unwrap());
    assert_eq!(store.get_cluster("billing").await.unwrap(), Some(c2));
    // AND the file opens again, unchanged
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.get_cluster("orders").await.unwrap().unwrap().server,
        ClusterServer::default()
    );
}

/// The clusters and backups tables of schema version 3, before restores and verifies.
const VERSION_3: &str = r#"
CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    description TEXT NOT NULL,
    region TEXT NOT NULL,
    target TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    server_version TEXT,
    server_version_tag TEXT,
    node_count INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE backups (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    job_id TEXT,
    cluster_id TEXT NOT NULL,
    cluster_description TEXT NOT NULL,
    provider TEXT NOT NULL,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    seq_index INTEGER NOT NULL,
    location TEXT,
    error_code TEXT,
    details TEXT,
    size_bytes INTEGER
);
INSERT INTO clusters VALUES ('orders', 'default', 'default', 'Orders', 'local',
    '{"provider":"directory","path":"/var/lib/orders"}', 1764590400000, '24.2.0', NULL, 3);
INSERT INTO backups VALUES ('c196ogto0aeqohe3ommq', 'default', 'default', NULL, 'orders',
    'Orders', 'directory', 'Orders 1', 1764590400000, 'available', 1,
    '/backups/c196ogto0aeqohe3ommq', NULL, NULL, 4096);
PRAGMA user_version = 3;
"#;

#[tokio::test]
async fn a_version_3_file_opens_with_registered_clusters_and_unverified_backups() {
    // GIVEN a state file of schema version 3 with a cluster and a backup
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(VERSION_3)
        .unwrap();
    // WHEN this version opens it
    let store = SqliteStore::open(&path).unwrap();
    // THEN the cluster is available, registered rather than restored, as it was otherwise
    let cluster = store.get_cluster("orders").await.unwrap().unwrap();
    assert_eq!(cluster.status, ClusterStatus::Available);
    assert_eq!(cluster.details, None);
    assert_eq!(cluster.source_backup_id, None);
    assert_eq!(cluster.server.version.as_deref(), Some("24.2.0"));
    assert_eq!(cluster.server.node_count, 3);
    assert_eq!(cluster.to_api(None, None).status, ClusterStatus::Available);
    // AND the backup is not verified yet, and can be now
    let backup = store
        .get_backup("c196ogto0aeqohe3ommq")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backup.verification, None);
    assert_eq!(backup.size_bytes, Some(4096));
    let verification = Verification {
        status: VerificationStatus::Ok,
        checked_at: backup.created,
        problems: Vec::new(),
    };
    store
        .set_backup_verification("c196ogto0aeqohe3ommq", &verification)
        .await
        .unwrap();
    // AND a cluster's state can change
    assert!(store
        .update_cluster_state("orders", ClusterStatus::Failed, Some("It broke."), None)
        .await
        .unwrap());
    // AND the file opens again with both kept
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let backup = store
        .get_backup("c196ogto0aeqohe3ommq")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(backup.verification, Some(verification));
    let cluster = store.get_cluster("orders").await.unwrap().unwrap();
    assert_eq!(cluster.status, ClusterStatus::Failed);
    assert_eq!(cluster.details.as_deref(), Some("It broke."));
}
