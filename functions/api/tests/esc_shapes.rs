//! SPEC §17: every answer that carries history items or backups deserialises into the types
//! of the unmodified `esc` client, declared here field for field as esc declares them:
//! every field required unless esc says otherwise, 32-bit integers, instants in RFC 3339,
//! and unknown fields ignored (as esc ignores them). Over the real local mode (SQLite and
//! the directory provider in a temp dir), called in-process.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use backup_local::{LocalMode, LocalOptions};
use chrono::{DateTime, FixedOffset};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use tower::ServiceExt;

const JOBS: &str = "/orchestrate/v1/organizations/default/projects/default";
const MESDB: &str = "/mesdb/v1/organizations/default/projects/default";

/// An instant as esc reads it: RFC 3339, nothing else.
#[derive(Debug, Clone, PartialEq)]
struct Rfc3339(DateTime<FixedOffset>);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(Rfc3339)
            .map_err(serde::de::Error::custom)
    }
}

/// esc's history item.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EscHistoryItem {
    id: String,
    job_id: String,
    organization_id: String,
    project_id: String,
    status: String,
    details: String,
    linked_resource: String,
    start_time: Rfc3339,
    end_time: Option<Rfc3339>,
}

#[derive(Debug, Deserialize)]
struct EscHistoryList {
    items: Vec<EscHistoryItem>,
}

/// esc's backup status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum EscBackupStatus {
    Creating,
    Available,
    Deleted,
    Deleting,
    Defunct,
}

/// esc's backup.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EscBackup {
    id: String,
    project_id: String,
    available_node_count: i32,
    created: Rfc3339,
    description: String,
    provider: String,
    region: String,
    server_version: String,
    server_version_tag: String,
    size_gb: i32,
    source_cluster_description: String,
    source_cluster_id: String,
    status: EscBackupStatus,
    linked_resource: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EscBackupList {
    backups: Vec<EscBackup>,
}

#[derive(Debug, Deserialize)]
struct EscBackupEnvelope {
    backup: EscBackup,
}

struct Api {
    app: Router,
    local: LocalMode,
    dir: tempfile::TempDir,
}

impl Api {
    async fn new() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalMode::start(LocalOptions::new(dir.path().join("state")))
            .await
            .unwrap();
        let app = backup_api::router(Arc::new(local.engine.clone()));
        Api { app, local, dir }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, text) = self.call(method, path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// GETs `path` and reads it as esc would; a field esc needs that is missing, null or of
    /// another type fails here, as it fails esc.
    async fn as_esc<T: DeserializeOwned>(&self, path: &str) -> T {
        let (status, text) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("esc cannot read {path}: {e}\n{text}"))
    }

    /// Registers a directory cluster of one 8-byte file, with `extra` fields.
    async fn cluster(&self, id: &str, extra: Value) {
        let data = self.dir.path().join(id);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("file"), b"contents").unwrap();
        let mut body = json!({"id": id, "description": format!("Cluster {id}"),
            "provider": "directory", "path": data});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.ok(Method::POST, &format!("{MESDB}/clusters"), Some(body))
            .await;
    }

    /// A job of `cluster`, run once now, to the end.
    async fn job_run(&self, cluster: &str) -> String {
        let job = json!({
            "description": "Hourly", "schedule": "0 * * * *", "type": "ScheduledBackup",
            "data": {"clusterId": cluster, "description": "{cluster} {index}", "maxBackupCount": 5}
        });
        let id = self
            .ok(Method::POST, &format!("{JOBS}/jobs"), Some(job))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.ok(Method::POST, &format!("{JOBS}/jobs/{id}/run"), None)
            .await;
        assert!(self.local.engine.wait_idle(Duration::from_secs(30)).await);
        id
    }

    /// Every backup route's answer, read as esc reads it: the list, filtered by job and by
    /// cluster, and each backup alone. Answers the list.
    async fn backups_as_esc(&self, jobs: &[&str], clusters: &[&str]) -> Vec<EscBackup> {
        let all: EscBackupList = self.as_esc(&format!("{MESDB}/backups")).await;
        for job in jobs {
            let _: EscBackupList = self.as_esc(&format!("{MESDB}/backups?jobId={job}")).await;
        }
        for cluster in clusters {
            let _: EscBackupList = self
                .as_esc(&format!("{MESDB}/backups?clusterId={cluster}"))
                .await;
        }
        for backup in &all.backups {
            let one: EscBackupEnvelope =
                self.as_esc(&format!("{MESDB}/backups/{}", backup.id)).await;
            assert_eq!(one.backup.id, backup.id);
        }
        all.backups
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_backups_read_as_escs_types() {
    let api = Api::new().await;
    // GIVEN a cluster registered with its server's version and three nodes, and one without
    api.cluster(
        "versioned",
        json!({"serverVersion": "23.10.1", "serverVersionTag": "23.10.1-jammy", "nodeCount": 3}),
    )
    .await;
    api.cluster("plain", json!({})).await;
    // AND a run of a job of each, a manual backup, and a run that fails on a lock
    let versioned_job = api.job_run("versioned").await;
    let plain_job = api.job_run("plain").await;
    api.ok(
        Method::POST,
        &format!("{MESDB}/backups"),
        Some(json!({"description": "manual", "sourceClusterId": "plain"})),
    )
    .await;
    assert!(api.local.engine.wait_idle(Duration::from_secs(30)).await);
    api.ok(
        Method::POST,
        &format!("{MESDB}/clusters/plain/lock"),
        Some(json!({"operation": "expand-disk"})),
    )
    .await;
    api.ok(Method::POST, &format!("{JOBS}/jobs/{plain_job}/run"), None)
        .await;

    // WHEN history is read as esc reads it, whole and per job
    let history: EscHistoryList = api.as_esc(&format!("{JOBS}/history")).await;
    for job in [&versioned_job, &plain_job] {
        let _: EscHistoryList = api.as_esc(&format!("{JOBS}/history?jobId={job}")).await;
    }
    // THEN every item carries the scope it was listed in
    assert_eq!(history.items.len(), 3);
    for item in &history.items {
        assert_eq!(
            (item.organization_id.as_str(), item.project_id.as_str()),
            ("default", "default"),
            "{item:?}"
        );
        assert!(item.end_time.is_some(), "{item:?}");
    }
    assert!(history.items.iter().any(|i| i.status == "failed"));

    // WHEN backups are read as esc reads them, on every route
    let backups = api
        .backups_as_esc(&[&versioned_job, &plain_job], &["versioned", "plain"])
        .await;
    // THEN each shows its cluster's server, region and nodes, and its size rounded up
    assert_eq!(backups.len(), 3);
    for b in &backups {
        assert_eq!(b.project_id, "default");
        assert_eq!(b.provider, "directory");
        assert_eq!(b.region, "local");
        assert_eq!(b.status, EscBackupStatus::Available);
        assert_eq!(b.size_gb, 1, "8 bytes round up to 1 GiB: {b:?}");
        let expected = match b.source_cluster_id.as_str() {
            "versioned" => ("23.10.1", "23.10.1-jammy", 3),
            _ => ("", "", 1),
        };
        assert_eq!(
            (
                b.server_version.as_str(),
                b.server_version_tag.as_str(),
                b.available_node_count
            ),
            expected,
            "{b:?}"
        );
    }
    let manual = backups.iter().find(|b| b.description == "manual").unwrap();
    assert_eq!(manual.linked_resource, None);

    // WHEN the plain cluster is gone (its job deleted, its lock released)
    api.ok(Method::DELETE, &format!("{JOBS}/jobs/{plain_job}"), None)
        .await;
    api.ok(
        Method::DELETE,
        &format!("{MESDB}/clusters/plain/lock"),
        None,
    )
    .await;
    api.ok(Method::DELETE, &format!("{MESDB}/clusters/plain"), None)
        .await;
    // THEN its backups still read as esc's, with the region its provider implies (a
    // directory cluster's is `local`) and one node
    let backups = api.backups_as_esc(&[&plain_job], &["plain"]).await;
    for b in backups.iter().filter(|b| b.source_cluster_id == "plain") {
        assert_eq!(
            (b.region.as_str(), b.available_node_count),
            ("local", 1),
            "{b:?}"
        );
        assert_eq!(b.server_version, "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_says_its_server_and_nodes_or_is_told_what_to_write() {
    let api = Api::new().await;
    // GIVEN a cluster registered with its server's version and node count
    api.cluster(
        "c1",
        json!({"serverVersion": "24.2.0", "serverVersionTag": "24.2.0-noble", "nodeCount": 5}),
    )
    .await;
    // THEN it reads back with them, and one registered without reads as one node
    let cluster = api
        .ok(Method::GET, &format!("{MESDB}/clusters/c1"), None)
        .await;
    assert_eq!(cluster["cluster"]["serverVersion"], "24.2.0");
    assert_eq!(cluster["cluster"]["serverVersionTag"], "24.2.0-noble");
    assert_eq!(cluster["cluster"]["nodeCount"], 5);
    api.cluster("c2", json!({})).await;
    let cluster = api
        .ok(Method::GET, &format!("{MESDB}/clusters/c2"), None)
        .await;
    assert_eq!(cluster["cluster"]["nodeCount"], 1);
    assert!(cluster["cluster"].get("serverVersion").is_none());
    // WHEN a node count or a version is out of bounds THEN 400 says what to write
    let data = api.dir.path().join("c1");
    for (extra, field) in [
        (json!({"nodeCount": 0}), "nodeCount"),
        (json!({"nodeCount": 100}), "nodeCount"),
        (json!({"serverVersion": "x".repeat(65)}), "serverVersion"),
        (json!({"serverVersionTag": "a\u{7}b"}), "serverVersionTag"),
        (json!({"serverVersion": " "}), "serverVersion"),
    ] {
        let mut body = json!({"id": "c3", "description": "d", "provider": "directory",
            "path": data});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, text) = api
            .call(Method::POST, &format!("{MESDB}/clusters"), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}: {text}");
        let problem: Value = serde_json::from_str(&text).unwrap();
        let message = problem["fields"][field].as_str().unwrap_or_default();
        assert!(
            message.contains("such as"),
            "{extra}: a message saying what to write: {text}"
        );
    }
}
