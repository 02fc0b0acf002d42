//! The warehouse rows as Parquet, with the warehouse's exact types: DATE (Date32),
//! DECIMAL(10,2) (Decimal128), INT32, UTF8, BOOLEAN; nullable where the DDL allows NULL.
//! TIME(3) is written as its text, `HH:MM:SS.mmm` (a UTF8 field marked `TIME_OF_DAY`):
//! Redshift's COPY reads Parquet through Spectrum, which has no TIME type (Redshift developer
//! guide, "Supported data types with Apache Iceberg tables": time, not supported), and
//! PostgreSQL's COPY reads the text into `time(3)` as it is. Version timestamps are
//! microseconds, the unit Spectrum reads. zstd, row groups of at most `ROW_GROUP_ROWS`.

use crate::model::*;
use crate::row::Money;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
pub use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use std::sync::Arc;

pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The metadata key marking a UTF8 field that holds a time of day (`HH:MM:SS.mmm`): a
/// loader casts it to its warehouse's TIME.
pub const TIME_OF_DAY: &str = "landfall.time_of_day";

/// Whether `field` holds a time of day as text.
pub fn is_time_of_day(field: &Field) -> bool {
    field.metadata().contains_key(TIME_OF_DAY)
}

/// A warehouse table's rows as Arrow/Parquet.
pub trait WarehouseTable: Sized {
    const NAME: &'static str;
    fn schema() -> SchemaRef;
    fn batch(rows: &[Self]) -> Result<RecordBatch, ArrowError>;
}

fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Writes `rows` as one Parquet file into `out`.
pub fn write<T: WarehouseTable, W: std::io::Write + Send>(
    rows: &[T],
    out: W,
) -> Result<(), ParquetError> {
    let mut writer = ArrowWriter::try_new(out, T::schema(), Some(properties()))?;
    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        writer.write(&T::batch(chunk)?)?;
    }
    writer.close()?;
    Ok(())
}

/// The record batches of a file that must hold `rows` rows of `expected`'s columns (in
/// order, with their types and nullability) for `table`; a file that is not one is refused
/// with the reason, before a row is read. What the warehouse loader reads a file with.
pub fn read_checked(
    bytes: bytes::Bytes,
    table: &str,
    expected: &Schema,
    rows: usize,
    batch_rows: usize,
) -> Result<ParquetRecordBatchReader, String> {
    let unreadable = |e: ParquetError| format!("not a readable Parquet file: {e}");
    // The file's own Parquet schema, not the Arrow schema it may embed: arrow-ipc panics
    // on a malformed embedded schema (make fuzz found it: "Type NONE not supported"), and
    // the Parquet types carry every property compared below.
    let file_size = bytes.len();
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
        .map_err(unreadable)?;
    let shape = |s: &Schema| -> Vec<String> {
        s.fields()
            .iter()
            .map(|f| {
                let null = if f.is_nullable() { "" } else { " not null" };
                format!("{} {}{null}", f.name(), f.data_type())
            })
            .collect()
    };
    // The parquet crate asserts (panics) on a column chunk with a negative offset or length
    // (make fuzz found it); a chunk must also lie inside the file.
    let size = i64::try_from(file_size).unwrap_or(i64::MAX);
    for (g, group) in builder.metadata().row_groups().iter().enumerate() {
        for column in group.columns() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let length = column.compressed_size();
            if start < 0 || length < 0 || start.saturating_add(length) > size {
                return Err(format!(
                    "not a readable Parquet file: row group {g}, column {}: bytes {start}+{length} are not inside its {size} bytes",
                    column.column_path()
                ));
            }
        }
    }
    let actual = shape(builder.schema());
    if actual != shape(expected) {
        return Err(format!(
            "columns [{}] are not {table}'s [{}]",
            actual.join(", "),
            shape(expected).join(", ")
        ));
    }
    let found = builder.metadata().file_metadata().num_rows();
    if found != rows as i64 {
        return Err(format!("{found} rows, the manifest says {rows}"));
    }
    builder
        .with_batch_size(batch_rows)
        .build()
        .map_err(unreadable)
}

/// Columns the loader reads to keep the newest version of a dimension row (not loaded into
/// the dimension itself): the row's own `last_updated`, and that of the row it joins.
pub const VERSION_COLUMNS: [&str; 2] = ["source_last_updated", "joined_last_updated"];

/// A dimension's schema followed by the two `VERSION_COLUMNS` (timestamps, microseconds,
/// milliseconds precise).
pub fn versioned_schema(schema: &SchemaRef) -> SchemaRef {
    use arrow_schema::{DataType, TimeUnit};
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, None);
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(VERSION_COLUMNS[0], timestamp.clone(), false));
    fields.push(Field::new(VERSION_COLUMNS[1], timestamp, true));
    Arc::new(Schema::new(fields))
}

/// Writes dimension rows with their `DimVersion` as the two `VERSION_COLUMNS`.
pub fn write_versioned<T: WarehouseTable + Clone, W: std::io::Write + Send>(
    rows: &[(crate::transform::DimVersion, T)],
    out: W,
) -> Result<(), ParquetError> {
    use arrow_array::TimestampMicrosecondArray;
    let micros = |(date, time): &Stamp| {
        (i64::from(kind::days(date)) * 86_400_000 + i64::from(kind::millis(time))) * 1000
    };
    let schema = versioned_schema(&T::schema());
    let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(properties()))?;
    for chunk in rows.chunks(ROW_GROUP_ROWS) {
        let plain: Vec<T> = chunk.iter().map(|(_, row)| row.clone()).collect();
        let mut columns: Vec<ArrayRef> = T::batch(&plain)?.columns().to_vec();
        columns.push(Arc::new(TimestampMicrosecondArray::from_iter_values(
            chunk.iter().map(|((own, _), _)| micros(own)),
        )));
        columns.push(Arc::new(
            chunk
                .iter()
                .map(|((_, joined), _)| joined.as_ref().map(micros))
                .collect::<TimestampMicrosecondArray>(),
        ));
        writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    }
    writer.close()?;
    Ok(())
}

/// One column kind each: its Arrow field and how a column of it is built.
mod kind {
    use super::*;
    use arrow_array::{BooleanArray, Date32Array, Decimal128Array, Int32Array, StringArray};
    use arrow_schema::DataType;
    use time::{Date, Time};

    const EPOCH: Date = time::macros::date!(1970 - 01 - 01);

    pub fn days(date: &Date) -> i32 {
        (*date - EPOCH).whole_days() as i32
    }

    pub fn millis(time: &Time) -> i32 {
        let (h, m, s, ms) = time.as_hms_milli();
        ((h as i32 * 60 + m as i32) * 60 + s as i32) * 1000 + ms as i32
    }

    pub mod int {
        use super::*;
        pub fn field(name: &str) -> Field {
            Field::new(name, DataType::Int32, false)
        }
        pub fn array<'a>(values: impl Iterator<Item = &'a i32>) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(Int32Array::from_iter_values(values.copied())))
        }
    }

    pub mod int_opt {
        use super::*;
        pub fn field(name: &str) -> Field {
            Field::new(name, DataType::Int32, true)
        }
        pub fn array<'a>(
            values: impl Iterator<Item = &'a Option<i32>>,
        ) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(values.copied().collect::<Int32Array>()))
        }
    }

    pub mod text {
        use super::*;
        pub fn field(name: &str) -> Field {
            Field::new(name, DataType::Utf8, false)
        }
        pub fn array<'a>(values: impl Iterator<Item = &'a String>) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(StringArray::from_iter_values(values)))
        }
    }

    pub mod text_opt {
        use super::*;
        pub fn field(name: &str) -> Field {
            Field::new(name, DataType::Utf8, true)
        }
        pub fn array<'a>(
            values: impl Iterator<Item = &'a Option<String>>,
        ) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(
                values.map(|v| v.as_deref()).collect::<StringArray>(),
            ))
        }
    }

    pub mod boolean {
        use super::*;
        pub fn field(name: &str) -> Field {
            Field::new(name, DataType::Boolean, false)
        }
        pub fn array<'a>(values: impl Iterator<Item = &'a bool>) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(values.map(|v| Some(*v)).collect::<BooleanArray>()))
        }
    }

    pub mod date {
        use super::*;
        pub fn field(name: &str) -> Field {
            Field::new(name, DataType::Date32, false)
        }
        pub fn array<'a>(values: impl Iterator<Item = &'a Date>) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(Date32Array::from_iter_values(values.map(days))))
        }
    }

    pub mod time3 {
        use super::*;
        pub fn field(name: &str) -> Field {
            Field::new(name, DataType::Utf8, false)
                .with_metadata([(super::super::TIME_OF_DAY.to_owned(), "true".to_owned())].into())
        }
        pub fn array<'a>(values: impl Iterator<Item = &'a Time>) -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(StringArray::from_iter_values(values.map(|t| {
                let (h, m, s, ms) = t.as_hms_milli();
                format!("{h:02}:{m:02}:{s:02}.{ms:03}")
            }))))
        }
    }

    pub mod money {
        use super::*;
        pub fn field(name: &str) -> Field {
            Field::new(name, DataType::Decimal128(10, 2), false)
        }
        pub fn array<'a>(values: impl Iterator<Item = &'a Money>) -> Result<ArrayRef, ArrowError> {
            let array = Decimal128Array::from_iter_values(values.map(|m| m.0 as i128))
                .with_precision_and_scale(10, 2)?;
            Ok(Arc::new(array))
        }
    }
}

macro_rules! warehouse_table {
    ($ty:ident, $name:literal { $($field:ident: $kind:ident),* $(,)? }) => {
        impl WarehouseTable for $ty {
            const NAME: &'static str = $name;
            fn schema() -> SchemaRef {
                Arc::new(Schema::new(vec![$(kind::$kind::field(stringify!($field))),*]))
            }
            fn batch(rows: &[Self]) -> Result<RecordBatch, ArrowError> {
                RecordBatch::try_new(
                    Self::schema(),
                    vec![$(kind::$kind::array(rows.iter().map(|r| &r.$field))?),*],
                )
            }
        }
    };
}

warehouse_table!(DimDate, "dim_date" {
    date_id: date, year: int, month: int, day: int, day_of_week: int,
    day_name: text, month_name: text, quarter: int,
});
warehouse_table!(DimStaff, "dim_staff" {
    staff_id: int, first_name: text, last_name: text, department_name: text,
    location: text, email_address: text,
});
warehouse_table!(DimLocation, "dim_location" {
    location_id: int, address_line_1: text, address_line_2: text_opt, district: text_opt,
    city: text, postal_code: text, country: text, phone: text,
});
warehouse_table!(DimCurrency, "dim_currency" {
    currency_id: int, currency_code: text, currency_name: text,
});
warehouse_table!(DimDesign, "dim_design" {
    design_id: int, design_name: text, file_location: text, file_name: text,
});
warehouse_table!(DimCounterparty, "dim_counterparty" {
    counterparty_id: int, counterparty_legal_name: text,
    counterparty_legal_address_line_1: text, counterparty_legal_address_line_2: text_opt,
    counterparty_legal_district: text_opt, counterparty_legal_city: text,
    counterparty_legal_postal_code: text, counterparty_legal_country: text,
    counterparty_legal_phone_number: text,
});
warehouse_table!(DimPaymentType, "dim_payment_type" {
    payment_type_id: int, payment_type_name: text,
});
warehouse_table!(DimTransaction, "dim_transaction" {
    transaction_id: int, transaction_type: text, sales_order_id: int_opt, purchase_order_id: int_opt,
});
warehouse_table!(FactSalesOrder, "fact_sales_order" {
    sales_order_id: int, created_date: date, created_time: time3, last_updated_date: date,
    last_updated_time: time3, sales_staff_id: int, counterparty_id: int, units_sold: int,
    unit_price: money, currency_id: int, design_id: int, agreed_payment_date: date,
    agreed_delivery_date: date, agreed_delivery_location_id: int,
});
warehouse_table!(FactPurchaseOrder, "fact_purchase_orders" {
    purchase_order_id: int, created_date: date, created_time: time3, last_updated_date: date,
    last_updated_time: time3, staff_id: int, counterparty_id: int, item_code: text,
    item_quantity: int, item_unit_price: money, currency_id: int, agreed_delivery_date: date,
    agreed_payment_date: date, agreed_delivery_location_id: int,
});
warehouse_table!(FactPayment, "fact_payment" {
    payment_id: int, created_date: date, created_time: time3, last_updated_date: date,
    last_updated_time: time3, transaction_id: int, counterparty_id: int, payment_amount: money,
    currency_id: int, payment_type_id: int, paid: boolean, payment_date: date,
});

#[cfg(test)]
mod tests {
    use super::kind::{days, millis};
    use time::macros::{date, time};

    #[test]
    fn dates_and_times_encode_as_parquet_expects() {
        assert_eq!(days(&date!(1970 - 01 - 02)), 1);
        assert_eq!(days(&date!(1969 - 12 - 31)), -1);
        assert_eq!(millis(&time!(14:20:52.186)), 51_652_186);
    }
}
