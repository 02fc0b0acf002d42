//! P3 under test: orders-loader on a local stack, loading into the local Redshift (the Data
//! API served over a PostgreSQL database of the test's own).

use crate::file_pipeline::{FilePipelineUnderTest, Soak};
use crate::postgres::{seed_customers, server, WarehouseDatabase};
use crate::soak::files::count_files;
use crate::soak::reconcile::{compare, expected_rows, found_total, numbered};
use crate::soak::{Input, Report, Rig};
use crate::LocalStack;
use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use landfall_devstack::sample::orders_csv;
use landfall_landing::Version;
use landfall_orders_load::audit::{AuditTable, Received, Status as AuditStatus};
use landfall_orders_load::crawler::Crawler;
use landfall_orders_load::warehouse::{OrdersWarehouse, UnknownCustomers};
use landfall_orders_load::{Done, Loader, Settings};
use landfall_redshift_data::Warehouse;
use landfall_runtime::Deadline;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::time::{Duration, SystemTime};

/// The function consuming P3's queue.
pub const FUNCTION: &str = "orders-loader";
/// The bucket its files land in.
pub const BUCKET: &str = "TransformedBucket";
/// Customers C0000… seeded in its Redshift (the orders name the first ten).
pub const CUSTOMERS: u32 = 10;

/// An invocation's deadline `seconds` from now.
pub fn deadline(seconds: u64) -> Deadline {
    Deadline::at(SystemTime::now() + Duration::from_secs(seconds))
}

/// P3 under test: a local stack whose Redshift Data API runs on a PostgreSQL database of its
/// own.
pub struct P3 {
    pub stack: LocalStack,
    pub db: WarehouseDatabase,
}

/// A local stack whose Redshift runs on a private database.
pub async fn fixture() -> Result<P3> {
    let db = WarehouseDatabase::empty_named("redshift").await?;
    let mut stack = LocalStack::start().await?;
    stack.serve_redshift(server().database(&db.name));
    Ok(P3 { stack, db })
}

impl P3 {
    /// The role the stack's COPY reads S3 as (orders-loader's `COPY_ROLE_ARN`): the
    /// local Redshift signs its reads with that role's session.
    pub fn copy_role(&self) -> String {
        self.stack.stack.functions[FUNCTION].environment["COPY_ROLE_ARN"].clone()
    }

    pub fn warehouse(&mut self) -> Warehouse {
        self.stack.data_api()
    }

    pub async fn sql(&self) -> Result<PgConnection> {
        Ok(PgConnection::connect_with(&server().database(&self.db.name)).await?)
    }

    /// The function's migrations applied (through its `{"migrate": {}}` event) and the
    /// customers seeded.
    pub async fn migrated(&mut self) -> Result<()> {
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
    pub async fn final_rows(&self) -> Result<BTreeMap<String, (String, String)>> {
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
    pub async fn dead_letters(&self) -> Result<Vec<String>> {
        self.stack.dead_letter_reasons("OrdersFilesDLQ").await
    }

    pub async fn count(&self, sql: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(sql)
            .fetch_one(&mut self.sql().await?)
            .await?)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.stack.sdk)
    }

    /// Audit items by key: `(status, item)`.
    pub async fn audit(
        &self,
    ) -> Result<BTreeMap<String, (String, BTreeMap<String, AttributeValue>)>> {
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

    pub fn loader(
        &mut self,
        unknown_customers: UnknownCustomers,
        warehouse_seconds: u64,
    ) -> Loader {
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
    pub fn received(&self, key: &str, version: &str, delivery: &str) -> Received {
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

impl FilePipelineUnderTest for P3 {
    const FUNCTION: &'static str = FUNCTION;
    const QUEUE: &'static str = "OrdersFilesQueue";
    const DLQ: &'static str = "OrdersFilesDLQ";
    const BUCKET: &'static str = BUCKET;
    const BAD_LINE: &'static str = "O2,C0001,2026-12-01 10:00:00,paid,ten,GBP\n";
    const SOAK: Soak = Soak {
        name: "P3 orders",
        tag: "p3",
        every: Duration::from_secs(2),
        sizes: &[10, 80, 400],
        bad_every: 8,
        twice_every: 6,
        archives: false,
    };

    async fn start() -> Result<P3> {
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

    /// Orders `O<n>`, of the first ten customers.
    fn rows(rows: Range<u32>) -> String {
        orders_csv(rows, CUSTOMERS, 0)
    }

    fn bad_words(line: u32) -> String {
        format!("line {line}, column 5 (amount)")
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

    fn soak_place(_n: u32) -> Option<(String, String)> {
        Some(("transformed/orders".into(), "orders".into()))
    }

    /// Every audit item LOADED, or SUPERSEDED by a later version; one item per version
    /// (moto names both uploads of the same bytes by their ETag: one).
    async fn soak_completed(rig: &Rig, pending: &[&Input]) -> Result<BTreeSet<String>> {
        let audited = audit_statuses(rig).await?;
        Ok(pending
            .iter()
            .filter(|i| {
                audited.get(&i.name).is_some_and(|statuses| {
                    statuses.iter().any(|s| s == "LOADED")
                        && statuses.iter().all(|s| s == "LOADED" || s == "SUPERSEDED")
                })
            })
            .map(|i| i.name.clone())
            .collect())
    }

    async fn soak_reconcile(rig: &Rig, inputs: &[&Input], report: &mut Report) -> Result<()> {
        let want = expected_rows(inputs.iter().copied());
        let mut conn = rig.redshift.conn().await?;
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT order_id, COUNT(*) FROM orders_enriched GROUP BY order_id")
                .fetch_all(&mut conn)
                .await?;
        let found = rows
            .into_iter()
            .map(|(id, n)| (numbered(&id, "O"), n as u64))
            .collect();
        let (lost, duplicated, mut stray) = compare(&want, &found);
        let staged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders_staging")
            .fetch_one(&mut conn)
            .await?;
        stray += staged as u64;
        report.rows += want.len() as u64;
        report.lines.push(format!(
            "{:<14}files {:>4}  rows {:>7}  in orders_enriched {:>7}  left staged {staged}",
            Self::SOAK.name,
            count_files(inputs),
            want.len(),
            found_total(&found)
        ));
        report.tally("P3 orders_enriched", lost, duplicated, stray);
        Ok(())
    }
}

/// File name → the status of each of its audit items (one per version).
async fn audit_statuses(rig: &Rig) -> Result<HashMap<String, Vec<String>>> {
    let mut statuses: HashMap<String, Vec<String>> = HashMap::new();
    let mut pages = aws_sdk_dynamodb::Client::new(&rig.stack.sdk)
        .scan()
        .table_name(rig.stack.resource("OrdersAuditTable"))
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item?;
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        let key = text("key");
        let name = key.rsplit('/').next().unwrap_or_default().to_owned();
        statuses.entry(name).or_default().push(text("status"));
    }
    Ok(statuses)
}

/// `columns` under `schema` as the bytes of a Parquet file.
pub fn parquet_bytes(
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
