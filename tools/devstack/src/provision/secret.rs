//! A Secrets Manager secret: the caller's value, the template's, or a generated one.

use super::*;

/// A secret.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let name = c.name("Name");
    let value = c
        .target
        .secrets
        .get(c.id)
        .cloned()
        .or_else(|| text(c.properties, "SecretString"))
        .unwrap_or_else(|| generated_secret(c.properties));
    let arn = put_secret(&c.clients.secrets, &name, &value).await?;
    Ok(Created::new(arn.clone(), true).with("Id", arn))
}

/// What CloudFormation would generate from GenerateSecretString, minus the randomness
/// (a local stack needs no real secret unless the caller provides one).
pub(super) fn generated_secret(properties: &Value) -> String {
    let spec = properties
        .get("GenerateSecretString")
        .cloned()
        .unwrap_or(json!({}));
    let mut value: serde_json::Map<String, Value> = text(&spec, "SecretStringTemplate")
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let key = text(&spec, "GenerateStringKey").unwrap_or_else(|| "password".into());
    value.insert(key, Value::String("local-only".into()));
    Value::Object(value).to_string()
}

pub(super) async fn put_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
) -> Result<String> {
    match secrets
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(out) => Ok(out.arn().unwrap_or_default().to_owned()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            let out = secrets
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await?;
            Ok(out.arn().unwrap_or_default().to_owned())
        }
        Err(err) => Err(err.into()),
    }
}
