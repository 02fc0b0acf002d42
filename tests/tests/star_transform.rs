//! P4 part 2 on the local stack: a seeded totesys → db-extract (real binary) → ingestion
//! objects → star-transform (real binary, or its crate in-process where the test must control
//! concurrency) → Parquet in the processed bucket, read back with the parquet crate and
//! compared with SQL written independently against the source tables (`landfall_tests::star`).

use anyhow::Result;
use futures::stream::{self, StreamExt};
use landfall_aws::parameters::JsonParameters;
use landfall_tests::pipeline::{self, drain, extract_all, short_visibility, TRANSFORM};
use landfall_tests::postgres::TotesysDatabase;
use landfall_tests::star::{assert_same, expected, from_processed};
use landfall_tests::LocalStack;
use landfall_totesys_seed::Volumes;
use landfall_totesys_transform::{ObjectVersion, Outcome, Settings, Transformer, Version};
use serde_json::json;
use std::io::Write;
use std::time::Duration;

/// Smaller than the live volumes, so debug builds stay quick; every table still has rows.
const VOLUMES: Volumes = Volumes {
    sales_orders: 1500,
    purchase_orders: 600,
};

async fn stack_for(db: &TotesysDatabase) -> Result<LocalStack> {
    pipeline::stack(db.secret(), None).await
}

#[tokio::test]
async fn totesys_becomes_the_star_schema_then_changes_follow() -> Result<()> {
    let db = TotesysDatabase::seeded(VOLUMES).await?;
    let mut stack = stack_for(&db).await?;
    short_visibility(&stack).await?;
    let processed = stack.resource("ProcessedBucket");

    extract_all(&mut stack).await?;
    drain(&mut stack).await?;
    let mut conn = db.conn().await?;
    let first = expected(&mut conn, None).await?;
    assert_same(&from_processed(&stack.s3(), &processed).await?, &first);
    assert_eq!(
        first["fact_sales_order"].len(),
        VOLUMES.sales_orders as usize
    );

    // New orders, and updates to address, staff and sales_order: changed dims, new fact
    // versions next to the old ones, counterparties showing their changed address.
    landfall_totesys_seed::churn(&mut conn, 7, 25, 6).await?;
    extract_all(&mut stack).await?;
    drain(&mut stack).await?;
    let second = expected(&mut conn, Some(&first)).await?;
    assert_same(&from_processed(&stack.s3(), &processed).await?, &second);
    assert!(second["fact_sales_order"].len() > first["fact_sales_order"].len() + 25);
    assert_ne!(
        first["dim_counterparty"], second["dim_counterparty"],
        "the churn changed a counterparty's legal address, so the cascade is tested"
    );

    let log = stack.function_log(TRANSFORM);
    assert!(!log.contains("sequence ids skipped"), "{log}");
    assert!(stack.dead_letter_reasons("IngestionDLQ").await?.is_empty());
    Ok(())
}

/// The transform crate in-process on the stack's S3 and SSM: each object committed within
/// `commit_attempts`.
fn in_process(stack: &LocalStack, commit_attempts: u32) -> Transformer {
    Transformer::new(
        stack.s3(),
        JsonParameters::new(aws_sdk_ssm::Client::new(&stack.sdk), "/test/star-transform"),
        Settings {
            processed_bucket: stack.resource("ProcessedBucket"),
            state_prefix: "state/".into(),
            commit_attempts,
        },
    )
}

async fn ingestion_sources(stack: &LocalStack) -> Result<Vec<ObjectVersion>> {
    let bucket = stack.resource("IngestionBucket");
    let listed = stack
        .s3()
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await?;
    Ok(listed
        .versions()
        .iter()
        .map(|v| ObjectVersion {
            bucket: bucket.clone(),
            key: v.key().unwrap_or_default().to_owned(),
            version: Version::from_s3(v.version_id(), v.e_tag()),
        })
        .collect())
}

#[tokio::test]
async fn out_of_order_duplicate_and_concurrent_deliveries_give_the_in_order_warehouse() -> Result<()>
{
    let db = TotesysDatabase::seeded(VOLUMES).await?;
    let mut stack = stack_for(&db).await?;
    extract_all(&mut stack).await?;
    let mut sources = ingestion_sources(&stack).await?;
    assert_eq!(sources.len(), 11);

    // Reverse order (staff before departments, counterparties before addresses, facts before
    // the rows they refer to), every object twice, four at a time: the transform crate
    // in-process, with moto's S3 and SSM.
    sources.sort_by(|a, b| b.key.cmp(&a.key));
    let transformer = in_process(&stack, 50);
    let mut pending: Vec<ObjectVersion> = sources.iter().chain(sources.iter()).cloned().collect();
    let (mut transformed, mut repeated, mut waited) = (0, 0, 0);
    for _round in 0..12 {
        let results: Vec<_> = stream::iter(pending.drain(..))
            .map(|source| {
                let transformer = &transformer;
                async move { (transformer.process(&source).await, source) }
            })
            .buffer_unordered(4)
            .collect()
            .await;
        for (result, source) in results {
            match result {
                Ok(Outcome::Transformed { .. }) => transformed += 1,
                Ok(Outcome::AlreadyDone { .. }) => repeated += 1,
                Err(err) => {
                    use landfall_runtime::{Classify, Disposition};
                    assert_eq!(err.disposition(), Disposition::Retryable, "{err}");
                    assert!(err.to_string().contains("has not arrived yet"), "{err}");
                    waited += 1;
                    pending.push(source);
                }
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    assert!(pending.is_empty(), "objects still failing: {pending:?}");
    assert_eq!((transformed, repeated), (11, 11));
    assert!(
        waited > 0,
        "reverse order must make staff and counterparties wait for their department and address"
    );

    let mut conn = db.conn().await?;
    assert_same(
        &from_processed(&stack.s3(), &stack.resource("ProcessedBucket")).await?,
        &expected(&mut conn, None).await?,
    );
    Ok(())
}

fn gzip(lines: &[serde_json::Value]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for line in lines {
        writeln!(gz, "{line}").expect("writing to memory");
    }
    gz.finish().expect("writing to memory")
}

async fn put(stack: &LocalStack, key: &str, lines: &[serde_json::Value]) -> Result<()> {
    stack.put("IngestionBucket", key, gzip(lines)).await?;
    Ok(())
}

fn currency(id: i32, code: &str) -> serde_json::Value {
    json!({"currency_id": id, "currency_code": code,
           "created_at": "2024-01-02T03:04:05.678", "last_updated": "2024-01-02T03:04:05.678"})
}

fn staff(id: i32, department: i32) -> serde_json::Value {
    json!({"staff_id": id, "first_name": "A", "last_name": "B", "department_id": department,
           "email_address": "a.b@example.com",
           "created_at": "2024-01-02T03:04:05.678", "last_updated": "2024-01-02T03:04:05.678"})
}

/// Objects of four tables transformed at the same moment: each reads and commits only its
/// table's state (its own object, holding no rows of a table that is not joined), so none
/// loses its commit to another. A sales order whose staff, counterparty and design have not
/// arrived is transformed too: its facts wait in the warehouse loader, not here. Its days
/// are published on their own, and the calendar records them.
#[tokio::test]
async fn objects_of_different_tables_commit_side_by_side_each_in_its_own_state() -> Result<()> {
    let stack = LocalStack::start().await?;
    let stamp = "2024-01-02T03:04:05.678";
    let objects = [
        ("currency", vec![currency(1, "GBP")]),
        (
            "design",
            vec![
                json!({"design_id": 3, "created_at": stamp, "design_name": "Wooden",
                        "file_location": "/usr", "file_name": "wooden-20220717-npgz.json",
                        "last_updated": stamp}),
            ],
        ),
        (
            "payment_type",
            vec![
                json!({"payment_type_id": 1, "payment_type_name": "SALES_RECEIPT",
                        "created_at": stamp, "last_updated": stamp}),
            ],
        ),
        (
            "sales_order",
            vec![
                json!({"sales_order_id": 1, "created_at": stamp, "last_updated": stamp,
                        "design_id": 9, "staff_id": 9, "counterparty_id": 9, "units_sold": 10,
                        "unit_price": "2.50", "currency_id": 1,
                        "agreed_delivery_date": "2024-01-05", "agreed_payment_date": "2024-01-06",
                        "agreed_delivery_location_id": 9}),
            ],
        ),
    ];
    for (table, lines) in &objects {
        let key = format!("{table}/2024-01-02/{table}-0000000001.jsonl.gz");
        put(&stack, &key, lines).await?;
    }
    let sources = ingestion_sources(&stack).await?;
    let transformer = in_process(&stack, 1);
    let outcomes = futures::future::join_all(sources.iter().map(|s| transformer.process(s))).await;
    for outcome in outcomes {
        assert!(
            matches!(outcome, Ok(Outcome::Transformed { conflicts: 0, .. })),
            "{outcome:?}"
        );
    }
    let processed = stack.resource("ProcessedBucket");
    let states = stack.keys(&processed, "state/").await?;
    assert_eq!(
        states,
        [
            "state/calendar.json.gz",
            "state/currency.json.gz",
            "state/design.json.gz",
            "state/payment_type.json.gz",
            "state/sales_order.json.gz",
        ]
    );
    let tables = from_processed(&stack.s3(), &processed).await?;
    assert_eq!(tables["fact_sales_order"].len(), 1);
    let days: Vec<&str> = tables["dim_date"].iter().map(|d| d[0].as_str()).collect();
    assert_eq!(
        days,
        [
            "2024-01-02",
            "2024-01-03",
            "2024-01-04",
            "2024-01-05",
            "2024-01-06"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn bad_rows_dead_letter_at_once_and_missing_rows_after_the_retries() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    pipeline::fast_retries(&mut stack);

    // Sequence 1, then 3: a gap is a warning, and the object is still transformed.
    put(
        &stack,
        "currency/2024-01-02/currency-0000000001.jsonl.gz",
        &[currency(1, "GBP")],
    )
    .await?;
    drain(&mut stack).await?;
    put(
        &stack,
        "currency/2024-01-02/currency-0000000003.jsonl.gz",
        &[currency(2, "EUR")],
    )
    .await?;
    drain(&mut stack).await?;
    let log = stack.function_log(TRANSFORM);
    assert!(log.contains("sequence ids skipped"), "{log}");
    assert!(log.contains("\"missing\":\"[2]\""), "{log}");
    let last: Option<u64> = JsonParameters::new(
        aws_sdk_ssm::Client::new(&stack.sdk),
        "/landfall/star-transform",
    )
    .load("currency")
    .await?;
    assert_eq!(last, Some(3));

    // Not ISO 4217: permanent, in the DLQ after one delivery, naming table, sequence, line, column.
    put(
        &stack,
        "currency/2024-01-02/currency-0000000004.jsonl.gz",
        &[currency(3, "USD"), currency(4, "ZZZ")],
    )
    .await?;
    let delivery = stack.deliver(TRANSFORM).await?;
    assert_eq!(delivery.received, 1);
    let reasons = stack.dead_letter_reasons("IngestionDLQ").await?;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("currency sequence 4, line 2, column currency_code")
            && reasons[0].contains("ZZZ"),
        "{reasons:?}"
    );

    // A staff member whose department never arrived (the row shows its name): retried,
    // then dead-lettered by the queue's redrive policy (maxReceiveCount 5), never
    // half-written.
    put(
        &stack,
        "staff/2024-01-02/staff-0000000001.jsonl.gz",
        &[staff(1, 9)],
    )
    .await?;
    for attempt in 1..=5 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let delivery = stack.deliver(TRANSFORM).await?;
        assert_eq!(delivery.received, 1, "attempt {attempt}");
        assert_eq!(delivery.failed.len(), 1, "attempt {attempt}");
        assert_eq!(stack.dead_letter_reasons("IngestionDLQ").await?.len(), 1);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(stack.deliver(TRANSFORM).await?.received, 0);
    assert_eq!(stack.peek(&stack.resource("IngestionDLQ")).await?.len(), 2);
    let log = stack.function_log(TRANSFORM);
    assert!(
        log.contains("staff sequence 1, line 1, column department_id")
            && log.contains("department 9, which has not arrived yet"),
        "{log}"
    );
    let processed = from_processed(&stack.s3(), &stack.resource("ProcessedBucket")).await?;
    assert!(processed["dim_staff"].is_empty());
    assert_eq!(processed["dim_currency"].len(), 2, "{processed:?}");
    Ok(())
}
