//! `--aws-sigv4` (SPEC §16): the deployed API sits behind API Gateway with IAM
//! authorization, so every request is signed with AWS Signature Version 4 for the service
//! `execute-api`, as the AWS CLI and SDKs sign theirs.
//!
//! Credentials and region come from the AWS SDK's default chain, so whatever an operator
//! already uses works unchanged: `AWS_PROFILE`, `aws sso login`, a `credential_process`,
//! environment variables, a container or instance role. They are resolved once per
//! invocation (the CLI makes one or two requests), each request is signed as it is sent.

use std::time::SystemTime;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use super::http::Failure;

/// API Gateway's signing name.
const SERVICE: &str = "execute-api";

/// Signs requests with one set of resolved credentials.
pub struct Signer {
    credentials: Credentials,
    region: String,
}

impl Signer {
    /// Resolves credentials and region with the SDK's default chain. Fails, saying what to
    /// set, when either is missing.
    pub fn from_environment() -> Result<Signer, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Failure::Unexpected(format!("could not start the AWS credential lookup: {e}"))
            })?;
        runtime.block_on(async {
            let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let region = config.region().map(ToString::to_string).ok_or_else(|| {
                Failure::Unexpected(
                    "--aws-sigv4 needs the AWS region of the deployed API: set AWS_REGION \
                     (or `region` in your AWS profile)"
                        .to_owned(),
                )
            })?;
            let provider = config.credentials_provider().ok_or_else(|| {
                Failure::Unexpected(
                    "--aws-sigv4 found no AWS credential provider; set AWS_PROFILE, run `aws \
                     sso login`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        .to_owned(),
                )
            })?;
            let credentials = provider.provide_credentials().await.map_err(|e| {
                Failure::Unexpected(format!(
                    "--aws-sigv4 could not load AWS credentials ({}); run `aws sso login` (or \
                     `aws configure`), or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY",
                    error_chain(&e)
                ))
            })?;
            Ok(Signer {
                credentials,
                region,
            })
        })
    }

    /// The headers that sign a request (`authorization`, `x-amz-date`, and
    /// `x-amz-security-token` for temporary credentials). `headers` are the ones the request
    /// sends that the signature should cover; `host` is taken from `url`.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, Failure> {
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Failure::Unexpected(format!("could not sign the request: {e}")))?
            .into();
        let request = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| Failure::Unexpected(format!("could not sign the request to {url}: {e}")))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| Failure::Unexpected(format!("could not sign the request to {url}: {e}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect())
    }
}

/// An error and its sources, the SDK's errors say little at the top level.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
