//! Glue databases and crawlers (moto records them; no crawler runs).

use super::*;

/// A Glue database.
pub(super) async fn create_database(c: Creation<'_>) -> Result<Created> {
    let Creation {
        clients,
        properties,
        ..
    } = c;
    let name = properties
        .pointer("/DatabaseInput/Name")
        .map(scalar_text)
        .ok_or_else(|| anyhow!("DatabaseInput.Name missing"))?;
    created_or_exists(
        clients
            .glue
            .create_database()
            .database_input(
                aws_sdk_glue::types::DatabaseInput::builder()
                    .name(&name)
                    .build()?,
            )
            .send()
            .await,
        |e| e.is_already_exists_exception(),
    )?;
    Ok(Created {
        reference: name,
        emulated: true,
        attributes: Vec::new(),
    })
}

/// A Glue crawler.
pub(super) async fn create_crawler(c: Creation<'_>) -> Result<Created> {
    let Creation {
        clients,
        target,
        properties,
        id,
        ..
    } = c;
    let name = text(properties, "Name").unwrap_or_else(|| default_name(target, id));
    let paths = items(properties, "/Targets/S3Targets")
        .filter_map(|t| t.get("Path").map(scalar_text))
        .map(|path| aws_sdk_glue::types::S3Target::builder().path(path).build())
        .collect::<Vec<_>>();
    created_or_exists(
        clients
            .glue
            .create_crawler()
            .name(&name)
            .role(text(properties, "Role").unwrap_or_default())
            .set_database_name(text(properties, "DatabaseName"))
            .targets(
                aws_sdk_glue::types::CrawlerTargets::builder()
                    .set_s3_targets(Some(paths))
                    .build(),
            )
            .send()
            .await,
        |e| e.is_already_exists_exception(),
    )?;
    Ok(Created {
        reference: name,
        emulated: true,
        attributes: Vec::new(),
    })
}
