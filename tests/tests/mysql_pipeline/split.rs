//! P1's big files end to end: split into parts over SPLIT_BYTES (never for an upsert
//! dataset), staged side by side and promoted together; a bad line in any part names the
//! landed file's own line; nothing of a refused or failed attempt is left staged; a step that
//! no longer fits in the invocation is not started.

use anyhow::Result;
use futures::StreamExt;
use landfall_devstack::sample::{price_index_csv, PRICE_INDEX_HEADER as HEADER};
use landfall_tests::file_pipeline::mysql::{
    deliver_all, drop_file, email_about, notification_of, pipeline, pipeline_on_port, redeliver,
    with_load_procedure, ORCHESTRATOR,
};

/// `rows` of price_index with `ending` for every line.
fn rows_ending(range: std::ops::Range<u32>, ending: &str) -> String {
    price_index_csv(range).replace('\n', ending)
}

#[tokio::test]
async fn a_big_upsert_file_is_not_split_and_loads_whole_in_one_transaction() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    stack.set_function_env(ORCHESTRATOR, "SPLIT_BYTES", Some("2000"));
    let text = price_index_csv(0..400);
    assert!(text.len() > 10 * 2000);
    drop_file(&stack, "mysql/price_index/big.csv", &text).await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}\n{}",
        stack.function_log(ORCHESTRATOR)
    );
    assert_eq!(db.rows("price_index").await?, 400);
    assert_eq!(db.count("SELECT parts FROM landfall_load_ledger").await?, 1);
    assert!(
        !stack.function_log("mysql-loader").contains("\"staged\""),
        "nothing staged"
    );
    Ok(())
}

#[tokio::test]
async fn a_big_file_is_split_and_becomes_visible_whole() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    with_load_procedure(&mut stack);
    stack.set_function_env(ORCHESTRATOR, "SPLIT_BYTES", Some("2000"));
    let text = price_index_csv(0..400);
    assert!(text.len() > 10 * 2000);
    drop_file(&stack, "mysql/price_index/big.csv", &text).await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}\n{}",
        stack.function_log(ORCHESTRATOR)
    );
    assert_eq!(db.rows("price_index").await?, 400);
    let parts = db.count("SELECT parts FROM landfall_load_ledger").await?;
    assert!(parts > 5, "split into {parts} parts");
    assert!(
        stack
            .keys(&stack.resource("LandingBucket"), "parts/")
            .await?
            .is_empty(),
        "parts cleaned up"
    );
    Ok(())
}

#[tokio::test]
async fn an_error_in_a_split_file_names_the_landed_file_and_its_own_line() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    with_load_procedure(&mut stack);
    stack.set_function_env(ORCHESTRATOR, "SPLIT_BYTES", Some("3000"));
    // A Windows export: CRLF line ends. Line 1 is the header, so row i is on line i + 2.
    let mut text = rows_ending(0..300, "\r\n");
    text.push_str("2024-02,Canada,Food,Bread,kg,1.2.3\r\n");
    text.push_str(&rows_ending(300..310, "\r\n")[HEADER.len() + 1..]);
    drop_file(&stack, "mysql/price_index/windows.csv", &text).await?;
    deliver_all(&mut stack).await?;
    assert_eq!(db.rows("price_index").await?, 0);
    assert_eq!(
        db.rows("price_index_stage").await?,
        0,
        "the failed attempt's parts are discarded"
    );
    let dead = stack.dead_letter_reasons("MysqlFilesDLQ").await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let expected = "mysql/price_index/windows.csv: line 302, column 6 (price)";
    assert!(dead[0].contains(expected), "{}", dead[0]);
    assert!(
        dead[0].contains("(checked in part parts/"),
        "the part follows: {}",
        dead[0]
    );
    let (_, _, body) = email_about(&stack, "FAILED price_index").await?;
    assert!(body.contains(expected), "{body}");
    Ok(())
}

/// A file refused for good takes with it what an earlier attempt at it left staged (an
/// orchestrator killed before its Discard, a cut connection): nothing waits for the hourly
/// sweep, since no promotion of this file will ever sweep it.
#[tokio::test]
async fn a_refused_split_file_leaves_no_stage_rows_of_any_attempt() -> Result<()> {
    use landfall_mysql_load::{Attempt, BatchId, MysqlLoader};
    let (db, mut stack) = pipeline().await?;
    with_load_procedure(&mut stack);
    stack.set_function_env(ORCHESTRATOR, "SPLIT_BYTES", Some("3000"));
    let mut text = price_index_csv(0..100);
    text.push_str("2024-02,Canada,Food,Bread,kg,1.2.3\n");
    let key = "mysql/price_index/refused.csv";
    let version = stack.put("LandingBucket", key, text.into_bytes()).await?;
    let object = BatchId::for_object(&stack.resource("LandingBucket"), key, &version);
    let killed = Attempt::new(object, "a-request-killed-before-its-discard");
    let leftover = price_index_csv(0..30);
    MysqlLoader::new(db.pool())
        .stage(
            &landfall_tests::mysql::procedure_dataset(),
            &killed,
            0,
            "refused.csv",
            futures::stream::iter([Ok(bytes::Bytes::from(leftover))]).boxed(),
        )
        .await?;
    assert_eq!(db.rows("price_index_stage").await?, 30);

    deliver_all(&mut stack).await?;
    assert_eq!(stack.dead_letter_reasons("MysqlFilesDLQ").await?.len(), 1);
    assert_eq!(db.rows("price_index").await?, 0);
    assert_eq!(
        db.rows("price_index_stage").await?,
        0,
        "{}",
        stack.function_log("mysql-loader")
    );
    Ok(())
}

#[tokio::test]
async fn a_part_staging_longer_than_an_sdk_attempt_may_take_loads_once() -> Result<()> {
    let proxy = landfall_tests::fault_proxy::FaultProxy::start("127.0.0.1:3306").await?;
    let (db, mut stack) = pipeline_on_port(proxy.port).await?;
    with_load_procedure(&mut stack);
    // Every SDK call of the orchestrator gives up after a second — as the 60 s did, at
    // scale — except the invokes, which wait as long as the loader may run.
    stack.set_function_env(ORCHESTRATOR, "AWS_ATTEMPT_TIMEOUT_SECONDS", Some("1"));
    stack.set_function_env(ORCHESTRATOR, "SPLIT_BYTES", Some("12000"));
    let text = price_index_csv(0..400);
    // Each ~12 kB part reaches the database at 6 kB/s: about two seconds.
    proxy.slow_to(6000);
    drop_file(&stack, "mysql/price_index/slow.csv", &text).await?;
    let started = std::time::Instant::now();
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}\n{}",
        stack.function_log(ORCHESTRATOR)
    );
    assert!(started.elapsed().as_secs() >= 4, "the parts were slow");
    assert_eq!(db.rows("price_index").await?, 400);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM landfall_load_ledger WHERE parts > 1")
            .await?,
        1
    );
    assert_eq!(
        stack
            .function_log("mysql-loader")
            .matches("\"staged\"")
            .count() as u64,
        db.count("SELECT parts FROM landfall_load_ledger").await?,
        "each part staged once"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_split_load_leaves_no_stage_rows_and_its_retry_loads_once() -> Result<()> {
    let proxy = landfall_tests::fault_proxy::FaultProxy::start("127.0.0.1:3306").await?;
    let (db, mut stack) = pipeline_on_port(proxy.port).await?;
    with_load_procedure(&mut stack);
    stack.set_function_env(ORCHESTRATOR, "SPLIT_BYTES", Some("8000"));
    // One part at a time, so the parts staged before the cut are whole.
    stack.set_function_env(ORCHESTRATOR, "STAGE_CONCURRENCY", Some("1"));
    let text = price_index_csv(0..600);
    drop_file(&stack, "mysql/price_index/cut.csv", &text).await?;
    let notification = notification_of(&stack, "cut.csv").await?;
    // The connection carrying the 20,000th byte dies: a few parts in, mid-part, whichever
    // loader instance stages it.
    proxy.cut_once_after_total(20_000);
    let first = deliver_all(&mut stack).await?;
    assert!(
        first.iter().any(|d| !d.failed.is_empty()),
        "retryable: back to the queue: {first:?}"
    );
    assert!(stack.dead_letter_reasons("MysqlFilesDLQ").await?.is_empty());
    assert_eq!(db.rows("price_index").await?, 0);
    assert_eq!(
        db.rows("price_index_stage").await?,
        0,
        "the staged parts of the failed attempt are gone"
    );
    assert!(
        stack.function_log("mysql-loader").contains("\"staged\""),
        "some parts had staged before the cut"
    );

    proxy.heal();
    let retry = redeliver(&mut stack, &notification).await?;
    assert!(
        retry.iter().all(|d| d.failed.is_empty()),
        "{retry:?}\n{}",
        stack.function_log(ORCHESTRATOR)
    );
    assert_eq!(db.rows("price_index").await?, 600);
    assert_eq!(db.rows("price_index_stage").await?, 0);
    assert_eq!(db.rows("landfall_load_ledger").await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_step_that_no_longer_fits_in_the_invocation_is_not_started() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    with_load_procedure(&mut stack);
    // 40 s of which 20 are kept in reserve; the promotion is estimated at 20 s.
    stack.set_function_timeout(ORCHESTRATOR, 40);
    stack.set_function_env(ORCHESTRATOR, "LOAD_BYTES_PER_SECOND", Some("2000"));
    stack.set_function_env(ORCHESTRATOR, "SPLIT_BYTES", Some("2000"));
    let text = price_index_csv(0..1000);
    assert!(text.len() > 50_000);
    drop_file(&stack, "mysql/price_index/late.csv", &text).await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().any(|d| !d.failed.is_empty()),
        "retryable: {deliveries:?}"
    );
    let log = stack.function_log(ORCHESTRATOR);
    assert!(
        log.contains("not starting promoting the staged parts: it needs about"),
        "{log}"
    );
    assert_eq!(db.rows("price_index").await?, 0);
    assert_eq!(db.rows("price_index_stage").await?, 0);
    Ok(())
}

#[tokio::test]
async fn an_upsert_load_that_no_longer_fits_in_the_invocation_is_not_started() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    // 40 s of which 20 are kept in reserve; the whole file is estimated at over 25 s.
    stack.set_function_timeout(ORCHESTRATOR, 40);
    stack.set_function_env(ORCHESTRATOR, "LOAD_BYTES_PER_SECOND", Some("2000"));
    let text = price_index_csv(0..1000);
    assert!(text.len() > 50_000);
    drop_file(&stack, "mysql/price_index/late.csv", &text).await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().any(|d| !d.failed.is_empty()),
        "retryable: {deliveries:?}"
    );
    let log = stack.function_log(ORCHESTRATOR);
    assert!(
        log.contains("not starting loading the file: it needs about"),
        "{log}"
    );
    assert!(stack.dead_letter_reasons("MysqlFilesDLQ").await?.is_empty());
    assert_eq!(db.rows("price_index").await?, 0);
    assert_eq!(db.rows("landfall_load_ledger").await?, 0);
    Ok(())
}
