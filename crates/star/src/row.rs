//! One source row from a JSON line, read field by field so that every problem names its
//! column: a missing column, a wrong type, a malformed date or amount.

use serde_json::{Map, Value};
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

pub struct SourceRow(Map<String, Value>);

impl SourceRow {
    pub fn parse(line: &str) -> Result<SourceRow, FieldError> {
        match serde_json::from_str(line) {
            Ok(Value::Object(map)) => Ok(SourceRow(map)),
            Ok(_) => Err(FieldError {
                column: "-".into(),
                reason: "the line is not a JSON object".into(),
            }),
            Err(e) => Err(FieldError {
                column: "-".into(),
                reason: format!("not JSON ({e})"),
            }),
        }
    }

    fn field(&self, column: &str) -> Result<&Value, FieldError> {
        self.0.get(column).ok_or_else(|| bad(column, "missing"))
    }

    fn present(&self, column: &str) -> Result<Option<&Value>, FieldError> {
        match self.field(column)? {
            Value::Null => Ok(None),
            value => Ok(Some(value)),
        }
    }

    fn required(&self, column: &str) -> Result<&Value, FieldError> {
        self.present(column)?
            .ok_or_else(|| bad(column, "null where the schema says NOT NULL"))
    }

    pub fn int(&self, column: &str) -> Result<i32, FieldError> {
        let value = self.required(column)?;
        value
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| bad(column, format!("not a 32-bit integer: {value}")))
    }

    pub fn int_opt(&self, column: &str) -> Result<Option<i32>, FieldError> {
        match self.present(column)? {
            None => Ok(None),
            Some(_) => self.int(column).map(Some),
        }
    }

    pub fn text(&self, column: &str) -> Result<String, FieldError> {
        let value = self.required(column)?;
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad(column, format!("not text: {value}")))
    }

    pub fn text_opt(&self, column: &str) -> Result<Option<String>, FieldError> {
        match self.present(column)? {
            None => Ok(None),
            Some(_) => self.text(column).map(Some),
        }
    }

    pub fn boolean(&self, column: &str) -> Result<bool, FieldError> {
        let value = self.required(column)?;
        value
            .as_bool()
            .ok_or_else(|| bad(column, format!("not a boolean: {value}")))
    }

    pub fn money(&self, column: &str) -> Result<Money, FieldError> {
        let text = self.text(column)?;
        Money::parse(&text).ok_or_else(|| bad(column, format!("not a numeric(10,2): {text:?}")))
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmm` (timezone-less, as the source keeps it).
    pub fn timestamp(&self, column: &str) -> Result<(Date, Time), FieldError> {
        let text = self.text(column)?;
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
        let text = self.text(column)?;
        Date::parse(&text, format_description!("[year]-[month]-[day]"))
            .map_err(|e| bad(column, format!("not a date YYYY-MM-DD: {text:?} ({e})")))
    }
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
