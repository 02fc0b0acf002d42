//! Which object changes need an invalidation.

use crate::CdnError;
use aws_sdk_s3::types::BucketVersioningStatus;
use landfall_s3_events::{ChangeKind, ObjectChange};
use std::collections::HashMap;
use std::str::FromStr;
use tokio::sync::Mutex;

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
    versioned: Mutex<HashMap<String, bool>>,
}

impl ChangeFilter {
    pub fn new(policy: Policy, s3: aws_sdk_s3::Client) -> Self {
        ChangeFilter {
            policy,
            s3,
            versioned: Mutex::new(HashMap::new()),
        }
    }

    pub async fn needs_invalidation(&self, change: &ObjectChange) -> Result<bool, CdnError> {
        if self.policy == Policy::AllChanges || change.kind == ChangeKind::Removed {
            return Ok(true);
        }
        if !self.is_versioned(&change.bucket, &change.key).await? {
            return Ok(true);
        }
        self.had_earlier_version(change).await
    }

    async fn is_versioned(&self, bucket: &str, key: &str) -> Result<bool, CdnError> {
        if let Some(known) = self.versioned.lock().await.get(bucket) {
            return Ok(*known);
        }
        let status = self
            .s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|err| versions_error(bucket, key, &err))?;
        let versioned = status.status() == Some(&BucketVersioningStatus::Enabled);
        if !versioned {
            tracing::warn!(bucket, "bucket is not versioned: cannot tell overwrites from first uploads, invalidating every change");
        }
        self.versioned
            .lock()
            .await
            .insert(bucket.to_owned(), versioned);
        Ok(versioned)
    }

    /// Versions are listed key by key, newest first, so the first two entries under the
    /// key as prefix tell whether this key had a version (or delete marker) before.
    async fn had_earlier_version(&self, change: &ObjectChange) -> Result<bool, CdnError> {
        let listing = self
            .s3
            .list_object_versions()
            .bucket(&change.bucket)
            .prefix(&change.key)
            .max_keys(2)
            .send()
            .await
            .map_err(|err| versions_error(&change.bucket, &change.key, &err))?;
        let same_key = listing
            .versions()
            .iter()
            .filter(|v| v.key() == Some(change.key.as_str()))
            .count()
            + listing
                .delete_markers()
                .iter()
                .filter(|m| m.key() == Some(change.key.as_str()))
                .count();
        Ok(same_key > 1)
    }
}

fn versions_error<E>(
    bucket: &str,
    key: &str,
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> CdnError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    let (disposition, message) = landfall_aws::describe(err);
    CdnError::Versions {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        disposition,
        message,
    }
}
