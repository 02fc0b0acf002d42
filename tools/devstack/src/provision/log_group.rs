//! A CloudWatch Logs group, with its retention.

use super::*;

/// A log group.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let Creation {
        clients,
        target,
        properties,
        id,
        ..
    } = c;
    let mut attributes: Vec<(&'static str, String)> = Vec::new();
    let name = text(properties, "LogGroupName").unwrap_or_else(|| default_name(target, id));
    let retention = properties
        .get("RetentionInDays")
        .and_then(|d| d.as_i64().or_else(|| scalar_text(d).parse().ok()));
    crate::logs::create_group(&clients.moto, &target.region, &name, retention).await?;
    attributes.push((
        "Arn",
        format!(
            "arn:aws:logs:{}:{}:log-group:{name}:*",
            target.region, target.account
        ),
    ));
    Ok(Created {
        reference: name,
        emulated: false,
        attributes,
    })
}
