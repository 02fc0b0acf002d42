//! The MySQL pipeline's half of the CSV check: each column's configured type, and the
//! canonical CSV `LOAD DATA` reads (text quoted, no value as `NULL`).

use crate::config::{ColumnType, Dataset};
use landfall_csv_check::{CsvChecker, Encode, Layout, Origin, Record, Rejection};

/// The format `LOAD DATA` must be told the checker's output has.
pub const LOAD_DATA_FORMAT: &str =
    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n'";

/// Checks a dataset's types and writes `LOAD DATA` CSV.
pub struct LoadDataEncoder {
    columns: Vec<(ColumnType, bool)>,
}

impl Dataset {
    /// The streaming checker of this dataset's files, writing `LOAD DATA` CSV.
    pub fn checker(&self, origin: impl Into<Origin>) -> CsvChecker<LoadDataEncoder> {
        let layout = Layout {
            columns: self.columns.iter().map(|c| c.name.to_string()).collect(),
            dialect: self.csv.clone(),
        };
        let encoder = LoadDataEncoder {
            columns: self.columns.iter().map(|c| (c.kind, c.nullable)).collect(),
        };
        CsvChecker::new(layout, origin, encoder)
    }
}

impl Encode for LoadDataEncoder {
    fn encode(
        &mut self,
        record: &Record<'_>,
        _line: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), Rejection> {
        for (index, &(kind, nullable)) in self.columns.iter().enumerate() {
            let (text, quoted) = record.field(index);
            if index > 0 {
                out.push(b',');
            }
            if text.is_empty() {
                // `""` is an empty string where a column holds text; elsewhere, and unquoted,
                // an empty field is no value.
                if quoted && matches!(kind, ColumnType::Text { .. }) {
                    out.extend_from_slice(b"\"\"");
                    continue;
                }
                if !nullable {
                    return Err(Rejection::column(index, "missing value"));
                }
                out.extend_from_slice(b"NULL");
                continue;
            }
            check_value(kind, text).map_err(|reason| Rejection::column(index, reason))?;
            match kind {
                ColumnType::Text { .. } => {
                    out.push(b'"');
                    for &b in text.as_bytes() {
                        if b == b'"' {
                            out.push(b'"');
                        }
                        out.push(b);
                    }
                    out.push(b'"');
                }
                _ => out.extend_from_slice(text.as_bytes()),
            }
        }
        out.push(b'\n');
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
