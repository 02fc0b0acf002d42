//! Warehouse rows written as Parquet and read back with the parquet crate's own reader:
//! the exact types, nullability and values the warehouse expects.

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int32Type};
use arrow_schema::DataType;
use bytes::Bytes;
use landfall_totesys_star::parquet::{write, WarehouseTable};
use landfall_totesys_star::*;
use time::macros::{date, time};

fn read_back<T: WarehouseTable>(rows: &[T]) -> arrow_array::RecordBatch {
    let mut buffer = Vec::new();
    write(rows, &mut buffer).expect("rows encode");
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(buffer))
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let mut batches: Vec<_> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1, "small tables read back as one batch");
    batches.remove(0)
}

fn order(id: i32, cents: i64) -> FactSalesOrder {
    FactSalesOrder {
        sales_order_id: id,
        created_date: date!(2022 - 11 - 03),
        created_time: time!(14:20:52.186),
        last_updated_date: date!(2022 - 11 - 04),
        last_updated_time: time!(09:01:00.050),
        sales_staff_id: 19,
        counterparty_id: 8,
        units_sold: 42972,
        unit_price: Money(cents),
        currency_id: 2,
        design_id: 3,
        agreed_payment_date: date!(2022 - 11 - 08),
        agreed_delivery_date: date!(2022 - 11 - 07),
        agreed_delivery_location_id: 8,
    }
}

#[test]
fn facts_keep_exact_money_dates_and_millisecond_times_as_text() {
    let batch = read_back(&[order(2, 394), order(3, 9_999_999_999)]);
    let schema = batch.schema();
    assert_eq!(
        schema.field_with_name("unit_price").unwrap().data_type(),
        &DataType::Decimal128(10, 2)
    );
    // Spectrum (Redshift's COPY from Parquet) has no TIME: the time of day is text, marked.
    let created_time = schema.field_with_name("created_time").unwrap();
    assert_eq!(created_time.data_type(), &DataType::Utf8);
    assert!(landfall_totesys_star::parquet::is_time_of_day(created_time));
    assert!(!landfall_totesys_star::parquet::is_time_of_day(
        schema.field_with_name("sales_order_id").unwrap()
    ));
    assert_eq!(
        schema.field_with_name("created_date").unwrap().data_type(),
        &DataType::Date32
    );
    assert!(!schema
        .field_with_name("sales_order_id")
        .unwrap()
        .is_nullable());

    let price = batch
        .column_by_name("unit_price")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    assert_eq!(price.value_as_string(0), "3.94");
    assert_eq!(price.value_as_string(1), "99999999.99");
    let created = batch
        .column_by_name("created_time")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(created.value(0), "14:20:52.186");
    let payment_day = batch
        .column_by_name("agreed_payment_date")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(
        payment_day.value(0),
        19_304,
        "2022-11-08 in days since 1970-01-01"
    );
    let ids = batch
        .column_by_name("sales_order_id")
        .unwrap()
        .as_primitive::<Int32Type>();
    assert_eq!(ids.values(), &[2, 3]);
}

#[test]
fn nullable_columns_carry_nulls_not_empty_strings() {
    let rows = [DimLocation {
        location_id: 1,
        address_line_1: "6826 Herzog Via".into(),
        address_line_2: None,
        district: Some("Avon".into()),
        city: "New Patienceburgh".into(),
        postal_code: "28441".into(),
        country: "Turkey".into(),
        phone: "1803 637401".into(),
    }];
    let batch = read_back(&rows);
    let line_2 = batch.column_by_name("address_line_2").unwrap();
    assert!(batch
        .schema()
        .field_with_name("address_line_2")
        .unwrap()
        .is_nullable());
    assert!(line_2.is_null(0));
    assert_eq!(
        batch
            .column_by_name("district")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "Avon"
    );

    let transactions = [DimTransaction {
        transaction_id: 2,
        transaction_type: "PURCHASE".into(),
        sales_order_id: None,
        purchase_order_id: Some(2),
    }];
    let batch = read_back(&transactions);
    assert!(batch.column_by_name("sales_order_id").unwrap().is_null(0));
    assert_eq!(
        batch
            .column_by_name("purchase_order_id")
            .unwrap()
            .as_primitive::<Int32Type>()
            .value(0),
        2
    );
}

#[test]
fn every_table_has_the_warehouse_columns_in_order() {
    let names = |schema: arrow_schema::SchemaRef| -> Vec<String> {
        schema.fields().iter().map(|f| f.name().clone()).collect()
    };
    assert_eq!(
        names(FactPurchaseOrder::schema()),
        [
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
            "agreed_delivery_location_id"
        ]
    );
    assert_eq!(
        names(DimDate::schema()),
        [
            "date_id",
            "year",
            "month",
            "day",
            "day_of_week",
            "day_name",
            "month_name",
            "quarter"
        ]
    );
    assert_eq!(FactPurchaseOrder::NAME, "fact_purchase_orders");
    let dates: Vec<DimDate> = dim_dates(date!(2024 - 02 - 27), date!(2024 - 03 - 02)).collect();
    assert_eq!(read_back(&dates).num_rows(), 5);
    assert_eq!(
        read_back(&[FactPayment {
            payment_id: 2,
            created_date: date!(2022 - 11 - 03),
            created_time: time!(14:20:52.187),
            last_updated_date: date!(2022 - 11 - 03),
            last_updated_time: time!(14:20:52.187),
            transaction_id: 2,
            counterparty_id: 15,
            payment_amount: Money(55_254_862),
            currency_id: 2,
            payment_type_id: 3,
            paid: false,
            payment_date: date!(2022 - 11 - 04),
        }])
        .column_by_name("payment_amount")
        .unwrap()
        .as_primitive::<Decimal128Type>()
        .value_as_string(0),
        "552548.62"
    );
}

#[test]
fn dimension_rows_carry_their_versions_for_the_loader() {
    use arrow_array::types::TimestampMicrosecondType;
    use landfall_totesys_star::parquet::{write_versioned, VERSION_COLUMNS};
    let row = DimPaymentType {
        payment_type_id: 1,
        payment_type_name: "SALES_RECEIPT".into(),
    };
    let rows = [
        (
            ((date!(1970 - 01 - 02), time!(00:00:01.500)), None),
            row.clone(),
        ),
        (
            (
                (date!(1970 - 01 - 01), time!(00:00:00.000)),
                Some((date!(1970 - 01 - 01), time!(00:00:00.007))),
            ),
            row,
        ),
    ];
    let mut buffer = Vec::new();
    write_versioned(&rows, &mut buffer).unwrap();
    let batch = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(buffer))
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.num_columns(), 4);
    let own = batch
        .column_by_name(VERSION_COLUMNS[0])
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(own.values(), &[86_401_500_000, 0]);
    let joined = batch.column_by_name(VERSION_COLUMNS[1]).unwrap();
    assert!(joined.is_null(0));
    assert_eq!(
        joined.as_primitive::<TimestampMicrosecondType>().value(1),
        7_000
    );
}

/// Found by `make fuzz` (warehouse_parquet): a dim_location file whose embedded Arrow schema
/// is corrupt made arrow-ipc panic ("Type NONE not supported") — the warehouse loader would
/// have died on it instead of quarantining it. The check now reads the Parquet schema.
#[test]
fn a_corrupt_embedded_arrow_schema_is_a_reason_not_a_panic() {
    let file = Bytes::from_static(include_bytes!("data/fuzz-crash-embedded-schema.parquet"));
    let schema = parquet::versioned_schema(&DimLocation::schema());
    if let Ok(reader) = parquet::read_checked(file, "dim_location", &schema, 2, 64) {
        for batch in reader {
            let _ = batch;
        }
    }
}

/// Found by `make fuzz` (warehouse_parquet): a column chunk with a negative length made the
/// parquet crate assert. The check refuses such a file first.
#[test]
fn a_column_chunk_outside_the_file_is_a_reason_not_a_panic() {
    let file = Bytes::from_static(include_bytes!(
        "data/fuzz-crash-negative-column-chunk.parquet"
    ));
    for (name, schema) in [
        (
            "dim_location",
            parquet::versioned_schema(&DimLocation::schema()),
        ),
        (
            "dim_currency",
            parquet::versioned_schema(&DimCurrency::schema()),
        ),
        (
            "dim_design",
            parquet::versioned_schema(&DimDesign::schema()),
        ),
    ] {
        for rows in 0..4 {
            if let Ok(reader) = parquet::read_checked(file.clone(), name, &schema, rows, 64) {
                for batch in reader {
                    let _ = batch;
                }
            }
        }
    }
}

#[test]
fn what_star_writes_passes_the_loaders_check_row_for_row() {
    let rows: Vec<FactSalesOrder> = (1..=3).map(|id| order(id, 394)).collect();
    let mut file = Vec::new();
    write(&rows, &mut file).expect("Parquet");
    let reader = parquet::read_checked(
        file.into(),
        "fact_sales_order",
        &FactSalesOrder::schema(),
        3,
        2,
    )
    .expect("accepted");
    assert_eq!(
        reader
            .map(|b| b.expect("a batch").num_rows())
            .sum::<usize>(),
        3
    );
    let mut file = Vec::new();
    write(&rows, &mut file).expect("Parquet");
    let refused = parquet::read_checked(
        file.into(),
        "fact_sales_order",
        &FactSalesOrder::schema(),
        4,
        2,
    );
    assert_eq!(
        refused.err().as_deref(),
        Some("3 rows, the manifest says 4")
    );
}
