//! P4 end to end on the local stack: a seeded totesys → db-extract → star-transform →
//! warehouse-loader (real binaries) → the warehouse, compared table by table, column by
//! column, with SQL written independently against the source
//! (`landfall_tests::star::expected`) — after the first cycle and again after churn, on
//! PostgreSQL and on Redshift (the local Data API) by the same test; a source version
//! extracted twice; a fact file at the analyze threshold. The faults: `faults.rs` here.

mod faults;

use anyhow::{anyhow, Result};
use landfall_tests::pipeline::{self, drain, extract_all, load, LOADER};
use landfall_tests::postgres::{TotesysDatabase, WarehouseDatabase};
use landfall_tests::star::{assert_same, expected, from_warehouse, Tables};
use landfall_tests::LocalStack;
use landfall_totesys_contract::processed::{Manifest, LOADED_PREFIX, READY_PREFIX};
use landfall_totesys_seed::Volumes;
use landfall_totesys_warehouse::{Engine, Loaded, PgSslMode, Settings, WarehouseLoader};
use serde_json::Value;
use sqlx::PgConnection;
use std::time::Duration;

const VOLUMES: Volumes = Volumes {
    sales_orders: 1500,
    purchase_orders: 600,
};

/// A seeded source, an empty warehouse, and the stack with every object transformed.
struct Pipeline {
    totesys: TotesysDatabase,
    warehouse: WarehouseDatabase,
    stack: LocalStack,
}

/// Where the star schema lives (the template's `WarehouseEngine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Postgres,
    /// The local Data API, running the statements on a PostgreSQL database of its own.
    Redshift,
}

impl Pipeline {
    async fn transformed() -> Result<Pipeline> {
        Pipeline::transformed_on(On::Postgres).await
    }

    async fn transformed_on(on: On) -> Result<Pipeline> {
        let totesys = TotesysDatabase::seeded(VOLUMES).await?;
        let warehouse = WarehouseDatabase::empty_named(match on {
            On::Postgres => "warehouse",
            On::Redshift => "redshift",
        })
        .await?;
        let mut stack = match on {
            On::Postgres => pipeline::stack(totesys.secret(), Some(warehouse.secret())).await?,
            On::Redshift => {
                let database = landfall_tests::postgres::server().database(&warehouse.name);
                pipeline::stack_on_redshift(totesys.secret(), database).await?
            }
        };
        extract_all(&mut stack).await?;
        drain(&mut stack).await?;
        Ok(Pipeline {
            totesys,
            warehouse,
            stack,
        })
    }

    async fn expected(&self, earlier: Option<&Tables>) -> Result<Tables> {
        expected(&mut self.totesys.conn().await?, earlier).await
    }

    async fn warehouse(&self) -> Result<Tables> {
        from_warehouse(&mut self.warehouse.conn().await?).await
    }

    fn processed(&self) -> String {
        self.stack.resource("ProcessedBucket")
    }

    /// The loader crate in-process, against the same moto and database as the function,
    /// reaching PostgreSQL through the secret `secret_arn`.
    fn loader(&self, secret_arn: &str) -> WarehouseLoader {
        self.loader_on(Engine::Postgres {
            credentials: landfall_secrets::CredentialSource::new(
                aws_sdk_secretsmanager::Client::new(&self.stack.sdk),
                secret_arn,
            ),
            ssl_mode: PgSslMode::Disable,
        })
    }

    /// As `loader`, on the stack's local Redshift (whose schema a run of the function has
    /// migrated), following each statement for `budget`.
    fn redshift_loader(&mut self, budget: Duration) -> WarehouseLoader {
        let env = &self.stack.stack.functions[LOADER].environment;
        let copy_role_arn = env["COPY_ROLE_ARN"].clone();
        let engine = Engine::Redshift(landfall_totesys_warehouse::redshift::Redshift {
            warehouse: self.stack.data_api(),
            copy_role_arn,
            bucket: self.processed(),
            statement_budget: budget,
        });
        self.loader_on(engine)
    }

    fn loader_on(&self, engine: Engine) -> WarehouseLoader {
        let env = &self.stack.stack.functions[LOADER].environment;
        WarehouseLoader::new(
            self.stack.s3(),
            engine,
            landfall_totesys_extract::StateStore::new(
                aws_sdk_ssm::Client::new(&self.stack.sdk),
                &env["EXTRACT_STATE_PREFIX"],
            ),
            Settings {
                processed_bucket: self.processed(),
                migrate: true,
                time_budget: Duration::from_secs(600),
            },
        )
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.stack.keys(&self.processed(), prefix).await
    }

    async fn get(&self, key: &str) -> Result<bytes::Bytes> {
        Ok(self
            .stack
            .s3()
            .get_object()
            .bucket(self.processed())
            .key(key)
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes())
    }

    /// A manifest's Parquet files, fetched, as the loader hands them to `load_manifest`.
    async fn files(
        &self,
        manifest: &Manifest,
    ) -> Result<Vec<landfall_totesys_warehouse::load::File>> {
        let mut files = Vec::new();
        for output in &manifest.outputs {
            files.push(landfall_totesys_warehouse::load::File {
                table: output.table.clone(),
                key: output.key.clone(),
                rows: output.rows,
                bytes: self.get(&output.key).await?,
            });
        }
        Ok(files)
    }

    async fn put(&self, key: &str, body: bytes::Bytes) -> Result<()> {
        self.stack
            .s3()
            .put_object()
            .bucket(self.processed())
            .key(key)
            .body(body.into())
            .send()
            .await?;
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.put(to, self.get(from).await?).await?;
        self.stack
            .s3()
            .delete_object()
            .bucket(self.processed())
            .key(from)
            .send()
            .await?;
        Ok(())
    }

    /// The first loaded manifest of a source table.
    async fn loaded_manifest(&self, source_table: &str) -> Result<(String, Manifest)> {
        let key = self
            .keys(LOADED_PREFIX)
            .await?
            .into_iter()
            .find(|k| k.contains(&format!("/{source_table}-")))
            .ok_or_else(|| anyhow!("no loaded manifest of {source_table}"))?;
        let manifest = serde_json::from_slice(&self.get(&key).await?)?;
        Ok((key, manifest))
    }

    /// The ready manifest of a source table (exactly one expected).
    async fn ready_manifest(&self, source_table: &str) -> Result<(String, Manifest)> {
        for key in self.keys(READY_PREFIX).await? {
            let manifest: Manifest = serde_json::from_slice(&self.get(&key).await?)?;
            if manifest.table == source_table {
                return Ok((key, manifest));
            }
        }
        Err(anyhow!("no ready manifest of {source_table}"))
    }
}

fn loaded_manifests(report: &Value) -> usize {
    report["loaded"].as_array().map_or(0, Vec::len)
}

async fn count(conn: &mut PgConnection, sql: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(conn).await?)
}

#[tokio::test]
async fn totesys_reaches_the_warehouse_and_changes_follow() -> Result<()> {
    changes_follow(On::Postgres).await
}

/// The same pipeline and the same assertions with `WarehouseEngine=redshift`: history facts,
/// the newest dimension version winning over a late older one, idempotent reloads.
#[tokio::test]
async fn totesys_reaches_redshift_and_changes_follow() -> Result<()> {
    changes_follow(On::Redshift).await
}

// The body of two tests (clippy allows unwrap only in a #[test] itself).
#[allow(clippy::unwrap_used)]
async fn changes_follow(on: On) -> Result<()> {
    let mut p = Pipeline::transformed_on(on).await?;
    let report = load(&mut p.stack).await?;
    // The eleven objects' manifests and the calendar's days.
    assert_eq!(loaded_manifests(&report), 12, "{report}");
    let first = p.expected(None).await?;
    assert_same(&p.warehouse().await?, &first);
    assert_same(&first, &p.warehouse().await?);
    assert!(p.keys(READY_PREFIX).await?.is_empty());
    assert_eq!(p.keys(LOADED_PREFIX).await?.len(), 12);
    // Every table is visible up to db-extract's watermark: the lag is this test's age.
    let lag = report["freshness"]["tables"].as_array().unwrap();
    assert_eq!(lag.len(), 11, "{report}");
    assert!(
        lag.iter()
            .all(|t| t["lag_seconds"].as_f64().is_some_and(|s| s < 600.0)),
        "{report}"
    );

    // New orders (new fact versions next to the old ones), changed addresses (dim_location
    // and every counterparty using them), staff and their departments.
    landfall_totesys_seed::churn(&mut p.totesys.conn().await?, 7, 25, 6).await?;
    extract_all(&mut p.stack).await?;
    drain(&mut p.stack).await?;
    // While the churn's sales orders are held back, sales_order is visible only up to the
    // upper bound of its first object (db-extract's metadata, carried by the manifest).
    let (held, manifest) = p.ready_manifest("sales_order").await?;
    assert_eq!(manifest.sequence, 2);
    p.rename(&held, "held/sales_order.json").await?;
    let partial = load(&mut p.stack).await?;
    let sales = partial["freshness"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "sales_order")
        .unwrap()
        .clone();
    let mut first_upper = None;
    for key in p.keys(LOADED_PREFIX).await? {
        let loaded: Manifest = serde_json::from_slice(&p.get(&key).await?)?;
        if loaded.table == "sales_order" && loaded.sequence == 1 {
            first_upper = loaded.upper;
        }
    }
    let first_upper = first_upper.expect("sequence 1 carries its upper bound");
    assert_eq!(sales["visible_through"], first_upper.as_str(), "{sales}");
    assert!(first_upper < manifest.upper.unwrap());
    p.rename("held/sales_order.json", &held).await?;
    let report = load(&mut p.stack).await?;
    assert!(
        loaded_manifests(&partial) + loaded_manifests(&report) >= 5,
        "{report}"
    );
    assert!(report["waiting"].as_array().unwrap().is_empty(), "{report}");
    let second = p.expected(Some(&first)).await?;
    assert_ne!(first["dim_counterparty"], second["dim_counterparty"]);
    assert!(second["fact_sales_order"].len() > first["fact_sales_order"].len() + 25);
    let now = p.warehouse().await?;
    assert_same(&now, &second);
    assert_same(&second, &now);

    // Record ids are the warehouse's: one per fact row, no gaps from a retried load.
    let mut conn = p.warehouse.conn().await?;
    let (rows, ids, top) = sqlx::query_as::<_, (i64, i64, i32)>(
        "SELECT count(*), count(DISTINCT sales_record_id), max(sales_record_id) FROM fact_sales_order",
    )
    .fetch_one(&mut conn)
    .await?;
    assert_eq!((rows, ids), (second["fact_sales_order"].len() as i64, rows));
    assert_eq!(i64::from(top), rows);

    // A third run finds nothing new and changes nothing.
    let report = load(&mut p.stack).await?;
    assert_eq!(loaded_manifests(&report), 0, "{report}");
    assert_same(&p.warehouse().await?, &second);

    // The first cycle's address and staff objects arriving again, late (under another name,
    // so the ledger does not stop them): their older versions change no dimension row.
    for source in ["address", "staff"] {
        let mut first = None;
        for key in p.keys(LOADED_PREFIX).await? {
            let manifest: Manifest = serde_json::from_slice(&p.get(&key).await?)?;
            if manifest.table == source && manifest.sequence == 1 {
                first = Some(key);
            }
        }
        let key = first.expect("the first object's manifest");
        let late = format!("{READY_PREFIX}replayed-{source}-1.json");
        p.put(&late, p.get(&key).await?).await?;
    }
    let report = load(&mut p.stack).await?;
    let replayed = report["loaded"].as_array().unwrap();
    assert_eq!(replayed.len(), 2, "{report}");
    for manifest in replayed {
        let rows = manifest["rows"].as_array().unwrap();
        assert!(!rows.is_empty(), "{manifest}");
        assert!(rows.iter().all(|r| r[1] == 0), "{manifest}");
    }
    assert_same(&p.warehouse().await?, &second);
    Ok(())
}

#[tokio::test]
async fn a_source_version_extracted_again_is_merged_once_and_references_need_no_triggers(
) -> Result<()> {
    let mut p = Pipeline::transformed().await?;
    load(&mut p.stack).await?;
    let mut conn = p.warehouse.conn().await?;
    let facts = count(&mut conn, "SELECT count(*) FROM fact_sales_order").await?;
    assert_eq!(facts, VOLUMES.sales_orders as i64);

    // The same source versions again, under a manifest the ledger does not know (an extract
    // re-run over a window already loaded): the straight COPY meets the unique version
    // index, and the file goes through the merge instead, which skips every row.
    let (_, manifest) = p.loaded_manifest("sales_order").await?;
    let files = p.files(&manifest).await?;
    let again = landfall_totesys_warehouse::load::load_manifest(
        &mut conn,
        "ready/sales_order-extracted-again.json",
        &manifest,
        &files,
    )
    .await?;
    let Loaded::Rows(rows) = again else {
        panic!("{again:?}")
    };
    assert!(rows.contains(&("fact_sales_order", 0)), "{rows:?}");
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM fact_sales_order").await?,
        facts
    );
    assert_same(&p.warehouse().await?, &p.expected(None).await?);

    // No per-row reference triggers on the facts; each reference is documented.
    let triggers = count(
        &mut conn,
        "SELECT count(*) FROM pg_trigger WHERE tgconstraint <> 0 AND tgrelid IN \
         ('fact_sales_order'::regclass, 'fact_purchase_orders'::regclass, 'fact_payment'::regclass)",
    )
    .await?;
    assert_eq!(triggers, 0);
    let comment: Option<String> =
        sqlx::query_scalar("SELECT col_description('fact_sales_order'::regclass, 7)")
            .fetch_one(&mut conn)
            .await?;
    assert_eq!(comment.as_deref(), Some("references dim_staff(staff_id)"));
    Ok(())
}

/// `file`'s rows `times` over, each copy with sales_order_ids of its own (none of the
/// original's): new source versions.
fn repeated_sales_orders(file: &bytes::Bytes, times: i32) -> Result<(bytes::Bytes, usize)> {
    use arrow_array::{Array, Int32Array, RecordBatch};
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file.clone())?
            .build()?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    let schema = batches[0].schema();
    let id = schema.index_of("sales_order_id")?;
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None)?;
    let mut rows = 0;
    for copy in 0..times {
        for batch in &batches {
            let ids = batch
                .column(id)
                .as_any()
                .downcast_ref::<Int32Array>()
                .ok_or_else(|| anyhow!("sales_order_id is not int32"))?;
            let shifted = Int32Array::from_iter_values(
                ids.values().iter().map(|v| v + (copy + 1) * 1_000_000),
            );
            let mut columns = batch.columns().to_vec();
            columns[id] = std::sync::Arc::new(shifted);
            writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
            rows += batch.num_rows();
        }
    }
    writer.close()?;
    Ok((out.into(), rows))
}

#[tokio::test]
async fn a_fact_file_at_the_analyze_threshold_leaves_the_planner_its_statistics() -> Result<()> {
    let mut p = Pipeline::transformed().await?;
    load(&mut p.stack).await?;
    let mut conn = p.warehouse.conn().await?;
    // Only the loader may refresh them here.
    sqlx::query("ALTER TABLE fact_sales_order SET (autovacuum_enabled = false)")
        .execute(&mut conn)
        .await?;
    let estimate =
        "SELECT reltuples::bigint FROM pg_class WHERE oid = 'fact_sales_order'::regclass";
    assert!(count(&mut conn, estimate).await? <= VOLUMES.sales_orders as i64);

    // 100,500 rows (the loader's threshold is 100,000), straight into the table.
    let (_, manifest) = p.loaded_manifest("sales_order").await?;
    let fact = p
        .files(&manifest)
        .await?
        .into_iter()
        .find(|f| f.table == "fact_sales_order")
        .unwrap();
    let times = 100_000 / VOLUMES.sales_orders as i32 + 1;
    let (bytes, rows) = repeated_sales_orders(&fact.bytes, times)?;
    assert!(rows >= 100_000, "{rows}");
    let big = landfall_totesys_warehouse::load::File {
        table: fact.table.clone(),
        key: "big/fact_sales_order.parquet".into(),
        rows,
        bytes,
    };
    let loaded = landfall_totesys_warehouse::load::load_manifest(
        &mut conn,
        "ready/sales_order-big.json",
        &manifest,
        std::slice::from_ref(&big),
    )
    .await?;
    assert_eq!(
        loaded,
        Loaded::Rows(vec![("fact_sales_order", rows as u64)])
    );
    let total = count(&mut conn, "SELECT count(*) FROM fact_sales_order").await?;
    assert_eq!(total, (VOLUMES.sales_orders as usize + rows) as i64);
    // ANALYZE ran in the load's transaction: the planner's row estimate is the table's size.
    let estimated = count(&mut conn, estimate).await?;
    assert!(
        (total * 9 / 10..=total * 11 / 10).contains(&estimated),
        "estimated {estimated} rows of {total}"
    );
    Ok(())
}
