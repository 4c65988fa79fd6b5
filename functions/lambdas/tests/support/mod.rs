//! Test support: a Lambda Runtime API emulator, a counting (and optionally slowing) proxy in
//! front of moto, and the functions as real processes (their table: `backup_testkit::Table`).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
use tokio::net::TcpListener;
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
    /// `/next` calls waiting for an event now. A killed process's call stays here until the
    /// server notices its connection closed; an event sent before then would be taken by it
    /// and lost.
    pollers: AtomicUsize,
}

/// Counts one waiting `/next` call for as long as its handler lives.
struct Polling<'a>(&'a AtomicUsize);

impl<'a> Polling<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Polling(count)
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
            pollers: AtomicUsize::new(0),
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

    /// Waits until no `/next` call is waiting: after a process is killed, until the emulator
    /// has let go of its call, so the next event goes to a live process.
    pub async fn wait_for_no_pollers(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.state.pollers.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "a /next call of a killed process is still waiting"
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
        let _polling = Polling::start(&state.pollers);
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
// A proxy in front of moto: counts the AWS API calls it forwards, adds up how long their
// answers took to start arriving (the time a function spent waiting on "AWS"), can hold
// `CreateSnapshot` calls back (to make a backup take a while), and can give the answers moto
// never gives: snapshots still `pending`, volumes still `creating`, and EC2 errors
// (throttling, not-found, limits).
// It speaks HTTP/1.1 to both sides (hyper), so it can read and rewrite whole answers.

/// The access key id a function process signs with: `testing-<binary>`, so the proxy knows
/// which function made each call.
pub fn access_key_of(bin: &str) -> String {
    format!("{ACCESS_KEY_PREFIX}{bin}")
}

const ACCESS_KEY_PREFIX: &str = "testing-";

/// One call the proxy forwarded: who signed it (the access key id of its SigV4
/// `Authorization` header) and its `service:Operation`.
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

/// An error the proxy answers instead of moto: EC2's XML document, or a REST-JSON service's
/// error (EventBridge Scheduler's).
#[derive(Clone, Debug)]
pub struct Injected {
    /// The action it answers (`ec2:DescribeSnapshots`, `scheduler:CreateSchedule`).
    pub action: String,
    /// The service's error code (`RequestLimitExceeded`, `ServiceQuotaExceededException`).
    pub code: String,
    pub status: u16,
    /// How many calls of the action moto answers before this does.
    pub skip: usize,
    /// How many calls it answers before moto answers again.
    pub times: usize,
}

#[derive(Default)]
struct ProxyState {
    calls: Mutex<Vec<String>>,
    /// Every call since the proxy started (`take_calls` does not drain it).
    signed: Mutex<Vec<SignedCall>>,
    waited: Mutex<Duration>,
    delay: Mutex<Duration>,
    /// While set, `DescribeSnapshots` shows every snapshot `pending` (moto completes them at
    /// once).
    hold_pending: std::sync::atomic::AtomicBool,
    /// While set, `DescribeVolumes` shows every `available` volume `creating` (moto makes
    /// them at once).
    hold_creating: std::sync::atomic::AtomicBool,
    injected: Mutex<Vec<Injected>>,
    /// The payloads of the asynchronous invocations of the Invoke endpoint.
    invocations: Mutex<Vec<Value>>,
    /// Every EC2 call's action and form body (the query protocol's `Action=…&…`).
    ec2_requests: Mutex<Vec<(String, String)>>,
}

pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
}

type ProxyClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<axum::body::Bytes>,
>;

impl Proxy {
    pub async fn start() -> Proxy {
        let upstream = std::env::var("AWS_ENDPOINT_URL")
            .expect("AWS_ENDPOINT_URL (moto_server) is set: run through scripts/test-aws.sh");
        let upstream = upstream.trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let client: ProxyClient =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let app =
            Router::new()
                .fallback(forward)
                .with_state((state.clone(), client, Arc::new(upstream)));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_create_snapshot_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// While `hold`, every snapshot `DescribeSnapshots` shows is `pending`.
    pub fn hold_snapshots_pending(&self, hold: bool) {
        self.state.hold_pending.store(hold, Ordering::SeqCst);
    }

    /// While `hold`, every volume `DescribeVolumes` shows `available` is `creating`.
    pub fn hold_volumes_creating(&self, hold: bool) {
        self.state.hold_creating.store(hold, Ordering::SeqCst);
    }

    /// Answers the next `times` calls of `action` with EC2's error `code`.
    pub fn inject(&self, action: &str, code: &str, status: u16, times: usize) {
        self.inject_after(action, code, status, 0, times);
    }

    /// Lets `skip` calls of `action` through, then answers the next `times` with the
    /// service's error `code`.
    pub fn inject_after(&self, action: &str, code: &str, status: u16, skip: usize, times: usize) {
        self.state.injected.lock().unwrap().push(Injected {
            action: action.to_owned(),
            code: code.to_owned(),
            status,
            skip,
            times,
        });
    }

    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.state.calls.lock().unwrap())
    }

    /// The operations (`service:Operation`) the processes of function `bin` made so far.
    pub fn operations_of(&self, bin: &str) -> BTreeSet<String> {
        self.state
            .signed
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
            .state
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

    /// The parameters of every `action` call (`ec2:CreateSnapshots`) so far, in order: the
    /// request EC2 would get, decoded (`InstanceSpecification.InstanceId` → `i-…`).
    pub fn ec2_requests(&self, action: &str) -> Vec<BTreeMap<String, String>> {
        self.state
            .ec2_requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, _)| a == action)
            .map(|(_, body)| form_params(body))
            .collect()
    }

    /// How long answers took to start arriving since the last call, added up.
    pub fn take_waited(&self) -> Duration {
        std::mem::take(&mut *self.state.waited.lock().unwrap())
    }
}

// ---------------------------------------------------------------------------------------
// Lambda's Invoke API, as a function's Lambda client sees it through the SDK's
// service-specific `AWS_ENDPOINT_URL_LAMBDA` (moto does not run Lambda code here): an
// asynchronous invocation (`X-Amz-Invocation-Type: Event`) is answered 202 and its payload
// handed to the invoked function's process through its Runtime API emulator, as Lambda's
// event queue does. The call is recorded with the proxy's, signer included.

impl Proxy {
    /// Starts an Invoke endpoint that hands every asynchronous invocation to `runner`;
    /// its URL (for `AWS_ENDPOINT_URL_LAMBDA`).
    pub async fn lambda_endpoint(&self, runner: Arc<Emulator>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/2015-03-31/functions/{function}/invocations", post(invoke))
            .with_state((self.state.clone(), runner));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    /// The payloads of the asynchronous invocations the Invoke endpoint accepted.
    pub fn invocations(&self) -> Vec<Value> {
        self.state.invocations.lock().unwrap().clone()
    }
}

async fn invoke(
    State((state, runner)): State<(Arc<ProxyState>, Arc<Emulator>)>,
    Path(_function): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let access_key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(access_key_in);
    state.calls.lock().unwrap().push("lambda:Invoke".to_owned());
    state.signed.lock().unwrap().push(SignedCall {
        access_key,
        operation: "lambda:Invoke".to_owned(),
    });
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    if kind != "Event" {
        return (
            StatusCode::BAD_REQUEST,
            "only asynchronous invocations are emulated",
        )
            .into_response();
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "the payload is not JSON").into_response();
    };
    state.invocations.lock().unwrap().push(payload.clone());
    tokio::spawn(async move {
        let _ = runner.invoke(payload).await;
    });
    StatusCode::ACCEPTED.into_response()
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

/// The access key id of a SigV4 `Authorization` header (`… Credential=<key>/<date>/…`).
fn access_key_in(authorization: &str) -> Option<String> {
    let credential = authorization.split("Credential=").nth(1)?;
    credential.split('/').next().map(str::to_owned)
}

/// EC2's error document (the query protocol's).
fn ec2_error(code: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
         <Message>Injected by the test proxy: {code}</Message></Error></Errors>\
         <RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
    )
}

async fn forward(
    State((state, client, upstream)): State<(Arc<ProxyState>, ProxyClient, Arc<String>)>,
    request: axum::extract::Request,
) -> axum::response::Response {
    // In a task of its own: a call whose caller was killed meanwhile still reaches moto,
    // as a request that left a process reaches AWS.
    tokio::spawn(forward_call(state, client, upstream, request))
        .await
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

async fn forward_call(
    state: Arc<ProxyState>,
    client: ProxyClient,
    upstream: Arc<String>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut head = String::new();
    for (name, value) in &parts.headers {
        head.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().unwrap_or_default()
        ));
    }
    let mut text = head.into_bytes();
    text.extend_from_slice(&body);
    let action = action_of(parts.method.as_str(), parts.uri.path(), &text);
    if let Some(action) = &action {
        state.calls.lock().unwrap().push(action.clone());
        let access_key = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(access_key_in);
        state.signed.lock().unwrap().push(SignedCall {
            access_key,
            operation: action.clone(),
        });
        if action.starts_with("ec2:") {
            let form = String::from_utf8_lossy(&body).into_owned();
            state
                .ec2_requests
                .lock()
                .unwrap()
                .push((action.clone(), form));
        }
        let pause = *state.delay.lock().unwrap();
        if action == "ec2:CreateSnapshot" && !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let injected = {
            let mut all = state.injected.lock().unwrap();
            let hit = all.iter_mut().find(|i| &i.action == action && i.times > 0);
            hit.and_then(|i| {
                if i.skip > 0 {
                    i.skip -= 1;
                    return None;
                }
                i.times -= 1;
                Some(i.clone())
            })
        };
        if let Some(i) = injected {
            let status = StatusCode::from_u16(i.status).unwrap_or(StatusCode::BAD_REQUEST);
            if action.starts_with("ec2:") {
                return (status, [("content-type", "text/xml")], ec2_error(&i.code))
                    .into_response();
            }
            let body = serde_json::json!({
                "message": format!("Injected by the test proxy: {}", i.code)
            });
            return (
                status,
                [
                    ("content-type", "application/json"),
                    ("x-amzn-errortype", i.code.as_str()),
                ],
                body.to_string(),
            )
                .into_response();
        }
    }
    let uri = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut out = hyper::Request::builder().method(parts.method).uri(uri);
    for (name, value) in &parts.headers {
        out = out.header(name, value);
    }
    let Ok(out) = out.body(http_body_util::Full::new(body)) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let sent = Instant::now();
    let Ok(answer) = client.request(out).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    *state.waited.lock().unwrap() += sent.elapsed();
    let (mut parts, body) = answer.into_parts();
    let Ok(body) = http_body_util::BodyExt::collect(body).await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut body = body.to_bytes();
    if action.as_deref() == Some("ec2:DescribeSnapshots")
        && state.hold_pending.load(Ordering::SeqCst)
    {
        let text = String::from_utf8_lossy(&body)
            .replace("<status>completed</status>", "<status>pending</status>");
        body = axum::body::Bytes::from(text);
        parts.headers.remove("content-length");
    }
    if action.as_deref() == Some("ec2:DescribeVolumes")
        && state.hold_creating.load(Ordering::SeqCst)
    {
        let text = String::from_utf8_lossy(&body)
            .replace("<status>available</status>", "<status>creating</status>");
        body = axum::body::Bytes::from(text);
        parts.headers.remove("content-length");
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

/// The parameters of a form body (`a=1&b=x%20y`), decoded.
fn form_params(body: &str) -> BTreeMap<String, String> {
    fn decode(s: &str) -> String {
        let hex = |b: u8| (b as char).to_digit(16);
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
                .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
                .flatten();
            match (bytes[i], escaped) {
                (_, Some(b)) => {
                    out.push(b as u8);
                    i += 3;
                }
                (b'+', _) => {
                    out.push(b' ');
                    i += 1;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

#[test]
fn form_bodies_are_decoded() {
    let params = form_params("Action=CreateSnapshots&Description=a%20%E2%80%A6+b&X=%&Empty=");
    assert_eq!(params["Action"], "CreateSnapshots");
    assert_eq!(params["Description"], "a … b");
    assert_eq!(params["X"], "%");
    assert_eq!(params["Empty"], "");
}

/// The AWS action of a request (`method`, `path`, and its headers as text, then its body):
/// `x-amz-target` (JSON protocols: DynamoDB, EventBridge), `Action=` (query protocol: EC2),
/// or the method and path of a REST-JSON API, whose service the SigV4 credential scope names
/// (EventBridge Scheduler: `POST /schedules/{name}` is `scheduler:CreateSchedule`).
fn action_of(method: &str, path: &str, chunk: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(chunk);
    let lower = text.to_ascii_lowercase();
    if signing_service(&lower).as_deref() == Some("scheduler") {
        return scheduler_action(method, path).map(|a| format!("scheduler:{a}"));
    }
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

/// The service of a request's SigV4 credential scope (`Credential=KEY/DATE/REGION/SERVICE/
/// aws4_request`), from its headers as lower-case text.
fn signing_service(lower: &str) -> Option<String> {
    let line = lower.lines().find(|l| l.starts_with("authorization:"))?;
    let scope = line.split("credential=").nth(1)?.split(',').next()?;
    scope.split('/').nth(3).map(str::to_owned)
}

/// EventBridge Scheduler's operation for `method` on `path`.
fn scheduler_action(method: &str, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    Some(match (method, segments.as_slice()) {
        ("POST", ["schedules", _]) => "CreateSchedule",
        ("PUT", ["schedules", _]) => "UpdateSchedule",
        ("DELETE", ["schedules", _]) => "DeleteSchedule",
        ("GET", ["schedules", _]) => "GetSchedule",
        ("GET", ["schedules"]) => "ListSchedules",
        ("POST", ["schedule-groups", _]) => "CreateScheduleGroup",
        ("DELETE", ["schedule-groups", _]) => "DeleteScheduleGroup",
        ("GET", ["schedule-groups", _]) => "GetScheduleGroup",
        ("GET", ["schedule-groups"]) => "ListScheduleGroups",
        _ => return None,
    })
}

#[test]
fn scheduler_calls_are_named_from_their_method_and_path() {
    let signed = "authorization: AWS4-HMAC-SHA256 Credential=testing-jobs-api/20261127/us-east-1/scheduler/aws4_request, SignedHeaders=host, Signature=00\r\n";
    let call = |method, path| action_of(method, path, signed.as_bytes());
    assert_eq!(
        call("POST", "/schedules/backup-job-c196ogto0aeqohe3ommq").as_deref(),
        Some("scheduler:CreateSchedule")
    );
    assert_eq!(
        call("PUT", "/schedules/x").as_deref(),
        Some("scheduler:UpdateSchedule")
    );
    assert_eq!(
        call("DELETE", "/schedules/x").as_deref(),
        Some("scheduler:DeleteSchedule")
    );
    // AND the JSON and query protocols are still named as before
    let dynamo = "x-amz-target: DynamoDB_20120810.GetItem\r\nauthorization: AWS4-HMAC-SHA256 Credential=k/20261127/us-east-1/dynamodb/aws4_request\r\n";
    assert_eq!(
        action_of("POST", "/", dynamo.as_bytes()).as_deref(),
        Some("dynamodb:GetItem")
    );
}

// ---------------------------------------------------------------------------------------
// The functions as processes

pub struct Function {
    pub child: Child,
    /// The lines the process wrote on stdout, when started with [`Function::start_capturing`].
    stdout: Option<Arc<Mutex<Vec<String>>>>,
}

impl Function {
    /// [`Function::start`] with the process's stdout read line by line (and always drained,
    /// so the pipe never fills): see [`Function::stdout_lines`].
    pub fn start_capturing(
        bin: &str,
        emulator: &Emulator,
        endpoint: &str,
        table: &str,
        extra: &[(&str, &str)],
    ) -> Function {
        let mut function = Function::spawn(bin, emulator, endpoint, table, extra, true);
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = function.child.stdout.take() {
            let sink = lines.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut reader = tokio::io::BufReader::new(stdout).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        function.stdout = Some(lines);
        function
    }

    /// What a [`Function::start_capturing`] process wrote on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout
            .as_ref()
            .map(|lines| lines.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Starts `bin` (`backup-runner` or `jobs-api`) against `emulator`, its AWS clients
    /// pointed at `endpoint`.
    pub fn start(
        bin: &str,
        emulator: &Emulator,
        endpoint: &str,
        table: &str,
        extra: &[(&str, &str)],
    ) -> Function {
        Function::spawn(bin, emulator, endpoint, table, extra, false)
    }

    fn spawn(
        bin: &str,
        emulator: &Emulator,
        endpoint: &str,
        table: &str,
        extra: &[(&str, &str)],
        capture: bool,
    ) -> Function {
        let path = match bin {
            "backup-runner" => env!("CARGO_BIN_EXE_backup-runner"),
            "jobs-api" => env!("CARGO_BIN_EXE_jobs-api"),
            "job-resource" => env!("CARGO_BIN_EXE_job-resource"),
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
        if capture {
            cmd.stdout(Stdio::piped());
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Function {
            child: cmd.spawn().expect("start the function"),
            stdout: None,
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
