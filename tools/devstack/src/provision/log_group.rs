//! A CloudWatch Logs group, with its retention.

use super::*;

/// A log group.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let name = c.name("LogGroupName");
    let retention = c
        .properties
        .get("RetentionInDays")
        .and_then(|d| d.as_i64().or_else(|| scalar_text(d).parse().ok()));
    crate::logs::create_group(&c.clients.moto, &c.target.region, &name, retention).await?;
    let arn = c.arn("logs", &format!("log-group:{name}:*"));
    Ok(Created::new(name, false).with("Arn", arn))
}
