#![cfg(feature = "aws")]
//! `backupctl --aws-sigv4` (SPEC §16) against a loopback server that checks each request's
//! signature with botocore's `SigV4Auth` (tests/fixtures/sigv4_verifier.py), an
//! implementation independent of the SDK's signer. `scripts/test-aws.sh` runs these with
//! `--ignored`, with its Python (which has botocore) first on PATH; the refusals made before
//! anything is sent need no server and run with every `cargo test`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::words;

mod support;

const ACCESS_KEY: &str = "AKIDBACKUPCTLTEST";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYBACKUPCTL";
const REGION: &str = "eu-west-2";

/// The verifier process, stopped when dropped.
struct Verifier {
    child: Child,
    port: u16,
}

impl Verifier {
    fn start() -> Verifier {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sigv4_verifier.py"
        );
        let mut child = Command::new("python3")
            .args([script, ACCESS_KEY, SECRET_KEY, REGION])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the verifier (scripts/test-aws.sh puts its venv first)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("the verifier's stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the verifier prints its port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the verifier printed {line:?}, not a port"));
        Verifier { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `backupctl args` with only the credentials `env` gives (no profile, no config file, no
/// instance metadata), so the SDK's chain finds exactly what the test means.
fn backupctl(url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let nowhere = std::env::temp_dir().join("backupctl-sigv4-test-no-such-file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_backupctl"));
    for name in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "BACKUPCTL_TOKEN",
        "BACKUPCTL_AWS_SIGV4",
    ] {
        command.env_remove(name);
    }
    command
        .env("BACKUPCTL_URL", url)
        .env("AWS_CONFIG_FILE", &nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("backupctl runs")
}

fn keys(secret: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", REGION),
    ]
}

fn verified(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "backupctl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let echo: Value = serde_json::from_slice(&out.stdout).expect("the verifier's JSON echo");
    assert_eq!(echo["verified"], true, "{echo}");
    echo
}

/// Asserts that backupctl exited with `code` and that its error names each of `says`.
fn refused(out: &Output, code: i32, says: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    for text in says {
        assert!(stderr.contains(text), "no {text:?} in: {stderr}");
    }
}

#[test]
#[ignore = "needs python3 with botocore (scripts/test-aws.sh)"]
fn signed_requests_verify_with_an_independent_implementation() {
    let verifier = Verifier::start();
    let url = verifier.url();

    // A GET, with a path segment that must be percent-encoded.
    let out = backupctl(
        &url,
        &keys(SECRET_KEY),
        &words("--aws-sigv4 --org-id 'my org' jobs list --json"),
    );
    let echo = verified(&out);
    assert_eq!(echo["method"], "GET");
    assert_eq!(
        echo["path"],
        "/orchestrate/v1/organizations/my%20org/projects/default/jobs"
    );

    // A POST with a body, switched on by BACKUPCTL_AWS_SIGV4=1.
    let mut env = keys(SECRET_KEY);
    env.push(("BACKUPCTL_AWS_SIGV4", "1"));
    let out = backupctl(
        &url,
        &env,
        &words(
            "jobs create --description Nightly --schedule '0 3 * * *' scheduled-backup \
             --cluster-id vol-0123456789abcdef0 --description '{cluster} {datetime:RFC3339}' \
             --max-backup-count 7 --json",
        ),
    );
    let echo = verified(&out);
    assert_eq!(echo["method"], "POST");
    let body: Value = serde_json::from_str(echo["body"].as_str().expect("a body")).expect("JSON");
    assert_eq!(body["schedule"], "0 3 * * *");

    // The same signed headers with another body: refused.
    let headers = echo["headers"].as_object().expect("the headers").clone();
    let tampered = body.to_string().replace("0 3 * * *", "0 4 * * *");
    let mut request = format!(
        "POST {} HTTP/1.1\r\nconnection: close\r\n",
        echo["path"].as_str().expect("a path")
    );
    for (name, value) in &headers {
        if name != "content-length" && name != "connection" {
            request.push_str(&format!("{name}: {}\r\n", value.as_str().unwrap_or("")));
        }
    }
    request.push_str(&format!(
        "content-length: {}\r\n\r\n{tampered}",
        tampered.len()
    ));
    let mut stream = TcpStream::connect(("127.0.0.1", verifier.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.0 403"), "{answer}");
    assert!(
        answer.contains("signature we calculated does not match"),
        "{answer}"
    );

    // Temporary credentials sign their session token too.
    let mut env = keys(SECRET_KEY);
    env.push(("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN"));
    let echo = verified(&backupctl(
        &url,
        &env,
        &["--aws-sigv4", "history", "list", "--json"],
    ));
    assert_eq!(
        echo["headers"]["x-amz-security-token"],
        "FwoGZXIvYXdzEXAMPLETOKEN"
    );

    // A wrong secret: the server refuses, and the CLI says so.
    let out = backupctl(
        &url,
        &keys("not-the-secret"),
        &["--aws-sigv4", "jobs", "list"],
    );
    refused(
        &out,
        1,
        &["signature we calculated does not match", "--aws-sigv4"],
    );
}

/// Nothing listens here: a request that was sent would fail as unreachable instead.
const NO_SERVER: &str = "http://127.0.0.1:9";

#[test]
fn missing_credentials_or_region_and_a_second_authentication_are_refused_before_sending() {
    let out = backupctl(
        NO_SERVER,
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ],
        &["--aws-sigv4", "jobs", "list"],
    );
    refused(&out, 1, &["AWS_REGION"]);

    let out = backupctl(
        NO_SERVER,
        &[("AWS_REGION", REGION)],
        &["--aws-sigv4", "jobs", "list"],
    );
    refused(&out, 1, &["aws sso login"]);

    let out = backupctl(
        NO_SERVER,
        &keys(SECRET_KEY),
        &["--aws-sigv4", "--token", "abc", "jobs", "list"],
    );
    refused(&out, 2, &["give one"]);
}
