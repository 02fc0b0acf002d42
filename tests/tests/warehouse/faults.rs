//! P4's faults: a loader killed mid-object, two loaders at once, facts whose dimension has
//! not arrived, a malformed Parquet object, a file that kills the loader.

use super::{count, loaded_manifests, On, Pipeline, VOLUMES};
use anyhow::Result;
use landfall_tests::pipeline::{load, LOADER};
use landfall_tests::star::assert_same;
use landfall_totesys_contract::processed::{Manifest, FAILED_PREFIX, LOADED_PREFIX, READY_PREFIX};
use landfall_totesys_warehouse::{Loaded, RunReport};
use std::time::Duration;

const CUT_AFTER_BYTES: u64 = 620_000;

#[tokio::test]
async fn a_loader_killed_mid_object_leaves_nothing_half_loaded_and_the_rerun_completes(
) -> Result<()> {
    let p = Pipeline::transformed().await?;
    let proxy = landfall_tests::fault_proxy::FaultProxy::start("127.0.0.1:5432").await?;
    let secret = aws_sdk_secretsmanager::Client::new(&p.stack.sdk)
        .create_secret()
        .name("warehouse-through-proxy")
        .secret_string(
            serde_json::json!({"host": "127.0.0.1", "port": proxy.port, "username": "postgres",
                               "password": "", "dbname": p.warehouse.name})
            .to_string(),
        )
        .send()
        .await?;
    let loader = p.loader(secret.arn().unwrap());

    // The session dies part-way through the run's traffic (670 KB in all, the facts last):
    // the seeded data and the load order are deterministic, so this lands inside a fact file
    // after another fact file committed.
    proxy.cut_after(CUT_AFTER_BYTES);
    let err = loader.run().await.expect_err("the connection was cut");
    use landfall_runtime::{Classify, Disposition};
    assert_eq!(err.disposition(), Disposition::Retryable, "{err}");

    // Mid-object: the session died inside a COPY.
    assert!(err.to_string().contains(" COPY: "), "{err}");

    // Exactly the manifests in the ledger are in the warehouse, nothing of the one cut: in a
    // first cycle every row of every file is new, so each table holds the sum of its files.
    let mut conn = p.warehouse.conn().await?;
    let ledger: Vec<String> = sqlx::query_scalar("SELECT manifest FROM landfall.load_ledger")
        .fetch_all(&mut conn)
        .await?;
    assert!(ledger.len() < 12, "the cut came before the end: {ledger:?}");
    let mut committed: std::collections::BTreeMap<String, i64> = Default::default();
    for key in &ledger {
        // Loaded manifests move on to loaded/ once their transaction committed.
        let moved = key.replacen(READY_PREFIX, LOADED_PREFIX, 1);
        let body = match p.get(&moved).await {
            Ok(body) => body,
            Err(_) => p.get(key).await?,
        };
        let manifest: Manifest = serde_json::from_slice(&body)?;
        for output in manifest.outputs {
            *committed.entry(output.table).or_default() += output.rows as i64;
        }
    }
    for (table, _) in landfall_tests::star::COLUMNS {
        let sql = format!("SELECT count(*) FROM {table}");
        let want = committed.get(table).copied().unwrap_or(0);
        assert_eq!(count(&mut conn, &sql).await?, want, "{table}");
    }
    assert!(
        committed.keys().any(|t| t.starts_with("fact_")),
        "a fact manifest committed before the cut: {committed:?}"
    );

    proxy.heal();
    let report = loader.run().await?;
    assert_eq!(report.loaded.len() + ledger.len(), 12, "{report:?}");
    assert_same(&p.warehouse().await?, &p.expected(None).await?);
    Ok(())
}

#[tokio::test]
async fn two_loaders_at_once_load_every_object_once() -> Result<()> {
    let p = Pipeline::transformed().await?;
    let secret = p.stack.resource("WarehouseSecret");
    let (a, b) = (p.loader(&secret), p.loader(&secret));
    let (ra, rb) = tokio::join!(a.run(), b.run());
    let (ra, rb): (RunReport, RunReport) = (ra?, rb?);
    assert_eq!(ra.loaded.len() + rb.loaded.len(), 12, "{ra:?}\n{rb:?}");
    assert_same(&p.warehouse().await?, &p.expected(None).await?);

    // Without the run lock, the ledger row alone decides: two sessions loading the same
    // manifest at once write it once.
    let mut conn = p.warehouse.conn().await?;
    sqlx::query("TRUNCATE landfall.load_ledger, fact_sales_order")
        .execute(&mut conn)
        .await?;
    let (key, manifest) = p.loaded_manifest("sales_order").await?;
    let files = p.files(&manifest).await?;
    let (mut one, mut two) = (p.warehouse.conn().await?, p.warehouse.conn().await?);
    let (x, y) = tokio::join!(
        landfall_totesys_warehouse::load::load_manifest(&mut one, &key, &manifest, &files),
        landfall_totesys_warehouse::load::load_manifest(&mut two, &key, &manifest, &files)
    );
    let mut outcomes = [x?, y?];
    outcomes.sort_by_key(|o| matches!(o, Loaded::Already));
    assert!(matches!(outcomes[0], Loaded::Rows(_)), "{outcomes:?}");
    assert_eq!(outcomes[1], Loaded::Already);
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM fact_sales_order").await?,
        VOLUMES.sales_orders as i64
    );
    Ok(())
}

#[tokio::test]
async fn facts_wait_for_a_dimension_that_has_not_arrived() -> Result<()> {
    facts_wait(On::Postgres).await
}

#[tokio::test]
async fn on_redshift_facts_wait_for_a_dimension_that_has_not_arrived() -> Result<()> {
    facts_wait(On::Redshift).await
}

// The body of two tests (clippy allows unwrap only in a #[test] itself).
#[allow(clippy::unwrap_used)]
async fn facts_wait(on: On) -> Result<()> {
    let mut p = Pipeline::transformed_on(on).await?;
    // staff's manifest is not ready yet (its transform is late): both order facts refer to it.
    let (staff, _) = p.ready_manifest("staff").await?;
    p.rename(&staff, "held/staff.json").await?;

    let report = load(&mut p.stack).await?;
    // Every dimension-only manifest loads (the calendar's days among them), and the payments,
    // which refer to no staff; the sales and purchase orders wait for their staff.
    assert_eq!(loaded_manifests(&report), 9, "{report}");
    let waiting: Vec<&str> = report["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[1].as_str().unwrap())
        .collect();
    assert_eq!(waiting.len(), 2, "{report}");
    assert!(
        waiting
            .iter()
            .all(|why| why.contains("violates foreign key constraint")
                && why.contains("is not present in table")),
        "{waiting:?}"
    );
    assert!(
        waiting
            .iter()
            .any(|why| why.contains("(sales_staff_id)=") && why.contains("\"dim_staff\"")),
        "{waiting:?}"
    );
    assert!(
        waiting.iter().all(|why| why.contains("\"dim_staff\"")),
        "{waiting:?}"
    );
    let mut conn = p.warehouse.conn().await?;
    for table in ["fact_sales_order", "fact_purchase_orders", "dim_staff"] {
        let sql = format!("SELECT count(*) FROM {table}");
        assert_eq!(count(&mut conn, &sql).await?, 0, "{table}");
    }
    assert!(count(&mut conn, "SELECT count(*) FROM dim_transaction").await? > 0);
    assert!(count(&mut conn, "SELECT count(*) FROM fact_payment").await? > 0);
    // Freshness knows nothing of the waiting tables is visible yet.
    let unknown: Vec<&str> = report["freshness"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["visible_through"].is_null())
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(unknown, ["staff", "sales_order", "purchase_order"]);
    let log = p.stack.function_log(LOADER);
    assert!(
        log.contains("waiting for dimension rows; retried next run"),
        "{log}"
    );

    p.rename("held/staff.json", &staff).await?;
    let report = load(&mut p.stack).await?;
    assert_eq!(loaded_manifests(&report), 3, "{report}");
    assert_same(&p.warehouse().await?, &p.expected(None).await?);
    Ok(())
}

/// On Redshift the checks run inside the load's batch: a file whose rows are not the
/// manifest's fails the whole transaction (the manifest's other file, merged before it, does
/// not stay), and the manifest is quarantined with the reason; what does not depend on it
/// loads.
#[tokio::test]
async fn on_redshift_a_file_unlike_its_manifest_is_quarantined_whole() -> Result<()> {
    let mut p = Pipeline::transformed_on(On::Redshift).await?;
    // The address manifest with a second file, the counterparties', which claims a row more
    // than it has.
    let (key, mut manifest) = p.ready_manifest("address").await?;
    let (_, counterparty) = p.ready_manifest("counterparty").await?;
    let mut unlike = counterparty.outputs[0].clone();
    unlike.rows += 1;
    manifest.outputs.push(unlike);
    let tables: Vec<&str> = manifest.outputs.iter().map(|o| o.table.as_str()).collect();
    assert_eq!(tables, ["dim_location", "dim_counterparty"]);
    p.put(&key, serde_json::to_vec(&manifest)?.into()).await?;

    let report = load(&mut p.stack).await?;
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{report}");
    let reason = rejected[0][1].as_str().unwrap();
    assert!(
        reason.contains(&manifest.outputs[1].key) && reason.contains("the manifest says"),
        "{reason}"
    );
    let failed = key.replacen(READY_PREFIX, FAILED_PREFIX, 1);
    assert_eq!(p.keys(FAILED_PREFIX).await?, [failed]);
    // The good first file did not stay; the counterparties' own manifest loaded.
    let mut conn = p.warehouse.conn().await?;
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM dim_location").await?,
        0
    );
    assert!(count(&mut conn, "SELECT count(*) FROM dim_counterparty").await? > 0);
    assert_eq!(
        count(&mut conn, "SELECT count(*) FROM landfall.load_problems").await?,
        0,
        "problems leave with their transaction"
    );
    Ok(())
}

/// On Redshift a load still running when the run stops following it
/// (`STATEMENT_BUDGET_SECONDS`) fails the run, goes on in Redshift and commits; the next run
/// finds the manifest loaded and loads nothing twice.
#[tokio::test]
async fn on_redshift_a_load_that_outlives_its_budget_is_found_by_the_next_run() -> Result<()> {
    let mut p = Pipeline::transformed_on(On::Redshift).await?;
    // Everything but the sales orders, through the function (which migrates the schema).
    let (held, _) = p.ready_manifest("sales_order").await?;
    p.rename(&held, "held/sales_order.json").await?;
    load(&mut p.stack).await?;
    p.rename("held/sales_order.json", &held).await?;

    // A reader holds the ledger: the load's LOCK waits behind it, past the budget.
    let mut reader = p.warehouse.conn().await?;
    let mut read = sqlx::Connection::begin(&mut reader).await?;
    sqlx::query("LOCK TABLE landfall.load_ledger IN ACCESS SHARE MODE")
        .execute(&mut *read)
        .await?;
    let impatient = p.redshift_loader(Duration::from_secs(2));
    let err = impatient
        .run()
        .await
        .expect_err("the load outlives its budget");
    assert!(err.to_string().contains("still"), "{err}");
    let mut conn = p.warehouse.conn().await?;
    let facts = "SELECT count(*) FROM fact_sales_order";
    assert_eq!(count(&mut conn, facts).await?, 0);
    read.rollback().await?;

    let report = load(&mut p.stack).await?;
    assert_eq!(loaded_manifests(&report), 0, "{report}");
    assert_eq!(report["already_loaded"], 1, "{report}");
    assert_eq!(count(&mut conn, facts).await?, VOLUMES.sales_orders as i64);
    let ledger = format!("SELECT count(*) FROM landfall.load_ledger WHERE manifest = '{held}'");
    assert_eq!(count(&mut conn, &ledger).await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_malformed_parquet_object_is_quarantined_and_the_others_load() -> Result<()> {
    let mut p = Pipeline::transformed().await?;
    let (key, manifest) = p.ready_manifest("transaction").await?;
    let file = &manifest.outputs[0];
    assert_eq!(file.table, "dim_transaction");
    let good = p.get(&file.key).await?;
    p.put(
        &file.key,
        bytes::Bytes::from_static(b"PAR1 this is not parquet PAR1"),
    )
    .await?;

    let report = load(&mut p.stack).await?;
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{report}");
    let reason = rejected[0][1].as_str().unwrap();
    assert!(
        reason.contains(&key)
            && reason.contains(&file.key)
            && reason.contains("not a readable Parquet file"),
        "{reason}"
    );
    let failed = key.replacen(READY_PREFIX, FAILED_PREFIX, 1);
    assert_eq!(p.keys(FAILED_PREFIX).await?, std::slice::from_ref(&failed));
    let head = p
        .stack
        .s3()
        .head_object()
        .bucket(p.processed())
        .key(&failed)
        .send()
        .await?;
    assert!(head.metadata().unwrap()["reason"].contains("not a readable Parquet file"));
    // Payments refer to the quarantined transactions and wait; everything else loaded.
    assert_eq!(report["waiting"].as_array().unwrap().len(), 1, "{report}");
    let want = p.expected(None).await?;
    let got = p.warehouse().await?;
    for (table, rows) in &want {
        if table == "dim_transaction" || table == "fact_payment" {
            assert!(got[table].is_empty(), "{table}");
        } else {
            assert_eq!(&got[table], rows, "{table}");
        }
    }

    // The runbook's redrive: fix the object, move the manifest back to ready/.
    p.put(&file.key, good).await?;
    p.rename(&failed, &key).await?;
    let report = load(&mut p.stack).await?;
    assert_eq!(loaded_manifests(&report), 2, "{report}");
    assert_same(&p.warehouse().await?, &want);
    Ok(())
}

/// A Parquet page that panics the decoder (parquet 59.3, `fuzz/known`): the runs that meet
/// it die, and the third quarantines its manifest with the reason instead of decoding it
/// again, so the warehouse is not stopped for good; the other objects load.
#[tokio::test]
async fn a_file_that_kills_the_loader_is_quarantined_instead_of_stopping_every_run() -> Result<()> {
    let known = std::fs::read(
        landfall_tests::workspace_root().join("fuzz/known/warehouse_parquet-page-decoding-panic"),
    )?;
    // The fuzz input: a table index, a row count, then the Parquet file (dim_currency's).
    let (rows, poison) = (
        usize::from(known[1]),
        bytes::Bytes::from(known[2..].to_vec()),
    );
    let mut p = Pipeline::transformed().await?;
    let (key, mut manifest) = p.ready_manifest("currency").await?;
    assert_eq!(manifest.outputs[0].table, "dim_currency");
    manifest.outputs[0].rows = rows;
    p.put(&manifest.outputs[0].key, poison).await?;
    p.put(&key, serde_json::to_vec(&manifest)?.into()).await?;

    // The first two runs die on it (a run killed from outside while decoding a good file
    // is given another chance); the third quarantines it.
    let host = p.stack.host();
    let event =
        serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    for run in 1..=2 {
        let died = host.invoke(LOADER, event.to_string().into()).await?;
        assert!(
            died.function_error.is_some(),
            "run {run}: the decoder's panic ends it: {:?}",
            died.json()
        );
    }

    let report = load(&mut p.stack).await?;
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{report}");
    let reason = rejected[0][1].as_str().unwrap();
    assert!(reason.contains(&key) && reason.contains("died"), "{reason}");
    let failed = key.replacen(READY_PREFIX, FAILED_PREFIX, 1);
    assert_eq!(p.keys(FAILED_PREFIX).await?, std::slice::from_ref(&failed));
    assert!(p.keys("decoding/").await?.is_empty(), "the note is gone");
    // The rest of the run loaded: every other manifest is loaded or waits on the currencies.
    let waiting = report["waiting"].as_array().map_or(0, Vec::len);
    assert!(loaded_manifests(&report) > 0, "{report}");
    assert_eq!(p.keys(READY_PREFIX).await?.len(), waiting, "{report}");
    Ok(())
}
