//! P3 on the local stack: the devstack's Redshift Data API against real SQL (transactions,
//! TRUNCATE's commit, COPY from moto as CSV and Parquet, statement states), then
//! orders-loader (the real binary) end to end — audit items, the crawler, the final table
//! after single, duplicate, out-of-order and bad deliveries, a failure in the middle of the
//! transaction, one file delivered twice at once in two execution environments — and the load
//! library run directly for many deliveries at once and an invocation that runs out of time.

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use landfall_devstack::sample::orders_csv;
use landfall_landing::Version;
use landfall_orders_load::audit::{AuditTable, Received, Status as AuditStatus};
use landfall_orders_load::crawler::Crawler;
use landfall_orders_load::warehouse::{OrdersWarehouse, UnknownCustomers};
use landfall_orders_load::{Done, LoadError, Loader, Settings};
use landfall_redshift_data::{DataApiError, Status, Target, Warehouse};
use landfall_runtime::{Classify, Deadline, Disposition};
use landfall_tests::file_pipeline::{self, FilePipelineUnderTest};
use landfall_tests::postgres::{seed_customers, server, WarehouseDatabase};
use landfall_tests::LocalStack;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

const FUNCTION: &str = "orders-loader";
const BUCKET: &str = "TransformedBucket";
const CUSTOMERS: u32 = 10;

struct Fixture {
    stack: LocalStack,
    db: WarehouseDatabase,
}

/// A local stack whose Redshift runs on a private database.
async fn fixture() -> Result<Fixture> {
    let db = WarehouseDatabase::empty_named("redshift").await?;
    let mut stack = LocalStack::start().await?;
    stack.serve_redshift(server().database(&db.name));
    Ok(Fixture { stack, db })
}

impl Fixture {
    /// The role the stack's COPY reads S3 as (orders-loader's `COPY_ROLE_ARN`): the
    /// local Redshift signs its reads with that role's session.
    fn copy_role(&self) -> String {
        self.stack.stack.functions[FUNCTION].environment["COPY_ROLE_ARN"].clone()
    }

    fn warehouse(&mut self) -> Warehouse {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(landfall_tests::REGION))
            .endpoint_url(self.stack.served_url())
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "local"),
            ))
            .build();
        let mut warehouse = Warehouse::new(
            aws_sdk_redshiftdata::Client::new(&sdk),
            Target::Workgroup {
                name: "landfall".into(),
                secret_arn: None,
            },
            "dev",
        );
        warehouse.poll = Duration::from_millis(50);
        warehouse
    }

    async fn sql(&self) -> Result<PgConnection> {
        Ok(PgConnection::connect_with(&server().database(&self.db.name)).await?)
    }

    /// The function's migrations applied (through its `{"migrate": {}}` event) and the
    /// customers seeded.
    async fn migrated(&mut self) -> Result<()> {
        let host = self.stack.host();
        let answer = host
            .invoke(FUNCTION, json!({"migrate": {}}).to_string().into())
            .await?;
        assert_eq!(
            answer.function_error,
            None,
            "{}",
            String::from_utf8_lossy(&answer.payload)
        );
        assert_eq!(answer.json()?, json!({"applied": [1]}));
        seed_customers(&mut self.sql().await?, CUSTOMERS).await?;
        Ok(())
    }

    /// `order_id → (status, source_key)` of the final table, asserting one row per order.
    async fn final_rows(&self) -> Result<BTreeMap<String, (String, String)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT order_id, status, source_key FROM orders_enriched ORDER BY order_id",
        )
        .fetch_all(&mut self.sql().await?)
        .await?;
        let count = rows.len();
        let map: BTreeMap<_, _> = rows.into_iter().map(|(o, s, k)| (o, (s, k))).collect();
        assert_eq!(map.len(), count, "an order is in the final table twice");
        Ok(map)
    }

    /// Why each message of P3's DLQ was dead-lettered.
    async fn dead_letters(&self) -> Result<Vec<String>> {
        self.stack.dead_letter_reasons("OrdersFilesDLQ").await
    }

    async fn count(&self, sql: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(sql)
            .fetch_one(&mut self.sql().await?)
            .await?)
    }

    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.stack.sdk)
    }

    /// Audit items by key: `(status, item)`.
    async fn audit(&self) -> Result<BTreeMap<String, (String, BTreeMap<String, AttributeValue>)>> {
        let items = self
            .dynamodb()
            .scan()
            .table_name(self.stack.resource("OrdersAuditTable"))
            .send()
            .await?
            .items
            .unwrap_or_default();
        Ok(items
            .into_iter()
            .map(|item| {
                let text = |k: &str| {
                    item.get(k)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                (text("key"), (text("status"), item.into_iter().collect()))
            })
            .collect())
    }

    fn loader(&mut self, unknown_customers: UnknownCustomers, warehouse_seconds: u64) -> Loader {
        let warehouse = self.warehouse();
        let sdk = self.stack.sdk.clone();
        let s3 = self.stack.s3();
        Loader {
            s3,
            audit: AuditTable {
                client: aws_sdk_dynamodb::Client::new(&sdk),
                table: self.stack.resource("OrdersAuditTable"),
            },
            crawler: Crawler {
                client: aws_sdk_glue::Client::new(&sdk),
                name: self.stack.resource("OrdersCrawler"),
            },
            warehouse: OrdersWarehouse {
                warehouse,
                copy_role_arn: self.copy_role(),
                unknown_customers,
            },
            settings: Settings {
                manifest_bucket: self.stack.resource(BUCKET),
                manifest_prefix: "manifests/orders".into(),
                check_bytes_per_second: 50 << 20,
                warehouse_seconds,
                copy_bytes_per_second: 20 << 20,
                audit_budget: Duration::from_secs(5),
            },
        }
    }

    /// The audit item a notification of `key` at version id `version` makes.
    fn received(&self, key: &str, version: &str, delivery: &str) -> Received {
        let bucket = self.stack.resource(BUCKET);
        let version = Version::Id(version.into());
        Received {
            file: Received::file_id(&bucket, key, &version),
            bucket,
            key: key.into(),
            version,
            size: 1000,
            etag: "e".into(),
            event_time: "2026-12-02T08:00:00.000Z".into(),
            status: AuditStatus::Received,
            delivery: delivery.into(),
            received_at: landfall_orders_load::timestamp_now(),
        }
    }
}

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

fn deadline(seconds: u64) -> Deadline {
    Deadline::at(SystemTime::now() + Duration::from_secs(seconds))
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

fn parquet_bytes(
    schema: std::sync::Arc<arrow_schema::Schema>,
    columns: Vec<arrow_array::ArrayRef>,
) -> Vec<u8> {
    let batch =
        arrow_array::RecordBatch::try_new(schema.clone(), columns).expect("a test Parquet file");
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None)
        .expect("a test Parquet file");
    writer.write(&batch).expect("a test Parquet file");
    writer.close().expect("a test Parquet file");
    bytes
}

// ------------------------------------------------------------------ orders-loader end to end

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

impl FilePipelineUnderTest for Fixture {
    const FUNCTION: &'static str = FUNCTION;
    const QUEUE: &'static str = "OrdersFilesQueue";
    const DLQ: &'static str = "OrdersFilesDLQ";
    const BUCKET: &'static str = BUCKET;

    async fn start() -> Result<Fixture> {
        let mut f = fixture().await?;
        f.stack
            .set_function_env(FUNCTION, "REDSHIFT_POLL_MILLISECONDS", Some("50"));
        f.migrated().await?;
        assert!(f.stack.deliver(FUNCTION).await?.failed.is_empty()); // the s3:TestEvent
        Ok(f)
    }

    fn stack(&mut self) -> &mut LocalStack {
        &mut self.stack
    }

    fn key(name: &str) -> String {
        format!("transformed/orders/2026/12/04/{name}")
    }

    fn file(rows: u32) -> Vec<u8> {
        orders_csv(0..rows, CUSTOMERS, 0).into_bytes()
    }

    fn bad_file(good: u32) -> (Vec<u8>, String) {
        let mut text = orders_csv(0..good, CUSTOMERS, 0);
        text.push_str("O2,C0001,2026-12-01 10:00:00,paid,ten,GBP\n");
        let line = good + 2;
        (text.into_bytes(), format!("line {line}, column 5 (amount)"))
    }

    /// The same orders at revision 1: a later revision of each.
    fn changed_file(rows: u32) -> Vec<u8> {
        orders_csv(0..rows, CUSTOMERS, 1).into_bytes()
    }

    /// None: P3's notification admits only `transformed/orders/`, all of which it takes (a
    /// key outside it is refused by orders-loader's own check).
    fn unknown_keys() -> Vec<(String, &'static str)> {
        Vec::new()
    }

    /// The load library's whole load (checked, COPY, the procedure, the ledger), as the
    /// function runs it for that notification; the audit not yet LOADED.
    async fn loaded_by_a_delivery_that_died(&mut self, key: &str, version: &str) -> Result<()> {
        let file = self.received(key, version, "a delivery that died/1");
        let done = self
            .loader(UnknownCustomers::Reject, 5)
            .load(&file, &deadline(120))
            .await?;
        assert!(matches!(done, Done::Loaded(_)), "{done:?}");
        Ok(())
    }

    /// The orders at the correction's revision (its statuses), and the version's ledger row.
    async fn assert_serves(&mut self, key: &str, version: &str, rows: u32) -> Result<()> {
        let statuses: Vec<String> = orders_csv(0..rows, CUSTOMERS, 1)
            .lines()
            .skip(1)
            .map(|line| line.split(',').nth(3).unwrap_or_default().to_owned())
            .collect();
        let found = self.final_rows().await?;
        let found: Vec<&str> = found.values().map(|(status, _)| status.as_str()).collect();
        assert_eq!(found, statuses);
        let ledger: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM orders_ledger WHERE source_key = $1 AND source_version = $2",
        )
        .bind(key)
        .bind(version)
        .fetch_one(&mut self.sql().await?)
        .await?;
        assert_eq!(ledger, 1);
        Ok(())
    }

    /// No order, no ledger row, nothing staged; the audit FAILED, not retryable.
    async fn assert_nothing_loaded(&mut self, key: &str, words: &str) -> Result<()> {
        assert_eq!(self.count("SELECT count(*) FROM orders_enriched").await?, 0);
        assert_eq!(self.count("SELECT count(*) FROM orders_staging").await?, 0);
        assert_eq!(self.count("SELECT count(*) FROM orders_ledger").await?, 0);
        let audit = self.audit().await?;
        let (status, item) = &audit[key];
        assert_eq!(status, "FAILED");
        assert_eq!(item["retryable"].as_bool().ok(), Some(&false));
        assert!(
            item["error_message"]
                .as_s()
                .is_ok_and(|m| m.contains(words)),
            "{item:?}"
        );
        Ok(())
    }

    /// Each order once, one ledger row, an empty staging table, the audit LOADED.
    async fn assert_loaded_once(&mut self, key: &str, _version: &str, rows: u32) -> Result<()> {
        assert_eq!(self.final_rows().await?.len(), rows as usize);
        assert_eq!(self.count("SELECT count(*) FROM orders_ledger").await?, 1);
        assert_eq!(self.count("SELECT count(*) FROM orders_staging").await?, 0);
        assert_eq!(self.audit().await?[key].0, "LOADED");
        Ok(())
    }
}

/// One notification delivered twice at the same time, in two execution environments, then
/// once more after both finished: one load, and no delivery failed or dead-lettered.
#[tokio::test]
async fn one_file_delivered_twice_at_once_and_again_later_loads_once() -> Result<()> {
    file_pipeline::delivered_twice_at_once_and_again_later::<Fixture>().await
}

/// A good file: each order once, audited LOADED.
#[tokio::test]
async fn a_good_file_loads_once() -> Result<()> {
    file_pipeline::a_good_file_loads_once::<Fixture>().await?;
    Ok(())
}

/// A correction's orders stay when the first upload's notification comes back late.
#[tokio::test]
async fn a_newer_version_wins_over_an_older_one_delivered_late() -> Result<()> {
    file_pipeline::a_newer_version_wins_over_an_older_one_delivered_late::<Fixture>().await
}

/// Loaded by a delivery that died before its audit: the redelivery finds the ledger row.
#[tokio::test]
async fn a_redelivery_after_a_load_that_died_completes_it_once() -> Result<()> {
    file_pipeline::a_redelivery_after_a_load_that_died_completes_it_once::<Fixture>().await?;
    Ok(())
}

/// A bad field: dead-lettered at once, naming its line and column, nothing loaded.
#[tokio::test]
async fn a_bad_line_is_dead_lettered_at_once_naming_it() -> Result<()> {
    file_pipeline::a_bad_line_is_dead_lettered_at_once_naming_it::<Fixture>().await
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

// ------------------------------------------------------------------ the library, where one host cannot

#[tokio::test]
async fn many_files_delivered_at_once_and_twice_each_load_exactly_once() -> Result<()> {
    let mut f = fixture().await?;
    f.migrated().await?;
    let loader = f.loader(UnknownCustomers::Load, 5);
    let mut files = Vec::new();
    for n in 0..6u32 {
        let key = format!("transformed/orders/many/{n}.csv");
        // Overlapping orders (n*3 .. n*3+5), each file a newer revision; one unknown customer each.
        let mut body = orders_csv(n * 3..n * 3 + 5, CUSTOMERS, n);
        body.push_str(&format!("U{n},C9999,2026-11-01 00:00:00,placed,1.00,GBP\n"));
        let version = f.stack.put(BUCKET, &key, body.into_bytes()).await?;
        files.push((key, version));
    }
    let deliveries: Vec<Received> = files
        .iter()
        .flat_map(|(key, version)| {
            ["m1/1", "m2/1"].map(|d| {
                let mut r = f.received(key, version, &format!("{key}/{d}"));
                r.size = 400;
                r
            })
        })
        .collect();
    let within = deadline(120);
    let loads = deliveries.iter().map(|r| loader.load(r, &within));
    let outcomes = futures::future::join_all(loads).await;
    for outcome in &outcomes {
        assert!(matches!(outcome, Ok(Done::Loaded(_))), "{outcome:?}");
    }
    let rows = f.final_rows().await?;
    // Orders 0..20 and six unknown-customer orders, each once; the newest revision wins.
    assert_eq!(rows.len(), 20 + 6);
    assert!(
        rows["O0000003"].1.ends_with("many/1.csv"),
        "{:?}",
        rows["O0000003"]
    );
    assert!(rows["O0000019"].1.ends_with("many/5.csv"));
    assert_eq!(f.count("SELECT count(*) FROM orders_ledger").await?, 6);
    assert_eq!(
        f.count("SELECT count(*) FROM orders_enriched WHERE customer_name IS NULL")
            .await?,
        6
    );
    assert_eq!(
        f.count("SELECT sum(unknown_customers)::bigint FROM orders_ledger")
            .await?,
        6
    );
    assert_eq!(f.count("SELECT count(*) FROM orders_staging").await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_load_that_runs_out_of_time_is_followed_by_its_redelivery_not_repeated() -> Result<()> {
    let mut f = fixture().await?;
    f.migrated().await?;
    let key = "transformed/orders/slow.csv";
    let version = f
        .stack
        .put(BUCKET, key, orders_csv(0..4, CUSTOMERS, 0).into_bytes())
        .await?;
    let file = f.received(key, &version, "m/1");

    // Not enough time for the warehouse step: it is not started at all.
    let patient = f.loader(UnknownCustomers::Reject, 10_000);
    let err = patient.load(&file, &deadline(120)).await.unwrap_err();
    assert_eq!(err.disposition(), Disposition::Retryable);
    assert!(
        err.to_string().contains("not starting the warehouse load"),
        "{err}"
    );
    assert!(f
        .warehouse()
        .list(&OrdersWarehouse::statement_name(key, &version))
        .await?
        .is_empty());

    // Started, but held up (a person holds staging) past the invocation's time.
    let mut holder = f.sql().await?;
    sqlx::raw_sql("BEGIN; LOCK orders_staging")
        .execute(&mut holder)
        .await?;
    let loader = f.loader(UnknownCustomers::Reject, 1);
    let err = loader.load(&file, &deadline(23)).await.unwrap_err();
    let LoadError::Warehouse(ref inner) = err else {
        panic!("{err}")
    };
    let running = inner.still_running().expect("still running").to_owned();
    let failure = err.to_function_error(&loader.settings, file.size);
    assert_eq!(failure.disposition, Disposition::Retryable);
    assert!(failure.retry_after.is_some());

    // A redelivery while it still waits adopts the running statement instead of
    // submitting the load again.
    let err = loader.load(&file, &deadline(23)).await.unwrap_err();
    let LoadError::Warehouse(ref inner) = err else {
        panic!("{err}")
    };
    assert_eq!(inner.still_running(), Some(running.as_str()));

    // The lock goes; the transaction commits once, and the next delivery finds it done.
    sqlx::raw_sql("COMMIT").execute(&mut holder).await?;
    let done = loader.load(&file, &deadline(120)).await?;
    let Done::Loaded(loaded) = done else {
        panic!("{done:?}")
    };
    assert_eq!(loaded.ledger.rows_loaded, 4);
    assert_eq!(
        f.warehouse()
            .list(&OrdersWarehouse::statement_name(key, &version))
            .await?
            .len(),
        1
    );
    assert_eq!(f.final_rows().await?.len(), 4);
    Ok(())
}
