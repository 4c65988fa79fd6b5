//! Test support: a Lambda Runtime API emulator, a counting (and optionally slowing) proxy in
//! front of moto, and the functions as real processes (their table: `backup_testkit::Table`).
//!
//! Each function process signs with credentials of its own (`AWS_ACCESS_KEY_ID`
//! `testing-<binary>`), as each deployed function signs with its own role, so the proxy
//! knows which function made each call; when a proxy is dropped at the end of a test, every
//! call it saw must be one its function's role allows (`backup_aws::iam`).
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

pub use backup_testkit::RUNNER_ARN;

// ---------------------------------------------------------------------------------------
// The Runtime API emulator

type Outcome = Result<Value, Value>;

struct EmulatorState {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// `/next` calls so far (a process calls it once initialised, then after each answer).
    polls: AtomicUsize,
    first_poll: Mutex<Option<Instant>>,
    init_errors: Mutex<Vec<Value>>,
}

/// The Lambda Runtime API (2018-06-01) as the processes under test see it.
pub struct Emulator {
    pub addr: SocketAddr,
    state: Arc<EmulatorState>,
    sender: mpsc::UnboundedSender<(String, Value)>,
    next_id: AtomicU32,
}

impl Emulator {
    pub async fn start() -> Emulator {
        let (sender, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(EmulatorState {
            queue: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            polls: AtomicUsize::new(0),
            first_poll: Mutex::new(None),
            init_errors: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{answer}", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Emulator {
            addr,
            state,
            sender,
            next_id: AtomicU32::new(1),
        }
    }

    /// Sends one event and waits for the function's answer (`Err` = its error report).
    pub async fn invoke(&self, event: Value) -> Outcome {
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.state.waiting.lock().unwrap().insert(id.clone(), tx);
        self.sender.send((id, event)).unwrap();
        tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .expect("the function answers within 120 s")
            .expect("the emulator keeps the answer")
    }

    pub fn polls(&self) -> usize {
        self.state.polls.load(Ordering::SeqCst)
    }

    pub fn first_poll(&self) -> Option<Instant> {
        *self.state.first_poll.lock().unwrap()
    }

    /// Waits until `n` `/next` calls arrived (processes initialised and waiting).
    pub async fn wait_for_polls(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.polls() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} polls arrived",
                self.polls()
            );
            assert!(
                self.state.init_errors.lock().unwrap().is_empty(),
                "init error: {:?}",
                self.state.init_errors.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }
}

async fn next(State(state): State<Arc<EmulatorState>>) -> impl IntoResponse {
    state
        .first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    state.polls.fetch_add(1, Ordering::SeqCst);
    let (id, event) = {
        let mut queue = state.queue.lock().await;
        match queue.recv().await {
            Some(e) => e,
            None => return (StatusCode::GONE, HeaderMap::new(), String::new()),
        }
    };
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
    headers.insert(
        "Lambda-Runtime-Aws-Request-Id",
        HeaderValue::from_str(&id).unwrap(),
    );
    headers.insert(
        "Lambda-Runtime-Deadline-Ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        HeaderValue::from_static(RUNNER_ARN),
    );
    headers.insert(
        "Lambda-Runtime-Trace-Id",
        HeaderValue::from_static(
            "Root=1-6745f0f0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0",
        ),
    );
    headers.insert("Content-Type", HeaderValue::from_static("application/json"));
    (StatusCode::OK, headers, event.to_string())
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}

/// `/response` (the function's result) or `/error` (its error report) for invocation `id`.
async fn answer(
    State(state): State<Arc<EmulatorState>>,
    Path((id, answer)): Path<(String, String)>,
    body: String,
) -> StatusCode {
    let outcome = match answer.as_str() {
        "response" => Ok(parse(&body)),
        "error" => Err(parse(&body)),
        _ => return StatusCode::NOT_FOUND,
    };
    if let Some(tx) = state.waiting.lock().unwrap().remove(&id) {
        let _ = tx.send(outcome);
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<Arc<EmulatorState>>, body: String) -> StatusCode {
    state.init_errors.lock().unwrap().push(parse(&body));
    StatusCode::ACCEPTED
}

// ---------------------------------------------------------------------------------------
// A proxy in front of moto: counts the AWS API calls it forwards, records which function made
// each (by the access key that signed it), adds up how long their answers took to start
// arriving (the time a function spent waiting on "AWS"), and can hold `CreateSnapshot` calls
// back (to make a backup take a while).

/// The access key id a function process signs with: `testing-<binary>`.
pub fn access_key_of(bin: &str) -> String {
    format!("{ACCESS_KEY_PREFIX}{bin}")
}

const ACCESS_KEY_PREFIX: &str = "testing-";

/// One call the proxy forwarded: who signed it (the access key id, if the proxy saw one on
/// its connection) and its `service:Operation`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignedCall {
    pub access_key: Option<String>,
    pub operation: String,
}

impl SignedCall {
    /// The function that made it (`backup-runner`, `jobs-api`), from its access key.
    pub fn function(&self) -> Option<&str> {
        self.access_key.as_deref()?.strip_prefix(ACCESS_KEY_PREFIX)
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<String>>>,
    /// Every call since the proxy started (`take_calls` does not drain it).
    signed: Arc<Mutex<Vec<SignedCall>>>,
    waited: Arc<Mutex<Duration>>,
    delay: Arc<Mutex<Duration>>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let upstream = std::env::var("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL (moto_server) is set: run through scripts/test-aws.sh");
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let signed = Arc::new(Mutex::new(Vec::new()));
        let waited = Arc::new(Mutex::new(Duration::ZERO));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let (c, sg, w, d) = (calls.clone(), signed.clone(), waited.clone(), delay.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (c, sg, w, d, upstream) = (
                    c.clone(),
                    sg.clone(),
                    w.clone(),
                    d.clone(),
                    upstream.clone(),
                );
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    // Requests on one connection are answered in order: the instant each
                    // was forwarded waits here for the first bytes of its answer.
                    let sent: Arc<Mutex<std::collections::VecDeque<Instant>>> = Arc::default();
                    let (answered, w) = (sent.clone(), w.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if buf[..n].starts_with(b"HTTP/") {
                                if let Some(at) = answered.lock().unwrap().pop_front() {
                                    *w.lock().unwrap() += at.elapsed();
                                }
                            }
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    // A connection is one process's. A request's headers (with the key
                    // that signed it) come before its body (with EC2's `Action=`), so the
                    // key last seen on the connection is the signer of what follows.
                    let mut access_key: Option<String> = None;
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let chunk = &buf[..n];
                        if let Some(key) = access_key_in(chunk) {
                            access_key = Some(key);
                        }
                        if let Some(action) = action_of(chunk) {
                            let slow = action == "ec2:CreateSnapshot";
                            sg.lock().unwrap().push(SignedCall {
                                access_key: access_key.clone(),
                                operation: action.clone(),
                            });
                            c.lock().unwrap().push(action);
                            let pause = *d.lock().unwrap();
                            if slow && !pause.is_zero() {
                                tokio::time::sleep(pause).await;
                            }
                        }
                        if chunk.starts_with(b"POST ") || chunk.starts_with(b"GET ") {
                            sent.lock().unwrap().push_back(Instant::now());
                        }
                        if sw.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Proxy {
            addr,
            calls,
            signed,
            waited,
            delay,
        }
    }

    /// The operations (`service:Operation`) the processes of function `bin` made so far.
    pub fn operations_of(&self, bin: &str) -> BTreeSet<String> {
        self.signed
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.function() == Some(bin))
            .map(|c| c.operation.clone())
            .collect()
    }

    /// Every call so far that its function may not make: one signed by no known function,
    /// or an operation missing from the function's list in `backup_aws::iam`.
    pub fn calls_not_allowed(&self) -> Vec<SignedCall> {
        let mut refused: Vec<SignedCall> = self
            .signed
            .lock()
            .unwrap()
            .iter()
            .filter(|c| {
                !c.function()
                    .and_then(backup_aws::iam::function)
                    .is_some_and(|f| f.makes(&c.operation))
            })
            .cloned()
            .collect();
        refused.sort();
        refused.dedup();
        refused
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_create_snapshot_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// How long answers took to start arriving since the last call, added up.
    pub fn take_waited(&self) -> Duration {
        std::mem::take(&mut *self.waited.lock().unwrap())
    }
}

/// Least privilege, as the processes behaved: a test whose functions made a call their role
/// would refuse fails here, when its proxy goes (unless it already failed).
impl Drop for Proxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let refused = self.calls_not_allowed();
        assert!(
            refused.is_empty(),
            "calls the function's role does not allow (add them to its list in \
             backup_aws::iam, and to its role in infra/template.yaml, if the code really \
             needs them): {refused:#?}"
        );
    }
}

/// The access key id of a request chunk's SigV4 `Authorization` header
/// (`Credential=<key>/<date>/…`).
fn access_key_in(chunk: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(chunk);
    let lower = text.to_ascii_lowercase();
    let header = lower.find("\nauthorization:")?;
    let line = text[header + 1..].lines().next()?;
    let credential = line.split("Credential=").nth(1)?;
    credential.split('/').next().map(str::to_owned)
}

/// The AWS action of a request chunk: `x-amz-target` (JSON protocols: DynamoDB,
/// EventBridge) or `Action=` (query protocol: EC2).
fn action_of(chunk: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(chunk);
    let lower = text.to_ascii_lowercase();
    if let Some(i) = lower.find("x-amz-target:") {
        let value = text[i + "x-amz-target:".len()..]
            .lines()
            .next()?
            .trim()
            .to_owned();
        let (service, action) = value.split_once('.')?;
        let prefix = match service {
            s if s.starts_with("DynamoDB") => "dynamodb",
            "AWSEvents" => "events",
            other => other,
        };
        return Some(format!("{prefix}:{action}"));
    }
    if let Some(i) = text.find("Action=") {
        let action: String = text[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        return Some(format!("ec2:{action}"));
    }
    None
}

// ---------------------------------------------------------------------------------------
// The functions as processes

pub struct Function {
    pub child: Child,
}

impl Function {
    /// Starts `bin` (`backup-runner` or `jobs-api`) against `emulator`, its AWS clients
    /// pointed at `endpoint`.
    pub fn start(
        bin: &str,
        emulator: &Emulator,
        endpoint: &str,
        table: &str,
        extra: &[(&str, &str)],
    ) -> Function {
        let path = match bin {
            "backup-runner" => env!("CARGO_BIN_EXE_backup-runner"),
            "jobs-api" => env!("CARGO_BIN_EXE_jobs-api"),
            other => panic!("no binary {other}"),
        };
        let mut cmd = Command::new(path);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", emulator.runtime_api())
            .env("AWS_LAMBDA_FUNCTION_NAME", bin)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{bin}"))
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/27/[$LATEST]0123456789abcdef",
            )
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", access_key_of(bin))
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("TABLE_NAME", table)
            .env(
                "RUST_LOG",
                std::env::var("TEST_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Function {
            child: cmd.spawn().expect("start the function"),
        }
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// An API Gateway HTTP API (payload 2.0) request, as the fixture, for `method path body`.
pub fn apigw(method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../fixtures/apigw-v2-list-jobs.json")).unwrap();
    event["rawPath"] = Value::String(path.to_owned());
    event["requestContext"]["http"]["path"] = Value::String(path.to_owned());
    event["requestContext"]["http"]["method"] = Value::String(method.to_owned());
    if let Some(body) = body {
        event["headers"]["content-type"] = Value::String("application/json".into());
        event["body"] = Value::String(body.to_string());
        event["headers"]
            .as_object_mut()
            .unwrap()
            .remove("content-length");
    }
    event
}
