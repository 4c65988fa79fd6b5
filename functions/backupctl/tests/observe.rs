//! Observing a real `backupctl serve` (SPEC §17): `/metrics` after runs that succeed, fail
//! and meet a locked cluster; the `/readyz` probe; JSON logs; no colour codes in a log file.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::{words, Sandbox, Server, MESDB};

/// A generous bound for one small backup on a loaded machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET url` with an optional `Authorization` value: (status, content type, body).
fn get(url: &str, authorization: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.body_mut().read_to_string().expect("body");
    (response.status().as_u16(), content_type, body)
}

/// The samples of a Prometheus text, by `name{labels}` as written.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {line}"));
            (series.to_owned(), value)
        })
        .collect()
}

fn run_now(server: &Server, job: &str) -> Value {
    server.wait_run(&server.run_job(job), RUN_TIMEOUT)
}

#[test]
fn metrics_count_a_success_a_failure_and_lock_conflicts_and_logs_are_json_lines() {
    // GIVEN a server logging JSON, with a job whose cluster is fine and one whose data
    // directory has gone
    let sandbox = Sandbox::new();
    let server = Server::start_with(&sandbox.data_dir(), &["--log-format", "json"], &[]);
    let (files, size) = (3, 4096);
    let good = sandbox.cluster_dir("good", files, size);
    server.register_dir("good", &good);
    let gone = sandbox.cluster_dir("gone", 1, 16);
    server.register_dir("gone", &gone);
    std::fs::remove_dir_all(&gone).expect("remove the cluster's data");
    let ok_job = server.create_job("good", 5);
    let bad_job = server.create_job("gone", 5);

    // WHEN one run succeeds, one fails, and, with the good cluster locked by an operator,
    // a run and a manual backup find the lock held
    let ok = run_now(&server, &ok_job);
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let failed = run_now(&server, &bad_job);
    assert_eq!(failed["status"], "failed", "{failed}");
    let failure_code = failed["errorCode"].as_str().expect("errorCode").to_owned();
    server.ok(&words(
        "clusters lock --cluster-id good --operation expand-disk --ttl 30m",
    ));
    let locked = run_now(&server, &ok_job);
    assert_eq!(locked["errorCode"], "cluster_locked", "{locked}");
    let refused = server.request(
        "POST",
        &format!("{MESDB}/backups"),
        Some(r#"{"description":"x","sourceClusterId":"good"}"#),
    );
    assert_eq!(refused.status, 409, "{refused:?}");

    // THEN /metrics needs the token
    let url = format!("{}/metrics", server.url);
    let (status, _, _) = get(&url, None);
    assert_eq!(status, 401);
    // AND with it answers Prometheus text with the counts of what happened
    let (status, content_type, text) = get(&url, server.bearer().as_deref());
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let s = samples(&text);
    let at = |series: &str| -> f64 {
        *s.get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(
        at(r#"backupctl_runs_total{status="succeeded",error_code=""}"#),
        1.0
    );
    assert_eq!(
        at(&format!(
            r#"backupctl_runs_total{{status="failed",error_code="{failure_code}"}}"#
        )),
        1.0
    );
    assert_eq!(
        at(r#"backupctl_runs_total{status="failed",error_code="cluster_locked"}"#),
        1.0
    );
    assert_eq!(at("backupctl_run_duration_seconds_count"), 3.0);
    assert_eq!(
        at(r#"backupctl_run_duration_seconds_bucket{le="+Inf"}"#),
        3.0
    );
    // the run and the manual backup
    assert_eq!(at("backupctl_lock_conflicts_total"), 2.0);
    assert!(at("backupctl_backup_copied_bytes_total") >= (files * size) as f64);
    assert_eq!(at("backupctl_backup_linked_bytes_total"), 0.0);
    // AND the store's gauges: the good backup, and the failed run's defunct one
    assert_eq!(at(r#"backupctl_backups{status="available"}"#), 1.0);
    assert_eq!(at(r#"backupctl_backups{status="defunct"}"#), 1.0);
    assert_eq!(at(r#"backupctl_backups{status="creating"}"#), 0.0);
    let backup = server.backup(ok["linkedResource"].as_str().expect("backup id"));
    let created =
        chrono::DateTime::parse_from_rfc3339(backup["created"].as_str().expect("created"))
            .expect("RFC 3339");
    assert_eq!(
        at(&format!(
            r#"backupctl_job_last_available_backup_timestamp_seconds{{job_id="{ok_job}"}}"#
        )),
        created.timestamp() as f64
    );
    assert!(!text.contains(&format!("job_id=\"{bad_job}\"")), "{text}");
    assert!(text.contains("# TYPE backupctl_job_last_verification_timestamp_seconds gauge"));
    assert!(!text.contains("backupctl_job_last_verification_timestamp_seconds{"));
    assert_eq!(at("backupctl_backups_scan_truncated"), 0.0);

    // AND once the good job's backup is verified, the job's last verification is its time
    let backup_id = ok["linkedResource"].as_str().expect("backup id");
    server.ok(&["backups", "verify", "--id", backup_id]);
    let verified_at = server.backup(backup_id)["verifiedAt"]
        .as_str()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339"))
        .expect("verifiedAt");
    let (_, _, text) = get(&url, server.bearer().as_deref());
    assert_eq!(
        samples(&text).get(&format!(
            r#"backupctl_job_last_verification_timestamp_seconds{{job_id="{ok_job}"}}"#
        )),
        Some(&(verified_at.timestamp() as f64)),
        "{text}"
    );

    // AND /readyz answers without a credential, as a probe does
    let (status, _, body) = get(&format!("{}/readyz", server.url), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["status"],
        "ready"
    );

    // AND every line the server logged is one JSON object, without colour codes
    let log = server.log();
    assert!(log.lines().count() > 3, "{log}");
    for line in log.lines() {
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(record["level"].is_string(), "{line}");
        assert!(record["fields"].is_object(), "{line}");
    }
    assert!(log.contains("run failed"), "{log}");
    assert!(!log.contains("\x1b["), "{log}");
}

#[test]
fn a_text_log_written_to_a_file_has_no_colour_codes() {
    // GIVEN a server whose stderr is a file, with NO_COLOR not set
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox.data_dir(), &[("NO_COLOR", "")]);
    // WHEN it logs (a start and a request that fails)
    let (status, _, _) = get(&format!("{}/metrics", server.url), Some("Bearer nope"));
    assert_eq!(status, 401);
    let (status, _, _) = get(&format!("{}/readyz", server.url), None);
    assert_eq!(status, 200);
    // THEN the log is plain text
    let log = server.log();
    assert!(log.contains("serving"), "{log}");
    assert!(!log.contains("\x1b["), "{log:?}");
    assert!(serde_json::from_str::<Value>(log.lines().next().unwrap_or_default()).is_err());
}
