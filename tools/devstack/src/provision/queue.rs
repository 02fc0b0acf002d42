//! An SQS queue, with its redrive policy.

use super::*;

/// An SQS queue.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let name = c.name("QueueName");
    let url = create_queue(&c.clients.sqs, &name, c.properties).await?;
    Ok(Created::new(url.clone(), true)
        .with("Arn", c.arn("sqs", &name))
        .with("QueueName", name)
        .with("QueueUrl", url))
}

pub(super) async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    properties: &Value,
) -> Result<String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let mut attributes = std::collections::HashMap::new();
    for (key, attribute) in [
        ("VisibilityTimeout", A::VisibilityTimeout),
        ("MessageRetentionPeriod", A::MessageRetentionPeriod),
        ("DelaySeconds", A::DelaySeconds),
        (
            "ReceiveMessageWaitTimeSeconds",
            A::ReceiveMessageWaitTimeSeconds,
        ),
        ("MaximumMessageSize", A::MaximumMessageSize),
        ("FifoQueue", A::FifoQueue),
        ("ContentBasedDeduplication", A::ContentBasedDeduplication),
    ] {
        if let Some(value) = properties.get(key) {
            attributes.insert(attribute, scalar_text(value));
        }
    }
    if let Some(policy) = properties.get("RedrivePolicy") {
        let policy = match policy {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        attributes.insert(A::RedrivePolicy, policy);
    }
    match sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await
    {
        Ok(out) => Ok(out.queue_url().unwrap_or_default().to_owned()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_queue_name_exists()) =>
        {
            // Exists with other attributes (template changed): update in place.
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await?
                .queue_url()
                .unwrap_or_default()
                .to_owned();
            attributes.remove(&A::FifoQueue);
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(attributes))
                .send()
                .await?;
            Ok(url)
        }
        Err(err) => Err(err.into()),
    }
}
