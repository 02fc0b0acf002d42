//! Loading files into the real MariaDB: a dataset with a load procedure through its stage
//! (staging, checking, promoting). A load that fails part-way: `recovery.rs` here; an upsert
//! dataset and the order of one key's uploads: `upsert.rs`; the server and the connection:
//! `server.rs`.

mod recovery;
mod server;
mod upsert;

use anyhow::Result;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use landfall_devstack::sample::{price_index_csv, PRICE_INDEX_HEADER};
use landfall_mysql_datasets::{Dataset, Datasets, Promotion};
use landfall_mysql_load::scripts::{self, Applied};
use landfall_mysql_load::{Attempt, BatchId, LedgerSource, MysqlError, MysqlLoader};
use landfall_tests::mysql::TestDatabase;
use landfall_tests::workspace_root;
use mysql_async::prelude::Queryable;

/// price_index with its load procedure: the stage → promote path.
fn price_index() -> Dataset {
    landfall_tests::mysql::procedure_dataset()
}

/// price_index as bundled: an upsert, straight into the table.
fn price_index_upsert() -> Dataset {
    let dataset = Datasets::load(&workspace_root().join("config/datasets.toml"))
        .expect("the bundled datasets file")
        .get("price_index")
        .expect("price_index is configured")
        .clone();
    assert_eq!(dataset.promotion(), Promotion::Upsert);
    dataset
}

/// A database with the scripts applied, a loader on it, and the price_index dataset
/// (with its load procedure).
async fn fresh() -> Result<(TestDatabase, MysqlLoader, Dataset)> {
    let db = TestDatabase::create_with_scripts().await?;
    let loader = MysqlLoader::new(db.pool());
    Ok((db, loader, price_index()))
}

/// The first attempt at loading version v1 of `key`.
fn first_attempt(key: &str) -> Attempt {
    Attempt::new(BatchId::for_object("landing", key, "v1"), "attempt-1")
}

/// The file in small chunks, as S3 would deliver a large body.
fn body(text: &str) -> BoxStream<'static, std::io::Result<Bytes>> {
    let chunks: Vec<std::io::Result<Bytes>> = text
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks).boxed()
}

fn source(key: &str) -> LedgerSource {
    LedgerSource {
        dataset: "price_index".into(),
        key: key.into(),
        version: "v1".into(),
        landed: Some("2026-12-05T08:00:00.000Z".into()),
    }
}

/// A loader reaching the test database through `proxy`.
fn loader_through(
    proxy: &landfall_tests::fault_proxy::FaultProxy,
    db: &TestDatabase,
) -> Result<MysqlLoader> {
    // prefer_socket=false: otherwise the driver switches to the local Unix socket, past the proxy.
    let url = format!(
        "mysql://root@127.0.0.1:{}/{}?prefer_socket=false",
        proxy.port, db.name
    );
    Ok(MysqlLoader::new(mysql_async::Pool::new(
        mysql_async::Opts::from_url(&url)?,
    )))
}

#[tokio::test]
async fn a_file_loads_once_and_a_redelivery_changes_nothing() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let batch = first_attempt("mysql/price_index/a.csv");
    let rows = loader
        .stage(
            &dataset,
            &batch,
            0,
            "mysql/price_index/a.csv",
            body(&price_index_csv(0..500)),
        )
        .await?;
    assert_eq!(rows, 500);
    assert_eq!(db.rows("price_index").await?, 0, "staged is not visible");

    let promoted = loader
        .promote(
            &dataset,
            &batch,
            1,
            rows,
            &source("mysql/price_index/a.csv"),
        )
        .await?;
    assert_eq!((promoted.rows, promoted.already_loaded), (500, false));
    assert_eq!(db.rows("price_index").await?, 500);
    assert_eq!(db.rows("price_index_stage").await?, 0);
    assert_eq!(db.rows("landfall_load_ledger").await?, 1);
    let price: Option<String> = db
        .conn()
        .await?
        .query_first("SELECT CAST(price AS CHAR) FROM price_index WHERE product = 'Item 42'")
        .await?;
    assert_eq!(price.as_deref(), Some("42.42"), "exact decimals");

    // Redelivery: stage again and promote again — the ledger answers, nothing doubles.
    loader
        .stage(
            &dataset,
            &batch,
            0,
            "mysql/price_index/a.csv",
            body(&price_index_csv(0..500)),
        )
        .await?;
    let again = loader
        .promote(
            &dataset,
            &batch,
            1,
            rows,
            &source("mysql/price_index/a.csv"),
        )
        .await?;
    assert!(again.already_loaded);
    assert_eq!(db.rows("price_index").await?, 500);
    assert_eq!(db.rows("price_index_stage").await?, 0);
    Ok(())
}

#[tokio::test]
async fn bad_input_names_file_line_and_column_and_keeps_nothing() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let batch = first_attempt("mysql/price_index/bad.csv");
    // Line 301 is bad, long after the first chunks reached the server.
    let mut text = price_index_csv(0..299);
    text.push_str("2024-01,Canada,Food,Bread,kg,1.2.3\n");
    text.push_str(&price_index_csv(300..400)[PRICE_INDEX_HEADER.len()..]);
    let err = loader
        .stage(
            &dataset,
            &batch,
            0,
            "mysql/price_index/bad.csv",
            body(&text),
        )
        .await
        .unwrap_err();
    let MysqlError::BadInput(bad) = &err else {
        panic!("{err}")
    };
    assert_eq!((bad.line, bad.column), (301, Some(6)));
    assert_eq!(bad.file, "mysql/price_index/bad.csv");
    assert_eq!(
        db.rows("price_index_stage").await?,
        0,
        "rows sent before the bad line are rolled back"
    );
    assert_eq!(db.rows("price_index").await?, 0);
    Ok(())
}

#[tokio::test]
async fn parts_of_a_split_file_become_visible_together() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let batch = first_attempt("mysql/price_index/big.csv");
    let first = loader
        .stage(
            &dataset,
            &batch,
            0,
            "big.csv#0",
            body(&price_index_csv(0..300)),
        )
        .await?;
    let second = loader
        .stage(
            &dataset,
            &batch,
            1,
            "big.csv#1",
            body(&price_index_csv(300..700)),
        )
        .await?;
    assert_eq!(db.rows("price_index").await?, 0);

    // A promote that expects more rows than were staged (a part missing) keeps nothing.
    let err = loader
        .promote(&dataset, &batch, 3, first + second + 10, &source("big.csv"))
        .await
        .unwrap_err();
    assert!(matches!(err, MysqlError::CountMismatch { .. }), "{err}");
    assert_eq!(db.rows("price_index").await?, 0);
    assert_eq!(
        db.rows("landfall_load_ledger").await?,
        0,
        "the ledger row rolled back too"
    );

    let promoted = loader
        .promote(&dataset, &batch, 2, first + second, &source("big.csv"))
        .await?;
    assert_eq!(promoted.rows, 700);
    assert_eq!(db.rows("price_index").await?, 700);
    Ok(())
}

#[tokio::test]
async fn two_concurrent_promotions_load_once() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let loader = std::sync::Arc::new(MysqlLoader::new(db.pool()));
    let dataset = price_index();
    let batch = first_attempt("mysql/price_index/twice.csv");
    let rows = loader
        .stage(
            &dataset,
            &batch,
            0,
            "twice.csv",
            body(&price_index_csv(0..200)),
        )
        .await?;
    let twice = source("twice.csv");
    let (a, b) = tokio::join!(
        loader.promote(&dataset, &batch, 1, rows, &twice),
        loader.promote(&dataset, &batch, 1, rows, &twice),
    );
    let outcomes = [a?, b?];
    assert_eq!(
        outcomes.iter().filter(|p| !p.already_loaded).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(db.rows("price_index").await?, 200);
    Ok(())
}

#[tokio::test]
async fn reports_are_built_by_the_report_procedures() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let batch = first_attempt("mysql/price_index/r.csv");
    let rows = loader
        .stage(&dataset, &batch, 0, "r.csv", body(&price_index_csv(0..120)))
        .await?;
    loader
        .promote(&dataset, &batch, 1, rows, &source("r.csv"))
        .await?;
    assert_eq!(loader.run_reports(&dataset).await?, 1);
    let groups = db.rows("price_index_report").await?;
    let expected = db
        .count("SELECT COUNT(*) FROM (SELECT DISTINCT ref_date, geo, category FROM price_index) g")
        .await?;
    assert_eq!(groups, expected);
    assert_eq!(
        db.count("SELECT SUM(observations) FROM price_index_report")
            .await?,
        120
    );
    Ok(())
}

#[tokio::test]
async fn scripts_apply_once_and_refuse_silent_edits() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut conn = db.conn().await?;
    let text = std::fs::read_to_string(workspace_root().join("sql/mysql/010_price_index.sql"))?;
    assert!(matches!(
        scripts::apply(&mut conn, "010_price_index.sql", &text).await?,
        Applied::Ran { statements: 7 }
    ));
    assert_eq!(
        scripts::apply(&mut conn, "010_price_index.sql", &text).await?,
        Applied::AlreadyApplied
    );
    let edited = text.replace("Demo dataset", "Edited dataset");
    let err = scripts::apply(&mut conn, "010_price_index.sql", &edited)
        .await
        .unwrap_err();
    assert!(matches!(err, MysqlError::ScriptChanged { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn load_data_local_serves_nothing_but_the_handlers_stream() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let mut conn = db.conn().await?;
    let err = conn
        .query_drop("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE price_index_stage")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Handler is not specified"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_single_file_loads_in_one_transaction_through_a_temporary_stage() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let batch = BatchId::for_object("landing", "mysql/price_index/one.csv", "v1");
    let promoted = loader
        .load(
            &dataset,
            &batch,
            "one.csv",
            body(&price_index_csv(0..400)),
            &source("one.csv"),
        )
        .await?;
    assert_eq!((promoted.rows, promoted.already_loaded), (400, false));
    assert_eq!(db.rows("price_index").await?, 400);
    assert_eq!(
        db.rows("price_index_stage").await?,
        0,
        "the shared stage table is untouched"
    );
    let again = loader
        .load(
            &dataset,
            &batch,
            "one.csv",
            body(&price_index_csv(0..400)),
            &source("one.csv"),
        )
        .await?;
    assert!(again.already_loaded);
    assert_eq!(db.rows("price_index").await?, 400);

    let bad = BatchId::for_object("landing", "mysql/price_index/bad-one.csv", "v1");
    let mut text = price_index_csv(1000..1100);
    text.push_str("2024-01,Canada,Food,Bread,kg,NaN\n");
    let err = loader
        .load(
            &dataset,
            &bad,
            "bad-one.csv",
            body(&text),
            &source("bad-one.csv"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MysqlError::BadInput(_)), "{err}");
    assert_eq!(
        db.rows("price_index").await?,
        400,
        "nothing of the bad file"
    );
    assert_eq!(db.rows("landfall_load_ledger").await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_quoted_empty_text_loads_as_an_empty_string_and_an_unquoted_one_as_null() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let text = "ref_date,geo,category,product,uom,price\n\
                2024-01,Geo,Food,quoted,\"\",1.00\n\
                2024-01,Geo,Food,unquoted,,1.00\n";
    let batch = BatchId::for_object("landing", "mysql/price_index/empty.csv", "v1");
    loader
        .load(
            &dataset,
            &batch,
            "empty.csv",
            body(text),
            &source("empty.csv"),
        )
        .await?;
    let rows: Vec<(String, Option<String>)> = db
        .conn()
        .await?
        .query("SELECT product, uom FROM price_index ORDER BY product")
        .await?;
    assert_eq!(
        rows,
        [
            ("quoted".into(), Some(String::new())),
            ("unquoted".into(), None)
        ]
    );
    Ok(())
}
