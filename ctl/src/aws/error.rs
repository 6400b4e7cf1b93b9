//! AWS errors as one sentence an operator can act on.
//!
//! The SDK's errors nest (operation error, dispatch failure, identity resolution, service error
//! code); operators need to know which of a few things went wrong and what to do about it. The
//! classification reads the service's error code first and only then the error chain's text
//! (missing credentials and unreachable endpoints have no code).

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// What kind of failure an AWS call had, which decides the advice and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No credentials found, or they expired or were rejected.
    Credentials,
    /// The credentials work but lack a permission.
    Denied,
    /// AWS asked us to slow down (after the SDK's own retries).
    Throttled,
    /// The endpoint could not be reached or timed out.
    Network,
    /// The resource does not exist.
    NotFound,
    /// Something the operator gave is wrong (region, names); exit code 2.
    Usage,
    /// Any other answer from the service.
    Service,
}

/// A failed AWS call, explained.
#[derive(Debug, Clone)]
pub struct AwsError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// The service's error code, when it gave one (e.g. `ValidationError`).
    pub code: Option<String>,
    /// The service's own message, when it gave one.
    pub service_message: Option<String>,
    /// The HTTP status of the answer, when there was one (a 5xx means the service failed, or an
    /// emulator does not implement the call).
    pub http_status: Option<u16>,
    /// The sentence shown to the operator.
    pub message: String,
}

impl AwsError {
    /// An error made by ctl itself (no SDK error behind it).
    pub fn new(kind: ErrorKind, message: String) -> Self {
        Self {
            kind,
            code: None,
            service_message: None,
            http_status: None,
            message,
        }
    }

    /// True when the service answered with this error code.
    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// True when the service itself failed or does not implement the call (HTTP 5xx, or the
    /// code `NotImplemented`), as opposed to refusing the request.
    pub fn is_server_failure(&self) -> bool {
        self.http_status.is_some_and(|s| s >= 500)
            || self.has_code("NotImplemented")
            || self.has_code("InternalServerError")
    }

    /// True when the service's message contains `text`.
    pub fn message_contains(&self, text: &str) -> bool {
        self.service_message
            .as_deref()
            .is_some_and(|m| m.contains(text))
    }

    /// Explains an SDK error of the call `what` (e.g. "DescribeStacks clawster-bot-demo").
    pub fn from_sdk<E>(what: &str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_string);
        let service_message = err.message().map(str::to_string);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let chain = DisplayErrorContext(&err).to_string();
        let kind = classify(code.as_deref(), status, &chain, &err);
        let message = advice(
            what,
            kind,
            code.as_deref(),
            service_message.as_deref(),
            &innermost(&err),
        );
        Self {
            kind,
            code,
            service_message,
            http_status: status,
            message,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for AwsError {}

/// Error codes that mean "slow down" across the services ctl calls.
const THROTTLING_CODES: [&str; 7] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
];

/// True for a throttling error code.
pub fn is_throttling(code: Option<&str>) -> bool {
    code.is_some_and(|c| THROTTLING_CODES.contains(&c))
}

fn classify<E, R>(
    code: Option<&str>,
    status: Option<u16>,
    chain: &str,
    err: &SdkError<E, R>,
) -> ErrorKind {
    match code {
        Some(
            "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "SignatureDoesNotMatch"
            | "InvalidSignatureException"
            | "AuthFailure"
            | "MissingAuthenticationToken"
            | "IncompleteSignature",
        ) => return ErrorKind::Credentials,
        Some(
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnauthorizedAccess"
            | "AuthorizationError",
        ) => return ErrorKind::Denied,
        Some(c) if is_throttling(Some(c)) => return ErrorKind::Throttled,
        Some(
            "ResourceNotFoundException"
            | "NoSuchKey"
            | "NoSuchBucket"
            | "NotFound"
            | "ServiceNotFoundException"
            | "ClusterNotFoundException"
            | "TargetGroupNotFound",
        ) => return ErrorKind::NotFound,
        _ => {}
    }
    if status == Some(429) {
        return ErrorKind::Throttled;
    }
    let lower = chain.to_ascii_lowercase();
    if lower.contains("credentials") || lower.contains("identity") && lower.contains("resolv") {
        return ErrorKind::Credentials;
    }
    if matches!(
        err,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
    ) {
        return ErrorKind::Network;
    }
    if code.is_some() {
        return ErrorKind::Service;
    }
    ErrorKind::Network
}

fn advice(
    what: &str,
    kind: ErrorKind,
    code: Option<&str>,
    message: Option<&str>,
    chain: &str,
) -> String {
    let said = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => String::new(),
    };
    match kind {
        ErrorKind::Credentials if code.is_some() => format!(
            "{what}: AWS rejected the credentials ({said}); they may have expired: refresh them \
             (for example `aws sso login`, or new keys) or choose another profile with --profile"
        ),
        ErrorKind::Credentials => format!(
            "{what}: no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or \
             choose a configured profile with --profile or AWS_PROFILE (`aws configure list` shows what is set up)"
        ),
        ErrorKind::Denied => format!(
            "{what}: permission denied ({said}): the identity behind these credentials needs this \
             permission; use a profile with CloudFormation, EC2, ECR, ECS, ELB, S3, Secrets Manager and IAM \
             rights, or ask your account administrator"
        ),
        ErrorKind::Throttled => format!(
            "{what}: AWS kept throttling the requests ({said}) even after retries with backoff; wait a \
             minute and run the command again"
        ),
        ErrorKind::Network => format!(
            "{what}: cannot reach AWS ({}): check the network, a proxy, or AWS_ENDPOINT_URL",
            last_cause(chain)
        ),
        ErrorKind::NotFound | ErrorKind::Usage | ErrorKind::Service => {
            if said.is_empty() {
                format!("{what}: {}", last_cause(chain))
            } else {
                format!("{what}: {said}")
            }
        }
    }
}

/// The innermost cause of an error, by its `source()` chain.
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The last `: `-separated part of a message.
fn last_cause(chain: &str) -> String {
    let trimmed = chain.trim();
    let tail = trimmed.rsplit(": ").next().unwrap_or(trimmed);
    let tail = tail.trim();
    if tail.is_empty() {
        trimmed.to_string()
    } else {
        tail.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::error::ErrorMetadata;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;

    fn service(code: &str, msg: &str, status: u16) -> AwsError {
        let e =
            DescribeStacksError::generic(ErrorMetadata::builder().code(code).message(msg).build());
        let body = aws_sdk_s3::primitives::ByteStream::from_static(b"").into_inner();
        let raw = HttpResponse::new(status.try_into().expect("status"), body);
        AwsError::from_sdk("DescribeStacks x", SdkError::service_error(e, raw))
    }

    #[test]
    fn expired_token_says_refresh() {
        let e = service(
            "ExpiredToken",
            "The security token included in the request is expired",
            403,
        );
        assert_eq!(e.kind, ErrorKind::Credentials);
        assert!(e.message.contains("expired"), "{}", e.message);
        assert!(e.message.contains("--profile"), "{}", e.message);
    }

    #[test]
    fn access_denied_names_the_call() {
        let e = service(
            "AccessDenied",
            "User: arn:aws:iam::1:user/x is not authorized",
            403,
        );
        assert_eq!(e.kind, ErrorKind::Denied);
        assert!(
            e.message.starts_with("DescribeStacks x: permission denied"),
            "{}",
            e.message
        );
    }

    #[test]
    fn throttling_is_recognised() {
        let e = service("Throttling", "Rate exceeded", 400);
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert!(is_throttling(Some("RequestLimitExceeded")));
        assert!(!is_throttling(Some("ValidationError")));
        assert!(!is_throttling(None));
    }

    #[test]
    fn other_service_errors_keep_code_and_message() {
        let e = service("ValidationError", "Stack with id x does not exist", 400);
        assert_eq!(e.kind, ErrorKind::Service);
        assert!(!e.is_server_failure());
        assert!(service("NotImplemented", "x", 500).is_server_failure());
        assert!(e.has_code("ValidationError"));
        assert!(e.message_contains("does not exist"));
        assert_eq!(
            e.message,
            "DescribeStacks x: ValidationError: Stack with id x does not exist"
        );
    }

    #[test]
    fn last_cause_takes_the_innermost() {
        assert_eq!(
            last_cause("dispatch failure: io error: connection refused"),
            "connection refused"
        );
        assert_eq!(last_cause("plain"), "plain");
    }
}
