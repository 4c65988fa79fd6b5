//! SPEC §12 against real `backupctl serve` processes on 127.0.0.1 port 0: authentication
//! (token, JWT, 401s), requests a browser may forge (421 Host, 403 Origin, 415 media type),
//! the token file's mode, `--auth none`, slow clients, and another local user.
//!
//! Requests are written by hand on a `TcpStream` so every header (Host, Origin, the absence
//! of a Content-Type) is exactly what the test says. Every wait is bounded.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{backupctl, backupctl_with_token, mode, Sandbox, Server, MESDB, ORCH};

/// An answer read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Asserts a problem+json answer with `status` and `code`.
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("application/problem+json")),
            "{self:?}"
        );
        let problem = self.json();
        assert_eq!(problem["status"], status, "{problem}");
        assert_eq!(problem["code"], code, "{problem}");
        assert!(
            !problem["detail"].as_str().unwrap_or_default().is_empty(),
            "{problem}"
        );
    }
}

/// The `host:port` of a server's URL.
fn addr(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Sends one request with exactly `headers` (plus `Host` unless given, and
/// `Connection: close`) and reads the whole answer.
fn send(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let address = addr(server);
    let mut stream = TcpStream::connect(&address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {address}\r\n"));
    }
    for (key, value) in headers {
        request.push_str(&format!("{key}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("Connection: close\r\n\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

fn start(sandbox: &Sandbox) -> Server {
    Server::start(&sandbox.data_dir(), &[])
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// A JWT signed RS256 by the fixture key `key` that expires `exp_offset` seconds from now.
fn jwt(key: &str, exp_offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    signed(
        key,
        serde_json::json!({"sub": "operator", "aud": "esc", "exp": now + exp_offset}),
    )
}

/// A JWT of `claims` signed RS256 by the fixture key `key`.
fn signed(key: &str, claims: Value) -> String {
    let pem = fs::read(fixture(key)).expect("fixture key");
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("an RSA key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .expect("sign")
}

fn clusters(server: &Server) -> Value {
    let bearer = server.bearer().expect("a token");
    let answer = send(
        server,
        "GET",
        &format!("{MESDB}/clusters"),
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()
}

#[test]
fn every_api_route_needs_the_token_and_public_pages_do_not() {
    // GIVEN a server with a JWT key
    let sandbox = Sandbox::new();
    let key = fixture("jwt-test.pub.pem");
    let server = Server::start_with(
        &sandbox.data_dir(),
        &["--jwt-public-key", key.to_str().expect("UTF-8")],
        &[],
    );
    let token = server.token.clone().expect("a token");
    let jobs = format!("{ORCH}/jobs");

    // THEN no credential, a wrong token, a malformed header, and bad JWTs are 401s
    let wrong = format!("Bearer {}", "A".repeat(43));
    let expired = format!("Bearer {}", jwt("jwt-test.key.pem", -120));
    let other_key = format!("Bearer {}", jwt("jwt-other.key.pem", 3600));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let not_yet = format!(
        "Bearer {}",
        signed(
            "jwt-test.key.pem",
            serde_json::json!({"sub": "operator", "nbf": now + 3600, "exp": now + 7200})
        )
    );
    let basic = format!("Basic {token}");
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("no credential", None),
        ("wrong token", Some(&wrong)),
        ("malformed header", Some("Bearer")),
        ("basic scheme", Some(&basic)),
        ("not a bearer", Some("token")),
        ("expired JWT", Some(&expired)),
        ("JWT of another key", Some(&other_key)),
        ("JWT not valid yet (nbf ahead)", Some(&not_yet)),
    ];
    for (label, authorization) in &cases {
        for (method, path) in [
            ("GET", jobs.as_str()),
            ("GET", &format!("{MESDB}/backups")),
            ("GET", "/metrics"),
            ("POST", &format!("{jobs}/some-job/run")),
        ] {
            let headers: Vec<(&str, &str)> = authorization
                .map(|a| vec![("Authorization", a)])
                .unwrap_or_default();
            let answer = send(&server, method, path, &headers, "");
            answer.assert_problem(401, "unauthorized");
            let challenge = answer.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer"), "{label}: {answer:?}");
            let detail = answer.json()["detail"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                detail.contains("token") && detail.contains("BACKUPCTL_TOKEN"),
                "{label}: {detail}"
            );
            assert!(
                !detail.contains(&token),
                "the detail must not leak the token"
            );
        }
    }

    // THEN the token and a valid RS256 JWT are accepted
    for authorization in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("Bearer {}", jwt("jwt-test.key.pem", 3600)),
    ] {
        let answer = send(
            &server,
            "GET",
            &jobs,
            &[("Authorization", &authorization)],
            "",
        );
        assert_eq!(answer.status, 200, "{authorization}: {answer:?}");
    }

    // THEN the health check, the API's OpenAPI document and the web pages need nothing
    for path in ["/healthz", "/openapi.json", "/", "/index.html"] {
        let answer = send(&server, "GET", path, &[], "");
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
    let document = send(&server, "GET", "/openapi.json", &[], "").json();
    assert!(document["openapi"]
        .as_str()
        .unwrap_or_default()
        .starts_with("3.1"));
}

#[test]
fn the_token_file_is_private_and_reused_across_restarts() {
    // GIVEN a server that made its token
    let sandbox = Sandbox::new();
    let mut server = start(&sandbox);
    let path = sandbox.data_dir().join("token");
    assert_eq!(mode(&path), 0o600);
    let token = fs::read_to_string(&path).expect("token");
    assert_eq!(Some(token.trim()), server.token.as_deref());
    assert_eq!(
        token.trim().len(),
        43,
        "32 bytes in base64url without padding"
    );
    server.kill();
    // WHEN an operator widened it and the server restarts
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let server = start(&sandbox);
    // THEN the same token is printed and the file is 0600 again
    assert_eq!(server.token.as_deref(), Some(token.trim()));
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn the_cli_finds_the_token_and_says_where_it_is_when_refused() {
    let sandbox = Sandbox::new();
    let server = start(&sandbox);
    let data_dir = sandbox.data_dir();
    let data_dir = data_dir.to_str().expect("UTF-8");
    // WHEN the CLI has no token THEN it fails and says where the token is
    let out = backupctl(
        &server.url,
        &["jobs", "list", "--data-dir", "/nonexistent/dir"],
    );
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("token"), "{}", out.stderr);
    assert!(
        out.stderr.contains(data_dir),
        "the server's token path: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("/nonexistent/dir/token"),
        "{}",
        out.stderr
    );
    // WHEN the CLI is told the server's data directory THEN it reads the token there
    let out = backupctl(&server.url, &["jobs", "list", "--data-dir", data_dir]);
    assert!(out.success(), "{}", out.describe());
    let out = backupctl(&server.url, &["--data-dir", data_dir, "clusters", "list"]);
    assert!(out.success(), "{}", out.describe());
    // AND with --token (or BACKUPCTL_TOKEN)
    let token = server.token.clone().expect("token");
    let out = backupctl(&server.url, &["--token", &token, "jobs", "list"]);
    assert!(out.success(), "{}", out.describe());
    let out = backupctl_with_token(&server.url, Some("wrong"), &["jobs", "list"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(out.stderr.contains("--token"), "{}", out.stderr);
}

#[test]
fn forged_browser_requests_are_refused_and_change_nothing() {
    // GIVEN a server with one allowed console origin and a public host name
    let sandbox = Sandbox::new();
    let server = Server::start_with(
        &sandbox.data_dir(),
        &[
            "--cors-origin",
            "http://localhost:5173",
            "--public-host",
            "backups.example.test",
        ],
        &[],
    );
    let bearer = server.bearer().expect("token");
    let cluster_dir = sandbox.cluster_dir("c1", 1, 16);
    let body = serde_json::json!({
        "id": "c1", "description": "C1", "provider": "directory",
        "path": cluster_dir.to_str().expect("UTF-8"),
    })
    .to_string();
    let clusters_path = format!("{MESDB}/clusters");
    let before = clusters(&server);
    let post_cluster =
        |headers: &[(&str, &str)]| send(&server, "POST", &clusters_path, headers, &body);

    // 415: a body without a JSON content type, for every body-taking route
    let json_backup = r#"{"description":"x","sourceClusterId":"c1"}"#;
    let json_job = r#"{"description":"d","schedule":"0 3 * * *","type":"ScheduledBackup","data":{"clusterId":"c1","description":"d","maxBackupCount":1}}"#;
    for (path, payload) in [
        (clusters_path.clone(), body.as_str()),
        (format!("{ORCH}/jobs"), json_job),
        (format!("{MESDB}/backups"), json_backup),
        (
            format!("{MESDB}/clusters/c1/lock"),
            r#"{"operation":"x","ttlSeconds":60}"#,
        ),
    ] {
        for content_type in [Some("text/plain"), None] {
            let mut headers = vec![("Authorization", bearer.as_str())];
            if let Some(content_type) = content_type {
                headers.push(("Content-Type", content_type));
            }
            let answer = send(&server, "POST", &path, &headers, payload);
            answer.assert_problem(415, "unsupported_media_type");
        }
    }
    // A POST without a body needs no content type (it reaches the route: 404, no such job)
    let answer = send(
        &server,
        "POST",
        &format!("{ORCH}/jobs/c196ogto0aeqohe3ommq/run"),
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(answer.status, 404, "{answer:?}");

    // 421: a foreign Host, even with the token
    let answer = post_cluster(&[
        ("Host", "attacker.example:8080"),
        ("Authorization", &bearer),
        ("Content-Type", "application/json"),
    ]);
    answer.assert_problem(421, "misdirected_request");
    let answer = send(
        &server,
        "GET",
        "/healthz",
        &[("Host", "rebound.example")],
        "",
    );
    answer.assert_problem(421, "misdirected_request");

    // 403: a state-changing request from a foreign origin, even with the token; 421 first
    let answer = post_cluster(&[
        ("Origin", "http://attacker.example"),
        ("Authorization", &bearer),
        ("Content-Type", "application/json"),
    ]);
    answer.assert_problem(403, "forbidden_origin");
    let answer = post_cluster(&[
        ("Origin", "http://attacker.example"),
        ("Host", "attacker.example"),
    ]);
    answer.assert_problem(421, "misdirected_request");
    // 403 comes before 401 and 415
    let answer = post_cluster(&[("Origin", "null"), ("Content-Type", "text/plain")]);
    answer.assert_problem(403, "forbidden_origin");
    // 401 comes before 415
    let answer = post_cluster(&[("Content-Type", "text/plain")]);
    answer.assert_problem(401, "unauthorized");

    // THEN nothing changed
    assert_eq!(clusters(&server), before);

    // AND the same origin, an allowed console, no Origin and a --public-host are accepted
    let own = format!("http://{}", addr(&server));
    for (i, headers) in [
        vec![("Origin", own.as_str())],
        vec![("Origin", "http://localhost:5173")],
        vec![],
        vec![("Host", "backups.example.test:8443")],
        vec![("Host", "localhost")],
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("ok{i}");
        let dir = sandbox.cluster_dir(&id, 1, 16);
        let body = serde_json::json!({
            "id": id, "description": "C", "provider": "directory",
            "path": dir.to_str().expect("UTF-8"),
        })
        .to_string();
        let mut headers = headers;
        headers.push(("Authorization", &bearer));
        headers.push(("Content-Type", "application/json; charset=utf-8"));
        let answer = send(&server, "POST", &clusters_path, &headers, &body);
        assert_eq!(answer.status, 200, "{headers:?}: {answer:?}");
    }
    assert_eq!(
        clusters(&server)["clusters"].as_array().map(Vec::len),
        Some(5)
    );

    // AND a CORS preflight from the allowed console is answered, allowing Authorization
    let answer = send(
        &server,
        "OPTIONS",
        &clusters_path,
        &[
            ("Origin", "http://localhost:5173"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization,content-type",
            ),
        ],
        "",
    );
    assert!(answer.status < 300, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:5173"),
        "{answer:?}"
    );
    let allowed = answer
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{answer:?}");
}

#[test]
fn auth_none_is_refused_off_loopback_or_with_commands_and_warns_on_loopback() {
    let sandbox = Sandbox::new();
    let data_dir = sandbox.data_dir();
    // WHEN --auth none listens on every interface THEN serve refuses at once, touching nothing
    let out = Command::new(support::BIN)
        .args([
            "serve",
            "--auth",
            "none",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run serve");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--auth none") && stderr.contains("loopback"),
        "{stderr}"
    );
    assert!(!data_dir.join("token").exists());
    // WHEN --auth none would let anonymous callers register commands THEN serve refuses too
    let out = Command::new(support::BIN)
        .args(["serve", "--auth", "none", "--allow-commands", "--listen"])
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run serve");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--allow-commands goes with --auth token"),
        "{stderr}"
    );
    assert!(!data_dir.join("token").exists());
    // WHEN it listens on loopback THEN it serves without a credential, but still checks Host
    let server = Server::start_with(&data_dir, &["--auth", "none"], &[]);
    assert!(server.token.is_none());
    assert!(
        server.log().contains("any local user or process"),
        "{}",
        server.log()
    );
    let answer = send(&server, "GET", &format!("{ORCH}/jobs"), &[], "");
    assert_eq!(answer.status, 200, "{answer:?}");
    let answer = send(
        &server,
        "GET",
        &format!("{ORCH}/jobs"),
        &[("Host", "evil.example")],
        "",
    );
    answer.assert_problem(421, "misdirected_request");
}

#[test]
fn a_thousand_half_sent_requests_are_closed_while_others_are_served() {
    // GIVEN a server whose header timeout is shortened for the test
    let sandbox = Sandbox::new();
    let timeout = Duration::from_millis(1500);
    let timeout_ms = timeout.as_millis().to_string();
    let server = Server::start_with(
        &sandbox.data_dir(),
        &[],
        &[("BACKUPCTL_HEADER_TIMEOUT_MS", &timeout_ms)],
    );
    let address = addr(&server);
    // WHEN 1,000 clients connect and send half a request line, then hold
    let started = Instant::now();
    let mut slow = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(&address).expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0")
            .expect("send part");
        slow.push(stream);
    }
    // THEN the server keeps answering others meanwhile
    let answer = send(&server, "GET", "/healthz", &[], "");
    assert_eq!(answer.status, 200, "{answer:?}");
    let listed = server.cli(&["jobs", "list"]);
    assert!(listed.success(), "{}", listed.describe());
    // AND every half-sent request is closed soon after the header timeout
    let deadline = started + timeout + Duration::from_secs(20);
    for mut stream in slow {
        let left = deadline.saturating_duration_since(Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .expect("timeout");
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Ok(n) => panic!("a half-sent request got an answer: {:?}", &buf[..n]),
            Err(e) => panic!("a half-sent request was still open after the timeout: {e}"),
        }
    }
    assert!(
        started.elapsed() >= timeout,
        "connections were closed before the timeout"
    );
    // AND the server still answers
    let answer = send(&server, "GET", "/healthz", &[], "");
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn a_kept_alive_connection_survives_the_header_timeout_between_requests() {
    // GIVEN a short header timeout
    let sandbox = Sandbox::new();
    let server = Server::start_with(
        &sandbox.data_dir(),
        &[],
        &[("BACKUPCTL_HEADER_TIMEOUT_MS", "300")],
    );
    let address = addr(&server);
    let mut stream = TcpStream::connect(&address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n");
    for _ in 0..2 {
        // WHEN a request is answered and the connection then idles past the header timeout
        stream.write_all(request.as_bytes()).expect("send");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).expect("answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        std::thread::sleep(Duration::from_millis(900));
        // THEN it is still open for the next request (idle connections last 60 s)
    }
}

#[test]
fn another_local_user_can_neither_read_the_token_nor_call_the_api() {
    // SAFETY-free check of the effective user through `id -u`.
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("note: skipped: needs root to run commands as the user nobody (setpriv)");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("note: skipped: setpriv (util-linux) is not installed");
        return;
    }
    // GIVEN a server whose data directory's parent nobody can traverse
    let sandbox = Sandbox::new();
    fs::set_permissions(sandbox.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = start(&sandbox);
    let data_dir = sandbox.data_dir();
    fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    let token_path = data_dir.join("token");
    let as_nobody = |program: &str, args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
            .args(args)
            .env_remove("BACKUPCTL_TOKEN")
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .expect("setpriv")
    };
    // WHEN nobody reads the token file THEN it is refused, even with the directory open to all
    let out = as_nobody("cat", &[token_path.to_str().expect("UTF-8")]);
    assert!(!out.status.success(), "nobody read the token: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    // AND nobody's backupctl, pointed at the server's data directory, gets a 401
    let out = as_nobody(
        support::BIN,
        &[
            "--url",
            &server.url,
            "--data-dir",
            data_dir.to_str().expect("UTF-8"),
            "clusters",
            "list",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("No credential was sent") && stderr.contains("cannot read"),
        "{stderr}"
    );
    // AND the owner's own call works
    assert!(server.cli(&["clusters", "list"]).success());
}

#[test]
fn a_private_key_as_jwt_public_key_is_refused_before_anything_is_created() {
    let sandbox = Sandbox::new();
    let data = sandbox.path().join("never-made");
    let out = Command::new(support::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--jwt-public-key")
        .arg(fixture("jwt-test.key.pem"))
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("private key") && stderr.contains("-pubout"),
        "{stderr}"
    );
    assert!(!data.exists(), "the data directory was created");
}

#[test]
fn a_foreign_host_is_refused_in_every_form_a_request_can_name_it() {
    // GIVEN a server that allows one CORS origin (CORS answers preflights itself)
    let sandbox = Sandbox::new();
    let server = Server::start_with(
        &sandbox.data_dir(),
        &["--cors-origin", "http://console.example"],
        &[],
    );
    let own = addr(&server);
    let jobs = format!("{ORCH}/jobs");
    // THEN a preflight to a foreign host is refused like any other request
    let preflight = send(
        &server,
        "OPTIONS",
        &jobs,
        &[
            ("Host", "evil.example"),
            ("Origin", "http://console.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    preflight.assert_problem(421, "misdirected_request");
    // AND a request naming two hosts is malformed
    let two = format!("{own}\r\nHost: evil.example");
    send(&server, "GET", "/healthz", &[("Host", &two)], "").assert_problem(400, "bad_request");
    // AND a request in absolute form is judged by its URI's host
    send(&server, "GET", "http://evil.example/healthz", &[], "")
        .assert_problem(421, "misdirected_request");
    let same = format!("http://{own}/healthz");
    assert_eq!(send(&server, "GET", &same, &[], "").status, 200);
    // AND the server's own pages behind a TLS proxy (https) may change things
    let bearer = server.bearer().expect("a token");
    let https = format!("https://{own}");
    let answer = send(
        &server,
        "POST",
        &format!("{MESDB}/backups"),
        &[
            ("Authorization", &bearer),
            ("Origin", &https),
            ("Content-Type", "application/json"),
        ],
        r#"{"description":"x","sourceClusterId":"missing"}"#,
    );
    assert_eq!(answer.status, 404, "{answer:?}");
    // AND an opaque origin is refused with advice that can be followed
    let answer = send(
        &server,
        "POST",
        &format!("{MESDB}/backups"),
        &[
            ("Authorization", &bearer),
            ("Origin", "null"),
            ("Content-Type", "application/json"),
        ],
        r#"{"description":"x","sourceClusterId":"missing"}"#,
    );
    answer.assert_problem(403, "forbidden_origin");
    let detail = answer.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!detail.contains("--cors-origin null"), "{detail}");
}

#[test]
fn a_bad_query_value_names_its_parameter_and_what_to_write() {
    let sandbox = Sandbox::new();
    let server = start(&sandbox);
    let bearer = server.bearer().expect("a token");
    for (path, name) in [
        (
            format!("{MESDB}/backups?limit=99999999999999999999999"),
            "limit",
        ),
        (format!("{ORCH}/jobs?limit=ten"), "limit"),
    ] {
        let answer = send(&server, "GET", &path, &[("Authorization", &bearer)], "");
        answer.assert_problem(400, "invalid_query");
        let body = answer.json();
        let message = body["fields"][name].as_str().unwrap_or_default().to_owned();
        assert!(
            message.contains(&format!("`{name}`")) && message.contains("whole number"),
            "{path}: {body}"
        );
    }
}
