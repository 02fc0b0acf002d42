//! Streaming validation of a dataset's CSV: bytes in (any chunking), canonical CSV out for
//! `LOAD DATA`, and the first problem reported with file, line and column. Memory stays
//! flat: only the current record is held.
//!
//! `csv_core` finds fields and record ends (quoting, embedded delimiters and newlines);
//! this module adds what it leaves to callers: unclosed quotes, column counts, UTF-8 and
//! the configured types.

use crate::config::{ColumnType, Dataset};
use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use landfall_runtime::{Classify, Disposition};

/// The format `LOAD DATA` must be told the checker's output has.
pub const LOAD_DATA_FORMAT: &str =
    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n'";

/// A file that cannot load as it is. Retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}{}: {reason}", column_text(.column, .field))]
pub struct BadInput {
    pub file: String,
    pub line: u64,
    /// 1-based column, when the problem is in one field.
    pub column: Option<usize>,
    pub field: Option<String>,
    pub reason: String,
}

fn column_text(column: &Option<usize>, field: &Option<String>) -> String {
    match (column, field) {
        (Some(c), Some(f)) => format!(", column {c} ({f})"),
        (Some(c), None) => format!(", column {c}"),
        _ => String::new(),
    }
}

impl Classify for BadInput {
    fn disposition(&self) -> Disposition {
        Disposition::Permanent
    }
}

pub struct CsvChecker {
    dataset: Dataset,
    file: String,
    reader: Reader,
    quote: u8,
    /// Field bytes of the current record and where each field ends (csv_core's output,
    /// kept across chunks while a record is incomplete).
    fields: Vec<u8>,
    ends: Vec<usize>,
    field_len: usize,
    end_count: usize,
    /// Line where the current record started, and quote bytes seen in it so far.
    record_line: u64,
    record_quotes: u64,
    line: u64,
    header_pending: bool,
    rows: u64,
    bytes_seen: u64,
    out: Vec<u8>,
}

impl CsvChecker {
    /// Keeps its own copy of the dataset's columns, so the checker can live in a stream.
    pub fn new(dataset: &Dataset, file: impl Into<String>) -> Self {
        let reader = ReaderBuilder::new()
            .delimiter(dataset.csv.delimiter as u8)
            .quote(dataset.csv.quote as u8)
            .double_quote(true)
            .build();
        CsvChecker {
            dataset: dataset.clone(),
            file: file.into(),
            reader,
            quote: dataset.csv.quote as u8,
            fields: vec![0; 4096],
            ends: vec![0; dataset.columns.len() + 8],
            field_len: 0,
            end_count: 0,
            record_line: 1,
            record_quotes: 0,
            line: 1,
            header_pending: dataset.csv.header,
            rows: 0,
            bytes_seen: 0,
            out: Vec::with_capacity(64 * 1024),
        }
    }

    /// Data rows accepted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Checks `chunk` and returns the canonical CSV of the records it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, BadInput> {
        if chunk.is_empty() {
            return Ok(Vec::new());
        }
        self.bytes_seen += chunk.len() as u64;
        self.run(chunk)?;
        Ok(std::mem::take(&mut self.out))
    }

    /// Ends the file: a last record without a newline is checked too, and a file with no
    /// data rows is refused.
    pub fn finish(&mut self) -> Result<Vec<u8>, BadInput> {
        self.run(&[])?;
        if self.bytes_seen == 0 {
            return Err(self.bad(1, None, "the file is empty (0 bytes)".into()));
        }
        if self.rows == 0 {
            return Err(self.bad(
                self.line,
                None,
                "the file has a header but no data rows".into(),
            ));
        }
        Ok(std::mem::take(&mut self.out))
    }

    fn run(&mut self, mut input: &[u8]) -> Result<(), BadInput> {
        loop {
            let (result, nin, nout, nend) = self.reader.read_record(
                input,
                &mut self.fields[self.field_len..],
                &mut self.ends[self.end_count..],
            );
            let consumed = &input[..nin];
            input = &input[nin..];
            self.record_quotes += consumed.iter().filter(|&&b| b == self.quote).count() as u64;
            self.line += consumed.iter().filter(|&&b| b == b'\n').count() as u64;
            // csv_core counts field ends from the start of the record across calls.
            self.field_len += nout;
            self.end_count += nend;
            match result {
                ReadRecordResult::InputEmpty => return Ok(()),
                ReadRecordResult::OutputFull => {
                    let len = self.fields.len();
                    self.fields.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                ReadRecordResult::Record => {
                    self.record()?;
                    self.field_len = 0;
                    self.end_count = 0;
                    self.record_line = self.line;
                    self.record_quotes = 0;
                }
                ReadRecordResult::End => return Ok(()),
            }
        }
    }

    fn bad(&self, line: u64, column: Option<usize>, reason: String) -> BadInput {
        BadInput {
            file: self.file.clone(),
            line,
            column,
            field: column
                .and_then(|c| self.dataset.columns.get(c - 1))
                .map(|c| c.name.to_string()),
            reason,
        }
    }

    fn record(&mut self) -> Result<(), BadInput> {
        let line = self.record_line;
        if self.record_quotes % 2 == 1 {
            return Err(self.bad(
                line,
                None,
                "a quoted field is never closed (unbalanced quote)".into(),
            ));
        }
        let count = self.end_count;
        let expected = self.dataset.columns.len();
        if self.header_pending {
            self.header_pending = false;
            let mut start = 0;
            for (i, column) in self.dataset.columns.iter().enumerate() {
                let Some(&end) = self.ends[..count].get(i) else {
                    break;
                };
                let name = String::from_utf8_lossy(&self.fields[start..end]);
                let name = name.trim().trim_start_matches('\u{feff}');
                if !name.eq_ignore_ascii_case(column.name.as_str()) {
                    return Err(self.bad(
                        line,
                        Some(i + 1),
                        format!("header names {name:?}, expected {:?}", column.name.as_str()),
                    ));
                }
                start = end;
            }
            if count != expected {
                return Err(self.bad(
                    line,
                    None,
                    format!("header has {count} columns, expected {expected}"),
                ));
            }
            return Ok(());
        }
        if count != expected {
            return Err(self.bad(
                line,
                None,
                format!("expected {expected} columns, found {count}"),
            ));
        }
        let mut start = 0;
        for index in 0..count {
            let end = self.ends[index];
            let column = &self.dataset.columns[index];
            let raw = &self.fields[start..end];
            start = end;
            let text = std::str::from_utf8(raw).map_err(|e| {
                self.bad(
                    line,
                    Some(index + 1),
                    format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                )
            })?;
            if index > 0 {
                self.out.push(b',');
            }
            if text.is_empty() {
                if !column.nullable {
                    return Err(self.bad(line, Some(index + 1), "missing value".into()));
                }
                self.out.extend_from_slice(b"NULL");
                continue;
            }
            check_value(column.kind, text)
                .map_err(|reason| self.bad(line, Some(index + 1), reason))?;
            match column.kind {
                ColumnType::Text { .. } => {
                    self.out.push(b'"');
                    for &b in text.as_bytes() {
                        if b == b'"' {
                            self.out.push(b'"');
                        }
                        self.out.push(b);
                    }
                    self.out.push(b'"');
                }
                _ => self.out.extend_from_slice(text.as_bytes()),
            }
        }
        self.out.push(b'\n');
        self.rows += 1;
        Ok(())
    }
}

fn check_value(kind: ColumnType, text: &str) -> Result<(), String> {
    match kind {
        ColumnType::Text { max_chars } => {
            let chars = text.chars().count();
            if chars > max_chars {
                return Err(format!("{chars} characters, at most {max_chars} allowed"));
            }
        }
        ColumnType::Integer => {
            text.parse::<i64>()
                .map_err(|_| format!("{text:?} is not an integer"))?;
        }
        ColumnType::Decimal { precision, scale } => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            if whole.is_empty()
                || !all_digits(whole)
                || !all_digits(fraction)
                || (digits.contains('.') && fraction.is_empty())
            {
                return Err(format!("{text:?} is not a number"));
            }
            if fraction.len() > scale as usize
                || whole.trim_start_matches('0').len() > (precision - scale) as usize
            {
                return Err(format!(
                    "{text:?} does not fit decimal({precision},{scale})"
                ));
            }
        }
        ColumnType::Date => {
            let ok = text.len() == 10
                && text.as_bytes()[4] == b'-'
                && text.as_bytes()[7] == b'-'
                && match (
                    text[..4].parse::<u32>(),
                    text[5..7].parse::<u32>(),
                    text[8..10].parse::<u32>(),
                ) {
                    (Ok(y), Ok(m), Ok(d)) => {
                        (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
                    }
                    _ => false,
                };
            if !ok {
                return Err(format!("{text:?} is not a date (YYYY-MM-DD)"));
            }
        }
        ColumnType::YearMonth => {
            let ok = text.len() == 7
                && text.as_bytes()[4] == b'-'
                && text[..4].bytes().all(|b| b.is_ascii_digit())
                && text[5..]
                    .parse::<u32>()
                    .is_ok_and(|m| (1..=12).contains(&m));
            if !ok {
                return Err(format!("{text:?} is not a year and month (YYYY-MM)"));
            }
        }
    }
    Ok(())
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests;
