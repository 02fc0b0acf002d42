//! The star schema as the tests see it, computed two independent ways:
//! - `expected`: SQL written here against the totesys source tables, from
//!   ../shared/spec/README.md (dims: latest versions; facts: one row per version; dim_date:
//!   the full referenced range) — nothing of the transform's code is used;
//! - `from_processed`: what star-transform wrote, read back from the processed bucket with the
//!   parquet crate, merged the way the warehouse will (dims: newest version per key wins;
//!   facts: one row per source version, the fact table's unique key; dim_date: union).
//!
//! - `from_warehouse`: what the PostgreSQL warehouse holds.
//!
//! All give every table as sorted rows of text cells, so a difference prints readably.

use anyhow::{anyhow, Context, Result};
use arrow_array::{
    Array, BooleanArray, Date32Array, Decimal128Array, Int32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::DataType;
use sqlx::PgConnection;
use std::collections::{BTreeMap, BTreeSet};

/// Table → rows (each a list of text cells in the table's column order), sorted.
pub type Tables = BTreeMap<String, Vec<Vec<String>>>;

/// Every warehouse table with its columns (record ids excluded: the warehouse assigns them).
pub const COLUMNS: [(&str, &[&str]); 11] = [
    (
        "dim_date",
        &[
            "date_id",
            "year",
            "month",
            "day",
            "day_of_week",
            "day_name",
            "month_name",
            "quarter",
        ],
    ),
    (
        "dim_location",
        &[
            "location_id",
            "address_line_1",
            "address_line_2",
            "district",
            "city",
            "postal_code",
            "country",
            "phone",
        ],
    ),
    (
        "dim_counterparty",
        &[
            "counterparty_id",
            "counterparty_legal_name",
            "counterparty_legal_address_line_1",
            "counterparty_legal_address_line_2",
            "counterparty_legal_district",
            "counterparty_legal_city",
            "counterparty_legal_postal_code",
            "counterparty_legal_country",
            "counterparty_legal_phone_number",
        ],
    ),
    (
        "dim_staff",
        &[
            "staff_id",
            "first_name",
            "last_name",
            "department_name",
            "location",
            "email_address",
        ],
    ),
    (
        "dim_currency",
        &["currency_id", "currency_code", "currency_name"],
    ),
    (
        "dim_design",
        &["design_id", "design_name", "file_location", "file_name"],
    ),
    (
        "dim_payment_type",
        &["payment_type_id", "payment_type_name"],
    ),
    (
        "dim_transaction",
        &[
            "transaction_id",
            "transaction_type",
            "sales_order_id",
            "purchase_order_id",
        ],
    ),
    (
        "fact_sales_order",
        &[
            "sales_order_id",
            "created_date",
            "created_time",
            "last_updated_date",
            "last_updated_time",
            "sales_staff_id",
            "counterparty_id",
            "units_sold",
            "unit_price",
            "currency_id",
            "design_id",
            "agreed_payment_date",
            "agreed_delivery_date",
            "agreed_delivery_location_id",
        ],
    ),
    (
        "fact_purchase_orders",
        &[
            "purchase_order_id",
            "created_date",
            "created_time",
            "last_updated_date",
            "last_updated_time",
            "staff_id",
            "counterparty_id",
            "item_code",
            "item_quantity",
            "item_unit_price",
            "currency_id",
            "agreed_delivery_date",
            "agreed_payment_date",
            "agreed_delivery_location_id",
        ],
    ),
    (
        "fact_payment",
        &[
            "payment_id",
            "created_date",
            "created_time",
            "last_updated_date",
            "last_updated_time",
            "transaction_id",
            "counterparty_id",
            "payment_amount",
            "currency_id",
            "payment_type_id",
            "paid",
            "payment_date",
        ],
    ),
];

fn columns(table: &str) -> &'static [&'static str] {
    COLUMNS
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, c)| *c)
        .expect("a warehouse table")
}

const DAY: &str = "'YYYY-MM-DD'";
const MILLIS: &str = "'HH24:MI:SS.MS'";

/// The source-side SQL of every table but dim_date, selecting text in `COLUMNS` order.
fn source_sql(table: &str) -> String {
    let n = |c: &str| format!("coalesce({c}::text, 'NULL')");
    let stamp = |c: &str| format!("to_char({c}, {DAY}), to_char({c}, {MILLIS})");
    let day = |c: &str| format!("to_char({c}::date, {DAY})");
    match table {
        "dim_location" => format!(
            "SELECT address_id::text, address_line_1, {}, {}, city, postal_code, country, phone FROM address",
            n("address_line_2"), n("district")
        ),
        "dim_counterparty" => format!(
            "SELECT c.counterparty_id::text, c.counterparty_legal_name, a.address_line_1, {}, {}, a.city, a.postal_code, a.country, a.phone \
             FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id",
            n("a.address_line_2"), n("a.district")
        ),
        "dim_staff" => "SELECT s.staff_id::text, s.first_name, s.last_name, d.department_name, d.location, s.email_address \
             FROM staff s JOIN department d USING (department_id)".into(),
        "dim_currency" => "SELECT currency_id::text, currency_code, CASE currency_code \
             WHEN 'GBP' THEN 'Pound Sterling' WHEN 'USD' THEN 'US Dollar' WHEN 'EUR' THEN 'Euro' END FROM currency".into(),
        "dim_design" => "SELECT design_id::text, design_name, file_location, file_name FROM design".into(),
        "dim_payment_type" => "SELECT payment_type_id::text, payment_type_name::text FROM payment_type".into(),
        "dim_transaction" => format!(
            "SELECT transaction_id::text, transaction_type::text, {}, {} FROM transaction",
            n("sales_order_id"), n("purchase_order_id")
        ),
        "fact_sales_order" => format!(
            "SELECT sales_order_id::text, {}, {}, staff_id::text, counterparty_id::text, units_sold::text, unit_price::text, \
             currency_id::text, design_id::text, {}, {}, agreed_delivery_location_id::text FROM sales_order",
            stamp("created_at"), stamp("last_updated"), day("agreed_payment_date"), day("agreed_delivery_date")
        ),
        "fact_purchase_orders" => format!(
            "SELECT purchase_order_id::text, {}, {}, staff_id::text, counterparty_id::text, item_code, item_quantity::text, \
             item_unit_price::text, currency_id::text, {}, {}, agreed_delivery_location_id::text FROM purchase_order",
            stamp("created_at"), stamp("last_updated"), day("agreed_delivery_date"), day("agreed_payment_date")
        ),
        "fact_payment" => format!(
            "SELECT payment_id::text, {}, {}, transaction_id::text, counterparty_id::text, payment_amount::text, currency_id::text, \
             payment_type_id::text, CASE WHEN paid THEN 'true' ELSE 'false' END, {} FROM payment",
            stamp("created_at"), stamp("last_updated"), day("payment_date")
        ),
        other => panic!("no source SQL for {other}"),
    }
}

async fn rows(conn: &mut PgConnection, sql: &str) -> Result<Vec<Vec<String>>> {
    use sqlx::Row;
    let found = sqlx::query(sql)
        .fetch_all(&mut *conn)
        .await
        .with_context(|| sql.to_owned())?;
    let mut out: Vec<Vec<String>> = found
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .map(|v| v.unwrap_or("NULL".into()))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()?;
    out.sort();
    Ok(out)
}

/// The warehouse as the source says it must be now. `earlier`: the expected tables of earlier
/// cycles, whose fact rows (older versions) stay in the warehouse.
pub async fn expected(conn: &mut PgConnection, earlier: Option<&Tables>) -> Result<Tables> {
    let mut tables = Tables::new();
    for (table, _) in COLUMNS.iter().filter(|(t, _)| *t != "dim_date") {
        let mut found = rows(conn, &source_sql(table)).await?;
        if table.starts_with("fact_") {
            if let Some(earlier) = earlier {
                let mut all: BTreeSet<Vec<String>> = found.into_iter().collect();
                all.extend(earlier[*table].iter().cloned());
                found = all.into_iter().collect();
            }
        }
        tables.insert(table.to_string(), found);
    }
    // dim_date: every day from the earliest to the latest date any fact row references.
    let mut referenced = BTreeSet::new();
    for (table, cols) in COLUMNS.iter().filter(|(t, _)| t.starts_with("fact_")) {
        for row in &tables[*table] {
            for (cell, col) in row.iter().zip(cols.iter()) {
                if col.ends_with("_date") {
                    referenced.insert(cell.clone());
                }
            }
        }
    }
    let (first, last) = (
        referenced.first().ok_or_else(|| anyhow!("no facts"))?,
        referenced.last().expect("not empty"),
    );
    let dim_date = format!(
        "SELECT to_char(d, {DAY}), extract(year FROM d)::int::text, extract(month FROM d)::int::text, \
         extract(day FROM d)::int::text, extract(isodow FROM d)::int::text, trim(to_char(d, 'Day')), \
         trim(to_char(d, 'Month')), extract(quarter FROM d)::int::text \
         FROM generate_series('{first}'::date, '{last}'::date, interval '1 day') AS g(d)"
    );
    tables.insert("dim_date".into(), rows(conn, &dim_date).await?);
    Ok(tables)
}

/// Every warehouse table as PostgreSQL holds it (record ids left out), formatted like the
/// source SQL above: every row, duplicates included.
pub async fn from_warehouse(conn: &mut PgConnection) -> Result<Tables> {
    let mut tables = Tables::new();
    for (table, cols) in COLUMNS {
        let mut select = Vec::new();
        for col in cols {
            let data_type: String = sqlx::query_scalar(
                "SELECT data_type FROM information_schema.columns WHERE table_name = $1 AND column_name = $2",
            )
            .bind(table)
            .bind(col)
            .fetch_one(&mut *conn)
            .await
            .with_context(|| format!("{table}.{col}"))?;
            select.push(match data_type.as_str() {
                "date" => format!("to_char({col}, {DAY})"),
                t if t.starts_with("time") => format!("to_char({col}, {MILLIS})"),
                "boolean" => format!("CASE WHEN {col} THEN 'true' ELSE 'false' END"),
                _ => format!("coalesce({col}::text, 'NULL')"),
            });
        }
        let sql = format!("SELECT {} FROM {table}", select.join(", "));
        tables.insert(table.to_owned(), rows(conn, &sql).await?);
    }
    Ok(tables)
}

/// One Parquet cell as text, formatted like the SQL above.
fn cell(array: &dyn Array, row: usize) -> Result<String> {
    if array.is_null(row) {
        return Ok("NULL".into());
    }
    let any = array.as_any();
    Ok(match array.data_type() {
        DataType::Int32 => any
            .downcast_ref::<Int32Array>()
            .unwrap()
            .value(row)
            .to_string(),
        DataType::Utf8 => any
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(row)
            .to_owned(),
        DataType::Boolean => any
            .downcast_ref::<BooleanArray>()
            .unwrap()
            .value(row)
            .to_string(),
        DataType::Date32 => {
            let days = any.downcast_ref::<Date32Array>().unwrap().value(row);
            let date = time::Date::from_julian_day(2_440_588 + days)?;
            format!(
                "{:04}-{:02}-{:02}",
                date.year(),
                date.month() as u8,
                date.day()
            )
        }
        DataType::Decimal128(10, 2) => {
            let v = any.downcast_ref::<Decimal128Array>().unwrap().value(row);
            let sign = if v < 0 { "-" } else { "" };
            format!("{sign}{}.{:02}", v.abs() / 100, v.abs() % 100)
        }
        other => return Err(anyhow!("unexpected column type {other}")),
    })
}

/// A dim row's version: (source_last_updated, joined_last_updated) in microseconds.
fn version(batch: &RecordBatch, row: usize) -> Result<(i64, i64)> {
    let stamp = |name: &str| -> Result<i64> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| anyhow!("dim without {name}"))?;
        let values = column
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| anyhow!("{name} is not a microsecond timestamp"))?;
        Ok(if values.is_null(row) {
            i64::MIN
        } else {
            values.value(row)
        })
    };
    Ok((stamp("source_last_updated")?, stamp("joined_last_updated")?))
}

/// Reads a Parquet file's batches with the parquet crate.
pub fn read_parquet(bytes: bytes::Bytes) -> Result<Vec<RecordBatch>> {
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// A dim row and its version, as the loader's newest-wins upsert compares them.
type Versioned = ((i64, i64), Vec<String>);

/// The warehouse that loading every ready manifest in `bucket` would give.
pub async fn from_processed(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Tables> {
    let mut dims: BTreeMap<String, BTreeMap<String, Versioned>> = BTreeMap::new();
    // A version emitted again (a redelivered or re-extracted object) is one row, as the
    // warehouse's unique key (id, last_updated) makes it.
    let mut facts: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    // Committed manifests: ready, or loaded into the warehouse since.
    let mut manifests = Vec::new();
    for prefix in ["ready/", "loaded/"] {
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            manifests.extend(
                page?
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
    }
    for manifest in manifests {
        let body = get(s3, bucket, &manifest).await?;
        let manifest: landfall_totesys_contract::processed::Manifest =
            serde_json::from_slice(&body)?;
        for output in manifest.outputs {
            let cols = columns(&output.table);
            let batches = read_parquet(get(s3, bucket, &output.key).await?)
                .with_context(|| output.key.clone())?;
            let mut read = 0;
            for batch in &batches {
                for row in 0..batch.num_rows() {
                    let cells = cols
                        .iter()
                        .map(|c| {
                            let column = batch
                                .column_by_name(c)
                                .ok_or_else(|| anyhow!("{}: no column {c}", output.key))?;
                            cell(column.as_ref(), row)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    read += 1;
                    if output.table.starts_with("fact_") {
                        facts.entry(output.table.clone()).or_default().insert(cells);
                    } else {
                        let v = if output.table == "dim_date" {
                            (0, 0)
                        } else {
                            version(batch, row)?
                        };
                        let keyed = dims.entry(output.table.clone()).or_default();
                        match keyed.get(&cells[0]) {
                            Some((known, _)) if *known >= v => {}
                            _ => {
                                keyed.insert(cells[0].clone(), (v, cells));
                            }
                        }
                    }
                }
            }
            if read != output.rows {
                return Err(anyhow!(
                    "{}: manifest says {} rows, file has {read}",
                    output.key,
                    output.rows
                ));
            }
        }
    }
    let mut tables = Tables::new();
    for (table, _) in COLUMNS {
        let mut rows: Vec<Vec<String>> = match dims.remove(table) {
            Some(keyed) => keyed.into_values().map(|(_, cells)| cells).collect(),
            None => facts
                .remove(table)
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        rows.sort();
        tables.insert(table.to_owned(), rows);
    }
    Ok(tables)
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<bytes::Bytes> {
    Ok(s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| key.to_owned())?
        .body
        .collect()
        .await?
        .into_bytes())
}

/// Fails naming the first table that differs, with a few of the differing rows.
pub fn assert_same(actual: &Tables, expected: &Tables) {
    for (table, want) in expected {
        let got = actual.get(table).cloned().unwrap_or_default();
        if &got != want {
            let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(3).collect();
            let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(3).collect();
            panic!(
                "{table}: {} rows, expected {}\nmissing: {missing:?}\nunexpected: {extra:?}",
                got.len(),
                want.len()
            );
        }
    }
}
