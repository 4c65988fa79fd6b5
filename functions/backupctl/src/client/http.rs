//! The blocking HTTP client of the API (SPEC §7): paths, requests, RFC 7807 problems and the
//! ways a server can be out of reach.
//!
//! `ureq` rather than an async client: the CLI makes one or two requests per invocation, so a
//! runtime would only add start-up time and dependencies. rustls handles `https://` URLs.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::time::Duration;

use backup_core::api::Problem;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cli::Global;

/// How long to wait for a TCP connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An upper bound on one request, including a synchronous backup of a large directory.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The largest answer read; a list of every job of a big project is well below it.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Why a command failed, in terms the operator can act on.
#[derive(Debug)]
pub enum Failure {
    /// The API refused the request with an RFC 7807 problem.
    Problem(Box<Problem>),
    /// Local checks refused the request before it was sent; the same shape as a 400 problem.
    Invalid {
        detail: String,
        fields: BTreeMap<String, String>,
    },
    /// A flag is wrong in a way the grammar cannot express (exit status 2, like clap's).
    Usage(Vec<String>),
    /// No connection could be made.
    Unreachable { url: String, reason: String },
    /// The server answered, but not with what the API promises.
    Unexpected(String),
}

/// A successful (2xx) answer.
#[derive(Debug)]
pub struct Reply {
    pub url: String,
    pub body: String,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_str(&self.body).map_err(|e| {
            Failure::Unexpected(format!(
                "the answer from {} is not what this backupctl expects ({e}); is --url pointing \
                 at a backupctl server of the same version? The answer began: {}",
                self.url,
                excerpt(&self.body)
            ))
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

/// The API at `--url`, scoped to `--org-id` and `--project-id`.
pub struct Api {
    agent: ureq::Agent,
    base: String,
    org: String,
    project: String,
    /// The bearer token sent with every request, if any.
    token: Option<String>,
    /// Where the token came from (or why there is none), for a 401's message.
    token_source: String,
    /// `--aws-sigv4`: signs every request instead of sending a token.
    #[cfg(feature = "aws")]
    signer: Option<super::sigv4::Signer>,
}

/// The token to send (SPEC §12): `--token`/`BACKUPCTL_TOKEN`, else `<data-dir>/token` when
/// `--url` is a loopback address (a token is never sent to another machine by accident);
/// also a sentence saying where it came from, or why there is none.
fn resolve_token(global: &Global, base: &str) -> (Option<String>, String) {
    if let Some(token) = global.token.as_deref().map(str::trim) {
        if !token.is_empty() {
            return (
                Some(token.to_owned()),
                "backupctl sent the token given with --token (or BACKUPCTL_TOKEN)".to_owned(),
            );
        }
    }
    let path = crate::token::token_path(&global.data_dir);
    let authority = base
        .parse::<ureq::http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default();
    if !crate::guard::is_loopback_host(&authority) {
        return (
            None,
            format!(
                "backupctl sent no token: --url is not a loopback address, so it does not read \
                 {}; pass --token (or set BACKUPCTL_TOKEN)",
                path.display()
            ),
        );
    }
    match crate::token::read(&global.data_dir) {
        Ok(Some(token)) => (
            Some(token),
            format!(
                "backupctl sent the token in {}; if the server uses another data directory, \
                 pass --data-dir DIR (or BACKUPCTL_DATA_DIR) or --token",
                path.display()
            ),
        ),
        Ok(None) => (
            None,
            format!(
                "backupctl sent no token: --token and BACKUPCTL_TOKEN are unset and {} does \
                 not exist; pass the server's --data-dir with --data-dir DIR (or \
                 BACKUPCTL_DATA_DIR), or --token",
                path.display()
            ),
        ),
        Err(e) => (
            None,
            format!(
                "backupctl sent no token: it cannot read {} ({e}); the token file is readable \
                 only by the user who runs the server, so run as that user or pass --token",
                path.display()
            ),
        ),
    }
}

impl Api {
    pub fn new(global: &Global) -> Result<Api, Failure> {
        let base = global.url.trim().trim_end_matches('/').to_owned();
        let scheme_ok = ["http://", "https://"].iter().any(|s| {
            base.len() > s.len()
                && base
                    .get(..s.len())
                    .is_some_and(|b| b.eq_ignore_ascii_case(s))
        });
        if !scheme_ok || base.parse::<ureq::http::Uri>().is_err() {
            return Err(Failure::Usage(vec![format!(
                "--url \"{}\" is not an http:// or https:// URL; write one such as \
                 http://127.0.0.1:8080 (or set BACKUPCTL_URL).",
                global.url
            )]));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("backupctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        #[cfg(not(feature = "aws"))]
        if global.aws_sigv4 {
            return Err(Failure::Usage(vec![
                "--aws-sigv4 needs a backupctl built with the `aws` feature (the default of \
                 `cargo install backupctl` and `cargo build -p backupctl`); this one was built \
                 without it."
                    .to_owned(),
            ]));
        }
        let (token, token_source) = if global.aws_sigv4 {
            if global
                .token
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty())
            {
                return Err(Failure::Usage(vec![
                    "--aws-sigv4 and --token (or BACKUPCTL_TOKEN) both authenticate the \
                     request; give one: --aws-sigv4 for the API a `Deploy to AWS` stack \
                     serves, --token for `backupctl serve`."
                        .to_owned(),
                ]));
            }
            (
                None,
                "backupctl signed the request with --aws-sigv4: check that your AWS \
                 identity may call execute-api:Invoke on this API and that AWS_REGION is the \
                 API's region"
                    .to_owned(),
            )
        } else {
            resolve_token(global, &base)
        };
        Ok(Api {
            agent,
            base,
            org: global.org_id.clone(),
            project: global.project_id.clone(),
            token,
            token_source,
            #[cfg(feature = "aws")]
            signer: if global.aws_sigv4 {
                Some(super::sigv4::Signer::from_environment()?)
            } else {
                None
            },
        })
    }

    /// The flags that point another command at this server and scope (`--url`,
    /// `--org-id`, `--project-id`), each only where it is not the default: what a printed
    /// follow-up command must repeat to reach the same list. The token is never repeated.
    pub fn scope_flags(&self) -> String {
        let mut flags = String::new();
        for (flag, value, default) in [
            ("--url", self.base.as_str(), super::super::cli::DEFAULT_URL),
            ("--org-id", self.org.as_str(), "default"),
            ("--project-id", self.project.as_str(), "default"),
        ] {
            if value != default {
                flags.push_str(&format!(" {flag} {}", shell_word(value)));
            }
        }
        flags
    }

    /// `/orchestrate/v1/organizations/{org}/projects/{project}/<segments…>`.
    pub fn orchestrate(&self, segments: &[&str]) -> String {
        self.scoped("orchestrate", segments)
    }

    /// `path` (such as `/orchestrate/v1/jobs/rearm`) on the server, outside any scope.
    pub fn root(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `/mesdb/v1/organizations/{org}/projects/{project}/<segments…>`.
    pub fn mesdb(&self, segments: &[&str]) -> String {
        self.scoped("mesdb", segments)
    }

    fn scoped(&self, api: &str, segments: &[&str]) -> String {
        let mut url = format!(
            "{}/{api}/v1/organizations/{}/projects/{}",
            self.base,
            encode(&self.org),
            encode(&self.project)
        );
        for segment in segments {
            url.push('/');
            url.push_str(&encode(segment));
        }
        url
    }

    pub fn get(&self, url: &str) -> Result<Reply, Failure> {
        self.send(Method::Get, url, None)
    }

    pub fn delete(&self, url: &str) -> Result<Reply, Failure> {
        self.send(Method::Delete, url, None)
    }

    /// POSTs `body` as JSON, or nothing when it is `None`.
    pub fn post<T: Serialize>(&self, url: &str, body: Option<&T>) -> Result<Reply, Failure> {
        let body = match body {
            Some(body) => Some(serde_json::to_vec(body).map_err(|e| {
                Failure::Unexpected(format!("could not write the request as JSON: {e}"))
            })?),
            None => None,
        };
        self.send(Method::Post, url, body)
    }

    /// PATCHes `body` as JSON.
    pub fn patch<T: Serialize>(&self, url: &str, body: &T) -> Result<Reply, Failure> {
        let body = serde_json::to_vec(body).map_err(|e| {
            Failure::Unexpected(format!("could not write the request as JSON: {e}"))
        })?;
        self.send(Method::Patch, url, Some(body))
    }

    fn send(&self, method: Method, url: &str, body: Option<Vec<u8>>) -> Result<Reply, Failure> {
        let mut headers = vec![(
            "accept".to_owned(),
            "application/json, application/problem+json".to_owned(),
        )];
        if body.is_some() {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        if let Some(token) = &self.token {
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
        }
        headers.extend(self.signature(method, url, &headers, body.as_deref())?);
        let result = match (method, body) {
            (Method::Get, _) => with_headers(self.agent.get(url), &headers).call(),
            (Method::Delete, _) => with_headers(self.agent.delete(url), &headers).call(),
            (Method::Post, Some(body)) => with_headers(self.agent.post(url), &headers).send(body),
            (Method::Post, None) => with_headers(self.agent.post(url), &headers).send_empty(),
            (Method::Patch, body) => {
                with_headers(self.agent.patch(url), &headers).send(body.unwrap_or_default())
            }
        };
        let mut response = result.map_err(|e| self.transport_failure(url, e))?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_string()
            .map_err(|e| self.transport_failure(url, e))?;
        if status.is_success() {
            return Ok(Reply {
                url: url.to_owned(),
                body,
            });
        }
        match serde_json::from_str::<Problem>(&body) {
            Ok(mut problem)
                if status.as_u16() == 401 || (status.as_u16() == 403 && self.signs()) =>
            {
                // Say where this backupctl looked for the token, after the server's hint.
                problem.detail = format!("{}\n{}.", problem.detail.trim_end(), self.token_source);
                Err(Failure::Problem(Box::new(problem)))
            }
            Ok(problem) => Err(Failure::Problem(Box::new(problem))),
            Err(_) => Err(Failure::Unexpected(format!(
                "{url} answered {status} without an API problem; is --url pointing at a \
                 backupctl server? The answer began: {}",
                excerpt(&body)
            ))),
        }
    }

    /// Whether requests are signed (`--aws-sigv4`): a 403 then means the signature or the
    /// identity's permissions, so the answer says how the request was authenticated.
    fn signs(&self) -> bool {
        #[cfg(feature = "aws")]
        return self.signer.is_some();
        #[cfg(not(feature = "aws"))]
        false
    }

    /// The SigV4 headers of a request with `headers` and `body`, with `--aws-sigv4`
    /// (without the `aws` feature [`Api::new`] refuses the flag: nothing to add).
    fn signature(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Vec<(String, String)>, Failure> {
        #[cfg(feature = "aws")]
        if let Some(signer) = &self.signer {
            let method = match method {
                Method::Get => "GET",
                Method::Post => "POST",
                Method::Patch => "PATCH",
                Method::Delete => "DELETE",
            };
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            return signer.sign(method, url, &headers, body.unwrap_or_default());
        }
        let _ = (method, url, headers, body);
        Ok(Vec::new())
    }

    fn transport_failure(&self, url: &str, error: ureq::Error) -> Failure {
        let unreachable = |reason: String| Failure::Unreachable {
            url: self.base.clone(),
            reason,
        };
        match error {
            ureq::Error::Io(e) => match e.kind() {
                ErrorKind::ConnectionRefused => unreachable("connection refused".to_owned()),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                    unreachable(format!("the connection was closed ({e})"))
                }
                ErrorKind::TimedOut => unreachable("the connection timed out".to_owned()),
                _ => unreachable(e.to_string()),
            },
            ureq::Error::HostNotFound => unreachable("its host name does not resolve".to_owned()),
            ureq::Error::ConnectionFailed => unreachable("the connection failed".to_owned()),
            ureq::Error::Timeout(t) => unreachable(format!("no answer in time ({t})")),
            ureq::Error::Tls(e) => unreachable(format!("TLS failed: {e}")),
            ureq::Error::Rustls(e) => unreachable(format!("TLS failed: {e}")),
            ureq::Error::BadUri(e) => Failure::Usage(vec![format!(
                "--url \"{}\" is not a valid URL ({e}); write one such as http://127.0.0.1:8080.",
                self.base
            )]),
            ureq::Error::BodyExceedsLimit(n) => Failure::Unexpected(format!(
                "the answer from {url} is larger than {n} bytes; narrow the request (such as \
                 --job-id)"
            )),
            other => Failure::Unexpected(format!("the request to {url} failed: {other}")),
        }
    }
}

fn with_headers<B>(
    request: ureq::RequestBuilder<B>,
    headers: &[(String, String)],
) -> ureq::RequestBuilder<B> {
    headers.iter().fold(request, |request, (name, value)| {
        request.header(name, value)
    })
}

/// Appends `?k=v&…` for the parameters that are given.
pub fn with_query(mut url: String, params: &[(&str, Option<&str>)]) -> String {
    // A URL that already has a query (a filter, then a page) goes on with `&`.
    let mut first = !url.contains('?');
    for (key, value) in params {
        if let Some(value) = value {
            url.push(if first { '?' } else { '&' });
            url.push_str(key);
            url.push('=');
            url.push_str(&encode(value));
            first = false;
        }
    }
    url
}

/// `text` as one word for a POSIX shell: as it is when it holds only characters no shell
/// reads specially, else in single quotes.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/=@%+,".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so an id such as
/// `../x` or `a/b` stays one path segment.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    // `.` and `..` alone are path steps, not names, even when percent-encoding leaves them.
    match out.as_str() {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => out,
    }
}

/// The start of a body, on one line, for an error message.
fn excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if one_line.trim().is_empty() {
        "(nothing)".to_owned()
    } else {
        one_line.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(url: &str) -> Result<Api, Failure> {
        Api::new(&Global {
            url: url.to_owned(),
            org_id: "my org".to_owned(),
            project_id: "default".to_owned(),
            json: false,
            token: None,
            aws_sigv4: false,
            data_dir: std::path::PathBuf::from("./.backupctl"),
        })
    }

    #[test]
    fn paths_follow_the_api_and_encode_every_segment() {
        let api = api("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            api.orchestrate(&["jobs", "../x", "run"]),
            "http://127.0.0.1:8080/orchestrate/v1/organizations/my%20org/projects/default/jobs/..%2Fx/run"
        );
        assert_eq!(
            api.mesdb(&["clusters", ".."]),
            "http://127.0.0.1:8080/mesdb/v1/organizations/my%20org/projects/default/clusters/%2E%2E"
        );
    }

    #[test]
    fn queries_skip_absent_parameters() {
        let url = with_query(
            "http://h/x".into(),
            &[("jobId", None), ("clusterId", Some("a&b"))],
        );
        assert_eq!(url, "http://h/x?clusterId=a%26b");
    }

    #[test]
    fn only_http_urls_are_accepted() {
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://h",
            "http://",
            "http://bad host",
            "ééééé",
        ] {
            assert!(
                matches!(api(bad), Err(Failure::Usage(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(api("HTTPS://example.com/api").is_ok());
    }

    #[test]
    fn a_refused_connection_is_unreachable() {
        // GIVEN a port nobody listens on (bound, then closed)
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let api = api(&format!("http://127.0.0.1:{port}")).unwrap();
        // WHEN a request is made THEN it is reported as unreachable, naming the URL
        match api.get(&api.orchestrate(&["jobs"])) {
            Err(Failure::Unreachable { url, reason }) => {
                assert_eq!(url, format!("http://127.0.0.1:{port}"));
                assert_eq!(reason, "connection refused");
            }
            other => panic!("{other:?}"),
        }
    }
}
