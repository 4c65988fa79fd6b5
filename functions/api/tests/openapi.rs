//! The OpenAPI document (`GET /openapi.json`, SPEC §17) against the router it describes: every
//! route the router answers is in the document with the same methods, and the document is
//! as strict as the server (closed objects, required fields, enums of the stable codes).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use backup_local::{LocalMode, LocalOptions};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

async fn local() -> (LocalMode, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalMode::start(LocalOptions::new(dir.path().join("state")))
        .await
        .unwrap();
    (local, dir)
}

/// The paths the router routes, as axum registered them. axum keeps no public list, but its
/// `Debug` shows each route's path (`RouteId(n): "/path"`) before its fallback router's: read from there, so a route
/// added to the router by any means (not only through `openapi::api_routes`) is seen.
fn router_paths(router: &Router) -> BTreeSet<String> {
    let shown = format!("{router:?}");
    // The fallback router (which answers unknown paths) follows the routes.
    let shown = shown.split("fallback_router").next().unwrap_or_default();
    let mut paths = BTreeSet::new();
    let mut rest = shown;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at..];
        let Some(start) = rest.find(": \"") else {
            break;
        };
        let after = &rest[start + 3..];
        let end = after.find('"').unwrap_or(after.len());
        paths.insert(after[..end].to_owned());
        rest = &after[end..];
    }
    paths
}

/// A concrete URI for a route's path: each `{parameter}` filled with a well-formed id.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{org}" | "{project}" => "default",
            s if s.starts_with('{') => "id-1",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The methods the router answers on `path`: every method but those it answers with its
/// `method_not_allowed` problem.
async fn router_methods(router: &Router, path: &str) -> BTreeSet<String> {
    let mut methods = BTreeSet::new();
    for method in METHODS {
        let request = Request::builder()
            .method(method.clone())
            .uri(concrete(path))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_ne!(
            body["code"], "route_not_found",
            "{method} {path}: the router lists the path but does not route it"
        );
        if status != StatusCode::METHOD_NOT_ALLOWED {
            methods.insert(method.as_str().to_ascii_lowercase());
        }
    }
    methods
}

#[tokio::test]
async fn every_route_of_the_router_is_in_the_document_with_its_methods() {
    // GIVEN the router `serve` and the Lambda run, and the document it serves
    let (local, _dir) = local().await;
    let router = backup_api::router(Arc::new(local.engine.clone()));
    let doc = backup_api::openapi::document();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect();

    // WHEN every path the router knows is asked with every method
    let paths = router_paths(&router);
    assert!(
        paths.len() >= 12,
        "reading the router's paths from its Debug output found only {paths:?}; has axum changed it?"
    );
    let mut routed = BTreeSet::new();
    for path in &paths {
        for method in router_methods(&router, path).await {
            routed.insert((path.clone(), method));
        }
    }

    // THEN the router's routes and the document's operations are the same set
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document (annotate the handler with #[utoipa::path] \
         and register it with routes! in openapi::api_routes): {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented operations the router does not answer: {unrouted:?}"
    );
    local.shutdown(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_document_is_served_as_json() {
    let (local, _dir) = local().await;
    let router = backup_api::router(Arc::new(local.engine.clone()));
    let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "a client reads it by its media type"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let served: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(served, backup_api::openapi::document());
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    local.shutdown(std::time::Duration::from_secs(5)).await;
}

/// Every schema node of the document, with where it is.
fn walk<'a>(at: String, value: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(object) => {
            out.push((at.clone(), value));
            for (key, child) in object {
                walk(format!("{at}/{key}"), child, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(format!("{at}/{i}"), child, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_object_is_closed_and_every_operation_lists_its_problems() {
    let doc = backup_api::openapi::document();
    let mut nodes = Vec::new();
    walk(String::new(), &doc, &mut nodes);
    for (at, node) in &nodes {
        if node.get("properties").is_some() && node.get("type") == Some(&Value::from("object")) {
            assert_eq!(
                node.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{at} is an open object"
            );
        }
        assert!(node.get("allOf").is_none(), "{at}: allOf is not closed");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let public = ["/healthz", "/readyz", "/openapi.json"].contains(&path.as_str());
            let mut expected = vec!["415", "421"];
            if !public {
                expected.extend(["401", "503"]);
            }
            // Only `/metrics` takes neither a parameter nor a body, so nothing to refuse.
            if !public && path != "/metrics" {
                expected.push("400");
            }
            if method != "get" {
                expected.push("403");
            }
            if path.contains("_id}") {
                expected.push("404");
            }
            if operation.get("requestBody").is_some() {
                expected.push("413");
            }
            for status in expected {
                let response = &responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path} does not document {status}"));
                let name = response["$ref"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap();
                let content = &doc["components"]["responses"][name]["content"];
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
            if path.starts_with("/orchestrate/") || path.starts_with("/mesdb/") {
                assert!(
                    operation.get("security").is_none(),
                    "{method} {path} needs the token"
                );
            } else if public {
                assert!(operation.get("security").is_some(), "{path} is public");
            }
        }
    }
    assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
}

#[test]
fn run_now_documents_both_its_answers_and_lists_document_their_pages() {
    let doc = backup_api::openapi::document();
    let run = &doc["paths"]
        ["/orchestrate/v1/organizations/{org}/projects/{project}/jobs/{job_id}/run"]["post"]
        ["responses"];
    for status in ["200", "202"] {
        assert_eq!(
            run[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/RunJobResponse"
        );
    }
    for list in ["jobs", "history", "backups", "clusters"] {
        let path = if list == "backups" || list == "clusters" {
            format!("/mesdb/v1/organizations/{{org}}/projects/{{project}}/{list}")
        } else {
            format!("/orchestrate/v1/organizations/{{org}}/projects/{{project}}/{list}")
        };
        let names: BTreeSet<&str> = doc["paths"][&path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains("limit") && names.contains("nextToken"),
            "{path}: {names:?}"
        );
    }
}

#[test]
fn registering_and_restoring_a_cluster_document_every_answer() {
    // A registration answers 200; a restore (sourceBackupId) 201 when done, 202 when pending.
    let doc = backup_api::openapi::document();
    let post = &doc["paths"]["/mesdb/v1/organizations/{org}/projects/{project}/clusters"]["post"];
    for status in ["200", "201", "202"] {
        assert_eq!(
            post["responses"][status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/IdResponse",
            "{status}"
        );
    }
    for status in ["404", "409", "502"] {
        assert!(post["responses"][status].is_object(), "{status}");
    }
    let body = &doc["components"]["schemas"]["RegisterClusterRequest"];
    let text = body.to_string();
    for field in ["sourceBackupId", "availabilityZone", "volumeType"] {
        assert!(text.contains(field), "{field} not in {text}");
    }
}

#[test]
fn optional_fields_are_those_the_server_may_leave_out() {
    // GIVEN the schemas of what the server writes
    let doc = backup_api::openapi::document();
    let schemas = &doc["components"]["schemas"];
    let required = |name: &str| -> BTreeSet<String> {
        schemas[name]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    // THEN fields written always are required, fields skipped when empty are not, and
    // nothing the server writes is null
    let job = required("Job");
    assert!(job.contains("nextRuns") && job.contains("eventbridge") && job.contains("created"));
    let item = required("HistoryItem");
    assert!(item.contains("organizationId") && item.contains("prunedBackupIds"));
    assert!(!item.contains("endTime") && !item.contains("errorCode"));
    let backup = required("Backup");
    for field in [
        "id",
        "projectId",
        "provider",
        "serverVersion",
        "sizeGb",
        "availableNodeCount",
    ] {
        assert!(backup.contains(field), "{field}");
    }
    assert!(!backup.contains("linkedResource") && !backup.contains("details"));
    let problem = required("Problem");
    // `fields` is always written (`{}` when no field is at fault, SPEC §7); `code` is left
    // out by answers that come from no rule of ours
    assert!(problem.contains("fields") && !problem.contains("code"));
    for name in [
        "Job",
        "HistoryItem",
        "Backup",
        "Cluster",
        "ClusterLockInfo",
        "Problem",
        "JobList",
    ] {
        assert!(
            !schemas[name].to_string().contains("\"null\""),
            "{name} says a field may be null, but the server leaves it out instead"
        );
    }
    // AND the stable codes are enums
    assert_eq!(schemas["BackupStatus"]["enum"].as_array().unwrap().len(), 5);
    assert!(schemas["RunFailure"]["enum"]
        .as_array()
        .unwrap()
        .contains(&Value::from("provider_busy")));
    let codes = schemas["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    for code in [
        backup_local::policy::PATH_NOT_ALLOWED,
        backup_local::policy::PATH_NOT_FOUND,
        backup_local::policy::PATH_NOT_DIRECTORY,
        backup_local::policy::PATH_NOT_ABSOLUTE,
        backup_engine::engine::COMMANDS_NOT_ALLOWED,
        backup_local::directory::RUN_AS_NOT_ALLOWED,
    ] {
        assert!(codes.contains(&Value::from(code)), "{code}");
        assert!(backup_api::openapi::TARGET_CODES.contains(&code), "{code}");
    }
    assert_eq!(
        schemas["Backup"]["properties"]["provider"]["$ref"],
        "#/components/schemas/BackupProvider"
    );
}

#[test]
fn creations_link_to_reading_and_deleting_what_they_made() {
    let doc = backup_api::openapi::document();
    let links = |path: &str| {
        doc["paths"][path]["post"]["responses"]["200"]["links"]
            .as_object()
            .map(|l| l.keys().cloned().collect::<BTreeSet<_>>())
            .unwrap_or_default()
    };
    assert!(
        links("/orchestrate/v1/organizations/{org}/projects/{project}/jobs").contains("GetJob")
    );
    assert!(
        links("/mesdb/v1/organizations/{org}/projects/{project}/clusters")
            .contains("DeleteCluster")
    );
    assert!(
        links("/mesdb/v1/organizations/{org}/projects/{project}/backups").contains("GetBackup")
    );
}
