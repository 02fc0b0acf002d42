//! P4 part 1 on the local stack: a seeded totesys in PostgreSQL → db-extract (the real
//! binary; dispatcher and per-table workers) → gzipped JSON lines in the ingestion bucket,
//! with the table state in SSM (moto). A run too big for one invocation: `chunked.rs` here.

mod chunked;

use anyhow::{anyhow, Result};
use flate2::read::GzDecoder;
use landfall_devstack::host::Host;
use landfall_tests::postgres::TotesysDatabase;
use landfall_tests::LocalStack;
use landfall_totesys_seed::Volumes;
use serde_json::{json, Value};
use sqlx::{Executor, Row};
use std::io::Read;
use std::time::Duration;

const FUNCTION: &str = "db-extract";
const TOTESYS_TABLES: usize = 11;

async fn stack_for(db: &TotesysDatabase, env: &[(&str, &str)]) -> Result<LocalStack> {
    let mut stack = LocalStack::start_with_secrets(&[("TotesysSecret", db.secret())]).await?;
    for (name, value) in env {
        stack.set_function_env(FUNCTION, name, Some(value));
    }
    Ok(stack)
}

async fn extract(host: &Host, table: &str) -> Result<Value> {
    let answer = host
        .invoke(
            FUNCTION,
            json!({"mode": "extract", "table": table, "run": "t"})
                .to_string()
                .into(),
        )
        .await?;
    let body = answer.json()?;
    match answer.function_error {
        None => Ok(body),
        Some(_) => Err(anyhow!("{body}")),
    }
}

/// Runs the dispatcher and waits until every table's worker has logged its outcome.
async fn dispatch_and_wait(stack: &mut LocalStack, tables: usize) -> Result<()> {
    let outcomes = |log: &str| {
        log.matches("\"table extracted\"").count() + log.matches("\"table failed\"").count()
    };
    let before = outcomes(&stack.function_log(FUNCTION));
    let answer = stack
        .host()
        .invoke(FUNCTION, json!({"mode": "dispatch"}).to_string().into())
        .await?;
    assert!(answer.function_error.is_none(), "{:?}", answer.json());
    for _ in 0..600 {
        if outcomes(&stack.function_log(FUNCTION)) >= before + tables {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!(
        "workers did not finish:\n{}",
        stack.function_log(FUNCTION)
    ))
}

async fn objects(stack: &LocalStack) -> Result<Vec<String>> {
    let listed = stack
        .s3()
        .list_objects_v2()
        .bucket(stack.resource("IngestionBucket"))
        .send()
        .await?;
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    Ok(keys)
}

/// The JSON lines of an ingestion object.
async fn lines(stack: &LocalStack, key: &str) -> Result<Vec<Value>> {
    let object = stack
        .s3()
        .get_object()
        .bucket(stack.resource("IngestionBucket"))
        .key(key)
        .send()
        .await?;
    let bytes = object.body.collect().await?.into_bytes();
    let mut text = String::new();
    GzDecoder::new(&bytes[..]).read_to_string(&mut text)?;
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

async fn source_count(db: &TotesysDatabase, table: &str) -> Result<i64> {
    let mut conn = db.conn().await?;
    Ok(
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM \"{table}\""))
            .fetch_one(&mut conn)
            .await?,
    )
}

async fn state(stack: &LocalStack, table: &str) -> Result<Value> {
    let out = aws_sdk_ssm::Client::new(&stack.sdk)
        .get_parameter()
        .name(format!("/landfall/db-extract/{table}"))
        .send()
        .await?;
    Ok(serde_json::from_str(
        out.parameter().and_then(|p| p.value()).unwrap_or("null"),
    )?)
}

fn key_of(table: &str, keys: &[String], sequence: u64) -> Option<String> {
    keys.iter()
        .find(|k| {
            landfall_totesys_extract::parse_object_key(k).map(|n| (n.table, n.sequence))
                == Some((table, sequence))
        })
        .cloned()
}

#[tokio::test]
async fn seeded_tables_are_extracted_then_only_the_changes_arrive() -> Result<()> {
    let db = TotesysDatabase::seeded(Volumes::default()).await?;
    let mut stack = stack_for(&db, &[("SETTLE_SECONDS", "0")]).await?;
    dispatch_and_wait(&mut stack, TOTESYS_TABLES).await?;
    let first = objects(&stack).await?;
    assert_eq!(
        first.len(),
        TOTESYS_TABLES,
        "{first:?}\n{}",
        stack.function_log(FUNCTION)
    );
    for table in [
        "address",
        "counterparty",
        "currency",
        "department",
        "design",
        "staff",
        "payment_type",
        "sales_order",
        "purchase_order",
        "transaction",
        "payment",
    ] {
        let key = key_of(table, &first, 1)
            .ok_or_else(|| anyhow!("no first object for {table}: {first:?}"))?;
        assert_eq!(
            lines(&stack, &key).await?.len() as i64,
            source_count(&db, table).await?,
            "{table}"
        );
        assert_eq!(state(&stack, table).await?["sequence"], 1, "{table}");
    }

    // Exact types, compared with what PostgreSQL holds.
    let rows = lines(&stack, &key_of("sales_order", &first, 1).unwrap()).await?;
    let mut conn = db.conn().await?;
    let source = sqlx::query(
        "SELECT sales_order_id, unit_price::text, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'),
                agreed_delivery_date, units_sold FROM sales_order WHERE sales_order_id = 7",
    )
    .fetch_one(&mut conn)
    .await?;
    let row = rows
        .iter()
        .find(|r| r["sales_order_id"] == 7)
        .expect("order 7");
    assert_eq!(
        row["unit_price"],
        json!(source.get::<String, _>(1)),
        "numeric as a string"
    );
    assert_eq!(
        row["created_at"],
        json!(source.get::<String, _>(2)),
        "ISO-8601 with milliseconds"
    );
    assert_eq!(
        row["agreed_delivery_date"],
        json!(source.get::<String, _>(3))
    );
    assert_eq!(row["units_sold"], json!(source.get::<i32, _>(4)));
    let address = lines(&stack, &key_of("address", &first, 1).unwrap()).await?;
    assert!(
        address.iter().any(|a| a["address_line_2"].is_null()),
        "NULL as null"
    );
    let payment_types = lines(&stack, &key_of("payment_type", &first, 1).unwrap()).await?;
    assert!(
        payment_types
            .iter()
            .any(|p| p["payment_type_name"] == "SALES_REFUND"),
        "enums as text"
    );

    // Churn: new orders and updates to address, staff and sales_order.
    landfall_totesys_seed::churn(&mut conn, 7, 25, 6).await?;
    dispatch_and_wait(&mut stack, TOTESYS_TABLES).await?;
    let second: Vec<String> = objects(&stack)
        .await?
        .into_iter()
        .filter(|k| !first.contains(k))
        .collect();
    let mut changed: Vec<&str> = second
        .iter()
        .map(|k| landfall_totesys_extract::parse_object_key(k).expect("an ingestion key"))
        .map(|name| {
            assert_eq!(name.sequence, 2, "{}: the next sequence id", name.table);
            name.table
        })
        .collect();
    changed.sort_unstable();
    assert_eq!(
        changed,
        ["address", "payment", "sales_order", "staff", "transaction"]
    );
    let orders = lines(&stack, &key_of("sales_order", &second, 2).unwrap()).await?;
    let changed_orders: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sales_order WHERE last_updated > now() - interval '10 minutes'",
    )
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(
        orders.len() as i64,
        changed_orders,
        "only the changed orders"
    );
    assert_eq!(
        lines(&stack, &key_of("payment", &second, 2).unwrap())
            .await?
            .len(),
        25
    );
    // Tables without changes keep their sequence id.
    assert_eq!(state(&stack, "currency").await?["sequence"], 1);
    Ok(())
}

#[tokio::test]
async fn a_late_commit_is_extracted_by_a_later_run() -> Result<()> {
    // The settle window is what makes this work: without it the same schedule loses the row.
    for (settle, expect_late_row) in [("2", true), ("0", false)] {
        let db = TotesysDatabase::seeded(Volumes {
            sales_orders: 10,
            purchase_orders: 10,
        })
        .await?;
        let mut stack = stack_for(&db, &[("SETTLE_SECONDS", settle)]).await?;
        let host = stack.host();
        extract(&host, "currency").await?;

        // A writer stamps a row, then commits only after the next run has read the table.
        let mut writer = db.conn().await?;
        writer.execute("BEGIN").await?;
        writer
            .execute("INSERT INTO currency VALUES (4, 'JPY', LOCALTIMESTAMP(3), LOCALTIMESTAMP(3))")
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during = extract(&host, "currency").await?;
        assert_eq!(during["rows"], 0, "uncommitted: invisible");
        writer.execute("COMMIT").await?;

        tokio::time::sleep(Duration::from_millis(2500)).await;
        extract(&host, "currency").await?;
        let keys = objects(&stack).await?;
        let late = match key_of("currency", &keys, 2) {
            Some(key) => lines(&stack, &key).await?,
            None => Vec::new(),
        };
        assert_eq!(
            late.iter().any(|r| r["currency_code"] == "JPY"),
            expect_late_row,
            "settle {settle}: {keys:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_crash_between_the_object_and_the_state_rewrites_the_same_key() -> Result<()> {
    let db = TotesysDatabase::seeded(Volumes {
        sales_orders: 30,
        purchase_orders: 5,
    })
    .await?;
    let mut stack = stack_for(&db, &[("SETTLE_SECONDS", "0")]).await?;
    let host = stack.host();
    let done = extract(&host, "sales_order").await?;
    let key = done["key"].as_str().unwrap().to_owned();

    // As if the worker died after writing the object, before recording it.
    let crashed = json!({"watermark": null, "sequence": 0,
        "pending": {"sequence": 1, "key": key, "upper": done["watermark"]}});
    aws_sdk_ssm::Client::new(&stack.sdk)
        .put_parameter()
        .name("/landfall/db-extract/sales_order")
        .value(crashed.to_string())
        .overwrite(true)
        .send()
        .await?;
    let retried = extract(&host, "sales_order").await?;
    assert_eq!(retried["key"], json!(key), "same key, overwritten");
    assert_eq!(retried["sequence"], 1);
    assert_eq!(objects(&stack).await?, vec![key.clone()]);
    assert_eq!(lines(&stack, &key).await?.len(), 30);
    let recorded = state(&stack, "sales_order").await?;
    assert_eq!(recorded["sequence"], 1);
    assert!(recorded.get("pending").is_none());

    // Nothing new: no object, the watermark moves, the sequence id does not.
    let idle = extract(&host, "sales_order").await?;
    assert_eq!(
        (idle["rows"].clone(), idle["sequence"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(objects(&stack).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_second_worker_for_the_same_table_steps_aside() -> Result<()> {
    let db = TotesysDatabase::seeded(Volumes {
        sales_orders: 5,
        purchase_orders: 5,
    })
    .await?;
    let mut stack = stack_for(&db, &[("SETTLE_SECONDS", "0")]).await?;
    let host = stack.host();
    let mut other = db.conn().await?;
    sqlx::query("SELECT pg_advisory_lock(hashtext('landfall-extract'), hashtext('staff'))")
        .execute(&mut other)
        .await?;
    let answer = extract(&host, "staff").await?;
    assert_eq!(answer["busy"], true);
    assert!(objects(&stack).await?.is_empty());
    drop(other);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(extract(&host, "staff").await?["sequence"], 1);
    Ok(())
}

#[tokio::test]
async fn one_failing_table_does_not_stop_the_others() -> Result<()> {
    let db = TotesysDatabase::seeded(Volumes {
        sales_orders: 5,
        purchase_orders: 5,
    })
    .await?;
    let mut stack = stack_for(
        &db,
        &[
            ("SETTLE_SECONDS", "0"),
            ("TABLES", "currency,no_such_table,department"),
        ],
    )
    .await?;
    dispatch_and_wait(&mut stack, 3).await?;
    let keys = objects(&stack).await?;
    assert!(
        key_of("currency", &keys, 1).is_some() && key_of("department", &keys, 1).is_some(),
        "{keys:?}"
    );
    let log = stack.function_log(FUNCTION);
    assert!(
        log.lines()
            .any(|l| l.contains("\"table failed\"") && l.contains("no_such_table: no such table")),
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn injection_shaped_names_are_refused_before_any_query() -> Result<()> {
    let db = TotesysDatabase::seeded(Volumes {
        sales_orders: 5,
        purchase_orders: 5,
    })
    .await?;
    let mut stack = stack_for(&db, &[("TABLES", "staff;DROP TABLE staff")]).await?;
    let host = stack.host();
    let err = extract(&host, "staff").await.unwrap_err().to_string();
    assert!(
        err.contains("Runtime.ExitError"),
        "the cold start fails: {err}"
    );
    let log = stack.function_log(FUNCTION);
    assert!(
        log.contains("cold start failed")
            && log.contains("TABLES")
            && log.contains("not an allowed SQL identifier"),
        "{log}"
    );
    assert_eq!(source_count(&db, "staff").await?, 20, "staff untouched");

    // A name that is not configured is refused by the worker, whatever it looks like.
    let mut stack = stack_for(&db, &[]).await?;
    let err = extract(&stack.host(), "staff\"; DROP TABLE staff; --")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a configured table"), "{err}");
    assert_eq!(source_count(&db, "staff").await?, 20);
    Ok(())
}

#[tokio::test]
async fn database_down_or_wrong_credentials_fail_clearly_without_leaking() -> Result<()> {
    let db = TotesysDatabase::seeded(Volumes {
        sales_orders: 5,
        purchase_orders: 5,
    })
    .await?;
    let password = "pw-must-never-appear-7731";
    let down = json!({"host": "127.0.0.1", "port": 1, "username": "postgres", "password": password, "dbname": db.name}).to_string();
    let mut stack = LocalStack::start_with_secrets(&[("TotesysSecret", down)]).await?;
    let err = extract(&stack.host(), "currency")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Retryable") && err.contains("currency"),
        "{err}"
    );
    assert!(objects(&stack).await?.is_empty());

    let wrong = json!({"host": "127.0.0.1", "port": 5432, "username": "no_such_user_here", "password": password, "dbname": db.name}).to_string();
    let mut stack = LocalStack::start_with_secrets(&[("TotesysSecret", wrong)]).await?;
    let err = extract(&stack.host(), "currency")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_user_here"), "{err}");
    let log = stack.function_log(FUNCTION);
    assert_eq!(
        log.matches("refreshing database credentials").count(),
        1,
        "{log}"
    );
    assert!(!log.contains(password) && !err.contains(password));
    Ok(())
}
