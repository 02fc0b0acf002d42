//! A run too big for one invocation: bounded objects, one invocation after another.

use super::{extract, key_of, lines, objects, stack_for, state, FUNCTION};
use anyhow::Result;
use landfall_tests::postgres::TotesysDatabase;
use landfall_totesys_seed::Volumes;
use serde_json::json;
use std::time::Duration;

/// A run bigger than an object (`ROWS_PER_OBJECT` 100, and no time budget: each invocation
/// writes one object and hands the rest to a fresh invocation of its own) lands as objects
/// in sequence, each at most 100 rows, every row exactly once — 500 of them sharing one
/// `last_updated` across five objects — with only the last carrying the run's upper bound,
/// and the watermark moved only when the run ended.
#[tokio::test]
async fn a_run_too_big_for_one_invocation_goes_on_in_bounded_objects() -> Result<()> {
    let db = TotesysDatabase::seeded(Volumes {
        sales_orders: 1050,
        purchase_orders: 5,
    })
    .await?;
    sqlx::query(
        "UPDATE sales_order SET last_updated = (SELECT min(last_updated) FROM sales_order) \
         WHERE sales_order_id <= 500",
    )
    .execute(&mut db.conn().await?)
    .await?;
    let mut stack = stack_for(
        &db,
        &[
            ("SETTLE_SECONDS", "0"),
            ("ROWS_PER_OBJECT", "100"),
            ("TIME_BUDGET_SECONDS", "0"),
        ],
    )
    .await?;
    let host = stack.host();
    let first = extract(&host, "sales_order").await?;
    assert_eq!(
        (first["rows"].clone(), first["more"].clone()),
        (json!(100), json!(true))
    );
    let mut recorded = state(&stack, "sales_order").await?;
    assert!(recorded["watermark"].is_null(), "{recorded}");
    assert_eq!(recorded["pending"]["sequence"], 2, "{recorded}");
    for _ in 0..600 {
        recorded = state(&stack, "sales_order").await?;
        if recorded.get("pending").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recorded.get("pending").is_none(),
        "the run never ended: {recorded}"
    );
    assert_eq!(recorded["sequence"], 11, "{recorded}");
    let log = stack.function_log(FUNCTION);
    assert_eq!(log.matches("\"table extracted\"").count(), 11, "{log}");

    let keys = objects(&stack).await?;
    let mut ids = Vec::new();
    for sequence in 1..=11 {
        let key = key_of("sales_order", &keys, sequence).expect("an object per sequence id");
        let rows = lines(&stack, &key).await?;
        assert!(rows.len() <= 100, "{key}: {}", rows.len());
        ids.extend(rows.iter().map(|r| r["sales_order_id"].as_i64().unwrap()));
        let head = stack
            .s3()
            .head_object()
            .bucket(stack.resource("IngestionBucket"))
            .key(&key)
            .send()
            .await?;
        let upper = head
            .metadata()
            .and_then(|m| m.get(landfall_totesys_contract::ingestion::UPPER_METADATA))
            .map(|u| json!(u));
        let last = sequence == 11;
        assert_eq!(upper, last.then(|| recorded["watermark"].clone()), "{key}");
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=1050).collect::<Vec<i64>>(),
        "every row exactly once"
    );

    // At the limit: a run of exactly 100 changed rows (ANALYZEd, so the planner expects them
    // and the run takes the ordered path) is one object, the run's last: no row after it.
    let mut conn = db.conn().await?;
    sqlx::query("UPDATE sales_order SET last_updated = LOCALTIMESTAMP WHERE sales_order_id <= 100")
        .execute(&mut conn)
        .await?;
    sqlx::query("ANALYZE sales_order")
        .execute(&mut conn)
        .await?;
    let at_limit = extract(&host, "sales_order").await?;
    assert_eq!(
        (
            at_limit["rows"].clone(),
            at_limit["more"].clone(),
            at_limit["sequence"].clone()
        ),
        (json!(100), json!(false), json!(12)),
        "{at_limit}"
    );
    let key = key_of("sales_order", &objects(&stack).await?, 12).expect("the 12th object");
    assert_eq!(lines(&stack, &key).await?.len(), 100);
    assert!(key_of("sales_order", &objects(&stack).await?, 13).is_none());
    Ok(())
}
