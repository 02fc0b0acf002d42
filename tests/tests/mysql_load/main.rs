//! Loading files into the real MariaDB: an upsert dataset straight into its table, a dataset
//! with a load procedure through its stage (staging, checking, promoting), and the uploads of
//! one key in the order they landed. The server and the connection: `server.rs` here.

mod server;

use anyhow::Result;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use landfall_devstack::sample::{price_index_csv, PRICE_INDEX_HEADER};
use landfall_mysql_datasets::{Dataset, Datasets, Promotion};
use landfall_mysql_load::scripts::{self, Applied};
use landfall_mysql_load::{Attempt, BatchId, LedgerSource, MysqlError, MysqlLoader, Promoted};
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
async fn a_retry_after_a_crash_between_stage_and_promote_loads_once_and_leaves_no_stage_rows(
) -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let object = BatchId::for_object("landing", "mysql/price_index/crash.csv", "v1");
    let first = Attempt::new(object.clone(), "attempt-1");
    loader
        .stage(
            &dataset,
            &first,
            0,
            "crash.csv",
            body(&price_index_csv(0..300)),
        )
        .await?;
    // The attempt died here. SQS redelivers: a new attempt stages beside the old rows…
    let retry = Attempt::new(object, "attempt-2");
    let rows = loader
        .stage(
            &dataset,
            &retry,
            0,
            "crash.csv",
            body(&price_index_csv(0..300)),
        )
        .await?;
    assert_eq!(db.rows("price_index_stage").await?, 600);
    // …and promotes only its own rows; the old attempt's go with the promotion.
    let promoted = loader
        .promote(&dataset, &retry, 1, rows, &source("crash.csv"))
        .await?;
    assert_eq!(promoted.rows, 300);
    assert_eq!(db.rows("price_index").await?, 300);
    assert_eq!(db.rows("price_index_stage").await?, 0);
    assert_eq!(db.rows("landfall_stage_attempts").await?, 0);
    Ok(())
}

#[tokio::test]
async fn another_attempts_rows_are_never_counted_or_promoted() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let object = BatchId::for_object("landing", "mysql/price_index/two.csv", "v1");
    let (a, b) = (Attempt::new(object.clone(), "a"), Attempt::new(object, "b"));
    // Two attempts split the same file differently (SPLIT_BYTES changed between them).
    loader
        .stage(&dataset, &a, 0, "two.csv", body(&price_index_csv(0..100)))
        .await?;
    loader
        .stage(&dataset, &a, 1, "two.csv", body(&price_index_csv(100..250)))
        .await?;
    let rows = loader
        .stage(&dataset, &b, 0, "two.csv", body(&price_index_csv(0..250)))
        .await?;
    let promoted = loader
        .promote(&dataset, &b, 1, rows, &source("two.csv"))
        .await?;
    assert_eq!(promoted.rows, 250, "b's rows, not a's as well");
    assert_eq!(db.rows("price_index").await?, 250);
    assert_eq!(db.rows("price_index_stage").await?, 0);
    Ok(())
}

/// A file refused for good: its last attempt's discard takes what earlier attempts at the
/// same file left (one killed mid-way, say), and nothing of another file's.
#[tokio::test]
async fn discarding_a_refused_file_takes_every_attempt_at_it_and_only_at_it() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let object = BatchId::for_object("landing", "mysql/price_index/refused.csv", "v1");
    let other = Attempt::new(
        BatchId::for_object("landing", "mysql/price_index/other.csv", "v1"),
        "running",
    );
    for (attempt, rows) in [
        (Attempt::new(object.clone(), "killed"), 0..40),
        (Attempt::new(object.clone(), "last"), 40..50),
        (other.clone(), 50..55),
    ] {
        loader
            .stage(&dataset, &attempt, 0, "f.csv", body(&price_index_csv(rows)))
            .await?;
    }
    let last = Attempt::new(object.clone(), "last");
    assert_eq!(loader.discard(&dataset, &last, true).await?, 50);
    assert_eq!(
        db.rows("price_index_stage").await?,
        5,
        "the other file's rows stay"
    );
    assert_eq!(loader.discard(&dataset, &other, false).await?, 5);
    Ok(())
}

#[tokio::test]
async fn a_discarded_attempt_leaves_nothing_and_abandoned_ones_are_swept() -> Result<()> {
    let (db, loader, dataset) = fresh().await?;
    let failed = Attempt::new(
        BatchId::for_object("landing", "mysql/price_index/failed.csv", "v1"),
        "a",
    );
    loader
        .stage(
            &dataset,
            &failed,
            0,
            "failed.csv",
            body(&price_index_csv(0..50)),
        )
        .await?;
    assert_eq!(loader.discard(&dataset, &failed, false).await?, 50);
    assert_eq!(db.rows("price_index_stage").await?, 0);

    // An attempt nobody discarded (its function was killed) two hours ago, at another file.
    let abandoned = Attempt::new(
        BatchId::for_object("landing", "mysql/price_index/killed.csv", "v1"),
        "a",
    );
    loader
        .stage(
            &dataset,
            &abandoned,
            0,
            "killed.csv",
            body(&price_index_csv(0..70)),
        )
        .await?;
    let young = Attempt::new(
        BatchId::for_object("landing", "mysql/price_index/running.csv", "v1"),
        "a",
    );
    loader
        .stage(
            &dataset,
            &young,
            0,
            "running.csv",
            body(&price_index_csv(0..30)),
        )
        .await?;
    db.conn()
        .await?
        .exec_drop(
            "UPDATE landfall_stage_attempts SET started_at = NOW(3) - INTERVAL 2 HOUR WHERE stage_batch = ?",
            (abandoned.stage.as_str(),),
        )
        .await?;
    // The next promotion of the dataset removes the abandoned rows, not a running attempt's.
    let other = Attempt::new(
        BatchId::for_object("landing", "mysql/price_index/next.csv", "v1"),
        "a",
    );
    let rows = loader
        .stage(
            &dataset,
            &other,
            0,
            "next.csv",
            body(&price_index_csv(500..510)),
        )
        .await?;
    loader
        .promote(&dataset, &other, 1, rows, &source("next.csv"))
        .await?;
    assert_eq!(
        db.rows("price_index_stage").await?,
        30,
        "only the running attempt's rows stay"
    );
    Ok(())
}

#[tokio::test]
async fn a_connection_dropped_mid_load_keeps_nothing_and_the_retry_loads_once() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let proxy = landfall_tests::fault_proxy::FaultProxy::start("127.0.0.1:3306").await?;
    // prefer_socket=false: otherwise the driver switches to the local Unix socket, past the proxy.
    let url = format!(
        "mysql://root@127.0.0.1:{}/{}?prefer_socket=false",
        proxy.port, db.name
    );
    let loader = MysqlLoader::new(mysql_async::Pool::new(mysql_async::Opts::from_url(&url)?));
    let dataset = price_index();
    let batch = first_attempt("mysql/price_index/drop.csv");
    let text = price_index_csv(0..5000);

    proxy.cut_after(text.len() as u64 / 3); // the link dies a third of the way into the file
    let err = loader
        .stage(&dataset, &batch, 0, "drop.csv", body(&text))
        .await
        .unwrap_err();
    assert_eq!(
        landfall_runtime::Classify::disposition(&err),
        landfall_runtime::Disposition::Retryable,
        "{err}"
    );
    // The server rolls back the transaction of a connection that died.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        db.rows("price_index_stage").await?,
        0,
        "nothing half-staged"
    );

    proxy.heal();
    let loader = MysqlLoader::new(mysql_async::Pool::new(mysql_async::Opts::from_url(&url)?));
    let rows = loader
        .stage(&dataset, &batch, 0, "drop.csv", body(&text))
        .await?;
    loader
        .promote(&dataset, &batch, 1, rows, &source("drop.csv"))
        .await?;
    assert_eq!(db.rows("price_index").await?, 5000);
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

/// Loads `text` as version v1 of mysql/price_index/`name`.
async fn load_v1(
    loader: &MysqlLoader,
    dataset: &Dataset,
    name: &str,
    text: &str,
) -> Result<Promoted, MysqlError> {
    let key = format!("mysql/price_index/{name}");
    let batch = BatchId::for_object("landing", &key, "v1");
    loader
        .load(dataset, &batch, key.as_str(), body(text), &source(name))
        .await
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

async fn prices(db: &TestDatabase, products: &[&str]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for product in products {
        let price: Option<String> = db
            .conn()
            .await?
            .exec_first(
                "SELECT CAST(price AS CHAR) FROM price_index WHERE product = ?",
                (product,),
            )
            .await?;
        out.push(price.unwrap_or_default());
    }
    Ok(out)
}

#[tokio::test]
async fn an_upsert_file_goes_straight_into_the_table_once_and_a_later_file_wins_by_key(
) -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let loader = MysqlLoader::new(db.pool());
    let dataset = price_index_upsert();
    let loaded = load_v1(&loader, &dataset, "first.csv", &price_index_csv(0..400)).await?;
    assert_eq!((loaded.rows, loaded.already_loaded), (400, false));
    assert_eq!(db.rows("price_index").await?, 400);
    assert_eq!(
        db.rows("price_index_stage").await?,
        0,
        "no stage on this path"
    );
    assert_eq!(
        db.count("SELECT rows_loaded FROM landfall_load_ledger")
            .await?,
        400,
        "the ledger row records the rows"
    );
    assert_eq!(prices(&db, &["Item 42"]).await?, ["42.42"]);

    // The same version again: the ledger answers, nothing is written.
    let again = load_v1(&loader, &dataset, "first.csv", &price_index_csv(0..400)).await?;
    assert!(again.already_loaded);
    assert_eq!(db.rows("price_index").await?, 400);

    // A later file with the same keys and new prices, plus new rows: its prices win.
    let later_text = price_index_csv(300..500).replace(",kg,", ",kg,1");
    let replaced = load_v1(&loader, &dataset, "later.csv", &later_text).await?;
    assert_eq!(replaced.rows, 200);
    assert_eq!(db.rows("price_index").await?, 500);
    assert_eq!(
        prices(&db, &["Item 42", "Item 342", "Item 442"]).await?,
        ["42.42", "142.42", "142.42"]
    );
    assert_eq!(db.rows("landfall_load_ledger").await?, 2);
    Ok(())
}

#[tokio::test]
async fn a_bad_upsert_file_names_its_line_and_column_and_leaves_the_table_as_it_was() -> Result<()>
{
    let db = TestDatabase::create_with_scripts().await?;
    let loader = MysqlLoader::new(db.pool());
    let dataset = price_index_upsert();
    load_v1(&loader, &dataset, "good.csv", &price_index_csv(0..400)).await?;
    // Rows that would replace existing ones reach the server before line 301 is found bad.
    let mut text = price_index_csv(0..299).replace(",kg,", ",kg,9");
    text.push_str("2024-01,Canada,Food,Bread,kg,1.2.3\n");
    text.push_str(&price_index_csv(1000..1100)[PRICE_INDEX_HEADER.len()..]);
    let err = load_v1(&loader, &dataset, "bad.csv", &text)
        .await
        .unwrap_err();
    let MysqlError::BadInput(input) = &err else {
        panic!("{err}")
    };
    assert_eq!((input.line, input.column), (301, Some(6)));
    assert_eq!(input.file, "mysql/price_index/bad.csv");
    assert_eq!(db.rows("price_index").await?, 400, "no new row kept");
    assert_eq!(
        prices(&db, &["Item 42"]).await?,
        ["42.42"],
        "no replaced row kept"
    );
    assert_eq!(
        db.rows("landfall_load_ledger").await?,
        1,
        "the bad file's ledger row rolled back"
    );

    // At the column's limit: 64 characters fit varchar(64); 65 are refused by the checker,
    // before the server could truncate them with a warning, and nothing of the file is kept.
    let row = |geo: &str| format!("{PRICE_INDEX_HEADER}2024-01,{geo},Food,Item,kg,1.00\n");
    load_v1(&loader, &dataset, "fits.csv", &row(&"g".repeat(64))).await?;
    assert_eq!(
        db.rows("price_index").await?,
        401,
        "64 characters fit varchar(64)"
    );
    let err = load_v1(&loader, &dataset, "long.csv", &row(&"g".repeat(65)))
        .await
        .unwrap_err();
    assert!(matches!(err, MysqlError::BadInput(_)), "{err}");
    assert_eq!(db.rows("price_index").await?, 401);
    Ok(())
}

#[tokio::test]
async fn two_concurrent_deliveries_of_an_upsert_file_load_it_once() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let loader = MysqlLoader::new(db.pool());
    let dataset = price_index_upsert();
    let batch = BatchId::for_object("landing", "mysql/price_index/twice.csv", "v1");
    let twice = source("twice.csv");
    let (a, b) = tokio::join!(
        loader.load(
            &dataset,
            &batch,
            "twice.csv",
            body(&price_index_csv(0..3000)),
            &twice
        ),
        loader.load(
            &dataset,
            &batch,
            "twice.csv",
            body(&price_index_csv(0..3000)),
            &twice
        ),
    );
    let outcomes = [a?, b?];
    assert_eq!(
        outcomes.iter().filter(|p| !p.already_loaded).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(db.rows("price_index").await?, 3000);
    assert_eq!(db.rows("landfall_load_ledger").await?, 1);
    Ok(())
}

/// Two uploads of mysql/price_index/corrected.csv: (version, when it landed).
const OLDER: (&str, &str) = ("v1", "2026-12-05T08:00:00.001Z");
const NEWER: (&str, &str) = ("v2", "2026-12-05T08:00:00.002Z");

/// Loads `text` as `upload` of mysql/price_index/corrected.csv.
async fn load_upload(
    loader: &MysqlLoader,
    dataset: &Dataset,
    (version, landed): (&str, &str),
    text: &str,
) -> Result<Promoted, MysqlError> {
    let key = "mysql/price_index/corrected.csv";
    let batch = BatchId::for_object("landing", key, version);
    let source = LedgerSource {
        dataset: "price_index".into(),
        key: key.into(),
        version: version.into(),
        landed: Some(landed.into()),
    };
    loader.load(dataset, &batch, key, body(text), &source).await
}

/// The table, the ledger and the key order emptied.
async fn start_over(db: &TestDatabase) -> Result<()> {
    db.conn()
        .await?
        .query_drop(
            "DELETE FROM price_index; DELETE FROM landfall_load_ledger; \
             DELETE FROM landfall_key_order",
        )
        .await?;
    Ok(())
}

/// Rows at a correction's prices (1,000 more than `price_index_csv`'s).
async fn corrected_rows(db: &TestDatabase) -> Result<u64> {
    db.count("SELECT count(*) FROM price_index WHERE price >= 1000")
        .await
}

/// Two uploads of one key: the one that landed later wins whichever loads last. An older
/// upload loaded after it loads nothing (through the stage as straight into the table); a
/// newer one after it loads; two at the same time end the same way.
#[tokio::test]
async fn an_upload_that_landed_before_one_already_loaded_loads_nothing() -> Result<()> {
    let (db, loader, staged) = fresh().await?;
    let first = price_index_csv(0..6);
    let correction = first.replace(",kg,", ",kg,1000");
    for dataset in [price_index_upsert(), staged] {
        start_over(&db).await?;
        let newer = load_upload(&loader, &dataset, NEWER, &correction).await?;
        assert_eq!((newer.rows, newer.superseded_by.as_deref()), (6, None));
        for attempt in ["late", "again"] {
            let older = load_upload(&loader, &dataset, OLDER, &first).await?;
            assert_eq!(
                (older.rows, older.already_loaded, older.superseded_by),
                (0, false, Some(NEWER.0.to_owned())),
                "{attempt}: {}",
                dataset.table.as_str()
            );
        }
        assert_eq!(corrected_rows(&db).await?, 6, "the correction's rows stay");
        assert_eq!(
            db.rows("landfall_load_ledger").await?,
            1,
            "the older one is not recorded"
        );
        let later = ("v3", "2026-12-05T08:00:01.000Z");
        let loaded = load_upload(&loader, &dataset, later, &price_index_csv(0..2)).await?;
        assert_eq!((loaded.rows, loaded.superseded_by), (2, None));
        assert_eq!(corrected_rows(&db).await?, 4);
    }

    // At the same time, many times over: never the older upload's prices.
    let dataset = price_index_upsert();
    let first = price_index_csv(0..3000);
    let correction = first.replace(",kg,", ",kg,1000");
    for round in 0..5 {
        start_over(&db).await?;
        let (older, newer) = tokio::join!(
            load_upload(&loader, &dataset, OLDER, &first),
            load_upload(&loader, &dataset, NEWER, &correction),
        );
        let (older, newer) = (older?, newer?);
        assert_eq!(newer.rows, 3000, "round {round}: {newer:?}");
        assert!(
            older.superseded_by.is_some() || older.rows == 3000,
            "{older:?}"
        );
        assert_eq!(corrected_rows(&db).await?, 3000, "round {round}: {older:?}");
    }
    Ok(())
}

#[tokio::test]
async fn an_upsert_cut_mid_load_keeps_nothing_and_the_retry_loads_once() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let proxy = landfall_tests::fault_proxy::FaultProxy::start("127.0.0.1:3306").await?;
    let dataset = price_index_upsert();
    let batch = BatchId::for_object("landing", "mysql/price_index/cut.csv", "v1");
    let text = price_index_csv(0..5000);

    proxy.cut_after(text.len() as u64 / 3);
    let err = loader_through(&proxy, &db)?
        .load(&dataset, &batch, "cut.csv", body(&text), &source("cut.csv"))
        .await
        .unwrap_err();
    assert_eq!(
        landfall_runtime::Classify::disposition(&err),
        landfall_runtime::Disposition::Retryable,
        "{err}"
    );
    // The server rolls back the transaction of a connection that died.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(db.rows("price_index").await?, 0, "nothing half-loaded");
    assert_eq!(db.rows("landfall_load_ledger").await?, 0);

    proxy.heal();
    let loaded = loader_through(&proxy, &db)?
        .load(&dataset, &batch, "cut.csv", body(&text), &source("cut.csv"))
        .await?;
    assert_eq!((loaded.rows, loaded.already_loaded), (5000, false));
    assert_eq!(db.rows("price_index").await?, 5000);
    Ok(())
}

#[tokio::test]
async fn an_upsert_dataset_has_no_stage_to_stage_into() -> Result<()> {
    let (_db, loader, _) = fresh().await?;
    let err = loader
        .stage(
            &price_index_upsert(),
            &first_attempt("s.csv"),
            0,
            "s.csv",
            body(&price_index_csv(0..3)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MysqlError::NotStaged { .. }), "{err}");
    Ok(())
}
