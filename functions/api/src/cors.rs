//! Opt-in CORS, for a web console served from another origin than the API.
//!
//! Off by default: letting any web page call the API would let any page a user visits try
//! to create jobs or delete backups with whatever credential it can get. Each allowed
//! origin is named exactly (`http://localhost:5173`); `*` is refused. The `Authorization`
//! header is allowed, since `backupctl serve` requires a bearer token (SPEC §12); no
//! credentials mode (cookies) is enabled, as none is used.

use axum::http::{header, HeaderValue, Method};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Why an origin was refused.
#[derive(Debug, thiserror::Error)]
#[error("`{origin}` is not a CORS origin: {reason}")]
pub struct BadOrigin {
    pub origin: String,
    pub reason: &'static str,
}

/// Checks one origin: `http` or `https`, a host, an optional port, and nothing else.
pub fn parse_origin(origin: &str) -> Result<HeaderValue, BadOrigin> {
    let bad = |reason| BadOrigin {
        origin: origin.to_owned(),
        reason,
    };
    if origin == "*" {
        return Err(bad("a wildcard would let any web page drive this server; name each origin, such as http://localhost:5173"));
    }
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    if rest.is_empty()
        || rest.contains('/')
        || !rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(bad(
            "write scheme, host and port only, such as https://console.example.com",
        ));
    }
    HeaderValue::from_str(origin).map_err(|_| bad("it is not a valid header value"))
}

/// `router` answering CORS preflights for `origins` (unchanged when `origins` is empty).
pub fn with_cors(router: Router, origins: Vec<HeaderValue>) -> Router {
    if origins.is_empty() {
        return router;
    }
    router.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            // `Authorization`: `backupctl serve` wants `Bearer <token>` on every API call
            // (SPEC §12); the console sends it from another origin too.
            .allow_headers([header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_named_exactly() {
        for good in [
            "http://localhost:5173",
            "https://console.example.com",
            "http://[::1]:8080",
        ] {
            assert!(parse_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "*",
            "localhost:5173",
            "http://",
            "https://a.example/path",
            "http://a b",
            "ftp://x",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
