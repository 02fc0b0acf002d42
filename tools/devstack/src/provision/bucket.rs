//! An S3 bucket: versioning, notifications, lifecycle and policy as declared.

use super::*;

/// An S3 bucket.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let name = c.name("BucketName");
    let region = &c.target.region;
    create_bucket(&c.clients.s3, region, &name, c.properties).await?;
    Ok(Created::new(name.clone(), true)
        .with("Arn", format!("arn:aws:s3:::{name}"))
        .with("DomainName", format!("{name}.s3.amazonaws.com"))
        .with(
            "RegionalDomainName",
            format!("{name}.s3.{region}.amazonaws.com"),
        )
        .with(
            "WebsiteURL",
            format!("http://{name}.s3-website.{region}.amazonaws.com"),
        ))
}

pub(super) async fn create_bucket(
    s3: &aws_sdk_s3::Client,
    region: &str,
    name: &str,
    properties: &Value,
) -> Result<()> {
    use aws_sdk_s3::types::*;
    let mut request = s3.create_bucket().bucket(name);
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    created_or_exists(request.send().await, |e| {
        e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
    })?;
    if properties
        .pointer("/VersioningConfiguration/Status")
        .and_then(Value::as_str)
        == Some("Enabled")
    {
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
    }
    let queues = properties
        .pointer("/NotificationConfiguration/QueueConfigurations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !queues.is_empty() {
        let mut configuration = NotificationConfiguration::builder();
        for queue in queues {
            let mut rules = Vec::new();
            for rule in queue
                .pointer("/Filter/S3Key/Rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                rules.push(
                    FilterRule::builder()
                        .name(FilterRuleName::from(
                            text(&rule, "Name")
                                .unwrap_or_default()
                                .to_ascii_lowercase()
                                .as_str(),
                        ))
                        .value(text(&rule, "Value").unwrap_or_default())
                        .build(),
                );
            }
            let mut builder = QueueConfiguration::builder()
                .queue_arn(
                    text(&queue, "Queue")
                        .ok_or_else(|| anyhow!("queue configuration without Queue"))?,
                )
                .events(Event::from(
                    text(&queue, "Event").unwrap_or_default().as_str(),
                ));
            if !rules.is_empty() {
                builder = builder.filter(
                    NotificationConfigurationFilter::builder()
                        .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                        .build(),
                );
            }
            configuration = configuration.queue_configurations(builder.build()?);
        }
        s3.put_bucket_notification_configuration()
            .bucket(name)
            .notification_configuration(configuration.build())
            .send()
            .await?;
    }
    Ok(())
}
