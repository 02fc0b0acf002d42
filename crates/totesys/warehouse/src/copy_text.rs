//! Arrow columns as rows of PostgreSQL's COPY text format (tab-separated, `\N` for NULL,
//! backslash escapes). Written here because no maintained crate turns Arrow into COPY for
//! sqlx; the format is small and fully specified in the COPY documentation. Dates, times
//! and decimals are printed from their integer forms — exact, never through a float.

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int32Type, TimestampMicrosecondType};
use arrow_array::{Array, PrimitiveArray, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

#[derive(Debug, thiserror::Error)]
#[error("column {column}: type {data_type} has no COPY encoding here")]
pub struct UnsupportedColumn {
    pub column: String,
    pub data_type: DataType,
}

enum Column<'a> {
    Int(&'a PrimitiveArray<Int32Type>),
    Text(&'a arrow_array::StringArray),
    Bool(&'a arrow_array::BooleanArray),
    Date(&'a PrimitiveArray<Date32Type>),
    Timestamp(&'a PrimitiveArray<TimestampMicrosecondType>),
    Decimal(&'a PrimitiveArray<Decimal128Type>, u32),
}

impl<'a> Column<'a> {
    fn of(name: &str, array: &'a dyn Array) -> Result<Column<'a>, UnsupportedColumn> {
        Ok(match array.data_type() {
            DataType::Int32 => Column::Int(array.as_primitive()),
            DataType::Utf8 => Column::Text(array.as_string()),
            DataType::Boolean => Column::Bool(array.as_boolean()),
            DataType::Date32 => Column::Date(array.as_primitive()),
            DataType::Timestamp(TimeUnit::Microsecond, None) => {
                Column::Timestamp(array.as_primitive())
            }
            DataType::Decimal128(_, scale) if *scale >= 0 => {
                Column::Decimal(array.as_primitive(), *scale as u32)
            }
            other => {
                return Err(UnsupportedColumn {
                    column: name.to_owned(),
                    data_type: other.clone(),
                })
            }
        })
    }

    fn write(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            Column::Int(a) => {
                out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes())
            }
            Column::Text(a) => escape(a.value(row), out),
            Column::Bool(a) => out.push(if a.value(row) { b't' } else { b'f' }),
            Column::Date(a) => date(a.value(row), out),
            Column::Timestamp(a) => {
                const DAY: i64 = 86_400_000_000;
                let us = a.value(row);
                date(us.div_euclid(DAY) as i32, out);
                out.push(b' ');
                let of_day = us.rem_euclid(DAY);
                time_of_day(of_day / 1000, out);
                padded((of_day % 1000) as u32, 3, out);
            }
            Column::Decimal(a, scale) => decimal(a.value(row), *scale, out),
        }
    }
}

/// Appends every row of `batch` to `out`, columns in the batch's order.
pub fn encode(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), UnsupportedColumn> {
    let schema = batch.schema();
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(array, field)| Column::of(field.name(), array.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let arrays = batch.columns();
    for row in 0..batch.num_rows() {
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            if arrays[i].is_null(row) {
                out.extend_from_slice(b"\\N");
            } else {
                column.write(row, out);
            }
        }
        out.push(b'\n');
    }
    Ok(())
}

fn escape(text: &str, out: &mut Vec<u8>) {
    if !text
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

fn padded(value: u32, width: usize, out: &mut Vec<u8>) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(value);
    out.extend(std::iter::repeat_n(
        b'0',
        width.saturating_sub(digits.len()),
    ));
    out.extend_from_slice(digits.as_bytes());
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
fn date(days: i32, out: &mut Vec<u8>) {
    const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;
    match time::Date::from_julian_day(days + UNIX_EPOCH_JULIAN_DAY) {
        Ok(d) if d.year() >= 0 => {
            padded(d.year() as u32, 4, out);
            out.push(b'-');
            padded(u8::from(d.month()) as u32, 2, out);
            out.push(b'-');
            padded(d.day() as u32, 2, out);
        }
        // Outside what `time` represents: PostgreSQL rejects it with the row named.
        _ => out.extend_from_slice(b"invalid-date"),
    }
}

/// Milliseconds since midnight as `HH:MM:SS.mmm` (a timestamp's time; a fact's times come
/// as text already).
fn time_of_day(ms: i64, out: &mut Vec<u8>) {
    let ms = ms as u64;
    padded((ms / 3_600_000) as u32, 2, out);
    out.push(b':');
    padded((ms / 60_000 % 60) as u32, 2, out);
    out.push(b':');
    padded((ms / 1000 % 60) as u32, 2, out);
    out.push(b'.');
    padded((ms % 1000) as u32, 3, out);
}

/// An unscaled decimal as text with `scale` fraction digits: 12345, 2 → `123.45`.
fn decimal(value: i128, scale: u32, out: &mut Vec<u8>) {
    if value < 0 {
        out.push(b'-');
    }
    let magnitude = value.unsigned_abs();
    let divisor = 10u128.pow(scale);
    out.extend_from_slice(itoa::Buffer::new().format(magnitude / divisor).as_bytes());
    if scale > 0 {
        out.push(b'.');
        let mut buffer = itoa::Buffer::new();
        let fraction = buffer.format(magnitude % divisor);
        out.extend(std::iter::repeat_n(b'0', scale as usize - fraction.len()));
        out.extend_from_slice(fraction.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, StringArray,
        TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    fn text(batch: RecordBatch) -> String {
        let mut out = Vec::new();
        encode(&batch, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_warehouse_type_prints_as_postgres_reads_it() {
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(Int32Array::from(vec![Some(-7), None]))),
            (
                "name",
                Arc::new(StringArray::from(vec![Some("a\tb\\c\nd\re"), Some("")])),
            ),
            ("paid", Arc::new(BooleanArray::from(vec![true, false]))),
            (
                "day",
                Arc::new(Date32Array::from(vec![19_675, -1])), // 2023-11-14, 1969-12-31
            ),
            (
                "at",
                Arc::new(StringArray::from(vec!["14:05:09.007", "00:00:00.000"])),
            ),
            (
                "seen",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    (19_675 * 86_400_000 + ((14 * 60 + 5) * 60 + 9) * 1000 + 7) * 1000,
                    -1,
                ])),
            ),
            (
                "price",
                Arc::new(
                    Decimal128Array::from(vec![12_345, -5])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        assert_eq!(
            text(batch),
            "-7\ta\\tb\\\\c\\nd\\re\tt\t2023-11-14\t14:05:09.007\t2023-11-14 14:05:09.007000\t123.45\n\
             \\N\t\tf\t1969-12-31\t00:00:00.000\t1969-12-31 23:59:59.999999\t-0.05\n"
        );
    }

    #[test]
    fn a_type_without_an_encoding_is_named() {
        let batch = RecordBatch::try_from_iter([(
            "ratio",
            Arc::new(arrow_array::Float64Array::from(vec![0.5])) as ArrayRef,
        )])
        .unwrap();
        let err = encode(&batch, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column ratio: type Float64 has no COPY encoding here"
        );
    }
}
