//! An upsert dataset straight into its table: once, a later file winning by key, a bad file
//! leaving the table as it was, a cut in the middle; and the uploads of one key in the order
//! they landed, whichever loads last.

use super::{body, first_attempt, fresh, loader_through, price_index_upsert, source};
use anyhow::Result;
use landfall_devstack::sample::{price_index_csv, PRICE_INDEX_HEADER};
use landfall_mysql_datasets::Dataset;
use landfall_mysql_load::{BatchId, LedgerSource, MysqlError, MysqlLoader, Promoted};
use landfall_tests::mysql::TestDatabase;
use mysql_async::prelude::Queryable;

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
