//! The HTTP API over the real local mode (SQLite and the directory provider in a temp dir),
//! called in-process through `tower::ServiceExt::oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use backup_local::{LocalMode, LocalOptions};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const JOBS: &str = "/orchestrate/v1/organizations/default/projects/default";
const MESDB: &str = "/mesdb/v1/organizations/default/projects/default";

struct Api {
    app: Router,
    local: LocalMode,
    dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
    text: String,
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

    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        self.send(request).await
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            content_type,
            body,
            text,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(&body.to_string())).await
    }

    /// `POST …/clusters`: registers a cluster.
    async fn register(&self, body: Value) -> Answer {
        self.post(&format!("{MESDB}/clusters"), body).await
    }

    /// `POST …/backups`: asks for a manual backup.
    async fn manual_backup(&self, body: Value) -> Answer {
        self.post(&format!("{MESDB}/backups"), body).await
    }

    /// `POST …/clusters/{cluster}/lock`: takes an operator's lock.
    async fn lock(&self, cluster: &str, body: Value) -> Answer {
        self.post(&format!("{MESDB}/clusters/{cluster}/lock"), body)
            .await
    }

    /// A registered directory cluster with one file.
    async fn cluster(&self, id: &str) {
        let data = self.dir.path().join(id);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("file"), b"contents").unwrap();
        let a = self
            .register(
                json!({"id": id, "description": "Orders", "provider": "directory", "path": data}),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        assert_eq!(a.body, json!({"id": id}));
    }

    async fn job(&self, cluster: &str) -> String {
        let a = self.post(&format!("{JOBS}/jobs"), seed_job(cluster)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        a.body["id"].as_str().unwrap().to_owned()
    }

    /// Everything a client can list, to check that a refused request changed nothing.
    async fn snapshot(&self) -> Value {
        json!({
            "jobs": self.get(&format!("{JOBS}/jobs")).await.body,
            "history": self.get(&format!("{JOBS}/history")).await.body,
            "backups": self.get(&format!("{MESDB}/backups")).await.body,
            "clusters": self.get(&format!("{MESDB}/clusters")).await.body,
        })
    }
}

/// GETs `path` from `app`: the status and the body, which must be UTF-8.
async fn page(app: &Router, path: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn seed_job(cluster: &str) -> Value {
    json!({
        "description": "My Hourly Backup",
        "schedule": "0 */1 * * *",
        "type": "ScheduledBackup",
        "data": {"clusterId": cluster, "description": "{cluster} Hourly Backup {datetime:RFC3339}", "maxBackupCount": 2}
    })
}

fn assert_problem(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.text);
    assert_eq!(a.body["status"], status.as_u16(), "{}", a.text);
    assert_eq!(a.body["code"], code, "{}", a.text);
    for key in ["type", "title", "detail", "instance"] {
        assert!(a.body[key].is_string(), "{key} missing: {}", a.text);
    }
    // SPEC §7's members, `fields` included (`{}` when no field is at fault)
    assert!(a.body["fields"].is_object(), "fields missing: {}", a.text);
    let detail = a.body["detail"].as_str().unwrap();
    assert!(!detail.is_empty() && detail.len() < 2000, "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_workflow_works_end_to_end() {
    let api = Api::new().await;
    assert_eq!(api.get("/healthz").await.body, json!({"status": "ok"}));
    // GIVEN a cluster and the SPEC's seed job
    api.cluster("c196ogto0aeqohe3ommq").await;
    let id = api.job("c196ogto0aeqohe3ommq").await;
    // THEN the job reads back in the SPEC's shape
    let job = api.get(&format!("{JOBS}/jobs/{id}")).await.body["job"].clone();
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["organizationId"], "default");
    assert_eq!(job["status"], "active");
    assert_eq!(job["type"], "ScheduledBackup");
    assert_eq!(job["data"]["maxBackupCount"], 2);
    assert_eq!(job["nextRuns"].as_array().unwrap().len(), 5);
    assert_eq!(job["eventbridge"], json!(["cron(0 * * * ? *)"]));
    let list = api.get(&format!("{JOBS}/jobs")).await.body;
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    // WHEN it is run now THEN a history id comes back and the run succeeds
    let run = api
        .call(Method::POST, &format!("{JOBS}/jobs/{id}/run"), None)
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    let history_id = run.body["historyId"].as_str().unwrap().to_owned();
    assert!(api.local.engine.wait_idle(Duration::from_secs(30)).await);
    let history = api.get(&format!("{JOBS}/history?jobId={id}")).await.body;
    let item = &history["items"][0];
    assert_eq!(item["id"], history_id.as_str());
    assert_eq!(item["status"], "succeeded", "{item}");
    assert_eq!(item["trigger"], "manual");
    let backup_id = item["linkedResource"].as_str().unwrap().to_owned();
    // AND the backup is listed, by job and by cluster
    for query in [
        format!("?jobId={id}"),
        "?clusterId=c196ogto0aeqohe3ommq".to_owned(),
        String::new(),
    ] {
        let backups = api.get(&format!("{MESDB}/backups{query}")).await.body;
        assert_eq!(backups["backups"][0]["id"], backup_id.as_str(), "{query}");
        assert_eq!(backups["backups"][0]["status"], "available");
        assert_eq!(backups["backups"][0]["linkedResource"], id.as_str());
        assert_eq!(backups["backups"][0]["sourceClusterDescription"], "Orders");
    }
    // WHEN the backup and the job are deleted THEN both answer 200 and remain as records
    let a = api
        .call(
            Method::DELETE,
            &format!("{MESDB}/backups/{backup_id}"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = api
        .call(Method::DELETE, &format!("{JOBS}/jobs/{id}"), None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let job = api.get(&format!("{JOBS}/jobs/{id}")).await.body;
    assert_eq!(job["job"]["status"], "deleted");
    let backups = api.get(&format!("{MESDB}/backups")).await.body;
    assert_eq!(backups["backups"][0]["status"], "deleted");
    assert_eq!(
        api.get(&format!("{JOBS}/history")).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_conflict_with_409_and_name_the_holder() {
    let api = Api::new().await;
    api.cluster("c1").await;
    // GIVEN an operator's maintenance lock
    let a = api
        .lock("c1", json!({"operation": "expand-disk", "ttlSeconds": 600}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["cluster"]["lock"]["operation"], "expand-disk");
    let cluster = api.get(&format!("{MESDB}/clusters/c1")).await.body;
    assert_eq!(cluster["cluster"]["lock"]["operation"], "expand-disk");
    assert_eq!(
        cluster["cluster"]["path"],
        api.dir.path().join("c1").to_string_lossy().as_ref()
    );
    // WHEN a manual backup or a second lock is asked for THEN 409 naming the holder
    let before = api.snapshot().await;
    let manual = api
        .manual_backup(json!({"description": "manual", "sourceClusterId": "c1"}))
        .await;
    assert_problem(&manual, StatusCode::CONFLICT, "cluster_locked");
    assert!(
        manual.body["detail"]
            .as_str()
            .unwrap()
            .contains("expand-disk"),
        "{}",
        manual.text
    );
    let again = api.lock("c1", json!({"operation": "resize"})).await;
    assert_problem(&again, StatusCode::CONFLICT, "cluster_locked");
    // AND a cluster with a lock cannot be deleted
    let delete = api
        .call(Method::DELETE, &format!("{MESDB}/clusters/c1"), None)
        .await;
    assert_problem(&delete, StatusCode::CONFLICT, "cluster_locked");
    assert_eq!(api.snapshot().await, before);
    // WHEN the run of a job meets the lock THEN the run fails, recorded in history
    let job = api.job("c1").await;
    let run = api
        .call(Method::POST, &format!("{JOBS}/jobs/{job}/run"), None)
        .await;
    assert_eq!(run.status, StatusCode::OK);
    let items = api.get(&format!("{JOBS}/history")).await.body;
    assert_eq!(items["items"][0]["status"], "failed");
    assert_eq!(items["items"][0]["errorCode"], "cluster_locked");
    // WHEN it is unlocked THEN a manual backup goes through
    let a = api
        .call(Method::DELETE, &format!("{MESDB}/clusters/c1/lock"), None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let manual = api
        .manual_backup(json!({"description": "manual {index}", "sourceClusterId": "c1"}))
        .await;
    assert_eq!(manual.status, StatusCode::OK, "{}", manual.text);
    assert!(api.local.engine.wait_idle(Duration::from_secs(30)).await);
    let backups = api.get(&format!("{MESDB}/backups?clusterId=c1")).await.body;
    assert_eq!(backups["backups"][0]["id"], manual.body["id"]);
    assert_eq!(backups["backups"][0]["status"], "available");
    assert!(backups["backups"][0].get("linkedResource").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_route_is_a_problem_that_changes_nothing() {
    let api = Api::new().await;
    api.cluster("c1").await;
    let job = api.job("c1").await;
    let before = api.snapshot().await;
    let long = "x".repeat(300);
    let bad_id = "not-an-id";
    let unknown_job = "00000000000000000000";

    // (method, path, body, status, code)
    let cases: Vec<(Method, String, Option<String>, StatusCode, &str)> = vec![
        // Malformed JSON, on every route that takes a body.
        (Method::POST, format!("{JOBS}/jobs"), Some("{\"description\":".into()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{MESDB}/backups"), Some("[1,2".into()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{MESDB}/clusters"), Some("nope".into()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{MESDB}/clusters/c1/lock"), Some("{".into()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{JOBS}/jobs"), Some(String::new()), StatusCode::BAD_REQUEST, "malformed_body"),
        // Unknown fields.
        (Method::POST, format!("{JOBS}/jobs"), Some(json!({"description": "d", "schedul": "0 * * * *"}).to_string()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{JOBS}/jobs"), Some(json!({"data": {"maxBackupCnt": 3}}).to_string()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{MESDB}/backups"), Some(json!({"description": "d", "sourceClusterId": "c1", "x": 1}).to_string()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{MESDB}/clusters"), Some(json!({"id": "c9", "description": "d", "provider": "directory", "path": "/x", "extra": true}).to_string()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{MESDB}/clusters/c1/lock"), Some(json!({"operation": "x", "ttl": 5}).to_string()), StatusCode::BAD_REQUEST, "malformed_body"),
        // Wrong types.
        (Method::POST, format!("{JOBS}/jobs"), Some(json!({"data": {"maxBackupCount": "2"}}).to_string()), StatusCode::BAD_REQUEST, "malformed_body"),
        (Method::POST, format!("{MESDB}/clusters"), Some(json!({"id": "c9", "description": "d", "provider": "floppy", "path": "/x"}).to_string()), StatusCode::BAD_REQUEST, "malformed_body"),
        // Over-long strings and invalid values.
        (Method::POST, format!("{JOBS}/jobs"), Some(json!({"description": long, "schedule": "0 * * * *", "data": {"clusterId": "c1", "description": long, "maxBackupCount": 0}}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{JOBS}/jobs"), Some(seed_job("unknown-cluster").to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/backups"), Some(json!({"description": long, "sourceClusterId": "c1"}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/backups"), Some(json!({"description": "{nope}", "sourceClusterId": "c 1"}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/backups"), Some(json!({"description": "", "sourceClusterId": "c1"}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/backups"), Some(json!({"description": "  ", "sourceClusterId": "c1"}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/clusters"), Some(json!({"id": "c9", "description": long, "provider": "directory", "path": "relative/dir"}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/clusters"), Some(json!({"id": long, "description": "d", "provider": "directory", "path": "/x"}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/clusters/c1/lock"), Some(json!({"operation": long, "ttlSeconds": 0}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/clusters/c1/lock"), Some(json!({"operation": "manual-backup"}).to_string()), StatusCode::BAD_REQUEST, "validation"),
        // Malformed ids in paths and queries.
        (Method::GET, format!("{JOBS}/jobs/{bad_id}"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::DELETE, format!("{JOBS}/jobs/{bad_id}"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{JOBS}/jobs/{bad_id}/run"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("{JOBS}/history?jobId={bad_id}"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("{JOBS}/history?job={job}"), None, StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::GET, format!("{MESDB}/backups?jobId={bad_id}&clusterId=a%2Fb"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("{MESDB}/backups?clusterId=%zz"), None, StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::DELETE, format!("{MESDB}/backups/{bad_id}"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{MESDB}/backups/{bad_id}/verify"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("{MESDB}/clusters/{long}"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::DELETE, format!("{MESDB}/clusters/a%20b"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::DELETE, format!("{MESDB}/clusters/a.b/lock"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, "/orchestrate/v1/organizations/a%2Fb/projects/default/jobs".into(), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("/mesdb/v1/organizations/default/projects/{long}/clusters"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, "/orchestrate/v1/organizations/%ff/projects/default/jobs".into(), None, StatusCode::BAD_REQUEST, "invalid_path"),
        // Pages (SPEC §16): a limit out of 1–1000, a token no list gave.
        (Method::GET, format!("{JOBS}/jobs?limit=0"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("{MESDB}/clusters?limit=1001"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("{MESDB}/backups?limit=ten"), None, StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::GET, format!("{JOBS}/history?nextToken=not-a-token"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("{MESDB}/backups?nextToken=%2F%2F"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::GET, format!("{JOBS}/jobs?page=2"), None, StatusCode::BAD_REQUEST, "invalid_query"),
        // Waiting for an outcome: 0–60 seconds.
        (Method::POST, format!("{JOBS}/jobs/{job}/run?wait=61"), None, StatusCode::BAD_REQUEST, "validation"),
        (Method::POST, format!("{JOBS}/jobs/{job}/run?wait=soon"), None, StatusCode::BAD_REQUEST, "invalid_query"),
        (Method::POST, format!("{MESDB}/backups?wait=-1"), Some(json!({"description": "d", "sourceClusterId": "c1"}).to_string()), StatusCode::BAD_REQUEST, "invalid_query"),
        // Unknown ids.
        (Method::GET, format!("{JOBS}/jobs/{unknown_job}"), None, StatusCode::NOT_FOUND, "job_not_found"),
        (Method::DELETE, format!("{JOBS}/jobs/{unknown_job}"), None, StatusCode::NOT_FOUND, "job_not_found"),
        (Method::POST, format!("{JOBS}/jobs/{unknown_job}/run"), None, StatusCode::NOT_FOUND, "job_not_found"),
        (Method::GET, format!("/orchestrate/v1/organizations/other/projects/default/jobs/{job}"), None, StatusCode::NOT_FOUND, "job_not_found"),
        (Method::DELETE, format!("{MESDB}/backups/{unknown_job}"), None, StatusCode::NOT_FOUND, "backup_not_found"),
        (Method::POST, format!("{MESDB}/backups/{unknown_job}/verify"), None, StatusCode::NOT_FOUND, "backup_not_found"),
        (Method::GET, format!("{MESDB}/clusters/c2"), None, StatusCode::NOT_FOUND, "cluster_not_found"),
        (Method::DELETE, format!("{MESDB}/clusters/c2"), None, StatusCode::NOT_FOUND, "cluster_not_found"),
        (Method::POST, format!("{MESDB}/clusters/c2/lock"), Some(json!({"operation": "x"}).to_string()), StatusCode::NOT_FOUND, "cluster_not_found"),
        (Method::DELETE, format!("{MESDB}/clusters/c2/lock"), None, StatusCode::NOT_FOUND, "cluster_not_found"),
        (Method::POST, format!("{MESDB}/backups"), Some(json!({"description": "d", "sourceClusterId": "c2"}).to_string()), StatusCode::NOT_FOUND, "cluster_not_found"),
        // A path the server's policy refuses (SPEC §12), and one that does not exist.
        (Method::POST, format!("{MESDB}/clusters"), Some(json!({"id": "c9", "description": "d", "provider": "directory", "path": "/proc/self"}).to_string()), StatusCode::BAD_REQUEST, "path_not_allowed"),
        (Method::POST, format!("{MESDB}/clusters"), Some(json!({"id": "c9", "description": "d", "provider": "directory", "path": "/x"}).to_string()), StatusCode::BAD_REQUEST, "path_not_found"),
        // Conflicts (a valid path, so only the id is wrong).
        (Method::POST, format!("{MESDB}/clusters"), Some(json!({"id": "c1", "description": "d", "provider": "directory", "path": api.dir.path().join("c1")}).to_string()), StatusCode::CONFLICT, "cluster_exists"),
        (Method::DELETE, format!("{MESDB}/clusters/c1"), None, StatusCode::CONFLICT, "cluster_in_use"),
        // Unknown routes and methods.
        (Method::GET, format!("{JOBS}/nothing"), None, StatusCode::NOT_FOUND, "route_not_found"),
        (Method::PUT, format!("{JOBS}/jobs"), Some("{}".into()), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (Method::GET, format!("{JOBS}/jobs/{job}/run"), None, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (Method::GET, format!("{MESDB}/backups/{unknown_job}/verify"), None, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    for (method, path, body, status, code) in cases {
        let a = api.call(method.clone(), &path, body.as_deref()).await;
        assert_problem(&a, status, code);
        assert!(!a.text.contains("panicked"), "{method} {path}: {}", a.text);
    }
    // THEN nothing changed
    assert_eq!(api.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_problems_name_every_field() {
    let api = Api::new().await;
    let a = api
        .post(
            &format!("{JOBS}/jobs"),
            json!({"description": " ", "schedule": "*/30 * * * *", "type": "Backup",
                   "data": {"clusterId": "c 1", "description": "{foo}", "maxBackupCount": 0}}),
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "validation");
    let fields = a.body["fields"].as_object().unwrap();
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "data.clusterId",
            "data.description",
            "data.maxBackupCount",
            "description",
            "schedule",
            "type"
        ]
    );
    assert!(
        fields["schedule"]
            .as_str()
            .unwrap()
            .contains("once an hour"),
        "{}",
        a.text
    );
    // AND `problems` keeps each field's stable codes (and spans) beside its message
    let problems = &a.body["problems"];
    let codes = |key: &str| -> Vec<&str> {
        problems[key]
            .as_array()
            .unwrap_or_else(|| panic!("no problems for {key}: {}", a.text))
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect()
    };
    assert_eq!(codes("description"), ["required"]);
    assert_eq!(codes("schedule"), ["too_frequent"]);
    assert_eq!(codes("type"), ["invalid_value"]);
    assert_eq!(codes("data.clusterId"), ["invalid_value"]);
    assert_eq!(codes("data.description"), ["unknown_placeholder"]);
    assert_eq!(codes("data.maxBackupCount"), ["invalid_value"]);
    assert_eq!(problems["data.clusterId"][0]["start"], 1);
    assert_eq!(problems["data.clusterId"][0]["end"], 2);
    assert!(problems["description"][0].get("start").is_some());
    assert_eq!(problems["schedule"][0]["message"], fields["schedule"]);
    // A misspelt field names it.
    let a = api
        .post(&format!("{JOBS}/jobs"), json!({"schedul": "x"}))
        .await;
    assert_eq!(
        a.body["fields"]["schedul"],
        "This field is not part of the request; check its spelling."
    );
    // A mistyped value is named in a client's words, with what to write
    let a = api
        .post(
            &format!("{JOBS}/jobs"),
            json!({"description": "d", "schedule": "0 3 * * *",
                   "data": {"clusterId": "c1", "description": "x", "maxBackupCount": "2"}}),
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "malformed_body");
    let said = a.body["fields"]["data.maxBackupCount"]
        .as_str()
        .unwrap_or_default();
    assert!(
        said.contains("expected a whole number") && said.contains("without quotes"),
        "{}",
        a.text
    );
    assert!(!said.contains("i64"), "{said}");
    // An unknown provider is named as the field that holds it, with the providers there are
    let a = api
        .post(
            &format!("{MESDB}/clusters"),
            json!({"id": "c9", "description": "d", "provider": "Directory", "path": "/x"}),
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "malformed_body");
    let said = a.body["fields"]["provider"].as_str().unwrap_or_default();
    assert!(
        said.contains("`Directory`") && said.contains("`directory`"),
        "{}",
        a.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_non_json_bodies_are_refused() {
    let api = Api::new().await;
    let huge = json!({"description": "x".repeat(100 * 1024)}).to_string();
    let a = api
        .call(Method::POST, &format!("{JOBS}/jobs"), Some(&huge))
        .await;
    assert_problem(&a, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    // A form post (what a hostile web page can send without CORS) is refused.
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{JOBS}/jobs"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(seed_job("c1").to_string()))
        .unwrap();
    let a = api.send(request).await;
    assert_problem(
        &a,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert!(api.get(&format!("{JOBS}/jobs")).await.body["jobs"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_form_or_a_page_saying_how_to_build_it() {
    let api = Api::new().await;
    // GIVEN no built form WHEN `/` is asked for THEN a page says how to build it
    let app = backup_api::router_with_web(api.app.clone(), Some(&api.dir.path().join("missing")));
    let (status, text) = page(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("not built"), "{text}");
    // AND API paths still answer problems, not pages
    let response = app
        .clone()
        .oneshot(
            Request::get(format!("{JOBS}/nothing"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    // GIVEN a built form THEN its files are served
    let web = api.dir.path().join("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("index.html"), "<h1>form</h1>").unwrap();
    let app = backup_api::router_with_web(api.app.clone(), Some(&web));
    let (status, text) = page(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, "<h1>form</h1>");
    let response = app
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_answered_only_for_named_origins() {
    let api = Api::new().await;
    let origin = backup_api::parse_origin("http://localhost:5173").unwrap();
    let app = backup_api::with_cors(api.app.clone(), vec![origin]);
    let preflight = |from: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri(format!("{JOBS}/jobs"))
            .header(header::ORIGIN, from)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    // GIVEN an allowed origin WHEN it preflights THEN it is allowed
    let ok = app
        .clone()
        .oneshot(preflight("http://localhost:5173"))
        .await
        .unwrap();
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:5173"
    );
    // AND it may send `Authorization` (backupctl serve's bearer token, SPEC §12)
    let allowed = ok.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    // GIVEN another origin THEN no permission is granted
    let other = app
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(other
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    // AND without the layer there is no CORS at all
    let none = api
        .app
        .clone()
        .oneshot(preflight("http://localhost:5173"))
        .await
        .unwrap();
    assert!(none
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_and_lock_problems_keep_their_codes() {
    let api = Api::new().await;
    let codes = |a: &Answer, key: &str| -> Vec<String> {
        a.body["problems"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no problems for {key}: {}", a.text))
            .iter()
            .map(|p| p["code"].as_str().unwrap().to_owned())
            .collect()
    };
    // GIVEN a registration where every field is wrong WHEN posted THEN 400 with a code each
    let a = api
        .register(
            json!({"id": "a b", "description": " ", "provider": "aws-ebs", "region": "Mars",
                   "volumeIds": ["volume-1"]}),
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(codes(&a, "id"), ["invalid_value"]);
    assert_eq!(codes(&a, "description"), ["required"]);
    assert_eq!(codes(&a, "region"), ["invalid_region"]);
    assert_eq!(codes(&a, "volumeIds"), ["invalid_volume_id"]);
    assert_eq!(
        a.body["problems"]["volumeIds"][0]["message"],
        a.body["fields"]["volumeIds"]
    );
    // AND a relative path is `not_absolute`, a refused one `path_not_allowed`
    let a = api
        .register(
            json!({"id": "c9", "description": "d", "provider": "directory", "path": "rel/dir"}),
        )
        .await;
    assert_eq!(codes(&a, "path"), ["not_absolute"]);
    let a = api
        .register(
            json!({"id": "c9", "description": "d", "provider": "directory", "path": "/proc/self"}),
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "path_not_allowed");
    assert_eq!(codes(&a, "path"), ["path_not_allowed"]);
    // GIVEN a job for a cluster that is not registered THEN `not_found` on data.clusterId
    let a = api.post(&format!("{JOBS}/jobs"), seed_job("c404")).await;
    assert_eq!(codes(&a, "data.clusterId"), ["not_found"]);
    // GIVEN a lock with a reserved operation and a zero TTL THEN both codes
    api.cluster("c1").await;
    let a = api
        .lock(
            "c1",
            json!({"operation": "scheduled-backup", "ttlSeconds": 0}),
        )
        .await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(codes(&a, "operation"), ["reserved_operation"]);
    assert_eq!(codes(&a, "ttlSeconds"), ["out_of_range"]);
    assert_eq!(
        a.body["fields"]["ttlSeconds"],
        "A maintenance lock lasts 1 to 604800 seconds; 0 is not in that range."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rearm_moves_every_scopes_jobs_a_page_at_a_time() {
    let api = Api::new().await;
    api.cluster("orders").await;
    let mut jobs = vec![api.job("orders").await, api.job("orders").await];
    jobs.sort();
    // WHEN the jobs are re-armed one per request
    let first = api
        .call(Method::POST, "/orchestrate/v1/jobs/rearm?limit=1", None)
        .await;
    // THEN each answer names the jobs it moved and, while some remain, where to go on
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(
        first.body,
        json!({"rearmed": [jobs[0]], "nextToken": jobs[0]})
    );
    let second = api
        .call(
            Method::POST,
            &format!("/orchestrate/v1/jobs/rearm?limit=1&nextToken={}", jobs[0]),
            None,
        )
        .await;
    assert_eq!(
        second.body,
        json!({"rearmed": [jobs[1]]}),
        "{}",
        second.text
    );
    // AND without a limit one request moves them all (the local mode has one kind: its
    // timers are armed again)
    let all = api
        .call(Method::POST, "/orchestrate/v1/jobs/rearm", None)
        .await;
    assert_eq!(all.body, json!({"rearmed": jobs}), "{}", all.text);
    // WHEN the page is out of range, or the method is wrong THEN a problem
    let bad = api
        .call(Method::POST, "/orchestrate/v1/jobs/rearm?limit=0", None)
        .await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "validation");
    assert!(bad.body["fields"]["limit"].is_string(), "{}", bad.text);
    let bad = api
        .call(
            Method::POST,
            "/orchestrate/v1/jobs/rearm?nextToken=nope",
            None,
        )
        .await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "validation");
    let wrong = api.get("/orchestrate/v1/jobs/rearm").await;
    assert_problem(&wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

/// Follows a list route page by page (`limit` each) and returns every item's `id`.
async fn walk(api: &Api, path: &str, key: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..50 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(token) = &next {
            url.push_str(&format!("&nextToken={token}"));
        }
        let a = api.get(&url).await;
        assert_eq!(a.status, StatusCode::OK, "{url}: {}", a.text);
        let items = a.body[key].as_array().unwrap();
        assert!(items.len() <= limit, "{}", a.text);
        ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match a.body.get("nextToken") {
            Some(token) => next = Some(token.as_str().unwrap().to_owned()),
            None => return ids,
        }
    }
    panic!("{path} never ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_limit_and_next_token() {
    let api = Api::new().await;
    for c in ["c1", "c2", "c3", "c4", "c5"] {
        api.cluster(c).await;
    }
    for c in ["c1", "c2", "c3"] {
        api.job(c).await;
    }
    for c in ["c1", "c2", "c3", "c4"] {
        let a = api
            .manual_backup(json!({"description": "Manual", "sourceClusterId": c}))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    // WHEN nothing is asked THEN one page holds everything, with no nextToken
    let all = api.get(&format!("{MESDB}/clusters")).await;
    assert_eq!(all.body["clusters"].as_array().unwrap().len(), 5);
    assert!(all.body.get("nextToken").is_none(), "{}", all.text);
    let whole_backups: Vec<String> = (api.get(&format!("{MESDB}/backups")).await.body["backups"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(whole_backups.len(), 4);
    // Jobs made in the same millisecond list by id: compare with the list in one page.
    let jobs = walk(&api, &format!("{JOBS}/jobs"), "jobs", 1000).await;
    assert_eq!(jobs.len(), 3);
    // THEN pages of any size give every item once, in the list's order
    for limit in [1, 2, 3] {
        assert_eq!(
            walk(&api, &format!("{MESDB}/clusters"), "clusters", limit).await,
            ["c1", "c2", "c3", "c4", "c5"]
        );
        assert_eq!(
            walk(&api, &format!("{JOBS}/jobs"), "jobs", limit).await,
            jobs
        );
        assert_eq!(
            walk(&api, &format!("{MESDB}/backups"), "backups", limit).await,
            whole_backups
        );
        let c2 = walk(
            &api,
            &format!("{MESDB}/backups?clusterId=c2"),
            "backups",
            limit,
        )
        .await;
        assert_eq!(c2.len(), 1);
    }
    // AND a token of one list is refused by another
    let first = api.get(&format!("{MESDB}/clusters?limit=1")).await;
    let token = first.body["nextToken"].as_str().unwrap();
    let a = api.get(&format!("{JOBS}/history?nextToken={token}")).await;
    assert_problem(&a, StatusCode::BAD_REQUEST, "validation");
    assert!(a.text.contains("nextToken"), "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_updates_a_job_in_place_keeping_its_backups_and_history() {
    let api = Api::new().await;
    api.cluster("orders").await;
    let id = api.job("orders").await;
    let job_path = format!("{JOBS}/jobs/{id}");
    let run = api
        .call(Method::POST, &format!("{job_path}/run"), None)
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert!(api.local.engine.wait_idle(Duration::from_secs(30)).await);
    // WHEN the job is patched (the cluster named again as it is)
    let body = json!({
        "description": "Nightly orders",
        "schedule": "0 3 * * *",
        "data": {"clusterId": "orders", "description": "{cluster} nightly", "maxBackupCount": 5}
    });
    let a = api
        .call(Method::PATCH, &job_path, Some(&body.to_string()))
        .await;
    // THEN it answers the job as it is now, same id
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let job = &a.body["job"];
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["schedule"], "0 3 * * *");
    assert_eq!(job["description"], "Nightly orders");
    assert_eq!(job["data"]["description"], "{cluster} nightly");
    assert_eq!(job["data"]["maxBackupCount"], 5);
    assert_eq!(job["eventbridge"], json!(["cron(0 3 * * ? *)"]));
    assert_eq!(api.get(&job_path).await.body["job"], *job);
    // AND its history and backup stay its own
    let history = api.get(&format!("{JOBS}/history?jobId={id}")).await.body;
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    let backups = api.get(&format!("{MESDB}/backups?jobId={id}")).await.body;
    assert_eq!(backups["backups"].as_array().unwrap().len(), 1);

    // WHEN a patch is wrong in several ways THEN 400 names every field and nothing changes
    let before = api.snapshot().await;
    let bad =
        json!({"schedule": "*/10 * * * *", "data": {"clusterId": "other", "maxBackupCount": 0}});
    let a = api
        .call(Method::PATCH, &job_path, Some(&bad.to_string()))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json");
    for field in ["schedule", "data.clusterId", "data.maxBackupCount"] {
        assert!(a.body["fields"][field].is_string(), "{field}: {}", a.text);
    }
    assert_eq!(a.body["problems"]["schedule"][0]["code"], "too_frequent");
    // AND each schedule error names its part of the schedule and its span (SPEC §2.2)
    assert_eq!(a.body["problems"]["schedule"][0]["field"], "minute");
    assert_eq!(
        (
            a.body["problems"]["schedule"][0]["start"].as_u64(),
            a.body["problems"]["schedule"][0]["end"].as_u64()
        ),
        (Some(0), Some(4))
    );
    assert!(
        a.body["problems"]["data.clusterId"][0]
            .get("field")
            .is_none(),
        "{}",
        a.text
    );
    for (schedule, fields, spans) in [
        ("60 24 * * *", vec!["minute", "hour"], vec![(0, 2), (3, 5)]),
        ("", vec!["schedule"], vec![(0, 0)]),
    ] {
        let a = api
            .call(
                Method::PATCH,
                &job_path,
                Some(&json!({"schedule": schedule}).to_string()),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        let errors = a.body["problems"]["schedule"]
            .as_array()
            .expect("schedule problems");
        let got: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
        assert_eq!(got, fields, "{}", a.text);
        let got: Vec<(u64, u64)> = errors
            .iter()
            .filter_map(|e| Some((e["start"].as_u64()?, e["end"].as_u64()?)))
            .collect();
        assert_eq!(got, spans, "{}", a.text);
    }
    assert_eq!(api.snapshot().await, before);
    // AND an unknown field is refused the same way
    let a = api
        .call(Method::PATCH, &job_path, Some(r#"{"maxBackupCnt": 3}"#))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);

    // WHEN the job is unknown THEN 404; WHEN it is deleted THEN 409 job_deleted
    let unknown = format!("{JOBS}/jobs/c196ogto0aeqohe3ommq");
    let a = api
        .call(
            Method::PATCH,
            &unknown,
            Some(r#"{"schedule": "0 4 * * *"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let a = api.call(Method::DELETE, &job_path, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = api
        .call(
            Method::PATCH,
            &job_path,
            Some(r#"{"schedule": "0 4 * * *"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert_eq!(a.body["code"], "job_deleted");
    assert_eq!(
        api.get(&job_path).await.body["job"]["schedule"],
        "0 3 * * *"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_answers_ok_then_failed_naming_the_file_and_the_backup_keeps_the_result() {
    // GIVEN an available manual backup
    let api = Api::new().await;
    api.cluster("c1").await;
    let a = api
        .manual_backup(json!({"description": "by hand", "sourceClusterId": "c1"}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_owned();
    assert!(api.local.engine.wait_idle(Duration::from_secs(30)).await);
    let verify = format!("{MESDB}/backups/{id}/verify");
    // WHEN it is verified THEN 200, ok, no problems
    let a = api.call(Method::POST, &verify, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["backupId"], id.as_str());
    assert_eq!(a.body["status"], "ok");
    assert_eq!(a.body["problems"], json!([]));
    let checked = a.body["checkedAt"].as_str().unwrap().to_owned();
    // WHEN a byte of its copy changes behind the server's back
    let copy = api.dir.path().join(format!("state/backups/{id}/data/file"));
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[0] ^= 0x01;
    std::fs::write(&copy, bytes).unwrap();
    // THEN a verify still answers 200, saying failed and naming the file
    let a = api.call(Method::POST, &verify, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["status"], "failed");
    let problems = a.body["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["path"] == "file"
                && p["problem"].as_str().unwrap().contains("BLAKE3 checksum")),
        "{}",
        a.text
    );
    // AND the backup shows the last result
    let backup = api.get(&format!("{MESDB}/backups/{id}")).await.body;
    assert_eq!(backup["backup"]["verification"]["status"], "failed");
    assert_eq!(
        backup["backup"]["verification"]["problems"],
        a.body["problems"]
    );
    assert_eq!(backup["backup"]["verifiedAt"], a.body["checkedAt"]);
    assert!(backup["backup"]["verifiedAt"].as_str().unwrap() >= checked.as_str());
    assert_eq!(backup["backup"]["status"], "available");
    // WHEN the backup is deleted THEN verifying it is a 409 naming its state
    let a = api
        .call(Method::DELETE, &format!("{MESDB}/backups/{id}"), None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let a = api.call(Method::POST, &verify, None).await;
    assert_problem(&a, StatusCode::CONFLICT, "backup_not_available");
    assert!(
        a.body["detail"].as_str().unwrap().contains("is deleted"),
        "{}",
        a.text
    );
}
