//! Glue databases and crawlers (moto records them; no crawler runs).

use super::*;

/// A Glue database.
pub(super) async fn create_database(c: Creation<'_>) -> Result<Created> {
    let name = c
        .properties
        .pointer("/DatabaseInput/Name")
        .map(scalar_text)
        .ok_or_else(|| anyhow!("DatabaseInput.Name missing"))?;
    let input = aws_sdk_glue::types::DatabaseInput::builder()
        .name(&name)
        .build()?;
    let created = c
        .clients
        .glue
        .create_database()
        .database_input(input)
        .send()
        .await;
    created_or_exists(created, |e| e.is_already_exists_exception())?;
    Ok(Created::new(name, true))
}

/// A Glue crawler.
pub(super) async fn create_crawler(c: Creation<'_>) -> Result<Created> {
    let name = c.name("Name");
    let paths = items(c.properties, "/Targets/S3Targets")
        .filter_map(|t| t.get("Path").map(scalar_text))
        .map(|path| aws_sdk_glue::types::S3Target::builder().path(path).build())
        .collect::<Vec<_>>();
    let targets = aws_sdk_glue::types::CrawlerTargets::builder()
        .set_s3_targets(Some(paths))
        .build();
    let created = c
        .clients
        .glue
        .create_crawler()
        .name(&name)
        .role(text(c.properties, "Role").unwrap_or_default())
        .set_database_name(text(c.properties, "DatabaseName"))
        .targets(targets)
        .send()
        .await;
    created_or_exists(created, |e| e.is_already_exists_exception())?;
    Ok(Created::new(name, true))
}
