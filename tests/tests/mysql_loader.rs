//! mysql-loader, the real binary on the local stack: credentials from Secrets Manager,
//! files from S3, rows in MariaDB.

use anyhow::Result;
use landfall_tests::mysql::TestDatabase;
use landfall_tests::LocalStack;
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const FUNCTION: &str = "mysql-loader";

fn secret(db: &TestDatabase, password: &str) -> String {
    json!({"host": "127.0.0.1", "port": 3306, "username": "root", "password": password, "dbname": db.name}).to_string()
}

async fn upload(stack: &LocalStack, key: &str, body: &str) -> Result<String> {
    stack
        .put("LandingBucket", key, body.as_bytes().to_vec())
        .await
}

async fn invoke(stack: &mut LocalStack, task: Value) -> Result<(Option<String>, Value)> {
    let answer = stack
        .host()
        .invoke(FUNCTION, task.to_string().into())
        .await?;
    Ok((answer.function_error.clone(), answer.json()?))
}

fn object(stack: &LocalStack, key: &str, version: &str) -> Value {
    json!({"bucket": stack.resource("LandingBucket"), "key": key, "version": version})
}

/// price_index with its load procedure: the modes of a staged load.
fn with_load_procedure(stack: &mut LocalStack) {
    let file = landfall_tests::mysql::procedure_datasets_file();
    stack.set_function_env(FUNCTION, "DATASETS_FILE", file.to_str());
}

#[tokio::test]
async fn loads_an_upsert_file_straight_into_its_table() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let mut stack =
        LocalStack::start_with_secrets(&[("MysqlSecret", db.secret(3306).await?)]).await?;
    let key = "mysql/price_index/2024-02.csv";
    let version = upload(&stack, key, "ref_date,geo,category,product,uom,price\n2024-02,Canada,Food,Bread,675 g,3.49\n2024-02,Canada,Food,Milk,1 L,2.19\n").await?;
    let source = object(&stack, key, &version);
    let load = json!({"mode": "load", "dataset": "price_index", "source": source, "landed": null});
    let (error, loaded) = invoke(&mut stack, load.clone()).await?;
    assert_eq!(error, None, "{loaded}\n{}", stack.function_log(FUNCTION));
    assert_eq!(
        (loaded["rows"].as_u64(), loaded["already_loaded"].as_bool()),
        (Some(2), Some(false))
    );
    let (error, again) = invoke(&mut stack, load).await?;
    assert_eq!(error, None, "{again}");
    assert_eq!(again["already_loaded"], true);
    assert_eq!(db.rows("price_index").await?, 2);
    assert_eq!(db.rows("price_index_stage").await?, 0);
    Ok(())
}

#[tokio::test]
async fn stages_promotes_and_reports_a_landing_file() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let mut stack =
        LocalStack::start_with_secrets(&[("MysqlSecret", db.secret(3306).await?)]).await?;
    with_load_procedure(&mut stack);
    let key = "mysql/price_index/2024-01.csv";
    let version = upload(&stack, key, "ref_date,geo,category,product,uom,price\n2024-01,Canada,Food,Bread,675 g,3.49\n2024-01,Canada,Food,Milk,1 L,2.19\n").await?;
    let source = object(&stack, key, &version);

    let (error, staged) = invoke(&mut stack, json!({"mode": "stage", "dataset": "price_index", "source": source, "attempt": "a1", "part_index": 0, "part": {"object": source, "first_line": 2}})).await?;
    assert_eq!(error, None, "{staged}\n{}", stack.function_log(FUNCTION));
    assert_eq!(staged["rows"], 2);
    let (error, promoted) = invoke(&mut stack, json!({"mode": "promote", "dataset": "price_index", "source": source, "landed": null, "attempt": "a1", "parts": 1, "rows": 2})).await?;
    assert_eq!(error, None, "{promoted}");
    assert_eq!(
        (
            promoted["rows"].as_u64(),
            promoted["already_loaded"].as_bool()
        ),
        (Some(2), Some(false))
    );
    let (error, reported) = invoke(
        &mut stack,
        json!({"mode": "report", "dataset": "price_index"}),
    )
    .await?;
    assert_eq!(error, None, "{reported}");

    let mut conn = db.conn().await?;
    let rows: Option<u64> = conn.query_first("SELECT COUNT(*) FROM price_index").await?;
    assert_eq!(rows, Some(2));
    let report: Option<(u32, u32, String)> = conn
        .query_first("SELECT year, month, CAST(avg_price AS CHAR) FROM price_index_report")
        .await?;
    assert_eq!(report, Some((2024, 1, "2.8400".into())));
    Ok(())
}

#[tokio::test]
async fn a_bad_file_is_a_permanent_error_naming_line_and_column() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let mut stack =
        LocalStack::start_with_secrets(&[("MysqlSecret", db.secret(3306).await?)]).await?;
    with_load_procedure(&mut stack);
    let key = "mysql/price_index/bad.csv";
    let version = upload(
        &stack,
        key,
        "ref_date,geo,category,product,uom,price\n2024-01,Canada,Food,Bread,g,three\n",
    )
    .await?;
    let source = object(&stack, key, &version);
    let (error, answer) = invoke(&mut stack, json!({"mode": "stage", "dataset": "price_index", "source": source, "attempt": "a1", "part_index": 0, "part": {"object": source, "first_line": 2}})).await?;
    assert!(error.is_some());
    assert_eq!(answer["errorType"], "Permanent");
    let message = answer["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("mysql/price_index/bad.csv: line 2, column 6 (price)"),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_fails_without_revealing_it() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    // MariaDB's root here has no password, so a wrong one is refused.
    let password = "Wr0ng-Passw0rd-4-test";
    let mut stack =
        LocalStack::start_with_secrets(&[("MysqlSecret", secret(&db, password))]).await?;
    let (error, answer) = invoke(
        &mut stack,
        json!({"mode": "report", "dataset": "price_index"}),
    )
    .await?;
    assert!(error.is_some(), "{answer}");
    let message = answer["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("Access denied"), "{message}");
    let log = stack.function_log(FUNCTION);
    assert!(
        log.contains("refreshing database credentials"),
        "one refresh after access denied:\n{log}"
    );
    assert!(
        !log.contains(password) && !answer.to_string().contains(password),
        "the password leaked"
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_dataset_is_refused() -> Result<()> {
    let db = TestDatabase::create_with_scripts().await?;
    let mut stack =
        LocalStack::start_with_secrets(&[("MysqlSecret", db.secret(3306).await?)]).await?;
    let (error, answer) = invoke(&mut stack, json!({"mode": "report", "dataset": "nope"})).await?;
    assert!(error.is_some());
    assert_eq!(answer["errorType"], "Permanent");
    assert!(answer["errorMessage"]
        .as_str()
        .unwrap_or_default()
        .contains("unknown dataset \"nope\""));
    Ok(())
}
