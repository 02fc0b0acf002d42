//! CloudFront cache invalidation for website buckets: which changes need invalidating,
//! which distributions serve a bucket, and one idempotent invalidation per distribution.

pub mod distributions;
pub mod invalidation;
pub mod paths;
pub mod policy;
mod settings;

pub use distributions::Distributions;
pub use invalidation::{plan, Invalidation, Invalidator, LIMITED_RETRY_AFTER};
pub use policy::{ChangeFilter, Policy};
pub use settings::Settings;

use landfall_aws::AwsError;
use landfall_failure::{Classify, Disposition};

#[derive(Debug, thiserror::Error)]
pub enum CdnError {
    #[error("bucket {bucket:?} is not served by any configured CloudFront distribution")]
    UnknownBucket { bucket: String },
    #[error("listing CloudFront distributions failed")]
    ListDistributions(#[source] AwsError),
    #[error("checking earlier versions of s3://{bucket}/{key} failed")]
    Versions {
        bucket: String,
        key: String,
        #[source]
        source: AwsError,
    },
    #[error("creating the invalidation for distribution {distribution} failed")]
    Invalidation {
        distribution: String,
        #[source]
        source: AwsError,
    },
    /// CloudFront's in-progress limit: it clears as earlier invalidations complete.
    #[error("distribution {distribution} has too many invalidations in progress")]
    Limited {
        distribution: String,
        #[source]
        source: AwsError,
    },
    #[error("the invalidation for distribution {distribution} could not be built: {message}")]
    Malformed {
        distribution: String,
        message: String,
    },
}

impl Classify for CdnError {
    fn disposition(&self) -> Disposition {
        match self {
            CdnError::UnknownBucket { .. } | CdnError::Malformed { .. } => Disposition::Permanent,
            CdnError::Limited { .. } => Disposition::Retryable,
            CdnError::ListDistributions(source)
            | CdnError::Versions { source, .. }
            | CdnError::Invalidation { source, .. } => source.disposition(),
        }
    }
}

impl CdnError {
    /// CloudFront refused the invalidation for its in-progress limit; it clears as earlier
    /// invalidations complete.
    pub fn limited(&self) -> bool {
        matches!(self, CdnError::Limited { .. })
    }
}
