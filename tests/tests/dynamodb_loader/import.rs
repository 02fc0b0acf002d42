//! The import library run directly, for what one function host cannot do: two deliveries
//! of one file at the same instant start one import and switch the pointer once; a dataset
//! that replaces its table in place; and ImportTable's ClientToken as DynamoDB's API
//! reference describes it, which the local DynamoDB keeps.

use anyhow::Result;
use landfall_dynamodb_datasets::Datasets;
use landfall_dynamodb_import::{Job, Outcome};
use landfall_landing::{ObjectVersion, Version};
use landfall_tests::file_pipeline::dynamodb::{
    csv, deadline, dynamodb, expected, importer, items, pointer, tables, CHANGED, FIRST, HEADER,
};
use landfall_tests::LocalStack;
use serde_json::json;

#[tokio::test]
async fn concurrent_and_repeated_deliveries_start_one_import_and_switch_once() -> Result<()> {
    let stack = LocalStack::start().await?;
    let datasets = Datasets::parse("dynamodb.toml", landfall_dynamodb_datasets::BUNDLED)?;
    let dataset = datasets.get("price_index").expect("bundled");
    let bucket = stack.resource("LandingBucket");
    let key = "dynamodb/price_index/prices.csv";
    // Many rows, and parts of 2 KiB: the file converts as parts, side by side.
    let rows: Vec<[String; 6]> = (0..200)
        .map(|i| {
            [
                "2024-01".into(),
                format!("Geo {i}"),
                "Food".into(),
                "Bread".into(),
                "g".into(),
                format!("{i}.5"),
            ]
        })
        .collect();
    let mut text = HEADER.to_owned();
    for row in &rows {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    let version = stack.put("LandingBucket", key, text.into_bytes()).await?;
    let source = ObjectVersion {
        bucket,
        key: key.into(),
        version: Version::Id(version),
    };
    let importer = importer(&stack);
    let job = |attempt: &'static str| Job {
        dataset_name: "price_index",
        dataset,
        source: &source,
        landed: "2026-12-02T00:00:00.000Z",
        attempt,
    };
    let (one, two, until) = (job("delivery-1"), job("delivery-2"), deadline());
    let (first, second) = tokio::join!(importer.run(&one, &until), importer.run(&two, &until));
    let (first, second) = (first?, second?);
    assert_eq!(first.import_arn, second.import_arn, "one import");
    assert_eq!((first.rows, first.parts > 1), (200, true), "{first:?}");
    let outcomes = [&first.outcome, &second.outcome];
    assert!(
        outcomes.contains(&&Outcome::Switched { previous: None }),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&&Outcome::AlreadyCurrent), "{outcomes:?}");
    assert_eq!(tables(&stack).await?, vec![first.table.clone()]);
    let imported = items(&stack, &first.table).await?;
    assert_eq!(imported.len(), 200);
    assert_eq!(imported["S:2024-01#Geo 7#Bread"]["price"], "N:7.5");

    // A redelivery later follows the same import and changes nothing.
    let again = importer.run(&job("delivery-3"), &deadline()).await?;
    assert_eq!(
        (again.import_arn, again.outcome),
        (first.import_arn, Outcome::AlreadyCurrent)
    );
    assert_eq!(tables(&stack).await?, vec![first.table]);
    Ok(())
}

#[tokio::test]
async fn delete_then_import_replaces_the_base_table_in_place() -> Result<()> {
    let stack = LocalStack::start().await?;
    let text = landfall_dynamodb_datasets::BUNDLED.replace(
        "retire_after_seconds = 3600",
        "replace = \"delete_then_import\"",
    );
    let datasets = Datasets::parse("dynamodb.toml", &text)?;
    let dataset = datasets.get("price_index").expect("bundled");
    let importer = importer(&stack);
    for (n, rows) in [FIRST, CHANGED].into_iter().enumerate() {
        let key = "dynamodb/price_index/prices.csv";
        let version = stack
            .put("LandingBucket", key, csv(rows).into_bytes())
            .await?;
        let source = ObjectVersion {
            bucket: stack.resource("LandingBucket"),
            key: key.into(),
            version: Version::Id(version),
        };
        let attempt = format!("delivery-{n}");
        let job = Job {
            dataset_name: "price_index",
            dataset,
            source: &source,
            landed: "",
            attempt: &attempt,
        };
        let imported = importer.run(&job, &deadline()).await?;
        assert_eq!(imported.table, "landfall-price_index");
        assert_eq!(items(&stack, "landfall-price_index").await?, expected(rows));
    }
    assert_eq!(
        tables(&stack).await?,
        vec!["landfall-price_index".to_owned()]
    );
    assert_eq!(
        pointer(&stack).await?.as_deref(),
        Some("landfall-price_index")
    );
    Ok(())
}

/// ImportTable's ClientToken makes the call idempotent, as DynamoDB's API reference says: the
/// same call again returns the import the first started (two deliveries of one file may both
/// reach the start), and the token with other parameters is an ImportConflictException.
#[tokio::test]
async fn an_import_table_call_repeated_with_its_client_token_starts_one_import() -> Result<()> {
    let stack = LocalStack::start().await?;
    let datasets = Datasets::parse("dynamodb.toml", landfall_dynamodb_datasets::BUNDLED)?;
    let dataset = datasets.get("price_index").expect("bundled");
    let bucket = stack.resource("LandingBucket");
    let item = json!({"Item": {"pk": {"S": "a"}}}).to_string();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, item.as_bytes())?;
    stack
        .put(
            "LandingBucket",
            "imports/token/part-0.json.gz",
            gzip.finish()?,
        )
        .await?;
    let start = |table: &'static str, token: &'static str| {
        let (dynamodb, bucket) = (dynamodb(&stack), bucket.clone());
        async move {
            landfall_dynamodb_import::table::start_import(
                &dynamodb,
                dataset,
                table,
                &bucket,
                "imports/token/",
                token,
            )
            .await
        }
    };
    let first = start("landfall-token-a", "token-1").await?;
    let again = start("landfall-token-a", "token-1").await?;
    assert_eq!(first, again, "the same import");
    let conflict = start("landfall-token-b", "token-1").await.unwrap_err();
    assert!(
        format!("{conflict:?}").contains("ImportConflictException"),
        "{conflict:?}"
    );
    let other = start("landfall-token-b", "token-2").await?;
    assert_ne!(first, other);
    Ok(())
}
