//! The web form's static files, for the local server. A Lambda serves only the API.

use std::path::Path;

use axum::extract::Request;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::{not_found, API_PREFIXES};

/// What `/` answers when the form has not been built.
pub const WEB_NOT_BUILT_HTML: &str =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>backupctl</title></head><body>\n<h1>backupctl</h1>\n<p>The API is running, but the web \
form is not built. Build it with <code>wasm-pack build wasm --target web --out-dir web/pkg</code> \
(see the README), or point <code>backupctl serve --web-dir DIR</code> (or \
<code>BACKUPCTL_WEB_DIR</code>) at a built form.</p>\n<p>The API lives under \
<code>/orchestrate/v1/</code> and <code>/mesdb/v1/</code>; <code>/healthz</code> answers when the \
server is up.</p>\n</body></html>\n";

/// `api` plus the web form: files under `web_dir` when it is a directory, else a page at `/`
/// that says the form is not built and how to build it. Unknown API paths stay problems.
pub fn router_with_web(api: Router, web_dir: Option<&Path>) -> Router {
    let files = web_dir.filter(|d| d.is_dir()).map(ServeDir::new);
    api.fallback(move |req: Request| {
        let files = files.clone();
        async move {
            let path = req.uri().path().to_owned();
            if API_PREFIXES.iter().any(|p| path.starts_with(p)) || path == "/healthz" {
                return not_found(req.uri().clone()).await.into_response();
            }
            match files {
                Some(files) => match files.oneshot(req).await {
                    Ok(response) => response.into_response(),
                    Err(never) => match never {},
                },
                None if path == "/" || path == "/index.html" => {
                    Html(WEB_NOT_BUILT_HTML).into_response()
                }
                None => not_found_page(),
            }
        }
    })
}

fn not_found_page() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        Html("<!doctype html><title>Not found</title><p>Not found.</p>\n"),
    )
        .into_response()
}
