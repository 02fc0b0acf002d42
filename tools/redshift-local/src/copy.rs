//! Redshift's `COPY <table> [(columns)] FROM 's3://…' IAM_ROLE '…' [MANIFEST] FORMAT AS
//! CSV|PARQUET [IGNOREHEADER n] [DELIMITER 'c'] [TIMEFORMAT|DATEFORMAT 'auto'] [REGION 'r']`
//! on PostgreSQL: the objects read from moto and streamed into `COPY … FROM STDIN`, in the
//! transaction the statement runs in. An option this does not know is an error, never
//! ignored.

use arrow_cast::display::{ArrayFormatter, FormatOptions};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use sqlx::PgConnection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub table: String,
    pub columns: Option<String>,
    pub from: String,
    /// The role COPY reads S3 as (`IAM_ROLE '<arn>'`); None where the statement names none.
    pub iam_role: Option<String>,
    pub manifest: bool,
    pub format: Format,
    pub ignore_header: usize,
    pub delimiter: char,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Group(String),
}

fn tokens(sql: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = sql.trim().trim_end_matches(';').chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("COPY: an unclosed quote".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        value.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
            out.push(Token::Quoted(value));
        } else if c == '(' {
            let end = chars[i..]
                .iter()
                .position(|c| *c == ')')
                .ok_or("COPY: an unclosed (")?;
            out.push(Token::Group(chars[i + 1..i + end].iter().collect()));
            i += end + 1;
        } else {
            let end = chars[i..]
                .iter()
                .position(|c| c.is_whitespace() || *c == '(' || *c == '\'')
                .unwrap_or(chars.len() - i);
            out.push(Token::Word(chars[i..i + end].iter().collect()));
            i += end;
        }
    }
    Ok(out)
}

/// The COPY from S3 this statement is, if it is one.
pub fn parse(sql: &str) -> Result<Option<Copy>, String> {
    if !super::first_word(sql).eq_ignore_ascii_case("COPY") {
        return Ok(None);
    }
    let tokens = tokens(super::code(sql))?;
    let word = |t: Option<&Token>| match t {
        Some(Token::Word(w)) => Some(w.to_ascii_uppercase()),
        _ => None,
    };
    if word(tokens.first()).as_deref() != Some("COPY") {
        return Ok(None);
    }
    let mut rest = tokens[1..].iter().peekable();
    let table = match rest.next() {
        Some(Token::Word(table)) => table.clone(),
        _ => return Err("COPY: a table name must follow COPY".into()),
    };
    let columns = match rest.peek() {
        Some(Token::Group(columns)) => {
            let columns = columns.clone();
            rest.next();
            Some(columns)
        }
        _ => None,
    };
    if word(rest.next()).as_deref() != Some("FROM") {
        return Ok(None);
    }
    let from = match rest.next() {
        Some(Token::Quoted(from)) if from.starts_with("s3://") => from.clone(),
        // COPY … FROM STDIN and the like are PostgreSQL's own.
        _ => return Ok(None),
    };
    let mut copy = Copy {
        table,
        columns,
        from,
        iam_role: None,
        manifest: false,
        format: Format::Csv,
        ignore_header: 0,
        delimiter: '|',
    };
    let mut csv = false;
    let value = |rest: &mut std::iter::Peekable<std::slice::Iter<'_, Token>>,
                 option: &str|
     -> Result<String, String> {
        if matches!(rest.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("AS")) {
            rest.next();
        }
        match rest.next() {
            Some(Token::Quoted(v)) | Some(Token::Word(v)) => Ok(v.clone()),
            _ => Err(format!("COPY: {option} needs a value")),
        }
    };
    let mut options = Vec::new();
    while let Some(token) = rest.next() {
        let Token::Word(option) = token else {
            return Err(format!("COPY: unexpected {token:?}"));
        };
        options.push(option.to_ascii_uppercase());
        match option.to_ascii_uppercase().as_str() {
            "IAM_ROLE" => copy.iam_role = Some(value(&mut rest, option)?),
            "REGION" => {
                value(&mut rest, option)?;
            }
            "CREDENTIALS" => {
                return Err("COPY: the local stack emulates IAM_ROLE '<arn>' only".into())
            }
            "MANIFEST" => copy.manifest = true,
            "FORMAT" => {
                let format = value(&mut rest, option)?.to_ascii_uppercase();
                match format.as_str() {
                    "CSV" => csv = true,
                    "PARQUET" => copy.format = Format::Parquet,
                    other => {
                        return Err(format!(
                            "COPY: the local stack does not emulate FORMAT {other}"
                        ))
                    }
                }
            }
            "CSV" => csv = true,
            "PARQUET" => copy.format = Format::Parquet,
            "IGNOREHEADER" => {
                copy.ignore_header = value(&mut rest, option)?
                    .parse()
                    .map_err(|_| "COPY: IGNOREHEADER needs a number".to_string())?
            }
            "DELIMITER" => {
                let d = value(&mut rest, option)?;
                let mut chars = d.chars();
                copy.delimiter = match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii() => c,
                    _ => return Err(format!("COPY: DELIMITER {d:?} must be one ASCII character")),
                };
            }
            // PostgreSQL reads ISO dates and times, with or without the T, as 'auto' does.
            "TIMEFORMAT" | "DATEFORMAT" => {
                let format = value(&mut rest, option)?;
                if !format.eq_ignore_ascii_case("auto") {
                    return Err(format!(
                        "COPY: the local stack emulates {option} 'auto' only"
                    ));
                }
            }
            other => {
                return Err(format!(
                    "COPY: the local stack does not emulate the option {other}"
                ))
            }
        }
    }
    // COPY from Parquet takes only these parameters (Redshift developer guide, "COPY from
    // columnar data formats"); REGION, for one, fails there.
    if !csv && copy.format == Format::Parquet {
        let allowed = ["IAM_ROLE", "CREDENTIALS", "MANIFEST", "FORMAT", "PARQUET"];
        if let Some(option) = options.iter().find(|o| !allowed.contains(&o.as_str())) {
            return Err(format!(
                "ERROR: {option} argument is not supported for PARQUET based COPY"
            ));
        }
    }
    if csv {
        copy.format = Format::Csv;
        if copy.delimiter == '|' {
            copy.delimiter = ',';
        }
    } else if copy.format == Format::Csv {
        return Err("COPY: the local stack emulates FORMAT AS CSV and PARQUET only".into());
    }
    Ok(Some(copy))
}

fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url} is not an s3:// URL"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    Ok((bucket.to_owned(), key.to_owned()))
}

async fn get(
    s3: &aws_sdk_s3::Client,
    url: &str,
) -> Result<aws_sdk_s3::primitives::ByteStream, String> {
    let (bucket, key) = split_url(url)?;
    s3.get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map(|out| out.body)
        .map_err(|e| {
            format!(
                "ERROR: S3 GetObject {url}: {}",
                landfall_failure::error_chain(&e)
            )
        })
}

impl Copy {
    /// The objects to read: a manifest's entries, or every object under the prefix.
    async fn objects(&self, s3: &aws_sdk_s3::Client) -> Result<Vec<String>, String> {
        if self.manifest {
            let body = get(s3, &self.from)
                .await?
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            let manifest: Value = serde_json::from_slice(&body.into_bytes())
                .map_err(|e| format!("ERROR: manifest {} is not JSON: {e}", self.from))?;
            let mut urls = Vec::new();
            for entry in manifest["entries"].as_array().into_iter().flatten() {
                let url = entry["url"]
                    .as_str()
                    .ok_or("ERROR: a manifest entry without url")?;
                if self.format == Format::Parquet && entry.pointer("/meta/content_length").is_none()
                {
                    return Err(format!(
                        "ERROR: manifest entry {url}: meta.content_length is required for Parquet"
                    ));
                }
                let mandatory = entry["mandatory"].as_bool().unwrap_or(false);
                let (bucket, key) = split_url(url)?;
                let exists = s3
                    .head_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .is_ok();
                match (exists, mandatory) {
                    (true, _) => urls.push(url.to_owned()),
                    (false, true) => {
                        return Err(format!(
                            "ERROR: Manifest file is missing mandatory file {url}"
                        ))
                    }
                    (false, false) => {}
                }
            }
            return Ok(urls);
        }
        let (bucket, prefix) = split_url(&self.from)?;
        let mut urls = Vec::new();
        let mut pages = s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("ERROR: S3 ListObjectsV2: {e}"))?;
            urls.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(|k| format!("s3://{bucket}/{k}")),
            );
        }
        if urls.is_empty() {
            return Err(format!(
                "ERROR: The specified S3 prefix '{prefix}' does not exist"
            ));
        }
        Ok(urls)
    }

    /// Streams every object into the table; the rows loaded.
    pub fn run<'a>(
        &'a self,
        s3: &'a aws_sdk_s3::Client,
        conn: &'a mut PgConnection,
    ) -> futures::future::BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            let columns = self
                .columns
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let statement = format!(
                "COPY {}{columns} FROM STDIN WITH (FORMAT csv, DELIMITER '{}')",
                self.table, self.delimiter
            );
            // Parquet columns go by position into the target's, and each must already have
            // the target column's type.
            let target = match self.format {
                Format::Parquet => self.target_columns(conn).await?,
                Format::Csv => Vec::new(),
            };
            let mut loaded = 0;
            for url in self.objects(s3).await? {
                let mut copy = conn
                    .copy_in_raw(&statement)
                    .await
                    .map_err(|e| super::database_error(&e))?;
                let sent = match self.format {
                    Format::Csv => send_csv(s3, &url, self.ignore_header, &mut copy).await,
                    Format::Parquet => {
                        send_parquet(s3, &url, &target, self.delimiter, &mut copy).await
                    }
                };
                match sent {
                    Ok(()) => {
                        loaded += copy.finish().await.map_err(|e| {
                            format!(
                                "Load into table '{}' failed: {}",
                                self.table,
                                super::database_error(&e)
                            )
                        })?
                    }
                    Err(message) => {
                        let _ = copy.abort(message.clone()).await;
                        return Err(format!(
                            "Load into table '{}' failed: {message}",
                            self.table
                        ));
                    }
                }
            }
            bytes_within_varchar_lengths(&self.table, conn).await?;
            Ok(loaded)
        })
    }

    /// The columns COPY fills, in order (the statement's list, else the table's), each
    /// with its type as PostgreSQL spells it (`numeric(12,2)`, `character varying(16)`).
    async fn target_columns(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<(String, String)>, String> {
        let table: Vec<(String, String)> = sqlx::query_as(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        )
        .bind(&self.table)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| super::database_error(&e))?;
        let Some(listed) = &self.columns else {
            return Ok(table);
        };
        listed
            .split(',')
            .map(|name| {
                let name = name.trim().trim_matches('"').to_lowercase();
                table
                    .iter()
                    .find(|(column, _)| *column == name)
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "ERROR: column \"{name}\" of relation \"{}\" does not exist",
                            self.table
                        )
                    })
            })
            .collect()
    }
}

/// Whether Redshift's COPY loads a Parquet column of `parquet` type into a column of `pg`
/// type. It converts no types ("COPY from columnar data formats"; a mismatch is a Spectrum
/// scan error): a string into a character column, a decimal of the column's precision and
/// scale, a timestamp in microseconds, integers and floats of the column's width. Where the
/// guide is silent this is stricter than Redshift, never looser.
fn parquet_fits(parquet: &arrow_schema::DataType, pg: &str) -> bool {
    use arrow_schema::{DataType, TimeUnit};
    match parquet {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            pg.starts_with("character") || pg == "text"
        }
        DataType::Decimal128(precision, scale) => pg == format!("numeric({precision},{scale})"),
        DataType::Timestamp(TimeUnit::Microsecond, None) => pg == "timestamp without time zone",
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => pg == "timestamp with time zone",
        DataType::Date32 => pg == "date",
        DataType::Boolean => pg == "boolean",
        DataType::Int16 => pg == "smallint",
        DataType::Int32 => pg == "integer",
        DataType::Int64 => pg == "bigint",
        DataType::Float32 => pg == "real",
        DataType::Float64 => pg == "double precision",
        _ => false,
    }
}

/// A Parquet file's schema against the columns COPY fills: as many, each of a type
/// `parquet_fits`.
fn parquet_schema_fits(
    url: &str,
    schema: &arrow_schema::Schema,
    target: &[(String, String)],
) -> Result<(), String> {
    if schema.fields().len() != target.len() {
        return Err(format!(
            "ERROR: {url} has {} columns and the target {}: they must match (COPY from columnar data formats)",
            schema.fields().len(),
            target.len()
        ));
    }
    for (field, (column, pg)) in schema.fields().iter().zip(target) {
        if !parquet_fits(field.data_type(), pg) {
            return Err(format!(
                "ERROR: Spectrum Scan Error: File '{url}' has an incompatible Parquet schema for column '{column}'. Column type: {pg}, Parquet schema: {} {}",
                field.name(),
                field.data_type()
            ));
        }
    }
    Ok(())
}

/// Redshift counts a VARCHAR(n)'s or CHAR(n)'s length in bytes, PostgreSQL in characters: a
/// value of n characters and more than n bytes (any non-ASCII text) loads here and fails
/// Redshift's COPY ("String length exceeds DDL length", Redshift developer guide,
/// "Character types"); a CHAR takes no multibyte character at all. Checked after the load,
/// in its transaction, so the COPY fails as Redshift's would.
async fn bytes_within_varchar_lengths(table: &str, conn: &mut PgConnection) -> Result<(), String> {
    let name = table.rsplit('.').next().unwrap_or(table).trim_matches('"');
    let limits: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT column_name::text, character_maximum_length, data_type = 'character' \
         FROM information_schema.columns \
         WHERE table_name = lower($1) AND character_maximum_length IS NOT NULL \
         AND data_type IN ('character varying', 'character')",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| super::database_error(&e))?;
    for (column, limit, fixed) in limits {
        let quoted = column.replace('"', "\"\"");
        let (longest, multibyte): (Option<i32>, Option<bool>) = sqlx::query_as(&format!(
            "SELECT max(octet_length(\"{quoted}\")), \
             bool_or(octet_length(\"{quoted}\") <> char_length(\"{quoted}\")) FROM {table}"
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| super::database_error(&e))?;
        // A CHAR column takes single-byte characters only (Redshift developer guide,
        // "Preparing your input data").
        if fixed && multibyte == Some(true) {
            return Err(format!(
                "Load into table '{table}' failed: Multibyte character not supported for CHAR \
                 (Hint: try using VARCHAR): column {column}"
            ));
        }
        if let Some(bytes) = longest.filter(|bytes| *bytes > limit) {
            return Err(format!(
                "Load into table '{table}' failed: String length exceeds DDL length: column \
                 {column} is {limit} bytes long and a value has {bytes} bytes"
            ));
        }
    }
    Ok(())
}

type CopyIn<'c> = sqlx::postgres::PgCopyIn<&'c mut PgConnection>;

async fn send_csv(
    s3: &aws_sdk_s3::Client,
    url: &str,
    header_lines: usize,
    copy: &mut CopyIn<'_>,
) -> Result<(), String> {
    let mut body = get(s3, url).await?;
    let mut skip = header_lines;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?
    {
        let mut chunk: Bytes = chunk;
        while skip > 0 && !chunk.is_empty() {
            match chunk.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    chunk = chunk.slice(end + 1..);
                    skip -= 1;
                }
                None => chunk = Bytes::new(),
            }
        }
        if !chunk.is_empty() {
            copy.send(chunk)
                .await
                .map_err(|e| super::database_error(&e))?;
        }
    }
    Ok(())
}

/// Parquet columns map onto the table's by position, as Redshift's COPY maps them.
async fn send_parquet(
    s3: &aws_sdk_s3::Client,
    url: &str,
    target: &[(String, String)],
    delimiter: char,
    copy: &mut CopyIn<'_>,
) -> Result<(), String> {
    let bytes = get(s3, url)
        .await?
        .collect()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?
        .into_bytes();
    // Redshift reads Parquet through Spectrum and names a file it cannot read so.
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| {
        format!("ERROR: Spectrum Scan Error: File '{url}' is not a valid Parquet file: {e}")
    })?;
    parquet_schema_fits(url, builder.schema(), target)?;
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| format!("{url} is not a Parquet file: {e}"))?;
    for batch in reader {
        let batch = batch.map_err(|e| format!("{url}: {e}"))?;
        let text = csv_rows(&batch, delimiter).map_err(|e| format!("{url}: {e}"))?;
        copy.send(text.into_bytes())
            .await
            .map_err(|e| super::database_error(&e))?;
    }
    Ok(())
}

/// A record batch as CSV rows (NULL unquoted and empty, every value quoted), the text
/// `COPY … FROM STDIN WITH (FORMAT csv)` reads.
fn csv_rows(
    batch: &arrow_array::RecordBatch,
    delimiter: char,
) -> Result<String, arrow_schema::ArrowError> {
    let options = FormatOptions::default().with_null("");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut text = String::with_capacity(batch.num_rows() * 64);
    for row in 0..batch.num_rows() {
        for (i, (formatter, column)) in formatters.iter().zip(batch.columns()).enumerate() {
            if i > 0 {
                text.push(delimiter);
            }
            if column.is_null(row) {
                continue;
            }
            let value = formatter.value(row).to_string();
            text.push('"');
            text.push_str(&value.replace('"', "\"\""));
            text.push('"');
        }
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redshift_copy_statements_are_understood() {
        let copy = parse("COPY orders_staging (order_id, amount) FROM 's3://b/m/x.manifest' IAM_ROLE 'arn:aws:iam::1:role/r' MANIFEST FORMAT AS CSV IGNOREHEADER 1 TIMEFORMAT 'auto'")
            .unwrap()
            .unwrap();
        assert_eq!(
            copy,
            Copy {
                table: "orders_staging".into(),
                columns: Some("order_id, amount".into()),
                from: "s3://b/m/x.manifest".into(),
                iam_role: Some("arn:aws:iam::1:role/r".into()),
                manifest: true,
                format: Format::Csv,
                ignore_header: 1,
                delimiter: ',',
            }
        );
        let copy = parse("copy t from 's3://b/p/' iam_role default format as parquet")
            .unwrap()
            .unwrap();
        assert_eq!(
            (copy.format, copy.manifest, copy.columns),
            (Format::Parquet, false, None)
        );
        assert_eq!(parse("COPY t FROM STDIN").unwrap(), None);
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert!(
            parse("COPY t FROM 's3://b/k' IAM_ROLE 'r' CSV ACCEPTINVCHARS")
                .unwrap_err()
                .contains("ACCEPTINVCHARS")
        );
        assert!(parse("COPY t FROM 's3://b/k' IAM_ROLE 'r' FORMAT AS JSON 'auto'").is_err());
        for option in ["REGION 'eu-west-2'", "IGNOREHEADER 1", "TIMEFORMAT 'auto'"] {
            let refused = parse(&format!(
                "COPY t FROM 's3://b/p/' IAM_ROLE 'r' FORMAT AS PARQUET {option}"
            ))
            .unwrap_err();
            assert!(refused.contains("not supported for PARQUET"), "{refused}");
        }
    }
}
