//! CloudFront cache invalidation for website buckets: which changes need invalidating,
//! which distributions serve a bucket, and one idempotent invalidation per distribution.

pub mod distributions;
pub mod invalidation;
pub mod paths;
pub mod policy;
mod settings;

pub use distributions::Distributions;
pub use invalidation::{plan, Invalidation, Invalidator};
pub use policy::{ChangeFilter, Policy};
pub use settings::Settings;

use landfall_runtime::{Classify, Disposition};

#[derive(Debug, thiserror::Error)]
pub enum CdnError {
    #[error("bucket {bucket:?} is not served by any configured CloudFront distribution")]
    UnknownBucket { bucket: String },
    #[error("listing CloudFront distributions failed: {message}")]
    ListDistributions {
        disposition: Disposition,
        message: String,
    },
    #[error("checking earlier versions of s3://{bucket}/{key} failed: {message}")]
    Versions {
        bucket: String,
        key: String,
        disposition: Disposition,
        message: String,
    },
    #[error("creating the invalidation for distribution {distribution} failed: {message}")]
    Invalidation {
        distribution: String,
        disposition: Disposition,
        message: String,
    },
}

impl Classify for CdnError {
    fn disposition(&self) -> Disposition {
        match self {
            CdnError::UnknownBucket { .. } => Disposition::Permanent,
            CdnError::ListDistributions { disposition, .. }
            | CdnError::Versions { disposition, .. }
            | CdnError::Invalidation { disposition, .. } => *disposition,
        }
    }
}
