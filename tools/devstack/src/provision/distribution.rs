//! A CloudFront distribution (moto records it; nothing serves it).

use super::*;

/// A CloudFront distribution.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let (id, domain) =
        create_distribution(&c.clients.cloudfront, c.target, c.id, c.properties).await?;
    Ok(Created::new(id.clone(), true)
        .with("Id", id)
        .with("DomainName", domain))
}

/// Only what moto needs to serve invalidations and origin look-ups: origins and the
/// default cache behaviour. Found again by its comment, so provisioning is idempotent.
pub(super) async fn create_distribution(
    cloudfront: &aws_sdk_cloudfront::Client,
    target: &Target,
    logical_id: &str,
    properties: &Value,
) -> Result<(String, String)> {
    use aws_sdk_cloudfront::types::*;
    let config = properties
        .get("DistributionConfig")
        .cloned()
        .unwrap_or(json!({}));
    let comment = format!("{}:{}", target.stack, logical_id);
    let listed = cloudfront.list_distributions().send().await?;
    if let Some(existing) = listed
        .distribution_list()
        .map(|l| l.items())
        .unwrap_or_default()
        .iter()
        .find(|d| d.comment() == comment)
    {
        return Ok((existing.id().to_owned(), existing.domain_name().to_owned()));
    }
    let mut origins = Vec::new();
    for origin in config
        .get("Origins")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        origins.push(
            Origin::builder()
                .id(text(&origin, "Id").unwrap_or_default())
                .domain_name(text(&origin, "DomainName").unwrap_or_default())
                .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
                .build()?,
        );
    }
    let target_origin = config
        .pointer("/DefaultCacheBehavior/TargetOriginId")
        .map(scalar_text)
        .unwrap_or_default();
    let distribution = DistributionConfig::builder()
        .caller_reference(&comment)
        .comment(&comment)
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(origins.len() as i32)
                .set_items(Some(origins))
                .build()?,
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id(target_origin)
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id(
                    config
                        .pointer("/DefaultCacheBehavior/CachePolicyId")
                        .map(scalar_text)
                        .unwrap_or_default(),
                )
                .trusted_signers(
                    TrustedSigners::builder()
                        .enabled(false)
                        .quantity(0)
                        .build()?,
                )
                .build()?,
        )
        .build()?;
    let created = cloudfront
        .create_distribution()
        .distribution_config(distribution)
        .send()
        .await?;
    let created = created
        .distribution()
        .ok_or_else(|| anyhow!("no distribution in the answer"))?;
    Ok((created.id().to_owned(), created.domain_name().to_owned()))
}
