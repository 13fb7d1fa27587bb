//! The cloud adapters: the same capabilities as the local ones, backed by AWS with the real SDK
//! clients. [`S3Store`] is a [`crate::store::BlobStore`], [`DynamoJobs`] a
//! [`crate::jobs::JobStore`], so every step runs unchanged in a Lambda; [`backgrounds`] is the
//! background library (over any store), [`channels`] the scheduled channels (EventBridge rules),
//! [`sfn`] cloud runs (Step Functions executions), [`triggers`] what S3 events need and
//! [`secrets`] the OpenAI key in Parameter Store.
//!
//! Every client reads the standard AWS configuration ([`config_loader`]: profile, region,
//! credentials, `AWS_ENDPOINT_URL`) and retries throttling and 5xx answers with the SDK's
//! standard retry mode, [`MAX_ATTEMPTS`] attempts in all. Resource names come from flags or the
//! environment, as the stack's Outputs print them ([`resource_name`]).

pub mod accounts;
pub mod backgrounds;
pub mod channels;
pub mod dynamo;
pub mod s3;
pub mod secrets;
pub mod sfn;
pub mod triggers;

pub use aws_config::SdkConfig;
pub use dynamo::DynamoJobs;
pub use s3::S3Store;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

/// Attempts per AWS call (the first and up to four retries) for throttling, 5xx answers,
/// timeouts and broken connections: the standard retry mode with exponential backoff and jitter.
pub const MAX_ATTEMPTS: u32 = 5;

/// Environment variable naming the media bucket (stack output `BucketName`).
pub const BUCKET_ENV: &str = "STORYREEL_BUCKET";
/// Environment variable naming the job table (stack output `JobTableName`).
pub const TABLE_ENV: &str = "STORYREEL_TABLE";
/// Environment variable naming the state machine (stack output `StateMachineArn`).
pub const STATE_MACHINE_ENV: &str = "STORYREEL_STATE_MACHINE_ARN";
/// Environment variable naming the role EventBridge assumes to start executions (stack output
/// `ChannelRoleArn`).
pub const EVENTS_ROLE_ENV: &str = "STORYREEL_EVENTS_ROLE_ARN";

/// The retry policy every storyreel AWS client uses.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// The standard AWS configuration chain (environment, profile, SSO, container and instance
/// credentials; region; `AWS_ENDPOINT_URL`) with storyreel's retry policy. Callers may add
/// overrides (tests set an endpoint, a region and fixed credentials) before `load()`.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config())
}

/// Loads the standard AWS configuration (see [`config_loader`]).
pub async fn load_config() -> SdkConfig {
    config_loader().load().await
}

/// A resource name was given neither as a flag nor in the environment.
#[derive(Debug, thiserror::Error)]
#[error("no {what} given: pass {flag} or set {env} (the stack output {output})")]
pub struct MissingResource {
    pub what: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
    pub output: &'static str,
}

/// The resource name from `flag`, else from the environment variable `env`; empty values count
/// as absent.
pub fn resource_name(
    flag: Option<&str>,
    what: &'static str,
    flag_name: &'static str,
    env: &'static str,
    output: &'static str,
) -> Result<String, MissingResource> {
    flag.map(str::to_string)
        .or_else(|| std::env::var(env).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or(MissingResource {
            what,
            flag: flag_name,
            env,
            output,
        })
}

/// Amazon Polly narration with the same configuration as the other clients.
pub fn polly(conf: &SdkConfig) -> storyreel_speech::PollySpeech {
    let config = aws_sdk_polly::config::Builder::from(conf)
        .retry_config(retry_config())
        .build();
    storyreel_speech::PollySpeech::new(aws_sdk_polly::Client::from_conf(config))
}

/// True when an endpoint override is configured for `service` (`AWS_ENDPOINT_URL_<SERVICE>`) or
/// for all services (`AWS_ENDPOINT_URL`, also in `conf`): a local server such as moto.
pub(crate) fn endpoint_overridden(conf: &SdkConfig, service_env: &str) -> bool {
    conf.endpoint_url().is_some()
        || std::env::var(service_env).is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.trim().is_empty())
}

/// How an AWS call failed, as the adapters map it to their errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The object or item does not exist.
    NotFound,
    /// The container (bucket, table, rule) does not exist.
    NoContainer,
    /// Permissions.
    Denied,
    /// Throttling, 5xx, timeouts, broken connections: worth retrying.
    Unavailable,
    /// Anything else.
    Other,
}

/// An SDK error of any AWS client (they share the smithy types).
pub(crate) type AnySdkError<E> =
    aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>;

/// Classifies an SDK error by its error code and HTTP status. `not_found` and `no_container`
/// are the service's codes for a missing item and a missing container.
pub(crate) fn classify<E>(
    err: &AnySdkError<E>,
    not_found: &[&str],
    no_container: &[&str],
) -> Failure
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => return Failure::Unavailable,
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {}
        _ => return Failure::Other,
    }
    let code = match err {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    };
    let status = err.raw_response().map(|r| r.status().as_u16());
    classify_code(code, status, not_found, no_container)
}

/// [`classify`] on a code and status alone.
pub(crate) fn classify_code(
    code: Option<&str>,
    status: Option<u16>,
    not_found: &[&str],
    no_container: &[&str],
) -> Failure {
    const DENIED: &[&str] = &[
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "MissingAuthenticationToken",
    ];
    const UNAVAILABLE: &[&str] = &[
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
    ];
    if let Some(code) = code {
        if no_container.contains(&code) {
            return Failure::NoContainer;
        }
        if not_found.contains(&code) {
            return Failure::NotFound;
        }
        if DENIED.contains(&code) {
            return Failure::Denied;
        }
        if UNAVAILABLE.contains(&code) {
            return Failure::Unavailable;
        }
    }
    match status {
        Some(404) if code.is_none() => Failure::NotFound,
        Some(403) => Failure::Denied,
        Some(429 | 500 | 502 | 503 | 504) => Failure::Unavailable,
        _ => Failure::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_are_classified() {
        let nf = &["NoSuchKey"];
        let nc = &["NoSuchBucket"];
        assert_eq!(
            classify_code(Some("NoSuchKey"), Some(404), nf, nc),
            Failure::NotFound
        );
        assert_eq!(
            classify_code(Some("NoSuchBucket"), Some(404), nf, nc),
            Failure::NoContainer
        );
        assert_eq!(classify_code(None, Some(404), nf, nc), Failure::NotFound);
        assert_eq!(
            classify_code(Some("AccessDenied"), Some(403), nf, nc),
            Failure::Denied
        );
        assert_eq!(classify_code(None, Some(403), nf, nc), Failure::Denied);
        for code in [
            "SlowDown",
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            assert_eq!(
                classify_code(Some(code), Some(400), nf, nc),
                Failure::Unavailable,
                "{code}"
            );
        }
        assert_eq!(classify_code(None, Some(503), nf, nc), Failure::Unavailable);
        assert_eq!(
            classify_code(Some("ValidationException"), Some(400), nf, nc),
            Failure::Other
        );
    }

    #[test]
    fn retry_policy_allows_retries() {
        assert_eq!(retry_config().max_attempts(), MAX_ATTEMPTS);
        const { assert!(MAX_ATTEMPTS > 1) };
    }

    #[test]
    fn resource_names_come_from_flag_then_env() {
        let r = resource_name(
            Some("b"),
            "bucket",
            "--bucket",
            "STORYREEL_TEST_UNSET_VAR",
            "BucketName",
        );
        assert_eq!(r.unwrap(), "b");
        let e = resource_name(
            None,
            "bucket",
            "--bucket",
            "STORYREEL_TEST_UNSET_VAR",
            "BucketName",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no bucket given: pass --bucket or set STORYREEL_TEST_UNSET_VAR (the stack output BucketName)"
        );
    }
}
