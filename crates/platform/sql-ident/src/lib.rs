//! SQL identifiers come only from configuration, and only through this allowlist.
#![warn(missing_docs)]

use serde::Deserialize;
use std::fmt;

/// A table, column or procedure name: ASCII letter or `_`, then letters, digits or `_`,
/// at most 64 characters (MySQL's limit). Anything else is refused when config loads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Ident(String);

impl Ident {
    /// `name` if it is an allowed identifier, else why not.
    pub fn new(name: &str) -> Result<Ident, String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if first_ok && rest_ok && name.len() <= 64 {
            Ok(Ident(name.to_owned()))
        } else {
            Err(format!(
                "{name:?} is not an allowed SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64)"
            ))
        }
    }

    /// The identifier, unquoted.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Backtick-quoted for MySQL; the allowlist already excludes backticks.
    pub fn quoted(&self) -> String {
        format!("`{}`", self.0)
    }

    /// Double-quoted for PostgreSQL (so `"transaction"` works); the allowlist excludes `"`.
    pub fn pg_quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl TryFrom<String> for Ident {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Ident::new(&value)
    }
}

/// Maps keyed by `Ident` are looked up by `&str` (same ordering and hash as the name).
impl std::borrow::Borrow<str> for Ident {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Ident;

    #[test]
    fn allowlist() {
        for good in ["price_index", "_x", "T1"] {
            assert_eq!(Ident::new(good).unwrap().quoted(), format!("`{good}`"));
            assert_eq!(Ident::new(good).unwrap().pg_quoted(), format!("\"{good}\""));
        }
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "x`; DROP TABLE y; --",
            "t\"; DROP TABLE y; --",
            "naïve",
            &"a".repeat(65),
        ] {
            assert!(Ident::new(bad).is_err(), "{bad}");
        }
    }
}
