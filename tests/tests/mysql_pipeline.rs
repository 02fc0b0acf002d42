//! P1 end to end: a file dropped into the landing bucket → S3 notification → SQS →
//! file-orchestrator → mysql-loader (stage, promote, report) → rows in MariaDB, the file
//! archived, the outcome emailed; bad files in the DLQ with their reason.

use anyhow::Result;
use futures::StreamExt;
use landfall_devstack::sample::{price_index_csv, PRICE_INDEX_HEADER as HEADER};
use landfall_tests::file_pipeline;
use landfall_tests::file_pipeline::mysql::{
    notification_of, pipeline, pipeline_on_port, ORCHESTRATOR, P1,
};
use landfall_tests::LocalStack;

/// price_index with its load procedure, for both functions: files over SPLIT_BYTES are then
/// split, their parts staged side by side and promoted together.
fn with_load_procedure(stack: &mut LocalStack) {
    let file = landfall_tests::mysql::procedure_datasets_file();
    for function in [ORCHESTRATOR, "mysql-loader"] {
        stack.set_function_env(function, "DATASETS_FILE", file.to_str());
    }
}

async fn redeliver(
    stack: &mut LocalStack,
    notification: &str,
) -> Result<Vec<landfall_devstack::Delivery>> {
    stack
        .send(&stack.resource("MysqlFilesQueue"), notification)
        .await?;
    deliver_all(stack).await
}

async fn drop_file(stack: &LocalStack, key: &str, body: &str) -> Result<()> {
    stack
        .put("LandingBucket", key, body.as_bytes().to_vec())
        .await?;
    Ok(())
}

/// Delivers until the queue is empty (the first batch holds the TestEvent).
async fn deliver_all(stack: &mut LocalStack) -> Result<Vec<landfall_devstack::Delivery>> {
    let mut deliveries = Vec::new();
    loop {
        let delivery = stack.deliver(ORCHESTRATOR).await?;
        if delivery.received == 0 {
            return Ok(deliveries);
        }
        deliveries.push(delivery);
    }
}

/// A good file, loaded once (the shared scenario), then reported: the report table exported
/// as CSV, and the email naming it.
#[tokio::test]
async fn a_landing_file_is_loaded_archived_reported_and_emailed() -> Result<()> {
    let P1 { db, stack } = file_pipeline::a_good_file_loads_once::<P1>().await?;
    assert_eq!(db.rows("price_index_stage").await?, 0);
    assert!(db.rows("price_index_report").await? > 0);

    // The report table, exported as CSV: a header and one line per report row.
    let reports = stack
        .keys(
            &stack.resource("ReportsBucket"),
            "price_index/price_index_report/",
        )
        .await?;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let csv = stack
        .s3()
        .get_object()
        .bucket(stack.resource("ReportsBucket"))
        .key(&reports[0])
        .send()
        .await?;
    let csv = String::from_utf8(csv.body.collect().await?.into_bytes().to_vec())?;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("year,month,geo,category,avg_price,observations")
    );
    assert_eq!(lines.count() as u64, db.rows("price_index_report").await?);
    assert!(
        csv.contains(",\"Region 1, North\",Food,"),
        "quoted geo: {csv}"
    );

    let (to, subject, body) = stack.the_only_email().await?;
    assert!(
        body.contains(&reports[0]),
        "the email names the report: {body}"
    );
    assert_eq!(to, ["data-team@example.com".to_owned()]);
    assert!(subject.contains("price_index: 20 rows loaded"), "{subject}");
    assert!(
        body.contains("Rows loaded: 20") && body.contains("Archived to: s3://"),
        "{body}"
    );
    Ok(())
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

/// A bad field: refused with its file, line and column, dead-lettered at once, nothing
/// promoted, the file left in landing, the dataset's people told.
#[tokio::test]
async fn a_bad_file_is_rejected_with_its_line_and_column_and_dead_lettered() -> Result<()> {
    file_pipeline::a_bad_line_is_dead_lettered_at_once_naming_it::<P1>().await
}

#[tokio::test]
async fn keys_no_dataset_owns_go_to_the_dlq_and_operations_with_the_reason() -> Result<()> {
    file_pipeline::an_unknown_key_is_refused_and_operations_told::<P1>().await
}

/// A landing bucket without versioning (suspended: every upload is version "null", as in a
/// bucket never versioned): a second upload of the same key with other rows is a new file,
/// told apart by its ETag, and loads; the same bytes again would be the same file.
#[tokio::test]
async fn an_unversioned_landing_bucket_loads_each_upload_of_a_key() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    stack.suspend_versioning("LandingBucket").await?;
    let key = "mysql/price_index/monthly.csv";
    for (round, rows) in [(1, 0..100), (2, 100..250)] {
        drop_file(&stack, key, &price_index_csv(rows.clone())).await?;
        let deliveries = deliver_all(&mut stack).await?;
        assert!(
            deliveries.iter().all(|d| d.failed.is_empty()),
            "{deliveries:?}\n{}",
            stack.function_log(ORCHESTRATOR)
        );
        assert_eq!(db.rows("price_index").await?, u64::from(rows.end));
        assert_eq!(db.rows("landfall_load_ledger").await?, round);
        let left = stack
            .keys(&stack.resource("LandingBucket"), "mysql/")
            .await?;
        assert!(
            left.is_empty(),
            "round {round}: {left:?}\n{}",
            stack.function_log(ORCHESTRATOR)
        );
    }
    let archived = stack
        .s3()
        .list_object_versions()
        .bucket(stack.resource("ArchiveBucket"))
        .prefix("price_index/")
        .send()
        .await?;
    assert_eq!(archived.versions().len(), 2, "{archived:?}");
    assert!(stack.dead_letter_reasons("MysqlFilesDLQ").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_redelivered_notification_loads_nothing_twice() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    drop_file(
        &stack,
        "mysql/price_index/once.csv",
        &price_index_csv(0..50),
    )
    .await?;
    // Keep a copy of the notification to deliver again after the file was processed.
    let notification = notification_of(&stack, "once.csv").await?;
    deliver_all(&mut stack).await?;
    assert_eq!(db.rows("price_index").await?, 50);

    let again = redeliver(&mut stack, &notification).await?;
    assert!(again.iter().all(|d| d.failed.is_empty()), "{again:?}");
    assert_eq!(db.rows("price_index").await?, 50);
    assert_eq!(db.rows("landfall_load_ledger").await?, 1);
    assert!(stack
        .function_log(ORCHESTRATOR)
        .contains("already loaded and archived"));
    Ok(())
}

/// A first attempt promoted the file and died before archiving it; the message comes back:
/// the retry finds the ledger row, archives, reports and emails, saying so.
#[tokio::test]
async fn a_crash_after_promote_before_archive_is_finished_by_the_retry() -> Result<()> {
    let p = file_pipeline::a_redelivery_after_a_load_that_died_completes_it_once::<P1>().await?;
    let (_, _, body) = p.stack.the_only_email().await?;
    assert!(body.contains("already loaded earlier"), "{body}");
    Ok(())
}

/// The email whose subject contains `subject`.
async fn email_about(stack: &LocalStack, subject: &str) -> Result<(Vec<String>, String, String)> {
    let emails = stack.sent_emails().await?;
    emails
        .iter()
        .find(|(_, s, _)| s.contains(subject))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no email about {subject:?} in {emails:?}"))
}

#[tokio::test]
async fn a_file_too_big_for_lambda_loads_in_an_ecs_task() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    stack.set_function_env(ORCHESTRATOR, "TASK_BYTES", Some("1000"));
    let text = price_index_csv(0..120);
    assert!(text.len() > 1000);
    drop_file(&stack, "mysql/price_index/huge.csv", &text).await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}\n{}\n{}",
        stack.function_log(ORCHESTRATOR),
        stack.function_log("mysql-loader-task")
    );
    assert_eq!(db.rows("price_index").await?, 120);
    assert_eq!(
        db.count("SELECT parts FROM landfall_load_ledger").await?,
        1,
        "not split: a task has no 15-minute limit"
    );
    // The task process loaded it; the Lambda loader only ran the reports.
    let task_log = stack.function_log("mysql-loader-task");
    assert!(
        task_log.contains("mysql/price_index/huge.csv") && task_log.contains("task succeeded"),
        "{task_log}"
    );
    assert!(!stack.function_log("mysql-loader").contains("huge.csv"));
    let (_, _, body) = email_about(&stack, "120 rows loaded").await?;
    assert!(
        body.contains("Loaded by: mysql-loader (ECS task)"),
        "{body}"
    );
    assert_eq!(
        stack
            .keys(&stack.resource("ArchiveBucket"), "price_index/")
            .await?
            .len(),
        1
    );
    // The report the task left for the orchestrator expires with the bucket's lifecycle rule.
    assert_eq!(
        stack
            .keys(&stack.resource("LandingBucket"), "tasks/")
            .await?
            .len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_bad_file_in_a_task_is_rejected_permanently_with_its_line() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    stack.set_function_env(ORCHESTRATOR, "TASK_BYTES", Some("100"));
    let mut text = price_index_csv(0..5);
    text.push_str("2024-13,Canada,Food,Bread,kg,1.20\n");
    drop_file(&stack, "mysql/price_index/huge-bad.csv", &text).await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "the task's permanent failure is not retried: {deliveries:?}"
    );
    assert_eq!(db.rows("price_index").await?, 0);
    let dead = stack.dead_letter_reasons("MysqlFilesDLQ").await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = &dead[0];
    assert!(
        reason.contains("huge-bad.csv: line 7, column 1 (ref_date)"),
        "{reason}"
    );
    Ok(())
}

#[tokio::test]
async fn an_init_script_runs_as_the_db_init_task_once() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    let script = "-- a new table and a procedure; semicolons inside quotes and blocks are fine\n\
        CREATE TABLE IF NOT EXISTS region_alias (alias VARCHAR(64) PRIMARY KEY, geo VARCHAR(64) NOT NULL);\n\
        DELIMITER $$\n\
        CREATE OR REPLACE PROCEDURE add_alias(IN a VARCHAR(64), IN g VARCHAR(64))\n\
        BEGIN\n  INSERT INTO region_alias VALUES (a, g) ON DUPLICATE KEY UPDATE geo = g;\nEND$$\n\
        DELIMITER ;\n\
        CALL add_alias('north; east', 'Region 1');\n";
    drop_file(&stack, "mysql/init/020_region_alias.sql", script).await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}\n{}\n{}",
        stack.function_log(ORCHESTRATOR),
        stack.function_log("db-init-task")
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM region_alias WHERE alias = 'north; east'")
            .await?,
        1
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM landfall_applied_scripts WHERE name = '020_region_alias.sql'"
        )
        .await?,
        1
    );
    let archived = stack
        .keys(&stack.resource("ArchiveBucket"), "init/")
        .await?;
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert!(archived[0].ends_with("/020_region_alias.sql"));
    let (to, _, body) =
        email_about(&stack, "database init: mysql/init/020_region_alias.sql").await?;
    assert_eq!(to, vec!["dba@example.com".to_owned()]);
    assert!(
        body.contains("020_region_alias.sql: applied (3 statements)"),
        "{body}"
    );

    // The same script again: recorded, so nothing runs twice.
    drop_file(&stack, "mysql/init/020_region_alias.sql", script).await?;
    deliver_all(&mut stack).await?;
    let emails = stack.sent_emails().await?;
    assert!(
        emails
            .iter()
            .any(|(_, _, body)| body.contains("020_region_alias.sql: already applied earlier")),
        "{emails:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_init_script_is_dead_lettered_with_its_line() -> Result<()> {
    let (_db, mut stack) = pipeline().await?;
    let script =
        "CREATE TABLE IF NOT EXISTS ok_table (id INT);\n\nCREATE TABLE broken (id INT,);\n";
    drop_file(&stack, "mysql/init/030_broken.sql", script).await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "a syntax error is permanent: {deliveries:?}"
    );
    let dead = stack.dead_letter_reasons("MysqlFilesDLQ").await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = &dead[0];
    assert!(
        reason.contains("030_broken.sql") && reason.contains("line 3"),
        "{reason}"
    );
    let (_, _, body) = email_about(&stack, "FAILED database init").await?;
    assert!(body.contains("line 3"), "{body}");
    assert_eq!(
        stack
            .keys(&stack.resource("LandingBucket"), "mysql/init/")
            .await?
            .len(),
        1,
        "the script stays in landing"
    );
    Ok(())
}

#[tokio::test]
async fn a_redelivery_adopts_the_task_still_running_instead_of_starting_another() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    // The orchestrator gives up waiting after a second; the script takes three.
    stack.set_function_env(ORCHESTRATOR, "TASK_WAIT_SECONDS", Some("1"));
    drop_file(
        &stack,
        "mysql/init/040_slow.sql",
        "DO SLEEP(3);\nCREATE TABLE IF NOT EXISTS slow_done (id INT);\n",
    )
    .await?;
    let notification = notification_of(&stack, "040_slow.sql").await?;
    let first = deliver_all(&mut stack).await?;
    assert!(
        first.iter().any(|d| !d.failed.is_empty()),
        "the first attempt hands over: {first:?}"
    );
    // Each redelivery (here: the same notification sent again) waits for the same task.
    let mut succeeded = false;
    for _ in 0..10 {
        let again = redeliver(&mut stack, &notification).await?;
        if again.iter().all(|d| d.failed.is_empty()) {
            succeeded = true;
            break;
        }
    }
    let log = stack.function_log(ORCHESTRATOR);
    assert!(succeeded, "{log}");
    assert_eq!(
        log.matches("\"task started\"").count(),
        1,
        "one task only: {log}"
    );
    assert!(log.contains("adopting the task already running"), "{log}");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM landfall_applied_scripts WHERE name = '040_slow.sql'")
            .await?,
        1
    );
    Ok(())
}

/// `rows` of price_index with `ending` for every line.
fn rows_ending(range: std::ops::Range<u32>, ending: &str) -> String {
    price_index_csv(range).replace('\n', ending)
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
    // One part at a time: the parts then share one loader instance and its connection, so
    // the cut below lands mid-load however the host schedules invocations (side by side,
    // each part would have a connection of its own that never reaches the limit).
    stack.set_function_env(ORCHESTRATOR, "STAGE_CONCURRENCY", Some("1"));
    let text = price_index_csv(0..600);
    drop_file(&stack, "mysql/price_index/cut.csv", &text).await?;
    let notification = notification_of(&stack, "cut.csv").await?;
    // A connection dies once it has sent 20 kB: a few parts in, mid-part.
    proxy.cut_after(20_000);
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

/// Files arrive as people send them, each loaded once, archived and gone from landing: the AWS
/// CLI's multipart upload from 8 MB (its ETag is no MD5, and its archive copy's is), with its
/// CRC32 checksums and without; a browser's single PUT to a presigned URL; and a copy from
/// another bucket, which the CLI makes in parts too (S3's notification says `Copy`). Keys
/// with spaces and non-ASCII text, as people name files.
#[tokio::test]
async fn files_arrive_as_people_send_them_and_each_loads_once() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    let dir = std::env::temp_dir().join(format!("landfall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let landing = stack.resource("LandingBucket");
    // A file of at least 9 MB (two parts of the CLI's 8 MB) with rows from `first` on, wide
    // ones (long product names): the bytes the CLI needs, a third of the rows to load.
    let file = |name: &str, first: u32| -> Result<(std::path::PathBuf, u32)> {
        let mut csv = String::from(HEADER);
        let mut next = first;
        while csv.len() < 9 * 1024 * 1024 {
            csv.push_str(&format!(
                "2024-{:02},\"Region {}, North\",Food,\"Item {next} {}\",kg,{}.{:02}\n",
                next % 12 + 1,
                next % 5,
                "of a long product name ".repeat(4),
                next % 50,
                next % 100
            ));
            next += 1;
        }
        let path = dir.join(name);
        std::fs::write(&path, csv)?;
        Ok((path, next - first))
    };
    let mut rows = 0;

    let (with_checksums, n) = file("a.csv", 0)?;
    rows += n;
    let to = format!("s3://{landing}/mysql/price_index/uploaded by the cli ü.csv");
    stack
        .aws_cli(&["s3", "cp", with_checksums.to_str().unwrap(), &to], &[])
        .await?;

    let (without, n) = file("b.csv", 1_000_000)?;
    rows += n;
    let to = format!("s3://{landing}/mysql/price_index/no checksums.csv");
    stack
        .aws_cli(
            &["s3", "cp", without.to_str().unwrap(), &to],
            &[("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")],
        )
        .await?;

    let (copied, n) = file("c.csv", 2_000_000)?;
    rows += n;
    let elsewhere = format!("s3://{}/incoming/c.csv", stack.resource("ReportsBucket"));
    let to = format!("s3://{landing}/mysql/price_index/copied from elsewhere.csv");
    stack
        .aws_cli(&["s3", "cp", copied.to_str().unwrap(), &elsewhere], &[])
        .await?;
    stack.aws_cli(&["s3", "cp", &elsewhere, &to], &[]).await?;

    // A browser: one PUT of the file's bytes to a URL the page was handed.
    let small = price_index_csv(3_000_000..3_000_500);
    rows += 500;
    let presigned = stack
        .s3()
        .put_object()
        .bucket(&landing)
        .key("mysql/price_index/从浏览器上传.csv")
        .content_type("text/csv")
        .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(
            std::time::Duration::from_secs(300),
        )?)
        .await?;
    let mut put = axum::http::Request::builder()
        .method("PUT")
        .uri(presigned.uri());
    for (name, value) in presigned.headers() {
        put = put.header(name, value);
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let answer = client
        .request(put.body(axum::body::Body::from(small))?)
        .await?;
    assert!(answer.status().is_success(), "{answer:?}");
    std::fs::remove_dir_all(&dir)?;
    // They arrived as claimed: in parts (an ETag of `-<parts>`), with and without checksums
    // (a copy's is S3's business: AWS gives new objects one of its own, moto none).
    for (key, parts, checksum) in [
        ("uploaded by the cli ü.csv", true, Some(true)),
        ("no checksums.csv", true, Some(false)),
        ("copied from elsewhere.csv", true, None),
        ("从浏览器上传.csv", false, Some(false)),
    ] {
        let head = stack
            .s3()
            .head_object()
            .bucket(&landing)
            .key(format!("mysql/price_index/{key}"))
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await?;
        let etag = head.e_tag().unwrap_or_default();
        assert_eq!(etag.contains('-'), parts, "{key}: {etag}");
        if let Some(checksum) = checksum {
            assert_eq!(head.checksum_crc32().is_some(), checksum, "{key}: {head:?}");
        }
    }

    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}\n{}",
        stack.function_log(ORCHESTRATOR)
    );
    assert_eq!(db.rows("price_index").await?, u64::from(rows));
    assert_eq!(db.rows("landfall_load_ledger").await?, 4);
    assert!(stack.keys(&landing, "mysql/").await?.is_empty());
    let mut archived = stack
        .keys(&stack.resource("ArchiveBucket"), "price_index/")
        .await?
        .into_iter()
        .map(|key| key.rsplit('/').next().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    archived.sort();
    assert_eq!(
        archived,
        [
            "copied from elsewhere.csv",
            "no checksums.csv",
            "uploaded by the cli ü.csv",
            "从浏览器上传.csv"
        ]
    );
    assert_eq!(
        stack.queue_depth(&stack.resource("MysqlFilesDLQ")).await?,
        0
    );
    // The outcome as logged: moto's state dump, where tests read sent emails, fails once a
    // multipart upload has completed (moto 5.2's multipart status looks its bucket up in
    // the wrong backend), so this test reads the orchestrator's log instead.
    let log = stack.function_log(ORCHESTRATOR);
    assert_eq!(log.matches("\"file loaded\"").count(), 4, "{log}");
    Ok(())
}

/// After the rows are promoted and the file archived, a report that fails leaves a loaded
/// file: told as "loaded; report failed", not dead-lettered as "not loaded".
#[tokio::test]
async fn a_report_failing_after_the_load_is_told_as_loaded_not_as_failed() -> Result<()> {
    use mysql_async::prelude::Queryable;
    let (db, mut stack) = pipeline().await?;
    db.conn()
        .await?
        .query_drop("DROP PROCEDURE report_price_index")
        .await?;
    drop_file(
        &stack,
        "mysql/price_index/no-report.csv",
        &price_index_csv(0..40),
    )
    .await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}"
    );
    assert_eq!(db.rows("price_index").await?, 40);
    assert_eq!(
        stack.queue_depth(&stack.resource("MysqlFilesDLQ")).await?,
        0
    );
    let (_, subject, body) = email_about(&stack, "40 rows loaded").await?;
    assert!(subject.ends_with("(reports failed)"), "{subject}");
    assert!(body.contains("Result: loaded; report failed ("), "{body}");
    assert!(!body.contains("not loaded"), "{body}");
    Ok(())
}

/// One notification delivered twice at once, then again: loaded once, nothing dead-lettered.
#[tokio::test]
async fn one_file_delivered_twice_at_once_loads_once_and_nothing_is_dead_lettered() -> Result<()> {
    file_pipeline::delivered_twice_at_once_and_again_later::<P1>().await
}

/// Found by this scenario: P1 loaded every upload of a key in the order its notifications
/// arrived, so an older upload whose notification came back late (a retry) was promoted after
/// the correction, and its rows replaced the correction's. The ledger now keeps each key's
/// latest loaded upload (`landfall_key_order`), and an older one loads nothing.
#[tokio::test]
async fn a_newer_version_wins_over_an_older_one_delivered_late() -> Result<()> {
    file_pipeline::a_newer_version_wins_over_an_older_one_delivered_late::<P1>().await
}
