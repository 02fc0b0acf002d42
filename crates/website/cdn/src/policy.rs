//! Which object changes need an invalidation.

use crate::CdnError;
use landfall_aws::AwsError;
use landfall_s3_events::{ChangeKind, ObjectChange, Version};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Every created or removed object is invalidated.
    AllChanges,
    /// A first upload of a new key cannot be cached yet, so only overwrites and deletes
    /// are invalidated. Telling the two apart needs bucket versioning; on an unversioned
    /// bucket every change is invalidated (stale content is worse than a spare path).
    OverwritesAndDeletes,
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all-changes" => Ok(Policy::AllChanges),
            "overwrites-and-deletes" => Ok(Policy::OverwritesAndDeletes),
            other => Err(format!(
                "{other:?} is neither all-changes nor overwrites-and-deletes"
            )),
        }
    }
}

/// Applies the policy, asking S3 about earlier versions where it has to.
pub struct ChangeFilter {
    policy: Policy,
    s3: aws_sdk_s3::Client,
}

impl ChangeFilter {
    pub fn new(policy: Policy, s3: aws_sdk_s3::Client) -> Self {
        ChangeFilter { policy, s3 }
    }

    pub async fn needs_invalidation(&self, change: &ObjectChange) -> Result<bool, CdnError> {
        if self.policy == Policy::AllChanges || change.kind == ChangeKind::Removed {
            return Ok(true);
        }
        self.is_overwrite_or_unknowable(change).await
    }

    /// One ListObjectVersions call answers both questions: versions are listed key by key,
    /// newest first, so the first two entries under the key tell whether it had a version
    /// (or delete marker) before; and an unversioned bucket lists its objects with no real
    /// version id, where an overwrite cannot be told from a first upload.
    async fn is_overwrite_or_unknowable(&self, change: &ObjectChange) -> Result<bool, CdnError> {
        let listing = self
            .s3
            .list_object_versions()
            .bucket(&change.bucket)
            .prefix(&change.key)
            .max_keys(2)
            .send()
            .await
            .map_err(|err| versions_error(&change.bucket, &change.key, err))?;
        let key = Some(change.key.as_str());
        let versions: Vec<_> = listing
            .versions()
            .iter()
            .filter(|v| v.key() == key)
            .collect();
        let markers = listing
            .delete_markers()
            .iter()
            .filter(|m| m.key() == key)
            .count();
        let unversioned = versions
            .iter()
            .any(|v| Version::from_s3(v.version_id(), v.e_tag()).id().is_none());
        if unversioned {
            tracing::warn!(
                bucket = change.bucket,
                "bucket is not versioned: cannot tell overwrites from first uploads, invalidating every change"
            );
            return Ok(true);
        }
        Ok(versions.len() + markers > 1)
    }
}

fn versions_error<E>(
    bucket: &str,
    key: &str,
    err: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> CdnError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    CdnError::Versions {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        source: AwsError::new("S3", "ListObjectVersions", err),
    }
}
