//! `jobs-api`: the axum router of `backup_api` (the one `backupctl serve` runs), behind API
//! Gateway's HTTP API through `lambda_http`.

use std::sync::Arc;
use std::time::Duration;

use backup_engine::Engine;
use tower::ServiceExt;

/// How long a request waits for the background work it started ("run now", a manual
/// backup) before the answer is sent and the environment may freeze: a little under the
/// function's 15-minute limit.
pub const BACKGROUND_GRACE: Duration = Duration::from_secs(840);

/// The request handler: the router, then the engine's background work.
pub async fn handle(
    router: axum::Router,
    engine: Arc<Engine>,
    request: lambda_http::Request,
) -> Result<axum::response::Response, lambda_http::Error> {
    // The router answers every request (errors are problem+json responses): infallible.
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if !engine.wait_idle(BACKGROUND_GRACE).await {
        tracing::warn!("background work was still running when the answer was sent");
    }
    Ok(response)
}
