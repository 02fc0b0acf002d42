//! Typed configuration from environment variables, read once at cold start.
//!
//! A missing or malformed variable fails the cold start with a message that names it;
//! handlers never read the environment themselves.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// A variable missing or not of the form it must have: the cold start fails with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A variable that must be set is not.
    #[error("configuration: environment variable {name} is not set")]
    Missing {
        /// The variable.
        name: String,
    },
    /// A variable with a value it cannot have.
    #[error("configuration: environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why the value is refused.
        reason: String,
    },
}

impl ConfigError {
    /// `name` holds `value`, which it cannot, for `reason`.
    pub fn invalid(name: &str, value: &str, reason: impl Display) -> Self {
        ConfigError::Invalid {
            name: name.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// A snapshot of the variables a function is configured with.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment (the Lambda function's configuration).
    pub fn from_process() -> Self {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    /// An explicit set of variables, for tests and tools.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A set, non-empty variable. Empty counts as unset: CloudFormation renders an
    /// unset optional parameter as "".
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must be set.
    pub fn required(&self, name: &str) -> Result<&str, ConfigError> {
        self.optional(name).ok_or_else(|| ConfigError::Missing {
            name: name.to_owned(),
        })
    }

    /// The value of `name`, which must be set, parsed.
    pub fn parse<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let raw = self.required(name)?;
        raw.parse().map_err(|e| ConfigError::invalid(name, raw, e))
    }

    /// The value of `name` parsed, or `default` when it is not set.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| ConfigError::invalid(name, raw, e)),
        }
    }

    /// A configuration file: the one variable `name` points at, else the `bundled` text
    /// compiled into the function (`bundled_path` names it in messages). Then `parse`,
    /// given the file's name and text; a file that cannot be read or parsed fails the cold
    /// start naming the variable.
    pub fn config_file<T, E: Display>(
        &self,
        name: &str,
        bundled_path: &str,
        bundled: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, E>,
    ) -> Result<T, ConfigError> {
        match self.optional(name) {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::invalid(name, path, e))?;
                parse(path, &text).map_err(|e| ConfigError::invalid(name, path, e))
            }
            None => parse(&format!("{bundled_path} (bundled)"), bundled)
                .map_err(|e| ConfigError::invalid(name, "(bundled)", e)),
        }
    }

    /// Whether `name` is set (to anything, even empty).
    pub fn is_set(&self, name: &str) -> bool {
        self.optional(name).is_some()
    }

    /// A comma-separated list, items trimmed, empty items dropped; unset is empty.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_is_the_named_one_or_the_bundled_text() {
        let parse = |path: &str, text: &str| -> Result<String, String> {
            if text.contains("bad") {
                Err(format!("{path}: bad entry"))
            } else {
                Ok(format!("{path}: {text}"))
            }
        };
        let bundled = Env::from_pairs([("OTHER", "x")]);
        assert_eq!(
            bundled.config_file("FILE", "config/x.toml", "shipped", parse),
            Ok("config/x.toml (bundled): shipped".into())
        );
        let path = std::env::temp_dir().join(format!("landfall-env-{}.toml", std::process::id()));
        std::fs::write(&path, "bad").unwrap();
        let named = Env::from_pairs([("FILE", path.to_str().unwrap())]);
        let err = named
            .config_file("FILE", "config/x.toml", "shipped", parse)
            .unwrap_err();
        assert!(
            err.to_string().contains("FILE") && err.to_string().contains("bad entry"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let missing = named
            .config_file("FILE", "config/x.toml", "shipped", parse)
            .unwrap_err();
        assert!(matches!(missing, ConfigError::Invalid { ref name, .. } if name == "FILE"));
    }

    #[test]
    fn missing_variable_is_named() {
        let env = Env::from_pairs([("OTHER", "x")]);
        let err = env.required("WEBSITE_BUCKET").unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: environment variable WEBSITE_BUCKET is not set"
        );
    }

    #[test]
    fn empty_counts_as_unset() {
        let env = Env::from_pairs([("DISTRIBUTION_ID", "  ")]);
        assert_eq!(env.optional("DISTRIBUTION_ID"), None);
        assert!(env.required("DISTRIBUTION_ID").is_err());
    }

    #[test]
    fn malformed_variable_names_variable_value_and_reason() {
        let env = Env::from_pairs([("BATCH", "ten")]);
        let err = env.parse::<u32>("BATCH").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("BATCH=\"ten\""), "{text}");
        assert!(text.contains("invalid digit"), "{text}");
    }

    #[test]
    fn parse_or_uses_default_only_when_unset() {
        let env = Env::from_pairs([("A", "7")]);
        assert_eq!(env.parse_or("A", 1u32), Ok(7));
        assert_eq!(env.parse_or("B", 1u32), Ok(1));
    }

    #[test]
    fn lists_are_trimmed_and_skip_empty_items() {
        let env = Env::from_pairs([("L", " a, b ,,c ")]);
        assert_eq!(env.list("L"), ["a", "b", "c"]);
        assert!(env.list("UNSET").is_empty());
    }
}
