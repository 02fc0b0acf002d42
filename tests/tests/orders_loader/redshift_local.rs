//! The local Redshift (`tools/redshift-local`) as the Data API and Redshift's SQL describe
//! it: batches are transactions and TRUNCATE commits; a call is a session and a batch at
//! most 40 statements; COPY reads moto's S3 as CSV and
//! Parquet with its IAM_ROLE's session; what Redshift refuses, it refuses.

use anyhow::Result;
use landfall_redshift_data::{DataApiError, Status, Warehouse};
use landfall_tests::file_pipeline::orders::{fixture, parquet_bytes, BUCKET};
use serde_json::json;
use std::time::Duration;

/// Asserts that the local Redshift refuses `sql` with an error that says `expected`.
async fn assert_refused(warehouse: &Warehouse, sql: String, expected: &str) -> Result<()> {
    let err = refusal(warehouse, sql, expected).await?;
    assert!(err.contains(expected), "{err}");
    Ok(())
}

/// The error a statement the local Redshift must refuse fails with (`name`: its token).
async fn refusal(warehouse: &Warehouse, sql: String, name: &str) -> Result<String> {
    let id = warehouse.submit_batch(&[sql], name, name).await?;
    let outcome = warehouse.follow(&id, Duration::from_secs(30)).await;
    Ok(outcome.expect_err("the statement should fail").to_string())
}

// ------------------------------------------------------------------ the Data API itself

#[tokio::test]
async fn data_api_batches_are_transactions_and_truncate_commits() -> Result<()> {
    let mut f = fixture().await?;
    let warehouse = f.warehouse();
    let budget = Duration::from_secs(30);

    let id = warehouse
        .submit("CREATE TABLE t (n INTEGER NOT NULL, label VARCHAR(8))", &[])
        .await?;
    assert_eq!(
        warehouse.follow(&id, budget).await?.status,
        Status::Finished
    );

    // A failure in the middle: everything before it rolls back, everything after is aborted.
    let sqls: Vec<String> = [
        "INSERT INTO t VALUES (1, 'one')",
        "INSERT INTO t VALUES (NULL, 'null')",
        "INSERT INTO t VALUES (3, 'three')",
    ]
    .map(String::from)
    .to_vec();
    let id = warehouse.submit_batch(&sqls, "token-1", "batch-1").await?;
    let err = warehouse.follow(&id, budget).await.unwrap_err();
    let DataApiError::Failed { sql, error, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(sql.as_deref(), Some("INSERT INTO t VALUES (NULL, 'null')"));
    assert!(error.contains("null value"), "{error}");
    let described = warehouse.describe(&id).await?;
    let states: Vec<Status> = described.sub_statements.iter().map(|s| s.status).collect();
    assert_eq!(states, [Status::Finished, Status::Failed, Status::Aborted]);
    assert_eq!(f.count("SELECT count(*) FROM t").await?, 0);

    // The same ClientToken finds the first submission instead of running it again.
    assert_eq!(
        warehouse.submit_batch(&sqls, "token-1", "batch-1").await?,
        id
    );
    let listed = warehouse.list("batch-1").await?;
    assert_eq!((listed.len(), listed[0].status), (1, Status::Failed));

    // TRUNCATE commits the transaction it runs in, as on Redshift: the insert before it
    // stays committed (then truncated), the one after it rolls back with the failure.
    let sqls: Vec<String> = [
        "INSERT INTO t VALUES (1, 'one')",
        "TRUNCATE t",
        "INSERT INTO t VALUES (2, 'two')",
        "INSERT INTO t VALUES (NULL, 'x')",
    ]
    .map(String::from)
    .to_vec();
    let id = warehouse.submit_batch(&sqls, "token-2", "batch-2").await?;
    assert!(warehouse.follow(&id, budget).await.is_err());
    assert_eq!(f.count("SELECT count(*) FROM t").await?, 0);

    // Parameters are values, never SQL; results come back typed.
    let rows = warehouse
        .query(
            "INSERT INTO t VALUES (7, :label)",
            &[("label", "it's")],
            budget,
        )
        .await;
    assert!(rows.is_err(), "an INSERT has no result set");
    let rows = warehouse
        .query(
            "SELECT n, label, n > 5 AS big FROM t WHERE label = :label",
            &[("label", "it's")],
            budget,
        )
        .await?;
    assert_eq!(
        rows,
        vec![vec![
            Some("7".into()),
            Some("it's".into()),
            Some("true".into())
        ]]
    );

    // A running statement can be cancelled: ABORTED, and nothing it did stays.
    let id = warehouse
        .submit_batch(
            &[
                "INSERT INTO t VALUES (8, 'eight')".into(),
                "SELECT pg_sleep(30)".into(),
            ],
            "token-3",
            "batch-3",
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let running = warehouse.describe(&id).await?;
    assert_eq!(running.status, Status::Started);
    let client_cancel = warehouse.cancel(&id).await?;
    assert!(client_cancel);
    let err = warehouse.follow(&id, budget).await.unwrap_err();
    assert!(
        matches!(
            err,
            DataApiError::Failed {
                status: Status::Aborted,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(f.count("SELECT count(*) FROM t WHERE n = 8").await?, 0);
    Ok(())
}

/// Each Data API call is a session of its own (its temporary tables end with it), and a
/// batch holds at most 40 statements (BatchExecuteStatement, `Sqls`).
#[tokio::test]
async fn data_api_calls_are_sessions_and_batches_hold_forty_statements() -> Result<()> {
    let mut f = fixture().await?;
    let warehouse = f.warehouse();
    let budget = Duration::from_secs(30);
    let temporary = ["CREATE TEMPORARY TABLE scratch (n INTEGER)".to_owned()];
    for token in ["session-1", "session-2"] {
        // The second would fail "already exists" if the first call's session lived on.
        let id = warehouse.submit_batch(&temporary, token, token).await?;
        warehouse.follow(&id, budget).await?;
    }

    let forty: Vec<String> = (0..40).map(|n| format!("SELECT {n}")).collect();
    let id = warehouse.submit_batch(&forty, "forty", "forty").await?;
    assert_eq!(
        warehouse.follow(&id, budget).await?.sub_statements.len(),
        40
    );
    let mut too_many = forty.clone();
    too_many.push("SELECT 40".into());
    let refused = warehouse
        .submit_batch(&too_many, "forty-one", "forty-one")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("ValidationException")
            || format!("{refused:?}").contains("less than or equal to 40"),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn data_api_copies_csv_and_parquet_from_moto() -> Result<()> {
    let mut f = fixture().await?;
    let warehouse = f.warehouse();
    let budget = Duration::from_secs(30);
    let bucket = f.stack.resource(BUCKET);
    let role = f.copy_role();
    let id = warehouse
        .submit("CREATE TABLE o (order_id VARCHAR(16), order_ts TIMESTAMP, amount DECIMAL(12,2), note VARCHAR(32))", &[])
        .await?;
    warehouse.follow(&id, budget).await?;

    // Two CSV objects under one prefix: a plain COPY takes both (Redshift's prefix rule).
    let csv = "order_id,order_ts,amount,note\no1,2026-12-01T10:00:00,1.50,\"a, quoted\"\no2,2026-12-01 11:00:00,2,\n";
    f.stack
        .put(
            BUCKET,
            "transformed/orders/in/a.csv",
            csv.as_bytes().to_vec(),
        )
        .await?;
    f.stack
        .put(
            BUCKET,
            "transformed/orders/in/a.csv.2",
            csv.as_bytes().to_vec(),
        )
        .await?;
    let copy = format!("COPY o FROM 's3://{bucket}/transformed/orders/in/a.csv' IAM_ROLE '{role}' FORMAT AS CSV IGNOREHEADER 1 TIMEFORMAT 'auto'");
    let id = warehouse.submit_batch(&[copy], "c1", "copy-1").await?;
    let done = warehouse.follow(&id, budget).await?;
    assert_eq!(done.sub_statements[0].result_rows, 4);

    // A manifest names exactly one object.
    let manifest = json!({"entries": [{"url": format!("s3://{bucket}/transformed/orders/in/a.csv"), "mandatory": true}]});
    f.stack
        .put(
            BUCKET,
            "transformed/orders/m/one.manifest",
            manifest.to_string().into_bytes(),
        )
        .await?;
    let copy = format!("COPY o (order_id, order_ts, amount, note) FROM 's3://{bucket}/transformed/orders/m/one.manifest' IAM_ROLE '{role}' MANIFEST FORMAT AS CSV IGNOREHEADER 1");
    let id = warehouse.submit_batch(&[copy], "c2", "copy-2").await?;
    assert_eq!(
        warehouse.follow(&id, budget).await?.sub_statements[0].result_rows,
        2
    );
    assert_eq!(
        f.count("SELECT count(*) FROM o WHERE note = 'a, quoted'")
            .await?,
        3
    );
    assert_eq!(
        f.count("SELECT count(*) FROM o WHERE note IS NULL").await?,
        3
    );

    // Parquet, columns by position, decoded with the arrow crates.
    f.stack
        .put(
            BUCKET,
            "transformed/orders/p/o.parquet",
            orders_parquet(&[("p1", 1250), ("p2", -5)]),
        )
        .await?;
    let copy = format!("COPY o FROM 's3://{bucket}/transformed/orders/p/o.parquet' IAM_ROLE '{role}' FORMAT AS PARQUET");
    let id = warehouse
        .submit_batch(&["DELETE FROM o".into(), copy], "c3", "copy-3")
        .await?;
    assert_eq!(
        warehouse.follow(&id, budget).await?.sub_statements[1].result_rows,
        2
    );
    let rows = warehouse
        .query(
            "SELECT order_id, order_ts::text, amount::text FROM o ORDER BY order_id",
            &[],
            budget,
        )
        .await?;
    assert_eq!(
        rows,
        vec![
            vec![
                Some("p1".into()),
                Some("2025-11-24 16:00:00".into()),
                Some("12.50".into())
            ],
            vec![
                Some("p2".into()),
                Some("2025-11-24 16:00:00".into()),
                Some("-0.05".into())
            ],
        ]
    );

    // A bad row fails the COPY, naming the table; an option the emulation lacks is refused.
    f.stack
        .put(
            BUCKET,
            "transformed/orders/bad/b.csv",
            b"o9,not a time,1,\n".to_vec(),
        )
        .await?;
    let copy =
        format!("COPY o FROM 's3://{bucket}/transformed/orders/bad/b.csv' IAM_ROLE '{role}' CSV");
    let err = refusal(&warehouse, copy, "copy-4").await?;
    assert!(
        err.contains("Load into table 'o' failed") && err.contains("timestamp"),
        "{err}"
    );
    let copy = format!(
        "COPY o FROM 's3://{bucket}/transformed/orders/bad/b.csv' IAM_ROLE '{role}' CSV MAXERROR 5"
    );
    assert_refused(&warehouse, copy, "does not emulate the option MAXERROR").await?;
    Ok(())
}

/// The local Redshift refuses what Redshift refuses, so SQL and files that pass here pass
/// there: a VARCHAR's length counts bytes, a CHAR takes no multibyte character,
/// PostgreSQL-only SQL fails, and COPY from Parquet takes no CSV options, no Parquet type
/// other than the column's and no other number of columns.
#[tokio::test]
async fn the_local_redshift_refuses_what_redshift_refuses() -> Result<()> {
    let mut f = fixture().await?;
    let warehouse = f.warehouse();
    let budget = Duration::from_secs(30);
    let bucket = f.stack.resource(BUCKET);
    let role = f.copy_role();
    let id = warehouse
        .submit("CREATE TABLE v (note VARCHAR(4))", &[])
        .await?;
    warehouse.follow(&id, budget).await?;
    // Four characters fit; three that take six bytes do not (é is 2 bytes, 日 is 3).
    f.stack
        .put(BUCKET, "transformed/orders/v/ok.csv", b"abcd\n".to_vec())
        .await?;
    f.stack
        .put(
            BUCKET,
            "transformed/orders/v/wide.csv",
            "né日\n".as_bytes().to_vec(),
        )
        .await?;
    for (key, fails) in [
        ("transformed/orders/v/ok.csv", false),
        ("transformed/orders/v/wide.csv", true),
    ] {
        let copy = format!("COPY v FROM 's3://{bucket}/{key}' IAM_ROLE '{role}' FORMAT AS CSV");
        let id = warehouse.submit_batch(&[copy], key, key).await?;
        let outcome = warehouse.follow(&id, budget).await;
        match (fails, outcome) {
            (false, Ok(_)) => {}
            (true, Err(err)) => assert!(
                err.to_string()
                    .contains("String length exceeds DDL length: column note is 4 bytes long and a value has 6 bytes"),
                "{err}"
            ),
            (fails, outcome) => panic!("{key}: expected failure {fails}, got {outcome:?}"),
        }
    }
    assert_eq!(
        f.count("SELECT count(*) FROM v").await?,
        1,
        "the wide row rolled back"
    );
    // A CHAR takes single-byte characters only, whatever its length.
    let id = warehouse
        .submit("CREATE TABLE c (code CHAR(8))", &[])
        .await?;
    warehouse.follow(&id, budget).await?;
    let copy = format!(
        "COPY c FROM 's3://{bucket}/transformed/orders/v/wide.csv' IAM_ROLE '{role}' FORMAT AS CSV"
    );
    assert_refused(
        &warehouse,
        copy,
        "Multibyte character not supported for CHAR",
    )
    .await?;

    // Parquet: COPY converts no types and maps columns by position, as many as the table's.
    let id = warehouse
        .submit("CREATE TABLE o (order_id VARCHAR(16), order_ts TIMESTAMP, amount DECIMAL(12,2), note VARCHAR(32))", &[])
        .await?;
    warehouse.follow(&id, budget).await?;
    use arrow_array::{ArrayRef, Decimal128Array, StringArray, TimestampMillisecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let ids: ArrayRef = Arc::new(StringArray::from(vec!["p1"]));
    let micros = Field::new(
        "order_ts",
        DataType::Timestamp(TimeUnit::Microsecond, None),
        false,
    );
    let stamp: ArrayRef = Arc::new(arrow_array::TimestampMicrosecondArray::from(vec![0]));
    let amount = |precision| -> ArrayRef {
        Arc::new(
            Decimal128Array::from(vec![100])
                .with_precision_and_scale(precision, 2)
                .expect("a test decimal"),
        )
    };
    let note: ArrayRef = Arc::new(StringArray::from(vec![None::<&str>]));
    let field = |name: &str, data_type: DataType| Field::new(name, data_type, true);
    for (key, fields, columns, refused) in [
        (
            "transformed/orders/pq/narrow-decimal.parquet",
            vec![
                field("order_id", DataType::Utf8),
                micros.clone(),
                field("amount", DataType::Decimal128(10, 2)),
                field("note", DataType::Utf8),
            ],
            vec![ids.clone(), stamp.clone(), amount(10), note.clone()],
            "incompatible Parquet schema for column 'amount'",
        ),
        (
            "transformed/orders/pq/milliseconds.parquet",
            vec![
                field("order_id", DataType::Utf8),
                field("order_ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
                field("amount", DataType::Decimal128(12, 2)),
                field("note", DataType::Utf8),
            ],
            vec![
                ids.clone(),
                Arc::new(TimestampMillisecondArray::from(vec![0])) as ArrayRef,
                amount(12),
                note.clone(),
            ],
            "incompatible Parquet schema for column 'order_ts'",
        ),
        (
            "transformed/orders/pq/three-columns.parquet",
            vec![
                field("order_id", DataType::Utf8),
                micros.clone(),
                field("amount", DataType::Decimal128(12, 2)),
            ],
            vec![ids.clone(), stamp.clone(), amount(12)],
            "has 3 columns and the target 4",
        ),
    ] {
        let bytes = parquet_bytes(Arc::new(Schema::new(fields)), columns);
        f.stack.put(BUCKET, key, bytes).await?;
        let copy = format!("COPY o FROM 's3://{bucket}/{key}' IAM_ROLE '{role}' FORMAT AS PARQUET");
        assert_refused(&warehouse, copy, refused).await?;
    }
    assert_eq!(f.count("SELECT count(*) FROM o").await?, 0);

    // COPY reads S3 as its IAM_ROLE: only what that role may read, and only a role it has.
    f.stack
        .put(BUCKET, "elsewhere/v.csv", b"abcd\n".to_vec())
        .await?;
    let outside = format!("COPY v FROM 's3://{bucket}/elsewhere/v.csv' IAM_ROLE '{role}' CSV");
    assert_refused(&warehouse, outside, "AccessDenied").await?;
    let denied = f.stack.take_denials().await?;
    assert!(
        denied.len() == 1
            && denied[0].contains("OrdersCopyRole")
            && denied[0].contains("elsewhere/v.csv"),
        "{denied:?}"
    );
    let other = format!(
        "COPY v FROM 's3://{bucket}/transformed/orders/v/ok.csv' IAM_ROLE 'arn:aws:iam::123456789012:role/other' CSV"
    );
    assert_refused(&warehouse, other, "not authorized to assume IAM Role").await?;
    for (sql, lacking) in [
        (
            "INSERT INTO v VALUES ('a') ON CONFLICT DO NOTHING".to_owned(),
            "ON CONFLICT",
        ),
        (
            "INSERT INTO v VALUES ('a') RETURNING note".to_owned(),
            "RETURNING",
        ),
        (
            "CREATE TABLE w (id INT PRIMARY KEY)".to_owned(),
            "PRIMARY KEY",
        ),
        (
            format!(
                "COPY v FROM 's3://{bucket}/transformed/orders/p/' IAM_ROLE '{role}' FORMAT AS PARQUET REGION 'eu-west-2'"
            ),
            "REGION argument is not supported for PARQUET",
        ),
    ] {
        let id = warehouse.submit(&sql, &[]).await?;
        let err = warehouse.follow(&id, budget).await.unwrap_err().to_string();
        assert!(err.contains(lacking), "{sql}: {err}");
    }
    Ok(())
}

/// An orders-shaped Parquet file with the staging columns `o` has (no customer).
fn orders_parquet(rows: &[(&str, i128)]) -> Vec<u8> {
    use arrow_array::{ArrayRef, Decimal128Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Utf8, false),
        Field::new(
            "order_ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("amount", DataType::Decimal128(12, 2), false),
        Field::new("note", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        )),
        Arc::new(TimestampMicrosecondArray::from(vec![
            1_764_000_000_000_000;
            rows.len()
        ])),
        Arc::new(
            Decimal128Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .with_precision_and_scale(12, 2)
                .expect("a test Parquet file"),
        ),
        Arc::new(StringArray::from(vec![None::<&str>; rows.len()])),
    ];
    parquet_bytes(schema, columns)
}
