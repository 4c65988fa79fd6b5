//! The guard in front of `backupctl serve` (SPEC §12 "Authentication" and "Requests a browser
//! may forge"): one axum middleware that checks, in this order, the `Host` (421), the
//! `Origin` of a state-changing request (403), the credential (401) and the body's media
//! type (415). It belongs to `serve` only: the Lambda behind API Gateway runs the same router
//! with IAM authorization and API Gateway's own Host handling.
//!
//! # Decisions the SPEC leaves open
//! - **What needs a credential.** Everything under `/orchestrate/` and `/mesdb/`, `/metrics`,
//!   and every request whose method is not GET, HEAD or OPTIONS, whatever its path (deny by
//!   default: a POST to a web page is never legitimate, so it may as well need the token).
//!   `/healthz`, `/readyz`, `/openapi.json` and GETs of the web pages do not. CORS preflights
//!   never reach the guard when a `--cors-origin` is set: the CORS layer sits outside it and
//!   answers them itself, and a browser cannot attach a credential to a preflight anyway.
//! - **Comparing the token** takes time independent of where a guess differs (a byte-wise
//!   XOR fold over equal lengths; the length of a token is public).
//! - **JWTs** (`--jwt-public-key`): RS256 only, `exp` required and in the future with no
//!   leeway; `aud` and `iss` are not checked (the key is the trust anchor, and the `esc`
//!   client's tokens carry an audience this server cannot know). A bearer value is tried as
//!   the token first, then as a JWT.
//! - **Allowed hosts.** `localhost` (and `*.localhost`, which resolves to loopback too),
//!   any `127.0.0.0/8` address and `[::1]`, with any port; the `--listen` host unless it is
//!   an unspecified address (`0.0.0.0`, `[::]`: browsers route those to this machine, which is
//!   what DNS-rebinding-like attacks rely on); every `--public-host` (a name, or `NAME:PORT`
//!   to pin the port too). Names compare case-insensitively and without a trailing dot. A
//!   request with no `Host` (HTTP/1.0) is refused like a foreign one.
//! - **Own origin.** `http://` followed by the request's (already allowed) `Host` exactly;
//!   `Origin: null` (sandboxed frames, `file:` pages) is foreign.
//! - **A body** is announced by a `Content-Length` above zero or by any `Transfer-Encoding`;
//!   its type must be `application/json` (parameters such as `; charset=utf-8` allowed, no
//!   `+json` variants). A POST with no body (`…/jobs/{id}/run`) needs no type.
//! - Rejections are `application/problem+json` with the API's shape and a stable `code`:
//!   `misdirected_request`, `forbidden_origin`, `unauthorized`, `unsupported_media_type`.
//!   401 carries `WWW-Authenticate: Bearer` (with `error="invalid_token"` when a credential
//!   was sent but refused, per RFC 6750).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use backup_api::problem::ApiError;

use crate::cli::{AuthMode, ServeArgs};

/// Paths anyone may GET: liveness, readiness and the API's description.
const PUBLIC_PATHS: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// What the guard accepts as a credential.
pub struct Credentials {
    token: String,
    jwt: Option<Jwt>,
}

struct Jwt {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

impl Jwt {
    /// Reads `--jwt-public-key`. A private key is refused even though its public half could
    /// be derived: a server should not hold a key that can sign its own credentials.
    fn load(path: &std::path::Path) -> Result<Jwt, JwtKeyError> {
        let shown = path.display().to_string();
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(JwtKeyError::NoProvider);
        }
        let pem = std::fs::read(path).map_err(|source| JwtKeyError::Read {
            path: shown.clone(),
            source,
        })?;
        if String::from_utf8_lossy(&pem).contains("PRIVATE KEY-----") {
            return Err(JwtKeyError::PrivateKey { path: shown });
        }
        let key =
            jsonwebtoken::DecodingKey::from_rsa_pem(&pem).map_err(|source| JwtKeyError::Parse {
                path: shown,
                source,
            })?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        // A token whose `nbf` is still ahead is not valid yet.
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        Ok(Jwt { key, validation })
    }
}

/// Checks `--jwt-public-key` before `serve` creates or opens anything, so that a bad key
/// file leaves the data directory as it was.
pub fn check_jwt_key(args: &ServeArgs) -> anyhow::Result<()> {
    if let (AuthMode::Token, Some(path)) = (&args.auth, args.jwt_public_key.as_deref()) {
        Jwt::load(path).map_err(|e| anyhow::anyhow!("--jwt-public-key: {e}"))?;
    }
    Ok(())
}

/// Why `--jwt-public-key` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JwtKeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM RSA public key: {source}")]
    Parse {
        path: String,
        source: jsonwebtoken::errors::Error,
    },
    #[error("{path} is a private key; give the public key instead (`openssl pkey -in {path} -pubout`), so that this server can check tokens but never sign them")]
    PrivateKey { path: String },
    #[error("this build has no JWT crypto provider")]
    NoProvider,
}

impl Credentials {
    /// The server's token, and optionally a public key whose RS256 JWTs are accepted too.
    pub fn new(
        token: String,
        jwt_public_key: Option<&std::path::Path>,
    ) -> Result<Self, JwtKeyError> {
        let jwt = jwt_public_key.map(Jwt::load).transpose()?;
        Ok(Credentials { token, jwt })
    }

    /// Why `presented` is not accepted, or `Ok` when it is.
    fn check(&self, presented: &str) -> Result<(), &'static str> {
        if constant_time_eq(presented.as_bytes(), self.token.as_bytes()) {
            return Ok(());
        }
        let Some(jwt) = &self.jwt else {
            return Err("The bearer token is not this server's token.");
        };
        if presented.split('.').count() != 3 {
            return Err("The bearer credential is neither this server's token nor a JWT.");
        }
        match jsonwebtoken::decode::<serde_json::Value>(presented, &jwt.key, &jwt.validation) {
            Ok(_) => Ok(()),
            Err(e) => Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "The JWT has expired.",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "The JWT is not signed by the key given to --jwt-public-key."
                }
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    "The JWT is not signed with RS256."
                }
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    "The JWT is not valid yet (its `nbf` is in the future)."
                }
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => {
                    "The JWT has no `exp` claim."
                }
                _ => "The JWT is not valid.",
            }),
        }
    }
}

/// The guard's settings, built once by `serve`.
pub struct Guard {
    /// `None` with `--auth none`.
    pub credentials: Option<Credentials>,
    /// The host of `--listen`, lower-cased (not used when it is an unspecified address).
    pub listen_host: Option<String>,
    /// `--public-host` values, lower-cased.
    pub public_hosts: Vec<String>,
    /// `--cors-origin` values.
    pub cors_origins: Vec<String>,
    /// `<data-dir>/token`, as shown in the 401 detail.
    pub token_path: String,
}

impl Guard {
    /// `listen` is `--listen` as given (`127.0.0.1:8080`, `[::1]:0`, `myhost:8080`).
    pub fn new(
        credentials: Option<Credentials>,
        listen: &str,
        public_hosts: &[String],
        cors_origins: &[String],
        token_path: String,
    ) -> Guard {
        let listen_host = split_host(listen.trim())
            .filter(|host| !host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()));
        Guard {
            credentials,
            listen_host,
            public_hosts: public_hosts
                .iter()
                .map(|h| normalize(h.trim()))
                .filter(|h| !h.is_empty())
                .collect(),
            cors_origins: cors_origins.iter().map(|o| o.trim().to_owned()).collect(),
            token_path,
        }
    }

    /// Whether a `Host` header value names this server.
    fn host_allowed(&self, host: &str) -> bool {
        let Some(name) = split_host(host) else {
            return false;
        };
        if is_loopback_name(&name) || self.listen_host.as_deref() == Some(name.as_str()) {
            return true;
        }
        let whole = normalize(host);
        self.public_hosts
            .iter()
            .any(|public| *public == name || *public == whole)
    }

    /// Whether `origin` may send a state-changing request to a server reached as `host`.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        // The server's own pages, over plain HTTP or through a TLS proxy in front of it
        // (`--public-host` names the proxy's host; the scheme is the proxy's).
        let own = |scheme: &str| {
            origin
                .get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
                && origin[scheme.len()..].eq_ignore_ascii_case(host)
        };
        own("http://")
            || own("https://")
            || self
                .cors_origins
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }

    fn unauthorized(&self, reason: &str, presented: bool, uri: &Uri) -> Response {
        let jwt = match &self.credentials {
            Some(Credentials { jwt: Some(_), .. }) => {
                " A JWT signed (RS256) by the key given to --jwt-public-key, with a future `exp`, \
                 is accepted too."
            }
            _ => "",
        };
        let detail = format!(
            "{reason} This API needs `Authorization: Bearer <token>`. The token is in {} on the \
             server's machine and in the sign-in URL (http://HOST:PORT/#token=…) that \
             `backupctl serve` printed when it started; backupctl reads the file when --url is a \
             loopback address, or takes --token (BACKUPCTL_TOKEN).{jwt}",
            self.token_path
        );
        let challenge = if presented {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        let mut response = problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
            uri,
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }
}

/// What `serve` needs from this module: the guard, and the token to print in the sign-in URL
/// (`None` with `--auth none`).
pub struct Setup {
    pub guard: Arc<Guard>,
    pub token: Option<String>,
}

/// Refuses `--auth none` on a non-loopback `--listen` or with `--allow-commands`, and warns
/// about it on a loopback one.
/// Called before anything else happens, so a refused start touches nothing.
pub fn check_auth_mode(args: &ServeArgs) -> anyhow::Result<()> {
    if args.auth == AuthMode::None {
        if !is_loopback_host(&args.listen) {
            anyhow::bail!(
                "--auth none is only allowed with a loopback --listen (127.0.0.1, [::1] or \
                 localhost), not {}: anyone who can reach that address could drive the API. \
                 Keep the default --auth token, or listen on 127.0.0.1",
                args.listen
            );
        }
        if args.jwt_public_key.is_some() {
            anyhow::bail!("--jwt-public-key goes with --auth token, not --auth none");
        }
        // SPEC §15: only an authenticated caller may register what runs commands, and
        // with no credential every caller is anonymous.
        if args.allow_commands {
            anyhow::bail!(
                "--allow-commands goes with --auth token, not --auth none: command clusters \
                 and hooks run shell commands with this server's rights, so only an \
                 authenticated caller may register them. Keep the default --auth token, or \
                 leave out --allow-commands"
            );
        }
        eprintln!(
            "warning: --auth none: the API needs no credential, so any local user or process \
             (and any program they run) can create jobs, take and delete backups on this server"
        );
        tracing::warn!("--auth none: any local user or process can drive the API");
    }
    Ok(())
}

/// Makes (or reads) the token and builds the guard for `serve`'s arguments.
pub fn setup(args: &ServeArgs) -> anyhow::Result<Setup> {
    let token_path = crate::token::token_path(&args.data_dir);
    let shown_path = std::path::absolute(&token_path)
        .unwrap_or_else(|_| token_path.clone())
        .display()
        .to_string();
    let (credentials, token) = match args.auth {
        AuthMode::None => (None, None),
        AuthMode::Token => {
            let token = crate::token::load_or_create(&args.data_dir)?;
            let credentials = Credentials::new(token.clone(), args.jwt_public_key.as_deref())
                .map_err(|e| anyhow::anyhow!("--jwt-public-key: {e}"))?;
            (Some(credentials), Some(token))
        }
    };
    let guard = Guard::new(
        credentials,
        &args.listen,
        &args.public_hosts,
        &args.cors_origins,
        shown_path,
    );
    Ok(Setup {
        guard: Arc::new(guard),
        token,
    })
}

/// The middleware: `axum::middleware::from_fn_with_state(Arc<Guard>, guard)`.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match check(&guard, request.method(), request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(response) => *response,
    }
}

/// The Host check alone, as a layer outside CORS, so that a preflight (which CORS answers
/// itself, before [`guard`]) to a foreign host is refused too.
pub async fn host_guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match check_host(&guard, request.uri(), request.headers()) {
        Ok(_) => next.run(request).await,
        Err(response) => *response,
    }
}

/// 421 for a host this server does not answer to (a rebound DNS name, a stray proxy), 400
/// for a request that names two; the host otherwise. A request in absolute form
/// (`GET http://host/…`) is judged by its URI's authority, which a server must prefer to
/// `Host` (RFC 9112 §3.2.2), and by its `Host` too.
fn check_host(guard: &Guard, uri: &Uri, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let header_host = hosts
        .next()
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    if hosts.next().is_some() {
        return Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Bad request",
            "The request has more than one Host header; send exactly one.",
            uri,
        )));
    }
    let authority = uri.authority().map(|a| a.as_str().to_owned());
    let refused = [&authority, &header_host]
        .into_iter()
        .flatten()
        .find(|host| !guard.host_allowed(host))
        .cloned();
    match (refused, authority.or(header_host)) {
        (None, Some(host)) => Ok(host),
        (refused, other) => {
            let other = refused.or(other);
            tracing::debug!(host = ?other, path = uri.path(), "refused: foreign Host");
            Err(Box::new(problem(
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected_request",
                "Misdirected request",
                format!(
                    "This server does not answer to the host {}. Reach it as localhost or \
                     127.0.0.1, or start it with --public-host NAME for the name you use.",
                    other
                        .as_deref()
                        .map_or("(none)".to_owned(), |h| format!("`{h}`"))
                ),
                uri,
            )))
        }
    }
}

/// Every check, in the SPEC's order; the refusal when one fails.
/// (The refusal is boxed: a `Response` is large and the happy path should stay small.)
fn check(
    guard: &Guard,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    let host = check_host(guard, uri, headers)?;

    // 403: a state-changing request sent by a page of another origin.
    let state_changing = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if state_changing {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("(not text)");
            if !guard.origin_allowed(origin, &host) {
                tracing::debug!(origin, path = uri.path(), "refused: foreign Origin");
                // `null` is an opaque origin (a file, a sandboxed frame): no flag allows it.
                let remedy = if origin.eq_ignore_ascii_case("null") {
                    "Serve that page from a web server and start this one with --cors-origin \
                     for the page's origin."
                        .to_owned()
                } else {
                    format!("Start the server with --cors-origin {origin} if that page is yours.")
                };
                return Err(Box::new(problem(
                    StatusCode::FORBIDDEN,
                    "forbidden_origin",
                    "Forbidden",
                    format!(
                        "A page from {origin} may not change anything on this server. {remedy}"
                    ),
                    uri,
                )));
            }
        }
    }

    // 401: no credential, or a wrong one.
    let path = uri.path();
    let public = PUBLIC_PATHS.contains(&path);
    let protected = backup_api::API_PREFIXES.iter().any(|p| path.starts_with(p))
        || path == "/metrics"
        || path.starts_with("/metrics/")
        || (state_changing && !public);
    if protected {
        if let Some(credentials) = &guard.credentials {
            match headers.get(header::AUTHORIZATION) {
                None => {
                    return Err(Box::new(guard.unauthorized(
                        "No credential was sent.",
                        false,
                        uri,
                    )));
                }
                Some(value) => {
                    let bearer = value
                        .to_str()
                        .ok()
                        .and_then(|v| v.trim().split_once(' '))
                        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                        .map(|(_, credential)| credential.trim())
                        .filter(|credential| !credential.is_empty());
                    let Some(bearer) = bearer else {
                        return Err(Box::new(guard.unauthorized(
                            "The Authorization header is not `Bearer <token>`.",
                            true,
                            uri,
                        )));
                    };
                    if let Err(reason) = credentials.check(bearer) {
                        tracing::debug!(path, reason, "refused: bad credential");
                        return Err(Box::new(guard.unauthorized(reason, true, uri)));
                    }
                }
            }
        }
    }

    // 415: a body that is not JSON (an HTML form can send text/plain or form data without
    // a preflight; JSON it cannot).
    if has_body(headers) {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Box::new(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "Send the request body as JSON, with Content-Type: application/json.",
                uri,
            )));
        }
    }
    Ok(())
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            // An unparsable length is refused by hyper before it gets here; count it as a body.
            .any(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0))
}

fn problem(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: impl Into<String>,
    uri: &Uri,
) -> Response {
    let mut error = ApiError::new(status, code, detail, uri);
    title.clone_into(&mut error.problem.title);
    error.into_response()
}

/// The host of a `Host` value or a `--listen` address, lower-cased, without port, brackets
/// or trailing dot; `None` when it is not `host[:port]`.
fn split_host(authority: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        (
            inside,
            after.strip_prefix(':').or(after.is_empty().then_some(""))?,
        )
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, port),
            None => (authority, ""),
        }
    };
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(normalize(host))
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `localhost`, `*.localhost`, `127.0.0.0/8` and `::1` (IPv4-mapped forms included).
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether `host` (a `--listen` host or a URL's host) is a loopback name or address.
pub fn is_loopback_host(authority: &str) -> bool {
    split_host(authority).is_some_and(|h| is_loopback_name(&h))
}

/// Compares in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(
            Some(Credentials::new("t".repeat(43), None).unwrap()),
            "127.0.0.1:8080",
            &["backup.example.com".to_owned()],
            &["http://localhost:5173".to_owned()],
            "/data/token".to_owned(),
        )
    }

    #[test]
    fn hosts() {
        let g = guard();
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:1",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
            "backup.example.com:443",
            "Backup.Example.com.",
            "app.localhost:3000",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "10.0.0.1:8080",
            "0.0.0.0:8080",
            "[::]:8080",
            "localhost.evil.example",
            "127.0.0.1:80x",
            "",
            "[::1",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn listen_hosts_and_loopback() {
        let g = Guard::new(None, "myhost.lan:8080", &[], &[], String::new());
        assert!(g.host_allowed("myhost.lan:8080"));
        let g = Guard::new(None, "0.0.0.0:8080", &[], &[], String::new());
        assert!(!g.host_allowed("0.0.0.0:8080"));
        assert!(is_loopback_host("127.0.0.1:8080"));
        assert!(is_loopback_host("[::1]:0"));
        assert!(is_loopback_host("localhost"));
        assert!(!is_loopback_host("0.0.0.0:8080"));
        assert!(!is_loopback_host("example.com"));
    }

    #[test]
    fn origins() {
        let g = guard();
        assert!(g.origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(g.origin_allowed("http://localhost:5173", "127.0.0.1:8080"));
        assert!(!g.origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8080"));
        assert!(!g.origin_allowed("null", "127.0.0.1:8080"));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
