//! One idempotent invalidation per distribution and batch.

use crate::paths::{collapse, invalidation_path};
use crate::CdnError;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
use aws_smithy_types::DateTime;
use landfall_aws::{AwsError, SdkResultExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// What to ask CloudFront for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    pub distribution: String,
    pub paths: Vec<String>,
    /// Derived from the messages and paths, so a redelivered batch asks for the same
    /// invalidation again and CloudFront answers with the one it already has.
    pub caller_reference: String,
}

/// Paths for `keys`, collapsed to wildcards above `threshold`, with a caller reference
/// that depends only on the distribution, the SQS message ids and the resulting paths.
pub fn plan<'a>(
    distribution: &str,
    keys: impl IntoIterator<Item = &'a str>,
    message_ids: impl IntoIterator<Item = &'a str>,
    threshold: usize,
) -> Invalidation {
    let paths: BTreeSet<String> = keys.into_iter().map(invalidation_path).collect();
    let paths = collapse(paths, threshold);
    let messages: BTreeSet<&str> = message_ids.into_iter().collect();
    let mut digest = Sha256::new();
    digest.update(distribution.as_bytes());
    for id in &messages {
        digest.update(b"\0m");
        digest.update(id.as_bytes());
    }
    for path in &paths {
        digest.update(b"\0p");
        digest.update(path.as_bytes());
    }
    let hash = hex::encode(digest.finalize());
    Invalidation {
        distribution: distribution.to_owned(),
        paths,
        caller_reference: format!("landfall-{}", &hash[..40]),
    }
}

/// The whole distribution: one wildcard path.
pub const WHOLE_SITE: &str = "/*";

impl Invalidation {
    /// The same batch as one `/*` invalidation, with a caller reference of its own (so a
    /// redelivery that collapses again asks for the same one).
    pub fn whole_site(&self) -> Invalidation {
        Invalidation {
            distribution: self.distribution.clone(),
            paths: vec![WHOLE_SITE.to_owned()],
            caller_reference: format!("{}-site", self.caller_reference),
        }
    }
}

/// How long a batch waits when even a whole-site invalidation is refused for the limit:
/// CloudFront completes an invalidation in minutes.
pub const LIMITED_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// The invalidation CloudFront has for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub id: String,
    /// True when an earlier delivery of the same batch had already created it.
    pub already_existed: bool,
    /// True when the batch was asked for as `/*`, CloudFront's limit being reached.
    pub whole_site: bool,
}

pub struct Invalidator {
    cloudfront: aws_sdk_cloudfront::Client,
}

/// How many recent invalidations a redelivery inspects for its caller reference.
const REDELIVERY_LOOKBACK: usize = 25;

impl Invalidator {
    pub fn new(cloudfront: aws_sdk_cloudfront::Client) -> Self {
        Invalidator { cloudfront }
    }

    /// Creates the invalidation. For a redelivered batch (`redelivered_since` = when its
    /// oldest message was first sent) an invalidation with the same caller reference is
    /// looked for first: CloudFront deduplicates by caller reference itself, but the check
    /// keeps a retry from spending another invalidation wherever that guarantee is missing
    /// (emulators), and costs nothing on first deliveries.
    ///
    /// CloudFront holds at most 3,000 file paths (and 15 wildcard paths) in progress per
    /// distribution ("Concurrent invalidation request maximum"); a deploy past that is a
    /// change of the whole site, so a batch refused for the limit asks for `/*` instead.
    pub async fn submit(
        &self,
        invalidation: &Invalidation,
        redelivered_since: Option<DateTime>,
    ) -> Result<Submitted, CdnError> {
        if let Some(since) = redelivered_since {
            for asked in [invalidation.clone(), invalidation.whole_site()] {
                if let Some(id) = self.find_existing(&asked, since).await? {
                    return Ok(Submitted {
                        id,
                        already_existed: true,
                        whole_site: asked.paths != invalidation.paths,
                    });
                }
            }
        }
        match self.create(invalidation).await {
            Err(err) if err.limited() && invalidation.paths != [WHOLE_SITE] => {
                tracing::warn!(
                    distribution = invalidation.distribution,
                    paths = invalidation.paths.len(),
                    "CloudFront's in-progress limit is reached: invalidating the whole site"
                );
                let mut submitted = self.create(&invalidation.whole_site()).await?;
                submitted.whole_site = true;
                Ok(submitted)
            }
            other => other,
        }
    }

    async fn create(&self, invalidation: &Invalidation) -> Result<Submitted, CdnError> {
        let paths = Paths::builder()
            .quantity(invalidation.paths.len() as i32)
            .set_items(Some(invalidation.paths.clone()))
            .build()
            .map_err(|err| malformed(invalidation, &err))?;
        let batch = InvalidationBatch::builder()
            .paths(paths)
            .caller_reference(&invalidation.caller_reference)
            .build()
            .map_err(|err| malformed(invalidation, &err))?;
        let created = self
            .cloudfront
            .create_invalidation()
            .distribution_id(&invalidation.distribution)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|err| {
                // CloudFront's limit on concurrent invalidations clears as they complete.
                let limited = err
                    .as_service_error()
                    .is_some_and(|e| e.is_too_many_invalidations_in_progress());
                let source = AwsError::new("CloudFront", "CreateInvalidation", err);
                if limited {
                    CdnError::Limited {
                        distribution: invalidation.distribution.clone(),
                        source,
                    }
                } else {
                    failure(invalidation, source)
                }
            })?;
        let id = created
            .invalidation()
            .map(|i| i.id().to_owned())
            .unwrap_or_default();
        Ok(Submitted {
            id,
            already_existed: false,
            whole_site: false,
        })
    }

    async fn find_existing(
        &self,
        invalidation: &Invalidation,
        since: DateTime,
    ) -> Result<Option<String>, CdnError> {
        let listed = self
            .cloudfront
            .list_invalidations()
            .distribution_id(&invalidation.distribution)
            .max_items(100)
            .send()
            .await
            .or_aws("CloudFront", "ListInvalidations")
            .map_err(|source| failure(invalidation, source))?;
        let recent: Vec<String> = listed
            .invalidation_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .filter(|summary| summary.create_time().secs() >= since.secs() - 60)
            .map(|summary| summary.id().to_owned())
            .take(REDELIVERY_LOOKBACK)
            .collect();
        for id in recent {
            let found = self
                .cloudfront
                .get_invalidation()
                .distribution_id(&invalidation.distribution)
                .id(&id)
                .send()
                .await
                .or_aws("CloudFront", "GetInvalidation")
                .map_err(|source| failure(invalidation, source))?;
            let reference = found
                .invalidation()
                .and_then(|i| i.invalidation_batch())
                .map(|b| b.caller_reference());
            if reference == Some(invalidation.caller_reference.as_str()) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

fn failure(invalidation: &Invalidation, source: AwsError) -> CdnError {
    CdnError::Invalidation {
        distribution: invalidation.distribution.clone(),
        source,
    }
}

fn malformed(invalidation: &Invalidation, err: &dyn std::error::Error) -> CdnError {
    CdnError::Malformed {
        distribution: invalidation.distribution.clone(),
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests;
