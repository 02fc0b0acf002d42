//! P3 end to end: orders-loader (the real binary) on the local stack — audit items, the
//! crawler, the final table after single, duplicate, out-of-order and bad deliveries, a
//! failure in the middle of the transaction, one file delivered twice at once in two
//! execution environments. The load library run directly: `library.rs` here; the local
//! Redshift itself: `redshift_local.rs`.

mod library;
mod redshift_local;

use anyhow::Result;
use landfall_devstack::sample::orders_csv;
use landfall_tests::file_pipeline;
use landfall_tests::file_pipeline::orders::{
    fixture, parquet_bytes, BUCKET, CUSTOMERS, FUNCTION, P3,
};

/// Found by the soak: the same bytes uploaded twice, whose notifications (moto's carry no
/// version id, so both name the file by its ETag) arrive in one batch — the same file twice
/// in one BatchWriteItem, which DynamoDB refuses; both went to the DLQ.
#[tokio::test]
async fn the_same_file_twice_in_one_batch_loads_once() -> Result<()> {
    let mut f = fixture().await?;
    f.stack
        .set_function_env(FUNCTION, "REDSHIFT_POLL_MILLISECONDS", Some("50"));
    f.migrated().await?;
    assert!(f.stack.deliver(FUNCTION).await?.failed.is_empty());
    let key = "transformed/orders/twice.csv";
    for _ in 0..2 {
        f.stack
            .put(BUCKET, key, orders_csv(0..4, CUSTOMERS, 0).into_bytes())
            .await?;
    }
    let delivery = f.stack.deliver(FUNCTION).await?;
    assert_eq!(
        (delivery.received, delivery.deleted),
        (2, 2),
        "{delivery:?}\n{}",
        f.stack.function_log(FUNCTION)
    );
    assert_eq!(f.final_rows().await?.len(), 4);
    assert_eq!(f.dead_letters().await?, Vec::<String>::new());
    Ok(())
}

/// Orders files as people name them — spaces, an apostrophe, accents, CJK, punctuation — in a bucket whose
/// versioning is suspended (S3 then names an upload by no version, the loader by its ETag):
/// each loads once under its own key and is audited LOADED under that key.
#[tokio::test]
async fn orders_files_named_as_people_name_them_in_an_unversioned_bucket_load_once_each(
) -> Result<()> {
    let mut f = fixture().await?;
    f.stack
        .set_function_env(FUNCTION, "REDSHIFT_POLL_MILLISECONDS", Some("50"));
    f.stack.suspend_versioning(BUCKET).await?;
    f.migrated().await?;
    let keys = [
        ("transformed/orders/ventes d'été — 東京 #1.csv", 0..4),
        ("transformed/orders/orders (copy) 2026.csv", 4..7),
    ];
    for (key, orders) in &keys {
        f.stack
            .put(
                BUCKET,
                key,
                orders_csv(orders.clone(), CUSTOMERS, 0).into_bytes(),
            )
            .await?;
    }
    let delivery = f.stack.deliver(FUNCTION).await?;
    assert!(
        // (and the s3:TestEvent of the notification's set-up)
        delivery.failed.is_empty() && delivery.received == 3,
        "{delivery:?}\n{}",
        f.stack.function_log(FUNCTION)
    );
    let rows = f.final_rows().await?;
    assert_eq!(rows.len(), 7);
    for (key, orders) in &keys {
        let loaded = rows.values().filter(|(_, source)| source == key).count();
        assert_eq!(loaded, orders.len(), "{key}: {rows:?}");
    }
    let audit = f.audit().await?;
    assert_eq!(audit.len(), 2, "{audit:?}");
    for (key, _) in &keys {
        let status = audit.get(*key).map(|(status, _)| status.as_str());
        assert_eq!(status, Some("LOADED"), "{key}: {audit:?}");
    }
    assert_eq!(f.dead_letters().await?, Vec::<String>::new());
    Ok(())
}

/// One notification delivered twice at the same time, in two execution environments, then
/// once more after both finished: one load, and no delivery failed or dead-lettered.
#[tokio::test]
async fn one_file_delivered_twice_at_once_and_again_later_loads_once() -> Result<()> {
    file_pipeline::delivered_twice_at_once_and_again_later::<P3>().await
}

/// A good file: each order once, audited LOADED.
#[tokio::test]
async fn a_good_file_loads_once() -> Result<()> {
    file_pipeline::a_good_file_loads_once::<P3>().await?;
    Ok(())
}

/// A correction's orders stay when the first upload's notification comes back late.
#[tokio::test]
async fn a_newer_version_wins_over_an_older_one_delivered_late() -> Result<()> {
    file_pipeline::a_newer_version_wins_over_an_older_one_delivered_late::<P3>().await
}

/// Loaded by a delivery that died before its audit: the redelivery finds the ledger row.
#[tokio::test]
async fn a_redelivery_after_a_load_that_died_completes_it_once() -> Result<()> {
    file_pipeline::a_redelivery_after_a_load_that_died_completes_it_once::<P3>().await?;
    Ok(())
}

/// A bad field: dead-lettered at once, naming its line and column, nothing loaded.
#[tokio::test]
async fn a_bad_line_is_dead_lettered_at_once_naming_it() -> Result<()> {
    file_pipeline::a_bad_line_is_dead_lettered_at_once_naming_it::<P3>().await
}

#[tokio::test]
async fn orders_load_once_whatever_the_delivery_order() -> Result<()> {
    let mut f = fixture().await?;
    f.stack
        .set_function_env(FUNCTION, "REDSHIFT_POLL_MILLISECONDS", Some("50"));
    f.migrated().await?;
    // The s3:TestEvent S3 sends when the notification is configured.
    assert!(f.stack.deliver(FUNCTION).await?.failed.is_empty());

    // Revision 1 of orders 0..6 and revision 0 of orders 4..8 (older for 4 and 5), in one batch.
    f.stack
        .put(
            BUCKET,
            "transformed/orders/2026/12/02/a.csv",
            orders_csv(0..6, CUSTOMERS, 1).into_bytes(),
        )
        .await?;
    f.stack
        .put(
            BUCKET,
            "transformed/orders/2026/12/02/b.csv",
            orders_csv(4..8, CUSTOMERS, 0).into_bytes(),
        )
        .await?;
    let queue = f.stack.resource("OrdersFilesQueue");
    let first = f.stack.peek(&queue).await?;
    assert_eq!(first.len(), 2);
    let delivery = f.stack.deliver(FUNCTION).await?;
    assert_eq!(
        (delivery.received, delivery.deleted),
        (2, 2),
        "{delivery:?}\n{}",
        f.stack.function_log(FUNCTION)
    );

    let rows = f.final_rows().await?;
    assert_eq!(rows.len(), 8, "{}", f.stack.function_log(FUNCTION));
    // Orders 4 and 5: a.csv's revision 1 is newer than b.csv's revision 0, whichever loaded last.
    for order in ["O0000004", "O0000005"] {
        assert!(
            rows[order].1.ends_with("a.csv"),
            "{order}: {:?}",
            rows[order]
        );
    }
    assert!(rows["O0000007"].1.ends_with("b.csv"));
    assert_eq!(f.count("SELECT count(*) FROM orders_staging").await?, 0);
    assert_eq!(f.count("SELECT count(*) FROM orders_ledger").await?, 2);
    assert_eq!(
        f.count("SELECT count(*) FROM orders_enriched WHERE segment IS NULL")
            .await?,
        0
    );

    let audit = f.audit().await?;
    let (status, item) = &audit["transformed/orders/2026/12/02/a.csv"];
    assert_eq!(status, "LOADED");
    assert_eq!(item["rows_loaded"].as_n().unwrap(), "6");
    assert_eq!(item["unknown_customers"].as_n().unwrap(), "0");
    assert!(item["statement_id"].as_s().is_ok(), "{item:?}");
    assert_eq!(audit["transformed/orders/2026/12/02/b.csv"].0, "LOADED");

    // The crawler was started (moto keeps it RUNNING).
    let crawler = aws_sdk_glue::Client::new(&f.stack.sdk)
        .get_crawler()
        .name(f.stack.resource("OrdersCrawler"))
        .send()
        .await?;
    assert_eq!(
        crawler
            .crawler()
            .and_then(|c| c.state())
            .map(|s| s.as_str()),
        Some("RUNNING")
    );

    // The same notifications again: nothing changes.
    for message in &first {
        f.stack
            .send(&queue, message.body().unwrap_or_default())
            .await?;
    }
    let again = f.stack.deliver(FUNCTION).await?;
    assert_eq!((again.received, again.deleted), (2, 2), "{again:?}");
    assert_eq!(f.final_rows().await?, rows);
    assert_eq!(f.count("SELECT count(*) FROM orders_ledger").await?, 2);
    assert!(f
        .stack
        .function_log(FUNCTION)
        .contains("already loaded: a duplicate delivery"));

    // A later revision of order 0 wins; an earlier one arriving after it does not.
    f.stack
        .put(
            BUCKET,
            "transformed/orders/2026/12/03/c.csv",
            orders_csv(0..1, CUSTOMERS, 30).into_bytes(),
        )
        .await?;
    assert_eq!(f.stack.deliver(FUNCTION).await?.deleted, 1);
    f.stack
        .put(
            BUCKET,
            "transformed/orders/2026/12/03/d.csv",
            orders_csv(0..1, CUSTOMERS, 2).into_bytes(),
        )
        .await?;
    assert_eq!(f.stack.deliver(FUNCTION).await?.deleted, 1);
    let rows = f.final_rows().await?;
    assert!(
        rows["O0000000"].1.ends_with("c.csv"),
        "{:?}",
        rows["O0000000"]
    );
    assert_eq!(rows.len(), 8);
    Ok(())
}

#[tokio::test]
async fn bad_orders_files_go_to_the_dlq_at_once_and_load_nothing() -> Result<()> {
    let mut f = fixture().await?;
    f.stack
        .set_function_env(FUNCTION, "REDSHIFT_POLL_MILLISECONDS", Some("50"));
    f.migrated().await?;
    assert!(f.stack.deliver(FUNCTION).await?.failed.is_empty());
    let header = "order_id,customer_id,order_ts,status,amount,currency\n";
    let good = "O1,C0001,2026-12-01 10:00:00,paid,1.00,GBP\n";
    let wrong_schema = {
        use arrow_array::{ArrayRef, StringArray};
        use arrow_schema::{DataType, Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(vec![Field::new(
            "order_id",
            DataType::Utf8,
            false,
        )]));
        parquet_bytes(
            schema,
            vec![std::sync::Arc::new(StringArray::from(vec!["O1"])) as ArrayRef],
        )
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "columns.csv",
            format!("{header}{good}O2,C0001,2026-12-01 10:00:00,paid,1.00\n").into_bytes(),
            "line 3",
        ),
        (
            "amount.csv",
            format!("{header}{good}O2,C0001,2026-12-01 10:00:00,paid,ten,GBP\n").into_bytes(),
            "line 3, column 5 (amount)",
        ),
        (
            "timestamp.csv",
            format!("{header}O2,C0001,01/12/2026,paid,1.00,GBP\n").into_bytes(),
            "line 2, column 3 (order_ts)",
        ),
        ("empty.csv", Vec::new(), "empty.csv"),
        ("schema.parquet", wrong_schema, "columns are [\"order_id\"]"),
        (
            "customer.csv",
            format!("{header}{good}O3,C9999,2026-12-01 10:00:00,paid,1.00,GBP\n").into_bytes(),
            "unknown customers: 1 of 2 orders",
        ),
    ];
    for (name, body, _) in &cases {
        f.stack
            .put(
                BUCKET,
                &format!("transformed/orders/bad/{name}"),
                body.clone(),
            )
            .await?;
    }
    let delivery = f.stack.deliver(FUNCTION).await?;
    assert_eq!(delivery.received, cases.len());
    // Permanent: dead-lettered at once and deleted from the source queue.
    assert_eq!(
        f.stack
            .queue_depth(&f.stack.resource("OrdersFilesQueue"))
            .await?,
        0,
        "{delivery:?}"
    );
    let reasons = f.dead_letters().await?;
    assert_eq!(reasons.len(), cases.len(), "{reasons:?}");
    let audit = f.audit().await?;
    for (name, _, words) in &cases {
        let key = format!("transformed/orders/bad/{name}");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains(&key) && r.contains(words))
                || reasons.iter().any(|r| r.contains(words)),
            "{name}: no reason with {words:?} in {reasons:?}"
        );
        let (status, item) = &audit[&key];
        assert_eq!(status, "FAILED", "{name}");
        assert_eq!(item["retryable"].as_bool().ok(), Some(&false), "{name}");
        assert!(
            item["error_message"].as_s().unwrap().contains(words),
            "{name}: {item:?}"
        );
    }
    assert_eq!(f.count("SELECT count(*) FROM orders_enriched").await?, 0);
    assert_eq!(f.count("SELECT count(*) FROM orders_staging").await?, 0);
    assert_eq!(f.count("SELECT count(*) FROM orders_ledger").await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_statement_failing_mid_transaction_leaves_nothing_and_the_retry_loads() -> Result<()> {
    let mut f = fixture().await?;
    f.stack
        .set_function_env(FUNCTION, "REDSHIFT_POLL_MILLISECONDS", Some("50"));
    f.stack
        .set_function_env(FUNCTION, "RETRY_FIRST_SECONDS", Some("0"));
    f.migrated().await?;
    assert!(f.stack.deliver(FUNCTION).await?.failed.is_empty());
    // The procedure's INSERT fails after COPY has staged the rows (PostgreSQL enforces this
    // check; it stands in for any statement failing inside the transaction).
    sqlx::raw_sql("ALTER TABLE orders_enriched ADD CONSTRAINT no_big_orders CHECK (amount < 100)")
        .execute(&mut f.sql().await?)
        .await?;
    f.stack
        .put(
            BUCKET,
            "transformed/orders/x.csv",
            orders_csv(100..103, CUSTOMERS, 0).into_bytes(),
        )
        .await?;
    let delivery = f.stack.deliver(FUNCTION).await?;
    assert_eq!(delivery.failed.len(), 1, "{delivery:?}");
    for table in ["orders_enriched", "orders_staging", "orders_ledger"] {
        assert_eq!(
            f.count(&format!("SELECT count(*) FROM {table}")).await?,
            0,
            "{table}"
        );
    }
    let (status, item) = f.audit().await?["transformed/orders/x.csv"].clone();
    assert_eq!(status, "FAILED");
    assert_eq!(item["retryable"].as_bool().ok(), Some(&true));
    let error = item["error_message"].as_s().unwrap();
    assert!(
        error.contains("CALL orders_load(") && error.contains("no_big_orders"),
        "{error}"
    );
    assert_eq!(f.dead_letters().await?, Vec::<String>::new());

    sqlx::raw_sql("ALTER TABLE orders_enriched DROP CONSTRAINT no_big_orders")
        .execute(&mut f.sql().await?)
        .await?;
    let retry = f.stack.deliver(FUNCTION).await?;
    assert_eq!((retry.received, retry.deleted), (1, 1), "{retry:?}");
    assert_eq!(f.final_rows().await?.len(), 3);
    assert_eq!(f.audit().await?["transformed/orders/x.csv"].0, "LOADED");
    Ok(())
}
