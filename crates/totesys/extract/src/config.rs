//! Which tables db-extract copies: `config/extract.toml` (compiled in; `EXTRACT_CONFIG` names
//! another file). Names go through the identifier allowlist when the config loads, so a
//! name shaped like SQL injection fails the cold start, before any query runs.

use landfall_env::{ConfigError, Env};
use landfall_sql_ident::Ident;
use serde::Deserialize;

/// The bundled table list: totesys's eleven tables.
pub const BUNDLED: &str = include_str!("../../../../config/extract.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractConfig {
    pub tables: Vec<TableSpec>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub name: Ident,
    /// A SELECT to extract instead of the whole table (from the repository's config only,
    /// never from an event).
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default = "default_cursor")]
    pub cursor: Ident,
    /// The column that orders rows with the same cursor value, so a run too big for one
    /// object can stop between any two rows (default: the table's primary key, when it is one
    /// column; without one, a run is one object).
    #[serde(default)]
    pub key: Option<Ident>,
}

fn default_cursor() -> Ident {
    Ident::new("last_updated").expect("a valid identifier")
}

impl ExtractConfig {
    pub fn parse(text: &str, origin: &str) -> Result<ExtractConfig, String> {
        let config: ExtractConfig =
            toml::from_str(text).map_err(|e| format!("{origin}: {}", e.message()))?;
        if config.tables.is_empty() {
            return Err(format!("{origin}: no tables"));
        }
        let mut names: Vec<&str> = config.tables.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("{origin}: table {} is listed twice", twice[0]));
        }
        Ok(config)
    }

    /// `EXTRACT_CONFIG` (a file) or the bundled list; `TABLES` (comma-separated) narrows it.
    pub fn from_env(env: &Env) -> Result<ExtractConfig, ConfigError> {
        let mut config = match env.optional("EXTRACT_CONFIG") {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::invalid("EXTRACT_CONFIG", path, e))?;
                ExtractConfig::parse(&text, path)
                    .map_err(|e| ConfigError::invalid("EXTRACT_CONFIG", path, e))?
            }
            None => ExtractConfig::parse(BUNDLED, "config/extract.toml")
                .map_err(|e| ConfigError::invalid("EXTRACT_CONFIG", "(bundled)", e))?,
        };
        if let Some(only) = env.optional("TABLES") {
            let mut tables = Vec::new();
            for name in env.list("TABLES") {
                let ident =
                    Ident::new(&name).map_err(|e| ConfigError::invalid("TABLES", only, e))?;
                tables.push(
                    config
                        .table(ident.as_str())
                        .cloned()
                        .unwrap_or_else(|| TableSpec {
                            name: ident,
                            query: None,
                            cursor: default_cursor(),
                            key: None,
                        }),
                );
            }
            config.tables = tables;
        }
        Ok(config)
    }

    pub fn table(&self, name: &str) -> Option<&TableSpec> {
        self.tables.iter().find(|t| t.name.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_config_lists_totesys() {
        let config = ExtractConfig::parse(BUNDLED, "bundled").unwrap();
        assert_eq!(config.tables.len(), 11);
        let transaction = config.table("transaction").unwrap();
        assert_eq!(transaction.name.pg_quoted(), "\"transaction\"");
        assert_eq!(transaction.cursor.as_str(), "last_updated");
    }

    #[test]
    fn injection_shaped_names_fail_when_the_config_loads() {
        let bad = "[[tables]]\nname = \"staff; DROP TABLE staff; --\"\n";
        let err = ExtractConfig::parse(bad, "x.toml").unwrap_err();
        assert!(err.contains("not an allowed SQL identifier"), "{err}");

        let env = Env::from_pairs([("TABLES", "staff,\"staff\"--")]);
        let err = ExtractConfig::from_env(&env).unwrap_err().to_string();
        assert!(err.contains("TABLES"), "{err}");

        let twice = "[[tables]]\nname = \"a\"\n[[tables]]\nname = \"a\"\n";
        assert!(ExtractConfig::parse(twice, "x")
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn tables_narrows_the_list_and_keeps_custom_queries() {
        let env = Env::from_pairs([("TABLES", "staff, currency")]);
        let config = ExtractConfig::from_env(&env).unwrap();
        let names: Vec<&str> = config.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["staff", "currency"]);
    }
}
