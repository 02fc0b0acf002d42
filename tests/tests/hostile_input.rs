//! Hostile and malformed input, end to end and at every configuration file:
//! - landing keys a person or a tool can produce — unicode, a literal `%2F`, names that
//!   differ only by case, the longest key S3 allows, path traversal, a dataset in the wrong
//!   case — each loaded and archived under its own name, or refused with the reason;
//! - SQL smuggled into a CSV header (P1 MySQL, P3 Redshift) or a field, with a canary table
//!   that any statement of it would drop: refused before any SQL runs, or stored as text;
//! - injection-shaped identifiers in every config that names SQL objects, refused when the
//!   config loads.

use anyhow::Result;
use landfall_devstack::sample::{orders_csv, price_index_csv, PRICE_INDEX_HEADER};
use landfall_tests::mysql::TestDatabase;
use landfall_tests::postgres::{server, WarehouseDatabase};
use landfall_tests::LocalStack;
use mysql_async::prelude::Queryable;
use serde_json::json;
use std::collections::BTreeSet;

const ORCHESTRATOR: &str = "file-orchestrator";

async fn p1() -> Result<(TestDatabase, LocalStack)> {
    let db = TestDatabase::create_with_scripts().await?;
    let stack = LocalStack::start_with_secrets(&[("MysqlSecret", db.secret(3306).await?)]).await?;
    db.conn()
        .await?
        .query_drop("CREATE TABLE canary (alive INT)")
        .await?;
    Ok((db, stack))
}

/// Delivers the queue to `function` until it is empty.
async fn deliver_all(stack: &mut LocalStack, function: &str) -> Result<()> {
    while stack.deliver(function).await?.received > 0 {}
    Ok(())
}

async fn archived(stack: &LocalStack) -> Result<BTreeSet<String>> {
    let keys = stack
        .keys(&stack.resource("ArchiveBucket"), "price_index/")
        .await?;
    Ok(keys
        .iter()
        .map(|k| k.rsplit('/').next().unwrap_or_default().to_owned())
        .collect())
}

#[tokio::test]
async fn hostile_keys_load_under_their_own_names_or_are_refused_with_the_reason() -> Result<()> {
    let (db, mut stack) = p1().await?;
    let long = format!("{}.csv", "k".repeat(1024 - "mysql/price_index/".len() - 4));
    assert_eq!(format!("mysql/price_index/{long}").len(), 1024);
    let good = [
        ("café ünïcode 価格.csv", 0..3),
        ("a%2Fb.csv", 3..6),
        ("Case.csv", 6..9),
        ("case.csv", 9..12),
        (long.as_str(), 12..15),
    ];
    for (name, rows) in &good {
        let key = format!("mysql/price_index/{name}");
        stack
            .put(
                "LandingBucket",
                &key,
                price_index_csv(rows.clone()).into_bytes(),
            )
            .await?;
    }
    let refused = [
        "mysql/price_index/../../etc/passwd.csv",
        "mysql/Price_Index/upper.csv",
    ];
    for key in refused {
        stack
            .put("LandingBucket", key, price_index_csv(100..101).into_bytes())
            .await?;
    }
    deliver_all(&mut stack, ORCHESTRATOR).await?;

    assert_eq!(db.rows("price_index").await?, 15, "every good file, once");
    let expected: BTreeSet<String> = good.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(archived(&stack).await?, expected, "each under its own name");
    let reasons = stack.dead_letter_reasons("MysqlFilesDLQ").await?;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("\"..\" path segment")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no dataset \"Price_Index\"")),
        "{reasons:?}"
    );
    let left = stack.keys(&stack.resource("LandingBucket"), "").await?;
    assert_eq!(
        left.into_iter().collect::<BTreeSet<_>>(),
        refused.iter().map(|k| k.to_string()).collect(),
        "refused files stay in landing, the rest left it"
    );
    Ok(())
}

#[tokio::test]
async fn sql_in_a_csv_header_is_refused_before_any_sql_and_in_a_field_is_only_text() -> Result<()> {
    let (db, mut stack) = p1().await?;
    let smuggled = PRICE_INDEX_HEADER.replace("price\n", "price); DROP TABLE canary; --\n");
    let body = format!("{smuggled}2024-01,Leeds,Food,Bread,kg,1.00\n");
    stack
        .put(
            "LandingBucket",
            "mysql/price_index/smuggled.csv",
            body.into_bytes(),
        )
        .await?;
    let field = format!(
        "{PRICE_INDEX_HEADER}2024-01,Leeds,Food,\"x'); DROP TABLE canary; --\",kg,1.00\n\
         2024-01,Leeds,Food,\"y`; DROP TABLE canary; #\",kg,2.00\n"
    );
    stack
        .put(
            "LandingBucket",
            "mysql/price_index/field.csv",
            field.into_bytes(),
        )
        .await?;
    deliver_all(&mut stack, ORCHESTRATOR).await?;

    let reasons = stack.dead_letter_reasons("MysqlFilesDLQ").await?;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("smuggled.csv") && reasons[0].contains("header names"),
        "{reasons:?}"
    );
    assert_eq!(
        db.rows("canary").await?,
        0,
        "the canary table is still there"
    );
    let products: Vec<String> = db
        .conn()
        .await?
        .query("SELECT product FROM price_index ORDER BY product")
        .await?;
    assert_eq!(
        products,
        ["x'); DROP TABLE canary; --", "y`; DROP TABLE canary; #"],
        "the fields are stored as the text they are"
    );
    Ok(())
}

#[tokio::test]
async fn sql_in_an_orders_header_never_reaches_redshift() -> Result<()> {
    let db = WarehouseDatabase::empty_named("redshift").await?;
    let mut stack = LocalStack::start().await?;
    stack.serve_redshift(server().database(&db.name));
    let migrated = stack
        .host()
        .invoke("orders-loader", json!({"migrate": {}}).to_string().into())
        .await?;
    assert_eq!(migrated.function_error, None, "{:?}", migrated.json());
    let mut conn = db.conn().await?;
    sqlx::query("CREATE TABLE canary (alive int)")
        .execute(&mut conn)
        .await?;
    let good = orders_csv(0..2, 1, 0);
    let smuggled = good.replacen("currency\n", "currency); DROP TABLE canary; --\n", 1);
    stack
        .put(
            "TransformedBucket",
            "transformed/orders/smuggled.csv",
            smuggled.into_bytes(),
        )
        .await?;
    deliver_all(&mut stack, "orders-loader").await?;

    let reasons = stack.dead_letter_reasons("OrdersFilesDLQ").await?;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("smuggled.csv"), "{reasons:?}");
    let canary: i64 = sqlx::query_scalar("SELECT count(*) FROM canary")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(canary, 0, "the canary table is still there");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders_enriched")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(orders, 0);
    Ok(())
}

/// Names a person could put in a config by mistake or by malice; none is an identifier.
const HOSTILE: [&str; 9] = [
    "price; DROP TABLE x; --",
    "x` OR 1=1 #",
    "x\" OR \"1\"=\"1",
    "x'--",
    "../../etc/passwd",
    "two words",
    "ｆｕｌｌｗｉｄｔｈ",
    "x\u{0}y",
    "select*from",
];

/// Every field of every config that becomes an SQL identifier, with `name` put in it: each
/// config must refuse it when it loads.
#[test]
fn every_config_refuses_injection_shaped_identifiers() {
    let mysql = landfall_tests::mysql::procedure_datasets_text();
    let dynamodb = landfall_dynamodb_datasets::BUNDLED;
    let extract = landfall_totesys_extract::config::BUNDLED;
    for name in HOSTILE {
        let quoted = serde_json::to_string(name).expect("a TOML basic string is a JSON one");
        let mysql_variants = [
            (
                "table",
                "table = \"price_index\"",
                format!("table = {quoted}"),
            ),
            ("column", "{ name = \"geo\"", format!("{{ name = {quoted}")),
            ("key", "key = [\"ref_date\"", format!("key = [{quoted}")),
            (
                "stage table",
                "stage_table = \"price_index_stage\"",
                format!("stage_table = {quoted}"),
            ),
            (
                "load procedure",
                "load_procedure = \"load_price_index\"",
                format!("load_procedure = {quoted}"),
            ),
            (
                "report procedure",
                "report_procedures = [\"report_price_index\"]",
                format!("report_procedures = [{quoted}]"),
            ),
            (
                "report table",
                "report_tables = [\"price_index_report\"]",
                format!("report_tables = [{quoted}]"),
            ),
            (
                "dataset",
                "[datasets.price_index]",
                format!("[datasets.{quoted}]"),
            ),
        ];
        for (field, from, to) in &mysql_variants {
            assert!(mysql.contains(from), "{from}");
            let text = mysql.replacen(from, to, 1);
            let parsed = landfall_mysql_datasets::Datasets::parse("datasets.toml", &text);
            assert!(parsed.is_err(), "P1 {field} {name:?} was accepted");
        }
        let dynamodb_variants = [
            (
                "table",
                "table = \"price_index\"",
                format!("table = {quoted}"),
            ),
            ("column", "{ name = \"geo\"", format!("{{ name = {quoted}")),
            (
                "index",
                "{ name = \"by_geo\"",
                format!("{{ name = {quoted}"),
            ),
            (
                "dataset",
                "[datasets.price_index]",
                format!("[datasets.{quoted}]"),
            ),
        ];
        for (field, from, to) in &dynamodb_variants {
            assert!(dynamodb.contains(from), "{from}");
            let text = dynamodb.replacen(from, to, 1);
            let parsed = landfall_dynamodb_datasets::Datasets::parse("dynamodb.toml", &text);
            assert!(parsed.is_err(), "P2 {field} {name:?} was accepted");
        }
        let table = extract.replacen("name = \"staff\"", &format!("name = {quoted}"), 1);
        let cursor = extract.replacen(
            "name = \"staff\"",
            &format!("name = \"staff\"\ncursor = {quoted}"),
            1,
        );
        for (field, text) in [("table", table), ("cursor", cursor)] {
            let parsed =
                landfall_totesys_extract::config::ExtractConfig::parse(&text, "extract.toml");
            assert!(parsed.is_err(), "P4 extract {field} {name:?} was accepted");
        }
    }
}
