//! Streaming validation of a dataset's CSV: bytes in (any chunking), canonical CSV out for
//! `LOAD DATA`, and the first problem reported with file, line and column. Memory stays
//! flat: only the current record is held.
//!
//! `csv_core` finds fields and record ends (quoting, embedded delimiters and newlines);
//! this module adds what it leaves to callers: unclosed quotes, column counts, UTF-8 and
//! the configured types.

use crate::config::{ColumnType, Dataset};
use csv_core::{ReadFieldResult, Reader, ReaderBuilder};
use landfall_failure::{Classify, Disposition};

/// The format `LOAD DATA` must be told the checker's output has.
pub const LOAD_DATA_FORMAT: &str =
    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n'";

/// A file that cannot load as it is. Retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}{}: {reason}{}", column_text(.column, .field), part_text(.part))]
pub struct BadInput {
    /// The file as the user dropped it, and `line` counted in it — also for a split part.
    pub file: String,
    pub line: u64,
    /// The part of a split file the record was checked in, for whoever debugs the split.
    pub part: Option<String>,
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

fn part_text(part: &Option<String>) -> String {
    part.as_ref()
        .map(|p| format!(" (checked in part {p})"))
        .unwrap_or_default()
}

/// Where the checked bytes come from, in the words of the person who dropped the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The landed file.
    pub file: String,
    /// For a part of a split file: the part, and the file's line its first data record is on
    /// (every part repeats the header, which is not counted again).
    pub part: Option<(String, u64)>,
}

impl Origin {
    pub fn part(file: impl Into<String>, part: impl Into<String>, first_line: u64) -> Origin {
        Origin {
            file: file.into(),
            part: Some((part.into(), first_line)),
        }
    }
}

impl From<&str> for Origin {
    fn from(file: &str) -> Origin {
        Origin {
            file: file.to_owned(),
            part: None,
        }
    }
}

impl From<&String> for Origin {
    fn from(file: &String) -> Origin {
        Origin::from(file.as_str())
    }
}

impl From<String> for Origin {
    fn from(file: String) -> Origin {
        Origin { file, part: None }
    }
}

/// The UTF-8 byte order mark Excel and many Windows tools write first.
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Classify for BadInput {
    fn disposition(&self) -> Disposition {
        Disposition::Permanent
    }
}

pub struct CsvChecker {
    dataset: Dataset,
    origin: Origin,
    reader: Reader,
    quote: u8,
    /// Field bytes of the current record and, per field, where it ends and whether it was
    /// quoted (csv_core's output, kept across chunks while a record is incomplete).
    fields: Vec<u8>,
    ends: Vec<usize>,
    quoted: Vec<bool>,
    field_len: usize,
    field_quoted: bool,
    /// Line where the current record started (set at its first byte: blank lines before a
    /// record are skipped), and quote bytes seen in it so far.
    record_line: u64,
    record_started: bool,
    record_quotes: u64,
    /// The line the next byte is on. A line ends at `\n`, `\r\n` or a lone `\r`, so the
    /// count needs to know whether the byte before was `\r` (it may be in the last chunk).
    line: u64,
    after_cr: bool,
    /// Bytes held at the start of the file until it is known whether they are a BOM.
    head: Option<Vec<u8>>,
    header_pending: bool,
    rows: u64,
    bytes_seen: u64,
    out: Vec<u8>,
}

impl CsvChecker {
    /// Keeps its own copy of the dataset's columns, so the checker can live in a stream.
    pub fn new(dataset: &Dataset, origin: impl Into<Origin>) -> Self {
        let origin = origin.into();
        let reader = ReaderBuilder::new()
            .delimiter(dataset.csv.delimiter as u8)
            .quote(dataset.csv.quote as u8)
            .double_quote(true)
            .build();
        // A part without a header starts at its first data line; one with a header jumps
        // there once the (repeated) header is read.
        let line = match (&origin.part, dataset.csv.header) {
            (Some((_, first_line)), false) => *first_line,
            _ => 1,
        };
        CsvChecker {
            dataset: dataset.clone(),
            origin,
            reader,
            quote: dataset.csv.quote as u8,
            fields: vec![0; 4096],
            ends: Vec::with_capacity(dataset.columns.len() + 8),
            quoted: Vec::with_capacity(dataset.columns.len() + 8),
            field_len: 0,
            field_quoted: false,
            record_line: line,
            record_started: false,
            record_quotes: 0,
            line,
            after_cr: false,
            head: Some(Vec::new()),
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
        match self.head.as_mut() {
            Some(head) => {
                head.extend_from_slice(chunk);
                if head.len() < BOM.len() && BOM.starts_with(head) {
                    return Ok(Vec::new()); // could still be a BOM: wait for more
                }
                self.start()?;
            }
            None => self.run(chunk)?,
        }
        Ok(std::mem::take(&mut self.out))
    }

    /// Checks the bytes held at the start, without the BOM if they begin with one.
    fn start(&mut self) -> Result<(), BadInput> {
        let Some(head) = self.head.take() else {
            return Ok(());
        };
        self.run(head.strip_prefix(BOM).unwrap_or(&head))
    }

    /// Ends the file: a last record without a newline is checked too, and a file with no
    /// data rows is refused.
    pub fn finish(&mut self) -> Result<Vec<u8>, BadInput> {
        self.start()?;
        self.run(&[])?;
        if self.bytes_seen == 0 {
            return Err(self.bad(1, None, "the file is empty (0 bytes)".into()));
        }
        if self.rows == 0 {
            let reason = if self.header_pending {
                "the file has no header and no data rows: it holds only blank lines"
            } else if self.dataset.csv.header {
                "the file has a header but no data rows"
            } else {
                "the file has no data rows: it holds only blank lines"
            };
            return Err(self.bad(self.line, None, reason.into()));
        }
        Ok(std::mem::take(&mut self.out))
    }

    /// Checks `input`; an empty `input` tells csv_core the file has ended.
    fn run(&mut self, mut input: &[u8]) -> Result<(), BadInput> {
        let end_of_file = input.is_empty();
        loop {
            if input.is_empty() && !end_of_file {
                return Ok(());
            }
            let (result, nin, nout) = self
                .reader
                .read_field(input, &mut self.fields[self.field_len..]);
            let consumed = &input[..nin];
            input = &input[nin..];
            self.count(consumed);
            self.field_len += nout;
            match result {
                ReadFieldResult::InputEmpty | ReadFieldResult::End => return Ok(()),
                ReadFieldResult::OutputFull => {
                    let len = self.fields.len();
                    self.fields.resize(len * 2, 0);
                }
                ReadFieldResult::Field { record_end } => {
                    self.ends.push(self.field_len);
                    self.quoted.push(std::mem::take(&mut self.field_quoted));
                    if record_end {
                        self.record()?;
                        self.field_len = 0;
                        self.ends.clear();
                        self.quoted.clear();
                        self.record_started = false;
                        self.record_quotes = 0;
                    }
                }
            }
        }
    }

    /// Lines, the start of a record, and quotes in the bytes csv_core just consumed.
    fn count(&mut self, consumed: &[u8]) {
        for &b in consumed {
            match b {
                b'\n' if self.after_cr => {}
                b'\n' | b'\r' => self.line += 1,
                _ if !self.record_started => {
                    self.record_started = true;
                    self.record_line = self.line;
                }
                _ => {}
            }
            self.after_cr = b == b'\r';
            if b == self.quote {
                self.record_quotes += 1;
                self.field_quoted = true;
            }
        }
    }

    fn bad(&self, line: u64, column: Option<usize>, reason: String) -> BadInput {
        BadInput {
            file: self.origin.file.clone(),
            line,
            part: self.origin.part.as_ref().map(|(part, _)| part.clone()),
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
        let count = self.ends.len();
        let expected = self.dataset.columns.len();
        if self.header_pending {
            self.header_pending = false;
            if let Some((_, first_line)) = &self.origin.part {
                // The header is the part's own copy: its data continues the file's lines.
                self.line = *first_line;
            }
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
                // `""` is an empty string where a column holds text; elsewhere, and unquoted,
                // an empty field is no value.
                let text_column = matches!(column.kind, ColumnType::Text { .. });
                if self.quoted[index] && text_column {
                    self.out.extend_from_slice(b"\"\"");
                    continue;
                }
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
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests;
