//! One error type for every failed AWS call, so the classification made where the SDK
//! answered travels with the failure to wherever it is finally handled (an SQS record's
//! fate, a task report, an email): callers wrap it as a `#[source]`, never as a string.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use landfall_failure::{error_chain, Classify, Disposition};

/// A failed call: the service and operation, whether a retry can help, the service's
/// error code, and the SDK error itself as the source. One pointer wide, so the errors
/// that wrap it stay small.
#[derive(Debug)]
pub struct AwsError(Box<Failed>);

#[derive(Debug)]
struct Failed {
    service: &'static str,
    operation: &'static str,
    disposition: Disposition,
    code: Option<String>,
    /// The SDK error's whole chain: the SDK keeps the service's words in its sources, and
    /// a log line of `%err` should not need a chain walk to show them.
    message: String,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed = &self.0;
        write!(
            f,
            "{} {}: {}",
            failed.service, failed.operation, failed.message
        )
    }
}

impl std::error::Error for AwsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.source.as_ref())
    }
}

impl AwsError {
    /// The failure of `operation` on `service`, classified from the SDK error it wraps.
    pub fn new<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|raw| raw.status().as_u16());
        let mut message = error_chain(&err);
        if let Some(hint) = permission_hint(service, operation, status) {
            message.push_str(hint);
        }
        AwsError(Box::new(Failed {
            service,
            operation,
            disposition: crate::classify::disposition_of(&err),
            code: crate::classify::error_code(&err).map(str::to_owned),
            message,
            source: Box::new(err),
        }))
    }

    /// A request this side could not build (a required field the code left unset): a bug,
    /// never the service's answer, so retrying cannot help.
    pub fn invalid_request<E>(service: &'static str, operation: &'static str, err: E) -> AwsError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        AwsError(Box::new(Failed {
            service,
            operation,
            disposition: Disposition::Permanent,
            code: None,
            message: error_chain(&err),
            source: Box::new(err),
        }))
    }

    /// The service called, e.g. `S3`.
    pub fn service(&self) -> &'static str {
        self.0.service
    }

    /// The operation called, e.g. `GetObject`.
    pub fn operation(&self) -> &'static str {
        self.0.operation
    }

    /// The service's error code (`AccessDenied`, `NoSuchKey`, …); None for network
    /// failures and timeouts.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// For the caller that knows better than the generic rules: a modeled error the
    /// service names by type rather than by code (CloudFront's concurrent-invalidation
    /// limit, which clears as invalidations complete).
    pub fn with_disposition(mut self, disposition: Disposition) -> AwsError {
        self.0.disposition = disposition;
        self
    }
}

impl Classify for AwsError {
    fn disposition(&self) -> Disposition {
        self.0.disposition
    }
}

/// S3 answers a read of a missing key with 403, not 404, when the caller may not
/// `s3:ListBucket` the bucket (S3 API reference, HeadObject and GetObject, "Permissions"):
/// the failure names the permission, so the log says what to grant.
pub const MISSING_LIST_BUCKET: &str = " (S3 answers 403 for a missing object when the role lacks \
     s3:ListBucket on the bucket: grant s3:ListBucket with an s3:prefix condition covering this \
     key, or the object may simply be gone)";

fn permission_hint(service: &str, operation: &str, status: Option<u16>) -> Option<&'static str> {
    let reads_an_object = matches!(operation, "HeadObject" | "GetObject");
    (service == "S3" && reads_an_object && status == Some(403)).then_some(MISSING_LIST_BUCKET)
}

/// `.send().await.or_aws("S3", "GetObject")?`
pub trait SdkResultExt<T> {
    /// The SDK error as an [`AwsError`] naming `service` and `operation`.
    fn or_aws(self, service: &'static str, operation: &'static str) -> Result<T, AwsError>;
}

impl<T, E> SdkResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn or_aws(self, service: &'static str, operation: &'static str) -> Result<T, AwsError> {
        self.map_err(|err| AwsError::new(service, operation, err))
    }
}

impl From<AwsError> for landfall_failure::FunctionError {
    fn from(err: AwsError) -> Self {
        landfall_failure::FunctionError::from_error(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ServiceError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    #[derive(Debug, thiserror::Error)]
    #[error("modeled: {}", .0.message().unwrap_or_default())]
    struct Modeled(ErrorMetadata);

    impl ProvideErrorMetadata for Modeled {
        fn meta(&self) -> &ErrorMetadata {
            &self.0
        }
    }

    fn service_error(status: u16, code: &str) -> SdkError<Modeled, HttpResponse> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the service's words")
            .build();
        SdkError::ServiceError(
            ServiceError::builder()
                .source(Modeled(meta))
                .raw(HttpResponse::new(
                    StatusCode::try_from(status).unwrap(),
                    SdkBody::empty(),
                ))
                .build(),
        )
    }

    #[test]
    fn keeps_service_operation_code_classification_and_source() {
        let err = AwsError::new("S3", "PutObject", service_error(403, "AccessDenied"));
        assert_eq!(err.disposition(), Disposition::Permanent);
        assert_eq!(err.code(), Some("AccessDenied"));
        let text = err.to_string();
        assert!(text.starts_with("S3 PutObject: "), "{text}");
        assert!(text.contains("the service's words"), "{text}");
        assert!(std::error::Error::source(&err).is_some());
        // The chain adds nothing the message did not already say.
        assert_eq!(error_chain(&err), text);
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        let throttled = AwsError::new(
            "SQS",
            "SendMessage",
            service_error(400, "ThrottlingException"),
        );
        assert_eq!(throttled.disposition(), Disposition::Retryable);
        let unavailable = AwsError::new("SES", "SendEmail", service_error(503, "Whatever"));
        assert_eq!(unavailable.disposition(), Disposition::Retryable);
        // CloudFront's limit on concurrent invalidations clears as they complete.
        let limited = AwsError::new(
            "CloudFront",
            "CreateInvalidation",
            service_error(400, "TooManyInvalidationsInProgress"),
        );
        assert_eq!(limited.disposition(), Disposition::Retryable);
        assert_eq!(
            limited
                .with_disposition(Disposition::Permanent)
                .disposition(),
            Disposition::Permanent
        );
    }

    #[test]
    fn a_forbidden_object_read_names_the_missing_list_bucket_permission() {
        // HeadObject's 403 has no body, so no code: the status alone tells.
        let head = AwsError::new("S3", "HeadObject", service_error(403, ""));
        assert!(head.to_string().contains("s3:ListBucket"), "{head}");
        assert_eq!(head.disposition(), Disposition::Permanent);
        let get = AwsError::new("S3", "GetObject", service_error(403, "AccessDenied"));
        assert!(get.to_string().contains("s3:ListBucket"), "{get}");
        // Any other 403 is about something else.
        let put = AwsError::new("S3", "PutObject", service_error(403, "AccessDenied"));
        assert!(!put.to_string().contains("s3:ListBucket"), "{put}");
        let missing = AwsError::new("S3", "HeadObject", service_error(404, "NotFound"));
        assert!(!missing.to_string().contains("s3:ListBucket"), "{missing}");
    }
}
