//! AWS errors, classified: what the controller does next depends on whether
//! a call was throttled, found nothing, was refused, or failed in transit.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure an AWS call had: the plan's
/// [`ErrorClass`](ecs_reconciler_plan::ErrorClass), so the scheduler can
/// pace the retry by it without knowing AWS.
pub use ecs_reconciler_plan::ErrorClass as ErrorKind;

/// One failed AWS call, in one sentence.
#[derive(Debug, Clone, thiserror::Error)]
pub struct AwsError {
    /// `ecs`, `ec2` or `elbv2`.
    pub service: &'static str,
    /// The API operation, e.g. `DescribeServices`.
    pub operation: &'static str,
    /// Its class.
    pub kind: ErrorKind,
    /// AWS's error code, when the service answered with one.
    pub code: Option<String>,
    /// AWS's message, or what went wrong on the way.
    pub message: String,
    /// The request id, for AWS support.
    pub request_id: Option<String>,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Throttled => "was throttled",
            ErrorKind::NotFound => "found nothing",
            ErrorKind::Denied => "was denied",
            ErrorKind::Transient => "failed",
            ErrorKind::Invalid => "was rejected",
        };
        write!(f, "{} {} {what}", self.service, self.operation)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl AwsError {
    /// The failed read, for a snapshot: unknown, with this error's class.
    pub fn unread(&self) -> ecs_reconciler_plan::Unread {
        ecs_reconciler_plan::Unread::new(self.kind, self.to_string())
    }

    /// Classifies an SDK error from `service`'s `operation`.
    pub fn from_sdk<E, R>(
        service: &'static str,
        operation: &'static str,
        err: &SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        let (kind, code, message, request_id) = match err {
            SdkError::ServiceError(service_err) => {
                let meta = service_err.err().meta();
                let code = meta.code().map(str::to_string);
                let kind = classify_code(code.as_deref());
                let request_id = meta
                    .extra("aws_request_id")
                    .or_else(|| meta.extra("request_id"))
                    .map(str::to_string);
                (
                    kind,
                    code,
                    meta.message().unwrap_or_default().to_string(),
                    request_id,
                )
            }
            SdkError::TimeoutError(_) => {
                (ErrorKind::Transient, None, "timed out".to_string(), None)
            }
            SdkError::DispatchFailure(failure) => {
                let message = if failure.is_timeout() {
                    "timed out connecting".to_string()
                } else if failure.is_io() {
                    "could not connect (is the endpoint reachable?)".to_string()
                } else {
                    "could not send the request".to_string()
                };
                (ErrorKind::Transient, None, message, None)
            }
            SdkError::ResponseError(_) => (
                ErrorKind::Transient,
                None,
                "the response could not be read".to_string(),
                None,
            ),
            SdkError::ConstructionFailure(_) => (
                ErrorKind::Invalid,
                None,
                "the request could not be built (is a region set?)".to_string(),
                None,
            ),
            _ => (ErrorKind::Transient, None, err.to_string(), None),
        };
        AwsError {
            service,
            operation,
            kind,
            code,
            message,
            request_id,
        }
    }

    /// An answer that lacks what was asked for (a named service that does
    /// not exist), as a not-found error of that call.
    pub fn not_found(service: &'static str, operation: &'static str, message: String) -> Self {
        AwsError {
            service,
            operation,
            kind: ErrorKind::NotFound,
            code: None,
            message,
            request_id: None,
        }
    }

    /// Whether AWS answered with error code `code`.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// Maps AWS error codes of ECS, EC2 and ELBv2 to kinds.
pub fn classify_code(code: Option<&str>) -> ErrorKind {
    let Some(code) = code else {
        return ErrorKind::Transient;
    };
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "SlowDown" => ErrorKind::Throttled,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "UnrecognizedClientException"
        | "SignatureDoesNotMatch" => ErrorKind::Denied,
        "InternalFailure"
        | "InternalError"
        | "ServiceUnavailable"
        | "ServerException"
        | "Unavailable"
        | "InternalServerError" => ErrorKind::Transient,
        // A group full to its rule quota: the pass's own revokes (held by
        // the destructive cap until a second observation agrees) make
        // room, so the next pass is worth having soon, not after the long
        // wait of an invalid request.
        "RulesPerSecurityGroupLimitExceeded" => ErrorKind::Transient,
        // SQS: `AWS.SimpleQueueService.NonExistentQueue` (query protocol),
        // `QueueDoesNotExist` (JSON protocol).
        c if c.contains("NonExistentQueue") || c == "QueueDoesNotExist" => ErrorKind::NotFound,
        c if c.contains("NotFound") || c.ends_with(".Malformed") && c.contains("ID") => {
            ErrorKind::NotFound
        }
        _ => ErrorKind::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_the_three_services_are_classified() {
        assert_eq!(
            classify_code(Some("ThrottlingException")),
            ErrorKind::Throttled
        );
        assert_eq!(
            classify_code(Some("RequestLimitExceeded")),
            ErrorKind::Throttled
        );
        assert_eq!(classify_code(Some("Throttling")), ErrorKind::Throttled);
        assert_eq!(
            classify_code(Some("RulesPerSecurityGroupLimitExceeded")),
            ErrorKind::Transient
        );
        assert_eq!(
            classify_code(Some("InvalidPermission.NotFound")),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify_code(Some("TargetGroupNotFound")),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify_code(Some("UnauthorizedOperation")),
            ErrorKind::Denied
        );
        assert_eq!(
            classify_code(Some("InvalidPermission.Duplicate")),
            ErrorKind::Invalid
        );
        assert_eq!(classify_code(None), ErrorKind::Transient);
    }

    #[test]
    fn errors_read_as_one_sentence() {
        let err = AwsError {
            service: "ec2",
            operation: "DescribeInstances",
            kind: ErrorKind::Throttled,
            code: Some("RequestLimitExceeded".into()),
            message: "Request limit exceeded.".into(),
            request_id: None,
        };
        assert_eq!(
            err.to_string(),
            "ec2 DescribeInstances was throttled (RequestLimitExceeded): Request limit exceeded."
        );
    }
}
