//! `jobs-api`: the axum router of `backup_api` (the one `backupctl serve` runs), behind API
//! Gateway's HTTP API through `lambda_http`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use backup_engine::Engine;
use tower::ServiceExt;

/// How long a request waits for the background work it started ("run now", a manual
/// backup) before the answer is sent and the environment may freeze: a little under the
/// function's 15-minute limit.
pub const BACKGROUND_GRACE: Duration = Duration::from_secs(840);

/// The request handler: the router, then the engine's background work. It cannot fail:
/// every error is a problem+json answer with its status, so API Gateway (and the caller)
/// sees the real problem and the invocation itself never reports an `errorType`.
pub async fn handle(
    router: axum::Router,
    engine: Arc<Engine>,
    request: lambda_http::Request,
) -> Result<axum::response::Response, Infallible> {
    let Ok(response) = router.oneshot(request).await;
    if !engine.wait_idle(BACKGROUND_GRACE).await {
        tracing::warn!("background work was still running when the answer was sent");
    }
    Ok(response)
}
