//! Tables to CSV, streamed row by row from the server to a [`ByteSink`] (an S3 multipart
//! upload in mysql-reporter): memory holds one buffer, whatever the table's size.
//!
//! CSV is written here rather than with the `csv` crate because a report must tell NULL
//! from an empty string: NULL is an empty unquoted field, "" a quoted empty one, and the
//! `csv` writer cannot quote one empty field and not another.

use crate::MysqlError;
use landfall_aws::s3_stream::ByteSink;
use landfall_failure::Classify;
use landfall_mysql_datasets::Ident;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};

fn sink_failed<E: std::error::Error + Classify + Send + Sync + 'static>(err: E) -> MysqlError {
    MysqlError::Export {
        disposition: err.disposition(),
        source: Box::new(err),
    }
}

const FLUSH_AT: usize = 1 << 20;

/// Writes `SELECT * FROM table` as CSV with a header row; returns the data rows written.
pub async fn table_csv<S: ByteSink>(
    conn: &mut Conn,
    table: &Ident,
    sink: &mut S,
) -> Result<u64, MysqlError> {
    let mut result = conn
        .query_iter(format!("SELECT * FROM {}", table.quoted()))
        .await?;
    let columns: Vec<String> = result
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let mut buffer = Vec::with_capacity(FLUSH_AT + 4096);
    for (i, name) in columns.iter().enumerate() {
        if i > 0 {
            buffer.push(b',');
        }
        field(&mut buffer, name.as_bytes());
    }
    buffer.push(b'\n');
    let mut rows = 0;
    while let Some(row) = result.next().await? {
        for i in 0..row.len() {
            if i > 0 {
                buffer.push(b',');
            }
            match row.as_ref(i) {
                None | Some(Value::NULL) => {}
                Some(Value::Bytes(bytes)) => field(&mut buffer, bytes),
                Some(other) => field(
                    &mut buffer,
                    other.as_sql(true).trim_matches('\'').as_bytes(),
                ),
            }
        }
        buffer.push(b'\n');
        rows += 1;
        if buffer.len() >= FLUSH_AT {
            sink.write(&buffer).await.map_err(sink_failed)?;
            buffer.clear();
        }
    }
    sink.write(&buffer).await.map_err(sink_failed)?;
    Ok(rows)
}

/// RFC 4180 quoting; an empty string is quoted so that it differs from NULL.
fn field(out: &mut Vec<u8>, value: &[u8]) {
    let needs_quotes = value.is_empty()
        || value
            .iter()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !needs_quotes {
        out.extend_from_slice(value);
        return;
    }
    out.push(b'"');
    for &b in value {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        let mut out = Vec::new();
        for value in [&b"plain"[..], b"", b"a,b", b"say \"hi\"", b"two\nlines"] {
            super::field(&mut out, value);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"\"|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|"
        );
    }
}
