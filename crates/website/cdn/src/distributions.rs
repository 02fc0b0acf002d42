//! Which CloudFront distributions serve a bucket.

use crate::CdnError;
use landfall_aws::AwsError;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// From configuration: bucket → distribution ids. Any other bucket is unknown.
    Fixed(HashMap<String, Vec<String>>),
    /// Every distribution with an origin whose domain is the bucket's S3 domain.
    Discover,
}

/// Discovered mappings are reused for this long, so a new distribution is found within
/// minutes without listing all distributions on every invocation.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

/// Bucket name → ids of the distributions that use it as an origin.
type BucketDistributions = HashMap<String, Vec<String>>;

pub struct Distributions {
    source: Source,
    cloudfront: aws_sdk_cloudfront::Client,
    discovered: Mutex<Option<(Instant, BucketDistributions)>>,
}

impl Distributions {
    pub fn new(source: Source, cloudfront: aws_sdk_cloudfront::Client) -> Self {
        Distributions {
            source,
            cloudfront,
            discovered: Mutex::new(None),
        }
    }

    pub async fn for_bucket(&self, bucket: &str) -> Result<Vec<String>, CdnError> {
        let ids = match &self.source {
            Source::Fixed(mapping) => mapping.get(bucket).cloned(),
            Source::Discover => self.discover().await?.get(bucket).cloned(),
        };
        ids.filter(|ids| !ids.is_empty())
            .ok_or_else(|| CdnError::UnknownBucket {
                bucket: bucket.to_owned(),
            })
    }

    async fn discover(&self) -> Result<BucketDistributions, CdnError> {
        let mut cache = self.discovered.lock().await;
        if let Some((at, mapping)) = cache.as_ref() {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(mapping.clone());
            }
        }
        let mut mapping = BucketDistributions::new();
        let mut pages = self.cloudfront.list_distributions().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| {
                CdnError::ListDistributions(AwsError::new("CloudFront", "ListDistributions", err))
            })?;
            let summaries = page
                .distribution_list()
                .map(|l| l.items())
                .unwrap_or_default();
            for summary in summaries {
                let origins = summary.origins().map(|o| o.items()).unwrap_or_default();
                for origin in origins {
                    if let Some(bucket) = bucket_of_origin(origin.domain_name()) {
                        let ids = mapping.entry(bucket).or_default();
                        if !ids.iter().any(|id| id == summary.id()) {
                            ids.push(summary.id().to_owned());
                        }
                    }
                }
            }
        }
        tracing::info!(
            buckets = mapping.len(),
            "discovered CloudFront distributions by origin"
        );
        *cache = Some((Instant::now(), mapping.clone()));
        Ok(mapping)
    }
}

/// The bucket name in an S3 origin domain: `site.s3.amazonaws.com`,
/// `site.s3.eu-west-2.amazonaws.com`, `site.s3-website-eu-west-1.amazonaws.com`,
/// `site.s3-website.eu-west-2.amazonaws.com`; `None` for any other origin.
pub fn bucket_of_origin(domain: &str) -> Option<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let rest = domain.strip_suffix(".amazonaws.com")?;
    let (bucket, service) = rest
        .rfind(".s3.")
        .or_else(|| rest.rfind(".s3-"))
        .map(|i| (&rest[..i], &rest[i + 1..]))
        .or_else(|| rest.strip_suffix(".s3").map(|b| (b, "s3")))?;
    let service_ok = service == "s3"
        || service.starts_with("s3.")
        || service.starts_with("s3-website")
        || service.starts_with("s3-");
    (service_ok && !bucket.is_empty()).then(|| bucket.to_owned())
}

#[cfg(test)]
mod tests {
    use super::bucket_of_origin;

    #[test]
    fn recognises_s3_origin_domains() {
        for domain in [
            "site.s3.amazonaws.com",
            "site.s3.eu-west-2.amazonaws.com",
            "site.s3-website-eu-west-1.amazonaws.com",
            "site.s3-website.eu-west-2.amazonaws.com",
            "SITE.s3.amazonaws.com.",
        ] {
            assert_eq!(
                bucket_of_origin(domain).as_deref(),
                Some("site"),
                "{domain}"
            );
        }
        assert_eq!(
            bucket_of_origin("my.dotted.bucket.s3.us-east-1.amazonaws.com").as_deref(),
            Some("my.dotted.bucket")
        );
    }

    #[test]
    fn ignores_other_origins() {
        for domain in [
            "example.com",
            "api.execute-api.eu-west-2.amazonaws.com",
            "s3.amazonaws.com",
            "elb.amazonaws.com",
        ] {
            assert_eq!(bucket_of_origin(domain), None, "{domain}");
        }
    }
}
