//! One CSV record → one line of DynamoDB JSON, `{"Item":{"<name>":{"S":"…"},…}}`, the
//! format ImportTable reads. Each value is checked against its configured type as DynamoDB
//! would check it, so that a file either imports whole or is refused before the import.

use crate::config::{AttributeType, Dataset, KeySource};
use crate::keys::KeyIndex;
use landfall_csv_check::{CsvChecker, Encode, Origin, Record, Rejection};

/// DynamoDB's item size limit: attribute names and values together.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB numbers: up to 38 significant digits, magnitudes 1E-130 to 9.99…E+125.
const MAX_DIGITS: usize = 38;
const MIN_EXPONENT: i64 = -130;
const MAX_EXPONENT: i64 = 125;

pub struct DynamoJsonEncoder {
    /// `"<name>":` per column and for the key, pre-encoded.
    names: Vec<(Vec<u8>, AttributeType, bool)>,
    /// Columns whose value is an index key (an empty string cannot be one).
    index_keys: Vec<bool>,
    key_name: Vec<u8>,
    key_name_len: usize,
    key: KeySource,
    keys: KeyIndex,
    key_text: String,
}

impl Dataset {
    /// The streaming checker of this dataset's files, writing DynamoDB JSON lines.
    pub fn checker(&self, origin: impl Into<Origin>) -> CsvChecker<DynamoJsonEncoder> {
        let index_keys = self
            .columns
            .iter()
            .map(|c| {
                self.indexes
                    .iter()
                    .any(|i| i.partition == c.name || i.sort.as_ref() == Some(&c.name))
            })
            .collect();
        let encoder = DynamoJsonEncoder {
            names: self
                .columns
                .iter()
                .map(|c| (json_name(c.name.as_str()), c.kind, c.nullable))
                .collect(),
            index_keys,
            key_name: json_name(self.key_attribute.as_str()),
            key_name_len: self.key_attribute.as_str().len(),
            key: self.key.clone(),
            keys: KeyIndex::default(),
            key_text: String::new(),
        };
        CsvChecker::new(self.layout(), origin, encoder)
    }
}

/// `"name":` — configured names are identifiers, nothing to escape.
fn json_name(name: &str) -> Vec<u8> {
    format!("\"{name}\":").into_bytes()
}

impl DynamoJsonEncoder {
    /// The keys seen, with their lines, for the duplicate check across the file's parts.
    pub fn into_keys(self) -> KeyIndex {
        self.keys
    }
}

impl Encode for DynamoJsonEncoder {
    fn encode(
        &mut self,
        record: &Record<'_>,
        line: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), Rejection> {
        let start = out.len();
        let encoded = self.item(record, line, out);
        if encoded.is_err() {
            out.truncate(start);
        }
        encoded
    }
}

impl DynamoJsonEncoder {
    fn item(&mut self, record: &Record<'_>, line: u64, out: &mut Vec<u8>) -> Result<(), Rejection> {
        out.extend_from_slice(b"{\"Item\":{");
        out.extend_from_slice(&self.key_name);
        let mut size = self.key_name_len;
        match &self.key {
            KeySource::Natural(columns) => {
                self.key_text.clear();
                for (n, &column) in columns.iter().enumerate() {
                    let (text, _) = record.field(column);
                    if text.is_empty() {
                        return Err(Rejection::column(column, "missing key value"));
                    }
                    if n > 0 {
                        self.key_text.push('#');
                    }
                    for c in text.chars() {
                        match c {
                            '#' => self.key_text.push_str("%23"),
                            '%' => self.key_text.push_str("%25"),
                            c => self.key_text.push(c),
                        }
                    }
                }
                size += self.key_text.len();
                self.keys.insert(&self.key_text, line);
                out.extend_from_slice(b"{\"S\":");
                string(out, &self.key_text);
            }
            KeySource::RunningNumber => {
                let number = line.to_string();
                size += number_size(&number);
                out.extend_from_slice(b"{\"N\":\"");
                out.extend_from_slice(number.as_bytes());
                out.extend_from_slice(b"\"");
            }
        }
        out.push(b'}');
        for (index, (name, kind, nullable)) in self.names.iter().enumerate() {
            let (text, quoted) = record.field(index);
            out.push(b',');
            out.extend_from_slice(name);
            size += name.len() - 3; // without the quotes and colon
            if text.is_empty() {
                if quoted && *kind == AttributeType::String && !self.index_keys[index] {
                    out.extend_from_slice(b"{\"S\":\"\"}");
                    continue;
                }
                if !*nullable {
                    return Err(Rejection::column(index, "missing value"));
                }
                out.extend_from_slice(b"{\"NULL\":true}");
                size += 1;
                continue;
            }
            match kind {
                AttributeType::String => {
                    out.extend_from_slice(b"{\"S\":");
                    string(out, text);
                    out.push(b'}');
                    size += text.len();
                }
                AttributeType::Number => {
                    let number = text.strip_prefix('+').unwrap_or(text);
                    check_number(number).map_err(|reason| Rejection::column(index, reason))?;
                    out.extend_from_slice(b"{\"N\":\"");
                    out.extend_from_slice(number.as_bytes());
                    out.extend_from_slice(b"\"}");
                    size += number_size(number);
                }
                AttributeType::Boolean => {
                    let value = if text.eq_ignore_ascii_case("true") {
                        "true"
                    } else if text.eq_ignore_ascii_case("false") {
                        "false"
                    } else {
                        return Err(Rejection::column(
                            index,
                            format!("{text:?} is not a boolean (true or false)"),
                        ));
                    };
                    out.extend_from_slice(b"{\"BOOL\":");
                    out.extend_from_slice(value.as_bytes());
                    out.push(b'}');
                    size += 1;
                }
            }
        }
        if size > MAX_ITEM_BYTES {
            return Err(Rejection::record(format!(
                "the item would be {size} bytes; DynamoDB holds at most {MAX_ITEM_BYTES} (400 KB)"
            )));
        }
        out.extend_from_slice(b"}}\n");
        Ok(())
    }
}

/// A JSON string, escaped by serde_json (writing into a Vec cannot fail).
fn string(out: &mut Vec<u8>, text: &str) {
    let _ = serde_json::to_writer(&mut *out, text);
}

/// The digits of a DynamoDB number, checked: `[-]digits[.digits][e[±]digits]`.
fn check_number(text: &str) -> Result<(), String> {
    let not_a_number = || format!("{text:?} is not a number");
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(not_a_number());
            }
            (m, e.parse::<i64>().map_err(|_| not_a_number())?)
        }
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !all_digits(whole)
        || !all_digits(fraction)
        || mantissa.ends_with('.')
    {
        return Err(not_a_number());
    }
    // Significant digits: from the first non-zero digit to the last one.
    let digits = || whole.bytes().chain(fraction.bytes());
    let Some(first) = digits().position(|b| b != b'0') else {
        return Ok(()); // zero
    };
    let trailing_zeros = digits().rev().take_while(|&b| b == b'0').count();
    let significant = whole.len() + fraction.len() - first - trailing_zeros;
    if significant > MAX_DIGITS {
        return Err(format!(
            "{text:?} has {significant} significant digits; a DynamoDB number holds at most {MAX_DIGITS}"
        ));
    }
    // The power of ten of the first significant digit.
    let magnitude = whole.len() as i64 - 1 - first as i64 + exponent;
    if !(MIN_EXPONENT..=MAX_EXPONENT).contains(&magnitude) {
        return Err(format!(
            "{text:?} is outside the range of a DynamoDB number (1E-130 to 9.9E+125)"
        ));
    }
    Ok(())
}

/// The bytes DynamoDB counts for a number: about one per two significant digits, plus one.
pub fn number_size(text: &str) -> usize {
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    digits.div_ceil(2) + 1
}

#[cfg(test)]
mod tests;
