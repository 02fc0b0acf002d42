//! Streaming validation of a landing CSV file: bytes in (any chunking), each record handed
//! to the pipeline's [`Encode`] (which checks the configured types and writes the format
//! its loader takes), and the first problem reported with file, line and column. Memory
//! stays flat: only the current record is held.
//!
//! `csv_core` finds fields and record ends (quoting, embedded delimiters and newlines);
//! this crate adds what it leaves to callers and every file pipeline needs: unclosed
//! quotes, the header, column counts, UTF-8, empty and header-only files, line numbers
//! that stay right across the parts of a split file. `split` cuts a file into parts on
//! the same record boundaries.
#![warn(missing_docs)]

pub mod split;

use csv_core::{ReadFieldResult, Reader, ReaderBuilder};
use landfall_failure::{Classify, Disposition};
use serde::Deserialize;

/// How a dataset's CSV files are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dialect {
    /// The field separator.
    pub delimiter: char,
    /// The quote character.
    pub quote: char,
    /// The first record names the columns (checked against the configuration).
    pub header: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            delimiter: ',',
            quote: '"',
            header: true,
        }
    }
}

impl Dialect {
    /// csv_core reads bytes: a delimiter or quote outside ASCII cannot be one.
    pub fn check(&self) -> Result<(), String> {
        if self.delimiter.is_ascii() && self.quote.is_ascii() {
            Ok(())
        } else {
            Err("delimiter and quote must be ASCII".into())
        }
    }
}

/// What the checker knows of a file before its types: the columns in file order (the
/// header must name them) and the dialect.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The column names, in the file's order.
    pub columns: Vec<String>,
    /// How the file is written.
    pub dialect: Dialect,
}

/// One data record, every field valid UTF-8, as the encoder sees it.
pub struct Record<'a> {
    text: &'a str,
    ends: &'a [usize],
    quoted: &'a [bool],
}

impl<'a> Record<'a> {
    /// The number of columns.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `index` (0-based) and whether it was quoted: `""` and an empty unquoted field
    /// are both empty, and a pipeline may tell an empty string from no value by it.
    pub fn field(&self, index: usize) -> (&'a str, bool) {
        let start = index.checked_sub(1).map_or(0, |i| self.ends[i]);
        (&self.text[start..self.ends[index]], self.quoted[index])
    }
}

/// Why an encoder refused a record: the 0-based column when one field is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The column at fault (0-based), when one is.
    pub column: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl Rejection {
    /// A column's value is refused.
    pub fn column(index: usize, reason: impl Into<String>) -> Rejection {
        Rejection {
            column: Some(index),
            reason: reason.into(),
        }
    }

    /// The record as a whole is refused.
    pub fn record(reason: impl Into<String>) -> Rejection {
        Rejection {
            column: None,
            reason: reason.into(),
        }
    }
}

/// A pipeline's part of the check: the configured types of one record's fields, and its
/// encoding for the pipeline's loader, appended to `out`. The record has as many fields
/// as the layout has columns.
pub trait Encode {
    /// Checks one record's fields and writes it in the loader's format.
    fn encode(
        &mut self,
        record: &Record<'_>,
        line: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), Rejection>;
}

/// A file that cannot load as it is. Retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}{}: {reason}{}", column_text(.column, .field), part_text(.part))]
pub struct BadInput {
    /// The file as the user dropped it, and `line` counted in it — also for a split part.
    pub file: String,
    /// The line of the whole file the record starts on.
    pub line: u64,
    /// The part of a split file the record was checked in, for whoever debugs the split.
    pub part: Option<String>,
    /// 1-based column, when the problem is in one field.
    pub column: Option<usize>,
    /// The column's name, when one column is at fault.
    pub field: Option<String>,
    /// What is wrong.
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
    /// Part `part` of `file`, whose first data record is on line `first_line` of the file.
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

/// Checks a CSV stream chunk by chunk and hands each record to its encoder.
pub struct CsvChecker<E> {
    layout: Layout,
    encoder: E,
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

impl<E: Encode> CsvChecker<E> {
    /// Owns its layout and encoder, so the checker can live in a stream.
    pub fn new(layout: Layout, origin: impl Into<Origin>, encoder: E) -> Self {
        let origin = origin.into();
        let dialect = &layout.dialect;
        let reader = ReaderBuilder::new()
            .delimiter(dialect.delimiter as u8)
            .quote(dialect.quote as u8)
            .double_quote(true)
            .build();
        // A part without a header starts at its first data line; one with a header jumps
        // there once the (repeated) header is read.
        let line = match (&origin.part, dialect.header) {
            (Some((_, first_line)), false) => *first_line,
            _ => 1,
        };
        let columns = layout.columns.len();
        CsvChecker {
            quote: dialect.quote as u8,
            header_pending: dialect.header,
            layout,
            encoder,
            origin,
            reader,
            fields: vec![0; 4096],
            ends: Vec::with_capacity(columns + 8),
            quoted: Vec::with_capacity(columns + 8),
            field_len: 0,
            field_quoted: false,
            record_line: line,
            record_started: false,
            record_quotes: 0,
            line,
            after_cr: false,
            head: Some(Vec::new()),
            rows: 0,
            bytes_seen: 0,
            out: Vec::with_capacity(64 * 1024),
        }
    }

    /// Data rows accepted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The encoder, to read what it counted.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// The encoder, once the stream is done.
    pub fn into_encoder(self) -> E {
        self.encoder
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
            } else if self.layout.dialect.header {
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
            field: column.and_then(|c| self.layout.columns.get(c - 1)).cloned(),
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
        let expected = self.layout.columns.len();
        if self.header_pending {
            self.header_pending = false;
            if let Some((_, first_line)) = &self.origin.part {
                // The header is the part's own copy: its data continues the file's lines.
                self.line = *first_line;
            }
            let mut start = 0;
            for (i, column) in self.layout.columns.iter().enumerate() {
                let Some(&end) = self.ends[..count].get(i) else {
                    break;
                };
                let name = String::from_utf8_lossy(&self.fields[start..end]);
                let name = name.trim().trim_start_matches('\u{feff}');
                if !name.eq_ignore_ascii_case(column) {
                    return Err(self.bad(
                        line,
                        Some(i + 1),
                        format!("header names {name:?}, expected {column:?}"),
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
        let bytes = &self.fields[..self.field_len];
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => return Err(self.bad_utf8(line, e.valid_up_to())),
        };
        // Valid as a whole, a record can still split a character between two fields.
        if let Some(&end) = self.ends[..count]
            .iter()
            .find(|&&end| !text.is_char_boundary(end))
        {
            return Err(self.bad_utf8(line, end.saturating_sub(1)));
        }
        let record = Record {
            text,
            ends: &self.ends[..count],
            quoted: &self.quoted[..count],
        };
        if let Err(rejection) = self.encoder.encode(&record, line, &mut self.out) {
            return Err(self.bad(line, rejection.column.map(|c| c + 1), rejection.reason));
        }
        self.rows += 1;
        Ok(())
    }

    /// Invalid UTF-8 at byte `at` of the record's field bytes: names the field it is in.
    fn bad_utf8(&self, line: u64, at: usize) -> BadInput {
        let index = self.ends.iter().position(|&end| at < end).unwrap_or(0);
        let start = index.checked_sub(1).map_or(0, |i| self.ends[i]);
        self.bad(
            line,
            Some(index + 1),
            format!("invalid UTF-8 at byte {}", at - start),
        )
    }
}
