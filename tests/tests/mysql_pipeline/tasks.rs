//! P1's ECS tasks end to end: a file too big for Lambda loaded by mysql-loader as a task, and
//! init scripts applied by the db-init task, each started once, followed across invocations,
//! and its failure dead-lettered with the line.

use anyhow::Result;
use landfall_devstack::sample::price_index_csv;
use landfall_tests::file_pipeline::mysql::{
    deliver_all, drop_file, email_about, notification_of, pipeline, redeliver, ORCHESTRATOR,
};

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
