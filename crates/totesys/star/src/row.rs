//! One source row from a JSON line, read field by field so that every problem names its
//! column: a missing column, a wrong type, a malformed date or amount.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use time::macros::format_description;
use time::{Date, PrimitiveDateTime, Time};

/// numeric(10,2) exactly, as hundredths: money never passes through a binary float.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Money(pub i64);

impl Money {
    /// Precision 10, scale 2: at most 8 digits before the point.
    pub const MAX: i64 = 9_999_999_999;

    pub fn parse(text: &str) -> Option<Money> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || whole.len() > 8
            || fraction.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let cents = whole.parse::<i64>().ok()? * 100
            + match fraction.len() {
                0 => 0,
                1 => fraction.parse::<i64>().ok()? * 10,
                _ => fraction.parse::<i64>().ok()?,
            };
        Some(Money(if negative { -cents } else { cents }))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

/// What is wrong with one column of one row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {reason}")]
pub struct FieldError {
    pub column: String,
    pub reason: String,
}

/// One JSON line's fields, borrowed from the line: each value is kept as its raw JSON text
/// and converted only when its column is read (no `Value` tree, no allocation per field —
/// the transform reads millions of these).
pub struct SourceRow<'a>(Vec<(&'a str, &'a RawValue)>);

struct Fields<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'de>, M::Error> {
                let mut fields = Vec::with_capacity(16);
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

impl<'a> SourceRow<'a> {
    pub fn parse(line: &'a str) -> Result<SourceRow<'a>, FieldError> {
        match serde_json::from_str::<Fields<'a>>(line) {
            Ok(Fields(fields)) => Ok(SourceRow(fields)),
            Err(e) if e.is_data() => Err(FieldError {
                column: "-".into(),
                reason: format!("the line is not a JSON object of plain column names ({e})"),
            }),
            Err(e) => Err(FieldError {
                column: "-".into(),
                reason: format!("not JSON ({e})"),
            }),
        }
    }

    fn field(&self, column: &str) -> Result<&'a RawValue, FieldError> {
        self.0
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, value)| *value)
            .ok_or_else(|| bad(column, "missing"))
    }

    fn present(&self, column: &str) -> Result<Option<&'a str>, FieldError> {
        match self.field(column)?.get() {
            "null" => Ok(None),
            value => Ok(Some(value)),
        }
    }

    fn required(&self, column: &str) -> Result<&'a str, FieldError> {
        self.present(column)?
            .ok_or_else(|| bad(column, "null where the schema says NOT NULL"))
    }

    /// A JSON string's text: borrowed unless it has escapes.
    fn str(&self, column: &str) -> Result<Cow<'a, str>, FieldError> {
        let raw = self.required(column)?;
        match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
            _ => serde_json::from_str::<String>(raw)
                .map(Cow::Owned)
                .map_err(|_| bad(column, format!("not text: {raw}"))),
        }
    }

    pub fn int(&self, column: &str) -> Result<i32, FieldError> {
        let value = self.required(column)?;
        value
            .parse::<i32>()
            .map_err(|_| bad(column, format!("not a 32-bit integer: {value}")))
    }

    pub fn int_opt(&self, column: &str) -> Result<Option<i32>, FieldError> {
        match self.present(column)? {
            None => Ok(None),
            Some(_) => self.int(column).map(Some),
        }
    }

    pub fn text(&self, column: &str) -> Result<String, FieldError> {
        self.str(column).map(Cow::into_owned)
    }

    pub fn text_opt(&self, column: &str) -> Result<Option<String>, FieldError> {
        match self.present(column)? {
            None => Ok(None),
            Some(_) => self.text(column).map(Some),
        }
    }

    pub fn boolean(&self, column: &str) -> Result<bool, FieldError> {
        match self.required(column)? {
            "true" => Ok(true),
            "false" => Ok(false),
            value => Err(bad(column, format!("not a boolean: {value}"))),
        }
    }

    pub fn money(&self, column: &str) -> Result<Money, FieldError> {
        let text = self.str(column)?;
        Money::parse(&text).ok_or_else(|| bad(column, format!("not a numeric(10,2): {text:?}")))
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmm` (timezone-less, as the source keeps it).
    pub fn timestamp(&self, column: &str) -> Result<(Date, Time), FieldError> {
        let text = self.str(column)?;
        if let Some(stamp) = fixed_timestamp(&text) {
            return Ok(stamp);
        }
        let parsed = PrimitiveDateTime::parse(
            &text,
            format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
            ),
        )
        .map_err(|e| {
            bad(
                column,
                format!("not a timestamp with milliseconds: {text:?} ({e})"),
            )
        })?;
        Ok((parsed.date(), parsed.time()))
    }

    /// `YYYY-MM-DD` (the source's TEXT dates).
    pub fn date(&self, column: &str) -> Result<Date, FieldError> {
        let text = self.str(column)?;
        if let Some(date) = fixed_date(text.as_bytes()) {
            return Ok(date);
        }
        Date::parse(&text, format_description!("[year]-[month]-[day]"))
            .map_err(|e| bad(column, format!("not a date YYYY-MM-DD: {text:?} ({e})")))
    }
}

/// The fast path for the one layout db-extract writes (`time`'s general parser is the
/// hot spot at millions of rows); anything else, including invalid dates, goes to the
/// general parser, which also words the error.
fn fixed_timestamp(text: &str) -> Option<(Date, Time)> {
    let b = text.as_bytes();
    if b.len() != 23 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.' {
        return None;
    }
    let date = fixed_date(&b[..10])?;
    let time = Time::from_hms_milli(
        digits(&b[11..13])? as u8,
        digits(&b[14..16])? as u8,
        digits(&b[17..19])? as u8,
        digits(&b[20..23])? as u16,
    )
    .ok()?;
    Some((date, time))
}

fn fixed_date(b: &[u8]) -> Option<Date> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let month = time::Month::try_from(digits(&b[5..7])? as u8).ok()?;
    Date::from_calendar_date(digits(&b[..4])? as i32, month, digits(&b[8..10])? as u8).ok()
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

fn bad(column: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        column: column.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, time};

    #[test]
    fn money_is_exact() {
        assert_eq!(Money::parse("2.50"), Some(Money(250)));
        assert_eq!(Money::parse("3"), Some(Money(300)));
        assert_eq!(Money::parse("0.1"), Some(Money(10)));
        assert_eq!(Money::parse("-12.05"), Some(Money(-1205)));
        assert_eq!(Money::parse("99999999.99"), Some(Money(Money::MAX)));
        for bad in [
            "",
            ".5",
            "1.234",
            "1e3",
            "123456789.00",
            "1,5",
            "abc",
            "1.-5",
        ] {
            assert_eq!(Money::parse(bad), None, "{bad}");
        }
        assert_eq!(Money(250).to_string(), "2.50");
        assert_eq!(Money(-5).to_string(), "-0.05");
    }

    #[test]
    fn fields_name_their_column() {
        let row = SourceRow::parse(
            r#"{"id": 3, "price": "3.1x", "at": "2024-11-14T15:34:09.845", "day": "2024-02-30", "note": null, "paid": true}"#,
        )
        .unwrap();
        assert_eq!(row.int("id"), Ok(3));
        assert_eq!(row.money("price").unwrap_err().column, "price");
        assert_eq!(
            row.timestamp("at"),
            Ok((date!(2024 - 11 - 14), time!(15:34:09.845)))
        );
        assert!(row.date("day").unwrap_err().reason.contains("not a date"));
        assert_eq!(row.text_opt("note"), Ok(None));
        assert!(row.text("note").unwrap_err().reason.contains("NOT NULL"));
        assert_eq!(row.text_opt("gone").unwrap_err().reason, "missing");
        assert_eq!(row.boolean("paid"), Ok(true));
        assert!(row.int("price").is_err());
        assert!(SourceRow::parse("[1]").is_err());
    }
}
