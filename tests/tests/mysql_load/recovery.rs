//! A load that fails part-way keeps nothing and its retry loads once: a crash between stage
//! and promote, another attempt's rows, a refused file discarded, abandoned attempts swept, a
//! connection dropped in the middle.

use super::{body, first_attempt, fresh, price_index, source};
use anyhow::Result;
use landfall_devstack::sample::price_index_csv;
use landfall_mysql_load::{Attempt, BatchId, MysqlLoader};
use landfall_tests::mysql::TestDatabase;
use mysql_async::prelude::Queryable;

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
