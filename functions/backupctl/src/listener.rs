//! `serve`'s own accept loop (SPEC §12 "Slow clients"): `axum::serve` cannot bound how long
//! a client takes to send its headers, so connections are served here with hyper's HTTP/1
//! server and a small watchdog per connection.
//!
//! # Decisions the SPEC leaves open
//! - **Headers within 10 s** are counted from the moment a connection is accepted, or from
//!   the first byte of the next request on a kept-alive connection, to the moment the whole
//!   header has been parsed. A connection that misses it is closed at once, without an
//!   answer (there is no request to answer). hyper's own `header_read_timeout` is not used:
//!   it also runs while a kept-alive connection waits for its next request, which would close
//!   idle connections after 10 s instead of 60 s.
//! - **A body within 30 s**, counted from the moment the headers arrived (not between
//!   chunks, which a client could trickle forever). A late body fails the request: the
//!   handler sees a body error and answers 400, and the connection is not reused.
//! - **Idle 60 s**: a kept-alive connection with no request in flight and no byte of a new one
//!   for 60 s is shut down gracefully.
//! - `BACKUPCTL_HEADER_TIMEOUT_MS` shortens the header timeout **for tests only** (the
//!   security tests hold 1,000 half-sent requests and should not wait 10 s); it is not a
//!   documented option and values above the default are ignored.
//! - **Shutdown**: when the shutdown future resolves, no new connection is accepted, idle
//!   connections close, and in-flight requests finish; after [`DRAIN_LIMIT`] the remaining
//!   connections are dropped so a client that never reads its answer cannot hold the server.
//! - **Accept errors** (such as running out of file descriptors) are logged and retried after
//!   a short pause rather than stopping the server; the open-file soft limit is raised to the
//!   hard limit at start-up ([`raise_open_file_limit`]) to make that rare.
//! - HTTP/1.1 only, as before (`axum`'s `http1` feature); no upgrades.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body, once its headers arrived.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a kept-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping server waits for in-flight requests before dropping connections.
/// Short, since SPEC §13 gives the whole shutdown 10 s: at the signal the engine stops, so
/// a request waiting on a backup or a restore is answered at once, and what is still open
/// after this is a client that sends no body or reads no answer, which must not hold the
/// process (the backups' own grace, `serve::SHUTDOWN_GRACE`, follows).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// The test-only variable that shortens [`HEADER_TIMEOUT`] (milliseconds).
pub const HEADER_TIMEOUT_ENV: &str = "BACKUPCTL_HEADER_TIMEOUT_MS";

/// The timeouts of one server.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
}

impl Timeouts {
    /// The SPEC's timeouts, with the header timeout shortened by [`HEADER_TIMEOUT_ENV`].
    pub fn from_env() -> Timeouts {
        let header = std::env::var(HEADER_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .filter(|d| *d < HEADER_TIMEOUT)
            .unwrap_or(HEADER_TIMEOUT);
        Timeouts {
            header,
            body: BODY_TIMEOUT,
            idle: IDLE_TIMEOUT,
        }
    }
}

/// Raises the open-file soft limit to the hard limit, so many clients (or many slow ones
/// being timed out) do not exhaust descriptors; logs what it did.
pub fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    match (limit.current, limit.maximum) {
        (Some(current), hard) if hard.is_none_or(|hard| hard > current) => {
            let target = Rlimit {
                current: hard.or(Some(current)),
                maximum: hard,
            };
            match setrlimit(Resource::Nofile, target) {
                Ok(()) => tracing::info!(
                    from = current,
                    to = ?hard,
                    "raised the open-file limit to the hard limit"
                ),
                Err(error) => {
                    tracing::warn!(%error, current, "cannot raise the open-file limit")
                }
            }
        }
        _ => tracing::debug!(?limit, "the open-file limit is already at its maximum"),
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module doc).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(tokio::sync::Notify::new());
    let epoch = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: pause instead of spinning or giving up.
                tracing::warn!(%error, "cannot accept a connection; retrying shortly");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::SeqCst);
        let connection = Connection {
            app: app.clone(),
            timeouts,
            stop: stop_rx.clone(),
            epoch,
        };
        let open = Arc::clone(&open);
        let drained = Arc::clone(&drained);
        tokio::spawn(async move {
            connection.run(stream).await;
            tracing::trace!(%peer, "connection closed");
            if open.fetch_sub(1, Ordering::SeqCst) == 1 {
                drained.notify_waiters();
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let wait = async {
        loop {
            let notified = drained.notified();
            if open.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    };
    if tokio::time::timeout(DRAIN_LIMIT, wait).await.is_err() {
        tracing::warn!(
            open = open.load(Ordering::SeqCst),
            "connections still open after {DRAIN_LIMIT:?}; dropping them"
        );
    }
}

/// What a connection's watchdog watches: requests in flight, and when the connection last
/// became idle or started receiving a new request (milliseconds since the server's epoch,
/// plus one so that 0 means "none").
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// When the connection last became idle (accepted, or an answer was finished).
    idle_since: AtomicU64,
    /// When the first byte of a request whose headers have not all arrived was read; 0: none.
    head_since: AtomicU64,
}

impl Activity {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn elapsed(&self, since: u64) -> Duration {
        Duration::from_millis(self.now().saturating_sub(since))
    }
}

struct Connection {
    app: Router,
    timeouts: Timeouts,
    stop: watch::Receiver<bool>,
    epoch: Instant,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity {
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
        });
        let now = activity.now();
        activity.idle_since.store(now, Ordering::SeqCst);
        // A new connection owes its first request's headers from now on.
        activity.head_since.store(now, Ordering::SeqCst);

        let io = TokioIo::new(Watched {
            stream,
            activity: Arc::clone(&activity),
        });
        let app = self.app.clone();
        let body_timeout = self.timeouts.body;
        let service_activity = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let app = app.clone();
            let tracker = InFlight::start(Arc::clone(&service_activity));
            async move {
                let _tracker = tracker;
                let deadline = tokio::time::Instant::now() + body_timeout;
                let request = request.map(|body| Body::new(Deadline::new(body, deadline)));
                let response = app.oneshot(request).await;
                Ok::<_, Infallible>(match response {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);

        let tick =
            (self.timeouts.header / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                changed = self.stop.changed(), if !closing => {
                    if changed.is_err() || *self.stop.borrow() {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
                () = tokio::time::sleep(tick) => {
                    if activity.in_flight.load(Ordering::SeqCst) > 0 {
                        continue;
                    }
                    let head = activity.head_since.load(Ordering::SeqCst);
                    if head != 0 {
                        if activity.elapsed(head) >= self.timeouts.header {
                            tracing::debug!("closing a connection whose request headers did not arrive in time");
                            return; // dropping `conn` closes the socket
                        }
                    } else if !closing
                        && activity.elapsed(activity.idle_since.load(Ordering::SeqCst)) >= self.timeouts.idle
                    {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Counts a request in flight from the moment hyper hands it over (its headers have all
/// arrived) until its answer is produced or abandoned.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        activity.head_since.store(0, Ordering::SeqCst);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.idle_since.store(now, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The socket, noting when the first byte of a new request arrives.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.in_flight.load(Ordering::SeqCst) == 0 {
            let now = self.activity.now();
            let _ = self.activity.head_since.compare_exchange(
                0,
                now,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A request body that must be complete by a deadline.
struct Deadline {
    body: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn new(body: Incoming, deadline: tokio::time::Instant) -> Deadline {
        Deadline {
            body,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

/// The body did not arrive within [`BODY_TIMEOUT`].
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
struct BodyTimedOut(Duration);

impl http_body::Body for Deadline {
    type Data = hyper::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(BODY_TIMEOUT)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
