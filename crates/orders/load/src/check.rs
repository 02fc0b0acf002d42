//! An orders file is checked before Redshift sees it: COPY would stop at the first bad row
//! with an error that names a system table, not the file, line and column, and the
//! load's transaction would have done its work for nothing. CSV goes through the shared
//! streaming checker with the orders types; Parquet is checked from its footer (schema,
//! and the row groups' null counts), so neither format is held in memory.

use crate::COLUMNS;
use bytes::Bytes;
use futures::StreamExt;
use landfall_aws::{AwsError, SdkResultExt};
use landfall_csv_check::{BadInput, CsvChecker, Dialect, Encode, Layout, Record, Rejection};
use landfall_failure::{Classify, Disposition};
use landfall_landing::{open, LandingError, ObjectVersion};
use parquet::file::metadata::{FooterTail, ParquetMetaData, ParquetMetaDataReader};

/// How the file is written, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    pub fn of(key: &str) -> Option<Format> {
        let lower = key.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else if lower.ends_with(".parquet") {
            Some(Format::Parquet)
        } else {
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Csv(#[from] BadInput),
    #[error("{file}: {reason}")]
    Parquet { file: String, reason: String },
    #[error(transparent)]
    Read(#[from] LandingError),
    #[error("{file}: {source}")]
    Stream {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Classify for CheckError {
    fn disposition(&self) -> Disposition {
        match self {
            CheckError::Csv(_) | CheckError::Parquet { .. } => Disposition::Permanent,
            CheckError::Read(err) => err.disposition(),
            CheckError::Stream { .. } => Disposition::Retryable,
            CheckError::Aws(err) => err.disposition(),
        }
    }
}

/// Checks the object version; the number of data rows it holds.
pub async fn check(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
    format: Format,
    size: u64,
) -> Result<u64, CheckError> {
    let file = format!("s3://{}/{}", object.bucket, object.key);
    match format {
        Format::Csv => {
            let mut checker = csv_checker(&file);
            let mut body = open(s3, object).await?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|source| CheckError::Stream {
                    file: file.clone(),
                    source,
                })?;
                checker.feed(&chunk)?;
            }
            checker.finish()?;
            Ok(checker.rows())
        }
        Format::Parquet => {
            let metadata = parquet_footer(s3, object, size, &file).await?;
            check_parquet(&metadata, &file)
        }
    }
}

/// The checker for an orders CSV file: the header names [`COLUMNS`] in order.
pub fn csv_checker(file: &str) -> CsvChecker<OrdersEncoder> {
    CsvChecker::new(
        Layout {
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            dialect: Dialect::default(),
        },
        file,
        OrdersEncoder,
    )
}

/// The orders columns' types. Writes nothing: Redshift's COPY reads the file itself.
pub struct OrdersEncoder;

impl Encode for OrdersEncoder {
    fn encode(
        &mut self,
        record: &Record<'_>,
        _line: u64,
        _out: &mut Vec<u8>,
    ) -> Result<(), Rejection> {
        for (index, limit) in [(0, 64), (1, 64), (3, 32)] {
            let (value, _) = record.field(index);
            if value.is_empty() {
                return Err(Rejection::column(index, "must not be empty"));
            }
            // Redshift's VARCHAR(n) holds n bytes, not characters ("Preparing your input
            // data": "VARCHAR strings are measured in bytes").
            if value.len() > limit {
                return Err(Rejection::column(
                    index,
                    format!(
                        "{} bytes in UTF-8, longer than the {limit} bytes Redshift's VARCHAR({limit}) holds",
                        value.len()
                    ),
                ));
            }
        }
        let (ts, _) = record.field(2);
        if !is_timestamp(ts) {
            return Err(Rejection::column(
                2,
                format!("{ts:?} is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff], a T allowed before the time)"),
            ));
        }
        let (amount, _) = record.field(4);
        if !is_amount(amount) {
            return Err(Rejection::column(
                4,
                format!(
                    "{amount:?} is not a decimal(12,2) (at most 10 digits, a point and 2 decimals)"
                ),
            ));
        }
        let (currency, _) = record.field(5);
        if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(Rejection::column(
                5,
                format!("{currency:?} is not a currency code (three capital letters)"),
            ));
        }
        Ok(())
    }
}

fn is_timestamp(text: &str) -> bool {
    use time::macros::format_description;
    let (date, time_part) = match text.split_once([' ', 'T']) {
        Some(split) => split,
        None => return false,
    };
    let date_ok = time::Date::parse(date, format_description!("[year]-[month]-[day]")).is_ok();
    let (clock, fraction) = time_part.split_once('.').unwrap_or((time_part, ""));
    let clock_ok =
        time::Time::parse(clock, format_description!("[hour]:[minute]:[second]")).is_ok();
    let fraction_ok = fraction.len() <= 6 && fraction.bytes().all(|b| b.is_ascii_digit());
    date_ok && clock_ok && fraction_ok && !(time_part.contains('.') && fraction.is_empty())
}

fn is_amount(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    (1..=10).contains(&whole.len())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= 2
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty())
}

/// The footer of a Parquet object, read with two range requests.
async fn parquet_footer(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
    size: u64,
    file: &str,
) -> Result<ParquetMetaData, CheckError> {
    let not_parquet = |reason: String| CheckError::Parquet {
        file: file.to_owned(),
        reason,
    };
    if size < 12 {
        return Err(not_parquet(format!(
            "{size} bytes is too short for a Parquet file"
        )));
    }
    let tail = range(s3, object, size - 8, size).await?;
    let footer = FooterTail::try_from(tail.as_ref())
        .map_err(|e| not_parquet(format!("not a Parquet file: {e}")))?;
    let length = footer.metadata_length() as u64;
    if length + 8 > size {
        return Err(not_parquet(format!(
            "its footer claims {length} bytes of metadata"
        )));
    }
    let metadata = range(s3, object, size - 8 - length, size - 8).await?;
    ParquetMetaDataReader::decode_metadata(&metadata)
        .map_err(|e| not_parquet(format!("unreadable Parquet metadata: {e}")))
}

async fn range(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
    from: u64,
    to: u64,
) -> Result<Bytes, CheckError> {
    let got = s3
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version.id().map(str::to_owned))
        .range(format!("bytes={from}-{}", to - 1))
        .send()
        .await
        .or_aws("S3", "GetObject")?;
    let body = got.body.collect().await.map_err(|e| CheckError::Stream {
        file: format!("s3://{}/{}", object.bucket, object.key),
        source: std::io::Error::other(e),
    })?;
    Ok(body.into_bytes())
}

/// The schema Redshift's COPY maps by position onto the staging table, and no NULL in a
/// row group where a statistic shows one (the columns are NOT NULL).
pub fn check_parquet(metadata: &ParquetMetaData, file: &str) -> Result<u64, CheckError> {
    use arrow_schema::{DataType, TimeUnit};
    let bad = |reason: String| CheckError::Parquet {
        file: file.to_owned(),
        reason,
    };
    let schema = parquet::arrow::parquet_to_arrow_schema(
        metadata.file_metadata().schema_descr(),
        metadata.file_metadata().key_value_metadata(),
    )
    .map_err(|e| bad(format!("unreadable schema: {e}")))?;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if names != COLUMNS {
        return Err(bad(format!(
            "columns are {names:?}; an orders file has {COLUMNS:?} in that order"
        )));
    }
    for field in schema.fields() {
        let fits = match field.name().as_str() {
            // Redshift's Parquet COPY converts no types: a timestamp of another unit or a
            // decimal of another precision or scale fails the COPY ("COPY from columnar data
            // formats"), so only the staging table's own are taken.
            "order_ts" => matches!(
                field.data_type(),
                DataType::Timestamp(TimeUnit::Microsecond, None)
            ),
            "amount" => matches!(field.data_type(), DataType::Decimal128(12, 2)),
            _ => matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8),
        };
        if !fits {
            return Err(bad(format!(
                "column {} is {}; expected {}",
                field.name(),
                field.data_type(),
                match field.name().as_str() {
                    "order_ts" =>
                        "a timestamp in microseconds without time zone (Redshift's TIMESTAMP)",
                    "amount" => "DECIMAL(12,2) exactly (Redshift's COPY converts no Parquet type)",
                    _ => "a string",
                }
            )));
        }
    }
    for (index, group) in metadata.row_groups().iter().enumerate() {
        for (column, chunk) in group.columns().iter().enumerate() {
            let nulls = chunk
                .statistics()
                .and_then(|s| s.null_count_opt())
                .unwrap_or(0);
            if nulls > 0 {
                return Err(bad(format!(
                    "row group {index}, column {}: {nulls} null values in a column that must have a value",
                    COLUMNS[column]
                )));
            }
        }
    }
    Ok(metadata.file_metadata().num_rows().max(0) as u64)
}

#[cfg(test)]
mod tests;
