use super::*;
use arrow_array::{ArrayRef, Decimal128Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use std::sync::Arc;

const HEADER: &str = "order_id,customer_id,order_ts,status,amount,currency\n";

fn check_csv(text: &str) -> Result<u64, BadInput> {
    let mut checker = csv_checker("s3://t/transformed/orders/o.csv");
    // Fed in small pieces: the check must not depend on where chunks end.
    for chunk in text.as_bytes().chunks(7) {
        checker.feed(chunk)?;
    }
    checker.finish()?;
    Ok(checker.rows())
}

#[test]
fn good_rows_pass_and_are_counted() {
    let text = format!(
        "{HEADER}o1,c1,2026-12-01 10:00:00,NEW,12.50,GBP\no2,c2,2026-12-01T10:00:00.123456,SHIPPED,-3,EUR\no3,c1,2026-12-01 10:00:01,NEW,9999999999.99,USD\n"
    );
    assert_eq!(check_csv(&text).unwrap(), 3);
}

#[test]
fn each_bad_field_is_named_with_its_line_and_column() {
    for (row, column, field, words) in [
        (
            "o1,c1,2026-12-01 10:00:00,NEW,12.5x,GBP",
            5,
            "amount",
            "not a decimal(12,2)",
        ),
        (
            "o1,c1,2026-12-01 10:00:00,NEW,12345678901,GBP",
            5,
            "amount",
            "not a decimal(12,2)",
        ),
        (
            "o1,c1,2026-12-01 10:00:00,NEW,1.234,GBP",
            5,
            "amount",
            "not a decimal(12,2)",
        ),
        (
            "o1,c1,2026-13-01 10:00:00,NEW,1,GBP",
            3,
            "order_ts",
            "not a timestamp",
        ),
        (
            "o1,c1,yesterday,NEW,1,GBP",
            3,
            "order_ts",
            "not a timestamp",
        ),
        (
            "o1,c1,2026-12-01 10:00:00,NEW,1,gbp",
            6,
            "currency",
            "not a currency code",
        ),
        (
            ",c1,2026-12-01 10:00:00,NEW,1,GBP",
            1,
            "order_id",
            "must not be empty",
        ),
    ] {
        let text = format!("{HEADER}o0,c0,2026-12-01 09:00:00,NEW,1,GBP\n{row}\n");
        let err = check_csv(&text).unwrap_err();
        assert_eq!((err.line, err.column), (3, Some(column)), "{row}: {err}");
        assert_eq!(err.field.as_deref(), Some(field), "{row}");
        let text = err.to_string();
        assert!(
            text.starts_with("s3://t/transformed/orders/o.csv: line 3") && text.contains(words),
            "{text}"
        );
    }
}

#[test]
fn wrong_column_counts_headers_and_empty_files_are_refused() {
    let err = check_csv(&format!("{HEADER}o1,c1,2026-12-01 10:00:00,NEW,1\n")).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    let err = check_csv("order_id,customer,order_ts,status,amount,currency\n").unwrap_err();
    assert_eq!(err.line, 1, "{err}");
    for empty in ["", HEADER] {
        assert!(check_csv(empty).is_err(), "{empty:?} accepted");
    }
}

fn parquet_file(
    schema: Arc<Schema>,
    columns: Vec<ArrayRef>,
    row_group_rows: usize,
) -> ParquetMetaData {
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut bytes = Vec::new();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let tail = FooterTail::try_from(&bytes[bytes.len() - 8..]).unwrap();
    let start = bytes.len() - 8 - tail.metadata_length();
    ParquetMetaDataReader::decode_metadata(&bytes[start..bytes.len() - 8]).unwrap()
}

fn orders_schema(amount: DataType, nullable: bool) -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Utf8, nullable),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new(
            "order_ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("status", DataType::Utf8, false),
        Field::new("amount", amount, false),
        Field::new("currency", DataType::Utf8, false),
    ]))
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn columns(order_ids: &[Option<&str>]) -> Vec<ArrayRef> {
    let n = order_ids.len();
    vec![
        strings(order_ids),
        strings(&vec![Some("c1"); n]),
        Arc::new(TimestampMicrosecondArray::from(vec![
            1_764_000_000_000_000;
            n
        ])),
        strings(&vec![Some("NEW"); n]),
        Arc::new(
            Decimal128Array::from(vec![1250; n])
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
        strings(&vec![Some("GBP"); n]),
    ]
}

#[test]
fn a_parquet_file_with_the_orders_schema_passes() {
    let metadata = parquet_file(
        orders_schema(DataType::Decimal128(12, 2), false),
        columns(&[Some("o1"), Some("o2")]),
        1,
    );
    assert_eq!(check_parquet(&metadata, "f.parquet").unwrap(), 2);
}

#[test]
fn a_parquet_file_with_another_schema_names_the_column() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new(
            "order_ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("status", DataType::Utf8, false),
        Field::new("amount", DataType::Utf8, false),
        Field::new("currency", DataType::Utf8, false),
    ]));
    let mut cols = columns(&[Some("o1")]);
    cols[4] = strings(&[Some("12.50")]);
    let err = check_parquet(&parquet_file(schema, cols, 10), "f.parquet").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("f.parquet: column amount is Utf8"),
        "{err}"
    );
    assert_eq!(err.disposition(), Disposition::Permanent);

    let renamed = Arc::new(Schema::new(
        orders_schema(DataType::Decimal128(12, 2), false)
            .fields()
            .iter()
            .map(|f| {
                if f.name() == "status" {
                    Field::new("state", DataType::Utf8, false)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ));
    let err = check_parquet(
        &parquet_file(renamed, columns(&[Some("o1")]), 10),
        "f.parquet",
    )
    .unwrap_err();
    assert!(err.to_string().contains("\"state\""), "{err}");
}

#[test]
fn a_null_in_a_parquet_row_group_names_the_group_and_column() {
    let metadata = parquet_file(
        orders_schema(DataType::Decimal128(12, 2), true),
        columns(&[Some("o1"), Some("o2"), None]),
        2,
    );
    let err = check_parquet(&metadata, "f.parquet").unwrap_err();
    assert_eq!(
        err.to_string(),
        "f.parquet: row group 1, column order_id: 1 null values in a column that must have a value"
    );
}

#[test]
fn parquet_types_redshift_would_not_copy_are_refused() {
    // Another decimal shape, or nanoseconds: Redshift's COPY converts neither.
    let narrow = Arc::new(Schema::new(
        orders_schema(DataType::Decimal128(12, 2), false)
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "amount" => Field::new("amount", DataType::Decimal128(10, 2), false),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ));
    let mut cols = columns(&[Some("o1")]);
    cols[4] = Arc::new(
        Decimal128Array::from(vec![1250])
            .with_precision_and_scale(10, 2)
            .unwrap(),
    );
    let err = check_parquet(&parquet_file(narrow, cols, 10), "f.parquet").unwrap_err();
    assert!(err.to_string().contains("DECIMAL(12,2) exactly"), "{err}");

    let nanos = Arc::new(Schema::new(
        orders_schema(DataType::Decimal128(12, 2), false)
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "order_ts" => Field::new(
                    "order_ts",
                    DataType::Timestamp(TimeUnit::Nanosecond, None),
                    false,
                ),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ));
    let mut cols = columns(&[Some("o1")]);
    cols[2] = Arc::new(arrow_array::TimestampNanosecondArray::from(vec![
        1_764_000_000_000_000_000,
    ]));
    let err = check_parquet(&parquet_file(nanos, cols, 10), "f.parquet").unwrap_err();
    assert!(err.to_string().contains("microseconds"), "{err}");
}

#[test]
fn varchar_limits_count_bytes_as_redshift_does() {
    // 22 three-byte characters: 22 characters, 66 bytes, past VARCHAR(64).
    let wide = "注".repeat(22);
    let err = check_csv(&format!(
        "{HEADER}{wide},c1,2026-12-01 10:00:00,NEW,1,GBP\n"
    ))
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("66 bytes") && text.contains("order_id"),
        "{text}"
    );
    // 21 of them, 63 bytes, fit.
    let fits = "注".repeat(21);
    assert_eq!(
        check_csv(&format!(
            "{HEADER}{fits},c1,2026-12-01 10:00:00,NEW,1,GBP\n"
        ))
        .unwrap(),
        1
    );
}
