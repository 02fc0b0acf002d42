//! Which SDK failures are worth retrying later (after the SDK's own attempts ran out).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use landfall_failure::Disposition;

/// Error codes that mean "not now" rather than "never".
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "TooManyInvalidationsInProgress",
    // DynamoDB: too many concurrent imports or table operations; they clear as those finish.
    "LimitExceededException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// The service's error code of a failed SDK call (e.g. `ThrottlingException`), if it gave one.
pub fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(context) => context.err().code(),
        _ => None,
    }
}

/// Network trouble, timeouts, 5xx and throttling are retryable; every other service
/// answer (access denied, no such resource, validation) is permanent.
pub fn disposition_of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Disposition {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Disposition::Retryable
        }
        SdkError::ServiceError(context) => {
            let transient_code = context
                .err()
                .code()
                .is_some_and(|code| TRANSIENT_CODES.contains(&code));
            if transient_code || context.raw().status().is_server_error() {
                Disposition::Retryable
            } else {
                Disposition::Permanent
            }
        }
        // Construction failures are bugs or bad input: retrying cannot help.
        _ => Disposition::Permanent,
    }
}
