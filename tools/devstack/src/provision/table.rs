//! A DynamoDB table.

use super::*;

/// A DynamoDB table.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let name = c.name("TableName");
    create_table(&c.clients.dynamodb, &name, c.properties).await?;
    Ok(Created::new(name.clone(), true).with("Arn", c.arn("dynamodb", &format!("table/{name}"))))
}

/// A table as declared (keys and billing); the rest (PITR, SSE) means nothing locally.
pub(super) async fn create_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    name: &str,
    properties: &Value,
) -> Result<()> {
    use aws_sdk_dynamodb::types::*;
    let list = |key: &str| {
        properties
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut request = dynamodb.create_table().table_name(name);
    for attribute in list("AttributeDefinitions") {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(scalar_text(&attribute["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    scalar_text(&attribute["AttributeType"]).as_str(),
                ))
                .build()?,
        );
    }
    for key in list("KeySchema") {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(scalar_text(&key["AttributeName"]))
                .key_type(KeyType::from(scalar_text(&key["KeyType"]).as_str()))
                .build()?,
        );
    }
    let billing = text(properties, "BillingMode").unwrap_or_else(|| "PAY_PER_REQUEST".into());
    request = request.billing_mode(BillingMode::from(billing.as_str()));
    created_or_exists(request.send().await, |e| e.is_resource_in_use_exception())
}
